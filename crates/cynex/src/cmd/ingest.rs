//! `cynex ingest pcap|eve|zeek|cowrie|auto`: the ingest pipeline of `cynex_ingest::pipeline` with
//! a progress bar and a closing summary.

use std::path::{Path, PathBuf};

use cynex_lake::Lake;

pub use cynex_ingest::pipeline::{
    detect, ingest, ingest_pcap, FileReport, FileStatus, FollowOptions, IngestOptions, IngestReport, InputFormat,
};

use crate::output::{bytes, thousands};

/// The closing summary: inputs, records read = written + quarantined, volume and rate, files.
pub fn summary(r: &IngestReport, lake: &Path, sensor: &str) -> String {
    let n = |s: FileStatus| {
        r.files.iter().filter(|f| std::mem::discriminant(&f.status) == std::mem::discriminant(&s)).count()
    };
    let mut out = format!(
        "ingested {} of {} input(s) into {} (sensor {sensor})",
        n(FileStatus::Ingested) + n(FileStatus::Resumed),
        r.files.len() + r.path_errors.len(),
        lake.display()
    );
    let skipped = n(FileStatus::AlreadyIngested);
    if skipped > 0 {
        out += &format!(", {skipped} already in the lake");
    }
    if r.unreadable() > 0 {
        out += &format!(", {} unreadable", r.unreadable());
    }
    let secs = r.seconds.max(1e-9);
    out += &format!(
        "\n  read {} records: {} {} written, {} quarantined\n  {} in {:.2} s: {:.2} M {}/s, {}/s",
        thousands(r.read()),
        thousands(r.written()),
        r.unit(),
        thousands(r.quarantined()),
        bytes(r.bytes()),
        r.seconds,
        r.written() as f64 / secs / 1e6,
        r.unit(),
        bytes((r.bytes() as f64 / secs) as u64),
    );
    if r.parquet_files > 0 {
        // Per row only when rows were written (quarantine-only runs write files too).
        let per_row = match r.written() {
            0 => String::new(),
            n => format!(" ({:.1} bytes/{})", r.parquet_bytes as f64 / n as f64, r.unit().trim_end_matches('s')),
        };
        out += &format!(
            "\n  wrote {} Parquet file(s), {}{per_row} in {} commit(s)",
            r.parquet_files,
            bytes(r.parquet_bytes),
            r.commits
        );
    }
    out
}

/// `--follow`: ingest, then keep ingesting what is appended, printing one line per pass that
/// found something.
pub fn follow(
    lake: &Lake,
    paths: &[PathBuf],
    opts: &IngestOptions,
    format: InputFormat,
    organisation: Option<&str>,
    f: &FollowOptions,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<IngestReport> {
    let mut line = |rep: &IngestReport| -> cynex_ingest::Result<()> {
        let io = |e: std::io::Error| cynex_ingest::Error::Io { path: "stdout".into(), source: e };
        writeln!(
            out,
            "{} +{} {} ({} quarantined) from {} file(s)",
            cynex_model::time::rfc3339_us(cynex_model::time::now_us()),
            thousands(rep.written()),
            rep.unit(),
            thousands(rep.quarantined()),
            rep.files.len()
        )
        .map_err(io)?;
        out.flush().map_err(io)
    };
    Ok(cynex_ingest::pipeline::follow(lake, paths, opts, format, organisation, f, &mut line)?)
}
