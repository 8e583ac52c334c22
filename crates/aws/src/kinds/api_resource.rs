//! REST API resources (paths). One paginated `GetResources?embed=methods` reads a whole API,
//! methods and integrations included.

use crate::calls::{AwsService::*, Call};
use crate::ratelimit::Bucket;

pub const GET: Call =
    Call::read(ApiGateway, "GetResources", &["apigateway:GET"], &[Bucket::ApiGatewayGetResources, Bucket::ApiGateway]);
pub const CREATE: Call = Call::write(
    ApiGateway,
    "CreateResource",
    &["apigateway:POST"],
    &[Bucket::ApiGatewayCreateResource, Bucket::ApiGateway],
);
pub const DELETE: Call = Call::write(
    ApiGateway,
    "DeleteResource",
    &["apigateway:DELETE"],
    &[Bucket::ApiGatewayDeleteResource, Bucket::ApiGateway],
);

pub static KIND: super::Kind = super::Kind { name: "API resource", calls: &[&GET, &CREATE, &DELETE] };
