//! Member alerts (DAEDALUS): one row per incident, the findings behind it, and the webhook
//! deliveries owed for it.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::{new_id, now_us, opt_string, Error, Result, Store};

/// One incident in a member's space (or on a watched thing), however many findings feed it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub id: String,
    pub org_id: String,
    /// `infected-host`, `ddos-victim` or `watch`.
    pub kind: String,
    /// What the incident is about: an address, or for a watch, the watch's id and the address or
    /// port seen.
    pub subject: String,
    pub watch_id: Option<String>,
    pub first_seen: i64,
    pub last_seen: i64,
    /// Findings merged into this incident.
    pub findings: i64,
    pub packets: i64,
    /// One line for a human.
    pub summary: String,
    pub evidence: serde_json::Value,
    /// `open` or `acknowledged`.
    pub status: String,
    pub created: i64,
    pub updated: i64,
}

const ALERT_COLS: &str = "id, org_id, kind, subject, watch_id, first_seen, last_seen, findings, packets, summary, \
                          evidence, status, created, updated";

fn alert_of(r: &AnyRow) -> Result<Alert> {
    let ev: String = r.try_get("evidence")?;
    Ok(Alert {
        id: r.try_get("id")?,
        org_id: r.try_get("org_id")?,
        kind: r.try_get("kind")?,
        subject: r.try_get("subject")?,
        watch_id: opt_string(r, "watch_id")?,
        first_seen: r.try_get("first_seen")?,
        last_seen: r.try_get("last_seen")?,
        findings: r.try_get("findings")?,
        packets: r.try_get("packets")?,
        summary: r.try_get("summary")?,
        evidence: serde_json::from_str(&ev).map_err(|e| Error::Invalid(format!("stored alert evidence: {e}")))?,
        status: r.try_get("status")?,
        created: r.try_get("created")?,
        updated: r.try_get("updated")?,
    })
}

#[derive(Debug, Default, Clone)]
pub struct AlertFilter {
    pub org_id: Option<String>,
    pub since: Option<i64>,
    pub limit: Option<i64>,
}

/// A webhook call owed for an alert, with its retry state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    pub id: String,
    pub alert_id: String,
    pub org_id: String,
    /// `alert.created` (more event types may follow).
    pub event: String,
    pub url: String,
    /// `pending`, `delivered` or `failed` (gave up after the last attempt).
    pub status: String,
    pub attempts: i64,
    pub next_attempt: i64,
    pub last_error: Option<String>,
    pub response_status: Option<i64>,
    pub delivered_at: Option<i64>,
    pub created: i64,
}

const DELIVERY_COLS: &str =
    "id, alert_id, org_id, event, url, status, attempts, next_attempt, last_error, response_status, delivered_at, created";

fn delivery_of(r: &AnyRow) -> Result<Delivery> {
    Ok(Delivery {
        id: r.try_get("id")?,
        alert_id: r.try_get("alert_id")?,
        org_id: r.try_get("org_id")?,
        event: r.try_get("event")?,
        url: r.try_get("url")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        next_attempt: r.try_get("next_attempt")?,
        last_error: opt_string(r, "last_error")?,
        response_status: r.try_get::<Option<i64>, _>("response_status")?,
        delivered_at: r.try_get::<Option<i64>, _>("delivered_at")?,
        created: r.try_get("created")?,
    })
}

/// What one delivery attempt came to.
#[derive(Debug, Clone)]
pub enum DeliveryOutcome {
    Delivered {
        status: i64,
    },
    /// Try again at `next_attempt`, or give up (`next_attempt: None`).
    Failed {
        status: Option<i64>,
        error: String,
        next_attempt: Option<i64>,
    },
}

/// A transaction over the alert tables: the alert engine links findings, opens or extends incidents
/// and queues deliveries, and all of it lands together or not at all.
pub struct AlertTx {
    tx: Transaction<'static, Any>,
}

impl AlertTx {
    /// Whether `finding_id` was already merged into an alert of `org_id` under `rule`.
    pub async fn is_linked(&mut self, org_id: &str, rule: &str, finding_id: &str) -> Result<bool> {
        let row =
            sqlx::query("SELECT 1 AS one FROM alert_findings WHERE org_id = $1 AND rule = $2 AND finding_id = $3")
                .bind(org_id)
                .bind(rule)
                .bind(finding_id)
                .fetch_optional(&mut *self.tx)
                .await?;
        Ok(row.is_some())
    }

    /// The latest incident of this kind and subject that was still active at `since` or later.
    pub async fn open_incident(
        &mut self,
        org_id: &str,
        kind: &str,
        subject: &str,
        since: i64,
    ) -> Result<Option<Alert>> {
        let row = sqlx::query(&format!(
            "SELECT {ALERT_COLS} FROM alerts WHERE org_id = $1 AND kind = $2 AND subject = $3 AND last_seen >= $4
             ORDER BY last_seen DESC LIMIT 1"
        ))
        .bind(org_id)
        .bind(kind)
        .bind(subject)
        .bind(since)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(alert_of).transpose()
    }

