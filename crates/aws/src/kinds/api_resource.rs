//! REST API resources (paths). One paginated `GetResources?embed=methods` reads a whole API,
//! methods and integrations included.

use crosslink_cloud::CloudError;
use crosslink_plan::observed::{ApiMethod, ApiResource, Integration};

use crate::calls::{AwsService::*, Call};
use crate::cloud::{Clients, Ctx};
use crate::kinds;
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

pub static KIND: super::Kind = super::Kind { name: "API resource", calls: &[&GET, &CREATE, &DELETE] };

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
    let pages = ctx.pages(&kinds::api_resource::GET, stream, |p| p.position()).await?;
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
                            });
                            let method = ApiMethod {
                                authorization_type: m.authorization_type().unwrap_or("NONE").to_string(),
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
