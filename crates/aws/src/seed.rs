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
