//! Account-level reads: who the credentials are, and the network every kind sits in (VPCs are
//! read, never changed).

use crate::calls::{AwsService::*, Call};
use crate::ratelimit::Bucket;

pub const GET_CALLER_IDENTITY: Call = Call::read(Sts, "GetCallerIdentity", &[], &[Bucket::Sts]);
pub const DESCRIBE_VPCS: Call = Call::read(Ec2, "DescribeVpcs", &["ec2:DescribeVpcs"], &[Bucket::Ec2Read]);

pub static KIND: super::Kind = super::Kind { name: "account", calls: &[&GET_CALLER_IDENTITY, &DESCRIBE_VPCS] };
