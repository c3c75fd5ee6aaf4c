//! The STIX 2.1 model: objects kept as JSON (every property, custom ones included, survives a
//! round trip) behind typed accessors, validated on the way in ([`validate`]), with the pieces
//! that need real logic in their own modules: patterns, canonical JSON, deterministic SCO ids and
//! timestamps.

pub mod canonical;
pub mod pattern;
pub mod sco;
pub mod time;
mod validate;

use std::fmt;
use std::net::Ipv6Addr;

use serde_json::{Map, Value};

pub use validate::{valid_uuid, validate};

/// STIX Domain Objects of STIX 2.1 part 4.
pub const SDO_TYPES: &[&str] = &[
    "attack-pattern",
    "campaign",
    "course-of-action",
    "grouping",
    "identity",
    "incident",
    "indicator",
    "infrastructure",
    "intrusion-set",
    "location",
    "malware",
    "malware-analysis",
    "note",
    "observed-data",
    "opinion",
    "report",
    "threat-actor",
    "tool",
    "vulnerability",
];

/// STIX Relationship Objects (part 5).
pub const SRO_TYPES: &[&str] = &["relationship", "sighting"];

/// STIX Cyber-observable Objects (part 6).
pub const SCO_TYPES: &[&str] = &[
    "artifact",
    "autonomous-system",
    "directory",
    "domain-name",
    "email-addr",
    "email-message",
    "file",
    "ipv4-addr",
    "ipv6-addr",
    "mac-addr",
    "mutex",
    "network-traffic",
    "process",
    "software",
    "url",
    "user-account",
    "windows-registry-key",
    "x509-certificate",
];

/// Meta objects (part 7).
pub const META_TYPES: &[&str] = &["marking-definition", "language-content", "extension-definition"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Sdo,
    Sro,
    Sco,
    Meta,
    /// A type the spec does not define (`x-…` or anything else): versioned like an SDO when it
    /// has `created`, like an SCO otherwise.
    Custom,
}

pub fn category(type_: &str) -> Category {
    if SDO_TYPES.contains(&type_) {
        Category::Sdo
    } else if SRO_TYPES.contains(&type_) {
        Category::Sro
    } else if SCO_TYPES.contains(&type_) {
        Category::Sco
    } else if META_TYPES.contains(&type_) {
        Category::Meta
    } else {
        Category::Custom
    }
}

/// The type part of a STIX id (`indicator--…` → `indicator`).
pub fn id_type(id: &str) -> Option<&str> {
    id.split_once("--").map(|(t, _)| t)
}

/// What is wrong with an object: the property (a JSON path such as `external_references[0].url`,
/// empty for the object as a whole) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub property: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.property.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.property, self.message)
        }
    }
}

/// Problems as one line, for an error message or a TAXII status entry.
pub fn describe(problems: &[Problem]) -> String {
    problems.iter().map(Problem::to_string).collect::<Vec<_>>().join("; ")
}

/// A validated STIX 2.1 object.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    map: Map<String, Value>,
}

impl Object {
    /// Validate `v` and wrap it.
    pub fn new(v: Value) -> Result<Object, Vec<Problem>> {
        let problems = validate(&v);
        if !problems.is_empty() {
            return Err(problems);
        }
        match v {
            Value::Object(map) => Ok(Object { map }),
            _ => Err(vec![Problem { property: String::new(), message: "not a JSON object".into() }]),
        }
    }

    pub fn map(&self) -> &Map<String, Value> {
        &self.map
    }

    pub fn into_value(self) -> Value {
        Value::Object(self.map)
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.map.get(key).and_then(Value::as_str)
    }

    pub fn id(&self) -> &str {
        self.str("id").unwrap_or_default()
    }

    pub fn type_(&self) -> &str {
        self.str("type").unwrap_or_default()
    }

    pub fn category(&self) -> Category {
        category(self.type_())
    }

    pub fn spec_version(&self) -> &str {
        self.str("spec_version").unwrap_or("2.1")
    }

    /// The version key: `modified`, else `created` (marking definitions), else none (SCOs).
    pub fn version(&self) -> Option<&str> {
        self.str("modified").or_else(|| self.str("created"))
    }

