//! The in-memory AWS: REST API resources.

use crosslink_plan::kinds::ApiResourceOp;

use super::*;

pub(super) fn apply(w: &mut World, me: &str, op: &ApiResourceOp) -> Result<Outcome, CloudError> {
    use ApiResourceOp::*;
    match op {
        CreateResource { rest_api_id, parent_id, path_part, .. } => {
            let (api, parent) = (known(rest_api_id)?.to_string(), known(parent_id)?.to_string());
            let id = w.short_id();
            let api = w.api(me, &api)?;
            let parent_path = api
                .resources
                .iter()
                .find(|r| r.id == parent)
                .map(|r| r.path.clone())
                .ok_or_else(|| not_found("NotFoundException", &parent))?;
            let path =
                if parent_path == "/" { format!("/{path_part}") } else { format!("{parent_path}/{path_part}") };
            if api.resources.iter().any(|r| r.path == path) {
                return Err(err(ErrorKind::Conflict, "ConflictException", format!("{path} exists")));
            }
            api.resources.push(ApiResource {
                id: id.clone(),
                parent_id: Some(parent),
                path,
                methods: BTreeMap::new(),
            });
            created(id)
        }
        DeleteResource { rest_api_id, resource_id, .. } => {
            let api = w.api(me, rest_api_id)?;
            let path = api
                .resources
                .iter()
                .find(|r| &r.id == resource_id)
                .map(|r| r.path.clone())
                .ok_or_else(|| not_found("NotFoundException", resource_id))?;
            api.resources.retain(|r| r.path != path && !r.path.starts_with(&format!("{path}/")));
            done()
        }
    }
}
