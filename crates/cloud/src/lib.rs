//! The interface the engine uses to observe and change AWS. The AWS adapter (`crosslink-aws`)
//! implements it with the SDK, the in-memory AWS ([`fake`]) without; scripted faults wrap either
//! ([`faults::Faulty`]).

pub mod fake;
pub mod faults;
pub mod fence;
pub mod queue;
pub mod slots;

use std::future::Future;

use crosslink_desired::Account;
use crosslink_plan::observed::AccountObservation;
use crosslink_plan::op::Op;

/// How an error should be handled: drives retries, backoff and status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// AWS asked us to slow down.
    Throttled,
    /// A transient failure (5xx, timeout, connection): try again soon.
    Retryable,
    /// The resource is gone (e.g. deleted out of band between observe and act).
    NotFound,
    /// The resource is in a state that forbids the call now (in use, pending): try again later.
    Conflict,
    /// Credentials or permissions: retrying will not help until someone changes something.
    AccessDenied,
    /// Invalid parameters, quotas and everything else that will fail again the same way.
    Permanent,
}

impl ErrorKind {
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorKind::Throttled | ErrorKind::Retryable | ErrorKind::Conflict | ErrorKind::NotFound)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Throttled => "throttled",
            ErrorKind::Retryable => "retryable",
            ErrorKind::NotFound => "not-found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::AccessDenied => "access-denied",
            ErrorKind::Permanent => "permanent",
        }
    }
}

/// An AWS error with its code kept (never flattened into a string).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("{code}: {message}")]
pub struct CloudError {
    pub kind: ErrorKind,
    /// The AWS error code (`RequestLimitExceeded`, `InvalidVpcID.NotFound`, ...).
    pub code: String,
    pub message: String,
}

impl CloudError {
    pub fn new(kind: ErrorKind, code: impl Into<String>, message: impl Into<String>) -> Self {
        CloudError { kind, code: code.into(), message: message.into() }
    }
}

/// An account that could not be read: worth reading again soon when AWS throttled, failed on
/// its side or did not answer.
impl From<CloudError> for AccountObservation {
    fn from(e: CloudError) -> Self {
        let retryable = matches!(e.kind, ErrorKind::Throttled | ErrorKind::Retryable);
        AccountObservation::Failed { code: e.code, message: e.message, retryable }
    }
}

/// What the engine asks to be read in one account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObserveScope {
    /// Read load balancers, target groups, listeners, VPC links and REST APIs too (a Gateway
    /// lives here, or did: crosslink-owned resources are always read).
    pub gateway_side: bool,
    /// REST API ids and names whose resources and stages must be read, besides crosslink's own.
    pub rest_api_ids: Vec<String>,
    pub rest_api_names: Vec<String>,
    /// Load balancers whose listeners must be read, besides crosslink's own.
    pub load_balancer_names: Vec<String>,
    pub load_balancer_arns: Vec<String>,
    /// The managed-by tag value that marks crosslink's own resources.
    pub instance: String,
    /// Target groups (by ARN) whose registered targets the engine already knows from an earlier
    /// read and fills in itself: their `DescribeTargetHealth` is not sent, and they are returned
    /// with no targets. Empty (the default): every crosslink target group's targets are read.
    pub known_targets: std::collections::BTreeSet<String>,
    /// A link of a gateway here adopts (`adoption: Adopt`): the targets of every target group are
    /// read, not only crosslink's, so that a group about to be adopted shows what it holds.
    pub adopting: bool,
    /// `crosslink discover`: read the listeners of every load balancer, the resources of every
    /// REST API and the targets of every target group, crosslink's or not.
    pub discover: bool,
    /// A privateLink link's service side is here: read load balancers and target groups even
    /// where no gateway is (endpoint services are read in every account; endpoints and their
    /// security groups with the gateway side).
    pub private_link: bool,
}

/// What a successful call produced: what the steps after it in the same pass need.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The id or ARN of a created resource.
    pub created: Option<String>,
    /// A new REST API's root resource (`/`).
    pub root_resource_id: Option<String>,
    /// A new load balancer's DNS name.
    pub dns_name: Option<String>,
    /// The state AWS reported for what the call made or changed, where later steps depend on
    /// it: a VPC link's status (`PENDING`, `AVAILABLE`), a peering's status code
    /// (`pending-acceptance`, `active`), a load balancer's state (`provisioning`, `active`).
    pub state: Option<String>,
    /// A new VPC endpoint service's name, which interface endpoints connect to.
    pub service_name: Option<String>,
}

impl Outcome {
    /// A created resource, by its id or ARN.
    pub fn created(id: impl Into<String>) -> Self {
        Outcome { created: Some(id.into()), ..Outcome::default() }
    }

    /// With the state AWS reported.
    pub fn in_state(mut self, state: impl Into<String>) -> Self {
        self.state = Some(state.into());
        self
    }

    /// The value of the answer that `output` names.
    pub fn output(&self, output: crosslink_plan::op::Output) -> Option<&str> {
        use crosslink_plan::op::Output;
        match output {
            Output::Id => self.created.as_deref(),
            Output::RootResourceId => self.root_resource_id.as_deref(),
            Output::DnsName => self.dns_name.as_deref(),
            Output::ServiceName => self.service_name.as_deref(),
        }
    }
}

pub trait Cloud: Send + Sync + 'static {
    /// Reads one account. Never fails as a whole: a failure is an `AccountObservation::Failed`.
    fn observe(&self, account: &Account, scope: &ObserveScope) -> impl Future<Output = AccountObservation> + Send;

    /// Performs one operation in one account.
    fn execute(&self, account: &Account, op: &Op) -> impl Future<Output = Result<Outcome, CloudError>> + Send;
}

impl<C: Cloud> Cloud for std::sync::Arc<C> {
    async fn observe(&self, account: &Account, scope: &ObserveScope) -> AccountObservation {
        (**self).observe(account, scope).await
    }

    async fn execute(&self, account: &Account, op: &Op) -> Result<Outcome, CloudError> {
        (**self).execute(account, op).await
    }
}
