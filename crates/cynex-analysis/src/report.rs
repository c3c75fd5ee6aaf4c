//! `cynex report`: an observation report over a period — the same numbers as JSON and as a
//! self-contained HTML page (inline SVG charts, no script, no CDN), compared with the previous
//! period of the same length.

use std::io::Write;
use std::path::Path;

use cynex_lake::QuerySession;
use cynex_model::time::rfc3339_us;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{Error, Result};

/// Ports of IoT-targeting malware: Telnet 23/2323 (Mirai scanner.c), TR-069 7547 (Mirai variant
/// of Nov 2016), Huawei HG532 UPnP 37215 (Satori/Okiru, CVE-2017-17215), Realtek SDK 52869
/// (CVE-2014-8361), Android ADB 5555, MikroTik Winbox 8291.
pub const IOT_PORTS: [u16; 7] = [23, 2323, 7547, 37215, 52869, 5555, 8291];

#[derive(Debug, Clone, Serialize, Default)]
pub struct Period {
    pub from: String,
    pub to: String,
    pub packets: u64,
    pub tcp: u64,
    pub udp: u64,
    pub icmp: u64,
    pub backscatter_packets: u64,
    pub research_packets: u64,
    /// Packets per dark address over the period, and per day.
    pub per_address: f64,
    pub per_address_per_day: f64,
    pub unique_sources: u64,
    pub research_share: f64,
    pub iot_share: f64,
    pub top_ports: Vec<PortRow>,
    pub tools: Vec<ToolRow>,
    pub backscatter_attacks: u64,
    pub backscatter_victims: u64,
    pub scan_events: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PortRow {
    pub proto: String,
    pub port: u16,
    pub packets: u64,
    pub share: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ToolRow {
    pub tool: String,
    pub sources: u64,
    pub packets: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Attack {
    pub victim: String,
    pub start: String,
    pub end: String,
    pub vectors: String,
    pub packets: u64,
    pub estimated_pps: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Surge {
    pub hour: String,
    pub proto: String,
    pub port: u16,
    pub kind: String,
    pub sources: u64,
    pub z: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Campaign {
    pub start: String,
    pub end: String,
    pub tool: String,
    pub ports: String,
    pub sources: u64,
    pub packets: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scanning campaigns active in the period (largest first).
    pub campaigns: Vec<Campaign>,
    pub scope: String,
    pub generated: String,
    pub current: Period,
    pub previous: Period,
    /// Relative change of the main figures against the previous period (null when it had none).
    pub change: Map<String, Value>,
    pub hourly: Vec<(String, u64, u64)>,
    pub attacks: Vec<Attack>,
    pub surges: Vec<Surge>,
}

fn num(m: &Map<String, Value>, k: &str) -> f64 {
    m.get(k).and_then(|v| v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))).unwrap_or(0.0)
}

fn text(m: &Map<String, Value>, k: &str) -> String {
    m.get(k).map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).unwrap_or_default()
}

fn proto_name(p: f64) -> String {
    match p as u8 {
        6 => "tcp".into(),
        17 => "udp".into(),
        1 => "icmp".into(),
        x => x.to_string(),
    }
}

async fn period(q: &QuerySession, scope: &str, from: i64, to: i64) -> Result<Period> {
    let r = format!("sensor = '{scope}' AND time >= '{}' AND time < '{}'", rfc3339_us(from), rfc3339_us(to));
    let t = q
        .json_rows(&format!(
            "SELECT coalesce(sum(packets), 0) AS packets, coalesce(sum(tcp), 0) AS tcp, coalesce(sum(udp), 0) AS udp, \
         coalesce(sum(icmp), 0) AS icmp, coalesce(sum(backscatter), 0) AS bs, coalesce(sum(research), 0) AS research, \
         coalesce(sum(per_address), 0) AS per_address FROM stats WHERE bin = '1h' AND {r}"
        ))
        .await?;
    let t = t.first().cloned().unwrap_or_default();
    let packets = num(&t, "packets") as u64;
    let (days, hours) = ((to - from) as f64 / 86_400e6, (from / 3_600_000_000, to / 3_600_000_000));
    // Unique sources over the whole period: for exactly one UTC day the analysis counted them
    // (the `1d` bin); otherwise they come from the packets themselves (hourly counts cannot be
    // added up), the partition columns pruning the scan to the period.
    const DAY: i64 = 86_400_000_000;
    let src = if to - from == DAY && from.rem_euclid(DAY) == 0 {
        q.json_rows(&format!(
            "SELECT coalesce(sum(sources), 0) AS n FROM stats WHERE bin = '1d' AND sensor = '{scope}' AND time = '{}'",
            rfc3339_us(from)
        ))
        .await?
    } else {
        q.json_rows(&format!(
            "SELECT approx_distinct(src_ip4) AS n FROM packets WHERE ts >= '{}' AND ts < '{}' AND \
             (CAST(date AS BIGINT) * 24 + hour) BETWEEN {} AND {}",
            rfc3339_us(from),
            rfc3339_us(to),
            hours.0,
            hours.1
        ))
        .await?
    };
    let ports = q
        .json_rows(&format!(
            "SELECT proto, port, sum(packets) AS packets FROM port_stats WHERE port IS NOT NULL AND {r} \
         GROUP BY proto, port ORDER BY packets DESC, port, proto LIMIT 10"
        ))
        .await?;
    let iot = q
        .json_rows(&format!(
            "SELECT coalesce(sum(packets), 0) AS n FROM port_stats WHERE proto = 6 AND port IN ({}) AND {r}",
            IOT_PORTS.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(",")
        ))
        .await?;
    let probes = q.json_rows(&format!("SELECT coalesce(sum(packets), 0) AS n FROM port_stats WHERE {r}")).await?;
    let tools = q
        .json_rows(&format!(
            "SELECT tool, count(DISTINCT ip4) AS sources, sum(packets) AS packets FROM findings WHERE kind = 'tool' \
         AND {r} GROUP BY tool ORDER BY sources DESC, tool"
        ))
        .await?;
    let bs = q
        .json_rows(&format!(
            "SELECT count(*) AS n, count(DISTINCT ip4) AS v FROM findings WHERE kind = 'backscatter' AND {r}"
        ))
        .await?;
    let scans = q.json_rows(&format!("SELECT count(*) AS n FROM findings WHERE kind = 'scan' AND {r}")).await?;
    let first = |v: &[Map<String, Value>], k: &str| v.first().map_or(0.0, |m| num(m, k));
    let probe_packets = first(&probes, "n").max(1.0);
    Ok(Period {
        from: rfc3339_us(from),
        to: rfc3339_us(to),
        packets,
        tcp: num(&t, "tcp") as u64,
        udp: num(&t, "udp") as u64,
        icmp: num(&t, "icmp") as u64,
        backscatter_packets: num(&t, "bs") as u64,
        research_packets: num(&t, "research") as u64,
        per_address: num(&t, "per_address"),
        per_address_per_day: num(&t, "per_address") / days.max(1e-9),
        unique_sources: first(&src, "n") as u64,
        research_share: num(&t, "research") / (packets.max(1) as f64),
        iot_share: first(&iot, "n") / probe_packets,
        top_ports: ports
            .iter()
            .map(|m| PortRow {
                proto: proto_name(num(m, "proto")),
                port: num(m, "port") as u16,
                packets: num(m, "packets") as u64,
                share: num(m, "packets") / probe_packets,
            })
            .collect(),
        tools: tools
            .iter()
            .map(|m| ToolRow {
                tool: text(m, "tool"),
                sources: num(m, "sources") as u64,
                packets: num(m, "packets") as u64,
            })
            .collect(),
        backscatter_attacks: first(&bs, "n") as u64,
        backscatter_victims: first(&bs, "v") as u64,
        scan_events: first(&scans, "n") as u64,
    })
}

fn change(cur: f64, prev: f64) -> Value {
    if prev > 0.0 {
        serde_json::json!((cur - prev) / prev)
    } else {
        Value::Null
    }
}

/// The report over `[from, to)` of an analysis scope, with the previous period of the same
/// length for comparison.
pub async fn build(q: &QuerySession, scope: &str, from: i64, to: i64) -> Result<Report> {
    if !cynex_lake::valid_sensor_name(scope) {
        return Err(Error::Invalid(format!("bad scope name {scope:?}")));
    }
    if from >= to {
        return Err(Error::Invalid("the period must start before it ends (--from before --to)".into()));
    }
    let current = period(q, scope, from, to).await?;
    let previous = period(q, scope, from - (to - from), from).await?;
    let r = format!("sensor = '{scope}' AND time >= '{}' AND time < '{}'", rfc3339_us(from), rfc3339_us(to));
    let hourly = q
        .json_rows(&format!("SELECT time, packets, sources FROM stats WHERE bin = '1h' AND {r} ORDER BY time"))
        .await?
        .iter()
        .map(|m| (text(m, "time"), num(m, "packets") as u64, num(m, "sources") as u64))
        .collect();
    let attacks = q
        .json_rows(&format!(
            "SELECT ip4_str(ip4) AS victim, time, end_time, traffic, packets, rate FROM findings WHERE kind = \
             'backscatter' AND {r} ORDER BY packets DESC, ip4, time LIMIT 20"
        ))
        .await?
        .iter()
        .map(|m| Attack {
            victim: text(m, "victim"),
            start: text(m, "time"),
            end: text(m, "end_time"),
            vectors: text(m, "traffic"),
            packets: num(m, "packets") as u64,
            estimated_pps: num(m, "rate"),
        })
        .collect();
    let surges = q
        .json_rows(&format!(
            "SELECT time, proto, port, label, uniques, score FROM findings WHERE kind = 'surge' AND {r} ORDER BY time"
        ))
        .await?
        .iter()
        .map(|m| Surge {
            hour: text(m, "time"),
            proto: proto_name(num(m, "proto")),
            port: num(m, "port") as u16,
            kind: text(m, "label"),
            sources: num(m, "uniques") as u64,
            z: num(m, "score"),
        })
        .collect();
    let campaigns = q
        .json_rows(&format!(
            "SELECT time, end_time, coalesce(tool, 'unattributed') AS tool, label, uniques, packets FROM campaigns \
             WHERE {r} ORDER BY uniques DESC, time, id LIMIT 20"
        ))
        .await?
        .iter()
        .map(|m| Campaign {
            start: text(m, "time"),
            end: text(m, "end_time"),
            tool: text(m, "tool"),
            ports: text(m, "label"),
            sources: num(m, "uniques") as u64,
            packets: num(m, "packets") as u64,
        })
        .collect();
    let mut ch = Map::new();
    ch.insert("packets".into(), change(current.packets as f64, previous.packets as f64));
    ch.insert("unique_sources".into(), change(current.unique_sources as f64, previous.unique_sources as f64));
    ch.insert("per_address_per_day".into(), change(current.per_address_per_day, previous.per_address_per_day));
    ch.insert(
        "backscatter_attacks".into(),
        change(current.backscatter_attacks as f64, previous.backscatter_attacks as f64),
    );
    ch.insert("scan_events".into(), change(current.scan_events as f64, previous.scan_events as f64));
    Ok(Report {
        scope: scope.into(),
        generated: rfc3339_us(cynex_model::time::now_us()),
        current,
        previous,
        change: ch,
        hourly,
        attacks,
        surges,
        campaigns,
    })
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `2026-11-01T10:50:34.208823Z` as `2026-11-01 10:50:34`.
fn short(ts: &str) -> String {
    ts.get(..19).unwrap_or(ts).replace('T', " ")
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn delta(v: &Value) -> String {
    match v.as_f64() {
        Some(x) => format!(
            "<span class=\"{}\">{:+.1}%</span> vs previous period",
            if x >= 0.0 { "up" } else { "down" },
            x * 100.0
        ),
        None => "<span class=\"na\">no previous data</span>".into(),
    }
}

/// An SVG line chart of two hourly series (packets, sources) with its own scales.
fn line_chart(hourly: &[(String, u64, u64)]) -> String {
    let (w, h, pad) = (960.0, 260.0, 44.0);
    if hourly.is_empty() {
        return "<p class=\"na\">no hourly statistics in this period</p>".into();
    }
    let n = hourly.len().max(2) as f64 - 1.0;
    let maxp = hourly.iter().map(|r| r.1).max().unwrap_or(1).max(1) as f64;
    let maxs = hourly.iter().map(|r| r.2).max().unwrap_or(1).max(1) as f64;
    let pt =
        |i: usize, v: f64, m: f64| (pad + (w - 2.0 * pad) * i as f64 / n.max(1.0), h - pad - (h - 2.0 * pad) * v / m);
    let path = |sel: &dyn Fn(&(String, u64, u64)) -> f64, m: f64| {
        hourly
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let (x, y) = pt(i, sel(r), m);
                format!("{}{x:.1},{y:.1}", if i == 0 { "M" } else { "L" })
            })
            .collect::<String>()
    };
    let mut s = format!("<svg viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"packets and sources per hour\">");
    for k in 0..=4 {
        let y = pad + (h - 2.0 * pad) * k as f64 / 4.0;
        let v = maxp * (1.0 - k as f64 / 4.0);
        s += &format!(
            "<line x1=\"{pad}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"grid\"/><text x=\"{}\" y=\"{:.1}\" \
             class=\"axis\" text-anchor=\"end\">{}</text>",
            w - pad,
            pad - 6.0,
            y + 4.0,
            human(v)
        );
    }
    let step = (hourly.len() / 8).max(1);
    for (i, r) in hourly.iter().enumerate().step_by(step) {
        let (x, _) = pt(i, 0.0, 1.0);
        s += &format!(
            "<text x=\"{x:.1}\" y=\"{}\" class=\"axis\" text-anchor=\"middle\">{}</text>",
            h - pad + 18.0,
            esc(r.0.get(5..16).unwrap_or(&r.0))
        );
    }
    s += &format!("<path d=\"{}\" class=\"l1\"/>", path(&|r| r.1 as f64, maxp));
    s += &format!("<path d=\"{}\" class=\"l2\"/>", path(&|r| r.2 as f64, maxs));
    s += &format!(
        "<text x=\"{}\" y=\"16\" class=\"legend\" text-anchor=\"end\"><tspan class=\"k1\">■ packets</tspan> \
         <tspan class=\"k2\">■ unique sources (right scale, max {})</tspan></text></svg>",
        w - pad,
        human(maxs)
    );
    s
}

fn bar_chart(rows: &[PortRow]) -> String {
    let max = rows.iter().map(|r| r.packets).max().unwrap_or(1).max(1) as f64;
    let mut s = String::from("<svg viewBox=\"0 0 560 300\" role=\"img\" aria-label=\"top destination ports\">");
    for (i, r) in rows.iter().enumerate() {
        let y = 8.0 + i as f64 * 29.0;
        let bw = 330.0 * r.packets as f64 / max;
        s += &format!(
            "<text x=\"96\" y=\"{:.1}\" class=\"axis\" text-anchor=\"end\">{}/{}</text><rect x=\"104\" y=\"{y:.1}\" \
             width=\"{bw:.1}\" height=\"20\" class=\"bar{}\"/><text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\">{} \
             ({})</text>",
            y + 15.0,
            r.port,
            r.proto,
            if IOT_PORTS.contains(&r.port) { " iot" } else { "" },
            110.0 + bw,
            y + 15.0,
            human(r.packets as f64),
            pct(r.share)
        );
    }
    s + "</svg>"
}

fn human(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

pub fn html(r: &Report) -> String {
    let c = &r.current;
    let card = |label: &str, value: String, ch: Option<&Value>| {
        format!(
            "<div class=\"card\"><div class=\"label\">{label}</div><div class=\"value\">{value}</div>{}</div>",
            ch.map(|v| format!("<div class=\"delta\">{}</div>", delta(v))).unwrap_or_default()
        )
    };
    let mut body = String::new();
    body += &format!(
        "<header><h1>Darknet observation report</h1><p>{} — {} UTC · scope <b>{}</b> · generated {} UTC</p></header>",
        esc(&short(&c.from)),
        esc(&short(&c.to)),
        esc(&r.scope),
        esc(&short(&r.generated))
    );
    body += "<section class=\"cards\">";
    body += &card("packets", human(c.packets as f64), r.change.get("packets"));
    body += &card("unique sources", human(c.unique_sources as f64), r.change.get("unique_sources"));
    body += &card(
        "packets / dark address / day",
        format!("{:.1}", c.per_address_per_day),
        r.change.get("per_address_per_day"),
    );
    body += &card("scan events", human(c.scan_events as f64), r.change.get("scan_events"));
    body += &card("backscatter attacks", human(c.backscatter_attacks as f64), r.change.get("backscatter_attacks"));
    body += &card("research-scanner share", pct(c.research_share), None);
    body += &card("IoT-port share of probes", pct(c.iot_share), None);
    body += &card(
        "TCP / UDP / ICMP",
        format!(
            "{:.0} / {:.0} / {:.0} %",
            100.0 * c.tcp as f64 / c.packets.max(1) as f64,
            100.0 * c.udp as f64 / c.packets.max(1) as f64,
            100.0 * c.icmp as f64 / c.packets.max(1) as f64
        ),
        None,
    );
    body += "</section>";
    body += &format!("<section><h2>Packets and unique sources per hour</h2>{}</section>", line_chart(&r.hourly));
    body += "<section class=\"two\"><div><h2>Top 10 destination ports</h2>";
    body += &bar_chart(&c.top_ports);
    body += "<p class=\"note\">Orange: IoT-malware ports. Shares of probe packets (TCP SYN and UDP).</p></div><div><h2>Scanning tools</h2><table><tr><th>tool</th><th>sources</th><th>packets</th></tr>";
    for t in &c.tools {
        body +=
            &format!("<tr><td>{}</td><td>{}</td><td>{}</td></tr>", esc(&t.tool), t.sources, human(t.packets as f64));
    }
    body += "</table></div></section>";
    body += "<section><h2>Backscatter: DDoS victims seen through their replies</h2><table><tr><th>victim</th><th>start</th><th>end</th><th>vectors</th><th>packets</th><th>est. attack pps</th></tr>";
    for a in &r.attacks {
        body += &format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.victim),
            esc(&short(&a.start)),
            esc(&short(&a.end)),
            esc(&a.vectors),
            a.packets,
            human(a.estimated_pps)
        );
    }
    body += "</table></section><section><h2>Port surges</h2><table><tr><th>hour</th><th>port</th><th>kind</th><th>unique sources</th><th>robust z</th></tr>";
    for s in &r.surges {
        body += &format!(
            "<tr><td>{}</td><td>{}/{}</td><td>{}</td><td>{}</td><td>{:.1}</td></tr>",
            esc(&short(&s.hour)),
            s.port,
            esc(&s.proto),
            esc(&s.kind),
            s.sources,
            s.z
        );
    }
    body += "</table></section><section><h2>Scanning campaigns</h2><table><tr><th>start</th><th>end</th><th>tool</th><th>ports</th><th>sources</th><th>packets</th></tr>";
    for c in &r.campaigns {
        body += &format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&short(&c.start)),
            esc(&short(&c.end)),
            esc(&c.tool),
            esc(&c.ports),
            c.sources,
            human(c.packets as f64)
        );
    }
    body += "</table><p class=\"note\">Sources with the same tool and the same target ports, active in overlapping time (see the method in each campaign's evidence).</p>";
    body += &format!(
        "</section><footer>Previous period {} — {}: {} packets, {} unique sources. Numbers: the JSON file of \
         the same name. cynex {}</footer>",
        esc(&short(&r.previous.from)),
        esc(&short(&r.previous.to)),
        human(r.previous.packets as f64),
        human(r.previous.unique_sources as f64),
        env!("CARGO_PKG_VERSION")
    );
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>cynex observation report {}</title>\
         <style>{CSS}</style></head><body>{body}</body></html>\n",
        esc(&c.from)
    )
}

