//! The IP targets registered in a link's target group, and their health.

use aws_sdk_elasticloadbalancingv2::types::TargetDescription;
use crosslink_cloud::Outcome;
use crosslink_plan::kinds::TargetsOp;
use crosslink_plan::kinds::targets::Placement;
use crate::errors::known;
use crate::execute::done;

use std::net::Ipv4Addr;

use crosslink_cloud::{CloudError, ObserveScope};
use crosslink_plan::observed::{RegisteredTarget, TargetGroup};
use crosslink_plan::tags::is_managed;
use futures::{StreamExt, TryStreamExt};

use crate::calls::{AwsService::*, Call};
use crate::cloud::{Clients, Ctx};
use crate::kinds::load_balancer;
use crate::observe::ELB_CONCURRENCY;
use crate::ratelimit::Bucket;

const B: &[Bucket] = &[Bucket::Elbv2];

pub const DESCRIBE_HEALTH: Call =
    Call::read(Elbv2, "DescribeTargetHealth", &["elasticloadbalancing:DescribeTargetHealth"], B);
pub const REGISTER: Call = Call::write(Elbv2, "RegisterTargets", &["elasticloadbalancing:RegisterTargets"], B);
pub const DEREGISTER: Call = Call::write(Elbv2, "DeregisterTargets", &["elasticloadbalancing:DeregisterTargets"], B);

/// The ELBv2 statements of `load_balancer`: DescribeTargetHealth with the reads, RegisterTargets
/// with the changes, DeregisterTargets with the deletes.
pub static KIND: super::Kind = super::Kind {
    name: "targets",
    calls: &[&DESCRIBE_HEALTH, &REGISTER, &DEREGISTER],
    grants: &[
        &load_balancer::READ,
        &load_balancer::DELETE_OWNED,
        &load_balancer::CHANGE_OWNED,
        &load_balancer::ELB_SERVICE_SIDE,
        &load_balancer::ELB_SERVICE_SIDE_OWNED,
    ],
};

// ---- Reading -----------------------------------------------------------------------------------

/// The registered targets (with their health) of crosslink's own target groups: one
/// `DescribeTargetHealth` per group, except the groups the engine already knows.
pub(crate) async fn read_into(
    ctx: &Ctx<'_>,
    c: &Clients,
    scope: &ObserveScope,
    groups: &mut [TargetGroup],
) -> Result<(), CloudError> {
    // Targets only of crosslink's own groups (of every group while a link adopts): one
    // DescribeTargetHealth per group. Those the engine already knows (a targeted read) are left out.
    let own: Vec<usize> = (0..groups.len())
        .filter(|&i| {
            (scope.adopting || scope.discover || is_managed(&groups[i].tags, &scope.instance))
                && !scope.known_targets.contains(&groups[i].arn)
        })
        .collect();
    let healths: Vec<(usize, Vec<RegisteredTarget>)> = futures::stream::iter(own)
        .map(|i| {
            let arn = groups[i].arn.clone();
            async move {
                let out = ctx
                    .call(
                        &DESCRIBE_HEALTH,
                        c.elbv2.describe_target_health().target_group_arn(arn).send(),
                    )
                    .await?;
                let mut targets: Vec<RegisteredTarget> = out
                    .target_health_descriptions()
                    .iter()
                    .filter_map(|d| {
                        let t = d.target()?;
                        Some(RegisteredTarget {
                            ip: t.id()?.parse::<Ipv4Addr>().ok()?,
                            port: t.port().and_then(|p| u16::try_from(p).ok()).unwrap_or_default(),
                            availability_zone: t.availability_zone().map(str::to_string),
                            health: d
                                .target_health()
                                .and_then(|h| h.state())
                                .map(|s| s.as_str().to_string())
                                .unwrap_or_default(),
                            reason: d.target_health().and_then(|h| h.reason()).map(|r| r.as_str().to_string()),
                            description: d.target_health().and_then(|h| h.description()).map(str::to_string),
                        })
                    })
                    .collect();
                targets.sort();
                Ok::<_, CloudError>((i, targets))
            }
        })
        .buffer_unordered(ELB_CONCURRENCY)
        .try_collect()
        .await?;
    for (i, targets) in healths {
        groups[i].targets = targets;
    }
    Ok(())
}

// ---- Changing ----------------------------------------------------------------------------------

/// Targets in a peered VPC (outside the target group's VPC) are registered in zone `all`; those
/// in the group's VPC in their own zone, or with none (AWS finds it): as the placement says.
fn targets(targets: &[(std::net::Ipv4Addr, u16)], placement: &Placement) -> Vec<TargetDescription> {
    targets
        .iter()
        .map(|(ip, port)| {
            TargetDescription::builder()
                .id(ip.to_string())
                .port(i32::from(*port))
                .set_availability_zone(placement.zone_of(*ip).map(str::to_string))
                .build()
        })
        .collect()
}

pub(crate) async fn execute(ctx: &Ctx<'_>, c: &Clients, op: &TargetsOp) -> Result<Outcome, CloudError> {
    use TargetsOp::*;
    match op {
        RegisterTargets { target_group_arn, targets: t, placement } => {
            let arn = known(target_group_arn, "the target group")?;
            let req = c.elbv2.register_targets().target_group_arn(arn).set_targets(Some(targets(t, placement)));
            ctx.write(&REGISTER, &format!("{arn} {t:?}"), req.send()).await?;
            done()
        }
        DeregisterTargets { target_group_arn, targets: t, placement } => {
            let req = c.elbv2.deregister_targets().target_group_arn(target_group_arn).set_targets(Some(targets(t, placement)));
            ctx.write(&DEREGISTER, &format!("{target_group_arn} {t:?}"), req.send()).await?;
            done()
        }
    }
}

/// Read with its target group (`crate::observe::observe`).
pub(crate) use crate::observe::read_by_parent as read;
