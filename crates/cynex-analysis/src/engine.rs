//! The analysis engine: one pass over `packets` rows in (roughly) time order, keeping per-key
//! state and emitting a finding when a key goes quiet. All state is serialisable, so an
//! incremental run resumes exactly where the previous one stopped.
//!
//! Order: rows must arrive in time order per key, and the caller promises through
//! [`Engine::advance`] that no later row is older than the watermark it gives (the runner passes
//! each file's minimum time, files sorted by it). Rows of one key that arrive out of order are
//! merged into the open event rather than lost.
//!
//! Layout: the statistics (5-minute bins, port-hours, counts) are counted in a `Tally` per
//! stream of rows (the runner's reader threads keep one per file) and merged into the state later;
//! the keyed detectors (scan events and sources by source address, backscatter by
//! victim) live in `SHARDS` shards, and a row is buffered in its key's shard until the buffer
//! fills or the watermark moves. The shards then apply their rows on all cores, each shard's
//! maps staying in cache while its rows are applied.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use cynex_model::packet::{proto, tags, tcp_flags as f};
use datafusion::arrow::array::{Array, AsArray, PrimitiveArray, RecordBatch};
use datafusion::arrow::datatypes::{TimestampMicrosecondType, UInt16Type, UInt32Type, UInt8Type};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::distinct::Distinct;
use crate::finding::{finding_id, kind, Finding};
use crate::research::ResearchIndex;
use crate::tools::{attribute, SourceState};
use crate::AnalysisConfig;

pub(crate) type Map<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

/// The `packets` columns the engine reads (by name, in any order).
pub const COLUMNS: [&str; 17] = [
    "ts",
    "ip_version",
    "src_ip4",
    "dst_ip4",
    "proto",
    "ttl",
    "dst_port",
    "src_port",
    "tcp_flags",
    "tcp_seq",
    "tcp_window",
    "tcp_wscale",
    "icmp_type",
    "inner_dst_ip4",
    "frame_len",
    "fp",
    "tags",
];

const US: i64 = 1_000_000;
const BIN_US: i64 = 300 * US;
pub(crate) const HOUR_US: i64 = 3_600 * US;
pub(crate) const DAY_US: i64 = 86_400 * US;

/// Traffic types (after Merit ORION's darknet-events), kept per scan event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Traffic {
    TcpSyn = 0,
    TcpSynAck,
    TcpAck,
    TcpRst,
    TcpFin,
    TcpOther,
    Udp,
    IcmpEchoRequest,
    IcmpEchoReply,
    IcmpUnreachable,
    IcmpTimeExceeded,
    IcmpOther,
    Other,
}

impl Traffic {
    pub const NAMES: [&'static str; 13] = [
        "tcp-syn",
        "tcp-synack",
        "tcp-ack",
        "tcp-rst",
        "tcp-fin",
        "tcp-other",
        "udp",
        "icmp-echo-request",
        "icmp-echo-reply",
        "icmp-unreachable",
        "icmp-time-exceeded",
        "icmp-other",
        "other",
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    const ALL: [Traffic; 13] = [
        Traffic::TcpSyn,
        Traffic::TcpSynAck,
        Traffic::TcpAck,
        Traffic::TcpRst,
        Traffic::TcpFin,
        Traffic::TcpOther,
        Traffic::Udp,
        Traffic::IcmpEchoRequest,
        Traffic::IcmpEchoReply,
        Traffic::IcmpUnreachable,
        Traffic::IcmpTimeExceeded,
        Traffic::IcmpOther,
        Traffic::Other,
    ];

    fn from_u8(t: u8) -> Traffic {
        Self::ALL.get(t as usize).copied().unwrap_or(Traffic::Other)
    }

    fn classify(p: u8, flags: u8, icmp_type: Option<u8>) -> Traffic {
        match p {
            proto::TCP => {
                if flags & f::RST != 0 {
                    Traffic::TcpRst
                } else if flags & (f::SYN | f::ACK) == f::SYN {
                    Traffic::TcpSyn
                } else if flags & (f::SYN | f::ACK) == f::SYN | f::ACK {
                    Traffic::TcpSynAck
                } else if flags & f::FIN != 0 {
                    Traffic::TcpFin
                } else if flags & f::ACK != 0 {
                    Traffic::TcpAck
                } else {
                    Traffic::TcpOther
                }
            }
            proto::UDP => Traffic::Udp,
            proto::ICMP => match icmp_type {
                Some(8) => Traffic::IcmpEchoRequest,
                Some(0) => Traffic::IcmpEchoReply,
                Some(3) => Traffic::IcmpUnreachable,
                Some(11) => Traffic::IcmpTimeExceeded,
                _ => Traffic::IcmpOther,
            },
            _ => Traffic::Other,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ScanState {
    first: i64,
    last: i64,
    packets: u64,
    bytes: u64,
    dsts: Distinct,
    nets: Distinct,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct VictimState {
    first: i64,
    last: i64,
    packets: u64,
    bytes: u64,
    /// Bit per [`Traffic`] type seen.
    traffic: u16,
    ports: Vec<u16>,
    attackers16: Distinct,
    bucket_at: i64,
    buckets: [u32; 6],
    max_60s: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Bin {
    pub(crate) packets: u64,
    pub(crate) bytes: u64,
    pub(crate) tcp: u64,
    pub(crate) udp: u64,
    pub(crate) icmp: u64,
    pub(crate) other: u64,
    pub(crate) backscatter: u64,
    pub(crate) research: u64,
    pub(crate) sources: Distinct,
}

impl Bin {
    pub(crate) fn merge(&mut self, o: &Bin) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.tcp += o.tcp;
        self.udp += o.udp;
        self.icmp += o.icmp;
        self.other += o.other;
        self.backscatter += o.backscatter;
        self.research += o.research;
        self.sources.merge(&o.sources);
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct PortHour {
    pub(crate) packets: u64,
    pub(crate) sources: Distinct,
}

/// Statistics of one day dropped from state, still to be written.
#[derive(Debug, Default)]
pub(crate) struct DayStats {
    pub(crate) bins: BTreeMap<i64, Bin>,
    pub(crate) ports: Vec<(u64, PortHour)>,
}

/// Hourly unique-source counts of one (protocol, port), for surge detection.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Series {
    /// The hour of the last value in `counts`.
    last_hour: i64,
    counts: VecDeque<u32>,
    cusum: f64,
    alerting: bool,
}

/// Keyed state (scan events, sources, victims) is split into `SHARDS` shards by a hash of the
/// key's address. Rows are buffered per shard and each shard's rows are applied together, so the
/// maps being probed are a shard's (small enough to stay in cache while its rows are applied,
/// where one map of millions of keys costs a DRAM miss per probe), and the shards are applied on
/// all cores at once. Per key, rows are still applied in arrival order.
const SHARD_BITS: u32 = 10;
pub(crate) const SHARDS: usize = 1 << SHARD_BITS;

/// The shard of the state keyed by address `ip` (a Fibonacci hash's top bits: independent of the
/// low bits the shard's own hash map uses).
#[inline]
fn shard_of(ip: u32) -> usize {
    (ip.wrapping_mul(0x9E37_79B1) >> (32 - SHARD_BITS)) as usize
}

/// Which address a keyed map's key belongs to (for its shard).
trait ShardKey: std::hash::Hash + Eq + Copy {
    fn addr(self) -> u32;
}

impl ShardKey for u32 {
    fn addr(self) -> u32 {
        self
    }
}

impl ShardKey for u64 {
    /// A scan key: the source is the high half.
    fn addr(self) -> u32 {
        (self >> 32) as u32
    }
}

/// Row flag: a backscatter row (its key is the victim, not the source).
const K_BACKSCATTER: u8 = 1;
/// Row flag: the TCP window-scale option was present.
const K_WSCALE: u8 = 2;

/// What a shard needs of a row, buffered until the shard's rows are applied (40 bytes instead
/// of [`Row`]'s 64).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keyed {
    pub(crate) ts: i64,
    /// The source (scan rows) or the victim (backscatter rows).
    key: u32,
    pub(crate) dst: u32,
    pub(crate) seq: u32,
    len: u32,
    pub(crate) dport: u16,
    pub(crate) sport: u16,
    pub(crate) window: u16,
    pub(crate) fp: u16,
    pub(crate) ttl: u8,
    traffic: u8,
    /// IP protocol, 255 when unknown.
    proto: u8,
    flags: u8,
}

impl Keyed {
    pub(crate) fn wscale(&self) -> bool {
        self.flags & K_WSCALE != 0
    }

    fn traffic(&self) -> Traffic {
        Traffic::from_u8(self.traffic)
    }
}

/// One shard of the keyed state, with the rows waiting to be applied to it and the findings it
/// concluded since they were last collected.
#[derive(Debug, Default)]
pub(crate) struct Shard {
    scans: Map<u64, ScanState>,
    sources: Map<u32, SourceState>,
    victims: Map<u32, VictimState>,
    rows: Vec<Keyed>,
    out: Vec<Finding>,
}

/// The shards. Serialised as the three maps they partition, one after the other, each as a
/// single map: the state file does not depend on the number of shards.
#[derive(Debug)]
pub(crate) struct Shards(Vec<Shard>);

impl Default for Shards {
    fn default() -> Self {
        Shards((0..SHARDS).map(|_| Shard::default()).collect())
    }
}

/// Serialises the union of one map over all shards.
struct Union<'a, K, V>(&'a [Shard], fn(&Shard) -> &Map<K, V>);

impl<K: Serialize, V: Serialize> Serialize for Union<'_, K, V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let len = self.0.iter().map(|sh| (self.1)(sh).len()).sum();
        let mut m = s.serialize_map(Some(len))?;
        for sh in self.0 {
            for (k, v) in (self.1)(sh) {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

/// A run of shards as a state file's section: the capacity of each shard's tables (scan events,
/// sources, victims), then the three maps the shards split. The next run starts each table at the
/// capacity it reached, instead of growing it again from the entries left: at a telescope's rate
/// the scan events open within one timeout are about three times those left at the end, and each
/// doubling of a table copies it into freshly zeroed pages.
pub(crate) struct Section<'a>(&'a [Shard]);

impl Serialize for Section<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let cap = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let caps: Vec<[u32; 3]> = self
            .0
            .iter()
            .map(|sh| [cap(sh.scans.capacity()), cap(sh.sources.capacity()), cap(sh.victims.capacity())])
            .collect();
        let mut t = s.serialize_tuple(4)?;
        t.serialize_element(&caps)?;
        t.serialize_element(&Union(self.0, |sh| &sh.scans))?;
        t.serialize_element(&Union(self.0, |sh| &sh.sources))?;
        t.serialize_element(&Union(self.0, |sh| &sh.victims))?;
        t.end()
    }
}

impl Serialize for Shards {
    /// As the three maps the shards split (the layout of state files from before the split).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(3)?;
        t.serialize_element(&Union(&self.0, |sh| &sh.scans))?;
        t.serialize_element(&Union(&self.0, |sh| &sh.sources))?;
        t.serialize_element(&Union(&self.0, |sh| &sh.victims))?;
        t.end()
    }
}

impl Shards {
    /// The shards in `n` sections of consecutive shards (`n` divides [`SHARDS`]).
    pub(crate) fn sections(&self, n: usize) -> impl Iterator<Item = Section<'_>> {
        self.0.chunks(SHARDS / n).map(Section)
    }

    /// Shards read back as the `n` sections of [`Shards::sections`], in order.
    pub(crate) fn from_sections(sections: Vec<Vec<Shard>>) -> Shards {
        Shards(sections.into_iter().flatten().collect())
    }
}

/// Reads one map straight into the per-shard maps of shards `lo..hi`; a key of another shard is
/// an error (a section of a state file holds the keys of its shards only).
struct Spread<'a, K, V> {
    lo: usize,
    hi: usize,
    /// Per shard, the capacity its table had when written (empty: not known).
    caps: &'a [usize],
    kv: std::marker::PhantomData<(K, V)>,
}

