//! Darknet analytics over the `packets` table: scan events, tool attribution, backscatter (DDoS)
//! attacks, port surges and NICTER-style statistics, written to the lake's `findings`,
//! `ongoing`, `stats` and `port_stats` tables.
//!
//! The [`engine`] is a single pass with bounded, serialisable state; [`run`] feeds it from the
//! lake, in batch (a time range, from scratch) or incrementally (only files committed since the
//! last run, resuming the saved state), and commits its outputs atomically with the state.

pub mod alerts;
pub mod campaigns;
pub mod config;
pub mod distinct;
pub mod engine;
pub mod finding;
pub mod geo;
pub mod report;
pub mod research;
pub mod run;
mod state_file;
pub mod stats;
pub mod tools;
pub mod webhook;

pub use config::AnalysisConfig;
pub use engine::{Engine, State};
pub use finding::Finding;
pub use run::{analyze, load_findings, AnalyzeOptions, AnalyzeReport, Mode};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Lake(#[from] cynex_lake::Error),
    #[error(transparent)]
    Store(#[from] cynex_store::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("reading {file}: {reason}")]
    Read { file: String, reason: String },
    #[error("analysis state {file}: {reason}")]
    State { file: String, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
