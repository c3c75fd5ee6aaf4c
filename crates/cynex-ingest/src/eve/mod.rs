//! Suricata EVE JSON: one event per line (JSONL), and also events pretty-printed over several
//! lines (a line holding only `{` starts one), into `events` rows.
//!
//! Every `event_type` is accepted: alert, flow, netflow, dns, http, tls, fileinfo, anomaly, drop,
//! ssh and stats get first-class columns (OCSF mapping after Tenzir's, see
//! ../shared/reference/lake.md §2.2); any other type is kept with its endpoints and raw record.
//! A line that is not a JSON object, lacks `timestamp`/`event_type`, has them of the wrong type,
//! is not UTF-8, or exceeds [`MAX_RECORD`] goes to quarantine with its line number and reason.

mod scan;
mod typed;

use std::io::BufRead;

pub use crate::records::{Decoded, RawRecord, RecordSplitter, Split, MAX_RECORD};
use cynex_model::event::EventRow;

/// OCSF class of an EVE event type.
fn class_of(event_type: &str) -> u32 {
    match event_type {
        "alert" | "anomaly" => 2004,
        "flow" | "netflow" | "drop" | "tls" => 4001,
        "http" => 4002,
        "dns" => 4003,
        "ssh" => 4007,
        "fileinfo" => 4010,
        _ => 0,
    }
}

/// Normalise one EVE record. `raw` must be the record's bytes. Only the fields with columns are
/// parsed, borrowing from the line (module `typed`); the record itself is kept verbatim.
pub fn normalize<'a>(raw: &'a [u8], source: &'a str, line: u64) -> Result<EventRow<'a>, String> {
    typed::normalize(raw, source, line)
}

/// Decode EVE records from `split` (see [`crate::records::decode_json_records`]).
pub fn decode_some<R: BufRead>(
    split: &mut RecordSplitter<R>,
    source: &str,
    organisation: Option<&str>,
    skip_before: u64,
    max: usize,
    out: &mut Decoded,
) -> std::io::Result<bool> {
    crate::records::decode_json_records(split, "eve", normalize, source, organisation, skip_before, max, out)
}