impl<'de, K: ShardKey + Deserialize<'de>, V: Deserialize<'de>> serde::de::DeserializeSeed<'de> for Spread<'_, K, V> {
    type Value = Vec<Map<K, V>>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, K: ShardKey + Deserialize<'de>, V: Deserialize<'de>> serde::de::Visitor<'de> for Spread<'_, K, V> {
    type Value = Vec<Map<K, V>>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "a map of the keys of shards {}..{}", self.lo, self.hi)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        // Keys spread evenly over the shards: each map sized for its share up front, not grown by
        // rehashing; or, up to four times that share, for the capacity it had when written.
        let n = self.hi - self.lo;
        let per = a.size_hint().map_or(0, |k| k / n + k / n / 8);
        let mut maps: Vec<Map<K, V>> = (0..n)
            .map(|i| {
                let cap = self.caps.get(i).map_or(per, |c| (*c).min(4 * per).max(per));
                Map::with_capacity_and_hasher(cap, Default::default())
            })
            .collect();
        while let Some((k, v)) = a.next_entry::<K, V>()? {
            let i = shard_of(k.addr());
            if !(self.lo..self.hi).contains(&i) {
                return Err(serde::de::Error::custom(format!(
                    "a key of shard {i} in the section of shards {}..{}",
                    self.lo, self.hi
                )));
            }
            maps[i - self.lo].insert(k, v);
        }
        Ok(maps)
    }
}

/// Reads shards `lo..hi`: a state file's [`Section`] or, without `sized`, the three maps of
/// [`Shards`]' own layout.
#[derive(Clone, Copy)]
pub(crate) struct ShardsSeed {
    lo: usize,
    hi: usize,
    sized: bool,
}

impl ShardsSeed {
    /// The seed of section `i` of `n` (see [`Shards::sections`]).
    pub(crate) fn section(i: usize, n: usize) -> ShardsSeed {
        let per = SHARDS / n;
        ShardsSeed { lo: i * per, hi: (i + 1) * per, sized: true }
    }

    fn spread<K, V>(self, caps: &[usize]) -> Spread<'_, K, V> {
        Spread { lo: self.lo, hi: self.hi, caps, kv: std::marker::PhantomData }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for ShardsSeed {
    type Value = Vec<Shard>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_tuple(if self.sized { 4 } else { 3 }, self)
    }
}

impl<'de> serde::de::Visitor<'de> for ShardsSeed {
    type Value = Vec<Shard>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(if self.sized { "table capacities and three maps" } else { "three maps" })
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Vec<Shard>, A::Error> {
        use serde::de::Error;
        let caps: Vec<[u32; 3]> = if self.sized {
            let caps: Vec<[u32; 3]> = a.next_element()?.ok_or_else(|| A::Error::invalid_length(0, &self))?;
            if caps.len() != self.hi - self.lo {
                return Err(A::Error::custom(format!(
                    "{} table capacities for {} shards",
                    caps.len(),
                    self.hi - self.lo
                )));
            }
            caps
        } else {
            Vec::new()
        };
        let table = |t: usize| caps.iter().map(|c| c[t] as usize).collect::<Vec<usize>>();
        let at = self.sized as usize;
        let scans = a
            .next_element_seed(self.spread::<u64, ScanState>(&table(0)))?
            .ok_or_else(|| A::Error::invalid_length(at, &self))?;
        let sources = a
            .next_element_seed(self.spread::<u32, SourceState>(&table(1)))?
            .ok_or_else(|| A::Error::invalid_length(at + 1, &self))?;
        let victims = a
            .next_element_seed(self.spread::<u32, VictimState>(&table(2)))?
            .ok_or_else(|| A::Error::invalid_length(at + 2, &self))?;
        Ok(scans
            .into_iter()
            .zip(sources)
            .zip(victims)
            .map(|((scans, sources), victims)| Shard { scans, sources, victims, ..Default::default() })
            .collect())
    }
}

impl<'de> Deserialize<'de> for Shards {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::DeserializeSeed;
        ShardsSeed { lo: 0, hi: SHARDS, sized: false }.deserialize(d).map(Shards)
    }
}

/// Everything the engine remembers between runs.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// Scan events, sources and victims (in the state file: three maps, in that order).
    shards: Shards,
    /// Key: hour << 24 | proto << 16 | port.
    pub(crate) port_hours: Map<u64, PortHour>,
    pub(crate) bins: BTreeMap<i64, Bin>,
    series: Map<u32, Series>,
    /// Hours before this one have been judged for surges.
    judged_until: Option<i64>,
    first_hour: Option<i64>,
    watermark: i64,
    pub(crate) max_ts: i64,
    /// Distinct destinations ever seen (stands in for the dark-block size when none is set).
    pub(crate) dsts: Distinct,
    /// Days whose statistics were dropped from state: late rows for them are only counted.
    sealed_before_day: Option<i64>,
    pub(crate) late_rows: u64,
    pub rows: u64,
    /// Scan events and sources closed early to stay within `memory_mb`.
    pub evicted: u64,
}

