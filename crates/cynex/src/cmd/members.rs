//! `cynex org …`, `cynex watch …` and `cynex alerts …`: member organisations, their address space
//! and watches, and the alerts raised for them (DAEDALUS).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use cynex_analysis::alerts::{raise_in_lake, AlertOptions, AlertReport};
use cynex_analysis::webhook::{deliver_due, DeliverOptions, DeliverReport, WebhookKey};
use cynex_lake::Lake;
use cynex_model::ip::Ipv4Net;
use cynex_model::time::rfc3339_us;
use cynex_store::{AlertFilter, Store, WatchKind};

use crate::output::{thousands, write_rows};

/// Where the webhook signing key lives: beside the data, outside the database.
pub fn webhook_key_path(data: &Path) -> std::path::PathBuf {
    data.join("keys").join("webhook.key")
}

/// A runtime for the store's async calls from the synchronous CLI.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime starts")
        .block_on(f)
}

/// Open the metadata store: `url` (`--db`/`CYNEX_DB`) or `cynex.db` in the data directory.
pub async fn open_store(data: &Path, url: Option<&str>) -> anyhow::Result<Store> {
    Ok(match url {
        Some(u) => Store::open(u).await.with_context(|| "opening the metadata store (--db)")?,
        None => Store::open_in(data).await.with_context(|| format!("opening {}", data.join("cynex.db").display()))?,
    })
}

pub async fn org_add(
    store: &Store,
    name: &str,
    kind: cynex_store::OrgKind,
    prefixes: &[Ipv4Net],
    webhook: Option<&str>,
    key: &WebhookKey,
    w: &mut dyn Write,
) -> anyhow::Result<()> {
    let org = store.add_org_of_kind(name, kind).await?;
    for p in prefixes {
        store.add_prefix(&org.id, *p).await?;
    }
    writeln!(w, "organisation {} created (id {}, {})", org.name, org.id, org.kind.as_str())?;
    if !prefixes.is_empty() {
        let list: Vec<String> = prefixes.iter().map(|p| p.to_string()).collect();
        writeln!(w, "address space: {}", list.join(", "))?;
    }
    if let Some(u) = webhook {
        org_webhook(store, name, Some(u), false, key, w).await?;
    }
    Ok(())
}

pub async fn org_webhook(
    store: &Store,
    name: &str,
    url: Option<&str>,
    rotate: bool,
    key: &WebhookKey,
    w: &mut dyn Write,
) -> anyhow::Result<()> {
    let org = store.set_webhook(name, url, rotate).await?;
    match &org.webhook_url {
        Some(u) => {
            writeln!(w, "alerts for {} will be POSTed to {u}", org.name)?;
            writeln!(w, "signing secret (give it to the member; verify X-Cynex-Signature with it):")?;
            writeln!(w, "  {}", key.secret_for(&org))?;
        }
        None => writeln!(w, "webhook of {} removed; alerts are kept in the history only", org.name)?,
    }
    Ok(())
}

