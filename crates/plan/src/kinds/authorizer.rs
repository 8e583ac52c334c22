//! The Lambda (TOKEN, REQUEST) and Cognito user pool authorizers of a gateway's REST API.
//!
//! Authorizers carry no tags. crosslink marks its own in `authType`, a field AWS documents as
//! "customer-defined, without functional impact": `crosslink:<instance>`. Only authorizers with
//! this instance's mark are changed or deleted; a desired name taken by any other authorizer is
//! a problem, never a takeover.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crosslink_desired::{AuthorizerSpec, AuthorizerType};

use super::KindOp;
use crate::model::{Reason, Verb};
use crate::op::{Op, Output, Ref, Service};
use crate::planner::{ApiCx, Planner};

// ---- What is observed ------------------------------------------------------------------------

/// One authorizer of a REST API (read with the API).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Authorizer {
    pub id: String,
    pub name: String,
    /// `TOKEN`, `REQUEST` or `COGNITO_USER_POOLS`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub provider_arns: Vec<String>,
    pub authorizer_uri: Option<String>,
    pub credentials: Option<String>,
    pub identity_source: Option<String>,
    /// AWS's default when it is not reported: 300.
    pub result_ttl_seconds: Option<u32>,
    pub auth_type: Option<String>,
}

// ---- Operations -------------------------------------------------------------------------------

/// What an authorizer is made of, as CreateAuthorizer takes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerSettings {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub provider_arns: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorizer_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_source: Option<String>,
    pub result_ttl_seconds: u32,
    /// crosslink's mark: `crosslink:<instance>`.
    pub auth_type: String,
}

pub use crate::op::Patch;

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum AuthorizerOp {
    CreateAuthorizer {
        rest_api_id: Ref,
        name: String,
        settings: AuthorizerSettings,
    },
    /// The fields AWS updates in place (the function, its role, the identity source, the TTL):
    /// a change of type or user pools is a new authorizer instead.
    UpdateAuthorizer {
        rest_api_id: String,
        id: String,
        name: String,
        patches: Vec<Patch>,
    },
    /// Refused by AWS while a method uses it: planned after the methods move off it.
    DeleteAuthorizer {
        rest_api_id: String,
        id: String,
        name: String,
    },
}

impl KindOp for AuthorizerOp {
    fn service(&self) -> Service {
        Service::ApiGateway
    }

    fn name(&self) -> &'static str {
        match self {
            Self::CreateAuthorizer { .. } => "CreateAuthorizer",
            Self::UpdateAuthorizer { .. } => "UpdateAuthorizer",
            Self::DeleteAuthorizer { .. } => "DeleteAuthorizer",
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::CreateAuthorizer { rest_api_id, name, .. } => format!("{rest_api_id} authorizer {name}"),
            Self::UpdateAuthorizer { rest_api_id, id, .. } | Self::DeleteAuthorizer { rest_api_id, id, .. } => {
                format!("{rest_api_id} authorizer {id}")
            }
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::CreateAuthorizer { rest_api_id, .. } => vec![rest_api_id],
            Self::UpdateAuthorizer { .. } | Self::DeleteAuthorizer { .. } => vec![],
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::CreateAuthorizer { rest_api_id, .. } => vec![rest_api_id],
            Self::UpdateAuthorizer { .. } | Self::DeleteAuthorizer { .. } => vec![],
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
        matches!(self, Self::DeleteAuthorizer { .. })
    }
}

// ---- Planning: names and comparisons ----------------------------------------------------------

/// The `authType` crosslink writes on its authorizers.
pub fn mark(instance: &str) -> String {
    format!("crosslink:{instance}")
}

/// The default identity source of TOKEN and Cognito authorizers.
pub const AUTHORIZATION_HEADER: &str = "method.request.header.Authorization";

/// What an authorizer of the desired state is made of in AWS. A Lambda function is invoked
/// through API Gateway's Lambda integration URI, in the function's region.
pub fn settings_of(spec: &AuthorizerSpec, instance: &str) -> AuthorizerSettings {
    let lambda = matches!(spec.kind, AuthorizerType::Token | AuthorizerType::Request);
    let authorizer_uri = spec.lambda_arn.as_deref().filter(|_| lambda).map(|arn| {
        let parts: Vec<&str> = arn.split(':').collect();
        let (partition, region) = (parts.get(1).unwrap_or(&"aws"), parts.get(3).unwrap_or(&""));
        format!("arn:{partition}:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations")
    });
    let identity_source = match (spec.kind, &spec.identity_source) {
        (_, Some(s)) => Some(s.clone()),
        (AuthorizerType::Request, None) => None,
        (_, None) => Some(AUTHORIZATION_HEADER.to_string()),
    };
    let mut provider_arns = spec.provider_arns.clone();
    provider_arns.sort();
    AuthorizerSettings {
        kind: spec.kind.as_str().to_string(),
        provider_arns,
        authorizer_uri,
        credentials: spec.credentials_role_arn.clone().filter(|_| lambda),
        identity_source,
        result_ttl_seconds: u32::from(spec.result_ttl_seconds),
        auth_type: mark(instance),
    }
}