impl State {
    /// Bytes of the port-hour table with the source sets it holds.
    fn port_hours_bytes(&self) -> usize {
        table_bytes(&self.port_hours) + self.port_hours.values().map(|p| p.sources.heap_bytes()).sum::<usize>()
    }

    /// The keyed state, taken out (the state keeps empty shards): a state file writes it in
    /// sections beside the rest.
    pub(crate) fn take_shards(&mut self) -> Shards {
        std::mem::take(&mut self.shards)
    }

    pub(crate) fn set_shards(&mut self, shards: Shards) {
        self.shards = shards;
    }

    /// The capacity of each shard's scan-event and source tables.
    #[cfg(test)]
    pub(crate) fn table_capacities(&self) -> Vec<[usize; 2]> {
        self.shards.0.iter().map(|sh| [sh.scans.capacity(), sh.sources.capacity()]).collect()
    }

    /// Every keyed entry with its shard, serialised, sorted: equal for equal keyed state.
    #[cfg(test)]
    pub(crate) fn keyed_entries(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (i, sh) in self.shards.0.iter().enumerate() {
            out.extend(sh.scans.iter().map(|e| postcard::to_allocvec(&(i, 0, e)).unwrap()));
            out.extend(sh.sources.iter().map(|e| postcard::to_allocvec(&(i, 1, e)).unwrap()));
            out.extend(sh.victims.iter().map(|e| postcard::to_allocvec(&(i, 2, e)).unwrap()));
        }
        out.sort_unstable();
        out
    }
}

fn scan_key(src: u32, port: u16, t: Traffic) -> u64 {
    (src as u64) << 32 | (port as u64) << 8 | t as u64
}

fn port_hour_key(hour: i64, p: u8, port: u16) -> u64 {
    (hour as u64) << 24 | (p as u64) << 16 | port as u64
}

/// The [`COLUMNS`] of one batch, typed, for reading rows one at a time (the runner merges
/// several files' rows by time through cursors).
pub struct Cursor {
    ts: PrimitiveArray<TimestampMicrosecondType>,
    ver: PrimitiveArray<UInt8Type>,
    src: PrimitiveArray<UInt32Type>,
    dst: PrimitiveArray<UInt32Type>,
    proto: PrimitiveArray<UInt8Type>,
    ttl: PrimitiveArray<UInt8Type>,
    dport: PrimitiveArray<UInt16Type>,
    sport: PrimitiveArray<UInt16Type>,
    flags: PrimitiveArray<UInt8Type>,
    seq: PrimitiveArray<UInt32Type>,
    win: PrimitiveArray<UInt16Type>,
    ws: PrimitiveArray<UInt8Type>,
    icmp: PrimitiveArray<UInt8Type>,
    inner: PrimitiveArray<UInt32Type>,
    len: PrimitiveArray<UInt32Type>,
    fp: PrimitiveArray<UInt16Type>,
    tags: PrimitiveArray<UInt16Type>,
}

impl Cursor {
    pub fn new(b: &RecordBatch) -> Result<Cursor, String> {
        fn get<T: datafusion::arrow::datatypes::ArrowPrimitiveType>(
            b: &RecordBatch,
            name: &str,
        ) -> Result<PrimitiveArray<T>, String> {
            b.column_by_name(name)
                .ok_or_else(|| format!("no column {name}"))?
                .as_primitive_opt::<T>()
                .cloned()
                .ok_or_else(|| format!("column {name} has the wrong type"))
        }
        Ok(Cursor {
            ts: get(b, "ts")?,
            ver: get(b, "ip_version")?,
            src: get(b, "src_ip4")?,
            dst: get(b, "dst_ip4")?,
            proto: get(b, "proto")?,
            ttl: get(b, "ttl")?,
            dport: get(b, "dst_port")?,
            sport: get(b, "src_port")?,
            flags: get(b, "tcp_flags")?,
            seq: get(b, "tcp_seq")?,
            win: get(b, "tcp_window")?,
            ws: get(b, "tcp_wscale")?,
            icmp: get(b, "icmp_type")?,
            inner: get(b, "inner_dst_ip4")?,
            len: get(b, "frame_len")?,
            fp: get(b, "fp")?,
            tags: get(b, "tags")?,
        })
    }

    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    #[inline]
    pub fn row(&self, i: usize) -> Row {
        let o8 = |a: &PrimitiveArray<UInt8Type>| a.is_valid(i).then(|| a.value(i));
        let o32 = |a: &PrimitiveArray<UInt32Type>| a.is_valid(i).then(|| a.value(i));
        Row {
            ts: self.ts.value(i),
            v4: self.ver.value(i) == 4,
            src: o32(&self.src),
            dst: o32(&self.dst),
            proto: o8(&self.proto),
            ttl: self.ttl.values()[i],
            dport: self.dport.values()[i],
            sport: self.sport.values()[i],
            flags: self.flags.values()[i],
            seq: self.seq.values()[i],
            window: self.win.values()[i],
            wscale: self.ws.is_valid(i),
            icmp_type: o8(&self.icmp),
            inner_dst: o32(&self.inner),
            len: self.len.value(i),
            fp: self.fp.value(i),
            tags: self.tags.value(i),
        }
    }
}

/// Column values of one row, as the engine reads them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Row {
    pub ts: i64,
    pub v4: bool,
    pub src: Option<u32>,
    pub dst: Option<u32>,
    pub proto: Option<u8>,
    pub ttl: u8,
    pub dport: u16,
    pub sport: u16,
    pub flags: u8,
    pub seq: u32,
    pub window: u16,
    pub wscale: bool,
    pub icmp_type: Option<u8>,
    pub inner_dst: Option<u32>,
    pub len: u32,
    pub fp: u16,
    pub tags: u16,
}

pub struct Engine {
    cfg: Arc<AnalysisConfig>,
    research: Arc<ResearchIndex>,
    pub(crate) st: State,
    out: Vec<Finding>,
    /// Days with rows in this run: their statistics are rewritten.
    pub(crate) touched_days: BTreeSet<i64>,
    /// Statistics of touched days that were dropped from state during this run.
    pub(crate) sealed: Vec<(i64, DayStats)>,
    /// The statistics of rows observed since they were last merged into the state (at each
    /// advance); the runner's reader threads keep their own.
    tally: Tally,
    /// Dark addresses used for rates: configured, or refreshed from `st.dsts` at each advance.
    dark: u64,
    /// Rows waiting to be applied, per shard (moved into the shards when they are handed over).
    bufs: Vec<Vec<Keyed>>,
    /// Rows in `bufs`.
    pending: usize,
    /// While the shards apply a chunk of rows on other threads, the merging thread goes on
    /// filling `bufs`: the shards (with the findings they conclude) come back here.
    away: Option<std::thread::JoinHandle<Vec<Shard>>>,
    /// Rows buffered before the shards apply them (bounded by the memory limit).
    chunk_rows: usize,
}

/// Probes (TCP SYN, UDP) per port of one hour, with their sources, indexed by protocol and port.
#[derive(Default)]
struct HourPorts {
    hour: i64,
    /// TCP ports, then UDP ports (allocated at the first probe).
    slots: Vec<PortHour>,
    /// Indices of the slots in use.
    used: Vec<u32>,
}

impl HourPorts {
    #[inline]
    fn observe(&mut self, p: u8, port: u16, src: u32) {
        if self.slots.is_empty() {
            self.slots = (0..2 << 16).map(|_| PortHour::default()).collect();
        }
        let i = ((p == proto::UDP) as usize) << 16 | port as usize;
        let ph = &mut self.slots[i];
        if ph.packets == 0 {
            self.used.push(i as u32);
        }
        ph.packets += 1;
        ph.sources.insert(src);
    }

    /// The slots in use, as (protocol, port, counts), emptied.
    fn drain(&mut self) -> impl Iterator<Item = (u8, u16, PortHour)> + '_ {
        let slots = &mut self.slots;
        self.used.drain(..).map(move |i| {
            let p = if i >> 16 == 1 { proto::UDP } else { proto::TCP };
            (p, i as u16, std::mem::take(&mut slots[i as usize]))
        })
    }
}

/// Row flag: the row only carries a destination for the dark-block size (the detectors skip it).
const K_DST_ONLY: u8 = 4;

