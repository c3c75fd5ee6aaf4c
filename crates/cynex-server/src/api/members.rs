//! Member organisations, their address space, watches and alerts. A member is confined to its own
//! organisation in every query (another member's alert, prefix or watch is "not found", never
//! "forbidden", so nothing about it leaks); the operator sees all, or one organisation with
//! `?org=`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use cynex_model::ip::Ipv4Net;
use cynex_store::{AlertFilter, Principal, WatchKind};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{scoped_org, Admin, ApiError, ApiResult, Authed, Body, OrgParam, Q};
use crate::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AlertParams {
    org: Option<String>,
    status: Option<String>,
    kind: Option<String>,
    limit: Option<i64>,
}

/// The organisation id an operator named (by name or id), or the member's own.
async fn org_id_for(st: &AppState, p: &Principal, asked: Option<&str>) -> ApiResult<Option<String>> {
    match scoped_org(p, asked) {
        Some(o) if p.is_operator() => Ok(Some(st.store.org(&o).await?.id)),
        other => Ok(other),
    }
}

pub(crate) async fn alerts(
    State(st): State<AppState>,
    Authed(p): Authed,
    Q(a): Q<AlertParams>,
) -> ApiResult<Json<Value>> {
    let org_id = org_id_for(&st, &p, a.org.as_deref()).await?;
    if let Some(s) = &a.status {
        if !matches!(s.as_str(), "open" | "acknowledged") {
            return Err(ApiError::bad_request("status: open or acknowledged"));
        }
    }
    let list = st
        .store
        .alerts(&AlertFilter { org_id, since: None, limit: Some(a.limit.unwrap_or(200).clamp(1, 5000)) })
        .await?;
    let orgs = st.store.orgs().await?;
    let name = |id: &str| orgs.iter().find(|o| o.id == id).map(|o| o.name.clone()).unwrap_or_default();
    let items: Vec<Value> = list
        .into_iter()
        .filter(|x| a.status.as_ref().is_none_or(|s| &x.status == s))
        .filter(|x| a.kind.as_ref().is_none_or(|k| &x.kind == k))
        .map(|x| {
            let mut v = serde_json::to_value(&x).unwrap_or(Value::Null);
            v["org"] = json!(name(&x.org_id));
            v
        })
        .collect();
    Ok(Json(json!({ "alerts": items })))
}

/// A member reading another member's alert gets 404, exactly like an alert that does not exist.
pub(crate) async fn alert(
    State(st): State<AppState>,
    Authed(p): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let scope = (!p.is_operator()).then_some(p.org_id.as_str());
    let a = st.store.alert(&id, scope).await?;
    let deliveries = st.store.deliveries(Some(&a.id)).await?;
    let mut v = serde_json::to_value(&a).map_err(|_| ApiError::internal())?;
    v["org"] = json!(st.store.org(&a.org_id).await?.name);
    v["deliveries"] = serde_json::to_value(&deliveries).map_err(|_| ApiError::internal())?;
    Ok(Json(v))
}

pub(crate) async fn ack(
    State(st): State<AppState>,
    Authed(p): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let scope = (!p.is_operator()).then_some(p.org_id.as_str());
    let a = st.store.ack_alert(&id, scope).await?;
    tracing::info!(alert = %a.id, user = %p.user, "alert acknowledged");
    Ok(Json(serde_json::to_value(&a).map_err(|_| ApiError::internal())?))
}

