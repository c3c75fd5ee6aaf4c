//! Command-line interface.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use cynex_gen::frame::CaptureFormat;
use cynex_gen::DarknetConfig;
use cynex_lake::{Lake, QueryOptions, WriterOptions};
use cynex_model::ip::Ipv4Net;
use cynex_model::time::{parse_duration_secs, parse_rfc3339_us};
use cynex_store::{AlertFilter, WatchKind};

use crate::cmd;
use crate::cmd::members::{self, block_on, open_store, webhook_key_path};
use crate::output::{is_broken_pipe, Format};

/// Exit code when every input was processed but some could not be read at all.
pub const EXIT_UNREADABLE_INPUT: u8 = 3;

#[derive(Parser, Debug)]
#[command(
    name = "cynex",
    version,
    about = "Collect, accumulate, analyse and share security data: a cybersecurity nexus.",
    after_help = "Exit codes: 0 success, 1 error, 2 usage error, 3 some inputs could not be read at all \
                  (the others were ingested; see the messages).\n\nStart with `cynex demo`."
)]
pub struct Cli {
    /// Data directory (lake, metadata, demo files).
    #[arg(long, global = true, env = "CYNEX_DATA", default_value = "cynex-data")]
    pub data: PathBuf,
    /// Metadata database (organisations, watches, alerts): `postgres://…` or `sqlite://PATH`.
    /// Default: `cynex.db` (SQLite) in the data directory.
    #[arg(long, global = true, env = "CYNEX_DB")]
    pub db: Option<String>,
    /// Print less (no progress bar, no per-record warnings).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// The whole nexus on this machine: a synthesized week of darknet traffic and members' logs,
    /// ingested, analysed, alerted on and published, then the dashboard on 127.0.0.1:8080.
    Demo(cmd::demo::DemoArgs),
    /// Read sensor data into the lake.
    #[command(subcommand)]
    Ingest(IngestCmd),
    /// At a member site: ship sensor logs to the nexus's NATS JetStream sensor bus.
    Sensor(SensorArgs),
    /// Run SQL over the lake (tables: packets, quarantine; partitions: sensor, date, hour).
    Query {
        /// The SQL statement, e.g. "SELECT dst_port, count(*) FROM packets GROUP BY 1 ORDER BY 2 DESC LIMIT 10".
        sql: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Memory for query operators before they spill to disk (MiB).
        #[arg(long, default_value_t = 2048)]
        memory_mb: usize,
    },
    /// Analyse darknet packets: scan events, tool attribution, backscatter attacks, port surges,
    /// statistics (written to the findings, ongoing, stats and port_stats tables).
    Analyze(AnalyzeArgs),
    /// Print traffic statistics computed by `analyze`: per bin, totals, top ports and tools.
    Stats {
        /// Analysis scope to read.
        #[arg(long, default_value = "all")]
        scope: String,
        /// Bin size: 5m, 1h or 1d.
        #[arg(long, default_value = "1h")]
        bin: String,
        #[arg(long, value_parser = parse_time)]
        from: Option<i64>,
        #[arg(long, value_parser = parse_time)]
        to: Option<i64>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Write an observation report (HTML with offline charts, and JSON) for a period, compared
    /// with the previous period of the same length.
    Report {
        #[arg(long, value_parser = parse_time)]
        from: i64,
        #[arg(long, value_parser = parse_time)]
        to: i64,
        /// Analysis scope to report on.
        #[arg(long, default_value = "all")]
        scope: String,
        /// Output path without extension: writes OUT.html and OUT.json.
        #[arg(long, default_value = "cynex-report")]
        out: PathBuf,
    },
    /// Member organisations and the address space they register (for alerts).
    #[command(subcommand)]
    Org(OrgCmd),
    /// Watches: a member is alerted when an address, prefix, port or tag appears in new findings.
    #[command(subcommand)]
    Watch(WatchCmd),
    /// Member alerts: raise them from the findings, list, acknowledge, deliver by webhook.
    #[command(subcommand)]
    Alerts(AlertsCmd),
    /// Users of the nexus and of member organisations (web UI, TAXII, API).
    #[command(subcommand)]
    User(cmd::hub::UserCmd),
    /// API tokens: create (shown once), list, revoke.
    #[command(subcommand)]
    Token(cmd::hub::TokenCmd),
    /// Threat intelligence: collections, publishing findings as STIX, posting, exports, correlation.
    #[command(subcommand)]
    Intel(cmd::hub::IntelCmd),
    /// External intelligence feeds (TAXII 2.1 collections, MISP feeds) pulled on a schedule.
    #[command(subcommand)]
    Feed(cmd::hub::FeedCmd),
    /// Run the nexus: HTTP API, TAXII 2.1 server, web UI, and the background jobs.
    Serve(cmd::serve::ServeArgs),
    /// Inspect and maintain the lake.
    #[command(subcommand)]
    Lake(LakeCmd),
    /// Synthesize realistic data with ground truth.
    #[command(subcommand)]
    Gen(GenCmd),
}

#[derive(Subcommand, Debug)]
pub enum IngestCmd {
    /// pcap or pcapng captures (plain, .gz or .zst), files or directories.
    Pcap(PcapArgs),
    /// Suricata EVE JSON logs (JSONL or pretty-printed; plain, .gz or .zst) into `events`.
    Eve(EveArgs),
    /// Zeek logs, TSV (with #fields/#types headers) or JSON lines, into `events`; the log path
    /// comes from `#path`/`_path` or the file name.
    Zeek(EveArgs),
    /// Cowrie honeypot JSON logs into `events`.
    Cowrie(EveArgs),
    /// Any mix of captures and EVE, Zeek and Cowrie logs: each file's format is told from its
    /// first bytes (captures go to `packets`, logs to `events`).
    Auto(EveArgs),
    /// Consume the NATS JetStream sensor bus (what `cynex sensor --publish` sends) into `events`;
    /// run several to share the work.
    Bus(BusArgs),
}

#[derive(Args, Debug)]
pub struct BusLocation {
    /// JetStream stream name.
    #[arg(long, default_value = cynex_ingest::bus::DEFAULT_STREAM)]
    pub stream: String,
    /// Subject root: sensors publish to SUBJECT_ROOT.ORGANISATION.SENSOR.
    #[arg(long, default_value = cynex_ingest::bus::DEFAULT_SUBJECT_ROOT)]
    pub subject_root: String,
}

#[derive(Args, Debug)]
pub struct BusArgs {
    /// NATS server URL, e.g. nats://127.0.0.1:4222.
    #[arg(long)]
    pub from: String,
    #[command(flatten)]
    pub location: BusLocation,
    /// Durable consumer name (consumers with the same name share the messages).
    #[arg(long, default_value = cynex_ingest::bus::DEFAULT_DURABLE)]
    pub durable: String,
    /// Messages fetched and committed together.
    #[arg(long, default_value_t = cynex_ingest::bus::DEFAULT_BATCH)]
    pub batch: usize,
    /// Exit after this many seconds without a message (default: run until interrupted).
    #[arg(long)]
    pub idle_exit: Option<u64>,
    /// Seconds JetStream waits for an acknowledgement before redelivering a message.
    #[arg(long, default_value_t = cynex_ingest::bus::DEFAULT_ACK_WAIT_S)]
    pub ack_wait: u64,
}

#[derive(Args, Debug)]
pub struct SensorArgs {
    /// NATS server URL to publish to, e.g. nats://nexus.example:4222.
    #[arg(long)]
    pub publish: String,
    /// Log files or directories (searched recursively).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// This sensor's name (the lake's `sensor` partition).
    #[arg(long)]
    pub sensor: String,
    /// Member organisation the sensor belongs to (part of the subject).
    #[arg(long)]
    pub org: Option<String>,
    /// Log format: eve, zeek, cowrie or auto (told per file).
    #[arg(long, default_value = "auto")]
    pub format: String,
    #[command(flatten)]
    pub location: BusLocation,
    /// Chunk size aimed at (KiB); a chunk always holds whole records.
    #[arg(long, default_value_t = 256)]
    pub chunk_kib: usize,
}

#[derive(Args, Debug)]
pub struct EveArgs {
    /// Log files or directories (searched recursively).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Name of the sensor that wrote the logs (the `sensor` partition).
    #[arg(long)]
    pub sensor: String,
    /// Member organisation the logs come from (the `organisation` column).
    #[arg(long)]
    pub org: Option<String>,
    /// Keep reading what is appended (surviving rotation), like `tail -F`.
    #[arg(long)]
    pub follow: bool,
    /// With --follow: how often to look for new records (milliseconds).
    #[arg(long, default_value_t = 1000)]
    pub poll_ms: u64,
    /// With --follow: exit after this many seconds without new records.
    #[arg(long)]
    pub idle_exit: Option<u64>,
    /// Threads parsing JSON records (EVE, Cowrie) while the input is read and written
    /// (default: one per core, at most 4).
    #[arg(long)]
    pub decode_threads: Option<usize>,
    /// With --follow: merge the follower's small Parquet files after this many commits (0: never).
    #[arg(long, default_value_t = 64)]
    pub compact_every: u64,
}

#[derive(Args, Debug)]
pub struct PcapArgs {
    /// Capture files or directories (searched recursively).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Name of the sensor that captured the traffic (becomes the `sensor` partition).
    #[arg(long)]
    pub sensor: String,
    /// Parquet encoder threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Commit at least every this many packets.
    #[arg(long, default_value_t = 8_000_000)]
    pub commit_every: u64,
}

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    /// Analyse only packets from this time on (with --to: a batch run over the range, from scratch).
    #[arg(long, value_parser = parse_time, requires = "to")]
    pub from: Option<i64>,
    #[arg(long, value_parser = parse_time, requires = "from")]
    pub to: Option<i64>,
    /// Name of this analysis (the `sensor` partition of its outputs). Default: `all` for
    /// incremental runs, `range` for --from/--to.
    #[arg(long)]
    pub scope: Option<String>,
    /// Only packets of these sensors (repeatable; default all).
    #[arg(long = "sensor")]
    pub sensors: Vec<String>,
    /// The telescope's dark blocks (repeatable), for global-rate and per-address figures.
    /// Default: the number of distinct destinations seen.
    #[arg(long)]
    pub dark: Vec<Ipv4Net>,
    /// Research-scanner list: lines of `CIDR NAME` (default: the built-in list).
    #[arg(long)]
    pub research: Option<PathBuf>,
    /// All detector settings as JSON (see docs/ANALYSIS.md); --dark/--research override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Memory for analysis state (MiB); past it the least recently active events are closed
    /// early rather than the run failing.
    #[arg(long)]
    pub memory_mb: Option<u64>,
    /// The input is complete: close every open event and report it.
    #[arg(long)]
    pub flush: bool,
    /// Forget the saved state and analyse everything again.
    #[arg(long)]
    pub rebuild: bool,
    /// MaxMind-format databases (country or city, and ASN) to enrich findings with (repeatable).
    /// Default: every *.mmdb in DATA/geoip.
    #[arg(long)]
    pub geoip: Vec<PathBuf>,
    /// Do not raise member alerts from the new findings.
    #[arg(long)]
    pub no_alerts: bool,
}

