//! Lambda and Cognito authorizers of a REST API (read with the API; crosslink's own carry
//! `authType: crosslink:<instance>`, since authorizers take no tags).

use aws_sdk_apigateway::types::AuthorizerType;
use crosslink_cloud::{CloudError, Outcome};
use crosslink_plan::kinds::AuthorizerOp;
use crosslink_plan::observed::Authorizer;

use crate::calls::{AwsService::*, Call};
use crate::cloud::{Clients, Ctx};
use crate::errors::known;
use crate::execute::{apigw_patches, created, done};
use crate::grants::{Grant, OWNED, Resource, When};
use crate::kinds::rest_api;
use crate::observe::APIGW_PAGE;
use crate::ratelimit::Bucket;

const B: &[Bucket] = &[Bucket::ApiGateway];

pub const GET: Call = Call::read(ApiGateway, "GetAuthorizers", &["apigateway:GET"], B);
pub const CREATE: Call = Call::write(ApiGateway, "CreateAuthorizer", &["apigateway:POST"], B);
pub const UPDATE: Call = Call::write(ApiGateway, "UpdateAuthorizer", &["apigateway:PATCH"], B);
pub const DELETE: Call = Call::write(ApiGateway, "DeleteAuthorizer", &["apigateway:DELETE"], B);

/// Authorizers in crosslink's own REST APIs (DeleteAuthorizer: with the deletes in owned APIs).
pub static EDIT_OWNED: Grant = Grant {
    sid: "ApiGatewayAuthorizersInOwnedRestApis",
    actions: &["apigateway:POST", "apigateway:PATCH"],
    resources: &[Resource::ApiGw("/restapis/*/authorizers"), Resource::ApiGw("/restapis/*/authorizers/*")],
    condition: OWNED,
    when: When::OwnRestApis,
    why: "CreateAuthorizer, UpdateAuthorizer in REST APIs carrying the managed-by tag (authorizers inherit the API's tags for authorization)",
};
/// Authorizers in REST APIs referenced by id.
pub static EDIT_REFERENCED: Grant = Grant {
    sid: "ApiGatewayAuthorizersInReferencedRestApisNoResourceTag",
    actions: &["apigateway:POST", "apigateway:PATCH", "apigateway:DELETE"],
    resources: &[Resource::ReferencedRestApis("/authorizers"), Resource::ReferencedRestApis("/authorizers/*")],
    condition: &[],
    when: When::Gateways,
    why: "a REST API referenced by id is not crosslink's: its authorizers are scoped to exactly those APIs (crosslink changes only those it marked as its own)",
};

/// GetAuthorizers is granted with the REST API reads.
pub static KIND: super::Kind = super::Kind {
    name: "authorizer",
    calls: &[&GET, &CREATE, &UPDATE, &DELETE],
    grants: &[&rest_api::READ, &rest_api::DELETE_IN_OWNED, &EDIT_OWNED, &EDIT_REFERENCED],
};

// ---- Reading -----------------------------------------------------------------------------------

/// A REST API's authorizers: one GetAuthorizers, paginated by `position`.
pub(crate) async fn api_authorizers(
    ctx: &Ctx<'_>,
    c: &Clients,
    rest_api_id: &str,
) -> Result<Vec<Authorizer>, CloudError> {
    let mut out = Vec::new();
    let mut position: Option<String> = None;
    loop {
        let req = c.apigateway.get_authorizers().rest_api_id(rest_api_id).limit(APIGW_PAGE).set_position(position);
        let page = ctx.call(&GET, req.send()).await?;
        out.extend(page.items().iter().filter_map(|a| {
            Some(Authorizer {
                id: a.id()?.to_string(),
                name: a.name().unwrap_or_default().to_string(),
                kind: a.r#type().map(|t| t.as_str().to_string()).unwrap_or_default(),
                provider_arns: a.provider_arns().to_vec(),
                authorizer_uri: a.authorizer_uri().map(str::to_string),
                credentials: a.authorizer_credentials().map(str::to_string),
                identity_source: a.identity_source().map(str::to_string),
                result_ttl_seconds: a.authorizer_result_ttl_in_seconds().and_then(|t| u32::try_from(t).ok()),
                auth_type: a.auth_type().map(str::to_string),
            })
        }));
        // moto ignores `limit` and sends no position.
        match page.position() {
            Some(p) if !p.is_empty() && !page.items().is_empty() => position = Some(p.to_string()),
            _ => break,
        }
    }
    out.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    Ok(out)
}

// ---- Changing ----------------------------------------------------------------------------------

pub(crate) async fn execute(ctx: &Ctx<'_>, c: &Clients, op: &AuthorizerOp) -> Result<Outcome, CloudError> {
    use AuthorizerOp::*;
    match op {
        CreateAuthorizer { rest_api_id, name, settings: s } => {
            let api = known(rest_api_id, "the REST API")?;
            let req = c
                .apigateway
                .create_authorizer()
                .rest_api_id(api)
                .name(name)
                .r#type(AuthorizerType::from(s.kind.as_str()))
                .set_provider_arns((!s.provider_arns.is_empty()).then(|| s.provider_arns.clone()))
                .set_authorizer_uri(s.authorizer_uri.clone())
                .set_authorizer_credentials(s.credentials.clone())
                .set_identity_source(s.identity_source.clone())
                .authorizer_result_ttl_in_seconds(i32::try_from(s.result_ttl_seconds).unwrap_or(300))
                .auth_type(&s.auth_type);
            let out = ctx.write(&CREATE, &format!("{api} authorizer {name}"), req.send()).await?;
            created(out.id(), "authorizer")
        }
        UpdateAuthorizer { rest_api_id, id, name, patches } => {
            let req = c
                .apigateway
                .update_authorizer()
                .rest_api_id(rest_api_id)
                .authorizer_id(id)
                .set_patch_operations(Some(apigw_patches(patches)));
            ctx.write(&UPDATE, &format!("{rest_api_id} authorizer {name} ({id})"), req.send()).await?;
            done()
        }
        DeleteAuthorizer { rest_api_id, id, name } => {
            let req = c.apigateway.delete_authorizer().rest_api_id(rest_api_id).authorizer_id(id);
            ctx.write(&DELETE, &format!("{rest_api_id} authorizer {name} ({id})"), req.send()).await?;
            done()
        }
    }
}

/// Read with its REST API (`crate::observe::observe`).
pub(crate) use crate::observe::read_by_parent as read;
