//! `AwsCloud` against moto: every operation through the real SDK, read back with observe, in two
//! accounts reached with AssumeRole; identity failures; error codes; the per-call observer.

use crosslink_plan::kinds::{
    ApiResourceOp, EndpointServiceOp, ListenerOp, LoadBalancerOp, MethodOp, PeeringOp, RestApiOp, RouteOp, StageOp,
    TargetGroupOp, TargetsOp, VpcLinkOp,
};

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use crosslink_aws::{AwsCloud, CallRecord, Connector, SeededVpc, seed_network};
use crosslink_cloud::{Cloud, ErrorKind, ObserveScope};
use crosslink_desired::{Account, AccountSpec, AssumeRole, Metadata};
use crosslink_plan::observed::{AccountObservation, AccountState, HealthCheckSettings, PeeringStatus, Tags};
use crosslink_plan::op::{Op, Ref};
use crosslink_plan::tags::{DEPLOYED_HASH, MANAGED_BY, OWNER};
use crosslink_testkit::{Moto, REGION};
use ipnet::Ipv4Net;

const GATEWAY: &str = "111111111111";
const SERVICE: &str = "222222222222";
const INSTANCE: &str = "crosslink";

fn account(name: &str, id: &str, assume_role: bool) -> Account {
    Account {
        api_version: Default::default(),
        metadata: Metadata { name: name.into(), ..Default::default() },
        spec: AccountSpec {
            account_id: id.into(),
            region: REGION.into(),
            assume_role: assume_role.then(|| AssumeRole {
                role_arn: format!("arn:aws:iam::{id}:role/crosslink"),
                external_id: Some("ext".into()),
                session_name: None,
            }),
        },
    }
}

type Calls = Arc<Mutex<Vec<CallRecord>>>;

async fn cloud(moto: &Moto) -> (AwsCloud, Calls) {
    let calls: Calls = Arc::default();
    let sink = calls.clone();
    let cloud = AwsCloud::new(Connector::from_config(super::base_config(moto).await))
        // The limiter is tested with virtual time in its unit tests; here it would only add waits.
        .with_rate_limits(crosslink_aws::RateLimits::off())
        .with_call_observer(Arc::new(move |r: &CallRecord| sink.lock().unwrap().push(r.clone())));
    (cloud, calls)
}

fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn owned(owner: &str) -> Tags {
    tags(&[(MANAGED_BY, INSTANCE), (OWNER, owner)])
}

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn known(s: &str) -> Ref {
    Ref::Known(s.to_string())
}

fn network_scope() -> ObserveScope {
    ObserveScope { instance: INSTANCE.into(), ..Default::default() }
}

fn gateway_scope() -> ObserveScope {
    ObserveScope { gateway_side: true, instance: INSTANCE.into(), ..Default::default() }
}

async fn observe(cloud: &AwsCloud, account: &Account, scope: &ObserveScope) -> AccountState {
    match cloud.observe(account, scope).await {
        AccountObservation::Ok(state) => *state,
        AccountObservation::Failed { code, message, .. } => {
            panic!("observe {} failed: {code}: {message}", account.metadata.name)
        }
    }
}

async fn exec(cloud: &AwsCloud, account: &Account, op: Op) -> Option<String> {
    let name = op.name();
    match cloud.execute(account, &op).await {
        Ok(out) => out.created,
        Err(e) => panic!("{name} in {} failed: {e:?}", account.metadata.name),
    }
}

async fn seed(cloud: &AwsCloud, account: &Account, name: &str, cidr: &str, subnets: usize) -> SeededVpc {
    let session = cloud.session(account).await.expect("session");
    seed_network(&session, name, net(cidr), subnets).await.expect("seed")
}

fn tcp_check() -> HealthCheckSettings {
    HealthCheckSettings {
        protocol: "TCP".into(),
        path: None,
        port: "traffic-port".into(),
        interval_seconds: 30,
        healthy_threshold: 3,
        unhealthy_threshold: 3,
    }
}

