//! Prometheus metrics, in a registry of their own (no globals). Names follow the ecosystem:
//! `*_total` counters, `*_seconds` histograms, low-cardinality labels.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// `link`, `gateway`, `peering`.
    pub kind: String,
    /// `success`, `error`, `noop`.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LinkLabels {
    pub link: String,
}

/// A link's targets in one health state (a fixed set: `TargetCounts::STATES`; never an address).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetStateLabels {
    pub link: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    pub resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AwsLabels {
    pub service: String,
    pub operation: String,
    /// `ok` or the error kind (`throttled`, `retryable`, `not-found`, ...).
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AwsOpLabels {
    pub service: String,
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    pub service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RevisionLabels {
    pub revision: String,
}

/// A link and its transport (`peering`, `privateLink`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransportLabels {
    pub link: String,
    pub transport: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
    pub commit: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: String,
}

/// A change event's service (`ec2`, `elasticloadbalancing`, `apigateway`, `other`, `unknown`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub source: String,
}

/// Why a change event triggered nothing (`crate::events::Ignored`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IgnoredLabels {
    pub reason: String,
}

/// The events queue (its URL: one per process).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: String,
}

pub struct Metrics {
    pub registry: Registry,
    pub reconciles: Family<ReconcileLabels, Counter>,
    pub reconcile_duration: Histogram,
    pub link_ready: Family<LinkLabels, Gauge>,
    pub link_synced: Family<LinkLabels, Gauge>,
    pub link_transport: Family<TransportLabels, Gauge>,
    pub link_healthy: Family<LinkLabels, Gauge>,
    pub link_targets: Family<TargetStateLabels, Gauge>,
    pub links_by_phase: Family<PhaseLabels, Gauge>,
    pub drift_repairs: Family<ResourceLabels, Counter>,
    pub changes_applied: Family<ResourceLabels, Counter>,
    pub aws_requests: Family<AwsLabels, Counter>,
    pub aws_request_duration: Family<AwsOpLabels, Histogram>,
    pub aws_throttled: Family<ServiceLabels, Counter>,
    pub aws_rate_limit_wait: Family<ServiceLabels, Counter<f64, AtomicU64>>,
    pub queue_depth: Gauge,
    pub desired_info: Family<RevisionLabels, Gauge>,
    pub desired_load_errors: Counter,
    pub desired_valid: Gauge,
    pub last_full_sync: Gauge<f64, AtomicU64>,
    pub prune_blocked: Gauge,
    pub prune_blocked_total: Counter,
    pub protection_blocked: Gauge,
    pub build_info: Family<BuildLabels, Gauge>,
    pub shard_units: Gauge,
    pub shard_units_owned: Gauge,
    pub shard_members: Gauge,
    pub shard_leases_lost: Counter,
    pub coordination_healthy: Gauge,
    pub events_received: Family<EventLabels, Counter>,
    pub events_ignored: Family<IgnoredLabels, Counter>,
    pub event_reconciles: Counter,
    pub event_repair: Histogram,
    pub event_delivery: Histogram,
    pub events_queue_up: Family<QueueLabels, Gauge>,
    pub events_queue_errors: Counter,
}

fn aws_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 12))
}

