//! Change events (issue 16) against the in-memory AWS and the in-memory SQS queue: a repair on
//! an event with an hour's resync, what one event reads, bursts, duplicates, poison messages,
//! strangers, an unreadable queue, and two replicas sharing one queue.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crosslink_cloud::fake::queue::FakeQueue;
use crosslink_controller::events::{Consumer, ConsumerOptions, Events, cloudtrail_event};
use crosslink_controller::metrics::Metrics;
use crosslink_coord::Ownership;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::*;

fn alice(account: &str) -> String {
    format!("arn:aws:sts::{account}:assumed-role/Admin/alice")
}

/// A consumer of `queue` for the daemon `wrap` is given to.
struct Listener {
    events: Arc<Events>,
    stop: CancellationToken,
}

impl Listener {
    fn start(queue: &Arc<FakeQueue>, metrics: &Arc<Metrics>, ownership: Ownership, opts: ConsumerOptions) -> Listener {
        let events = Events::new("memory://events");
        let stop = CancellationToken::new();
        let c = Consumer::new(queue.clone(), events.clone(), metrics.clone(), ownership, opts);
        tokio::spawn(c.run(stop.clone()));
        Listener { events, stop }
    }
}

/// The daemon with a consumer sharing its metrics.
fn start_with_events(
    f: &World,
    name: &str,
    n: usize,
    queue: &Arc<FakeQueue>,
    tweak: impl FnOnce(&mut RunOptions),
) -> (Running, Listener) {
    let mut listener = None;
    let d = start_daemon(f, name, n, tweak, None, EngineOptions::default(), |d| {
        let l = Listener::start(queue, d.metrics(), Ownership::solo(), ConsumerOptions::default());
        let d = d.with_events(l.events.clone());
        listener = Some(l);
        d
    });
    (d, listener.expect("started"))
}

fn peering_routes(f: &World, account: &str) -> usize {
    f.with_account(account, |st| {
        st.route_tables.values().flat_map(|t| &t.routes).filter(|r| r.peering_id.is_some()).count()
    })
}

fn delete_peering_routes(f: &World, account: &str) {
    f.with_account(account, |st| {
        for t in st.route_tables.values_mut() {
            t.routes.retain(|r| r.peering_id.is_none());
        }
    });
}

