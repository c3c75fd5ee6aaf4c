//! Cowrie honeypot JSON logs (`cowrie.json`, one event per line) into `events` rows.
//!
//! Sessions, logins (username and password — OCSF has no password attribute, so it goes to
//! `unmapped_password`), client versions, commands, file downloads/uploads and direct-tcpip
//! forwarding requests get first-class columns; every event carries `session_uid`, so a session
//! is reassembled with `… WHERE session_uid = '…' ORDER BY time`. Other event ids are kept.

use std::io::BufRead;

use cynex_model::event::{EventRecord, EventRow};
use cynex_model::time::parse_rfc3339_us;
use serde_json::Value;

pub use crate::records::Decoded;
use crate::records::RecordSplitter;

fn st(v: &Value, k: &str) -> Option<String> {
    match v.get(k)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Normalise one Cowrie record.
pub fn normalize<'a>(raw: &'a [u8], source: &'a str, line: u64) -> Result<EventRow<'a>, String> {
    record(raw, source, line).map(EventRecord::into_row)
}

fn record(raw: &[u8], source: &str, line: u64) -> Result<EventRecord, String> {
    let text = std::str::from_utf8(raw).map_err(|e| format!("not UTF-8 at byte {}", e.valid_up_to()))?;
    let v: Value = serde_json::from_str(text).map_err(|e| format!("bad JSON: {e}"))?;
    if !v.is_object() {
        return Err("not a JSON object".into());
    }
    let eventid = match v.get("eventid") {
        Some(Value::String(e)) if e.starts_with("cowrie.") => e.clone(),
        Some(Value::String(e)) => return Err(format!("eventid {e:?} is not a Cowrie event")),
        Some(_) => return Err("eventid is not a string".into()),
        None => return Err("no eventid".into()),
    };
    let time = match v.get("timestamp") {
        Some(Value::String(t)) => parse_rfc3339_us(t).ok_or_else(|| format!("bad timestamp {t:?}"))?,
        Some(_) => return Err("timestamp is not a string".into()),
        None => return Err("no timestamp".into()),
    };
    let port = |k: &str| -> Result<Option<u16>, String> {
        match v.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(p) => p
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .map(Some)
                .ok_or_else(|| format!("{k} is not a port: {p}")),
        }
    };
    let mut r = EventRecord {
        time,
        raw_data: text.to_string(),
        format: Some("cowrie".into()),
        class_uid: Some(4001),
        activity_id: Some(6),
        severity_id: Some(1),
        src_endpoint_ip: st(&v, "src_ip"),
        src_endpoint_port: port("src_port")?,
        dst_endpoint_ip: st(&v, "dst_ip"),
        dst_endpoint_port: port("dst_port")?,
        connection_info_protocol_name: Some("tcp".into()),
        app_protocol_name: st(&v, "protocol"),
        session_uid: st(&v, "session"),
        source: Some(source.to_string()),
        line: Some(line),
        ..Default::default()
    };
    match eventid.as_str() {
        "cowrie.session.connect" => r.activity_id = Some(1),
        "cowrie.session.closed" => r.activity_id = Some(2),
        "cowrie.login.success" | "cowrie.login.failed" => {
            r.class_uid = Some(3002);
            r.activity_id = Some(1);
            r.user_name = st(&v, "username");
            r.unmapped_password = st(&v, "password");
            r.action = Some(if eventid.ends_with("success") { "success" } else { "failure" }.into());
            r.severity_id = Some(if eventid.ends_with("success") { 3 } else { 2 });
        }
        "cowrie.command.input" | "cowrie.command.failed" => {
            r.class_uid = Some(1007);
            r.activity_id = Some(1);
            r.actor_process_cmd_line = st(&v, "input");
            r.severity_id = Some(3);
        }
        "cowrie.session.file_download" | "cowrie.session.file_upload" => {
            r.class_uid = Some(4010);
            r.activity_id = Some(if eventid.ends_with("download") { 2 } else { 1 });
            r.url_text = st(&v, "url");
            r.file_hashes_sha256 = st(&v, "shasum");
            r.file_name = st(&v, "filename").or_else(|| st(&v, "outfile"));
            r.severity_id = Some(4);
        }
        "cowrie.direct-tcpip.request" | "cowrie.direct-tcpip.data" => {
            // The forwarding target, not the honeypot's own address.
            r.dst_endpoint_ip = st(&v, "dst_ip");
            r.dst_endpoint_port = port("dst_port")?;
            r.severity_id = Some(3);
        }
        "cowrie.client.version" => r.finding_info_title = st(&v, "version"),
        _ => {}
    }
    r.event_type = Some(eventid);
    Ok(r)
}

/// Decode Cowrie records from `split` (see [`crate::records::decode_json_records`]).
pub fn decode_some<R: BufRead>(
    split: &mut RecordSplitter<R>,
    source: &str,
    organisation: Option<&str>,
    skip_before: u64,
    max: usize,
    out: &mut Decoded,
) -> std::io::Result<bool> {
    crate::records::decode_json_records(split, "cowrie", normalize, source, organisation, skip_before, max, out)
}

/// Which log format a file holds, from its first record: `eve`, `zeek`, `cowrie`, or `None`.
pub fn sniff_log(head: &[u8]) -> Option<&'static str> {
    let first = head.split(|b| *b == b'\n').map(<[u8]>::trim_ascii).find(|l| !l.is_empty())?;
    if first.starts_with(b"#separator") || first.starts_with(b"#fields") {
        return Some("zeek");
    }
    let text = std::str::from_utf8(first).ok()?;
    if text == "{" {
        return Some("eve"); // pretty-printed EVE (telegraf style)
    }
    let v: Value = serde_json::from_str(text).ok()?;
    if v.get("eventid").and_then(Value::as_str).is_some_and(|e| e.starts_with("cowrie.")) {
        Some("cowrie")
    } else if v.get("event_type").is_some() {
        Some("eve")
    } else if v.get("_path").is_some()
        || v.get("id.orig_h").is_some()
        || (v.get("ts").is_some() && v.get("uid").is_some())
    {
        Some("zeek")
    } else {
        None
    }
}
