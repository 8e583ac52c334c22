//! An in-memory AWS for tests: several accounts, each with VPCs, peerings, route tables, load
//! balancers, target groups, VPC links and REST APIs, behaving like AWS where crosslink depends
//! on it (ids, cross-account peering, in-use errors, name collisions, idempotent NLB and target
//! group creates). Faults can be scripted:
//!
//! - [`Fault`]: the next matching call fails (optionally after its change was made);
//! - [`Rule`]: a matching call, `times` times after `skip`, gets an [`Effect`]: throttling with
//!   each service's own code, 500 / 503, a timeout (with or without the change made), a lost
//!   answer, latency, or any error; reads (`Observe`) can be scripted too;
//! - [`Chaos`]: a seeded share of all calls fails at random;
//! - read lag (eventual consistency): what is created stays invisible for a few reads;
//! - fates: the next peering ends `failed` / `rejected` / `expired`, the next VPC link `FAILED`.
//!
//! Delays (timeouts, latency) need a [`Clock`] (tests pass tokio's, usually paused); without
//! one they take no time. Every attempt is recorded ([`FakeAws::attempts`]) with its time.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::net::Ipv4Addr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crosslink_desired::Account;
use crosslink_plan::observed::*;
use crosslink_plan::op::{Op, Ref, Service};
use ipnet::Ipv4Net;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::{Cloud, CloudError, ErrorKind, ObserveScope, Outcome};

/// A scripted fault: the next calls matching `op` (an operation name, or `*`) in `account`
/// (an account id, or `*`) fail with `error`.
#[derive(Clone, Debug)]
pub struct Fault {
    pub op: String,
    pub account: String,
    pub error: CloudError,
    /// Apply the change anyway and then fail (a create whose answer was lost).
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
/// `*`) whose parameters (their `Debug` text) contain `matching` get `effect`: the first `skip`
/// matches pass, the next `times` are hit.
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

/// One call as the fake saw it.
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
    /// Whether the change was made (a mutating call that succeeded, or whose answer was lost).
    pub applied: bool,
    /// The call's parameters (the operation's `Debug` text; empty for reads).
    pub params: String,
}

