//! A privateLink link's VPC endpoint service in the service account (PrivateLink): made on the
//! service-side NLB with acceptance required, the gateway account its only allowed principal,
//! the gateway endpoint's connection accepted. moto answers all but the connection calls
//! (Accept/Reject/DescribeVpcEndpointConnections answer 500): `AcceptVpcEndpointConnections` is
//! tested on the in-memory AWS and against a recorded AWS response, and the connection's state
//! is read from the gateway side (`DescribeVpcEndpoints`), never from the connections.

use aws_sdk_ec2::types::{ResourceType, TagSpecification};
use crosslink_cloud::{CloudError, ObserveScope, Outcome};
use crosslink_plan::kinds::EndpointServiceOp;
use crosslink_plan::observed::EndpointService;
use crosslink_plan::tags;

use crate::calls::{AwsService::*, Call};
use crate::cloud::{Clients, Ctx};
use crate::errors::known;
use crate::execute::{done, ec2_tags as tag_list};
use crate::grants::{Grant, OWNED, Resource, TAGGED_REQUEST, When};
use crate::observe::{EC2_PAGE, ec2_tags};
use crate::ratelimit::Bucket;

const R: &[Bucket] = &[Bucket::Ec2Read];
const W: &[Bucket] = &[Bucket::Ec2Write];

pub const DESCRIBE: Call = Call::read(
    Ec2,
    "DescribeVpcEndpointServiceConfigurations",
    &["ec2:DescribeVpcEndpointServiceConfigurations"],
    R,
);
pub const DESCRIBE_PERMISSIONS: Call = Call::read(
    Ec2,
    "DescribeVpcEndpointServicePermissions",
    &["ec2:DescribeVpcEndpointServicePermissions"],
    R,
);
pub const CREATE: Call = Call::write(
    Ec2,
    "CreateVpcEndpointServiceConfiguration",
    &["ec2:CreateVpcEndpointServiceConfiguration", "ec2:CreateTags"],
    W,
);
pub const MODIFY_PERMISSIONS: Call = Call::write(
    Ec2,
    "ModifyVpcEndpointServicePermissions",
    &["ec2:ModifyVpcEndpointServicePermissions"],
    W,
);
pub const MODIFY: Call = Call::write(
    Ec2,
    "ModifyVpcEndpointServiceConfiguration",
    &["ec2:ModifyVpcEndpointServiceConfiguration"],
    W,
);
pub const ACCEPT: Call =
    Call::write(Ec2, "AcceptVpcEndpointConnections", &["ec2:AcceptVpcEndpointConnections"], W);
pub const DELETE: Call = Call::write(
    Ec2,
    "DeleteVpcEndpointServiceConfigurations",
    &["ec2:DeleteVpcEndpointServiceConfigurations"],
    W,
);

// ---- Permissions -------------------------------------------------------------------------------

pub static READ: Grant = Grant {
    sid: "Ec2ReadEndpointServices",
    actions: &["ec2:DescribeVpcEndpointServiceConfigurations", "ec2:DescribeVpcEndpointServicePermissions"],
    resources: &[Resource::Any],
    condition: &[],
    when: When::Always,
    why: "EC2 Describe* actions support no resource-level permissions; crosslink's endpoint services are found by tag wherever they are, also after their link left",
};
pub static CREATE_TAGGED: Grant = Grant {
    sid: "Ec2CreateTaggedEndpointServices",
    actions: &["ec2:CreateVpcEndpointServiceConfiguration", "ec2:CreateTags"],
    resources: &[Resource::Ec2("vpc-endpoint-service/*")],
    condition: TAGGED_REQUEST,
    when: When::PrivateLinkServices,
    why: "a privateLink link's endpoint service, carrying the managed-by tag (tags on create are authorized as ec2:CreateTags)",
};
pub static CHANGE_OWNED: Grant = Grant {
    sid: "Ec2ChangeOwnedEndpointServices",
    actions: &[
        "ec2:ModifyVpcEndpointServicePermissions",
        "ec2:ModifyVpcEndpointServiceConfiguration",
        "ec2:AcceptVpcEndpointConnections",
    ],
    resources: &[Resource::Ec2("vpc-endpoint-service/*")],
    condition: OWNED,
    when: When::PrivateLinkServices,
    why: "the allowed principal (the gateway account only), acceptance required, and accepting the gateway endpoint: only on endpoint services carrying the managed-by tag",
};
pub static DELETE_OWNED: Grant = Grant {
    sid: "Ec2DeleteOwnedEndpointServices",
    actions: &["ec2:DeleteVpcEndpointServiceConfigurations"],
    resources: &[Resource::Ec2("vpc-endpoint-service/*")],
    condition: OWNED,
    when: When::Always,
    why: "removal follows ownership: any endpoint service carrying the managed-by tag, also one a removed link left",
};
pub static KIND: super::Kind = super::Kind {
    name: "endpoint service",
    calls: &[&DESCRIBE, &DESCRIBE_PERMISSIONS, &CREATE, &MODIFY_PERMISSIONS, &MODIFY, &ACCEPT, &DELETE],
    grants: &[
        &READ,
        &CREATE_TAGGED,
        &CHANGE_OWNED,
        &DELETE_OWNED,
    ],
};

// ---- Reading -----------------------------------------------------------------------------------

