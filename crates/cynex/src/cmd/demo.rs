//! `cynex demo`: the README's first command. On a fresh machine, with nothing to install: a data
//! directory with a synthesized week of darknet traffic (ending at the start of today, UTC) and
//! two members' sensor logs (an ISP's IDS, a university's honeypot), ingested, analysed, alerted
//! on and published as intelligence; a demo operator and the two members with printed
//! credentials; then `cynex serve` on 127.0.0.1 with the dashboard and member portal.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use clap::Args;
use cynex_gen::DarknetConfig;
use cynex_lake::Lake;
use cynex_store::{OrgKind, Role, Store};

use crate::cmd::{analyze, gen, ingest, members, report};
use crate::output::thousands;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Darknet packets to synthesize over the week.
    #[arg(long, default_value_t = 3_000_000)]
    pub packets: u64,
    /// Days of traffic, ending at the start of today (UTC).
    #[arg(long, default_value_t = 7)]
    pub days: u64,
    /// Where the dashboard listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Prepare everything, print the credentials, and exit without serving.
    #[arg(long)]
    pub no_serve: bool,
}

const DAY_US: i64 = 86_400_000_000;
const DEMO_USERS: [(&str, &str, Role); 3] =
    [("operator", "nexus", Role::Admin), ("isp", "demo-isp", Role::Member), ("univ", "demo-univ", Role::Member)];

fn step(w: &mut dyn Write, t0: Instant, n: u32, what: &str) -> anyhow::Result<()> {
    writeln!(w, "[{n}/7 {:>5.1}s] {what}", t0.elapsed().as_secs_f64())?;
    w.flush()?;
    Ok(())
}

/// The demo's organisations and users; returns (user, password) pairs (new passwords each run).
async fn accounts(
    store: &Store,
    bot: Option<&str>,
    victim: Option<&str>,
    honeypot_net: &str,
) -> anyhow::Result<Vec<(String, String, String)>> {
    for (name, kind) in [("nexus", OrgKind::Operator), ("demo-isp", OrgKind::Member), ("demo-univ", OrgKind::Member)] {
        if store.org(name).await.is_err() {
            store.add_org_of_kind(name, kind).await?;
        }
    }
    // demo-isp's space holds a planted bot and a DDoS victim; demo-univ's the honeypot.
    for ip in bot.iter().chain(victim.iter()) {
        store.add_prefix("demo-isp", format!("{ip}/24").parse().map_err(anyhow::Error::msg)?).await?;
    }
    store.add_prefix("demo-univ", honeypot_net.parse().map_err(anyhow::Error::msg)?).await?;
    if store.watches(Some("demo-univ")).await?.is_empty() {
        store.add_watch("demo-univ", "tag:mirai".parse()?).await?;
        store.add_watch("demo-univ", "port:37215/tcp".parse()?).await?;
    }
    let mut out = Vec::new();
    for (user, org, role) in DEMO_USERS {
        let pw = cynex_store::generate_password()?;
        match store.user(user).await {
            Ok(_) => store.set_password(user, &pw).await?,
            Err(_) => {
                store.add_user(user, org, role, Some(&pw)).await?;
            }
        }
        out.push((user.to_string(), org.to_string(), pw));
    }
    Ok(out)
}

