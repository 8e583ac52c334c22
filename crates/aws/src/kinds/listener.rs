//! NLB listeners, one per link.

use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, Certificate, ProtocolEnum};
use crosslink_cloud::Outcome;
use crosslink_plan::kinds::ListenerOp;
use crosslink_plan::kinds::listener::ListenerTls;
use crate::errors::known;
use crate::execute::{created, done, elb_tags as tags_of};

use crosslink_cloud::{CloudError, ObserveScope};
use crosslink_plan::observed::{Listener, LoadBalancer};
use crosslink_plan::tags::is_managed;
use futures::{StreamExt, TryStreamExt};

use crate::calls::{AwsService::*, Call};
use crate::cloud::{Clients, Ctx};
use crate::grants::Condition::*;
use crate::grants::{Grant, Resource, TAGGED_REQUEST, When};
use crate::kinds::load_balancer;
use crate::observe::{ELB_CONCURRENCY, ELB_PAGE, elb_tags};
use crate::ratelimit::Bucket;

const B: &[Bucket] = &[Bucket::Elbv2];

pub const DESCRIBE: Call = Call::read(Elbv2, "DescribeListeners", &["elasticloadbalancing:DescribeListeners"], B);
pub const CREATE: Call =
    Call::write(Elbv2, "CreateListener", &["elasticloadbalancing:CreateListener", "elasticloadbalancing:AddTags"], B);
pub const MODIFY: Call = Call::write(Elbv2, "ModifyListener", &["elasticloadbalancing:ModifyListener"], B);
pub const DELETE: Call = Call::write(Elbv2, "DeleteListener", &["elasticloadbalancing:DeleteListener"], B);

// CreateListener is authorized on the load balancer, not on the listener.

pub static CREATE_TAGGED_ON_OWNED: Grant = Grant {
    sid: "ElbCreateTaggedListenersOnOwnedLoadBalancers",
    actions: &["elasticloadbalancing:CreateListener"],
    resources: &[Resource::Elb("loadbalancer/net/*")],
    condition: &[Owned, TaggedRequest, CrosslinkTagKeys],
    when: When::Gateways,
    why: "CreateListener is authorized on the load balancer: it must be crosslink's, and the listener carries the managed-by tag",
};
pub static CREATE_TAGGED_ON_REFERENCED: Grant = Grant {
    sid: "ElbCreateTaggedListenersOnReferencedLoadBalancersNoResourceTag",
    actions: &["elasticloadbalancing:CreateListener"],
    resources: &[Resource::ReferencedLoadBalancers],
    condition: TAGGED_REQUEST,
    when: When::Gateways,
    why: "an NLB referenced by ARN is not crosslink's and carries no managed-by tag: scoped to exactly those ARNs; the listener itself must carry the tag",
};

/// Adoption (`adoption: Adopt`) tags a listener or target group made without crosslink: no
/// managed-by tag to condition on yet, so only while a link adopts, and only crosslink's keys.
pub static ADOPT_UNTAGGED: Grant = Grant {
    sid: "ElbAdoptListenersAndTargetGroups",
    actions: &["elasticloadbalancing:AddTags"],
    resources: &[Resource::Elb("targetgroup/*"), Resource::Elb("listener/net/*")],
    condition: TAGGED_REQUEST,
    when: When::Adopting,
    why: "adopting tags a listener and target group built without crosslink (they carry no managed-by tag yet); granted only while a link has adoption: Adopt",
};

/// Reading, tagging, changing and deleting are the ELBv2 statements of `load_balancer`.
pub static KIND: super::Kind = super::Kind {
    name: "listener",
    calls: &[&DESCRIBE, &CREATE, &MODIFY, &DELETE],
    grants: &[
        &load_balancer::READ,
        &load_balancer::DELETE_OWNED,
        &load_balancer::ELB_SERVICE_SIDE,
        &load_balancer::ELB_SERVICE_SIDE_CREATE,
        &load_balancer::ELB_SERVICE_SIDE_OWNED,
        &CREATE_TAGGED_ON_OWNED,
        &CREATE_TAGGED_ON_REFERENCED,
        &load_balancer::TAG_ON_CREATE,
        &load_balancer::CHANGE_OWNED,
        &ADOPT_UNTAGGED,
    ],
};

// ---- Reading -----------------------------------------------------------------------------------