#[tokio::test]
async fn peering_between_two_accounts_and_routes() {
    let moto = Moto::start();
    let (cloud, calls) = cloud(&moto).await;
    let gw = account("gateway", GATEWAY, true);
    let svc = account("service", SERVICE, true);

    let gw_vpc = seed(&cloud, &gw, "gw", "10.0.0.0/16", 2).await;
    let svc_vpc = seed(&cloud, &svc, "svc", "10.1.0.0/16", 3).await;
    assert_eq!(gw_vpc.subnet_ids.len(), 2);
    assert_eq!(svc_vpc.subnet_ids.len(), 3);

    let peering_tags = owned(&format!("Peering/{}/{}", gw_vpc.vpc_id, svc_vpc.vpc_id));
    let pcx = exec(
        &cloud,
        &gw,
        Op::Peering(PeeringOp::CreateVpcPeeringConnection {
            vpc_id: gw_vpc.vpc_id.clone(),
            peer_vpc_id: svc_vpc.vpc_id.clone(),
            peer_owner_id: SERVICE.into(),
            peer_region: REGION.into(),
            tags: peering_tags.clone(),
        }),
    )
    .await
    .expect("peering id");
    assert!(pcx.starts_with("pcx-"), "{pcx}");

    let g = observe(&cloud, &gw, &network_scope()).await;
    let s = observe(&cloud, &svc, &network_scope()).await;
    assert_eq!(g.account_id, GATEWAY);
    assert_eq!(g.region, REGION);
    assert_eq!(g.vpcs[&gw_vpc.vpc_id].cidrs, vec![net("10.0.0.0/16")]);
    assert_eq!(s.vpcs[&svc_vpc.vpc_id].cidrs, vec![net("10.1.0.0/16")]);
    assert!(g.load_balancers.is_empty() && g.rest_apis.is_empty(), "network scope reads no gateway side");
    for state in [&g, &s] {
        let p = state.peering(&pcx).unwrap_or_else(|| panic!("{pcx} not seen in {}", state.account_id));
        assert_eq!(p.status, PeeringStatus::PendingAcceptance);
        assert_eq!((p.requester_vpc.as_str(), p.requester_account.as_str()), (gw_vpc.vpc_id.as_str(), GATEWAY));
        assert_eq!((p.accepter_vpc.as_str(), p.accepter_account.as_str()), (svc_vpc.vpc_id.as_str(), SERVICE));
        assert_eq!(p.tags, peering_tags);
    }

    exec(&cloud, &svc, Op::Peering(PeeringOp::AcceptVpcPeeringConnection { peering_id: known(&pcx) })).await;
    for account in [&gw, &svc] {
        let st = observe(&cloud, account, &network_scope()).await;
        assert_eq!(st.peering(&pcx).unwrap().status, PeeringStatus::Active, "{}", account.metadata.name);
        assert!(!st.peering(&pcx).unwrap().accepter_dns_resolution, "off until asked for");
    }

    // peering.allowDnsResolution: the accepter sets its side; both sides see it.
    for allow in [true, false] {
        exec(
            &cloud,
            &svc,
            Op::Peering(PeeringOp::SetPeeringDnsResolution { peering_id: Ref::Known(pcx.clone()), allow }),
        )
        .await;
        for account in [&gw, &svc] {
            let st = observe(&cloud, account, &network_scope()).await;
            assert_eq!(st.peering(&pcx).unwrap().accepter_dns_resolution, allow, "{}", account.metadata.name);
        }
    }

    exec(
        &cloud,
        &gw,
        Op::Peering(PeeringOp::CreateEc2Tags { resource_id: pcx.clone(), tags: tags(&[("extra", "1")]) }),
    )
    .await;
    let g = observe(&cloud, &gw, &network_scope()).await;
    assert_eq!(g.peering(&pcx).unwrap().tags.get("extra").map(String::as_str), Some("1"));

    let route = |rt: &str, dest: &str| {
        Op::Route(RouteOp::CreateRoute { route_table_id: rt.into(), destination: net(dest), peering_id: known(&pcx) })
    };
    exec(&cloud, &gw, route(&gw_vpc.route_table_id, "10.1.0.0/16")).await;
    exec(&cloud, &svc, route(&svc_vpc.route_table_id, "10.0.0.0/16")).await;
    let g = observe(&cloud, &gw, &network_scope()).await;
    let s = observe(&cloud, &svc, &network_scope()).await;
    let find = |st: &AccountState, rt: &str, dest: &str| {
        st.route_tables[rt].routes.iter().find(|r| r.destination == net(dest)).cloned()
    };
    let r = find(&g, &gw_vpc.route_table_id, "10.1.0.0/16").expect("gateway route");
    assert_eq!((r.peering_id.as_deref(), r.other_target.as_deref(), r.blackhole), (Some(pcx.as_str()), None, false));
    let r = find(&s, &svc_vpc.route_table_id, "10.0.0.0/16").expect("service route");
    assert_eq!(r.peering_id.as_deref(), Some(pcx.as_str()));
    let local = find(&g, &gw_vpc.route_table_id, "10.0.0.0/16").expect("local route");
    assert_eq!((local.peering_id, local.other_target.as_deref()), (None, Some("local")));
    assert_eq!(g.route_tables[&gw_vpc.route_table_id].vpc_id, gw_vpc.vpc_id);

    exec(
        &cloud,
        &gw,
        Op::Route(RouteOp::ReplaceRoute {
            route_table_id: gw_vpc.route_table_id.clone(),
            destination: net("10.1.0.0/16"),
            peering_id: known(&pcx),
        }),
    )
    .await;
    exec(
        &cloud,
        &gw,
        Op::Route(RouteOp::DeleteRoute {
            route_table_id: gw_vpc.route_table_id.clone(),
            destination: net("10.1.0.0/16"),
        }),
    )
    .await;
    let g = observe(&cloud, &gw, &network_scope()).await;
    assert!(find(&g, &gw_vpc.route_table_id, "10.1.0.0/16").is_none());

    // A route to a missing table keeps its EC2 code.
    let err = cloud.execute(&gw, &route("rtb-00000000000000000", "10.9.0.0/16")).await.unwrap_err();
    assert_eq!((err.kind, err.code.as_str()), (ErrorKind::NotFound, "InvalidRouteTableID.NotFound"), "{err:?}");

    exec(&cloud, &gw, Op::Peering(PeeringOp::DeleteVpcPeeringConnection { peering_id: pcx.clone() })).await;
    let g = observe(&cloud, &gw, &network_scope()).await;
    assert!(g.peering(&pcx).is_none_or(|p| p.status.is_dead()), "{:?}", g.peering(&pcx));

    // Pending ids never reach AWS.
    let err = cloud
        .execute(
            &gw,
            &Op::Peering(PeeringOp::AcceptVpcPeeringConnection { peering_id: Ref::Pending("peering".into()) }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, "UnresolvedReference");

    // Sessions are verified once per account and reused.
    let calls = calls.lock().unwrap();
    let sts: Vec<_> = calls.iter().filter(|c| c.service == "sts").collect();
    assert_eq!(sts.len(), 2, "one GetCallerIdentity per account: {sts:?}");
    assert!(sts.iter().all(|c| c.operation == "GetCallerIdentity" && c.outcome == "ok"));
    let failed: Vec<_> = calls.iter().filter(|c| c.outcome != "ok").collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].code.as_deref(), Some("InvalidRouteTableID.NotFound"));
    assert_eq!(failed[0].outcome, "not-found");
}

