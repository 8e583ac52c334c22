//! The engine and planner against the in-memory AWS: convergence, idempotence, drift repair,
//! removal, Retain, ownership, failing accounts, and crash safety. No network.

use crosslink_plan::kinds::{ListenerOp, LoadBalancerOp, MethodOp, PeeringOp, RouteOp, StageOp};

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crosslink_cloud::fake::FakeAws;
use crosslink_cloud::faults::{Fault, Faulty};
use crosslink_cloud::{CloudError, ErrorKind};
use crosslink_controller::{ActionResult, ApplyOptions, ApplyReport, Engine, EngineOptions};
use crosslink_desired::DesiredState;
use crosslink_plan::observed::{AccountObservation, PeeringStatus, Route};
use crosslink_plan::op::Op;
use crosslink_plan::{Reason, Subject, Verb};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const GW: &str = "111111111111";
const SVC_A: &str = "222222222222";
const SVC_B: &str = "333333333333";
const GW_VPC: &str = "vpc-0000000000000000a";
const A_VPC: &str = "vpc-0000000000000000b";
const B_VPC: &str = "vpc-0000000000000000c";
const GW_RTB: &str = "rtb-0000000000000000a";
const A_RTB: &str = "rtb-0000000000000000b";
const B_RTB: &str = "rtb-0000000000000000c";

/// The in-memory AWS, seeded, behind scripted faults (none until a test adds them).
fn world() -> Arc<Faulty<FakeAws>> {
    let f = Faulty::new(FakeAws::new());
    f.seed_vpc(
        GW,
        "eu-central-1",
        GW_VPC,
        "10.1.0.0/16",
        &["subnet-0000000000000000a", "subnet-0000000000000000b"],
        GW_RTB,
    );
    f.seed_vpc(SVC_A, "eu-central-1", A_VPC, "10.20.0.0/16", &["subnet-0000000000000001a"], A_RTB);
    f.seed_vpc(SVC_B, "eu-central-1", B_VPC, "10.30.0.0/16", &["subnet-0000000000000002a"], B_RTB);
    Arc::new(f)
}

fn accounts() -> String {
    format!(
        r#"
apiVersion: crosslink.dev/v1alpha1
kind: Account
metadata: {{name: shared}}
spec: {{accountId: "{GW}", region: eu-central-1, assumeRole: {{roleArn: "arn:aws:iam::{GW}:role/crosslink", externalId: x1}}}}
---
apiVersion: crosslink.dev/v1alpha1
kind: Account
metadata: {{name: svc-a}}
spec: {{accountId: "{SVC_A}", region: eu-central-1, assumeRole: {{roleArn: "arn:aws:iam::{SVC_A}:role/crosslink", externalId: x1}}}}
---
apiVersion: crosslink.dev/v1alpha1
kind: Account
metadata: {{name: svc-b}}
spec: {{accountId: "{SVC_B}", region: eu-central-1, assumeRole: {{roleArn: "arn:aws:iam::{SVC_B}:role/crosslink", externalId: x1}}}}
---
apiVersion: crosslink.dev/v1alpha1
kind: Gateway
metadata: {{name: edge}}
spec:
  account: shared
  vpcId: {GW_VPC}
  subnetIds: [subnet-0000000000000000a, subnet-0000000000000000b]
  routeTableIds: [{GW_RTB}]
  loadBalancer: {{name: edge-nlb}}
  api: {{name: open-banking, stage: v1}}
"#
    )
}

fn link(name: &str, account: &str, vpc: &str, rtb: &str, ip: &str, port: u16, path: &str, extra: &str) -> String {
    format!(
        r#"
---
apiVersion: crosslink.dev/v1alpha1
kind: Link
metadata: {{name: {name}}}
spec:
  gateway: edge
  service: {{account: {account}, vpcId: {vpc}, routeTableIds: [{rtb}]}}
  targets: [{{ip: {ip}, port: 8080}}]
  listenerPort: {port}
  routes: [{{path: {path}}}]
{extra}"#
    )
}

fn three_links() -> String {
    accounts()
        + &link("pay", "svc-a", A_VPC, A_RTB, "10.20.1.10", 9001, "/payments", "")
        + &link("hooks", "svc-a", A_VPC, A_RTB, "10.20.1.11", 9002, "/webhooks/payments", "")
        + &link("ledger", "svc-b", B_VPC, B_RTB, "10.30.1.10", 9003, "/accounts", "")
}

fn desired(text: &str) -> DesiredState {
    crosslink_desired::load_str(Path::new("test.yaml"), text).unwrap_or_else(|e| panic!("{e}"))
}

fn engine(f: &Arc<Faulty<FakeAws>>) -> Engine<Faulty<FakeAws>> {
    Engine::new(f.clone(), EngineOptions::default())
}

fn fast() -> ApplyOptions {
    ApplyOptions {
        timeout: Duration::from_secs(20),
        min_wait: Duration::from_millis(5),
        max_wait: Duration::from_millis(50),
        max_rounds: 50,
        allow_weakening: false,
        allow_replacement: false,
    }
}

async fn apply(f: &Arc<Faulty<FakeAws>>, d: &DesiredState) -> ApplyReport {
    engine(f).apply(d, &fast()).await
}

async fn converge(f: &Arc<Faulty<FakeAws>>, d: &DesiredState) -> ApplyReport {
    let r = apply(f, d).await;
    assert!(r.converged, "did not converge: failed {:?}\nremaining {:#?}", r.failed, r.remaining);
    // The property: planning against the result of applying yields nothing to do.
    let (_, plan) = engine(f).plan(d).await;
    assert!(plan.actions.is_empty(), "re-plan not empty: {:#?}", plan.actions);
    r
}

fn state(f: &FakeAws, account: &str) -> crosslink_plan::observed::AccountState {
    match f.observe_account(account) {
        AccountObservation::Ok(s) => *s,
        AccountObservation::Failed { code, .. } => panic!("{code}"),
    }
}

/// A TCP health check of the target's own port, every `interval` seconds (AWS's thresholds).
fn tcp_check(interval: u16) -> crosslink_plan::kinds::target_group::HealthCheckSettings {
    crosslink_plan::kinds::target_group::HealthCheckSettings {
        protocol: "TCP".into(),
        path: None,
        port: "traffic-port".into(),
        interval_seconds: interval,
        healthy_threshold: 3,
        unhealthy_threshold: 3,
    }
}

/// A target group made by hand in the gateway VPC (no tags): its ARN.
fn hand_target_group(f: &FakeAws, name: &str, check_interval: u16) -> String {
    let op = crosslink_plan::kinds::TargetGroupOp::CreateTargetGroup {
        name: name.into(),
        vpc_id: GW_VPC.into(),
        port: 8080,
        health_check: tcp_check(check_interval),
        tags: Default::default(),
    };
    f.apply(GW, &Op::TargetGroup(op)).unwrap().created.unwrap()
}

/// A TCP listener made by hand on `lb`, forwarding to `tg`, with `tags`: its ARN.
fn hand_listener(f: &FakeAws, lb: &str, port: u16, tg: &str, tags: &[(&str, &str)]) -> String {
    use crosslink_plan::op::Ref;
    let op = ListenerOp::CreateListener {
        load_balancer_arn: Ref::Known(lb.to_string()),
        port,
        target_group_arn: Ref::Known(tg.to_string()),
        tls: None,
        tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    };
    f.apply(GW, &Op::Listener(op)).unwrap().created.unwrap()
}

fn live_peerings(f: &FakeAws) -> Vec<crosslink_plan::observed::Peering> {
    state(f, GW).peerings.into_iter().filter(|p| !p.status.is_dead()).collect()
}

#[tokio::test]
async fn converges_from_empty_and_a_second_apply_changes_nothing() {
    let f = world();
    let d = desired(&three_links());
    let first = converge(&f, &d).await;
    assert!(first.mutations() > 20, "{}", first.mutations());

    let gw = state(&f, GW);
    assert_eq!(gw.load_balancers.len(), 1);
    assert_eq!(gw.target_groups.len(), 3);
    assert_eq!(gw.listeners.len(), 3);
    assert_eq!(gw.vpc_links.len(), 1);
    assert_eq!(gw.rest_apis.len(), 1);
    // Two links share svc-a's VPC: one peering for them, one for svc-b.
    let peerings = live_peerings(&f);
    assert_eq!(peerings.len(), 2);
    assert!(peerings.iter().all(|p| p.status == PeeringStatus::Active));
    // Routes both ways.
    let to_a = gw.route_tables[GW_RTB].routes.iter().find(|r| r.destination.to_string() == "10.20.0.0/16").unwrap();
    assert!(to_a.peering_id.is_some());
    let back = &state(&f, SVC_A).route_tables[A_RTB].routes;
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].destination.to_string(), "10.1.0.0/16");
    // API: /payments, its proxy, /webhooks, /webhooks/payments, its proxy, /accounts, its proxy.
    let api = &gw.rest_apis[0];
    let paths: Vec<&str> = api.resources.iter().map(|r| r.path.as_str()).collect();
    for p in ["/payments", "/payments/{proxy+}", "/webhooks", "/webhooks/payments/{proxy+}", "/accounts"] {
        assert!(paths.contains(&p), "{p} missing from {paths:?}");
    }
    let m = &api.resources.iter().find(|r| r.path == "/payments/{proxy+}").unwrap().methods["ANY"];
    let uri = m.integration.as_ref().unwrap().uri.clone().unwrap();
    assert!(uri.starts_with("http://edge-nlb-") && uri.ends_with(":9001/payments/{proxy}"), "{uri}");
    assert_eq!(api.stages.len(), 1);
    let deployments = f.calls().iter().filter(|(_, op)| op == "CreateDeployment").count();
    assert_eq!(deployments, 1, "one deployment per REST API per pass");

    let before = f.calls().len();
    let second = converge(&f, &d).await;
    assert_eq!(second.mutations(), 0);
    assert_eq!(f.calls().len(), before, "the second apply made mutating calls");
}

#[tokio::test]
async fn every_kind_of_drift_is_repaired() {
    let f = world();
    let d = desired(&three_links());
    converge(&f, &d).await;

    f.with_account(GW, |s| {
        // A deleted route, a deregistered target, a changed listener port and target group, an
        // edited integration URI, a deleted API resource.
        s.route_tables.get_mut(GW_RTB).unwrap().routes.retain(|r| r.destination.to_string() != "10.30.0.0/16");
        s.target_groups[0].targets.clear();
        let other_tg = s.target_groups[2].arn.clone();
        s.listeners[0].port = 9100;
        s.listeners[1].target_group_arn = Some(other_tg);
        let api = &mut s.rest_apis[0];
        let r = api.resources.iter_mut().find(|r| r.path == "/payments").unwrap();
        r.methods.get_mut("ANY").unwrap().integration.as_mut().unwrap().uri = Some("http://evil.example:80/".into());
        api.resources.retain(|r| r.path != "/accounts/{proxy+}");
    });
    let (_, plan) = engine(&f).plan(&d).await;
    let reasons: Vec<String> =
        plan.actions.iter().map(|a| format!("{} {} ({})", a.verb.as_str(), a.resource, a.reason)).collect();
    let text = reasons.join("\n");
    for expected in [
        "create route 10.30.0.0/16 in rtb-0000000000000000a (missing)",
        "drift of listenerPort: live 9100, desired 9001",
        "drift of listener target group",
        "drift of integration uri: live http://evil.example:80/",
        "create API resource /accounts/{proxy+} (missing)",
        "register targets",
        "deploy stage v1 (the API changed)",
    ] {
        assert!(text.contains(expected), "expected `{expected}` in plan:\n{text}");
    }
    converge(&f, &d).await;
}

#[tokio::test]
async fn a_deleted_or_rejected_peering_is_requested_again() {
    let f = world();
    let d = desired(&three_links());
    converge(&f, &d).await;
    f.with_account(GW, |s| {
        for p in &mut s.peerings {
            if p.accepter_vpc == B_VPC {
                p.status = PeeringStatus::Rejected;
            }
        }
    });
    let r = converge(&f, &d).await;
    assert!(r.executed.iter().any(|e| e.action.op.name() == "CreateVpcPeeringConnection"));
    assert!(r.executed.iter().any(|e| e.action.op.name() == "ReplaceRoute"), "routes moved to the new peering");
    assert_eq!(live_peerings(&f).len(), 2);
}

#[tokio::test]
async fn target_and_listener_port_changes() {
    let f = world();
    converge(&f, &desired(&three_links())).await;
    let changed = three_links()
        .replace("10.20.1.10, port: 8080", "10.20.1.99, port: 8080")
        .replace("listenerPort: 9003", "listenerPort: 9303");
    let r = converge(&f, &desired(&changed)).await;
    let ops: Vec<&str> = r.executed.iter().map(|e| e.action.op.name()).collect();
    // A new listener on the new port, the old one removed (make before break).
    assert!(
        ops.contains(&"RegisterTargets")
            && ops.contains(&"DeregisterTargets")
            && ops.contains(&"CreateListener")
            && ops.contains(&"DeleteListener"),
        "{ops:?}"
    );
    let gw = state(&f, GW);
    assert!(gw.listeners.iter().any(|x| x.port == 9303));
    let uris: Vec<String> = gw.rest_apis[0]
        .resources
        .iter()
        .flat_map(|r| r.methods.values().filter_map(|m| m.integration.as_ref()?.uri.clone()))
        .collect();
    assert!(uris.iter().any(|u| u.contains(":9303/accounts")), "integrations follow the port: {uris:?}");
}

#[tokio::test]
async fn removing_links_keeps_a_shared_peering_until_the_last_link_goes() {
    let f = world();
    converge(&f, &desired(&three_links())).await;

    let without_hooks = accounts()
        + &link("pay", "svc-a", A_VPC, A_RTB, "10.20.1.10", 9001, "/payments", "")
        + &link("ledger", "svc-b", B_VPC, B_RTB, "10.30.1.10", 9003, "/accounts", "");
    let r = converge(&f, &desired(&without_hooks)).await;
    let deleted: Vec<String> =
        r.executed.iter().filter(|e| e.action.verb == Verb::Delete).map(|e| e.action.resource.clone()).collect();
    assert!(deleted.iter().any(|x| x.starts_with("listener :9002")), "{deleted:?}");
    assert!(deleted.iter().any(|x| x.starts_with("target group cl-hooks")), "{deleted:?}");
    assert!(deleted.iter().any(|x| x == "API resource /webhooks"), "{deleted:?}");
    assert!(!deleted.iter().any(|x| x.starts_with("peering")), "shared peering kept: {deleted:?}");
    assert_eq!(live_peerings(&f).len(), 2);
    assert!(r.executed.iter().any(|e| e.action.verb == Verb::Deploy), "stage redeployed after removal");

    let without_a = accounts() + &link("ledger", "svc-b", B_VPC, B_RTB, "10.30.1.10", 9003, "/accounts", "");
    converge(&f, &desired(&without_a)).await;
    let peerings = live_peerings(&f);
    assert_eq!(peerings.len(), 1);
    assert_eq!(peerings[0].accepter_vpc, B_VPC);
    assert!(state(&f, GW).route_tables[GW_RTB].routes.iter().all(|r| r.destination.to_string() != "10.20.0.0/16"));
    assert!(state(&f, SVC_A).route_tables[A_RTB].routes.is_empty(), "the route back is removed too");
}

#[tokio::test]
async fn removing_the_gateway_removes_everything_crosslink_created() {
    let f = world();
    converge(&f, &desired(&three_links())).await;
    let none = accounts().split("---\napiVersion: crosslink.dev/v1alpha1\nkind: Gateway").next().unwrap().to_string();
    converge(&f, &desired(&none)).await;
    let gw = state(&f, GW);
    assert!(gw.load_balancers.is_empty() && gw.target_groups.is_empty() && gw.listeners.is_empty());
    assert!(gw.vpc_links.is_empty() && gw.rest_apis.is_empty());
    assert!(live_peerings(&f).is_empty());
    assert!(gw.route_tables[GW_RTB].routes.is_empty());
}

#[tokio::test]
async fn retain_keeps_a_removed_links_resources_and_says_so() {
    let f = world();
    let retained = accounts()
        + &link("pay", "svc-a", A_VPC, A_RTB, "10.20.1.10", 9001, "/payments", "")
        + &link("ledger", "svc-b", B_VPC, B_RTB, "10.30.1.10", 9003, "/accounts", "  deletionPolicy: Retain\n");
    converge(&f, &desired(&retained)).await;
    let only_pay = accounts() + &link("pay", "svc-a", A_VPC, A_RTB, "10.20.1.10", 9001, "/payments", "");
    let r = converge(&f, &desired(&only_pay)).await;
    assert!(r.executed.iter().all(|e| e.action.verb != Verb::Delete), "nothing deleted: {:?}", r.executed);
    let report = &r.remaining.reports[&Subject::Link("ledger".into())];
    assert!(report.retained.iter().any(|x| x.starts_with("listener :9003")), "{report:?}");
    let gw = state(&f, GW);
    assert_eq!(gw.listeners.len(), 2);
    assert!(gw.rest_apis[0].resources.iter().any(|r| r.path == "/accounts"), "its API resources stay");
    assert_eq!(live_peerings(&f).len(), 2, "its peering stays");
}

#[tokio::test]
async fn unowned_look_alikes_are_never_touched() {
    let f = world();
    let d = desired(&three_links());
    converge(&f, &d).await;
    // Someone adds their own listener, target group, route and peering next to crosslink's.
    f.with_account(GW, |s| {
        let mut tg = s.target_groups[0].clone();
        tg.arn = "arn:aws:elasticloadbalancing:eu-central-1:111111111111:targetgroup/manual/1".into();
        tg.name = "manual".into();
        tg.tags.clear();
        s.target_groups.push(tg.clone());
        let mut x = s.listeners[0].clone();
        x.arn = format!("{}-manual", x.arn);
        x.port = 7000;
        x.target_group_arn = Some(tg.arn.clone());
        x.tags.clear();
        s.listeners.push(x);
        s.route_tables.get_mut(GW_RTB).unwrap().routes.push(Route {
            destination: "192.168.0.0/16".parse().unwrap(),
            peering_id: None,
            other_target: Some("tgw-0000000000000000a".into()),
            blackhole: false,
        });
    });
    let r = converge(&f, &d).await;
    assert_eq!(r.mutations(), 0);
    // Even with every link gone, the look-alikes stay.
    let none = accounts().split("---\napiVersion: crosslink.dev/v1alpha1\nkind: Gateway").next().unwrap().to_string();
    converge(&f, &desired(&none)).await;
    let gw = state(&f, GW);
    assert_eq!(gw.target_groups.len(), 1);
    assert_eq!(gw.target_groups[0].name, "manual");
    assert_eq!(gw.route_tables[GW_RTB].routes.len(), 1);
}

#[tokio::test]
async fn a_name_collision_with_an_unowned_resource_is_an_error_with_a_fix() {
    let f = world();
    f.apply(
        GW,
        &Op::LoadBalancer(LoadBalancerOp::CreateLoadBalancer {
            name: "edge-nlb".into(),
            subnet_ids: vec!["subnet-0000000000000000a".into()],
            tags: Default::default(),
        }),
    )
    .unwrap();
    let (_, plan) = engine(&f).plan(&desired(&three_links())).await;
    let r = &plan.reports[&Subject::Gateway("edge".into())];
    assert_eq!(r.problems[0].code, "NameTaken");
    assert!(r.problems[0].hint.as_ref().unwrap().contains("loadBalancer: {arn:"), "{r:?}");
    assert!(plan.actions.iter().all(|a| a.subject != Subject::Gateway("edge".into())));
}