#[derive(Subcommand, Debug)]
pub enum OrgCmd {
    /// Register an organisation.
    Add {
        name: String,
        /// The nexus operator's own organisation (its users are admins and analysts).
        #[arg(long)]
        operator: bool,
        /// Address space (repeatable), e.g. 192.0.2.0/24.
        #[arg(long = "prefix")]
        prefixes: Vec<Ipv4Net>,
        /// Endpoint its alerts are POSTed to (prints the signing secret).
        #[arg(long)]
        webhook: Option<String>,
    },
    /// List organisations with their prefixes.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove an organisation with its prefixes, watches and alerts.
    Rm { name: String },
    /// Set, rotate or clear the webhook alerts are delivered to; prints the signing secret.
    Webhook {
        name: String,
        /// The endpoint (http:// or https://); omit with --clear.
        #[arg(required_unless_present = "clear")]
        url: Option<String>,
        /// Stop webhook delivery.
        #[arg(long, conflicts_with = "url")]
        clear: bool,
        /// Issue a new signing secret (the old one stops verifying).
        #[arg(long)]
        rotate: bool,
    },
    /// Address space of organisations.
    #[command(subcommand)]
    Prefix(PrefixCmd),
}

#[derive(Subcommand, Debug)]
pub enum PrefixCmd {
    Add {
        org: String,
        #[arg(required = true)]
        prefixes: Vec<Ipv4Net>,
    },
    Rm {
        org: String,
        #[arg(required = true)]
        prefixes: Vec<Ipv4Net>,
    },
    List {
        org: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum WatchCmd {
    /// Add watches: ip:ADDR, prefix:CIDR, port:N[/tcp|/udp], tag:NAME (a finding kind, tool or
    /// research-scanner label, e.g. tag:mirai).
    Add {
        org: String,
        #[arg(required = true, value_parser = parse_watch)]
        specs: Vec<WatchKind>,
    },
    List {
        #[arg(long)]
        org: Option<String>,
    },
    Rm {
        id: String,
        /// Only if the watch belongs to this organisation.
        #[arg(long)]
        org: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AlertsCmd {
    /// Match every finding of an analysis scope, past ones included, against member space and
    /// watches (`cynex analyze` matches only the findings new since its last run); idempotent.
    Raise {
        #[arg(long, default_value = "all")]
        scope: String,
        /// Findings of one subject further apart than this are separate incidents.
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
        gap: u64,
    },
    /// Alerts, newest activity first.
    List {
        #[arg(long)]
        org: Option<String>,
        #[arg(long, value_parser = parse_time)]
        since: Option<i64>,
        #[arg(long)]
        limit: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// One alert with its evidence and deliveries (JSON).
    Show {
        id: String,
        #[arg(long)]
        org: Option<String>,
    },
    /// Mark an alert acknowledged.
    Ack {
        id: String,
        /// Only if the alert belongs to this organisation.
        #[arg(long)]
        org: Option<String>,
    },
    /// Send due webhook deliveries, retrying failures with exponential backoff.
    Deliver {
        /// Keep going until nothing is pending (delivered or given up).
        #[arg(long)]
        wait: bool,
        #[arg(long, default_value_t = 8)]
        max_attempts: u32,
        /// Wait after the first failure, doubled after each further one (capped at 1 h).
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        backoff: u64,
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        timeout: u64,
    },
}

#[derive(Subcommand, Debug)]
pub enum LakeCmd {
    /// Files, rows, bytes and time range per table.
    Stats {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Merge small files within each partition.
    Compact {
        /// Target file size (MB).
        #[arg(long, default_value_t = 256)]
        target_mb: u64,
    },
    /// Delete partitions older than a duration (e.g. 90d, 12h, 2w).
    Prune {
        #[arg(long, value_parser = parse_duration)]
        older_than: u64,
    },
}

#[derive(Subcommand, Debug)]
pub enum GenCmd {
    /// A darknet capture (pcap/pcapng; .gz/.zst by suffix) and its ground truth JSON.
    Darknet(GenDarknetArgs),
    /// Suricata EVE JSON lines of a member's IDS (.gz/.zst by suffix) and their counts as JSON.
    Eve(GenEveArgs),
    /// A Zeek TSV log (conn or dns) of a member's network monitor, and its counts as JSON.
    Zeek(GenZeekArgs),
    /// Cowrie honeypot JSON lines (interleaved SSH/Telnet sessions), and their counts as JSON.
    Cowrie(GenCowrieArgs),
}

/// What every log generator takes: the time span and the seed.
#[derive(Args, Debug)]
pub struct GenLogArgs {
    /// Span the records cover.
    #[arg(long, default_value = "1d", value_parser = parse_duration)]
    pub duration: u64,
    /// Time of the first record.
    #[arg(long, default_value = "2026-11-01T00:00:00Z", value_parser = parse_time)]
    pub start: i64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

#[derive(Args, Debug)]
pub struct GenZeekArgs {
    #[arg(long)]
    pub out: PathBuf,
    /// Which log: conn or dns.
    #[arg(long, default_value = "conn")]
    pub log: String,
    #[arg(long, default_value_t = 100_000)]
    pub rows: u64,
    #[command(flatten)]
    pub common: GenLogArgs,
}

#[derive(Args, Debug)]
pub struct GenCowrieArgs {
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 10_000)]
    pub sessions: u64,
    #[command(flatten)]
    pub common: GenLogArgs,
}

#[derive(Args, Debug)]
pub struct GenEveArgs {
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    #[command(flatten)]
    pub common: GenLogArgs,
}

#[derive(Args, Debug)]
pub struct GenDarknetArgs {
    /// Capture file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Ground-truth JSON (default: OUT.truth.json).
    #[arg(long)]
    pub truth: Option<PathBuf>,
    #[arg(long, default_value_t = 1_000_000)]
    pub packets: u64,
    /// Capture duration (e.g. 1d, 6h, 1w).
    #[arg(long, default_value = "1d", value_parser = parse_duration)]
    pub duration: u64,
    /// Start time (RFC 3339, UTC).
    #[arg(long, default_value = "2026-11-01T00:00:00Z", value_parser = parse_time)]
    pub start: i64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The dark block.
    #[arg(long, default_value = "198.18.0.0/20")]
    pub dark: Ipv4Net,
    #[arg(long, value_enum, default_value = "pcap")]
    pub format: CaptureFormatArg,
    /// Port of the campaign that surges partway through.
    #[arg(long, default_value_t = 37215)]
    pub surge_port: u16,
    /// When the surge starts, as a fraction of the duration.
    #[arg(long, default_value_t = 0.6)]
    pub surge_at: f64,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CaptureFormatArg {
    Pcap,
    Pcapng,
}

pub(crate) fn parse_duration(s: &str) -> Result<u64, String> {
    parse_duration_secs(s).ok_or_else(|| format!("{s:?} is not a duration like 90s, 15m, 6h, 30d or 2w"))
}

fn parse_watch(s: &str) -> Result<WatchKind, String> {
    s.parse().map_err(|e: cynex_store::Error| e.to_string())
}

fn parse_time(s: &str) -> Result<i64, String> {
    parse_rfc3339_us(s).ok_or_else(|| format!("{s:?} is not an RFC 3339 UTC time like 2026-11-01T00:00:00Z"))
}

fn analyze_options(a: &AnalyzeArgs) -> anyhow::Result<cynex_analysis::AnalyzeOptions> {
    use cynex_analysis::{AnalysisConfig, Mode};
    let mut config: Option<AnalysisConfig> = match &a.config {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Some(serde_json::from_str(&text).with_context(|| format!("{}: bad analysis settings", p.display()))?)
        }
        None => None,
    };
    if !a.dark.is_empty() {
        config.get_or_insert_with(Default::default).dark = a.dark.clone();
    }
    if let Some(p) = &a.research {
        let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        let list = cynex_analysis::research::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
        config.get_or_insert_with(Default::default).research = list;
    }
    if let Some(m) = a.memory_mb {
        config.get_or_insert_with(Default::default).memory_mb = m.max(1);
    }
    let (mode, scope) = match (a.from, a.to) {
        (Some(from), Some(to)) => {
            anyhow::ensure!(from < to, "--from must be before --to");
            anyhow::ensure!(!a.flush && !a.rebuild, "--flush and --rebuild are for incremental runs");
            (Mode::Batch { from, to }, a.scope.clone().unwrap_or_else(|| "range".into()))
        }
        _ => {
            (Mode::Incremental { flush: a.flush, rebuild: a.rebuild }, a.scope.clone().unwrap_or_else(|| "all".into()))
        }
    };
    Ok(cynex_analysis::AnalyzeOptions { scope, sensors: a.sensors.clone(), mode, config, ..Default::default() })
}

fn webhook_key(cli: &Cli) -> anyhow::Result<cynex_analysis::webhook::WebhookKey> {
    Ok(cynex_analysis::webhook::WebhookKey::load_or_create(&webhook_key_path(&cli.data))?)
}

async fn org_cmd(cli: &Cli, c: &OrgCmd, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = open_store(&cli.data, cli.db.as_deref()).await?;
    match c {
        OrgCmd::Add { name, operator, prefixes, webhook } => {
            let kind = if *operator { cynex_store::OrgKind::Operator } else { cynex_store::OrgKind::Member };
            members::org_add(&store, name, kind, prefixes, webhook.as_deref(), &webhook_key(cli)?, out).await?
        }
        OrgCmd::List { json } => members::org_list(&store, *json, out).await?,
        OrgCmd::Rm { name } => {
            store.remove_org(name).await?;
            writeln!(out, "organisation {name} removed")?;
        }
        OrgCmd::Webhook { name, url, clear: _, rotate } => {
            members::org_webhook(&store, name, url.as_deref(), *rotate, &webhook_key(cli)?, out).await?
        }
        OrgCmd::Prefix(PrefixCmd::Add { org, prefixes }) => {
            for p in prefixes {
                let x = store.add_prefix(org, *p).await?;
                writeln!(out, "{} added to {}", x.prefix, x.org)?;
            }
        }
        OrgCmd::Prefix(PrefixCmd::Rm { org, prefixes }) => {
            for p in prefixes {
                store.remove_prefix(org, *p).await?;
                writeln!(out, "{p} removed from {org}")?;
            }
        }
        OrgCmd::Prefix(PrefixCmd::List { org }) => {
            let rows =
                store.prefixes(org.as_deref()).await?.into_iter().map(|p| vec![p.org, p.prefix.to_string()]).collect();
            crate::output::write_rows(out, &["organisation", "prefix"], rows)?;
        }
    }
    store.close().await;
    Ok(())
}

async fn watch_cmd(cli: &Cli, c: &WatchCmd, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = open_store(&cli.data, cli.db.as_deref()).await?;
    match c {
        WatchCmd::Add { org, specs } => members::watch_add(&store, org, specs, out).await?,
        WatchCmd::List { org } => members::watch_list(&store, org.as_deref(), out).await?,
        WatchCmd::Rm { id, org } => {
            store.remove_watch(id, org.as_deref()).await?;
            writeln!(out, "watch {id} removed")?;
        }
    }
    store.close().await;
    Ok(())
}

async fn alerts_cmd(cli: &Cli, c: &AlertsCmd, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = open_store(&cli.data, cli.db.as_deref()).await?;
    let org_id = |o: &Option<String>| {
        let store = &store;
        let o = o.clone();
        async move {
            match o {
                Some(o) => Ok::<_, anyhow::Error>(Some(store.org(&o).await?.id)),
                None => Ok(None),
            }
        }
    };
    match c {
        AlertsCmd::Raise { scope, gap } => {
            let opts = cynex_analysis::alerts::AlertOptions {
                incident_gap_us: (*gap as i64).saturating_mul(1_000_000),
                ..Default::default()
            };
            members::raise(&lake_of(cli)?, &store, scope, &opts, true, out).await?;
        }
        AlertsCmd::List { org, since, limit, json } => {
            let f = AlertFilter { org_id: org_id(org).await?, since: *since, limit: *limit };
            members::alerts_list(&store, &f, *json, out).await?;
        }
        AlertsCmd::Show { id, org } => {
            let a = store.alert(id, org_id(org).await?.as_deref()).await?;
            let d = store.deliveries(Some(&a.id)).await?;
            let v = serde_json::json!({"alert": a, "deliveries": d});
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        AlertsCmd::Ack { id, org } => {
            let a = store.ack_alert(id, org_id(org).await?.as_deref()).await?;
            writeln!(out, "alert {} {}", a.id, a.status)?;
        }
        AlertsCmd::Deliver { wait, max_attempts, backoff, timeout } => {
            let opts = cynex_analysis::webhook::DeliverOptions {
                max_attempts: (*max_attempts).max(1),
                backoff_base: std::time::Duration::from_secs(*backoff),
                timeout: std::time::Duration::from_secs((*timeout).max(1)),
                ..Default::default()
            };
            members::deliver(&store, &webhook_key(cli)?, &opts, *wait, out).await?;
        }
    }
    store.close().await;
    Ok(())
}

pub(crate) fn bus_config(url: &str, loc: &BusLocation) -> cynex_ingest::bus::BusConfig {
    cynex_ingest::bus::BusConfig {
        url: url.to_string(),
        stream: loc.stream.clone(),
        subject_root: loc.subject_root.clone(),
    }
}

fn lake_of(cli: &Cli) -> anyhow::Result<Lake> {
    let root = cli.data.join("lake");
    Lake::open(&root).with_context(|| format!("opening the lake at {}", root.display()))
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match &cli.cmd {
        Cmd::Demo(a) => cmd::demo::run(&cli.data, cli.db.as_deref(), a, &mut out)?,
        Cmd::Ingest(IngestCmd::Pcap(a)) => {
            let lake = lake_of(&cli)?;
            let mut writer = WriterOptions::default();
            if let Some(t) = a.threads {
                writer.threads = t.max(1);
            }
            let opts = cmd::ingest::IngestOptions {
                sensor: a.sensor.clone(),
                writer,
                commit_every: a.commit_every.max(1),
                progress: !cli.quiet,
                max_warnings: if cli.quiet { 0 } else { 10 },
                ..Default::default()
            };
            let rep = cmd::ingest::ingest_pcap(&lake, &a.paths, &opts)?;
            writeln!(out, "{}", cmd::ingest::summary(&rep, lake.root(), &opts.sensor))?;
            if rep.unreadable() > 0 {
                return Ok(ExitCode::from(EXIT_UNREADABLE_INPUT));
            }
        }
        Cmd::Ingest(c @ (IngestCmd::Eve(a) | IngestCmd::Zeek(a) | IngestCmd::Cowrie(a) | IngestCmd::Auto(a))) => {
            let format = match c {
                IngestCmd::Zeek(_) => cmd::ingest::InputFormat::Zeek,
                IngestCmd::Cowrie(_) => cmd::ingest::InputFormat::Cowrie,
                IngestCmd::Auto(_) => cmd::ingest::InputFormat::Auto,
                _ => cmd::ingest::InputFormat::Eve,
            };
            let lake = lake_of(&cli)?;
            let mut opts = cmd::ingest::IngestOptions {
                sensor: a.sensor.clone(),
                commit_every: 1_000_000,
                progress: !cli.quiet,
                max_warnings: if cli.quiet { 0 } else { 10 },
                ..Default::default()
            };
            if let Some(t) = a.decode_threads {
                opts.decode_threads = t.max(1);
            }
            let rep = if a.follow {
                let f = cmd::ingest::FollowOptions {
                    poll: std::time::Duration::from_millis(a.poll_ms.max(10)),
                    idle_exit: a.idle_exit.map(std::time::Duration::from_secs),
                    compact_every: a.compact_every,
                };
                cmd::ingest::follow(&lake, &a.paths, &opts, format, a.org.as_deref(), &f, &mut out)?
            } else {
                cmd::ingest::ingest(&lake, &a.paths, &opts, format, a.org.as_deref())?
            };
            writeln!(out, "{}", cmd::ingest::summary(&rep, lake.root(), &opts.sensor))?;
            if rep.unreadable() > 0 {
                return Ok(ExitCode::from(EXIT_UNREADABLE_INPUT));
            }
        }
        Cmd::Ingest(IngestCmd::Bus(a)) => {
            let lake = lake_of(&cli)?;
            let opts = cynex_ingest::bus::ConsumeOptions {
                bus: bus_config(&a.from, &a.location),
                durable: a.durable.clone(),
                batch: a.batch.max(1),
                idle_exit: a.idle_exit.map(std::time::Duration::from_secs),
                ack_wait: std::time::Duration::from_secs(a.ack_wait.max(1)),
                writer: WriterOptions::default(),
            };
            let rep = cmd::bus::consume(&lake, &opts)?;
            writeln!(out, "{}", cmd::bus::consume_summary(&rep, lake.root()))?;
        }
        Cmd::Sensor(a) => {
            let format = match a.format.as_str() {
                "eve" => cmd::ingest::InputFormat::Eve,
                "zeek" => cmd::ingest::InputFormat::Zeek,
                "cowrie" => cmd::ingest::InputFormat::Cowrie,
                "auto" => cmd::ingest::InputFormat::Auto,
                other => anyhow::bail!("unknown log format {other:?} (eve, zeek, cowrie or auto)"),
            };
            let opts = cmd::bus::PublishOptions {
                bus: bus_config(&a.publish, &a.location),
                sensor: a.sensor.clone(),
                organisation: a.org.clone(),
                format,
                state_dir: cli.data.join("sensor"),
                chunk_bytes: a.chunk_kib.max(1) << 10,
            };
            let rep = cmd::bus::publish(&a.paths, &opts)?;
            writeln!(out, "{}", rep.summary(&opts))?;
            if !rep.errors.is_empty() {
                return Ok(ExitCode::from(EXIT_UNREADABLE_INPUT));
            }
        }
        Cmd::Query { sql, format, memory_mb } => {
            let lake = lake_of(&cli)?;
            let opts = QueryOptions { memory_limit: memory_mb << 20, ..Default::default() };
            cmd::query::run(&lake, sql, *format, &opts, &mut out)?;
        }
        Cmd::Analyze(a) => {
            let lake = lake_of(&cli)?;
            let mut opts = analyze_options(a)?;
            opts.geoip = if a.geoip.is_empty() {
                cynex_analysis::geo::Geo::find_in(&cli.data.join("geoip"))
            } else {
                a.geoip.clone()
            };
            cmd::analyze::run(&lake, &opts, &mut out)?;
            if !a.no_alerts {
                block_on(async {
                    let store = open_store(&cli.data, cli.db.as_deref()).await?;
                    members::raise(&lake, &store, &opts.scope, &Default::default(), false, &mut out).await
                })?;
            }
        }
        Cmd::Org(c) => block_on(org_cmd(&cli, c, &mut out))?,
        Cmd::Watch(c) => block_on(watch_cmd(&cli, c, &mut out))?,
        Cmd::Alerts(c) => block_on(alerts_cmd(&cli, c, &mut out))?,
        Cmd::Stats { scope, bin, from, to, format } => {
            let req = cmd::analyze::StatsRequest {
                scope: scope.clone(),
                bin: bin.clone(),
                from: *from,
                to: *to,
                format: *format,
            };
            cmd::analyze::stats(&lake_of(&cli)?, &req, &mut out)?;
        }
        Cmd::Report { from, to, scope, out: path } => {
            let r = cmd::report::build(&lake_of(&cli)?, scope, *from, *to)?;
            cmd::report::write(&r, path, &mut out)?;
        }
        Cmd::User(c) => block_on(async {
            let store = open_store(&cli.data, cli.db.as_deref()).await?;
            let r = cmd::hub::user_cmd(&store, c, &mut out).await;
            store.close().await;
            r
        })?,
        Cmd::Token(c) => block_on(async {
            let store = open_store(&cli.data, cli.db.as_deref()).await?;
            let r = cmd::hub::token_cmd(&store, c, &mut out).await;
            store.close().await;
            r
        })?,
        Cmd::Intel(c) => {
            let lake = lake_of(&cli)?;
            tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async {
                let store = open_store(&cli.data, cli.db.as_deref()).await?;
                let hub = cynex_intel::Hub::new(store.clone());
                let r = cmd::hub::intel_cmd(&hub, &lake, c, &mut out).await;
                store.close().await;
                r
            })?
        }
        Cmd::Feed(c) => block_on(async {
            let store = open_store(&cli.data, cli.db.as_deref()).await?;
            let hub = cynex_intel::Hub::new(store.clone());
            let r = cmd::hub::feed_cmd(&hub, c, &mut out).await;
            store.close().await;
            r
        })?,
        Cmd::Serve(a) => cmd::serve::run(cmd::serve::config_of(a, &cli.data), cli.db.as_deref(), &mut out)?,
        Cmd::Lake(LakeCmd::Stats { format }) => cmd::lake::stats(&lake_of(&cli)?, *format, &mut out)?,
        Cmd::Lake(LakeCmd::Compact { target_mb }) => cmd::lake::compact(&lake_of(&cli)?, *target_mb, &mut out)?,
        Cmd::Lake(LakeCmd::Prune { older_than }) => cmd::lake::prune(&lake_of(&cli)?, *older_than, &mut out)?,
        Cmd::Gen(GenCmd::Eve(a)) => {
            let cfg = cynex_gen::EveConfig {
                seed: a.common.seed,
                events: a.events,
                start_us: a.common.start,
                duration_s: a.common.duration,
            };
            let truth = cmd::gen::default_truth_path(&a.out);
            let start = std::time::Instant::now();
            let t = cmd::gen::eve(&cfg, &a.out, &truth)?;
            writeln!(
                out,
                "wrote {} EVE events ({}) to {} in {:.1} s; counts: {}",
                crate::output::thousands(t.events),
                crate::output::bytes(t.bytes),
                a.out.display(),
                start.elapsed().as_secs_f64(),
                truth.display()
            )?;
        }
        Cmd::Gen(GenCmd::Zeek(a)) => {
            let log = match a.log.as_str() {
                "conn" => cynex_gen::ZeekLog::Conn,
                "dns" => cynex_gen::ZeekLog::Dns,
                other => anyhow::bail!("unknown Zeek log {other:?} (conn or dns)"),
            };
            let cfg = cynex_gen::ZeekConfig {
                seed: a.common.seed,
                log,
                rows: a.rows,
                start_us: a.common.start,
                duration_s: a.common.duration,
            };
            let truth = cmd::gen::default_truth_path(&a.out);
            let start = std::time::Instant::now();
            let t = cmd::gen::generated(&a.out, &truth, |w| Ok(cynex_gen::generate_zeek(&cfg, w)?.0))?;
            writeln!(
                out,
                "wrote {} Zeek {} rows ({}) to {} in {:.1} s; counts: {}",
                crate::output::thousands(t.rows),
                t.log,
                crate::output::bytes(t.bytes),
                a.out.display(),
                start.elapsed().as_secs_f64(),
                truth.display()
            )?;
        }
        Cmd::Gen(GenCmd::Cowrie(a)) => {
            let cfg = cynex_gen::CowrieConfig {
                seed: a.common.seed,
                sessions: a.sessions,
                start_us: a.common.start,
                duration_s: a.common.duration,
                ..Default::default()
            };
            let truth = cmd::gen::default_truth_path(&a.out);
            let start = std::time::Instant::now();
            let t = cmd::gen::generated(&a.out, &truth, |w| Ok(cynex_gen::generate_cowrie(&cfg, w)?.0))?;
            writeln!(
                out,
                "wrote {} Cowrie events of {} sessions ({}) to {} in {:.1} s; counts: {}",
                crate::output::thousands(t.events),
                crate::output::thousands(t.sessions),
                crate::output::bytes(t.bytes),
                a.out.display(),
                start.elapsed().as_secs_f64(),
                truth.display()
            )?;
        }
        Cmd::Gen(GenCmd::Darknet(a)) => {
            let cfg = DarknetConfig {
                seed: a.seed,
                packets: a.packets,
                start_us: a.start,
                duration_s: a.duration,
                dark: a.dark,
                format: match a.format {
                    CaptureFormatArg::Pcap => CaptureFormat::Pcap,
                    CaptureFormatArg::Pcapng => CaptureFormat::PcapNg,
                },
                surge_port: a.surge_port,
                surge_at: a.surge_at,
            };
            let truth = a.truth.clone().unwrap_or_else(|| cmd::gen::default_truth_path(&a.out));
            let start = std::time::Instant::now();
            let t = cmd::gen::darknet(&cfg, &a.out, &truth)?;
            writeln!(
                out,
                "wrote {} packets ({}) to {} in {:.1} s; ground truth: {}",
                crate::output::thousands(t.packets),
                crate::output::bytes(t.bytes),
                a.out.display(),
                start.elapsed().as_secs_f64(),
                truth.display()
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = if cli.quiet { "error" } else { "warn" };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("CYNEX_LOG").unwrap_or_else(|_| filter.into()))
        .with_writer(std::io::stderr)
        .try_init();
    match run(cli) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
