//! A typed, borrowing view of an EVE record: only the fields `events` has columns for are read
//! (strings borrowed from the line unless escaped, by the reader in module `scan`); everything
//! else is skipped without building a tree. Sections of the wrong JSON type are ignored, as a
//! tree lookup would ignore them; scalars keep their JSON kind so the normaliser can tell a
//! string from a number.

use std::borrow::Cow;

use super::scan::{section, First, Obj, Reader, Scalar};

section!(Alert {
    "signature" => signature: Scalar<'a>,
    "signature_id" => signature_id: Scalar<'a>,
    "category" => category: Scalar<'a>,
    "rev" => rev: Scalar<'a>,
    "action" => action: Scalar<'a>,
    "severity" => severity: Scalar<'a>,
});
section!(Anomaly { "event" => event: Scalar<'a>, "type" => kind: Scalar<'a> });
section!(Tls { "sni" => sni: Scalar<'a>, "version" => version: Scalar<'a> });
section!(FileInfo {
    "filename" => filename: Scalar<'a>,
    "sha256" => sha256: Scalar<'a>,
    "md5" => md5: Scalar<'a>,
    "size" => size: Scalar<'a>,
});
section!(Http {
    "hostname" => hostname: Scalar<'a>,
    "url" => url: Scalar<'a>,
    "http_method" => http_method: Scalar<'a>,
    "http_user_agent" => http_user_agent: Scalar<'a>,
    "status" => status: Scalar<'a>,
});
section!(Flow {
    "pkts_toserver" => pkts_toserver: Scalar<'a>,
    "pkts_toclient" => pkts_toclient: Scalar<'a>,
    "bytes_toserver" => bytes_toserver: Scalar<'a>,
    "bytes_toclient" => bytes_toclient: Scalar<'a>,
});
section!(DnsQuery { "rrname" => rrname: Scalar<'a> });
section!(Dns {
    "rrname" => rrname: Scalar<'a>,
    "rrtype" => rrtype: Scalar<'a>,
    "rcode" => rcode: Scalar<'a>,
    "queries" => queries: First<DnsQuery<'a>>,
});
// The fields of an EVE record that have columns. HTTP and flow sections also ride on other event
// types.
section!(Eve {
    "timestamp" => timestamp: Scalar<'a>,
    "event_type" => event_type: Scalar<'a>,
    "src_ip" => src_ip: Scalar<'a>,
    "src_port" => src_port: Scalar<'a>,
    "dest_ip" => dest_ip: Scalar<'a>,
    "dest_port" => dest_port: Scalar<'a>,
    "proto" => proto: Scalar<'a>,
    "app_proto" => app_proto: Scalar<'a>,
    "flow_id" => flow_id: Scalar<'a>,
    "community_id" => community_id: Scalar<'a>,
    "alert" => alert: Obj<Alert<'a>>,
    "anomaly" => anomaly: Obj<Anomaly<'a>>,
    "dns" => dns: Obj<Dns<'a>>,
    "tls" => tls: Obj<Tls<'a>>,
    "fileinfo" => fileinfo: Obj<FileInfo<'a>>,
    "http" => http: Obj<Http<'a>>,
    "flow" => flow: Obj<Flow<'a>>,
});

/// Normalise one EVE record from its typed view (see [`super::normalize`]).
pub(crate) fn normalize<'a>(
    raw: &'a [u8],
    source: &'a str,
    line: u64,
) -> Result<cynex_model::event::EventRow<'a>, String> {
    use cynex_model::time::parse_rfc3339_us;
    let text = std::str::from_utf8(raw).map_err(|e| format!("not UTF-8 at byte {}", e.valid_up_to()))?;
    // Only objects are records: anything else is read or skipped, and refused.
    let mut reader = Reader::new(text);
    let v: Eve<'a> = match reader.section().and_then(|v| reader.finish().map(|_| v)) {
        Ok(Some(v)) => v,
        Ok(None) => return Err("not a JSON object".into()),
        Err(e) => return Err(format!("bad JSON: {e}")),
    };
    let ts = match &v.timestamp {
        Scalar::Str(t) => parse_rfc3339_us(t).ok_or_else(|| format!("bad timestamp {t:?}"))?,
        Scalar::Absent => return Err("no timestamp".into()),
        _ => return Err("timestamp is not a string".into()),
    };
    let et = match &v.event_type {
        Scalar::Str(t) if !t.is_empty() => t.clone(),
        Scalar::Absent => return Err("no event_type".into()),
        _ => return Err("event_type is not a non-empty string".into()),
    };
    let port = |k: &str, p: &Scalar<'_>| -> Result<Option<u16>, String> {
        match p {
            Scalar::Absent | Scalar::Null => Ok(None),
            Scalar::U64(n) => u16::try_from(*n).map(Some).map_err(|_| format!("{k} {n} is not a port")),
            Scalar::I64(n) => Err(format!("{k} {n} is not a port")),
            Scalar::F64(n) => Err(format!("{k} {n} is not a port")),
            Scalar::Str(s) => Err(format!("{k} is not a number: {s:?}")),
            Scalar::Bool(b) => Err(format!("{k} is not a number: {b}")),
            Scalar::Nested => Err(format!("{k} is not a number: an object or array")),
        }
    };
    let mut r = cynex_model::event::EventRow {
        time: ts,
        raw_data: Cow::Borrowed(text),
        format: Some("eve".into()),
        class_uid: Some(super::class_of(&et)),
        activity_id: Some(match et.as_ref() {
            "alert" | "anomaly" => 1,
            "flow" | "netflow" => 6,
            _ => 0,
        }),
        severity_id: Some(1),
        src_endpoint_ip: v.src_ip.text(),
        src_endpoint_port: port("src_port", &v.src_port)?,
        dst_endpoint_ip: v.dest_ip.text(),
        dst_endpoint_port: port("dest_port", &v.dest_port)?,
        connection_info_protocol_name: v.proto.text().map(lowercase),
        app_protocol_name: v.app_proto.text(),
        metadata_uid: v.flow_id.text(),
        connection_info_community_uid: v.community_id.text(),
        source: Some(Cow::Borrowed(source)),
        line: Some(line),
        ..Default::default()
    };
    match et.as_ref() {
        "alert" => {
            if let Some(a) = &v.alert.0 {
                r.finding_info_title = a.signature.text();
                r.finding_info_uid = a.signature_id.text();
                r.finding_info_analytic_category = a.category.text();
                r.finding_info_analytic_version = a.rev.u64().and_then(|x| u32::try_from(x).ok());
                r.action = a.action.text();
            }
            // Suricata severity 1 (highest) .. 3 → OCSF High 4 .. Low 2.
            r.severity_id = Some(match v.alert.0.as_ref().and_then(|a| a.severity.u64()) {
                Some(1) => 4,
                Some(2) => 3,
                Some(3) => 2,
                Some(_) => 1,
                None => 0,
            });
        }
        "anomaly" => {
            if let Some(a) = &v.anomaly.0 {
                r.finding_info_title = a.event.text().or_else(|| a.kind.text());
                r.finding_info_analytic_category = a.kind.text();
            }
            r.severity_id = Some(2);
        }
        "drop" => r.action = Some("blocked".into()),
        "dns" => {
            if let Some(d) = &v.dns.0 {
                r.dns_query_hostname = d.rrname.text().or_else(|| d.queries.0.as_ref().and_then(|q| q.rrname.string()));
                r.dns_query_type = d.rrtype.text();
                r.dns_rcode = d.rcode.text();
            }
        }
        "tls" => {
            if let Some(t) = &v.tls.0 {
                r.tls_sni = t.sni.text();
                r.tls_version = t.version.text();
            }
        }
        "ssh" => r.app_protocol_name = r.app_protocol_name.or(Some("ssh".into())),
        "fileinfo" => {
            if let Some(f) = &v.fileinfo.0 {
                r.file_name = f.filename.text();
                r.file_hashes_sha256 = f.sha256.text();
                r.file_hashes_md5 = f.md5.text();
                r.file_size = f.size.u64();
            }
            r.activity_id = Some(2);
        }
        _ => {}
    }
    // HTTP and flow sections also appear inside other event types (alert, fileinfo).
    if let Some(h) = &v.http.0 {
        r.http_request_hostname = h.hostname.text();
        r.http_request_url_path = h.url.text();
        r.http_request_http_method = h.http_method.text();
        r.http_request_user_agent = h.http_user_agent.text();
        r.http_response_code = h.status.u64().and_then(|x| u16::try_from(x).ok());
    }
    if let Some(f) = &v.flow.0 {
        r.traffic_packets_out = f.pkts_toserver.u64();
        r.traffic_packets_in = f.pkts_toclient.u64();
        r.traffic_bytes_out = f.bytes_toserver.u64();
        r.traffic_bytes_in = f.bytes_toclient.u64();
    }
    r.event_type = Some(et);
    Ok(r)
}

/// A protocol name in lower case, without allocating for the common ones.
fn lowercase(p: Cow<'_, str>) -> Cow<'_, str> {
    match p.as_ref() {
        "TCP" => "tcp".into(),
        "UDP" => "udp".into(),
        "ICMP" => "icmp".into(),
        "IPv6-ICMP" => "ipv6-icmp".into(),
        _ if p.bytes().any(|b| b.is_ascii_uppercase()) => p.to_ascii_lowercase().into(),
        _ => p,
    }
}
