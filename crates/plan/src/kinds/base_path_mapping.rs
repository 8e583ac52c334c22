//! The base path mapping of a gateway's custom domain to its stage (read with the domain name).
//! Mappings carry no tags: crosslink changes only mappings on a domain it owns, and of those
//! only the ones to the gateway's own REST API; another API's mapping on the domain is left
//! alone.

use serde::Serialize;

use super::KindOp;
use crate::model::{Reason, Verb};
use crate::op::{Op, Patch, Ref, Service};
use crate::planner::{ApiCx, Planner};

/// AWS's name for the root path.
pub const ROOT: &str = "(none)";

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum BasePathMappingOp {
    CreateBasePathMapping { domain_name: String, base_path: String, rest_api_id: Ref, stage: String },
    /// `/restapiId`, `/stage`.
    UpdateBasePathMapping { domain_name: String, base_path: String, patches: Vec<Patch> },
    DeleteBasePathMapping { domain_name: String, base_path: String },
}

impl KindOp for BasePathMappingOp {
    fn service(&self) -> Service {
        Service::ApiGateway
    }

    fn name(&self) -> &'static str {
        match self {
            Self::CreateBasePathMapping { .. } => "CreateBasePathMapping",
            Self::UpdateBasePathMapping { .. } => "UpdateBasePathMapping",
            Self::DeleteBasePathMapping { .. } => "DeleteBasePathMapping",
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::CreateBasePathMapping { domain_name, base_path, .. }
            | Self::UpdateBasePathMapping { domain_name, base_path, .. }
            | Self::DeleteBasePathMapping { domain_name, base_path } => format!("{domain_name}/{base_path}"),
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::CreateBasePathMapping { rest_api_id, .. } => vec![rest_api_id],
            _ => vec![],
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::CreateBasePathMapping { rest_api_id, .. } => vec![rest_api_id],
            _ => vec![],
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
        matches!(self, Self::DeleteBasePathMapping { .. })
    }
}

// ---- Clean-up and tags (read by the planner's generic machinery) ------------------------------

/// A mapping goes with its domain name.
pub(crate) use crate::planner::nothing_to_prune as prunable;
pub(crate) use crate::planner::nothing_first as before_delete;
pub(crate) use crate::planner::untagged as tag_op;
pub(crate) use crate::planner::not_releasable as untag_op;

// ---- Planning (the API stage) -----------------------------------------------------------------

pub(crate) type Out<'a> = ();

/// The mapping of the gateway's custom domain to its stage, at the desired base path (made after
/// the domain and the stage's first deployment; pointed back at the stage if changed by hand);
/// the gateway API's mappings at other paths of the domain are deleted.
pub(crate) fn plan<'a>(p: &mut Planner<'a>, cx: &mut ApiCx<'a, '_>) -> Option<()> {
    let (gw, subject) = (cx.gw, cx.subject.clone());
    let account = gw.account.as_str();
    let Some(want) = cx.out.domain_name.domain else { return Some(()) };
    let api = &gw.out.rest_api;
    let stage = &gw.gw.spec.api.stage;
    let stage_exists = api.api.is_some_and(|a| a.stages.iter().any(|s| &s.name == stage));
    if !stage_exists && cx.out.stage.is_none() {
        p.report(&subject).waiting.push(format!("stage {stage} to be deployed before {} is mapped to it", want.domain_name));
        return Some(());
    }
    let base_path = want.base_path.clone().unwrap_or_else(|| ROOT.into());
    let mappings = cx.out.domain_name.live.map(|d| d.mappings.as_slice()).unwrap_or_default();
    let ours = |m: &&super::domain_name::BasePathMapping| api.id.known() == Some(m.rest_api_id.as_str());
    for m in mappings.iter().filter(ours).filter(|m| m.base_path != base_path) {
        p.add(
            &subject,
            account,
            format!("custom domain {} base path {}", want.domain_name, m.base_path),
            Verb::Delete,
            Reason::Drift { field: "customDomain.basePath".into(), live: m.base_path.clone(), desired: base_path.clone() },
            Op::BasePathMapping(BasePathMappingOp::DeleteBasePathMapping {
                domain_name: want.domain_name.clone(),
                base_path: m.base_path.clone(),
            }),
            vec![],
        );
    }
    let resource = format!("custom domain {} base path {base_path}", want.domain_name);
    match mappings.iter().find(|m| m.base_path == base_path) {
        None => {
            let deps = vec![cx.out.domain_name.action, if stage_exists { None } else { cx.out.stage }, api.action];
            p.add(
                &subject,
                account,
                resource,
                Verb::Create,
                Reason::Missing,
                Op::BasePathMapping(BasePathMappingOp::CreateBasePathMapping {
                    domain_name: want.domain_name.clone(),
                    base_path,
                    rest_api_id: api.id.clone(),
                    stage: stage.clone(),
                }),
                deps,
            );
        }
        Some(m) => {
            let api_id = api.id.known().unwrap_or_default();
            let mut patches = Vec::new();
            if m.rest_api_id != api_id {
                patches.push(Patch::replace("/restapiId", api_id));
            }
            if m.stage.as_deref() != Some(stage.as_str()) {
                patches.push(Patch::replace("/stage", stage.clone()));
            }
            if !patches.is_empty() && !api_id.is_empty() {
                let live = format!("{}/{}", m.rest_api_id, m.stage.as_deref().unwrap_or("(no stage)"));
                p.add(
                    &subject,
                    account,
                    resource,
                    Verb::Update,
                    Reason::Drift { field: "customDomain mapping".into(), live, desired: format!("{api_id}/{stage}") },
                    Op::BasePathMapping(BasePathMappingOp::UpdateBasePathMapping {
                        domain_name: want.domain_name.clone(),
                        base_path,
                        patches,
                    }),
                    vec![if stage_exists { None } else { cx.out.stage }],
                );
            }
        }
    }
    Some(())
}
