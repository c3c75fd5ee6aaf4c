//! Scanning campaigns: sources that act together.
//!
//! The method, stated in every campaign's evidence so an analyst can check it:
//! 1. Each scanning source is described by its tool (the attribution, or `unattributed`) and the
//!    exact set of (protocol, port) pairs its scan events targeted. Sources probing more than
//!    `campaign_max_ports` ports are wide scanners, not members of a port-specific campaign.
//! 2. Sources with the same tool and the same port set are ordered by first activity and chained
//!    while each starts no later than `campaign_gap_s` after the chain's latest activity (single
//!    linkage on activity time).
//! 3. A chain of at least `campaign_min_sources` sources is a campaign.
//!
//! This is the grouping darknet operators use for botnet waves (the same bot code probes the same
//! ports with the same packet crafting, in the same period); it needs no tuning per port and
//! puts each source in at most one campaign.

use std::collections::{BTreeMap, BTreeSet};

use cynex_model::ip::fmt_ip4;
use serde_json::json;

use datafusion::arrow::array::{Array, RecordBatch};

use crate::finding::{finding_id, kind, Columns, Core, Finding};

/// Campaign grouping settings. Not part of the detector state: campaigns are recomputed from the
/// findings on every run, so these may change between runs without a rebuild.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CampaignConfig {
    /// Fewest sources that make a campaign.
    pub campaign_min_sources: u64,
    /// Sources targeting more ports than this are wide scanners, left out.
    pub campaign_max_ports: usize,
    /// A source joins a chain if it starts within this long of the chain's latest activity.
    pub campaign_gap_s: u64,
}

impl Default for CampaignConfig {
    fn default() -> Self {
        CampaignConfig { campaign_min_sources: 5, campaign_max_ports: 16, campaign_gap_s: 3_600 }
    }
}

/// What one source did, from its findings.
#[derive(Default)]
struct Source {
    tool: Option<(String, u64)>,
    ports: BTreeSet<(u8, u16)>,
    first: i64,
    last: i64,
    packets: u64,
    research: Option<String>,
}

/// What the grouping reads of one finding (a scan event or a tool attribution of `ip4`).
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    pub kind: &'a str,
    pub ip4: u32,
    pub time: i64,
    pub end_time: i64,
    pub packets: u64,
    pub port: Option<u16>,
    pub proto: Option<u8>,
    pub label: Option<&'a str>,
    pub tool: Option<&'a str>,
}

impl<'a> Seen<'a> {
    pub fn of(f: &'a Finding) -> Option<Seen<'a>> {
        Some(Seen {
            kind: &f.kind,
            ip4: f.ip4?,
            time: f.time,
            end_time: f.end_time,
            packets: f.packets,
            port: f.port,
            proto: f.proto,
            label: f.label.as_deref(),
            tool: f.tool.as_deref(),
        })
    }
}

/// The scanning sources as the grouping describes them, folded from findings one at a time and
/// in any order (the same sources whatever the order): a scope's whole history of findings is
/// never held at once, only one small record per source.
#[derive(Default)]
pub struct Sources(BTreeMap<u32, Source>);

impl Sources {
    pub fn add(&mut self, f: &Seen) {
        if f.kind != kind::SCAN && f.kind != kind::TOOL {
            return;
        }
        let s = self.0.entry(f.ip4).or_insert_with(|| Source { first: i64::MAX, last: i64::MIN, ..Default::default() });
        if f.kind == kind::SCAN {
            // A source's span is that of its scan events alone, so the result does not depend on
            // the order findings come in (regression: a re-run with nothing new moved a
            // campaign's start, because a tool attribution seen first had set it).
            s.first = s.first.min(f.time);
            s.last = s.last.max(f.end_time);
            s.packets += f.packets;
            if let (Some(port), Some(p)) = (f.port, f.proto) {
                s.ports.insert((p, port));
            }
            // The research label and the tool are chosen without regard to order too: the
            // smallest label; the tool of the most packets, ties to the smaller name.
            if let Some(l) = f.label {
                if s.research.as_deref().is_none_or(|cur| l < cur) {
                    s.research = Some(l.to_string());
                }
            }
        } else if let Some(t) = f.tool {
            if s.tool.as_ref().is_none_or(|(cur, n)| f.packets > *n || (f.packets == *n && t < cur.as_str())) {
                s.tool = Some((t.to_string(), f.packets));
            }
        }
    }

    /// Fold the rows of a `findings` batch holding at least [`crate::finding::CORE_COLUMNS`].
    pub(crate) fn add_batch(&mut self, b: &RecordBatch) -> Result<(), String> {
        let Core { kind: kinds, time, end_time: end, ip4, port, proto, tool, label, packets } = Columns(b).core()?;
        for i in (0..b.num_rows()).filter(|&i| ip4.is_valid(i)) {
            self.add(&Seen {
                kind: kinds.value(i),
                ip4: ip4.value(i),
                time: time.value(i),
                end_time: end.value(i),
                packets: packets.value(i),
                port: port.is_valid(i).then(|| port.value(i)),
                proto: proto.is_valid(i).then(|| proto.value(i)),
                label: label.is_valid(i).then(|| label.value(i)),
                tool: tool.is_valid(i).then(|| tool.value(i)),
            });
        }
        Ok(())
    }

    pub fn add_finding(&mut self, f: &Finding) {
        if let Some(seen) = Seen::of(f) {
            self.add(&seen);
        }
    }

    /// The campaigns among these sources.
    pub fn campaigns(&self, cfg: &CampaignConfig) -> Vec<Finding> {
        group(&self.0, cfg)
    }
}

fn proto_name(p: u8) -> &'static str {
    match p {
        6 => "tcp",
        17 => "udp",
        _ => "ip",
    }
}

