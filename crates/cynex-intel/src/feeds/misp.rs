//! MISP feeds in and out. A MISP feed is a directory (or URL) with `manifest.json` (event uuid →
//! summary with `timestamp`), one `<uuid>.json` per event (`{"Event": {…, "Attribute": […]}}`)
//! and `hashes.csv` (`md5(value),event uuid` per attribute), as MISP's `Feed.php` reads and
//! writes them.
//!
//! In: each event becomes a STIX `report` (name from `info`, labels from non-TLP tags, TLP from a
//! `tlp:` tag), each attribute with `to_ids` an indicator (`[ipv4-addr:value = '…']`, domain,
//! URL, e-mail, file hashes), others observed-data with the SCO, `link` attributes external
//! references; attribute types with no STIX equivalent are kept in `x_misp_attributes` on the
//! report, so nothing is lost. Ids reuse MISP's uuids. A feed is re-read from the newest event
//! timestamp seen (the manifest's `timestamp`).
//!
//! Out: the indicators a viewer may see, at most GREEN (a MISP feed leaves the hub), one event
//! per collection with a `tlp:` tag per attribute.

use std::path::Path;

use cynex_store::{IntelCollection, Principal, Tlp, Viewer};
use serde_json::{json, Map, Value};

use super::export::for_each_value;
use crate::hub::{Hub, Outcome};
use crate::stix::sco::{deterministic_id, uuid_v5};
use crate::stix::time::format_ms;
use crate::{tlp, Error, Result};

/// Namespace for ids derived from MISP uuids that are not RFC 4122 (a fixed v4 UUID).
const MISP_NS: [u8; 16] =
    [0x2f, 0x9c, 0x83, 0x41, 0x0d, 0x55, 0x4b, 0x6e, 0xa1, 0x07, 0x3c, 0xd8, 0x64, 0x19, 0xe2, 0x5a];

fn num(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.as_str(), "1" | "true" | "True"),
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        _ => false,
    }
}

fn rfc_uuid(u: &str) -> bool {
    crate::stix::valid_uuid(u)
}

/// `<type>--<uuid>` from a MISP uuid (kept when valid, else derived).
fn stix_id(type_: &str, misp_uuid: &str) -> String {
    if rfc_uuid(misp_uuid) {
        format!("{type_}--{}", misp_uuid.to_ascii_lowercase())
    } else {
        format!("{type_}--{}", uuid_v5(&MISP_NS, format!("{type_}:{misp_uuid}").as_bytes()))
    }
}

/// The TLP of a MISP tag list (`tlp:white`, `tlp:clear`, `tlp:green`, `tlp:amber`,
/// `tlp:amber+strict`, `tlp:red`; the most restrictive wins).
fn tag_tlp(tags: Option<&Value>) -> Option<Tlp> {
    tags?.as_array()?.iter().filter_map(|t| t.get("name")?.as_str()?.parse::<Tlp>().ok()).max()
}

fn tag_labels(tags: Option<&Value>) -> Vec<String> {
    let Some(a) = tags.and_then(Value::as_array) else { return Vec::new() };
    a.iter()
        .filter_map(|t| t.get("name")?.as_str())
        .filter(|n| !n.to_ascii_lowercase().starts_with("tlp:"))
        .map(|n| n.to_ascii_lowercase())
        .collect()
}

