//! Validation of STIX 2.1 objects on ingest: every MUST of the common properties (STIX 2.1 part 3)
//! and of the required properties of the object types the hub produces or is asked to hold
//! (parts 4-7), each problem reported with its property. Rules the spec words as SHOULD are not
//! errors. Custom properties are allowed when their names follow §3.1 (`[a-z0-9_]`, 3-250
//! characters); their values are kept as they are.

use serde_json::{Map, Value};

use super::pattern::Pattern;
use super::time::parse_timestamp;
use super::{category, id_type, Category, Problem};

struct V {
    problems: Vec<Problem>,
}

impl V {
    fn err(&mut self, property: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem { property: property.into(), message: message.into() });
    }

    fn str<'a>(&mut self, m: &'a Map<String, Value>, key: &str, required: bool) -> Option<&'a str> {
        match m.get(key) {
            None if required => {
                self.err(key, "required");
                None
            }
            None => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                self.err(key, "must be a string");
                None
            }
        }
    }

    fn timestamp(&mut self, m: &Map<String, Value>, key: &str, required: bool) -> Option<i64> {
        let s = self.str(m, key, required)?;
        let t = parse_timestamp(s);
        if t.is_none() {
            self.err(key, format!("{s:?} is not a STIX timestamp (YYYY-MM-DDTHH:MM:SS[.s]Z, UTC)"));
        }
        t
    }

    fn bool(&mut self, m: &Map<String, Value>, key: &str, required: bool) -> Option<bool> {
        match m.get(key) {
            None if required => {
                self.err(key, "required");
                None
            }
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.err(key, "must be true or false");
                None
            }
        }
    }

    fn int(&mut self, m: &Map<String, Value>, key: &str, required: bool, range: (i64, i64)) -> Option<i64> {
        match m.get(key) {
            None if required => {
                self.err(key, "required");
                None
            }
            None => None,
            Some(Value::Number(n)) if n.as_i64().is_some() => {
                let i = n.as_i64().expect("checked");
                if i < range.0 || i > range.1 {
                    self.err(key, format!("{i} is outside {}..={}", range.0, range.1));
                }
                Some(i)
            }
            Some(_) => {
                self.err(key, "must be an integer");
                None
            }
        }
    }

    fn list<'a>(&mut self, m: &'a Map<String, Value>, key: &str, required: bool) -> Option<&'a Vec<Value>> {
        match m.get(key) {
            None if required => {
                self.err(key, "required");
                None
            }
            None => None,
            // Reported by `null_free`, which checks every list.
            Some(Value::Array(a)) if a.is_empty() => None,
            Some(Value::Array(a)) => Some(a),
            Some(_) => {
                self.err(key, "must be a list");
                None
            }
        }
    }

    fn string_list(&mut self, m: &Map<String, Value>, key: &str, required: bool) {
        if let Some(a) = self.list(m, key, required) {
            for (i, x) in a.iter().enumerate() {
                match x.as_str() {
                    Some("") => self.err(format!("{key}[{i}]"), "must not be empty"),
                    Some(_) => {}
                    None => self.err(format!("{key}[{i}]"), "must be a string"),
                }
            }
        }
    }

    /// An identifier of one of `types` (any type when empty).
    fn id_value(&mut self, prop: &str, v: &Value, types: &[&str]) {
        let Some(s) = v.as_str() else {
            self.err(prop, "must be a STIX identifier string");
            return;
        };
        if !valid_id(s) {
            self.err(prop, format!("{s:?} is not a STIX identifier (<type>--<UUID>)"));
            return;
        }
        let t = id_type(s).unwrap_or_default();
        if !types.is_empty() && !types.contains(&t) {
            self.err(prop, format!("{s:?} must refer to {}", types.join(" or ")));
        }
    }

    fn ref_(&mut self, m: &Map<String, Value>, key: &str, required: bool, types: &[&str]) {
        match m.get(key) {
            None if required => self.err(key, "required"),
            None => {}
            Some(v) => self.id_value(key, v, types),
        }
    }

    fn refs(&mut self, m: &Map<String, Value>, key: &str, required: bool, types: &[&str]) {
        if let Some(a) = self.list(m, key, required) {
            for (i, x) in a.iter().enumerate() {
                self.id_value(&format!("{key}[{i}]"), x, types);
            }
        }
    }

    fn order(&mut self, m: &Map<String, Value>, first: &str, last: &str, strict: bool) {
        let (a, b) = (m.get(first).and_then(Value::as_str), m.get(last).and_then(Value::as_str));
        if let (Some(ta), Some(tb)) = (a.and_then(parse_timestamp), b.and_then(parse_timestamp)) {
            if tb < ta || (strict && tb == ta) {
                let rel = if strict { "later than" } else { "earlier than" };
                if strict {
                    self.err(last, format!("must be {rel} {first}"));
                } else {
                    self.err(last, format!("must not be {rel} {first}"));
                }
            }
        }
    }
}

