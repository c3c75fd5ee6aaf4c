//! Bus chunks: any input, cut anywhere the chunker likes, is covered exactly, and decoding it
//! chunk by chunk gives the same events and quarantine (with the same places) as decoding it whole.

use cynex_ingest::bus::{decode_chunk, Chunker};
use cynex_ingest::records::{decode_json_records, Decoded, RecordSplitter};
use proptest::prelude::*;

fn whole(log: &[u8]) -> Decoded {
    let mut d = Decoded::default();
    let mut split = RecordSplitter::new(log, 0, 0);
    decode_json_records(&mut split, "eve", cynex_ingest::eve::normalize, "f", None, 0, usize::MAX, &mut d).unwrap();
    d
}

fn line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (0u32..100_000).prop_map(|i| format!(
            "{{\"timestamp\":\"2026-11-01T00:00:00.{i:06}Z\",\"event_type\":\"flow\",\"src_ip\":\"10.0.0.1\",\"n\":{i}}}\n"
        )
        .into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..300),
        Just(b"\n\r\n".to_vec()),
        Just(b"{\n  \"timestamp\": \"2026-11-01T00:00:00Z\",\n  \"event_type\": \"dns\"\n}\n".to_vec()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    #[test]
    fn chunked_decoding_equals_whole_decoding(parts in proptest::collection::vec(line(), 0..60), target in 16usize..2048) {
        let log: Vec<u8> = parts.concat();
        let mut c = Chunker::new(&log[..], false, target, 4096);
        let mut pos = 0;
        let (mut events, mut quarantine) = (Vec::new(), Vec::new());
        while let Some(chunk) = c.next_chunk().unwrap() {
            prop_assert_eq!(chunk.offset, pos);
            pos = chunk.end;
            let d = decode_chunk("eve", &chunk, "f", None);
            events.extend(d.events);
            quarantine.extend(d.quarantine);
        }
        prop_assert_eq!(pos as usize, log.len());
        let w = whole(&log);
        let place = |e: &cynex_model::event::EventRecord| (e.line, e.raw_data.clone());
        prop_assert_eq!(events.iter().map(place).collect::<Vec<_>>(), w.events.iter().map(place).collect::<Vec<_>>());
        let qplace = |q: &cynex_ingest::QuarantineRecord| (q.offset, q.line);
        prop_assert_eq!(quarantine.iter().map(qplace).collect::<Vec<_>>(), w.quarantine.iter().map(qplace).collect::<Vec<_>>());
    }
}
