//! Suricata EVE: every corpus file with its expected counts, golden rows for a handful of
//! records, and bad lines quarantined one by one with their line and reason.

use std::io::Cursor;
use std::path::PathBuf;

use cynex_ingest::eve::{decode_some, Decoded, RecordSplitter, MAX_RECORD};
use cynex_model::time::parse_rfc3339_us;

fn corpus(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/eve").join(name)
}

fn decode(bytes: &[u8]) -> Decoded {
    let mut split = RecordSplitter::new(Cursor::new(bytes), 0, 0);
    let mut d = Decoded::default();
    while decode_some(&mut split, "mem", Some("acme"), 0, 7, &mut d).unwrap() {}
    d
}

#[test]
fn every_corpus_file_with_expected_counts() {
    let expected: &[(&str, usize, usize)] = &[
        ("fever-alertify-input.jsonl", 3, 0),
        ("fever-empty.jsonl", 0, 0),
        ("fever-jsonparse-broken.jsonl", 2, 1),
        ("fever-jsonparse-nulls.jsonl", 1, 0),
        ("fever-jsonparse.jsonl", 3, 0),
        ("telegraf-alert-oneline.json", 1, 0),
        ("telegraf-stats-deltas.json", 1, 0),
        ("telegraf-stats-threads-pretty.json", 1, 0),
        ("telegraf-v2-alert-pretty.json", 1, 0),
        ("telegraf-v2-dns-pretty.json", 1, 0),
        ("telegraf-v2-drop-pretty.json", 1, 0),
        ("telegraf-v2-flow-pretty.json", 1, 0),
        ("telegraf-v2-http-pretty.json", 1, 0),
        ("telegraf-v2-status-pretty.json", 1, 0),
        ("tenzir-fileinfo.jsonl", 1, 0),
        ("tenzir-flow.jsonl", 1, 0),
        ("tenzir-http.jsonl", 1, 0),
    ];
    let listed = std::fs::read_dir(corpus("")).unwrap().count();
    assert_eq!(listed, expected.len(), "a corpus file without expectations");
    for (name, events, bad) in expected {
        let d = decode(&std::fs::read(corpus(name)).unwrap());
        assert_eq!((d.events.len(), d.quarantine.len()), (*events, *bad), "{name}: {:?}", d.quarantine);
    }
    let broken = decode(&std::fs::read(corpus("fever-jsonparse-broken.jsonl")).unwrap());
    assert_eq!(broken.quarantine[0].line, Some(2));
    assert!(broken.quarantine[0].reason.contains("bad JSON"), "{}", broken.quarantine[0].reason);
    assert_eq!(broken.events.iter().map(|e| e.line).collect::<Vec<_>>(), [Some(1), Some(3)]);
}

#[test]
fn golden_rows() {
    let alert = decode(&std::fs::read(corpus("telegraf-v2-alert-pretty.json")).unwrap()).events.remove(0);
    assert_eq!(alert.time, parse_rfc3339_us("2021-05-30T18:07:13.208777Z").unwrap(), "+0200 offset applied");
    assert_eq!(alert.event_type.as_deref(), Some("alert"));
    assert_eq!(alert.class_uid, Some(2004));
    assert_eq!(alert.finding_info_title.as_deref(), Some("Corrupted HTTP body"));
    assert_eq!(alert.finding_info_uid.as_deref(), Some("6"));
    assert_eq!(alert.action.as_deref(), Some("allowed"));
    assert_eq!((alert.src_endpoint_ip.as_deref(), alert.src_endpoint_port), (Some("10.0.0.5"), Some(18715)));
    assert_eq!((alert.dst_endpoint_ip.as_deref(), alert.dst_endpoint_port), (Some("179.60.192.3"), Some(80)));
    assert_eq!(alert.connection_info_protocol_name.as_deref(), Some("tcp"));
    assert_eq!(alert.organisation.as_deref(), Some("acme"));
    assert!(alert.raw_data.starts_with("{\n") && alert.raw_data.contains("\"signature_id\": 6"), "kept verbatim");

    let fileinfo = decode(&std::fs::read(corpus("tenzir-fileinfo.jsonl")).unwrap()).events.remove(0);
    assert_eq!(fileinfo.class_uid, Some(4010));
    assert_eq!(
        fileinfo.file_hashes_sha256.as_deref(),
        Some("2e4c462b3424afcc04f43429d5f001e4ef9a28143bfeefb9af2254b4df3a7c1a")
    );
    assert_eq!(fileinfo.file_size, Some(301));
    assert_eq!(fileinfo.http_request_hostname.as_deref(), Some("www.nmap.org"));
    assert_eq!(fileinfo.http_response_code, Some(301));

    let dns = decode(&std::fs::read(corpus("fever-jsonparse.jsonl")).unwrap());
    let q = dns.events.iter().find(|e| e.event_type.as_deref() == Some("dns")).unwrap();
    assert_eq!(q.class_uid, Some(4003));
    assert!(q.dns_query_hostname.is_some());

    let nulls = decode(&std::fs::read(corpus("fever-jsonparse-nulls.jsonl")).unwrap()).events.remove(0);
    assert_eq!((nulls.src_endpoint_ip.as_deref(), nulls.src_endpoint_port), (None, None));
}

