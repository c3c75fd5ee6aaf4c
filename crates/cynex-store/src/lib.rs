//! The nexus's relational metadata: organisations and their address space, users, API tokens and
//! sessions, watches, member alerts and webhook deliveries, and the intelligence store (STIX object
//! versions in TAXII collections, with the TLP access rule applied in the queries themselves).
//!
//! One SQL dialect for two engines through `sqlx::Any`: an SQLite file by default (`cynex.db` in the
//! data directory, nothing to install) and PostgreSQL when a `postgres://` URL is configured. Only the
//! portable subset is used (TEXT/BIGINT columns, `$n` parameters, `ON CONFLICT`), ids are generated
//! here (UUIDv7), times are microseconds since the epoch, and the test suite runs against both.
//!
//! Must not: read or write the lake, or speak HTTP; the analysis decides what an alert is and the
//! delivery code decides how it is sent — this crate only keeps them, transactionally.

mod alert;
mod auth;
mod intel;
mod org;
pub mod secret;
mod watch;

use std::path::Path;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

pub use alert::{Alert, AlertFilter, AlertTx, Delivery, DeliveryOutcome};
pub use auth::{generate_password, Caller, NewToken, Principal, Role, Session, Token, User};
pub use intel::{
    uuid_v4, AddOutcome, CollectionAccess, Feed, IntelCollection, NewObject, ObjectMeta, ObjectQuery, Page,
    StoredObject, Tlp, VersionFilter, Viewer,
};
pub use org::{Org, OrgKind, OrgPrefix};
pub use watch::{Watch, WatchKind};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("metadata store: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("{what} {name:?} not found")]
    NotFound { what: &'static str, name: String },
    #[error("{what} {name:?} already exists")]
    Exists { what: &'static str, name: String },
    /// The caller may see the thing but not do this to it.
    #[error("forbidden: {0}")]
    Forbidden(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection pool to the metadata database, migrated to the current schema.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    passwords: std::sync::Arc<auth::PasswordCache>,
}

/// Schema migrations, applied in order, each once, each in its own transaction.
const MIGRATIONS: &[(i64, &[&str])] = &[
    (
        1,
        &[
            "CREATE TABLE orgs (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created BIGINT NOT NULL,
            webhook_url TEXT,
            webhook_key_version BIGINT NOT NULL DEFAULT 0)",
            "CREATE TABLE org_prefixes (
            org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
            prefix TEXT NOT NULL,
            first_ip BIGINT NOT NULL,
            last_ip BIGINT NOT NULL,
            created BIGINT NOT NULL,
            PRIMARY KEY (org_id, prefix))",
            "CREATE TABLE watches (
            id TEXT PRIMARY KEY,
            org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            value TEXT NOT NULL,
            created BIGINT NOT NULL,
            UNIQUE (org_id, kind, value))",
            "CREATE TABLE alerts (
            id TEXT PRIMARY KEY,
            org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            subject TEXT NOT NULL,
            watch_id TEXT,
            first_seen BIGINT NOT NULL,
            last_seen BIGINT NOT NULL,
            findings BIGINT NOT NULL,
            packets BIGINT NOT NULL,
            summary TEXT NOT NULL,
            evidence TEXT NOT NULL,
            status TEXT NOT NULL,
            created BIGINT NOT NULL,
            updated BIGINT NOT NULL)",
            "CREATE INDEX alerts_org ON alerts (org_id, last_seen)",
            "CREATE INDEX alerts_incident ON alerts (org_id, kind, subject, last_seen)",
            "CREATE TABLE alert_findings (
            org_id TEXT NOT NULL,
            rule TEXT NOT NULL,
            finding_id TEXT NOT NULL,
            alert_id TEXT NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
            PRIMARY KEY (org_id, rule, finding_id))",
            "CREATE TABLE deliveries (
            id TEXT PRIMARY KEY,
            alert_id TEXT NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
            org_id TEXT NOT NULL,
            event TEXT NOT NULL,
            url TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts BIGINT NOT NULL,
            next_attempt BIGINT NOT NULL,
            last_error TEXT,
            response_status BIGINT,
            delivered_at BIGINT,
            created BIGINT NOT NULL)",
            "CREATE INDEX deliveries_due ON deliveries (status, next_attempt)",
        ],
    ),
    (
        2,
        &[
            // The nexus operator is an organisation too (kind 'operator'): its users are the admins and
            // analysts, and the intelligence it publishes is owned by it.
            "ALTER TABLE orgs ADD COLUMN kind TEXT NOT NULL DEFAULT 'member'",
            "CREATE TABLE users (
            id TEXT PRIMARY KEY,
            org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
            name TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL,
            password_hash TEXT,
            created BIGINT NOT NULL,
            disabled BIGINT NOT NULL DEFAULT 0)",
            "CREATE TABLE tokens (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            secret_hash TEXT NOT NULL,
            created BIGINT NOT NULL,
            expires BIGINT,
            revoked BIGINT,
            last_used BIGINT)",
            "CREATE TABLE sessions (
            id_hash TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            csrf TEXT NOT NULL,
            created BIGINT NOT NULL,
            expires BIGINT NOT NULL)",
            "CREATE TABLE collections (
            id TEXT PRIMARY KEY,
            alias TEXT NOT NULL UNIQUE,
            title TEXT NOT NULL,
            description TEXT NOT NULL,
            read_access TEXT NOT NULL,
            write_access TEXT NOT NULL,
            default_tlp TEXT NOT NULL,
            created BIGINT NOT NULL)",
            // One clock for every date_added: unique, strictly increasing, taken under a row lock so
            // that a reader paging by added_after can never see a later date before an earlier one commits.
            "CREATE TABLE intel_clock (id BIGINT PRIMARY KEY, last BIGINT NOT NULL)",
            "INSERT INTO intel_clock (id, last) VALUES (1, 0)",
            "CREATE TABLE stix_objects (
            collection_id TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
            date_added BIGINT NOT NULL,
            id TEXT NOT NULL,
            type TEXT NOT NULL,
            spec_version TEXT NOT NULL,
            version TEXT NOT NULL,
            version_us BIGINT NOT NULL,
            owner_org TEXT NOT NULL,
            owner_user TEXT,
            tlp TEXT NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (collection_id, date_added),
            UNIQUE (collection_id, id, version, owner_org))",
            "CREATE INDEX stix_objects_id ON stix_objects (id, version_us)",
            "CREATE TABLE stix_audience (
            collection_id TEXT NOT NULL,
            date_added BIGINT NOT NULL,
            kind TEXT NOT NULL,
            principal TEXT NOT NULL,
            PRIMARY KEY (collection_id, date_added, kind, principal))",
            "CREATE TABLE stix_refs (
            collection_id TEXT NOT NULL,
            date_added BIGINT NOT NULL,
            ref_id TEXT NOT NULL,
            PRIMARY KEY (collection_id, date_added, ref_id))",
            // Observable values (addresses, domains, URLs, hashes) each object mentions, normalised:
            // the correlation index, looked up by value, filtered by the same access rule.
            "CREATE TABLE stix_values (
            value TEXT NOT NULL,
            collection_id TEXT NOT NULL,
            date_added BIGINT NOT NULL,
            PRIMARY KEY (value, collection_id, date_added))",
            "CREATE TABLE taxii_status (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            body TEXT NOT NULL,
            created BIGINT NOT NULL)",
            "CREATE TABLE feeds (
            name TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            config TEXT NOT NULL,
            cursor TEXT,
            last_run BIGINT,
            last_error TEXT,
            created BIGINT NOT NULL)",
        ],
    ),
    (
        3,
        &[
            // "Is this the latest (or first) version?" is asked for every object of a page.
            "CREATE INDEX stix_objects_versions ON stix_objects (collection_id, id, version_us, date_added)",
        ],
    ),
    (
        4,
        &[
            // Per analysis scope, the lake commit up to which findings have been matched against
            // members' space and watches: alerts after an analysis read only newer findings.
            "CREATE TABLE alert_cursors (
            scope TEXT PRIMARY KEY,
            seq BIGINT NOT NULL,
            updated BIGINT NOT NULL)",
        ],
    ),
];

