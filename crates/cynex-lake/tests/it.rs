//! The lake's promises: commits are atomic, readers see only committed files, a crash at any
//! step is recovered on the next open, re-ingesting is a no-op, compaction and pruning keep the
//! data readable and correct, and partition filters prune files.

use std::path::Path;

use cynex_gen::{generate_darknet, DarknetConfig};
use cynex_ingest::pcap::{CaptureReader, PcapSource};
use cynex_lake::{Lake, QueryOptions, QuerySession, SourceProgress, WriterOptions};
use cynex_model::Table;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;

fn capture(packets: u64, hours: u64) -> (Vec<u8>, u64) {
    let cfg = DarknetConfig { packets, duration_s: hours * 3600, seed: 9, ..Default::default() };
    let (t, bytes) = generate_darknet(&cfg, Vec::new()).unwrap();
    (bytes, t.packets)
}

fn progress(offset: u64, complete: bool) -> SourceProgress {
    SourceProgress {
        id: "test".into(),
        sensor: "s1".into(),
        format: "pcap".into(),
        path: "mem".into(),
        offset,
        complete,
        read: 0,
        written: 0,
        quarantined: 0,
        error: None,
        ..Default::default()
    }
}

/// Ingest `bytes` through the real reader into the lake, committing after every batch.
fn ingest(lake: &Lake, bytes: &[u8], batch_rows: usize) -> u64 {
    let mut tx = lake.begin("s1", WriterOptions { threads: 2, ..Default::default() }).unwrap();
    let reader = CaptureReader::new(bytes, "mem").unwrap();
    let mut src = PcapSource::new(reader, "mem", batch_rows, 0);
    let mut n = 0;
    while let Some(ev) = src.next_batch().unwrap() {
        if let Some(b) = ev.packets {
            n += b.num_rows() as u64;
            tx.write(Table::Packets, b).unwrap();
        }
        tx.commit("ingest", vec![progress(ev.offset, false)]).unwrap();
    }
    n
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn query(lake: &Lake, sql: &str) -> Vec<RecordBatch> {
    let s = QuerySession::open(lake, &QueryOptions::default()).unwrap();
    rt().block_on(s.sql(sql)).unwrap().1
}

fn count(lake: &Lake, sql: &str) -> i64 {
    let b = query(lake, sql);
    b[0].column(0).as_primitive::<Int64Type>().value(0)
}

fn parquet_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn committed_data_is_queryable_with_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let (bytes, n) = capture(30_000, 3);
    assert_eq!(ingest(&lake, &bytes, 8192), n);
    assert_eq!(count(&lake, "SELECT count(*) FROM packets") as u64, n);
    assert_eq!(count(&lake, "SELECT count(DISTINCT hour) FROM packets"), 3);
    assert_eq!(count(&lake, "SELECT count(*) FROM packets WHERE sensor = 'nope'"), 0);
    let by_hour = count(&lake, "SELECT count(*) FROM packets WHERE date = DATE '2026-11-01' AND hour = 1");
    assert!(by_hour > 0 && (by_hour as u64) < n);
    let stats = lake.stats().unwrap();
    assert_eq!(stats[0].rows, n);
    assert_eq!(stats[0].partitions, 3);
    // Every file the snapshot lists exists and nothing else is in the table directory.
    let snap = lake.snapshot().unwrap();
    let on_disk = parquet_files(&dir.path().join("packets"));
    assert_eq!(on_disk.len(), snap.files.len());
}

