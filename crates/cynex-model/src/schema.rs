//! Arrow schemas of the lake tables. Names are stable: columns may be added, never renamed or
//! given a new meaning. Partition columns (`sensor`, `date`, `hour`) live in the Hive path, not in
//! the files, so that DuckDB, Spark and Trino read the lake as it is.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The lake's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Packets,
    Quarantine,
    /// Concluded analysis results (closed scan events, attributions, attacks, surges).
    Findings,
    /// Analysis results still in progress as of the last run; replaced by every run.
    Ongoing,
    /// Traffic statistics per 5 min / 1 h / 1 day bin.
    Stats,
    /// Packets and unique sources per (protocol, destination port, hour).
    PortStats,
    /// Scanning campaigns: sources grouped by tool, target ports and timing. Recomputed from the
    /// scope's findings and replaced by every run.
    Campaigns,
    /// Normalised log events from member IDS, monitors and honeypots (EVE, Zeek, Cowrie).
    Events,
}

impl Table {
    pub const ALL: [Table; 8] = [
        Table::Packets,
        Table::Quarantine,
        Table::Findings,
        Table::Ongoing,
        Table::Stats,
        Table::PortStats,
        Table::Campaigns,
        Table::Events,
    ];
    /// Tables written by analysis, whose `sensor` partition is the analysis scope.
    pub const ANALYSIS: [Table; 5] =
        [Table::Findings, Table::Ongoing, Table::Stats, Table::PortStats, Table::Campaigns];

    pub fn name(self) -> &'static str {
        match self {
            Table::Packets => "packets",
            Table::Quarantine => "quarantine",
            Table::Findings => "findings",
            Table::Ongoing => "ongoing",
            Table::Stats => "stats",
            Table::PortStats => "port_stats",
            Table::Campaigns => "campaigns",
            Table::Events => "events",
        }
    }

    pub fn from_name(s: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == s)
    }

    pub fn schema(self) -> SchemaRef {
        match self {
            Table::Packets => packets_schema(),
            Table::Quarantine => quarantine_schema(),
            Table::Findings | Table::Ongoing | Table::Campaigns => findings_schema(),
            Table::Events => crate::event::events_schema(),
            Table::Stats => stats_schema(),
            Table::PortStats => port_stats_schema(),
        }
    }

    /// The column whose value chooses a row's date and hour partition.
    pub fn time_column(self) -> &'static str {
        match self {
            Table::Packets => "ts",
            Table::Quarantine => "ingested_at",
            Table::Findings | Table::Ongoing | Table::Stats | Table::PortStats | Table::Campaigns | Table::Events => {
                "time"
            }
        }
    }

    /// Hive partition columns, in path order. All are strings in the path; their SQL types are
    /// given by [`partition_type`].
    pub fn partition_cols(self) -> &'static [&'static str] {
        &["sensor", "date", "hour"]
    }
}

/// SQL type of a partition column as registered with DataFusion. `date` is a DATE and `hour` an
/// INT, as DuckDB infers them from `date=2026-11-01/hour=05`, so that both engines agree.
pub fn partition_type(col: &str) -> DataType {
    match col {
        "date" => DataType::Date32,
        "hour" => DataType::Int32,
        _ => DataType::Utf8,
    }
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// `packets`: one row per captured darknet packet.
pub fn packets_schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    Arc::clone(S.get_or_init(|| {
        use DataType::*;
        let f = |n: &str, t: DataType, null: bool| Field::new(n, t, null);
        Arc::new(Schema::new(vec![
            f("ts", ts_type(), false),
            f("ip_version", UInt8, false),
            f("src_ip4", UInt32, true),
            f("dst_ip4", UInt32, true),
            f("src_ip6", FixedSizeBinary(16), true),
            f("dst_ip6", FixedSizeBinary(16), true),
            f("proto", UInt8, true),
            f("ttl", UInt8, true),
            f("ip_id", UInt16, true),
            f("ip_len", UInt16, true),
            f("frag_offset", UInt16, true),
            f("src_port", UInt16, true),
            f("dst_port", UInt16, true),
            f("tcp_flags", UInt8, true),
            f("tcp_seq", UInt32, true),
            f("tcp_ack", UInt32, true),
            f("tcp_window", UInt16, true),
            f("tcp_opts", Dictionary(Box::new(Int16), Box::new(Utf8)), true),
            f("tcp_mss", UInt16, true),
            f("tcp_wscale", UInt8, true),
            f("tcp_tsval", UInt32, true),
            f("icmp_type", UInt8, true),
            f("icmp_code", UInt8, true),
            f("inner_proto", UInt8, true),
            f("inner_src_ip4", UInt32, true),
            f("inner_dst_ip4", UInt32, true),
            f("inner_src_ip6", FixedSizeBinary(16), true),
            f("inner_dst_ip6", FixedSizeBinary(16), true),
            f("inner_src_port", UInt16, true),
            f("inner_dst_port", UInt16, true),
            f("ethertype", UInt16, true),
            f("frame_len", UInt32, false),
            f("fp", UInt16, false),
            f("tags", UInt16, false),
        ]))
    }))
}

