//! Running the engine over the lake.
//!
//! - **Batch** (`Mode::Batch`): a fresh engine over the packets in a time range; everything is
//!   closed at the end; the scope's previous outputs are replaced.
//! - **Incremental** (`Mode::Incremental`): resume the saved state and read only the packets
//!   files committed by ingests since the last run. Outputs and the new state are one lake
//!   commit (the state file is written and fsynced first, and the commit names it), so a crash at
//!   any point leaves either the previous run or this one, and a re-run neither loses nor
//!   repeats a finding. `ongoing` (what is still open) and the statistics of the days this run
//!   touched are replaced in the same commit.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::Path;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender};
use std::time::Instant;

use cynex_lake::{FileEntry, Lake, SourceProgress, WriterOptions};
use cynex_model::Table;
use datafusion::arrow::array::RecordBatch;
use datafusion::parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use datafusion::parquet::arrow::ProjectionMask;

use crate::engine::{Cursor, Engine, Keyed, State, Tally, COLUMNS};
use crate::finding::{findings_batch, Finding};
use crate::stats::{port_stats_batch, stats_batch};
use crate::{state_file, AnalysisConfig, Error, Result};

/// The id under which a scope's state is recorded in the lake's input progress.
const STATE_ID: &str = "analysis-state";
const STATE_DIR: &str = "_analysis";

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Only what is new since the last run. With `flush`, also close everything still open
    /// (the input is complete).
    Incremental { flush: bool, rebuild: bool },
    /// Rows with `from <= ts < to`, from scratch.
    Batch { from: i64, to: i64 },
}

