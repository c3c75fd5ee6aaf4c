use std::time::{Duration, Instant};

use crate::{corpus, cynex, gen, ok, query_json};

#[test]
fn generate_ingest_query_and_reingest_is_a_noop() {
    let dir = tempfile::tempdir().unwrap();
    let (pcap, truth) = gen(dir.path(), 50_000, 6, 1);
    let n = truth["packets"].as_u64().unwrap();
    let out = ok(&cynex(dir.path(), &["ingest", "pcap", pcap.to_str().unwrap(), "--sensor", "t1"]));
    assert!(out.contains(&format!("{} packets written", cynex::output::thousands(n))), "{out}");
    let rows = query_json(dir.path(), "SELECT count(*) AS n, count(DISTINCT hour) AS hours FROM packets");
    assert_eq!(rows[0]["n"].as_u64(), Some(n));
    assert_eq!(rows[0]["hours"].as_u64(), Some(6));
    // Same input again, and again under another name: nothing new.
    let copy = dir.path().join("copy.pcap");
    std::fs::copy(&pcap, &copy).unwrap();
    let out =
        ok(&cynex(dir.path(), &["ingest", "pcap", pcap.to_str().unwrap(), copy.to_str().unwrap(), "--sensor", "t1"]));
    assert!(out.contains("2 already in the lake"), "{out}");
    assert_eq!(query_json(dir.path(), "SELECT count(*) AS n FROM packets")[0]["n"].as_u64(), Some(n));
    // Mirai bots planted by the generator are all seen with the seq == dst fingerprint.
    let mirai: Vec<&str> = truth["sources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["tool"] == "mirai")
        .map(|s| s["ip"].as_str().unwrap())
        .collect();
    let seen = query_json(dir.path(), "SELECT count(DISTINCT src_ip4) AS n FROM packets WHERE fp & 4 > 0");
    assert_eq!(seen[0]["n"].as_u64(), Some(mirai.len() as u64));
    // Output formats.
    let csv = ok(&cynex(
        dir.path(),
        &[
            "query",
            "--format",
            "csv",
            "SELECT dst_port, count(*) AS c FROM packets WHERE proto = 6 GROUP BY 1 ORDER BY 2 DESC LIMIT 3",
        ],
    ));
    assert!(csv.starts_with("dst_port,c\n23,"), "{csv}");
    let table = ok(&cynex(dir.path(), &["query", "SELECT ip4_str(ip4('198.18.0.1')) AS a"]));
    assert!(table.contains("198.18.0.1"), "{table}");
}

#[test]
fn compressed_and_pcapng_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let caps = d.join("captures");
    std::fs::create_dir(&caps).unwrap();
    for (name, fmt) in [("a.pcap.gz", "pcap"), ("b.pcapng.zst", "pcapng")] {
        let p = caps.join(name);
        let truth = d.join(format!("{name}.truth.json"));
        ok(&cynex(
            d,
            &[
                "gen",
                "darknet",
                "--out",
                p.to_str().unwrap(),
                "--truth",
                truth.to_str().unwrap(),
                "--packets",
                "5000",
                "--duration",
                "1h",
                "--format",
                fmt,
                "--seed",
                if fmt == "pcap" { "5" } else { "6" },
            ],
        ));
    }
    let out = ok(&cynex(d, &["ingest", "pcap", caps.to_str().unwrap(), "--sensor", "z"]));
    assert!(out.contains("ingested 2 of 2") && out.contains(", 0 quarantined"), "{out}");
    let t1: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("a.pcap.gz.truth.json")).unwrap()).unwrap();
    let t2: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("b.pcapng.zst.truth.json")).unwrap()).unwrap();
    let n = t1["packets"].as_u64().unwrap() + t2["packets"].as_u64().unwrap();
    assert_eq!(query_json(d, "SELECT count(*) AS n FROM packets")[0]["n"].as_u64(), Some(n));
}

#[test]
fn malformed_corpus_exits_3_and_quarantines_with_places() {
    let dir = tempfile::tempdir().unwrap();
    let bad = corpus().join("pcap/malformed");
    let o = cynex(dir.path(), &["ingest", "pcap", bad.to_str().unwrap(), "--sensor", "bad"]);
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("9 unreadable"), "{out}");
    let rows = query_json(dir.path(), "SELECT source, \"offset\", reason FROM quarantine ORDER BY source");
    assert_eq!(rows.len(), 12, "{rows:?}");
    assert!(rows
        .iter()
        .any(|r| r["source"].as_str().unwrap().ends_with("pcapng-packet-before-idb.pcapng") && r["offset"] == 28));
    // read = written + quarantined, per the summary.
    let summary = out.lines().find(|l| l.contains("records:")).unwrap();
    assert!(summary.contains("read 16 records: 4 packets written, 12 quarantined"), "{summary}");
    // A re-run adds no quarantine rows and still reports the unreadable inputs.
    let o = cynex(dir.path(), &["ingest", "pcap", bad.to_str().unwrap(), "--sensor", "bad"]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(query_json(dir.path(), "SELECT count(*) AS n FROM quarantine")[0]["n"].as_u64(), Some(12));
    // A missing path is an error for that path only.
    let o = cynex(dir.path(), &["ingest", "pcap", "/nonexistent/x.pcap", "--sensor", "bad"]);
    assert_eq!(o.status.code(), Some(3));
}

