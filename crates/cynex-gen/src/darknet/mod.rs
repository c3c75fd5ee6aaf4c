//! Darknet traffic synthesis: what a telescope on an unused block sees, with ground truth.
//!
//! Traffic comes from independent streams merged in time order: scanner populations whose
//! packets carry each tool's real header traits, research scanners at steady rates, background
//! noise, DDoS backscatter from victims of spoofed floods, one-off misconfiguration packets, a
//! small IPv6 share, and a new campaign that surges on one port partway through. Packet rates
//! follow a diurnal curve (research scanners excepted). Memory is bounded by the populations,
//! not by the number of packets.
//!
//! Tool traits follow their sources, as collected in ../shared/reference/darknet.md §1:
//! ZMap (src/probe_modules/packet.c; IP ID 54321 until v4.1.0, random after commit b0190cc),
//! Masscan 1.3.2 (src/templ-pkt.c: TTL 255, window 1024, no options, IP ID = dst^dport^seq),
//! Mirai (mirai/bot/scanner.c: seq = dst, dport 23 90% / 2323 10%, per-bot window and sport),
//! Nmap -sS (tcpip.cc: window 1024, MSS 1460 only, TTL 37-59, constant seq and sport per scan),
//! Unicornscan 0.4 (tcphash.h: seq = key ^ D ^ ((dport << 16) + sport), window 4128, MSS).

mod truth;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;

use cynex_model::ip::{is_bogon_v4, Ipv4Net};
use serde::{Deserialize, Serialize};

use crate::frame::{opts, CaptureFormat, CaptureWriter, FrameBuf, Ip4, Tcp};
use crate::rng::{Alias, Rng};
use crate::{Error, Result};
pub use truth::{GroundTruth, ResearchTruth, SourceTruth, SurgeTruth, VictimTruth};

/// What to synthesize.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DarknetConfig {
    pub seed: u64,
    /// Packets to write (the run stops at this count or at the end of the duration).
    pub packets: u64,
    pub start_us: i64,
    pub duration_s: u64,
    /// The dark block the telescope listens on.
    pub dark: Ipv4Net,
    pub format: CaptureFormat,
    /// Port of the campaign that appears partway through.
    pub surge_port: u16,
    /// When the surge starts, as a fraction of the duration.
    pub surge_at: f64,
}

impl Default for DarknetConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            packets: 1_000_000,
            // 2026-11-01T00:00:00Z
            start_us: 1_793_491_200_000_000,
            duration_s: 86_400,
            dark: Ipv4Net { addr: 0xC612_0000, len: 20 },
            format: CaptureFormat::Pcap,
            surge_port: 37215,
            surge_at: 0.6,
        }
    }
}

/// Scanning tools (and the other kinds of sender) the generator plants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    Mirai,
    /// ZMap before v4.1: IP ID 54321.
    Zmap,
    /// ZMap v4.1 and later: random IP ID, Windows-style options.
    #[serde(rename = "zmap-4.1")]
    Zmap41,
    Masscan,
    Nmap,
    Unicornscan,
    /// A research scanner (ZMap 4.1 traits, steady rate).
    Research,
    /// The surge campaign's bots (no known tool fingerprint).
    Unknown,
}

impl Tool {
    pub fn name(self) -> &'static str {
        match self {
            Tool::Mirai => "mirai",
            Tool::Zmap => "zmap",
            Tool::Zmap41 => "zmap-4.1",
            Tool::Masscan => "masscan",
            Tool::Nmap => "nmap",
            Tool::Unicornscan => "unicornscan",
            Tool::Research => "research",
            Tool::Unknown => "unknown",
        }
    }
}

/// Ports scanners commonly target.
const COMMON_PORTS: [u16; 20] =
    [80, 443, 22, 8080, 3389, 445, 23, 5900, 8443, 21, 25, 3306, 6379, 9200, 27017, 5432, 1433, 8888, 7547, 5555];
