//! Container variants built here byte by byte (pcap in both byte orders, µs and ns, Kuznetzov's
//! modified records; pcapng with several sections of both byte orders, interfaces of different
//! link types and timestamp resolutions, enhanced/simple/obsolete packet blocks), plus property
//! tests: arbitrary bytes never panic, a cut anywhere keeps every packet before it, and garbage
//! spliced in keeps every packet before and after it.

use cynex_gen::frame::{FrameBuf, Ip4, Tcp};
use proptest::prelude::*;

use crate::read_all;

fn frame(i: u32) -> Vec<u8> {
    let mut fb = FrameBuf::default();
    let ip = Ip4 { src: 0x0808_0800 | (i & 0xff), dst: 0xC612_0000 | (i & 0xfff), ttl: 50, id: i as u16, df: false };
    let t = Tcp { sport: 40000, dport: (i % 1000) as u16 + 1, seq: i, ack: 0, flags: 2, window: 1024, opts: &[] };
    fb.ipv4_tcp(&ip, &t).to_vec()
}

struct Pcap {
    be: bool,
    nanos: bool,
    modified: bool,
}

impl Pcap {
    fn u32(&self, v: u32) -> [u8; 4] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn u16(&self, v: u16) -> [u8; 2] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn file(&self, frames: &[(u64, Vec<u8>)]) -> Vec<u8> {
        let magic = match (self.nanos, self.modified) {
            (true, _) => 0xA1B2_3C4D,
            (false, true) => 0xA1B2_CD34,
            _ => 0xA1B2_C3D4,
        };
        let mut v = Vec::new();
        v.extend(self.u32(magic));
        v.extend(self.u16(2));
        v.extend(self.u16(4));
        v.extend([0; 8]);
        v.extend(self.u32(65535));
        v.extend(self.u32(1));
        for (ts_ns, f) in frames {
            v.extend(self.u32((ts_ns / 1_000_000_000) as u32));
            let frac = ts_ns % 1_000_000_000;
            v.extend(self.u32(if self.nanos { frac } else { frac / 1000 } as u32));
            v.extend(self.u32(f.len() as u32));
            v.extend(self.u32(f.len() as u32));
            if self.modified {
                v.extend([0; 8]);
            }
            v.extend(f);
        }
        v
    }
}

const T0: u64 = 1_793_491_200_000_000_000;

fn frames(n: u32) -> Vec<(u64, Vec<u8>)> {
    (0..n).map(|i| (T0 + i as u64 * 1_000_123, frame(i))).collect()
}

#[test]
fn pcap_variants_decode_identically() {
    let fs = frames(50);
    let mut reference = None;
    for be in [false, true] {
        for (nanos, modified) in [(false, false), (true, false), (false, true)] {
            let bytes = Pcap { be, nanos, modified }.file(&fs);
            let r = read_all(&bytes).unwrap();
            assert!(r.bad.is_empty() && r.decode_errors.is_empty());
            assert_eq!(r.packets.len(), 50);
            assert_eq!(r.packets[1].ts_us, (T0 + 1_000_123) as i64 / 1000);
            match &reference {
                None => reference = Some(r.packets),
                Some(p) => assert_eq!(p, &r.packets, "be={be} nanos={nanos} modified={modified}"),
            }
        }
    }
}

/// A pcapng writer for tests: sections of either byte order, several interfaces.
struct Ng {
    out: Vec<u8>,
    be: bool,
}

