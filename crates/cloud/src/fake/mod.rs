//! An in-memory AWS for tests: several accounts, each with VPCs, peerings, route tables, load
//! balancers, target groups, VPC links and REST APIs, behaving like AWS where crosslink depends
//! on it (ids, cross-account peering, in-use errors, name collisions, idempotent NLB and target
//! group creates), and asynchronous where AWS is:
//!
//! - read lag (eventual consistency): what is created stays invisible for a few reads;
//! - fates: the next peering ends `failed` / `rejected` / `expired`, the next VPC link `FAILED`;
//! - new VPC links start in a chosen status (AWS: `PENDING` for minutes; moto: `AVAILABLE`).
//!
//! Scripted faults (throttling, 5xx, timeouts, lost answers, chaos, broken accounts) are not
//! AWS's behaviour: they wrap this or any other [`Cloud`] in [`crate::faults::Faulty`].

pub mod queue;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::Mutex;

use crosslink_desired::Account;
use crosslink_plan::kinds::PeeringOp;
use crosslink_plan::observed::*;
use crosslink_plan::op::{Op, Ref};
use ipnet::Ipv4Net;

use crate::{Cloud, CloudError, ErrorKind, ObserveScope, Outcome};

/// One account of the in-memory AWS: what an observation of it shows (its `AccountState`, with
/// the peerings kept apart, in `Peerings`, because both sides see one connection), and what
/// crosslink does not observe. A kind's new field of `AccountState` is held here as it is.
#[derive(Debug, Default)]
struct AccountWorld {
    /// Everything but `account_id` (set when read) and `peerings` (always empty here).
    state: AccountState,
    subnets: BTreeMap<String, String>,
}

impl std::ops::Deref for AccountWorld {
    type Target = AccountState;
    fn deref(&self) -> &AccountState {
        &self.state
    }
}

impl std::ops::DerefMut for AccountWorld {
    fn deref_mut(&mut self) -> &mut AccountState {
        &mut self.state
    }
}

/// Every peering connection, in the order they were requested, found by id and by account in
/// constant time (a search of the whole list per call and per account read made the fake's
/// own cost grow with the square of the peerings).
#[derive(Debug, Default)]
struct Peerings {
    all: Vec<Peering>,
    by_id: HashMap<String, usize>,
    /// Requester and accepter account -> the account's connections, in request order.
    by_account: HashMap<String, Vec<usize>>,
}

impl Peerings {
    fn push(&mut self, p: Peering) {
        let i = self.all.len();
        self.by_id.insert(p.id.clone(), i);
        self.by_account.entry(p.requester_account.clone()).or_default().push(i);
        if p.accepter_account != p.requester_account {
            self.by_account.entry(p.accepter_account.clone()).or_default().push(i);
        }
        self.all.push(p);
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut Peering> {
        self.by_id.get(id).map(|&i| &mut self.all[i])
    }

    /// The connections an account sees: those it requested or is asked to accept.
    fn of(&self, account: &str) -> impl Iterator<Item = &Peering> {
        self.by_account.get(account).into_iter().flatten().map(|&i| &self.all[i])
    }
}

#[derive(Debug, Default)]
struct World {
    accounts: BTreeMap<String, AccountWorld>,
    peerings: Peerings,
    next: u64,
    /// Status given to new VPC links (AWS: PENDING for minutes; moto: AVAILABLE).
    new_vpc_link_status: String,
    calls: Vec<(String, String)>,
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
    /// Target groups whose targets an observation did not read (the engine knew them).
    target_reads_skipped: u64,
    /// Target group ARN -> observations that read its targets (one `DescribeTargetHealth` each).
    target_reads: BTreeMap<String, u64>,
    /// Observations per account id (through `Cloud::observe`).
    observations: BTreeMap<String, u64>,
    /// Calls from the accepter a new peering stays unknown to (see `set_accepter_lag`).
    accepter_lag: u32,
    /// Peering id -> the accepter's AcceptVpcPeeringConnection calls still answered NotFound.
    unseen_by_accepter: BTreeMap<String, u32>,
    /// The clock, in seconds since the Unix epoch: what observations report as their time and
    /// API keys as their `createdDate`. Moved by `advance_clock`, never by itself.
    now: i64,
    /// API key id -> the value AWS generated (never observed: for tests that check it leaks
    /// nowhere).
    key_values: BTreeMap<String, String>,
}

/// The fake. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct FakeAws {
    world: Mutex<World>,
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
            world: Mutex::new(World {
                new_vpc_link_status: "AVAILABLE".into(),
                now: 1_800_000_000,
                ..World::default()
            }),
        }
    }

    /// Moves the clock on (an API key's rotation overlap is measured on it).
    pub fn advance_clock(&self, secs: i64) {
        self.lock().now += secs;
    }

    /// The value AWS generated for an API key: what must never appear in crosslink's output.
    pub fn api_key_value(&self, id: &str) -> Option<String> {
        self.lock().key_values.get(id).cloned()
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

    /// How many target groups' targets observations left out because the engine knew them
    /// (`ObserveScope::known_targets`): each is one `DescribeTargetHealth` not sent.
    pub fn target_reads_skipped(&self) -> u64 {
        self.lock().target_reads_skipped
    }

    /// Per target group ARN, how many observations read its targets (not left out as known).
    pub fn target_reads(&self) -> BTreeMap<String, u64> {
        self.lock().target_reads.clone()
    }

    /// How many times the engine read the account (`Cloud::observe`), per account id.
    pub fn observations(&self) -> BTreeMap<String, u64> {
        self.lock().observations.clone()
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
        let peerings: Vec<Peering> = w.peerings.of(account).cloned().collect();
        let now = w.now;
        let a = w.accounts.entry(account.to_string()).or_default();
        let mut st = snapshot(account, a, peerings.iter(), now);
        let r = f(&mut st);
        let changed = std::mem::take(&mut st.peerings);
        st.account_id = String::new();
        a.state = st;
        for p in changed {
            if let Some(x) = w.peerings.get_mut(&p.id) {
                *x = p;
            }
        }
        r
    }

    /// Reads an account as the AWS adapter would, with no read lag (for assertions).
    pub fn observe_account(&self, account_id: &str) -> AccountObservation {
        let w = self.lock();
        match w.accounts.get(account_id) {
            Some(a) => AccountObservation::Ok(Box::new(snapshot(account_id, a, w.peerings.of(account_id), w.now))),
            None => {
                AccountObservation::Ok(Box::new(AccountState { account_id: account_id.into(), ..Default::default() }))
            }
        }
    }

    /// Performs an operation synchronously, as AWS would.
    pub fn apply(&self, account_id: &str, op: &Op) -> Result<Outcome, CloudError> {
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
            if let Op::Peering(PeeringOp::CreateVpcPeeringConnection { peer_owner_id, .. }) = op {
                w.hidden.insert((peer_owner_id.clone(), id.clone()), lag);
            }
        }
        r
    }

    /// Reads an account as the engine does: what is still hidden by read lag is left out.
    pub fn observe_lagging(&self, account_id: &str) -> AccountObservation {
        let mut w = self.lock();
        let mut obs = match w.accounts.get(account_id) {
            Some(a) => snapshot(account_id, a, w.peerings.of(account_id), w.now),
            None => AccountState { account_id: account_id.into(), ..Default::default() },
        };
        let hidden: Vec<String> = w.hidden.keys().filter(|(a, _)| a == account_id).map(|(_, id)| id.clone()).collect();
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
        AccountObservation::Ok(Box::new(obs))
    }
}

