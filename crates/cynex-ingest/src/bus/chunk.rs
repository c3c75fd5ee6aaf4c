//! Cutting a log into bus messages at record boundaries, and decoding a message back into events
//! placed in the original file (offset and line), so that a bus-delivered record is the same row
//! as the one `cynex ingest` would have written from the file.

use std::io::{BufRead, Read};

use crate::records::{decode_json_records, Decoded, RecordSplitter, Split};
use crate::zeek::ZeekReader;
use crate::QuarantineRecord;

/// One message's worth of a log: whole records, exactly as the bytes of the (decompressed) file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Offset in the decompressed input of the first byte.
    pub offset: u64,
    /// Lines before the chunk (the first line of the chunk is `line + 1`).
    pub line: u64,
    /// Offset just past the last byte.
    pub end: u64,
    /// Lines up to the end of the chunk.
    pub end_line: u64,
    /// Zeek header lines in force at the chunk's start (empty for other formats), so a consumer
    /// can decode the chunk without the rest of the file.
    pub context: Vec<u8>,
    pub bytes: Vec<u8>,
    /// The chunk is one record too long to send: `bytes` holds its first bytes, and this is its
    /// full length.
    pub oversize: Option<u64>,
}

impl Chunk {
    /// The part of the chunk from input offset `lo` to `hi`, both record boundaries (ends of
    /// earlier chunks of the same input), with its line numbers and, for Zeek, the header lines
    /// in force at `lo`. `None` for an oversize chunk (one record, cut short) or a range outside
    /// the chunk.
    pub fn slice(&self, lo: u64, hi: u64, zeek: bool) -> Option<Chunk> {
        if self.oversize.is_some() || lo < self.offset || hi > self.end || lo >= hi {
            return None;
        }
        let (a, b) = ((lo - self.offset) as usize, (hi - self.offset) as usize);
        let (head, body) = (&self.bytes[..a], &self.bytes[a..b]);
        let mut context = self.context.clone();
        if zeek {
            for l in head.split(|&c| c == b'\n') {
                note_zeek_header(&mut context, l.strip_suffix(b"\r").unwrap_or(l));
            }
        }
        let line = self.line + memchr::memchr_iter(b'\n', head).count() as u64;
        let end_line =
            if hi == self.end { self.end_line } else { line + memchr::memchr_iter(b'\n', body).count() as u64 };
        Some(Chunk { offset: lo, line, end: hi, end_line, context, bytes: body.to_vec(), oversize: None })
    }
}

/// Zeek header lines are the context every later chunk carries: `#separator` starts a new
/// header, `#open` and `#close` are not part of it.
fn note_zeek_header(context: &mut Vec<u8>, line: &[u8]) {
    if line.first() != Some(&b'#') {
        return;
    }
    if line.starts_with(b"#separator") {
        context.clear();
    }
    if !line.starts_with(b"#open") && !line.starts_with(b"#close") {
        context.extend_from_slice(line);
        context.push(b'\n');
    }
}

/// A buffered reader that keeps a copy of every byte consumed (up to a cap), so the splitter's
/// record boundaries can be cut out of the exact input bytes.
struct Tee<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    taken: Vec<u8>,
    /// Bytes kept at most: past it (only inside an over-long record) consumed bytes are not kept.
    cap: usize,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for Tee<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = self.inner.read(&mut self.buf)?;
        }
        Ok(&self.buf[self.pos..self.end])
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.end - self.pos);
        let keep = n.min(self.cap.saturating_sub(self.taken.len()));
        self.taken.extend_from_slice(&self.buf[self.pos..self.pos + keep]);
        self.pos += n;
    }
}

/// Splits a log into [`Chunk`]s of whole records: about `target` bytes each, never more than
/// `max_bytes` (context included), in memory bounded by `max_bytes` plus one record.
pub struct Chunker<R> {
    split: RecordSplitter<Tee<R>>,
    zeek: bool,
    /// Zeek header lines seen so far (from the last `#separator`).
    context: Vec<u8>,
    /// Context at the start of the chunk being built.
    chunk_context: Vec<u8>,
    target: usize,
    max_bytes: usize,
    /// Start of the chunk being built (offset, lines before it).
    start: (u64, u64),
    /// A record read past the chunk limit, to start the next chunk.
    carry: Option<Chunk>,
    done: bool,
    /// Chunks start here: everything before it was sent by an earlier run.
    resume: u64,
}