/// (object type, path, value) of the STIX observable a MISP attribute names, if any.
fn attribute_observable(kind: &str, value: &str) -> Option<Vec<(&'static str, String, String)>> {
    let v = value.trim().to_string();
    let ip = |s: &str| -> (&'static str, String, String) {
        let t = if s.contains(':') { "ipv6-addr" } else { "ipv4-addr" };
        (t, "value".into(), s.to_string())
    };
    let hash = |alg: &str, h: &str| ("file", format!("hashes.'{alg}'"), h.to_ascii_lowercase());
    Some(match kind {
        "ip-src" | "ip-dst" => vec![ip(&v)],
        "ip-src|port" | "ip-dst|port" => vec![ip(v.rsplit_once('|').map_or(v.as_str(), |(a, _)| a))],
        "domain" | "hostname" => vec![("domain-name", "value".into(), v.to_ascii_lowercase())],
        "domain|ip" => {
            let (d, a) = v.split_once('|')?;
            vec![("domain-name", "value".into(), d.to_ascii_lowercase()), ip(a)]
        }
        "url" | "uri" => vec![("url", "value".into(), v)],
        "email" | "email-src" | "email-dst" => vec![("email-addr", "value".into(), v.to_ascii_lowercase())],
        "md5" => vec![hash("MD5", &v)],
        "sha1" => vec![hash("SHA-1", &v)],
        "sha256" => vec![hash("SHA-256", &v)],
        "sha512" => vec![hash("SHA-512", &v)],
        "filename|md5" | "filename|sha1" | "filename|sha256" => {
            let (_, h) = v.split_once('|')?;
            let alg = match kind {
                "filename|md5" => "MD5",
                "filename|sha1" => "SHA-1",
                _ => "SHA-256",
            };
            vec![hash(alg, h)]
        }
        _ => return None,
    })
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

fn sco(object_type: &str, path: &str, value: &str, marking: &str) -> Value {
    let mut props = Map::new();
    if object_type == "file" {
        let alg = path.trim_start_matches("hashes.").trim_matches('\'');
        props.insert("hashes".into(), json!({ alg: value }));
    } else {
        props.insert("value".into(), json!(value));
    }
    let id = deterministic_id(object_type, &props)
        .unwrap_or_else(|| format!("{object_type}--{}", uuid_v5(&MISP_NS, value.as_bytes())));
    let mut o = json!({"type": object_type, "spec_version": "2.1", "id": id, "object_marking_refs": [marking]});
    if let Some(m) = o.as_object_mut() {
        m.extend(props);
    }
    o
}

/// One MISP event (the `{"Event": …}` document or the bare event) as STIX objects; the report
/// is the last. `default_tlp` applies when the event has no `tlp:` tag.
pub fn event_to_stix(doc: &Value, default_tlp: Tlp) -> Result<Vec<Value>> {
    let e = doc.get("Event").unwrap_or(doc);
    let bad = |m: &str| Error::Invalid(format!("MISP event: {m}"));
    let uuid = e.get("uuid").and_then(Value::as_str).ok_or_else(|| bad("no uuid"))?;
    let info = e.get("info").and_then(Value::as_str).unwrap_or("MISP event");
    let ts = num(e.get("timestamp")).ok_or_else(|| bad("no timestamp"))? * 1_000_000;
    let published = num(e.get("publish_timestamp")).map_or(ts, |t| t * 1_000_000).max(ts);
    let level = tag_tlp(e.get("Tag")).unwrap_or(default_tlp);
    let marking = tlp::marking_id(level);
    let t = format_ms(ts);
    let mut out = Vec::new();
    let mut refs = Vec::new();
    let mut ext_refs = Vec::new();
    let mut unmapped = Vec::new();
    let org = e.get("Orgc").or_else(|| e.get("Org"));
    let org_id = org.and_then(|o| o.get("uuid")).and_then(Value::as_str).map(|u| stix_id("identity", u));
    if let (Some(id), Some(name)) = (&org_id, org.and_then(|o| o.get("name")).and_then(Value::as_str)) {
        out.push(json!({"type": "identity", "spec_version": "2.1", "id": id, "created": t, "modified": t,
            "name": name, "identity_class": "organization", "object_marking_refs": [marking]}));
        refs.push(id.clone());
    }
    let attrs = e.get("Attribute").and_then(Value::as_array).cloned().unwrap_or_default();
    for a in &attrs {
        if truthy(a.get("deleted")) {
            continue;
        }
        let kind = a.get("type").and_then(Value::as_str).unwrap_or_default();
        let value = a.get("value").and_then(Value::as_str).unwrap_or_default();
        let auuid = a.get("uuid").and_then(Value::as_str).unwrap_or_default();
        let at = num(a.get("timestamp")).map_or(ts, |x| x * 1_000_000);
        let a_level = tag_tlp(a.get("Tag")).unwrap_or(level);
        let a_marking = tlp::marking_id(a_level);
        let comment = a.get("comment").and_then(Value::as_str).filter(|c| !c.is_empty());
        if kind == "link" {
            ext_refs.push(json!({"source_name": "misp-link", "url": value}));
            continue;
        }
        let Some(obs) = attribute_observable(kind, value).filter(|_| !value.is_empty() && !auuid.is_empty()) else {
            unmapped.push(json!({"type": kind, "category": a.get("category"), "value": value, "uuid": auuid}));
            continue;
        };
        let at_s = format_ms(at);
        if truthy(a.get("to_ids")) {
            let pattern =
                obs.iter().map(|(t, p, v)| format!("{t}:{p} = '{}'", quote(v))).collect::<Vec<_>>().join(" OR ");
            let id = stix_id("indicator", auuid);
            let mut ind = json!({
                "type": "indicator", "spec_version": "2.1", "id": id, "created": at_s, "modified": at_s,
                "name": format!("{kind}: {value}"), "pattern": format!("[{pattern}]"), "pattern_type": "stix",
                "pattern_version": "2.1", "valid_from": at_s, "indicator_types": ["malicious-activity"],
                "object_marking_refs": [a_marking],
                "x_misp_category": a.get("category").cloned().unwrap_or(Value::Null),
                "x_misp_type": kind,
            });
            if let Some(c) = comment {
                ind["description"] = json!(c);
            }
            if let Some(o) = &org_id {
                ind["created_by_ref"] = json!(o);
            }
            out.push(ind);
            refs.push(id);
        } else {
            let mut ids = Vec::new();
            for (t, p, v) in &obs {
                let s = sco(t, p, v, a_marking);
                ids.push(s["id"].clone());
                out.push(s);
            }
            let id = stix_id("observed-data", auuid);
            let mut od = json!({
                "type": "observed-data", "spec_version": "2.1", "id": id, "created": at_s, "modified": at_s,
                "first_observed": at_s, "last_observed": at_s, "number_observed": 1, "object_refs": ids,
                "object_marking_refs": [a_marking], "x_misp_type": kind,
            });
            if let Some(o) = &org_id {
                od["created_by_ref"] = json!(o);
            }
            out.push(od);
            refs.push(id);
        }
    }
    if refs.is_empty() {
        // A report needs object_refs; an event with only links or unmapped attributes refers to
        // its own producer identity, or to a note carrying them.
        let nid = stix_id("note", uuid);
        out.push(json!({"type": "note", "spec_version": "2.1", "id": nid, "created": t, "modified": t,
            "content": info, "object_refs": [stix_id("report", uuid)], "object_marking_refs": [marking]}));
        refs.push(nid);
    }
    let mut report = json!({
        "type": "report", "spec_version": "2.1", "id": stix_id("report", uuid), "created": t, "modified": t,
        "name": info, "published": format_ms(published), "report_types": ["threat-report"], "object_refs": refs,
        "object_marking_refs": [marking],
        "x_misp_event_uuid": uuid,
        "x_misp_threat_level_id": num(e.get("threat_level_id")),
        "x_misp_analysis": num(e.get("analysis")),
    });
    if let Some(o) = &org_id {
        report["created_by_ref"] = json!(o);
    }
    let labels = tag_labels(e.get("Tag"));
    if !labels.is_empty() {
        report["labels"] = json!(labels);
    }
    if !ext_refs.is_empty() {
        report["external_references"] = json!(ext_refs);
    }
    if !unmapped.is_empty() {
        report["x_misp_attributes"] = json!(unmapped);
    }
    if let Some(d) = e.get("date").and_then(Value::as_str) {
        report["x_misp_date"] = json!(d);
    }
    // Null-valued optional numbers are dropped (STIX allows no nulls).
    if let Some(m) = report.as_object_mut() {
        m.retain(|_, v| !v.is_null());
    }
    for o in &mut out {
        if let Some(m) = o.as_object_mut() {
            m.retain(|_, v| !v.is_null());
        }
    }
    out.push(report);
    Ok(out)
}

async fn fetch(source: &str, name: &str) -> Result<Vec<u8>> {
    if source.starts_with("http://") || source.starts_with("https://") {
        let url = format!("{}/{name}", source.trim_end_matches('/'));
        let r =
            reqwest::get(&url).await.map_err(|e| Error::Feed { feed: source.into(), reason: format!("{url}: {e}") })?;
        if !r.status().is_success() {
            return Err(Error::Feed { feed: source.into(), reason: format!("{url}: HTTP {}", r.status()) });
        }
        Ok(r.bytes().await.map_err(|e| Error::Feed { feed: source.into(), reason: format!("{url}: {e}") })?.to_vec())
    } else {
        let p = Path::new(source).join(name);
        std::fs::read(&p).map_err(|e| Error::Io { context: format!("reading {}", p.display()), source: e })
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    pub events: u64,
    pub objects_added: u64,
    pub objects_unchanged: u64,
    pub objects_refused: u64,
    /// Events that could not be read or converted (with the reason logged).
    pub events_failed: u64,
    /// The newest event timestamp imported (the feed's resume point).
    pub cursor: Option<i64>,
}

/// Import the events of a MISP feed newer than `since` (manifest timestamp, seconds).
pub async fn import_feed(
    hub: &Hub,
    source: &str,
    into: &IntelCollection,
    owner: &Principal,
    since: Option<i64>,
) -> Result<ImportReport> {
    let manifest: Value = serde_json::from_slice(&fetch(source, "manifest.json").await?)
        .map_err(|e| Error::Feed { feed: source.into(), reason: format!("manifest.json: {e}") })?;
    let m = manifest
        .as_object()
        .ok_or_else(|| Error::Feed { feed: source.into(), reason: "manifest.json is not an object".into() })?;
    let mut events: Vec<(i64, &String)> = m.iter().map(|(u, e)| (num(e.get("timestamp")).unwrap_or(0), u)).collect();
    events.sort();
    let mut rep = ImportReport { cursor: since, ..Default::default() };
    for (ts, uuid) in events {
        if since.is_some_and(|s| ts <= s) {
            continue;
        }
        let doc = match fetch(source, &format!("{uuid}.json")).await.and_then(|b| {
            serde_json::from_slice::<Value>(&b)
                .map_err(|e| Error::Feed { feed: source.into(), reason: format!("{uuid}.json: {e}") })
        }) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(feed = source, event = %uuid, error = %e, "misp event not read");
                rep.events_failed += 1;
                continue;
            }
        };
        let objs = match event_to_stix(&doc, into.default_tlp) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(feed = source, event = %uuid, error = %e, "misp event not converted");
                rep.events_failed += 1;
                continue;
            }
        };
        rep.events += 1;
        for r in hub.submit(owner, into, objs).await? {
            match r.outcome {
                Outcome::Added { .. } => rep.objects_added += 1,
                Outcome::Unchanged { .. } => rep.objects_unchanged += 1,
                Outcome::Refused(m) => {
                    tracing::warn!(feed = source, id = %r.id, reason = %m, "misp object refused");
                    rep.objects_refused += 1;
                }
            }
        }
        rep.cursor = Some(rep.cursor.map_or(ts, |c| c.max(ts)));
    }
    Ok(rep)
}

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExportReport {
    pub events: u64,
    pub attributes: u64,
}

