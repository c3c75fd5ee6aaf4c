//! The synthesizer's scanners carry their tools' real header traits, as our decoder sees them:
//! each planted source's packets are checked against its tool's rule.

use std::collections::HashMap;

use cynex_gen::darknet::Tool;
use cynex_gen::{generate_darknet, DarknetConfig};
use cynex_model::{fp, tags, PacketRecord};

use crate::read_all;

#[test]
fn generated_sources_carry_their_tools_traits() {
    let cfg = DarknetConfig { packets: 200_000, duration_s: 6 * 3600, seed: 21, ..Default::default() };
    let (truth, bytes) = generate_darknet(&cfg, Vec::new()).unwrap();
    let r = read_all(&bytes).unwrap();
    assert!(r.bad.is_empty() && r.decode_errors.is_empty());
    assert_eq!(r.packets.len() as u64, truth.packets);
    let mut by_src: HashMap<u32, Vec<&PacketRecord>> = HashMap::new();
    for p in &r.packets {
        if let Some(s) = p.src_ip4 {
            by_src.entry(s).or_default().push(p);
        }
    }
    for s in &truth.sources {
        let ip = u32::from(s.ip.parse::<std::net::Ipv4Addr>().unwrap());
        let pk = &by_src[&ip];
        assert_eq!(pk.len() as u64, s.packets, "{}", s.ip);
        let all = |f: &dyn Fn(&PacketRecord) -> bool| pk.iter().all(|p| f(p));
        let ctx = format!("{:?} source {}", s.tool, s.ip);
        assert!(all(&|p| p.tcp_flags == Some(0x02) && cfg.dark.contains(p.dst_ip4.unwrap())), "{ctx}");
        match s.tool {
            Tool::Mirai => {
                assert!(all(&|p| p.fp & fp::MIRAI != 0 && matches!(p.dst_port, Some(23 | 2323))), "{ctx}");
                assert!(all(&|p| p.tcp_window == pk[0].tcp_window && p.src_port == pk[0].src_port), "{ctx}");
            }
            Tool::Zmap => assert!(all(&|p| p.fp & fp::ZMAP != 0 && p.tcp_window == Some(65_535)), "{ctx}"),
            Tool::Zmap41 | Tool::Research => {
                assert!(all(&|p| p.tcp_window == Some(65_535) && p.tcp_opts.unwrap().as_str() == "MNWNNS"), "{ctx}");
                assert!(pk.iter().filter(|p| p.fp & fp::ZMAP != 0).count() * 100 <= pk.len().max(100), "{ctx}");
            }
            Tool::Masscan => {
                assert!(all(&|p| p.fp & (fp::MASSCAN | fp::CORSARO_LSS) == fp::MASSCAN | fp::CORSARO_LSS), "{ctx}")
            }
            Tool::Nmap => {
                assert!(all(&|p| p.fp & fp::NMAP_SYN != 0 && (37..=59).contains(&p.ttl.unwrap())), "{ctx}");
                assert!(all(&|p| p.tcp_seq == pk[0].tcp_seq && p.src_port == pk[0].src_port), "{ctx}");
            }
            Tool::Unicornscan => {
                assert!(all(&|p| p.fp & fp::UNICORN != 0), "{ctx}");
                // seq ^ bswap(dst) ^ ((dport << 16) + sport) is constant per scan.
                let k = |p: &PacketRecord| {
                    p.tcp_seq.unwrap()
                        ^ p.dst_ip4.unwrap().swap_bytes()
                        ^ (((p.dst_port.unwrap() as u32) << 16).wrapping_add(p.src_port.unwrap() as u32))
                };
                assert!(all(&|p| k(p) == k(pk[0])), "{ctx}");
            }
            Tool::Unknown => assert!(all(&|p| p.dst_port == Some(cfg.surge_port)), "{ctx}"),
        }
    }
    // Every victim's packets are backscatter.
    for v in &truth.victims {
        let ip = u32::from(v.ip.parse::<std::net::Ipv4Addr>().unwrap());
        let n = r
            .packets
            .iter()
            .filter(|p| p.tags & tags::BACKSCATTER != 0 && (p.src_ip4 == Some(ip) || p.inner_dst_ip4 == Some(ip)))
            .count() as u64;
        assert_eq!(n, v.packets, "victim {}", v.ip);
    }
}
