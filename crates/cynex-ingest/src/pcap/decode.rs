//! Header decoding of one captured frame into a [`PacketRecord`]: link layer (Ethernet with
//! 802.1Q/802.1ad/QinQ, Linux SLL and SLL2, raw IPv4/IPv6, BSD null/loopback), IPv4 and IPv6
//! (extension headers, fragments), TCP (flags, window, sequence, options), UDP, ICMP and ICMPv6
//! (with the quoted inner header of error messages).
//!
//! Hand-written over byte slices: every read is bounds-checked, nothing allocates, and a frame cut
//! inside a header is reported with the layer, the bytes needed and the bytes present.

use cynex_model::packet::{proto, tags, PacketRecord, TcpOptsSig};

/// LINKTYPE_* values handled (<https://www.tcpdump.org/linktypes.html>).
pub mod linktype {
    pub const NULL: u16 = 0;
    pub const ETHERNET: u16 = 1;
    /// DLT_RAW as numbered on most BSDs (12) and OpenBSD (14); LINKTYPE_RAW is 101.
    pub const RAW_BSD: u16 = 12;
    pub const RAW_OPENBSD: u16 = 14;
    pub const RAW: u16 = 101;
    pub const LOOP: u16 = 108;
    pub const LINUX_SLL: u16 = 113;
    pub const IPV4: u16 = 228;
    pub const IPV6: u16 = 229;
    pub const LINUX_SLL2: u16 = 276;
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The capture cut the frame inside a header.
    Truncated {
        header: &'static str,
        need: usize,
        have: usize,
    },
    /// A header field makes no sense (wrong IP version, header length below the minimum).
    BadHeader(String),
    UnsupportedLinkType(u16),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Truncated { header, need, have } => {
                write!(f, "packet cut inside the {header} header: {have} of {need} bytes captured")
            }
            DecodeError::BadHeader(s) => f.write_str(s),
            DecodeError::UnsupportedLinkType(l) => write!(f, "unsupported link type {l}"),
        }
    }
}

type Result<T> = std::result::Result<T, DecodeError>;

#[inline]
fn need(b: &[u8], n: usize, header: &'static str) -> Result<()> {
    if b.len() < n {
        Err(DecodeError::Truncated { header, need: n, have: b.len() })
    } else {
        Ok(())
    }
}

#[inline]
fn be16(b: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([b[o], b[o + 1]])
}

