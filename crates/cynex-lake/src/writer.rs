//! Writing: a [`Transaction`] takes record batches for any table, splits them by partition
//! (sensor, date, hour of the row's time), encodes them to Parquet on worker threads, and
//! commits everything written since the last commit together with input progress.
//!
//! Parquet encoding is the expensive part of ingest (../shared/reference/lake.md §4: ~4-5 M
//! rows/s per core for a narrow schema), so batches are spread round-robin over `threads`
//! encoders, each writing its own file per partition. Memory is bounded: each encoder keeps at
//! most [`MAX_OPEN_PARTITIONS`] files open, closes files idle for a few batches (time-ordered input
//! has moved on), and each open file buffers at most one row group.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use cynex_model::time::{date_string, partition_of};
use cynex_model::Table;
use datafusion::arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::datatypes::TimestampMicrosecondType;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, Encoding, ZstdLevel};
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::schema::types::ColumnPath;

use crate::commit::{FileEntry, SourceProgress};
use crate::lake::{Lake, SourceMode, STAGING_DIR};
use crate::{io_err, Error, Result};

/// Files an encoder keeps open at once; past it the least recently written is closed.
pub(crate) const MAX_OPEN_PARTITIONS: usize = 16;
/// A file not written for this many batches is closed: time-ordered input has moved on to a newer
/// partition, and an open file holds its whole unfinished row group in memory.
const IDLE_BATCHES: u64 = 8;

/// Rows per row group of `events` (see `props`).
const EVENT_ROW_GROUP_ROWS: usize = 128 << 10;

#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Encoder threads.
    pub threads: usize,
    pub row_group_rows: usize,
    pub zstd_level: i32,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()).min(8),
            row_group_rows: 1 << 20,
            zstd_level: 1,
        }
    }
}

/// What a commit wrote.
#[derive(Debug, Clone, Default)]
pub struct CommitInfo {
    pub seq: u64,
    pub files: usize,
    pub rows: u64,
    pub bytes: u64,
}

fn props(table: Table, opts: &WriterOptions) -> WriterProperties {
    let level = ZstdLevel::try_new(opts.zstd_level).unwrap_or_default();
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_row_count(Some(match table {
            // A log event carries its raw record (~0.5 KB): a row group of a million of them held
            // in memory per open file made ingest's memory grow with the input's spread in time.
            Table::Events => opts.row_group_rows.min(EVENT_ROW_GROUP_ROWS),
            _ => opts.row_group_rows,
        }))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_created_by(format!("cynex {}", env!("CARGO_PKG_VERSION")));
    // High-cardinality columns gain nothing from dictionaries and pay for building them.
    let no_dict: &[&str] = match table {
        Table::Packets => &[
            "tcp_seq",
            "tcp_ack",
            "tcp_tsval",
            "ip_id",
            "src_port",
            "src_ip6",
            "dst_ip6",
            "inner_src_ip6",
            "inner_dst_ip6",
        ],
        Table::Quarantine => &["raw", "offset"],
        Table::Findings | Table::Ongoing | Table::Campaigns => &["id", "evidence", "end_time"],
        Table::Stats | Table::PortStats => &[],
        // Flow ids and community ids are unique per flow, content hashes nearly so, client
        // ports are ephemeral.
        Table::Events => &[
            "raw_data",
            "line",
            "metadata_uid",
            "connection_info_community_uid",
            "file_hashes_sha256",
            "file_hashes_md5",
            "src_endpoint_port",
        ],
    };
    for c in no_dict {
        b = b.set_column_dictionary_enabled(ColumnPath::from(*c), false);
    }
    // Verbatim records prune nothing: min/max over them only costs a comparison per row (a
    // memcmp of ~0.5 KB per EVE event, 4 % of ingest's cycles).
    let no_stats: &[&str] = match table {
        Table::Events => &["raw_data"],
        Table::Quarantine => &["raw"],
        _ => &[],
    };
    for c in no_stats {
        b = b.set_column_statistics_enabled(ColumnPath::from(*c), EnabledStatistics::None);
    }
    // Time is (nearly) sorted: deltas are small, so delta encoding stores far fewer bytes per
    // row than plain (measured in BENCHMARKS.md). With a dictionary enabled, Parquet uses the set
    // encoding only as the fallback once the dictionary page is full — which 128 k mostly-unique
    // event times never fill — so the dictionary is turned off for the time column of every table.
    b = b
        .set_column_dictionary_enabled(ColumnPath::from(table.time_column()), false)
        .set_column_encoding(ColumnPath::from(table.time_column()), Encoding::DELTA_BINARY_PACKED);
    if table == Table::Events {
        // Line numbers of a log rise by one per record: delta-encoded they take bits per page,
        // where plain wrote 8 bytes per row for zstd to squeeze.
        b = b.set_column_encoding(ColumnPath::from("line"), Encoding::DELTA_BINARY_PACKED);
    }
    // Random 16-bit values stored as INT32: split into byte planes the two high planes are all
    // zero and vanish under zstd (each is also in `no_dict`, which a set encoding needs).
    let byte_planes: &[&str] = match table {
        Table::Packets => &["ip_id", "src_port"],
        Table::Events => &["src_endpoint_port"],
        _ => &[],
    };
    for c in byte_planes {
        b = b.set_column_encoding(ColumnPath::from(*c), Encoding::BYTE_STREAM_SPLIT);
    }
    b.build()
}