#[tokio::test]
async fn one_account_with_bad_credentials_does_not_stop_the_others() {
    let f = world();
    f.break_account(
        SVC_B,
        CloudError::new(ErrorKind::AccessDenied, "AccessDenied", "not authorized to perform sts:AssumeRole"),
    );
    let d = desired(&three_links());
    let r = apply(&f, &d).await;
    assert!(!r.converged);
    let ledger = &r.remaining.reports[&Subject::Link("ledger".into())];
    assert!(
        ledger.problems.iter().any(|p| p.code == "AccountUnavailable" && p.message.contains("AccessDenied")),
        "{ledger:?}"
    );
    for l in ["pay", "hooks"] {
        let rep = &r.remaining.reports[&Subject::Link(l.into())];
        assert!(rep.problems.is_empty() && rep.waiting.is_empty(), "{l}: {rep:?}");
    }
    assert!(
        r.remaining.actions.iter().all(|a| a.subject == Subject::Link("ledger".into())
            || matches!(&a.subject, Subject::Peering(_, b) if b == B_VPC)),
        "{:#?}",
        r.remaining.actions
    );
    // Healed: converges, and nothing of the healthy links was disturbed meanwhile.
    f.heal_account(SVC_B);
    converge(&f, &d).await;
}

/// An account that cannot be read for a passing reason (throttled AssumeRole, a 5xx, a
/// timeout) is read again with backoff until the timeout, as a failed call is; a permanent
/// reason (access denied) stops it at once.
#[tokio::test(start_paused = true)]
async fn an_account_that_cannot_be_read_for_a_passing_reason_is_read_again() {
    use crosslink_cloud::faults::{Effect, Rule};
    for (effect, what) in
        [(Effect::Throttle, "throttled"), (Effect::ServerError, "a 5xx"), (Effect::Unavailable, "unavailable")]
    {
        let f = world();
        // Every account's first three reads fail: an apply that gave up after one round would
        // converge nothing.
        for account in [GW, SVC_A, SVC_B] {
            f.script(Rule::new("Observe", effect.clone()).in_account(account).times(3));
        }
        let d = desired(&three_links());
        let r = apply(&f, &d).await;
        assert!(r.converged, "{what}: not converged after {} rounds: {:#?}", r.rounds, r.remaining.reports);
        assert!(r.rounds > 3, "{what}: {} rounds", r.rounds);
    }
    // Access denied is not retried: one round, the account's subjects fail, the others converge.
    let f = world();
    f.script(
        Rule::new("Observe", Effect::Fail(CloudError::new(ErrorKind::AccessDenied, "AccessDenied", "no")))
            .in_account(SVC_B)
            .always(),
    );
    let d = desired(&three_links());
    let started = tokio::time::Instant::now();
    let r = apply(&f, &d).await;
    assert!(!r.converged);
    assert!(started.elapsed() < Duration::from_secs(60), "a permanent error was waited on: {:?}", started.elapsed());
    let ledger = &r.remaining.reports[&Subject::Link("ledger".into())];
    assert!(ledger.problems.iter().any(|p| p.code == "AccountUnavailable"), "{ledger:?}");
}

/// Seen on the wire: a CreateTargetGroup took effect but its answer was lost; the SDK's retry got
/// DuplicateTargetGroupName (moto is not idempotent here), a permanent error. The next read shows
/// the group: `apply` goes on with the link instead of giving it up for the rest of the run.
#[tokio::test]
async fn apply_goes_on_when_a_permanent_failure_of_a_create_is_moot() {
    let f = world();
    f.push_fault(Fault {
        op: "CreateTargetGroup".into(),
        account: "*".into(),
        error: CloudError::new(
            ErrorKind::Permanent,
            "DuplicateTargetGroupName",
            "A target group with the specified name already exists.",
        ),
        after_effect: true,
    });
    let d = desired(&three_links());
    let r = converge(&f, &d).await;
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    assert!(
        r.executed.iter().any(|e| matches!(&e.result, crosslink_controller::ActionResult::Failed { error } if error.code == "DuplicateTargetGroupName")),
        "the fault was not hit"
    );
}

#[tokio::test]
async fn overlapping_live_cidrs_are_refused() {
    let f = world();
    f.seed_vpc(SVC_B, "eu-central-1", "vpc-0000000000000000d", "10.1.128.0/17", &[], "rtb-0000000000000000d");
    let text = accounts()
        + &link("clash", "svc-b", "vpc-0000000000000000d", "rtb-0000000000000000d", "10.1.200.1", 9001, "/clash", "");
    let (_, plan) = engine(&f).plan(&desired(&text)).await;
    let r = &plan.reports[&Subject::Link("clash".into())];
    assert!(r.problems.iter().any(|p| p.code == "CidrOverlap"), "{r:?}");
    assert!(plan.actions.iter().all(|a| a.op.name() != "CreateVpcPeeringConnection"));
}

#[tokio::test]
async fn a_pending_vpc_link_is_awaited_without_blocking_the_rest() {
    let f = world();
    f.set_new_vpc_link_status("PENDING");
    let d = desired(&three_links());
    let eng = engine(&f);
    let opts = ApplyOptions { timeout: Duration::from_millis(300), ..fast() };
    let r = eng.apply(&d, &opts).await;
    assert!(!r.converged);
    // Everything that does not need the VPC link is done.
    assert_eq!(live_peerings(&f).len(), 2);
    assert_eq!(state(&f, GW).listeners.len(), 3);
    let gw = &r.remaining.reports[&Subject::Gateway("edge".into())];
    assert!(gw.waiting.iter().any(|w| w.contains("PENDING")), "{gw:?}");
    assert!(
        r.remaining.actions.iter().all(|a| !a.op.is_ready() || a.verb == Verb::Deploy),
        "{:#?}",
        r.remaining.actions
    );
    f.set_vpc_link_status("AVAILABLE");
    converge(&f, &d).await;
}

#[tokio::test]
async fn creates_whose_answer_was_lost_are_found_again_not_duplicated() {
    let f = world();
    for op in [
        "CreateVpcPeeringConnection",
        "CreateTargetGroup",
        "CreateLoadBalancer",
        "CreateVpcLink",
        "CreateRestApi",
        "CreateListener",
    ] {
        f.push_fault(Fault {
            op: op.into(),
            account: "*".into(),
            error: CloudError::new(ErrorKind::Retryable, "RequestTimeout", "the connection was reset"),
            after_effect: true,
        });
    }
    let d = desired(&three_links());
    converge(&f, &d).await;
    let gw = state(&f, GW);
    assert_eq!(gw.load_balancers.len(), 1);
    assert_eq!(gw.target_groups.len(), 3);
    assert_eq!(gw.listeners.len(), 3);
    assert_eq!(gw.vpc_links.len(), 1);
    assert_eq!(gw.rest_apis.len(), 1);
    assert_eq!(live_peerings(&f).len(), 2);
}

#[tokio::test]
async fn permanent_errors_stop_the_subject_without_hot_looping() {
    let f = world();
    for _ in 0..100 {
        f.push_fault(Fault {
            op: "CreateTargetGroup".into(),
            account: "*".into(),
            error: CloudError::new(ErrorKind::Permanent, "TooManyTargetGroups", "quota exceeded"),
            after_effect: false,
        });
    }
    let r = apply(&f, &desired(&three_links())).await;
    assert!(!r.converged);
    let attempts = r.executed.iter().filter(|e| e.action.op.name() == "CreateTargetGroup").count();
    assert_eq!(attempts, 3, "one attempt per link, then the link is left alone");
    assert_eq!(r.failed[&Subject::Link("pay".into())].code, "TooManyTargetGroups");
}

#[test]
fn plan_reasons_say_what_and_why() {
    let a = Reason::Drift { field: "listenerPort".into(), live: "9100".into(), desired: "9001".into() };
    assert_eq!(a.to_string(), "drift of listenerPort: live 9100, desired 9001");
    assert_eq!(Reason::NoLongerDesired.to_string(), "no longer desired");
}

/// A random desired state. Links with `deletionPolicy: Retain` keep their port and path after
/// removal, so they get ones no later link reuses.
fn random_state(rng: &mut StdRng, step: u16) -> String {
    let mut text = accounts();
    let n = rng.random_range(0..7u64);
    let mut ports: Vec<u16> = (9001..9020).collect();
    for i in 0..n {
        let (account, vpc, rtb, net) =
            if rng.random_bool(0.5) { ("svc-a", A_VPC, A_RTB, 20) } else { ("svc-b", B_VPC, B_RTB, 30) };
        let ip = format!("10.{net}.{}.{}", rng.random_range(0..4), rng.random_range(10..13));
        let hc = if rng.random_ratio(1, 3) { "  healthCheck: {protocol: HTTP, path: /health}\n" } else { "" };
        let retain = rng.random_ratio(1, 5);
        let (port, path) = if retain {
            (9100 + step * 10 + i as u16, format!("/kept{step}x{i}"))
        } else {
            let port = ports.remove(rng.random_range(0..ports.len()));
            (
                port,
                if rng.random_bool(0.5) {
                    format!("/svc{i}")
                } else {
                    format!("/group{}/svc{i}", rng.random_range(0..2))
                },
            )
        };
        let name = if retain { format!("kept{step}x{i}") } else { format!("l{i}") };
        let extra = format!("{hc}{}", if retain { "  deletionPolicy: Retain\n" } else { "" });
        text += &link(&name, account, vpc, rtb, &ip, port, &path, &extra);
    }
    text
}

#[tokio::test]
async fn random_transitions_converge_replan_to_nothing_and_never_duplicate() {
    for seed in 1..=40u64 {
        let f = world();
        let mut rng = StdRng::seed_from_u64(seed);
        for step in 0..5u16 {
            let text = random_state(&mut rng, step);
            let d = desired(&text);
            let r = apply(&f, &d).await;
            assert!(r.converged, "seed {seed} step {step}: {:?}\n{text}\n{:#?}", r.failed, r.remaining);
            let (_, plan) = engine(&f).plan(&d).await;
            assert!(plan.actions.is_empty(), "seed {seed} step {step}: re-plan {:#?}", plan.actions);
            // No duplicates: one target group and one listener per link, one live peering per pair.
            let gw = state(&f, GW);
            let mut owners: Vec<String> =
                gw.target_groups.iter().filter_map(|t| t.tags.get("crosslink.dev/owner").cloned()).collect();
            let total = owners.len();
            owners.sort();
            owners.dedup();
            assert_eq!(owners.len(), total, "seed {seed} step {step}: duplicate target groups");
            let mut ports: Vec<u16> = gw.listeners.iter().map(|x| x.port).collect();
            ports.sort();
            ports.dedup();
            assert_eq!(ports.len(), gw.listeners.len());
            let live = live_peerings(&f);
            let mut pairs: Vec<(String, String)> =
                live.iter().map(|p| (p.requester_vpc.clone(), p.accepter_vpc.clone())).collect();
            pairs.sort();
            pairs.dedup();
            assert_eq!(pairs.len(), live.len(), "seed {seed} step {step}: duplicate peerings");
            // Every desired link has its listener.
            for l in &d.links {
                assert!(
                    gw.listeners.iter().any(|x| x.port == l.spec.listener_port),
                    "seed {seed} step {step}: {}",
                    l.metadata.name
                );
            }
        }
    }
}

#[tokio::test]
async fn a_link_moving_to_another_gateway_leaves_nothing_behind() {
    let f = world();
    const GW2: &str = "444444444444";
    f.seed_vpc(
        GW2,
        "eu-central-1",
        "vpc-0000000000000000e",
        "10.5.0.0/16",
        &["subnet-0000000000000000e"],
        "rtb-0000000000000000e",
    );
    f.seed_vpc(
        GW,
        "eu-central-1",
        "vpc-0000000000000000f",
        "10.6.0.0/16",
        &["subnet-0000000000000000f"],
        "rtb-0000000000000000f",
    );
    let gateways = format!(
        "---\napiVersion: crosslink.dev/v1alpha1\nkind: Account\nmetadata: {{name: shared2}}\nspec: {{accountId: \"{GW2}\", region: eu-central-1}}\n---\napiVersion: crosslink.dev/v1alpha1\nkind: Gateway\nmetadata: {{name: other}}\nspec:\n  account: shared2\n  vpcId: vpc-0000000000000000e\n  subnetIds: [subnet-0000000000000000e]\n  routeTableIds: [rtb-0000000000000000e]\n  loadBalancer: {{name: other-nlb}}\n  api: {{name: other-api, stage: v1}}\n---\napiVersion: crosslink.dev/v1alpha1\nkind: Gateway\nmetadata: {{name: third}}\nspec:\n  account: shared\n  vpcId: vpc-0000000000000000f\n  subnetIds: [subnet-0000000000000000f]\n  routeTableIds: [rtb-0000000000000000f]\n  loadBalancer: {{name: third-nlb}}\n  api: {{name: third-api, stage: v1}}\n"
    );
    let base = accounts() + &gateways;
    let two = |gw_pay: &str, gw_ledger: &str| {
        base.clone()
            + &link("pay", "svc-a", A_VPC, A_RTB, "10.20.1.10", 9001, "/payments", "")
                .replace("gateway: edge", &format!("gateway: {gw_pay}"))
            + &link("ledger", "svc-b", B_VPC, B_RTB, "10.30.1.10", 9003, "/accounts", "")
                .replace("gateway: edge", &format!("gateway: {gw_ledger}"))
    };
    converge(&f, &desired(&two("edge", "edge"))).await;
    // pay moves to a gateway in another account, ledger to another gateway in the same account.
    let r = converge(&f, &desired(&two("other", "third"))).await;
    let deleted: Vec<String> = r
        .executed
        .iter()
        .filter(|e| e.action.verb == Verb::Delete)
        .map(|e| format!("{} ({})", e.action.resource, e.action.reason))
        .collect();
    assert!(deleted.iter().any(|d| d.starts_with("listener :9001") && d.contains("another account")), "{deleted:?}");
    assert!(deleted.iter().any(|d| d.starts_with("listener :9003") && d.contains("Gateway/third")), "{deleted:?}");
    assert!(
        r.executed
            .iter()
            .all(|e| !(matches!(e.action.subject, Subject::Link(_)) && e.action.reason == Reason::NoLongerDesired)),
        "a move is not a removal: the prune guard must not count it"
    );
    let gw = state(&f, GW);
    let owners: Vec<&str> =
        gw.target_groups.iter().filter_map(|t| t.tags.get("crosslink.dev/owner").map(String::as_str)).collect();
    assert_eq!(owners, vec!["Link/ledger"], "pay's target group left the old account");
    let on_edge = gw.listeners.iter().filter(|x| x.load_balancer_arn.contains("/edge-nlb/")).count();
    assert_eq!(on_edge, 0, "no listener left on the old gateway's NLB");
    assert_eq!(state(&f, GW2).listeners.len(), 1);
}

#[tokio::test]
async fn peering_dns_resolution_is_set_by_the_accepter_and_kept() {
    let f = world();
    let dns = "  peering: {allowDnsResolution: true}\n";
    let text = accounts()
        + &link("pay", "svc-a", A_VPC, A_RTB, "10.20.1.10", 9001, "/payments", dns)
        + &link("hooks", "svc-a", A_VPC, A_RTB, "10.20.1.11", 9002, "/webhooks/payments", dns)
        + &link("ledger", "svc-b", B_VPC, B_RTB, "10.30.1.10", 9003, "/accounts", "");
    let d = desired(&text);
    let r = converge(&f, &d).await;
    let set: Vec<_> = r
        .executed
        .iter()
        .filter(|e| matches!(e.action.op, Op::Peering(PeeringOp::SetPeeringDnsResolution { .. })))
        .collect();
    assert_eq!(set.len(), 1, "only svc-a's peering asks for it");
    assert_eq!(set[0].action.account, "svc-a", "the accepter's side is set in the accepter's account");
    let by_vpc = |vpc: &str| live_peerings(&f).into_iter().find(|p| p.accepter_vpc == vpc).unwrap();
    assert!(by_vpc(A_VPC).accepter_dns_resolution);
    assert!(!by_vpc(B_VPC).accepter_dns_resolution);

    // Turned off out of band: drift, repaired with the reason.
    let id = by_vpc(A_VPC).id;
    f.with_account(SVC_A, |st| st.peerings.iter_mut().find(|p| p.id == id).unwrap().accepter_dns_resolution = false);
    let (_, plan) = engine(&f).plan(&d).await;
    let a = plan
        .actions
        .iter()
        .find(|a| matches!(a.op, Op::Peering(PeeringOp::SetPeeringDnsResolution { .. })))
        .expect("a repair");
    assert_eq!(a.verb, Verb::Update);
    assert_eq!(a.reason.to_string(), "drift of peering.allowDnsResolution: live false, desired true");
    converge(&f, &d).await;
    assert!(by_vpc(A_VPC).accepter_dns_resolution);

    // Dropped from the YAML: turned off again.
    converge(&f, &desired(&three_links())).await;
    assert!(!by_vpc(A_VPC).accepter_dns_resolution);
}

/// `plan -o json` is for machines: every key is camelCase, and an id not known yet is an object
/// saying what creates it, never a label where an ARN or id belongs.
#[tokio::test]
async fn plan_json_is_camel_case_and_never_puts_labels_in_id_fields() {
    fn walk(v: &serde_json::Value, path: &str, bad: &mut Vec<String>, pending: &mut usize) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    // Tag maps and reports are keyed by tag names and subjects: data.
                    let data = path.ends_with(".tags") || path == ".reports";
                    if !data && (k.contains('_') || k.starts_with(char::is_uppercase)) {
                        bad.push(format!("{path}.{k}: not camelCase"));
                    }
                    let idish = k.ends_with("Arn") || k.ends_with("Id") || k == "arn";
                    if idish
                        && let serde_json::Value::String(s) = x
                        && (s.contains(' ') || s.starts_with('('))
                    {
                        bad.push(format!("{path}.{k}: a label in an id field: {s}"));
                    }
                    if k == "knownAfterApply" {
                        *pending += 1;
                    }
                    walk(x, &format!("{path}.{k}"), bad, pending);
                }
            }
            serde_json::Value::Array(a) => {
                a.iter().enumerate().for_each(|(i, x)| walk(x, &format!("{path}[{i}]"), bad, pending))
            }
            _ => {}
        }
    }
    let f = world();
    let d = desired(&three_links());
    let (_, plan) = engine(&f).plan(&d).await;
    assert!(!plan.actions.is_empty());
    let json = serde_json::to_value(&plan).unwrap();
    let (mut bad, mut pending) = (Vec::new(), 0);
    walk(&json, "", &mut bad, &mut pending);
    assert!(bad.is_empty(), "{bad:#?}");
    assert!(pending > 0, "a fresh plan has ids known only after apply");
}

// ---- issue 19 -------------------------------------------------------------------------------

const SVC_C: &str = "555555555555";
/// A second service VPC with svc-a's CIDR (10.20.0.0/16), in its own account.
const C_VPC: &str = "vpc-0000000000000001c";
const C_RTB: &str = "rtb-0000000000000001c";
/// A VPC in svc-b's account that overlaps svc-a's without being equal (10.20.0.0/17).
const D_VPC: &str = "vpc-0000000000000001d";
const D_RTB: &str = "rtb-0000000000000001d";

/// `world()` plus the VPCs whose CIDRs overlap svc-a's.
fn world_with_twins() -> Arc<Faulty<FakeAws>> {
    let f = world();
    f.seed_vpc(SVC_C, "eu-central-1", C_VPC, "10.20.0.0/16", &["subnet-0000000000000003a"], C_RTB);
    f.seed_vpc(SVC_B, "eu-central-1", D_VPC, "10.20.0.0/17", &["subnet-0000000000000004a"], D_RTB);
    f
}

fn accounts_with_c() -> String {
    accounts()
        + &format!(
            r#"---
apiVersion: crosslink.dev/v1alpha1
kind: Account
metadata: {{name: svc-c}}
spec: {{accountId: "{SVC_C}", region: eu-central-1, assumeRole: {{roleArn: "arn:aws:iam::{SVC_C}:role/crosslink", externalId: x1}}}}
"#
        )
}

fn peering_to(f: &FakeAws, vpc: &str) -> Option<crosslink_plan::observed::Peering> {
    live_peerings(f).into_iter().find(|p| p.accepter_vpc == vpc)
}

fn gw_route(f: &FakeAws, dest: &str) -> Option<String> {
    state(f, GW).route_tables[GW_RTB]
        .routes
        .iter()
        .find(|r| r.destination.to_string() == dest)
        .and_then(|r| r.peering_id.clone())
}

