//! A consumer's API keys and their membership of its usage plan. AWS generates each key's value;
//! crosslink never asks for it (keys are read without `includeValues`), so no value can reach a
//! plan, a log, `/status` or a metric: only key ids do.
//!
//! Rotation: the key of the desired `generation` is the consumer's key. Raising the generation
//! makes a new key and adds it to the usage plan; the keys of other generations keep working
//! for `overlapHours` after the new key was made (measured on AWS's `createdDate` against the
//! observation's time), then leave the plan and are deleted.

use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::KindOp;
use crate::model::{Reason, Verb};
use crate::observed::{AccountState, Tags};
use crate::op::{Op, Output, Patch, Ref, Service};
use crate::planner::{ConsumerCx, Planner, Prunable};
use crate::tags::KEY_GENERATION;

// ---- What is observed ------------------------------------------------------------------------

/// Its field of `AccountState` (`api_keys`): the account's API keys, without their values.
pub type Observed = Vec<ApiKey>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub enabled: bool,
    /// When AWS made it, in seconds since the Unix epoch.
    pub created_date: i64,
    pub tags: Tags,
}

impl ApiKey {
    /// Its generation (tag), if crosslink wrote one.
    pub fn generation(&self) -> Option<u32> {
        self.tags.get(KEY_GENERATION).and_then(|g| g.parse().ok())
    }
}

/// A time in seconds since the epoch, as RFC 3339 (UTC).
pub fn rfc3339(secs: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

// ---- Operations -------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum ApiKeyOp {
    /// CreateApiKey: AWS generates the value (never read back, never shown).
    CreateApiKey { name: String, description: String, enabled: bool, tags: Tags },
    /// CreateUsagePlanKey: the key reaches the plan's stages.
    CreateUsagePlanKey { usage_plan_id: Ref, key_id: Ref, key_name: String },
    /// UpdateApiKey (`/enabled`).
    UpdateApiKey { id: String, name: String, patches: Vec<Patch> },
    /// DeleteUsagePlanKey: the key no longer reaches the plan's stages.
    DeleteUsagePlanKey { usage_plan_id: String, key_id: String, key_name: String },
    DeleteApiKey { id: String, name: String },
}

impl KindOp for ApiKeyOp {
    fn service(&self) -> Service {
        Service::ApiGateway
    }

    fn name(&self) -> &'static str {
        match self {
            Self::CreateApiKey { .. } => "CreateApiKey",
            Self::CreateUsagePlanKey { .. } => "CreateUsagePlanKey",
            Self::UpdateApiKey { .. } => "UpdateApiKey",
            Self::DeleteUsagePlanKey { .. } => "DeleteUsagePlanKey",
            Self::DeleteApiKey { .. } => "DeleteApiKey",
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::CreateApiKey { name, .. } => format!("API key {name}"),
            Self::CreateUsagePlanKey { usage_plan_id, key_id, .. } => format!("{usage_plan_id} key {key_id}"),
            Self::DeleteUsagePlanKey { usage_plan_id, key_id, .. } => format!("{usage_plan_id} key {key_id}"),
            Self::UpdateApiKey { id, .. } | Self::DeleteApiKey { id, .. } => id.clone(),
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::CreateUsagePlanKey { usage_plan_id, key_id, .. } => vec![usage_plan_id, key_id],
            _ => vec![],
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::CreateUsagePlanKey { usage_plan_id, key_id, .. } => vec![usage_plan_id, key_id],
            _ => vec![],
        }
    }

    fn lets_chain(&self, state: Option<&str>) -> bool {
        let _ = state;
        true
    }

    fn on_new_resource(&self) -> bool {
        matches!(self, Self::CreateUsagePlanKey { key_id: Ref::Pending(_), .. })
    }

    fn is_delete(&self) -> bool {
        matches!(self, Self::DeleteApiKey { .. })
    }
}

// ---- Clean-up and tags (read by the planner's generic machinery) ------------------------------

pub(crate) fn prunable(st: &AccountState) -> Vec<Prunable<'_>> {
    st.api_keys
        .iter()
        .map(|k| {
            let delete = ApiKeyOp::DeleteApiKey { id: k.id.clone(), name: k.name.clone() }.into();
            Prunable::plain(&k.tags, &k.id, format!("API key {} ({})", k.name, k.id), delete)
        })
        .collect()
}

pub(crate) use crate::planner::nothing_first as before_delete;
pub(crate) use crate::planner::untagged as tag_op;
pub(crate) use crate::planner::not_releasable as untag_op;

// ---- Planning (the consumer stage) ------------------------------------------------------------

pub(crate) type Out<'a> = ();

/// The name of a consumer's key of one generation.
pub fn api_key_name(consumer: &str, generation: u32) -> String {
    format!("crosslink-{consumer}-g{generation}")
}

