//! The Kubernetes coordination engine: `coordination.k8s.io/v1` Lease objects in one namespace,
//! one per unit and one per replica (its membership), read and written with optimistic
//! concurrency (every write carries the `resourceVersion` it was based on, so of two replicas
//! racing for a Lease exactly one write succeeds and the other gets 409 Conflict).
//!
//! # Objects
//!
//! - `crosslink-<instance>-unit-<unit>`: the lease of a unit. `spec.holderIdentity` is the
//!   replica id of the holder, empty when released; the unit's own name is kept in the
//!   `crosslink.dev/unit` annotation, since a Lease name cannot hold every unit name (`_orphans`).
//! - `crosslink-<instance>-member-<replica>`: a replica's membership, renewed by every
//!   heartbeat and deleted when the replica resigns.
//!
//! All carry the labels `app.kubernetes.io/managed-by=crosslink`, `crosslink.dev/instance` and
//! `crosslink.dev/lease=unit|member`, by which they are listed. A name part that is not a DNS
//! label already (uppercase, `_`, dots, longer than 63) is rewritten to one and gets a short
//! hash of the original appended, so that two different names never share a Lease.
//!
//! # Expiry without comparing clocks
//!
//! A Lease says when it was last renewed (`spec.renewTime`), but that timestamp comes from the
//! holder's wall clock, and the holder's wall clock may be minutes off ours: judging expiry by
//! `renewTime + leaseDurationSeconds < now` would let a replica whose clock runs ahead take a
//! unit that is still being worked on (two replicas mutating the same AWS objects), or make one
//! whose clock runs behind wait forever. So, as client-go's leader election does, no decision
//! here reads a timestamp written by another machine:
//!
//! - for every Lease it reads, the backend remembers its `resourceVersion` (which changes on every
//!   write, renewals included) and the local monotonic instant ([`tokio::time::Instant`]) at which
//!   it first saw that version;
//! - a Lease held by another replica counts as expired only once it has been seen unchanged for
//!   its `leaseDurationSeconds` (or this replica's lease duration, whichever is longer) on the
//!   local clock. A replica that has just started therefore waits a full lease duration before it
//!   takes anything over, which is the price of not trusting clocks;
//! - a Lease with an empty holder was released and is free at once.
//!
//! Since the instant is taken when the answer arrives, later than the holder's renewal, the
//! taker waits at least the lease duration after the last renewal it could have missed; together
//! with the holder's renew deadline (see the crate docs) this keeps the holder's last mutating
//! call and the taker's first one apart by `lease_duration - renew_deadline`, give or take the
//! difference in clock *rates*. `renewTime` and `acquireTime` are still written, for people
//! reading the Leases with kubectl.
//!
//! Every API call runs under a timeout (the retry period, at least 1 s and at most 5 s), so that
//! a hanging API server turns into [`CoordError::Unavailable`] rather than a stuck coordinator;
//! the kube client's own retries of 429/503/504 happen within it.
//!
//! # Permissions
//!
//! The replicas' service account needs the verbs `get`, `list`, `create`, `update` and `delete`
//! on `leases` in API group `coordination.k8s.io`, in the namespace used (a Role and a
//! RoleBinding). A 403 names the verb that is missing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, DeleteParams, ListParams, PostParams, Preconditions};
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use tracing::{debug, info};

use crate::{Backend, CoordError, Member, Timing};

/// The namespace of the pod, mounted into every container that has a service account token.
pub const NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
const MANAGED_BY: &str = "crosslink";
const INSTANCE_LABEL: &str = "crosslink.dev/instance";
const KIND_LABEL: &str = "crosslink.dev/lease";
const UNIT_ANNOTATION: &str = "crosslink.dev/unit";
/// A member Lease unrenewed for this many lease durations is deleted by the other replicas.
const MEMBER_GC_FACTOR: u32 = 4;

/// On member Leases: the desired-state revision the replica runs.
const REVISION_ANNOTATION: &str = "crosslink.dev/revision";

