//! The background jobs of `cynex serve`, one round every `interval`:
//!
//! 1. ingest what is in the watch folder (`incoming/<sensor>/…`, any format `cynex ingest auto`
//!    reads) and finish pushed bodies left in the spool by a crash;
//! 2. incremental analysis of what is new in the lake;
//! 3. member alerts from the findings, and their webhook deliveries (retries included);
//! 4. publishing the findings as intelligence;
//! 5. feeds that are due.
//!
//! Beside the rounds, [`run_bus`] consumes the NATS JetStream sensor bus continuously (when
//! `cynex serve --bus` names one), sharing the durable consumer with any `cynex ingest bus`.
//!
//! Each step is idempotent (the lake's progress, the alert links, deterministic STIX ids), so a
//! round interrupted by a crash or a shutdown is simply done again. A failing step is logged and
//! counted and does not stop the others or the next round.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cynex_analysis::webhook::{deliver_due, DeliverOptions, WebhookKey};
use cynex_analysis::{AnalyzeOptions, Mode};
use cynex_ingest::pipeline::{self, IngestOptions, InputFormat};

use crate::AppState;

#[derive(Debug, Clone)]
pub struct JobsConfig {
    pub enabled: bool,
    pub interval: Duration,
    /// Folder watched for new inputs (default `<data>/incoming`).
    pub watch_dir: Option<PathBuf>,
    /// Analysis scope to keep up to date (and to publish).
    pub scope: String,
    pub publish: bool,
    /// Stream new packets to the live view.
    pub live: bool,
    /// Consume this sensor bus into the lake.
    pub bus: Option<cynex_ingest::bus::ConsumeOptions>,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            enabled: true,
            interval: Duration::from_secs(60),
            watch_dir: None,
            scope: "all".into(),
            publish: true,
            live: true,
            bus: None,
        }
    }
}

/// What one round did (for logs and tests).
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct RoundReport {
    pub files_ingested: u64,
    pub records_written: u64,
    pub analysed_packets: u64,
    pub findings: u64,
    pub alerts_created: u64,
    pub deliveries: u64,
    pub published: u64,
    pub feed_objects: u64,
    pub errors: Vec<String>,
}

/// Inputs under the watch folder, grouped by sensor: `incoming/<sensor>/…` (files directly in
/// the folder belong to sensor `incoming`).
fn watched(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out = Vec::new();
    for e in rd.filter_map(Result::ok) {
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        if p.is_dir() && cynex_lake::valid_sensor_name(&name) {
            out.push((name, p));
        } else if p.is_file() {
            out.push(("incoming".to_string(), p));
        }
    }
    out.sort();
    out
}

fn ingest_watch(st: &AppState, dir: &Path, rep: &mut RoundReport) {
    for (sensor, path) in watched(dir) {
        let opts =
            IngestOptions { sensor: sensor.clone(), progress: false, max_warnings: 0, ..IngestOptions::default() };
        match pipeline::ingest(&st.lake, std::slice::from_ref(&path), &opts, InputFormat::Auto, None) {
            Ok(r) => {
                let fresh = r.files.iter().filter(|f| f.read > 0).count() as u64;
                rep.files_ingested += fresh;
                rep.records_written += r.written();
                st.metrics.watch_files_ingested.add(fresh);
                for f in r.files.iter().filter(|f| matches!(f.status, pipeline::FileStatus::Unreadable(_))) {
                    tracing::warn!(file = %f.path.display(), status = ?f.status, "watch folder: unreadable input (quarantined)");
                }
            }
            Err(e) => rep.errors.push(format!("watch folder {}: {e}", path.display())),
        }
    }
}

/// Pushed bodies a crash left in the spool: `spool/<sensor>/<org>-<digest>.<format>`.
fn finish_spool(st: &AppState, rep: &mut RoundReport) {
    let spool = crate::api::spool_path(st);
    for (sensor, dir) in watched(&spool) {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        for e in rd.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue;
            }
            let (stem, ext) = name.rsplit_once('.').unwrap_or((&name, ""));
            let (Some(format), Some((org, _))) = (crate::api::ingest_format(ext), stem.rsplit_once('-')) else {
                continue;
            };
            match crate::api::ingest_spooled_file(&st.lake, &e.path(), &sensor, org, format) {
                Ok(r) => rep.records_written += r.written(),
                Err(err) => rep.errors.push(format!("spool {}: {err}", e.path().display())),
            }
        }
    }
}