    /// Ids in `object_marking_refs` and in `granular_markings[*].marking_ref`.
    pub fn marking_refs(&self) -> Vec<&str> {
        let mut out: Vec<&str> = strings(self.map.get("object_marking_refs"));
        if let Some(Value::Array(g)) = self.map.get("granular_markings") {
            out.extend(g.iter().filter_map(|m| m.get("marking_ref").and_then(Value::as_str)));
        }
        out
    }

    /// The objects a relationship or sighting points to (what a viewer must be able to see).
    pub fn refs(&self) -> Vec<String> {
        let keys: &[&str] = match self.type_() {
            "relationship" => &["source_ref", "target_ref"],
            "sighting" => &["sighting_of_ref", "observed_data_refs", "where_sighted_refs"],
            _ => &[],
        };
        let mut out = Vec::new();
        for k in keys {
            match self.map.get(*k) {
                Some(Value::String(s)) => out.push(s.clone()),
                Some(Value::Array(a)) => out.extend(a.iter().filter_map(|x| x.as_str().map(str::to_string))),
                _ => {}
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// The observable values the object names, normalised for lookup: addresses, domains, URLs,
    /// e-mail addresses and file hashes, from an SCO's own properties or an indicator's
    /// `stix` pattern.
    pub fn values(&self) -> Vec<String> {
        let mut out = Vec::new();
        match self.type_() {
            "indicator" if self.str("pattern_type") == Some("stix") => {
                if let Some(p) = self.str("pattern").and_then(|p| pattern::Pattern::parse(p).ok()) {
                    for e in p.equalities() {
                        if let Some(v) = observable_value(&e.object_type, &e.path, &e.value) {
                            out.push(v);
                        }
                    }
                }
            }
            t @ ("ipv4-addr" | "ipv6-addr" | "domain-name" | "url" | "email-addr") => {
                if let Some(v) = self.str("value").and_then(|v| observable_value(t, "value", v)) {
                    out.push(v);
                }
            }
            "file" | "artifact" | "x509-certificate" => {
                if let Some(Value::Object(h)) = self.map.get("hashes") {
                    out.extend(h.values().filter_map(Value::as_str).map(str::to_ascii_lowercase));
                }
            }
            "observed-data" => {
                // Deprecated embedded `objects`: their values count too.
                if let Some(Value::Object(objs)) = self.map.get("objects") {
                    for o in objs.values() {
                        if let (Some(t), Some(v)) =
                            (o.get("type").and_then(Value::as_str), o.get("value").and_then(Value::as_str))
                        {
                            out.extend(observable_value(t, "value", v));
                        }
                    }
                }
            }
            _ => {}
        }
        out.sort();
        out.dedup();
        out
    }
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The lookup form of an observable named by `type:path = value`, or `None` if it is not one we
/// index: IPv4 without `/32`, IPv6 in RFC 5952 form, lower-case domains, hosts of URLs kept as
/// written, lower-case hashes.
pub fn observable_value(object_type: &str, path: &str, value: &str) -> Option<String> {
    let v = value.trim();
    match (object_type, path) {
        ("ipv4-addr", "value") => Some(v.strip_suffix("/32").unwrap_or(v).to_string()),
        ("ipv6-addr", "value") => {
            let bare = v.strip_suffix("/128").unwrap_or(v);
            Some(bare.parse::<Ipv6Addr>().map(|a| a.to_string()).unwrap_or_else(|_| bare.to_ascii_lowercase()))
        }
        ("domain-name" | "email-addr", "value") => Some(v.trim_end_matches('.').to_ascii_lowercase()),
        ("url", "value") => Some(v.to_string()),
        ("network-traffic", "dst_ref.value" | "src_ref.value") => Some(v.strip_suffix("/32").unwrap_or(v).to_string()),
        (_, p) if p.starts_with("hashes.") => Some(v.to_ascii_lowercase()),
        _ => None,
    }
}

/// Normalise what a user asks about into the index's form (an address, domain, URL or hash).
pub fn normalise_query(q: &str) -> String {
    let q = q.trim();
    if q.parse::<std::net::Ipv4Addr>().is_ok()
        || q.strip_suffix("/32").is_some_and(|x| x.parse::<std::net::Ipv4Addr>().is_ok())
    {
        return q.strip_suffix("/32").unwrap_or(q).to_string();
    }
    if let Ok(a) = q.strip_suffix("/128").unwrap_or(q).parse::<Ipv6Addr>() {
        return a.to_string();
    }
    if q.contains("://") {
        return q.to_string();
    }
    q.trim_end_matches('.').to_ascii_lowercase()
}
