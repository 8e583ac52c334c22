//! The security group of a privateLink link's interface endpoint, in the gateway VPC.

use aws_sdk_ec2::types::{Filter, IpPermission, IpRange, ResourceType, TagSpecification};
use crosslink_cloud::{CloudError, ObserveScope, Outcome};
use crosslink_plan::kinds::SecurityGroupOp;
use crosslink_plan::observed::{IngressRule, SecurityGroup};
use crosslink_plan::tags;

use crate::calls::{AwsService::*, Call};
use crate::cloud::{Clients, Ctx};
use crate::errors::known;
use crate::execute::{created, done, ec2_tags as tag_list};
use crate::grants::{Grant, OWNED, Resource, TAGGED_REQUEST, Vpcs, When};
use crate::observe::{EC2_PAGE, ec2_tags};
use crate::ratelimit::Bucket;

const W: &[Bucket] = &[Bucket::Ec2Write];

pub const DESCRIBE: Call =
    Call::read(Ec2, "DescribeSecurityGroups", &["ec2:DescribeSecurityGroups"], &[Bucket::Ec2Read]);
pub const CREATE: Call = Call::write(Ec2, "CreateSecurityGroup", &["ec2:CreateSecurityGroup", "ec2:CreateTags"], W);
pub const AUTHORIZE: Call =
    Call::write(Ec2, "AuthorizeSecurityGroupIngress", &["ec2:AuthorizeSecurityGroupIngress"], W);
pub const REVOKE: Call = Call::write(Ec2, "RevokeSecurityGroupIngress", &["ec2:RevokeSecurityGroupIngress"], W);
pub const DELETE: Call = Call::write(Ec2, "DeleteSecurityGroup", &["ec2:DeleteSecurityGroup"], W);

pub static READ: Grant = Grant {
    sid: "Ec2ReadSecurityGroupsAndEndpoints",
    actions: &["ec2:DescribeSecurityGroups", "ec2:DescribeVpcEndpoints", "ec2:DescribeNetworkInterfaces"],
    resources: &[Resource::Any],
    condition: &[],
    when: When::Always,
    why: "EC2 Describe* actions support no resource-level permissions; crosslink's endpoints and their security groups are found by tag, also after their link left",
};
pub static CREATE_IN_GATEWAY_VPC: Grant = Grant {
    sid: "Ec2CreateSecurityGroupInGatewayVpc",
    actions: &["ec2:CreateSecurityGroup"],
    resources: &[Resource::Vpcs(Vpcs::OfGateways)],
    condition: &[],
    when: When::PrivateLinkGateways,
    why: "CreateSecurityGroup also authorizes the VPC: the gateway VPCs in desired state",
};
pub static CREATE_TAGGED: Grant = Grant {
    sid: "Ec2CreateTaggedSecurityGroups",
    actions: &["ec2:CreateSecurityGroup", "ec2:CreateTags"],
    resources: &[Resource::Ec2("security-group/*")],
    condition: TAGGED_REQUEST,
    when: When::PrivateLinkGateways,
    why: "a privateLink endpoint's security group, carrying the managed-by tag",
};
pub static CHANGE_OWNED: Grant = Grant {
    sid: "Ec2ChangeOwnedSecurityGroups",
    actions: &["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"],
    resources: &[Resource::Ec2("security-group/*")],
    condition: OWNED,
    when: When::PrivateLinkGateways,
    why: "the endpoint's inbound rules, only on security groups carrying the managed-by tag",
};
pub static DELETE_OWNED: Grant = Grant {
    sid: "Ec2DeleteOwnedSecurityGroups",
    actions: &["ec2:DeleteSecurityGroup"],
    resources: &[Resource::Ec2("security-group/*")],
    condition: OWNED,
    when: When::Always,
    why: "removal follows ownership: any security group carrying the managed-by tag",
};

pub static KIND: super::Kind = super::Kind {
    name: "security group",
    calls: &[&DESCRIBE, &CREATE, &AUTHORIZE, &REVOKE, &DELETE],
    grants: &[&READ, &CREATE_IN_GATEWAY_VPC, &CREATE_TAGGED, &CHANGE_OWNED, &DELETE_OWNED],
};

