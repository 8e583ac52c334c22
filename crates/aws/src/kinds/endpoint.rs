//! A privateLink link's interface VPC endpoint in the gateway VPC, and its network interfaces'
//! addresses (the gateway target group's targets).

use std::collections::HashMap;

use aws_sdk_ec2::types::{ResourceType, TagSpecification, VpcEndpointType};
use crosslink_cloud::{CloudError, ObserveScope, Outcome};
use crosslink_plan::kinds::EndpointOp;
use crosslink_plan::observed::{Endpoint, EndpointInterface};
use crosslink_plan::tags;

use crate::calls::{AwsService::*, Call};
use crate::cloud::{Clients, Ctx};
use crate::errors::known;
use crate::execute::{created, done, ec2_tags as tag_list};
use crate::grants::{Grant, OWNED, Resource, TAGGED_REQUEST, Vpcs, When};
use crate::observe::{EC2_PAGE, ec2_tags};
use crate::ratelimit::Bucket;

const R: &[Bucket] = &[Bucket::Ec2Read];
const W: &[Bucket] = &[Bucket::Ec2Write];

pub const DESCRIBE: Call = Call::read(Ec2, "DescribeVpcEndpoints", &["ec2:DescribeVpcEndpoints"], R);
pub const DESCRIBE_INTERFACES: Call =
    Call::read(Ec2, "DescribeNetworkInterfaces", &["ec2:DescribeNetworkInterfaces"], R);
pub const CREATE: Call = Call::write(Ec2, "CreateVpcEndpoint", &["ec2:CreateVpcEndpoint", "ec2:CreateTags"], W);
pub const DELETE: Call = Call::write(Ec2, "DeleteVpcEndpoints", &["ec2:DeleteVpcEndpoints"], W);

pub static CREATE_IN_GATEWAY_VPC: Grant = Grant {
    sid: "Ec2CreateEndpointInGatewayVpc",
    actions: &["ec2:CreateVpcEndpoint"],
    resources: &[
        Resource::Vpcs(Vpcs::OfGateways),
        Resource::Ec2("subnet/*"),
        Resource::Ec2("security-group/*"),
    ],
    condition: &[],
    when: When::PrivateLinkGateways,
    why: "CreateVpcEndpoint also authorizes the VPC, its subnets and security groups: the gateway VPCs in desired state",
};
pub static CREATE_TAGGED: Grant = Grant {
    sid: "Ec2CreateTaggedEndpoints",
    actions: &["ec2:CreateVpcEndpoint", "ec2:CreateTags"],
    resources: &[Resource::Ec2("vpc-endpoint/*")],
    condition: TAGGED_REQUEST,
    when: When::PrivateLinkGateways,
    why: "a privateLink link's interface endpoint, carrying the managed-by tag",
};
pub static DELETE_OWNED: Grant = Grant {
    sid: "Ec2DeleteOwnedEndpoints",
    actions: &["ec2:DeleteVpcEndpoints"],
    resources: &[Resource::Ec2("vpc-endpoint/*")],
    condition: OWNED,
    when: When::Always,
    why: "removal follows ownership: any interface endpoint carrying the managed-by tag",
};

/// Its reads are granted with the security groups' (`Ec2ReadSecurityGroupsAndEndpoints`).
pub static KIND: super::Kind = super::Kind {
    name: "endpoint",
    calls: &[&DESCRIBE, &DESCRIBE_INTERFACES, &CREATE, &DELETE],
    grants: &[&super::security_group::READ, &CREATE_IN_GATEWAY_VPC, &CREATE_TAGGED, &DELETE_OWNED],
};

