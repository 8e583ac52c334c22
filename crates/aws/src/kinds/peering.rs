//! VPC peering connections and their options (requested in the gateway account, accepted and
//! configured in the service account).

use aws_sdk_ec2::types::{PeeringConnectionOptionsRequest, ResourceType, TagSpecification};
use crosslink_cloud::Outcome;
use crosslink_plan::kinds::PeeringOp;
use crate::errors::known;
use crate::execute::{created, done, ec2_tags as tag_list};

use crosslink_cloud::CloudError;
use crosslink_plan::observed::{Peering, PeeringStatus};

use crate::calls::{AwsService::*, Call};
use crate::cloud::{Clients, Ctx};
use crate::grants::Condition::*;
use crate::grants::{Grant, OWNED, OWNED_TAGGING, Resource, Vpcs, When};
use crate::observe::{EC2_PAGE, ec2_tags};
use crate::ratelimit::Bucket;

const W: &[Bucket] = &[Bucket::Ec2Write];

pub const DESCRIBE: Call =
    Call::read(Ec2, "DescribeVpcPeeringConnections", &["ec2:DescribeVpcPeeringConnections"], &[Bucket::Ec2Read]);
pub const CREATE: Call =
    Call::write(Ec2, "CreateVpcPeeringConnection", &["ec2:CreateVpcPeeringConnection", "ec2:CreateTags"], W);
pub const ACCEPT: Call = Call::write(Ec2, "AcceptVpcPeeringConnection", &["ec2:AcceptVpcPeeringConnection"], W);
pub const MODIFY_OPTIONS: Call =
    Call::write(Ec2, "ModifyVpcPeeringConnectionOptions", &["ec2:ModifyVpcPeeringConnectionOptions"], W);
pub const DELETE: Call = Call::write(Ec2, "DeleteVpcPeeringConnection", &["ec2:DeleteVpcPeeringConnection"], W);
/// Tags of a peering connection (tag drift).
pub const CREATE_TAGS: Call = Call::write(Ec2, "CreateTags", &["ec2:CreateTags"], W);
/// Removes crosslink's tags from a peering connection (`crosslink release`).
pub const DELETE_TAGS: Call = Call::write(Ec2, "DeleteTags", &["ec2:DeleteTags"], W);

// ---- Permissions -------------------------------------------------------------------------------
// Gateway side: requested from the gateway VPC, tagged at creation, deleted by tag. Service side:
// accepted into the service VPC. The accepter sees none of the requester's tags (AWS keeps tags per
// account), so no tag can be required there: the peering is pinned by ec2:AccepterVpc and
// ec2:RequesterVpc instead.

