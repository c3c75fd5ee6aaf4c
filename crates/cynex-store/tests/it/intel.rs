//! The intelligence store's access rule on both engines: for every TLP and every kind of viewer,
//! what a listing, a count, the versions and the correlation index show — and that paging with
//! `after` neither repeats nor skips.

use cynex_store::{
    AddOutcome, CollectionAccess, NewObject, ObjectQuery, OrgKind, Role, Store, Tlp, VersionFilter, Viewer,
};

use crate::stores;

fn obj(id: &str, version: &str, tlp: Tlp, owner: &str, user: Option<&str>) -> NewObject {
    NewObject {
        id: id.into(),
        type_: id.split("--").next().unwrap().into(),
        spec_version: "2.1".into(),
        version: version.into(),
        version_us: if version.is_empty() { 0 } else { cynex_model::time::parse_rfc3339_us(version).unwrap() },
        tlp,
        owner_org: owner.into(),
        owner_user: user.map(str::to_string),
        audience_orgs: Vec::new(),
        audience_users: Vec::new(),
        refs: Vec::new(),
        values: Vec::new(),
        body: format!("{{\"id\":\"{id}\",\"modified\":\"{version}\"}}"),
    }
}

struct World {
    coll: String,
    acme: Viewer,
    globex: Viewer,
    initech: Viewer,
    alice: Viewer,
}

async fn world(s: &Store) -> World {
    let nexus = s.add_org_of_kind("nexus", OrgKind::Operator).await.unwrap();
    let acme = s.add_org("acme").await.unwrap();
    let globex = s.add_org("globex").await.unwrap();
    let initech = s.add_org("initech").await.unwrap();
    let alice = s.add_user("alice", "acme", Role::Member, None).await.unwrap();
    let bob = s.add_user("bob", "acme", Role::Member, None).await.unwrap();
    let _ = nexus;
    let c = s
        .add_collection("shared", "Shared", "", CollectionAccess::Members, CollectionAccess::Members, Tlp::Amber)
        .await
        .unwrap();
    let v = |org: &str, user: &str| Viewer { org_id: Some(org.into()), user_id: Some(user.into()), operator: false };
    let w = World {
        coll: c.id.clone(),
        acme: v(&acme.id, &bob.id),
        globex: v(&globex.id, "g-user"),
        initech: v(&initech.id, "i-user"),
        alice: v(&acme.id, &alice.id),
    };
    // One object per TLP, all produced by acme (alice posting); AMBER shared with globex; RED
    // shared with nobody but alice (the poster).
    let mut objs = Vec::new();
    for (i, tlp) in Tlp::ALL.iter().enumerate() {
        let mut o = obj(
            &format!("indicator--00000000-0000-4000-8000-00000000000{i}"),
            "2026-11-01T00:00:00Z",
            *tlp,
            &acme.id,
            Some(&alice.id),
        );
        if *tlp == Tlp::Amber {
            o.audience_orgs = vec![globex.id.clone()];
        }
        o.values = vec![format!("198.51.100.{i}")];
        objs.push(o);
    }
    let out = s.add_objects(&c.id, &objs).await.unwrap();
    assert!(out.iter().all(|o| matches!(o, AddOutcome::Added { .. })), "{out:?}");
    w
}

fn ids(page: &cynex_store::Page<cynex_store::StoredObject>) -> Vec<String> {
    page.items.iter().map(|o| o.meta.id.chars().last().unwrap().to_string()).collect()
}

#[tokio::test]
async fn tlp_decides_what_each_viewer_sees_on_both_engines() {
    for t in stores().await {
        let s = &t.store;
        let w = world(s).await;
        let q = ObjectQuery { collection_id: w.coll.clone(), limit: 100, ..Default::default() };
        // 0 clear, 1 green, 2 amber (acme + globex), 3 amber+strict (acme), 4 red (alice).
        let cases: [(&str, &Viewer, &[&str]); 5] = [
            ("acme (bob)", &w.acme, &["0", "1", "2", "3"]),
            ("acme (alice, named on RED)", &w.alice, &["0", "1", "2", "3", "4"]),
            ("globex (named on AMBER)", &w.globex, &["0", "1", "2"]),
            ("initech", &w.initech, &["0", "1"]),
            ("anonymous", &Viewer::anonymous(), &["0"]),
        ];
        for (who, v, want) in cases {
            let page = s.objects(v, &q).await.unwrap();
            assert_eq!(ids(&page), want, "{} sees as {who}", t.name);
            // Counting happens after filtering: nothing leaks by count.
            assert_eq!(s.count_objects(v, &w.coll).await.unwrap(), want.len() as i64, "{} count as {who}", t.name);
            assert_eq!(s.manifest(v, &q).await.unwrap().items.len(), want.len(), "{} manifest as {who}", t.name);
            // The correlation index also applies the collection's read access (a members
            // collection is nothing to anonymous readers); listings leave that to the caller.
            for i in 0..5 {
                let hits = s.objects_mentioning(v, &format!("198.51.100.{i}"), 10).await.unwrap();
                assert_eq!(
                    hits.len(),
                    usize::from(want.contains(&i.to_string().as_str()) && v.org_id.is_some()),
                    "{} correlation {i} as {who}",
                    t.name
                );
            }
        }
        t.finish().await;
    }
}

