//! A link's IP target group in the gateway VPC, with its health check.

use serde::{Deserialize, Serialize};

use super::KindOp;
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
