//! `cynex serve` as users meet it, over a real socket with real clients: the OASIS taxii2-client
//! as three members over TLS, stix2-validator on everything served, and the CLI around it
//! (organisations, users, tokens, publishing).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{cynex, ok, query_json};

/// Whether a Python module can be imported; CI installs them (scripts/setup).
pub(crate) fn python_has(module: &str) -> bool {
    if Command::new("python3").args(["-c", &format!("import {module}")]).status().is_ok_and(|s| s.success()) {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "python module {module} is missing; run scripts/setup");
    eprintln!("skipping: python3 cannot import {module}; run scripts/setup");
    false
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running `cynex serve`, killed when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
    pub(crate) log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub(crate) fn start(data: &Path, args: &[&str], tls: bool) -> Server {
        let port = free_port();
        let log = data.join(format!("serve-{port}.log"));
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cynex"))
            .arg("--data")
            .arg(data)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("{}://127.0.0.1:{port}", if tls { "https" } else { "http" });
        let s = Server { child, base, log };
        s.wait_up(Duration::from_secs(60));
        s
    }

    fn wait_up(&self, limit: Duration) {
        let t0 = Instant::now();
        let addr = self.base.rsplit("//").next().unwrap().to_string();
        while t0.elapsed() < limit {
            if std::net::TcpStream::connect(&addr).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("cynex serve did not come up:\n{}", std::fs::read_to_string(&self.log).unwrap_or_default());
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost: (cert, key).
pub(crate) fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let o = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (cert, key)
}

/// The token `cynex token create` printed (its second line).
pub(crate) fn token_of(out: &str) -> String {
    out.lines().find(|l| l.starts_with("cnx_")).unwrap_or_else(|| panic!("no token in {out}")).to_string()
}

/// A lake with one analysed day of generated darknet traffic, the nexus and three members, acme
/// owning the /24s of a scanner and of a DDoS victim; users (name → token).
pub(crate) fn hub_world(d: &Path) -> (Vec<(String, String)>, String, String) {
    // Traffic of the last day, so the published indicators are still valid today.
    let start = (cynex_model::time::now_us() / 3_600_000_000 - 26) * 3_600_000_000;
    let pcap = d.join("recent.pcap");
    ok(&cynex(
        d,
        &[
            "gen",
            "darknet",
            "--out",
            pcap.to_str().unwrap(),
            "--packets",
            "300000",
            "--duration",
            "24h",
            "--seed",
            "21",
            "--start",
            &cynex_model::time::rfc3339_us(start),
        ],
    ));
    ok(&cynex(d, &["ingest", "pcap", pcap.to_str().unwrap(), "--sensor", "tokyo-1"]));
    ok(&cynex(d, &["analyze", "--dark", "198.18.0.0/20", "--flush", "--no-alerts"]));
    let scanner = query_json(
        d,
        "SELECT ip4_str(ip4) AS ip FROM findings WHERE kind = 'scan' AND label IS NULL ORDER BY packets DESC LIMIT 1",
    )[0]["ip"]
        .as_str()
        .unwrap()
        .to_string();
    let victim = query_json(
        d,
        "SELECT ip4_str(ip4) AS ip FROM findings WHERE kind = 'backscatter' ORDER BY packets DESC LIMIT 1",
    )[0]["ip"]
        .as_str()
        .unwrap()
        .to_string();
    let net = |ip: &str| format!("{}.0/24", ip.rsplit_once('.').unwrap().0);
    ok(&cynex(d, &["org", "add", "nexus", "--operator"]));
    ok(&cynex(d, &["org", "add", "acme", "--prefix", &net(&scanner), "--prefix", &net(&victim)]));
    ok(&cynex(d, &["org", "add", "globex", "--prefix", "192.0.2.0/24"]));
    ok(&cynex(d, &["org", "add", "initech"]));
    let mut users = Vec::new();
    for (u, org, role) in [
        ("ana", "nexus", "analyst"),
        ("alice", "acme", "member"),
        ("gus", "globex", "member"),
        ("ivy", "initech", "member"),
    ] {
        let out = ok(&cynex(d, &["user", "add", u, "--org", org, "--role", role]));
        assert!(out.contains("password (shown once)"), "{out}");
        users.push((
            u.to_string(),
            token_of(&ok(&cynex(d, &["token", "create", u, "--name", "taxii", "--expires", "7d"]))),
        ));
    }
    let out = ok(&cynex(d, &["intel", "publish"]));
    assert!(out.contains("member hosts") && !out.contains(" 0 objects added") && out.contains(" 0 refused"), "{out}");
    // Campaigns are published with their member sources (one without published members is not):
    // the day's campaigns (the planted surge wave at least) are found among the scanners.
    let published: u64 = out.split(", ").find_map(|p| p.strip_suffix(" campaigns")).unwrap().parse().unwrap();
    let detected = query_json(d, "SELECT count(*) AS n FROM campaigns")[0]["n"].as_u64().unwrap();
    assert!(published >= 1 && published <= detected, "{published} of {detected} campaigns published: {out}");
    // Each published campaign indicates exactly its own published sources: at most the sources
    // it was detected with (those in a member's space are not published as indicators).
    let script = "import json,sqlite3,sys\n\
        rows=[json.loads(b) for (b,) in sqlite3.connect(sys.argv[1]).execute('SELECT body FROM stix_objects')]\n\
        camps={o['id']:o for o in rows if o['type']=='campaign'}\n\
        n={c:0 for c in camps}\n\
        for o in rows:\n\
        \x20 if o['type']=='relationship' and o['relationship_type']=='indicates' and o['target_ref'] in camps: n[o['target_ref']]+=1\n\
        print(json.dumps([[camps[c]['x_cynex_sources'],n[c]] for c in camps]))";
    let o = python().arg("-c").arg(script).arg(d.join("cynex.db")).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let counts: Vec<(u64, u64)> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(counts.len() as u64, published, "{counts:?}");
    assert!(counts.iter().all(|&(sources, members)| members >= 1 && members <= sources), "{counts:?}");
    let (sources, members) = counts.iter().fold((0, 0), |(s, m), &(a, b)| (s + a, m + b));
    assert!(members + 2 >= sources, "{members} of {sources} campaign sources published: {counts:?}");
    (users, scanner, victim)
}

fn walk(srv: &Server, user: &str, token: &str, ca: &Path, post: Option<(&str, &str)>) -> Value {
    let base = &srv.base;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/interop/taxii_walk.py");
    let mut c = python();
    c.arg(script).arg(format!("{base}/taxii2/")).arg(user).arg(token).arg(ca);
    if let Some((alias, id)) = post {
        c.arg(alias).arg(id);
    }
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "taxii2-client as {user} failed:\n{}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        srv.log()
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// python3 with the given certificate trusted: requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE
/// override a session's `verify` (psf/requests#3829), so they are not passed on.
fn python() -> Command {
    let mut c = Command::new("python3");
    c.env_remove("REQUESTS_CA_BUNDLE").env_remove("CURL_CA_BUNDLE");
    c
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect()).unwrap_or_default()
}

#[test]
fn members_pull_exactly_their_intelligence_with_taxii2_client_over_tls() {
    if !python_has("taxii2client") || !python_has("stix2validator") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (users, scanner, _victim) = hub_world(d);
    let tok = |u: &str| users.iter().find(|(n, _)| n == u).unwrap().1.clone();
    let (cert, key) = self_signed(d);
    let srv = Server::start(
        d,
        &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap(), "--no-jobs"],
        true,
    );

    let gus_view = walk(&srv, "gus", &tok("gus"), &cert, None);
    let green = &gus_view["collections"]["indicators"];
    let green_ids = ids(&green["objects"]);
    assert!(green_ids.len() > 50, "{gus_view}");
    assert!(green["pages"].as_u64().unwrap() > 5, "paged through as_pages");
    assert_eq!(ids(&green["manifest"]).len(), green_ids.len());
    assert_eq!(green["get_object_ok"], true);
    assert_eq!(gus_view["versions"], serde_json::json!(["application/taxii+json;version=2.1"]));
    // A GREEN indicator to sight.
    let sighted = ids(&green["indicators"])[0].clone();
    let gus_post = walk(&srv, "gus", &tok("gus"), &cert, Some(("sightings", &sighted)));
    let posted = &gus_post["collections"]["sightings"]["posted"];
    assert_eq!(
        (posted["status"].as_str(), posted["success"].as_u64(), posted["failure"].as_u64()),
        (Some("complete"), Some(2), Some(0)),
        "{posted}"
    );
    assert_eq!(posted["deleted_gone"], true);
    let sighting = posted["sighting"].as_str().unwrap().to_string();

    let alice = walk(&srv, "alice", &tok("alice"), &cert, None);
    let ivy = walk(&srv, "ivy", &tok("ivy"), &cert, None);
    let ana = walk(&srv, "ana", &tok("ana"), &cert, None);
    // GREEN and CLEAR: the same for every member.
    for (who, v) in [("alice", &alice), ("ivy", &ivy)] {
        assert_eq!(ids(&v["collections"]["indicators"]["objects"]), green_ids, "{who}");
        assert_eq!(
            ids(&v["collections"]["public"]["objects"]),
            ids(&gus_view["collections"]["public"]["objects"]),
            "{who}"
        );
    }
    // AMBER+STRICT member alerts: acme's own, nobody else's.
    let alice_alerts = ids(&alice["collections"]["member-alerts"]["objects"]);
    assert!(!alice_alerts.is_empty(), "{alice}");
    assert!(
        ids(&ivy["collections"]["member-alerts"]["objects"]).is_empty(),
        "initech has no address space in the findings"
    );
    for other in ids(&gus_view["collections"]["member-alerts"]["objects"]) {
        assert!(!alice_alerts.contains(&other), "globex sees an acme alert {other}");
    }
    // acme's scanning host is acme's secret: in its alerts, not in the community's indicators.
    let acme_indicator_names: Vec<String> = {
        let o = python()
            .arg("-c")
            .arg("import json,sys;from taxii2client.v21 import Collection;c=Collection(sys.argv[1],user=sys.argv[2],password=sys.argv[3],verify=sys.argv[4]);print(json.dumps([o.get('name','') for o in c.get_objects(type='indicator').get('objects',[])]))")
            .arg(format!("{}/taxii2/cynex/collections/{}/", srv.base, alice["collections"]["member-alerts"]["id"].as_str().unwrap()))
            .args(["alice", &tok("alice")])
            .arg(&cert)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    assert!(acme_indicator_names.iter().any(|n| n.ends_with(&scanner)), "{acme_indicator_names:?} lacks {scanner}");
    // The sighting reached its poster and the indicator's producer (the nexus), nobody else.
    assert!(
        ids(&gus_post["collections"]["sightings"]["objects"]).contains(&sighting)
            || ids(&walk(&srv, "gus", &tok("gus"), &cert, None)["collections"]["sightings"]["objects"])
                .contains(&sighting)
    );
    assert!(ids(&ana["collections"]["sightings"]["objects"]).contains(&sighting), "the producer sees the sighting");
    for (who, v) in [("alice", &alice), ("ivy", &ivy)] {
        assert!(
            !ids(&v["collections"]["sightings"]["objects"]).contains(&sighting),
            "{who} must not see globex's sighting"
        );
    }
    // A wrong password or a revoked token gets nowhere.
    let o = python()
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/interop/taxii_walk.py"))
        .arg(format!("{}/taxii2/", srv.base))
        .args(["gus", "cnx_0000000000000000_wrong"])
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // Everything served passes stix2-validator with no errors: each collection as the analyst
    // sees it, and acme's member alerts as acme sees them.
    let mut dumps: Vec<(String, String, String)> = ana["collections"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(alias, c)| (alias.clone(), c["id"].as_str().unwrap().to_string(), "ana".to_string()))
        .collect();
    dumps.push((
        "member-alerts".into(),
        alice["collections"]["member-alerts"]["id"].as_str().unwrap().to_string(),
        "alice".into(),
    ));
    let mut files = Vec::new();
    for (i, (alias, id, user)) in dumps.iter().enumerate() {
        let out = ok(&cynex(d, &["intel", "export", "--format", "csv", "--collection", alias]));
        assert!(out.starts_with("value,type,tlp"), "{out}");
        let env = python()
            .arg("-c")
            .arg("import json,sys;from taxii2client.v21 import Collection,as_pages;c=Collection(sys.argv[1],user=sys.argv[2],password=sys.argv[3],verify=sys.argv[4]);objs=[o for e in as_pages(c.get_objects,per_request=500) for o in e.get('objects',[])];print(json.dumps({'objects':objs}))")
            .arg(format!("{}/taxii2/cynex/collections/{id}/", srv.base))
            .args([user.as_str(), &tok(user)])
            .arg(&cert)
            .output()
            .unwrap();
        assert!(env.status.success(), "{}", String::from_utf8_lossy(&env.stderr));
        let p = d.join(format!("served-{i}-{alias}.json"));
        std::fs::write(&p, &env.stdout).unwrap();
        files.push(p);
    }
    let o = python()
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/interop/stix_validate.py"))
        .args(&files)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "stix2-validator found errors:\n{report}");
    let checked: u64 = report.rsplit("checked ").next().unwrap().split_whitespace().next().unwrap().parse().unwrap();
    assert!(checked > 100, "{report}");
    drop(srv);
}

#[test]
fn republishing_versions_and_feeds_round_trip() {
    if !python_has("pymisp") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    hub_world(d);
    // Publishing again without new data adds nothing.
    let again = ok(&cynex(d, &["intel", "publish"]));
    assert!(again.contains(" 0 objects added or versioned"), "{again}");
    // A MISP feed out (at most GREEN), read back by PyMISP and imported into another hub.
    let feed = d.join("misp-feed");
    let out = ok(&cynex(
        d,
        &["intel", "export", "--format", "misp", "--collection", "indicators", "--out", feed.to_str().unwrap()],
    ));
    assert!(out.contains("1 event(s)"), "{out}");
    let check = python()
        .arg("-c")
        .arg("import json,sys,os;from pymisp import MISPEvent;m=json.load(open(os.path.join(sys.argv[1],'manifest.json')));\nfor u in m:\n  e=MISPEvent();e.load_file(os.path.join(sys.argv[1],u+'.json'));print(len(e.attributes), e.info)")
        .arg(&feed)
        .output()
        .unwrap();
    assert!(check.status.success(), "PyMISP cannot read the feed: {}", String::from_utf8_lossy(&check.stderr));
    let n: usize = String::from_utf8_lossy(&check.stdout).split_whitespace().next().unwrap().parse().unwrap();
    assert!(n > 50, "{}", String::from_utf8_lossy(&check.stdout));
    let other = tempfile::tempdir().unwrap();
    ok(&cynex(other.path(), &["org", "add", "nexus2", "--operator"]));
    ok(&cynex(other.path(), &["intel", "collections"]));
    let imp = ok(&cynex(other.path(), &["intel", "import-misp", feed.to_str().unwrap(), "--collection", "indicators"]));
    assert!(imp.contains("imported 1 MISP event(s)") && imp.contains(" 0 refused"), "{imp}");
    // The corpus MISP feed too.
    let corpus_feed = crate::corpus().join("misp/feed");
    let imp =
        ok(&cynex(other.path(), &["intel", "import-misp", corpus_feed.to_str().unwrap(), "--collection", "public"]));
    assert!(imp.contains("imported 1 MISP event(s)") && imp.contains(" 0 refused"), "{imp}");
    // Suricata rules and lists for firewalls.
    let rules = ok(&cynex(d, &["intel", "export", "--format", "suricata", "--collection", "indicators"]));
    let n_rules = rules.lines().filter(|l| l.starts_with("alert ip [")).count();
    assert!(n_rules > 50, "{rules}");
    assert!(
        rules.lines().filter(|l| l.starts_with("alert")).all(|l| l.contains("sid:") && l.ends_with(";)")),
        "{rules}"
    );
    let plain = ok(&cynex(d, &["intel", "export", "--format", "plain", "--as", "ivy"]));
    assert_eq!(plain.lines().count(), n_rules, "ivy sees the GREEN indicators and nothing of acme's");
}

/// A TAXII 2.1 feed pulled from another running hub: several pages through `next`, only what the
/// feed's credentials may see, and each later run resumes after the last `date_added` pulled.
#[test]
fn taxii_feed_pulls_every_page_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (peer, mirror) = (dir.path().join("peer"), dir.path().join("mirror"));
    std::fs::create_dir_all(&peer).unwrap();
    let (users, _, _) = hub_world(&peer);
    let token = |u: &str| users.iter().find(|(n, _)| n == u).unwrap().1.clone();
    let collection_id = |d: &Path, alias: &str| -> String {
        let out = ok(&cynex(d, &["intel", "collections"]));
        let line = out.lines().find(|l| l.split_whitespace().next() == Some(alias)).unwrap_or_else(|| panic!("{out}"));
        line.split_whitespace().nth(1).unwrap().to_string()
    };
    let srv = Server::start(&peer, &["--no-jobs"], false);
    let url = format!("{}/taxii2/cynex/collections/{}/", srv.base, collection_id(&peer, "indicators"));

    std::fs::create_dir_all(&mirror).unwrap();
    ok(&cynex(&mirror, &["org", "add", "nexus", "--operator"]));
    ok(&cynex(
        &mirror,
        &["intel", "collection-add", "from-peer", "--title", "peer", "--read", "operator", "--write", "nobody"],
    ));
    let gus = token("gus");
    let add = ["feed", "add-taxii", "peer", "--url", &url, "--collection", "from-peer", "--token", &gus];
    ok(&cynex(&mirror, &[&add[..], &["--page", "7"]].concat()));
    let added = |out: &str| -> u64 {
        let n = out.split(": ").nth(1).and_then(|r| r.split(' ').next()).unwrap_or_else(|| panic!("{out}"));
        n.replace(',', "").parse().unwrap()
    };
    let first = ok(&cynex(&mirror, &["feed", "run", "peer"]));
    let n = added(&first);
    assert!(n > 3 * 7, "several pages of 7 expected: {first}");
    // What gus may read of the collection, counted by the peer itself.
    let visible =
        ok(&cynex(&peer, &["intel", "export", "--format", "plain", "--as", "gus", "--collection", "indicators"]));
    let exported = visible.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).count() as u64;
    assert!(exported > 0 && n >= exported, "pulled {n}, gus may see {exported} indicators");
    let out = ok(&cynex(&mirror, &["intel", "collections"]));
    assert!(out.lines().any(|l| l.starts_with("from-peer") && l.contains(&format!(" {n} "))), "{out}");

    // Nothing new: nothing pulled. One new object at the peer: exactly it is pulled.
    let again = ok(&cynex(&mirror, &["feed", "run", "peer"]));
    assert_eq!(added(&again), 0, "{again}");
    assert!(again.contains(" 0 unchanged"), "the resume point skips what was pulled: {again}");
    let new = dir.path().join("new.json");
    std::fs::write(
        &new,
        serde_json::json!({"type": "bundle", "id": "bundle--6b1c8a3e-0d6f-4f6e-9d2c-2b7b9a1c5e01", "objects": [{
            "type": "indicator", "spec_version": "2.1", "id": "indicator--6b1c8a3e-0d6f-4f6e-9d2c-2b7b9a1c5e02",
            "created": "2026-11-30T00:00:00.000Z", "modified": "2026-11-30T00:00:00.000Z",
            "name": "new scanner", "pattern": "[ipv4-addr:value = '203.0.113.77']", "pattern_type": "stix",
            "valid_from": "2026-11-30T00:00:00Z", "indicator_types": ["malicious-activity"],
            "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]}]})
        .to_string(),
    )
    .unwrap();
    ok(&cynex(&peer, &["intel", "post", "--collection", "indicators", new.to_str().unwrap()]));
    let third = ok(&cynex(&mirror, &["feed", "run", "peer"]));
    assert_eq!(added(&third), 1, "{third}");
    let out = ok(&cynex(&mirror, &["intel", "collections"]));
    assert!(out.lines().any(|l| l.starts_with("from-peer") && l.contains(&format!(" {} ", n + 1))), "{out}");

    // Credentials the peer refuses: the run fails with the peer's answer, and nothing is added.
    ok(&cynex(&mirror, &["feed", "rm", "peer"]));
    let bad = ["feed", "add-taxii", "bad", "--url", &url, "--collection", "from-peer", "--token", "cnx_x_y"];
    ok(&cynex(&mirror, &bad));
    let o = cynex(&mirror, &["feed", "run", "bad"]);
    assert!(!o.status.success(), "a refused feed must fail");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("401"), "{err}");
    drop(srv);
}
