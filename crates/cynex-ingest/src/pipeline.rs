//! From inputs to the lake: read captures or logs (files, directories, growing files), decode,
//! write `packets`/`events` and `quarantine` through one lake transaction, and commit with each
//! input's progress so that a re-run is a no-op and an interrupted run resumes exactly. The CLI's
//! `cynex ingest`, the server's watch folder and its HTTP push all ingest through here.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cynex_lake::{Lake, SourceProgress, Transaction, WriterOptions};
use cynex_model::Table;

use crate::input::{self, Compression};
use crate::pcap::{CaptureReader, PcapSource};
use crate::records::{decode_records, Decoded, EventSink, Normalize, RecordChunk, RecordSplitter};
use crate::{Error, QuarantineColumns, QuarantineRecord, Result};
use cynex_model::event::EventColumns;
use datafusion::arrow::array::RecordBatch;

/// A lake error as an ingest error, saying what was being done.
pub(crate) fn lake_err(what: &str) -> impl FnOnce(cynex_lake::Error) -> Error + '_ {
    move |e| Error::Pipeline(format!("{what}: {e}"))
}

#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub sensor: String,
    pub writer: WriterOptions,
    /// Rows per record batch.
    pub batch_rows: usize,
    /// Commit at least this often (packets), so an interruption loses little work.
    pub commit_every: u64,
    /// Show a progress bar on stderr (only when it is a terminal).
    pub progress: bool,
    /// How many bad records to describe per file on stderr (all are in quarantine).
    pub max_warnings: usize,
    /// The inputs are still being written: leave an unfinished last record for the next pass.
    pub follow: bool,
    /// Threads decoding JSON log records (EVE, Cowrie) while the input is read and written.
    pub decode_threads: usize,
    /// Prefix of every input identity (e.g. the pushing organisation), so that the same bytes
    /// sent by two parties are two inputs, not one already ingested.
    pub identity_scope: Option<String>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            sensor: "default".into(),
            writer: WriterOptions::default(),
            batch_rows: 65_536,
            commit_every: 8_000_000,
            progress: true,
            max_warnings: 10,
            follow: false,
            identity_scope: None,
            decode_threads: std::thread::available_parallelism().map_or(2, |n| n.get()).min(4),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileStatus {
    Ingested,
    /// Resumed after an earlier run committed part of it.
    Resumed,
    AlreadyIngested,
    Unreadable(String),
}

#[derive(Debug, Clone)]
pub struct FileReport {
    pub path: PathBuf,
    pub status: FileStatus,
    pub read: u64,
    pub written: u64,
    pub quarantined: u64,
    /// Decompressed bytes read.
    pub bytes: u64,
    pub fixed_timestamps: u64,
}

impl FileReport {
    /// Fold a later pass over the same input into this report (its first status stays).
    fn add(&mut self, later: &FileReport) {
        self.read += later.read;
        self.written += later.written;
        self.quarantined += later.quarantined;
        self.bytes += later.bytes;
        self.fixed_timestamps += later.fixed_timestamps;
    }

    fn new(path: &Path, status: FileStatus) -> Self {
        FileReport {
            path: path.to_path_buf(),
            status,
            read: 0,
            written: 0,
            quarantined: 0,
            bytes: 0,
            fixed_timestamps: 0,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct IngestReport {
    pub files: Vec<FileReport>,
    /// Paths that could not even be listed or opened.
    pub path_errors: Vec<String>,
    pub seconds: f64,
    pub parquet_files: usize,
    pub parquet_bytes: u64,
    pub commits: u64,
    /// The rows written are log events (not packets).
    pub events: bool,
}

impl IngestReport {
    /// What the rows are: packets or events.
    pub fn unit(&self) -> &'static str {
        if self.events {
            "events"
        } else {
            "packets"
        }
    }

    pub fn read(&self) -> u64 {
        self.files.iter().map(|f| f.read).sum()
    }
    pub fn written(&self) -> u64 {
        self.files.iter().map(|f| f.written).sum()
    }
    pub fn quarantined(&self) -> u64 {
        self.files.iter().map(|f| f.quarantined).sum()
    }
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
    /// Inputs that could not be read at all (the command then exits non-zero).
    pub fn unreadable(&self) -> usize {
        self.path_errors.len() + self.files.iter().filter(|f| matches!(f.status, FileStatus::Unreadable(_))).count()
    }
}

fn quarantine_batch(recs: &[QuarantineRecord]) -> Result<RecordBatch> {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0);
    let mut q = QuarantineColumns::default();
    for r in recs {
        q.append(now, r);
    }
    q.finish().map_err(|e| Error::Pipeline(format!("building quarantine rows: {e}")))
}

/// Rows per batch of log events (see `Ctx::log_file`).
const LOG_BATCH_ROWS: usize = 16 << 10;

/// Decoded log rows built into one record batch, with their quarantined records.
pub(crate) struct Built {
    events: Option<RecordBatch>,
    rows: u64,
    quarantine: Vec<QuarantineRecord>,
}

impl Built {
    fn from<E: EventSink>(d: Decoded<E>) -> Result<Built> {
        let rows = d.events.rows() as u64;
        let events = d.events.into_batch().map_err(|e| Error::Pipeline(format!("building event rows: {e}")))?;
        Ok(Built { events, rows, quarantine: d.quarantine })
    }

