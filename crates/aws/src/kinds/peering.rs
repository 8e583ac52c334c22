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

pub static KIND: super::Kind =
    super::Kind { name: "peering", calls: &[&DESCRIBE, &CREATE, &ACCEPT, &MODIFY_OPTIONS, &DELETE, &CREATE_TAGS] };

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
