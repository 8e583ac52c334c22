//! A route's method with its HTTP_PROXY integration through the gateway's VPC link.

use serde::{Deserialize, Serialize};

use super::KindOp;
use crate::op::{Ref, Service};

// ---- What is observed ------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiMethod {
    pub authorization_type: String,
    pub integration: Option<Integration>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Integration {
    /// `HTTP_PROXY`, `HTTP`, `AWS_PROXY`, ...
    pub kind: String,
    pub http_method: Option<String>,
    pub uri: Option<String>,
    pub connection_type: Option<String>,
    /// Real AWS reports it; moto does not (it is then `None` and not compared).
    pub connection_id: Option<String>,
}

// ---- Operations -------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum MethodOp {
    /// PutMethod then PutIntegration (which replaces any integration there): one HTTP_PROXY
    /// method through the VPC Link.
    PutProxyMethod {
        rest_api_id: Ref,
        resource_id: Ref,
        path: String,
        http_method: String,
        /// Whether the resource is `{proxy+}` (the path parameter is passed through).
        greedy: bool,
        uri: String,
        vpc_link_id: Ref,
    },
    DeleteMethod {
        rest_api_id: String,
        resource_id: String,
        path: String,
        http_method: String,
    },
}

impl KindOp for MethodOp {
    fn service(&self) -> Service {
        Service::ApiGateway
    }

    fn name(&self) -> &'static str {
        match self {
            Self::PutProxyMethod { .. } => "PutMethod+PutIntegration",
            Self::DeleteMethod { .. } => "DeleteMethod",
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::PutProxyMethod { rest_api_id, path, http_method, .. } => format!("{rest_api_id}{path} {http_method}"),
            Self::DeleteMethod { rest_api_id, path, http_method, .. } => format!("{rest_api_id}{path} {http_method}"),
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::PutProxyMethod { rest_api_id, resource_id, vpc_link_id, .. } => vec![rest_api_id, resource_id, vpc_link_id],
            Self::DeleteMethod { .. } => vec![],
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::PutProxyMethod { rest_api_id, resource_id, vpc_link_id, .. } => vec![rest_api_id, resource_id, vpc_link_id],
            Self::DeleteMethod { .. } => vec![],
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
        matches!(self, Self::DeleteMethod { .. })
    }
}