const CSS: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:0;background:#0f1420;color:#dde3ee}\
header,section,footer{padding:12px 28px}h1{margin:8px 0 0;font-size:24px}h2{font-size:16px;color:#9fb3d1;margin:8px 0}\
header p{color:#8a97ad;margin:4px 0}.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:12px}\
.card{background:#182033;border-radius:8px;padding:12px 16px}.label{color:#8a97ad;font-size:12px;text-transform:uppercase}\
.value{font-size:24px;font-weight:600;margin:4px 0}.delta{font-size:12px}.up{color:#ff9e64}.down{color:#7dcfff}.na{color:#6b7689}\
svg{width:100%;height:auto;background:#141b2b;border-radius:8px}.grid{stroke:#263049}.axis{fill:#8a97ad;font-size:11px}\
.l1{fill:none;stroke:#7aa2f7;stroke-width:2}.l2{fill:none;stroke:#9ece6a;stroke-width:2}.k1{fill:#7aa2f7}.k2{fill:#9ece6a}\
.legend{font-size:12px}.bar{fill:#7aa2f7}.bar.iot{fill:#ff9e64}.two{display:grid;grid-template-columns:3fr 2fr;gap:20px}\
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #263049}\
th{color:#9fb3d1}.note{color:#6b7689;font-size:12px}footer{color:#6b7689;font-size:12px}";

/// Write `<out>.html` and `<out>.json`.
pub fn write(r: &Report, out: &Path, w: &mut dyn Write) -> Result<()> {
    let html_path = out.with_extension("html");
    let json_path = out.with_extension("json");
    let io = |p: &Path| {
        let context = format!("writing {}", p.display());
        move |source| Error::Io { context, source }
    };
    std::fs::write(&html_path, html(r)).map_err(io(&html_path))?;
    let json = serde_json::to_vec_pretty(r).map_err(|e| Error::Invalid(format!("report as JSON: {e}")))?;
    std::fs::write(&json_path, json).map_err(io(&json_path))?;
    writeln!(
        w,
        "report {} .. {}: {} packets, {} unique sources, {} scan events, {} backscatter attacks, {} surges\nwrote {} and {}",
        r.current.from,
        r.current.to,
        r.current.packets,
        r.current.unique_sources,
        r.current.scan_events,
        r.current.backscatter_attacks,
        r.surges.len(),
        html_path.display(),
        json_path.display()
    )
    .map_err(|source| Error::Io { context: "writing the report summary".into(), source })?;
    Ok(())
}
