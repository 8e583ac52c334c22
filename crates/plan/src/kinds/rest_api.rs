//! A gateway's REST API.

use serde::{Deserialize, Serialize};

use crosslink_desired::{AdoptionPolicy, ApiTarget};
use crate::kinds::ResourceKind;
use crate::model::{Reason, Verb};
use crate::op::{Op, Output};
use crate::planner::{GatewayCx, Planner};
use super::KindOp;
use crate::observed::AccountState;
use crate::planner::Prunable;
use crate::kinds::api_resource::ApiResource;
use crate::kinds::stage::Stage;
use crate::kinds::authorizer::Authorizer;
use crate::op::{Ref, Service};
use crate::observed::Tags;

// ---- What is observed ------------------------------------------------------------------------

/// Its field of `AccountState` (`rest_apis`), each with its resources (and their methods) and stages.
pub type Observed = Vec<RestApi>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestApi {
    pub id: String,
    pub name: String,
    pub tags: Tags,
    /// Read only for the APIs of desired Gateways or crosslink's own.
    pub resources: Vec<ApiResource>,
    pub stages: Vec<Stage>,
    /// Older observations (golden inputs) lack it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorizers: Vec<Authorizer>,
    /// Its resource policy, as AWS returns it (a JSON string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

// ---- Operations -------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum RestApiOp {
    CreateRestApi {
        name: String,
        tags: Tags,
    },
    DeleteRestApi {
        id: String,
    },
    /// Tags a REST API (TagResource on its ARN): adoption.
    TagRestApi {
        id: String,
        tags: Tags,
    },
    /// Removes tags (by key) from a REST API (UntagResource on its ARN): `crosslink release`.
    UntagRestApi {
        id: String,
        keys: Vec<String>,
    },
}

impl KindOp for RestApiOp {
    fn service(&self) -> Service {
        Service::ApiGateway
    }

    fn name(&self) -> &'static str {
        match self {
            Self::CreateRestApi { .. } => "CreateRestApi",
            Self::DeleteRestApi { .. } => "DeleteRestApi",
            Self::TagRestApi { .. } => "TagResource",
            Self::UntagRestApi { .. } => "UntagResource",
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::CreateRestApi { name, .. } => name.clone(),
            Self::DeleteRestApi { id } | Self::TagRestApi { id, .. } | Self::UntagRestApi { id, .. } => id.clone(),
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::CreateRestApi { .. }
            | Self::DeleteRestApi { .. }
            | Self::TagRestApi { .. }
            | Self::UntagRestApi { .. } => vec![],
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::CreateRestApi { .. }
            | Self::DeleteRestApi { .. }
            | Self::TagRestApi { .. }
            | Self::UntagRestApi { .. } => vec![],
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
        matches!(self, Self::DeleteRestApi { .. })
    }
}

// ---- Clean-up and tags (read by the planner's generic machinery) ------------------------------

/// A REST API's integrations may go through any VPC link of its account: it is deleted before
/// them.
pub(crate) fn prunable(st: &AccountState) -> Vec<Prunable<'_>> {
    st.rest_apis
        .iter()
        .map(|api| Prunable {
            tags: &api.tags,
            id: api.id.clone(),
            what: format!("REST API {} ({})", api.name, api.id),
            delete: RestApiOp::DeleteRestApi { id: api.id.clone() }.into(),
            uses: st.vpc_links.iter().map(|v| v.id.clone()).collect(),
            follows_link: false,
            deleting: false,
        })
        .collect()
}

pub(crate) use crate::planner::nothing_first as before_delete;
/// API Gateway tags are added with `TagResource` on the resource's ARN.
pub(crate) fn tag_op(id: &str, tags: Tags) -> Option<Op> {
    Some(RestApiOp::TagRestApi { id: id.to_string(), tags }.into())
}
/// API Gateway tags are removed with `UntagResource` on the resource's ARN.
pub(crate) fn untag_op(id: &str, keys: Vec<String>) -> Option<Op> {
    Some(RestApiOp::UntagRestApi { id: id.to_string(), keys }.into())
}

// ---- Planning (the gateway stage) -------------------------------------------------------------

