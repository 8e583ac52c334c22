//! `AwsCloud`, the `Cloud` of real AWS: one verified session and its clients per Account (cached,
//! dropped on credential errors), and the per-call wrapper that waits for the client-side rate
//! limits, then times, classifies, logs and reports every AWS request.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_smithy_async::future::pagination_stream::PaginationStream;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use crosslink_cloud::{Cloud, CloudError, ErrorKind, ObserveScope, Outcome};
use crosslink_desired::{Account, AccountSpec};
use crosslink_plan::observed::AccountObservation;
use crosslink_plan::op::Op;
use futures::future::BoxFuture;
use tokio::sync::Mutex;

use crate::errors::from_sdk;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::calls::Call;
use crate::kinds;
use crate::ratelimit::{Bucket, Limiter, RateLimits};
use crate::session::{Connector, Session, SessionError};

/// One AWS request, as reported to the call observer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// The Account's name (not its id).
    pub account: String,
    /// `ec2`, `elbv2`, `apigateway`, `sts` or `wafv2`.
    pub service: &'static str,
    /// The AWS operation name, e.g. `DescribeVpcs`.
    pub operation: &'static str,
    /// `ok`, or the error kind (`throttled`, `not-found`, ...).
    pub outcome: &'static str,
    /// The AWS error code of a failed call.
    pub code: Option<String>,
    /// From sending the request to its answer (SDK retries included), without `waited`.
    pub duration: Duration,
    /// Time spent in the client-side rate limiter before the request was sent.
    pub waited: Duration,
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
    pub(crate) wafv2: aws_sdk_wafv2::Client,
}

/// The cached clients of one Account. Its own lock serializes verification for this account
/// only, so that concurrent passes do not assume the role twice.
type Slot = Arc<Mutex<Option<Arc<Clients>>>>;

/// The `Cloud` of real AWS. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct AwsCloud {
    connector: Connector,
    observer: Option<CallObserver>,
    limiter: Limiter,
    slots: Mutex<HashMap<String, Slot>>,
}

impl AwsCloud {
    /// Keeps to the documented AWS rate limits (`RateLimits::aws_defaults`) unless told otherwise.
    pub fn new(connector: Connector) -> AwsCloud {
        AwsCloud {
            connector,
            observer: None,
            limiter: Limiter::new(RateLimits::aws_defaults()),
            slots: Mutex::default(),
        }
    }

    /// Replaces the client-side rate limits (and their state), e.g. `RateLimits::off()` for tests
    /// and benchmarks against an emulator.
    pub fn with_rate_limits(mut self, limits: RateLimits) -> AwsCloud {
        self.limiter = Limiter::new(limits);
        self
    }