#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    /// Name of this analysis: the `sensor` partition of its output tables.
    pub scope: String,
    /// Only packets of these sensors (empty: all).
    pub sensors: Vec<String>,
    pub mode: Mode,
    /// Settings; `None` keeps those the scope's saved state was built with (or the defaults).
    pub config: Option<AnalysisConfig>,
    pub writer: WriterOptions,
    /// MaxMind-format databases (country/city and ASN) to enrich findings with.
    pub geoip: Vec<std::path::PathBuf>,
    pub campaigns: crate::campaigns::CampaignConfig,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        Self {
            scope: "all".into(),
            sensors: Vec::new(),
            mode: Mode::Incremental { flush: false, rebuild: false },
            config: None,
            writer: WriterOptions { threads: 1, ..WriterOptions::default() },
            geoip: Vec::new(),
            campaigns: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct AnalyzeReport {
    pub files: usize,
    pub rows: u64,
    /// Concluded findings written, by kind.
    pub findings: BTreeMap<String, u64>,
    pub ongoing: u64,
    /// Campaigns in the scope after this run (the whole current view, not only new ones).
    pub campaigns: u64,
    pub stats_days: usize,
    /// Rows for days whose statistics had already been sealed (counted in findings only).
    pub late_rows: u64,
    pub dark_addresses: u64,
    /// Scan events and sources closed early to stay within the memory limit.
    pub evicted: u64,
    /// Approximate bytes of analysis state at the end of the run.
    pub state_bytes: u64,
    /// GeoIP records that could not be decoded (those findings lack country or AS).
    pub geo_errors: u64,
    /// Lake commit of the outputs (0 when nothing was written).
    pub commit: u64,
    pub seconds: f64,
}

/// Run one analysis and commit its outputs.
pub fn analyze(lake: &Lake, opts: &AnalyzeOptions) -> Result<AnalyzeReport> {
    let t0 = Instant::now();
    if !cynex_lake::valid_sensor_name(&opts.scope) {
        return Err(Error::Invalid(format!("scope name {:?}: use 1-64 characters of A-Z a-z 0-9 . _ -", opts.scope)));
    }
    let geo = crate::geo::Geo::open(&opts.geoip)?;
    let snap = lake.snapshot()?;
    let progress = snap.source(&opts.scope, STATE_ID).cloned();
    let wanted = |f: &FileEntry| opts.sensors.is_empty() || opts.sensors.contains(&f.sensor);
    let given = opts.config.clone();
    let fresh = |cfg: Option<AnalysisConfig>| -> Result<AnalysisConfig> {
        let cfg = cfg.unwrap_or_default();
        cfg.validate().map_err(Error::Invalid)?;
        Ok(cfg)
    };
    let (mut engine, files, prev_state) = match &opts.mode {
        Mode::Batch { from, to } => {
            if progress.is_some() {
                return Err(Error::Invalid(format!(
                    "scope {:?} holds incremental analysis; give a batch run its own --scope",
                    opts.scope
                )));
            }
            let files: Vec<FileEntry> = snap
                .files_of(Table::Packets)
                .filter(|f| wanted(f) && f.max_ts >= *from && f.min_ts < *to)
                .cloned()
                .collect();
            (Engine::new(fresh(given)?, State::default()).with_range(*from, *to), files, None)
        }
        Mode::Incremental { rebuild, .. } => match progress.as_ref().filter(|_| !rebuild) {
            None => {
                let files: Vec<FileEntry> = snap.files_of(Table::Packets).filter(|f| wanted(f)).cloned().collect();
                (Engine::new(fresh(given)?, State::default()), files, None)
            }
            Some(p) => {
                let (cfg, state) = state_file::load(lake.root(), &p.path, given.as_ref())?;
                let files = new_files(lake, p.offset, &snap.files)?.into_iter().filter(|f| wanted(f)).collect();
                (Engine::new(cfg, state), files, Some(p.path.clone()))
            }
        },
    };
    let mut files = files;
    files.sort_by(|a, b| (a.min_ts, &a.path).cmp(&(b.min_ts, &b.path)));

    tracing::debug!(seconds = t0.elapsed().as_secs_f64(), files = files.len(), "analysis state loaded");
    engine.log_state_sizes();
    let mut report = AnalyzeReport { files: files.len(), ..Default::default() };
    let (rows_before, late_before, evicted_before) = (engine.state().rows, engine.st.late_rows, engine.st.evicted);
    {
        // No compaction or prune removes the files while they are read.
        let _read = lake.lock_shared()?;
        read_merged(lake.root(), &files, &mut engine)?;
    }
    let flush = match opts.mode {
        Mode::Batch { .. } => true,
        Mode::Incremental { flush, .. } => flush,
    };
    tracing::debug!(seconds = t0.elapsed().as_secs_f64(), "packets read");
    let mut ongoing = engine.finish(flush);
    tracing::debug!(seconds = t0.elapsed().as_secs_f64(), "engine finished");
    engine.log_state_sizes();
    let mut findings = engine.take_findings();
    let sealed = std::mem::take(&mut engine.sealed);
    let touched = std::mem::take(&mut engine.touched_days);
    report.rows = engine.state().rows - rows_before;
    report.late_rows = engine.st.late_rows - late_before;
    report.evicted = engine.st.evicted - evicted_before;
    report.state_bytes = engine.state_bytes() as u64;
    report.dark_addresses = engine.dark_size();
    for f in &findings {
        *report.findings.entry(f.kind.clone()).or_default() += 1;
    }
    report.ongoing = ongoing.len() as u64;
    let mut owned = engine;
    // The keyed state is written in sections beside the rest of the state; nothing below reads it.
    let shards = owned.st.take_shards();
    let engine = &owned;
    let incremental = matches!(opts.mode, Mode::Incremental { rebuild: false, .. }) && prev_state.is_some();

    // The new state is written on another thread while the outputs are prepared here; the
    // commit (which names it) waits for both.
    let (saved, tx) = std::thread::scope(|s| {
        let saver = matches!(opts.mode, Mode::Incremental { .. }).then(|| {
            s.spawn(|| {
                let rel = new_state_path(&opts.scope);
                state_file::save(lake.root(), &rel, engine.config(), engine.state(), &shards).map(|()| rel)
            })
        });
        let tx = (|| -> Result<(cynex_lake::Transaction, BTreeSet<i64>)> {
            geo.enrich(&mut findings);
            geo.enrich(&mut ongoing);
            report.geo_errors = geo.decode_errors();
            // Campaigns over everything the scope has found so far (and what is still ongoing),
            // replacing the previous view in the same commit.
            let mut sources =
                if incremental { campaign_sources(lake, &opts.scope)? } else { crate::campaigns::Sources::default() };
            for f in findings.iter().chain(&ongoing) {
                sources.add_finding(f);
            }
            let campaigns = sources.campaigns(&opts.campaigns);
            report.campaigns = campaigns.len() as u64;
            tracing::debug!(seconds = t0.elapsed().as_secs_f64(), "campaigns detected");
            // Outputs: findings, ongoing, and the statistics of every day touched by this run.
            let mut tx = lake.begin(&opts.scope, opts.writer.clone())?;
            write_findings(&mut tx, Table::Findings, &findings)?;
            write_findings(&mut tx, Table::Ongoing, &ongoing)?;
            write_findings(&mut tx, Table::Campaigns, &campaigns)?;
            let dark = engine.dark_size();
            let mut days: BTreeSet<i64> = BTreeSet::new();
            for (day, d) in sealed {
                tx.write(Table::Stats, stats_batch(day, &d.bins, dark).map_err(arrow_err)?)?;
                tx.write(Table::PortStats, port_stats_batch(d.ports.iter().map(|(k, p)| (*k, p))).map_err(arrow_err)?)?;
                days.insert(day);
            }
            for day in touched {
                let st = &engine.st;
                tx.write(Table::Stats, stats_batch(day, &st.bins, dark).map_err(arrow_err)?)?;
                let hours = ((day * 24) as u64) << 24..((day * 24 + 24) as u64) << 24;
                let ports = st.port_hours.iter().filter(|(k, _)| hours.contains(*k)).map(|(k, p)| (*k, p));
                tx.write(Table::PortStats, port_stats_batch(ports).map_err(arrow_err)?)?;
                days.insert(day);
            }
            tracing::debug!(seconds = t0.elapsed().as_secs_f64(), "outputs written");
            Ok((tx, days))
        })();
        // As with scoped threads, a panic while saving is raised here.
        let saved = saver.map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).transpose();
        (saved, tx)
    });
    tracing::debug!(seconds = t0.elapsed().as_secs_f64(), "analysis state saved");
    let saved = saved?;
    let (mut tx, days) = match tx {
        Ok(tx) => tx,
        Err(e) => {
            // No commit will name the new state file.
            if let Some(rel) = &saved {
                let _ = std::fs::remove_file(lake.root().join(rel));
            }
            return Err(e);
        }
    };
    report.stats_days = days.len();
    let scope_files = snap.files.values().filter(|f| f.sensor == opts.scope);
    let remove: Vec<String> = match &opts.mode {
        Mode::Incremental { rebuild: false, .. } if prev_state.is_some() => scope_files
            .filter(|f| {
                f.table == Table::Ongoing.name()
                    || f.table == Table::Campaigns.name()
                    || ((f.table == Table::Stats.name() || f.table == Table::PortStats.name())
                        && days.contains(&f.days))
            })
            .map(|f| f.path.clone())
            .collect(),
        // From scratch: everything the scope held is replaced.
        _ => scope_files
            .filter(|f| Table::ANALYSIS.iter().any(|t| t.name() == f.table))
            .map(|f| f.path.clone())
            .collect(),
    };
    let sources = match saved {
        Some(rel) => vec![SourceProgress {
            id: STATE_ID.into(),
            sensor: opts.scope.clone(),
            format: "analysis".into(),
            path: rel,
            offset: snap.seq,
            complete: true,
            read: report.rows,
            written: findings.len() as u64,
            quarantined: 0,
            error: None,
            ..Default::default()
        }],
        None => Vec::new(),
    };
    let info = tx.commit_replacing("analyze", remove, sources)?;
    report.commit = info.seq;
    if let Some(old) = prev_state {
        // The new state is committed; the old one is no longer referenced.
        let _ = std::fs::remove_file(lake.root().join(old));
    }
    report.seconds = t0.elapsed().as_secs_f64();
    // The state is millions of small allocations at NICTER's rate (2.5 GB after an hour of 54 M
    // packets): it is freed on another thread while the caller goes on (member alerts) or exits.
    let _ = std::thread::Builder::new()
        .name("analysis-free".into())
        .spawn(move || drop((owned, shards, findings, ongoing)));
    Ok(report)
}

