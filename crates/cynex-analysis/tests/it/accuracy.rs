use std::collections::{BTreeMap, BTreeSet};

use cynex_analysis::{analyze, load_findings, AnalyzeOptions, Mode};
use cynex_gen::DarknetConfig;
use cynex_lake::Lake;
use cynex_model::ip::fmt_ip4;
use cynex_model::time::parse_rfc3339_us;
use cynex_model::Table;

use crate::{capture, config_for, ingest};

/// The tool a planted source must be attributed to (research scanners run ZMap 4.1; the surge
/// campaign's bots carry no known fingerprint).
fn expected_tool(tool: &str) -> Option<&str> {
    match tool {
        "research" => Some("zmap-4.1"),
        "unknown" => None,
        t => Some(t),
    }
}

#[test]
fn findings_match_ground_truth() {
    let cfg = DarknetConfig { packets: 1_000_000, seed: 7, ..Default::default() };
    let (truth, bytes) = capture(&cfg);
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    ingest(&lake, "tel1", "cap", &bytes);
    let opts = AnalyzeOptions {
        mode: Mode::Incremental { flush: true, rebuild: false },
        config: Some(config_for(&truth)),
        ..Default::default()
    };
    let report = analyze(&lake, &opts).unwrap();
    assert_eq!(report.rows, truth.packets);
    let findings = load_findings(&lake, "all", Table::Findings).unwrap();

    // Tool attribution, per source: precision and recall >= 0.99 over sources that sent at least
    // k (3) probes — fewer cannot be attributed by design.
    let predicted: BTreeMap<String, String> = findings
        .iter()
        .filter(|f| f.kind == "tool")
        .map(|f| (fmt_ip4(f.ip4.unwrap()), f.tool.clone().unwrap()))
        .collect();
    let mut attributable = 0;
    let mut correct = 0;
    let mut wrong = Vec::new();
    let mut missed = Vec::new();
    let truth_tool: BTreeMap<&str, &str> = truth.sources.iter().map(|s| (s.ip.as_str(), s.tool.name())).collect();
    for s in &truth.sources {
        let Some(want) = expected_tool(s.tool.name()) else { continue };
        if s.packets < 3 {
            continue;
        }
        attributable += 1;
        match predicted.get(&s.ip) {
            Some(got) if got == want => correct += 1,
            Some(got) => wrong.push(format!("{} {} -> {got}", s.ip, s.tool.name())),
            None => missed.push(format!("{} {} ({} packets)", s.ip, s.tool.name(), s.packets)),
        }
    }
    let false_pos: Vec<String> = predicted
        .iter()
        .filter(|(ip, tool)| truth_tool.get(ip.as_str()).and_then(|t| expected_tool(t)) != Some(tool.as_str()))
        .map(|(ip, tool)| format!("{ip} -> {tool} (truth {:?})", truth_tool.get(ip.as_str())))
        .collect();
    let precision = correct as f64 / predicted.len().max(1) as f64;
    let recall = correct as f64 / attributable as f64;
    eprintln!(
        "tools: {attributable} attributable, {} predicted, {correct} correct; precision {precision:.4} recall {recall:.4}",
        predicted.len()
    );
    assert!(attributable > 250, "too few planted sources to judge: {attributable}");
    assert!(precision >= 0.99, "precision {precision}: wrong {wrong:?} false positives {false_pos:?}");
    assert!(recall >= 0.99, "recall {recall}: missed {missed:?} wrong {wrong:?}");
    // Every tool is represented.
    let tools: BTreeSet<&str> = predicted.values().map(|s| s.as_str()).collect();
    for t in ["mirai", "zmap", "zmap-4.1", "masscan", "nmap", "unicornscan"] {
        assert!(tools.contains(t), "no {t} attributed: {tools:?}");
    }

    // Backscatter: every victim meeting CAIDA's thresholds found, no other victim reported.
    let found: BTreeSet<String> =
        findings.iter().filter(|f| f.kind == "backscatter").map(|f| fmt_ip4(f.ip4.unwrap())).collect();
    let must: BTreeSet<String> = truth.victims.iter().filter(|v| v.meets_dos_threshold).map(|v| v.ip.clone()).collect();
    let victims: BTreeSet<String> = truth.victims.iter().map(|v| v.ip.clone()).collect();
    let tiny: BTreeSet<String> =
        truth.victims.iter().filter(|v| !v.meets_dos_threshold).map(|v| v.ip.clone()).collect();
    eprintln!("victims: {} planted ({} tiny), {} found", victims.len(), tiny.len(), found.len());
    assert!(must.len() >= 10 && !tiny.is_empty(), "capture too small to judge victims");
    let missed: Vec<_> = must.difference(&found).collect();
    assert!(missed.is_empty(), "victims not found: {missed:?}");
    let false_victims: Vec<_> = found.iter().filter(|v| !must.contains(*v)).collect();
    assert!(false_victims.is_empty(), "false victims: {false_victims:?}");

    // The planted surge is alerted within two hours of its start, on its port.
    let surge = truth.surge.as_ref().unwrap();
    let start = parse_rfc3339_us(&surge.start).unwrap();
    let surges: Vec<_> = findings.iter().filter(|f| f.kind == "surge").collect();
    let hit = surges
        .iter()
        .find(|f| f.port == Some(surge.port))
        .unwrap_or_else(|| panic!("no surge on {}: {surges:?}", surge.port));
    let delay_s = (hit.end_time - start) as f64 / 1e6;
    eprintln!(
        "surge on {} alerted at the end of the hour {delay_s:.0} s after it began; {} surge findings",
        surge.port,
        surges.len()
    );
    assert!(delay_s <= 7_200.0, "surge alerted {delay_s} s after its start");
    assert_eq!(surges.iter().filter(|f| f.port == Some(surge.port)).count(), 1, "one alert per incident");
    let others: Vec<_> =
        surges.iter().filter(|f| f.port != Some(surge.port)).map(|f| (f.port, f.uniques, f.score)).collect();
    assert!(others.len() <= 2, "spurious surges: {others:?}");

    // Scan events: every attributed Mirai/Masscan source has scan events on its ports.
    let scans: BTreeSet<String> =
        findings.iter().filter(|f| f.kind == "scan").map(|f| fmt_ip4(f.ip4.unwrap())).collect();
    assert!(!scans.is_empty());
    for f in findings.iter().filter(|f| f.kind == "scan") {
        assert!(f.uniques.unwrap() >= 10 && f.rate.unwrap() >= 10.0, "{f:?}");
        assert!(f.time <= f.end_time);
    }
    // Research scanners carry their organisation's name.
    let labelled: BTreeSet<&str> = findings.iter().filter_map(|f| f.label.as_deref()).collect();
    for r in &truth.research {
        assert!(labelled.contains(r.name.as_str()), "{} not labelled", r.name);
    }
    // Statistics: the day's packet total equals the capture's.
    assert!(report.stats_days >= 1);

    // Campaigns: the planted surge wave is one campaign on its port; every campaign's members
    // share the campaign's tool in the ground truth (no mixing of tools).
    let campaigns = load_findings(&lake, "all", Table::Campaigns).unwrap();
    assert_eq!(report.campaigns, campaigns.len() as u64);
    let wave: Vec<_> = campaigns.iter().filter(|c| c.port == Some(surge.port)).collect();
    assert_eq!(wave.len(), 1, "the surge wave as one campaign: {wave:?}");
    let wave_sources = truth.sources.iter().filter(|s| s.ports == [surge.port]).count() as u64;
    eprintln!(
        "campaigns: {}; the surge wave has {} of {wave_sources} planted sources",
        campaigns.len(),
        wave[0].uniques.unwrap()
    );
    assert!(wave[0].uniques.unwrap() >= 10, "{:?}", wave[0]);
    for c in &campaigns {
        let want = c.tool.as_deref();
        for ip in c.evidence["sample_sources"].as_array().unwrap() {
            let t = truth_tool.get(ip.as_str().unwrap()).copied().and_then(expected_tool);
            if want.is_some() {
                assert_eq!(t, want, "campaign {} member {ip}", c.id);
            }
        }
        assert!(c.evidence["method"].as_str().unwrap().contains("identical set of targeted ports"));
    }
}