#[test]
fn bad_lines_are_quarantined_each_with_line_and_reason() {
    let good = r#"{"timestamp":"2026-11-01T00:00:00.000000+0000","event_type":"flow","src_ip":"192.0.2.1"}"#;
    let mut input = Vec::new();
    let mut push = |l: &[u8]| {
        input.extend_from_slice(l);
        input.push(b'\n');
    };
    push(good.as_bytes()); // 1
    push(br#"{"timestamp":"2026-11-01T00:00:00Z","event_type":"fl"#); // 2 truncated
    push(br#"{"timestamp":1234,"event_type":"flow"}"#); // 3 wrong type
    push(br#"{"timestamp":"2026-11-01T00:00:00Z","event_type":"flow","src_port":"eighty"}"#); // 4 wrong type
    push(b"{\"timestamp\":\"2026-11-01T00:00:00Z\",\"event_type\":\"fl\xffow\"}"); // 5 invalid UTF-8
    push(
        format!("{{\"timestamp\":\"2026-11-01T00:00:00Z\",\"event_type\":\"x\",\"pad\":\"{}\"}}", "a".repeat(10 << 20))
            .as_bytes(),
    ); // 6: 10 MB
    push(br#"[1,2,3]"#); // 7 not an object
    push(br#"{"event_type":"flow"}"#); // 8 no timestamp
    push(br#"{"timestamp":"2026-11-01T00:00:00Z","event_type":"new-type-from-suricata-9"}"#); // 9 unknown type: kept
    push("{\"timestamp\":\"2026-11-01T00:00:00+a€\",\"event_type\":\"flow\"}".as_bytes()); // 10 bad offset
    push(good.as_bytes()); // 11
    let d = decode(&input);
    let lines: Vec<u64> = d.quarantine.iter().map(|q| q.line.unwrap()).collect();
    assert_eq!(lines, [2, 3, 4, 5, 6, 7, 8, 10]);
    assert_eq!(d.events.iter().map(|e| e.line.unwrap()).collect::<Vec<_>>(), [1, 9, 11]);
    assert_eq!(d.events[1].event_type.as_deref(), Some("new-type-from-suricata-9"));
    let reasons: Vec<&str> = d.quarantine.iter().map(|q| q.reason.as_str()).collect();
    for (r, want) in reasons.iter().zip([
        "bad JSON",
        "timestamp is not a string",
        "src_port is not a number",
        "not UTF-8",
        "exceeds",
        "not a JSON object",
        "no timestamp",
        "bad timestamp",
    ]) {
        assert!(r.contains(want), "{r:?} should say {want:?}");
    }
    // The over-long record keeps only its first bytes, and its full length.
    let long = &d.quarantine[4];
    assert!(long.raw.len() <= MAX_RECORD && long.raw_len > (10 << 20) as u64, "{} {}", long.raw.len(), long.raw_len);
}

#[test]
fn arbitrary_bytes_never_panic() {
    use proptest::prelude::*;
    proptest!(ProptestConfig::with_cases(256), |(bytes in proptest::collection::vec(any::<u8>(), 0..2048))| {
        let d = decode(&bytes);
        let records = bytes.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)).count();
        prop_assert!(d.events.len() + d.quarantine.len() <= records.max(1));
    });
}

/// The file pipeline decodes JSON logs on several threads, in chunks: with tiny chunks, three
/// decoders and several commits, the lake holds exactly what the one-thread decoder makes of the
/// same file (every row with its line and raw record, every quarantined record with its place and
/// reason), and a re-run adds nothing.
#[test]
fn parallel_decoding_matches_the_sequential_decoder() {
    use cynex_ingest::pipeline::{ingest, IngestOptions, InputFormat};
    use cynex_lake::{Lake, QueryOptions, QuerySession};
    let dir = tempfile::tempdir().unwrap();
    let mut input = Vec::new();
    for i in 0..3000u32 {
        let line = match i % 101 {
            7 => r#"{"timestamp":"2026-11-01T00:00:00Z","event_type":"fl"#.to_string(),
            13 => format!("{{\n  \"timestamp\": \"2026-11-01T01:00:{:02}Z\",\n  \"event_type\": \"dns\"\n}}", i % 60),
            _ => format!(
                "{{\"timestamp\":\"2026-11-01T{:02}:{:02}:00.{i:06}Z\",\"event_type\":\"flow\",\"src_ip\":\"10.0.{}.{}\",\"n\":{i}}}",
                i / 600,
                (i / 10) % 60,
                i % 250,
                i % 7
            ),
        };
        input.extend_from_slice(line.as_bytes());
        input.extend_from_slice(if i % 5 == 0 { b"\r\n" } else { b"\n" });
    }
    let path = dir.path().join("eve.json");
    std::fs::write(&path, &input).unwrap();
    let source = path.display().to_string();
    let mut want = Decoded::default();
    let mut split = RecordSplitter::new(Cursor::new(&input), 0, 0);
    while decode_some(&mut split, &source, Some("acme"), 0, 1000, &mut want).unwrap() {}
    assert!(want.quarantine.len() >= 29 && want.events.len() > 2900, "{}", want.quarantine.len());

    let lake = Lake::open(dir.path().join("lake")).unwrap();
    let opts = IngestOptions {
        sensor: "par".into(),
        batch_rows: 37,
        commit_every: 400,
        decode_threads: 3,
        progress: false,
        max_warnings: 0,
        ..Default::default()
    };
    let rep = ingest(&lake, std::slice::from_ref(&path), &opts, InputFormat::Eve, Some("acme")).unwrap();
    assert_eq!((rep.written(), rep.quarantined()), (want.events.len() as u64, want.quarantine.len() as u64));
    assert!(rep.commits > 5, "{}", rep.commits);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let rows = |sql: &str| {
        let s = QuerySession::open(&lake, &QueryOptions::default()).unwrap();
        rt.block_on(s.json_rows(sql)).unwrap()
    };
    let got = rows("SELECT line, raw_data, organisation, event_type FROM events ORDER BY line");
    assert_eq!(got.len(), want.events.len());
    for (g, w) in got.iter().zip(&want.events) {
        assert_eq!(g["line"].as_u64(), w.line);
        assert_eq!(g["raw_data"].as_str(), Some(w.raw_data.as_str()));
        assert_eq!(g["organisation"], "acme");
        assert_eq!(g["event_type"].as_str(), w.event_type.as_deref());
    }
    let q = rows("SELECT line, \"offset\", reason FROM quarantine ORDER BY line");
    assert_eq!(q.len(), want.quarantine.len());
    for (g, w) in q.iter().zip(&want.quarantine) {
        assert_eq!((g["line"].as_u64(), g["offset"].as_u64()), (w.line, Some(w.offset)));
        assert_eq!(g["reason"].as_str(), Some(w.reason.as_str()));
    }
    let again = ingest(&lake, std::slice::from_ref(&path), &opts, InputFormat::Eve, Some("acme")).unwrap();
    assert_eq!(again.read(), 0);
}
