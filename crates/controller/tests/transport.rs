//! Link transports other than peering, against the in-memory AWS (which models what moto does
//! not: the service account's acceptance of an endpoint connection, and every cross-account
//! step): privateLink converging from empty over overlapping CIDRs, drift repaired, removal, and
//! a live link migrated between peering and privateLink with a path at every moment, checked
//! after each AWS call.

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crosslink_cloud::fake::FakeAws;
use crosslink_cloud::{Cloud, CloudError, ObserveScope, Outcome};
use crosslink_controller::{ApplyOptions, ApplyReport, Engine, EngineOptions};
use crosslink_desired::{Account, DesiredState};
use crosslink_plan::Subject;
use crosslink_plan::observed::{AccountObservation, AccountState, IngressRule, PeeringStatus};
use crosslink_plan::op::Op;

const GW: &str = "111111111111";
const SVC: &str = "222222222222";
const GW_VPC: &str = "vpc-0000000000000000a";
const SVC_VPC: &str = "vpc-0000000000000000b";
const GW_RTB: &str = "rtb-0000000000000000a";
const SVC_RTB: &str = "rtb-0000000000000000b";
const SVC_SUBNET: &str = "subnet-0000000000000001a";

/// The in-memory AWS behind a watch that checks, after every call, whether the link still has a
/// path (`path`), and records the calls.
struct Watched {
    inner: FakeAws,
    /// Checked after each call once set: the link's listener port.
    watch: Mutex<Option<u16>>,
    /// (call, whether the link had a path right after it).
    log: Mutex<Vec<(String, bool)>>,
}

impl Cloud for Watched {
    async fn observe(&self, account: &Account, scope: &ObserveScope) -> AccountObservation {
        self.inner.observe(account, scope).await
    }

    async fn execute(&self, account: &Account, op: &Op) -> Result<Outcome, CloudError> {
        let r = self.inner.execute(account, op).await;
        let port = *self.watch.lock().unwrap();
        if let Some(port) = port {
            let ok = path(&self.inner, port).is_ok();
            self.log.lock().unwrap().push((format!("{} {}", account.spec.account_id, op.name()), ok));
        }
        r
    }
}

fn state(f: &FakeAws, account: &str) -> AccountState {
    match f.observe_account(account) {
        AccountObservation::Ok(s) => *s,
        AccountObservation::Failed { code, .. } => panic!("{code}"),
    }
}

/// Whether a request to the gateway NLB's listener on `port` reaches a service target, by the
/// live state alone: a registered, healthy target of the listener's target group that is either
/// a peered address (an active peering between the VPCs, routes both ways) or an interface of an
/// available endpoint whose endpoint service's NLB has a listener on the port with targets.
fn path(f: &FakeAws, port: u16) -> Result<String, String> {
    let gs = state(f, GW);
    let ss = state(f, SVC);
    let listener = gs.listeners.iter().find(|l| l.port == port).ok_or("no gateway listener")?;
    let tg_arn = listener.target_group_arn.as_deref().ok_or("listener forwards nowhere")?;
    let tg = gs.target_groups.iter().find(|t| t.arn == tg_arn).ok_or("listener's target group missing")?;
    let svc_cidr = ss.vpcs[SVC_VPC].cidrs[0];
    let gw_cidr = gs.vpcs[GW_VPC].cidrs[0];
    for t in tg.targets.iter().filter(|t| t.health == "healthy") {
        if t.availability_zone.as_deref() == Some("all") {
            let Some(p) = gs
                .peerings
                .iter()
                .find(|p| p.requester_vpc == GW_VPC && p.accepter_vpc == SVC_VPC && p.status == PeeringStatus::Active)
            else {
                continue;
            };
            let via = |st: &AccountState, rtb: &str, to| {
                st.route_tables[rtb]
                    .routes
                    .iter()
                    .any(|r| r.destination == to && r.peering_id.as_deref() == Some(p.id.as_str()))
            };
            if svc_cidr.contains(&t.ip) && via(&gs, GW_RTB, svc_cidr) && via(&ss, SVC_RTB, gw_cidr) {
                return Ok(format!("peering {} to {}", p.id, t.ip));
            }
        } else {
            let Some(e) = gs.endpoints.iter().find(|e| e.interfaces.iter().any(|i| i.ip == t.ip)) else { continue };
            if e.state != "available" {
                continue;
            }
            let Some(s) = ss.endpoint_services.iter().find(|s| s.service_name == e.service_name) else { continue };
            let served = ss.listeners.iter().any(|l| {
                s.load_balancer_arns.contains(&l.load_balancer_arn)
                    && l.port == t.port
                    && ss
                        .target_groups
                        .iter()
                        .any(|g| Some(&g.arn) == l.target_group_arn.as_ref() && !g.targets.is_empty())
            });
            if served {
                return Ok(format!("endpoint {} to {}", e.id, s.id));
            }
        }
    }
    Err(format!("no target of {} reaches the service: {:?}", tg.name, tg.targets))
}

