//! The live view's feed (in the spirit of NICTERWEB's Atlas and Cube): darknet packets as they
//! arrive in the lake, streamed to browsers as Server-Sent Events.
//!
//! A feeder task polls the lake for packets newer than the last it sent and publishes them,
//! sampled down to a rate a browser can draw. When nothing new has arrived for a while (a lake of
//! recorded traffic, like the demo's) it replays the newest hour it has, and says so in each event
//! (`"replay": true`), so the view is never mistaken for live traffic. It only reads while someone
//! watches. Slow subscribers lose events (counted), never slow the feeder.
//!
//! Members do not see backscatter packets from outside their own address space (a DDoS victim's
//! address is that victim's business).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use cynex_lake::{QueryOptions, QuerySession};
use cynex_model::ip::{fmt_ip4, Ipv4Net};
use cynex_model::time::{parse_rfc3339_us, rfc3339_us};
use cynex_model::{fp, tags};
use futures::stream::{self, Stream};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::api::{ApiResult, Authed};
use crate::AppState;

#[derive(Debug, Clone, Serialize)]
pub struct LiveEvent {
    /// Packet time, µs.
    pub t: i64,
    pub src: String,
    #[serde(skip)]
    pub src_ip: u32,
    pub dport: Option<u16>,
    pub proto: &'static str,
    /// Tool fingerprint of the packet, if any (`mirai`, `masscan`, `zmap`, …).
    pub tool: Option<&'static str>,
    pub backscatter: bool,
    /// Replayed from recorded traffic, not just arrived.
    pub replay: bool,
}

#[derive(Clone)]
pub struct LiveHub {
    tx: broadcast::Sender<Arc<LiveEvent>>,
}

impl Default for LiveHub {
    fn default() -> Self {
        LiveHub::new()
    }
}

impl LiveHub {
    pub fn new() -> LiveHub {
        let (tx, _) = broadcast::channel(4096);
        LiveHub { tx }
    }

    pub fn publish(&self, e: LiveEvent) {
        let _ = self.tx.send(Arc::new(e));
    }

    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.tx.subscribe()
    }
}

fn tool_of(bits: u16) -> Option<&'static str> {
    [
        (fp::MIRAI, "mirai"),
        (fp::MASSCAN, "masscan"),
        (fp::ZMAP, "zmap"),
        (fp::NMAP_SYN, "nmap"),
        (fp::UNICORN, "unicornscan"),
    ]
    .into_iter()
    .find(|(b, _)| bits & b != 0)
    .map(|(_, n)| n)
}

/// `GET /api/v1/live`: the event stream.
pub async fn sse(
    State(st): State<AppState>,
    Authed(p): Authed,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let own: Option<Vec<Ipv4Net>> = if p.is_operator() {
        None
    } else {
        Some(st.store.prefixes(Some(&p.org_id)).await?.into_iter().map(|x| x.prefix).collect())
    };
    let rx = st.live.subscribe();
    let metrics = Arc::clone(&st.metrics);
    let s = stream::unfold((rx, own, metrics), |(mut rx, own, metrics)| async move {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    let allowed =
                        !e.backscatter || own.as_ref().is_none_or(|nets| nets.iter().any(|n| n.contains(e.src_ip)));
                    if !allowed {
                        continue;
                    }
                    let ev = Event::default().event("packet").json_data(&*e).unwrap_or_default();
                    return Some((Ok(ev), (rx, own, metrics)));
                }
                Err(broadcast::error::RecvError::Lagged(n)) => metrics.live_events_dropped.add(n),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// How the feeder paces itself.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// Most packets per second sent to viewers.
    pub rate: usize,
    pub poll: Duration,
    /// After this long with nothing new, replay the newest hour.
    pub replay_after: Duration,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig { rate: 60, poll: Duration::from_secs(2), replay_after: Duration::from_secs(10) }
    }
}

struct Row {
    t: i64,
    src: u32,
    dport: Option<u16>,
    proto: Option<u8>,
    fp: u16,
    tags: u16,
}

