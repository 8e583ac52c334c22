//! The in-memory AWS: a REST API's resource policy, as AWS stores it: a JSON string with
//! `execute-api:/...` resources expanded to the API's full ARN (moto keeps the text as given), so
//! that crosslink's comparison by meaning is what keeps a pass from flapping.

use crosslink_plan::kinds::ResourcePolicyOp;

use super::*;

pub(super) fn apply(w: &mut World, me: &str, op: &ResourcePolicyOp) -> Result<Outcome, CloudError> {
    match op {
        ResourcePolicyOp::PutRestApiPolicy { rest_api_id, policy } => {
            let id = known(rest_api_id)?.to_string();
            let region = w.acct(me).region.clone();
            let api = w.api(me, &id)?;
            if policy.is_empty() {
                api.policy = None;
                return done();
            }
            let parsed: serde_json::Value = serde_json::from_str(policy).map_err(|e| {
                err(ErrorKind::Permanent, "BadRequestException", format!("Invalid policy document: {e}"))
            })?;
            let arn = format!("arn:aws:execute-api:{region}:{me}:{id}/");
            api.policy = Some(parsed.to_string().replace("\"execute-api:/", &format!("\"{arn}")));
            done()
        }
    }
}
