//! Threat intelligence: the STIX 2.1 model and its validation ([`stix`]), TLP 2.0 markings
//! ([`tlp`]), taking objects into the hub with their access decided ([`hub`]), the TAXII 2.1
//! endpoints ([`taxii`]), what the darknet analysis publishes ([`publish`]), feeds in and out
//! ([`feeds`]) and the retro-hunt over the lake ([`correlate`]).
//!
//! Who may see what is decided by one rule, kept in `cynex-store` and applied inside its queries;
//! this crate decides each object's TLP, owner and audience, never filters results itself.
//!
//! Must not: authenticate requests (the server does, and hands handlers a
//! [`cynex_store::Caller`]), or write the lake.

pub mod correlate;
pub mod feeds;
pub mod hub;
pub mod publish;
pub mod stix;
pub mod taxii;
pub mod tlp;

pub use hub::{Hub, ObjectResult, Outcome};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] cynex_store::Error),
    #[error(transparent)]
    Lake(#[from] cynex_lake::Error),
    #[error(transparent)]
    Analysis(#[from] cynex_analysis::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("feed {feed}: {reason}")]
    Feed { feed: String, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
