//! The intelligence store: STIX object versions in TAXII collections, and the access rule that
//! decides who sees which of them, applied inside every query (so paging, `more`, counts and
//! versions are computed over what the viewer may see, never over what exists).
//!
//! Each stored version has an owner organisation (whose intelligence it is), an effective TLP
//! (the most restrictive TLP marking on it), and for AMBER and RED an audience of named
//! organisations or users. The rule, TLP 2.0 as ../shared/reference/intel.md §4 maps it to a hub:
//!
//! | TLP          | visible to                                                           |
//! |--------------|----------------------------------------------------------------------|
//! | CLEAR        | anyone, anonymous readers of public collections included              |
//! | GREEN        | every authenticated user (the community), never anonymous             |
//! | AMBER        | the owner organisation and the organisations it names                 |
//! | AMBER+STRICT | the owner organisation only                                           |
//! | RED          | the user who posted it and the users it names                         |
//!
//! and on top of it, the collection's read access (public, members, operator). A relationship or
//! sighting is hidden from a viewer who cannot see an object it points to that the hub holds
//! (`stix_refs`), so no edge reveals a hidden node.
//!
//! `date_added` comes from one clock row taken under a row lock: unique and strictly increasing
//! in commit order, so `added_after` paging can neither loop nor skip.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::{now_us, Error, Result, Store};

/// Traffic Light Protocol 2.0 levels, ordered from least to most restrictive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Tlp {
    #[serde(rename = "clear")]
    Clear,
    #[serde(rename = "green")]
    Green,
    #[serde(rename = "amber")]
    Amber,
    #[serde(rename = "amber+strict")]
    AmberStrict,
    #[serde(rename = "red")]
    Red,
}

impl Tlp {
    pub const ALL: [Tlp; 5] = [Tlp::Clear, Tlp::Green, Tlp::Amber, Tlp::AmberStrict, Tlp::Red];

    pub fn as_str(self) -> &'static str {
        match self {
            Tlp::Clear => "clear",
            Tlp::Green => "green",
            Tlp::Amber => "amber",
            Tlp::AmberStrict => "amber+strict",
            Tlp::Red => "red",
        }
    }
}

impl fmt::Display for Tlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TLP:{}", self.as_str().to_ascii_uppercase())
    }
}

impl FromStr for Tlp {
    type Err = Error;
    fn from_str(s: &str) -> Result<Tlp> {
        let l = s.trim().to_ascii_lowercase();
        let l = l.strip_prefix("tlp:").unwrap_or(&l);
        match l {
            "clear" | "white" => Ok(Tlp::Clear),
            "green" => Ok(Tlp::Green),
            "amber" => Ok(Tlp::Amber),
            "amber+strict" => Ok(Tlp::AmberStrict),
            "red" => Ok(Tlp::Red),
            _ => Err(Error::Invalid(format!("TLP {s:?}: expected clear, green, amber, amber+strict or red"))),
        }
    }
}

/// Who reads: nobody (anonymous), or a user of an organisation, possibly of the operator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Viewer {
    pub org_id: Option<String>,
    pub user_id: Option<String>,
    /// An admin or analyst of the nexus operator (reads `operator` collections).
    pub operator: bool,
}

impl Viewer {
    pub fn anonymous() -> Viewer {
        Viewer::default()
    }
}

/// Who may read, or write, a collection (before the TLP rule is applied to each object).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CollectionAccess {
    /// Anyone, without credentials (reads only; only CLEAR objects are visible anonymously).
    Public,
    /// Any authenticated user.
    Members,
    /// Admins and analysts of the operator.
    Operator,
    Nobody,
}

impl CollectionAccess {
    pub fn as_str(self) -> &'static str {
        match self {
            CollectionAccess::Public => "public",
            CollectionAccess::Members => "members",
            CollectionAccess::Operator => "operator",
            CollectionAccess::Nobody => "nobody",
        }
    }

    pub fn allows(self, v: &Viewer) -> bool {
        match self {
            CollectionAccess::Public => true,
            CollectionAccess::Members => v.org_id.is_some(),
            CollectionAccess::Operator => v.operator,
            CollectionAccess::Nobody => false,
        }
    }
}

