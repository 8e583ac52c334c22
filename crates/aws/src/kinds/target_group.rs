//! IP target groups, one per link.

use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, TargetTypeEnum};
use crosslink_cloud::Outcome;
use crosslink_plan::kinds::TargetGroupOp;
use crate::execute::{created, done, elb_tags as tags_of};

use crosslink_cloud::{CloudError, ObserveScope};
use crosslink_plan::observed::{HealthCheckSettings, TargetGroup};

use crate::calls::{AwsService::*, Call};
use crate::cloud::{Clients, Ctx};
use crate::grants::{Grant, Resource, TAGGED_REQUEST, When};
use crate::kinds::load_balancer;
use crate::observe::{ELB_PAGE, elb_tags};
use crate::ratelimit::Bucket;

const B: &[Bucket] = &[Bucket::Elbv2];

pub const DESCRIBE: Call = Call::read(Elbv2, "DescribeTargetGroups", &["elasticloadbalancing:DescribeTargetGroups"], B);
pub const CREATE: Call = Call::write(
    Elbv2,
    "CreateTargetGroup",
    &["elasticloadbalancing:CreateTargetGroup", "elasticloadbalancing:AddTags"],
    B,
);
pub const MODIFY: Call = Call::write(Elbv2, "ModifyTargetGroup", &["elasticloadbalancing:ModifyTargetGroup"], B);
pub const DELETE: Call = Call::write(Elbv2, "DeleteTargetGroup", &["elasticloadbalancing:DeleteTargetGroup"], B);

pub static CREATE_TAGGED: Grant = Grant {
    sid: "ElbCreateTaggedTargetGroups",
    actions: &["elasticloadbalancing:CreateTargetGroup"],
    resources: &[Resource::Elb("targetgroup/*")],
    condition: TAGGED_REQUEST,
    when: When::Gateways,
    why: "target groups are named by crosslink per link; the managed-by request tag is required",
};

/// Reading, tagging, changing and deleting are the ELBv2 statements of `load_balancer`.
pub static KIND: super::Kind = super::Kind {
    name: "target group",
    calls: &[&DESCRIBE, &CREATE, &MODIFY, &DELETE],
    grants: &[
        &load_balancer::READ,
        &load_balancer::DELETE_OWNED,
        &load_balancer::ELB_SERVICE_SIDE,
        &load_balancer::ELB_SERVICE_SIDE_CREATE,
        &load_balancer::ELB_SERVICE_SIDE_OWNED,
        &CREATE_TAGGED,
        &load_balancer::TAG_ON_CREATE,
        &load_balancer::CHANGE_OWNED,
    ],
};

// ---- Reading -----------------------------------------------------------------------------------

pub(crate) async fn target_groups(
    ctx: &Ctx<'_>,
    c: &Clients,
    scope: &ObserveScope,
) -> Result<Vec<TargetGroup>, CloudError> {
    let stream = c.elbv2.describe_target_groups().page_size(ELB_PAGE).into_paginator().send();
    let pages = ctx.pages(&DESCRIBE, stream, |p| p.next_marker()).await?;
    let raw: Vec<_> = pages.iter().flat_map(|p| p.target_groups()).filter(|t| t.target_group_arn().is_some()).collect();
    let mut tags =
        elb_tags(ctx, c, raw.iter().filter_map(|t| t.target_group_arn()).map(str::to_string).collect()).await?;
    let mut groups: Vec<TargetGroup> = raw
        .iter()
        .map(|t| {
            let arn = t.target_group_arn().unwrap_or_default().to_string();
            let u16_of = |v: Option<i32>| v.and_then(|v| u16::try_from(v).ok()).unwrap_or_default();
            let u8_of = |v: Option<i32>| v.and_then(|v| u8::try_from(v).ok()).unwrap_or_default();
            TargetGroup {
                name: t.target_group_name().unwrap_or_default().to_string(),
                vpc_id: t.vpc_id().unwrap_or_default().to_string(),
                protocol: t.protocol().map(|p| p.as_str().to_string()).unwrap_or_default(),
                port: u16_of(t.port()),
                target_type: t.target_type().map(|p| p.as_str().to_string()).unwrap_or_default(),
                health_check: HealthCheckSettings {
                    protocol: t.health_check_protocol().map(|p| p.as_str().to_string()).unwrap_or_default(),
                    path: t.health_check_path().map(str::to_string),
                    port: t.health_check_port().unwrap_or("traffic-port").to_string(),
                    interval_seconds: u16_of(t.health_check_interval_seconds()),
                    healthy_threshold: u8_of(t.healthy_threshold_count()),
                    unhealthy_threshold: u8_of(t.unhealthy_threshold_count()),
                },
                tags: tags.remove(&arn).unwrap_or_default(),
                targets: Vec::new(),
                arn,
            }
        })
        .collect();

    super::targets::read_into(ctx, c, scope, &mut groups).await?;
    Ok(groups)
}