struct OpenFile {
    writer: ArrowWriter<BufWriter<File>>,
    staged_rel: String,
    table: Table,
    days: i64,
    hour: u8,
    rows: u64,
    min_ts: i64,
    max_ts: i64,
    last_use: u64,
}

enum Msg {
    Batch(Table, RecordBatch),
    Flush,
}

struct Encoder {
    tx: SyncSender<Msg>,
    done: Receiver<Result<Vec<FileEntry>>>,
    handle: Option<JoinHandle<()>>,
}

struct EncoderState {
    root: PathBuf,
    staging_rel: String,
    sensor: String,
    opts: WriterOptions,
    open: HashMap<(Table, i64, u8), OpenFile>,
    closed: Vec<FileEntry>,
    tick: u64,
    error: Option<Error>,
}

impl EncoderState {
    fn write(&mut self, table: Table, batch: RecordBatch) -> Result<()> {
        let col = batch
            .column_by_name(table.time_column())
            .ok_or_else(|| Error::Internal(format!("{} batch has no time column", table.name())))?;
        let ts = col
            .as_primitive_opt::<TimestampMicrosecondType>()
            .ok_or_else(|| Error::Internal("time column is not a µs timestamp".into()))?;
        if ts.null_count() > 0 {
            return Err(Error::Internal("time column has nulls".into()));
        }
        let vals = ts.values();
        let first = partition_of(vals[0]);
        if vals.iter().all(|&t| partition_of(t) == first) {
            let (mn, mx) = min_max(vals);
            return self.append(table, first, batch, mn, mx);
        }
        let mut groups: HashMap<(i64, u8), Vec<u32>> = HashMap::new();
        for (i, &t) in vals.iter().enumerate() {
            groups.entry(partition_of(t)).or_default().push(i as u32);
        }
        let mut keys: Vec<_> = groups.into_iter().collect();
        keys.sort_by_key(|(k, _)| *k);
        for (part, idx) in keys {
            let idx = UInt32Array::from(idx);
            let sub = take_record_batch(&batch, &idx)?;
            let st = sub
                .column_by_name(table.time_column())
                .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
                .map(|a| min_max(a.values()));
            let (mn, mx) = st.unwrap_or((0, 0));
            self.append(table, part, sub, mn, mx)?;
        }
        Ok(())
    }

    fn append(&mut self, table: Table, (days, hour): (i64, u8), batch: RecordBatch, mn: i64, mx: i64) -> Result<()> {
        self.tick += 1;
        let key = (table, days, hour);
        if !self.open.contains_key(&key) {
            if self.open.len() >= MAX_OPEN_PARTITIONS {
                let oldest = self.open.iter().min_by_key(|(_, f)| f.last_use).map(|(k, _)| *k);
                if let Some(k) = oldest {
                    let f = self.open.remove(&k).ok_or_else(|| Error::Internal("open file vanished".into()))?;
                    let entry = self.close(f)?;
                    self.closed.push(entry);
                }
            }
            let name = format!("{}.parquet", uuid::Uuid::now_v7().simple());
            let staged_rel = format!("{}/{name}", self.staging_rel);
            let path = self.root.join(&staged_rel);
            let file = OpenOptions::new()
                .create_new(true)
                .write(true)
                .open(&path)
                .map_err(io_err(format!("creating {}", path.display())))?;
            let writer = ArrowWriter::try_new(
                BufWriter::with_capacity(1 << 20, file),
                table.schema(),
                Some(props(table, &self.opts)),
            )?;
            self.open.insert(
                key,
                OpenFile { writer, staged_rel, table, days, hour, rows: 0, min_ts: mn, max_ts: mx, last_use: 0 },
            );
        }
        let f = self.open.get_mut(&key).ok_or_else(|| Error::Internal("open file vanished".into()))?;
        f.writer.write(&batch)?;
        f.rows += batch.num_rows() as u64;
        f.min_ts = f.min_ts.min(mn);
        f.max_ts = f.max_ts.max(mx);
        f.last_use = self.tick;
        let idle: Vec<_> =
            self.open.iter().filter(|(_, f)| f.last_use + IDLE_BATCHES < self.tick).map(|(k, _)| *k).collect();
        for k in idle {
            if let Some(f) = self.open.remove(&k) {
                let entry = self.close(f)?;
                self.closed.push(entry);
            }
        }
        Ok(())
    }

