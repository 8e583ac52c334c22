//! Change events (issue 16): AWS's own record of a change ("AWS API Call via CloudTrail"),
//! delivered by EventBridge to an SQS queue, triggers a targeted reconcile of what it touched,
//! within seconds instead of at the next resync.
//!
//! Events are a speed-up, never the source of truth. A lost, late, duplicated or reordered event
//! loses nothing: the full resync still reads everything. So every decision here errs towards
//! deleting the message: nothing is retried forever, and nothing waits on an event.
//!
//! - [`parse`] reads one message body: the EventBridge envelope and the CloudTrail record in its
//!   `detail`, down to the resource ids its request named.
//! - [`Resolver`] maps those ids to the subjects (links, gateways, peerings) whose resources they
//!   are, from the last observation and the desired state: an in-memory lookup, no AWS call.
//!   Events about resources crosslink neither knows nor owns stop there.
//! - [`Consumer`] long-polls the queue, and hands the subjects to the daemon through [`Events`]
//!   (coalesced: a burst about one link is one reconcile). With several replicas, a message about
//!   a unit another replica holds is released for it (see `docs/events.md`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use backon::BackoffBuilder;
use crosslink_cloud::queue::{EventQueue, MAX_WAIT, QueueMessage};
use crosslink_coord::Ownership;
use crosslink_desired::{ApiTarget, DesiredState, LoadBalancerRef};
use crosslink_plan::Subject;
use crosslink_plan::observed::{AccountObservation, Observed};
use crosslink_plan::tags;
use crosslink_plan::units::{ORPHANS, Units};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::metrics::{EventLabels, IgnoredLabels, Metrics, QueueLabels};
use crate::status::{rfc3339, unix_now};

/// The `detail-type` EventBridge gives CloudTrail management events.
pub const DETAIL_TYPE: &str = "AWS API Call via CloudTrail";

/// The services whose changes crosslink cares about: `detail.eventSource` -> the metric label.
pub const SOURCES: &[(&str, &str)] = &[
    ("ec2.amazonaws.com", "ec2"),
    ("elasticloadbalancing.amazonaws.com", "elasticloadbalancing"),
    ("apigateway.amazonaws.com", "apigateway"),
    ("wafv2.amazonaws.com", "wafv2"),
];

/// The calls crosslink reacts to, by `detail.eventSource`: those that change, add or remove
/// what a link is made of (routes, peerings and their options, load balancers, listeners, target
/// groups and their targets, REST APIs with their resources, methods, integrations, stages,
/// deployments, VPC links and authorizers), and their tags (crosslink's ownership is a tag).
/// `crosslink events-setup` puts exactly these in its EventBridge patterns; any other event is
/// `not-a-change`.
pub const WATCHED: &[(&str, &[&str])] = &[
    (
        "ec2.amazonaws.com",
        &[
            "CreateRoute",
            "DeleteRoute",
            "ReplaceRoute",
            "DeleteRouteTable",
            "AcceptVpcPeeringConnection",
            "DeleteVpcPeeringConnection",
            "RejectVpcPeeringConnection",
            "ModifyVpcPeeringConnectionOptions",
            "CreateTags",
            "DeleteTags",
        ],
    ),
    (
        "elasticloadbalancing.amazonaws.com",
        &[
            "DeleteLoadBalancer",
            "CreateListener",
            "DeleteListener",
            "ModifyListener",
            "DeleteTargetGroup",
            "ModifyTargetGroup",
            "RegisterTargets",
            "DeregisterTargets",
            "AddTags",
            "RemoveTags",
        ],
    ),
    (
        "apigateway.amazonaws.com",
        &[
            "DeleteRestApi",
            "UpdateRestApi",
            "CreateResource",
            "DeleteResource",
            "UpdateResource",
            "PutMethod",
            "DeleteMethod",
            "UpdateMethod",
            "PutIntegration",
            "DeleteIntegration",
            "UpdateIntegration",
            "CreateDeployment",
            "DeleteDeployment",
            "CreateStage",
            "UpdateStage",
            "DeleteStage",
            "CreateVpcLink",
            "UpdateVpcLink",
            "DeleteVpcLink",
            "CreateAuthorizer",
            "UpdateAuthorizer",
            "DeleteAuthorizer",
            // Consumers: their usage plans, keys, and the keys in each plan.
            "UpdateUsagePlan",
            "DeleteUsagePlan",
            "CreateUsagePlanKey",
            "DeleteUsagePlanKey",
            "UpdateApiKey",
            "DeleteApiKey",
            "TagResource",
            "UntagResource",
        ],
    ),
    // A stage's web ACL: `resourceArn` is the stage's ARN, which gives the REST API's id.
    ("wafv2.amazonaws.com", &["AssociateWebACL", "DisassociateWebACL"]),
];

/// Whether crosslink reacts to this call (`WATCHED`).
pub fn watched(event_source: &str, name: &str) -> bool {
    WATCHED.iter().any(|(s, names)| *s == event_source && names.contains(&name))
}