#[tokio::test]
async fn load_balancer_target_group_listener_and_targets() {
    let moto = Moto::start();
    let (cloud, calls) = cloud(&moto).await;
    let gw = account("gateway", GATEWAY, true);
    let vpc = seed(&cloud, &gw, "gw", "10.0.0.0/16", 2).await;
    let owner = owned("Gateway/edge");

    let lb = exec(
        &cloud,
        &gw,
        Op::LoadBalancer(LoadBalancerOp::CreateLoadBalancer {
            name: "cl-edge".into(),
            subnet_ids: vpc.subnet_ids.clone(),
            tags: owner.clone(),
        }),
    )
    .await
    .expect("lb arn");
    let tg = exec(
        &cloud,
        &gw,
        Op::TargetGroup(TargetGroupOp::CreateTargetGroup {
            name: "cl-payments".into(),
            vpc_id: vpc.vpc_id.clone(),
            port: 8080,
            health_check: tcp_check(),
            tags: owned("Link/payments"),
        }),
    )
    .await
    .expect("tg arn");
    let targets = vec![(Ipv4Addr::new(10, 1, 0, 10), 8080), (Ipv4Addr::new(10, 1, 1, 10), 8080)];
    exec(
        &cloud,
        &gw,
        Op::Targets(TargetsOp::RegisterTargets {
            target_group_arn: known(&tg),
            targets: targets.clone(),
            placement: Default::default(),
        }),
    )
    .await;
    let listener = exec(
        &cloud,
        &gw,
        Op::Listener(ListenerOp::CreateListener {
            load_balancer_arn: known(&lb),
            port: 8080,
            target_group_arn: known(&tg),
            tls: None,
            tags: owned("Link/payments"),
        }),
    )
    .await
    .expect("listener arn");

    // Somebody else's load balancer: listed, but its listeners are read only when asked for.
    let elbv2 = aws_sdk_elasticloadbalancingv2::Client::new(&cloud.session(&gw).await.unwrap().config);
    let foreign = elbv2
        .create_load_balancer()
        .name("foreign")
        .r#type(aws_sdk_elasticloadbalancingv2::types::LoadBalancerTypeEnum::Network)
        .set_subnets(Some(vpc.subnet_ids.clone()))
        .send()
        .await
        .unwrap()
        .load_balancers()[0]
        .load_balancer_arn()
        .unwrap()
        .to_string();
    elbv2
        .create_listener()
        .load_balancer_arn(&foreign)
        .port(80)
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Tcp)
        .default_actions(
            aws_sdk_elasticloadbalancingv2::types::Action::builder()
                .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
                .target_group_arn(&tg)
                .build(),
        )
        .send()
        .await
        .unwrap();

    let before = calls.lock().unwrap().len();
    let st = observe(&cloud, &gw, &gateway_scope()).await;
    let observe_calls: Vec<_> = calls.lock().unwrap()[before..].iter().map(|c| c.operation).collect();
    let mut sorted = observe_calls.clone();
    sorted.sort();
    // Batched per account: one call per list, one DescribeTags per kind, listeners and target
    // health only for crosslink's own load balancer and target group, and API Gateway's account
    // settings (GetAccount: the CloudWatch Logs role stage logging needs) once; consumers' usage
    // plans and API keys, and custom domain names, one list each (none is crosslink's, so no
    // GetUsagePlanKeys or GetBasePathMappings); the transports' endpoint services, endpoints and
    // their security groups one list each (by tag; none is crosslink's, so no
    // DescribeVpcEndpointServicePermissions or DescribeNetworkInterfaces).
    assert_eq!(
        sorted,
        vec![
            "DescribeListeners",
            "DescribeLoadBalancers",
            "DescribeRouteTables",
            "DescribeSecurityGroups",
            "DescribeTags",
            "DescribeTags",
            "DescribeTags",
            "DescribeTargetGroups",
            "DescribeTargetHealth",
            "DescribeVpcEndpointServiceConfigurations",
            "DescribeVpcEndpoints",
            "DescribeVpcPeeringConnections",
            "DescribeVpcs",
            "GetAccount",
            "GetApiKeys",
            "GetDomainNames",
            "GetRestApis",
            "GetUsagePlans",
            "GetVpcLinks",
        ]
    );

    let l = st.load_balancer(&lb).expect("our load balancer");
    assert_eq!(l.name, "cl-edge");
    assert_eq!(l.kind, "network");
    assert!(l.internal);
    assert_eq!(l.vpc_id, vpc.vpc_id);
    assert_eq!(l.tags, owner);
    let mut subnets = l.subnet_ids.clone();
    subnets.sort();
    let mut want = vpc.subnet_ids.clone();
    want.sort();
    assert_eq!(subnets, want);
    assert!(!l.dns_name.is_empty());
    assert!(st.load_balancer(&foreign).is_some_and(|l| l.tags.is_empty()));

    assert_eq!(st.listeners.len(), 1, "{:?}", st.listeners);
    let li = &st.listeners[0];
    assert_eq!(li.arn, listener);
    assert_eq!((li.load_balancer_arn.as_str(), li.port, li.protocol.as_str()), (lb.as_str(), 8080, "TCP"));
    assert_eq!(li.target_group_arn.as_deref(), Some(tg.as_str()));
    assert_eq!(li.tags, owned("Link/payments"));

    let t = st.target_groups.iter().find(|t| t.arn == tg).expect("target group");
    assert_eq!((t.name.as_str(), t.vpc_id.as_str()), ("cl-payments", vpc.vpc_id.as_str()));
    assert_eq!((t.protocol.as_str(), t.port, t.target_type.as_str()), ("TCP", 8080, "ip"));
    assert_eq!(t.health_check, tcp_check());
    assert_eq!(t.tags, owned("Link/payments"));
    let got: Vec<_> = t.targets.iter().map(|r| (r.ip, r.port)).collect();
    assert_eq!(got, targets);
    // moto does not report the zone of a target (real AWS says `all` for peered IPs).
    assert!(t.targets.iter().all(|r| r.availability_zone.as_deref().is_none_or(|z| z == "all")));
    assert!(t.targets.iter().all(|r| !r.health.is_empty()));

    // Listeners of a named load balancer are read too.
    let scope = ObserveScope { load_balancer_names: vec!["foreign".into()], ..gateway_scope() };
    let st = observe(&cloud, &gw, &scope).await;
    assert!(st.listeners.iter().any(|l| l.load_balancer_arn == foreign && l.port == 80 && l.tags.is_empty()));
    let scope = ObserveScope { load_balancer_arns: vec![foreign.clone()], ..gateway_scope() };
    assert_eq!(observe(&cloud, &gw, &scope).await.listeners.len(), 2);

    // Changes.
    let http_check = HealthCheckSettings {
        protocol: "HTTP".into(),
        path: Some("/healthz".into()),
        port: "8081".into(),
        interval_seconds: 10,
        healthy_threshold: 2,
        unhealthy_threshold: 4,
    };
    exec(
        &cloud,
        &gw,
        Op::TargetGroup(TargetGroupOp::ModifyTargetGroup { arn: tg.clone(), health_check: http_check.clone() }),
    )
    .await;
    exec(
        &cloud,
        &gw,
        Op::Listener(ListenerOp::ModifyListener {
            arn: listener.clone(),
            port: 9090,
            target_group_arn: known(&tg),
            tls: None,
            protocol_changes: false,
        }),
    )
    .await;
    exec(&cloud, &gw, Op::LoadBalancer(LoadBalancerOp::AddElbTags { arn: lb.clone(), tags: tags(&[("extra", "1")]) }))
        .await;
    exec(
        &cloud,
        &gw,
        Op::Targets(TargetsOp::DeregisterTargets {
            target_group_arn: tg.clone(),
            targets: targets[..1].to_vec(),
            placement: Default::default(),
        }),
    )
    .await;
    let st = observe(&cloud, &gw, &gateway_scope()).await;
    let t = st.target_groups.iter().find(|t| t.arn == tg).unwrap();
    assert_eq!(t.health_check, http_check);
    assert_eq!(t.targets.iter().map(|r| (r.ip, r.port)).collect::<Vec<_>>(), targets[1..].to_vec());
    assert_eq!(st.listeners[0].port, 9090);
    assert_eq!(st.listeners[0].target_group_arn.as_deref(), Some(tg.as_str()));
    assert_eq!(st.load_balancer(&lb).unwrap().tags.get("extra").map(String::as_str), Some("1"));
    assert_eq!(st.load_balancer(&lb).unwrap().state, "active");

    // Deletes, in dependency order.
    exec(&cloud, &gw, Op::Listener(ListenerOp::DeleteListener { arn: listener.clone() })).await;
    elbv2.delete_load_balancer().load_balancer_arn(&foreign).send().await.unwrap();
    exec(&cloud, &gw, Op::TargetGroup(TargetGroupOp::DeleteTargetGroup { arn: tg.clone() })).await;
    exec(&cloud, &gw, Op::LoadBalancer(LoadBalancerOp::DeleteLoadBalancer { arn: lb.clone() })).await;
    let st = observe(&cloud, &gw, &gateway_scope()).await;
    assert!(st.load_balancers.is_empty() && st.listeners.is_empty() && st.target_groups.is_empty(), "{st:?}");

    // Real moto errors keep their codes.
    let err = cloud
        .execute(&gw, &Op::TargetGroup(TargetGroupOp::ModifyTargetGroup { arn: tg.clone(), health_check: tcp_check() }))
        .await
        .unwrap_err();
    assert_eq!((err.kind, err.code.as_str()), (ErrorKind::NotFound, "TargetGroupNotFound"), "{err:?}");
    let err =
        cloud.execute(&gw, &Op::Listener(ListenerOp::DeleteListener { arn: listener.clone() })).await.unwrap_err();
    assert_eq!((err.kind, err.code.as_str()), (ErrorKind::NotFound, "ListenerNotFound"), "{err:?}");
    let dup = Op::TargetGroup(TargetGroupOp::CreateTargetGroup {
        name: "dup".into(),
        vpc_id: vpc.vpc_id.clone(),
        port: 80,
        health_check: tcp_check(),
        tags: Tags::new(),
    });
    exec(&cloud, &gw, dup.clone()).await;
    let err = cloud.execute(&gw, &dup).await.unwrap_err();
    assert_eq!((err.kind, err.code.as_str()), (ErrorKind::Permanent, "DuplicateTargetGroupName"), "{err:?}");
    assert!(err.message.contains("DuplicateTargetGroupName") || !err.message.is_empty(), "{err:?}");
}

