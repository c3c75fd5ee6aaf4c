//! The service in-process (`router(state)` driven with `tower::ServiceExt::oneshot`), against an
//! SQLite file and a fresh PostgreSQL database: TAXII 2.1 conformance, the TLP denial matrix, the
//! REST API and its access checks, HTTP push.

mod api;
mod denial;
mod taxii;

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use base64::Engine;
use cynex_server::{AppState, ServerConfig};
use cynex_store::{OrgKind, Role, Store};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub(crate) const TAXII: &str = "application/taxii+json;version=2.1";

pub(crate) fn pg_admin_url() -> String {
    std::env::var("CYNEX_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh PostgreSQL database on the test server: (name, URL).
pub(crate) async fn fresh_pg() -> (String, String) {
    use sqlx::Connection;
    let admin = pg_admin_url();
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin} (run scripts/setup to install and start it): {e}"));
    let db = format!("cynex_s_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(&format!("CREATE DATABASE {db}")).execute(&mut conn).await.unwrap();
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap();
    (db.clone(), format!("{base}/{db}"))
}

pub(crate) async fn drop_pg(db: &str) {
    use sqlx::Connection;
    if let Ok(mut conn) = sqlx::PgConnection::connect(&pg_admin_url()).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).execute(&mut conn).await;
    }
}

/// One service over one engine, with the nexus, three members and a user of each.
pub(crate) struct Env {
    pub(crate) name: &'static str,
    pub(crate) st: AppState,
    pub(crate) app: Router,
    _dir: tempfile::TempDir,
    pg: Option<String>,
    /// Bearer tokens by user name.
    pub(crate) tokens: std::collections::HashMap<String, String>,
}

pub(crate) const PASSWORD: &str = "test-password-123";

impl Env {
    pub(crate) async fn new(postgres: bool) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let (store, pg, name) = if postgres {
            let (db, url) = fresh_pg().await;
            (Store::open(&url).await.unwrap(), Some(db), "postgres")
        } else {
            (Store::open_in(dir.path()).await.unwrap(), None, "sqlite")
        };
        store.add_org_of_kind("nexus", OrgKind::Operator).await.unwrap();
        for m in ["acme", "globex", "initech"] {
            store.add_org(m).await.unwrap();
        }
        let mut tokens = std::collections::HashMap::new();
        for (u, org, role) in [
            ("root", "nexus", Role::Admin),
            ("ana", "nexus", Role::Analyst),
            ("alice", "acme", Role::Member),
            ("aaron", "acme", Role::Member),
            ("gus", "globex", Role::Member),
            ("ivy", "initech", Role::Member),
        ] {
            store.add_user(u, org, role, Some(PASSWORD)).await.unwrap();
            tokens.insert(u.to_string(), store.create_token(u, "test", None).await.unwrap().secret);
        }
        let mut cfg = ServerConfig::new(dir.path().to_path_buf());
        cfg.taxii.max_content_length = 256 * 1024;
        cfg.taxii.page_default = 5;
        cfg.ingest_max_bytes = 512 * 1024;
        let st = AppState::new(store, cfg).unwrap();
        st.ready.store(true, std::sync::atomic::Ordering::Relaxed);
        cynex_intel::publish::ensure_collections(&st.hub).await.unwrap();
        let app = cynex_server::router(st.clone());
        Env { name, st, app, _dir: dir, pg, tokens }
    }

    pub(crate) async fn both() -> Vec<Env> {
        vec![Env::new(false).await, Env::new(true).await]
    }

    pub(crate) async fn finish(self) {
        self.st.store.close().await;
        if let Some(db) = &self.pg {
            drop_pg(db).await;
        }
    }

    pub(crate) fn bearer(&self, user: &str) -> String {
        format!("Bearer {}", self.tokens[user])
    }

    pub(crate) fn basic(user: &str, secret: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}")))
    }

    pub(crate) async fn call(&self, r: Req) -> Resp {
        let mut b = Request::builder().method(r.method).uri(&r.uri);
        for (k, v) in &r.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        let resp = self.app.clone().oneshot(b.body(Body::from(r.body)).unwrap()).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
        Resp { status, headers, body: bytes }
    }

    /// GET a TAXII URL as `user` (None: anonymous).
    pub(crate) async fn taxii_get(&self, user: Option<&str>, uri: &str) -> Resp {
        let mut r = Req::get(uri).header("Accept", TAXII);
        if let Some(u) = user {
            r = r.header("Authorization", &self.bearer(u));
        }
        self.call(r).await
    }

    pub(crate) async fn api_get(&self, user: Option<&str>, uri: &str) -> Resp {
        let mut r = Req::get(uri);
        if let Some(u) = user {
            r = r.header("Authorization", &self.bearer(u));
        }
        self.call(r).await
    }

    /// POST an envelope to a collection as `user`; the status resource.
    pub(crate) async fn taxii_post(&self, user: &str, collection: &str, objects: Vec<Value>) -> Resp {
        let body = serde_json::json!({ "objects": objects }).to_string();
        self.call(
            Req::post(&format!("/taxii2/cynex/collections/{collection}/objects/"), body.into_bytes())
                .header("Accept", TAXII)
                .header("Content-Type", TAXII)
                .header("Authorization", &self.bearer(user)),
        )
        .await
    }

    pub(crate) async fn collection_id(&self, alias: &str) -> String {
        self.st.store.collection(alias).await.unwrap().id
    }
}

pub(crate) struct Req {
    method: Method,
    uri: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    pub(crate) fn get(uri: &str) -> Req {
        Req { method: Method::GET, uri: uri.into(), headers: Vec::new(), body: Vec::new() }
    }

    pub(crate) fn post(uri: &str, body: Vec<u8>) -> Req {
        Req { method: Method::POST, uri: uri.into(), headers: Vec::new(), body }
    }

    pub(crate) fn delete(uri: &str) -> Req {
        Req { method: Method::DELETE, uri: uri.into(), headers: Vec::new(), body: Vec::new() }
    }

    pub(crate) fn header(mut self, k: &str, v: &str) -> Req {
        self.headers.push((k.into(), v.into()));
        self
    }

    pub(crate) fn json(self, v: &Value) -> Req {
        let mut r = self.header("Content-Type", "application/json");
        r.body = v.to_string().into_bytes();
        r
    }
}

#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Resp {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    pub(crate) fn header(&self, k: &str) -> Option<&str> {
        self.headers.get(k).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn content_type(&self) -> Option<&str> {
        self.header(header::CONTENT_TYPE.as_str())
    }
}

pub(crate) fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
}
