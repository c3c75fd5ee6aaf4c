//! `cynex demo`: the README's first command. On a fresh machine, synthesize a day of darknet
//! traffic, ingest it, analyse it, and print what was found and where the report is — nothing to
//! install, nothing to run.

use std::io::Write;
use std::path::Path;

use cynex_gen::DarknetConfig;
use cynex_lake::{Lake, QueryOptions};

use crate::cmd::{analyze, gen, ingest, lake as lakecmd, members, query, report};
use crate::output::{thousands, Format};

pub fn run(data: &Path, db: Option<&str>, packets: u64, w: &mut dyn Write) -> anyhow::Result<()> {
    let demo_dir = data.join("demo");
    std::fs::create_dir_all(&demo_dir)?;
    let pcap = demo_dir.join("darknet-2026-11-01.pcap");
    let truth = gen::default_truth_path(&pcap);
    let cfg = DarknetConfig { packets, ..Default::default() };
    writeln!(
        w,
        "1/4 synthesizing {} packets of darknet traffic on {} -> {}",
        thousands(packets),
        cfg.dark,
        pcap.display()
    )?;
    let t = gen::darknet(&cfg, &pcap, &truth)?;
    writeln!(
        w,
        "    {} packets, {} scanning sources, {} backscatter victims; ground truth in {}",
        thousands(t.packets),
        thousands(t.sources.len() as u64),
        t.victims.len(),
        truth.display()
    )?;
    let lake = Lake::open(data.join("lake"))?;
    writeln!(w, "2/4 ingesting into {}", lake.root().display())?;
    let opts = ingest::IngestOptions { sensor: "demo-darknet".into(), ..Default::default() };
    let rep = ingest::ingest_pcap(&lake, std::slice::from_ref(&pcap), &opts)?;
    writeln!(w, "{}", rep.summary(lake.root(), &opts.sensor))?;
    // A member's IDS log for the same day, as `cynex ingest eve` takes it.
    let eve = demo_dir.join("ids-demo-isp-2026-11-01.json.zst");
    let eve_cfg =
        cynex_gen::EveConfig { events: (packets / 20).max(1_000), start_us: cfg.start_us, ..Default::default() };
    let et = gen::eve(&eve_cfg, &eve, &gen::default_truth_path(&eve))?;
    writeln!(w, "    + {} IDS events from member demo-isp ({})", thousands(et.events), eve.display())?;
    let eopts = ingest::IngestOptions { sensor: "demo-ids".into(), ..Default::default() };
    let erep = ingest::ingest(&lake, std::slice::from_ref(&eve), &eopts, ingest::InputFormat::Eve, Some("demo-isp"))?;
    writeln!(w, "{}", erep.summary(lake.root(), &eopts.sensor))?;
    lakecmd::stats(&lake, Format::Table, w)?;
    writeln!(w, "\n3/4 analysing: scan events, tools, backscatter, port surges, statistics")?;
    let config = cynex_analysis::AnalysisConfig {
        dark: vec![cfg.dark],
        // The synthetic research organisations, as an operator's research-scanner list.
        research: t
            .research
            .iter()
            .filter_map(|r| {
                Some(cynex_analysis::research::ResearchOrg {
                    name: r.name.clone(),
                    prefixes: vec![r.prefix.parse().ok()?],
                })
            })
            .collect(),
        ..Default::default()
    };
    let aopts = cynex_analysis::AnalyzeOptions {
        mode: cynex_analysis::Mode::Incremental { flush: true, rebuild: false },
        config: Some(config),
        ..Default::default()
    };
    analyze::run(&lake, &aopts, w)?;
    // A member ISP whose space holds one planted bot and one DDoS victim: what DAEDALUS tells it.
    let bot = t.sources.iter().find(|s| s.tool.name() == "mirai" && s.packets >= 20).map(|s| s.ip.clone());
    let victim = t.victims.iter().find(|v| v.meets_dos_threshold).map(|v| v.ip.clone());
    members::block_on(async {
        let store = members::open_store(data, db).await?;
        if store.org("demo-isp").await.is_err() {
            store.add_org("demo-isp").await?;
        }
        for ip in bot.iter().chain(&victim) {
            store.add_prefix("demo-isp", format!("{ip}/24").parse().map_err(anyhow::Error::msg)?).await?;
        }
        members::raise(&lake, &store, &aopts.scope, &Default::default(), w).await?;
        let org = store.org("demo-isp").await?;
        let f = cynex_store::AlertFilter { org_id: Some(org.id), ..Default::default() };
        writeln!(w, "alerts for member demo-isp:")?;
        members::alerts_list(&store, &f, false, w).await?;
        store.close().await;
        anyhow::Ok(())
    })?;
    writeln!(w, "\n4/4 what the telescope saw")?;
    let req = analyze::StatsRequest {
        scope: aopts.scope.clone(),
        bin: "1d".into(),
        from: None,
        to: None,
        format: Format::Table,
    };
    analyze::stats(&lake, &req, w)?;
    let q = QueryOptions::default();
    let looks = [
        (
            "findings",
            "SELECT kind, count(*) AS findings, sum(packets) AS packets FROM findings GROUP BY kind ORDER BY findings DESC",
        ),
        (
            "largest DDoS attacks seen through backscatter",
            "SELECT ip4_str(ip4) AS victim, time, traffic AS vectors, packets, CAST(rate AS BIGINT) AS est_attack_pps \
             FROM findings WHERE kind = 'backscatter' ORDER BY packets DESC LIMIT 5",
        ),
        (
            "largest scanning campaigns",
            "SELECT time, coalesce(tool, 'unattributed') AS tool, label AS ports, uniques AS sources, packets \
             FROM campaigns ORDER BY uniques DESC, time LIMIT 5",
        ),
        (
            "top IDS alerts reported by members",
            "SELECT organisation, finding_info_title AS signature, count(*) AS alerts FROM events \
             WHERE event_type = 'alert' GROUP BY 1, 2 ORDER BY alerts DESC LIMIT 5",
        ),
        (
            "port surges",
            "SELECT time, port, label, uniques AS sources, round(score, 1) AS z FROM findings WHERE kind = 'surge' ORDER BY time",
        ),
    ];
    for (title, sql) in looks {
        writeln!(w, "{title}:")?;
        query::run(&lake, sql, Format::Table, &q, w)?;
        writeln!(w)?;
    }
    let day = cfg.start_us - cfg.start_us.rem_euclid(86_400_000_000);
    let r = report::build(&lake, &aopts.scope, day, day + 86_400_000_000)?;
    report::write(&r, &demo_dir.join("report"), w)?;
    writeln!(
        w,
        "\nnext: open {} in a browser\n      cynex query \"SELECT ip4_str(ip4) AS source, tool, evidence FROM findings WHERE kind = 'tool' LIMIT 5\"\n      cynex stats --bin 1h",
        demo_dir.join("report.html").display()
    )?;
    Ok(())
}
