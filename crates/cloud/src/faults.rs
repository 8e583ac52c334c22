//! Scripted faults as a wrapper over any [`Cloud`]: [`Faulty<C>`] decides for each call whether
//! it fails, waits, or goes through to the cloud it wraps, the in-memory AWS
//! ([`crate::fake::FakeAws`]) or the AWS adapter, so that one fault script runs over both (as
//! mountpoint-s3's `FailureClient<C>` wraps any client). What AWS itself does (state, read lag,
//! fates of peerings and VPC links, quotas, idempotency) is the wrapped cloud's.
//!
//! - [`Fault`]: the next matching call fails (optionally after its change was made);
//! - [`Rule`]: a matching call, `times` times after `skip`, gets an [`Effect`]: throttling with
//!   each service's own code, 500 / 503, a timeout (with or without the change made), a lost
//!   answer, latency, or any error; reads (`Observe`) can be scripted too;
//! - [`Chaos`]: a seeded share of all calls fails at random (replayable: `rand`'s `StdRng`);
//! - a broken account: every call in it fails (bad credentials, say).
//!
//! A change that is made before its answer is lost is made by calling the wrapped cloud and then
//! answering the error. Delays (timeouts, latency) need a [`Clock`] (tests pass tokio's, usually
//! paused); without one they take no time. Every call is recorded ([`Faulty::attempts`]).

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crosslink_desired::Account;
use crosslink_plan::observed::AccountObservation;
use crosslink_plan::op::{Op, Service};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::{Cloud, CloudError, ErrorKind, ObserveScope, Outcome};

/// A scripted fault: the next call matching `op` (an operation name, or `*`) in `account` (an
/// account id, or `*`) fails with `error`.
#[derive(Clone, Debug)]
pub struct Fault {
    pub op: String,
    pub account: String,
    pub error: CloudError,
    /// Make the change anyway and then fail (a create whose answer was lost).
    pub after_effect: bool,
}

/// What happens to a call a [`Rule`] or [`Chaos`] picks.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Fails with this error; nothing changes.
    Fail(CloudError),
    /// The service's own throttling answer: EC2 `RequestLimitExceeded`, ELBv2
    /// `ThrottlingException`, API Gateway 429 `TooManyRequestsException`.
    Throttle,
    /// HTTP 500 `InternalError`.
    ServerError,
    /// HTTP 503 `ServiceUnavailable`.
    Unavailable,
    /// No answer for `after`, then the client gives up (`Timeout`). With `applied`, AWS made the
    /// change all the same.
    Timeout { after: Duration, applied: bool },
    /// The change is made, the answer is lost (a connection reset after the request went out).
    LostAnswer,
    /// Answers correctly, after this long.
    Latency(Duration),
}

impl Effect {
    /// A short fixed label, for counts.
    pub fn label(&self) -> &'static str {
        match self {
            Effect::Fail(_) => "fail",
            Effect::Throttle => "throttle",
            Effect::ServerError => "server-error",
            Effect::Unavailable => "unavailable",
            Effect::Timeout { applied: false, .. } => "timeout",
            Effect::Timeout { applied: true, .. } => "timeout-after-effect",
            Effect::LostAnswer => "lost-answer",
            Effect::Latency(_) => "latency",
        }
    }
}

/// A scripted behaviour: calls matching `op` (an operation name as `Op::name` gives it,
/// `Observe` for reading an account, or `*` for every mutating call) in `account` (an id or
/// `*`) whose parameters (their `Debug` text; the account id for reads) contain `matching` get
/// `effect`: the first `skip` matches pass, the next `times` are hit.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub op: String,
    pub account: String,
    pub matching: Option<String>,
    pub effect: Effect,
    pub skip: u32,
    pub times: u32,
}

