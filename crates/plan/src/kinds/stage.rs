//! A gateway's stage and the deployment it serves.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::KindOp;
use sha2::{Digest, Sha256};
use crate::op::{Ref, Service};
use crate::observed::Tags;

// ---- What is observed ------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Stage {
    pub name: String,
    pub deployment_id: Option<String>,
    pub tags: Tags,
}

// ---- Operations -------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum StageOp {
    /// CreateDeployment to the stage (creating the stage if needed), then tag the stage with the
    /// hash of what was deployed so that an interrupted pass deploys again.
    CreateDeployment {
        rest_api_id: Ref,
        stage: String,
        description: String,
        stage_tags: BTreeMap<String, String>,
    },
}

impl KindOp for StageOp {
    fn service(&self) -> Service {
        Service::ApiGateway
    }

    fn name(&self) -> &'static str {
        match self {
            Self::CreateDeployment { .. } => "CreateDeployment",
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::CreateDeployment { rest_api_id, stage, .. } => format!("{rest_api_id}/{stage}"),
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::CreateDeployment { rest_api_id, .. } => vec![rest_api_id],
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::CreateDeployment { rest_api_id, .. } => vec![rest_api_id],
        }
    }

    fn lets_chain(&self, state: Option<&str>) -> bool {
        let _ = state;
        true
    }

    fn on_new_resource(&self) -> bool {
        match self {
            Self::CreateDeployment { rest_api_id, .. } => rest_api_id.known().is_none(),
        }
    }

    fn is_delete(&self) -> bool {
        false
    }
}

// ---- Planning: names and comparisons ----------------------------------------------------------

/// The stage tag that records what was deployed: a hash over the methods (`<method> <path>
/// <uri>`, in order) and, last, the VPC link line.
pub(crate) fn deployed_hash(mut lines: Vec<String>, vpc_link_line: &str) -> String {
    lines.sort();
    let mut h = Sha256::new();
    for l in lines.iter().map(String::as_str).chain([vpc_link_line]) {
        h.update(l.as_bytes());
        h.update(b"\n");
    }
    h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

// ---- Clean-up and tags (read by the planner's generic machinery) ------------------------------

/// A stage is removed with its REST API; a deployment is never deleted.
pub(crate) use crate::planner::nothing_to_prune as prunable;
pub(crate) use crate::planner::nothing_first as before_delete;
pub(crate) use crate::planner::untagged as tag_op;
