//! The in-memory AWS: usage plans, as AWS documents them. A stage joins a plan only if it
//! exists (BadRequestException "Invalid stage identifier specified"; moto accepts a missing
//! one), a patch path AWS does not know is refused, and a plan with stages cannot be deleted
//! (BadRequestException: remove them first).

use std::collections::BTreeMap;

use crosslink_desired::Throttle;
use crosslink_plan::kinds::UsagePlanOp;
use crosslink_plan::kinds::usage_plan::PlanStage;
use crosslink_plan::op::{Patch, PatchOp};

use super::*;

fn bad(m: impl Into<String>) -> CloudError {
    err(ErrorKind::Permanent, "BadRequestException", m)
}

fn live(t: &Throttle) -> LiveThrottle {
    LiveThrottle { rate_limit: f64::from(t.rate_limit), burst_limit: i64::from(t.burst_limit) }
}

/// A stage as the plan holds it, once AWS checked that it exists.
fn stage(w: &mut World, me: &str, s: &PlanStage) -> Result<ApiStage, CloudError> {
    let api_id = known(&s.api_id)?.to_string();
    let exists = w.acct(me).rest_apis.iter().any(|a| a.id == api_id && a.stages.iter().any(|x| x.name == s.stage));
    if !exists {
        return Err(bad(format!("Invalid stage identifier specified: {api_id}:{}", s.stage)));
    }
    Ok(ApiStage { api_id, stage: s.stage.clone(), throttle: s.throttle.iter().map(|(k, t)| (k.clone(), live(t))).collect() })
}

fn plan<'w>(w: &'w mut World, me: &str, id: &str) -> Result<&'w mut UsagePlan, CloudError> {
    w.acct(me).usage_plans.iter_mut().find(|u| u.id == id).ok_or_else(|| not_found("NotFoundException", id))
}

/// `~1payments~1{proxy+}/POST` -> `/payments/{proxy+}/POST`.
fn unescape(path: &str, method: &str) -> String {
    format!("{}/{method}", path.replace("~1", "/").replace("~0", "~"))
}

fn number<T: std::str::FromStr>(p: &Patch) -> Result<T, CloudError> {
    p.value.parse().map_err(|_| bad(format!("invalid value {} for {}", p.value, p.path)))
}

fn patch(u: &mut UsagePlan, p: &Patch) -> Result<(), CloudError> {
    let segs: Vec<&str> = p.path.trim_start_matches('/').split('/').collect();
    match (p.op, segs.as_slice()) {
        (PatchOp::Replace, ["description"]) => u.description = Some(p.value.clone()),
        (PatchOp::Replace, ["throttle", field]) => {
            let t = u.throttle.get_or_insert(LiveThrottle { rate_limit: 0.0, burst_limit: 0 });
            match *field {
                "rateLimit" => t.rate_limit = number(p)?,
                "burstLimit" => t.burst_limit = number(p)?,
                _ => return Err(bad(format!("Invalid patch path {}", p.path))),
            }
        }
        (PatchOp::Remove, ["throttle"]) => u.throttle = None,
        (PatchOp::Replace, ["quota", field]) => {
            let q = u.quota.get_or_insert(LiveQuota { limit: 0, period: "DAY".into(), offset: 0 });
            match *field {
                "limit" => q.limit = number(p)?,
                "offset" => q.offset = number(p)?,
                "period" if ["DAY", "WEEK", "MONTH"].contains(&p.value.as_str()) => q.period = p.value.clone(),
                _ => return Err(bad(format!("Invalid patch {} = {}", p.path, p.value))),
            }
        }
        (PatchOp::Remove, ["quota"]) => u.quota = None,
        (op, ["apiStages", stage_key, "throttle", path, method, rest @ ..]) => {
            let (api_id, stage) = stage_key.split_once(':').ok_or_else(|| bad(format!("Invalid patch path {}", p.path)))?;
            let s = u
                .api_stages
                .iter_mut()
                .find(|s| s.api_id == api_id && s.stage == stage)
                .ok_or_else(|| bad(format!("API stage {stage_key} is not in the usage plan")))?;
            let key = unescape(path, method);
            match (op, rest) {
                (PatchOp::Replace, [field]) => {
                    let t = s.throttle.entry(key).or_insert(LiveThrottle { rate_limit: 0.0, burst_limit: 0 });
                    match *field {
                        "rateLimit" => t.rate_limit = number(p)?,
                        "burstLimit" => t.burst_limit = number(p)?,
                        _ => return Err(bad(format!("Invalid patch path {}", p.path))),
                    }
                }
                (PatchOp::Remove, []) => {
                    s.throttle.remove(&key).ok_or_else(|| bad(format!("no throttle for {key}")))?;
                }
                _ => return Err(bad(format!("Invalid patch path {}", p.path))),
            }
        }
        _ => return Err(bad(format!("Invalid patch path {}", p.path))),
    }
    Ok(())
}

