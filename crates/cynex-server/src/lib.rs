//! `cynex serve`: one process with the HTTP API (`/api/v1`), TAXII 2.1 (`/taxii2/`), the web UI,
//! health and readiness, Prometheus `/metrics`, and the background jobs (watch folder, incremental
//! analysis, publishing, member alerts and their webhooks, feeds).
//!
//! [`router`] builds the whole service from an [`AppState`], so tests drive it in-process with
//! `tower::ServiceExt::oneshot` and end-to-end tests run it on a real socket with [`serve`].
//!
//! Must not: decide who sees which intelligence (the store's TLP rule does), or hold the lake's
//! shared lock beyond one request (commits need the exclusive lock).

pub mod api;
pub mod auth;
pub mod jobs;
pub mod live;
pub mod metrics;
pub mod tls;
pub mod ui;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use cynex_intel::taxii::{params::Cursors, Taxii, TaxiiConfig};
use cynex_intel::Hub;
use cynex_lake::Lake;
use cynex_store::secret::KeyFile;
use cynex_store::Store;

pub use metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] cynex_store::Error),
    #[error(transparent)]
    Lake(#[from] cynex_lake::Error),
    #[error(transparent)]
    Intel(#[from] cynex_intel::Error),
    #[error(transparent)]
    Analysis(#[from] cynex_analysis::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How the service runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// PEM certificate chain and key: HTTPS when given.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The URL clients reach the service at (TAXII discovery); from `Host` when absent.
    pub public_url: Option<String>,
    /// Data directory (lake, keys, watch folder).
    pub data_dir: PathBuf,
    pub taxii: TaxiiConfig,
    pub jobs: jobs::JobsConfig,
    /// Largest body of `POST /api/v1/ingest/{format}` (bytes).
    pub ingest_max_bytes: usize,
    /// Browser session lifetime (µs).
    pub session_ttl_us: i64,
}

impl ServerConfig {
    pub fn new(data_dir: PathBuf) -> ServerConfig {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls: None,
            public_url: None,
            data_dir,
            taxii: TaxiiConfig::default(),
            jobs: jobs::JobsConfig::default(),
            ingest_max_bytes: 64 << 20,
            session_ttl_us: 12 * 3_600_000_000,
        }
    }
}

/// What every handler shares (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub hub: Hub,
    pub lake: Lake,
    pub taxii: Arc<Taxii>,
    pub metrics: Arc<Metrics>,
    pub config: Arc<ServerConfig>,
    pub live: live::LiveHub,
    /// Set once the first round of jobs has run (or at once without jobs): `/readyz`.
    pub ready: Arc<AtomicBool>,
}

impl AppState {
    /// Open the service's state over a store and the lake in `config.data_dir`.
    pub fn new(store: Store, config: ServerConfig) -> Result<AppState> {
        let lake = Lake::open(config.data_dir.join("lake"))?;
        let cursor_key = KeyFile::load_or_create(&config.data_dir.join("keys/taxii-cursor.key"))?;
        let hub = Hub::new(store.clone());
        let mut tc = config.taxii.clone();
        tc.tls = config.tls.is_some();
        tc.public_url.clone_from(&config.public_url);
        let taxii = Arc::new(Taxii { hub: hub.clone(), config: tc, cursors: Cursors::new(cursor_key) });
        Ok(AppState {
            store,
            hub,
            lake,
            taxii,
            metrics: Arc::new(Metrics::default()),
            config: Arc::new(config),
            live: live::LiveHub::new(),
            ready: Arc::new(AtomicBool::new(false)),
        })
    }
}

async fn count_requests(State(st): State<AppState>, req: Request, next: Next) -> Response {
    st.metrics.http_requests.inc();
    let r = next.run(req).await;
    if r.status().is_client_error() {
        st.metrics.http_errors_4xx.inc();
    } else if r.status().is_server_error() {
        st.metrics.http_errors_5xx.inc();
    }
    r
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(st): State<AppState>) -> Response {
    if !st.ready.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting: the first round of jobs is running\n").into_response();
    }
    match st.store.orgs().await {
        Ok(_) => "ready\n".into_response(),
        Err(e) => {
            tracing::error!(error = %e, "readiness: metadata store");
            (StatusCode::SERVICE_UNAVAILABLE, "metadata store unavailable\n").into_response()
        }
    }
}

async fn metrics_text(State(st): State<AppState>) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], st.metrics.render()).into_response()
}

/// The whole service.
pub fn router(st: AppState) -> Router {
    let taxii = cynex_intel::taxii::router(Arc::clone(&st.taxii));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .merge(taxii)
        .merge(api::router(st.clone()))
        .merge(ui::router())
        .layer(middleware::from_fn_with_state(st.clone(), auth::authenticate))
        .layer(middleware::from_fn_with_state(st.clone(), count_requests))
        .with_state(st)
}

/// How long requests still in flight at shutdown may take to finish; long-lived ones (the live
/// view's event stream) are cut after it.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Serve on the configured address until `shutdown` resolves; requests in flight then get
/// `SHUTDOWN_GRACE` (5 s) to finish.
pub async fn serve(st: AppState, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> Result<()> {
    let cfg = Arc::clone(&st.config);
    let tcp = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| Error::Io { context: format!("listening on {}", cfg.listen), source: e })?;
    let app = router(st);
    let (stopping, mut stopped) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown.await;
        let _ = stopping.send(true);
    };
    let grace = async move {
        let _ = stopped.wait_for(|s| *s).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
        tracing::info!("shutdown: cutting the connections still open");
    };
    let served = async {
        match &cfg.tls {
            Some((cert, key)) => {
                let tls = tls::server_config(cert, key)?;
                let l = tls::TlsListener::new(tcp, tls)
                    .map_err(|e| Error::Io { context: "TLS listener".into(), source: e })?;
                axum::serve(l, app).with_graceful_shutdown(signal).await
            }
            None => axum::serve(tcp, app).with_graceful_shutdown(signal).await,
        }
        .map_err(|e| Error::Io { context: "serving".into(), source: e })
    };
    tokio::select! {
        r = served => r,
        () = grace => Ok(()),
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
