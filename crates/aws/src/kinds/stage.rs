//! The stage and its deployment; the stage is tagged with the hash of what was deployed.

use crosslink_cloud::Outcome;
use crosslink_plan::kinds::StageOp;
use crate::errors::known;
use crate::execute::{apigw_patches, apigw_tags, created, done};

use crosslink_cloud::CloudError;
use crosslink_plan::observed::{AccessLog, ApiGatewayAccount, LiveStageSettings, MethodSetting, Stage, Tags};

use crate::calls::{AwsService::*, Call};
use crate::cloud::{Clients, Ctx};
use crate::grants::Condition::*;
use crate::grants::{Grant, Resource, TAGGED_REQUEST, When};
use crate::kinds::rest_api;
use crate::observe::str_map;
use crate::ratelimit::Bucket;

pub const GET: Call = Call::read(ApiGateway, "GetStages", &["apigateway:GET"], &[Bucket::ApiGateway]);
pub const CREATE_DEPLOYMENT: Call = Call::write(
    ApiGateway,
    "CreateDeployment",
    &["apigateway:POST"],
    &[Bucket::ApiGatewayCreateDeployment, Bucket::ApiGateway],
);
pub const TAG: Call = Call::write(ApiGateway, "TagResource", &["apigateway:PUT"], &[Bucket::ApiGateway]);
/// Removes crosslink's tags from a VPC link or REST API (`crosslink release`).
pub const UNTAG: Call = Call::write(ApiGateway, "UntagResource", &["apigateway:DELETE"], &[Bucket::ApiGateway]);
pub const UPDATE: Call = Call::write(ApiGateway, "UpdateStage", &["apigateway:PATCH"], &[Bucket::ApiGateway]);
pub const GET_ACCOUNT: Call = Call::read(ApiGateway, "GetAccount", &["apigateway:GET"], &[Bucket::ApiGateway]);

pub static DEPLOY_OWNED: Grant = Grant {
    sid: "ApiGatewayDeployOwnedRestApisToListedStages",
    actions: &["apigateway:POST"],
    resources: &[Resource::ApiGw("/restapis/*/deployments")],
    condition: &[Owned, StageNames],
    when: When::OwnRestApis,
    why: "CreateDeployment in REST APIs carrying the managed-by tag, only to the stages in desired state",
};
pub static DEPLOY_REFERENCED: Grant = Grant {
    sid: "ApiGatewayDeployReferencedRestApisToListedStages",
    actions: &["apigateway:POST"],
    resources: &[Resource::ReferencedRestApis("/deployments")],
    condition: &[StageNames],
    when: When::Gateways,
    why: "CreateDeployment in the REST APIs referenced by id, only to the stages in desired state",
};
pub static TAG_STAGES: Grant = Grant {
    sid: "ApiGatewayTagStagesNoResourceTag",
    actions: &["apigateway:PUT"],
    resources: &[Resource::ApiGw("/tags/*")],
    condition: TAGGED_REQUEST,
    when: When::Gateways,
    why: "TagResource on the stage (deployed-hash), and on a VPC link or REST API a gateway adopts: the /tags resource type supports no aws:ResourceTag, so the request must carry the managed-by tag and only crosslink's keys",
};

pub static RELEASE_TAGS: Grant = Grant {
    sid: "ApiGatewayReleaseCrosslinkTagsNoResourceTag",
    actions: &["apigateway:DELETE"],
    resources: &[Resource::ApiGw("/tags/*")],
    condition: &[CrosslinkTagKeys],
    when: When::Gateways,
    why: "crosslink release: UntagResource of crosslink's own tag keys from a VPC link or REST API (the /tags resource type supports no aws:ResourceTag, so only the keys can be limited)",
};

pub static UPDATE_OWNED: Grant = Grant {
    sid: "ApiGatewayUpdateStagesOfOwnedRestApis",
    actions: &["apigateway:PATCH"],
    resources: &[Resource::ApiGw("/restapis/*/stages/*")],
    condition: &[Owned],
    when: When::OwnRestApis,
    why: "UpdateStage (throttling, logs, metrics, tracing, variables) on the stages of REST APIs carrying the managed-by tag",
};
pub static UPDATE_REFERENCED: Grant = Grant {
    sid: "ApiGatewayUpdateStagesOfReferencedRestApis",
    actions: &["apigateway:PATCH"],
    resources: &[Resource::ReferencedRestApis("/stages/*")],
    condition: &[],
    when: When::Gateways,
    why: "UpdateStage on the stages of the REST APIs referenced by id (crosslink sets only the settings the YAML names)",
};
pub static READ_ACCOUNT: Grant = Grant {
    sid: "ApiGatewayReadAccountSettings",
    actions: &["apigateway:GET"],
    resources: &[Resource::ApiGw("/account")],
    condition: &[],
    when: When::GatewaySide,
    why: "GetAccount: whether API Gateway's CloudWatch Logs role is set, which stage logging needs",
};

/// GetStages is granted with the REST API reads.
pub static KIND: super::Kind = super::Kind {
    name: "stage",
    calls: &[&GET, &GET_ACCOUNT, &CREATE_DEPLOYMENT, &UPDATE, &TAG, &UNTAG],
    grants: &[
        &rest_api::READ,
        &READ_ACCOUNT,
        &DEPLOY_OWNED,
        &DEPLOY_REFERENCED,
        &UPDATE_OWNED,
        &UPDATE_REFERENCED,
        &TAG_STAGES,
        &RELEASE_TAGS,
    ],
};

// ---- Reading -----------------------------------------------------------------------------------