fn snapshot<'a>(
    account_id: &str,
    a: &AccountWorld,
    peerings: impl Iterator<Item = &'a Peering>,
    now: i64,
) -> AccountState {
    let mut st = a.state.clone();
    st.account_id = account_id.into();
    st.observed_at = Some(now);
    st.peerings = peerings.cloned().collect();
    // GetAccount always answers: no CloudWatch Logs role until a test sets one.
    st.api_gateway_account.get_or_insert_default();
    st
}

fn created(id: String) -> Result<Outcome, CloudError> {
    Ok(Outcome::created(id))
}

fn done() -> Result<Outcome, CloudError> {
    Ok(Outcome::default())
}

/// Generated from the planner's registration (`crosslink_plan::for_each_kind!`): a module per
/// kind holds what AWS does for its operations.
macro_rules! fake_kinds {
    ($($Kind:ident => $module:ident : $KindOp:ident, $label:literal, $stage:ident $(, $field:ident)?;)*) => {
        $(mod $module;)*

        fn apply(w: &mut World, me: &str, op: &Op) -> Result<Outcome, CloudError> {
            match op {
                $(Op::$Kind(op) => $module::apply(w, me, op),)*
            }
        }
    };
}

crosslink_plan::for_each_kind!(fake_kinds);

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
        apply(self, me, op)
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
    RegisteredTarget {
        ip,
        port,
        availability_zone: Some("all".into()),
        health: "healthy".into(),
        reason: None,
        description: None,
    }
}

/// The destination CIDRs of a route table, for assertions.
pub fn destinations(t: &RouteTable) -> Vec<Ipv4Net> {
    t.routes.iter().map(|r| r.destination).collect()
}

impl Cloud for FakeAws {
    async fn observe(&self, account: &Account, scope: &ObserveScope) -> AccountObservation {
        let id = &account.spec.account_id;
        *self.lock().observations.entry(id.clone()).or_default() += 1;
        let mut obs = self.observe_lagging(id);
        // As the adapter: the targets of groups the engine already knows are not read.
        if let AccountObservation::Ok(state) = &mut obs {
            let mut inner = self.lock();
            for t in state.target_groups.iter_mut() {
                if scope.known_targets.contains(&t.arn) {
                    t.targets.clear();
                    inner.target_reads_skipped += 1;
                } else {
                    *inner.target_reads.entry(t.arn.clone()).or_default() += 1;
                }
            }
        }
        obs
    }

    async fn execute(&self, account: &Account, op: &Op) -> Result<Outcome, CloudError> {
        // A request in flight from here to its answer (delays included); no rate limits here.
        let _slot = crate::slots::acquire().await?;
        crate::fence::check()?;
        self.apply(&account.spec.account_id, op)
    }
}