fn arrow_err(e: datafusion::arrow::error::ArrowError) -> Error {
    Error::Invalid(format!("building output rows: {e}"))
}

fn write_findings(tx: &mut cynex_lake::Transaction, table: Table, rows: &[Finding]) -> Result<()> {
    for chunk in rows.chunks(65_536) {
        tx.write(table, findings_batch(chunk).map_err(arrow_err)?)?;
    }
    Ok(())
}

/// Packets files added by ingest commits after `seq` that are still live. A compaction that
/// merged only new files hands its output on; one that mixed analysed and new rows cannot be
/// split and asks for a rebuild.
fn new_files(lake: &Lake, seq: u64, live: &BTreeMap<String, FileEntry>) -> Result<Vec<FileEntry>> {
    let mut new: BTreeMap<String, FileEntry> = BTreeMap::new();
    for c in lake.commits_after(seq)? {
        let added = c.add.iter().filter(|f| f.table == Table::Packets.name());
        match c.op.as_str() {
            "compact" => {
                let removed: Vec<&String> = c.remove.iter().filter(|p| p.starts_with("packets/")).collect();
                let fresh = removed.iter().filter(|p| new.contains_key(p.as_str())).count();
                if fresh == 0 {
                    continue;
                }
                if fresh != removed.len() {
                    return Err(Error::Invalid(format!(
                        "commit {} compacted analysed and not yet analysed packets together; run `cynex analyze --rebuild`",
                        c.seq
                    )));
                }
                for p in removed {
                    new.remove(p.as_str());
                }
                new.extend(added.map(|f| (f.path.clone(), f.clone())));
            }
            _ => {
                for p in &c.remove {
                    new.remove(p);
                }
                new.extend(added.map(|f| (f.path.clone(), f.clone())));
            }
        }
    }
    Ok(new.into_values().filter(|f| live.contains_key(&f.path)).collect())
}

