//! The darknet views: the overview (time series and top lists, from the pre-aggregated `stats`,
//! `port_stats` and `findings` tables, never a scan of raw packets), findings with their evidence
//! and the packets behind them, campaigns, and SQL for analysts.
//!
//! Overview answers are cached per (parameters, lake commit): a dashboard on a wall asking every
//! few seconds costs one look at the commit log, not a query.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cynex_lake::{QueryOptions, QuerySession};
use cynex_model::ip::fmt_ip4;
use cynex_model::time::{parse_rfc3339_us, rfc3339_us};
use cynex_store::Principal;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{ApiError, ApiResult, Authed, Body, Operator, Q};
use crate::AppState;

const DAY_US: i64 = 86_400_000_000;

fn session(st: &AppState) -> ApiResult<QuerySession> {
    Ok(QuerySession::open(&st.lake, &QueryOptions { memory_limit: 512 << 20, ..QueryOptions::default() })?)
}

fn esc(s: &str) -> String {
    s.replace('\'', "''")
}

fn valid_scope(s: &str) -> ApiResult<&str> {
    if cynex_lake::valid_sensor_name(s) {
        Ok(s)
    } else {
        Err(ApiError::bad_request(format!("scope {s:?} is not a valid analysis scope name")))
    }
}

fn time_param(name: &str, v: &Option<String>) -> ApiResult<Option<i64>> {
    match v {
        None => Ok(None),
        Some(s) => parse_rfc3339_us(s)
            .map(Some)
            .ok_or_else(|| ApiError::bad_request(format!("{name} {s:?} is not an RFC 3339 time or a date"))),
    }
}

fn num(m: &Map<String, Value>, k: &str) -> f64 {
    m.get(k).and_then(|v| v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))).unwrap_or(0.0)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RangeParams {
    scope: Option<String>,
    from: Option<String>,
    to: Option<String>,
    bin: Option<String>,
    limit: Option<usize>,
}

/// The period asked for, or the last day with statistics.
async fn period(q: &QuerySession, scope: &str, p: &RangeParams) -> ApiResult<(i64, i64)> {
    let from = time_param("from", &p.from)?;
    let to = time_param("to", &p.to)?;
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            return Err(ApiError::bad_request("from must be before to"));
        }
        return Ok((f, t));
    }
    let rows = q
        .json_rows(&format!("SELECT max(time) AS t FROM stats WHERE sensor = '{}' AND bin = '1d'", esc(scope)))
        .await?;
    let last = rows.first().and_then(|r| r.get("t")).and_then(Value::as_str).and_then(parse_rfc3339_us);
    let end = to
        .or(last.map(|d| d + DAY_US))
        .unwrap_or_else(|| cynex_model::time::now_us().div_euclid(DAY_US) * DAY_US + DAY_US);
    let start = from.unwrap_or(end - DAY_US);
    Ok((start, end))
}

struct Cached {
    seq: u64,
    checked: Instant,
    body: Arc<String>,
}

fn cache() -> &'static Mutex<HashMap<String, Cached>> {
    static C: OnceLock<Mutex<HashMap<String, Cached>>> = OnceLock::new();
    C.get_or_init(|| Mutex::new(HashMap::new()))
}

/// A cached JSON answer for `key`, valid while the lake has no new commit (checked at most once
/// a second), else computed by `f`.
async fn cached<F, Fut>(st: &AppState, key: String, f: F) -> ApiResult<Response>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ApiResult<Value>>,
{
    let lake_root = st.lake.root().display().to_string();
    let key = format!("{lake_root}|{key}");
    {
        let mut c = cache().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = c.get_mut(&key) {
            if e.checked.elapsed() < Duration::from_secs(1) {
                return Ok(json_response(Arc::clone(&e.body)));
            }
        }
    }
    let seq = st.lake.seq()?;
    {
        let mut c = cache().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = c.get_mut(&key) {
            if e.seq == seq {
                e.checked = Instant::now();
                return Ok(json_response(Arc::clone(&e.body)));
            }
        }
    }
    let body = Arc::new(f().await?.to_string());
    let mut c = cache().lock().unwrap_or_else(|e| e.into_inner());
    if c.len() > 256 {
        c.clear();
    }
    c.insert(key, Cached { seq, checked: Instant::now(), body: Arc::clone(&body) });
    Ok(json_response(body))
}