/// On member Leases: how many links the replica's plan for that revision would remove.
const PRUNING_ANNOTATION: &str = "crosslink.dev/pruning";

/// The member Lease with this replica's revision and pruning count.
fn with_revision(mut lease: Lease, revision: &str, pruning: Option<u64>) -> Lease {
    let a = lease.metadata.annotations.get_or_insert_with(BTreeMap::new);
    a.insert(REVISION_ANNOTATION.into(), revision.into());
    match pruning {
        Some(n) => a.insert(PRUNING_ANNOTATION.into(), n.to_string()),
        None => a.remove(PRUNING_ANNOTATION),
    };
    lease
}

/// What a Lease is for; the value of the `crosslink.dev/lease` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Unit,
    Member,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Unit => "unit",
            Kind::Member => "member",
        }
    }
}

/// A Lease as last seen by this replica: which version, and since when (local clock).
#[derive(Debug)]
struct Seen {
    kind: Kind,
    version: String,
    since: Instant,
}

#[derive(Debug, Default)]
struct State {
    /// Lease name -> the last version seen and when it was first seen.
    seen: HashMap<String, Seen>,
    /// This replica's member Lease as last written: renewed directly, re-read only on conflict.
    member: Option<Lease>,
}

/// Who holds a Lease, as this replica judges it.
#[derive(Debug, PartialEq, Eq)]
enum Holder {
    /// Released (empty holder).
    Free,
    Mine,
    /// Another replica, seen renewing within its lease duration.
    Live(String),
    /// Another replica, not seen renewing for its lease duration.
    Expired(String),
}

/// How one API call failed, before it becomes a [`CoordError`]: the callers handle 404 and 409
/// themselves.
#[derive(Debug)]
enum CallError {
    Timeout(Duration),
    Kube(kube::Error),
}

impl CallError {
    fn code(&self) -> Option<u16> {
        match self {
            CallError::Kube(kube::Error::Api(s)) => Some(s.code),
            _ => None,
        }
    }

    fn is(&self, code: u16) -> bool {
        self.code() == Some(code)
    }
}

/// The Kubernetes backend of the coordinator for one replica.
pub struct KubeBackend {
    api: Api<Lease>,
    namespace: String,
    replica: String,
    timing: Timing,
    /// `leaseDurationSeconds` written on our Leases: the lease duration rounded up.
    duration_seconds: i32,
    call_timeout: Duration,
    /// The instance as a DNS label: in Lease names and the instance label.
    instance_part: String,
    member_name: String,
    state: Mutex<State>,
}

impl KubeBackend {
    /// `instance` separates several crosslink installations sharing a namespace; `replica` is
    /// this replica's id (the pod name, typically), written as the holder of its Leases.
    pub fn new(client: kube::Client, namespace: &str, instance: &str, replica: &str, timing: Timing) -> Self {
        let instance_part = dns_label(instance);
        let member_name = format!("crosslink-{instance_part}-member-{}", dns_label(replica));
        let millis = timing.lease_duration.as_millis().div_ceil(1000);
        KubeBackend {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            replica: replica.to_string(),
            timing,
            duration_seconds: i32::try_from(millis).unwrap_or(i32::MAX).max(1),
            call_timeout: timing.retry_period.clamp(Duration::from_secs(1), Duration::from_secs(5)),
            instance_part,
            member_name,
            state: Mutex::new(State::default()),
        }
    }