#[tokio::test]
async fn vpc_link_rest_api_resources_methods_and_stage() {
    let moto = Moto::start();
    let (cloud, calls) = cloud(&moto).await;
    let gw = account("gateway", GATEWAY, true);
    let vpc = seed(&cloud, &gw, "gw", "10.0.0.0/16", 2).await;
    let lb = exec(
        &cloud,
        &gw,
        Op::LoadBalancer(LoadBalancerOp::CreateLoadBalancer {
            name: "cl-edge".into(),
            subnet_ids: vpc.subnet_ids.clone(),
            tags: owned("Gateway/edge"),
        }),
    )
    .await
    .unwrap();

    let link = exec(
        &cloud,
        &gw,
        Op::VpcLink(VpcLinkOp::CreateVpcLink {
            name: "cl-edge".into(),
            load_balancer_arn: known(&lb),
            tags: owned("Gateway/edge"),
        }),
    )
    .await
    .expect("vpc link id");
    let api =
        exec(&cloud, &gw, Op::RestApi(RestApiOp::CreateRestApi { name: "edge".into(), tags: owned("Gateway/edge") }))
            .await
            .expect("rest api id");

    let st = observe(&cloud, &gw, &gateway_scope()).await;
    let l = st.vpc_links.iter().find(|l| l.id == link).expect("vpc link");
    assert_eq!((l.name.as_str(), l.target_arns.clone(), l.status.as_str()), ("cl-edge", vec![lb.clone()], "AVAILABLE"));
    assert_eq!(l.tags, owned("Gateway/edge"));
    let a = st.rest_apis.iter().find(|a| a.id == api).expect("rest api");
    assert_eq!((a.name.as_str(), &a.tags), ("edge", &owned("Gateway/edge")));
    assert_eq!(a.resources.len(), 1, "only the root: {:?}", a.resources);
    let root = a.resources[0].clone();
    assert_eq!((root.path.as_str(), root.parent_id.as_deref()), ("/", None));
    assert!(a.stages.is_empty());

    let payments = exec(
        &cloud,
        &gw,
        Op::ApiResource(ApiResourceOp::CreateResource {
            rest_api_id: known(&api),
            parent_id: known(&root.id),
            path_part: "payments".into(),
            path: "/payments".into(),
        }),
    )
    .await
    .expect("resource id");
    let proxy = exec(
        &cloud,
        &gw,
        Op::ApiResource(ApiResourceOp::CreateResource {
            rest_api_id: known(&api),
            parent_id: known(&payments),
            path_part: "{proxy+}".into(),
            path: "/payments/{proxy+}".into(),
        }),
    )
    .await
    .expect("resource id");
    let put_with = |resource: &str, path: &str, method: &str, greedy: bool, uri: &str, auth: &str, key: bool| {
        Op::Method(MethodOp::PutProxyMethod {
            rest_api_id: known(&api),
            resource_id: known(resource),
            path: path.into(),
            http_method: method.into(),
            greedy,
            uri: uri.into(),
            vpc_link_id: known(&link),
            authorization_type: auth.into(),
            authorizer_id: None,
            authorization_scopes: vec![],
            api_key_required: key,
            insecure_skip_verification: false,
            timeout_millis: None,
            replace: auth != "NONE" || key,
        })
    };
    let put = |resource: &str, path: &str, method: &str, greedy: bool, uri: &str| {
        put_with(resource, path, method, greedy, uri, "NONE", false)
    };
    let base = "http://cl-edge.elb.amazonaws.com:8080";
    exec(&cloud, &gw, put(&payments, "/payments", "ANY", false, &format!("{base}/payments"))).await;
    exec(&cloud, &gw, put(&proxy, "/payments/{proxy+}", "ANY", true, &format!("{base}/payments/{{proxy}}"))).await;
    exec(&cloud, &gw, put(&payments, "/payments", "GET", false, &format!("{base}/payments"))).await;
    let deployment = exec(
        &cloud,
        &gw,
        Op::Stage(StageOp::CreateDeployment {
            rest_api_id: known(&api),
            stage: "prod".into(),
            description: "crosslink".into(),
            stage_tags: [(DEPLOYED_HASH.to_string(), "abc".to_string())].into(),
        }),
    )
    .await
    .expect("deployment id");

    let before = calls.lock().unwrap().len();
    let st = observe(&cloud, &gw, &gateway_scope()).await;
    let ops: Vec<_> = calls.lock().unwrap()[before..].iter().map(|c| c.operation).collect();
    assert_eq!(ops.iter().filter(|o| **o == "GetResources").count(), 1, "{ops:?}");
    assert!(!ops.contains(&"GetIntegration") && !ops.contains(&"GetMethod"), "{ops:?}");

    let a = st.rest_apis.iter().find(|a| a.id == api).unwrap();
    let paths: Vec<_> = a.resources.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, vec!["/", "/payments", "/payments/{proxy+}"]);
    let res = |path: &str| a.resources.iter().find(|r| r.path == path).unwrap();
    assert_eq!(res("/payments").id, payments);
    assert_eq!(res("/payments").parent_id.as_deref(), Some(root.id.as_str()));
    assert_eq!(res("/payments/{proxy+}").parent_id.as_deref(), Some(payments.as_str()));
    assert_eq!(res("/payments").methods.keys().collect::<Vec<_>>(), vec!["ANY", "GET"]);
    let m = &res("/payments/{proxy+}").methods["ANY"];
    assert_eq!(m.authorization_type, "NONE");
    let i = m.integration.as_ref().expect("integration comes embedded");
    assert_eq!(i.kind, "HTTP_PROXY");
    assert_eq!(i.http_method.as_deref(), Some("ANY"));
    assert_eq!(i.uri.as_deref(), Some(format!("{base}/payments/{{proxy}}").as_str()));
    assert_eq!(i.connection_type.as_deref(), Some("VPC_LINK"));
    assert_eq!(i.connection_id, None, "moto does not return it (real AWS does)");
    let get = res("/payments").methods["GET"].integration.clone().unwrap();
    assert_eq!(get.http_method.as_deref(), Some("GET"));

    assert_eq!(a.stages.len(), 1);
    assert_eq!(a.stages[0].name, "prod");
    assert_eq!(a.stages[0].deployment_id.as_deref(), Some(deployment.as_str()));
    assert_eq!(a.stages[0].tags, BTreeMap::from([(DEPLOYED_HASH.to_string(), "abc".to_string())]));

    // Putting a method again replaces its integration (AWS answers PutMethod with
    // ConflictException, moto replaces the method).
    exec(&cloud, &gw, put(&proxy, "/payments/{proxy+}", "ANY", true, &format!("{base}/v2/{{proxy}}"))).await;
    let st = observe(&cloud, &gw, &gateway_scope()).await;
    let a = st.rest_apis.iter().find(|a| a.id == api).unwrap();
    let r = a.resources.iter().find(|r| r.id == proxy).unwrap();
    assert_eq!(
        r.methods["ANY"].integration.as_ref().unwrap().uri.as_deref(),
        Some(format!("{base}/v2/{{proxy}}").as_str())
    );
    let conflicts: Vec<_> =
        calls.lock().unwrap().iter().filter(|c| c.outcome != "ok").map(|c| c.code.clone()).collect();
    assert!(conflicts.iter().all(|c| c.as_deref() == Some("ConflictException")), "{conflicts:?}");

    // Other protection: the method is deleted and put again, with AWS_IAM and an API key, read
    // back from GetResources; then back to none.
    let protection = async |auth: &str, key: bool| {
        exec(&cloud, &gw, put_with(&payments, "/payments", "GET", false, &format!("{base}/payments"), auth, key)).await;
        let st = observe(&cloud, &gw, &gateway_scope()).await;
        let a = st.rest_apis.iter().find(|a| a.id == api).unwrap();
        let m = a.resources.iter().find(|r| r.id == payments).unwrap().methods["GET"].clone();
        assert!(m.integration.is_some(), "the integration is put again too");
        (m.authorization_type, m.api_key_required)
    };
    assert_eq!(protection("AWS_IAM", true).await, ("AWS_IAM".to_string(), true));
    assert_eq!(protection("AWS_IAM", false).await, ("AWS_IAM".to_string(), false));

    // A second deployment moves the stage and updates its tag.
    let second = exec(
        &cloud,
        &gw,
        Op::Stage(StageOp::CreateDeployment {
            rest_api_id: known(&api),
            stage: "prod".into(),
            description: "again".into(),
            stage_tags: [(DEPLOYED_HASH.to_string(), "def".to_string())].into(),
        }),
    )
    .await
    .unwrap();
    let st = observe(&cloud, &gw, &gateway_scope()).await;
    let stage = &st.rest_apis.iter().find(|a| a.id == api).unwrap().stages[0];
    assert_eq!(stage.deployment_id.as_deref(), Some(second.as_str()));
    assert_eq!(stage.tags[DEPLOYED_HASH], "def");

    // Someone else's API: its resources are read only when named.
    let apigw = aws_sdk_apigateway::Client::new(&cloud.session(&gw).await.unwrap().config);
    let other = apigw.create_rest_api().name("legacy").send().await.unwrap().id().unwrap().to_string();
    let st = observe(&cloud, &gw, &gateway_scope()).await;
    assert!(st.rest_apis.iter().find(|a| a.id == other).unwrap().resources.is_empty());
    let st = observe(&cloud, &gw, &ObserveScope { rest_api_names: vec!["legacy".into()], ..gateway_scope() }).await;
    assert_eq!(st.rest_apis.iter().find(|a| a.id == other).unwrap().resources.len(), 1);
    let st = observe(&cloud, &gw, &ObserveScope { rest_api_ids: vec![other.clone()], ..gateway_scope() }).await;
    assert_eq!(st.rest_apis.iter().find(|a| a.id == other).unwrap().resources.len(), 1);

    // Deletes.
    exec(
        &cloud,
        &gw,
        Op::Method(MethodOp::DeleteMethod {
            rest_api_id: api.clone(),
            resource_id: payments.clone(),
            path: "/payments".into(),
            http_method: "GET".into(),
        }),
    )
    .await;
    exec(
        &cloud,
        &gw,
        Op::ApiResource(ApiResourceOp::DeleteResource {
            rest_api_id: api.clone(),
            resource_id: proxy.clone(),
            path: "/payments/{proxy+}".into(),
        }),
    )
    .await;
    let st = observe(&cloud, &gw, &gateway_scope()).await;
    let a = st.rest_apis.iter().find(|a| a.id == api).unwrap();
    assert_eq!(a.resources.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(), vec!["/", "/payments"]);
    assert_eq!(a.resources[1].methods.keys().collect::<Vec<_>>(), vec!["ANY"]);

    exec(&cloud, &gw, Op::RestApi(RestApiOp::DeleteRestApi { id: api.clone() })).await;
    exec(&cloud, &gw, Op::VpcLink(VpcLinkOp::DeleteVpcLink { id: link.clone() })).await;
    let st = observe(&cloud, &gw, &gateway_scope()).await;
    assert!(st.rest_apis.iter().all(|a| a.id != api));
    assert!(st.vpc_links.iter().all(|l| l.id != link));

    let gone = Op::Method(MethodOp::DeleteMethod {
        rest_api_id: api.clone(),
        resource_id: payments.clone(),
        path: "/payments".into(),
        http_method: "ANY".into(),
    });
    let err = cloud.execute(&gw, &gone).await.unwrap_err();
    assert_eq!((err.kind, err.code.as_str()), (ErrorKind::NotFound, "NotFoundException"), "{err:?}");
    // moto answers DeleteRestApi of a missing API with an HTML 500 (AWS: NotFoundException): no
    // code, so the status decides.
    let err = cloud.execute(&gw, &Op::RestApi(RestApiOp::DeleteRestApi { id: api.clone() })).await.unwrap_err();
    assert_eq!((err.kind, err.code.as_str()), (ErrorKind::Retryable, "UnknownServiceError"), "{err:?}");
    assert!(err.message.starts_with("HTTP 500: "), "{err:?}");
}

