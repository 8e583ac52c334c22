//! The REST API resources (paths) of a link's routes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use std::collections::{BTreeSet, HashSet};
use crate::kinds::method;
use crate::model::{Reason, Verb};
use crate::op::{Op, Output};
use crate::planner::{ApiCx, Planner};
use super::KindOp;
use crate::kinds::method::ApiMethod;
use crate::op::{Ref, Service};

// ---- What is observed ------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiResource {
    pub id: String,
    pub parent_id: Option<String>,
    pub path: String,
    pub methods: BTreeMap<String, ApiMethod>,
}

// ---- Operations -------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum ApiResourceOp {
    CreateResource {
        rest_api_id: Ref,
        parent_id: Ref,
        path_part: String,
        /// The full path, for people.
        path: String,
    },
    DeleteResource {
        rest_api_id: String,
        resource_id: String,
        path: String,
    },
}

impl KindOp for ApiResourceOp {
    fn service(&self) -> Service {
        Service::ApiGateway
    }

    fn name(&self) -> &'static str {
        match self {
            Self::CreateResource { .. } => "CreateResource",
            Self::DeleteResource { .. } => "DeleteResource",
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::CreateResource { rest_api_id, path, .. } => format!("{rest_api_id}{path}"),
            Self::DeleteResource { rest_api_id, path, .. } => format!("{rest_api_id}{path}"),
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::CreateResource { rest_api_id, parent_id, .. } => vec![rest_api_id, parent_id],
            Self::DeleteResource { .. } => vec![],
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::CreateResource { rest_api_id, parent_id, .. } => vec![rest_api_id, parent_id],
            Self::DeleteResource { .. } => vec![],
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
        matches!(self, Self::DeleteResource { .. })
    }
}

// ---- Planning: names and comparisons ----------------------------------------------------------

/// The parent of an API resource's path (`None` for the root).
pub(crate) fn parent_path(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

/// The paths whose subtree holds one of `kept`: the kept paths and their ancestors, the root
/// only when it is kept itself (a path `p` for which some kept `k` is `p` or starts with `p/`).
/// Built once per API: a scan of the kept paths per resource was quadratic in an API's size.
pub(crate) fn kept_subtrees<'a>(kept: impl IntoIterator<Item = &'a str>) -> std::collections::HashSet<&'a str> {
    let mut out = std::collections::HashSet::new();
    for k in kept {
        out.insert(k);
        let mut cur = parent_path(k);
        while let Some(p) = cur.filter(|p| *p != "/") {
            if !out.insert(p) {
                break;
            }
            cur = parent_path(p);
        }
    }
    out
}


// ---- Clean-up and tags (read by the planner's generic machinery) ------------------------------

/// API resources are removed with their REST API, or pruned by the API's planning.
pub(crate) use crate::planner::nothing_to_prune as prunable;
pub(crate) use crate::planner::nothing_first as before_delete;
pub(crate) use crate::planner::untagged as tag_op;
pub(crate) use crate::planner::not_releasable as untag_op;

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    /// The set answers exactly what the scan it replaced answered, on random trees of paths.
    #[test]
    fn kept_subtrees_is_the_scan_it_replaced() {
        let mut rng = StdRng::seed_from_u64(13);
        let parts = ["a", "b", "ab", "{proxy+}", "v1"];
        for _ in 0..300 {
            let mut paths: Vec<String> = vec!["/".into()];
            for _ in 0..rng.random_range(1..12) {
                let depth = rng.random_range(1..4);
                let p: String = (0..depth).map(|_| format!("/{}", parts[rng.random_range(0..parts.len())])).collect();
                paths.push(p);
            }
            let keep: Vec<&str> = paths.iter().map(String::as_str).filter(|_| rng.random_bool(0.4)).collect();
            let set = kept_subtrees(keep.iter().copied());
            for p in &paths {
                let scan = keep.iter().any(|k| *k == p.as_str() || k.starts_with(&format!("{p}/")));
                assert_eq!(set.contains(p.as_str()), scan, "{p} with kept {keep:?}");
            }
        }
    }
}

// ---- Planning (the API stage) -----------------------------------------------------------------

/// What the API's resources hand to its methods: each desired path's resource id (pending while
/// this plan creates it) and the action creating it; and the paths whose subtree is kept.
#[derive(Default)]
pub(crate) struct Planned<'a> {
    pub(crate) ids: BTreeMap<String, (Ref, Option<usize>)>,
    pub(crate) kept: HashSet<&'a str>,
}

pub(crate) type Out<'a> = Planned<'a>;

