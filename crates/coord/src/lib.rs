//! Running several replicas of the controller: work is divided into units (a gateway and its
//! links), and each unit is owned by at most one replica at a time through a lease in an existing
//! coordination engine: Kubernetes `coordination.k8s.io/v1` Leases ([`kube`]) or etcd v3 leases
//! ([`etcd`]). [`memory`] is an in-process engine for tests.
//!
//! The [`Coordinator`] loop keeps this replica's membership alive, takes the units it should own
//! and renews them; [`Ownership`] is what the reconcile loop asks: which units it may work on,
//! and, right before every mutating AWS call, whether it still may.
//!
//! # Timing and fencing
//!
//! With `lease_duration` L, `renew_deadline` R and `retry_period` P (defaults 15 s, 10 s, 2 s,
//! the values Kubernetes' own controllers use):
//!
//! - the holder renews every P; a renewal proves the lease until L after the request was
//!   *sent*, in the engine's clock;
//! - the holder considers the lease its own only until R after the send time of its last
//!   successful renewal (monotonic clock), and checks that before every mutating call: once R
//!   has passed without a renewal, it stops mutating;
//! - another replica can take the lease only once the engine has seen no renewal for L (etcd
//!   expires the lease on its own clock; for Kubernetes Leases the taker waits L on its own
//!   monotonic clock after it last saw the lease change).
//!
//! So between the holder's last possible call start (R) and the earliest takeover (L) there are
//! L - R (5 s by default) for clock-rate differences between machines and for a call that was
//! sent just before R to complete at AWS. Wall-clock offsets between machines do not matter: no
//! decision compares timestamps taken on two machines. A handed-over unit (rebalancing, shutdown)
//! is released only once its in-flight calls have returned.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

#[cfg(feature = "etcd")]
pub mod etcd;
#[cfg(feature = "kubernetes")]
pub mod kube;
pub mod memory;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How long a lease lasts without renewal before another replica may take it.
    pub lease_duration: Duration,
    /// The holder stops mutating this long after its last successful renewal was sent.
    pub renew_deadline: Duration,
    /// How often leases are renewed and unowned units looked for.
    pub retry_period: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

impl Timing {
    /// `retry_period < renew_deadline < lease_duration`, with room for at least two renewals
    /// before the deadline and a safety margin after it.
    pub fn check(&self) -> Result<(), String> {
        if self.retry_period.is_zero() || self.retry_period * 2 > self.renew_deadline {
            return Err(format!(
                "the retry period ({:?}) must be at most half the renew deadline ({:?}): a lease must get two chances to be renewed",
                self.retry_period, self.renew_deadline
            ));
        }
        if self.renew_deadline >= self.lease_duration {
            return Err(format!(
                "the renew deadline ({:?}) must be shorter than the lease duration ({:?}): the difference is the margin for clock-rate skew and calls in flight",
                self.renew_deadline, self.lease_duration
            ));
        }
        if self.lease_duration.as_secs() < 1 {
            return Err("the lease duration must be at least 1s (etcd and Kubernetes count it in seconds)".into());
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    /// The engine cannot be reached or did not answer in time.
    #[error("coordination engine unavailable: {0}")]
    Unavailable(String),
    /// Anything else the engine answered (permissions, a malformed object, ...).
    #[error("coordination engine error: {0}")]
    Engine(String),
}

/// A live replica and the desired-state revision it runs with ("" before it has loaded one).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Member {
    pub replica: String,
    pub revision: String,
    /// How many links its last plan for that revision would remove (the prune guard counts
    /// them across replicas); `None` before it has planned that revision.
    pub pruning: Option<u64>,
}

/// A coordination engine as the coordinator uses it. Every method is one or a few round trips;
/// the coordinator calls them every retry period.
pub trait Backend: Send + Sync + 'static {
    /// For logs and status: `etcd http://127.0.0.1:2379 /crosslink/prod`.
    fn describe(&self) -> String;
    /// Keeps this replica's membership alive (registering it the first time, with the revision
    /// it runs) and returns the live replicas, this one included.
    fn heartbeat(
        &self,
        revision: &str,
        pruning: Option<u64>,
    ) -> impl Future<Output = Result<Vec<Member>, CoordError>> + Send;
    /// Who holds each unit's lease now; expired and released leases are absent.
    fn holders(&self) -> impl Future<Output = Result<BTreeMap<String, String>, CoordError>> + Send;
    /// Takes the unit's lease if it is free, or renews it if this replica holds it.
    /// `Some(t)`: held, proven by a request sent at `t` (the lease runs at least until t + L).
    /// `None`: someone else holds it.
    fn acquire(&self, unit: &str) -> impl Future<Output = Result<Option<Instant>, CoordError>> + Send;
    /// Gives the lease up at once (it would also expire on its own).
    fn release(&self, unit: &str) -> impl Future<Output = Result<(), CoordError>> + Send;
    /// Leaves: membership and every lease. On shutdown.
    fn resign(&self) -> impl Future<Output = Result<(), CoordError>> + Send;
}

