//! The internal network load balancer of a gateway, and the tags of ELBv2 resources (its own, its target groups', its listeners').

use serde::{Deserialize, Serialize};

use crosslink_desired::{AdoptionPolicy, LoadBalancerRef};
use crate::kinds::ResourceKind;
use crate::model::{Reason, Verb};
use crate::op::{Op, Output};
use crate::planner::{GatewayCx, Planner};
use crate::Subject;
use super::KindOp;
use crate::observed::AccountState;
use crate::planner::Prunable;
use crate::op::{Ref, Service};
use crate::observed::Tags;

// ---- What is observed ------------------------------------------------------------------------

/// Its field of `AccountState` (`load_balancers`).
pub type Observed = Vec<LoadBalancer>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadBalancer {
    pub arn: String,
    pub name: String,
    pub dns_name: String,
    pub vpc_id: String,
    /// `network`, `application`, `gateway` (as reported).
    pub kind: String,
    pub internal: bool,
    /// `provisioning`, `active`, `failed`, ...
    pub state: String,
    pub subnet_ids: Vec<String>,
    pub tags: Tags,
}

// ---- Operations -------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum LoadBalancerOp {
    CreateLoadBalancer {
        name: String,
        subnet_ids: Vec<String>,
        tags: Tags,
    },
    DeleteLoadBalancer {
        arn: String,
    },
    /// Sets tags on an ELBv2 resource (load balancer, target group, listener).
    AddElbTags {
        arn: String,
        tags: Tags,
    },
    /// Removes tags (by key) from an ELBv2 resource: `crosslink release`.
    RemoveElbTags {
        arn: String,
        keys: Vec<String>,
    },
}

impl KindOp for LoadBalancerOp {
    fn service(&self) -> Service {
        Service::Elbv2
    }

    fn name(&self) -> &'static str {
        match self {
            Self::CreateLoadBalancer { .. } => "CreateLoadBalancer",
            Self::DeleteLoadBalancer { .. } => "DeleteLoadBalancer",
            Self::AddElbTags { .. } => "AddTags",
            Self::RemoveElbTags { .. } => "RemoveTags",
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::CreateLoadBalancer { name, .. } => name.clone(),
            // Tags of a load balancer, target group or listener: the ARN says which.
            Self::DeleteLoadBalancer { arn } | Self::AddElbTags { arn, .. } | Self::RemoveElbTags { arn, .. } => {
                arn.clone()
            }
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::CreateLoadBalancer { .. }
            | Self::DeleteLoadBalancer { .. }
            | Self::AddElbTags { .. }
            | Self::RemoveElbTags { .. } => vec![],
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::CreateLoadBalancer { .. }
            | Self::DeleteLoadBalancer { .. }
            | Self::AddElbTags { .. }
            | Self::RemoveElbTags { .. } => vec![],
        }
    }

    fn lets_chain(&self, state: Option<&str>) -> bool {
        let _ = state;
        true
    }

    fn on_new_resource(&self) -> bool {
        false
    }

    fn is_delete(&self) -> bool {
        matches!(self, Self::DeleteLoadBalancer { .. })
    }
}

// ---- Clean-up and tags (read by the planner's generic machinery) ------------------------------

pub(crate) fn prunable(st: &AccountState) -> Vec<Prunable<'_>> {
    st.load_balancers
        .iter()
        .map(|lb| Prunable {
            tags: &lb.tags,
            id: lb.arn.clone(),
            what: format!("load balancer {}", lb.name),
            delete: LoadBalancerOp::DeleteLoadBalancer { arn: lb.arn.clone() }.into(),
            uses: Vec::new(),
            follows_link: false,
            deleting: false,
        })
        .collect()
}

/// A load balancer takes its listeners with it. One that still has a listener someone else made
/// (no managed-by tag of this instance) is kept, and reported as kept with the ports in the way:
/// crosslink never deletes what it does not own, not even as a side effect. Its own listeners go
/// with it, those of links removed with deletionPolicy Retain too: the Gateway's own policy
/// decides what becomes of the Gateway's load balancer. Otherwise it waits for its listeners'
/// deletes (they name it in `uses`).
pub(crate) fn before_delete<'a>(
    pl: &mut Planner<'a>,
    subject: &Subject,
    _account: &str,
    st: &'a AccountState,
    c: &Prunable<'a>,
) -> Option<Vec<Option<usize>>> {
    let deleted: std::collections::HashSet<String> = pl
        .plan
        .actions
        .iter()
        .filter(|a| a.op.is_delete() && a.op.target().kind == ResourceKind::Listener)
        .map(|a| a.op.target().id)
        .collect();
    let kept: Vec<String> = st
        .listeners
        .iter()
        .filter(|l| l.load_balancer_arn == c.id && !deleted.contains(&l.arn) && !pl.owned(&l.tags))
        .map(|l| format!(":{}", l.port))
        .collect();
    if kept.is_empty() {
        return Some(Vec::new());
    }
    pl.report(subject).retained.push(format!(
        "{} (deleting it would delete listener {} too, which is not crosslink's: delete the load balancer by hand once it is gone)",
        c.what,
        kept.join(", ")
    ));
    None
}

