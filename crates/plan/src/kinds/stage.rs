//! A gateway's stage and the deployment it serves.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Fills, Reason, Verb};
use crate::op::{Op, Output};
use crate::planner::{ApiCx, Planner};
use crate::tags::{DEPLOYED_HASH, MANAGED_BY};
use super::KindOp;
use sha2::{Digest, Sha256};
use crate::op::{Ref, Service};
use crate::observed::Tags;

// ---- What is observed ------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Stage {
    pub name: String,
    pub deployment_id: Option<String>,
    pub tags: Tags,
}

// ---- Operations -------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum StageOp {
    /// CreateDeployment to the stage (creating the stage if needed), then tag the stage with the
    /// hash of what was deployed so that an interrupted pass deploys again.
    CreateDeployment {
        rest_api_id: Ref,
        stage: String,
        description: String,
        stage_tags: BTreeMap<String, String>,
    },
}

impl KindOp for StageOp {
    fn service(&self) -> Service {
        Service::ApiGateway
    }

    fn name(&self) -> &'static str {
        match self {
            Self::CreateDeployment { .. } => "CreateDeployment",
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::CreateDeployment { rest_api_id, stage, .. } => format!("{rest_api_id}/{stage}"),
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::CreateDeployment { rest_api_id, .. } => vec![rest_api_id],
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::CreateDeployment { rest_api_id, .. } => vec![rest_api_id],
        }
    }

    fn lets_chain(&self, state: Option<&str>) -> bool {
        let _ = state;
        true
    }

    fn on_new_resource(&self) -> bool {
        match self {
            Self::CreateDeployment { rest_api_id, .. } => rest_api_id.known().is_none(),
        }
    }

    fn is_delete(&self) -> bool {
        false
    }
}

// ---- Planning: names and comparisons ----------------------------------------------------------

/// The stage tag that records what was deployed: a hash over the methods (`<method> <path>
/// <uri>`, in order) and, last, the VPC link line.
pub(crate) fn deployed_hash(mut lines: Vec<String>, vpc_link_line: &str) -> String {
    lines.sort();
    let mut h = Sha256::new();
    for l in lines.iter().map(String::as_str).chain([vpc_link_line]) {
        h.update(l.as_bytes());
        h.update(b"\n");
    }
    h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

// ---- Clean-up and tags (read by the planner's generic machinery) ------------------------------

/// A stage is removed with its REST API; a deployment is never deleted.
pub(crate) use crate::planner::nothing_to_prune as prunable;
pub(crate) use crate::planner::nothing_first as before_delete;
pub(crate) use crate::planner::untagged as tag_op;

// ---- Planning (the API stage) -----------------------------------------------------------------

/// The deployment this plan makes, if any: the listeners links leave go after it.
pub(crate) type Out<'a> = Option<usize>;

/// The deployment of the API to the gateway's stage: after every change to the API, or when the
/// stage does not carry the hash of what is desired (`deployed_hash`). An API without methods
/// cannot be deployed.
pub(crate) fn plan<'a>(p: &mut Planner<'a>, cx: &mut ApiCx<'a, '_>) -> Option<()> {
    let (gw, subject, account) = (cx.gw, &cx.subject, cx.gw.account.as_str());
    let (api, vpc_link) = (&gw.out.rest_api, &gw.out.vpc_link);
    let stage_name = &gw.gw.spec.api.stage;
    let lines: Vec<String> =
        cx.want
            .iter()
            .flat_map(|(p, ms)| ms.iter().map(move |(m, uri, .., pr)| format!("{m} {p} {uri}{}", pr.hash_suffix())))
            .collect();
    let vpc_link_line = format!("vpc-link {}", vpc_link.id);
    let hash = deployed_hash(lines.clone(), &vpc_link_line);
    // What the hash covers that this plan creates (the load balancer's DNS name in URIs, the VPC
    // link id): the engine takes the hash again once they are known.
    let mut hash_fills: Vec<(String, usize, Output)> = cx.dns_fill.clone().into_iter().collect();
    if let Some((by, output)) = vpc_link.id.made_by() {
        hash_fills.push((vpc_link.id.to_string(), by, output));
    }
    if cx.want.values().all(Vec::is_empty) {
        return Some(());
    }
    let stage = api.api.and_then(|a| a.stages.iter().find(|s| &s.name == stage_name));
    let deployed = stage.and_then(|s| s.tags.get(DEPLOYED_HASH)).map(String::as_str);
    if cx.changes.is_empty() && deployed == Some(hash.as_str()) {
        return Some(());
    }
    let reason = if !cx.changes.is_empty() {
        Reason::FollowsChanges { why: "the API changed".into() }
    } else if stage.is_none() {
        Reason::Missing
    } else {
        Reason::Drift { field: "stage deployment".into(), live: deployed.unwrap_or("(unknown)").into(), desired: hash.clone() }
    };
    let mut stage_tags = BTreeMap::new();
    stage_tags.insert(MANAGED_BY.to_string(), p.s.instance.clone());
    stage_tags.insert(DEPLOYED_HASH.to_string(), hash);
    let deps: Vec<Option<usize>> = cx.changes.iter().copied().map(Some).collect();
    let a = p.add(
        subject,
        account,
        format!("stage {stage_name}"),
        Verb::Deploy,
        reason,
        Op::Stage(StageOp::CreateDeployment {
            rest_api_id: api.id.clone(),
            stage: stage_name.clone(),
            description: format!("crosslink: {} link(s)", cx.entries.len()),
            stage_tags,
        }),
        deps,
    );
    if !hash_fills.is_empty() {
        p.plan.fills.insert(a, Fills { texts: hash_fills, hash_lines: lines, hash_tail: vpc_link_line });
    }
    cx.out.stage = Some(a);
    Some(())
}
