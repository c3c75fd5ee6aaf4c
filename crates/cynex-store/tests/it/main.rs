//! The store's tests run against both engines: an SQLite file and a fresh PostgreSQL database
//! (`CYNEX_TEST_PG`, default the local server that `scripts/setup` installs and starts).

mod alerts;
mod auth;
mod intel;
mod orgs;

use cynex_store::Store;

pub(crate) struct TestStore {
    pub(crate) store: Store,
    pub(crate) name: &'static str,
    _dir: Option<tempfile::TempDir>,
    pg_db: Option<String>,
}

pub(crate) fn pg_admin_url() -> String {
    std::env::var("CYNEX_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh PostgreSQL database on the test server; its URL.
pub(crate) async fn fresh_pg_database() -> (String, String) {
    use sqlx::Connection;
    let admin = pg_admin_url();
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin} (run scripts/setup to install and start it): {e}"));
    let db = format!("cynex_t_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(&format!("CREATE DATABASE {db}")).execute(&mut conn).await.unwrap();
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap();
    (db.clone(), format!("{base}/{db}"))
}

async fn drop_pg_database(db: &str) {
    use sqlx::Connection;
    if let Ok(mut conn) = sqlx::PgConnection::connect(&pg_admin_url()).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).execute(&mut conn).await;
    }
}

/// Both engines, each empty.
pub(crate) async fn stores() -> Vec<TestStore> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open_in(dir.path()).await.unwrap();
    let (db, url) = fresh_pg_database().await;
    let pg = Store::open(&url).await.unwrap();
    vec![
        TestStore { store: sqlite, name: "sqlite", _dir: Some(dir), pg_db: None },
        TestStore { store: pg, name: "postgres", _dir: None, pg_db: Some(db) },
    ]
}

impl TestStore {
    pub(crate) async fn finish(self) {
        self.store.close().await;
        if let Some(db) = &self.pg_db {
            drop_pg_database(db).await;
        }
    }
}