#[tokio::test]
async fn two_service_vpcs_with_one_cidr_on_one_gateway_are_refused_and_never_flap() {
    let f = world_with_twins();
    let text = accounts_with_c()
        + &link("pay", "svc-a", A_VPC, A_RTB, "10.20.1.10", 9001, "/payments", "")
        + &link("twin", "svc-c", C_VPC, C_RTB, "10.20.1.10", 9002, "/twin", "")
        + &link("ledger", "svc-b", B_VPC, B_RTB, "10.30.1.10", 9003, "/accounts", "");
    let d = desired(&text);
    let (_, plan) = engine(&f).plan(&d).await;
    // The later link's peering is refused, with the reason and a way out.
    let later = Subject::Peering(GW_VPC.into(), C_VPC.into());
    let r = &plan.reports[&later];
    let p = r.problems.iter().find(|p| p.code == "PeerCidrOverlap").unwrap_or_else(|| panic!("{r:?}"));
    assert!(p.message.contains("10.20.0.0/16") && p.message.contains(A_VPC) && p.message.contains(GW_RTB), "{p:?}");
    let hint = p.hint.as_deref().unwrap_or_default();
    assert!(hint.contains("another gateway") && hint.contains("PrivateLink"), "{hint}");
    assert!(plan.report(&Subject::Peering(GW_VPC.into(), A_VPC.into())).is_none_or(|r| r.problems.is_empty()));
    assert!(plan.reports[&Subject::Link("twin".into())].problems.iter().any(|p| p.code == "PeerCidrOverlap"));
    // Nothing is done for the refused link and its peering; the others go ahead.
    let twin = Subject::Link("twin".into());
    assert!(plan.actions.iter().all(|a| a.subject != later && a.subject != twin), "{:#?}", plan.actions);
    assert!(plan.actions.iter().any(|a| a.subject == Subject::Link("pay".into())));

    let r = apply(&f, &d).await;
    assert!(!r.converged);
    let failed: Vec<_> = r.executed.iter().filter(|e| matches!(e.result, ActionResult::Failed { .. })).collect();
    assert!(failed.is_empty(), "no call fails (RouteAlreadyExists): {failed:#?}");
    let pay_pcx = peering_to(&f, A_VPC).expect("pay's peering").id;
    assert_eq!(gw_route(&f, "10.20.0.0/16"), Some(pay_pcx.clone()));
    assert!(peering_to(&f, C_VPC).is_none(), "no peering for the refused link");
    // Run again and again: nothing changes, no route is swapped.
    let before = f.calls().len();
    for _ in 0..3 {
        assert_eq!(apply(&f, &d).await.mutations(), 0);
    }
    assert_eq!(f.calls().len(), before);
    assert!(f.calls().iter().all(|(_, op)| op != "ReplaceRoute"), "{:?}", f.calls());
    assert_eq!(gw_route(&f, "10.20.0.0/16"), Some(pay_pcx));
}

/// When the overlap cannot be seen (the first link's service account cannot be read), the route
/// the first link's peering holds is contested, not taken over.
#[tokio::test]
async fn a_route_held_by_another_links_peering_is_contested_not_replaced() {
    let f = world_with_twins();
    let pay = accounts_with_c() + &link("pay", "svc-a", A_VPC, A_RTB, "10.20.1.10", 9001, "/payments", "");
    converge(&f, &desired(&pay)).await;
    let pay_pcx = peering_to(&f, A_VPC).unwrap().id;
    f.break_account(SVC_A, CloudError::new(ErrorKind::AccessDenied, "AccessDenied", "no"));
    let both = pay.clone() + &link("twin", "svc-c", C_VPC, C_RTB, "10.20.1.10", 9002, "/twin", "");
    let d = desired(&both);
    let r = apply(&f, &d).await;
    assert!(!r.converged);
    assert!(
        r.executed.iter().all(|e| !matches!(e.action.op, Op::Route(RouteOp::ReplaceRoute { .. }))),
        "{:#?}",
        r.executed
    );
    assert_eq!(gw_route(&f, "10.20.0.0/16"), Some(pay_pcx.clone()));
    let twin = &r.remaining.reports[&Subject::Peering(GW_VPC.into(), C_VPC.into())];
    assert!(!twin.problems.is_empty(), "{twin:?}");
    // Healed: pay is first in desired order and keeps the route; twin stays refused.
    f.heal_account(SVC_A);
    let r = apply(&f, &d).await;
    assert!(
        r.executed.iter().all(|e| !matches!(e.action.op, Op::Route(RouteOp::ReplaceRoute { .. }))),
        "{:#?}",
        r.executed
    );
    assert_eq!(gw_route(&f, "10.20.0.0/16"), Some(pay_pcx));
    let twin = &r.remaining.reports[&Subject::Peering(GW_VPC.into(), C_VPC.into())];
    assert!(twin.problems.iter().any(|p| p.code == "PeerCidrOverlap"), "{twin:?}");
}

/// A change of a route's target: (route table, destination, before, after).
type RouteChange = (String, String, Option<String>, Option<String>);

/// A cloud that records every change of a route's target.
struct RouteLog {
    inner: Arc<Faulty<FakeAws>>,
    log: std::sync::Mutex<Vec<RouteChange>>,
}

impl RouteLog {
    fn target(&self, account: &str, rtb: &str, dest: &str) -> Option<String> {
        let st = state(&self.inner, account);
        let r = st.route_tables.get(rtb)?.routes.iter().find(|r| r.destination.to_string() == dest)?.clone();
        Some(r.peering_id.or(r.other_target).unwrap_or_default())
    }
}

impl crosslink_cloud::Cloud for RouteLog {
    async fn observe(
        &self,
        account: &crosslink_desired::Account,
        scope: &crosslink_cloud::ObserveScope,
    ) -> AccountObservation {
        self.inner.observe(account, scope).await
    }

    async fn execute(
        &self,
        account: &crosslink_desired::Account,
        op: &Op,
    ) -> Result<crosslink_cloud::Outcome, CloudError> {
        let key = match op {
            Op::Route(RouteOp::CreateRoute { route_table_id, destination, .. })
            | Op::Route(RouteOp::ReplaceRoute { route_table_id, destination, .. })
            | Op::Route(RouteOp::DeleteRoute { route_table_id, destination }) => {
                Some((route_table_id.clone(), destination.to_string()))
            }
            _ => None,
        };
        let id = &account.spec.account_id;
        let before = key.as_ref().map(|(t, d)| self.target(id, t, d));
        let r = self.inner.execute(account, op).await;
        if let (Some((t, d)), Some(before)) = (key, before) {
            let after = self.target(id, &t, &d);
            if before != after {
                self.log.lock().unwrap().push((t, d, before, after));
            }
        }
        r
    }
}

/// Random desired states over service VPCs that overlap (svc-a's 10.20.0.0/16 twice, and
/// 10.20.0.0/17), in random order, some links retained.
fn random_overlapping_state(rng: &mut StdRng, step: u16) -> String {
    let mut text = accounts_with_c();
    let n = rng.random_range(1..6u64);
    let mut ports: Vec<u16> = (9001..9020).collect();
    for i in 0..n {
        let (account, vpc, rtb, ip) = match rng.random_range(0..4) {
            0 => ("svc-a", A_VPC, A_RTB, "10.20.1.10"),
            1 => ("svc-c", C_VPC, C_RTB, "10.20.1.11"),
            2 => ("svc-b", D_VPC, D_RTB, "10.20.1.12"),
            _ => ("svc-b", B_VPC, B_RTB, "10.30.1.10"),
        };
        let retain = rng.random_ratio(1, 4);
        let (name, port, path) = if retain {
            (format!("kept{step}x{i}"), 9100 + step * 10 + i as u16, format!("/kept{step}x{i}"))
        } else {
            (format!("l{i}"), ports.remove(rng.random_range(0..ports.len())), format!("/svc{i}"))
        };
        let extra = if retain { "  deletionPolicy: Retain\n" } else { "" };
        text += &link(&name, account, vpc, rtb, ip, port, &path, extra);
    }
    text
}

/// The property: no plan, applied, ever leads to a plan that undoes it. A route's target never
/// swings back (a ReplaceRoute A -> B followed later by B -> A), never returns to a target it
/// left while desired state stays the same, and a second apply of the same state changes no
/// route; no CreateRoute runs into an existing route.
#[tokio::test]
async fn random_transitions_with_overlapping_service_cidrs_never_flap_routes() {
    for seed in 1..=30u64 {
        let fake = world_with_twins();
        let cloud = Arc::new(RouteLog { inner: fake.clone(), log: Default::default() });
        let eng = Engine::new(cloud.clone(), EngineOptions::default());
        let mut rng = StdRng::seed_from_u64(seed);
        let mut replaced: Vec<(String, String, String, String)> = Vec::new();
        for step in 0..6u16 {
            let text = random_overlapping_state(&mut rng, step);
            let d = desired(&text);
            cloud.log.lock().unwrap().clear();
            let r = eng.apply(&d, &fast()).await;
            for e in &r.executed {
                if let ActionResult::Failed { error } = &e.result {
                    assert_ne!(
                        error.code, "RouteAlreadyExists",
                        "seed {seed} step {step}: {}\n{text}",
                        e.action.resource
                    );
                }
            }
            let changes = cloud.log.lock().unwrap().clone();
            // Within one desired state, a route never returns to a target it left.
            let mut seen: BTreeMap<(String, String), Vec<Option<String>>> = BTreeMap::new();
            for (t, dst, before, after) in &changes {
                let h = seen.entry((t.clone(), dst.clone())).or_insert_with(|| vec![before.clone()]);
                assert!(
                    after.is_none() || !h.contains(after),
                    "seed {seed} step {step}: route {dst} in {t} went back to {after:?} after {h:?}\n{text}"
                );
                h.push(after.clone());
            }
            // Across all states, no replacement is ever undone.
            for (t, dst, before, after) in changes {
                if let (Some(b), Some(a)) = (before, after) {
                    assert!(
                        !replaced.contains(&(t.clone(), dst.clone(), a.clone(), b.clone())),
                        "seed {seed} step {step}: route {dst} in {t} swung back from {b} to {a}\n{text}"
                    );
                    replaced.push((t, dst, b, a));
                }
            }
            // Stable: applying the same state again changes no route.
            cloud.log.lock().unwrap().clear();
            let again = eng.apply(&d, &fast()).await;
            let changes = cloud.log.lock().unwrap().clone();
            assert!(changes.is_empty(), "seed {seed} step {step}: second apply changed routes {changes:?}\n{text}");
            if r.converged {
                assert_eq!(again.mutations(), 0, "seed {seed} step {step}: {:#?}", again.executed);
            }
        }
    }
}

#[tokio::test]
async fn a_peering_kept_by_retain_is_never_deleted_after_its_pair_is_linked_again() {
    let f = world();
    let base = accounts() + &link("pay", "svc-a", A_VPC, A_RTB, "10.20.1.10", 9001, "/payments", "");
    let kept = base.clone()
        + &link("ledger", "svc-b", B_VPC, B_RTB, "10.30.1.10", 9003, "/accounts", "  deletionPolicy: Retain\n");
    converge(&f, &desired(&kept)).await;
    let pcx = peering_to(&f, B_VPC).expect("ledger's peering").id;
    // Removed: everything of ledger stays.
    converge(&f, &desired(&base)).await;
    assert_eq!(peering_to(&f, B_VPC).map(|p| p.id), Some(pcx.clone()));
    // Another link into the same VPC, with the default policy: the retained peering is adopted and
    // stays Retain, and the plan says why.
    let again = base.clone() + &link("audit", "svc-b", B_VPC, B_RTB, "10.30.1.20", 9004, "/audit", "");
    let d = desired(&again);
    let (_, plan) = engine(&f).plan(&d).await;
    assert!(
        plan.actions.iter().all(|a| !matches!(a.op, Op::Peering(PeeringOp::CreateEc2Tags { .. }))),
        "{:#?}",
        plan.actions
    );
    let report = &plan.reports[&Subject::Peering(GW_VPC.into(), B_VPC.into())];
    assert!(
        report.retained.iter().any(|k| k.contains(&pcx) && k.contains("Link/ledger")),
        "the plan says the peering stays retained: {report:?}"
    );
    converge(&f, &d).await;
    let p = peering_to(&f, B_VPC).unwrap();
    assert_eq!(p.id, pcx, "adopted, not replaced");
    assert_eq!(p.tags.get("crosslink.dev/deletion-policy").map(String::as_str), Some("Retain"));
    // That link goes too: its own resources go, the peering ledger still uses stays.
    let r = converge(&f, &desired(&base)).await;
    let deleted: Vec<&str> =
        r.executed.iter().filter(|e| e.action.verb == Verb::Delete).map(|e| e.action.resource.as_str()).collect();
    assert!(deleted.iter().any(|x| x.starts_with("listener :9004")), "{deleted:?}");
    assert!(!deleted.iter().any(|x| x.starts_with("peering") || x.starts_with("route")), "{deleted:?}");
    assert_eq!(peering_to(&f, B_VPC).map(|p| p.id), Some(pcx.clone()));
    assert_eq!(gw_route(&f, "10.30.0.0/16"), Some(pcx));
    assert!(state(&f, GW).listeners.iter().any(|x| x.port == 9003), "ledger's listener is still there");
}

/// Watches the gateway after every call: the ports the deployed stage sends traffic to (the
/// integrations as they were at the last deployment) must each have a listener.
struct DeployWatch {
    inner: Arc<Faulty<FakeAws>>,
    deployed: std::sync::Mutex<BTreeSet<u16>>,
    calls: std::sync::Mutex<Vec<String>>,
    violations: std::sync::Mutex<Vec<String>>,
}

fn integration_ports(f: &FakeAws) -> BTreeSet<u16> {
    let gw = state(f, GW);
    gw.rest_apis
        .iter()
        .flat_map(|a| a.resources.iter())
        .flat_map(|r| r.methods.values())
        .filter_map(|m| m.integration.as_ref()?.uri.clone())
        .filter_map(|u| u.split(':').nth(2)?.split('/').next()?.parse().ok())
        .collect()
}

impl crosslink_cloud::Cloud for DeployWatch {
    async fn observe(
        &self,
        account: &crosslink_desired::Account,
        scope: &crosslink_cloud::ObserveScope,
    ) -> AccountObservation {
        self.inner.observe(account, scope).await
    }

    async fn execute(
        &self,
        account: &crosslink_desired::Account,
        op: &Op,
    ) -> Result<crosslink_cloud::Outcome, CloudError> {
        let r = self.inner.execute(account, op).await;
        let what = match op {
            Op::Listener(ListenerOp::CreateListener { port, .. })
            | Op::Listener(ListenerOp::ModifyListener { port, .. }) => format!("{} :{port}", op.name()),
            Op::Listener(ListenerOp::DeleteListener { arn }) => {
                format!("DeleteListener {arn}")
            }
            Op::Method(MethodOp::PutProxyMethod { uri, .. }) => format!("PutProxyMethod {uri}"),
            _ => op.name().to_string(),
        };
        self.calls.lock().unwrap().push(what.clone());
        if r.is_ok() && matches!(op, Op::Stage(StageOp::CreateDeployment { .. })) {
            *self.deployed.lock().unwrap() = integration_ports(&self.inner);
        }
        let listening: BTreeSet<u16> = self.inner.observe_account_listeners(GW).into_iter().collect();
        let deployed = self.deployed.lock().unwrap().clone();
        if !deployed.is_subset(&listening) {
            self.violations
                .lock()
                .unwrap()
                .push(format!("after {what}: deployed {deployed:?}, listening {listening:?}"));
        }
        r
    }
}

#[tokio::test]
async fn a_listener_port_change_is_made_before_the_old_port_is_broken() {
    let f = world();
    converge(&f, &desired(&three_links())).await;
    let old = state(&f, GW).listeners.iter().find(|x| x.port == 9003).unwrap().arn.clone();
    let watch = Arc::new(DeployWatch {
        inner: f.clone(),
        deployed: std::sync::Mutex::new(integration_ports(&f)),
        calls: Default::default(),
        violations: Default::default(),
    });
    assert!(watch.deployed.lock().unwrap().contains(&9003));
    let eng = Engine::new(watch.clone(), EngineOptions::default());
    let d = desired(&three_links().replace("listenerPort: 9003", "listenerPort: 9303"));

    // The plan says it: a new listener first, the integrations, the deployment, then the old one.
    let (_, plan) = eng.plan(&d).await;
    let ledger: Vec<String> = plan
        .actions
        .iter()
        .filter(|a| a.subject == Subject::Link("ledger".into()))
        .map(|a| format!("{} {} ({})", a.verb.as_str(), a.resource, a.reason))
        .collect();
    let text = ledger.join("\n");
    assert!(
        text.contains("create listener :9303 on edge-nlb (drift of listenerPort: live 9003, desired 9303)"),
        "{text}"
    );
    let del = plan
        .actions
        .iter()
        .find(|a| matches!(&a.op, Op::Listener(ListenerOp::DeleteListener { arn }) if *arn == old))
        .expect(&text);
    assert!(del.reason.to_string().contains("after"), "the reason says when the old one goes: {}", del.reason);
    let deploy = plan.actions.iter().find(|a| a.verb == Verb::Deploy).expect("a deployment");
    assert!(del.deps.contains(&deploy.id), "{del:?}");
    let create = plan
        .actions
        .iter()
        .find(|a| matches!(a.op, Op::Listener(ListenerOp::CreateListener { port: 9303, .. })))
        .unwrap();
    for put in plan
        .actions
        .iter()
        .filter(|a| matches!(&a.op, Op::Method(MethodOp::PutProxyMethod { uri, .. }) if uri.contains(":9303/")))
    {
        assert!(put.deps.contains(&create.id), "{put:?}");
    }
    assert!(plan.actions.iter().all(|a| !matches!(a.op, Op::Listener(ListenerOp::ModifyListener { .. }))));

    let r = eng.apply(&d, &fast()).await;
    assert!(r.converged, "{:#?}", r.remaining);
    let calls = watch.calls.lock().unwrap().clone();
    let at = |p: &dyn Fn(&String) -> bool| calls.iter().position(p).unwrap_or_else(|| panic!("{calls:#?}"));
    let created = at(&|c| c == "CreateListener :9303");
    let put = at(&|c| c.starts_with("PutProxyMethod") && c.contains(":9303/"));
    let deployed = at(&|c| c == "CreateDeployment");
    let deleted = at(&|c| *c == format!("DeleteListener {old}"));
    assert!(created < put && put < deployed && deployed < deleted, "{calls:#?}");
    let violations = watch.violations.lock().unwrap().clone();
    assert!(violations.is_empty(), "traffic was cut: {violations:#?}\n{calls:#?}");
    assert_eq!(state(&f, GW).listeners.iter().filter(|x| x.port == 9303 || x.port == 9003).count(), 1);
    let (_, plan) = eng.plan(&d).await;
    assert!(plan.actions.is_empty(), "{:#?}", plan.actions);
}