/// Why an event led to no reconcile (the `reason` label of `crosslink_events_ignored_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ignored {
    /// Not JSON, or not an EventBridge event: deleted, never retried.
    Unparseable,
    /// Another detail type, or a call crosslink does not react to (`WATCHED`): reads, other
    /// services.
    NotAChange,
    /// The call failed (`errorCode`): it changed nothing.
    FailedCall,
    /// Made by crosslink itself (its role session), which already knows what it did.
    OwnCall,
    /// In an account the desired state does not name.
    UnknownAccount,
    /// About resources crosslink neither knows nor owns.
    UnknownResource,
    /// The same event (by its id) was handled already: SQS delivers at least once.
    Duplicate,
    /// About a unit no replica that saw it holds, after `max_receives` tries: the resync has it.
    NotHeld,
}

impl Ignored {
    pub fn as_str(self) -> &'static str {
        match self {
            Ignored::Unparseable => "unparseable",
            Ignored::NotAChange => "not-a-change",
            Ignored::FailedCall => "failed-call",
            Ignored::OwnCall => "own-call",
            Ignored::UnknownAccount => "unknown-account",
            Ignored::UnknownResource => "unknown-resource",
            Ignored::Duplicate => "duplicate",
            Ignored::NotHeld => "not-held",
        }
    }
}

/// One CloudTrail-recorded call, as far as crosslink reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeEvent {
    /// The EventBridge event id (duplicates share it).
    pub id: String,
    /// `ec2`, `elasticloadbalancing`, `apigateway`.
    pub source: &'static str,
    /// `DeleteRoute`, `DeregisterTargets`, `UpdateIntegration`, ...
    pub name: String,
    /// The AWS account the call was made in.
    pub account: String,
    /// When AWS says the call happened.
    pub time: Option<SystemTime>,
    /// `detail.userIdentity.arn`: who made it.
    pub caller: Option<String>,
    /// The resource ids and ARNs its request named, each once.
    pub ids: Vec<String>,
}

/// What a message body is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    Change(ChangeEvent),
    /// A well-formed event that is not a change crosslink reads: why.
    Skip {
        source: &'static str,
        why: Ignored,
    },
}

#[derive(Deserialize)]
struct Envelope {
    id: Option<String>,
    #[serde(rename = "detail-type")]
    detail_type: String,
    account: Option<String>,
    time: Option<String>,
    #[serde(default)]
    detail: serde_json::Value,
}

/// Reads one message body. `Err` says why it is not an EventBridge event at all.
pub fn parse(body: &str) -> Result<Parsed, String> {
    let env: Envelope = serde_json::from_str(body).map_err(|e| format!("not an EventBridge event: {e}"))?;
    let d = &env.detail;
    let event_source = d.get("eventSource").and_then(|v| v.as_str()).unwrap_or_default();
    let source = SOURCES.iter().find(|(s, _)| *s == event_source).map(|(_, l)| *l);
    let skip = |why| Ok(Parsed::Skip { source: source.unwrap_or("other"), why });
    if env.detail_type != DETAIL_TYPE {
        return skip(Ignored::NotAChange);
    }
    let Some(source) = source else { return skip(Ignored::NotAChange) };
    let name = d.get("eventName").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    if !watched(event_source, &name) {
        return skip(Ignored::NotAChange);
    }
    if d.get("errorCode").is_some_and(|v| !v.is_null()) {
        return skip(Ignored::FailedCall);
    }
    // The CloudTrail record's own account is where the call was made; the envelope's is the
    // same for an event forwarded from that account's bus, and the sender's for PutEvents.
    let account = d
        .get("recipientAccountId")
        .and_then(|v| v.as_str())
        .map(String::from)
        .or(env.account)
        .ok_or("the event names no account")?;
    let mut ids = Vec::new();
    collect_ids(d.get("requestParameters").unwrap_or(&serde_json::Value::Null), &mut ids);
    let mut seen = HashSet::new();
    ids.retain(|i| seen.insert(i.clone()));
    Ok(Parsed::Change(ChangeEvent {
        id: env.id.or_else(|| d.get("eventID").and_then(|v| v.as_str()).map(String::from)).unwrap_or_default(),
        source,
        name,
        account,
        time: env.time.as_deref().and_then(|t| humantime::parse_rfc3339_weak(t).ok()),
        caller: d.pointer("/userIdentity/arn").and_then(|v| v.as_str()).map(String::from),
        ids,
    }))
}

/// Every string in the request: ids (`rtb-…`, `pcx-…`, REST API and resource ids) and ARNs. An
/// API Gateway ARN (`arn:aws:apigateway:<region>::/restapis/<id>/…`) also gives its path's
/// segments, which hold the ids. What is not an id costs a failed lookup, nothing more.
fn collect_ids(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => {
            if s.starts_with("arn:aws:apigateway:") {
                out.extend(s.split('/').skip(1).filter(|p| !p.is_empty()).map(String::from));
            }
            out.push(s.clone());
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_ids(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| collect_ids(x, out)),
        _ => {}
    }
}

/// What an event resolves to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    Ignore(Ignored),
    /// The subjects whose resources it touched (possibly none), and the units of the account it
    /// was made in: a replica that does not hold one of them cannot tell that the event is not
    /// about it.
    Touches {
        subjects: BTreeSet<Subject>,
        units: BTreeSet<String>,
    },
}

