//! The in-memory AWS: a stage's WAF web ACL, as AWS documents AssociateWebACL: the stage must
//! exist (WAFNonexistentItemException) and an association replaces the previous one.

use crosslink_plan::kinds::WebAclOp;

use super::*;

pub(super) fn apply(w: &mut World, me: &str, op: &WebAclOp) -> Result<Outcome, CloudError> {
    let (rest_api_id, stage, arn) = match op {
        WebAclOp::AssociateWebAcl { rest_api_id, stage, web_acl_arn } => (rest_api_id, stage, Some(web_acl_arn)),
        WebAclOp::DisassociateWebAcl { rest_api_id, stage } => (rest_api_id, stage, None),
    };
    let id = known(rest_api_id)?.to_string();
    let api = w.api(me, &id)?;
    let s = api
        .stages
        .iter_mut()
        .find(|s| &s.name == stage)
        .ok_or_else(|| not_found("WAFNonexistentItemException", &format!("stage {stage}")))?;
    s.settings.web_acl_arn = arn.cloned();
    done()
}