#[tokio::test]
async fn identity_failures_are_reported_per_account() {
    let moto = Moto::start();
    let (cloud, calls) = cloud(&moto).await;

    // The ambient credentials act in 123456789012, not in the account the spec names.
    let wrong = account("service", SERVICE, false);
    match cloud.observe(&wrong, &gateway_scope()).await {
        AccountObservation::Failed { code, message, .. } => {
            assert_eq!(code, "AccountMismatch");
            assert!(message.contains("123456789012") && message.contains(SERVICE), "{message}");
        }
        ok => panic!("expected a failure, got {ok:?}"),
    }
    let err = cloud.execute(&wrong, &Op::VpcLink(VpcLinkOp::DeleteVpcLink { id: "x".into() })).await.unwrap_err();
    assert_eq!((err.kind, err.code.as_str()), (ErrorKind::AccessDenied, "AccountMismatch"));

    // AssumeRole itself fails (moto rejects a session name over 64 characters): the AssumeRole
    // code comes through, not the dispatch failure of the call that needed the credentials.
    let mut bad = account("bad", GATEWAY, true);
    bad.spec.assume_role.as_mut().unwrap().session_name = Some("s".repeat(80));
    match cloud.observe(&bad, &network_scope()).await {
        AccountObservation::Failed { code, message, .. } => {
            assert_eq!(code, "ValidationError", "{message}");
            assert!(message.contains("roleSessionName"), "{message}");
        }
        ok => panic!("expected a failure, got {ok:?}"),
    }

    // A changed spec under the same name gets a new, verified session; failures are not cached.
    let fixed = account("service", SERVICE, true);
    observe(&cloud, &fixed, &network_scope()).await;
    observe(&cloud, &fixed, &network_scope()).await;
    let sts: Vec<_> = calls.lock().unwrap().iter().filter(|c| c.service == "sts").map(|c| c.outcome).collect();
    // wrong x2 (observe, execute: not cached), bad x1, fixed x1 (then cached).
    assert_eq!(sts.len(), 4, "{sts:?}");
    assert_eq!(sts.iter().filter(|o| **o == "ok").count(), 3);
}

