//! `cynex serve`: the HTTP API, TAXII 2.1, the web UI and the background jobs in one process.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use cynex_server::{jobs::JobsConfig, live, AppState, ServerConfig};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The URL clients reach the service at (TAXII discovery links), e.g. https://hub.example:8443.
    // The text is also `--help`'s, where a bare URL reads better than a Markdown link.
    #[allow(rustdoc::bare_urls)]
    #[arg(long)]
    pub public_url: Option<String>,
    /// Serve only: no watch folder, analysis, publishing, alert delivery or feeds.
    #[arg(long)]
    pub no_jobs: bool,
    /// Time between rounds of background jobs.
    #[arg(long, default_value = "60s", value_parser = crate::cli::parse_duration)]
    pub interval: u64,
    /// Folder watched for new captures and logs (`<dir>/<sensor>/…`; default DATA/incoming).
    #[arg(long)]
    pub watch: Option<PathBuf>,
    /// Analysis scope kept up to date and published.
    #[arg(long, default_value = "all")]
    pub scope: String,
    /// Do not publish findings as intelligence.
    #[arg(long)]
    pub no_publish: bool,
    /// Largest body accepted by POST /api/v1/ingest/{format} (MiB).
    #[arg(long, default_value_t = 64)]
    pub ingest_max_mb: usize,
    /// Largest TAXII request body (MiB), advertised as max_content_length.
    #[arg(long, default_value_t = 10)]
    pub taxii_max_mb: usize,
    /// Also consume this NATS JetStream sensor bus (what `cynex sensor --publish` sends), e.g.
    /// nats://127.0.0.1:4222; shares the durable consumer with any `cynex ingest bus`.
    #[arg(long, conflicts_with = "no_jobs")]
    pub bus: Option<String>,
    #[command(flatten)]
    pub bus_location: crate::cli::BusLocation,
    /// Durable consumer name on the bus.
    #[arg(long, default_value = cynex_ingest::bus::DEFAULT_DURABLE)]
    pub bus_durable: String,
}

pub fn config_of(a: &ServeArgs, data: &Path) -> ServerConfig {
    let mut c = ServerConfig::new(data.to_path_buf());
    c.listen = a.listen;
    c.tls = a.tls_cert.clone().zip(a.tls_key.clone());
    c.public_url.clone_from(&a.public_url);
    c.ingest_max_bytes = a.ingest_max_mb.max(1) << 20;
    c.taxii.max_content_length = a.taxii_max_mb.max(1) << 20;
    c.jobs = JobsConfig {
        enabled: !a.no_jobs,
        interval: Duration::from_secs(a.interval.max(1)),
        watch_dir: a.watch.clone(),
        scope: a.scope.clone(),
        publish: !a.no_publish,
        live: true,
        bus: a.bus.as_ref().map(|url| cynex_ingest::bus::ConsumeOptions {
            durable: a.bus_durable.clone(),
            ..cynex_ingest::bus::ConsumeOptions::new(crate::cli::bus_config(url, &a.bus_location))
        }),
    };
    c
}

/// Run the service until SIGINT/SIGTERM.
pub fn run(config: ServerConfig, db: Option<&str>, w: &mut dyn Write) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let store = crate::cmd::members::open_store(&config.data_dir, db).await?;
        let st = AppState::new(store, config.clone()).context("opening the service's state")?;
        let scheme = if config.tls.is_some() { "https" } else { "http" };
        let base = config.public_url.clone().unwrap_or_else(|| format!("{scheme}://{}", config.listen));
        writeln!(w, "cynex serving on {base}/  (API {base}/api/v1/, TAXII {base}/taxii2/, metrics {base}/metrics)")?;
        w.flush()?;
        if config.jobs.enabled {
            tokio::spawn(cynex_server::jobs::run(st.clone(), config.jobs.clone()));
        } else {
            st.ready.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if config.jobs.live {
            tokio::spawn(live::run_feeder(st.clone(), live::FeedConfig::default()));
        }
        let stop_bus = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let bus = match (&config.jobs.bus, config.jobs.enabled) {
            (Some(b), true) => {
                writeln!(w, "consuming the sensor bus {} (stream {})", b.bus.url, b.bus.stream)?;
                Some(tokio::spawn(cynex_server::jobs::run_bus(st.clone(), b.clone(), std::sync::Arc::clone(&stop_bus))))
            }
            _ => None,
        };
        cynex_server::serve(st, cynex_server::shutdown_signal()).await?;
        if let Some(task) = bus {
            // Let the consumer finish (commit and acknowledge) the batch it is writing.
            stop_bus.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
        writeln!(w, "stopped")?;
        Ok(())
    })
}