    /// A client from the environment (in a pod: its service account; elsewhere: the kubeconfig),
    /// and the pod's own namespace unless `namespace` is given (outside a pod: the kubeconfig's).
    pub async fn from_env(
        namespace: Option<&str>,
        instance: &str,
        replica: &str,
        timing: Timing,
    ) -> Result<Self, CoordError> {
        let client = kube::Client::try_default().await.map_err(|e| {
            CoordError::Engine(format!(
                "cannot configure a Kubernetes client (in-cluster service account or kubeconfig): {}",
                chain(&e)
            ))
        })?;
        let namespace = match namespace {
            Some(ns) => ns.to_string(),
            None => match tokio::fs::read_to_string(NAMESPACE_FILE).await {
                Ok(ns) if !ns.trim().is_empty() => ns.trim().to_string(),
                _ => client.default_namespace().to_string(),
            },
        };
        Ok(Self::new(client, &namespace, instance, replica, timing))
    }

    /// The name of a unit's Lease.
    pub fn unit_lease_name(&self, unit: &str) -> String {
        format!("crosslink-{}-unit-{}", self.instance_part, dns_label(unit))
    }

    /// The name of this replica's member Lease.
    pub fn member_lease_name(&self) -> &str {
        &self.member_name
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("kube backend state")
    }

    fn selector(&self, kind: Kind) -> String {
        format!("{MANAGED_BY_LABEL}={MANAGED_BY},{INSTANCE_LABEL}={},{KIND_LABEL}={}", self.instance_part, kind.label())
    }

    fn new_lease(&self, name: &str, kind: Kind, unit: Option<&str>) -> Lease {
        let labels = BTreeMap::from([
            (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
            (INSTANCE_LABEL.to_string(), self.instance_part.clone()),
            (KIND_LABEL.to_string(), kind.label().to_string()),
        ]);
        let now = now();
        Lease {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(self.namespace.clone()),
                labels: Some(labels),
                annotations: unit.map(|u| BTreeMap::from([(UNIT_ANNOTATION.to_string(), u.to_string())])),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.replica.clone()),
                lease_duration_seconds: Some(self.duration_seconds),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        }
    }

    /// Runs one API call under the call timeout.
    async fn call<T>(&self, fut: impl Future<Output = kube::Result<T>>) -> Result<T, CallError> {
        match tokio::time::timeout(self.call_timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(CallError::Kube(e)),
            Err(_) => Err(CallError::Timeout(self.call_timeout)),
        }
    }

    /// `verb` is the RBAC verb of the call, `what` the object(s) it was about.
    fn error(&self, verb: &str, what: &str, e: CallError) -> CoordError {
        let ns = &self.namespace;
        match e {
            CallError::Timeout(t) => CoordError::Unavailable(format!(
                "the Kubernetes API did not answer within {t:?} ({verb} {what} in namespace {ns})"
            )),
            CallError::Kube(kube::Error::Api(s)) => match s.code {
                403 => CoordError::Engine(format!(
                    "the Kubernetes API forbids this replica to {verb} {what} in namespace {ns}: its service account needs RBAC verb \"{verb}\" on resource \"leases\" in API group \"coordination.k8s.io\" there (Role and RoleBinding); the API said: {}",
                    s.message
                )),
                401 => CoordError::Engine(format!(
                    "the Kubernetes API did not accept this replica's credentials ({verb} {what} in namespace {ns}): check the service account token or kubeconfig; the API said: {}",
                    s.message
                )),
                code if code == 429 || code >= 500 => CoordError::Unavailable(format!(
                    "the Kubernetes API answered {code} {} ({verb} {what} in namespace {ns}): {}",
                    s.reason, s.message
                )),
                code => CoordError::Engine(format!(
                    "the Kubernetes API refused to {verb} {what} in namespace {ns}: {code} {}: {}",
                    s.reason, s.message
                )),
            },
            CallError::Kube(e @ (kube::Error::HyperError(_) | kube::Error::Service(_))) => {
                CoordError::Unavailable(format!("cannot reach the Kubernetes API ({verb} {what}): {}", chain(&e)))
            }
            CallError::Kube(e) => CoordError::Engine(format!("{verb} {what} in namespace {ns}: {}", chain(&e))),
        }
    }

