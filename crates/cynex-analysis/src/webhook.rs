//! Delivering member alerts by webhook: signed payloads, retry with exponential backoff, and the
//! outcome of every attempt kept with the alert.
//!
//! Signing follows the scheme receivers already know from Stripe and GitHub: the header
//! `X-Cynex-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. The receiver
//! recomputes it with its secret, compares in constant time, and rejects stale timestamps (replay).
//!
//! Secrets are not stored: each organisation's secret is derived from a key file outside the
//! database (`HMAC(key, org id ‖ key version)`), so a copy of the database signs nothing, and
//! bumping the organisation's key version rotates its secret.

use std::path::Path;
use std::time::Duration;

use cynex_model::time::{now_us, rfc3339_us};
use cynex_store::secret::{ct_eq, hex, KeyFile};
use cynex_store::{Alert, Delivery, DeliveryOutcome, Org, Store};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::{Error, Result};

type HmacSha256 = Hmac<Sha256>;

pub const SIGNATURE_HEADER: &str = "X-Cynex-Signature";
pub const EVENT_HEADER: &str = "X-Cynex-Event";
pub const DELIVERY_HEADER: &str = "X-Cynex-Delivery";

/// The server's webhook key: 32 random bytes in a file only the operator can read.
#[derive(Clone)]
pub struct WebhookKey(KeyFile);

impl WebhookKey {
    /// Read the key at `path`, creating it (mode 0600) on first use.
    pub fn load_or_create(path: &Path) -> Result<WebhookKey> {
        Ok(WebhookKey(KeyFile::load_or_create(path)?))
    }

    /// The organisation's current signing secret (what the member configures in its receiver).
    pub fn secret_for(&self, org: &Org) -> String {
        let mac = self.0.mac(format!("cynex-webhook-v1:{}:{}", org.id, org.webhook_key_version).as_bytes());
        format!("whsec_{}", hex(&mac))
    }
}

fn mac_hex(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex(&mac.finalize().into_bytes())
}

/// The signature header value for `body` sent at unix time `t`.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", mac_hex(secret, t, body))
}

/// Check a signature header as a receiver would: a `v1` matching in constant time, and a
/// timestamp within `tolerance_s` of `now_s`.
pub fn verify(secret: &str, header: &str, body: &[u8], now_s: i64, tolerance_s: i64) -> bool {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.push(v),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    if (now_s - t).abs() > tolerance_s {
        return false;
    }
    let want = mac_hex(secret, t, body);
    sigs.iter().any(|s| ct_eq(s.as_bytes(), want.as_bytes()))
}

#[derive(Debug, Clone)]
pub struct DeliverOptions {
    /// Attempts before a delivery is given up (marked `failed`, kept in the history).
    pub max_attempts: u32,
    /// Wait after the first failure; doubled after each further one.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Deliveries per pass.
    pub batch: i64,
}

impl Default for DeliverOptions {
    fn default() -> Self {
        DeliverOptions {
            max_attempts: 8,
            backoff_base: Duration::from_secs(30),
            backoff_max: Duration::from_secs(3600),
            timeout: Duration::from_secs(10),
            batch: 100,
        }
    }
}