#[tokio::test]
async fn the_first_plan_shows_every_change_and_counts_a_fresh_setup_as_creation() {
    let f = world();
    let dns = "  peering: {allowDnsResolution: true}\n";
    let text = accounts()
        + &link("pay", "svc-a", A_VPC, A_RTB, "10.20.1.10", 9001, "/payments", dns)
        + &link("hooks", "svc-a", A_VPC, A_RTB, "10.20.1.11", 9002, "/webhooks/payments", dns)
        + &link("ledger", "svc-b", B_VPC, B_RTB, "10.30.1.10", 9003, "/accounts", "");
    let d = desired(&text);
    let (_, plan) = engine(&f).plan(&d).await;
    // The DNS option is in the first plan: after the acceptance, on the peering made before it.
    let set = plan
        .actions
        .iter()
        .find(|a| matches!(a.op, Op::Peering(PeeringOp::SetPeeringDnsResolution { .. })))
        .expect("planned");
    assert!(matches!(
        &set.op,
        Op::Peering(PeeringOp::SetPeeringDnsResolution {
            peering_id: crosslink_plan::op::Ref::Pending(_),
            allow: true
        })
    ));
    assert!(!matches!(set.reason, Reason::Drift { .. }), "{}", set.reason);
    assert_eq!(set.reason.to_string(), "set after acceptance");
    let accept =
        plan.actions.iter().find(|a| a.verb == Verb::Accept && a.subject == set.subject).expect("the acceptance");
    assert!(set.deps.contains(&accept.id), "{set:?}");
    // A fresh setup is creation only.
    let c = plan.counts();
    assert_eq!((c.create, c.update, c.delete), (plan.actions.len(), 0, 0), "{:#?}", plan.actions);

    // What is shown is what is made, and none of it is drift.
    let r = converge(&f, &d).await;
    assert_eq!(r.mutations(), plan.actions.len(), "{:#?}", r.executed);
    let drift: Vec<_> = r.executed.iter().filter(|e| matches!(e.action.reason, Reason::Drift { .. })).collect();
    assert!(drift.is_empty(), "{drift:#?}");
    assert!(peering_to(&f, A_VPC).unwrap().accepter_dns_resolution);

    // Real updates stay updates: a changed health check, a target added to a live group.
    let changed = text
        .replace("10.30.1.10, port: 8080}]", "10.30.1.10, port: 8080}, {ip: 10.30.1.11, port: 8080}]")
        .replace("listenerPort: 9001\n", "listenerPort: 9001\n  healthCheck: {protocol: HTTP, path: /health}\n");
    let (_, plan) = engine(&f).plan(&desired(&changed)).await;
    let c = plan.counts();
    assert_eq!(c.update, 2, "{:#?}", plan.actions);
}

#[tokio::test]
async fn a_blocked_link_gets_no_actions_and_its_problem_is_counted_once() {
    let f = world();
    // ledger lists a route table its account does not have: its peering is blocked, and so is
    // the link (its chain cannot work); the others go ahead.
    let text = accounts()
        + &link("pay", "svc-a", A_VPC, A_RTB, "10.20.1.10", 9001, "/payments", "")
        + &link("ledger", "svc-b", B_VPC, "rtb-0000000000000009c", "10.30.1.10", 9003, "/accounts", "");
    let d = desired(&text);
    let (_, plan) = engine(&f).plan(&d).await;
    let pair = Subject::Peering(GW_VPC.into(), B_VPC.into());
    let ledger = Subject::Link("ledger".into());
    assert!(plan.reports[&pair].problems.iter().any(|p| p.code == "NotFound"), "{:?}", plan.reports[&pair]);
    assert!(!plan.reports[&ledger].problems.is_empty());
    let blocked: Vec<_> = plan.actions.iter().filter(|a| a.subject == pair || a.subject == ledger).collect();
    assert!(blocked.is_empty(), "{blocked:#?}");
    assert!(plan.actions.iter().any(|a| a.subject == Subject::Link("pay".into())));
    // The API is deployed without ledger's routes (nothing points at a listener that is not made).
    assert!(plan.actions.iter().all(|a| !a.resource.contains("/accounts")), "{:#?}", plan.actions);
    for a in &plan.actions {
        assert!(a.deps.iter().all(|d| *d < plan.actions.len() && plan.actions[*d].id == *d), "{a:?}");
    }
    let r = apply(&f, &d).await;
    assert!(r.executed.iter().all(|e| e.action.subject != ledger && e.action.subject != pair));
    assert!(peering_to(&f, B_VPC).is_none());
    assert!(state(&f, GW).listeners.iter().all(|x| x.port != 9003));
}

/// Issue 13 item 4: ids a create answers with are handed to the actions that need them in the
/// same pass (REST API -> resource -> child -> `{proxy+}` -> method -> deployment, NLB -> VPC link
/// and listeners, target group -> targets, peering -> acceptance -> routes and DNS). With no
/// asynchrony (the in-memory AWS, like moto: VPC links AVAILABLE at once) a fresh fleet takes one
/// observation and execution, and one confirming observation.
#[tokio::test]
async fn a_fresh_fleet_converges_in_one_execution_and_one_confirming_observation() {
    let f = world();
    let dns = "  peering: {allowDnsResolution: true}\n";
    let text = accounts()
        + &link("pay", "svc-a", A_VPC, A_RTB, "10.20.1.10", 9001, "/payments", dns)
        + &link("hooks", "svc-a", A_VPC, A_RTB, "10.20.1.11", 9002, "/webhooks/payments", dns)
        + &link("ledger", "svc-b", B_VPC, B_RTB, "10.30.1.10", 9003, "/accounts", "");
    let d = desired(&text);
    let (_, first) = engine(&f).plan(&d).await;
    let r = converge(&f, &d).await;
    assert_eq!(r.rounds, 2, "rounds: {}; executed {:#?}", r.rounds, r.executed);
    // Everything the first plan showed was made in that one pass, each once, none failed.
    assert_eq!(r.mutations(), first.actions.len(), "{:#?}", r.executed);
    assert!(r.executed.iter().all(|e| matches!(e.result, ActionResult::Done { .. })), "{:#?}", r.executed);
    let deployments = f.calls().iter().filter(|(_, op)| op == "CreateDeployment").count();
    assert_eq!(deployments, 1);
    // What was made with ids handed over is what the next observation plans nothing for: the
    // deployed hash covers the real DNS name and VPC link id, routes target the new peerings.
    let (_, third) = engine(&f).plan(&d).await;
    assert!(third.in_sync(), "{:#?}", third);
    let gw = state(&f, GW);
    let m = &gw.rest_apis[0].resources.iter().find(|r| r.path == "/payments/{proxy+}").unwrap().methods["ANY"];
    let uri = m.integration.as_ref().unwrap().uri.clone().unwrap();
    assert!(uri.starts_with(&format!("http://{}:", gw.load_balancers[0].dns_name)), "{uri}");
    assert!(live_peerings(&f).iter().all(|p| p.status == PeeringStatus::Active));
    assert!(peering_to(&f, A_VPC).unwrap().accepter_dns_resolution);
}

/// A VPC link PENDING when created (real AWS, for minutes): in the same pass everything that
/// does not need it is made, the methods and the deployment wait for a later round, as the
/// next round's plan would have them wait.
#[tokio::test]
async fn a_vpc_link_created_pending_holds_back_only_its_methods_and_the_deployment() {
    let f = world();
    f.set_new_vpc_link_status("PENDING");
    let d = desired(&three_links());
    let (_, plan) = engine(&f).plan(&d).await;
    let executed = engine(&f)
        .execute(
            &d,
            &plan,
            &crosslink_controller::ExecContext { shards: None, hold: &|_| None, stop: None, revision: None },
        )
        .await;
    let of = |name: &'static str| executed.iter().filter(move |e| e.action.op.name() == name);
    assert!(of("CreateVpcLink").all(|e| matches!(e.result, ActionResult::Done { .. })));
    for held in ["PutMethod+PutIntegration", "CreateDeployment"] {
        assert!(of(held).count() > 0, "{held} not planned");
        assert!(of(held).all(|e| matches!(e.result, ActionResult::Skipped { .. })), "{held}: {executed:#?}");
    }
    for made in ["CreateResource", "CreateListener", "RegisterTargets", "AcceptVpcPeeringConnection", "CreateRoute"] {
        assert!(of(made).count() > 0, "{made} not planned");
        assert!(of(made).all(|e| matches!(e.result, ActionResult::Done { .. })), "{made}: {executed:#?}");
    }
    assert_eq!(f.calls().iter().filter(|(_, op)| op == "PutMethod+PutIntegration").count(), 0);
    f.set_vpc_link_status("AVAILABLE");
    converge(&f, &d).await;
}

/// Real AWS is eventually consistent across accounts: the accepter may answer NotFound for a
/// peering requested a moment ago. An acceptance chained right after the request that does so
/// is waiting, not failing: no failure is reported and the next round accepts.
#[tokio::test]
async fn an_acceptance_chained_before_the_accepter_sees_the_peering_waits_for_the_next_round() {
    let f = world();
    f.set_accepter_lag(1);
    let d = desired(&three_links());
    let r = converge(&f, &d).await;
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    assert!(
        r.executed.iter().all(|e| !matches!(e.result, ActionResult::Failed { .. })),
        "a wait was counted as a failure: {:#?}",
        r.executed
    );
    let accepts: Vec<_> = f.attempts().into_iter().filter(|a| a.op == "AcceptVpcPeeringConnection").collect();
    assert_eq!(
        accepts.iter().filter(|a| a.outcome == "InvalidVpcPeeringConnectionID.NotFound").count(),
        2,
        "both chained acceptances met the lag: {accepts:#?}"
    );
    assert_eq!(accepts.iter().filter(|a| a.outcome == "ok").count(), 2, "{accepts:#?}");
    // One round more than without the lag: the acceptance, routes and DNS follow in round two.
    assert_eq!(r.rounds, 3, "{:#?}", r.executed);
    assert!(live_peerings(&f).iter().all(|p| p.status == PeeringStatus::Active));
}

