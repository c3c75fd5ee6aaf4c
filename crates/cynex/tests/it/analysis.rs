//! `cynex analyze`, `cynex stats` and `cynex report` as a user runs them.

use crate::{cynex, gen, ok, query_json};

#[test]
fn analyze_stats_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (pcap, truth) = gen(d, 200_000, 24, 5);
    let n = truth["packets"].as_u64().unwrap();
    ok(&cynex(d, &["ingest", "pcap", pcap.to_str().unwrap(), "--sensor", "t1"]));
    let mmdb = crate::corpus().join("mmdb/test-data");
    let (country_db, asn_db) = (mmdb.join("GeoIP2-Country-Test.mmdb"), mmdb.join("GeoLite2-ASN-Test.mmdb"));
    let out = ok(&cynex(
        d,
        &[
            "analyze",
            "--dark",
            "198.18.0.0/20",
            "--flush",
            "--geoip",
            country_db.to_str().unwrap(),
            "--geoip",
            asn_db.to_str().unwrap(),
        ],
    ));
    assert!(out.contains(&format!("analysed {} packets", cynex::output::thousands(n))), "{out}");
    assert!(out.contains("4,096 dark addresses"), "{out}");
    // Settings are kept with the state: a later run without them continues, one with other
    // settings is refused with advice.
    let again = ok(&cynex(d, &["analyze"]));
    assert!(again.contains("analysed 0 packets"), "{again}");
    let other = cynex(d, &["analyze", "--dark", "10.0.0.0/8"]);
    assert!(!other.status.success());
    assert!(String::from_utf8_lossy(&other.stderr).contains("--rebuild"), "{other:?}");

    // Statistics add up to the packets ingested, at every bin size.
    for bin in ["5m", "1h", "1d"] {
        let rows =
            query_json(d, &format!("SELECT sum(packets) AS n FROM stats WHERE sensor = 'all' AND bin = '{bin}'"));
        assert_eq!(rows[0]["n"].as_u64(), Some(n), "bin {bin}");
    }
    let stats = ok(&cynex(d, &["stats", "--bin", "1d", "--format", "json"]));
    assert!(stats.contains("\"packets\""), "{stats}");
    let table = ok(&cynex(d, &["stats"]));
    assert!(table.contains("== top 10 destination ports") && table.contains("| 23 "), "{table}");
    assert!(table.contains("mirai"), "{table}");
    assert!(table.contains("== top 10 source countries") && table.contains("== top 10 source ASNs"), "{table}");
    let broken = cynex(d, &["analyze", "--geoip", pcap.to_str().unwrap()]);
    assert!(!broken.status.success() && String::from_utf8_lossy(&broken.stderr).contains("GeoIP database"));

    // The report: self-contained HTML (no external resources) and JSON with the same numbers.
    let out_base = d.join("rep");
    let msg = ok(&cynex(
        d,
        &[
            "report",
            "--from",
            "2026-11-01T00:00:00Z",
            "--to",
            "2026-11-02T00:00:00Z",
            "--out",
            out_base.to_str().unwrap(),
        ],
    ));
    assert!(msg.contains("rep.html"), "{msg}");
    let html = std::fs::read_to_string(d.join("rep.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("Top 10 destination ports"));
    for external in ["src=\"http", "href=\"http", "<script", "@import", "url("] {
        assert!(!html.contains(external), "report is not self-contained: {external}");
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("rep.json")).unwrap()).unwrap();
    assert_eq!(json["current"]["packets"].as_u64(), Some(n));
    assert_eq!(json["current"]["top_ports"][0]["port"].as_u64(), Some(23));
    assert!(json["current"]["iot_share"].as_f64().unwrap() > 0.2);
    assert_eq!(json["previous"]["packets"].as_u64(), Some(0));
    assert!(json["change"]["packets"].is_null(), "no previous period to compare with");
    let surge = truth["surge"]["port"].as_u64().unwrap();
    assert!(json["surges"].as_array().unwrap().iter().any(|s| s["port"].as_u64() == Some(surge)), "{}", json["surges"]);
    let campaigns = json["campaigns"].as_array().unwrap();
    assert!(campaigns.iter().any(|c| c["ports"] == format!("{surge}/tcp")), "{campaigns:?}");
    assert!(html.contains("Scanning campaigns"));
}

/// `kill -9` during `cynex analyze`, at several moments, then a re-run: the findings are exactly
/// those of one clean run — nothing lost, nothing doubled — and the lake stays readable.
#[test]
fn killed_analysis_reruns_to_the_same_findings() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (pcap, _) = gen(d, 600_000, 24, 8);
    ok(&cynex(d, &["ingest", "pcap", pcap.to_str().unwrap(), "--sensor", "t1", "--commit-every", "100000"]));
    for delay_ms in [30u64, 120, 300, 600] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cynex"))
            .arg("--data")
            .arg(d)
            .args(["--quiet", "analyze", "--dark", "198.18.0.0/20", "--flush"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
    ok(&cynex(d, &["analyze", "--dark", "198.18.0.0/20", "--flush"]));
    ok(&cynex(
        d,
        &[
            "analyze",
            "--scope",
            "check",
            "--from",
            "2026-01-01T00:00:00Z",
            "--to",
            "2027-01-01T00:00:00Z",
            "--dark",
            "198.18.0.0/20",
        ],
    ));
    let rows = query_json(d, "SELECT count(*) AS n, count(DISTINCT id) AS ids FROM findings WHERE sensor = 'all'");
    assert_eq!(rows[0]["n"], rows[0]["ids"], "duplicated findings: {rows:?}");
    let diff = query_json(
        d,
        "SELECT count(*) AS n FROM (SELECT id, packets FROM findings WHERE sensor = 'all' EXCEPT \
         SELECT id, packets FROM findings WHERE sensor = 'check') UNION ALL SELECT count(*) FROM (SELECT id, packets \
         FROM findings WHERE sensor = 'check' EXCEPT SELECT id, packets FROM findings WHERE sensor = 'all')",
    );
    assert!(diff.iter().all(|r| r["n"].as_u64() == Some(0)), "findings differ from a clean run: {diff:?}");
    let n = query_json(d, "SELECT count(*) AS n FROM findings WHERE sensor = 'check'")[0]["n"].as_u64().unwrap();
    assert!(n > 100, "{n}");
    // Stats rows are not doubled either.
    let per_day = query_json(d, "SELECT count(*) AS n FROM stats WHERE sensor = 'all' AND bin = '1d'");
    assert_eq!(per_day[0]["n"].as_u64(), Some(1));
}
