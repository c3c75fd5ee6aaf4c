//! Member alerts (DAEDALUS) and watches (CURE's Watcher) over the findings.
//!
//! A finding whose address lies in a member's registered space becomes evidence of an incident:
//! a darknet *source* there is a likely infected host (scan events and tool attributions), a
//! backscatter *victim* there is under DDoS. A watch matches findings by address, port or tag.
//! Findings of the same incident — same member, same kind, same subject, no quieter gap than
//! [`AlertOptions::incident_gap_us`] — are merged into one alert (one per incident, never one per
//! packet or per finding), keeping first/last seen, counts and the evidence. Each finding is
//! linked to the alert it fed, in the same transaction, so a re-run (or a run after a crash)
//! neither repeats nor loses an alert. A new alert queues one webhook delivery for the member.

use std::collections::BTreeSet;

use cynex_lake::Lake;
use cynex_model::ip::{fmt_ip4, Ipv4Net};
use cynex_model::Table;
use cynex_store::{Alert, Org, Store, Watch, WatchKind};
use serde_json::{json, Value};

use crate::finding::{kind, Finding};

/// Kinds of alert.
pub mod alert_kind {
    /// An address of the member's is a darknet source: scanning, likely infected.
    pub const INFECTED_HOST: &str = "infected-host";
    /// An address of the member's answers spoofed floods: it is a DDoS victim.
    pub const DDOS_VICTIM: &str = "ddos-victim";
    /// Something a member watches appeared in a finding.
    pub const WATCH: &str = "watch";
}

/// The webhook event a new alert queues.
pub const EVENT_ALERT_CREATED: &str = "alert.created";

#[derive(Debug, Clone)]
pub struct AlertOptions {
    /// Findings of one subject further apart than this start a new incident (default 24 h).
    pub incident_gap_us: i64,
    /// Findings per store transaction.
    pub chunk: usize,
}

impl Default for AlertOptions {
    fn default() -> Self {
        AlertOptions { incident_gap_us: 86_400 * 1_000_000, chunk: 2_000 }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AlertReport {
    /// Findings examined.
    pub findings: u64,
    /// (finding, rule) matches not seen before.
    pub matched: u64,
    pub created: u64,
    pub updated: u64,
    pub deliveries_queued: u64,
}

/// Cap on list-valued evidence, so an incident running for months stays a small row.
const EVIDENCE_CAP: usize = 64;

/// One way a finding concerns a member.
struct Match<'a> {
    org: &'a Org,
    /// `space` or `watch:<id>`: a finding is linked once per organisation and rule.
    rule: String,
    kind: &'static str,
    subject: String,
    watch: Option<&'a Watch>,
}

struct Rules<'a> {
    /// (block, organisation), for the member-space rule.
    space: Vec<(Ipv4Net, &'a Org)>,
    watches: Vec<(&'a Watch, &'a Org)>,
}

impl<'a> Rules<'a> {
    fn matches(&self, f: &Finding) -> Vec<Match<'a>> {
        let mut out = Vec::new();
        let space_kind = match f.kind.as_str() {
            kind::SCAN | kind::TOOL => Some(alert_kind::INFECTED_HOST),
            kind::BACKSCATTER => Some(alert_kind::DDOS_VICTIM),
            _ => None,
        };
        if let (Some(k), Some(ip)) = (space_kind, f.ip4) {
            let mut seen: Vec<&str> = Vec::new();
            for (net, org) in &self.space {
                if net.contains(ip) && !seen.contains(&org.id.as_str()) {
                    seen.push(&org.id);
                    out.push(Match { org, rule: "space".into(), kind: k, subject: fmt_ip4(ip), watch: None });
                }
            }
        }
        for (w, org) in &self.watches {
            let subject = match &w.what {
                WatchKind::Prefix(net) => f.ip4.filter(|ip| net.contains(*ip)).map(fmt_ip4),
                WatchKind::Port { port, proto } => {
                    (f.port == Some(*port) && proto.is_none_or(|p| f.proto == Some(p))).then(|| w.what.to_string())
                }
                WatchKind::Tag(t) => {
                    let hit = [Some(&f.kind), f.tool.as_ref(), f.label.as_ref()]
                        .into_iter()
                        .flatten()
                        .any(|v| v.eq_ignore_ascii_case(t));
                    hit.then(|| w.what.to_string())
                }
            };
            if let Some(s) = subject {
                out.push(Match {
                    org,
                    rule: format!("watch:{}", w.id),
                    kind: alert_kind::WATCH,
                    subject: format!("{}:{s}", w.id),
                    watch: Some(w),
                });
            }
        }
        out
    }
}