/// The in-memory AWS behind client-side rate limits: calls to one service of one account wait
/// for a token (a bucket throttled to a crawl) before they take one of the engine's slots; each
/// request then takes a millisecond. Records the order of answers and the requests in flight.
struct Limited {
    aws: Arc<Faulty<FakeAws>>,
    crawl: (&'static str, crosslink_plan::op::Service),
    answered: std::sync::Mutex<Vec<(String, crosslink_plan::op::Service, &'static str)>>,
    in_flight: std::sync::atomic::AtomicUsize,
    max_in_flight: std::sync::atomic::AtomicUsize,
}

impl crosslink_cloud::Cloud for Limited {
    async fn observe(
        &self,
        account: &crosslink_desired::Account,
        scope: &crosslink_cloud::ObserveScope,
    ) -> AccountObservation {
        self.aws.observe(account, scope).await
    }

    async fn execute(
        &self,
        account: &crosslink_desired::Account,
        op: &Op,
    ) -> Result<crosslink_cloud::Outcome, CloudError> {
        use std::sync::atomic::Ordering::SeqCst;
        let id = account.spec.account_id.as_str();
        if (id, op.service()) == self.crawl {
            tokio::time::sleep(Duration::from_secs(10)).await; // the token
        }
        let _slot = crosslink_cloud::slots::acquire().await?;
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.max_in_flight.fetch_max(now, SeqCst);
        tokio::time::sleep(Duration::from_millis(1)).await;
        let r = self.aws.apply(id, op);
        self.in_flight.fetch_sub(1, SeqCst);
        self.answered.lock().unwrap().push((id.to_string(), op.service(), op.name()));
        r
    }
}

/// Issue 13 item 5: waiting for a rate-limit token holds none of the `--concurrency` slots, so
/// the calls of other accounts and services are not served after a throttled bucket's; and
/// `--concurrency` still bounds the requests in flight.
#[tokio::test(start_paused = true)]
async fn a_throttled_bucket_holds_no_slot_other_accounts_and_services_could_use() {
    use crosslink_plan::op::Service;
    let limited = Arc::new(Limited {
        aws: world(),
        crawl: (GW, Service::ApiGateway),
        answered: Default::default(),
        in_flight: Default::default(),
        max_in_flight: Default::default(),
    });
    let d = desired(&three_links());
    let opts = EngineOptions { concurrency: 2, ..EngineOptions::default() };
    let eng = Engine::new(limited.clone(), opts);
    let (_, plan) = eng.plan(&d).await;
    let hold = |_: &crosslink_plan::Action| None;
    let ctx = crosslink_controller::ExecContext { shards: None, hold: &hold, stop: None, revision: None };
    let executed = eng.execute(&d, &plan, &ctx).await;
    assert!(executed.iter().all(|e| matches!(e.result, ActionResult::Done { .. })), "{executed:#?}");
    let answered = limited.answered.lock().unwrap().clone();
    let slow: Vec<usize> =
        (0..answered.len()).filter(|i| (answered[*i].0.as_str(), answered[*i].1) == limited.crawl).collect();
    let fast: Vec<usize> = (0..answered.len()).filter(|i| !slow.contains(i)).collect();
    assert!(slow.len() >= 5 && fast.len() >= 10, "{answered:#?}");
    // Every call of the other buckets is answered before the throttled one's second answer.
    assert!(fast.iter().all(|i| *i < slow[1]), "a throttled bucket held up the others: {answered:#?}");
    // And never more requests in flight than slots; both slots were used.
    assert_eq!(limited.max_in_flight.load(std::sync::atomic::Ordering::SeqCst), 2);
}

/// Issue 13 item 6: after its first (full) observation, an apply's rounds read only what the
/// round before changed or waits for: adding a link in one service account does not read the
/// other service account again, nor the targets of the other links.
#[tokio::test]
async fn an_applys_later_rounds_read_only_what_they_changed() {
    let f = world();
    converge(&f, &desired(&three_links())).await;
    let before = f.observations();
    let skipped = f.target_reads_skipped();
    let more = three_links() + &link("fx", "svc-a", A_VPC, A_RTB, "10.20.1.12", 9004, "/fx", "");
    let r = converge(&f, &desired(&more)).await;
    assert!(r.rounds >= 2, "{} rounds", r.rounds);
    let after = f.observations();
    let read =
        |m: &BTreeMap<String, u64>, a: &str| m.get(a).copied().unwrap_or(0) - before.get(a).copied().unwrap_or(0);
    // `converge` also plans once more afterwards (a full observation): one read more each.
    assert_eq!(read(&after, SVC_B), 2, "svc-b is read in the first round only (and by the final check)");
    assert_eq!(read(&after, GW), r.rounds as u64 + 1, "the gateway account is read every round");
    assert_eq!(read(&after, SVC_A), r.rounds as u64 + 1, "the new link's account is read every round");
    // Rounds after the first leave out the three other links' targets.
    assert!(
        f.target_reads_skipped() >= skipped + 3 * (r.rounds as u64 - 1),
        "{} target reads skipped in {} rounds",
        f.target_reads_skipped() - skipped,
        r.rounds
    );
}

/// The target groups' targets as one observation read them, per ARN.
fn targets_of(o: &crosslink_plan::observed::Observed) -> BTreeMap<String, Vec<String>> {
    o.accounts
        .values()
        .filter_map(|a| match a {
            AccountObservation::Ok(s) => Some(s),
            _ => None,
        })
        .flat_map(|s| s.target_groups.iter())
        .map(|t| (t.arn.clone(), t.targets.iter().map(|r| format!("{}:{}", r.ip, r.health)).collect()))
        .collect()
}

/// Issue 18, the cost of reading health: a full pass with a `HealthSample` reads the targets of
/// each settled (all healthy) target group one pass in `every`, spread over the passes; a group
/// with a target not healthy every pass; a group never read before and those of the pass's
/// subjects every pass; and `every: 1` every group every pass.
#[tokio::test]
async fn full_passes_read_settled_target_groups_one_pass_in_every() {
    use crosslink_controller::focus::{Focus, HealthSample};
    let f = world();
    let d = desired(&three_links());
    converge(&f, &d).await;
    let eng = engine(&f);
    let mut previous = eng.observe_only(&d, None).await;
    let arns: Vec<String> = targets_of(&previous).keys().cloned().collect();
    assert_eq!(arns.len(), 3);
    let every = 3u64;
    let mut pass = 0u64;
    // `passes` full passes from `previous`, with `subjects`: the reads per ARN.
    async fn passes(
        eng: &Engine<Faulty<FakeAws>>,
        f: &Arc<Faulty<FakeAws>>,
        d: &DesiredState,
        previous: &mut crosslink_plan::observed::Observed,
        pass: &mut u64,
        n: u64,
        every: u64,
        subjects: &[Subject],
    ) -> BTreeMap<String, u64> {
        let before = f.target_reads();
        for _ in 0..n {
            *pass += 1;
            let focus = Focus::full(d, subjects.iter().cloned(), &BTreeMap::new(), HealthSample { pass: *pass, every });
            let (observed, read) = eng.observe_focused(d, previous, &focus, None).await;
            assert_eq!(read.len(), 3, "a full pass reads every account: {read:?}");
            *previous = observed;
        }
        let after = f.target_reads();
        after.iter().map(|(a, n)| (a.clone(), n - before.get(a).copied().unwrap_or(0))).collect()
    }

    // Settled: each group read exactly once in every `every` passes (2 in 6), 6 reads in all
    // instead of 18; the observation still carries every group's targets.
    let reads = passes(&eng, &f, &d, &mut previous, &mut pass, 2 * every, every, &[]).await;
    for arn in &arns {
        assert_eq!(reads.get(arn).copied().unwrap_or(0), 2, "{arn}: {reads:?}");
    }
    assert!(targets_of(&previous).values().all(|t| t.len() == 1 && t[0].ends_with(":healthy")), "{previous:#?}");

    // One group's target fails behind crosslink's back: seen within `every` passes, and from
    // then on its group is read every pass; the others stay at one in `every`.
    let hooks_arn = {
        let gw = state(&f, GW);
        gw.target_groups
            .iter()
            .find(|t| crosslink_plan::tags::owner_subject(&t.tags) == Some(Subject::Link("hooks".into())))
            .map(|t| t.arn.clone())
            .unwrap()
    };
    let failing = arns.iter().find(|a| **a != hooks_arn).unwrap().clone();
    f.with_account(GW, |s| {
        for tg in s.target_groups.iter_mut().filter(|t| t.arn == failing) {
            tg.targets[0].health = "unhealthy".into();
        }
    });
    let mut seen_after = None;
    for i in 1..=every {
        passes(&eng, &f, &d, &mut previous, &mut pass, 1, every, &[]).await;
        if targets_of(&previous)[&failing][0].ends_with(":unhealthy") {
            seen_after = Some(i);
            break;
        }
    }
    assert!(seen_after.is_some(), "an unhealthy target was not seen in {every} full passes");
    let reads = passes(&eng, &f, &d, &mut previous, &mut pass, 2 * every, every, &[]).await;
    assert_eq!(reads[&failing], 2 * every, "a group with an unhealthy target is read every pass: {reads:?}");
    for arn in arns.iter().filter(|a| **a != failing) {
        assert_eq!(reads.get(arn).copied().unwrap_or(0), 2, "{arn}: {reads:?}");
    }

    // A pass's subjects have their groups read every pass, settled or not.
    let reads = passes(&eng, &f, &d, &mut previous, &mut pass, every, every, &[Subject::Link("hooks".into())]).await;
    assert_eq!(reads[&hooks_arn], every, "{reads:?}");

    // `every: 1` reads every group every pass.
    let reads = passes(&eng, &f, &d, &mut previous, &mut pass, 2, 1, &[]).await;
    assert!(arns.iter().all(|a| reads.get(a) == Some(&2)), "{reads:?}");

    // A group the previous observation did not have is read at once.
    let more = three_links() + &link("fx", "svc-a", A_VPC, A_RTB, "10.20.1.12", 9004, "/fx", "");
    let d2 = desired(&more);
    converge(&f, &d2).await;
    let fx = state(&f, GW).target_groups.iter().map(|t| t.arn.clone()).find(|a| !arns.contains(a)).unwrap();
    let reads = passes(&eng, &f, &d2, &mut previous, &mut pass, 1, every, &[]).await;
    assert_eq!(reads[&fx], 1, "{reads:?}");
    assert_eq!(targets_of(&previous)[&fx].len(), 1);
}

/// Issue 14 against the in-memory AWS, which refuses (as AWS does, and moto does not) to delete
/// an authorizer a method uses and to put a method naming an authorizer that is not there or of
/// the wrong kind: a route moved to another authorizer, an authorizer replaced (its type
/// changed), and the last one removed each converge in one apply with no failed call.
#[tokio::test]
async fn authorizers_are_replaced_and_removed_only_after_their_methods_move() {
    let f = world();
    let with = |authorizers: &str, auth: &str| {
        accounts().replace(
            "api: {name: open-banking, stage: v1}",
            &format!("api: {{name: open-banking, stage: v1, authorizers: [{authorizers}]}}"),
        ) + &link("pay", "svc-a", A_VPC, A_RTB, "10.20.1.10", 9001, "/payments", "")
            .replace("routes: [{path: /payments}]", &format!("routes: [{{path: /payments, authorization: {auth}}}]"))
    };
    let token = "{name: partners, type: TOKEN, lambdaArn: 'arn:aws:lambda:eu-central-1:111111111111:function:authz'}";
    let request = "{name: partners, type: REQUEST, lambdaArn: 'arn:aws:lambda:eu-central-1:111111111111:function:authz', identitySource: 'method.request.header.X-Partner'}";
    let pool = "{name: pool, type: COGNITO_USER_POOLS, providerArns: ['arn:aws:cognito-idp:eu-central-1:111111111111:userpool/eu-central-1_Pool1']}";
    let authorizers = |f: &FakeAws| state(f, GW).rest_apis[0].authorizers.clone();
    let method = |f: &FakeAws| {
        state(f, GW).rest_apis[0].resources.iter().find(|r| r.path == "/payments").unwrap().methods["ANY"].clone()
    };
    let no_failures = |r: &ApplyReport| {
        let failed: Vec<String> = r
            .executed
            .iter()
            .filter_map(|e| match &e.result {
                ActionResult::Failed { error } => Some(format!("{}: {error}", e.action.resource)),
                _ => None,
            })
            .collect();
        assert!(failed.is_empty(), "{failed:?}");
    };

    let r = converge(&f, &desired(&with(token, "{authorizer: partners}"))).await;
    no_failures(&r);
    let first = authorizers(&f);
    assert_eq!(first.len(), 1);
    assert_eq!(
        (method(&f).authorization_type.as_str(), method(&f).authorizer_id.as_deref()),
        ("CUSTOM", Some(first[0].id.as_str()))
    );

    // TOKEN -> REQUEST: a new authorizer, the methods moved to it, the old one deleted after.
    let r = converge(&f, &desired(&with(request, "{authorizer: partners}"))).await;
    no_failures(&r);
    let second = authorizers(&f);
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(second[0].id, first[0].id, "replaced");
    assert_eq!(second[0].kind, "REQUEST");
    assert_eq!(method(&f).authorizer_id.as_deref(), Some(second[0].id.as_str()));

    // To a Cognito authorizer with a scope, the Lambda one leaving.
    let r = converge(&f, &desired(&with(pool, "{authorizer: pool, scopes: [payments/write]}"))).await;
    no_failures(&r);
    let third = authorizers(&f);
    assert_eq!(third.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["pool"]);
    let m = method(&f);
    assert_eq!(m.authorization_type, "COGNITO_USER_POOLS");
    assert_eq!(m.authorization_scopes, ["payments/write"]);

    // Opening the route (authorizer -> NONE) is held by the protection guard.
    let r = apply(&f, &desired(&with("", "NONE"))).await;
    assert!(!r.converged && r.remaining.weakening.values().any(|w| w.contains("COGNITO_USER_POOLS -> NONE")), "{r:#?}");
    assert_eq!(method(&f).authorization_type, "COGNITO_USER_POOLS", "nothing opened");

    // The last one leaves with the route moving to IAM.
    let r = converge(&f, &desired(&with("", "AWS_IAM"))).await;
    no_failures(&r);
    assert!(authorizers(&f).is_empty());
    assert_eq!(method(&f).authorization_type, "AWS_IAM");
    let deletes = f.calls().iter().filter(|(_, op)| op == "DeleteAuthorizer").count();
    assert_eq!(deletes, 3);
}

/// Issue 14's stage settings against the in-memory AWS, which (as AWS documents, and moto does
/// not) refuses logging without the account's CloudWatch Logs role, refuses unknown patch paths
/// and drops a method setting override on `remove`: a gateway asking for logs without the role
/// is held with nothing changed; with the role every setting converges in one UpdateStage and no
/// deployment; drift is repaired; groups leaving the YAML are reset, throttling is kept.
#[tokio::test]
async fn stage_settings_converge_without_redeploying_and_groups_that_leave_are_reset() {
    let f = world();
    let settings = "{throttling: {rateLimit: 500, burstLimit: 1000}, accessLogs: {destinationArn: 'arn:aws:logs:eu-central-1:111111111111:log-group:access'}, executionLogs: {level: INFO}, detailedMetrics: true, tracing: true, variables: {backend: v2}}";
    let with = |settings: &str, route_extra: &str| {
        accounts().replace(
            "api: {name: open-banking, stage: v1}",
            &format!("api: {{name: open-banking, stage: v1, stageSettings: {settings}}}"),
        ) + &link("pay", "svc-a", A_VPC, A_RTB, "10.20.1.10", 9001, "/payments", "")
            .replace("routes: [{path: /payments}]", &format!("routes: [{{path: /payments{route_extra}}}]"))
    };
    let base = accounts() + &link("pay", "svc-a", A_VPC, A_RTB, "10.20.1.10", 9001, "/payments", "");
    converge(&f, &desired(&base)).await;
    let stage = |f: &FakeAws| state(f, GW).rest_apis[0].stages[0].clone();
    let deployments = |f: &FakeAws| f.calls().iter().filter(|(_, op)| op == "CreateDeployment").count();
    let deployed = deployments(&f);

    // No CloudWatch Logs role: the gateway is held, nothing is called.
    let d = desired(&with(settings, ", throttling: {rateLimit: 50, burstLimit: 100}"));
    let r = apply(&f, &d).await;
    let problems = &r.remaining.reports[&Subject::Gateway("edge".into())].problems;
    assert_eq!(problems.iter().map(|p| p.code.as_str()).collect::<Vec<_>>(), ["CloudWatchRoleMissing"], "{r:#?}");
    assert!(problems[0].hint.as_deref().unwrap().contains("cloudwatchRoleArn"), "{problems:?}");
    assert!(!f.calls().iter().any(|(_, op)| op == "UpdateStage"));

    // With the role: one UpdateStage carries everything; no deployment.
    f.with_account(GW, |s| {
        s.api_gateway_account = Some(crosslink_plan::observed::ApiGatewayAccount {
            cloudwatch_role_arn: Some("arn:aws:iam::111111111111:role/apigateway-cloudwatch".into()),
        })
    });
    converge(&f, &d).await;
    let s = stage(&f).settings;
    let all = &s.method_settings["*/*"];
    assert_eq!((all.throttling_rate_limit, all.throttling_burst_limit), (Some(500.0), Some(1000)));
    assert_eq!((all.logging_level.as_deref(), all.metrics_enabled), (Some("INFO"), true));
    for key in ["~1payments/ANY", "~1payments~1{proxy+}/ANY"] {
        assert_eq!(s.method_settings[key].throttling_rate_limit, Some(50.0), "{key}");
    }
    let log = s.access_log.as_ref().unwrap();
    assert_eq!(log.destination_arn.as_deref(), Some("arn:aws:logs:eu-central-1:111111111111:log-group:access"));
    assert!(log.format.as_deref().unwrap().contains("$context.requestId"));
    assert!(s.tracing_enabled);
    assert_eq!(s.variables["backend"], "v2");
    assert_eq!(
        stage(&f).tags["crosslink.dev/stage-settings"],
        "accessLogs detailedMetrics executionLogs tracing variables"
    );
    assert_eq!(deployments(&f), deployed, "a settings change does not redeploy");
    assert_eq!(f.calls().iter().filter(|(_, op)| op == "UpdateStage").count(), 1);

    // Drift: tracing off and the stage throttle raised by hand; repaired.
    f.with_account(GW, |st| {
        let s = &mut st.rest_apis[0].stages[0].settings;
        s.tracing_enabled = false;
        s.method_settings.get_mut("*/*").unwrap().throttling_rate_limit = Some(10_000.0);
        s.variables.insert("debug".into(), "on".into());
    });
    let (_, plan) = engine(&f).plan(&d).await;
    let texts: Vec<String> = plan.actions.iter().map(|a| format!("{}: {}", a.resource, a.reason)).collect();
    assert_eq!(texts, ["stage v1 settings: drift of throttling */* rateLimit: live 10000, desired 500"], "{texts:?}");
    converge(&f, &d).await;
    let s = stage(&f).settings;
    assert!(s.tracing_enabled);
    assert_eq!(s.method_settings["*/*"].throttling_rate_limit, Some(500.0));
    assert!(!s.variables.contains_key("debug"), "crosslink owns the variable map once it is written");

    // Everything but throttling leaves the YAML: reset, and forgotten; throttling is kept.
    converge(&f, &desired(&with("{}", ""))).await;
    let st = stage(&f);
    let s = &st.settings;
    assert_eq!(s.method_settings["*/*"].logging_level.as_deref(), Some("OFF"));
    assert!(!s.method_settings["*/*"].metrics_enabled && !s.tracing_enabled);
    assert!(s.access_log.is_none() && s.variables.is_empty(), "{s:?}");
    assert_eq!(s.method_settings["*/*"].throttling_rate_limit, Some(500.0), "a limit is never lifted implicitly");
    assert_eq!(s.method_settings["~1payments/ANY"].throttling_rate_limit, Some(50.0));
    assert_eq!(st.tags["crosslink.dev/stage-settings"], "");
    assert_eq!(deployments(&f), deployed);
    assert!(engine(&f).plan(&desired(&with("{}", ""))).await.1.actions.is_empty());
}

/// Issue 14's resource policy against the in-memory AWS, which stores a policy as AWS does (its
/// `execute-api:/` resources expanded to the API's ARN): converged and deployed with no flapping
/// afterwards (compared by meaning); a policy rewritten by hand is put back and deployed again;
/// removing it from the YAML opens the API, so it is held by the protection guard until allowed.
#[tokio::test]
async fn resource_policy_converges_by_meaning_and_widening_it_is_held() {
    let f = world();
    let policy = "{Version: '2012-10-17', Statement: [{Effect: Allow, Principal: '*', Action: 'execute-api:Invoke', Resource: 'execute-api:/*', Condition: {IpAddress: {'aws:SourceIp': ['10.0.0.0/8']}}}]}";
    let with = |policy: Option<&str>| {
        let api = match policy {
            Some(p) => format!("api: {{name: open-banking, stage: v1, resourcePolicy: {p}}}"),
            None => "api: {name: open-banking, stage: v1}".to_string(),
        };
        accounts().replace("api: {name: open-banking, stage: v1}", &api)
            + &link("pay", "svc-a", A_VPC, A_RTB, "10.20.1.10", 9001, "/payments", "")
    };
    let deployments = |f: &FakeAws| f.calls().iter().filter(|(_, op)| op == "CreateDeployment").count();
    let live_policy = |f: &FakeAws| state(f, GW).rest_apis[0].policy.clone();
    let d = desired(&with(Some(policy)));
    converge(&f, &d).await;
    let stored = live_policy(&f).expect("a policy");
    assert!(stored.contains(":execute-api:eu-central-1:111111111111:"), "stored expanded, as AWS does: {stored}");
    assert!(engine(&f).plan(&d).await.1.actions.is_empty(), "no flapping over the expansion");
    let deployed = deployments(&f);

    // Rewritten by hand to let everyone in: put back, and deployed again.
    f.with_account(GW, |s| {
        s.rest_apis[0].policy = Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"*"}]}"#.into())
    });
    converge(&f, &d).await;
    assert!(live_policy(&f).unwrap().contains("aws:SourceIp"));
    assert_eq!(deployments(&f), deployed + 1, "a policy change is deployed");

    // Removed from the YAML of an API crosslink owns: that opens it to everyone, so it is held.
    let open = desired(&with(None));
    let r = apply(&f, &open).await;
    assert!(!r.converged, "{r:#?}");
    assert!(r.remaining.weakening.values().any(|w| w.contains("widened to everyone")), "{:#?}", r.remaining.weakening);
    assert!(live_policy(&f).unwrap().contains("aws:SourceIp"), "nothing opened");
    let opts = ApplyOptions { allow_weakening: true, ..fast() };
    let r = engine(&f).apply(&open, &opts).await;
    assert!(r.converged, "{:#?}", r.remaining);
    assert_eq!(live_policy(&f), None);
}

/// Issue 14's WAF against the in-memory AWS: a web ACL is associated with the stage with no
/// deployment; one swapped by hand is put back; removing it from the YAML is held by the
/// protection guard until allowed.
#[tokio::test]
async fn a_web_acl_is_associated_repaired_and_its_removal_is_held() {
    let f = world();
    let acl = "arn:aws:wafv2:eu-central-1:111111111111:regional/webacl/open-banking/0a1b2c3d";
    let with = |acl: Option<&str>| {
        let api = match acl {
            Some(a) => format!("api: {{name: open-banking, stage: v1, webAclArn: '{a}'}}"),
            None => "api: {name: open-banking, stage: v1}".to_string(),
        };
        accounts().replace("api: {name: open-banking, stage: v1}", &api)
            + &link("pay", "svc-a", A_VPC, A_RTB, "10.20.1.10", 9001, "/payments", "")
    };
    let live = |f: &FakeAws| state(f, GW).rest_apis[0].stages[0].settings.web_acl_arn.clone();
    let deployments = |f: &FakeAws| f.calls().iter().filter(|(_, op)| op == "CreateDeployment").count();
    // From empty: the stage is associated after its first deployment, in the same apply.
    let d = desired(&with(Some(acl)));
    converge(&f, &d).await;
    assert_eq!(live(&f).as_deref(), Some(acl));
    let deployed = deployments(&f);

    f.with_account(GW, |s| {
        s.rest_apis[0].stages[0].settings.web_acl_arn =
            Some("arn:aws:wafv2:eu-central-1:111111111111:regional/webacl/allow-all/9".into())
    });
    converge(&f, &d).await;
    assert_eq!(live(&f).as_deref(), Some(acl), "put back");
    assert_eq!(deployments(&f), deployed, "an association is not deployed");

    let open = desired(&with(None));
    let r = apply(&f, &open).await;
    assert!(!r.converged && r.remaining.weakening.values().any(|w| w.contains("disassociated")), "{r:#?}");
    assert_eq!(live(&f).as_deref(), Some(acl), "the WAF stays until allowed");
    let r = engine(&f).apply(&open, &ApplyOptions { allow_weakening: true, ..fast() }).await;
    assert!(r.converged, "{:#?}", r.remaining);
    assert_eq!(live(&f), None);
}

// ---- consumers: usage plans and API keys ---------------------------------------------------------

fn consumer(name: &str, body: &str) -> String {
    format!(
        r#"
---
apiVersion: crosslink.dev/v1alpha1
kind: Consumer
metadata: {{name: {name}}}
spec:
  gateways: [edge]
{body}"#
    )
}

fn usage_plans(f: &FakeAws) -> Vec<crosslink_plan::observed::UsagePlan> {
    state(f, GW).usage_plans
}

fn plan_of<'a>(
    plans: &'a [crosslink_plan::observed::UsagePlan],
    name: &str,
) -> &'a crosslink_plan::observed::UsagePlan {
    plans.iter().find(|u| u.name == name).unwrap_or_else(|| panic!("no usage plan {name} in {plans:#?}"))
}

fn keys_of(f: &FakeAws, consumer: &str) -> Vec<crosslink_plan::observed::ApiKey> {
    let owner = format!("Consumer/{consumer}");
    state(f, GW).api_keys.into_iter().filter(|k| k.tags.get("crosslink.dev/owner") == Some(&owner)).collect()
}

/// A consumer from an empty account: its usage plan joins the stage the same pass deploys, with
/// its throttle, quota and per-route throttles, and its key is made and added. Drift of each is
/// repaired; a rotation keeps the previous key through the overlap, then removes it; a suspended
/// consumer's key is disabled; removing the consumer removes its plan (stages first) and keys.
/// What crosslink does not own (a hand-made plan and key) is never touched, and the key's value
/// is in nothing crosslink reports.
#[tokio::test]
async fn consumers_get_a_usage_plan_and_key_repaired_rotated_with_overlap_and_removed() {
    let f = world();
    f.with_account(GW, |s| {
        s.usage_plans.push(crosslink_plan::observed::UsagePlan {
            id: "handmade".into(),
            name: "partner-by-hand".into(),
            description: None,
            throttle: None,
            quota: None,
            api_stages: vec![],
            key_ids: vec!["handkey".into()],
            tags: BTreeMap::new(),
        });
        s.api_keys.push(crosslink_plan::observed::ApiKey {
            id: "handkey".into(),
            name: "by-hand".into(),
            enabled: true,
            created_date: 1_700_000_000,
            tags: BTreeMap::new(),
        });
    });
    let acme = |key: &str, route: &str| {
        consumer(
            "acme",
            &format!(
                "  description: Acme Payments Ltd\n  throttling: {{rateLimit: 50, burstLimit: 100}}\n  quota: {{limit: 10000, period: DAY}}\n  routes: [{{path: /payments, throttling: {route}}}]\n  apiKey: {key}\n"
            ),
        )
    };
    let base = three_links() + &consumer("beta", "  quota: {limit: 500, period: MONTH}\n");
    let d1 = desired(&(base.clone() + &acme("{generation: 1}", "{rateLimit: 5, burstLimit: 10}")));
    let r = converge(&f, &d1).await;
    let ops: Vec<&str> = r.executed.iter().map(|e| e.action.op.name()).collect();
    assert_eq!(ops.iter().filter(|o| **o == "CreateUsagePlan").count(), 2, "{ops:?}");
    assert_eq!(ops.iter().filter(|o| **o == "CreateUsagePlanKey").count(), 2, "{ops:?}");

    let api = state(&f, GW).rest_apis.iter().find(|a| a.name == "open-banking").expect("api").id.clone();
    let plans = usage_plans(&f);
    let up = plan_of(&plans, "crosslink-acme");
    assert_eq!(up.description.as_deref(), Some("Acme Payments Ltd"));
    assert_eq!(up.throttle.map(|t| (t.rate_limit, t.burst_limit)), Some((50.0, 100)));
    let q = up.quota.as_ref().expect("quota");
    assert_eq!((q.limit, q.period.as_str(), q.offset), (10000, "DAY", 0));
    assert_eq!(up.api_stages.len(), 1);
    assert_eq!((up.api_stages[0].api_id.as_str(), up.api_stages[0].stage.as_str()), (api.as_str(), "v1"));
    let keys: Vec<&String> = up.api_stages[0].throttle.keys().collect();
    assert_eq!(keys, ["/payments/ANY", "/payments/{proxy+}/ANY"]);
    let k1 = keys_of(&f, "acme");
    assert_eq!(k1.len(), 1);
    assert!(k1[0].enabled && k1[0].name == "crosslink-acme-g1" && up.key_ids == [k1[0].id.clone()]);
    assert_eq!(plan_of(&plans, "crosslink-beta").quota.as_ref().map(|q| q.period.clone()), Some("MONTH".into()));
    assert!(plan_of(&plans, "crosslink-beta").throttle.is_none());
    // The key's value reaches nothing crosslink reports (the in-memory AWS never hands it over,
    // as crosslink never asks AWS for it).
    let value = f.api_key_value(&k1[0].id).expect("AWS generated a value");
    let said = format!("{r:?}{}", serde_json::to_string(&r).expect("report serializes"));
    assert!(!said.contains(&value) && said.contains(&k1[0].id));

    // Drift: the throttle, quota, a per-route throttle and the key's membership and state.
    f.with_account(GW, |s| {
        let u = s.usage_plans.iter_mut().find(|u| u.name == "crosslink-acme").expect("plan");
        u.throttle = Some(crosslink_plan::observed::LiveThrottle { rate_limit: 5000.0, burst_limit: 5000 });
        u.quota = None;
        u.api_stages[0].throttle.clear();
        u.key_ids.clear();
        s.api_keys.iter_mut().find(|k| k.name == "crosslink-acme-g1").expect("key").enabled = false;
    });
    let r = converge(&f, &d1).await;
    let mut fixes: Vec<String> =
        r.executed.iter().map(|e| format!("{} {}", e.action.op.name(), e.action.reason)).collect();
    fixes.sort();
    assert_eq!(fixes.len(), 3, "{fixes:#?}");
    assert!(fixes[0].starts_with("CreateUsagePlanKey missing"), "{fixes:#?}");
    assert!(fixes[1].starts_with("UpdateApiKey drift of apiKey.enabled: live false, desired true"), "{fixes:#?}");
    assert!(fixes[2].starts_with("UpdateUsagePlan drift of throttling: live 5000/s burst 5000"), "{fixes:#?}");
    let plans = usage_plans(&f);
    let up = plan_of(&plans, "crosslink-acme");
    assert_eq!(up.throttle.map(|t| (t.rate_limit, t.burst_limit)), Some((50.0, 100)));
    assert_eq!(up.quota.as_ref().map(|q| q.limit), Some(10000));
    assert_eq!(up.api_stages[0].throttle["/payments/{proxy+}/ANY"].burst_limit, 10);

    // A changed per-route throttle: patched in place (the stage stays in the plan throughout).
    let d2 = desired(&(base.clone() + &acme("{generation: 1}", "{rateLimit: 7, burstLimit: 14}")));
    let r = converge(&f, &d2).await;
    assert_eq!(r.executed.iter().map(|e| e.action.op.name()).collect::<Vec<_>>(), ["UpdateUsagePlan"]);
    assert_eq!(plan_of(&usage_plans(&f), "crosslink-acme").api_stages[0].throttle["/payments/ANY"].rate_limit, 7.0);

    // Rotation: generation 2 joins the plan; generation 1 keeps working through the overlap.
    let d3 = desired(&(base.clone() + &acme("{generation: 2, overlapHours: 24}", "{rateLimit: 7, burstLimit: 14}")));
    let r = converge(&f, &d3).await;
    let ops: Vec<&str> = r.executed.iter().map(|e| e.action.op.name()).collect();
    assert_eq!(ops, ["CreateApiKey", "CreateUsagePlanKey"]);
    assert!(r.executed[0].action.reason.to_string().contains("rotated"), "{}", r.executed[0].action.reason);
    let keys = keys_of(&f, "acme");
    assert_eq!(keys.len(), 2);
    let up = plan_of(&usage_plans(&f), "crosslink-acme").clone();
    assert_eq!(up.key_ids.len(), 2, "both keys work during the overlap");
    let warnings = &r.remaining.reports[&Subject::Consumer("acme".into())].warnings;
    assert!(
        warnings.iter().any(|w| w.contains("crosslink-acme-g1") && w.contains("still works until")),
        "{warnings:?}"
    );
    f.advance_clock(23 * 3600);
    assert!(converge(&f, &d3).await.executed.is_empty(), "still within the overlap");
    f.advance_clock(3600);
    let r = converge(&f, &d3).await;
    let mut ops: Vec<&str> = r.executed.iter().map(|e| e.action.op.name()).collect();
    ops.sort();
    assert_eq!(ops, ["DeleteApiKey", "DeleteUsagePlanKey"]);
    let keys = keys_of(&f, "acme");
    assert_eq!(keys.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), ["crosslink-acme-g2"]);
    assert_eq!(plan_of(&usage_plans(&f), "crosslink-acme").key_ids, [keys[0].id.clone()]);

    // Suspended: the key is disabled, not deleted.
    let d4 = desired(&(base.clone() + &acme("{generation: 2, enabled: false}", "{rateLimit: 7, burstLimit: 14}")));
    converge(&f, &d4).await;
    assert!(!keys_of(&f, "acme")[0].enabled);

    // Removed: the plan's stage first, then the plan; its key too. Beta and the hand-made ones stay.
    let d5 = desired(&base);
    let r = converge(&f, &d5).await;
    let ops: Vec<&str> = r.executed.iter().map(|e| e.action.op.name()).collect();
    let at = |op: &str| ops.iter().position(|o| *o == op).unwrap_or_else(|| panic!("{op} in {ops:?}"));
    assert!(at("UpdateUsagePlan") < at("DeleteUsagePlan"), "{ops:?}");
    assert!(ops.contains(&"DeleteApiKey"), "{ops:?}");
    let plans = usage_plans(&f);
    let names: BTreeSet<&str> = plans.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["crosslink-beta", "partner-by-hand"]));
    assert!(keys_of(&f, "acme").is_empty());
    assert!(state(&f, GW).api_keys.iter().any(|k| k.id == "handkey"));
    assert_eq!(plan_of(&plans, "partner-by-hand").key_ids, ["handkey"]);
}

