//! Correlation (CURE's question "where has this shown up?"): for an observable, or every value of
//! an indicator, the intelligence that mentions it, the member sensors whose events saw it (a
//! retro-hunt over the lake's `events`), and the darknet findings about it — each answered only
//! with what the asker may see:
//!
//! - intelligence through the store's TLP rule (the correlation index is filtered like TAXII);
//! - events: a member sees its own organisation's sensors only; the operator sees every member's
//!   (members learn nothing of other members' sightings, not even a count);
//! - findings: scanning and tool findings are community (GREEN) knowledge; a backscatter victim
//!   is shown to the operator and to the member whose registered space holds it.

use cynex_lake::{Lake, QueryOptions, QuerySession};
use cynex_model::ip::Ipv4Net;
use cynex_store::{Principal, Tlp, Viewer};
use serde::Serialize;
use serde_json::Value;

use crate::feeds::export::indicator_values;
use crate::hub::Hub;
use crate::stix::{normalise_query, Object};
use crate::Result;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IntelHit {
    pub collection: String,
    pub id: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub name: Option<String>,
    pub tlp: Tlp,
    pub date_added: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SensorHit {
    pub organisation: String,
    pub sensor: String,
    pub format: String,
    pub events: u64,
    pub first: String,
    pub last: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FindingHit {
    pub kind: String,
    pub time: String,
    pub end_time: String,
    pub port: Option<u64>,
    pub tool: Option<String>,
    pub packets: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Correlation {
    /// The values looked up (one, or an indicator's).
    pub values: Vec<String>,
    pub intel: Vec<IntelHit>,
    pub sensors: Vec<SensorHit>,
    pub findings: Vec<FindingHit>,
}

fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Correlate `query` (an observable value or an indicator id) for `who` (`None`: anonymous,
/// who sees only CLEAR intelligence and nothing of the lake).
pub async fn correlate(
    hub: &Hub,
    lake: &Lake,
    who: Option<&Principal>,
    query: &str,
    limit: usize,
) -> Result<Correlation> {
    let viewer = who.map(Principal::viewer).unwrap_or_else(Viewer::anonymous);
    let mut out = Correlation::default();
    let q = query.trim();
    if q.starts_with("indicator--") {
        // Only an indicator the asker may see can be correlated.
        for c in hub.store.collections().await? {
            if !c.can_read(&viewer) {
                continue;
            }
            let page = hub
                .store
                .objects(
                    &viewer,
                    &cynex_store::ObjectQuery {
                        collection_id: c.id.clone(),
                        ids: vec![q.to_string()],
                        limit: 1,
                        ..Default::default()
                    },
                )
                .await?;
            if let Some(s) = page.items.first() {
                if let Ok(o) =
                    serde_json::from_str::<Value>(&s.body).map_err(|_| ()).and_then(|v| Object::new(v).map_err(|_| ()))
                {
                    out.values.extend(indicator_values(&o, s.meta.tlp).into_iter().map(|v| v.value));
                }
            }
        }
        out.values.sort();
        out.values.dedup();
    } else {
        out.values.push(normalise_query(q));
    }
    let aliases: std::collections::BTreeMap<String, String> =
        hub.store.collections().await?.into_iter().map(|c| (c.id, c.alias)).collect();
    for v in out.values.clone() {
        for s in hub.store.objects_mentioning(&viewer, &v, limit).await? {
            let name = serde_json::from_str::<Value>(&s.body)
                .ok()
                .and_then(|b| b.get("name").and_then(Value::as_str).map(str::to_string));
            out.intel.push(IntelHit {
                collection: aliases.get(&s.meta.collection_id).cloned().unwrap_or_default(),
                id: s.meta.id,
                type_: s.meta.type_,
                name,
                tlp: s.meta.tlp,
                date_added: s.meta.date_added,
            });
        }
    }
    out.intel.dedup_by(|a, b| a.id == b.id && a.date_added == b.date_added);
    let Some(p) = who else { return Ok(out) };
    if out.values.is_empty() {
        return Ok(out);
    }
    let session = QuerySession::open(lake, &QueryOptions::default())?;
    let vals = out.values.iter().map(|v| sql_str(v)).collect::<Vec<_>>().join(", ");
    let org_filter = if p.is_operator() { String::new() } else { format!(" AND organisation = {}", sql_str(&p.org)) };
    let rows = session
        .json_rows(&format!(
            "SELECT organisation, sensor, format, count(*) AS n, min(time) AS first, max(time) AS last FROM events \
             WHERE (src_endpoint_ip IN ({vals}) OR dst_endpoint_ip IN ({vals}) OR dns_query_hostname IN ({vals}) \
             OR http_request_hostname IN ({vals}) OR tls_sni IN ({vals}) OR url_text IN ({vals}) \
             OR lower(file_hashes_sha256) IN ({vals}) OR lower(file_hashes_md5) IN ({vals})){org_filter} \
             GROUP BY organisation, sensor, format ORDER BY n DESC LIMIT {limit}"
        ))
        .await?;
    for r in rows {
        let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        out.sensors.push(SensorHit {
            organisation: s("organisation"),
            sensor: s("sensor"),
            format: s("format"),
            events: r.get("n").and_then(Value::as_u64).unwrap_or(0),
            first: s("first"),
            last: s("last"),
        });
    }
    let ips: Vec<u32> = out.values.iter().filter_map(|v| v.parse::<std::net::Ipv4Addr>().ok()).map(u32::from).collect();
    if !ips.is_empty() {
        let own: Vec<Ipv4Net> = if p.is_operator() {
            Vec::new()
        } else {
            hub.store.prefixes(Some(&p.org_id)).await?.into_iter().map(|x| x.prefix).collect()
        };
        let list = ips.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
        let rows = session
            .json_rows(&format!(
                "SELECT kind, time, end_time, port, tool, packets, ip4 FROM findings WHERE ip4 IN ({list}) \
                 AND kind IN ('scan', 'tool', 'backscatter') ORDER BY time LIMIT {limit}"
            ))
            .await?;
        for r in rows {
            let kind = r.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
            let ip = r.get("ip4").and_then(Value::as_u64).unwrap_or(0) as u32;
            if kind == "backscatter" && !p.is_operator() && !own.iter().any(|n| n.contains(ip)) {
                continue;
            }
            out.findings.push(FindingHit {
                kind,
                time: r.get("time").and_then(Value::as_str).unwrap_or_default().to_string(),
                end_time: r.get("end_time").and_then(Value::as_str).unwrap_or_default().to_string(),
                port: r.get("port").and_then(Value::as_u64),
                tool: r.get("tool").and_then(Value::as_str).map(str::to_string),
                packets: r.get("packets").and_then(Value::as_u64).unwrap_or(0),
            });
        }
    }
    Ok(out)
}
