//! Any bytes, under any link type, decode to a record or a decode error: never a panic.
#![no_main]
use cynex_ingest::pcap::decode::decode;
use cynex_ingest::pcap::fingerprint::annotate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let linktype = u16::from_le_bytes([data[0], data[1]]) % 300;
    let mut r = cynex_model::PacketRecord::default();
    if decode(linktype, &data[2..], data.len() as u32, &mut r).is_ok() {
        annotate(&mut r);
    }
});

