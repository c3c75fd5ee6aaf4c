//! `cynex analyze` (run the darknet analysis) and `cynex stats` (print its statistics).

use std::io::Write;

use cynex_analysis::{analyze, AnalyzeOptions, AnalyzeReport, Mode};
use cynex_lake::{Lake, QueryOptions, QuerySession};
use cynex_model::time::rfc3339_us;

use crate::output::{thousands, write_batches, Format};

pub fn run(lake: &Lake, opts: &AnalyzeOptions, w: &mut dyn Write) -> anyhow::Result<AnalyzeReport> {
    let rep = analyze(lake, opts)?;
    let mode = match opts.mode {
        Mode::Batch { .. } => "batch",
        Mode::Incremental { rebuild: true, .. } => "rebuild",
        Mode::Incremental { .. } => "incremental",
    };
    writeln!(
        w,
        "analysed {} packets from {} files in {:.2} s ({mode}, scope {:?}, {} dark addresses)",
        thousands(rep.rows),
        rep.files,
        rep.seconds,
        opts.scope,
        thousands(rep.dark_addresses),
    )?;
    let kinds: Vec<String> = rep.findings.iter().map(|(k, n)| format!("{k} {}", thousands(*n))).collect();
    writeln!(
        w,
        "findings: {}; ongoing: {}; campaigns: {}; statistics rewritten for {} day(s)",
        if kinds.is_empty() { "none new".to_string() } else { kinds.join(", ") },
        thousands(rep.ongoing),
        thousands(rep.campaigns),
        rep.stats_days
    )?;
    if rep.evicted > 0 {
        writeln!(
            w,
            "note: {} scan events and sources were closed early to stay within the memory limit (--memory-mb)",
            thousands(rep.evicted)
        )?;
    }
    if rep.geo_errors > 0 {
        writeln!(
            w,
            "note: {} GeoIP records could not be decoded; those findings have no country or AS",
            thousands(rep.geo_errors)
        )?;
    }
    if rep.late_rows > 0 {
        writeln!(
            w,
            "note: {} packets belong to days whose statistics were already sealed; they fed the detectors but not \
             `stats` (run with --rebuild to recount)",
            thousands(rep.late_rows)
        )?;
    }
    if rep.commit > 0 {
        writeln!(
            w,
            "query them: cynex query \"SELECT kind, count(*) FROM findings WHERE sensor = '{}' GROUP BY kind\"",
            opts.scope
        )?;
    }
    Ok(rep)
}

pub struct StatsRequest {
    pub scope: String,
    pub bin: String,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub format: Format,
}

/// Concluded and ongoing findings with the columns the per-source sections need.
const SCANS: &str = "(SELECT ip4, packets, time, sensor, kind, country, asn, as_org FROM findings UNION ALL \
                     SELECT ip4, packets, time, sensor, kind, country, asn, as_org FROM ongoing)";

/// NICTER-style statistics from the `stats`, `port_stats` and `findings` tables.
pub fn stats(lake: &Lake, req: &StatsRequest, w: &mut dyn Write) -> anyhow::Result<()> {
    anyhow::ensure!(cynex_lake::valid_sensor_name(&req.scope), "bad scope name {:?}", req.scope);
    anyhow::ensure!(matches!(req.bin.as_str(), "5m" | "1h" | "1d"), "--bin must be 5m, 1h or 1d");
    let mut range = String::new();
    if let Some(f) = req.from {
        range += &format!(" AND time >= '{}'", rfc3339_us(f));
    }
    if let Some(t) = req.to {
        range += &format!(" AND time < '{}'", rfc3339_us(t));
    }
    let scope = &req.scope;
    let bin = &req.bin;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let session = QuerySession::open(lake, &QueryOptions::default())?;
    let sections = [
        (
            format!("traffic per {bin}"),
            format!(
                "SELECT time, packets, sources, round(per_address, 2) AS per_address, tcp, udp, icmp, other, \
                 backscatter, research FROM stats WHERE sensor = '{scope}' AND bin = '{bin}'{range} ORDER BY time"
            ),
        ),
        (
            "totals".to_string(),
            format!(
                "SELECT sum(packets) AS packets, round(100.0 * sum(tcp) / sum(packets), 1) AS tcp_pct, \
                 round(100.0 * sum(udp) / sum(packets), 1) AS udp_pct, round(100.0 * sum(icmp) / sum(packets), 1) \
                 AS icmp_pct, round(100.0 * sum(backscatter) / sum(packets), 1) AS backscatter_pct, \
                 round(100.0 * sum(research) / sum(packets), 1) AS research_pct, round(sum(per_address), 1) AS \
                 per_address FROM stats WHERE sensor = '{scope}' AND bin = '1h'{range}"
            ),
        ),
        (
            "top 10 destination ports".to_string(),
            format!(
                "WITH p AS (SELECT * FROM port_stats WHERE sensor = '{scope}'{range}), t AS (SELECT sum(packets) AS n \
                 FROM p) SELECT CASE proto WHEN 6 THEN 'tcp' WHEN 17 THEN 'udp' ELSE CAST(proto AS VARCHAR) END AS \
                 proto, port, sum(packets) AS packets, round(100.0 * sum(packets) / max(t.n), 1) AS share_pct, \
                 max(sources) AS peak_hourly_sources FROM p, t WHERE port IS NOT NULL GROUP BY proto, port ORDER BY \
                 packets DESC LIMIT 10"
            ),
        ),
        (
            "tools (attributed sources)".to_string(),
            format!(
                "SELECT tool, count(DISTINCT ip4) AS sources, sum(packets) AS packets FROM (SELECT ip4, tool, packets, \
                 time, sensor, kind FROM findings UNION ALL SELECT ip4, tool, packets, time, sensor, kind FROM \
                 ongoing) WHERE sensor = '{scope}' AND kind = 'tool'{range} GROUP BY tool ORDER BY sources DESC \
                 LIMIT 10"
            ),
        ),
        (
            "top 10 source countries (scanning sources; needs --geoip)".to_string(),
            format!(
                "SELECT country, count(DISTINCT ip4) AS sources, sum(packets) AS packets FROM {SCANS} WHERE sensor = \
                 '{scope}' AND kind = 'scan' AND country IS NOT NULL{range} GROUP BY country ORDER BY sources DESC, \
                 country LIMIT 10"
            ),
        ),
        (
            "top 10 source ASNs (scanning sources; needs --geoip)".to_string(),
            format!(
                "SELECT asn, max(as_org) AS as_org, count(DISTINCT ip4) AS sources, sum(packets) AS packets FROM \
                 {SCANS} WHERE sensor = '{scope}' AND kind = 'scan' AND asn IS NOT NULL{range} GROUP BY asn ORDER \
                 BY sources DESC, asn LIMIT 10"
            ),
        ),
    ];
    for (title, sql) in sections {
        let (schema, batches) = rt.block_on(session.sql(&sql))?;
        if matches!(req.format, Format::Table) {
            writeln!(w, "== {title}")?;
        }
        write_batches(w, req.format, &schema, &batches)?;
        if matches!(req.format, Format::Table) {
            writeln!(w)?;
        }
    }
    Ok(())
}
