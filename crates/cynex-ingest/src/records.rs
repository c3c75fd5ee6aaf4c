//! Splitting line-oriented inputs (JSON lines, Zeek TSV) into records in bounded memory, with
//! each record's line number and byte offset. A line holding only `{` starts a pretty-printed
//! JSON object that runs until the gathered lines parse.

use std::io::BufRead;

use cynex_model::event::EventRecord;
use serde_json::Value;

use crate::QuarantineRecord;

/// Decoded rows and quarantined records of a stretch of a log input.
#[derive(Debug, Default)]
pub struct Decoded {
    pub events: Vec<EventRecord>,
    pub quarantine: Vec<QuarantineRecord>,
}

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
        RecordSplitter { r, line, offset, hold_partial: false }
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

    pub fn line(&self) -> u64 {
        self.line
    }

    pub fn inner_mut(&mut self) -> &mut R {
        &mut self.r
    }

    /// Read one line (without its newline) into `buf`, keeping at most `MAX_RECORD` bytes;
    /// returns the full length consumed, or `None` at the end.
    fn read_line(&mut self, buf: &mut Vec<u8>) -> std::io::Result<Option<u64>> {
        let mut consumed = 0u64;
        loop {
            let avail = self.r.fill_buf()?;
            if avail.is_empty() {
                return Ok((consumed > 0 && !self.hold_partial).then_some(consumed));
            }
            let (chunk, done) = match memchr(avail) {
                Some(i) => (&avail[..=i], true),
                None => (avail, false),
            };
            let room = MAX_RECORD.saturating_sub(buf.len());
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
        loop {
            let mut buf = Vec::new();
            let start = self.offset;
            let Some(n) = self.read_line(&mut buf)? else { return Ok(None) };
            self.offset += n;
            self.line += 1;
            let line_no = self.line;
            trim_newline(&mut buf);
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if n as usize > MAX_RECORD {
                return Ok(Some(Split::TooLong(RawRecord { line: line_no, offset: start, bytes: buf }, n)));
            }
            if buf.trim_ascii() == b"{" {
                // A pretty-printed object: gather lines until it parses (or cannot).
                let mut total = n;
                loop {
                    if serde_json::from_slice::<Value>(&buf).is_ok() {
                        break;
                    }
                    let mut more = Vec::new();
                    match self.read_line(&mut more)? {
                        None if self.hold_partial => {
                            // Not finished yet: leave it for the next read.
                            self.offset = start;
                            self.line = line_no - 1;
                            return Ok(None);
                        }
                        None => break,
                        Some(m) => {
                            self.offset += m;
                            self.line += 1;
                            total += m;
                            trim_newline(&mut more);
                            buf.push(b'\n');
                            buf.extend_from_slice(&more);
                            if buf.len() > MAX_RECORD {
                                buf.truncate(MAX_RECORD);
                                return Ok(Some(Split::TooLong(
                                    RawRecord { line: line_no, offset: start, bytes: buf },
                                    total,
                                )));
                            }
                            // A complete closing brace at column 0 ends the object either way.
                            if more.first() == Some(&b'}') {
                                break;
                            }
                        }
                    }
                }
            }
            return Ok(Some(Split::Record(RawRecord { line: line_no, offset: start, bytes: buf })));
        }
    }
}

fn memchr(b: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', b)
}

fn trim_newline(b: &mut Vec<u8>) {
    if b.last() == Some(&b'\n') {
        b.pop();
    }
    if b.last() == Some(&b'\r') {
        b.pop();
    }
}

/// Decode JSON-per-record input with `normalize` until `max` records (good or bad) were read or
/// the input ends, skipping (without decoding) records that start before `skip_before` (already
/// committed). Bad and over-long records are quarantined with line and reason. `false` at the end.
#[allow(clippy::too_many_arguments)]
pub fn decode_json_records<R: BufRead>(
    split: &mut RecordSplitter<R>,
    format: &'static str,
    normalize: fn(&[u8], &str, u64) -> Result<EventRecord, String>,
    source: &str,
    organisation: Option<&str>,
    skip_before: u64,
    max: usize,
    out: &mut Decoded,
) -> std::io::Result<bool> {
    let mut n = 0;
    while n < max {
        let Some(rec) = split.next_record()? else { return Ok(false) };
        let start = match &rec {
            Split::Record(r) | Split::TooLong(r, _) => r.offset,
        };
        if start < skip_before {
            continue;
        }
        n += 1;
        let (raw, reason, full_len) = match rec {
            Split::TooLong(raw, len) => (raw, format!("record of {len} bytes exceeds {MAX_RECORD}"), Some(len)),
            Split::Record(raw) => match normalize(&raw.bytes, source, raw.line) {
                Ok(mut e) => {
                    e.organisation = organisation.map(str::to_string);
                    out.events.push(e);
                    continue;
                }
                Err(reason) => (raw, reason, None),
            },
        };
        let mut q = QuarantineRecord::new(format, source, raw.offset, reason, &raw.bytes);
        q.line = Some(raw.line);
        if let Some(len) = full_len {
            q.raw_len = len;
        }
        out.quarantine.push(q);
    }
    Ok(true)
}
