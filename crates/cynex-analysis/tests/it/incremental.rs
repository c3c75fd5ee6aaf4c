use std::collections::BTreeMap;

use cynex_analysis::{analyze, load_findings, AnalyzeOptions, Mode};
use cynex_gen::DarknetConfig;
use cynex_lake::Lake;
use cynex_model::Table;

use crate::{capture, config_for, ingest};

fn ids(lake: &Lake, scope: &str) -> BTreeMap<String, (String, u64)> {
    load_findings(lake, scope, Table::Findings)
        .unwrap()
        .into_iter()
        .map(|f| (f.id.clone(), (f.kind.clone(), f.packets)))
        .collect()
}

/// Two days arriving one after the other, analysed after each, give exactly the findings of one
/// batch run over both; a re-run with nothing new changes nothing.
#[test]
fn incremental_equals_batch_and_reruns_are_idempotent() {
    let day1 = DarknetConfig { packets: 150_000, seed: 11, ..Default::default() };
    let day2 =
        DarknetConfig { packets: 150_000, seed: 12, start_us: day1.start_us + 86_400_000_000, ..Default::default() };
    let (t1, c1) = capture(&day1);
    let (_t2, c2) = capture(&day2);
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let cfg = config_for(&t1);
    let inc = |flush| AnalyzeOptions {
        mode: Mode::Incremental { flush, rebuild: false },
        config: Some(cfg.clone()),
        ..Default::default()
    };
    ingest(&lake, "tel1", "day1", &c1);
    let r1 = analyze(&lake, &inc(false)).unwrap();
    assert_eq!(r1.rows, t1.packets);
    assert!(r1.ongoing > 0, "a run that does not flush leaves open items as ongoing");
    let after1 = ids(&lake, "all");
    // Nothing new: nothing read, nothing added.
    let again = analyze(&lake, &inc(false)).unwrap();
    assert_eq!((again.rows, again.files), (0, 0));
    assert_eq!(ids(&lake, "all"), after1);
    assert_eq!(load_findings(&lake, "all", Table::Ongoing).unwrap().len() as u64, again.ongoing);

    ingest(&lake, "tel1", "day2", &c2);
    let r2 = analyze(&lake, &inc(true)).unwrap();
    assert_eq!(r2.rows, 150_000);
    assert!(load_findings(&lake, "all", Table::Ongoing).unwrap().is_empty(), "flush closes everything");
    let incremental = ids(&lake, "all");

    let batch = AnalyzeOptions {
        scope: "batch".into(),
        mode: Mode::Batch { from: i64::MIN, to: i64::MAX },
        config: Some(cfg.clone()),
        ..Default::default()
    };
    let rb = analyze(&lake, &batch).unwrap();
    assert_eq!(rb.rows, t1.packets + 150_000);
    let batch_ids = ids(&lake, "batch");
    let only_inc: Vec<_> = incremental.iter().filter(|(k, v)| batch_ids.get(*k) != Some(v)).take(5).collect();
    let only_batch: Vec<_> = batch_ids.iter().filter(|(k, v)| incremental.get(*k) != Some(v)).take(5).collect();
    assert!(only_inc.is_empty() && only_batch.is_empty(), "incremental {only_inc:?} vs batch {only_batch:?}");
    // Campaigns: the incremental scope folds its earlier findings from the lake (only the
    // columns grouping reads) with this run's; the batch run groups its findings in memory. Both
    // equal grouping every finding the scope holds, read back whole.
    let campaigns = |scope: &str| -> Vec<(String, u64, Option<u64>)> {
        load_findings(&lake, scope, Table::Campaigns)
            .unwrap()
            .into_iter()
            .map(|c| (c.id, c.packets, c.uniques))
            .collect()
    };
    let all = load_findings(&lake, "all", Table::Findings).unwrap();
    let reference: Vec<_> = cynex_analysis::campaigns::detect(&all, &Default::default())
        .into_iter()
        .map(|c| (c.id, c.packets, c.uniques))
        .collect();
    assert!(!reference.is_empty(), "the capture holds campaigns");
    assert_eq!(campaigns("all"), reference);
    assert_eq!(campaigns("batch"), reference);
    // A second batch run replaces the first rather than adding to it.
    analyze(&lake, &batch).unwrap();
    assert_eq!(ids(&lake, "batch"), batch_ids);
    // Batch into the incremental scope is refused.
    let err = analyze(&lake, &AnalyzeOptions { scope: "all".into(), ..batch }).unwrap_err();
    assert!(err.to_string().contains("incremental"), "{err}");
}

/// A memory limit far below what the state needs closes events early instead of failing: every
/// row is still analysed and the same victims are found.
#[test]
fn memory_limit_closes_early_and_keeps_findings() {
    let day = DarknetConfig { packets: 300_000, seed: 21, ..Default::default() };
    let (t, c) = capture(&day);
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    ingest(&lake, "tel1", "day", &c);
    let mut cfg = config_for(&t);
    let roomy = analyze(
        &lake,
        &AnalyzeOptions {
            scope: "roomy".into(),
            mode: Mode::Batch { from: i64::MIN, to: i64::MAX },
            config: Some(cfg.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    cfg.memory_mb = 1;
    let tight = analyze(
        &lake,
        &AnalyzeOptions {
            scope: "tight".into(),
            mode: Mode::Incremental { flush: false, rebuild: false },
            config: Some(cfg),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(roomy.evicted, 0);
    assert!(tight.evicted > 0, "{tight:?}");
    assert_eq!(tight.rows, roomy.rows);
    let victims = |scope: &str| -> std::collections::BTreeSet<u32> {
        let mut v: Vec<_> = load_findings(&lake, scope, Table::Findings).unwrap();
        v.extend(load_findings(&lake, scope, Table::Ongoing).unwrap());
        v.into_iter().filter(|f| f.kind == "backscatter").filter_map(|f| f.ip4).collect()
    };
    assert_eq!(victims("tight"), victims("roomy"));
}

/// The same capture written as one file per hour or as three interleaved files per hour (three
/// encoder threads) gives the same findings: files overlapping in time are merged by time before
/// the engine sees their rows, so no key looks idle inside one file.
#[test]
fn file_layout_does_not_change_findings() {
    let day = DarknetConfig { packets: 200_000, seed: 51, ..Default::default() };
    let (t, c) = capture(&day);
    let run = |threads: usize| {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path()).unwrap();
        crate::ingest_threads(&lake, "tel1", "day", &c, threads);
        let opts = AnalyzeOptions {
            mode: Mode::Incremental { flush: true, rebuild: false },
            config: Some(config_for(&t)),
            ..Default::default()
        };
        let r = analyze(&lake, &opts).unwrap();
        assert_eq!(r.rows, t.packets);
        (r.files, ids(&lake, "all"))
    };
    let (files1, one) = run(1);
    let (files3, three) = run(3);
    assert!(files3 > files1, "{files3} files vs {files1}");
    assert!(one.values().filter(|(k, _)| k == "backscatter").count() > 3);
    let differ: Vec<_> = one.iter().filter(|(k, v)| three.get(*k) != Some(v)).take(5).collect();
    assert!(differ.is_empty() && one.len() == three.len(), "one file vs three: {differ:?}");
}
