//! Pulling an external TAXII 2.1 collection: page after page while `more` is true (following
//! `next`, or `added_after` = the last page's `X-TAXII-Date-Added-Last` when the server gives no
//! `next`), no sleeping between pages (OpenCTI #7358), the resume point saved after each page so
//! an interrupted pull continues where it stopped, and every object validated and stored through
//! the hub like any other submission.

use std::time::Duration;

use cynex_store::{IntelCollection, Principal};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::hub::{Hub, Outcome};
use crate::taxii::MEDIA_TYPE;
use crate::{Error, Result};

/// Where and how to pull from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxiiSource {
    /// The collection's URL, `https://host/api-root/collections/<id>/`.
    pub url: String,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
    /// Objects per request.
    #[serde(default = "default_page")]
    pub page: usize,
    /// Accept a self-signed certificate (a test peer); never for real feeds.
    #[serde(default)]
    pub insecure: bool,
}

fn default_page() -> usize {
    500
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct PullReport {
    pub pages: u64,
    pub objects: u64,
    pub added: u64,
    pub unchanged: u64,
    pub refused: u64,
    /// The newest `date_added` received (TAXII timestamp text): where the next pull resumes.
    pub cursor: Option<String>,
}

/// Pull everything added after `cursor` into `into`, as `owner`; `save` is called with the
/// resume point after each page is stored.
pub async fn pull<F, Fut>(
    hub: &Hub,
    feed: &str,
    src: &TaxiiSource,
    into: &IntelCollection,
    owner: &Principal,
    cursor: Option<String>,
    mut save: F,
) -> Result<PullReport>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let fail = |reason: String| Error::Feed { feed: feed.into(), reason };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .danger_accept_invalid_certs(src.insecure)
        .user_agent(concat!("cynex/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| fail(format!("HTTP client: {e}")))?;
    let base = if src.url.ends_with('/') { src.url.clone() } else { format!("{}/", src.url) };
    let mut rep = PullReport { cursor: cursor.clone(), ..Default::default() };
    let mut added_after = cursor;
    let mut next: Option<String> = None;
    loop {
        let mut q: Vec<(&str, String)> = vec![("limit", src.page.max(1).to_string())];
        if let Some(a) = &added_after {
            q.push(("added_after", a.clone()));
        }
        if let Some(n) = &next {
            q.push(("next", n.clone()));
        }
        let mut req = client.get(format!("{base}objects/")).query(&q).header("Accept", MEDIA_TYPE);
        if let Some(t) = &src.token {
            req = req.bearer_auth(t);
        } else if let Some(u) = &src.user {
            req = req.basic_auth(u, src.password.as_deref());
        }
        let resp = req.send().await.map_err(|e| fail(format!("GET {base}objects/: {e}")))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(fail(format!(
                "GET {base}objects/: HTTP {status}: {}",
                body.chars().take(300).collect::<String>()
            )));
        }
        let last_header =
            resp.headers().get("X-TAXII-Date-Added-Last").and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = resp.bytes().await.map_err(|e| fail(format!("reading the envelope: {e}")))?;
        let env: Value = serde_json::from_slice(&body).map_err(|e| fail(format!("envelope: {e}")))?;
        let objects = env.get("objects").and_then(Value::as_array).cloned().unwrap_or_default();
        rep.pages += 1;
        rep.objects += objects.len() as u64;
        if !objects.is_empty() {
            for r in hub.submit(owner, into, objects).await? {
                match r.outcome {
                    Outcome::Added { .. } => rep.added += 1,
                    Outcome::Unchanged { .. } => rep.unchanged += 1,
                    Outcome::Refused(m) => {
                        rep.refused += 1;
                        tracing::warn!(feed, id = %r.id, reason = %m, "feed object refused");
                    }
                }
            }
        }
        if let Some(l) = &last_header {
            rep.cursor = Some(l.clone());
            save(l.clone()).await?;
        }
        let more = env.get("more").and_then(Value::as_bool).unwrap_or(false);
        if !more {
            break;
        }
        match env.get("next").and_then(Value::as_str) {
            Some(n) => next = Some(n.to_string()),
            None => {
                // §3.5: without next, continue from the last date of this page.
                let Some(l) = last_header else {
                    return Err(fail(
                        "more is true but the server gave neither next nor X-TAXII-Date-Added-Last".into(),
                    ));
                };
                if added_after.as_deref() == Some(l.as_str()) {
                    return Err(fail(format!("the server repeats the page after {l}: stopping rather than looping")));
                }
                added_after = Some(l);
                next = None;
            }
        }
    }
    Ok(rep)
}
