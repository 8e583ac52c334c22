//! The whole engine with the real AWS SDK against moto: three accounts reached by AssumeRole, a
//! gateway with three links (two sharing a service VPC); convergence, idempotence counted in
//! calls, drift repair, changes, removal, Retain, ownership, a failing account, overlaps.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_apigateway::types::{ConnectionType, IntegrationType};
use aws_sdk_elasticloadbalancingv2::types::{TargetDescription, TargetTypeEnum};
use crosslink_aws::{AwsCloud, CallRecord, Connector, SeededVpc, seed_network};
use crosslink_cloud::{Cloud, ObserveScope};
use crosslink_controller::{ApplyOptions, ApplyReport, Engine, EngineOptions};
use crosslink_desired::{Account, DesiredState};
use crosslink_plan::observed::{AccountObservation, AccountState, PeeringStatus};
use crosslink_plan::{Subject, Verb};
use crosslink_testkit::Moto;

const GW: &str = "111111111111";
const SVC_A: &str = "222222222222";
const SVC_B: &str = "333333333333";

struct Fixture {
    _moto: Moto,
    cloud: Arc<AwsCloud>,
    mutations: Arc<AtomicUsize>,
    ops: Arc<Mutex<Vec<String>>>,
    gw: SeededVpc,
    a: SeededVpc,
    b: SeededVpc,
}

fn is_read(op: &str) -> bool {
    op.starts_with("Describe") || op.starts_with("Get") || op.starts_with("List") || op == "AssumeRole"
}

fn accounts_yaml(bad_b: bool) -> String {
    let acct = |name: &str, id: &str| {
        format!(
            "apiVersion: crosslink.dev/v1alpha1\nkind: Account\nmetadata: {{name: {name}}}\nspec:\n  accountId: \"{id}\"\n  region: eu-central-1\n  assumeRole: {{roleArn: \"arn:aws:iam::{id}:role/crosslink\", externalId: test-ext}}\n---\n"
        )
    };
    let b = if bad_b {
        // No role: moto's static credentials act in 123456789012, not in the account named.
        format!(
            "apiVersion: crosslink.dev/v1alpha1\nkind: Account\nmetadata: {{name: svc-b}}\nspec: {{accountId: \"{SVC_B}\", region: eu-central-1}}\n---\n"
        )
    } else {
        acct("svc-b", SVC_B)
    };
    acct("shared", GW) + &acct("svc-a", SVC_A) + &b
}

impl Fixture {
    async fn new() -> Fixture {
        let moto = Moto::start();
        let mutations = Arc::new(AtomicUsize::new(0));
        let ops: Arc<Mutex<Vec<String>>> = Arc::default();
        let (m, o) = (mutations.clone(), ops.clone());
        let cloud = AwsCloud::new(Connector::from_config(super::base_config(&moto).await))
            .with_rate_limits(crosslink_aws::RateLimits::off())
            .with_call_observer(Arc::new(move |r: &CallRecord| {
                if !is_read(r.operation) {
                    m.fetch_add(1, Ordering::SeqCst);
                    o.lock().unwrap().push(r.operation.to_string());
                }
            }));
        let d = desired(&(accounts_yaml(false)));
        let session = |name: &str| d.account(name).unwrap().clone();
        let s_gw = cloud.session(&session("shared")).await.unwrap();
        let s_a = cloud.session(&session("svc-a")).await.unwrap();
        let s_b = cloud.session(&session("svc-b")).await.unwrap();
        let gw = seed_network(&s_gw, "gateway", "10.1.0.0/16".parse().unwrap(), 2).await.unwrap();
        let a = seed_network(&s_a, "payments", "10.20.0.0/16".parse().unwrap(), 1).await.unwrap();
        let b = seed_network(&s_b, "ledger", "10.30.0.0/16".parse().unwrap(), 1).await.unwrap();
        Fixture { _moto: moto, cloud: Arc::new(cloud), mutations, ops, gw, a, b }
    }

    fn gateway_yaml(&self) -> String {
        format!(
            "apiVersion: crosslink.dev/v1alpha1\nkind: Gateway\nmetadata: {{name: edge}}\nspec:\n  account: shared\n  vpcId: {}\n  subnetIds: [{}]\n  routeTableIds: [{}]\n  loadBalancer: {{name: edge-nlb}}\n  api: {{name: open-banking, stage: v1}}\n",
            self.gw.vpc_id,
            self.gw.subnet_ids.join(", "),
            self.gw.route_table_id
        )
    }

    fn link(&self, name: &str, svc: &str, ip: &str, port: u16, path: &str, extra: &str) -> String {
        let (account, vpc) = if svc == "a" { ("svc-a", &self.a) } else { ("svc-b", &self.b) };
        format!(
            "---\napiVersion: crosslink.dev/v1alpha1\nkind: Link\nmetadata: {{name: {name}}}\nspec:\n  gateway: edge\n  service: {{account: {account}, vpcId: {}, routeTableIds: [{}]}}\n  targets: [{{ip: {ip}, port: 8080}}]\n  listenerPort: {port}\n  routes: [{{path: {path}}}]\n{extra}",
            vpc.vpc_id, vpc.route_table_id
        )
    }

    fn three_links(&self) -> String {
        accounts_yaml(false)
            + &self.gateway_yaml()
            + &self.link("pay", "a", "10.20.1.10", 9001, "/payments", "")
            + &self.link("hooks", "a", "10.20.1.11", 9002, "/webhooks/payments", "")
            + &self.link("ledger", "b", "10.30.1.10", 9003, "/accounts", "")
    }

    fn engine(&self) -> Engine<AwsCloud> {
        Engine::new(self.cloud.clone(), EngineOptions::default())
    }

    async fn apply(&self, d: &DesiredState) -> ApplyReport {
        self.engine().apply(d, &apply_options(false)).await
    }

    /// `apply --allow-weakening`: changes that make a route less protected are made too.
    async fn apply_allowing_weakening(&self, d: &DesiredState) -> ApplyReport {
        self.engine().apply(d, &apply_options(true)).await
    }

    async fn converge(&self, d: &DesiredState) -> ApplyReport {
        let r = self.apply(d).await;
        assert!(r.converged, "did not converge: failed {:?}\nremaining {:#?}", r.failed, r.remaining);
        let (_, plan) = self.engine().plan(d).await;
        assert!(plan.in_sync(), "re-plan not in sync: {:#?}", plan);
        r
    }

    async fn state(&self, d: &DesiredState, name: &str) -> AccountState {
        let account: &Account = d.account(name).unwrap();
        let scope = crosslink_controller::scopes(d, "crosslink").remove(name).unwrap_or(ObserveScope {
            gateway_side: true,
            instance: "crosslink".into(),
            ..Default::default()
        });
        match self.cloud.observe(account, &scope).await {
            AccountObservation::Ok(s) => *s,
            AccountObservation::Failed { code, message, .. } => panic!("{code}: {message}"),
        }
    }

    async fn clients(&self, d: &DesiredState, name: &str) -> aws_config::SdkConfig {
        self.cloud.session(d.account(name).unwrap()).await.unwrap().config
    }
}

/// An API Gateway `replace` patch, as a person changing something by hand sends it.
fn patch(path: &str, value: &str) -> aws_sdk_apigateway::types::PatchOperation {
    aws_sdk_apigateway::types::PatchOperation::builder()
        .op(aws_sdk_apigateway::types::Op::Replace)
        .path(path)
        .value(value)
        .build()
}

fn apply_options(allow_weakening: bool) -> ApplyOptions {
    ApplyOptions {
        timeout: Duration::from_secs(60),
        min_wait: Duration::from_millis(100),
        max_wait: Duration::from_secs(1),
        max_rounds: 30,
        allow_weakening,
        allow_replacement: false,
    }
}

