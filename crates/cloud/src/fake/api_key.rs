//! The in-memory AWS: API keys and their usage plans, as AWS documents them. AWS generates the
//! value (kept apart here: an observation never holds it); a key cannot join two usage plans
//! that share a stage (ConflictException; moto accepts it); deleting a key takes it out of its
//! plans.

use crosslink_plan::kinds::ApiKeyOp;

use super::*;

pub(super) fn apply(w: &mut World, me: &str, op: &ApiKeyOp) -> Result<Outcome, CloudError> {
    use ApiKeyOp::*;
    match op {
        CreateApiKey { name, enabled, tags, .. } => {
            let id = w.short_id();
            // 40 characters, as AWS makes them; not random, but never in any answer crosslink reads.
            let value = format!("{:0>40}", format!("secretkeyvalue{}", id));
            w.key_values.insert(id.clone(), value);
            let created_date = w.now;
            w.acct(me).api_keys.push(ApiKey { id: id.clone(), name: name.clone(), enabled: *enabled, created_date, tags: tags.clone() });
            created(id)
        }
        CreateUsagePlanKey { usage_plan_id, key_id, .. } => {
            let (plan_id, key) = (known(usage_plan_id)?.to_string(), known(key_id)?.to_string());
            if !w.acct(me).api_keys.iter().any(|k| k.id == key) {
                return Err(not_found("NotFoundException", &key));
            }
            let taken = super::usage_plan::stages_of_key(w, me, &key);
            let u = w.acct(me).usage_plans.iter_mut().find(|u| u.id == plan_id).ok_or_else(|| not_found("NotFoundException", &plan_id))?;
            if u.key_ids.contains(&key) {
                return Err(err(ErrorKind::Conflict, "ConflictException", format!("key {key} is in usage plan {plan_id} already")));
            }
            if let Some(((api, stage), other)) = u.api_stages.iter().find_map(|s| {
                taken.get(&(s.api_id.clone(), s.stage.clone())).map(|o| ((s.api_id.clone(), s.stage.clone()), o.clone()))
            }) {
                return Err(err(
                    ErrorKind::Conflict,
                    "ConflictException",
                    format!("API Key {key} is already associated with usage plan {other}, which has the stage {api}:{stage}"),
                ));
            }
            u.key_ids.push(key);
            done()
        }
        UpdateApiKey { id, patches, .. } => {
            let k = w.acct(me).api_keys.iter_mut().find(|k| &k.id == id).ok_or_else(|| not_found("NotFoundException", id))?;
            for p in patches {
                match (p.path.as_str(), p.value.as_str()) {
                    ("/enabled", "true") => k.enabled = true,
                    ("/enabled", "false") => k.enabled = false,
                    _ => {
                        return Err(err(ErrorKind::Permanent, "BadRequestException", format!("Invalid patch {} = {}", p.path, p.value)));
                    }
                }
            }
            done()
        }
        DeleteUsagePlanKey { usage_plan_id, key_id, .. } => {
            let u = w
                .acct(me)
                .usage_plans
                .iter_mut()
                .find(|u| &u.id == usage_plan_id)
                .ok_or_else(|| not_found("NotFoundException", usage_plan_id))?;
            let before = u.key_ids.len();
            u.key_ids.retain(|k| k != key_id);
            if u.key_ids.len() == before {
                return Err(not_found("NotFoundException", key_id));
            }
            done()
        }
        DeleteApiKey { id, .. } => {
            let a = w.acct(me);
            let before = a.api_keys.len();
            a.api_keys.retain(|k| &k.id != id);
            if a.api_keys.len() == before {
                return Err(not_found("NotFoundException", id));
            }
            for u in &mut a.usage_plans {
                u.key_ids.retain(|k| k != id);
            }
            done()
        }
    }
}
