//! Credentials per Account: the ambient chain (env, profile, IRSA / web identity, instance
//! role), or STS AssumeRole with the external id on top of it; then a check that the identity
//! really is the account the desired state names.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{
    HttpConnectorSettings, SharedHttpClient, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_types::region::Region;
use crosslink_desired::AccountSpec;

/// The default STS session name, visible in CloudTrail as the role session.
pub const DEFAULT_SESSION_NAME: &str = "crosslink";

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot confirm the identity in account {account}: {code}: {message}")]
    Sts { account: String, code: String, message: String },
    #[error("credentials act in account {actual}, but the Account says {expected}")]
    WrongAccount { expected: String, actual: String },
}

impl SessionError {
    pub fn code(&self) -> &str {
        match self {
            SessionError::Sts { code, .. } => code,
            SessionError::WrongAccount { .. } => "AccountMismatch",
        }
    }
}

/// Builds per-account configurations from one base configuration.
#[derive(Clone, Debug)]
pub struct Connector {
    base: SdkConfig,
}

/// Authenticated configuration for one account and region; clients built from it share its
/// credential cache (AssumeRole credentials are refreshed before they expire).
#[derive(Clone, Debug)]
pub struct Session {
    pub account_id: String,
    pub region: String,
    pub config: SdkConfig,
}

/// The SDK sets no overall timeout of its own: a connection that never answers would hold a
/// call until the engine's outer bound (`CALL_TIMEOUT`, which also counts rate-limit waits).
/// These bound the AWS part: connecting, each attempt, and the call with its retries.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
pub const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
pub const OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

fn timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// One HTTP client for every SDK client of every account: one connection pool and one TLS
/// configuration per set of connector settings (crosslink uses one: `timeouts`).
///
/// Without it, an `SdkConfig` carries no HTTP client and every SDK client built from it (three
/// services per account, an STS client per account for the identity check and one inside each
/// AssumeRole provider) gets the SDK's default HTTP client of its own: its own connection pool,
/// and its own rustls `ClientConfig` holding a parsed copy of every system root certificate
/// (parsed once more when the client is built, to check it). With 55 accounts (the 1,000-link
/// bench) that was 11.8 MiB of heap at `apply`'s peak (7.6 MiB of it root certificates) and
/// the largest single item there. Requests to the same endpoint from different accounts now
/// share connections too (SigV4 signs each request, not the connection).
///
/// The connectors are the SDK's default ones (`aws_smithy_runtime`'s `default_https_client`
/// for current behavior versions): rustls with aws-lc, the proxy settings of the environment
/// (`HTTPS_PROXY`, `NO_PROXY`), the settings and sleep implementation of the first client
/// that asks for them, cached by connect and read timeout as the SDK's own client caches them.
pub fn shared_http_client() -> SharedHttpClient {
    type Key = (Option<Duration>, Option<Duration>);
    let connectors: Mutex<HashMap<Key, SharedHttpConnector>> = Mutex::default();
    http_client_fn(move |settings: &HttpConnectorSettings, components: &RuntimeComponents| {
        let key = (settings.connect_timeout(), settings.read_timeout());
        let mut connectors = connectors.lock().unwrap_or_else(|e| e.into_inner());
        connectors
            .entry(key)
            .or_insert_with(|| {
                let mut b =
                    aws_smithy_http_client::Connector::builder().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
                b.set_connector_settings(Some(settings.clone()));
                b.set_sleep_impl(components.sleep_impl());
                b.set_proxy_config(Some(aws_smithy_http_client::proxy::ProxyConfig::from_env()));
                SharedHttpConnector::new(b.build())
            })
            .clone()
    })
}

impl Connector {
    /// The standard AWS configuration of the environment: `AWS_ENDPOINT_URL`, profiles,
    /// IRSA / web identity, instance metadata.
    pub async fn from_env() -> Connector {
        let base = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(timeouts())
            .http_client(shared_http_client())
            .load()
            .await;
        Connector { base }
    }

    /// A configuration of the caller's; one without an HTTP client of its own gets the shared
    /// one (`shared_http_client`).
    pub fn from_config(base: SdkConfig) -> Connector {
        let base = match base.http_client() {
            Some(_) => base,
            None => base.to_builder().http_client(shared_http_client()).build(),
        };
        Connector { base }
    }

