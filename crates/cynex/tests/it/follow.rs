//! `cynex ingest eve --follow`: a log written while it is followed, with lines written in two
//! halves, a rename rotation (the writer keeps appending to the renamed file for a while), a
//! copy-truncate rotation and a follower killed with SIGKILL and restarted. Every line lands once.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::query_json;

fn line(i: u32) -> String {
    format!(
        "{{\"timestamp\":\"2026-11-01T00:{:02}:{:02}.000000+0000\",\"event_type\":\"dns\",\"src_ip\":\"10.0.0.1\",\
         \"src_port\":{},\"dest_ip\":\"10.0.0.53\",\"dest_port\":53,\"proto\":\"UDP\",\
         \"dns\":{{\"type\":\"query\",\"rrname\":\"q{i}.example\",\"rrtype\":\"A\"}}}}\n",
        (i / 60) % 60,
        i % 60,
        1024 + i
    )
}

fn append(path: &Path, from: u32, to: u32) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    for i in from..to {
        f.write_all(line(i).as_bytes()).unwrap();
        if i % 25 == 0 {
            f.flush().unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn follower(data: &Path, log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cynex"))
        .arg("--data")
        .arg(data)
        .args(["--quiet", "ingest", "eve", "--follow", "--poll-ms", "50", "--idle-exit", "3", "--sensor", "tail"])
        .args(["--compact-every", "4"])
        .arg(log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn settle() {
    std::thread::sleep(Duration::from_millis(300));
}

#[test]
fn follow_survives_partial_lines_rotation_and_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let log = logs.join("eve.json");
    std::fs::write(&log, b"").unwrap();

    let mut first = follower(&data, &log);
    append(&log, 0, 100);
    // A line written in two halves, with a poll in between.
    let half = line(100);
    let (a, b) = half.split_at(40);
    std::fs::OpenOptions::new().append(true).open(&log).unwrap().write_all(a.as_bytes()).unwrap();
    settle();
    std::fs::OpenOptions::new().append(true).open(&log).unwrap().write_all(b.as_bytes()).unwrap();
    append(&log, 101, 200);
    settle();
    first.kill().unwrap();
    first.wait().unwrap();

    let second = follower(&data, &log);
    append(&log, 200, 300);
    settle();
    // Rename rotation: the writer finishes a few lines into the old file, then opens a new one.
    let rotated = logs.join("eve.json.1");
    std::fs::rename(&log, &rotated).unwrap();
    append(&rotated, 300, 320);
    append(&log, 320, 450);
    settle();
    // Copy-truncate rotation.
    std::fs::copy(&log, logs.join("eve.json.2")).unwrap();
    std::fs::OpenOptions::new().write(true).open(&log).unwrap().set_len(0).unwrap();
    append(&log, 450, 600);

    let out = second.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(" events (0 quarantined) from "), "{stdout}");

    let rows = query_json(
        &data,
        "SELECT count(*) AS n, count(DISTINCT raw_data) AS distinct_lines FROM events WHERE sensor = 'tail'",
    );
    assert_eq!((rows[0]["n"].as_u64(), rows[0]["distinct_lines"].as_u64()), (Some(600), Some(600)), "{stdout}");
    let q = query_json(&data, "SELECT count(*) AS n FROM quarantine");
    assert_eq!(q[0]["n"].as_u64(), Some(0), "no half line was quarantined");

    // Each pass committed its own small files; the follower merged them as it went.
    let wrote = |what: &str| -> u64 {
        let i = stdout.rfind(what).unwrap_or_else(|| panic!("no {what:?} in {stdout}"));
        stdout[..i].rsplit(' ').next().and_then(|n| n.replace(',', "").parse().ok()).unwrap()
    };
    let (files, commits) = (wrote(" Parquet file(s)"), wrote(" commit(s)"));
    assert!(commits >= 4, "{stdout}");
    let stats: serde_json::Value =
        serde_json::from_str(&crate::ok(&crate::cynex(&data, &["lake", "stats", "--format", "json"]))).unwrap();
    let live = stats.as_array().unwrap().iter().find(|t| t["table"] == "events").unwrap()["files"].as_u64().unwrap();
    assert!(live < files, "{live} events files live after the follower wrote {files} in {commits} commits");
}
