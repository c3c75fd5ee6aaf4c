//! DuckDB (PyPI) reading the lake as it is gives the same answers as `cynex query`.

use std::process::Command;

use crate::{cynex, gen, ok};

fn duckdb_available() -> bool {
    Command::new("python3").args(["-c", "import duckdb"]).status().is_ok_and(|s| s.success())
}

#[test]
fn duckdb_gives_identical_answers() {
    if !duckdb_available() {
        // CI installs duckdb (scripts/setup); elsewhere say why nothing was checked.
        assert!(std::env::var_os("CI").is_none(), "duckdb is not installed; run scripts/setup");
        eprintln!("skipping: python3 -c 'import duckdb' failed; run scripts/setup");
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
