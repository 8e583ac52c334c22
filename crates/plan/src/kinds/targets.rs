//! The private IPs in the service VPC registered in a link's target group.


use serde::{Deserialize, Serialize};

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use crate::model::{Reason, Verb};
use crate::op::Op;
use crate::model::Subject;
use crate::observed::TargetGroup;
use crate::planner::{LinkCx, Planner};
use crosslink_desired::{Link, Transport};
use super::KindOp;
use crate::op::{Ref, Service};

// ---- What is observed ------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisteredTarget {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub availability_zone: Option<String>,
    /// `healthy`, `unhealthy`, `initial`, `draining`, `unused`, `unavailable` (as AWS reports it).
    pub health: String,
    /// AWS's reason code when not healthy (`Target.FailedHealthChecks`, `Elb.RegistrationInProgress`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// AWS's description of that reason (`Health checks failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

// ---- Operations -------------------------------------------------------------------------------

/// How registered targets are deregistered: in the zones AWS reports them in (`all` for all of
/// them is the default placement).
pub(crate) fn placement_of(live: &[RegisteredTarget], targets: &[(Ipv4Addr, u16)]) -> Placement {
    let zones: BTreeMap<Ipv4Addr, String> = live
        .iter()
        .filter(|t| targets.contains(&(t.ip, t.port)))
        .filter_map(|t| Some((t.ip, t.availability_zone.clone()?)))
        .collect();
    if zones.values().all(|z| z == "all") && zones.len() == targets.len() {
        Placement::OutsideVpc
    } else if zones.is_empty() {
        Placement::InVpc
    } else {
        Placement::Zones(zones)
    }
}

/// Where registered IP addresses are (the `AvailabilityZone` of each target AWS is given).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Placement {
    /// Outside the target group's VPC (a peered VPC): Availability Zone `all`.
    #[default]
    OutsideVpc,
    /// In the target group's VPC: no zone is given, AWS finds it from the subnet.
    InVpc,
    /// In the target group's VPC, each in the zone named (an endpoint's network interfaces).
    Zones(BTreeMap<Ipv4Addr, String>),
}

impl Placement {
    pub fn is_outside(&self) -> bool {
        matches!(self, Placement::OutsideVpc)
    }