fn desired(text: &str) -> DesiredState {
    crosslink_desired::load_str(Path::new("moto.yaml"), text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn live_peerings(s: &AccountState) -> usize {
    s.peerings.iter().filter(|p| !p.status.is_dead()).count()
}

/// Issue 13 item 4: moto has no asynchrony (VPC links AVAILABLE at once, a peering accepted is
/// active), so with the ids each create answers handed to the actions that need them within the
/// pass, a fresh fleet converges in one observation + execution and one confirming observation;
/// a third observation plans nothing.
#[tokio::test]
async fn a_fresh_fleet_converges_in_two_rounds() {
    let f = Fixture::new().await;
    let dns = "  peering: {allowDnsResolution: true}\n";
    let text = accounts_yaml(false)
        + &f.gateway_yaml()
        + &f.link("pay", "a", "10.20.1.10", 9001, "/payments", dns)
        + &f.link("hooks", "a", "10.20.1.11", 9002, "/webhooks/payments", dns)
        + &f.link("ledger", "b", "10.30.1.10", 9003, "/accounts", "");
    let d = desired(&text);
    let r = f.converge(&d).await;
    let made: Vec<String> =
        r.executed.iter().map(|e| format!("{} {}: {:?}", e.action.op.name(), e.action.resource, e.result)).collect();
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    assert_eq!(r.rounds, 2, "{made:#?}");
    assert!(
        r.executed.iter().all(|e| matches!(e.result, crosslink_controller::ActionResult::Done { .. })),
        "{made:#?}"
    );
    let (_, third) = f.engine().plan(&d).await;
    assert!(third.actions.is_empty() && third.in_sync(), "{third:#?}");
    let gw = f.state(&d, "shared").await;
    assert_eq!((gw.load_balancers.len(), gw.target_groups.len(), gw.listeners.len()), (1, 3, 3));
    assert_eq!((gw.vpc_links.len(), gw.rest_apis.len(), live_peerings(&gw)), (1, 1, 2));
}

#[tokio::test]
async fn converges_then_applies_nothing_then_repairs_every_drift() {
    let f = Fixture::new().await;
    let d = desired(&f.three_links());
    let first = f.converge(&d).await;
    assert!(first.mutations() >= 25, "{}", first.mutations());
    let gw = f.state(&d, "shared").await;
    assert_eq!((gw.load_balancers.len(), gw.target_groups.len(), gw.listeners.len()), (1, 3, 3));
    assert_eq!((gw.vpc_links.len(), gw.rest_apis.len()), (1, 1));
    assert_eq!(live_peerings(&gw), 2, "two links share svc-a's VPC: one peering");
    assert!(gw.peerings.iter().all(|p| p.status == PeeringStatus::Active));
    let back = f.state(&d, "svc-a").await;
    let rt = &back.route_tables[&f.a.route_table_id];
    assert!(rt.routes.iter().any(|r| r.destination.to_string() == "10.1.0.0/16" && r.peering_id.is_some()), "{rt:?}");
    let tg = gw.target_groups.iter().find(|t| t.name.starts_with("cl-pay-")).unwrap();
    assert_eq!(tg.targets.len(), 1);
    assert_eq!(f.ops.lock().unwrap().iter().filter(|o| *o == "CreateDeployment").count(), 1);

    // A second apply of the unchanged desired state makes no mutating call at all.
    let before = f.mutations.load(Ordering::SeqCst);
    let second = f.converge(&d).await;
    assert_eq!(second.mutations(), 0);
    assert_eq!(f.mutations.load(Ordering::SeqCst), before, "mutating calls: {:?}", &f.ops.lock().unwrap()[before..]);

    // Drift out of band, in three accounts.
    let gcfg = f.clients(&d, "shared").await;
    let ec2 = aws_sdk_ec2::Client::new(&gcfg);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&gcfg);
    let apigw = aws_sdk_apigateway::Client::new(&gcfg);
    ec2.delete_route()
        .route_table_id(&f.gw.route_table_id)
        .destination_cidr_block("10.30.0.0/16")
        .send()
        .await
        .unwrap();
    let acfg = f.clients(&d, "svc-a").await;
    aws_sdk_ec2::Client::new(&acfg)
        .delete_route()
        .route_table_id(&f.a.route_table_id)
        .destination_cidr_block("10.1.0.0/16")
        .send()
        .await
        .unwrap();
    elb.deregister_targets()
        .target_group_arn(&tg.arn)
        .targets(TargetDescription::builder().id("10.20.1.10").port(8080).availability_zone("all").build())
        .send()
        .await
        .unwrap();
    let pay_listener = gw.listeners.iter().find(|x| x.port == 9001).unwrap();
    elb.modify_listener().listener_arn(&pay_listener.arn).port(9100).send().await.unwrap();
    let api = &gw.rest_apis[0];
    let payments = api.resources.iter().find(|r| r.path == "/payments").unwrap();
    apigw
        .put_integration()
        .rest_api_id(&api.id)
        .resource_id(&payments.id)
        .http_method("ANY")
        .r#type(IntegrationType::HttpProxy)
        .integration_http_method("ANY")
        .uri("http://evil.example.com/")
        .connection_type(ConnectionType::Internet)
        .send()
        .await
        .unwrap();
    // The hooks listener forwards to another link's target group.
    let hooks_listener = gw.listeners.iter().find(|x| x.port == 9002).unwrap();
    let ledger_tg = gw.target_groups.iter().find(|t| t.name.starts_with("cl-ledger-")).unwrap();
    elb.modify_listener()
        .listener_arn(&hooks_listener.arn)
        .default_actions(
            aws_sdk_elasticloadbalancingv2::types::Action::builder()
                .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
                .target_group_arn(&ledger_tg.arn)
                .build(),
        )
        .send()
        .await
        .unwrap();
    // The peering to svc-b is deleted.
    let to_b = gw.peerings.iter().find(|p| p.accepter_vpc == f.b.vpc_id && !p.status.is_dead()).unwrap();
    ec2.delete_vpc_peering_connection().vpc_peering_connection_id(&to_b.id).send().await.unwrap();
    let accounts_proxy = api.resources.iter().find(|r| r.path == "/accounts/{proxy+}").unwrap();
    apigw.delete_resource().rest_api_id(&api.id).resource_id(&accounts_proxy.id).send().await.unwrap();

    let (_, plan) = f.engine().plan(&d).await;
    let text: Vec<String> =
        plan.actions.iter().map(|a| format!("{} {} ({})", a.verb.as_str(), a.resource, a.reason)).collect();
    let text = text.join("\n");
    for expected in [
        "create route 10.30.0.0/16",
        "create route 10.1.0.0/16",
        "register targets 10.20.1.10:8080",
        "drift of listenerPort: live 9100, desired 9001",
        "drift of listener target group",
        "create peering",
        "drift of integration uri: live http://evil.example.com/",
        "create API resource /accounts/{proxy+}",
        "deploy stage v1",
    ] {
        assert!(text.contains(expected), "expected `{expected}` in:\n{text}");
    }
    f.converge(&d).await;
}

#[tokio::test]
async fn changes_and_removals_keep_shared_peerings_until_the_last_link() {
    let f = Fixture::new().await;
    f.converge(&desired(&f.three_links())).await;

    // Target and listener port change.
    let changed = f
        .three_links()
        .replace("10.20.1.10, port: 8080", "10.20.1.99, port: 8080")
        .replace("listenerPort: 9003", "listenerPort: 9303");
    let d = desired(&changed);
    let r = f.converge(&d).await;
    let ops: Vec<&str> = r.executed.iter().map(|e| e.action.op.name()).collect();
    // A new listener on the new port, the old one removed (make before break).
    assert!(
        ops.contains(&"RegisterTargets")
            && ops.contains(&"DeregisterTargets")
            && ops.contains(&"CreateListener")
            && ops.contains(&"DeleteListener"),
        "{ops:?}"
    );
    let gw = f.state(&d, "shared").await;
    assert!(gw.listeners.iter().any(|x| x.port == 9303));
    assert!(gw.listeners.iter().all(|x| x.port != 9003), "the old listener is gone");

    // One of the two links sharing svc-a's VPC goes: its listener, target group and API
    // resources go, the peering stays.
    let two = accounts_yaml(false)
        + &f.gateway_yaml()
        + &f.link("pay", "a", "10.20.1.99", 9001, "/payments", "")
        + &f.link("ledger", "b", "10.30.1.10", 9303, "/accounts", "");
    let d = desired(&two);
    let r = f.converge(&d).await;
    let deleted: Vec<&str> =
        r.executed.iter().filter(|e| e.action.verb == Verb::Delete).map(|e| e.action.resource.as_str()).collect();
    assert!(deleted.iter().any(|x| x.starts_with("listener :9002")), "{deleted:?}");
    assert!(deleted.iter().any(|x| x.starts_with("target group cl-hooks")), "{deleted:?}");
    assert!(deleted.contains(&"API resource /webhooks"), "{deleted:?}");
    assert!(!deleted.iter().any(|x| x.starts_with("peering")), "{deleted:?}");
    let gw = f.state(&d, "shared").await;
    assert_eq!(live_peerings(&gw), 2);
    assert_eq!(gw.listeners.len(), 2);

    // The last link into svc-a goes: the peering and the routes both ways go too.
    let one = accounts_yaml(false) + &f.gateway_yaml() + &f.link("ledger", "b", "10.30.1.10", 9303, "/accounts", "");
    let d = desired(&one);
    f.converge(&d).await;
    let gw = f.state(&d, "shared").await;
    assert_eq!(live_peerings(&gw), 1);
    assert!(gw.route_tables[&f.gw.route_table_id].routes.iter().all(|r| r.destination.to_string() != "10.20.0.0/16"));
    let a = f.state(&d, "svc-a").await;
    assert!(a.route_tables[&f.a.route_table_id].routes.iter().all(|r| r.peering_id.is_none()));
}

#[tokio::test]
async fn retain_and_unowned_look_alikes() {
    let f = Fixture::new().await;
    let retained = accounts_yaml(false)
        + &f.gateway_yaml()
        + &f.link("pay", "a", "10.20.1.10", 9001, "/payments", "")
        + &f.link("ledger", "b", "10.30.1.10", 9003, "/accounts", "  deletionPolicy: Retain\n");
    let d = desired(&retained);
    f.converge(&d).await;

    // Someone's own target group and route next to crosslink's.
    let gcfg = f.clients(&d, "shared").await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&gcfg);
    elb.create_target_group()
        .name("manual-tg")
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Tcp)
        .port(80)
        .vpc_id(&f.gw.vpc_id)
        .target_type(TargetTypeEnum::Ip)
        .send()
        .await
        .unwrap();
    let ec2 = aws_sdk_ec2::Client::new(&gcfg);
    let igw = ec2.create_internet_gateway().send().await.unwrap();
    let igw = igw.internet_gateway().unwrap().internet_gateway_id().unwrap().to_string();
    ec2.attach_internet_gateway().internet_gateway_id(&igw).vpc_id(&f.gw.vpc_id).send().await.unwrap();
    ec2.create_route()
        .route_table_id(&f.gw.route_table_id)
        .destination_cidr_block("192.168.0.0/16")
        .gateway_id(&igw)
        .send()
        .await
        .unwrap();

    // ledger leaves desired state: Retain keeps its listener, target group, API resources and
    // peering, and says so.
    let only_pay = accounts_yaml(false) + &f.gateway_yaml() + &f.link("pay", "a", "10.20.1.10", 9001, "/payments", "");
    let d = desired(&only_pay);
    let r = f.converge(&d).await;
    assert!(r.executed.iter().all(|e| e.action.verb != Verb::Delete), "{:?}", r.executed);
    let report = &r.remaining.reports[&Subject::Link("ledger".into())];
    assert!(report.retained.iter().any(|x| x.starts_with("listener :9003")), "{report:?}");
    let gw = f.state(&d, "shared").await;
    assert_eq!(gw.listeners.len(), 2);
    assert_eq!(live_peerings(&gw), 2);

    // No gateway at all: crosslink removes what it owns without Retain, and nothing else.
    let d = desired(&accounts_yaml(false));
    f.converge(&d).await;
    let gw = f.state(&d, "shared").await;
    assert!(gw.target_groups.iter().any(|t| t.name == "manual-tg"), "unowned target group kept");
    assert!(gw.route_tables[&f.gw.route_table_id].routes.iter().any(|r| r.destination.to_string() == "192.168.0.0/16"));
    assert!(gw.rest_apis.is_empty() && gw.vpc_links.is_empty() && gw.load_balancers.is_empty());
    assert!(gw.target_groups.iter().any(|t| t.name.starts_with("cl-ledger-")), "retained target group kept");
}

#[tokio::test]
async fn a_failing_account_does_not_stop_the_others_and_overlaps_are_refused() {
    let f = Fixture::new().await;
    // An overlapping service VPC in svc-a (no cidr in YAML: the live check must catch it).
    let d0 = desired(&f.three_links());
    let s_a = f.cloud.session(d0.account("svc-a").unwrap()).await.unwrap();
    let clash = seed_network(&s_a, "clash", "10.1.128.0/17".parse().unwrap(), 1).await.unwrap();
    let text = accounts_yaml(true)
        + &f.gateway_yaml()
        + &f.link("pay", "a", "10.20.1.10", 9001, "/payments", "")
        + &f.link("ledger", "b", "10.30.1.10", 9003, "/accounts", "")
        + &format!(
            "---\napiVersion: crosslink.dev/v1alpha1\nkind: Link\nmetadata: {{name: clash}}\nspec:\n  gateway: edge\n  service: {{account: svc-a, vpcId: {}, routeTableIds: [{}]}}\n  targets: [{{ip: 10.1.200.1, port: 8080}}]\n  listenerPort: 9004\n  routes: [{{path: /clash}}]\n",
            clash.vpc_id, clash.route_table_id
        );
    let d = desired(&text);
    let r = f.apply(&d).await;
    assert!(!r.converged);
    let ledger = &r.remaining.reports[&Subject::Link("ledger".into())];
    assert!(
        ledger.problems.iter().any(|p| p.code == "AccountUnavailable" && p.message.contains("AccountMismatch")),
        "{ledger:?}"
    );
    let clash_report = &r.remaining.reports[&Subject::Link("clash".into())];
    assert!(clash_report.problems.iter().any(|p| p.code == "CidrOverlap"), "{clash_report:?}");
    let pay = &r.remaining.reports[&Subject::Link("pay".into())];
    assert!(pay.problems.is_empty() && pay.waiting.is_empty(), "{pay:?}");
    assert!(r.remaining.actions.iter().all(|a| a.subject != Subject::Link("pay".into())), "pay converged");
    let gw = f.state(&d, "shared").await;
    assert_eq!(live_peerings(&gw), 1, "only the healthy pair is peered");
}

