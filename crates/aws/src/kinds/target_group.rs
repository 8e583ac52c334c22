//! IP target groups, one per link.

use crate::calls::{AwsService::*, Call};
use crate::ratelimit::Bucket;

const B: &[Bucket] = &[Bucket::Elbv2];

pub const DESCRIBE: Call = Call::read(Elbv2, "DescribeTargetGroups", &["elasticloadbalancing:DescribeTargetGroups"], B);
pub const CREATE: Call = Call::write(
    Elbv2,
    "CreateTargetGroup",
    &["elasticloadbalancing:CreateTargetGroup", "elasticloadbalancing:AddTags"],
    B,
);
pub const MODIFY: Call = Call::write(Elbv2, "ModifyTargetGroup", &["elasticloadbalancing:ModifyTargetGroup"], B);
pub const DELETE: Call = Call::write(Elbv2, "DeleteTargetGroup", &["elasticloadbalancing:DeleteTargetGroup"], B);

pub static KIND: super::Kind = super::Kind { name: "target group", calls: &[&DESCRIBE, &CREATE, &MODIFY, &DELETE] };