/// crosslink's endpoints (by managed-by tag) and their interfaces' addresses and zones.
async fn endpoints(ctx: &Ctx<'_>, c: &Clients, scope: &ObserveScope) -> Result<Vec<Endpoint>, CloudError> {
    let stream = c
        .ec2
        .describe_vpc_endpoints()
        .filters(super::security_group::managed_filter(&scope.instance))
        .max_results(EC2_PAGE)
        .into_paginator()
        .send();
    let pages = ctx.pages(&DESCRIBE, stream, |p| p.next_token()).await?;
    let raw: Vec<_> = pages
        .iter()
        .flat_map(|p| p.vpc_endpoints())
        .filter(|e| tags::is_managed(&ec2_tags(e.tags()), &scope.instance))
        .filter(|e| e.state().is_none_or(|s| s.as_str() != "deleted"))
        .collect();
    let eni_ids: Vec<String> = raw.iter().flat_map(|e| e.network_interface_ids()).cloned().collect();
    let mut interfaces: HashMap<String, EndpointInterface> = HashMap::new();
    for chunk in eni_ids.chunks(200) {
        let req = c.ec2.describe_network_interfaces().set_network_interface_ids(Some(chunk.to_vec())).send();
        let out = ctx.call(&DESCRIBE_INTERFACES, req).await?;
        for n in out.network_interfaces() {
            let (Some(id), Some(ip)) = (n.network_interface_id(), n.private_ip_address().and_then(|i| i.parse().ok()))
            else {
                continue;
            };
            let zone = n.availability_zone().unwrap_or_default().to_string();
            interfaces.insert(id.to_string(), EndpointInterface { ip, availability_zone: zone });
        }
    }
    Ok(raw
        .into_iter()
        .map(|e| Endpoint {
            id: e.vpc_endpoint_id().unwrap_or_default().to_string(),
            vpc_id: e.vpc_id().unwrap_or_default().to_string(),
            service_name: e.service_name().unwrap_or_default().to_string(),
            state: e.state().map(|s| s.as_str().to_string()).unwrap_or_default(),
            subnet_ids: e.subnet_ids().to_vec(),
            security_group_ids: e.groups().iter().filter_map(|g| g.group_id()).map(str::to_string).collect(),
            interfaces: e.network_interface_ids().iter().filter_map(|i| interfaces.get(i).cloned()).collect(),
            tags: ec2_tags(e.tags()),
        })
        .collect())
}

pub(crate) async fn read(ctx: &Ctx<'_>, c: &Clients, scope: &ObserveScope) -> Result<crate::observe::Found, CloudError> {
    crate::observe::store(scope.gateway_side, endpoints(ctx, c, scope), |st, found| st.endpoints = found).await
}

pub(crate) async fn execute(ctx: &Ctx<'_>, c: &Clients, op: &EndpointOp) -> Result<Outcome, CloudError> {
    use EndpointOp::*;
    match op {
        CreateVpcEndpoint { vpc_id, service_name, subnet_ids, security_group_id, tags } => {
            let name = known(service_name, "the endpoint service's name")?;
            let sg = known(security_group_id, "the endpoint's security group")?;
            let req = c
                .ec2
                .create_vpc_endpoint()
                .vpc_endpoint_type(VpcEndpointType::Interface)
                .vpc_id(vpc_id)
                .service_name(name)
                .set_subnet_ids(Some(subnet_ids.clone()))
                .security_group_ids(sg)
                .private_dns_enabled(false)
                .tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::VpcEndpoint)
                        .set_tags(Some(tag_list(tags)))
                        .build(),
                );
            let out = ctx.write(&CREATE, name, req.send()).await?;
            let e = out.vpc_endpoint();
            Ok(Outcome {
                state: e.and_then(|e| e.state()).map(|s| s.as_str().to_string()),
                ..created(e.and_then(|e| e.vpc_endpoint_id()), "VPC endpoint")?
            })
        }
        DeleteVpcEndpoints { endpoint_id } => {
            let req = c.ec2.delete_vpc_endpoints().vpc_endpoint_ids(endpoint_id);
            let out = ctx.write(&DELETE, endpoint_id, req.send()).await?;
            super::endpoint_service::unsuccessful(&DELETE, out.unsuccessful())?;
            done()
        }
    }
}
