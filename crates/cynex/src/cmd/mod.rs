//! One module per command family.

pub mod analyze;
pub mod bus;
pub mod demo;
pub mod gen;
pub mod hub;
pub mod ingest;
pub mod lake;
pub mod members;
pub mod query;
pub mod report;
pub mod serve;