/// Whether a live authorizer can become the desired one in place: the same type and user pools
/// (AWS changes neither of them in place reliably; moto not at all).
fn replaceable_in_place(live: &Authorizer, want: &AuthorizerSettings) -> bool {
    let mut providers = live.provider_arns.clone();
    providers.sort();
    live.kind == want.kind && providers == want.provider_arns
}

/// The fields that differ, as `replace` patches, and the first of them as the reason.
fn patches(live: &Authorizer, want: &AuthorizerSettings) -> (Vec<Patch>, Option<Reason>) {
    let ttl = want.result_ttl_seconds.to_string();
    let live_ttl = live.result_ttl_seconds.unwrap_or(300).to_string();
    let fields: [(&str, &str, Option<&str>, Option<&str>); 4] = [
        ("authorizerUri", "/authorizerUri", live.authorizer_uri.as_deref(), want.authorizer_uri.as_deref()),
        ("authorizerCredentials", "/authorizerCredentials", live.credentials.as_deref(), want.credentials.as_deref()),
        ("identitySource", "/identitySource", live.identity_source.as_deref(), want.identity_source.as_deref()),
        ("authorizerResultTtlInSeconds", "/authorizerResultTtlInSeconds", Some(&live_ttl), Some(&ttl)),
    ];
    let mut out = Vec::new();
    let mut reason = None;
    for (field, path, live, want) in fields {
        if live.unwrap_or_default() == want.unwrap_or_default() {
            continue;
        }
        reason.get_or_insert_with(|| Reason::Drift {
            field: format!("authorizer {field}"),
            live: live.unwrap_or("(none)").into(),
            desired: want.unwrap_or("(none)").into(),
        });
        out.push(Patch::replace(path, want.unwrap_or_default()));
    }
    (out, reason)
}

/// What the deployment's hash covers of an authorizer: everything it is made of, so that a
/// change interrupted before its deployment is deployed by the next pass.
fn hash_line(name: &str, s: &AuthorizerSettings) -> String {
    format!(
        "authorizer {name} {} {} {} {} {} {}",
        s.kind,
        s.provider_arns.join(","),
        s.authorizer_uri.as_deref().unwrap_or("-"),
        s.credentials.as_deref().unwrap_or("-"),
        s.identity_source.as_deref().unwrap_or("-"),
        s.result_ttl_seconds
    )
}

// ---- Clean-up and tags (read by the planner's generic machinery) ------------------------------

/// Authorizers are removed with their REST API, or by this kind's planning.
pub(crate) use crate::planner::nothing_to_prune as prunable;
pub(crate) use crate::planner::nothing_first as before_delete;
pub(crate) use crate::planner::untagged as tag_op;
pub(crate) use crate::planner::not_releasable as untag_op;

// ---- Planning (the API stage) -----------------------------------------------------------------

/// What the API's authorizers hand on: each desired one's id (pending while this plan creates
/// it) and the action creating it; the deletions, which wait for the methods (`method::plan`);
/// the lines the deployment's hash takes.
#[derive(Default)]
pub(crate) struct Authorizers {
    pub(crate) ids: BTreeMap<String, (Ref, Option<usize>)>,
    pub(crate) deletes: Vec<usize>,
    pub(crate) hash_lines: Vec<String>,
}

pub(crate) type Out<'a> = Authorizers;

