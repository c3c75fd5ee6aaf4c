//! Zeek TSV logs as a member's network monitor writes them: the `#separator`/`#fields`/`#types`
//! header, unset (`-`) and empty (`(empty)`) fields, sets and vectors joined by `,`, and the
//! `#open`/`#close` lines. `conn` and `dns` logs from a fixed population of internal hosts and
//! resolvers. Seeded and deterministic; constant memory; counts are returned as ground truth.

use std::collections::BTreeMap;
use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::rng::{Alias, Rng};
use crate::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ZeekLog {
    Conn,
    Dns,
}

impl ZeekLog {
    pub fn name(self) -> &'static str {
        match self {
            ZeekLog::Conn => "conn",
            ZeekLog::Dns => "dns",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ZeekConfig {
    pub seed: u64,
    pub log: ZeekLog,
    pub rows: u64,
    pub start_us: i64,
    pub duration_s: u64,
}

impl Default for ZeekConfig {
    fn default() -> Self {
        ZeekConfig { seed: 42, log: ZeekLog::Conn, rows: 100_000, start_us: 1_793_491_200_000_000, duration_s: 86_400 }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ZeekTruth {
    pub log: String,
    pub rows: u64,
    pub bytes: u64,
    /// conn: rows per conn_state; dns: rows per qtype_name.
    pub by_kind: BTreeMap<String, u64>,
    /// Rows with at least one unset (`-`) field.
    pub with_unset: u64,
}

const CONN_FIELDS: &str = "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents";
const CONN_TYPES: &str = "time\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]";
const DNS_FIELDS: &str = "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\ttrans_id\trtt\tquery\tqclass\tqclass_name\tqtype\tqtype_name\trcode\trcode_name\tAA\tTC\tRD\tRA\tZ\tanswers\tTTLs\trejected";
const DNS_TYPES: &str = "time\tstring\taddr\tport\taddr\tport\tenum\tcount\tinterval\tstring\tcount\tstring\tcount\tstring\tcount\tstring\tbool\tbool\tbool\tbool\tcount\tvector[string]\tvector[interval]\tbool";

/// (state, history, weight): the mix of connection outcomes a border monitor sees.
const STATES: [(&str, &str, f64); 6] = [
    ("SF", "ShADadFf", 0.55),
    ("S0", "S", 0.2),
    ("REJ", "Sr", 0.08),
    ("RSTO", "ShADadR", 0.07),
    ("OTH", "D", 0.05),
    ("SH", "ShF", 0.05),
];

const QUERIES: [(&str, u16, &str); 8] = [
    ("www.example.com", 1, "A"),
    ("updates.vendor-cdn.net", 1, "A"),
    ("api.telemetry.example.org", 28, "AAAA"),
    ("_ldap._tcp.dc._msdcs.corp.example", 33, "SRV"),
    ("mail.member-isp.jp", 15, "MX"),
    ("pool.minexmr.com", 1, "A"),
    ("1.2.0.192.in-addr.arpa", 12, "PTR"),
    ("time.cloudflare.com", 1, "A"),
];

fn time(us: i64) -> String {
    format!("{}.{:06}", us.div_euclid(1_000_000), us.rem_euclid(1_000_000))
}

fn fmt_time(us: i64) -> String {
    let t = cynex_model::time::rfc3339_us(us);
    // Zeek's #open/#close: 2026-11-01-00-00-00
    t[..19].replace(['T', ':'], "-")
}

/// Write a `cfg.log` log of `cfg.rows` rows to `w`.
pub fn generate_zeek<W: Write>(cfg: &ZeekConfig, mut w: W) -> Result<(ZeekTruth, W)> {
    let mut rng = Rng::new(cfg.seed);
    let mut truth = ZeekTruth { log: cfg.log.name().into(), ..Default::default() };
    let (fields, types) = match cfg.log {
        ZeekLog::Conn => (CONN_FIELDS, CONN_TYPES),
        ZeekLog::Dns => (DNS_FIELDS, DNS_TYPES),
    };
    let head = format!(
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\t{}\n#open\t{}\n#fields\t{fields}\n#types\t{types}\n",
        cfg.log.name(),
        fmt_time(cfg.start_us)
    );
    w.write_all(head.as_bytes())?;
    truth.bytes += head.len() as u64;
    let states = Alias::new(&STATES.map(|(_, _, p)| p));
    let queries = Alias::zipf(QUERIES.len(), 1.1);
    let step = cfg.duration_s.max(1) as f64 * 1e6 / cfg.rows.max(1) as f64;
    let mut line = String::with_capacity(512);
    for i in 0..cfg.rows {
        let ts = cfg.start_us + (i as f64 * step) as i64;
        let uid = format!("C{:017}", rng.next_u64() % 100_000_000_000_000_000);
        let orig = format!("10.{}.{}.{}", rng.below(4), rng.below(64), 2 + rng.below(250));
        let oport = 1024 + rng.below(64_000);
        line.clear();
        let (kind, unset) = match cfg.log {
            ZeekLog::Conn => {
                let (state, history, _) = STATES[states.sample(&mut rng)];
                let resp =
                    format!("{}.{}.{}.{}", 20 + rng.below(180), rng.below(256), rng.below(256), 1 + rng.below(254));
                let (proto, port, service) = *rng.pick(&[
                    ("tcp", 443u16, "ssl"),
                    ("tcp", 80, "http"),
                    ("udp", 53, "dns"),
                    ("tcp", 22, "ssh"),
                    ("tcp", 8443, "-"),
                    ("udp", 123, "ntp"),
                ]);
                // A connection that never completed has no duration or byte counts.
                let unset = state == "S0" || state == "REJ";
                let (dur, ob, rb) = if unset {
                    ("-".to_string(), "-".to_string(), "-".to_string())
                } else {
                    (
                        format!("{:.6}", rng.exp(4.0)),
                        (rng.below(20_000)).to_string(),
                        (rng.below(2_000_000)).to_string(),
                    )
                };
                let (op, rp) = (1 + rng.below(40), rng.below(60));
                line.push_str(&format!(
                    "{}\t{uid}\t{orig}\t{oport}\t{resp}\t{port}\t{proto}\t{service}\t{dur}\t{ob}\t{rb}\t{state}\tT\tF\t0\t{history}\t{op}\t{}\t{rp}\t{}\t(empty)\n",
                    time(ts),
                    op * 52 + rng.below(1500),
                    rp * 60 + rng.below(9000),
                ));
                (state, unset || service == "-")
            }
            ZeekLog::Dns => {
                let (q, qt, qtn) = QUERIES[queries.sample(&mut rng)];
                let nx = rng.chance(0.08);
                let (rcode, rname) = if nx { (3, "NXDOMAIN") } else { (0, "NOERROR") };
                let (answers, ttls) = if nx {
                    ("-".to_string(), "-".to_string())
                } else {
                    let n = 1 + rng.below(3);
                    let a: Vec<String> = (0..n)
                        .map(|_| {
                            format!(
                                "{}.{}.{}.{}",
                                20 + rng.below(180),
                                rng.below(256),
                                rng.below(256),
                                1 + rng.below(254)
                            )
                        })
                        .collect();
                    let t: Vec<String> = (0..n).map(|_| format!("{}.000000", 30 + rng.below(3600))).collect();
                    (a.join(","), t.join(","))
                };
                line.push_str(&format!(
                    "{}\t{uid}\t{orig}\t{oport}\t10.0.0.53\t53\tudp\t{}\t{:.6}\t{q}\t1\tC_INTERNET\t{qt}\t{qtn}\t{rcode}\t{rname}\tF\tF\tT\tT\t0\t{answers}\t{ttls}\tF\n",
                    time(ts),
                    rng.below(65_536),
                    rng.f64() * 0.05,
                ));
                (qtn, nx)
            }
        };
        w.write_all(line.as_bytes())?;
        truth.rows += 1;
        truth.bytes += line.len() as u64;
        truth.with_unset += u64::from(unset);
        *truth.by_kind.entry(kind.to_string()).or_default() += 1;
    }
    let end = cfg.start_us + cfg.duration_s as i64 * 1_000_000;
    let close = format!("#close\t{}\n", fmt_time(end));
    w.write_all(close.as_bytes())?;
    truth.bytes += close.len() as u64;
    Ok((truth, w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_rows_agree() {
        for log in [ZeekLog::Conn, ZeekLog::Dns] {
            let cfg = ZeekConfig { log, rows: 2000, ..Default::default() };
            let (t, out) = generate_zeek(&cfg, Vec::new()).unwrap();
            assert_eq!(generate_zeek(&cfg, Vec::new()).unwrap().1, out, "deterministic");
            let text = String::from_utf8(out).unwrap();
            let fields = text.lines().find(|l| l.starts_with("#fields")).unwrap().split('\t').count() - 1;
            let types = text.lines().find(|l| l.starts_with("#types")).unwrap().split('\t').count() - 1;
            assert_eq!(fields, types);
            let rows: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
            assert_eq!(rows.len() as u64, t.rows);
            assert!(rows.iter().all(|r| r.split('\t').count() == fields), "{log:?}");
            assert!(t.with_unset > 0 && t.with_unset < t.rows);
            assert_eq!(t.bytes, text.len() as u64);
        }
    }
}
