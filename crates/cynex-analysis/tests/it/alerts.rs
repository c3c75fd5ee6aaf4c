//! Member alerts on a generated capture: one alert per incident in the member's space, nothing
//! from another member's, watches, idempotent re-runs, and signed webhook delivery with retries
//! against a real HTTP receiver.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cynex_analysis::alerts::{alert_kind, raise_alerts, AlertOptions};
use cynex_analysis::webhook::{self, DeliverOptions, WebhookKey};
use cynex_analysis::{analyze, load_findings, AnalyzeOptions, Finding, Mode};
use cynex_gen::DarknetConfig;
use cynex_lake::Lake;
use cynex_model::ip::{fmt_ip4, Ipv4Net};
use cynex_model::Table;
use cynex_store::{AlertFilter, Store};

use crate::{capture, config_for, ingest};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Requests a receiver saw: (signature header, body).
type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A webhook receiver on loopback answering 500 to the first `fail_first` requests, then 200.
fn receiver(fail_first: usize) -> (String, Seen) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let s = Arc::clone(&seen);
    std::thread::spawn(move || {
        for (n, conn) in l.incoming().enumerate() {
            let Ok(mut c) = conn else { continue };
            let mut r = BufReader::new(c.try_clone().unwrap());
            let (mut len, mut sig) = (0usize, String::new());
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if lower.starts_with("x-cynex-signature:") {
                    sig = line.split_once(':').unwrap().1.trim().to_string();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            s.lock().unwrap().push((sig, body));
            let status = if n < fail_first { "500 Internal Server Error" } else { "200 OK" };
            let _ = write!(c, "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, seen)
}

fn net24(ip: &str) -> Ipv4Net {
    format!("{ip}/24").parse().unwrap()
}

#[test]
fn member_alerts_one_per_incident_isolated_idempotent_and_delivered() {
    let cfg = DarknetConfig { packets: 300_000, seed: 11, ..Default::default() };
    let (truth, bytes) = capture(&cfg);
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake")).unwrap();
    ingest(&lake, "tel1", "cap", &bytes);
    let opts = AnalyzeOptions {
        mode: Mode::Incremental { flush: true, rebuild: false },
        config: Some(config_for(&truth)),
        ..Default::default()
    };
    analyze(&lake, &opts).unwrap();
    let findings = load_findings(&lake, "all", Table::Findings).unwrap();

    // acme holds the /24 of a Mirai bot and of a DDoS victim; globex the /24 of a Masscan source.
    let bot = truth.sources.iter().find(|s| s.tool.name() == "mirai" && s.packets >= 20).expect("a mirai bot");
    let victim = truth.victims.iter().find(|v| v.meets_dos_threshold).expect("a victim");
    let other = truth.sources.iter().find(|s| s.tool.name() == "masscan" && s.packets >= 20).expect("masscan");
    let acme_space = [net24(&bot.ip), net24(&victim.ip)];
    let globex_space = [net24(&other.ip)];
    let surge_port = truth.surge.as_ref().unwrap().port;

    let (url, seen) = receiver(2);
    rt().block_on(async {
        let store = Store::open_in(dir.path()).await.unwrap();
        let acme = store.add_org("acme").await.unwrap();
        let globex = store.add_org("globex").await.unwrap();
        for p in acme_space {
            store.add_prefix("acme", p).await.unwrap();
        }
        store.add_prefix("globex", globex_space[0]).await.unwrap();
        store.add_watch("acme", format!("port:{surge_port}/tcp").parse().unwrap()).await.unwrap();
        store.set_webhook("acme", Some(&url), false).await.unwrap();
        // globex's endpoint is down: its deliveries are retried, then given up, and kept.
        store.set_webhook("globex", Some("http://127.0.0.1:9/down"), false).await.unwrap();

        // A run interrupted after its first transaction, then a full run: the same alerts as one
        // clean run (checked below against what the findings imply).
        let small = AlertOptions { chunk: 50, ..Default::default() };
        raise_alerts(&store, &findings[..findings.len() / 3], &small).await.unwrap();
        let rep = raise_alerts(&store, &findings, &AlertOptions::default()).await.unwrap();
        assert!(rep.matched > 0);
        let again = raise_alerts(&store, &findings, &AlertOptions::default()).await.unwrap();
        assert_eq!((again.matched, again.created, again.updated, again.deliveries_queued), (0, 0, 0, 0));

        let alerts_of = |org: &str| {
            let f = AlertFilter { org_id: Some(org.to_string()), ..Default::default() };
            let store = &store;
            async move { store.alerts(&f).await.unwrap() }
        };
        let acme_alerts = alerts_of(&acme.id).await;
        let globex_alerts = alerts_of(&globex.id).await;

        // Expected from the findings: one infected-host alert per source address in the space, one
        // ddos-victim alert per victim address in it.
        let in_space = |f: &Finding, space: &[Ipv4Net]| f.ip4.is_some_and(|ip| space.iter().any(|n| n.contains(ip)));
        let want = |space: &[Ipv4Net], kinds: &[&str]| -> BTreeSet<String> {
            findings
                .iter()
                .filter(|f| kinds.contains(&f.kind.as_str()) && in_space(f, space))
                .map(|f| fmt_ip4(f.ip4.unwrap()))
                .collect()
        };
        let got = |alerts: &[cynex_store::Alert], kind: &str| -> Vec<String> {
            alerts.iter().filter(|a| a.kind == kind).map(|a| a.subject.clone()).collect()
        };
        let hosts = got(&acme_alerts, alert_kind::INFECTED_HOST);
        assert_eq!(hosts.iter().cloned().collect::<BTreeSet<_>>(), want(&acme_space, &["scan", "tool"]));
        assert_eq!(hosts.len(), want(&acme_space, &["scan", "tool"]).len(), "one alert per incident: {hosts:?}");
        assert!(hosts.contains(&bot.ip), "the planted bot {} is reported", bot.ip);
        let bot_alert = acme_alerts.iter().find(|a| a.subject == bot.ip).unwrap();
        let bot_findings = findings.iter().filter(|f| f.ip4.map(fmt_ip4).as_deref() == Some(bot.ip.as_str()));
        assert_eq!(bot_alert.findings, bot_findings.count() as i64, "every finding of the bot merged into one alert");
        assert!(bot_alert.evidence["tools"].to_string().contains("mirai"), "{}", bot_alert.evidence);
        assert!(bot_alert.summary.contains("mirai"), "{}", bot_alert.summary);
        let victims = got(&acme_alerts, alert_kind::DDOS_VICTIM);
        assert!(victims.contains(&victim.ip), "{victims:?}");
        assert_eq!(victims.iter().cloned().collect::<BTreeSet<_>>(), want(&acme_space, &["backscatter"]));

        // The port watch: one incident for the surge port (the capture is shorter than the gap).
        let watch = acme_alerts.iter().filter(|a| a.kind == alert_kind::WATCH).collect::<Vec<_>>();
        assert_eq!(watch.len(), 1, "{watch:?}");
        let port_findings = findings.iter().filter(|f| f.port == Some(surge_port) && f.proto == Some(6)).count();
        assert_eq!(watch[0].findings, port_findings as i64);

        // Isolation: globex sees only its own space; acme nothing of globex's.
        assert!(globex_alerts.iter().all(|a| in_space_str(&a.subject, &globex_space)), "{globex_alerts:?}");
        assert!(globex_alerts.iter().any(|a| a.subject == other.ip));
        assert!(acme_alerts
            .iter()
            .filter(|a| a.kind != alert_kind::WATCH)
            .all(|a| in_space_str(&a.subject, &acme_space)));
        assert!(store.alert(&bot_alert.id, Some(&globex.id)).await.is_err(), "globex cannot read acme's alert");

        // Delivery: each new acme alert once, signed; the first two attempts fail and are retried.
        let key = WebhookKey::load_or_create(&dir.path().join("keys/webhook.key")).unwrap();
        let opts = DeliverOptions {
            max_attempts: 3,
            backoff_base: Duration::from_millis(20),
            timeout: Duration::from_secs(5),
            ..Default::default()
        };
        while let Some(t) = store.next_delivery_due().await.unwrap() {
            let wait = (t - cynex_model::time::now_us()).max(0) as u64;
            tokio::time::sleep(Duration::from_micros(wait)).await;
            webhook::deliver_due(&store, &key, &opts).await.unwrap();
        }
        let ds = store.deliveries(None).await.unwrap();
        let acme_ds: Vec<_> = ds.iter().filter(|d| d.org_id == acme.id).collect();
        assert_eq!(acme_ds.len(), acme_alerts.len(), "one delivery per alert");
        assert!(acme_ds.iter().all(|d| d.status == "delivered"), "{acme_ds:?}");
        assert_eq!(acme_ds.iter().map(|d| d.attempts).sum::<i64>(), acme_ds.len() as i64 + 2);
        let secret = key.secret_for(&store.org("acme").await.unwrap());
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), acme_ds.len() + 2);
        let now = cynex_model::time::now_us() / 1_000_000;
        for (sig, body) in seen.iter() {
            assert!(webhook::verify(&secret, sig, body, now, 300), "signature of {}", String::from_utf8_lossy(body));
            let v: serde_json::Value = serde_json::from_slice(body).unwrap();
            assert_eq!(v["organisation"], "acme");
        }
        let globex_ds: Vec<_> = ds.iter().filter(|d| d.org_id == globex.id).collect();
        assert!(!globex_ds.is_empty());
        for d in globex_ds {
            assert_eq!((d.status.as_str(), d.attempts), ("failed", 3), "{d:?}");
            assert!(d.last_error.is_some());
        }
    });
}

fn in_space_str(ip: &str, space: &[Ipv4Net]) -> bool {
    let ip: std::net::Ipv4Addr = ip.parse().unwrap();
    space.iter().any(|n| n.contains(u32::from(ip)))
}
