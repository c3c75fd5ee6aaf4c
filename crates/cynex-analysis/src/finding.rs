//! What analysis concludes, as rows of the `findings` / `ongoing` tables.

use std::sync::Arc;

use cynex_model::schema::findings_schema;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Builder, PrimitiveArray, RecordBatch, StringArray, StringBuilder,
    TimestampMicrosecondBuilder, UInt16Builder, UInt32Builder, UInt64Builder, UInt8Builder,
};
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, Float64Type, TimestampMicrosecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use datafusion::arrow::error::ArrowError;
use serde::{Deserialize, Serialize};

/// Kinds of finding, as stored in the `kind` column.
pub mod kind {
    /// A source probing one port (and traffic type) of the dark space until it went quiet.
    pub const SCAN: &str = "scan";
    /// A scanning source attributed to a tool, with the evidence.
    pub const TOOL: &str = "tool";
    /// A victim of a randomly spoofed flood, seen through its replies (backscatter).
    pub const BACKSCATTER: &str = "backscatter";
    /// A sudden rise in unique sources on one port, or a port newly becoming popular.
    pub const SURGE: &str = "surge";
    /// Sources acting together: same tool, same target ports, overlapping in time (`campaigns` table).
    pub const CAMPAIGN: &str = "campaign";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub id: String,
    pub kind: String,
    pub time: i64,
    pub end_time: i64,
    pub ip4: Option<u32>,
    pub port: Option<u16>,
    pub proto: Option<u8>,
    pub traffic: Option<String>,
    pub tool: Option<String>,
    pub label: Option<String>,
    pub packets: u64,
    pub uniques: Option<u64>,
    pub unique_24s: Option<u64>,
    pub rate: Option<f64>,
    pub score: Option<f64>,
    pub evidence: serde_json::Value,
    /// Country (ISO code), AS number and AS organisation of `ip4`, from the GeoIP databases.
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub asn: Option<u32>,
    #[serde(default)]
    pub as_org: Option<String>,
}

/// A stable id from what identifies a finding: the same event found again (by a re-run, or by
/// a later run that saw more of it) gets the same id.
pub fn finding_id(kind: &str, parts: &[u64]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(kind.as_bytes());
    for p in parts {
        h.update(&p.to_le_bytes());
    }
    let hex = h.finalize().to_hex();
    format!("{kind}-{}", &hex[..24])
}

pub fn findings_batch(rows: &[Finding]) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let mut id = StringBuilder::with_capacity(n, n * 32);
    let mut kind = StringBuilder::with_capacity(n, n * 8);
    let mut time = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut end = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut ip4 = UInt32Builder::with_capacity(n);
    let mut port = UInt16Builder::with_capacity(n);
    let mut proto = UInt8Builder::with_capacity(n);
    let mut traffic = StringBuilder::new();
    let mut tool = StringBuilder::new();
    let mut label = StringBuilder::new();
    let mut packets = UInt64Builder::with_capacity(n);
    let mut uniques = UInt64Builder::with_capacity(n);
    let mut u24 = UInt64Builder::with_capacity(n);
    let mut rate = Float64Builder::with_capacity(n);
    let mut score = Float64Builder::with_capacity(n);
    let mut evidence = StringBuilder::with_capacity(n, n * 64);
    let mut country = StringBuilder::new();
    let mut asn = UInt32Builder::with_capacity(n);
    let mut as_org = StringBuilder::new();
    for f in rows {
        id.append_value(&f.id);
        kind.append_value(&f.kind);
        time.append_value(f.time);
        end.append_value(f.end_time);
        ip4.append_option(f.ip4);
        port.append_option(f.port);
        proto.append_option(f.proto);
        traffic.append_option(f.traffic.as_deref());
        tool.append_option(f.tool.as_deref());
        label.append_option(f.label.as_deref());
        packets.append_value(f.packets);
        uniques.append_option(f.uniques);
        u24.append_option(f.unique_24s);
        rate.append_option(f.rate);
        score.append_option(f.score);
        evidence.append_value(f.evidence.to_string());
        country.append_option(f.country.as_deref());
        asn.append_option(f.asn);
        as_org.append_option(f.as_org.as_deref());
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(kind.finish()),
        Arc::new(time.finish()),
        Arc::new(end.finish()),
        Arc::new(ip4.finish()),
        Arc::new(port.finish()),
        Arc::new(proto.finish()),
        Arc::new(traffic.finish()),
        Arc::new(tool.finish()),
        Arc::new(label.finish()),
        Arc::new(packets.finish()),
        Arc::new(uniques.finish()),
        Arc::new(u24.finish()),
        Arc::new(rate.finish()),
        Arc::new(score.finish()),
        Arc::new(evidence.finish()),
        Arc::new(country.finish()),
        Arc::new(asn.finish()),
        Arc::new(as_org.finish()),
    ];
    RecordBatch::try_new(findings_schema(), cols)
}

