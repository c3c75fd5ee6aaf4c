//! The denial matrix: every TLP level × every kind of viewer × every endpoint that can show an
//! object or betray that it exists (TAXII objects, one object, manifest, versions, the REST
//! listing, counts, exports, correlation, relationships pointing at it, sightings of it), on
//! both engines. What must be hidden is hidden, and what may be seen is seen.

use serde_json::{json, Value};

use crate::{Env, Req};

const TLP_IDS: [(&str, &str); 5] = [
    ("clear", "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"),
    ("green", "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"),
    ("amber", "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"),
    ("amber+strict", "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"),
    ("red", "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"),
];

fn ind_id(block: u8, i: usize) -> String {
    format!("indicator--d{block}000000-0000-4000-8000-{i:012}")
}

fn indicator(block: u8, i: usize, tlp_id: &str, extra: Value) -> Value {
    let mut o = json!({
        "type": "indicator", "spec_version": "2.1", "id": ind_id(block, i), "created": "2026-11-01T00:00:00.000Z",
        "modified": "2026-11-01T00:00:00.000Z", "name": format!("tlp test {block}/{i}"),
        "pattern": format!("[ipv4-addr:value = '203.0.{block}.{}']", 10 + i), "pattern_type": "stix",
        "valid_from": "2026-11-01T00:00:00Z", "object_marking_refs": [tlp_id]
    });
    if let (Some(m), Value::Object(e)) = (o.as_object_mut(), extra) {
        m.extend(e);
    }
    o
}

/// Everything one viewer can learn about one object, endpoint by endpoint.
async fn observe(
    env: &Env,
    user: Option<&str>,
    coll_id: &str,
    alias: &str,
    id: &str,
    ip: &str,
) -> Vec<(&'static str, bool)> {
    let base = format!("/taxii2/cynex/collections/{coll_id}");
    let listed = |r: &crate::Resp, key: &str| -> bool {
        r.status == 200 && r.json()[key].as_array().is_some_and(|a| a.iter().any(|o| o["id"] == id))
    };
    let objects = env.taxii_get(user, &format!("{base}/objects/?limit=1000")).await;
    let manifest = env.taxii_get(user, &format!("{base}/manifest/?limit=1000")).await;
    let one = env.taxii_get(user, &format!("{base}/objects/{id}/")).await;
    let versions = env.taxii_get(user, &format!("{base}/objects/{id}/versions/")).await;
    let rest = env.api_get(user, &format!("/api/v1/intel/objects?collection={alias}&limit=500")).await;
    let rest_seen =
        rest.status == 200 && rest.json()["objects"].as_array().unwrap().iter().any(|o| o["object"]["id"] == id);
    let export = env.api_get(user, &format!("/api/v1/intel/export?format=plain&collection={alias}")).await;
    let export_seen = export.status == 200 && export.text().lines().any(|l| l == ip);
    let corr = env.api_get(user, &format!("/api/v1/intel/correlate?q={ip}")).await;
    let corr_seen = corr.status == 200 && corr.json()["intel"].as_array().unwrap().iter().any(|h| h["id"] == id);
    vec![
        ("taxii objects", listed(&objects, "objects")),
        ("taxii manifest", listed(&manifest, "objects")),
        ("taxii get object", one.status == 200),
        ("taxii versions", versions.status == 200),
        ("rest objects", rest_seen),
        ("rest export", export_seen),
        ("rest correlate", corr_seen),
    ]
}

fn check(env: &Env, who: &str, tlp: &str, seen: Vec<(&str, bool)>, want: bool, export_want: bool) {
    for (endpoint, s) in seen {
        let w = if endpoint == "rest export" { export_want } else { want };
        assert_eq!(s, w, "{}: {who} / TLP:{tlp} / {endpoint}: seen {s}, expected {w}", env.name);
    }
}

