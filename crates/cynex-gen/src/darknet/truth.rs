//! Ground truth of a synthetic darknet capture: who sent what, as planted by the generator.

use cynex_model::ip::fmt_ip4;
use cynex_model::time::rfc3339_us;
use serde::{Deserialize, Serialize};

use super::{Gen, Tool};

/// Packets of the kinds that are counted but not listed source by source.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
pub struct Counts {
    pub background: u64,
    pub misconfig: u64,
    pub ipv6: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SourceTruth {
    pub ip: String,
    pub tool: Tool,
    /// Research organisation name, for research scanners.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub research: Option<String>,
    pub packets: u64,
    pub first: String,
    pub last: String,
    /// Destination ports the source probes (empty: any port).
    pub ports: Vec<u16>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VictimTruth {
    pub ip: String,
    pub vector: String,
    pub packets: u64,
    pub first: String,
    pub last: String,
    /// Most packets seen in any 60 s window sliding by 10 s.
    pub max_60s: u32,
    /// Whether the attack meets CAIDA Corsaro3's dos defaults as observed: >= 25 packets,
    /// >= 60 s, >= 30 packets in some 60 s window.
    pub meets_dos_threshold: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ResearchTruth {
    pub name: String,
    pub prefix: String,
    pub sources: u64,
    pub packets: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SurgeTruth {
    pub port: u16,
    pub proto: String,
    pub start: String,
    pub ramp_s: u64,
    pub sources: u64,
    pub packets: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroundTruth {
    pub generator: String,
    pub config: super::DarknetConfig,
    pub packets: u64,
    pub bytes: u64,
    pub start: String,
    pub end: String,
    pub counts: Counts,
    pub research: Vec<ResearchTruth>,
    pub surge: Option<SurgeTruth>,
    pub victims: Vec<VictimTruth>,
    /// Scanning sources that sent at least one packet, sorted by address.
    pub sources: Vec<SourceTruth>,
}

pub(super) fn build(g: &Gen, packets: u64, bytes: u64) -> GroundTruth {
    let mut research = g.research.clone();
    let mut surge = g.surge.clone();
    let mut sources: Vec<(u32, SourceTruth)> = g
        .sources
        .iter()
        .filter(|s| s.packets > 0)
        .map(|s| {
            if let Some(i) = s.research {
                research[i as usize].packets += s.packets;
            }
            if s.tool == Tool::Unknown {
                if let Some(sg) = surge.as_mut() {
                    sg.packets += s.packets;
                }
            }
            (
                s.ip,
                SourceTruth {
                    ip: fmt_ip4(s.ip),
                    tool: s.tool,
                    research: s.research.map(|i| research[i as usize].name.clone()),
                    packets: s.packets,
                    first: rfc3339_us(s.first_us),
                    last: rfc3339_us(s.last_us),
                    ports: if s.ports.len() > 64 { Vec::new() } else { s.ports.clone() },
                },
            )
        })
        .collect();
    sources.sort_by_key(|(ip, _)| *ip);
    let mut victims: Vec<(u32, VictimTruth)> = g
        .attacks
        .iter()
        .filter(|a| a.packets > 0)
        .map(|a| {
            let secs = (a.last_us - a.first_us) as f64 / 1e6;
            (
                a.victim,
                VictimTruth {
                    ip: fmt_ip4(a.victim),
                    vector: a.vector.name().into(),
                    packets: a.packets,
                    first: rfc3339_us(a.first_us),
                    last: rfc3339_us(a.last_us),
                    max_60s: a.max_60s,
                    meets_dos_threshold: a.packets >= 25 && secs >= 60.0 && a.max_60s >= 30,
                },
            )
        })
        .collect();
    victims.sort_by_key(|(ip, _)| *ip);
    GroundTruth {
        generator: format!("cynex-gen {}", env!("CARGO_PKG_VERSION")),
        config: g.cfg.clone(),
        packets,
        bytes,
        start: rfc3339_us(g.cfg.start_us),
        end: rfc3339_us(g.cfg.start_us + g.cfg.duration_s as i64 * 1_000_000),
        counts: g.counts,
        research,
        surge,
        victims: victims.into_iter().map(|(_, v)| v).collect(),
        sources: sources.into_iter().map(|(_, s)| s).collect(),
    }
}
