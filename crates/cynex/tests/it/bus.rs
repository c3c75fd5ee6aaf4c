//! The sensor bus end to end against a real `nats-server` (Debian package, installed by
//! scripts/setup) started by the test on its own port and store: publish, kill a consumer with
//! SIGKILL mid-stream, let two consumers share the rest, and check the lake holds every record
//! exactly once, the same rows as ingesting the files directly.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{corpus, cynex, ok, query_json};

struct NatsServer {
    child: Child,
    url: String,
    _store: tempfile::TempDir,
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nats_server_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|d| d.join("nats-server"))
        .find(|p| p.exists())
        .expect("nats-server is not installed: run scripts/setup (Debian package nats-server)")
}

fn start_nats() -> NatsServer {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let store = tempfile::tempdir().unwrap();
    let child = Command::new(nats_server_binary())
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(store.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting nats-server");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    NatsServer { child, url: format!("nats://127.0.0.1:{port}"), _store: store }
}

fn cynex_cmd(data: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cynex"));
    c.arg("--data").arg(data).arg("--quiet").args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

fn commits(data: &Path) -> usize {
    std::fs::read_dir(data.join("lake/_commits")).map_or(0, |d| d.count())
}

/// A log with records that must be quarantined (truncated JSON, wrong type, invalid UTF-8, a
/// 3 MB line) between good ones.
fn broken_eve(path: &Path) {
    let good = |i: u32| {
        format!(
            "{{\"timestamp\":\"2026-11-01T00:00:{:02}.000000+0000\",\"event_type\":\"dns\",\"src_ip\":\"10.0.0.{i}\",\
             \"src_port\":5353,\"dest_ip\":\"10.0.0.53\",\"dest_port\":53,\"proto\":\"UDP\",\
             \"dns\":{{\"type\":\"query\",\"rrname\":\"example.com\",\"rrtype\":\"A\"}}}}\n",
            i % 60
        )
    };
    let mut b = Vec::new();
    for i in 0..50 {
        b.extend_from_slice(good(i).as_bytes());
    }
    b.extend_from_slice(b"{\"timestamp\":\"2026-11-01T00:00:00\n");
    b.extend_from_slice(b"{\"timestamp\":12,\"event_type\":\"dns\"}\n");
    b.extend_from_slice(b"{\"event_type\":\"dns\",\"x\":\"\xff\xfe\"}\n");
    b.extend(std::iter::repeat_n(b'a', 3 << 20));
    b.push(b'\n');
    for i in 50..80 {
        b.extend_from_slice(good(i).as_bytes());
    }
    std::fs::write(path, b).unwrap();
}

/// Rows that identify every event: how many, how many distinct places, and a checksum.
fn fingerprint(data: &Path, sensor: &str) -> serde_json::Value {
    let rows = query_json(
        data,
        &format!(
            "SELECT count(*) AS n, count(DISTINCT concat(source, ':', CAST(line AS VARCHAR))) AS places, \
             sum(line) AS lines, sum(length(raw_data)) AS bytes, count(DISTINCT event_type) AS types \
             FROM events WHERE sensor = '{sensor}'"
        ),
    );
    rows[0].clone()
}

/// `cynex sensor --publish` of `path` from a member site; its summary.
fn publish_logs(site: &Path, url: &str, sensor: &str, org: &str, format: &str, chunk_kib: u32, path: &Path) -> String {
    let chunk = chunk_kib.to_string();
    ok(&cynex(
        site,
        &[
            "sensor",
            "--publish",
            url,
            "--sensor",
            sensor,
            "--org",
            org,
            "--format",
            format,
            "--chunk-kib",
            &chunk,
            path.to_str().unwrap(),
        ],
    ))
}

#[test]
fn bus_kill_and_resume_loses_and_doubles_nothing() {
    let nats = start_nats();
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    let nexus = dir.path().join("nexus");
    let direct = dir.path().join("direct");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let generated = dir.path().join("eve.json");
    ok(&cynex(&site, &["gen", "eve", "--out", generated.to_str().unwrap(), "--events", "60000", "--seed", "7"]));
    std::fs::rename(&generated, logs.join("eve.json")).unwrap();
    let broken = logs.join("broken.json");
    broken_eve(&broken);
    let zeek = corpus().join("zeek");

    // Publish, then publish again: the second run sends nothing.
    let publish = |sensor: &str, org: &str, format: &str, path: &Path| {
        publish_logs(&site, &nats.url, sensor, org, format, 32, path)
    };
    let first = publish("ids-a", "member-a", "eve", &logs);
    assert!(first.contains("from 2 input(s)"), "{first}");
    let zeek_out = publish("zeek-b", "member-b", "zeek", &zeek);
    assert!(zeek_out.contains("published"), "{zeek_out}");
    let again = publish("ids-a", "member-a", "eve", &logs);
    assert!(again.contains("published 0 chunk(s)") && again.contains("2 already published"), "{again}");

    // A message that is not a cynex chunk, published by someone else on a member's subject.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = async_nats::connect(nats.url.as_str()).await.unwrap();
        let js = async_nats::jetstream::new(c);
        js.publish("cynex.sensor.member-a.junk", "not a chunk".into()).await.unwrap().await.unwrap();
    });

    // A consumer killed with SIGKILL in the middle of the stream.
    // What it had fetched but not acknowledged goes to the others after the ack wait.
    let mut victim =
        cynex_cmd(&nexus, &["ingest", "bus", "--from", &nats.url, "--batch", "3", "--ack-wait", "2"]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while commits(&nexus) < 6 {
        assert!(Instant::now() < deadline, "the consumer made no progress");
        assert!(victim.try_wait().unwrap().is_none(), "the consumer stopped early: {:?}", victim.wait_with_output());
        std::thread::sleep(Duration::from_millis(10));
    }
    victim.kill().unwrap();
    victim.wait().unwrap();
    let after_kill = commits(&nexus);

    // Two consumers share the rest and stop when the stream is drained.
    let consumer = || {
        cynex_cmd(
            &nexus,
            &["ingest", "bus", "--from", &nats.url, "--batch", "4", "--ack-wait", "2", "--idle-exit", "5"],
        )
        .spawn()
        .unwrap()
    };
    let (a, b) = (consumer(), consumer());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let (sa, sb) = (ok(&a), ok(&b));
    let consumed = |s: &str| -> u64 {
        let n = s.split("consumed ").nth(1).and_then(|r| r.split(' ').next()).unwrap_or("0");
        n.replace(',', "").parse().unwrap()
    };
    assert!(consumed(&sa) > 0 && consumed(&sb) > 0, "both consumers take work:\n{sa}\n{sb}");
    assert!(commits(&nexus) > after_kill);

    // Exactly the rows that ingesting the same files directly gives.
    let d1 = ok(&cynex(&direct, &["ingest", "eve", logs.to_str().unwrap(), "--sensor", "ids-a", "--org", "member-a"]));
    assert!(d1.contains("read 60,084 records: 60,080 events written, 4 quarantined"), "{d1}");
    ok(&cynex(&direct, &["ingest", "zeek", zeek.to_str().unwrap(), "--sensor", "zeek-b", "--org", "member-b"]));
    for sensor in ["ids-a", "zeek-b"] {
        let (bus, file) = (fingerprint(&nexus, sensor), fingerprint(&direct, sensor));
        assert_eq!(bus, file, "sensor {sensor}: bus vs direct ingest");
        assert_eq!(bus["n"], bus["places"], "sensor {sensor}: a record written twice");
    }
    assert_eq!(fingerprint(&nexus, "ids-a")["n"], 60_080);
    let orgs = query_json(&nexus, "SELECT sensor, organisation, count(*) AS n FROM events GROUP BY 1, 2 ORDER BY 1");
    assert_eq!(orgs.len(), 2, "{orgs:?}");
    assert_eq!((orgs[0]["sensor"].as_str(), orgs[0]["organisation"].as_str()), (Some("ids-a"), Some("member-a")));
    assert_eq!((orgs[1]["sensor"].as_str(), orgs[1]["organisation"].as_str()), (Some("zeek-b"), Some("member-b")));

    // The bad records are quarantined once each, placed in their file, as the direct ingest does.
    let q = |data: &Path| {
        query_json(
            data,
            "SELECT format, source, line, \"offset\", reason, raw_len FROM quarantine WHERE format IN ('eve', 'zeek') \
             ORDER BY source, line",
        )
    };
    let (qb, qd) = (q(&nexus), q(&direct));
    assert_eq!(qb.len(), 4 + 34, "{qb:?}");
    let strip = |v: &[serde_json::Value]| -> Vec<(String, String, String, String)> {
        v.iter()
            .map(|r| {
                (r["source"].to_string(), r["line"].to_string(), r["offset"].to_string(), r["raw_len"].to_string())
            })
            .collect()
    };
    assert_eq!(strip(&qb), strip(&qd));
    let junk = query_json(&nexus, "SELECT source, reason FROM quarantine WHERE format = 'bus'");
    assert_eq!(junk.len(), 1, "{junk:?}");
    assert!(junk[0]["source"].as_str().unwrap().contains("cynex.sensor.member-a.junk"), "{junk:?}");
}

/// `cynex sensor --publish` run again and again on a log that is being written (as from cron):
/// each run sends only what was added, an unfinished last line waits for its newline, and the
/// lake ends up with exactly the rows of ingesting the finished file directly.
#[test]
fn publishing_a_growing_log_sends_each_record_once() {
    let nats = start_nats();
    let dir = tempfile::tempdir().unwrap();
    let (site, nexus) = (dir.path().join("site"), dir.path().join("nexus"));
    let generated = dir.path().join("gen.json");
    ok(&cynex(&site, &["gen", "eve", "--out", generated.to_str().unwrap(), "--events", "3000", "--seed", "11"]));
    let full = std::fs::read(&generated).unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let log = logs.join("eve.json");
    // Three runs: the log cut inside a record, then later inside another, then finished.
    let inside = |at: usize| (at..).find(|&i| full[i - 1] != b'\n').unwrap();
    let cuts = [inside(full.len() / 3), inside(full.len() * 2 / 3), full.len()];
    for (i, cut) in cuts.into_iter().enumerate() {
        std::fs::write(&log, &full[..cut]).unwrap();
        let out = publish_logs(&site, &nats.url, "grow", "member-g", "eve", 8, &logs);
        let held = out.contains("1 with an unfinished last line held back");
        assert_eq!(held, i < 2, "run {i}: {out}");
    }
    let consume =
        || ok(&cynex_cmd(&nexus, &["ingest", "bus", "--from", &nats.url, "--idle-exit", "3"]).output().unwrap());
    let out = consume();
    assert!(out.contains("0 duplicate(s) skipped"), "{out}");
    let same_as_direct = |events: u64| {
        let direct = dir.path().join(format!("direct-{events}"));
        ok(&cynex(&direct, &["ingest", "eve", logs.to_str().unwrap(), "--sensor", "grow", "--org", "member-g"]));
        let (bus, file) = (fingerprint(&nexus, "grow"), fingerprint(&direct, "grow"));
        assert_eq!(bus, file, "bus vs direct ingest");
        assert_eq!(bus["n"], events);
        assert_eq!(query_json(&nexus, "SELECT count(*) AS n FROM quarantine")[0]["n"], 0);
    };
    same_as_direct(3000);
    // The publisher loses its state and the log grows: everything is sent again, cut at other
    // places around the earlier runs' ends; the consumer writes only the bytes it lacks.
    let more = dir.path().join("more.json");
    ok(&cynex(&site, &["gen", "eve", "--out", more.to_str().unwrap(), "--events", "500", "--seed", "12"]));
    let mut grown = full.clone();
    grown.extend(std::fs::read(&more).unwrap());
    std::fs::write(&log, &grown).unwrap();
    std::fs::remove_file(site.join("sensor/publish-grow.json")).unwrap();
    publish_logs(&site, &nats.url, "grow", "member-g", "eve", 8, &logs);
    let out = consume();
    assert!(out.contains("partly in the lake already"), "{out}");
    same_as_direct(3500);
    // One progress entry for the input, however many chunks it took.
    let entries = std::fs::read_dir(nexus.join("lake/_commits"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .filter(|c| c.contains("ingest-bus"))
        .flat_map(|c| {
            let v: serde_json::Value = serde_json::from_str(&c).unwrap();
            v["sources"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect::<Vec<_>>()
        })
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(entries.len(), 1, "{entries:?}");
}

/// One HTTP GET over a plain socket; the body.
fn http_get(base: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let addr = base.rsplit("//").next().unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()
}

fn metric(text: &str, line_start: &str) -> u64 {
    text.lines().find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok()).unwrap_or(0)
}

#[test]
fn serve_consumes_the_bus_counts_it_and_stops_cleanly() {
    let nats = start_nats();
    let dir = tempfile::tempdir().unwrap();
    let (site, nexus) = (dir.path().join("site"), dir.path().join("nexus"));
    let log = dir.path().join("eve.json");
    ok(&cynex(&site, &["gen", "eve", "--out", log.to_str().unwrap(), "--events", "20000", "--seed", "3"]));
    publish_logs(&site, &nats.url, "ids-s", "member-s", "eve", 64, &log);

    std::fs::create_dir_all(&nexus).unwrap();
    let mut srv = crate::serve::Server::start(&nexus, &["--bus", &nats.url, "--interval", "1h", "--no-publish"], false);
    let deadline = Instant::now() + Duration::from_secs(120);
    let written = r#"cynex_bus_records_total{outcome="written"}"#;
    loop {
        let m = http_get(&srv.base, "/metrics");
        if metric(&m, written) == 20_000 {
            assert!(metric(&m, r#"cynex_bus_messages_total{outcome="received"}"#) > 1, "{m}");
            break;
        }
        assert!(Instant::now() < deadline, "serve did not consume the bus:\n{m}\n{}", srv.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(srv.log().contains("consuming the sensor bus"), "{}", srv.log());

    // SIGTERM: the service stops, the consumer with it, and the lake holds each record once.
    let st = Command::new("kill").args(["-TERM", &srv.child.id().to_string()]).status().unwrap();
    assert!(st.success());
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = srv.child.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(40), "serve did not stop on SIGTERM:\n{}", srv.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}\n{}", srv.log());
    let f = fingerprint(&nexus, "ids-s");
    assert_eq!(f["n"], 20_000, "{f}");
    assert_eq!(f["n"], f["places"], "{f}");
}