#[derive(Clone, Debug, Default)]
struct AccountKey {
    /// `arn:aws:sts::<id>:assumed-role/<role>/<session>`: crosslink's own calls there.
    own_caller: Option<String>,
    /// The units with resources in the account.
    units: BTreeSet<String>,
}

/// Resource ids -> subjects, from the last observation and the desired state. Rebuilt after every
/// pass; a lookup is a hash probe per id in the event.
#[derive(Clone, Debug, Default)]
pub struct Resolver {
    by_id: HashMap<String, BTreeSet<Subject>>,
    accounts: HashMap<String, AccountKey>,
    units: Units,
}

/// Whether an API resource at `resource` carries part of a route at `route`: the route's own
/// resource, one below it (`{proxy+}`), or one above it.
fn path_related(resource: &str, route: &str) -> bool {
    let below = |a: &str, b: &str| b == "/" || a.strip_prefix(b).is_some_and(|r| r.starts_with('/'));
    resource == route || below(resource, route) || below(route, resource)
}

impl Resolver {
    pub fn new(desired: &DesiredState, observed: Option<&Observed>, units: &Units) -> Resolver {
        let mut r = Resolver { units: units.clone(), ..Resolver::default() };
        let ix = desired.index();
        for a in &desired.accounts {
            let own_caller = a.spec.assume_role.as_ref().and_then(|role| {
                let name = role.role_arn.rsplit('/').next()?;
                let session = role.session_name.as_deref().unwrap_or("crosslink");
                Some(format!("arn:aws:sts::{}:assumed-role/{name}/{session}", a.spec.account_id))
            });
            let mut key = AccountKey { own_caller, units: BTreeSet::new() };
            for g in &desired.gateways {
                let unit = units.of_gateway(&g.metadata.name).unwrap_or(ORPHANS).to_string();
                if g.spec.account == a.metadata.name
                    || ix.links_of(&g.metadata.name).iter().any(|l| l.spec.service.account == a.metadata.name)
                {
                    key.units.insert(unit);
                }
            }
            r.accounts.insert(a.spec.account_id.clone(), key);
        }
        let Some(observed) = observed else { return r };
        let mut add = |id: &str, s: Subject| {
            r.by_id.entry(id.to_string()).or_default().insert(s);
        };
        let states: Vec<(&str, &crosslink_plan::observed::AccountState)> = observed
            .accounts
            .iter()
            .filter_map(|(n, o)| match o {
                AccountObservation::Ok(s) => Some((n.as_str(), s.as_ref())),
                _ => None,
            })
            .collect();
        // Peerings by owner tag, then the route tables that route to them.
        let mut peerings: HashMap<&str, Subject> = HashMap::new();
        for (_, st) in &states {
            for p in &st.peerings {
                if let Some(s) = tags::owner_subject(&p.tags) {
                    peerings.insert(p.id.as_str(), s);
                }
            }
        }
        for (id, s) in &peerings {
            add(id, s.clone());
        }
        for (account, st) in &states {
            for t in st.route_tables.values() {
                for route in &t.routes {
                    if let Some(s) = route.peering_id.as_deref().and_then(|p| peerings.get(p)) {
                        add(&t.id, s.clone());
                    }
                }
            }
            let gateways: Vec<_> = desired.gateways.iter().filter(|g| g.spec.account == *account).collect();
            // Load balancers: crosslink's own, or one a gateway names.
            let mut lb_gateways: HashMap<&str, Vec<&crosslink_desired::Gateway>> = HashMap::new();
            for lb in &st.load_balancers {
                let named: Vec<_> = gateways
                    .iter()
                    .copied()
                    .filter(|g| match &g.spec.load_balancer {
                        LoadBalancerRef::Arn(arn) => *arn == lb.arn,
                        LoadBalancerRef::Name(n) => *n == lb.name,
                    })
                    .collect();
                for g in &named {
                    add(&lb.arn, Subject::Gateway(g.metadata.name.clone()));
                }
                if let Some(s) = tags::owner_subject(&lb.tags) {
                    add(&lb.arn, s);
                }
                lb_gateways.insert(lb.arn.as_str(), named);
            }
            for l in &st.listeners {
                if let Some(s) = tags::owner_subject(&l.tags) {
                    add(&l.arn, s);
                }
                // A listener on a gateway's load balancer at a link's port is that link's.
                for g in lb_gateways.get(l.load_balancer_arn.as_str()).into_iter().flatten() {
                    for link in ix.links_of(&g.metadata.name).iter().filter(|k| k.spec.listener_port == l.port) {
                        add(&l.arn, Subject::Link(link.metadata.name.clone()));
                    }
                }
            }
            for t in &st.target_groups {
                if let Some(s) = tags::owner_subject(&t.tags) {
                    add(&t.arn, s);
                }
            }
            for v in &st.vpc_links {
                if let Some(s) = tags::owner_subject(&v.tags) {
                    add(&v.id, s);
                }
                for g in v.target_arns.iter().flat_map(|a| lb_gateways.get(a.as_str()).into_iter().flatten()) {
                    add(&v.id, Subject::Gateway(g.metadata.name.clone()));
                }
            }
            // A consumer's usage plan and keys (`usagePlanId`, `keyId`, `apiKey` in requests).
            for u in &st.usage_plans {
                if let Some(s) = tags::owner_subject(&u.tags) {
                    add(&u.id, s);
                }
            }
            for k in &st.api_keys {
                if let Some(s) = tags::owner_subject(&k.tags) {
                    add(&k.id, s);
                }
            }
            for api in &st.rest_apis {
                let named: Vec<_> = gateways
                    .iter()
                    .copied()
                    .filter(|g| match &g.spec.api.target {
                        ApiTarget::Id(id) => *id == api.id,
                        ApiTarget::Name(n) => *n == api.name,
                    })
                    .collect();
                if let Some(s) = tags::owner_subject(&api.tags) {
                    add(&api.id, s);
                }
                for g in &named {
                    add(&api.id, Subject::Gateway(g.metadata.name.clone()));
                }
                // A resource is the links' whose routes it carries; else (the root, a path no
                // route uses any more) its gateway's.
                for res in &api.resources {
                    for g in &named {
                        let links: Vec<_> = ix
                            .links_of(&g.metadata.name)
                            .iter()
                            .filter(|l| l.spec.routes.iter().any(|rt| path_related(&res.path, &rt.path)))
                            .map(|l| Subject::Link(l.metadata.name.clone()))
                            .collect();
                        if links.is_empty() {
                            add(&res.id, Subject::Gateway(g.metadata.name.clone()));
                        }
                        for s in links {
                            add(&res.id, s);
                        }
                    }
                }
            }
        }
        r
    }