/// The target group a default action forwards to: its own ARN, or the only one of its forward
/// config (what the console writes).
pub(crate) fn forward_target(actions: &[aws_sdk_elasticloadbalancingv2::types::Action]) -> Option<String> {
    let forward = actions.iter().find(|a| a.r#type().is_some_and(|t| t.as_str() == "forward"))?;
    if let Some(arn) = forward.target_group_arn() {
        return Some(arn.to_string());
    }
    match forward.forward_config()?.target_groups() {
        [only] => only.target_group_arn().map(str::to_string),
        _ => None,
    }
}

/// The listeners of crosslink's load balancers and of those desired state references.
pub(crate) async fn listeners(
    ctx: &Ctx<'_>,
    c: &Clients,
    scope: &ObserveScope,
    load_balancers: &[LoadBalancer],
) -> Result<Vec<Listener>, CloudError> {
    let wanted: Vec<String> = load_balancers
        .iter()
        .filter(|l| {
            scope.discover
                || is_managed(&l.tags, &scope.instance)
                || scope.load_balancer_names.contains(&l.name)
                || scope.load_balancer_arns.contains(&l.arn)
        })
        .map(|l| l.arn.clone())
        .collect();
    let per_lb: Vec<Vec<_>> = futures::stream::iter(wanted)
        .map(|arn| async move {
            let stream =
                c.elbv2.describe_listeners().load_balancer_arn(arn).page_size(ELB_PAGE).into_paginator().send();
            ctx.pages(&DESCRIBE, stream, |p| p.next_marker()).await
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
                target_group_arn: forward_target(l.default_actions()),
                // The default certificate: the first (the only one DescribeListeners lists).
                certificate_arn: l.certificates().first().and_then(|c| c.certificate_arn()).map(str::to_string),
                ssl_policy: l.ssl_policy().map(str::to_string),
                tags: tags.remove(&arn).unwrap_or_default(),
                arn,
            }
        })
        .collect();
    Ok(listeners)
}

// ---- Changing ----------------------------------------------------------------------------------

fn forward(target_group_arn: &str) -> Action {
    Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(target_group_arn).build()
}

/// The protocol, certificate and policy of a listener: TLS with `tls`, else TCP (AWS removes a
/// certificate and policy from a listener changed to TCP).
fn protocol(tls: &Option<ListenerTls>) -> (ProtocolEnum, Option<Vec<Certificate>>, Option<String>) {
    match tls {
        Some(t) => (
            ProtocolEnum::Tls,
            Some(vec![Certificate::builder().certificate_arn(&t.certificate_arn).build()]),
            Some(t.ssl_policy.clone()),
        ),
        None => (ProtocolEnum::Tcp, None, None),
    }
}

pub(crate) async fn execute(ctx: &Ctx<'_>, c: &Clients, op: &ListenerOp) -> Result<Outcome, CloudError> {
    use ListenerOp::*;
    match op {
        CreateListener { load_balancer_arn, port, target_group_arn, tls, tags } => {
            let lb = known(load_balancer_arn, "the load balancer")?;
            let tg = known(target_group_arn, "the target group")?;
            let (protocol, certificates, ssl_policy) = protocol(tls);
            let req = c
                .elbv2
                .create_listener()
                .load_balancer_arn(lb)
                .protocol(protocol)
                .set_certificates(certificates)
                .set_ssl_policy(ssl_policy)
                .port(i32::from(*port))
                .default_actions(forward(tg))
                .set_tags(tags_of(tags));
            let out = ctx.write(&CREATE, &format!("{lb}:{port} -> {tg}"), req.send()).await?;
            created(out.listeners().first().and_then(|l| l.listener_arn()), "listener")
        }
        ModifyListener { arn, port, target_group_arn, tls, protocol_changes } => {
            let tg = known(target_group_arn, "the target group")?;
            let (protocol, certificates, ssl_policy) = protocol(tls);
            let req = c
                .elbv2
                .modify_listener()
                .listener_arn(arn)
                .set_protocol(protocol_changes.then_some(protocol))
                .set_certificates(certificates)
                .set_ssl_policy(ssl_policy)
                .port(i32::from(*port))
                .default_actions(forward(tg));
            ctx.write(&MODIFY, &format!("{arn}:{port} -> {tg}"), req.send()).await?;
            done()
        }
        DeleteListener { arn } => {
            let req = c.elbv2.delete_listener().listener_arn(arn);
            ctx.write(&DELETE, arn, req.send()).await?;
            done()
        }
    }
}

/// Read with its load balancer (`crate::observe::observe`).
pub(crate) use crate::observe::read_by_parent as read;
