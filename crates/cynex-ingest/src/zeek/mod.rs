//! Zeek logs, both forms the ASCII writer produces: TSV with `#separator`/`#fields`/`#types`
//! headers, and JSON lines. conn, dns, http, ssl, x509, notice, weird, files and ssh get
//! first-class `events` columns (after the OCSF examples' Zeek mappings); any other log path is
//! kept with its endpoints, uid and raw line.
//!
//! TSV rules (Zeek's `logging/writers/ascii`): the `#separator` line is space-separated and its
//! value uses `\xNN` escapes; the other header lines use the separator. `#unset_field` (default
//! `-`) reads as null, a doubled backslash as one, `#empty_field` (default `(empty)`) as an empty value, sets and vectors are
//! split on `#set_separator`, and `\xNN` escapes in values are decoded. Headers may change
//! mid-file (a new `#fields` starts a new layout). A row whose value count disagrees with
//! `#fields`, a row before any `#fields`, a row without a valid `ts`, and a file whose
//! `#separator` is missing or unusable are quarantined row by row with line and reason.

use std::io::BufRead;

use cynex_model::event::EventRecord;
use cynex_model::time::parse_rfc3339_us;
use serde_json::{Map, Number, Value};

pub use crate::records::Decoded;
use crate::records::{RecordSplitter, Split, MAX_RECORD};
use crate::QuarantineRecord;

/// The header state of a TSV log.
#[derive(Debug, Clone)]
struct Header {
    sep: Option<Vec<u8>>,
    set_sep: Vec<u8>,
    empty: Vec<u8>,
    unset: Vec<u8>,
    path: Option<String>,
    fields: Vec<String>,
    types: Vec<String>,
}

impl Default for Header {
    fn default() -> Self {
        Header {
            sep: Some(b"\t".to_vec()),
            set_sep: b",".to_vec(),
            empty: b"(empty)".to_vec(),
            unset: b"-".to_vec(),
            path: None,
            fields: Vec::new(),
            types: Vec::new(),
        }
    }
}

/// Decode `\xNN` escapes (as Zeek writes separators and non-printable bytes).
fn unescape(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        // The ASCII writer doubles a literal backslash.
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
            continue;
        }
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
            if let Some(v) = b
                .get(i + 2..i + 4)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn split_on<'a>(b: &'a [u8], sep: &[u8]) -> Vec<&'a [u8]> {
    if sep.is_empty() {
        return vec![b];
    }
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + sep.len() <= b.len() {
        if &b[i..i + sep.len()] == sep {
            out.push(&b[start..i]);
            i += sep.len();
            start = i;
        } else {
            i += 1;
        }
    }
    out.push(&b[start..]);
    out
}

/// A TSV value as JSON, by its Zeek type.
fn typed(v: &[u8], ty: &str, h: &Header) -> Result<Value, String> {
    if v == h.unset.as_slice() {
        return Ok(Value::Null);
    }
    let text = |b: &[u8]| -> Result<String, String> {
        String::from_utf8(unescape(b)).map_err(|_| "value is not UTF-8".to_string())
    };
    if let Some(inner) = ty.strip_prefix("set[").or_else(|| ty.strip_prefix("vector[")) {
        if v == h.empty.as_slice() {
            return Ok(Value::Array(Vec::new()));
        }
        let inner = inner.trim_end_matches(']');
        return split_on(v, &h.set_sep)
            .into_iter()
            .map(|x| typed(x, inner, h))
            .collect::<Result<_, _>>()
            .map(Value::Array);
    }
    if v == h.empty.as_slice() {
        return Ok(Value::String(String::new()));
    }
    let s = text(v)?;
    Ok(match ty {
        "time" | "interval" | "double" => {
            let f: f64 = s.parse().map_err(|_| format!("{s:?} is not a {ty}"))?;
            Value::Number(Number::from_f64(f).ok_or_else(|| format!("{s:?} is not a finite {ty}"))?)
        }
        "count" | "port" => Value::Number(s.parse::<u64>().map_err(|_| format!("{s:?} is not a {ty}"))?.into()),
        "int" => Value::Number(s.parse::<i64>().map_err(|_| format!("{s:?} is not an int"))?.into()),
        "bool" => match s.as_str() {
            "T" => Value::Bool(true),
            "F" => Value::Bool(false),
            _ => return Err(format!("{s:?} is not a bool")),
        },
        _ => Value::String(s),
    })
}

