//! Indicators out as plain lists, CSV and Suricata rules, for firewalls, SIEMs and IDS that do not
//! speak TAXII. Exports read through the same access rule as TAXII (as a viewer), and stream page
//! by page, so an export never holds more than a page of objects (MISP #4303: whole-database
//! renders time out).

use std::collections::BTreeSet;
use std::io::Write;

use cynex_store::{IntelCollection, ObjectQuery, Tlp, Viewer};
use serde_json::Value;

use crate::hub::Hub;
use crate::stix::pattern::Pattern;
use crate::stix::time::parse_timestamp;
use crate::stix::{observable_value, Object};
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One observable value per line.
    Plain,
    /// `value,type,tlp,valid_until,indicator_id,name`.
    Csv,
    /// One Suricata rule per indicator value (addresses, domains, URLs).
    Suricata,
}

impl std::str::FromStr for ExportFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<ExportFormat> {
        match s {
            "plain" | "list" | "txt" => Ok(ExportFormat::Plain),
            "csv" => Ok(ExportFormat::Csv),
            "suricata" | "rules" => Ok(ExportFormat::Suricata),
            _ => Err(Error::Invalid(format!("export format {s:?}: expected plain, csv or suricata"))),
        }
    }
}

/// One value an indicator names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndicatorValue {
    /// `ipv4`, `ipv6`, `domain`, `url`, `email`, `md5`, `sha1`, `sha256`, `sha512`, …
    pub kind: String,
    pub value: String,
    pub indicator_id: String,
    pub name: String,
    pub tlp: Tlp,
    pub valid_until: Option<String>,
    pub modified: String,
}

/// The values an indicator's STIX pattern tests for equality (`OR`-joined or alone; values under
/// `AND` with something else are left out, as a list cannot express the conjunction).
pub fn indicator_values(o: &Object, tlp: Tlp) -> Vec<IndicatorValue> {
    if o.type_() != "indicator"
        || o.str("pattern_type") != Some("stix")
        || o.map().get("revoked") == Some(&Value::Bool(true))
    {
        return Vec::new();
    }
    let Some(p) = o.str("pattern").and_then(|p| Pattern::parse(p).ok()) else { return Vec::new() };
    if !only_or_of_equalities(&p) {
        return Vec::new();
    }
    p.equalities()
        .into_iter()
        .filter_map(|e| {
            let value = observable_value(&e.object_type, &e.path, &e.value)?;
            let kind = match (e.object_type.as_str(), e.path.as_str()) {
                ("ipv4-addr", _) => "ipv4".to_string(),
                ("ipv6-addr", _) => "ipv6".to_string(),
                ("domain-name", _) => "domain".to_string(),
                ("url", _) => "url".to_string(),
                ("email-addr", _) => "email".to_string(),
                (_, p) if p.starts_with("hashes.") => p["hashes.".len()..].to_ascii_lowercase().replace('-', ""),
                _ => return None,
            };
            Some(IndicatorValue {
                kind,
                value,
                indicator_id: o.id().to_string(),
                name: o.str("name").unwrap_or_default().to_string(),
                tlp,
                valid_until: o.str("valid_until").map(str::to_string),
                modified: o.str("modified").unwrap_or_default().to_string(),
            })
        })
        .collect()
}

fn only_or_of_equalities(p: &Pattern) -> bool {
    use crate::stix::pattern::{Comparison, Observation, Op};
    fn cmp(c: &Comparison) -> bool {
        match c {
            Comparison::Test(t) => t.op == Op::Eq && !t.negated,
            Comparison::Or(v) => v.iter().all(cmp),
            Comparison::And(_) => false,
        }
    }
    fn obs(o: &Observation) -> bool {
        match o {
            Observation::Simple(c, q) => q.is_empty() && cmp(c),
            Observation::Or(v) => v.iter().all(obs),
            _ => false,
        }
    }
    obs(&p.root)
}

