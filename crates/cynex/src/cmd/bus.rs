//! The sensor bus from both ends. `cynex sensor --publish` runs at a member site: it cuts logs
//! into chunks of whole records and publishes them to NATS JetStream, remembering per input how
//! far the stream has stored it. `cynex ingest bus --from` runs at the nexus: a durable pull
//! consumer writes each chunk to the lake with the chunk's position as its progress, in one
//! commit, and acknowledges only after that commit; a chunk whose position is already in the
//! lake is acknowledged without writing. So a killed publisher or consumer resumes with nothing
//! lost and nothing doubled, and several consumers share the work.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use cynex_ingest::bus::{decode_chunk, BusConfig, BusRecord, Chunker};
use cynex_ingest::input;
use cynex_ingest::records::Decoded;
use cynex_ingest::QuarantineRecord;
use cynex_lake::{Lake, SourceProgress, WriterOptions};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::output::{bytes, thousands};
use cynex_ingest::pipeline::{detect, write_decoded, InputFormat};

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().context("starting tokio")
}

#[derive(Debug, Clone)]
pub struct PublishOptions {
    pub bus: BusConfig,
    pub sensor: String,
    pub organisation: Option<String>,
    pub format: InputFormat,
    /// Where the publisher remembers how far each input has been stored by the stream.
    pub state_dir: PathBuf,
    /// Aimed-at chunk size in bytes.
    pub chunk_bytes: usize,
}

/// What the publisher remembers of one input. The identity is the hash of the input's first
/// `prefix_len` bytes when first seen, so a short file that grows is still recognised.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Published {
    prefix_len: usize,
    path: String,
    format: String,
    /// Everything before this offset is stored in the stream.
    offset: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct PublishState {
    /// By input identity.
    sources: BTreeMap<String, Published>,
}

impl PublishState {
    fn path(dir: &Path, sensor: &str) -> PathBuf {
        dir.join(format!("publish-{sensor}.json"))
    }

    fn load(dir: &Path, sensor: &str) -> anyhow::Result<Self> {
        let p = Self::path(dir, sensor);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).with_context(|| format!("reading {}", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
        }
    }

    /// Write atomically: a crash leaves the old state or the new, never a torn one.
    fn save(&self, dir: &Path, sensor: &str) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let p = Self::path(dir, sensor);
        let tmp = p.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(&serde_json::to_vec_pretty(self)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &p).with_context(|| format!("renaming {}", tmp.display()))?;
        Ok(())
    }

    /// The input's identity: an input seen before (same first bytes, at any path) keeps the
    /// identity it was first given.
    fn identify(&self, path: &Path) -> anyhow::Result<(String, usize)> {
        let mut lens: Vec<usize> = self.sources.values().map(|p| p.prefix_len).collect();
        lens.sort_unstable();
        lens.dedup();
        for len in lens {
            let (id, n) = input::identity_of_prefix(path, len)?;
            if n == len && self.sources.get(&id).is_some_and(|p| p.prefix_len == len) {
                return Ok((id, len));
            }
        }
        Ok(input::identity_of_prefix(path, input::IDENTITY_PREFIX)?)
    }
}

#[derive(Debug, Default)]
pub struct PublishReport {
    pub files: usize,
    pub chunks: u64,
    pub bytes: u64,
    pub up_to_date: usize,
    pub errors: Vec<String>,
    pub seconds: f64,
}

impl PublishReport {
    pub fn summary(&self, opts: &PublishOptions) -> String {
        let mut s = format!(
            "published {} chunk(s), {} from {} input(s) to {} as sensor {} in {:.2} s ({}/s)",
            thousands(self.chunks),
            bytes(self.bytes),
            self.files,
            opts.bus.subject(opts.organisation.as_deref(), &opts.sensor),
            opts.sensor,
            self.seconds,
            bytes((self.bytes as f64 / self.seconds.max(1e-9)) as u64)
        );
        if self.up_to_date > 0 {
            s += &format!(", {} already published", self.up_to_date);
        }
        if !self.errors.is_empty() {
            s += &format!(", {} unreadable", self.errors.len());
        }
        s
    }
}