impl FromStr for CollectionAccess {
    type Err = Error;
    fn from_str(s: &str) -> Result<CollectionAccess> {
        match s {
            "public" => Ok(CollectionAccess::Public),
            "members" => Ok(CollectionAccess::Members),
            "operator" => Ok(CollectionAccess::Operator),
            "nobody" => Ok(CollectionAccess::Nobody),
            _ => Err(Error::Invalid(format!("collection access {s:?}: expected public, members, operator or nobody"))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntelCollection {
    pub id: String,
    pub alias: String,
    pub title: String,
    pub description: String,
    pub read: CollectionAccess,
    pub write: CollectionAccess,
    /// The TLP of objects posted here without a TLP marking.
    pub default_tlp: Tlp,
    pub created: i64,
}

impl IntelCollection {
    pub fn can_read(&self, v: &Viewer) -> bool {
        self.read.allows(v)
    }

    pub fn can_write(&self, v: &Viewer) -> bool {
        self.write != CollectionAccess::Public && self.write.allows(v)
    }
}

fn collection_of(r: &AnyRow) -> Result<IntelCollection> {
    Ok(IntelCollection {
        id: r.try_get("id")?,
        alias: r.try_get("alias")?,
        title: r.try_get("title")?,
        description: r.try_get("description")?,
        read: r.try_get::<String, _>("read_access")?.parse()?,
        write: r.try_get::<String, _>("write_access")?.parse()?,
        default_tlp: r.try_get::<String, _>("default_tlp")?.parse()?,
        created: r.try_get("created")?,
    })
}

const COLLECTION_COLS: &str = "id, alias, title, description, read_access, write_access, default_tlp, created";

/// One object version to store, already validated and with its access decided.
#[derive(Debug, Clone)]
pub struct NewObject {
    pub id: String,
    pub type_: String,
    pub spec_version: String,
    /// `modified` (or `created`) as written; empty for objects that have neither (SCOs).
    pub version: String,
    /// `version` in µs, for ordering versions (0 when empty).
    pub version_us: i64,
    pub tlp: Tlp,
    pub owner_org: String,
    pub owner_user: Option<String>,
    /// Organisation ids an AMBER object is shared with, beyond its owner.
    pub audience_orgs: Vec<String>,
    /// User ids a RED object is shared with, beyond the user who posted it.
    pub audience_users: Vec<String>,
    /// Ids of the objects this one points to (for relationships and sightings).
    pub refs: Vec<String>,
    /// Normalised observable values it mentions (the correlation index).
    pub values: Vec<String>,
    /// The object's canonical JSON.
    pub body: String,
}

impl NewObject {
    /// SDOs, SROs and marking definitions have versions; only their producer may add one.
    fn versioned(&self) -> bool {
        !self.version.is_empty()
    }
}

/// What became of one object of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    Added {
        date_added: i64,
    },
    /// This exact version was already in the collection (not an error, TAXII 2.1 §5.4).
    Duplicate {
        date_added: i64,
    },
    Refused(String),
}

/// Which versions of each object a query returns (TAXII `match[version]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionFilter {
    pub last: bool,
    pub first: bool,
    pub all: bool,
    pub exact: Vec<String>,
}

impl Default for VersionFilter {
    /// The latest version only: TAXII's default.
    fn default() -> Self {
        VersionFilter { last: true, first: false, all: false, exact: Vec::new() }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ObjectQuery {
    pub collection_id: String,
    /// Only objects added strictly after this (µs).
    pub after: Option<i64>,
    pub ids: Vec<String>,
    pub types: Vec<String>,
    pub versions: VersionFilter,
    pub spec_versions: Vec<String>,
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectMeta {
    pub collection_id: String,
    pub date_added: i64,
    pub id: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub spec_version: String,
    pub version: String,
    pub tlp: Tlp,
    pub owner_org: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub meta: ObjectMeta,
    pub body: String,
}

/// A page of results and whether more lie beyond it (computed after the access rule).
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub more: bool,
}

fn meta_of(r: &AnyRow) -> Result<ObjectMeta> {
    Ok(ObjectMeta {
        collection_id: r.try_get("collection_id")?,
        date_added: r.try_get("date_added")?,
        id: r.try_get("id")?,
        type_: r.try_get("type")?,
        spec_version: r.try_get("spec_version")?,
        version: r.try_get("version")?,
        tlp: r.try_get::<String, _>("tlp")?.parse()?,
        owner_org: r.try_get("owner_org")?,
    })
}

/// Query text with positional parameters (`$1`, `$2`, …) pushed as they are written, so the same
/// predicate can appear several times in one statement on both engines.
#[derive(Default)]
struct Sql {
    text: String,
    args: Vec<Arg>,
}

enum Arg {
    Text(Option<String>),
    Int(i64),
}

impl Sql {
    fn text(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    fn arg_text(&mut self, v: Option<&str>) -> &mut Self {
        self.args.push(Arg::Text(v.map(str::to_string)));
        self.text.push_str(&format!("CAST(${} AS TEXT)", self.args.len()));
        self
    }

    fn arg_int(&mut self, v: i64) -> &mut Self {
        self.args.push(Arg::Int(v));
        self.text.push_str(&format!("${}", self.args.len()));
        self
    }

    fn in_list(&mut self, column: &str, values: &[String]) -> &mut Self {
        self.text(" AND ").text(column).text(" IN (");
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.text(", ");
            }
            self.arg_text(Some(v));
        }
        self.text(")")
    }

    /// The TLP rule for the object row `o` and viewer `v` (see the module doc).
    fn visible(&mut self, o: &str, v: &Viewer) -> &mut Self {
        let org = v.org_id.as_deref();
        let user = v.user_id.as_deref();
        self.text(&format!("({o}.tlp = 'clear' OR ({o}.tlp = 'green' AND ")).arg_text(org).text(" IS NOT NULL)");
        self.text(&format!(" OR ({o}.tlp IN ('amber', 'amber+strict') AND {o}.owner_org = ")).arg_text(org).text(")");
        self.text(&format!(
            " OR ({o}.tlp = 'amber' AND EXISTS (SELECT 1 FROM stix_audience a WHERE a.collection_id = {o}.collection_id \
             AND a.date_added = {o}.date_added AND a.kind = 'org' AND a.principal = "
        ))
        .arg_text(org)
        .text("))");
        self.text(&format!(" OR ({o}.tlp = 'red' AND ({o}.owner_user = ")).arg_text(user);
        self.text(&format!(
            " OR EXISTS (SELECT 1 FROM stix_audience a WHERE a.collection_id = {o}.collection_id \
             AND a.date_added = {o}.date_added AND a.kind = 'user' AND a.principal = "
        ))
        .arg_text(user)
        .text("))))")
    }

    /// The viewer may read collection row `c`.
    fn readable(&mut self, c: &str, v: &Viewer) -> &mut Self {
        self.text(&format!("({c}.read_access = 'public' OR ({c}.read_access = 'members' AND "))
            .arg_text(v.org_id.as_deref())
            .text(&format!(" IS NOT NULL) OR ({c}.read_access = 'operator' AND "))
            .arg_int(i64::from(v.operator))
            .text(" = 1))")
    }

    /// No object that row `o` points to is held by the hub and hidden from the viewer.
    fn refs_visible(&mut self, o: &str, v: &Viewer) -> &mut Self {
        self.text(&format!(
            "NOT EXISTS (SELECT 1 FROM stix_refs r WHERE r.collection_id = {o}.collection_id \
             AND r.date_added = {o}.date_added AND EXISTS (SELECT 1 FROM stix_objects h WHERE h.id = r.ref_id) \
             AND NOT EXISTS (SELECT 1 FROM stix_objects t JOIN collections tc ON tc.id = t.collection_id \
             WHERE t.id = r.ref_id AND "
        ));
        self.readable("tc", v).text(" AND ").visible("t", v).text("))")
    }

    /// Row `o` may be shown: TLP and references.
    fn shown(&mut self, o: &str, v: &Viewer) -> &mut Self {
        self.visible(o, v).text(" AND ").refs_visible(o, v)
    }

    /// Row `o` is the newest (`newer = true`) or oldest shown version of its object.
    fn extreme_version(&mut self, o: &str, v: &Viewer, newest: bool) -> &mut Self {
        let (cmp, eq) = if newest { (">", ">=") } else { ("<", "<=") };
        // The bound on version_us comes first and alone, so both engines search the
        // (collection_id, id, version_us) index; an OR at the top made SQLite scan every earlier
        // object of the collection for each row (pages got slower with depth).
        self.text(&format!(
            "NOT EXISTS (SELECT 1 FROM stix_objects n WHERE n.collection_id = {o}.collection_id AND n.id = {o}.id \
             AND n.version_us {eq} {o}.version_us \
             AND (n.version_us {cmp} {o}.version_us OR n.date_added < {o}.date_added) AND "
        ));
        self.shown("n", v).text(")")
    }

    fn version_filter(&mut self, o: &str, v: &Viewer, f: &VersionFilter) -> &mut Self {
        if f.all {
            return self;
        }
        self.text(" AND (1 = 0");
        if f.last {
            self.text(" OR ").extreme_version(o, v, true);
        }
        if f.first {
            self.text(" OR ").extreme_version(o, v, false);
        }
        if !f.exact.is_empty() {
            self.text(&format!(" OR ({o}.version IN ("));
            for (i, x) in f.exact.iter().enumerate() {
                if i > 0 {
                    self.text(", ");
                }
                self.arg_text(Some(x));
            }
            self.text("))");
        }
        self.text(")")
    }

    fn query(&self) -> sqlx::query::Query<'_, Any, sqlx::any::AnyArguments<'_>> {
        let mut q = sqlx::query(&self.text);
        for a in &self.args {
            q = match a {
                Arg::Text(t) => q.bind(t.clone()),
                Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }
}

const META_COLS: &str = "o.collection_id, o.date_added, o.id, o.type, o.spec_version, o.version, o.tlp, o.owner_org";

impl Store {
    pub async fn add_collection(
        &self,
        alias: &str,
        title: &str,
        description: &str,
        read: CollectionAccess,
        write: CollectionAccess,
        default_tlp: Tlp,
    ) -> Result<IntelCollection> {
        if !crate::org::valid_name(alias) {
            return Err(Error::Invalid(format!(
                "collection alias {alias:?}: use 1-64 characters from A-Z a-z 0-9 - _ ."
            )));
        }
        if write == CollectionAccess::Public {
            return Err(Error::Invalid("a collection cannot be writable without credentials".into()));
        }
        if read == CollectionAccess::Public && default_tlp != Tlp::Clear {
            return Err(Error::Invalid(format!(
                "public collection {alias:?}: its default TLP must be clear (anonymous readers see only TLP:CLEAR)"
            )));
        }
        let id = uuid_v4()?;
        sqlx::query(&format!("INSERT INTO collections ({COLLECTION_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"))
            .bind(&id)
            .bind(alias)
            .bind(title)
            .bind(description)
            .bind(read.as_str())
            .bind(write.as_str())
            .bind(default_tlp.as_str())
            .bind(now_us())
            .execute(&self.pool)
            .await
            .map_err(|e| crate::exists_or(e, "collection", alias))?;
        self.collection(&id).await
    }

    /// Every collection, in a stable order (creation).
    pub async fn collections(&self) -> Result<Vec<IntelCollection>> {
        let rows = sqlx::query(&format!("SELECT {COLLECTION_COLS} FROM collections ORDER BY created, id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(collection_of).collect()
    }

    /// A collection by id or alias.
    pub async fn collection(&self, id_or_alias: &str) -> Result<IntelCollection> {
        let row = sqlx::query(&format!("SELECT {COLLECTION_COLS} FROM collections WHERE id = $1 OR alias = $1"))
            .bind(id_or_alias)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => collection_of(&r),
            None => Err(Error::NotFound { what: "collection", name: id_or_alias.to_string() }),
        }
    }

    /// Store object versions in a collection, in one transaction, each getting the next
    /// `date_added`. Per object: added, an exact duplicate (kept as it was), or refused (another
    /// organisation's object, or a different object under an existing id and version).
    pub async fn add_objects(&self, collection_id: &str, objects: &[NewObject]) -> Result<Vec<AddOutcome>> {
        let mut tx = self.pool.begin().await?;
        let mut next = reserve_dates(&mut tx, objects.len() as i64).await?;
        // What is already stored of these ids, in a few statements rather than two per object:
        // who owns each id anywhere (only its producer may add versions), and the versions held
        // in this collection. Objects added earlier in the same write join both as they go.
        let mut ids: Vec<String> = objects.iter().map(|o| o.id.clone()).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut owners: HashMap<String, HashSet<String>> = HashMap::new();
        let mut held: HashMap<(String, String, String), (i64, String)> = HashMap::new();
        for chunk in ids.chunks(LOOKUP_CHUNK) {
            let mut q = Sql::default();
            q.text("SELECT DISTINCT id, owner_org FROM stix_objects WHERE 1 = 1").in_list("id", chunk);
            for r in q.query().fetch_all(&mut *tx).await? {
                owners.entry(r.try_get("id")?).or_default().insert(r.try_get("owner_org")?);
            }
            let mut q = Sql::default();
            q.text("SELECT id, version, owner_org, date_added, body FROM stix_objects WHERE collection_id = ")
                .arg_text(Some(collection_id))
                .in_list("id", chunk);
            for r in q.query().fetch_all(&mut *tx).await? {
                held.insert(
                    (r.try_get("id")?, r.try_get("version")?, r.try_get("owner_org")?),
                    (r.try_get("date_added")?, r.try_get("body")?),
                );
            }
        }
        let mut out = Vec::with_capacity(objects.len());
        let mut added: Vec<(i64, &NewObject)> = Vec::new();
        for o in objects {
            let foreign = owners.get(&o.id).is_some_and(|set| set.iter().any(|owner| owner != &o.owner_org));
            if o.versioned() && foreign {
                out.push(AddOutcome::Refused(format!(
                    "{} belongs to another organisation: only its producer may add versions",
                    o.id
                )));
                continue;
            }
            let key = (o.id.clone(), o.version.clone(), o.owner_org.clone());
            if let Some((date_added, body)) = held.get(&key) {
                out.push(if *body == o.body {
                    AddOutcome::Duplicate { date_added: *date_added }
                } else {
                    AddOutcome::Refused(format!(
                        "{} version {:?} is already stored with different content: a new version needs a new modified time",
                        o.id, o.version
                    ))
                });
                continue;
            }
            let date_added = next;
            next += 1;
            held.insert(key, (date_added, o.body.clone()));
            owners.entry(o.id.clone()).or_default().insert(o.owner_org.clone());
            added.push((date_added, o));
            out.push(AddOutcome::Added { date_added });
        }
        insert_objects(&mut tx, collection_id, &added).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Objects of a collection as `v` may see them, oldest `date_added` first.
    pub async fn objects(&self, v: &Viewer, q: &ObjectQuery) -> Result<Page<StoredObject>> {
        let rows = self.select(v, q, true).await?;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            items.push(StoredObject { meta: meta_of(r)?, body: r.try_get("body")? });
        }
        Ok(page(items, q.limit))
    }

    /// The manifest (metadata only) of the same selection as [`Store::objects`].
    pub async fn manifest(&self, v: &Viewer, q: &ObjectQuery) -> Result<Page<ObjectMeta>> {
        let rows = self.select(v, q, false).await?;
        let items = rows.iter().map(meta_of).collect::<Result<Vec<_>>>()?;
        Ok(page(items, q.limit))
    }

    async fn select(&self, v: &Viewer, q: &ObjectQuery, body: bool) -> Result<Vec<AnyRow>> {
        let mut s = Sql::default();
        s.text(&format!(
            "SELECT {META_COLS}{} FROM stix_objects o WHERE o.collection_id = ",
            if body { ", o.body" } else { "" }
        ))
        .arg_text(Some(&q.collection_id))
        .text(" AND o.date_added > ")
        .arg_int(q.after.unwrap_or(i64::MIN));
        if !q.ids.is_empty() {
            s.in_list("o.id", &q.ids);
        }
        if !q.types.is_empty() {
            s.in_list("o.type", &q.types);
        }
        if !q.spec_versions.is_empty() {
            s.in_list("o.spec_version", &q.spec_versions);
        }
        s.text(" AND ").shown("o", v).version_filter("o", v, &q.versions);
        s.text(" ORDER BY o.date_added LIMIT ").arg_int(q.limit as i64 + 1);
        Ok(s.query().fetch_all(&self.pool).await?)
    }

    /// The versions of one object that `v` may see, oldest `date_added` first.
    pub async fn object_versions(
        &self,
        v: &Viewer,
        collection_id: &str,
        id: &str,
        after: Option<i64>,
        spec_versions: &[String],
        limit: usize,
    ) -> Result<Page<ObjectMeta>> {
        let q = ObjectQuery {
            collection_id: collection_id.to_string(),
            after,
            ids: vec![id.to_string()],
            versions: VersionFilter { all: true, ..VersionFilter::default() },
            spec_versions: spec_versions.to_vec(),
            limit,
            ..ObjectQuery::default()
        };
        self.manifest(v, &q).await
    }

    /// Delete versions of an object that `v` may see. Only the owner organisation (or an operator
    /// admin, `admin`) may delete: `Ok(None)` when nothing visible matched (report 404),
    /// `Err(Forbidden)` when something visible belongs to someone else.
    pub async fn delete_object(
        &self,
        v: &Viewer,
        admin: bool,
        collection_id: &str,
        id: &str,
        versions: &VersionFilter,
        spec_versions: &[String],
    ) -> Result<Option<usize>> {
        let q = ObjectQuery {
            collection_id: collection_id.to_string(),
            ids: vec![id.to_string()],
            versions: versions.clone(),
            spec_versions: spec_versions.to_vec(),
            limit: 1_000_000,
            ..ObjectQuery::default()
        };
        let found = self.manifest(v, &q).await?.items;
        if found.is_empty() {
            return Ok(None);
        }
        if !admin && found.iter().any(|m| Some(&m.owner_org) != v.org_id.as_ref()) {
            return Err(Error::Forbidden(format!("{id} belongs to another organisation")));
        }
        let mut tx = self.pool.begin().await?;
        for m in &found {
            for table in ["stix_objects", "stix_audience", "stix_refs", "stix_values"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE collection_id = $1 AND date_added = $2"))
                    .bind(collection_id)
                    .bind(m.date_added)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(Some(found.len()))
    }

    /// Objects in collections `v` may read that mention `value` (the correlation index), newest
    /// first, at most `limit`.
    pub async fn objects_mentioning(&self, v: &Viewer, value: &str, limit: usize) -> Result<Vec<StoredObject>> {
        let mut s = Sql::default();
        s.text(&format!(
            "SELECT {META_COLS}, o.body FROM stix_values x \
             JOIN stix_objects o ON o.collection_id = x.collection_id AND o.date_added = x.date_added \
             JOIN collections c ON c.id = o.collection_id WHERE x.value = "
        ))
        .arg_text(Some(value))
        .text(" AND ")
        .readable("c", v)
        .text(" AND ")
        .shown("o", v)
        .text(" ORDER BY o.date_added DESC LIMIT ")
        .arg_int(limit as i64);
        let rows = s.query().fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok(StoredObject { meta: meta_of(r)?, body: r.try_get("body")? })).collect()
    }

    /// How many objects (every version) of a collection `v` may see.
    pub async fn count_objects(&self, v: &Viewer, collection_id: &str) -> Result<i64> {
        let mut s = Sql::default();
        s.text("SELECT COUNT(*) AS n FROM stix_objects o WHERE o.collection_id = ")
            .arg_text(Some(collection_id))
            .text(" AND ")
            .shown("o", v);
        Ok(s.query().fetch_one(&self.pool).await?.try_get("n")?)
    }

    /// The newest stored version of each of `ids` in a collection (those stored), whoever may
    /// see them: for the publisher deciding which objects changed (never for answering a reader).
    /// One statement per call, so callers pass ids in chunks (a few hundred: both engines bound
    /// the parameters of a statement).
    pub async fn latest_versions(&self, collection_id: &str, ids: &[String]) -> Result<HashMap<String, StoredObject>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut out: HashMap<String, (i64, StoredObject)> = HashMap::with_capacity(ids.len());
        let mut s = Sql::default();
        s.text(&format!("SELECT {META_COLS}, o.version_us, o.body FROM stix_objects o WHERE o.collection_id = "))
            .arg_text(Some(collection_id))
            .in_list("o.id", ids)
            // The newest version only (the (collection_id, id, version_us) index answers it); rows
            // tied on version_us are told apart by date_added below.
            .text(
                " AND o.version_us = (SELECT MAX(n.version_us) FROM stix_objects n \
                 WHERE n.collection_id = o.collection_id AND n.id = o.id)",
            );
        for r in s.query().fetch_all(&self.pool).await? {
            let version_us: i64 = r.try_get("version_us")?;
            let o = StoredObject { meta: meta_of(&r)?, body: r.try_get("body")? };
            match out.get(&o.meta.id) {
                Some((v, kept)) if (*v, kept.meta.date_added) >= (version_us, o.meta.date_added) => {}
                _ => {
                    out.insert(o.meta.id.clone(), (version_us, o));
                }
            }
        }
        Ok(out.into_iter().map(|(id, (_, o))| (id, o)).collect())
    }

    /// The owner organisation of any stored version of `id` (to route sightings to the producer).
    pub async fn object_owner(&self, id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT owner_org FROM stix_objects WHERE id = $1 LIMIT 1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("owner_org")).transpose()?)
    }

    /// Keep a TAXII status resource (its JSON), readable by the user who caused it.
    pub async fn save_status(&self, id: &str, user_id: &str, body: &str) -> Result<()> {
        let now = now_us();
        // TAXII 2.1 §4.3: keep status at least 24 hours; a week here.
        sqlx::query("DELETE FROM taxii_status WHERE created < $1")
            .bind(now - 7 * 86_400_000_000)
            .execute(&self.pool)
            .await?;
        sqlx::query("INSERT INTO taxii_status (id, user_id, body, created) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(user_id)
            .bind(body)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn status(&self, id: &str, user_id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT body FROM taxii_status WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("body")).transpose()?)
    }

    /// Register or update an intelligence feed (its configuration as JSON).
    pub async fn save_feed(&self, name: &str, kind: &str, config: &str) -> Result<()> {
        if !crate::org::valid_name(name) {
            return Err(Error::Invalid(format!("feed name {name:?}: use 1-64 characters from A-Z a-z 0-9 - _ .")));
        }
        sqlx::query(
            "INSERT INTO feeds (name, kind, config, created) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, config = excluded.config",
        )
        .bind(name)
        .bind(kind)
        .bind(config)
        .bind(now_us())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn feeds(&self) -> Result<Vec<Feed>> {
        let rows = sqlx::query("SELECT name, kind, config, cursor, last_run, last_error FROM feeds ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Feed {
                    name: r.try_get("name")?,
                    kind: r.try_get("kind")?,
                    config: r.try_get("config")?,
                    cursor: r.try_get("cursor")?,
                    last_run: r.try_get("last_run")?,
                    last_error: r.try_get("last_error")?,
                })
            })
            .collect()
    }