/// Nmap's most frequently probed ports (nmap-services top ports).
const NMAP_PORTS: [u16; 30] = [
    80, 23, 443, 21, 22, 25, 3389, 110, 445, 139, 143, 53, 135, 3306, 8080, 1723, 111, 995, 993, 5900, 1025, 587, 8888,
    199, 1720, 465, 548, 113, 81, 6001,
];

#[derive(Debug, Clone)]
struct Source {
    ip: u32,
    tool: Tool,
    ports: Vec<u16>,
    window: u16,
    sport: u16,
    /// Hops between sender and telescope (subtracted from the initial TTL).
    hops: u8,
    /// Per-scan constant: Nmap's seq, Unicornscan's key.
    key: u32,
    research: Option<u16>,
    packets: u64,
    first_us: i64,
    last_us: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vector {
    SynAck,
    Rst,
    IcmpUnreach,
    EchoReply,
}

impl Vector {
    fn name(self) -> &'static str {
        match self {
            Vector::SynAck => "tcp-synack",
            Vector::Rst => "tcp-rst",
            Vector::IcmpUnreach => "icmp-unreachable",
            Vector::EchoReply => "icmp-echo-reply",
        }
    }
}

#[derive(Debug, Clone)]
struct Attack {
    victim: u32,
    vector: Vector,
    service_port: u16,
    packets: u64,
    first_us: i64,
    last_us: i64,
    /// Packets per 10 s bucket over the last six buckets, to find the busiest 60 s window as
    /// CAIDA Corsaro3's dos plugin slides it (60 s window, 10 s step).
    buckets: [u32; 6],
    bucket_at: i64,
    max_60s: u32,
}

#[derive(Debug, Clone, Copy)]
enum StreamKind {
    /// A scanner population (index into `pops`).
    Pop(usize),
    Attack(usize),
    Background,
    Misconfig,
    V6,
}

#[derive(Debug, Clone, Copy)]
struct Stream {
    kind: StreamKind,
    /// Mean gap between packets at the diurnal peak (s).
    mean_gap: f64,
    diurnal: bool,
    t0: f64,
    t1: f64,
}

struct Pop {
    sources: std::ops::Range<usize>,
    alias: Alias,
    /// For the surge: sources become active one by one over `ramp` seconds from `t0`.
    ramp: Option<(f64, f64)>,
}

/// Peak of the diurnal multiplier.
const DIURNAL_MAX: f64 = 1.35;

/// Diurnal rate multiplier at `t` seconds from midnight UTC: quietest around 00:00, busiest
/// around 12:00 (darknet volume follows the sleep cycle of infected hosts' regions).
fn diurnal(t_day: f64) -> f64 {
    1.0 + 0.35 * (std::f64::consts::TAU * (t_day / 86_400.0 - 0.25)).sin()
}

struct Gen {
    cfg: DarknetConfig,
    rng: Rng,
    sources: Vec<Source>,
    pops: Vec<Pop>,
    attacks: Vec<Attack>,
    background: Vec<u32>,
    background_alias: Alias,
    research: Vec<ResearchTruth>,
    surge: Option<SurgeTruth>,
    counts: truth::Counts,
    streams: Vec<Stream>,
    fb: FrameBuf,
}

/// A public, non-bogon IPv4 address outside the dark block.
fn public_ip(rng: &mut Rng, dark: &Ipv4Net) -> u32 {
    loop {
        let ip = rng.u32();
        if !is_bogon_v4(ip) && !dark.contains(ip) && ip >> 24 != 0 && ip & 0xff != 0 && ip & 0xff != 255 {
            return ip;
        }
    }
}

fn clamp(x: f64, lo: usize, hi: usize) -> usize {
    (x as usize).clamp(lo, hi)
}