    /// The zone AWS is given for one address: `all`, none, or its own.
    pub fn zone_of(&self, ip: Ipv4Addr) -> Option<&str> {
        match self {
            Placement::OutsideVpc => Some("all"),
            Placement::InVpc => None,
            Placement::Zones(z) => z.get(&ip).map(String::as_str),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum TargetsOp {
    RegisterTargets {
        target_group_arn: Ref,
        targets: Vec<(Ipv4Addr, u16)>,
        /// Where the addresses are, as AWS takes it: outside the group's VPC (Availability Zone
        /// `all`, the default: peered service IPs), inside it (`inVpc`: AWS finds the zone), or
        /// each in its own zone (`zones`: a privateLink endpoint's interfaces).
        #[serde(default, skip_serializing_if = "Placement::is_outside")]
        placement: Placement,
    },
    DeregisterTargets {
        target_group_arn: String,
        targets: Vec<(Ipv4Addr, u16)>,
        /// The zones they were registered in (AWS identifies a target by it too).
        #[serde(default, skip_serializing_if = "Placement::is_outside")]
        placement: Placement,
    },
}

impl KindOp for TargetsOp {
    fn service(&self) -> Service {
        Service::Elbv2
    }

    fn name(&self) -> &'static str {
        match self {
            Self::RegisterTargets { .. } => "RegisterTargets",
            Self::DeregisterTargets { .. } => "DeregisterTargets",
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::RegisterTargets { target_group_arn, .. } => target_group_arn.to_string(),
            Self::DeregisterTargets { target_group_arn, .. } => target_group_arn.clone(),
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::RegisterTargets { target_group_arn, .. } => vec![target_group_arn],
            Self::DeregisterTargets { .. } => vec![],
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::RegisterTargets { target_group_arn, .. } => vec![target_group_arn],
            Self::DeregisterTargets { .. } => vec![],
        }
    }

    fn lets_chain(&self, state: Option<&str>) -> bool {
        let _ = state;
        true
    }

    fn on_new_resource(&self) -> bool {
        match self {
            Self::RegisterTargets { target_group_arn, .. } => target_group_arn.known().is_none(),
            Self::DeregisterTargets { .. } => false,
        }
    }

    fn is_delete(&self) -> bool {
        matches!(self, Self::DeregisterTargets { .. })
    }
}

// ---- Clean-up and tags (read by the planner's generic machinery) ------------------------------

/// Targets are removed with their target group, or deregistered by the link's planning.
pub(crate) use crate::planner::nothing_to_prune as prunable;
pub(crate) use crate::planner::nothing_first as before_delete;
pub(crate) use crate::planner::untagged as tag_op;
pub(crate) use crate::planner::not_releasable as untag_op;

// ---- Planning (the link stage) ----------------------------------------------------------------

pub(crate) type Out<'a> = ();

/// A registered target reached over peering (registered in Availability Zone `all`: outside the
/// gateway VPC), as opposed to one in the gateway VPC (a privateLink endpoint's interface).
/// AWS reports the zone it was given; where it reports none (moto), an address outside the
/// gateway VPC is a peered one.
pub(crate) fn via_peering(t: &RegisteredTarget, gateway_cidrs: &[ipnet::Ipv4Net]) -> bool {
    match t.availability_zone.as_deref() {
        Some(z) => z == "all",
        None => !gateway_cidrs.iter().any(|c| c.contains(&t.ip)),
    }
}

/// The link's targets in its gateway target group: the missing registered, the undesired
/// deregistered (draining ones count as gone). Over peering they are the link's targets; over
/// privateLink, the interfaces of the gateway's endpoint (each in its zone), once it is available.
///
/// Changing transport is make-before-break: the targets of the other transport (peered IPs when
/// the link is privateLink now, endpoint interfaces when it is peering) stay registered until
/// the new ones are healthy, and what they use (the peering, the endpoint) stays until they are
/// gone.
pub(crate) fn plan<'a>(p: &mut Planner<'a>, cx: &mut LinkCx<'a, '_>) -> Option<()> {
    let (l, subject, account) = (cx.link, &cx.subject, cx.gw.account.as_str());
    let tg = &cx.out.target_group;
    let tg_name = tg.current.map_or(&tg.name, |c| &c.name);
    let (want, placement): (BTreeSet<(Ipv4Addr, u16)>, Placement) = match &l.spec.transport {
        Transport::Peering => (l.spec.targets.iter().map(|t| (t.ip, t.port)).collect(), Placement::OutsideVpc),
        Transport::PrivateLink(_) => match &cx.out.endpoint.interfaces {
            Some(ifs) => (
                ifs.iter().map(|(ip, _)| (*ip, l.spec.listener_port)).collect(),
                Placement::Zones(ifs.iter().cloned().collect()),
            ),
            None => (BTreeSet::new(), Placement::Zones(BTreeMap::new())),
        },
    };
    let live_targets: Vec<&RegisteredTarget> =
        tg.current.map(|tg| tg.targets.iter().filter(|t| t.health != "draining").collect()).unwrap_or_default();
    let live: BTreeSet<(Ipv4Addr, u16)> = live_targets.iter().map(|t| (t.ip, t.port)).collect();
    let missing: Vec<(Ipv4Addr, u16)> = want.difference(&live).copied().collect();
    let mut extra: Vec<(Ipv4Addr, u16)> = live.difference(&want).copied().collect();
    // The old path's targets go once the new path carries traffic: enough of the wanted targets
    // are registered and healthy. The old path is the other transport's, or another endpoint of
    // the link's (its endpoint service was replaced).
    let gw_cidrs = cx.gw.state.vpcs.get(&cx.gw.gw.spec.vpc_id).map(|v| v.cidrs.as_slice()).unwrap_or_default();
    let other_transport = |t: &RegisteredTarget| via_peering(t, gw_cidrs) != l.spec.transport.routes();
    let current = cx.out.endpoint.endpoint.map(|e| e.id.as_str());
    let other_endpoints: BTreeSet<Ipv4Addr> = cx
        .gw
        .state
        .endpoints
        .iter()
        .filter(|e| Some(e.id.as_str()) != current && p.owned_by(&e.tags, &cx.owner) && !e.gone())
        .flat_map(|e| e.interfaces.iter().map(|i| i.ip))
        .collect();
    let old: Vec<(Ipv4Addr, u16)> = live_targets
        .iter()
        .filter(|t| (other_transport(t) || other_endpoints.contains(&t.ip)) && extra.contains(&(t.ip, t.port)))
        .map(|t| (t.ip, t.port))
        .collect();
    if !old.is_empty() {
        let healthy = live_targets.iter().filter(|t| want.contains(&(t.ip, t.port)) && t.health == "healthy").count();
        let needed = usize::from(l.spec.min_healthy_targets).clamp(1, want.len().max(1));
        if want.is_empty() || healthy < needed {
            extra.retain(|t| !old.contains(t));
            let shown: Vec<String> = old.iter().map(|(ip, p)| format!("{ip}:{p}")).collect();
            p.report(subject).waiting.push(format!(
                "moving to a new {} path: targets {} of the old path stay registered until {needed} new target(s) are healthy ({healthy} now)",
                l.spec.transport.name(),
                shown.join(", ")
            ));
        }
    }
    if !missing.is_empty() {
        let shown: Vec<String> = missing.iter().map(|(ip, p)| format!("{ip}:{p}")).collect();
        p.add(
            subject,
            account,
            format!("targets {} in {tg_name}", shown.join(", ")),
            Verb::Register,
            Reason::Missing,
            Op::Targets(TargetsOp::RegisterTargets { target_group_arn: tg.arn.clone(), targets: missing, placement }),
            vec![tg.action],
        );
    }
    if tg.adopting && !extra.is_empty() {
        // Adoption never removes a working path: what the YAML does not name goes on a later
        // pass, once the group is crosslink's (and under the prune guard's rules).
        let shown: Vec<String> = extra.iter().map(|(ip, p)| format!("{ip}:{p}")).collect();
        p.report(subject).warnings.push(format!(
            "targets {} in the adopted {tg_name} are not in the YAML: they are deregistered on a later pass, once it is crosslink's",
            shown.join(", ")
        ));
    } else if let (false, Some(current)) = (extra.is_empty(), tg.current) {
        // The old path's targets are replaced by the new transport's (not a removal of the
        // link); the others are no longer desired.
        let (replaced, gone): (Vec<_>, Vec<_>) = extra.into_iter().partition(|t| old.contains(t));
        let why = format!("the link's new {} path is healthy", l.spec.transport.name());
        for (targets, reason) in [(replaced, Reason::Replaced { why }), (gone, Reason::NoLongerDesired)] {
            if targets.is_empty() {
                continue;
            }
            let shown: Vec<String> = targets.iter().map(|(ip, p)| format!("{ip}:{p}")).collect();
            p.add(
                subject,
                account,
                format!("targets {} in {tg_name}", shown.join(", ")),
                Verb::Deregister,
                reason,
                Op::Targets(TargetsOp::DeregisterTargets {
                    target_group_arn: current.arn.clone(),
                    placement: placement_of(&current.targets, &targets),
                    targets,
                }),
                vec![],
            );
        }
    }
    Some(())
}

/// A privateLink's service-side target group holds the link's targets, in the service VPC.
pub(crate) fn plan_service_side(
    p: &mut Planner<'_>,
    subject: &Subject,
    account: &str,
    l: &Link,
    tg_arn: &Ref,
    tg_action: Option<usize>,
    current: Option<&TargetGroup>,
) {
    let want: BTreeSet<(Ipv4Addr, u16)> = l.spec.targets.iter().map(|t| (t.ip, t.port)).collect();
    let live: BTreeSet<(Ipv4Addr, u16)> = current
        .map(|tg| tg.targets.iter().filter(|t| t.health != "draining").map(|t| (t.ip, t.port)).collect())
        .unwrap_or_default();
    let missing: Vec<(Ipv4Addr, u16)> = want.difference(&live).copied().collect();
    let extra: Vec<(Ipv4Addr, u16)> = live.difference(&want).copied().collect();
    let name = current.map_or_else(|| "the service-side target group".to_string(), |c| c.name.clone());
    if !missing.is_empty() {
        let shown: Vec<String> = missing.iter().map(|(ip, p)| format!("{ip}:{p}")).collect();
        p.add(
            subject,
            account,
            format!("targets {} in {name}", shown.join(", ")),
            Verb::Register,
            Reason::Missing,
            Op::Targets(TargetsOp::RegisterTargets {
                target_group_arn: tg_arn.clone(),
                targets: missing,
                placement: Placement::InVpc,
            }),
            vec![tg_action],
        );
    }
    if let (false, Some(current)) = (extra.is_empty(), current) {
        let shown: Vec<String> = extra.iter().map(|(ip, p)| format!("{ip}:{p}")).collect();
        p.add(
            subject,
            account,
            format!("targets {} in {name}", shown.join(", ")),
            Verb::Deregister,
            Reason::NoLongerDesired,
            Op::Targets(TargetsOp::DeregisterTargets {
                target_group_arn: current.arn.clone(),
                placement: placement_of(&current.targets, &extra),
                targets: extra,
            }),
            vec![],
        );
    }
}