/// `<type>--<UUID>` with an RFC 4122/9562 UUID.
pub(crate) fn valid_id(s: &str) -> bool {
    let Some((t, u)) = s.split_once("--") else { return false };
    valid_type(t) && valid_uuid(u)
}

/// An RFC 4122/9562 UUID in its text form (any version; the RFC variant).
pub fn valid_uuid(u: &str) -> bool {
    let b = u.as_bytes();
    if b.len() != 36 {
        return false;
    }
    for (i, c) in b.iter().enumerate() {
        let ok = match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        };
        if !ok {
            return false;
        }
    }
    matches!(b[19], b'8' | b'9' | b'a' | b'b' | b'A' | b'B')
}

/// STIX 2.1 §2.8/§3.1: types are 3-250 characters of `a-z 0-9 -`, not starting or ending with a hyphen.
pub(crate) fn valid_type(t: &str) -> bool {
    (3..=250).contains(&t.len())
        && t.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && !t.starts_with('-')
        && !t.ends_with('-')
        && !t.contains("--")
}

fn valid_property_name(k: &str) -> bool {
    (3..=250).contains(&k.len()) && k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') || matches!(k, "id")
}

/// Properties the spec defines on some object (so a name check does not flag them).
const SHORT_NAMES: &[&str] = &["id", "key", "pid", "cwd", "url", "lang", "body", "name", "path", "type", "size"];

/// STIX 2.1 §3.1 forbids null values and empty lists anywhere, custom properties included.
fn null_free(v: &Value, path: &str, p: &mut V) {
    match v {
        Value::Null => p.err(path, "null is not allowed (omit the property)"),
        Value::Array(a) if a.is_empty() => p.err(path, "must not be an empty list (omit it instead)"),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| null_free(x, &format!("{path}[{i}]"), p)),
        Value::Object(m) => m.iter().for_each(|(k, x)| null_free(x, &format!("{path}.{k}"), p)),
        _ => {}
    }
}

const HASH_LEN: &[(&str, usize)] =
    &[("MD5", 32), ("SHA-1", 40), ("SHA-256", 64), ("SHA-512", 128), ("SHA3-256", 64), ("SHA3-512", 128)];

fn hashes(p: &mut V, m: &Map<String, Value>, key: &str) {
    match m.get(key) {
        None => {}
        Some(Value::Object(h)) if h.is_empty() => p.err(key, "must not be empty"),
        Some(Value::Object(h)) => {
            for (alg, v) in h {
                let Some(s) = v.as_str() else {
                    p.err(format!("{key}.{alg}"), "must be a string");
                    continue;
                };
                if let Some((_, n)) = HASH_LEN.iter().find(|(a, _)| a == alg) {
                    if s.len() != *n || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
                        p.err(format!("{key}.{alg}"), format!("{s:?} is not a {alg} hash ({n} hex digits)"));
                    }
                }
            }
        }
        Some(_) => p.err(key, "must be a dictionary of hash algorithm to value"),
    }
}

fn kill_chain_phases(p: &mut V, m: &Map<String, Value>) {
    if let Some(a) = p.list(m, "kill_chain_phases", false) {
        for (i, x) in a.iter().enumerate() {
            let Some(k) = x.as_object() else {
                p.err(format!("kill_chain_phases[{i}]"), "must be an object");
                continue;
            };
            for f in ["kill_chain_name", "phase_name"] {
                if !k.get(f).is_some_and(Value::is_string) {
                    p.err(format!("kill_chain_phases[{i}].{f}"), "required string");
                }
            }
        }
    }
}

