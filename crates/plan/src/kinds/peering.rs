//! VPC peering connections from a gateway VPC to a service VPC: requested in the gateway's account, accepted in the service's, with the accepter's DNS option.

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;
use crate::kinds::ResourceKind;
use crate::op::{Op, Output};
use crate::planner::{Made, PairCx};
use crate::tags::{DELETION_POLICY, MANAGED_BY, OWNER};
use crosslink_desired::AdoptionPolicy;
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

/// Its field of `AccountState` (`peerings`): the account's peerings, as both sides see them.
pub type Observed = Vec<Peering>;

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
    /// Removes tags (by key) from an EC2 resource: `crosslink release`.
    DeleteEc2Tags {
        resource_id: String,
        keys: Vec<String>,
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
            Self::DeleteEc2Tags { .. } => "DeleteTags",
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::CreateVpcPeeringConnection { vpc_id, peer_vpc_id, .. } => format!("{vpc_id}/{peer_vpc_id}"),
            Self::AcceptVpcPeeringConnection { peering_id } | Self::SetPeeringDnsResolution { peering_id, .. } => {
                peering_id.to_string()
            }
            Self::DeleteVpcPeeringConnection { peering_id } => peering_id.clone(),
            Self::CreateEc2Tags { resource_id, .. } | Self::DeleteEc2Tags { resource_id, .. } => resource_id.clone(),
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::AcceptVpcPeeringConnection { peering_id } | Self::SetPeeringDnsResolution { peering_id, .. } => {
                vec![peering_id]
            }
            Self::CreateVpcPeeringConnection { .. } | Self::DeleteVpcPeeringConnection { .. } | Self::CreateEc2Tags { .. }
            | Self::DeleteEc2Tags { .. } => {
                vec![]
            }
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::AcceptVpcPeeringConnection { peering_id } | Self::SetPeeringDnsResolution { peering_id, .. } => {
                vec![peering_id]
            }
            Self::CreateVpcPeeringConnection { .. } | Self::DeleteVpcPeeringConnection { .. } | Self::CreateEc2Tags { .. }
            | Self::DeleteEc2Tags { .. } => {
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
            Self::DeleteVpcPeeringConnection { .. } | Self::SetPeeringDnsResolution { .. } | Self::CreateEc2Tags { .. }
            | Self::DeleteEc2Tags { .. } => true,
        }
    }

    fn on_new_resource(&self) -> bool {
        match self {
            Self::AcceptVpcPeeringConnection { peering_id } | Self::SetPeeringDnsResolution { peering_id, .. } => {
                peering_id.known().is_none()
            }
            Self::CreateVpcPeeringConnection { .. } | Self::DeleteVpcPeeringConnection { .. } | Self::CreateEc2Tags { .. }
            | Self::DeleteEc2Tags { .. } => {
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
    _account: &str,
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
    // A link that left peering for another transport still sends over it until its new path
    // carries the traffic (make-before-break): its peered targets are deregistered first.
    let moving = pl.still_peered(st, &p.requester_vpc, &p.accepter_vpc);
    if !moving.is_empty() {
        pl.report(subject).waiting.push(format!(
            "{} stays until {} no longer send(s) over it (the new transport's targets are healthy first)",
            c.what,
            moving.join(", ")
        ));
        return None;
    }
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

/// EC2 tags are removed with `DeleteTags`.
pub(crate) fn untag_op(id: &str, keys: Vec<String>) -> Option<crate::op::Op> {
    Some(PeeringOp::DeleteEc2Tags { resource_id: id.to_string(), keys }.into())
}

// ---- Planning (the pair stage) ----------------------------------------------------------------

/// What the pair's peering hands to its routes: its id (pending while this plan requests it)
/// and the action the routes wait for (the acceptance).
pub(crate) type Out<'a> = Made;

/// The pair's peering, found by its owner tag in the gateway account: accepted while pending,
/// its DNS option kept as desired, its tags repaired, duplicates deleted; none: requested and
/// accepted (a dead request is replaced); a peering of the pair crosslink does not own is a
/// problem. It stays Retain while a link removed with deletionPolicy Retain still sends traffic
/// through it. `None` when its routes cannot follow yet (waiting for it, or a problem).
pub(crate) fn plan<'a>(p: &mut Planner<'a>, cx: &mut PairCx<'a, '_>) -> Option<()> {
    let (pair, gs, ss, subject, owner) = (cx.pair, cx.gs, cx.ss, &cx.subject, cx.owner.as_str());
    let gw = pair.gw;
    let gw_account = &gw.spec.account;
    let retained_users = p.retained_users(gs, &gw.spec.vpc_id, &cx.svpc.cidrs);
    let retain = pair.retain || !retained_users.is_empty();
    let mut want_tags = BTreeMap::new();
    want_tags.insert(MANAGED_BY.to_string(), p.s.instance.clone());
    want_tags.insert(OWNER.to_string(), owner.to_string());
    want_tags.insert(DELETION_POLICY.to_string(), if retain { "Retain" } else { "Delete" }.to_string());
    want_tags.insert("Name".to_string(), format!("crosslink {}: {}", gw.metadata.name, pair.svc_vpc));
    let live: Vec<&Peering> = gs
        .peerings
        .iter()
        .filter(|x| x.requester_vpc == gw.spec.vpc_id && x.accepter_vpc == pair.svc_vpc && !x.status.is_dead())
        .collect();
    let mine: Vec<&Peering> = live.iter().filter(|x| p.owned_by(&x.tags, owner)).copied().collect();
    // A peering of the pair built without crosslink, taken over when a link of the pair opts in
    // (`adoption: Adopt`); one of another crosslink instance never is.
    let adopting = pair.links.iter().any(|l| l.spec.adoption == AdoptionPolicy::Adopt);
    let adopted = (mine.is_empty() && adopting)
        .then(|| {
            live.iter().find(|x| {
                !x.tags.contains_key(MANAGED_BY)
                    && matches!(x.status, PeeringStatus::Active | PeeringStatus::PendingAcceptance)
            })
        })
        .flatten()
        .copied();
    let chosen = mine
        .iter()
        .find(|x| x.status == PeeringStatus::Active)
        .or_else(|| mine.iter().find(|x| x.status != PeeringStatus::Deleting))
        .copied()
        .or(adopted);
    if let Some(x) = adopted {
        let rule = format!("by the VPC pair {} -> {}", gw.spec.vpc_id, pair.svc_vpc);
        let resource = format!("peering {}", x.id);
        p.adopt(ResourceKind::Peering, subject, gw_account, resource, &x.id, &x.tags, &want_tags, rule)?;
    }
    for x in &mine {
        p.claimed.insert(x.id.clone());
    }
    if !pair.retain && !retained_users.is_empty() {
        let what = chosen.map(|x| format!("peering {}", x.id)).unwrap_or_else(|| "the peering".into());
        p.report(subject).retained.push(format!(
            "{what} stays deletionPolicy Retain: {} (removed with deletionPolicy Retain) still uses it",
            retained_users.join(", ")
        ));
    }
    // Links of one pair agree on it (validation); the accepter (service account) sets it, on an
    // active peering: right after the acceptance when there is one.
    let dns = pair.links.iter().any(|l| l.spec.peering.allow_dns_resolution);
    let dns_after = |accept: usize, id: Ref, label: &str| {
        (
            format!("DNS resolution of peering {label}"),
            Op::Peering(PeeringOp::SetPeeringDnsResolution { peering_id: id, allow: dns }),
            vec![Some(accept)],
        )
    };
    let mut set_dns = None;
    let (pcx, pcx_action) = match chosen {
        Some(x) => {
            p.report(subject).resources.insert("peering".into(), x.id.clone());
            match x.status {
                PeeringStatus::Active => {
                    if x.accepter_dns_resolution != dns {
                        p.add(
                            subject,
                            &pair.svc_account,
                            format!("DNS resolution of peering {}", x.id),
                            Verb::Update,
                            Reason::Drift {
                                field: "peering.allowDnsResolution".into(),
                                live: x.accepter_dns_resolution.to_string(),
                                desired: dns.to_string(),
                            },
                            Op::Peering(PeeringOp::SetPeeringDnsResolution {
                                peering_id: Ref::Known(x.id.clone()),
                                allow: dns,
                            }),
                            vec![],
                        );
                    }
                    (Ref::Known(x.id.clone()), None)
                }
                PeeringStatus::PendingAcceptance => {
                    let a = p.add(
                        subject,
                        &pair.svc_account,
                        format!("peering {}", x.id),
                        Verb::Accept,
                        Reason::FollowsChanges { why: "pending acceptance by the service account".into() },
                        Op::Peering(PeeringOp::AcceptVpcPeeringConnection { peering_id: Ref::Known(x.id.clone()) }),
                        vec![],
                    );
                    if x.accepter_dns_resolution != dns {
                        set_dns = Some(dns_after(a, Ref::Known(x.id.clone()), &x.id));
                    }
                    (Ref::Known(x.id.clone()), Some(a))
                }
                other => {
                    p.report(subject).waiting.push(format!("peering {} is {other:?}", x.id));
                    (Ref::Pending(format!("peering {} to become active", x.id).into()), None)
                }
            }
        }
        None => {
            let other_instance = |x: &&Peering| x.tags.get(MANAGED_BY).filter(|i| **i != p.s.instance).cloned();
            if let Some((x, instance)) = live.iter().find_map(|x| Some((x, other_instance(x)?))) {
                p.problem(
                    subject,
                    "OwnedByAnotherInstance",
                    format!("{} peers {} and {} and belongs to crosslink instance `{instance}`", x.id, gw.spec.vpc_id, pair.svc_vpc),
                    Some(format!("AWS allows one peering per VPC pair: release it from `{instance}` first; it is never adopted while it carries that instance's tag")),
                );
                return None;
            }
            // One requested the other way, from the service VPC: AWS allows no second peering of
            // the pair, and crosslink manages the requester's side only.
            let reversed = gs.peerings.iter().find(|x| {
                x.requester_vpc == pair.svc_vpc && x.accepter_vpc == gw.spec.vpc_id && !x.status.is_dead()
            });
            if let Some(x) = reversed {
                p.problem(
                    subject,
                    "PeeringExists",
                    format!(
                        "{} already peers {} and {}, requested from the service VPC: crosslink manages (and adopts) peerings requested from the gateway VPC",
                        x.id, pair.svc_vpc, gw.spec.vpc_id
                    ),
                    Some(format!(
                        "keep it under the tool that made it and peer another gateway VPC, or replace it in a maintenance window: delete {} and let crosslink request the peering from {}",
                        x.id, gw.spec.vpc_id
                    )),
                );
                return None;
            }
            if let Some(foreign) = live.iter().find(|x| !p.owned(&x.tags)) {
                p.problem(
                    subject,
                    "PeeringExists",
                    format!(
                        "{} already peers {} and {} and is not managed by crosslink",
                        foreign.id, gw.spec.vpc_id, pair.svc_vpc
                    ),
                    Some(format!(
                        "AWS allows one peering per VPC pair: delete {}, or adopt it: set `adoption: Adopt` on a link of the pair",
                        foreign.id
                    )),
                );
                return None;
            }
            // A request that ended dead is replaced; the reason says so (and lets the engine
            // notice a pair whose requests keep failing).
            let dead = gs
                .peerings
                .iter()
                .filter(|x| x.requester_vpc == gw.spec.vpc_id && x.accepter_vpc == pair.svc_vpc)
                .filter(|x| p.owned_by(&x.tags, owner))
                .filter_map(|x| match x.status {
                    PeeringStatus::Failed => Some((x, "failed")),
                    PeeringStatus::Rejected => Some((x, "rejected")),
                    PeeringStatus::Expired => Some((x, "expired")),
                    _ => None,
                })
                .next_back();
            let reason = match dead {
                Some((x, how)) => Reason::Replaced { why: format!("peering {} {how}", x.id) },
                None => Reason::Missing,
            };
            let label = format!("peering {} -> {}", gw.spec.vpc_id, pair.svc_vpc);
            let created = p.add(
                subject,
                gw_account,
                label.clone(),
                Verb::Create,
                reason,
                Op::Peering(PeeringOp::CreateVpcPeeringConnection {
                    vpc_id: gw.spec.vpc_id.clone(),
                    peer_vpc_id: pair.svc_vpc.clone(),
                    peer_owner_id: ss.account_id.clone(),
                    peer_region: ss.region.clone(),
                    tags: want_tags.clone(),
                }),
                vec![],
            );
            let pending = Ref::created(label.clone(), created, Output::Id);
            let accept = p.add(
                subject,
                &pair.svc_account,
                label,
                Verb::Accept,
                Reason::FollowsChanges { why: "accepted by the service account".into() },
                Op::Peering(PeeringOp::AcceptVpcPeeringConnection { peering_id: pending.clone() }),
                vec![Some(created)],
            );
            // A new peering does not resolve DNS until told to.
            if dns {
                set_dns =
                    Some(dns_after(accept, pending.clone(), &format!("{} -> {}", gw.spec.vpc_id, pair.svc_vpc)));
            }
            (pending, Some(accept))
        }
    };
    if let Some((resource, op, deps)) = set_dns {
        p.add(
            subject,
            &pair.svc_account,
            resource,
            Verb::Update,
            Reason::FollowsChanges { why: "set after acceptance".into() },
            op,
            deps,
        );
    }
    if let Some(x) = chosen.filter(|_| adopted.is_none()) {
        p.tag_drift(
            ResourceKind::Peering,
            subject,
            gw_account,
            &format!("peering {}", x.id),
            &x.id,
            &x.tags,
            &want_tags,
            None,
        );
    }
    // Extra crosslink peerings for this pair (a create whose answer was lost): remove.
    for x in mine.iter().filter(|x| chosen.is_some_and(|c| c.id != x.id) && x.status != PeeringStatus::Deleting) {
        p.add(
            subject,
            gw_account,
            format!("peering {}", x.id),
            Verb::Delete,
            Reason::Replaced { why: "duplicate peering for this VPC pair".into() },
            Op::Peering(PeeringOp::DeleteVpcPeeringConnection { peering_id: x.id.clone() }),
            vec![],
        );
    }
    if pcx.known().is_none() && pcx_action.is_none() {
        return None; // waiting for the peering; routes come after.
    }
    cx.out.peering = Made { id: pcx, action: pcx_action };
    Some(())
}