    fn write(self, tx: &mut Transaction) -> Result<()> {
        if let Some(b) = self.events {
            tx.write(Table::Events, b).map_err(lake_err("writing events"))?;
        }
        if !self.quarantine.is_empty() {
            tx.write(Table::Quarantine, quarantine_batch(&self.quarantine)?).map_err(lake_err("writing quarantine"))?;
        }
        Ok(())
    }
}

/// Write decoded log events and their quarantined records; returns how many of each.
pub fn write_decoded<E: EventSink>(tx: &mut Transaction, d: Decoded<E>) -> Result<(u64, u64)> {
    let b = Built::from(d)?;
    let counts = (b.rows, b.quarantine.len() as u64);
    b.write(tx)?;
    Ok(counts)
}

/// Most bytes of records read into one chunk for the decoders (with [`LOG_BATCH_ROWS`]).
const CHUNK_BYTES: usize = 16 << 20;

/// Decode JSON records on `threads` workers while the calling thread writes. A reader thread cuts
/// the input into chunks of whole records; chunk k goes to worker k mod `threads` and its rows
/// are taken back in the same order, so rows, quarantine and progress keep the input's order.
/// `take` gets each chunk's rows with the input position after it and whether more may follow,
/// and answers whether to go on. Memory: a few chunks in flight (bounded channels).
#[allow(clippy::too_many_arguments)]
fn decode_parallel<R: std::io::BufRead + Send>(
    mut split: RecordSplitter<R>,
    skip_before: u64,
    batch: usize,
    threads: usize,
    format: &'static str,
    normalize: Normalize,
    source: &str,
    organisation: Option<&str>,
    mut take: impl FnMut(Built, u64, u64, bool) -> Result<bool>,
) -> Result<()> {
    use std::sync::mpsc::sync_channel;
    let threads = threads.max(1);
    std::thread::scope(|s| {
        let (mut to_workers, mut from_workers) = (Vec::new(), Vec::new());
        for _ in 0..threads {
            let (ctx, crx) = sync_channel::<std::io::Result<RecordChunk>>(1);
            let (rtx, rrx) = sync_channel::<Result<(Built, u64, u64, bool)>>(1);
            s.spawn(move || {
                for c in crx {
                    let out = c.map_err(|e| Error::Io { path: source.to_string(), source: e }).and_then(|c| {
                        let mut d = Decoded {
                            events: EventColumns::with_capacity(c.recs.len(), c.buf.len()),
                            quarantine: Vec::new(),
                        };
                        decode_records(&c, format, normalize, source, organisation, &mut d);
                        Built::from(d).map(|b| (b, c.offset, c.line, c.last))
                    });
                    if rtx.send(out).is_err() {
                        break;
                    }
                }
            });
            to_workers.push(ctx);
            from_workers.push(rrx);
        }
        s.spawn(move || {
            for k in 0.. {
                let c = split.read_chunk(skip_before, batch, CHUNK_BYTES);
                let end = !matches!(&c, Ok(c) if !c.last);
                if to_workers[k % threads].send(c).is_err() || end {
                    break;
                }
            }
        });
        for k in 0.. {
            let got =
                from_workers[k % threads].recv().map_err(|_| Error::Pipeline("a decoder thread stopped".into()))?;
            let (built, offset, line, last) = got?;
            if !take(built, offset, line, !last)? {
                break;
            }
        }
        Ok(())
    })
}

struct Ctx<'a> {
    lake: &'a Lake,
    tx: Transaction,
    opts: &'a IngestOptions,
    report: IngestReport,
    bar: Option<indicatif::ProgressBar>,
}