#[test]
fn explain_shows_partition_pruning() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let (bytes, _) = capture(20_000, 4);
    ingest(&lake, &bytes, 1 << 20);
    let plan = |sql: &str| -> String {
        let b = query(&lake, &format!("EXPLAIN {sql}"));
        let mut s = String::new();
        for batch in &b {
            let col = batch.column(1).as_string::<i32>();
            for i in 0..col.len() {
                s.push_str(col.value(i));
                s.push('\n');
            }
        }
        s
    };
    let all = plan("SELECT count(*) FROM packets WHERE dst_port = 23");
    let one = plan("SELECT count(*) FROM packets WHERE dst_port = 23 AND hour = 2");
    for h in ["hour=00", "hour=01", "hour=02", "hour=03"] {
        assert!(all.contains(h), "unpruned plan lacks {h}:\n{all}");
    }
    assert!(one.contains("hour=02"), "{one}");
    for h in ["hour=00", "hour=01", "hour=03"] {
        assert!(!one.contains(h), "pruned plan still reads {h}:\n{one}");
    }
    let none = plan("SELECT count(*) FROM packets WHERE sensor = 'other'");
    assert!(!none.contains("hour="), "{none}");
}

#[test]
fn uncommitted_writes_are_invisible_and_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let (bytes, _) = capture(5_000, 1);
    let reader = CaptureReader::new(&bytes[..], "mem").unwrap();
    let mut src = PcapSource::new(reader, "mem", 100_000, 0);
    let batch = src.next_batch().unwrap().unwrap().packets.unwrap();
    let mut tx = lake.begin("s1", WriterOptions::default()).unwrap();
    tx.write(Table::Packets, batch).unwrap();
    // Simulate a crash: the transaction is never committed nor dropped.
    std::mem::forget(tx);
    assert_eq!(count(&lake, "SELECT count(*) FROM packets"), 0);
    assert!(parquet_files(&dir.path().join("packets")).is_empty());
}

#[test]
fn crash_after_commit_record_is_rolled_forward() {
    crash_after_commit_record(false);
}

/// The commits that added the files precede the checkpoint the next open starts from.
#[test]
fn crash_after_commit_record_is_rolled_forward_across_a_checkpoint() {
    crash_after_commit_record(true);
}

fn crash_after_commit_record(checkpoint: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, n) = capture(10_000, 2);
    {
        let lake = Lake::open(dir.path()).unwrap();
        ingest(&lake, &bytes, 1 << 20);
        if checkpoint {
            let seq = lake.checkpoint().unwrap();
            assert!(dir.path().join(format!("_commits/{seq:020}.checkpoint.json")).exists());
        }
    }
    // Put the committed files back in a dead writer's staging directory, as if the process died
    // between writing the commit record and renaming the files.
    let lake = Lake::open(dir.path()).unwrap();
    let snap = lake.snapshot().unwrap();
    for f in snap.files.values() {
        let staged = dir.path().join(&f.staged);
        std::fs::create_dir_all(staged.parent().unwrap()).unwrap();
        std::fs::rename(dir.path().join(&f.path), &staged).unwrap();
    }
    // Plus one staged file that no commit names: garbage from a crash before commit.
    let garbage_dir = dir.path().join("_staging/deadbeef");
    std::fs::create_dir_all(&garbage_dir).unwrap();
    std::fs::write(garbage_dir.join("x.parquet"), b"partial").unwrap();
    drop(lake);
    let lake = Lake::open(dir.path()).unwrap();
    assert_eq!(count(&lake, "SELECT count(*) FROM packets") as u64, n);
    assert!(!garbage_dir.exists());
    assert_eq!(std::fs::read_dir(dir.path().join("_staging")).unwrap().count(), 0);
}

#[test]
fn compaction_merges_small_files_and_keeps_rows() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let (bytes, n) = capture(40_000, 2);
    ingest(&lake, &bytes, 2_000);
    let before = lake.snapshot().unwrap().files.len();
    let sum_before = count(&lake, "SELECT sum(CAST(src_ip4 AS BIGINT)) FROM packets");
    let r = lake.compact(256 << 20, WriterOptions::default()).unwrap();
    let after = lake.snapshot().unwrap().files.len();
    assert!(before > 10 && after == 2, "{before} -> {after}: {r:?}");
    assert_eq!(r.rows, n);
    assert_eq!(count(&lake, "SELECT count(*) FROM packets") as u64, n);
    assert_eq!(count(&lake, "SELECT sum(CAST(src_ip4 AS BIGINT)) FROM packets"), sum_before);
    assert_eq!(parquet_files(&dir.path().join("packets")).len(), 2);
    // Idempotent: nothing left to merge.
    assert_eq!(lake.compact(256 << 20, WriterOptions::default()).unwrap().partitions, 0);
}

