//! One pass of the pipeline: observe every account (concurrently), plan, and execute the actions
//! whose inputs are known, in dependency order; then observe again, until in sync or out of time.
//! Asynchronous AWS states (peering acceptance, NLB provisioning, VPC Link PENDING) are handled by
//! re-observing with backoff, never by blocking on one resource.

use crosslink_plan::kinds::StageOp;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crosslink_cloud::fence::{self, Fence};
use crosslink_cloud::slots;
use crosslink_cloud::{Cloud, CloudError, ErrorKind, ObserveScope};
use crosslink_coord::Ownership;
use crosslink_desired::{Account, ApiTarget, DesiredState, LoadBalancerRef};
use crosslink_plan::observed::{AccountObservation, Observed};
use crosslink_plan::op::{Op, ResourceKey};
use crosslink_plan::{Action, Plan, Reason, Settings, Subject, Verb};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use serde::Serialize;
use tracing::{Instrument, info, warn};

/// An AWS call (rate-limit wait and SDK retries included) that has not answered in this long is
/// abandoned and reported as a `Timeout`: one hung connection must not hold up a whole pass (the
/// SDK sets no overall timeout of its own). Whether it took effect is found out by the next
/// observation, as for any lost answer.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// The same for reading one account (many paginated calls).
pub const OBSERVE_TIMEOUT: Duration = Duration::from_secs(300);
/// Why an action was not started once shutdown began.
pub const SHUTTING_DOWN: &str = "shutting down";
/// A resource replaced this many times in one apply (or, in the daemon, before its subject is in
/// sync) because the one made before died (a peering that ends `failed`, a VPC link that goes
/// `FAILED`) is not created again at once: the subject backs off instead of churning out
/// resources.
pub const MAX_RECREATES: u32 = 3;

#[derive(Clone, Debug)]
pub struct EngineOptions {
    pub settings: Settings,
    /// Calls in flight at once, across accounts.
    pub concurrency: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { settings: Settings::default(), concurrency: 8 }
    }
}

#[derive(Clone, Debug)]
pub struct ApplyOptions {
    /// Give up waiting for asynchronous states after this long.
    pub timeout: Duration,
    /// First wait when nothing could progress; doubles up to `max_wait`.
    pub min_wait: Duration,
    pub max_wait: Duration,
    pub max_rounds: usize,
    /// Let the protection guard pass (`Plan::weakening`): without it, changes that make routes
    /// less protected are held, and the apply does not converge.
    pub allow_weakening: bool,
    /// Let the replacement of adopted resources pass (`Plan::replacing`): without it, they are
    /// held, and the apply does not converge.
    pub allow_replacement: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            timeout: Duration::from_secs(600),
            min_wait: Duration::from_secs(1),
            max_wait: Duration::from_secs(15),
            max_rounds: 100,
            allow_weakening: false,
            allow_replacement: false,
        }
    }
}

/// What happened to one action.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "result")]
pub enum ActionResult {
    Done {
        created: Option<String>,
    },
    Failed {
        error: CloudError,
    },
    /// Not attempted: an input is not known yet, or a dependency did not succeed.
    Skipped {
        why: String,
    },
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Executed {
    /// The plan's action, shared with the plan (not a copy of it).
    pub action: Arc<Action>,
    pub result: ActionResult,
    pub seconds: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyReport {
    pub converged: bool,
    pub rounds: usize,
    /// Every attempted call, in order.
    pub executed: Vec<Executed>,
    /// The plan after the last observation: empty when converged.
    pub remaining: Plan,
    /// Subjects whose changes failed permanently (not retried in this apply).
    #[serde(serialize_with = "crosslink_plan::model::by_subject")]
    pub failed: BTreeMap<Subject, CloudError>,
}

impl ApplyReport {
    pub fn mutations(&self) -> usize {
        self.executed.iter().filter(|e| !matches!(e.result, ActionResult::Skipped { .. })).count()
    }
}

/// Sharded execution: the unit of each action (by action id) and the leases that fence them.
pub struct ShardCx<'a> {
    pub ownership: &'a Ownership,
    pub unit_of: &'a [String],
}

/// How a plan is executed.
pub struct ExecContext<'a> {
    /// When several replicas share the work: every mutating call of an action is made only while
    /// this replica holds the lease of the action's unit.
    pub shards: Option<ShardCx<'a>>,
    /// Why an action must be held back (prune guard, backoff), if it must.
    pub hold: &'a (dyn Fn(&Action) -> Option<String> + Sync),
    /// Cancelled on shutdown: nothing new starts.
    pub stop: Option<tokio_util::sync::CancellationToken>,
    /// The desired-state revision, for the logs.
    pub revision: Option<&'a str>,
}

