//! The `cynex` command: argument parsing and wiring of the library crates. Work lives in the
//! crates (`cynex-ingest`, `cynex-lake`, `cynex-gen`, …); each command here connects them and
//! reports to the user.

pub mod cli;
pub mod cmd;
pub mod output;
