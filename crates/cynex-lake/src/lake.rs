//! Opening a lake, recovering from a crash, and the commit step itself.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cynex_model::Table;

use crate::commit::{
    commit_file_name, read_commits_after, read_latest_checkpoint, read_next_commits, write_checkpoint, Commit,
    FileEntry, Snapshot, SourceProgress, CHECKPOINT_EVERY, COMMITS_DIR,
};
use crate::{io_err, Error, Result};

pub(crate) const STAGING_DIR: &str = "_staging";
const LOCK_FILE: &str = "_lock";

/// A lake rooted at a directory. Cheap to clone; all clones share one snapshot.
#[derive(Clone)]
pub struct Lake {
    pub(crate) root: PathBuf,
    pub(crate) snapshot: Arc<Mutex<Snapshot>>,
}

/// Sensor names become path components: keep them to `[A-Za-z0-9._-]`, 1 to 64 characters, not
/// starting with a dot.
pub fn valid_sensor_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('.')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(format!("fsync {}", dir.display())))
}

/// An exclusive or shared hold on the lake's lock file, released on drop.
pub struct LockGuard(File);

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl Lake {
    /// Open (creating if needed) the lake at `root`, roll forward or clean up after any crashed
    /// writer, and load the snapshot.
    pub fn open(root: impl AsRef<Path>) -> Result<Lake> {
        let root = root.as_ref().to_path_buf();
        for d in [COMMITS_DIR, STAGING_DIR] {
            fs::create_dir_all(root.join(d)).map_err(io_err(format!("creating {}", root.join(d).display())))?;
        }
        for t in Table::ALL {
            fs::create_dir_all(root.join(t.name()))
                .map_err(io_err(format!("creating table dir in {}", root.display())))?;
        }
        let lake = Lake { root, snapshot: Arc::new(Mutex::new(Snapshot::default())) };
        let _g = lake.lock_exclusive()?;
        // The latest checkpoint, then the commits after it (read once; recovery reuses them).
        let base = read_latest_checkpoint(&lake.root)?.unwrap_or_default();
        let tail = read_commits_after(&lake.root, base.seq)?;
        {
            let mut s = lake.snap();
            *s = base;
            for c in &tail {
                s.apply(c);
            }
        }
        lake.recover_locked(&tail)?;
        let (seq, checkpoint) = {
            let s = lake.snap();
            (s.seq, s.checkpoint)
        };
        if seq >= checkpoint + CHECKPOINT_EVERY {
            lake.checkpoint_or_warn(None);
        }
        Ok(lake)
    }

    /// Write a checkpoint of the snapshot now, so the next open replays no commit before it
    /// (one is also written every 256 commits).
    pub fn checkpoint(&self) -> Result<u64> {
        let _g = self.lock_exclusive()?;
        self.refresh_locked()?;
        let tail = read_next_commits(&self.root, self.snap().checkpoint)?;
        self.checkpoint_locked(Some(&tail))?;
        Ok(self.snap().seq)
    }

    /// Under the exclusive lock: make sure everything the commits since the last checkpoint
    /// (`tail`, read here when not given) did is on disk — a crashed writer may have left a
    /// commit half rolled forward — and then write the checkpoint. Files committed earlier are
    /// still rolled forward from the snapshot's own record of where they were staged; a file
    /// such a commit removed but could not delete would only be left over on disk.
    /// A checkpoint only shortens later opens: failing to write one is reported, not an error of
    /// the commit or open that wanted it.
    fn checkpoint_or_warn(&self, tail: Option<&[Commit]>) {
        if let Err(e) = self.checkpoint_locked(tail) {
            tracing::warn!(error = %e, "could not write a checkpoint of the commit log; the next open replays more of it");
        }
    }

    fn checkpoint_locked(&self, tail: Option<&[Commit]>) -> Result<()> {
        if let Some(tail) = tail {
            self.recover_locked(tail)?;
        }
        let snap = self.snap().clone();
        write_checkpoint(&self.root, &snap)?;
        self.snap().checkpoint = snap.seq;
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn lock_file(&self) -> Result<File> {
        let p = self.root.join(LOCK_FILE);
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(io_err(format!("opening {}", p.display())))
    }

    pub(crate) fn lock_exclusive(&self) -> Result<LockGuard> {
        let f = self.lock_file()?;
        f.lock().map_err(io_err("locking the lake"))?;
        Ok(LockGuard(f))
    }

    /// Hold the lake's shared lock: no commit, compaction or prune changes files until the
    /// guard is dropped. Do not commit from this process while holding it.
    pub fn lock_shared(&self) -> Result<LockGuard> {
        let f = self.lock_file()?;
        f.lock_shared().map_err(io_err("locking the lake (shared)"))?;
        Ok(LockGuard(f))
    }

    /// A copy of the current snapshot, brought up to date with commits by other processes.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let _g = self.lock_shared()?;
        self.refresh_locked()?;
        Ok(self.snap().clone())
    }

    pub(crate) fn snap(&self) -> std::sync::MutexGuard<'_, Snapshot> {
        // A panic while holding the snapshot lock cannot leave it half-applied (apply is
        // infallible), so a poisoned lock is safe to use.
        self.snapshot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The sequence number of the latest commit (brought up to date with other processes): a
    /// cheap way to tell whether anything changed since a result was computed.
    pub fn seq(&self) -> Result<u64> {
        let _g = self.lock_shared()?;
        self.refresh_locked()?;
        Ok(self.snap().seq)
    }

    /// The commits after `seq`, in order (brought up to date with other processes).
    pub fn commits_after(&self, seq: u64) -> Result<Vec<Commit>> {
        let _g = self.lock_shared()?;
        read_next_commits(&self.root, seq)
    }

    /// Progress recorded for an input, if any.
    pub fn source_progress(&self, sensor: &str, id: &str) -> Result<Option<SourceProgress>> {
        let _g = self.lock_shared()?;
        self.refresh_locked()?;
        Ok(self.snap().source(sensor, id).cloned())
    }

    /// Whether each (sensor, input identity) has progress recorded, with one look at the log
    /// (for callers that check many inputs at once, without copying the snapshot).
    pub fn recorded(&self, keys: &[(String, String)]) -> Result<Vec<bool>> {
        let _g = self.lock_shared()?;
        self.refresh_locked()?;
        let s = self.snap();
        Ok(keys.iter().map(|k| s.sources.contains_key(k)).collect())
    }

    /// For each `(sensor, input, start, end)`: the parts of `[start, end)` not yet committed
    /// (pieces are committed by [`crate::Transaction::commit_pieces`]), with one look at the log.
    pub fn uncommitted_pieces(&self, pieces: &[(String, String, u64, u64)]) -> Result<Vec<Vec<(u64, u64)>>> {
        let _g = self.lock_shared()?;
        self.refresh_locked()?;
        let s = self.snap();
        Ok(pieces
            .iter()
            .map(|(sensor, id, lo, hi)| match s.source(sensor, id) {
                Some(p) => crate::commit::uncovered(&p.ranges, *lo, *hi),
                None => vec![(*lo, *hi)],
            })
            .collect())
    }

    /// The recorded progress entries that `keep` selects (brought up to date first).
    pub fn sources_where(&self, keep: impl Fn(&SourceProgress) -> bool) -> Result<Vec<SourceProgress>> {
        let _g = self.lock_shared()?;
        self.refresh_locked()?;
        Ok(self.snap().sources.values().filter(|p| keep(p)).cloned().collect())
    }

    fn refresh_locked(&self) -> Result<()> {
        let after = self.snap().seq;
        let commits = read_next_commits(&self.root, after)?;
        let mut s = self.snap();
        for c in &commits {
            s.apply(c);
        }
        Ok(())
    }

    /// Under the exclusive lock: finish renames of committed files, delete files that commits
    /// removed, and delete staging left by writers that died before committing.
    fn recover_locked(&self, recent: &[Commit]) -> Result<()> {
        // Live files know where they were staged, whichever commit added them.
        let (staged_to_final, live): (std::collections::HashMap<String, String>, BTreeSet<String>) = {
            let s = self.snap();
            (s.files.values().map(|f| (f.staged.clone(), f.path.clone())).collect(), s.files.keys().cloned().collect())
        };
        let removed: BTreeSet<String> = recent.iter().flat_map(|c| c.remove.iter().cloned()).collect();
        for p in removed.difference(&live) {
            let full = self.root.join(p);
            if full.exists() {
                tracing::info!(file = %p, "recovery: deleting file removed by a commit");
                fs::remove_file(&full).map_err(io_err(format!("deleting {}", full.display())))?;
            }
        }
        // Commit records and checkpoints that never got renamed into place.
        let log = self.root.join(COMMITS_DIR);
        for e in fs::read_dir(&log).map_err(io_err(format!("reading {}", log.display())))?.filter_map(|e| e.ok()) {
            let name = e.file_name();
            if name.to_str().is_some_and(|n| n.starts_with('.') && n.ends_with(".tmp")) {
                fs::remove_file(e.path()).map_err(io_err(format!("deleting {}", e.path().display())))?;
            }
        }
        let staging = self.root.join(STAGING_DIR);
        let entries = fs::read_dir(&staging).map_err(io_err(format!("reading {}", staging.display())))?;
        for e in entries.filter_map(|e| e.ok()) {
            let path = e.path();
            if path.extension().is_some_and(|x| x == "lock") || !path.is_dir() {
                continue;
            }
            // A live writer holds its staging lock; only dead writers' staging is recovered.
            let lock_path = path.with_extension("lock");
            let lock = match OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path) {
                Ok(f) => f,
                Err(_) => continue,
            };
            if lock.try_lock().is_err() {
                continue;
            }
            for f in fs::read_dir(&path).map_err(io_err(format!("reading {}", path.display())))?.filter_map(|e| e.ok())
            {
                let rel =
                    format!("{STAGING_DIR}/{}/{}", e.file_name().to_string_lossy(), f.file_name().to_string_lossy());
                match staged_to_final.get(&rel) {
                    Some(fin) => {
                        tracing::info!(file = %fin, "recovery: completing rename of a committed file");
                        self.place(&f.path(), fin)?;
                    }
                    _ => {
                        tracing::info!(file = %rel, "recovery: deleting uncommitted staged file");
                        fs::remove_file(f.path()).map_err(io_err(format!("deleting {}", f.path().display())))?;
                    }
                }
            }
            fs::remove_dir(&path).map_err(io_err(format!("removing {}", path.display())))?;
            let _ = fs::remove_file(&lock_path);
        }
        Ok(())
    }

    /// Move a staged file to its final place (relative path), creating the partition directory.
    fn place(&self, staged: &Path, rel: &str) -> Result<PathBuf> {
        let fin = self.root.join(rel);
        let dir = fin.parent().ok_or_else(|| Error::Internal(format!("file path {rel} has no parent")))?;
        fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
        fs::rename(staged, &fin).map_err(io_err(format!("renaming {} to {}", staged.display(), fin.display())))?;
        Ok(dir.to_path_buf())
    }

    /// Commit: record `add`, `remove` and `sources` as one commit, then move the added files into
    /// place and delete the removed ones. Every removed file must still be live; `mode` says how
    /// `sources` meet progress already recorded.
    pub(crate) fn commit(
        &self,
        op: &str,
        add: Vec<FileEntry>,
        remove: Vec<String>,
        sources: Vec<SourceProgress>,
        mode: SourceMode,
    ) -> Result<u64> {
        let _g = self.lock_exclusive()?;
        self.refresh_locked()?;
        let sources = {
            let s = self.snap();
            if let Some(gone) = remove.iter().find(|p| !s.files.contains_key(*p)) {
                return Err(Error::Conflict(format!("{gone} was already removed by another commit")));
            }
            match mode {
                SourceMode::Replace => sources,
                SourceMode::New => {
                    if let Some(seen) = sources.iter().find(|p| s.source(&p.sensor, &p.id).is_some()) {
                        return Err(Error::Conflict(format!(
                            "input {} of sensor {} was already committed by another writer",
                            seen.id, seen.sensor
                        )));
                    }
                    sources
                }
                SourceMode::Pieces => merge_pieces(&s, sources)?,
            }
        };
        let seq = self.snap().seq + 1;
        let commit = Commit { seq, time_us: now_us(), op: op.to_string(), add, remove, sources };
        let dir = self.root.join(COMMITS_DIR);
        let tmp = dir.join(format!(".{}.tmp", commit_file_name(seq)));
        let fin = dir.join(commit_file_name(seq));
        let body = serde_json::to_vec(&commit).map_err(|e| Error::Internal(format!("serialising commit: {e}")))?;
        {
            let mut f = File::create(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
            f.write_all(&body).map_err(io_err(format!("writing {}", tmp.display())))?;
            f.sync_all().map_err(io_err(format!("fsync {}", tmp.display())))?;
        }
        fs::rename(&tmp, &fin).map_err(io_err(format!("renaming {}", tmp.display())))?;
        fsync_dir(&dir)?;
        // The commit is durable: from here a crash is rolled forward by `recover_locked`.
        let mut dirs = BTreeSet::new();
        for f in &commit.add {
            dirs.insert(self.place(&self.root.join(&f.staged), &f.path)?);
        }
        for d in &dirs {
            fsync_dir(d)?;
        }
        for p in &commit.remove {
            let full = self.root.join(p);
            match fs::remove_file(&full) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(format!("deleting {}", full.display()))(e)),
            }
            remove_empty_parents(&self.root, &full);
        }
        self.snap().apply(&commit);
        let since = self.snap().checkpoint;
        if seq >= since + CHECKPOINT_EVERY {
            match read_next_commits(&self.root, since) {
                Ok(tail) => self.checkpoint_or_warn(Some(&tail)),
                Err(e) => tracing::warn!(error = %e, "could not read the commits since the last checkpoint"),
            }
        }
        Ok(seq)
    }
}