enum Msg {
    /// A batch's rows as the keyed detectors take them (counted in the reading thread's tally).
    Rows(Vec<Keyed>),
    Err(String),
}

/// Feed `files` (sorted by earliest time) to the engine in time order. Files whose time ranges
/// overlap — the encoder threads of one ingest each write a file per hour, several sensors write
/// the same hours — are merged row by row by time, each read by its own thread; the engine's
/// watermark advances with the merged time, so what goes quiet is closed exactly.
fn read_merged(root: &Path, files: &[FileEntry], engine: &mut Engine) -> Result<()> {
    let mut i = 0;
    while i < files.len() {
        let mut j = i + 1;
        let mut end = files[i].max_ts;
        while j < files.len() && files[j].min_ts <= end {
            end = end.max(files[j].max_ts);
            j += 1;
        }
        merge_group(root, &files[i..j], engine)?;
        i = j;
    }
    Ok(())
}

/// Data time between watermark advances inside a merged group.
const ADVANCE_EVERY_US: i64 = 600_000_000;

/// Merge one group of overlapping files. Each file's thread decodes it and counts its rows'
/// statistics in its own [`Tally`] (a file lies within one hour, and statistics merge in any
/// order), passing on only what the keyed detectors take; this thread merges those rows by time
/// into the engine, and the tallies into its state at the end.
fn merge_group(root: &Path, group: &[FileEntry], engine: &mut Engine) -> Result<()> {
    let read_err = |f: &FileEntry, reason: String| Error::Read { file: f.path.clone(), reason };
    engine.advance(group[0].min_ts);
    let mut tallies = std::thread::scope(|s| -> Result<Vec<Tally>> {
        let mut rxs: Vec<Receiver<Msg>> = Vec::with_capacity(group.len());
        // Spent row buffers go back to their reader, which refills them.
        let mut spent: Vec<Sender<Vec<Keyed>>> = Vec::with_capacity(group.len());
        let mut readers = Vec::with_capacity(group.len());
        for f in group {
            let (tx, rx) = sync_channel::<Msg>(2);
            let (back, refill) = channel::<Vec<Keyed>>();
            rxs.push(rx);
            spent.push(back);
            let path = root.join(&f.path);
            let mut tally = engine.tally();
            readers.push(s.spawn(move || {
                let mut send = |b: RecordBatch| match Cursor::new(&b) {
                    Ok(c) => {
                        let mut rows = refill.try_recv().unwrap_or_else(|_| Vec::with_capacity(c.len()));
                        rows.extend((0..c.len()).filter_map(|i| tally.row(&c.row(i))));
                        tx.send(Msg::Rows(rows)).is_ok()
                    }
                    Err(e) => {
                        let _ = tx.send(Msg::Err(e));
                        false
                    }
                };
                if let Err(e) = read_one(&path, &mut send) {
                    let _ = tx.send(Msg::Err(e));
                }
                tally
            }));
        }
        // Per stream: its current batch and position.
        let next = |k: usize| -> Result<Option<(Vec<Keyed>, usize)>> {
            loop {
                match rxs[k].recv() {
                    Ok(Msg::Rows(rows)) => {
                        if !rows.is_empty() {
                            return Ok(Some((rows, 0)));
                        }
                    }
                    Ok(Msg::Err(e)) => return Err(read_err(&group[k], e)),
                    Err(_) => return Ok(None),
                }
            }
        };
        let mut cur: Vec<Option<(Vec<Keyed>, usize)>> = (0..group.len()).map(next).collect::<Result<_>>()?;
        let mut next_advance = group[0].min_ts + ADVANCE_EVERY_US;
        loop {
            // The stream whose next row is earliest (`best`), and the earliest row of the other
            // streams (`other`), ties to the lowest index (few streams: one linear scan). The
            // latter bounds the run taken from the former: rows before it (or at its time, when
            // this stream comes first) go in this order anyway.
            let mut best: Option<(usize, i64)> = None;
            let mut other: Option<(usize, i64)> = None;
            for (j, c) in cur.iter().enumerate() {
                if let Some((c, i)) = c {
                    let t = c[*i].ts;
                    if best.is_none_or(|(_, bt)| t < bt) {
                        other = best;
                        best = Some((j, t));
                    } else if other.is_none_or(|(_, ot)| t < ot) {
                        other = Some((j, t));
                    }
                }
            }
            let Some((k, _)) = best else { break };
            let takes = |t: i64| other.is_none_or(|(j, ot)| t < ot || (t == ot && k < j));
            while let Some((c, i)) = cur[k].as_mut() {
                let t = c[*i].ts;
                if !takes(t) {
                    break;
                }
                if t >= next_advance {
                    engine.advance(t);
                    next_advance = t + ADVANCE_EVERY_US;
                }
                engine.observe_keyed(&c[*i]);
                *i += 1;
                if *i == c.len() {
                    if let Some((mut done, _)) = cur[k].take() {
                        done.clear();
                        let _ = spent[k].send(done);
                    }
                    cur[k] = next(k)?;
                }
            }
        }
        // As with scoped threads, a reader's panic is raised here.
        Ok(readers.into_iter().map(|r| r.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect())
    })?;
    for t in &mut tallies {
        engine.absorb(t);
    }
    Ok(())
}

fn read_one(path: &Path, send: &mut dyn FnMut(RecordBatch) -> bool) -> Result<(), String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    for b in parquet_reader(file, Some(&COLUMNS), 32_768)? {
        if !send(b.map_err(|e| e.to_string())?) {
            return Ok(());
        }
    }
    Ok(())
}

