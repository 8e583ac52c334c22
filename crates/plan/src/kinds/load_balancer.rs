//! The internal network load balancer of a gateway, and the tags of ELBv2 resources (its own, its target groups', its listeners').

use serde::{Deserialize, Serialize};

use super::KindOp;
use crate::observed::AccountState;
use crate::planner::Prunable;
use crate::op::{Ref, Service};
use crate::observed::Tags;

// ---- What is observed ------------------------------------------------------------------------

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
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::CreateLoadBalancer { name, .. } => name.clone(),
            // Tags of a load balancer, target group or listener: the ARN says which.
            Self::DeleteLoadBalancer { arn } | Self::AddElbTags { arn, .. } => arn.clone(),
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::CreateLoadBalancer { .. } | Self::DeleteLoadBalancer { .. } | Self::AddElbTags { .. } => vec![],
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::CreateLoadBalancer { .. } | Self::DeleteLoadBalancer { .. } | Self::AddElbTags { .. } => vec![],
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

pub(crate) use crate::planner::nothing_first as before_delete;

/// ELBv2 tags are added with one call for any of its resources (`AddTags`).
pub(crate) fn tag_op(id: &str, tags: Tags) -> Option<crate::op::Op> {
    Some(LoadBalancerOp::AddElbTags { arn: id.to_string(), tags }.into())
}
