//! TLP as STIX markings: the official TLP 2.0 marking definitions (OASIS extension
//! `extension-definition--60a3c5c5-…`, objects in `oasis-open/cti-stix-common-objects`), the TLP
//! 1.0 ones predefined by STIX 2.1 §7.2.1.4 mapped to their 2.0 levels (WHITE → CLEAR, AMBER →
//! AMBER), and the rule that no other marking definition may call itself TLP.
//!
//! Ids and names from ../shared/reference/intel.md §3 ("TLP marking-definition ids").

use cynex_store::Tlp;
use serde_json::{json, Value};

use crate::stix::Object;

pub const TLP2_EXTENSION: &str = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";

/// (level, TLP 2.0 id, name, `tlp_2_0` value).
const TLP2: [(Tlp, &str, &str, &str); 5] = [
    (Tlp::Clear, "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487", "TLP:CLEAR", "clear"),
    (Tlp::Green, "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb", "TLP:GREEN", "green"),
    (Tlp::Amber, "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421", "TLP:AMBER", "amber"),
    (Tlp::AmberStrict, "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003", "TLP:AMBER+STRICT", "amber+strict"),
    (Tlp::Red, "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1", "TLP:RED", "red"),
];

/// (level, TLP 1.0 id, `definition.tlp` value).
const TLP1: [(Tlp, &str, &str); 4] = [
    (Tlp::Clear, "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9", "white"),
    (Tlp::Green, "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da", "green"),
    (Tlp::Amber, "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82", "amber"),
    (Tlp::Red, "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed", "red"),
];

/// The level an official TLP marking-definition id stands for (either version).
pub fn level_of(marking_id: &str) -> Option<Tlp> {
    TLP2.iter()
        .find(|(_, id, _, _)| *id == marking_id)
        .map(|t| t.0)
        .or_else(|| TLP1.iter().find(|(_, id, _)| *id == marking_id).map(|t| t.0))
}

/// The TLP 2.0 marking-definition id of a level.
pub fn marking_id(level: Tlp) -> &'static str {
    TLP2.iter().find(|t| t.0 == level).map(|t| t.1).expect("every level has a TLP 2.0 id")
}

/// The official TLP 2.0 marking-definition object of a level.
pub fn marking_definition(level: Tlp) -> Value {
    let (_, id, name, v) = TLP2.iter().find(|t| t.0 == level).expect("every level has a TLP 2.0 id");
    json!({
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": id,
        "created": "2022-10-01T00:00:00.000Z",
        "name": name,
        "extensions": { TLP2_EXTENSION: { "extension_type": "property-extension", "tlp_2_0": v } }
    })
}

/// The most restrictive TLP among an object's markings (object and granular), if it has any.
pub fn effective(o: &Object) -> Option<Tlp> {
    o.marking_refs().into_iter().filter_map(level_of).max()
}

/// Check a marking definition before it is accepted: an official TLP id must carry exactly the
/// official content, and no other definition may present itself as TLP (by `definition_type`,
/// the TLP 2.0 extension, or a `TLP:` name). Statement and other markings pass.
pub fn check_marking_definition(o: &Object) -> Result<(), String> {
    let m = o.map();
    let id = o.id();
    let ext_level =
        m.get("extensions").and_then(|e| e.get(TLP2_EXTENSION)).and_then(|x| x.get("tlp_2_0")).and_then(Value::as_str);
    let def_type = o.str("definition_type");
    let v1_level = m.get("definition").and_then(|d| d.get("tlp")).and_then(Value::as_str);
    let looks_tlp = def_type == Some("tlp")
        || m.get("extensions").is_some_and(|e| e.get(TLP2_EXTENSION).is_some())
        || o.str("name").is_some_and(|n| n.trim().to_ascii_uppercase().starts_with("TLP"));
    if let Some((_, _, name, v)) = TLP2.iter().find(|t| t.1 == id) {
        if ext_level != Some(v) || o.str("name") != Some(name) || def_type.is_some() {
            return Err(format!("{id} is the TLP 2.0 {name} marking: its content must be the official definition"));
        }
        return Ok(());
    }
    if let Some((_, _, v)) = TLP1.iter().find(|t| t.1 == id) {
        if def_type != Some("tlp") || v1_level != Some(v) {
            return Err(format!("{id} is the TLP 1.0 {v} marking: its content must be the official definition"));
        }
        return Ok(());
    }
    if looks_tlp {
        return Err(format!(
            "{id} presents itself as TLP but is not an official TLP marking definition; use the TLP 2.0 ids \
             (e.g. {} for TLP:GREEN)",
            marking_id(Tlp::Green)
        ));
    }
    Ok(())
}

/// Whether `id` names one of the official TLP marking definitions (which every reader knows and
/// the hub therefore never stores).
pub fn is_official(id: &str) -> bool {
    level_of(id).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Object {
        Object::new(v).unwrap()
    }

    #[test]
    fn official_definitions_pass_home_made_ones_do_not() {
        for l in Tlp::ALL {
            let d = obj(marking_definition(l));
            check_marking_definition(&d).unwrap();
            assert_eq!(level_of(d.id()), Some(l));
        }
        let fake = obj(json!({"type": "marking-definition", "spec_version": "2.1",
            "id": "marking-definition--11111111-2222-4333-8444-555555555555", "created": "2022-10-01T00:00:00.000Z",
            "name": "TLP:GREEN", "definition_type": "statement", "definition": {"statement": "tlp green"}}));
        assert!(check_marking_definition(&fake).unwrap_err().contains("presents itself as TLP"));
        let altered = {
            let mut v = marking_definition(Tlp::Red);
            v["extensions"][TLP2_EXTENSION]["tlp_2_0"] = json!("green");
            obj(v)
        };
        assert!(check_marking_definition(&altered).is_err());
        let statement = obj(json!({"type": "marking-definition", "spec_version": "2.1",
            "id": "marking-definition--d81f86b9-975b-4c0b-875e-810c5ad45a4f", "created": "2017-04-14T13:07:49.812Z",
            "definition_type": "statement", "definition": {"statement": "Copyright (c) Stark Industries 2017."}}));
        check_marking_definition(&statement).unwrap();
        assert_eq!(level_of("marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"), Some(Tlp::Clear));
        assert_eq!(level_of("marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"), Some(Tlp::Amber));
    }
}
