//! Consumers' API keys. Read without their values (`includeValues` false): a key's value never
//! reaches crosslink, so it cannot reach a plan, a log, `/status` or a metric.

use crosslink_cloud::{CloudError, Outcome};
use crosslink_plan::kinds::ApiKeyOp;
use crosslink_plan::observed::ApiKey;

use crate::calls::{AwsService::*, Call};
use crate::cloud::{Clients, Ctx};
use crate::errors::known;
use crate::execute::{apigw_patches, apigw_tags, created, done};
use crate::kinds::usage_plan;
use crate::observe::{APIGW_PAGE, str_map};
use crate::ratelimit::Bucket;

const B: &[Bucket] = &[Bucket::ApiGateway];

pub const GET: Call = Call::read(ApiGateway, "GetApiKeys", &["apigateway:GET"], B);
pub const CREATE: Call = Call::write(ApiGateway, "CreateApiKey", &["apigateway:POST"], B);
pub const UPDATE: Call = Call::write(ApiGateway, "UpdateApiKey", &["apigateway:PATCH"], B);
pub const DELETE: Call = Call::write(ApiGateway, "DeleteApiKey", &["apigateway:DELETE"], B);
pub const CREATE_PLAN_KEY: Call = Call::write(ApiGateway, "CreateUsagePlanKey", &["apigateway:POST"], B);
pub const DELETE_PLAN_KEY: Call = Call::write(ApiGateway, "DeleteUsagePlanKey", &["apigateway:DELETE"], B);

pub static KIND: super::Kind = super::Kind {
    name: "API key",
    calls: &[&GET, &CREATE, &UPDATE, &DELETE, &CREATE_PLAN_KEY, &DELETE_PLAN_KEY],
    grants: &[&usage_plan::READ, &usage_plan::CREATE_TAGGED, &usage_plan::CHANGE_OWNED, &usage_plan::PLAN_KEYS],
};

pub(crate) async fn api_keys(ctx: &Ctx<'_>, c: &Clients) -> Result<Vec<ApiKey>, CloudError> {
    let stream = c.apigateway.get_api_keys().include_values(false).into_paginator().page_size(APIGW_PAGE).send();
    let pages = ctx.pages(&GET, stream, |p| p.position()).await?;
    Ok(pages
        .iter()
        .flat_map(|p| p.items())
        .filter_map(|k| {
            Some(ApiKey {
                id: k.id()?.to_string(),
                name: k.name().unwrap_or_default().to_string(),
                enabled: k.enabled(),
                created_date: k.created_date().map_or(0, |d| d.secs()),
                tags: str_map(k.tags()),
            })
        })
        .collect())
}

pub(crate) async fn read(
    ctx: &Ctx<'_>,
    c: &Clients,
    scope: &crosslink_cloud::ObserveScope,
) -> Result<crate::observe::Found, CloudError> {
    crate::observe::store(scope.gateway_side, api_keys(ctx, c), |st, found| st.api_keys = found).await
}

pub(crate) async fn execute(ctx: &Ctx<'_>, c: &Clients, op: &ApiKeyOp) -> Result<Outcome, CloudError> {
    use ApiKeyOp::*;
    match op {
        CreateApiKey { name, description, enabled, tags } => {
            // The answer holds the generated value: only its id is kept.
            let req = c
                .apigateway
                .create_api_key()
                .name(name)
                .description(description)
                .enabled(*enabled)
                .set_tags(apigw_tags(tags));
            let out = ctx.write(&CREATE, name, req.send()).await?;
            created(out.id(), "API key")
        }
        CreateUsagePlanKey { usage_plan_id, key_id, .. } => {
            let (plan, key) = (known(usage_plan_id, "the usage plan")?, known(key_id, "the API key")?);
            let req = c.apigateway.create_usage_plan_key().usage_plan_id(plan).key_id(key).key_type("API_KEY");
            ctx.write(&CREATE_PLAN_KEY, &format!("{plan} key {key}"), req.send()).await?;
            done()
        }
        UpdateApiKey { id, patches, .. } => {
            let req = c.apigateway.update_api_key().api_key(id).set_patch_operations(Some(apigw_patches(patches)));
            ctx.write(&UPDATE, id, req.send()).await?;
            done()
        }
        DeleteUsagePlanKey { usage_plan_id, key_id, .. } => {
            let req = c.apigateway.delete_usage_plan_key().usage_plan_id(usage_plan_id).key_id(key_id);
            ctx.write(&DELETE_PLAN_KEY, &format!("{usage_plan_id} key {key_id}"), req.send()).await?;
            done()
        }
        DeleteApiKey { id, .. } => {
            let req = c.apigateway.delete_api_key().api_key(id);
            ctx.write(&DELETE, id, req.send()).await?;
            done()
        }
    }
}
