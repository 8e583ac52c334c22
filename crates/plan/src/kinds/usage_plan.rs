//! A consumer's API Gateway usage plan: its throttle and quota over the stages of its gateways,
//! with per-route throttles on each stage. Tagged like everything crosslink makes, owned by
//! `Consumer/<name>`; the plan follows the YAML entirely (a throttle or quota that leaves the
//! YAML is removed from the plan: the consumer then has the stage's limits).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crosslink_desired::{Quota, Throttle};

use super::KindOp;
use super::stage::method_setting_key;
use crate::model::{Reason, Subject, Verb};
use crate::observed::{AccountState, Tags};
use crate::op::{Op, Output, Patch, Ref, Service};
use crate::planner::{ConsumerCx, Planner, Prunable};

// ---- What is observed ------------------------------------------------------------------------

/// Its field of `AccountState` (`usage_plans`): the account's usage plans, each with its keys.
pub type Observed = Vec<UsagePlan>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UsagePlan {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<LiveThrottle>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<LiveQuota>,
    #[serde(default)]
    pub api_stages: Vec<ApiStage>,
    /// The ids of the API keys in the plan (GetUsagePlanKeys).
    #[serde(default)]
    pub key_ids: Vec<String>,
    pub tags: Tags,
}

/// A stage of a usage plan, with its per-method throttles keyed `/<resource path>/<METHOD>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiStage {
    pub api_id: String,
    pub stage: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub throttle: BTreeMap<String, LiveThrottle>,
}

/// A throttle as AWS reports it (the rate is a double).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LiveThrottle {
    pub rate_limit: f64,
    pub burst_limit: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LiveQuota {
    pub limit: i64,
    pub period: String,
    #[serde(default)]
    pub offset: i64,
}

impl LiveThrottle {
    fn is(&self, t: &Throttle) -> bool {
        (self.rate_limit - f64::from(t.rate_limit)).abs() < 1e-9 && self.burst_limit == i64::from(t.burst_limit)
    }
}

fn show_throttle(t: Option<&LiveThrottle>) -> String {
    t.map_or("(none)".into(), |t| format!("{}/s burst {}", t.rate_limit, t.burst_limit))
}

fn show_want(t: Option<&Throttle>) -> String {
    t.map_or("(none)".into(), |t| format!("{}/s burst {}", t.rate_limit, t.burst_limit))
}

fn show_quota(q: Option<&LiveQuota>) -> String {
    q.map_or("(none)".into(), |q| format!("{} per {} (offset {})", q.limit, q.period, q.offset))
}

fn show_want_quota(q: Option<&Quota>) -> String {
    q.map_or("(none)".into(), |q| format!("{} per {} (offset {})", q.limit, q.period.as_str(), q.offset))
}

// ---- Operations -------------------------------------------------------------------------------

/// A stage of a usage plan as crosslink makes it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanStage {
    pub api_id: Ref,
    pub stage: String,
    /// Per-method throttles, keyed `/<resource path>/<METHOD>`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub throttle: BTreeMap<String, Throttle>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum UsagePlanOp {
    CreateUsagePlan {
        name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        throttle: Option<Throttle>,
        #[serde(skip_serializing_if = "Option::is_none")]
        quota: Option<Quota>,
        api_stages: Vec<PlanStage>,
        tags: Tags,
    },
    /// UpdateUsagePlan of the plan's own settings and the per-method throttles of its stages.
    UpdateUsagePlan { id: String, name: String, patches: Vec<Patch> },
    /// UpdateUsagePlan `add /apiStages` (then the stage's per-method throttles).
    AddApiStage { usage_plan_id: Ref, stage: PlanStage },
    /// UpdateUsagePlan `remove /apiStages`: the plan's keys no longer reach the stage.
    RemoveApiStage { usage_plan_id: String, api_id: String, stage: String },
    /// AWS refuses to delete a usage plan that still has stages: they are removed first.
    DeleteUsagePlan { id: String, name: String },
}

impl KindOp for UsagePlanOp {
    fn service(&self) -> Service {
        Service::ApiGateway
    }

