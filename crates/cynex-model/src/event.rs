//! The `events` table: log events from member IDS, network monitors and honeypots (Suricata EVE,
//! Zeek, Cowrie), normalised to flat columns named after their OCSF attribute paths (`.` → `_`,
//! e.g. `src_endpoint.ip` → `src_endpoint_ip`), with the original record kept verbatim in
//! `raw_data` for lossless re-parse. See docs/EVENTS.md for the mapping.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{
    ArrayRef, RecordBatch, StringBuilder, TimestampMicrosecondBuilder, UInt16Builder, UInt32Builder, UInt64Builder,
    UInt8Builder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::error::ArrowError;

macro_rules! event_columns {
    ($( $(#[$doc:meta])* $name:ident : $kind:ident ),* $(,)?) => {
        /// One normalised event; `None` is a null column value.
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct EventRecord {
            /// Event time, µs since the epoch (UTC).
            pub time: i64,
            /// Original record, verbatim.
            pub raw_data: String,
            $( $(#[$doc])* pub $name: Option<event_columns!(@ty $kind)>, )*
        }

        /// One normalised event borrowing its strings where it can (from the input line, for
        /// decoders that parse without copying): what [`EventColumns::append_row`] takes, so a
        /// row goes from the line to the column builders with one copy.
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct EventRow<'a> {
            /// Event time, µs since the epoch (UTC).
            pub time: i64,
            /// Original record, verbatim.
            pub raw_data: Cow<'a, str>,
            $( $(#[$doc])* pub $name: Option<event_columns!(@row 'a, $kind)>, )*
        }

        impl EventRow<'_> {
            /// An owned copy.
            pub fn into_record(self) -> EventRecord {
                EventRecord {
                    time: self.time,
                    raw_data: self.raw_data.into_owned(),
                    $( $name: event_columns!(@own self.$name, $kind), )*
                }
            }
        }

        impl EventRecord {
            /// As a row owning its strings.
            pub fn into_row(self) -> EventRow<'static> {
                EventRow {
                    time: self.time,
                    raw_data: Cow::Owned(self.raw_data),
                    $( $name: event_columns!(@give self.$name, $kind), )*
                }
            }

            /// A view borrowing every string.
            pub fn as_row(&self) -> EventRow<'_> {
                EventRow {
                    time: self.time,
                    raw_data: Cow::Borrowed(&self.raw_data),
                    $( $name: event_columns!(@borrow self.$name, $kind), )*
                }
            }
        }

        /// Column builders for a batch of [`EventRecord`]s.
        pub struct EventColumns {
            time: TimestampMicrosecondBuilder,
            raw_data: StringBuilder,
            $( $name: Lazy<event_columns!(@builder $kind)>, )*
            len: usize,
        }

        impl Default for EventColumns {
            fn default() -> Self {
                EventColumns {
                    time: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
                    raw_data: StringBuilder::new(),
                    $( $name: Lazy::new(<event_columns!(@builder $kind)>::new()), )*
                    len: 0,
                }
            }
        }

        impl EventColumns {
            /// Builders sized for `rows` rows whose verbatim records total `raw_bytes`, so that
            /// filling them does not regrow (and copy) the largest buffers.
            pub fn with_capacity(rows: usize, raw_bytes: usize) -> Self {
                EventColumns {
                    time: TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
                    raw_data: StringBuilder::with_capacity(rows, raw_bytes),
                    $( $name: Lazy::new(event_columns!(@with_capacity $kind, rows)), )*
                    len: 0,
                }
            }

            pub fn append(&mut self, r: &EventRecord) {
                self.append_row(&r.as_row());
            }

            pub fn append_row(&mut self, r: &EventRow<'_>) {
                self.time.append_value(r.time);
                self.raw_data.append_value(&r.raw_data);
                $( event_columns!(@append self.$name, r.$name, $kind); )*
                self.len += 1;
            }

            pub fn len(&self) -> usize {
                self.len
            }

            pub fn is_empty(&self) -> bool {
                self.len == 0
            }

            pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
                self.len = 0;
                let cols: Vec<ArrayRef> = vec![
                    Arc::new(self.time.finish()),
                    $( Arc::new(self.$name.builder().finish()), )*
                    Arc::new(self.raw_data.finish()),
                ];
                RecordBatch::try_new(events_schema(), cols)
            }
        }

        /// Schema of the `events` table: `time`, the normalised columns, then `raw_data`.
        pub fn events_schema() -> SchemaRef {
            static S: OnceLock<SchemaRef> = OnceLock::new();
            Arc::clone(S.get_or_init(|| {
                let mut f = vec![Field::new("time", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false)];
                $( f.push(Field::new(stringify!($name), event_columns!(@dt $kind), true)); )*
                f.push(Field::new("raw_data", DataType::Utf8, false));
                Arc::new(Schema::new(f))
            }))
        }
    };
    (@ty str) => { String };
    (@row $lt:lifetime, str) => { Cow<$lt, str> };
    (@row $lt:lifetime, $k:ident) => { event_columns!(@ty $k) };
    (@own $v:expr, str) => { $v.map(Cow::into_owned) };
    (@own $v:expr, $k:ident) => { $v };
    (@give $v:expr, str) => { $v.map(Cow::Owned) };
    (@give $v:expr, $k:ident) => { $v };
    (@borrow $v:expr, str) => { $v.as_deref().map(Cow::Borrowed) };
    (@borrow $v:expr, $k:ident) => { $v };
    (@ty u8) => { u8 };
    (@ty u16) => { u16 };
    (@ty u32) => { u32 };
    (@ty u64) => { u64 };
    (@builder str) => { StringBuilder };
    (@with_capacity str, $n:expr) => { StringBuilder::with_capacity($n, 0) };
    (@with_capacity $k:ident, $n:expr) => { <event_columns!(@builder $k)>::with_capacity($n) };
    (@builder u8) => { UInt8Builder };
    (@builder u16) => { UInt16Builder };
    (@builder u32) => { UInt32Builder };
    (@builder u64) => { UInt64Builder };
    (@dt str) => { DataType::Utf8 };
    (@dt u8) => { DataType::UInt8 };
    (@dt u16) => { DataType::UInt16 };
    (@dt u32) => { DataType::UInt32 };
    (@dt u64) => { DataType::UInt64 };
    (@append $b:expr, $v:expr, str) => { match $v.as_deref() { Some(v) => $b.builder().append_value(v), None => $b.nulls += 1 } };
    (@append $b:expr, $v:expr, $k:ident) => { match $v { Some(v) => $b.builder().append_value(v), None => $b.nulls += 1 } };
}

/// A column builder that counts a run of nulls and appends it in one go when the next value (or
/// the end of the batch) comes: most `events` columns are null in most rows (a flow event has no
/// DNS, HTTP, TLS or file fields), and one bulk append is far cheaper than a call per row.
struct Lazy<B> {
    b: B,
    nulls: usize,
}

/// Builders that can append a run of nulls at once.
trait AppendNulls {
    fn append_nulls(&mut self, n: usize);
}

impl AppendNulls for StringBuilder {
    fn append_nulls(&mut self, n: usize) {
        StringBuilder::append_nulls(self, n)
    }
}

impl<T: datafusion::arrow::datatypes::ArrowPrimitiveType> AppendNulls
    for datafusion::arrow::array::PrimitiveBuilder<T>
{
    fn append_nulls(&mut self, n: usize) {
        datafusion::arrow::array::PrimitiveBuilder::append_nulls(self, n)
    }
}

impl<B: AppendNulls> Lazy<B> {
    fn new(b: B) -> Self {
        Lazy { b, nulls: 0 }
    }

    /// The builder with every counted null appended.
    fn builder(&mut self) -> &mut B {
        if self.nulls > 0 {
            self.b.append_nulls(self.nulls);
            self.nulls = 0;
        }
        &mut self.b
    }
}

event_columns! {
    /// Input format: `eve`, `zeek`, `cowrie`.
    format: str,
    /// The format's own record type: EVE `event_type`, Zeek log path, Cowrie `eventid`.
    event_type: str,
    /// OCSF class: 2004 Detection Finding, 4001 Network Activity, 4002 HTTP, 4003 DNS,
    /// 4007 SSH, 4010 Network File Activity, 3002 Authentication, 0 base event.
    class_uid: u32,
    activity_id: u8,
    /// 0 Unknown, 1 Informational, 2 Low, 3 Medium, 4 High, 5 Critical.
    severity_id: u8,
    src_endpoint_ip: str,
    src_endpoint_port: u16,
    dst_endpoint_ip: str,
    dst_endpoint_port: u16,
    connection_info_protocol_name: str,
    app_protocol_name: str,
    /// The sensor's id of the flow or connection (EVE `flow_id`, Zeek `uid`).
    metadata_uid: str,
    connection_info_community_uid: str,
    /// Rule or notice name (EVE `alert.signature`, Zeek notice `note`).
    finding_info_title: str,
    /// Rule id (EVE `alert.signature_id`).
    finding_info_uid: str,
    finding_info_analytic_category: str,
    finding_info_analytic_version: u32,
    /// What the sensor did: `allowed`, `blocked`, …
    action: str,
    dns_query_hostname: str,
    dns_query_type: str,
    dns_rcode: str,
    http_request_hostname: str,
    http_request_url_path: str,
    http_request_http_method: str,
    http_request_user_agent: str,
    http_response_code: u16,
    tls_sni: str,
    tls_version: str,
    file_name: str,
    file_hashes_sha256: str,
    file_hashes_md5: str,
    file_size: u64,
    traffic_packets_out: u64,
    traffic_packets_in: u64,
    traffic_bytes_out: u64,
    traffic_bytes_in: u64,
    user_name: str,
    /// OCSF has no password attribute (honeypot logins): kept under `unmapped`.
    unmapped_password: str,
    actor_process_cmd_line: str,
    url_text: str,
    session_uid: str,
    /// Member organisation that sent the record.
    organisation: str,
    /// File (or stream) and line the record came from.
    source: str,
    line: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, StringArray, UInt16Array};

    #[test]
    fn runs_of_nulls_land_in_their_rows_across_batches() {
        let row = |i: u16| EventRow {
            time: i64::from(i),
            raw_data: Cow::Owned(format!("r{i}")),
            dns_query_hostname: (i % 3 == 1).then(|| Cow::Owned(format!("h{i}"))),
            dst_endpoint_port: i.is_multiple_of(4).then_some(i),
            ..Default::default()
        };
        let mut cols = EventColumns::with_capacity(4, 16);
        for batch in [0..5u16, 5..7, 7..8] {
            for i in batch.clone() {
                cols.append_row(&row(i));
            }
            let b = cols.finish().unwrap();
            assert_eq!(b.num_rows(), batch.len());
            let host = b.column_by_name("dns_query_hostname").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
            let port = b.column_by_name("dst_endpoint_port").unwrap().as_any().downcast_ref::<UInt16Array>().unwrap();
            for (k, i) in batch.enumerate() {
                let want = row(i);
                assert_eq!(host.is_valid(k).then(|| host.value(k)), want.dns_query_hostname.as_deref(), "row {i}");
                assert_eq!(port.is_valid(k).then(|| port.value(k)), want.dst_endpoint_port, "row {i}");
            }
        }
    }
}