/// The statistics of a stream of rows (5-minute bins, port-hours, counts), and the rows the
/// keyed detectors need. Statistics are sums and set unions, so the tallies of several streams
/// (the runner's reader threads, one per file) merge into the state in any order with the same
/// result; only the keyed rows need the merged time order.
pub(crate) struct Tally {
    research: Arc<ResearchIndex>,
    /// Only rows in [from, to) are analysed (batch runs over a range).
    range: (i64, i64),
    /// Days before this one are sealed: their rows are only counted (see `State`).
    sealed_before_day: Option<i64>,
    /// Rows the detectors skip are still passed on for their destination: no dark-block size is
    /// configured, so it is the number of distinct destinations seen.
    dsts: bool,
    rows: u64,
    late_rows: u64,
    max_ts: i64,
    /// Hour of the first probe (a row the scan detectors count).
    first_hour: Option<i64>,
    bins: BTreeMap<i64, Bin>,
    /// The 5-minute bin being filled (rows come in time order: one map lookup per bin change).
    cur: Option<(i64, Bin)>,
    days: BTreeSet<i64>,
    /// The current hour's probes per port, in a table indexed by port ...
    ports: HourPorts,
    /// ... and earlier hours' (the engine's own tally may span hours).
    port_hours: Map<u64, PortHour>,
}

impl Tally {
    fn new(research: Arc<ResearchIndex>, range: (i64, i64), sealed_before_day: Option<i64>, dsts: bool) -> Tally {
        Tally {
            research,
            range,
            sealed_before_day,
            dsts,
            rows: 0,
            late_rows: 0,
            max_ts: i64::MIN,
            first_hour: None,
            bins: BTreeMap::new(),
            cur: None,
            days: BTreeSet::new(),
            ports: HourPorts::default(),
            port_hours: Map::default(),
        }
    }

    /// Count a row; the row as the keyed detectors take it, if they do.
    #[inline]
    pub(crate) fn row(&mut self, r: &Row) -> Option<Keyed> {
        if r.ts < self.range.0 || r.ts >= self.range.1 {
            return None;
        }
        self.rows += 1;
        let day = r.ts.div_euclid(DAY_US);
        if self.sealed_before_day.is_some_and(|d| day < d) {
            // Its day's statistics are no longer in state; the row still feeds the detectors.
            self.late_rows += 1;
        } else {
            let research = r.src.is_some_and(|s| self.research.lookup(s).is_some());
            let b = r.ts.div_euclid(BIN_US);
            if self.cur.as_ref().is_none_or(|(cb, _)| *cb != b) {
                self.flush_bin();
                self.cur = Some((b, Bin::default()));
                // Every row of a bin is of the bin's day.
                self.days.insert(day);
            }
            let bin = &mut self.cur.as_mut()?.1;
            bin.packets += 1;
            bin.bytes += r.len as u64;
            match r.proto {
                Some(proto::TCP) => bin.tcp += 1,
                Some(proto::UDP) => bin.udp += 1,
                Some(proto::ICMP | proto::ICMPV6) => bin.icmp += 1,
                _ => bin.other += 1,
            }
            if r.tags & tags::BACKSCATTER != 0 {
                bin.backscatter += 1;
            }
            if research {
                bin.research += 1;
            }
            if let Some(s) = r.src {
                bin.sources.insert(s);
            }
        }
        self.max_ts = self.max_ts.max(r.ts);
        let (Some(src), Some(dst), true) = (r.src, r.dst, r.v4) else { return None };
        let p = r.proto.unwrap_or(255);
        let traffic = Traffic::classify(p, r.flags, r.icmp_type);
        let (key, flags) = if r.tags & tags::BACKSCATTER != 0 {
            // CAIDA Corsaro3 dos: for ICMP errors quoting the flood's packet the victim is the
            // quoted destination; otherwise the packet's source.
            let victim = match (traffic, r.inner_dst) {
                (Traffic::IcmpUnreachable | Traffic::IcmpTimeExceeded | Traffic::IcmpOther, Some(inner)) => inner,
                _ => src,
            };
            (victim, K_BACKSCATTER)
        } else if r.tags & tags::SPOOF_SUSPECT != 0 {
            if !self.dsts {
                return None;
            }
            (src, K_DST_ONLY)
        } else {
            // Port popularity for surges: probes only (SYN, UDP).
            let hour = r.ts.div_euclid(HOUR_US);
            if matches!(traffic, Traffic::TcpSyn | Traffic::Udp) {
                if self.ports.hour != hour {
                    self.flush_ports();
                    self.ports.hour = hour;
                }
                self.ports.observe(p, r.dport, src);
            }
            if self.first_hour.is_none() {
                self.first_hour = Some(hour);
            }
            (src, 0)
        };
        Some(Keyed {
            ts: r.ts,
            key,
            dst,
            seq: r.seq,
            len: r.len,
            dport: r.dport,
            sport: r.sport,
            window: r.window,
            fp: r.fp,
            ttl: r.ttl,
            traffic: traffic as u8,
            proto: p,
            flags: flags | if r.wscale { K_WSCALE } else { 0 },
        })
    }

    fn flush_bin(&mut self) {
        if let Some((b, bin)) = self.cur.take() {
            self.bins.entry(b).or_default().merge(&bin);
        }
    }

    fn flush_ports(&mut self) {
        let hour = self.ports.hour;
        for (p, port, ph) in self.ports.drain() {
            merge_port_hour(&mut self.port_hours, port_hour_key(hour, p, port), &ph);
        }
    }
}

fn merge_port_hour(into: &mut Map<u64, PortHour>, key: u64, ph: &PortHour) {
    let e = into.entry(key).or_default();
    e.packets += ph.packets;
    e.sources.merge(&ph.sources);
}

/// What applying rows to a shard reads besides the shard: settings, the research list and the
/// dark-block size in force.
struct Ctx<'a> {
    cfg: &'a AnalysisConfig,
    research: &'a ResearchIndex,
    dark: u64,
}

impl Ctx<'_> {
    fn global_rate(&self, packets: u64, first: i64, last: i64) -> f64 {
        let dur = ((last - first) as f64 / 1e6).max(1.0);
        packets as f64 * (4_294_967_296.0 / self.dark as f64) / dur
    }

    /// The finding of a scan event, if it passes the thresholds; `sources` is the shard's (the
    /// source's tool is named in it).
    fn scan_finding(&self, sources: &Map<u32, SourceState>, key: u64, s: &ScanState, closed: bool) -> Option<Finding> {
        let uniques = s.dsts.count();
        let rate = self.global_rate(s.packets, s.first, s.last);
        if uniques < self.cfg.scan_min_uniques || rate < self.cfg.scan_min_rate_pps {
            return None;
        }
        let src = (key >> 32) as u32;
        let port = (key >> 8) as u16;
        let traffic = Traffic::NAMES.get((key & 0xff) as usize).copied().unwrap_or("other");
        let proto = match (key & 0xff) as u8 {
            t if t <= Traffic::TcpOther as u8 => Some(proto::TCP),
            t if t == Traffic::Udp as u8 => Some(proto::UDP),
            t if t < Traffic::Other as u8 => Some(proto::ICMP),
            _ => None,
        };
        let tool = sources.get(&src).and_then(|st| attribute(st, self.cfg.tool_min_packets)).map(|a| a.tool);
        Some(Finding {
            id: finding_id(kind::SCAN, &[key, s.first as u64]),
            kind: kind::SCAN.into(),
            time: s.first,
            end_time: s.last,
            ip4: Some(src),
            port: matches!(proto, Some(proto::TCP | proto::UDP)).then_some(port),
            proto,
            traffic: Some(traffic.into()),
            tool: tool.map(str::to_string),
            label: self.research.lookup(src).map(str::to_string),
            packets: s.packets,
            uniques: Some(uniques),
            unique_24s: Some(s.nets.count()),
            rate: Some(rate),
            score: None,
            evidence: json!({
                "bytes": s.bytes,
                "duration_s": (s.last - s.first) as f64 / 1e6,
                "dark_addresses": self.dark,
                "closed": closed,
                "uniques_exact": s.dsts.is_exact(),
            }),
            country: None,
            asn: None,
            as_org: None,
        })
    }

    fn victim_finding(&self, victim: u32, v: &VictimState, closed: bool) -> Option<Finding> {
        let dur_s = (v.last - v.first) / US;
        if v.packets < self.cfg.dos_min_packets
            || dur_s < self.cfg.dos_min_duration_s as i64
            || v.max_60s < self.cfg.dos_min_60s_packets
        {
            return None;
        }
        let vectors: Vec<&str> =
            (0..Traffic::NAMES.len()).filter(|b| v.traffic & (1 << b) != 0).map(|b| Traffic::NAMES[b]).collect();
        let est_pps = self.global_rate(v.packets, v.first, v.last);
        Some(Finding {
            id: finding_id(kind::BACKSCATTER, &[victim as u64, v.first as u64]),
            kind: kind::BACKSCATTER.into(),
            time: v.first,
            end_time: v.last,
            ip4: Some(victim),
            port: v.ports.first().copied(),
            proto: None,
            traffic: Some(vectors.join(",")),
            tool: None,
            label: None,
            packets: v.packets,
            uniques: Some(v.attackers16.count()),
            unique_24s: None,
            rate: Some(est_pps),
            score: Some(v.max_60s as f64),
            evidence: json!({
                "vectors": vectors,
                "service_ports": v.ports,
                "attacker_16s": v.attackers16.count(),
                "max_packets_60s": v.max_60s,
                "duration_s": dur_s,
                "bytes": v.bytes,
                "estimated_attack_pps": est_pps,
                "closed": closed,
            }),
            country: None,
            asn: None,
            as_org: None,
        })
    }

    fn source_finding(&self, ip: u32, s: &SourceState, closed: bool) -> Option<Finding> {
        let a = attribute(s, self.cfg.tool_min_packets)?;
        Some(Finding {
            id: finding_id(kind::TOOL, &[ip as u64, s.first as u64]),
            kind: kind::TOOL.into(),
            time: s.first,
            end_time: s.last,
            ip4: Some(ip),
            port: s.top_port(),
            proto: Some(proto::TCP),
            traffic: Some(Traffic::TcpSyn.name().into()),
            tool: Some(a.tool.into()),
            label: self.research.lookup(ip).map(str::to_string),
            packets: s.packets,
            uniques: Some(s.ports.count()),
            unique_24s: None,
            rate: None,
            score: Some(a.matched as f64 / s.syn.max(1) as f64),
            evidence: json!({
                "rule": a.rule,
                "matched_packets": a.matched,
                "syn_packets": s.syn,
                "detail": a.detail,
                "ports": s.port_list(),
                "closed": closed,
            }),
            country: None,
            asn: None,
            as_org: None,
        })
    }
}