pub(crate) async fn orgs(State(st): State<AppState>, Authed(p): Authed) -> ApiResult<Json<Value>> {
    let all = st.store.orgs().await?;
    let prefixes = st.store.prefixes(None).await?;
    let items: Vec<Value> = all
        .into_iter()
        .filter(|o| p.is_operator() || o.id == p.org_id)
        .map(|o| {
            let own: Vec<String> = prefixes.iter().filter(|x| x.org_id == o.id).map(|x| x.prefix.to_string()).collect();
            json!({"id": o.id, "name": o.name, "kind": o.kind, "created": o.created, "webhook_url": o.webhook_url, "prefixes": own})
        })
        .collect();
    Ok(Json(json!({ "orgs": items })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewOrg {
    name: String,
    #[serde(default)]
    prefixes: Vec<String>,
    webhook: Option<String>,
}

pub(crate) async fn add_org(
    State(st): State<AppState>,
    Admin(p): Admin,
    Body(n): Body<NewOrg>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let nets: Vec<Ipv4Net> = n
        .prefixes
        .iter()
        .map(|x| x.parse().map_err(|e| ApiError::bad_request(format!("prefix {x:?}: {e}"))))
        .collect::<ApiResult<_>>()?;
    let o = st.store.add_org(&n.name).await?;
    for net in nets {
        st.store.add_prefix(&o.id, net).await?;
    }
    if let Some(w) = &n.webhook {
        st.store.set_webhook(&o.id, Some(w), false).await?;
    }
    tracing::info!(org = %o.name, by = %p.user, "organisation added");
    Ok((StatusCode::CREATED, Json(json!({"id": o.id, "name": o.name}))))
}

pub(crate) async fn prefixes(
    State(st): State<AppState>,
    Authed(p): Authed,
    Q(o): Q<OrgParam>,
) -> ApiResult<Json<Value>> {
    let org = org_id_for(&st, &p, o.org.as_deref()).await?;
    let list = st.store.prefixes(org.as_deref()).await?;
    let items: Vec<Value> =
        list.iter().map(|x| json!({"org": x.org, "org_id": x.org_id, "prefix": x.prefix.to_string()})).collect();
    Ok(Json(json!({ "prefixes": items })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewPrefix {
    prefix: String,
    /// Operators only: whose prefix (a member always adds to its own).
    org: Option<String>,
}

pub(crate) async fn add_prefix(
    State(st): State<AppState>,
    Authed(p): Authed,
    Body(n): Body<NewPrefix>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let org = match org_id_for(&st, &p, n.org.as_deref()).await? {
        Some(o) => o,
        None => return Err(ApiError::bad_request("org: whose address space (operators must name the organisation)")),
    };
    let net: Ipv4Net = n.prefix.parse().map_err(|e| ApiError::bad_request(format!("prefix {:?}: {e}", n.prefix)))?;
    let added = st.store.add_prefix(&org, net).await?;
    Ok((StatusCode::CREATED, Json(json!({"org": added.org, "prefix": added.prefix.to_string()}))))
}

pub(crate) async fn remove_prefix(
    State(st): State<AppState>,
    Authed(p): Authed,
    Path((org, addr, len)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let target = st.store.org(&org).await.map_err(|_| ApiError::not_found("prefix"))?;
    if !p.is_operator() && target.id != p.org_id {
        return Err(ApiError::not_found("prefix"));
    }
    let net: Ipv4Net = format!("{addr}/{len}").parse().map_err(|e| ApiError::bad_request(format!("prefix: {e}")))?;
    st.store.remove_prefix(&target.id, net).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn watches(
    State(st): State<AppState>,
    Authed(p): Authed,
    Q(o): Q<OrgParam>,
) -> ApiResult<Json<Value>> {
    let org = org_id_for(&st, &p, o.org.as_deref()).await?;
    let list = st.store.watches(org.as_deref()).await?;
    Ok(Json(json!({ "watches": list })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewWatch {
    /// `ip:…`, `prefix:…`, `port:N[/tcp|udp]` or `tag:…`.
    spec: String,
    org: Option<String>,
}

pub(crate) async fn add_watch(
    State(st): State<AppState>,
    Authed(p): Authed,
    Body(n): Body<NewWatch>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let org = match org_id_for(&st, &p, n.org.as_deref()).await? {
        Some(o) => o,
        None => return Err(ApiError::bad_request("org: whose watch (operators must name the organisation)")),
    };
    let what: WatchKind = n.spec.parse()?;
    let w = st.store.add_watch(&org, what).await?;
    Ok((StatusCode::CREATED, Json(serde_json::to_value(&w).map_err(|_| ApiError::internal())?)))
}

pub(crate) async fn remove_watch(
    State(st): State<AppState>,
    Authed(p): Authed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let scope = (!p.is_operator()).then_some(p.org_id.as_str());
    st.store.remove_watch(&id, scope).await?;
    Ok(StatusCode::NO_CONTENT)
}
