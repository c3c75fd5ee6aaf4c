//! `cynex ingest eve` and `cynex ingest zeek` on the corpus: counts add up, events are queryable,
//! a re-run is a no-op.

use crate::{corpus, cynex, ok, query_json};

#[test]
fn eve_corpus_into_events() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let eve = corpus().join("eve");
    let out = ok(&cynex(d, &["ingest", "eve", eve.to_str().unwrap(), "--sensor", "ids-1", "--org", "acme"]));
    assert!(out.contains("read 22 records: 21 events written, 1 quarantined"), "{out}");
    let rows = query_json(
        d,
        "SELECT event_type, count(*) AS n FROM events WHERE sensor = 'ids-1' GROUP BY event_type ORDER BY event_type",
    );
    let total: u64 = rows.iter().map(|r| r["n"].as_u64().unwrap()).sum();
    assert_eq!(total, 21);
    let alerts = query_json(
        d,
        "SELECT finding_info_title, severity_id, organisation FROM events WHERE class_uid = 2004 AND \
         finding_info_uid = '6' ORDER BY time",
    );
    assert!(!alerts.is_empty() && alerts[0]["finding_info_title"] == "Corrupted HTTP body", "{alerts:?}");
    assert_eq!(alerts[0]["organisation"], "acme");
    let q = query_json(d, "SELECT source, line, reason FROM quarantine WHERE format = 'eve'");
    assert_eq!(q.len(), 1);
    assert!(q[0]["source"].as_str().unwrap().ends_with("fever-jsonparse-broken.jsonl") && q[0]["line"] == 2, "{q:?}");
    let again = ok(&cynex(d, &["ingest", "eve", eve.to_str().unwrap(), "--sensor", "ids-1"]));
    assert!(again.contains("17 already in the lake"), "{again}");
}

#[test]
fn zeek_corpus_into_events() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let zeek = corpus().join("zeek");
    let out = ok(&cynex(d, &["ingest", "zeek", zeek.to_str().unwrap(), "--sensor", "zeek-1"]));
    // 3,560 TSV + 3,555 JSON + 8 edge-case rows; 34 bad rows and header lines quarantined.
    assert!(out.contains("read 7,157 records: 7,123 events written, 34 quarantined"), "{out}");
    let by_path =
        query_json(d, "SELECT event_type, count(*) AS n FROM events WHERE sensor = 'zeek-1' GROUP BY 1 ORDER BY 1");
    let n = |p: &str| by_path.iter().find(|r| r["event_type"] == p).map(|r| r["n"].as_u64().unwrap());
    assert_eq!((n("dns"), n("ssl"), n("x509"), n("conn")), (Some(2000), Some(2000), Some(696), Some(5)), "{by_path:?}");
    let q = query_json(d, "SELECT count(*) AS n FROM quarantine WHERE format = 'zeek' AND line IS NOT NULL");
    assert_eq!(q[0]["n"].as_u64(), Some(34));
}

#[test]
fn auto_tells_formats_apart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mix = d.join("mix");
    std::fs::create_dir_all(&mix).unwrap();
    for (from, to) in [
        ("eve/tenzir-http.jsonl", "a.json"),
        ("eve/telegraf-v2-alert-pretty.json", "b.json"),
        ("zeek/tsv/conn.log", "conn.log"),
        ("zeek/json/notice.ndjson", "notice.ndjson"),
        ("pcap/valid/dns_udp.pcap", "capture.bin"),
    ] {
        std::fs::copy(corpus().join(from), mix.join(to)).unwrap();
    }
    std::fs::write(mix.join("cowrie.json"), COWRIE_LINE).unwrap();
    std::fs::write(mix.join("notes.txt"), "hello\n").unwrap();
    let o = cynex(d, &["ingest", "auto", mix.to_str().unwrap(), "--sensor", "mixed"]);
    assert_eq!(o.status.code(), Some(3), "the unknown file makes exit 3: {o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot tell the format"), "{o:?}");
    let rows = query_json(d, "SELECT format, count(*) AS n FROM events GROUP BY format ORDER BY format");
    let n = |f: &str| rows.iter().find(|r| r["format"] == f).map(|r| r["n"].as_u64().unwrap());
    assert_eq!((n("cowrie"), n("eve"), n("zeek")), (Some(1), Some(2), Some(5 + 207)), "{rows:?}");
    // The capture (told by its magic, not its name) went to `packets`.
    let packets = query_json(d, "SELECT count(*) AS n FROM packets WHERE sensor = 'mixed'");
    assert!(packets[0]["n"].as_u64().unwrap() > 0, "{packets:?}");
}