impl Rule {
    /// Hits the next matching call once.
    pub fn new(op: &str, effect: Effect) -> Rule {
        Rule { op: op.into(), account: "*".into(), matching: None, effect, skip: 0, times: 1 }
    }
    pub fn times(mut self, n: u32) -> Rule {
        self.times = n;
        self
    }
    pub fn always(self) -> Rule {
        self.times(u32::MAX)
    }
    pub fn skip(mut self, n: u32) -> Rule {
        self.skip = n;
        self
    }
    pub fn in_account(mut self, account: &str) -> Rule {
        self.account = account.into();
        self
    }
    pub fn matching(mut self, text: &str) -> Rule {
        self.matching = Some(text.into());
        self
    }
}

/// Random faults: each call fails with probability `rate`, with an effect drawn from `kinds` by
/// weight. Deterministic for a seed (given the same sequence of calls).
#[derive(Clone, Debug, PartialEq)]
pub struct Chaos {
    pub rate: f64,
    pub seed: u64,
    pub kinds: Vec<(Effect, u32)>,
    /// The share of reads of an account (`Observe`) that fail (0: none). A read is many calls
    /// that the SDK retries on its own, so this is usually lower than `rate`.
    pub observe_rate: f64,
}

/// Time for delays and for the attempt log; tests pass tokio's (paused) clock.
pub trait Clock: Send + Sync {
    /// Time since some fixed start.
    fn now(&self) -> Duration;
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// One call as the wrapper saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// By the [`Clock`], if there is one.
    pub at: Option<Duration>,
    pub account: String,
    /// `Op::name`, or `Observe`.
    pub op: String,
    /// `ok`, or the error code answered.
    pub outcome: String,
    /// The label of the injected effect, if any.
    pub injected: Option<&'static str>,
    /// Whether a mutating call was passed on to the wrapped cloud (so its change was made unless
    /// that cloud answered an error; with a lost answer it was made). Reads: false.
    pub applied: bool,
    /// The call's parameters (the operation's `Debug` text; empty for reads).
    pub params: String,
}

fn err(kind: ErrorKind, code: &str, message: &str) -> CloudError {
    CloudError::new(kind, code, message)
}

/// The throttling answer of each service, as AWS gives it.
pub fn throttling(service: Service) -> CloudError {
    match service {
        Service::Ec2 => err(ErrorKind::Throttled, "RequestLimitExceeded", "Request limit exceeded."),
        Service::Elbv2 => err(ErrorKind::Throttled, "ThrottlingException", "Rate exceeded"),
        Service::ApiGateway => err(ErrorKind::Throttled, "TooManyRequestsException", "HTTP 429: Too Many Requests"),
        Service::Wafv2 => err(ErrorKind::Throttled, "ThrottlingException", "Rate exceeded"),
    }
}

pub fn server_error() -> CloudError {
    err(ErrorKind::Retryable, "InternalError", "HTTP 500: We encountered an internal error. Please try again.")
}

pub fn unavailable() -> CloudError {
    err(ErrorKind::Retryable, "ServiceUnavailable", "HTTP 503: Service Unavailable")
}

pub fn timeout() -> CloudError {
    err(ErrorKind::Retryable, "Timeout", "no answer in time: the request may or may not have been carried out")
}

pub fn connection_reset() -> CloudError {
    err(ErrorKind::Retryable, "DispatchFailure", "connection reset by peer after the request was sent")
}

/// What the wrapper decided for one call.
#[derive(Default)]
struct Decision {
    delay: Duration,
    /// Fail with this, without (false) or after (true) passing the call on.
    fail: Option<(CloudError, bool)>,
    injected: Option<&'static str>,
}

impl Decision {
    fn from_effect(e: &Effect, service: Option<Service>) -> Decision {
        let fail = |error: CloudError, applied: bool| Decision {
            fail: Some((error, applied)),
            injected: Some(e.label()),
            ..Decision::default()
        };
        match e {
            Effect::Fail(error) => fail(error.clone(), false),
            Effect::Throttle => fail(throttling(service.unwrap_or(Service::Ec2)), false),
            Effect::ServerError => fail(server_error(), false),
            Effect::Unavailable => fail(unavailable(), false),
            Effect::Timeout { after, applied } => Decision { delay: *after, ..fail(timeout(), *applied) },
            Effect::LostAnswer => fail(connection_reset(), true),
            Effect::Latency(d) => Decision { delay: *d, fail: None, injected: Some(e.label()) },
        }
    }
}

