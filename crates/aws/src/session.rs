//! Credentials per Account: the ambient chain (env, profile, IRSA / web identity, instance
//! role), or STS AssumeRole with the external id on top of it; then a check that the identity
//! really is the account the desired state names.

use aws_config::{BehaviorVersion, SdkConfig};
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

impl Connector {
    /// The standard AWS configuration of the environment: `AWS_ENDPOINT_URL`, profiles,
    /// IRSA / web identity, instance metadata.
    pub async fn from_env() -> Connector {
        Connector { base: aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts()).load().await }
    }

    pub fn from_config(base: SdkConfig) -> Connector {
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
}
