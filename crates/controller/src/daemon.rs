//! The reconciling loop of `crosslink run`: desired state from a watched directory (the last good
//! one stays in force), a deduplicating queue of work items (links, gateways, peerings) with
//! per-item backoff, a periodic resync with jitter, the prune guard, status and metrics.
//!
//! Every pass observes each account once and plans the whole desired state (reads grow with
//! accounts, not links); it then executes the actions of the items that are due, in dependency
//! order. An item is never reconciled twice at once: passes do not overlap.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crosslink_cloud::{Cloud, CloudError, ErrorKind};
use crosslink_coord::Ownership;
use crosslink_plan::health::{LinkHealth, TargetCounts, link_health_on};
use crosslink_plan::observed::Observed;
use crosslink_plan::op::ResourceKey;
use crosslink_plan::units::{self, ORPHANS, Units};
use crosslink_plan::{Action, Plan, Reason, Subject, Verb};
use rand::Rng;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::engine::{ActionResult, Engine, ExecContext, Executed, MAX_RECREATES, ShardCx};
use crate::events::{Events, Resolver};
use crate::focus::{Focus, HealthSample};
use crate::metrics::{
    LinkLabels, Metrics, PhaseLabels, ReconcileLabels, ResourceLabels, TargetStateLabels, TransportLabels,
};
use crate::source::{self, LoadFailure, Loaded};
use crate::status::{
    DesiredStatus, Health, LastError, ObjectStatus, Phase, ProtectionStatus, PruneStatus, StatusSnapshot, rfc3339,
    unix_now,
};

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub paths: Vec<PathBuf>,
    /// Full pass every `resync` (with +-10% jitter): AWS has no watch, drift is found this way.
    pub resync: Duration,
    /// Desired state is also re-read on this timer, besides file-system events.
    pub reload_interval: Duration,
    pub debounce: Duration,
    /// A pass that would remove more links than this is held back (prune guard).
    pub max_prune: usize,
    pub allow_prune: bool,
    /// Let the protection guard pass: apply changes that make routes less protected.
    pub allow_weakening: bool,
    /// Replace adopted resources that cannot be changed in place (`Plan::replacing`).
    pub allow_replacement: bool,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Permanent errors (access denied, invalid parameter, quota) are retried this slowly,
    /// or at once when desired state changes.
    pub permanent_retry: Duration,
    /// Re-check this soon after a change was made.
    pub followup: Duration,
    /// How long in-flight AWS calls may take to finish on shutdown.
    pub grace: Duration,
    /// The loop wakes at least this often (liveness heartbeat).
    pub heartbeat: Duration,
    /// A target group whose targets were all healthy is read again one full pass in this many
    /// (`focus::HealthSample`); 1 reads every group every full pass.
    pub target_health_every: u64,
    /// What change events ask for is reconciled this long after the first of them arrives: a
    /// burst (a `terraform destroy`, a script) becomes one pass.
    pub event_settle: Duration,
    pub version: String,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            paths: Vec::new(),
            resync: Duration::from_secs(300),
            reload_interval: Duration::from_secs(60),
            debounce: Duration::from_millis(500),
            max_prune: 5,
            allow_prune: false,
            allow_weakening: false,
            allow_replacement: false,
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            permanent_retry: Duration::from_secs(900),
            followup: Duration::from_secs(1),
            grace: Duration::from_secs(30),
            heartbeat: Duration::from_secs(5),
            target_health_every: 3,
            event_settle: Duration::from_millis(250),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// Per-item memory across passes.
#[derive(Clone, Debug, Default)]
struct Item {
    failures: u32,
    waits: u32,
    permanent: bool,
    last_error: Option<LastError>,
    last_reconcile: Option<u64>,
    revision: Option<String>,
    ready_before: bool,
    /// Replacements of resources that died (by resource) since the item was last in sync.
    replacements: BTreeMap<ResourceKey, u32>,
    /// The resource whose call failed last: the backoff holds only while a change to it is
    /// still planned (a create that failed because its lost first attempt took effect is moot
    /// once the resource shows up).
    failed_resource: Option<ResourceKey>,
    /// The subject's desired inputs (see `inputs`) when it was last in sync: a difference found
    /// while they are unchanged is drift; once they changed, it is an intended change.
    synced_inputs: Option<u64>,
}

