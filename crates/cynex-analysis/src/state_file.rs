//! The analysis state file: written by every incremental run and read by the next one, so both
//! directions run on all cores.
//!
//! Layout:
//!
//! ```text
//! MAGIC | frame ... | index | index length (u32, little-endian) | MAGIC
//! ```
//!
//! Every frame is a zstd frame of postcard bytes. Frame 0 is `(settings as JSON, State)` with
//! the keyed state left out (three empty maps); frames 1..=[`SECTIONS`] are the keyed state in
//! sections of consecutive shards, each written as its shards' table capacities and the three
//! maps its shards split (`engine::Section`). The frames are written in the order they are
//! ready; the index (postcard `Vec<(frame, offset, length, length decompressed)>`) says where
//! each one is. A file that does not start with
//! [`MAGIC`] is the layout of earlier versions, one zstd stream of `(settings as JSON, State)`,
//! and is still read.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use serde::de::DeserializeSeed;

use crate::engine::{cores, Shard, Shards, ShardsSeed, State};
use crate::{AnalysisConfig, Error, Result};

/// The first and last bytes of a state file in this layout.
const MAGIC: &[u8; 8] = b"CYNXST\x00\x02";

/// Sections of the keyed state: enough for both cores to stay busy on uneven sections, few
/// enough that each frame compresses well. Divides [`crate::engine::SHARDS`].
const SECTIONS: usize = 16;

/// zstd level of the state file: it is rewritten by every run, so speed counts more than size.
const ZSTD_LEVEL: i32 = 1;

fn state_err(file: &str, reason: impl ToString) -> Error {
    Error::State { file: file.to_string(), reason: reason.to_string() }
}

