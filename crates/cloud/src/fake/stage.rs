//! The in-memory AWS: Deployments to stages.

use crosslink_plan::kinds::StageOp;

use super::*;

pub(super) fn apply(w: &mut World, me: &str, op: &StageOp) -> Result<Outcome, CloudError> {
    use StageOp::*;
    match op {
        CreateDeployment { rest_api_id, stage, stage_tags, .. } => {
            let api = known(rest_api_id)?.to_string();
            let dep = w.short_id();
            let api = w.api(me, &api)?;
            if api.resources.iter().all(|r| r.methods.is_empty()) {
                return Err(err(
                    ErrorKind::Permanent,
                    "BadRequestException",
                    "The REST API doesn't contain any methods",
                ));
            }
            match api.stages.iter_mut().find(|s| &s.name == stage) {
                Some(s) => {
                    s.deployment_id = Some(dep.clone());
                    s.tags.extend(stage_tags.clone());
                }
                None => api.stages.push(Stage {
                    name: stage.clone(),
                    deployment_id: Some(dep.clone()),
                    tags: stage_tags.clone(),
                }),
            }
            created(dep)
        }
    }
}
