//! REST API resources (paths). One paginated `GetResources?embed=methods` reads a whole API,
//! methods and integrations included.

use crosslink_cloud::Outcome;
use crosslink_plan::kinds::ApiResourceOp;
use crate::errors::known;
use crate::execute::{created, done};

use crosslink_cloud::CloudError;
use crosslink_plan::observed::{ApiMethod, ApiResource, Integration};

use crate::calls::{AwsService::*, Call};
use crate::cloud::{Clients, Ctx};
use crate::grants::{Grant, OWNED, Resource, When};
use crate::kinds::rest_api;
use crate::observe::APIGW_PAGE;
use crate::ratelimit::Bucket;

pub const GET: Call =
    Call::read(ApiGateway, "GetResources", &["apigateway:GET"], &[Bucket::ApiGatewayGetResources, Bucket::ApiGateway]);
pub const CREATE: Call = Call::write(
    ApiGateway,
    "CreateResource",
    &["apigateway:POST"],
    &[Bucket::ApiGatewayCreateResource, Bucket::ApiGateway],
);
pub const DELETE: Call = Call::write(
    ApiGateway,
    "DeleteResource",
    &["apigateway:DELETE"],
    &[Bucket::ApiGatewayDeleteResource, Bucket::ApiGateway],
);

/// Resources, methods and integrations in crosslink's own REST APIs.
pub static EDIT_OWNED: Grant = Grant {
    sid: "ApiGatewayEditOwnedRestApis",
    actions: &["apigateway:POST", "apigateway:PUT"],
    resources: &[Resource::ApiGw("/restapis/*/resources/*")],
    condition: OWNED,
    when: When::OwnRestApis,
    why: "CreateResource, PutMethod, PutIntegration in REST APIs carrying the managed-by tag (resources, methods and integrations inherit the API's tags for authorization)",
};
/// Resources, methods and integrations in REST APIs referenced by id.
pub static EDIT_REFERENCED: Grant = Grant {
    sid: "ApiGatewayEditReferencedRestApisNoResourceTag",
    actions: &["apigateway:POST", "apigateway:PUT", "apigateway:DELETE"],
    resources: &[Resource::ReferencedRestApis("/resources/*")],
    condition: &[],
    when: When::Gateways,
    why: "a REST API referenced by id is not crosslink's and its children inherit its tags, not crosslink's: scoped to exactly those APIs' resources (never the API itself)",
};

/// GetResources is granted with the REST API reads, DeleteResource with the deletes in owned APIs.
pub static KIND: super::Kind = super::Kind {
    name: "API resource",
    calls: &[&GET, &CREATE, &DELETE],
    grants: &[&rest_api::READ, &rest_api::DELETE_IN_OWNED, &EDIT_OWNED, &EDIT_REFERENCED],
};

// ---- Reading -----------------------------------------------------------------------------------

/// Resources with their methods and integrations embedded: one paginated GetResources per API.
pub(crate) async fn api_resources(
    ctx: &Ctx<'_>,
    c: &Clients,
    rest_api_id: &str,
) -> Result<Vec<ApiResource>, CloudError> {
    let stream = c
        .apigateway
        .get_resources()
        .rest_api_id(rest_api_id)
        .embed("methods")
        .into_paginator()
        .page_size(APIGW_PAGE)
        .send();
    let pages = ctx.pages(&GET, stream, |p| p.position()).await?;
    let mut out: Vec<ApiResource> = pages
        .iter()
        .flat_map(|p| p.items())
        .filter_map(|r| {
            let methods = r
                .resource_methods()
                .map(|m| {
                    m.iter()
                        .map(|(verb, m)| {
                            let integration = m.method_integration().map(|i| Integration {
                                kind: i.r#type().map(|t| t.as_str().to_string()).unwrap_or_default(),
                                http_method: i.http_method().map(str::to_string),
                                uri: i.uri().map(str::to_string),
                                connection_type: i.connection_type().map(|t| t.as_str().to_string()),
                                connection_id: i.connection_id().map(str::to_string),
                                insecure_skip_verification: i
                                    .tls_config()
                                    .is_some_and(|t| t.insecure_skip_verification()),
                                timeout_millis: u32::try_from(i.timeout_in_millis()).ok().filter(|t| *t > 0),
                            });
                            let method = ApiMethod {
                                authorization_type: m.authorization_type().unwrap_or("NONE").to_string(),
                                api_key_required: m.api_key_required().unwrap_or(false),
                                authorizer_id: m.authorizer_id().map(str::to_string),
                                authorization_scopes: m.authorization_scopes().to_vec(),
                                integration,
                            };
                            (verb.clone(), method)
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(ApiResource {
                id: r.id()?.to_string(),
                parent_id: r.parent_id().map(str::to_string),
                path: r.path().unwrap_or_default().to_string(),
                methods,
            })
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

// ---- Changing ----------------------------------------------------------------------------------

pub(crate) async fn execute(ctx: &Ctx<'_>, c: &Clients, op: &ApiResourceOp) -> Result<Outcome, CloudError> {
    use ApiResourceOp::*;
    match op {
        CreateResource { rest_api_id, parent_id, path_part, path } => {
            let api = known(rest_api_id, "the REST API")?;
            let parent = known(parent_id, "the parent resource")?;
            let req = c.apigateway.create_resource().rest_api_id(api).parent_id(parent).path_part(path_part);
            let out = ctx.write(&CREATE, &format!("{api} {path}"), req.send()).await?;
            created(out.id(), "resource")
        }
        DeleteResource { rest_api_id, resource_id, path } => {
            let req = c.apigateway.delete_resource().rest_api_id(rest_api_id).resource_id(resource_id);
            let subject = format!("{rest_api_id} {path} ({resource_id})");
            ctx.write(&DELETE, &subject, req.send()).await?;
            done()
        }
    }
}

/// Read with its REST API (`crate::observe::observe`).
pub(crate) use crate::observe::read_by_parent as read;