#[test]
fn prune_drops_old_partitions_only() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let (bytes, n) = capture(20_000, 4);
    ingest(&lake, &bytes, 1 << 20);
    let hour2 = cynex_model::time::parse_rfc3339_us("2026-11-01T02:00:00Z").unwrap();
    let kept = count(&lake, "SELECT count(*) FROM packets WHERE hour >= 2");
    let r = lake.prune(hour2).unwrap();
    assert_eq!(r.rows as i64 + kept, n as i64);
    assert_eq!(count(&lake, "SELECT count(*) FROM packets"), kept);
    assert_eq!(count(&lake, "SELECT CAST(min(hour) AS BIGINT) FROM packets"), 2);
    assert!(!dir.path().join("packets/sensor=s1/date=2026-11-01/hour=00").exists());
}

#[test]
fn source_progress_is_recorded_atomically_with_data() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let (bytes, _) = capture(5_000, 1);
    ingest(&lake, &bytes, 1_000);
    let p = lake.source_progress("s1", "test").unwrap().unwrap();
    assert_eq!(p.offset, bytes.len() as u64);
    // Another handle (another process) sees the same.
    let other = Lake::open(dir.path()).unwrap();
    assert_eq!(other.source_progress("s1", "test").unwrap(), Some(p));
}

#[test]
fn bad_sensor_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    assert!(lake.begin("../x", WriterOptions::default()).is_err());
}

#[test]
fn commit_new_lets_only_one_racing_writer_commit_an_input() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let other = Lake::open(dir.path()).unwrap();
    let (bytes, n) = capture(2_000, 1);
    let batch = |lake: &Lake| {
        let mut tx = lake.begin("s1", WriterOptions::default()).unwrap();
        let reader = CaptureReader::new(&bytes[..], "mem").unwrap();
        let mut src = PcapSource::new(reader, "mem", 100_000, 0);
        while let Some(ev) = src.next_batch().unwrap() {
            if let Some(b) = ev.packets {
                tx.write(Table::Packets, b).unwrap();
            }
        }
        tx
    };
    // Both write the same input; the second to commit is refused and leaves nothing behind.
    let (mut a, mut b) = (batch(&lake), batch(&other));
    a.commit_new("bus", vec![progress(7, true)]).unwrap();
    let err = b.commit_new("bus", vec![progress(7, true)]).unwrap_err();
    assert!(matches!(err, cynex_lake::Error::Conflict(_)), "{err}");
    drop(b);
    assert_eq!(count(&Lake::open(dir.path()).unwrap(), "SELECT count(*) FROM packets"), n as i64);
    // A plain commit of known progress is still allowed (resuming a file updates it).
    let mut c = batch(&lake);
    c.commit("ingest", vec![progress(9, true)]).unwrap();
    assert_eq!(lake.source_progress("s1", "test").unwrap().unwrap().offset, 9);
}

/// Commit `n` event rows made by `row(i)` to a new lake at `dir`.
fn commit_events(dir: &Path, n: i64, row: impl Fn(i64) -> cynex_model::event::EventRecord) -> Lake {
    let lake = Lake::open(dir).unwrap();
    let mut cols = cynex_model::event::EventColumns::default();
    for i in 0..n {
        cols.append(&row(i));
    }
    let mut tx = lake.begin("s1", WriterOptions { threads: 1, ..Default::default() }).unwrap();
    tx.write(Table::Events, cols.finish().unwrap()).unwrap();
    tx.commit("ingest", vec![progress(1, true)]).unwrap();
    lake
}

/// The metadata of column `col` in every row group of every file of `table`.
fn column_chunks(dir: &Path, table: &str, col: &str) -> Vec<datafusion::parquet::file::metadata::ColumnChunkMetaData> {
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    let files = parquet_files(&dir.join(table));
    assert!(!files.is_empty(), "{table}");
    let mut out = Vec::new();
    for f in files {
        let r = SerializedFileReader::new(std::fs::File::open(&f).unwrap()).unwrap();
        for rg in r.metadata().row_groups() {
            out.push(rg.columns().iter().find(|c| c.column_path().string() == col).unwrap().clone());
        }
    }
    out
}

