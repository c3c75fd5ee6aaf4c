//! Realistic traffic and log synthesis with ground truth, for tests, benchmarks, the demo,
//! product evaluation and exercises. Everything is seeded and deterministic: the same
//! configuration gives byte-identical output on every machine.
//!
//! Generators stream their output in constant memory (state grows with the configured
//! populations, never with the number of packets or lines). They must not depend on the lake or
//! on analysis: ground truth is what the generator *did*, not what a detector would conclude.

pub mod cowrie;
pub mod darknet;
pub mod eve;
pub mod frame;
pub mod rng;
pub mod zeek;

pub use cowrie::{generate_cowrie, CowrieConfig, CowrieTruth};
pub use darknet::{generate_darknet, DarknetConfig, GroundTruth};
pub use eve::{generate_eve, EveConfig, EveTruth};
pub use zeek::{generate_zeek, ZeekConfig, ZeekLog, ZeekTruth};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("invalid configuration: {0}")]
    Config(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