impl Shard {
    /// Apply the buffered rows, in order.
    fn apply(&mut self, ctx: &Ctx) {
        let rows = std::mem::take(&mut self.rows);
        let scan_to = ctx.cfg.scan_timeout_s as i64 * US;
        for r in &rows {
            if r.flags & K_BACKSCATTER != 0 {
                self.victim(ctx, r);
                continue;
            }
            let src = r.key;
            let traffic = r.traffic();
            let port = if matches!(r.proto, proto::TCP | proto::UDP) { r.dport } else { 0 };
            // Scan event.
            let key = scan_key(src, port, traffic);
            let ev =
                self.scans.entry(key).or_insert_with(|| ScanState { first: r.ts, last: r.ts, ..Default::default() });
            if r.ts - ev.last > scan_to {
                let old = std::mem::replace(ev, ScanState { first: r.ts, last: r.ts, ..Default::default() });
                self.out.extend(ctx.scan_finding(&self.sources, key, &old, true));
            }
            update_scan(ev, r);
            // Source.
            let s = self.sources.entry(src).or_insert_with(|| SourceState::new(r.ts));
            s.observe(r, traffic == Traffic::TcpSyn);
        }
        // Keep the buffer's capacity for the next rows.
        self.rows = rows;
        self.rows.clear();
    }

    fn victim(&mut self, ctx: &Ctx, r: &Keyed) {
        let victim = r.key;
        let traffic = r.traffic();
        let timeout = ctx.cfg.dos_timeout_s as i64 * US;
        let v = self.victims.entry(victim).or_insert_with(|| VictimState {
            first: r.ts,
            last: r.ts,
            bucket_at: r.ts.div_euclid(10 * US),
            ..Default::default()
        });
        if r.ts - v.last > timeout {
            let old = std::mem::replace(
                v,
                VictimState { first: r.ts, last: r.ts, bucket_at: r.ts.div_euclid(10 * US), ..Default::default() },
            );
            self.out.extend(ctx.victim_finding(victim, &old, true));
        }
        v.first = v.first.min(r.ts);
        v.last = v.last.max(r.ts);
        v.packets += 1;
        v.bytes += r.len as u64;
        v.traffic |= 1 << traffic as u16;
        if r.proto == proto::TCP && v.ports.len() < 8 && !v.ports.contains(&r.sport) {
            v.ports.push(r.sport);
        }
        v.attackers16.insert(r.dst >> 16);
        // Packets per 10 s bucket over the last six buckets: the busiest 60 s window, sliding by
        // 10 s, as Corsaro3 measures it.
        let bucket = r.ts.div_euclid(10 * US);
        if bucket > v.bucket_at {
            let shift = (bucket - v.bucket_at).min(6) as usize;
            v.buckets.rotate_left(shift);
            for b in &mut v.buckets[6 - shift..] {
                *b = 0;
            }
            v.bucket_at = bucket;
        }
        let back = (v.bucket_at - bucket) as usize;
        if back < 6 {
            v.buckets[5 - back] += 1;
        }
        v.max_60s = v.max_60s.max(v.buckets.iter().sum());
    }

    /// Close what has been quiet for its timeout by `wm`.
    fn expire(&mut self, ctx: &Ctx, wm: i64) {
        let scan_to = ctx.cfg.scan_timeout_s as i64 * US;
        let expired: Vec<u64> = self.scans.iter().filter(|(_, s)| s.last + scan_to < wm).map(|(k, _)| *k).collect();
        for k in expired {
            if let Some(s) = self.scans.remove(&k) {
                self.out.extend(ctx.scan_finding(&self.sources, k, &s, true));
            }
        }
        let dos_to = ctx.cfg.dos_timeout_s as i64 * US;
        let expired: Vec<u32> = self.victims.iter().filter(|(_, v)| v.last + dos_to < wm).map(|(k, _)| *k).collect();
        for k in expired {
            if let Some(v) = self.victims.remove(&k) {
                self.out.extend(ctx.victim_finding(k, &v, true));
            }
        }
        let src_to = ctx.cfg.source_timeout_s as i64 * US;
        let expired: Vec<u32> = self.sources.iter().filter(|(_, s)| s.last + src_to < wm).map(|(k, _)| *k).collect();
        for k in expired {
            if let Some(s) = self.sources.remove(&k) {
                self.out.extend(ctx.source_finding(k, &s, true));
            }
        }
    }

    /// Close everything (scan events first: their findings name the source's tool).
    fn close_all(&mut self, ctx: &Ctx) {
        for (k, s) in std::mem::take(&mut self.scans) {
            self.out.extend(ctx.scan_finding(&self.sources, k, &s, true));
        }
        for (k, v) in std::mem::take(&mut self.victims) {
            self.out.extend(ctx.victim_finding(k, &v, true));
        }
        for (k, s) in std::mem::take(&mut self.sources) {
            self.out.extend(ctx.source_finding(k, &s, true));
        }
    }

    /// What is still open, as findings (not closed).
    fn ongoing(&mut self, ctx: &Ctx) {
        for (k, s) in &self.scans {
            self.out.extend(ctx.scan_finding(&self.sources, *k, s, false));
        }
        for (k, v) in &self.victims {
            self.out.extend(ctx.victim_finding(*k, v, false));
        }
        for (k, s) in &self.sources {
            self.out.extend(ctx.source_finding(*k, s, false));
        }
    }

    fn heap_bytes(&self) -> usize {
        self.scans_bytes()
            + self.sources_bytes()
            + table_bytes(&self.victims)
            + self.victims.values().map(|v| v.attackers16.heap_bytes() + v.ports.capacity() * 2).sum::<usize>()
            + self.rows.capacity() * size_of::<Keyed>()
    }

    /// Bytes of the scan-event table with the sets its events hold.
    fn scans_bytes(&self) -> usize {
        table_bytes(&self.scans) + self.scans.values().map(|s| s.dsts.heap_bytes() + s.nets.heap_bytes()).sum::<usize>()
    }

    /// Bytes of the source table with what its sources hold.
    fn sources_bytes(&self) -> usize {
        table_bytes(&self.sources) + self.sources.values().map(|s| s.heap_bytes()).sum::<usize>()
    }
}

/// Bytes of a hash map's table: its entries and their control bytes (not their heap).
fn table_bytes<K, V>(m: &Map<K, V>) -> usize {
    m.capacity() * (size_of::<(K, V)>() + 1)
}

