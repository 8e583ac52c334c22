//! `AwsCloud`, the `Cloud` of real AWS: one verified session and its clients per Account (cached,
//! dropped on credential errors), and the per-call wrapper that times, classifies, logs and
//! reports every AWS request.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_smithy_async::future::pagination_stream::PaginationStream;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use crosslink_cloud::{Cloud, CloudError, ErrorKind, ObserveScope, Outcome};
use crosslink_plan::observed::AccountObservation;
use crosslink_plan::op::Op;
use crosslink_spec::{Account, AccountSpec};
use futures::future::BoxFuture;
use tokio::sync::Mutex;

use crate::errors::from_sdk;
use crate::session::{Connector, Session, SessionError};

/// One AWS request, as reported to the call observer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// The Account's name (not its id).
    pub account: String,
    /// `ec2`, `elbv2`, `apigateway` or `sts`.
    pub service: &'static str,
    /// The AWS operation name, e.g. `DescribeVpcs`.
    pub operation: &'static str,
    /// `ok`, or the error kind (`throttled`, `not-found`, ...).
    pub outcome: &'static str,
    /// The AWS error code of a failed call.
    pub code: Option<String>,
    pub duration: Duration,
}

/// Called after every AWS request (reads included), e.g. to count requests per account.
pub type CallObserver = Arc<dyn Fn(&CallRecord) + Send + Sync>;

/// A verified session of one Account and the clients built from it.
pub(crate) struct Clients {
    spec: AccountSpec,
    pub(crate) session: Session,
    pub(crate) ec2: aws_sdk_ec2::Client,
    pub(crate) elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub(crate) apigateway: aws_sdk_apigateway::Client,
}

/// The cached clients of one Account. Its own lock serializes verification for this account
/// only, so that concurrent passes do not assume the role twice.
type Slot = Arc<Mutex<Option<Arc<Clients>>>>;

/// The `Cloud` of real AWS. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct AwsCloud {
    connector: Connector,
    observer: Option<CallObserver>,
    slots: Mutex<HashMap<String, Slot>>,
}

impl AwsCloud {
    pub fn new(connector: Connector) -> AwsCloud {
        AwsCloud { connector, observer: None, slots: Mutex::default() }
    }

    /// Reports every AWS request to `observer` (invoked inline: keep it cheap).
    pub fn with_call_observer(mut self, observer: CallObserver) -> AwsCloud {
        self.observer = Some(observer);
        self
    }

    pub fn connector(&self) -> &Connector {
        &self.connector
    }

    /// The verified session of the Account (cached), e.g. to seed test networks.
    pub async fn session(&self, account: &Account) -> Result<Session, CloudError> {
        Ok(self.clients(account).await?.session.clone())
    }

    async fn slot(&self, name: &str) -> Slot {
        self.slots.lock().await.entry(name.to_string()).or_default().clone()
    }

    async fn clients(&self, account: &Account) -> Result<Arc<Clients>, CloudError> {
        let slot = self.slot(&account.metadata.name).await;
        let mut cached = slot.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| c.spec == account.spec) {
            return Ok(c.clone());
        }
        *cached = None;
        let session = self.connector.session(&account.spec).await;
        let sts = aws_sdk_sts::Client::new(&session.config);
        let ctx = Ctx { account: &account.metadata.name, observer: self.observer.as_ref() };
        let me = ctx.call("sts", "GetCallerIdentity", sts.get_caller_identity().send()).await?;
        let actual = me.account().unwrap_or_default();
        if actual != session.account_id {
            let e = SessionError::WrongAccount { expected: session.account_id.clone(), actual: actual.to_string() };
            return Err(CloudError::new(ErrorKind::AccessDenied, e.code(), e.to_string()));
        }
        let clients = Arc::new(Clients {
            spec: account.spec.clone(),
            ec2: aws_sdk_ec2::Client::new(&session.config),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::new(&session.config),
            apigateway: aws_sdk_apigateway::Client::new(&session.config),
            session,
        });
        *cached = Some(clients.clone());
        Ok(clients)
    }

    /// Drops the cached session after a credentials-class error, so that the next call assumes
    /// the role and checks the identity again. A session replaced meanwhile is kept.
    async fn forget_if_denied(&self, account: &Account, used: &Arc<Clients>, err: &CloudError) {
        if err.kind != ErrorKind::AccessDenied {
            return;
        }
        let slot = self.slot(&account.metadata.name).await;
        let mut cached = slot.lock().await;
        if cached.as_ref().is_some_and(|c| Arc::ptr_eq(c, used)) {
            tracing::warn!(account = %account.metadata.name, code = %err.code, "dropping the cached session");
            *cached = None;
        }
    }

    fn ctx<'a>(&'a self, account: &'a Account) -> Ctx<'a> {
        Ctx { account: &account.metadata.name, observer: self.observer.as_ref() }
    }
}

