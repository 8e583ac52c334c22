//! A link's health hop by hop (`crosslink_plan::health`), against the in-memory AWS: converged,
//! then broken one hop at a time as AWS would show it (moto reports every target healthy, so
//! unhealthy, initial and unused targets, failed VPC links, blackhole routes and a missing stage
//! are driven here).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crosslink_cloud::fake::FakeAws;
use crosslink_controller::{ApplyOptions, Engine, EngineOptions};
use crosslink_desired::DesiredState;
use crosslink_plan::health::{HopState, LinkHealth, link_health};

const GW: &str = "111111111111";
const SVC: &str = "222222222222";
const GW_VPC: &str = "vpc-0000000000000000a";
const SVC_VPC: &str = "vpc-0000000000000000b";
const GW_RTB: &str = "rtb-0000000000000000a";
const SVC_RTB: &str = "rtb-0000000000000000b";

fn world() -> Arc<FakeAws> {
    let f = FakeAws::new();
    f.seed_vpc(GW, "eu-central-1", GW_VPC, "10.1.0.0/16", &["subnet-0000000000000000a"], GW_RTB);
    f.seed_vpc(SVC, "eu-central-1", SVC_VPC, "10.20.0.0/16", &["subnet-0000000000000001a"], SVC_RTB);
    Arc::new(f)
}

fn yaml(extra: &str) -> String {
    format!(
        r#"
apiVersion: crosslink.dev/v1alpha1
kind: Account
metadata: {{name: shared}}
spec: {{accountId: "{GW}", region: eu-central-1, assumeRole: {{roleArn: "arn:aws:iam::{GW}:role/crosslink", externalId: x1}}}}
---
apiVersion: crosslink.dev/v1alpha1
kind: Account
metadata: {{name: svc}}
spec: {{accountId: "{SVC}", region: eu-central-1, assumeRole: {{roleArn: "arn:aws:iam::{SVC}:role/crosslink", externalId: x1}}}}
---
apiVersion: crosslink.dev/v1alpha1
kind: Gateway
metadata: {{name: edge}}
spec:
  account: shared
  vpcId: {GW_VPC}
  subnetIds: [subnet-0000000000000000a]
  routeTableIds: [{GW_RTB}]
  loadBalancer: {{name: edge-nlb}}
  api: {{name: open-banking, stage: v1}}
---
apiVersion: crosslink.dev/v1alpha1
kind: Link
metadata: {{name: pay}}
spec:
  gateway: edge
  service: {{account: svc, vpcId: {SVC_VPC}, routeTableIds: [{SVC_RTB}]}}
  targets: [{{ip: 10.20.1.10, port: 8080}}, {{ip: 10.20.1.11, port: 8080}}]
  listenerPort: 9001
  routes: [{{path: /payments, methods: [GET, POST]}}]
{extra}"#
    )
}

fn desired(text: &str) -> DesiredState {
    crosslink_desired::load_str(Path::new("test.yaml"), text).unwrap_or_else(|e| panic!("{e}"))
}

fn engine(f: &Arc<FakeAws>) -> Engine<FakeAws> {
    Engine::new(f.clone(), EngineOptions::default())
}

async fn converged(extra: &str) -> (Arc<FakeAws>, DesiredState) {
    let f = world();
    let d = desired(&yaml(extra));
    let opts = ApplyOptions {
        timeout: Duration::from_secs(20),
        min_wait: Duration::from_millis(5),
        max_wait: Duration::from_millis(50),
        max_rounds: 50,
        allow_weakening: false,
        allow_replacement: false,
    };
    let r = engine(&f).apply(&d, &opts).await;
    assert!(r.converged, "did not converge: {:?}", r.failed);
    (f, d)
}

async fn health(f: &Arc<FakeAws>, d: &DesiredState) -> LinkHealth {
    let (observed, plan) = engine(f).plan(d).await;
    link_health(d, &observed, &plan, d.link("pay").unwrap())
}

