//! Any bytes read as an EVE, Zeek or Cowrie log (first byte picks the format; the rest is the
//! log) yield events and quarantine records that account for every record: never a panic.
#![no_main]
use cynex_ingest::records::{decode_json_records, Decoded, RecordSplitter};
use cynex_ingest::zeek::ZeekReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, log)) = data.split_first() else { return };
    let mut d = Decoded::default();
    match pick % 3 {
        0 => {
            let mut split = RecordSplitter::new(log, 0, 0);
            let _ = decode_json_records(&mut split, "eve", cynex_ingest::eve::normalize, "fuzz", None, 0, usize::MAX, &mut d);
        }
        1 => {
            let mut split = RecordSplitter::new(log, 0, 0);
            let _ = decode_json_records(&mut split, "cowrie", cynex_ingest::cowrie::normalize, "fuzz", None, 0, usize::MAX, &mut d);
        }
        _ => {
            let _ = ZeekReader::new(log, "conn.log", None).decode_some(0, usize::MAX, &mut d);
        }
    }
    for q in &d.quarantine {
        assert!(q.offset as usize <= log.len());
    }
});
