//! The AWS operations a plan is made of, with every parameter the call needs. An id that does
//! not exist yet is `Ref::Pending`: its action waits for the one that creates it, and the next
//! round of observe -> plan fills it in.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Serialize;

use crate::observed::{HealthCheckSettings, Tags};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ref {
    Known(String),
    /// Known after the named resource is created.
    Pending(String),
}

/// A known id is the id; one not known yet is `{"knownAfterApply": "<what creates it>"}`, so that
/// a machine reading a plan never mistakes a label for an ARN.
impl Serialize for Ref {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Ref::Known(id) => s.serialize_str(id),
            Ref::Pending(what) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("knownAfterApply", what)?;
                m.end()
            }
        }
    }
}

impl Ref {
    pub fn known(&self) -> Option<&str> {
        match self {
            Ref::Known(s) => Some(s),
            Ref::Pending(_) => None,
        }
    }
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ref::Known(s) => f.write_str(s),
            Ref::Pending(what) => write!(f, "(id of {what}, known after apply)"),
        }
    }
}

/// The AWS service an operation goes to (for rate limits, metrics and IAM).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Ec2,
    Elbv2,
    ApiGateway,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum Op {
    CreateVpcPeeringConnection {
        vpc_id: String,
        peer_vpc_id: String,
        peer_owner_id: String,
        peer_region: String,
        tags: Tags,
    },
    AcceptVpcPeeringConnection {
        peering_id: Ref,
    },
    DeleteVpcPeeringConnection {
        peering_id: String,
    },
    /// Sets the accepter side's `AllowDnsResolutionFromRemoteVpc` (made in the accepter's
    /// account, on an active peering: after the acceptance when the peering is new).
    SetPeeringDnsResolution {
        peering_id: Ref,
        allow: bool,
    },
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
    CreateLoadBalancer {
        name: String,
        subnet_ids: Vec<String>,
        tags: Tags,
    },
    DeleteLoadBalancer {
        arn: String,
    },
    CreateTargetGroup {
        name: String,
        vpc_id: String,
        port: u16,
        health_check: HealthCheckSettings,
        tags: Tags,
    },
    ModifyTargetGroup {
        arn: String,
        health_check: HealthCheckSettings,
    },
    DeleteTargetGroup {
        arn: String,
    },
    RegisterTargets {
        target_group_arn: Ref,
        targets: Vec<(Ipv4Addr, u16)>,
    },
    DeregisterTargets {
        target_group_arn: String,
        targets: Vec<(Ipv4Addr, u16)>,
    },
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
    /// Sets tags on an ELBv2 resource (load balancer, target group, listener).
    AddElbTags {
        arn: String,
        tags: Tags,
    },
    /// Sets tags on an EC2 resource (peering connection).
    CreateEc2Tags {
        resource_id: String,
        tags: Tags,
    },
    CreateVpcLink {
        name: String,
        load_balancer_arn: Ref,
        tags: Tags,
    },
    DeleteVpcLink {
        id: String,
    },
    CreateRestApi {
        name: String,
        tags: Tags,
    },
    DeleteRestApi {
        id: String,
    },
    CreateResource {
        rest_api_id: Ref,
        parent_id: Ref,
        path_part: String,
        /// The full path, for people.
        path: String,
    },
    DeleteResource {
        rest_api_id: String,
        resource_id: String,
        path: String,
    },
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
    /// CreateDeployment to the stage (creating the stage if needed), then tag the stage with the
    /// hash of what was deployed so that an interrupted pass deploys again.
    CreateDeployment {
        rest_api_id: Ref,
        stage: String,
        description: String,
        stage_tags: BTreeMap<String, String>,
    },
}

/// What an operation acts on, as a typed identity: what per-resource memory (backoff, recreate
/// counts) is keyed by. `Action::resource` is the same thing written for people.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ResourceKey {
    pub kind: ResourceKind,
    /// The id or ARN when known, else what names it before it exists (a name, a VPC pair, a path).
    pub id: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ResourceKind {
    Peering,
    Route,
    LoadBalancer,
    TargetGroup,
    Targets,
    Listener,
    VpcLink,
    RestApi,
    ApiResource,
    Method,
    Stage,
}

impl ResourceKind {
    /// Every kind, in dependency order (what is created first comes first).
    pub const ALL: [ResourceKind; 11] = [
        ResourceKind::Peering,
        ResourceKind::Route,
        ResourceKind::LoadBalancer,
        ResourceKind::TargetGroup,
        ResourceKind::Targets,
        ResourceKind::Listener,
        ResourceKind::VpcLink,
        ResourceKind::RestApi,
        ResourceKind::ApiResource,
        ResourceKind::Method,
        ResourceKind::Stage,
    ];
}