pub struct Engine<C> {
    cloud: Arc<C>,
    opts: EngineOptions,
}

impl<C> Clone for Engine<C> {
    fn clone(&self) -> Self {
        Engine { cloud: self.cloud.clone(), opts: self.opts.clone() }
    }
}

/// What to read in each account, derived from desired state.
pub fn scopes(desired: &DesiredState, instance: &str) -> BTreeMap<String, ObserveScope> {
    let mut out = BTreeMap::new();
    for a in &desired.accounts {
        let gateways: Vec<_> = desired.gateways.iter().filter(|g| g.spec.account == a.metadata.name).collect();
        let service_only =
            gateways.is_empty() && desired.links.iter().any(|l| l.spec.service.account == a.metadata.name);
        let mut s = ObserveScope { gateway_side: !service_only, instance: instance.to_string(), ..Default::default() };
        s.private_link = desired
            .links
            .iter()
            .any(|l| l.spec.service.account == a.metadata.name && l.spec.transport.private_link().is_some());
        for g in gateways {
            s.adopting |= desired.links.iter().any(|l| {
                l.spec.gateway == g.metadata.name && l.spec.adoption == crosslink_desired::AdoptionPolicy::Adopt
            });
            match &g.spec.api.target {
                ApiTarget::Id(id) => s.rest_api_ids.push(id.clone()),
                ApiTarget::Name(n) => s.rest_api_names.push(n.clone()),
            }
            match &g.spec.load_balancer {
                LoadBalancerRef::Arn(arn) => s.load_balancer_arns.push(arn.clone()),
                LoadBalancerRef::Name(n) => s.load_balancer_names.push(n.clone()),
            }
        }
        out.insert(a.metadata.name.clone(), s);
    }
    out
}

/// Where an action stands in `Engine::execute`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum St {
    Waiting,
    Running,
    Done,
    NotDone,
    /// Held back by `hold`, or failed: a deployment may still follow.
    Settled,
}

/// Ready actions by lane (the account and AWS service a call goes to), lowest id first, and how
/// many of each lane are launched: a lane whose calls wait for rate-limit tokens fills only its
/// own launches.
struct Lanes {
    lane_of: Vec<usize>,
    queued: Vec<BTreeSet<usize>>,
    launched: Vec<usize>,
    /// Lanes that may have something to launch.
    dirty: BTreeSet<usize>,
}

impl Lanes {
    fn new(plan: &Plan) -> Self {
        let mut index: BTreeMap<(&str, crosslink_plan::op::Service), usize> = BTreeMap::new();
        let lane_of: Vec<usize> = plan
            .actions
            .iter()
            .map(|a| {
                let next = index.len();
                *index.entry((a.account.as_str(), a.op.service())).or_insert(next)
            })
            .collect();
        let n = index.len();
        Lanes { lane_of, queued: vec![BTreeSet::new(); n], launched: vec![0; n], dirty: BTreeSet::new() }
    }

    fn insert(&mut self, id: usize) {
        let l = self.lane_of[id];
        self.queued[l].insert(id);
        self.dirty.insert(l);
    }

    fn clear(&mut self) {
        self.queued.iter_mut().for_each(BTreeSet::clear);
        self.dirty.clear();
    }

    /// The next action to launch, from a lane with fewer than `cap` launched.
    fn next(&mut self, cap: usize) -> Option<usize> {
        while let Some(&l) = self.dirty.first() {
            if self.launched[l] < cap
                && let Some(id) = self.queued[l].pop_first()
            {
                return Some(id);
            }
            self.dirty.remove(&l);
        }
        None
    }

    fn started(&mut self, id: usize) {
        self.launched[self.lane_of[id]] += 1;
    }

    fn finished(&mut self, id: usize) {
        let l = self.lane_of[id];
        self.launched[l] -= 1;
        self.dirty.insert(l);
    }
}

/// What to do with a waiting action now.
enum Verdict {
    /// Not attempted, and why; `true` when held back (a deployment may still follow).
    Skip(String, bool),
    Launch,
    /// Something it depends on has not settled yet.
    Wait,
}