/// A reader of `columns` of a Parquet file (all of them with `None`), `batch` rows at a time;
/// a column the file lacks is an error naming it.
fn parquet_reader(file: File, columns: Option<&[&str]>, batch: usize) -> Result<ParquetRecordBatchReader, String> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| e.to_string())?;
    let builder = match columns {
        Some(columns) => {
            let schema = std::sync::Arc::clone(builder.schema());
            let idx: Vec<usize> = columns
                .iter()
                .map(|c| schema.index_of(c).map_err(|_| format!("no column {c}")))
                .collect::<Result<_, _>>()?;
            let mask = ProjectionMask::roots(builder.parquet_schema(), idx);
            builder.with_projection(mask)
        }
        None => builder,
    };
    builder.with_batch_size(batch).build().map_err(|e| e.to_string())
}

/// Pass every batch of `files` (their `columns`, or all) to `each`, in file order. An error
/// (the file's or one `each` returns) names the file.
fn each_batch<'a>(
    lake: &Lake,
    files: impl Iterator<Item = &'a FileEntry>,
    columns: Option<&[&str]>,
    mut each: impl FnMut(&RecordBatch) -> Result<(), String>,
) -> Result<()> {
    for f in files {
        let bad = |reason: String| Error::Read { file: f.path.clone(), reason };
        let path = lake.root().join(&f.path);
        let file =
            File::open(&path).map_err(|e| Error::Io { context: format!("opening {}", path.display()), source: e })?;
        // The reader's own batch size (1,024 rows): findings are few and wide.
        for b in parquet_reader(file, columns, 1_024).map_err(bad)? {
            each(&b.map_err(|e| bad(e.to_string()))?).map_err(bad)?;
        }
    }
    Ok(())
}