impl Gen {
    fn new(cfg: DarknetConfig) -> Result<Self> {
        if cfg.duration_s == 0 || cfg.packets == 0 {
            return Err(Error::Config("packets and duration must be positive".into()));
        }
        if cfg.dark.len < 8 || cfg.dark.len > 30 {
            return Err(Error::Config(format!("dark block {} must be between /8 and /30", cfg.dark)));
        }
        if !(0.0..1.0).contains(&cfg.surge_at) {
            return Err(Error::Config("surge_at must be in [0, 1)".into()));
        }
        let mut rng = Rng::new(cfg.seed);
        let n = cfg.packets as f64;
        let dur = cfg.duration_s as f64;
        let mut g = Gen {
            rng: rng.fork(1),
            sources: Vec::new(),
            pops: Vec::new(),
            attacks: Vec::new(),
            background: Vec::new(),
            background_alias: Alias::new(&[1.0]),
            research: Vec::new(),
            surge: None,
            counts: truth::Counts::default(),
            streams: Vec::new(),
            fb: FrameBuf::default(),
            cfg,
        };
        let mut seen = std::collections::HashSet::new();
        let mut setup = rng.fork(2);
        let dark = g.cfg.dark;
        let mut fresh_ip = |r: &mut Rng| loop {
            let ip = public_ip(r, &dark);
            if seen.insert(ip) {
                return ip;
            }
        };
        // (tool, share of packets, number of sources)
        let pops: [(Tool, f64, usize); 6] = [
            (Tool::Mirai, 0.26, clamp(n / 4_000.0, 20, 50_000)),
            (Tool::Zmap, 0.07, clamp(n / 400_000.0, 3, 300)),
            (Tool::Zmap41, 0.08, clamp(n / 400_000.0, 3, 300)),
            (Tool::Masscan, 0.08, clamp(n / 400_000.0, 3, 300)),
            (Tool::Nmap, 0.02, clamp(n / 1_000_000.0, 2, 100)),
            (Tool::Unicornscan, 0.01, clamp(n / 2_000_000.0, 2, 50)),
        ];
        let mut streams = Vec::new();
        for (tool, share, count) in pops {
            let start = g.sources.len();
            for _ in 0..count {
                let ip = fresh_ip(&mut setup);
                let src = g.new_source(&mut setup, ip, tool, None);
                g.sources.push(src);
            }
            g.pops.push(Pop { sources: start..g.sources.len(), alias: Alias::zipf(count, 0.8), ramp: None });
            streams.push(Stream {
                kind: StreamKind::Pop(g.pops.len() - 1),
                mean_gap: dur / (share * n) / DIURNAL_MAX,
                diurnal: true,
                t0: 0.0,
                t1: dur,
            });
        }
        // Research scanners: three organisations, each scanning from a /24 at a steady rate.
        let research_share = 0.15;
        for (i, name) in ["Example Internet Census", "Example University Scan Project", "Example Attack Surface Co"]
            .into_iter()
            .enumerate()
        {
            let base = fresh_ip(&mut setup) & 0xFFFF_FF00;
            let hosts = 4 + setup.below(12) as usize;
            let start = g.sources.len();
            for h in 0..hosts {
                let ip = base | (10 + h as u32);
                let src = g.new_source(&mut setup, ip, Tool::Research, Some(i as u16));
                g.sources.push(src);
            }
            g.research.push(ResearchTruth {
                name: name.to_string(),
                prefix: Ipv4Net { addr: base, len: 24 }.to_string(),
                sources: hosts as u64,
                packets: 0,
            });
            g.pops.push(Pop { sources: start..g.sources.len(), alias: Alias::zipf(hosts, 0.3), ramp: None });
            streams.push(Stream {
                kind: StreamKind::Pop(g.pops.len() - 1),
                mean_gap: dur / (research_share / 3.0 * n),
                diurnal: false,
                t0: 0.0,
                t1: dur,
            });
        }
        // The surge campaign: bots on one port, appearing over two hours from `surge_at`.
        let surge_share = 0.03;
        let surge_n = clamp(n / 20_000.0, 30, 20_000);
        let t0 = g.cfg.surge_at * dur;
        let start = g.sources.len();
        for _ in 0..surge_n {
            let ip = fresh_ip(&mut setup);
            let src = g.new_source(&mut setup, ip, Tool::Unknown, None);
            g.sources.push(src);
        }
        let ramp = 7_200.0f64.min((dur - t0) / 2.0).max(1.0);
        g.pops.push(Pop {
            sources: start..g.sources.len(),
            alias: Alias::new(&vec![1.0; surge_n]),
            ramp: Some((t0, ramp)),
        });
        // During the ramp only part of the bots are active (half on average): the candidate rate is
        // raised so the campaign still sends its share.
        let active_secs = ((dur - t0) - ramp / 2.0).max(1.0);
        streams.push(Stream {
            kind: StreamKind::Pop(g.pops.len() - 1),
            mean_gap: active_secs / (surge_share * n) / DIURNAL_MAX,
            diurnal: true,
            t0,
            t1: dur,
        });
        g.surge = Some(SurgeTruth {
            port: g.cfg.surge_port,
            proto: "tcp".into(),
            start: cynex_model::time::rfc3339_us(g.cfg.start_us + (t0 * 1e6) as i64),
            ramp_s: ramp as u64,
            sources: surge_n as u64,
            packets: 0,
        });
        // Background noise and misconfiguration one-offs.
        let bg_n = clamp(n / 50.0, 100, 1_000_000);
        g.background = (0..bg_n).map(|_| public_ip(&mut setup, &dark)).collect();
        g.background_alias = Alias::zipf(bg_n, 1.0);
        for (kind, share) in [(StreamKind::Background, 0.17), (StreamKind::Misconfig, 0.005), (StreamKind::V6, 0.005)] {
            streams.push(Stream { kind, mean_gap: dur / (share * n) / DIURNAL_MAX, diurnal: true, t0: 0.0, t1: dur });
        }
        // Backscatter: victims of spoofed floods answering into the dark block. One in five
        // attacks is tiny (below CAIDA's dos thresholds) so detectors must not report everything.
        let bs_packets = 0.12 * n;
        let attacks = clamp(bs_packets / 2_000.0, 3, 5_000);
        // Shares of all streams add up to 1; the tiny attacks' few packets are not counted, so the
        // full backscatter share goes to the others.
        let big_attacks = attacks - (attacks + 3) / 5;
        for i in 0..attacks {
            let tiny = i % 5 == 1;
            let (packets, rate) = if tiny {
                (setup.range(3, 20) as f64, 0.02 + setup.f64() * 0.1)
            } else {
                (bs_packets / big_attacks as f64 * (0.3 + setup.f64() * 1.4), 1.5 + setup.f64() * 10.0)
            };
            let len = (packets / rate).clamp(90.0, dur * 0.5);
            let t0 = setup.f64() * (dur - len).max(0.0);
            let vector =
                *setup.pick(&[Vector::SynAck, Vector::SynAck, Vector::Rst, Vector::IcmpUnreach, Vector::EchoReply]);
            let victim = fresh_ip(&mut setup);
            g.attacks.push(Attack {
                victim,
                vector,
                service_port: *setup.pick(&[80, 443, 53, 25, 22, 8080]),
                packets: 0,
                first_us: 0,
                last_us: 0,
                buckets: [0; 6],
                bucket_at: i64::MIN,
                max_60s: 0,
            });
            streams.push(Stream {
                kind: StreamKind::Attack(i),
                mean_gap: len / packets,
                diurnal: false,
                t0,
                t1: t0 + len,
            });
        }
        g.streams = streams;
        Ok(g)
    }
}