    /// Remembers the Lease's version (starting its clock when the version is new) and says who
    /// holds it.
    fn observe(&self, kind: Kind, lease: &Lease) -> Holder {
        let now = Instant::now();
        let name = lease.metadata.name.clone().unwrap_or_default();
        let version = version_of(lease);
        let since = {
            let mut st = self.state();
            let seen = st.seen.entry(name).or_insert_with(|| Seen { kind, version: version.clone(), since: now });
            if seen.version != version {
                *seen = Seen { kind, version, since: now };
            }
            seen.since
        };
        match holder_of(lease) {
            None => Holder::Free,
            Some(h) if h == self.replica => Holder::Mine,
            Some(h) => {
                // The holder's promise, or ours if longer: waiting longer is always safe.
                let theirs = lease.spec.as_ref().and_then(|s| s.lease_duration_seconds).unwrap_or(0);
                let duration = Duration::from_secs(theirs.max(0) as u64).max(self.timing.lease_duration);
                if now.duration_since(since) >= duration { Holder::Expired(h) } else { Holder::Live(h) }
            }
        }
    }

    /// GET; `None` when there is no such Lease.
    async fn get(&self, kind: Kind, name: &str) -> Result<Option<Lease>, CoordError> {
        match self.call(self.api.get(name)).await {
            Ok(lease) => {
                self.observe(kind, &lease);
                Ok(Some(lease))
            }
            Err(e) if e.is(404) => Ok(None),
            Err(e) => Err(self.error("get", &format!("Lease {name}"), e)),
        }
    }

    /// LIST by label; forgets the Leases of that kind that are gone.
    async fn list(&self, kind: Kind) -> Result<Vec<(Lease, Holder)>, CoordError> {
        let params = ListParams::default().labels(&self.selector(kind));
        let leases = self
            .call(self.api.list(&params))
            .await
            .map_err(|e| self.error("list", &format!("Leases ({})", self.selector(kind)), e))?;
        let names: BTreeSet<String> = leases.items.iter().filter_map(|l| l.metadata.name.clone()).collect();
        self.state().seen.retain(|name, seen| seen.kind != kind || names.contains(name));
        Ok(leases
            .items
            .into_iter()
            .map(|l| {
                let holder = self.observe(kind, &l);
                (l, holder)
            })
            .collect())
    }

    /// PUT with the Lease's `resourceVersion` as precondition.
    async fn replace(&self, kind: Kind, lease: &Lease) -> Result<Lease, CallError> {
        let name = lease.metadata.name.clone().unwrap_or_default();
        let written = self.call(self.api.replace(&name, &PostParams::default(), lease)).await?;
        self.observe(kind, &written);
        Ok(written)
    }

    /// POST.
    async fn create(&self, kind: Kind, lease: &Lease) -> Result<Lease, CallError> {
        let written = self.call(self.api.create(&PostParams::default(), lease)).await?;
        self.observe(kind, &written);
        Ok(written)
    }

    /// Creates a unit's Lease, held by this replica. Someone else creating it first wins.
    async fn create_unit(&self, unit: &str, name: &str) -> Result<Option<Instant>, CoordError> {
        let lease = self.new_lease(name, Kind::Unit, Some(unit));
        let sent = Instant::now();
        match self.create(Kind::Unit, &lease).await {
            Ok(_) => Ok(Some(sent)),
            Err(e) if e.is(409) => {
                debug!(unit, lease = name, "Lease created by another replica first");
                Ok(None)
            }
            Err(e) => Err(self.error("create", &format!("Lease {name}"), e)),
        }
    }

