//! `cynex gen darknet|eve|zeek|cowrie`: write a synthetic capture or IDS log (optionally gzip/zstd by file
//! suffix) and its ground truth.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use cynex_gen::{generate_darknet, DarknetConfig, GroundTruth};

/// Where the ground truth goes when not given: `<capture>.truth.json`.
pub fn default_truth_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".truth.json");
    PathBuf::from(s)
}

pub fn darknet(cfg: &DarknetConfig, out: &Path, truth: &Path) -> anyhow::Result<GroundTruth> {
    generated(out, truth, |w| Ok(generate_darknet(cfg, w)?.0))
}

pub fn eve(cfg: &cynex_gen::EveConfig, out: &Path, truth: &Path) -> anyhow::Result<cynex_gen::EveTruth> {
    generated(out, truth, |w| Ok(cynex_gen::generate_eve(cfg, w)?.0))
}

/// Run a generator into `out` (gzip or zstd by suffix) and write its ground truth to `truth`.
pub fn generated<T: serde::Serialize>(
    out: &Path,
    truth: &Path,
    generate: impl FnOnce(&mut dyn Write) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let f = File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let name = out.to_string_lossy();
    let t = if name.ends_with(".gz") {
        let mut enc = flate2::write::GzEncoder::new(w, flate2::Compression::fast());
        let t = generate(&mut enc)?;
        enc.finish()?.flush()?;
        t
    } else if name.ends_with(".zst") || name.ends_with(".zstd") {
        let mut enc = zstd::stream::write::Encoder::new(w, 3)?;
        let t = generate(&mut enc)?;
        enc.finish()?.flush()?;
        t
    } else {
        let t = generate(&mut w)?;
        w.flush()?;
        t
    };
    let tf = File::create(truth).with_context(|| format!("creating {}", truth.display()))?;
    serde_json::to_writer_pretty(BufWriter::new(tf), &t)?;
    Ok(t)
}
