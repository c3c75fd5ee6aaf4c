//! The nexus end of the sensor bus: a durable JetStream pull consumer writes each chunk to the
//! lake with the chunk's byte range as its progress, in one commit, and acknowledges only after
//! that commit; a chunk whose bytes are already in the lake is acknowledged without writing. The
//! lake keeps one progress entry per input with its committed ranges merged (not one per chunk),
//! so the snapshot grows with inputs, not with chunks.
//! So a killed consumer resumes with nothing lost and nothing doubled, and several consumers (the
//! CLI's `cynex ingest bus`, `cynex serve --bus`) share the work.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cynex_lake::{Lake, SourceProgress, WriterOptions};
use futures::StreamExt;

use super::{decode_chunk, BusConfig, BusRecord, Chunk};
use crate::pipeline::{lake_err, write_decoded};
use crate::records::Decoded;
use crate::{QuarantineRecord, Result};

#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    pub bus: BusConfig,
    pub durable: String,
    /// Messages fetched (and committed together) at most per round.
    pub batch: usize,
    /// Stop after this long without a message (default: run until stopped).
    pub idle_exit: Option<Duration>,
    /// How long JetStream waits for an acknowledgement before handing a message to another
    /// consumer.
    pub ack_wait: Duration,
    pub writer: WriterOptions,
}

/// Messages fetched and committed together, unless configured otherwise.
pub const DEFAULT_BATCH: usize = 256;
/// Seconds JetStream waits for an acknowledgement before redelivering, unless configured otherwise.
pub const DEFAULT_ACK_WAIT_S: u64 = 60;

impl ConsumeOptions {
    /// The nexus's shared durable consumer with the default batch and ack wait, running until
    /// stopped.
    pub fn new(bus: BusConfig) -> Self {
        ConsumeOptions {
            bus,
            durable: super::DEFAULT_DURABLE.into(),
            batch: DEFAULT_BATCH,
            idle_exit: None,
            ack_wait: Duration::from_secs(DEFAULT_ACK_WAIT_S),
            writer: WriterOptions::default(),
        }
    }
}

/// What consuming did: for a whole run, or for one batch (see [`consume`]'s `on_batch`).
#[derive(Debug, Default, Clone)]
pub struct ConsumeReport {
    pub messages: u64,
    /// Messages whose chunk was already in the lake (redelivered or re-published).
    pub duplicates: u64,
    /// Messages whose chunk was partly in the lake (re-published cut at other places by a
    /// publisher that lost its state): only the bytes not yet in it were written.
    pub trimmed: u64,
    /// Messages that are not cynex chunks (quarantined whole).
    pub bad_messages: u64,
    pub events: u64,
    pub quarantined: u64,
    pub commits: u64,
    /// Commits lost to another consumer's commit of the same chunk (the messages are retried).
    pub conflicts: u64,
    pub seconds: f64,
}

impl ConsumeReport {
    fn add(&mut self, o: &ConsumeReport) {
        self.messages += o.messages;
        self.duplicates += o.duplicates;
        self.trimmed += o.trimmed;
        self.bad_messages += o.bad_messages;
        self.events += o.events;
        self.quarantined += o.quarantined;
        self.commits += o.commits;
        self.conflicts += o.conflicts;
    }
}

/// Consume the bus into the lake until idle for `idle_exit`, or until `stop` is set (checked
/// between batches, so a batch is never left half-acknowledged). `on_batch` sees each batch's
/// counts once its messages are acknowledged. Needs a multi-threaded tokio runtime (the lake
/// writes run in place on a worker thread).
pub async fn consume(
    lake: &Lake,
    opts: &ConsumeOptions,
    stop: &AtomicBool,
    on_batch: &mut (dyn FnMut(&ConsumeReport) + Send),
) -> Result<ConsumeReport> {
    let start = Instant::now();
    let (client, _js, stream) = opts.bus.connect().await?;
    let consumer = opts.bus.consumer(&stream, &opts.durable, opts.ack_wait).await?;
    let mut rep = ConsumeReport::default();
    let mut last_message = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let mut batch = consumer
            .fetch()
            .max_messages(opts.batch.max(1))
            .expires(Duration::from_secs(1))
            .messages()
            .await
            .map_err(|e| opts.bus.err("fetching")(e.to_string()))?;
        let mut msgs = Vec::new();
        while let Some(m) = batch.next().await {
            match m {
                Ok(m) => msgs.push(m),
                Err(e) => tracing::warn!("fetching from the bus: {e}"),
            }
        }
        if msgs.is_empty() {
            if opts.idle_exit.is_some_and(|d| last_message.elapsed() >= d) {
                break;
            }
            continue;
        }
        last_message = Instant::now();
        let mut this = ConsumeReport { messages: msgs.len() as u64, ..Default::default() };
        let verdicts = tokio::task::block_in_place(|| write_batch(lake, opts, &msgs, &mut this))?;
        for (m, ok) in msgs.iter().zip(verdicts) {
            let r = if ok {
                m.ack().await
            } else {
                m.ack_with(async_nats::jetstream::AckKind::Nak(Some(Duration::from_millis(500)))).await
            };
            if let Err(e) = r {
                // Not acknowledged: JetStream redelivers it and the lake's progress skips it.
                tracing::warn!("acknowledging a message: {e}");
            }
        }
        client.flush().await.map_err(|e| opts.bus.err("flushing acknowledgements")(e.to_string()))?;
        rep.add(&this);
        on_batch(&this);
    }
    rep.seconds = start.elapsed().as_secs_f64();
    Ok(rep)
}