impl Ctx<'_> {
    fn commit(&mut self, progress: SourceProgress) -> Result<()> {
        let info = self.tx.commit("ingest", vec![progress]).map_err(lake_err("committing to the lake"))?;
        self.report.parquet_files += info.files;
        self.report.parquet_bytes += info.bytes;
        if info.seq > 0 {
            self.report.commits += 1;
        }
        Ok(())
    }

    fn warn(&self, shown: &mut usize, q: &QuarantineRecord) {
        if *shown < self.opts.max_warnings {
            let msg = format!("warning: quarantined {q}");
            match &self.bar {
                Some(b) => b.println(msg),
                None => eprintln!("{msg}"),
            }
        }
        *shown += 1;
    }

    /// Open `path` and find where to resume it from its committed progress. `Err(report)` when
    /// there is nothing to read: unreadable, or complete and not grown since.
    fn start(&self, path: &Path, format: &str) -> Result<std::result::Result<Started, FileReport>> {
        let shown_path = path.display().to_string();
        let mut rep = FileReport::new(path, FileStatus::Ingested);
        let sensor = self.opts.sensor.clone();
        let ((id, prefix_len, prior), opened) = match self.identify(path, &sensor)? {
            // Empty when identified: a writer may fill it before it is read, and what was read
            // would be recorded under the identity of no bytes, which nothing is recognised by
            // (found by bench/follow.sh: a new log's first slice ingested twice). Next pass.
            Ok((_, 0, _)) if self.opts.follow => return Ok(Err(rep)),
            Ok(x) => match input::open(path) {
                Ok(o) => (x, o),
                Err(e) => {
                    rep.status = FileStatus::Unreadable(e.to_string());
                    return Ok(Err(rep));
                }
            },
            Err(e) => {
                rep.status = FileStatus::Unreadable(e.to_string());
                return Ok(Err(rep));
            }
        };
        if let Some(p) = &prior {
            // A complete plain file that has not grown, or any complete compressed file, is done.
            if p.complete && (opened.compression != Compression::None || opened.file_len <= p.offset) {
                rep.status = match &p.error {
                    Some(e) => FileStatus::Unreadable(format!("{e} (recorded by an earlier run)")),
                    None => FileStatus::AlreadyIngested,
                };
                return Ok(Err(rep));
            }
        }
        let resume_from = prior.as_ref().map_or(0, |p| p.offset);
        if resume_from > 0 {
            rep.status = FileStatus::Resumed;
        }
        let base = prior.unwrap_or(SourceProgress {
            id,
            sensor,
            format: format.into(),
            path: shown_path.clone(),
            prefix_len: (prefix_len < input::IDENTITY_PREFIX).then_some(prefix_len as u64),
            ..Default::default()
        });
        Ok(Ok(Started { shown_path, opened, base, resume_from, rep }))
    }

    /// The input's identity and its committed progress. An input first seen when it was shorter
    /// than the identity prefix is recognised by hashing as many bytes as it had then, so a
    /// small log that grows is resumed, not read again. `Ok(Err)` when the file cannot be read.
    #[allow(clippy::type_complexity)]
    fn identify(
        &self,
        path: &Path,
        sensor: &str,
    ) -> Result<std::result::Result<(String, usize, Option<SourceProgress>), Error>> {
        let scoped = |h: String| match &self.opts.identity_scope {
            Some(s) => format!("{s}/{h}"),
            None => h,
        };
        let (id, n) = match input::identity_of_prefix(path, input::IDENTITY_PREFIX) {
            Ok((h, n)) => (scoped(h), n),
            Err(e) => return Ok(Err(e)),
        };
        if let Some(p) = self.lake.source_progress(sensor, &id).map_err(lake_err("reading input progress"))? {
            return Ok(Ok((id, n, Some(p))));
        }
        // Only the same file (or its rotated copy) can be an earlier, shorter state of this one:
        // two logs that merely start alike must not be taken for each other.
        let shown = path.display().to_string();
        let same_file = |recorded: &str| shown == recorded || shown.starts_with(&format!("{recorded}."));
        let short = self
            .lake
            .sources_where(|p| {
                p.sensor == sensor && p.prefix_len.is_some_and(|l| l > 0 && (l as usize) < n) && same_file(&p.path)
            })
            .map_err(lake_err("reading input progress"))?;
        let mut lens: Vec<u64> = short.iter().filter_map(|p| p.prefix_len).collect();
        lens.sort_unstable();
        lens.dedup();
        for len in lens {
            let (h, m) = match input::identity_of_prefix(path, len as usize) {
                Ok((h, m)) => (scoped(h), m),
                Err(e) => return Ok(Err(e)),
            };
            if let Some(p) = short.iter().find(|p| p.id == h && p.prefix_len == Some(len)) {
                return Ok(Ok((h, m, Some(p.clone()))));
            }
        }
        Ok(Ok((id, n, None)))
    }

    fn file(&mut self, path: &Path) -> Result<FileReport> {
        let Started { shown_path, opened, base, resume_from, mut rep } = match self.start(path, "pcap")? {
            Ok(s) => s,
            Err(done) => return Ok(done),
        };
        let reader = match CaptureReader::new(opened.reader, &shown_path) {
            Ok(r) => r,
            Err(e) => {
                // Keep what we could read in quarantine, and remember the verdict.
                let q = QuarantineRecord::new(
                    "pcap",
                    &shown_path,
                    0,
                    format!("not a readable capture: {}", e.reason),
                    &e.head,
                );
                self.tx
                    .write(Table::Quarantine, quarantine_batch(std::slice::from_ref(&q))?)
                    .map_err(lake_err("writing quarantine"))?;
                rep.read = 1;
                rep.quarantined = 1;
                rep.bytes = e.head.len() as u64;
                self.commit(SourceProgress {
                    offset: opened.file_len,
                    complete: true,
                    read: 1,
                    quarantined: 1,
                    error: Some(e.reason.clone()),
                    path: shown_path.clone(),
                    ..base
                })?;
                rep.status = FileStatus::Unreadable(e.reason);
                return Ok(rep);
            }
        };
        let batch_rows = self.opts.batch_rows.min(self.opts.commit_every as usize).max(1);
        let mut src = PcapSource::new(reader, &shown_path, batch_rows, resume_from);
        let mut since_commit = 0u64;
        let mut shown = 0usize;
        let mut last_bytes = 0u64;
        let progress = |st: crate::pcap::SourceStats, offset: u64, complete: bool| SourceProgress {
            offset,
            complete,
            read: base.read + st.read,
            written: base.written + st.written,
            quarantined: base.quarantined + st.quarantined,
            path: shown_path.clone(),
            ..base.clone()
        };
        while let Some(ev) = src.next_batch().map_err(|e| Error::Pipeline(format!("decoding {shown_path}: {e}")))? {
            if let Some(b) = ev.packets {
                since_commit += b.num_rows() as u64;
                self.tx.write(Table::Packets, b).map_err(lake_err("writing packets"))?;
            }
            if !ev.quarantine.is_empty() {
                for q in &ev.quarantine {
                    self.warn(&mut shown, q);
                }
                self.tx
                    .write(Table::Quarantine, quarantine_batch(&ev.quarantine)?)
                    .map_err(lake_err("writing quarantine"))?;
            }
            let b = src.reader().stats().bytes;
            if let Some(bar) = &self.bar {
                bar.inc(b - last_bytes);
            }
            last_bytes = b;
            if since_commit >= self.opts.commit_every {
                self.commit(progress(src.stats(), ev.offset, false))?;
                since_commit = 0;
            }
        }
        let st = src.stats();
        let end = src.reader().offset();
        self.commit(progress(st, end, true))?;
        if self.opts.max_warnings > 0 && shown > self.opts.max_warnings {
            eprintln!("warning: {} more bad records in {shown_path} are in quarantine", shown - self.opts.max_warnings);
        }
        rep.read = st.read;
        rep.written = st.written;
        rep.quarantined = st.quarantined;
        rep.bytes = src.reader().stats().bytes;
        rep.fixed_timestamps = src.reader().stats().fixed_timestamps;
        Ok(rep)
    }
}

