//! A route's method with its HTTP_PROXY integration through the gateway's VPC link.

use serde::{Deserialize, Serialize};

use super::KindOp;
use crate::model::Reason;
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

// ---- Planning: names and comparisons ----------------------------------------------------------

/// The integration URI of a route: `http://<nlb-dns>:<port><path>[/{proxy}]`.
pub fn integration_uri(dns: &str, port: u16, path: &str, greedy: bool) -> String {
    if greedy { format!("http://{dns}:{port}{path}/{{proxy}}") } else { format!("http://{dns}:{port}{path}") }
}

/// The port of an integration URI pointing at `dns`, if it does.
pub(crate) fn uri_port(uri: &str, dns: &str) -> Option<u16> {
    let rest = uri.strip_prefix("http://")?.strip_prefix(dns)?.strip_prefix(':')?;
    rest.split('/').next()?.parse().ok()
}

/// The first difference between a method's live integration and the one it should have.
pub(crate) fn integration_drift(m: &ApiMethod, uri: &str, method: &str, vpc_link: &Ref) -> Option<Reason> {
    let Some(i) = &m.integration else {
        return Some(Reason::Drift {
            field: "integration".into(),
            live: "(none)".into(),
            desired: "HTTP_PROXY".into(),
        });
    };
    let want_http = if method == "ANY" { "ANY" } else { method };
    let checks: [(&str, Option<&str>, &str); 4] = [
        ("integration type", Some(i.kind.as_str()), "HTTP_PROXY"),
        ("integration uri", i.uri.as_deref(), uri),
        ("integration connectionType", i.connection_type.as_deref(), "VPC_LINK"),
        ("integration httpMethod", i.http_method.as_deref(), want_http),
    ];
    for (field, live, want) in checks {
        if live != Some(want) {
            return Some(Reason::Drift {
                field: field.into(),
                live: live.unwrap_or("(none)").into(),
                desired: want.into(),
            });
        }
    }
    // Only compared where AWS reports it (moto does not).
    if let (Some(live), Some(want)) = (&i.connection_id, vpc_link.known())
        && live != want
    {
        return Some(Reason::Drift {
            field: "integration connectionId".into(),
            live: live.clone(),
            desired: want.into(),
        });
    }
    None
}

// ---- Clean-up and tags (read by the planner's generic machinery) ------------------------------

/// Methods are removed with their API resource or REST API.
pub(crate) use crate::planner::nothing_to_prune as prunable;
pub(crate) use crate::planner::nothing_first as before_delete;
pub(crate) use crate::planner::untagged as tag_op;
