//! Printing results: `--format table|csv|json|ndjson`, human-readable numbers, and treating a
//! closed pipe (`cynex query … | head`) as a normal end rather than an error.

use std::io::{self, Write};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    /// One JSON array of row objects.
    Json,
    /// One JSON object per line.
    Ndjson,
}

/// Write `batches` to `w` in `format`.
pub fn write_batches(
    w: &mut dyn Write,
    format: Format,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> anyhow::Result<()> {
    match format {
        Format::Table => {
            let t = datafusion::arrow::util::pretty::pretty_format_batches(batches)?;
            if batches.iter().all(|b| b.num_rows() == 0) {
                // Show the header even when there are no rows.
                let empty = RecordBatch::new_empty(std::sync::Arc::clone(schema));
                writeln!(w, "{}", datafusion::arrow::util::pretty::pretty_format_batches(&[empty])?)?;
            } else {
                writeln!(w, "{t}")?;
            }
        }
        Format::Csv => {
            let mut cw = datafusion::arrow::csv::WriterBuilder::new().with_header(true).build(&mut *w);
            if batches.is_empty() {
                cw.write(&RecordBatch::new_empty(std::sync::Arc::clone(schema)))?;
            }
            for b in batches {
                cw.write(b)?;
            }
        }
        Format::Json => {
            let mut jw = datafusion::arrow::json::ArrayWriter::new(&mut *w);
            for b in batches {
                jw.write(b)?;
            }
            jw.finish()?;
            w.write_all(b"\n")?;
        }
        Format::Ndjson => {
            let mut jw = datafusion::arrow::json::LineDelimitedWriter::new(&mut *w);
            for b in batches {
                jw.write(b)?;
            }
            jw.finish()?;
        }
    }
    w.flush()?;
    Ok(())
}

/// Rows of text as an aligned table with a header line (the last column is not padded).
pub fn write_rows(w: &mut dyn Write, header: &[&str], rows: Vec<Vec<String>>) -> anyhow::Result<()> {
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate().take(width.len()) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let n = cells.len();
        let mut s = String::new();
        for (i, c) in cells.into_iter().enumerate() {
            if i + 1 == n {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        s
    };
    writeln!(w, "{}", line(header.to_vec()))?;
    for r in &rows {
        writeln!(w, "{}", line(r.iter().map(String::as_str).collect()))?;
    }
    if rows.is_empty() {
        writeln!(w, "(none)")?;
    }
    w.flush()?;
    Ok(())
}

/// Whether an error is (or wraps) a closed pipe.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            || c.to_string().contains("Broken pipe")
    })
}

/// `1234567` -> `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in B, KB, MB, GB (powers of 1000, as throughput figures are quoted).
pub fn bytes(n: u64) -> String {
    let f = n as f64;
    if f >= 1e9 {
        format!("{:.2} GB", f / 1e9)
    } else if f >= 1e6 {
        format!("{:.1} MB", f / 1e6)
    } else if f >= 1e3 {
        format!("{:.1} KB", f / 1e3)
    } else {
        format!("{n} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234), "1,234");
        assert_eq!(thousands(20_000_000), "20,000,000");
        assert_eq!(bytes(1_520_000_000), "1.52 GB");
        assert_eq!(bytes(999), "999 B");
    }
}
