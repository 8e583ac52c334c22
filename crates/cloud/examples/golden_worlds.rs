//! Writes the inputs of the planner's golden tests (`crates/plan/tests/golden/<case>/`): each
//! case's `desired.yaml`, and as `observed.json` what the in-memory AWS holds after converging
//! the state the case starts from and changing it as the case says (drift, a foreign resource,
//! a failed account). The golden test itself reads these files as data, with no fake and no
//! tokio; `UPDATE_GOLDEN=1 cargo test -p crosslink-plan --test golden` then writes `plan.txt`.
//!
//! ```sh
//! cargo run -p crosslink-cloud --example golden_worlds            # every case
//! cargo run -p crosslink-cloud --example golden_worlds -- in-sync # some
//! ```
//!
//! Review the diff: an input is right when it is what AWS would hold in that situation.

use crosslink_plan::kinds::authorizer::Patch;
use crosslink_plan::kinds::{AuthorizerOp, ListenerOp, LoadBalancerOp, PeeringOp, RestApiOp, TargetGroupOp, TargetsOp};

use std::path::{Path, PathBuf};

use crosslink_cloud::fake::FakeAws;
use crosslink_cloud::faults::Faulty;
use crosslink_cloud::{Cloud, CloudError, ErrorKind, ObserveScope};
use crosslink_desired::DesiredState;
use crosslink_plan::observed::{AccountObservation, ApiMethod, ApiResource, Integration, Observed, PeeringStatus};
use crosslink_plan::op::{Op, Ref};
use crosslink_plan::{Settings, tags};

const GW: &str = "111111111111";
const SVC_A: &str = "222222222222";
const SVC_B: &str = "333333333333";
const GW_VPC: &str = "vpc-0000000000000000a";
const A_VPC: &str = "vpc-0000000000000000b";
const B_VPC: &str = "vpc-0000000000000000c";
const GW_RTB: &str = "rtb-0000000000000000a";
const A_RTB: &str = "rtb-0000000000000000b";
const A_RTB2: &str = "rtb-0000000000000001b";
const B_RTB: &str = "rtb-0000000000000000c";

/// The accounts (each case declares the ones it uses).
fn accounts(with_b: bool) -> String {
    let one = |name: &str, id: &str| {
        format!(
            "apiVersion: crosslink.dev/v1alpha1\nkind: Account\nmetadata: {{name: {name}}}\nspec: {{accountId: \"{id}\", region: eu-central-1}}\n"
        )
    };
    let mut s = one("shared", GW) + "---\n" + &one("svc-a", SVC_A);
    if with_b {
        s += &("---\n".to_string() + &one("svc-b", SVC_B));
    }
    s
}

/// Gateway `edge`; `extra` is appended to its spec (indented lines).
fn gateway(api: &str, extra: &str) -> String {
    format!(
        "---
apiVersion: crosslink.dev/v1alpha1
kind: Gateway
metadata: {{name: edge}}
spec:
  account: shared
  vpcId: {GW_VPC}
  subnetIds: [subnet-0000000000000000a, subnet-0000000000000000b]
  routeTableIds: [{GW_RTB}]
  loadBalancer: {{name: edge-nlb}}
  api: {api}
{extra}"
    )
}

fn edge(extra: &str) -> String {
    gateway("{name: open-banking, stage: v1}", extra)
}

/// A Lambda TOKEN authorizer, and a Cognito one (as flow mappings in `api.authorizers`).
const PARTNERS: &str =
    "{name: partners, type: TOKEN, lambdaArn: 'arn:aws:lambda:eu-central-1:111111111111:function:partner-authz'}";
const STAFF: &str = "{name: staff, type: COGNITO_USER_POOLS, providerArns: ['arn:aws:cognito-idp:eu-central-1:111111111111:userpool/eu-central-1_Staff1'], resultTtlSeconds: 60}";

/// Every stage setting (`api.stageSettings`, as a flow mapping).
const SETTINGS: &str = "{throttling: {rateLimit: 500, burstLimit: 1000}, accessLogs: {destinationArn: 'arn:aws:logs:eu-central-1:111111111111:log-group:open-banking-access'}, executionLogs: {level: ERROR}, detailedMetrics: true, tracing: true, variables: {backend: v2}}";

/// A regional web ACL.
const WEB_ACL: &str =
    "arn:aws:wafv2:eu-central-1:111111111111:regional/webacl/open-banking/0a1b2c3d-1111-2222-3333-444455556666";

/// A resource policy: callers from the bank's network ranges, or through a partner's VPC endpoint.
const POLICY: &str = "{Version: '2012-10-17', Statement: [{Effect: Allow, Principal: '*', Action: 'execute-api:Invoke', Resource: 'execute-api:/*'}, {Effect: Deny, Principal: '*', Action: 'execute-api:Invoke', Resource: 'execute-api:/*', Condition: {NotIpAddress: {'aws:SourceIp': ['10.0.0.0/8', '192.0.2.0/24']}, StringNotEquals: {'aws:SourceVpce': 'vpce-0a1b2c3d4e5f60718'}}}]}";

