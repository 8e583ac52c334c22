//! Creating a small network to work on (tests, the demo and benchmarks): a VPC, subnets in
//! different zones and a route table serving them. Not used by the controller.

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use crosslink_cloud::{CloudError, ErrorKind};
use ipnet::Ipv4Net;

use crate::errors::from_sdk;
use crate::session::Session;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeededVpc {
    pub vpc_id: String,
    pub cidr: Ipv4Net,
    /// In zones `<region>a`, `<region>b`, ... in this order.
    pub subnet_ids: Vec<String>,
    /// Associated with every subnet.
    pub route_table_id: String,
}

fn name_tag(kind: ResourceType, name: &str) -> TagSpecification {
    TagSpecification::builder().resource_type(kind).tags(Tag::builder().key("Name").value(name).build()).build()
}

fn missing(what: &str) -> CloudError {
    CloudError::new(ErrorKind::Retryable, "MissingId", format!("AWS created the {what} but returned no id"))
}

/// Creates a VPC named `name` with `cidr`, `subnets` /24 subnets (the first /24s of the VPC, one
/// zone each) and one route table associated with all of them.
pub async fn seed_network(
    session: &Session,
    name: &str,
    cidr: Ipv4Net,
    subnets: usize,
) -> Result<SeededVpc, CloudError> {
    let ec2 = aws_sdk_ec2::Client::new(&session.config);
    let vpc = ec2
        .create_vpc()
        .cidr_block(cidr.to_string())
        .tag_specifications(name_tag(ResourceType::Vpc, name))
        .send()
        .await
        .map_err(|e| from_sdk(&e))?;
    let vpc_id = vpc.vpc().and_then(|v| v.vpc_id()).ok_or_else(|| missing("VPC"))?.to_string();

    let blocks: Vec<Ipv4Net> =
        cidr.subnets(24.max(cidr.prefix_len())).map(|s| s.take(subnets).collect()).unwrap_or_default();
    if blocks.len() < subnets {
        return Err(CloudError::new(
            ErrorKind::Permanent,
            "InvalidParameterValue",
            format!("{cidr} has room for {} /24 subnets, not {subnets}", blocks.len()),
        ));
    }
    // The region's zones in name order (`<region>a`, `b`, ...), reused in turn when there are
    // more subnets than zones.
    let zones = ec2.describe_availability_zones().send().await.map_err(|e| from_sdk(&e))?;
    let mut zones: Vec<String> =
        zones.availability_zones().iter().filter_map(|z| z.zone_name()).map(str::to_string).collect();
    zones.sort();
    if zones.is_empty() {
        zones.push(format!("{}a", session.region));
    }
    let mut subnet_ids = Vec::with_capacity(subnets);
    for (i, block) in blocks.iter().enumerate() {
        let zone = &zones[i % zones.len()];
        let out = ec2
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block(block.to_string())
            .availability_zone(zone)
            .tag_specifications(name_tag(ResourceType::Subnet, &format!("{name}-{i}")))
            .send()
            .await
            .map_err(|e| from_sdk(&e))?;
        subnet_ids.push(out.subnet().and_then(|s| s.subnet_id()).ok_or_else(|| missing("subnet"))?.to_string());
    }

    let table = ec2
        .create_route_table()
        .vpc_id(&vpc_id)
        .tag_specifications(name_tag(ResourceType::RouteTable, name))
        .send()
        .await
        .map_err(|e| from_sdk(&e))?;
    let route_table_id =
        table.route_table().and_then(|t| t.route_table_id()).ok_or_else(|| missing("route table"))?.to_string();
    for subnet in &subnet_ids {
        ec2.associate_route_table()
            .route_table_id(&route_table_id)
            .subnet_id(subnet)
            .send()
            .await
            .map_err(|e| from_sdk(&e))?;
    }
    Ok(SeededVpc { vpc_id, cidr, subnet_ids, route_table_id })
}

/// Adds another route table to a VPC (some service VPCs route from several tables).
pub async fn seed_route_table(session: &Session, vpc_id: &str, name: &str) -> Result<String, CloudError> {
    let ec2 = aws_sdk_ec2::Client::new(&session.config);
    let table = ec2
        .create_route_table()
        .vpc_id(vpc_id)
        .tag_specifications(name_tag(ResourceType::RouteTable, name))
        .send()
        .await
        .map_err(|e| from_sdk(&e))?;
    Ok(table.route_table().and_then(|t| t.route_table_id()).ok_or_else(|| missing("route table"))?.to_string())
}

