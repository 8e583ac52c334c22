//! The in-memory AWS: REST APIs, each with its root resource.

use crosslink_plan::kinds::RestApiOp;

use super::*;

pub(super) fn apply(w: &mut World, me: &str, op: &RestApiOp) -> Result<Outcome, CloudError> {
    use RestApiOp::*;
    match op {
        CreateRestApi { name, tags } => {
            let id = w.short_id();
            let root = w.short_id();
            w.acct(me).rest_apis.push(RestApi {
                id: id.clone(),
                name: name.clone(),
                tags: tags.clone(),
                resources: vec![ApiResource {
                    id: root.clone(),
                    parent_id: None,
                    path: "/".into(),
                    methods: BTreeMap::new(),
                }],
                stages: vec![],
                authorizers: vec![],
                policy: None,
            });
            Ok(Outcome { root_resource_id: Some(root), ..Outcome::created(id) })
        }
        DeleteRestApi { id } => {
            let a = w.acct(me);
            let before = a.rest_apis.len();
            a.rest_apis.retain(|x| &x.id != id);
            if before == a.rest_apis.len() {
                return Err(not_found("NotFoundException", id));
            }
            done()
        }
        // TagResource with the REST API's ARN: tags merged.
        TagRestApi { id, tags } => {
            let x = w.acct(me).rest_apis.iter_mut().find(|x| &x.id == id).ok_or_else(|| not_found("NotFoundException", id))?;
            x.tags.extend(tags.clone());
            done()
        }
        UntagRestApi { id, keys } => {
            let x = w.acct(me).rest_apis.iter_mut().find(|x| &x.id == id).ok_or_else(|| not_found("NotFoundException", id))?;
            x.tags.retain(|k, _| !keys.contains(k));
            done()
        }
    }
}