/// Issue 14 against moto, checked through the SDK: a route's IAM authorization and API key are
/// put and deployed; drift (a method put again open, by hand) is repaired; dropping them from the
/// YAML is held by apply's protection guard until allowed, then applied.
#[tokio::test]
async fn route_protection_converges_repairs_drift_and_weakening_waits_for_allow() {
    let f = Fixture::new().await;
    let protected = |auth: &str| {
        accounts_yaml(false)
            + &f.gateway_yaml()
            + &f.link("pay", "a", "10.20.1.10", 9001, "/payments", "")
                .replace("routes: [{path: /payments}]", &format!("routes: [{{path: /payments{auth}}}]"))
    };
    let d = desired(&protected(", authorization: AWS_IAM, apiKeyRequired: true"));
    f.converge(&d).await;
    let cfg = f.clients(&d, "shared").await;
    let apigw = aws_sdk_apigateway::Client::new(&cfg);
    let method = async || {
        let apis = apigw.get_rest_apis().send().await.unwrap();
        let api = apis.items().iter().find(|a| a.name() == Some("open-banking")).unwrap().id().unwrap().to_string();
        let res = apigw.get_resources().rest_api_id(&api).send().await.unwrap();
        let r = res.items().iter().find(|r| r.path() == Some("/payments")).unwrap().id().unwrap().to_string();
        let m = apigw.get_method().rest_api_id(&api).resource_id(&r).http_method("ANY").send().await.unwrap();
        (api, r, m.authorization_type().unwrap_or_default().to_string(), m.api_key_required().unwrap_or(false))
    };
    let (api, resource, auth, key) = method().await;
    assert_eq!((auth.as_str(), key), ("AWS_IAM", true));

    // Drift: someone puts the method again, open.
    apigw.delete_method().rest_api_id(&api).resource_id(&resource).http_method("ANY").send().await.unwrap();
    apigw
        .put_method()
        .rest_api_id(&api)
        .resource_id(&resource)
        .http_method("ANY")
        .authorization_type("NONE")
        .send()
        .await
        .unwrap();
    f.converge(&d).await;
    let (_, _, auth, key) = method().await;
    assert_eq!((auth.as_str(), key), ("AWS_IAM", true), "repaired");

    // The YAML drops the protection: held by apply unless allowed.
    let open = desired(&protected(""));
    let r = f.apply(&open).await;
    assert!(!r.converged && !r.remaining.weakening.is_empty(), "held: {:#?}", r.remaining.weakening);
    let (_, _, auth, key) = method().await;
    assert_eq!((auth.as_str(), key), ("AWS_IAM", true), "nothing opened");
    let r = f.apply_allowing_weakening(&open).await;
    assert!(r.converged, "{:#?}", r.remaining);
    let (_, _, auth, key) = method().await;
    assert_eq!((auth.as_str(), key), ("NONE", false), "applied once allowed");
}

/// Issue 14 against moto, checked through the SDK: a Lambda authorizer is created and the
/// route's methods use it; its drift (TTL, function) is repaired; moving the route to a Cognito
/// authorizer with scopes creates that one, moves the methods and deletes the Lambda one; moving
/// it to IAM deletes the last one. An authorizer made by hand (no crosslink mark) is never touched.
#[tokio::test]
async fn authorizers_converge_repair_drift_move_and_are_removed() {
    let f = Fixture::new().await;
    let lambda = "arn:aws:lambda:eu-central-1:111111111111:function:partner-authz";
    let pool = "arn:aws:cognito-idp:eu-central-1:111111111111:userpool/eu-central-1_Partners1";
    let with = |authorizers: &str, auth: &str| {
        accounts_yaml(false)
            + &f.gateway_yaml().replace(
                "api: {name: open-banking, stage: v1}",
                &format!("api: {{name: open-banking, stage: v1, authorizers: [{authorizers}]}}"),
            )
            + &f.link("pay", "a", "10.20.1.10", 9001, "/payments", "").replace(
                "routes: [{path: /payments}]",
                &format!("routes: [{{path: /payments, authorization: {auth}}}]"),
            )
    };
    let partners = format!("{{name: partners, type: TOKEN, lambdaArn: '{lambda}'}}");
    let d = desired(&with(&partners, "{authorizer: partners}"));
    f.converge(&d).await;
    let cfg = f.clients(&d, "shared").await;
    let apigw = aws_sdk_apigateway::Client::new(&cfg);
    let apis = apigw.get_rest_apis().send().await.unwrap();
    let api = apis.items().iter().find(|a| a.name() == Some("open-banking")).unwrap().id().unwrap().to_string();
    let res = apigw.get_resources().rest_api_id(&api).send().await.unwrap();
    let resource = res.items().iter().find(|r| r.path() == Some("/payments")).unwrap().id().unwrap().to_string();
    let authorizers = async || apigw.get_authorizers().rest_api_id(&api).send().await.unwrap().items().to_vec();
    let method =
        async || apigw.get_method().rest_api_id(&api).resource_id(&resource).http_method("ANY").send().await.unwrap();

    // A hand-made authorizer in the same API: crosslink's mark is not on it.
    let theirs = apigw
        .create_authorizer()
        .rest_api_id(&api)
        .name("legacy")
        .r#type(aws_sdk_apigateway::types::AuthorizerType::Token)
        .authorizer_uri("arn:aws:apigateway:eu-central-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-central-1:111111111111:function:legacy/invocations")
        .identity_source("method.request.header.Authorization")
        .send()
        .await
        .unwrap();

    let all = authorizers().await;
    let p = all.iter().find(|a| a.name() == Some("partners")).expect("partners created");
    assert_eq!(p.r#type().map(|t| t.as_str()), Some("TOKEN"));
    assert_eq!(p.auth_type(), Some("crosslink:crosslink"));
    assert_eq!(
        p.authorizer_uri(),
        Some(format!("arn:aws:apigateway:eu-central-1:lambda:path/2015-03-31/functions/{lambda}/invocations").as_str())
    );
    assert_eq!(p.identity_source(), Some("method.request.header.Authorization"));
    assert_eq!(p.authorizer_result_ttl_in_seconds(), Some(300));
    let m = method().await;
    assert_eq!(m.authorization_type(), Some("CUSTOM"));
    assert_eq!(m.authorizer_id(), p.id());
    let partners_id = p.id().unwrap().to_string();

    // Drift: the cache switched off and the function swapped, by hand.
    apigw
        .update_authorizer()
        .rest_api_id(&api)
        .authorizer_id(&partners_id)
        .patch_operations(patch("/authorizerResultTtlInSeconds", "0"))
        .patch_operations(patch("/authorizerUri", "arn:aws:apigateway:eu-central-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-central-1:111111111111:function:allow-all/invocations"))
        .send()
        .await
        .unwrap();
    f.converge(&d).await;
    let all = authorizers().await;
    let p = all.iter().find(|a| a.name() == Some("partners")).unwrap();
    assert_eq!(p.id(), Some(partners_id.as_str()), "repaired in place");
    assert_eq!(p.authorizer_result_ttl_in_seconds(), Some(300));
    assert!(p.authorizer_uri().unwrap().contains(":function:partner-authz/"), "{:?}", p.authorizer_uri());

    // The route moves to a Cognito authorizer with a scope; the Lambda one leaves the YAML.
    let partner_pool = format!("{{name: partner-pool, type: COGNITO_USER_POOLS, providerArns: ['{pool}']}}");
    let d = desired(&with(&partner_pool, "{authorizer: partner-pool, scopes: [payments/write]}"));
    f.converge(&d).await;
    let all = authorizers().await;
    let names: Vec<&str> = all.iter().filter_map(|a| a.name()).collect();
    assert!(!names.contains(&"partners"), "the Lambda authorizer was deleted: {names:?}");
    let c = all.iter().find(|a| a.name() == Some("partner-pool")).expect("created");
    assert_eq!(c.provider_arns(), [pool.to_string()]);
    let m = method().await;
    assert_eq!(m.authorization_type(), Some("COGNITO_USER_POOLS"));
    assert_eq!(m.authorizer_id(), c.id());
    assert_eq!(m.authorization_scopes(), ["payments/write".to_string()]);

    // To IAM, with no authorizers left in the YAML: the last one is deleted, the stranger stays.
    let d = desired(&with("", "AWS_IAM"));
    f.converge(&d).await;
    let all = authorizers().await;
    let ids: Vec<&str> = all.iter().filter_map(|a| a.id()).collect();
    assert_eq!(ids, [theirs.id().unwrap()], "only the hand-made authorizer is left");
    let m = method().await;
    assert_eq!((m.authorization_type(), m.authorizer_id()), (Some("AWS_IAM"), None));
}

/// Issue 14's stage settings against moto, checked through the SDK (GetStage, GetAccount): the
/// logging role is required (set here as an administrator would, with UpdateAccount); every
/// setting converges with no new deployment; drift made with UpdateStage is repaired; groups that
/// leave the YAML are reset. moto keeps a method setting override after `remove` (AWS drops it),
/// so route throttles are only set and repaired here; their removal is tested in memory.
#[tokio::test]
async fn stage_settings_converge_repair_drift_and_reset_without_redeploying() {
    let f = Fixture::new().await;
    let settings = "{throttling: {rateLimit: 500, burstLimit: 1000}, accessLogs: {destinationArn: 'arn:aws:logs:eu-central-1:111111111111:log-group:access'}, executionLogs: {level: ERROR}, detailedMetrics: true, tracing: true, variables: {backend: v2}}";
    let with = |settings: &str| {
        accounts_yaml(false)
            + &f.gateway_yaml().replace(
                "api: {name: open-banking, stage: v1}",
                &format!("api: {{name: open-banking, stage: v1, stageSettings: {settings}}}"),
            )
            + &f.link("pay", "a", "10.20.1.10", 9001, "/payments", "").replace(
                "routes: [{path: /payments}]",
                "routes: [{path: /payments, throttling: {rateLimit: 50, burstLimit: 100}}]",
            )
    };
    let d = desired(&with(settings));
    let cfg = f.clients(&d, "shared").await;
    let apigw = aws_sdk_apigateway::Client::new(&cfg);

    // moto's account has no CloudWatch Logs role: the gateway is held before anything is made.
    let r = f.apply(&d).await;
    let problems = &r.remaining.reports[&crosslink_plan::Subject::Gateway("edge".into())].problems;
    assert!(problems.iter().any(|p| p.code == "CloudWatchRoleMissing"), "{problems:?}");
    assert!(apigw.get_rest_apis().send().await.unwrap().items().is_empty(), "nothing was created");
    apigw
        .update_account()
        .patch_operations(patch("/cloudwatchRoleArn", "arn:aws:iam::111111111111:role/apigateway-cloudwatch"))
        .send()
        .await
        .unwrap();

    f.converge(&d).await;
    let apis = apigw.get_rest_apis().send().await.unwrap();
    let api = apis.items().iter().find(|a| a.name() == Some("open-banking")).unwrap().id().unwrap().to_string();
    let stage = async || apigw.get_stage().rest_api_id(&api).stage_name("v1").send().await.unwrap();
    let s = stage().await;
    let deployment = s.deployment_id().unwrap().to_string();
    let all = &s.method_settings().unwrap()["*/*"];
    assert_eq!((all.throttling_rate_limit(), all.throttling_burst_limit()), (500.0, 1000));
    assert_eq!((all.logging_level(), all.metrics_enabled()), (Some("ERROR"), true));
    for key in ["~1payments/ANY", "~1payments~1{proxy+}/ANY"] {
        let m = &s.method_settings().unwrap()[key];
        assert_eq!((m.throttling_rate_limit(), m.throttling_burst_limit()), (50.0, 100), "{key}");
    }
    let log = s.access_log_settings().unwrap();
    assert_eq!(log.destination_arn(), Some("arn:aws:logs:eu-central-1:111111111111:log-group:access"));
    assert!(log.format().unwrap().contains("$context.requestId"));
    assert!(s.tracing_enabled());
    assert_eq!(s.variables().unwrap()["backend"], "v2");

    // Drift by hand: tracing off, logs at INFO, a variable changed.
    apigw
        .update_stage()
        .rest_api_id(&api)
        .stage_name("v1")
        .patch_operations(patch("/tracingEnabled", "false"))
        .patch_operations(patch("/*/*/logging/loglevel", "INFO"))
        .patch_operations(patch("/variables/backend", "v1"))
        .send()
        .await
        .unwrap();
    f.converge(&d).await;
    let s = stage().await;
    assert!(s.tracing_enabled());
    assert_eq!(s.method_settings().unwrap()["*/*"].logging_level(), Some("ERROR"));
    assert_eq!(s.variables().unwrap()["backend"], "v2");

    // Access logs, execution logs, metrics, tracing and variables leave the YAML: reset.
    f.converge(&desired(&with("{throttling: {rateLimit: 500, burstLimit: 1000}}"))).await;
    let s = stage().await;
    assert!(s.access_log_settings().is_none_or(|a| a.destination_arn().is_none()), "{:?}", s.access_log_settings());
    assert_eq!(s.method_settings().unwrap()["*/*"].logging_level(), Some("OFF"));
    assert!(!s.method_settings().unwrap()["*/*"].metrics_enabled() && !s.tracing_enabled());
    assert!(s.variables().is_none_or(|v| v.is_empty()), "{:?}", s.variables());
    assert_eq!(s.method_settings().unwrap()["*/*"].throttling_rate_limit(), 500.0, "throttling kept");
    assert_eq!(s.deployment_id(), Some(deployment.as_str()), "settings never redeploy");
}

/// Issue 14's resource policy against moto, checked through the SDK (GetRestApi): put and
/// deployed; rewritten by hand to let everyone in, put back; removing it from the YAML is held by
/// apply's protection guard, then done once allowed.
#[tokio::test]
async fn resource_policy_converges_is_repaired_and_widening_waits_for_allow() {
    let f = Fixture::new().await;
    let policy = "{Version: '2012-10-17', Statement: [{Effect: Allow, Principal: '*', Action: 'execute-api:Invoke', Resource: 'execute-api:/*', Condition: {IpAddress: {'aws:SourceIp': ['10.0.0.0/8']}}}]}";
    let with = |policy: Option<&str>| {
        let api = match policy {
            Some(p) => format!("api: {{name: open-banking, stage: v1, resourcePolicy: {p}}}"),
            None => "api: {name: open-banking, stage: v1}".to_string(),
        };
        accounts_yaml(false)
            + &f.gateway_yaml().replace("api: {name: open-banking, stage: v1}", &api)
            + &f.link("pay", "a", "10.20.1.10", 9001, "/payments", "")
    };
    let d = desired(&with(Some(policy)));
    f.converge(&d).await;
    let cfg = f.clients(&d, "shared").await;
    let apigw = aws_sdk_apigateway::Client::new(&cfg);
    let apis = apigw.get_rest_apis().send().await.unwrap();
    let api = apis.items().iter().find(|a| a.name() == Some("open-banking")).unwrap().id().unwrap().to_string();
    // The policy as text, with AWS's escaping of `/` undone (none when empty).
    let live = async || {
        let a = apigw.get_rest_api().rest_api_id(&api).send().await.unwrap();
        a.policy().filter(|p| !p.is_empty()).map(|p| p.replace("\\/", "/"))
    };
    let p = live().await.expect("a policy");
    assert!(p.contains(r#""aws:SourceIp":["10.0.0.0/8"]"#) && p.contains(r#""Effect":"Allow""#), "{p}");
    let deployments = async || apigw.get_deployments().rest_api_id(&api).send().await.unwrap().items().len();
    let deployed = deployments().await;
    assert!(f.engine().plan(&d).await.1.actions.is_empty(), "in sync after converging");

    // Rewritten by hand to let everyone in.
    let open_text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"*"}]}"#;
    apigw.update_rest_api().rest_api_id(&api).patch_operations(patch("/policy", open_text)).send().await.unwrap();
    f.converge(&d).await;
    assert!(live().await.unwrap().contains("aws:SourceIp"), "put back");
    assert_eq!(deployments().await, deployed + 1, "and deployed");

    // The YAML drops it: held, nothing opened; then applied once allowed.
    let open = desired(&with(None));
    let r = f.apply(&open).await;
    assert!(
        !r.converged && r.remaining.weakening.values().any(|w| w.contains("widened")),
        "{:#?}",
        r.remaining.weakening
    );
    assert!(live().await.unwrap().contains("aws:SourceIp"), "nothing opened");
    let r = f.apply_allowing_weakening(&open).await;
    assert!(r.converged, "{:#?}", r.remaining);
    assert_eq!(live().await, None, "removed");
}

