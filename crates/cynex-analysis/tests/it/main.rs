//! Analysis against ground truth: a synthetic capture with planted tools, victims and a port
//! surge goes through the real reader and lake, then `analyze`; the findings must match what was
//! planted. Incremental runs must give exactly what one batch run gives.

mod accuracy;
mod alerts;
mod geo;
mod incremental;

use cynex_analysis::research::ResearchOrg;
use cynex_analysis::AnalysisConfig;
use cynex_gen::{generate_darknet, DarknetConfig, GroundTruth};
use cynex_ingest::pcap::{CaptureReader, PcapSource};
use cynex_lake::{Lake, SourceProgress, WriterOptions};
use cynex_model::Table;

pub(crate) fn capture(cfg: &DarknetConfig) -> (GroundTruth, Vec<u8>) {
    generate_darknet(cfg, Vec::new()).unwrap()
}

/// Ingest a capture through the real reader, committing every `batch_rows` packets.
pub(crate) fn ingest(lake: &Lake, sensor: &str, id: &str, bytes: &[u8]) -> u64 {
    ingest_threads(lake, sensor, id, bytes, 2)
}

/// [`ingest`] with `threads` encoders: each writes its own file per hour, interleaved in time.
pub(crate) fn ingest_threads(lake: &Lake, sensor: &str, id: &str, bytes: &[u8], threads: usize) -> u64 {
    let mut tx = lake.begin(sensor, WriterOptions { threads, ..Default::default() }).unwrap();
    let reader = CaptureReader::new(bytes, "mem").unwrap();
    let mut src = PcapSource::new(reader, "mem", 65_536, 0);
    let mut n = 0;
    while let Some(ev) = src.next_batch().unwrap() {
        if let Some(b) = ev.packets {
            n += b.num_rows() as u64;
            tx.write(Table::Packets, b).unwrap();
        }
    }
    let p = SourceProgress {
        id: id.into(),
        sensor: sensor.into(),
        format: "pcap".into(),
        path: "mem".into(),
        offset: bytes.len() as u64,
        complete: true,
        read: n,
        written: n,
        quarantined: 0,
        error: None,
        ..Default::default()
    };
    tx.commit("ingest", vec![p]).unwrap();
    n
}

/// Analysis settings for a generated capture: its dark block and research organisations.
pub(crate) fn config_for(t: &GroundTruth) -> AnalysisConfig {
    AnalysisConfig {
        dark: vec![t.config.dark],
        research: t
            .research
            .iter()
            .map(|r| ResearchOrg { name: r.name.clone(), prefixes: vec![r.prefix.parse().unwrap()] })
            .collect(),
        ..Default::default()
    }
}