/// Event time from Zeek's `ts`: epoch seconds (TSV, default JSON) or ISO 8601 (JSON with
/// `LogAscii::json_timestamps = JSON::TS_ISO8601`).
fn ts_of(v: Option<&Value>) -> Result<i64, String> {
    match v {
        Some(Value::Number(n)) => {
            let f = n.as_f64().ok_or("ts is not a number")?;
            let us = (f * 1e6).round();
            if !us.is_finite() || us.abs() > 9.2e18 {
                return Err(format!("ts {n} is out of range"));
            }
            Ok(us as i64)
        }
        Some(Value::String(s)) => parse_rfc3339_us(s).ok_or_else(|| format!("bad ts {s:?}")),
        Some(Value::Null) | None => Err("no ts".into()),
        Some(other) => Err(format!("ts is not a time: {other}")),
    }
}

fn st(o: &Map<String, Value>, k: &str) -> Option<String> {
    match o.get(k)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(a) => Some(
            a.iter()
                .map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string()))
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => None,
    }
}

fn un(o: &Map<String, Value>, k: &str) -> Option<u64> {
    o.get(k)?.as_u64()
}

fn port(o: &Map<String, Value>, k: &str) -> Option<u16> {
    un(o, k).and_then(|p| u16::try_from(p).ok())
}

fn class_of(path: &str) -> u32 {
    match path {
        "conn" | "ssl" => 4001,
        "http" => 4002,
        "dns" => 4003,
        "ssh" => 4007,
        "files" => 4010,
        "notice" | "weird" => 2004,
        _ => 0,
    }
}

/// Normalise one Zeek record (as a JSON object) of log `path`.
pub fn normalize(
    o: &Map<String, Value>,
    path: &str,
    raw: &str,
    source: &str,
    line: u64,
) -> Result<EventRecord, String> {
    let time = ts_of(o.get("ts"))?;
    let mut r = EventRecord {
        time,
        raw_data: raw.to_string(),
        format: Some("zeek".into()),
        event_type: Some(path.to_string()),
        class_uid: Some(class_of(path)),
        activity_id: Some(if matches!(path, "notice" | "weird") { 1 } else { 6 }),
        severity_id: Some(match path {
            "notice" => 3,
            "weird" => 2,
            _ => 1,
        }),
        src_endpoint_ip: st(o, "id.orig_h"),
        src_endpoint_port: port(o, "id.orig_p"),
        dst_endpoint_ip: st(o, "id.resp_h"),
        dst_endpoint_port: port(o, "id.resp_p"),
        connection_info_protocol_name: st(o, "proto"),
        app_protocol_name: st(o, "service"),
        metadata_uid: st(o, "uid"),
        connection_info_community_uid: st(o, "community_id"),
        source: Some(source.to_string()),
        line: Some(line),
        ..Default::default()
    };
    match path {
        "conn" => {
            r.traffic_packets_out = un(o, "orig_pkts");
            r.traffic_packets_in = un(o, "resp_pkts");
            r.traffic_bytes_out = un(o, "orig_bytes");
            r.traffic_bytes_in = un(o, "resp_bytes");
        }
        "dns" => {
            r.dns_query_hostname = st(o, "query");
            r.dns_query_type = st(o, "qtype_name");
            r.dns_rcode = st(o, "rcode_name");
        }
        "http" => {
            r.http_request_hostname = st(o, "host");
            r.http_request_url_path = st(o, "uri");
            r.http_request_http_method = st(o, "method");
            r.http_request_user_agent = st(o, "user_agent");
            r.http_response_code = port(o, "status_code");
        }
        "ssl" => {
            r.tls_sni = st(o, "server_name");
            r.tls_version = st(o, "version");
        }
        "notice" => {
            r.finding_info_title = st(o, "note");
            r.finding_info_analytic_category = st(o, "msg");
            r.action = st(o, "actions");
            r.src_endpoint_ip = r.src_endpoint_ip.or_else(|| st(o, "src"));
            r.dst_endpoint_ip = r.dst_endpoint_ip.or_else(|| st(o, "dst"));
        }
        "weird" => r.finding_info_title = st(o, "name"),
        "files" => {
            r.file_name = st(o, "filename");
            r.file_hashes_sha256 = st(o, "sha256");
            r.file_hashes_md5 = st(o, "md5");
            r.file_size = un(o, "total_bytes").or_else(|| un(o, "seen_bytes"));
        }
        "x509" => {
            r.metadata_uid = r.metadata_uid.or_else(|| st(o, "id")).or_else(|| st(o, "fingerprint"));
            r.finding_info_title = st(o, "certificate.subject");
        }
        _ => {}
    }
    Ok(r)
}