/// Raise the alerts of `scope`'s findings: with `everything`, all of them (after a member
/// registers space or a watch, to match the past); otherwise only what the lake added since the
/// last call (and what is ongoing), so an analysis every hour does not re-read the whole history.
/// The cursor moves after the alerts are stored: a crash in between only means the same findings
/// are matched again, and a finding already linked to an alert raises nothing twice. Reads files:
/// on an async runtime, call it from a blocking thread.
pub async fn raise_in_lake(
    store: &Store,
    lake: &Lake,
    scope: &str,
    opts: &AlertOptions,
    everything: bool,
) -> crate::Result<AlertReport> {
    let after = if everything { None } else { store.alert_cursor(scope).await? };
    let (mut findings, seq) = crate::run::load_findings_after(lake, scope, Table::Findings, after)?;
    // Ongoing events matter too: a member wants to hear of an infection before it ends.
    findings.extend(crate::load_findings(lake, scope, Table::Ongoing)?);
    let rep = raise_alerts(store, &findings, opts).await?;
    store.set_alert_cursor(scope, seq).await?;
    Ok(rep)
}

/// Match `findings` against every member's space and watches and record the incidents.
pub async fn raise_alerts(store: &Store, findings: &[Finding], opts: &AlertOptions) -> crate::Result<AlertReport> {
    let orgs = store.orgs().await?;
    let by_id = |id: &str| orgs.iter().find(|o| o.id == id);
    let prefixes = store.prefixes(None).await?;
    let watches = store.watches(None).await?;
    let rules = Rules {
        space: prefixes.iter().filter_map(|p| Some((p.prefix, by_id(&p.org_id)?))).collect(),
        watches: watches.iter().filter_map(|w| Some((w, by_id(&w.org_id)?))).collect(),
    };
    let mut rep = AlertReport::default();
    if rules.space.is_empty() && rules.watches.is_empty() {
        rep.findings = findings.len() as u64;
        return Ok(rep);
    }
    let mut ordered: Vec<&Finding> = findings.iter().collect();
    ordered.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
    for chunk in ordered.chunks(opts.chunk.max(1)) {
        let mut tx = store.begin_alerts().await?;
        for f in chunk {
            rep.findings += 1;
            for m in rules.matches(f) {
                if tx.is_linked(&m.org.id, &m.rule, &f.id).await? {
                    continue;
                }
                rep.matched += 1;
                let since = f.time.saturating_sub(opts.incident_gap_us);
                let now = cynex_model::time::now_us();
                let alert = match tx.open_incident(&m.org.id, m.kind, &m.subject, since).await? {
                    Some(mut a) => {
                        merge(&mut a, f);
                        a.summary = summary(&a, m.watch);
                        a.updated = now;
                        rep.updated += 1;
                        tx.save_alert(&a).await?;
                        a
                    }
                    None => {
                        let mut a = Alert {
                            id: uuid::Uuid::now_v7().to_string(),
                            org_id: m.org.id.clone(),
                            kind: m.kind.to_string(),
                            subject: m.subject.clone(),
                            watch_id: m.watch.map(|w| w.id.clone()),
                            first_seen: f.time,
                            last_seen: f.end_time,
                            findings: 0,
                            packets: 0,
                            summary: String::new(),
                            evidence: json!({}),
                            status: "open".into(),
                            created: now,
                            updated: now,
                        };
                        if let Some(w) = m.watch {
                            a.evidence["watch"] = json!(w.what.to_string());
                        }
                        merge(&mut a, f);
                        a.summary = summary(&a, m.watch);
                        rep.created += 1;
                        tx.save_alert(&a).await?;
                        if let Some(url) = &m.org.webhook_url {
                            tx.queue_delivery(&a, EVENT_ALERT_CREATED, url).await?;
                            rep.deliveries_queued += 1;
                        }
                        a
                    }
                };
                tx.link(&m.org.id, &m.rule, &f.id, &alert.id).await?;
            }
        }
        tx.commit().await?;
    }
    Ok(rep)
}

/// Add `v` to the JSON string list at `ev[key]`, kept sorted, unique and capped.
fn add_to_set(ev: &mut Value, key: &str, v: String) {
    let mut set: BTreeSet<String> = ev[key]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    if set.len() < EVIDENCE_CAP || set.contains(&v) {
        set.insert(v);
    } else {
        ev[format!("{key}_truncated")] = json!(true);
    }
    ev[key] = json!(set);
}

