//! Lake maintenance: statistics from the snapshot, compaction of small files within a
//! partition, and retention (dropping partitions older than a cutoff).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;

use cynex_model::Table;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;

use crate::commit::FileEntry;
use crate::lake::SourceMode;
use crate::writer::WriterOptions;
use crate::{io_err, Lake, Result};

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct TableStats {
    pub table: String,
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
    pub partitions: u64,
    pub sensors: Vec<String>,
    pub min_ts: Option<i64>,
    pub max_ts: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CompactReport {
    pub partitions: u64,
    pub files_before: u64,
    pub files_after: u64,
    pub rows: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PruneReport {
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
}

impl Lake {
    /// Per-table statistics of the committed files.
    pub fn stats(&self) -> Result<Vec<TableStats>> {
        let snap = self.snapshot()?;
        Ok(Table::ALL
            .iter()
            .map(|&t| {
                let mut s = TableStats { table: t.name().to_string(), ..Default::default() };
                let mut parts = BTreeSet::new();
                let mut sensors = BTreeSet::new();
                for f in snap.files_of(t) {
                    s.files += 1;
                    s.rows += f.rows;
                    s.bytes += f.bytes;
                    parts.insert((f.sensor.clone(), f.days, f.hour));
                    sensors.insert(f.sensor.clone());
                    s.min_ts = Some(s.min_ts.map_or(f.min_ts, |m| m.min(f.min_ts)));
                    s.max_ts = Some(s.max_ts.map_or(f.max_ts, |m| m.max(f.max_ts)));
                }
                s.partitions = parts.len() as u64;
                s.sensors = sensors.into_iter().collect();
                s
            })
            .collect())
    }

    /// Merge the files of each partition that has more than one file smaller than
    /// `target_bytes` into as few files as fit `target_bytes`. Readers never see a partial
    /// state: the merged file and the removal of its inputs are one commit.
    pub fn compact(&self, target_bytes: u64, opts: WriterOptions) -> Result<CompactReport> {
        self.compact_where(target_bytes, opts, |_| true)
    }

    /// [`Lake::compact`] of only the files `select` picks (e.g. one writer's small files).
    pub fn compact_where(
        &self,
        target_bytes: u64,
        opts: WriterOptions,
        select: impl Fn(&FileEntry) -> bool,
    ) -> Result<CompactReport> {
        let snap = self.snapshot()?;
        let mut groups: BTreeMap<(String, String, i64, u8), Vec<FileEntry>> = BTreeMap::new();
        for f in snap.files.values().filter(|f| f.bytes < target_bytes && select(f)) {
            groups.entry((f.table.clone(), f.sensor.clone(), f.days, f.hour)).or_default().push(f.clone());
        }
        let mut report = CompactReport::default();
        for ((table, sensor, _, _), mut files) in groups {
            if files.len() < 2 {
                continue;
            }
            let Some(t) = Table::from_name(&table) else { continue };
            files.sort_by_key(|f| (f.min_ts, f.path.clone()));
            // Split into runs that each fit the target size.
            let mut runs: Vec<Vec<FileEntry>> = vec![Vec::new()];
            let mut size = 0;
            for f in files {
                if size + f.bytes > target_bytes && !runs.last().is_some_and(|r| r.is_empty()) {
                    runs.push(Vec::new());
                    size = 0;
                }
                size += f.bytes;
                if let Some(r) = runs.last_mut() {
                    r.push(f);
                }
            }
            for run in runs.into_iter().filter(|r| r.len() > 1) {
                let mut tx = self.begin(&sensor, WriterOptions { threads: 1, ..opts.clone() })?;
                let mut rows = 0;
                for f in &run {
                    let path = self.root.join(&f.path);
                    let file = File::open(&path).map_err(io_err(format!("opening {}", path.display())))?;
                    for batch in ParquetRecordBatchReaderBuilder::try_new(file)?.with_batch_size(65_536).build()? {
                        let batch = batch?;
                        rows += batch.num_rows() as u64;
                        tx.write(t, batch)?;
                    }
                }
                let added = tx.flush_files()?;
                let removed: Vec<String> = run.iter().map(|f| f.path.clone()).collect();
                report.partitions += 1;
                report.files_before += removed.len() as u64;
                report.files_after += added.len() as u64;
                report.rows += rows;
                self.commit("compact", added, removed, Vec::new(), SourceMode::Replace)?;
            }
        }
        Ok(report)
    }

    /// Drop every file whose partition hour ended at or before `cutoff_us`.
    pub fn prune(&self, cutoff_us: i64) -> Result<PruneReport> {
        let snap = self.snapshot()?;
        let old: Vec<&FileEntry> =
            snap.files.values().filter(|f| (f.days * 24 + f.hour as i64 + 1) * 3_600_000_000 <= cutoff_us).collect();
        let report = PruneReport {
            files: old.len() as u64,
            rows: old.iter().map(|f| f.rows).sum(),
            bytes: old.iter().map(|f| f.bytes).sum(),
        };
        if !old.is_empty() {
            self.commit(
                "prune",
                Vec::new(),
                old.iter().map(|f| f.path.clone()).collect(),
                Vec::new(),
                SourceMode::Replace,
            )?;
        }
        Ok(report)
    }
}
