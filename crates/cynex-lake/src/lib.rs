//! The lake: Hive-partitioned Parquet (zstd) per table under one root, an append-only commit log
//! that says which files exist, and a DataFusion session over it.
//!
//! Commit protocol (crash-safe at every step): files are written and fsynced under `_staging/`,
//! then one commit record naming them is written to a temporary file, fsynced and renamed into
//! `_commits/`, then the files are renamed into their partitions. A crash before the commit
//! record leaves only staging garbage, removed on the next open; a crash after it is rolled
//! forward on the next open. Partition directories therefore only ever hold committed files, so
//! DuckDB, Spark and Trino can read them as they are. Each commit also records how far each input
//! was read, which makes re-ingesting an input a no-op and resuming an interrupted one exact.
//!
//! This crate stores and queries; it must not decode inputs or draw conclusions from data.

mod commit;
mod lake;
mod maintain;
mod query;
mod writer;

pub use commit::{insert_range, uncovered, Commit, FileEntry, Snapshot, SourceProgress};
pub use lake::{valid_sensor_name, Lake, LockGuard};
pub use maintain::{CompactReport, PruneReport, TableStats};
pub use query::{QueryOptions, QuerySession};
pub use writer::{CommitInfo, Transaction, WriterOptions};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("commit log {path}: {reason}")]
    CorruptLog { path: String, reason: String },
    #[error("parquet: {0}")]
    Parquet(#[from] datafusion::parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    #[error("{0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error("invalid argument: {0}")]
    Invalid(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("internal error (likely a bug): {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}