pub fn run(data: &Path, db: Option<&str>, a: &DemoArgs, w: &mut dyn Write) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let demo_dir = data.join("demo");
    std::fs::create_dir_all(&demo_dir)?;
    let today = cynex_model::time::now_us().div_euclid(DAY_US) * DAY_US;
    let days = a.days.clamp(1, 60);
    let start = today - days as i64 * DAY_US;
    let first_day = cynex_model::time::date_string(start / DAY_US);
    let cfg = DarknetConfig { packets: a.packets, start_us: start, duration_s: days * 86_400, ..Default::default() };

    step(
        w,
        t0,
        1,
        &format!(
            "synthesizing {days} days of darknet traffic from {first_day} ({} packets on {})",
            thousands(a.packets),
            cfg.dark
        ),
    )?;
    let pcap = demo_dir.join(format!("darknet-{first_day}-{days}d.pcap"));
    let truth = gen::default_truth_path(&pcap);
    let t = gen::darknet(&cfg, &pcap, &truth)?;
    writeln!(
        w,
        "         {} scanning sources of {} tools, {} DDoS victims, a surge on port {}; ground truth {}",
        thousands(t.sources.len() as u64),
        t.sources.iter().map(|s| s.tool.name()).collect::<std::collections::BTreeSet<_>>().len(),
        t.victims.len(),
        cfg.surge_port,
        truth.display()
    )?;
    let eve = demo_dir.join(format!("ids-demo-isp-{first_day}.json.zst"));
    let et = gen::eve(
        &cynex_gen::EveConfig {
            events: (a.packets / 30).max(2_000),
            start_us: start,
            duration_s: days * 86_400,
            ..Default::default()
        },
        &eve,
        &gen::default_truth_path(&eve),
    )?;
    let honeypot_ip = "203.0.113.25";
    let cowrie = demo_dir.join(format!("cowrie-demo-univ-{first_day}.json"));
    let ct = gen::generated(&cowrie, &gen::default_truth_path(&cowrie), |out| {
        let c = cynex_gen::CowrieConfig {
            sessions: (a.packets / 1_000).max(300),
            start_us: start,
            duration_s: days * 86_400,
            sensor: "hp-univ-1".into(),
            dst_ip: honeypot_ip.into(),
            ..Default::default()
        };
        Ok(cynex_gen::generate_cowrie(&c, out)?.0)
    })?;
    writeln!(
        w,
        "         + {} IDS events (demo-isp), {} honeypot sessions (demo-univ)",
        thousands(et.events),
        thousands(ct.sessions)
    )?;

    step(w, t0, 2, "ingesting into the lake")?;
    let lake = Lake::open(data.join("lake"))?;
    for (path, sensor, format, org) in [
        (&pcap, "demo-darknet", ingest::InputFormat::Pcap, None),
        (&eve, "ids-isp-1", ingest::InputFormat::Eve, Some("demo-isp")),
        (&cowrie, "hp-univ-1", ingest::InputFormat::Cowrie, Some("demo-univ")),
    ] {
        let opts = ingest::IngestOptions { sensor: sensor.into(), progress: false, ..Default::default() };
        let rep = ingest::ingest(&lake, std::slice::from_ref(path), &opts, format, org)?;
        writeln!(
            w,
            "         {sensor}: {} {} written, {} quarantined",
            thousands(rep.written()),
            rep.unit(),
            thousands(rep.quarantined())
        )?;
    }

    step(w, t0, 3, "analysing: scan events, tools, backscatter, port surges, campaigns, statistics")?;
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
        geoip: cynex_analysis::geo::Geo::find_in(&data.join("geoip")),
        ..Default::default()
    };
    let mut sink = Vec::new();
    let ar = analyze::run(&lake, &aopts, &mut sink)?;
    let kinds: Vec<String> = ar.findings.iter().map(|(k, n)| format!("{} {k}", thousands(*n))).collect();
    writeln!(
        w,
        "         {} packets in {:.1} s: {}; {} campaigns",
        thousands(ar.rows),
        ar.seconds,
        kinds.join(", "),
        ar.campaigns
    )?;

    let bot = t.sources.iter().find(|s| s.tool.name() == "mirai" && s.packets >= 20).map(|s| s.ip.clone());
    let victim = t.victims.iter().find(|v| v.meets_dos_threshold).map(|v| v.ip.clone());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let creds = rt.block_on(async {
        step(w, t0, 4, "members, users and alerts")?;
        let store = members::open_store(data, db).await?;
        let creds = accounts(&store, bot.as_deref(), victim.as_deref(), "203.0.113.0/24").await?;
        let mut sink = Vec::new();
        let rep = members::raise(&lake, &store, &aopts.scope, &Default::default(), false, &mut sink).await?;
        writeln!(w, "         {} alerts for demo-isp and demo-univ ({} updated)", rep.created, rep.updated)?;

        step(w, t0, 5, "publishing intelligence (STIX 2.1 under TLP 2.0, served over TAXII 2.1)")?;
        let hub = cynex_intel::Hub::new(store.clone());
        let p = cynex_intel::publish::publish(&hub, &lake, &cynex_intel::publish::PublishOptions::default()).await?;
        writeln!(
            w,
            "         {} scanner indicators, {} campaigns, {} member alerts, {} daily reports ({} objects new or versioned)",
            thousands(p.scanners),
            p.campaigns,
            p.member_hosts + p.member_victims,
            p.daily_reports,
            thousands(p.added)
        )?;
        store.close().await;
        anyhow::Ok(creds)
    })?;

    step(w, t0, 6, "writing the observation report of the last day")?;
    let r = report::build(&lake, &aopts.scope, today - DAY_US, today)?;
    let mut sink = Vec::new();
    report::write(&r, &demo_dir.join("report"), &mut sink)?;
    writeln!(w, "         {}", demo_dir.join("report.html").display())?;

    writeln!(w, "\nlog in with (passwords are new on every run of the demo):")?;
    for (user, org, pw) in &creds {
        writeln!(w, "  {user:<9} {pw}   ({org})")?;
    }
    let url = format!("http://{}/", a.listen);
    if a.no_serve {
        writeln!(w, "\nready: run `cynex serve --listen {}` and open {url}", a.listen)?;
        return Ok(());
    }
    step(w, t0, 7, "serving the dashboard and member portal (Ctrl-C to stop)")?;
    writeln!(w, "\nopen {url}")?;
    w.flush()?;
    let mut sc = cynex_server::ServerConfig::new(data.to_path_buf());
    sc.listen = a.listen;
    crate::cmd::serve::run(sc, db, w)
}
