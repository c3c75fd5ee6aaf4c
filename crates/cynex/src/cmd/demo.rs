//! `cynex demo`: the README's first command. On a fresh machine, synthesize a day of darknet
//! traffic, ingest it, and print a first look at the lake — nothing to install, nothing to run.

use std::io::Write;
use std::path::Path;

use cynex_gen::DarknetConfig;
use cynex_lake::{Lake, QueryOptions};

use crate::cmd::{gen, ingest, lake as lakecmd, query};
use crate::output::{thousands, Format};

pub fn run(data: &Path, packets: u64, w: &mut dyn Write) -> anyhow::Result<()> {
    let demo_dir = data.join("demo");
    std::fs::create_dir_all(&demo_dir)?;
    let pcap = demo_dir.join("darknet-2026-11-01.pcap");
    let truth = gen::default_truth_path(&pcap);
    let cfg = DarknetConfig { packets, ..Default::default() };
    writeln!(
        w,
        "1/3 synthesizing {} packets of darknet traffic on {} -> {}",
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
    writeln!(w, "2/3 ingesting into {}", lake.root().display())?;
    let opts = ingest::IngestOptions { sensor: "demo-darknet".into(), ..Default::default() };
    let rep = ingest::ingest_pcap(&lake, std::slice::from_ref(&pcap), &opts)?;
    writeln!(w, "{}", rep.summary(lake.root(), &opts.sensor))?;
    writeln!(w, "3/3 a first look at the lake")?;
    lakecmd::stats(&lake, Format::Table, w)?;
    let q = QueryOptions::default();
    let looks = [
        (
            "traffic by protocol",
            "SELECT CASE proto WHEN 6 THEN 'tcp' WHEN 17 THEN 'udp' WHEN 1 THEN 'icmp' ELSE 'other' END AS protocol, \
             count(*) AS packets, count(DISTINCT src_ip4) AS sources FROM packets GROUP BY 1 ORDER BY packets DESC",
        ),
        (
            "top 10 destination ports of scans (TCP SYN, not backscatter)",
            "SELECT dst_port, count(*) AS packets, count(DISTINCT src_ip4) AS sources FROM packets \
             WHERE proto = 6 AND tcp_flags = 2 GROUP BY dst_port ORDER BY packets DESC LIMIT 10",
        ),
        (
            "packets carrying a scanning-tool fingerprint",
            "SELECT CASE WHEN fp & 4 > 0 THEN 'mirai' WHEN fp & 1 > 0 THEN 'zmap' WHEN fp & 2 > 0 THEN 'masscan' \
             WHEN fp & 8 > 0 THEN 'nmap-syn trait' WHEN fp & 16 > 0 THEN 'unicornscan trait' ELSE 'none' END AS fingerprint, \
             count(*) AS packets, count(DISTINCT src_ip4) AS sources FROM packets GROUP BY 1 ORDER BY packets DESC",
        ),
        (
            "backscatter (replies from DDoS victims) by hour",
            "SELECT hour, count(*) AS packets, count(DISTINCT src_ip4) AS repliers FROM packets \
             WHERE tags & 1 > 0 GROUP BY hour ORDER BY hour LIMIT 24",
        ),
    ];
    for (title, sql) in looks {
        writeln!(w, "\n{title}:")?;
        query::run(&lake, sql, Format::Table, &q, w)?;
    }
    writeln!(
        w,
        "\nnext: cynex query \"SELECT ip4_str(src_ip4) AS src, count(*) FROM packets WHERE fp & 4 > 0 GROUP BY 1 ORDER BY 2 DESC LIMIT 5\"\n      cynex gen darknet --packets 20000000 --out big.pcap && cynex ingest pcap big.pcap --sensor lab"
    )?;
    Ok(())
}