#[test]
fn valid_corpus_ingests() {
    let dir = tempfile::tempdir().unwrap();
    let valid = corpus().join("pcap/valid");
    let out = ok(&cynex(dir.path(), &["ingest", "pcap", valid.to_str().unwrap(), "--sensor", "corpus"]));
    assert!(out.contains("ingested 26 of 26"), "{out}");
    assert!(out.contains(", 0 quarantined"), "{out}");
}

#[test]
fn killed_ingest_resumes_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (pcap, truth) = gen(d, 400_000, 2, 7);
    let n = truth["packets"].as_u64().unwrap();
    let commits = d.join("lake/_commits");
    // Several attempts at killing at different points; the last run completes the input.
    for wait_commits in [1usize, 3] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cynex"))
            .args([
                "--data",
                d.to_str().unwrap(),
                "--quiet",
                "ingest",
                "pcap",
                pcap.to_str().unwrap(),
                "--sensor",
                "k",
                "--commit-every",
                "30000",
            ])
            .spawn()
            .unwrap();
        let start = Instant::now();
        loop {
            let c = std::fs::read_dir(&commits)
                .map(|r| r.filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".json")).count())
                .unwrap_or(0);
            if c >= wait_commits || start.elapsed() > Duration::from_secs(60) || child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
    let out = ok(&cynex(d, &["ingest", "pcap", pcap.to_str().unwrap(), "--sensor", "k"]));
    assert!(out.contains("ingested 1 of 1") || out.contains("already in the lake"), "{out}");
    let rows = query_json(d, "SELECT count(*) AS n, count(DISTINCT ts) AS t FROM packets");
    assert_eq!(rows[0]["n"].as_u64(), Some(n), "lost or duplicated packets");
    let distinct_ts = rows[0]["t"].as_u64().unwrap();
    assert!(distinct_ts > n * 99 / 100);
    // No staging garbage is left once a writer has opened the lake again.
    assert_eq!(std::fs::read_dir(d.join("lake/_staging")).unwrap().count(), 0);
}

#[test]
fn lake_stats_compact_prune_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (pcap, truth) = gen(d, 60_000, 3, 3);
    let n = truth["packets"].as_u64().unwrap();
    ok(&cynex(d, &["ingest", "pcap", pcap.to_str().unwrap(), "--sensor", "s", "--commit-every", "10000"]));
    let stats: serde_json::Value =
        serde_json::from_str(&ok(&cynex(d, &["lake", "stats", "--format", "json"]))).unwrap();
    assert_eq!(stats[0]["rows"].as_u64(), Some(n));
    let files_before = stats[0]["files"].as_u64().unwrap();
    let out = ok(&cynex(d, &["lake", "compact"]));
    assert!(out.contains("compacted 3 partition(s)"), "{out}");
    let stats: serde_json::Value =
        serde_json::from_str(&ok(&cynex(d, &["lake", "stats", "--format", "json"]))).unwrap();
    assert!(stats[0]["files"].as_u64().unwrap() < files_before);
    assert_eq!(stats[0]["rows"].as_u64(), Some(n));
    // The generated data is from 2026-11-01; pruning data older than 1 week removes nothing
    // newer than a week ago and everything older.
    let out = ok(&cynex(d, &["lake", "prune", "--older-than", "3650d"]));
    assert!(out.contains("0 file(s)"), "{out}");
    let table = ok(&cynex(d, &["lake", "stats"]));
    assert!(table.contains("packets"), "{table}");
}

#[test]
fn broken_pipe_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (pcap, _) = gen(d, 20_000, 1, 4);
    ok(&cynex(d, &["ingest", "pcap", pcap.to_str().unwrap(), "--sensor", "s"]));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cynex"))
        .args(["--data", d.to_str().unwrap(), "query", "--format", "csv", "SELECT * FROM packets"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The README's first command, smaller and without serving: every step runs and says what it
/// found, the credentials it prints work, and running it again changes nothing but the passwords.
#[test]
fn demo_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = ok(&cynex(d, &["demo", "--packets", "100000", "--days", "2", "--no-serve"]));
    for step in [
        "[1/7",
        "synthesizing 2 days",
        "IDS events (demo-isp)",
        "honeypot sessions (demo-univ)",
        "[2/7",
        "demo-darknet:",
        "ids-isp-1:",
        "hp-univ-1:",
        "[3/7",
        "[4/7",
        "alerts for demo-isp",
        "[5/7",
        "scanner indicators",
        "[6/7",
        "report.html",
        "log in with",
        "operator",
        "isp",
        "univ",
    ] {
        assert!(out.contains(step), "missing {step:?} in:\n{out}");
    }
    assert!(d.join("demo/report.html").exists());
    let pw = |out: &str, user: &str| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(user).map(|r| r.split_whitespace().next().unwrap().to_string()))
            .unwrap()
    };
    let first = pw(&out, "isp ");
    let again = ok(&cynex(d, &["demo", "--packets", "100000", "--days", "2", "--no-serve"]));
    assert_ne!(pw(&again, "isp "), first, "a new password each run");
    assert!(again.contains("(0 objects new or versioned)"), "publishing again adds nothing:\n{again}");
    let users = ok(&cynex(d, &["user", "list"]));
    assert_eq!(users.matches("demo-").count(), 2, "{users}");
}
