//! The contract every [`AlertStore`] implementation must keep.
//!
//! What it pins down: rules, webhooks, report recipients, annotations, firings and
//! deliveries come back as written, field for field (options set and unset, every variant,
//! any text); the `put_*` methods replace by id; a webhook id is unique (`Conflict`); a
//! delete takes only the site's own row and says whether there was one; annotations come in
//! a half-open time range, by time; firings come newest first, and the latest of each rule
//! is exactly its newest; a delivery is queued once (a second one with its id changes
//! nothing); due deliveries are the pending ones whose next attempt has come, oldest first;
//! an update stores a delivery's new state; a site's deliveries come newest first, of one
//! status or all; deleting a site's alerts takes its rows of every kind and nothing of other
//! sites.

use std::future::Future;

use heartbeat_model::{
    AlertCondition, AlertEvent, AlertRule, Annotation, AnnotationKind, AnomalyDirection, Delivery,
    DeliveryStatus, DeliveryTarget, ReportPeriod, ReportSubscription, SiteId, Webhook,
    WebhookFormat,
};

use crate::{AlertStore, StoreError};

/// Runs every check, each on a fresh store from `make`.
pub async fn check_alert_store<S, F, Fut>(make: F)
where
    S: AlertStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    rules_come_back_and_are_replaced(make().await).await;
    webhooks_come_back_and_ids_are_unique(make().await).await;
    report_subscriptions_come_back_and_are_replaced(make().await).await;
    annotations_in_a_time_range(make().await).await;
    alert_events_newest_first_and_latest_per_rule(make().await).await;
    a_delivery_is_queued_once(make().await).await;
    due_deliveries_are_pending_and_oldest_first(make().await).await;
    deliveries_update_and_list_by_status(make().await).await;
    deleting_a_site_takes_its_alerts_only(make().await).await;
}

const A: &str = "a.example";
const B: &str = "b.example";

fn sorted<T, K: Ord>(mut items: Vec<T>, by: impl Fn(&T) -> K) -> Vec<T> {
    items.sort_by_key(|item| by(item));
    items
}

fn ids<T>(items: &[T], id: impl Fn(&T) -> &str) -> Vec<String> {
    items.iter().map(|item| id(item).to_owned()).collect()
}

fn rule(id: &str, site: &str, condition: AlertCondition) -> AlertRule {
    AlertRule {
        id: id.to_owned(),
        site_id: SiteId::from(site),
        name: format!("Règle {id} ⚠️"),
        metric: "visitors".to_owned(),
        filters_json: "[]".to_owned(),
        window_minutes: 60,
        condition,
        cooldown_minutes: 30,
        webhook_ids: Vec::new(),
        emails: Vec::new(),
        enabled: true,
        created_at_ms: 1_770_000_000_000,
    }
}

fn webhook(id: &str, site: &str, format: WebhookFormat) -> Webhook {
    Webhook {
        id: id.to_owned(),
        site_id: SiteId::from(site),
        url: format!("https://hooks.example/{id}?name=größe"),
        format,
        secret: format!("secret-{id}"),
        created_at_ms: 1_770_000_000_000,
    }
}

fn subscription(id: &str, site: &str, period: ReportPeriod) -> ReportSubscription {
    ReportSubscription {
        id: id.to_owned(),
        site_id: SiteId::from(site),
        email: format!("zoë+{id}@例え.jp"),
        period,
        unsubscribe_token: format!("token-{id}"),
        last_sent_period: None,
        created_at_ms: 1_770_000_000_000,
    }
}

fn annotation(id: &str, site: &str, at_ms: i64) -> Annotation {
    Annotation {
        id: id.to_owned(),
        site_id: SiteId::from(site),
        at_ms,
        text: format!("Launch {id} 🚀, „Relaunch“"),
        kind: AnnotationKind::Note,
        alert_event_id: None,
        created_at_ms: 1_770_000_000_000,
    }
}

