//! The gateway's internal Network Load Balancer, and the ELBv2 tag calls that every ELBv2 kind
//! (load balancer, target group, listener) shares.

use aws_sdk_elasticloadbalancingv2::types::{IpAddressType, LoadBalancerSchemeEnum, LoadBalancerTypeEnum};
use crosslink_cloud::Outcome;
use crosslink_plan::kinds::LoadBalancerOp;
use crate::execute::{created, done, elb_tags as tags_of};

use crosslink_cloud::{CloudError, ObserveScope};
use crosslink_plan::observed::{Listener, LoadBalancer};

use crate::calls::{AwsService::*, Call};
use crate::cloud::{Clients, Ctx};
use crate::grants::Condition::*;
use crate::grants::{Grant, IN_REGION, OWNED, OWNED_TAGGING, Resource, TAGGED_REQUEST, When};
use crate::observe::{ELB_PAGE, elb_tags};
use crate::ratelimit::Bucket;

const B: &[Bucket] = &[Bucket::Elbv2];

pub const DESCRIBE: Call =
    Call::read(Elbv2, "DescribeLoadBalancers", &["elasticloadbalancing:DescribeLoadBalancers"], B);
pub const CREATE: Call = Call::write(
    Elbv2,
    "CreateLoadBalancer",
    &["elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:AddTags"],
    B,
);
pub const DELETE: Call = Call::write(Elbv2, "DeleteLoadBalancer", &["elasticloadbalancing:DeleteLoadBalancer"], B);
/// Tags of load balancers, target groups and listeners, 20 ARNs a request.
pub const DESCRIBE_TAGS: Call = Call::read(Elbv2, "DescribeTags", &["elasticloadbalancing:DescribeTags"], B);
/// Sets tags on any ELBv2 resource (tag drift).
pub const ADD_TAGS: Call = Call::write(Elbv2, "AddTags", &["elasticloadbalancing:AddTags"], B);
/// Removes crosslink's tags from any ELBv2 resource (`crosslink release`).
pub const REMOVE_TAGS: Call = Call::write(Elbv2, "RemoveTags", &["elasticloadbalancing:RemoveTags"], B);

// ---- Permissions -------------------------------------------------------------------------------
// The reads, deletes, tag-on-create and changes of every ELBv2 kind (load balancer, target group,
// targets, listener) are one statement each, declared here and listed by each kind they serve.
// Reading and removing are granted wherever the engine looks for crosslink's resources, by
// ownership tag alone, whether or not desired state still puts a gateway there.

/// Every ELBv2 read crosslink makes.
const READ_ACTIONS: &[&str] = &[
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:DescribeTags",
];

pub static READ: Grant = Grant {
    sid: "ElbReadNoResourceLevel",
    actions: READ_ACTIONS,
    resources: &[Resource::Any],
    condition: IN_REGION,
    when: When::GatewaySide,
    why: "ELBv2 Describe* actions support no resource-level permissions (DescribeLoadBalancers also serves API Gateway's VPC link checks)",
};
pub static DELETE_OWNED: Grant = Grant {
    sid: "ElbDeleteOwnedResources",
    actions: &[
        "elasticloadbalancing:DeleteListener",
        "elasticloadbalancing:DeleteLoadBalancer",
        "elasticloadbalancing:DeleteTargetGroup",
        "elasticloadbalancing:DeregisterTargets",
    ],
    resources: &[Resource::Elb("loadbalancer/net/*"), Resource::Elb("targetgroup/*"), Resource::Elb("listener/net/*")],
    condition: OWNED,
    when: When::GatewaySide,
    why: "removal follows ownership, not desired state: any load balancer, listener or target group carrying the managed-by tag (also those of links and gateways removed from desired state)",
};
pub static CREATE_TAGGED_INTERNAL: Grant = Grant {
    sid: "ElbCreateTaggedInternalLoadBalancer",
    actions: &["elasticloadbalancing:CreateLoadBalancer"],
    resources: &[Resource::NamedLoadBalancers],
    condition: &[TaggedRequest, CrosslinkTagKeys, Equals("elasticloadbalancing:Scheme", &["internal"])],
    when: When::Gateways,
    why: "only the NLB names in desired state, internal, carrying the managed-by tag",
};
pub static TAG_ON_CREATE: Grant = Grant {
    sid: "ElbTagOnCreate",
    actions: &["elasticloadbalancing:AddTags"],
    resources: &[Resource::Elb("loadbalancer/net/*"), Resource::Elb("targetgroup/*"), Resource::Elb("listener/net/*")],
    condition: &[
        TaggedRequest,
        CrosslinkTagKeys,
        Equals("elasticloadbalancing:CreateAction", &["CreateListener", "CreateLoadBalancer", "CreateTargetGroup"]),
    ],
    when: When::Gateways,
    why: "tags passed to a Create* call are authorized as elasticloadbalancing:AddTags with elasticloadbalancing:CreateAction",
};
pub static CHANGE_OWNED: Grant = Grant {
    sid: "ElbChangeOwnedResources",
    actions: &[
        "elasticloadbalancing:AddTags",
        "elasticloadbalancing:ModifyListener",
        "elasticloadbalancing:ModifyTargetGroup",
        "elasticloadbalancing:RegisterTargets",
    ],
    resources: &[Resource::Elb("loadbalancer/net/*"), Resource::Elb("targetgroup/*"), Resource::Elb("listener/net/*")],
    condition: OWNED_TAGGING,
    when: When::Gateways,
    why: "every change to an existing load balancer, listener or target group requires the managed-by tag on it",
};

