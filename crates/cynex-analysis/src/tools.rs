//! Attributing a scanning source to a tool from its probes. Single-packet rules (the `fp` bits
//! set at ingest, see `cynex-ingest`'s fingerprint module) need `k` matching probes, because a
//! random packet matches Masscan's with probability 2^-16; Nmap and Unicornscan need state across
//! packets (../shared/reference/darknet.md §1):
//!
//! - Nmap -sS: window 1024 and options exactly MSS 1460 (the `nmap-syn` bit), and the same
//!   sequence number and source port across destinations (`seq = ((tryno<<16)+tryno) ^ seqmask`,
//!   `sport = base_port + tryno`: nmap scan_engine_raw.cc L229-241, L265).
//! - Unicornscan 0.4: `seq ^ D ^ ((dport << 16) + sport)` is a per-scan constant, with `D` the
//!   destination as the sender's CPU reads it — tested in both byte orders (tcphash.h), on probes
//!   with its default profile's traits (the `unicorn` bit: window 4128 with MSS).
//! - ZMap 4.1+ (random IP ID since commit b0190cc) has no exact rule; its default Windows-style
//!   options with window 65535 and an initial TTL of 255 are a weak profile, reported as such.

use cynex_model::packet::fp;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::distinct::Distinct;
use crate::engine::Keyed;

/// Index of the weak ZMap 4.1 profile in [`SourceState::bits`].
pub const ZMAP41_WEAK: usize = 3;

/// Up to four candidate constants with how often each was seen (a count of 0 is a free slot).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Consts {
    vals: [(u64, u32); 4],
}

impl Consts {
    fn observe(&mut self, v: u64) {
        if let Some(e) = self.vals.iter_mut().find(|(x, c)| *c > 0 && *x == v) {
            e.1 += 1;
        } else if let Some(e) = self.vals.iter_mut().find(|(_, c)| *c == 0) {
            *e = (v, 1);
        }
    }

    fn best(&self) -> Option<(u64, u32)> {
        self.vals.iter().copied().filter(|(_, c)| *c > 0).max_by_key(|(_, c)| *c)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SourceState {
    pub first: i64,
    pub last: i64,
    pub packets: u64,
    /// TCP SYN probes.
    pub syn: u64,
    /// Probes matching ZMap (IP ID 54321), Masscan, Mirai, and the weak ZMap 4.1 profile.
    pub bits: [u32; 4],
    /// Multi-packet state, only for sources that sent probes with the Nmap or Unicornscan traits.
    multi: Option<Box<Multi>>,
    pub ports: Distinct,
    /// The first four ports probed, with counts.
    top: [(u16, u32); 4],
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Multi {
    nmap: Consts,
    uni_be: Consts,
    uni_le: Consts,
}

impl SourceState {
    pub fn new(ts: i64) -> Self {
        SourceState { first: ts, last: ts, ..Default::default() }
    }

    pub(crate) fn observe(&mut self, r: &Keyed, syn: bool) {
        let dst = r.dst;
        self.first = self.first.min(r.ts);
        self.last = self.last.max(r.ts);
        self.packets += 1;
        self.ports.insert(r.dport as u32);
        if let Some(e) = self.top.iter_mut().find(|(p, c)| *c > 0 && *p == r.dport) {
            e.1 += 1;
        } else if let Some(e) = self.top.iter_mut().find(|(_, c)| *c == 0) {
            *e = (r.dport, 1);
        }
        if !syn {
            return;
        }
        self.syn += 1;
        let zmap = r.fp & fp::ZMAP != 0;
        self.bits[0] += zmap as u32;
        self.bits[1] += (r.fp & fp::MASSCAN != 0) as u32;
        let mirai = r.fp & fp::MIRAI != 0;
        self.bits[2] += mirai as u32;
        if !zmap && r.window == 65_535 && r.ttl >= 200 && r.wscale() {
            self.bits[ZMAP41_WEAK] += 1;
        }
        if r.fp & fp::NMAP_SYN != 0 {
            let m = self.multi.get_or_insert_with(Default::default);
            m.nmap.observe((r.seq as u64) << 16 | r.sport as u64);
        }
        if r.fp & fp::UNICORN != 0 && !mirai {
            let m = self.multi.get_or_insert_with(Default::default);
            let ports = ((r.dport as u32) << 16).wrapping_add(r.sport as u32);
            m.uni_be.observe((r.seq ^ dst ^ ports) as u64);
            m.uni_le.observe((r.seq ^ dst.swap_bytes() ^ ports) as u64);
        }
    }

    /// Approximate heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.ports.heap_bytes() + self.multi.as_ref().map_or(0, |_| size_of::<Multi>())
    }

    pub fn top_port(&self) -> Option<u16> {
        self.top.iter().filter(|(_, c)| *c > 0).max_by_key(|(_, c)| *c).map(|(p, _)| *p)
    }

    pub fn port_list(&self) -> Vec<u16> {
        let mut t: Vec<(u16, u32)> = self.top.iter().copied().filter(|(_, c)| *c > 0).collect();
        t.sort_by_key(|(p, c)| (std::cmp::Reverse(*c), *p));
        t.into_iter().map(|(p, _)| p).collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attribution {
    pub tool: &'static str,
    pub rule: &'static str,
    pub matched: u64,
    pub detail: serde_json::Value,
}

/// The tool whose rule the most probes of `s` match, if at least `k` do. Ties go to the more
/// specific rule (listed first).
pub fn attribute(s: &SourceState, k: u32) -> Option<Attribution> {
    let m = s.multi.as_deref();
    let nmap = m.and_then(|m| m.nmap.best());
    let be = m.and_then(|m| m.uni_be.best());
    let le = m.and_then(|m| m.uni_le.best());
    let uni = match (be, le) {
        (Some(b), Some(l)) if l.1 > b.1 => Some((l, "little-endian")),
        (Some(b), _) => Some((b, "big-endian")),
        (None, Some(l)) => Some((l, "little-endian")),
        _ => None,
    };
    let cands: [(&'static str, &'static str, u32, serde_json::Value); 6] = [
        ("mirai", "tcp seq == destination address (Mirai scanner.c)", s.bits[2], json!(null)),
        ("masscan", "ip id == (dst ^ dport ^ seq) & 0xffff (masscan templ-pkt.c)", s.bits[1], json!(null)),
        ("zmap", "ip id == 54321 (ZMap < 4.1, packet.c)", s.bits[0], json!(null)),
        (
            "nmap",
            "window 1024, options MSS 1460 only, constant seq and source port (nmap -sS)",
            nmap.map_or(0, |(_, c)| c),
            nmap.map_or(json!(null), |(v, _)| json!({"seq": v >> 16, "sport": v & 0xffff})),
        ),
        (
            "unicornscan",
            "seq ^ dst ^ ((dport << 16) + sport) constant (unicornscan tcphash.h)",
            uni.map_or(0, |((_, c), _)| c),
            uni.map_or(json!(null), |((v, _), order)| json!({"key": v, "dst_byte_order": order})),
        ),
        (
            "zmap-4.1",
            "weak profile: window 65535, initial TTL 255, window-scale option (ZMap >= 4.1 defaults)",
            s.bits[ZMAP41_WEAK],
            json!(null),
        ),
    ];
    let mut best: Option<&(&'static str, &'static str, u32, serde_json::Value)> = None;
    for c in &cands {
        if c.2 >= k && best.is_none_or(|b| c.2 > b.2) {
            best = Some(c);
        }
    }
    best.map(|(tool, rule, n, detail)| Attribution { tool, rule, matched: *n as u64, detail: detail.clone() })
}