fn rows_of(v: Vec<serde_json::Map<String, Value>>) -> Vec<Row> {
    v.into_iter()
        .filter_map(|m| {
            Some(Row {
                t: m.get("ts").and_then(Value::as_str).and_then(parse_rfc3339_us)?,
                src: m.get("src_ip4").and_then(Value::as_u64)? as u32,
                dport: m.get("dst_port").and_then(Value::as_u64).map(|p| p as u16),
                proto: m.get("proto").and_then(Value::as_u64).map(|p| p as u8),
                fp: m.get("fp").and_then(Value::as_u64).unwrap_or(0) as u16,
                tags: m.get("tags").and_then(Value::as_u64).unwrap_or(0) as u16,
            })
        })
        .collect()
}

fn event(r: &Row, replay: bool) -> LiveEvent {
    LiveEvent {
        t: r.t,
        src: fmt_ip4(r.src),
        src_ip: r.src,
        dport: r.dport,
        proto: crate::api::proto_label(r.proto.unwrap_or(0)),
        tool: tool_of(r.fp),
        backscatter: r.tags & tags::BACKSCATTER != 0,
        replay,
    }
}

const COLS: &str = "ts, src_ip4, dst_port, proto, fp, tags";

/// Feed the hub until the process ends.
pub async fn run_feeder(st: AppState, cfg: FeedConfig) {
    let mut last_ts: Option<i64> = None;
    let mut last_new = std::time::Instant::now();
    let mut replay: Vec<Row> = Vec::new();
    let mut replay_at = 0usize;
    loop {
        tokio::time::sleep(cfg.poll).await;
        if st.live.subscribers() == 0 {
            continue;
        }
        let batch = cfg.rate * cfg.poll.as_secs().max(1) as usize;
        let q = match QuerySession::open(&st.lake, &QueryOptions { memory_limit: 256 << 20, ..QueryOptions::default() })
        {
            Ok(q) => q,
            Err(e) => {
                tracing::warn!(error = %e, "live feed: opening the lake");
                continue;
            }
        };
        let start = match last_ts {
            Some(t) => t,
            None => {
                // Begin at the newest packets.
                match q.json_rows("SELECT max(ts) AS t FROM packets").await {
                    Ok(r) => {
                        let t = r.first().and_then(|m| m.get("t")).and_then(Value::as_str).and_then(parse_rfc3339_us);
                        last_ts = t;
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "live feed");
                        continue;
                    }
                }
            }
        };
        let day = cynex_model::time::date_string(start.div_euclid(86_400_000_000));
        let fresh = q
            .json_rows(&format!(
                "SELECT {COLS} FROM packets WHERE date >= DATE '{day}' AND ts > '{}' ORDER BY ts LIMIT {}",
                rfc3339_us(start),
                batch * 20
            ))
            .await
            .map(rows_of)
            .unwrap_or_default();
        if !fresh.is_empty() {
            last_new = std::time::Instant::now();
            last_ts = fresh.last().map(|r| r.t);
            let step = (fresh.len() / batch).max(1);
            let gap = cfg.poll / (fresh.len() / step).max(1) as u32;
            for r in fresh.iter().step_by(step) {
                st.live.publish(event(r, false));
                tokio::time::sleep(gap).await;
            }
            replay.clear();
            continue;
        }
        if last_new.elapsed() < cfg.replay_after {
            continue;
        }
        if replay.is_empty() {
            let hour_start = start - 3_600_000_000;
            replay = q
                .json_rows(&format!(
                    "SELECT {COLS} FROM packets WHERE date >= DATE '{}' AND ts > '{}' AND ts <= '{}' ORDER BY ts LIMIT 50000",
                    cynex_model::time::date_string(hour_start.div_euclid(86_400_000_000)),
                    rfc3339_us(hour_start),
                    rfc3339_us(start)
                ))
                .await
                .map(rows_of)
                .unwrap_or_default();
            replay_at = 0;
            if replay.is_empty() {
                continue;
            }
        }
        let gap = cfg.poll / batch.max(1) as u32;
        for _ in 0..batch {
            let r = &replay[replay_at % replay.len()];
            replay_at += 1;
            st.live.publish(event(r, true));
            tokio::time::sleep(gap).await;
        }
    }
}
