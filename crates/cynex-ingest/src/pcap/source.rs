//! One capture input as a stream of batches: decoded packets in Arrow form plus the quarantine
//! records met on the way, each batch ending at a record boundary whose byte offset is reported.

use std::io::Read;

use cynex_model::packet::{PacketColumns, PacketRecord};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::error::ArrowError;

use super::decode::{decode, DecodeError};
use super::fingerprint::annotate;
use super::reader::{CaptureReader, Frame, Item};
use crate::quarantine::QuarantineRecord;

/// Decode one frame into a record with fingerprint and tag bits.
pub fn decode_frame(frame: &Frame<'_>) -> Result<PacketRecord, DecodeError> {
    let mut r = PacketRecord { ts_us: frame.ts_us, ..Default::default() };
    decode(frame.linktype, frame.data, frame.orig_len, &mut r)?;
    annotate(&mut r);
    Ok(r)
}

/// What [`PcapSource::next_batch`] yields.
pub struct SourceEvent {
    pub packets: Option<RecordBatch>,
    pub quarantine: Vec<QuarantineRecord>,
    /// Stream offset just past the last record covered by this batch.
    pub offset: u64,
}

/// Counts for one input. `read == written + quarantined` always holds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SourceStats {
    /// Records read (packets and bad records), excluding those skipped on resume.
    pub read: u64,
    pub written: u64,
    pub quarantined: u64,
    /// Records skipped because an earlier run already committed them.
    pub resumed_past: u64,
}

pub struct PcapSource<R> {
    reader: CaptureReader<R>,
    source: String,
    cols: PacketColumns,
    quarantine: Vec<QuarantineRecord>,
    batch_rows: usize,
    resume_from: u64,
    stats: SourceStats,
    done: bool,
}

impl<R: Read> PcapSource<R> {
    /// `resume_from`: records starting before this stream offset were committed by an earlier run
    /// and are skipped without decoding.
    pub fn new(reader: CaptureReader<R>, source: &str, batch_rows: usize, resume_from: u64) -> Self {
        Self {
            reader,
            source: source.to_string(),
            cols: PacketColumns::with_capacity(batch_rows),
            quarantine: Vec::new(),
            batch_rows: batch_rows.max(1),
            resume_from,
            stats: SourceStats::default(),
            done: false,
        }
    }

    pub fn stats(&self) -> SourceStats {
        self.stats
    }

    pub fn reader(&self) -> &CaptureReader<R> {
        &self.reader
    }

    /// The next batch, or `None` when the input is exhausted.
    pub fn next_batch(&mut self) -> Result<Option<SourceEvent>, ArrowError> {
        if self.done {
            return Ok(None);
        }
        // Quarantine records are bounded per batch too (garbage can be long).
        while self.cols.len() < self.batch_rows && self.quarantine.len() < 1024 {
            let before = self.reader.offset();
            let resuming = before < self.resume_from;
            match self.reader.next_item() {
                None => {
                    self.done = true;
                    break;
                }
                Some(_) if resuming => self.stats.resumed_past += 1,
                Some(Item::Packet(frame)) => {
                    self.stats.read += 1;
                    match decode_frame(&frame) {
                        Ok(rec) => {
                            self.cols.append(&rec);
                            self.stats.written += 1;
                        }
                        Err(e) => {
                            let q =
                                QuarantineRecord::new("pcap", &self.source, frame.offset, e.to_string(), frame.data);
                            self.quarantine.push(q);
                            self.stats.quarantined += 1;
                        }
                    }
                }
                Some(Item::Bad(q)) => {
                    self.stats.read += 1;
                    self.stats.quarantined += 1;
                    self.quarantine.push(q);
                }
            }
        }
        let offset = self.reader.offset();
        if self.cols.is_empty() && self.quarantine.is_empty() && self.done {
            return Ok(Some(SourceEvent { packets: None, quarantine: Vec::new(), offset }));
        }
        let packets = if self.cols.is_empty() { None } else { Some(self.cols.finish()?) };
        Ok(Some(SourceEvent { packets, quarantine: std::mem::take(&mut self.quarantine), offset }))
    }
}
