//! Our decode agrees with tcpdump's: for every capture with tcpdump's expected output in
//! corpus/pcap/tcpdump-expected, the addresses, ports, TCP flags, link-layer type of non-IP
//! frames and (where printed with a date) timestamps match packet by packet.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use cynex_model::packet::tcp_flags as f;
use cynex_model::time::rfc3339_us;
use cynex_model::PacketRecord;

use crate::{corpus, read_all};

/// What one tcpdump output line says about a packet.
#[derive(Debug, Default)]
struct Expect {
    number: usize,
    /// `YYYY-MM-DD HH:MM:SS.ffffff` when printed with -tttt.
    datetime: Option<String>,
    src: Option<(IpAddr, Option<u16>)>,
    dst: Option<(IpAddr, Option<u16>)>,
    flags: Option<u8>,
    ethertype: Option<u16>,
}

fn endpoint(tok: &str, v6: bool) -> (IpAddr, Option<u16>) {
    if v6 {
        if let Ok(a) = tok.parse::<Ipv6Addr>() {
            return (IpAddr::V6(a), None);
        }
        let (a, p) = tok.rsplit_once('.').unwrap();
        (IpAddr::V6(a.parse().unwrap()), Some(p.parse().unwrap()))
    } else {
        let parts: Vec<&str> = tok.split('.').collect();
        let a: Ipv4Addr = parts[..4].join(".").parse().unwrap();
        (IpAddr::V4(a), parts.get(4).map(|p| p.parse().unwrap()))
    }
}

fn parse_line(line: &str) -> Option<Expect> {
    if line.starts_with('\t') {
        return None;
    }
    let t = line.trim_start();
    let (num, rest) = t.split_once("  ")?;
    let mut e = Expect { number: num.parse().ok()?, ..Default::default() };
    let rest = rest.trim_start();
    // -tttt lines start with a date.
    if rest.as_bytes().get(4) == Some(&b'-') {
        e.datetime = Some(rest[..26].to_string());
    }
    if let Some(i) = rest.find("ethertype ") {
        // The last "ethertype NAME (0xNNNN)" is the payload's type.
        let last = rest.rfind("ethertype ").unwrap_or(i);
        let hex = rest[last..].split("(0x").nth(1)?.split(')').next()?;
        e.ethertype = u16::from_str_radix(hex, 16).ok();
        if e.ethertype != Some(0x0800) && e.ethertype != Some(0x86dd) {
            return Some(e);
        }
    }
    let (v6, after) = if let Some(i) = rest.find(" IP6 ") {
        (true, &rest[i + 5..])
    } else {
        (false, &rest[rest.find(" IP ")? + 4..])
    };
    // -v prints "(hlim ..., ...)" before the addresses.
    let after = if after.starts_with('(') { after[after.find(") ")? + 2..].trim_start() } else { after };
    let mut toks = after.split_whitespace();
    let src = toks.next()?;
    let gt = toks.next()?;
    assert_eq!(gt, ">", "unexpected tcpdump line: {line}");
    let dst = toks.next()?.trim_end_matches(':');
    e.src = Some(endpoint(src, v6));
    e.dst = Some(endpoint(dst, v6));
    if let Some(i) = after.find("Flags [") {
        let fl = &after[i + 7..];
        let fl = &fl[..fl.find(']')?];
        let mut bits = 0u8;
        for c in fl.chars() {
            bits |= match c {
                'S' => f::SYN,
                'F' => f::FIN,
                'R' => f::RST,
                'P' => f::PSH,
                '.' => f::ACK,
                'U' => f::URG,
                'E' => f::ECE,
                'W' => f::CWR,
                _ => 0,
            };
        }
        e.flags = Some(bits);
    }
    Some(e)
}

type Endpoint = Option<(IpAddr, Option<u16>)>;

fn ours(p: &PacketRecord) -> (Endpoint, Endpoint) {
    let ip =
        |v4: Option<u32>, v6: Option<[u8; 16]>| v4.map(|a| IpAddr::V4(a.into())).or(v6.map(|a| IpAddr::V6(a.into())));
    (ip(p.src_ip4, p.src_ip6).map(|a| (a, p.src_port)), ip(p.dst_ip4, p.dst_ip6).map(|a| (a, p.dst_port)))
}

#[test]
fn decode_agrees_with_tcpdump() {
    let cases = [
        ("802.1ad_QinQ.out", "valid/802.1ad_QinQ.pcap"),
        ("LINKTYPE_IPV4.out", "valid/LINKTYPE_IPV4.pcap"),
        ("LINKTYPE_RAW_ipv4.out", "valid/LINKTYPE_RAW_ipv4.pcap"),
        ("LINKTYPE_RAW_ipv6.out", "valid/LINKTYPE_RAW_ipv6.pcap"),
        ("dns_udp.out", "valid/dns_udp.pcap"),
        ("icmpv6.out", "valid/icmpv6.pcap"),
        ("lisp_invalid_length.out", "malformed/lisp_invalid_length.pcap"),
        ("pptp.out", "valid/pptp-bigendian.pcap"),
        ("tcp-handshake-nano.out", "valid/tcp-handshake-nano.pcap"),
        ("tcp_rst_data-trunc.out", "valid/tcp_rst_data-trunc.pcap"),
        ("timestamp_invalid_nano.out", "malformed/timestamp_invalid_nano.pcap"),
    ];
    let mut compared = 0;
    for (out, cap) in cases {
        let text = std::fs::read_to_string(corpus().join("pcap/tcpdump-expected").join(out)).unwrap();
        let expects: Vec<Expect> = text.lines().filter_map(parse_line).collect();
        let r = read_all(&std::fs::read(corpus().join("pcap").join(cap)).unwrap()).unwrap();
        assert_eq!(r.packets.len(), expects.len(), "{cap}: packet count vs tcpdump");
        for (e, p) in expects.iter().zip(&r.packets) {
            let ctx = format!("{cap} packet {}", e.number);
            if let Some(et) = e.ethertype.filter(|t| *t != 0x0800 && *t != 0x86dd) {
                assert_eq!(p.ethertype, Some(et), "{ctx}");
                continue;
            }
            let (src, dst) = ours(p);
            assert_eq!(src, e.src, "{ctx}: source");
            assert_eq!(dst, e.dst, "{ctx}: destination");
            if let Some(fl) = e.flags {
                assert_eq!(p.tcp_flags, Some(fl), "{ctx}: TCP flags");
            }
            if let Some(dt) = &e.datetime {
                let ours = rfc3339_us(p.ts_us).replace('T', " ");
                assert_eq!(&ours[..26], dt, "{ctx}: timestamp");
            }
            compared += 1;
        }
    }
    assert!(compared >= 40, "compared only {compared} packets");
}