impl Gen {
    fn new_source(&self, r: &mut Rng, ip: u32, tool: Tool, research: Option<u16>) -> Source {
        let pick_ports = |r: &mut Rng, max: u64| -> Vec<u16> {
            let k = 1 + r.below(max) as usize;
            let mut v: Vec<u16> = (0..k).map(|_| *r.pick(&COMMON_PORTS)).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let (ports, window, sport) = match tool {
            Tool::Mirai => (vec![23, 2323], r.u16() | 1, 1024 + r.below(64_511) as u16),
            Tool::Zmap | Tool::Zmap41 => (pick_ports(r, 2), 65_535, 0),
            Tool::Masscan => (pick_ports(r, 8), 1024, 40_000 + r.below(20_000) as u16),
            Tool::Nmap => (NMAP_PORTS.to_vec(), 1024, 32_768 + r.below(28_000) as u16),
            Tool::Unicornscan => ((1..=1024).collect(), 4128, 1024 + r.below(60_000) as u16),
            Tool::Research => (Vec::new(), 65_535, 0),
            Tool::Unknown => (vec![self.cfg.surge_port], 14_600, 0),
        };
        Source {
            ip,
            tool,
            ports,
            window,
            sport,
            hops: 3 + r.below(20) as u8,
            key: r.u32(),
            research,
            packets: 0,
            first_us: 0,
            last_us: 0,
        }
    }
}

impl Gen {
    fn dark_dst(&mut self) -> u32 {
        let i = self.rng.below(self.cfg.dark.size());
        self.cfg.dark.nth(i)
    }