/// A deployment only needs to come after the API changes, not all of them to succeed: what did
/// change goes live even while one link is failing.
fn soft(a: &Action) -> bool {
    matches!(a.op, crosslink_plan::op::Op::Stage(StageOp::CreateDeployment { .. }))
}

impl<C: Cloud> Engine<C> {
    pub fn new(cloud: Arc<C>, opts: EngineOptions) -> Self {
        Engine { cloud, opts }
    }

    pub fn cloud(&self) -> &Arc<C> {
        &self.cloud
    }

    pub fn settings(&self) -> &Settings {
        &self.opts.settings
    }

    /// Reads every account of the desired state, concurrently.
    pub async fn observe(&self, desired: &DesiredState) -> Observed {
        self.observe_only(desired, None).await
    }

    /// Reads the accounts named in `only` (all when `None`), concurrently.
    pub async fn observe_only(&self, desired: &DesiredState, only: Option<&BTreeSet<String>>) -> Observed {
        self.observe_scoped(desired, only, &scopes(desired, &self.opts.settings.instance)).await
    }

    /// Reads the accounts named in `only` (all when `None`) with the given scopes, concurrently.
    pub async fn observe_scoped(
        &self,
        desired: &DesiredState,
        only: Option<&BTreeSet<String>>,
        scopes: &BTreeMap<String, ObserveScope>,
    ) -> Observed {
        // Boxed: the future types would otherwise defeat the compiler's Send inference (rust#102211).
        let reads: Vec<BoxFuture<'_, (String, AccountObservation)>> = desired
            .accounts
            .iter()
            .filter(|a| only.is_none_or(|o| o.contains(&a.metadata.name)))
            .map(|a| {
                let scope = scopes.get(&a.metadata.name).cloned().unwrap_or_default();
                let cloud = self.cloud.clone();
                let name = a.metadata.name.clone();
                let account = a.clone();
                Box::pin(async move {
                    let read = |scope: ObserveScope| {
                        let (cloud, account) = (cloud.clone(), account.clone());
                        async move {
                            match tokio::time::timeout(OBSERVE_TIMEOUT, cloud.observe(&account, &scope)).await {
                                Ok(obs) => obs,
                                Err(_) => AccountObservation::Failed {
                                    retryable: true,
                                    code: "Timeout".into(),
                                    message: format!("reading the account took longer than {OBSERVE_TIMEOUT:?}"),
                                },
                            }
                        }
                    };
                    let mut obs = read(scope.clone()).await;
                    // A privateLink service side no link in desired state puts here any more
                    // (crosslink's endpoint services are read in every account): its NLB, target
                    // group and listener are read too, so that they are removed with it.
                    let left_behind = matches!(&obs, AccountObservation::Ok(s) if !s.endpoint_services.is_empty());
                    if left_behind && !scope.gateway_side && !scope.private_link {
                        obs = read(ObserveScope { private_link: true, ..scope }).await;
                    }
                    (name, obs)
                }) as BoxFuture<'_, _>
            })
            .collect();
        let results: Vec<(String, AccountObservation)> =
            futures::stream::iter(reads).buffer_unordered(self.opts.concurrency.max(1)).collect().await;
        for (name, obs) in &results {
            if let AccountObservation::Failed { code, message, .. } = obs {
                warn!(account = %name, code = %code, "cannot observe account: {message}");
            }
        }
        Observed { accounts: results.into_iter().collect() }
    }

    pub async fn plan(&self, desired: &DesiredState) -> (Observed, Plan) {
        let observed = self.observe(desired).await;
        let plan = crosslink_plan::plan(desired, &observed, &self.opts.settings);
        (observed, plan)
    }