impl Ctx<'_> {
    /// Ingest one log file (Suricata EVE: JSONL or pretty-printed; Zeek: TSV or JSON) into `events`.
    fn log_file(&mut self, path: &Path, organisation: Option<&str>, format: InputFormat) -> Result<FileReport> {
        use crate::zeek::ZeekReader;
        let Started { shown_path, opened, base, resume_from, rep } = match self.start(path, format.name())? {
            Ok(s) => s,
            Err(done) => return Ok(done),
        };
        // A plain JSON log resumes by seeking to the committed offset and line (a Zeek log is
        // re-read from the top for its headers, decoding nothing before the offset).
        let seek_to = match base.line {
            Some(line) if resume_from > 0 && opened.compression == Compression::None && format != InputFormat::Zeek => {
                Some((resume_from, line))
            }
            _ => None,
        };
        let (reader, start_offset, start_line): (Box<dyn std::io::Read + Send>, u64, u64) = match seek_to {
            Some((offset, line)) => {
                use std::io::Seek;
                let io = |e| Error::Io { path: shown_path.clone(), source: e };
                let mut f = std::fs::File::open(path).map_err(io)?;
                f.seek(std::io::SeekFrom::Start(offset)).map_err(io)?;
                (Box::new(f), offset, line)
            }
            None => (opened.reader, 0, 0),
        };
        let buffered = std::io::BufReader::with_capacity(1 << 20, reader);
        // Log events are ~50 columns with their raw record: smaller batches than packets keep the
        // decoded rows, the Arrow builders and the batches queued for the encoders small.
        let batch = self.opts.batch_rows.min(LOG_BATCH_ROWS).min(self.opts.commit_every as usize).max(1);
        let mut run = LogRun { base, rep, shown_path, since_commit: 0, shown: 0, last_offset: start_offset };
        match format {
            InputFormat::Zeek => {
                let mut z = ZeekReader::new(buffered, &run.shown_path, organisation).hold_partial(self.opts.follow);
                loop {
                    let mut d = Decoded::default();
                    let more = z
                        .decode_some(resume_from, batch, &mut d)
                        .map_err(|e| Error::Io { path: run.shown_path.clone(), source: e })?;
                    if !self.log_step(&mut run, Built::from(d)?, z.offset(), z.line(), more)? {
                        break;
                    }
                }
            }
            _ => {
                let split = RecordSplitter::new(buffered, start_offset, start_line).hold_partial(self.opts.follow);
                let normalize: Normalize =
                    if format == InputFormat::Cowrie { crate::cowrie::normalize } else { crate::eve::normalize };
                let source = run.shown_path.clone();
                decode_parallel(
                    split,
                    resume_from,
                    batch,
                    self.opts.decode_threads,
                    format.name(),
                    normalize,
                    &source,
                    organisation,
                    |built, offset, line, more| self.log_step(&mut run, built, offset, line, more),
                )?;
            }
        }
        let LogRun { shown_path, shown, last_offset, mut rep, .. } = run;
        if self.opts.max_warnings > 0 && shown > self.opts.max_warnings {
            eprintln!("warning: {} more bad records in {shown_path} are in quarantine", shown - self.opts.max_warnings);
        }
        rep.bytes = last_offset - resume_from.min(last_offset);
        Ok(rep)
    }
}

