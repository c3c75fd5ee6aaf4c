//! Integration tests of the capture readers and decoder: real captures from ../shared/corpus,
//! tcpdump's decodes as the oracle, and generated captures with every container variant.

mod bus;
mod corpus;
mod cowrie;
mod eve;
mod gen_traits;
mod readers;
mod tcpdump;
mod zeek;

use std::path::PathBuf;

use cynex_ingest::pcap::{decode_frame, CaptureReader, Item};
use cynex_ingest::QuarantineRecord;
use cynex_model::PacketRecord;

/// ../shared/corpus, found from the crate directory (the clone sits beside `shared/`).
pub fn corpus() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    assert!(p.is_dir(), "corpus not found at {}", p.display());
    p
}

/// Everything a reader yields for `bytes`: decoded packets (or decode errors) and bad records.
#[derive(Debug, Default)]
pub struct Read {
    pub packets: Vec<PacketRecord>,
    pub decode_errors: Vec<String>,
    pub bad: Vec<QuarantineRecord>,
}

pub fn read_all(bytes: &[u8]) -> Result<Read, String> {
    let mut r = CaptureReader::new(bytes, "test").map_err(|e| e.reason)?;
    let mut out = Read::default();
    while let Some(item) = r.next_item() {
        match item {
            Item::Packet(f) => match decode_frame(&f) {
                Ok(p) => out.packets.push(p),
                Err(e) => out.decode_errors.push(e.to_string()),
            },
            Item::Bad(q) => out.bad.push(q),
        }
    }
    Ok(out)
}