impl Op {
    pub fn service(&self) -> Service {
        use Op::*;
        match self {
            CreateVpcPeeringConnection { .. }
            | AcceptVpcPeeringConnection { .. }
            | DeleteVpcPeeringConnection { .. }
            | SetPeeringDnsResolution { .. }
            | CreateRoute { .. }
            | ReplaceRoute { .. }
            | DeleteRoute { .. }
            | CreateEc2Tags { .. } => Service::Ec2,
            CreateLoadBalancer { .. }
            | DeleteLoadBalancer { .. }
            | CreateTargetGroup { .. }
            | ModifyTargetGroup { .. }
            | DeleteTargetGroup { .. }
            | RegisterTargets { .. }
            | DeregisterTargets { .. }
            | CreateListener { .. }
            | ModifyListener { .. }
            | DeleteListener { .. }
            | AddElbTags { .. } => Service::Elbv2,
            CreateVpcLink { .. }
            | DeleteVpcLink { .. }
            | CreateRestApi { .. }
            | DeleteRestApi { .. }
            | CreateResource { .. }
            | DeleteResource { .. }
            | PutProxyMethod { .. }
            | DeleteMethod { .. }
            | CreateDeployment { .. } => Service::ApiGateway,
        }
    }

    /// The operation's name, as AWS names the (first) call.
    pub fn name(&self) -> &'static str {
        use Op::*;
        match self {
            CreateVpcPeeringConnection { .. } => "CreateVpcPeeringConnection",
            AcceptVpcPeeringConnection { .. } => "AcceptVpcPeeringConnection",
            DeleteVpcPeeringConnection { .. } => "DeleteVpcPeeringConnection",
            SetPeeringDnsResolution { .. } => "ModifyVpcPeeringConnectionOptions",
            CreateRoute { .. } => "CreateRoute",
            ReplaceRoute { .. } => "ReplaceRoute",
            DeleteRoute { .. } => "DeleteRoute",
            CreateEc2Tags { .. } => "CreateTags",
            CreateLoadBalancer { .. } => "CreateLoadBalancer",
            DeleteLoadBalancer { .. } => "DeleteLoadBalancer",
            CreateTargetGroup { .. } => "CreateTargetGroup",
            ModifyTargetGroup { .. } => "ModifyTargetGroup",
            DeleteTargetGroup { .. } => "DeleteTargetGroup",
            RegisterTargets { .. } => "RegisterTargets",
            DeregisterTargets { .. } => "DeregisterTargets",
            CreateListener { .. } => "CreateListener",
            ModifyListener { .. } => "ModifyListener",
            DeleteListener { .. } => "DeleteListener",
            AddElbTags { .. } => "AddTags",
            CreateVpcLink { .. } => "CreateVpcLink",
            DeleteVpcLink { .. } => "DeleteVpcLink",
            CreateRestApi { .. } => "CreateRestApi",
            DeleteRestApi { .. } => "DeleteRestApi",
            CreateResource { .. } => "CreateResource",
            DeleteResource { .. } => "DeleteResource",
            PutProxyMethod { .. } => "PutMethod+PutIntegration",
            DeleteMethod { .. } => "DeleteMethod",
            CreateDeployment { .. } => "CreateDeployment",
        }
    }

    /// Whether every id the call needs is known (nothing pending).
    /// The resource this operation acts on.
    pub fn target(&self) -> ResourceKey {
        use Op::*;
        use ResourceKind as K;
        let (kind, id) = match self {
            CreateVpcPeeringConnection { vpc_id, peer_vpc_id, .. } => (K::Peering, format!("{vpc_id}/{peer_vpc_id}")),
            AcceptVpcPeeringConnection { peering_id } | SetPeeringDnsResolution { peering_id, .. } => {
                (K::Peering, peering_id.to_string())
            }
            DeleteVpcPeeringConnection { peering_id } => (K::Peering, peering_id.clone()),
            CreateEc2Tags { resource_id, .. } => (K::Peering, resource_id.clone()),
            CreateRoute { route_table_id, destination, .. }
            | ReplaceRoute { route_table_id, destination, .. }
            | DeleteRoute { route_table_id, destination } => (K::Route, format!("{route_table_id}/{destination}")),
            CreateLoadBalancer { name, .. } => (K::LoadBalancer, name.clone()),
            DeleteLoadBalancer { arn } => (K::LoadBalancer, arn.clone()),
            CreateTargetGroup { name, .. } => (K::TargetGroup, name.clone()),
            ModifyTargetGroup { arn, .. } | DeleteTargetGroup { arn } => (K::TargetGroup, arn.clone()),
            RegisterTargets { target_group_arn, .. } => (K::Targets, target_group_arn.to_string()),
            DeregisterTargets { target_group_arn, .. } => (K::Targets, target_group_arn.clone()),
            CreateListener { load_balancer_arn, port, .. } => (K::Listener, format!("{load_balancer_arn}:{port}")),
            ModifyListener { arn, .. } | DeleteListener { arn } => (K::Listener, arn.clone()),
            // Tags of a load balancer, target group or listener: the ARN says which.
            AddElbTags { arn, .. } => (K::LoadBalancer, arn.clone()),
            CreateVpcLink { name, .. } => (K::VpcLink, name.clone()),
            DeleteVpcLink { id } => (K::VpcLink, id.clone()),
            CreateRestApi { name, .. } => (K::RestApi, name.clone()),
            DeleteRestApi { id } => (K::RestApi, id.clone()),
            CreateResource { rest_api_id, path, .. } => (K::ApiResource, format!("{rest_api_id}{path}")),
            DeleteResource { rest_api_id, path, .. } => (K::ApiResource, format!("{rest_api_id}{path}")),
            PutProxyMethod { rest_api_id, path, http_method, .. } => {
                (K::Method, format!("{rest_api_id}{path} {http_method}"))
            }
            DeleteMethod { rest_api_id, path, http_method, .. } => {
                (K::Method, format!("{rest_api_id}{path} {http_method}"))
            }
            CreateDeployment { rest_api_id, stage, .. } => (K::Stage, format!("{rest_api_id}/{stage}")),
        };
        ResourceKey { kind, id }
    }

    pub fn is_ready(&self) -> bool {
        use Op::*;
        let refs: Vec<&Ref> = match self {
            AcceptVpcPeeringConnection { peering_id } | SetPeeringDnsResolution { peering_id, .. } => vec![peering_id],
            CreateRoute { peering_id, .. } | ReplaceRoute { peering_id, .. } => vec![peering_id],
            RegisterTargets { target_group_arn, .. } => vec![target_group_arn],
            CreateListener { load_balancer_arn, target_group_arn, .. } => vec![load_balancer_arn, target_group_arn],
            ModifyListener { target_group_arn, .. } => vec![target_group_arn],
            CreateVpcLink { load_balancer_arn, .. } => vec![load_balancer_arn],
            CreateResource { rest_api_id, parent_id, .. } => vec![rest_api_id, parent_id],
            PutProxyMethod { rest_api_id, resource_id, vpc_link_id, .. } => vec![rest_api_id, resource_id, vpc_link_id],
            CreateDeployment { rest_api_id, .. } => vec![rest_api_id],
            // No id they need can be pending. Listed one by one: a new operation must say which
            // of its inputs may be pending, or this does not compile.
            CreateVpcPeeringConnection { .. }
            | DeleteVpcPeeringConnection { .. }
            | DeleteRoute { .. }
            | CreateLoadBalancer { .. }
            | DeleteLoadBalancer { .. }
            | CreateTargetGroup { .. }
            | ModifyTargetGroup { .. }
            | DeleteTargetGroup { .. }
            | DeregisterTargets { .. }
            | DeleteListener { .. }
            | AddElbTags { .. }
            | CreateEc2Tags { .. }
            | DeleteVpcLink { .. }
            | CreateRestApi { .. }
            | DeleteRestApi { .. }
            | DeleteResource { .. }
            | DeleteMethod { .. } => vec![],
        };
        refs.iter().all(|r| r.known().is_some())
    }

    /// Whether the resource the call acts on is one the plan creates before it (its id is
    /// pending): targets into a new group, the options of a new peering, a new API's first
    /// deployment. Such a step is part of the creation.
    pub fn on_new_resource(&self) -> bool {
        use Op::*;
        let target = match self {
            AcceptVpcPeeringConnection { peering_id } | SetPeeringDnsResolution { peering_id, .. } => peering_id,
            RegisterTargets { target_group_arn, .. } => target_group_arn,
            CreateDeployment { rest_api_id, .. } => rest_api_id,
            _ => return false,
        };
        target.known().is_none()
    }

    pub fn is_delete(&self) -> bool {
        use Op::*;
        matches!(
            self,
            DeleteVpcPeeringConnection { .. }
                | DeleteRoute { .. }
                | DeleteLoadBalancer { .. }
                | DeleteTargetGroup { .. }
                | DeregisterTargets { .. }
                | DeleteListener { .. }
                | DeleteVpcLink { .. }
                | DeleteRestApi { .. }
                | DeleteResource { .. }
                | DeleteMethod { .. }
        )
    }
}