/// The script and what it did.
#[derive(Debug)]
struct Script {
    faults: VecDeque<Fault>,
    broken_accounts: BTreeMap<String, CloudError>,
    rules: Vec<Rule>,
    chaos: Option<Chaos>,
    /// The chaos draws, from the seed alone: a seed replays the same faults.
    rng: StdRng,
    injected: BTreeMap<&'static str, u64>,
    attempts: Vec<Attempt>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            faults: VecDeque::new(),
            broken_accounts: BTreeMap::new(),
            rules: Vec::new(),
            chaos: None,
            rng: StdRng::seed_from_u64(0),
            injected: BTreeMap::new(),
            attempts: Vec::new(),
        }
    }
}

/// Any [`Cloud`] with scripted faults in front of it. Derefs to the wrapped cloud, so a test
/// reaches the world it wraps (`seed_vpc`, `with_account`, ...) through it.
pub struct Faulty<C> {
    inner: C,
    script: Mutex<Script>,
    clock: Option<Arc<dyn Clock>>,
}

impl<C: fmt::Debug> fmt::Debug for Faulty<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Faulty")
            .field("inner", &self.inner)
            .field("script", &self.script)
            .field("clock", &self.clock.is_some())
            .finish()
    }
}

impl<C> std::ops::Deref for Faulty<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.inner
    }
}

impl<C> Faulty<C> {
    /// `inner` with no faults scripted yet: every call goes through.
    pub fn new(inner: C) -> Self {
        Faulty { inner, script: Mutex::new(Script::default()), clock: None }
    }

    /// Uses `clock` for delays (timeouts, latency) and to time attempts.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    pub fn inner(&self) -> &C {
        &self.inner
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> Option<Duration> {
        self.clock.as_ref().map(|c| c.now())
    }

    async fn wait(&self, d: Duration) {
        if let (Some(clock), false) = (&self.clock, d.is_zero()) {
            clock.sleep(d).await;
        }
    }

    /// Adds a scripted behaviour; rules are tried in the order added.
    pub fn script(&self, rule: Rule) {
        self.lock().rules.push(rule);
    }

    /// Removes every rule (the fault clears).
    pub fn clear_rules(&self) {
        self.lock().rules.clear();
    }

    /// The next call matching the fault fails with its error; faults are tried before rules.
    pub fn push_fault(&self, fault: Fault) {
        self.lock().faults.push_back(fault);
    }

    /// Random faults on a share of all calls, or none.
    pub fn set_chaos(&self, chaos: Option<Chaos>) {
        let mut s = self.lock();
        s.rng = StdRng::seed_from_u64(chaos.as_ref().map_or(0, |c| c.seed));
        s.chaos = chaos;
    }

    /// Makes every call in this account fail (bad credentials, say).
    pub fn break_account(&self, account_id: &str, error: CloudError) {
        self.lock().broken_accounts.insert(account_id.into(), error);
    }

    pub fn heal_account(&self, account_id: &str) {
        self.lock().broken_accounts.remove(account_id);
    }

    /// The error every call in this account gets, if it is broken.
    pub fn broken(&self, account_id: &str) -> Option<CloudError> {
        self.lock().broken_accounts.get(account_id).cloned()
    }

