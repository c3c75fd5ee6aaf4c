//! The commit log: one JSON file per commit under `_commits/`, numbered without gaps. Replaying
//! the log gives the [`Snapshot`]: the live files and how far each input has been read.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use cynex_model::Table;
use serde::{Deserialize, Serialize};

use crate::{io_err, Error, Result};

/// One data file in the lake.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    pub table: String,
    /// Path relative to the lake root, with `/` separators.
    pub path: String,
    /// Where the file was staged before the commit (relative to the root), for roll-forward.
    pub staged: String,
    pub sensor: String,
    /// Partition date as days since the epoch, and hour.
    pub days: i64,
    pub hour: u8,
    pub rows: u64,
    pub bytes: u64,
    pub min_ts: i64,
    pub max_ts: i64,
}

/// How far one input has been read and committed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SourceProgress {
    /// Identity of the input's content (see `cynex_ingest::input::identity`).
    pub id: String,
    pub sensor: String,
    pub format: String,
    /// Path as given when last ingested (informational).
    pub path: String,
    /// Offset in the decompressed stream up to which every record is committed.
    pub offset: u64,
    /// Whether the input was read to its end.
    pub complete: bool,
    pub read: u64,
    pub written: u64,
    pub quarantined: u64,
    /// Why the input could not be read at all, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Lines before `offset`, for line-oriented inputs (so a reader can seek there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// How many leading bytes the identity hashes, when the input was shorter than the usual
    /// prefix the first time it was seen (so it is recognised again after it grows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_len: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Commit {
    pub seq: u64,
    pub time_us: i64,
    pub op: String,
    #[serde(default)]
    pub add: Vec<FileEntry>,
    #[serde(default)]
    pub remove: Vec<String>,
    #[serde(default)]
    pub sources: Vec<SourceProgress>,
}

/// The lake as of a commit.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub seq: u64,
    pub files: BTreeMap<String, FileEntry>,
    /// Progress per (sensor, input identity).
    pub sources: HashMap<(String, String), SourceProgress>,
}

impl Snapshot {
    pub fn apply(&mut self, c: &Commit) {
        for p in &c.remove {
            self.files.remove(p);
        }
        for f in &c.add {
            self.files.insert(f.path.clone(), f.clone());
        }
        for s in &c.sources {
            self.sources.insert((s.sensor.clone(), s.id.clone()), s.clone());
        }
        self.seq = c.seq;
    }

    pub fn files_of(&self, table: Table) -> impl Iterator<Item = &FileEntry> {
        self.files.values().filter(move |f| f.table == table.name())
    }

    pub fn source(&self, sensor: &str, id: &str) -> Option<&SourceProgress> {
        self.sources.get(&(sensor.to_string(), id.to_string()))
    }
}

pub(crate) const COMMITS_DIR: &str = "_commits";

pub(crate) fn commit_file_name(seq: u64) -> String {
    format!("{seq:020}.json")
}

/// Read commits with sequence numbers above `after`, in order. A gap or an unreadable commit is
/// an error naming the file: the log is the lake's truth and is never guessed around.
pub(crate) fn read_commits_after(root: &Path, after: u64) -> Result<Vec<Commit>> {
    let dir = root.join(COMMITS_DIR);
    let mut seqs: Vec<u64> = std::fs::read_dir(&dir)
        .map_err(io_err(format!("reading {}", dir.display())))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.strip_suffix(".json").and_then(|n| n.parse::<u64>().ok())
        })
        .filter(|&s| s > after)
        .collect();
    seqs.sort_unstable();
    let mut out = Vec::with_capacity(seqs.len());
    for (expect, s) in (after + 1..).zip(seqs) {
        let path = dir.join(commit_file_name(s));
        if s != expect {
            return Err(Error::CorruptLog {
                path: path.display().to_string(),
                reason: format!("expected commit {expect}, found {s}"),
            });
        }
        let bytes = std::fs::read(&path).map_err(io_err(format!("reading {}", path.display())))?;
        let c = parse_commit(&path, s, &bytes)?;
        out.push(c);
    }
    Ok(out)
}

/// Commits after `after`, found by reading `after + 1`, `after + 2`, … until one does not exist:
/// how a snapshot that is current up to `after` catches up, without listing the log directory
/// (which grows by a file per commit, so a follower committing every pass would list ever more).
/// Commits are created under the lake's exclusive lock, in order and each by one rename, so the
/// first missing number is the end; the listing with its gap check runs when the lake is opened.
pub(crate) fn read_next_commits(root: &Path, after: u64) -> Result<Vec<Commit>> {
    let dir = root.join(COMMITS_DIR);
    let mut out = Vec::new();
    for s in after + 1.. {
        let path = dir.join(commit_file_name(s));
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) => return Err(io_err(format!("reading {}", path.display()))(e)),
        };
        out.push(parse_commit(&path, s, &bytes)?);
    }
    Ok(out)
}

fn parse_commit(path: &Path, seq: u64, bytes: &[u8]) -> Result<Commit> {
    let c: Commit = serde_json::from_slice(bytes)
        .map_err(|e| Error::CorruptLog { path: path.display().to_string(), reason: e.to_string() })?;
    if c.seq != seq {
        return Err(Error::CorruptLog {
            path: path.display().to_string(),
            reason: format!("names itself commit {}", c.seq),
        });
    }
    Ok(c)
}