/// Reads one Zeek log (TSV or JSON lines, told apart per line) into events.
pub struct ZeekReader<R> {
    split: RecordSplitter<R>,
    header: Header,
    /// Log path when the file has no `#path` (JSON without `_path`): from the file name.
    default_path: String,
    source: String,
    organisation: Option<String>,
}

impl<R: BufRead> ZeekReader<R> {
    /// `source` names the input; its file name (`dns.log`, `conn.00:00:00-01:00:00.log.gz`)
    /// gives the log path when the records do not.
    pub fn new(r: R, source: &str, organisation: Option<&str>) -> Self {
        let file = source.rsplit('/').next().unwrap_or(source);
        let default_path = file.split('.').next().unwrap_or("unknown").to_string();
        ZeekReader {
            split: RecordSplitter::new(r, 0, 0),
            header: Header::default(),
            default_path,
            source: source.to_string(),
            organisation: organisation.map(str::to_string),
        }
    }

    pub fn offset(&self) -> u64 {
        self.split.offset()
    }

    /// See [`RecordSplitter::hold_partial`].
    pub fn hold_partial(mut self, hold: bool) -> Self {
        self.split = self.split.hold_partial(hold);
        self
    }

    /// Lines read so far.
    pub fn line(&self) -> u64 {
        self.split.line()
    }

    fn quarantine(&self, out: &mut Decoded, line: u64, offset: u64, reason: String, raw: &[u8], len: Option<u64>) {
        let mut q = QuarantineRecord::new("zeek", &self.source, offset, reason, raw);
        q.line = Some(line);
        if let Some(l) = len {
            q.raw_len = l;
        }
        out.quarantine.push(q);
    }

    /// Header lines update the layout and are not records.
    fn header_line(&mut self, b: &[u8]) -> Result<(), String> {
        if let Some(v) = b.strip_prefix(b"#separator") {
            let v = v.strip_prefix(b" ").ok_or("#separator without a value")?;
            let sep = unescape(v);
            if sep.is_empty() || sep.contains(&0) || sep.contains(&b'\n') {
                self.header.sep = None;
                return Err(format!("unusable #separator {:?}", String::from_utf8_lossy(v)));
            }
            self.header.sep = Some(sep);
            return Ok(());
        }
        let Some(sep) = self.header.sep.clone() else { return Ok(()) };
        let parts = split_on(b, &sep);
        let (key, vals) = (parts[0], &parts[1..]);
        let text = |x: &[u8]| String::from_utf8_lossy(&unescape(x)).into_owned();
        match key {
            b"#set_separator" => self.header.set_sep = unescape(vals.first().copied().unwrap_or(b",")),
            b"#empty_field" => self.header.empty = unescape(vals.first().copied().unwrap_or(b"(empty)")),
            b"#unset_field" => self.header.unset = unescape(vals.first().copied().unwrap_or(b"-")),
            b"#path" => self.header.path = vals.first().map(|v| text(v)),
            b"#fields" => {
                self.header.fields = vals.iter().map(|v| text(v)).collect();
                self.header.types.clear();
            }
            b"#types" => self.header.types = vals.iter().map(|v| text(v)).collect(),
            _ => {}
        }
        Ok(())
    }