    /// Renews a unit's Lease that this replica holds. A conflict means someone else wrote it
    /// since it was read: read it again, and renew once more only if it is still ours.
    async fn renew_unit(&self, name: &str, mut lease: Lease) -> Result<Option<Instant>, CoordError> {
        for attempt in 0..2 {
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            spec.renew_time = Some(now());
            spec.lease_duration_seconds = Some(self.duration_seconds);
            let sent = Instant::now();
            match self.replace(Kind::Unit, &lease).await {
                Ok(_) => return Ok(Some(sent)),
                Err(e) if e.is(409) && attempt == 0 => {
                    debug!(lease = name, "conflict renewing a Lease: reading it again");
                    match self.get(Kind::Unit, name).await? {
                        Some(l) if holder_of(&l).as_deref() == Some(self.replica.as_str()) => lease = l,
                        _ => return Ok(None),
                    }
                }
                // Taken over in between, or deleted (the next acquire creates it again).
                Err(e) if e.is(409) || e.is(404) => return Ok(None),
                Err(e) => return Err(self.error("update", &format!("Lease {name}"), e)),
            }
        }
        Ok(None)
    }

    /// Takes over a free or expired Lease. The `resourceVersion` precondition makes this lose
    /// (409) if anyone wrote the Lease since it was judged free: its holder renewing it late, or
    /// another replica taking it first.
    async fn take_unit(&self, name: &str, mut lease: Lease) -> Result<Option<Instant>, CoordError> {
        let now = now();
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = Some(self.replica.clone());
        spec.acquire_time = Some(now.clone());
        spec.renew_time = Some(now);
        spec.lease_duration_seconds = Some(self.duration_seconds);
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        let sent = Instant::now();
        match self.replace(Kind::Unit, &lease).await {
            Ok(_) => Ok(Some(sent)),
            Err(e) if e.is(409) || e.is(404) => {
                debug!(lease = name, "another replica wrote the Lease first");
                Ok(None)
            }
            Err(e) => Err(self.error("update", &format!("Lease {name}"), e)),
        }
    }

    /// Clears the holder of a unit's Lease this replica holds (client-go's release on cancel):
    /// the others may take it at once instead of waiting for it to expire.
    async fn release_lease(&self, name: &str, mut lease: Lease) -> Result<(), CoordError> {
        for attempt in 0..2 {
            if holder_of(&lease).as_deref() != Some(self.replica.as_str()) {
                return Ok(());
            }
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            spec.holder_identity = None;
            spec.renew_time = Some(now());
            match self.replace(Kind::Unit, &lease).await {
                Ok(_) => return Ok(()),
                Err(e) if e.is(404) => return Ok(()),
                Err(e) if e.is(409) && attempt == 0 => match self.get(Kind::Unit, name).await? {
                    Some(l) => lease = l,
                    None => return Ok(()),
                },
                Err(e) => return Err(self.error("update", &format!("Lease {name}"), e)),
            }
        }
        Ok(())
    }

    /// Creates or renews this replica's member Lease.
    async fn renew_member(&self, revision: &str, pruning: Option<u64>) -> Result<(), CoordError> {
        let name = self.member_name.clone();
        let what = format!("Lease {name}");
        let mut current = self.state().member.clone();
        for _ in 0..2 {
            let mut lease = match current.take() {
                Some(l) => l,
                None => match self.get(Kind::Member, &name).await? {
                    Some(l) => l,
                    None => match self
                        .create(
                            Kind::Member,
                            &with_revision(self.new_lease(&name, Kind::Member, None), revision, pruning),
                        )
                        .await
                    {
                        Ok(l) => {
                            self.state().member = Some(l);
                            return Ok(());
                        }
                        // Created in between (by a process with the same replica id?): read it.
                        Err(e) if e.is(409) => continue,
                        Err(e) => return Err(self.error("create", &what, e)),
                    },
                },
            };
            let now = now();
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            if spec.holder_identity.as_deref() != Some(self.replica.as_str()) {
                spec.holder_identity = Some(self.replica.clone());
                spec.acquire_time = Some(now.clone());
            }
            spec.renew_time = Some(now);
            spec.lease_duration_seconds = Some(self.duration_seconds);
            let lease = with_revision(lease, revision, pruning);
            match self.replace(Kind::Member, &lease).await {
                Ok(l) => {
                    self.state().member = Some(l);
                    return Ok(());
                }
                // Changed or deleted since we last wrote it: read it again.
                Err(e) if e.is(409) || e.is(404) => {
                    self.state().member = None;
                }
                Err(e) => return Err(self.error("update", &what, e)),
            }
        }
        Err(CoordError::Engine(format!(
            "the member {what} in namespace {} changed under every attempt to renew it: is another process running as replica {}?",
            self.namespace, self.replica
        )))
    }
}