/// ELBv2 tags are added with one call for any of its resources (`AddTags`).
pub(crate) fn tag_op(id: &str, tags: Tags) -> Option<crate::op::Op> {
    Some(LoadBalancerOp::AddElbTags { arn: id.to_string(), tags }.into())
}

/// ELBv2 tags are removed with one call for any of its resources (`RemoveTags`).
pub(crate) fn untag_op(id: &str, keys: Vec<String>) -> Option<crate::op::Op> {
    Some(LoadBalancerOp::RemoveElbTags { arn: id.to_string(), keys }.into())
}

// ---- Planning (the gateway stage) -------------------------------------------------------------

/// What the gateway's load balancer hands on: its ARN (pending while this plan creates it), its
/// DNS name when known, the action creating it, and the deletes of the gateway's other load
/// balancers (the deletes of the VPC links that target one go before it: `vpc_link::plan`).
pub(crate) struct Out<'a> {
    pub(crate) arn: Ref,
    pub(crate) dns: Option<String>,
    pub(crate) action: Option<usize>,
    pub(crate) stale: Vec<(&'a str, usize)>,
}

impl Default for Out<'_> {
    fn default() -> Self {
        Out { arn: Ref::Pending("the gateway's load balancer".into()), dns: None, action: None, stale: Vec::new() }
    }
}

/// The gateway's NLB: referenced by ARN (it must exist), or named, found by its owner tag and
/// created when missing; a name taken by a load balancer crosslink does not own is a problem.
pub(crate) fn plan<'a>(p: &mut Planner<'a>, cx: &mut GatewayCx<'a>) -> Option<()> {
    let (gw, state, subject, account) = (cx.gw, cx.state, &cx.subject, cx.account.as_str());
    let out = &mut cx.out.load_balancer;
    match &gw.spec.load_balancer {
        LoadBalancerRef::Arn(arn) => match state.load_balancer(arn) {
            Some(lb) => (out.arn, out.dns) = (Ref::Known(lb.arn.clone()), Some(lb.dns_name.clone())),
            None => {
                p.problem(
                    subject,
                    "NotFound",
                    format!("load balancer {arn} not found"),
                    Some("reference an existing NLB, or use loadBalancer.name to have crosslink create one".into()),
                );
                return None;
            }
        },
        LoadBalancerRef::Name(name) => {
            let mine: Vec<&LoadBalancer> =
                state.load_balancers.iter().filter(|l| p.owned_by(&l.tags, &cx.owner)).collect();
            let chosen = mine.iter().find(|l| &l.name == name).or(mine.first()).copied();
            if let Some(lb) = chosen.filter(|l| &l.name == name) {
                p.claimed.insert(lb.arn.clone());
                if lb.vpc_id != gw.spec.vpc_id {
                    p.problem(
                        subject,
                        "Immutable",
                        format!("load balancer {name} is in {}, the gateway in {}", lb.vpc_id, gw.spec.vpc_id),
                        Some("a load balancer cannot move VPCs: rename loadBalancer.name to create a new one".into()),
                    );
                    return None;
                }
                p.tag_drift(
                    ResourceKind::LoadBalancer,
                    subject,
                    account,
                    &format!("load balancer {name}"),
                    &lb.arn,
                    &lb.tags,
                    &cx.want_tags,
                    None,
                );
                (out.arn, out.dns) = (Ref::Known(lb.arn.clone()), Some(lb.dns_name.clone()));
            } else if let Some(other) = state.load_balancers.iter().find(|l| &l.name == name)
                && gw.spec.adoption == AdoptionPolicy::Adopt
            {
                if p.refuse_other_instance(subject, &other.tags, &format!("load balancer {name} ({})", other.arn)) {
                    return None;
                }
                if other.vpc_id != gw.spec.vpc_id {
                    p.problem(
                        subject,
                        "AdoptionNeedsReplacement",
                        format!("load balancer {name} ({}) is in {}, the gateway in {}", other.arn, other.vpc_id, gw.spec.vpc_id),
                        Some("a load balancer cannot move VPCs: set the gateway's vpcId to its VPC, or choose another loadBalancer.name".into()),
                    );
                    return None;
                }
                p.adopt(
                    ResourceKind::LoadBalancer,
                    subject,
                    account,
                    format!("load balancer {name} ({})", other.arn),
                    &other.arn,
                    &other.tags,
                    &cx.want_tags,
                    format!("by name {name}"),
                );
                (out.arn, out.dns) = (Ref::Known(other.arn.clone()), Some(other.dns_name.clone()));
            } else if let Some(other) = state.load_balancers.iter().find(|l| &l.name == name) {
                p.problem(
                    subject,
                    "NameTaken",
                    format!("a load balancer named {name} exists ({}) and is not managed by crosslink", other.arn),
                    Some(format!(
                        "choose another loadBalancer.name, use it as is with loadBalancer: {{arn: {}}} (crosslink never deletes a referenced NLB), or take it over with the gateway's adoption: Adopt",
                        other.arn
                    )),
                );
                return None;
            } else {
                let a = p.add(
                    subject,
                    account,
                    format!("load balancer {name}"),
                    Verb::Create,
                    Reason::Missing,
                    Op::LoadBalancer(LoadBalancerOp::CreateLoadBalancer {
                        name: name.clone(),
                        subnet_ids: gw.spec.subnet_ids.clone(),
                        tags: cx.want_tags.clone(),
                    }),
                    vec![],
                );
                (out.arn, out.action) = (Ref::created(format!("load balancer {name}"), a, Output::Id), Some(a));
            }
            // Load balancers of this gateway other than the one in use (renamed, or a duplicate
            // from a create whose answer was lost).
            let stale: Vec<&'a LoadBalancer> = state
                .load_balancers
                .iter()
                .filter(|l| p.owned_by(&l.tags, &cx.owner) && out.arn.known().is_some_and(|arn| arn != l.arn))
                .collect();
            for lb in stale {
                p.claimed.insert(lb.arn.clone());
                let a = p.add(
                    subject,
                    account,
                    format!("load balancer {}", lb.name),
                    Verb::Delete,
                    Reason::Replaced { why: format!("the gateway's load balancer is {}", out.arn) },
                    Op::LoadBalancer(LoadBalancerOp::DeleteLoadBalancer { arn: lb.arn.clone() }),
                    vec![],
                );
                out.stale.push((&lb.arn, a));
            }
        }
    }
    if let Some(arn) = out.arn.known() {
        p.report(subject).resources.insert("loadBalancer".into(), arn.to_string());
    }
    Some(())
}

