//! The TAXII 2.1 server (OASIS Standard, 10 June 2021), mounted by `cynex serve` under
//! `/taxii2/`: discovery, one API root, collections, manifest, objects (get, add, get one,
//! delete, versions) and status, with the media-type rules (406/415), the
//! `X-TAXII-Date-Added-First/Last` headers, strict filters, stateless signed `next` cursors, and
//! `max_content_length` (413). Checklist: ../shared/reference/intel.md §2.
//!
//! Authentication is the server's: each request carries a [`Caller`] extension. Anonymous
//! callers reach only public collections (and see only TLP:CLEAR in them); a request for anything
//! else gets 401 with a challenge, so an anonymous client cannot tell which collections exist. An
//! authenticated caller gets 404 for a collection it can neither read nor write, 403 for the
//! operation its access does not allow. Every listing is computed by the store after the TLP rule,
//! so `more`, `next` and the date headers reveal nothing hidden. On an empty page the date
//! headers are omitted (the spec does not say what they would be).

pub mod params;

use std::sync::Arc;

use axum::body::to_bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use cynex_store::{Caller, IntelCollection, ObjectMeta, ObjectQuery, VersionFilter, Viewer};
use serde_json::{json, Value};

use crate::hub::{Hub, Outcome};
use crate::stix::time::format_us;
use params::{Cursors, Listing, Params};

pub const MEDIA_TYPE: &str = "application/taxii+json;version=2.1";
pub const STIX_MEDIA_TYPE: &str = "application/stix+json;version=2.1";

#[derive(Debug, Clone)]
pub struct TaxiiConfig {
    pub title: String,
    pub description: String,
    pub contact: Option<String>,
    /// The API root's path segment: `/taxii2/<api_root>/`.
    pub api_root: String,
    /// Largest request body accepted (bytes), advertised in the API root.
    pub max_content_length: usize,
    /// Largest page served, whatever `limit` asks for.
    pub page_max: usize,
    /// Page size when the request gives no `limit`.
    pub page_default: usize,
    /// `https://host:port` that clients reach the server at; without it, taken from each
    /// request's `Host` header and whether the listener speaks TLS.
    pub public_url: Option<String>,
    pub tls: bool,
}

impl Default for TaxiiConfig {
    fn default() -> Self {
        TaxiiConfig {
            title: "cynex sharing hub".into(),
            description: "Threat intelligence of the cynex nexus: darknet scanners, campaigns, member alerts and \
                          members' own intelligence, under TLP 2.0."
                .into(),
            contact: None,
            api_root: "cynex".into(),
            max_content_length: 10 * 1024 * 1024,
            page_max: 1000,
            page_default: 100,
            public_url: None,
            tls: false,
        }
    }
}

/// What the TAXII handlers share.
#[derive(Debug)]
pub struct Taxii {
    pub hub: Hub,
    pub config: TaxiiConfig,
    pub cursors: Cursors,
}

/// The TAXII routes under `/taxii2/` (every path ends in `/`, §1.6.8).
pub fn router<S: Clone + Send + Sync + 'static>(t: Arc<Taxii>) -> Router<S> {
    Router::new()
        .route("/taxii2/", get(discovery))
        .route("/taxii2/{root}/", get(api_root))
        .route("/taxii2/{root}/status/{id}/", get(status))
        .route("/taxii2/{root}/collections/", get(collections))
        .route("/taxii2/{root}/collections/{cid}/", get(collection))
        .route("/taxii2/{root}/collections/{cid}/manifest/", get(manifest))
        .route("/taxii2/{root}/collections/{cid}/objects/", get(objects).post(add_objects))
        .route("/taxii2/{root}/collections/{cid}/objects/{oid}/", get(object).delete(delete_object))
        .route("/taxii2/{root}/collections/{cid}/objects/{oid}/versions/", get(versions))
        .with_state(t)
}

// ---------------------------------------------------------------------------------------------
// Responses

fn taxii_body(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    r
}

