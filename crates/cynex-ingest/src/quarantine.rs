//! Quarantine: what an input could not parse, kept with its place (file, byte offset, line) and
//! reason, and the raw bytes (up to [`QUARANTINE_RAW_MAX`]) so it can be looked at or re-parsed.

use std::sync::Arc;

use cynex_model::schema::{quarantine_schema, QUARANTINE_RAW_MAX};
use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, PrimitiveBuilder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::UInt64Type;
use datafusion::arrow::error::ArrowError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineRecord {
    pub format: &'static str,
    pub source: String,
    /// Byte offset in the (decompressed) input where the bad record starts.
    pub offset: u64,
    /// 1-based line number for line-oriented formats.
    pub line: Option<u64>,
    pub reason: String,
    /// Full size of the bad record; `raw` may hold only its first bytes.
    pub raw_len: u64,
    pub raw: Vec<u8>,
}

impl QuarantineRecord {
    /// A record for `raw`, keeping at most [`QUARANTINE_RAW_MAX`] bytes of it.
    pub fn new(format: &'static str, source: &str, offset: u64, reason: String, raw: &[u8]) -> Self {
        Self {
            format,
            source: source.to_string(),
            offset,
            line: None,
            reason,
            raw_len: raw.len() as u64,
            raw: raw[..raw.len().min(QUARANTINE_RAW_MAX)].to_vec(),
        }
    }
}

impl std::fmt::Display for QuarantineRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.source, self.reason),
            None => write!(f, "{}@{}: {}", self.source, self.offset, self.reason),
        }
    }
}

pub struct QuarantineColumns {
    ingested_at: TimestampMicrosecondBuilder,
    format: StringBuilder,
    source: StringBuilder,
    offset: PrimitiveBuilder<UInt64Type>,
    line: PrimitiveBuilder<UInt64Type>,
    reason: StringBuilder,
    raw_len: PrimitiveBuilder<UInt64Type>,
    raw: BinaryBuilder,
    rows: usize,
}

impl Default for QuarantineColumns {
    fn default() -> Self {
        Self {
            ingested_at: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            format: StringBuilder::new(),
            source: StringBuilder::new(),
            offset: PrimitiveBuilder::new(),
            line: PrimitiveBuilder::new(),
            reason: StringBuilder::new(),
            raw_len: PrimitiveBuilder::new(),
            raw: BinaryBuilder::new(),
            rows: 0,
        }
    }
}

impl QuarantineColumns {
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    pub fn append(&mut self, ingested_at_us: i64, r: &QuarantineRecord) {
        self.ingested_at.append_value(ingested_at_us);
        self.format.append_value(r.format);
        self.source.append_value(&r.source);
        self.offset.append_value(r.offset);
        self.line.append_option(r.line);
        self.reason.append_value(&r.reason);
        self.raw_len.append_value(r.raw_len);
        self.raw.append_value(&r.raw);
        self.rows += 1;
    }

    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.ingested_at.finish()),
            Arc::new(self.format.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.offset.finish()),
            Arc::new(self.line.finish()),
            Arc::new(self.reason.finish()),
            Arc::new(self.raw_len.finish()),
            Arc::new(self.raw.finish()),
        ];
        self.rows = 0;
        RecordBatch::try_new(quarantine_schema(), cols)
    }
}