/// A gateway VPC and a service VPC; `overlap`: the service VPC has the gateway's own range.
fn world(overlap: bool) -> Arc<Watched> {
    let f = FakeAws::new();
    f.seed_vpc(
        GW,
        "eu-central-1",
        GW_VPC,
        "10.1.0.0/16",
        &["subnet-0000000000000000a", "subnet-0000000000000000b"],
        GW_RTB,
    );
    let svc = if overlap { "10.1.0.0/16" } else { "10.20.0.0/16" };
    f.seed_vpc(SVC, "eu-central-1", SVC_VPC, svc, &[SVC_SUBNET], SVC_RTB);
    Arc::new(Watched { inner: f, watch: Mutex::new(None), log: Mutex::new(Vec::new()) })
}

fn yaml(transport: &str, target: &str) -> String {
    let service = if transport == "peering" {
        format!("{{account: svc, vpcId: {SVC_VPC}, routeTableIds: [{SVC_RTB}]}}")
    } else {
        format!("{{account: svc, vpcId: {SVC_VPC}}}")
    };
    let transport = if transport == "peering" {
        String::new()
    } else {
        format!("  transport: {{privateLink: {{loadBalancer: {{name: pay-svc}}, subnetIds: [{SVC_SUBNET}]}}}}\n")
    };
    format!(
        r#"
apiVersion: crosslink.dev/v1alpha1
kind: Account
metadata: {{name: shared}}
spec: {{accountId: "{GW}", region: eu-central-1}}
---
apiVersion: crosslink.dev/v1alpha1
kind: Account
metadata: {{name: svc}}
spec: {{accountId: "{SVC}", region: eu-central-1}}
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
---
apiVersion: crosslink.dev/v1alpha1
kind: Link
metadata: {{name: pay}}
spec:
  gateway: edge
  service: {service}
  targets: [{{ip: {target}, port: 8080}}]
  listenerPort: 9001
  routes: [{{path: /payments}}]
{transport}"#
    )
}

fn gateway_only() -> String {
    let y = yaml("peering", "10.20.1.10");
    y[..y.find("---\napiVersion: crosslink.dev/v1alpha1\nkind: Link").unwrap()].to_string()
}

fn desired(text: &str) -> DesiredState {
    crosslink_desired::load_str(Path::new("test.yaml"), text).unwrap_or_else(|e| panic!("{e}"))
}