/// Sharded runs fence every mutating call: no request once the lease is gone, whether that is
/// found before the first attempt (after the rate-limit wait) or before an attempt of the SDK.
#[tokio::test]
async fn a_mutating_call_is_not_sent_once_the_lease_is_lost() {
    use crosslink_cloud::fence::{self, Fence, LEASE_LOST};
    use std::sync::atomic::{AtomicUsize, Ordering};

    let moto = Moto::start();
    let (cloud, _) = cloud(&moto).await;
    let gw = account("gw", "111111111111", true);
    let create = |name: &str| Op::RestApi(RestApiOp::CreateRestApi { name: name.into(), tags: owned("Gateway/g") });
    let names = |st: &AccountState| st.rest_apis.iter().map(|a| a.name.clone()).collect::<Vec<_>>();
    let mut scope = gateway_scope();
    scope.rest_api_names = vec!["held".into(), "lost".into(), "lost-late".into()];

    // Held: sent.
    let held = Fence::new(|| Ok(()));
    let r = fence::scope(Some(held), cloud.execute(&gw, &create("held"))).await;
    assert!(r.is_ok(), "{r:?}");

    // Lost before the call: not sent.
    let lost = Fence::new(|| Err("lease of unit g expired".into()));
    let e = fence::scope(Some(lost), cloud.execute(&gw, &create("lost"))).await.unwrap_err();
    assert_eq!((e.code.as_str(), e.kind), (LEASE_LOST, ErrorKind::Conflict), "{e}");

    // Lost between the adapter's check and the SDK's attempt: the interceptor stops it.
    let checks = Arc::new(AtomicUsize::new(0));
    let n = checks.clone();
    let late =
        Fence::new(
            move || {
                if n.fetch_add(1, Ordering::SeqCst) == 0 { Ok(()) } else { Err("lease of unit g expired".into()) }
            },
        );
    let e = fence::scope(Some(late), cloud.execute(&gw, &create("lost-late"))).await.unwrap_err();
    assert_eq!(e.code, LEASE_LOST, "{e}");
    assert!(checks.load(Ordering::SeqCst) >= 2, "the SDK attempt checked the fence too");

    // Reads are never fenced, and only the held call reached AWS.
    let st = observe(&cloud, &gw, &scope).await;
    assert_eq!(names(&st), vec!["held".to_string()]);
}

