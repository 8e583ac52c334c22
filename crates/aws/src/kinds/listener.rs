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
