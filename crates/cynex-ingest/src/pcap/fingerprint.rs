//! Per-packet fingerprint and tag bits, computed at decode time because the rules need fields
//! that flow records lose (IP ID, TCP sequence number). Each rule cites its source; the notation
//! follows ../shared/reference/darknet.md §1: `dst` and `seq` are big-endian u32 as on the wire.
//!
//! These are single-packet facts. Attribution of a *source* to a tool needs several matching
//! packets (a random packet matches the Masscan rule with probability 2^-16) and, for Nmap and
//! Unicornscan, multi-packet state: that is analysis, not decoding.

use cynex_model::ip::{is_bogon_v4, is_bogon_v6};
use cynex_model::packet::{fp, proto, tags, tcp_flags as f, PacketRecord};

/// Set `r.fp` and the traffic tags (backscatter, spoof-suspect) from the decoded fields.
pub fn annotate(r: &mut PacketRecord) {
    r.fp = fingerprint(r);
    if is_backscatter(r) {
        r.tags |= tags::BACKSCATTER;
    }
    if is_spoof_suspect(r) {
        r.tags |= tags::SPOOF_SUSPECT;
    }
}

/// A TCP SYN without ACK (scanner probes; every tool rule below is about these).
fn is_syn(r: &PacketRecord) -> bool {
    r.proto == Some(proto::TCP) && r.tcp_flags.is_some_and(|x| x & (f::SYN | f::ACK) == f::SYN)
}

pub fn fingerprint(r: &PacketRecord) -> u16 {
    let mut bits = 0;
    if r.ip_version != 4 {
        return 0;
    }
    let (Some(ip_id), Some(dst)) = (r.ip_id, r.dst_ip4) else { return 0 };
    // ZMap < v4.1 writes IP ID 54321 on every probe: zmap src/probe_modules/packet.c L91
    // (`iph->ip_id = htons(54321)`), randomised from v4.1.0 (commit b0190cc). Merit ORION
    // darknet-events internal/annotate/annotate.go L328 uses the same test. Replies are excluded.
    if ip_id == 54321 && !is_backscatter(r) {
        bits |= fp::ZMAP;
    }
    if !is_syn(r) {
        return bits;
    }
    let (Some(seq), Some(dport), Some(win)) = (r.tcp_seq, r.dst_port, r.tcp_window) else {
        return bits;
    };
    // Masscan: `ip_id = ip_them ^ port_them ^ seqno`, low 16 bits written
    // (masscan src/templ-pkt.c L432; Merit annotate.go L331).
    if ip_id == ((dst ^ dport as u32 ^ seq) & 0xFFFF) as u16 {
        bits |= fp::MASSCAN;
    }
    // Mirai: `tcph->seq = iph->daddr` (Mirai-Source-Code mirai/bot/scanner.c L211-225;
    // Antonakakis et al., USENIX Security 2017; Merit annotate.go L334).
    if seq == dst {
        bits |= fp::MIRAI;
    }
    let opts = r.tcp_opts.as_ref().map_or("", |s| s.as_str());
    // Nmap -sS: window 1024 ("Who cares", nmap tcpip.cc L604-607) and options exactly one
    // MSS 1460 (nmap.h TCP_SYN_PROBE_OPTIONS). Confirmed per source by constant seq/sport.
    if win == 1024 && opts == "M" && r.tcp_mss == Some(1460) {
        bits |= fp::NMAP_SYN;
    }
    // Unicornscan 0.4.x default profile: window 4128 with an MSS option (unicornscan
    // src/scan_progs/init_packet.c L87-101, makepkt.c L132). Confirmed per source by the
    // constant seq ^ dst ^ ((dport << 16) + sport).
    if win == 4128 && r.tcp_mss.is_some() {
        bits |= fp::UNICORN;
    }
    // CAIDA Corsaro3 large-scale-scan filter: SYN, no options (doff 5), window 1024, TTL >= 200
    // (libcorsaro/libcorsaro_filtering.c L925-941) — Masscan 1.3.2's template.
    if win == 1024 && opts.is_empty() && r.ttl.is_some_and(|t| t >= 200) {
        bits |= fp::CORSARO_LSS;
    }
    bits
}

