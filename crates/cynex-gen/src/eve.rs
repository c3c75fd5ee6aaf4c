//! Suricata EVE JSON lines as a member's IDS writes them: a mix of flow, dns, http, tls, alert,
//! fileinfo, anomaly and stats events with Suricata's field names, nesting and realistic sizes,
//! from a fixed population of internal hosts, external servers and signatures. Seeded and
//! deterministic; constant memory; the counts per event type are returned as ground truth.

use std::collections::BTreeMap;
use std::io::Write;

use cynex_model::time::rfc3339_us;
use serde::{Deserialize, Serialize};

use crate::rng::{Alias, Rng};
use crate::Result;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EveConfig {
    pub seed: u64,
    pub events: u64,
    /// Time of the first event (µs) and the span the events cover (s).
    pub start_us: i64,
    pub duration_s: u64,
}

impl Default for EveConfig {
    fn default() -> Self {
        EveConfig { seed: 42, events: 100_000, start_us: 1_793_491_200_000_000, duration_s: 86_400 }
    }
}

/// What was written.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EveTruth {
    pub events: u64,
    pub bytes: u64,
    pub by_type: BTreeMap<String, u64>,
    pub alerts_by_sid: BTreeMap<u32, u64>,
}

const TYPES: [(&str, f64); 8] = [
    ("flow", 0.38),
    ("dns", 0.24),
    ("http", 0.14),
    ("tls", 0.12),
    ("alert", 0.06),
    ("fileinfo", 0.04),
    ("anomaly", 0.019),
    ("stats", 0.001),
];

/// (sid, rev, signature, category, severity), ET Open style.
const SIGNATURES: [(u32, u32, &str, &str, u8); 8] = [
    (2_001_219, 20, "ET SCAN Potential SSH Scan", "Attempted Information Leak", 2),
    (2_024_792, 4, "ET POLICY Cryptocurrency Miner Checkin", "Potential Corporate Privacy Violation", 1),
    (2_027_865, 3, "ET INFO Observed DNS Query to .cloud TLD", "Potentially Bad Traffic", 2),
    (2_013_028, 7, "ET POLICY curl User-Agent Outbound", "Attempted Information Leak", 2),
    (2_008_578, 6, "ET SCAN Sipvicious Scan", "Attempted Information Leak", 2),
    (2_019_401, 3, "ET POLICY Vulnerable Java Version 1.8.x Detected", "Potentially Bad Traffic", 2),
    (
        2_030_092,
        2,
        "ET EXPLOIT Possible Zyxel RCE Inbound (CVE-2020-9054)",
        "Attempted Administrator Privilege Gain",
        1,
    ),
    (
        2_025_883,
        3,
        "ET EXPLOIT Mirai/Gafgyt Huawei HG532 RCE (CVE-2017-17215)",
        "Attempted Administrator Privilege Gain",
        1,
    ),
];

const DOMAINS: [&str; 12] = [
    "www.example.com",
    "updates.vendor-cdn.net",
    "api.telemetry.example.org",
    "mail.member-isp.jp",
    "login.microsoftonline.com",
    "cdn.jsdelivr.net",
    "pool.minexmr.com",
    "time.cloudflare.com",
    "ocsp.digicert.com",
    "files.example.cloud",
    "portal.nexus.example",
    "s3.ap-northeast-1.amazonaws.com",
];

const UAS: [&str; 5] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "curl/8.5.0",
    "Microsoft-CryptoAPI/10.0",
    "python-requests/2.32.3",
    "Go-http-client/1.1",
];

fn internal(rng: &mut Rng) -> String {
    format!("10.{}.{}.{}", rng.below(4), rng.below(64), 2 + rng.below(250))
}

fn external(rng: &mut Rng) -> String {
    format!("{}.{}.{}.{}", 20 + rng.below(180), rng.below(256), rng.below(256), 1 + rng.below(254))
}