    fn close(&self, f: OpenFile) -> Result<FileEntry> {
        let buf = f.writer.into_inner()?;
        let file = buf.into_inner().map_err(|e| io_err("flushing a parquet file")(e.into_error()))?;
        file.sync_all().map_err(io_err(format!("fsync {}", f.staged_rel)))?;
        let bytes = file.metadata().map_err(io_err("stat of a staged file"))?.len();
        let name = f.staged_rel.rsplit('/').next().unwrap_or_default().to_string();
        let path = format!(
            "{}/sensor={}/date={}/hour={:02}/part-{name}",
            f.table.name(),
            self.sensor,
            date_string(f.days),
            f.hour
        );
        Ok(FileEntry {
            table: f.table.name().to_string(),
            path,
            staged: f.staged_rel,
            sensor: self.sensor.clone(),
            days: f.days,
            hour: f.hour,
            rows: f.rows,
            bytes,
            min_ts: f.min_ts,
            max_ts: f.max_ts,
        })
    }

    fn flush(&mut self) -> Result<Vec<FileEntry>> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let mut files: Vec<_> = self.open.drain().map(|(_, f)| f).collect();
        files.sort_by_key(|f| (f.table, f.days, f.hour));
        let mut out = std::mem::take(&mut self.closed);
        for f in files {
            out.push(self.close(f)?);
        }
        Ok(out)
    }
}

fn min_max(v: &[i64]) -> (i64, i64) {
    v.iter().fold((i64::MAX, i64::MIN), |(a, b), &x| (a.min(x), b.max(x)))
}

/// An open write transaction for one sensor. Writes become visible at [`commit`](Self::commit);
/// dropping without committing leaves only staging files, removed on the next open.
pub struct Transaction {
    lake: Lake,
    sensor: String,
    staging: PathBuf,
    _staging_lock: File,
    encoders: Vec<Encoder>,
    next: usize,
}

impl Lake {
    /// Start writing for `sensor`.
    pub fn begin(&self, sensor: &str, opts: WriterOptions) -> Result<Transaction> {
        if !crate::valid_sensor_name(sensor) {
            return Err(Error::Invalid(format!(
                "sensor name {sensor:?}: use 1-64 characters of A-Z a-z 0-9 . _ - (not starting with a dot)"
            )));
        }
        let id = uuid::Uuid::now_v7().simple().to_string();
        let staging_rel = format!("{STAGING_DIR}/{id}");
        let staging = self.root.join(&staging_rel);
        let lock_path = self.root.join(format!("{STAGING_DIR}/{id}.lock"));
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(format!("creating {}", lock_path.display())))?;
        lock.lock().map_err(io_err("locking staging"))?;
        fs::create_dir_all(&staging).map_err(io_err(format!("creating {}", staging.display())))?;
        let threads = opts.threads.max(1);
        let mut encoders = Vec::with_capacity(threads);
        for i in 0..threads {
            let (tx, rx) = sync_channel::<Msg>(2);
            let (done_tx, done) = sync_channel(1);
            let mut st = EncoderState {
                root: self.root.clone(),
                staging_rel: staging_rel.clone(),
                sensor: sensor.to_string(),
                opts: opts.clone(),
                open: HashMap::new(),
                closed: Vec::new(),
                tick: 0,
                error: None,
            };
            let handle = std::thread::Builder::new()
                .name(format!("cynex-encode-{i}"))
                .spawn(move || encoder_loop(&mut st, rx, done_tx))
                .map_err(io_err("spawning an encoder thread"))?;
            encoders.push(Encoder { tx, done, handle: Some(handle) });
        }
        Ok(Transaction {
            lake: self.clone(),
            sensor: sensor.to_string(),
            staging,
            _staging_lock: lock,
            encoders,
            next: 0,
        })
    }
}

