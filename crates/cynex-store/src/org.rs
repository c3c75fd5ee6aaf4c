//! Member organisations and the address space they register.

use cynex_model::ip::Ipv4Net;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{exists_or, new_id, now_us, opt_string, Error, Result, Store};

/// A member organisation, or the nexus operator itself (whose users are admins and analysts and
/// whose intelligence is the nexus's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OrgKind {
    Member,
    Operator,
}

impl OrgKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OrgKind::Member => "member",
            OrgKind::Operator => "operator",
        }
    }

    fn parse(s: &str) -> Result<OrgKind> {
        match s {
            "member" => Ok(OrgKind::Member),
            "operator" => Ok(OrgKind::Operator),
            _ => Err(Error::Invalid(format!("stored organisation kind {s:?}"))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub kind: OrgKind,
    pub created: i64,
    /// Where alerts are POSTed, if the member gave an endpoint.
    pub webhook_url: Option<String>,
    /// Bumped to rotate the webhook signing secret (derived from a key outside the database).
    pub webhook_key_version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgPrefix {
    pub org_id: String,
    pub org: String,
    pub prefix: Ipv4Net,
}

fn org_of(r: &AnyRow) -> Result<Org> {
    Ok(Org {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        kind: OrgKind::parse(&r.try_get::<String, _>("kind")?)?,
        created: r.try_get("created")?,
        webhook_url: opt_string(r, "webhook_url")?,
        webhook_key_version: r.try_get("webhook_key_version")?,
    })
}

const ORG_COLS: &str = "id, name, kind, created, webhook_url, webhook_key_version";

/// Organisation and user names are short identifiers: they appear in URLs, alerts and file names.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Store {
    pub async fn add_org(&self, name: &str) -> Result<Org> {
        self.add_org_of_kind(name, OrgKind::Member).await
    }

    pub async fn add_org_of_kind(&self, name: &str, kind: OrgKind) -> Result<Org> {
        if !valid_name(name) {
            return Err(Error::Invalid(format!(
                "organisation name {name:?}: use 1-64 characters from A-Z a-z 0-9 - _ ."
            )));
        }
        let org = Org {
            id: new_id(),
            name: name.to_string(),
            kind,
            created: now_us(),
            webhook_url: None,
            webhook_key_version: 0,
        };
        sqlx::query("INSERT INTO orgs (id, name, kind, created, webhook_key_version) VALUES ($1, $2, $3, $4, 0)")
            .bind(&org.id)
            .bind(&org.name)
            .bind(kind.as_str())
            .bind(org.created)
            .execute(&self.pool)
            .await
            .map_err(|e| exists_or(e, "organisation", name))?;
        Ok(org)
    }

    pub async fn orgs(&self) -> Result<Vec<Org>> {
        let rows = sqlx::query(&format!("SELECT {ORG_COLS} FROM orgs ORDER BY name")).fetch_all(&self.pool).await?;
        rows.iter().map(org_of).collect()
    }

    /// An organisation by name or id.
    pub async fn org(&self, name_or_id: &str) -> Result<Org> {
        let row = sqlx::query(&format!("SELECT {ORG_COLS} FROM orgs WHERE name = $1 OR id = $1"))
            .bind(name_or_id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => org_of(&r),
            None => Err(Error::NotFound { what: "organisation", name: name_or_id.to_string() }),
        }
    }

    pub async fn remove_org(&self, name_or_id: &str) -> Result<()> {
        let org = self.org(name_or_id).await?;
        sqlx::query("DELETE FROM orgs WHERE id = $1").bind(&org.id).execute(&self.pool).await?;
        Ok(())
    }

    /// Set (or clear) the webhook endpoint. `rotate` bumps the key version, so the signing secret
    /// changes and the old one stops verifying.
    pub async fn set_webhook(&self, name_or_id: &str, url: Option<&str>, rotate: bool) -> Result<Org> {
        if let Some(u) = url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(Error::Invalid(format!("webhook URL {u:?}: expected http:// or https://")));
            }
        }
        let org = self.org(name_or_id).await?;
        sqlx::query("UPDATE orgs SET webhook_url = $1, webhook_key_version = webhook_key_version + $2 WHERE id = $3")
            .bind(url.map(str::to_string))
            .bind(i64::from(rotate))
            .bind(&org.id)
            .execute(&self.pool)
            .await?;
        self.org(&org.id).await
    }

    /// Register `prefix` as the organisation's address space. Adding it again is a no-op.
    pub async fn add_prefix(&self, org: &str, prefix: Ipv4Net) -> Result<OrgPrefix> {
        let o = self.org(org).await?;
        let last = u64::from(prefix.addr) + prefix.size() - 1;
        sqlx::query(
            "INSERT INTO org_prefixes (org_id, prefix, first_ip, last_ip, created) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (org_id, prefix) DO NOTHING",
        )
        .bind(&o.id)
        .bind(prefix.to_string())
        .bind(i64::from(prefix.addr))
        .bind(last as i64)
        .bind(now_us())
        .execute(&self.pool)
        .await?;
        Ok(OrgPrefix { org_id: o.id, org: o.name, prefix })
    }

    pub async fn remove_prefix(&self, org: &str, prefix: Ipv4Net) -> Result<()> {
        let o = self.org(org).await?;
        let done = sqlx::query("DELETE FROM org_prefixes WHERE org_id = $1 AND prefix = $2")
            .bind(&o.id)
            .bind(prefix.to_string())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound { what: "prefix", name: format!("{prefix} of {}", o.name) });
        }
        Ok(())
    }

    /// Registered prefixes, of one organisation or of all.
    pub async fn prefixes(&self, org: Option<&str>) -> Result<Vec<OrgPrefix>> {
        let org_id = match org {
            Some(o) => Some(self.org(o).await?.id),
            None => None,
        };
        let rows = sqlx::query(
            "SELECT p.org_id, o.name, p.prefix FROM org_prefixes p JOIN orgs o ON o.id = p.org_id
             WHERE $1 IS NULL OR p.org_id = $1 ORDER BY o.name, p.first_ip",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let text: String = r.try_get("prefix")?;
                Ok(OrgPrefix {
                    org_id: r.try_get("org_id")?,
                    org: r.try_get("name")?,
                    prefix: text.parse().map_err(|e| Error::Invalid(format!("stored prefix {text:?}: {e}")))?,
                })
            })
            .collect()
    }
}
