//! Watches (CURE's "Watcher"): a member subscribes to an address, a prefix, a port or a tag and is
//! alerted when it appears in new findings.

use std::fmt;
use std::str::FromStr;

use cynex_model::ip::Ipv4Net;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{exists_or, new_id, now_us, Error, Result, Store};

/// What a watch matches in a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum WatchKind {
    /// The finding's address (a source, or a victim) is inside this block (a /32 for one address).
    Prefix(Ipv4Net),
    /// The finding concerns this port, for one protocol number or any (`None`).
    Port { port: u16, proto: Option<u8> },
    /// The finding carries this tag: its kind (`scan`, `backscatter`, …), tool (`mirai`, …) or
    /// research-scanner label, compared case-insensitively.
    Tag(String),
}

impl WatchKind {
    fn kind(&self) -> &'static str {
        match self {
            WatchKind::Prefix(_) => "prefix",
            WatchKind::Port { .. } => "port",
            WatchKind::Tag(_) => "tag",
        }
    }

    fn value(&self) -> String {
        match self {
            WatchKind::Prefix(p) => p.to_string(),
            WatchKind::Port { port, proto: None } => port.to_string(),
            WatchKind::Port { port, proto: Some(6) } => format!("{port}/tcp"),
            WatchKind::Port { port, proto: Some(17) } => format!("{port}/udp"),
            WatchKind::Port { port, proto: Some(p) } => format!("{port}/{p}"),
            WatchKind::Tag(t) => t.clone(),
        }
    }

    pub fn parse(kind: &str, value: &str) -> Result<WatchKind> {
        match kind {
            "ip" | "prefix" => {
                value.parse().map(WatchKind::Prefix).map_err(|e| Error::Invalid(format!("watch {kind} {value:?}: {e}")))
            }
            "port" => {
                let (p, proto) = value.split_once('/').unwrap_or((value, ""));
                let port = p.parse().map_err(|_| Error::Invalid(format!("watch port {value:?}: bad port number")))?;
                let proto = match proto.to_ascii_lowercase().as_str() {
                    "" => None,
                    "tcp" => Some(6),
                    "udp" => Some(17),
                    n => Some(n.parse().map_err(|_| {
                        Error::Invalid(format!("watch port {value:?}: protocol must be tcp, udp or a number"))
                    })?),
                };
                Ok(WatchKind::Port { port, proto })
            }
            "tag" => {
                let t = value.trim().to_ascii_lowercase();
                if t.is_empty() || t.len() > 64 {
                    return Err(Error::Invalid(format!("watch tag {value:?}: 1-64 characters")));
                }
                Ok(WatchKind::Tag(t))
            }
            _ => Err(Error::Invalid(format!("watch kind {kind:?}: expected ip, prefix, port or tag"))),
        }
    }
}

impl fmt::Display for WatchKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind(), self.value())
    }
}

impl FromStr for WatchKind {
    type Err = Error;
    /// `KIND:VALUE`, e.g. `port:23/tcp`, `prefix:192.0.2.0/24`, `tag:mirai`.
    fn from_str(s: &str) -> Result<Self> {
        let (k, v) = s
            .split_once(':')
            .ok_or_else(|| Error::Invalid(format!("watch {s:?}: expected KIND:VALUE (ip, prefix, port or tag)")))?;
        WatchKind::parse(k, v)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Watch {
    pub id: String,
    pub org_id: String,
    pub org: String,
    #[serde(flatten)]
    pub what: WatchKind,
    pub created: i64,
}

fn watch_of(r: &AnyRow) -> Result<Watch> {
    let kind: String = r.try_get("kind")?;
    let value: String = r.try_get("value")?;
    Ok(Watch {
        id: r.try_get("id")?,
        org_id: r.try_get("org_id")?,
        org: r.try_get("name")?,
        what: WatchKind::parse(&kind, &value)?,
        created: r.try_get("created")?,
    })
}

impl Store {
    pub async fn add_watch(&self, org: &str, what: WatchKind) -> Result<Watch> {
        let o = self.org(org).await?;
        let w = Watch { id: new_id(), org_id: o.id, org: o.name, what, created: now_us() };
        sqlx::query("INSERT INTO watches (id, org_id, kind, value, created) VALUES ($1, $2, $3, $4, $5)")
            .bind(&w.id)
            .bind(&w.org_id)
            .bind(w.what.kind())
            .bind(w.what.value())
            .bind(w.created)
            .execute(&self.pool)
            .await
            .map_err(|e| exists_or(e, "watch", &w.what.to_string()))?;
        Ok(w)
    }

    /// Watches of one organisation, or of all.
    pub async fn watches(&self, org: Option<&str>) -> Result<Vec<Watch>> {
        let org_id = match org {
            Some(o) => Some(self.org(o).await?.id),
            None => None,
        };
        let rows = sqlx::query(
            "SELECT w.id, w.org_id, o.name, w.kind, w.value, w.created FROM watches w JOIN orgs o ON o.id = w.org_id
             WHERE $1 IS NULL OR w.org_id = $1 ORDER BY o.name, w.created",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(watch_of).collect()
    }

    /// Remove a watch; with `org`, only if it belongs to that organisation.
    pub async fn remove_watch(&self, id: &str, org: Option<&str>) -> Result<()> {
        let org_id = match org {
            Some(o) => Some(self.org(o).await?.id),
            None => None,
        };
        let done = sqlx::query("DELETE FROM watches WHERE id = $1 AND ($2 IS NULL OR org_id = $2)")
            .bind(id)
            .bind(org_id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound { what: "watch", name: id.to_string() });
        }
        Ok(())
    }
}
