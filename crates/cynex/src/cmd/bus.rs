//! The sensor bus from both ends. `cynex sensor --publish` runs at a member site: it cuts logs
//! into chunks of whole records and publishes them to NATS JetStream, remembering per input how
//! far the stream has stored it, so a killed publisher resumes without sending a chunk twice.
//! `cynex ingest bus --from` runs at the nexus: `cynex_ingest::bus::consume` (shared with
//! `cynex serve --bus`) commits each chunk with its position and acknowledges after the commit.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use cynex_ingest::bus::{BusConfig, BusRecord, Chunker, ConsumeOptions, ConsumeReport};
use cynex_ingest::input;
use cynex_ingest::pipeline::{detect, InputFormat};
use cynex_lake::Lake;
use serde::{Deserialize, Serialize};

use crate::output::{bytes, thousands};

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
    /// Inputs whose last line has no newline yet (not sent: it may still be being written).
    pub held: usize,
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
        if self.held > 0 {
            s += &format!(", {} with an unfinished last line held back until it ends", self.held);
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
    // A plain log may be mid-write: its unfinished last line waits for a later run. Chunks of a
    // file that grew start where the last run's ended, so none repeats a position with other
    // bytes (the lake and the stream would take it for a duplicate).
    let plain = opened.compression == input::Compression::None;
    let mut chunker = Chunker::new(opened.reader, fmt == InputFormat::Zeek, opts.chunk_bytes, max_payload)
        .hold_partial(plain)
        .resume_at(done);
    let mut pending = VecDeque::new();
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
    let mut last_end = done;
    while let Some(chunk) = chunker.next_chunk().with_context(|| format!("reading {shown}"))? {
        last_end = chunk.end;
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
    rep.held += chunker.held() as usize;
    if last_end > done {
        rep.files += 1;
        state.save(&opts.state_dir, &opts.sensor)?;
    } else {
        rep.up_to_date += 1;
    }
    Ok(())
}

/// Consume the bus into the lake until idle for `idle_exit` (or until interrupted).
pub fn consume(lake: &Lake, opts: &ConsumeOptions) -> anyhow::Result<ConsumeReport> {
    let stop = std::sync::atomic::AtomicBool::new(false);
    Ok(runtime()?.block_on(cynex_ingest::bus::consume(lake, opts, &stop, &mut |_| {}))?)
}

pub fn consume_summary(rep: &ConsumeReport, lake: &Path) -> String {
    format!(
        "consumed {} message(s) into {}: {} events written, {} quarantined, {} duplicate(s) skipped{}, \
         {} not cynex chunks; {} commit(s), {} retried after a race, {:.2} s",
        thousands(rep.messages),
        lake.display(),
        thousands(rep.events),
        thousands(rep.quarantined),
        thousands(rep.duplicates),
        if rep.trimmed > 0 {
            format!(", {} partly in the lake already", thousands(rep.trimmed))
        } else {
            String::new()
        },
        thousands(rep.bad_messages),
        rep.commits,
        rep.conflicts,
        rep.seconds
    )
}