fn engine(f: &Arc<Watched>) -> Engine<Watched> {
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

async fn converge(f: &Arc<Watched>, d: &DesiredState) -> ApplyReport {
    let r = engine(f).apply(d, &fast()).await;
    assert!(r.converged, "did not converge: failed {:?}\nremaining {:#?}", r.failed, r.remaining);
    let (_, plan) = engine(f).plan(d).await;
    assert!(plan.actions.is_empty(), "re-plan not empty: {:#?}", plan.actions);
    r
}

/// The calls watched since the last look, each of which left the link a path (else a failure
/// naming those after which it had none).
fn calls_each_with_a_path(f: &Watched) -> Vec<(String, bool)> {
    let log = std::mem::take(&mut *f.log.lock().unwrap());
    let broken: Vec<&String> = log.iter().filter(|(_, ok)| !ok).map(|(c, _)| c).collect();
    assert!(broken.is_empty(), "the link had no path after: {broken:?}\nall calls: {log:?}");
    log
}

/// Where in the log the first call of an operation in an account is.
fn first_call(log: &[(String, bool)], account: &str, name: &str) -> usize {
    let call = format!("{account} {name}");
    log.iter().position(|(c, _)| *c == call).unwrap_or_else(|| panic!("no {call}: {log:?}"))
}

fn principal(account: &str) -> String {
    format!("arn:aws:iam::{account}:root")
}

#[tokio::test]
async fn private_link_converges_over_overlapping_cidrs_repairs_drift_and_is_removed() {
    let f = world(true);
    // The service VPC is 10.1.0.0/16, as the gateway's: peering is refused, privateLink is not.
    // (The YAML gives no CIDRs, so validation cannot tell; the planner refuses it live.)
    let (_, plan) = engine(&f).plan(&desired(&yaml("peering", "10.1.5.10"))).await;
    let problems = &plan.reports[&Subject::Peering(GW_VPC.into(), SVC_VPC.into())].problems;
    assert!(problems.iter().any(|p| p.message.contains("overlaps")), "{problems:?}");

    let d = desired(&yaml("privateLink", "10.1.5.10"));
    converge(&f, &d).await;
    let (gs, ss) = (state(&f.inner, GW), state(&f.inner, SVC));
    // No peering, no routes: nothing routes between the VPCs.
    assert!(gs.peerings.is_empty());
    assert!(f.inner.observe_route_tables_empty(GW) && f.inner.observe_route_tables_empty(SVC));
    // The service side: an NLB, its listener on the link's port, the link's target.
    let nlb = ss.load_balancers.iter().find(|l| l.name == "pay-svc").expect("service-side NLB");
    assert_eq!(nlb.vpc_id, SVC_VPC);
    let svc_listener = ss.listeners.iter().find(|l| l.load_balancer_arn == nlb.arn).expect("service listener");
    assert_eq!(svc_listener.port, 9001);
    let svc_tg = ss.target_groups.iter().find(|t| Some(&t.arn) == svc_listener.target_group_arn.as_ref()).unwrap();
    assert_eq!(
        svc_tg.targets.iter().map(|t| (t.ip.to_string(), t.port)).collect::<Vec<_>>(),
        [("10.1.5.10".into(), 8080)]
    );
    // The endpoint service: on that NLB, acceptance required, the gateway account only.
    let svc = &ss.endpoint_services[0];
    assert_eq!(svc.load_balancer_arns, std::slice::from_ref(&nlb.arn));
    assert!(svc.acceptance_required);
    assert_eq!(svc.allowed_principals, [principal(GW)]);
    // The gateway side: the endpoint, accepted and available, in both gateway subnets, with
    // its security group letting the gateway VPC in on the port.
    let e = &gs.endpoints[0];
    assert_eq!((e.state.as_str(), e.service_name.as_str()), ("available", svc.service_name.as_str()));
    assert_eq!(e.interfaces.len(), 2);
    let sg = gs.security_groups.iter().find(|g| e.security_group_ids.contains(&g.id)).expect("endpoint security group");
    assert_eq!(
        sg.ingress,
        [IngressRule { protocol: "tcp".into(), from_port: 9001, to_port: 9001, cidr: "10.1.0.0/16".parse().unwrap() }]
    );
    // The gateway target group targets the endpoint's interfaces, each in its own zone.
    let gw_tg = gs.target_groups.iter().find(|t| t.vpc_id == GW_VPC).unwrap();
    let mut targets: Vec<(Ipv4Addr, u16, String)> =
        gw_tg.targets.iter().map(|t| (t.ip, t.port, t.availability_zone.clone().unwrap())).collect();
    targets.sort();
    let mut want: Vec<(Ipv4Addr, u16, String)> =
        e.interfaces.iter().map(|i| (i.ip, 9001, i.availability_zone.clone())).collect();
    want.sort();
    assert_eq!(targets, want);
    assert!(targets.iter().all(|(_, _, z)| z != "all"));
    assert!(path(&f.inner, 9001).unwrap().starts_with("endpoint "));
    // The acceptance was the service account's.
    let calls = f.inner.calls();
    assert!(calls.contains(&(SVC.to_string(), "AcceptVpcEndpointConnections".to_string())), "{calls:?}");
    // Status shows the live ids.
    let (_, plan) = engine(&f).plan(&d).await;
    let r = &plan.reports[&Subject::Link("pay".into())].resources;
    assert_eq!(r["endpointService"], svc.id);
    assert_eq!(r["endpoint"], e.id);
    assert_eq!(r["endpointState"], "available");
    assert_eq!(r["serviceLoadBalancer"], nlb.arn);
    // Health follows the path: the endpoint's interfaces, the endpoint, the endpoint service,
    // the service side's listener and target group, and the link's target there.
    let (observed, plan) = engine(&f).plan(&d).await;
    let health = crosslink_plan::health::link_health(&d, &observed, &plan, d.link("pay").unwrap());
    assert!(health.healthy, "{health:#?}");
    let kinds: Vec<&str> = health.hops.iter().map(|h| h.kind.as_str()).collect();
    for k in ["endpointTarget", "endpoint", "endpointService", "serviceListener", "serviceTargetGroup", "target"] {
        assert!(kinds.contains(&k), "{k} missing in {kinds:?}");
    }
    assert!(!kinds.contains(&"peering"), "{kinds:?}");
    assert_eq!(health.targets.healthy, 1);
    // A service target deregistered by hand breaks it, at that target.
    let svc_tg_arn = svc_tg.arn.clone();
    f.inner.with_account(SVC, |st| st.target_groups.iter_mut().find(|t| t.arn == svc_tg_arn).unwrap().targets.clear());
    let (observed, plan) = engine(&f).plan(&d).await;
    let health = crosslink_plan::health::link_health(&d, &observed, &plan, d.link("pay").unwrap());
    assert!(!health.healthy);
    let first = health.first_broken_hop().unwrap();
    assert_eq!((first.kind.as_str(), first.detail.as_str()), ("target", "not registered"), "{health:#?}");
    converge(&f, &d).await;

    // Drift: another account allowed in, acceptance switched off, the group opened to the world.
    f.inner.with_account(SVC, |st| {
        st.endpoint_services[0].allowed_principals.push(principal("999999999999"));
        st.endpoint_services[0].acceptance_required = false;
    });
    f.inner.with_account(GW, |st| {
        st.security_groups[0].ingress.push(IngressRule {
            protocol: "-1".into(),
            from_port: -1,
            to_port: -1,
            cidr: "0.0.0.0/0".parse().unwrap(),
        });
    });
    let (_, plan) = engine(&f).plan(&d).await;
    let names: Vec<&str> = plan.actions.iter().map(|a| a.op.name()).collect();
    assert!(names.contains(&"ModifyVpcEndpointServicePermissions"), "{names:?}");
    assert!(names.contains(&"ModifyVpcEndpointServiceConfiguration"), "{names:?}");
    assert!(names.contains(&"RevokeSecurityGroupIngress"), "{names:?}");
    converge(&f, &d).await;
    let (gs, ss) = (state(&f.inner, GW), state(&f.inner, SVC));
    assert_eq!(ss.endpoint_services[0].allowed_principals, [principal(GW)]);
    assert!(ss.endpoint_services[0].acceptance_required);
    assert_eq!(gs.security_groups[0].ingress.len(), 1);

    // Removed from the YAML: everything the link made goes, in both accounts.
    converge(&f, &desired(&gateway_only())).await;
    let (gs, ss) = (state(&f.inner, GW), state(&f.inner, SVC));
    assert!(gs.endpoints.is_empty() && gs.security_groups.is_empty(), "{:?} {:?}", gs.endpoints, gs.security_groups);
    assert!(gs.target_groups.is_empty());
    assert!(ss.endpoint_services.is_empty());
    assert!(ss.load_balancers.is_empty() && ss.target_groups.is_empty() && ss.listeners.is_empty());
}

/// Peering to privateLink and back, on a live link: after every single AWS call the link has a
/// path, and the old path goes only after the new one carries the targets.
#[tokio::test]
async fn migrating_a_live_link_between_peering_and_private_link_never_leaves_it_without_a_path() {
    let f = world(false);
    let peering = desired(&yaml("peering", "10.20.1.10"));
    converge(&f, &peering).await;
    assert!(path(&f.inner, 9001).unwrap().starts_with("peering "));

    // To privateLink, watched.
    *f.watch.lock().unwrap() = Some(9001);
    let private = desired(&yaml("privateLink", "10.20.1.10"));
    converge(&f, &private).await;
    let log = calls_each_with_a_path(&f);
    assert!(path(&f.inner, 9001).unwrap().starts_with("endpoint "));
    let at = |account: &str, name: &str| first_call(&log, account, name);
    // Step by step: the endpoint's targets are registered, then the peered target leaves, then
    // the routes and the peering.
    assert!(at(SVC, "AcceptVpcEndpointConnections") < at(GW, "RegisterTargets"));
    assert!(at(GW, "RegisterTargets") < at(GW, "DeregisterTargets"));
    assert!(at(GW, "DeregisterTargets") < at(GW, "DeleteRoute"));
    assert!(at(GW, "DeleteRoute") < at(GW, "DeleteVpcPeeringConnection"));
    let gs = state(&f.inner, GW);
    assert!(gs.peerings.iter().all(|p| p.status != PeeringStatus::Active));
    assert!(f.inner.observe_route_tables_empty(GW) && f.inner.observe_route_tables_empty(SVC));

    // And back to peering, watched.
    converge(&f, &peering).await;
    let log = calls_each_with_a_path(&f);
    assert!(path(&f.inner, 9001).unwrap().starts_with("peering "));
    let at = |account: &str, name: &str| first_call(&log, account, name);
    assert!(at(SVC, "CreateRoute") < at(GW, "DeregisterTargets"));
    assert!(at(GW, "DeregisterTargets") < at(GW, "DeleteVpcEndpoints"));
    assert!(at(GW, "DeleteVpcEndpoints") < at(SVC, "DeleteVpcEndpointServiceConfigurations"));
    assert!(at(SVC, "DeleteVpcEndpointServiceConfigurations") < at(SVC, "DeleteLoadBalancer"));
    let (gs, ss) = (state(&f.inner, GW), state(&f.inner, SVC));
    assert!(gs.endpoints.is_empty() && gs.security_groups.is_empty());
    assert!(ss.endpoint_services.is_empty() && ss.load_balancers.is_empty() && ss.target_groups.is_empty());
}

/// A privateLink link's service side replaced (another NLB name: a new NLB, endpoint service and
/// endpoint): the old endpoint's interfaces stay registered until the new ones are healthy, and
/// the old endpoint, service and NLB go after; a path after every call.
#[tokio::test]
async fn replacing_a_private_link_service_side_keeps_a_path() {
    let f = world(false);
    converge(&f, &desired(&yaml("privateLink", "10.20.1.10"))).await;
    let old_endpoint = state(&f.inner, GW).endpoints[0].id.clone();
    *f.watch.lock().unwrap() = Some(9001);
    converge(&f, &desired(&yaml("privateLink", "10.20.1.10").replace("pay-svc", "pay-svc-2"))).await;
    let log = calls_each_with_a_path(&f);
    let at = |account: &str, name: &str| first_call(&log, account, name);
    assert!(at(GW, "RegisterTargets") < at(GW, "DeregisterTargets"));
    assert!(at(GW, "DeregisterTargets") < at(GW, "DeleteVpcEndpoints"));
    assert!(at(GW, "DeleteVpcEndpoints") < at(SVC, "DeleteVpcEndpointServiceConfigurations"));
    let (gs, ss) = (state(&f.inner, GW), state(&f.inner, SVC));
    assert_eq!(gs.endpoints.len(), 1);
    assert_ne!(gs.endpoints[0].id, old_endpoint);
    assert_eq!(ss.endpoint_services.len(), 1);
    assert_eq!(ss.load_balancers.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["pay-svc-2"]);
    // The old NLB's own target group and listener went with it (a target group serves one NLB).
    assert_eq!((ss.target_groups.len(), ss.listeners.len()), (1, 1), "{:?}", ss.target_groups);
    assert!(path(&f.inner, 9001).unwrap().starts_with("endpoint "));
}

/// The service-side NLB referenced by ARN (an existing internal NLB of the service VPC, built
/// without crosslink): crosslink adds the link's listener, target group and endpoint service to
/// it, and on removal takes those away and leaves the NLB.
#[tokio::test]
async fn a_referenced_service_load_balancer_is_used_and_never_deleted() {
    use crosslink_plan::kinds::LoadBalancerOp;
    let f = world(false);
    let existing = f
        .inner
        .apply(
            SVC,
            &Op::LoadBalancer(LoadBalancerOp::CreateLoadBalancer {
                name: "team-nlb".into(),
                subnet_ids: vec![SVC_SUBNET.into()],
                tags: Default::default(),
            }),
        )
        .unwrap()
        .created
        .unwrap();
    let text = yaml("privateLink", "10.20.1.10")
        .replace(&format!("{{name: pay-svc}}, subnetIds: [{SVC_SUBNET}]"), &format!("{{arn: \"{existing}\"}}"));
    assert!(text.contains(&existing), "{text}");
    let d = desired(&text);
    converge(&f, &d).await;
    let ss = state(&f.inner, SVC);
    assert_eq!(ss.load_balancers.len(), 1, "no NLB of its own: {:?}", ss.load_balancers);
    assert_eq!(ss.endpoint_services[0].load_balancer_arns, std::slice::from_ref(&existing));
    assert!(ss.listeners.iter().any(|l| l.load_balancer_arn == existing && l.port == 9001));
    assert!(path(&f.inner, 9001).unwrap().starts_with("endpoint "));

    converge(&f, &desired(&gateway_only())).await;
    let ss = state(&f.inner, SVC);
    assert_eq!(ss.load_balancers.iter().map(|l| l.arn.as_str()).collect::<Vec<_>>(), [existing.as_str()]);
    assert!(ss.listeners.is_empty() && ss.target_groups.is_empty() && ss.endpoint_services.is_empty());
}
