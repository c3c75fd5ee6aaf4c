//! Taking objects into the hub, whoever sends them (a member over TAXII, a feed, the publisher):
//! validate each, decide its access (TLP, owner, audience) and hand the versions to the store.
//!
//! Access decisions, beyond [`cynex_store`]'s rule:
//! - the TLP is the most restrictive TLP marking on the object, else the collection's default;
//!   official TLP marking definitions are accepted and not stored, home-made ones are refused;
//! - an AMBER object may name the organisations it is shared with in `x_cynex_share_with` (names
//!   or ids), a RED one the users in `x_cynex_share_with_users`; unknown names are refused;
//! - a sighting without a TLP marking is AMBER, and an AMBER sighting is also shared with the
//!   organisation that produced what was sighted (MISP's "event owner sees sightings" policy), so
//!   a member reporting a sighting of the nexus's indicator reaches the nexus and nobody else.

use cynex_store::{AddOutcome, IntelCollection, NewObject, OrgKind, Principal, Role, Store, Tlp};
use serde_json::Value;

use crate::stix::canonical::canonical;
use crate::stix::time::parse_timestamp;
use crate::stix::{describe, Category, Object};
use crate::{tlp, Error, Result};

/// Name of the nexus operator's organisation when none exists yet.
pub const DEFAULT_OPERATOR: &str = "nexus";
/// Custom property naming the organisations an AMBER object is shared with.
pub const SHARE_WITH: &str = "x_cynex_share_with";
/// Custom property naming the users a RED object is shared with.
pub const SHARE_WITH_USERS: &str = "x_cynex_share_with_users";

/// What became of one submitted object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectResult {
    /// The object's id and version as submitted (empty when it had none).
    pub id: String,
    pub version: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Added {
        date_added: i64,
    },
    /// Already held exactly like this, or an official TLP marking (known to everyone).
    Unchanged {
        date_added: Option<i64>,
    },
    Refused(String),
}

impl ObjectResult {
    pub fn ok(&self) -> bool {
        !matches!(self.outcome, Outcome::Refused(_))
    }
}

/// The intelligence hub over a metadata store.
#[derive(Debug, Clone)]
pub struct Hub {
    pub store: Store,
}

impl Hub {
    pub fn new(store: Store) -> Hub {
        Hub { store }
    }