/// The API's resources: every desired path created under its parent (parents first); a
/// resource no link wants any more deleted after its children, unless it is kept (desired,
/// frozen with a blocked link, the root, holding what is not crosslink's in an API it does not
/// own, or holding a retained link's methods, and every ancestor of those); of two resources
/// for one path, the one not in use.
pub(crate) fn plan<'a>(p: &mut Planner<'a>, cx: &mut ApiCx<'a, '_>) -> Option<()> {
    let (gw, subject, account) = (cx.gw, &cx.subject, cx.gw.account.as_str());
    let api = &gw.out.rest_api;
    let out = &mut cx.out.api_resource;
    let root = match (cx.by_path.get("/"), api.action) {
        (Some(r), _) => Ref::Known(r.id.clone()),
        (None, Some(a)) => Ref::created("/", a, Output::RootResourceId),
        (None, None) => Ref::Pending("/".into()),
    };
    out.ids.insert("/".into(), (root, api.action));
    // BTreeMap order puts every parent before its children.
    for path in cx.want.keys() {
        let parent = parent_path(path).unwrap_or("/");
        let (parent_ref, parent_action) = out.ids.get(parent).cloned().unwrap_or((Ref::Pending(parent.into()), None));
        let made = match cx.by_path.get(path.as_str()) {
            Some(r) => (Ref::Known(r.id.clone()), None),
            None => {
                let part = path.rsplit('/').next().unwrap_or_default().to_string();
                let a = p.add(
                    subject,
                    account,
                    format!("API resource {path}"),
                    Verb::Create,
                    Reason::Missing,
                    Op::ApiResource(ApiResourceOp::CreateResource {
                        rest_api_id: api.id.clone(),
                        parent_id: parent_ref,
                        path_part: part,
                        path: path.clone(),
                    }),
                    vec![parent_action, api.action],
                );
                cx.changes.push(a);
                (Ref::created(format!("API resource {path}"), a, Output::Id), Some(a))
            }
        };
        out.ids.insert(path.clone(), made);
    }

    // Undesired resources: only crosslink's, never retained ones.
    let mut keep: BTreeSet<&'a str> = BTreeSet::new();
    for r in cx.live {
        let desired = cx.want.contains_key(&r.path) || cx.frozen.contains(&r.path) || r.path == "/";
        let foreign = if api.owned {
            false
        } else {
            r.methods.is_empty() || r.methods.values().any(|m| !method::ours(gw, m))
        };
        if desired || foreign || r.methods.values().any(|m| method::retained(gw, &cx.retained_ports, m)) {
            keep.insert(&r.path);
        }
    }
    out.kept = kept_subtrees(keep.iter().copied());
    // An API adopted on this pass is handled as referenced (nothing deleted); what desired state
    // does not name goes on a later pass, once the API is crosslink's: said now.
    if api.adopting {
        for r in cx.live.iter().filter(|r| !cx.want.contains_key(&r.path) && r.path != "/" && !cx.frozen.contains(&r.path)) {
            if r.methods.values().any(|m| method::retained(gw, &cx.retained_ports, m)) {
                continue;
            }
            p.report(subject).warnings.push(format!(
                "API resource {} is not in the desired state: kept on this adopting pass, deleted on a later one",
                r.path
            ));
        }
    }
    if let Some(api_id) = api.id.known() {
        // Deepest first: each resource is deleted after its children (moto does not cascade
        // DeleteResource, and AWS does not mind).
        let mut by_depth: Vec<&ApiResource> = cx.live.iter().collect();
        by_depth.sort_by_key(|r| std::cmp::Reverse(r.path.matches('/').count()));
        let mut deleted: BTreeMap<&str, usize> = BTreeMap::new();
        for r in by_depth {
            if out.kept.contains(r.path.as_str()) {
                continue; // its undesired methods are pruned by `method::plan`
            }
            let children: Vec<Option<usize>> = deleted
                .iter()
                .filter(|(p, _)| parent_path(p) == Some(r.path.as_str()))
                .map(|(_, a)| Some(*a))
                .collect();
            let a = p.add(
                subject,
                account,
                format!("API resource {}", r.path),
                Verb::Delete,
                Reason::NoLongerDesired,
                Op::ApiResource(ApiResourceOp::DeleteResource {
                    rest_api_id: api_id.to_string(),
                    resource_id: r.id.clone(),
                    path: r.path.clone(),
                }),
                children,
            );
            deleted.insert(&r.path, a);
            cx.changes.push(a);
        }
    }

    // Two resources for one path (an SDK retry of a create whose answer was lost, where the API
    // does not refuse it as AWS does): the one not in use goes, if nothing hangs from it.
    if let (true, Some(api_id)) = (api.owned, api.id.known()) {
        let parents: HashSet<&str> = cx.live.iter().filter_map(|c| c.parent_id.as_deref()).collect();
        for r in cx.live {
            let in_use = cx.by_path.get(r.path.as_str()).is_some_and(|u| u.id == r.id);
            let parent = parents.contains(r.id.as_str());
            if in_use || parent || !cx.want.contains_key(&r.path) {
                continue;
            }
            let a = p.add(
                subject,
                account,
                format!("API resource {} ({})", r.path, r.id),
                Verb::Delete,
                Reason::Replaced { why: format!("duplicate of {}", cx.by_path[r.path.as_str()].id) },
                Op::ApiResource(ApiResourceOp::DeleteResource {
                    rest_api_id: api_id.to_string(),
                    resource_id: r.id.clone(),
                    path: r.path.clone(),
                }),
                vec![],
            );
            cx.changes.push(a);
        }
    }
    Some(())
}
