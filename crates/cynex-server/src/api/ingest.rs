//! HTTP push for sensors that cannot run the agent: `POST /api/v1/ingest/{format}?sensor=NAME`
//! with a member's token and a log (or capture) as the body, plain or gzip/zstd.
//!
//! The body is bounded (413 past `ingest_max_bytes`), spooled to `spool/<sensor>/` (written to a
//! temporary name, fsynced, renamed), then ingested by the same pipeline as `cynex ingest`, with
//! the same quarantine rules, the events tagged with the caller's organisation (never one named
//! in the request). The input's identity is its content, so a retried push of the same body is a
//! no-op, and a push interrupted by a crash is finished from the spool at the next start.

use std::io::Write;
use std::path::{Path, PathBuf};

use axum::body::to_bytes;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::StatusCode;
use axum::Json;
use cynex_ingest::pipeline::{self, FileStatus, IngestOptions, InputFormat};
use serde_json::{json, Value};

use super::{ApiError, ApiResult, Authed};
use crate::AppState;

pub(crate) fn format_of(s: &str) -> Option<InputFormat> {
    Some(match s {
        "eve" => InputFormat::Eve,
        "zeek" => InputFormat::Zeek,
        "cowrie" => InputFormat::Cowrie,
        "pcap" => InputFormat::Pcap,
        "auto" => InputFormat::Auto,
        _ => return None,
    })
}

/// Write `body` durably under `dir` as `name`.
fn spool(dir: &Path, name: &str, body: &[u8]) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(name);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(body)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(path)
}

/// The spool directory of the service.
pub(crate) fn spool_dir(st: &AppState) -> PathBuf {
    st.config.data_dir.join("spool")
}

/// Ingest one spooled file for `org` (the pipeline's report), and remove it once it is in the lake.
pub(crate) fn ingest_spooled(
    lake: &cynex_lake::Lake,
    path: &Path,
    sensor: &str,
    org: &str,
    format: InputFormat,
) -> cynex_ingest::Result<pipeline::IngestReport> {
    let opts = IngestOptions {
        sensor: sensor.to_string(),
        progress: false,
        max_warnings: 0,
        identity_scope: Some(org.to_string()),
        ..IngestOptions::default()
    };
    let rep = pipeline::ingest(lake, &[path.to_path_buf()], &opts, format, Some(org))?;
    if rep.files.iter().all(|f| !matches!(f.status, FileStatus::Unreadable(_))) {
        let _ = std::fs::remove_file(path);
    }
    Ok(rep)
}

pub(crate) async fn push(
    State(st): State<AppState>,
    Authed(p): Authed,
    UrlPath(fmt): UrlPath<String>,
    req: Request,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let refuse = |e: ApiError| {
        st.metrics.ingest_requests_refused.inc();
        e
    };
    let format = format_of(&fmt)
        .ok_or_else(|| refuse(ApiError::bad_request(format!("format {fmt:?}: eve, zeek, cowrie, pcap or auto"))))?;
    let sensor = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("sensor="))
        .unwrap_or_default()
        .to_string();
    if !cynex_lake::valid_sensor_name(&sensor) {
        return Err(refuse(ApiError::bad_request(
            "sensor: name the sending sensor, e.g. ?sensor=ids-1 (letters, digits, - _ .)",
        )));
    }
    let max = st.config.ingest_max_bytes;
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let too_large = || {
        refuse(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body may be at most {max} bytes"),
        ))
    };
    if declared.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let body = to_bytes(req.into_body(), max).await.map_err(|_| too_large())?;
    if body.is_empty() {
        return Err(refuse(ApiError::bad_request("the body is empty")));
    }
    let digest = cynex_store::secret::sha256_hex(&body);
    let dir = spool_dir(&st).join(&sensor);
    let name = format!("{}-{}.{fmt}", p.org, &digest[..24]);
    let path = tokio::task::spawn_blocking(move || spool(&dir, &name, &body))
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(|e| {
            tracing::error!(error = %e, "spooling a pushed body");
            ApiError::internal()
        })?;
    let (lake, sensor2, org) = (st.lake.clone(), sensor.clone(), p.org.clone());
    let rep = tokio::task::spawn_blocking(move || ingest_spooled(&lake, &path, &sensor2, &org, format))
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(|e| {
            tracing::error!(error = %e, "ingesting a pushed body");
            ApiError::internal()
        })?;
    let f = rep.files.first();
    let status = match f.map(|f| &f.status) {
        Some(FileStatus::AlreadyIngested) => "already_ingested",
        Some(FileStatus::Unreadable(_)) => "unreadable",
        _ => "ingested",
    };
    st.metrics.ingest_records_received.add(rep.read());
    st.metrics.ingest_records_written.add(rep.written());
    st.metrics.ingest_records_quarantined.add(rep.quarantined());
    tracing::info!(org = %p.org, sensor = %sensor, status, read = rep.read(), quarantined = rep.quarantined(), "http push");
    let mut out = json!({
        "status": status, "sensor": sensor, "organisation": p.org, "format": fmt, "input": digest,
        "read": rep.read(), "written": rep.written(), "quarantined": rep.quarantined(), "bytes": rep.bytes(),
    });
    if let Some(FileStatus::Unreadable(why)) = f.map(|f| &f.status) {
        out["error"] = json!(why);
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(out)));
    }
    Ok((StatusCode::OK, Json(out)))
}
