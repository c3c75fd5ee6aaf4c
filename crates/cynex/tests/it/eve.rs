//! `cynex ingest eve` on the corpus: counts add up, events are queryable, a re-run is a no-op.

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
