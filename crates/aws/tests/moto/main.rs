//! Tests of the AWS adapter with the real AWS SDK against moto_server on 127.0.0.1.
//! This binary is the slow one; everything else tests without AWS.

mod adapter;
mod engine;
mod faults;
mod smoke;
mod transport;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use crosslink_testkit::Moto;

/// An SDK configuration that talks to this moto server with moto's static test credentials,
/// loaded like the binary loads its own (defaults for everything else).
pub async fn base_config(moto: &Moto) -> SdkConfig {
    config_at(&moto.endpoint).await
}

/// The same, for another endpoint in front of moto (the testkit's recording proxy).
pub async fn config_at(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(crosslink_testkit::REGION))
        .credentials_provider(Credentials::new(
            crosslink_testkit::ACCESS_KEY,
            crosslink_testkit::SECRET_KEY,
            None,
            None,
            "moto",
        ))
        .load()
        .await
}
