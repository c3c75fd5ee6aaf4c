//! The commit log: one JSON file per commit under `_commits/`, numbered without gaps. Replaying
//! the log gives the [`Snapshot`]: the live files and how far each input has been read.
//!
//! Every [`CHECKPOINT_EVERY`] commits the snapshot itself is written next to the log
//! (`<seq>.checkpoint.json`), so opening a lake reads the latest checkpoint and the commits after
//! it, not a log that grows by a file per commit for as long as a follower runs. Commit files are
//! kept (analyses read the commits after the one they last saw); a checkpoint only shortcuts the
//! replay, so an unreadable one falls back to an older one or to the whole log.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
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
    /// For an input committed in pieces that may arrive in any order (bus chunks): the byte
    /// ranges `[start, end)` committed so far, sorted and merged, so the entry stays one per
    /// input however many pieces it took. `offset` is then the end of the first range.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<(u64, u64)>,
}

/// Add `[lo, hi)` to sorted, merged, disjoint `ranges`; `false` (and no change) when it overlaps
/// what is there.
pub fn insert_range(ranges: &mut Vec<(u64, u64)>, lo: u64, hi: u64) -> bool {
    let i = ranges.partition_point(|r| r.1 <= lo);
    if ranges.get(i).is_some_and(|r| r.0 < hi) || lo >= hi {
        return false;
    }
    ranges.insert(i, (lo, hi));
    // Merge with the neighbours it touches.
    if i + 1 < ranges.len() && ranges[i + 1].0 == hi {
        ranges[i].1 = ranges[i + 1].1;
        ranges.remove(i + 1);
    }
    if i > 0 && ranges[i - 1].1 == lo {
        ranges[i - 1].1 = ranges[i].1;
        ranges.remove(i);
    }
    true
}

/// The parts of `[lo, hi)` that sorted, disjoint `ranges` do not cover.
pub fn uncovered(ranges: &[(u64, u64)], lo: u64, hi: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut at = lo;
    for &(a, b) in &ranges[ranges.partition_point(|r| r.1 <= lo)..] {
        if a >= hi {
            break;
        }
        if a > at {
            out.push((at, a));
        }
        at = at.max(b);
    }
    if at < hi {
        out.push((at, hi));
    }
    out
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
    /// The commit of the latest checkpoint (0: none).
    pub(crate) checkpoint: u64,
}

/// Commits between two checkpoints of the snapshot.
pub(crate) const CHECKPOINT_EVERY: u64 = 256;

/// A snapshot as written to disk (borrowing from the snapshot when written).
#[derive(Serialize, Deserialize)]
struct Checkpoint<'a> {
    seq: u64,
    files: Vec<Cow<'a, FileEntry>>,
    sources: Vec<Cow<'a, SourceProgress>>,
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

const CHECKPOINT_SUFFIX: &str = ".checkpoint.json";

fn checkpoint_file_name(seq: u64) -> String {
    format!("{seq:020}{CHECKPOINT_SUFFIX}")
}

/// The sequence numbers of the checkpoints in the log directory, in order.
fn checkpoint_seqs(dir: &Path) -> Result<Vec<u64>> {
    let mut seqs: Vec<u64> = std::fs::read_dir(dir)
        .map_err(io_err(format!("reading {}", dir.display())))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(CHECKPOINT_SUFFIX)?.parse().ok())
        .collect();
    seqs.sort_unstable();
    Ok(seqs)
}