    pub async fn remove_feed(&self, name: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM feeds WHERE name = $1").bind(name).execute(&self.pool).await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound { what: "feed", name: name.to_string() });
        }
        Ok(())
    }

    /// Record a feed run: its new resume point (kept when `None`) and its error, if any.
    pub async fn record_feed_run(&self, name: &str, cursor: Option<&str>, error: Option<&str>) -> Result<()> {
        sqlx::query(
            "UPDATE feeds SET cursor = COALESCE(CAST($1 AS TEXT), cursor), last_run = $2, last_error = CAST($3 AS TEXT)
             WHERE name = $4",
        )
        .bind(cursor.map(str::to_string))
        .bind(now_us())
        .bind(error.map(str::to_string))
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Feed {
    pub name: String,
    pub kind: String,
    pub config: String,
    pub cursor: Option<String>,
    pub last_run: Option<i64>,
    pub last_error: Option<String>,
}

fn page<T>(mut items: Vec<T>, limit: usize) -> Page<T> {
    let more = items.len() > limit;
    items.truncate(limit);
    Page { items, more }
}

/// Take `n` consecutive `date_added` values from the clock; the row stays locked until the
/// transaction ends, so dates become visible in the order they were handed out.
async fn reserve_dates(tx: &mut Transaction<'static, Any>, n: i64) -> Result<i64> {
    let now = now_us();
    let row = sqlx::query(
        "UPDATE intel_clock SET last = CASE WHEN last + $1 >= $2 THEN last + $1 ELSE $2 + $1 - 1 END
         WHERE id = 1 RETURNING last",
    )
    .bind(n.max(1))
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    let last: i64 = row.try_get("last")?;
    Ok(last - n.max(1) + 1)
}

/// Ids looked up per statement (well inside both engines' parameter limits).
const LOOKUP_CHUNK: usize = 500;
/// Rows per multi-row INSERT: 11 parameters each, inside SQLite's 32,766 and PostgreSQL's 65,535.
const INSERT_CHUNK: usize = 500;

/// Insert objects (with their audience, references and observable values) in multi-row
/// statements: one round trip per few hundred rows, not several per object.
async fn insert_objects(
    tx: &mut Transaction<'static, Any>,
    collection_id: &str,
    objects: &[(i64, &NewObject)],
) -> Result<()> {
    for chunk in objects.chunks(INSERT_CHUNK) {
        let mut q = Sql::default();
        q.text(
            "INSERT INTO stix_objects (collection_id, date_added, id, type, spec_version, version, version_us, \
             owner_org, owner_user, tlp, body) VALUES ",
        );
        for (i, (date_added, o)) in chunk.iter().enumerate() {
            q.text(if i == 0 { "(" } else { ", (" }).arg_text(Some(collection_id)).text(", ");
            q.arg_int(*date_added).text(", ").arg_text(Some(&o.id)).text(", ").arg_text(Some(&o.type_)).text(", ");
            q.arg_text(Some(&o.spec_version)).text(", ").arg_text(Some(&o.version)).text(", ");
            q.arg_int(o.version_us).text(", ").arg_text(Some(&o.owner_org)).text(", ");
            q.arg_text(o.owner_user.as_deref()).text(", ").arg_text(Some(o.tlp.as_str())).text(", ");
            q.arg_text(Some(&o.body)).text(")");
        }
        q.query().execute(&mut **tx).await?;
    }
    let mut audience: Vec<(i64, &str, &str)> = Vec::new();
    let mut refs: Vec<(i64, &str)> = Vec::new();
    let mut values: Vec<(i64, &str)> = Vec::new();
    for (d, o) in objects {
        audience.extend(o.audience_orgs.iter().map(|p| (*d, "org", p.as_str())));
        audience.extend(o.audience_users.iter().map(|p| (*d, "user", p.as_str())));
        refs.extend(o.refs.iter().map(|r| (*d, r.as_str())));
        values.extend(o.values.iter().map(|v| (*d, v.as_str())));
    }
    for chunk in audience.chunks(INSERT_CHUNK) {
        let mut q = Sql::default();
        q.text("INSERT INTO stix_audience (collection_id, date_added, kind, principal) VALUES ");
        for (i, (d, kind, who)) in chunk.iter().enumerate() {
            q.text(if i == 0 { "(" } else { ", (" }).arg_text(Some(collection_id)).text(", ").arg_int(*d);
            q.text(", ").arg_text(Some(kind)).text(", ").arg_text(Some(who)).text(")");
        }
        q.text(" ON CONFLICT DO NOTHING").query().execute(&mut **tx).await?;
    }
    for chunk in refs.chunks(INSERT_CHUNK) {
        let mut q = Sql::default();
        q.text("INSERT INTO stix_refs (collection_id, date_added, ref_id) VALUES ");
        for (i, (d, r)) in chunk.iter().enumerate() {
            q.text(if i == 0 { "(" } else { ", (" }).arg_text(Some(collection_id)).text(", ").arg_int(*d);
            q.text(", ").arg_text(Some(r)).text(")");
        }
        q.text(" ON CONFLICT DO NOTHING").query().execute(&mut **tx).await?;
    }
    for chunk in values.chunks(INSERT_CHUNK) {
        let mut q = Sql::default();
        q.text("INSERT INTO stix_values (value, collection_id, date_added) VALUES ");
        for (i, (d, v)) in chunk.iter().enumerate() {
            q.text(if i == 0 { "(" } else { ", (" }).arg_text(Some(v)).text(", ").arg_text(Some(collection_id));
            q.text(", ").arg_int(*d).text(")");
        }
        q.text(" ON CONFLICT DO NOTHING").query().execute(&mut **tx).await?;
    }
    Ok(())
}

/// A random (version 4) UUID: TAXII collection ids and STIX ids SHOULD be v4.
pub fn uuid_v4() -> Result<String> {
    let mut b = crate::secret::random_bytes::<16>()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Ok(uuid::Uuid::from_bytes(b).to_string())
}