/// What a subject's resources are planned from: its own document and the ones it shares
/// resources with (a link's gateway; a gateway's links; a peering's gateway and links). Hashed,
/// to tell drift (AWS changed, inputs unchanged) from change (inputs moved).
fn inputs(d: &crosslink_desired::Index<'_>, s: &Subject) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut parts: Vec<serde_json::Value> = Vec::new();
    fn json(v: &impl serde::Serialize) -> serde_json::Value {
        serde_json::to_value(v).unwrap_or_default()
    }
    match s {
        Subject::Link(l) => {
            if let Some(link) = d.link(l) {
                parts.push(json(&link.spec));
                if let Some(gw) = d.gateway(&link.spec.gateway) {
                    parts.push(json(&gw.spec));
                }
            }
        }
        Subject::Gateway(g) => {
            if let Some(gw) = d.gateway(g) {
                parts.push(json(&gw.spec));
                parts.extend(d.links_of(g).iter().map(|l| json(&l.spec)));
            }
        }
        Subject::Peering(gvpc, svpc) => {
            for gw in d.gateways_in_vpc(gvpc) {
                parts.push(json(&gw.spec));
                parts.extend(
                    d.links_of(&gw.metadata.name)
                        .iter()
                        .filter(|l| l.spec.service.vpc_id == *svpc)
                        .map(|l| json(&l.spec)),
                );
            }
        }
        // A consumer's plan names its gateways' stages and their links' routes.
        Subject::Consumer(c) => {
            if let Some(c) = d.consumer(c) {
                parts.push(json(&c.spec));
                for g in &c.spec.gateways {
                    if let Some(gw) = d.gateway(g) {
                        parts.push(json(&gw.spec.api.stage));
                        parts.extend(d.links_of(g).iter().map(|l| json(&l.spec.routes)));
                    }
                }
            }
        }
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::Value::Array(parts).to_string().hash(&mut h);
    h.finish()
}

pub struct Daemon<C> {
    engine: Engine<C>,
    opts: RunOptions,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    status: watch::Sender<StatusSnapshot>,
    desired: Option<Loaded>,
    desired_status: DesiredStatus,
    queue: BTreeMap<Subject, Instant>,
    items: BTreeMap<Subject, Item>,
    prune: PruneStatus,
    protection: ProtectionStatus,
    /// Subjects with changes the protection guard held in the last pass: they wait for an
    /// operator, not for a retry.
    protection_held: BTreeSet<Subject>,
    /// The replacements of adopted resources held in the last pass (logged when they change).
    replacing_held: Vec<String>,
    last_full_sync: Option<u64>,
    /// Full passes started: which settled target groups a full pass reads (`HealthSample`).
    full_passes: u64,
    reload_soon: bool,
    /// Which units (gateways with their links) this replica may change; all when alone.
    ownership: Ownership,
    units: Units,
    leases_lost_seen: u64,
    /// Units held elsewhere that this desired state does not have (orphan clean-up waits).
    orphans_waiting: Vec<String>,
    /// The links the last pass would remove (published for the prune guard across replicas).
    last_pruning: u64,
    /// The first desired state this process loaded: what a subject not yet seen in sync here is
    /// assumed to have been applied with (a restart over a converged fleet).
    first_state: Option<Arc<crosslink_desired::DesiredState>>,
    /// The last pass's observation: what a targeted pass takes the accounts it does not read
    /// from (`focus`).
    last_observed: Option<Observed>,
    /// Per subject, the accounts the last plan had changes for it in.
    acted_in: BTreeMap<Subject, BTreeSet<String>>,
    /// The subjects a new desired state changed (set by `load`, taken by `run`).
    changed: Option<BTreeSet<Subject>>,
    /// The subjects the last pass made calls for: the next pass reads their state again.
    changed_last: BTreeSet<Subject>,
    /// Each link's health as of the last pass's observation (`crosslink_plan::health`).
    healths: BTreeMap<String, LinkHealth>,
    /// Change events (`--events-queue`): what they ask for arrives here.
    events: Option<Arc<Events>>,
    /// Subjects a change event asked for, with when its first event arrived: the repair time is
    /// measured to the end of the pass that brings each back in sync.
    event_waiting: BTreeMap<Subject, Instant>,
}

/// Why an action was not started: the daemon is stopping (see `engine::execute`).
const SHUTTING_DOWN: &str = crate::engine::SHUTTING_DOWN;

fn jitter(d: Duration, fraction: f64) -> Duration {
    let f = rand::rng().random_range((1.0 - fraction)..=(1.0 + fraction));
    d.mul_f64(f)
}

fn kind_of(s: &Subject) -> &'static str {
    match s {
        Subject::Link(_) => "link",
        Subject::Gateway(_) => "gateway",
        Subject::Peering(..) => "peering",
        Subject::Consumer(_) => "consumer",
    }
}

impl<C: Cloud> Daemon<C> {
    pub fn new(
        engine: Engine<C>,
        opts: RunOptions,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        status: watch::Sender<StatusSnapshot>,
    ) -> Self {
        Daemon {
            engine,
            opts,
            metrics,
            health,
            status,
            desired: None,
            desired_status: DesiredStatus::default(),
            queue: BTreeMap::new(),
            items: BTreeMap::new(),
            prune: PruneStatus::default(),
            protection: ProtectionStatus::default(),
            protection_held: BTreeSet::new(),
            replacing_held: Vec::new(),
            last_full_sync: None,
            full_passes: 0,
            reload_soon: false,
            ownership: Ownership::solo(),
            units: Units::default(),
            leases_lost_seen: 0,
            orphans_waiting: Vec::new(),
            last_pruning: 0,
            first_state: None,
            last_observed: None,
            healths: BTreeMap::new(),
            acted_in: BTreeMap::new(),
            changed: None,
            changed_last: BTreeSet::new(),
            events: None,
            event_waiting: BTreeMap::new(),
        }
    }

    /// The metrics this daemon writes (a change-event consumer writes to the same).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Reconciles what change events touch as they arrive (`crate::events`).
    pub fn with_events(mut self, events: Arc<Events>) -> Self {
        self.events = Some(events);
        self
    }

    /// Subjects change events asked for are due after `event_settle`, except those backing off after an error
    /// (an event must not turn a backoff into a hot loop); their repair time starts counting.
    fn take_events(&mut self) {
        let Some(events) = &self.events else { return };
        let due = Instant::now() + self.opts.event_settle;
        for (s, at) in events.take() {
            let backing_off = self.items.get(&s).is_some_and(|i| i.failures > 0) && self.queue.contains_key(&s);
            if !backing_off {
                let t = self.queue.entry(s.clone()).or_insert(due);
                *t = (*t).min(due);
            }
            self.event_waiting.entry(s).or_insert(at);
        }
    }

    /// After a pass: the event-asked subjects it brought back in sync (every action of theirs
    /// done, no problem left) or found in sync have their repair time observed.
    fn settle_events(&mut self, plan: &Plan, executed: &[Executed], considered: impl Fn(&Subject) -> bool) {
        if self.event_waiting.is_empty() {
            return;
        }
        let done: HashSet<usize> =
            executed.iter().filter(|e| matches!(e.result, ActionResult::Done { .. })).map(|e| e.action.id).collect();
        let mut open: HashSet<&Subject> =
            plan.actions.iter().filter(|a| !done.contains(&a.id)).map(|a| &a.subject).collect();
        open.extend(plan.reports.iter().filter(|(_, r)| !r.problems.is_empty()).map(|(s, _)| s));
        let settled: Vec<Subject> =
            self.event_waiting.keys().filter(|s| considered(s) && !open.contains(s)).cloned().collect();
        for s in settled {
            if let Some(at) = self.event_waiting.remove(&s) {
                let took = at.elapsed();
                self.metrics.event_repair.observe(took.as_secs_f64());
                debug!(subject = %s, took_ms = took.as_millis() as u64, "change event handled: in sync");
            }
        }
    }

    /// What the events consumer resolves events with: this pass's observation and desired state.
    fn publish_resolver(&self) {
        if let (Some(events), Some(d)) = (&self.events, &self.desired) {
            events.set_resolver(Resolver::new(&d.state, self.last_observed.as_ref(), &self.units));
        }
    }

    /// After a pass: the resolver of its observation, and receiving may start.
    fn publish_pass_to_events(&self) {
        self.publish_resolver();
        if let Some(events) = &self.events {
            events.pass_done();
        }
    }

    /// Runs as one of several replicas: only the units `ownership` holds are reconciled.
    pub fn with_ownership(mut self, ownership: Ownership) -> Self {
        self.ownership = ownership;
        self
    }