/// Every problem with `v` as a STIX 2.1 object (empty when it is valid).
pub fn validate(v: &Value) -> Vec<Problem> {
    let mut p = V { problems: Vec::new() };
    let Some(m) = v.as_object() else {
        p.err("", "a STIX object must be a JSON object");
        return p.problems;
    };
    null_free(v, "", &mut p);
    p.problems.iter_mut().for_each(|x| x.property = x.property.trim_start_matches('.').to_string());

    let Some(t) = p.str(m, "type", true) else { return p.problems };
    if !valid_type(t) {
        p.err("type", format!("{t:?}: 3-250 characters of a-z, 0-9 and '-'"));
        return p.problems;
    }
    match p.str(m, "id", true) {
        Some(id) if !valid_id(id) => p.err("id", format!("{id:?} is not a STIX identifier (<type>--<UUID>)")),
        Some(id) if id_type(id) != Some(t) => p.err("id", format!("{id:?} must begin with the object's type {t:?}")),
        _ => {}
    }
    let cat = category(t);
    // Custom objects are versioned like SDOs when they carry `created`.
    let versioned = match cat {
        Category::Sdo | Category::Sro => true,
        Category::Custom => m.contains_key("created"),
        Category::Sco | Category::Meta => false,
    };
    let needs_spec = !matches!(cat, Category::Sco) && (cat != Category::Custom || versioned);
    match p.str(m, "spec_version", needs_spec) {
        Some("2.1") | None => {}
        Some(other) => p.err("spec_version", format!("{other:?}: only STIX 2.1 objects are accepted")),
    }
    if versioned {
        let c = p.timestamp(m, "created", true);
        let md = p.timestamp(m, "modified", true);
        if let (Some(c), Some(md)) = (c, md) {
            if md < c {
                p.err("modified", "must not be earlier than created");
            }
        }
    }
    for (k, _) in m.iter() {
        if !valid_property_name(k) && !SHORT_NAMES.contains(&k.as_str()) {
            p.err(k.as_str(), "property names are 3-250 characters of a-z, A-Z, 0-9 and '_'");
        }
    }
    p.ref_(m, "created_by_ref", false, &["identity"]);
    p.bool(m, "revoked", false);
    p.string_list(m, "labels", false);
    p.int(m, "confidence", false, (0, 100));
    p.str(m, "lang", false);
    if let Some(refs) = p.list(m, "external_references", false) {
        for (i, r) in refs.iter().enumerate() {
            let prop = format!("external_references[{i}]");
            let Some(r) = r.as_object() else {
                p.err(prop, "must be an object");
                continue;
            };
            match r.get("source_name") {
                Some(Value::String(_)) => {}
                _ => p.err(format!("{prop}.source_name"), "required string"),
            }
            if !["description", "url", "external_id"].iter().any(|k| r.contains_key(*k)) {
                p.err(prop.clone(), "needs at least one of description, url, external_id");
            }
            hashes(&mut p, r, "hashes");
        }
    }
    p.refs(m, "object_marking_refs", false, &["marking-definition"]);
    if let Some(g) = p.list(m, "granular_markings", false) {
        for (i, x) in g.iter().enumerate() {
            let prop = format!("granular_markings[{i}]");
            let Some(x) = x.as_object() else {
                p.err(prop, "must be an object");
                continue;
            };
            match (x.get("marking_ref"), x.get("lang")) {
                (Some(r), None) => p.id_value(&format!("{prop}.marking_ref"), r, &["marking-definition"]),
                (None, Some(Value::String(_))) => {}
                _ => p.err(prop.clone(), "needs exactly one of marking_ref and lang"),
            }
            match x.get("selectors") {
                Some(Value::Array(s)) if !s.is_empty() && s.iter().all(Value::is_string) => {}
                _ => p.err(format!("{prop}.selectors"), "required non-empty list of strings"),
            }
        }
    }
    match m.get("extensions") {
        None => {}
        Some(Value::Object(e)) if e.is_empty() => p.err("extensions", "must not be empty"),
        Some(Value::Object(e)) => {
            for (k, x) in e {
                if !x.is_object() {
                    p.err(format!("extensions.{k}"), "must be an object");
                }
            }
        }
        Some(_) => p.err("extensions", "must be a dictionary"),
    }
    if cat == Category::Sco {
        p.bool(m, "defanged", false);
    }
    type_rules(&mut p, t, m);
    p.problems
}