    /// Every call so far, reads included, failed ones included.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.lock().attempts.clone()
    }

    /// How many faults each effect of a [`Rule`] or [`Chaos`] injected so far (by
    /// [`Effect::label`]; queued [`Fault`]s are not counted here).
    pub fn injected(&self) -> BTreeMap<&'static str, u64> {
        self.lock().injected.clone()
    }

    /// What happens to this call: broken account, queued fault, rule, chaos (in this order).
    fn decide(&self, account_id: &str, name: &str, op: Option<&Op>) -> Decision {
        let mut s = self.lock();
        if let Some(e) = s.broken_accounts.get(account_id) {
            return Decision { fail: Some((e.clone(), false)), ..Decision::default() };
        }
        if op.is_some() {
            let fault = s
                .faults
                .iter()
                .position(|f| (f.op == "*" || f.op == name) && (f.account == "*" || f.account == account_id))
                .and_then(|i| s.faults.remove(i));
            if let Some(f) = fault {
                return Decision {
                    fail: Some((f.error, f.after_effect)),
                    injected: Some("fault"),
                    ..Decision::default()
                };
            }
        }
        let service = op.map(Op::service);
        let text = op.map(|o| format!("{o:?}")).unwrap_or_else(|| account_id.to_string());
        let mut hit = None;
        for r in s.rules.iter_mut() {
            let op_matches = r.op == name || (r.op == "*" && name != "Observe");
            let matches = op_matches
                && (r.account == "*" || r.account == account_id)
                && r.matching.as_deref().is_none_or(|m| text.contains(m));
            if !matches || r.times == 0 {
                continue;
            }
            if r.skip > 0 {
                r.skip -= 1;
                continue;
            }
            if r.times != u32::MAX {
                r.times -= 1;
            }
            hit = Some(r.effect.clone());
            break;
        }
        if hit.is_none()
            && let Some(chaos) = s.chaos.clone()
            && s.rng.random::<f64>() < if op.is_some() { chaos.rate } else { chaos.observe_rate }
        {
            let total: u64 = chaos.kinds.iter().map(|(_, n)| u64::from(*n)).sum();
            if total > 0 {
                let mut pick = s.rng.random_range(0..total);
                for (e, n) in &chaos.kinds {
                    if pick < u64::from(*n) {
                        hit = Some(e.clone());
                        break;
                    }
                    pick -= u64::from(*n);
                }
            }
        }
        let d = hit.map(|e| Decision::from_effect(&e, service)).unwrap_or_default();
        if let Some(label) = d.injected {
            *s.injected.entry(label).or_default() += 1;
        }
        d
    }

    fn record(&self, account_id: &str, op: Option<&Op>, outcome: Result<(), &str>, d: &Decision, applied: bool) {
        let at = self.now();
        self.lock().attempts.push(Attempt {
            at,
            account: account_id.into(),
            op: op.map_or("Observe", Op::name).into(),
            params: op.map(|o| format!("{o:?}")).unwrap_or_default(),
            outcome: match outcome {
                Ok(()) => "ok".into(),
                Err(code) => code.into(),
            },
            injected: d.injected,
            applied,
        });
    }
}

impl<C: Cloud> Cloud for Faulty<C> {
    async fn observe(&self, account: &Account, scope: &ObserveScope) -> AccountObservation {
        let id = &account.spec.account_id;
        let d = self.decide(id, "Observe", None);
        self.wait(d.delay).await;
        if let Some((e, _)) = &d.fail {
            self.record(id, None, Err(&e.code), &d, false);
            return e.clone().into();
        }
        let obs = self.inner.observe(account, scope).await;
        let outcome = match &obs {
            AccountObservation::Ok(_) => Ok(()),
            AccountObservation::Failed { code, .. } => Err(code.as_str()),
        };
        self.record(id, None, outcome, &d, false);
        obs
    }

    async fn execute(&self, account: &Account, op: &Op) -> Result<Outcome, CloudError> {
        let id = &account.spec.account_id;
        let d = self.decide(id, op.name(), Some(op));
        match &d.fail {
            // The change is made when the request arrives; the answer is lost (after the delay).
            Some((e, true)) => {
                let r = self.inner.execute(account, op).await.and(Err(e.clone()));
                self.record(id, Some(op), r.as_ref().map(|_| ()).map_err(|e| e.code.as_str()), &d, true);
                self.wait(d.delay).await;
                r
            }
            Some((e, false)) => {
                self.wait(d.delay).await;
                self.record(id, Some(op), Err(&e.code), &d, false);
                Err(e.clone())
            }
            None => {
                self.wait(d.delay).await;
                let r = self.inner.execute(account, op).await;
                self.record(id, Some(op), r.as_ref().map(|_| ()).map_err(|e| e.code.as_str()), &d, true);
                r
            }
        }
    }
}