/// A `findings`-shaped batch's columns by name and type; a missing or mistyped column is an
/// error naming it.
pub(crate) struct Columns<'a>(pub(crate) &'a RecordBatch);

impl<'a> Columns<'a> {
    fn col(&self, n: &str) -> Result<&'a ArrayRef, String> {
        self.0.column_by_name(n).ok_or_else(|| format!("no column {n}"))
    }

    pub(crate) fn text(&self, n: &str) -> Result<&'a StringArray, String> {
        self.col(n)?.as_string_opt::<i32>().ok_or_else(|| format!("{n}: not text"))
    }

    pub(crate) fn prim<T: ArrowPrimitiveType>(&self, n: &str) -> Result<&'a PrimitiveArray<T>, String> {
        self.col(n)?.as_primitive_opt::<T>().ok_or_else(|| format!("{n}: wrong type"))
    }
}

/// The columns that say what a finding is, when and of which address: [`CORE_COLUMNS`].
pub(crate) struct Core<'a> {
    pub(crate) kind: &'a StringArray,
    pub(crate) time: &'a PrimitiveArray<TimestampMicrosecondType>,
    pub(crate) end_time: &'a PrimitiveArray<TimestampMicrosecondType>,
    pub(crate) ip4: &'a PrimitiveArray<UInt32Type>,
    pub(crate) port: &'a PrimitiveArray<UInt16Type>,
    pub(crate) proto: &'a PrimitiveArray<UInt8Type>,
    pub(crate) tool: &'a StringArray,
    pub(crate) label: &'a StringArray,
    pub(crate) packets: &'a PrimitiveArray<UInt64Type>,
}

/// The names of [`Core`]'s columns.
pub(crate) const CORE_COLUMNS: [&str; 9] =
    ["kind", "time", "end_time", "ip4", "port", "proto", "tool", "label", "packets"];

impl<'a> Columns<'a> {
    pub(crate) fn core(&self) -> Result<Core<'a>, String> {
        Ok(Core {
            kind: self.text("kind")?,
            time: self.prim("time")?,
            end_time: self.prim("end_time")?,
            ip4: self.prim("ip4")?,
            port: self.prim("port")?,
            proto: self.prim("proto")?,
            tool: self.text("tool")?,
            label: self.text("label")?,
            packets: self.prim("packets")?,
        })
    }
}

/// Rows of a `findings`/`ongoing` batch back as [`Finding`]s.
pub fn findings_from_batch(b: &RecordBatch) -> Result<Vec<Finding>, String> {
    let c = Columns(b);
    let Core { kind: kind_c, time, end_time: end, ip4, port, proto, tool, label, packets } = c.core()?;
    let (id, traffic, ev) = (c.text("id")?, c.text("traffic")?, c.text("evidence")?);
    let uniques = c.prim::<UInt64Type>("uniques")?;
    let u24 = c.prim::<UInt64Type>("unique_24s")?;
    let rate = c.prim::<Float64Type>("rate")?;
    let score = c.prim::<Float64Type>("score")?;
    let txt = |a: &StringArray, i: usize| a.is_valid(i).then(|| a.value(i).to_string());
    // Enrichment columns came later: files written before them read as null.
    let country = b.column_by_name("country").and_then(|c| c.as_string_opt::<i32>());
    let as_org = b.column_by_name("as_org").and_then(|c| c.as_string_opt::<i32>());
    let asn = b.column_by_name("asn").and_then(|c| c.as_primitive_opt::<UInt32Type>());
    let mut out = Vec::with_capacity(b.num_rows());
    for i in 0..b.num_rows() {
        out.push(Finding {
            id: id.value(i).to_string(),
            kind: kind_c.value(i).to_string(),
            time: time.value(i),
            end_time: end.value(i),
            ip4: ip4.is_valid(i).then(|| ip4.value(i)),
            port: port.is_valid(i).then(|| port.value(i)),
            proto: proto.is_valid(i).then(|| proto.value(i)),
            traffic: txt(traffic, i),
            tool: txt(tool, i),
            label: txt(label, i),
            packets: packets.value(i),
            uniques: uniques.is_valid(i).then(|| uniques.value(i)),
            unique_24s: u24.is_valid(i).then(|| u24.value(i)),
            rate: rate.is_valid(i).then(|| rate.value(i)),
            score: score.is_valid(i).then(|| score.value(i)),
            evidence: serde_json::from_str(ev.value(i)).map_err(|e| format!("evidence of {}: {e}", id.value(i)))?,
            country: country.and_then(|a| txt(a, i)),
            asn: asn.and_then(|a| a.is_valid(i).then(|| a.value(i))),
            as_org: as_org.and_then(|a| txt(a, i)),
        });
    }
    Ok(out)
}
