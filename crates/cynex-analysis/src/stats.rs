//! NICTER-style statistics rows: per 5 min, 1 h and 1 day, packets (by protocol), bytes, unique
//! sources and packets per dark address; per hour, the busiest destination ports by packets with
//! their unique sources.

use std::collections::BTreeMap;
use std::sync::Arc;

use cynex_model::schema::{port_stats_schema, stats_schema};
use datafusion::arrow::array::{
    ArrayRef, Float64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder, UInt16Builder, UInt64Builder,
    UInt8Builder,
};
use datafusion::arrow::error::ArrowError;

use crate::distinct::Distinct;
use crate::engine::{bin_time, split_port_key, Bin, PortHour, DAY_US, HOUR_US};

/// Ports listed per hour in `port_stats`; the rest are summed into one row with `port` null.
pub const TOP_PORTS_PER_HOUR: usize = 1_000;

/// Rows for one day: every 5 min bin, every hour, and the day.
pub(crate) fn stats_batch(day: i64, bins: &BTreeMap<i64, Bin>, dark: u64) -> Result<RecordBatch, ArrowError> {
    let mut rows: Vec<(&str, i64, Bin)> = Vec::new();
    let mut hours: BTreeMap<i64, Bin> = BTreeMap::new();
    let mut whole = Bin::default();
    for (b, bin) in bins {
        let t = bin_time(*b);
        if t.div_euclid(DAY_US) != day {
            continue;
        }
        rows.push(("5m", t, bin.clone()));
        hours.entry(t.div_euclid(HOUR_US) * HOUR_US).or_default().merge(bin);
        whole.merge(bin);
    }
    if rows.is_empty() {
        return Ok(RecordBatch::new_empty(stats_schema()));
    }
    rows.extend(hours.into_iter().map(|(t, b)| ("1h", t, b)));
    rows.push(("1d", day * DAY_US, whole));
    let n = rows.len();
    let mut bin = StringBuilder::with_capacity(n, n * 2);
    let mut time = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut cols: Vec<UInt64Builder> = (0..9).map(|_| UInt64Builder::with_capacity(n)).collect();
    let mut per = Float64Builder::with_capacity(n);
    for (name, t, b) in &rows {
        bin.append_value(name);
        time.append_value(*t);
        let vals = [b.packets, b.bytes, b.sources.count(), b.tcp, b.udp, b.icmp, b.other, b.backscatter, b.research];
        for (c, v) in cols.iter_mut().zip(vals) {
            c.append_value(v);
        }
        per.append_value(b.packets as f64 / dark.max(1) as f64);
    }
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(bin.finish()), Arc::new(time.finish())];
    arrays.extend(cols.iter_mut().map(|c| Arc::new(c.finish()) as ArrayRef));
    arrays.push(Arc::new(per.finish()));
    RecordBatch::try_new(stats_schema(), arrays)
}

/// Rows for one day's hours: the busiest ports of each hour, the rest in one row.
pub(crate) fn port_stats_batch<'a>(
    ports: impl Iterator<Item = (u64, &'a PortHour)>,
) -> Result<RecordBatch, ArrowError> {
    let mut by_hour: BTreeMap<i64, Vec<(u8, u16, &PortHour)>> = BTreeMap::new();
    for (k, ph) in ports {
        let (h, p, port) = split_port_key(k);
        by_hour.entry(h).or_default().push((p, port, ph));
    }
    let mut time = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let mut proto = UInt8Builder::new();
    let mut port = UInt16Builder::new();
    let mut packets = UInt64Builder::new();
    let mut sources = UInt64Builder::new();
    for (h, mut v) in by_hour {
        v.sort_by_key(|(p, port, ph)| (std::cmp::Reverse(ph.packets), *p, *port));
        let rest = v.split_off(v.len().min(TOP_PORTS_PER_HOUR));
        for (p, po, ph) in v {
            time.append_value(h * HOUR_US);
            proto.append_value(p);
            port.append_value(po);
            packets.append_value(ph.packets);
            sources.append_value(ph.sources.count());
        }
        let mut by_proto: BTreeMap<u8, (u64, Distinct)> = BTreeMap::new();
        for (p, _, ph) in rest {
            let e = by_proto.entry(p).or_default();
            e.0 += ph.packets;
            e.1.merge(&ph.sources);
        }
        for (p, (n, d)) in by_proto {
            time.append_value(h * HOUR_US);
            proto.append_value(p);
            port.append_null();
            packets.append_value(n);
            sources.append_value(d.count());
        }
    }
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(time.finish()),
        Arc::new(proto.finish()),
        Arc::new(port.finish()),
        Arc::new(packets.finish()),
        Arc::new(sources.finish()),
    ];
    RecordBatch::try_new(port_stats_schema(), arrays)
}
