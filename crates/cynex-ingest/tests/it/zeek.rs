//! Zeek logs: every corpus file in TSV and JSON with its expected counts, the zeek-cut edge
//! cases, golden rows, and the same records read from TSV and JSON agreeing.

use std::io::Cursor;
use std::path::PathBuf;

use cynex_ingest::zeek::{Decoded, ZeekReader};
use cynex_model::time::parse_rfc3339_us;

fn corpus(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/zeek").join(rel)
}

fn decode_named(bytes: &[u8], name: &str) -> Decoded {
    let mut z = ZeekReader::new(Cursor::new(bytes), name, None);
    let mut d = Decoded::default();
    while z.decode_some(0, 5, &mut d).unwrap() {}
    d
}

fn decode(rel: &str) -> Decoded {
    decode_named(&std::fs::read(corpus(rel)).unwrap(), rel)
}

#[test]
fn corpus_files_with_expected_counts() {
    // (file, events, quarantined): data rows as `grep -cv '^#'` counts them.
    let expected: &[(&str, usize, usize)] = &[
        ("tsv/conn.log", 5, 0),
        ("tsv/dns.log", 1000, 0),
        ("tsv/notice.log", 207, 0),
        ("tsv/ssl.log", 1000, 0),
        ("tsv/weird.log", 1000, 0),
        ("tsv/x509.log", 348, 0),
        ("json/dns.ndjson", 1000, 0),
        ("json/notice.ndjson", 207, 0),
        ("json/ssl.ndjson", 1000, 0),
        ("json/weird.ndjson", 1000, 0),
        ("json/x509.ndjson", 348, 0),
        // ts canonified to XXXXXXXXXX.XXXXXX by btest: no row has a time.
        ("edge-cases/conn-btest-canonified.log", 0, 21),
        // No #fields header: the first line is a plain field list, nothing can be typed.
        ("edge-cases/conn-no-header.tsv", 0, 6),
        // hello, 77777777777777777777 (out of range) and an empty ts are bad; -12345.123456 and
        // 123456789 are times.
        ("edge-cases/invalid-time.log", 2, 3),
        // The #separator line has no value / a NUL: that line and the row after are quarantined.
        ("edge-cases/missing-separator.log", 0, 2),
        ("edge-cases/null-separator.log", 0, 2),
        ("edge-cases/multiple-times.log", 4, 0),
        ("edge-cases/time-optional.log", 1, 0),
        ("edge-cases/unset-field-custom.log", 1, 0),
    ];
    for (rel, events, bad) in expected {
        let d = decode(rel);
        assert_eq!(
            (d.events.len(), d.quarantine.len()),
            (*events, *bad),
            "{rel}: {:?}",
            d.quarantine.iter().take(3).map(|q| q.to_string()).collect::<Vec<_>>()
        );
        assert!(d.quarantine.iter().all(|q| q.line.is_some() && !q.reason.is_empty()));
    }
    let listed: usize =
        ["tsv", "json", "edge-cases"].iter().map(|d| std::fs::read_dir(corpus(d)).unwrap().count()).sum();
    assert_eq!(listed, expected.len(), "a corpus file without expectations");
}

#[test]
fn golden_rows_and_tsv_json_agree() {
    let conn = decode("tsv/conn.log").events.remove(0);
    assert_eq!(conn.time, 1_329_843_175_736_107);
    assert_eq!(conn.event_type.as_deref(), Some("conn"));
    assert_eq!(conn.class_uid, Some(4001));
    assert_eq!(conn.metadata_uid.as_deref(), Some("CjhGID4nQcgTWjvg4c"));
    assert_eq!((conn.src_endpoint_ip.as_deref(), conn.src_endpoint_port), (Some("141.142.220.235"), Some(37604)));
    assert_eq!((conn.dst_endpoint_ip.as_deref(), conn.dst_endpoint_port), (Some("199.233.217.249"), Some(56666)));
    assert_eq!(conn.app_protocol_name.as_deref(), Some("ftp-data"));
    assert_eq!((conn.traffic_bytes_in, conn.traffic_packets_out), (Some(342), Some(4)));

    let json = decode("json/dns.ndjson").events.remove(0);
    assert_eq!(json.time, parse_rfc3339_us("2018-03-24T17:15:20.865716Z").unwrap());
    assert_eq!(json.dns_query_hostname.as_deref(), Some("ise.wrccdc.org"));
    assert_eq!(json.dns_query_type.as_deref(), Some("A"));
    assert_eq!(json.class_uid, Some(4003));

    // The same logs in both forms normalise to the same columns (raw_data, source, line aside).
    for log in ["dns", "notice", "ssl", "weird", "x509"] {
        let tsv = decode(&format!("tsv/{log}.log")).events;
        let js = decode(&format!("json/{log}.ndjson")).events;
        assert_eq!(tsv.len(), js.len(), "{log}");
        let strip = |mut e: cynex_model::event::EventRecord| {
            e.raw_data.clear();
            e.source = None;
            e.line = None;
            e
        };
        let mismatches = tsv.into_iter().zip(js).filter(|(a, b)| strip(a.clone()) != strip(b.clone())).count();
        assert_eq!(mismatches, 0, "{log}: TSV and JSON disagree");
    }
    let notice = decode("tsv/notice.log").events;
    assert!(notice.iter().all(|e| e.class_uid == Some(2004) && e.finding_info_title.is_some()));
}

#[test]
fn tsv_rules_escapes_sets_unset_and_layout_changes() {
    let log = b"#separator \\x7c\n#set_separator|;\n#empty_field|EMPTY\n#unset_field|NIL\n#path|http\n\
#fields|ts|uid|host|uri|tags\n#types|time|string|string|string|set[string]\n\
1.5|C1|a\\x7cb|/x|t1;t2\n2.5|C2|NIL|EMPTY|EMPTY\n3.5|C3|too|few\n\
#fields|ts|id.orig_h\n#types|time|addr\n4.5|192.0.2.1\n";
    let d = decode_named(log, "x/http.log");
    assert_eq!(d.events.len(), 3, "{:?}", d.quarantine);
    assert_eq!(d.quarantine.len(), 1);
    assert_eq!(d.quarantine[0].line, Some(10));
    assert!(d.quarantine[0].reason.contains("4 values for 5 #fields"), "{}", d.quarantine[0].reason);
    assert_eq!(d.events[0].http_request_hostname.as_deref(), Some("a|b"), "escaped separator decoded");
    assert_eq!(d.events[0].time, 1_500_000);
    assert_eq!(d.events[1].http_request_hostname, None, "unset");
    assert_eq!(d.events[1].http_request_url_path.as_deref(), Some(""), "empty");
    assert_eq!(d.events[2].src_endpoint_ip.as_deref(), Some("192.0.2.1"), "new layout mid-file");
    assert_eq!(d.events[2].event_type.as_deref(), Some("http"));
}

#[test]
fn arbitrary_bytes_never_panic() {
    use proptest::prelude::*;
    proptest!(ProptestConfig::with_cases(256), |(bytes in proptest::collection::vec(any::<u8>(), 0..2048))| {
        let mut with_header = b"#separator \\x09\n#fields\tts\tuid\n#types\ttime\tstring\n".to_vec();
        with_header.extend_from_slice(&bytes);
        let _ = decode_named(&bytes, "conn.log");
        let _ = decode_named(&with_header, "conn.log");
    });
}