/// Publish logs (files or directories) to the bus.
pub fn publish(paths: &[PathBuf], opts: &PublishOptions) -> anyhow::Result<PublishReport> {
    if !cynex_lake::valid_sensor_name(&opts.sensor) {
        anyhow::bail!("sensor name {:?}: use 1-64 characters of A-Z a-z 0-9 . _ -", opts.sensor);
    }
    if let Some(o) = &opts.organisation {
        if !cynex_ingest::bus::valid_org_token(o) {
            anyhow::bail!("organisation {o:?} cannot be a NATS subject token (no '.', '*', '>', spaces)");
        }
    }
    runtime()?.block_on(publish_async(paths, opts))
}

async fn publish_async(paths: &[PathBuf], opts: &PublishOptions) -> anyhow::Result<PublishReport> {
    let start = Instant::now();
    let (client, js, _stream) = opts.bus.connect().await?;
    // Headers take a few hundred bytes; keep well inside the server's message limit.
    let max_payload = client.max_payload().max(64 << 10) - (8 << 10);
    let mut state = PublishState::load(&opts.state_dir, &opts.sensor)?;
    let mut rep = PublishReport::default();
    let (files, errs) = input::expand_paths(paths);
    rep.errors = errs.iter().map(|e| e.to_string()).collect();
    for f in &files {
        let fmt = match opts.format {
            InputFormat::Auto => detect(f),
            other => Ok(other),
        };
        let fmt = match fmt {
            Ok(InputFormat::Pcap) => Err("captures are not sent over the bus: use `cynex ingest pcap`".to_string()),
            other => other,
        };
        let fmt = match fmt {
            Ok(x) => x,
            Err(why) => {
                rep.errors.push(format!("{}: {why}", f.display()));
                continue;
            }
        };
        match publish_file(&opts.bus, &js, f, fmt, max_payload, opts, &mut state, &mut rep).await {
            Ok(()) => {}
            Err(e) => rep.errors.push(format!("{}: {e:#}", f.display())),
        }
    }
    for e in &rep.errors {
        eprintln!("error: {e}");
    }
    rep.seconds = start.elapsed().as_secs_f64();
    Ok(rep)
}