impl Store {
    /// Connect to `url` (`sqlite://path?mode=rwc`, `sqlite::memory:` or `postgres://…`) and bring
    /// the schema up to date.
    pub async fn open(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(Error::Invalid(format!("metadata store URL {url:?}: expected sqlite://PATH or postgres://…")));
        };
        // One SQLite connection: writers serialise anyway, and an in-memory database is per connection.
        let max = if backend == Backend::Sqlite { 1 } else { 8 };
        let pool = AnyPoolOptions::new().max_connections(max).connect(url).await?;
        let store = Store { pool, backend, passwords: Default::default() };
        if backend == Backend::Sqlite {
            sqlx::query("PRAGMA foreign_keys = ON").execute(&store.pool).await?;
        }
        store.migrate().await?;
        Ok(store)
    }

    /// The default store: `cynex.db` (SQLite) in the data directory, created when missing.
    pub async fn open_in(data_dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| Error::Invalid(format!("creating {}: {e}", data_dir.display())))?;
        Store::open(&sqlite_url(&data_dir.join("cynex.db"))).await
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn migrate(&self) -> Result<()> {
        sqlx::query("CREATE TABLE IF NOT EXISTS cynex_schema (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)")
            .execute(&self.pool)
            .await?;
        let current: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM cynex_schema")
            .fetch_one(&self.pool)
            .await?
            .try_get("v")?;
        for (version, stmts) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
            let mut tx = self.pool.begin().await?;
            for s in *stmts {
                sqlx::query(s).execute(&mut *tx).await?;
            }
            sqlx::query("INSERT INTO cynex_schema (version, applied) VALUES ($1, $2)")
                .bind(*version)
                .bind(now_us())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(())
    }
}

/// The sqlx URL of an SQLite file, created when missing.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub(crate) fn now_us() -> i64 {
    cynex_model::time::now_us()
}

pub(crate) fn opt_string(row: &AnyRow, col: &str) -> Result<Option<String>> {
    Ok(row.try_get::<Option<String>, _>(col)?)
}

/// Map a unique-constraint violation to [`Error::Exists`].
pub(crate) fn exists_or(e: sqlx::Error, what: &'static str, name: &str) -> Error {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => Error::Exists { what, name: name.to_string() },
        _ => Error::Sql(e),
    }
}
