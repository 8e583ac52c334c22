//! The REST API's VPC link to the gateway's NLB. API Gateway makes a VPC endpoint service for it
//! on the caller's behalf, with the caller's EC2 and ELBv2 permissions.

use crosslink_cloud::CloudError;
use crosslink_plan::observed::VpcLink;

use crate::calls::{AwsService::*, Call};
use crate::cloud::{Clients, Ctx};
use crate::kinds;
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
    let pages = ctx.pages(&kinds::vpc_link::GET, stream, |p| p.position()).await?;
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
