//! Intelligence for the portal and for tools that do not speak TAXII: the collections a caller may
//! read (with what it may see in each counted), a page of objects, exports (list, CSV, Suricata)
//! and correlation. Everything goes through the store's TLP rule as the caller.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cynex_intel::feeds::export::{export as write_export, ExportFormat};
use cynex_store::{ObjectQuery, Tlp};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Anyone, ApiError, ApiResult, Q};
use crate::AppState;

pub(crate) async fn collections(State(st): State<AppState>, Anyone(c): Anyone) -> ApiResult<Json<Value>> {
    let v = c.viewer();
    let mut out = Vec::new();
    for coll in st.store.collections().await? {
        if !coll.can_read(&v) && !coll.can_write(&v) {
            continue;
        }
        let visible = if coll.can_read(&v) { st.store.count_objects(&v, &coll.id).await? } else { 0 };
        out.push(json!({
            "id": coll.id, "alias": coll.alias, "title": coll.title, "description": coll.description,
            "can_read": coll.can_read(&v), "can_write": coll.can_write(&v), "default_tlp": coll.default_tlp,
            "visible_objects": visible,
            "taxii_url": format!("/taxii2/{}/collections/{}/", st.taxii.config.api_root, coll.id),
        }));
    }
    Ok(Json(json!({ "collections": out })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ObjectsParams {
    collection: String,
    #[serde(rename = "type")]
    type_: Option<String>,
    /// Continue after this `date_added` (µs), as the previous page's `next_after` says.
    after: Option<i64>,
    limit: Option<usize>,
}

pub(crate) async fn objects(
    State(st): State<AppState>,
    Anyone(c): Anyone,
    Q(p): Q<ObjectsParams>,
) -> ApiResult<Json<Value>> {
    let v = c.viewer();
    let coll = st.store.collection(&p.collection).await.map_err(|_| ApiError::not_found("collection"))?;
    if !coll.can_read(&v) {
        // Existence is not confirmed to those who may not read it.
        return Err(if c.principal().is_none() { ApiError::unauthorized() } else { ApiError::not_found("collection") });
    }
    let limit = p.limit.unwrap_or(50).clamp(1, 500);
    let page = st
        .store
        .objects(
            &v,
            &ObjectQuery {
                collection_id: coll.id.clone(),
                after: p.after,
                types: p.type_.into_iter().collect(),
                limit,
                ..ObjectQuery::default()
            },
        )
        .await?;
    let next_after = if page.more { page.items.last().map(|o| o.meta.date_added) } else { None };
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|o| {
            let body: Value = serde_json::from_str(&o.body).unwrap_or(Value::Null);
            json!({"date_added": o.meta.date_added, "tlp": o.meta.tlp, "object": body})
        })
        .collect();
    Ok(Json(json!({"collection": coll.alias, "objects": items, "more": page.more, "next_after": next_after})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExportParams {
    /// plain, csv or suricata.
    format: String,
    /// Collection aliases or ids, comma-separated (default: every readable collection).
    collection: Option<String>,
    /// The most restrictive TLP to include (default amber+strict: what the caller itself may use).
    max_tlp: Option<String>,
}

pub(crate) async fn export(
    State(st): State<AppState>,
    Anyone(c): Anyone,
    Q(p): Q<ExportParams>,
) -> ApiResult<Response> {
    let v = c.viewer();
    let format: ExportFormat =
        p.format.parse().map_err(|e: cynex_intel::Error| ApiError::bad_request(e.to_string()))?;
    let max_tlp: Tlp = match &p.max_tlp {
        Some(t) => t.parse().map_err(|e: cynex_store::Error| ApiError::bad_request(e.to_string()))?,
        None => Tlp::AmberStrict,
    };
    let all = st.store.collections().await?;
    let chosen: Vec<_> = match &p.collection {
        Some(list) => {
            let mut out = Vec::new();
            for name in list.split(',') {
                let coll = all
                    .iter()
                    .find(|x| x.alias == name || x.id == name)
                    .filter(|x| x.can_read(&v))
                    .ok_or_else(|| ApiError::not_found("collection"))?;
                out.push(coll.clone());
            }
            out
        }
        None => all.into_iter().filter(|x| x.can_read(&v)).collect(),
    };
    let mut buf: Vec<u8> = Vec::new();
    write_export(&st.hub, &v, &chosen, format, max_tlp, cynex_model::time::now_us(), &mut buf).await?;
    let ctype = match format {
        ExportFormat::Csv => "text/csv; charset=utf-8",
        _ => "text/plain; charset=utf-8",
    };
    Ok(([(header::CONTENT_TYPE, ctype)], buf).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CorrelateParams {
    /// An address, domain, URL, hash, or an indicator id.
    q: String,
    limit: Option<usize>,
}

pub(crate) async fn correlate(
    State(st): State<AppState>,
    Anyone(c): Anyone,
    Q(p): Q<CorrelateParams>,
) -> ApiResult<Json<Value>> {
    if p.q.trim().is_empty() || p.q.len() > 2048 {
        return Err(ApiError::bad_request("q: 1-2048 characters"));
    }
    let r = cynex_intel::correlate::correlate(
        &st.hub,
        &st.lake,
        c.principal(),
        &p.q,
        p.limit.unwrap_or(100).clamp(1, 1000),
    )
    .await?;
    Ok(Json(serde_json::to_value(r).map_err(|_| ApiError::internal())?))
}