fn type_rules(p: &mut V, t: &str, m: &Map<String, Value>) {
    match t {
        "attack-pattern" | "course-of-action" | "intrusion-set" | "threat-actor" | "tool" | "vulnerability" => {
            p.str(m, "name", true);
            kill_chain_phases(p, m);
        }
        "campaign" => {
            p.str(m, "name", true);
            p.timestamp(m, "first_seen", false);
            p.timestamp(m, "last_seen", false);
            p.order(m, "first_seen", "last_seen", false);
        }
        "identity" => {
            p.str(m, "name", true);
            p.str(m, "identity_class", false);
            p.string_list(m, "sectors", false);
        }
        "infrastructure" => {
            p.str(m, "name", true);
            p.string_list(m, "infrastructure_types", false);
            p.timestamp(m, "first_seen", false);
            p.timestamp(m, "last_seen", false);
            p.order(m, "first_seen", "last_seen", false);
            kill_chain_phases(p, m);
        }
        "malware" => {
            let fam = p.bool(m, "is_family", true);
            p.str(m, "name", fam == Some(true));
            p.string_list(m, "malware_types", false);
            p.timestamp(m, "first_seen", false);
            p.timestamp(m, "last_seen", false);
            p.order(m, "first_seen", "last_seen", false);
            kill_chain_phases(p, m);
        }
        "indicator" => {
            let pattern = p.str(m, "pattern", true);
            let ptype = p.str(m, "pattern_type", true);
            p.timestamp(m, "valid_from", true);
            p.timestamp(m, "valid_until", false);
            p.order(m, "valid_from", "valid_until", true);
            p.string_list(m, "indicator_types", false);
            p.str(m, "pattern_version", false);
            kill_chain_phases(p, m);
            if let (Some(pat), Some("stix")) = (pattern, ptype) {
                if let Err(e) = Pattern::parse(pat) {
                    p.err("pattern", format!("not a valid STIX pattern {e}"));
                }
            }
        }
        "location" => {
            let lat = m.get("latitude").and_then(Value::as_f64);
            let lon = m.get("longitude").and_then(Value::as_f64);
            if lat.is_some() != lon.is_some() {
                p.err("latitude", "latitude and longitude go together");
            }
            if lat.is_some_and(|x| !(-90.0..=90.0).contains(&x)) {
                p.err("latitude", "must be between -90 and 90");
            }
            if lon.is_some_and(|x| !(-180.0..=180.0).contains(&x)) {
                p.err("longitude", "must be between -180 and 180");
            }
            if !m.contains_key("region") && !m.contains_key("country") && lat.is_none() {
                p.err("", "a location needs region, country, or latitude and longitude");
            }
        }
        "malware-analysis" => {
            p.str(m, "product", true);
            if !m.contains_key("result") && !m.contains_key("analysis_sco_refs") {
                p.err("", "a malware-analysis needs result or analysis_sco_refs");
            }
        }
        "note" => {
            p.str(m, "content", true);
            p.refs(m, "object_refs", true, &[]);
        }
        "grouping" => {
            p.str(m, "context", true);
            p.refs(m, "object_refs", true, &[]);
        }
        "report" => {
            p.str(m, "name", true);
            p.timestamp(m, "published", true);
            p.refs(m, "object_refs", true, &[]);
        }
        "opinion" => {
            match p.str(m, "opinion", true) {
                Some("strongly-disagree" | "disagree" | "neutral" | "agree" | "strongly-agree") | None => {}
                Some(o) => p.err(
                    "opinion",
                    format!("{o:?} is not one of strongly-disagree, disagree, neutral, agree, strongly-agree"),
                ),
            }
            p.refs(m, "object_refs", true, &[]);
        }
        "observed-data" => {
            p.timestamp(m, "first_observed", true);
            p.timestamp(m, "last_observed", true);
            p.order(m, "first_observed", "last_observed", false);
            p.int(m, "number_observed", true, (1, 999_999_999));
            match (m.contains_key("object_refs"), m.contains_key("objects")) {
                (true, true) => p.err("objects", "use object_refs or the deprecated objects, not both"),
                (false, false) => p.err("object_refs", "required (or the deprecated objects)"),
                (true, false) => p.refs(m, "object_refs", true, &[]),
                (false, true) => {}
            }
        }
        "relationship" => {
            match p.str(m, "relationship_type", true) {
                Some(r)
                    if r.is_empty()
                        || !r.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-') =>
                {
                    p.err("relationship_type", format!("{r:?}: lower-case a-z, 0-9 and '-'"))
                }
                _ => {}
            }
            for k in ["source_ref", "target_ref"] {
                p.ref_(m, k, true, &[]);
                if let Some(t) = m.get(k).and_then(Value::as_str).and_then(id_type) {
                    if matches!(category(t), Category::Sro)
                        || matches!(t, "marking-definition" | "language-content" | "bundle")
                    {
                        p.err(k, format!("a relationship cannot point to a {t}"));
                    }
                }
            }
            p.timestamp(m, "start_time", false);
            p.timestamp(m, "stop_time", false);
            p.order(m, "start_time", "stop_time", true);
        }
        "sighting" => {
            p.ref_(m, "sighting_of_ref", true, &[]);
            if let Some(t) = m.get("sighting_of_ref").and_then(Value::as_str).and_then(id_type) {
                if !matches!(category(t), Category::Sdo | Category::Custom) {
                    p.err("sighting_of_ref", format!("must point to an SDO, not a {t}"));
                }
            }
            p.refs(m, "observed_data_refs", false, &["observed-data"]);
            p.refs(m, "where_sighted_refs", false, &["identity", "location"]);
            p.int(m, "count", false, (0, 999_999_999));
            p.timestamp(m, "first_seen", false);
            p.timestamp(m, "last_seen", false);
            p.order(m, "first_seen", "last_seen", false);
        }
        "marking-definition" => {
            p.timestamp(m, "created", true);
            if m.contains_key("modified") {
                p.err("modified", "a marking definition has no modified (it cannot be versioned)");
            }
            if !m.contains_key("extensions") {
                match p.str(m, "definition_type", true) {
                    Some(_) if !m.get("definition").is_some_and(Value::is_object) => {
                        p.err("definition", "required object (with definition_type)")
                    }
                    _ => {}
                }
            }
        }
        "extension-definition" => {
            p.str(m, "name", true);
            p.str(m, "schema", true);
            p.str(m, "version", true);
            p.string_list(m, "extension_types", true);
        }
        "language-content" => {
            p.ref_(m, "object_ref", true, &[]);
            if !m.get("contents").is_some_and(Value::is_object) {
                p.err("contents", "required dictionary");
            }
        }
        "ipv4-addr" => {
            if let Some(v) = p.str(m, "value", true) {
                let (a, len) = v.split_once('/').map_or((v, None), |(a, l)| (a, Some(l)));
                let len_ok = len.is_none_or(|l| l.parse::<u8>().is_ok_and(|n| n <= 32));
                if a.parse::<std::net::Ipv4Addr>().is_err() || !len_ok {
                    p.err("value", format!("{v:?} is not an IPv4 address or CIDR block"));
                }
            }
        }
        "ipv6-addr" => {
            if let Some(v) = p.str(m, "value", true) {
                let (a, len) = v.split_once('/').map_or((v, None), |(a, l)| (a, Some(l)));
                let len_ok = len.is_none_or(|l| l.parse::<u8>().is_ok_and(|n| n <= 128));
                if a.parse::<std::net::Ipv6Addr>().is_err() || !len_ok {
                    p.err("value", format!("{v:?} is not an IPv6 address or CIDR block"));
                }
            }
        }
        "domain-name" | "email-addr" | "url" | "mac-addr" => {
            if let Some(v) = p.str(m, "value", true) {
                if v.is_empty() {
                    p.err("value", "must not be empty");
                }
                if t == "mac-addr" && !mac_ok(v) {
                    p.err("value", format!("{v:?}: a MAC address is six lower-case colon-separated hex octets"));
                }
            }
        }
        "file" => {
            hashes(p, m, "hashes");
            if !m.contains_key("hashes") && !m.contains_key("name") {
                p.err("", "a file needs hashes or name");
            }
        }
        "artifact" | "x509-certificate" => hashes(p, m, "hashes"),
        "autonomous-system" => {
            p.int(m, "number", true, (0, u32::MAX as i64));
        }
        "network-traffic" => {
            p.string_list(m, "protocols", true);
            for k in ["src_port", "dst_port"] {
                p.int(m, k, false, (0, 65535));
            }
            for k in ["src_ref", "dst_ref"] {
                p.ref_(m, k, false, &["ipv4-addr", "ipv6-addr", "mac-addr", "domain-name"]);
            }
            p.timestamp(m, "start", false);
            p.timestamp(m, "end", false);
            p.order(m, "start", "end", false);
            if !m.contains_key("src_ref") && !m.contains_key("dst_ref") {
                p.err("", "network-traffic needs src_ref or dst_ref");
            }
        }
        _ => {}
    }
}

