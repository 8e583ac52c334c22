//! The REST API's VPC link to the gateway's NLB. API Gateway makes a VPC endpoint service for it
//! on the caller's behalf, with the caller's EC2 and ELBv2 permissions.

use crosslink_cloud::Outcome;
use crosslink_plan::kinds::VpcLinkOp;
use crate::errors::known;
use crate::execute::{apigw_tags, created, done};

use crosslink_cloud::CloudError;
use crosslink_plan::observed::VpcLink;

use crate::calls::{AwsService::*, Call};
use crate::cloud::{Clients, Ctx};
use crate::observe::{APIGW_PAGE, str_map};
use crate::ratelimit::Bucket;

const B: &[Bucket] = &[Bucket::ApiGateway];

pub const GET: Call = Call::read(ApiGateway, "GetVpcLinks", &["apigateway:GET"], B);
pub const CREATE: Call = Call::write(
    ApiGateway,
    "CreateVpcLink",
    &[
        "apigateway:POST",
        "ec2:CreateVpcEndpointServiceConfiguration",
        "ec2:DescribeVpcEndpointServiceConfigurations",
        "ec2:ModifyVpcEndpointServicePermissions",
        "elasticloadbalancing:DescribeLoadBalancers",
    ],
    B,
);
pub const DELETE: Call =
    Call::write(ApiGateway, "DeleteVpcLink", &["apigateway:DELETE", "ec2:DeleteVpcEndpointServiceConfigurations"], B);

pub static KIND: super::Kind = super::Kind { name: "VPC link", calls: &[&GET, &CREATE, &DELETE] };

// ---- Reading -----------------------------------------------------------------------------------

pub(crate) async fn vpc_links(ctx: &Ctx<'_>, c: &Clients) -> Result<Vec<VpcLink>, CloudError> {
    let stream = c.apigateway.get_vpc_links().into_paginator().page_size(APIGW_PAGE).send();
    let pages = ctx.pages(&GET, stream, |p| p.position()).await?;
    Ok(pages
        .iter()
        .flat_map(|p| p.items())
        .filter_map(|l| {
            Some(VpcLink {
                id: l.id()?.to_string(),
                name: l.name().unwrap_or_default().to_string(),
                target_arns: l.target_arns().to_vec(),
                status: l.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                status_message: l.status_message().map(str::to_string),
                tags: str_map(l.tags()),
            })
        })
        .collect())
}

// ---- Changing ----------------------------------------------------------------------------------

pub(crate) async fn execute(ctx: &Ctx<'_>, c: &Clients, op: &VpcLinkOp) -> Result<Outcome, CloudError> {
    use VpcLinkOp::*;
    match op {
        CreateVpcLink { name, load_balancer_arn, tags } => {
            let lb = known(load_balancer_arn, "the load balancer")?;
            let req = c.apigateway.create_vpc_link().name(name).target_arns(lb).set_tags(apigw_tags(tags));
            let out = ctx.write(&CREATE, &format!("{name} -> {lb}"), req.send()).await?;
            Ok(Outcome { state: out.status().map(|s| s.as_str().to_string()), ..created(out.id(), "VPC link")? })
        }
        DeleteVpcLink { id } => {
            let req = c.apigateway.delete_vpc_link().vpc_link_id(id);
            ctx.write(&DELETE, id, req.send()).await?;
            done()
        }
    }
}

/// The account's VPC links, on the gateway side.
pub(crate) async fn read(
    ctx: &Ctx<'_>,
    c: &Clients,
    scope: &crosslink_cloud::ObserveScope,
) -> Result<crate::observe::Found, crosslink_cloud::CloudError> {
    crate::observe::store(scope.gateway_side, vpc_links(ctx, c), |st, found| st.vpc_links = found).await
}
