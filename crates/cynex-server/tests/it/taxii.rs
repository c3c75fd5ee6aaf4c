//! TAXII 2.1 conformance (OASIS Standard, ../shared/reference/intel.md §2) on both engines:
//! media types, status codes, headers, filters, paging, versions, delete, status resources, and
//! the corpus STIX through POST and back.

use serde_json::{json, Value};

use crate::{corpus, Env, Req, TAXII};

fn indicator(i: usize, modified: &str, marking: &str) -> Value {
    json!({
        "type": "indicator", "spec_version": "2.1", "id": format!("indicator--a0000000-0000-4000-8000-{i:012}"),
        "created": "2026-11-01T00:00:00.000Z", "modified": modified, "name": format!("scanner {i}"),
        "pattern": format!("[ipv4-addr:value = '203.0.113.{}']", i % 250), "pattern_type": "stix",
        "valid_from": "2026-11-01T00:00:00Z", "object_marking_refs": [marking]
    })
}

const GREEN: &str = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb";

#[tokio::test]
async fn taxii_conformance_on_both_engines() {
    for env in Env::both().await {
        let name = env.name;
        let cid = env.collection_id("sightings").await;
        let base = format!("/taxii2/cynex/collections/{cid}");

        // Discovery and API root.
        let d = env.taxii_get(None, "/taxii2/").await;
        assert_eq!(d.status, 200, "{name}");
        assert_eq!(d.content_type(), Some(TAXII));
        let dj = d.json();
        assert!(dj["api_roots"][0].as_str().unwrap().ends_with("/taxii2/cynex/"), "{dj}");
        let root = env.taxii_get(Some("alice"), "/taxii2/cynex/").await.json();
        assert_eq!(root["versions"], json!([TAXII]));
        assert_eq!(root["max_content_length"], json!(256 * 1024));
        assert_eq!(env.taxii_get(Some("alice"), "/taxii2/nope/").await.status, 404);

        // 406 without the TAXII media type; error bodies are TAXII error resources too.
        for accept in ["application/json", "application/taxii+json;version=2.0", ""] {
            let r = env
                .call(
                    Req::get("/taxii2/cynex/collections/")
                        .header("Accept", accept)
                        .header("Authorization", &env.bearer("alice")),
                )
                .await;
            assert_eq!(r.status, 406, "{name}: Accept {accept:?}");
            assert_eq!(r.content_type(), Some(TAXII));
            assert_eq!(r.json()["http_status"], "406");
        }
        let bare = env.call(Req::get("/taxii2/").header("Accept", "application/taxii+json")).await;
        assert_eq!(bare.status, 200, "a bare TAXII media type means the latest version");

        // Collections: what the caller may read or write, nothing else.
        let cols = env.taxii_get(Some("alice"), "/taxii2/cynex/collections/").await.json();
        let aliases: Vec<&str> =
            cols["collections"].as_array().unwrap().iter().map(|c| c["alias"].as_str().unwrap()).collect();
        assert_eq!(aliases, ["public", "indicators", "member-alerts", "sightings"], "{name}");
        let anon = env.taxii_get(None, "/taxii2/cynex/collections/").await.json();
        assert_eq!(anon["collections"].as_array().unwrap().len(), 1, "anonymous: the public collection only");
        let one = env.taxii_get(Some("alice"), &format!("{base}/")).await.json();
        assert_eq!((one["can_read"].clone(), one["can_write"].clone()), (json!(true), json!(true)));
        assert_eq!(one["media_types"], json!(["application/stix+json;version=2.1"]));
        // Anonymous on a member collection: 401 with a challenge; a member on a collection it
        // cannot know: 404.
        let r = env.taxii_get(None, &format!("{base}/objects/")).await;
        assert_eq!(r.status, 401, "{name}");
        assert!(r.header("www-authenticate").unwrap().contains("Basic"));
        assert_eq!(
            env.taxii_get(Some("alice"), "/taxii2/cynex/collections/no-such-collection/objects/").await.status,
            404
        );
        let bad_creds = env
            .call(
                Req::get(&format!("{base}/objects/"))
                    .header("Accept", TAXII)
                    .header("Authorization", "Bearer cnx_0123456789abcdef_nope"),
            )
            .await;
        assert_eq!(bad_creds.status, 401);
        // Writing where only the operator writes: 403.
        let icid = env.collection_id("indicators").await;
        let w = env
            .call(
                Req::post(&format!("/taxii2/cynex/collections/{icid}/objects/"), b"{\"objects\":[]}".to_vec())
                    .header("Accept", TAXII)
                    .header("Content-Type", TAXII)
                    .header("Authorization", &env.bearer("alice")),
            )
            .await;
        assert_eq!(w.status, 403, "{name}");

        // POST: 415 for another content type, 413 past max_content_length, 422 for a non-envelope.
        let post = |ct: &str, body: Vec<u8>| {
            Req::post(&format!("{base}/objects/"), body)
                .header("Accept", TAXII)
                .header("Content-Type", ct)
                .header("Authorization", &env.bearer("alice"))
        };
        assert_eq!(env.call(post("application/json", b"{\"objects\":[]}".to_vec())).await.status, 415);
        let big = vec![b' '; 300 * 1024];
        let r = env.call(post(TAXII, big)).await;
        assert_eq!(r.status, 413, "{name}");
        assert_eq!(r.json()["http_status"], "413");
        assert_eq!(env.call(post(TAXII, b"{\"objects\": 5}".to_vec())).await.status, 422);
        assert_eq!(env.call(post(TAXII, b"{not json".to_vec())).await.status, 400);

        // A good envelope: 202 and a complete status whose counts add up, readable afterwards.
        let mut objs: Vec<Value> = (0..12).map(|i| indicator(i, "2026-11-01T00:00:00.000Z", GREEN)).collect();
        objs.push(json!({"type": "indicator", "id": "indicator--bad"}));
        let r = env.taxii_post("alice", &cid, objs).await;
        assert_eq!(r.status, 202, "{name}: {}", r.text());
        let s = r.json();
        assert_eq!(
            (
                s["status"].clone(),
                s["total_count"].clone(),
                s["success_count"].clone(),
                s["failure_count"].clone(),
                s["pending_count"].clone()
            ),
            (json!("complete"), json!(13), json!(12), json!(1), json!(0)),
            "{s}"
        );
        assert!(s["failures"][0]["message"].as_str().unwrap().contains("id"), "{s}");
        let sid = s["id"].as_str().unwrap();
        let again = env.taxii_get(Some("alice"), &format!("/taxii2/cynex/status/{sid}/")).await;
        assert_eq!(again.status, 200);
        assert_eq!(again.json()["success_count"], 12);
        assert_eq!(
            env.taxii_get(Some("gus"), &format!("/taxii2/cynex/status/{sid}/")).await.status,
            404,
            "another user's status"
        );
        // Posting the same again is not an error.
        let dup = env.taxii_post("alice", &cid, vec![indicator(0, "2026-11-01T00:00:00.000Z", GREEN)]).await.json();
        assert_eq!((dup["success_count"].clone(), dup["failure_count"].clone()), (json!(1), json!(0)));

        // Paging: `limit`, `more`, `next`, date headers, full pages, no repeats.
        let mut seen = Vec::new();
        let mut url = format!("{base}/objects/?limit=5&match[type]=indicator");
        let mut pages = 0;
        loop {
            let r = env.taxii_get(Some("gus"), &url).await;
            assert_eq!(r.status, 200, "{name}: {}", r.text());
            let e = r.json();
            let objects = e["objects"].as_array().cloned().unwrap_or_default();
            assert!(r.header("x-taxii-date-added-first").is_some() && r.header("x-taxii-date-added-last").is_some());
            seen.extend(objects.iter().map(|o| o["id"].as_str().unwrap().to_string()));
            pages += 1;
            if e["more"] == json!(true) {
                assert_eq!(objects.len(), 5, "full pages while more");
                url = format!("{base}/objects/?limit=5&match[type]=indicator&next={}", e["next"].as_str().unwrap());
            } else {
                break;
            }
        }
        assert_eq!((pages, seen.len()), (3, 12), "{name}");
        let mut u = seen.clone();
        u.sort();
        u.dedup();
        assert_eq!(u.len(), 12);
        // `next` must be reused with the same filters, by the same user.
        let first = env.taxii_get(Some("gus"), &format!("{base}/objects/?limit=5&match[type]=indicator")).await.json();
        let next = first["next"].as_str().unwrap();
        assert_eq!(
            env.taxii_get(Some("gus"), &format!("{base}/objects/?limit=5&match[type]=sighting&next={next}"))
                .await
                .status,
            400
        );
        assert_eq!(
            env.taxii_get(Some("ivy"), &format!("{base}/objects/?limit=5&match[type]=indicator&next={next}"))
                .await
                .status,
            400
        );
        assert_eq!(env.taxii_get(Some("gus"), &format!("{base}/objects/?next=garbage")).await.status, 400);

        // added_after is strictly after: continuing from a page's last date repeats nothing.
        let p1 = env.taxii_get(Some("gus"), &format!("{base}/manifest/?limit=4")).await;
        let last = p1.header("x-taxii-date-added-last").unwrap().to_string();
        assert!(
            last.ends_with('Z') && last.len() == "2026-11-01T00:00:00.000000Z".len(),
            "microsecond precision: {last}"
        );
        let m1: Vec<String> =
            p1.json()["objects"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_string()).collect();
        let p2 = env.taxii_get(Some("gus"), &format!("{base}/manifest/?added_after={last}&limit=100")).await.json();
        let m2: Vec<String> =
            p2["objects"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_string()).collect();
        assert_eq!(m1.len() + m2.len(), 12, "{name}");
        assert!(m1.iter().all(|x| !m2.contains(x)));
        let entry = &p1.json()["objects"][0];
        assert_eq!(entry["media_type"], "application/stix+json;version=2.1");
        assert_eq!(entry["version"], "2026-11-01T00:00:00.000Z");
        // Malformed filters are 400.
        for q in
            ["limit=0", "limit=abc", "added_after=yesterday", "match[version]=all,last", "match[type]=a&match[type]=b"]
        {
            assert_eq!(env.taxii_get(Some("gus"), &format!("{base}/objects/?{q}")).await.status, 400, "{name}: {q}");
        }

        // Versions: a new version of one object; last by default, all on request, the list.
        let id = "indicator--a0000000-0000-4000-8000-000000000003";
        env.taxii_post("alice", &cid, vec![indicator(3, "2026-11-05T00:00:00.000Z", GREEN)]).await;
        let got = env.taxii_get(Some("gus"), &format!("{base}/objects/{id}/")).await;
        assert_eq!(got.status, 200);
        assert!(got.header("x-taxii-date-added-first").is_some());
        let objs = got.json()["objects"].as_array().unwrap().clone();
        assert_eq!(objs.len(), 1);
        assert_eq!(objs[0]["modified"], "2026-11-05T00:00:00.000Z");
        assert_eq!(
            env.taxii_get(Some("gus"), &format!("{base}/objects/{id}/?match[version]=all")).await.json()["objects"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            env.taxii_get(Some("gus"), &format!("{base}/objects/{id}/?match[version]=first")).await.json()["objects"]
                [0]["modified"],
            "2026-11-01T00:00:00.000Z"
        );
        let vers = env.taxii_get(Some("gus"), &format!("{base}/objects/{id}/versions/")).await;
        assert!(vers.header("x-taxii-date-added-last").is_some());
        assert_eq!(vers.json()["versions"], json!(["2026-11-01T00:00:00.000Z", "2026-11-05T00:00:00.000Z"]));
        assert_eq!(
            env.taxii_get(Some("gus"), &format!("{base}/objects/indicator--ffffffff-0000-4000-8000-000000000000/"))
                .await
                .status,
            404
        );
        // Only the producer versions an object.
        let hijack = env.taxii_post("gus", &cid, vec![indicator(3, "2026-11-09T00:00:00.000Z", GREEN)]).await.json();
        assert_eq!(hijack["failure_count"], 1, "{hijack}");

        // Delete: 403 for a reader that is not the owner, then the owner's delete; afterwards
        // 404 and gone from the manifest.
        let del = |u: &str| {
            Req::delete(&format!("{base}/objects/{id}/"))
                .header("Accept", TAXII)
                .header("Authorization", &env.bearer(u))
        };
        assert_eq!(env.call(del("gus")).await.status, 403, "{name}");
        assert_eq!(env.call(del("alice")).await.status, 200, "{name}");
        assert_eq!(env.taxii_get(Some("gus"), &format!("{base}/objects/{id}/")).await.status, 404);
        let man = env.taxii_get(Some("gus"), &format!("{base}/manifest/")).await.json();
        assert!(man["objects"].as_array().unwrap().iter().all(|o| o["id"] != id));

        // HTTP Basic with the password, and with a token as the password (TAXII clients).
        let basic = env
            .call(
                Req::get(&format!("{base}/objects/?limit=1"))
                    .header("Accept", TAXII)
                    .header("Authorization", &Env::basic("gus", crate::PASSWORD)),
            )
            .await;
        assert_eq!(basic.status, 200);
        let bt = env
            .call(
                Req::get(&format!("{base}/objects/?limit=1"))
                    .header("Accept", TAXII)
                    .header("Authorization", &Env::basic("gus", &env.tokens["gus"])),
            )
            .await;
        assert_eq!(bt.status, 200);
        let stolen = env
            .call(
                Req::get(&format!("{base}/objects/?limit=1"))
                    .header("Accept", TAXII)
                    .header("Authorization", &Env::basic("ivy", &env.tokens["gus"])),
            )
            .await;
        assert_eq!(stolen.status, 401, "another user's token under one's own name");
        env.finish().await;
    }
}

fn stix_files(dir: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(corpus().join(dir)).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn corpus_stix_round_trips_and_invalid_is_refused() {
    let env = Env::new(false).await;
    let cid = env.collection_id("sightings").await;
    let mut total = 0;
    for f in stix_files("stix/examples").into_iter().chain(stix_files("stix/valid")).chain(
        stix_files("stix/tlp2")
            .into_iter()
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with("extension-definition")),
    ) {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let objs = v.get("objects").and_then(Value::as_array).cloned().unwrap_or_else(|| vec![v.clone()]);
        total += objs.len();
        let s = env.taxii_post("alice", &cid, objs.clone()).await.json();
        assert_eq!(s["failure_count"], 0, "{}: {s}", f.display());
        // What comes back is what went in, custom properties and all (official TLP marking
        // definitions are known to every reader and not stored).
        for o in objs.iter().filter(|o| !cynex_intel::tlp::is_official(o["id"].as_str().unwrap())) {
            let id = o["id"].as_str().unwrap();
            let r = env
                .taxii_get(Some("alice"), &format!("/taxii2/cynex/collections/{cid}/objects/{id}/?match[version]=all"))
                .await;
            assert_eq!(r.status, 200, "{}: {id}", f.display());
            let back = r.json()["objects"].as_array().unwrap().clone();
            assert!(back.contains(o), "{}: {id} did not round-trip", f.display());
        }
    }
    assert!(total > 100, "{total}");
    // The invalid examples: each refused with the reason; the warning-only one is valid STIX.
    let expect = [
        ("invalid_identity.json", Some("modified: required")),
        ("invalid_timestamp.json", Some("modified: must not be earlier than created")),
        ("identity_warning.json", None),
    ];
    for (file, want) in expect {
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(corpus().join("stix/invalid").join(file)).unwrap()).unwrap();
        let s = env.taxii_post("alice", &cid, vec![v]).await.json();
        match want {
            Some(msg) => {
                assert_eq!(s["failure_count"], 1, "{file}: {s}");
                assert!(s["failures"][0]["message"].as_str().unwrap().contains(msg), "{file}: {s}");
            }
            None => assert_eq!(s["failure_count"], 0, "{file}: {s}"),
        }
    }
    for file in ["invalid_braces.json", "invalid_comma.json"] {
        let body = std::fs::read(corpus().join("stix/invalid").join(file)).unwrap();
        let mut wrapped = b"{\"objects\": [".to_vec();
        wrapped.extend_from_slice(&body);
        wrapped.extend_from_slice(b"]}");
        let r = env
            .call(
                Req::post(&format!("/taxii2/cynex/collections/{cid}/objects/"), wrapped)
                    .header("Accept", TAXII)
                    .header("Content-Type", TAXII)
                    .header("Authorization", &env.bearer("alice")),
            )
            .await;
        assert_eq!(r.status, 400, "{file}");
        assert!(r.json()["description"].as_str().unwrap().contains("line"), "{file}: {}", r.text());
    }
    // A home-made TLP marking is refused; objects marked with it fall back to the collection's
    // default (AMBER), never to something wider.
    let fake = json!({"type": "marking-definition", "spec_version": "2.1", "id": "marking-definition--11111111-2222-4333-8444-555555555555",
        "created": "2022-10-01T00:00:00.000Z", "name": "TLP:CLEAR", "definition_type": "tlp", "definition": {"tlp": "white"}});
    let s = env.taxii_post("alice", &cid, vec![fake]).await.json();
    assert_eq!(s["failure_count"], 1, "{s}");
    assert!(s["failures"][0]["message"].as_str().unwrap().contains("not an official TLP"), "{s}");
    env.finish().await;
}
