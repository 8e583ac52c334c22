//! Routes to a peering, in both VPCs' route tables.

use crate::calls::{AwsService::*, Call};
use crate::ratelimit::Bucket;

const W: &[Bucket] = &[Bucket::Ec2Write];

pub const DESCRIBE_ROUTE_TABLES: Call =
    Call::read(Ec2, "DescribeRouteTables", &["ec2:DescribeRouteTables"], &[Bucket::Ec2Read]);
pub const CREATE: Call = Call::write(Ec2, "CreateRoute", &["ec2:CreateRoute"], W);
pub const REPLACE: Call = Call::write(Ec2, "ReplaceRoute", &["ec2:ReplaceRoute"], W);
pub const DELETE: Call = Call::write(Ec2, "DeleteRoute", &["ec2:DeleteRoute"], W);

pub static KIND: super::Kind =
    super::Kind { name: "route", calls: &[&DESCRIBE_ROUTE_TABLES, &CREATE, &REPLACE, &DELETE] };