pub static REQUEST_FROM_GATEWAY_VPC: Grant = Grant {
    sid: "Ec2RequestPeeringFromGatewayVpc",
    actions: &["ec2:CreateVpcPeeringConnection"],
    resources: &[Resource::Vpcs(Vpcs::OfGateways)],
    condition: &[],
    when: When::Gateways,
    why: "the vpc resource of CreateVpcPeeringConnection is always the requester VPC: the gateway VPCs in desired state",
};
pub static CREATE_TAGGED_TO_SERVICE_VPCS: Grant = Grant {
    sid: "Ec2CreateTaggedPeeringToServiceVpcs",
    actions: &["ec2:CreateVpcPeeringConnection"],
    resources: &[Resource::Ec2("vpc-peering-connection/*")],
    condition: &[TaggedRequest, CrosslinkTagKeys, AccepterVpc(Vpcs::PeersOfGateways)],
    when: When::Gateways,
    why: "new peerings only to the service VPCs of this account's links, and only carrying the managed-by tag",
};
pub static TAG_ON_CREATE: Grant = Grant {
    sid: "Ec2TagPeeringsOnCreate",
    actions: &["ec2:CreateTags"],
    resources: &[Resource::Ec2("vpc-peering-connection/*")],
    condition: &[TaggedRequest, CrosslinkTagKeys, Equals("ec2:CreateAction", &["CreateVpcPeeringConnection"])],
    when: When::Gateways,
    why: "tags in CreateVpcPeeringConnection's TagSpecifications are authorized as ec2:CreateTags with ec2:CreateAction",
};
pub static RETAG_OWNED: Grant = Grant {
    sid: "Ec2RetagOwnedPeerings",
    actions: &["ec2:CreateTags"],
    resources: &[Resource::Ec2("vpc-peering-connection/*")],
    condition: OWNED_TAGGING,
    when: When::Gateways,
    why: "tag repairs, only on peerings that carry the managed-by tag (the requester's side)",
};
pub static ADOPT_UNTAGGED: Grant = Grant {
    sid: "Ec2AdoptPeerings",
    actions: &["ec2:CreateTags"],
    resources: &[Resource::Ec2("vpc-peering-connection/*")],
    condition: &[TaggedRequest, CrosslinkTagKeys],
    when: When::Adopting,
    why: "adopting tags a peering built without crosslink (it carries no managed-by tag yet); granted only while a link has adoption: Adopt",
};
pub static DELETE_OWNED: Grant = Grant {
    sid: "Ec2DeleteOwnedPeerings",
    actions: &["ec2:DeleteVpcPeeringConnection"],
    resources: &[Resource::Ec2("vpc-peering-connection/*")],
    condition: OWNED,
    when: When::Always,
    why: "removal follows ownership, not desired state: any peering that carries the managed-by tag here (AWS shows it only to the requester), so that one left by a link or gateway removed from desired state can still be deleted",
};
pub static RELEASE_OWNED: Grant = Grant {
    sid: "Ec2ReleaseOwnedPeerings",
    actions: &["ec2:DeleteTags"],
    resources: &[Resource::Ec2("vpc-peering-connection/*")],
    condition: OWNED_TAGGING,
    when: When::Always,
    why: "crosslink release: removing crosslink's own tag keys, only from peerings that carry the managed-by tag",
};
pub static ACCEPT_INTO_SERVICE_VPC: Grant = Grant {
    sid: "Ec2AcceptPeeringIntoServiceVpc",
    actions: &["ec2:AcceptVpcPeeringConnection"],
    resources: &[Resource::Vpcs(Vpcs::OfServiceLinks)],
    condition: &[],
    when: When::ServiceLinks,
    why: "AcceptVpcPeeringConnection also authorizes the accepter VPC: the service VPCs in desired state",
};
pub static ACCEPT_FROM_GATEWAY_VPC: Grant = Grant {
    sid: "Ec2AcceptPeeringFromGatewayVpcNoTagCondition",
    actions: &["ec2:AcceptVpcPeeringConnection"],
    resources: &[Resource::Ec2("vpc-peering-connection/*")],
    condition: &[AccepterVpc(Vpcs::OfServiceLinks), RequesterVpc(Vpcs::PeersOfServiceLinks)],
    when: When::ServiceLinks,
    why: "the accepter cannot see the requester's tags, so no managed-by condition: only peerings between these gateway and service VPCs",
};
pub static SET_OPTIONS_FROM_GATEWAY_VPC: Grant = Grant {
    sid: "Ec2SetDnsResolutionOfPeeringsFromGatewayVpcs",
    actions: &["ec2:ModifyVpcPeeringConnectionOptions"],
    resources: &[Resource::Ec2("vpc-peering-connection/*")],
    condition: &[AccepterVpc(Vpcs::OfServiceLinks), RequesterVpc(Vpcs::PeersOfServiceLinks)],
    when: When::ServiceLinks,
    why: "peering.allowDnsResolution (and resetting it when changed out of band): the accepter's side of peerings between these gateway and service VPCs",
};

/// DescribeVpcPeeringConnections is granted with the account's network reads.
pub static KIND: super::Kind = super::Kind {
    name: "peering",
    calls: &[&DESCRIBE, &CREATE, &ACCEPT, &MODIFY_OPTIONS, &DELETE, &CREATE_TAGS, &DELETE_TAGS],
    grants: &[
        &REQUEST_FROM_GATEWAY_VPC,
        &CREATE_TAGGED_TO_SERVICE_VPCS,
        &TAG_ON_CREATE,
        &RETAG_OWNED,
        &ADOPT_UNTAGGED,
        &DELETE_OWNED,
        &RELEASE_OWNED,
        &ACCEPT_INTO_SERVICE_VPC,
        &ACCEPT_FROM_GATEWAY_VPC,
        &SET_OPTIONS_FROM_GATEWAY_VPC,
    ],
};

// ---- Reading -----------------------------------------------------------------------------------