#[inline]
fn be32(b: &[u8], o: usize) -> u32 {
    u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86DD;

/// Decode `data` (captured bytes of a frame of `orig_len` wire bytes) into `r`, which must be
/// default-initialised apart from `ts_us`. Fingerprint and traffic tags are not set here
/// (see [`super::fingerprint::annotate`]).
pub fn decode(linktype: u16, data: &[u8], orig_len: u32, r: &mut PacketRecord) -> Result<()> {
    r.frame_len = orig_len.max(data.len() as u32);
    if (data.len() as u32) < orig_len {
        r.tags |= tags::SNAPPED;
    }
    let (ethertype, l3) = match linktype {
        linktype::ETHERNET => ethernet(data)?,
        linktype::RAW | linktype::RAW_BSD | linktype::RAW_OPENBSD => {
            need(data, 1, "IP")?;
            match data[0] >> 4 {
                4 => (ETH_IPV4, data),
                6 => (ETH_IPV6, data),
                v => return Err(DecodeError::BadHeader(format!("raw IP frame with IP version {v}"))),
            }
        }
        linktype::IPV4 => (ETH_IPV4, data),
        linktype::IPV6 => (ETH_IPV6, data),
        linktype::NULL | linktype::LOOP => {
            need(data, 4, "loopback")?;
            let be = be32(data, 0);
            // NULL stores the family in the writer's byte order, LOOP in network order.
            let fam = if linktype == linktype::NULL && be > 0xFFFF { be.swap_bytes() } else { be };
            let et = match fam {
                2 => ETH_IPV4,
                // AF_INET6 differs by OS: 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS), 10 (Linux).
                10 | 24 | 28 | 30 => ETH_IPV6,
                f => return Err(DecodeError::BadHeader(format!("loopback frame with address family {f}"))),
            };
            (et, &data[4..])
        }
        linktype::LINUX_SLL => {
            need(data, 16, "Linux cooked (SLL)")?;
            vlan_chain(be16(data, 14), &data[16..])?
        }
        linktype::LINUX_SLL2 => {
            need(data, 20, "Linux cooked (SLL2)")?;
            vlan_chain(be16(data, 0), &data[20..])?
        }
        other => return Err(DecodeError::UnsupportedLinkType(other)),
    };
    match ethertype {
        ETH_IPV4 => ipv4(l3, r),
        ETH_IPV6 => ipv6(l3, r),
        other => {
            r.ethertype = Some(other);
            r.tags |= tags::NON_IP;
            Ok(())
        }
    }
}

fn ethernet(data: &[u8]) -> Result<(u16, &[u8])> {
    need(data, 14, "Ethernet")?;
    vlan_chain(be16(data, 12), &data[14..])
}

/// Skip any stack of 802.1Q (0x8100), 802.1ad (0x88a8) and pre-standard QinQ (0x9100, 0x9200)
/// tags: each is 2 bytes of TCI followed by the next ethertype.
fn vlan_chain(mut et: u16, mut rest: &[u8]) -> Result<(u16, &[u8])> {
    let mut depth = 0;
    while matches!(et, 0x8100 | 0x88a8 | 0x9100 | 0x9200) {
        need(rest, 4, "802.1Q VLAN")?;
        et = be16(rest, 2);
        rest = &rest[4..];
        depth += 1;
        if depth > 8 {
            return Err(DecodeError::BadHeader("more than 8 stacked VLAN tags".into()));
        }
    }
    Ok((et, rest))
}

fn ipv4(b: &[u8], r: &mut PacketRecord) -> Result<()> {
    need(b, 20, "IPv4")?;
    let ver = b[0] >> 4;
    if ver != 4 {
        return Err(DecodeError::BadHeader(format!("IPv4 header with version {ver}")));
    }
    let ihl = (b[0] & 0x0f) as usize * 4;
    if ihl < 20 {
        return Err(DecodeError::BadHeader(format!("IPv4 header length {ihl} < 20")));
    }
    need(b, ihl, "IPv4")?;
    let total = be16(b, 2) as usize;
    r.ip_version = 4;
    r.ip_len = Some(total as u16);
    r.ip_id = Some(be16(b, 4));
    let frag = be16(b, 6);
    let offset = (frag & 0x1fff) * 8;
    let more = frag & 0x2000 != 0;
    r.ttl = Some(b[8]);
    let p = b[9];
    r.proto = Some(p);
    r.src_ip4 = Some(be32(b, 12));
    r.dst_ip4 = Some(be32(b, 16));
    if offset != 0 || more {
        r.tags |= tags::FRAGMENT;
        r.frag_offset = Some(offset);
    }
    if offset != 0 {
        return Ok(());
    }
    // The datagram ends at total length (Ethernet pads short frames); a bogus total length falls
    // back to what was captured.
    let end = if total >= ihl { total.min(b.len()) } else { b.len() };
    // Only a frame the capture cut short (not a short datagram) is a decode error at layer 4.
    let cut_by_capture = total > b.len();
    l4(p, &b[ihl..end], cut_by_capture, r)
}

fn ipv6(b: &[u8], r: &mut PacketRecord) -> Result<()> {
    need(b, 40, "IPv6")?;
    let ver = b[0] >> 4;
    if ver != 6 {
        return Err(DecodeError::BadHeader(format!("IPv6 header with version {ver}")));
    }
    let payload = be16(b, 4) as usize;
    r.ip_version = 6;
    r.ip_len = Some((payload + 40).min(u16::MAX as usize) as u16);
    r.ttl = Some(b[7]);
    let mut src = [0u8; 16];
    src.copy_from_slice(&b[8..24]);
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&b[24..40]);
    r.src_ip6 = Some(src);
    r.dst_ip6 = Some(dst);
    // Jumbograms (payload length 0) run to the end of the capture.
    let end = if payload == 0 { b.len() } else { (40 + payload).min(b.len()) };
    let cut_by_capture = payload != 0 && 40 + payload > b.len();
    let (next, off, frag) = ipv6_ext_chain(b[6], &b[..end], 40, cut_by_capture)?;
    r.proto = Some(next);
    if let Some((offset, _more, ident)) = frag {
        r.tags |= tags::FRAGMENT;
        r.frag_offset = Some(offset);
        // The low 16 bits of the 32-bit fragment identification, for reassembly-minded queries.
        r.ip_id = Some(ident as u16);
        if offset != 0 {
            return Ok(());
        }
    }
    l4(next, &b[off..end], cut_by_capture, r)
}