    fn ts_us(&self, t: f64) -> i64 {
        self.cfg.start_us + (t * 1e6) as i64
    }

    /// Write the packet stream `s` sends at `t` (seconds from start). Returns false when the
    /// stream sent nothing this time (thinning of a ramping population).
    fn emit<W: Write>(&mut self, s: Stream, t: f64, out: &mut CaptureWriter<W>) -> std::io::Result<bool> {
        let ts = self.ts_us(t);
        match s.kind {
            StreamKind::Pop(p) => {
                let pop = &self.pops[p];
                let k = match pop.ramp {
                    Some((t0, ramp)) => {
                        let active = (((t - t0) / ramp).min(1.0) * pop.sources.len() as f64).ceil() as usize;
                        if active == 0 || self.rng.below(pop.sources.len() as u64) as usize >= active {
                            return Ok(false);
                        }
                        pop.sources.start + self.rng.below(active as u64) as usize
                    }
                    None => pop.sources.start + pop.alias.sample(&mut self.rng),
                };
                self.scanner_packet(k, ts, out)?;
            }
            StreamKind::Attack(a) => self.backscatter_packet(a, ts, out)?,
            StreamKind::Background => self.background_packet(ts, out)?,
            StreamKind::Misconfig => self.misconfig_packet(ts, out)?,
            StreamKind::V6 => self.v6_packet(ts, out)?,
        }
        Ok(true)
    }