/// The account's CloudWatch Logs role for API Gateway, set as an administrator would.
fn logging_role(f: &World) {
    f.with_account(GW, |s| {
        s.api_gateway_account = Some(crosslink_plan::observed::ApiGatewayAccount {
            cloudwatch_role_arn: Some("arn:aws:iam::111111111111:role/apigateway-cloudwatch".into()),
        })
    });
}

/// Link `pay` in svc-a on :9001 serving /payments; each argument replaces one part of its spec.
/// A link's TLS to the backend (the in-memory AWS takes any ACM ARN of the region).
const BACKEND_TLS: &str = "  tls: {certificateArn: 'arn:aws:acm:eu-central-1:111111111111:certificate/b1', serverName: payments.internal.bank.example}\n";

struct Pay<'a> {
    route_tables: &'a str,
    targets: &'a str,
    port: u16,
    routes: &'a str,
    extra: &'a str,
}

impl Default for Pay<'_> {
    fn default() -> Self {
        Pay {
            route_tables: A_RTB,
            targets: "[{ip: 10.20.1.10, port: 8080}]",
            port: 9001,
            routes: "[{path: /payments}]",
            extra: "",
        }
    }
}

impl Pay<'_> {
    fn yaml(&self) -> String {
        let Pay { route_tables, targets, port, routes, extra } = self;
        format!(
            "---
apiVersion: crosslink.dev/v1alpha1
kind: Link
metadata: {{name: pay}}
spec:
  gateway: edge
  service: {{account: svc-a, vpcId: {A_VPC}, routeTableIds: [{route_tables}]}}
  targets: {targets}
  listenerPort: {port}
  routes: {routes}
{extra}"
        )
    }
}

/// Link/pay over PrivateLink: no route tables, an NLB crosslink makes in the service VPC.
fn pay_over_private_link() -> String {
    let transport =
        "  transport: {privateLink: {loadBalancer: {name: pay-svc}, subnetIds: [subnet-0000000000000001a]}}\n";
    Pay { extra: transport, ..Pay::default() }.yaml().replace(&format!(", routeTableIds: [{A_RTB}]"), "")
}

fn pay() -> String {
    Pay::default().yaml()
}

/// Link `ledger` in svc-b on :9003 serving /accounts.
fn ledger() -> String {
    ledger_in(B_VPC, B_RTB, "10.30.1.10")
}

fn ledger_in(vpc: &str, rtb: &str, ip: &str) -> String {
    format!(
        "---
apiVersion: crosslink.dev/v1alpha1
kind: Link
metadata: {{name: ledger}}
spec:
  gateway: edge
  service: {{account: svc-b, vpcId: {vpc}, routeTableIds: [{rtb}]}}
  targets: [{{ip: {ip}, port: 8080}}]
  listenerPort: 9003
  routes: [{{path: /accounts}}]
"
    )
}

/// Link `hooks` in svc-a (the VPC of `pay`: one peering for both) on :9002 serving /webhooks.
fn hooks() -> String {
    format!(
        "---
apiVersion: crosslink.dev/v1alpha1
kind: Link
metadata: {{name: hooks}}
spec:
  gateway: edge
  service: {{account: svc-a, vpcId: {A_VPC}, routeTableIds: [{A_RTB}]}}
  targets: [{{ip: 10.20.1.11, port: 8080}}]
  listenerPort: 9002
  routes: [{{path: /webhooks}}]
"
    )
}

fn base() -> String {
    accounts(false) + &edge("") + &pay()
}

