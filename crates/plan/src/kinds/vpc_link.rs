//! A gateway's API Gateway REST VPC link to its load balancer.

use serde::{Deserialize, Serialize};

use crosslink_desired::AdoptionPolicy;
use crate::kinds::ResourceKind;
use crate::model::{Reason, Verb};
use crate::op::{Op, Output};
use crate::planner::{GatewayCx, Made, Planner};
use super::KindOp;
use crate::observed::AccountState;
use crate::planner::Prunable;
use crate::op::{Ref, Service};
use crate::observed::Tags;

// ---- What is observed ------------------------------------------------------------------------

/// Its field of `AccountState` (`vpc_links`).
pub type Observed = Vec<VpcLink>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VpcLink {
    pub id: String,
    pub name: String,
    pub target_arns: Vec<String>,
    /// `AVAILABLE`, `PENDING`, `DELETING`, `FAILED`.
    pub status: String,
    pub status_message: Option<String>,
    pub tags: Tags,
}

// ---- Operations -------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum VpcLinkOp {
    CreateVpcLink {
        name: String,
        load_balancer_arn: Ref,
        tags: Tags,
    },
    DeleteVpcLink {
        id: String,
    },
    /// Tags a VPC link (TagResource on its ARN): adoption.
    TagVpcLink {
        id: String,
        tags: Tags,
    },
    /// Removes tags (by key) from a VPC link (UntagResource on its ARN): `crosslink release`.
    UntagVpcLink {
        id: String,
        keys: Vec<String>,
    },
}

impl KindOp for VpcLinkOp {
    fn service(&self) -> Service {
        Service::ApiGateway
    }

    fn name(&self) -> &'static str {
        match self {
            Self::CreateVpcLink { .. } => "CreateVpcLink",
            Self::DeleteVpcLink { .. } => "DeleteVpcLink",
            Self::TagVpcLink { .. } => "TagResource",
            Self::UntagVpcLink { .. } => "UntagResource",
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::CreateVpcLink { name, .. } => name.clone(),
            Self::DeleteVpcLink { id } | Self::TagVpcLink { id, .. } | Self::UntagVpcLink { id, .. } => id.clone(),
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::CreateVpcLink { load_balancer_arn, .. } => vec![load_balancer_arn],
            Self::DeleteVpcLink { .. } | Self::TagVpcLink { .. } | Self::UntagVpcLink { .. } => vec![],
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::CreateVpcLink { load_balancer_arn, .. } => vec![load_balancer_arn],
            Self::DeleteVpcLink { .. } | Self::TagVpcLink { .. } | Self::UntagVpcLink { .. } => vec![],
        }
    }

    fn lets_chain(&self, state: Option<&str>) -> bool {
        match self {
            // Methods may use a VPC link only once it is AVAILABLE.
            Self::CreateVpcLink { .. } => state == Some("AVAILABLE"),
            Self::DeleteVpcLink { .. } | Self::TagVpcLink { .. } | Self::UntagVpcLink { .. } => true,
        }
    }

    fn on_new_resource(&self) -> bool {
        false
    }

    fn is_delete(&self) -> bool {
        matches!(self, Self::DeleteVpcLink { .. })
    }
}

// ---- Planning: names and comparisons ----------------------------------------------------------

/// The name of a gateway's VPC link.
pub fn vpc_link_name(gateway: &str) -> String {
    format!("crosslink-{gateway}")
}

// ---- Clean-up and tags (read by the planner's generic machinery) ------------------------------

pub(crate) fn prunable(st: &AccountState) -> Vec<Prunable<'_>> {
    st.vpc_links
        .iter()
        .map(|v| Prunable {
            tags: &v.tags,
            id: v.id.clone(),
            what: format!("VPC link {} ({})", v.name, v.id),
            delete: VpcLinkOp::DeleteVpcLink { id: v.id.clone() }.into(),
            uses: v.target_arns.clone(),
            follows_link: false,
            deleting: v.status == "DELETING",
        })
        .collect()
}

pub(crate) use crate::planner::nothing_first as before_delete;
/// API Gateway tags are added with `TagResource` on the resource's ARN.
pub(crate) fn tag_op(id: &str, tags: Tags) -> Option<Op> {
    Some(VpcLinkOp::TagVpcLink { id: id.to_string(), tags }.into())
}
/// API Gateway tags are removed with `UntagResource` on the resource's ARN.
pub(crate) fn untag_op(id: &str, keys: Vec<String>) -> Option<Op> {
    Some(VpcLinkOp::UntagVpcLink { id: id.to_string(), keys }.into())
}

// ---- Planning (the gateway stage) -------------------------------------------------------------

/// What the gateway's VPC link hands on: its id (pending while this plan creates it, or while
/// AWS makes it AVAILABLE), and the action creating it.
pub(crate) type Out<'a> = Made;