fn firing(id: &str, rule: &str, site: &str, fired_at_ms: i64) -> AlertEvent {
    AlertEvent {
        id: id.to_owned(),
        rule_id: rule.to_owned(),
        site_id: SiteId::from(site),
        fired_at_ms,
        resolved_at_ms: None,
        value: 0.1 + fired_at_ms as f64,
        expected: 1e-9,
        message: format!("Visitors {id} fell below 10 — Besucher < 10"),
    }
}

fn delivery(id: &str, site: &str, next_attempt_ms: i64, created_at_ms: i64) -> Delivery {
    Delivery {
        id: id.to_owned(),
        site_id: SiteId::from(site),
        target: DeliveryTarget::Webhook {
            webhook_id: format!("wh-{id}"),
        },
        kind: "alert".to_owned(),
        payload: format!(r#"{{"text":"{id} ✓ Überschritten"}}"#),
        status: DeliveryStatus::Pending,
        attempts: 0,
        next_attempt_ms,
        last_error: None,
        created_at_ms,
        delivered_at_ms: None,
    }
}

async fn rules_come_back_and_are_replaced(store: impl AlertStore) {
    assert!(
        store.alert_rules().await.unwrap().is_empty(),
        "a new store has no rules"
    );
    let mut above = rule("r1", A, AlertCondition::Above { threshold: 1.5 });
    above.webhook_ids = vec!["wh1".into(), "wh2".into()];
    above.emails = vec!["ann@example.com".into(), "zoë@例え.jp".into()];
    above.filters_json = r#"[["is","visit:country",["DE"]]]"#.into();
    let mut below = rule("r2", A, AlertCondition::Below { threshold: 0.25 });
    below.enabled = false;
    below.metric = "conversion_rate".into();
    below.window_minutes = 1440;
    below.cooldown_minutes = 0;
    let anomaly = |id: &str, direction| {
        rule(
            id,
            B,
            AlertCondition::Anomaly {
                direction,
                sensitivity: 3.5,
                weeks: 4,
            },
        )
    };
    let mut no_events = rule("r6", B, AlertCondition::NoEvents);
    no_events.metric = "events".into();
    no_events.window_minutes = 1;
    let written = vec![
        above,
        below,
        anomaly("r3", AnomalyDirection::Up),
        anomaly("r4", AnomalyDirection::Down),
        anomaly("r5", AnomalyDirection::Both),
        no_events,
    ];
    for r in &written {
        store.put_alert_rule(r).await.unwrap();
    }
    assert_eq!(
        sorted(store.alert_rules().await.unwrap(), |r| r.id.clone()),
        written,
        "rules come back field for field"
    );

    let mut replaced = written[0].clone();
    replaced.name = "Renamed".into();
    replaced.condition = AlertCondition::NoEvents;
    replaced.webhook_ids.clear();
    replaced.emails = vec!["bob@example.com".into()];
    replaced.enabled = false;
    store.put_alert_rule(&replaced).await.unwrap();
    let mut expected = written.clone();
    expected[0] = replaced;
    assert_eq!(
        sorted(store.alert_rules().await.unwrap(), |r| r.id.clone()),
        expected,
        "a put replaces the rule with its id"
    );

    let (a, b) = (SiteId::from(A), SiteId::from(B));
    let fired = firing("e1", "r1", A, 10);
    store.put_alert_event(&fired).await.unwrap();
    assert!(
        !store.delete_alert_rule(&b, "r1").await.unwrap(),
        "another site's rule is not deleted"
    );
    assert!(
        !store.delete_alert_rule(&a, "missing").await.unwrap(),
        "an unknown rule is not deleted"
    );
    assert!(store.delete_alert_rule(&a, "r1").await.unwrap());
    assert_eq!(
        sorted(store.alert_rules().await.unwrap(), |r| r.id.clone()),
        expected[1..].to_vec(),
        "a deleted rule is gone, the others stay"
    );
    assert_eq!(
        store.alert_events(&a, 10).await.unwrap(),
        vec![fired],
        "its history stays"
    );
}

async fn webhooks_come_back_and_ids_are_unique(store: impl AlertStore) {
    assert!(store.webhooks().await.unwrap().is_empty());
    let written = vec![
        webhook("wh1", A, WebhookFormat::Json),
        webhook("wh2", A, WebhookFormat::Slack),
        webhook("wh3", B, WebhookFormat::Json),
    ];
    for w in &written {
        store.insert_webhook(w).await.unwrap();
    }
    assert_eq!(
        sorted(store.webhooks().await.unwrap(), |w| w.id.clone()),
        written,
        "webhooks come back field for field"
    );
    assert!(
        matches!(
            store
                .insert_webhook(&webhook("wh1", B, WebhookFormat::Slack))
                .await,
            Err(StoreError::Conflict { .. })
        ),
        "a taken webhook id is a conflict, across sites"
    );
    assert_eq!(
        sorted(store.webhooks().await.unwrap(), |w| w.id.clone()),
        written,
        "a conflict changes nothing"
    );

    let (a, b) = (SiteId::from(A), SiteId::from(B));
    assert!(!store.delete_webhook(&b, "wh1").await.unwrap());
    assert!(!store.delete_webhook(&a, "missing").await.unwrap());
    assert!(store.delete_webhook(&a, "wh1").await.unwrap());
    assert!(
        !store.delete_webhook(&a, "wh1").await.unwrap(),
        "a deleted webhook is gone"
    );
    assert_eq!(
        sorted(store.webhooks().await.unwrap(), |w| w.id.clone()),
        written[1..].to_vec()
    );
}

async fn report_subscriptions_come_back_and_are_replaced(store: impl AlertStore) {
    assert!(store.report_subscriptions().await.unwrap().is_empty());
    let mut sent = subscription("s2", A, ReportPeriod::Monthly);
    sent.last_sent_period = Some("2026-01-01".into());
    let written = vec![
        subscription("s1", A, ReportPeriod::Weekly),
        sent,
        subscription("s3", B, ReportPeriod::Weekly),
    ];
    for s in &written {
        store.put_report_subscription(s).await.unwrap();
    }
    assert_eq!(
        sorted(store.report_subscriptions().await.unwrap(), |s| s
            .id
            .clone()),
        written,
        "report recipients come back field for field"
    );

    let mut replaced = written[0].clone();
    replaced.last_sent_period = Some("2026-02-02".into());
    replaced.period = ReportPeriod::Monthly;
    let mut cleared = written[1].clone();
    cleared.last_sent_period = None;
    store.put_report_subscription(&replaced).await.unwrap();
    store.put_report_subscription(&cleared).await.unwrap();
    assert_eq!(
        sorted(store.report_subscriptions().await.unwrap(), |s| s
            .id
            .clone()),
        vec![replaced, cleared.clone(), written[2].clone()],
        "a put replaces the recipient with its id"
    );

    let (a, b) = (SiteId::from(A), SiteId::from(B));
    assert!(!store.delete_report_subscription(&b, "s1").await.unwrap());
    assert!(!store
        .delete_report_subscription(&a, "missing")
        .await
        .unwrap());
    assert!(store.delete_report_subscription(&a, "s1").await.unwrap());
    assert_eq!(
        sorted(store.report_subscriptions().await.unwrap(), |s| s
            .id
            .clone()),
        vec![cleared, written[2].clone()]
    );
}

async fn annotations_in_a_time_range(store: impl AlertStore) {
    let (a, b) = (SiteId::from(A), SiteId::from(B));
    assert!(store
        .annotations(&a, i64::MIN, i64::MAX)
        .await
        .unwrap()
        .is_empty());
    let mut alert = annotation("n2", A, 200);
    alert.kind = AnnotationKind::Alert;
    alert.alert_event_id = Some("ev-1".into());
    // Written out of time order, and one of another site inside the range.
    let written = [
        annotation("n3", A, 300),
        alert.clone(),
        annotation("n1", A, 100),
        annotation("n0", A, 99),
        annotation("other", B, 150),
    ];
    for n in &written {
        store.put_annotation(n).await.unwrap();
    }
    assert_eq!(
        store.annotations(&a, 100, 300).await.unwrap(),
        vec![annotation("n1", A, 100), alert.clone()],
        "from is inclusive, to exclusive, by time, of the site only"
    );
    assert_eq!(
        ids(
            &store.annotations(&a, i64::MIN, i64::MAX).await.unwrap(),
            |n| &n.id
        ),
        ["n0", "n1", "n2", "n3"],
        "every annotation of the site, by time"
    );
    assert!(store.annotations(&a, 301, 400).await.unwrap().is_empty());

    let mut moved = annotation("n3", A, 50);
    moved.text = "Moved".into();
    store.put_annotation(&moved).await.unwrap();
    assert_eq!(
        store.annotations(&a, i64::MIN, 100).await.unwrap(),
        vec![moved, annotation("n0", A, 99)],
        "a put replaces the annotation with its id"
    );

    assert!(!store.delete_annotation(&b, "n1").await.unwrap());
    assert!(!store.delete_annotation(&a, "missing").await.unwrap());
    assert!(store.delete_annotation(&a, "n1").await.unwrap());
    assert_eq!(
        ids(
            &store.annotations(&a, i64::MIN, i64::MAX).await.unwrap(),
            |n| &n.id
        ),
        ["n3", "n0", "n2"]
    );
    assert_eq!(
        store.annotations(&b, i64::MIN, i64::MAX).await.unwrap(),
        vec![annotation("other", B, 150)]
    );
}

async fn alert_events_newest_first_and_latest_per_rule(store: impl AlertStore) {
    let (a, b) = (SiteId::from(A), SiteId::from(B));
    assert!(store.alert_events(&a, 10).await.unwrap().is_empty());
    assert!(store.latest_alert_events().await.unwrap().is_empty());
    for e in [
        firing("e1", "r1", A, 10),
        firing("e3", "r1", A, 30),
        firing("e2", "r1", A, 20),
        firing("e5", "r2", A, 15),
        firing("e4", "r2", A, 5),
        firing("e6", "r3", B, 40),
    ] {
        store.put_alert_event(&e).await.unwrap();
    }
    assert_eq!(
        store.alert_events(&a, 10).await.unwrap(),
        vec![
            firing("e3", "r1", A, 30),
            firing("e2", "r1", A, 20),
            firing("e5", "r2", A, 15),
            firing("e1", "r1", A, 10),
            firing("e4", "r2", A, 5),
        ],
        "a site's firings come newest first, field for field"
    );
    assert_eq!(
        ids(&store.alert_events(&a, 2).await.unwrap(), |e| &e.id),
        ["e3", "e2"],
        "at most limit"
    );
    assert_eq!(
        ids(&store.alert_events(&b, 10).await.unwrap(), |e| &e.id),
        ["e6"]
    );
    assert_eq!(
        sorted(store.latest_alert_events().await.unwrap(), |e| e
            .rule_id
            .clone()),
        vec![
            firing("e3", "r1", A, 30),
            firing("e5", "r2", A, 15),
            firing("e6", "r3", B, 40),
        ],
        "the newest firing of every rule, of every site"
    );

    let mut resolved = firing("e3", "r1", A, 30);
    resolved.resolved_at_ms = Some(35);
    resolved.message = "Resolved ✓".into();
    store.put_alert_event(&resolved).await.unwrap();
    store
        .put_alert_event(&firing("e7", "r2", A, 50))
        .await
        .unwrap();
    assert_eq!(
        sorted(store.latest_alert_events().await.unwrap(), |e| e
            .rule_id
            .clone()),
        vec![
            resolved.clone(),
            firing("e7", "r2", A, 50),
            firing("e6", "r3", B, 40),
        ],
        "a put replaces the firing with its id; a newer firing becomes the latest"
    );
    assert_eq!(
        ids(&store.alert_events(&a, 10).await.unwrap(), |e| &e.id),
        ["e7", "e3", "e2", "e5", "e1", "e4"],
        "a resolution replaces, it adds no firing"
    );
}

async fn a_delivery_is_queued_once(store: impl AlertStore) {
    let a = SiteId::from(A);
    let mut first = delivery("d1", A, 100, 1);
    first.target = DeliveryTarget::Email {
        to: "zoë@例え.jp".into(),
    };
    first.kind = "report".into();
    assert!(store.insert_delivery(&first).await.unwrap());
    let mut again = delivery("d1", A, 5, 2);
    again.payload = "{}".into();
    again.status = DeliveryStatus::Failed;
    assert!(
        !store.insert_delivery(&again).await.unwrap(),
        "a delivery with a taken id is not queued"
    );
    assert_eq!(
        store.deliveries(&a, None, 10).await.unwrap(),
        vec![first.clone()],
        "and the first is left untouched"
    );

    let mut done = delivery("d2", A, 100, 3);
    done.status = DeliveryStatus::Delivered;
    done.attempts = 2;
    done.last_error = Some("timeout après 10 s".into());
    done.delivered_at_ms = Some(120);
    let mut failed = delivery("d3", A, 100, 4);
    failed.status = DeliveryStatus::Failed;
    failed.attempts = u32::MAX;
    failed.last_error = Some("HTTP 410 Gone".into());
    for d in [&done, &failed] {
        assert!(store.insert_delivery(d).await.unwrap());
    }
    assert_eq!(
        store.deliveries(&a, None, 10).await.unwrap(),
        vec![failed, done, first],
        "deliveries come back field for field, every status"
    );
}

async fn due_deliveries_are_pending_and_oldest_first(store: impl AlertStore) {
    assert!(store.due_deliveries(i64::MAX, 10).await.unwrap().is_empty());
    let mut delivered = delivery("delivered", A, 10, 1);
    delivered.status = DeliveryStatus::Delivered;
    delivered.delivered_at_ms = Some(11);
    let mut failed = delivery("failed", A, 10, 1);
    failed.status = DeliveryStatus::Failed;
    for d in [
        delivery("later", A, 100, 5),
        delivery("first", A, 50, 9),
        delivery("older", A, 100, 1),
        delivery("not-yet", A, 101, 0),
        delivery("other-site", B, 60, 2),
        delivered,
        failed,
    ] {
        assert!(store.insert_delivery(&d).await.unwrap());
    }
    assert_eq!(
        store.due_deliveries(100, 10).await.unwrap(),
        vec![
            delivery("first", A, 50, 9),
            delivery("other-site", B, 60, 2),
            delivery("older", A, 100, 1),
            delivery("later", A, 100, 5),
        ],
        "pending deliveries due at or before now, by next attempt then creation, every site"
    );
    assert_eq!(
        ids(&store.due_deliveries(100, 2).await.unwrap(), |d| &d.id),
        ["first", "other-site"],
        "at most limit"
    );
    assert!(store.due_deliveries(100, 0).await.unwrap().is_empty());
    assert!(store.due_deliveries(49, 10).await.unwrap().is_empty());
}

async fn deliveries_update_and_list_by_status(store: impl AlertStore) {
    let (a, b) = (SiteId::from(A), SiteId::from(B));
    for d in [
        delivery("d1", A, 100, 1),
        delivery("d2", A, 100, 2),
        delivery("d3", A, 100, 3),
        delivery("d4", A, 100, 4),
        delivery("b1", B, 100, 5),
    ] {
        store.insert_delivery(&d).await.unwrap();
    }

    let mut delivered = delivery("d1", A, 100, 1);
    delivered.status = DeliveryStatus::Delivered;
    delivered.attempts = 1;
    delivered.delivered_at_ms = Some(101);
    let mut retried = delivery("d2", A, 160, 2);
    retried.attempts = 1;
    retried.last_error = Some("HTTP 503 — unavailable".into());
    let mut failed = delivery("d3", A, 100, 3);
    failed.status = DeliveryStatus::Failed;
    failed.attempts = 8;
    failed.last_error = Some("gave up".into());
    for d in [&delivered, &retried, &failed] {
        store.update_delivery(d).await.unwrap();
    }
    assert_eq!(
        store.deliveries(&a, None, 10).await.unwrap(),
        vec![
            delivery("d4", A, 100, 4),
            failed.clone(),
            retried.clone(),
            delivered.clone(),
        ],
        "an update stores the new state; a site's deliveries come newest first"
    );
    assert_eq!(
        ids(&store.due_deliveries(100, 10).await.unwrap(), |d| &d.id),
        ["d4", "b1"],
        "only pending deliveries whose time has come are due"
    );
    assert_eq!(
        ids(&store.due_deliveries(160, 10).await.unwrap(), |d| &d.id),
        ["d4", "b1", "d2"]
    );

    let mut cleared = retried.clone();
    cleared.attempts = 2;
    cleared.last_error = None;
    store.update_delivery(&cleared).await.unwrap();
    assert_eq!(
        store
            .deliveries(&a, Some(DeliveryStatus::Pending), 10)
            .await
            .unwrap(),
        vec![delivery("d4", A, 100, 4), cleared],
        "of one status; an error can be cleared"
    );
    assert_eq!(
        store
            .deliveries(&a, Some(DeliveryStatus::Delivered), 10)
            .await
            .unwrap(),
        vec![delivered]
    );
    assert_eq!(
        store
            .deliveries(&a, Some(DeliveryStatus::Failed), 10)
            .await
            .unwrap(),
        vec![failed]
    );
    assert_eq!(
        ids(&store.deliveries(&a, None, 2).await.unwrap(), |d| &d.id),
        ["d4", "d3"],
        "at most limit"
    );
    assert_eq!(
        ids(&store.deliveries(&b, None, 10).await.unwrap(), |d| &d.id),
        ["b1"],
        "of the site only"
    );
}

async fn deleting_a_site_takes_its_alerts_only(store: impl AlertStore) {
    for site in [A, B] {
        store
            .put_alert_rule(&rule(
                &format!("rule-{site}"),
                site,
                AlertCondition::NoEvents,
            ))
            .await
            .unwrap();
        store
            .insert_webhook(&webhook(&format!("wh-{site}"), site, WebhookFormat::Json))
            .await
            .unwrap();
        store
            .put_report_subscription(&subscription(
                &format!("sub-{site}"),
                site,
                ReportPeriod::Weekly,
            ))
            .await
            .unwrap();
        store
            .put_annotation(&annotation(&format!("note-{site}"), site, 10))
            .await
            .unwrap();
        store
            .put_alert_event(&firing(
                &format!("ev-{site}"),
                &format!("rule-{site}"),
                site,
                10,
            ))
            .await
            .unwrap();
        store
            .insert_delivery(&delivery(&format!("del-{site}"), site, 10, 10))
            .await
            .unwrap();
    }
    let (a, b) = (SiteId::from(A), SiteId::from(B));
    store.delete_site_alerts(&a).await.unwrap();

    assert_eq!(
        ids(&store.alert_rules().await.unwrap(), |r| &r.id),
        ["rule-b.example"],
        "the site's rules go, another site's stay"
    );
    assert_eq!(
        ids(&store.webhooks().await.unwrap(), |w| &w.id),
        ["wh-b.example"],
        "and its webhooks"
    );
    assert_eq!(
        ids(&store.report_subscriptions().await.unwrap(), |s| &s.id),
        ["sub-b.example"],
        "and its report recipients"
    );
    assert!(
        store
            .annotations(&a, i64::MIN, i64::MAX)
            .await
            .unwrap()
            .is_empty(),
        "and its annotations"
    );
    assert_eq!(
        store
            .annotations(&b, i64::MIN, i64::MAX)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store.alert_events(&a, 10).await.unwrap().is_empty(),
        "and its firings"
    );
    assert_eq!(
        ids(&store.latest_alert_events().await.unwrap(), |e| &e.id),
        ["ev-b.example"]
    );
    assert!(
        store.deliveries(&a, None, 10).await.unwrap().is_empty(),
        "and its deliveries"
    );
    assert_eq!(
        ids(&store.due_deliveries(i64::MAX, 10).await.unwrap(), |d| &d
            .id),
        ["del-b.example"]
    );
}
