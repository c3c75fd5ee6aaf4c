//! `cynex report`: the observation report of `cynex_analysis::report` for a period, written as
//! `<out>.html` and `<out>.json`.

use cynex_analysis::report::{self, Report};
use cynex_lake::{Lake, QueryOptions, QuerySession};

pub use cynex_analysis::report::write;

pub fn build(lake: &Lake, scope: &str, from: i64, to: i64) -> anyhow::Result<Report> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let session = QuerySession::open(lake, &QueryOptions::default())?;
    Ok(rt.block_on(report::build(&session, scope, from, to))?)
}
