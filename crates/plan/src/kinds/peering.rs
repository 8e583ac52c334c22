//! VPC peering connections from a gateway VPC to a service VPC: requested in the gateway's account, accepted in the service's, with the accepter's DNS option.

use serde::{Deserialize, Serialize};

use super::KindOp;
use crate::kinds::RouteOp;
use crate::model::{Reason, Subject, Verb};
use crate::observed::{AccountObservation, AccountState};
use crate::planner::{Planner, Prunable};
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

// ---- Clean-up and tags (read by the planner's generic machinery) ------------------------------

/// The peerings requested from this account (the accepter's copy is the same connection), that
/// are not gone or going already.
pub(crate) fn prunable(st: &AccountState) -> Vec<Prunable<'_>> {
    st.peerings
        .iter()
        .filter(|p| !p.status.is_dead() && p.status != PeeringStatus::Deleting && p.requester_account == st.account_id)
        .map(|p| Prunable {
            tags: &p.tags,
            id: p.id.clone(),
            what: format!("peering {}", p.id),
            delete: PeeringOp::DeleteVpcPeeringConnection { peering_id: p.id.clone() }.into(),
            uses: Vec::new(),
            follows_link: false,
            deleting: false,
        })
        .collect()
}

/// A peering that a link removed with deletionPolicy Retain still sends traffic through is kept,
/// though tagged Delete. Otherwise every route to it, in any observed account, is deleted first,
/// except a route that a desired peering takes over: the peering waits for that one instead.
pub(crate) fn before_delete<'a>(
    pl: &mut Planner<'a>,
    subject: &Subject,
    st: &'a AccountState,
    c: &Prunable<'a>,
) -> Option<Vec<Option<usize>>> {
    let p = st.peerings.iter().find(|p| p.id == c.id)?;
    let accepter_cidrs = pl.o.accounts.values().find_map(|a| match a {
        AccountObservation::Ok(s) if s.account_id == p.accepter_account => {
            s.vpcs.get(&p.accepter_vpc).map(|v| v.cidrs.clone())
        }
        _ => None,
    });
    let users = accepter_cidrs.map(|cidrs| pl.retained_users(st, &p.requester_vpc, &cidrs)).unwrap_or_default();
    if !users.is_empty() {
        pl.report(subject)
            .retained
            .push(format!("{} ({} removed with deletionPolicy Retain still uses it)", c.what, users.join(", ")));
        return None;
    }
    let routes: Vec<(String, String, ipnet::Ipv4Net)> = pl
        .o
        .accounts
        .iter()
        .filter_map(|(n, a)| match a {
            AccountObservation::Ok(s) => Some((n, s)),
            _ => None,
        })
        .flat_map(|(n, s)| {
            s.route_tables.values().flat_map(move |t| {
                t.routes
                    .iter()
                    .filter(|r| r.peering_id.as_deref() == Some(p.id.as_str()))
                    .map(move |r| (n.clone(), t.id.clone(), r.destination))
            })
        })
        .collect();
    let mut first = Vec::new();
    for (acct, rtb, dest) in routes {
        // A desired peering takes this route over (unless it is blocked: then nothing of it is
        // done): not deleted, and the peering goes after.
        let taker = pl.taken_over.get(&(rtb.clone(), dest)).copied();
        if let Some(a) = taker.filter(|a| !pl.blocked(&pl.plan.actions[*a].subject)) {
            first.push(Some(a));
            continue;
        }
        first.push(Some(pl.add(
            subject,
            &acct,
            format!("route {dest} in {rtb}"),
            Verb::Delete,
            Reason::NoLongerDesired,
            RouteOp::DeleteRoute { route_table_id: rtb, destination: dest }.into(),
            vec![],
        )));
    }
    Some(first)
}

/// EC2 tags are added with `CreateTags`.
pub(crate) fn tag_op(id: &str, tags: Tags) -> Option<crate::op::Op> {
    Some(PeeringOp::CreateEc2Tags { resource_id: id.to_string(), tags }.into())
}
