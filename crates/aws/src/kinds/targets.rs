//! The IP targets registered in a link's target group, and their health.

use crate::calls::{AwsService::*, Call};
use crate::ratelimit::Bucket;

const B: &[Bucket] = &[Bucket::Elbv2];

pub const DESCRIBE_HEALTH: Call =
    Call::read(Elbv2, "DescribeTargetHealth", &["elasticloadbalancing:DescribeTargetHealth"], B);
pub const REGISTER: Call = Call::write(Elbv2, "RegisterTargets", &["elasticloadbalancing:RegisterTargets"], B);
pub const DEREGISTER: Call = Call::write(Elbv2, "DeregisterTargets", &["elasticloadbalancing:DeregisterTargets"], B);

pub static KIND: super::Kind = super::Kind { name: "targets", calls: &[&DESCRIBE_HEALTH, &REGISTER, &DEREGISTER] };