fn misp_attribute(kind: &str) -> Option<(&'static str, &'static str)> {
    Some(match kind {
        "ipv4" | "ipv6" => ("ip-src", "Network activity"),
        "domain" => ("domain", "Network activity"),
        "url" => ("url", "Network activity"),
        "email" => ("email-src", "Payload delivery"),
        "md5" => ("md5", "Payload delivery"),
        "sha1" => ("sha1", "Payload delivery"),
        "sha256" => ("sha256", "Payload delivery"),
        "sha512" => ("sha512", "Payload delivery"),
        _ => return None,
    })
}

/// Write the indicators `viewer` may see in `collections`, at most `max_tlp` (never above GREEN:
/// a feed leaves the hub), as a MISP feed in `dir`: one event per collection.
pub async fn export_feed(
    hub: &Hub,
    viewer: &Viewer,
    collections: &[IntelCollection],
    max_tlp: Tlp,
    org_name: &str,
    dir: &Path,
    now: i64,
) -> Result<ExportReport> {
    if max_tlp > Tlp::Green {
        return Err(Error::Invalid(format!("a MISP feed leaves the hub: at most TLP:GREEN, not {max_tlp}")));
    }
    let io = |p: &Path| {
        let context = format!("writing {}", p.display());
        move |source| Error::Io { context, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let org_uuid = uuid_v5(&MISP_NS, format!("org:{org_name}").as_bytes());
    let mut manifest = Map::new();
    let mut hashes = String::new();
    let mut rep = ExportReport::default();
    for c in collections {
        let mut attrs = Vec::new();
        let mut worst = Tlp::Clear;
        for_each_value(hub, viewer, std::slice::from_ref(c), max_tlp, now, |v| {
            let Some((t, cat)) = misp_attribute(&v.kind) else { return Ok(()) };
            worst = worst.max(v.tlp);
            let au = uuid_v5(&MISP_NS, format!("attr:{}:{}", v.indicator_id, v.value).as_bytes());
            hashes.push_str(&format!("{},{{EVENT}}\n", cynex_store::secret::hex(&md5(v.value.as_bytes()))));
            attrs.push(json!({
                "uuid": au, "type": t, "category": cat, "value": v.value, "to_ids": true,
                "timestamp": (crate::stix::time::parse_timestamp(&v.modified).unwrap_or(now) / 1_000_000).to_string(),
                "comment": v.name, "distribution": "5",
                "Tag": [{"name": format!("tlp:{}", v.tlp.as_str()), "colour": tlp_colour(v.tlp)}],
            }));
            Ok(())
        })
        .await?;
        if attrs.is_empty() {
            continue;
        }
        let date = &format_ms(now)[..10];
        let uuid = uuid_v5(&MISP_NS, format!("event:{}:{date}", c.id).as_bytes());
        hashes = hashes.replace("{EVENT}", &uuid);
        let ts = (now / 1_000_000).to_string();
        let tags = json!([{"name": format!("tlp:{}", worst.as_str()), "colour": tlp_colour(worst)}, {"name": "cynex:collection=\"".to_string() + &c.alias + "\"", "colour": "#2c6e9b"}]);
        let event = json!({"Event": {
            "uuid": uuid, "info": format!("cynex {} {date}", c.title), "date": date, "timestamp": ts,
            "publish_timestamp": ts, "published": true, "analysis": "2", "threat_level_id": "3", "distribution": "3",
            "Orgc": {"name": org_name, "uuid": org_uuid}, "Tag": tags, "Attribute": attrs,
        }});
        rep.attributes += event["Event"]["Attribute"].as_array().map_or(0, |a| a.len() as u64);
        let path = dir.join(format!("{uuid}.json"));
        std::fs::write(&path, serde_json::to_vec_pretty(&event).expect("JSON")).map_err(io(&path))?;
        manifest.insert(
            uuid.clone(),
            json!({"Orgc": {"name": org_name, "uuid": org_uuid}, "Tag": tags, "info": event["Event"]["info"],
                   "date": date, "analysis": 2, "threat_level_id": 3, "timestamp": now / 1_000_000}),
        );
        rep.events += 1;
    }
    let mp = dir.join("manifest.json");
    std::fs::write(&mp, serde_json::to_vec_pretty(&Value::Object(manifest)).expect("JSON")).map_err(io(&mp))?;
    let hp = dir.join("hashes.csv");
    std::fs::write(&hp, hashes).map_err(io(&hp))?;
    Ok(rep)
}

fn tlp_colour(t: Tlp) -> &'static str {
    match t {
        Tlp::Clear => "#ffffff",
        Tlp::Green => "#339900",
        Tlp::Amber | Tlp::AmberStrict => "#ffc000",
        Tlp::Red => "#ff0033",
    }
}

/// MD5, only for MISP's `hashes.csv` (which keys attribute values by it).
fn md5(data: &[u8]) -> [u8; 16] {
    use md5::Digest;
    md5::Md5::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_vectors() {
        // RFC 1321 appendix A.5.
        assert_eq!(cynex_store::secret::hex(&md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(cynex_store::secret::hex(&md5(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            cynex_store::secret::hex(&md5(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            )),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }
}
