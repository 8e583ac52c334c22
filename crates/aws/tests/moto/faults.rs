//! One fault script, run through `crosslink_cloud::faults::Faulty` over the real adapter against
//! moto and over the in-memory AWS: the same faults, the same engine, the same inventory after.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crosslink_aws::{AwsCloud, Connector, SeededVpc, seed_network};
use crosslink_cloud::fake::FakeAws;
use crosslink_cloud::faults::{Attempt, Effect, Faulty, Rule};
use crosslink_cloud::{Cloud, ObserveScope};
use crosslink_controller::{ApplyOptions, Engine, EngineOptions};
use crosslink_desired::DesiredState;
use crosslink_plan::observed::{AccountObservation, AccountState, PeeringStatus};
use crosslink_plan::tags::{MANAGED_BY, OWNER};
use crosslink_testkit::Moto;

const GW: &str = "111111111111";
const SVC_A: &str = "222222222222";
const SVC_B: &str = "333333333333";

/// The script: the first CreateTargetGroup makes its target group and loses the answer; the
/// first two CreateRoute calls are throttled (EC2's `RequestLimitExceeded`).
fn script<C>(f: &Faulty<C>) {
    f.script(Rule::new("CreateTargetGroup", Effect::LostAnswer));
    f.script(Rule::new("CreateRoute", Effect::Throttle).times(2));
}

/// The gateway's VPC and the two service VPCs.
struct Nets {
    gw: SeededVpc,
    a: SeededVpc,
    b: SeededVpc,
}

fn text(n: &Nets) -> String {
    let acct = |name: &str, id: &str| {
        format!(
            "apiVersion: crosslink.dev/v1alpha1\nkind: Account\nmetadata: {{name: {name}}}\nspec:\n  accountId: \"{id}\"\n  region: eu-central-1\n  assumeRole: {{roleArn: \"arn:aws:iam::{id}:role/crosslink\", externalId: test-ext}}\n---\n"
        )
    };
    let mut t = acct("shared", GW) + &acct("svc-a", SVC_A) + &acct("svc-b", SVC_B);
    t += &format!(
        "apiVersion: crosslink.dev/v1alpha1\nkind: Gateway\nmetadata: {{name: edge}}\nspec:\n  account: shared\n  vpcId: {}\n  subnetIds: [{}]\n  routeTableIds: [{}]\n  loadBalancer: {{name: edge-nlb}}\n  api: {{name: open-banking, stage: v1}}\n",
        n.gw.vpc_id,
        n.gw.subnet_ids.join(", "),
        n.gw.route_table_id
    );
    for (name, account, vpc, ip, port, path) in [
        ("pay", "svc-a", &n.a, "10.20.1.10", 9001, "/payments"),
        ("hooks", "svc-a", &n.a, "10.20.1.11", 9002, "/webhooks"),
        ("ledger", "svc-b", &n.b, "10.30.1.10", 9003, "/accounts"),
    ] {
        t += &format!(
            "---\napiVersion: crosslink.dev/v1alpha1\nkind: Link\nmetadata: {{name: {name}}}\nspec:\n  gateway: edge\n  service: {{account: {account}, vpcId: {}, routeTableIds: [{}]}}\n  targets: [{{ip: {ip}, port: 8080}}]\n  listenerPort: {port}\n  routes: [{{path: {path}}}]\n",
            vpc.vpc_id, vpc.route_table_id
        );
    }
    t
}