/// A TAXII error resource (§3.6.1): `http_status` matches the status line; no internals.
fn error(status: StatusCode, title: &str, description: impl Into<String>) -> Response {
    let body = json!({"title": title, "http_status": status.as_u16().to_string(), "description": description.into()});
    let mut r = taxii_body(status, body.to_string());
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"cynex TAXII\", Bearer realm=\"cynex TAXII\""),
        );
    }
    r
}

fn unauthorized() -> Response {
    error(StatusCode::UNAUTHORIZED, "Authentication required", "send HTTP Basic or a bearer API token")
}

fn not_found(what: &str) -> Response {
    error(StatusCode::NOT_FOUND, "Not found", format!("no such {what}"))
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "taxii request failed");
    error(StatusCode::INTERNAL_SERVER_ERROR, "Internal error", "the server could not complete the request")
}

fn with_dates(mut r: Response, first: Option<i64>, last: Option<i64>) -> Response {
    if let (Some(f), Some(l)) = (first, last) {
        let h = r.headers_mut();
        h.insert("X-TAXII-Date-Added-First", HeaderValue::from_str(&format_us(f)).expect("ascii"));
        h.insert("X-TAXII-Date-Added-Last", HeaderValue::from_str(&format_us(l)).expect("ascii"));
    }
    r
}

// ---------------------------------------------------------------------------------------------
// Request checks

/// A media type (or range) that is TAXII 2.1: `application/taxii+json` with `version=2.1` or no
/// version (a bare `application/taxii+json` means the latest version, i.e. 2.1; §1.6.8).
fn is_taxii_21(media: &str) -> bool {
    let mut parts = media.split(';').map(str::trim);
    if !parts.next().unwrap_or_default().eq_ignore_ascii_case("application/taxii+json") {
        return false;
    }
    parts.all(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        !k.trim().eq_ignore_ascii_case("version") || v.trim().trim_matches('"') == "2.1"
    })
}

/// The Accept header names the TAXII 2.1 media type.
fn accepts_taxii(h: &HeaderMap) -> bool {
    h.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.split(',').any(is_taxii_21))
}

fn content_is_taxii(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(is_taxii_21)
}

/// Common preamble: 406 without the TAXII media type, 401 for refused credentials.
#[allow(clippy::result_large_err)]
fn preamble(h: &HeaderMap, caller: &Caller) -> Result<Viewer, Response> {
    if !accepts_taxii(h) {
        return Err(error(StatusCode::NOT_ACCEPTABLE, "Not acceptable", format!("send Accept: {MEDIA_TYPE}")));
    }
    if matches!(caller, Caller::Refused) {
        return Err(unauthorized());
    }
    Ok(caller.viewer())
}

fn caller_of(c: Option<Extension<Caller>>) -> Caller {
    c.map(|Extension(c)| c).unwrap_or(Caller::Anonymous)
}

impl Taxii {
    fn base(&self, h: &HeaderMap) -> String {
        if let Some(u) = &self.config.public_url {
            return u.trim_end_matches('/').to_string();
        }
        let host = h.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
        format!("{}://{host}", if self.config.tls { "https" } else { "http" })
    }

    fn root_ok(&self, root: &str) -> bool {
        root == self.config.api_root
    }

    /// The collection `cid` (id or alias) as `caller` may know it: anonymous callers get 401
    /// for anything not publicly readable; others 404 for what they can neither read nor write.
    async fn collection_for(&self, cid: &str, caller: &Caller) -> Result<IntelCollection, Response> {
        let v = caller.viewer();
        let found = match self.hub.store.collection(cid).await {
            Ok(c) => Some(c),
            Err(cynex_store::Error::NotFound { .. }) => None,
            Err(e) => return Err(internal(e)),
        };
        match found {
            Some(c) if c.can_read(&v) || c.can_write(&v) => Ok(c),
            _ if caller.principal().is_none() => Err(unauthorized()),
            _ => Err(not_found("collection")),
        }
    }