/// The state of one log input being ingested.
struct LogRun {
    /// Its committed progress, to which this run's counts are added.
    base: SourceProgress,
    rep: FileReport,
    shown_path: String,
    since_commit: u64,
    /// Bad records described so far.
    shown: usize,
    last_offset: u64,
}

impl Ctx<'_> {
    /// Write one stretch of a log input's rows, ending at `offset`/`line`, and commit when it is
    /// the end (`more` false) or enough rows were written since the last commit. `false` at the end.
    fn log_step(&mut self, run: &mut LogRun, built: Built, offset: u64, line: u64, more: bool) -> Result<bool> {
        let rep = &mut run.rep;
        rep.read += built.rows + built.quarantine.len() as u64;
        rep.written += built.rows;
        rep.quarantined += built.quarantine.len() as u64;
        run.since_commit += built.rows;
        for q in &built.quarantine {
            self.warn(&mut run.shown, q);
        }
        built.write(&mut self.tx)?;
        if let Some(bar) = &self.bar {
            bar.inc(offset - run.last_offset);
        }
        run.last_offset = offset;
        let progress = |complete: bool| SourceProgress {
            offset,
            complete,
            read: run.base.read + rep.read,
            written: run.base.written + rep.written,
            quarantined: run.base.quarantined + rep.quarantined,
            path: run.shown_path.clone(),
            line: Some(line),
            ..run.base.clone()
        };
        if !more {
            self.commit(progress(true))?;
            return Ok(false);
        }
        if run.since_commit >= self.opts.commit_every {
            self.commit(progress(false))?;
            run.since_commit = 0;
        }
        Ok(true)
    }
}

