//! The WAF web ACL of a gateway's stage (its `webAclArn` is read with the stage by `stage`).

use crosslink_cloud::{CloudError, Outcome};
use crosslink_plan::kinds::WebAclOp;

use crate::calls::{AwsService::*, Call};
use crate::cloud::{Clients, Ctx};
use crate::errors::known;
use crate::execute::done;
use crate::grants::{Grant, IN_REGION, OWNED, Resource, When};
use crate::ratelimit::Bucket;

const B: &[Bucket] = &[Bucket::Wafv2];

/// AWS authorizes an association on both sides: the web ACL (wafv2) and the stage
/// (`apigateway:SetWebACL`).
pub const ASSOCIATE: Call = Call::write(Wafv2, "AssociateWebACL", &["wafv2:AssociateWebACL", "apigateway:SetWebACL"], B);
pub const DISASSOCIATE: Call =
    Call::write(Wafv2, "DisassociateWebACL", &["wafv2:DisassociateWebACL", "apigateway:SetWebACL"], B);

pub static WAF_ASSOCIATE: Grant = Grant {
    sid: "WafAssociateWebAclsWithStagesNoResourceTag",
    actions: &["wafv2:AssociateWebACL", "wafv2:DisassociateWebACL"],
    resources: &[Resource::Any],
    condition: IN_REGION,
    when: When::Gateways,
    why: "AssociateWebACL, DisassociateWebACL of the gateways' stages; limited to the Account's region (web ACLs carry no crosslink tag)",
};
pub static SET_WEB_ACL_OWNED: Grant = Grant {
    sid: "ApiGatewaySetWebAclOnStagesOfOwnedRestApis",
    actions: &["apigateway:SetWebACL"],
    resources: &[Resource::ApiGw("/restapis/*/stages/*")],
    condition: OWNED,
    when: When::OwnRestApis,
    why: "SetWebACL (what WAF checks when it associates a web ACL) on the stages of REST APIs carrying the managed-by tag",
};
pub static SET_WEB_ACL_REFERENCED: Grant = Grant {
    sid: "ApiGatewaySetWebAclOnStagesOfReferencedRestApis",
    actions: &["apigateway:SetWebACL"],
    resources: &[Resource::ReferencedRestApis("/stages/*")],
    condition: &[],
    when: When::Gateways,
    why: "SetWebACL on the stages of the REST APIs referenced by id",
};

pub static KIND: super::Kind = super::Kind {
    name: "web ACL",
    calls: &[&ASSOCIATE, &DISASSOCIATE],
    grants: &[&WAF_ASSOCIATE, &SET_WEB_ACL_OWNED, &SET_WEB_ACL_REFERENCED],
};

pub(crate) async fn execute(ctx: &Ctx<'_>, c: &Clients, op: &WebAclOp) -> Result<Outcome, CloudError> {
    let (WebAclOp::AssociateWebAcl { rest_api_id, .. } | WebAclOp::DisassociateWebAcl { rest_api_id, .. }) = op;
    let api = known(rest_api_id, "the REST API")?;
    let stage_arn = op.stage_arn(&c.session.region, api);
    match op {
        WebAclOp::AssociateWebAcl { web_acl_arn, .. } => {
            let req = c.wafv2.associate_web_acl().web_acl_arn(web_acl_arn).resource_arn(&stage_arn);
            ctx.write(&ASSOCIATE, &stage_arn, req.send()).await?;
        }
        WebAclOp::DisassociateWebAcl { .. } => {
            let req = c.wafv2.disassociate_web_acl().resource_arn(&stage_arn);
            ctx.write(&DISASSOCIATE, &stage_arn, req.send()).await?;
        }
    }
    done()
}

/// Read with the stage (`crate::observe::observe`).
pub(crate) use crate::observe::read_by_parent as read;
