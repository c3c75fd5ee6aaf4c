//! `cynex lake stats|compact|prune`.

use std::io::Write;

use cynex_lake::{Lake, WriterOptions};
use cynex_model::time::rfc3339_us;

use crate::output::{bytes, thousands, Format};

pub fn stats(lake: &Lake, format: Format, w: &mut dyn Write) -> anyhow::Result<()> {
    let stats = lake.stats()?;
    match format {
        Format::Json | Format::Ndjson => {
            writeln!(w, "{}", serde_json::to_string_pretty(&stats)?)?;
        }
        Format::Csv => {
            writeln!(w, "table,files,rows,bytes,partitions,sensors,min_ts,max_ts")?;
            for s in &stats {
                writeln!(
                    w,
                    "{},{},{},{},{},{},{},{}",
                    s.table,
                    s.files,
                    s.rows,
                    s.bytes,
                    s.partitions,
                    s.sensors.join(";"),
                    s.min_ts.map(rfc3339_us).unwrap_or_default(),
                    s.max_ts.map(rfc3339_us).unwrap_or_default()
                )?;
            }
        }
        Format::Table => {
            writeln!(w, "lake {}", lake.root().display())?;
            writeln!(
                w,
                "{:<11} {:>7} {:>14} {:>10} {:>8} {:>6}  time range",
                "table", "files", "rows", "size", "B/row", "parts"
            )?;
            for s in &stats {
                let range = match (s.min_ts, s.max_ts) {
                    (Some(a), Some(b)) => format!("{} .. {}", rfc3339_us(a), rfc3339_us(b)),
                    _ => "-".into(),
                };
                writeln!(
                    w,
                    "{:<11} {:>7} {:>14} {:>10} {:>8.1} {:>6}  {range}",
                    s.table,
                    s.files,
                    thousands(s.rows),
                    bytes(s.bytes),
                    if s.rows > 0 { s.bytes as f64 / s.rows as f64 } else { 0.0 },
                    s.partitions
                )?;
                if !s.sensors.is_empty() {
                    writeln!(w, "{:<11} sensors: {}", "", s.sensors.join(", "))?;
                }
            }
        }
    }
    Ok(())
}

pub fn compact(lake: &Lake, target_mb: u64, w: &mut dyn Write) -> anyhow::Result<()> {
    let r = lake.compact(target_mb * 1_000_000, WriterOptions::default())?;
    writeln!(
        w,
        "compacted {} partition(s): {} files -> {} files ({} rows rewritten)",
        r.partitions,
        r.files_before,
        r.files_after,
        thousands(r.rows)
    )?;
    Ok(())
}

pub fn prune(lake: &Lake, older_than_s: u64, w: &mut dyn Write) -> anyhow::Result<()> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_micros() as i64;
    let cutoff = now - older_than_s as i64 * 1_000_000;
    let r = lake.prune(cutoff)?;
    writeln!(
        w,
        "pruned data before {}: {} file(s), {} rows, {}",
        rfc3339_us(cutoff),
        r.files,
        thousands(r.rows),
        bytes(r.bytes)
    )?;
    Ok(())
}