// ---- Planning (a privateLink's service side) ---------------------------------------------------

/// A privateLink's NLB in the service VPC: one crosslink creates by name (and owns), or one
/// referenced by ARN (never changed or deleted). `None` after a problem.
pub(crate) fn plan_service_side<'a>(
    p: &mut Planner<'a>,
    side: &crate::kinds::endpoint_service::ServiceSide<'a>,
    wanted: &LoadBalancerRef,
    subnet_ids: &[String],
) -> Option<(Ref, Option<usize>, Option<&'a LoadBalancer>)> {
    let st = side.st;
    let found = match wanted {
        LoadBalancerRef::Name(n) => st.load_balancers.iter().find(|l| &l.name == n),
        LoadBalancerRef::Arn(a) => st.load_balancers.iter().find(|l| &l.arn == a),
    };
    let Some(lb) = found else {
        let LoadBalancerRef::Name(name) = wanted else {
            p.problem(
                &side.subject,
                "NotFound",
                format!("service-side load balancer {wanted:?} not found in account {}", side.account),
                Some("reference an existing internal NLB of the service VPC, or give `loadBalancer: {name: ...}` and `subnetIds` to have crosslink create one".into()),
            );
            return None;
        };
        let a = p.add(
            &side.subject,
            &side.account,
            format!("service-side load balancer {name}"),
            Verb::Create,
            Reason::Missing,
            Op::LoadBalancer(LoadBalancerOp::CreateLoadBalancer {
                name: name.clone(),
                subnet_ids: subnet_ids.to_vec(),
                tags: side.tags.clone(),
            }),
            vec![],
        );
        return Some((Ref::created(format!("load balancer {name}"), a, Output::Id), Some(a), None));
    };
    let what = format!("load balancer {} ({})", lb.name, lb.arn);
    if matches!(wanted, LoadBalancerRef::Name(_)) && !p.owned_by(&lb.tags, &side.owner) {
        let whose = crate::tags::owner(&lb.tags).filter(|_| p.owned(&lb.tags));
        p.problem(
            &side.subject,
            "NameTaken",
            match whose {
                Some(o) => format!("{what} is crosslink's for {o}"),
                None => format!("{what} exists and was not made by crosslink"),
            },
            Some("give the service-side NLB another name, or use it with `loadBalancer: {arn: ...}` (crosslink then never deletes it)".into()),
        );
        return None;
    }
    if lb.vpc_id != side.vpc || lb.kind != "network" || !lb.internal {
        p.problem(
            &side.subject,
            "LoadBalancerUnfit",
            format!("{what} is a {} {} load balancer in {}, not an internal NLB in {}", if lb.internal { "internal" } else { "internet-facing" }, lb.kind, lb.vpc_id, side.vpc),
            Some("an endpoint service needs an internal Network Load Balancer in the service VPC".into()),
        );
        return None;
    }
    p.claimed.insert(lb.arn.clone());
    p.report(&side.subject).resources.insert("serviceLoadBalancer".into(), lb.arn.clone());
    Some((Ref::Known(lb.arn.clone()), None, Some(lb)))
}