    fn scanner_packet<W: Write>(&mut self, k: usize, ts: i64, out: &mut CaptureWriter<W>) -> std::io::Result<()> {
        let dst = self.dark_dst();
        let r = &mut self.rng;
        let s = &mut self.sources[k];
        if s.packets == 0 {
            s.first_us = ts;
        }
        s.packets += 1;
        s.last_us = ts;
        let (ip, tcp) = match s.tool {
            Tool::Mirai => {
                // scanner.c: 90% port 23, 10% port 2323 (`i % 10 == 0`); seq = daddr; TTL 64.
                let dport = if r.below(10) == 0 { 2323 } else { 23 };
                (
                    Ip4 { src: s.ip, dst, ttl: 64 - s.hops, id: r.u16(), df: false },
                    Tcp { sport: s.sport, dport, seq: dst, ack: 0, flags: 0x02, window: s.window, opts: &[] },
                )
            }
            Tool::Zmap | Tool::Zmap41 | Tool::Research => {
                let old = s.tool == Tool::Zmap;
                let dport = if s.ports.is_empty() {
                    // Research scanners sweep common and random ports alike.
                    if r.chance(0.5) {
                        *r.pick(&COMMON_PORTS)
                    } else {
                        1 + r.below(65_535) as u16
                    }
                } else {
                    *r.pick(&s.ports)
                };
                (
                    Ip4 { src: s.ip, dst, ttl: 255 - s.hops, id: if old { 54_321 } else { r.u16() }, df: false },
                    Tcp {
                        sport: 32_768 + r.below(28_233) as u16,
                        dport,
                        seq: r.u32(),
                        ack: 0,
                        flags: 0x02,
                        window: 65_535,
                        opts: if old { opts::MSS1460 } else { opts::WINDOWS },
                    },
                )
            }
            Tool::Masscan => {
                let dport = *r.pick(&s.ports);
                let seq = r.u32();
                let id = ((dst ^ dport as u32 ^ seq) & 0xFFFF) as u16;
                (
                    Ip4 { src: s.ip, dst, ttl: 255 - s.hops, id, df: false },
                    Tcp { sport: s.sport, dport, seq, ack: 0, flags: 0x02, window: 1024, opts: &[] },
                )
            }
            Tool::Nmap => {
                let dport = *r.pick(&s.ports);
                // Nmap picks a random TTL in 37-59 per probe when --ttl is not given (tcpip.cc L533).
                let ttl = 37 + r.below(23) as u8;
                (
                    Ip4 { src: s.ip, dst, ttl, id: r.u16(), df: false },
                    Tcp { sport: s.sport, dport, seq: s.key, ack: 0, flags: 0x02, window: 1024, opts: opts::MSS1460 },
                )
            }
            Tool::Unicornscan => {
                let dport = *r.pick(&s.ports);
                // D is the destination as the x86 sender reads s_addr: byte-swapped.
                let seq = s.key ^ dst.swap_bytes() ^ (((dport as u32) << 16).wrapping_add(s.sport as u32));
                (
                    Ip4 { src: s.ip, dst, ttl: 255 - s.hops, id: r.u16(), df: false },
                    Tcp { sport: s.sport, dport, seq, ack: 0, flags: 0x02, window: 4128, opts: opts::MSS1460 },
                )
            }
            Tool::Unknown => (
                Ip4 { src: s.ip, dst, ttl: 64 - s.hops, id: r.u16(), df: true },
                Tcp {
                    sport: 1024 + r.below(64_511) as u16,
                    dport: s.ports[0],
                    seq: r.u32(),
                    ack: 0,
                    flags: 0x02,
                    window: s.window,
                    opts: &[],
                },
            ),
        };
        let frame = self.fb.ipv4_tcp(&ip, &tcp);
        out.write(ts, frame)
    }

    fn backscatter_packet<W: Write>(&mut self, a: usize, ts: i64, out: &mut CaptureWriter<W>) -> std::io::Result<()> {
        let dst = self.dark_dst();
        let r = &mut self.rng;
        let at = &mut self.attacks[a];
        if at.packets == 0 {
            at.first_us = ts;
        }
        at.packets += 1;
        at.last_us = ts;
        let bucket = ts.div_euclid(10_000_000);
        if at.bucket_at == i64::MIN {
            at.bucket_at = bucket;
        }
        while at.bucket_at < bucket {
            at.buckets.rotate_left(1);
            at.buckets[5] = 0;
            at.bucket_at += 1;
            if bucket - at.bucket_at > 6 {
                at.buckets = [0; 6];
                at.bucket_at = bucket;
            }
        }
        at.buckets[5] += 1;
        at.max_60s = at.max_60s.max(at.buckets.iter().sum());
        let frame = match at.vector {
            Vector::SynAck | Vector::Rst => {
                let synack = at.vector == Vector::SynAck;
                let ip = Ip4 { src: at.victim, dst, ttl: 64 - (r.below(20) as u8), id: r.u16(), df: true };
                let tcp = Tcp {
                    sport: at.service_port,
                    dport: 1024 + r.below(64_511) as u16,
                    seq: if synack { r.u32() } else { 0 },
                    ack: r.u32(),
                    flags: if synack { 0x12 } else { 0x14 },
                    window: if synack { 29_200 } else { 0 },
                    opts: if synack { opts::MSS1460 } else { &[] },
                };
                self.fb.ipv4_tcp(&ip, &tcp)
            }
            Vector::IcmpUnreach => {
                // The victim's router reports the flood's packets (spoofed from our dark block)
                // as unreachable, quoting their header: inner src = dark address, inner dst = victim.
                let router = (at.victim & 0xFFFF_FF00) | 1;
                let mut inner = [0u8; 28];
                inner[0] = 0x45;
                inner[2..4].copy_from_slice(&40u16.to_be_bytes());
                inner[8] = 50;
                inner[9] = 17;
                inner[12..16].copy_from_slice(&dst.to_be_bytes());
                inner[16..20].copy_from_slice(&at.victim.to_be_bytes());
                inner[20..22].copy_from_slice(&(1024 + r.below(64_511) as u16).to_be_bytes());
                inner[22..24].copy_from_slice(&at.service_port.to_be_bytes());
                let ip = Ip4 { src: router, dst, ttl: 250 - (r.below(20) as u8), id: r.u16(), df: false };
                self.fb.ipv4_icmp(&ip, 3, 1, 0, &inner)
            }
            Vector::EchoReply => {
                let ip = Ip4 { src: at.victim, dst, ttl: 64 - (r.below(20) as u8), id: r.u16(), df: false };
                self.fb.ipv4_icmp(&ip, 0, 0, r.u32(), &[0u8; 32])
            }
        };
        out.write(ts, frame)
    }