    /// Shard metrics and the shards part of /status, between passes too (leases move any time).
    fn publish_shards(&mut self) {
        let units = self.units.units.len() as i64;
        self.metrics.shard_units.set(units);
        match self.ownership.status() {
            None => {
                self.metrics.shard_units_owned.set(units);
                self.metrics.shard_members.set(1);
                self.metrics.coordination_healthy.set(1);
            }
            Some(st) => {
                self.metrics.shard_units_owned.set(st.units.iter().filter(|u| u.mine).count() as i64);
                self.metrics.shard_members.set(st.members.len() as i64);
                self.metrics.coordination_healthy.set(i64::from(st.last_error.is_none() && st.last_contact.is_some()));
                if st.leases_lost > self.leases_lost_seen {
                    self.metrics.shard_leases_lost.inc_by(st.leases_lost - self.leases_lost_seen);
                    self.leases_lost_seen = st.leases_lost;
                }
                self.status.send_modify(|s| s.shards = Some(st));
            }
        }
        if let Some(e) = &self.events {
            let now = Some(e.status());
            self.status.send_if_modified(|s| {
                let changed = s.events != now;
                s.events = now;
                changed
            });
        }
    }

    /// Runs until `shutdown` is cancelled; then lets in-flight calls finish within the grace period.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut watch = match source::watch(&self.opts.paths, self.opts.debounce) {
            Ok(w) => Some(w),
            Err(e) => {
                warn!("cannot watch desired state ({e}); re-reading every {:?} instead", self.opts.reload_interval);
                None
            }
        };
        self.reload();
        let mut next_full = Instant::now();
        let mut next_reload = Instant::now() + self.opts.reload_interval;
        let mut owners = self.ownership.subscribe();
        loop {
            self.health.beat();
            self.publish_shards();
            let due = self.queue.values().min().copied();
            let wake = [Some(next_full), Some(next_reload), due, Some(Instant::now() + self.opts.heartbeat)]
                .into_iter()
                .flatten()
                .min()
                .expect("not empty");
            let mut reload = false;
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(()) = async { match watch.as_mut() { Some(w) => w.changes.recv().await, None => std::future::pending().await } } => reload = true,
                // A change event: what it touched is due now.
                () = async { match &self.events { Some(e) => e.arrived().await, None => std::future::pending().await } } => {}
                // Units gained or lost: a full pass for what this replica owns now.
                Ok(()) = owners.changed() => {
                    info!(owned = ?self.ownership.owned().unwrap_or_default(), "units owned changed");
                    next_full = Instant::now();
                }
                _ = tokio::time::sleep_until(wake) => {}
            }
            // Units gained or lost show in /status and the metrics at once, not after the pass
            // that follows.
            self.publish_shards();
            let now = Instant::now();
            if reload || now >= next_reload {
                next_reload = now + self.opts.reload_interval;
                self.reload_soon = false;
                if self.reload() {
                    self.publish_resolver();
                    // A new desired state observes what its difference touches; the first one,
                    // or one with nothing observed yet, everything.
                    match self.changed.take() {
                        Some(changed) if self.last_observed.is_some() => {
                            info!(subjects = changed.len(), "new desired state: reconciling what it changed");
                            for s in changed {
                                self.queue.insert(s, now);
                            }
                        }
                        _ => next_full = now,
                    }
                }
                if self.reload_soon {
                    next_reload = now + self.opts.debounce;
                }
            }
            if self.desired.is_none() {
                self.publish();
                continue;
            }
            self.take_events();
            let full = now >= next_full;
            let due: BTreeSet<Subject> =
                self.queue.iter().filter(|(_, t)| **t <= now).map(|(s, _)| s.clone()).collect();
            if !full && due.is_empty() {
                continue;
            }
            if full {
                next_full = now + jitter(self.opts.resync, 0.1);
            }
            let stop = shutdown.child_token();
            let grace = self.opts.grace;
            let health = self.health.clone();
            let heartbeat = self.opts.heartbeat;
            let pass = self.pass(full, due, stop.clone());
            tokio::pin!(pass);
            // The loop is alive while a pass makes progress: keep the heartbeat going.
            let mut beat = tokio::time::interval(heartbeat);
            let stopped = loop {
                tokio::select! {
                    _ = &mut pass => break false,
                    _ = beat.tick() => health.beat(),
                    _ = shutdown.cancelled() => {
                        info!(?grace, "shutting down: no new changes start; waiting for calls in flight");
                        stop.cancel();
                        if tokio::time::timeout(grace, &mut pass).await.is_err() {
                            warn!("calls still in flight after the grace period; stopping anyway");
                        }
                        break true;
                    }
                }
            };
            if stopped {
                break;
            }
        }
        info!("stopped");
    }

    /// The revision in force, wherever it shows: metrics, status, and the replica's membership.
    fn adopt_revision(
        metrics: &Metrics,
        status: &mut DesiredStatus,
        ownership: &Ownership,
        units: &Units,
        revision: &str,
    ) {
        metrics.set_revision(revision);
        status.revision = Some(revision.to_string());
        ownership.set_units(units.units.clone(), revision);
    }

    /// Re-reads desired state. Returns whether a new valid revision is now in force. What it
    /// found shows in /status at once (an invalid commit must not wait for the next pass).
    fn reload(&mut self) -> bool {
        let changed = self.load();
        let desired = self.desired_status.clone();
        self.status.send_modify(|s| s.desired = desired);
        changed
    }

    fn load(&mut self) -> bool {
        let now = unix_now();
        match source::load(&self.opts.paths) {
            Ok(loaded) => {
                self.metrics.desired_valid.set(1);
                self.desired_status.error = None;
                self.desired_status.invalid_revision = None;
                // A new commit that leaves the desired-state files as they were (desired state in
                // a larger repository, a commit elsewhere) is recorded, but not a reason for a
                // pass: the same state was just reconciled.
                if let Some(d) = self.desired.as_mut()
                    && d.revision != loaded.revision
                    && *d.state == *loaded.state
                {
                    debug!(revision = %loaded.revision, "new revision, desired state unchanged: no pass needed");
                    Self::adopt_revision(
                        &self.metrics,
                        &mut self.desired_status,
                        &self.ownership,
                        &self.units,
                        &loaded.revision,
                    );
                    // The links this replica would remove are those of the same state.
                    self.ownership.set_pruning(&loaded.revision, self.last_pruning);
                    d.revision = loaded.revision;
                    return false;
                }
                let changed =
                    self.desired.as_ref().is_none_or(|d| d.revision != loaded.revision || *d.state != *loaded.state);
                if changed {
                    info!(revision = %loaded.revision, summary = %loaded.state.summary(), "desired state loaded");
                    self.desired_status.loaded_at = Some(rfc3339(now));
                    self.units = Units::of(&loaded.state);
                    Self::adopt_revision(
                        &self.metrics,
                        &mut self.desired_status,
                        &self.ownership,
                        &self.units,
                        &loaded.revision,
                    );
                    self.first_state.get_or_insert_with(|| loaded.state.clone());
                    self.changed = self
                        .desired
                        .as_ref()
                        .map(|old| crate::focus::changed_subjects(&old.state, &loaded.state, inputs));
                    self.desired = Some(loaded);
                    // A new desired state is a reason to retry everything, permanent errors too.
                    for item in self.items.values_mut() {
                        item.failures = 0;
                        item.permanent = false;
                    }
                    let now = Instant::now();
                    for due in self.queue.values_mut() {
                        *due = now;
                    }
                }
                changed
            }
            Err(LoadFailure::Unstable) => {
                info!("desired state changed while being read; reading it again shortly");
                self.reload_soon = true;
                false
            }
            Err(LoadFailure::Invalid { revision, diagnostics }) => {
                self.metrics.desired_load_errors.inc();
                self.metrics.desired_valid.set(0);
                let text = diagnostics.to_string();
                if self.desired_status.invalid_revision.as_deref() != Some(revision.as_str()) {
                    error!(
                        revision = %revision,
                        in_force = self.desired_status.revision.as_deref().unwrap_or("none"),
                        "desired state is invalid; keeping the last good one, nothing is changed because of it:\n{text}"
                    );
                }
                self.desired_status.error = Some(text);
                self.desired_status.invalid_revision = Some(revision);
                false
            }
        }
    }

    fn backoff(&self, failures: u32) -> Duration {
        let exp = self.opts.min_backoff.saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(20)));
        jitter(exp.min(self.opts.max_backoff), 0.2)
    }

    async fn pass(&mut self, full: bool, due: BTreeSet<Subject>, stop: CancellationToken) {
        let Some(loaded) = self.desired.clone() else { return };
        let desired = loaded.state.clone();
        let started = Instant::now();
        // Sharded: observe what the owned units need, plan everything (orphans are only known
        // against the whole desired state), keep the owned units' part of the plan.
        let mut owned = self.ownership.owned();
        // Replicas on different revisions for a while (each pod syncs git on its own): a unit
        // that one side no longer has (or does not have yet) is still held by the other, and
        // what this side would clean up as orphaned is that unit's. Orphan clean-up waits.
        if let Some(o) = owned.as_mut()
            && o.contains(ORPHANS)
        {
            let mut waiting = self.ownership.skew();
            waiting.extend(self.ownership.foreign().into_iter().map(|u| format!("unit {u}")));
            if !waiting.is_empty() {
                if self.orphans_waiting != waiting {
                    warn!(
                        waiting_for = ?waiting,
                        "clean-up of removed gateways waits until every replica runs this desired-state revision"
                    );
                }
                o.remove(ORPHANS);
            } else if !self.orphans_waiting.is_empty() {
                info!("every replica runs this desired-state revision: clean-up of removed gateways resumes");
            }
            self.orphans_waiting = waiting;
        }
        // A follow-up pass reads only what its due items touch (`focus`). A full pass reads every
        // account, and the targets of groups whose targets were all healthy one full pass in
        // `target_health_every` (`HealthSample`). Both read the targets of the due items and of
        // what the last pass changed, whether or not their follow-up is due yet.
        if full {
            self.full_passes += 1;
        }
        let subjects = || due.iter().chain(&self.changed_last).cloned();
        let focus = match (&self.last_observed, full) {
            (Some(_), false) => Some(Focus::of(&desired, subjects(), &self.acted_in)),
            (Some(_), true) if self.opts.target_health_every > 1 => {
                let sample = HealthSample { pass: self.full_passes, every: self.opts.target_health_every };
                Some(Focus::full(&desired, subjects(), &self.acted_in, sample))
            }
            _ => None,
        };
        let observe = async |only: Option<&BTreeSet<String>>| match (&focus, &self.last_observed) {
            (Some(f), Some(previous)) => {
                let (observed, read) = self.engine.observe_focused(&desired, previous, f, only).await;
                // A full pass reads every account: nothing it plans waits as unread.
                (observed, (!full).then_some(read))
            }
            _ => (self.engine.observe_only(&desired, only).await, None),
        };
        let mut read: Option<BTreeSet<String>> = None;
        let (plan, unit_of, observed) = match &owned {
            None => {
                let observed;
                (observed, read) = observe(None).await;
                (crosslink_plan::plan(&desired, &observed, self.engine.settings()), None, Some(observed))
            }
            Some(owned) if owned.is_empty() => (Plan::default(), Some(Vec::new()), None),
            Some(owned) => {
                let accounts = self.units.accounts(&desired, owned);
                let observed;
                (observed, read) = observe(Some(&accounts)).await;
                let all = crosslink_plan::plan(&desired, &observed, self.engine.settings());
                let unit_of: Vec<String> = all.actions.iter().map(|a| self.units.of_action(&observed, a)).collect();
                let report_unit = |s: &Subject| self.units.of_subject(s).unwrap_or(ORPHANS).to_string();
                let (mine, unit_of) = units::scoped(&all, &unit_of, owned, report_unit);
                (mine, Some(unit_of), Some(observed))
            }
        };
        self.last_observed = observed;
        self.acted_in = BTreeMap::new();
        for a in &plan.actions {
            self.acted_in.entry(a.subject.clone()).or_default().insert(a.account.clone());
        }
        // On a targeted pass nothing is changed in an account that was not read again: a subject
        // with changes there waits for a pass that reads it, and its state stays as it was.
        let unread = |a: &Action| read.as_ref().is_some_and(|r| !r.contains(&a.account));
        let stale: BTreeSet<Subject> = plan.actions.iter().filter(|a| unread(a)).map(|a| a.subject.clone()).collect();

        let plan = self.attribute_changes(plan, &desired);

        // Prune guard: too many links removed at once, or everything because the desired state
        // became empty, waits for an operator.
        // Links that leave desired state; a link still desired that drops a target or a method
        // is not being removed.
        let pruned: Vec<String> = plan.pruned_links().into_iter().filter(|l| desired.link(l).is_none()).collect();
        let emptied = desired.links.is_empty() && !pruned.is_empty();
        // Sharded: the limit is on all replicas together. Each publishes how many links it would
        // remove; removals wait until every replica has counted this revision, and are held back
        // when the sum is over the limit, though each replica's share may be under it.
        let mut total = pruned.len();
        let mut count_pending: Option<String> = None;
        if owned.is_some() {
            self.ownership.set_pruning(&loaded.revision, pruned.len() as u64);
            self.last_pruning = pruned.len() as u64;
            match self.ownership.pruning_total(pruned.len() as u64) {
                Ok(t) => total = t as usize,
                Err(why) if !pruned.is_empty() && !self.opts.allow_prune => count_pending = Some(why),
                Err(_) => {}
            }
        }
        if let Some(why) = &count_pending {
            info!(links = ?pruned, "removals wait: {why}");
        }
        let blocked = !self.opts.allow_prune && (total > self.opts.max_prune || emptied);
        if blocked {
            let message = if emptied {
                format!("desired state has no links: refusing to remove all {} links", pruned.len())
            } else if total > pruned.len() {
                format!(
                    "{total} links would be removed at once by all replicas together, {} of them by this one (limit {})",
                    pruned.len(),
                    self.opts.max_prune
                )
            } else {
                format!("{} links would be removed at once (limit {})", pruned.len(), self.opts.max_prune)
            };
            if !self.prune.blocked || self.prune.links != pruned {
                warn!(links = ?pruned, "prune guard: {message}; restore the YAML or run with --allow-prune");
            }
            self.metrics.prune_blocked.set(1);
            self.metrics.prune_blocked_total.inc();
            self.prune = PruneStatus {
                blocked: true,
                links: pruned.clone(),
                message: Some(format!("{message}; restore the YAML or restart with --allow-prune")),
            };
        } else {
            self.metrics.prune_blocked.set(0);
            self.prune = PruneStatus::default();
        }

        // Protection guard (issue 14): a change that makes a route less protected (authorization
        // down to NONE, the API key requirement dropped, a WAF disassociated, the resource policy
        // widened to everyone, a custom domain's TLS lowered, TLS to the backend or its check
        // switched off) is as dangerous as a mass removal, and
        // waits for an operator the same way: the YAML fixed, or --allow-weakening. Sharded, each
        // replica holds the changes of the units it holds (the plan is scoped to them).
        let weakening: Vec<String> = plan.weakening.values().cloned().collect();
        let protect = !self.opts.allow_weakening && !weakening.is_empty();
        if protect {
            let message = format!(
                "{} change(s) would make routes less protected; put the settings each change names back in the YAML, or restart with --allow-weakening",
                weakening.len()
            );
            if self.protection.changes != weakening {
                warn!(changes = ?weakening, "protection guard: {message}");
            }
            self.metrics.protection_blocked.set(1);
            self.protection = ProtectionStatus { blocked: true, changes: weakening, message: Some(message) };
        } else {
            self.metrics.protection_blocked.set(0);
            self.protection = ProtectionStatus::default();
        }
        let weakens = |a: &Action| protect && plan.weakening.contains_key(&a.id);
        // Replacing what a link adopted (issue 17) waits for an operator too.
        let replaces = |a: &Action| !self.opts.allow_replacement && plan.replacing.contains_key(&a.id);
        let replacing: Vec<String> =
            if self.opts.allow_replacement { Vec::new() } else { plan.replacing.values().cloned().collect() };
        if !replacing.is_empty() && replacing != self.replacing_held {
            warn!(
                changes = ?replacing,
                "held: {} replacement(s) of adopted resources that cannot change in place; restart with --allow-replacement to make them",
                replacing.len()
            );
        }
        self.replacing_held = replacing;

        // Items that failed wait out their backoff; everything else may progress in any pass
        // (the observation is shared, and changes of one item often wait on another's).
        let now = Instant::now();
        let in_backoff: BTreeSet<Subject> = self
            .queue
            .iter()
            .filter(|(s, t)| **t > now && self.items.get(*s).is_some_and(|i| i.failures > 0))
            .filter(|(s, _)| {
                let failed = self.items.get(*s).and_then(|i| i.failed_resource.as_ref());
                failed.is_none_or(|r| plan.actions.iter().any(|a| &a.subject == *s && a.op.target() == *r))
            })
            .map(|(s, _)| s.clone())
            .collect();
        let desired_ix = desired.index();
        let hold = |a: &Action| -> Option<String> {
            let desired_link = matches!(&a.subject, Subject::Link(l) if desired_ix.link(l).is_some());
            if blocked && a.reason == Reason::NoLongerDesired && !desired_link {
                return Some("held back by the prune guard".into());
            }
            if let Some(why) = count_pending.as_ref().filter(|_| a.reason == Reason::NoLongerDesired && !desired_link) {
                return Some(format!("prune guard: {why}"));
            }
            if weakens(a) {
                return Some("held back by the protection guard".into());
            }
            if replaces(a) {
                return Some("held back: it replaces an adopted resource (--allow-replacement)".into());
            }
            if in_backoff.contains(&a.subject) {
                return Some("backing off after an error".into());
            }
            if stale.contains(&a.subject) {
                return Some("waits for a pass that reads its accounts again".into());
            }
            None
        };
        let shards = unit_of.as_deref().map(|unit_of| ShardCx { ownership: &self.ownership, unit_of });
        let ctx = ExecContext { shards, hold: &hold, stop: Some(stop), revision: Some(&loaded.revision) };
        let executed = self.engine.execute(&desired, &plan, &ctx).await;
        let elapsed = started.elapsed();
        self.metrics.reconcile_duration.observe(elapsed.as_secs_f64());
        let untouched: BTreeSet<Subject> = in_backoff.union(&stale).cloned().collect();
        self.changed_last = executed
            .iter()
            .filter(|e| !matches!(e.result, ActionResult::Skipped { .. }))
            .map(|e| e.action.subject.clone())
            .collect();
        self.protection_held =
            plan.actions.iter().filter(|a| weakens(a) || replaces(a)).map(|a| a.subject.clone()).collect();
        self.record(&plan, &executed, full, &due, &untouched, blocked, &loaded.revision);
        self.settle_events(&plan, &executed, |s| (full || due.contains(s)) && !untouched.contains(s));
        if plan.in_sync() {
            let t = unix_now();
            self.last_full_sync = Some(t);
            self.metrics.last_full_sync.set(t as f64);
        }
        if full && !self.health.is_ready() {
            info!("first full pass done: ready");
            self.health.set_ready();
        }
        self.healths = self.link_healths(&plan);
        self.publish_pass_to_events();
        self.publish_with(&plan, &executed, &pruned);
    }

    /// Every link's health from the pass's observation and plan (the links of units held here).
    fn link_healths(&self, plan: &Plan) -> BTreeMap<String, LinkHealth> {
        let (Some(d), Some(observed)) = (&self.desired, &self.last_observed) else { return BTreeMap::new() };
        let ix = d.state.index();
        d.state
            .links
            .iter()
            .filter(|l| plan.reports.contains_key(&Subject::Link(l.metadata.name.clone())))
            .map(|l| {
                let h = link_health_on(ix.gateway(&l.spec.gateway), observed, plan, l);
                (l.metadata.name.clone(), h)
            })
            .collect()
    }

    /// Drift is what AWS changed behind crosslink's back: a difference found while the subject's
    /// desired inputs are what they were when it was last in sync. A difference after the
    /// desired state moved is an intended change, and its reason, log line and metric say so.
    fn attribute_changes(&self, mut plan: Plan, desired: &crosslink_desired::DesiredState) -> Plan {
        if !plan.actions.iter().any(|a| matches!(a.reason, Reason::Drift { .. })) {
            return plan;
        }
        let now = desired.index();
        let first = self.first_state.as_ref().map(|f| f.index());
        for a in &mut plan.actions {
            if matches!(a.reason, Reason::Drift { .. }) && !self.unchanged_since_sync(&a.subject, &now, first.as_ref())
            {
                let a = std::sync::Arc::make_mut(a);
                a.reason = std::mem::replace(&mut a.reason, Reason::Missing).as_change();
            }
        }
        plan
    }

    /// Whether the subject's desired inputs are those it was last in sync with (in this process,
    /// else those of the first desired state it loaded).
    fn unchanged_since_sync(
        &self,
        s: &Subject,
        desired: &crosslink_desired::Index<'_>,
        first_state: Option<&crosslink_desired::Index<'_>>,
    ) -> bool {
        let now = inputs(desired, s);
        match self.items.get(s).and_then(|i| i.synced_inputs) {
            Some(synced) => synced == now,
            None => first_state.is_some_and(|f| inputs(f, s) == now),
        }
    }

    /// Updates per-item memory, the queue and the metrics after a pass.
    fn record(
        &mut self,
        plan: &Plan,
        executed: &[Executed],
        full: bool,
        due: &BTreeSet<Subject>,
        in_backoff: &BTreeSet<Subject>,
        blocked: bool,
        revision: &str,
    ) {
        let now = Instant::now();
        let t = unix_now();
        let mut subjects: BTreeSet<Subject> = plan.reports.keys().cloned().collect();
        subjects.extend(plan.actions.iter().map(|a| a.subject.clone()));
        // Each subject's calls and actions, and the desired state's lookups, found once: a
        // search per subject made recording a pass quadratic in links.
        let mut executed_of: HashMap<&Subject, Vec<&Executed>> = HashMap::new();
        for e in executed {
            executed_of.entry(&e.action.subject).or_default().push(e);
        }
        let mut actions_of: HashMap<&Subject, Vec<&Action>> = HashMap::new();
        for a in &plan.actions {
            actions_of.entry(&a.subject).or_default().push(a);
        }
        let ix = self.desired.as_ref().map(|d| d.state.index());
        for s in &subjects {
            // Held back for its backoff, nothing of it ran: its backoff stands as it was (a pass
            // for other items must neither shorten nor stretch it).
            if in_backoff.contains(s) {
                continue;
            }
            let considered = full || due.contains(s);
            let mine: &[&Executed] = executed_of.get(s).map_or(&[], Vec::as_slice);
            let actions: &[&Action] = actions_of.get(s).map_or(&[], Vec::as_slice);
            let done = mine.iter().filter(|e| matches!(e.result, ActionResult::Done { .. })).count();
            let item = self.items.entry(s.clone()).or_default();
            let mut recreated: Option<CloudError> = None;
            for e in mine.iter().filter(|e| matches!(e.result, ActionResult::Done { .. })) {
                if e.action.verb == Verb::Create && matches!(e.action.reason, Reason::Replaced { .. }) {
                    let n = item.replacements.entry(e.action.op.target()).or_default();
                    *n += 1;
                    if *n >= MAX_RECREATES {
                        recreated = Some(crate::engine::recreated(&e.action, *n));
                    }
                }
            }
            let failed_call = mine.iter().find(|e| matches!(e.result, ActionResult::Failed { .. }));
            item.failed_resource = failed_call.filter(|_| recreated.is_none()).map(|e| e.action.op.target());
            let failure: Option<&CloudError> = failed_call
                .and_then(|e| match &e.result {
                    ActionResult::Failed { error } => Some(error),
                    _ => None,
                })
                .or(recreated.as_ref());
            let report = plan.reports.get(s);
            let problem = report.and_then(|r| r.problems.first());
            let pending = actions.len();
            let waiting = report.is_some_and(|r| !r.waiting.is_empty());
            let desired_link = matches!(s, Subject::Link(l) if ix.as_ref().is_some_and(|d| d.link(l).is_some()));
            let held_by_guard =
                (blocked && !desired_link && actions.iter().any(|a| a.reason == Reason::NoLongerDesired))
                    || self.protection_held.contains(s);
            let interrupted =
                mine.iter().any(|e| matches!(&e.result, ActionResult::Skipped { why } if why == SHUTTING_DOWN));
            let min_backoff = self.opts.min_backoff;
            let now_inputs = ix.as_ref().map(|d| inputs(d, s)).unwrap_or_default();
            let item = self.items.entry(s.clone()).or_default();
            if considered {
                item.last_reconcile = Some(t);
                item.revision = Some(revision.to_string());
            }
            // Drift repairs: changes to something that was in sync before this pass, with the
            // desired state as it was then. Everything else done is an intended change.
            let unchanged = item.synced_inputs == Some(now_inputs);
            for e in mine.iter().filter(|e| matches!(e.result, ActionResult::Done { .. })) {
                let drift = matches!(e.action.reason, Reason::Drift { .. })
                    || (item.ready_before && unchanged && matches!(e.action.reason, Reason::Missing));
                let labels = ResourceLabels { resource: e.action.op.kind().label().into() };
                if drift {
                    self.metrics.drift_repairs.get_or_create(&labels).inc();
                } else if e.action.verb != Verb::Deploy {
                    self.metrics.changes_applied.get_or_create(&labels).inc();
                }
            }
            let result;
            let next: Option<Duration> = if let Some(err) = failure {
                item.failures += 1;
                item.permanent = !err.kind.is_transient();
                item.last_error = Some(LastError { code: err.code.clone(), message: err.message.clone(), hint: None });
                result = "error";
                Some(if item.permanent { self.opts.permanent_retry } else { Duration::ZERO })
            } else if let Some(p) = problem {
                item.failures += 1;
                item.last_error =
                    Some(LastError { code: p.code.clone(), message: p.message.clone(), hint: p.hint.clone() });
                result = "error";
                Some(Duration::ZERO)
            } else if interrupted {
                // Shutting down: what was not started is left for the next run.
                result = "interrupted";
                None
            } else if done > 0 {
                item.failures = 0;
                item.waits = 0;
                item.permanent = false;
                item.last_error = None;
                result = "success";
                Some(self.opts.followup)
            } else if held_by_guard {
                result = "noop";
                None
            } else if pending > 0 || waiting {
                item.waits += 1;
                result = "noop";
                let w = min_backoff.saturating_mul(2u32.saturating_pow(item.waits.min(6))).min(Duration::from_secs(60));
                Some(w)
            } else {
                item.failures = 0;
                item.waits = 0;
                item.permanent = false;
                item.last_error = None;
                item.replacements.clear();
                result = "noop";
                None
            };
            item.ready_before = pending == 0 && !waiting && problem.is_none() && failure.is_none();
            if item.ready_before {
                item.synced_inputs = Some(now_inputs);
            }
            let failures = item.failures;
            match next {
                // Failures back off exponentially (with jitter); permanent ones slowly.
                Some(d) if d.is_zero() => {
                    let b = self.backoff(failures);
                    self.queue.insert(s.clone(), now + b);
                }
                Some(d) => {
                    self.queue.insert(s.clone(), now + d);
                }
                None => {
                    self.queue.remove(s);
                }
            }
            if considered {
                self.metrics
                    .reconciles
                    .get_or_create(&ReconcileLabels { kind: kind_of(s).into(), result: result.into() })
                    .inc();
                let n = mine.len();
                let error = failure.map(|e| e.code.as_str()).or(problem.map(|p| p.code.as_str())).unwrap_or("");
                // A failure is a warning, with what failed and why: the runbook's first step is
                // to look for WARN and ERROR lines.
                if failure.is_some() || problem.is_some() {
                    let why = failure
                        .map(|e| e.message.clone())
                        .or(problem.map(|p| match &p.hint {
                            Some(h) => format!("{} (hint: {h})", p.message),
                            None => p.message.clone(),
                        }))
                        .unwrap_or_default();
                    warn!(subject = %s, revision, actions = n, done, outcome = result, error, "reconcile failed: {why}");
                } else if interrupted {
                    warn!(subject = %s, revision, actions = n, done, outcome = result, "interrupted by shutdown; the next run picks it up");
                } else if n > 0 {
                    info!(subject = %s, revision, actions = n, done, outcome = result, error, "reconciled");
                }
            }
        }
        // Items that left the plan entirely are done.
        self.items.retain(|s, _| subjects.contains(s));
        self.queue.retain(|s, _| subjects.contains(s));
        self.metrics.queue_depth.set(self.queue.len() as i64);
        if let Some(ErrorKind::Throttled) = executed.iter().find_map(|e| match &e.result {
            ActionResult::Failed { error } => Some(error.kind),
            _ => None,
        }) {
            warn!("AWS is throttling crosslink's calls; the client-side rate limits slow down");
        }
    }

    fn object(&self, s: &Subject, plan: &Plan, tally: &Tally<'_>, pruned: &[String]) -> ObjectStatus {
        let (kind, name) = match s {
            Subject::Link(n) => ("Link", n.clone()),
            Subject::Gateway(n) => ("Gateway", n.clone()),
            Subject::Peering(a, b) => ("Peering", format!("{a}/{b}")),
            Subject::Consumer(n) => ("Consumer", n.clone()),
        };
        // A link's chain includes its peering: its failures and waits are the link's too.
        let mut related = vec![s.clone()];
        if let (Subject::Link(l), Some(ix)) = (s, &tally.desired)
            && let Some(link) = ix.link(l)
            && let Some(gw) = ix.gateway(&link.spec.gateway)
        {
            related.push(Subject::Peering(gw.spec.vpc_id.clone(), link.spec.service.vpc_id.clone()));
        }
        let report = plan.reports.get(s).cloned().unwrap_or_default();
        let pending = related.iter().map(|r| tally.pending.get(r).copied().unwrap_or(0)).sum();
        let item = related.iter().filter_map(|r| self.items.get(r)).fold(Item::default(), |mut acc, i| {
            acc.failures = acc.failures.max(i.failures);
            acc.permanent |= i.permanent;
            acc.last_error = acc.last_error.or(i.last_error.clone());
            acc.last_reconcile = acc.last_reconcile.max(i.last_reconcile);
            acc.revision = acc.revision.or(i.revision.clone());
            acc
        });
        let removed = matches!(s, Subject::Link(l) if tally.desired.as_ref().is_some_and(|d| d.link(l).is_none()))
            || matches!(s, Subject::Gateway(g) if tally.desired.as_ref().is_some_and(|d| d.gateway(g).is_none()))
            || matches!(s, Subject::Consumer(c) if tally.desired.as_ref().is_some_and(|d| d.consumer(c).is_none()));
        let last_failed = related.iter().any(|r| tally.failed.contains(r));
        let health = match s {
            Subject::Link(l) if !removed => self.healths.get(l).cloned(),
            _ => None,
        };
        let (phase, message) = if let Subject::Link(l) = s {
            if self.prune.blocked && pruned.contains(l) {
                (Phase::PruneBlocked, "removal held back by the prune guard".to_string())
            } else {
                self.phase(&report, &item, pending, removed, last_failed)
            }
        } else {
            self.phase(&report, &item, pending, removed, last_failed)
        };
        let synced = phase == Phase::Ready && pending == 0;
        // In sync is not working: a link whose traffic cannot flow is never plain Ready.
        let (phase, message) = match &health {
            Some(h) if phase == Phase::Ready && !h.healthy && h.starting() => {
                (Phase::Progressing, format!("in sync; starting: {}", h.summary))
            }
            Some(h) if phase == Phase::Ready && !h.healthy => (Phase::Degraded, format!("in sync, but {}", h.summary)),
            Some(h) if phase == Phase::Ready => (phase, format!("{message}; {}", h.summary)),
            _ => (phase, message),
        };
        ObjectStatus {
            kind: kind.into(),
            name,
            phase,
            message,
            last_reconcile: item.last_reconcile.map(rfc3339),
            last_error: item.last_error.clone(),
            transport: match s {
                Subject::Link(l) => {
                    self.desired.as_ref().and_then(|d| d.state.link(l)).map(|l| l.spec.transport.name().to_string())
                }
                _ => None,
            },
            resources: report.resources.clone(),
            pending_changes: pending,
            revision: item.revision.clone(),
            retained: report.retained.clone(),
            warnings: report.warnings.clone(),
            synced,
            health,
        }
    }

    fn phase(
        &self,
        report: &crosslink_plan::Report,
        item: &Item,
        pending: usize,
        removed: bool,
        last_failed: bool,
    ) -> (Phase, String) {
        if let Some(p) = report.problems.first() {
            return (Phase::Failed, format!("{}: {}", p.code, p.message));
        }
        if item.permanent {
            let e = item.last_error.as_ref().map(|e| format!("{}: {}", e.code, e.message)).unwrap_or_default();
            return (Phase::Failed, format!("{e} (retried slowly, or when desired state changes)"));
        }
        if last_failed || item.failures > 0 {
            let e = item.last_error.as_ref().map(|e| format!("{}: {}", e.code, e.message)).unwrap_or_default();
            return (Phase::Degraded, format!("retrying after {e}"));
        }
        if removed && pending == 0 && !report.retained.is_empty() {
            return (Phase::Ready, format!("removed from desired state; kept: {}", report.retained.join("; ")));
        }
        if removed {
            return (Phase::Progressing, format!("being removed ({pending} change(s) left)"));
        }
        if let Some(w) = report.waiting.first() {
            return (Phase::Progressing, format!("waiting: {w}"));
        }
        if pending > 0 {
            return (Phase::Progressing, format!("{pending} change(s) in progress"));
        }
        if !report.retained.is_empty() {
            return (Phase::Ready, format!("retained: {}", report.retained.join("; ")));
        }
        (Phase::Ready, "in sync".into())
    }

    fn publish(&self) {
        let plan = Plan::default();
        self.publish_with(&plan, &[], &[]);
    }

    fn publish_with(&self, plan: &Plan, executed: &[Executed], pruned: &[String]) {
        let desired = self.desired.as_ref().map(|d| d.state.clone());
        let mut gateways = Vec::new();
        let mut links = Vec::new();
        let mut consumers = Vec::new();
        let mut seen: BTreeSet<Subject> = BTreeSet::new();
        if let Some(d) = &desired {
            // Sharded: only the objects of the units held here; the holder reports the others.
            let owned = self.ownership.owned();
            let mine =
                |s: &Subject| owned.as_ref().is_none_or(|o| o.contains(self.units.of_subject(s).unwrap_or(ORPHANS)));
            seen.extend(d.gateways.iter().map(|g| Subject::Gateway(g.metadata.name.clone())).filter(|s| mine(s)));
            seen.extend(d.links.iter().map(|l| Subject::Link(l.metadata.name.clone())).filter(|s| mine(s)));
            seen.extend(d.consumers.iter().map(|c| Subject::Consumer(c.metadata.name.clone())).filter(|s| mine(s)));
        }
        // Removed objects with changes left are shown until they are gone, and those whose
        // resources were kept (Retain) for as long as they are there.
        seen.extend(plan.actions.iter().map(|a| a.subject.clone()).filter(|s| !matches!(s, Subject::Peering(..))));
        seen.extend(
            plan.reports
                .iter()
                .filter(|(s, r)| !r.retained.is_empty() && !matches!(s, Subject::Peering(..)))
                .map(|(s, _)| s.clone()),
        );
        let mut pending: HashMap<&Subject, usize> = HashMap::new();
        for a in &plan.actions {
            *pending.entry(&a.subject).or_default() += 1;
        }
        let tally = Tally {
            desired: desired.as_ref().map(|d| d.index()),
            pending,
            failed: executed
                .iter()
                .filter(|e| matches!(e.result, ActionResult::Failed { .. }))
                .map(|e| &e.action.subject)
                .collect(),
        };
        for s in &seen {
            let o = self.object(s, plan, &tally, pruned);
            match s {
                Subject::Gateway(_) => gateways.push(o),
                Subject::Consumer(_) => consumers.push(o),
                _ => links.push(o),
            }
        }
        self.metrics.link_ready.clear();
        self.metrics.link_synced.clear();
        self.metrics.link_transport.clear();
        self.metrics.link_healthy.clear();
        self.metrics.link_targets.clear();
        self.metrics.links_by_phase.clear();
        for l in &links {
            self.metrics
                .link_ready
                .get_or_create(&LinkLabels { link: l.name.clone() })
                .set(i64::from(l.phase == Phase::Ready));
            self.metrics.link_synced.get_or_create(&LinkLabels { link: l.name.clone() }).set(i64::from(l.synced));
            if let Some(t) = &l.transport {
                let labels = TransportLabels { link: l.name.clone(), transport: t.clone() };
                self.metrics.link_transport.get_or_create(&labels).set(1);
            }
            if let Some(h) = &l.health {
                self.metrics.link_healthy.get_or_create(&LinkLabels { link: l.name.clone() }).set(i64::from(h.healthy));
                for state in TargetCounts::STATES {
                    let labels = TargetStateLabels { link: l.name.clone(), state: state.into() };
                    self.metrics.link_targets.get_or_create(&labels).set(i64::from(h.targets.get(state)));
                }
            }
            self.metrics.links_by_phase.get_or_create(&PhaseLabels { phase: l.phase.as_str().into() }).inc();
        }
        let snapshot = StatusSnapshot {
            instance: self.engine.settings().instance.clone(),
            version: self.opts.version.clone(),
            ready: self.health.is_ready(),
            desired: self.desired_status.clone(),
            prune: self.prune.clone(),
            protection: self.protection.clone(),
            last_full_sync: self.last_full_sync.map(rfc3339),
            gateways,
            links,
            consumers,
            shards: self.ownership.status(),
            events: self.events.as_ref().map(|e| e.status()),
        };
        self.status.send_replace(snapshot);
    }
}

/// What the status of every object is read from, counted once per publication: a count or a
/// search per object made publishing quadratic in links.
struct Tally<'a> {
    desired: Option<crosslink_desired::Index<'a>>,
    /// Actions of the plan by subject.
    pending: HashMap<&'a Subject, usize>,
    /// Subjects with a failed call in the last execution.
    failed: HashSet<&'a Subject>,
}

/// Whether an action changes AWS (as opposed to being held or skipped); for tests and logs.
pub fn is_change(e: &Executed) -> bool {
    !matches!(e.result, ActionResult::Skipped { .. }) && e.action.verb != Verb::Deploy
}
