//! TAXII 2.1 query parameters (§3.4, §3.5): `added_after`, `limit`, `next` and
//! `match[id|type|version|spec_version]`, parsed strictly (a malformed value is a 400, a repeated
//! field too), and the `next` cursor: stateless and signed, so it works behind any number of
//! servers and cannot be forged, replayed against another query, or used by another user.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cynex_store::secret::{ct_eq, KeyFile};
use cynex_store::VersionFilter;

use crate::stix::time::parse_timestamp;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    pub added_after: Option<i64>,
    pub limit: Option<usize>,
    pub next: Option<String>,
    pub ids: Vec<String>,
    pub types: Vec<String>,
    pub versions: VersionFilter,
    /// Whether `match[version]` was given (Delete An Object deletes every version without it).
    pub version_given: bool,
    pub spec_versions: Vec<String>,
    /// The filter fields as received (sorted), for binding a cursor to its query.
    filter_key: String,
}

/// Decode `application/x-www-form-urlencoded` text.
fn decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let h = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
                out.push(h.ok_or_else(|| format!("bad percent-escape in {s:?}"))?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8"))
}

fn list(v: &str) -> Result<Vec<String>, String> {
    let items: Vec<String> = v.split(',').map(str::to_string).collect();
    if items.iter().any(String::is_empty) {
        return Err(format!("{v:?}: comma-separated values, none empty, no spaces"));
    }
    Ok(items)
}

impl Params {
    /// Parse a raw query string. `allowed` lists the match fields this endpoint takes
    /// (others are ignored, as §3.4.1 allows).
    pub fn parse(query: Option<&str>, allowed: &[&str]) -> Result<Params, String> {
        let mut p = Params::default();
        let mut seen = Vec::new();
        let mut filter = Vec::new();
        for pair in query.unwrap_or_default().split('&').filter(|x| !x.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (decode(k)?, decode(v)?);
            if seen.contains(&k) {
                return Err(format!("{k} given more than once (use one comma-separated value)"));
            }
            seen.push(k.clone());
            match k.as_str() {
                "added_after" => {
                    let t = parse_timestamp(&v).ok_or_else(|| format!("added_after {v:?} is not a timestamp"))?;
                    p.added_after = Some(t);
                    filter.push(format!("a={t}"));
                }
                "limit" => {
                    let n: usize = v.parse().map_err(|_| format!("limit {v:?} is not a positive integer"))?;
                    if n == 0 {
                        return Err("limit must be positive".into());
                    }
                    p.limit = Some(n);
                }
                "next" => {
                    if v.is_empty() {
                        return Err("next is empty".into());
                    }
                    p.next = Some(v);
                }
                _ => {
                    let Some(field) = k.strip_prefix("match[").and_then(|r| r.strip_suffix(']')) else {
                        continue;
                    };
                    if !allowed.contains(&field) {
                        continue;
                    }
                    let vals = list(&v).map_err(|e| format!("match[{field}] {e}"))?;
                    match field {
                        "id" => p.ids = vals.clone(),
                        "type" => p.types = vals.clone(),
                        "spec_version" => p.spec_versions = vals.clone(),
                        "version" => {
                            p.versions = version_filter(&vals)?;
                            p.version_given = true;
                        }
                        _ => continue,
                    }
                    let mut sorted = vals;
                    sorted.sort();
                    filter.push(format!("{field}={}", sorted.join(",")));
                }
            }
        }
        filter.sort();
        p.filter_key = filter.join("&");
        Ok(p)
    }
}

fn version_filter(vals: &[String]) -> Result<VersionFilter, String> {
    let mut f = VersionFilter { last: false, first: false, all: false, exact: Vec::new() };
    let mut seen = Vec::new();
    for v in vals {
        if seen.contains(v) {
            return Err(format!("match[version] repeats {v:?}"));
        }
        seen.push(v.clone());
        match v.as_str() {
            "last" => f.last = true,
            "first" => f.first = true,
            "all" => f.all = true,
            t if parse_timestamp(t).is_some() => f.exact.push(t.to_string()),
            t => return Err(format!("match[version] {t:?}: expected last, first, all or a timestamp")),
        }
    }
    if f.all && vals.len() > 1 {
        return Err("match[version]=all must stand alone".into());
    }
    Ok(f)
}

/// Which listing a cursor continues (a cursor of one is no good for another).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Objects = 1,
    Manifest = 2,
    Versions = 3,
}

/// Signs and checks `next` cursors: `base64url(kind ‖ date_added ‖ HMAC(...)[..16])`, the MAC
/// over the listing, position, collection, object (for versions), user and filters.
#[derive(Debug, Clone)]
pub struct Cursors {
    key: KeyFile,
}