fn json_response(body: Arc<String>) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], body.as_str().to_string()).into_response()
}

fn bin_of(p: &RangeParams) -> ApiResult<&str> {
    match p.bin.as_deref().unwrap_or("1h") {
        b @ ("5m" | "1h" | "1d") => Ok(b),
        b => Err(ApiError::bad_request(format!("bin {b:?}: 5m, 1h or 1d"))),
    }
}

pub(crate) async fn overview(
    State(st): State<AppState>,
    Authed(_): Authed,
    Q(p): Q<RangeParams>,
) -> ApiResult<Response> {
    let scope = valid_scope(p.scope.as_deref().unwrap_or("all"))?.to_string();
    let bin = bin_of(&p)?.to_string();
    let limit = p.limit.unwrap_or(10).clamp(1, 100);
    let key = format!("overview|{scope}|{:?}|{:?}|{bin}|{limit}", p.from, p.to);
    let st2 = st.clone();
    cached(&st, key, move || async move {
        let q = session(&st2)?;
        let (from, to) = period(&q, &scope, &p).await?;
        let r = format!("sensor = '{}' AND time >= '{}' AND time < '{}'", esc(&scope), rfc3339_us(from), rfc3339_us(to));
        let series = q
            .json_rows(&format!(
                "SELECT time, packets, bytes, sources, tcp, udp, icmp, other, backscatter, research, per_address FROM stats \
                 WHERE bin = '{bin}' AND {r} ORDER BY time"
            ))
            .await?;
        let totals = q
            .json_rows(&format!(
                "SELECT coalesce(sum(packets), 0) AS packets, coalesce(sum(bytes), 0) AS bytes, coalesce(sum(tcp), 0) AS tcp, \
                 coalesce(sum(udp), 0) AS udp, coalesce(sum(icmp), 0) AS icmp, coalesce(sum(other), 0) AS other, \
                 coalesce(sum(backscatter), 0) AS backscatter, coalesce(sum(research), 0) AS research, \
                 coalesce(sum(per_address), 0) AS per_address, coalesce(max(sources), 0) AS peak_sources \
                 FROM stats WHERE bin = '1h' AND {r}"
            ))
            .await?;
        let days = q
            .json_rows(&format!("SELECT coalesce(sum(sources), 0) AS s, count(*) AS n FROM stats WHERE bin = '1d' AND {r}"))
            .await?;
        let ports = q
            .json_rows(&format!(
                "SELECT proto, port, sum(packets) AS packets, max(sources) AS sources FROM port_stats \
                 WHERE port IS NOT NULL AND {r} GROUP BY proto, port ORDER BY packets DESC, port LIMIT {limit}"
            ))
            .await?;
        // Findings overlapping the period.
        let fr = format!("sensor = '{}' AND end_time >= '{}' AND time < '{}'", esc(&scope), rfc3339_us(from), rfc3339_us(to));
        let countries = q
            .json_rows(&format!(
                "SELECT country, count(DISTINCT ip4) AS sources, sum(packets) AS packets FROM findings \
                 WHERE kind = 'scan' AND country IS NOT NULL AND {fr} GROUP BY country ORDER BY sources DESC, country LIMIT {limit}"
            ))
            .await?;
        let asns = q
            .json_rows(&format!(
                "SELECT asn, max(as_org) AS as_org, count(DISTINCT ip4) AS sources FROM findings \
                 WHERE kind = 'scan' AND asn IS NOT NULL AND {fr} GROUP BY asn ORDER BY sources DESC, asn LIMIT {limit}"
            ))
            .await?;
        let tools = q
            .json_rows(&format!(
                "SELECT tool, count(DISTINCT ip4) AS sources, sum(packets) AS packets FROM findings \
                 WHERE kind = 'tool' AND {fr} GROUP BY tool ORDER BY sources DESC, tool LIMIT {limit}"
            ))
            .await?;
        let kinds = q
            .json_rows(&format!("SELECT kind, count(*) AS n FROM findings WHERE {fr} GROUP BY kind ORDER BY kind"))
            .await?;
        let campaigns = q.json_rows(&format!("SELECT count(*) AS n FROM campaigns WHERE {fr}")).await?;
        let t = totals.first().cloned().unwrap_or_default();
        let mut finding_counts = Map::new();
        for k in &kinds {
            finding_counts.insert(k.get("kind").and_then(Value::as_str).unwrap_or_default().to_string(), json!(num(k, "n") as u64));
        }
        finding_counts.insert("campaign".into(), json!(campaigns.first().map_or(0.0, |m| num(m, "n")) as u64));
        let day_sources = days.first().map_or(0.0, |m| num(m, "s")) as u64;
        Ok(json!({
            "scope": scope, "from": rfc3339_us(from), "to": rfc3339_us(to), "bin": bin,
            "totals": {
                "packets": num(&t, "packets") as u64, "bytes": num(&t, "bytes") as u64,
                "tcp": num(&t, "tcp") as u64, "udp": num(&t, "udp") as u64, "icmp": num(&t, "icmp") as u64,
                "other": num(&t, "other") as u64, "backscatter": num(&t, "backscatter") as u64,
                "research": num(&t, "research") as u64, "per_address": num(&t, "per_address"),
                "peak_hourly_sources": num(&t, "peak_sources") as u64,
                // Unique sources per day summed over the days in range (exact for one day).
                "daily_sources": day_sources,
            },
            "series": series,
            "top_ports": ports.iter().map(|m| json!({
                "proto": super::proto_label(num(m, "proto") as u8), "port": num(m, "port") as u64,
                "packets": num(m, "packets") as u64, "sources": num(m, "sources") as u64,
            })).collect::<Vec<_>>(),
            "top_countries": countries,
            "top_asns": asns,
            "top_tools": tools,
            "findings": finding_counts,
        }))
    })
    .await
}

