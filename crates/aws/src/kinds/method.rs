//! Methods with their HTTP_PROXY integration through the VPC link (read with the resources).

use crate::calls::{AwsService::*, Call};
use crate::ratelimit::Bucket;

const B: &[Bucket] = &[Bucket::ApiGateway];

pub const PUT: Call = Call::write(ApiGateway, "PutMethod", &["apigateway:PUT"], B);
pub const PUT_INTEGRATION: Call = Call::write(ApiGateway, "PutIntegration", &["apigateway:PUT"], B);
pub const DELETE: Call = Call::write(ApiGateway, "DeleteMethod", &["apigateway:DELETE"], B);

pub static KIND: super::Kind = super::Kind { name: "method", calls: &[&PUT, &PUT_INTEGRATION, &DELETE] };