/// Where a message sits in the stream, for quarantine and de-duplication.
fn where_of(opts: &ConsumeOptions, m: &async_nats::jetstream::Message) -> String {
    format!("nats:{}#{}", opts.bus.stream, m.info().map(|i| i.stream_sequence).unwrap_or(0))
}

/// A message to write: its index in the batch, its record, and the parts of its chunk not yet in
/// the lake (`None`: all of it).
type ToWrite = (usize, BusRecord, Option<Vec<Chunk>>);

/// Commit inputs (or pieces of inputs) that must be new. `false` when another consumer
/// committed one of them first: nothing was committed and the messages are to be redelivered
/// (then skipped as duplicates).
fn commit_once(
    tx: &mut cynex_lake::Transaction,
    progress: Vec<SourceProgress>,
    pieces: bool,
    rep: &mut ConsumeReport,
) -> Result<bool> {
    let r = if pieces { tx.commit_pieces("ingest-bus", progress) } else { tx.commit_new("ingest-bus", progress) };
    match r {
        Ok(_) => {
            rep.commits += 1;
            Ok(true)
        }
        Err(cynex_lake::Error::Conflict(why)) => {
            tracing::info!("another consumer committed part of this batch first ({why}); retrying it");
            rep.conflicts += 1;
            Ok(false)
        }
        Err(e) => Err(lake_err("committing to the lake")(e)),
    }
}

/// Sensor name under which messages that are not cynex chunks are quarantined.
const BAD_MESSAGE_SENSOR: &str = "bus";

