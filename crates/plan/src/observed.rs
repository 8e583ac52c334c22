//! Live AWS state as plain data: what the AWS adapter reads, and all the planner sees.
//! Only the fields crosslink decides on are kept.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Serialize;

pub type Tags = BTreeMap<String, String>;

/// Everything observed in one pass, by Account name.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Observed {
    pub accounts: BTreeMap<String, AccountObservation>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "camelCase")]
pub enum AccountObservation {
    Ok(Box<AccountState>),
    /// Credentials, identity check or a read failed: nothing is planned in this account.
    Failed {
        code: String,
        message: String,
        /// Throttling, a 5xx, a timeout, an endpoint not answering: likely to pass, so worth
        /// reading again soon. Access denied or a wrong account is not.
        #[serde(default)]
        retryable: bool,
    },
}

/// What one account holds in its region. Network-side reads (VPCs, peerings, route tables)
/// happen in every account; load balancers and API Gateway only where a Gateway lives.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountState {
    pub account_id: String,
    pub region: String,
    pub vpcs: BTreeMap<String, Vpc>,
    pub peerings: Vec<Peering>,
    pub route_tables: BTreeMap<String, RouteTable>,
    pub load_balancers: Vec<LoadBalancer>,
    pub listeners: Vec<Listener>,
    pub target_groups: Vec<TargetGroup>,
    pub vpc_links: Vec<VpcLink>,
    pub rest_apis: Vec<RestApi>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Vpc {
    pub id: String,
    /// Associated IPv4 CIDR blocks, primary first.
    pub cidrs: Vec<Ipv4Net>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeeringStatus {
    PendingAcceptance,
    Provisioning,
    Active,
    Rejected,
    Expired,
    Failed,
    Deleting,
    Deleted,
    Other,
}

impl PeeringStatus {
    pub fn parse(s: &str) -> PeeringStatus {
        match s {
            "pending-acceptance" => Self::PendingAcceptance,
            "provisioning" | "initiating-request" => Self::Provisioning,
            "active" => Self::Active,
            "rejected" => Self::Rejected,
            "expired" => Self::Expired,
            "failed" => Self::Failed,
            "deleting" => Self::Deleting,
            "deleted" => Self::Deleted,
            _ => Self::Other,
        }
    }
    /// Whether the connection is gone for good (a new one must be requested).
    pub fn is_dead(self) -> bool {
        matches!(self, Self::Rejected | Self::Expired | Self::Failed | Self::Deleting | Self::Deleted)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Peering {
    pub id: String,
    pub requester_vpc: String,
    pub requester_account: String,
    pub accepter_vpc: String,
    pub accepter_account: String,
    pub status: PeeringStatus,
    pub tags: Tags,
    /// The accepter side's `AllowDnsResolutionFromRemoteVpc`: the requester (gateway) VPC
    /// resolves the accepter (service) VPC's public DNS names to private IPs.
    #[serde(default)]
    pub accepter_dns_resolution: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteTable {
    pub id: String,
    pub vpc_id: String,
    pub routes: Vec<Route>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    pub destination: Ipv4Net,
    /// The peering connection the route targets, if it targets one.
    pub peering_id: Option<String>,
    /// Something else (gateway, NAT, ENI...) when the route does not target a peering.
    pub other_target: Option<String>,
    pub blackhole: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancer {
    pub arn: String,
    pub name: String,
    pub dns_name: String,
    pub vpc_id: String,
    /// `network`, `application`, `gateway` (as reported).
    pub kind: String,
    pub internal: bool,
    /// `provisioning`, `active`, `failed`, ...
    pub state: String,
    pub subnet_ids: Vec<String>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    pub arn: String,
    pub load_balancer_arn: String,
    pub port: u16,
    pub protocol: String,
    /// The target group of the default forward action.
    pub target_group_arn: Option<String>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckSettings {
    pub protocol: String,
    pub path: Option<String>,
    /// `traffic-port` or a number.
    pub port: String,
    pub interval_seconds: u16,
    pub healthy_threshold: u8,
    pub unhealthy_threshold: u8,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroup {
    pub arn: String,
    pub name: String,
    pub vpc_id: String,
    pub protocol: String,
    pub port: u16,
    pub target_type: String,
    pub health_check: HealthCheckSettings,
    pub tags: Tags,
    /// Registered targets (read only for crosslink's own target groups).
    pub targets: Vec<RegisteredTarget>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredTarget {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub availability_zone: Option<String>,
    /// `healthy`, `unhealthy`, `initial`, `draining`, `unused`, ...
    pub health: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VpcLink {
    pub id: String,
    pub name: String,
    pub target_arns: Vec<String>,
    /// `AVAILABLE`, `PENDING`, `DELETING`, `FAILED`.
    pub status: String,
    pub status_message: Option<String>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestApi {
    pub id: String,
    pub name: String,
    pub tags: Tags,
    /// Read only for the APIs of desired Gateways or crosslink's own.
    pub resources: Vec<ApiResource>,
    pub stages: Vec<Stage>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiResource {
    pub id: String,
    pub parent_id: Option<String>,
    pub path: String,
    pub methods: BTreeMap<String, ApiMethod>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiMethod {
    pub authorization_type: String,
    pub integration: Option<Integration>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Integration {
    /// `HTTP_PROXY`, `HTTP`, `AWS_PROXY`, ...
    pub kind: String,
    pub http_method: Option<String>,
    pub uri: Option<String>,
    pub connection_type: Option<String>,
    /// Real AWS reports it; moto does not (it is then `None` and not compared).
    pub connection_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    pub name: String,
    pub deployment_id: Option<String>,
    pub tags: Tags,
}

impl AccountState {
    pub fn peering(&self, id: &str) -> Option<&Peering> {
        self.peerings.iter().find(|p| p.id == id)
    }
    pub fn load_balancer(&self, arn: &str) -> Option<&LoadBalancer> {
        self.load_balancers.iter().find(|l| l.arn == arn)
    }
}