pub static RELEASE_OWNED: Grant = Grant {
    sid: "ElbReleaseOwnedResources",
    actions: &["elasticloadbalancing:RemoveTags"],
    resources: &[Resource::Elb("loadbalancer/net/*"), Resource::Elb("targetgroup/*"), Resource::Elb("listener/net/*")],
    condition: OWNED_TAGGING,
    when: When::GatewaySide,
    why: "crosslink release: removing crosslink's own tag keys, only from what carries the managed-by tag (released objects have left desired state)",
};

/// A gateway's adoption (`adoption: Adopt`) tags its NLB made without crosslink: no managed-by tag
/// to condition on yet, so only while a gateway adopts, and only crosslink's keys. (Its VPC link
/// and REST API are tagged under `ApiGatewayTagStagesNoResourceTag`.)
pub static ADOPT_UNTAGGED: Grant = Grant {
    sid: "ElbAdoptLoadBalancers",
    actions: &["elasticloadbalancing:AddTags"],
    resources: &[Resource::Elb("loadbalancer/net/*")],
    condition: TAGGED_REQUEST,
    when: When::AdoptingGateways,
    why: "a gateway's adoption tags an NLB built without crosslink (it carries no managed-by tag yet); granted only while a gateway has adoption: Adopt",
};

/// The service side's NLB, target group, listener and targets: the ELBv2 statements of a gateway,
/// granted where a privateLink link's service side is, and listed by each ELBv2 kind.
pub static ELB_SERVICE_SIDE: Grant = Grant {
    sid: "ElbPrivateLinkServiceSide",
    actions: READ_ACTIONS,
    resources: &[Resource::Any],
    condition: &[],
    when: When::PrivateLinkServices,
    why: "ELBv2 Describe* actions support no resource-level permissions: the service-side NLB of privateLink links",
};
pub static ELB_SERVICE_SIDE_CREATE: Grant = Grant {
    sid: "ElbPrivateLinkServiceSideCreateTagged",
    actions: &[
        "elasticloadbalancing:CreateLoadBalancer",
        "elasticloadbalancing:CreateTargetGroup",
        "elasticloadbalancing:CreateListener",
        "elasticloadbalancing:AddTags",
    ],
    resources: &[Resource::Elb("loadbalancer/net/*"), Resource::Elb("targetgroup/*"), Resource::Elb("listener/net/*")],
    condition: TAGGED_REQUEST,
    when: When::PrivateLinkServices,
    why: "the service side's NLB, target group and listener, each carrying the managed-by tag",
};
pub static ELB_SERVICE_SIDE_OWNED: Grant = Grant {
    sid: "ElbPrivateLinkServiceSideOwned",
    actions: &[
        "elasticloadbalancing:RegisterTargets",
        "elasticloadbalancing:DeregisterTargets",
        "elasticloadbalancing:ModifyTargetGroup",
        "elasticloadbalancing:ModifyListener",
        "elasticloadbalancing:DeleteListener",
        "elasticloadbalancing:DeleteTargetGroup",
        "elasticloadbalancing:DeleteLoadBalancer",
    ],
    resources: &[Resource::Elb("loadbalancer/net/*"), Resource::Elb("targetgroup/*"), Resource::Elb("listener/net/*")],
    condition: OWNED,
    when: When::PrivateLinkServices,
    why: "changes and removal of the service side's NLB, target group and listener: only what carries the managed-by tag",
};

pub static KIND: super::Kind = super::Kind {
    name: "load balancer",
    calls: &[&DESCRIBE, &CREATE, &DELETE, &DESCRIBE_TAGS, &ADD_TAGS, &REMOVE_TAGS],
    grants: &[
        &READ,
        &DELETE_OWNED,
        &CREATE_TAGGED_INTERNAL,
        &TAG_ON_CREATE,
        &CHANGE_OWNED,
        &RELEASE_OWNED,
        &ADOPT_UNTAGGED,
        &ELB_SERVICE_SIDE,
        &ELB_SERVICE_SIDE_CREATE,
        &ELB_SERVICE_SIDE_OWNED,
    ],
};