// ---- custom domains -------------------------------------------------------------------------------

fn with_domain(domain: &str) -> String {
    three_links().replace(
        "  api: {name: open-banking, stage: v1}\n",
        &format!("  api:\n    name: open-banking\n    stage: v1\n    customDomain:\n{domain}"),
    )
}

const CERT: &str = "arn:aws:acm:eu-central-1:111111111111:certificate/c1";
const CERT2: &str = "arn:aws:acm:eu-central-1:111111111111:certificate/c2";

/// A custom domain from empty: made with its certificate, policy and truststore, mapped to the
/// stage the same pass deploys, and the DNS record to create reported. Drift of the certificate,
/// the truststore and the mapping is repaired; a new base path moves the mapping; lowering the
/// TLS policy and turning mutual TLS off are held until allowed; a domain of the same name that
/// crosslink does not own is a problem, never taken over; removing it deletes it.
#[tokio::test]
async fn a_custom_domain_is_made_mapped_repaired_guarded_and_removed() {
    let f = world();
    let mtls = "      mutualTls: {truststoreUri: s3://bank-truststores/qwac.pem}\n";
    let domain = |extra: &str| format!("      domainName: api.bank.example\n      certificateArn: {CERT}\n{extra}");
    let d1 = desired(&with_domain(&(domain("      basePath: open-banking\n") + mtls)));
    let r = converge(&f, &d1).await;
    let ops: Vec<&str> = r.executed.iter().map(|e| e.action.op.name()).collect();
    let at = |op: &str| ops.iter().position(|o| *o == op).unwrap_or_else(|| panic!("{op} in {ops:?}"));
    assert!(
        at("CreateDomainName") < at("CreateBasePathMapping") && at("CreateDeployment") < at("CreateBasePathMapping")
    );
    let api = state(&f, GW).rest_apis.iter().find(|a| a.name == "open-banking").expect("api").id.clone();
    let live = || state(&f, GW).domain_names.into_iter().find(|d| d.name == "api.bank.example").expect("domain");
    let d = live();
    assert_eq!(d.certificate_arn.as_deref(), Some(CERT));
    assert_eq!(d.security_policy.as_deref(), Some("TLS_1_2"));
    assert_eq!(d.truststore_uri.as_deref(), Some("s3://bank-truststores/qwac.pem"));
    assert_eq!(d.mappings.len(), 1);
    assert_eq!((d.mappings[0].base_path.as_str(), d.mappings[0].rest_api_id.as_str()), ("open-banking", api.as_str()));
    let report = &r.remaining.reports[&Subject::Gateway("edge".into())];
    let dns = report.resources.get("dnsRecord").expect("the record to create");
    assert!(
        dns.starts_with("api.bank.example CNAME d-") && dns.contains(".execute-api.eu-central-1.amazonaws.com"),
        "{dns}"
    );

    // Drift: the certificate and truststore changed, the mapping pointed elsewhere.
    f.with_account(GW, |s| {
        let d = s.domain_names.iter_mut().find(|d| d.name == "api.bank.example").expect("domain");
        d.certificate_arn = Some(CERT2.into());
        d.truststore_uri = Some("s3://someone/else.pem".into());
        d.mappings[0].stage = Some("test".into());
    });
    let r = converge(&f, &d1).await;
    let mut ops: Vec<&str> = r.executed.iter().map(|e| e.action.op.name()).collect();
    ops.sort();
    assert_eq!(ops, ["UpdateBasePathMapping", "UpdateDomainName"]);
    let d = live();
    assert_eq!(
        (d.certificate_arn.as_deref(), d.truststore_uri.as_deref()),
        (Some(CERT), Some("s3://bank-truststores/qwac.pem"))
    );
    assert_eq!(d.mappings[0].stage.as_deref(), Some("v1"));

    // A new base path: mapped there, the old path removed; a stranger's mapping stays.
    f.with_account(GW, |s| {
        let d = s.domain_names.iter_mut().find(|d| d.name == "api.bank.example").expect("domain");
        d.mappings.push(crosslink_plan::observed::BasePathMapping {
            base_path: "partner".into(),
            rest_api_id: "someoneelse".into(),
            stage: Some("prod".into()),
        });
    });
    let d2 = desired(&with_domain(&(domain("      basePath: psd2\n") + mtls)));
    converge(&f, &d2).await;
    let paths: BTreeSet<String> = live().mappings.into_iter().map(|m| m.base_path).collect();
    assert_eq!(paths, BTreeSet::from(["partner".to_string(), "psd2".to_string()]));

    // Weaker: TLS 1.0 without mutual TLS is held, then made when allowed.
    let weak = desired(&with_domain(&domain("      basePath: psd2\n      securityPolicy: TLS_1_0\n")));
    let r = apply(&f, &weak).await;
    assert!(!r.converged, "held");
    let held: Vec<&String> = r.remaining.weakening.values().collect();
    assert!(held.iter().any(|w| w.contains("TLS_1_2 -> TLS_1_0") && w.contains("mutual TLS turned off")), "{held:?}");
    assert_eq!(live().truststore_uri.as_deref(), Some("s3://bank-truststores/qwac.pem"), "nothing weakened");
    let r = engine(&f).apply(&weak, &ApplyOptions { allow_weakening: true, ..fast() }).await;
    assert!(r.converged, "{:#?}", r.remaining);
    let d = live();
    assert_eq!((d.security_policy.as_deref(), d.truststore_uri.as_deref()), (Some("TLS_1_0"), None));

    // Removed from the YAML: the domain goes (with its mappings).
    converge(&f, &desired(&three_links())).await;
    assert!(state(&f, GW).domain_names.is_empty());

    // A name that exists without crosslink's tag: a problem, nothing made or changed.
    f.with_account(GW, |s| {
        s.domain_names.push(crosslink_plan::observed::DomainName {
            name: "api.bank.example".into(),
            regional_domain_name: None,
            regional_hosted_zone_id: None,
            certificate_arn: Some(CERT2.into()),
            security_policy: Some("TLS_1_2".into()),
            truststore_uri: None,
            truststore_version: None,
            tags: BTreeMap::new(),
            mappings: vec![],
        })
    });
    let r = apply(&f, &d1).await;
    let problems = &r.remaining.reports[&Subject::Gateway("edge".into())].problems;
    assert!(problems.iter().any(|p| p.code == "NameTaken"), "{problems:?}");
    assert_eq!(live().certificate_arn.as_deref(), Some(CERT2), "not taken over");
}

/// Issue 14 item 7 against the in-memory AWS, which checks a TLS listener's certificate and
/// policy as AWS documents CreateListener and ModifyListener (and, unlike moto, takes the TLS
/// protocol and a new certificate on ModifyListener) and refuses an integration timeout outside
/// 50-29,000 ms: TLS to the backend converges; a listener switched to TCP by hand and a swapped
/// certificate are repaired; switching the certificate check off and switching TLS off are each
/// held until allowed; a timeout the account's quota does not allow is a located failure.
#[tokio::test]
async fn backend_tls_converges_repairs_drift_and_switching_it_off_waits_for_allow() {
    let f = world();
    let cert = "arn:aws:acm:eu-central-1:111111111111:certificate/5d1e2c3b";
    let with = |tls: &str, timeout: &str| {
        accounts()
            + &link("pay", "svc-a", A_VPC, A_RTB, "10.20.1.10", 9001, "/payments", tls)
                .replace("routes: [{path: /payments}]", &format!("routes: [{{path: /payments{timeout}}}]"))
    };
    let tls = |insecure: bool| {
        format!(
            "  tls: {{certificateArn: '{cert}', serverName: payments.internal.bank.example, insecureSkipVerification: {insecure}}}\n"
        )
    };
    converge(&f, &desired(&with("", ""))).await;
    let listener = |f: &FakeAws| state(f, GW).listeners.into_iter().find(|l| l.port == 9001).unwrap();
    let integrations = |f: &FakeAws| -> Vec<crosslink_plan::observed::Integration> {
        let gw = state(f, GW);
        let res = gw.rest_apis[0].resources.iter().filter(|r| r.path.starts_with("/payments"));
        res.flat_map(|r| r.methods.values().filter_map(|m| m.integration.clone())).collect()
    };
    assert_eq!(listener(&f).protocol, "TCP");

    // Turned on, with a timeout: a TLS listener, and https integrations to the server name.
    let on = desired(&with(&tls(false), ", timeoutMillis: 8000"));
    let (_, plan) = engine(&f).plan(&on).await;
    assert!(plan.weakening.is_empty(), "turning TLS on weakens nothing: {:?}", plan.weakening);
    converge(&f, &on).await;
    let l = listener(&f);
    assert_eq!((l.protocol.as_str(), l.certificate_arn.as_deref()), ("TLS", Some(cert)));
    assert_eq!(l.ssl_policy.as_deref(), Some("ELBSecurityPolicy-TLS13-1-2-2021-06"));
    let is = integrations(&f);
    assert_eq!(is.len(), 2);
    for i in &is {
        assert!(i.uri.as_deref().unwrap().starts_with("https://payments.internal.bank.example:9001/payments"), "{i:?}");
        assert_eq!((i.insecure_skip_verification, i.timeout_millis), (false, Some(8000)));
    }

    // Drift: switched to TCP by hand; then another certificate put on by hand. Both repaired.
    f.with_account(GW, |s| {
        let l = s.listeners.iter_mut().find(|l| l.port == 9001).unwrap();
        (l.protocol, l.certificate_arn, l.ssl_policy) = ("TCP".into(), None, None);
    });
    let (_, plan) = engine(&f).plan(&on).await;
    let texts: Vec<String> = plan.actions.iter().map(|a| format!("{}: {}", a.resource, a.reason)).collect();
    assert_eq!(texts, ["listener :9001 on edge-nlb: drift of listener protocol: live TCP, desired TLS"]);
    converge(&f, &on).await;
    f.with_account(GW, |s| {
        s.listeners.iter_mut().find(|l| l.port == 9001).unwrap().certificate_arn =
            Some("arn:aws:acm:eu-central-1:111111111111:certificate/0ther".into());
    });
    converge(&f, &on).await;
    assert_eq!(listener(&f).certificate_arn.as_deref(), Some(cert));

    // The certificate check switched off in the YAML: held, then applied when allowed.
    let insecure = desired(&with(&tls(true), ", timeoutMillis: 8000"));
    let r = apply(&f, &insecure).await;
    let held: Vec<&String> = r.remaining.weakening.values().collect();
    assert!(!r.converged && held.len() == 2, "{held:#?}");
    assert!(held.iter().all(|w| w.contains("backend certificate check off (insecureSkipVerification)")), "{held:#?}");
    assert!(integrations(&f).iter().all(|i| !i.insecure_skip_verification), "nothing switched off");
    let r = engine(&f).apply(&insecure, &ApplyOptions { allow_weakening: true, ..fast() }).await;
    assert!(r.converged, "{:#?}", r.remaining);
    assert!(integrations(&f).iter().all(|i| i.insecure_skip_verification));
    // Back on: no guard (it protects more).
    converge(&f, &on).await;

    // A timeout the account's quota does not allow: AWS's refusal reaches the link, nothing else.
    let long = desired(&with(&tls(false), ", timeoutMillis: 60000"));
    let r = apply(&f, &long).await;
    let failed = &r.failed[&Subject::Link("pay".into())];
    assert!(failed.message.contains("between 50 ms and 29000 ms"), "{failed:?}");
    assert!(integrations(&f).iter().all(|i| i.timeout_millis == Some(8000)));

    // TLS switched off: the listener change and the https -> http integrations are held.
    let plain = desired(&with("", ""));
    let r = apply(&f, &plain).await;
    let held: Vec<&String> = r.remaining.weakening.values().collect();
    assert!(!r.converged, "held");
    assert_eq!(held.iter().filter(|w| w.contains("backend TLS off (https -> http)")).count(), 2, "{held:#?}");
    assert!(held.iter().any(|w| w.contains("listener :9001 of Link/pay: TLS -> TCP")), "{held:#?}");
    assert_eq!(listener(&f).protocol, "TLS", "nothing switched off");
    let r = engine(&f).apply(&plain, &ApplyOptions { allow_weakening: true, ..fast() }).await;
    assert!(r.converged, "{:#?}", r.remaining);
    let l = listener(&f);
    assert_eq!((l.protocol.as_str(), l.certificate_arn.as_deref()), ("TCP", None));
    for i in integrations(&f) {
        assert!(i.uri.as_deref().unwrap().starts_with("http://"), "{i:?}");
        assert_eq!(i.timeout_millis, Some(29_000), "AWS's default again");
    }
    assert!(engine(&f).plan(&plain).await.1.actions.is_empty());
}

/// Issue 17 (adoption), the link's side on the gateway's load balancer, against the in-memory
/// AWS: a listener and target group made by hand (another target in it, a health check of its
/// own) are refused without `adoption`, and with `adoption: Adopt` are taken over in place: the
/// plan shows `adopt` with the live id and the rule that matched, and deletes nothing; the first
/// apply tags them (ids unchanged), repairs the health check in place, and deregisters the target
/// the YAML does not name only on a later pass. A listener of another crosslink instance is
/// never adopted.
#[tokio::test]
async fn a_hand_made_listener_and_target_group_are_adopted_in_place() {
    use crosslink_plan::kinds::TargetsOp;
    use crosslink_plan::kinds::listener::Listener;
    use crosslink_plan::op::Ref;

    let f = world();
    let base = accounts() + &link("pay", "svc-a", A_VPC, A_RTB, "10.20.1.10", 9001, "/payments", "");
    converge(&f, &desired(&base)).await;
    let lb = state(&f, GW).load_balancers[0].arn.clone();
    // Made by hand: a target group with two targets and a 10 s health check, and a listener.
    let tg = hand_target_group(&f, "legacy-by-hand", 10);
    let ip = |s: &str| s.parse::<std::net::Ipv4Addr>().unwrap();
    f.apply(
        GW,
        &Op::Targets(TargetsOp::RegisterTargets {
            target_group_arn: Ref::Known(tg.clone()),
            targets: vec![(ip("10.20.1.30"), 8080), (ip("10.20.1.77"), 8080)],
            placement: Default::default(),
        }),
    )
    .unwrap();
    let hand_listener = |port: u16, tg: &str, tags: &[(&str, &str)]| hand_listener(&f, &lb, port, tg, tags);
    let listener = hand_listener(9002, &tg, &[]);
    let legacy =
        |extra: &str| base.clone() + &link("legacy", "svc-a", A_VPC, A_RTB, "10.20.1.30", 9002, "/legacy", extra);

    // Without adoption: refused, as before.
    let (_, plan) = engine(&f).plan(&desired(&legacy(""))).await;
    let problems = &plan.reports[&Subject::Link("legacy".into())].problems;
    assert!(
        problems.iter().any(|p| p.code == "PortInUse" && p.message.contains("not managed by crosslink")),
        "{problems:?}"
    );

    // With adoption: adopt, and nothing deleted or deregistered on this pass.
    let adopt = desired(&legacy("  adoption: Adopt\n"));
    let (_, plan) = engine(&f).plan(&adopt).await;
    let mine: Vec<&crosslink_plan::Action> =
        plan.actions.iter().map(|a| &**a).filter(|a| a.subject == Subject::Link("legacy".into())).collect();
    let adopted: Vec<String> =
        mine.iter().filter(|a| a.verb == Verb::Adopt).map(|a| format!("{}: {}", a.resource, a.reason)).collect();
    assert_eq!(
        adopted,
        [
            format!(
                "target group legacy-by-hand ({tg}): built without crosslink, matched by the forward action of listener :9002 on the gateway's load balancer"
            ),
            format!("listener :9002 ({listener}): built without crosslink, matched by port 9002 on edge-nlb"),
        ]
    );
    assert!(
        mine.iter().all(
            |a| !matches!(a.verb, Verb::Delete | Verb::Deregister | Verb::Create) || a.resource.contains("/legacy")
        ),
        "{mine:#?}"
    );
    assert!(mine.iter().any(|a| a.reason.to_string().contains("healthCheck.intervalSeconds")), "repaired in place");
    let warnings = &plan.reports[&Subject::Link("legacy".into())].warnings;
    assert!(warnings.iter().any(|w| w.contains("10.20.1.77:8080") && w.contains("later pass")), "{warnings:?}");

    // Applied: the same ids, tagged; the health check repaired; the extra target gone after.
    converge(&f, &adopt).await;
    let st = state(&f, GW);
    let tgs: Vec<_> = st.target_groups.iter().filter(|t| t.arn == tg).collect();
    assert_eq!(tgs.len(), 1);
    assert_eq!(tgs[0].tags["crosslink.dev/owner"], "Link/legacy");
    assert_eq!(tgs[0].tags["crosslink.dev/adopted"], "true");
    assert_eq!(tgs[0].health_check.interval_seconds, 30);
    let targets: Vec<String> = tgs[0].targets.iter().map(|t| t.ip.to_string()).collect();
    assert_eq!(targets, ["10.20.1.30"]);
    let l: &Listener = st.listeners.iter().find(|l| l.port == 9002).unwrap();
    assert_eq!((l.arn.as_str(), l.tags["crosslink.dev/owner"].as_str()), (listener.as_str(), "Link/legacy"));
    assert!(!st.target_groups.iter().any(|t| t.name.starts_with("cl-legacy")), "no target group of its own was made");

    // Another instance's listener is never adopted.
    let theirs = hand_listener(9003, &tg, &[("crosslink.dev/managed-by", "crosslink-eu")]);
    let (_, plan) = engine(&f)
        .plan(&desired(
            &(base.clone()
                + &link("other", "svc-a", A_VPC, A_RTB, "10.20.1.31", 9003, "/other", "  adoption: Adopt\n")),
        ))
        .await;
    let problems = &plan.reports[&Subject::Link("other".into())].problems;
    assert!(
        problems.iter().any(|p| p.code == "OwnedByAnotherInstance" && p.message.contains("`crosslink-eu`")),
        "{problems:?}"
    );
    assert!(!plan.actions.iter().any(|a| a.resource.contains(&theirs)));
}

