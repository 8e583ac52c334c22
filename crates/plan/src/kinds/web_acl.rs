//! The AWS WAF web ACL associated with a gateway's stage (read with the stage: GetStages reports
//! its `webAclArn`). An association takes effect at once: nothing is deployed.

use serde::Serialize;

use super::KindOp;
use crate::model::{Reason, Verb};
use crate::op::{Op, Ref, Service};
use crate::planner::{ApiCx, Planner};

// ---- Operations -------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum WebAclOp {
    /// AssociateWebACL with the stage's ARN (it replaces another web ACL's association).
    AssociateWebAcl { rest_api_id: Ref, stage: String, web_acl_arn: String },
    /// DisassociateWebACL: the stage is left without a web ACL.
    DisassociateWebAcl { rest_api_id: Ref, stage: String },
}

impl WebAclOp {
    /// The stage's ARN, as WAF names the protected resource.
    pub fn stage_arn(&self, region: &str, rest_api_id: &str) -> String {
        let stage = match self {
            Self::AssociateWebAcl { stage, .. } | Self::DisassociateWebAcl { stage, .. } => stage,
        };
        format!("arn:aws:apigateway:{region}::/restapis/{rest_api_id}/stages/{stage}")
    }
}

impl KindOp for WebAclOp {
    fn service(&self) -> Service {
        Service::Wafv2
    }

    fn name(&self) -> &'static str {
        match self {
            Self::AssociateWebAcl { .. } => "AssociateWebACL",
            Self::DisassociateWebAcl { .. } => "DisassociateWebACL",
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::AssociateWebAcl { rest_api_id, stage, .. } | Self::DisassociateWebAcl { rest_api_id, stage } => {
                format!("{rest_api_id}/{stage} web ACL")
            }
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::AssociateWebAcl { rest_api_id, .. } | Self::DisassociateWebAcl { rest_api_id, .. } => {
                vec![rest_api_id]
            }
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::AssociateWebAcl { rest_api_id, .. } | Self::DisassociateWebAcl { rest_api_id, .. } => {
                vec![rest_api_id]
            }
        }
    }

    fn lets_chain(&self, state: Option<&str>) -> bool {
        let _ = state;
        true
    }

    fn on_new_resource(&self) -> bool {
        false
    }

    fn is_delete(&self) -> bool {
        false
    }
}

// ---- Clean-up and tags (read by the planner's generic machinery) ------------------------------

/// An association goes with its stage.
pub(crate) use crate::planner::nothing_to_prune as prunable;
pub(crate) use crate::planner::nothing_first as before_delete;
pub(crate) use crate::planner::untagged as tag_op;
pub(crate) use crate::planner::not_releasable as untag_op;

// ---- Planning (the API stage) -----------------------------------------------------------------

pub(crate) type Out<'a> = ();

/// The stage's web ACL. Managed when the YAML names one; on a REST API crosslink owns, a web ACL
/// that left the YAML is disassociated, which the protection guard holds (the stage loses its
/// WAF). On an API referenced by id, an association the YAML does not name is left alone. A stage
/// this plan creates is associated after its first deployment.
pub(crate) fn plan<'a>(p: &mut Planner<'a>, cx: &mut ApiCx<'a, '_>) -> Option<()> {
    let (gw, subject, account) = (cx.gw, cx.subject.clone(), cx.gw.account.as_str());
    let api = &gw.out.rest_api;
    let spec = &gw.gw.spec.api;
    let want = spec.web_acl_arn.as_deref();
    if want.is_none() && !api.owned {
        return Some(());
    }
    let stage = api.api.and_then(|a| a.stages.iter().find(|s| s.name == spec.stage));
    if stage.is_none() && cx.out.stage.is_none() {
        return Some(());
    }
    let live = stage.and_then(|s| s.settings.web_acl_arn.as_deref());
    if let Some(arn) = live.filter(|a| !a.is_empty()) {
        p.report(&subject).resources.insert("webAcl".into(), arn.to_string());
    }
    if live == want {
        return Some(());
    }
    let deps = vec![if stage.is_none() { cx.out.stage } else { None }, api.action];
    let resource = format!("stage {} web ACL", spec.stage);
    let reason =
        Reason::Drift { field: "webAclArn".into(), live: live.unwrap_or("(none)").into(), desired: want.unwrap_or("(none)").into() };
    match want {
        Some(arn) => {
            p.add(
                &subject,
                account,
                resource,
                Verb::Update,
                reason,
                Op::WebAcl(WebAclOp::AssociateWebAcl {
                    rest_api_id: api.id.clone(),
                    stage: spec.stage.clone(),
                    web_acl_arn: arn.to_string(),
                }),
                deps,
            );
        }
        None => {
            let a = p.add(
                &subject,
                account,
                resource,
                Verb::Update,
                reason,
                Op::WebAcl(WebAclOp::DisassociateWebAcl { rest_api_id: api.id.clone(), stage: spec.stage.clone() }),
                deps,
            );
            let arn = live.unwrap_or_default();
            p.plan.weakening.insert(a, format!("stage {}: web ACL {arn} disassociated", spec.stage));
        }
    }
    Some(())
}