/// Every indicator value visible to `viewer` in `collections`, at most `max_tlp`, still valid at
/// `now` (µs), in collection and date order, page by page into `each`.
pub async fn for_each_value(
    hub: &Hub,
    viewer: &Viewer,
    collections: &[IntelCollection],
    max_tlp: Tlp,
    now: i64,
    mut each: impl FnMut(IndicatorValue) -> Result<()>,
) -> Result<u64> {
    let mut n = 0;
    for c in collections.iter().filter(|c| c.can_read(viewer)) {
        let mut after = None;
        loop {
            let q = ObjectQuery {
                collection_id: c.id.clone(),
                after,
                types: vec!["indicator".into()],
                limit: 1000,
                ..ObjectQuery::default()
            };
            let page = hub.store.objects(viewer, &q).await?;
            for s in &page.items {
                after = Some(s.meta.date_added);
                if s.meta.tlp > max_tlp {
                    continue;
                }
                let v: Value =
                    serde_json::from_str(&s.body).map_err(|e| Error::Invalid(format!("stored {}: {e}", s.meta.id)))?;
                let Ok(o) = Object::new(v) else { continue };
                if o.str("valid_until").and_then(parse_timestamp).is_some_and(|t| t <= now) {
                    continue;
                }
                for iv in indicator_values(&o, s.meta.tlp) {
                    n += 1;
                    each(iv)?;
                }
            }
            if !page.more {
                break;
            }
        }
    }
    Ok(n)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Suricata's `content` needs `"`, `;`, `\` and `|` escaped (as hex).
fn suricata_content(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '"' => out.push_str("|22|"),
            ';' => out.push_str("|3B|"),
            '\\' => out.push_str("|5C|"),
            '|' => out.push_str("|7C|"),
            c => out.push(c),
        }
    }
    out
}

fn msg(s: &str) -> String {
    s.chars().filter(|c| !matches!(c, '"' | ';' | '\\' | '\n' | '\r')).collect()
}

/// A stable Suricata sid for an indicator value, in the 9,000,000-9,999,999 local range
/// (Emerging Threats' sid allocation reserves 9000000+ for local rules), collisions resolved by
/// the caller.
fn sid_of(key: &str) -> u32 {
    let h = cynex_store::secret::sha256(key.as_bytes());
    9_000_000 + u32::from_le_bytes([h[0], h[1], h[2], h[3]]) % 1_000_000
}