/// Walk IPv6 extension headers from `off`. Returns the upper-layer protocol, its offset, and the
/// fragment header's (offset in bytes, more-fragments, identification) if there was one.
#[allow(clippy::type_complexity)]
fn ipv6_ext_chain(
    mut next: u8,
    b: &[u8],
    mut off: usize,
    strict: bool,
) -> Result<(u8, usize, Option<(u16, bool, u32)>)> {
    let mut frag = None;
    for _ in 0..16 {
        let len = match next {
            // Hop-by-hop, routing, destination options, mobility, HIP, shim6: (len + 1) * 8.
            0 | 43 | 60 | 135 | 139 | 140 => {
                if b.len() < off + 2 {
                    return truncated_ext(strict, next, off, b.len()).map(|()| (next, b.len(), frag));
                }
                (b[off + 1] as usize + 1) * 8
            }
            // Fragment header: fixed 8 bytes.
            44 => {
                if b.len() < off + 8 {
                    return truncated_ext(strict, next, off, b.len()).map(|()| (next, b.len(), frag));
                }
                let fo = be16(b, off + 2);
                frag = Some((fo & 0xfff8, fo & 1 != 0, be32(b, off + 4)));
                8
            }
            // Authentication header: (len + 2) * 4.
            51 => {
                if b.len() < off + 2 {
                    return truncated_ext(strict, next, off, b.len()).map(|()| (next, b.len(), frag));
                }
                (b[off + 1] as usize + 2) * 4
            }
            _ => return Ok((next, off, frag)),
        };
        if b.len() < off + len {
            return truncated_ext(strict, next, off + len, b.len()).map(|()| (next, b.len(), frag));
        }
        next = b[off];
        off += len;
        if let Some((fo, _, _)) = frag {
            if fo != 0 {
                return Ok((next, off, frag));
            }
        }
    }
    Err(DecodeError::BadHeader("more than 16 IPv6 extension headers".into()))
}

fn truncated_ext(strict: bool, _next: u8, need: usize, have: usize) -> Result<()> {
    if strict {
        Err(DecodeError::Truncated { header: "IPv6 extension", need, have })
    } else {
        Ok(())
    }
}