#[tokio::test]
async fn versions_paging_refs_and_ownership_on_both_engines() {
    for t in stores().await {
        let s = &t.store;
        let w = world(s).await;
        let acme_id = w.acme.org_id.clone().unwrap();
        let globex_id = w.globex.org_id.clone().unwrap();
        // Versions: the latest visible one by default; first, all, exact.
        let id = "malware--11111111-1111-4111-8111-111111111111";
        let v1 = obj(id, "2026-11-01T00:00:00.000Z", Tlp::Green, &acme_id, None);
        let v2 = obj(id, "2026-11-02T00:00:00.000Z", Tlp::Green, &acme_id, None);
        let v3 = obj(id, "2026-11-03T00:00:00.000Z", Tlp::AmberStrict, &acme_id, None);
        s.add_objects(&w.coll, &[v1.clone(), v3, v2.clone()]).await.unwrap();
        // The publisher's lookup: the newest version (added before an older one here) of each
        // id asked for, whoever may see it; ids never stored are absent; none asked, none found.
        let other = "indicator--00000000-0000-4000-8000-000000000001";
        let unknown = "indicator--99999999-9999-4999-8999-999999999999";
        let asked = [id.to_string(), other.to_string(), unknown.to_string()];
        let latest = s.latest_versions(&w.coll, &asked).await.unwrap();
        assert_eq!(latest.len(), 2, "{}", t.name);
        assert_eq!(latest[id].meta.version, "2026-11-03T00:00:00.000Z", "{}", t.name);
        assert_eq!(latest[id].meta.tlp, Tlp::AmberStrict, "{}", t.name);
        assert!(latest[id].body.contains("2026-11-03"), "{}", t.name);
        assert_eq!(latest[other].meta.version, "2026-11-01T00:00:00Z", "{}", t.name);
        assert!(s.latest_versions(&w.coll, &[]).await.unwrap().is_empty(), "{}", t.name);
        assert!(s.latest_versions("no-such-collection", &asked).await.unwrap().is_empty(), "{}", t.name);
        let one = |versions: VersionFilter| ObjectQuery {
            collection_id: w.coll.clone(),
            ids: vec![id.into()],
            versions,
            limit: 10,
            ..Default::default()
        };
        let vers = |p: cynex_store::Page<cynex_store::StoredObject>| {
            p.items.into_iter().map(|o| o.meta.version).collect::<Vec<_>>()
        };
        assert_eq!(
            vers(s.objects(&w.acme, &one(VersionFilter::default())).await.unwrap()),
            ["2026-11-03T00:00:00.000Z"],
            "{}",
            t.name
        );
        // globex cannot see v3: its "last" is v2, and v3 does not exist for it.
        assert_eq!(
            vers(s.objects(&w.globex, &one(VersionFilter::default())).await.unwrap()),
            ["2026-11-02T00:00:00.000Z"],
            "{}",
            t.name
        );
        let all = VersionFilter { all: true, ..VersionFilter::default() };
        assert_eq!(s.objects(&w.globex, &one(all.clone())).await.unwrap().items.len(), 2, "{}", t.name);
        assert_eq!(
            s.object_versions(&w.globex, &w.coll, id, None, &[], 10).await.unwrap().items.len(),
            2,
            "{}",
            t.name
        );
        assert_eq!(s.object_versions(&w.acme, &w.coll, id, None, &[], 10).await.unwrap().items.len(), 3, "{}", t.name);
        let first = VersionFilter { last: false, first: true, ..VersionFilter::default() };
        assert_eq!(vers(s.objects(&w.globex, &one(first)).await.unwrap()), ["2026-11-01T00:00:00.000Z"], "{}", t.name);
        let exact =
            VersionFilter { last: false, exact: vec!["2026-11-03T00:00:00.000Z".into()], ..VersionFilter::default() };
        assert!(s.objects(&w.globex, &one(exact)).await.unwrap().items.is_empty(), "{}", t.name);

        // Duplicates are not errors; a different object under the same version is refused, and
        // so is a version from another organisation.
        let again = s.add_objects(&w.coll, std::slice::from_ref(&v1)).await.unwrap();
        assert!(matches!(again[0], AddOutcome::Duplicate { .. }), "{again:?}");
        let mut changed = v1.clone();
        changed.body = "{\"different\":true}".into();
        assert!(matches!(s.add_objects(&w.coll, &[changed]).await.unwrap()[0], AddOutcome::Refused(_)));
        let hijack = obj(id, "2026-11-09T00:00:00.000Z", Tlp::Green, &globex_id, None);
        match &s.add_objects(&w.coll, &[hijack]).await.unwrap()[0] {
            AddOutcome::Refused(m) => assert!(m.contains("another organisation"), "{m}"),
            o => panic!("{o:?}"),
        }
        // The same rules inside one write: a repeat is a duplicate of the first, a changed body
        // under the same version is refused, another organisation's version of a new id is too.
        let fresh = "indicator--33333333-3333-4333-8333-333333333333";
        let a = obj(fresh, "2026-11-01T00:00:00.000Z", Tlp::Green, &acme_id, None);
        let mut a_changed = a.clone();
        a_changed.body = "{\"changed\":true}".into();
        let g = obj(fresh, "2026-11-02T00:00:00.000Z", Tlp::Green, &globex_id, None);
        let out = s.add_objects(&w.coll, &[a.clone(), a.clone(), a_changed, g]).await.unwrap();
        let AddOutcome::Added { date_added } = out[0] else { panic!("{out:?}") };
        assert!(matches!(out[1], AddOutcome::Duplicate { date_added: d } if d == date_added), "{out:?}");
        assert!(matches!(&out[2], AddOutcome::Refused(m) if m.contains("different content")), "{out:?}");
        assert!(matches!(&out[3], AddOutcome::Refused(m) if m.contains("another organisation")), "{out:?}");

        // A relationship is hidden from whoever cannot see an object it points to.
        let mut rel = obj(
            "relationship--22222222-2222-4222-8222-222222222222",
            "2026-11-01T00:00:00.000Z",
            Tlp::Green,
            &acme_id,
            None,
        );
        rel.refs = vec![
            "indicator--00000000-0000-4000-8000-000000000003".into(),
            "indicator--00000000-0000-4000-8000-000000000001".into(),
        ];
        let mut rel_ok = obj(
            "relationship--33333333-3333-4333-8333-333333333333",
            "2026-11-01T00:00:00.000Z",
            Tlp::Green,
            &acme_id,
            None,
        );
        rel_ok.refs = vec![
            "indicator--00000000-0000-4000-8000-000000000001".into(),
            "identity--99999999-9999-4999-8999-999999999999".into(),
        ];
        s.add_objects(&w.coll, &[rel, rel_ok]).await.unwrap();
        let rels = ObjectQuery {
            collection_id: w.coll.clone(),
            types: vec!["relationship".into()],
            limit: 10,
            ..Default::default()
        };
        assert_eq!(s.objects(&w.acme, &rels).await.unwrap().items.len(), 2, "{}", t.name);
        let g = s.objects(&w.globex, &rels).await.unwrap();
        assert_eq!(g.items.len(), 1, "{}: the edge to an AMBER+STRICT node is hidden", t.name);
        assert!(g.items[0].meta.id.starts_with("relationship--3333"));
        // + 1: the GREEN indicator of the one-write case above.
        assert_eq!(s.count_objects(&w.globex, &w.coll).await.unwrap(), 3 + 2 + 1 + 1, "{}", t.name);

        // Paging by `after` over what a viewer sees: every object once, in date_added order.
        let mut many = Vec::new();
        for i in 0..57 {
            let tlp = if i % 3 == 0 { Tlp::AmberStrict } else { Tlp::Green };
            many.push(obj(
                &format!("identity--{:08}-0000-4000-8000-000000000000", i),
                "2026-11-01T00:00:00.000Z",
                tlp,
                &acme_id,
                None,
            ));
        }
        s.add_objects(&w.coll, &many).await.unwrap();
        for (v, want) in [(&w.acme, 57), (&w.globex, 38)] {
            let mut after = None;
            let mut seen = Vec::new();
            let mut last_date = i64::MIN;
            loop {
                let q = ObjectQuery {
                    collection_id: w.coll.clone(),
                    after,
                    types: vec!["identity".into()],
                    limit: 10,
                    ..Default::default()
                };
                let p = s.objects(v, &q).await.unwrap();
                assert!(p.items.len() == 10 || !p.more, "full pages while more");
                for o in &p.items {
                    assert!(o.meta.date_added > last_date, "strictly increasing date_added");
                    last_date = o.meta.date_added;
                    seen.push(o.meta.id.clone());
                }
                after = p.items.last().map(|o| o.meta.date_added);
                if !p.more {
                    break;
                }
            }
            let mut uniq = seen.clone();
            uniq.sort();
            uniq.dedup();
            assert_eq!((seen.len(), uniq.len()), (want, want), "{}", t.name);
        }

        // Deleting: only the owner (or an admin), and only what the deleter can see.
        let del = VersionFilter { all: true, ..VersionFilter::default() };
        assert!(matches!(
            s.delete_object(&w.globex, false, &w.coll, id, &del, &[]).await,
            Err(cynex_store::Error::Forbidden(_))
        ));
        assert_eq!(
            s.delete_object(&w.initech, false, &w.coll, "malware--00000000-0000-4000-8000-000000000000", &del, &[])
                .await
                .unwrap(),
            None
        );
        assert_eq!(s.delete_object(&w.acme, false, &w.coll, id, &del, &[]).await.unwrap(), Some(3));
        assert!(s.objects(&w.acme, &one(VersionFilter::default())).await.unwrap().items.is_empty());
        t.finish().await;
    }
}
