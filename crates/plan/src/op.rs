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
    /// Not known when planning: made by an earlier action of the same plan (the engine hands it
    /// over within the pass, as soon as that action answers), or awaited (an asynchronous AWS
    /// state, such as a VPC link becoming AVAILABLE; a later observation fills it in).
    Pending(Pending),
}

/// An id not known when planning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// What it is known after, for people: `REST API open-banking`.
    pub what: String,
    /// The action of the plan (its id) whose answer carries it, and which value of the answer;
    /// `None` while it waits for AWS rather than for an action.
    pub by: Option<(usize, Output)>,
}

impl From<String> for Pending {
    /// Awaited: no action of the plan makes it.
    fn from(what: String) -> Self {
        Pending { what, by: None }
    }
}

impl From<&str> for Pending {
    fn from(what: &str) -> Self {
        Pending { what: what.to_string(), by: None }
    }
}

impl fmt::Display for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

/// Which value of a create's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Output {
    /// The id or ARN of what was created.
    Id,
    /// A new REST API's root resource `/`.
    RootResourceId,
    /// A new load balancer's DNS name.
    DnsName,
}

impl Ref {
    /// An id that the plan's action `by` creates.
    pub fn created(what: impl Into<String>, by: usize, output: Output) -> Ref {
        Ref::Pending(Pending { what: what.into(), by: Some((by, output)) })
    }

    /// The action that makes it and which value of its answer, when an action of the plan does.
    pub fn made_by(&self) -> Option<(usize, Output)> {
        match self {
            Ref::Pending(p) => p.by,
            Ref::Known(_) => None,
        }
    }
}

/// A known id is the id; one not known yet is `{"knownAfterApply": "<what creates it>"}`, so that
/// a machine reading a plan never mistakes a label for an ARN.
impl Serialize for Ref {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Ref::Known(id) => s.serialize_str(id),
            Ref::Pending(p) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("knownAfterApply", &p.what)?;
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
            Ref::Pending(p) => write!(f, "(id of {}, known after apply)", p.what),
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

    /// The ids the call needs that may not be known when planning.
    pub fn refs(&self) -> Vec<&Ref> {
        use Op::*;
        match self {
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
        }
    }

    /// The same ids, to fill in or renumber.
    pub fn refs_mut(&mut self) -> Vec<&mut Ref> {
        use Op::*;
        match self {
            AcceptVpcPeeringConnection { peering_id } | SetPeeringDnsResolution { peering_id, .. } => vec![peering_id],
            CreateRoute { peering_id, .. } | ReplaceRoute { peering_id, .. } => vec![peering_id],
            RegisterTargets { target_group_arn, .. } => vec![target_group_arn],
            CreateListener { load_balancer_arn, target_group_arn, .. } => vec![load_balancer_arn, target_group_arn],
            ModifyListener { target_group_arn, .. } => vec![target_group_arn],
            CreateVpcLink { load_balancer_arn, .. } => vec![load_balancer_arn],
            CreateResource { rest_api_id, parent_id, .. } => vec![rest_api_id, parent_id],
            PutProxyMethod { rest_api_id, resource_id, vpc_link_id, .. } => vec![rest_api_id, resource_id, vpc_link_id],
            CreateDeployment { rest_api_id, .. } => vec![rest_api_id],
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
        }
    }

    /// Whether every id the call needs is known (nothing pending, nothing still to be created).
    pub fn is_ready(&self) -> bool {
        self.refs().iter().all(|r| r.known().is_some())
    }

    /// Whether the call waits for something no action of the plan brings about (an
    /// asynchronous AWS state, or a resource a later observation must show).
    pub fn waits(&self) -> bool {
        self.refs().iter().any(|r| matches!(r, Ref::Pending(Pending { by: None, .. })))
    }

    /// Whether the state AWS reported for what this call made or changed lets the steps after it
    /// go on in the same pass: what the next observation would let the planner plan. A VPC link
    /// must be AVAILABLE before methods use it; routes and DNS options need an active peering;
    /// a peering request is accepted once it is made (AWS shows it to the accepter within
    /// seconds: an accepter that does not see it yet answers NotFound, which is a wait).
    pub fn lets_chain(&self, state: Option<&str>) -> bool {
        use Op::*;
        match self {
            CreateVpcLink { .. } => state == Some("AVAILABLE"),
            AcceptVpcPeeringConnection { .. } => state == Some("active"),
            CreateVpcPeeringConnection { .. } => matches!(state, Some("pending-acceptance" | "initiating-request")),
            _ => true,
        }
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