/// A metric's value, summed over the label sets whose text contains `labels`.
fn metric(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn eventually(what: &str, within: Duration, cond: impl Fn() -> bool) -> Duration {
    let started = tokio::time::Instant::now();
    while !cond() {
        assert!(started.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_deleted_by_hand_is_repaired_on_its_event_with_an_hour_resync() {
    let f = world();
    let queue = Arc::new(FakeQueue::default());
    let (mut d, l) = start_with_events(&f, "ev-route", 2, &queue, |o| o.resync = Duration::from_secs(3600));
    with_second_service(&f, &d);
    d.until("three links ready", |s| all_ready(s, 3)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(peering_routes(&f, SVC), 1);

    // Without an event, nothing notices for an hour.
    delete_peering_routes(&f, SVC);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(peering_routes(&f, SVC), 0, "nothing repairs it before the resync without an event");

    let before = f.observations();
    queue.send(cloudtrail_event(
        "ev-1",
        SVC,
        "ec2.amazonaws.com",
        "DeleteRoute",
        &alice(SVC),
        json!({"routeTableId": "rtb-0000000000000000b", "destinationCidrBlock": "10.1.0.0/16"}),
    ));
    let took = eventually("the route is back", Duration::from_secs(5), || peering_routes(&f, SVC) == 1).await;
    eprintln!("event to repair: {took:?}");
    eventually("the message is deleted", Duration::from_secs(2), || queue.is_empty()).await;
    eventually("the repair is measured", Duration::from_secs(2), || {
        metric(&d.metrics.encode(), "crosslink_event_repair_seconds_count", "") >= 1.0
    })
    .await;
    let after = f.observations();
    let read = |m: &BTreeMap<String, u64>, a: &str| m.get(a).copied().unwrap_or(0);
    assert!(read(&after, SVC) > read(&before, SVC), "the event's account is read again");
    assert_eq!(
        read(&after, SVC2),
        read(&before, SVC2),
        "an account the event does not touch is not read: {before:?} -> {after:?}"
    );

    let text = d.metrics.encode();
    assert_eq!(metric(&text, "crosslink_events_received_total", "source=\"ec2\""), 1.0, "{text}");
    assert!(metric(&text, "crosslink_event_reconciles_total", "") >= 1.0, "{text}");
    assert!(metric(&text, "crosslink_drift_repairs_total", "resource=\"route\"") >= 1.0, "{text}");
    assert_eq!(metric(&text, "crosslink_events_queue_up", "queue=\"memory://events\""), 1.0, "{text}");
    assert_eq!(
        metric(&text, "crosslink_event_delivery_seconds_count", ""),
        1.0,
        "the event's AWS time is read: {text}"
    );
    let s = d.until("the last event in /status", |s| s.events.as_ref().is_some_and(|e| e.last_event.is_some())).await;
    let e = s.events.unwrap();
    assert_eq!(e.state, "ok");
    let last = e.last_event.unwrap();
    assert_eq!((last.name.as_str(), last.source.as_str(), last.account.as_str()), ("DeleteRoute", "ec2", SVC));
    assert!(
        last.outcome.starts_with("reconcile: Peering vpc-0000000000000000a <-> vpc-0000000000000000b"),
        "{}",
        last.outcome
    );
    l.stop.cancel();
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_duplicates_poison_and_strangers_are_all_deleted_and_cost_few_passes() {
    let f = world();
    let queue = Arc::new(FakeQueue::default());
    let (mut d, l) = start_with_events(&f, "ev-burst", 2, &queue, |o| o.resync = Duration::from_secs(3600));
    d.until("links ready", |s| all_ready(s, 2)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tg = f.with_account(GW, |st| {
        let tg = st.target_groups.iter_mut().find(|t| t.tags.values().any(|v| v == "Link/l0")).expect("l0's group");
        tg.targets.clear();
        tg.arn.clone()
    });
    let registers = || f.calls().iter().filter(|(_, op)| op == "RegisterTargets").count();
    let (registers_before, passes_before) = (registers(), f.observations()[GW]);

    let deregister = |id: String| {
        cloudtrail_event(
            &id,
            GW,
            "elasticloadbalancing.amazonaws.com",
            "DeregisterTargets",
            &alice(GW),
            json!({"targetGroupArn": tg, "targets": [{"id": "10.20.1.10", "port": 8080}]}),
        )
    };
    // 1,000 events about one target group (a script deregistering in a loop), 100 duplicates of
    // them, 5 poison messages, 20 about a target group crosslink does not know, 3 from an
    // account the desired state does not name, and 2 reads.
    let mut bodies: Vec<String> = (0..1000).map(|i| deregister(format!("burst-{i}"))).collect();
    bodies.extend((0..100).map(|i| deregister(format!("burst-{}", i * 7))));
    bodies.extend(["not json", "", "[1, 2]", "{\"detail-type\": 5}", "{\"id\": \"x\"}"].map(String::from));
    let stranger = "arn:aws:elasticloadbalancing:eu-central-1:111111111111:targetgroup/theirs/0123456789abcdef";
    bodies.extend((0..20).map(|i| {
        cloudtrail_event(
            &format!("stranger-{i}"),
            GW,
            "elasticloadbalancing.amazonaws.com",
            "ModifyTargetGroup",
            &alice(GW),
            json!({"targetGroupArn": stranger}),
        )
    }));
    bodies.extend((0..3).map(|i| {
        cloudtrail_event(
            &format!("far-{i}"),
            "999999999999",
            "ec2.amazonaws.com",
            "DeleteRoute",
            &alice("999999999999"),
            json!({"routeTableId": "rtb-0000000000000000b"}),
        )
    }));
    bodies.extend((0..2).map(|i| {
        cloudtrail_event(&format!("read-{i}"), GW, "ec2.amazonaws.com", "DescribeRouteTables", &alice(GW), json!({}))
    }));
    let total = bodies.len();
    for b in bodies {
        queue.send(b);
    }
    eventually("the target is registered again", Duration::from_secs(5), || {
        f.with_account(GW, |st| st.target_groups.iter().any(|t| t.arn == tg && !t.targets.is_empty()))
    })
    .await;
    eventually("every message deleted", Duration::from_secs(5), || queue.is_empty()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let text = d.metrics.encode();
    let ignored = |reason: &str| metric(&text, "crosslink_events_ignored_total", &format!("reason=\"{reason}\""));
    assert_eq!(ignored("duplicate"), 100.0, "{text}");
    assert_eq!(ignored("unparseable"), 5.0, "{text}");
    assert_eq!(ignored("unknown-resource"), 20.0, "{text}");
    assert_eq!(ignored("unknown-account"), 3.0, "{text}");
    assert_eq!(ignored("not-a-change"), 2.0, "{text}");
    assert_eq!(metric(&text, "crosslink_events_received_total", ""), total as f64, "{text}");
    assert_eq!(metric(&text, "crosslink_events_received_total", "source=\"elasticloadbalancing\""), 1120.0);
    assert_eq!(registers() - registers_before, 1, "one repair for the whole burst");
    let passes = f.observations()[GW] - passes_before;
    eprintln!("{total} messages: {passes} passes read the gateway account, {} receive calls", queue.receive_calls());
    assert!(passes <= 4, "a burst is coalesced into a few passes, not one per event: {passes}");
    assert!(queue.receive_calls() < 200, "receives take 10 at a time: {}", queue.receive_calls());
    l.stop.cancel();
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_queue_is_reported_while_the_resync_still_repairs() {
    let f = world();
    let queue = Arc::new(FakeQueue::default());
    for _ in 0..4 {
        queue.fail_next(CloudError::new(
            ErrorKind::AccessDenied,
            "AccessDenied",
            "User: arn:aws:sts::111111111111:assumed-role/crosslink/pod is not authorized to perform: sqs:receivemessage",
        ));
    }
    let mut listener = None;
    let mut d = start_daemon(
        &f,
        "ev-broken",
        1,
        |o| o.resync = Duration::from_millis(400),
        None,
        EngineOptions::default(),
        |d| {
            let opts = ConsumerOptions {
                wait: Duration::from_secs(1),
                min_backoff: Duration::from_millis(300),
                max_backoff: Duration::from_millis(600),
                ..Default::default()
            };
            let l = Listener::start(&queue, d.metrics(), Ownership::solo(), opts);
            let d = d.with_events(l.events.clone());
            listener = Some(l);
            d
        },
    );
    let s = d.until("the queue reported failing", |s| s.events.as_ref().is_some_and(|e| e.state == "failing")).await;
    let e = s.events.unwrap();
    assert!(e.last_error.as_deref().unwrap_or_default().contains("AccessDenied"), "{e:?}");
    let text = d.metrics.encode();
    assert_eq!(metric(&text, "crosslink_events_queue_up", "queue=\"memory://events\""), 0.0, "{text}");
    assert!(metric(&text, "crosslink_events_queue_errors_total", "") >= 1.0, "{text}");
    assert!(
        metric(&text, "crosslink_aws_requests_total", "operation=\"ReceiveMessage\",outcome=\"access-denied\"") >= 1.0,
        "{text}"
    );

    // Reconciling goes on: drift is still found by the resync.
    d.until("ready", |s| all_ready(s, 1)).await;
    delete_peering_routes(&f, SVC);
    eventually("the resync repairs the route", Duration::from_secs(5), || peering_routes(&f, SVC) == 1).await;
    d.until("the queue readable again", |s| s.events.as_ref().is_some_and(|e| e.state == "ok")).await;
    let text = d.metrics.encode();
    assert_eq!(metric(&text, "crosslink_events_queue_up", "queue=\"memory://events\""), 1.0, "{text}");
    listener.unwrap().stop.cancel();
    d.stop().await;
}

/// An idle consumer costs one receive per long poll (20 s): at most 3 a minute.
#[tokio::test(start_paused = true)]
async fn an_idle_consumer_sends_one_receive_per_twenty_seconds() {
    let queue = Arc::new(FakeQueue::default());
    let metrics = Arc::new(Metrics::new("test", "test"));
    let l = Listener::start(&queue, &metrics, Ownership::solo(), ConsumerOptions::default());
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(queue.receive_calls(), 0, "nothing is received before the daemon's first pass");
    l.events.pass_done();
    tokio::time::sleep(Duration::from_secs(600)).await;
    let calls = queue.receive_calls();
    assert!((30..=31).contains(&calls), "{calls} receives in 10 minutes");
    l.stop.cancel();
}

/// A replica that holds none of the units an event is about gives the message back at once, and
/// after `max_receives` deliveries it is left to the resync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_releases_what_it_does_not_hold_until_the_cap() {
    let f = world();
    let queue = Arc::new(FakeQueue::default());
    // Sharded, and holding nothing (no coordinator grants it a unit).
    let nothing = Ownership::sharded("r-none", "memory", crosslink_coord::Timing::default());
    let mut listener = None;
    let d = start_daemon(
        &f,
        "ev-release",
        1,
        |o| o.resync = Duration::from_secs(3600),
        None,
        EngineOptions::default(),
        |d| {
            let opts =
                ConsumerOptions { max_receives: 4, release_pause: Duration::from_millis(100), ..Default::default() };
            let l = Listener::start(&queue, d.metrics(), nothing.clone(), opts);
            let d = d.with_ownership(nothing.clone()).with_events(l.events.clone());
            listener = Some(l);
            d
        },
    );
    let l = listener.unwrap();
    // The resolver knows the account (desired state loaded) even though nothing is observed here.
    tokio::time::sleep(Duration::from_millis(500)).await;
    queue.send(cloudtrail_event(
        "ev-elsewhere",
        SVC,
        "ec2.amazonaws.com",
        "DeleteRoute",
        &alice(SVC),
        json!({"routeTableId": "rtb-0000000000000000b"}),
    ));
    eventually("deleted after the cap", Duration::from_secs(5), || queue.is_empty()).await;
    let text = d.metrics.encode();
    assert_eq!(metric(&text, "crosslink_events_ignored_total", "reason=\"not-held\""), 1.0, "{text}");
    assert_eq!(metric(&text, "crosslink_aws_requests_total", "operation=\"ChangeMessageVisibility\""), 3.0, "{text}");
    assert_eq!(metric(&text, "crosslink_event_reconciles_total", ""), 0.0, "{text}");
    assert_eq!(metric(&text, "crosslink_events_received_total", ""), 1.0, "a redelivery is not a new event: {text}");
    l.stop.cancel();
    d.stop().await;
}

/// API Gateway and ELBv2 events reach the link whose method or listener they name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_and_a_listener_deleted_by_hand_are_repaired_on_their_events() {
    let f = world();
    let queue = Arc::new(FakeQueue::default());
    let (mut d, l) = start_with_events(&f, "ev-api", 2, &queue, |o| o.resync = Duration::from_secs(3600));
    d.until("links ready", |s| all_ready(s, 2)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (api, resource) = f.with_account(GW, |st| {
        let api = &mut st.rest_apis[0];
        let r = api.resources.iter_mut().find(|r| r.path == "/s1").expect("l1's resource");
        r.methods.clear();
        (api.id.clone(), r.id.clone())
    });
    let methods = || {
        f.with_account(GW, |st| {
            st.rest_apis[0].resources.iter().find(|r| r.path == "/s1").map_or(0, |r| r.methods.len())
        })
    };
    queue.send(cloudtrail_event(
        "ev-method",
        GW,
        "apigateway.amazonaws.com",
        "DeleteMethod",
        &alice(GW),
        json!({"restApiId": api, "resourceId": resource, "httpMethod": "ANY"}),
    ));
    eventually("the method is back", Duration::from_secs(5), || methods() > 0).await;
    let s = d
        .until("the event's outcome", |s| {
            s.events.as_ref().and_then(|e| e.last_event.as_ref()).is_some_and(|e| e.id == "ev-method")
        })
        .await;
    let outcome = s.events.unwrap().last_event.unwrap().outcome;
    assert!(outcome.contains("Link/l1") && !outcome.contains("Link/l0"), "{outcome}");

    let listener = f.with_account(GW, |st| {
        let i = st.listeners.iter().position(|l| l.port == 9001).expect("l0's listener");
        st.listeners.remove(i).arn
    });
    queue.send(cloudtrail_event(
        "ev-listener",
        GW,
        "elasticloadbalancing.amazonaws.com",
        "DeleteListener",
        &alice(GW),
        json!({"listenerArn": listener}),
    ));
    eventually("the listener is back", Duration::from_secs(5), || {
        f.with_account(GW, |st| st.listeners.iter().any(|l| l.port == 9001))
    })
    .await;
    d.until("both links ready again", |s| all_ready(s, 2)).await;
    l.stop.cancel();
    d.stop().await;
}

/// Two replicas read one queue (docs/events.md, "Several replicas"): the event about a link
/// reaches the replica holding the link's unit, which repairs it; the other only hands the
/// message back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_replicas_the_holder_of_the_unit_repairs_what_the_event_touched() {
    use crosslink_coord::memory::MemoryEngine;

    let f = world();
    let second = second_gateway(&f);
    let queue = Arc::new(FakeQueue::default());
    let engine = MemoryEngine::new();
    let coord_stop = CancellationToken::new();
    let mut replicas = Vec::new();
    for name in ["r1", "r2"] {
        let ownership = replica(&engine, name, &coord_stop);
        let mut listener = None;
        let d = start_daemon(
            &f,
            &format!("ev-ha-{name}"),
            1,
            |o| o.resync = Duration::from_secs(3600),
            None,
            EngineOptions::default(),
            |d| {
                let opts = ConsumerOptions { max_receives: 10, ..Default::default() };
                let l = Listener::start(&queue, d.metrics(), ownership.clone(), opts);
                let d = d.with_ownership(ownership.clone()).with_events(l.events.clone());
                listener = Some(l);
                d
            },
        );
        put(&d.dir.join("second.yaml"), second);
        replicas.push((name, d, listener.unwrap()));
    }
    eventually("both gateways' units held", Duration::from_secs(10), || {
        let h = engine.holders();
        h.contains_key("edge") && h.contains_key("edge2")
    })
    .await;
    let holder = engine.holders()["edge"].clone();
    let (hi, oi) = if replicas[0].0 == holder { (0, 1) } else { (1, 0) };
    replicas[hi]
        .1
        .until("l0 ready at its holder", |s| s.links.iter().any(|l| l.name == "l0" && l.phase == Phase::Ready))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let tg = f.with_account(GW, |st| {
        let tg = st.target_groups.iter_mut().find(|t| t.tags.values().any(|v| v == "Link/l0")).expect("l0's group");
        tg.targets.clear();
        tg.arn.clone()
    });
    for i in 0..5 {
        queue.send(cloudtrail_event(
            &format!("ha-{i}"),
            GW,
            "elasticloadbalancing.amazonaws.com",
            "DeregisterTargets",
            &alice(GW),
            json!({"targetGroupArn": tg}),
        ));
    }
    eventually("the holder re-registers the target", Duration::from_secs(5), || {
        f.with_account(GW, |st| st.target_groups.iter().any(|t| t.arn == tg && !t.targets.is_empty()))
    })
    .await;
    eventually("every message deleted", Duration::from_secs(5), || queue.is_empty()).await;
    let reconciles = |i: usize| metric(&replicas[i].1.metrics.encode(), "crosslink_event_reconciles_total", "");
    assert!(reconciles(hi) >= 1.0, "the holder ({holder}) reconciled");
    assert_eq!(reconciles(oi), 0.0, "the other replica reconciles nothing it does not hold");
    let not_held: f64 = (0..2)
        .map(|i| metric(&replicas[i].1.metrics.encode(), "crosslink_events_ignored_total", "reason=\"not-held\""))
        .sum();
    assert_eq!(not_held, 0.0, "every message reached the holder");
    coord_stop.cancel();
    for (_, d, l) in replicas {
        l.stop.cancel();
        d.stop().await;
    }
}
