//! The sensor bus: member sites publish their logs to a NATS JetStream stream as chunks of whole
//! records (one subject per member and sensor); the nexus consumes them with a durable consumer.
//!
//! A message carries its place in the original input (identity, offset, line), so the consumer
//! can tell a redelivered or re-published chunk from a new one: the chunk's position is recorded
//! in the lake's progress in the same commit as its rows, and the message is acknowledged only
//! after that commit. Org and sensor come from the subject, which NATS permissions can pin per
//! member account.

pub mod chunk;
pub mod consume;

use std::time::Duration;

use async_nats::header::HeaderMap;
use async_nats::jetstream::{self, consumer::pull, stream};

pub use chunk::{decode_chunk, Chunk, Chunker};
pub use consume::{consume, ConsumeOptions, ConsumeReport, DEFAULT_ACK_WAIT_S, DEFAULT_BATCH};

/// Stream the sensors publish to, unless configured otherwise.
pub const DEFAULT_STREAM: &str = "CYNEX_SENSORS";
/// Subjects are `<root>.<organisation>.<sensor>`.
pub const DEFAULT_SUBJECT_ROOT: &str = "cynex.sensor";
/// Durable consumer name of the nexus's ingesters.
pub const DEFAULT_DURABLE: &str = "cynex-ingest";
/// Organisation token for a sensor that belongs to no member.
const NO_ORG: &str = "_";

const H_FORMAT: &str = "Cynex-Format";
const H_SENSOR: &str = "Cynex-Sensor";
const H_SOURCE: &str = "Cynex-Source";
const H_PATH: &str = "Cynex-Path";
const H_OFFSET: &str = "Cynex-Offset";
const H_LINE: &str = "Cynex-Line";
const H_END: &str = "Cynex-End";
const H_END_LINE: &str = "Cynex-End-Line";
const H_CONTEXT: &str = "Cynex-Context";
const H_OVERSIZE: &str = "Cynex-Oversize";

/// A bus error: connecting, creating the stream or consumer, publishing, fetching.
#[derive(Debug, thiserror::Error)]
#[error("sensor bus {url}: {what}: {reason}")]
pub struct BusError {
    pub url: String,
    pub what: &'static str,
    pub reason: String,
}

/// Where the bus is.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// `nats://host:port` (several comma-separated servers are allowed).
    pub url: String,
    pub stream: String,
    pub subject_root: String,
}

impl BusConfig {
    pub fn new(url: &str) -> Self {
        BusConfig { url: url.to_string(), stream: DEFAULT_STREAM.into(), subject_root: DEFAULT_SUBJECT_ROOT.into() }
    }

    fn err(&self, what: &'static str) -> impl FnOnce(String) -> BusError + '_ {
        move |reason| BusError { url: self.url.clone(), what, reason }
    }

    /// Connect and make sure the stream exists (file storage, with a de-duplication window so a
    /// publisher that restarts does not store a chunk twice).
    pub async fn connect(&self) -> Result<(async_nats::Client, jetstream::Context, stream::Stream), BusError> {
        let client = async_nats::ConnectOptions::new()
            .name("cynex")
            .connect(self.url.as_str())
            .await
            .map_err(|e| self.err("connecting")(e.to_string()))?;
        let js = jetstream::new(client.clone());
        let st = js
            .get_or_create_stream(stream::Config {
                name: self.stream.clone(),
                subjects: vec![format!("{}.>", self.subject_root)],
                storage: stream::StorageType::File,
                duplicate_window: Duration::from_secs(600),
                ..Default::default()
            })
            .await
            .map_err(|e| self.err("opening the stream")(e.to_string()))?;
        Ok((client, js, st))
    }

    /// The durable pull consumer shared by every ingester: messages not acknowledged within
    /// `ack_wait` go to another ingester.
    pub async fn consumer(
        &self,
        st: &stream::Stream,
        durable: &str,
        ack_wait: Duration,
    ) -> Result<jetstream::consumer::Consumer<pull::Config>, BusError> {
        st.get_or_create_consumer(
            durable,
            pull::Config {
                durable_name: Some(durable.to_string()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait,
                filter_subject: format!("{}.>", self.subject_root),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| self.err("opening the consumer")(e.to_string()))
    }

    /// Publish one chunk; the returned future resolves when the stream has stored it.
    pub async fn publish(
        &self,
        js: &jetstream::Context,
        rec: &BusRecord,
    ) -> Result<jetstream::context::PublishAckFuture, BusError> {
        let subject = self.subject(rec.organisation.as_deref(), &rec.sensor);
        js.publish_with_headers(subject, rec.headers(), rec.payload().into())
            .await
            .map_err(|e| self.err("publishing")(e.to_string()))
    }

    pub fn subject(&self, organisation: Option<&str>, sensor: &str) -> String {
        format!("{}.{}.{}", self.subject_root, organisation.unwrap_or(NO_ORG), sensor.replace('.', "_"))
    }
}

/// An organisation name usable as a subject token.
pub fn valid_org_token(org: &str) -> bool {
    !org.is_empty() && org != NO_ORG && org.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'.' | b'*' | b'>'))
}

/// One chunk of a sensor's log, as sent on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusRecord {
    pub sensor: String,
    pub organisation: Option<String>,
    /// "eve", "zeek" or "cowrie".
    pub format: String,
    /// Identity of the input the chunk comes from (`input::identity`).
    pub source_id: String,
    /// The input's path at the sensor (informational).
    pub path: String,
    pub chunk: Chunk,
}