    fn name(&self) -> &'static str {
        match self {
            Self::CreateUsagePlan { .. } => "CreateUsagePlan",
            Self::UpdateUsagePlan { .. } | Self::AddApiStage { .. } | Self::RemoveApiStage { .. } => "UpdateUsagePlan",
            Self::DeleteUsagePlan { .. } => "DeleteUsagePlan",
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::CreateUsagePlan { name, .. } => format!("usage plan {name}"),
            Self::UpdateUsagePlan { id, .. } | Self::DeleteUsagePlan { id, .. } => id.clone(),
            Self::AddApiStage { usage_plan_id, .. } => usage_plan_id.to_string(),
            Self::RemoveApiStage { usage_plan_id, .. } => usage_plan_id.clone(),
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::CreateUsagePlan { api_stages, .. } => api_stages.iter().map(|s| &s.api_id).collect(),
            Self::AddApiStage { usage_plan_id, stage } => vec![usage_plan_id, &stage.api_id],
            Self::UpdateUsagePlan { .. } | Self::RemoveApiStage { .. } | Self::DeleteUsagePlan { .. } => vec![],
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::CreateUsagePlan { api_stages, .. } => api_stages.iter_mut().map(|s| &mut s.api_id).collect(),
            Self::AddApiStage { usage_plan_id, stage } => vec![usage_plan_id, &mut stage.api_id],
            Self::UpdateUsagePlan { .. } | Self::RemoveApiStage { .. } | Self::DeleteUsagePlan { .. } => vec![],
        }
    }

    fn lets_chain(&self, state: Option<&str>) -> bool {
        let _ = state;
        true
    }

    fn on_new_resource(&self) -> bool {
        matches!(self, Self::AddApiStage { usage_plan_id: Ref::Pending(_), .. })
    }

    fn is_delete(&self) -> bool {
        matches!(self, Self::DeleteUsagePlan { .. })
    }
}

/// A usage plan's per-method throttle key (`/payments/{proxy+}/POST`) as a patch path's
/// segments (`~1payments~1{proxy+}/POST`).
pub fn throttle_path(key: &str) -> String {
    let (path, method) = key.rsplit_once('/').unwrap_or((key, "*"));
    method_setting_key(path, method)
}

/// The patches that set a stage's per-method throttles (after `add /apiStages`, or drift).
pub fn stage_throttle_patches(api_id: &str, stage: &str, key: &str, t: &Throttle) -> [Patch; 2] {
    let base = format!("/apiStages/{api_id}:{stage}/throttle/{}", throttle_path(key));
    [
        Patch::replace(format!("{base}/rateLimit"), f64::from(t.rate_limit).to_string()),
        Patch::replace(format!("{base}/burstLimit"), t.burst_limit.to_string()),
    ]
}

// ---- Clean-up and tags (read by the planner's generic machinery) ------------------------------

pub(crate) fn prunable(st: &AccountState) -> Vec<Prunable<'_>> {
    st.usage_plans
        .iter()
        .map(|u| {
            let delete = UsagePlanOp::DeleteUsagePlan { id: u.id.clone(), name: u.name.clone() }.into();
            Prunable::plain(&u.tags, &u.id, format!("usage plan {} ({})", u.name, u.id), delete)
        })
        .collect()
}

/// A usage plan's stages are removed before it is deleted (AWS refuses otherwise).
pub(crate) fn before_delete<'a>(
    p: &mut Planner<'a>,
    subject: &Subject,
    account: &str,
    st: &'a AccountState,
    c: &Prunable<'a>,
) -> Option<Vec<Option<usize>>> {
    let u = st.usage_plans.iter().find(|u| u.id == c.id)?;
    Some(remove_stages(p, subject, account, u, Reason::NoLongerDesired))
}

fn remove_stages(p: &mut Planner<'_>, subject: &Subject, account: &str, u: &UsagePlan, reason: Reason) -> Vec<Option<usize>> {
    u.api_stages
        .iter()
        .map(|s| {
            Some(p.add(
                subject,
                account,
                format!("usage plan {} stage {}:{}", u.name, s.api_id, s.stage),
                Verb::Update,
                reason.clone(),
                Op::UsagePlan(UsagePlanOp::RemoveApiStage {
                    usage_plan_id: u.id.clone(),
                    api_id: s.api_id.clone(),
                    stage: s.stage.clone(),
                }),
                vec![],
            ))
        })
        .collect()
}