/// All peering connections the account sees, as requester or accepter (moto ignores filters, and
/// the planner wants dead ones too, to know they are dead).
pub(crate) async fn peerings(ctx: &Ctx<'_>, c: &Clients) -> Result<Vec<Peering>, CloudError> {
    let stream = c.ec2.describe_vpc_peering_connections().max_results(EC2_PAGE).into_paginator().send();
    let pages = ctx.pages(&DESCRIBE, stream, |p| p.next_token()).await?;
    let mut out = Vec::new();
    for p in pages.iter().flat_map(|p| p.vpc_peering_connections()) {
        let Some(id) = p.vpc_peering_connection_id() else { continue };
        let requester = p.requester_vpc_info();
        let accepter = p.accepter_vpc_info();
        out.push(Peering {
            id: id.to_string(),
            requester_vpc: requester.and_then(|i| i.vpc_id()).unwrap_or_default().to_string(),
            requester_account: requester.and_then(|i| i.owner_id()).unwrap_or_default().to_string(),
            accepter_vpc: accepter.and_then(|i| i.vpc_id()).unwrap_or_default().to_string(),
            accepter_account: accepter.and_then(|i| i.owner_id()).unwrap_or_default().to_string(),
            status: p
                .status()
                .and_then(|s| s.code())
                .map_or(PeeringStatus::Other, |s| PeeringStatus::parse(s.as_str())),
            tags: ec2_tags(p.tags()),
            accepter_dns_resolution: accepter
                .and_then(|i| i.peering_options())
                .and_then(|o| o.allow_dns_resolution_from_remote_vpc())
                .unwrap_or(false),
        });
    }
    Ok(out)
}

// ---- Changing ----------------------------------------------------------------------------------

pub(crate) async fn execute(ctx: &Ctx<'_>, c: &Clients, op: &PeeringOp) -> Result<Outcome, CloudError> {
    use PeeringOp::*;
    match op {
        CreateVpcPeeringConnection { vpc_id, peer_vpc_id, peer_owner_id, peer_region, tags } => {
            let mut req = c
                .ec2
                .create_vpc_peering_connection()
                .vpc_id(vpc_id)
                .peer_vpc_id(peer_vpc_id)
                .peer_owner_id(peer_owner_id)
                .peer_region(peer_region);
            if !tags.is_empty() {
                req = req.tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::VpcPeeringConnection)
                        .set_tags(Some(tag_list(tags)))
                        .build(),
                );
            }
            let subject = format!("{vpc_id} -> {peer_owner_id}/{peer_region}/{peer_vpc_id}");
            let out = ctx.write(&CREATE, &subject, req.send()).await?;
            let p = out.vpc_peering_connection();
            let state = p.and_then(|p| p.status()).and_then(|s| s.code()).map(|c| c.as_str().to_string());
            Ok(Outcome { state, ..created(p.and_then(|p| p.vpc_peering_connection_id()), "peering connection")? })
        }
        AcceptVpcPeeringConnection { peering_id } => {
            let id = known(peering_id, "the peering connection")?;
            let req = c.ec2.accept_vpc_peering_connection().vpc_peering_connection_id(id);
            let out = ctx.write(&ACCEPT, id, req.send()).await?;
            // Routes and DNS options follow in the same pass only once AWS says it is active.
            let state = out
                .vpc_peering_connection()
                .and_then(|p| p.status())
                .and_then(|s| s.code())
                .map(|c| c.as_str().to_string());
            Ok(Outcome { state, ..Outcome::default() })
        }
        SetPeeringDnsResolution { peering_id, allow } => {
            let peering_id = known(peering_id, "the peering connection")?;
            let options =
                PeeringConnectionOptionsRequest::builder().allow_dns_resolution_from_remote_vpc(*allow).build();
            let req = c
                .ec2
                .modify_vpc_peering_connection_options()
                .vpc_peering_connection_id(peering_id)
                .accepter_peering_connection_options(options);
            ctx.write(&MODIFY_OPTIONS, peering_id, req.send()).await?;
            done()
        }
        DeleteVpcPeeringConnection { peering_id } => {
            let req = c.ec2.delete_vpc_peering_connection().vpc_peering_connection_id(peering_id);
            ctx.write(&DELETE, peering_id, req.send()).await?;
            done()
        }
        CreateEc2Tags { resource_id, tags } => {
            if tags.is_empty() {
                return done();
            }
            let req = c.ec2.create_tags().resources(resource_id).set_tags(Some(tag_list(tags)));
            ctx.write(&CREATE_TAGS, resource_id, req.send()).await?;
            done()
        }
        DeleteEc2Tags { resource_id, keys } => {
            if keys.is_empty() {
                return done();
            }
            let tags = keys.iter().map(|k| aws_sdk_ec2::types::Tag::builder().key(k).build()).collect();
            let req = c.ec2.delete_tags().resources(resource_id).set_tags(Some(tags));
            ctx.write(&DELETE_TAGS, resource_id, req.send()).await?;
            done()
        }
    }
}

/// The peerings the account requested or is asked to accept.
pub(crate) async fn read(
    ctx: &Ctx<'_>,
    c: &Clients,
    _: &crosslink_cloud::ObserveScope,
) -> Result<crate::observe::Found, crosslink_cloud::CloudError> {
    crate::observe::store(true, peerings(ctx, c), |st, found| st.peerings = found).await
}
