use cynex_store::{Error, WatchKind};

use crate::stores;

#[tokio::test]
async fn organisations_prefixes_and_watches_on_both_engines() {
    for t in stores().await {
        let s = &t.store;
        let a = s.add_org("acme").await.unwrap();
        s.add_org("globex").await.unwrap();
        assert!(matches!(s.add_org("acme").await, Err(Error::Exists { .. })), "{}", t.name);
        assert!(matches!(s.add_org("bad name!").await, Err(Error::Invalid(_))), "{}", t.name);
        assert_eq!(s.org(&a.id).await.unwrap().name, "acme");
        assert!(matches!(s.org("nobody").await, Err(Error::NotFound { .. })));

        // Host bits are dropped; adding the same block twice is a no-op.
        s.add_prefix("acme", "192.0.2.77/24".parse().unwrap()).await.unwrap();
        s.add_prefix("acme", "192.0.2.0/24".parse().unwrap()).await.unwrap();
        s.add_prefix("acme", "10.0.0.0/8".parse().unwrap()).await.unwrap();
        s.add_prefix("globex", "198.51.100.0/24".parse().unwrap()).await.unwrap();
        let acme: Vec<String> = s.prefixes(Some("acme")).await.unwrap().iter().map(|p| p.prefix.to_string()).collect();
        assert_eq!(acme, ["10.0.0.0/8", "192.0.2.0/24"], "{}", t.name);
        assert_eq!(s.prefixes(None).await.unwrap().len(), 3);
        s.remove_prefix("acme", "10.0.0.0/8".parse().unwrap()).await.unwrap();
        assert!(s.remove_prefix("acme", "10.0.0.0/8".parse().unwrap()).await.is_err());

        let w = s.add_watch("acme", "port:23/tcp".parse().unwrap()).await.unwrap();
        s.add_watch("acme", "tag:Mirai".parse().unwrap()).await.unwrap();
        s.add_watch("globex", "ip:203.0.113.9".parse().unwrap()).await.unwrap();
        assert!(s.add_watch("acme", "port:23/tcp".parse().unwrap()).await.is_err(), "duplicate watch");
        let ws = s.watches(Some("acme")).await.unwrap();
        assert_eq!(ws.len(), 2);
        assert_eq!(ws[1].what, WatchKind::Tag("mirai".into()));
        // A member cannot remove another member's watch.
        assert!(matches!(s.remove_watch(&w.id, Some("globex")).await, Err(Error::NotFound { .. })));
        s.remove_watch(&w.id, Some("acme")).await.unwrap();
        assert_eq!(s.watches(None).await.unwrap().len(), 2);

        let o = s.set_webhook("acme", Some("http://127.0.0.1:9/hook"), false).await.unwrap();
        assert_eq!(o.webhook_key_version, 0);
        let o = s.set_webhook("acme", Some("http://127.0.0.1:9/hook"), true).await.unwrap();
        assert_eq!(o.webhook_key_version, 1);
        assert!(s.set_webhook("acme", Some("ftp://x"), false).await.is_err());

        // Removing an organisation removes what hangs off it.
        s.remove_org("globex").await.unwrap();
        assert_eq!(s.prefixes(None).await.unwrap().len(), 1, "{}", t.name);
        assert_eq!(s.watches(None).await.unwrap().len(), 1, "{}", t.name);
        t.finish().await;
    }
}

#[test]
fn watch_specs_are_checked() {
    for bad in ["port:99999", "port:80/sctp", "prefix:300.1.1.1", "colour:red", "tag:", "nocolon"] {
        assert!(bad.parse::<WatchKind>().is_err(), "{bad}");
    }
    assert_eq!("port:53/udp".parse::<WatchKind>().unwrap(), WatchKind::Port { port: 53, proto: Some(17) });
    assert_eq!("port:443".parse::<WatchKind>().unwrap(), WatchKind::Port { port: 443, proto: None });
}