    /// Executes the ready actions of a plan in dependency order, independent ones concurrently.
    /// `hold` says why an action must not run now (its dependents then do not run either); once
    /// `stop` is cancelled no new action starts (in-flight ones finish).
    ///
    /// Creates are chained within the pass: an action that needs an id an earlier action of the
    /// plan creates (`Ref::Pending` with its maker) runs as soon as that action has answered with
    /// it, if the state AWS reported lets the next round's plan plan it (`Op::lets_chain`: a VPC
    /// link PENDING, a peering not yet active still wait for a later round). A chained call
    /// that answers NotFound (AWS is eventually consistent: the accepter may not see a peering
    /// requested a moment ago) is waiting, not failing: the next round makes it.
    ///
    /// Linear in the plan: an action is judged when the plan is read, again when one of its
    /// dependencies settles, and when it is launched (a dependents index and a ready queue), not
    /// in a rescan of every action after each completion.
    pub async fn execute(&self, desired: &DesiredState, plan: &Plan, ctx: &ExecContext<'_>) -> Vec<Executed> {
        let accounts: BTreeMap<&str, &Account> =
            desired.accounts.iter().map(|a| (a.metadata.name.as_str(), a)).collect();
        let n = plan.actions.len();
        let mut st = vec![St::Waiting; n];
        let mut results: Vec<Option<Executed>> = vec![None; n];
        // What each action's answer said, for the actions chained after it.
        let mut outcomes: Vec<Option<crosslink_cloud::Outcome>> = vec![None; n];
        // The actions whose answers an action needs (see `Plan::makers`): it is chained after them.
        let makers: Vec<Vec<usize>> = (0..n).map(|id| plan.makers(id)).collect();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        for a in &plan.actions {
            for &d in a.deps.iter().chain(makers[a.id].iter().filter(|m| **m < n && !a.deps.contains(m))) {
                dependents[d].push(a.id);
            }
        }
        const WAITING: &str = "waiting for a resource it needs";
        let judge = |a: &Action, st: &[St], outcomes: &[Option<crosslink_cloud::Outcome>]| -> Verdict {
            let unit = ctx.shards.as_ref().and_then(|sh| sh.unit_of.get(a.id));
            if let Some(why) = (ctx.hold)(a) {
                return Verdict::Skip(why, true);
            }
            if let (Some(sh), Some(u)) = (&ctx.shards, unit)
                && let Err(why) = sh.ownership.check(u)
            {
                return Verdict::Skip(why, false);
            }
            let skip = |why: &str| Verdict::Skip(why.to_string(), false);
            if ctx.stop.as_ref().is_some_and(|s| s.is_cancelled()) {
                return skip(SHUTTING_DOWN);
            }
            let soft = soft(a);
            if a.deps.iter().any(|d| st[*d] == St::NotDone) || (!soft && a.deps.iter().any(|d| st[*d] == St::Settled)) {
                return skip("a step it depends on did not succeed");
            }
            if soft
                && !a.deps.is_empty()
                && a.deps.iter().all(|d| matches!(st[*d], St::Done | St::Settled))
                && !a.deps.iter().any(|d| st[*d] == St::Done)
            {
                return skip("none of the changes it follows was made");
            }
            let chained = &makers[a.id];
            if a.op.waits() || chained.iter().any(|m| *m >= n || matches!(st[*m], St::NotDone | St::Settled)) {
                return skip(WAITING);
            }
            if !accounts.contains_key(a.account.as_str()) {
                return Verdict::Skip(format!("account {} is not defined", a.account), false);
            }
            if !a.deps.iter().all(|d| st[*d] == St::Done || (soft && st[*d] == St::Settled))
                || !chained.iter().all(|m| st[*m] == St::Done)
            {
                return Verdict::Wait;
            }
            // Chained: what its inputs came from must be in a state that lets it go on now.
            let lets_chain = |d: &usize| {
                st[*d] != St::Done
                    || plan.actions[*d].op.lets_chain(outcomes[*d].as_ref().and_then(|o| o.state.as_deref()))
            };
            if !chained.is_empty() && (!a.deps.iter().all(lets_chain) || !chained.iter().all(lets_chain)) {
                return skip(WAITING);
            }
            Verdict::Launch
        };
        let settle_skipped = |id: usize, why: String, held: bool, st: &mut [St], results: &mut [Option<Executed>]| {
            st[id] = if held { St::Settled } else { St::NotDone };
            results[id] = Some(Executed {
                action: plan.actions[id].clone(),
                result: ActionResult::Skipped { why },
                seconds: 0.0,
            });
        };
        // Ready to launch, lowest id first: the order in which a scan of the plan would start them.
        let mut ready = Lanes::new(plan);
        // Reading the plan: scans in plan order until nothing more is skipped. A skip settles
        // only actions not yet settled, so this takes a few scans (how far skips reach back in
        // the plan), each linear.
        loop {
            let mut changed = false;
            for a in &plan.actions {
                if st[a.id] != St::Waiting {
                    continue;
                }
                if let Verdict::Skip(why, held) = judge(a, &st, &outcomes) {
                    settle_skipped(a.id, why, held, &mut st, &mut results);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        for a in &plan.actions {
            if st[a.id] == St::Waiting && matches!(judge(a, &st, &outcomes), Verdict::Launch) {
                ready.insert(a.id);
            }
        }
        // Judges the dependents of what just settled, and theirs when they are skipped in turn.
        let propagate = |from: usize,
                         st: &mut [St],
                         results: &mut [Option<Executed>],
                         outcomes: &[Option<crosslink_cloud::Outcome>],
                         ready: &mut Lanes| {
            let mut work: Vec<usize> = dependents[from].clone();
            while let Some(id) = work.pop() {
                if st[id] != St::Waiting {
                    continue;
                }
                match judge(&plan.actions[id], st, outcomes) {
                    Verdict::Skip(why, held) => {
                        settle_skipped(id, why, held, st, results);
                        work.extend(dependents[id].iter().copied());
                    }
                    Verdict::Launch => {
                        ready.insert(id);
                    }
                    Verdict::Wait => {}
                }
            }
        };
        let limit = self.opts.concurrency.max(1);
        // `--concurrency` bounds requests in flight: the adapter takes a slot after its
        // rate-limit wait. Actions are launched without one, at most `limit` at a time per
        // account and service, so that waiting for one account's tokens holds up no other.
        let stop = ctx.stop.clone();
        let slots = crosslink_cloud::slots::Slots::new(limit, move || !stop.as_ref().is_some_and(|s| s.is_cancelled()));
        let mut stopped = false;
        type Running<'r> = BoxFuture<'r, (&'r Action, Result<crosslink_cloud::Outcome, CloudError>, Duration)>;
        let mut running: FuturesUnordered<Running<'_>> = FuturesUnordered::new();
        loop {
            // Shutdown: nothing waiting starts any more.
            if !stopped && ctx.stop.as_ref().is_some_and(|s| s.is_cancelled()) {
                stopped = true;
                for a in &plan.actions {
                    if st[a.id] == St::Waiting
                        && let Verdict::Skip(why, held) = judge(a, &st, &outcomes)
                    {
                        settle_skipped(a.id, why, held, &mut st, &mut results);
                    }
                }
                ready.clear();
            }
            while let Some(id) = ready.next(limit) {
                if st[id] != St::Waiting {
                    continue;
                }
                let a: &Action = &plan.actions[id];
                // Judged again at launch: a lease may have been lost while it waited for a slot.
                match judge(a, &st, &outcomes) {
                    Verdict::Launch => {}
                    Verdict::Skip(why, held) => {
                        settle_skipped(id, why, held, &mut st, &mut results);
                        propagate(id, &mut st, &mut results, &outcomes, &mut ready);
                        continue;
                    }
                    Verdict::Wait => continue,
                }
                // The ids earlier actions of this pass made, filled in.
                let op: Cow<'_, Op> = if makers[id].is_empty() {
                    Cow::Borrowed(&a.op)
                } else {
                    let value = |by: usize, output| outcomes.get(by)?.as_ref()?.output(output).map(str::to_string);
                    match plan.resolved(id, &value) {
                        Some(op) => Cow::Owned(op),
                        None => {
                            settle_skipped(id, WAITING.to_string(), false, &mut st, &mut results);
                            propagate(id, &mut st, &mut results, &outcomes, &mut ready);
                            continue;
                        }
                    }
                };
                st[id] = St::Running;
                ready.started(id);
                let slots = slots.clone();
                let unit = ctx.shards.as_ref().and_then(|sh| sh.unit_of.get(a.id));
                let account = accounts[a.account.as_str()];
                let cloud = self.cloud.clone();
                // The fence: checked again inside the adapter right before each request.
                let fence = match (&ctx.shards, unit) {
                    (Some(sh), Some(u)) => {
                        let own = sh.ownership.clone();
                        let u = u.clone();
                        let in_flight = own.enter(&u);
                        Some((Fence::new(move || own.check(&u)), in_flight))
                    }
                    _ => None,
                };
                let span =
                    tracing::info_span!("reconcile", subject = %a.subject, revision = ctx.revision.unwrap_or(""));
                running.push(Box::pin(
                    async move {
                        let start = Instant::now();
                        let (fence, in_flight) = fence.unzip();
                        let call = slots::scope(Some(slots), fence::scope(fence, cloud.execute(account, &op)));
                        let r = match tokio::time::timeout(CALL_TIMEOUT, call).await {
                            Ok(r) => r,
                            Err(_) => Err(CloudError::new(
                                ErrorKind::Retryable,
                                "Timeout",
                                format!(
                                    "no answer within {CALL_TIMEOUT:?}; the next observation shows whether it took effect"
                                ),
                            )),
                        };
                        drop(in_flight);
                        (a, r, start.elapsed())
                    }
                    .instrument(span),
                ) as Running<'_>);
            }
            let Some((a, r, took)) = running.next().await else { break };
            ready.finished(a.id);
            let result = match r {
                // Shutdown began while it waited for its rate-limit token or a slot: not sent.
                Err(error) if error.code == slots::NOT_STARTED => {
                    st[a.id] = St::NotDone;
                    ActionResult::Skipped { why: SHUTTING_DOWN.to_string() }
                }
                Ok(out) => {
                    info!(
                        subject = %a.subject,
                        account = %a.account,
                        verb = a.verb.as_str(),
                        op = a.op.name(),
                        resource = %a.resource,
                        created = out.created.as_deref().unwrap_or(""),
                        reason = %a.reason,
                        "changed"
                    );
                    st[a.id] = St::Done;
                    let created = out.created.clone();
                    outcomes[a.id] = Some(out);
                    ActionResult::Done { created }
                }
                // Chained right after a create: AWS may not show the new resource everywhere
                // yet. Waiting, not failing: the next round plans it again.
                Err(error) if error.kind == ErrorKind::NotFound && !makers[a.id].is_empty() => {
                    info!(
                        subject = %a.subject,
                        account = %a.account,
                        verb = a.verb.as_str(),
                        op = a.op.name(),
                        resource = %a.resource,
                        code = %error.code,
                        "not visible yet to a call chained after its create; the next round makes it"
                    );
                    st[a.id] = St::NotDone;
                    ActionResult::Skipped { why: format!("{WAITING}: not visible yet ({})", error.code) }
                }
                Err(error) => {
                    warn!(
                        subject = %a.subject,
                        account = %a.account,
                        verb = a.verb.as_str(),
                        op = a.op.name(),
                        resource = %a.resource,
                        code = %error.code,
                        kind = error.kind.as_str(),
                        reason = %a.reason,
                        "change failed: {}",
                        error.message
                    );
                    st[a.id] = St::Settled;
                    ActionResult::Failed { error }
                }
            };
            results[a.id] = Some(Executed { action: plan.actions[a.id].clone(), result, seconds: took.as_secs_f64() });
            propagate(a.id, &mut st, &mut results, &outcomes, &mut ready);
        }
        results.into_iter().flatten().collect()
    }

    /// Converges: rounds of observe -> plan -> execute until in sync, stuck, or out of time.
    pub async fn apply(&self, desired: &DesiredState, opts: &ApplyOptions) -> ApplyReport {
        self.apply_revision(desired, opts, None).await
    }

    /// `crosslink discover`: reads the gateway account (every load balancer's listeners, every
    /// REST API's resources, every target group's targets) and the other accounts of `desired`
    /// (its Account documents), and writes desired state for the chains found
    /// (`crosslink_plan::discover::discover`).
    pub async fn discover(
        &self,
        desired: &DesiredState,
        gateway_account: &str,
    ) -> Result<crosslink_plan::discover::Discovery, String> {
        let instance = &self.opts.settings.instance;
        let scopes: BTreeMap<String, ObserveScope> = desired
            .accounts
            .iter()
            .map(|a| {
                let gw = a.metadata.name == gateway_account;
                let scope = ObserveScope {
                    gateway_side: gw,
                    discover: gw,
                    instance: instance.clone(),
                    ..ObserveScope::default()
                };
                (a.metadata.name.clone(), scope)
            })
            .collect();
        let observed = self.observe_scoped(desired, None, &scopes).await;
        crosslink_plan::discover::discover(&desired.accounts, gateway_account, &observed)
    }

    /// `crosslink release`: the objects' resources handed to another tool. Plans the release
    /// (`crosslink_plan::release::release`) against a fresh observation and, unless `dry_run` or
    /// the plan has a problem (then nothing is released), removes crosslink's tags from each.
    pub async fn release(&self, desired: &DesiredState, objects: &[Subject], dry_run: bool) -> (Plan, Vec<Executed>) {
        let observed = self.observe(desired).await;
        let plan = crosslink_plan::release::release(desired, &observed, &self.opts.settings, objects);
        if dry_run || plan.has_problems() {
            return (plan, Vec::new());
        }
        let hold = |_: &Action| None;
        let ctx = ExecContext { shards: None, hold: &hold, stop: None, revision: None };
        let executed = self.execute(desired, &plan, &ctx).await;
        (plan, executed)
    }

    /// As `apply`, naming the desired-state revision in the logs.
    pub async fn apply_revision(
        &self,
        desired: &DesiredState,
        opts: &ApplyOptions,
        revision: Option<&str>,
    ) -> ApplyReport {
        // tokio's clock: the same as the system's, except under paused time in tests.
        let deadline = tokio::time::Instant::now() + opts.timeout;
        let mut report = ApplyReport::default();
        let mut wait = opts.min_wait;
        let mut failed: BTreeMap<Subject, CloudError> = BTreeMap::new();
        // The resource whose call stopped a subject: the stop holds only while a change to it is
        // still planned. A create that failed because its lost first attempt took effect (an SDK
        // retry answered "already exists") is moot once the resource shows up, as in the daemon.
        let mut failed_on: BTreeMap<Subject, ResourceKey> = BTreeMap::new();
        // Per call (subject, operation, resource): many different calls of one subject failing
        // once each (eventual consistency, sporadic throttling) is progress, not a stuck subject.
        let mut transient_failures: BTreeMap<(Subject, &'static str, ResourceKey), u32> = BTreeMap::new();
        let mut creates: BTreeMap<(Subject, ResourceKey), u32> = BTreeMap::new();
        // Resources this apply created that no observation has shown yet. AWS reads are
        // eventually consistent: a plan in sync may not see a duplicate made a moment ago (a
        // create repeated because its first result was not visible yet), so such a plan is
        // looked at again, a few times at most, before the apply calls it converged.
        let mut unseen: BTreeSet<String> = BTreeSet::new();
        let mut unseen_looks = 0;
        // After the first round, a round reads only what the one before changed or waits for
        // (`focus`): the accounts of the subjects that had changes, were waiting or blocked, and
        // in them those subjects' targets. The rest is as the previous observation showed it.
        let mut previous: Option<(Observed, crate::focus::Focus)> = None;
        loop {
            report.rounds += 1;
            let (observed, plan) = match &previous {
                Some((prev, focus)) => {
                    let (observed, _) = self.observe_focused(desired, prev, focus, None).await;
                    let plan = crosslink_plan::plan(desired, &observed, &self.opts.settings);
                    (observed, plan)
                }
                None => self.plan(desired).await,
            };
            if !unseen.is_empty() {
                let seen = observed_ids(&observed);
                unseen.retain(|id| !seen.contains(id.as_str()));
            }
            if plan.in_sync() && !unseen.is_empty() && unseen_looks < MAX_UNSEEN_LOOKS {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if !left.is_zero() && report.rounds <= opts.max_rounds {
                    unseen_looks += 1;
                    tokio::time::sleep(wait.min(left)).await;
                    wait = (wait * 2).min(opts.max_wait);
                    continue;
                }
            }
            failed.retain(|s, _| {
                failed_on.get(s).is_none_or(|r| plan.actions.iter().any(|a| &a.subject == s && a.op.target() == *r))
            });
            failed_on.retain(|s, _| failed.contains_key(s));
            let weakens = |a: &Action| !opts.allow_weakening && plan.weakening.contains_key(&a.id);
            let replaces = |a: &Action| !opts.allow_replacement && plan.replacing.contains_key(&a.id);
            let runnable = plan.actions.iter().any(|a| !failed.contains_key(&a.subject) && !weakens(a) && !replaces(a));
            // An account that could not be read for a passing reason (throttled, a 5xx, a
            // timeout) is read again, with backoff, until the timeout: as a failed call is.
            let unread =
                observed.accounts.values().any(|o| matches!(o, AccountObservation::Failed { retryable: true, .. }));
            if plan.in_sync() || (!runnable && !unread && plan.reports.values().all(|r| r.waiting.is_empty())) {
                report.converged = plan.in_sync() && failed.is_empty();
                report.remaining = plan;
                break;
            }
            if tokio::time::Instant::now() >= deadline || report.rounds > opts.max_rounds {
                report.remaining = plan;
                break;
            }
            let skip: BTreeSet<Subject> = failed.keys().cloned().collect();
            let hold = |a: &Action| {
                if weakens(a) {
                    return Some("held back by the protection guard (--allow-weakening)".to_string());
                }
                if replaces(a) {
                    return Some("held back: it replaces an adopted resource (--allow-replacement)".to_string());
                }
                skip.contains(&a.subject).then(|| format!("{} failed earlier in this apply", a.subject))
            };
            let executed =
                self.execute(desired, &plan, &ExecContext { shards: None, hold: &hold, stop: None, revision }).await;
            let mut progressed = false;
            for e in &executed {
                match &e.result {
                    ActionResult::Done { created } => {
                        progressed = true;
                        match created {
                            Some(id)
                                if e.action.verb == Verb::Create
                                    && !matches!(e.action.op, Op::Stage(StageOp::CreateDeployment { .. })) =>
                            {
                                unseen.insert(id.clone());
                            }
                            _ if e.action.op.is_delete() => {
                                unseen.remove(&e.action.op.target().id);
                            }
                            _ => {}
                        }
                        if e.action.verb == Verb::Create && matches!(e.action.reason, Reason::Replaced { .. }) {
                            let n = creates.entry((e.action.subject.clone(), e.action.op.target())).or_default();
                            *n += 1;
                            if *n >= MAX_RECREATES {
                                failed.entry(e.action.subject.clone()).or_insert_with(|| recreated(&e.action, *n));
                            }
                        }
                    }
                    ActionResult::Failed { error } => {
                        let key = (e.action.subject.clone(), e.action.op.name(), e.action.op.target());
                        let n = transient_failures.entry(key).or_default();
                        *n += 1;
                        // Permanent errors, and transient ones that keep coming, stop the
                        // subject for this apply: no hot loop against AWS.
                        if (!error.kind.is_transient() || *n >= 5) && !failed.contains_key(&e.action.subject) {
                            failed.insert(e.action.subject.clone(), error.clone());
                            failed_on.insert(e.action.subject.clone(), e.action.op.target());
                        }
                        if error.kind == ErrorKind::Throttled {
                            wait = (wait * 2).min(opts.max_wait);
                        }
                    }
                    ActionResult::Skipped { .. } => {}
                }
            }
            report.executed.extend(executed.into_iter().filter(|e| !matches!(e.result, ActionResult::Skipped { .. })));
            let mut subjects: BTreeSet<Subject> = plan.actions.iter().map(|a| a.subject.clone()).collect();
            subjects.extend(
                plan.reports
                    .iter()
                    .filter(|(_, r)| !r.waiting.is_empty() || !r.problems.is_empty())
                    .map(|(s, _)| s.clone()),
            );
            let mut acted_in: BTreeMap<Subject, BTreeSet<String>> = BTreeMap::new();
            for a in &plan.actions {
                acted_in.entry(a.subject.clone()).or_default().insert(a.account.clone());
            }
            previous = Some((observed, crate::focus::Focus::of(desired, subjects, &acted_in)));
            if progressed {
                wait = opts.min_wait;
            } else {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    continue;
                }
                tokio::time::sleep(wait.min(left)).await;
                wait = (wait * 2).min(opts.max_wait);
            }
        }
        report.failed = failed;
        report
    }
}

/// How many more observations a plan in sync gets while resources this apply created are not
/// visible yet.
const MAX_UNSEEN_LOOKS: u32 = 5;

/// The ids and ARNs of every resource an observation shows.
fn observed_ids(observed: &Observed) -> std::collections::HashSet<&str> {
    let mut out = std::collections::HashSet::new();
    for o in observed.accounts.values() {
        let AccountObservation::Ok(s) = o else { continue };
        out.extend(s.peerings.iter().map(|x| x.id.as_str()));
        out.extend(s.load_balancers.iter().map(|x| x.arn.as_str()));
        out.extend(s.listeners.iter().map(|x| x.arn.as_str()));
        out.extend(s.target_groups.iter().map(|x| x.arn.as_str()));
        out.extend(s.vpc_links.iter().map(|x| x.id.as_str()));
        for api in &s.rest_apis {
            out.insert(api.id.as_str());
            out.extend(api.resources.iter().map(|r| r.id.as_str()));
        }
    }
    out
}

/// The error a subject stops with when the same resource had to be created again and again.
pub fn recreated(a: &Action, times: u32) -> CloudError {
    CloudError::new(
        ErrorKind::Conflict,
        "Recreated",
        format!("{} was created {times} times and is still not usable ({})", a.resource, a.reason),
    )
}