/// The replica among `members` that should own `unit`: rendezvous (highest random weight)
/// hashing, so that when a replica joins or leaves only the units it gains or loses move.
pub fn preferred<'m>(unit: &str, members: &'m [String]) -> Option<&'m str> {
    members
        .iter()
        .max_by_key(|m| {
            let mut h = Sha256::new();
            h.update(unit.as_bytes());
            h.update([0]);
            h.update(m.as_bytes());
            let d = h.finalize();
            (u64::from_be_bytes(d[..8].try_into().expect("8 bytes")), m.as_str())
        })
        .map(String::as_str)
}

/// One unit as /status shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnitStatus {
    pub unit: String,
    pub gateways: Vec<String>,
    /// The replica holding its lease, as last read from the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// Where rendezvous hashing places it among the live replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred: Option<String>,
    /// Held by this replica, and for how much longer without a renewal (ms).
    pub mine: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_for_ms: Option<u64>,
}

/// This replica's view of the shards.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardStatus {
    pub replica: String,
    pub backend: String,
    pub lease_duration_seconds: f64,
    pub renew_deadline_seconds: f64,
    pub members: Vec<String>,
    /// The desired-state revision each live replica runs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub revisions: BTreeMap<String, String>,
    pub units: Vec<UnitStatus>,
    /// Unix time of the last successful exchange with the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_contact: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Leases lost without handing them over (not renewed in time, or taken by another replica).
    #[serde(default)]
    pub leases_lost: u64,
}

#[derive(Debug)]
struct Inner {
    replica: String,
    backend: String,
    timing: Timing,
    /// Unit -> gateways, from the desired state in force.
    wanted: BTreeMap<String, Vec<String>>,
    /// Units held -> until when this replica may still mutate them.
    held: BTreeMap<String, Instant>,
    /// Units this replica is giving up: no new calls, released once none is in flight.
    draining: BTreeSet<String>,
    in_flight: BTreeMap<String, usize>,
    holders: BTreeMap<String, String>,
    members: Vec<Member>,
    /// The desired-state revision this replica runs.
    revision: String,
    /// Links this replica's last plan for `revision` would remove.
    pruning: Option<u64>,
    last_contact: Option<u64>,
    last_error: Option<String>,
    leases_lost: u64,
}

/// Which units this replica may work on. Cheap to clone; shared by the coordinator (which
/// writes it) and the reconcile loop (which reads it).
#[derive(Clone, Debug)]
pub struct Ownership {
    inner: Option<Arc<Mutex<Inner>>>,
    changed: Arc<watch::Sender<u64>>,
}

