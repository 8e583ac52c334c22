//! Routes in the route tables of both VPCs of a peering, to the other side's CIDRs.

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::KindOp;
use crate::op::{Ref, Service};

// ---- What is observed ------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteTable {
    pub id: String,
    pub vpc_id: String,
    pub routes: Vec<Route>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Route {
    pub destination: Ipv4Net,
    /// The peering connection the route targets, if it targets one.
    pub peering_id: Option<String>,
    /// Something else (gateway, NAT, ENI...) when the route does not target a peering.
    pub other_target: Option<String>,
    pub blackhole: bool,
}

// ---- Operations -------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum RouteOp {
    CreateRoute {
        route_table_id: String,
        destination: Ipv4Net,
        peering_id: Ref,
    },
    ReplaceRoute {
        route_table_id: String,
        destination: Ipv4Net,
        peering_id: Ref,
    },
    DeleteRoute {
        route_table_id: String,
        destination: Ipv4Net,
    },
}

impl KindOp for RouteOp {
    fn service(&self) -> Service {
        Service::Ec2
    }

    fn name(&self) -> &'static str {
        match self {
            Self::CreateRoute { .. } => "CreateRoute",
            Self::ReplaceRoute { .. } => "ReplaceRoute",
            Self::DeleteRoute { .. } => "DeleteRoute",
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::CreateRoute { route_table_id, destination, .. }
            | Self::ReplaceRoute { route_table_id, destination, .. }
            | Self::DeleteRoute { route_table_id, destination } => format!("{route_table_id}/{destination}"),
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::CreateRoute { peering_id, .. } | Self::ReplaceRoute { peering_id, .. } => vec![peering_id],
            Self::DeleteRoute { .. } => vec![],
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::CreateRoute { peering_id, .. } | Self::ReplaceRoute { peering_id, .. } => vec![peering_id],
            Self::DeleteRoute { .. } => vec![],
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
        matches!(self, Self::DeleteRoute { .. })
    }
}

// ---- Clean-up and tags (read by the planner's generic machinery) ------------------------------

/// Routes carry no tags: the routes to a removed peering are deleted with it
/// (`peering::before_delete`), those a route table no longer wants by the peerings' planning.
pub(crate) use crate::planner::nothing_to_prune as prunable;
pub(crate) use crate::planner::nothing_first as before_delete;
pub(crate) use crate::planner::untagged as tag_op;