pub(super) fn apply(w: &mut World, me: &str, op: &UsagePlanOp) -> Result<Outcome, CloudError> {
    use UsagePlanOp::*;
    match op {
        CreateUsagePlan { name, description, throttle, quota, api_stages, tags } => {
            let stages = api_stages.iter().map(|s| stage(w, me, s)).collect::<Result<Vec<_>, _>>()?;
            let id = w.short_id();
            w.acct(me).usage_plans.push(UsagePlan {
                id: id.clone(),
                name: name.clone(),
                description: description.clone(),
                throttle: throttle.as_ref().map(live),
                quota: quota.map(|q| LiveQuota {
                    limit: q.limit.into(),
                    period: q.period.as_str().into(),
                    offset: q.offset.into(),
                }),
                api_stages: stages,
                key_ids: Vec::new(),
                tags: tags.clone(),
            });
            created(id)
        }
        UpdateUsagePlan { id, patches, .. } => {
            let u = plan(w, me, id)?;
            // All or nothing, as one PATCH request.
            let mut next = u.clone();
            for p in patches {
                patch(&mut next, p)?;
            }
            *u = next;
            done()
        }
        AddApiStage { usage_plan_id, stage: s } => {
            let id = known(usage_plan_id)?.to_string();
            let mut st = stage(w, me, s)?;
            let throttle = std::mem::take(&mut st.throttle);
            let u = plan(w, me, &id)?;
            if u.api_stages.iter().any(|x| x.api_id == st.api_id && x.stage == st.stage) {
                return Err(err(ErrorKind::Conflict, "ConflictException", "the stage is in the usage plan already"));
            }
            st.throttle = throttle;
            u.api_stages.push(st);
            done()
        }
        RemoveApiStage { usage_plan_id, api_id, stage } => {
            let u = plan(w, me, usage_plan_id)?;
            let before = u.api_stages.len();
            u.api_stages.retain(|s| !(&s.api_id == api_id && &s.stage == stage));
            if u.api_stages.len() == before {
                return Err(not_found("NotFoundException", &format!("{api_id}:{stage}")));
            }
            done()
        }
        DeleteUsagePlan { id, .. } => {
            let u = plan(w, me, id)?;
            if !u.api_stages.is_empty() {
                return Err(bad("Cannot delete Usage Plan while it has API stages: remove them first"));
            }
            w.acct(me).usage_plans.retain(|u| &u.id != id);
            done()
        }
    }
}

/// The stages of every usage plan that a key reaches, for the one-plan-per-stage rule.
pub(super) fn stages_of_key(w: &mut World, me: &str, key: &str) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for u in w.acct(me).usage_plans.iter().filter(|u| u.key_ids.iter().any(|k| k == key)) {
        for s in &u.api_stages {
            out.insert((s.api_id.clone(), s.stage.clone()), u.id.clone());
        }
    }
    out
}