impl Ng {
    fn u32(&self, v: u32) -> [u8; 4] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn u16(&self, v: u16) -> [u8; 2] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn block(&mut self, t: u32, body: &[u8]) {
        let len = 12 + body.len().div_ceil(4) * 4;
        let mut b = Vec::new();
        b.extend(self.u32(t));
        b.extend(self.u32(len as u32));
        b.extend(body);
        b.resize(8 + body.len().div_ceil(4) * 4, 0);
        b.extend(self.u32(len as u32));
        self.out.extend(b);
    }
    fn section(&mut self, be: bool) {
        self.be = be;
        let mut body = Vec::new();
        body.extend(self.u32(0x1A2B_3C4D));
        body.extend(self.u16(1));
        body.extend(self.u16(0));
        body.extend([0xff; 8]);
        self.block(0x0A0D_0D0A, &body);
    }
    fn idb(&mut self, linktype: u16, tsresol: Option<u8>) {
        let mut body = Vec::new();
        body.extend(self.u16(linktype));
        body.extend([0, 0]);
        body.extend(self.u32(0));
        if let Some(r) = tsresol {
            body.extend(self.u16(9));
            body.extend(self.u16(1));
            body.extend([r, 0, 0, 0]);
            body.extend([0, 0, 0, 0]);
        }
        self.block(1, &body);
    }
    fn epb(&mut self, ifc: u32, ticks: u64, data: &[u8]) {
        let mut body = Vec::new();
        body.extend(self.u32(ifc));
        body.extend(self.u32((ticks >> 32) as u32));
        body.extend(self.u32(ticks as u32));
        body.extend(self.u32(data.len() as u32));
        body.extend(self.u32(data.len() as u32));
        body.extend(data);
        self.block(6, &body);
    }
    fn spb(&mut self, data: &[u8]) {
        let mut body = Vec::new();
        body.extend(self.u32(data.len() as u32));
        body.extend(data);
        self.block(3, &body);
    }
    fn obsolete_pb(&mut self, ifc: u16, ticks: u64, data: &[u8]) {
        let mut body = Vec::new();
        body.extend(self.u16(ifc));
        body.extend(self.u16(0));
        body.extend(self.u32((ticks >> 32) as u32));
        body.extend(self.u32(ticks as u32));
        body.extend(self.u32(data.len() as u32));
        body.extend(self.u32(data.len() as u32));
        body.extend(data);
        self.block(2, &body);
    }
}

#[test]
fn pcapng_sections_interfaces_and_resolutions() {
    let f = frame(7);
    let raw = &f[14..];
    let us = T0 / 1000;
    let mut ng = Ng { out: Vec::new(), be: false };
    ng.section(false);
    ng.idb(1, None); // Ethernet, µs
    ng.idb(101, Some(9)); // raw IP, ns
    ng.epb(0, us, &f);
    ng.epb(1, T0 + 5_000, raw);
    ng.spb(&f); // inherits the last timestamp
    ng.block(5, &[0; 8]); // an interface statistics block: skipped
    ng.section(true); // big-endian section, interfaces reset
    ng.idb(229, Some(0x80 | 20)); // raw IPv6 link type id, 2^-20 s ticks; we send IPv4 via interface 1
    ng.idb(228, Some(3)); // raw IPv4, ms
    ng.epb(1, T0 / 1_000_000, raw);
    ng.obsolete_pb(1, T0 / 1_000_000 + 1, raw);
    ng.epb(0, (us / 1_000_000) << 20, &[0x60]); // cut IPv6 header: a decode error
    let r = read_all(&ng.out).unwrap();
    assert!(r.bad.is_empty(), "{:?}", r.bad);
    assert_eq!(r.packets.len(), 5);
    assert_eq!(r.decode_errors.len(), 1, "{:?}", r.decode_errors);
    let ts: Vec<i64> = r.packets.iter().map(|p| p.ts_us).collect();
    let base = (T0 / 1000) as i64;
    assert_eq!(ts, vec![base, base + 5, base + 5, base, base + 1000]);
    assert!(r.packets.iter().all(|p| p.dst_ip4 == Some(0xC612_0007) && p.dst_port == Some(8)));
}

#[test]
fn packet_on_undeclared_interface_is_quarantined() {
    let f = frame(1);
    let mut ng = Ng { out: Vec::new(), be: false };
    ng.section(false);
    ng.idb(1, None);
    ng.epb(0, 1, &f);
    ng.epb(3, 2, &f);
    ng.epb(0, 3, &f);
    let r = read_all(&ng.out).unwrap();
    assert_eq!(r.packets.len(), 2);
    assert_eq!(r.bad.len(), 1);
    assert!(r.bad[0].reason.contains("interface 3"), "{}", r.bad[0].reason);
}

#[test]
fn absurd_record_length_resyncs_and_keeps_later_packets() {
    let fs = frames(20);
    let p = Pcap { be: false, nanos: false, modified: false };
    let mut bytes = p.file(&fs[..10]);
    let bad_at = bytes.len();
    // A record header claiming 16 MB, then 100 bytes of junk.
    bytes.extend(p.u32(1_793_491_200));
    bytes.extend(p.u32(0));
    bytes.extend(p.u32(16 << 20));
    bytes.extend(p.u32(16 << 20));
    bytes.extend((0..100u8).map(|i| i.wrapping_mul(37)));
    bytes.extend(&p.file(&fs[10..])[24..]);
    let r = read_all(&bytes).unwrap();
    assert_eq!(r.packets.len(), 20);
    assert_eq!(r.bad.len(), 1);
    assert_eq!(r.bad[0].offset, bad_at as u64);
    assert_eq!(r.bad[0].raw_len, 116);
    assert!(r.bad[0].reason.contains("absurd"), "{}", r.bad[0].reason);
}