pub(crate) async fn stats(State(st): State<AppState>, Authed(_): Authed, Q(p): Q<RangeParams>) -> ApiResult<Response> {
    let scope = valid_scope(p.scope.as_deref().unwrap_or("all"))?.to_string();
    let bin = bin_of(&p)?.to_string();
    let key = format!("stats|{scope}|{:?}|{:?}|{bin}", p.from, p.to);
    let st2 = st.clone();
    cached(&st, key, move || async move {
        let q = session(&st2)?;
        let (from, to) = period(&q, &scope, &p).await?;
        let rows = q
            .json_rows(&format!(
                "SELECT time, packets, bytes, sources, tcp, udp, icmp, other, backscatter, research, per_address FROM stats \
                 WHERE sensor = '{}' AND bin = '{bin}' AND time >= '{}' AND time < '{}' ORDER BY time",
                esc(&scope),
                rfc3339_us(from),
                rfc3339_us(to)
            ))
            .await?;
        Ok(json!({"scope": scope, "bin": bin, "from": rfc3339_us(from), "to": rfc3339_us(to), "series": rows}))
    })
    .await
}

pub(crate) async fn ports(State(st): State<AppState>, Authed(_): Authed, Q(p): Q<RangeParams>) -> ApiResult<Response> {
    let scope = valid_scope(p.scope.as_deref().unwrap_or("all"))?.to_string();
    let limit = p.limit.unwrap_or(10).clamp(1, 1000);
    let key = format!("ports|{scope}|{:?}|{:?}|{limit}", p.from, p.to);
    let st2 = st.clone();
    cached(&st, key, move || async move {
        let q = session(&st2)?;
        let (from, to) = period(&q, &scope, &p).await?;
        let rows = q
            .json_rows(&format!(
                "SELECT time, proto, port, packets, sources FROM port_stats WHERE sensor = '{}' AND port IS NOT NULL \
                 AND time >= '{}' AND time < '{}' ORDER BY time, packets DESC",
                esc(&scope),
                rfc3339_us(from),
                rfc3339_us(to)
            ))
            .await?;
        // Per hour, the top `limit` ports.
        let mut per_hour: Vec<Value> = Vec::new();
        let mut last = String::new();
        let mut n = 0;
        for r in rows {
            let t = r.get("time").and_then(Value::as_str).unwrap_or_default().to_string();
            if t != last {
                last = t;
                n = 0;
            }
            n += 1;
            if n <= limit {
                per_hour.push(Value::Object(r));
            }
        }
        Ok(json!({"scope": scope, "from": rfc3339_us(from), "to": rfc3339_us(to), "hours": per_hour}))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FindingsParams {
    scope: Option<String>,
    kind: Option<String>,
    from: Option<String>,
    to: Option<String>,
    ip: Option<String>,
    port: Option<u16>,
    tool: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

/// The SQL condition that keeps a member to what it may see of the findings: everything but the
/// backscatter victims outside its own registered space.
async fn member_filter(st: &AppState, p: &Principal) -> ApiResult<String> {
    if p.is_operator() {
        return Ok(String::new());
    }
    let own = st.store.prefixes(Some(&p.org_id)).await?;
    let inside: Vec<String> = own
        .iter()
        .map(|x| format!("(ip4 BETWEEN {} AND {})", x.prefix.addr, u64::from(x.prefix.addr) + x.prefix.size() - 1))
        .collect();
    Ok(if inside.is_empty() {
        " AND kind <> 'backscatter'".to_string()
    } else {
        format!(" AND (kind <> 'backscatter' OR {})", inside.join(" OR "))
    })
}

const FINDING_COLS: &str = "id, kind, time, end_time, ip4_str(ip4) AS ip, port, proto, traffic, tool, label, packets, \
                            uniques, unique_24s, rate, score, country, asn, as_org, evidence";

fn finding_json(mut m: Map<String, Value>) -> Value {
    if let Some(Value::String(ev)) = m.get("evidence") {
        let parsed = serde_json::from_str(ev).unwrap_or(Value::Null);
        m.insert("evidence".into(), parsed);
    }
    if let Some(p) = m.get("proto").and_then(Value::as_u64) {
        m.insert("proto_name".into(), json!(super::proto_label(p as u8)));
    }
    Value::Object(m)
}

pub(crate) async fn findings(
    State(st): State<AppState>,
    Authed(p): Authed,
    Q(f): Q<FindingsParams>,
) -> ApiResult<Json<Value>> {
    let scope = valid_scope(f.scope.as_deref().unwrap_or("all"))?;
    let mut w = format!("sensor = '{}'", esc(scope));
    if let Some(k) = &f.kind {
        if !matches!(k.as_str(), "scan" | "tool" | "backscatter" | "surge") {
            return Err(ApiError::bad_request(format!(
                "kind {k:?}: scan, tool, backscatter or surge (campaigns: /campaigns)"
            )));
        }
        w += &format!(" AND kind = '{k}'");
    }
    if let Some(t) = time_param("from", &f.from)? {
        w += &format!(" AND end_time >= '{}'", rfc3339_us(t));
    }
    if let Some(t) = time_param("to", &f.to)? {
        w += &format!(" AND time < '{}'", rfc3339_us(t));
    }
    if let Some(ip) = &f.ip {
        let a: std::net::Ipv4Addr =
            ip.parse().map_err(|_| ApiError::bad_request(format!("ip {ip:?} is not an IPv4 address")))?;
        w += &format!(" AND ip4 = {}", u32::from(a));
    }
    if let Some(port) = f.port {
        w += &format!(" AND port = {port}");
    }
    if let Some(t) = &f.tool {
        w += &format!(" AND tool = '{}'", esc(t));
    }
    w += &member_filter(&st, &p).await?;
    let limit = f.limit.unwrap_or(100).clamp(1, 1000);
    let offset = f.offset.unwrap_or(0);
    let q = session(&st)?;
    let rows = q
        .json_rows(&format!(
            "SELECT {FINDING_COLS} FROM findings WHERE {w} ORDER BY packets DESC, time, id LIMIT {} OFFSET {offset}",
            limit + 1
        ))
        .await?;
    let more = rows.len() > limit;
    let items: Vec<Value> = rows.into_iter().take(limit).map(finding_json).collect();
    Ok(Json(json!({"findings": items, "more": more, "offset": offset, "limit": limit})))
}

pub(crate) async fn finding(
    State(st): State<AppState>,
    Authed(p): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(ApiError::not_found("finding"));
    }
    let filter = member_filter(&st, &p).await?;
    let q = session(&st)?;
    let rows = q
        .json_rows(&format!(
            "SELECT {FINDING_COLS}, sensor AS scope, ip4 AS ip4_num FROM findings WHERE id = '{id}'{filter} LIMIT 1"
        ))
        .await?;
    let Some(row) = rows.into_iter().next() else { return Err(ApiError::not_found("finding")) };
    let ip4 = row.get("ip4_num").and_then(Value::as_u64);
    let (time, end) = (
        row.get("time").and_then(Value::as_str).and_then(parse_rfc3339_us).unwrap_or(0),
        row.get("end_time").and_then(Value::as_str).and_then(parse_rfc3339_us).unwrap_or(0),
    );
    let kind = row.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
    let port = row.get("port").and_then(Value::as_u64);
    let mut out = finding_json(row);
    // The packets behind it: the SQL an analyst can run, and for operators the first of them.
    if let Some(ip) = ip4 {
        let (d0, d1) = (time.div_euclid(DAY_US), end.div_euclid(DAY_US));
        // A scanner sends the packets; a backscatter victim sends its replies (SYN-ACK, RST), so
        // both are the packets' source (ICMP errors quoting the victim are left out here).
        let mut sql = format!(
            "SELECT ts, ip4_str(src_ip4) AS src, ip4_str(dst_ip4) AS dst, proto, src_port, dst_port, tcp_flags, ttl, ip_id, \
             fp, tags FROM packets WHERE src_ip4 = {ip} AND ts >= '{}' AND ts <= '{}' AND date BETWEEN DATE '{}' AND DATE '{}'",
            rfc3339_us(time),
            rfc3339_us(end),
            cynex_model::time::date_string(d0),
            cynex_model::time::date_string(d1)
        );
        if kind == "scan" {
            if let Some(pt) = port {
                sql += &format!(" AND dst_port = {pt}");
            }
        }
        sql += " ORDER BY ts";
        if let Some(m) = out.as_object_mut() {
            m.insert("packets_sql".into(), json!(sql));
            m.insert("ip_text".into(), json!(fmt_ip4(ip as u32)));
            if p.is_operator() {
                let sample = q.json_rows(&format!("{sql} LIMIT 50")).await?;
                m.insert("packets_sample".into(), json!(sample));
            }
            m.remove("ip4_num");
        }
    }
    Ok(Json(out))
}

pub(crate) async fn campaigns(
    State(st): State<AppState>,
    Authed(_): Authed,
    Q(p): Q<RangeParams>,
) -> ApiResult<Json<Value>> {
    let scope = valid_scope(p.scope.as_deref().unwrap_or("all"))?;
    let limit = p.limit.unwrap_or(50).clamp(1, 500);
    let mut w = format!("sensor = '{}'", esc(scope));
    if let Some(t) = time_param("from", &p.from)? {
        w += &format!(" AND end_time >= '{}'", rfc3339_us(t));
    }
    if let Some(t) = time_param("to", &p.to)? {
        w += &format!(" AND time < '{}'", rfc3339_us(t));
    }
    let q = session(&st)?;
    let rows = q
        .json_rows(&format!(
            "SELECT id, time, end_time, coalesce(tool, 'unattributed') AS tool, label AS ports, uniques AS sources, \
             unique_24s, packets, evidence FROM campaigns WHERE {w} ORDER BY uniques DESC, time LIMIT {limit}"
        ))
        .await?;
    Ok(Json(json!({"campaigns": rows.into_iter().map(finding_json).collect::<Vec<_>>()})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QueryBody {
    sql: String,
    limit: Option<usize>,
}

/// Only queries: a DDL or COPY statement could read or write files on the server.
fn read_only(sql: &str) -> ApiResult<()> {
    use datafusion::sql::sqlparser::ast::Statement;
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    let stmts = Parser::parse_sql(&GenericDialect {}, sql)
        .map_err(|e| ApiError::new(axum::http::StatusCode::BAD_REQUEST, "bad_query", e.to_string()))?;
    match stmts.as_slice() {
        [Statement::Query(_)] => Ok(()),
        [_] => {
            Err(ApiError::new(axum::http::StatusCode::BAD_REQUEST, "read_only", "only SELECT queries are allowed here"))
        }
        _ => Err(ApiError::new(axum::http::StatusCode::BAD_REQUEST, "bad_query", "send exactly one statement")),
    }
}

pub(crate) async fn query(
    State(st): State<AppState>,
    Operator(p): Operator,
    Body(b): Body<QueryBody>,
) -> ApiResult<Json<Value>> {
    read_only(&b.sql)?;
    let limit = b.limit.unwrap_or(1000).clamp(1, 10_000);
    let started = Instant::now();
    let q = session(&st)?;
    let run = async {
        let df = q.context().sql(&b.sql).await.map_err(cynex_lake::Error::from)?;
        let df = df.limit(0, Some(limit + 1)).map_err(cynex_lake::Error::from)?;
        let schema = df.schema().as_arrow().clone();
        let batches = df.collect().await.map_err(cynex_lake::Error::from)?;
        Ok::<_, cynex_lake::Error>((schema, batches))
    };
    let (schema, batches) = tokio::time::timeout(Duration::from_secs(120), run).await.map_err(|_| {
        ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "timeout", "the query ran longer than 120 s")
    })??;
    let columns: Vec<Value> = schema
        .fields()
        .iter()
        .map(|f| json!({"name": f.name(), "type": f.data_type().to_string(), "numeric": f.data_type().is_numeric()}))
        .collect();
    let opts = FormatOptions::default().with_null("");
    let mut rows: Vec<Value> = Vec::new();
    'outer: for b in &batches {
        let fmts: Vec<ArrayFormatter> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
            .collect::<Result<_, _>>()
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        for r in 0..b.num_rows() {
            if rows.len() > limit {
                break 'outer;
            }
            let cells: Vec<Value> = b
                .columns()
                .iter()
                .zip(&fmts)
                .map(|(c, f)| if c.is_null(r) { Value::Null } else { json!(f.value(r).to_string()) })
                .collect();
            rows.push(Value::Array(cells));
        }
    }
    let truncated = rows.len() > limit;
    rows.truncate(limit);
    tracing::info!(user = %p.user, rows = rows.len(), ms = started.elapsed().as_millis() as u64, "analyst query");
    Ok(Json(
        json!({"columns": columns, "rows": rows, "truncated": truncated, "elapsed_ms": started.elapsed().as_millis() as u64}),
    ))
}