impl<R: Read> Chunker<R> {
    /// `zeek` keeps header lines as context. Oversize records (longer than `max_bytes` or
    /// [`MAX_RECORD`](crate::records::MAX_RECORD)) become their own chunk with only their first
    /// `max_bytes / 2` bytes.
    pub fn new(r: R, zeek: bool, target: usize, max_bytes: usize) -> Self {
        let max_bytes = max_bytes.max(1024);
        let target = target.clamp(1, max_bytes);
        let tee = Tee {
            inner: r,
            buf: vec![0; 256 << 10].into_boxed_slice(),
            pos: 0,
            end: 0,
            taken: Vec::new(),
            cap: max_bytes + crate::records::MAX_RECORD + 1024,
        };
        Chunker {
            split: RecordSplitter::new(tee, 0, 0),
            zeek,
            context: Vec::new(),
            chunk_context: Vec::new(),
            target,
            max_bytes,
            start: (0, 0),
            carry: None,
            done: false,
            resume: 0,
        }
    }

    /// Start chunking at `offset`, where an earlier run's chunks ended (a file that has grown
    /// since): what comes before it is read (Zeek headers still count as context) but not sent.
    /// The first chunk starts exactly there, even when it is inside a record — an earlier run
    /// sent that record's first part — and its offset and line say where it is in the file.
    pub fn resume_at(mut self, offset: u64) -> Self {
        self.resume = offset;
        self
    }

    /// Leave an unterminated last line unsent: the log is still being written, and the line is
    /// sent whole by a later run once it has its newline.
    pub fn hold_partial(mut self, hold: bool) -> Self {
        self.split = self.split.hold_partial(hold);
        self
    }

    /// Whether the input ended in an unfinished record that was left unsent ([`Self::hold_partial`]).
    pub fn held(&self) -> bool {
        self.split.held()
    }

    fn note_header(&mut self, line: &[u8]) {
        if self.zeek {
            note_zeek_header(&mut self.context, line);
        }
    }

    fn taken(&mut self) -> &mut Vec<u8> {
        &mut self.split.inner_mut().taken
    }

    /// Drop the bytes taken from the chunk start up to the resume offset (an earlier run sent
    /// them) and start the chunk there, on the line they ended; the new start.
    fn drop_sent(&mut self) -> (u64, u64) {
        let (offset, line) = self.start;
        let n = self.resume.saturating_sub(offset) as usize;
        let taken = self.taken();
        let lines = memchr::memchr_iter(b'\n', &taken[..n.min(taken.len())]).count() as u64;
        taken.drain(..n.min(taken.len()));
        self.start = (offset.max(self.resume), line + lines);
        self.chunk_context = self.context.clone();
        self.start
    }

    /// Cut the bytes taken so far up to `upto` (an input offset) into a chunk.
    fn cut(&mut self, upto: u64, upto_line: u64) -> Option<Chunk> {
        let (offset, line) = self.start;
        if upto <= offset {
            return None;
        }
        let n = (upto - offset) as usize;
        let taken = self.taken();
        let rest = taken.split_off(n.min(taken.len()));
        let bytes = std::mem::replace(taken, rest);
        self.start = (upto, upto_line);
        let context = std::mem::replace(&mut self.chunk_context, self.context.clone());
        Some(Chunk { offset, line, end: upto, end_line: upto_line, context, bytes, oversize: None })
    }