// ---- Changing ----------------------------------------------------------------------------------

/// A path is only valid on HTTP(S) health checks; NLB TCP checks reject it.
fn health_path(hc: &HealthCheckSettings) -> Option<String> {
    matches!(hc.protocol.to_ascii_uppercase().as_str(), "HTTP" | "HTTPS").then(|| hc.path.clone()).flatten()
}

pub(crate) async fn execute(ctx: &Ctx<'_>, c: &Clients, op: &TargetGroupOp) -> Result<Outcome, CloudError> {
    use TargetGroupOp::*;
    match op {
        CreateTargetGroup { name, vpc_id, port, health_check: hc, tags } => {
            let req = c
                .elbv2
                .create_target_group()
                .name(name)
                .protocol(ProtocolEnum::Tcp)
                .target_type(TargetTypeEnum::Ip)
                .vpc_id(vpc_id)
                .port(i32::from(*port))
                .health_check_enabled(true)
                .health_check_protocol(ProtocolEnum::from(hc.protocol.as_str()))
                .set_health_check_path(health_path(hc))
                .health_check_port(&hc.port)
                .health_check_interval_seconds(i32::from(hc.interval_seconds))
                .healthy_threshold_count(i32::from(hc.healthy_threshold))
                .unhealthy_threshold_count(i32::from(hc.unhealthy_threshold))
                .set_tags(tags_of(tags));
            let out = ctx.write(&CREATE, &format!("{name} in {vpc_id}"), req.send()).await?;
            created(out.target_groups().first().and_then(|t| t.target_group_arn()), "target group")
        }
        ModifyTargetGroup { arn, health_check: hc } => {
            let req = c
                .elbv2
                .modify_target_group()
                .target_group_arn(arn)
                .health_check_enabled(true)
                .health_check_protocol(ProtocolEnum::from(hc.protocol.as_str()))
                .set_health_check_path(health_path(hc))
                .health_check_port(&hc.port)
                .health_check_interval_seconds(i32::from(hc.interval_seconds))
                .healthy_threshold_count(i32::from(hc.healthy_threshold))
                .unhealthy_threshold_count(i32::from(hc.unhealthy_threshold));
            ctx.write(&MODIFY, arn, req.send()).await?;
            done()
        }
        DeleteTargetGroup { arn } => {
            let req = c.elbv2.delete_target_group().target_group_arn(arn);
            ctx.write(&DELETE, arn, req.send()).await?;
            done()
        }
    }
}

/// The account's target groups and their targets, on the gateway side.
pub(crate) async fn read(
    ctx: &Ctx<'_>,
    c: &Clients,
    scope: &crosslink_cloud::ObserveScope,
) -> Result<crate::observe::Found, crosslink_cloud::CloudError> {
    crate::observe::store(scope.gateway_side || scope.private_link, target_groups(ctx, c, scope), |st, found| st.target_groups = found).await
}
