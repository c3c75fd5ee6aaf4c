//! Logging in to the web UI: `POST /login` checks a password and sets the session cookie
//! (HttpOnly, SameSite=Strict, Secure under TLS), `POST /logout` ends the session, `GET /me` says
//! who the caller is and gives a session its CSRF token.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cynex_store::Principal;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiResult, Authed, Body};
use crate::auth::{session_cookie, SESSION_COOKIE};
use crate::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Login {
    user: String,
    password: String,
}

fn principal_json(p: &Principal, csrf: Option<&str>) -> serde_json::Value {
    json!({
        "user": p.user, "user_id": p.user_id, "org": p.org, "org_id": p.org_id, "org_kind": p.org_kind,
        "role": p.role, "operator": p.is_operator(), "csrf": csrf,
    })
}

fn cookie(st: &AppState, value: &str, max_age_s: i64) -> HeaderValue {
    let secure = if st.config.tls.is_some() { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}"
    ))
    .expect("cookie text is ASCII")
}

pub(crate) async fn login(State(st): State<AppState>, Body(l): Body<Login>) -> ApiResult<Response> {
    let Some(p) = st.store.authenticate_password(&l.user, &l.password).await? else {
        st.metrics.auth_refused.inc();
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "bad_credentials", "wrong user name or password"));
    };
    let (value, s) = st.store.create_session(&p, st.config.session_ttl_us).await?;
    let mut r = Json(principal_json(&p, Some(&s.csrf))).into_response();
    r.headers_mut().insert(header::SET_COOKIE, cookie(&st, &value, st.config.session_ttl_us / 1_000_000));
    tracing::info!(user = %p.user, org = %p.org, "login");
    Ok(r)
}

pub(crate) async fn logout(State(st): State<AppState>, h: HeaderMap) -> ApiResult<Response> {
    if let Some(c) = session_cookie(&h) {
        st.store.end_session(c).await?;
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(header::SET_COOKIE, cookie(&st, "", 0));
    Ok(r)
}

pub(crate) async fn me(
    State(st): State<AppState>,
    Authed(p): Authed,
    h: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let csrf = match session_cookie(&h) {
        Some(c) => st.store.authenticate_session(c).await?.map(|s| s.csrf),
        None => None,
    };
    Ok(Json(principal_json(&p, csrf.as_deref())))
}