    /// The next chunk, or `None` at the end of the input.
    pub fn next_chunk(&mut self) -> std::io::Result<Option<Chunk>> {
        if let Some(c) = self.carry.take() {
            return Ok(Some(c));
        }
        if self.done {
            return Ok(None);
        }
        loop {
            let mut before = (self.split.offset(), self.split.line());
            let Some(rec) = self.split.next_record()? else {
                self.done = true;
                let end = (self.split.offset(), self.split.line());
                if self.start.0 < self.resume {
                    // Only blank lines since the last record an earlier run sent.
                    if end.0 <= self.resume {
                        return Ok(None);
                    }
                    self.drop_sent();
                }
                return Ok(self.cut(end.0, end.1));
            };
            let after = (self.split.offset(), self.split.line());
            let (raw, too_long) = match rec {
                Split::Record(r) => (r, None),
                Split::TooLong(r, len) => (r, Some(len)),
            };
            if before.0 < self.resume {
                if after.0 <= self.resume {
                    // Sent by an earlier run.
                    self.note_header(&raw.bytes);
                    self.taken().clear();
                    self.start = after;
                    self.chunk_context = self.context.clone();
                    continue;
                }
                // An earlier run sent the bytes up to here (blank lines before this record, or
                // its first part): the chunk starts where they ended.
                before = self.drop_sent();
            }
            let rec_len = (after.0 - before.0) as usize;
            if too_long.is_some() || rec_len + self.chunk_context.len() > self.max_bytes {
                // Send what came before as one chunk and this record alone, cut short.
                let prior = self.cut(before.0, before.1);
                let context = self.context.clone();
                let full = too_long.unwrap_or(rec_len as u64);
                let keep = raw.bytes.len().min(self.max_bytes / 2);
                let mut bytes = raw.bytes;
                bytes.truncate(keep);
                self.taken().clear();
                self.start = after;
                self.chunk_context = self.context.clone();
                let big = Chunk {
                    offset: before.0,
                    line: before.1,
                    end: after.0,
                    end_line: after.1,
                    context,
                    bytes,
                    oversize: Some(full),
                };
                return Ok(Some(match prior {
                    Some(p) => {
                        self.carry = Some(big);
                        p
                    }
                    None => big,
                }));
            }
            self.note_header(&raw.bytes);
            let size = (after.0 - self.start.0) as usize + self.chunk_context.len();
            if size > self.target {
                // This record does not fit: it starts the next chunk.
                let c = self.cut(before.0, before.1);
                if c.is_some() {
                    return Ok(c);
                }
            }
        }
    }
}

/// Decode one chunk of `format` ("eve", "zeek", "cowrie") into events and quarantine records
/// placed in the original input `source`.
pub fn decode_chunk(format: &str, chunk: &Chunk, source: &str, organisation: Option<&str>) -> Decoded {
    let mut d = Decoded::default();
    let fmt: &'static str = match format {
        "eve" => "eve",
        "zeek" => "zeek",
        "cowrie" => "cowrie",
        other => {
            let why = format!("unknown log format {other:?} on the bus");
            d.quarantine.push(place(QuarantineRecord::new("bus", source, 0, why, &chunk.bytes), chunk));
            return d;
        }
    };
    if let Some(full) = chunk.oversize {
        let mut q = QuarantineRecord::new(
            fmt,
            source,
            0,
            if full > crate::records::MAX_RECORD as u64 {
                format!("record of {full} bytes exceeds {}", crate::records::MAX_RECORD)
            } else {
                format!("record of {full} bytes exceeds the bus message size")
            },
            &chunk.bytes,
        );
        q.line = Some(1);
        q.raw_len = full;
        d.quarantine.push(place(q, chunk));
        return d;
    }
    let mut body = Vec::with_capacity(chunk.context.len() + chunk.bytes.len());
    body.extend_from_slice(&chunk.context);
    body.extend_from_slice(&chunk.bytes);
    let skip = chunk.context.len() as u64;
    let ctx_lines = chunk.context.iter().filter(|&&b| b == b'\n').count() as u64;
    let cursor = std::io::Cursor::new(body);
    let result = match fmt {
        "zeek" => ZeekReader::new(cursor, source, organisation).decode_some(skip, usize::MAX, &mut d),
        _ => {
            let normalize: crate::records::Normalize =
                if fmt == "cowrie" { crate::cowrie::normalize } else { crate::eve::normalize };
            let mut split = RecordSplitter::new(cursor, 0, 0);
            decode_json_records(&mut split, fmt, normalize, source, organisation, skip, usize::MAX, &mut d)
        }
    };
    // Reading from memory cannot fail.
    debug_assert!(result.is_ok());
    for e in &mut d.events {
        e.line = e.line.map(|l| l - ctx_lines + chunk.line);
    }
    for q in &mut d.quarantine {
        q.offset = q.offset - skip + chunk.offset;
        q.line = q.line.map(|l| l - ctx_lines + chunk.line);
    }
    d
}

