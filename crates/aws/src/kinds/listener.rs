//! NLB listeners, one per link.

use crate::calls::{AwsService::*, Call};
use crate::ratelimit::Bucket;

const B: &[Bucket] = &[Bucket::Elbv2];

pub const DESCRIBE: Call = Call::read(Elbv2, "DescribeListeners", &["elasticloadbalancing:DescribeListeners"], B);
pub const CREATE: Call =
    Call::write(Elbv2, "CreateListener", &["elasticloadbalancing:CreateListener", "elasticloadbalancing:AddTags"], B);
pub const MODIFY: Call = Call::write(Elbv2, "ModifyListener", &["elasticloadbalancing:ModifyListener"], B);
pub const DELETE: Call = Call::write(Elbv2, "DeleteListener", &["elasticloadbalancing:DeleteListener"], B);

pub static KIND: super::Kind = super::Kind { name: "listener", calls: &[&DESCRIBE, &CREATE, &MODIFY, &DELETE] };

// ---- Reading -----------------------------------------------------------------------------------

/// The target group a default action forwards to: its own ARN, or the only one of its forward
/// config (what the console writes).
pub(crate) fn forward_target(actions: &[aws_sdk_elasticloadbalancingv2::types::Action]) -> Option<String> {
    let forward = actions.iter().find(|a| a.r#type().is_some_and(|t| t.as_str() == "forward"))?;
    if let Some(arn) = forward.target_group_arn() {
        return Some(arn.to_string());
    }
    match forward.forward_config()?.target_groups() {
        [only] => only.target_group_arn().map(str::to_string),
        _ => None,
    }
}