/// Issue 17 (adoption and release of a gateway): moto's TagResource and UntagResource handle stages
/// only, so the wire format of tagging and untagging a VPC link and a REST API is checked against AWS's documented answer (`204`, no body),
/// given by the recording proxy in front of moto: a PUT to `/tags/<the URL-encoded ARN>`
/// (`arn:aws:apigateway:<region>::/vpclinks/<id>`, `.../restapis/<id>`) whose JSON body holds the
/// tags; the SDK takes the answer as success.
#[tokio::test]
async fn tagging_a_vpc_link_and_a_rest_api_puts_their_arns_under_tags() {
    let moto = Moto::start();
    let proxy = crosslink_testkit::Proxy::start(moto.addr);
    let cloud = AwsCloud::new(Connector::from_config(super::config_at(&proxy.endpoint).await))
        .with_rate_limits(crosslink_aws::RateLimits::off());
    let gw = account("shared", GATEWAY, true);
    let lb = "arn:aws:elasticloadbalancing:eu-central-1:111111111111:loadbalancer/net/legacy/50dc6c495c0c9188";
    let link = exec(
        &cloud,
        &gw,
        Op::VpcLink(VpcLinkOp::CreateVpcLink {
            name: "legacy".into(),
            load_balancer_arn: known(lb),
            tags: Tags::new(),
        }),
    )
    .await
    .unwrap();
    let api = exec(&cloud, &gw, Op::RestApi(RestApiOp::CreateRestApi { name: "legacy".into(), tags: Tags::new() }))
        .await
        .unwrap();
    proxy.answer_next("apigateway:TagResource", 204, "application/json", "", 2);
    let want = owned("Gateway/edge");
    exec(&cloud, &gw, Op::VpcLink(VpcLinkOp::TagVpcLink { id: link.clone(), tags: want.clone() })).await;
    exec(&cloud, &gw, Op::RestApi(RestApiOp::TagRestApi { id: api.clone(), tags: want })).await;
    let tagged: Vec<_> = proxy.calls().into_iter().filter(|c| c.operation == "TagResource").collect();
    let encoded = |arn: String| format!("/tags/{}", arn.replace(':', "%3A").replace('/', "%2F"));
    assert_eq!(
        tagged.iter().map(|c| (c.method.as_str(), c.path.clone())).collect::<Vec<_>>(),
        [
            ("PUT", encoded(format!("arn:aws:apigateway:{REGION}::/vpclinks/{link}"))),
            ("PUT", encoded(format!("arn:aws:apigateway:{REGION}::/restapis/{api}"))),
        ]
    );
    for c in &tagged {
        let body: serde_json::Value = serde_json::from_str(&c.body).unwrap();
        assert_eq!(body["tags"][MANAGED_BY], INSTANCE, "{}", c.body);
        assert_eq!(body["tags"][OWNER], "Gateway/edge", "{}", c.body);
    }

    // Released: DELETE on the same paths (the keys in the query), AWS's answer a 204 too.
    proxy.answer_next("apigateway:UntagResource", 204, "application/json", "", 2);
    let keys = vec![MANAGED_BY.to_string(), OWNER.to_string()];
    exec(&cloud, &gw, Op::VpcLink(VpcLinkOp::UntagVpcLink { id: link.clone(), keys: keys.clone() })).await;
    exec(&cloud, &gw, Op::RestApi(RestApiOp::UntagRestApi { id: api.clone(), keys })).await;
    let untagged: Vec<_> = proxy.calls().into_iter().filter(|c| c.operation == "UntagResource").collect();
    assert_eq!(
        untagged.iter().map(|c| (c.method.as_str(), c.path.clone())).collect::<Vec<_>>(),
        [
            ("DELETE", encoded(format!("arn:aws:apigateway:{REGION}::/vpclinks/{link}"))),
            ("DELETE", encoded(format!("arn:aws:apigateway:{REGION}::/restapis/{api}"))),
        ]
    );
}