/// crosslink's endpoint services in the account (by managed-by tag), with their permissions.
async fn endpoint_services(ctx: &Ctx<'_>, c: &Clients, scope: &ObserveScope) -> Result<Vec<EndpointService>, CloudError> {
    let stream = c.ec2.describe_vpc_endpoint_service_configurations().max_results(EC2_PAGE).into_paginator().send();
    let pages = ctx.pages(&DESCRIBE, stream, |p| p.next_token()).await?;
    let mine: Vec<_> = pages
        .iter()
        .flat_map(|p| p.service_configurations())
        .filter(|s| s.service_id().is_some())
        .filter(|s| tags::is_managed(&ec2_tags(s.tags()), &scope.instance))
        .collect();
    futures::future::try_join_all(mine.into_iter().map(|s| with_permissions(ctx, c, s))).await
}

async fn with_permissions(
    ctx: &Ctx<'_>,
    c: &Clients,
    s: &aws_sdk_ec2::types::ServiceConfiguration,
) -> Result<EndpointService, CloudError> {
    let id = s.service_id().unwrap_or_default().to_string();
    let req = c.ec2.describe_vpc_endpoint_service_permissions().service_id(&id).send();
    let perms = ctx.call(&DESCRIBE_PERMISSIONS, req).await?;
    Ok(EndpointService {
        service_name: s.service_name().unwrap_or_default().to_string(),
        load_balancer_arns: s.network_load_balancer_arns().to_vec(),
        acceptance_required: s.acceptance_required().unwrap_or(false),
        allowed_principals: perms.allowed_principals().iter().filter_map(|p| p.principal()).map(str::to_string).collect(),
        state: s.service_state().map(|x| x.as_str().to_string()).unwrap_or_default(),
        tags: ec2_tags(s.tags()),
        id,
    })
}

pub(crate) async fn read(ctx: &Ctx<'_>, c: &Clients, scope: &ObserveScope) -> Result<crate::observe::Found, CloudError> {
    crate::observe::store(true, endpoint_services(ctx, c, scope), |st, found| st.endpoint_services = found).await
}

// ---- Changing ----------------------------------------------------------------------------------

/// The items an EC2 batch call could not act on, as an error.
pub(crate) fn unsuccessful(call: &Call, items: &[aws_sdk_ec2::types::UnsuccessfulItem]) -> Result<(), CloudError> {
    let Some(item) = items.first() else { return Ok(()) };
    let e = item.error();
    let code = e.and_then(|e| e.code()).unwrap_or("Unsuccessful");
    let message = format!(
        "{}: {} {}",
        call.operation,
        item.resource_id().unwrap_or_default(),
        e.and_then(|e| e.message()).unwrap_or_default()
    );
    Err(CloudError::new(crate::errors::classify(code, None), code, message))
}

pub(crate) async fn execute(ctx: &Ctx<'_>, c: &Clients, op: &EndpointServiceOp) -> Result<Outcome, CloudError> {
    use EndpointServiceOp::*;
    match op {
        CreateVpcEndpointServiceConfiguration { load_balancer_arn, tags } => {
            let arn = known(load_balancer_arn, "the service-side load balancer")?;
            let req = c
                .ec2
                .create_vpc_endpoint_service_configuration()
                .network_load_balancer_arns(arn)
                .acceptance_required(true)
                .tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::VpcEndpointService)
                        .set_tags(Some(tag_list(tags)))
                        .build(),
                );
            let out = ctx.write(&CREATE, arn, req.send()).await?;
            let s = out.service_configuration();
            let id = s.and_then(|s| s.service_id()).ok_or_else(|| {
                CloudError::new(crosslink_cloud::ErrorKind::Permanent, "MissingId", "CreateVpcEndpointServiceConfiguration answered no service id")
            })?;
            Ok(Outcome {
                service_name: s.and_then(|s| s.service_name()).map(str::to_string),
                state: s.and_then(|s| s.service_state()).map(|x| x.as_str().to_string()),
                ..Outcome::created(id)
            })
        }
        ModifyVpcEndpointServicePermissions { service_id, add_allowed_principals, remove_allowed_principals } => {
            let id = known(service_id, "the endpoint service")?;
            let mut req = c.ec2.modify_vpc_endpoint_service_permissions().service_id(id);
            if !add_allowed_principals.is_empty() {
                req = req.set_add_allowed_principals(Some(add_allowed_principals.clone()));
            }
            if !remove_allowed_principals.is_empty() {
                req = req.set_remove_allowed_principals(Some(remove_allowed_principals.clone()));
            }
            ctx.write(&MODIFY_PERMISSIONS, id, req.send()).await?;
            done()
        }
        ModifyVpcEndpointServiceConfiguration { service_id, acceptance_required } => {
            let req = c
                .ec2
                .modify_vpc_endpoint_service_configuration()
                .service_id(service_id)
                .acceptance_required(*acceptance_required);
            ctx.write(&MODIFY, service_id, req.send()).await?;
            done()
        }
        AcceptVpcEndpointConnections { service_id, endpoint_ids } => {
            let req = c
                .ec2
                .accept_vpc_endpoint_connections()
                .service_id(service_id)
                .set_vpc_endpoint_ids(Some(endpoint_ids.clone()));
            let out = ctx.write(&ACCEPT, service_id, req.send()).await?;
            unsuccessful(&ACCEPT, out.unsuccessful())?;
            done()
        }
        DeleteVpcEndpointServiceConfigurations { service_id } => {
            let req = c.ec2.delete_vpc_endpoint_service_configurations().service_ids(service_id);
            let out = ctx.write(&DELETE, service_id, req.send()).await?;
            unsuccessful(&DELETE, out.unsuccessful())?;
            done()
        }
    }
}