/// A new state file's path (under `_analysis/<scope>/`), relative to the lake root.
fn new_state_path(scope: &str) -> String {
    format!("{STATE_DIR}/{scope}/state-{}.bin.zst", uuid::Uuid::now_v7().simple())
}

/// The sources of every finding `scope` has written, as campaign grouping describes them. Only
/// the columns it reads are decoded (not the evidence, ids and enrichment of every finding), and
/// they are folded per source as they are read: the scope's whole history of findings is never
/// held at once.
fn campaign_sources(lake: &Lake, scope: &str) -> Result<crate::campaigns::Sources> {
    let snap = lake.snapshot()?;
    let _read = lake.lock_shared()?;
    let mut sources = crate::campaigns::Sources::default();
    let files = snap.files_of(Table::Findings).filter(|f| f.sensor == scope);
    each_batch(lake, files, Some(&crate::finding::CORE_COLUMNS), |b| sources.add_batch(b))?;
    Ok(sources)
}

/// Every row of `table` (`findings` or `ongoing`) written by `scope`, ordered by time and id.
pub fn load_findings(lake: &Lake, scope: &str, table: Table) -> Result<Vec<Finding>> {
    Ok(load_findings_after(lake, scope, table, None)?.0)
}

/// The rows of `table` written by `scope` in files added by lake commits after `after` (every
/// row with `None`, or when `after` is ahead of the lake), ordered by time and id; and the commit
/// they were read at, to pass as `after` next time.
pub fn load_findings_after(lake: &Lake, scope: &str, table: Table, after: Option<u64>) -> Result<(Vec<Finding>, u64)> {
    let snap = lake.snapshot()?;
    let _read = lake.lock_shared()?;
    let added: Option<BTreeSet<String>> = match after {
        Some(seq) if seq <= snap.seq => Some(
            lake.commits_after(seq)?
                .into_iter()
                .filter(|c| c.seq <= snap.seq)
                .flat_map(|c| c.add.into_iter().map(|f| f.path))
                .collect(),
        ),
        _ => None,
    };
    let mut out = Vec::new();
    let files =
        snap.files_of(table).filter(|f| f.sensor == scope && added.as_ref().is_none_or(|a| a.contains(&f.path)));
    each_batch(lake, files, None, |b| {
        out.extend(crate::finding::findings_from_batch(b)?);
        Ok(())
    })?;
    out.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
    Ok((out, snap.seq))
}