fn set_targets(f: &FakeAws, health: &str, reason: Option<&str>, description: Option<&str>) {
    f.with_account(GW, |s| {
        for t in &mut s.target_groups[0].targets {
            t.health = health.into();
            t.reason = reason.map(str::to_string);
            t.description = description.map(str::to_string);
        }
    });
}

#[tokio::test]
async fn a_converged_link_is_healthy_at_every_hop_in_the_order_traffic_takes() {
    let (f, d) = converged("").await;
    let h = health(&f, &d).await;
    assert!(h.healthy, "{h:#?}");
    assert_eq!(h.first_broken, None);
    assert_eq!(h.targets.healthy, 2);
    assert_eq!(h.summary, "2 of 2 targets healthy");
    let kinds: Vec<&str> = h.hops.iter().map(|x| x.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "route",
            "stage",
            "vpcLink",
            "listener",
            "targetGroup",
            "target",
            "target",
            "peering",
            "networkRoute",
            "networkRoute"
        ]
    );
    assert!(h.hops.iter().all(|x| x.state == HopState::Ok && x.hint.is_none()), "{h:#?}");
    assert!(h.hops.iter().filter(|x| x.kind != "route" && x.kind != "stage").all(|x| !x.detail.is_empty()));
    // Each hop says where it lives: the targets and the way back in the service account.
    assert_eq!(h.hops[5].account, "svc");
    assert_eq!(h.hops[9].account, "svc");
    assert_eq!(h.hops[9].name, "route 10.1.0.0/16 in rtb-0000000000000000b");
}

#[tokio::test]
async fn failing_targets_make_an_in_sync_link_unhealthy_with_aws_s_reason_and_a_hint() {
    let (f, d) = converged("").await;
    set_targets(&f, "unhealthy", Some("Target.FailedHealthChecks"), Some("Health checks failed"));
    let h = health(&f, &d).await;
    assert!(!h.healthy);
    assert_eq!(h.summary, "0 of 2 targets healthy (Target.FailedHealthChecks)");
    assert_eq!(h.targets.unhealthy, 2);
    let first = h.first_broken_hop().unwrap();
    assert_eq!(first.name, "target 10.20.1.10:8080");
    assert_eq!(first.detail, "unhealthy: Target.FailedHealthChecks: Health checks failed");
    let hint = first.hint.as_deref().unwrap();
    assert!(hint.contains("in account svc") && hint.contains("10.20.1.10:8080"), "{hint}");
    // In sync all the same: nothing to change in AWS.
    let (_, plan) = engine(&f).plan(&d).await;
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
}

#[tokio::test]
async fn targets_in_their_first_health_checks_are_starting_not_failing() {
    let (f, d) = converged("").await;
    set_targets(&f, "initial", Some("Elb.InitialHealthChecking"), Some("Initial health checks in progress"));
    let h = health(&f, &d).await;
    assert!(!h.healthy);
    assert!(h.starting(), "{h:#?}");
    assert_eq!(h.targets.initial, 2);
    assert_eq!(h.summary, "0 of 2 targets healthy, 2 starting (initial health checks)");
    assert_eq!(h.first_broken_hop().unwrap().state, HopState::Starting);
}

#[tokio::test]
async fn enough_healthy_targets_keep_the_link_healthy_and_the_sick_one_is_still_pointed_at() {
    let (f, d) = converged("  minHealthyTargets: 1\n").await;
    f.with_account(GW, |s| {
        let t = &mut s.target_groups[0].targets[1];
        t.health = "unused".into();
        t.reason = Some("Target.NotInUse".into());
    });
    let h = health(&f, &d).await;
    assert!(h.healthy, "{h:#?}");
    assert_eq!(h.summary, "1 of 2 targets healthy");
    assert_eq!(h.targets.unused, 1);
    assert_eq!(h.first_broken_hop().unwrap().name, "target 10.20.1.11:8080");

    // Both wanted: the same state is not healthy.
    let d2 = desired(&yaml("  minHealthyTargets: 2\n"));
    let h = health(&f, &d2).await;
    assert!(!h.healthy);
    assert_eq!(h.summary, "1 of 2 targets healthy (Target.NotInUse)");
}