/// The gateway's authorizers: each desired one is found by name among this instance's (those
/// of another type or other user pools are replaced: a new one is created, the methods move to
/// it, and the old one is deleted after them), updated in place where it drifted, or created;
/// this instance's authorizers no longer desired are deleted after the methods leave them. An
/// authorizer no route uses is a warning.
pub(crate) fn plan<'a>(p: &mut Planner<'a>, cx: &mut ApiCx<'a, '_>) -> Option<()> {
    let (gw, subject, account) = (cx.gw, cx.subject.clone(), cx.gw.account.as_str());
    let api = &gw.out.rest_api;
    let spec = &gw.gw.spec.api;
    let live: &'a [Authorizer] = api.api.map(|a| a.authorizers.as_slice()).unwrap_or(&[]);
    let mine = mark(&p.s.instance);
    let ours = |a: &Authorizer| a.auth_type.as_deref() == Some(mine.as_str());
    for want in &spec.authorizers {
        if let Some(other) = live.iter().find(|a| a.name == want.name && !ours(a)) {
            let by = match other.auth_type.as_deref().and_then(|t| t.strip_prefix("crosslink:")) {
                Some(instance) => format!("is crosslink instance {instance}'s"),
                None => "was not made by crosslink".to_string(),
            };
            p.problem(
                &subject,
                "NameTaken",
                format!("the REST API has an authorizer named {} ({}) that {by}", want.name, other.id),
                Some("rename the authorizer in spec.api.authorizers (and the routes that use it)".into()),
            );
            return None;
        }
    }
    let mut used: BTreeSet<&str> = BTreeSet::new();
    for e in cx.entries {
        for (_, _, protection, _) in &e.paths {
            used.extend(protection.authorizer.as_deref());
        }
    }
    for want in &spec.authorizers {
        let settings = settings_of(want, &p.s.instance);
        let api_id = api.id.known();
        let same: Vec<&Authorizer> = live.iter().filter(|a| a.name == want.name && ours(a)).collect();
        let usable = same.iter().find(|a| replaceable_in_place(a, &settings)).copied();
        let resource = format!("authorizer {}", want.name);
        let id = match usable {
            Some(a) => {
                let (patches, reason) = patches(a, &settings);
                if let (Some(reason), Some(api_id)) = (reason, api_id) {
                    let u = p.add(
                        &subject,
                        account,
                        resource.clone(),
                        Verb::Update,
                        reason,
                        Op::Authorizer(AuthorizerOp::UpdateAuthorizer {
                            rest_api_id: api_id.to_string(),
                            id: a.id.clone(),
                            name: a.name.clone(),
                            patches,
                        }),
                        vec![],
                    );
                    cx.changes.push(u);
                }
                p.report(&subject).resources.insert(resource.clone(), a.id.clone());
                (Ref::Known(a.id.clone()), None)
            }
            None => {
                let reason = match same.first() {
                    Some(old) => Reason::Replaced {
                        why: format!(
                            "authorizer {} is {} {:?}, desired {} {:?}",
                            old.id, old.kind, old.provider_arns, settings.kind, settings.provider_arns
                        ),
                    },
                    None => Reason::Missing,
                };
                let c = p.add(
                    &subject,
                    account,
                    resource.clone(),
                    Verb::Create,
                    reason,
                    Op::Authorizer(AuthorizerOp::CreateAuthorizer {
                        rest_api_id: api.id.clone(),
                        name: want.name.clone(),
                        settings: settings.clone(),
                    }),
                    vec![api.action],
                );
                cx.changes.push(c);
                (Ref::created(resource.clone(), c, Output::Id), Some(c))
            }
        };
        cx.out.authorizer.ids.insert(want.name.clone(), id);
        cx.out.authorizer.hash_lines.push(hash_line(&want.name, &settings));
        let keep = usable.map(|a| a.id.as_str());
        for old in same.iter().filter(|a| Some(a.id.as_str()) != keep) {
            let Some(api_id) = api_id else { continue };
            let d = p.add(
                &subject,
                account,
                format!("authorizer {} ({})", old.name, old.id),
                Verb::Delete,
                Reason::Replaced { why: format!("replaced by a new authorizer {}", want.name) },
                Op::Authorizer(AuthorizerOp::DeleteAuthorizer {
                    rest_api_id: api_id.to_string(),
                    id: old.id.clone(),
                    name: old.name.clone(),
                }),
                vec![],
            );
            cx.out.authorizer.deletes.push(d);
            cx.changes.push(d);
        }
        if !used.contains(want.name.as_str()) {
            p.report(&subject)
                .warnings
                .push(format!("authorizer {} is used by no route: it is kept, but protects nothing", want.name));
        }
    }
    let Some(api_id) = api.id.known() else { return Some(()) };
    for old in live.iter().filter(|a| ours(a) && spec.authorizer(&a.name).is_none()) {
        let d = p.add(
            &subject,
            account,
            format!("authorizer {} ({})", old.name, old.id),
            Verb::Delete,
            Reason::NoLongerDesired,
            Op::Authorizer(AuthorizerOp::DeleteAuthorizer {
                rest_api_id: api_id.to_string(),
                id: old.id.clone(),
                name: old.name.clone(),
            }),
            vec![],
        );
        cx.out.authorizer.deletes.push(d);
        cx.changes.push(d);
    }
    Some(())
}