#[test]
fn unique_event_ids_skip_the_dictionary_and_repeated_values_keep_it() {
    use datafusion::parquet::basic::Encoding;
    let dir = tempfile::tempdir().unwrap();
    commit_events(dir.path(), 5_000, |i| cynex_model::event::EventRecord {
        time: 1_790_000_000_000_000 + i,
        raw_data: "{}".into(),
        format: Some("eve".into()),
        connection_info_community_uid: Some(format!("1:{i:020}=")),
        file_hashes_sha256: Some(format!("{i:064x}")),
        src_endpoint_port: Some(32_768 + (i as u16).wrapping_mul(7919) % 28_000),
        ..Default::default()
    });
    // Per row group: does the column have a dictionary page?
    let dict = |col: &str| -> Vec<bool> {
        column_chunks(dir.path(), "events", col).iter().map(|c| c.dictionary_page_offset().is_some()).collect()
    };
    for (col, why) in [
        ("connection_info_community_uid", "community ids are unique per flow"),
        ("file_hashes_sha256", "content hashes are nearly unique"),
        ("src_endpoint_port", "client ports are ephemeral"),
    ] {
        assert!(dict(col).iter().all(|d| !d), "{col}: {why}");
    }
    assert!(dict("format").iter().all(|d| *d), "a repeated value keeps its dictionary");
    for c in column_chunks(dir.path(), "events", "src_endpoint_port") {
        assert!(c.encodings().any(|e| e == Encoding::BYTE_STREAM_SPLIT), "client ports split into byte planes");
    }
}

/// The time column of every table, and `events.line`, are delta-encoded. Parquet tries a
/// dictionary first when one is enabled and uses the configured encoding only once the dictionary
/// page is full, which mostly-unique event times never fill: `events.time` was
/// dictionary-encoded at ~5 B a row.
#[test]
fn time_and_line_columns_are_delta_encoded_without_a_dictionary() {
    use datafusion::parquet::basic::Encoding;
    let dir = tempfile::tempdir().unwrap();
    let lake = commit_events(dir.path(), 20_000, |i| cynex_model::event::EventRecord {
        time: 1_790_000_000_000_000 + i * 997,
        raw_data: "{}".into(),
        line: Some(i as u64 + 1),
        ..Default::default()
    });
    let (bytes, _) = capture(20_000, 1);
    ingest(&lake, &bytes, 8_192);
    for (table, col) in [("events", "time"), ("events", "line"), ("packets", "ts")] {
        for c in column_chunks(dir.path(), table, col) {
            let enc: Vec<Encoding> = c.encodings().collect();
            assert!(
                enc.contains(&Encoding::DELTA_BINARY_PACKED) && !enc.contains(&Encoding::RLE_DICTIONARY),
                "{table}.{col}: {enc:?}"
            );
            assert!(c.dictionary_page_offset().is_none(), "{table}.{col} has a dictionary page");
        }
    }
}

/// A progress-only commit per input `in{i}` of sensor s1.
fn commit_inputs(lake: &Lake, inputs: std::ops::Range<u64>) {
    for i in inputs {
        let mut tx = lake.begin("s1", WriterOptions::default()).unwrap();
        tx.commit("ingest", vec![SourceProgress { id: format!("in{i}"), offset: i, ..progress(0, true) }]).unwrap();
    }
}

fn checkpoints(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("_commits"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".checkpoint.json"))
        .collect();
    v.sort();
    v
}

