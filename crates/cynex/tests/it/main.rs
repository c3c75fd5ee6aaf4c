//! End-to-end tests of the `cynex` command as a user runs it: generate, ingest, query, maintain,
//! kill and resume, bad input, and DuckDB reading the same lake.

mod analysis;
mod browser;
mod bus;
mod cli;
mod eve;
mod follow;
mod interop;
mod members;
mod realtools;
mod serve;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn cynex(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cynex"))
        .arg("--data")
        .arg(data)
        .arg("--quiet")
        .args(args)
        .output()
        .expect("running cynex")
}

pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "cynex failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// A generated capture of `packets` over `hours`, with its truth file.
pub fn gen(dir: &Path, packets: u64, hours: u64, seed: u64) -> (PathBuf, serde_json::Value) {
    let pcap = dir.join(format!("cap-{seed}-{packets}.pcap"));
    ok(&cynex(
        dir,
        &[
            "gen",
            "darknet",
            "--out",
            pcap.to_str().unwrap(),
            "--packets",
            &packets.to_string(),
            "--duration",
            &format!("{hours}h"),
            "--seed",
            &seed.to_string(),
        ],
    ));
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{}.truth.json", pcap.display())).unwrap()).unwrap();
    (pcap, truth)
}

pub fn query_json(data: &Path, sql: &str) -> Vec<serde_json::Value> {
    let out = ok(&cynex(data, &["query", "--format", "json", sql]));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}"))
}

pub fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
}
