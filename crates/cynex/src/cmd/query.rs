//! `cynex query`: SQL over every lake table.

use std::io::Write;

use cynex_lake::{Lake, QueryOptions, QuerySession};

use crate::output::{write_batches, Format};

/// Run `sql` and print the result in `format` to `w`.
pub fn run(lake: &Lake, sql: &str, format: Format, opts: &QueryOptions, w: &mut dyn Write) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let session = QuerySession::open(lake, opts)?;
    let (schema, batches) = rt.block_on(session.sql(sql))?;
    write_batches(w, format, &schema, &batches)
}