impl KubeBackend {
    /// Deletes the member Lease of a replica that has not renewed it for `MEMBER_GC_FACTOR`
    /// lease durations (pod names change with every restart: they would pile up). Only that
    /// version is deleted: if the replica renewed it meanwhile, the delete fails and it lives.
    async fn collect_dead_member(&self, replica: &str, lease: &Lease) {
        let Some(name) = lease.metadata.name.clone() else { return };
        let since = self.state().seen.get(&name).map(|s| s.since);
        let dead_for = since.map(|t| t.elapsed()).unwrap_or_default();
        if dead_for < self.timing.lease_duration * MEMBER_GC_FACTOR {
            return;
        }
        let params = DeleteParams {
            preconditions: Some(Preconditions { resource_version: lease.metadata.resource_version.clone(), uid: None }),
            ..DeleteParams::default()
        };
        match self.call(self.api.delete(&name, &params)).await {
            Ok(_) => {
                self.state().seen.remove(&name);
                info!(replica, lease = %name, ?dead_for, "deleted the member Lease of a replica gone for good");
            }
            Err(e) => debug!(lease = %name, error = ?e, "member Lease not collected"),
        }
    }
}

impl Backend for KubeBackend {
    fn describe(&self) -> String {
        format!("kubernetes Lease objects in namespace {}", self.namespace)
    }

    async fn heartbeat(&self, revision: &str, pruning: Option<u64>) -> Result<Vec<Member>, CoordError> {
        self.renew_member(revision, pruning).await?;
        let mut live = vec![Member { replica: self.replica.clone(), revision: revision.to_string(), pruning }];
        for (lease, holder) in self.list(Kind::Member).await? {
            if let Holder::Expired(h) = &holder {
                self.collect_dead_member(h, &lease).await;
            }
            if let Holder::Live(h) = holder {
                let annotation = |k: &str| lease.metadata.annotations.as_ref().and_then(|a| a.get(k)).cloned();
                let revision = annotation(REVISION_ANNOTATION).unwrap_or_default();
                let pruning = annotation(PRUNING_ANNOTATION).and_then(|n| n.parse().ok());
                live.push(Member { replica: h, revision, pruning });
            }
        }
        live.sort();
        live.dedup_by(|a, b| a.replica == b.replica);
        Ok(live)
    }

    async fn holders(&self) -> Result<BTreeMap<String, String>, CoordError> {
        let mut holders = BTreeMap::new();
        for (lease, holder) in self.list(Kind::Unit).await? {
            let holder = match holder {
                Holder::Mine => self.replica.clone(),
                Holder::Live(h) => h,
                Holder::Free | Holder::Expired(_) => continue,
            };
            match lease.metadata.annotations.as_ref().and_then(|a| a.get(UNIT_ANNOTATION)) {
                Some(unit) => {
                    holders.insert(unit.clone(), holder);
                }
                None => {
                    debug!(lease = ?lease.metadata.name, "unit Lease without the {UNIT_ANNOTATION} annotation ignored")
                }
            }
        }
        Ok(holders)
    }

    async fn acquire(&self, unit: &str) -> Result<Option<Instant>, CoordError> {
        let name = self.unit_lease_name(unit);
        let Some(lease) = self.get(Kind::Unit, &name).await? else {
            return self.create_unit(unit, &name).await;
        };
        match self.observe(Kind::Unit, &lease) {
            Holder::Mine => self.renew_unit(&name, lease).await,
            Holder::Live(_) => Ok(None),
            Holder::Free | Holder::Expired(_) => self.take_unit(&name, lease).await,
        }
    }