    /// A fixed endpoint with static credentials: for local emulators (the demo, tests, benchmarks).
    pub async fn static_credentials(endpoint: &str, region: &str, access_key: &str, secret_key: &str) -> Connector {
        let creds = aws_credential_types::Credentials::new(access_key, secret_key, None, None, "static");
        let base = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(timeouts())
            .endpoint_url(endpoint)
            .region(Region::new(region.to_string()))
            .credentials_provider(creds)
            .http_client(shared_http_client())
            .load()
            .await;
        Connector { base }
    }

    pub fn base(&self) -> &SdkConfig {
        &self.base
    }

    /// A session for the account, not yet verified.
    pub async fn session(&self, spec: &AccountSpec) -> Session {
        let region = Region::new(spec.region.clone());
        let base = self.base.to_builder().region(region.clone()).build();
        let config = match &spec.assume_role {
            None => base,
            Some(role) => {
                let mut b = aws_config::sts::AssumeRoleProvider::builder(role.role_arn.clone())
                    .session_name(role.session_name.clone().unwrap_or_else(|| DEFAULT_SESSION_NAME.into()))
                    .region(region)
                    .configure(&base);
                if let Some(x) = &role.external_id {
                    b = b.external_id(x.clone());
                }
                let provider = b.build().await;
                base.to_builder()
                    .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(provider))
                    .build()
            }
        };
        Session { account_id: spec.account_id.clone(), region: spec.region.clone(), config }
    }

    /// A session whose identity was checked with STS GetCallerIdentity.
    pub async fn verified_session(&self, spec: &AccountSpec) -> Result<Session, SessionError> {
        let s = self.session(spec).await;
        s.verify().await?;
        Ok(s)
    }
}

impl Session {
    /// Confirms that the credentials act in the expected account.
    pub async fn verify(&self) -> Result<(), SessionError> {
        use aws_sdk_sts::error::ProvideErrorMetadata;
        let sts = aws_sdk_sts::Client::new(&self.config);
        let out = sts.get_caller_identity().send().await.map_err(|e| SessionError::Sts {
            account: self.account_id.clone(),
            code: e.code().unwrap_or("CredentialsError").to_string(),
            message: crate::session::error_chain(&e),
        })?;
        let actual = out.account().unwrap_or_default().to_string();
        if actual != self.account_id {
            return Err(SessionError::WrongAccount { expected: self.account_id.clone(), actual });
        }
        Ok(())
    }
}

/// The whole source chain of an error: the SDK's own Display is just "service error".
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if parts.last() != Some(&t) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call that hangs at AWS is bounded by the SDK, not only by the engine's outer bound:
    /// the timeouts reach the per-account sessions (which are built from the base config).
    #[tokio::test]
    async fn sessions_carry_the_sdk_timeouts() {
        let c = Connector::static_credentials("http://127.0.0.1:9", "eu-central-1", "k", "s").await;
        let spec = AccountSpec { account_id: "123456789012".into(), region: "eu-west-1".into(), assume_role: None };
        let s = c.session(&spec).await;
        let t = s.config.timeout_config().expect("timeouts");
        assert_eq!(t.connect_timeout(), Some(CONNECT_TIMEOUT));
        assert_eq!(t.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        assert_eq!(t.operation_timeout(), Some(OPERATION_TIMEOUT));
    }

    /// Every account's clients use the HTTP client of the base configuration (one pool, one TLS
    /// configuration), however the connector was made.
    #[tokio::test]
    async fn sessions_share_the_base_http_client() {
        let spec = AccountSpec { account_id: "123456789012".into(), region: "eu-west-1".into(), assume_role: None };
        let bare = aws_config::SdkConfig::builder().behavior_version(BehaviorVersion::latest()).build();
        assert!(bare.http_client().is_none());
        for c in [
            Connector::static_credentials("http://127.0.0.1:9", "eu-central-1", "k", "s").await,
            Connector::from_config(bare),
        ] {
            assert!(c.base().http_client().is_some());
            // Sessions are built from the base: they carry its client, so the SDK adds none.
            assert!(c.session(&spec).await.config.http_client().is_some());
        }
    }
}