#[test]
fn record_beyond_snap_length_is_quarantined_alone() {
    let mut fs = frames(5);
    fs[2].1 = vec![0u8; 70_000];
    let r = read_all(&Pcap { be: true, nanos: false, modified: false }.file(&fs)).unwrap();
    assert_eq!(r.packets.len(), 4);
    assert_eq!(r.bad.len(), 1);
    assert!(r.bad[0].reason.contains("snap length"), "{}", r.bad[0].reason);
}

#[test]
fn truncated_record_at_end_is_quarantined() {
    let bytes = Pcap { be: false, nanos: false, modified: false }.file(&frames(3));
    let r = read_all(&bytes[..bytes.len() - 10]).unwrap();
    assert_eq!(r.packets.len(), 2);
    assert_eq!(r.bad.len(), 1);
    assert!(r.bad[0].reason.contains("truncated"), "{}", r.bad[0].reason);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048), ng in any::<bool>()) {
        let mut v = if ng { vec![0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0] } else { vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0] };
        v.extend(bytes);
        let _ = read_all(&v);
    }

    #[test]
    fn a_cut_anywhere_keeps_every_packet_before_it(n in 1u32..30, cut_frac in 0.0f64..1.0, be in any::<bool>(), nanos in any::<bool>()) {
        let fs = frames(n);
        let p = Pcap { be, nanos, modified: false };
        let bytes = p.file(&fs);
        let cut = 24 + ((bytes.len() - 24) as f64 * cut_frac) as usize;
        let r = read_all(&bytes[..cut]).unwrap();
        let whole_records = {
            let mut at = 24;
            let mut k = 0;
            for (_, f) in &fs {
                if at + 16 + f.len() <= cut { k += 1; at += 16 + f.len(); } else { break; }
            }
            k
        };
        prop_assert_eq!(r.packets.len(), whole_records);
        prop_assert!(r.bad.len() <= 1);
        prop_assert!(r.decode_errors.is_empty());
    }

    #[test]
    fn garbage_between_records_keeps_all_packets(n in 2u32..20, at in 1usize..19, junk in proptest::collection::vec(any::<u8>(), 1..400)) {
        let at = at.min(n as usize - 1);
        let fs = frames(n);
        let p = Pcap { be: false, nanos: false, modified: false };
        let mut bytes = p.file(&fs[..at]);
        // Junk whose first 16 bytes are an absurd header so the reader must resync.
        bytes.extend(p.u32(1_793_491_200));
        bytes.extend(p.u32(0));
        bytes.extend(p.u32(u32::MAX));
        bytes.extend(p.u32(u32::MAX));
        bytes.extend(&junk);
        bytes.extend(&p.file(&fs[at..])[24..]);
        let r = read_all(&bytes).unwrap();
        prop_assert_eq!(r.packets.len(), n as usize);
        prop_assert!(!r.bad.is_empty());
        let quarantined: u64 = r.bad.iter().map(|b| b.raw_len).sum();
        prop_assert_eq!(quarantined, 16 + junk.len() as u64);
    }

    #[test]
    fn pcapng_garbage_between_blocks_keeps_all_packets(n in 2u32..12, junk in proptest::collection::vec(any::<u8>(), 1..300)) {
        let mut ng = Ng { out: Vec::new(), be: false };
        ng.section(false);
        ng.idb(1, None);
        for i in 0..n / 2 { ng.epb(0, i as u64, &frame(i)); }
        let mut bad = ng.u32(6).to_vec();
        bad.extend(ng.u32(13)); // not a multiple of 4: untrustworthy
        ng.out.extend(bad);
        ng.out.extend(&junk);
        for i in n / 2..n { ng.epb(0, i as u64, &frame(i)); }
        let r = read_all(&ng.out).unwrap();
        prop_assert_eq!(r.packets.len(), n as usize);
        prop_assert!(!r.bad.is_empty());
    }
}