impl Cursors {
    pub fn new(key: KeyFile) -> Cursors {
        Cursors { key }
    }

    fn mac(&self, kind: Listing, after: i64, scope: &str, user: &str, filter: &str) -> [u8; 32] {
        let mut m = Vec::new();
        for part in [&[kind as u8][..], &after.to_le_bytes(), scope.as_bytes(), user.as_bytes(), filter.as_bytes()] {
            m.extend_from_slice(&(part.len() as u32).to_le_bytes());
            m.extend_from_slice(part);
        }
        self.key.mac(&m)
    }

    /// A cursor continuing after `after` (the last `date_added` returned).
    pub fn make(&self, kind: Listing, after: i64, scope: &str, user: &str, p: &Params) -> String {
        let mut b = Vec::with_capacity(25);
        b.push(kind as u8);
        b.extend_from_slice(&after.to_le_bytes());
        b.extend_from_slice(&self.mac(kind, after, scope, user, &p.filter_key)[..16]);
        URL_SAFE_NO_PAD.encode(b)
    }

    /// The position a cursor continues from, if it was made by this server for this same
    /// listing, scope, user and filters.
    pub fn open(&self, kind: Listing, scope: &str, user: &str, p: &Params) -> Result<Option<i64>, String> {
        let Some(c) = &p.next else { return Ok(None) };
        let bad =
            || "next is not a cursor of this query (send the same filters as the request that returned it)".to_string();
        let b = URL_SAFE_NO_PAD.decode(c).map_err(|_| bad())?;
        if b.len() != 25 || b[0] != kind as u8 {
            return Err(bad());
        }
        let after = i64::from_le_bytes(b[1..9].try_into().expect("8 bytes"));
        if !ct_eq(&b[9..], &self.mac(kind, after, scope, user, &p.filter_key)[..16]) {
            return Err(bad());
        }
        Ok(Some(after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[&str] = &["id", "type", "version", "spec_version"];

    #[test]
    fn parses_and_refuses() {
        let p = Params::parse(Some("added_after=2026-11-01T00%3A00%3A00.000001Z&limit=5&match%5Btype%5D=indicator,sighting&match[version]=first,last&match[foo]=x"), ALL).unwrap();
        assert_eq!(p.added_after, Some(1_793_491_200_000_001));
        assert_eq!(p.limit, Some(5));
        assert_eq!(p.types, ["indicator", "sighting"]);
        assert!(p.versions.first && p.versions.last && !p.versions.all);
        for bad in [
            "limit=0",
            "limit=-1",
            "limit=x",
            "added_after=yesterday",
            "match[type]=a,,b",
            "match[type]=a&match[type]=b",
            "match[version]=all,last",
            "match[version]=newest",
            "match[version]=last,last",
            "next=",
            "x=%zz",
        ] {
            assert!(Params::parse(Some(bad), ALL).is_err(), "{bad}");
        }
        // Fields this endpoint does not take are ignored.
        assert_eq!(Params::parse(Some("match[type]=x"), &["version"]).unwrap().types, Vec::<String>::new());
    }

    #[test]
    fn cursors_are_bound_to_their_query() {
        let c = Cursors::new(KeyFile::ephemeral().unwrap());
        let p = Params::parse(Some("match[type]=indicator"), ALL).unwrap();
        let n = c.make(Listing::Objects, 42, "coll", "alice", &p);
        let with = |q: &str| Params::parse(Some(&format!("{q}&next={n}")), ALL).unwrap();
        assert_eq!(
            c.open(Listing::Objects, "coll", "alice", &with("match[type]=indicator&limit=7")).unwrap(),
            Some(42)
        );
        assert!(c.open(Listing::Objects, "coll", "alice", &with("match[type]=sighting")).is_err(), "other filters");
        assert!(c.open(Listing::Objects, "coll", "bob", &with("match[type]=indicator")).is_err(), "other user");
        assert!(
            c.open(Listing::Objects, "other", "alice", &with("match[type]=indicator")).is_err(),
            "other collection"
        );
        assert!(c.open(Listing::Manifest, "coll", "alice", &with("match[type]=indicator")).is_err(), "other listing");
        let mut forged = URL_SAFE_NO_PAD.decode(&n).unwrap();
        forged[1] ^= 1;
        let p2 = Params::parse(Some(&format!("match[type]=indicator&next={}", URL_SAFE_NO_PAD.encode(forged))), ALL)
            .unwrap();
        assert!(c.open(Listing::Objects, "coll", "alice", &p2).is_err(), "forged position");
    }
}
