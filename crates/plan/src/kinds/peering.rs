//! VPC peering connections from a gateway VPC to a service VPC: requested in the gateway's account, accepted in the service's, with the accepter's DNS option.

use serde::{Deserialize, Serialize};

use super::KindOp;
use crate::op::{Ref, Service};
use crate::observed::Tags;

// ---- What is observed ------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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
    /// The status code as AWS writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingAcceptance => "pending-acceptance",
            Self::Provisioning => "provisioning",
            Self::Active => "active",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::Failed => "failed",
            Self::Deleting => "deleting",
            Self::Deleted => "deleted",
            Self::Other => "other",
        }
    }
    /// Whether the connection is gone for good (a new one must be requested).
    pub fn is_dead(self) -> bool {
        matches!(self, Self::Rejected | Self::Expired | Self::Failed | Self::Deleting | Self::Deleted)
    }
}

// ---- Operations -------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum PeeringOp {
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
    /// Sets tags on an EC2 resource (peering connection).
    CreateEc2Tags {
        resource_id: String,
        tags: Tags,
    },
}

impl KindOp for PeeringOp {
    fn service(&self) -> Service {
        Service::Ec2
    }

    fn name(&self) -> &'static str {
        match self {
            Self::CreateVpcPeeringConnection { .. } => "CreateVpcPeeringConnection",
            Self::AcceptVpcPeeringConnection { .. } => "AcceptVpcPeeringConnection",
            Self::DeleteVpcPeeringConnection { .. } => "DeleteVpcPeeringConnection",
            Self::SetPeeringDnsResolution { .. } => "ModifyVpcPeeringConnectionOptions",
            Self::CreateEc2Tags { .. } => "CreateTags",
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::CreateVpcPeeringConnection { vpc_id, peer_vpc_id, .. } => format!("{vpc_id}/{peer_vpc_id}"),
            Self::AcceptVpcPeeringConnection { peering_id } | Self::SetPeeringDnsResolution { peering_id, .. } => {
                peering_id.to_string()
            }
            Self::DeleteVpcPeeringConnection { peering_id } => peering_id.clone(),
            Self::CreateEc2Tags { resource_id, .. } => resource_id.clone(),
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::AcceptVpcPeeringConnection { peering_id } | Self::SetPeeringDnsResolution { peering_id, .. } => {
                vec![peering_id]
            }
            Self::CreateVpcPeeringConnection { .. } | Self::DeleteVpcPeeringConnection { .. } | Self::CreateEc2Tags { .. } => {
                vec![]
            }
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::AcceptVpcPeeringConnection { peering_id } | Self::SetPeeringDnsResolution { peering_id, .. } => {
                vec![peering_id]
            }
            Self::CreateVpcPeeringConnection { .. } | Self::DeleteVpcPeeringConnection { .. } | Self::CreateEc2Tags { .. } => {
                vec![]
            }
        }
    }

    fn lets_chain(&self, state: Option<&str>) -> bool {
        match self {
            // A peering request is accepted once it is made (AWS shows it to the accepter within
            // seconds: an accepter that does not see it yet answers NotFound, which is a wait);
            // routes and DNS options need an active peering.
            Self::CreateVpcPeeringConnection { .. } => matches!(state, Some("pending-acceptance" | "initiating-request")),
            Self::AcceptVpcPeeringConnection { .. } => state == Some("active"),
            Self::DeleteVpcPeeringConnection { .. } | Self::SetPeeringDnsResolution { .. } | Self::CreateEc2Tags { .. } => true,
        }
    }

    fn on_new_resource(&self) -> bool {
        match self {
            Self::AcceptVpcPeeringConnection { peering_id } | Self::SetPeeringDnsResolution { peering_id, .. } => {
                peering_id.known().is_none()
            }
            Self::CreateVpcPeeringConnection { .. } | Self::DeleteVpcPeeringConnection { .. } | Self::CreateEc2Tags { .. } => {
                false
            }
        }
    }

    fn is_delete(&self) -> bool {
        matches!(self, Self::DeleteVpcPeeringConnection { .. })
    }
}