impl Cloud for AwsCloud {
    async fn observe(&self, account: &Account, scope: &ObserveScope) -> AccountObservation {
        let clients = match Box::pin(self.clients(account)).await {
            Ok(c) => c,
            Err(e) => return AccountObservation::Failed { code: e.code, message: e.message },
        };
        match Box::pin(crate::observe::observe(&self.ctx(account), &clients, scope)).await {
            Ok(state) => AccountObservation::Ok(Box::new(state)),
            Err(e) => {
                self.forget_if_denied(account, &clients, &e).await;
                AccountObservation::Failed { code: e.code, message: e.message }
            }
        }
    }

    async fn execute(&self, account: &Account, op: &Op) -> Result<Outcome, CloudError> {
        let clients = Box::pin(self.clients(account)).await?;
        let r = Box::pin(crate::execute::execute(&self.ctx(account), &clients, op)).await;
        if let Err(e) = &r {
            self.forget_if_denied(account, &clients, e).await;
        }
        r
    }
}

/// Where a call is made from: the account it acts in and who to report it to.
pub(crate) struct Ctx<'a> {
    pub(crate) account: &'a str,
    observer: Option<&'a CallObserver>,
}

impl Ctx<'_> {
    fn record(&self, service: &'static str, operation: &'static str, err: Option<&CloudError>, duration: Duration) {
        if let Some(observer) = self.observer {
            observer(&CallRecord {
                account: self.account.to_string(),
                service,
                operation,
                outcome: err.map_or("ok", |e| e.kind.as_str()),
                code: err.map(|e| e.code.clone()),
                duration,
            });
        }
    }

    /// One read request. The request is moved to the heap at once: SDK futures are large, and
    /// callers (the engine, tests) should not carry them on their stack.
    pub(crate) fn call<'s, T, E>(
        &'s self,
        service: &'static str,
        operation: &'static str,
        request: impl Future<Output = Result<T, SdkError<E, HttpResponse>>> + Send + 's,
    ) -> BoxFuture<'s, Result<T, CloudError>>
    where
        T: Send + 's,
        E: ProvideErrorMetadata + std::error::Error + Send + 's + 'static,
    {
        Box::pin(async move {
            let start = Instant::now();
            let r = request.await.map_err(|e| from_sdk(&e));
            self.record(service, operation, r.as_ref().err(), start.elapsed());
            r
        })
    }

    /// One mutating request, logged with the resources it touches.
    pub(crate) fn write<'s, T, E>(
        &'s self,
        service: &'static str,
        operation: &'static str,
        subject: &'s str,
        request: impl Future<Output = Result<T, SdkError<E, HttpResponse>>> + Send + 's,
    ) -> BoxFuture<'s, Result<T, CloudError>>
    where
        T: Send + 's,
        E: ProvideErrorMetadata + std::error::Error + Send + 's + 'static,
    {
        let call = self.call(service, operation, request);
        Box::pin(async move {
            let start = Instant::now();
            let r = call.await;
            let ms = start.elapsed().as_millis() as u64;
            match &r {
                Ok(_) => tracing::info!(account = %self.account, service, operation, subject, ms, "aws call"),
                Err(e) => tracing::info!(
                    account = %self.account, service, operation, subject, ms, code = %e.code, kind = e.kind.as_str(),
                    "aws call failed"
                ),
            }
            r
        })
    }

    /// Every page of a paginated read; each page is one request.
    pub(crate) async fn pages<O, E>(
        &self,
        service: &'static str,
        operation: &'static str,
        mut stream: PaginationStream<Result<O, SdkError<E, HttpResponse>>>,
    ) -> Result<Vec<O>, CloudError>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let mut out = Vec::new();
        loop {
            let start = Instant::now();
            let Some(page) = stream.next().await else { return Ok(out) };
            let page = page.map_err(|e| from_sdk(&e));
            self.record(service, operation, page.as_ref().err(), start.elapsed());
            out.push(page?);
        }
    }
}
