//! Enrichment of findings with country and autonomous system from MaxMind-format databases
//! (GeoIP2/GeoLite2 Country or City, GeoLite2/GeoIP2 ASN, or any database with the same fields).
//!
//! One lookup per finding when it is written (a source or victim, not per packet). A database
//! that cannot be opened is an error naming the file; a record that cannot be decoded is counted
//! and the finding is kept without that field.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use maxminddb::{PathElement, Reader};

use crate::finding::Finding;
use crate::{Error, Result};

/// What the databases say about one address.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GeoInfo {
    /// ISO 3166-1 alpha-2 code of the country (the registered country when no location).
    pub country: Option<String>,
    pub asn: Option<u32>,
    pub as_org: Option<String>,
}

/// Open country and ASN databases.
#[derive(Default)]
pub struct Geo {
    country: Option<(PathBuf, Reader<Vec<u8>>)>,
    asn: Option<(PathBuf, Reader<Vec<u8>>)>,
    decode_errors: AtomicU64,
}

impl std::fmt::Debug for Geo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Geo")
            .field("country", &self.country.as_ref().map(|c| &c.0))
            .field("asn", &self.asn.as_ref().map(|c| &c.0))
            .finish()
    }
}

/// Whether a database of this `database_type` answers ASN questions (else country ones).
fn is_asn_db(database_type: &str) -> bool {
    database_type.contains("ASN") || database_type.contains("ISP")
}

impl Geo {
    /// Open each database and file it by its metadata's `database_type`.
    pub fn open(paths: &[PathBuf]) -> Result<Geo> {
        let mut g = Geo::default();
        for p in paths {
            let r =
                Reader::open_readfile(p).map_err(|e| Error::Invalid(format!("GeoIP database {}: {e}", p.display())))?;
            // Decode one lookup now so a database with a broken tree fails here, named, not later.
            r.lookup(IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1)))
                .map_err(|e| Error::Invalid(format!("GeoIP database {}: {e}", p.display())))?;
            let slot = if is_asn_db(&r.metadata.database_type) { &mut g.asn } else { &mut g.country };
            if let Some((other, _)) = slot {
                return Err(Error::Invalid(format!(
                    "GeoIP databases {} and {} are of the same kind; give one country/city and one ASN database",
                    other.display(),
                    p.display()
                )));
            }
            *slot = Some((p.clone(), r));
        }
        Ok(g)
    }

    /// Every `*.mmdb` in `dir` (none if it does not exist).
    pub fn find_in(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "mmdb"))
            .collect();
        v.sort();
        v
    }

    pub fn is_empty(&self) -> bool {
        self.country.is_none() && self.asn.is_none()
    }

    /// Records that could not be decoded so far.
    pub fn decode_errors(&self) -> u64 {
        self.decode_errors.load(Ordering::Relaxed)
    }

    fn field<T: serde::de::DeserializeOwned>(
        &self,
        r: &Reader<Vec<u8>>,
        ip: IpAddr,
        path: &[PathElement<'_>],
    ) -> Option<T> {
        let found = r.lookup(ip).and_then(|l| if l.has_data() { l.decode_path::<T>(path) } else { Ok(None) });
        match found {
            Ok(v) => v,
            Err(e) => {
                self.decode_errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("GeoIP lookup of {ip}: {e}");
                None
            }
        }
    }

    pub fn lookup(&self, ip: IpAddr) -> GeoInfo {
        let mut g = GeoInfo::default();
        if let Some((_, r)) = &self.country {
            g.country = self
                .field::<String>(r, ip, &[PathElement::Key("country"), PathElement::Key("iso_code")])
                .or_else(|| self.field(r, ip, &[PathElement::Key("registered_country"), PathElement::Key("iso_code")]));
        }
        if let Some((_, r)) = &self.asn {
            g.asn = self.field(r, ip, &[PathElement::Key("autonomous_system_number")]);
            g.as_org = self.field(r, ip, &[PathElement::Key("autonomous_system_organization")]);
        }
        g
    }

    /// Fill in the country and AS of each finding's address.
    pub fn enrich(&self, findings: &mut [Finding]) {
        if self.is_empty() {
            return;
        }
        for f in findings {
            if let Some(ip) = f.ip4 {
                let g = self.lookup(IpAddr::V4(Ipv4Addr::from(ip)));
                f.country = g.country;
                f.asn = g.asn;
                f.as_org = g.as_org;
            }
        }
    }
}