/// Run `work` for frames `first..=SECTIONS` on all cores (each thread with its own scratch `S`),
/// handing each result to `take` on this thread as it is done, in no set order. An error from
/// `take` is returned once the workers have stopped: they find no one to hand their next result
/// to.
fn each_frame<S: Default, T: Send>(
    first: usize,
    work: impl Fn(usize, &mut S) -> T + Sync,
    mut take: impl FnMut(usize, T) -> Result<()>,
) -> Result<()> {
    let next = AtomicUsize::new(first);
    let threads = cores().clamp(1, SECTIONS);
    // At most one finished result per thread waits to be taken.
    let (tx, rx) = sync_channel::<(usize, T)>(threads);
    std::thread::scope(|s| {
        for _ in 0..threads {
            let (tx, next, work) = (tx.clone(), &next, &work);
            s.spawn(move || {
                let mut scratch = S::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i > SECTIONS || tx.send((i, work(i, &mut scratch))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (i, t) in rx {
            take(i, t)?;
        }
        Ok(())
    })
}

/// Write the state to a new file `rel` under `root`, fsynced: `st` without its keyed state
/// ([`State::take_shards`]), which is `shards`. The frames are serialised and compressed on all
/// cores while this thread writes the finished ones.
pub(crate) fn save(root: &Path, rel: &str, cfg: &AnalysisConfig, st: &State, shards: &Shards) -> Result<()> {
    let path = root.join(rel);
    let dir = path.parent().ok_or_else(|| state_err(rel, "no parent directory"))?;
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Io { context: format!("creating {}", dir.display()), source: e })?;
    let cfg_json = serde_json::to_string(cfg).map_err(|e| state_err(rel, e))?;
    let t0 = Instant::now();
    let sections: Vec<_> = shards.sections(SECTIONS).collect();
    // A frame and its length decompressed; `buf` is the packing thread's, reused.
    let pack = |i: usize, buf: &mut Vec<u8>| -> std::result::Result<(Vec<u8>, usize), String> {
        buf.clear();
        let raw = match i {
            0 => postcard::to_extend(&(&cfg_json, st), std::mem::take(buf)),
            _ => postcard::to_extend(&sections[i - 1], std::mem::take(buf)),
        };
        *buf = raw.map_err(|e| e.to_string())?;
        // With zstd's checksum: a damaged frame is an error, not a state read wrong.
        let mut z = zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(|e| e.to_string())?;
        z.include_checksum(true).map_err(|e| e.to_string())?;
        Ok((z.compress(buf).map_err(|e| e.to_string())?, buf.len()))
    };
    let io = |e: std::io::Error| Error::Io { context: format!("writing {}", path.display()), source: e };
    let write = || -> Result<u64> {
        let f = File::create(&path).map_err(io)?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        w.write_all(MAGIC).map_err(io)?;
        let mut at = MAGIC.len() as u64;
        let mut index: Vec<(u32, u64, u64, u64)> = Vec::with_capacity(SECTIONS + 1);
        each_frame(0, pack, |i, frame| {
            let (frame, raw) = frame.map_err(|e| state_err(rel, e))?;
            w.write_all(&frame).map_err(io)?;
            index.push((i as u32, at, frame.len() as u64, raw as u64));
            at += frame.len() as u64;
            Ok(())
        })?;
        let index = postcard::to_allocvec(&index).map_err(|e| state_err(rel, e))?;
        w.write_all(&index).map_err(io)?;
        w.write_all(&(index.len() as u32).to_le_bytes()).map_err(io)?;
        w.write_all(MAGIC).map_err(io)?;
        let f = w.into_inner().map_err(|e| io(e.into_error()))?;
        f.sync_all().map_err(io)?;
        Ok(at + index.len() as u64 + 4 + MAGIC.len() as u64)
    };
    match write() {
        Ok(bytes) => {
            tracing::debug!(bytes, seconds = t0.elapsed().as_secs_f64(), "analysis state written");
            Ok(())
        }
        Err(e) => {
            // No commit will name a partly written file.
            let _ = std::fs::remove_file(&path);
            Err(e)
        }
    }
}

/// Load a saved state and the settings it was built with. Settings given now must equal those:
/// state built under other thresholds cannot be continued consistently.
pub(crate) fn load(root: &Path, rel: &str, given: Option<&AnalysisConfig>) -> Result<(AnalysisConfig, State)> {
    let bytes = std::fs::read(root.join(rel)).map_err(|e| state_err(rel, e))?;
    let frames = match index(&bytes) {
        Some(frames) => frames.map_err(|e| state_err(rel, e))?,
        None => {
            // The single-stream layout of earlier versions.
            let body = zstd::decode_all(&bytes[..]).map_err(|e| state_err(rel, e))?;
            let (cfg_json, st): (String, State) = postcard::from_bytes(&body).map_err(|e| state_err(rel, e))?;
            return Ok((settings(rel, &cfg_json, given)?, st));
        }
    };
    let (cfg_json, mut st): (String, State) =
        postcard::from_bytes(&unpack(&frames[0]).map_err(|e| state_err(rel, format!("frame 0: {e}")))?)
            .map_err(|e| state_err(rel, format!("frame 0: {e}")))?;
    // Refused settings are reported before the keyed state is read.
    let cfg = settings(rel, &cfg_json, given)?;
    let read = |i: usize| -> std::result::Result<Vec<Shard>, String> {
        let raw = unpack(&frames[i])?;
        let mut de = postcard::Deserializer::from_bytes(&raw);
        let shards = ShardsSeed::section(i - 1, SECTIONS).deserialize(&mut de).map_err(|e| e.to_string())?;
        match de.finalize() {
            Ok([]) => Ok(shards),
            Ok(rest) => Err(format!("{} bytes after the section", rest.len())),
            Err(e) => Err(e.to_string()),
        }
    };
    let mut sections: Vec<Vec<Shard>> = (0..SECTIONS).map(|_| Vec::new()).collect();
    each_frame(
        1,
        |i, _: &mut ()| read(i),
        |i, r| {
            sections[i - 1] = r.map_err(|e| state_err(rel, format!("frame {i}: {e}")))?;
            Ok(())
        },
    )?;
    st.set_shards(Shards::from_sections(sections));
    Ok((cfg, st))
}

/// The settings saved with a state, checked against those given now.
fn settings(rel: &str, cfg_json: &str, given: Option<&AnalysisConfig>) -> Result<AnalysisConfig> {
    let saved: AnalysisConfig = serde_json::from_str(cfg_json).map_err(|e| state_err(rel, e))?;
    if given.is_some_and(|g| *g != saved) {
        return Err(Error::Invalid(
            "the analysis settings differ from those this scope's saved state was built with; \
             run with --rebuild to start over with the new settings (or omit them to keep the saved ones)"
                .into(),
        ));
    }
    Ok(saved)
}

/// A frame's bytes and its length decompressed.
type Frame<'a> = (&'a [u8], usize);

/// The frames of a file in this layout, by number (`None`: not this layout).
fn index(bytes: &[u8]) -> Option<std::result::Result<Vec<Frame<'_>>, String>> {
    if !bytes.starts_with(MAGIC) {
        return None;
    }
    Some((|| {
        let tail = MAGIC.len() + 4;
        if bytes.len() < MAGIC.len() + tail || !bytes.ends_with(MAGIC) {
            return Err("truncated: no index at the end".to_string());
        }
        let len_at = bytes.len() - tail;
        let len = u32::from_le_bytes(bytes[len_at..len_at + 4].try_into().map_err(|_| "index length")?) as usize;
        let start = len_at.checked_sub(len).filter(|s| *s >= MAGIC.len()).ok_or("index length out of the file")?;
        let entries: Vec<(u32, u64, u64, u64)> =
            postcard::from_bytes(&bytes[start..len_at]).map_err(|e| e.to_string())?;
        let mut frames: Vec<Option<Frame>> = vec![None; SECTIONS + 1];
        for (i, at, n, raw) in entries {
            let slot = frames.get_mut(i as usize).ok_or_else(|| format!("frame {i} of {} expected", SECTIONS + 1))?;
            let range = (at as usize)..(at as usize).saturating_add(n as usize);
            if range.start < MAGIC.len() || range.end > start || slot.is_some() {
                return Err(format!("frame {i}: bad place {at}+{n}"));
            }
            // Refused before allocating for it: far more than level 1 makes of state.
            if raw > n.saturating_mul(256) + (1 << 20) {
                return Err(format!("frame {i}: {raw} bytes decompressed from {n}"));
            }
            *slot = Some((&bytes[range], raw as usize));
        }
        frames
            .into_iter()
            .enumerate()
            .map(|(i, f)| f.ok_or_else(|| format!("frame {i} missing from the index")))
            .collect()
    })())
}

/// A frame decompressed (into one allocation of its length, known from the index).
fn unpack(&(frame, raw): &Frame) -> std::result::Result<Vec<u8>, String> {
    let out = zstd::bulk::decompress(frame, raw).map_err(|e| e.to_string())?;
    if out.len() != raw {
        return Err(format!("{} bytes decompressed, {raw} in the index", out.len()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, Row};

    /// An engine that has seen rows from many sources (every shard holds keyed state).
    fn engine_with_state(cfg: &AnalysisConfig) -> Engine {
        let mut engine = Engine::new(cfg.clone(), State::default());
        for i in 0..200_000u32 {
            engine.observe_row(&Row {
                ts: 1_700_000_000_000_000 + i as i64 * 1_000,
                v4: true,
                src: Some(i.wrapping_mul(2_654_435_761)),
                dst: Some(0xC612_0000 | (i & 0xfff)),
                proto: Some(cynex_model::packet::proto::TCP),
                dport: (i % 1_000) as u16,
                flags: cynex_model::packet::tcp_flags::SYN,
                len: 60,
                ..Default::default()
            });
        }
        engine.finish(false);
        engine
    }

    fn serialised(cfg: &AnalysisConfig, st: &State) -> Vec<u8> {
        postcard::to_allocvec(&(serde_json::to_string(cfg).unwrap(), st)).unwrap()
    }

    #[test]
    fn state_round_trips_through_its_sections() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = AnalysisConfig::default();
        let mut engine = engine_with_state(&cfg);
        let whole = serialised(&cfg, engine.state());
        let shards = engine.st.take_shards();
        save(dir.path(), "s/state.bin.zst", &cfg, engine.state(), &shards).unwrap();
        let packed = std::fs::read(dir.path().join("s/state.bin.zst")).unwrap();
        assert!(packed.starts_with(MAGIC) && packed.ends_with(MAGIC));
        let (back_cfg, back) = load(dir.path(), "s/state.bin.zst", Some(&cfg)).unwrap();
        assert_eq!(back_cfg, cfg);
        // The same state: the same size serialised whole, and entry for entry.
        assert_eq!(serialised(&cfg, &back).len(), whole.len());
        // Its tables as large as they had grown (here well within four times their entries).
        let caps = |st: &State| st.table_capacities();
        let grown = {
            let mut st = State::default();
            st.set_shards(shards);
            st
        };
        let (now, then) = (caps(&back), caps(&grown));
        assert!(now.iter().zip(&then).all(|(a, b)| a[0] >= b[0] && a[1] >= b[1]), "{now:?} {then:?}");
        assert!(now.iter().map(|c| c[0]).sum::<usize>() > 200_000);
        assert_eq!(back.keyed_entries(), grown.keyed_entries());

        // Other settings are refused.
        let other = AnalysisConfig { scan_min_uniques: cfg.scan_min_uniques + 1, ..cfg.clone() };
        let e = load(dir.path(), "s/state.bin.zst", Some(&other)).unwrap_err();
        assert!(e.to_string().contains("--rebuild"), "{e}");

        // Damage is reported with the file, not a panic: a cut file, a damaged frame.
        std::fs::write(dir.path().join("cut"), &packed[..packed.len() / 2]).unwrap();
        let e = load(dir.path(), "cut", None).unwrap_err();
        assert!(e.to_string().contains("cut") && e.to_string().contains("truncated"), "{e}");
        let mut bad = packed.clone();
        bad[MAGIC.len() + 100] ^= 0xff;
        bad[packed.len() / 2] ^= 0xff;
        std::fs::write(dir.path().join("bad"), &bad).unwrap();
        assert!(load(dir.path(), "bad", None).is_err());
    }

    #[test]
    fn a_section_holding_another_sections_key_is_refused() {
        let cfg = AnalysisConfig::default();
        let mut engine = engine_with_state(&cfg);
        let shards = engine.st.take_shards();
        let first: Vec<_> = shards.sections(SECTIONS).collect();
        let raw = postcard::to_allocvec(&first[0]).unwrap();
        let mut de = postcard::Deserializer::from_bytes(&raw);
        assert!(ShardsSeed::section(1, SECTIONS).deserialize(&mut de).is_err(), "keys of section 0 refused");
        let mut de = postcard::Deserializer::from_bytes(&raw);
        assert!(ShardsSeed::section(0, SECTIONS).deserialize(&mut de).is_ok());
    }

    #[test]
    fn state_files_of_the_earlier_layout_are_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = AnalysisConfig::default();
        let engine = engine_with_state(&cfg);
        let whole = serialised(&cfg, engine.state());
        std::fs::write(dir.path().join("old.bin.zst"), zstd::encode_all(&whole[..], 1).unwrap()).unwrap();
        let (back_cfg, back) = load(dir.path(), "old.bin.zst", Some(&cfg)).unwrap();
        assert_eq!(back_cfg, cfg);
        assert_eq!(serialised(&cfg, &back).len(), whole.len());
        assert_eq!(back.keyed_entries(), engine.state().keyed_entries());
        assert!(back.keyed_entries().len() > 200_000);
    }
}