/// An input opened and positioned by [`Ctx::start`].
struct Started {
    shown_path: String,
    opened: input::Opened,
    /// Its committed progress (or a fresh one), to which this run's counts are added.
    base: SourceProgress,
    resume_from: u64,
    rep: FileReport,
}

/// Which decoder a command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    Pcap,
    Eve,
    Zeek,
    Cowrie,
    /// Told per file from its first bytes.
    Auto,
}

impl InputFormat {
    /// The name recorded in progress and quarantine.
    pub fn name(self) -> &'static str {
        match self {
            InputFormat::Pcap => "pcap",
            InputFormat::Eve => "eve",
            InputFormat::Zeek => "zeek",
            InputFormat::Cowrie => "cowrie",
            InputFormat::Auto => "auto",
        }
    }
}

/// The format of one file, from its first (decompressed) bytes.
pub fn detect(path: &Path) -> std::result::Result<InputFormat, String> {
    let mut opened = input::open(path).map_err(|e| e.to_string())?;
    let mut head = vec![0u8; 64 << 10];
    let n = input::read_up_to(&mut opened.reader, &mut head).map_err(|e| e.to_string())?;
    let head = &head[..n];
    const CAPTURE_MAGICS: [[u8; 4]; 5] = [
        [0xd4, 0xc3, 0xb2, 0xa1],
        [0xa1, 0xb2, 0xc3, 0xd4],
        [0x4d, 0x3c, 0xb2, 0xa1],
        [0xa1, 0xb2, 0x3c, 0x4d],
        [0x0a, 0x0d, 0x0d, 0x0a],
    ];
    if head.len() >= 4 && CAPTURE_MAGICS.iter().any(|m| head[..4] == *m) {
        return Ok(InputFormat::Pcap);
    }
    match crate::cowrie::sniff_log(head) {
        Some("eve") => Ok(InputFormat::Eve),
        Some("zeek") => Ok(InputFormat::Zeek),
        Some("cowrie") => Ok(InputFormat::Cowrie),
        _ => Err("cannot tell the format (not a capture, EVE, Zeek or Cowrie log)".into()),
    }
}

/// Ingest capture files and directories into the lake.
pub fn ingest_pcap(lake: &Lake, paths: &[PathBuf], opts: &IngestOptions) -> Result<IngestReport> {
    ingest(lake, paths, opts, InputFormat::Pcap, None)
}

