//! A link's IP target group in the gateway VPC, with its health check.

use serde::{Deserialize, Serialize};

use super::KindOp;
use crosslink_desired::{HealthProtocol, Link};
use sha2::{Digest, Sha256};
use crate::observed::AccountState;
use crate::planner::Prunable;
use crate::kinds::targets::RegisteredTarget;
use crate::op::{Ref, Service};
use crate::observed::Tags;

// ---- What is observed ------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheckSettings {
    pub protocol: String,
    pub path: Option<String>,
    /// `traffic-port` or a number.
    pub port: String,
    pub interval_seconds: u16,
    pub healthy_threshold: u8,
    pub unhealthy_threshold: u8,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetGroup {
    pub arn: String,
    pub name: String,
    pub vpc_id: String,
    pub protocol: String,
    pub port: u16,
    pub target_type: String,
    pub health_check: HealthCheckSettings,
    pub tags: Tags,
    /// Registered targets (read only for crosslink's own target groups).
    pub targets: Vec<RegisteredTarget>,
}

// ---- Operations -------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum TargetGroupOp {
    CreateTargetGroup {
        name: String,
        vpc_id: String,
        port: u16,
        health_check: HealthCheckSettings,
        tags: Tags,
    },
    ModifyTargetGroup {
        arn: String,
        health_check: HealthCheckSettings,
    },
    DeleteTargetGroup {
        arn: String,
    },
}

impl KindOp for TargetGroupOp {
    fn service(&self) -> Service {
        Service::Elbv2
    }

    fn name(&self) -> &'static str {
        match self {
            Self::CreateTargetGroup { .. } => "CreateTargetGroup",
            Self::ModifyTargetGroup { .. } => "ModifyTargetGroup",
            Self::DeleteTargetGroup { .. } => "DeleteTargetGroup",
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::CreateTargetGroup { name, .. } => name.clone(),
            Self::ModifyTargetGroup { arn, .. } | Self::DeleteTargetGroup { arn } => arn.clone(),
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::CreateTargetGroup { .. } | Self::ModifyTargetGroup { .. } | Self::DeleteTargetGroup { .. } => vec![],
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::CreateTargetGroup { .. } | Self::ModifyTargetGroup { .. } | Self::DeleteTargetGroup { .. } => vec![],
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
        matches!(self, Self::DeleteTargetGroup { .. })
    }
}

// ---- Planning: names and comparisons ----------------------------------------------------------

fn short_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().take(3).map(|b| format!("{b:02x}")).collect()
}

/// The target group name: readable, unique per link and its immutable settings (so that a
/// replacement never collides with the group it replaces), at most 32 characters.
pub fn target_group_name(link: &str, vpc: &str, port: u16) -> String {
    let stem: String = link.chars().take(22).collect();
    let stem = stem.trim_end_matches('-');
    format!("cl-{stem}-{}", short_hash(&[link, vpc, &port.to_string(), "TCP"]))
}

pub fn health_check(l: &Link) -> HealthCheckSettings {
    let hc = l.spec.health_check.clone().unwrap_or_default();
    HealthCheckSettings {
        protocol: hc.protocol.as_str().to_string(),
        path: match hc.protocol {
            HealthProtocol::Tcp => None,
            _ => hc.path.clone(),
        },
        port: hc.port.map(|p| p.to_string()).unwrap_or_else(|| "traffic-port".into()),
        interval_seconds: hc.interval_seconds,
        healthy_threshold: hc.healthy_threshold,
        unhealthy_threshold: hc.unhealthy_threshold,
    }
}

pub(crate) fn hc_drift(live: &HealthCheckSettings, want: &HealthCheckSettings) -> Option<(String, String, String)> {
    let fields: [(&str, String, String); 6] = [
        ("healthCheck.protocol", live.protocol.clone(), want.protocol.clone()),
        ("healthCheck.path", live.path.clone().unwrap_or("-".into()), want.path.clone().unwrap_or("-".into())),
        ("healthCheck.port", live.port.clone(), want.port.clone()),
        ("healthCheck.intervalSeconds", live.interval_seconds.to_string(), want.interval_seconds.to_string()),
        ("healthCheck.healthyThreshold", live.healthy_threshold.to_string(), want.healthy_threshold.to_string()),
        ("healthCheck.unhealthyThreshold", live.unhealthy_threshold.to_string(), want.unhealthy_threshold.to_string()),
    ];
    fields.into_iter().find(|(_, l, w)| l != w).map(|(f, l, w)| (f.to_string(), l, w))
}

// ---- Clean-up and tags (read by the planner's generic machinery) ------------------------------

pub(crate) fn prunable(st: &AccountState) -> Vec<Prunable<'_>> {
    st.target_groups
        .iter()
        .map(|tg| Prunable {
            tags: &tg.tags,
            id: tg.arn.clone(),
            what: format!("target group {}", tg.name),
            delete: TargetGroupOp::DeleteTargetGroup { arn: tg.arn.clone() }.into(),
            uses: Vec::new(),
            follows_link: true,
            deleting: false,
        })
        .collect()
}

pub(crate) use crate::planner::nothing_first as before_delete;

/// ELBv2 tags are added with one call for any of its resources (`AddTags`).
pub(crate) use super::load_balancer::tag_op;
