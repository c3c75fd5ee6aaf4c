//! The REST API under `/api/v1`: everything the UI shows and the CLI does, described by the
//! OpenAPI document at `/api/v1/openapi.json`. Errors have one shape,
//! `{"error": {"code": "<stable code>", "message": "…"}}`; internal errors give the client a
//! generic message and the log the detail.
//!
//! Every handler starts from the [`Caller`] the auth middleware resolved and checks access on the
//! server: members are confined to their own organisation whatever they send, operator-only
//! endpoints refuse members with 403, anonymous callers get 401.

mod darknet;
mod ingest;
mod intel;
mod members;
pub mod openapi;
mod session;

pub(crate) use ingest::{format_of as ingest_format, ingest_spooled as ingest_spooled_file, spool_dir as spool_path};

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use cynex_store::{Caller, Principal};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;

/// An API error: an HTTP status, a stable machine-readable code and a message for people.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }

    pub fn internal() -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the server could not complete the request")
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "log in, or send a bearer API token")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(json!({"error": {"code": self.code, "message": self.message}}))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"cynex\""),
            );
        }
        r
    }
}

/// Store errors: what the caller got wrong is theirs to see; anything else is logged.
impl From<cynex_store::Error> for ApiError {
    fn from(e: cynex_store::Error) -> ApiError {
        match e {
            cynex_store::Error::NotFound { what, .. } => ApiError::not_found(what),
            cynex_store::Error::Exists { what, name } => {
                ApiError::new(StatusCode::CONFLICT, "exists", format!("{what} {name:?} already exists"))
            }
            cynex_store::Error::Invalid(m) => ApiError::bad_request(m),
            cynex_store::Error::Forbidden(m) => ApiError::forbidden(m),
            cynex_store::Error::Sql(e) => {
                tracing::error!(error = %e, "metadata store");
                ApiError::internal()
            }
        }
    }
}

impl From<cynex_intel::Error> for ApiError {
    fn from(e: cynex_intel::Error) -> ApiError {
        match e {
            cynex_intel::Error::Store(s) => s.into(),
            cynex_intel::Error::Invalid(m) => ApiError::bad_request(m),
            other => {
                tracing::error!(error = %other, "intel");
                ApiError::internal()
            }
        }
    }
}

impl From<cynex_lake::Error> for ApiError {
    fn from(e: cynex_lake::Error) -> ApiError {
        match e {
            // A query the analyst wrote wrong is theirs to read about.
            cynex_lake::Error::DataFusion(d) => {
                let msg = d.to_string();
                if msg.contains("Resources exhausted") {
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "busy",
                        "the query needs more memory than it may use",
                    )
                } else {
                    ApiError::new(StatusCode::BAD_REQUEST, "bad_query", msg)
                }
            }
            cynex_lake::Error::Invalid(m) => ApiError::bad_request(m),
            other => {
                tracing::error!(error = %other, "lake");
                ApiError::internal()
            }
        }
    }
}

impl From<cynex_analysis::Error> for ApiError {
    fn from(e: cynex_analysis::Error) -> ApiError {
        match e {
            cynex_analysis::Error::Lake(l) => l.into(),
            cynex_analysis::Error::Store(s) => s.into(),
            cynex_analysis::Error::Invalid(m) => ApiError::bad_request(m),
            other => {
                tracing::error!(error = %other, "analysis");
                ApiError::internal()
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The authenticated caller (401 otherwise).
pub struct Authed(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Caller>() {
            Some(Caller::User(p)) => Ok(Authed(p.clone())),
            _ => Err(ApiError::unauthorized()),
        }
    }
}

/// An admin or analyst of the operator (403 for members).
pub struct Operator(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &S) -> Result<Self, Self::Rejection> {
        let Authed(p) = Authed::from_request_parts(parts, s).await?;
        if !p.is_operator() {
            return Err(ApiError::forbidden("this needs an operator account (admin or analyst)"));
        }
        Ok(Operator(p))
    }
}

/// An admin of the operator.
pub struct Admin(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &S) -> Result<Self, Self::Rejection> {
        let Authed(p) = Authed::from_request_parts(parts, s).await?;
        if !p.is_admin() {
            return Err(ApiError::forbidden("this needs an operator admin account"));
        }
        Ok(Admin(p))
    }
}

/// The caller as it is (anonymous allowed), for endpoints that serve anyone something.
pub struct Anyone(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for Anyone {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Caller>().cloned().unwrap_or(Caller::Anonymous) {
            Caller::Refused => Err(ApiError::unauthorized()),
            c => Ok(Anyone(c)),
        }
    }
}

/// Query-string parsing with the API's error shape.
pub struct Q<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, s)
            .await
            .map(|Query(t)| Q(t))
            .map_err(|e| ApiError::bad_request(format!("query string: {}", e.body_text())))
    }
}

/// A JSON body with the API's error shape.
pub struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, s: &S) -> Result<Self, Self::Rejection> {
        Json::<T>::from_request(req, s)
            .await
            .map(|Json(t)| Body(t))
            .map_err(|e| ApiError::new(e.status(), "bad_body", e.body_text()))
    }
}

/// Which organisation a request is about: a member's own, always; the operator's choice
/// (`?org=`), or all when it gives none.
pub(crate) fn scoped_org(p: &Principal, asked: Option<&str>) -> Option<String> {
    if p.is_operator() {
        asked.map(str::to_string)
    } else {
        Some(p.org_id.clone())
    }
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct OrgParam {
    pub org: Option<String>,
}

/// The display name of an IP protocol number.
pub fn proto_label(p: u8) -> &'static str {
    match p {
        6 => "tcp",
        17 => "udp",
        1 => "icmp",
        58 => "icmpv6",
        _ => "other",
    }
}

/// The `/api/v1` routes.
pub fn router(st: AppState) -> Router<AppState> {
    let _ = st;
    Router::new()
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/api/v1/login", post(session::login))
        .route("/api/v1/logout", post(session::logout))
        .route("/api/v1/me", get(session::me))
        .route("/api/v1/overview", get(darknet::overview))
        .route("/api/v1/stats", get(darknet::stats))
        .route("/api/v1/ports", get(darknet::ports))
        .route("/api/v1/findings", get(darknet::findings))
        .route("/api/v1/findings/{id}", get(darknet::finding))
        .route("/api/v1/campaigns", get(darknet::campaigns))
        .route("/api/v1/query", post(darknet::query))
        .route("/api/v1/live", get(crate::live::sse))
        .route("/api/v1/alerts", get(members::alerts))
        .route("/api/v1/alerts/{id}", get(members::alert))
        .route("/api/v1/alerts/{id}/ack", post(members::ack))
        .route("/api/v1/orgs", get(members::orgs).post(members::add_org))
        .route("/api/v1/prefixes", get(members::prefixes).post(members::add_prefix))
        .route("/api/v1/prefixes/{org}/{prefix}/{len}", delete(members::remove_prefix))
        .route("/api/v1/watches", get(members::watches).post(members::add_watch))
        .route("/api/v1/watches/{id}", delete(members::remove_watch))
        .route("/api/v1/intel/collections", get(intel::collections))
        .route("/api/v1/intel/objects", get(intel::objects))
        .route("/api/v1/intel/export", get(intel::export))
        .route("/api/v1/intel/correlate", get(intel::correlate))
        .route("/api/v1/ingest/{format}", post(ingest::push))
}
