//! The README's first command serving for real: `cynex demo` on a free port, then the web UI in
//! headless Chromium (tests/browser/ui.mjs, playwright-core) as the operator and two members, and
//! schemathesis fuzzing the REST API from its OpenAPI document. Screenshots are kept in
//! `$CYNEX_ARTIFACTS/ui-screenshots` (default: the system's temp directory).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::serve::{free_port, python_has};
use crate::{cynex, ok, query_json};

struct Demo {
    child: Child,
    out: PathBuf,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    fn output(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.out) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }
}

fn node_modules() -> Option<PathBuf> {
    let dir = std::env::var_os("CYNEX_UI_DEPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/cynex/node"))
        .join("node_modules");
    dir.join("playwright-core").is_dir().then_some(dir)
}

fn start_demo(d: &Path, port: u16) -> Demo {
    let out = d.join("demo.out");
    let f = std::fs::File::create(&out).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_cynex"))
        .arg("--data")
        .arg(d)
        .args(["demo", "--packets", "400000", "--days", "2", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let demo = Demo { child, out };
    let t0 = Instant::now();
    while !demo.output().contains("cynex serving on") {
        assert!(t0.elapsed() < Duration::from_secs(600), "the demo did not start serving:\n{}", demo.output());
        std::thread::sleep(Duration::from_millis(200));
    }
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(100));
    }
    demo
}

fn password(out: &str, user: &str) -> String {
    out.lines()
        .find_map(|l| {
            l.trim().strip_prefix(&format!("{user} ")).map(|r| r.split_whitespace().next().unwrap().to_string())
        })
        .unwrap_or_else(|| panic!("no password for {user} in:\n{out}"))
}

#[test]
fn demo_dashboard_and_portal_in_a_browser_and_the_api_under_schemathesis() {
    let Some(modules) = node_modules() else {
        assert!(std::env::var_os("CI").is_none(), "playwright-core is missing; run scripts/setup");
        eprintln!("skipping: playwright-core is not installed; run scripts/setup");
        return;
    };
    if !Path::new("/usr/bin/chromium").exists() {
        assert!(std::env::var_os("CI").is_none(), "chromium is missing; run scripts/setup");
        eprintln!("skipping: /usr/bin/chromium is not installed; run scripts/setup");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let demo = start_demo(d, port);
    let out = demo.output();
    let base = format!("http://127.0.0.1:{port}");
    assert!(out.contains(&format!("open {base}/")), "{out}");

    // What the overview must show: the last day's figures, straight from the lake.
    let day = "(SELECT max(time) FROM stats WHERE sensor = 'all' AND bin = '1d')";
    let packets = query_json(
        d,
        &format!("SELECT sum(packets) AS n FROM stats WHERE sensor = 'all' AND bin = '1h' AND time >= {day}"),
    )[0]["n"]
        .as_u64()
        .unwrap();
    let sources = query_json(
        d,
        &format!("SELECT sum(sources) AS n FROM stats WHERE sensor = 'all' AND bin = '1d' AND time = {day}"),
    )[0]["n"]
        .as_u64()
        .unwrap();
    assert!(packets > 50_000, "{packets}");
    let expected = serde_json::json!({
        "operator": password(&out, "operator"), "isp": password(&out, "isp"), "univ": password(&out, "univ"),
        "packets": packets, "sources": sources,
    });
    let exp_file = d.join("expected.json");
    std::fs::write(&exp_file, expected.to_string()).unwrap();
    let shots = std::env::var_os("CYNEX_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join("ui-screenshots");
    let o = Command::new("node")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/browser/ui.mjs"))
        .arg(&base)
        .arg(&shots)
        .arg(&exp_file)
        .env("NODE_PATH", &modules)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "browser checks failed:\n{}\n{}\nscreenshots in {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        shots.display()
    );
    assert!(shots.join("01-overview-operator.png").exists());
    eprintln!("{} (screenshots in {})", String::from_utf8_lossy(&o.stdout).trim(), shots.display());

    // schemathesis: every operation of the OpenAPI document, as the operator and as a member;
    // no response may be a server error.
    if python_has("schemathesis") {
        for user in ["operator", "isp"] {
            let token = crate::serve::token_of(&ok(&cynex(d, &["token", "create", user, "--name", "schemathesis"])));
            let o = Command::new("schemathesis")
                .args(["run", &format!("{base}/api/v1/openapi.json"), "--checks", "not_a_server_error"])
                .args([
                    "--max-examples",
                    "25",
                    "--seed",
                    "7",
                    // One worker and a generous timeout: CI runs other tests beside this one on two
                    // cores, and a slow answer is not a server error. No example database, so
                    // each run starts from the same seed alone.
                    "--workers",
                    "1",
                    "--request-timeout",
                    "60",
                    "--generation-database",
                    "none",
                    "--no-color",
                    "--phases",
                    "examples,coverage,fuzzing",
                ])
                // Path parameters such as a prefix's address are mostly generated invalid and
                // filtered; that is the point of fuzzing them, not a problem of the API.
                .args(["--suppress-health-check", "filter_too_much"])
                .args(["-H", &format!("Authorization: Bearer {token}")])
                // The live view is an endless event stream.
                .args(["--exclude-path", "/api/v1/live"])
                .output()
                .unwrap();
            let text = format!("{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
            let report = shots.with_file_name(format!("schemathesis-{user}.txt"));
            std::fs::write(&report, &text).unwrap();
            let tail: String =
                text.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
            assert!(o.status.success(), "schemathesis as {user} found problems (all in {}):\n{tail}", report.display());
            assert!(text.contains("passed"), "{tail}");
        }
    }
    drop(demo);
}
