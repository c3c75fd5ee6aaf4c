//! From darknet findings to shared intelligence (the "S" of ../shared/MISSION.md): what the
//! analysis concluded becomes STIX 2.1 in collections by TLP.
//!
//! | collection      | TLP          | what                                                                 |
//! |-----------------|--------------|----------------------------------------------------------------------|
//! | `public`        | CLEAR        | the nexus identity; one observation report per day (statistics)      |
//! | `indicators`    | GREEN        | scanning sources outside members' space: indicator (with valid_until), observed-data, ipv4-addr, based-on; the tool or malware they use; campaigns with their infrastructure |
//! | `member-alerts` | AMBER+STRICT | per member, owned by it: its own scanning hosts (likely infected) and DDoS victims (observed-data and a note) |
//! | `sightings`     | AMBER        | written by members: sightings of our indicators and their own intelligence |
//!
//! Research scanners are not indicators of malicious activity and are not published as such.
//! Ids are deterministic (UUIDv5 over what identifies the finding), so publishing again after
//! new data makes a new version of the same object (created kept, modified advanced); publishing
//! again without change adds nothing.

use std::collections::{BTreeMap, BTreeSet};

use cynex_analysis::finding::{kind, Finding};
use cynex_lake::{Lake, QueryOptions, QuerySession};
use cynex_model::ip::{fmt_ip4, Ipv4Net};
use cynex_model::time::now_us;
use cynex_model::Table;
use cynex_store::{CollectionAccess, IntelCollection, OrgKind, Principal, Role, Tlp};
use serde_json::{json, Map, Value};

use crate::hub::{Hub, Outcome};
use crate::stix::canonical::canonical;
use crate::stix::sco::{deterministic_id, uuid_v5};
use crate::stix::time::{format_ms, parse_timestamp};
use crate::{tlp, Error, Result};

/// Namespace of the nexus's own deterministic ids (a fixed v4 UUID).
const CYNEX_NS: [u8; 16] =
    [0x6b, 0x1e, 0x2d, 0x7c, 0x35, 0x0a, 0x4f, 0x1b, 0x9a, 0x44, 0x52, 0x8e, 0x13, 0x60, 0xc7, 0x21];

pub const PUBLIC: &str = "public";
pub const INDICATORS: &str = "indicators";
pub const MEMBER_ALERTS: &str = "member-alerts";
pub const SIGHTINGS: &str = "sightings";

const DAY_US: i64 = 86_400_000_000;

#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// Analysis scope whose findings are published.
    pub scope: String,
    /// How long after a source was last seen its indicator stays valid.
    pub validity_us: i64,
    /// Objects per store transaction.
    pub chunk: usize,
}