/// `quarantine`: what could not be parsed, with its place and the raw bytes.
pub fn quarantine_schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    Arc::clone(S.get_or_init(|| {
        use DataType::*;
        Arc::new(Schema::new(vec![
            Field::new("ingested_at", ts_type(), false),
            Field::new("format", Utf8, false),
            Field::new("source", Utf8, false),
            Field::new("offset", UInt64, false),
            Field::new("line", UInt64, true),
            Field::new("reason", Utf8, false),
            Field::new("raw_len", UInt64, false),
            Field::new("raw", Binary, false),
        ]))
    }))
}

/// `findings` and `ongoing`: what analysis concluded. One row per scan event, tool attribution,
/// backscatter attack or port surge; `id` is stable across runs (a hash of what identifies the
/// finding and when it began), `evidence` is JSON with the numbers behind it; `country`, `asn` and
/// `as_org` describe `ip4` when GeoIP databases were given (columns added later read as null in
/// older files).
pub fn findings_schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    Arc::clone(S.get_or_init(|| {
        use DataType::*;
        let f = |n: &str, t: DataType, null: bool| Field::new(n, t, null);
        Arc::new(Schema::new(vec![
            f("id", Utf8, false),
            f("kind", Utf8, false),
            f("time", ts_type(), false),
            f("end_time", ts_type(), false),
            f("ip4", UInt32, true),
            f("port", UInt16, true),
            f("proto", UInt8, true),
            f("traffic", Utf8, true),
            f("tool", Utf8, true),
            f("label", Utf8, true),
            f("packets", UInt64, false),
            f("uniques", UInt64, true),
            f("unique_24s", UInt64, true),
            f("rate", Float64, true),
            f("score", Float64, true),
            f("evidence", Utf8, false),
            // Enrichment of `ip4` from MaxMind-format databases (null without them).
            f("country", Utf8, true),
            f("asn", UInt32, true),
            f("as_org", Utf8, true),
        ]))
    }))
}

/// `stats`: NICTER-style traffic statistics, one row per bin (`5m`, `1h`, `1d`). `sources` is a
/// HyperLogLog estimate above 64 distinct addresses (about 3% error); `research` counts packets
/// from known research scanners; `per_address` is packets per dark address in the bin.
pub fn stats_schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    Arc::clone(S.get_or_init(|| {
        use DataType::*;
        let f = |n: &str, t: DataType| Field::new(n, t, false);
        Arc::new(Schema::new(vec![
            f("bin", Utf8),
            f("time", ts_type()),
            f("packets", UInt64),
            f("bytes", UInt64),
            f("sources", UInt64),
            f("tcp", UInt64),
            f("udp", UInt64),
            f("icmp", UInt64),
            f("other", UInt64),
            f("backscatter", UInt64),
            f("research", UInt64),
            f("per_address", Float64),
        ]))
    }))
}

/// `port_stats`: per hour and (protocol, destination port), packets and unique sources — the
/// busiest ports of each hour, the rest summed into one row with `port` null.
pub fn port_stats_schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    Arc::clone(S.get_or_init(|| {
        use DataType::*;
        Arc::new(Schema::new(vec![
            Field::new("time", ts_type(), false),
            Field::new("proto", UInt8, false),
            Field::new("port", UInt16, true),
            Field::new("packets", UInt64, false),
            Field::new("sources", UInt64, false),
        ]))
    }))
}

/// How many raw bytes of one bad record the quarantine keeps; `raw_len` tells the full size.
pub const QUARANTINE_RAW_MAX: usize = 256 * 1024;
