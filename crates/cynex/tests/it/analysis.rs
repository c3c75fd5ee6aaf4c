//! `cynex analyze`, `cynex stats` and `cynex report` as a user runs them.

use crate::{cynex, gen, ok, query_json};

#[test]
fn analyze_stats_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (pcap, truth) = gen(d, 200_000, 24, 5);
    let n = truth["packets"].as_u64().unwrap();
    ok(&cynex(d, &["ingest", "pcap", pcap.to_str().unwrap(), "--sensor", "t1"]));
    let out = ok(&cynex(d, &["analyze", "--dark", "198.18.0.0/20", "--flush"]));
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
}
