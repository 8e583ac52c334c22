//! A gateway's API Gateway REST VPC link to its load balancer.

use serde::{Deserialize, Serialize};

use super::KindOp;
use crate::observed::AccountState;
use crate::planner::Prunable;
use crate::op::{Ref, Service};
use crate::observed::Tags;

// ---- What is observed ------------------------------------------------------------------------

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
}

impl KindOp for VpcLinkOp {
    fn service(&self) -> Service {
        Service::ApiGateway
    }

    fn name(&self) -> &'static str {
        match self {
            Self::CreateVpcLink { .. } => "CreateVpcLink",
            Self::DeleteVpcLink { .. } => "DeleteVpcLink",
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::CreateVpcLink { name, .. } => name.clone(),
            Self::DeleteVpcLink { id } => id.clone(),
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::CreateVpcLink { load_balancer_arn, .. } => vec![load_balancer_arn],
            Self::DeleteVpcLink { .. } => vec![],
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::CreateVpcLink { load_balancer_arn, .. } => vec![load_balancer_arn],
            Self::DeleteVpcLink { .. } => vec![],
        }
    }

    fn lets_chain(&self, state: Option<&str>) -> bool {
        match self {
            // Methods may use a VPC link only once it is AVAILABLE.
            Self::CreateVpcLink { .. } => state == Some("AVAILABLE"),
            Self::DeleteVpcLink { .. } => true,
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
pub(crate) use crate::planner::untagged as tag_op;
