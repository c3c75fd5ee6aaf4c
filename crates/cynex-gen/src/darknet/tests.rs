use super::*;

fn small(seed: u64) -> DarknetConfig {
    DarknetConfig { seed, packets: 20_000, duration_s: 6 * 3600, ..Default::default() }
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let (t1, a) = generate_darknet(&small(1), Vec::new()).unwrap();
    let (_, b) = generate_darknet(&small(1), Vec::new()).unwrap();
    let (_, c) = generate_darknet(&small(2), Vec::new()).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(t1.bytes as usize, a.len());
}

#[test]
fn truth_accounts_for_every_packet() {
    let (t, _) = generate_darknet(&small(3), Vec::new()).unwrap();
    let scanners: u64 = t.sources.iter().map(|s| s.packets).sum();
    let victims: u64 = t.victims.iter().map(|v| v.packets).sum();
    assert_eq!(scanners + victims + t.counts.background + t.counts.misconfig + t.counts.ipv6, t.packets);
    assert!(t.packets > 15_000 && t.packets <= 20_000, "{}", t.packets);
    for tool in [Tool::Mirai, Tool::Zmap, Tool::Zmap41, Tool::Masscan, Tool::Nmap, Tool::Unicornscan, Tool::Research] {
        assert!(t.sources.iter().any(|s| s.tool == tool), "no {tool:?} source");
    }
    assert!(t.victims.iter().any(|v| v.meets_dos_threshold));
    assert!(t.victims.iter().any(|v| !v.meets_dos_threshold));
    let surge = t.surge.unwrap();
    assert!(surge.packets > 0);
}

#[test]
fn pcapng_output_has_section_and_interface() {
    let cfg = DarknetConfig { format: CaptureFormat::PcapNg, ..small(4) };
    let (t, out) = generate_darknet(&cfg, Vec::new()).unwrap();
    assert_eq!(&out[..4], &[0x0a, 0x0d, 0x0d, 0x0a]);
    assert_eq!(t.bytes as usize, out.len());
}

#[test]
fn rejects_bad_config() {
    assert!(generate_darknet(&DarknetConfig { packets: 0, ..small(1) }, Vec::new()).is_err());
    let dark = Ipv4Net { addr: 0, len: 4 };
    assert!(generate_darknet(&DarknetConfig { dark, ..small(1) }, Vec::new()).is_err());
}