/// The throttling answer of each service, as AWS gives it.
pub fn throttling(service: Service) -> CloudError {
    match service {
        Service::Ec2 => err(ErrorKind::Throttled, "RequestLimitExceeded", "Request limit exceeded."),
        Service::Elbv2 => err(ErrorKind::Throttled, "ThrottlingException", "Rate exceeded"),
        Service::ApiGateway => err(ErrorKind::Throttled, "TooManyRequestsException", "HTTP 429: Too Many Requests"),
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

/// What the fake decided for one call.
#[derive(Default)]
struct Decision {
    delay: Duration,
    /// Fail with this, without (false) or after (true) making the change.
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

/// The chaos draws, from the seed alone: a seed replays the same faults.
#[derive(Debug)]
struct Draws(StdRng);

impl Default for Draws {
    fn default() -> Self {
        Draws(StdRng::seed_from_u64(0))
    }
}

#[derive(Debug, Default)]
struct AccountWorld {
    region: String,
    vpcs: BTreeMap<String, Vpc>,
    subnets: BTreeMap<String, String>,
    route_tables: BTreeMap<String, RouteTable>,
    load_balancers: Vec<LoadBalancer>,
    listeners: Vec<Listener>,
    target_groups: Vec<TargetGroup>,
    vpc_links: Vec<VpcLink>,
    rest_apis: Vec<RestApi>,
}

#[derive(Debug, Default)]
struct World {
    accounts: BTreeMap<String, AccountWorld>,
    peerings: Vec<Peering>,
    next: u64,
    faults: VecDeque<Fault>,
    broken_accounts: BTreeMap<String, CloudError>,
    /// Status given to new VPC links (AWS: PENDING for minutes; moto: AVAILABLE).
    new_vpc_link_status: String,
    calls: Vec<(String, String)>,
    rules: Vec<Rule>,
    chaos: Option<Chaos>,
    rng: Draws,
    injected: BTreeMap<&'static str, u64>,
    attempts: Vec<Attempt>,
    /// Reads a new resource stays invisible for.
    read_lag: u32,
    /// (account id, resource id) -> reads of that account it is still invisible for.
    hidden: BTreeMap<(String, String), u32>,
    /// Ids answered by creates while read lag was on.
    created: std::collections::BTreeSet<String>,
    /// The status the next created peerings end in (failed, rejected, expired).
    peering_fates: VecDeque<PeeringStatus>,
    /// The status (and message) the next created VPC links end in.
    vpc_link_fates: VecDeque<(String, String)>,
    /// Calls from the accepter a new peering stays unknown to (see `set_accepter_lag`).
    accepter_lag: u32,
    /// Peering id -> the accepter's AcceptVpcPeeringConnection calls still answered NotFound.
    unseen_by_accepter: BTreeMap<String, u32>,
}

/// The fake. Cheap to share behind an `Arc`.
pub struct FakeAws {
    world: Mutex<World>,
    clock: Option<Arc<dyn Clock>>,
}

impl fmt::Debug for FakeAws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeAws").field("world", &self.world).field("clock", &self.clock.is_some()).finish()
    }
}

impl Default for FakeAws {
    fn default() -> Self {
        Self::new()
    }
}

fn err(kind: ErrorKind, code: &str, message: impl Into<String>) -> CloudError {
    CloudError::new(kind, code, message)
}

fn not_found(code: &str, id: &str) -> CloudError {
    err(ErrorKind::NotFound, code, format!("{id} does not exist"))
}

fn known(r: &Ref) -> Result<&str, CloudError> {
    r.known().ok_or_else(|| err(ErrorKind::Permanent, "ValidationError", format!("unresolved reference {r}")))
}

impl FakeAws {
    pub fn new() -> Self {
        FakeAws {
            world: Mutex::new(World { new_vpc_link_status: "AVAILABLE".into(), ..World::default() }),
            clock: None,
        }
    }

    /// Uses `clock` for delays (timeouts, latency) and to time attempts.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    fn now(&self) -> Option<Duration> {
        self.clock.as_ref().map(|c| c.now())
    }

    /// Adds a scripted behaviour; rules are tried in the order added.
    pub fn script(&self, rule: Rule) {
        self.lock().rules.push(rule);
    }

    /// Removes every rule (the fault clears).
    pub fn clear_rules(&self) {
        self.lock().rules.clear();
    }

    /// Random faults on a share of all calls, or none.
    pub fn set_chaos(&self, chaos: Option<Chaos>) {
        let mut w = self.lock();
        w.rng = Draws(StdRng::seed_from_u64(chaos.as_ref().map_or(0, |c| c.seed)));
        w.chaos = chaos;
    }

    /// Eventual consistency: a resource created from now on stays out of the next `reads`
    /// reads of each account that would see it.
    pub fn set_read_lag(&self, reads: u32) {
        self.lock().read_lag = reads;
    }

    /// Eventual consistency across accounts: a peering created from now on is unknown to the
    /// accepter's first `calls` AcceptVpcPeeringConnection calls, which answer
    /// `InvalidVpcPeeringConnectionID.NotFound` (AWS, right after the request is made).
    pub fn set_accepter_lag(&self, calls: u32) {
        self.lock().accepter_lag = calls;
    }

    /// The next created peering ends in `status` (AWS: `failed` at once when it cannot be
    /// made, `rejected` by the accepter, `expired` after a week unanswered).
    pub fn push_peering_fate(&self, status: PeeringStatus) {
        self.lock().peering_fates.push_back(status);
    }

    /// The next created VPC link ends in `status` (e.g. `FAILED`) with this message.
    pub fn push_vpc_link_fate(&self, status: &str, message: &str) {
        self.lock().vpc_link_fates.push_back((status.into(), message.into()));
    }

    /// Every call so far, reads included, failed ones included.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.lock().attempts.clone()
    }

    /// How many faults each effect injected so far (by [`Effect::label`]).
    pub fn injected(&self) -> BTreeMap<&'static str, u64> {
        self.lock().injected.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates a VPC with one subnet per `subnets` and one route table; returns (subnets, rtb).
    pub fn seed_vpc(&self, account: &str, region: &str, vpc_id: &str, cidr: &str, subnet_ids: &[&str], rtb: &str) {
        let mut w = self.lock();
        let a = w.accounts.entry(account.to_string()).or_default();
        a.region = region.to_string();
        a.vpcs.insert(vpc_id.into(), Vpc { id: vpc_id.into(), cidrs: vec![cidr.parse().expect("cidr")] });
        for s in subnet_ids {
            a.subnets.insert(s.to_string(), vpc_id.into());
        }
        a.route_tables.insert(rtb.into(), RouteTable { id: rtb.into(), vpc_id: vpc_id.into(), routes: vec![] });
    }

    pub fn add_route_table(&self, account: &str, vpc_id: &str, rtb: &str) {
        let mut w = self.lock();
        let a = w.accounts.entry(account.to_string()).or_default();
        a.route_tables.insert(rtb.into(), RouteTable { id: rtb.into(), vpc_id: vpc_id.into(), routes: vec![] });
    }

    /// Makes every call in this account fail (bad credentials, say).
    pub fn break_account(&self, account_id: &str, error: CloudError) {
        self.lock().broken_accounts.insert(account_id.into(), error);
    }

    pub fn heal_account(&self, account_id: &str) {
        self.lock().broken_accounts.remove(account_id);
    }

    pub fn push_fault(&self, fault: Fault) {
        self.lock().faults.push_back(fault);
    }

    pub fn set_new_vpc_link_status(&self, status: &str) {
        self.lock().new_vpc_link_status = status.into();
    }

    /// Sets the status of every VPC link (e.g. PENDING -> AVAILABLE, as AWS does after minutes).
    pub fn set_vpc_link_status(&self, status: &str) {
        let mut w = self.lock();
        for a in w.accounts.values_mut() {
            for v in &mut a.vpc_links {
                v.status = status.into();
            }
        }
    }

    /// Listener ports in an account, for assertions.
    pub fn observe_account_listeners(&self, account: &str) -> Vec<u16> {
        self.lock().accounts.get(account).map(|a| a.listeners.iter().map(|x| x.port).collect()).unwrap_or_default()
    }

    /// Whether every route table of an account is empty, for assertions.
    pub fn observe_route_tables_empty(&self, account: &str) -> bool {
        self.lock().accounts.get(account).is_none_or(|a| a.route_tables.values().all(|t| t.routes.is_empty()))
    }

    /// The mutating calls made so far: (account id, operation name).
    pub fn calls(&self) -> Vec<(String, String)> {
        self.lock().calls.clone()
    }

    /// Direct access for tests that inject drift out of band.
    pub fn with_account<R>(&self, account: &str, f: impl FnOnce(&mut AccountState) -> R) -> R {
        let mut w = self.lock();
        let peerings = w.peerings.clone();
        let a = w.accounts.entry(account.to_string()).or_default();
        let mut st = snapshot(account, a, &peerings);
        let r = f(&mut st);
        a.vpcs = st.vpcs;
        a.route_tables = st.route_tables;
        a.load_balancers = st.load_balancers;
        a.listeners = st.listeners;
        a.target_groups = st.target_groups;
        a.vpc_links = st.vpc_links;
        a.rest_apis = st.rest_apis;
        for p in st.peerings {
            if let Some(x) = w.peerings.iter_mut().find(|x| x.id == p.id) {
                *x = p;
            }
        }
        r
    }

    /// Reads an account as the AWS adapter would.
    pub fn observe_account(&self, account_id: &str) -> AccountObservation {
        let w = self.lock();
        if let Some(e) = w.broken_accounts.get(account_id) {
            return e.clone().into();
        }
        match w.accounts.get(account_id) {
            Some(a) => AccountObservation::Ok(Box::new(snapshot(account_id, a, &w.peerings))),
            None => {
                AccountObservation::Ok(Box::new(AccountState { account_id: account_id.into(), ..Default::default() }))
            }
        }
    }

    /// Performs an operation synchronously (scripted delays take no time here).
    pub fn apply(&self, account_id: &str, op: &Op) -> Result<Outcome, CloudError> {
        let d = self.decide(account_id, op.name(), Some(op));
        self.perform(account_id, op, d)
    }

    /// Reads an account as the engine does: scripted faults, chaos and read lag apply.
    pub fn observe_as_engine(&self, account_id: &str) -> AccountObservation {
        let d = self.decide(account_id, "Observe", None);
        self.observe_decided(account_id, d)
    }

    /// What happens to this call: broken account, queued fault, rule, chaos (in this order).
    fn decide(&self, account_id: &str, name: &str, op: Option<&Op>) -> Decision {
        let mut w = self.lock();
        if let Some(e) = w.broken_accounts.get(account_id) {
            return Decision { fail: Some((e.clone(), false)), ..Decision::default() };
        }
        if let Some(op) = op {
            let fault = w
                .faults
                .iter()
                .position(|f| (f.op == "*" || f.op == op.name()) && (f.account == "*" || f.account == account_id))
                .and_then(|i| w.faults.remove(i));
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
        for r in w.rules.iter_mut() {
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
            && let Some(chaos) = w.chaos.clone()
            && w.rng.0.random::<f64>() < if op.is_some() { chaos.rate } else { chaos.observe_rate }
        {
            let total: u64 = chaos.kinds.iter().map(|(_, n)| u64::from(*n)).sum();
            if total > 0 {
                let mut pick = w.rng.0.random_range(0..total);
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
            *w.injected.entry(label).or_default() += 1;
        }
        d
    }

    fn record(
        &self,
        account_id: &str,
        op: Option<&Op>,
        outcome: &Result<(), &CloudError>,
        d: &Decision,
        applied: bool,
    ) {
        let at = self.now();
        self.lock().attempts.push(Attempt {
            at,
            account: account_id.into(),
            op: op.map_or("Observe", Op::name).into(),
            params: op.map(|o| format!("{o:?}")).unwrap_or_default(),
            outcome: match outcome {
                Ok(()) => "ok".into(),
                Err(e) => e.code.clone(),
            },
            injected: d.injected,
            applied,
        });
    }

    fn perform(&self, account_id: &str, op: &Op, d: Decision) -> Result<Outcome, CloudError> {
        if let Some((e, false)) = &d.fail {
            self.record(account_id, Some(op), &Err(e), &d, false);
            return Err(e.clone());
        }
        let r = {
            let mut w = self.lock();
            w.calls.push((account_id.to_string(), op.name().to_string()));
            let r = w.apply(account_id, op);
            // Only what is new is hidden: an idempotent create answers with what exists.
            if let Ok(Outcome { created: Some(id), .. }) = &r
                && w.read_lag > 0
                && w.created.insert(id.clone())
            {
                let lag = w.read_lag;
                w.hidden.insert((account_id.to_string(), id.clone()), lag);
                if let Op::CreateVpcPeeringConnection { peer_owner_id, .. } = op {
                    w.hidden.insert((peer_owner_id.clone(), id.clone()), lag);
                }
            }
            r
        };
        let r = match (r, &d.fail) {
            (Ok(_), Some((e, true))) => Err(e.clone()),
            (r, _) => r,
        };
        self.record(account_id, Some(op), &r.as_ref().map(|_| ()), &d, true);
        r
    }

    fn observe_decided(&self, account_id: &str, d: Decision) -> AccountObservation {
        if let Some((e, _)) = &d.fail {
            self.record(account_id, None, &Err(e), &d, false);
            return e.clone().into();
        }
        let obs = {
            let mut w = self.lock();
            let mut obs = match w.accounts.get(account_id) {
                Some(a) => snapshot(account_id, a, &w.peerings),
                None => AccountState { account_id: account_id.into(), ..Default::default() },
            };
            let hidden: Vec<String> =
                w.hidden.keys().filter(|(a, _)| a == account_id).map(|(_, id)| id.clone()).collect();
            if !hidden.is_empty() {
                let gone = |id: &String| hidden.contains(id);
                obs.peerings.retain(|x| !gone(&x.id));
                obs.load_balancers.retain(|x| !gone(&x.arn));
                obs.listeners.retain(|x| !gone(&x.arn));
                obs.target_groups.retain(|x| !gone(&x.arn));
                obs.vpc_links.retain(|x| !gone(&x.id));
                obs.rest_apis.retain(|x| !gone(&x.id));
                for api in &mut obs.rest_apis {
                    api.resources.retain(|r| !gone(&r.id));
                }
                for id in hidden {
                    let key = (account_id.to_string(), id);
                    if let Some(n) = w.hidden.get_mut(&key) {
                        *n -= 1;
                        if *n == 0 {
                            w.hidden.remove(&key);
                        }
                    }
                }
            }
            obs
        };
        self.record(account_id, None, &Ok(()), &d, false);
        AccountObservation::Ok(Box::new(obs))
    }
}

fn snapshot(account_id: &str, a: &AccountWorld, peerings: &[Peering]) -> AccountState {
    AccountState {
        account_id: account_id.into(),
        region: a.region.clone(),
        vpcs: a.vpcs.clone(),
        peerings: peerings
            .iter()
            .filter(|p| p.requester_account == account_id || p.accepter_account == account_id)
            .cloned()
            .collect(),
        route_tables: a.route_tables.clone(),
        load_balancers: a.load_balancers.clone(),
        listeners: a.listeners.clone(),
        target_groups: a.target_groups.clone(),
        vpc_links: a.vpc_links.clone(),
        rest_apis: a.rest_apis.clone(),
    }
}

impl World {
    fn id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{:017x}", self.next)
    }

    fn short_id(&mut self) -> String {
        self.next += 1;
        format!("{:010x}", self.next)
    }

    fn acct(&mut self, id: &str) -> &mut AccountWorld {
        self.accounts.entry(id.to_string()).or_default()
    }

    fn apply(&mut self, me: &str, op: &Op) -> Result<Outcome, CloudError> {
        let created = |s: String| Ok(Outcome::created(s));
        let done = Ok(Outcome::default());
        match op {
            Op::CreateVpcPeeringConnection { vpc_id, peer_vpc_id, peer_owner_id, tags, .. } => {
                if !self.acct(me).vpcs.contains_key(vpc_id) {
                    return Err(not_found("InvalidVpcID.NotFound", vpc_id));
                }
                if !self.acct(peer_owner_id).vpcs.contains_key(peer_vpc_id) {
                    return Err(not_found("InvalidVpcID.NotFound", peer_vpc_id));
                }
                let id = self.id("pcx-");
                let status = self.peering_fates.pop_front().unwrap_or(PeeringStatus::PendingAcceptance);
                self.peerings.push(Peering {
                    id: id.clone(),
                    requester_vpc: vpc_id.clone(),
                    requester_account: me.into(),
                    accepter_vpc: peer_vpc_id.clone(),
                    accepter_account: peer_owner_id.clone(),
                    status,
                    tags: tags.clone(),
                    accepter_dns_resolution: false,
                });
                if self.accepter_lag > 0 {
                    self.unseen_by_accepter.insert(id.clone(), self.accepter_lag);
                }
                Ok(Outcome::created(id).in_state(status.as_str()))
            }
            Op::AcceptVpcPeeringConnection { peering_id } => {
                let id = known(peering_id)?;
                let p = self
                    .peerings
                    .iter_mut()
                    .find(|p| p.id == id)
                    .ok_or_else(|| not_found("InvalidVpcPeeringConnectionID.NotFound", id))?;
                if p.accepter_account == me
                    && let Some(n) = self.unseen_by_accepter.get_mut(id)
                {
                    *n -= 1;
                    if *n == 0 {
                        self.unseen_by_accepter.remove(id);
                    }
                    return Err(not_found("InvalidVpcPeeringConnectionID.NotFound", id));
                }
                let p = self.peerings.iter_mut().find(|p| p.id == id).expect("found above");
                if p.accepter_account != me {
                    return Err(err(ErrorKind::Permanent, "OperationNotPermitted", "only the accepter can accept"));
                }
                if p.status != PeeringStatus::PendingAcceptance {
                    return Err(err(ErrorKind::Conflict, "InvalidStateTransition", format!("{id} is {:?}", p.status)));
                }
                p.status = PeeringStatus::Active;
                Ok(Outcome::default().in_state(PeeringStatus::Active.as_str()))
            }
            Op::SetPeeringDnsResolution { peering_id, allow } => {
                let peering_id = known(peering_id)?.to_string();
                let p = self
                    .peerings
                    .iter_mut()
                    .find(|p| p.id == peering_id && !p.status.is_dead())
                    .ok_or_else(|| not_found("InvalidVpcPeeringConnectionID.NotFound", &peering_id))?;
                if p.accepter_account != me {
                    return Err(err(
                        ErrorKind::Permanent,
                        "OperationNotPermitted",
                        "the accepter's options are the accepter's",
                    ));
                }
                if p.status != PeeringStatus::Active {
                    return Err(err(
                        ErrorKind::Conflict,
                        "InvalidStateTransition",
                        format!("{peering_id} is {:?}", p.status),
                    ));
                }
                p.accepter_dns_resolution = *allow;
                done
            }
            Op::DeleteVpcPeeringConnection { peering_id } => {
                let p = self
                    .peerings
                    .iter_mut()
                    .find(|p| &p.id == peering_id && !p.status.is_dead())
                    .ok_or_else(|| not_found("InvalidVpcPeeringConnectionID.NotFound", peering_id))?;
                p.status = PeeringStatus::Deleted;
                done
            }
            Op::CreateRoute { route_table_id, destination, peering_id } => {
                let pcx = known(peering_id)?.to_string();
                let t = self.table(me, route_table_id)?;
                if t.routes.iter().any(|r| r.destination == *destination) {
                    return Err(err(ErrorKind::Permanent, "RouteAlreadyExists", format!("{destination} exists")));
                }
                t.routes.push(Route {
                    destination: *destination,
                    peering_id: Some(pcx),
                    other_target: None,
                    blackhole: false,
                });
                done
            }
            Op::ReplaceRoute { route_table_id, destination, peering_id } => {
                let pcx = known(peering_id)?.to_string();
                let t = self.table(me, route_table_id)?;
                let r = t
                    .routes
                    .iter_mut()
                    .find(|r| r.destination == *destination)
                    .ok_or_else(|| not_found("InvalidRoute.NotFound", &destination.to_string()))?;
                *r = Route { destination: *destination, peering_id: Some(pcx), other_target: None, blackhole: false };
                done
            }
            Op::DeleteRoute { route_table_id, destination } => {
                let t = self.table(me, route_table_id)?;
                let before = t.routes.len();
                t.routes.retain(|r| r.destination != *destination);
                if t.routes.len() == before {
                    return Err(not_found("InvalidRoute.NotFound", &destination.to_string()));
                }
                done
            }
            Op::CreateLoadBalancer { name, subnet_ids, tags } => {
                let n = self.short_id();
                let a = self.acct(me);
                // AWS: creating a load balancer again with the same settings returns it.
                if let Some(l) = a.load_balancers.iter().find(|l| &l.name == name) {
                    if &l.subnet_ids == subnet_ids {
                        return Ok(Outcome {
                            dns_name: Some(l.dns_name.clone()),
                            ..Outcome::created(l.arn.clone()).in_state(l.state.clone())
                        });
                    }
                    return Err(err(ErrorKind::Permanent, "DuplicateLoadBalancerName", format!("{name} exists")));
                }
                let vpc = subnet_ids.first().and_then(|s| a.subnets.get(s)).cloned().ok_or_else(|| {
                    not_found("SubnetNotFound", subnet_ids.first().map(String::as_str).unwrap_or("-"))
                })?;
                let arn = format!("arn:aws:elasticloadbalancing:{}:{me}:loadbalancer/net/{name}/{n}", a.region);
                let dns_name = format!("{name}-{n}.elb.{}.amazonaws.com", a.region);
                a.load_balancers.push(LoadBalancer {
                    arn: arn.clone(),
                    name: name.clone(),
                    dns_name: dns_name.clone(),
                    vpc_id: vpc,
                    kind: "network".into(),
                    internal: true,
                    state: "active".into(),
                    subnet_ids: subnet_ids.clone(),
                    tags: tags.clone(),
                });
                Ok(Outcome { dns_name: Some(dns_name), ..Outcome::created(arn).in_state("active") })
            }
            Op::DeleteLoadBalancer { arn } => {
                let a = self.acct(me);
                if a.vpc_links.iter().any(|v| v.target_arns.contains(arn) && v.status != "DELETING") {
                    return Err(err(ErrorKind::Conflict, "ResourceInUse", "a VPC link uses the load balancer"));
                }
                let before = a.load_balancers.len();
                a.load_balancers.retain(|l| &l.arn != arn);
                if before == a.load_balancers.len() {
                    return Err(not_found("LoadBalancerNotFound", arn));
                }
                a.listeners.retain(|x| &x.load_balancer_arn != arn);
                done
            }
            Op::CreateTargetGroup { name, vpc_id, port, health_check, tags } => {
                let n = self.short_id();
                let a = self.acct(me);
                // AWS: creating a target group again with the same settings returns it.
                if let Some(t) = a.target_groups.iter().find(|t| &t.name == name) {
                    if &t.vpc_id == vpc_id && t.port == *port && &t.health_check == health_check {
                        return created(t.arn.clone());
                    }
                    return Err(err(ErrorKind::Permanent, "DuplicateTargetGroupName", format!("{name} exists")));
                }
                let arn = format!("arn:aws:elasticloadbalancing:{}:{me}:targetgroup/{name}/{n}", a.region);
                a.target_groups.push(TargetGroup {
                    arn: arn.clone(),
                    name: name.clone(),
                    vpc_id: vpc_id.clone(),
                    protocol: "TCP".into(),
                    port: *port,
                    target_type: "ip".into(),
                    health_check: health_check.clone(),
                    tags: tags.clone(),
                    targets: vec![],
                });
                created(arn)
            }
            Op::ModifyTargetGroup { arn, health_check } => {
                let tg = self.tg(me, arn)?;
                tg.health_check = health_check.clone();
                done
            }
            Op::DeleteTargetGroup { arn } => {
                let a = self.acct(me);
                if a.listeners.iter().any(|x| x.target_group_arn.as_ref() == Some(arn)) {
                    return Err(err(ErrorKind::Conflict, "ResourceInUse", "a listener uses the target group"));
                }
                let before = a.target_groups.len();
                a.target_groups.retain(|t| &t.arn != arn);
                if before == a.target_groups.len() {
                    return Err(not_found("TargetGroupNotFound", arn));
                }
                done
            }
            Op::RegisterTargets { target_group_arn, targets } => {
                let arn = known(target_group_arn)?.to_string();
                let tg = self.tg(me, &arn)?;
                for (ip, port) in targets {
                    if !tg.targets.iter().any(|t| t.ip == *ip && t.port == *port) {
                        tg.targets.push(target(*ip, *port));
                    }
                }
                done
            }
            Op::DeregisterTargets { target_group_arn, targets } => {
                let tg = self.tg(me, target_group_arn)?;
                tg.targets.retain(|t| !targets.contains(&(t.ip, t.port)));
                done
            }
            Op::CreateListener { load_balancer_arn, port, target_group_arn, tags } => {
                let (lb, tg) = (known(load_balancer_arn)?.to_string(), known(target_group_arn)?.to_string());
                let n = self.short_id();
                let a = self.acct(me);
                let Some(l) = a.load_balancers.iter().find(|l| l.arn == lb) else {
                    return Err(not_found("LoadBalancerNotFound", &lb));
                };
                // AWS: creating a listener again with the same settings returns it.
                if let Some(x) = a.listeners.iter().find(|x| x.load_balancer_arn == lb && x.port == *port) {
                    if x.target_group_arn.as_deref() == Some(tg.as_str()) {
                        return created(x.arn.clone());
                    }
                    return Err(err(ErrorKind::Permanent, "DuplicateListener", format!("port {port} is in use")));
                }
                if !a.target_groups.iter().any(|t| t.arn == tg) {
                    return Err(not_found("TargetGroupNotFound", &tg));
                }
                let arn = format!("{}/{n}", l.arn.replace(":loadbalancer/", ":listener/"));
                a.listeners.push(Listener {
                    arn: arn.clone(),
                    load_balancer_arn: lb,
                    port: *port,
                    protocol: "TCP".into(),
                    target_group_arn: Some(tg),
                    tags: tags.clone(),
                });
                created(arn)
            }
            Op::ModifyListener { arn, port, target_group_arn } => {
                let tg = known(target_group_arn)?.to_string();
                let a = self.acct(me);
                let lb = a.listeners.iter().find(|x| &x.arn == arn).map(|x| x.load_balancer_arn.clone());
                let Some(lb) = lb else { return Err(not_found("ListenerNotFound", arn)) };
                if a.listeners.iter().any(|x| x.load_balancer_arn == lb && x.port == *port && &x.arn != arn) {
                    return Err(err(ErrorKind::Permanent, "DuplicateListener", format!("port {port} is in use")));
                }
                let x = a.listeners.iter_mut().find(|x| &x.arn == arn).expect("found above");
                x.port = *port;
                x.target_group_arn = Some(tg);
                done
            }
            Op::DeleteListener { arn } => {
                let a = self.acct(me);
                let before = a.listeners.len();
                a.listeners.retain(|x| &x.arn != arn);
                if before == a.listeners.len() {
                    return Err(not_found("ListenerNotFound", arn));
                }
                done
            }
            Op::AddElbTags { arn, tags } => {
                let a = self.acct(me);
                let t = a
                    .load_balancers
                    .iter_mut()
                    .find(|x| &x.arn == arn)
                    .map(|x| &mut x.tags)
                    .or_else(|| a.target_groups.iter_mut().find(|x| &x.arn == arn).map(|x| &mut x.tags))
                    .or_else(|| a.listeners.iter_mut().find(|x| &x.arn == arn).map(|x| &mut x.tags))
                    .ok_or_else(|| not_found("LoadBalancerNotFound", arn))?;
                t.extend(tags.clone());
                done
            }
            Op::CreateEc2Tags { resource_id, tags } => {
                let p = self
                    .peerings
                    .iter_mut()
                    .find(|p| &p.id == resource_id)
                    .ok_or_else(|| not_found("InvalidVpcPeeringConnectionID.NotFound", resource_id))?;
                p.tags.extend(tags.clone());
                done
            }
            Op::CreateVpcLink { name, load_balancer_arn, tags } => {
                let lb = known(load_balancer_arn)?.to_string();
                let id = self.short_id();
                let (status, status_message) = match self.vpc_link_fates.pop_front() {
                    Some((status, message)) => (status, Some(message)),
                    None => (self.new_vpc_link_status.clone(), None),
                };
                self.acct(me).vpc_links.push(VpcLink {
                    id: id.clone(),
                    name: name.clone(),
                    target_arns: vec![lb],
                    status: status.clone(),
                    status_message,
                    tags: tags.clone(),
                });
                Ok(Outcome::created(id).in_state(status))
            }
            Op::DeleteVpcLink { id } => {
                let a = self.acct(me);
                let before = a.vpc_links.len();
                a.vpc_links.retain(|v| &v.id != id);
                if before == a.vpc_links.len() {
                    return Err(not_found("NotFoundException", id));
                }
                done
            }
            Op::CreateRestApi { name, tags } => {
                let id = self.short_id();
                let root = self.short_id();
                self.acct(me).rest_apis.push(RestApi {
                    id: id.clone(),
                    name: name.clone(),
                    tags: tags.clone(),
                    resources: vec![ApiResource {
                        id: root.clone(),
                        parent_id: None,
                        path: "/".into(),
                        methods: BTreeMap::new(),
                    }],
                    stages: vec![],
                });
                Ok(Outcome { root_resource_id: Some(root), ..Outcome::created(id) })
            }
            Op::DeleteRestApi { id } => {
                let a = self.acct(me);
                let before = a.rest_apis.len();
                a.rest_apis.retain(|x| &x.id != id);
                if before == a.rest_apis.len() {
                    return Err(not_found("NotFoundException", id));
                }
                done
            }
            Op::CreateResource { rest_api_id, parent_id, path_part, .. } => {
                let (api, parent) = (known(rest_api_id)?.to_string(), known(parent_id)?.to_string());
                let id = self.short_id();
                let api = self.api(me, &api)?;
                let parent_path = api
                    .resources
                    .iter()
                    .find(|r| r.id == parent)
                    .map(|r| r.path.clone())
                    .ok_or_else(|| not_found("NotFoundException", &parent))?;
                let path =
                    if parent_path == "/" { format!("/{path_part}") } else { format!("{parent_path}/{path_part}") };
                if api.resources.iter().any(|r| r.path == path) {
                    return Err(err(ErrorKind::Conflict, "ConflictException", format!("{path} exists")));
                }
                api.resources.push(ApiResource {
                    id: id.clone(),
                    parent_id: Some(parent),
                    path,
                    methods: BTreeMap::new(),
                });
                created(id)
            }
            Op::DeleteResource { rest_api_id, resource_id, .. } => {
                let api = self.api(me, rest_api_id)?;
                let path = api
                    .resources
                    .iter()
                    .find(|r| &r.id == resource_id)
                    .map(|r| r.path.clone())
                    .ok_or_else(|| not_found("NotFoundException", resource_id))?;
                api.resources.retain(|r| r.path != path && !r.path.starts_with(&format!("{path}/")));
                done
            }
            Op::PutProxyMethod { rest_api_id, resource_id, http_method, uri, vpc_link_id, .. } => {
                let (api, res, link) =
                    (known(rest_api_id)?.to_string(), known(resource_id)?.to_string(), known(vpc_link_id)?.to_string());
                let api = self.api(me, &api)?;
                let r = api
                    .resources
                    .iter_mut()
                    .find(|r| r.id == res)
                    .ok_or_else(|| not_found("NotFoundException", &res))?;
                r.methods.insert(
                    http_method.clone(),
                    ApiMethod {
                        authorization_type: "NONE".into(),
                        integration: Some(Integration {
                            kind: "HTTP_PROXY".into(),
                            http_method: Some(http_method.clone()),
                            uri: Some(uri.clone()),
                            connection_type: Some("VPC_LINK".into()),
                            connection_id: Some(link),
                        }),
                    },
                );
                done
            }
            Op::DeleteMethod { rest_api_id, resource_id, http_method, .. } => {
                let api = self.api(me, rest_api_id)?;
                let r = api
                    .resources
                    .iter_mut()
                    .find(|r| &r.id == resource_id)
                    .ok_or_else(|| not_found("NotFoundException", resource_id))?;
                r.methods.remove(http_method).ok_or_else(|| not_found("NotFoundException", http_method))?;
                done
            }
            Op::CreateDeployment { rest_api_id, stage, stage_tags, .. } => {
                let api = known(rest_api_id)?.to_string();
                let dep = self.short_id();
                let api = self.api(me, &api)?;
                if api.resources.iter().all(|r| r.methods.is_empty()) {
                    return Err(err(
                        ErrorKind::Permanent,
                        "BadRequestException",
                        "The REST API doesn't contain any methods",
                    ));
                }
                match api.stages.iter_mut().find(|s| &s.name == stage) {
                    Some(s) => {
                        s.deployment_id = Some(dep.clone());
                        s.tags.extend(stage_tags.clone());
                    }
                    None => api.stages.push(Stage {
                        name: stage.clone(),
                        deployment_id: Some(dep.clone()),
                        tags: stage_tags.clone(),
                    }),
                }
                created(dep)
            }
        }
    }

    fn table(&mut self, me: &str, id: &str) -> Result<&mut RouteTable, CloudError> {
        self.acct(me).route_tables.get_mut(id).ok_or_else(|| not_found("InvalidRouteTableID.NotFound", id))
    }

    fn tg(&mut self, me: &str, arn: &str) -> Result<&mut TargetGroup, CloudError> {
        self.acct(me)
            .target_groups
            .iter_mut()
            .find(|t| t.arn == arn)
            .ok_or_else(|| not_found("TargetGroupNotFound", arn))
    }

    fn api(&mut self, me: &str, id: &str) -> Result<&mut RestApi, CloudError> {
        self.acct(me).rest_apis.iter_mut().find(|a| a.id == id).ok_or_else(|| not_found("NotFoundException", id))
    }
}

fn target(ip: Ipv4Addr, port: u16) -> RegisteredTarget {
    RegisteredTarget { ip, port, availability_zone: Some("all".into()), health: "healthy".into() }
}

/// The destination CIDRs of a route table, for assertions.
pub fn destinations(t: &RouteTable) -> Vec<Ipv4Net> {
    t.routes.iter().map(|r| r.destination).collect()
}

impl Cloud for FakeAws {
    async fn observe(&self, account: &Account, _scope: &ObserveScope) -> AccountObservation {
        let id = &account.spec.account_id;
        let d = self.decide(id, "Observe", None);
        if let (Some(clock), false) = (&self.clock, d.delay.is_zero()) {
            clock.sleep(d.delay).await;
        }
        self.observe_decided(id, d)
    }

    async fn execute(&self, account: &Account, op: &Op) -> Result<Outcome, CloudError> {
        // A request in flight from here to its answer (delays included); no rate limits here.
        let _slot = crate::slots::acquire().await?;
        crate::fence::check()?;
        let id = &account.spec.account_id;
        let d = self.decide(id, op.name(), Some(op));
        if let (Some(clock), false) = (&self.clock, d.delay.is_zero()) {
            // A change made before the answer is lost happens when the request arrives.
            if matches!(d.fail, Some((_, true))) {
                let delay = d.delay;
                let r = self.perform(id, op, d);
                clock.sleep(delay).await;
                return r;
            }
            clock.sleep(d.delay).await;
        }
        self.perform(id, op, d)
    }
}

impl<C: Cloud> Cloud for std::sync::Arc<C> {
    async fn observe(&self, account: &Account, scope: &ObserveScope) -> AccountObservation {
        (**self).observe(account, scope).await
    }

    async fn execute(&self, account: &Account, op: &Op) -> Result<Outcome, CloudError> {
        (**self).execute(account, op).await
    }
}