/// The gateway's VPC link to its load balancer: one of its own that targets the load balancer
/// and is not FAILED or DELETING is used (waited for while PENDING); the others are deleted, and
/// a load balancer they target is deleted after them; none usable: one is created.
pub(crate) fn plan<'a>(p: &mut Planner<'a>, cx: &mut GatewayCx<'a>) -> Option<()> {
    let (state, subject, account) = (cx.state, &cx.subject, cx.account.as_str());
    let lb = &cx.out.load_balancer;
    let link_name = vpc_link_name(&cx.gw.metadata.name);
    let mine: Vec<&VpcLink> = state.vpc_links.iter().filter(|v| p.owned_by(&v.tags, &cx.owner)).collect();
    let targets_lb = |v: &VpcLink| lb.arn.known().is_some_and(|arn| v.target_arns.iter().any(|t| t == arn));
    // One referenced by id (`vpcLink.id`) is used as it is, never deleted; crosslink's own are
    // then removed.
    let referenced = match &cx.gw.spec.vpc_link {
        None => None,
        Some(r) => match state.vpc_links.iter().find(|v| v.id == r.id) {
            None => {
                p.problem(
                    subject,
                    "NotFound",
                    format!("VPC link {} not found in account {account}", r.id),
                    Some("reference an existing VPC link (aws apigateway get-vpc-links), or leave vpcLink out to have crosslink create one".into()),
                );
                return None;
            }
            Some(v) if lb.arn.known().is_some() && !targets_lb(v) => {
                p.problem(
                    subject,
                    "VpcLinkMismatch",
                    format!("VPC link {} targets {:?}, not the gateway's load balancer {}", v.id, v.target_arns, lb.arn),
                    Some("a VPC link cannot change its target: reference the VPC link of the gateway's NLB, or leave vpcLink out".into()),
                );
                return None;
            }
            Some(v) if matches!(v.status.as_str(), "FAILED" | "DELETING") => {
                p.problem(
                    subject,
                    "VpcLinkUnusable",
                    format!("VPC link {} is {}: {}", v.id, v.status, v.status_message.clone().unwrap_or_default()),
                    Some("reference a working VPC link, or leave vpcLink out to have crosslink create one".into()),
                );
                return None;
            }
            Some(v) => Some(v),
        },
    };
    let usable = referenced.or_else(|| {
        mine.iter().copied().find(|v| targets_lb(v) && !matches!(v.status.as_str(), "FAILED" | "DELETING"))
    });
    // None of its own: the gateway's `adoption: Adopt` takes over one built without crosslink
    // that targets the load balancer.
    let adopted = match usable {
        None if cx.gw.spec.adoption == AdoptionPolicy::Adopt => state
            .vpc_links
            .iter()
            .find(|v| targets_lb(v) && !p.owned(&v.tags) && !matches!(v.status.as_str(), "FAILED" | "DELETING")),
        _ => None,
    };
    if let Some(v) = adopted {
        if p.refuse_other_instance(subject, &v.tags, &format!("VPC link {} ({})", v.name, v.id)) {
            return None;
        }
        p.adopt(
            ResourceKind::VpcLink,
            subject,
            account,
            format!("VPC link {} ({})", v.name, v.id),
            &v.id,
            &v.tags,
            &cx.want_tags,
            format!("by its target, the gateway's load balancer {}", lb.arn),
        );
    }
    let usable = usable.or(adopted);
    for v in &mine {
        if usable.is_some_and(|u| u.id == v.id) {
            continue;
        }
        p.claimed.insert(v.id.clone());
        if v.status == "DELETING" {
            continue;
        }
        let why = if v.status == "FAILED" {
            format!("VPC link {} is FAILED: {}", v.id, v.status_message.clone().unwrap_or_default())
        } else if let Some(r) = referenced {
            format!("the gateway uses VPC link {} (vpcLink.id)", r.id)
        } else if usable.is_some() {
            "duplicate VPC link".to_string()
        } else {
            format!("VPC link {} targets {:?}, not the gateway's load balancer", v.id, v.target_arns)
        };
        let a = p.add(
            subject,
            account,
            format!("VPC link {} ({})", v.name, v.id),
            Verb::Delete,
            Reason::Replaced { why },
            Op::VpcLink(VpcLinkOp::DeleteVpcLink { id: v.id.clone() }),
            vec![],
        );
        for (_, lb_delete) in lb.stale.iter().filter(|(arn, _)| v.target_arns.iter().any(|t| t == arn)) {
            p.wait_for(*lb_delete, a);
        }
    }
    let out = &mut cx.out.vpc_link;
    match usable {
        Some(v) => {
            p.claimed.insert(v.id.clone());
            p.report(subject).resources.insert("vpcLink".into(), v.id.clone());
            if v.status == "AVAILABLE" {
                out.id = Ref::Known(v.id.clone());
            } else {
                out.id = Ref::Pending(format!("VPC link {} to become AVAILABLE (now {})", v.id, v.status).into());
                p.report(subject).waiting.push(format!("VPC link {} is {}", v.id, v.status));
            }
        }
        None => {
            let reason = match mine.iter().find(|v| v.status == "FAILED") {
                Some(v) => Reason::Replaced {
                    why: format!(
                        "VPC link {} is FAILED: {}",
                        v.id,
                        v.status_message.as_deref().unwrap_or("no reason given")
                    ),
                },
                None => Reason::Missing,
            };
            let a = p.add(
                subject,
                account,
                format!("VPC link {link_name}"),
                Verb::Create,
                reason,
                Op::VpcLink(VpcLinkOp::CreateVpcLink {
                    name: link_name.clone(),
                    load_balancer_arn: lb.arn.clone(),
                    tags: cx.want_tags.clone(),
                }),
                vec![lb.action],
            );
            out.id = Ref::created(format!("VPC link {link_name}"), a, Output::Id);
            out.action = Some(a);
        }
    }
    Some(())
}