/// One round of every job.
pub async fn round(st: &AppState, cfg: &JobsConfig) -> RoundReport {
    let mut rep = RoundReport::default();
    let watch = cfg.watch_dir.clone().unwrap_or_else(|| st.config.data_dir.join("incoming"));
    let st2 = st.clone();
    let r2 = tokio::task::spawn_blocking(move || {
        let mut r = RoundReport::default();
        ingest_watch(&st2, &watch, &mut r);
        finish_spool(&st2, &mut r);
        r
    })
    .await
    .unwrap_or_default();
    rep.files_ingested = r2.files_ingested;
    rep.records_written = r2.records_written;
    rep.errors.extend(r2.errors);

    let opts = AnalyzeOptions {
        scope: cfg.scope.clone(),
        mode: Mode::Incremental { flush: false, rebuild: false },
        geoip: cynex_analysis::geo::Geo::find_in(&st.config.data_dir.join("geoip")),
        ..AnalyzeOptions::default()
    };
    let lake = st.lake.clone();
    let analysed = match tokio::task::spawn_blocking(move || cynex_analysis::analyze(&lake, &opts)).await {
        Ok(Ok(a)) => {
            rep.analysed_packets = a.rows;
            rep.findings = a.findings.values().sum();
            st.metrics.analysis_runs.inc();
            st.metrics.analysis_packets.add(a.rows);
            st.metrics.analysis_findings.add(rep.findings);
            a.commit > 0
        }
        Ok(Err(e)) => {
            rep.errors.push(format!("analysis: {e}"));
            false
        }
        Err(e) => {
            rep.errors.push(format!("analysis: {e}"));
            false
        }
    };
    let first = !st.ready.load(Ordering::Relaxed);
    if analysed || first {
        // Only the findings added since the last match (and what is ongoing), as after `cynex
        // analyze`. It reads files, so it runs on a blocking thread, driving the store from there.
        let (store, lake, scope) = (st.store.clone(), st.lake.clone(), cfg.scope.clone());
        let rt = tokio::runtime::Handle::current();
        let raised = tokio::task::spawn_blocking(move || {
            rt.block_on(cynex_analysis::alerts::raise_in_lake(&store, &lake, &scope, &Default::default(), false))
        })
        .await;
        match raised {
            Ok(Ok(a)) => {
                rep.alerts_created = a.created;
                st.metrics.alerts_raised.add(a.created);
            }
            Ok(Err(e)) => rep.errors.push(format!("alerts: {e}")),
            Err(e) => rep.errors.push(format!("alerts: {e}")),
        }
        if cfg.publish {
            let popts = cynex_intel::publish::PublishOptions { scope: cfg.scope.clone(), ..Default::default() };
            match cynex_intel::publish::publish(&st.hub, &st.lake, &popts).await {
                Ok(p) => {
                    rep.published = p.added;
                    st.metrics.intel_objects_published.add(p.added);
                }
                Err(e) => rep.errors.push(format!("publish: {e}")),
            }
        }
    }
    match WebhookKey::load_or_create(&st.config.data_dir.join("keys/webhook.key")) {
        Ok(key) => match deliver_due(&st.store, &key, &DeliverOptions::default()).await {
            Ok(d) => {
                rep.deliveries = d.delivered;
                st.metrics.alerts_delivered.add(d.delivered);
                st.metrics.alerts_delivery_failed.add(d.retrying + d.gave_up);
            }
            Err(e) => rep.errors.push(format!("webhooks: {e}")),
        },
        Err(e) => rep.errors.push(format!("webhook key: {e}")),
    }
    match cynex_intel::feeds::run_due(&st.hub, cynex_model::time::now_us()).await {
        Ok(runs) => {
            for r in runs {
                match r {
                    Ok(f) => {
                        rep.feed_objects += f.added;
                        st.metrics.feed_objects_received.add(f.added + f.unchanged + f.refused);
                    }
                    Err(e) => rep.errors.push(format!("feed: {e}")),
                }
            }
        }
        Err(e) => rep.errors.push(format!("feeds: {e}")),
    }
    st.metrics.job_errors.add(rep.errors.len() as u64);
    for e in &rep.errors {
        tracing::warn!(error = %e, "background job failed");
    }
    rep
}

/// Run rounds until the process ends; the service is ready after the first.
pub async fn run(st: AppState, cfg: JobsConfig) {
    loop {
        let r = round(&st, &cfg).await;
        tracing::info!(
            files = r.files_ingested,
            packets = r.analysed_packets,
            findings = r.findings,
            alerts = r.alerts_created,
            published = r.published,
            errors = r.errors.len(),
            "background round done"
        );
        st.ready.store(true, Ordering::Relaxed);
        tokio::time::sleep(cfg.interval).await;
    }
}

/// Consume the sensor bus until `stop` is set, reconnecting with backoff (1 s doubling to 60 s)
/// when the bus is unreachable. Each chunk is committed before it is acknowledged, so stopping or
/// crashing at any point loses nothing and doubles nothing.
pub async fn run_bus(st: AppState, opts: cynex_ingest::bus::ConsumeOptions, stop: Arc<AtomicBool>) {
    let mut backoff = Duration::from_secs(1);
    while !stop.load(Ordering::Relaxed) {
        let m = Arc::clone(&st.metrics);
        let mut on_batch = move |b: &cynex_ingest::bus::ConsumeReport| {
            m.bus_messages.add(b.messages);
            m.bus_duplicates.add(b.duplicates);
            m.bus_bad_messages.add(b.bad_messages);
            m.bus_events_written.add(b.events);
            m.bus_quarantined.add(b.quarantined);
        };
        match cynex_ingest::bus::consume(&st.lake, &opts, &stop, &mut on_batch).await {
            Ok(r) => {
                tracing::info!(messages = r.messages, events = r.events, "sensor bus consumer stopped");
                backoff = Duration::from_secs(1);
            }
            Err(e) => {
                st.metrics.job_errors.inc();
                tracing::warn!(error = %e, retry_in_s = backoff.as_secs(), "sensor bus");
                let until = std::time::Instant::now() + backoff;
                while std::time::Instant::now() < until && !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    }
}
