//! The resource policy of a gateway's REST API: written as YAML, compared with the live one by
//! meaning (AWS stores it as a JSON string, with `execute-api:/...` resources expanded to full
//! ARNs, single values and lists interchangeable, statements in any order), put with
//! UpdateRestApi, and deployed (API Gateway enforces the policy as deployed).

use serde::Serialize;
use serde_json::Value;

use super::KindOp;
use crate::model::{Reason, Verb};
use crate::op::{Patch, Ref, Service};
use crate::op::Op;
use crate::planner::{ApiCx, Planner};

// ---- Operations -------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum ResourcePolicyOp {
    /// UpdateRestApi `replace /policy` (an empty policy removes it).
    PutRestApiPolicy { rest_api_id: Ref, policy: String },
}

impl ResourcePolicyOp {
    /// The patch UpdateRestApi takes.
    pub fn patch(&self) -> Patch {
        match self {
            Self::PutRestApiPolicy { policy, .. } => Patch::replace("/policy", policy.clone()),
        }
    }
}

impl KindOp for ResourcePolicyOp {
    fn service(&self) -> Service {
        Service::ApiGateway
    }

    fn name(&self) -> &'static str {
        "UpdateRestApi"
    }

    fn target_id(&self) -> String {
        match self {
            Self::PutRestApiPolicy { rest_api_id, .. } => format!("{rest_api_id} policy"),
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::PutRestApiPolicy { rest_api_id, .. } => vec![rest_api_id],
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::PutRestApiPolicy { rest_api_id, .. } => vec![rest_api_id],
        }
    }

    fn lets_chain(&self, state: Option<&str>) -> bool {
        let _ = state;
        true
    }

    fn on_new_resource(&self) -> bool {
        match self {
            Self::PutRestApiPolicy { rest_api_id, .. } => rest_api_id.known().is_none(),
        }
    }

    fn is_delete(&self) -> bool {
        false
    }
}

// ---- Planning: names and comparisons ----------------------------------------------------------

/// Keys whose value IAM reads as one string or a list of strings.
const LISTS: &[&str] = &["Action", "NotAction", "Resource", "NotResource", "AWS", "Service", "Federated"];

