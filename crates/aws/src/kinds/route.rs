//! Routes to a peering, in both VPCs' route tables.

use crosslink_plan::kinds::RouteOp;
use crosslink_cloud::Outcome;
use crate::errors::known;
use crate::execute::done;

use std::collections::BTreeMap;

use aws_sdk_ec2::types::RouteState;
use crosslink_cloud::CloudError;
use crosslink_plan::observed::{Route, RouteTable};
use ipnet::Ipv4Net;

use crate::calls::{AwsService::*, Call};
use crate::cloud::{Clients, Ctx};
use crate::grants::{Grant, Resource, When};
use crate::observe::EC2_ROUTE_TABLE_PAGE;
use crate::ratelimit::Bucket;

const W: &[Bucket] = &[Bucket::Ec2Write];

pub const DESCRIBE_ROUTE_TABLES: Call =
    Call::read(Ec2, "DescribeRouteTables", &["ec2:DescribeRouteTables"], &[Bucket::Ec2Read]);
pub const CREATE: Call = Call::write(Ec2, "CreateRoute", &["ec2:CreateRoute"], W);
pub const REPLACE: Call = Call::write(Ec2, "ReplaceRoute", &["ec2:ReplaceRoute"], W);
pub const DELETE: Call = Call::write(Ec2, "DeleteRoute", &["ec2:DeleteRoute"], W);

/// Route tables are the user's, not crosslink's: no ownership tag to condition on, so routes are
/// allowed in exactly the route tables named in desired state.
pub static IN_LISTED_ROUTE_TABLES: Grant = Grant {
    sid: "Ec2RoutesInListedRouteTablesNoTagCondition",
    actions: &["ec2:CreateRoute", "ec2:ReplaceRoute", "ec2:DeleteRoute"],
    resources: &[Resource::RouteTables],
    condition: &[],
    when: When::Always,
    why: "route tables belong to the VPC owners, so no crosslink tag can be required (Create/Replace/DeleteRoute authorize on the route table): scoped to the route tables in desired state. A change that adds or removes a link or a route table needs `iam-policy --previous <old> <new>` applied first, and this policy only once the change has converged",
};

/// DescribeRouteTables is granted with the account's network reads.
pub static KIND: super::Kind = super::Kind {
    name: "route",
    calls: &[&DESCRIBE_ROUTE_TABLES, &CREATE, &REPLACE, &DELETE],
    grants: &[&IN_LISTED_ROUTE_TABLES],
};

// ---- Reading -----------------------------------------------------------------------------------

pub(crate) async fn route_tables(ctx: &Ctx<'_>, c: &Clients) -> Result<BTreeMap<String, RouteTable>, CloudError> {
    let stream = c.ec2.describe_route_tables().max_results(EC2_ROUTE_TABLE_PAGE).into_paginator().send();
    let pages = ctx.pages(&DESCRIBE_ROUTE_TABLES, stream, |p| p.next_token()).await?;
    let mut out = BTreeMap::new();
    for t in pages.iter().flat_map(|p| p.route_tables()) {
        let Some(id) = t.route_table_id() else { continue };
        let routes = t
            .routes()
            .iter()
            .filter_map(|r| {
                // IPv6 and prefix-list routes have no IPv4 destination: crosslink never owns them.
                let destination = r.destination_cidr_block()?.parse::<Ipv4Net>().ok()?;
                let other_target = [
                    r.gateway_id(),
                    r.nat_gateway_id(),
                    r.network_interface_id(),
                    r.transit_gateway_id(),
                    r.instance_id(),
                    r.local_gateway_id(),
                    r.carrier_gateway_id(),
                    r.egress_only_internet_gateway_id(),
                    r.core_network_arn(),
                ]
                .into_iter()
                .flatten()
                .next()
                .map(str::to_string);
                Some(Route {
                    destination,
                    peering_id: r.vpc_peering_connection_id().map(str::to_string),
                    other_target,
                    blackhole: r.state() == Some(&RouteState::Blackhole),
                })
            })
            .collect();
        out.insert(
            id.to_string(),
            RouteTable { id: id.to_string(), vpc_id: t.vpc_id().unwrap_or_default().to_string(), routes },
        );
    }
    Ok(out)
}

// ---- Changing ----------------------------------------------------------------------------------

pub(crate) async fn execute(ctx: &Ctx<'_>, c: &Clients, op: &RouteOp) -> Result<Outcome, CloudError> {
    use RouteOp::*;
    match op {
        CreateRoute { route_table_id, destination, peering_id } => {
            let pcx = known(peering_id, "the peering connection")?;
            let req = c
                .ec2
                .create_route()
                .route_table_id(route_table_id)
                .destination_cidr_block(destination.to_string())
                .vpc_peering_connection_id(pcx);
            ctx.write(&CREATE, &format!("{route_table_id} {destination} -> {pcx}"), req.send()).await?;
            done()
        }
        ReplaceRoute { route_table_id, destination, peering_id } => {
            let pcx = known(peering_id, "the peering connection")?;
            let req = c
                .ec2
                .replace_route()
                .route_table_id(route_table_id)
                .destination_cidr_block(destination.to_string())
                .vpc_peering_connection_id(pcx);
            ctx.write(&REPLACE, &format!("{route_table_id} {destination} -> {pcx}"), req.send()).await?;
            done()
        }
        DeleteRoute { route_table_id, destination } => {
            let req =
                c.ec2.delete_route().route_table_id(route_table_id).destination_cidr_block(destination.to_string());
            ctx.write(&DELETE, &format!("{route_table_id} {destination}"), req.send()).await?;
            done()
        }
    }
}

/// The account's route tables with their routes.
pub(crate) async fn read(
    ctx: &Ctx<'_>,
    c: &Clients,
    _: &crosslink_cloud::ObserveScope,
) -> Result<crate::observe::Found, crosslink_cloud::CloudError> {
    crate::observe::store(true, route_tables(ctx, c), |st, found| st.route_tables = found).await
}
