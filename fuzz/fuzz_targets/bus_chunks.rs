//! Any log cut into bus chunks and decoded chunk by chunk never panics, and the chunks cover the
//! input exactly.
#![no_main]
use cynex_ingest::bus::{decode_chunk, Chunker};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, log)) = data.split_first() else { return };
    let zeek = pick % 2 == 0;
    let mut c = Chunker::new(log, zeek, 64 + (pick as usize) * 8, 4096);
    let mut pos = 0;
    while let Ok(Some(chunk)) = c.next_chunk() {
        assert_eq!(chunk.offset, pos);
        pos = chunk.end;
        let _ = decode_chunk(if zeek { "zeek" } else { "eve" }, &chunk, "fuzz", None);
    }
    assert_eq!(pos as usize, log.len());
});