pub const METHOD: &str = "sources with the same tool and the identical set of targeted ports, chained while each \
                          starts within the gap of the chain's latest activity; at least the minimum number of \
                          sources";

/// Campaigns among the scan events and tool attributions in `findings`.
pub fn detect<'a>(findings: impl IntoIterator<Item = &'a Finding>, cfg: &CampaignConfig) -> Vec<Finding> {
    let mut sources = Sources::default();
    for f in findings {
        sources.add_finding(f);
    }
    sources.campaigns(cfg)
}

fn group(sources: &BTreeMap<u32, Source>, cfg: &CampaignConfig) -> Vec<Finding> {
    // (tool, port set) -> sources with that description.
    type Description = (String, Vec<(u8, u16)>);
    let mut groups: BTreeMap<Description, Vec<(u32, &Source)>> = BTreeMap::new();
    for (ip, s) in sources {
        if s.ports.is_empty() || s.ports.len() > cfg.campaign_max_ports {
            continue;
        }
        let tool = s.tool.as_ref().map_or("unattributed", |(t, _)| t.as_str()).to_string();
        groups.entry((tool, s.ports.iter().copied().collect())).or_default().push((*ip, s));
    }
    let gap = cfg.campaign_gap_s as i64 * 1_000_000;
    let mut out = Vec::new();
    for ((tool, ports), mut members) in groups {
        members.sort_by_key(|(ip, s)| (s.first, *ip));
        let mut chain: Vec<(u32, &Source)> = Vec::new();
        let mut chain_last = i64::MIN;
        for m in members.into_iter().chain(std::iter::once((0, &Source { first: i64::MAX, ..Default::default() }))) {
            if !chain.is_empty() && m.1.first > chain_last.saturating_add(gap) {
                if chain.len() as u64 >= cfg.campaign_min_sources {
                    out.push(campaign(&tool, &ports, &chain, cfg));
                }
                chain.clear();
                chain_last = i64::MIN;
            }
            chain_last = chain_last.max(m.1.last);
            chain.push(m);
        }
    }
    out.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
    out
}

fn campaign(tool: &str, ports: &[(u8, u16)], chain: &[(u32, &Source)], cfg: &CampaignConfig) -> Finding {
    let first = chain.iter().map(|(_, s)| s.first).min().unwrap_or(0);
    let last = chain.iter().map(|(_, s)| s.last).max().unwrap_or(0);
    let packets: u64 = chain.iter().map(|(_, s)| s.packets).sum();
    let port_list: Vec<String> = ports.iter().map(|(p, port)| format!("{port}/{}", proto_name(*p))).collect();
    let mut key = blake3::Hasher::new();
    key.update(tool.as_bytes());
    for (p, port) in ports {
        key.update(&[*p]);
        key.update(&port.to_le_bytes());
    }
    let key = u64::from_le_bytes(key.finalize().as_bytes()[..8].try_into().expect("8 bytes"));
    let research: BTreeSet<&str> = chain.iter().filter_map(|(_, s)| s.research.as_deref()).collect();
    let single = (ports.len() == 1).then(|| ports[0]);
    Finding {
        id: finding_id(kind::CAMPAIGN, &[key, first as u64]),
        kind: kind::CAMPAIGN.into(),
        time: first,
        end_time: last,
        ip4: None,
        port: single.map(|(_, p)| p),
        proto: single.map(|(p, _)| p),
        traffic: None,
        tool: (tool != "unattributed").then(|| tool.to_string()),
        label: Some(port_list.join(",")),
        packets,
        uniques: Some(chain.len() as u64),
        unique_24s: Some(chain.iter().map(|(ip, _)| ip >> 8).collect::<BTreeSet<_>>().len() as u64),
        rate: None,
        score: None,
        evidence: json!({
            "method": METHOD,
            "tool": tool,
            "ports": port_list,
            "sources": chain.len(),
            "sample_sources": chain.iter().take(20).map(|(ip, _)| fmt_ip4(*ip)).collect::<Vec<_>>(),
            "research_labels": research,
            "min_sources": cfg.campaign_min_sources,
            "gap_s": cfg.campaign_gap_s,
            "max_ports": cfg.campaign_max_ports,
        }),
        country: None,
        asn: None,
        as_org: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(kind: &str, ip: u32, time: i64, end: i64) -> Finding {
        Finding {
            id: format!("{kind}-{ip}-{time}"),
            kind: kind.into(),
            time,
            end_time: end,
            ip4: Some(ip),
            port: Some(23),
            proto: Some(6),
            traffic: None,
            tool: (kind == kind::TOOL).then(|| "mirai".to_string()),
            label: None,
            packets: 10,
            uniques: None,
            unique_24s: None,
            rate: None,
            score: None,
            evidence: serde_json::Value::Null,
            country: None,
            asn: None,
            as_org: None,
        }
    }

    /// Regression: the order of the findings moved a campaign's start (a tool attribution seen
    /// before the scan events set the source's first time), so a re-run with nothing new
    /// replaced the campaign with another id.
    #[test]
    fn campaigns_do_not_depend_on_the_order_of_findings() {
        let mut fs = Vec::new();
        for ip in 0..6u32 {
            fs.push(finding(kind::TOOL, 0x0b00_0000 + ip, 1_000 + ip as i64, 9_000_000));
            fs.push(finding(kind::SCAN, 0x0b00_0000 + ip, 5_000_000 + ip as i64, 6_000_000));
        }
        let cfg = CampaignConfig::default();
        let forward = detect(&fs, &cfg);
        let backward = detect(fs.iter().rev(), &cfg);
        assert_eq!(forward.len(), 1);
        assert_eq!(forward, backward);
        assert_eq!(forward[0].time, 5_000_000, "the span of the scan events");
    }
}
