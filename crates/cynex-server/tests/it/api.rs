//! The REST API: sessions and CSRF, role checks, member confinement, the analyst's SQL being
//! read-only, the OpenAPI document matching the routes, health and metrics, and HTTP push.

use serde_json::{json, Value};

use crate::{corpus, Env, Req};

#[tokio::test]
async fn sessions_csrf_and_roles() {
    let env = Env::new(false).await;
    // Login: a cookie (HttpOnly, SameSite=Strict) and a CSRF token; wrong passwords are 401.
    let bad =
        env.call(Req::post("/api/v1/login", Vec::new()).json(&json!({"user": "alice", "password": "nope"}))).await;
    assert_eq!(bad.status, 401);
    assert_eq!(bad.json()["error"]["code"], "bad_credentials");
    let r = env
        .call(Req::post("/api/v1/login", Vec::new()).json(&json!({"user": "alice", "password": crate::PASSWORD})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let cookie = r.header("set-cookie").unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_string();
    let csrf = r.json()["csrf"].as_str().unwrap().to_string();
    let me = env.call(Req::get("/api/v1/me").header("Cookie", &session)).await.json();
    assert_eq!(
        (me["user"].clone(), me["org"].clone(), me["csrf"].clone()),
        (json!("alice"), json!("acme"), json!(csrf))
    );
    // A change by cookie needs the CSRF token; a forged request from another site has none.
    let add = |token: Option<&str>| {
        let mut q = Req::post("/api/v1/prefixes", Vec::new())
            .header("Cookie", &session)
            .json(&json!({"prefix": "192.0.2.0/24"}));
        if let Some(t) = token {
            q = q.header("X-CSRF-Token", t);
        }
        q
    };
    let forged = env.call(add(None)).await;
    assert_eq!(forged.status, 403);
    assert_eq!(forged.json()["error"]["code"], "csrf");
    assert_eq!(env.call(add(Some("wrong"))).await.status, 403);
    assert_eq!(env.call(add(Some(&csrf))).await.status, 201);
    // Logout ends the session.
    env.call(Req::post("/api/v1/logout", Vec::new()).header("Cookie", &session).header("X-CSRF-Token", &csrf)).await;
    assert_eq!(env.call(Req::get("/api/v1/me").header("Cookie", &session)).await.status, 401);

    // Roles: SQL is for operators; members get 403, anonymous 401; admins only add organisations.
    let q = json!({"sql": "SELECT 1 AS one"});
    assert_eq!(env.call(Req::post("/api/v1/query", Vec::new()).json(&q)).await.status, 401);
    assert_eq!(
        env.call(Req::post("/api/v1/query", Vec::new()).header("Authorization", &env.bearer("alice")).json(&q))
            .await
            .status,
        403
    );
    let ok =
        env.call(Req::post("/api/v1/query", Vec::new()).header("Authorization", &env.bearer("ana")).json(&q)).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json()["rows"], json!([["1"]]));
    for sql in [
        "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'",
        "COPY (SELECT 1) TO '/tmp/x.csv'",
        "SELECT 1; SELECT 2",
        "DROP TABLE packets",
    ] {
        let r = env
            .call(
                Req::post("/api/v1/query", Vec::new())
                    .header("Authorization", &env.bearer("ana"))
                    .json(&json!({"sql": sql})),
            )
            .await;
        assert_eq!(r.status, 400, "{sql}: {}", r.text());
    }
    let wrong = env
        .call(
            Req::post("/api/v1/query", Vec::new())
                .header("Authorization", &env.bearer("ana"))
                .json(&json!({"sql": "SELECT nope FROM packets"})),
        )
        .await;
    assert_eq!((wrong.status.as_u16(), wrong.json()["error"]["code"].clone()), (400, json!("bad_query")));
    let org = json!({"name": "hooli", "prefixes": ["198.51.100.0/24"]});
    assert_eq!(
        env.call(Req::post("/api/v1/orgs", Vec::new()).header("Authorization", &env.bearer("ana")).json(&org))
            .await
            .status,
        403
    );
    assert_eq!(
        env.call(Req::post("/api/v1/orgs", Vec::new()).header("Authorization", &env.bearer("root")).json(&org))
            .await
            .status,
        201
    );
    // Unknown fields and bad JSON: the one error shape, never a 500.
    let r = env
        .call(
            Req::post("/api/v1/orgs", Vec::new())
                .header("Authorization", &env.bearer("root"))
                .json(&json!({"name": "x", "colour": 1})),
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.status);
    assert!(r.json()["error"]["code"].is_string());
    env.finish().await;
}

#[tokio::test]
async fn members_are_confined_to_their_organisation() {
    let env = Env::new(false).await;
    let post = |user: &str, uri: &str, body: Value| {
        Req::post(uri, Vec::new()).header("Authorization", &env.bearer(user)).json(&body)
    };
    assert_eq!(env.call(post("alice", "/api/v1/prefixes", json!({"prefix": "192.0.2.0/24"}))).await.status, 201);
    // Naming another organisation does not help a member: it adds to its own.
    assert_eq!(
        env.call(post("gus", "/api/v1/prefixes", json!({"prefix": "198.51.100.0/24", "org": "acme"}))).await.status,
        201
    );
    let acme = env.api_get(Some("alice"), "/api/v1/prefixes").await.json();
    assert_eq!(acme["prefixes"].as_array().unwrap().len(), 1, "{acme}");
    let gus = env.api_get(Some("gus"), "/api/v1/prefixes?org=acme").await.json();
    assert_eq!(gus["prefixes"][0]["org"], "globex", "{gus}");
    // Removing another member's prefix: not found.
    let del =
        env.call(Req::delete("/api/v1/prefixes/acme/192.0.2.0/24").header("Authorization", &env.bearer("gus"))).await;
    assert_eq!(del.status, 404);
    assert_eq!(
        env.call(Req::delete("/api/v1/prefixes/acme/192.0.2.0/24").header("Authorization", &env.bearer("alice")))
            .await
            .status,
        204
    );
    // Watches likewise.
    let w = env.call(post("alice", "/api/v1/watches", json!({"spec": "port:23/tcp"}))).await.json();
    let wid = w["id"].as_str().unwrap();
    assert_eq!(
        env.call(Req::delete(&format!("/api/v1/watches/{wid}")).header("Authorization", &env.bearer("gus")))
            .await
            .status,
        404
    );
    assert_eq!(env.api_get(Some("gus"), "/api/v1/watches").await.json()["watches"], json!([]));
    assert_eq!(env.call(post("alice", "/api/v1/watches", json!({"spec": "colour:red"}))).await.status, 400);
    // Organisations: a member sees its own.
    let orgs = env.api_get(Some("gus"), "/api/v1/orgs").await.json();
    assert_eq!(orgs["orgs"].as_array().unwrap().len(), 1);
    assert_eq!(env.api_get(Some("ana"), "/api/v1/orgs").await.json()["orgs"].as_array().unwrap().len(), 4);
    env.finish().await;
}

#[tokio::test]
async fn openapi_describes_every_route_and_health_and_metrics_answer() {
    let env = Env::new(false).await;
    let spec = env.api_get(None, "/api/v1/openapi.json").await.json();
    assert_eq!(spec["openapi"], "3.0.3");
    let paths: Vec<String> = spec["paths"].as_object().unwrap().keys().cloned().collect();
    // Every route of api::router, in the document's path syntax.
    let src = include_str!("../../src/api/mod.rs");
    let routes: Vec<String> = src
        .lines()
        .filter_map(|l| l.trim().strip_prefix(".route(\""))
        .map(|r| r.split('"').next().unwrap().to_string())
        .filter(|r| r != "/api/v1/openapi.json")
        .collect();
    assert!(routes.len() > 20, "{routes:?}");
    for r in &routes {
        assert!(paths.contains(r), "route {r} is not in the OpenAPI document");
    }
    for p in &paths {
        assert!(routes.contains(p), "the document describes {p}, which is no route");
    }
    assert_eq!(env.api_get(None, "/healthz").await.status, 200);
    assert_eq!(env.api_get(None, "/readyz").await.status, 200);
    let m = env.api_get(None, "/metrics").await;
    assert!(m.text().contains("# TYPE cynex_http_requests_total counter"), "{}", m.text());
    // The UI: embedded, with a strict CSP, and no external resource anywhere.
    let ui = env.api_get(None, "/").await;
    assert!(ui.header("content-security-policy").unwrap().contains("default-src 'self'"));
    for asset in ["/", "/ui/app.js", "/ui/charts.js", "/ui/app.css"] {
        // (The SVG namespace is a name, not a resource.)
        let t = env.api_get(None, asset).await.text().replace("http://www.w3.org/2000/svg", "");
        assert!(!t.contains("http://") && !t.contains("https://"), "{asset} refers to an external resource");
    }
    env.finish().await;
}

#[tokio::test]
async fn http_push_ingests_quarantines_and_refuses() {
    let env = Env::new(false).await;
    let push = |user: &str, fmt: &str, sensor: &str, body: Vec<u8>| {
        Req::post(&format!("/api/v1/ingest/{fmt}?sensor={sensor}"), body).header("Authorization", &env.bearer(user))
    };
    // A real EVE file from the corpus plus two broken lines.
    let mut body = std::fs::read(corpus().join("eve/tenzir-flow.jsonl")).unwrap();
    if !body.ends_with(b"\n") {
        body.push(b'\n');
    }
    body.extend_from_slice(b"{\"timestamp\": \"2026-11-01T00:00:00Z\", \"event_type\": \"alert\"\n");
    body.extend_from_slice(b"not json at all\n");
    let r = env.call(push("alice", "eve", "ids-1", body.clone())).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["status"], "ingested");
    assert_eq!(j["organisation"], "acme", "the organisation comes from the token");
    let (read, written, quarantined) =
        (j["read"].as_u64().unwrap(), j["written"].as_u64().unwrap(), j["quarantined"].as_u64().unwrap());
    assert_eq!(read, written + quarantined);
    assert!(quarantined >= 2 && written >= 1, "{j}");
    // The same body again: nothing new. The same body from another member: its own input.
    assert_eq!(env.call(push("alice", "eve", "ids-1", body.clone())).await.json()["status"], "already_ingested");
    assert_eq!(env.call(push("gus", "eve", "ids-1", body.clone())).await.json()["status"], "ingested");
    let rows = env
        .call(Req::post("/api/v1/query", Vec::new()).header("Authorization", &env.bearer("ana")).json(&json!({"sql":
            "SELECT organisation, count(*) AS n FROM events GROUP BY organisation ORDER BY organisation"})))
        .await
        .json();
    assert_eq!(rows["rows"], json!([["acme", written.to_string()], ["globex", written.to_string()]]), "{rows}");
    let q = env
        .call(Req::post("/api/v1/query", Vec::new()).header("Authorization", &env.bearer("ana")).json(&json!({"sql":
            "SELECT count(*) FROM quarantine WHERE sensor = 'ids-1'"})))
        .await
        .json();
    assert_eq!(q["rows"], json!([[(2 * quarantined).to_string()]]));
    // Refusals: no token, bad format or sensor, too large, empty.
    assert_eq!(env.call(Req::post("/api/v1/ingest/eve?sensor=x", body.clone())).await.status, 401);
    assert_eq!(env.call(push("alice", "syslog", "ids-1", body.clone())).await.status, 400);
    assert_eq!(env.call(push("alice", "eve", "../etc", body.clone())).await.status, 400);
    assert_eq!(env.call(push("alice", "eve", "ids-1", vec![b'x'; 600 * 1024])).await.status, 413);
    assert_eq!(env.call(push("alice", "eve", "ids-1", Vec::new())).await.status, 400);
    // gzip bodies are read as such.
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"{\"timestamp\": \"2026-11-02T00:00:00.000000+0000\", \"event_type\": \"dns\", \"src_ip\": \"10.0.0.1\", \"dest_ip\": \"10.0.0.2\", \"dns\": {\"type\": \"query\", \"rrname\": \"example.com\"}}\n").unwrap();
    let r = env.call(push("alice", "auto", "ids-2", gz.finish().unwrap())).await.json();
    assert_eq!((r["written"].clone(), r["quarantined"].clone()), (json!(1), json!(0)), "{r}");
    let m = env.api_get(None, "/metrics").await.text();
    assert!(m.contains("cynex_ingest_records_total{outcome=\"quarantined\"}"), "{m}");
    env.finish().await;
}
