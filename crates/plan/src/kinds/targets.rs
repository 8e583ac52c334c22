//! The private IPs in the service VPC registered in a link's target group.


use serde::{Deserialize, Serialize};

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use crate::model::{Reason, Verb};
use crate::op::Op;
use crate::planner::{LinkCx, Planner};
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

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum TargetsOp {
    RegisterTargets {
        target_group_arn: Ref,
        targets: Vec<(Ipv4Addr, u16)>,
    },
    DeregisterTargets {
        target_group_arn: String,
        targets: Vec<(Ipv4Addr, u16)>,
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

/// The link's targets in its target group: the missing registered, the undesired deregistered
/// (draining ones count as gone).
pub(crate) fn plan<'a>(p: &mut Planner<'a>, cx: &mut LinkCx<'a, '_>) -> Option<()> {
    let (l, subject, account) = (cx.link, &cx.subject, cx.gw.account.as_str());
    let tg = &cx.out.target_group;
    let tg_name = tg.current.map_or(&tg.name, |c| &c.name);
    let want: BTreeSet<(Ipv4Addr, u16)> = l.spec.targets.iter().map(|t| (t.ip, t.port)).collect();
    let live: BTreeSet<(Ipv4Addr, u16)> = tg
        .current
        .map(|tg| tg.targets.iter().filter(|t| t.health != "draining").map(|t| (t.ip, t.port)).collect())
        .unwrap_or_default();
    let missing: Vec<(Ipv4Addr, u16)> = want.difference(&live).copied().collect();
    let extra: Vec<(Ipv4Addr, u16)> = live.difference(&want).copied().collect();
    if !missing.is_empty() {
        let shown: Vec<String> = missing.iter().map(|(ip, p)| format!("{ip}:{p}")).collect();
        p.add(
            subject,
            account,
            format!("targets {} in {tg_name}", shown.join(", ")),
            Verb::Register,
            Reason::Missing,
            Op::Targets(TargetsOp::RegisterTargets { target_group_arn: tg.arn.clone(), targets: missing }),
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
        let shown: Vec<String> = extra.iter().map(|(ip, p)| format!("{ip}:{p}")).collect();
        p.add(
            subject,
            account,
            format!("targets {} in {tg_name}", shown.join(", ")),
            Verb::Deregister,
            Reason::NoLongerDesired,
            Op::Targets(TargetsOp::DeregisterTargets { target_group_arn: current.arn.clone(), targets: extra }),
            vec![],
        );
    }
    Some(())
}