/// The tag filter that finds crosslink's own EC2 resources (moto honours it on these reads; the
/// tags are checked again here).
pub(crate) fn managed_filter(instance: &str) -> Filter {
    Filter::builder().name(format!("tag:{}", tags::MANAGED_BY)).values(instance).build()
}

async fn security_groups(ctx: &Ctx<'_>, c: &Clients, scope: &ObserveScope) -> Result<Vec<SecurityGroup>, CloudError> {
    let stream = c
        .ec2
        .describe_security_groups()
        .filters(managed_filter(&scope.instance))
        .max_results(EC2_PAGE)
        .into_paginator()
        .send();
    let pages = ctx.pages(&DESCRIBE, stream, |p| p.next_token()).await?;
    Ok(pages
        .iter()
        .flat_map(|p| p.security_groups())
        .filter(|g| tags::is_managed(&ec2_tags(g.tags()), &scope.instance))
        .map(|g| SecurityGroup {
            id: g.group_id().unwrap_or_default().to_string(),
            name: g.group_name().unwrap_or_default().to_string(),
            vpc_id: g.vpc_id().unwrap_or_default().to_string(),
            ingress: g
                .ip_permissions()
                .iter()
                .flat_map(|p| {
                    p.ip_ranges().iter().filter_map(|r| r.cidr_ip()?.parse().ok()).map(|cidr| IngressRule {
                        protocol: p.ip_protocol().unwrap_or_default().to_string(),
                        from_port: p.from_port().unwrap_or(-1),
                        to_port: p.to_port().unwrap_or(-1),
                        cidr,
                    })
                })
                .collect(),
            tags: ec2_tags(g.tags()),
        })
        .collect())
}

pub(crate) async fn read(ctx: &Ctx<'_>, c: &Clients, scope: &ObserveScope) -> Result<crate::observe::Found, CloudError> {
    crate::observe::store(scope.gateway_side, security_groups(ctx, c, scope), |st, found| st.security_groups = found).await
}

fn permissions(rules: &[IngressRule]) -> Vec<IpPermission> {
    rules
        .iter()
        .map(|r| {
            IpPermission::builder()
                .ip_protocol(&r.protocol)
                .from_port(r.from_port)
                .to_port(r.to_port)
                .ip_ranges(IpRange::builder().cidr_ip(r.cidr.to_string()).build())
                .build()
        })
        .collect()
}

pub(crate) async fn execute(ctx: &Ctx<'_>, c: &Clients, op: &SecurityGroupOp) -> Result<Outcome, CloudError> {
    use SecurityGroupOp::*;
    match op {
        CreateSecurityGroup { name, description, vpc_id, tags } => {
            let req = c
                .ec2
                .create_security_group()
                .group_name(name)
                .description(description)
                .vpc_id(vpc_id)
                .tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::SecurityGroup)
                        .set_tags(Some(tag_list(tags)))
                        .build(),
                );
            let out = ctx.write(&CREATE, name, req.send()).await?;
            created(out.group_id(), "security group")
        }
        AuthorizeSecurityGroupIngress { group_id, rules } => {
            let id = known(group_id, "the security group")?;
            let req = c.ec2.authorize_security_group_ingress().group_id(id).set_ip_permissions(Some(permissions(rules)));
            ctx.write(&AUTHORIZE, id, req.send()).await?;
            done()
        }
        RevokeSecurityGroupIngress { group_id, rules } => {
            let req =
                c.ec2.revoke_security_group_ingress().group_id(group_id).set_ip_permissions(Some(permissions(rules)));
            ctx.write(&REVOKE, group_id, req.send()).await?;
            done()
        }
        DeleteSecurityGroup { group_id } => {
            let req = c.ec2.delete_security_group().group_id(group_id);
            ctx.write(&DELETE, group_id, req.send()).await?;
            done()
        }
    }
}