fn encoder_loop(st: &mut EncoderState, rx: Receiver<Msg>, done: SyncSender<Result<Vec<FileEntry>>>) {
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Batch(table, batch) => {
                if st.error.is_none() {
                    if let Err(e) = st.write(table, batch) {
                        st.error = Some(e);
                    }
                }
            }
            Msg::Flush => {
                if done.send(st.flush()).is_err() {
                    return;
                }
            }
        }
    }
}

impl Transaction {
    pub fn sensor(&self) -> &str {
        &self.sensor
    }

    /// Queue a batch of `table` rows. Blocks when the encoders are busy (back-pressure).
    pub fn write(&mut self, table: Table, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if batch.schema() != table.schema() {
            return Err(Error::Invalid(format!("batch schema does not match table {}", table.name())));
        }
        let e = &self.encoders[self.next % self.encoders.len()];
        self.next += 1;
        e.tx.send(Msg::Batch(table, batch)).map_err(|_| Error::Internal("encoder thread stopped".into()))
    }

    /// Close every file written so far and return them, uncommitted (for callers that commit
    /// them together with removals, such as compaction).
    pub(crate) fn flush_files(&mut self) -> Result<Vec<FileEntry>> {
        for e in &self.encoders {
            e.tx.send(Msg::Flush).map_err(|_| Error::Internal("encoder thread stopped".into()))?;
        }
        let mut files = Vec::new();
        let mut first_err = None;
        for e in &self.encoders {
            match e.done.recv() {
                Ok(Ok(f)) => files.extend(f),
                Ok(Err(err)) => first_err = first_err.or(Some(err)),
                Err(_) => first_err = first_err.or(Some(Error::Internal("encoder thread stopped".into()))),
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(files),
        }
    }

    /// Make everything written so far visible, atomically with the given input progress.
    pub fn commit(&mut self, op: &str, sources: Vec<SourceProgress>) -> Result<CommitInfo> {
        self.commit_files(op, Vec::new(), sources, SourceMode::Replace)
    }

    /// Like [`Transaction::commit`], for an input committed in pieces that may arrive in any order
    /// and from racing writers (bus chunks): each entry of `pieces` holds one byte range in
    /// `ranges` and its counts, and is merged into the input's one progress entry. Fails with
    /// [`Error::Conflict`] (committing nothing) when a piece overlaps bytes already committed.
    pub fn commit_pieces(&mut self, op: &str, pieces: Vec<SourceProgress>) -> Result<CommitInfo> {
        self.commit_files(op, Vec::new(), pieces, SourceMode::Pieces)
    }

    /// Like [`Transaction::commit`], but fails with [`Error::Conflict`] (committing nothing) when
    /// any of `sources` already has progress in the lake: for inputs that are each written once
    /// (bus messages) by writers that may race. The transaction is spent either way.
    pub fn commit_new(&mut self, op: &str, sources: Vec<SourceProgress>) -> Result<CommitInfo> {
        self.commit_files(op, Vec::new(), sources, SourceMode::New)
    }

    /// Like [`Transaction::commit`], and in the same commit remove the live files `remove` (paths
    /// relative to the lake root): readers see either the old files or the new ones, never both.
    pub fn commit_replacing(
        &mut self,
        op: &str,
        remove: Vec<String>,
        sources: Vec<SourceProgress>,
    ) -> Result<CommitInfo> {
        self.commit_files(op, remove, sources, SourceMode::Replace)
    }

    fn commit_files(
        &mut self,
        op: &str,
        remove: Vec<String>,
        sources: Vec<SourceProgress>,
        mode: SourceMode,
    ) -> Result<CommitInfo> {
        let files = self.flush_files()?;
        if files.is_empty() && sources.is_empty() && remove.is_empty() {
            return Ok(CommitInfo::default());
        }
        let info = CommitInfo {
            seq: 0,
            files: files.len(),
            rows: files.iter().map(|f| f.rows).sum(),
            bytes: files.iter().map(|f| f.bytes).sum(),
        };
        let seq = self.lake.commit(op, files, remove, sources, mode)?;
        Ok(CommitInfo { seq, ..info })
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        for e in &mut self.encoders {
            // Closing the channel ends the encoder loop.
            let (tx, _) = sync_channel(0);
            drop(std::mem::replace(&mut e.tx, tx));
            if let Some(h) = e.handle.take() {
                let _ = h.join();
            }
        }
        // Anything still staged was never committed.
        if let Ok(rd) = fs::read_dir(&self.staging) {
            for f in rd.filter_map(|e| e.ok()) {
                let _ = fs::remove_file(f.path());
            }
        }
        let _ = fs::remove_dir(&self.staging);
        let _ = fs::remove_file(self.staging.with_extension("lock"));
    }
}