    async fn release(&self, unit: &str) -> Result<(), CoordError> {
        let name = self.unit_lease_name(unit);
        match self.get(Kind::Unit, &name).await? {
            Some(lease) => self.release_lease(&name, lease).await,
            None => Ok(()),
        }
    }

    async fn resign(&self) -> Result<(), CoordError> {
        // Best effort: release what can be released, then report the first failure.
        let mut first_error = None;
        match self.list(Kind::Unit).await {
            Ok(leases) => {
                for (lease, holder) in leases {
                    if holder != Holder::Mine {
                        continue;
                    }
                    let name = lease.metadata.name.clone().unwrap_or_default();
                    if let Err(e) = self.release_lease(&name, lease).await {
                        first_error.get_or_insert(e);
                    }
                }
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
        let name = self.member_name.clone();
        match self.call(self.api.delete(&name, &DeleteParams::default())).await {
            Ok(_) => {}
            Err(e) if e.is(404) => {}
            Err(e) => {
                first_error.get_or_insert(self.error("delete", &format!("Lease {name}"), e));
            }
        }
        self.state().member = None;
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

/// The holder of a Lease; an empty one means released.
fn holder_of(lease: &Lease) -> Option<String> {
    lease.spec.as_ref().and_then(|s| s.holder_identity.clone()).filter(|h| !h.is_empty())
}

/// What identifies a version of a Lease: its `resourceVersion`, which every write changes; for
/// a server that does not send one, what a renewal or takeover changes.
fn version_of(lease: &Lease) -> String {
    match &lease.metadata.resource_version {
        Some(rv) => format!("rv:{rv}"),
        None => {
            let spec = lease.spec.clone().unwrap_or_default();
            format!("spec:{:?}/{:?}/{:?}", spec.holder_identity, spec.renew_time, spec.lease_transitions)
        }
    }
}

/// `s` if it is a DNS label (RFC 1123: lowercase letters, digits and `-`, starting and ending
/// with a letter or digit, at most 63 characters); otherwise a DNS label made from it, with a
/// hash of `s` appended so that different names stay different (`_orphans` ->
/// `orphans-1a2b3c4d`).
fn dns_label(s: &str) -> String {
    let valid = !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if valid {
        return s.to_string();
    }
    let digest = Sha256::digest(s.as_bytes());
    let mut hash = String::new();
    for b in &digest[..4] {
        let _ = write!(hash, "{b:02x}");
    }
    let cleaned: String =
        s.chars().map(|c| c.to_ascii_lowercase()).map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    // 54 + '-' + 8 hex = 63.
    let cleaned: String = cleaned.chars().take(54).collect();
    let cleaned = cleaned.trim_matches('-');
    if cleaned.is_empty() { hash } else { format!("{cleaned}-{hash}") }
}

/// An error with its sources: kube's own messages ("ServiceError: client error (Connect)") say
/// little without them.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let _ = write!(out, ": {s}");
        source = s.source();
    }
    out
}

#[cfg(test)]
mod unit_tests {
    use super::dns_label;

    #[test]
    fn dns_labels_are_kept_and_others_made_valid_and_distinct() {
        assert_eq!(dns_label("edge"), "edge");
        assert_eq!(dns_label("edge-2"), "edge-2");
        let orphans = dns_label("_orphans");
        assert!(orphans.starts_with("orphans-") && orphans.len() == "orphans-".len() + 8, "{orphans}");
        assert_ne!(dns_label("Edge"), dns_label("edge"));
        assert_ne!(dns_label("a.b"), dns_label("a_b"));
        let long = dns_label(&"x".repeat(100));
        assert!(long.len() <= 63, "{long}");
        assert_ne!(long, dns_label(&"x".repeat(101)));
        let odd = dns_label("--");
        assert_eq!(odd.len(), 8);
    }
}
