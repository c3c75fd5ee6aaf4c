//! DuckDB (PyPI) reading the lake as it is gives the same answers as `cynex query`.

use std::process::Command;

use crate::{cynex, gen, ok};

/// Whether DuckDB can be used; CI installs it (scripts/setup), elsewhere say why nothing is checked.
fn duckdb_available() -> bool {
    if Command::new("python3").args(["-c", "import duckdb"]).status().is_ok_and(|s| s.success()) {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "duckdb is not installed; run scripts/setup");
    eprintln!("skipping: python3 -c 'import duckdb' failed; run scripts/setup");
    false
}

#[test]
fn duckdb_gives_identical_answers() {
    if !duckdb_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (pcap, _) = gen(d, 80_000, 6, 11);
    ok(&cynex(d, &["ingest", "pcap", pcap.to_str().unwrap(), "--sensor", "duck", "--commit-every", "20000"]));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/interop/duckdb_agrees.py");
    let o = Command::new("python3").args([script, env!("CARGO_BIN_EXE_cynex"), d.to_str().unwrap()]).output().unwrap();
    assert!(
        o.status.success(),
        "DuckDB disagrees:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.matches("ok:").count(), 5, "{out}");
}

/// Scan events written as SQL in DuckDB (bench/scan_events_duckdb.py: the same sessionisation
/// and thresholds) agree with `cynex analyze` within 2% — both count unique destinations with
/// HyperLogLog, so events right at the 10-destination threshold may fall either way. Several
/// commits (several files per hour, written by two encoder threads) make the analysis merge
/// files by time; reading them one after another would split events.
#[test]
fn duckdb_scan_events_agree_with_analyze() {
    if !duckdb_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (pcap, _) = gen(d, 400_000, 24, 13);
    ok(&cynex(d, &["ingest", "pcap", pcap.to_str().unwrap(), "--sensor", "duck", "--commit-every", "50000"]));
    ok(&cynex(d, &["analyze", "--dark", "198.18.0.0/20", "--flush"]));
    let ours = crate::query_json(d, "SELECT count(*) AS n FROM findings WHERE kind = 'scan'")[0]["n"].as_u64().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/scan_events_duckdb.py");
    let o = Command::new("python3").args([script, d.join("lake/packets").to_str().unwrap()]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let theirs: u64 = out.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{out}"));
    let diff = (ours as f64 - theirs as f64).abs() / theirs.max(1) as f64;
    assert!(theirs > 500 && diff < 0.02, "cynex {ours} scan events, DuckDB {theirs} ({:.2}% apart)", diff * 100.0);
}
