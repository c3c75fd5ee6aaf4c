//! A typed, borrowing view of an EVE record: only the fields `events` has columns for are
//! deserialised (strings borrowed from the line unless escaped); everything else is skipped by
//! the parser without building a tree. Sections of the wrong JSON type are ignored, as a tree
//! lookup would ignore them; scalars keep their JSON kind so the normaliser can tell a string
//! from a number.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// A JSON value where a scalar is expected.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) enum Scalar<'a> {
    #[default]
    Absent,
    Null,
    Str(Cow<'a, str>),
    U64(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
    /// An object or array.
    Nested,
}

impl<'a> Scalar<'a> {
    /// As text: strings as they are (borrowed from the line unless escaped), numbers and
    /// booleans as JSON prints them.
    pub(crate) fn text(&self) -> Option<Cow<'a, str>> {
        match self {
            Scalar::Str(s) => Some(s.clone()),
            Scalar::U64(n) => Some(n.to_string().into()),
            Scalar::I64(n) => Some(n.to_string().into()),
            Scalar::F64(f) => {
                Some(serde_json::Number::from_f64(*f).map_or_else(|| f.to_string(), |n| n.to_string()).into())
            }
            Scalar::Bool(b) => Some(b.to_string().into()),
            _ => None,
        }
    }

    /// A string only (no numbers).
    pub(crate) fn string(&self) -> Option<Cow<'a, str>> {
        match self {
            Scalar::Str(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// As an unsigned number: a non-negative integer, or a string holding one.
    pub(crate) fn u64(&self) -> Option<u64> {
        match self {
            Scalar::U64(n) => Some(*n),
            Scalar::Str(s) => s.parse().ok(),
            _ => None,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Scalar<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Scalar::U64(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(if v >= 0 { Scalar::U64(v as u64) } else { Scalar::I64(v) })
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar::F64(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Nested)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Nested)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// Visitor methods that answer `$none` to any scalar (a section of the wrong JSON type).
macro_rules! skip_scalars {
    ($none:expr) => {
        fn visit_borrowed_str<E: de::Error>(self, _: &'de str) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($none)
        }
    };
}

/// A section that is used only when it is a JSON object (anything else is skipped).
#[derive(Debug)]
pub(crate) struct Obj<T>(pub(crate) Option<T>);

impl<T> Default for Obj<T> {
    fn default() -> Self {
        Obj(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(m)).map(|t| Obj(Some(t)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Obj(None))
            }
            skip_scalars!(Obj(None));
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// The first element of an array of objects (anything else is skipped).
#[derive(Debug)]
pub(crate) struct First<T>(pub(crate) Option<T>);

impl<T> Default for First<T> {
    fn default() -> Self {
        First(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for First<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = First<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                let first = s.next_element::<Obj<T>>()?.and_then(|o| o.0);
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(First(first))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(First(None))
            }
            skip_scalars!(First(None));
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// An object key, borrowed from the line when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Key<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V(PhantomData))
    }
}

/// A struct of the keys we want from a JSON object. Unlike a derived `Deserialize`, a key that
/// appears twice is not an error: the last one wins, as with a tree (real EVE writers repeat
/// keys). Other keys are skipped without being built.
macro_rules! section {
    ($name:ident { $($key:literal => $field:ident : $ty:ty),* $(,)? }) => {
        #[derive(Debug, Default)]
        pub(crate) struct $name<'a> {
            $( pub(crate) $field: $ty, )*
            _borrow: PhantomData<&'a ()>,
        }

        impl<'de: 'a, 'a> Deserialize<'de> for $name<'a> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V<'a>(PhantomData<&'a ()>);
                impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
                    type Value = $name<'a>;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a JSON object")
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                        let mut out = $name::default();
                        while let Some(k) = m.next_key::<Key<'de>>()? {
                            match k.0.as_ref() {
                                $( $key => out.$field = m.next_value()?, )*
                                _ => {
                                    m.next_value::<IgnoredAny>()?;
                                }
                            }
                        }
                        Ok(out)
                    }
                }
                d.deserialize_map(V(PhantomData))
            }
        }
    };
}

section!(Alert {
    "signature" => signature: Scalar<'a>,
    "signature_id" => signature_id: Scalar<'a>,
    "category" => category: Scalar<'a>,
    "rev" => rev: Scalar<'a>,
    "action" => action: Scalar<'a>,
    "severity" => severity: Scalar<'a>,
});
section!(Anomaly { "event" => event: Scalar<'a>, "type" => kind: Scalar<'a> });
section!(Tls { "sni" => sni: Scalar<'a>, "version" => version: Scalar<'a> });
section!(FileInfo {
    "filename" => filename: Scalar<'a>,
    "sha256" => sha256: Scalar<'a>,
    "md5" => md5: Scalar<'a>,
    "size" => size: Scalar<'a>,
});
section!(Http {
    "hostname" => hostname: Scalar<'a>,
    "url" => url: Scalar<'a>,
    "http_method" => http_method: Scalar<'a>,
    "http_user_agent" => http_user_agent: Scalar<'a>,
    "status" => status: Scalar<'a>,
});
section!(Flow {
    "pkts_toserver" => pkts_toserver: Scalar<'a>,
    "pkts_toclient" => pkts_toclient: Scalar<'a>,
    "bytes_toserver" => bytes_toserver: Scalar<'a>,
    "bytes_toclient" => bytes_toclient: Scalar<'a>,
});
section!(DnsQuery { "rrname" => rrname: Scalar<'a> });
section!(Dns {
    "rrname" => rrname: Scalar<'a>,
    "rrtype" => rrtype: Scalar<'a>,
    "rcode" => rcode: Scalar<'a>,
    "queries" => queries: First<DnsQuery<'a>>,
});
// The fields of an EVE record that have columns. HTTP and flow sections are `Some` when present
// at all: they also ride on other event types.
section!(Eve {
    "timestamp" => timestamp: Scalar<'a>,
    "event_type" => event_type: Scalar<'a>,
    "src_ip" => src_ip: Scalar<'a>,
    "src_port" => src_port: Scalar<'a>,
    "dest_ip" => dest_ip: Scalar<'a>,
    "dest_port" => dest_port: Scalar<'a>,
    "proto" => proto: Scalar<'a>,
    "app_proto" => app_proto: Scalar<'a>,
    "flow_id" => flow_id: Scalar<'a>,
    "community_id" => community_id: Scalar<'a>,
    "alert" => alert: Obj<Alert<'a>>,
    "anomaly" => anomaly: Obj<Anomaly<'a>>,
    "dns" => dns: Obj<Dns<'a>>,
    "tls" => tls: Obj<Tls<'a>>,
    "fileinfo" => fileinfo: Obj<FileInfo<'a>>,
    "http" => http: Option<Obj<Http<'a>>>,
    "flow" => flow: Option<Obj<Flow<'a>>>,
});

/// Normalise one EVE record from its typed view (see [`super::normalize`]).
pub(crate) fn normalize<'a>(
    raw: &'a [u8],
    source: &'a str,
    line: u64,
) -> Result<cynex_model::event::EventRow<'a>, String> {
    use cynex_model::time::parse_rfc3339_us;
    let text = std::str::from_utf8(raw).map_err(|e| format!("not UTF-8 at byte {}", e.valid_up_to()))?;
    // A struct would also accept an array positionally: only objects are records.
    if text.trim_start().as_bytes().first() != Some(&b'{') {
        return Err(match serde_json::from_str::<IgnoredAny>(text) {
            Ok(_) => "not a JSON object".into(),
            Err(e) => format!("bad JSON: {e}"),
        });
    }
    let v: Eve<'a> = serde_json::from_str(text).map_err(|e| format!("bad JSON: {e}"))?;
    let ts = match &v.timestamp {
        Scalar::Str(t) => parse_rfc3339_us(t).ok_or_else(|| format!("bad timestamp {t:?}"))?,
        Scalar::Absent => return Err("no timestamp".into()),
        _ => return Err("timestamp is not a string".into()),
    };
    let et = match &v.event_type {
        Scalar::Str(t) if !t.is_empty() => t.clone(),
        Scalar::Absent => return Err("no event_type".into()),
        _ => return Err("event_type is not a non-empty string".into()),
    };
    let port = |k: &str, p: &Scalar<'_>| -> Result<Option<u16>, String> {
        match p {
            Scalar::Absent | Scalar::Null => Ok(None),
            Scalar::U64(n) => u16::try_from(*n).map(Some).map_err(|_| format!("{k} {n} is not a port")),
            Scalar::I64(n) => Err(format!("{k} {n} is not a port")),
            Scalar::F64(n) => Err(format!("{k} {n} is not a port")),
            Scalar::Str(s) => Err(format!("{k} is not a number: {s:?}")),
            Scalar::Bool(b) => Err(format!("{k} is not a number: {b}")),
            Scalar::Nested => Err(format!("{k} is not a number: an object or array")),
        }
    };
    let mut r = cynex_model::event::EventRow {
        time: ts,
        raw_data: Cow::Borrowed(text),
        format: Some("eve".into()),
        class_uid: Some(super::class_of(&et)),
        activity_id: Some(match et.as_ref() {
            "alert" | "anomaly" => 1,
            "flow" | "netflow" => 6,
            _ => 0,
        }),
        severity_id: Some(1),
        src_endpoint_ip: v.src_ip.text(),
        src_endpoint_port: port("src_port", &v.src_port)?,
        dst_endpoint_ip: v.dest_ip.text(),
        dst_endpoint_port: port("dest_port", &v.dest_port)?,
        connection_info_protocol_name: v.proto.text().map(lowercase),
        app_protocol_name: v.app_proto.text(),
        metadata_uid: v.flow_id.text(),
        connection_info_community_uid: v.community_id.text(),
        source: Some(Cow::Borrowed(source)),
        line: Some(line),
        ..Default::default()
    };
    match et.as_ref() {
        "alert" => {
            if let Some(a) = &v.alert.0 {
                r.finding_info_title = a.signature.text();
                r.finding_info_uid = a.signature_id.text();
                r.finding_info_analytic_category = a.category.text();
                r.finding_info_analytic_version = a.rev.u64().and_then(|x| u32::try_from(x).ok());
                r.action = a.action.text();
            }
            // Suricata severity 1 (highest) .. 3 → OCSF High 4 .. Low 2.
            r.severity_id = Some(match v.alert.0.as_ref().and_then(|a| a.severity.u64()) {
                Some(1) => 4,
                Some(2) => 3,
                Some(3) => 2,
                Some(_) => 1,
                None => 0,
            });
        }
        "anomaly" => {
            if let Some(a) = &v.anomaly.0 {
                r.finding_info_title = a.event.text().or_else(|| a.kind.text());
                r.finding_info_analytic_category = a.kind.text();
            }
            r.severity_id = Some(2);
        }
        "drop" => r.action = Some("blocked".into()),
        "dns" => {
            if let Some(d) = &v.dns.0 {
                r.dns_query_hostname = d.rrname.text().or_else(|| d.queries.0.as_ref().and_then(|q| q.rrname.string()));
                r.dns_query_type = d.rrtype.text();
                r.dns_rcode = d.rcode.text();
            }
        }
        "tls" => {
            if let Some(t) = &v.tls.0 {
                r.tls_sni = t.sni.text();
                r.tls_version = t.version.text();
            }
        }
        "ssh" => r.app_protocol_name = r.app_protocol_name.or(Some("ssh".into())),
        "fileinfo" => {
            if let Some(f) = &v.fileinfo.0 {
                r.file_name = f.filename.text();
                r.file_hashes_sha256 = f.sha256.text();
                r.file_hashes_md5 = f.md5.text();
                r.file_size = f.size.u64();
            }
            r.activity_id = Some(2);
        }
        _ => {}
    }
    // HTTP and flow sections also appear inside other event types (alert, fileinfo).
    if let Some(h) = &v.http {
        if let Some(h) = &h.0 {
            r.http_request_hostname = h.hostname.text();
            r.http_request_url_path = h.url.text();
            r.http_request_http_method = h.http_method.text();
            r.http_request_user_agent = h.http_user_agent.text();
            r.http_response_code = h.status.u64().and_then(|x| u16::try_from(x).ok());
        }
    }
    if let Some(f) = &v.flow {
        if let Some(f) = &f.0 {
            r.traffic_packets_out = f.pkts_toserver.u64();
            r.traffic_packets_in = f.pkts_toclient.u64();
            r.traffic_bytes_out = f.bytes_toserver.u64();
            r.traffic_bytes_in = f.bytes_toclient.u64();
        }
    }
    r.event_type = Some(et);
    Ok(r)
}

/// A protocol name in lower case, without allocating for the common ones.
fn lowercase(p: Cow<'_, str>) -> Cow<'_, str> {
    match p.as_ref() {
        "TCP" => "tcp".into(),
        "UDP" => "udp".into(),
        "ICMP" => "icmp".into(),
        "IPv6-ICMP" => "ipv6-icmp".into(),
        _ if p.bytes().any(|b| b.is_ascii_uppercase()) => p.to_ascii_lowercase().into(),
        _ => p,
    }
}