impl DeliverOptions {
    /// When to try again after `attempts` failed attempts, or `None` to give up.
    pub fn next_attempt(&self, now: i64, attempts: u32) -> Option<i64> {
        if attempts >= self.max_attempts {
            return None;
        }
        let exp = self.backoff_base.saturating_mul(1u32 << (attempts.saturating_sub(1)).min(20));
        Some(now + exp.min(self.backoff_max).as_micros() as i64)
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliverReport {
    pub attempted: u64,
    pub delivered: u64,
    /// Failed this time, to be retried.
    pub retrying: u64,
    /// Failed for the last time.
    pub gave_up: u64,
}

/// The JSON body of a webhook call.
pub fn payload(d: &Delivery, org: &Org, alert: &Alert) -> serde_json::Value {
    json!({
        "event": d.event,
        "delivery_id": d.id,
        "organisation": org.name,
        "alert": {
            "id": alert.id,
            "kind": alert.kind,
            "subject": alert.subject,
            "summary": alert.summary,
            "first_seen": rfc3339_us(alert.first_seen),
            "last_seen": rfc3339_us(alert.last_seen),
            "findings": alert.findings,
            "packets": alert.packets,
            "evidence": alert.evidence,
            "status": alert.status,
        },
    })
}

/// Attempt every delivery that is due, once each, recording each outcome.
pub async fn deliver_due(store: &Store, key: &WebhookKey, opts: &DeliverOptions) -> Result<DeliverReport> {
    let client = reqwest::Client::builder()
        .timeout(opts.timeout)
        .user_agent(concat!("cynex/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Error::Invalid(format!("HTTP client: {e}")))?;
    let mut rep = DeliverReport::default();
    for d in store.due_deliveries(now_us(), opts.batch).await? {
        rep.attempted += 1;
        let org = store.org(&d.org_id).await?;
        let alert = store.alert(&d.alert_id, Some(&d.org_id)).await?;
        let body = serde_json::to_vec(&payload(&d, &org, &alert)).expect("JSON values serialise");
        let t = now_us() / 1_000_000;
        let sig = sign(&key.secret_for(&org), t, &body);
        let sent = client
            .post(&d.url)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, sig)
            .header(EVENT_HEADER, &d.event)
            .header(DELIVERY_HEADER, &d.id)
            .body(body)
            .send()
            .await;
        let outcome = match sent {
            Ok(r) if r.status().is_success() => DeliveryOutcome::Delivered { status: i64::from(r.status().as_u16()) },
            Ok(r) => failed(opts, &d, Some(i64::from(r.status().as_u16())), format!("HTTP {}", r.status())),
            Err(e) => failed(opts, &d, None, error_chain(&e)),
        };
        match &outcome {
            DeliveryOutcome::Delivered { .. } => rep.delivered += 1,
            DeliveryOutcome::Failed { next_attempt: Some(_), .. } => rep.retrying += 1,
            DeliveryOutcome::Failed { next_attempt: None, .. } => rep.gave_up += 1,
        }
        if let DeliveryOutcome::Failed { error, .. } = &outcome {
            tracing::warn!(delivery = %d.id, url = %d.url, attempt = d.attempts + 1, "webhook failed: {error}");
        }
        store.record_attempt(&d.id, &outcome).await?;
    }
    Ok(rep)
}

fn failed(opts: &DeliverOptions, d: &Delivery, status: Option<i64>, error: String) -> DeliveryOutcome {
    let attempts = u32::try_from(d.attempts + 1).unwrap_or(u32::MAX);
    DeliveryOutcome::Failed { status, error, next_attempt: opts.next_attempt(now_us(), attempts) }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_reject_tampering_and_replay() {
        let body = br#"{"event":"alert.created"}"#;
        let h = sign("whsec_abc", 1_700_000_000, body);
        assert!(verify("whsec_abc", &h, body, 1_700_000_100, 300));
        assert!(!verify("whsec_abd", &h, body, 1_700_000_100, 300), "wrong secret");
        assert!(!verify("whsec_abc", &h, br#"{"event":"alert.creatEd"}"#, 1_700_000_100, 300), "tampered body");
        assert!(!verify("whsec_abc", &h, body, 1_700_001_000, 300), "stale timestamp");
        assert!(!verify("whsec_abc", "v1=00", body, 1_700_000_000, 300), "no timestamp");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_then_gives_up() {
        let o = DeliverOptions {
            max_attempts: 4,
            backoff_base: Duration::from_secs(30),
            backoff_max: Duration::from_secs(100),
            ..Default::default()
        };
        let waits: Vec<Option<i64>> = (1..=4).map(|a| o.next_attempt(0, a).map(|t| t / 1_000_000)).collect();
        assert_eq!(waits, [Some(30), Some(60), Some(100), None]);
    }

    #[test]
    fn secrets_differ_per_org_and_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/webhook.key");
        let k = WebhookKey::load_or_create(&path).unwrap();
        let again = WebhookKey::load_or_create(&path).unwrap();
        let org = |id: &str, v| Org {
            id: id.into(),
            name: id.into(),
            kind: cynex_store::OrgKind::Member,
            created: 0,
            webhook_url: None,
            webhook_key_version: v,
        };
        assert_eq!(k.secret_for(&org("a", 0)), again.secret_for(&org("a", 0)), "the key persists");
        assert_ne!(k.secret_for(&org("a", 0)), k.secret_for(&org("b", 0)));
        assert_ne!(k.secret_for(&org("a", 0)), k.secret_for(&org("a", 1)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