/// Ingest files and directories of `format` into the lake; `organisation` tags log events with
/// the member that sent them.
pub fn ingest(
    lake: &Lake,
    paths: &[PathBuf],
    opts: &IngestOptions,
    format: InputFormat,
    organisation: Option<&str>,
) -> Result<IngestReport> {
    let start = Instant::now();
    let (files, errs) = input::expand_paths(paths);
    let tx = lake.begin(&opts.sensor, opts.writer.clone()).map_err(lake_err("starting a lake transaction"))?;
    let total: u64 = files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
    let bar = (opts.progress && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {wide_msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let mut ctx = Ctx { lake, tx, opts, report: IngestReport::default(), bar };
    ctx.report.path_errors = errs.iter().map(|e| e.to_string()).collect();
    ctx.report.events = format != InputFormat::Pcap;
    if opts.progress {
        for e in &ctx.report.path_errors {
            eprintln!("error: {e}");
        }
    }
    for f in &files {
        if let Some(b) = &ctx.bar {
            b.set_message(f.display().to_string());
        }
        let this = match format {
            InputFormat::Auto => detect(f),
            other => Ok(other),
        };
        let rep = match this {
            Ok(InputFormat::Pcap) => ctx.file(f)?,
            Ok(fmt) => ctx.log_file(f, organisation, fmt)?,
            Err(why) => FileReport::new(f, FileStatus::Unreadable(why)),
        };
        if let FileStatus::Unreadable(r) = &rep.status {
            let msg = format!("error: {}: cannot read: {r}", f.display());
            match &ctx.bar {
                Some(b) => b.println(msg),
                None => eprintln!("{msg}"),
            }
        }
        ctx.report.files.push(rep);
    }
    if let Some(b) = &ctx.bar {
        b.finish_and_clear();
    }
    ctx.report.seconds = start.elapsed().as_secs_f64();
    Ok(ctx.report)
}

/// How `--follow` polls.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    pub poll: std::time::Duration,
    /// Stop after this long without new records (default: follow until killed).
    pub idle_exit: Option<std::time::Duration>,
    /// Merge this follower's small files after this many commits (0: never). Each pass that
    /// finds records commits its own small files; over days they would number in the hundreds
    /// of thousands, and the lake's snapshot (in every reader's memory) with them.
    pub compact_every: u64,
}

/// Files smaller than this, written by a follower, are merged by [`follow`]'s compaction into
/// files of up to [`FOLLOW_COMPACT_TARGET`]; larger ones are left alone, so each byte is
/// rewritten a bounded number of times however long the follower runs.
const FOLLOW_SMALL_FILE: u64 = 8 << 20;
const FOLLOW_COMPACT_TARGET: u64 = 128 << 20;

/// Ingest `paths`, then keep ingesting what is appended to them, like `tail -F`: every `poll`,
/// each input is resumed from its committed offset (a plain JSON log by seeking there). A file
/// renamed away by rotation keeps its identity and is finished under its new name: a directory
/// argument sees it there, and a file argument `P` also takes `P.*` siblings modified since
/// following began. A copy-truncated file starts over as a new input. A killed follower resumes
/// from the lake's progress with nothing lost or doubled.
pub fn follow(
    lake: &Lake,
    paths: &[PathBuf],
    opts: &IngestOptions,
    format: InputFormat,
    organisation: Option<&str>,
    f: &FollowOptions,
    on_pass: &mut dyn FnMut(&IngestReport) -> Result<()>,
) -> Result<IngestReport> {
    let began = std::time::SystemTime::now() - f.poll;
    let opts = IngestOptions { follow: true, progress: false, ..opts.clone() };
    let mut total = IngestReport { events: format != InputFormat::Pcap, ..Default::default() };
    let start = Instant::now();
    let mut last_new = Instant::now();
    let mut compacted_at = 0;
    loop {
        let mut inputs: Vec<PathBuf> = Vec::new();
        for p in paths {
            if p.is_file() {
                inputs.extend(rotated_siblings(p, began));
            }
            // A file missing for a moment (between rename and create) is not an error.
            if p.exists() {
                inputs.push(p.clone());
            }
        }
        let rep = ingest(lake, &inputs, &opts, format, organisation)?;
        let fresh: Vec<FileReport> = rep.files.iter().filter(|r| r.read > 0).cloned().collect();
        if !fresh.is_empty() {
            last_new = Instant::now();
            on_pass(&IngestReport { files: fresh.clone(), ..rep.clone() })?;
            // One report per input, not per pass: a follower runs for days.
            for r in fresh {
                match total.files.iter_mut().find(|t| t.path == r.path) {
                    Some(t) => t.add(&r),
                    None => total.files.push(r),
                }
            }
            total.parquet_files += rep.parquet_files;
            total.parquet_bytes += rep.parquet_bytes;
            total.commits += rep.commits;
        }
        if f.compact_every > 0 && total.commits - compacted_at >= f.compact_every {
            compacted_at = total.commits;
            let tables = [Table::Events.name(), Table::Quarantine.name()];
            lake.compact_where(FOLLOW_COMPACT_TARGET, opts.writer.clone(), |e| {
                e.sensor == opts.sensor && e.bytes < FOLLOW_SMALL_FILE && tables.contains(&e.table.as_str())
            })
            .map_err(lake_err("merging the follower's small files"))?;
        }
        if f.idle_exit.is_some_and(|d| last_new.elapsed() >= d) {
            break;
        }
        std::thread::sleep(f.poll);
    }
    total.seconds = start.elapsed().as_secs_f64();
    Ok(total)
}

/// Files next to `p` named `<name>.<anything>` (logrotate's `eve.json.1`, Suricata's
/// `eve.json.<timestamp>`) modified since `since`: where a rotated file's last records are.
fn rotated_siblings(p: &Path, since: std::time::SystemTime) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (p.parent(), p.file_name()) else { return Vec::new() };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let prefix = format!("{}.", name.to_string_lossy());
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .filter(|e| e.metadata().and_then(|m| m.modified()).is_ok_and(|t| t >= since))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}