/// Sets API Gateway's CloudWatch Logs role of the account (UpdateAccount), as an administrator
/// does once per account and region before any stage logs to CloudWatch: crosslink itself never
/// changes account settings (the demo and the benchmarks call this).
pub async fn seed_api_gateway_logging_role(session: &Session, role_arn: &str) -> Result<(), CloudError> {
    use aws_sdk_apigateway::types::{Op, PatchOperation};
    let apigw = aws_sdk_apigateway::Client::new(&session.config);
    let op = PatchOperation::builder().op(Op::Replace).path("/cloudwatchRoleArn").value(role_arn).build();
    apigw.update_account().patch_operations(op).send().await.map_err(|e| from_sdk(&e))?;
    Ok(())
}

/// Creates a regional WAF web ACL that allows everything (the demo's stand-in for the
/// organisation's rules); returns its ARN.
pub async fn seed_web_acl(session: &Session, name: &str) -> Result<String, CloudError> {
    use aws_sdk_wafv2::types::{AllowAction, DefaultAction, Scope, VisibilityConfig};
    let waf = aws_sdk_wafv2::Client::new(&session.config);
    let visibility = VisibilityConfig::builder()
        .sampled_requests_enabled(true)
        .cloud_watch_metrics_enabled(true)
        .metric_name(name)
        .build()
        .map_err(|e| CloudError::new(ErrorKind::Permanent, "InvalidParameter", e.to_string()))?;
    let out = waf
        .create_web_acl()
        .name(name)
        .scope(Scope::Regional)
        .default_action(DefaultAction::builder().allow(AllowAction::builder().build()).build())
        .visibility_config(visibility)
        .send()
        .await
        .map_err(|e| from_sdk(&e))?;
    out.summary().and_then(|s| s.arn()).map(str::to_string).ok_or_else(|| missing("web ACL"))
}

/// The ids of a link built by hand (`seed_link_by_hand`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandBuiltLink {
    pub load_balancer_arn: String,
    pub dns_name: String,
    pub target_group_arn: String,
    pub listener_arn: String,
    pub peering_id: String,
    pub vpc_link_id: String,
    pub rest_api_id: String,
    /// The ids of `/payments` and `/payments/{proxy+}`.
    pub resource_ids: [String; 2],
}

