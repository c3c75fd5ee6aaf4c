//! Input decoders: each input format turns bytes from files, tails or the bus into Arrow record
//! batches of one lake table, and everything it cannot parse into quarantine records with their
//! place and reason. The [`pipeline`] takes inputs (files, growing files) through the decoders
//! into lake transactions, committing each input's progress with its rows.
//!
//! This crate reads and decodes, and writes the lake only through `cynex-lake` transactions. It
//! must not draw conclusions across records (that is analysis): fingerprint bits here are
//! per-packet facts.

pub mod bus;
pub mod cowrie;
pub mod eve;
pub mod input;
pub mod pcap;
pub mod pipeline;
pub mod quarantine;
pub mod records;
pub mod zeek;

pub use quarantine::{QuarantineColumns, QuarantineRecord};

/// Errors that stop reading one input. Problems inside an input (a bad record) are not errors:
/// they become quarantine records and reading goes on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a capture file: {reason}")]
    NotACapture { path: String, reason: String },
    /// Writing what was decoded failed (the lake, or building its rows).
    #[error("{0}")]
    Pipeline(String),
    #[error(transparent)]
    Bus(#[from] bus::BusError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
