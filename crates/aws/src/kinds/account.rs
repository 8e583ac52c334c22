//! Account-level reads: who the credentials are, and the network every kind sits in (VPCs are
//! read, never changed).

use std::collections::BTreeMap;

use aws_sdk_ec2::types::VpcCidrBlockStateCode;
use crosslink_cloud::CloudError;
use crosslink_plan::observed::Vpc;
use ipnet::Ipv4Net;

use crate::calls::{AwsService::*, Call};
use crate::cloud::{Clients, Ctx};
use crate::grants::{Grant, IN_REGION, Resource, When};
use crate::kinds;
use crate::observe::EC2_PAGE;
use crate::ratelimit::Bucket;

pub const GET_CALLER_IDENTITY: Call = Call::read(Sts, "GetCallerIdentity", &[], &[Bucket::Sts]);
pub const DESCRIBE_VPCS: Call = Call::read(Ec2, "DescribeVpcs", &["ec2:DescribeVpcs"], &[Bucket::Ec2Read]);

/// The network reads of every kind that sits in a VPC (the account's VPCs, peerings and route
/// tables are read together in every account).
pub static READ_NETWORK: Grant = Grant {
    sid: "Ec2ReadNetworkNoResourceLevel",
    actions: &["ec2:DescribeVpcs", "ec2:DescribeVpcPeeringConnections", "ec2:DescribeRouteTables"],
    resources: &[Resource::Any],
    condition: IN_REGION,
    when: When::Always,
    why: "EC2 Describe* actions support no resource-level permissions: Resource must be *; limited to the Account's region",
};

pub static KIND: super::Kind =
    super::Kind { name: "account", calls: &[&GET_CALLER_IDENTITY, &DESCRIBE_VPCS], grants: &[&READ_NETWORK] };

// ---- Reading -----------------------------------------------------------------------------------

pub(crate) async fn vpcs(ctx: &Ctx<'_>, c: &Clients) -> Result<BTreeMap<String, Vpc>, CloudError> {
    let stream = c.ec2.describe_vpcs().max_results(EC2_PAGE).into_paginator().send();
    let pages = ctx.pages(&kinds::account::DESCRIBE_VPCS, stream, |p| p.next_token()).await?;
    let mut out = BTreeMap::new();
    for v in pages.iter().flat_map(|p| p.vpcs()) {
        let Some(id) = v.vpc_id() else { continue };
        let primary = v.cidr_block().and_then(|s| s.parse::<Ipv4Net>().ok());
        let mut cidrs: Vec<Ipv4Net> = primary.into_iter().collect();
        for a in v.cidr_block_association_set() {
            let associated =
                a.cidr_block_state().and_then(|s| s.state()).is_some_and(|s| *s == VpcCidrBlockStateCode::Associated);
            if let Some(net) = a.cidr_block().and_then(|s| s.parse::<Ipv4Net>().ok())
                && associated
                && !cidrs.contains(&net)
            {
                cidrs.push(net);
            }
        }
        out.insert(id.to_string(), Vpc { id: id.to_string(), cidrs });
    }
    Ok(out)
}

/// The account's VPCs.
pub(crate) async fn read(
    ctx: &Ctx<'_>,
    c: &Clients,
    _: &crosslink_cloud::ObserveScope,
) -> Result<crate::observe::Found, crosslink_cloud::CloudError> {
    crate::observe::store(true, vpcs(ctx, c), |st, found| st.vpcs = found).await
}
