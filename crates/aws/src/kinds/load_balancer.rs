//! The gateway's internal Network Load Balancer, and the ELBv2 tag calls that every ELBv2 kind
//! (load balancer, target group, listener) shares.

use crosslink_cloud::{CloudError, ObserveScope};
use crosslink_plan::observed::{Listener, LoadBalancer};
use crosslink_plan::tags::is_managed;
use futures::{StreamExt, TryStreamExt};

use crate::calls::{AwsService::*, Call};
use crate::cloud::{Clients, Ctx};
use crate::kinds;
use crate::observe::{ELB_CONCURRENCY, ELB_PAGE, elb_tags};
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

pub static KIND: super::Kind =
    super::Kind { name: "load balancer", calls: &[&DESCRIBE, &CREATE, &DELETE, &DESCRIBE_TAGS, &ADD_TAGS] };

// ---- Reading -----------------------------------------------------------------------------------

pub(crate) async fn load_balancers(
    ctx: &Ctx<'_>,
    c: &Clients,
    scope: &ObserveScope,
) -> Result<(Vec<LoadBalancer>, Vec<Listener>), CloudError> {
    let stream = c.elbv2.describe_load_balancers().page_size(ELB_PAGE).into_paginator().send();
    let pages = ctx.pages(&kinds::load_balancer::DESCRIBE, stream, |p| p.next_marker()).await?;
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

    let wanted: Vec<String> = load_balancers
        .iter()
        .filter(|l| {
            is_managed(&l.tags, &scope.instance)
                || scope.load_balancer_names.contains(&l.name)
                || scope.load_balancer_arns.contains(&l.arn)
        })
        .map(|l| l.arn.clone())
        .collect();
    let per_lb: Vec<Vec<_>> = futures::stream::iter(wanted)
        .map(|arn| async move {
            let stream =
                c.elbv2.describe_listeners().load_balancer_arn(arn).page_size(ELB_PAGE).into_paginator().send();
            ctx.pages(&kinds::listener::DESCRIBE, stream, |p| p.next_marker()).await
        })
        .buffered(ELB_CONCURRENCY)
        .try_collect()
        .await?;
    let raw: Vec<_> =
        per_lb.iter().flatten().flat_map(|p| p.listeners()).filter(|l| l.listener_arn().is_some()).collect();
    let mut tags = elb_tags(ctx, c, raw.iter().filter_map(|l| l.listener_arn()).map(str::to_string).collect()).await?;
    let listeners = raw
        .iter()
        .map(|l| {
            let arn = l.listener_arn().unwrap_or_default().to_string();
            Listener {
                load_balancer_arn: l.load_balancer_arn().unwrap_or_default().to_string(),
                port: l.port().and_then(|p| u16::try_from(p).ok()).unwrap_or_default(),
                protocol: l.protocol().map(|p| p.as_str().to_string()).unwrap_or_default(),
                target_group_arn: super::listener::forward_target(l.default_actions()),
                tags: tags.remove(&arn).unwrap_or_default(),
                arn,
            }
        })
        .collect();
    Ok((load_balancers, listeners))
}