fn desired(text: &str) -> DesiredState {
    crosslink_desired::load_str(Path::new("desired.yaml"), text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// The in-memory AWS behind scripted faults (a case breaks an account with them).
type World = Faulty<FakeAws>;

/// The VPCs and route tables that exist before crosslink does anything.
fn world() -> World {
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
    f.add_route_table(SVC_A, A_VPC, A_RTB2);
    f.seed_vpc(SVC_B, "eu-central-1", B_VPC, "10.30.0.0/16", &["subnet-0000000000000002a"], B_RTB);
    f
}

/// Every account of the desired state, read as the engine reads it (through the faults).
fn observe(f: &World, d: &DesiredState) -> Observed {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    let scope = ObserveScope::default();
    Observed {
        accounts: d.accounts.iter().map(|a| (a.metadata.name.clone(), rt.block_on(f.observe(a, &scope)))).collect(),
    }
}

/// Rounds of plan and apply (the actions whose inputs are known and whose dependencies
/// succeeded, in plan order) until nothing is left to do or nothing more can be done. Actions
/// `hold` picks are never made.
fn converge_holding(f: &World, text: &str, hold: impl Fn(&Op) -> bool) {
    let d = desired(text);
    for _ in 0..20 {
        let plan = crosslink_plan::plan(&d, &observe(f, &d), &Settings::default());
        let mut done = vec![false; plan.actions.len()];
        for a in &plan.actions {
            if hold(&a.op) || !a.op.is_ready() || !a.deps.iter().all(|d| done[*d]) {
                continue;
            }
            let id = &d.account(&a.account).expect("a declared account").spec.account_id;
            done[a.id] = f.apply(id, &a.op).is_ok();
        }
        if !done.contains(&true) {
            return;
        }
    }
    panic!("did not settle in 20 rounds:\n{text}");
}

fn converge(f: &World, text: &str) {
    converge_holding(f, text, |_| false);
    let d = desired(text);
    let plan = crosslink_plan::plan(&d, &observe(f, &d), &Settings::default());
    assert!(plan.actions.is_empty(), "not converged: {:#?}", plan.actions);
}

fn api_of(f: &World) -> String {
    f.with_account(GW, |s| s.rest_apis[0].id.clone())
}

struct Case {
    name: &'static str,
    /// Builds the world and returns the desired state of the case.
    build: fn(&World) -> String,
}

/// The gateway's API with a custom domain (and `extra` fields of the domain).
fn domain_api(extra: &str) -> String {
    format!(
        "{{name: open-banking, stage: v1, customDomain: {{domainName: api.bank.example, certificateArn: 'arn:aws:acm:eu-central-1:111111111111:certificate/c1', basePath: open-banking{extra}}}}}"
    )
}

const MTLS: &str = ", mutualTls: {truststoreUri: 's3://bank-truststores/qwac.pem'}";

/// A partner as a consumer of the gateway (the cases' links serve /payments).
const CONSUMER: &str = r#"
---
apiVersion: crosslink.dev/v1alpha1
kind: Consumer
metadata: {name: acme}
spec:
  description: Acme Payments Ltd
  gateways: [edge]
  throttling: {rateLimit: 50, burstLimit: 100}
  quota: {limit: 100000, period: MONTH}
  routes: [{path: /payments, throttling: {rateLimit: 5, burstLimit: 10}}]
  apiKey: {generation: 1, overlapHours: 24}
"#;

const CASES: &[Case] = &[
    Case { name: "everything-from-empty", build: |_| base() },
    Case {
        name: "everything-in-sync",
        build: |f| {
            converge(f, &base());
            base()
        },
    },
    Case {
        name: "peering-pending-acceptance",
        build: |f| {
            // The first pass made everything but the acceptance (the service account's call failed).
            let text = accounts(false)
                + &edge("")
                + &Pay { extra: "  peering: {allowDnsResolution: true}\n", ..Pay::default() }.yaml();
            converge_holding(f, &text, |op| matches!(op, Op::Peering(PeeringOp::AcceptVpcPeeringConnection { .. })));
            text
        },
    },
    Case {
        name: "peering-dns-resolution",
        build: |f| {
            converge(f, &base());
            accounts(false)
                + &edge("")
                + &Pay { extra: "  peering: {allowDnsResolution: true}\n", ..Pay::default() }.yaml()
        },
    },
    Case {
        name: "peering-rejected-is-requested-again",
        build: |f| {
            converge(f, &base());
            f.with_account(GW, |s| s.peerings[0].status = PeeringStatus::Rejected);
            // Routes to a peering that is gone are blackholes.
            for (account, rtb) in [(GW, GW_RTB), (SVC_A, A_RTB)] {
                f.with_account(account, |s| s.route_tables.get_mut(rtb).unwrap().routes[0].blackhole = true);
            }
            base()
        },
    },
    Case {
        name: "peering-unowned-for-the-pair",
        build: |f| {
            // Someone peered the two VPCs by hand (no crosslink tags).
            let id = f
                .apply(
                    GW,
                    &Op::Peering(PeeringOp::CreateVpcPeeringConnection {
                        vpc_id: GW_VPC.into(),
                        peer_vpc_id: A_VPC.into(),
                        peer_owner_id: SVC_A.into(),
                        peer_region: "eu-central-1".into(),
                        tags: [("Name".to_string(), "manual".to_string())].into(),
                    }),
                )
                .unwrap()
                .created
                .unwrap();
            f.apply(SVC_A, &Op::Peering(PeeringOp::AcceptVpcPeeringConnection { peering_id: Ref::Known(id) })).unwrap();
            base()
        },
    },
    Case {
        name: "peering-service-vpcs-overlap",
        build: |f| {
            // A second service VPC with a range inside the first one's, behind the same gateway
            // route table: the later pair in desired order cannot be routed.
            f.seed_vpc(SVC_B, "eu-central-1", "vpc-0000000000000000d", "10.20.128.0/17", &[], "rtb-0000000000000000d");
            converge(f, &base());
            accounts(true)
                + &edge("")
                + &pay()
                + &ledger_in("vpc-0000000000000000d", "rtb-0000000000000000d", "10.20.130.10")
        },
    },
    Case {
        name: "route-missing-and-blackholed",
        build: |f| {
            converge(f, &base());
            f.with_account(GW, |s| s.route_tables.get_mut(GW_RTB).unwrap().routes.clear());
            f.with_account(SVC_A, |s| s.route_tables.get_mut(A_RTB).unwrap().routes[0].blackhole = true);
            base()
        },
    },
    Case {
        name: "route-unowned-conflict",
        build: |f| {
            converge(f, &base());
            // Someone pointed the service side's route to the gateway VPC at a transit gateway.
            f.with_account(SVC_A, |s| {
                let r = &mut s.route_tables.get_mut(A_RTB).unwrap().routes[0];
                r.peering_id = None;
                r.other_target = Some("tgw-0000000000000000a".into());
            });
            base()
        },
    },
    Case {
        name: "route-table-left-desired-state",
        build: |f| {
            converge(
                f,
                &(accounts(false)
                    + &edge("")
                    + &Pay { route_tables: &format!("{A_RTB}, {A_RTB2}"), ..Pay::default() }.yaml()),
            );
            base()
        },
    },
    Case {
        name: "load-balancer-tags",
        build: |f| {
            converge(f, &base());
            f.with_account(GW, |s| s.load_balancers[0].tags.remove(tags::DELETION_POLICY));
            accounts(false) + &edge("  tags: {cost-center: platform-1234}\n") + &pay()
        },
    },
    Case {
        name: "load-balancer-name-taken",
        build: |f| {
            f.apply(
                GW,
                &Op::LoadBalancer(LoadBalancerOp::CreateLoadBalancer {
                    name: "edge-nlb".into(),
                    subnet_ids: vec!["subnet-0000000000000000a".into()],
                    tags: Default::default(),
                }),
            )
            .unwrap();
            base()
        },
    },
    Case {
        name: "target-group-health-check-drift",
        build: |f| {
            let text = accounts(false)
                + &edge("")
                + &Pay { extra: "  healthCheck: {protocol: HTTP, path: /health}\n", ..Pay::default() }.yaml();
            converge(f, &text);
            f.with_account(GW, |s| s.target_groups[0].health_check.interval_seconds = 10);
            text
        },
    },
    Case {
        name: "targets-register-and-deregister",
        build: |f| {
            converge(
                f,
                &(accounts(false)
                    + &edge("")
                    + &Pay {
                        targets: "[{ip: 10.20.1.10, port: 8080}, {ip: 10.20.1.11, port: 8080}]",
                        ..Pay::default()
                    }
                    .yaml()),
            );
            // A target on its way out is not counted.
            f.with_account(GW, |s| {
                let mut t = s.target_groups[0].targets[0].clone();
                t.ip = "10.20.1.13".parse().unwrap();
                t.health = "draining".into();
                s.target_groups[0].targets.push(t);
            });
            accounts(false)
                + &edge("")
                + &Pay { targets: "[{ip: 10.20.1.11, port: 8080}, {ip: 10.20.1.12, port: 8080}]", ..Pay::default() }
                    .yaml()
        },
    },
    Case {
        name: "listener-port-change",
        build: |f| {
            converge(f, &base());
            accounts(false) + &edge("") + &Pay { port: 9011, ..Pay::default() }.yaml()
        },
    },
    Case {
        name: "vpc-link-pending",
        build: |f| {
            // AWS takes minutes to make a VPC link AVAILABLE: the first pass stops there.
            f.set_new_vpc_link_status("PENDING");
            converge_holding(f, &base(), |_| false);
            base()
        },
    },
    Case {
        name: "vpc-link-failed",
        build: |f| {
            converge(f, &base());
            f.with_account(GW, |s| {
                s.vpc_links[0].status = "FAILED".into();
                s.vpc_links[0].status_message = Some("NLB is not active".into());
            });
            base()
        },
    },
    Case {
        name: "rest-api-unowned-by-id",
        build: |f| {
            // The gateway adds to a REST API someone else made, next to their own resources.
            let id = f
                .apply(
                    GW,
                    &Op::RestApi(RestApiOp::CreateRestApi { name: "partner-api".into(), tags: Default::default() }),
                )
                .unwrap()
                .created
                .unwrap();
            f.with_account(GW, |s| {
                let api = &mut s.rest_apis[0];
                let root = api.resources[0].id.clone();
                api.resources.push(ApiResource {
                    id: "legacy0001".into(),
                    parent_id: Some(root),
                    path: "/legacy".into(),
                    methods: [(
                        "GET".to_string(),
                        ApiMethod {
                            authorization_type: "NONE".into(),
                            api_key_required: false,
                            authorizer_id: None,
                            authorization_scopes: vec![],
                            integration: Some(Integration {
                                kind: "HTTP_PROXY".into(),
                                http_method: Some("GET".into()),
                                uri: Some("https://legacy.example.com/".into()),
                                connection_type: Some("INTERNET".into()),
                                connection_id: None,
                                insecure_skip_verification: false,
                                timeout_millis: None,
                            }),
                        },
                    )]
                    .into(),
                });
            });
            let api = format!("{{id: \"{id}\", stage: v1}}");
            converge(f, &(accounts(false) + &gateway(&api, "") + &pay()));
            accounts(false)
                + &gateway(&api, "")
                + &Pay { routes: "[{path: /payments}, {path: /refunds}]", ..Pay::default() }.yaml()
        },
    },
    Case {
        name: "api-resource-proxy-missing",
        build: |f| {
            converge(f, &base());
            f.with_account(GW, |s| s.rest_apis[0].resources.retain(|r| r.path != "/payments/{proxy+}"));
            base()
        },
    },
    Case {
        name: "api-resource-route-removed",
        build: |f| {
            converge(
                f,
                &(accounts(false)
                    + &edge("")
                    + &Pay { routes: "[{path: /payments}, {path: /refunds/v2}]", ..Pay::default() }.yaml()),
            );
            base()
        },
    },
    Case {
        name: "method-integration-drift",
        build: |f| {
            converge(f, &base());
            let api = api_of(f);
            f.with_account(GW, |s| {
                let a = s.rest_apis.iter_mut().find(|a| a.id == api).unwrap();
                for r in &mut a.resources {
                    let Some(m) = r.methods.get_mut("ANY") else { continue };
                    if r.path == "/payments" {
                        // Pointed at another port by hand.
                        let i = m.integration.as_mut().unwrap();
                        i.uri = Some(i.uri.as_ref().unwrap().replace(":9001/", ":9009/"));
                    } else {
                        m.integration = None;
                    }
                }
            });
            base()
        },
    },
    Case {
        name: "method-list-changed",
        build: |f| {
            converge(f, &base());
            accounts(false)
                + &edge("")
                + &Pay { routes: "[{path: /payments, methods: [GET, POST]}]", ..Pay::default() }.yaml()
        },
    },
    Case {
        name: "stage-deployment-drift",
        build: |f| {
            converge(f, &base());
            f.with_account(GW, |s| {
                s.rest_apis[0].stages[0].tags.insert(tags::DEPLOYED_HASH.into(), "0123456789abcdef".into());
            });
            base()
        },
    },
    Case {
        name: "link-removed",
        build: |f| {
            converge(f, &(accounts(true) + &edge("") + &pay() + &ledger()));
            accounts(true) + &edge("") + &pay()
        },
    },
    Case {
        name: "gateway-removed-unowned-look-alikes-stay",
        build: |f| {
            converge(f, &base());
            // Someone's own NLB, listener, target group, route and REST API next to crosslink's.
            let lb = f
                .apply(
                    GW,
                    &Op::LoadBalancer(LoadBalancerOp::CreateLoadBalancer {
                        name: "manual-nlb".into(),
                        subnet_ids: vec!["subnet-0000000000000000a".into()],
                        tags: Default::default(),
                    }),
                )
                .unwrap()
                .created
                .unwrap();
            let tg = f
                .apply(
                    GW,
                    &Op::TargetGroup(TargetGroupOp::CreateTargetGroup {
                        name: "manual".into(),
                        vpc_id: GW_VPC.into(),
                        port: 8080,
                        health_check: f.with_account(GW, |s| s.target_groups[0].health_check.clone()),
                        tags: Default::default(),
                    }),
                )
                .unwrap()
                .created
                .unwrap();
            f.apply(
                GW,
                &Op::Listener(ListenerOp::CreateListener {
                    load_balancer_arn: Ref::Known(lb),
                    port: 7000,
                    target_group_arn: Ref::Known(tg),
                    tls: None,
                    tags: Default::default(),
                }),
            )
            .unwrap();
            f.apply(
                GW,
                &Op::RestApi(RestApiOp::CreateRestApi { name: "partner-api".into(), tags: Default::default() }),
            )
            .unwrap();
            f.with_account(GW, |s| {
                s.route_tables.get_mut(GW_RTB).unwrap().routes.push(crosslink_plan::observed::Route {
                    destination: "192.168.0.0/16".parse().unwrap(),
                    peering_id: None,
                    other_target: Some("tgw-0000000000000000a".into()),
                    blackhole: false,
                });
            });
            accounts(false)
        },
    },
    Case {
        name: "gateway-removed-foreign-listener-keeps-its-load-balancer",
        build: |f| {
            converge(f, &base());
            // Someone added a listener of their own to crosslink's NLB: deleting the NLB would
            // delete it too, so the NLB stays.
            let lb = f.with_account(GW, |s| s.load_balancers[0].arn.clone());
            let tg = f
                .apply(
                    GW,
                    &Op::TargetGroup(TargetGroupOp::CreateTargetGroup {
                        name: "theirs".into(),
                        vpc_id: GW_VPC.into(),
                        port: 8443,
                        health_check: f.with_account(GW, |s| s.target_groups[0].health_check.clone()),
                        tags: Default::default(),
                    }),
                )
                .unwrap()
                .created
                .unwrap();
            f.apply(
                GW,
                &Op::Listener(ListenerOp::CreateListener {
                    load_balancer_arn: Ref::Known(lb),
                    port: 7443,
                    target_group_arn: Ref::Known(tg),
                    tls: None,
                    tags: Default::default(),
                }),
            )
            .unwrap();
            accounts(false)
        },
    },
    Case {
        name: "method-protection-added",
        build: |f| {
            converge(f, &base());
            // The route now wants IAM authorization and an API key: its methods are put again
            // (replace) with them, and the stage redeployed.
            accounts(false)
                + &edge("")
                + &Pay { routes: "[{path: /payments, authorization: AWS_IAM, apiKeyRequired: true}]", ..Pay::default() }
                    .yaml()
        },
    },
    Case {
        name: "method-protection-weakened",
        build: |f| {
            converge(
                f,
                &(accounts(false)
                    + &gateway("{name: open-banking, stage: v1, authorization: AWS_IAM, apiKeyRequired: true}", "")
                    + &pay()),
            );
            // The gateway's defaults dropped, and the route sets none of its own: every method
            // of it would be open to anyone. The plan marks each such change.
            base()
        },
    },
    Case {
        name: "authorizer-added",
        build: |f| {
            converge(f, &base());
            // A Lambda authorizer for the route, and a Cognito one no route uses (a warning): both
            // are created, the route's methods are put again with the new authorizer's id (known
            // after apply), and the stage redeployed.
            accounts(false)
                + &gateway(&format!("{{name: open-banking, stage: v1, authorizers: [{PARTNERS}, {STAFF}]}}"), "")
                + &Pay { routes: "[{path: /payments, authorization: {authorizer: partners}}]", ..Pay::default() }.yaml()
        },
    },
    Case {
        name: "authorizer-drifted",
        build: |f| {
            let text = accounts(false)
                + &gateway(&format!("{{name: open-banking, stage: v1, authorizers: [{PARTNERS}]}}"), "")
                + &Pay { routes: "[{path: /payments, authorization: {authorizer: partners}}]", ..Pay::default() }
                    .yaml();
            converge(f, &text);
            // Someone switched off the authorizer's cache and pointed it at another function.
            let api = api_of(f);
            let id = f.with_account(GW, |s| s.rest_apis[0].authorizers[0].id.clone());
            f.apply(
                GW,
                &Op::Authorizer(AuthorizerOp::UpdateAuthorizer {
                    rest_api_id: api,
                    id,
                    name: "partners".into(),
                    patches: vec![
                        Patch::replace("/authorizerResultTtlInSeconds", "0"),
                        Patch::replace(
                            "/authorizerUri",
                            "arn:aws:apigateway:eu-central-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-central-1:111111111111:function:allow-all/invocations",
                        ),
                    ],
                }),
            )
            .unwrap();
            text
        },
    },
    Case {
        name: "authorizer-removed",
        build: |f| {
            converge(
                f,
                &(accounts(false)
                    + &gateway(&format!("{{name: open-banking, stage: v1, authorizers: [{PARTNERS}]}}"), "")
                    + &Pay { routes: "[{path: /payments, authorization: {authorizer: partners}}]", ..Pay::default() }
                        .yaml()),
            );
            // The route moves to IAM and the authorizer leaves: the methods are put again first,
            // and the authorizer is deleted after them (AWS refuses to delete one in use).
            accounts(false)
                + &edge("")
                + &Pay { routes: "[{path: /payments, authorization: AWS_IAM}]", ..Pay::default() }.yaml()
        },
    },
    Case {
        name: "stage-settings-added",
        build: |f| {
            converge(f, &base());
            logging_role(f);
            // Every stage setting at once, and a route's own throttle: one UpdateStage, no
            // deployment (nothing the deployment serves changed).
            accounts(false)
                + &gateway(&format!("{{name: open-banking, stage: v1, stageSettings: {SETTINGS}}}"), "")
                + &Pay { routes: "[{path: /payments, throttling: {rateLimit: 50, burstLimit: 100}}]", ..Pay::default() }
                    .yaml()
        },
    },
    Case {
        name: "stage-settings-logging-role-missing",
        build: |f| {
            converge(f, &base());
            // No CloudWatch Logs role in the account: the gateway is held with the fix as hint.
            accounts(false)
                + &gateway(&format!("{{name: open-banking, stage: v1, stageSettings: {SETTINGS}}}"), "")
                + &pay()
        },
    },
    Case {
        name: "stage-settings-removed",
        build: |f| {
            logging_role(f);
            converge(
                f,
                &(accounts(false)
                    + &gateway(&format!("{{name: open-banking, stage: v1, stageSettings: {SETTINGS}}}"), "")
                    + &pay()),
            );
            // Only throttling stays: the groups crosslink set are reset (execution logs off,
            // metrics and tracing off, access logs and variables removed), and throttling, had it
            // left too, would have been kept.
            accounts(false)
                + &gateway(
                    "{name: open-banking, stage: v1, stageSettings: {throttling: {rateLimit: 500, burstLimit: 1000}}}",
                    "",
                )
                + &pay()
        },
    },
    Case {
        name: "resource-policy-added",
        build: |f| {
            converge(f, &base());
            // Callers restricted to the bank's network and its partners' VPC endpoint: the policy
            // is put, and the API deployed (API Gateway enforces the deployed policy).
            accounts(false)
                + &gateway(&format!("{{name: open-banking, stage: v1, resourcePolicy: {POLICY}}}"), "")
                + &pay()
        },
    },
    Case {
        name: "resource-policy-widened",
        build: |f| {
            // AWS stored the policy with its resources expanded to full ARNs: converging proves
            // the comparison by meaning (the plan after it is empty). Then the YAML opens the API
            // to everyone: held by the protection guard, and marked as such.
            converge(
                f,
                &(accounts(false)
                    + &gateway(&format!("{{name: open-banking, stage: v1, resourcePolicy: {POLICY}}}"), "")
                    + &pay()),
            );
            accounts(false)
                + &gateway(
                    "{name: open-banking, stage: v1, resourcePolicy: {Version: '2012-10-17', Statement: [{Effect: Allow, Principal: '*', Action: 'execute-api:Invoke', Resource: 'execute-api:/*'}]}}",
                    "",
                )
                + &pay()
        },
    },
    Case {
        name: "web-acl-added",
        build: |f| {
            converge(f, &base());
            // Associated at once, with no deployment.
            accounts(false)
                + &gateway(&format!("{{name: open-banking, stage: v1, webAclArn: '{WEB_ACL}'}}"), "")
                + &pay()
        },
    },
    Case {
        name: "web-acl-removed",
        build: |f| {
            converge(
                f,
                &(accounts(false)
                    + &gateway(&format!("{{name: open-banking, stage: v1, webAclArn: '{WEB_ACL}'}}"), "")
                    + &pay()),
            );
            // The YAML drops the web ACL: the stage would lose its WAF, so the protection guard
            // marks the disassociation.
            base()
        },
    },
    Case {
        name: "retain-link-removed",
        build: |f| {
            converge(
                f,
                &(accounts(false) + &edge("") + &Pay { extra: "  deletionPolicy: Retain\n", ..Pay::default() }.yaml()),
            );
            accounts(false) + &edge("")
        },
    },
    Case {
        name: "retain-link-removed-peering-shared",
        build: |f| {
            // pay (Retain) and hooks share the peering; pay leaves desired state.
            let retained = Pay { extra: "  deletionPolicy: Retain\n", ..Pay::default() }.yaml();
            converge(f, &(accounts(false) + &edge("") + &retained + &hooks()));
            accounts(false) + &edge("") + &hooks()
        },
    },
    Case {
        name: "retain-link-re-added",
        build: |f| {
            // pay (Retain) was removed and kept; it comes back with the default policy.
            let retained = Pay { extra: "  deletionPolicy: Retain\n", ..Pay::default() }.yaml();
            converge(f, &(accounts(false) + &edge("") + &retained));
            converge(f, &(accounts(false) + &edge("")));
            base()
        },
    },
    Case {
        name: "custom-domain-added",
        build: |f| {
            converge(f, &base());
            // The domain, then its mapping to the stage; no deployment.
            accounts(false) + &gateway(&domain_api(""), "") + &pay()
        },
    },
    Case {
        name: "custom-domain-weakened",
        build: |f| {
            converge(f, &(accounts(false) + &gateway(&domain_api(MTLS), "") + &pay()));
            // TLS 1.0 and no mutual TLS: the guard marks the update.
            accounts(false) + &gateway(&domain_api(", securityPolicy: TLS_1_0"), "") + &pay()
        },
    },
    Case {
        name: "backend-tls-added",
        build: |f| {
            converge(f, &base());
            // TLS to the backend with a tighter timeout: the listener becomes a TLS listener
            // (the integrations wait for it), the integrations https to the server name, and the
            // stage is redeployed.
            accounts(false)
                + &gateway("{name: open-banking, stage: v1}", "")
                + &Pay { routes: "[{path: /payments, timeoutMillis: 10000}]", extra: BACKEND_TLS, ..Pay::default() }
                    .yaml()
        },
    },
    Case {
        name: "backend-tls-switched-off",
        build: |f| {
            converge(
                f,
                &(accounts(false)
                    + &gateway("{name: open-banking, stage: v1}", "")
                    + &Pay { extra: BACKEND_TLS, ..Pay::default() }.yaml()),
            );
            // TLS dropped from the YAML: the listener back to TCP and the integrations to
            // plain http are each marked as weakening.
            base()
        },
    },
    Case {
        name: "adoption-listener-and-target-group",
        build: |f| {
            converge(f, &base());
            // A listener on :9002 of crosslink's NLB and its target group, made by hand (with a
            // target the YAML does not name); a link on that port opts in to adoption: both are
            // adopted in place (the verb `adopt`, the live id, the rule that matched), the extra
            // target is a warning, and nothing is deleted.
            let lb = f.with_account(GW, |s| s.load_balancers[0].arn.clone());
            let tg = f
                .apply(
                    GW,
                    &Op::TargetGroup(TargetGroupOp::CreateTargetGroup {
                        name: "hooks-by-hand".into(),
                        vpc_id: GW_VPC.into(),
                        port: 8080,
                        health_check: f.with_account(GW, |s| s.target_groups[0].health_check.clone()),
                        tags: Default::default(),
                    }),
                )
                .unwrap()
                .created
                .unwrap();
            f.apply(
                GW,
                &Op::Targets(crosslink_plan::kinds::TargetsOp::RegisterTargets {
                    target_group_arn: Ref::Known(tg.clone()),
                    targets: vec![("10.20.1.20".parse().unwrap(), 8080), ("10.20.1.99".parse().unwrap(), 8080)],
                    placement: Default::default(),
                }),
            )
            .unwrap();
            f.apply(
                GW,
                &Op::Listener(ListenerOp::CreateListener {
                    load_balancer_arn: Ref::Known(lb),
                    port: 9002,
                    target_group_arn: Ref::Known(tg),
                    tls: None,
                    tags: Default::default(),
                }),
            )
            .unwrap();
            base()
                + "---
apiVersion: crosslink.dev/v1alpha1
kind: Link
metadata: {name: hooks}
spec:
  gateway: edge
  service: {account: svc-a, vpcId: vpc-0000000000000000b, routeTableIds: [rtb-0000000000000000b]}
  targets: [{ip: 10.20.1.20, port: 8080}]
  listenerPort: 9002
  routes: [{path: /hooks}]
  adoption: Adopt
"
        },
    },
    Case {
        name: "consumer-added",
        build: |f| {
            converge(f, &base());
            // A usage plan over the stage with a per-route throttle, and its key.
            base() + CONSUMER
        },
    },
    Case {
        name: "consumer-key-rotated-in-overlap",
        build: |f| {
            converge(f, &(base() + CONSUMER));
            f.advance_clock(3600);
            // Generation 2 is made and joins the plan; generation 1 stays for the overlap.
            base() + &CONSUMER.replace("generation: 1", "generation: 2")
        },
    },
    Case {
        name: "consumer-removed",
        build: |f| {
            converge(f, &(base() + CONSUMER));
            // The plan's stage is removed before the plan; the key goes too.
            base()
        },
    },
    Case {
        name: "private-link-from-peering",
        build: |f| {
            converge(f, &base());
            // Link/pay switches to PrivateLink: the service side, the endpoint's security group
            // and the rest follow pass by pass; the peered target stays registered and the
            // peering stays, both reported as waiting for the new path.
            accounts(false) + &edge("") + &pay_over_private_link()
        },
    },
    Case {
        name: "private-link-from-peering-new-path-registered",
        build: |f| {
            converge(f, &base());
            // Everything of the new path made, the endpoint accepted and its interfaces
            // registered, but the peered target not yet deregistered: now it is (the new targets
            // are healthy), and the peering still waits for it.
            let text = accounts(false) + &edge("") + &pay_over_private_link();
            converge_holding(f, &text, |op| matches!(op, Op::Targets(TargetsOp::DeregisterTargets { .. })));
            text
        },
    },
    Case {
        name: "account-unavailable",
        build: |f| {
            converge(f, &base());
            f.break_account(
                SVC_A,
                CloudError::new(ErrorKind::AccessDenied, "AccessDenied", "not authorized to perform sts:AssumeRole"),
            );
            // What changed in desired state waits until the account can be read.
            accounts(false) + &edge("") + &Pay { port: 9011, ..Pay::default() }.yaml()
        },
    },
];

fn main() {
    let only: Vec<String> = std::env::args().skip(1).collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plan/tests/golden");
    for case in CASES.iter().filter(|c| only.is_empty() || only.iter().any(|o| o == c.name)) {
        let f = world();
        let text = (case.build)(&f);
        let d = desired(&text);
        let observed = observe(&f, &d);
        let failed = observed.accounts.values().any(|o| matches!(o, AccountObservation::Failed { .. }));
        let dir = root.join(case.name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("desired.yaml"), &text).unwrap();
        std::fs::write(dir.join("observed.json"), serde_json::to_string_pretty(&observed).unwrap() + "\n").unwrap();
        println!("{}{}", case.name, if failed { " (an account failed)" } else { "" });
    }
}