/// The machine's cores (one when unknown): how many threads share CPU-bound work.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Run `f` on every shard, the shards split between the machine's cores.
fn each_shard(shards: &mut [Shard], f: impl Fn(&mut Shard) + Sync) {
    let threads = cores().clamp(1, shards.len().max(1));
    if threads == 1 {
        shards.iter_mut().for_each(f);
        return;
    }
    let per = shards.len().div_ceil(threads);
    std::thread::scope(|s| {
        let mut parts = shards.chunks_mut(per);
        let mine = parts.next();
        for part in parts {
            let f = &f;
            s.spawn(move || part.iter_mut().for_each(f));
        }
        if let Some(part) = mine {
            part.iter_mut().for_each(&f);
        }
    });
}

impl Engine {
    pub fn new(cfg: AnalysisConfig, state: State) -> Engine {
        let research = Arc::new(ResearchIndex::new(&cfg.research));
        // A sixteenth of the memory limit for buffered rows (twice: one chunk being applied, one
        // being filled), at most 4 Mi rows (160 MiB).
        let chunk_rows = ((cfg.memory_mb as usize) << 20) / 32 / size_of::<Keyed>();
        let (sealed, dsts) = (state.sealed_before_day, cfg.dark_size().is_none());
        Engine {
            cfg: Arc::new(cfg),
            research: Arc::clone(&research),
            st: state,
            out: Vec::new(),
            touched_days: BTreeSet::new(),
            sealed: Vec::new(),
            tally: Tally::new(Arc::clone(&research), (i64::MIN, i64::MAX), sealed, dsts),
            dark: 0,
            bufs: (0..SHARDS).map(|_| Vec::new()).collect(),
            pending: 0,
            away: None,
            chunk_rows: chunk_rows.clamp(1 << 12, 1 << 22),
        }
        .with_dark()
    }

    fn with_dark(mut self) -> Self {
        self.dark = self.dark_now();
        self
    }

    /// Dark addresses as of now: configured, or the distinct destinations seen so far.
    fn dark_now(&self) -> u64 {
        self.cfg.dark_size().unwrap_or_else(|| self.st.dsts.count().max(1))
    }

    /// A tally for another stream of rows, as of now (see [`Tally`]); merged with [`Engine::absorb`].
    pub(crate) fn tally(&self) -> Tally {
        let own = &self.tally;
        Tally::new(Arc::clone(&own.research), own.range, self.st.sealed_before_day, own.dsts)
    }

    /// Merge a tally's statistics into the state; the tally is left empty (its tables kept).
    pub(crate) fn absorb(&mut self, t: &mut Tally) {
        t.flush_bin();
        t.flush_ports();
        let st = &mut self.st;
        st.rows += std::mem::take(&mut t.rows);
        st.late_rows += std::mem::take(&mut t.late_rows);
        st.max_ts = st.max_ts.max(std::mem::replace(&mut t.max_ts, i64::MIN));
        if st.first_hour.is_none() {
            st.first_hour = t.first_hour;
        }
        t.first_hour = None;
        for (b, bin) in std::mem::take(&mut t.bins) {
            st.bins.entry(b).or_default().merge(&bin);
        }
        self.touched_days.append(&mut t.days);
        for (k, ph) in t.port_hours.drain() {
            merge_port_hour(&mut st.port_hours, k, &ph);
        }
    }

    /// Merge the engine's own tally (rows given to [`Engine::observe_row`]) into the state.
    fn absorb_own(&mut self) {
        let fresh = self.tally();
        let mut t = std::mem::replace(&mut self.tally, fresh);
        self.absorb(&mut t);
        self.tally = t;
    }

    pub fn with_range(mut self, from: i64, to: i64) -> Self {
        self.tally.range = (from, to);
        self
    }

    pub fn config(&self) -> &AnalysisConfig {
        &self.cfg
    }

    /// The state: complete after [`Engine::finish`] (until then rows may still be buffered or
    /// being applied).
    pub fn state(&self) -> &State {
        &self.st
    }

    /// Findings concluded so far (taken: each is returned once).
    pub fn take_findings(&mut self) -> Vec<Finding> {
        self.apply(None, false, true);
        std::mem::take(&mut self.out)
    }

    /// Addresses the telescope listens on: configured, or the distinct destinations seen.
    pub fn dark_size(&self) -> u64 {
        self.dark
    }

    /// Observe one row (rows in time order, see the module's notes).
    pub fn observe_row(&mut self, r: &Row) {
        if let Some(k) = self.tally.row(r) {
            self.observe_keyed(&k);
        }
    }

    /// Pass a row (counted in some [`Tally`]) to the keyed detectors, in time order.
    #[inline]
    pub(crate) fn observe_keyed(&mut self, k: &Keyed) {
        if self.tally.dsts {
            self.st.dsts.insert(k.dst);
        }
        if k.flags & K_DST_ONLY != 0 {
            return;
        }
        let buf = &mut self.bufs[shard_of(k.key)];
        if buf.capacity() == 0 {
            // Sized at once for its share of a chunk (and a quarter more), not grown by copying.
            buf.reserve(self.chunk_rows / SHARDS + self.chunk_rows / SHARDS / 4);
        }
        buf.push(*k);
        self.pending += 1;
        if self.pending >= self.chunk_rows {
            self.apply(None, false, false);
        }
    }

    /// Wait for the shards to come back from applying rows; collect their findings.
    fn sync(&mut self) {
        if let Some(h) = self.away.take() {
            // A panic while applying rows is a bug: raise it here, as if it happened here.
            self.st.shards.0 = h.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            for sh in &mut self.st.shards.0 {
                self.out.append(&mut sh.out);
            }
        }
    }

    /// Hand the buffered rows to their shards, which apply them on all cores; then, with
    /// `expire_at`, close what went quiet before it (with the dark-block size refreshed in
    /// between, as the rows before a watermark are measured against the size known before it),
    /// or with `close`, everything. Without `wait` this runs while the caller goes on (the next
    /// call waits for it). The state's size is checked each time the shards are back.
    fn apply(&mut self, expire_at: Option<i64>, close: bool, wait: bool) {
        self.sync();
        self.bound_memory();
        let pending = std::mem::take(&mut self.pending);
        if pending > 0 || expire_at.is_some() || close {
            let dark = self.dark;
            let after_dark = self.dark_now();
            let (cfg, research) = (Arc::clone(&self.cfg), Arc::clone(&self.research));
            let mut shards = std::mem::take(&mut self.st.shards.0);
            for (sh, buf) in shards.iter_mut().zip(&mut self.bufs) {
                // The shard's buffer is empty (with its capacity): the two swap.
                std::mem::swap(&mut sh.rows, buf);
            }
            let run = move || {
                let before = Ctx { cfg: &cfg, research: &research, dark };
                let after = Ctx { dark: after_dark, ..before };
                each_shard(&mut shards, |sh| {
                    if !sh.rows.is_empty() {
                        sh.apply(&before);
                    }
                    if let Some(wm) = expire_at {
                        sh.expire(&after, wm);
                    }
                    if close {
                        sh.close_all(&after);
                    }
                });
                shards
            };
            // As with scoped threads, failing to start a thread panics.
            self.away = Some(std::thread::spawn(run));
        }
        if wait {
            self.sync();
        }
    }

    /// Approximate bytes of state: map entries (with hash-table overhead) and their heap, and
    /// the rows buffered on either side (the shards' and the merging thread's).
    pub fn state_bytes(&self) -> usize {
        let st = &self.st;
        st.shards.0.iter().map(Shard::heap_bytes).sum::<usize>()
            + st.port_hours_bytes()
            + st.bins.values().map(|b| size_of::<Bin>() + b.sources.heap_bytes()).sum::<usize>()
            + self.bufs_bytes()
    }

    /// Bytes of the row buffers the merging thread fills while the shards apply the last chunk.
    fn bufs_bytes(&self) -> usize {
        self.bufs.iter().map(Vec::capacity).sum::<usize>() * size_of::<Keyed>()
    }

    /// Log what the state holds, by table (entries and approximate bytes), at debug level.
    pub fn log_state_sizes(&self) {
        let st = &self.st;
        let sh = &st.shards.0;
        let count = |f: fn(&Shard) -> usize| sh.iter().map(f).sum::<usize>();
        tracing::debug!(
            scans = count(|s| s.scans.len()),
            scans_capacity = count(|s| s.scans.capacity()),
            scans_mb = count(Shard::scans_bytes) >> 20,
            sources = count(|s| s.sources.len()),
            sources_capacity = count(|s| s.sources.capacity()),
            sources_mb = count(Shard::sources_bytes) >> 20,
            victims = count(|s| s.victims.len()),
            port_hours = st.port_hours.len(),
            port_hours_mb = st.port_hours_bytes() >> 20,
            bins = st.bins.len(),
            series = st.series.len(),
            "analysis state by table"
        );
    }