/// How a commit's input progress meets what is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SourceMode {
    /// Each entry replaces the input's progress (an input read on from where it was).
    Replace,
    /// No input may have progress yet: two writers racing on one input cannot both commit it.
    New,
    /// Each entry is one piece (`ranges` holds its one range) of an input committed in pieces:
    /// it is merged into the input's ranges, and a piece overlapping what is recorded (or
    /// another piece) fails the commit, so racing writers cannot both commit the same bytes.
    Pieces,
}

/// The progress entries recording `pieces` on top of `snap` (one per input).
fn merge_pieces(snap: &Snapshot, pieces: Vec<SourceProgress>) -> Result<Vec<SourceProgress>> {
    let mut merged: std::collections::BTreeMap<(String, String), SourceProgress> = Default::default();
    for p in pieces {
        let &[(lo, hi)] = p.ranges.as_slice() else {
            return Err(Error::Internal(format!("a piece of input {} must hold one range", p.id)));
        };
        let key = (p.sensor.clone(), p.id.clone());
        let mut e = match merged.remove(&key).or_else(|| snap.source(&p.sensor, &p.id).cloned()) {
            None => SourceProgress { ranges: Vec::new(), read: 0, written: 0, quarantined: 0, ..p.clone() },
            Some(e) => e,
        };
        if !crate::commit::insert_range(&mut e.ranges, lo, hi) {
            return Err(Error::Conflict(format!(
                "bytes {lo}..{hi} of input {} of sensor {} were already committed by another writer",
                p.id, p.sensor
            )));
        }
        e.read += p.read;
        e.written += p.written;
        e.quarantined += p.quarantined;
        e.path = p.path;
        e.format = p.format;
        e.error = p.error.or(e.error);
        e.offset = e.ranges.first().map_or(0, |r| r.1);
        e.complete = false;
        merged.insert(key, e);
    }
    Ok(merged.into_values().collect())
}

/// Remove now-empty partition directories above a deleted file, up to the table directory.
fn remove_empty_parents(root: &Path, file: &Path) {
    let mut d = file.parent();
    while let Some(dir) = d {
        if dir == root || dir.parent() == Some(root) || fs::remove_dir(dir).is_err() {
            break;
        }
        d = dir.parent();
    }
}

pub(crate) use cynex_model::time::now_us;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensor_names() {
        assert!(valid_sensor_name("tokyo-1.dark_A"));
        for bad in ["", ".x", "a/b", "a b", "..", &"x".repeat(65)] {
            assert!(!valid_sensor_name(bad), "{bad:?}");
        }
    }
}