pub(crate) async fn api_stages(ctx: &Ctx<'_>, c: &Clients, rest_api_id: &str) -> Result<Vec<Stage>, CloudError> {
    let out = ctx.call(&GET, c.apigateway.get_stages().rest_api_id(rest_api_id).send()).await?;
    let mut stages: Vec<Stage> = out
        .item()
        .iter()
        .filter_map(|s| {
            let method_settings = s
                .method_settings()
                .into_iter()
                .flatten()
                .map(|(k, m)| {
                    let setting = MethodSetting {
                        throttling_rate_limit: Some(m.throttling_rate_limit()),
                        throttling_burst_limit: Some(i64::from(m.throttling_burst_limit())),
                        logging_level: m.logging_level().map(str::to_string),
                        data_trace_enabled: m.data_trace_enabled(),
                        metrics_enabled: m.metrics_enabled(),
                    };
                    (k.clone(), setting)
                })
                .collect();
            let access_log = s.access_log_settings().map(|a| AccessLog {
                destination_arn: a.destination_arn().map(str::to_string),
                format: a.format().map(str::to_string),
            });
            Some(Stage {
                name: s.stage_name()?.to_string(),
                deployment_id: s.deployment_id().map(str::to_string),
                tags: str_map(s.tags()),
                settings: LiveStageSettings {
                    method_settings,
                    access_log: access_log.filter(|a| a.destination_arn.is_some() || a.format.is_some()),
                    tracing_enabled: s.tracing_enabled(),
                    variables: str_map(s.variables()),
                    web_acl_arn: s.web_acl_arn().filter(|a| !a.is_empty()).map(str::to_string),
                },
            })
        })
        .collect();
    stages.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(stages)
}

// ---- Changing ----------------------------------------------------------------------------------

/// TagResource on the API Gateway resource at `path` (`/vpclinks/<id>`, `/restapis/<id>`): a
/// gateway's adoption.
pub(crate) async fn tag(ctx: &Ctx<'_>, c: &Clients, path: &str, tags: &Tags) -> Result<Outcome, CloudError> {
    let arn = format!("arn:aws:apigateway:{}::{path}", c.session.region);
    let req = c.apigateway.tag_resource().resource_arn(&arn).set_tags(apigw_tags(tags));
    ctx.write(&TAG, &arn, req.send()).await?;
    done()
}

/// UntagResource of `keys` on the API Gateway resource at `path`: `crosslink release`.
pub(crate) async fn untag(ctx: &Ctx<'_>, c: &Clients, path: &str, keys: &[String]) -> Result<Outcome, CloudError> {
    let arn = format!("arn:aws:apigateway:{}::{path}", c.session.region);
    let req = c.apigateway.untag_resource().resource_arn(&arn).set_tag_keys(Some(keys.to_vec()));
    ctx.write(&UNTAG, &arn, req.send()).await?;
    done()
}

pub(crate) async fn execute(ctx: &Ctx<'_>, c: &Clients, op: &StageOp) -> Result<Outcome, CloudError> {
    use StageOp::*;
    match op {
        CreateDeployment { rest_api_id, stage, description, stage_tags } => {
            let api = known(rest_api_id, "the REST API")?;
            let req = c.apigateway.create_deployment().rest_api_id(api).stage_name(stage).description(description);
            let subject = format!("{api} stage {stage}");
            let out = ctx.write(&CREATE_DEPLOYMENT, &subject, req.send()).await?;
            let outcome = created(out.id(), "deployment")?;
            // If this fails, the stage keeps its old hash and the next pass deploys again.
            if let Some(tags) = apigw_tags(stage_tags) {
                let arn = format!("arn:aws:apigateway:{}::/restapis/{api}/stages/{stage}", c.session.region);
                let req = c.apigateway.tag_resource().resource_arn(&arn).set_tags(Some(tags));
                ctx.write(&TAG, &arn, req.send()).await?;
            }
            Ok(outcome)
        }
        UpdateStage { rest_api_id, stage, patches, tag_first, tag_after } => {
            let api = known(rest_api_id, "the REST API")?;
            let arn = format!("arn:aws:apigateway:{}::/restapis/{api}/stages/{stage}", c.session.region);
            let tag = |tags: &Tags| c.apigateway.tag_resource().resource_arn(&arn).set_tags(apigw_tags(tags)).send();
            if let Some(t) = tag_first {
                ctx.write(&TAG, &arn, tag(t)).await?;
            }
            if !patches.is_empty() {
                let req = c
                    .apigateway
                    .update_stage()
                    .rest_api_id(api)
                    .stage_name(stage)
                    .set_patch_operations(Some(apigw_patches(patches)));
                ctx.write(&UPDATE, &format!("{api} stage {stage}"), req.send()).await?;
            }
            if let Some(t) = tag_after {
                ctx.write(&TAG, &arn, tag(t)).await?;
            }
            done()
        }
    }
}

/// GetAccount where a Gateway lives (the REST APIs, with their stages, are read by `rest_api`).
pub(crate) async fn read(
    ctx: &Ctx<'_>,
    c: &Clients,
    scope: &crosslink_cloud::ObserveScope,
) -> Result<crate::observe::Found, CloudError> {
    let read = async {
        let out = ctx.call(&GET_ACCOUNT, c.apigateway.get_account().send()).await?;
        Ok(ApiGatewayAccount { cloudwatch_role_arn: out.cloudwatch_role_arn().map(str::to_string) })
    };
    crate::observe::store(scope.gateway_side, read, |st, found| st.api_gateway_account = Some(found)).await
}