/// Issue 14's WAF against moto, checked through the SDK (GetStage's `webAclArn`, and WAF's
/// GetWebACLForResource): a regional web ACL made with the SDK is associated with the stage;
/// an association removed by hand is put back; removing it from the YAML is held by apply's
/// protection guard, then done once allowed.
#[tokio::test]
async fn a_web_acl_is_associated_repaired_and_its_removal_waits_for_allow() {
    let f = Fixture::new().await;
    let d0 =
        desired(&(accounts_yaml(false) + &f.gateway_yaml() + &f.link("pay", "a", "10.20.1.10", 9001, "/payments", "")));
    let cfg = f.clients(&d0, "shared").await;
    let waf = aws_sdk_wafv2::Client::new(&cfg);
    use aws_sdk_wafv2::types::{DefaultAction, Scope, VisibilityConfig};
    let acl = waf
        .create_web_acl()
        .name("open-banking")
        .scope(Scope::Regional)
        .default_action(DefaultAction::builder().allow(aws_sdk_wafv2::types::AllowAction::builder().build()).build())
        .visibility_config(
            VisibilityConfig::builder()
                .sampled_requests_enabled(false)
                .cloud_watch_metrics_enabled(false)
                .metric_name("open-banking")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let acl_arn = acl.summary().unwrap().arn().unwrap().to_string();
    let with = |acl: Option<&str>| {
        let api = match acl {
            Some(a) => format!("api: {{name: open-banking, stage: v1, webAclArn: '{a}'}}"),
            None => "api: {name: open-banking, stage: v1}".to_string(),
        };
        accounts_yaml(false)
            + &f.gateway_yaml().replace("api: {name: open-banking, stage: v1}", &api)
            + &f.link("pay", "a", "10.20.1.10", 9001, "/payments", "")
    };
    let d = desired(&with(Some(&acl_arn)));
    f.converge(&d).await;
    let apigw = aws_sdk_apigateway::Client::new(&cfg);
    let apis = apigw.get_rest_apis().send().await.unwrap();
    let api = apis.items().iter().find(|a| a.name() == Some("open-banking")).unwrap().id().unwrap().to_string();
    let live = async || {
        apigw.get_stage().rest_api_id(&api).stage_name("v1").send().await.unwrap().web_acl_arn().map(str::to_string)
    };
    assert_eq!(live().await.as_deref(), Some(acl_arn.as_str()));
    let stage_arn = format!("arn:aws:apigateway:eu-central-1::/restapis/{api}/stages/v1");
    let for_resource = waf.get_web_acl_for_resource().resource_arn(&stage_arn).send().await.unwrap();
    assert_eq!(for_resource.web_acl().map(|w| w.arn()), Some(acl_arn.as_str()));

    // Disassociated by hand: put back.
    waf.disassociate_web_acl().resource_arn(&stage_arn).send().await.unwrap();
    assert_eq!(live().await.filter(|a| !a.is_empty()), None);
    f.converge(&d).await;
    assert_eq!(live().await.as_deref(), Some(acl_arn.as_str()), "repaired");

    // The YAML drops it: held, then done once allowed.
    let open = desired(&with(None));
    let r = f.apply(&open).await;
    assert!(!r.converged && r.remaining.weakening.values().any(|w| w.contains("disassociated")), "{:#?}", r.remaining);
    assert_eq!(live().await.as_deref(), Some(acl_arn.as_str()), "the WAF stays");
    let r = f.apply_allowing_weakening(&open).await;
    assert!(r.converged, "{:#?}", r.remaining);
    assert_eq!(live().await.filter(|a| !a.is_empty()), None);
}

/// Issue 14 item 2: a consumer's usage plan (throttle, quota, the stage with per-route
/// throttles) and API key, checked through the SDK; drift of each repaired; a rotation with no
/// overlap replaces the key; removal takes the stage off the plan, then the plan and the key.
/// A hand-made plan and key are never touched, and the key's value is in nothing crosslink
/// reports. (moto ignores per-method throttle patches on an existing plan and stores a patched
/// quota as a string: changing either is tested against the in-memory AWS.)
#[tokio::test]
async fn a_consumer_gets_a_usage_plan_and_key_repaired_rotated_and_removed() {
    let f = Fixture::new().await;
    let base = accounts_yaml(false) + &f.gateway_yaml() + &f.link("pay", "a", "10.20.1.10", 9001, "/payments", "");
    // beta throttles a route of its own; moto answers 500 to removing a stage with per-method
    // throttles from a plan, so acme, which is removed at the end, has none.
    let beta = "---\napiVersion: crosslink.dev/v1alpha1\nkind: Consumer\nmetadata: {name: beta}\nspec:\n  gateways: [edge]\n  routes: [{path: /payments, throttling: {rateLimit: 5, burstLimit: 10}}]\n";
    let base = base + beta;
    let consumer = |key: &str| {
        format!(
            "---\napiVersion: crosslink.dev/v1alpha1\nkind: Consumer\nmetadata: {{name: acme}}\nspec:\n  description: Acme Payments Ltd\n  gateways: [edge]\n  throttling: {{rateLimit: 50, burstLimit: 100}}\n  quota: {{limit: 100000, period: MONTH}}\n  apiKey: {key}\n"
        )
    };
    let d0 = desired(&base);
    let cfg = f.clients(&d0, "shared").await;
    let apigw = aws_sdk_apigateway::Client::new(&cfg);
    // Someone else's plan and key, made by hand.
    let theirs = apigw.create_usage_plan().name("partner-by-hand").send().await.unwrap().id().unwrap().to_string();
    let their_key =
        apigw.create_api_key().name("by-hand").enabled(true).send().await.unwrap().id().unwrap().to_string();
    apigw.create_usage_plan_key().usage_plan_id(&theirs).key_id(&their_key).key_type("API_KEY").send().await.unwrap();

    let d1 = desired(&(base.clone() + &consumer("{generation: 1}")));
    let r = f.converge(&d1).await;
    let api = apigw.get_rest_apis().send().await.unwrap();
    let api = api.items().iter().find(|a| a.name() == Some("open-banking")).unwrap().id().unwrap().to_string();
    let plan_named = async |name: &str| {
        let plans = apigw.get_usage_plans().send().await.unwrap();
        plans.items().iter().find(|u| u.name() == Some(name)).cloned()
    };
    let plan = async || plan_named("crosslink-acme").await;
    let keys_in = async |plan: &str| -> Vec<String> {
        let keys = apigw.get_usage_plan_keys().usage_plan_id(plan).send().await.unwrap();
        keys.items().iter().filter_map(|k| k.id().map(str::to_string)).collect()
    };
    let acme_keys = async || {
        let keys = apigw.get_api_keys().send().await.unwrap();
        keys.items()
            .iter()
            .filter(|k| {
                k.tags().and_then(|t| t.get("crosslink.dev/owner")).map(String::as_str) == Some("Consumer/acme")
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    let up = plan().await.expect("the consumer's usage plan");
    assert_eq!(up.description(), Some("Acme Payments Ltd"));
    let t = up.throttle().unwrap();
    assert_eq!((t.rate_limit(), t.burst_limit()), (50.0, 100));
    let q = up.quota().unwrap();
    assert_eq!((q.limit(), q.period().map(|p| p.as_str())), (100000, Some("MONTH")));
    assert_eq!(up.api_stages().len(), 1);
    let stage = &up.api_stages()[0];
    assert_eq!((stage.api_id(), stage.stage()), (Some(api.as_str()), Some("v1")));
    assert!(stage.throttle().is_none_or(|t| t.is_empty()));
    let beta_plan = plan_named("crosslink-beta").await.expect("beta's usage plan");
    assert!(beta_plan.throttle().is_none() && beta_plan.quota().is_none());
    let stage = &beta_plan.api_stages()[0];
    assert_eq!((stage.api_id(), stage.stage()), (Some(api.as_str()), Some("v1")));
    let mut throttled: Vec<&String> = stage.throttle().unwrap().keys().collect();
    throttled.sort();
    assert_eq!(throttled, ["/payments/ANY", "/payments/{proxy+}/ANY"]);
    assert_eq!(stage.throttle().unwrap()["/payments/ANY"].burst_limit(), 10);
    assert_eq!(up.tags().unwrap()["crosslink.dev/managed-by"], "crosslink");
    let up_id = up.id().unwrap().to_string();
    let keys = acme_keys().await;
    assert_eq!(keys.len(), 1);
    let key = keys[0].id().unwrap().to_string();
    assert!(keys[0].enabled() && keys[0].name() == Some("crosslink-acme-g1"));
    assert_eq!(keys_in(&up_id).await, std::slice::from_ref(&key));
    // The value AWS generated is in nothing crosslink reports.
    let value =
        apigw.get_api_key().api_key(&key).include_value(true).send().await.unwrap().value().unwrap().to_string();
    let said = format!("{r:?}");
    assert!(said.contains(&key) && !said.contains(&value), "the key's value was reported");

    // Drift by hand: the throttle, the key out of the plan, the key disabled. (moto stores a
    // patched quota as a string, which no SDK reads back: quota drift is tested against the
    // in-memory AWS.)
    apigw
        .update_usage_plan()
        .usage_plan_id(&up_id)
        .patch_operations(patch("/throttle/rateLimit", "5000"))
        .send()
        .await
        .unwrap();
    apigw.delete_usage_plan_key().usage_plan_id(&up_id).key_id(&key).send().await.unwrap();
    apigw.update_api_key().api_key(&key).patch_operations(patch("/enabled", "false")).send().await.unwrap();
    let r = f.converge(&d1).await;
    let mut fixed: Vec<&str> = r.executed.iter().map(|e| e.action.op.name()).filter(|o| !is_read(o)).collect();
    fixed.sort();
    assert_eq!(fixed, ["CreateUsagePlanKey", "UpdateApiKey", "UpdateUsagePlan"]);
    let up = plan().await.unwrap();
    assert_eq!(up.throttle().unwrap().rate_limit(), 50.0);
    assert_eq!(keys_in(&up_id).await, std::slice::from_ref(&key));
    assert!(acme_keys().await[0].enabled());

    // Rotation with no overlap: the next key joins the plan, then the previous one leaves it
    // and is deleted.
    let d2 = desired(&(base.clone() + &consumer("{generation: 2, overlapHours: 0}")));
    let r = f.converge(&d2).await;
    let ops: Vec<&str> = r.executed.iter().map(|e| e.action.op.name()).collect();
    let at = |op: &str| ops.iter().position(|o| *o == op).unwrap_or_else(|| panic!("{op} in {ops:?}"));
    assert!(
        at("CreateUsagePlanKey") < at("DeleteUsagePlanKey") && at("DeleteUsagePlanKey") < at("DeleteApiKey"),
        "{ops:?}"
    );
    let keys = acme_keys().await;
    assert_eq!(keys.iter().map(|k| k.name().unwrap()).collect::<Vec<_>>(), ["crosslink-acme-g2"]);
    assert_eq!(keys_in(&up_id).await, [keys[0].id().unwrap().to_string()]);

    // Removed: the stage leaves the plan, then the plan and the key go; beta's and theirs stay.
    f.converge(&desired(&base)).await;
    assert!(plan_named("crosslink-beta").await.is_some());
    assert!(plan().await.is_none());
    assert!(acme_keys().await.is_empty());
    let plans = apigw.get_usage_plans().send().await.unwrap();
    assert!(plans.items().iter().any(|u| u.id() == Some(theirs.as_str())));
    assert_eq!(keys_in(&theirs).await, std::slice::from_ref(&their_key));
    assert!(apigw.get_api_key().api_key(&their_key).send().await.is_ok());
}

/// Issue 14 item 6: a regional custom domain with its certificate and policy, mapped to the
/// stage, checked through the SDK; the DNS record to create is reported; a mapping deleted or
/// repointed by hand and the domain deleted by hand are repaired; removal deletes it. (moto
/// neither stores mutual TLS nor answers UpdateDomainName: those are tested against the
/// in-memory AWS. moto does not check the certificate ARN.)
#[tokio::test]
async fn a_custom_domain_is_made_mapped_repaired_and_removed() {
    let f = Fixture::new().await;
    let cert = "arn:aws:acm:eu-central-1:111111111111:certificate/3c8e2f4a";
    let with = |domain: bool| {
        let api = if domain {
            format!(
                "api: {{name: open-banking, stage: v1, customDomain: {{domainName: api.bank.example, certificateArn: '{cert}', basePath: open-banking}}}}"
            )
        } else {
            "api: {name: open-banking, stage: v1}".to_string()
        };
        accounts_yaml(false)
            + &f.gateway_yaml().replace("api: {name: open-banking, stage: v1}", &api)
            + &f.link("pay", "a", "10.20.1.10", 9001, "/payments", "")
    };
    let d = desired(&with(true));
    let r = f.converge(&d).await;
    let cfg = f.clients(&d, "shared").await;
    let apigw = aws_sdk_apigateway::Client::new(&cfg);
    let apis = apigw.get_rest_apis().send().await.unwrap();
    let api = apis.items().iter().find(|a| a.name() == Some("open-banking")).unwrap().id().unwrap().to_string();
    let domain = apigw.get_domain_name().domain_name("api.bank.example").send().await.unwrap();
    assert_eq!(domain.regional_certificate_arn(), Some(cert));
    assert_eq!(domain.security_policy().map(|p| p.as_str()), Some("TLS_1_2"));
    assert_eq!(domain.tags().unwrap()["crosslink.dev/owner"], "Gateway/edge");
    let target = domain.regional_domain_name().unwrap().to_string();
    let mappings = async || {
        let m = apigw.get_base_path_mappings().domain_name("api.bank.example").send().await.unwrap();
        m.items()
            .iter()
            .map(|m| {
                (
                    m.base_path().unwrap().to_string(),
                    m.rest_api_id().unwrap().to_string(),
                    m.stage().unwrap_or_default().to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(mappings().await, [("open-banking".to_string(), api.clone(), "v1".to_string())]);
    let dns = &r.remaining.reports[&Subject::Gateway("edge".into())].resources["dnsRecord"];
    assert!(dns.starts_with(&format!("api.bank.example CNAME {target}")), "{dns}");

    // The mapping repointed by hand (to a stage someone made), then deleted by hand: put back.
    apigw.create_deployment().rest_api_id(&api).stage_name("test").send().await.unwrap();
    apigw
        .update_base_path_mapping()
        .domain_name("api.bank.example")
        .base_path("open-banking")
        .patch_operations(patch("/stage", "test"))
        .send()
        .await
        .unwrap();
    let r = f.converge(&d).await;
    assert!(r.executed.iter().any(|e| e.action.op.name() == "UpdateBasePathMapping"));
    assert_eq!(mappings().await, [("open-banking".to_string(), api.clone(), "v1".to_string())]);
    apigw.delete_base_path_mapping().domain_name("api.bank.example").base_path("open-banking").send().await.unwrap();
    f.converge(&d).await;
    assert_eq!(mappings().await.len(), 1);

    // The domain deleted by hand: made again, and mapped.
    apigw.delete_domain_name().domain_name("api.bank.example").send().await.unwrap();
    let r = f.converge(&d).await;
    let ops: Vec<&str> = r.executed.iter().map(|e| e.action.op.name()).collect();
    assert_eq!(ops, ["CreateDomainName", "CreateBasePathMapping"]);
    assert_eq!(mappings().await, [("open-banking".to_string(), api.clone(), "v1".to_string())]);

    // Removed from the YAML: deleted.
    f.converge(&desired(&with(false))).await;
    assert!(apigw.get_domain_name().domain_name("api.bank.example").send().await.is_err());
}

/// Issue 14 item 7 against moto, checked through the SDK: a link with TLS to the backend gets a
/// TLS listener (its ACM certificate and security policy) and https integrations to its server
/// name with tlsConfig and the route's timeout; a listener switched to TCP by hand, an
/// integration put back with another timeout and the check switched off by hand are repaired;
/// dropping TLS (https -> http) is held unless allowed, and then the listener is TCP again and the
/// integrations plain http through the NLB's name.
#[tokio::test]
async fn backend_tls_converges_is_repaired_and_switching_it_off_waits_for_allow() {
    let f = Fixture::new().await;
    let server = "payments.internal.bank.example";
    let cert = f._moto.request_certificate(GW, "eu-central-1", server).unwrap();
    let with = |tls: bool, timeout: &str| {
        let tls =
            if tls { format!("  tls: {{certificateArn: '{cert}', serverName: {server}}}\n") } else { String::new() };
        accounts_yaml(false)
            + &f.gateway_yaml()
            + &f.link("pay", "a", "10.20.1.10", 9001, "/payments", &tls)
                .replace("routes: [{path: /payments}]", &format!("routes: [{{path: /payments{timeout}}}]"))
    };
    let d = desired(&with(true, ", timeoutMillis: 8000"));
    f.converge(&d).await;
    let cfg = f.clients(&d, "shared").await;
    let (apigw, elb) = (aws_sdk_apigateway::Client::new(&cfg), aws_sdk_elasticloadbalancingv2::Client::new(&cfg));
    let listener = async || {
        let lbs = elb.describe_load_balancers().names("edge-nlb").send().await.unwrap();
        let lb = lbs.load_balancers()[0].load_balancer_arn().unwrap().to_string();
        let ls = elb.describe_listeners().load_balancer_arn(&lb).send().await.unwrap();
        let l = ls.listeners().iter().find(|l| l.port() == Some(9001)).unwrap().clone();
        (
            l.listener_arn().unwrap().to_string(),
            l.protocol().unwrap().as_str().to_string(),
            l.certificates().first().and_then(|c| c.certificate_arn()).map(str::to_string),
            l.ssl_policy().map(str::to_string),
        )
    };
    let (listener_arn, protocol, certificate, policy) = listener().await;
    assert_eq!(protocol, "TLS");
    assert_eq!(certificate.as_deref(), Some(cert.as_str()));
    assert_eq!(policy.as_deref(), Some("ELBSecurityPolicy-TLS13-1-2-2021-06"));
    let apis = apigw.get_rest_apis().send().await.unwrap();
    let api = apis.items().iter().find(|a| a.name() == Some("open-banking")).unwrap().id().unwrap().to_string();
    let res = apigw.get_resources().rest_api_id(&api).send().await.unwrap();
    let resource = |path: &str| res.items().iter().find(|r| r.path() == Some(path)).unwrap().id().unwrap().to_string();
    let (route, proxy) = (resource("/payments"), resource("/payments/{proxy+}"));
    let integration = async |r: &str| {
        let i = apigw.get_integration().rest_api_id(&api).resource_id(r).http_method("ANY").send().await.unwrap();
        (
            i.uri().unwrap_or_default().to_string(),
            i.tls_config().map(|t| t.insecure_skip_verification()),
            i.timeout_in_millis(),
        )
    };
    let https = format!("https://{server}:9001/payments");
    assert_eq!(integration(&route).await, (https.clone(), Some(false), 8000));
    assert_eq!(integration(&proxy).await, (format!("{https}/{{proxy}}"), Some(false), 8000));

    // Drift: the listener's security policy changed by hand, and the route's integration put
    // again with the check off and AWS's default timeout: both repaired. (moto's ModifyListener
    // refuses the TLS protocol and ignores a TLS listener's certificates: a listener switched to
    // TCP by hand and a certificate swapped are repaired against the in-memory AWS.)
    elb.modify_listener()
        .listener_arn(&listener_arn)
        .ssl_policy("ELBSecurityPolicy-TLS13-1-0-2021-06")
        .send()
        .await
        .unwrap();
    assert_eq!(listener().await.3.as_deref(), Some("ELBSecurityPolicy-TLS13-1-0-2021-06"));
    let vpc_links = apigw.get_vpc_links().send().await.unwrap();
    apigw
        .put_integration()
        .rest_api_id(&api)
        .resource_id(&route)
        .http_method("ANY")
        .r#type(IntegrationType::HttpProxy)
        .integration_http_method("ANY")
        .uri(&https)
        .connection_type(ConnectionType::VpcLink)
        .connection_id(vpc_links.items()[0].id().unwrap())
        .tls_config(aws_sdk_apigateway::types::TlsConfig::builder().insecure_skip_verification(true).build())
        .send()
        .await
        .unwrap();
    assert_eq!(integration(&route).await.1, Some(true));
    let r = f.converge(&d).await;
    let ops: Vec<&str> = r.executed.iter().map(|e| e.action.op.name()).collect();
    assert!(ops.contains(&"ModifyListener") && ops.contains(&"PutMethod+PutIntegration"), "{ops:?}");
    assert_eq!(listener().await, (listener_arn.clone(), "TLS".into(), Some(cert.clone()), policy.clone()));
    assert_eq!(integration(&route).await, (https.clone(), Some(false), 8000));

    // The YAML drops TLS: the listener change and the https -> http integrations are held.
    let plain = desired(&with(false, ", timeoutMillis: 8000"));
    let r = f.apply(&plain).await;
    assert!(!r.converged, "held");
    let held: Vec<&String> = r.remaining.weakening.values().collect();
    assert!(held.iter().any(|w| w.contains("backend TLS off (https -> http)")), "{held:#?}");
    assert!(held.iter().any(|w| w.contains("TLS -> TCP")), "{held:#?}");
    assert_eq!(listener().await.1, "TLS", "nothing switched off");
    assert_eq!(integration(&route).await.0, https);
    let r = f.apply_allowing_weakening(&plain).await;
    assert!(r.converged, "{:#?}", r.remaining);
    assert_eq!(listener().await.1, "TCP");
    let (uri, _, timeout) = integration(&route).await;
    assert!(uri.starts_with("http://") && uri.ends_with(":9001/payments"), "{uri}");
    assert_eq!(timeout, 8000);
    let (_, plan) = f.engine().plan(&plain).await;
    assert!(plan.in_sync(), "{plan:#?}");

    // The timeout leaves the YAML: AWS's default again, on the route and its {proxy+} (AWS
    // reports 29,000; moto leaves `timeoutInMillis` out, which the SDK reads as 0).
    f.converge(&desired(&with(false, ""))).await;
    for r in [&route, &proxy] {
        let t = integration(r).await.2;
        assert!(t == 0 || t == 29_000, "{r}: {t}");
    }
}

/// Issue 17 (adoption) against moto, checked through the SDK: on crosslink's load balancer, a
/// target group and listener made by hand with the SDK, as an engineer would in the console (an
/// extra target, a 10 s health check), are adopted by a link with `adoption: Adopt`: the same
/// ARNs afterwards, crosslink's tags added, the health check repaired in place, the extra target
/// deregistered on the pass after the adoption, and the plan in sync.
#[tokio::test]
async fn a_hand_made_listener_and_target_group_are_adopted_without_recreating_them() {
    use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, ProtocolEnum};
    let f = Fixture::new().await;
    let base = accounts_yaml(false) + &f.gateway_yaml() + &f.link("pay", "a", "10.20.1.10", 9001, "/payments", "");
    f.converge(&desired(&base)).await;
    let d0 = desired(&base);
    let cfg = f.clients(&d0, "shared").await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&cfg);
    let lbs = elb.describe_load_balancers().names("edge-nlb").send().await.unwrap();
    let lb = lbs.load_balancers()[0].load_balancer_arn().unwrap().to_string();
    let tg = elb
        .create_target_group()
        .name("legacy-by-hand")
        .protocol(ProtocolEnum::Tcp)
        .port(8080)
        .vpc_id(&f.gw.vpc_id)
        .target_type(TargetTypeEnum::Ip)
        .health_check_interval_seconds(10)
        .send()
        .await
        .unwrap();
    let tg = tg.target_groups()[0].target_group_arn().unwrap().to_string();
    for ip in ["10.20.1.30", "10.20.1.77"] {
        let t = TargetDescription::builder().id(ip).port(8080).availability_zone("all").build();
        elb.register_targets().target_group_arn(&tg).targets(t).send().await.unwrap();
    }
    let forward = Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(&tg).build();
    let listener = elb
        .create_listener()
        .load_balancer_arn(&lb)
        .protocol(ProtocolEnum::Tcp)
        .port(9002)
        .default_actions(forward)
        .send()
        .await
        .unwrap();
    let listener = listener.listeners()[0].listener_arn().unwrap().to_string();

    let adopt = desired(&(base.clone() + &f.link("legacy", "a", "10.20.1.30", 9002, "/legacy", "  adoption: Adopt\n")));
    let (_, plan) = f.engine().plan(&adopt).await;
    let adopted: Vec<&str> =
        plan.actions.iter().filter(|a| a.verb == Verb::Adopt).map(|a| a.resource.as_str()).collect();
    assert_eq!(adopted.len(), 2, "{adopted:?}");
    assert!(adopted.iter().any(|r| r.contains(&tg)) && adopted.iter().any(|r| r.contains(&listener)), "{adopted:?}");
    assert!(!plan.actions.iter().any(|a| a.verb == Verb::Delete || a.verb == Verb::Deregister), "{plan:#?}");

    let r = f.converge(&adopt).await;
    let deregistered = r.executed.iter().filter(|e| e.action.op.name() == "DeregisterTargets").count();
    assert_eq!(deregistered, 1, "the extra target, on a pass after the adoption");
    // Nothing recreated: the same ARNs, now tagged as the link's.
    let tgs = elb.describe_target_groups().target_group_arns(&tg).send().await.unwrap();
    assert_eq!(tgs.target_groups()[0].health_check_interval_seconds(), Some(30), "repaired in place");
    let tag_of = async |arn: &str, key: &str| {
        let t = elb.describe_tags().resource_arns(arn).send().await.unwrap();
        t.tag_descriptions()[0].tags().iter().find(|t| t.key() == Some(key)).and_then(|t| t.value()).map(str::to_string)
    };
    assert_eq!(tag_of(&tg, "crosslink.dev/owner").await.as_deref(), Some("Link/legacy"));
    assert_eq!(tag_of(&listener, "crosslink.dev/owner").await.as_deref(), Some("Link/legacy"));
    let ls = elb.describe_listeners().load_balancer_arn(&lb).send().await.unwrap();
    let at_9002: Vec<&str> =
        ls.listeners().iter().filter(|l| l.port() == Some(9002)).filter_map(|l| l.listener_arn()).collect();
    assert_eq!(at_9002, [listener.as_str()]);
    let health = elb.describe_target_health().target_group_arn(&tg).send().await.unwrap();
    let ips: Vec<&str> = health.target_health_descriptions().iter().filter_map(|d| d.target()?.id()).collect();
    assert_eq!(ips, ["10.20.1.30"]);
    let all = elb.describe_target_groups().send().await.unwrap();
    assert!(!all.target_groups().iter().any(|t| t.target_group_name().unwrap_or_default().starts_with("cl-legacy")));

    // From now on it is crosslink's: drift is repaired like any other.
    elb.modify_target_group().target_group_arn(&tg).health_check_interval_seconds(10).send().await.unwrap();
    let r = f.converge(&adopt).await;
    assert!(r.executed.iter().any(|e| e.action.op.name() == "ModifyTargetGroup"));
}

/// Issue 17 (adoption) against moto, checked through the SDK: a peering requested and accepted
/// by hand with the SDK, with the route on the gateway side, is adopted by a link with `adoption:
/// Adopt`: the same peering id afterwards, tagged as crosslink's, the hand-made route kept and the
/// route back added; the plan is in sync.
#[tokio::test]
async fn a_hand_made_peering_is_adopted_with_its_routes_without_recreating_it() {
    let f = Fixture::new().await;
    let text = |extra: &str| {
        accounts_yaml(false) + &f.gateway_yaml() + &f.link("pay", "a", "10.20.1.10", 9001, "/payments", extra)
    };
    let d0 = desired(&text(""));
    let (gw_cfg, a_cfg) = (f.clients(&d0, "shared").await, f.clients(&d0, "svc-a").await);
    let (gw_ec2, a_ec2) = (aws_sdk_ec2::Client::new(&gw_cfg), aws_sdk_ec2::Client::new(&a_cfg));
    let pcx = gw_ec2
        .create_vpc_peering_connection()
        .vpc_id(&f.gw.vpc_id)
        .peer_vpc_id(&f.a.vpc_id)
        .peer_owner_id(SVC_A)
        .peer_region("eu-central-1")
        .send()
        .await
        .unwrap();
    let pcx = pcx.vpc_peering_connection().unwrap().vpc_peering_connection_id().unwrap().to_string();
    a_ec2.accept_vpc_peering_connection().vpc_peering_connection_id(&pcx).send().await.unwrap();
    gw_ec2
        .create_route()
        .route_table_id(&f.gw.route_table_id)
        .destination_cidr_block("10.20.0.0/16")
        .vpc_peering_connection_id(&pcx)
        .send()
        .await
        .unwrap();

    let adopt = desired(&text("  adoption: Adopt\n"));
    let (_, plan) = f.engine().plan(&adopt).await;
    let adopted: Vec<&str> =
        plan.actions.iter().filter(|a| a.verb == Verb::Adopt).map(|a| a.resource.as_str()).collect();
    assert_eq!(adopted, [format!("peering {pcx}").as_str()]);
    assert!(!plan.actions.iter().any(|a| a.op.name() == "CreateVpcPeeringConnection"), "{plan:#?}");
    f.converge(&adopt).await;

    let peerings = gw_ec2.describe_vpc_peering_connections().send().await.unwrap();
    let live: Vec<_> = peerings
        .vpc_peering_connections()
        .iter()
        .filter(|p| p.status().and_then(|s| s.code()).is_some_and(|c| c.as_str() == "active"))
        .collect();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].vpc_peering_connection_id(), Some(pcx.as_str()), "the same peering");
    let tag = |k: &str| live[0].tags().iter().find(|t| t.key() == Some(k)).and_then(|t| t.value()).map(str::to_string);
    assert_eq!(tag("crosslink.dev/managed-by").as_deref(), Some("crosslink"));
    assert_eq!(tag("crosslink.dev/adopted").as_deref(), Some("true"));
    let route_to = async |ec2: &aws_sdk_ec2::Client, rtb: &str, dest: &str| {
        let t = ec2.describe_route_tables().route_table_ids(rtb).send().await.unwrap();
        t.route_tables()[0]
            .routes()
            .iter()
            .find(|r| r.destination_cidr_block() == Some(dest))
            .and_then(|r| r.vpc_peering_connection_id())
            .map(str::to_string)
    };
    assert_eq!(route_to(&gw_ec2, &f.gw.route_table_id, "10.20.0.0/16").await.as_deref(), Some(pcx.as_str()));
    assert_eq!(route_to(&a_ec2, &f.a.route_table_id, "10.1.0.0/16").await.as_deref(), Some(pcx.as_str()));
}

/// The ids of a link built by hand with the SDK (`hand_build`).
struct Hand {
    lb_arn: String,
    tg_arn: String,
    listener_arn: String,
    pcx: String,
    vpc_link: String,
    api: String,
    payments: String,
    proxy: String,
    target: TargetDescription,
}

/// A whole link built by hand with the SDK, as an engineer would in the console
/// (`crosslink_aws::seed_link_by_hand`), from gateway VPC to service VPC A, target 10.20.1.10.
async fn hand_build(f: &Fixture, accounts: &DesiredState) -> Hand {
    let session = |name: &str| f.cloud.session(accounts.account(name).unwrap());
    let (gw, svc) = (session("shared").await.unwrap(), session("svc-a").await.unwrap());
    let h = crosslink_aws::seed_link_by_hand(&gw, &svc, &f.gw, &f.a, "10.20.1.10").await.unwrap();
    let [payments, proxy] = h.resource_ids;
    Hand {
        lb_arn: h.load_balancer_arn,
        tg_arn: h.target_group_arn,
        listener_arn: h.listener_arn,
        pcx: h.peering_id,
        vpc_link: h.vpc_link_id,
        api: h.rest_api_id,
        payments,
        proxy,
        target: TargetDescription::builder().id("10.20.1.10").port(8080).availability_zone("all").build(),
    }
}

/// Issue 17 (discover and adopt): a whole link built by hand with the SDK, as an engineer would
/// in the console: an internal NLB, an IP target group with a target and a 10 s health check, a
/// TCP listener, a peering requested and accepted with a route each way, a VPC link, a REST API
/// with `/payments` and `/payments/{proxy+}` (HTTP_PROXY through the VPC link), deployed to
/// `prod`. `discover` reads it from the Account documents alone; its YAML adopts it: nothing
/// recreated (every id the same, checked through the SDK), crosslink's tags added, the plan then
/// in sync (what `plan` exits 0 on), and drift repaired afterwards.
#[tokio::test]
async fn a_hand_built_chain_is_discovered_and_adopted_without_recreating_anything() {
    let f = Fixture::new().await;
    let accounts = desired(&accounts_yaml(false));
    let Hand { lb_arn, tg_arn, listener_arn, pcx, vpc_link, api, payments, proxy, target, .. } =
        hand_build(&f, &accounts).await;
    let gw_cfg = f.clients(&accounts, "shared").await;
    let gw_ec2 = aws_sdk_ec2::Client::new(&gw_cfg);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&gw_cfg);
    let apigw = aws_sdk_apigateway::Client::new(&gw_cfg);

    // Discovered from the Account documents alone.
    let found = f.engine().discover(&accounts, "shared").await.unwrap();
    assert_eq!((found.gateways, found.links), (1, 1), "{}\n{:?}", found.yaml, found.notes);
    assert!(found.notes.is_empty(), "{:?}", found.notes);
    let d = desired(&found.yaml);
    assert_eq!(d.gateways[0].spec.vpc_link.as_ref().map(|v| v.id.as_str()), Some(vpc_link.as_str()));
    assert_eq!(d.links[0].spec.targets.len(), 1);
    assert_eq!(d.links[0].spec.health_check.as_ref().map(|h| h.interval_seconds), Some(10));

    // The plan adopts the listener, the target group and the peering, and creates nothing.
    let (_, plan) = f.engine().plan(&d).await;
    let lines: Vec<String> = plan.actions.iter().map(|a| format!("{} {}", a.verb.as_str(), a.resource)).collect();
    assert!(plan.actions.iter().all(|a| matches!(a.verb, Verb::Adopt | Verb::Deploy)), "{lines:#?}");
    assert_eq!(plan.actions.iter().filter(|a| a.verb == Verb::Adopt).count(), 3, "{lines:#?}");
    f.converge(&d).await;

    // Nothing recreated: the same ids, read through the SDK.
    let lbs = elb.describe_load_balancers().send().await.unwrap();
    assert_eq!(
        lbs.load_balancers().iter().filter_map(|l| l.load_balancer_arn()).collect::<Vec<_>>(),
        [lb_arn.as_str()]
    );
    let tgs = elb.describe_target_groups().send().await.unwrap();
    assert_eq!(tgs.target_groups().iter().filter_map(|t| t.target_group_arn()).collect::<Vec<_>>(), [tg_arn.as_str()]);
    let ls = elb.describe_listeners().load_balancer_arn(&lb_arn).send().await.unwrap();
    assert_eq!(ls.listeners().iter().filter_map(|l| l.listener_arn()).collect::<Vec<_>>(), [listener_arn.as_str()]);
    let links = apigw.get_vpc_links().send().await.unwrap();
    assert_eq!(links.items().iter().filter_map(|v| v.id()).collect::<Vec<_>>(), [vpc_link.as_str()]);
    let apis = apigw.get_rest_apis().send().await.unwrap();
    assert_eq!(apis.items().iter().filter_map(|a| a.id()).collect::<Vec<_>>(), [api.as_str()]);
    let resources = apigw.get_resources().rest_api_id(&api).send().await.unwrap();
    let ids: Vec<&str> = resources.items().iter().filter_map(|r| r.id()).collect();
    assert!(ids.contains(&payments.as_str()) && ids.contains(&proxy.as_str()) && ids.len() == 3, "{ids:?}");
    let peerings = gw_ec2.describe_vpc_peering_connections().send().await.unwrap();
    let active: Vec<&str> = peerings
        .vpc_peering_connections()
        .iter()
        .filter(|p| p.status().and_then(|s| s.code()).is_some_and(|c| c.as_str() == "active"))
        .filter_map(|p| p.vpc_peering_connection_id())
        .collect();
    assert_eq!(active, [pcx.as_str()]);

    // Tagged as crosslink's.
    let tags = elb.describe_tags().resource_arns(&tg_arn).resource_arns(&listener_arn).send().await.unwrap();
    for d in tags.tag_descriptions() {
        let tag = |k: &str| d.tags().iter().find(|t| t.key() == Some(k)).and_then(|t| t.value()).map(str::to_string);
        assert_eq!(tag("crosslink.dev/managed-by").as_deref(), Some("crosslink"), "{d:?}");
        assert_eq!(tag("crosslink.dev/adopted").as_deref(), Some("true"), "{d:?}");
    }
    let p = peerings.vpc_peering_connections().iter().find(|p| p.vpc_peering_connection_id() == Some(pcx.as_str()));
    let peering_tags = gw_ec2.describe_vpc_peering_connections().vpc_peering_connection_ids(&pcx).send().await.unwrap();
    let owner = peering_tags.vpc_peering_connections()[0]
        .tags()
        .iter()
        .find(|t| t.key() == Some("crosslink.dev/owner"))
        .and_then(|t| t.value())
        .map(str::to_string);
    assert!(p.is_some());
    assert_eq!(owner, Some(format!("Peering/{}/{}", f.gw.vpc_id, f.a.vpc_id)));

    // Drift repaired afterwards: the target deregistered by hand is registered again.
    elb.deregister_targets().target_group_arn(&tg_arn).targets(target).send().await.unwrap();
    f.converge(&d).await;
    let health = elb.describe_target_health().target_group_arn(&tg_arn).send().await.unwrap();
    let targets: Vec<&str> =
        health.target_health_descriptions().iter().filter_map(|t| t.target().and_then(|t| t.id())).collect();
    assert_eq!(targets, ["10.20.1.10"]);
}

/// Issue 17 (release): a link removed with deletionPolicy Retain is released with its pair's
/// peering: crosslink's tag keys are removed (read back through the SDK), the user's tag stays,
/// and the next passes leave it alone. Then a second crosslink instance, whose gateway references
/// the same NLB, VPC link and API (its own stage), adopts the released resources in place.
#[tokio::test]
async fn a_released_link_is_adopted_by_a_second_instance() {
    use crosslink_plan::Settings;
    let f = Fixture::new().await;
    let base = accounts_yaml(false) + &f.gateway_yaml() + &f.link("pay", "a", "10.20.1.10", 9001, "/payments", "");
    let ledger = |extra: &str| f.link("ledger", "b", "10.30.1.10", 9003, "/accounts", extra);
    f.converge(&desired(&(base.clone() + &ledger("  deletionPolicy: Retain\n  tags: {cost-center: ledger}\n")))).await;
    let d = desired(&base);
    f.converge(&d).await;
    let gw = f.state(&d, "shared").await;
    let tg =
        gw.target_groups.iter().find(|t| t.tags.get("crosslink.dev/owner").map(String::as_str) == Some("Link/ledger"));
    let tg = tg.unwrap().arn.clone();
    let listener = gw.listeners.iter().find(|l| l.port == 9003).unwrap().arn.clone();
    let pcx = gw
        .peerings
        .iter()
        .find(|p| p.accepter_vpc == f.b.vpc_id && p.status == PeeringStatus::Active)
        .unwrap()
        .id
        .clone();

    // A second instance, whose gateway references the same NLB, VPC link and API: while the
    // resources are the first instance's, it refuses them, naming that instance.
    let (api, vpc_link) = (gw.rest_apis[0].id.clone(), gw.vpc_links[0].id.clone());
    let second = accounts_yaml(false)
        + &f.gateway_yaml()
            .replace(
                "loadBalancer: {name: edge-nlb}",
                &format!("loadBalancer: {{arn: \"{}\"}}\n  vpcLink: {{id: {vpc_link}}}", gw.load_balancers[0].arn),
            )
            .replace("api: {name: open-banking, stage: v1}", &format!("api: {{id: {api}, stage: v2}}"))
        + &ledger("  adoption: Adopt\n");
    let d2 = desired(&second);
    let eu = Engine::new(
        f.cloud.clone(),
        EngineOptions { settings: Settings { instance: "crosslink-eu".into() }, ..EngineOptions::default() },
    );
    let (_, plan) = eu.plan(&d2).await;
    let problems: Vec<String> =
        plan.reports.values().flat_map(|r| &r.problems).map(|p| format!("{}: {}", p.code, p.message)).collect();
    assert!(
        problems.iter().any(|m| m.starts_with("OwnedByAnotherInstance") && m.contains("`crosslink`")),
        "{problems:?}"
    );
    assert!(plan.actions.iter().all(|a| a.verb != Verb::Adopt), "{plan:#?}");

    let objects = [Subject::Link("ledger".into()), Subject::Peering(f.gw.vpc_id.clone(), f.b.vpc_id.clone())];
    let (plan, executed) = f.engine().release(&d, &objects, false).await;
    assert!(!plan.has_problems(), "{plan:#?}");
    assert_eq!(executed.len(), 3, "{executed:#?}");
    assert!(
        executed.iter().all(|e| matches!(e.result, crosslink_controller::ActionResult::Done { .. })),
        "{executed:#?}"
    );

    let cfg = f.clients(&d, "shared").await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&cfg);
    let keys = async |arn: &str| -> Vec<String> {
        let t = elb.describe_tags().resource_arns(arn).send().await.unwrap();
        t.tag_descriptions()[0].tags().iter().filter_map(|t| t.key()).map(str::to_string).collect()
    };
    assert_eq!(keys(&tg).await, ["cost-center"]);
    assert!(keys(&listener).await.iter().all(|k| !k.starts_with("crosslink.dev/")));
    let ec2 = aws_sdk_ec2::Client::new(&cfg);
    let p = ec2.describe_vpc_peering_connections().vpc_peering_connection_ids(&pcx).send().await.unwrap();
    assert!(p.vpc_peering_connections()[0].tags().iter().all(|t| !t.key().unwrap_or("").starts_with("crosslink.dev/")));
    // Left alone from now on.
    let (_, plan) = f.engine().plan(&d).await;
    assert!(plan.in_sync(), "{plan:#?}");

    // Released: the second instance adopts them.
    let (_, plan) = eu.plan(&d2).await;
    assert_eq!(plan.actions.iter().filter(|a| a.verb == Verb::Adopt).count(), 3, "{plan:#?}");
    assert!(plan.actions.iter().all(|a| !a.op.is_delete()), "{plan:#?}");
    let r = eu.apply(&d2, &apply_options(false)).await;
    assert!(r.converged, "{:#?}", r.remaining);
    assert!(eu.plan(&d2).await.1.in_sync());
    let t = elb.describe_tags().resource_arns(&tg).send().await.unwrap();
    let managed = t.tag_descriptions()[0]
        .tags()
        .iter()
        .find(|t| t.key() == Some("crosslink.dev/managed-by"))
        .and_then(|t| t.value());
    assert_eq!(managed, Some("crosslink-eu"));
    let after = f.state(&d, "shared").await;
    assert!(after.target_groups.iter().any(|t| t.arn == tg) && after.listeners.iter().any(|l| l.arn == listener));
    assert_eq!(after.vpc_links.len(), 1, "the referenced VPC link is used");
    // The first instance still leaves them alone.
    assert!(f.engine().plan(&d).await.1.in_sync());
}

/// Issue 17 (adoption of a gateway): the hand-built NLB is taken over by name by a Gateway with
/// `adoption: Adopt` that references the hand-built VPC link and API by id (moto cannot tag
/// those: `tagging_a_vpc_link_and_a_rest_api_puts_their_arns_under_tags` and the in-memory AWS
/// cover adopting them). The NLB keeps its ARN and carries the gateway's tags (read through the
/// SDK); the stage, deployed by hand until now, is adopted by name with crosslink's deployment.
#[tokio::test]
async fn a_hand_built_load_balancer_is_adopted_by_name() {
    let f = Fixture::new().await;
    let accounts = desired(&accounts_yaml(false));
    let hand = hand_build(&f, &accounts).await;
    let gateway = f
        .gateway_yaml()
        .replace(
            "loadBalancer: {name: edge-nlb}",
            &format!("loadBalancer: {{name: legacy-nlb}}\n  vpcLink: {{id: {}}}", hand.vpc_link),
        )
        .replace(
            "api: {name: open-banking, stage: v1}",
            &format!("api: {{id: {}, stage: prod}}\n  adoption: Adopt", hand.api),
        );
    let link = f.link(
        "payments-tg",
        "a",
        "10.20.1.10",
        9001,
        "/payments",
        "  healthCheck: {intervalSeconds: 10}\n  adoption: Adopt\n",
    );
    let d = desired(&(accounts_yaml(false) + &gateway + &link));
    let (_, plan) = f.engine().plan(&d).await;
    let adopted: Vec<String> = plan
        .actions
        .iter()
        .filter(|a| a.verb == Verb::Adopt)
        .map(|a| format!("{}: {}", a.resource, a.reason))
        .collect();
    assert!(
        adopted.contains(&format!(
            "load balancer legacy-nlb ({}): built without crosslink, matched by name legacy-nlb",
            hand.lb_arn
        )),
        "{adopted:#?}"
    );
    assert_eq!(adopted.len(), 4, "the NLB, and the link's listener, target group and peering: {adopted:#?}");
    let deploy = plan.actions.iter().find(|a| a.verb == Verb::Deploy).expect("a deployment");
    assert_eq!(deploy.reason.to_string(), "built without crosslink, matched stage by name prod");
    assert!(plan.actions.iter().all(|a| !a.op.is_delete() && a.verb != Verb::Create), "{plan:#?}");
    f.converge(&d).await;

    let cfg = f.clients(&d, "shared").await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&cfg);
    let lbs = elb.describe_load_balancers().send().await.unwrap();
    assert_eq!(
        lbs.load_balancers().iter().filter_map(|l| l.load_balancer_arn()).collect::<Vec<_>>(),
        [hand.lb_arn.as_str()]
    );
    let tags = elb.describe_tags().resource_arns(&hand.lb_arn).send().await.unwrap();
    let tag = |k: &str| {
        tags.tag_descriptions()[0]
            .tags()
            .iter()
            .find(|t| t.key() == Some(k))
            .and_then(|t| t.value())
            .map(str::to_string)
    };
    assert_eq!(tag("crosslink.dev/owner").as_deref(), Some("Gateway/edge"));
    assert_eq!(tag("crosslink.dev/adopted").as_deref(), Some("true"));
    let apigw = aws_sdk_apigateway::Client::new(&cfg);
    let stage = apigw.get_stage().rest_api_id(&hand.api).stage_name("prod").send().await.unwrap();
    assert_eq!(stage.tags().and_then(|t| t.get("crosslink.dev/managed-by")).map(String::as_str), Some("crosslink"));
    let links = apigw.get_vpc_links().send().await.unwrap();
    assert_eq!(links.items().iter().filter_map(|v| v.id()).collect::<Vec<_>>(), [hand.vpc_link.as_str()]);
}