// ---- Reading -----------------------------------------------------------------------------------

pub(crate) async fn load_balancers(
    ctx: &Ctx<'_>,
    c: &Clients,
    scope: &ObserveScope,
) -> Result<(Vec<LoadBalancer>, Vec<Listener>), CloudError> {
    let stream = c.elbv2.describe_load_balancers().page_size(ELB_PAGE).into_paginator().send();
    let pages = ctx.pages(&DESCRIBE, stream, |p| p.next_marker()).await?;
    let raw: Vec<_> =
        pages.iter().flat_map(|p| p.load_balancers()).filter(|l| l.load_balancer_arn().is_some()).collect();
    let mut tags =
        elb_tags(ctx, c, raw.iter().filter_map(|l| l.load_balancer_arn()).map(str::to_string).collect()).await?;
    let load_balancers: Vec<LoadBalancer> = raw
        .iter()
        .map(|l| {
            let arn = l.load_balancer_arn().unwrap_or_default().to_string();
            LoadBalancer {
                name: l.load_balancer_name().unwrap_or_default().to_string(),
                dns_name: l.dns_name().unwrap_or_default().to_string(),
                vpc_id: l.vpc_id().unwrap_or_default().to_string(),
                kind: l.r#type().map(|t| t.as_str().to_string()).unwrap_or_default(),
                internal: l.scheme().is_some_and(|s| s.as_str() == "internal"),
                state: l.state().and_then(|s| s.code()).map(|s| s.as_str().to_string()).unwrap_or_default(),
                subnet_ids: l.availability_zones().iter().filter_map(|z| z.subnet_id()).map(str::to_string).collect(),
                tags: tags.remove(&arn).unwrap_or_default(),
                arn,
            }
        })
        .collect();

    let listeners = super::listener::listeners(ctx, c, scope, &load_balancers).await?;
    Ok((load_balancers, listeners))
}

// ---- Changing ----------------------------------------------------------------------------------

pub(crate) async fn execute(ctx: &Ctx<'_>, c: &Clients, op: &LoadBalancerOp) -> Result<Outcome, CloudError> {
    use LoadBalancerOp::*;
    match op {
        CreateLoadBalancer { name, subnet_ids, tags } => {
            let req = c
                .elbv2
                .create_load_balancer()
                .name(name)
                .r#type(LoadBalancerTypeEnum::Network)
                .scheme(LoadBalancerSchemeEnum::Internal)
                .ip_address_type(IpAddressType::Ipv4)
                .set_subnets(Some(subnet_ids.clone()))
                .set_tags(tags_of(tags));
            let out = ctx.write(&CREATE, name, req.send()).await?;
            let lb = out.load_balancers().first();
            Ok(Outcome {
                dns_name: lb.and_then(|l| l.dns_name()).map(str::to_string),
                state: lb.and_then(|l| l.state()).and_then(|s| s.code()).map(|c| c.as_str().to_string()),
                ..created(lb.and_then(|l| l.load_balancer_arn()), "load balancer")?
            })
        }
        DeleteLoadBalancer { arn } => {
            let req = c.elbv2.delete_load_balancer().load_balancer_arn(arn);
            ctx.write(&DELETE, arn, req.send()).await?;
            done()
        }
        AddElbTags { arn, tags } => {
            let Some(tags) = tags_of(tags) else { return done() };
            let req = c.elbv2.add_tags().resource_arns(arn).set_tags(Some(tags));
            ctx.write(&ADD_TAGS, arn, req.send()).await?;
            done()
        }
        RemoveElbTags { arn, keys } => {
            if keys.is_empty() {
                return done();
            }
            let req = c.elbv2.remove_tags().resource_arns(arn).set_tag_keys(Some(keys.clone()));
            ctx.write(&REMOVE_TAGS, arn, req.send()).await?;
            done()
        }
    }
}

/// The account's load balancers and their listeners, on the gateway side.
pub(crate) async fn read(
    ctx: &Ctx<'_>,
    c: &Clients,
    scope: &crosslink_cloud::ObserveScope,
) -> Result<crate::observe::Found, crosslink_cloud::CloudError> {
    crate::observe::store(scope.gateway_side || scope.private_link, load_balancers(ctx, c, scope), |st, (load_balancers, listeners)| {
        st.load_balancers = load_balancers;
        st.listeners = listeners;
    })
    .await
}