/// A mutating call in progress for a unit: a unit being handed over is released only when
/// none is left.
pub struct InFlight {
    owner: Ownership,
    unit: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(inner) = &self.owner.inner {
            let mut g = inner.lock().expect("ownership lock");
            if let Some(n) = g.in_flight.get_mut(&self.unit) {
                *n = n.saturating_sub(1);
            }
        }
    }
}

impl Ownership {
    /// One replica, no coordination engine: everything is this replica's.
    pub fn solo() -> Ownership {
        Ownership { inner: None, changed: Arc::new(watch::channel(0).0) }
    }

    pub fn sharded(replica: &str, backend: &str, timing: Timing) -> Ownership {
        let inner = Inner {
            replica: replica.to_string(),
            backend: backend.to_string(),
            timing,
            wanted: BTreeMap::new(),
            held: BTreeMap::new(),
            draining: BTreeSet::new(),
            in_flight: BTreeMap::new(),
            holders: BTreeMap::new(),
            members: Vec::new(),
            revision: String::new(),
            pruning: None,
            last_contact: None,
            last_error: None,
            leases_lost: 0,
        };
        Ownership { inner: Some(Arc::new(Mutex::new(inner))), changed: Arc::new(watch::channel(0).0) }
    }

    pub fn is_sharded(&self) -> bool {
        self.inner.is_some()
    }

    fn lock(&self) -> Option<std::sync::MutexGuard<'_, Inner>> {
        self.inner.as_ref().map(|i| i.lock().expect("ownership lock"))
    }

    /// The units of the desired state in force (unit -> gateways), and its revision.
    pub fn set_units(&self, units: BTreeMap<String, Vec<String>>, revision: &str) {
        if let Some(mut g) = self.lock() {
            g.wanted = units;
            if g.revision != revision {
                g.pruning = None;
            }
            g.revision = revision.to_string();
        }
    }

    /// The links this replica's plan for `revision` would remove, published with its
    /// membership at the next heartbeat.
    pub fn set_pruning(&self, revision: &str, links: u64) {
        if let Some(mut g) = self.lock()
            && g.revision == revision
        {
            g.pruning = Some(links);
        }
    }

    /// The links all replicas together would remove, for the prune guard: this replica's `own`
    /// count plus what every other live replica published for the same revision. `Err` names
    /// the replicas whose count is not known yet (another revision, or not planned yet): until
    /// they are, removals wait.
    pub fn pruning_total(&self, own: u64) -> Result<u64, String> {
        let Some(g) = self.lock() else { return Ok(own) };
        let mut total = own;
        let mut unknown = Vec::new();
        for m in g.members.iter().filter(|m| m.replica != g.replica) {
            match m.pruning {
                Some(n) if m.revision == g.revision => total += n,
                _ => unknown.push(m.replica.clone()),
            }
        }
        if unknown.is_empty() {
            Ok(total)
        } else {
            Err(format!("waiting for {} to count the links they would remove", unknown.join(", ")))
        }
    }

    /// Live replicas that run another desired-state revision than this one (`replica@revision`):
    /// what one side would clean up as orphaned may be the other side's.
    pub fn skew(&self) -> Vec<String> {
        let Some(g) = self.lock() else { return Vec::new() };
        g.members.iter().filter(|m| m.revision != g.revision).map(|m| format!("{}@{}", m.replica, m.revision)).collect()
    }

    /// The units this replica may work on now; `None` when it runs alone (all of them).
    pub fn owned(&self) -> Option<BTreeSet<String>> {
        let g = self.lock()?;
        let now = Instant::now();
        Some(
            g.held
                .iter()
                .filter(|(u, until)| **until > now && !g.draining.contains(*u))
                .map(|(u, _)| u.clone())
                .collect(),
        )
    }

    /// The fence: whether a mutating call for `unit` may be sent now. `Err` says why not.
    pub fn check(&self, unit: &str) -> Result<(), String> {
        let Some(g) = self.lock() else { return Ok(()) };
        if g.draining.contains(unit) {
            return Err(format!("unit {unit} is being handed over to another replica"));
        }
        match g.held.get(unit) {
            Some(until) if *until > Instant::now() => Ok(()),
            Some(_) => Err(format!(
                "the lease of unit {unit} was not renewed within {:?}: another replica may take it",
                g.timing.renew_deadline
            )),
            None => Err(format!("replica {} does not hold the lease of unit {unit}", g.replica)),
        }
    }

    /// Marks a call for `unit` as in flight until the guard is dropped.
    pub fn enter(&self, unit: &str) -> InFlight {
        if let Some(mut g) = self.lock() {
            *g.in_flight.entry(unit.to_string()).or_default() += 1;
        }
        InFlight { owner: self.clone(), unit: unit.to_string() }
    }

    /// Units whose lease someone holds although they are not in this replica's desired state:
    /// another replica runs with another revision (git-sync has not caught up yet, on one side
    /// or the other). Clean-up of what no unit accounts for must wait until this is empty.
    pub fn foreign(&self) -> Vec<String> {
        let Some(g) = self.lock() else { return Vec::new() };
        g.holders.keys().filter(|u| !g.wanted.contains_key(*u)).cloned().collect()
    }

    /// What this replica publishes with its membership: its revision and pruning count.
    fn published(&self) -> (String, Option<u64>) {
        self.lock().map(|g| (g.revision.clone(), g.pruning)).unwrap_or_default()
    }

    /// Changes whenever the set of owned units changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn status(&self) -> Option<ShardStatus> {
        let g = self.lock()?;
        let now = Instant::now();
        let units = g
            .wanted
            .iter()
            .map(|(u, gws)| {
                let until = g.held.get(u).filter(|t| **t > now && !g.draining.contains(u));
                UnitStatus {
                    unit: u.clone(),
                    gateways: gws.clone(),
                    holder: g.holders.get(u).cloned(),
                    preferred: preferred(u, &names(&g.members)).map(str::to_string),
                    mine: until.is_some(),
                    valid_for_ms: until.map(|t| t.duration_since(now).as_millis() as u64),
                }
            })
            .collect();
        Some(ShardStatus {
            replica: g.replica.clone(),
            backend: g.backend.clone(),
            lease_duration_seconds: g.timing.lease_duration.as_secs_f64(),
            renew_deadline_seconds: g.timing.renew_deadline.as_secs_f64(),
            members: names(&g.members),
            revisions: g.members.iter().map(|m| (m.replica.clone(), m.revision.clone())).collect(),
            units,
            last_contact: g.last_contact,
            last_error: g.last_error.clone(),
            leases_lost: g.leases_lost,
        })
    }
}

