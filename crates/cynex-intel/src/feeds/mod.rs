//! Feeds in and out: external TAXII 2.1 collections and MISP feeds pulled on a schedule into a
//! local collection ([`taxii`], [`misp`]), and indicators out as lists, CSV, Suricata rules and
//! MISP feeds ([`export`], [`misp`]). The registry of feeds lives in the store; each run records
//! its resume point and error.

pub mod export;
pub mod misp;
pub mod taxii;

use cynex_store::Feed;
use serde::{Deserialize, Serialize};

use crate::hub::Hub;
use crate::{Error, Result};

/// A feed's configuration (the store keeps it as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// Local collection (alias) the objects go into.
    pub into: String,
    /// Seconds between runs under `cynex serve`.
    #[serde(default = "default_interval")]
    pub interval_s: u64,
    #[serde(default)]
    pub taxii: Option<taxii::TaxiiSource>,
    /// A MISP feed: directory or base URL holding `manifest.json`.
    #[serde(default)]
    pub misp: Option<String>,
}

fn default_interval() -> u64 {
    3600
}

impl FeedConfig {
    pub fn kind(&self) -> &'static str {
        if self.taxii.is_some() {
            "taxii"
        } else {
            "misp"
        }
    }
}

/// Register (or replace) a feed after checking its collection exists.
pub async fn save(hub: &Hub, name: &str, cfg: &FeedConfig) -> Result<()> {
    if cfg.taxii.is_some() == cfg.misp.is_some() {
        return Err(Error::Invalid(format!("feed {name}: give exactly one of a TAXII source or a MISP feed")));
    }
    hub.store.collection(&cfg.into).await?;
    let json = serde_json::to_string(cfg).map_err(|e| Error::Invalid(format!("feed {name}: {e}")))?;
    hub.store.save_feed(name, cfg.kind(), &json).await?;
    Ok(())
}

pub fn config_of(f: &Feed) -> Result<FeedConfig> {
    serde_json::from_str(&f.config)
        .map_err(|e| Error::Feed { feed: f.name.clone(), reason: format!("stored configuration: {e}") })
}

/// What one feed run did.
#[derive(Debug, Clone, Serialize)]
pub struct FeedRun {
    pub feed: String,
    pub kind: String,
    pub added: u64,
    pub unchanged: u64,
    pub refused: u64,
    pub cursor: Option<String>,
}

/// Run one feed now: pull what is new since its resume point, record the run.
pub async fn run(hub: &Hub, f: &Feed) -> Result<FeedRun> {
    let cfg = config_of(f)?;
    let into = hub.store.collection(&cfg.into).await?;
    let owner = hub.system_principal().await?;
    let result: Result<FeedRun> = async {
        if let Some(src) = &cfg.taxii {
            let store = hub.store.clone();
            let name = f.name.clone();
            let r = taxii::pull(hub, &f.name, src, &into, &owner, f.cursor.clone(), |c| {
                let (store, name) = (store.clone(), name.clone());
                async move { Ok(store.record_feed_run(&name, Some(&c), None).await?) }
            })
            .await?;
            Ok(FeedRun {
                feed: f.name.clone(),
                kind: "taxii".into(),
                added: r.added,
                unchanged: r.unchanged,
                refused: r.refused,
                cursor: r.cursor,
            })
        } else {
            let source = cfg.misp.as_deref().unwrap_or_default();
            let since = f.cursor.as_deref().and_then(|c| c.parse().ok());
            let r = misp::import_feed(hub, source, &into, &owner, since).await?;
            Ok(FeedRun {
                feed: f.name.clone(),
                kind: "misp".into(),
                added: r.objects_added,
                unchanged: r.objects_unchanged,
                refused: r.objects_refused,
                cursor: r.cursor.map(|c| c.to_string()),
            })
        }
    }
    .await;
    match &result {
        Ok(r) => hub.store.record_feed_run(&f.name, r.cursor.as_deref(), None).await?,
        Err(e) => hub.store.record_feed_run(&f.name, None, Some(&e.to_string())).await?,
    }
    result
}

/// Run every feed whose interval has passed since its last run (for `cynex serve`).
pub async fn run_due(hub: &Hub, now: i64) -> Result<Vec<Result<FeedRun>>> {
    let mut out = Vec::new();
    for f in hub.store.feeds().await? {
        let interval = config_of(&f).map(|c| c.interval_s).unwrap_or(3600) as i64 * 1_000_000;
        if f.last_run.is_some_and(|t| now - t < interval) {
            continue;
        }
        out.push(run(hub, &f).await);
    }
    Ok(out)
}