fn mac_ok(v: &str) -> bool {
    let parts: Vec<&str> = v.split(':').collect();
    parts.len() == 6
        && parts.iter().all(|x| x.len() == 2 && x.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problems(v: Value) -> Vec<String> {
        validate(&v).iter().map(ToString::to_string).collect()
    }

    fn indicator() -> Value {
        json!({
            "type": "indicator", "spec_version": "2.1",
            "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "created": "2016-04-06T20:03:48.000Z", "modified": "2016-04-06T20:03:48.000Z",
            "pattern": "[ipv4-addr:value = '198.51.100.1/32']", "pattern_type": "stix",
            "valid_from": "2016-01-01T00:00:00Z", "x_acme_score": 7
        })
    }

    #[test]
    fn valid_indicator_with_custom_property() {
        assert_eq!(problems(indicator()), Vec::<String>::new());
    }

    #[test]
    fn each_problem_names_its_property() {
        let mut v = indicator();
        v["modified"] = json!("2015-01-01T00:00:00Z");
        v["confidence"] = json!(101);
        v["labels"] = json!([]);
        v["pattern"] = json!("[ipv4-addr:value = ]");
        v["object_marking_refs"] = json!(["identity--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"]);
        v["Bad-Name"] = json!(1);
        v["valid_until"] = json!("2015-01-01T00:00:00Z");
        v["x_acme_ports"] = json!([]);
        v["x_acme_nested"] = json!({"k": []});
        let p = problems(v);
        for want in [
            "x_acme_ports: must not be an empty list",
            "x_acme_nested.k: must not be an empty list",
            "modified: must not be earlier than created",
            "confidence: 101 is outside 0..=100",
            "labels: must not be an empty list",
            "pattern: not a valid STIX pattern at character 20",
            "object_marking_refs[0]: \"identity--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f\" must refer to marking-definition",
            "Bad-Name: property names",
            "valid_until: must be later than valid_from",
        ] {
            assert!(p.iter().any(|x| x.starts_with(want)), "missing {want:?} in {p:#?}");
        }
    }

    #[test]
    fn required_properties_and_types() {
        let p = problems(
            json!({"type": "identity", "spec_version": "2.1", "id": "identity--311b2d2d-f010-4473-83ec-1edf84858f4c", "created": "2015-12-21T19:59:11Z"}),
        );
        assert_eq!(p, ["modified: required", "name: required"]);
        let p = problems(
            json!({"type": "ipv4-addr", "id": "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd", "value": "300.1.1.1"}),
        );
        assert_eq!(p, ["value: \"300.1.1.1\" is not an IPv4 address or CIDR block"]);
        let p = problems(
            json!({"type": "sighting", "spec_version": "2.1", "id": "sighting--ee20065d-2555-424f-ad9e-0f8428623c75",
            "created": "2016-04-06T20:03:48.000Z", "modified": "2016-04-06T20:03:48.000Z", "sighting_of_ref": "relationship--ee20065d-2555-424f-ad9e-0f8428623c75", "count": -1}),
        );
        assert!(p.iter().any(|x| x.starts_with("sighting_of_ref: must point to an SDO")), "{p:?}");
        assert!(p.iter().any(|x| x.starts_with("count: -1 is outside")), "{p:?}");
        assert_eq!(problems(json!([1])), ["a STIX object must be a JSON object"]);
        assert_eq!(problems(json!({"type": "x", "id": "x--1"})), ["type: \"x\": 3-250 characters of a-z, 0-9 and '-'"]);
        let p = problems(
            json!({"type": "malware", "spec_version": "2.1", "id": "malware--ee20065d-2555-424f-ad9e-0f8428623c75",
            "created": "2016-04-06T20:03:48.000Z", "modified": "2016-04-06T20:03:48.000Z", "is_family": true, "name": null}),
        );
        assert!(p.iter().any(|x| x.starts_with("name: null is not allowed")), "{p:?}");
    }
}