fn desired(text: &str) -> DesiredState {
    crosslink_desired::load_str(Path::new("faults.yaml"), text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

async fn state<C: Cloud>(cloud: &C, d: &DesiredState, name: &str) -> AccountState {
    let scope = crosslink_controller::scopes(d, "crosslink").remove(name).unwrap_or(ObserveScope {
        gateway_side: true,
        instance: "crosslink".into(),
        ..Default::default()
    });
    match cloud.observe(d.account(name).unwrap(), &scope).await {
        AccountObservation::Ok(s) => *s,
        AccountObservation::Failed { code, message, .. } => panic!("{code}: {message}"),
    }
}

/// Runs the script over `f` and checks what an operator would: converged, each fault hit as
/// scripted, and exactly the desired inventory (no duplicate from the lost answer). Returns a
/// summary, the same over every cloud.
async fn run<C: Cloud>(f: Arc<Faulty<C>>, n: &Nets, what: &str) -> Vec<String> {
    script(&f);
    let d = desired(&text(n));
    let engine = Engine::new(f.clone(), EngineOptions::default());
    let opts = ApplyOptions {
        timeout: Duration::from_secs(120),
        min_wait: Duration::from_millis(100),
        max_wait: Duration::from_secs(1),
        max_rounds: 30,
        allow_weakening: false,
        allow_replacement: false,
    };
    let r = engine.apply(&d, &opts).await;
    assert!(r.converged, "{what}: did not converge: failed {:?}\nremaining {:#?}", r.failed, r.remaining);
    let (_, plan) = engine.plan(&d).await;
    assert!(plan.in_sync(), "{what}: re-plan not in sync: {plan:#?}");

    let a = f.attempts();
    let hit = |op: &str| -> Vec<(String, bool)> {
        a.iter().filter(|x| x.op == op && x.injected.is_some()).map(|x| (x.outcome.clone(), x.applied)).collect()
    };
    assert_eq!(hit("CreateTargetGroup"), vec![("DispatchFailure".to_string(), true)], "{what}");
    assert_eq!(hit("CreateRoute"), vec![("RequestLimitExceeded".to_string(), false); 2], "{what}");
    let passed = |op: &str| a.iter().filter(|x: &&Attempt| x.op == op && x.applied).count();
    assert_eq!(passed("CreateTargetGroup"), 3, "{what}: the lost create was found again, not repeated");
    assert_eq!(passed("CreateRoute"), 4, "{what}: two peerings, a route each way");

    let gw = state(f.inner(), &d, "shared").await;
    let owned = |t: &std::collections::BTreeMap<String, String>| t.contains_key(MANAGED_BY);
    let mut summary = Vec::new();
    for l in ["pay", "hooks", "ledger"] {
        let owner = format!("Link/{l}");
        let tgs = gw.target_groups.iter().filter(|t| t.tags.get(OWNER) == Some(&owner)).count();
        let listeners = gw.listeners.iter().filter(|x| x.tags.get(OWNER) == Some(&owner)).count();
        summary.push(format!("{owner}: {tgs} target group, {listeners} listener"));
    }
    let live: Vec<_> = gw.peerings.iter().filter(|p| !p.status.is_dead()).collect();
    assert!(live.iter().all(|p| p.status == PeeringStatus::Active), "{what}: {live:?}");
    summary.push(format!(
        "{} NLB, {} target groups, {} listeners, {} VPC link, {} REST API, {} live peerings",
        gw.load_balancers.iter().filter(|x| owned(&x.tags)).count(),
        gw.target_groups.iter().filter(|x| owned(&x.tags)).count(),
        gw.listeners.iter().filter(|x| owned(&x.tags)).count(),
        gw.vpc_links.iter().filter(|x| owned(&x.tags)).count(),
        gw.rest_apis.iter().filter(|x| owned(&x.tags)).count(),
        live.len()
    ));
    let routes_to = |s: &AccountState, rtb: &str| {
        s.route_tables[rtb].routes.iter().filter(|r| live.iter().any(|p| r.peering_id.as_ref() == Some(&p.id))).count()
    };
    let (sa, sb) = (state(f.inner(), &d, "svc-a").await, state(f.inner(), &d, "svc-b").await);
    summary.push(format!(
        "routes through the peerings: gateway {}, svc-a {}, svc-b {}",
        routes_to(&gw, &n.gw.route_table_id),
        routes_to(&sa, &n.a.route_table_id),
        routes_to(&sb, &n.b.route_table_id)
    ));
    summary
}

fn want() -> Vec<String> {
    vec![
        "Link/pay: 1 target group, 1 listener".into(),
        "Link/hooks: 1 target group, 1 listener".into(),
        "Link/ledger: 1 target group, 1 listener".into(),
        "1 NLB, 3 target groups, 3 listeners, 1 VPC link, 1 REST API, 2 live peerings".into(),
        "routes through the peerings: gateway 2, svc-a 1, svc-b 1".into(),
    ]
}

#[tokio::test]
async fn one_fault_script_over_the_real_adapter_and_the_in_memory_aws_converges_without_duplicates() {
    // Over the AWS adapter, against moto.
    let moto = Moto::start();
    let cloud = AwsCloud::new(Connector::from_config(super::base_config(&moto).await))
        .with_rate_limits(crosslink_aws::RateLimits::off());
    let seed = desired(&text(&Nets { gw: fixed(1, 2), a: fixed(20, 1), b: fixed(30, 1) }));
    let session = |name: &str| seed.account(name).unwrap().clone();
    let s_gw = cloud.session(&session("shared")).await.unwrap();
    let s_a = cloud.session(&session("svc-a")).await.unwrap();
    let s_b = cloud.session(&session("svc-b")).await.unwrap();
    let nets = Nets {
        gw: seed_network(&s_gw, "gateway", "10.1.0.0/16".parse().unwrap(), 2).await.unwrap(),
        a: seed_network(&s_a, "payments", "10.20.0.0/16".parse().unwrap(), 1).await.unwrap(),
        b: seed_network(&s_b, "ledger", "10.30.0.0/16".parse().unwrap(), 1).await.unwrap(),
    };
    let over_moto = run(Arc::new(Faulty::new(cloud)), &nets, "over moto").await;
    assert_eq!(over_moto, want(), "over moto");

    // The same script over the in-memory AWS, seeded with the same shape of network.
    let fake = FakeAws::new();
    let nets = Nets { gw: fixed(1, 2), a: fixed(20, 1), b: fixed(30, 1) };
    for (account, n) in [(GW, &nets.gw), (SVC_A, &nets.a), (SVC_B, &nets.b)] {
        let subnets: Vec<&str> = n.subnet_ids.iter().map(String::as_str).collect();
        fake.seed_vpc(account, "eu-central-1", &n.vpc_id, &n.cidr.to_string(), &subnets, &n.route_table_id);
    }
    let in_memory = run(Arc::new(Faulty::new(fake)), &nets, "in memory").await;
    assert_eq!(in_memory, want(), "in memory");
}

/// A VPC of made-up ids (17 hex digits, as AWS's) for the in-memory AWS, and for naming the
/// accounts before moto's VPCs exist.
fn fixed(octet: u8, subnets: usize) -> SeededVpc {
    SeededVpc {
        vpc_id: format!("vpc-{octet:017x}"),
        cidr: format!("10.{octet}.0.0/16").parse().unwrap(),
        subnet_ids: (0..subnets).map(|i| format!("subnet-{i:x}{octet:016x}")).collect(),
        route_table_id: format!("rtb-{octet:017x}"),
    }
}
