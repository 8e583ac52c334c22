//! A gateway's REST API.

use serde::{Deserialize, Serialize};

use super::KindOp;
use crate::observed::AccountState;
use crate::planner::Prunable;
use crate::kinds::api_resource::ApiResource;
use crate::kinds::stage::Stage;
use crate::op::{Ref, Service};
use crate::observed::Tags;

// ---- What is observed ------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestApi {
    pub id: String,
    pub name: String,
    pub tags: Tags,
    /// Read only for the APIs of desired Gateways or crosslink's own.
    pub resources: Vec<ApiResource>,
    pub stages: Vec<Stage>,
}

// ---- Operations -------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum RestApiOp {
    CreateRestApi {
        name: String,
        tags: Tags,
    },
    DeleteRestApi {
        id: String,
    },
}

impl KindOp for RestApiOp {
    fn service(&self) -> Service {
        Service::ApiGateway
    }

    fn name(&self) -> &'static str {
        match self {
            Self::CreateRestApi { .. } => "CreateRestApi",
            Self::DeleteRestApi { .. } => "DeleteRestApi",
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::CreateRestApi { name, .. } => name.clone(),
            Self::DeleteRestApi { id } => id.clone(),
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::CreateRestApi { .. } | Self::DeleteRestApi { .. } => vec![],
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::CreateRestApi { .. } | Self::DeleteRestApi { .. } => vec![],
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
        matches!(self, Self::DeleteRestApi { .. })
    }
}

// ---- Clean-up and tags (read by the planner's generic machinery) ------------------------------

/// A REST API's integrations may go through any VPC link of its account: it is deleted before
/// them.
pub(crate) fn prunable(st: &AccountState) -> Vec<Prunable<'_>> {
    st.rest_apis
        .iter()
        .map(|api| Prunable {
            tags: &api.tags,
            id: api.id.clone(),
            what: format!("REST API {} ({})", api.name, api.id),
            delete: RestApiOp::DeleteRestApi { id: api.id.clone() }.into(),
            uses: st.vpc_links.iter().map(|v| v.id.clone()).collect(),
            follows_link: false,
            deleting: false,
        })
        .collect()
}

pub(crate) use crate::planner::nothing_first as before_delete;
pub(crate) use crate::planner::untagged as tag_op;
