//! Splitting line-oriented inputs (JSON lines, Zeek TSV) into records in bounded memory, with
//! each record's line number and byte offset. A line holding only `{` starts a pretty-printed
//! JSON object that runs until the gathered lines parse.
//!
//! Reading and decoding are separate steps so that they can run on different threads: the
//! splitter fills a [`RecordChunk`] (the records' bytes in one buffer, and where each starts) and
//! [`decode_records`] turns a chunk into rows and quarantine records.

use std::borrow::Cow;
use std::io::BufRead;

use cynex_model::event::{EventColumns, EventRecord, EventRow};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::error::ArrowError;
use serde_json::Value;

use crate::QuarantineRecord;

/// Decoded rows and quarantined records of a stretch of a log input. The rows go into `E`:
/// owned records (the default, for callers that look at them) or straight into column builders.
#[derive(Debug, Default)]
pub struct Decoded<E = Vec<EventRecord>> {
    pub events: E,
    pub quarantine: Vec<QuarantineRecord>,
}

/// Where decoded rows go.
pub trait EventSink: Default {
    fn push_row(&mut self, row: EventRow<'_>);
    /// Rows pushed so far.
    fn rows(&self) -> usize;
    /// The rows as one record batch (`None` when there are none).
    fn into_batch(self) -> Result<Option<RecordBatch>, ArrowError>;
}

impl EventSink for Vec<EventRecord> {
    fn push_row(&mut self, row: EventRow<'_>) {
        self.push(row.into_record());
    }
    fn rows(&self) -> usize {
        self.len()
    }
    fn into_batch(self) -> Result<Option<RecordBatch>, ArrowError> {
        let mut cols = EventColumns::default();
        for e in &self {
            cols.append(e);
        }
        cols.into_batch()
    }
}

impl EventSink for EventColumns {
    fn push_row(&mut self, row: EventRow<'_>) {
        self.append_row(&row);
    }
    fn rows(&self) -> usize {
        self.len()
    }
    fn into_batch(mut self) -> Result<Option<RecordBatch>, ArrowError> {
        if self.is_empty() {
            return Ok(None);
        }
        self.finish().map(Some)
    }
}

/// A normaliser of one JSON record: the row borrows from the record's bytes and the source name.
pub type Normalize = for<'a> fn(&'a [u8], &'a str, u64) -> Result<EventRow<'a>, String>;

/// Longest record accepted: Suricata stats events reach tens of KB; a longer line is garbage
/// (or an attack on the pipeline) and is quarantined with its first bytes.
pub const MAX_RECORD: usize = 1 << 20;

/// One raw record and where it started.
#[derive(Debug)]
pub struct RawRecord {
    pub line: u64,
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// Splits a stream into records: single lines, or a pretty-printed object from a line that is
/// only `{` to the line that completes it. Over-long lines are read in bounded memory: only the
/// first [`MAX_RECORD`] bytes are kept and the record is marked over-long.
pub struct RecordSplitter<R> {
    r: R,
    line: u64,
    offset: u64,
    /// Leave an unterminated last record unread (a writer may be in the middle of it).
    hold_partial: bool,
    /// The end was reached in such a record.
    held: bool,
}

/// What [`RecordSplitter::next_record`] found.
#[derive(Debug)]
pub enum Split {
    Record(RawRecord),
    /// A record longer than [`MAX_RECORD`] (its first bytes, and its full length).
    TooLong(RawRecord, u64),
}

impl<R: BufRead> RecordSplitter<R> {
    /// Start at `offset`/`line` (for resuming, both from committed progress).
    pub fn new(r: R, offset: u64, line: u64) -> Self {
        RecordSplitter { r, line, offset, hold_partial: false, held: false }
    }

