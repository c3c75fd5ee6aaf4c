//! Real scanners, not our generator: nmap, masscan, zmap and hping3 run inside network
//! namespaces this test creates (scripts/realtool-capture; nothing leaves the machine), tcpdump
//! captures what reaches the dark side, and `cynex` must attribute each source to its tool and
//! find the hping3-simulated DDoS victim. Runs where the tools and `ip netns` are available
//! (scripts/setup installs them); elsewhere it says why it did not run.

use std::path::Path;
use std::process::Command;

use crate::{cynex, ok, query_json};

fn available() -> Result<(), String> {
    for tool in ["ip", "tcpdump", "nmap", "masscan", "zmap", "hping3"] {
        let found = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output();
        if !found.is_ok_and(|o| o.status.success()) {
            return Err(format!("{tool} is not installed"));
        }
    }
    let probe = format!("cxprobe{}", std::process::id());
    let made = Command::new("ip").args(["netns", "add", &probe]).output().map_err(|e| e.to_string())?;
    if !made.status.success() {
        return Err(format!("cannot create network namespaces: {}", String::from_utf8_lossy(&made.stderr)));
    }
    let _ = Command::new("ip").args(["netns", "del", &probe]).output();
    Ok(())
}

#[test]
fn real_scanners_are_attributed_and_backscatter_found() {
    if let Err(why) = available() {
        eprintln!("SKIPPED real-tool capture test: {why} (run scripts/setup as root)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pcap = d.join("real.pcap");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/realtool-capture");
    let cap = Command::new(script).arg(&pcap).arg("65").output().unwrap();
    assert!(cap.status.success(), "capture failed: {}", String::from_utf8_lossy(&cap.stderr));
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{}.json", pcap.display())).unwrap()).unwrap();
    let ingested = ok(&cynex(d, &["ingest", "pcap", pcap.to_str().unwrap(), "--sensor", "lab"]));
    assert!(ingested.contains("0 quarantined"), "{ingested}");
    // A member whose space holds the nmap scanner and the flooded victim (DAEDALUS on real tools).
    let lab = [meta["nmap"].as_str().unwrap(), meta["victim"].as_str().unwrap()];
    let prefixes: Vec<String> = lab.iter().map(|ip| format!("{}.0/24", ip.rsplit_once('.').unwrap().0)).collect();
    ok(&cynex(d, &["org", "add", "lab", "--prefix", &prefixes[0], "--prefix", &prefixes[1]]));
    ok(&cynex(d, &["analyze", "--dark", "198.18.0.0/24", "--flush"]));
    let alerts: Vec<serde_json::Value> =
        serde_json::from_str(&ok(&cynex(d, &["alerts", "list", "--org", "lab", "--json"]))).unwrap();
    let kinds: Vec<(String, String)> = alerts
        .iter()
        .map(|a| (a["kind"].as_str().unwrap().to_string(), a["subject"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(kinds.len(), 2, "one alert for the scanner, one for the victim: {kinds:?}");
    assert!(kinds.contains(&("infected-host".into(), lab[0].into())), "{kinds:?}");
    assert!(kinds.contains(&("ddos-victim".into(), lab[1].into())), "{kinds:?}");
    let scanner = alerts.iter().find(|a| a["kind"] == "infected-host").unwrap();
    assert!(scanner["evidence"]["tools"].to_string().contains("nmap"), "{scanner}");

    let tool_of = |ip: &str| -> Vec<String> {
        query_json(d, &format!("SELECT tool FROM findings WHERE kind = 'tool' AND ip4 = {}", ip4(ip)))
            .iter()
            .map(|r| r["tool"].as_str().unwrap().to_string())
            .collect()
    };
    for (tool, want) in [("nmap", "nmap"), ("masscan", "masscan"), ("zmap", "zmap")] {
        let ip = meta[tool].as_str().unwrap();
        assert_eq!(tool_of(ip), [want], "{tool} from {ip}");
    }
    // hping3's SYN sweep has no fingerprint: scan events, no attribution.
    let hping = meta["hping3"].as_str().unwrap();
    assert!(tool_of(hping).is_empty(), "hping3 attributed: {:?}", tool_of(hping));
    let scans =
        query_json(d, &format!("SELECT count(*) AS n FROM findings WHERE kind = 'scan' AND ip4 = {}", ip4(hping)));
    assert!(scans[0]["n"].as_u64().unwrap() >= 1, "{scans:?}");
    // Every scanner shows up as scan events on the ports it probed.
    let ports = query_json(
        d,
        &format!(
            "SELECT DISTINCT port FROM findings WHERE kind = 'scan' AND ip4 = {} ORDER BY port",
            ip4(meta["masscan"].as_str().unwrap())
        ),
    );
    let ports: Vec<u64> = ports.iter().map(|r| r["port"].as_u64().unwrap()).collect();
    assert_eq!(ports, [23, 80, 2323]);

    // The SYN-ACK backscatter of the flooded victim, for longer than 60 s: one attack.
    let victim = meta["victim"].as_str().unwrap();
    let bs = query_json(
        d,
        &format!("SELECT traffic, packets FROM findings WHERE kind = 'backscatter' AND ip4 = {}", ip4(victim)),
    );
    assert_eq!(bs.len(), 1, "{bs:?}");
    assert!(bs[0]["traffic"].as_str().unwrap().contains("synack"), "{bs:?}");
    let others = query_json(
        d,
        &format!("SELECT count(*) AS n FROM findings WHERE kind = 'backscatter' AND ip4 <> {}", ip4(victim)),
    );
    assert_eq!(others[0]["n"].as_u64(), Some(0), "no false victims");
}

fn ip4(s: &str) -> u32 {
    u32::from(s.parse::<std::net::Ipv4Addr>().unwrap())
}
