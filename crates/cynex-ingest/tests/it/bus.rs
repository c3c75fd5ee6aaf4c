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

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    /// A publisher that ran while the log was at `cut` bytes, then again after it grew: the
    /// second run's chunks start where the first run's ended (never at an earlier position with
    /// other bytes, which the stream and the lake would drop as a duplicate), so together they
    /// cover the log once. Holding an unfinished last line back, no record is split either.
    #[test]
    fn a_grown_log_is_chunked_on_from_where_the_last_run_ended(
        parts in proptest::collection::vec(line(), 0..60),
        target in 16usize..2048,
        cut in any::<proptest::sample::Index>(),
        hold in any::<bool>(),
    ) {
        let log: Vec<u8> = parts.concat();
        let cut = cut.index(log.len() + 1);
        let mut chunks = Vec::new();
        let mut first = Chunker::new(&log[..cut], false, target, 4096).hold_partial(hold);
        while let Some(c) = first.next_chunk().unwrap() {
            chunks.push(c);
        }
        let done = chunks.last().map_or(0, |c| c.end);
        let mut second = Chunker::new(&log[..], false, target, 4096).hold_partial(hold).resume_at(done);
        while let Some(c) = second.next_chunk().unwrap() {
            chunks.push(c);
        }
        let complete = log.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let (mut pos, mut line, mut bytes) = (0, 0, Vec::new());
        for c in &chunks {
            prop_assert_eq!(c.offset, pos);
            if hold {
                prop_assert_eq!(c.line, line);
            }
            pos = c.end;
            line = c.end_line;
            bytes.extend_from_slice(&c.bytes);
        }
        prop_assert_eq!(pos as usize, if hold { complete } else { log.len() });
        prop_assert_eq!(&bytes[..], &log[..pos as usize]);
        if hold {
            let (mut events, mut quarantine) = (Vec::new(), Vec::new());
            for c in &chunks {
                let d = decode_chunk("eve", c, "f", None);
                events.extend(d.events);
                quarantine.extend(d.quarantine);
            }
            let w = whole(&log[..complete]);
            let place = |e: &cynex_model::event::EventRecord| (e.line, e.raw_data.clone());
            prop_assert_eq!(events.iter().map(place).collect::<Vec<_>>(), w.events.iter().map(place).collect::<Vec<_>>());
            let qplace = |q: &cynex_ingest::QuarantineRecord| (q.offset, q.line);
            prop_assert_eq!(quarantine.iter().map(qplace).collect::<Vec<_>>(), w.quarantine.iter().map(qplace).collect::<Vec<_>>());
        }
    }
}