/// Place a quarantine record made relative to the chunk (offset 0, line 1) in the input.
fn place(mut q: QuarantineRecord, chunk: &Chunk) -> QuarantineRecord {
    q.offset += chunk.offset;
    q.line = Some(q.line.unwrap_or(1) + chunk.line);
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(input: &[u8], zeek: bool, max: usize) -> Vec<Chunk> {
        let mut c = Chunker::new(input, zeek, max, max);
        let mut out = Vec::new();
        while let Some(ch) = c.next_chunk().unwrap() {
            out.push(ch);
        }
        out
    }

    #[test]
    fn chunks_cover_the_input_exactly() {
        let mut input = Vec::new();
        for i in 0..5000 {
            input.extend_from_slice(format!("{{\"event_type\":\"dns\",\"n\":{i}}}\n").as_bytes());
            if i % 7 == 0 {
                input.extend_from_slice(b"\r\n");
            }
        }
        let cs = chunks(&input, false, 4096);
        assert!(cs.len() > 10);
        let mut joined = Vec::new();
        let mut pos = (0, 0);
        for c in &cs {
            assert_eq!((c.offset, c.line), pos);
            assert!(c.bytes.len() <= 4096, "{}", c.bytes.len());
            assert_eq!(c.bytes.len() as u64, c.end - c.offset);
            assert!(c.bytes.ends_with(b"\n"));
            joined.extend_from_slice(&c.bytes);
            pos = (c.end, c.end_line);
        }
        assert_eq!(joined, input);
    }

    #[test]
    fn oversize_record_is_cut_and_placed() {
        let mut input = b"{\"a\":1}\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 3 << 20));
        input.extend_from_slice(b"\n{\"b\":2}\n");
        let cs = chunks(&input, false, 64 << 10);
        assert_eq!(cs.len(), 3, "{:?}", cs.iter().map(|c| (c.offset, c.oversize)).collect::<Vec<_>>());
        assert_eq!(cs[1].oversize, Some((3 << 20) + 1));
        assert_eq!((cs[1].offset, cs[1].line), (8, 1));
        assert!(cs[1].bytes.len() <= 32 << 10);
        assert_eq!((cs[2].offset, cs[2].line), (8 + (3 << 20) + 1, 2));
        assert_eq!(cs[2].bytes, b"{\"b\":2}\n");
        let d = decode_chunk("eve", &cs[1], "f.json", None);
        assert_eq!(d.quarantine.len(), 1);
        assert_eq!((d.quarantine[0].offset, d.quarantine[0].line), (8, Some(2)));
    }

    #[test]
    fn zeek_chunks_carry_their_header() {
        let head = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n\
                    #fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\n\
                    #types\ttime\tstring\taddr\tport\taddr\tport\tenum\n";
        let mut input = head.as_bytes().to_vec();
        for i in 0..400 {
            let row = format!("1700000000.{i:06}\tC{i}\t10.0.0.1\t{}\t10.0.0.2\t80\ttcp\n", 1000 + i);
            input.extend_from_slice(row.as_bytes());
        }
        input.extend_from_slice(b"not\ta\trow\n");
        let cs = chunks(&input, true, 2048);
        assert!(cs.len() > 5);
        let (mut events, mut bad) = (Vec::new(), Vec::new());
        for c in &cs {
            let d = decode_chunk("zeek", c, "conn.log", Some("m1"));
            events.extend(d.events);
            bad.extend(d.quarantine);
        }
        assert_eq!(events.len(), 400);
        let lines: Vec<u64> = events.iter().filter_map(|e| e.line).collect();
        assert_eq!(lines, (8..408).collect::<Vec<u64>>());
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, Some(408));
        let off = input.len() as u64 - b"not\ta\trow\n".len() as u64;
        assert_eq!(bad[0].offset, off);
        // The same rows as decoding the whole file at once.
        let mut whole = Decoded::default();
        ZeekReader::new(&input[..], "conn.log", Some("m1")).decode_some(0, usize::MAX, &mut whole).unwrap();
        assert_eq!(whole.events.len(), 400);
        assert_eq!(whole.events[123].raw_data, events[123].raw_data);
        assert_eq!(whole.events[123].line, events[123].line);
    }
}