    /// For a file that is still being written: a last line without its newline (or a
    /// pretty-printed object not yet closed) is not returned, and the offset stays before it,
    /// so the next read from that offset gets the whole record.
    pub fn hold_partial(mut self, hold: bool) -> Self {
        self.hold_partial = hold;
        self
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Whether the end was reached in an unfinished record that was left unread.
    pub fn held(&self) -> bool {
        self.held
    }

    pub fn line(&self) -> u64 {
        self.line
    }

    pub fn inner_mut(&mut self) -> &mut R {
        &mut self.r
    }

    /// Append one line (without its newline) to `buf`, keeping at most `MAX_RECORD` bytes past
    /// `start`; returns the full length consumed, or `None` at the end.
    fn read_line(&mut self, buf: &mut Vec<u8>, start: usize) -> std::io::Result<Option<u64>> {
        let mut consumed = 0u64;
        loop {
            let avail = self.r.fill_buf()?;
            if avail.is_empty() {
                self.held = consumed > 0 && self.hold_partial;
                return Ok((consumed > 0 && !self.hold_partial).then_some(consumed));
            }
            let (chunk, done) = match memchr(avail) {
                Some(i) => (&avail[..=i], true),
                None => (avail, false),
            };
            let room = MAX_RECORD.saturating_sub(buf.len() - start);
            buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            let n = chunk.len();
            self.r.consume(n);
            consumed += n as u64;
            if done {
                return Ok(Some(consumed));
            }
        }
    }

    pub fn next_record(&mut self) -> std::io::Result<Option<Split>> {
        let mut buf = Vec::new();
        Ok(self.next_into(&mut buf)?.map(|m| {
            let raw = RawRecord { line: m.line, offset: m.offset, bytes: buf };
            match m.too_long {
                Some(len) => Split::TooLong(raw, len),
                None => Split::Record(raw),
            }
        }))
    }

    /// Append the next record's bytes to `buf` and say where they are; `None` at the end (or
    /// before an unfinished last record when holding partial records), with `buf` as it was.
    pub fn next_into(&mut self, buf: &mut Vec<u8>) -> std::io::Result<Option<RecordMeta>> {
        loop {
            let start = buf.len();
            let offset = self.offset;
            let Some(n) = self.read_line(buf, start)? else {
                buf.truncate(start);
                return Ok(None);
            };
            self.offset += n;
            self.line += 1;
            let line = self.line;
            trim_newline(buf, start);
            if buf[start..].iter().all(u8::is_ascii_whitespace) {
                buf.truncate(start);
                continue;
            }
            let meta = |buf: &Vec<u8>, too_long| RecordMeta { line, offset, start, end: buf.len(), too_long };
            if n as usize > MAX_RECORD {
                return Ok(Some(meta(buf, Some(n))));
            }
            if buf[start..].trim_ascii() == b"{" {
                // A pretty-printed object: gather lines until it parses (or cannot).
                let mut total = n;
                let mut more = Vec::new();
                loop {
                    if serde_json::from_slice::<Value>(&buf[start..]).is_ok() {
                        break;
                    }
                    more.clear();
                    match self.read_line(&mut more, 0)? {
                        None if self.hold_partial => {
                            // Not finished yet: leave it for the next read.
                            self.held = true;
                            self.offset = offset;
                            self.line = line - 1;
                            buf.truncate(start);
                            return Ok(None);
                        }
                        None => break,
                        Some(m) => {
                            self.offset += m;
                            self.line += 1;
                            total += m;
                            trim_newline(&mut more, 0);
                            buf.push(b'\n');
                            buf.extend_from_slice(&more);
                            if buf.len() - start > MAX_RECORD {
                                buf.truncate(start + MAX_RECORD);
                                return Ok(Some(meta(buf, Some(total))));
                            }
                            // A complete closing brace at column 0 ends the object either way.
                            if more.first() == Some(&b'}') {
                                break;
                            }
                        }
                    }
                }
            }
            return Ok(Some(meta(buf, None)));
        }
    }

    /// Read up to `max_records` records (good or bad) or about `max_bytes` of them, leaving out
    /// (without keeping their bytes) records that start before `skip_before` (already committed).
    pub fn read_chunk(
        &mut self,
        skip_before: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> std::io::Result<RecordChunk> {
        let mut c = RecordChunk::default();
        while c.recs.len() < max_records && c.buf.len() < max_bytes {
            let Some(m) = self.next_into(&mut c.buf)? else {
                c.last = true;
                break;
            };
            if m.offset < skip_before {
                c.buf.truncate(m.start);
                continue;
            }
            c.recs.push(m);
        }
        (c.offset, c.line) = (self.offset, self.line);
        Ok(c)
    }
}

/// Where a record read by [`RecordSplitter::next_into`] is: in the input, and in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMeta {
    pub line: u64,
    pub offset: u64,
    pub start: usize,
    pub end: usize,
    /// The record was longer than [`MAX_RECORD`]: its full length (only its first bytes are kept).
    pub too_long: Option<u64>,
}

/// Records read together: their bytes in one buffer and where each is.
#[derive(Debug, Default)]
pub struct RecordChunk {
    pub buf: Vec<u8>,
    pub recs: Vec<RecordMeta>,
    /// The splitter's offset and line after the chunk.
    pub offset: u64,
    pub line: u64,
    /// The input ended (or, holding partial records, has nothing more complete yet).
    pub last: bool,
}

fn memchr(b: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', b)
}

/// Drop a line's `\n` or `\r\n`, not looking before `start`.
fn trim_newline(b: &mut Vec<u8>, start: usize) {
    if b.len() > start && b.last() == Some(&b'\n') {
        b.pop();
    }
    if b.len() > start && b.last() == Some(&b'\r') {
        b.pop();
    }
}

/// Decode JSON-per-record input with `normalize` until `max` records (good or bad) were read or
/// the input ends, skipping (without decoding) records that start before `skip_before` (already
/// committed). Bad and over-long records are quarantined with line and reason. `false` at the end.
#[allow(clippy::too_many_arguments)]
pub fn decode_json_records<R: BufRead, E: EventSink>(
    split: &mut RecordSplitter<R>,
    format: &'static str,
    normalize: Normalize,
    source: &str,
    organisation: Option<&str>,
    skip_before: u64,
    max: usize,
    out: &mut Decoded<E>,
) -> std::io::Result<bool> {
    // In slices, so that `max == usize::MAX` holds only a slice of records at a time.
    let mut left = max;
    while left > 0 {
        let chunk = split.read_chunk(skip_before, left.min(DECODE_SLICE), usize::MAX)?;
        left -= chunk.recs.len();
        decode_records(&chunk, format, normalize, source, organisation, out);
        if chunk.last {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Records per slice read by [`decode_json_records`].
const DECODE_SLICE: usize = 4096;

/// Decode a chunk's records into `out`: each a row, or a quarantine record with line and reason.
pub fn decode_records<E: EventSink>(
    chunk: &RecordChunk,
    format: &'static str,
    normalize: Normalize,
    source: &str,
    organisation: Option<&str>,
    out: &mut Decoded<E>,
) {
    for m in &chunk.recs {
        let bytes = &chunk.buf[m.start..m.end];
        let reason = match m.too_long {
            Some(len) => format!("record of {len} bytes exceeds {MAX_RECORD}"),
            None => match normalize(bytes, source, m.line) {
                Ok(mut e) => {
                    e.organisation = organisation.map(Cow::Borrowed);
                    out.events.push_row(e);
                    continue;
                }
                Err(reason) => reason,
            },
        };
        let mut q = QuarantineRecord::new(format, source, m.offset, reason, bytes);
        q.line = Some(m.line);
        if let Some(len) = m.too_long {
            q.raw_len = len;
        }
        out.quarantine.push(q);
    }
}