/// Issue 17 (adoption): a peering built by hand between the gateway VPC and a service VPC, with
/// the gateway side's route (the service side's was forgotten), is adopted by a link of the pair
/// with `adoption: Adopt`: the plan adopts it by the VPC pair and creates no peering; the apply
/// tags it (same id), keeps the hand-made route and adds the missing one. Without adoption it is
/// refused as before, and one of another crosslink instance is never adopted.
#[tokio::test]
async fn a_hand_made_peering_is_adopted_with_its_routes() {
    use crosslink_plan::kinds::PeeringOp;
    use crosslink_plan::op::Ref;

    let f = world();
    let hand_peering = |f: &FakeAws, tags: &[(&str, &str)]| {
        let id = f
            .apply(
                GW,
                &Op::Peering(PeeringOp::CreateVpcPeeringConnection {
                    vpc_id: GW_VPC.into(),
                    peer_vpc_id: A_VPC.into(),
                    peer_owner_id: SVC_A.into(),
                    peer_region: "eu-central-1".into(),
                    tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                }),
            )
            .unwrap()
            .created
            .unwrap();
        f.apply(SVC_A, &Op::Peering(PeeringOp::AcceptVpcPeeringConnection { peering_id: Ref::Known(id.clone()) }))
            .unwrap();
        id
    };
    let pcx = hand_peering(&f, &[("Name", "payments by hand")]);
    f.apply(
        GW,
        &Op::Route(RouteOp::CreateRoute {
            route_table_id: GW_RTB.into(),
            destination: "10.20.0.0/16".parse().unwrap(),
            peering_id: Ref::Known(pcx.clone()),
        }),
    )
    .unwrap();
    let pay = |extra: &str| accounts() + &link("pay", "svc-a", A_VPC, A_RTB, "10.20.1.10", 9001, "/payments", extra);

    let (_, plan) = engine(&f).plan(&desired(&pay(""))).await;
    let problems: Vec<&str> = plan.reports.values().flat_map(|r| &r.problems).map(|p| p.code.as_str()).collect();
    assert!(problems.contains(&"PeeringExists"), "{problems:?}");

    let adopt = desired(&pay("  adoption: Adopt\n"));
    let (_, plan) = engine(&f).plan(&adopt).await;
    let peering_actions: Vec<String> = plan
        .actions
        .iter()
        .filter(|a| matches!(a.op, Op::Peering(_)) || a.resource.contains(&pcx))
        .map(|a| format!("{} {}: {}", a.verb.as_str(), a.resource, a.reason))
        .collect();
    assert_eq!(
        peering_actions,
        [format!("adopt peering {pcx}: built without crosslink, matched by the VPC pair {GW_VPC} -> {A_VPC}")]
    );
    let routes: Vec<String> = plan
        .actions
        .iter()
        .filter(|a| matches!(a.op, Op::Route(_)))
        .map(|a| format!("{} {}", a.verb.as_str(), a.resource))
        .collect();
    assert_eq!(routes.len(), 1, "only the missing route back: {routes:?}");
    assert!(routes[0].starts_with("create") && routes[0].contains(A_RTB), "{routes:?}");

    converge(&f, &adopt).await;
    let live = live_peerings(&f);
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].id, pcx, "the same peering");
    assert_eq!(live[0].tags["crosslink.dev/managed-by"], "crosslink");
    assert_eq!(live[0].tags["crosslink.dev/adopted"], "true");
    assert_eq!(live[0].tags["Name"], format!("crosslink edge: {A_VPC}"));
    assert_eq!(gw_route(&f, "10.20.0.0/16").as_deref(), Some(pcx.as_str()));
    let back = state(&f, SVC_A).route_tables[A_RTB]
        .routes
        .iter()
        .find(|r| r.destination.to_string() == "10.1.0.0/16")
        .cloned();
    assert_eq!(back.and_then(|r| r.peering_id).as_deref(), Some(pcx.as_str()));

    // Another instance's peering of a pair is never adopted.
    let g = world();
    hand_peering(&g, &[("crosslink.dev/managed-by", "crosslink-eu")]);
    let (_, plan) = engine(&g).plan(&adopt).await;
    let problems: Vec<String> = plan.reports.values().flat_map(|r| &r.problems).map(|p| p.message.clone()).collect();
    assert!(problems.iter().any(|m| m.contains("crosslink instance `crosslink-eu`")), "{problems:?}");
    assert!(!plan.actions.iter().any(|a| a.verb == Verb::Adopt));
}

/// Issue 17 (release): a link removed with deletionPolicy Retain is released with its pair's
/// peering: a dry run changes nothing; the release removes only the crosslink.dev/* tags (user
/// tags stay) from its listener, target group and peering; the passes after it leave them, its
/// routes and its API methods alone (nothing of it is deleted). A link still desired is refused.
/// Then a second crosslink instance, whose gateway references the same NLB, VPC link and API,
/// adopts the released resources in place (same ids, its own tags).
#[tokio::test]
async fn a_released_link_is_left_alone_and_a_second_instance_adopts_it() {
    use crosslink_plan::Settings;

    let f = world();
    let base = accounts() + &link("pay", "svc-a", A_VPC, A_RTB, "10.20.1.10", 9001, "/payments", "");
    let ledger = |extra: &str| link("ledger", "svc-b", B_VPC, B_RTB, "10.30.1.10", 9003, "/accounts", extra);
    converge(&f, &desired(&(base.clone() + &ledger("  deletionPolicy: Retain\n  tags: {cost-center: ledger}\n"))))
        .await;
    let d = desired(&base);
    converge(&f, &d).await;
    let before = state(&f, GW);
    let tg = before
        .target_groups
        .iter()
        .find(|t| t.tags.get("crosslink.dev/owner").map(String::as_str) == Some("Link/ledger"))
        .unwrap()
        .arn
        .clone();
    let listener = before.listeners.iter().find(|l| l.port == 9003).unwrap().arn.clone();
    let pcx = peering_to(&f, B_VPC).unwrap().id;
    let objects = [Subject::Link("ledger".into()), Subject::Peering(GW_VPC.into(), B_VPC.into())];

    // Still desired: refused, nothing released.
    let (plan, executed) = engine(&f).release(&desired(&(base.clone() + &ledger(""))), &objects[..1], false).await;
    assert_eq!(plan.reports[&objects[0]].problems[0].code, "StillDesired");
    assert!(plan.actions.is_empty() && executed.is_empty());

    // A dry run: the plan, nothing changed.
    let (plan, executed) = engine(&f).release(&d, &objects, true).await;
    let lines: BTreeSet<String> =
        plan.actions.iter().map(|a| format!("{} {} {}", a.verb.as_str(), a.subject, a.op.name())).collect();
    assert_eq!(
        lines,
        BTreeSet::from([
            "release Link/ledger RemoveTags".to_string(),
            format!("release Peering {GW_VPC} <-> {B_VPC} DeleteTags"),
        ])
    );
    assert_eq!(plan.actions.len(), 3, "listener, target group, peering: {:#?}", plan.actions);
    assert!(executed.is_empty());
    assert_eq!(
        state(&f, GW).listeners.iter().find(|l| l.arn == listener).unwrap().tags["crosslink.dev/managed-by"],
        "crosslink"
    );

    // Released: crosslink's keys gone, the user's tag kept, every id the same.
    let (_, executed) = engine(&f).release(&d, &objects, false).await;
    assert_eq!(executed.len(), 3);
    assert!(executed.iter().all(|e| matches!(e.result, ActionResult::Done { .. })), "{executed:#?}");
    let st = state(&f, GW);
    let crosslink_keys =
        |t: &crosslink_plan::observed::Tags| t.keys().filter(|k| k.starts_with("crosslink.dev/")).count();
    let t = st.target_groups.iter().find(|t| t.arn == tg).unwrap();
    assert_eq!((crosslink_keys(&t.tags), t.tags.get("cost-center").map(String::as_str)), (0, Some("ledger")));
    assert_eq!(crosslink_keys(&st.listeners.iter().find(|l| l.arn == listener).unwrap().tags), 0);
    assert_eq!(crosslink_keys(&peering_to(&f, B_VPC).unwrap().tags), 0);

    // From now on crosslink leaves them alone: no action touches them, and the API keeps the
    // released link's methods.
    let (_, plan) = engine(&f).plan(&d).await;
    assert!(plan.actions.is_empty(), "{:#?}", plan.actions);
    converge(&f, &d).await;
    let st = state(&f, GW);
    assert!(st.target_groups.iter().any(|t| t.arn == tg) && st.listeners.iter().any(|l| l.arn == listener));
    assert_eq!(peering_to(&f, B_VPC).unwrap().id, pcx);
    assert_eq!(gw_route(&f, "10.30.0.0/16").as_deref(), Some(pcx.as_str()));
    let api = &st.rest_apis[0];
    assert!(
        api.resources.iter().any(|r| r.path == "/accounts" && r.methods.contains_key("ANY")),
        "{:#?}",
        api.resources
    );
    // Nothing left to release.
    let (plan, _) = engine(&f).release(&d, &objects[..1], true).await;
    assert_eq!(plan.reports[&objects[0]].problems[0].code, "NothingToRelease");

    // A second instance adopts them: its gateway references the NLB, the VPC link and the API
    // (deployed to a stage of its own).
    let vpc_link = st.vpc_links[0].id.clone();
    let second = accounts()
        .replace(
            "loadBalancer: {name: edge-nlb}",
            &format!("loadBalancer: {{arn: {}}}\n  vpcLink: {{id: \"{vpc_link}\"}}", st.load_balancers[0].arn),
        )
        .replace("api: {name: open-banking, stage: v1}", &format!("api: {{id: \"{}\", stage: v2}}", api.id))
        + &ledger("  adoption: Adopt\n");
    let eu = Engine::new(
        f.clone(),
        EngineOptions { settings: Settings { instance: "crosslink-eu".into() }, ..EngineOptions::default() },
    );
    let d2 = desired(&second);
    let (_, plan) = eu.plan(&d2).await;
    let adopted: BTreeSet<String> =
        plan.actions.iter().filter(|a| a.verb == Verb::Adopt).map(|a| a.resource.clone()).collect();
    assert_eq!(adopted.len(), 3, "listener, target group and peering adopted: {adopted:?}");
    assert!(plan.actions.iter().all(|a| !a.op.is_delete()), "{:#?}", plan.actions);
    let r = eu.apply(&d2, &fast()).await;
    assert!(r.converged, "{:#?}", r.remaining);
    let (_, plan) = eu.plan(&d2).await;
    assert!(plan.actions.is_empty(), "{:#?}", plan.actions);
    let st = state(&f, GW);
    let t = st.target_groups.iter().find(|t| t.arn == tg).unwrap();
    assert_eq!(t.tags["crosslink.dev/managed-by"], "crosslink-eu");
    assert_eq!(st.listeners.iter().find(|l| l.arn == listener).unwrap().tags["crosslink.dev/owner"], "Link/ledger");
    assert_eq!(peering_to(&f, B_VPC).unwrap().id, pcx);
    assert_eq!(st.vpc_links.len(), 1, "the referenced VPC link is used, no other made");
    // And the first instance still leaves them alone.
    let (_, plan) = engine(&f).plan(&d).await;
    assert!(plan.actions.is_empty(), "{:#?}", plan.actions);
}

/// The ids of a link built by hand (`hand_built_chain`).
struct HandChain {
    lb: String,
    tg: String,
    listener: String,
    pcx: String,
    vpc_link: String,
    api: String,
    payments: String,
    proxy: String,
    ip: std::net::Ipv4Addr,
}

/// A link built by hand, step by step, without crosslink: an NLB `legacy-nlb`, a target group
/// `payments-tg` with a target and a 10 s health check, a listener on 9001, a peering to service
/// VPC A accepted with a route each way, a VPC link, a REST API `legacy-api` with `/payments` and
/// `/payments/{proxy+}` forwarding through it, deployed to `prod`.
fn hand_built_chain(f: &Arc<Faulty<FakeAws>>) -> HandChain {
    use crosslink_plan::kinds::{ApiResourceOp, RestApiOp, TargetGroupOp, TargetsOp, VpcLinkOp};
    use crosslink_plan::op::Ref;

    let created = |account: &str, op: Op| f.apply(account, &op).unwrap_or_else(|e| panic!("{op:?}: {e:?}"));
    let empty = BTreeMap::new;
    let lb = created(
        GW,
        Op::LoadBalancer(LoadBalancerOp::CreateLoadBalancer {
            name: "legacy-nlb".into(),
            subnet_ids: vec!["subnet-0000000000000000a".into(), "subnet-0000000000000000b".into()],
            tags: empty(),
        }),
    );
    let (lb, dns) = (lb.created.unwrap(), lb.dns_name.unwrap());
    let hc = tcp_check(10);
    let tg = created(
        GW,
        Op::TargetGroup(TargetGroupOp::CreateTargetGroup {
            name: "payments-tg".into(),
            vpc_id: GW_VPC.into(),
            port: 8080,
            health_check: hc,
            tags: empty(),
        }),
    )
    .created
    .unwrap();
    let ip = "10.20.1.10".parse().unwrap();
    created(
        GW,
        Op::Targets(TargetsOp::RegisterTargets {
            target_group_arn: Ref::Known(tg.clone()),
            targets: vec![(ip, 8080)],
            placement: Default::default(),
        }),
    );
    let listener = created(
        GW,
        Op::Listener(ListenerOp::CreateListener {
            load_balancer_arn: Ref::Known(lb.clone()),
            port: 9001,
            target_group_arn: Ref::Known(tg.clone()),
            tls: None,
            tags: empty(),
        }),
    )
    .created
    .unwrap();
    let pcx = created(
        GW,
        Op::Peering(PeeringOp::CreateVpcPeeringConnection {
            vpc_id: GW_VPC.into(),
            peer_vpc_id: A_VPC.into(),
            peer_owner_id: SVC_A.into(),
            peer_region: "eu-central-1".into(),
            tags: [("Name".to_string(), "payments by hand".to_string())].into(),
        }),
    )
    .created
    .unwrap();
    created(SVC_A, Op::Peering(PeeringOp::AcceptVpcPeeringConnection { peering_id: Ref::Known(pcx.clone()) }));
    for (account, rtb, dest) in [(GW, GW_RTB, "10.20.0.0/16"), (SVC_A, A_RTB, "10.1.0.0/16")] {
        created(
            account,
            Op::Route(RouteOp::CreateRoute {
                route_table_id: rtb.into(),
                destination: dest.parse().unwrap(),
                peering_id: Ref::Known(pcx.clone()),
            }),
        );
    }
    let vpc_link = created(
        GW,
        Op::VpcLink(VpcLinkOp::CreateVpcLink {
            name: "legacy-link".into(),
            load_balancer_arn: Ref::Known(lb.clone()),
            tags: empty(),
        }),
    )
    .created
    .unwrap();
    let api = created(GW, Op::RestApi(RestApiOp::CreateRestApi { name: "legacy-api".into(), tags: empty() }));
    let (api, root) = (api.created.unwrap(), api.root_resource_id.unwrap());
    let resource = |parent: &str, part: &str, path: &str| {
        created(
            GW,
            Op::ApiResource(ApiResourceOp::CreateResource {
                rest_api_id: Ref::Known(api.clone()),
                parent_id: Ref::Known(parent.into()),
                path_part: part.into(),
                path: path.into(),
            }),
        )
        .created
        .unwrap()
    };
    let payments = resource(&root, "payments", "/payments");
    let proxy = resource(&payments, "{proxy+}", "/payments/{proxy+}");
    for (id, path, greedy) in [(&payments, "/payments", false), (&proxy, "/payments/{proxy+}", true)] {
        created(
            GW,
            Op::Method(MethodOp::PutProxyMethod {
                rest_api_id: Ref::Known(api.clone()),
                resource_id: Ref::Known(id.clone()),
                path: path.into(),
                http_method: "ANY".into(),
                greedy,
                uri: crosslink_plan::integration_uri(&dns, 9001, "/payments", greedy),
                vpc_link_id: Ref::Known(vpc_link.clone()),
                authorization_type: "NONE".into(),
                authorizer_id: None,
                authorization_scopes: vec![],
                api_key_required: false,
                insecure_skip_verification: false,
                timeout_millis: None,
                replace: false,
            }),
        );
    }
    created(
        GW,
        Op::Stage(StageOp::CreateDeployment {
            rest_api_id: Ref::Known(api.clone()),
            stage: "prod".into(),
            description: "by hand".into(),
            stage_tags: empty(),
        }),
    );
    HandChain { lb, tg, listener, pcx, vpc_link, api, payments, proxy, ip }
}

