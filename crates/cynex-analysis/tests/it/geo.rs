//! GeoIP enrichment against MaxMind's own test databases and their JSON sources (the ground
//! truth), and the malformed databases: an error naming the file, never a panic.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use cynex_analysis::geo::Geo;

fn mmdb(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/mmdb").join(rel)
}

/// The first IPv4 address of every IPv4 network in a MaxMind source JSON, with its record.
fn ipv4_records(source: &str) -> Vec<(Ipv4Addr, serde_json::Value)> {
    let text = std::fs::read_to_string(mmdb(&format!("source-data/{source}"))).unwrap();
    let v: Vec<serde_json::Map<String, serde_json::Value>> = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for m in v {
        for (net, rec) in m {
            let addr = net.split('/').next().unwrap().trim_start_matches("::");
            if let Ok(a) = addr.parse::<Ipv4Addr>() {
                out.push((a, rec));
            }
        }
    }
    out
}

#[test]
fn country_and_asn_match_the_source_records() {
    let geo =
        Geo::open(&[mmdb("test-data/GeoIP2-Country-Test.mmdb"), mmdb("test-data/GeoLite2-ASN-Test.mmdb")]).unwrap();
    let countries = ipv4_records("GeoIP2-Country-Test.json");
    assert!(countries.len() >= 10, "{}", countries.len());
    for (ip, rec) in &countries {
        let want = rec["country"]["iso_code"].as_str().or(rec["registered_country"]["iso_code"].as_str());
        assert_eq!(geo.lookup(IpAddr::V4(*ip)).country.as_deref(), want, "{ip}");
    }
    let asns = ipv4_records("GeoLite2-ASN-Test.json");
    assert!(asns.len() >= 10, "{}", asns.len());
    for (ip, rec) in &asns {
        let g = geo.lookup(IpAddr::V4(*ip));
        assert_eq!(g.asn.map(u64::from), rec["autonomous_system_number"].as_u64(), "{ip}");
        assert_eq!(g.as_org.as_deref(), rec["autonomous_system_organization"].as_str(), "{ip}");
    }
    // An address in neither database: nothing, and no error.
    let none = geo.lookup(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)));
    assert_eq!((none.country, none.asn), (None, None));
    assert_eq!(geo.decode_errors(), 0);
}

#[test]
fn city_databases_give_countries_too() {
    let geo = Geo::open(&[mmdb("test-data/GeoIP2-City-Test.mmdb")]).unwrap();
    assert_eq!(geo.lookup("81.2.69.160".parse().unwrap()).country.as_deref(), Some("GB"));
}

#[test]
fn two_databases_of_one_kind_are_refused() {
    let e = Geo::open(&[mmdb("test-data/GeoIP2-Country-Test.mmdb"), mmdb("test-data/GeoIP2-City-Test.mmdb")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("same kind"), "{e}");
}

#[test]
fn malformed_databases_fail_cleanly() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(mmdb("bad-data")).unwrap().map(|e| e.unwrap().path()).collect();
    for broken in [
        "GeoIP2-City-Test-Broken-Double-Format.mmdb",
        "GeoIP2-City-Test-Invalid-Node-Count.mmdb",
        "MaxMind-DB-test-broken-pointers-24.mmdb",
        "MaxMind-DB-test-broken-search-tree-24.mmdb",
    ] {
        files.push(mmdb(&format!("test-data/{broken}")));
    }
    files.push(mmdb("no-such-file.mmdb"));
    let probes: Vec<IpAddr> = (0..=255u8).map(|i| IpAddr::V4(Ipv4Addr::new(i, i, 1, 2))).collect();
    for f in files {
        match Geo::open(std::slice::from_ref(&f)) {
            Err(e) => {
                let e = e.to_string();
                assert!(e.contains(&*f.file_name().unwrap().to_string_lossy()), "{e}");
            }
            // Opened: lookups may fail, counted, but never panic.
            Ok(g) => {
                for ip in &probes {
                    let _ = g.lookup(*ip);
                }
            }
        }
    }
}

#[test]
fn findings_are_enriched_with_country_and_as() {
    let geo =
        Geo::open(&[mmdb("test-data/GeoIP2-Country-Test.mmdb"), mmdb("test-data/GeoLite2-ASN-Test.mmdb")]).unwrap();
    let finding = |ip: &str| cynex_analysis::Finding {
        id: "x".into(),
        kind: "scan".into(),
        time: 0,
        end_time: 0,
        ip4: Some(u32::from(ip.parse::<Ipv4Addr>().unwrap())),
        port: None,
        proto: None,
        traffic: None,
        tool: None,
        label: None,
        packets: 1,
        uniques: None,
        unique_24s: None,
        rate: None,
        score: None,
        evidence: serde_json::json!({}),
        country: None,
        asn: None,
        as_org: None,
    };
    let mut fs = vec![finding("81.2.69.160"), finding("1.128.0.1"), finding("198.18.0.1")];
    geo.enrich(&mut fs);
    assert_eq!(fs[0].country.as_deref(), Some("GB"));
    assert_eq!((fs[1].asn, fs[1].as_org.as_deref()), (Some(1221), Some("Telstra Pty Ltd")));
    assert_eq!((fs[2].country.as_deref(), fs[2].asn), (None, None));
}