/// Write a fetched batch, one commit per sensor; `true` for each message to acknowledge (its
/// chunk is in the lake now or was before), `false` to have it redelivered.
fn write_batch(
    lake: &Lake,
    opts: &ConsumeOptions,
    msgs: &[async_nats::jetstream::Message],
    rep: &mut ConsumeReport,
) -> Result<Vec<bool>> {
    let parsed: Vec<std::result::Result<BusRecord, String>> = msgs
        .iter()
        .map(|m| {
            BusRecord::from_message(&opts.bus, m.subject.as_str(), m.headers.as_ref(), &m.payload).and_then(|r| {
                if cynex_lake::valid_sensor_name(&r.sensor) {
                    Ok(r)
                } else {
                    Err(format!("sensor name {:?} is not valid", r.sensor))
                }
            })
        })
        .collect();
    // Ask the lake once which bytes of each chunk it does not hold yet, and (for the bad
    // messages, and for chunks committed whole by versions before 2026-12-03) which keys it has.
    let good: Vec<&BusRecord> = parsed.iter().filter_map(|r| r.as_ref().ok()).collect();
    let pieces: Vec<(String, String, u64, u64)> =
        good.iter().map(|r| (r.sensor.clone(), r.progress_id(), r.chunk.offset, r.chunk.end)).collect();
    let open = lake.uncommitted_pieces(&pieces).map_err(lake_err("reading the lake's progress"))?;
    let keys: Vec<(String, String)> = parsed
        .iter()
        .zip(msgs)
        .map(|(r, m)| match r {
            Ok(r) => (r.sensor.clone(), r.position_id()),
            Err(_) => (BAD_MESSAGE_SENSOR.to_string(), format!("{} {}", where_of(opts, m), m.subject)),
        })
        .collect();
    let recorded = lake.recorded(&keys).map_err(lake_err("reading the lake's progress"))?;
    let mut verdict = vec![false; msgs.len()];
    let mut seen = HashSet::new();
    // Bytes of each input this batch writes, so two messages of it cannot both write a byte.
    let mut claimed: HashMap<(String, String), Vec<(u64, u64)>> = HashMap::new();
    let mut groups: BTreeMap<String, Vec<ToWrite>> = BTreeMap::new();
    let mut bad: Vec<(usize, QuarantineRecord, String)> = Vec::new();
    let mut open = open.into_iter();
    for (i, ((rec, key), m)) in parsed.into_iter().zip(keys).zip(msgs).enumerate() {
        match rec {
            Ok(rec) => {
                let open = open.next().unwrap_or_default();
                let mine = claimed.entry((rec.sensor.clone(), rec.progress_id())).or_default();
                let todo: Vec<(u64, u64)> =
                    open.iter().flat_map(|&(lo, hi)| cynex_lake::uncovered(mine, lo, hi)).collect();
                if recorded[i] || todo.is_empty() {
                    rep.duplicates += 1;
                    verdict[i] = true;
                    continue;
                }
                for &(lo, hi) in &todo {
                    cynex_lake::insert_range(mine, lo, hi);
                }
                let whole = todo == [(rec.chunk.offset, rec.chunk.end)];
                let parts = if whole {
                    None
                } else {
                    // Part of it is in the lake already: a publisher that lost its state sent
                    // it again, cut at other places. Only the new bytes are written.
                    rep.trimmed += 1;
                    let parts: Vec<Chunk> =
                        todo.iter().filter_map(|&(lo, hi)| rec.chunk.slice(lo, hi, rec.format == "zeek")).collect();
                    if parts.len() < todo.len() {
                        // Only an over-long record, cut short and quarantined, cannot be sliced;
                        // chunks end at record ends, so this needs a record sent in two parts.
                        tracing::warn!(
                            place = %where_of(opts, m), input = %rec.path, ranges = ?todo,
                            "part of an over-long record is committed already; the rest is not written again"
                        );
                    }
                    Some(parts)
                };
                groups.entry(rec.sensor.clone()).or_default().push((i, rec, parts));
            }
            Err(reason) => {
                if recorded[i] || !seen.insert(key.clone()) {
                    rep.duplicates += 1;
                    verdict[i] = true;
                    continue;
                }
                rep.bad_messages += 1;
                let source = format!("{} ({})", where_of(opts, m), m.subject);
                bad.push((i, QuarantineRecord::new("bus", &source, 0, reason, &m.payload), key.1));
            }
        }
    }
    for (sensor, recs) in groups {
        let mut tx = lake.begin(&sensor, opts.writer.clone()).map_err(lake_err("starting a lake transaction"))?;
        let mut progress = Vec::with_capacity(recs.len());
        let (mut events, mut quarantined) = (0, 0);
        for (_, rec, parts) in &recs {
            for part in parts.as_deref().unwrap_or(std::slice::from_ref(&rec.chunk)) {
                let d = decode_chunk(&rec.format, part, &rec.path, rec.organisation.as_deref());
                let (ev, q) = write_decoded(&mut tx, d)?;
                events += ev;
                quarantined += q;
                progress.push(SourceProgress {
                    id: rec.progress_id(),
                    sensor: sensor.clone(),
                    format: rec.format.clone(),
                    path: rec.path.clone(),
                    ranges: vec![(part.offset, part.end)],
                    read: ev + q,
                    written: ev,
                    quarantined: q,
                    ..Default::default()
                });
            }
        }
        if progress.is_empty() || commit_once(&mut tx, progress, true, rep)? {
            rep.events += events;
            rep.quarantined += quarantined;
            for (i, _, _) in &recs {
                verdict[*i] = true;
            }
        }
    }
    if !bad.is_empty() {
        let mut tx =
            lake.begin(BAD_MESSAGE_SENSOR, opts.writer.clone()).map_err(lake_err("starting a lake transaction"))?;
        let progress = bad
            .iter()
            .map(|(_, q, id)| SourceProgress {
                id: id.clone(),
                sensor: BAD_MESSAGE_SENSOR.into(),
                format: "bus".into(),
                path: q.source.clone(),
                offset: 0,
                complete: true,
                read: 1,
                written: 0,
                quarantined: 1,
                error: Some(q.reason.clone()),
                ..Default::default()
            })
            .collect();
        let (indices, quarantine): (Vec<usize>, Vec<QuarantineRecord>) =
            bad.into_iter().map(|(i, q, _)| (i, q)).unzip();
        let n = quarantine.len() as u64;
        let d: Decoded = Decoded { quarantine, ..Default::default() };
        write_decoded(&mut tx, d)?;
        if commit_once(&mut tx, progress, false, rep)? {
            rep.quarantined += n;
            for i in indices {
                verdict[i] = true;
            }
        }
    }
    Ok(verdict)
}