/// Issue 17 (discover): a chain built by hand, step by step (NLB, target group with a target and
/// a 10 s health check, listener, peering accepted with a route each way, VPC link, REST API with
/// `/payments` and `/payments/{proxy+}` forwarding through it, a deployment to `prod`), is
/// discovered from the Account documents alone: the YAML validates, references the gateway's
/// NLB, VPC link and API, and adopts the link. Its plan adopts the listener, the target group and
/// the peering and changes nothing else but the first deployment crosslink records; applied, no
/// id changes, the tags are crosslink's, the plan is then empty, and drift is repaired.
#[tokio::test]
async fn a_hand_built_chain_is_discovered_and_adopted_without_recreating_anything() {
    let f = world();
    let HandChain { lb, tg, listener, pcx, vpc_link, api, payments, proxy, ip } = hand_built_chain(&f);
    let created = |account: &str, op: Op| f.apply(account, &op).unwrap_or_else(|e| panic!("{op:?}: {e:?}"));
    // Discovered from the Account documents alone.
    let only_accounts =
        accounts().split("\n---\n").filter(|d| !d.contains("kind: Gateway")).collect::<Vec<_>>().join("\n---\n");
    let found = engine(&f).discover(&desired(&only_accounts), "shared").await.unwrap();
    assert_eq!((found.gateways, found.links), (1, 1), "{}\n{:?}", found.yaml, found.notes);
    assert!(found.notes.is_empty(), "{:?}", found.notes);
    let d = desired(&found.yaml);
    let gw = &d.gateways[0];
    assert_eq!(gw.spec.load_balancer, crosslink_desired::LoadBalancerRef::Arn(lb.clone()));
    assert_eq!(gw.spec.vpc_link.as_ref().map(|v| v.id.as_str()), Some(vpc_link.as_str()));
    assert_eq!(gw.spec.api.target, crosslink_desired::ApiTarget::Id(api.clone()));
    assert_eq!(gw.spec.api.stage, "prod");
    let l = &d.links[0];
    assert_eq!(
        (l.metadata.name.as_str(), l.spec.listener_port, l.spec.service.vpc_id.as_str()),
        ("payments-tg", 9001, A_VPC)
    );
    assert_eq!(l.spec.service.route_table_ids, [A_RTB]);
    assert_eq!(l.spec.health_check.as_ref().map(|h| h.interval_seconds), Some(10));
    assert_eq!(l.spec.routes[0].path, "/payments");
    assert_eq!(l.spec.adoption, crosslink_desired::AdoptionPolicy::Adopt);

    // The plan adopts; nothing is created, deleted or replaced.
    let (_, plan) = engine(&f).plan(&d).await;
    let verbs: BTreeSet<String> = plan.actions.iter().map(|a| format!("{} {}", a.verb.as_str(), a.resource)).collect();
    assert!(plan.actions.iter().all(|a| matches!(a.verb, Verb::Adopt | Verb::Deploy)), "{verbs:#?}");
    assert_eq!(plan.actions.iter().filter(|a| a.verb == Verb::Adopt).count(), 3, "{verbs:#?}");

    converge(&f, &d).await;
    let st = state(&f, GW);
    assert_eq!(st.load_balancers.iter().map(|l| l.arn.as_str()).collect::<Vec<_>>(), [lb.as_str()]);
    assert_eq!(st.target_groups.iter().map(|t| t.arn.as_str()).collect::<Vec<_>>(), [tg.as_str()]);
    assert_eq!(st.listeners.iter().map(|l| l.arn.as_str()).collect::<Vec<_>>(), [listener.as_str()]);
    assert_eq!(st.vpc_links.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(), [vpc_link.as_str()]);
    assert_eq!(st.rest_apis.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), [api.as_str()]);
    assert_eq!(live_peerings(&f).iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), [pcx.as_str()]);
    let res: BTreeSet<&str> = st.rest_apis[0].resources.iter().map(|r| r.id.as_str()).collect();
    assert!(res.contains(payments.as_str()) && res.contains(proxy.as_str()));
    assert_eq!(st.target_groups[0].tags["crosslink.dev/owner"], "Link/payments-tg");
    assert_eq!(st.listeners[0].tags["crosslink.dev/adopted"], "true");
    assert_eq!(live_peerings(&f)[0].tags["crosslink.dev/managed-by"], "crosslink");
    // Another discovery now finds nothing to take over: it is crosslink's.
    let again = engine(&f).discover(&desired(&only_accounts), "shared").await.unwrap();
    assert_eq!(again.links, 0, "{}", again.yaml);

    // Drift is repaired afterwards: the target deregistered by hand comes back.
    created(
        GW,
        Op::Targets(crosslink_plan::kinds::TargetsOp::DeregisterTargets {
            target_group_arn: tg.clone(),
            targets: vec![(ip, 8080)],
            placement: Default::default(),
        }),
    );
    converge(&f, &d).await;
    assert_eq!(state(&f, GW).target_groups[0].targets.len(), 1);
}

/// Issue 17 (adoption of a gateway): the same hand-built chain, plus an API resource `/legacy`
/// that no link names, taken over by a Gateway that names the NLB and the API (no ARN, no id)
/// with `adoption: Adopt`. Without adoption the names are taken; with it the plan adopts the load
/// balancer by name, the VPC link by its target and the REST API by name (and the stage by name),
/// deletes nothing on that pass and warns that `/legacy` goes on a later one; applied, every id
/// is the same, all are tagged as crosslink's, and the next pass deletes `/legacy`. A VPC link of
/// another crosslink instance is never adopted.
#[tokio::test]
async fn a_hand_built_gateway_is_adopted_by_name_and_by_target() {
    use crosslink_plan::kinds::ApiResourceOp;
    use crosslink_plan::op::Ref;

    let f = world();
    let hand = hand_built_chain(&f);
    let root = state(&f, GW).rest_apis[0].resources.iter().find(|r| r.path == "/").unwrap().id.clone();
    let legacy = f
        .apply(
            GW,
            &Op::ApiResource(ApiResourceOp::CreateResource {
                rest_api_id: Ref::Known(hand.api.clone()),
                parent_id: Ref::Known(root),
                path_part: "legacy".into(),
                path: "/legacy".into(),
            }),
        )
        .unwrap()
        .created
        .unwrap();
    let text = |adoption: &str| {
        accounts().replace("loadBalancer: {name: edge-nlb}", "loadBalancer: {name: legacy-nlb}").replace(
            "api: {name: open-banking, stage: v1}",
            &format!("api: {{name: legacy-api, stage: prod}}\n{adoption}"),
        ) + &link(
            "payments-tg",
            "svc-a",
            A_VPC,
            A_RTB,
            "10.20.1.10",
            9001,
            "/payments",
            "  healthCheck: {intervalSeconds: 10}\n  adoption: Adopt\n",
        )
    };
    let (_, plan) = engine(&f).plan(&desired(&text(""))).await;
    let codes: Vec<&str> = plan.reports.values().flat_map(|r| &r.problems).map(|p| p.code.as_str()).collect();
    assert!(codes.contains(&"NameTaken"), "{codes:?}");

    let d = desired(&text("  adoption: Adopt\n"));
    let (_, plan) = engine(&f).plan(&d).await;
    let adopted: BTreeSet<String> = plan
        .actions
        .iter()
        .filter(|a| a.verb == Verb::Adopt)
        .map(|a| format!("{}: {}", a.resource, a.reason))
        .collect();
    for expected in [
        format!("load balancer legacy-nlb ({}): built without crosslink, matched by name legacy-nlb", hand.lb),
        format!(
            "VPC link legacy-link ({}): built without crosslink, matched by its target, the gateway's load balancer {}",
            hand.vpc_link, hand.lb
        ),
        format!("REST API legacy-api ({}): built without crosslink, matched by name legacy-api", hand.api),
    ] {
        assert!(adopted.contains(&expected), "{expected}\n{adopted:#?}");
    }
    assert_eq!(adopted.len(), 6, "and the link's listener, target group and peering: {adopted:#?}");
    let deploy = plan.actions.iter().find(|a| a.verb == Verb::Deploy).expect("a deployment");
    assert_eq!(deploy.reason.to_string(), "built without crosslink, matched stage by name prod");
    assert!(plan.actions.iter().all(|a| !a.op.is_delete() && a.verb != Verb::Create), "{:#?}", plan.actions);
    let warnings = &plan.reports[&Subject::Gateway("edge".into())].warnings;
    assert!(warnings.iter().any(|w| w.contains("/legacy") && w.contains("later")), "{warnings:?}");

    let r = apply(&f, &d).await;
    assert!(r.converged, "{:#?}", r.remaining);
    let st = state(&f, GW);
    assert_eq!(st.load_balancers.iter().map(|l| l.arn.as_str()).collect::<Vec<_>>(), [hand.lb.as_str()]);
    assert_eq!(st.vpc_links.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(), [hand.vpc_link.as_str()]);
    assert_eq!(st.rest_apis.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), [hand.api.as_str()]);
    for tags in [&st.load_balancers[0].tags, &st.vpc_links[0].tags, &st.rest_apis[0].tags] {
        assert_eq!(tags["crosslink.dev/owner"], "Gateway/edge", "{tags:?}");
        assert_eq!(tags["crosslink.dev/adopted"], "true");
    }
    assert!(st.rest_apis[0].resources.iter().all(|r| r.id != legacy), "the next pass deleted /legacy");
    let ids: BTreeSet<&str> = st.rest_apis[0].resources.iter().map(|r| r.id.as_str()).collect();
    assert!(ids.contains(hand.payments.as_str()) && ids.contains(hand.proxy.as_str()));
    let (_, plan) = engine(&f).plan(&d).await;
    assert!(plan.actions.is_empty(), "{:#?}", plan.actions);

    // A VPC link of another crosslink instance is never adopted.
    let g = world();
    let other = hand_built_chain(&g);
    g.apply(
        GW,
        &Op::VpcLink(crosslink_plan::kinds::VpcLinkOp::TagVpcLink {
            id: other.vpc_link.clone(),
            tags: [("crosslink.dev/managed-by".to_string(), "crosslink-eu".to_string())].into(),
        }),
    )
    .unwrap();
    let (_, plan) = engine(&g).plan(&d).await;
    let problems = &plan.reports[&Subject::Gateway("edge".into())].problems;
    assert!(
        problems.iter().any(|p| p.code == "OwnedByAnotherInstance" && p.message.contains("`crosslink-eu`")),
        "{problems:?}"
    );
}

/// Issue 17 (adoption never removes a working path): a hand-made listener forwards to a target
/// group that cannot serve a link in place (target type `instance`). Adopting it plans a group of
/// the link's own to replace it, and the listener's switch, marked as a replacement: apply holds
/// the switch (the old group keeps the traffic, the listener is adopted) until it runs with
/// allow_replacement; then the listener forwards to the new group, and the old group, not
/// crosslink's, stays.
#[tokio::test]
async fn an_unfit_adopted_target_group_is_replaced_only_when_allowed() {
    use crosslink_plan::kinds::TargetGroupOp;

    let f = world();
    let base = accounts() + &link("pay", "svc-a", A_VPC, A_RTB, "10.20.1.10", 9001, "/payments", "");
    converge(&f, &desired(&base)).await;
    let lb = state(&f, GW).load_balancers[0].arn.clone();
    let old = hand_target_group(&f, "legacy-instances", 30);
    f.with_account(GW, |st| {
        st.target_groups.iter_mut().find(|t| t.arn == old).unwrap().target_type = "instance".into();
    });
    let listener = hand_listener(&f, &lb, 9002, &old, &[]);
    let d =
        desired(&(base + &link("legacy", "svc-a", A_VPC, A_RTB, "10.20.1.30", 9002, "/legacy", "  adoption: Adopt\n")));

    let (_, plan) = engine(&f).plan(&d).await;
    let mine: Vec<&crosslink_plan::Action> =
        plan.actions.iter().map(|a| &**a).filter(|a| a.subject == Subject::Link("legacy".into())).collect();
    assert!(plan.reports[&Subject::Link("legacy".into())].problems.is_empty());
    let create =
        mine.iter().find(|a| matches!(a.op, Op::TargetGroup(TargetGroupOp::CreateTargetGroup { .. }))).unwrap();
    assert!(
        create.reason.to_string().contains("legacy-instances cannot be adopted in place: target type instance"),
        "{}",
        create.reason
    );
    let switch =
        mine.iter().find(|a| matches!(a.op, Op::Listener(ListenerOp::ModifyListener { .. }))).expect("the switch");
    assert!(plan.replacing[&switch.id].contains("legacy-instances"), "{:?}", plan.replacing);
    assert_eq!(plan.replacing.len(), 1);
    assert!(mine.iter().any(|a| a.verb == Verb::Adopt && a.resource.contains(&listener)));
    let warnings = &plan.reports[&Subject::Link("legacy".into())].warnings;
    assert!(warnings.iter().any(|w| w.contains("--allow-replacement")), "{warnings:?}");

    // Held: the listener is adopted but still forwards to the old group.
    let r = apply(&f, &d).await;
    assert!(!r.converged);
    let forwards = |f: &FakeAws| {
        state(f, GW).listeners.iter().find(|l| l.arn == listener).unwrap().target_group_arn.clone().unwrap()
    };
    assert_eq!(forwards(&f), old);
    assert_eq!(
        state(&f, GW).listeners.iter().find(|l| l.arn == listener).unwrap().tags["crosslink.dev/owner"],
        "Link/legacy"
    );

    // Allowed: switched; the old group stays.
    let r = engine(&f).apply(&d, &ApplyOptions { allow_replacement: true, ..fast() }).await;
    assert!(r.converged, "{:#?}", r.remaining);
    let new = forwards(&f);
    assert_ne!(new, old);
    let st = state(&f, GW);
    assert_eq!(st.target_groups.iter().find(|t| t.arn == new).unwrap().tags["crosslink.dev/owner"], "Link/legacy");
    assert!(st.target_groups.iter().any(|t| t.arn == old), "the old group is not crosslink's: it stays");
    let (_, plan) = engine(&f).plan(&d).await;
    assert!(plan.actions.is_empty(), "{:#?}", plan.actions);
}

/// Issue 17: a peering of a link's VPC pair requested the other way, from the service VPC, is
/// refused with a reason (crosslink manages the requester's side), with or without adoption: no
/// second peering is requested (AWS would refuse it) and nothing is changed.
#[tokio::test]
async fn a_peering_requested_from_the_service_side_is_refused_not_duplicated() {
    use crosslink_plan::kinds::PeeringOp;
    use crosslink_plan::op::Ref;

    let f = world();
    let pcx = f
        .apply(
            SVC_A,
            &Op::Peering(PeeringOp::CreateVpcPeeringConnection {
                vpc_id: A_VPC.into(),
                peer_vpc_id: GW_VPC.into(),
                peer_owner_id: GW.into(),
                peer_region: "eu-central-1".into(),
                tags: Default::default(),
            }),
        )
        .unwrap()
        .created
        .unwrap();
    f.apply(GW, &Op::Peering(PeeringOp::AcceptVpcPeeringConnection { peering_id: Ref::Known(pcx.clone()) })).unwrap();
    for extra in ["", "  adoption: Adopt\n"] {
        let d = desired(&(accounts() + &link("pay", "svc-a", A_VPC, A_RTB, "10.20.1.10", 9001, "/payments", extra)));
        let (_, plan) = engine(&f).plan(&d).await;
        let problems: Vec<String> =
            plan.reports.values().flat_map(|r| &r.problems).map(|p| format!("{}: {}", p.code, p.message)).collect();
        assert!(
            problems.iter().any(|m| m.starts_with("PeeringExists")
                && m.contains(&pcx)
                && m.contains("requested from the service VPC")),
            "{problems:?}"
        );
        assert!(!plan.actions.iter().any(|a| matches!(a.op, Op::Peering(_))), "{:#?}", plan.actions);
    }
}

/// Issue 17 (release of a gateway): a gateway and its link, both `deletionPolicy: Retain`, leave
/// the desired state; releasing them with the pair's peering removes crosslink's tag keys from the
/// load balancer (RemoveTags), the VPC link and the REST API (UntagResource), the listener, target
/// group and peering; user tags stay, and a plan of the desired state left changes nothing.
#[tokio::test]
async fn a_released_gateway_keeps_its_user_tags_and_loses_crosslink_s() {
    let f = world();
    let retained =
        accounts().replace(
            "api: {name: open-banking, stage: v1}",
            "api: {name: open-banking, stage: v1}\n  deletionPolicy: Retain\n  tags: {cost-center: platform}",
        ) + &link("pay", "svc-a", A_VPC, A_RTB, "10.20.1.10", 9001, "/payments", "  deletionPolicy: Retain\n");
    converge(&f, &desired(&retained)).await;
    let only_accounts =
        accounts().split("\n---\n").filter(|d| !d.contains("kind: Gateway")).collect::<Vec<_>>().join("\n---\n");
    let d = desired(&only_accounts);
    converge(&f, &d).await;
    let objects =
        [Subject::Gateway("edge".into()), Subject::Link("pay".into()), Subject::Peering(GW_VPC.into(), A_VPC.into())];
    let (plan, executed) = engine(&f).release(&d, &objects, false).await;
    assert!(!plan.has_problems(), "{plan:#?}");
    let ops: BTreeSet<&str> = plan.actions.iter().map(|a| a.op.name()).collect();
    assert_eq!(ops, BTreeSet::from(["DeleteTags", "RemoveTags", "UntagResource"]));
    assert_eq!(executed.len(), 6, "NLB, VPC link, REST API, listener, target group, peering: {:#?}", plan.actions);
    assert!(executed.iter().all(|e| matches!(e.result, ActionResult::Done { .. })), "{executed:#?}");
    let st = state(&f, GW);
    let ours = |t: &crosslink_plan::observed::Tags| t.keys().filter(|k| k.starts_with("crosslink.dev/")).count();
    for t in [&st.load_balancers[0].tags, &st.vpc_links[0].tags, &st.rest_apis[0].tags] {
        assert_eq!((ours(t), t.get("cost-center").map(String::as_str)), (0, Some("platform")), "{t:?}");
    }
    assert_eq!(ours(&st.listeners[0].tags) + ours(&st.target_groups[0].tags) + ours(&live_peerings(&f)[0].tags), 0);
    let (_, plan) = engine(&f).plan(&d).await;
    assert!(plan.actions.is_empty(), "{:#?}", plan.actions);
}

/// The hand-built link made TLS by hand: its listener (a certificate, a policy) and its
/// integrations, https to `host` with the certificate check off.
fn make_tls_by_hand(f: &FakeAws, hand: &HandChain, host: &str) {
    use crosslink_plan::kinds::listener::ListenerTls;
    use crosslink_plan::op::Ref;
    let tls = ListenerTls { certificate_arn: CERT.into(), ssl_policy: "ELBSecurityPolicy-TLS13-1-2-2021-06".into() };
    let listener = ListenerOp::ModifyListener {
        arn: hand.listener.clone(),
        port: 9001,
        target_group_arn: Ref::Known(hand.tg.clone()),
        tls: Some(tls),
        protocol_changes: true,
    };
    f.apply(GW, &Op::Listener(listener)).unwrap();
    for (id, path, greedy) in [(&hand.payments, "/payments", false), (&hand.proxy, "/payments/{proxy+}", true)] {
        let method = MethodOp::PutProxyMethod {
            rest_api_id: Ref::Known(hand.api.clone()),
            resource_id: Ref::Known(id.clone()),
            path: path.into(),
            http_method: "ANY".into(),
            greedy,
            uri: crosslink_plan::kinds::method::uri_at(&format!("https://{host}:9001"), "/payments", greedy),
            vpc_link_id: Ref::Known(hand.vpc_link.clone()),
            authorization_type: "NONE".into(),
            authorizer_id: None,
            authorization_scopes: vec![],
            api_key_required: false,
            insecure_skip_verification: true,
            timeout_millis: None,
            replace: false,
        };
        f.apply(GW, &Op::Method(method)).unwrap();
    }
}

/// Issue 17 (discover, TLS to the backend): the hand-built link's listener made TLS by hand and
/// its integrations https to a name of the service's own, with the certificate check off:
/// `discover` writes the link's `tls` as found (certificate, policy, server name,
/// insecureSkipVerification); the plan adopts and changes nothing else, and after the apply it is
/// in sync. Integrations to the NLB's own amazonaws.com name are left out, with the reason.
#[tokio::test]
async fn discover_writes_tls_to_the_backend_as_found() {
    let only_accounts =
        accounts().split("\n---\n").filter(|d| !d.contains("kind: Gateway")).collect::<Vec<_>>().join("\n---\n");
    let f = world();
    let hand = hand_built_chain(&f);
    make_tls_by_hand(&f, &hand, "payments.internal.bank.example");
    let found = engine(&f).discover(&desired(&only_accounts), "shared").await.unwrap();
    assert_eq!(found.links, 1, "{}\n{:?}", found.yaml, found.notes);
    let d = desired(&found.yaml);
    let t = d.links[0].spec.tls.as_ref().expect("tls written");
    assert_eq!(
        (t.certificate_arn.as_str(), t.server_name.as_str(), t.ssl_policy.as_str(), t.insecure_skip_verification),
        (CERT, "payments.internal.bank.example", "ELBSecurityPolicy-TLS13-1-2-2021-06", true)
    );
    let (_, plan) = engine(&f).plan(&d).await;
    assert!(plan.actions.iter().all(|a| matches!(a.verb, Verb::Adopt | Verb::Deploy)), "{:#?}", plan.actions);
    converge(&f, &d).await;

    // The NLB's own name as the server name cannot be written: said, not dropped.
    let g = world();
    let hand = hand_built_chain(&g);
    let dns = state(&g, GW).load_balancers[0].dns_name.clone();
    make_tls_by_hand(&g, &hand, &dns);
    let found = engine(&g).discover(&desired(&only_accounts), "shared").await.unwrap();
    assert_eq!(found.links, 0, "{}", found.yaml);
    assert!(
        found.notes.iter().any(|n| n.contains("listener :9001") && n.contains("amazonaws.com")),
        "{:?}",
        found.notes
    );
}