fn names(members: &[Member]) -> Vec<String> {
    members.iter().map(|m| m.replica.clone()).collect()
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Whether `replica` runs `revision`. A unit is handed over only to a replica on the same
/// revision: one on another revision may not have the unit at all (it would be released, found
/// free and taken back, again and again) until it catches up.
fn same_revision(live: &[Member], replica: &str, revision: &str) -> bool {
    live.iter().any(|m| m.replica == replica && m.revision == revision)
}

/// Keeps the leases of this replica's units.
pub struct Coordinator<B> {
    backend: B,
    ownership: Ownership,
    replica: String,
    timing: Timing,
    /// When each unit was first seen free (a unit preferred elsewhere is taken only after its
    /// preferred replica had a chance to).
    free_since: BTreeMap<String, Instant>,
    rounds: u64,
}

impl<B: Backend> Coordinator<B> {
    /// `ownership` must come from [`Ownership::sharded`] with the same replica id.
    pub fn new(backend: B, ownership: Ownership, replica: &str, timing: Timing) -> Self {
        Coordinator { backend, ownership, replica: replica.to_string(), timing, free_since: BTreeMap::new(), rounds: 0 }
    }

    /// Runs until `shutdown`; then releases every lease (after in-flight calls return, up to
    /// `grace`) and leaves.
    pub async fn run(mut self, shutdown: CancellationToken, grace: Duration) {
        info!(replica = %self.replica, backend = %self.backend.describe(), timing = ?self.timing, "coordination started");
        let mut tick = tokio::time::interval(self.timing.retry_period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            self.round().await;
        }
        self.leave(grace).await;
    }

    fn set_error(&self, e: &CoordError) {
        if let Some(mut g) = self.ownership.lock() {
            if g.last_error.as_deref() != Some(&e.to_string()) {
                warn!(error = %e, "coordination: {e}; units are kept only until their renew deadline");
            }
            g.last_error = Some(e.to_string());
        }
        self.expire();
    }

    /// Drops units whose renew deadline passed.
    fn expire(&self) {
        let mut lost = Vec::new();
        if let Some(mut g) = self.ownership.lock() {
            let now = Instant::now();
            g.held.retain(|u, until| {
                let keep = *until > now;
                if !keep {
                    lost.push(u.clone());
                }
                keep
            });
            g.leases_lost += lost.len() as u64;
        }
        for u in &lost {
            warn!(unit = %u, "lease not renewed within the renew deadline: stopped changing this unit");
        }
        if !lost.is_empty() {
            self.changed();
        }
    }

    fn changed(&self) {
        self.ownership.changed.send_modify(|n| *n += 1);
    }

    /// One round: heartbeat, read holders, renew, hand over, take.
    pub async fn round(&mut self) {
        let (revision, pruning) = self.ownership.published();
        let live = match self.backend.heartbeat(&revision, pruning).await {
            Ok(mut m) => {
                m.sort();
                m.dedup_by(|a, b| a.replica == b.replica);
                m
            }
            Err(e) => return self.set_error(&e),
        };
        let members = names(&live);
        self.rounds += 1;
        if self.rounds == 1 {
            // Registered: take nothing before the other replicas starting now are seen, or the
            // first one up would take every unit only to hand most of them over.
            if let Some(mut g) = self.ownership.lock() {
                g.members = live;
                g.last_contact = Some(unix_now());
            }
            return;
        }
        let holders = match self.backend.holders().await {
            Ok(h) => h,
            Err(e) => return self.set_error(&e),
        };
        let (wanted, held_before, draining) = {
            let g = self.ownership.lock().expect("sharded");
            (g.wanted.clone(), g.held.clone(), g.draining.clone())
        };
        let now = Instant::now();
        let me = self.replica.as_str();
        let cap = wanted.len().div_ceil(members.len().max(1)) + 1;
        let mut held: BTreeMap<String, Instant> = BTreeMap::new();
        let mut holders_now = holders.clone();
        let mut to_release: Vec<String> = Vec::new();
        let mut error: Option<CoordError> = None;
        let mut mine = holders.values().filter(|h| *h == me).count();
        let mut lost = 0u64;
        self.free_since.retain(|u, _| wanted.contains_key(u) && !holders.contains_key(u));
        for unit in wanted.keys() {
            let pref = preferred(unit, &members);
            match holders.get(unit) {
                Some(h) if h == me => {
                    if draining.contains(unit) {
                        to_release.push(unit.clone());
                        // Still renewed while calls drain: nobody else may start yet.
                    } else if let Some(p) = pref.filter(|p| *p != me && same_revision(&live, p, &revision)) {
                        info!(unit = %unit, to = p, "handing unit over to its preferred replica");
                        to_release.push(unit.clone());
                    }
                    match self.backend.acquire(unit).await {
                        Ok(Some(t)) => {
                            held.insert(unit.clone(), t + self.timing.renew_deadline);
                        }
                        Ok(None) => {
                            holders_now.remove(unit);
                            lost += 1;
                            warn!(unit = %unit, "lease lost to another replica: stopped changing this unit")
                        }
                        Err(e) => {
                            // Keep the old deadline: it runs out on its own.
                            if let Some(t) = held_before.get(unit) {
                                held.insert(unit.clone(), *t);
                            }
                            error = Some(e);
                        }
                    }
                }
                Some(_) => {
                    if held_before.contains_key(unit) {
                        lost += 1;
                        warn!(unit = %unit, holder = holders.get(unit).map(String::as_str).unwrap_or(""), "lease now held by another replica: stopped changing this unit");
                    }
                }
                None => {
                    let since = *self.free_since.entry(unit.clone()).or_insert(now);
                    let take =
                        pref == Some(me) || (now.duration_since(since) >= self.timing.retry_period * 2 && mine < cap);
                    if !take {
                        continue;
                    }
                    match self.backend.acquire(unit).await {
                        Ok(Some(t)) => {
                            info!(unit = %unit, preferred = pref == Some(me), "lease acquired: this replica now owns the unit");
                            held.insert(unit.clone(), t + self.timing.renew_deadline);
                            holders_now.insert(unit.clone(), me.to_string());
                            mine += 1;
                            self.free_since.remove(unit);
                        }
                        Ok(None) => {}
                        Err(e) => error = Some(e),
                    }
                }
            }
        }
        // Units no longer in desired state.
        for (unit, h) in &holders {
            if h == me && !wanted.contains_key(unit) {
                to_release.push(unit.clone());
            }
        }
        // Hand-overs: stop new calls now; release once none is in flight.
        let mut released = Vec::new();
        {
            let mut g = self.ownership.lock().expect("sharded");
            for u in &to_release {
                g.draining.insert(u.clone());
            }
            g.draining.retain(|u| to_release.contains(u));
            for u in &to_release {
                if g.in_flight.get(u).copied().unwrap_or(0) == 0 {
                    released.push(u.clone());
                }
            }
        }
        for u in &released {
            match self.backend.release(u).await {
                Ok(()) => {
                    held.remove(u);
                    holders_now.remove(u);
                    info!(unit = %u, "lease released");
                }
                Err(e) => error = Some(e),
            }
        }
        let before: BTreeSet<String> = self.ownership.owned().unwrap_or_default();
        {
            let mut g = self.ownership.lock().expect("sharded");
            for u in &released {
                g.draining.remove(u);
            }
            g.held = held;
            g.holders = holders_now;
            g.members = live;
            g.last_contact = Some(unix_now());
            g.last_error = error.as_ref().map(|e| e.to_string());
            g.leases_lost += lost;
        }
        if let Some(e) = &error {
            warn!(error = %e, "coordination: {e}");
        }
        self.expire();
        if self.ownership.owned().unwrap_or_default() != before {
            self.changed();
        }
    }

    async fn leave(&mut self, grace: Duration) {
        let units: Vec<String> = {
            let mut g = self.ownership.lock().expect("sharded");
            let units: Vec<String> = g.held.keys().cloned().collect();
            g.draining.extend(units.iter().cloned());
            units
        };
        self.changed();
        // Wait for calls in flight, renewing meanwhile so that nobody else starts yet.
        let deadline = Instant::now() + grace;
        loop {
            let busy = {
                let g = self.ownership.lock().expect("sharded");
                units.iter().any(|u| g.in_flight.get(u).copied().unwrap_or(0) > 0)
            };
            if !busy || Instant::now() >= deadline {
                break;
            }
            let (revision, pruning) = self.ownership.published();
            let _ = self.backend.heartbeat(&revision, pruning).await;
            for u in &units {
                let _ = self.backend.acquire(u).await;
            }
            tokio::time::sleep(self.timing.retry_period.min(Duration::from_millis(200))).await;
        }
        if let Some(mut g) = self.ownership.lock() {
            g.held.clear();
        }
        match self.backend.resign().await {
            Ok(()) => info!(units = units.len(), "left the coordination group; leases released"),
            Err(e) => warn!(error = %e, "could not release leases on shutdown; they expire on their own"),
        }
    }
}

#[cfg(test)]
mod tests;