    /// Past the memory limit, close the least recently active scan events and sources (their
    /// findings are kept) until the state is back under 80% of it. Called with the shards here.
    fn bound_memory(&mut self) {
        let limit = (self.cfg.memory_mb as usize) << 20;
        // The exact figure walks every entry: only when the table sizes alone say it may matter.
        let rough: usize = self
            .st
            .shards
            .0
            .iter()
            .map(|sh| {
                sh.scans.capacity() * size_of::<(u64, ScanState)>()
                    + sh.sources.capacity() * size_of::<(u32, SourceState)>()
                    + sh.rows.capacity() * size_of::<Keyed>()
            })
            .sum::<usize>()
            + self.bufs_bytes();
        if rough < limit / 2 {
            return;
        }
        let used = self.state_bytes();
        if used <= limit {
            return;
        }
        let shards = &mut self.st.shards.0;
        let entries: usize = shards.iter().map(|sh| sh.scans.len() + sh.sources.len()).sum();
        let per_scan = used / entries.max(1);
        let mut excess = (used - limit * 4 / 5) / per_scan.max(1) + 1;
        // (last seen, is source, key)
        let mut idle: Vec<(i64, bool, u64)> = Vec::with_capacity(entries);
        for sh in shards.iter() {
            idle.extend(sh.scans.iter().map(|(k, s)| (s.last, false, *k)));
            idle.extend(sh.sources.iter().map(|(k, s)| (s.last, true, *k as u64)));
        }
        idle.sort_unstable();
        let ctx = Ctx { cfg: &self.cfg, research: &self.research, dark: self.dark };
        for (_, is_source, k) in idle {
            if excess == 0 {
                break;
            }
            excess -= 1;
            self.st.evicted += 1;
            if is_source {
                let sh = &mut shards[shard_of(k as u32)];
                if let Some(s) = sh.sources.remove(&(k as u32)) {
                    self.out.extend(ctx.source_finding(k as u32, &s, true));
                }
            } else {
                let sh = &mut shards[shard_of(k.addr())];
                if let Some(s) = sh.scans.remove(&k) {
                    self.out.extend(ctx.scan_finding(&sh.sources, k, &s, true));
                }
            }
        }
        for sh in shards.iter_mut() {
            sh.scans.shrink_to_fit();
            sh.sources.shrink_to_fit();
            sh.rows = Vec::new();
        }
        tracing::info!(
            used_mb = used >> 20,
            limit_mb = limit >> 20,
            "analysis state over its memory limit: closed the least recently active events and sources early"
        );
    }

    /// No row older than `wm` will follow: close what has gone quiet, judge finished hours.
    pub fn advance(&mut self, wm: i64) {
        self.absorb_own();
        let expire = wm > self.st.watermark;
        // The shards close what went quiet while this thread goes on (surges, statistics).
        self.apply(expire.then_some(wm), false, false);
        self.dark = self.dark_now();
        if !expire {
            return;
        }
        self.st.watermark = wm;
        self.judge_until(wm.div_euclid(HOUR_US));
        self.seal_old_days(wm.div_euclid(DAY_US) - 1);
    }

    /// Judge every hour before `end_hour` not judged yet.
    fn judge_until(&mut self, end_hour: i64) {
        let Some(first) = self.st.first_hour else { return };
        let mut h = self.st.judged_until.unwrap_or(first);
        while h < end_hour {
            self.judge_hour(h);
            h += 1;
        }
        self.st.judged_until = Some(h.max(self.st.judged_until.unwrap_or(h)));
    }

    fn judge_hour(&mut self, h: i64) {
        let cfg = &self.cfg;
        let w = cfg.surge_baseline_hours;
        let history = (h - self.st.first_hour.unwrap_or(h)).max(0) as usize;
        // This hour's counts.
        let lo = port_hour_key(h, 0, 0);
        let hi = port_hour_key(h + 1, 0, 0);
        let mut now: Map<u32, (u64, u64)> = Map::default();
        for (k, ph) in self.st.port_hours.iter().filter(|(k, _)| **k >= lo && **k < hi) {
            now.insert((*k & 0xff_ffff) as u32, (ph.sources.count(), ph.packets));
        }
        let mut keys: Vec<u32> = now.keys().copied().collect();
        keys.extend(self.st.series.keys().filter(|k| !now.contains_key(k)));
        keys.sort_unstable();
        let mut found = Vec::new();
        for k in keys {
            let (x, packets) = now.get(&k).copied().unwrap_or((0, 0));
            if !self.st.series.contains_key(&k) {
                if x < 3 {
                    continue;
                }
                // Ports are tracked from their first hour with 3 sources; their earlier hours
                // are still in state (`port_hours`), so the baseline starts from the real counts.
                let counts: VecDeque<u32> = (h - w as i64..h)
                    .map(|hh| {
                        let key = port_hour_key(hh, (k >> 16) as u8, k as u16);
                        self.st.port_hours.get(&key).map_or(0, |p| p.sources.count() as u32)
                    })
                    .collect();
                self.st.series.insert(k, Series { last_hour: h - 1, counts, ..Default::default() });
            }
            let Some(s) = self.st.series.get_mut(&k) else { continue };
            // Hours with no row for this port count zero.
            while s.last_hour < h - 1 {
                s.counts.push_back(0);
                s.last_hour += 1;
                if s.counts.len() > w {
                    s.counts.pop_front();
                }
            }
            // Only hours since the analysis began count as baseline.
            let mut base: Vec<f64> = s.counts.iter().rev().take(w.min(history)).map(|&c| c as f64).collect();
            base.resize(w.min(history), 0.0);
            let judged = history >= cfg.surge_min_history_hours;
            let (med, mad) = median_mad(&mut base);
            let xf = x as f64;
            let z = surge_z(xf, med, mad);
            s.cusum = (s.cusum + z - cfg.cusum_k).max(0.0);
            let big = x >= cfg.surge_min_sources && xf >= cfg.surge_min_ratio * med.max(1.0);
            if judged && big && (z >= cfg.surge_z || s.cusum >= cfg.cusum_h) && !s.alerting {
                s.alerting = true;
                let new_port = med < 1.0;
                let p = (k >> 16) as u8;
                let port = k as u16;
                found.push(Finding {
                    id: finding_id(kind::SURGE, &[k as u64, h as u64]),
                    kind: kind::SURGE.into(),
                    time: h * HOUR_US,
                    end_time: (h + 1) * HOUR_US - 1,
                    ip4: None,
                    port: Some(port),
                    proto: Some(p),
                    traffic: None,
                    tool: None,
                    label: Some(if new_port { "new-port" } else { "increase" }.into()),
                    packets,
                    uniques: Some(x),
                    unique_24s: None,
                    rate: None,
                    score: Some(z),
                    evidence: json!({
                        "sources": x,
                        "baseline_hours": base.len(),
                        "baseline_median": med,
                        "baseline_mad": mad,
                        "z": z,
                        "cusum": s.cusum,
                        "recent_counts": s.counts.iter().rev().take(24).rev().collect::<Vec<_>>(),
                        "method": "unique sources in the hour vs the previous hours: min(robust z over median/MAD, Poisson z after Anscombe's transform), and a CUSUM of that z",
                    }),
                    country: None,
                    asn: None,
                    as_org: None,
                });
            } else if !big {
                s.alerting = false;
            }
            if xf <= med {
                s.cusum = 0.0;
            }
            s.counts.push_back(x.min(u32::MAX as u64) as u32);
            s.last_hour = h;
            if s.counts.len() > w {
                s.counts.pop_front();
            }
        }
        // A port quiet for a whole baseline is forgotten.
        self.st.series.retain(|_, s| s.counts.iter().any(|&c| c > 0));
        self.out.extend(found);
    }

