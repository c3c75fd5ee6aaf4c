//! Who is calling: every request passes [`authenticate`], which turns its credentials into a
//! [`Caller`] extension for the handlers.
//!
//! - `Authorization: Bearer <token>`: an API token.
//! - `Authorization: Basic user:secret`: the secret is the user's password or one of the user's
//!   API tokens (what TAXII clients, which only speak Basic, need).
//! - the `cynex_session` cookie of the web UI. A request that changes something (any method but
//!   GET, HEAD, OPTIONS) authenticated by the cookie must carry the session's CSRF token in
//!   `X-CSRF-Token`, or it is refused with 403: another site can make the browser send the cookie,
//!   never read the token.
//!
//! Presented credentials that do not check out make the caller [`Caller::Refused`] (401 in the
//! handlers), never anonymous. Handlers decide what a caller may do.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use cynex_store::secret::ct_eq;
use cynex_store::{Caller, Principal, Store};

use crate::AppState;

pub const SESSION_COOKIE: &str = "cynex_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The session a cookie header carries, if any.
pub fn session_cookie(h: &HeaderMap) -> Option<&str> {
    h.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == SESSION_COOKIE && !v.is_empty()).then_some(v)
    })
}

async fn from_authorization(store: &Store, value: &str) -> cynex_store::Result<Caller> {
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    let principal = match scheme.to_ascii_lowercase().as_str() {
        "bearer" => store.authenticate_token(rest.trim()).await?,
        "basic" => {
            let Some(decoded) = STANDARD.decode(rest.trim()).ok().and_then(|b| String::from_utf8(b).ok()) else {
                return Ok(Caller::Refused);
            };
            let Some((user, secret)) = decoded.split_once(':') else { return Ok(Caller::Refused) };
            if secret.starts_with("cnx_") {
                // A token in the password field must belong to the named user.
                store.authenticate_token(secret).await?.filter(|p: &Principal| p.user == user)
            } else {
                store.authenticate_password(user, secret).await?
            }
        }
        _ => None,
    };
    Ok(principal.map_or(Caller::Refused, Caller::User))
}

fn unsafe_method(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Middleware: resolve the caller and insert it into the request's extensions.
pub async fn authenticate(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let h = req.headers();
    let caller = if let Some(a) = h.get(header::AUTHORIZATION) {
        match a.to_str() {
            Ok(v) => from_authorization(&st.store, v).await,
            Err(_) => Ok(Caller::Refused),
        }
    } else if let Some(cookie) = session_cookie(h) {
        match st.store.authenticate_session(cookie).await {
            Ok(Some(s)) => {
                if unsafe_method(req.method()) {
                    let sent = h.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
                    if !ct_eq(sent.as_bytes(), s.csrf.as_bytes()) {
                        return crate::api::ApiError::new(
                            StatusCode::FORBIDDEN,
                            "csrf",
                            "missing or wrong X-CSRF-Token",
                        )
                        .into_response();
                    }
                }
                Ok(Caller::User(s.principal))
            }
            // An expired or unknown cookie is as good as none (the UI shows its login page).
            Ok(None) => Ok(Caller::Anonymous),
            Err(e) => Err(e),
        }
    } else {
        Ok(Caller::Anonymous)
    };
    match caller {
        Ok(c) => {
            if matches!(c, Caller::Refused) {
                st.metrics.auth_refused.inc();
            }
            req.extensions_mut().insert(c);
            next.run(req).await
        }
        Err(e) => {
            tracing::error!(error = %e, "authentication failed");
            crate::api::ApiError::internal().into_response()
        }
    }
}