#[tokio::test]
async fn denial_matrix_on_both_engines() {
    for env in Env::both().await {
        let name = env.name;
        let sightings = env.collection_id("sightings").await;
        let public = env.collection_id("public").await;

        // Block 1: produced by alice (acme) in a member collection. AMBER names globex, RED names gus.
        let mut objs = Vec::new();
        for (i, (tlp, mid)) in TLP_IDS.iter().enumerate() {
            let extra = match *tlp {
                "amber" => json!({"x_cynex_share_with": ["globex"]}),
                "red" => json!({"x_cynex_share_with_users": ["gus"]}),
                _ => json!({}),
            };
            objs.push(indicator(1, i, mid, extra));
        }
        // A GREEN identity and a GREEN relationship from it to each indicator.
        let ident = "identity--d1000000-0000-4000-8000-00000000aaaa";
        objs.push(json!({"type": "identity", "spec_version": "2.1", "id": ident, "created": "2026-11-01T00:00:00.000Z",
            "modified": "2026-11-01T00:00:00.000Z", "name": "acme SOC", "identity_class": "organization", "object_marking_refs": [TLP_IDS[1].1]}));
        for i in 0..5 {
            objs.push(json!({"type": "relationship", "spec_version": "2.1", "id": format!("relationship--d1000000-0000-4000-8000-{i:012}"),
                "created": "2026-11-01T00:00:00.000Z", "modified": "2026-11-01T00:00:00.000Z", "relationship_type": "related-to",
                "source_ref": ident, "target_ref": ind_id(1, i), "object_marking_refs": [TLP_IDS[1].1]}));
        }
        let s = env.taxii_post("alice", &sightings, objs).await.json();
        assert_eq!(s["failure_count"], 0, "{name}: {s}");

        // (viewer, sees [clear, green, amber, amber+strict, red])
        let matrix: [(&str, [bool; 5]); 6] = [
            ("alice", [true, true, true, true, true]), // the producer, named on RED as poster
            ("aaron", [true, true, true, true, false]), // same organisation, not named on RED
            ("gus", [true, true, true, false, true]),  // named organisation (AMBER) and user (RED)
            ("ivy", [true, true, false, false, false]), // another member
            ("ana", [true, true, false, false, false]), // the operator's analyst: TLP binds it too
            ("root", [true, true, false, false, false]), // the operator's admin
        ];
        for (who, sees) in matrix {
            for (i, (tlp, _)) in TLP_IDS.iter().enumerate() {
                let id = ind_id(1, i);
                let ip = format!("203.0.1.{}", 10 + i);
                let seen = observe(&env, Some(who), &sightings, "sightings", &id, &ip).await;
                // Exports stop at AMBER+STRICT by default (RED is not for machine distribution).
                check(&env, who, tlp, seen, sees[i], sees[i] && *tlp != "red");
                // The relationship to it is visible exactly when it is.
                let rel = format!("relationship--d1000000-0000-4000-8000-{i:012}");
                let r =
                    env.taxii_get(Some(who), &format!("/taxii2/cynex/collections/{sightings}/objects/{rel}/")).await;
                assert_eq!(r.status == 200, sees[i], "{name}: {who} relationship to TLP:{tlp}");
            }
            // Counts are taken after filtering: 1 identity + visible indicators + visible relationships.
            let n = 1 + 2 * sees.iter().filter(|x| **x).count();
            let cols = env.api_get(Some(who), "/api/v1/intel/collections").await.json();
            let c = cols["collections"].as_array().unwrap().iter().find(|c| c["alias"] == "sightings").unwrap().clone();
            assert_eq!(c["visible_objects"], json!(n), "{name}: {who} count");
            // And so are TAXII pages: `more` is false once the visible objects are all listed.
            let page = env
                .taxii_get(Some(who), &format!("/taxii2/cynex/collections/{sightings}/objects/?limit={n}"))
                .await
                .json();
            assert_eq!(page["objects"].as_array().map_or(0, |a| a.len()), n, "{name}: {who} page");
            assert_eq!(page["more"], json!(false), "{name}: {who}: more must not betray hidden objects");
        }

        // Anonymous: the public collection, where the nexus put one object of each TLP; only
        // CLEAR shows, and nothing of the member collection.
        let sys = env.st.hub.system_principal().await.unwrap();
        let pcoll = env.st.store.collection("public").await.unwrap();
        let pub_objs: Vec<Value> =
            TLP_IDS.iter().enumerate().map(|(i, (_, mid))| indicator(2, i, mid, json!({}))).collect();
        let res = env.st.hub.submit(&sys, &pcoll, pub_objs).await.unwrap();
        assert!(res.iter().all(|r| r.ok()), "{res:?}");
        for (i, (tlp, _)) in TLP_IDS.iter().enumerate() {
            let id = ind_id(2, i);
            let base = format!("/taxii2/cynex/collections/{public}");
            let one = env.taxii_get(None, &format!("{base}/objects/{id}/")).await;
            assert_eq!(one.status == 200, i == 0, "{name}: anonymous TLP:{tlp}");
            let list = env.taxii_get(None, &format!("{base}/objects/")).await.json();
            let listed = list["objects"].as_array().is_some_and(|a| a.iter().any(|o| o["id"] == id));
            assert_eq!(listed, i == 0, "{name}: anonymous list TLP:{tlp}");
            let corr = env.api_get(None, &format!("/api/v1/intel/correlate?q=203.0.2.{}", 10 + i)).await.json();
            assert_eq!(
                corr["intel"].as_array().unwrap().len(),
                usize::from(i == 0),
                "{name}: anonymous correlate TLP:{tlp}"
            );
        }
        for i in 0..5 {
            assert_eq!(
                env.taxii_get(None, &format!("/taxii2/cynex/collections/{sightings}/objects/{}/", ind_id(1, i)))
                    .await
                    .status,
                401
            );
        }

        // A sighting by ivy (initech) of acme's GREEN indicator, without a TLP marking: AMBER,
        // shared with the indicator's producer — acme sees it, nobody else but ivy.
        let sighting = json!({"type": "sighting", "spec_version": "2.1", "id": "sighting--d3000000-0000-4000-8000-000000000001",
            "created": "2026-11-02T00:00:00.000Z", "modified": "2026-11-02T00:00:00.000Z", "sighting_of_ref": ind_id(1, 1), "count": 3});
        let s = env.taxii_post("ivy", &sightings, vec![sighting]).await.json();
        assert_eq!(s["failure_count"], 0, "{s}");
        for (who, sees) in [("ivy", true), ("alice", true), ("aaron", true), ("gus", false), ("ana", false)] {
            let r = env
                .taxii_get(
                    Some(who),
                    &format!(
                        "/taxii2/cynex/collections/{sightings}/objects/sighting--d3000000-0000-4000-8000-000000000001/"
                    ),
                )
                .await;
            assert_eq!(r.status == 200, sees, "{name}: {who} sighting");
        }
        // A sighting of an object the viewer cannot see is hidden with it: ivy's sighting of
        // acme's AMBER+STRICT indicator (she guessed its id) reaches nobody but ivy.
        let blind = json!({"type": "sighting", "spec_version": "2.1", "id": "sighting--d3000000-0000-4000-8000-000000000002",
            "created": "2026-11-02T00:00:00.000Z", "modified": "2026-11-02T00:00:00.000Z", "sighting_of_ref": ind_id(1, 3),
            "object_marking_refs": [TLP_IDS[1].1]});
        env.taxii_post("ivy", &sightings, vec![blind]).await;
        for (who, sees) in [("ivy", false), ("gus", false), ("alice", true)] {
            let r = env
                .taxii_get(
                    Some(who),
                    &format!(
                        "/taxii2/cynex/collections/{sightings}/objects/sighting--d3000000-0000-4000-8000-000000000002/"
                    ),
                )
                .await;
            assert_eq!(r.status == 200, sees, "{name}: {who} sighting of a hidden object");
        }

        // Nobody learns another member's alert exists, whatever the endpoint.
        let acme = env.st.store.org("acme").await.unwrap();
        let mut tx = env.st.store.begin_alerts().await.unwrap();
        let alert = cynex_store::Alert {
            id: "01900000-0000-7000-8000-000000000001".into(),
            org_id: acme.id.clone(),
            kind: "infected-host".into(),
            subject: "192.0.2.7".into(),
            watch_id: None,
            first_seen: 1,
            last_seen: 2,
            findings: 1,
            packets: 10,
            summary: "x".into(),
            evidence: json!({}),
            status: "open".into(),
            created: 1,
            updated: 1,
        };
        tx.save_alert(&alert).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(env.api_get(Some("alice"), &format!("/api/v1/alerts/{}", alert.id)).await.status, 200);
        assert_eq!(env.api_get(Some("ivy"), &format!("/api/v1/alerts/{}", alert.id)).await.status, 404, "{name}");
        let ack = env
            .call(
                Req::post(&format!("/api/v1/alerts/{}/ack", alert.id), Vec::new())
                    .header("Authorization", &env.bearer("ivy")),
            )
            .await;
        assert_eq!(ack.status, 404, "{name}");
        let list = env.api_get(Some("ivy"), "/api/v1/alerts").await.json();
        assert!(list["alerts"].as_array().unwrap().is_empty(), "{name}");
        let list = env.api_get(Some("ivy"), &format!("/api/v1/alerts?org={}", acme.name)).await.json();
        assert!(list["alerts"].as_array().unwrap().is_empty(), "{name}: a member cannot pick another organisation");
        assert_eq!(
            env.api_get(Some("ana"), &format!("/api/v1/alerts/{}", alert.id)).await.status,
            200,
            "operators see every member's alerts"
        );
        env.finish().await;
    }
}
