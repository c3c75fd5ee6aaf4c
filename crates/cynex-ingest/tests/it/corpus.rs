//! Every capture in corpus/pcap/valid reads without a bad record; every one in malformed/ is
//! refused or quarantined with a reason, never a panic.

use crate::{corpus, read_all};

fn files(dir: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(corpus().join(dir)).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

#[test]
fn valid_captures_read_completely() {
    let mut total = 0;
    for f in files("pcap/valid") {
        let bytes = std::fs::read(&f).unwrap();
        let r = read_all(&bytes).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(r.bad.is_empty(), "{}: {:?}", f.display(), r.bad);
        assert!(r.decode_errors.is_empty(), "{}: {:?}", f.display(), r.decode_errors);
        assert!(!r.packets.is_empty() || f.ends_with("pcapng-126-idbs-mixed-linktypes.pcapng"), "{}", f.display());
        total += r.packets.len();
    }
    assert!(total > 200, "{total}");
}

#[test]
fn expected_packet_counts() {
    // Counts from the corpus README (and tcpdump's outputs).
    for (name, n) in [
        ("802.1ad_QinQ.pcap", 2),
        ("http-qinq-0.pcap", 14),
        ("http-vlan-0.pcap", 14),
        ("icmp-5-pings.pcap", 10),
        ("icmpv6.pcap", 5),
        ("ipv4-fragmented-ntp.pcap", 3),
        ("ipv6-fragmented-dns.pcap", 8),
        ("ipv6-tcp-smtp.pcap", 17),
        ("linux_dlt_sll2.pcap", 6),
        ("linuxsll-arp.pcap", 12),
    ] {
        let r = read_all(&std::fs::read(corpus().join("pcap/valid").join(name)).unwrap()).unwrap();
        assert_eq!(r.packets.len(), n, "{name}");
    }
}

#[test]
fn decoded_details() {
    let read = |n: &str| read_all(&std::fs::read(corpus().join("pcap/valid").join(n)).unwrap()).unwrap();
    // SLL2: ARP and RARP, 2 ICMP, 2 ICMPv6.
    let r = read("linux_dlt_sll2.pcap");
    let kinds: Vec<_> = r.packets.iter().map(|p| (p.ip_version, p.proto, p.ethertype)).collect();
    let non_ip: Vec<_> = kinds.iter().filter_map(|k| k.2).collect();
    assert_eq!(non_ip, vec![0x0806, 0x8035], "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| k.1 == Some(1)).count(), 2, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| k.1 == Some(58)).count(), 2, "{kinds:?}");
    // IPv4 fragments: all tagged, the non-first one has no ports.
    let r = read("ipv4-fragmented-ntp.pcap");
    assert!(r.packets.iter().all(|p| p.tags & cynex_model::tags::FRAGMENT != 0));
    assert!(r.packets.iter().any(|p| p.frag_offset == Some(48) && p.src_port.is_none()));
    assert!(r.packets.iter().any(|p| p.frag_offset == Some(0) && (p.src_port == Some(123) || p.dst_port == Some(123))));
    // IPv6 fragments: the fragment header is walked, ident kept.
    let r = read("ipv6-fragmented-dns.pcap");
    assert!(r.packets.iter().filter(|p| p.tags & cynex_model::tags::FRAGMENT != 0).count() >= 4);
    // Hop-by-hop options before ICMPv6.
    let r = read("icmpv6.pcap");
    assert!(r.packets.iter().all(|p| p.proto == Some(58) && p.icmp_type.is_some()));
    // Snap length 68 cuts TCP options: the core header is kept, the signature says so.
    let r = read("tcp-truncated-snaplen68.pcap");
    assert!(r.packets.iter().any(|p| p.tcp_opts.is_some_and(|s| s.as_str().ends_with('~'))));
    assert!(r.packets.iter().all(|p| p.tags & cynex_model::tags::BAD_OPTIONS == 0));
    // ICMP echo pairs: replies are backscatter-shaped, requests are not.
    let r = read("icmp-5-pings.pcap");
    let replies = r.packets.iter().filter(|p| p.icmp_type == Some(0)).count();
    let bs = r.packets.iter().filter(|p| p.tags & cynex_model::tags::BACKSCATTER != 0).count();
    assert_eq!((replies, bs), (5, 5));
    // pcapng multi-interface: packets on both interfaces.
    let r = read("pcapng-multi-interface.pcapng");
    assert!(!r.packets.is_empty());
    // Both byte orders of the same pcapng give the same packets.
    assert_eq!(read("test001-be.pcapng").packets, read("test001-le.pcapng").packets);
}

#[test]
fn malformed_captures_are_refused_or_quarantined_with_reasons() {
    for f in files("pcap/malformed") {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(&f).unwrap();
        let outcome = read_all(&bytes);
        let expect_refused = [
            "err-eof-truncated-epb.bin",
            "linktype-reserved-field-not-zero.pcap",
            "pcap-empty-file.pcap",
            "pcap-invalid-version-1.pcap",
            "pcap-invalid-version-2.pcap",
            "pcap-truncated-hdr-23.pcap",
            "pcapng-invalid-vers-1.pcapng",
            "pcapng-truncated-shb.pcapng",
            "shb-option-too-long.pcapng",
        ];
        match outcome {
            Err(reason) => {
                assert!(expect_refused.contains(&name.as_str()), "{name} refused: {reason}");
                assert!(!reason.is_empty());
            }
            Ok(r) => {
                assert!(!expect_refused.contains(&name.as_str()), "{name} was read");
                match name.as_str() {
                    "pcapng-block-len-not-mult4.pcapng" => {
                        assert!(r.bad[0].reason.contains("not a multiple of 4"), "{:?}", r.bad)
                    }
                    "pcapng-block-len-too-small.pcapng" => assert!(r.bad[0].reason.contains("< 12"), "{:?}", r.bad),
                    "pcapng-packet-before-idb.pcapng" => {
                        assert!(r.bad[0].reason.contains("before any interface"), "{:?}", r.bad);
                        assert_eq!(r.bad[0].offset, 28);
                    }
                    "pcapng-no-idb.pcapng" => assert!(r.packets.is_empty() && r.bad.is_empty()),
                    // Bad-but-readable files from tcpdump's tests: the packets are kept.
                    "lisp_invalid_length.pcap" => assert_eq!(r.packets.len(), 1),
                    "timestamp_invalid_nano.pcap" => assert_eq!(r.packets.len(), 3),
                    other => panic!("unexpected malformed file {other}"),
                }
            }
        }
    }
}