fn proto_name(p: Option<u8>) -> String {
    match p {
        Some(6) => "tcp".into(),
        Some(17) => "udp".into(),
        Some(1) => "icmp".into(),
        Some(n) => n.to_string(),
        None => "any".into(),
    }
}

/// Fold one finding into an incident.
fn merge(a: &mut Alert, f: &Finding) {
    a.first_seen = a.first_seen.min(f.time);
    a.last_seen = a.last_seen.max(f.end_time);
    a.findings += 1;
    a.packets += f.packets as i64;
    let ev = &mut a.evidence;
    add_to_set(ev, "finding_ids", f.id.clone());
    add_to_set(ev, "finding_kinds", f.kind.clone());
    if let Some(ip) = f.ip4 {
        add_to_set(ev, "addresses", fmt_ip4(ip));
    }
    if let Some(t) = &f.tool {
        add_to_set(ev, "tools", t.clone());
    }
    if let Some(l) = &f.label {
        add_to_set(ev, "labels", l.clone());
    }
    match f.kind.as_str() {
        kind::SCAN => {
            if let Some(p) = f.port {
                add_to_set(ev, "ports", format!("{p}/{}", proto_name(f.proto)));
            }
            if let Some(t) = &f.traffic {
                add_to_set(ev, "traffic", t.clone());
            }
            let dests = ev["dark_destinations"].as_u64().unwrap_or(0) + f.uniques.unwrap_or(0);
            ev["dark_destinations"] = json!(dests);
            let rate = ev["max_global_rate_pps"].as_f64().unwrap_or(0.0).max(f.rate.unwrap_or(0.0));
            ev["max_global_rate_pps"] = json!(rate);
        }
        kind::TOOL => {
            if let Some(rule) = f.evidence.get("rule") {
                ev["tool_rule"] = rule.clone();
            }
        }
        kind::BACKSCATTER => {
            if let Some(t) = &f.traffic {
                for v in t.split(',').filter(|v| !v.is_empty()) {
                    add_to_set(ev, "vectors", v.to_string());
                }
            }
            let attackers = ev["attacker_16s_max"].as_u64().unwrap_or(0).max(f.uniques.unwrap_or(0));
            ev["attacker_16s_max"] = json!(attackers);
            let peak = ev["peak_packets_60s"].as_f64().unwrap_or(0.0).max(f.score.unwrap_or(0.0));
            ev["peak_packets_60s"] = json!(peak);
            if let Some(ports) = f.evidence.get("service_ports").and_then(Value::as_array) {
                for p in ports.iter().filter_map(Value::as_u64) {
                    add_to_set(ev, "service_ports", p.to_string());
                }
            }
        }
        kind::SURGE => {
            let peak = ev["max_sources_per_hour"].as_u64().unwrap_or(0).max(f.uniques.unwrap_or(0));
            ev["max_sources_per_hour"] = json!(peak);
        }
        _ => {}
    }
}

fn list(ev: &Value, key: &str) -> String {
    let items: Vec<&str> = ev[key].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let shown = items.iter().take(5).copied().collect::<Vec<_>>().join(", ");
    if items.len() > 5 {
        format!("{shown}, … ({} in all)", items.len())
    } else {
        shown
    }
}

/// One line a member's analyst can act on.
fn summary(a: &Alert, watch: Option<&Watch>) -> String {
    let ev = &a.evidence;
    match a.kind.as_str() {
        alert_kind::INFECTED_HOST => {
            let tools = list(ev, "tools");
            let ports = list(ev, "ports");
            format!(
                "{} is scanning the darknet{}{}: {} packets to {} dark addresses; likely infected or misused",
                a.subject,
                if ports.is_empty() { String::new() } else { format!(" on {ports}") },
                if tools.is_empty() { String::new() } else { format!(" with {tools}") },
                a.packets,
                ev["dark_destinations"].as_u64().unwrap_or(0),
            )
        }
        alert_kind::DDOS_VICTIM => format!(
            "{} is under a DDoS attack ({}): {} backscatter packets, from up to {} attacker /16s, peak {} packets/60 s",
            a.subject,
            list(ev, "vectors"),
            a.packets,
            ev["attacker_16s_max"].as_u64().unwrap_or(0),
            ev["peak_packets_60s"].as_f64().unwrap_or(0.0),
        ),
        _ => format!(
            "watch {} matched {} finding(s) ({}) involving {}",
            watch.map(|w| w.what.to_string()).unwrap_or_else(|| a.subject.clone()),
            a.findings,
            list(ev, "finding_kinds"),
            {
                let addrs = list(ev, "addresses");
                if addrs.is_empty() {
                    "no single address".to_string()
                } else {
                    addrs
                }
            },
        ),
    }
}
