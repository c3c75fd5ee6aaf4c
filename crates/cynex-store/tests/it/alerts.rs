use cynex_store::{Alert, AlertFilter, DeliveryOutcome, Error};

use crate::stores;

fn alert(org_id: &str, subject: &str, first: i64) -> Alert {
    Alert {
        id: format!("a-{subject}-{first}"),
        org_id: org_id.into(),
        kind: "infected-host".into(),
        subject: subject.into(),
        watch_id: None,
        first_seen: first,
        last_seen: first + 10,
        findings: 1,
        packets: 5,
        summary: "s".into(),
        evidence: serde_json::json!({"ports": [23]}),
        status: "open".into(),
        created: 1,
        updated: 1,
    }
}

#[tokio::test]
async fn alerts_links_and_deliveries_on_both_engines() {
    for t in stores().await {
        let s = &t.store;
        let acme = s.add_org("acme").await.unwrap();
        let globex = s.add_org("globex").await.unwrap();

        let mut tx = s.begin_alerts().await.unwrap();
        let mut a = alert(&acme.id, "192.0.2.1", 100);
        tx.save_alert(&a).await.unwrap();
        tx.link(&acme.id, "space", "f1", &a.id).await.unwrap();
        tx.queue_delivery(&a, "alert.created", "http://127.0.0.1:9/").await.unwrap();
        assert!(tx.is_linked(&acme.id, "space", "f1").await.unwrap());
        assert!(!tx.is_linked(&globex.id, "space", "f1").await.unwrap());
        tx.commit().await.unwrap();

        // An uncommitted transaction leaves nothing behind.
        let mut tx = s.begin_alerts().await.unwrap();
        tx.save_alert(&alert(&acme.id, "192.0.2.2", 100)).await.unwrap();
        drop(tx);
        assert_eq!(s.alerts(&AlertFilter::default()).await.unwrap().len(), 1, "{}", t.name);

        // Extending the incident updates the row in place.
        let mut tx = s.begin_alerts().await.unwrap();
        let open = tx.open_incident(&acme.id, "infected-host", "192.0.2.1", 105).await.unwrap().unwrap();
        assert_eq!(open.id, a.id);
        assert!(tx.open_incident(&acme.id, "infected-host", "192.0.2.1", 111).await.unwrap().is_none());
        a.last_seen = 500;
        a.findings = 2;
        tx.save_alert(&a).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(s.alert(&a.id, None).await.unwrap().last_seen, 500);

        // Another member can neither read nor acknowledge it.
        assert!(matches!(s.alert(&a.id, Some(&globex.id)).await, Err(Error::NotFound { .. })), "{}", t.name);
        assert!(s.ack_alert(&a.id, Some(&globex.id)).await.is_err());
        assert!(s
            .alerts(&AlertFilter { org_id: Some(globex.id.clone()), ..Default::default() })
            .await
            .unwrap()
            .is_empty());
        assert_eq!(s.ack_alert(&a.id, Some(&acme.id)).await.unwrap().status, "acknowledged");

        // Retry bookkeeping.
        let due = s.due_deliveries(i64::MAX, 10).await.unwrap();
        assert_eq!(due.len(), 1);
        let d = &due[0];
        s.record_attempt(
            &d.id,
            &DeliveryOutcome::Failed { status: Some(503), error: "busy".into(), next_attempt: Some(1_000) },
        )
        .await
        .unwrap();
        assert!(s.due_deliveries(999, 10).await.unwrap().is_empty());
        assert_eq!(s.next_delivery_due().await.unwrap(), Some(1_000));
        s.record_attempt(&d.id, &DeliveryOutcome::Delivered { status: 200 }).await.unwrap();
        let ds = s.deliveries(Some(&a.id)).await.unwrap();
        assert_eq!((ds[0].status.as_str(), ds[0].attempts, ds[0].response_status), ("delivered", 2, Some(200)));
        assert_eq!(s.next_delivery_due().await.unwrap(), None, "{}", t.name);

        // The matched-up-to cursor: per scope, absent until set, then moved by each set.
        assert_eq!(s.alert_cursor("all").await.unwrap(), None, "{}", t.name);
        s.set_alert_cursor("all", 7).await.unwrap();
        s.set_alert_cursor("other", 3).await.unwrap();
        s.set_alert_cursor("all", 12).await.unwrap();
        assert_eq!(s.alert_cursor("all").await.unwrap(), Some(12), "{}", t.name);
        assert_eq!(s.alert_cursor("other").await.unwrap(), Some(3), "{}", t.name);
        assert!(s.set_alert_cursor("all", u64::MAX).await.is_err());
        t.finish().await;
    }
}
