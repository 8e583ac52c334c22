//! The stage and its deployment; the stage is tagged with the hash of what was deployed.

use crosslink_cloud::Outcome;
use crosslink_plan::kinds::StageOp;
use crate::errors::known;
use crate::execute::{apigw_tags, created};

use crosslink_cloud::CloudError;
use crosslink_plan::observed::Stage;

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
    why: "TagResource on the stage (deployed-hash): the /tags resource type supports no aws:ResourceTag, so the request must carry the managed-by tag and only crosslink's keys",
};

/// GetStages is granted with the REST API reads.
pub static KIND: super::Kind = super::Kind {
    name: "stage",
    calls: &[&GET, &CREATE_DEPLOYMENT, &TAG],
    grants: &[&rest_api::READ, &DEPLOY_OWNED, &DEPLOY_REFERENCED, &TAG_STAGES],
};

// ---- Reading -----------------------------------------------------------------------------------

pub(crate) async fn api_stages(ctx: &Ctx<'_>, c: &Clients, rest_api_id: &str) -> Result<Vec<Stage>, CloudError> {
    let out = ctx.call(&GET, c.apigateway.get_stages().rest_api_id(rest_api_id).send()).await?;
    let mut stages: Vec<Stage> = out
        .item()
        .iter()
        .filter_map(|s| {
            Some(Stage {
                name: s.stage_name()?.to_string(),
                deployment_id: s.deployment_id().map(str::to_string),
                tags: str_map(s.tags()),
            })
        })
        .collect();
    stages.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(stages)
}

// ---- Changing ----------------------------------------------------------------------------------

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
    }
}

/// Read with its REST API (`crate::observe::observe`).
pub(crate) use crate::observe::read_by_parent as read;
