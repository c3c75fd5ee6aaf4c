//! Shared vocabulary of cynex: the Arrow schemas of the lake tables, the bit meanings of the
//! per-packet fingerprint and tag masks, and small IP/time helpers.
//!
//! This crate owns names and meanings only. It must not do I/O, parsing or analysis; every other
//! crate depends on it, so it stays small and cheap to compile.

pub mod event;
pub mod ip;
pub mod packet;
pub mod schema;
pub mod time;

pub use packet::{fp, tags, PacketRecord};
pub use schema::{packets_schema, quarantine_schema, Table};
