//! pcap and pcapng captures: a streaming [`reader`] for the container formats, a header
//! [`decode`]r from link layer to transport, and per-packet [`fingerprint`] bits.
//!
//! [`PcapSource`] ties them together for one input: it yields decoded packets as Arrow batches
//! and bad records as quarantine records, tracking the byte offset reached so a commit can record
//! exactly how far the input was read.

pub mod decode;
pub mod fingerprint;
pub mod reader;
mod source;
#[cfg(test)]
mod tests;

pub use reader::{CaptureReader, FileFormat, Frame, Item, NotACapture, ReaderStats};
pub use source::{decode_frame, PcapSource, SourceEvent, SourceStats};