    /// The operator's organisation, created (as `nexus`) on first use.
    pub async fn operator_org(&self) -> Result<cynex_store::Org> {
        if let Some(o) = self.store.orgs().await?.into_iter().find(|o| o.kind == OrgKind::Operator) {
            return Ok(o);
        }
        match self.store.add_org_of_kind(DEFAULT_OPERATOR, OrgKind::Operator).await {
            Ok(o) => Ok(o),
            Err(cynex_store::Error::Exists { .. }) => {
                let o = self.store.org(DEFAULT_OPERATOR).await?;
                if o.kind != OrgKind::Operator {
                    return Err(Error::Invalid(format!(
                        "organisation {DEFAULT_OPERATOR:?} exists as a member; create the operator's organisation with \
                         `cynex org add NAME --operator`"
                    )));
                }
                Ok(o)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The principal the nexus itself acts as (publishing, feeds): the operator organisation,
    /// with no user of its own (so it is named on no RED object).
    pub async fn system_principal(&self) -> Result<Principal> {
        let o = self.operator_org().await?;
        Ok(Principal {
            user_id: "system".into(),
            user: "cynex".into(),
            org_id: o.id,
            org: o.name,
            org_kind: OrgKind::Operator,
            role: Role::Admin,
        })
    }

    /// Validate and store `objects` from `who` into `coll`, one result per object in order. The
    /// caller has checked that `who` may write to `coll`.
    pub async fn submit(
        &self,
        who: &Principal,
        coll: &IntelCollection,
        objects: Vec<Value>,
    ) -> Result<Vec<ObjectResult>> {
        let mut results: Vec<Option<ObjectResult>> = Vec::with_capacity(objects.len());
        let mut batch = Vec::new();
        let mut slots = Vec::new();
        for v in objects {
            let id = v.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
            let version =
                v.get("modified").or_else(|| v.get("created")).and_then(Value::as_str).unwrap_or_default().to_string();
            match self.prepare(who, coll, v).await {
                Ok(Some(n)) => {
                    slots.push(results.len());
                    results.push(None);
                    batch.push((id, version, n));
                }
                Ok(None) => {
                    results.push(Some(ObjectResult { id, version, outcome: Outcome::Unchanged { date_added: None } }))
                }
                Err(msg) => results.push(Some(ObjectResult { id, version, outcome: Outcome::Refused(msg) })),
            }
        }
        let news: Vec<NewObject> = batch.iter().map(|(_, _, n)| n.clone()).collect();
        let outcomes = if news.is_empty() { Vec::new() } else { self.store.add_objects(&coll.id, &news).await? };
        for ((slot, (id, version, _)), o) in slots.into_iter().zip(batch).zip(outcomes) {
            let outcome = match o {
                AddOutcome::Added { date_added } => Outcome::Added { date_added },
                AddOutcome::Duplicate { date_added } => Outcome::Unchanged { date_added: Some(date_added) },
                AddOutcome::Refused(m) => Outcome::Refused(m),
            };
            results[slot] = Some(ObjectResult { id, version, outcome });
        }
        Ok(results.into_iter().map(|r| r.expect("every slot filled")).collect())
    }

    /// One object ready for the store, `None` for an official TLP marking, or why it is refused.
    async fn prepare(
        &self,
        who: &Principal,
        coll: &IntelCollection,
        v: Value,
    ) -> std::result::Result<Option<NewObject>, String> {
        let o = Object::new(v).map_err(|p| describe(&p))?;
        if o.type_() == "marking-definition" {
            tlp::check_marking_definition(&o)?;
            if tlp::is_official(o.id()) {
                return Ok(None);
            }
        }
        let mut level = tlp::effective(&o).unwrap_or(coll.default_tlp);
        if o.type_() == "sighting" && tlp::effective(&o).is_none() {
            level = Tlp::Amber;
        }
        let mut audience_orgs = Vec::new();
        if let Some(names) = o.map().get(SHARE_WITH) {
            let names =
                names.as_array().ok_or_else(|| format!("{SHARE_WITH}: must be a list of organisation names"))?;
            for n in names {
                let n = n.as_str().ok_or_else(|| format!("{SHARE_WITH}: must be a list of organisation names"))?;
                let org = self.store.org(n).await.map_err(|_| format!("{SHARE_WITH}: no organisation {n:?}"))?;
                audience_orgs.push(org.id);
            }
        }
        if o.type_() == "sighting" && level == Tlp::Amber {
            if let Some(target) = o.str("sighting_of_ref") {
                if let Some(owner) = self.store.object_owner(target).await.map_err(|e| e.to_string())? {
                    audience_orgs.push(owner);
                }
            }
        }
        let mut audience_users = Vec::new();
        if let Some(names) = o.map().get(SHARE_WITH_USERS) {
            let names = names.as_array().ok_or_else(|| format!("{SHARE_WITH_USERS}: must be a list of user names"))?;
            for n in names {
                let n = n.as_str().ok_or_else(|| format!("{SHARE_WITH_USERS}: must be a list of user names"))?;
                let u = self.store.user(n).await.map_err(|_| format!("{SHARE_WITH_USERS}: no user {n:?}"))?;
                audience_users.push(u.id);
            }
        }
        audience_orgs.sort();
        audience_orgs.dedup();
        let versioned = match o.category() {
            Category::Sdo | Category::Sro | Category::Meta => true,
            Category::Custom => o.map().contains_key("created"),
            Category::Sco => false,
        };
        let version = if versioned { o.version().unwrap_or_default().to_string() } else { String::new() };
        let version_us = parse_timestamp(&version).unwrap_or(0);
        Ok(Some(NewObject {
            id: o.id().to_string(),
            type_: o.type_().to_string(),
            spec_version: o.spec_version().to_string(),
            version,
            version_us,
            tlp: level,
            owner_org: who.org_id.clone(),
            owner_user: Some(who.user_id.clone()),
            audience_orgs,
            audience_users,
            refs: o.refs(),
            values: o.values(),
            body: canonical(&o.into_value()),
        }))
    }
}
