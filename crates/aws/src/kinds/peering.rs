//! VPC peering connections and their options (requested in the gateway account, accepted and
//! configured in the service account).

use crate::calls::{AwsService::*, Call};
use crate::ratelimit::Bucket;

const W: &[Bucket] = &[Bucket::Ec2Write];

pub const DESCRIBE: Call =
    Call::read(Ec2, "DescribeVpcPeeringConnections", &["ec2:DescribeVpcPeeringConnections"], &[Bucket::Ec2Read]);
pub const CREATE: Call =
    Call::write(Ec2, "CreateVpcPeeringConnection", &["ec2:CreateVpcPeeringConnection", "ec2:CreateTags"], W);
pub const ACCEPT: Call = Call::write(Ec2, "AcceptVpcPeeringConnection", &["ec2:AcceptVpcPeeringConnection"], W);
pub const MODIFY_OPTIONS: Call =
    Call::write(Ec2, "ModifyVpcPeeringConnectionOptions", &["ec2:ModifyVpcPeeringConnectionOptions"], W);
pub const DELETE: Call = Call::write(Ec2, "DeleteVpcPeeringConnection", &["ec2:DeleteVpcPeeringConnection"], W);
/// Tags of a peering connection (tag drift).
pub const CREATE_TAGS: Call = Call::write(Ec2, "CreateTags", &["ec2:CreateTags"], W);

pub static KIND: super::Kind =
    super::Kind { name: "peering", calls: &[&DESCRIBE, &CREATE, &ACCEPT, &MODIFY_OPTIONS, &DELETE, &CREATE_TAGS] };