    /// Keep statistics of `keep_from_day` and later in state; hand older touched days to the
    /// writer and forget the rest.
    fn seal_old_days(&mut self, keep_from_day: i64) {
        let cut_bin = keep_from_day * DAY_US / BIN_US;
        if self.st.bins.range(..cut_bin).next().is_none()
            && self.st.sealed_before_day.is_some_and(|d| d >= keep_from_day)
        {
            return;
        }
        let keep = self.st.bins.split_off(&cut_bin);
        let old = std::mem::replace(&mut self.st.bins, keep);
        let cut_hour = keep_from_day * 24;
        let mut old_ports: Vec<(u64, PortHour)> = Vec::new();
        self.st.port_hours.retain(|k, v| {
            if ((*k >> 24) as i64) < cut_hour {
                old_ports.push((*k, std::mem::take(v)));
                false
            } else {
                true
            }
        });
        let mut by_day: BTreeMap<i64, DayStats> = BTreeMap::new();
        for (b, bin) in old {
            by_day.entry(b * BIN_US / DAY_US).or_default().bins.insert(b, bin);
        }
        for (k, ph) in old_ports {
            by_day.entry((k >> 24) as i64 / 24).or_default().ports.push((k, ph));
        }
        for (day, d) in by_day {
            if self.touched_days.remove(&day) {
                self.sealed.push((day, d));
            }
        }
        self.st.sealed_before_day = Some(self.st.sealed_before_day.map_or(keep_from_day, |d| d.max(keep_from_day)));
        self.tally.sealed_before_day = self.st.sealed_before_day;
    }

    /// End of input. With `flush`, close everything (the data is complete: a finished capture or
    /// a batch range); otherwise open items stay in state and are returned as `ongoing`.
    pub fn finish(&mut self, flush: bool) -> Vec<Finding> {
        self.absorb_own();
        // The rows still buffered, then (with the final dark-block size) everything or nothing.
        self.apply(None, flush, true);
        self.dark = self.dark_now();
        if flush {
            let end = self.st.max_ts + 1;
            // Judge the last (possibly partial) hour too: the data is complete.
            self.judge_until(end.div_euclid(HOUR_US) + 1);
            return Vec::new();
        }
        let ctx = Ctx { cfg: &self.cfg, research: &self.research, dark: self.dark };
        each_shard(&mut self.st.shards.0, |sh| sh.ongoing(&ctx));
        let mut ongoing: Vec<Finding> = Vec::new();
        for sh in &mut self.st.shards.0 {
            ongoing.append(&mut sh.out);
        }
        ongoing.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
        ongoing
    }
}

fn update_scan(ev: &mut ScanState, r: &Keyed) {
    ev.first = ev.first.min(r.ts);
    ev.last = ev.last.max(r.ts);
    ev.packets += 1;
    ev.bytes += r.len as u64;
    ev.dsts.insert(r.dst);
    ev.nets.insert(r.dst >> 8);
}

/// How unusual `x` unique sources are against a baseline median and MAD. Counts of sources are
/// Poisson-like at the low end, where a Gaussian z with a small MAD wildly overstates surprise
/// (tens of thousands of sparsely probed ports each hour would alert on noise), so the score is
/// the smaller of the robust z `(x - med) / (1.4826 MAD)` and the Poisson z after Anscombe's
/// variance-stabilising transform, `2 (sqrt(x + 3/8) - sqrt(med + 3/8))`.
pub(crate) fn surge_z(x: f64, med: f64, mad: f64) -> f64 {
    let poisson = 2.0 * ((x + 0.375).sqrt() - (med + 0.375).sqrt());
    if mad > 0.0 {
        poisson.min((x - med) / (1.4826 * mad))
    } else {
        poisson
    }
}

/// Median and median absolute deviation (sorts `v`).
fn median_mad(v: &mut [f64]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let med = median(v);
    let mut dev: Vec<f64> = v.iter().map(|x| (x - med).abs()).collect();
    (med, median(&mut dev))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Start time of a statistics bin.
pub(crate) fn bin_time(bin: i64) -> i64 {
    bin * BIN_US
}

/// (hour, proto, port) of a `port_hours` key.
pub(crate) fn split_port_key(k: u64) -> (i64, u8, u16) {
    ((k >> 24) as i64, (k >> 16) as u8, k as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surge_score_is_calm_on_poisson_noise_and_loud_on_a_new_port() {
        // Sparse random ports: baseline median 2-3, an hour of 11-14 sources is noise.
        assert!(surge_z(11.0, 2.0, 1.0) < 5.0);
        assert!(surge_z(14.0, 3.5, 1.5) < 5.0);
        // A port nobody probed gaining 15 sources in an hour is news.
        assert!(surge_z(15.0, 0.0, 0.0) >= 5.0);
        // A busy port doubling.
        assert!(surge_z(4_000.0, 2_000.0, 150.0) >= 5.0);
        // Diurnal swing of a busy port (+35%) against a wide MAD is not.
        assert!(surge_z(2_700.0, 2_000.0, 300.0) < 5.0);
    }

    /// The shards are written as the three maps they split (the layout of state files from
    /// before the split), and read back from that layout into the right shards.
    #[test]
    fn shards_keep_the_state_file_layout() {
        let mut sh = Shards::default();
        let mut flat: (HashMap<u64, u64>, HashMap<u32, u64>, HashMap<u32, u64>) = Default::default();
        for i in 0..5_000u32 {
            let src = i.wrapping_mul(2_654_435_761);
            let key = scan_key(src, (i % 7) as u16, Traffic::TcpSyn);
            let first = i as i64 * 1_000;
            sh.0[shard_of(src)].scans.insert(key, ScanState { first, ..Default::default() });
            flat.0.insert(key, first as u64);
            if i % 3 == 0 {
                sh.0[shard_of(src)].sources.insert(src, SourceState::new(first));
                flat.1.insert(src, first as u64);
            }
            if i % 5 == 0 {
                sh.0[shard_of(!src)].victims.insert(!src, VictimState { first, ..Default::default() });
                flat.2.insert(!src, first as u64);
            }
        }
        let bytes = postcard::to_allocvec(&sh).unwrap();
        // Read as three plain maps: the same entries.
        let (scans, sources, victims): (HashMap<u64, ScanState>, HashMap<u32, SourceState>, HashMap<u32, VictimState>) =
            postcard::from_bytes(&bytes).unwrap();
        assert_eq!(scans.iter().map(|(k, s)| (*k, s.first as u64)).collect::<HashMap<_, _>>(), flat.0);
        assert_eq!(sources.iter().map(|(k, s)| (*k, s.first as u64)).collect::<HashMap<_, _>>(), flat.1);
        assert_eq!(victims.iter().map(|(k, v)| (*k, v.first as u64)).collect::<HashMap<_, _>>(), flat.2);
        // Three plain maps read as shards: every entry in its key's shard.
        let old = postcard::to_allocvec(&(&scans, &sources, &victims)).unwrap();
        let back: Shards = postcard::from_bytes(&old).unwrap();
        assert_eq!(back.0.len(), SHARDS);
        let mut n = 0;
        for (i, s) in back.0.iter().enumerate() {
            assert!(s.scans.keys().all(|k| shard_of(k.addr()) == i));
            assert!(s.sources.keys().all(|k| shard_of(*k) == i));
            assert!(s.victims.keys().all(|k| shard_of(*k) == i));
            for (k, v) in &s.scans {
                assert_eq!(flat.0.get(k), Some(&(v.first as u64)));
                n += 1;
            }
            n += s.sources.len() + s.victims.len();
        }
        assert_eq!(n, flat.0.len() + flat.1.len() + flat.2.len());
        assert!(back.0.iter().filter(|s| !s.scans.is_empty()).count() > SHARDS / 2, "keys spread over the shards");
    }

    /// The rows the merging thread has buffered count towards the memory limit, as the shards'
    /// own buffers do: both sides hold a chunk at once.
    #[test]
    fn state_bytes_counts_rows_waiting_to_be_applied() {
        let mut e = Engine::new(AnalysisConfig::default(), State::default());
        let empty = e.state_bytes();
        for i in 0..1_000u32 {
            e.observe_row(&Row {
                ts: i as i64 * US,
                v4: true,
                src: Some(i.wrapping_mul(2_654_435_761)),
                dst: Some(0xC612_0000 | (i & 0xfff)),
                proto: Some(proto::TCP),
                flags: 0x02,
                dport: 23,
                ..Default::default()
            });
        }
        // Fewer than a chunk: nothing handed to the shards yet.
        assert_eq!(e.pending, 1_000);
        assert!(e.st.shards.0.iter().all(|sh| sh.rows.is_empty() && sh.scans.is_empty()));
        assert!(e.state_bytes() >= empty + 1_000 * size_of::<Keyed>(), "{} vs {empty}", e.state_bytes());
    }

    #[test]
    fn median_and_mad() {
        let mut v = vec![1.0, 2.0, 3.0, 4.0, 100.0];
        assert_eq!(median_mad(&mut v), (3.0, 1.0));
        assert_eq!(median_mad(&mut []), (0.0, 0.0));
    }
}