/// A link built without crosslink, the way an engineer does it step by step in the console (the
/// brownfield that `crosslink discover` and `adoption: Adopt` take over): in the gateway account an
/// internal NLB `legacy-nlb` in `gw`'s subnets, an IP target group `payments-tg` (TCP 8080, a 10 s
/// health check) with `target_ip`:8080, a TCP listener on 9001; a peering from `gw` to `svc`
/// accepted by the service account, with a route each way; a VPC link to the NLB; a REST API
/// `legacy-api` whose `/payments` and `/payments/{proxy+}` forward (HTTP_PROXY, ANY) through it to
/// `http://<nlb>:9001/payments[/{proxy}]`, deployed to `prod`. No crosslink tag anywhere.
pub async fn seed_link_by_hand(
    gw_session: &Session,
    svc_session: &Session,
    gw: &SeededVpc,
    svc: &SeededVpc,
    target_ip: &str,
) -> Result<HandBuiltLink, CloudError> {
    use aws_sdk_apigateway::types::{ConnectionType, IntegrationType};
    use aws_sdk_elasticloadbalancingv2::types::{
        Action, ActionTypeEnum, LoadBalancerSchemeEnum, LoadBalancerTypeEnum, ProtocolEnum, TargetDescription,
        TargetTypeEnum,
    };
    let (gw_ec2, svc_ec2) =
        (aws_sdk_ec2::Client::new(&gw_session.config), aws_sdk_ec2::Client::new(&svc_session.config));
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&gw_session.config);
    let apigw = aws_sdk_apigateway::Client::new(&gw_session.config);
    let id = |v: Option<&str>, what: &str| v.map(str::to_string).ok_or_else(|| missing(what));

    // 1. The load balancer, its target group (a target in the service VPC) and listener.
    let lb = elb
        .create_load_balancer()
        .name("legacy-nlb")
        .r#type(LoadBalancerTypeEnum::Network)
        .scheme(LoadBalancerSchemeEnum::Internal)
        .set_subnets(Some(gw.subnet_ids.clone()))
        .send()
        .await
        .map_err(|e| from_sdk(&e))?;
    let lb = lb.load_balancers().first().ok_or_else(|| missing("load balancer"))?;
    let (load_balancer_arn, dns_name) = (id(lb.load_balancer_arn(), "load balancer")?, id(lb.dns_name(), "DNS name")?);
    let tg = elb
        .create_target_group()
        .name("payments-tg")
        .protocol(ProtocolEnum::Tcp)
        .port(8080)
        .vpc_id(&gw.vpc_id)
        .target_type(TargetTypeEnum::Ip)
        .health_check_interval_seconds(10)
        .send()
        .await
        .map_err(|e| from_sdk(&e))?;
    let target_group_arn = id(tg.target_groups().first().and_then(|t| t.target_group_arn()), "target group")?;
    let target = TargetDescription::builder().id(target_ip).port(8080).availability_zone("all").build();
    elb.register_targets()
        .target_group_arn(&target_group_arn)
        .targets(target)
        .send()
        .await
        .map_err(|e| from_sdk(&e))?;
    let forward = Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(&target_group_arn).build();
    let listener = elb
        .create_listener()
        .load_balancer_arn(&load_balancer_arn)
        .protocol(ProtocolEnum::Tcp)
        .port(9001)
        .default_actions(forward)
        .send()
        .await
        .map_err(|e| from_sdk(&e))?;
    let listener_arn = id(listener.listeners().first().and_then(|l| l.listener_arn()), "listener")?;

    // 2. The peering, accepted by the service account, with a route each way.
    let pcx = gw_ec2
        .create_vpc_peering_connection()
        .vpc_id(&gw.vpc_id)
        .peer_vpc_id(&svc.vpc_id)
        .peer_owner_id(&svc_session.account_id)
        .peer_region(&svc_session.region)
        .send()
        .await
        .map_err(|e| from_sdk(&e))?;
    let peering_id = id(pcx.vpc_peering_connection().and_then(|p| p.vpc_peering_connection_id()), "peering")?;
    svc_ec2
        .accept_vpc_peering_connection()
        .vpc_peering_connection_id(&peering_id)
        .send()
        .await
        .map_err(|e| from_sdk(&e))?;
    for (ec2, rtb, dest) in [(&gw_ec2, &gw.route_table_id, svc.cidr), (&svc_ec2, &svc.route_table_id, gw.cidr)] {
        ec2.create_route()
            .route_table_id(rtb)
            .destination_cidr_block(dest.to_string())
            .vpc_peering_connection_id(&peering_id)
            .send()
            .await
            .map_err(|e| from_sdk(&e))?;
    }

    // 3. The VPC link, the API and its methods, the deployment.
    let link = apigw
        .create_vpc_link()
        .name("legacy-link")
        .target_arns(&load_balancer_arn)
        .send()
        .await
        .map_err(|e| from_sdk(&e))?;
    let vpc_link_id = id(link.id(), "VPC link")?;
    let api = apigw.create_rest_api().name("legacy-api").send().await.map_err(|e| from_sdk(&e))?;
    let rest_api_id = id(api.id(), "REST API")?;
    let root = apigw.get_resources().rest_api_id(&rest_api_id).send().await.map_err(|e| from_sdk(&e))?;
    let root = id(root.items().iter().find(|r| r.path() == Some("/")).and_then(|r| r.id()), "root resource")?;
    let payments = apigw
        .create_resource()
        .rest_api_id(&rest_api_id)
        .parent_id(&root)
        .path_part("payments")
        .send()
        .await
        .map_err(|e| from_sdk(&e))?;
    let payments = id(payments.id(), "resource")?;
    let proxy = apigw
        .create_resource()
        .rest_api_id(&rest_api_id)
        .parent_id(&payments)
        .path_part("{proxy+}")
        .send()
        .await
        .map_err(|e| from_sdk(&e))?;
    let proxy = id(proxy.id(), "resource")?;
    for (resource, uri) in [
        (&payments, format!("http://{dns_name}:9001/payments")),
        (&proxy, format!("http://{dns_name}:9001/payments/{{proxy}}")),
    ] {
        apigw
            .put_method()
            .rest_api_id(&rest_api_id)
            .resource_id(resource)
            .http_method("ANY")
            .authorization_type("NONE")
            .send()
            .await
            .map_err(|e| from_sdk(&e))?;
        apigw
            .put_integration()
            .rest_api_id(&rest_api_id)
            .resource_id(resource)
            .http_method("ANY")
            .r#type(IntegrationType::HttpProxy)
            .integration_http_method("ANY")
            .uri(uri)
            .connection_type(ConnectionType::VpcLink)
            .connection_id(&vpc_link_id)
            .send()
            .await
            .map_err(|e| from_sdk(&e))?;
    }
    apigw.create_deployment().rest_api_id(&rest_api_id).stage_name("prod").send().await.map_err(|e| from_sdk(&e))?;
    Ok(HandBuiltLink {
        load_balancer_arn,
        dns_name,
        target_group_arn,
        listener_arn,
        peering_id,
        vpc_link_id,
        rest_api_id,
        resource_ids: [payments, proxy],
    })
}