#[allow(clippy::too_many_arguments)]
async fn publish_file(
    bus: &BusConfig,
    js: &async_nats::jetstream::Context,
    path: &Path,
    fmt: InputFormat,
    max_payload: usize,
    opts: &PublishOptions,
    state: &mut PublishState,
    rep: &mut PublishReport,
) -> anyhow::Result<()> {
    let (id, prefix_len) = state.identify(path)?;
    let shown = path.display().to_string();
    let done = state.sources.get(&id).map_or(0, |p| p.offset);
    let opened = input::open(path)?;
    let mut chunker = Chunker::new(opened.reader, fmt == InputFormat::Zeek, opts.chunk_bytes, max_payload);
    let mut pending = VecDeque::new();
    let mut sent_any = false;
    // Record progress only once the stream has stored a chunk (and every chunk before it).
    let stored = |state: &mut PublishState, end: u64| {
        let e = state.sources.entry(id.clone()).or_insert_with(|| Published {
            prefix_len,
            path: shown.clone(),
            format: fmt.name().into(),
            offset: 0,
        });
        e.offset = e.offset.max(end);
        e.path.clone_from(&shown);
    };
    while let Some(chunk) = chunker.next_chunk().with_context(|| format!("reading {shown}"))? {
        if chunk.end <= done {
            continue;
        }
        sent_any = true;
        let end = chunk.end;
        rep.chunks += 1;
        rep.bytes += chunk.bytes.len() as u64;
        let rec = BusRecord {
            sensor: opts.sensor.clone(),
            organisation: opts.organisation.clone(),
            format: fmt.name().into(),
            source_id: id.clone(),
            path: shown.clone(),
            chunk,
        };
        pending.push_back((bus.publish(js, &rec).await?, end));
        if pending.len() >= 64 {
            if let Some((ack, end)) = pending.pop_front() {
                ack.await.map_err(|e| anyhow::anyhow!("the stream did not store a chunk: {e}"))?;
                stored(state, end);
                if rep.chunks.is_multiple_of(256) {
                    state.save(&opts.state_dir, &opts.sensor)?;
                }
            }
        }
    }
    while let Some((ack, end)) = pending.pop_front() {
        ack.await.map_err(|e| anyhow::anyhow!("the stream did not store a chunk: {e}"))?;
        stored(state, end);
    }
    if sent_any {
        rep.files += 1;
        state.save(&opts.state_dir, &opts.sensor)?;
    } else {
        rep.up_to_date += 1;
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    pub bus: BusConfig,
    pub durable: String,
    /// Messages fetched (and committed together) at most per round.
    pub batch: usize,
    /// Stop after this long without a message (default: run until interrupted).
    pub idle_exit: Option<Duration>,
    /// How long JetStream waits for an acknowledgement before handing a message to another
    /// consumer.
    pub ack_wait: Duration,
    pub writer: WriterOptions,
}

#[derive(Debug, Default)]
pub struct ConsumeReport {
    pub messages: u64,
    /// Messages whose chunk was already in the lake (redelivered or re-published).
    pub duplicates: u64,
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
    pub fn summary(&self, lake: &Path) -> String {
        format!(
            "consumed {} message(s) into {}: {} events written, {} quarantined, {} duplicate(s) skipped, \
             {} not cynex chunks; {} commit(s), {} retried after a race, {:.2} s",
            thousands(self.messages),
            lake.display(),
            thousands(self.events),
            thousands(self.quarantined),
            thousands(self.duplicates),
            thousands(self.bad_messages),
            self.commits,
            self.conflicts,
            self.seconds
        )
    }
}

/// Consume the bus into the lake until idle for `idle_exit` (or forever).
pub fn consume(lake: &Lake, opts: &ConsumeOptions) -> anyhow::Result<ConsumeReport> {
    runtime()?.block_on(consume_async(lake, opts))
}

async fn consume_async(lake: &Lake, opts: &ConsumeOptions) -> anyhow::Result<ConsumeReport> {
    let start = Instant::now();
    let (client, _js, stream) = opts.bus.connect().await?;
    let consumer = opts.bus.consumer(&stream, &opts.durable, opts.ack_wait).await?;
    let mut rep = ConsumeReport::default();
    let mut last_message = Instant::now();
    loop {
        let mut batch = consumer
            .fetch()
            .max_messages(opts.batch.max(1))
            .expires(Duration::from_secs(1))
            .messages()
            .await
            .map_err(|e| anyhow::anyhow!("fetching from {}: {e}", opts.bus.url))?;
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
        rep.messages += msgs.len() as u64;
        let verdicts = tokio::task::block_in_place(|| write_batch(lake, opts, &msgs, &mut rep))?;
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
        client.flush().await.map_err(|e| anyhow::anyhow!("flushing acknowledgements: {e}"))?;
    }
    rep.seconds = start.elapsed().as_secs_f64();
    Ok(rep)
}

/// Where a message sits in the stream, for quarantine and de-duplication.
fn where_of(opts: &ConsumeOptions, m: &async_nats::jetstream::Message) -> String {
    format!("nats:{}#{}", opts.bus.stream, m.info().map(|i| i.stream_sequence).unwrap_or(0))
}

/// Commit inputs that must be new. `false` when another consumer committed one of them first:
/// nothing was committed and the messages are to be redelivered (then skipped as duplicates).
fn commit_once(
    tx: &mut cynex_lake::Transaction,
    progress: Vec<SourceProgress>,
    rep: &mut ConsumeReport,
) -> anyhow::Result<bool> {
    match tx.commit_new("ingest-bus", progress) {
        Ok(_) => {
            rep.commits += 1;
            Ok(true)
        }
        Err(cynex_lake::Error::Conflict(why)) => {
            tracing::info!("another consumer committed part of this batch first ({why}); retrying it");
            rep.conflicts += 1;
            Ok(false)
        }
        Err(e) => Err(e).context("committing to the lake"),
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
) -> anyhow::Result<Vec<bool>> {
    // Read every message first, then ask the lake once which positions it already holds.
    let parsed: Vec<(Result<BusRecord, String>, (String, String))> = msgs
        .iter()
        .map(|m| {
            let rec =
                BusRecord::from_message(&opts.bus, m.subject.as_str(), m.headers.as_ref(), &m.payload).and_then(|r| {
                    if cynex_lake::valid_sensor_name(&r.sensor) {
                        Ok(r)
                    } else {
                        Err(format!("sensor name {:?} is not valid", r.sensor))
                    }
                });
            let key = match &rec {
                Ok(r) => (r.sensor.clone(), r.position_id()),
                Err(_) => (BAD_MESSAGE_SENSOR.to_string(), format!("{} {}", where_of(opts, m), m.subject)),
            };
            (rec, key)
        })
        .collect();
    let keys: Vec<(String, String)> = parsed.iter().map(|(_, k)| k.clone()).collect();
    let recorded = lake.recorded(&keys)?;
    let mut verdict = vec![false; msgs.len()];
    let mut seen = HashSet::new();
    // Per sensor: (message index, record) to write.
    let mut groups: BTreeMap<String, Vec<(usize, BusRecord)>> = BTreeMap::new();
    let mut bad: Vec<(usize, QuarantineRecord, String)> = Vec::new();
    for (i, ((rec, key), m)) in parsed.into_iter().zip(msgs).enumerate() {
        if recorded[i] || !seen.insert(key.clone()) {
            rep.duplicates += 1;
            verdict[i] = true;
            continue;
        }
        match rec {
            Ok(rec) => groups.entry(rec.sensor.clone()).or_default().push((i, rec)),
            Err(reason) => {
                rep.bad_messages += 1;
                let source = format!("{} ({})", where_of(opts, m), m.subject);
                bad.push((i, QuarantineRecord::new("bus", &source, 0, reason, &m.payload), key.1));
            }
        }
    }
    for (sensor, recs) in groups {
        let mut tx = lake.begin(&sensor, opts.writer.clone())?;
        let mut progress = Vec::with_capacity(recs.len());
        let (mut events, mut quarantined) = (0, 0);
        for (_, rec) in &recs {
            let d = decode_chunk(&rec.format, &rec.chunk, &rec.path, rec.organisation.as_deref());
            write_decoded(&mut tx, &d)?;
            events += d.events.len() as u64;
            quarantined += d.quarantine.len() as u64;
            progress.push(SourceProgress {
                id: rec.position_id(),
                sensor: sensor.clone(),
                format: rec.format.clone(),
                path: rec.path.clone(),
                offset: rec.chunk.end,
                complete: true,
                read: (d.events.len() + d.quarantine.len()) as u64,
                written: d.events.len() as u64,
                quarantined: d.quarantine.len() as u64,
                error: None,
                ..Default::default()
            });
        }
        if commit_once(&mut tx, progress, rep)? {
            rep.events += events;
            rep.quarantined += quarantined;
            for (i, _) in &recs {
                verdict[*i] = true;
            }
        }
    }
    if !bad.is_empty() {
        let mut tx = lake.begin(BAD_MESSAGE_SENSOR, opts.writer.clone())?;
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
        write_decoded(&mut tx, &Decoded { quarantine, ..Default::default() })?;
        if commit_once(&mut tx, progress, rep)? {
            rep.quarantined += n;
            for i in indices {
                verdict[i] = true;
            }
        }
    }
    Ok(verdict)
}
