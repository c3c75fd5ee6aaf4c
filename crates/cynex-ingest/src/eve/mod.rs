//! Suricata EVE JSON: one event per line (JSONL), and also events pretty-printed over several
//! lines (a line holding only `{` starts one), into `events` rows.
//!
//! Every `event_type` is accepted: alert, flow, netflow, dns, http, tls, fileinfo, anomaly, drop,
//! ssh and stats get first-class columns (OCSF mapping after Tenzir's, see
//! ../shared/reference/lake.md §2.2); any other type is kept with its endpoints and raw record.
//! A line that is not a JSON object, lacks `timestamp`/`event_type`, has them of the wrong type,
//! is not UTF-8, or exceeds [`MAX_RECORD`] goes to quarantine with its line number and reason.

use std::io::BufRead;

pub use crate::records::{Decoded, RawRecord, RecordSplitter, Split, MAX_RECORD};
use cynex_model::event::EventRecord;
use cynex_model::time::parse_rfc3339_us;
use serde_json::{Map, Value};

fn s(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    match cur {
        Value::String(x) => Some(x.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn u(v: &Value, path: &[&str]) -> Option<u64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_u64().or_else(|| cur.as_str().and_then(|x| x.parse().ok()))
}

/// OCSF class of an EVE event type.
fn class_of(event_type: &str) -> u32 {
    match event_type {
        "alert" | "anomaly" => 2004,
        "flow" | "netflow" | "drop" | "tls" => 4001,
        "http" => 4002,
        "dns" => 4003,
        "ssh" => 4007,
        "fileinfo" => 4010,
        _ => 0,
    }
}

/// Normalise one EVE record. `raw` must be the record's bytes.
pub fn normalize(raw: &[u8], source: &str, line: u64) -> Result<EventRecord, String> {
    let text = std::str::from_utf8(raw).map_err(|e| format!("not UTF-8 at byte {}", e.valid_up_to()))?;
    let v: Value = serde_json::from_str(text).map_err(|e| format!("bad JSON: {e}"))?;
    let obj: &Map<String, Value> = v.as_object().ok_or("not a JSON object")?;
    let ts = match obj.get("timestamp") {
        Some(Value::String(t)) => parse_rfc3339_us(t).ok_or_else(|| format!("bad timestamp {t:?}"))?,
        Some(_) => return Err("timestamp is not a string".into()),
        None => return Err("no timestamp".into()),
    };
    let et = match obj.get("event_type") {
        Some(Value::String(t)) if !t.is_empty() => t.clone(),
        Some(_) => return Err("event_type is not a non-empty string".into()),
        None => return Err("no event_type".into()),
    };
    let port = |k: &str| -> Result<Option<u16>, String> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => {
                n.as_u64().and_then(|p| u16::try_from(p).ok()).map(Some).ok_or_else(|| format!("{k} {n} is not a port"))
            }
            Some(other) => Err(format!("{k} is not a number: {other}")),
        }
    };
    let mut r = EventRecord {
        time: ts,
        raw_data: text.to_string(),
        format: Some("eve".into()),
        class_uid: Some(class_of(&et)),
        activity_id: Some(match et.as_str() {
            "alert" | "anomaly" => 1,
            "flow" | "netflow" => 6,
            _ => 0,
        }),
        severity_id: Some(1),
        src_endpoint_ip: s(&v, &["src_ip"]),
        src_endpoint_port: port("src_port")?,
        dst_endpoint_ip: s(&v, &["dest_ip"]),
        dst_endpoint_port: port("dest_port")?,
        connection_info_protocol_name: s(&v, &["proto"]).map(|p| p.to_ascii_lowercase()),
        app_protocol_name: s(&v, &["app_proto"]),
        metadata_uid: s(&v, &["flow_id"]),
        connection_info_community_uid: s(&v, &["community_id"]),
        source: Some(source.to_string()),
        line: Some(line),
        ..Default::default()
    };
    match et.as_str() {
        "alert" => {
            r.finding_info_title = s(&v, &["alert", "signature"]);
            r.finding_info_uid = s(&v, &["alert", "signature_id"]);
            r.finding_info_analytic_category = s(&v, &["alert", "category"]);
            r.finding_info_analytic_version = u(&v, &["alert", "rev"]).and_then(|x| u32::try_from(x).ok());
            r.action = s(&v, &["alert", "action"]);
            // Suricata severity 1 (highest) .. 3 → OCSF High 4 .. Low 2.
            r.severity_id = Some(match u(&v, &["alert", "severity"]) {
                Some(1) => 4,
                Some(2) => 3,
                Some(3) => 2,
                Some(_) => 1,
                None => 0,
            });
        }
        "anomaly" => {
            r.finding_info_title = s(&v, &["anomaly", "event"]).or_else(|| s(&v, &["anomaly", "type"]));
            r.finding_info_analytic_category = s(&v, &["anomaly", "type"]);
            r.severity_id = Some(2);
        }
        "drop" => r.action = Some("blocked".into()),
        "dns" => {
            r.dns_query_hostname = s(&v, &["dns", "rrname"])
                .or_else(|| v.pointer("/dns/queries/0/rrname").and_then(Value::as_str).map(str::to_string));
            r.dns_query_type = s(&v, &["dns", "rrtype"]);
            r.dns_rcode = s(&v, &["dns", "rcode"]);
        }
        "tls" => {
            r.tls_sni = s(&v, &["tls", "sni"]);
            r.tls_version = s(&v, &["tls", "version"]);
        }
        "ssh" => r.app_protocol_name = r.app_protocol_name.or(Some("ssh".into())),
        "fileinfo" => {
            r.file_name = s(&v, &["fileinfo", "filename"]);
            r.file_hashes_sha256 = s(&v, &["fileinfo", "sha256"]);
            r.file_hashes_md5 = s(&v, &["fileinfo", "md5"]);
            r.file_size = u(&v, &["fileinfo", "size"]);
            r.activity_id = Some(2);
        }
        _ => {}
    }
    // HTTP and flow sections also appear inside other event types (alert, fileinfo).
    if v.get("http").is_some() {
        r.http_request_hostname = s(&v, &["http", "hostname"]);
        r.http_request_url_path = s(&v, &["http", "url"]);
        r.http_request_http_method = s(&v, &["http", "http_method"]);
        r.http_request_user_agent = s(&v, &["http", "http_user_agent"]);
        r.http_response_code = u(&v, &["http", "status"]).and_then(|x| u16::try_from(x).ok());
    }
    if v.get("flow").is_some() {
        r.traffic_packets_out = u(&v, &["flow", "pkts_toserver"]);
        r.traffic_packets_in = u(&v, &["flow", "pkts_toclient"]);
        r.traffic_bytes_out = u(&v, &["flow", "bytes_toserver"]);
        r.traffic_bytes_in = u(&v, &["flow", "bytes_toclient"]);
    }
    r.event_type = Some(et);
    Ok(r)
}

/// Decode EVE records from `split` (see [`crate::records::decode_json_records`]).
pub fn decode_some<R: BufRead>(
    split: &mut RecordSplitter<R>,
    source: &str,
    organisation: Option<&str>,
    skip_before: u64,
    max: usize,
    out: &mut Decoded,
) -> std::io::Result<bool> {
    crate::records::decode_json_records(split, "eve", normalize, source, organisation, skip_before, max, out)
}
