//! Any bytes read as a capture yield packets and quarantine records, never a panic or a hang.
#![no_main]
use cynex_ingest::pcap::{decode_frame, CaptureReader, Item};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut r) = CaptureReader::new(data, "fuzz") {
        while let Some(item) = r.next_item() {
            if let Item::Packet(f) = item {
                let _ = decode_frame(&f);
            }
        }
    }
});