impl Metrics {
    pub fn new(version: &str, commit: &str) -> Metrics {
        let mut registry = Registry::with_prefix("crosslink");
        let m = Metrics {
            reconciles: Family::default(),
            reconcile_duration: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
            link_ready: Family::default(),
            link_synced: Family::default(),
            link_transport: Family::default(),
            link_healthy: Family::default(),
            link_targets: Family::default(),
            links_by_phase: Family::default(),
            drift_repairs: Family::default(),
            changes_applied: Family::default(),
            aws_requests: Family::default(),
            aws_request_duration: Family::new_with_constructor(aws_histogram),
            aws_throttled: Family::default(),
            aws_rate_limit_wait: Family::default(),
            queue_depth: Gauge::default(),
            desired_info: Family::default(),
            desired_load_errors: Counter::default(),
            desired_valid: Gauge::default(),
            last_full_sync: Gauge::default(),
            prune_blocked: Gauge::default(),
            prune_blocked_total: Counter::default(),
            protection_blocked: Gauge::default(),
            build_info: Family::default(),
            shard_units: Gauge::default(),
            shard_units_owned: Gauge::default(),
            shard_members: Gauge::default(),
            shard_leases_lost: Counter::default(),
            coordination_healthy: Gauge::default(),
            events_received: Family::default(),
            events_ignored: Family::default(),
            event_reconciles: Counter::default(),
            // 0.1 s to about 27 minutes: a repair in seconds, or one that waited for a resync.
            event_repair: Histogram::new(exponential_buckets(0.1, 2.0, 15)),
            event_delivery: Histogram::new(exponential_buckets(0.5, 2.0, 12)),
            events_queue_up: Family::default(),
            events_queue_errors: Counter::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register("reconciles", "Reconciles of links, gateways and peerings, by result", m.reconciles.clone());
        r.register(
            "reconcile_duration_seconds",
            "Duration of a reconcile pass (observe, plan, apply)",
            m.reconcile_duration.clone(),
        );
        r.register(
            "link_ready",
            "1 when the link is Ready: in sync with desired state and healthy, else 0",
            m.link_ready.clone(),
        );
        r.register("link_synced", "1 when the link's AWS resources match desired state, else 0", m.link_synced.clone());
        r.register(
            "link_transport",
            "1 for each link, labelled with its transport (peering, privateLink)",
            m.link_transport.clone(),
        );
        r.register(
            "link_healthy",
            "1 when traffic can flow through the link (every hop ok, enough healthy targets), else 0; absent before its first observation",
            m.link_healthy.clone(),
        );
        r.register(
            "link_targets",
            "The link's desired targets by health state (healthy, initial, unhealthy, draining, unused, unavailable, missing)",
            m.link_targets.clone(),
        );
        r.register("links", "Links by phase", m.links_by_phase.clone());
        r.register("drift_repairs", "Out-of-band changes repaired, by resource type", m.drift_repairs.clone());
        r.register(
            "changes_applied",
            "Changes made because the desired state asked for them (not drift), by resource type",
            m.changes_applied.clone(),
        );
        r.register("aws_requests", "AWS API requests, by service, operation and outcome", m.aws_requests.clone());
        r.register("aws_request_duration_seconds", "AWS API request latency", m.aws_request_duration.clone());
        r.register("aws_throttled", "AWS throttling responses, by service", m.aws_throttled.clone());
        r.register(
            "aws_rate_limit_wait_seconds",
            "Time AWS calls waited in crosslink's client-side rate limiter, by service",
            m.aws_rate_limit_wait.clone(),
        );
        r.register("queue_depth", "Work items (links, gateways, peerings) due for reconcile", m.queue_depth.clone());
        r.register("desired_state_info", "The desired-state revision in force (value 1)", m.desired_info.clone());
        r.register("desired_state_load_errors", "Failed attempts to load desired state", m.desired_load_errors.clone());
        r.register(
            "desired_state_valid",
            "1 while the newest desired state is valid, 0 while it is not (the last good one stays in force)",
            m.desired_valid.clone(),
        );
        r.register(
            "last_full_sync_timestamp_seconds",
            "Unix time of the last full pass that ended in sync",
            m.last_full_sync.clone(),
        );
        r.register("prune_blocked", "1 while the prune guard holds back deletions", m.prune_blocked.clone());
        r.register(
            "prune_blocked_passes",
            "Passes whose deletions the prune guard held back",
            m.prune_blocked_total.clone(),
        );
        r.register(
            "protection_blocked",
            "1 while the protection guard holds back changes that would make routes less protected",
            m.protection_blocked.clone(),
        );
        r.register("build_info", "Version and commit of this binary (value 1)", m.build_info.clone());
        r.register(
            "shard_units",
            "Units (a gateway with its links) in the desired state in force",
            m.shard_units.clone(),
        );
        r.register(
            "shard_units_owned",
            "Units whose lease this replica holds (all of them when it runs alone)",
            m.shard_units_owned.clone(),
        );
        r.register(
            "shard_members",
            "Live replicas seen in the coordination engine (1 when alone)",
            m.shard_members.clone(),
        );
        r.register(
            "shard_leases_lost",
            "Unit leases lost without handing them over (not renewed in time, or taken by another replica)",
            m.shard_leases_lost.clone(),
        );
        r.register(
            "coordination_healthy",
            "1 while the last exchange with the coordination engine succeeded (always 1 when running alone)",
            m.coordination_healthy.clone(),
        );
        r.register(
            "events_received",
            "Change events received from the events queue, by source service (a redelivery is not counted again)",
            m.events_received.clone(),
        );
        r.register(
            "events_ignored",
            "Change events that triggered no reconcile, by reason (unparseable, not-a-change, failed-call, own-call, unknown-account, unknown-resource, duplicate, not-held)",
            m.events_ignored.clone(),
        );
        r.register(
            "event_reconciles",
            "Reconciles of links, gateways and peerings that change events asked for",
            m.event_reconciles.clone(),
        );
        r.register(
            "event_repair_seconds",
            "From receiving a change event to the end of the pass that brought what it touched back in sync",
            m.event_repair.clone(),
        );
        r.register(
            "event_delivery_seconds",
            "From the time AWS gives a change event to its receipt by crosslink (CloudTrail and EventBridge delivery)",
            m.event_delivery.clone(),
        );
        r.register(
            "events_queue_up",
            "1 while the last receive from the events queue succeeded, 0 while receives fail; absent without --events-queue",
            m.events_queue_up.clone(),
        );
        r.register("events_queue_errors", "Failed receives from the events queue", m.events_queue_errors.clone());
        m.coordination_healthy.set(1);
        m.shard_members.set(1);
        m.build_info.get_or_create(&BuildLabels { version: version.into(), commit: commit.into() }).set(1);
        Metrics { registry, ..m }
    }

    pub fn record_aws_wait(&self, service: &str, waited: Duration) {
        if !waited.is_zero() {
            self.aws_rate_limit_wait
                .get_or_create(&ServiceLabels { service: service.into() })
                .inc_by(waited.as_secs_f64());
        }
    }

    pub fn record_aws(&self, service: &str, operation: &str, outcome: &str, took: Duration) {
        let labels = AwsLabels { service: service.into(), operation: operation.into(), outcome: outcome.into() };
        self.aws_requests.get_or_create(&labels).inc();
        self.aws_request_duration
            .get_or_create(&AwsOpLabels { service: service.into(), operation: operation.into() })
            .observe(took.as_secs_f64());
        if outcome == "throttled" {
            self.aws_throttled.get_or_create(&ServiceLabels { service: service.into() }).inc();
        }
    }

    pub fn set_revision(&self, revision: &str) {
        self.desired_info.clear();
        self.desired_info.get_or_create(&RevisionLabels { revision: revision.into() }).set(1);
    }

    /// The exposition text served on /metrics.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_the_names_dashboards_use() {
        let m = Metrics::new("0.1.0", "abc123");
        m.record_aws("ec2", "DescribeVpcs", "ok", Duration::from_millis(12));
        m.record_aws("ec2", "CreateRoute", "throttled", Duration::from_millis(3));
        m.set_revision("deadbeef");
        let text = m.encode();
        for name in [
            "crosslink_aws_requests_total{service=\"ec2\",operation=\"DescribeVpcs\",outcome=\"ok\"} 1",
            "crosslink_aws_throttled_total{service=\"ec2\"} 1",
            "crosslink_desired_state_info{revision=\"deadbeef\"} 1",
            "crosslink_build_info{version=\"0.1.0\",commit=\"abc123\"} 1",
            "# TYPE crosslink_reconcile_duration_seconds histogram",
            "# TYPE crosslink_last_full_sync_timestamp_seconds gauge",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
    }
}
