//! A link's listener on the gateway's load balancer, forwarding to its target group.

use serde::{Deserialize, Serialize};

use super::KindOp;
use crate::observed::AccountState;
use crate::planner::Prunable;
use crate::op::{Ref, Service};
use crate::observed::Tags;

// ---- What is observed ------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Listener {
    pub arn: String,
    pub load_balancer_arn: String,
    pub port: u16,
    pub protocol: String,
    /// The target group of the default forward action.
    pub target_group_arn: Option<String>,
    pub tags: Tags,
}

// ---- Operations -------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum ListenerOp {
    CreateListener {
        load_balancer_arn: Ref,
        port: u16,
        target_group_arn: Ref,
        tags: Tags,
    },
    ModifyListener {
        arn: String,
        port: u16,
        target_group_arn: Ref,
    },
    DeleteListener {
        arn: String,
    },
}

impl KindOp for ListenerOp {
    fn service(&self) -> Service {
        Service::Elbv2
    }

    fn name(&self) -> &'static str {
        match self {
            Self::CreateListener { .. } => "CreateListener",
            Self::ModifyListener { .. } => "ModifyListener",
            Self::DeleteListener { .. } => "DeleteListener",
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::CreateListener { load_balancer_arn, port, .. } => format!("{load_balancer_arn}:{port}"),
            Self::ModifyListener { arn, .. } | Self::DeleteListener { arn } => arn.clone(),
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::CreateListener { load_balancer_arn, target_group_arn, .. } => vec![load_balancer_arn, target_group_arn],
            Self::ModifyListener { target_group_arn, .. } => vec![target_group_arn],
            Self::DeleteListener { .. } => vec![],
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::CreateListener { load_balancer_arn, target_group_arn, .. } => vec![load_balancer_arn, target_group_arn],
            Self::ModifyListener { target_group_arn, .. } => vec![target_group_arn],
            Self::DeleteListener { .. } => vec![],
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
        matches!(self, Self::DeleteListener { .. })
    }
}

// ---- Clean-up and tags (read by the planner's generic machinery) ------------------------------

pub(crate) fn prunable(st: &AccountState) -> Vec<Prunable<'_>> {
    st.listeners
        .iter()
        .map(|x| Prunable {
            tags: &x.tags,
            id: x.arn.clone(),
            what: format!("listener :{}", x.port),
            delete: ListenerOp::DeleteListener { arn: x.arn.clone() }.into(),
            uses: std::iter::once(x.load_balancer_arn.clone()).chain(x.target_group_arn.clone()).collect(),
            follows_link: true,
            deleting: false,
        })
        .collect()
}

pub(crate) use crate::planner::nothing_first as before_delete;

/// ELBv2 tags are added with one call for any of its resources (`AddTags`).
pub(crate) use super::load_balancer::tag_op;
