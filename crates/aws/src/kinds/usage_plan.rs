//! Consumers' usage plans: read with their keys (GetUsagePlanKeys, for plans carrying
//! crosslink's managed-by tag only), created with their stages, patched, and deleted once their
//! stages are removed.

use std::collections::BTreeMap;

use aws_sdk_apigateway::types::{ApiStage as SdkStage, Op as SdkOp, PatchOperation, QuotaPeriodType, QuotaSettings, ThrottleSettings};
use crosslink_cloud::{CloudError, Outcome};
use crosslink_plan::kinds::UsagePlanOp;
use crosslink_plan::kinds::usage_plan::{PlanStage, stage_throttle_patches};
use crosslink_plan::observed::{ApiStage, LiveQuota, LiveThrottle, UsagePlan};
use crosslink_plan::tags::MANAGED_BY;
use futures::{StreamExt, TryStreamExt};

use crate::calls::{AwsService::*, Call};
use crate::cloud::{Clients, Ctx};
use crate::errors::known;
use crate::execute::{apigw_patches, apigw_tags, created, done};
use crate::grants::{Grant, IN_REGION, OWNED, Resource, TAGGED_REQUEST, When};
use crate::observe::{APIGW_CONCURRENCY, APIGW_PAGE, str_map};
use crate::ratelimit::Bucket;

const B: &[Bucket] = &[Bucket::ApiGateway];

pub const GET: Call = Call::read(ApiGateway, "GetUsagePlans", &["apigateway:GET"], B);
pub const GET_KEYS: Call = Call::read(ApiGateway, "GetUsagePlanKeys", &["apigateway:GET"], B);
pub const CREATE: Call = Call::write(ApiGateway, "CreateUsagePlan", &["apigateway:POST"], B);
pub const UPDATE: Call = Call::write(ApiGateway, "UpdateUsagePlan", &["apigateway:PATCH"], B);
pub const DELETE: Call = Call::write(ApiGateway, "DeleteUsagePlan", &["apigateway:DELETE"], B);

// ---- Permissions -------------------------------------------------------------------------------

pub static READ: Grant = Grant {
    sid: "ApiGatewayReadUsagePlansAndApiKeys",
    actions: &["apigateway:GET"],
    resources: &[
        Resource::ApiGw("/usageplans"),
        Resource::ApiGw("/usageplans/*"),
        Resource::ApiGw("/apikeys"),
        Resource::ApiGw("/apikeys/*"),
    ],
    condition: &[],
    when: When::GatewaySide,
    why: "GetUsagePlans, GetUsagePlanKeys, GetApiKeys (never with includeValues): the consumers' plans and keys",
};
pub static CREATE_TAGGED: Grant = Grant {
    sid: "ApiGatewayCreateTaggedUsagePlansAndApiKeys",
    actions: &["apigateway:POST"],
    resources: &[Resource::ApiGw("/usageplans"), Resource::ApiGw("/apikeys")],
    condition: TAGGED_REQUEST,
    when: When::Consumers,
    why: "CreateUsagePlan, CreateApiKey, carrying the managed-by tag",
};
pub static CHANGE_OWNED: Grant = Grant {
    sid: "ApiGatewayChangeOwnedUsagePlansAndApiKeys",
    actions: &["apigateway:PATCH", "apigateway:DELETE"],
    resources: &[Resource::ApiGw("/usageplans/*"), Resource::ApiGw("/apikeys/*")],
    condition: OWNED,
    when: When::GatewaySide,
    why: "UpdateUsagePlan, DeleteUsagePlan, UpdateApiKey, DeleteApiKey, only those carrying the managed-by tag",
};
pub static PLAN_KEYS: Grant = Grant {
    sid: "ApiGatewayUsagePlanKeysNoResourceTag",
    actions: &["apigateway:POST", "apigateway:DELETE"],
    resources: &[Resource::ApiGw("/usageplans/*/keys"), Resource::ApiGw("/usageplans/*/keys/*")],
    condition: IN_REGION,
    when: When::GatewaySide,
    why: "CreateUsagePlanKey, DeleteUsagePlanKey; a plan's key list carries no tags of its own, so it is limited to the Account's region",
};

pub static KIND: super::Kind = super::Kind {
    name: "usage plan",
    calls: &[&GET, &GET_KEYS, &CREATE, &UPDATE, &DELETE],
    grants: &[&READ, &CREATE_TAGGED, &CHANGE_OWNED],
};

// ---- Reading -----------------------------------------------------------------------------------

fn throttle(t: &ThrottleSettings) -> LiveThrottle {
    LiveThrottle { rate_limit: t.rate_limit(), burst_limit: i64::from(t.burst_limit()) }
}

