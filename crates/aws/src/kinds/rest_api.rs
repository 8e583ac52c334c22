//! The gateway's REST API (crosslink's own, or a referenced one).

use crate::calls::{AwsService::*, Call};
use crate::ratelimit::Bucket;

pub const GET: Call = Call::read(ApiGateway, "GetRestApis", &["apigateway:GET"], &[Bucket::ApiGateway]);
pub const CREATE: Call = Call::write(
    ApiGateway,
    "CreateRestApi",
    &["apigateway:POST"],
    &[Bucket::ApiGatewayCreateRestApi, Bucket::ApiGateway],
);
pub const DELETE: Call = Call::write(
    ApiGateway,
    "DeleteRestApi",
    &["apigateway:DELETE"],
    &[Bucket::ApiGatewayDeleteRestApi, Bucket::ApiGateway],
);

pub static KIND: super::Kind = super::Kind { name: "REST API", calls: &[&GET, &CREATE, &DELETE] };
