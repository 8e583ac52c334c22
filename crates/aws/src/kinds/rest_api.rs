//! The gateway's REST API (crosslink's own, or a referenced one).

use aws_sdk_apigateway::types::{EndpointConfiguration, EndpointType};
use crosslink_cloud::Outcome;
use crosslink_plan::kinds::RestApiOp;
use crate::execute::{apigw_tags, created, done};

use crosslink_cloud::{CloudError, ObserveScope};
use crosslink_plan::observed::{ApiResource, Authorizer, RestApi, Stage};
use crosslink_plan::tags::is_managed;
use futures::{StreamExt, TryStreamExt};

use crate::calls::{AwsService::*, Call};
use crate::cloud::{Clients, Ctx};
use crate::grants::{Grant, OWNED, Resource, TAGGED_REQUEST, When};
use crate::observe::{APIGW_CONCURRENCY, APIGW_PAGE, str_map};
use crate::ratelimit::Bucket;

pub const GET: Call = Call::read(ApiGateway, "GetRestApis", &["apigateway:GET"], &[Bucket::ApiGateway]);
pub const CREATE: Call = Call::write(
    ApiGateway,
    "CreateRestApi",
    &["apigateway:POST"],
    &[Bucket::ApiGatewayCreateRestApi, Bucket::ApiGateway],
);
pub const DELETE: Call = Call::write(
    ApiGateway,
    "DeleteRestApi",
    &["apigateway:DELETE"],
    &[Bucket::ApiGatewayDeleteRestApi, Bucket::ApiGateway],
);

// ---- Permissions -------------------------------------------------------------------------------
// API Gateway's IAM actions are HTTP verbs on resource paths; a REST API's resources, methods,
// integrations and deployments inherit its tags for authorization.

/// Every API Gateway read of every kind (REST APIs, their resources and stages, VPC links).
pub static READ: Grant = Grant {
    sid: "ApiGatewayRead",
    actions: &["apigateway:GET"],
    resources: &[
        Resource::ApiGw("/restapis"),
        Resource::ApiGw("/restapis/*"),
        Resource::ApiGw("/vpclinks"),
        Resource::ApiGw("/vpclinks/*"),
    ],
    condition: &[],
    when: When::GatewaySide,
    why: "GetRestApis, GetResources (methods embedded), GetStages, GetAuthorizers, GetVpcLinks",
};
pub static DELETE_IN_OWNED: Grant = Grant {
    sid: "ApiGatewayDeleteInOwnedRestApis",
    actions: &["apigateway:DELETE"],
    resources: &[Resource::ApiGw("/restapis/*")],
    condition: OWNED,
    when: When::GatewaySide,
    why: "DeleteRestApi, DeleteResource, DeleteMethod, DeleteAuthorizer in REST APIs carrying the managed-by tag (resources, methods and authorizers inherit the API's tags for authorization)",
};
pub static CREATE_TAGGED: Grant = Grant {
    sid: "ApiGatewayCreateTaggedRestApis",
    actions: &["apigateway:POST"],
    resources: &[Resource::ApiGw("/restapis")],
    condition: TAGGED_REQUEST,
    when: When::OwnRestApis,
    why: "CreateRestApi, carrying the managed-by tag",
};

pub static KIND: super::Kind = super::Kind {
    name: "REST API",
    calls: &[&GET, &CREATE, &DELETE],
    grants: &[&READ, &DELETE_IN_OWNED, &CREATE_TAGGED],
};

// ---- Reading -----------------------------------------------------------------------------------

pub(crate) async fn rest_apis(ctx: &Ctx<'_>, c: &Clients, scope: &ObserveScope) -> Result<Vec<RestApi>, CloudError> {
    let stream = c.apigateway.get_rest_apis().into_paginator().page_size(APIGW_PAGE).send();
    let pages = ctx.pages(&GET, stream, |p| p.position()).await?;
    let mut apis: Vec<RestApi> = pages
        .iter()
        .flat_map(|p| p.items())
        .filter_map(|a| {
            Some(RestApi {
                id: a.id()?.to_string(),
                name: a.name().unwrap_or_default().to_string(),
                tags: str_map(a.tags()),
                resources: Vec::new(),
                stages: Vec::new(),
                authorizers: Vec::new(),
                policy: a.policy().map(str::to_string),
            })
        })
        .collect();

    let wanted: Vec<usize> = (0..apis.len())
        .filter(|&i| {
            let a = &apis[i];
            scope.discover
                || is_managed(&a.tags, &scope.instance)
                || scope.rest_api_ids.contains(&a.id)
                || scope.rest_api_names.contains(&a.name)
        })
        .collect();
    type Details = (usize, Vec<ApiResource>, Vec<Stage>, Vec<Authorizer>);
    let details: Vec<Details> = futures::stream::iter(wanted)
        .map(|i| {
            let id = apis[i].id.clone();
            async move {
                let (resources, stages, authorizers) = futures::future::try_join3(
                    super::api_resource::api_resources(ctx, c, &id),
                    super::stage::api_stages(ctx, c, &id),
                    super::authorizer::api_authorizers(ctx, c, &id),
                )
                .await?;
                Ok::<_, CloudError>((i, resources, stages, authorizers))
            }
        })
        .buffer_unordered(APIGW_CONCURRENCY)
        .try_collect()
        .await?;
    for (i, resources, stages, authorizers) in details {
        apis[i].resources = resources;
        apis[i].stages = stages;
        apis[i].authorizers = authorizers;
    }
    Ok(apis)
}

// ---- Changing ----------------------------------------------------------------------------------

pub(crate) async fn execute(ctx: &Ctx<'_>, c: &Clients, op: &RestApiOp) -> Result<Outcome, CloudError> {
    use RestApiOp::*;
    match op {
        CreateRestApi { name, tags } => {
            let req = c
                .apigateway
                .create_rest_api()
                .name(name)
                .endpoint_configuration(EndpointConfiguration::builder().types(EndpointType::Regional).build())
                .set_tags(apigw_tags(tags));
            let out = ctx.write(&CREATE, name, req.send()).await?;
            Ok(Outcome {
                root_resource_id: out.root_resource_id().map(str::to_string),
                ..created(out.id(), "REST API")?
            })
        }
        DeleteRestApi { id } => {
            let req = c.apigateway.delete_rest_api().rest_api_id(id);
            ctx.write(&DELETE, id, req.send()).await?;
            done()
        }
        TagRestApi { id, tags } => super::stage::tag(ctx, c, &format!("/restapis/{id}"), tags).await,
        UntagRestApi { id, keys } => super::stage::untag(ctx, c, &format!("/restapis/{id}"), keys).await,
    }
}

/// The account's REST APIs with their resources, methods and stages, on the gateway side.
pub(crate) async fn read(
    ctx: &Ctx<'_>,
    c: &Clients,
    scope: &crosslink_cloud::ObserveScope,
) -> Result<crate::observe::Found, crosslink_cloud::CloudError> {
    crate::observe::store(scope.gateway_side, rest_apis(ctx, c, scope), |st, found| st.rest_apis = found).await
}