/// Decode the transport header in `b` (the datagram payload as captured). `cut_by_capture` says
/// the capture (not the sender) made `b` shorter than the datagram: a header cut then is an error;
/// otherwise a short header is what the sender sent and is kept as far as it goes.
fn l4(p: u8, b: &[u8], cut_by_capture: bool, r: &mut PacketRecord) -> Result<()> {
    let check = |n: usize, h: &'static str| -> Result<bool> {
        if b.len() >= n {
            Ok(true)
        } else if cut_by_capture {
            Err(DecodeError::Truncated { header: h, need: n, have: b.len() })
        } else {
            Ok(false)
        }
    };
    match p {
        proto::TCP => {
            if !check(20, "TCP")? {
                if b.len() >= 4 {
                    r.src_port = Some(be16(b, 0));
                    r.dst_port = Some(be16(b, 2));
                }
                return Ok(());
            }
            tcp(b, cut_by_capture, r)
        }
        proto::UDP => {
            if check(8, "UDP")? || b.len() >= 4 {
                r.src_port = Some(be16(b, 0));
                r.dst_port = Some(be16(b, 2));
            }
            Ok(())
        }
        proto::ICMP => {
            if check(4, "ICMP")? || b.len() >= 2 {
                r.icmp_type = Some(b[0]);
                r.icmp_code = Some(b[1]);
                // Errors quote the offending datagram's IP header + 8 bytes (RFC 792):
                // unreachable 3, source quench 4, redirect 5, time exceeded 11, parameter problem 12.
                if matches!(b[0], 3 | 4 | 5 | 11 | 12) && b.len() > 8 {
                    inner_ipv4(&b[8..], r);
                }
            }
            Ok(())
        }
        proto::ICMPV6 => {
            if check(4, "ICMPv6")? || b.len() >= 2 {
                r.icmp_type = Some(b[0]);
                r.icmp_code = Some(b[1]);
                // Errors 1-4 quote as much of the invoking packet as fits (RFC 4443 §3).
                if (1..=4).contains(&b[0]) && b.len() > 8 {
                    inner_ipv6(&b[8..], r);
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn tcp(b: &[u8], cut_by_capture: bool, r: &mut PacketRecord) -> Result<()> {
    r.src_port = Some(be16(b, 0));
    r.dst_port = Some(be16(b, 2));
    r.tcp_seq = Some(be32(b, 4));
    r.tcp_ack = Some(be32(b, 8));
    let doff = (b[12] >> 4) as usize * 4;
    r.tcp_flags = Some(b[13]);
    r.tcp_window = Some(be16(b, 14));
    let mut sig = TcpOptsSig::default();
    if doff < 20 {
        r.tags |= tags::BAD_OPTIONS;
        sig.push(b'!');
        r.tcp_opts = Some(sig);
        return Ok(());
    }
    // Options cut by the snap length keep the core header: the fields above are all there.
    // Options cut by the sender (datagram shorter than the data offset) are malformed.
    let snapped = b.len() < doff && cut_by_capture;
    let opts = &b[20..doff.min(b.len())];
    let mut i = 0;
    let mut bad = b.len() < doff && !cut_by_capture;
    while i < opts.len() {
        let kind = opts[i];
        match kind {
            0 => {
                sig.push(b'E');
                break;
            }
            1 => {
                sig.push(b'N');
                i += 1;
                continue;
            }
            _ => {}
        }
        let Some(&len) = opts.get(i + 1) else {
            bad |= !snapped;
            break;
        };
        let len = len as usize;
        if len < 2 {
            bad = true;
            break;
        }
        if i + len > opts.len() {
            bad |= !snapped;
            break;
        }
        let v = &opts[i + 2..i + len];
        match (kind, len) {
            (2, 4) => {
                sig.push(b'M');
                r.tcp_mss = Some(be16(v, 0));
            }
            (3, 3) => {
                sig.push(b'W');
                r.tcp_wscale = Some(v[0]);
            }
            (4, 2) => sig.push(b'S'),
            (5, _) => sig.push(b'K'),
            (8, 10) => {
                sig.push(b'T');
                r.tcp_tsval = Some(be32(v, 0));
            }
            _ => sig.push(b'?'),
        }
        i += len;
    }
    if bad {
        r.tags |= tags::BAD_OPTIONS;
        sig.push(b'!');
    } else if snapped {
        sig.push(b'~');
    }
    r.tcp_opts = Some(sig);
    Ok(())
}

/// The IPv4 header (and first 4 bytes of its transport header) quoted in an ICMP error.
fn inner_ipv4(b: &[u8], r: &mut PacketRecord) {
    if b.len() < 20 || b[0] >> 4 != 4 {
        return;
    }
    let ihl = (b[0] & 0x0f) as usize * 4;
    r.inner_proto = Some(b[9]);
    r.inner_src_ip4 = Some(be32(b, 12));
    r.inner_dst_ip4 = Some(be32(b, 16));
    if ihl >= 20 && b.len() >= ihl + 4 && matches!(b[9], proto::TCP | proto::UDP) {
        r.inner_src_port = Some(be16(b, ihl));
        r.inner_dst_port = Some(be16(b, ihl + 2));
    }
}

/// The IPv6 header (and first 4 bytes of its transport header) quoted in an ICMPv6 error.
fn inner_ipv6(b: &[u8], r: &mut PacketRecord) {
    if b.len() < 40 || b[0] >> 4 != 6 {
        return;
    }
    let mut s = [0u8; 16];
    s.copy_from_slice(&b[8..24]);
    let mut d = [0u8; 16];
    d.copy_from_slice(&b[24..40]);
    r.inner_src_ip6 = Some(s);
    r.inner_dst_ip6 = Some(d);
    if let Ok((next, off, _)) = ipv6_ext_chain(b[6], b, 40, false) {
        r.inner_proto = Some(next);
        if b.len() >= off + 4 && matches!(next, proto::TCP | proto::UDP) {
            r.inner_src_port = Some(be16(b, off));
            r.inner_dst_port = Some(be16(b, off + 2));
        }
    }
}
