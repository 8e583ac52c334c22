//! The in-memory AWS: base path mappings, as AWS documents them: the domain, the REST API and
//! its stage must exist (NotFoundException, BadRequestException "Invalid stage identifier
//! specified"), and a base path is mapped once per domain (ConflictException).

use crosslink_plan::kinds::BasePathMappingOp;
use crosslink_plan::kinds::base_path_mapping::ROOT;
use crosslink_plan::op::PatchOp;

use super::*;

fn stage_exists(w: &mut World, me: &str, api: &str, stage: &str) -> bool {
    w.acct(me).rest_apis.iter().any(|a| a.id == api && a.stages.iter().any(|s| s.name == stage))
}

fn domain<'w>(w: &'w mut World, me: &str, name: &str) -> Result<&'w mut DomainName, CloudError> {
    w.acct(me).domain_names.iter_mut().find(|d| d.name == name).ok_or_else(|| not_found("NotFoundException", name))
}

pub(super) fn apply(w: &mut World, me: &str, op: &BasePathMappingOp) -> Result<Outcome, CloudError> {
    use BasePathMappingOp::*;
    let invalid_stage = |api: &str, stage: &str| {
        err(ErrorKind::Permanent, "BadRequestException", format!("Invalid stage identifier specified: {api}/{stage}"))
    };
    match op {
        CreateBasePathMapping { domain_name, base_path, rest_api_id, stage } => {
            let api = known(rest_api_id)?.to_string();
            if !stage_exists(w, me, &api, stage) {
                return Err(invalid_stage(&api, stage));
            }
            let d = domain(w, me, domain_name)?;
            let path = if base_path.is_empty() { ROOT.to_string() } else { base_path.clone() };
            if d.mappings.iter().any(|m| m.base_path == path) {
                return Err(err(ErrorKind::Conflict, "ConflictException", format!("Base path already exists for this domain name: {path}")));
            }
            d.mappings.push(BasePathMapping { base_path: path, rest_api_id: api, stage: Some(stage.clone()) });
            done()
        }
        UpdateBasePathMapping { domain_name, base_path, patches } => {
            let mut next = {
                let d = w.acct(me).domain_names.iter().find(|d| &d.name == domain_name);
                let d = d.ok_or_else(|| not_found("NotFoundException", domain_name))?;
                d.mappings.iter().find(|m| &m.base_path == base_path).cloned().ok_or_else(|| not_found("NotFoundException", base_path))?
            };
            for p in patches {
                match (p.op, p.path.as_str()) {
                    (PatchOp::Replace, "/restapiId") => next.rest_api_id = p.value.clone(),
                    (PatchOp::Replace, "/stage") => next.stage = Some(p.value.clone()),
                    _ => return Err(err(ErrorKind::Permanent, "BadRequestException", format!("Invalid patch path {}", p.path))),
                }
            }
            if !stage_exists(w, me, &next.rest_api_id, next.stage.as_deref().unwrap_or_default()) {
                return Err(invalid_stage(&next.rest_api_id, next.stage.as_deref().unwrap_or_default()));
            }
            let d = w.acct(me).domain_names.iter_mut().find(|d| &d.name == domain_name).expect("found above");
            let m = d.mappings.iter_mut().find(|m| &m.base_path == base_path).expect("found above");
            *m = next;
            done()
        }
        DeleteBasePathMapping { domain_name, base_path } => {
            let d = domain(w, me, domain_name)?;
            let before = d.mappings.len();
            d.mappings.retain(|m| &m.base_path != base_path);
            if d.mappings.len() == before {
                return Err(not_found("NotFoundException", base_path));
            }
            done()
        }
    }
}