    pub fn rate_limits(&self) -> &RateLimits {
        self.limiter.limits()
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
        let me = self
            .ctx(account)
            .call(&kinds::account::GET_CALLER_IDENTITY, sts.get_caller_identity().send())
            .await
            .map_err(|e| unreachable_endpoint(e, &session.config))?;
        let actual = me.account().unwrap_or_default();
        if actual != session.account_id {
            let e = SessionError::WrongAccount { expected: session.account_id.clone(), actual: actual.to_string() };
            return Err(CloudError::new(ErrorKind::AccessDenied, e.code(), e.to_string()));
        }
        let clients = Arc::new(Clients {
            spec: account.spec.clone(),
            ec2: aws_sdk_ec2::Client::from_conf(
                aws_sdk_ec2::config::Builder::from(&session.config).interceptor(FenceCheck).build(),
            ),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::from_conf(
                aws_sdk_elasticloadbalancingv2::config::Builder::from(&session.config).interceptor(FenceCheck).build(),
            ),
            apigateway: aws_sdk_apigateway::Client::from_conf(
                aws_sdk_apigateway::config::Builder::from(&session.config).interceptor(FenceCheck).build(),
            ),
            wafv2: aws_sdk_wafv2::Client::from_conf(
                aws_sdk_wafv2::config::Builder::from(&session.config).interceptor(FenceCheck).build(),
            ),
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
        Ctx {
            account: &account.metadata.name,
            account_id: &account.spec.account_id,
            region: &account.spec.region,
            observer: self.observer.as_ref(),
            limiter: &self.limiter,
        }
    }
}

/// A call that never reached AWS names the endpoint it tried: the first thing to check when the
/// network, a proxy or `AWS_ENDPOINT_URL` is wrong.
fn unreachable_endpoint(mut e: CloudError, config: &aws_config::SdkConfig) -> CloudError {
    if matches!(e.code.as_str(), "DispatchFailure" | "Timeout" | "CredentialsTimeout") {
        let region = config.region().map(|r| r.as_ref().to_string()).unwrap_or_default();
        let endpoint =
            config.endpoint_url().map(str::to_string).unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com"));
        e.message = format!("cannot reach the AWS endpoint {endpoint}: {}", e.message);
    }
    e
}

impl Cloud for AwsCloud {
    async fn observe(&self, account: &Account, scope: &ObserveScope) -> AccountObservation {
        let clients = match Box::pin(self.clients(account)).await {
            Ok(c) => c,
            Err(e) => return e.into(),
        };
        match Box::pin(crate::observe::observe(&self.ctx(account), &clients, scope)).await {
            Ok(state) => AccountObservation::Ok(Box::new(state)),
            Err(e) => {
                self.forget_if_denied(account, &clients, &e).await;
                e.into()
            }
        }
    }

    async fn execute(&self, account: &Account, op: &Op) -> Result<Outcome, CloudError> {
        let clients = Box::pin(self.clients(account)).await?;
        let r = Box::pin(crate::kinds::execute(&self.ctx(account), &clients, op)).await;
        if let Err(e) = &r {
            self.forget_if_denied(account, &clients, e).await;
        }
        r
    }
}

/// Checks the fence (see `crosslink_cloud::fence`) before every attempt the SDK makes, its own
/// retries included: a retry of a mutating call after the lease is gone is not sent.
#[derive(Debug)]
struct FenceCheck;

impl Intercept for FenceCheck {
    fn name(&self) -> &'static str {
        "CrosslinkFenceCheck"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        crosslink_cloud::fence::check().map_err(BoxError::from)
    }
}

/// Where a call is made from: the account it acts in (its budgets are keyed by account id and
/// region), the limiter to wait for and who to report the call to.
pub(crate) struct Ctx<'a> {
    pub(crate) account: &'a str,
    account_id: &'a str,
    region: &'a str,
    observer: Option<&'a CallObserver>,
    limiter: &'a Limiter,
}