/// What the gateway's REST API hands on: its id (pending while this plan creates it), the action
/// creating it, what was observed of it, and whether crosslink owns it (one referenced by id is
/// only added to).
pub(crate) struct Out<'a> {
    pub(crate) id: Ref,
    pub(crate) action: Option<usize>,
    pub(crate) api: Option<&'a RestApi>,
    pub(crate) owned: bool,
    /// Adopted on this pass (`adoption: Adopt`): treated as referenced until it is tagged, so
    /// that nothing of it is deleted on the adopting pass.
    pub(crate) adopting: bool,
}

impl Default for Out<'_> {
    fn default() -> Self {
        Out { id: Ref::Pending("the gateway's REST API".into()), action: None, api: None, owned: false, adopting: false }
    }
}

/// The gateway's REST API: referenced by id (it must exist), or named, found by its owner tag
/// (duplicates deleted) and created when missing; a name taken by an API crosslink does not own
/// is a problem.
pub(crate) fn plan<'a>(p: &mut Planner<'a>, cx: &mut GatewayCx<'a>) -> Option<()> {
    let (gw, state, subject, account) = (cx.gw, cx.state, &cx.subject, cx.account.as_str());
    let out = &mut cx.out.rest_api;
    match &gw.spec.api.target {
        ApiTarget::Id(id) => match state.rest_apis.iter().find(|a| &a.id == id) {
            Some(a) => {
                (out.id, out.api, out.owned) = (Ref::Known(a.id.clone()), Some(a), p.owned_by(&a.tags, &cx.owner));
            }
            None => {
                p.problem(subject, "NotFound", format!("REST API {id} not found in account {account}"), None);
                return None;
            }
        },
        ApiTarget::Name(name) => {
            let mine: Vec<&RestApi> = state.rest_apis.iter().filter(|a| p.owned_by(&a.tags, &cx.owner)).collect();
            match mine.iter().find(|a| &a.name == name) {
                Some(a) => {
                    p.claimed.insert(a.id.clone());
                    for dup in mine.iter().filter(|d| d.id != a.id) {
                        p.claimed.insert(dup.id.clone());
                        p.add(
                            subject,
                            account,
                            format!("REST API {} ({})", dup.name, dup.id),
                            Verb::Delete,
                            Reason::Replaced { why: format!("the gateway's API is {}", a.id) },
                            Op::RestApi(RestApiOp::DeleteRestApi { id: dup.id.clone() }),
                            vec![],
                        );
                    }
                    (out.id, out.api, out.owned) = (Ref::Known(a.id.clone()), Some(*a), true);
                }
                None => {
                    let unowned = state.rest_apis.iter().find(|a| &a.name == name && !p.owned(&a.tags));
                    if let Some(other) = unowned
                        && gw.spec.adoption == AdoptionPolicy::Adopt
                    {
                        if p.refuse_other_instance(subject, &other.tags, &format!("REST API {name} ({})", other.id)) {
                            return None;
                        }
                        p.adopt(
                            ResourceKind::RestApi,
                            subject,
                            account,
                            format!("REST API {name} ({})", other.id),
                            &other.id,
                            &other.tags,
                            &cx.want_tags,
                            format!("by name {name}"),
                        );
                        (out.id, out.api, out.owned, out.adopting) = (Ref::Known(other.id.clone()), Some(other), false, true);
                    } else if let Some(other) = unowned {
                        p.problem(
                            subject,
                            "NameTaken",
                            format!("a REST API named {name} exists ({}) and is not managed by crosslink", other.id),
                            Some(format!(
                                "choose another api.name, add to it with api: {{id: {}, stage: {}}} (crosslink never deletes a referenced API), or take it over with the gateway's adoption: Adopt",
                                other.id, gw.spec.api.stage
                            )),
                        );
                        return None;
                    } else {
                    let a = p.add(
                        subject,
                        account,
                        format!("REST API {name}"),
                        Verb::Create,
                        Reason::Missing,
                        Op::RestApi(RestApiOp::CreateRestApi { name: name.clone(), tags: cx.want_tags.clone() }),
                        vec![],
                    );
                    (out.id, out.action, out.owned) = (Ref::created(format!("REST API {name}"), a, Output::Id), Some(a), true);
                    }
                }
            }
        }
    }
    if let Some(id) = out.id.known() {
        p.report(subject).resources.insert("restApi".into(), id.to_string());
    }
    Some(())
}
