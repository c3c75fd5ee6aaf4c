//! Deterministic SCO identifiers (STIX 2.1 §2.9): `<type>--<UUIDv5>` with the STIX namespace,
//! over the RFC 8785 canonical JSON of the type's ID Contributing Properties, so that every
//! producer names the same address, domain or file with the same id. The property lists follow
//! STIX 2.1 part 6 (as python-stix2 `v21/observables.py` implements them, `hashes` reduced to one
//! hash by its preference order).

use serde_json::{Map, Value};
use sha1::{Digest, Sha1};

use super::canonical::canonical;

/// `00abedb4-aa42-466c-9c01-fed23315a9b7` (STIX 2.1 §2.9).
const NAMESPACE: [u8; 16] =
    [0x00, 0xab, 0xed, 0xb4, 0xaa, 0x42, 0x46, 0x6c, 0x9c, 0x01, 0xfe, 0xd2, 0x33, 0x15, 0xa9, 0xb7];

/// The ID Contributing Properties of an SCO type (`None` for types the spec does not list).
pub fn contributing_properties(sco_type: &str) -> Option<&'static [&'static str]> {
    Some(match sco_type {
        "artifact" => &["hashes", "payload_bin"],
        "autonomous-system" => &["number"],
        "directory" => &["path"],
        "domain-name" | "email-addr" | "ipv4-addr" | "ipv6-addr" | "mac-addr" | "url" => &["value"],
        "email-message" => &["from_ref", "subject", "body"],
        "file" => &["hashes", "name", "parent_directory_ref", "extensions"],
        "mutex" => &["name"],
        "network-traffic" => &["start", "end", "src_ref", "dst_ref", "src_port", "dst_port", "protocols", "extensions"],
        "process" => &[],
        "software" => &["name", "cpe", "swid", "vendor", "version"],
        "user-account" => &["account_type", "user_id", "account_login"],
        "windows-registry-key" => &["key", "values"],
        "x509-certificate" => &["hashes", "serial_number"],
        _ => return None,
    })
}

/// The one hash that contributes to an id: MD5, then SHA-1, SHA-256, SHA-512, then the first.
fn one_hash(h: &Map<String, Value>) -> Option<Value> {
    for k in ["MD5", "SHA-1", "SHA-256", "SHA-512"] {
        if let Some(v) = h.get(k) {
            return Some(Value::Object(Map::from_iter([(k.to_string(), v.clone())])));
        }
    }
    h.iter().next().map(|(k, v)| Value::Object(Map::from_iter([(k.clone(), v.clone())])))
}

/// The deterministic id of an SCO with these properties, or `None` when its type has no
/// contributing properties or it has none of them (then a random v4 id is right).
pub fn deterministic_id(sco_type: &str, props: &Map<String, Value>) -> Option<String> {
    let names = contributing_properties(sco_type)?;
    let mut m = Map::new();
    for n in names {
        let Some(v) = props.get(*n) else { continue };
        let v = if *n == "hashes" { one_hash(v.as_object()?)? } else { v.clone() };
        m.insert((*n).to_string(), v);
    }
    if m.is_empty() {
        return None;
    }
    Some(format!("{sco_type}--{}", uuid_v5(&NAMESPACE, canonical(&Value::Object(m)).as_bytes())))
}

/// RFC 4122 §4.3 name-based UUID (SHA-1, version 5).
pub fn uuid_v5(namespace: &[u8; 16], name: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(namespace);
    h.update(name);
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x: String = b.iter().map(|v| format!("{v:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &x[..8], &x[8..12], &x[12..16], &x[16..20], &x[20..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn props(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn ids_match_python_stix2() {
        // Values computed with python-stix2 3.0 (`stix2.IPv4Address(value=…).id` and friends).
        assert_eq!(
            deterministic_id("ipv4-addr", &props(json!({"value": "198.51.100.3"}))).unwrap(),
            "ipv4-addr--28bb3599-77cd-5a82-a950-b5bc3caf07c4"
        );
        assert_eq!(
            deterministic_id("domain-name", &props(json!({"value": "example.com"}))).unwrap(),
            "domain-name--bedb4899-d24b-5401-bc86-8f6b4cc18ec7"
        );
        assert_eq!(
            deterministic_id(
                "file",
                &props(json!({"hashes": {"SHA-256": "aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f", "MD5": "cead3f77f6cda6ec00f57d76c9a6879f"}, "name": "x.exe"}))
            )
            .unwrap(),
            deterministic_id("file", &props(json!({"hashes": {"MD5": "cead3f77f6cda6ec00f57d76c9a6879f"}, "name": "x.exe"}))).unwrap(),
            "only the preferred hash contributes"
        );
        assert_eq!(
            deterministic_id(
                "file",
                &props(json!({"hashes": {"MD5": "cead3f77f6cda6ec00f57d76c9a6879f"}, "name": "x.exe"}))
            )
            .unwrap(),
            "file--0c282051-930d-5b27-a611-cb66f5cf5b2e"
        );
        assert_eq!(
            deterministic_id(
                "network-traffic",
                &props(json!({"src_ref": "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd", "dst_port": 23, "protocols": ["ipv4", "tcp"]}))
            )
            .unwrap(),
            "network-traffic--c8f974ec-c8d8-5c21-9d9d-c949d3142277"
        );
        assert_eq!(deterministic_id("process", &props(json!({"pid": 1}))), None);
        assert_eq!(deterministic_id("x-custom", &props(json!({"value": "a"}))), None);
    }
}