    /// The subjects an event touches (see `Resolution`).
    pub fn resolve(&self, ev: &ChangeEvent) -> Resolution {
        let Some(account) = self.accounts.get(&ev.account) else {
            return Resolution::Ignore(Ignored::UnknownAccount);
        };
        if let (Some(own), Some(caller)) = (&account.own_caller, &ev.caller)
            && own == caller
        {
            return Resolution::Ignore(Ignored::OwnCall);
        }
        let subjects: BTreeSet<Subject> =
            ev.ids.iter().filter_map(|i| self.by_id.get(i)).flat_map(|s| s.iter().cloned()).collect();
        Resolution::Touches { subjects, units: account.units.clone() }
    }

    /// The unit a subject belongs to (a removed one: the orphans').
    pub fn unit_of(&self, s: &Subject) -> String {
        self.units.of_subject(s).unwrap_or(ORPHANS).to_string()
    }
}

/// The queue's state, for `/status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventsStatus {
    pub queue: String,
    /// `starting`, `ok` (the last receive succeeded) or `failing`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_receive: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event: Option<LastEvent>,
    /// Events received since the start, and those of them that triggered a reconcile.
    pub received: u64,
    pub triggered: u64,
}

impl EventsStatus {
    /// One line for people: `ok: 12 received, 3 reconciled; last DeleteRoute in 222222222222
    /// (ec2) at <time>: reconcile: Link/pay`.
    pub fn summary(&self) -> String {
        let mut line = format!("{}: {} received, {} reconciled", self.state, self.received, self.triggered);
        if let Some(err) = &self.last_error {
            line.push_str(&format!("; cannot read the queue: {err}"));
        }
        if let Some(e) = &self.last_event {
            line.push_str(&format!(
                "; last {} in {} ({}) at {}: {}",
                e.name, e.account, e.source, e.received, e.outcome
            ));
        }
        line
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastEvent {
    pub id: String,
    pub source: String,
    pub name: String,
    pub account: String,
    /// When it was received (RFC 3339).
    pub received: String,
    /// `reconcile: Link/pay, …` or `ignored: <reason>`.
    pub outcome: String,
}

/// What the consumer and the daemon share: the resolver the daemon publishes after each pass,
/// and the subjects events asked for, each with when its first event since its last reconcile
/// arrived.
#[derive(Debug)]
pub struct Events {
    resolver: RwLock<Arc<Resolver>>,
    /// Set once the daemon's first pass is done: until then the consumer does not receive (the
    /// messages wait in the queue), as nothing could be resolved against an observation.
    first_pass: std::sync::atomic::AtomicBool,
    first_pass_done: Notify,
    pending: Mutex<BTreeMap<Subject, Instant>>,
    arrived: Notify,
    status: Mutex<EventsStatus>,
}

impl Events {
    pub fn new(queue: &str) -> Arc<Events> {
        Arc::new(Events {
            resolver: RwLock::default(),
            first_pass: std::sync::atomic::AtomicBool::new(false),
            first_pass_done: Notify::new(),
            pending: Mutex::default(),
            arrived: Notify::new(),
            status: Mutex::new(EventsStatus {
                queue: queue.to_string(),
                state: "starting".into(),
                ..Default::default()
            }),
        })
    }

    /// The daemon's view after a pass.
    pub fn set_resolver(&self, r: Resolver) {
        *self.resolver.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(r);
    }

    /// The daemon finished a pass (and published its resolver): receiving may start.
    pub fn pass_done(&self) {
        if !self.first_pass.swap(true, std::sync::atomic::Ordering::AcqRel) {
            self.first_pass_done.notify_waiters();
        }
    }

    async fn first_pass(&self) {
        loop {
            let done = self.first_pass_done.notified();
            if self.first_pass.load(std::sync::atomic::Ordering::Acquire) {
                return;
            }
            done.await;
        }
    }

    fn resolver(&self) -> Arc<Resolver> {
        self.resolver.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn push(&self, subjects: impl IntoIterator<Item = Subject>, at: Instant) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for s in subjects {
            p.entry(s).or_insert(at);
        }
        drop(p);
        self.arrived.notify_one();
    }

    /// Waits until events asked for something.
    pub async fn arrived(&self) {
        self.arrived.notified().await
    }

    /// The subjects asked for since the last call, each with its first event's arrival.
    pub fn take(&self) -> BTreeMap<Subject, Instant> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn status(&self) -> EventsStatus {
        self.status.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn update_status(&self, f: impl FnOnce(&mut EventsStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[derive(Clone, Debug)]
pub struct ConsumerOptions {
    /// Long-poll wait: at most one receive request per this while idle (SQS allows up to 20 s).
    pub wait: Duration,
    /// A message released for another replica this many times is deleted (`Ignored::NotHeld`).
    pub max_receives: u32,
    /// Event ids remembered for de-duplication.
    pub remember: usize,
    /// After handing messages back, this replica waits this long before its next receive, so
    /// that the others' long polls get them (a consumer that received again at once would take
    /// them back itself).
    pub release_pause: Duration,
    /// Backoff between receives while the queue cannot be read.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        ConsumerOptions {
            wait: MAX_WAIT,
            max_receives: 10,
            remember: 10_000,
            release_pause: Duration::from_secs(1),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// What becomes of one message.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Fate {
    Delete,
    /// Made visible again at once: another replica holds a unit it may be about.
    Release,
}

/// Long-polls the queue until shutdown. Never stops the daemon: an unreadable queue is reported
/// and read again with backoff, while the resync goes on.
pub struct Consumer<Q> {
    queue: Q,
    events: Arc<Events>,
    metrics: Arc<Metrics>,
    ownership: Ownership,
    opts: ConsumerOptions,
    seen: HashSet<String>,
    seen_order: VecDeque<String>,
}

impl<Q: EventQueue> Consumer<Q> {
    pub fn new(
        queue: Q,
        events: Arc<Events>,
        metrics: Arc<Metrics>,
        ownership: Ownership,
        opts: ConsumerOptions,
    ) -> Self {
        Consumer { queue, events, metrics, ownership, opts, seen: HashSet::new(), seen_order: VecDeque::new() }
    }

    pub async fn run(mut self, shutdown: CancellationToken) {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = self.events.first_pass() => {}
        }
        info!(queue = %self.queue.name(), "first pass done: reading change events");
        let (min, max) = (self.opts.min_backoff, self.opts.max_backoff);
        let backoff = move || {
            backon::ExponentialBuilder::default()
                .with_min_delay(min)
                .with_max_delay(max)
                .with_jitter()
                .without_max_times()
                .build()
        };
        let mut delays = backoff();
        let mut failing = false;
        loop {
            let started = std::time::Instant::now();
            let got = tokio::select! {
                _ = shutdown.cancelled() => break,
                got = self.queue.receive(self.opts.wait) => got,
            };
            self.record("ReceiveMessage", got.as_ref().err(), started.elapsed());
            match got {
                Ok(messages) => {
                    if failing {
                        info!(queue = %self.queue.name(), "change-event queue readable again");
                    }
                    failing = false;
                    delays = backoff();
                    self.metrics.events_queue_up.get_or_create(&QueueLabels { queue: self.queue.name() }).set(1);
                    self.events.update_status(|s| {
                        s.state = "ok".into();
                        s.last_error = None;
                        s.last_receive = Some(rfc3339(unix_now()));
                    });
                    if self.handle(messages).await > 0 {
                        tokio::select! {
                            _ = shutdown.cancelled() => break,
                            _ = tokio::time::sleep(self.opts.release_pause) => {}
                        }
                    }
                }
                Err(e) => {
                    self.metrics.events_queue_up.get_or_create(&QueueLabels { queue: self.queue.name() }).set(0);
                    self.metrics.events_queue_errors.inc();
                    if !failing {
                        warn!(queue = %self.queue.name(), error = %e.code, "change-event queue cannot be read: {}; the resync still runs, and the queue is read again with backoff", e.message);
                    }
                    failing = true;
                    self.events.update_status(|s| {
                        s.state = "failing".into();
                        s.last_error = Some(e.to_string());
                    });
                    let wait = delays.next().unwrap_or(self.opts.max_backoff);
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    /// One receive's messages: queued subjects, the releases, then one batch delete. Returns
    /// how many were handed back.
    pub async fn handle(&mut self, messages: Vec<QueueMessage>) -> usize {
        if messages.is_empty() {
            return 0;
        }
        let mut released = 0;
        let resolver = self.events.resolver();
        let owned = self.ownership.owned();
        let mut deletes = Vec::new();
        for m in messages {
            match self.fate(&m, &resolver, owned.as_ref()) {
                Fate::Delete => deletes.push(m.receipt),
                Fate::Release => {
                    released += 1;
                    let started = std::time::Instant::now();
                    let released = self.queue.release(m.receipt).await;
                    self.record("ChangeMessageVisibility", released.as_ref().err(), started.elapsed());
                    if let Err(e) = released {
                        debug!(error = %e, "could not release a change event; it comes back after its visibility timeout");
                    }
                }
            }
        }
        if deletes.is_empty() {
            return released;
        }
        let started = std::time::Instant::now();
        let deleted = self.queue.delete(deletes).await;
        self.record("DeleteMessageBatch", deleted.as_ref().err(), started.elapsed());
        if let Err(e) = deleted {
            // Not deleted: delivered again later, and then a duplicate (by event id).
            warn!(error = %e, "could not delete handled change events; they will be received again");
        }
        released
    }

    /// The queue's calls count with every other AWS call (`crosslink_aws_requests_total`).
    fn record(&self, operation: &str, error: Option<&crosslink_cloud::CloudError>, took: Duration) {
        let outcome = error.map_or("ok", |e| e.kind.as_str());
        self.metrics.record_aws("sqs", operation, outcome, took);
    }

    fn remember(&mut self, id: &str) -> bool {
        if id.is_empty() {
            return true;
        }
        if !self.seen.insert(id.to_string()) {
            return false;
        }
        self.seen_order.push_back(id.to_string());
        while self.seen_order.len() > self.opts.remember {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }

    fn ignore(&self, source: &str, why: Ignored) {
        self.metrics.events_ignored.get_or_create(&IgnoredLabels { reason: why.as_str().into() }).inc();
        debug!(source, reason = why.as_str(), "change event ignored");
    }

    fn fate(&mut self, m: &QueueMessage, resolver: &Resolver, owned: Option<&BTreeSet<String>>) -> Fate {
        let now = Instant::now();
        let ev = match parse(&m.body) {
            Err(why) => {
                self.metrics.events_received.get_or_create(&EventLabels { source: "unknown".into() }).inc();
                self.ignore("unknown", Ignored::Unparseable);
                warn!(message_id = %m.message_id, "a message on the change-event queue cannot be read; deleted: {why}");
                return Fate::Delete;
            }
            Ok(Parsed::Skip { source, why }) => {
                self.metrics.events_received.get_or_create(&EventLabels { source: source.into() }).inc();
                self.ignore(source, why);
                return Fate::Delete;
            }
            Ok(Parsed::Change(ev)) => ev,
        };
        if m.receive_count <= 1 {
            self.metrics.events_received.get_or_create(&EventLabels { source: ev.source.into() }).inc();
            self.events.update_status(|s| s.received += 1);
        }
        if let Some(delivered) = ev.time.and_then(|t| SystemTime::now().duration_since(t).ok()) {
            self.metrics.event_delivery.observe(delivered.as_secs_f64());
        }
        let mut last = LastEvent {
            id: ev.id.clone(),
            source: ev.source.into(),
            name: ev.name.clone(),
            account: ev.account.clone(),
            received: rfc3339(unix_now()),
            outcome: String::new(),
        };
        let (fate, outcome) = self.decide(&ev, m.receive_count, resolver, owned, now);
        last.outcome = outcome;
        self.events.update_status(|s| s.last_event = Some(last));
        fate
    }

    fn decide(
        &mut self,
        ev: &ChangeEvent,
        receive_count: u32,
        resolver: &Resolver,
        owned: Option<&BTreeSet<String>>,
        now: Instant,
    ) -> (Fate, String) {
        let ignored = |c: &Self, why: Ignored| {
            c.ignore(ev.source, why);
            (Fate::Delete, format!("ignored: {}", why.as_str()))
        };
        if self.seen.contains(&ev.id) {
            return ignored(self, Ignored::Duplicate);
        }
        let (subjects, units) = match resolver.resolve(ev) {
            Resolution::Ignore(why) => {
                self.remember(&ev.id);
                return ignored(self, why);
            }
            Resolution::Touches { subjects, units } => (subjects, units),
        };
        // Sharded: this replica reconciles what it holds; what another may hold goes back on the
        // queue for it. A message that keeps coming back is left to the resync.
        let held = |u: &str| owned.is_none_or(|o| o.contains(u));
        let mine: BTreeSet<Subject> = subjects.iter().filter(|s| held(&resolver.unit_of(s))).cloned().collect();
        let elsewhere = if subjects.is_empty() { units.iter().any(|u| !held(u)) } else { mine.len() < subjects.len() };
        let release = elsewhere && receive_count < self.opts.max_receives;
        if !mine.is_empty() {
            let names: Vec<String> = mine.iter().map(|s| s.to_string()).collect();
            info!(
                event = %ev.name,
                source = ev.source,
                account = %ev.account,
                caller = ev.caller.as_deref().unwrap_or("unknown"),
                subjects = ?names,
                "change event: reconciling what it touched"
            );
            self.metrics.event_reconciles.inc_by(mine.len() as u64);
            self.events.update_status(|s| s.triggered += 1);
            self.events.push(mine, now);
            if !release {
                self.remember(&ev.id);
            }
            let outcome = format!("reconcile: {}", names.join(", "));
            return (if release { Fate::Release } else { Fate::Delete }, outcome);
        }
        if release {
            return (Fate::Release, "released for the replica holding its unit".into());
        }
        self.remember(&ev.id);
        ignored(self, if elsewhere { Ignored::NotHeld } else { Ignored::UnknownResource })
    }
}

/// A CloudTrail management event as EventBridge delivers it ("AWS API Call via CloudTrail"),
/// shaped as AWS documents it (envelope `id`, `detail-type`, `source`, `account`, `time`; the
/// record in `detail`, with `eventSource`, `eventName`, `userIdentity`, `requestParameters`).
/// moto emits none of its own: tests, the benchmark and the runbook's drill send these.
pub fn cloudtrail_event(
    id: &str,
    account: &str,
    event_source: &str,
    name: &str,
    caller: &str,
    request: serde_json::Value,
) -> String {
    let time = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    serde_json::json!({
        "version": "0",
        "id": id,
        "detail-type": DETAIL_TYPE,
        "source": format!("aws.{}", event_source.split('.').next().unwrap_or_default()),
        "account": account,
        "time": time,
        "region": "eu-central-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.08",
            "userIdentity": {
                "type": "AssumedRole",
                "principalId": format!("AROAEXAMPLE:{}", caller.rsplit('/').next().unwrap_or_default()),
                "arn": caller,
                "accountId": account
            },
            "eventTime": time,
            "eventSource": event_source,
            "eventName": name,
            "awsRegion": "eu-central-1",
            "sourceIPAddress": "198.51.100.7",
            "requestParameters": request,
            "responseElements": null,
            "eventID": format!("{id}-ct"),
            "readOnly": false,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": account
        }
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloudtrail(id: &str, account: &str, source: &str, name: &str, params: serde_json::Value) -> String {
        cloudtrail_event(id, account, source, name, &format!("arn:aws:sts::{account}:assumed-role/Admin/alice"), params)
    }

    #[test]
    fn a_cloudtrail_route_deletion_names_its_table() {
        let body = cloudtrail(
            "e1",
            "222222222222",
            "ec2.amazonaws.com",
            "DeleteRoute",
            serde_json::json!({"routeTableId": "rtb-1", "destinationCidrBlock": "10.20.0.0/16"}),
        );
        let Ok(Parsed::Change(ev)) = parse(&body) else { panic!("{:?}", parse(&body)) };
        assert_eq!((ev.source, ev.name.as_str(), ev.account.as_str()), ("ec2", "DeleteRoute", "222222222222"));
        assert!(ev.ids.contains(&"rtb-1".to_string()));
        assert_eq!(ev.caller.as_deref(), Some("arn:aws:sts::222222222222:assumed-role/Admin/alice"));
        assert!(ev.time.is_some());
    }

    #[test]
    fn reads_failures_other_sources_and_garbage_are_told_apart() {
        let p = |name: &str, source: &str| parse(&cloudtrail("e", "1", source, name, serde_json::json!({})));
        assert_eq!(
            p("DescribeRouteTables", "ec2.amazonaws.com"),
            Ok(Parsed::Skip { source: "ec2", why: Ignored::NotAChange })
        );
        assert_eq!(p("PutObject", "s3.amazonaws.com"), Ok(Parsed::Skip { source: "other", why: Ignored::NotAChange }));
        let mut failed: serde_json::Value =
            serde_json::from_str(&cloudtrail("e", "1", "ec2.amazonaws.com", "DeleteRoute", serde_json::json!({})))
                .unwrap();
        failed["detail"]["errorCode"] = "Client.UnauthorizedOperation".into();
        assert_eq!(parse(&failed.to_string()), Ok(Parsed::Skip { source: "ec2", why: Ignored::FailedCall }));
        assert!(parse("not json").is_err());
        assert!(parse("{\"hello\": 1}").is_err());
    }

    #[test]
    fn api_gateway_arns_give_their_ids() {
        let body = cloudtrail(
            "e2",
            "1",
            "apigateway.amazonaws.com",
            "TagResource",
            serde_json::json!({"resourceArn": "arn:aws:apigateway:eu-central-1::/restapis/abc123/stages/prod"}),
        );
        let Ok(Parsed::Change(ev)) = parse(&body) else { panic!() };
        assert!(ev.ids.contains(&"abc123".to_string()), "{:?}", ev.ids);
        // A web ACL taken off a stage by hand (WAF's own event) names the stage the same way.
        let body = cloudtrail(
            "e3",
            "1",
            "wafv2.amazonaws.com",
            "DisassociateWebACL",
            serde_json::json!({"resourceArn": "arn:aws:apigateway:eu-central-1::/restapis/abc123/stages/prod"}),
        );
        let Ok(Parsed::Change(ev)) = parse(&body) else { panic!("{:?}", parse(&body)) };
        assert_eq!((ev.source, ev.ids.contains(&"abc123".to_string())), ("wafv2", true), "{:?}", ev.ids);
    }

    /// crosslink's own calls are known by the role and session it assumes in the account; the
    /// same role used by a person (another session) is not crosslink.
    #[test]
    fn own_calls_are_told_by_role_and_session() {
        let yaml = "apiVersion: crosslink.dev/v1alpha1\nkind: Account\nmetadata: {name: svc}\nspec:\n  accountId: \"222222222222\"\n  region: eu-central-1\n  assumeRole: {roleArn: \"arn:aws:iam::222222222222:role/crosslink-service\", sessionName: cl-prod}\n";
        let desired = crosslink_desired::load_str(std::path::Path::new("a.yaml"), yaml).expect("valid");
        let r = Resolver::new(&desired, None, &Units::of(&desired));
        let event = |caller: &str| {
            let body = cloudtrail_event(
                "e",
                "222222222222",
                "ec2.amazonaws.com",
                "DeleteRoute",
                caller,
                serde_json::json!({"routeTableId": "rtb-1"}),
            );
            let Ok(Parsed::Change(ev)) = parse(&body) else { panic!() };
            r.resolve(&ev)
        };
        assert_eq!(
            event("arn:aws:sts::222222222222:assumed-role/crosslink-service/cl-prod"),
            Resolution::Ignore(Ignored::OwnCall)
        );
        assert!(matches!(
            event("arn:aws:sts::222222222222:assumed-role/crosslink-service/alice"),
            Resolution::Touches { .. }
        ));
        let far = cloudtrail_event("e", "999999999999", "ec2.amazonaws.com", "DeleteRoute", "x", serde_json::json!({}));
        let Ok(Parsed::Change(ev)) = parse(&far) else { panic!() };
        assert_eq!(r.resolve(&ev), Resolution::Ignore(Ignored::UnknownAccount));
    }

    /// A hand change to a consumer's usage plan or key (`usagePlanId`, `keyId`, `apiKey`) reaches
    /// the consumer, by the owner tag of what crosslink observed.
    #[test]
    fn usage_plan_and_api_key_events_reach_their_consumer() {
        use crosslink_plan::observed::{AccountState, ApiKey, UsagePlan};
        let yaml = "apiVersion: crosslink.dev/v1alpha1\nkind: Account\nmetadata: {name: gw}\nspec:\n  accountId: \"111111111111\"\n  region: eu-central-1\n";
        let desired = crosslink_desired::load_str(std::path::Path::new("a.yaml"), yaml).expect("valid");
        let owned = |c: &str| BTreeMap::from([("crosslink.dev/owner".to_string(), format!("Consumer/{c}"))]);
        let st = AccountState {
            usage_plans: vec![UsagePlan {
                id: "up1".into(),
                name: "crosslink-acme".into(),
                description: None,
                throttle: None,
                quota: None,
                api_stages: vec![],
                key_ids: vec!["k1".into()],
                tags: owned("acme"),
            }],
            api_keys: vec![ApiKey {
                id: "k1".into(),
                name: "crosslink-acme-g1".into(),
                enabled: true,
                created_date: 0,
                tags: owned("acme"),
            }],
            ..AccountState::default()
        };
        let observed =
            Observed { accounts: BTreeMap::from([("gw".to_string(), AccountObservation::Ok(Box::new(st)))]) };
        let r = Resolver::new(&desired, Some(&observed), &Units::of(&desired));
        let touched = |name: &str, params: serde_json::Value| {
            let body = cloudtrail_event(
                "e",
                "111111111111",
                "apigateway.amazonaws.com",
                name,
                "arn:aws:sts::111111111111:assumed-role/Admin/alice",
                params,
            );
            let Ok(Parsed::Change(ev)) = parse(&body) else { panic!("{name} is watched") };
            match r.resolve(&ev) {
                Resolution::Touches { subjects, .. } => subjects.into_iter().collect::<Vec<_>>(),
                other => panic!("{other:?}"),
            }
        };
        let acme = vec![Subject::Consumer("acme".into())];
        assert_eq!(touched("UpdateUsagePlan", serde_json::json!({"usagePlanId": "up1"})), acme);
        assert_eq!(touched("DeleteUsagePlanKey", serde_json::json!({"usagePlanId": "up1", "keyId": "k1"})), acme);
        assert_eq!(touched("UpdateApiKey", serde_json::json!({"apiKey": "k1"})), acme);
        assert_eq!(touched("DeleteApiKey", serde_json::json!({"apiKey": "someone-elses"})), vec![]);
    }

    #[test]
    fn route_paths_relate_to_the_resources_that_carry_them() {
        assert!(path_related("/pay", "/pay"));
        assert!(path_related("/pay/{proxy+}", "/pay"));
        assert!(path_related("/v1", "/v1/pay"));
        assert!(path_related("/", "/pay"));
        assert!(!path_related("/payments", "/pay"));
        assert!(!path_related("/orders", "/pay"));
    }
}
