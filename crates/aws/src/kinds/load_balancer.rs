//! The gateway's internal Network Load Balancer, and the ELBv2 tag calls that every ELBv2 kind
//! (load balancer, target group, listener) shares.

use crate::calls::{AwsService::*, Call};
use crate::ratelimit::Bucket;

const B: &[Bucket] = &[Bucket::Elbv2];

pub const DESCRIBE: Call =
    Call::read(Elbv2, "DescribeLoadBalancers", &["elasticloadbalancing:DescribeLoadBalancers"], B);
pub const CREATE: Call = Call::write(
    Elbv2,
    "CreateLoadBalancer",
    &["elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:AddTags"],
    B,
);
pub const DELETE: Call = Call::write(Elbv2, "DeleteLoadBalancer", &["elasticloadbalancing:DeleteLoadBalancer"], B);
/// Tags of load balancers, target groups and listeners, 20 ARNs a request.
pub const DESCRIBE_TAGS: Call = Call::read(Elbv2, "DescribeTags", &["elasticloadbalancing:DescribeTags"], B);
/// Sets tags on any ELBv2 resource (tag drift).
pub const ADD_TAGS: Call = Call::write(Elbv2, "AddTags", &["elasticloadbalancing:AddTags"], B);

pub static KIND: super::Kind =
    super::Kind { name: "load balancer", calls: &[&DESCRIBE, &CREATE, &DELETE, &DESCRIBE_TAGS, &ADD_TAGS] };
