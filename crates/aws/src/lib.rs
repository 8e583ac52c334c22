//! The AWS adapter: the only crate that links the AWS SDK. It turns accounts into authenticated
//! clients (`session`), reads accounts into observed state (`observe`), performs operations
//! (`execute`), classifies AWS errors (`errors`) and keeps to client-side rate limits (`ratelimit`),
//! behind `AwsCloud`. Every AWS call it makes is declared, with its IAM actions and rate-limit
//! buckets, in the module of its resource kind (`kinds`, `calls`), beside the IAM statements the
//! calls need (`grants`).

pub mod calls;
pub mod cloud;
pub mod errors;
mod execute;
pub mod grants;
pub mod kinds;
mod observe;
pub mod queue;
pub mod ratelimit;
pub mod seed;
pub mod session;

pub use calls::{Access, AwsService, Call};
pub use cloud::{AwsCloud, CallObserver, CallRecord};
pub use errors::{classify, from_sdk};
pub use queue::SqsQueue;
pub use ratelimit::{Bucket, Limiter, RateLimits, RateOverride, bucket_for};
pub use seed::{
    HandBuiltLink, SeededVpc, seed_api_gateway_logging_role, seed_link_by_hand, seed_network, seed_route_table,
    seed_web_acl,
};
pub use session::{Connector, Session, SessionError};