impl Default for PublishOptions {
    fn default() -> Self {
        PublishOptions { scope: "all".into(), validity_us: 7 * DAY_US, chunk: 2000 }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PublishReport {
    pub scanners: u64,
    pub member_hosts: u64,
    pub member_victims: u64,
    pub campaigns: u64,
    pub daily_reports: u64,
    /// New objects or new versions.
    pub added: u64,
    /// Objects already published as they are.
    pub unchanged: u64,
    pub refused: u64,
}

/// The four collections of the table above, created when missing.
pub async fn ensure_collections(hub: &Hub) -> Result<BTreeMap<&'static str, IntelCollection>> {
    let specs: [(&str, &str, &str, CollectionAccess, CollectionAccess, Tlp); 4] = [
        (
            PUBLIC,
            "Darknet observations (TLP:CLEAR)",
            "Daily observation reports of the nexus's darknet telescope; readable without credentials.",
            CollectionAccess::Public,
            CollectionAccess::Operator,
            Tlp::Clear,
        ),
        (
            INDICATORS,
            "Scanning sources and campaigns (TLP:GREEN)",
            "Indicators of darknet scanning sources, the tools they use and the campaigns they form.",
            CollectionAccess::Members,
            CollectionAccess::Operator,
            Tlp::Green,
        ),
        (
            MEMBER_ALERTS,
            "Your address space (TLP:AMBER+STRICT)",
            "Hosts of your own address space seen scanning the darknet, and DDoS attacks against them; each \
             member sees only its own.",
            CollectionAccess::Members,
            CollectionAccess::Operator,
            Tlp::AmberStrict,
        ),
        (
            SIGHTINGS,
            "Members' sightings and intelligence (default TLP:AMBER)",
            "Members post sightings of the nexus's indicators and their own intelligence here.",
            CollectionAccess::Members,
            CollectionAccess::Members,
            Tlp::Amber,
        ),
    ];
    let mut out = BTreeMap::new();
    for (alias, title, desc, read, write, default_tlp) in specs {
        let c = match hub.store.collection(alias).await {
            Ok(c) => c,
            Err(cynex_store::Error::NotFound { .. }) => {
                hub.store.add_collection(alias, title, desc, read, write, default_tlp).await?
            }
            Err(e) => return Err(e.into()),
        };
        out.insert(alias, c);
    }
    Ok(out)
}

fn cynex_id(type_: &str, key: &str) -> String {
    format!("{type_}--{}", uuid_v5(&CYNEX_NS, format!("{type_}:{key}").as_bytes()))
}

fn ipv4_id(ip: &str) -> String {
    let mut m = Map::new();
    m.insert("value".into(), json!(ip));
    deterministic_id("ipv4-addr", &m).expect("ipv4-addr has a contributing property")
}

fn proto_name(p: u8) -> String {
    match p {
        6 => "tcp".into(),
        17 => "udp".into(),
        1 => "icmp".into(),
        x => x.to_string(),
    }
}

/// What the findings say about one scanning source.
#[derive(Debug, Default)]
struct Source {
    first: i64,
    last: i64,
    packets: u64,
    events: u64,
    ports: BTreeSet<(u8, u16)>,
    tool: Option<(String, u64)>,
    research: Option<String>,
    country: Option<String>,
    asn: Option<u32>,
    as_org: Option<String>,
}

fn sources(findings: &[Finding]) -> BTreeMap<u32, Source> {
    let mut out: BTreeMap<u32, Source> = BTreeMap::new();
    for f in findings {
        let Some(ip) = f.ip4 else { continue };
        if f.kind != kind::SCAN && f.kind != kind::TOOL {
            continue;
        }
        let s = out.entry(ip).or_insert_with(|| Source { first: f.time, last: f.end_time, ..Default::default() });
        s.first = s.first.min(f.time);
        s.last = s.last.max(f.end_time);
        if s.research.is_none() {
            s.research.clone_from(&f.label);
        }
        if s.country.is_none() {
            s.country.clone_from(&f.country);
            s.asn = f.asn;
            s.as_org.clone_from(&f.as_org);
        }
        if f.kind == kind::SCAN {
            s.packets += f.packets;
            s.events += 1;
            if let (Some(port), Some(p)) = (f.port, f.proto) {
                s.ports.insert((p, port));
            }
        } else if let Some(t) = &f.tool {
            if s.tool.as_ref().is_none_or(|(_, n)| f.packets > *n) {
                s.tool = Some((t.clone(), f.packets));
            }
        }
    }
    out.retain(|_, s| s.events > 0);
    out
}

/// The STIX object a tool attribution points to: malware for bot families, tool otherwise.
fn tool_object(tool: &str, marking: &str, nexus: &str, t0: &str) -> Value {
    let (type_, name, extra) = match tool {
        "mirai" => ("malware", "Mirai", json!({"is_family": true, "malware_types": ["bot", "worm"]})),
        "masscan" => ("tool", "Masscan", json!({"tool_types": ["information-gathering"]})),
        "zmap" | "zmap-4.1" => ("tool", "ZMap", json!({"tool_types": ["information-gathering"]})),
        "nmap" => ("tool", "Nmap", json!({"tool_types": ["information-gathering", "vulnerability-scanning"]})),
        "unicornscan" => ("tool", "Unicornscan", json!({"tool_types": ["information-gathering"]})),
        other => ("tool", other, json!({"tool_types": ["unknown"]})),
    };
    let mut o = json!({
        "type": type_, "spec_version": "2.1", "id": cynex_id(type_, name), "created": t0, "modified": t0,
        "created_by_ref": nexus, "name": name, "object_marking_refs": [marking],
    });
    merge(&mut o, extra);
    o
}

fn merge(o: &mut Value, extra: Value) {
    if let (Some(m), Value::Object(e)) = (o.as_object_mut(), extra) {
        m.extend(e);
    }
}

fn relationship(rel: &str, src: &str, dst: &str, marking: &str, nexus: &str, t0: &str) -> Value {
    json!({
        "type": "relationship", "spec_version": "2.1", "id": cynex_id("relationship", &format!("{src}|{rel}|{dst}")),
        "created": t0, "modified": t0, "created_by_ref": nexus, "relationship_type": rel,
        "source_ref": src, "target_ref": dst, "object_marking_refs": [marking],
    })
}

/// Objects to publish into one collection as one owner.
struct Batch {
    collection: IntelCollection,
    owner: Principal,
    objects: Vec<Value>,
}

/// Publish what the analysis of `opts.scope` found into the collections above.
pub async fn publish(hub: &Hub, lake: &Lake, opts: &PublishOptions) -> Result<PublishReport> {
    let colls = ensure_collections(hub).await?;
    let sys = hub.system_principal().await?;
    let operator = hub.operator_org().await?;
    let t0 = format_ms(operator.created);
    let nexus_id = cynex_id("identity", &operator.id);
    let nexus = json!({
        "type": "identity", "spec_version": "2.1", "id": nexus_id, "created": t0, "modified": t0,
        "name": format!("{} (cynex nexus)", operator.name), "identity_class": "organization",
        "description": "The cybersecurity nexus operating the darknet telescope and this sharing hub.",
        "object_marking_refs": [tlp::marking_id(Tlp::Clear)],
    });
    let (lake2, scope) = (lake.clone(), opts.scope.clone());
    let (findings, campaigns) = tokio::task::spawn_blocking(move || -> Result<_> {
        Ok((
            cynex_analysis::load_findings(&lake2, &scope, Table::Findings)?,
            cynex_analysis::load_findings(&lake2, &scope, Table::Campaigns)?,
        ))
    })
    .await
    .map_err(|e| Error::Invalid(format!("reading findings: {e}")))??;
    let prefixes: Vec<(Ipv4Net, String)> =
        hub.store.prefixes(None).await?.into_iter().map(|p| (p.prefix, p.org_id)).collect();
    let member_of = |ip: u32| prefixes.iter().find(|(n, _)| n.contains(ip)).map(|(_, o)| o.clone());
    let members: BTreeMap<String, cynex_store::Org> =
        hub.store.orgs().await?.into_iter().filter(|o| o.kind == OrgKind::Member).map(|o| (o.id.clone(), o)).collect();
    let owner_for = |org_id: &str| -> Principal {
        let o = &members[org_id];
        Principal {
            user_id: "system".into(),
            user: "cynex".into(),
            org_id: o.id.clone(),
            org: o.name.clone(),
            org_kind: OrgKind::Member,
            role: Role::Member,
        }
    };
    let green = tlp::marking_id(Tlp::Green);
    let strict = tlp::marking_id(Tlp::AmberStrict);
    let mut rep = PublishReport::default();
    let mut public = Batch { collection: colls[PUBLIC].clone(), owner: sys.clone(), objects: vec![nexus] };
    let mut shared = Batch { collection: colls[INDICATORS].clone(), owner: sys.clone(), objects: Vec::new() };
    let mut per_member: BTreeMap<String, Batch> = BTreeMap::new();
    let mut tools_used = BTreeSet::new();

    let srcs = sources(&findings);
    // (ip, indicator id) of the published non-member sources, for campaign membership.
    let mut indicator_of: BTreeMap<u32, String> = BTreeMap::new();
    for (ip, s) in &srcs {
        if s.research.is_some() {
            continue;
        }
        let ip_s = fmt_ip4(*ip);
        let member = member_of(*ip);
        let marking = if member.is_some() { strict } else { green };
        let ports: Vec<String> = s.ports.iter().map(|(p, port)| format!("{port}/{}", proto_name(*p))).collect();
        let tool = s.tool.as_ref().map(|(t, _)| t.as_str());
        let sco_id = ipv4_id(&ip_s);
        let sco = json!({"type": "ipv4-addr", "spec_version": "2.1", "id": sco_id, "value": ip_s, "object_marking_refs": [marking]});
        let od_id = cynex_id("observed-data", &format!("scanner:{ip_s}"));
        let mut od = json!({
            "type": "observed-data", "spec_version": "2.1", "id": od_id, "created": t0, "modified": t0,
            "created_by_ref": nexus_id, "first_observed": format_ms(s.first), "last_observed": format_ms(s.last),
            "number_observed": s.events.clamp(1, 999_999_999), "object_refs": [sco_id],
            "object_marking_refs": [marking], "x_cynex_packets": s.packets,
        });
        let ind_id = cynex_id("indicator", &format!("scanner:{ip_s}"));
        let what = if member.is_some() {
            "Host of your address space scanning the darknet"
        } else {
            "Darknet scanning source"
        };
        let mut labels = vec!["darknet-scanner".to_string()];
        labels.extend(tool.map(str::to_string));
        let mut ind = json!({
            "type": "indicator", "spec_version": "2.1", "id": ind_id, "created": t0, "modified": t0,
            "created_by_ref": nexus_id, "name": format!("{what} {ip_s}"),
            "description": format!(
                "{ip_s} sent {} packets to the darknet{} between {} and {}{}.",
                s.packets,
                if ports.is_empty() { String::new() } else { format!(" in {} scan events on {}", s.events, ports.join(", ")) },
                format_ms(s.first), format_ms(s.last),
                tool.map(|t| format!("; its probes carry the fingerprint of {t}")).unwrap_or_default()
            ),
            "indicator_types": [if member.is_some() { "compromised" } else { "malicious-activity" }],
            "pattern": format!("[ipv4-addr:value = '{ip_s}']"), "pattern_type": "stix", "pattern_version": "2.1",
            "valid_from": format_ms(s.first), "valid_until": format_ms(s.last + opts.validity_us),
            "labels": labels, "confidence": if tool.is_some() { 85 } else { 70 },
            "object_marking_refs": [marking], "x_cynex_packets": s.packets,
        });
        if !ports.is_empty() {
            ind["x_cynex_ports"] = json!(ports);
            od["x_cynex_ports"] = json!(ports);
        }
        for (k, v) in [
            ("x_cynex_country", s.country.clone().map(Value::from)),
            ("x_cynex_asn", s.asn.map(Value::from)),
            ("x_cynex_as_org", s.as_org.clone().map(Value::from)),
        ] {
            if let Some(v) = v {
                ind[k] = v.clone();
                od[k] = v;
            }
        }
        let based = relationship("based-on", &ind_id, &od_id, marking, &nexus_id, &t0);
        let mut objs = vec![sco, od, ind, based];
        if let Some(t) = tool {
            let tobj = tool_object(t, green, &nexus_id, &t0);
            let tid = tobj["id"].as_str().unwrap_or_default().to_string();
            if tools_used.insert(tid.clone()) {
                shared.objects.push(tobj);
            }
            objs.push(relationship("indicates", &ind_id, &tid, marking, &nexus_id, &t0));
        }
        match member {
            Some(org) => {
                rep.member_hosts += 1;
                let b = per_member.entry(org.clone()).or_insert_with(|| Batch {
                    collection: colls[MEMBER_ALERTS].clone(),
                    owner: owner_for(&org),
                    objects: Vec::new(),
                });
                b.objects.extend(objs);
            }
            None => {
                rep.scanners += 1;
                indicator_of.insert(*ip, ind_id);
                shared.objects.extend(objs);
            }
        }
    }

    // Campaigns: the same (tool, ports) description as the campaign detector, members being the
    // published sources that started inside the campaign's span. Each published source's
    // description is made once, and the sources are ordered by first activity, so a campaign
    // looks only at those that started inside its span (not every source for every campaign).
    let mut by_first: Vec<(i64, u32, Option<&str>, BTreeSet<String>)> = srcs
        .iter()
        .filter(|(ip, _)| indicator_of.contains_key(ip))
        .map(|(ip, s)| {
            let ports = s.ports.iter().map(|(p, port)| format!("{port}/{}", proto_name(*p))).collect();
            (s.first, *ip, s.tool.as_ref().map(|(t, _)| t.as_str()), ports)
        })
        .collect();
    by_first.sort_unstable_by_key(|(first, ip, ..)| (*first, *ip));
    for c in &campaigns {
        let ports: BTreeSet<String> = c
            .evidence
            .get("ports")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default();
        let ctool = c.tool.as_deref();
        let start = by_first.partition_point(|(first, ..)| *first < c.time);
        let mut members_of: Vec<u32> = by_first[start..]
            .iter()
            .take_while(|(first, ..)| *first <= c.end_time)
            .filter(|(_, _, tool, p)| *tool == ctool && *p == ports)
            .map(|(_, ip, ..)| *ip)
            .collect();
        members_of.sort_unstable();
        if members_of.is_empty() {
            continue;
        }
        rep.campaigns += 1;
        let tool_name = ctool.unwrap_or("unattributed");
        let port_list = ports.iter().cloned().collect::<Vec<_>>().join(", ");
        let name = format!("Darknet scanning campaign: {tool_name} on {port_list} from {}", format_ms(c.time));
        let camp_id = cynex_id("campaign", &c.id);
        let infra_id = cynex_id("infrastructure", &c.id);
        shared.objects.push(json!({
            "type": "campaign", "spec_version": "2.1", "id": camp_id, "created": t0, "modified": t0,
            "created_by_ref": nexus_id, "name": name, "objective": "reconnaissance of exposed services",
            "description": format!("{} sources acting together: {}.", c.uniques.unwrap_or(0), cynex_analysis::campaigns::METHOD),
            "first_seen": format_ms(c.time), "last_seen": format_ms(c.end_time.max(c.time)),
            "object_marking_refs": [green], "x_cynex_sources": c.uniques.unwrap_or(0), "x_cynex_packets": c.packets,
            "x_cynex_ports": ports.iter().cloned().collect::<Vec<_>>(), "x_cynex_tool": tool_name,
        }));
        shared.objects.push(json!({
            "type": "infrastructure", "spec_version": "2.1", "id": infra_id, "created": t0, "modified": t0,
            "created_by_ref": nexus_id, "name": format!("Scanning hosts of the {tool_name} campaign on {port_list}"),
            "infrastructure_types": [if tool_name == "mirai" { "botnet" } else { "reconnaissance" }],
            "first_seen": format_ms(c.time), "last_seen": format_ms(c.end_time.max(c.time)),
            "object_marking_refs": [green],
        }));
        shared.objects.push(relationship("uses", &camp_id, &infra_id, green, &nexus_id, &t0));
        for ip in members_of {
            shared.objects.push(relationship("consists-of", &infra_id, &ipv4_id(&fmt_ip4(ip)), green, &nexus_id, &t0));
            shared.objects.push(relationship("indicates", &indicator_of[&ip], &camp_id, green, &nexus_id, &t0));
        }
    }

    // DDoS victims in a member's space: AMBER+STRICT, owned by that member.
    for f in findings.iter().filter(|f| f.kind == kind::BACKSCATTER) {
        let (Some(ip), Some(org)) = (f.ip4, f.ip4.and_then(member_of)) else { continue };
        rep.member_victims += 1;
        let ip_s = fmt_ip4(ip);
        let sco_id = ipv4_id(&ip_s);
        let od_id = cynex_id("observed-data", &format!("victim:{}", f.id));
        let vectors = f.traffic.clone().unwrap_or_default();
        let objs = vec![
            json!({"type": "ipv4-addr", "spec_version": "2.1", "id": sco_id, "value": ip_s, "object_marking_refs": [strict]}),
            json!({
                "type": "observed-data", "spec_version": "2.1", "id": od_id, "created": t0, "modified": t0,
                "created_by_ref": nexus_id, "first_observed": format_ms(f.time), "last_observed": format_ms(f.end_time),
                "number_observed": 1, "object_refs": [sco_id], "object_marking_refs": [strict],
                "x_cynex_packets": f.packets, "x_cynex_vectors": vectors, "x_cynex_attacker_16s": f.uniques.unwrap_or(0),
                "x_cynex_estimated_pps": f.rate.unwrap_or(0.0).round(),
            }),
            json!({
                "type": "note", "spec_version": "2.1", "id": cynex_id("note", &format!("victim:{}", f.id)),
                "created": t0, "modified": t0, "created_by_ref": nexus_id,
                "abstract": format!("DDoS against {ip_s}"),
                "content": format!(
                    "The darknet telescope received {} backscatter packets ({vectors}) from {ip_s} between {} and {}: \
                     {ip_s} was answering a flood with spoofed sources (estimated {:.0} packets/s, attackers in {} /16s).",
                    f.packets, format_ms(f.time), format_ms(f.end_time), f.rate.unwrap_or(0.0), f.uniques.unwrap_or(0)
                ),
                "object_refs": [od_id, sco_id], "object_marking_refs": [strict],
            }),
        ];
        per_member
            .entry(org.clone())
            .or_insert_with(|| Batch {
                collection: colls[MEMBER_ALERTS].clone(),
                owner: owner_for(&org),
                objects: Vec::new(),
            })
            .objects
            .extend(objs);
    }

    // One CLEAR report per analysed day: the day's statistics.
    let days: BTreeSet<i64> = findings.iter().map(|f| f.time.div_euclid(DAY_US) * DAY_US).collect();
    if !days.is_empty() {
        let session = QuerySession::open(lake, &QueryOptions::default())?;
        for day in days {
            let r = cynex_analysis::report::build(&session, &opts.scope, day, day + DAY_US).await?;
            if r.current.packets == 0 {
                continue;
            }
            rep.daily_reports += 1;
            let date = &format_ms(day)[..10];
            let c = &r.current;
            let top: Vec<String> =
                c.top_ports.iter().take(5).map(|p| format!("{}/{} {:.1}%", p.port, p.proto, p.share * 100.0)).collect();
            public.objects.push(json!({
                "type": "report", "spec_version": "2.1", "id": cynex_id("report", &format!("{}:{date}", opts.scope)),
                "created": t0, "modified": t0, "created_by_ref": nexus_id,
                "name": format!("cynex darknet observation {date}"),
                "description": format!(
                    "{} packets from {} sources ({:.1} per dark address); research scanners {:.1}%, IoT ports {:.1}%; \
                     top ports {}; {} scan events, {} backscatter attacks.",
                    c.packets, c.unique_sources, c.per_address, c.research_share * 100.0, c.iot_share * 100.0,
                    top.join(", "), c.scan_events, c.backscatter_attacks
                ),
                "report_types": ["threat-report"], "published": format_ms(day + DAY_US - 1000),
                "object_refs": [nexus_id], "object_marking_refs": [tlp::marking_id(Tlp::Clear)],
                "x_cynex_statistics": stix_value(serde_json::to_value(c).unwrap_or(Value::Null)),
            }));
        }
    }

    for b in [public, shared].into_iter().chain(per_member.into_values()) {
        submit_versions(hub, b, opts.chunk, &mut rep).await?;
    }
    Ok(rep)
}

/// Ids looked up in one statement by [`submit_versions`] (SQLite allows 32,766 parameters, older
/// builds 999).
const LOOKUP_CHUNK: usize = 500;

/// Submit objects as new versions where they changed: an object whose content (all but
/// `created`/`modified`) equals the stored latest version is skipped; a changed one keeps its
/// `created` and gets a later `modified`.
async fn submit_versions(hub: &Hub, b: Batch, chunk: usize, rep: &mut PublishReport) -> Result<()> {
    let now = now_us();
    let mut ready = Vec::with_capacity(b.objects.len());
    let mut seen = BTreeSet::new();
    // Objects with a `modified` (SDOs and SROs) are compared with their stored versions, looked
    // up a chunk at a time: one statement per object made an unchanged round of a hundred
    // thousand objects take half a minute.
    let mut versioned: Vec<(String, Value)> = Vec::new();
    for o in b.objects {
        let id = o["id"].as_str().unwrap_or_default().to_string();
        if !seen.insert(id.clone()) {
            continue;
        }
        if o.get("modified").is_none() {
            ready.push(o);
        } else {
            versioned.push((id, o));
        }
    }
    for part in versioned.chunks_mut(LOOKUP_CHUNK) {
        let ids: Vec<String> = part.iter().map(|(id, _)| id.clone()).collect();
        let stored = hub.store.latest_versions(&b.collection.id, &ids).await?;
        for (id, o) in part.iter_mut() {
            let mut o = std::mem::take(o);
            match stored.get(id.as_str()) {
                Some(old) => {
                    let old: Value =
                        serde_json::from_str(&old.body).map_err(|e| Error::Invalid(format!("stored {id}: {e}")))?;
                    if content(&old) == content(&o) {
                        rep.unchanged += 1;
                        continue;
                    }
                    let old_mod = old["modified"].as_str().and_then(parse_timestamp).unwrap_or(0);
                    o["created"] = old["created"].clone();
                    o["modified"] = json!(format_ms(now.max(old_mod + 1000)));
                }
                None => {
                    let t = json!(format_ms(now));
                    o["created"] = t.clone();
                    o["modified"] = t;
                }
            }
            ready.push(o);
        }
    }
    for part in ready.chunks(chunk.max(1)) {
        for r in hub.submit(&b.owner, &b.collection, part.to_vec()).await? {
            match r.outcome {
                Outcome::Added { .. } => rep.added += 1,
                Outcome::Unchanged { .. } => rep.unchanged += 1,
                Outcome::Refused(m) => {
                    rep.refused += 1;
                    tracing::warn!(id = %r.id, reason = %m, "publish: object refused");
                }
            }
        }
    }
    Ok(())
}

/// A value made into STIX custom-property content: floats to 6 decimals (what is published must
/// read back as the same number, and serde_json parses numbers of up to 15 significant digits
/// exactly (Clinger's fast path), not all 17), and properties holding an empty list left out
/// (STIX 2.1 forbids empty lists; a day without attributed tools has no `tools`).
fn stix_value(v: Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => {
            json!((n.as_f64().unwrap_or(0.0) * 1e6).round() / 1e6)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(stix_value).collect()),
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k, stix_value(v)))
                .filter(|(_, v)| !matches!(v, Value::Array(a) if a.is_empty()))
                .collect(),
        ),
        other => other,
    }
}

fn content(v: &Value) -> String {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("created");
        m.remove("modified");
    }
    canonical(&v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stix_values_round_floats_and_leave_out_empty_lists() {
        let v = stix_value(json!({
            "packets": 10, "share": 0.123_456_789_012_345_67, "tools": [],
            "top_ports": [{"port": 23, "share": 0.5, "notes": []}], "nested": {"empty": [], "kept": [1]},
        }));
        assert_eq!(
            v,
            json!({
                "packets": 10, "share": 0.123_457,
                "top_ports": [{"port": 23, "share": 0.5}], "nested": {"kept": [1]},
            })
        );
        let problems = crate::stix::validate(&json!({
            "type": "report", "spec_version": "2.1", "id": "report--bc55e938-9183-5026-b4f2-591d00ded9b6",
            "created": "2026-11-01T00:00:00.000Z", "modified": "2026-11-01T00:00:00.000Z", "name": "day",
            "published": "2026-11-01T23:59:59.000Z", "object_refs": ["identity--bc55e938-9183-5026-b4f2-591d00ded9b6"],
            "x_cynex_statistics": stix_value(json!({"tools": [], "packets": 1})),
        }));
        assert!(problems.is_empty(), "{problems:?}");
    }
}