    fn background_packet<W: Write>(&mut self, ts: i64, out: &mut CaptureWriter<W>) -> std::io::Result<()> {
        let dst = self.dark_dst();
        self.counts.background += 1;
        let r = &mut self.rng;
        // A few packets carry a spoofed private source (misrouted or forged).
        let src = if r.chance(0.005) {
            0xC0A8_0000 | r.below(65_536) as u32
        } else {
            self.background[self.background_alias.sample(r)]
        };
        let frame = match r.below(10) {
            0..=4 => {
                let windows = r.chance(0.5);
                let ip =
                    Ip4 { src, dst, ttl: if windows { 128 } else { 64 } - (r.below(20) as u8), id: r.u16(), df: true };
                let tcp = Tcp {
                    sport: 49_152 + r.below(16_383) as u16,
                    dport: *r.pick(&COMMON_PORTS),
                    seq: r.u32(),
                    ack: 0,
                    flags: 0x02,
                    window: if windows { 64_240 } else { 29_200 },
                    opts: if windows { opts::WINDOWS } else { opts::LINUX },
                };
                self.fb.ipv4_tcp(&ip, &tcp)
            }
            5..=8 => {
                let (dport, payload): (u16, &[u8]) = *r.pick(&[
                    (
                        1900,
                        b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\n\r\n"
                            .as_slice(),
                    ),
                    (123, &[0x17, 0x00, 0x03, 0x2a, 0, 0, 0, 0]),
                    (161, &[0x30, 0x26, 0x02, 0x01, 0x01, 0x04, 0x06, b'p', b'u', b'b', b'l', b'i', b'c']),
                    (11_211, b"\x00\x01\x00\x00\x00\x01\x00\x00stats\r\n"),
                    (5060, b"OPTIONS sip:nm SIP/2.0\r\n\r\n"),
                    (53, &[0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0, 1]),
                ]);
                let ip = Ip4 { src, dst, ttl: 64 - (r.below(30) as u8), id: r.u16(), df: false };
                self.fb.ipv4_udp(&ip, 1024 + r.below(64_511) as u16, dport, payload)
            }
            _ => {
                let ip = Ip4 { src, dst, ttl: 64 - (r.below(30) as u8), id: r.u16(), df: false };
                self.fb.ipv4_icmp(&ip, 8, 0, r.u32(), &[0u8; 16])
            }
        };
        out.write(ts, frame)
    }