/// One Suricata rule for a value, or `None` for values Suricata rules cannot match directly
/// (file hashes need filemd5/filesha256 list files).
fn suricata_rule(v: &IndicatorValue, sid: u32) -> Option<String> {
    let rev = parse_timestamp(&v.modified).map_or(1, |t| (t / 1_000_000 - 1_600_000_000).max(1));
    let label = format!("cynex {} {} {}", v.tlp, msg(&v.name), v.value);
    let meta = format!("metadata:cynex_indicator {}, tlp {};", v.indicator_id, v.tlp.as_str());
    Some(match v.kind.as_str() {
        "ipv4" | "ipv6" => format!(
            "alert ip [{}] any -> $HOME_NET any (msg:\"{}\"; classtype:misc-attack; sid:{sid}; rev:{rev}; {meta})",
            v.value,
            msg(&label)
        ),
        "domain" => format!(
            "alert dns $HOME_NET any -> any any (msg:\"{}\"; dns.query; content:\"{}\"; nocase; endswith; \
             classtype:bad-unknown; sid:{sid}; rev:{rev}; {meta})",
            msg(&label),
            suricata_content(&v.value)
        ),
        "url" => {
            let rest = v.value.split_once("://").map_or(v.value.as_str(), |(_, r)| r);
            let (host, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
            format!(
                "alert http $HOME_NET any -> any any (msg:\"{}\"; http.host; content:\"{}\"; nocase; http.uri; \
                 content:\"{}\"; classtype:bad-unknown; sid:{sid}; rev:{rev}; {meta})",
                msg(&label),
                suricata_content(host.split(':').next().unwrap_or(host)),
                suricata_content(&path)
            )
        }
        _ => return None,
    })
}

/// Write an export to `w`; returns the number of values written.
pub async fn export(
    hub: &Hub,
    viewer: &Viewer,
    collections: &[IntelCollection],
    format: ExportFormat,
    max_tlp: Tlp,
    now: i64,
    w: &mut (dyn Write + Send),
) -> Result<u64> {
    let io = |e: std::io::Error| Error::Io { context: "writing the export".into(), source: e };
    let mut sids = BTreeSet::new();
    let mut written = 0u64;
    match format {
        ExportFormat::Csv => writeln!(w, "value,type,tlp,valid_until,indicator_id,name").map_err(io)?,
        ExportFormat::Suricata => writeln!(
            w,
            "# cynex indicators as Suricata rules ({}), generated {}",
            max_tlp,
            crate::stix::time::format_ms(now)
        )
        .map_err(io)?,
        ExportFormat::Plain => {}
    }
    let mut seen = BTreeSet::new();
    for_each_value(hub, viewer, collections, max_tlp, now, |v| {
        if !seen.insert((v.kind.clone(), v.value.clone())) {
            return Ok(());
        }
        match format {
            ExportFormat::Plain => writeln!(w, "{}", v.value).map_err(io)?,
            ExportFormat::Csv => writeln!(
                w,
                "{},{},{},{},{},{}",
                csv_field(&v.value),
                v.kind,
                v.tlp.as_str(),
                v.valid_until.as_deref().unwrap_or(""),
                v.indicator_id,
                csv_field(&v.name)
            )
            .map_err(io)?,
            ExportFormat::Suricata => {
                let mut sid = sid_of(&format!("{}|{}", v.indicator_id, v.value));
                while !sids.insert(sid) {
                    sid = if sid == 9_999_999 { 9_000_000 } else { sid + 1 };
                }
                match suricata_rule(&v, sid) {
                    Some(r) => writeln!(w, "{r}").map_err(io)?,
                    None => return Ok(()),
                }
            }
        }
        written += 1;
        Ok(())
    })
    .await?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ind(pattern: &str) -> Object {
        Object::new(json!({
            "type": "indicator", "spec_version": "2.1", "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "created": "2026-11-01T00:00:00.000Z", "modified": "2026-11-02T00:00:00.000Z", "name": "x \"y\"; z",
            "pattern": pattern, "pattern_type": "stix", "valid_from": "2026-11-01T00:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn values_from_patterns() {
        let v = indicator_values(
            &ind("[ipv4-addr:value = '198.51.100.7/32' OR domain-name:value = 'Evil.Example.']"),
            Tlp::Green,
        );
        assert_eq!(
            v.iter().map(|x| (x.kind.as_str(), x.value.as_str())).collect::<Vec<_>>(),
            [("ipv4", "198.51.100.7"), ("domain", "evil.example")]
        );
        assert!(indicator_values(
            &ind("[ipv4-addr:value = '198.51.100.7' AND ipv4-addr:value != '10.0.0.1']"),
            Tlp::Green
        )
        .is_empty());
        assert!(indicator_values(&ind("[ipv4-addr:value = '198.51.100.7'] WITHIN 5 SECONDS"), Tlp::Green).is_empty());
        let h = indicator_values(
            &ind("[file:hashes.'SHA-256' = 'AEC070645FE53EE3B3763059376134F058CC337247C978ADD178B6CCDFB0019F']"),
            Tlp::Amber,
        );
        assert_eq!(h[0].kind, "sha256");
        assert_eq!(h[0].value, "aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f");
    }

    #[test]
    fn suricata_rules_are_well_formed() {
        let v = &indicator_values(
            &ind("[ipv4-addr:value = '198.51.100.7' OR url:value = 'http://evil.example:8080/a;b\"c']"),
            Tlp::Green,
        );
        let ip = suricata_rule(&v[0], 9_000_001).unwrap();
        assert!(
            ip.starts_with("alert ip [198.51.100.7] any -> $HOME_NET any (msg:\"cynex TLP:GREEN x y z 198.51.100.7\";"),
            "{ip}"
        );
        assert!(ip.contains("sid:9000001; rev:"), "{ip}");
        let url = suricata_rule(&v[1], 9_000_002).unwrap();
        assert!(
            url.contains("http.host; content:\"evil.example\"; nocase; http.uri; content:\"/a|3B|b|22|c\";"),
            "{url}"
        );
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }
}
