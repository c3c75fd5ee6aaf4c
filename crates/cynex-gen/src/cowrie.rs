//! Cowrie honeypot JSON lines as a member's SSH/Telnet honeypot writes them: sessions from
//! scanners and bots that connect, send a client version, guess passwords (Mirai-style default
//! credentials), sometimes get in, run the usual reconnaissance and dropper commands, download
//! a payload, or ask for a direct-tcpip tunnel, then close. Several sessions are open at once and
//! their events interleave, as in a real log. Seeded and deterministic; constant memory (a pool
//! of open sessions); the counts are returned as ground truth.

use std::collections::BTreeMap;
use std::io::Write;

use cynex_model::time::rfc3339_us;
use serde::{Deserialize, Serialize};

use crate::rng::{Alias, Rng};
use crate::Result;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CowrieConfig {
    pub seed: u64,
    pub sessions: u64,
    pub start_us: i64,
    pub duration_s: u64,
    /// The honeypot's name (`sensor` in each record) and address.
    pub sensor: String,
    pub dst_ip: String,
}

impl Default for CowrieConfig {
    fn default() -> Self {
        CowrieConfig {
            seed: 42,
            sessions: 10_000,
            start_us: 1_793_491_200_000_000,
            duration_s: 86_400,
            sensor: "hp-tokyo-1".into(),
            dst_ip: "192.0.2.10".into(),
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CowrieTruth {
    pub sessions: u64,
    pub events: u64,
    pub bytes: u64,
    pub by_eventid: BTreeMap<String, u64>,
    /// Sessions that logged in.
    pub logged_in: u64,
    /// Payload downloads by SHA-256.
    pub downloads: BTreeMap<String, u64>,
}

/// Mirai's and its descendants' favourite credentials.
const CREDS: [(&str, &str); 12] = [
    ("root", "xc3511"),
    ("root", "vizxv"),
    ("admin", "admin"),
    ("root", "admin"),
    ("root", "888888"),
    ("root", "default"),
    ("support", "support"),
    ("root", "123456"),
    ("user", "user"),
    ("admin", "password"),
    ("root", "root"),
    ("ubnt", "ubnt"),
];

const CLIENTS: [&str; 5] = [
    "SSH-2.0-Go",
    "SSH-2.0-libssh_0.9.6",
    "SSH-2.0-PuTTY_Release_0.78",
    "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.10",
    "SSH-2.0-paramiko_3.4.0",
];

const RECON: [&str; 8] = [
    "uname -a",
    "cat /proc/cpuinfo | grep name | wc -l",
    "free -m | grep Mem | awk '{print $2 ,$3, $4, $5, $6, $7}'",
    "ls -lh $(which ls)",
    "crontab -l",
    "w",
    "cat /etc/passwd",
    "enable",
];

/// (url, sha256) of the payloads the bots fetch.
const PAYLOADS: [(&str, &str); 4] = [
    ("http://203.0.113.66/bins/mirai.x86", "6f1c2e4d3b5a79880c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7"),
    ("http://203.0.113.66/bins/mirai.arm7", "0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b"),
    ("http://198.51.100.23/x.sh", "d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3"),
    ("http://198.51.100.23/kinsing", "5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d"),
];

/// One open session: what it still has to do.
struct Session {
    id: String,
    src: String,
    sport: u64,
    start_us: i64,
    /// Time of its next event (µs).
    next_us: i64,
    steps: Vec<Step>,
}

enum Step {
    Version(&'static str),
    Login(&'static str, &'static str, bool),
    Command(&'static str, bool),
    Download(usize),
    Tunnel(String, u64),
    Closed,
}

fn session_steps(rng: &mut Rng, creds: &Alias) -> Vec<Step> {
    let mut s = vec![Step::Version(CLIENTS[rng.below(CLIENTS.len() as u64) as usize])];
    let tries = 1 + rng.below(6);
    let mut logged_in = false;
    for t in 0..tries {
        let (u, p) = CREDS[creds.sample(rng)];
        // One in four bots finds a working credential (the honeypot accepts a few).
        let ok = t + 1 == tries && rng.chance(0.25);
        s.push(Step::Login(u, p, ok));
        logged_in = ok;
    }
    if logged_in {
        for _ in 0..1 + rng.below(4) {
            s.push(Step::Command(RECON[rng.below(RECON.len() as u64) as usize], rng.chance(0.1)));
        }
        if rng.chance(0.4) {
            s.push(Step::Download(rng.below(PAYLOADS.len() as u64) as usize));
        }
        if rng.chance(0.05) {
            s.push(Step::Tunnel(format!("{}.{}.{}.{}", 20 + rng.below(200), rng.below(256), rng.below(256), 1), 443));
        }
    }
    s.push(Step::Closed);
    s.reverse();
    s
}

/// Write `cfg.sessions` sessions of Cowrie JSON lines to `w`.
pub fn generate_cowrie<W: Write>(cfg: &CowrieConfig, mut w: W) -> Result<(CowrieTruth, W)> {
    let mut rng = Rng::new(cfg.seed);
    let creds = Alias::zipf(CREDS.len(), 1.0);
    let mut truth = CowrieTruth::default();
    let span = cfg.duration_s.max(1) as f64 * 1e6;
    let gap = span / cfg.sessions.max(1) as f64;
    let mut open: Vec<Session> = Vec::new();
    let mut started = 0u64;
    let mut next_start = cfg.start_us;
    let mut line = String::with_capacity(1024);
    let (sensor, dst) = (cfg.sensor.as_str(), cfg.dst_ip.as_str());
    loop {
        // The next thing to happen: a new session or the earliest step of an open one.
        let earliest = open.iter().enumerate().min_by_key(|(_, s)| s.next_us).map(|(i, s)| (i, s.next_us));
        let start_new = started < cfg.sessions && earliest.is_none_or(|(_, t)| next_start <= t);
        line.clear();
        let (ts, eventid, session, src, body) = if start_new {
            started += 1;
            let s = Session {
                id: format!("{:012x}", rng.next_u64() >> 16),
                src: format!("{}.{}.{}.{}", 1 + rng.below(222), rng.below(256), rng.below(256), 1 + rng.below(254)),
                sport: 1024 + rng.below(64_000),
                start_us: next_start,
                next_us: next_start + 50_000 + rng.below(400_000) as i64,
                steps: session_steps(&mut rng, &creds),
            };
            let port = if rng.chance(0.8) { 22 } else { 23 };
            let body = format!(
                r#""src_port":{},"dst_ip":"{dst}","dst_port":{port},"protocol":"{}","message":"New connection: {}:{} ({dst}:{port}) [session: {}]""#,
                s.sport,
                if port == 22 { "ssh" } else { "telnet" },
                s.src,
                s.sport,
                s.id
            );
            let r = (next_start, "cowrie.session.connect", s.id.clone(), s.src.clone(), body);
            next_start += (rng.exp(gap)).max(1.0) as i64;
            open.push(s);
            truth.sessions += 1;
            r
        } else {
            let Some((i, t)) = earliest else { break };
            let s = &mut open[i];
            let step = s.steps.pop().unwrap_or(Step::Closed);
            let (id, src) = (s.id.clone(), s.src.clone());
            let started_us = s.start_us;
            s.next_us = t + 200_000 + rng.below(3_000_000) as i64;
            let (eventid, body) = match step {
                Step::Version(v) => {
                    ("cowrie.client.version", format!(r#""version":"{v}","message":"Remote SSH version: {v}""#))
                }
                Step::Login(u, p, ok) => {
                    let (e, verb) =
                        if ok { ("cowrie.login.success", "succeeded") } else { ("cowrie.login.failed", "failed") };
                    if ok {
                        truth.logged_in += 1;
                    }
                    (e, format!(r#""username":"{u}","password":"{p}","message":"login attempt [{u}/{p}] {verb}""#))
                }
                Step::Command(c, failed) => {
                    let e = if failed { "cowrie.command.failed" } else { "cowrie.command.input" };
                    let msg = if failed { format!("Command not found: {c}") } else { format!("CMD: {c}") };
                    (e, format!(r#""input":{},"message":{}"#, json_str(c), json_str(&msg)))
                }
                Step::Download(k) => {
                    let (url, sha) = PAYLOADS[k];
                    *truth.downloads.entry(sha.to_string()).or_default() += 1;
                    (
                        "cowrie.session.file_download",
                        format!(
                            r#""url":"{url}","outfile":"var/lib/cowrie/downloads/{sha}","shasum":"{sha}","destfile":"-","message":"Downloaded URL ({url}) with SHA-256 {sha} to var/lib/cowrie/downloads/{sha}""#
                        ),
                    )
                }
                Step::Tunnel(dst_ip, port) => (
                    "cowrie.direct-tcpip.request",
                    format!(
                        r#""dst_ip":"{dst_ip}","dst_port":{port},"src_ip":"127.0.0.1","src_port":{},"message":"direct-tcp connection request to {dst_ip}:{port} from 127.0.0.1:{}""#,
                        s.sport, s.sport
                    ),
                ),
                Step::Closed => {
                    let dur = (t - started_us) as f64 / 1e6;
                    open.swap_remove(i);
                    (
                        "cowrie.session.closed",
                        format!(r#""duration":{dur:.1},"message":"Connection lost after {dur:.1} seconds""#),
                    )
                }
            };
            (t, eventid, id, src, body)
        };
        let time = rfc3339_us(ts);
        line.push_str(&format!(
            r#"{{"eventid":"{eventid}","session":"{session}","src_ip":"{src}","timestamp":"{time}","sensor":"{sensor}",{body}}}"#
        ));
        line.push('\n');
        w.write_all(line.as_bytes())?;
        truth.events += 1;
        truth.bytes += line.len() as u64;
        *truth.by_eventid.entry(eventid.to_string()).or_default() += 1;
    }
    Ok((truth, w))
}

fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_open_and_close_and_counts_add_up() {
        let cfg = CowrieConfig { sessions: 500, duration_s: 3600, ..Default::default() };
        let (t, out) = generate_cowrie(&cfg, Vec::new()).unwrap();
        let (t2, out2) = generate_cowrie(&cfg, Vec::new()).unwrap();
        assert_eq!((&t, &out), (&t2, &out2), "deterministic");
        assert_eq!(t.sessions, 500);
        assert_eq!(t.by_eventid["cowrie.session.connect"], 500);
        assert_eq!(t.by_eventid["cowrie.session.closed"], 500);
        assert_eq!(t.by_eventid.get("cowrie.login.success").copied().unwrap_or(0), t.logged_in);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count() as u64, t.events);
        let mut last = String::new();
        let mut interleaved = false;
        for l in text.lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let s = v["session"].as_str().unwrap().to_string();
            if !last.is_empty() && s != last && v["eventid"] != "cowrie.session.connect" {
                interleaved = true;
            }
            last = s;
        }
        assert!(interleaved, "sessions overlap in time");
    }
}
