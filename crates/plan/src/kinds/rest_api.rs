//! A gateway's REST API.

use serde::{Deserialize, Serialize};

use super::KindOp;
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