/// The snapshot of the latest readable checkpoint, if there is one. One that cannot be read is
/// reported and skipped: the commits it summarises are still in the log.
pub(crate) fn read_latest_checkpoint(root: &Path) -> Result<Option<Snapshot>> {
    let dir = root.join(COMMITS_DIR);
    for seq in checkpoint_seqs(&dir)?.into_iter().rev() {
        let path = dir.join(checkpoint_file_name(seq));
        let parsed = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Checkpoint>(&b).map_err(|e| e.to_string()))
            .and_then(|c| if c.seq == seq { Ok(c) } else { Err(format!("names itself commit {}", c.seq)) });
        match parsed {
            Ok(c) => {
                let files = c.files.into_iter().map(|f| (f.path.clone(), f.into_owned())).collect();
                let sources =
                    c.sources.into_iter().map(|s| ((s.sensor.clone(), s.id.clone()), s.into_owned())).collect();
                return Ok(Some(Snapshot { seq, files, sources, checkpoint: seq }));
            }
            Err(reason) => {
                tracing::warn!(file = %path.display(), %reason, "skipping an unreadable checkpoint of the commit log")
            }
        }
    }
    Ok(None)
}

/// Write `snap` as a checkpoint (temporary file, fsync, rename, fsync of the directory), then
/// delete checkpoints older than the previous one.
pub(crate) fn write_checkpoint(root: &Path, snap: &Snapshot) -> Result<()> {
    let dir = root.join(COMMITS_DIR);
    let name = checkpoint_file_name(snap.seq);
    let (tmp, fin) = (dir.join(format!(".{name}.tmp")), dir.join(&name));
    let mut sources: Vec<Cow<'_, SourceProgress>> = snap.sources.values().map(Cow::Borrowed).collect();
    sources.sort_by(|a, b| (&a.sensor, &a.id).cmp(&(&b.sensor, &b.id)));
    let files = snap.files.values().map(Cow::Borrowed).collect();
    let body = serde_json::to_vec(&Checkpoint { seq: snap.seq, files, sources })
        .map_err(|e| Error::Internal(format!("serialising a checkpoint: {e}")))?;
    {
        let mut f = std::fs::File::create(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
        f.write_all(&body).map_err(io_err(format!("writing {}", tmp.display())))?;
        f.sync_all().map_err(io_err(format!("fsync {}", tmp.display())))?;
    }
    std::fs::rename(&tmp, &fin).map_err(io_err(format!("renaming {}", tmp.display())))?;
    crate::lake::fsync_dir(&dir)?;
    let seqs = checkpoint_seqs(&dir)?;
    for old in seqs.iter().filter(|&&s| s < snap.seq).rev().skip(1) {
        let path = dir.join(checkpoint_file_name(*old));
        std::fs::remove_file(&path).map_err(io_err(format!("deleting {}", path.display())))?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Ranges against a set of bytes 0..64, over many pseudo-random insertions.
    #[test]
    fn ranges_merge_refuse_overlaps_and_report_the_uncovered_parts() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for _ in 0..200 {
            let (mut ranges, mut bytes) = (Vec::new(), [false; 64]);
            for _ in 0..40 {
                let lo = next(64);
                let hi = lo + next(64 - lo) + 1;
                let free = (lo..hi).all(|b| !bytes[b as usize]);
                let gaps: Vec<(u64, u64)> = {
                    let mut g: Vec<(u64, u64)> = Vec::new();
                    for b in lo..hi {
                        if !bytes[b as usize] {
                            match g.last_mut() {
                                Some(last) if last.1 == b => last.1 = b + 1,
                                _ => g.push((b, b + 1)),
                            }
                        }
                    }
                    g
                };
                assert_eq!(uncovered(&ranges, lo, hi), gaps, "{ranges:?} {lo}..{hi}");
                assert_eq!(insert_range(&mut ranges, lo, hi), free, "{ranges:?} {lo}..{hi}");
                if free {
                    for b in lo..hi {
                        bytes[b as usize] = true;
                    }
                }
                // Sorted, disjoint, merged, and exactly the bytes inserted.
                assert!(ranges.windows(2).all(|w| w[0].1 < w[1].0), "{ranges:?}");
                let held: Vec<bool> = (0..64).map(|b| ranges.iter().any(|r| r.0 <= b && b < r.1)).collect();
                assert_eq!(held, bytes.to_vec());
            }
        }
        assert!(!insert_range(&mut vec![], 5, 5), "an empty range is not a piece");
    }
}