    fn tsv_row(&self, b: &[u8]) -> Result<(Map<String, Value>, String), String> {
        let sep = self.header.sep.as_ref().ok_or("the file's #separator is unusable")?;
        if self.header.fields.is_empty() {
            return Err("data before any #fields header".into());
        }
        let vals = split_on(b, sep);
        if vals.len() != self.header.fields.len() {
            return Err(format!("{} values for {} #fields", vals.len(), self.header.fields.len()));
        }
        let mut o = Map::new();
        for (i, (f, v)) in self.header.fields.iter().zip(vals).enumerate() {
            let ty = self.header.types.get(i).map_or("string", String::as_str);
            let val = typed(v, ty, &self.header).map_err(|e| format!("field {f}: {e}"))?;
            o.insert(f.clone(), val);
        }
        // A log without `ts` (e.g. one with several time columns) is timed by its first time field.
        if !o.contains_key("ts") {
            let first_time = self.header.fields.iter().zip(&self.header.types).find(|(_, t)| *t == "time");
            if let Some(v) = first_time.and_then(|(f, _)| o.get(f)).cloned() {
                o.insert("ts".into(), v);
            }
        }
        let path = self.header.path.clone().unwrap_or_else(|| self.default_path.clone());
        Ok((o, path))
    }

    /// Decode up to `max` records, skipping records before `skip_before`. `false` at the end.
    pub fn decode_some(&mut self, skip_before: u64, max: usize, out: &mut Decoded) -> std::io::Result<bool> {
        let mut n = 0;
        while n < max {
            let Some(rec) = self.split.next_record()? else { return Ok(false) };
            let (raw, too_long) = match rec {
                Split::Record(r) => (r, None),
                Split::TooLong(r, len) => (r, Some(len)),
            };
            if raw.bytes.first() == Some(&b'#') {
                // Headers are read even when skipping, so a resumed file has its layout.
                if let Err(e) = self.header_line(&raw.bytes) {
                    if raw.offset >= skip_before {
                        self.quarantine(out, raw.line, raw.offset, e, &raw.bytes, None);
                    }
                }
                continue;
            }
            if raw.offset < skip_before {
                continue;
            }
            n += 1;
            if let Some(len) = too_long {
                let why = format!("record of {len} bytes exceeds {MAX_RECORD}");
                self.quarantine(out, raw.line, raw.offset, why, &raw.bytes, Some(len));
                continue;
            }
            let Ok(text) = std::str::from_utf8(&raw.bytes) else {
                self.quarantine(out, raw.line, raw.offset, "not UTF-8".into(), &raw.bytes, None);
                continue;
            };
            let parsed = if raw.bytes.first() == Some(&b'{') {
                serde_json::from_str::<Value>(text).map_err(|e| format!("bad JSON: {e}")).and_then(|v| match v {
                    Value::Object(o) => {
                        let path = st(&o, "_path").unwrap_or_else(|| self.default_path.clone());
                        Ok((o, path))
                    }
                    _ => Err("not a JSON object".into()),
                })
            } else {
                self.tsv_row(&raw.bytes)
            };
            match parsed.and_then(|(o, path)| normalize(&o, &path, text, &self.source, raw.line)) {
                Ok(mut e) => {
                    e.organisation.clone_from(&self.organisation);
                    out.events.push(e);
                }
                Err(reason) => self.quarantine(out, raw.line, raw.offset, reason, &raw.bytes, None),
            }
        }
        Ok(true)
    }
}