/// The consumer's key of the desired generation, in its usage plan, enabled as the YAML says;
/// the keys of other generations kept through the overlap, then removed.
pub(crate) fn plan<'a>(p: &mut Planner<'a>, cx: &mut ConsumerCx<'a>) -> Option<()> {
    let (subject, account) = (cx.subject.clone(), cx.account.clone());
    let consumer = &cx.consumer.metadata.name;
    let want = cx.consumer.spec.api_key;
    let plan = &cx.out.usage_plan;
    let in_plan = |id: &str| plan.live.is_some_and(|u| u.key_ids.iter().any(|k| k == id));
    let mut mine: Vec<&'a ApiKey> = cx.state.api_keys.iter().filter(|k| p.owned_by(&k.tags, &cx.owner)).collect();
    mine.sort_by_key(|k| (k.generation(), k.created_date, k.id.clone()));
    for k in &mine {
        p.claimed.insert(k.id.clone());
    }
    let current: Vec<&&ApiKey> = mine.iter().filter(|k| k.generation() == Some(want.generation)).collect();
    let name = api_key_name(consumer, want.generation);
    let (key_id, made_at, create) = match current.first() {
        Some(k) => (Ref::Known(k.id.clone()), Some(k.created_date), None),
        None => {
            let mut tags = cx.want_tags.clone();
            tags.insert(KEY_GENERATION.into(), want.generation.to_string());
            let reason = match mine.last() {
                Some(prev) => Reason::Replaced {
                    why: format!(
                        "apiKey.generation is {}: the key is rotated (generation {} stays for {} h)",
                        want.generation,
                        prev.generation().map_or("?".into(), |g| g.to_string()),
                        want.overlap_hours
                    ),
                },
                None => Reason::Missing,
            };
            let a = p.add(
                &subject,
                &account,
                format!("API key {name}"),
                Verb::Create,
                reason,
                Op::ApiKey(ApiKeyOp::CreateApiKey {
                    name: name.clone(),
                    description: format!("{consumer}, generation {} (crosslink)", want.generation),
                    enabled: want.enabled,
                    tags,
                }),
                vec![],
            );
            (Ref::created(format!("API key {name}"), a, Output::Id), None, Some(a))
        }
    };
    if let Some(id) = key_id.known() {
        p.report(&subject).resources.insert("apiKey".into(), id.to_string());
    }
    if !key_id.known().is_some_and(in_plan) {
        let deps = vec![plan.made.action, create];
        p.add(
            &subject,
            &account,
            format!("usage plan key {name}"),
            Verb::Create,
            if create.is_some() { Reason::FollowsChanges { why: "a new key joins the usage plan".into() } } else { Reason::Missing },
            Op::ApiKey(ApiKeyOp::CreateUsagePlanKey {
                usage_plan_id: plan.made.id.clone(),
                key_id: key_id.clone(),
                key_name: name.clone(),
            }),
            deps,
        );
    }
    // Two keys of the current generation (a pass cut off after a create): the later ones go.
    let retire_dups = current.iter().skip(1).map(|k| (**k, Reason::Replaced { why: format!("duplicate key of generation {}", want.generation) }));
    // The keys of other generations: kept through the overlap after the current key was made.
    let now = cx.state.observed_at;
    let overlap = i64::from(want.overlap_hours) * 3600;
    let mut retire: Vec<(&ApiKey, Reason)> = retire_dups.collect();
    for k in mine.iter().filter(|k| k.generation() != Some(want.generation)) {
        let until = made_at.map(|m| m + overlap);
        match (until, now) {
            (Some(until), Some(now)) if now >= until => retire.push((
                k,
                Reason::Replaced {
                    why: format!(
                        "rotated to generation {}; the {} h overlap ended at {}",
                        want.generation,
                        want.overlap_hours,
                        rfc3339(until)
                    ),
                },
            )),
            (Some(until), _) => p.report(&subject).warnings.push(format!(
                "API key {} ({}) of generation {} still works until {} (rotation overlap), then is deleted",
                k.name,
                k.id,
                k.generation().map_or("?".into(), |g| g.to_string()),
                rfc3339(until)
            )),
            (None, _) => p.report(&subject).warnings.push(format!(
                "API key {} ({}) keeps working for {} h once the new key is made (rotation overlap)",
                k.name, k.id, want.overlap_hours
            )),
        }
    }
    let retired: Vec<&str> = retire.iter().map(|(k, _)| k.id.as_str()).collect();
    for (k, reason) in retire {
        let mut deps = Vec::new();
        if let Some(u) = plan.live.filter(|_| in_plan(&k.id)) {
            deps.push(Some(p.add(
                &subject,
                &account,
                format!("usage plan key {}", k.name),
                Verb::Delete,
                reason.clone(),
                Op::ApiKey(ApiKeyOp::DeleteUsagePlanKey {
                    usage_plan_id: u.id.clone(),
                    key_id: k.id.clone(),
                    key_name: k.name.clone(),
                }),
                vec![],
            )));
        }
        p.add(
            &subject,
            &account,
            format!("API key {} ({})", k.name, k.id),
            Verb::Delete,
            reason,
            Op::ApiKey(ApiKeyOp::DeleteApiKey { id: k.id.clone(), name: k.name.clone() }),
            deps,
        );
    }
    // Enabled as the YAML says (a suspended consumer's keys are all disabled).
    for k in mine.iter().filter(|k| !retired.contains(&k.id.as_str()) && k.enabled != want.enabled) {
        p.add(
            &subject,
            &account,
            format!("API key {} ({})", k.name, k.id),
            Verb::Update,
            Reason::Drift { field: "apiKey.enabled".into(), live: k.enabled.to_string(), desired: want.enabled.to_string() },
            Op::ApiKey(ApiKeyOp::UpdateApiKey {
                id: k.id.clone(),
                name: k.name.clone(),
                patches: vec![Patch::replace("/enabled", want.enabled.to_string())],
            }),
            vec![],
        );
    }
    Some(())
}
