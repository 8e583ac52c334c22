//! The resource policy of a REST API (read with the API: GetRestApis returns it).

use crosslink_cloud::{CloudError, Outcome};
use crosslink_plan::kinds::ResourcePolicyOp;

use crate::calls::{AwsService::*, Call};
use crate::cloud::{Clients, Ctx};
use crate::errors::known;
use crate::execute::{apigw_patches, done};
use crate::grants::{Grant, OWNED, Resource, When};
use crate::ratelimit::Bucket;

pub const UPDATE: Call = Call::write(ApiGateway, "UpdateRestApi", &["apigateway:PATCH"], &[Bucket::ApiGateway]);

/// The policy of crosslink's own REST APIs.
pub static PUT_OWNED: Grant = Grant {
    sid: "ApiGatewayPolicyOfOwnedRestApis",
    actions: &["apigateway:PATCH"],
    resources: &[Resource::ApiGw("/restapis/*")],
    condition: OWNED,
    when: When::OwnRestApis,
    why: "UpdateRestApi (replace /policy: the resource policy) on REST APIs carrying the managed-by tag",
};
/// The policy of REST APIs referenced by id, when the YAML writes one.
pub static PUT_REFERENCED: Grant = Grant {
    sid: "ApiGatewayPolicyOfReferencedRestApisNoResourceTag",
    actions: &["apigateway:PATCH"],
    resources: &[Resource::ReferencedRestApis("")],
    condition: &[],
    when: When::Gateways,
    why: "UpdateRestApi (replace /policy) on the REST APIs referenced by id, which carry no crosslink tag",
};

pub static KIND: super::Kind = super::Kind {
    name: "resource policy",
    calls: &[&UPDATE],
    grants: &[&PUT_OWNED, &PUT_REFERENCED],
};

pub(crate) async fn execute(ctx: &Ctx<'_>, c: &Clients, op: &ResourcePolicyOp) -> Result<Outcome, CloudError> {
    match op {
        ResourcePolicyOp::PutRestApiPolicy { rest_api_id, .. } => {
            let api = known(rest_api_id, "the REST API")?;
            let req = c.apigateway.update_rest_api().rest_api_id(api).set_patch_operations(Some(apigw_patches(&[op.patch()])));
            ctx.write(&UPDATE, &format!("{api} policy"), req.send()).await?;
            done()
        }
    }
}

/// Read with its REST API (`crate::observe::observe`).
pub(crate) use crate::observe::read_by_parent as read;