    fn page_size(&self, p: &Params) -> usize {
        p.limit.unwrap_or(self.config.page_default).min(self.config.page_max)
    }
}

fn user_key(c: &Caller) -> &str {
    c.principal().map_or("", |p| p.user_id.as_str())
}

fn collection_json(c: &IntelCollection, v: &Viewer) -> Value {
    json!({
        "id": c.id,
        "title": c.title,
        "description": c.description,
        "alias": c.alias,
        "can_read": c.can_read(v),
        "can_write": c.can_write(v),
        "media_types": [STIX_MEDIA_TYPE],
    })
}

/// The version a manifest or status reports: `modified`/`created`, or for objects without
/// either (SCOs) the date it was added (§5.3.1).
fn version_of(m: &ObjectMeta) -> String {
    if m.version.is_empty() {
        format_us(m.date_added)
    } else {
        m.version.clone()
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers

async fn discovery(State(t): State<Arc<Taxii>>, c: Option<Extension<Caller>>, h: HeaderMap) -> Response {
    let caller = caller_of(c);
    if let Err(r) = preamble(&h, &caller) {
        return r;
    }
    let root = format!("{}/taxii2/{}/", t.base(&h), t.config.api_root);
    let mut d =
        json!({"title": t.config.title, "description": t.config.description, "default": root, "api_roots": [root]});
    if let Some(c) = &t.config.contact {
        d["contact"] = json!(c);
    }
    taxii_body(StatusCode::OK, d.to_string())
}

async fn api_root(
    State(t): State<Arc<Taxii>>,
    c: Option<Extension<Caller>>,
    h: HeaderMap,
    Path(root): Path<String>,
) -> Response {
    let caller = caller_of(c);
    if let Err(r) = preamble(&h, &caller) {
        return r;
    }
    if !t.root_ok(&root) {
        return not_found("API root");
    }
    let body = json!({
        "title": t.config.title,
        "description": t.config.description,
        "versions": [MEDIA_TYPE],
        "max_content_length": t.config.max_content_length,
    });
    taxii_body(StatusCode::OK, body.to_string())
}

async fn status(
    State(t): State<Arc<Taxii>>,
    c: Option<Extension<Caller>>,
    h: HeaderMap,
    Path((root, id)): Path<(String, String)>,
) -> Response {
    let caller = caller_of(c);
    if let Err(r) = preamble(&h, &caller) {
        return r;
    }
    let Some(p) = caller.principal() else { return unauthorized() };
    if !t.root_ok(&root) {
        return not_found("API root");
    }
    match t.hub.store.status(&id, &p.user_id).await {
        Ok(Some(body)) => taxii_body(StatusCode::OK, body),
        Ok(None) => not_found("status"),
        Err(e) => internal(e),
    }
}

async fn collections(
    State(t): State<Arc<Taxii>>,
    c: Option<Extension<Caller>>,
    h: HeaderMap,
    Path(root): Path<String>,
) -> Response {
    let caller = caller_of(c);
    let v = match preamble(&h, &caller) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if !t.root_ok(&root) {
        return not_found("API root");
    }
    let all = match t.hub.store.collections().await {
        Ok(a) => a,
        Err(e) => return internal(e),
    };
    let list: Vec<Value> =
        all.iter().filter(|c| c.can_read(&v) || c.can_write(&v)).map(|c| collection_json(c, &v)).collect();
    // §4.2.1: an empty list is omitted.
    let body = if list.is_empty() { json!({}) } else { json!({ "collections": list }) };
    taxii_body(StatusCode::OK, body.to_string())
}

async fn collection(
    State(t): State<Arc<Taxii>>,
    c: Option<Extension<Caller>>,
    h: HeaderMap,
    Path((root, cid)): Path<(String, String)>,
) -> Response {
    let caller = caller_of(c);
    let v = match preamble(&h, &caller) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if !t.root_ok(&root) {
        return not_found("API root");
    }
    match t.collection_for(&cid, &caller).await {
        Ok(coll) => taxii_body(StatusCode::OK, collection_json(&coll, &v).to_string()),
        Err(r) => r,
    }
}

/// Checks shared by the reading endpoints: media type, credentials, API root, the collection and
/// read access, the query.
async fn reading(
    t: &Taxii,
    caller: &Caller,
    h: &HeaderMap,
    root: &str,
    cid: &str,
    query: Option<&str>,
    allowed: &[&str],
) -> Result<(Viewer, IntelCollection, Params), Response> {
    let v = preamble(h, caller)?;
    if !t.root_ok(root) {
        return Err(not_found("API root"));
    }
    let coll = t.collection_for(cid, caller).await?;
    if !coll.can_read(&v) {
        return Err(error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "this collection is not readable with these credentials",
        ));
    }
    let p = Params::parse(query, allowed).map_err(|e| error(StatusCode::BAD_REQUEST, "Bad request", e))?;
    Ok((v, coll, p))
}

fn query_of(t: &Taxii, coll: &IntelCollection, p: &Params, after: Option<i64>) -> ObjectQuery {
    ObjectQuery {
        collection_id: coll.id.clone(),
        after: after.max(p.added_after),
        ids: p.ids.clone(),
        types: p.types.clone(),
        versions: p.versions.clone(),
        spec_versions: p.spec_versions.clone(),
        limit: t.page_size(p),
    }
}

const MATCH_ALL: &[&str] = &["id", "type", "version", "spec_version"];

async fn manifest(
    State(t): State<Arc<Taxii>>,
    c: Option<Extension<Caller>>,
    h: HeaderMap,
    Path((root, cid)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let caller = caller_of(c);
    let (v, coll, p) = match reading(&t, &caller, &h, &root, &cid, q.as_deref(), MATCH_ALL).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let after = match t.cursors.open(Listing::Manifest, &coll.id, user_key(&caller), &p) {
        Ok(a) => a,
        Err(e) => return error(StatusCode::BAD_REQUEST, "Bad request", e),
    };
    let page = match t.hub.store.manifest(&v, &query_of(&t, &coll, &p, after)).await {
        Ok(x) => x,
        Err(e) => return internal(e),
    };
    let entries: Vec<Value> = page
        .items
        .iter()
        .map(|m| json!({"id": m.id, "date_added": format_us(m.date_added), "version": version_of(m), "media_type": STIX_MEDIA_TYPE}))
        .collect();
    let (first, last) = (page.items.first().map(|m| m.date_added), page.items.last().map(|m| m.date_added));
    let mut body = json!({"more": page.more});
    if !entries.is_empty() {
        body["objects"] = json!(entries);
    }
    if page.more {
        if let Some(l) = last {
            body["next"] = json!(t.cursors.make(Listing::Manifest, l, &coll.id, user_key(&caller), &p));
        }
    }
    with_dates(taxii_body(StatusCode::OK, body.to_string()), first, last)
}

/// An envelope from stored canonical bodies, without re-parsing them.
fn envelope(bodies: &[&str], more: bool, next: Option<String>) -> String {
    let mut s = String::with_capacity(bodies.iter().map(|b| b.len() + 1).sum::<usize>() + 64);
    s.push_str(if more { "{\"more\":true" } else { "{\"more\":false" });
    if let Some(n) = next {
        s.push_str(",\"next\":");
        s.push_str(&Value::String(n).to_string());
    }
    if !bodies.is_empty() {
        s.push_str(",\"objects\":[");
        for (i, b) in bodies.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(b);
        }
        s.push(']');
    }
    s.push('}');
    s
}

async fn objects(
    State(t): State<Arc<Taxii>>,
    c: Option<Extension<Caller>>,
    h: HeaderMap,
    Path((root, cid)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let caller = caller_of(c);
    let (v, coll, p) = match reading(&t, &caller, &h, &root, &cid, q.as_deref(), MATCH_ALL).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    list_objects(&t, &caller, &v, &coll, p, None).await
}

async fn list_objects(
    t: &Taxii,
    caller: &Caller,
    v: &Viewer,
    coll: &IntelCollection,
    mut p: Params,
    one: Option<&str>,
) -> Response {
    let after =
        match t.cursors.open(Listing::Objects, &format!("{}/{}", coll.id, one.unwrap_or("")), user_key(caller), &p) {
            Ok(a) => a,
            Err(e) => return error(StatusCode::BAD_REQUEST, "Bad request", e),
        };
    if let Some(id) = one {
        p.ids = vec![id.to_string()];
    }
    let page = match t.hub.store.objects(v, &query_of(t, coll, &p, after)).await {
        Ok(x) => x,
        Err(e) => return internal(e),
    };
    if one.is_some() && page.items.is_empty() && after.is_none() && p.added_after.is_none() {
        return not_found("object");
    }
    let (first, last) = (page.items.first().map(|o| o.meta.date_added), page.items.last().map(|o| o.meta.date_added));
    let next = match (page.more, last) {
        (true, Some(l)) => Some(t.cursors.make(
            Listing::Objects,
            l,
            &format!("{}/{}", coll.id, one.unwrap_or("")),
            user_key(caller),
            &p,
        )),
        _ => None,
    };
    let bodies: Vec<&str> = page.items.iter().map(|o| o.body.as_str()).collect();
    with_dates(taxii_body(StatusCode::OK, envelope(&bodies, page.more, next)), first, last)
}

async fn object(
    State(t): State<Arc<Taxii>>,
    c: Option<Extension<Caller>>,
    h: HeaderMap,
    Path((root, cid, oid)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let caller = caller_of(c);
    // §5.6 lists match[version] and match[spec_version] (the text says version only: take both).
    let (v, coll, p) = match reading(&t, &caller, &h, &root, &cid, q.as_deref(), &["version", "spec_version"]).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    list_objects(&t, &caller, &v, &coll, p, Some(&oid)).await
}

async fn versions(
    State(t): State<Arc<Taxii>>,
    c: Option<Extension<Caller>>,
    h: HeaderMap,
    Path((root, cid, oid)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let caller = caller_of(c);
    let (v, coll, p) = match reading(&t, &caller, &h, &root, &cid, q.as_deref(), &["spec_version"]).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let scope = format!("{}/{oid}", coll.id);
    let after = match t.cursors.open(Listing::Versions, &scope, user_key(&caller), &p) {
        Ok(a) => a,
        Err(e) => return error(StatusCode::BAD_REQUEST, "Bad request", e),
    };
    let page = match t
        .hub
        .store
        .object_versions(&v, &coll.id, &oid, after.max(p.added_after), &p.spec_versions, t.page_size(&p))
        .await
    {
        Ok(x) => x,
        Err(e) => return internal(e),
    };
    if page.items.is_empty() && after.is_none() && p.added_after.is_none() {
        return not_found("object");
    }
    let (first, last) = (page.items.first().map(|m| m.date_added), page.items.last().map(|m| m.date_added));
    let mut body = json!({"more": page.more});
    if !page.items.is_empty() {
        body["versions"] = json!(page.items.iter().map(version_of).collect::<Vec<_>>());
    }
    if page.more {
        if let Some(l) = last {
            body["next"] = json!(t.cursors.make(Listing::Versions, l, &scope, user_key(&caller), &p));
        }
    }
    with_dates(taxii_body(StatusCode::OK, body.to_string()), first, last)
}

async fn delete_object(
    State(t): State<Arc<Taxii>>,
    c: Option<Extension<Caller>>,
    h: HeaderMap,
    Path((root, cid, oid)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let caller = caller_of(c);
    let v = match preamble(&h, &caller) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(who) = caller.principal() else { return unauthorized() };
    if !t.root_ok(&root) {
        return not_found("API root");
    }
    let coll = match t.collection_for(&cid, &caller).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    // §5.7: with one of read/write missing, 403 (both missing was 404 above).
    if !coll.can_read(&v) || !coll.can_write(&v) {
        return error(StatusCode::FORBIDDEN, "Forbidden", "deleting needs read and write access to the collection");
    }
    let mut p = match Params::parse(q.as_deref(), &["version", "spec_version"]) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, "Bad request", e),
    };
    // §5.7: without match[version], the object goes with all its versions.
    if !p.version_given {
        p.versions = VersionFilter { all: true, ..VersionFilter::default() };
    }
    match t.hub.store.delete_object(&v, who.is_admin(), &coll.id, &oid, &p.versions, &p.spec_versions).await {
        Ok(Some(_)) => taxii_body(StatusCode::OK, String::new()),
        Ok(None) => not_found("object"),
        Err(cynex_store::Error::Forbidden(m)) => error(StatusCode::FORBIDDEN, "Forbidden", m),
        Err(e) => internal(e),
    }
}

async fn add_objects(
    State(t): State<Arc<Taxii>>,
    c: Option<Extension<Caller>>,
    Path((root, cid)): Path<(String, String)>,
    req: Request,
) -> Response {
    let caller = caller_of(c);
    let h = req.headers().clone();
    let v = match preamble(&h, &caller) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(who) = caller.principal().cloned() else { return unauthorized() };
    if !t.root_ok(&root) {
        return not_found("API root");
    }
    let coll = match t.collection_for(&cid, &caller).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !coll.can_write(&v) {
        return error(StatusCode::FORBIDDEN, "Forbidden", "this collection is not writable with these credentials");
    }
    if !content_is_taxii(&h) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported media type",
            format!("send Content-Type: {MEDIA_TYPE}"),
        );
    }
    let max = t.config.max_content_length;
    let declared = h.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return too_large(max);
    }
    let bytes = match to_bytes(req.into_body(), max).await {
        Ok(b) => b,
        Err(_) => return too_large(max),
    };
    let envelope: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, "Bad request", format!("the body is not JSON: {e}")),
    };
    let Some(objs) = envelope.get("objects").and_then(Value::as_array).cloned() else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Unprocessable",
            "the body must be a TAXII envelope with an objects list",
        );
    };
    let requested = cynex_model::time::now_us();
    let results = match t.hub.submit(&who, &coll, objs).await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let mut successes = Vec::new();
    let mut failures = Vec::new();
    for r in &results {
        let version = if r.version.is_empty() {
            match r.outcome {
                Outcome::Added { date_added } | Outcome::Unchanged { date_added: Some(date_added) } => {
                    format_us(date_added)
                }
                _ => format_us(requested),
            }
        } else {
            r.version.clone()
        };
        let id = if r.id.is_empty() { "unknown".to_string() } else { r.id.clone() };
        match &r.outcome {
            Outcome::Added { .. } => successes.push(json!({"id": id, "version": version})),
            Outcome::Unchanged { .. } => {
                successes.push(json!({"id": id, "version": version, "message": "already held"}))
            }
            Outcome::Refused(m) => failures.push(json!({"id": id, "version": version, "message": m})),
        }
    }
    let status_id = match cynex_store::uuid_v4() {
        Ok(id) => id,
        Err(e) => return internal(e),
    };
    let mut s = json!({
        "id": status_id,
        "status": "complete",
        "request_timestamp": format_us(requested),
        "total_count": results.len(),
        "success_count": successes.len(),
        "failure_count": failures.len(),
        "pending_count": 0,
    });
    if !successes.is_empty() {
        s["successes"] = json!(successes);
    }
    if !failures.is_empty() {
        s["failures"] = json!(failures);
    }
    let body = s.to_string();
    if let Err(e) = t.hub.store.save_status(&status_id, &who.user_id, &body).await {
        return internal(e);
    }
    tracing::info!(collection = %coll.alias, user = %who.user, total = results.len(), failed = failures.len(), "taxii objects added");
    taxii_body(StatusCode::ACCEPTED, body)
}

fn too_large(max: usize) -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Request too large",
        format!("the largest request accepted is {max} bytes (max_content_length)"),
    )
}