pub async fn org_list(store: &Store, json: bool, w: &mut dyn Write) -> anyhow::Result<()> {
    let orgs = store.orgs().await?;
    let prefixes = store.prefixes(None).await?;
    if json {
        let v: Vec<serde_json::Value> = orgs
            .iter()
            .map(|o| {
                let p: Vec<String> =
                    prefixes.iter().filter(|p| p.org_id == o.id).map(|p| p.prefix.to_string()).collect();
                serde_json::json!({"id": o.id, "name": o.name, "created": rfc3339_us(o.created),
                    "webhook_url": o.webhook_url, "prefixes": p})
            })
            .collect();
        writeln!(w, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    let rows = orgs
        .iter()
        .map(|o| {
            let p: Vec<String> = prefixes.iter().filter(|p| p.org_id == o.id).map(|p| p.prefix.to_string()).collect();
            vec![
                o.name.clone(),
                p.join(" "),
                o.webhook_url.clone().unwrap_or_else(|| "-".into()),
                rfc3339_us(o.created),
            ]
        })
        .collect();
    write_rows(w, &["organisation", "prefixes", "webhook", "created"], rows)
}

pub async fn watch_list(store: &Store, org: Option<&str>, w: &mut dyn Write) -> anyhow::Result<()> {
    let rows = store
        .watches(org)
        .await?
        .into_iter()
        .map(|x| vec![x.id, x.org, x.what.to_string(), rfc3339_us(x.created)])
        .collect();
    write_rows(w, &["id", "organisation", "watch", "created"], rows)
}

pub async fn watch_add(store: &Store, org: &str, specs: &[WatchKind], w: &mut dyn Write) -> anyhow::Result<()> {
    for s in specs {
        let x = store.add_watch(org, s.clone()).await?;
        writeln!(w, "watch {} added for {}: {}", x.id, x.org, x.what)?;
    }
    Ok(())
}

/// Match `scope`'s findings against member space and watches: all of them with `everything`,
/// otherwise those the lake added since the last time (see [`raise_in_lake`]).
pub async fn raise(
    lake: &Lake,
    store: &Store,
    scope: &str,
    opts: &AlertOptions,
    everything: bool,
    w: &mut dyn Write,
) -> anyhow::Result<AlertReport> {
    let rep = raise_in_lake(store, lake, scope, opts, everything).await?;
    writeln!(w, "{}", alert_summary(&rep))?;
    Ok(rep)
}

pub fn alert_summary(rep: &AlertReport) -> String {
    format!(
        "alerts: {} new, {} updated from {} new matches in {} findings; {} webhook deliveries queued",
        thousands(rep.created),
        thousands(rep.updated),
        thousands(rep.matched),
        thousands(rep.findings),
        thousands(rep.deliveries_queued)
    )
}

pub async fn alerts_list(store: &Store, f: &AlertFilter, json: bool, w: &mut dyn Write) -> anyhow::Result<()> {
    let alerts = store.alerts(f).await?;
    if json {
        writeln!(w, "{}", serde_json::to_string_pretty(&alerts)?)?;
        return Ok(());
    }
    let orgs = store.orgs().await?;
    let name = |id: &str| orgs.iter().find(|o| o.id == id).map(|o| o.name.clone()).unwrap_or_default();
    let rows = alerts
        .into_iter()
        .map(|a| {
            vec![
                a.id.clone(),
                name(&a.org_id),
                a.kind.clone(),
                rfc3339_us(a.first_seen),
                rfc3339_us(a.last_seen),
                a.findings.to_string(),
                a.status.clone(),
                a.summary,
            ]
        })
        .collect();
    write_rows(w, &["id", "organisation", "kind", "first seen", "last seen", "findings", "status", "summary"], rows)
}

/// Attempt due deliveries; with `wait`, keep going (sleeping until the next is due) until none is
/// pending.
pub async fn deliver(
    store: &Store,
    key: &WebhookKey,
    opts: &DeliverOptions,
    wait: bool,
    w: &mut dyn Write,
) -> anyhow::Result<DeliverReport> {
    let mut total = DeliverReport::default();
    loop {
        let r = deliver_due(store, key, opts).await?;
        total.attempted += r.attempted;
        total.delivered += r.delivered;
        total.gave_up += r.gave_up;
        total.retrying = r.retrying;
        if !wait {
            break;
        }
        match store.next_delivery_due().await? {
            None => break,
            Some(t) => {
                let wait_us = (t - cynex_model::time::now_us()).max(0) as u64;
                tokio::time::sleep(Duration::from_micros(wait_us)).await;
            }
        }
    }
    writeln!(
        w,
        "deliveries: {} attempted, {} delivered, {} to retry, {} given up",
        total.attempted, total.delivered, total.retrying, total.gave_up
    )?;
    Ok(total)
}