    fn misconfig_packet<W: Write>(&mut self, ts: i64, out: &mut CaptureWriter<W>) -> std::io::Result<()> {
        let dst = self.dark_dst();
        self.counts.misconfig += 1;
        let src = public_ip(&mut self.rng, &self.cfg.dark);
        let r = &mut self.rng;
        let ip = Ip4 { src, dst, ttl: 64 - (r.below(30) as u8), id: r.u16(), df: true };
        // A host configured with a wrong (now dark) server address: one syslog, NTP or DNS packet.
        let (dport, payload): (u16, &[u8]) = *r.pick(&[
            (514, b"<13>Nov  1 00:00:00 host app: started".as_slice()),
            (123, &[0x1b; 48]),
            (53, &[0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1]),
        ]);
        let frame = self.fb.ipv4_udp(&ip, 1024 + r.below(64_511) as u16, dport, payload);
        out.write(ts, frame)
    }

    fn v6_packet<W: Write>(&mut self, ts: i64, out: &mut CaptureWriter<W>) -> std::io::Result<()> {
        self.counts.ipv6 += 1;
        let r = &mut self.rng;
        let mut src = [0u8; 16];
        src[..8].copy_from_slice(&(0x2a00_0000_0000_0000u64 | (r.next_u64() >> 8)).to_be_bytes());
        src[8..].copy_from_slice(&r.next_u64().to_be_bytes());
        // Dark IPv6 space: 2001:db8:d00d::/48 (documentation prefix, RFC 3849).
        let mut dst = [0x20, 0x01, 0x0d, 0xb8, 0xd0, 0x0d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        dst[8..].copy_from_slice(&r.next_u64().to_be_bytes());
        let tcp = Tcp {
            sport: 1024 + r.below(64_511) as u16,
            dport: *r.pick(&COMMON_PORTS),
            seq: r.u32(),
            ack: 0,
            flags: 0x02,
            window: 64_800,
            opts: opts::LINUX,
        };
        let frame = self.fb.ipv6_tcp(src, dst, 64 - (r.below(20) as u8), &tcp);
        out.write(ts, frame)
    }

    fn run<W: Write>(&mut self, out: &mut CaptureWriter<W>) -> std::io::Result<()> {
        let dur = self.cfg.duration_s as f64;
        // Min-heap on (time in ns, stream index); integer keys keep the order total.
        let mut heap: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
        let day_offset = (self.cfg.start_us.rem_euclid(86_400_000_000)) as f64 / 1e6;
        // Over a part of a day the diurnal curve does not average 1: scale the diurnal streams so
        // the capture still holds about `packets` packets whatever its start and duration.
        let samples = 1_000;
        let mean_d = (0..samples).map(|k| diurnal(day_offset + dur * (k as f64 + 0.5) / samples as f64)).sum::<f64>()
            / samples as f64;
        let mut streams = std::mem::take(&mut self.streams);
        for s in streams.iter_mut().filter(|s| s.diurnal) {
            s.mean_gap *= mean_d;
        }
        for (i, s) in streams.iter().enumerate() {
            let t = s.t0 + self.rng.exp(s.mean_gap);
            if t < s.t1 {
                heap.push(Reverse(((t * 1e9) as u64, i)));
            }
        }
        while let Some(Reverse((tn, i))) = heap.pop() {
            let t = tn as f64 / 1e9;
            if t >= dur || out.packets >= self.cfg.packets {
                break;
            }
            let s = streams[i];
            let keep = !s.diurnal || self.rng.f64() * DIURNAL_MAX < diurnal(t + day_offset);
            if keep {
                self.emit(s, t, out)?;
            }
            let next = t + self.rng.exp(s.mean_gap).max(1e-6);
            if next < s.t1 {
                heap.push(Reverse(((next * 1e9) as u64, i)));
            }
        }
        self.streams = streams;
        Ok(())
    }
}

/// Write a synthetic darknet capture of `cfg` to `out`, returning its ground truth.
pub fn generate_darknet<W: Write>(cfg: &DarknetConfig, out: W) -> Result<(GroundTruth, W)> {
    let mut g = Gen::new(cfg.clone())?;
    let mut w = CaptureWriter::new(out, cfg.format, 65_535)?;
    g.run(&mut w)?;
    let (packets, bytes) = (w.packets, w.bytes);
    let out = w.finish()?;
    Ok((truth::build(&g, packets, bytes), out))
}

#[cfg(test)]
mod tests;