/// A policy in a form where equal meaning is equal value: `execute-api:/<path>` resources as the
/// full ARN of this API (`api_arn`: `arn:<partition>:execute-api:<region>:<account>:<api id>`),
/// `Principal: "*"` as `{AWS: ["*"]}`, single values of list keys and of conditions as sorted
/// lists, statements sorted.
pub fn canonical(policy: &Value, api_arn: &str) -> Value {
    fn walk(v: &Value, key: Option<&str>, in_condition: bool, api_arn: &str) -> Value {
        let list = key.is_some_and(|k| LISTS.contains(&k)) || in_condition;
        match v {
            Value::String(s) if list => Value::Array(vec![Value::String(expand(s, api_arn))]),
            Value::String(s) => Value::String(expand(s, api_arn)),
            Value::Array(xs) => {
                let mut out: Vec<Value> = xs.iter().map(|x| walk(x, None, false, api_arn)).collect();
                out.sort_by_key(|x| x.to_string());
                Value::Array(out)
            }
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| {
                        let v = match (k.as_str(), v) {
                            ("Principal" | "NotPrincipal", Value::String(s)) if s == "*" => {
                                serde_json::json!({"AWS": ["*"]})
                            }
                            // Condition operators map keys to one value or a list.
                            _ if key == Some("Condition") => walk(v, None, true, api_arn),
                            _ if in_condition => match v {
                                Value::Array(_) => walk(v, None, false, api_arn),
                                other => Value::Array(vec![walk(other, None, false, api_arn)]),
                            },
                            _ => walk(v, Some(k), false, api_arn),
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    fn expand(s: &str, api_arn: &str) -> String {
        match s.strip_prefix("execute-api:/") {
            Some(rest) => format!("{api_arn}/{rest}"),
            None => s.to_string(),
        }
    }
    let mut c = walk(policy, None, false, api_arn);
    if let Some(Value::Object(m)) = Some(&mut c)
        && let Some(st) = m.get_mut("Statement")
        && !st.is_array()
    {
        *st = Value::Array(vec![st.take()]);
    }
    c
}

/// Whether a policy lets anyone call without a condition: no policy, or an `Allow` of everyone
/// with no condition and no `Deny` that narrows it.
pub fn open_to_everyone(policy: Option<&Value>) -> bool {
    let Some(p) = policy else { return true };
    let statements: Vec<&Value> = match p.get("Statement") {
        Some(Value::Array(xs)) => xs.iter().collect(),
        Some(one) => vec![one],
        None => return true,
    };
    let everyone = |s: &Value| {
        s.get("Principal").is_some_and(|pr| {
            pr == "*" || pr.get("AWS").is_some_and(|a| a == "*" || a.as_array().is_some_and(|xs| xs.iter().any(|x| x == "*")))
        })
    };
    let unconditional = |s: &Value| s.get("Condition").is_none_or(|c| c.as_object().is_some_and(|o| o.is_empty()));
    let open_allow = statements.iter().any(|s| s.get("Effect") == Some(&Value::from("Allow")) && everyone(s) && unconditional(s));
    let any_deny = statements.iter().any(|s| s.get("Effect") == Some(&Value::from("Deny")));
    open_allow && !any_deny
}

// ---- Clean-up and tags (read by the planner's generic machinery) ------------------------------

/// A policy goes with its REST API.
pub(crate) use crate::planner::nothing_to_prune as prunable;
pub(crate) use crate::planner::nothing_first as before_delete;
pub(crate) use crate::planner::untagged as tag_op;
pub(crate) use crate::planner::not_releasable as untag_op;

// ---- Planning (the API stage) -----------------------------------------------------------------

/// The line the deployment's hash takes (the desired policy's canonical form), if any.
pub(crate) type Out<'a> = Option<String>;

/// The REST API's policy. Managed when the YAML writes one; on an API crosslink owns, a policy
/// that left the YAML is removed too (and, since that opens the API, held by the protection
/// guard like every other widening). An API referenced by id keeps a policy the YAML does not
/// name.
pub(crate) fn plan<'a>(p: &mut Planner<'a>, cx: &mut ApiCx<'a, '_>) -> Option<()> {
    let (gw, subject, account) = (cx.gw, cx.subject.clone(), cx.gw.account.as_str());
    let api = &gw.out.rest_api;
    let want = gw.gw.spec.api.resource_policy.as_ref();
    if want.is_none() && !api.owned {
        return Some(());
    }
    let partition = if gw.state.region.starts_with("cn-") {
        "aws-cn"
    } else if gw.state.region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    };
    let api_arn = format!(
        "arn:{partition}:execute-api:{}:{}:{}",
        gw.state.region,
        gw.state.account_id,
        api.id.known().unwrap_or("(new)")
    );
    // AWS answers the policy as a JSON string with `/` escaped; unreadable counts as different.
    let live_text = api.api.and_then(|a| a.policy.as_deref()).filter(|t| !t.is_empty());
    let live: Option<Value> = live_text.map(|t| serde_json::from_str(&t.replace("\\/", "/")).unwrap_or(Value::String(t.into())));
    let same = match (want, &live) {
        (Some(w), Some(l)) => canonical(w, &api_arn) == canonical(l, &api_arn),
        (None, None) => true,
        _ => false,
    };
    if let Some(l) = &live {
        let statements = l.get("Statement").and_then(Value::as_array).map_or(1, Vec::len);
        p.report(&subject).resources.insert("resourcePolicy".into(), format!("{statements} statement(s)"));
    }
    cx.out.resource_policy = want.map(|w| format!("policy {}", canonical(w, "execute-api")));
    if same {
        return Some(());
    }
    let text = want.map(Value::to_string).unwrap_or_default();
    let show = |v: Option<&Value>| v.map_or("(none)".to_string(), |v| v.to_string());
    let a = p.add(
        &subject,
        account,
        "REST API resource policy",
        Verb::Update,
        Reason::Drift { field: "policy".into(), live: show(live.as_ref()), desired: show(want) },
        Op::ResourcePolicy(ResourcePolicyOp::PutRestApiPolicy { rest_api_id: api.id.clone(), policy: text }),
        vec![api.action],
    );
    if open_to_everyone(want) && !open_to_everyone(live.as_ref()) {
        p.plan.weakening.insert(a, "REST API resource policy: widened to everyone".into());
    }
    cx.changes.push(a);
    Some(())
}
