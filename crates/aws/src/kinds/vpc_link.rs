//! The REST API's VPC link to the gateway's NLB. API Gateway makes a VPC endpoint service for it
//! on the caller's behalf, with the caller's EC2 and ELBv2 permissions.

use crate::calls::{AwsService::*, Call};
use crate::ratelimit::Bucket;

const B: &[Bucket] = &[Bucket::ApiGateway];

pub const GET: Call = Call::read(ApiGateway, "GetVpcLinks", &["apigateway:GET"], B);
pub const CREATE: Call = Call::write(
    ApiGateway,
    "CreateVpcLink",
    &[
        "apigateway:POST",
        "ec2:CreateVpcEndpointServiceConfiguration",
        "ec2:DescribeVpcEndpointServiceConfigurations",
        "ec2:ModifyVpcEndpointServicePermissions",
        "elasticloadbalancing:DescribeLoadBalancers",
    ],
    B,
);
pub const DELETE: Call =
    Call::write(ApiGateway, "DeleteVpcLink", &["apigateway:DELETE", "ec2:DeleteVpcEndpointServiceConfigurations"], B);

pub static KIND: super::Kind = super::Kind { name: "VPC link", calls: &[&GET, &CREATE, &DELETE] };
