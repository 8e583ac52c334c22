//! The REST API resources (paths) of a link's routes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
