//! What the daemon reports about itself, each link and each gateway: served as JSON on /status,
//! as HTML on /, and printed by `crosslink status`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Phase {
    /// In sync with desired state.
    Ready,
    /// Changes are being made, or an asynchronous step is awaited.
    Progressing,
    /// A change failed and is retried with backoff.
    Degraded,
    /// Blocked by a problem a person must fix (credentials, a name taken, overlapping CIDRs,
    /// a permanent AWS error).
    Failed,
    /// Its removal would exceed the prune guard and waits for an operator.
    PruneBlocked,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Ready => "Ready",
            Phase::Progressing => "Progressing",
            Phase::Degraded => "Degraded",
            Phase::Failed => "Failed",
            Phase::PruneBlocked => "PruneBlocked",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastError {
    /// The AWS error code or crosslink's problem code (`AccessDenied`, `CidrOverlap`, ...).
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// One link or gateway.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStatus {
    /// `Link` or `Gateway`.
    pub kind: String,
    pub name: String,
    pub phase: Phase,
    /// One line for people: what is going on.
    pub message: String,
    /// RFC 3339 time of the last reconcile that looked at this object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reconcile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,
    /// A link's transport: `peering` or `privateLink`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// Live ids of each hop: peering, loadBalancer, targetGroup, listener, vpcLink, restApi;
    /// over privateLink endpoint, endpointState, endpointService, endpointSecurityGroup and
    /// serviceLoadBalancer.
    pub resources: BTreeMap<String, String>,
    /// Changes still pending for it.
    pub pending_changes: usize,
    /// The desired-state revision last applied to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Resources kept because of `deletionPolicy: Retain` after the object left desired state
    /// (crosslink no longer changes them; its tags say so).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retained: Vec<String>,
    /// Non-blocking observations worth a person's attention (an authorizer no route uses, an
    /// API key still working through its rotation overlap).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Synced: AWS matches desired state (no change pending, no problem).
    #[serde(default)]
    pub synced: bool,
    /// Healthy, for a link: whether traffic can flow, hop by hop, as of the last observation
    /// (none before the first, and for gateways).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crosslink_plan::health::LinkHealth>,
}

/// The desired state the daemon runs with, and the last attempt to load it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredStatus {
    /// The revision in force (the last good one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loaded_at: Option<String>,
    /// Set while the newest desired state is invalid or unreadable (the last good one stays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_revision: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneStatus {
    pub blocked: bool,
    /// Links whose removal is held back.
    pub links: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The protection guard (issue 14): changes that would make routes less protected, held until
/// the desired state is fixed or the daemon runs with `--allow-weakening`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProtectionStatus {
    pub blocked: bool,
    /// Each held change: `GET /payments: authorization AWS_IAM -> NONE`.
    pub changes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The whole report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusSnapshot {
    pub instance: String,
    pub version: String,
    pub ready: bool,
    pub desired: DesiredStatus,
    pub prune: PruneStatus,
    #[serde(default)]
    pub protection: ProtectionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_full_sync: Option<String>,
    pub gateways: Vec<ObjectStatus>,
    pub links: Vec<ObjectStatus>,
    /// Each consumer: its usage plan and API key ids (never a key's value), rotation overlaps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<ObjectStatus>,
    /// With several replicas: who owns which unit. Gateways and links above are only those of
    /// the units this replica holds; ask the holder for the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<crosslink_coord::ShardStatus>,
    /// With `--events-queue`: the queue's state and the last change event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<crate::events::EventsStatus>,
}

/// Liveness and readiness, kept apart: liveness is a heartbeat of the loop; readiness is a latch
/// released once desired state is loaded and the first full pass is done.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
    heartbeat: AtomicU64,
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Health {
    pub fn new() -> Arc<Health> {
        let h = Health::default();
        h.beat();
        Arc::new(h)
    }
    pub fn beat(&self) {
        self.heartbeat.store(unix_now(), Ordering::Relaxed);
    }
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
    /// Seconds since the loop last showed life.
    pub fn since_heartbeat(&self) -> u64 {
        unix_now().saturating_sub(self.heartbeat.load(Ordering::Relaxed))
    }
}

/// RFC 3339 (UTC, seconds).
pub fn rfc3339(unix: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + std::time::Duration::from_secs(unix)).to_string()
}