/// Replies to traffic the telescope never sent: the victim of a spoofed-source attack answering
/// (Moore et al., "Inferring Internet Denial-of-Service Activity", USENIX Security 2001 / ACM
/// TOCS 2006; CAIDA Corsaro3 dos plugin `libcorsaro/plugins/corsaro_dos.c`).
pub fn is_backscatter(r: &PacketRecord) -> bool {
    match (r.proto, r.icmp_type) {
        (Some(proto::TCP), _) => {
            r.tcp_flags.is_some_and(|x| x & (f::SYN | f::ACK) == (f::SYN | f::ACK) || x & f::RST != 0)
        }
        // Echo reply 0, unreachable 3, source quench 4, redirect 5, time exceeded 11, parameter
        // problem 12, timestamp reply 14, information reply 16, address mask reply 18.
        (Some(proto::ICMP), Some(t)) => matches!(t, 0 | 3 | 4 | 5 | 11 | 12 | 14 | 16 | 18),
        // ICMPv6 errors 1-4 and echo reply 129 (RFC 4443).
        (Some(proto::ICMPV6), Some(t)) => matches!(t, 1..=4 | 129),
        _ => false,
    }
}

/// A source that cannot be genuine: a reserved or bogon source address, source equal to
/// destination, or TCP/UDP port 0 (CAIDA Corsaro3 spoofed tag, libcorsaro_filtering.c L815-918).
pub fn is_spoof_suspect(r: &PacketRecord) -> bool {
    let bogon = match (r.src_ip4, &r.src_ip6) {
        (Some(s), _) => is_bogon_v4(s) || r.dst_ip4 == Some(s),
        (None, Some(s)) => is_bogon_v6(s) || r.dst_ip6.as_ref() == Some(s),
        _ => false,
    };
    let port0 = matches!(r.proto, Some(proto::TCP | proto::UDP)) && (r.src_port == Some(0) || r.dst_port == Some(0));
    bogon || port0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syn(dst: u32, dport: u16, seq: u32, ip_id: u16) -> PacketRecord {
        PacketRecord {
            ip_version: 4,
            src_ip4: Some(0x0808_0808),
            dst_ip4: Some(dst),
            proto: Some(proto::TCP),
            ttl: Some(250),
            ip_id: Some(ip_id),
            dst_port: Some(dport),
            src_port: Some(40000),
            tcp_seq: Some(seq),
            tcp_flags: Some(f::SYN),
            tcp_window: Some(65535),
            tcp_opts: Some("".into()),
            ..Default::default()
        }
    }

    #[test]
    fn masscan_rule_masks_to_16_bits() {
        let (dst, dport, seq) = (0xC612_0A0B, 443u16, 0xDEAD_BEEF);
        let id = ((dst ^ dport as u32 ^ seq) & 0xFFFF) as u16;
        assert_ne!(fingerprint(&syn(dst, dport, seq, id)) & fp::MASSCAN, 0);
        assert_eq!(fingerprint(&syn(dst, dport, seq, id ^ 1)) & fp::MASSCAN, 0);
    }

    #[test]
    fn mirai_zmap_and_replies() {
        let dst = 0xC612_0001;
        assert_ne!(fingerprint(&syn(dst, 23, dst, 7)) & fp::MIRAI, 0);
        assert_ne!(fingerprint(&syn(dst, 80, 1, 54321)) & fp::ZMAP, 0);
        let mut synack = syn(dst, 80, 1, 54321);
        synack.tcp_flags = Some(f::SYN | f::ACK);
        assert_eq!(fingerprint(&synack), 0);
        assert!(is_backscatter(&synack));
    }

    #[test]
    fn nmap_and_unicorn_traits() {
        let mut p = syn(1, 80, 5, 9);
        p.tcp_window = Some(1024);
        p.tcp_opts = Some("M".into());
        p.tcp_mss = Some(1460);
        assert_ne!(fingerprint(&p) & fp::NMAP_SYN, 0);
        p.tcp_window = Some(4128);
        assert_eq!(fingerprint(&p) & (fp::NMAP_SYN | fp::UNICORN), fp::UNICORN);
        p.tcp_window = Some(1024);
        p.tcp_opts = Some("".into());
        p.tcp_mss = None;
        assert_ne!(fingerprint(&p) & fp::CORSARO_LSS, 0);
    }

    #[test]
    fn spoof_suspects() {
        let mut p = syn(0x0808_0808, 80, 5, 9);
        assert!(is_spoof_suspect(&p), "src == dst");
        p.dst_ip4 = Some(0x0101_0101);
        assert!(!is_spoof_suspect(&p));
        p.src_ip4 = Some(0x0A00_0001);
        assert!(is_spoof_suspect(&p), "private source");
        p.src_ip4 = Some(0x0808_0808);
        p.dst_port = Some(0);
        assert!(is_spoof_suspect(&p), "port 0");
    }
}
