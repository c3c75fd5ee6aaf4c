//! `cynex user …`, `cynex token …`, `cynex intel …` and `cynex feed …`: the sharing hub's
//! accounts, its intelligence (collections, publishing, posting, exports, correlation) and its
//! feeds.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use cynex_intel::feeds::export::ExportFormat;
use cynex_intel::feeds::{self, taxii::TaxiiSource, FeedConfig};
use cynex_intel::{Hub, Outcome};
use cynex_lake::Lake;
use cynex_model::time::{now_us, parse_duration_secs, rfc3339_us};
use cynex_store::{CollectionAccess, Principal, Role, Store, Tlp, Viewer};

use crate::output::{thousands, write_rows};

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Add a user: admins and analysts to the operator's organisation, members to a member's.
    /// Prints a generated password unless one is given.
    Add {
        name: String,
        #[arg(long)]
        org: String,
        /// admin, analyst or member.
        #[arg(long, default_value = "member")]
        role: String,
        /// Read the password from standard input (one line).
        #[arg(long)]
        password_stdin: bool,
        /// No password: the user can only use API tokens.
        #[arg(long, conflicts_with = "password_stdin")]
        no_password: bool,
    },
    List {
        #[arg(long)]
        org: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Set a new password (generated unless --password-stdin).
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user: its password, tokens and sessions stop working at once.
    Disable {
        name: String,
    },
    Enable {
        name: String,
    },
    Rm {
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Create an API token for a user; it is shown once and stored only as a hash.
    Create {
        user: String,
        #[arg(long, default_value = "cli")]
        name: String,
        /// Lifetime, e.g. 90d (default: no expiry).
        #[arg(long)]
        expires: Option<String>,
    },
    List {
        #[arg(long)]
        user: Option<String>,
    },
    Revoke {
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum IntelCmd {
    /// TAXII collections with what each holds.
    Collections,
    /// Add a TAXII collection.
    CollectionAdd {
        alias: String,
        #[arg(long)]
        title: String,
        #[arg(long, default_value = "")]
        description: String,
        /// Who may read: public (anyone), members, operator.
        #[arg(long, default_value = "members")]
        read: String,
        /// Who may write: members, operator, nobody.
        #[arg(long, default_value = "operator")]
        write: String,
        /// TLP of objects posted without a TLP marking.
        #[arg(long, default_value = "amber")]
        default_tlp: String,
    },
    /// Publish the darknet findings as STIX (scanners, campaigns, member alerts, daily reports).
    Publish {
        #[arg(long, default_value = "all")]
        scope: String,
    },
    /// Add STIX bundles or envelopes (JSON files) to a collection as a user.
    Post {
        #[arg(long)]
        collection: String,
        /// The user posting (default: the nexus itself).
        #[arg(long = "as")]
        as_user: Option<String>,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Export indicators as one viewer sees them: plain, csv, suricata (to --out or stdout) or
    /// misp (a MISP feed directory, --out required, at most TLP:GREEN).
    Export {
        #[arg(long)]
        format: String,
        /// Collections (repeatable; default every readable one).
        #[arg(long = "collection")]
        collections: Vec<String>,
        /// See what this user may see (default: the nexus itself).
        #[arg(long = "as")]
        as_user: Option<String>,
        #[arg(long, default_value = "amber+strict")]
        max_tlp: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Import a MISP feed (directory or URL with manifest.json) into a collection once.
    ImportMisp {
        source: String,
        #[arg(long)]
        collection: String,
    },
    /// Where an address, domain, URL, hash or indicator has shown up.
    Correlate {
        query: String,
        #[arg(long = "as")]
        as_user: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum FeedCmd {
    /// Pull an external TAXII 2.1 collection on a schedule.
    AddTaxii {
        name: String,
        /// The collection's URL (…/collections/ID/).
        #[arg(long)]
        url: String,
        /// Local collection the objects go into.
        #[arg(long)]
        collection: String,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        password: Option<String>,
        #[arg(long)]
        token: Option<String>,
        #[arg(long, default_value = "1h")]
        interval: String,
        #[arg(long, default_value_t = 500)]
        page: usize,
        /// Accept the peer's certificate without checking it (test peers only).
        #[arg(long)]
        insecure: bool,
    },
    /// Import a MISP feed (directory or URL) on a schedule.
    AddMisp {
        name: String,
        #[arg(long)]
        source: String,
        #[arg(long)]
        collection: String,
        #[arg(long, default_value = "1h")]
        interval: String,
    },
    List,
    /// Run one feed (or every feed) now.
    Run {
        name: Option<String>,
    },
    Rm {
        name: String,
    },
}

fn read_password(stdin: bool) -> anyhow::Result<(String, bool)> {
    if stdin {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        let p = s.lines().next().unwrap_or_default().to_string();
        Ok((p, false))
    } else {
        Ok((cynex_store::generate_password()?, true))
    }
}

pub async fn user_cmd(store: &Store, c: &UserCmd, out: &mut dyn Write) -> anyhow::Result<()> {
    match c {
        UserCmd::Add { name, org, role, password_stdin, no_password } => {
            let role: Role = role.parse()?;
            let pw = if *no_password { None } else { Some(read_password(*password_stdin)?) };
            let u = store.add_user(name, org, role, pw.as_ref().map(|(p, _)| p.as_str())).await?;
            writeln!(out, "user {} ({}) added to {}", u.name, u.role, u.org)?;
            if let Some((p, true)) = pw {
                writeln!(out, "password (shown once): {p}")?;
            }
        }
        UserCmd::List { org, json } => {
            let users = store.users(org.as_deref()).await?;
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&users)?)?;
            } else {
                let rows = users
                    .into_iter()
                    .map(|u| {
                        vec![
                            u.name,
                            u.org,
                            u.role.to_string(),
                            if u.disabled { "disabled".into() } else { "active".into() },
                            if u.has_password { "yes".into() } else { "tokens only".into() },
                            rfc3339_us(u.created),
                        ]
                    })
                    .collect();
                write_rows(out, &["user", "organisation", "role", "status", "password", "created"], rows)?;
            }
        }
        UserCmd::Passwd { name, password_stdin } => {
            let (p, generated) = read_password(*password_stdin)?;
            store.set_password(name, &p).await?;
            writeln!(out, "password of {name} changed")?;
            if generated {
                writeln!(out, "password (shown once): {p}")?;
            }
        }
        UserCmd::Disable { name } => {
            store.set_user_disabled(name, true).await?;
            writeln!(out, "user {name} disabled (password, tokens and sessions refused)")?;
        }
        UserCmd::Enable { name } => {
            store.set_user_disabled(name, false).await?;
            writeln!(out, "user {name} enabled")?;
        }
        UserCmd::Rm { name } => {
            store.remove_user(name).await?;
            writeln!(out, "user {name} removed")?;
        }
    }
    Ok(())
}

pub async fn token_cmd(store: &Store, c: &TokenCmd, out: &mut dyn Write) -> anyhow::Result<()> {
    match c {
        TokenCmd::Create { user, name, expires } => {
            let exp = match expires {
                Some(d) => {
                    let s = parse_duration_secs(d).with_context(|| format!("--expires {d:?}: a duration like 90d"))?;
                    Some(now_us() + s as i64 * 1_000_000)
                }
                None => None,
            };
            let t = store.create_token(user, name, exp).await?;
            writeln!(
                out,
                "token {} for {} created{}",
                t.token.id,
                t.token.user,
                exp.map(|e| format!(", expires {}", rfc3339_us(e))).unwrap_or_default()
            )?;
            writeln!(out, "{}", t.secret)?;
            writeln!(out, "(shown once: send it as `Authorization: Bearer …`, or as the password with HTTP Basic)")?;
        }
        TokenCmd::List { user } => {
            let rows = store
                .tokens(user.as_deref())
                .await?
                .into_iter()
                .map(|t| {
                    let state = if t.revoked.is_some() {
                        "revoked".to_string()
                    } else if t.expires.is_some_and(|e| e <= now_us()) {
                        "expired".to_string()
                    } else {
                        "active".to_string()
                    };
                    vec![
                        t.id,
                        t.user,
                        t.name,
                        state,
                        t.expires.map(rfc3339_us).unwrap_or_else(|| "-".into()),
                        t.last_used.map(rfc3339_us).unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            write_rows(out, &["id", "user", "name", "state", "expires", "last used"], rows)?;
        }
        TokenCmd::Revoke { id } => {
            store.revoke_token(id, None).await?;
            writeln!(out, "token {id} revoked")?;
        }
    }
    Ok(())
}

/// The principal a command acts as: a named user, or the nexus itself.
async fn acting_as(hub: &Hub, user: Option<&str>) -> anyhow::Result<Principal> {
    match user {
        None => Ok(hub.system_principal().await?),
        Some(u) => {
            let u = hub.store.user(u).await?;
            let o = hub.store.org(&u.org_id).await?;
            Ok(Principal { user_id: u.id, user: u.name, org_id: o.id, org: o.name, org_kind: o.kind, role: u.role })
        }
    }
}

fn viewer_of(p: &Principal) -> Viewer {
    p.viewer()
}

pub async fn intel_cmd(hub: &Hub, lake: &Lake, c: &IntelCmd, out: &mut dyn Write) -> anyhow::Result<()> {
    match c {
        IntelCmd::Collections => {
            cynex_intel::publish::ensure_collections(hub).await?;
            let sys = hub.system_principal().await?.viewer();
            let mut rows = Vec::new();
            for c in hub.store.collections().await? {
                let n = hub.store.count_objects(&sys, &c.id).await?;
                rows.push(vec![
                    c.alias,
                    c.id,
                    c.read.as_str().into(),
                    c.write.as_str().into(),
                    c.default_tlp.to_string(),
                    thousands(n as u64),
                    c.title,
                ]);
            }
            write_rows(out, &["alias", "id", "read", "write", "default", "objects (nexus view)", "title"], rows)?;
        }
        IntelCmd::CollectionAdd { alias, title, description, read, write, default_tlp } => {
            let read: CollectionAccess = read.parse()?;
            let write: CollectionAccess = write.parse()?;
            let tlp: Tlp = default_tlp.parse()?;
            let c = hub.store.add_collection(alias, title, description, read, write, tlp).await?;
            writeln!(
                out,
                "collection {} ({}) added: read {}, write {}, default {}",
                c.alias,
                c.id,
                c.read.as_str(),
                c.write.as_str(),
                c.default_tlp
            )?;
        }
        IntelCmd::Publish { scope } => {
            let opts = cynex_intel::publish::PublishOptions { scope: scope.clone(), ..Default::default() };
            let r = cynex_intel::publish::publish(hub, lake, &opts).await?;
            writeln!(
                out,
                "published scope {scope}: {} scanners, {} member hosts, {} member DDoS victims, {} campaigns, {} daily reports; \
                 {} objects added or versioned, {} unchanged, {} refused",
                thousands(r.scanners),
                thousands(r.member_hosts),
                thousands(r.member_victims),
                thousands(r.campaigns),
                r.daily_reports,
                thousands(r.added),
                thousands(r.unchanged),
                r.refused
            )?;
        }
        IntelCmd::Post { collection, as_user, files } => {
            let who = acting_as(hub, as_user.as_deref()).await?;
            let coll = hub.store.collection(collection).await?;
            anyhow::ensure!(coll.can_write(&who.viewer()), "{} may not write to collection {}", who.user, coll.alias);
            let (mut ok, mut bad) = (0u64, 0u64);
            for f in files {
                let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
                let v: serde_json::Value =
                    serde_json::from_str(&text).with_context(|| format!("{}: not JSON", f.display()))?;
                let objs = match v.get("objects").and_then(|o| o.as_array()) {
                    Some(a) => a.clone(),
                    None if v.get("type").is_some() => vec![v.clone()],
                    None => anyhow::bail!("{}: neither a bundle, an envelope nor a STIX object", f.display()),
                };
                for r in hub.submit(&who, &coll, objs).await? {
                    match r.outcome {
                        Outcome::Refused(m) => {
                            bad += 1;
                            writeln!(
                                out,
                                "{}: refused {}: {m}",
                                f.display(),
                                if r.id.is_empty() { "(no id)" } else { &r.id }
                            )?;
                        }
                        _ => ok += 1,
                    }
                }
            }
            writeln!(out, "{ok} object(s) accepted, {bad} refused, into {}", coll.alias)?;
        }
        IntelCmd::Export { format, collections, as_user, max_tlp, out: path } => {
            let who = acting_as(hub, as_user.as_deref()).await?;
            let v = viewer_of(&who);
            let max: Tlp = max_tlp.parse()?;
            let all = hub.store.collections().await?;
            let chosen: Vec<_> = if collections.is_empty() {
                all.into_iter().filter(|c| c.can_read(&v)).collect()
            } else {
                let mut x = Vec::new();
                for n in collections {
                    let c = all
                        .iter()
                        .find(|c| &c.alias == n || &c.id == n)
                        .with_context(|| format!("no collection {n:?}"))?;
                    anyhow::ensure!(c.can_read(&v), "{} may not read collection {}", who.user, c.alias);
                    x.push(c.clone());
                }
                x
            };
            if format == "misp" {
                let dir = path.as_ref().context("--out DIR is required for a MISP feed")?;
                let r =
                    feeds::misp::export_feed(hub, &v, &chosen, max.min(Tlp::Green), &who.org, dir, now_us()).await?;
                writeln!(
                    out,
                    "wrote a MISP feed to {}: {} event(s), {} attribute(s)",
                    dir.display(),
                    r.events,
                    r.attributes
                )?;
                return Ok(());
            }
            let fmt: ExportFormat = format.parse()?;
            let mut buf: Vec<u8> = Vec::new();
            let n = feeds::export::export(hub, &v, &chosen, fmt, max, now_us(), &mut buf).await?;
            match path {
                Some(p) => {
                    std::fs::write(p, &buf).with_context(|| format!("writing {}", p.display()))?;
                    writeln!(out, "wrote {n} indicator value(s) to {}", p.display())?;
                }
                None => out.write_all(&buf)?,
            }
        }
        IntelCmd::ImportMisp { source, collection } => {
            let coll = hub.store.collection(collection).await?;
            let sys = hub.system_principal().await?;
            let r = feeds::misp::import_feed(hub, source, &coll, &sys, None).await?;
            writeln!(
                out,
                "imported {} MISP event(s) into {}: {} objects added, {} unchanged, {} refused, {} event(s) unreadable",
                r.events, coll.alias, r.objects_added, r.objects_unchanged, r.objects_refused, r.events_failed
            )?;
        }
        IntelCmd::Correlate { query, as_user } => {
            let who = acting_as(hub, as_user.as_deref()).await?;
            let r = cynex_intel::correlate::correlate(hub, lake, Some(&who), query, 100).await?;
            writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?;
        }
    }
    Ok(())
}

fn interval_s(s: &str) -> anyhow::Result<u64> {
    parse_duration_secs(s).with_context(|| format!("--interval {s:?}: a duration like 15m or 1h"))
}

pub async fn feed_cmd(hub: &Hub, c: &FeedCmd, out: &mut dyn Write) -> anyhow::Result<()> {
    match c {
        FeedCmd::AddTaxii { name, url, collection, user, password, token, interval, page, insecure } => {
            let cfg = FeedConfig {
                into: collection.clone(),
                interval_s: interval_s(interval)?,
                taxii: Some(TaxiiSource {
                    url: url.clone(),
                    user: user.clone(),
                    password: password.clone(),
                    token: token.clone(),
                    page: *page,
                    insecure: *insecure,
                }),
                misp: None,
            };
            feeds::save(hub, name, &cfg).await?;
            writeln!(out, "TAXII feed {name} added: {url} into {collection} every {interval}")?;
        }
        FeedCmd::AddMisp { name, source, collection, interval } => {
            let cfg = FeedConfig {
                into: collection.clone(),
                interval_s: interval_s(interval)?,
                taxii: None,
                misp: Some(source.clone()),
            };
            feeds::save(hub, name, &cfg).await?;
            writeln!(out, "MISP feed {name} added: {source} into {collection} every {interval}")?;
        }
        FeedCmd::List => {
            let rows = hub
                .store
                .feeds()
                .await?
                .into_iter()
                .map(|f| {
                    let cfg = feeds::config_of(&f).ok();
                    vec![
                        f.name,
                        f.kind,
                        cfg.as_ref().map(|c| c.into.clone()).unwrap_or_default(),
                        f.cursor.unwrap_or_else(|| "-".into()),
                        f.last_run.map(rfc3339_us).unwrap_or_else(|| "never".into()),
                        f.last_error.unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            write_rows(out, &["feed", "kind", "into", "resume point", "last run", "last error"], rows)?;
        }
        FeedCmd::Run { name } => {
            let all = hub.store.feeds().await?;
            let chosen: Vec<_> = all.into_iter().filter(|f| name.as_ref().is_none_or(|n| &f.name == n)).collect();
            anyhow::ensure!(!chosen.is_empty(), "no feed {}", name.as_deref().unwrap_or("registered"));
            for f in chosen {
                let r = feeds::run(hub, &f).await?;
                writeln!(
                    out,
                    "feed {}: {} added, {} unchanged, {} refused; resume point {}",
                    r.feed,
                    thousands(r.added),
                    thousands(r.unchanged),
                    r.refused,
                    r.cursor.as_deref().unwrap_or("-")
                )?;
            }
        }
        FeedCmd::Rm { name } => {
            hub.store.remove_feed(name).await?;
            writeln!(out, "feed {name} removed")?;
        }
    }
    Ok(())
}