const COWRIE_LINE: &str = r#"{"eventid":"cowrie.login.failed","username":"admin","password":"admin","message":"login attempt [admin/admin] failed","sensor":"hp1","timestamp":"2026-11-01T00:00:01.000000Z","src_ip":"203.0.113.9","session":"c0ffee000001"}
"#;

#[test]
fn generated_eve_ingests_completely() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("eve.json.zst");
    ok(&cynex(d, &["gen", "eve", "--out", log.to_str().unwrap(), "--events", "20000", "--seed", "3"]));
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{}.truth.json", log.display())).unwrap()).unwrap();
    let out = ok(&cynex(d, &["ingest", "eve", log.to_str().unwrap(), "--sensor", "gen"]));
    assert!(out.contains("read 20,000 records: 20,000 events written, 0 quarantined"), "{out}");
    let rows = query_json(d, "SELECT event_type, count(*) AS n FROM events GROUP BY 1 ORDER BY 1");
    for r in &rows {
        let t = r["event_type"].as_str().unwrap();
        assert_eq!(r["n"], truth["by_type"][t], "{t}");
    }
    let sids = query_json(
        d,
        "SELECT finding_info_uid AS sid, count(*) AS n FROM events WHERE class_uid = 2004 AND event_type = 'alert' GROUP BY 1",
    );
    for r in &sids {
        assert_eq!(r["n"], truth["alerts_by_sid"][r["sid"].as_str().unwrap()], "{r}");
    }
    assert!(!sids.is_empty());
    // Same seed, same bytes.
    let again = d.join("again.json.zst");
    ok(&cynex(d, &["gen", "eve", "--out", again.to_str().unwrap(), "--events", "20000", "--seed", "3"]));
    assert_eq!(std::fs::read(&log).unwrap(), std::fs::read(&again).unwrap());
}

#[test]
fn generated_zeek_and_cowrie_ingest_with_their_counts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let truth = |p: &std::path::Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(format!("{}.truth.json", p.display())).unwrap()).unwrap()
    };
    let conn = d.join("conn.log");
    let dns = d.join("dns.log.gz");
    ok(&cynex(d, &["gen", "zeek", "--out", conn.to_str().unwrap(), "--rows", "5000"]));
    ok(&cynex(d, &["gen", "zeek", "--log", "dns", "--out", dns.to_str().unwrap(), "--rows", "3000"]));
    let hp = d.join("cowrie.json");
    ok(&cynex(d, &["gen", "cowrie", "--out", hp.to_str().unwrap(), "--sessions", "800"]));
    let out = ok(&cynex(d, &["ingest", "zeek", conn.to_str().unwrap(), dns.to_str().unwrap(), "--sensor", "zeek"]));
    assert!(out.contains("read 8,000 records: 8,000 events written, 0 quarantined"), "{out}");
    let by = query_json(d, "SELECT event_type, count(*) AS n FROM events WHERE sensor = 'zeek' GROUP BY 1 ORDER BY 1");
    assert_eq!((by[0]["event_type"].as_str(), by[0]["n"].as_u64()), (Some("conn"), Some(5000)), "{by:?}");
    assert_eq!((by[1]["event_type"].as_str(), by[1]["n"].as_u64()), (Some("dns"), Some(3000)), "{by:?}");
    // Connection states agree with what the generator wrote.
    let s0 = query_json(d, "SELECT count(*) AS n FROM events WHERE event_type = 'conn' AND raw_data LIKE '%\tS0\t%'");
    assert_eq!(s0[0]["n"], truth(&conn)["by_kind"]["S0"]);

    let t = truth(&hp);
    let out = ok(&cynex(d, &["ingest", "cowrie", hp.to_str().unwrap(), "--sensor", "hp", "--org", "m1"]));
    let n = t["events"].as_u64().unwrap();
    assert!(out.contains(&format!("{},{:03} events written, 0 quarantined", n / 1000, n % 1000)), "{out}");
    let rows = query_json(d, "SELECT event_type, count(*) AS n FROM events WHERE sensor = 'hp' GROUP BY 1");
    for r in &rows {
        assert_eq!(r["n"], t["by_eventid"][r["event_type"].as_str().unwrap()], "{r}");
    }
    let sessions = query_json(d, "SELECT count(DISTINCT session_uid) AS n FROM events WHERE sensor = 'hp'");
    assert_eq!(sessions[0]["n"], t["sessions"]);
    let dl = query_json(
        d,
        "SELECT file_hashes_sha256 AS h, count(*) AS n FROM events WHERE event_type = 'cowrie.session.file_download' GROUP BY 1",
    );
    for r in &dl {
        assert_eq!(r["n"], t["downloads"][r["h"].as_str().unwrap()], "{r}");
    }
}