#[tokio::test]
async fn a_blackhole_route_is_the_first_broken_hop_when_everything_before_it_works() {
    let (f, d) = converged("").await;
    f.with_account(SVC, |s| {
        let r = &mut s.route_tables.get_mut(SVC_RTB).unwrap().routes[0];
        r.blackhole = true;
    });
    let h = health(&f, &d).await;
    assert!(!h.healthy);
    let first = h.first_broken_hop().unwrap();
    assert_eq!(first.kind, "networkRoute");
    assert_eq!(first.account, "svc");
    assert_eq!(first.detail, "blackhole: its target is gone");
    assert!(first.hint.as_deref().unwrap().contains("rtb-0000000000000000b in account svc"));
    assert!(h.summary.starts_with("route 10.1.0.0/16 in rtb-0000000000000000b: blackhole"), "{}", h.summary);
}

#[tokio::test]
async fn a_failed_or_pending_vpc_link_and_a_missing_stage_are_hops_of_their_own() {
    let (f, d) = converged("").await;
    f.set_vpc_link_status("PENDING");
    let h = health(&f, &d).await;
    let vl = h.hops.iter().find(|x| x.kind == "vpcLink").unwrap();
    assert_eq!(vl.state, HopState::Starting);
    assert!(!h.healthy && h.starting());

    f.with_account(GW, |s| {
        s.vpc_links[0].status = "FAILED".into();
        s.vpc_links[0].status_message = Some("NLB is not active".into());
    });
    let h = health(&f, &d).await;
    let vl = h.hops.iter().find(|x| x.kind == "vpcLink").unwrap();
    assert_eq!(vl.state, HopState::Broken);
    assert_eq!(vl.detail, "FAILED: NLB is not active");

    let (f, d) = converged("").await;
    f.with_account(GW, |s| s.rest_apis[0].stages.clear());
    let h = health(&f, &d).await;
    let first = h.first_broken_hop().unwrap();
    assert_eq!((first.kind.as_str(), first.detail.as_str()), ("stage", "not deployed"));
}

#[tokio::test]
async fn a_missing_method_or_listener_breaks_its_hop() {
    let (f, d) = converged("").await;
    f.with_account(GW, |s| {
        let r = s.rest_apis[0].resources.iter_mut().find(|r| r.path == "/payments/{proxy+}").unwrap();
        r.methods.remove("POST");
        s.listeners.clear();
    });
    let h = health(&f, &d).await;
    let first = h.first_broken_hop().unwrap();
    assert_eq!(first.name, "GET, POST /payments");
    assert_eq!(first.detail, "method POST /payments/{proxy+} missing");
    let l = h.hops.iter().find(|x| x.kind == "listener").unwrap();
    assert_eq!((l.state, l.detail.as_str()), (HopState::Broken, "missing"));
}

/// TLS to the backend: the route and listener hops say so; a listener switched to TCP by hand is
/// the first broken hop (the https integrations expect TLS), with the plan repairing it.
#[tokio::test]
async fn a_link_with_backend_tls_says_so_and_a_tcp_listener_breaks_it() {
    let tls = "  tls: {certificateArn: 'arn:aws:acm:eu-central-1:111111111111:certificate/b1', serverName: pay.internal.bank.example}\n";
    let (f, d) = converged(tls).await;
    let h = health(&f, &d).await;
    assert!(h.healthy, "{h:#?}");
    assert_eq!(h.hops[0].detail, "HTTP_PROXY through the VPC link, TLS (certificate checked)");
    assert_eq!(h.hops[3].detail, "TLS :9001 (ELBSecurityPolicy-TLS13-1-2-2021-06, for pay.internal.bank.example)");
    f.with_account(GW, |s| s.listeners[0].protocol = "TCP".into());
    let h = health(&f, &d).await;
    assert!(!h.healthy);
    let broken = &h.hops[h.first_broken.expect("a broken hop")];
    assert_eq!((broken.kind.as_str(), broken.state), ("listener", HopState::Broken));
    assert_eq!(broken.detail, "TCP :9001, not TLS: the route's integrations expect TLS");
}