pub(crate) use crate::planner::untagged as tag_op;
pub(crate) use crate::planner::not_releasable as untag_op;

// ---- Planning (the consumer stage) ------------------------------------------------------------

/// What the consumer's usage plan hands on to its keys: its id (pending while this plan makes
/// it), the action making it, and the plan as observed.
#[derive(Default)]
pub(crate) struct Out<'a> {
    pub(crate) made: crate::planner::Made,
    pub(crate) live: Option<&'a UsagePlan>,
}

/// The name of a consumer's usage plan.
pub fn usage_plan_name(consumer: &str) -> String {
    format!("crosslink-{consumer}")
}

/// The consumer's usage plan: made with its stages when missing; otherwise its throttle, quota,
/// description, stages and per-route throttles follow the YAML. Duplicates (a pass cut off
/// after a create) are deleted.
pub(crate) fn plan<'a>(p: &mut Planner<'a>, cx: &mut ConsumerCx<'a>) -> Option<()> {
    let (subject, account, spec) = (cx.subject.clone(), cx.account.clone(), &cx.consumer.spec);
    let name = usage_plan_name(&cx.consumer.metadata.name);
    let mine: Vec<&'a UsagePlan> = cx.state.usage_plans.iter().filter(|u| p.owned_by(&u.tags, &cx.owner)).collect();
    for dup in mine.iter().skip(1) {
        p.claimed.insert(dup.id.clone());
        let reason = Reason::Replaced { why: format!("duplicate usage plan (the consumer's is {})", mine[0].id) };
        let deps = remove_stages(p, &subject, &account, dup, reason.clone());
        p.add(
            &subject,
            &account,
            format!("usage plan {} ({})", dup.name, dup.id),
            Verb::Delete,
            reason,
            Op::UsagePlan(UsagePlanOp::DeleteUsagePlan { id: dup.id.clone(), name: dup.name.clone() }),
            deps,
        );
    }
    let Some(live) = mine.first().copied() else {
        let stages: Vec<_> = cx.stages.iter().filter(|s| s.ready).collect();
        let deps = stages.iter().map(|s| s.action).collect();
        let a = p.add(
            &subject,
            &account,
            format!("usage plan {name}"),
            Verb::Create,
            Reason::Missing,
            Op::UsagePlan(UsagePlanOp::CreateUsagePlan {
                name: name.clone(),
                description: spec.description.clone(),
                throttle: spec.throttling,
                quota: spec.quota,
                api_stages: stages
                    .iter()
                    .map(|s| PlanStage { api_id: s.api_id.clone(), stage: s.stage.clone(), throttle: s.throttle.clone() })
                    .collect(),
                tags: cx.want_tags.clone(),
            }),
            deps,
        );
        cx.out.usage_plan.made = crate::planner::Made { id: Ref::created(format!("usage plan {name}"), a, Output::Id), action: Some(a) };
        return Some(());
    };
    p.claimed.insert(live.id.clone());
    p.report(&subject).resources.insert("usagePlan".into(), live.id.clone());
    cx.out.usage_plan = Out { made: crate::planner::Made { id: Ref::Known(live.id.clone()), action: None }, live: Some(live) };

    let mut patches = Vec::new();
    let mut first: Option<Reason> = None;
    let note = |first: &mut Option<Reason>, field: String, l: String, d: String| {
        first.get_or_insert(Reason::Drift { field, live: l, desired: d });
    };
    if spec.description.is_some() && live.description != spec.description {
        note(&mut first, "description".into(), live.description.clone().unwrap_or_default(), spec.description.clone().unwrap_or_default());
        patches.push(Patch::replace("/description", spec.description.clone().unwrap_or_default()));
    }
    match (&spec.throttling, &live.throttle) {
        (Some(t), l) if !l.is_some_and(|l| l.is(t)) => {
            note(&mut first, "throttling".into(), show_throttle(l.as_ref()), show_want(Some(t)));
            patches.push(Patch::replace("/throttle/rateLimit", f64::from(t.rate_limit).to_string()));
            patches.push(Patch::replace("/throttle/burstLimit", t.burst_limit.to_string()));
        }
        (None, Some(l)) => {
            note(&mut first, "throttling".into(), show_throttle(Some(l)), "(none)".into());
            patches.push(Patch::remove("/throttle"));
        }
        _ => {}
    }
    let want_quota = spec.quota.map(|q| LiveQuota { limit: q.limit.into(), period: q.period.as_str().into(), offset: q.offset.into() });
    match (&want_quota, &live.quota) {
        (Some(q), l) if l.as_ref() != Some(q) => {
            note(&mut first, "quota".into(), show_quota(l.as_ref()), show_want_quota(spec.quota.as_ref()));
            patches.push(Patch::replace("/quota/limit", q.limit.to_string()));
            patches.push(Patch::replace("/quota/period", q.period.clone()));
            patches.push(Patch::replace("/quota/offset", q.offset.to_string()));
        }
        (None, Some(l)) => {
            note(&mut first, "quota".into(), show_quota(Some(l)), "(none)".into());
            patches.push(Patch::remove("/quota"));
        }
        _ => {}
    }
    // Stages: per-method throttles of those in the plan; the missing ones added.
    for s in &cx.stages {
        let found = s.api_id.known().and_then(|id| live.api_stages.iter().find(|l| l.api_id == id && l.stage == s.stage));
        match found {
            Some(l) => {
                for (key, t) in &s.throttle {
                    let lt = l.throttle.get(key);
                    if !lt.is_some_and(|lt| lt.is(t)) {
                        note(&mut first, format!("throttling of {key} on {}", s.gateway), show_throttle(lt), show_want(Some(t)));
                        patches.extend(stage_throttle_patches(&l.api_id, &l.stage, key, t));
                    }
                }
                for (key, lt) in l.throttle.iter().filter(|(k, _)| !s.throttle.contains_key(*k)) {
                    note(&mut first, format!("throttling of {key} on {}", s.gateway), show_throttle(Some(lt)), "(none)".into());
                    patches.push(Patch::remove(format!("/apiStages/{}:{}/throttle/{}", l.api_id, l.stage, throttle_path(key))));
                }
            }
            None if s.ready => {
                p.add(
                    &subject,
                    &account,
                    format!("usage plan {name} stage {} ({})", s.stage, s.gateway),
                    Verb::Update,
                    Reason::Drift { field: format!("stages ({})", s.gateway), live: "(absent)".into(), desired: s.stage.clone() },
                    Op::UsagePlan(UsagePlanOp::AddApiStage {
                        usage_plan_id: Ref::Known(live.id.clone()),
                        stage: PlanStage { api_id: s.api_id.clone(), stage: s.stage.clone(), throttle: s.throttle.clone() },
                    }),
                    vec![s.action],
                );
            }
            None => {}
        }
    }
    // Stages the YAML no longer names, once every gateway of the consumer is known (a stage of
    // a gateway that could not be planned is kept: its API id is not known).
    if cx.all_stages_known {
        for l in &live.api_stages {
            let wanted = cx.stages.iter().any(|s| s.api_id.known() == Some(l.api_id.as_str()) && s.stage == l.stage);
            if !wanted {
                p.add(
                    &subject,
                    &account,
                    format!("usage plan {name} stage {}:{}", l.api_id, l.stage),
                    Verb::Update,
                    Reason::Drift { field: "stages".into(), live: format!("{}:{}", l.api_id, l.stage), desired: "(absent)".into() },
                    Op::UsagePlan(UsagePlanOp::RemoveApiStage {
                        usage_plan_id: live.id.clone(),
                        api_id: l.api_id.clone(),
                        stage: l.stage.clone(),
                    }),
                    vec![],
                );
            }
        }
    }
    if let Some(reason) = first {
        p.add(
            &subject,
            &account,
            format!("usage plan {} ({})", live.name, live.id),
            Verb::Update,
            reason,
            Op::UsagePlan(UsagePlanOp::UpdateUsagePlan { id: live.id.clone(), name: live.name.clone(), patches }),
            vec![],
        );
    }
    Some(())
}