/// Write `cfg.events` EVE lines to `w`.
pub fn generate_eve<W: Write>(cfg: &EveConfig, mut w: W) -> Result<(EveTruth, W)> {
    let mut rng = Rng::new(cfg.seed);
    let types = Alias::new(&TYPES.map(|(_, p)| p));
    let sids = Alias::zipf(SIGNATURES.len(), 1.2);
    let domains = Alias::zipf(DOMAINS.len(), 1.1);
    let mut truth = EveTruth::default();
    let span = cfg.duration_s.max(1) * 1_000_000;
    let step = span as f64 / cfg.events.max(1) as f64;
    let mut line = String::with_capacity(2048);
    for i in 0..cfg.events {
        let ts = cfg.start_us + (i as f64 * step) as i64 + rng.below(step.max(1.0) as u64) as i64;
        // Suricata writes local time with an offset; this sensor runs in JST.
        let t = rfc3339_us(ts + 9 * 3_600_000_000);
        let t = format!("{}+0900", &t[..t.len() - 1]);
        let et = TYPES[types.sample(&mut rng)].0;
        let (src, dst) = (internal(&mut rng), external(&mut rng));
        let (sport, flow_id) = (1024 + rng.below(64_000), rng.next_u64() >> 14);
        let domain = DOMAINS[domains.sample(&mut rng)];
        let head = format!(
            r#"{{"timestamp":"{t}","flow_id":{flow_id},"in_iface":"ens1f0","event_type":"{et}","src_ip":"{src}","src_port":{sport},"dest_ip":"{dst}","#
        );
        line.clear();
        line.push_str(&head);
        match et {
            "flow" => {
                let (pts, ptc) = (1 + rng.below(40), rng.below(60));
                line.push_str(&format!(
                    r#""dest_port":{},"proto":"TCP","app_proto":"{}","flow":{{"pkts_toserver":{pts},"pkts_toclient":{ptc},"bytes_toserver":{},"bytes_toclient":{},"start":"{t}","end":"{t}","age":{},"state":"closed","reason":"timeout","alerted":false}},"tcp":{{"tcp_flags":"1b","tcp_flags_ts":"1b","tcp_flags_tc":"1b","syn":true,"fin":true,"psh":true,"ack":true,"state":"closed"}},"community_id":"1:{}="}}"#,
                    *rng.pick(&[443u16, 80, 22, 53, 8443, 3389]),
                    *rng.pick(&["tls", "http", "ssh", "failed"]),
                    pts * 80 + rng.below(2000),
                    ptc * 900 + rng.below(9000),
                    rng.below(120),
                    rng.next_u64() % 10_000_000_000,
                ));
            }
            "dns" => line.push_str(&format!(
                r#""dest_port":53,"proto":"UDP","dns":{{"version":2,"type":"answer","id":{},"flags":"8180","qr":true,"rd":true,"ra":true,"rrname":"{domain}","rrtype":"A","rcode":"NOERROR","answers":[{{"rrname":"{domain}","rrtype":"A","ttl":{},"rdata":"{}"}}],"grouped":{{"A":["{}"]}}}}}}"#,
                rng.below(65_536),
                rng.below(3600),
                external(&mut rng),
                external(&mut rng),
            )),
            "http" => line.push_str(&format!(
                r#""dest_port":80,"proto":"TCP","tx_id":0,"http":{{"hostname":"{domain}","url":"/{}/{}?id={}","http_user_agent":"{}","http_content_type":"text/html","http_method":"{}","protocol":"HTTP/1.1","status":{},"length":{}}}}}"#,
                *rng.pick(&["api", "static", "v1", "download", "index"]),
                *rng.pick(&["status", "update.bin", "login", "app.js", "check"]),
                rng.below(1_000_000),
                UAS[rng.below(UAS.len() as u64) as usize],
                *rng.pick(&["GET", "GET", "GET", "POST", "HEAD"]),
                *rng.pick(&[200u16, 200, 200, 301, 304, 404, 500]),
                rng.below(200_000),
            )),
            "tls" => line.push_str(&format!(
                r#""dest_port":443,"proto":"TCP","tls":{{"subject":"CN={domain}","issuerdn":"C=US, O=Let's Encrypt, CN=R11","serial":"04:{:02X}:{:02X}:9A","fingerprint":"{:016x}{:016x}","sni":"{domain}","version":"{}","notbefore":"2026-09-01T00:00:00","notafter":"2026-11-30T00:00:00","ja3":{{"hash":"{:016x}{:016x}"}}}}}}"#,
                rng.below(256),
                rng.below(256),
                rng.next_u64(),
                rng.next_u64(),
                *rng.pick(&["TLS 1.3", "TLS 1.2"]),
                rng.next_u64(),
                rng.next_u64(),
            )),
            "alert" => {
                let (sid, rev, sig, cat, sev) = SIGNATURES[sids.sample(&mut rng)];
                *truth.alerts_by_sid.entry(sid).or_default() += 1;
                line.push_str(&format!(
                    r#""dest_port":{},"proto":"TCP","alert":{{"action":"allowed","gid":1,"signature_id":{sid},"rev":{rev},"signature":"{sig}","category":"{cat}","severity":{sev},"metadata":{{"created_at":["2019_01_01"],"updated_at":["2026_10_01"]}}}},"app_proto":"http","flow":{{"pkts_toserver":{},"pkts_toclient":{},"bytes_toserver":{},"bytes_toclient":{},"start":"{t}"}}}}"#,
                    *rng.pick(&[80u16, 22, 5060, 37215, 443]),
                    1 + rng.below(10),
                    rng.below(10),
                    60 + rng.below(4000),
                    rng.below(8000),
                ));
            }
            "fileinfo" => line.push_str(&format!(
                r#""dest_port":80,"proto":"TCP","http":{{"hostname":"{domain}","url":"/download/file{}.bin","http_method":"GET","status":200,"length":{}}},"app_proto":"http","fileinfo":{{"filename":"/download/file{}.bin","magic":"ELF 32-bit LSB executable","gaps":false,"state":"CLOSED","md5":"{:016x}{:016x}","sha256":"{:016x}{:016x}{:016x}{:016x}","stored":false,"size":{},"tx_id":0}}}}"#,
                i % 1000,
                rng.below(2_000_000),
                i % 1000,
                rng.next_u64(),
                rng.next_u64(),
                rng.next_u64(),
                rng.next_u64(),
                rng.next_u64(),
                rng.next_u64(),
                rng.below(2_000_000),
            )),
            "anomaly" => line.push_str(&format!(
                r#""dest_port":{},"proto":"TCP","anomaly":{{"type":"stream","event":"{}","code":{}}}}}"#,
                rng.below(65_536),
                *rng.pick(&["stream.pkt_invalid_timestamp", "stream.3whs_synack_with_wrong_ack", "stream.pkt_spurious_retransmission"]),
                rng.below(100),
            )),
            _ => line.push_str(&format!(
                r#""dest_port":0,"proto":"TCP","stats":{{"uptime":{},"capture":{{"kernel_packets":{},"kernel_drops":{}}},"decoder":{{"pkts":{},"bytes":{},"ipv4":{},"ipv6":{},"tcp":{},"udp":{}}},"flow":{{"memuse":{}}}}}}}"#,
                i,
                rng.next_u64() >> 30,
                rng.below(1000),
                rng.next_u64() >> 30,
                rng.next_u64() >> 24,
                rng.next_u64() >> 31,
                rng.next_u64() >> 36,
                rng.next_u64() >> 31,
                rng.next_u64() >> 33,
                rng.below(1 << 30),
            )),
        }
        line.push('\n');
        w.write_all(line.as_bytes())?;
        truth.events += 1;
        truth.bytes += line.len() as u64;
        *truth.by_type.entry(et.to_string()).or_default() += 1;
    }
    Ok((truth, w))
}