#[test]
fn opening_replays_only_the_commits_after_the_latest_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let (bytes, n) = capture(5_000, 1);
    ingest(&lake, &bytes, 1_000);
    commit_inputs(&lake, 0..600);
    let seq = lake.seq().unwrap();
    // One checkpoint every 256 commits, the two latest kept.
    assert_eq!(checkpoints(dir.path()), [256, 512].map(|s| format!("{s:020}.checkpoint.json")));
    let want = lake.snapshot().unwrap();
    let same = |l: &Lake| {
        let s = l.snapshot().unwrap();
        assert_eq!((s.seq, &s.files, &s.sources), (seq, &want.files, &want.sources));
        assert_eq!(count(l, "SELECT count(*) FROM packets") as u64, n);
    };
    // The commits before the older checkpoint are not read again: without them the lake opens
    // the same from the latest checkpoint...
    for s in 1..=256u64 {
        std::fs::remove_file(dir.path().join(format!("_commits/{s:020}.json"))).unwrap();
    }
    same(&Lake::open(dir.path()).unwrap());
    // ...and from the one before it when the latest is unreadable (that open, 344 commits past
    // its checkpoint, writes a new one).
    std::fs::write(dir.path().join("_commits/00000000000000000512.checkpoint.json"), b"{\"seq\": 5").unwrap();
    same(&Lake::open(dir.path()).unwrap());
    assert!(checkpoints(dir.path()).contains(&format!("{seq:020}.checkpoint.json")));
    // With no readable checkpoint the whole log is replayed, and its missing start is an error.
    for c in checkpoints(dir.path()) {
        std::fs::write(dir.path().join("_commits").join(c), b"").unwrap();
    }
    let err = Lake::open(dir.path()).err().expect("a log with its first commits missing does not open");
    assert!(err.to_string().contains("expected commit 1"), "{err}");
}

#[test]
fn pieces_of_an_input_merge_into_one_entry_and_overlaps_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let other = Lake::open(dir.path()).unwrap();
    let piece = |lo: u64, hi: u64| SourceProgress {
        id: "f@bus".into(),
        ranges: vec![(lo, hi)],
        read: 1,
        written: 1,
        ..progress(0, false)
    };
    let commit = |l: &Lake, pieces: Vec<SourceProgress>| {
        let mut tx = l.begin("s1", WriterOptions::default()).unwrap();
        tx.commit_pieces("bus", pieces)
    };
    // Out of order, from two writers, two pieces in one commit.
    commit(&lake, vec![piece(100, 200)]).unwrap();
    commit(&other, vec![piece(0, 50), piece(300, 400)]).unwrap();
    commit(&lake, vec![piece(50, 100)]).unwrap();
    let p = lake.source_progress("s1", "f@bus").unwrap().unwrap();
    assert_eq!((p.ranges.clone(), p.offset, p.read, p.written), (vec![(0, 200), (300, 400)], 200, 4, 4));
    // Bytes already committed cannot be committed again, by either writer, in part or whole;
    // the refused commit changes nothing.
    for (lo, hi) in [(150, 250), (0, 50), (350, 360), (199, 301)] {
        let err = commit(&other, vec![piece(lo, hi)]).unwrap_err();
        assert!(matches!(err, cynex_lake::Error::Conflict(_)), "{lo}..{hi}: {err}");
    }
    // Nor twice within one commit.
    assert!(commit(&lake, vec![piece(200, 250), piece(240, 260)]).is_err());
    assert_eq!(other.source_progress("s1", "f@bus").unwrap(), Some(p));
    let q = [("s1".to_string(), "f@bus".to_string(), 0, 500), ("s1".into(), "g@bus".into(), 0, 10)];
    assert_eq!(lake.uncommitted_pieces(&q).unwrap(), vec![vec![(200, 300), (400, 500)], vec![(0, 10)]]);
    // However many pieces, the snapshot (and every checkpoint) holds one entry for the input.
    for i in 0..300 {
        commit(&lake, vec![piece(1_000 + 2 * i, 1_001 + 2 * i)]).unwrap();
    }
    let reopened = Lake::open(dir.path()).unwrap();
    let s = reopened.snapshot().unwrap();
    assert_eq!(s.sources.len(), 1);
    let p = &s.sources[&("s1".to_string(), "f@bus".to_string())];
    assert_eq!(p.ranges.len(), 2 + 300);
    assert_eq!(p.read, 304);
}