    /// Insert `a`, or replace the row with its id.
    pub async fn save_alert(&mut self, a: &Alert) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO alerts ({ALERT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT (id) DO UPDATE SET first_seen = excluded.first_seen, last_seen = excluded.last_seen,
               findings = excluded.findings, packets = excluded.packets, summary = excluded.summary,
               evidence = excluded.evidence, updated = excluded.updated"
        ))
        .bind(&a.id)
        .bind(&a.org_id)
        .bind(&a.kind)
        .bind(&a.subject)
        .bind(a.watch_id.clone())
        .bind(a.first_seen)
        .bind(a.last_seen)
        .bind(a.findings)
        .bind(a.packets)
        .bind(&a.summary)
        .bind(a.evidence.to_string())
        .bind(&a.status)
        .bind(a.created)
        .bind(a.updated)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn link(&mut self, org_id: &str, rule: &str, finding_id: &str, alert_id: &str) -> Result<()> {
        sqlx::query("INSERT INTO alert_findings (org_id, rule, finding_id, alert_id) VALUES ($1, $2, $3, $4)")
            .bind(org_id)
            .bind(rule)
            .bind(finding_id)
            .bind(alert_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Queue a webhook call for `alert`, due now.
    pub async fn queue_delivery(&mut self, alert: &Alert, event: &str, url: &str) -> Result<()> {
        let now = now_us();
        sqlx::query(
            "INSERT INTO deliveries (id, alert_id, org_id, event, url, status, attempts, next_attempt, created)
             VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6)",
        )
        .bind(new_id())
        .bind(&alert.id)
        .bind(&alert.org_id)
        .bind(event)
        .bind(url)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

impl Store {
    pub async fn begin_alerts(&self) -> Result<AlertTx> {
        Ok(AlertTx { tx: self.pool.begin().await? })
    }

    /// The lake commit up to which `scope`'s findings have been matched, if any have been.
    pub async fn alert_cursor(&self, scope: &str) -> Result<Option<u64>> {
        let row = sqlx::query("SELECT seq FROM alert_cursors WHERE scope = $1")
            .bind(scope)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<i64, _>("seq")).transpose()?.map(|s| s as u64))
    }

    /// Record that `scope`'s findings up to lake commit `seq` have been matched.
    pub async fn set_alert_cursor(&self, scope: &str, seq: u64) -> Result<()> {
        let seq = i64::try_from(seq).map_err(|_| Error::Invalid(format!("lake commit {seq} out of range")))?;
        sqlx::query(
            "INSERT INTO alert_cursors (scope, seq, updated) VALUES ($1, $2, $3)
             ON CONFLICT (scope) DO UPDATE SET seq = excluded.seq, updated = excluded.updated",
        )
        .bind(scope)
        .bind(seq)
        .bind(now_us())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Alerts, newest activity first.
    pub async fn alerts(&self, f: &AlertFilter) -> Result<Vec<Alert>> {
        let rows = sqlx::query(&format!(
            "SELECT {ALERT_COLS} FROM alerts WHERE ($1 IS NULL OR org_id = $1) AND last_seen >= $2
             ORDER BY last_seen DESC, id LIMIT $3"
        ))
        .bind(f.org_id.clone())
        .bind(f.since.unwrap_or(i64::MIN))
        .bind(f.limit.unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(alert_of).collect()
    }

    /// One alert; with `org_id`, only if it belongs to that organisation (members never see, or
    /// learn the existence of, another member's alert).
    pub async fn alert(&self, id: &str, org_id: Option<&str>) -> Result<Alert> {
        let row =
            sqlx::query(&format!("SELECT {ALERT_COLS} FROM alerts WHERE id = $1 AND ($2 IS NULL OR org_id = $2)"))
                .bind(id)
                .bind(org_id.map(str::to_string))
                .fetch_optional(&self.pool)
                .await?;
        match row {
            Some(r) => alert_of(&r),
            None => Err(Error::NotFound { what: "alert", name: id.to_string() }),
        }
    }

    /// Mark an alert acknowledged (same ownership rule as [`Store::alert`]).
    pub async fn ack_alert(&self, id: &str, org_id: Option<&str>) -> Result<Alert> {
        let a = self.alert(id, org_id).await?;
        sqlx::query("UPDATE alerts SET status = 'acknowledged', updated = $1 WHERE id = $2")
            .bind(now_us())
            .bind(&a.id)
            .execute(&self.pool)
            .await?;
        self.alert(id, org_id).await
    }

    /// Pending deliveries due at `now`, oldest first.
    pub async fn due_deliveries(&self, now: i64, limit: i64) -> Result<Vec<Delivery>> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLS} FROM deliveries WHERE status = 'pending' AND next_attempt <= $1
             ORDER BY next_attempt, id LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_of).collect()
    }

    /// Deliveries of one alert, or of all alerts, newest first.
    pub async fn deliveries(&self, alert_id: Option<&str>) -> Result<Vec<Delivery>> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLS} FROM deliveries WHERE $1 IS NULL OR alert_id = $1 ORDER BY created DESC, id"
        ))
        .bind(alert_id.map(str::to_string))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_of).collect()
    }

    /// The earliest time a pending delivery is due, if any is pending.
    pub async fn next_delivery_due(&self) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT MIN(next_attempt) AS t FROM deliveries WHERE status = 'pending'")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<Option<i64>, _>("t")?)
    }

    pub async fn record_attempt(&self, id: &str, outcome: &DeliveryOutcome) -> Result<()> {
        let now = now_us();
        let q = match outcome {
            DeliveryOutcome::Delivered { status } => sqlx::query(
                "UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, response_status = $1,
                 delivered_at = $2, last_error = NULL WHERE id = $3",
            )
            .bind(*status)
            .bind(now)
            .bind(id),
            DeliveryOutcome::Failed { status, error, next_attempt } => sqlx::query(
                "UPDATE deliveries SET status = $1, attempts = attempts + 1, response_status = $2, last_error = $3,
                 next_attempt = $4 WHERE id = $5",
            )
            .bind(if next_attempt.is_some() { "pending" } else { "failed" })
            .bind(*status)
            .bind(error.clone())
            .bind(next_attempt.unwrap_or(now))
            .bind(id),
        };
        q.execute(&self.pool).await?;
        Ok(())
    }
}
