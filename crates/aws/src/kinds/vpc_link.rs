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
use crate::grants::{Grant, IN_REGION, OWNED, Resource, TAGGED_REQUEST, When};
use crate::kinds::{load_balancer, rest_api};
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

// ---- Permissions -------------------------------------------------------------------------------
// API Gateway creates and deletes a REST VPC link's endpoint service with the caller's EC2
// permissions; the service carries none of crosslink's tags.

pub static CREATE_TAGGED: Grant = Grant {
    sid: "ApiGatewayCreateTaggedVpcLinks",
    actions: &["apigateway:POST"],
    resources: &[Resource::ApiGw("/vpclinks")],
    condition: TAGGED_REQUEST,
    when: When::Gateways,
    why: "CreateVpcLink, carrying the managed-by tag",
};
pub static CREATE_ENDPOINT_SERVICE: Grant = Grant {
    sid: "VpcLinkCreateEndpointServiceNoTagCondition",
    actions: &["ec2:CreateVpcEndpointServiceConfiguration", "ec2:ModifyVpcEndpointServicePermissions"],
    resources: &[Resource::Ec2("vpc-endpoint-service/*")],
    condition: &[],
    when: When::Gateways,
    why: "API Gateway creates a REST VPC link's endpoint service with the caller's permissions, without crosslink's tags: no tag condition is possible",
};
pub static READ_ENDPOINT_SERVICES: Grant = Grant {
    sid: "VpcLinkEndpointServiceReadNoResourceLevel",
    actions: &["ec2:DescribeVpcEndpointServiceConfigurations"],
    resources: &[Resource::Any],
    condition: IN_REGION,
    when: When::GatewaySide,
    why: "needed by API Gateway to create and delete VPC links; Describe* has no resource-level permissions",
};
pub static DELETE_OWNED: Grant = Grant {
    sid: "ApiGatewayDeleteOwnedVpcLinks",
    actions: &["apigateway:DELETE"],
    resources: &[Resource::ApiGw("/vpclinks/*")],
    condition: OWNED,
    when: When::GatewaySide,
    why: "DeleteVpcLink, only VPC links carrying the managed-by tag",
};
pub static DELETE_ENDPOINT_SERVICE: Grant = Grant {
    sid: "VpcLinkDeleteEndpointServiceNoTagCondition",
    actions: &["ec2:DeleteVpcEndpointServiceConfigurations"],
    resources: &[Resource::Ec2("vpc-endpoint-service/*")],
    condition: &[],
    when: When::GatewaySide,
    why: "API Gateway deletes a REST VPC link's endpoint service with the caller's permissions; the service carries no crosslink tag, so no tag condition is possible",
};

/// GetVpcLinks is granted with the REST API reads; CreateVpcLink's check of the NLB with the
/// ELBv2 reads.
pub static KIND: super::Kind = super::Kind {
    name: "VPC link",
    calls: &[&GET, &CREATE, &DELETE],
    grants: &[
        &load_balancer::READ,
        &rest_api::READ,
        &DELETE_OWNED,
        &DELETE_ENDPOINT_SERVICE,
        &READ_ENDPOINT_SERVICES,
        &CREATE_TAGGED,
        &CREATE_ENDPOINT_SERVICE,
    ],
};

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
        TagVpcLink { id, tags } => super::stage::tag(ctx, c, &format!("/vpclinks/{id}"), tags).await,
        UntagVpcLink { id, keys } => super::stage::untag(ctx, c, &format!("/vpclinks/{id}"), keys).await,
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