impl Ctx<'_> {
    async fn until_ready(&self, buckets: &[Bucket]) -> Duration {
        self.limiter.until_ready(self.account_id, self.region, buckets).await
    }

    /// Reports the call, and tells the limiter when AWS said "slow down".
    fn finish(
        &self,
        service: &'static str,
        operation: &'static str,
        buckets: &[Bucket],
        err: Option<&CloudError>,
        waited: Duration,
        duration: Duration,
    ) {
        if err.is_some_and(|e| e.kind == ErrorKind::Throttled) {
            self.limiter.throttled(self.account_id, self.region, buckets);
        }
        if let Some(observer) = self.observer {
            observer(&CallRecord {
                account: self.account.to_string(),
                service,
                operation,
                outcome: err.map_or("ok", |e| e.kind.as_str()),
                code: err.map(|e| e.code.clone()),
                duration,
                waited,
            });
        }
    }

    /// Waits for the rate limits, then sends the request (SDK requests are lazy: nothing is sent
    /// before the first poll). Returns the answer, the time waited and the time the request took.
    async fn send<T, E>(
        &self,
        call: &'static Call,
        request: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    ) -> (Result<T, CloudError>, Duration, Duration)
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let (service, operation, buckets, write) =
            (call.service.as_str(), call.operation, call.buckets, call.is_write());
        let waited = self.until_ready(buckets).await;
        // One of the engine's slots, taken only now: waiting for a token holds none.
        let _slot = match crosslink_cloud::slots::acquire().await {
            Ok(slot) => slot,
            Err(e) => return (Err(e), waited, Duration::ZERO),
        };
        // Sharded: the lease may have been lost while waiting for a token. Checked here, after
        // the wait and right before the request exists on the wire.
        if write && let Err(e) = crosslink_cloud::fence::check() {
            return (Err(e), waited, Duration::ZERO);
        }
        let start = Instant::now();
        let mut r = request.await.map_err(|e| from_sdk(&e));
        // A failure because the lease went away during the SDK's retries is that, whatever
        // the SDK calls it.
        if write
            && r.is_err()
            && let Err(e) = crosslink_cloud::fence::check()
        {
            r = Err(e);
        }
        let took = start.elapsed();
        self.finish(service, operation, buckets, r.as_ref().err(), waited, took);
        (r, waited, took)
    }

    /// One read request. The request is moved to the heap at once: SDK futures are large, and
    /// callers (the engine, tests) should not carry them on their stack.
    pub(crate) fn call<'s, T, E>(
        &'s self,
        call: &'static Call,
        request: impl Future<Output = Result<T, SdkError<E, HttpResponse>>> + Send + 's,
    ) -> BoxFuture<'s, Result<T, CloudError>>
    where
        T: Send + 's,
        E: ProvideErrorMetadata + std::error::Error + Send + 's + 'static,
    {
        Box::pin(async move {
            debug_assert!(!call.is_write(), "{} is a write: send it with `write`", call.operation);
            self.send(call, request).await.0
        })
    }

    /// One mutating request, logged with the resources it touches.
    pub(crate) fn write<'s, T, E>(
        &'s self,
        call: &'static Call,
        subject: &'s str,
        request: impl Future<Output = Result<T, SdkError<E, HttpResponse>>> + Send + 's,
    ) -> BoxFuture<'s, Result<T, CloudError>>
    where
        T: Send + 's,
        E: ProvideErrorMetadata + std::error::Error + Send + 's + 'static,
    {
        Box::pin(async move {
            debug_assert!(call.is_write(), "{} is a read: send it with `call`", call.operation);
            let (service, operation) = (call.service.as_str(), call.operation);
            let (r, waited, took) = self.send(call, request).await;
            let ms = took.as_millis() as u64;
            let waited_ms = waited.as_millis() as u64;
            match &r {
                Ok(_) => {
                    // The engine logs each change at info with its reason; this is the per-call detail.
                    tracing::debug!(account = %self.account, service, operation, resource = subject, ms, waited_ms, "aws call")
                }
                Err(e) => tracing::debug!(
                    account = %self.account, service, operation, resource = subject, ms, waited_ms, code = %e.code,
                    kind = e.kind.as_str(), "aws call failed"
                ),
            }
            r
        })
    }

    /// Every page of a paginated read; each page is one request and waits for the rate limits
    /// before it is sent. The SDK's paginator sends the next page's request only when the stream
    /// is polled again, so waiting before each `next()` delays exactly that request. `next_token`
    /// reads a page's continuation token: after the last page the stream is not polled again,
    /// so that no token is spent on a request that is never sent.
    pub(crate) async fn pages<O, E>(
        &self,
        call: &'static Call,
        mut stream: PaginationStream<Result<O, SdkError<E, HttpResponse>>>,
        next_token: impl Fn(&O) -> Option<&str>,
    ) -> Result<Vec<O>, CloudError>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let (service, operation, buckets) = (call.service.as_str(), call.operation, call.buckets);
        let mut out = Vec::new();
        loop {
            let waited = self.until_ready(buckets).await;
            let start = Instant::now();
            // None only when the paginator stopped on its own (a repeated token).
            let Some(page) = stream.next().await else { return Ok(out) };
            let page = page.map_err(|e| from_sdk(&e));
            self.finish(service, operation, buckets, page.as_ref().err(), waited, start.elapsed());
            let page = page?;
            let more = next_token(&page).is_some_and(|t| !t.is_empty());
            out.push(page);
            if !more {
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError;
    use aws_smithy_async::future::pagination_stream::fn_stream::FnStream;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;
    use crate::ratelimit::BACKOFF_START;

    type Answer<T> = Result<T, SdkError<GetCallerIdentityError, HttpResponse>>;

    /// How STS (or ELBv2) says "slow down".
    fn throttling() -> SdkError<GetCallerIdentityError, HttpResponse> {
        let meta = ErrorMetadata::builder().code("Throttling").message("Rate exceeded").build();
        let status = StatusCode::try_from(400u16).expect("a valid status");
        SdkError::service_error(GetCallerIdentityError::generic(meta), HttpResponse::new(status, SdkBody::empty()))
    }

    fn ok() -> std::future::Ready<Answer<()>> {
        std::future::ready(Ok(()))
    }

    /// An observer that keeps every call in the returned list.
    fn recorder() -> (CallObserver, Arc<StdMutex<Vec<CallRecord>>>) {
        let calls = Arc::new(StdMutex::new(Vec::new()));
        let sink = calls.clone();
        (Arc::new(move |r: &CallRecord| sink.lock().unwrap().push(r.clone())), calls)
    }

    fn ctx<'a>(limiter: &'a Limiter, observer: &'a CallObserver) -> Ctx<'a> {
        Ctx { account: "a", account_id: "111111111111", region: "eu-west-1", observer: Some(observer), limiter }
    }

    #[tokio::test(start_paused = true)]
    async fn calls_wait_for_their_buckets_and_report_it() {
        let limiter = Limiter::new(RateLimits::aws_defaults());
        let (observer, calls) = recorder();
        let ctx = ctx(&limiter, &observer);
        ctx.write(&kinds::stage::CREATE_DEPLOYMENT, "api stage", ok()).await.unwrap();
        ctx.write(&kinds::stage::CREATE_DEPLOYMENT, "api stage", ok()).await.unwrap();
        let err = ctx
            .call(&kinds::load_balancer::DESCRIBE_TAGS, std::future::ready(Answer::<()>::Err(throttling())))
            .await
            .unwrap_err();
        assert_eq!((err.kind, err.code.as_str()), (ErrorKind::Throttled, "Throttling"));
        ctx.call(&kinds::load_balancer::DESCRIBE_TAGS, ok()).await.unwrap();

        let calls = calls.lock().unwrap();
        let waited: Vec<Duration> = calls.iter().map(|c| c.waited).collect();
        assert_eq!(waited[0], Duration::ZERO);
        assert!(waited[1] >= Duration::from_secs(5) && waited[1] < Duration::from_millis(5100), "{waited:?}");
        assert_eq!(waited[2], Duration::ZERO);
        assert!(waited[3] >= BACKOFF_START, "the call after a throttling answer slows down: {waited:?}");
        assert_eq!((calls[2].outcome, calls[2].code.as_deref()), ("throttled", Some("Throttling")));
        // Time spent in the limiter is not request time: a duration is the request's alone, far
        // below the 5 s waited. (Real time, measured around a ready future: a millisecond bound
        // failed on a loaded machine, where building the throttling error took 3 ms.)
        assert!(calls.iter().all(|c| c.duration < Duration::from_secs(1)), "{calls:?}");
    }

    #[derive(Debug)]
    struct Page {
        next: Option<String>,
    }

    #[tokio::test(start_paused = true)]
    async fn each_page_waits_and_no_request_follows_the_last_page() {
        let limiter = Limiter::new(RateLimits::off().with(Bucket::Ec2Read, 1.0, 1));
        let (observer, calls) = recorder();
        let ctx = ctx(&limiter, &observer);
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        // Like the SDK's paginators, but it would go on for ever if it were polled after a page
        // without a token.
        let stream = PaginationStream::new(FnStream::new(move |tx| {
            Box::pin(async move {
                loop {
                    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                    let page = Page { next: (n < 3).then(|| format!("token-{n}")) };
                    if tx.send(Ok::<_, SdkError<GetCallerIdentityError, HttpResponse>>(page)).await.is_err() {
                        return;
                    }
                }
            })
        }));
        let start = tokio::time::Instant::now();
        let pages = ctx.pages(&kinds::account::DESCRIBE_VPCS, stream, |p: &Page| p.next.as_deref()).await.unwrap();
        assert_eq!(pages.len(), 3);
        assert_eq!(requests.load(Ordering::SeqCst), 3, "no request after the last page");
        // Pages 2 and 3 wait 1 s each for the 1/s bucket; nothing waits for a fourth.
        let took = start.elapsed();
        assert!(took >= Duration::from_secs(2) && took < Duration::from_millis(2100), "{took:?}");
        let calls = calls.lock().unwrap();
        assert_eq!(calls.len(), 3);
        assert_eq!(calls[0].waited, Duration::ZERO);
        assert!(calls[1..].iter().all(|c| c.waited >= Duration::from_millis(999)), "{calls:?}");
    }
}