pub(crate) async fn usage_plans(ctx: &Ctx<'_>, c: &Clients) -> Result<Vec<UsagePlan>, CloudError> {
    let stream = c.apigateway.get_usage_plans().into_paginator().page_size(APIGW_PAGE).send();
    let pages = ctx.pages(&GET, stream, |p| p.position()).await?;
    let mut plans: Vec<UsagePlan> = pages
        .iter()
        .flat_map(|p| p.items())
        .filter_map(|u| {
            Some(UsagePlan {
                id: u.id()?.to_string(),
                name: u.name().unwrap_or_default().to_string(),
                description: u.description().map(str::to_string),
                throttle: u.throttle().map(throttle),
                quota: u.quota().map(|q| LiveQuota {
                    limit: i64::from(q.limit()),
                    period: q.period().map(|p| p.as_str().to_string()).unwrap_or_default(),
                    offset: i64::from(q.offset()),
                }),
                api_stages: u
                    .api_stages()
                    .iter()
                    .map(|s| ApiStage {
                        api_id: s.api_id().unwrap_or_default().to_string(),
                        stage: s.stage().unwrap_or_default().to_string(),
                        throttle: s
                            .throttle()
                            .map(|m| m.iter().map(|(k, t)| (k.clone(), throttle(t))).collect())
                            .unwrap_or_default(),
                    })
                    .collect(),
                key_ids: Vec::new(),
                tags: str_map(u.tags()),
            })
        })
        .collect();
    // The keys of crosslink's plans only (any instance's): one request per plan.
    let wanted: Vec<usize> = (0..plans.len()).filter(|&i| plans[i].tags.contains_key(MANAGED_BY)).collect();
    let keys: Vec<(usize, Vec<String>)> = futures::stream::iter(wanted)
        .map(|i| {
            let id = plans[i].id.clone();
            async move {
                let stream =
                    c.apigateway.get_usage_plan_keys().usage_plan_id(&id).into_paginator().page_size(APIGW_PAGE).send();
                let pages = ctx.pages(&GET_KEYS, stream, |p| p.position()).await?;
                let ids = pages.iter().flat_map(|p| p.items()).filter_map(|k| k.id().map(str::to_string)).collect();
                Ok::<_, CloudError>((i, ids))
            }
        })
        .buffer_unordered(APIGW_CONCURRENCY)
        .try_collect()
        .await?;
    for (i, ids) in keys {
        plans[i].key_ids = ids;
    }
    Ok(plans)
}

pub(crate) async fn read(
    ctx: &Ctx<'_>,
    c: &Clients,
    scope: &crosslink_cloud::ObserveScope,
) -> Result<crate::observe::Found, CloudError> {
    crate::observe::store(scope.gateway_side, usage_plans(ctx, c), |st, found| st.usage_plans = found).await
}

// ---- Changing ----------------------------------------------------------------------------------

fn sdk_throttle(t: &crosslink_desired::Throttle) -> ThrottleSettings {
    ThrottleSettings::builder()
        .rate_limit(f64::from(t.rate_limit))
        .burst_limit(i32::try_from(t.burst_limit).unwrap_or(i32::MAX))
        .build()
}

fn sdk_stage(s: &PlanStage) -> Result<SdkStage, CloudError> {
    let throttle: std::collections::HashMap<String, ThrottleSettings> =
        s.throttle.iter().map(|(k, t)| (k.clone(), sdk_throttle(t))).collect();
    Ok(SdkStage::builder()
        .api_id(known(&s.api_id, "the REST API")?)
        .stage(&s.stage)
        .set_throttle((!throttle.is_empty()).then_some(throttle))
        .build())
}

pub(crate) async fn execute(ctx: &Ctx<'_>, c: &Clients, op: &UsagePlanOp) -> Result<Outcome, CloudError> {
    use UsagePlanOp::*;
    match op {
        CreateUsagePlan { name, description, throttle, quota, api_stages, tags } => {
            let stages = api_stages.iter().map(sdk_stage).collect::<Result<Vec<_>, _>>()?;
            let quota = quota.map(|q| {
                QuotaSettings::builder()
                    .limit(i32::try_from(q.limit).unwrap_or(i32::MAX))
                    .offset(i32::try_from(q.offset).unwrap_or(i32::MAX))
                    .period(QuotaPeriodType::from(q.period.as_str()))
                    .build()
            });
            let req = c
                .apigateway
                .create_usage_plan()
                .name(name)
                .set_description(description.clone())
                .set_throttle(throttle.as_ref().map(sdk_throttle))
                .set_quota(quota)
                .set_api_stages(Some(stages))
                .set_tags(apigw_tags(tags));
            let out = ctx.write(&CREATE, name, req.send()).await?;
            created(out.id(), "usage plan")
        }
        UpdateUsagePlan { id, patches, .. } => {
            let req = c.apigateway.update_usage_plan().usage_plan_id(id).set_patch_operations(Some(apigw_patches(patches)));
            ctx.write(&UPDATE, id, req.send()).await?;
            done()
        }
        AddApiStage { usage_plan_id, stage } => {
            let id = known(usage_plan_id, "the usage plan")?;
            let api = known(&stage.api_id, "the REST API")?;
            let mut ops = vec![
                PatchOperation::builder().op(SdkOp::Add).path("/apiStages").value(format!("{api}:{}", stage.stage)).build(),
            ];
            let throttles: BTreeMap<_, _> = stage.throttle.iter().collect();
            for (key, t) in throttles {
                ops.extend(apigw_patches(&stage_throttle_patches(api, &stage.stage, key, t)));
            }
            let req = c.apigateway.update_usage_plan().usage_plan_id(id).set_patch_operations(Some(ops));
            ctx.write(&UPDATE, id, req.send()).await?;
            done()
        }
        RemoveApiStage { usage_plan_id, api_id, stage } => {
            let op = PatchOperation::builder().op(SdkOp::Remove).path("/apiStages").value(format!("{api_id}:{stage}")).build();
            let req = c.apigateway.update_usage_plan().usage_plan_id(usage_plan_id).patch_operations(op);
            ctx.write(&UPDATE, usage_plan_id, req.send()).await?;
            done()
        }
        DeleteUsagePlan { id, .. } => {
            let req = c.apigateway.delete_usage_plan().usage_plan_id(id);
            ctx.write(&DELETE, id, req.send()).await?;
            done()
        }
    }
}