impl BusRecord {
    /// The chunk's position, unique per sensor: JetStream's de-duplication id is made of it
    /// (and lakes written before 2026-12-03 recorded each chunk under it).
    pub fn position_id(&self) -> String {
        format!("{}@{}", self.source_id, self.chunk.offset)
    }

    /// The lake progress entry of the chunk's input (one per input, holding the byte ranges
    /// committed): not the input's own identity, which a direct ingest of the same file uses.
    pub fn progress_id(&self) -> String {
        format!("{}@bus", self.source_id)
    }

    /// JetStream's de-duplication id: the chunk's whole byte range, so the stream drops only
    /// the same chunk sent twice (a publisher killed before saving its state), never a chunk
    /// that starts at the same place with more bytes (one that lost its state, on a file that
    /// grew); the consumer trims what such a chunk repeats.
    pub fn message_id(&self) -> String {
        format!("{}/{}-{}", self.sensor, self.position_id(), self.chunk.end)
    }

    pub fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        let c = &self.chunk;
        h.insert(H_FORMAT, self.format.as_str());
        h.insert(H_SENSOR, self.sensor.as_str());
        h.insert(H_SOURCE, self.source_id.as_str());
        // Header values are one line of text.
        h.insert(H_PATH, self.path.replace(['\r', '\n'], " ").as_str());
        for (k, v) in [(H_OFFSET, c.offset), (H_LINE, c.line), (H_END, c.end), (H_END_LINE, c.end_line)] {
            h.insert(k, v.to_string().as_str());
        }
        h.insert(H_CONTEXT, c.context.len().to_string().as_str());
        h.insert(async_nats::header::NATS_MESSAGE_ID, self.message_id().as_str());
        if let Some(n) = c.oversize {
            h.insert(H_OVERSIZE, n.to_string().as_str());
        }
        h
    }

    /// The message body: the Zeek header context, then the chunk's bytes.
    pub fn payload(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(self.chunk.context.len() + self.chunk.bytes.len());
        p.extend_from_slice(&self.chunk.context);
        p.extend_from_slice(&self.chunk.bytes);
        p
    }

    /// Read a message back; the organisation comes from the subject. `Err` says why the message
    /// is not a cynex chunk.
    pub fn from_message(
        cfg: &BusConfig,
        subject: &str,
        headers: Option<&HeaderMap>,
        payload: &[u8],
    ) -> Result<BusRecord, String> {
        let h = headers.ok_or("message without cynex headers")?;
        let text = |k: &str| -> Result<String, String> {
            h.get(k).map(|v| v.as_str().to_string()).ok_or_else(|| format!("message without the {k} header"))
        };
        let num = |k: &str| -> Result<u64, String> {
            text(k)?.trim().parse::<u64>().map_err(|_| format!("header {k} is not a number"))
        };
        let org_token = subject
            .strip_prefix(&cfg.subject_root)
            .and_then(|s| s.strip_prefix('.'))
            .and_then(|s| s.split('.').next())
            .ok_or_else(|| format!("subject {subject} is not under {}", cfg.subject_root))?;
        let organisation = (org_token != NO_ORG).then(|| org_token.to_string());
        let context_len = num(H_CONTEXT)? as usize;
        if context_len > payload.len() {
            return Err(format!("header {H_CONTEXT} ({context_len}) is longer than the body ({})", payload.len()));
        }
        let oversize = match h.get(H_OVERSIZE) {
            Some(_) => Some(num(H_OVERSIZE)?),
            None => None,
        };
        let chunk = Chunk {
            offset: num(H_OFFSET)?,
            line: num(H_LINE)?,
            end: num(H_END)?,
            end_line: num(H_END_LINE)?,
            context: payload[..context_len].to_vec(),
            bytes: payload[context_len..].to_vec(),
            oversize,
        };
        if chunk.end < chunk.offset || chunk.end_line < chunk.line {
            return Err("chunk ends before it starts".into());
        }
        Ok(BusRecord {
            sensor: text(H_SENSOR)?,
            organisation,
            format: text(H_FORMAT)?,
            source_id: text(H_SOURCE)?,
            path: text(H_PATH).unwrap_or_default(),
            chunk,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_through_headers() {
        let cfg = BusConfig::new("nats://127.0.0.1:4222");
        let rec = BusRecord {
            sensor: "ids.1".into(),
            organisation: Some("member-a".into()),
            format: "zeek".into(),
            source_id: "abc".into(),
            path: "/var/log/zeek/conn.log".into(),
            chunk: Chunk {
                offset: 10,
                line: 2,
                end: 30,
                end_line: 4,
                context: b"#separator \\x09\n".to_vec(),
                bytes: b"a\tb\nc\td\n".to_vec(),
                oversize: None,
            },
        };
        let subject = cfg.subject(rec.organisation.as_deref(), &rec.sensor);
        assert_eq!(subject, "cynex.sensor.member-a.ids_1");
        let back = BusRecord::from_message(&cfg, &subject, Some(&rec.headers()), &rec.payload()).unwrap();
        assert_eq!(back, rec);
        assert!(BusRecord::from_message(&cfg, &subject, None, b"x").is_err());
        let mut h = rec.headers();
        h.insert(H_CONTEXT, "999");
        assert!(BusRecord::from_message(&cfg, &subject, Some(&h), &rec.payload()).unwrap_err().contains("longer"));
        assert!(!valid_org_token("a.b") && !valid_org_token("_") && !valid_org_token("") && valid_org_token("m-1"));
    }
}