/// Issue 15 (privateLink): moto answers AcceptVpcEndpointConnections with 500, so its wire format
/// is checked against AWS's documented answer, given by the recording proxy in front of moto: the
/// request is `Action=AcceptVpcEndpointConnections` with the `ServiceId` and each
/// `VpcEndpointId.N`; an answer with an empty `unsuccessful` set is success, and an item in it
/// (AWS answers 200 even then) is the call's error, by its code.
#[tokio::test]
async fn accepting_an_endpoint_connection_sends_the_service_and_endpoints_and_reads_unsuccessful_items() {
    let moto = Moto::start();
    let proxy = crosslink_testkit::Proxy::start(moto.addr);
    let cloud = AwsCloud::new(Connector::from_config(super::config_at(&proxy.endpoint).await))
        .with_rate_limits(crosslink_aws::RateLimits::off());
    let svc = account("svc", SERVICE, true);
    let accept = || {
        Op::EndpointService(EndpointServiceOp::AcceptVpcEndpointConnections {
            service_id: "vpce-svc-0123456789abcdef0".into(),
            endpoint_ids: vec!["vpce-0fedcba9876543210".into()],
        })
    };
    let ok = r#"<AcceptVpcEndpointConnectionsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>986a2264-8a7d-4f4e-a3b2-1f1a52e2b0bd</requestId>
    <unsuccessful/>
</AcceptVpcEndpointConnectionsResponse>"#;
    proxy.answer_next("ec2:AcceptVpcEndpointConnections", 200, "text/xml;charset=UTF-8", ok, 1);
    cloud.execute(&svc, &accept()).await.expect("an empty unsuccessful set is success");
    let calls: Vec<_> = proxy.calls().into_iter().filter(|c| c.operation == "AcceptVpcEndpointConnections").collect();
    assert_eq!(calls.len(), 1);
    let form: BTreeMap<String, String> = url_form(&calls[0].body);
    assert_eq!(form["Action"], "AcceptVpcEndpointConnections");
    assert_eq!(form["ServiceId"], "vpce-svc-0123456789abcdef0");
    assert_eq!(form["VpcEndpointId.1"], "vpce-0fedcba9876543210");

    let refused = r#"<AcceptVpcEndpointConnectionsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>5a2b0c1d-4e3f-4a5b-8c7d-9e0f1a2b3c4d</requestId>
    <unsuccessful>
        <item>
            <error>
                <code>InvalidVpcEndpointId.NotFound</code>
                <message>The Vpc Endpoint Id 'vpce-0fedcba9876543210' does not exist</message>
            </error>
            <resourceId>vpce-0fedcba9876543210</resourceId>
        </item>
    </unsuccessful>
</AcceptVpcEndpointConnectionsResponse>"#;
    proxy.answer_next("ec2:AcceptVpcEndpointConnections", 200, "text/xml;charset=UTF-8", refused, 1);
    let e = cloud.execute(&svc, &accept()).await.unwrap_err();
    assert_eq!(e.code, "InvalidVpcEndpointId.NotFound", "{e:?}");
    assert_eq!(e.kind, ErrorKind::NotFound, "{e:?}");
    assert!(e.message.contains("vpce-0fedcba9876543210"), "{e:?}");
}

/// An `application/x-www-form-urlencoded` body (EC2's query protocol) as a map.
fn url_form(body: &str) -> BTreeMap<String, String> {
    body.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (decode(k), decode(v))).collect()
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned()
}
