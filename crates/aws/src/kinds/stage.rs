//! The stage and its deployment; the stage is tagged with the hash of what was deployed.

use crate::calls::{AwsService::*, Call};
use crate::ratelimit::Bucket;

pub const GET: Call = Call::read(ApiGateway, "GetStages", &["apigateway:GET"], &[Bucket::ApiGateway]);
pub const CREATE_DEPLOYMENT: Call = Call::write(
    ApiGateway,
    "CreateDeployment",
    &["apigateway:POST"],
    &[Bucket::ApiGatewayCreateDeployment, Bucket::ApiGateway],
);
pub const TAG: Call = Call::write(ApiGateway, "TagResource", &["apigateway:PUT"], &[Bucket::ApiGateway]);

pub static KIND: super::Kind = super::Kind { name: "stage", calls: &[&GET, &CREATE_DEPLOYMENT, &TAG] };
