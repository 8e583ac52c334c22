//! The diff: desired state + observed state -> plan. Gateways first (NLB, VPC Link, REST API),
//! then each link (target group, targets, listener), the API resources of each gateway and its
//! deployment, the peerings with their routes, and last what crosslink owns that is no longer
//! desired. Nothing unowned is ever changed; nothing is deleted without an explicit reason.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use crosslink_desired::{BackendTls, Consumer, DeletionPolicy, DesiredState, Gateway, Index, Link};
use ipnet::Ipv4Net;

use crate::kinds::api_resource::parent_path;
use crate::kinds::method::{Backend, Protection, integration_base, uri_at};
use crate::kinds::{self, Outs, ResourceKind, StageOp};
use crate::model::*;
use crate::observed::*;
use crate::op::{Op, Output, Ref};
use crate::tags::{self, DELETION_POLICY, MANAGED_BY, OWNER};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The managed-by tag value: several crosslink instances can share accounts.
    pub instance: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { instance: tags::DEFAULT_INSTANCE.into() }
    }
}

/// Plans the changes that make `observed` match `desired`. A subject with a problem gets no
/// actions; a link is blocked by its peering's problems too.
pub fn plan(desired: &DesiredState, observed: &Observed, settings: &Settings) -> Plan {
    // Some problems of a link are found after it was planned (its peering's, a port held by a
    // blocked link): plan again with the blocked links frozen, so that the API neither points at
    // them nor prunes them, until no more links turn out blocked. Freezing only adds problems,
    // so this ends, usually after one more round.
    let mut frozen = BTreeSet::new();
    loop {
        let mut plan = plan_with(desired, observed, settings, &frozen);
        let blocked: BTreeSet<String> = desired
            .links
            .iter()
            .map(|l| l.metadata.name.clone())
            .filter(|n| plan.reports.get(&Subject::Link(n.clone())).is_some_and(|r| !r.problems.is_empty()))
            .collect();
        if blocked.is_subset(&frozen) {
            drop_blocked(&mut plan);
            return plan;
        }
        frozen.extend(blocked);
    }
}

/// Removes the actions of subjects with problems ("nothing is done for the subject until they
/// are resolved"), and what depends on them; a deployment only follows changes and stays with
/// the others. Ids and dependencies are renumbered.
fn drop_blocked(plan: &mut Plan) {
    let blocked: BTreeSet<&Subject> =
        plan.reports.iter().filter(|(_, r)| !r.problems.is_empty()).map(|(s, _)| s).collect();
    let n = plan.actions.len();
    let mut drop: Vec<bool> = plan.actions.iter().map(|a| blocked.contains(&a.subject)).collect();
    let mut changed = drop.iter().any(|d| *d);
    while changed {
        changed = false;
        for a in &plan.actions {
            let follows = matches!(a.op, Op::Stage(StageOp::CreateDeployment { .. }));
            if !drop[a.id] && !follows && a.deps.iter().any(|d| drop[*d]) {
                drop[a.id] = true;
                changed = true;
            }
        }
    }
    if !drop.iter().any(|d| *d) {
        return;
    }
    let mut new_id = vec![usize::MAX; n];
    let mut kept = Vec::new();
    for a in std::mem::take(&mut plan.actions) {
        if !drop[a.id] {
            new_id[a.id] = kept.len();
            kept.push(a);
        }
    }
    for (i, a) in kept.iter_mut().enumerate() {
        let a = Arc::make_mut(a);
        a.id = i;
        a.deps = a.deps.iter().filter(|d| !drop[**d]).map(|d| new_id[*d]).collect();
    }
    plan.actions = kept;
    plan.renumber_made_by(&new_id);
}

fn plan_with(desired: &DesiredState, observed: &Observed, settings: &Settings, frozen: &BTreeSet<String>) -> Plan {
    let mut p = Planner {
        d: desired,
        ix: desired.index(),
        peerings_by_id: peerings_by_id(observed),
        o: observed,
        s: settings,
        frozen,
        plan: Plan::default(),
        claimed: HashSet::new(),
        taken_over: BTreeMap::new(),
        elb: elb_index(observed, &settings.instance),
    };
    for g in &desired.gateways {
        p.plan.reports.entry(Subject::Gateway(g.metadata.name.clone())).or_default();
    }
    for l in &desired.links {
        p.plan.reports.entry(Subject::Link(l.metadata.name.clone())).or_default();
    }
    for c in &desired.consumers {
        p.plan.reports.entry(Subject::Consumer(c.metadata.name.clone())).or_default();
    }
    let mut gateways = Vec::new();
    for g in &desired.gateways {
        if let Some(cx) = p.gateway(g) {
            gateways.push(cx);
        }
    }
    // Each planned gateway's stage, for its consumers.
    let mut stages: BTreeMap<String, GatewayStage> = BTreeMap::new();
    for cx in &gateways {
        let mut entries = Vec::new();
        for l in p.ix.links_of(&cx.gw.metadata.name).to_vec() {
            entries.push(p.link(cx, l));
        }
        // Listeners a link leaves go once the API no longer points at them: after the deployment.
        let deploy = p.api(cx, &entries);
        if let Some(deploy) = deploy {
            for a in entries.iter().flat_map(|e| &e.after_deploy) {
                Arc::make_mut(&mut p.plan.actions[*a]).deps.push(deploy);
            }
        }
        let stage = &cx.gw.spec.api.stage;
        let exists = cx.out.rest_api.api.is_some_and(|a| a.stages.iter().any(|s| &s.name == stage));
        stages.insert(
            cx.gw.metadata.name.clone(),
            GatewayStage { api_id: cx.out.rest_api.id.clone(), stage: stage.clone(), exists, deploy },
        );
    }
    for c in &desired.consumers {
        p.consumer(c, &stages);
    }
    p.peerings();
    p.orphans();
    // A problem anywhere in a link's chain makes the link not ready: copy peering problems.
    let pairs: Vec<(String, Subject)> = desired
        .links
        .iter()
        .filter(|l| l.spec.transport.routes())
        .filter_map(|l| {
            let gw = p.ix.gateway(&l.spec.gateway)?;
            Some((l.metadata.name.clone(), Subject::Peering(gw.spec.vpc_id.clone(), l.spec.service.vpc_id.clone())))
        })
        .collect();
    for (link, pair) in pairs {
        if let Some(r) = p.plan.reports.get(&pair).cloned() {
            let lr = p.plan.reports.entry(Subject::Link(link)).or_default();
            lr.problems.extend(r.problems);
            lr.waiting.extend(r.waiting);
            lr.resources.extend(r.resources);
        }
    }
    p.plan
}

/// Every observed peering by id, as a search of the accounts in name order finds it first.
fn peerings_by_id(o: &Observed) -> HashMap<&str, &Peering> {
    let mut by_id = HashMap::new();
    for a in o.accounts.values() {
        if let AccountObservation::Ok(s) = a {
            for p in &s.peerings {
                by_id.entry(p.id.as_str()).or_insert(p);
            }
        }
    }
    by_id
}

pub(crate) struct Planner<'a> {
    pub(crate) d: &'a DesiredState,
    /// Lookups by name into `d`, built once (a search per link made planning quadratic).
    pub(crate) ix: Index<'a>,
    /// Every observed peering by id: the first account (in name order) that shows it.
    peerings_by_id: HashMap<&'a str, &'a Peering>,
    pub(crate) o: &'a Observed,
    pub(crate) s: &'a Settings,
    /// Links blocked by problems found after they were planned: their API entries are frozen.
    pub(crate) frozen: &'a BTreeSet<String>,
    pub(crate) plan: Plan,
    /// Owned resources (ids / ARNs) that desired state accounts for.
    pub(crate) claimed: HashSet<String>,
    /// Routes (table, destination) that a desired peering takes over from a crosslink peering
    /// being removed, with the action: the removal leaves them alone and waits for it.
    pub(crate) taken_over: BTreeMap<(String, Ipv4Net), usize>,
    /// Each account's target groups and listeners by owner and by load balancer, built once: a
    /// link finding its own by scanning its account made a plan quadratic in the links of one
    /// account.
    /// Keyed by the observed account's address: two Accounts may be one AWS account in two
    /// regions.
    elb: HashMap<*const AccountState, ElbIndex<'a>>,
}

/// One account's target groups and listeners, in observed order: crosslink's own (managed by
/// this instance) by owner tag, and every listener by its load balancer.
#[derive(Default)]
struct ElbIndex<'a> {
    target_groups_by_owner: HashMap<&'a str, Vec<&'a TargetGroup>>,
    listeners_by_owner: HashMap<&'a str, Vec<&'a Listener>>,
    listeners_by_lb: HashMap<&'a str, Vec<&'a Listener>>,
}

fn elb_index<'a>(o: &'a Observed, instance: &str) -> HashMap<*const AccountState, ElbIndex<'a>> {
    let mut out: HashMap<*const AccountState, ElbIndex<'a>> = HashMap::new();
    for a in o.accounts.values() {
        let AccountObservation::Ok(st) = a else { continue };
        let ix = out.entry(std::ptr::from_ref(st.as_ref())).or_default();
        // A link's transport resources (a privateLink's service side) are not its gateway chain.
        let own =
            |t: &'a Tags| (tags::is_managed(t, instance) && !tags::is_transport(t)).then(|| tags::owner(t)).flatten();
        for tg in &st.target_groups {
            if let Some(owner) = own(&tg.tags) {
                ix.target_groups_by_owner.entry(owner).or_default().push(tg);
            }
        }
        for x in &st.listeners {
            if let Some(owner) = own(&x.tags) {
                ix.listeners_by_owner.entry(owner).or_default().push(x);
            }
            ix.listeners_by_lb.entry(x.load_balancer_arn.as_str()).or_default().push(x);
        }
    }
    out
}

/// The stage of a pass that plans a kind (its registration names it, `kinds::for_each_kind!`).
/// A stage plans one subject at a time: it checks what the subject needs (its accounts, VPCs,
/// CIDRs), then runs the `plan` of each of its kinds, in registration order, over the subject's
/// context (generated: `kinds::plan_gateway`, `plan_link`, `plan_api`, `plan_pair`). A kind's
/// `plan` hands what later kinds need through the context's `out` (its module's `Out`), and
/// returns `None` when it found a problem that stops the subject there. The stages run in this
/// order; the clean-up of what desired state no longer accounts for comes last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Each gateway ([`GatewayCx`]): its load balancer, VPC link and REST API.
    Gateway,
    /// Each link of a gateway ([`LinkCx`]): its target group, targets and listener.
    Link,
    /// Each gateway's API once its links are planned ([`ApiCx`]): resources, methods, deployment.
    Api,
    /// Each (gateway VPC, service VPC) pair of the links ([`PairCx`]): the peering and its routes.
    Pair,
    /// Each consumer once its gateways are planned ([`ConsumerCx`]): its usage plan and keys.
    Consumer,
}

/// A planned gateway's stage, as its consumers' usage plans name it.
pub(crate) struct GatewayStage {
    api_id: Ref,
    stage: String,
    /// The stage is there already.
    exists: bool,
    /// The deployment this plan makes (which makes the stage when it is not there).
    deploy: Option<usize>,
}

/// One stage of a consumer's usage plan, as its kinds plan it.
pub(crate) struct ConsumerStage {
    pub(crate) gateway: String,
    pub(crate) api_id: Ref,
    pub(crate) stage: String,
    /// The stage exists, or this plan makes it (`action`): it can join the usage plan.
    pub(crate) ready: bool,
    pub(crate) action: Option<usize>,
    /// The consumer's per-method throttles on it, keyed `/<resource path>/<METHOD>`.
    pub(crate) throttle: BTreeMap<String, crosslink_desired::Throttle>,
}

/// A consumer as its kinds plan it, in its gateways' account.
pub(crate) struct ConsumerCx<'a> {
    pub(crate) consumer: &'a Consumer,
    pub(crate) subject: Subject,
    pub(crate) owner: String,
    pub(crate) account: String,
    pub(crate) state: &'a AccountState,
    pub(crate) want_tags: Tags,
    /// The stages of its gateways that were planned.
    pub(crate) stages: Vec<ConsumerStage>,
    /// Every gateway of the consumer was planned: a live stage none of them names can go.
    pub(crate) all_stages_known: bool,
    pub(crate) out: Outs<'a>,
}

/// What a kind hands on when that is one resource: its id (pending while this plan makes it, or
/// while AWS does) and the action making it, which what uses it waits for.
pub(crate) struct Made {
    pub(crate) id: Ref,
    pub(crate) action: Option<usize>,
}

impl Default for Made {
    /// Before the kind's `plan` ran (a subject stopped earlier never reads it).
    fn default() -> Self {
        Made { id: Ref::Pending("not planned".into()), action: None }
    }
}

/// A gateway as its kinds plan it, and what they planned (for the kinds after them, its links
/// and its API).
pub(crate) struct GatewayCx<'a> {
    pub(crate) gw: &'a Gateway,
    pub(crate) subject: Subject,
    /// Its owner tag.
    pub(crate) owner: String,
    pub(crate) account: String,
    pub(crate) state: &'a AccountState,
    /// The tags its resources carry.
    pub(crate) want_tags: Tags,
    pub(crate) out: Outs<'a>,
}

/// A link as its kinds plan it, on its gateway.
pub(crate) struct LinkCx<'a, 'g> {
    pub(crate) gw: &'g GatewayCx<'a>,
    pub(crate) link: &'a Link,
    pub(crate) subject: Subject,
    pub(crate) owner: String,
    pub(crate) want_tags: Tags,
    pub(crate) out: Outs<'a>,
}

/// A desired method of a resource.
pub(crate) struct WantedMethod {
    pub(crate) method: String,
    pub(crate) uri: String,
    /// The resource is the route's `{proxy+}`.
    pub(crate) greedy: bool,
    pub(crate) link: String,
    pub(crate) protection: Protection,
    pub(crate) backend: Backend,
}

/// A gateway's API as its kinds plan it: what its links want of it.
pub(crate) struct ApiCx<'a, 'g> {
    pub(crate) gw: &'g GatewayCx<'a>,
    pub(crate) entries: &'g [ApiEntry],
    /// The gateway's subject: the API's own changes are reported there, methods under their link.
    pub(crate) subject: Subject,
    /// The load balancer's DNS name as URIs carry it while this plan creates the load balancer:
    /// (placeholder, the creating action, which output), filled in by the engine within the pass.
    pub(crate) dns_fill: Option<(String, usize, Output)>,
    /// The API's observed resources, and by path.
    pub(crate) live: &'a [ApiResource],
    pub(crate) by_path: BTreeMap<&'a str, &'a ApiResource>,
    /// Desired resources (each route, its `{proxy+}`, their parents) and their methods:
    /// (HTTP method, integration URI, greedy, link).
    pub(crate) want: BTreeMap<String, Vec<WantedMethod>>,
    /// Paths of blocked links (and their parents): kept as they are, neither changed nor pruned.
    pub(crate) frozen: BTreeSet<String>,
    /// Ports of retained listeners whose link left desired state: their methods stay.
    pub(crate) retained_ports: BTreeSet<u16>,
    /// Every action planned for the API so far: the deployment follows them.
    pub(crate) changes: Vec<usize>,
    pub(crate) out: Outs<'a>,
}

/// A (gateway VPC, service VPC) pair and what its links need of it, in desired order.
pub(crate) struct Pair<'l> {
    pub(crate) gw: &'l Gateway,
    pub(crate) svc_account: String,
    pub(crate) svc_vpc: String,
    /// The service route tables of all its links.
    pub(crate) svc_rtbs: BTreeSet<String>,
    pub(crate) links: Vec<&'l Link>,
    /// Some link of it has deletionPolicy Retain.
    pub(crate) retain: bool,
}

/// A pair as its kinds plan it, both sides observed and checked.
pub(crate) struct PairCx<'a, 'p> {
    pub(crate) pair: &'p Pair<'a>,
    pub(crate) subject: Subject,
    pub(crate) owner: String,
    pub(crate) gs: &'a AccountState,
    pub(crate) ss: &'a AccountState,
    pub(crate) gvpc: &'a Vpc,
    pub(crate) svpc: &'a Vpc,
    pub(crate) out: Outs<'a>,
}

/// One link's contribution to its gateway's REST API.
pub(crate) struct ApiEntry {
    pub(crate) link: String,
    port: u16,
    /// TLS to the backend.
    tls: Option<BackendTls>,
    /// Each route: its path, methods, protection, and what it asks of its integration.
    pub(crate) paths: Vec<(String, Vec<String>, Protection, Backend)>,
    /// The link is blocked: its API resources are kept as they are, neither changed nor pruned.
    frozen: bool,
    /// A listener made for the link in this plan (a port move): its integrations wait for it.
    pub(crate) listener: Option<usize>,
    /// Listeners the link leaves (a port move): removed after the deployment.
    after_deploy: Vec<usize>,
}

fn policy_str(p: DeletionPolicy) -> &'static str {
    match p {
        DeletionPolicy::Delete => "Delete",
        DeletionPolicy::Retain => "Retain",
    }
}

pub(crate) fn is_retained(t: &Tags) -> bool {
    t.get(DELETION_POLICY).is_some_and(|v| v == "Retain")
}

impl<'a> Planner<'a> {
    pub(crate) fn report(&mut self, s: &Subject) -> &mut Report {
        self.plan.reports.entry(s.clone()).or_default()
    }

    pub(crate) fn problem(&mut self, s: &Subject, code: &str, message: impl Into<String>, hint: Option<String>) {
        self.report(s).problems.push(Problem { code: code.into(), message: message.into(), hint });
    }

    pub(crate) fn blocked(&self, s: &Subject) -> bool {
        self.plan.reports.get(s).is_some_and(|r| !r.problems.is_empty())
    }

    pub(crate) fn add(
        &mut self,
        subject: &Subject,
        account: &str,
        resource: impl Into<String>,
        verb: Verb,
        reason: Reason,
        op: Op,
        deps: Vec<Option<usize>>,
    ) -> usize {
        let id = self.plan.actions.len();
        let mut deps: Vec<usize> = deps.into_iter().flatten().collect();
        deps.sort_unstable();
        deps.dedup();
        self.plan.actions.push(Arc::new(Action {
            id,
            subject: subject.clone(),
            account: account.to_string(),
            resource: resource.into(),
            verb,
            reason,
            op,
            deps,
        }));
        id
    }

    /// Makes an action planned earlier wait for another (a delete for the changes of what uses
    /// the resource it deletes, planned by a kind after its own).
    pub(crate) fn wait_for(&mut self, action: usize, dep: usize) {
        let a = Arc::make_mut(&mut self.plan.actions[action]);
        if let Err(at) = a.deps.binary_search(&dep) {
            a.deps.insert(at, dep);
        }
    }

    pub(crate) fn state(&self, account: &str) -> Result<&'a AccountState, Problem> {
        match self.o.accounts.get(account) {
            Some(AccountObservation::Ok(s)) => Ok(s),
            Some(AccountObservation::Failed { code, message, .. }) => Err(Problem {
                code: "AccountUnavailable".into(),
                message: format!("account {account} is unavailable: {code}: {message}"),
                hint: Some(unavailable_hint(code).into()),
            }),
            None => Err(Problem {
                code: "AccountUnavailable".into(),
                message: format!("account {account} was not observed"),
                hint: None,
            }),
        }
    }

    pub(crate) fn owned(&self, t: &Tags) -> bool {
        tags::is_managed(t, &self.s.instance)
    }

    /// The index of an observed account (`state` is one of `self.o`'s).
    fn elb_of(&self, state: &AccountState) -> Option<&ElbIndex<'a>> {
        let ix = self.elb.get(&std::ptr::from_ref(state));
        debug_assert!(ix.is_some(), "account {} is not one of the observation's", state.account_id);
        ix
    }

    /// crosslink's target groups in an account whose owner tag is `owner`, in observed order.
    pub(crate) fn owned_target_groups(&self, state: &AccountState, owner: &str) -> Vec<&'a TargetGroup> {
        self.elb_of(state).and_then(|ix| ix.target_groups_by_owner.get(owner)).cloned().unwrap_or_default()
    }

    /// crosslink's listeners in an account whose owner tag is `owner`, in observed order.
    pub(crate) fn owned_listeners(&self, state: &AccountState, owner: &str) -> Vec<&'a Listener> {
        self.elb_of(state).and_then(|ix| ix.listeners_by_owner.get(owner)).cloned().unwrap_or_default()
    }

    /// Every listener of a load balancer in an account, in observed order.
    pub(crate) fn listeners_on(&self, state: &AccountState, lb_arn: Option<&str>) -> Vec<&'a Listener> {
        let Some(lb_arn) = lb_arn else { return Vec::new() };
        self.elb_of(state).and_then(|ix| ix.listeners_by_lb.get(lb_arn)).cloned().unwrap_or_default()
    }

    pub(crate) fn owned_by(&self, t: &Tags, owner: &str) -> bool {
        self.owned(t) && tags::owner(t) == Some(owner)
    }

    fn tags(&self, owner: &str, policy: DeletionPolicy, user: &BTreeMap<String, String>) -> Tags {
        let mut t = user.clone();
        t.insert(MANAGED_BY.into(), self.s.instance.clone());
        t.insert(OWNER.into(), owner.into());
        t.insert(DELETION_POLICY.into(), policy_str(policy).into());
        t
    }

    // ---- the gateway stage: its account, VPC, then its kinds (NLB, VPC link, REST API) -----------

    fn gateway(&mut self, gw: &'a Gateway) -> Option<GatewayCx<'a>> {
        let subject = Subject::Gateway(gw.metadata.name.clone());
        let owner = tags::gateway_owner(&gw.metadata.name);
        let account = gw.spec.account.clone();
        let state = match self.state(&account) {
            Ok(s) => s,
            Err(p) => {
                self.report(&subject).problems.push(p);
                return None;
            }
        };
        if !state.vpcs.contains_key(&gw.spec.vpc_id) {
            self.problem(
                &subject,
                "NotFound",
                format!("VPC {} not found in account {account}", gw.spec.vpc_id),
                Some("check spec.vpcId and the Account's region".into()),
            );
            return None;
        }
        let want_tags = self.tags(&owner, gw.spec.deletion_policy, &gw.spec.tags);
        let mut cx = GatewayCx { gw, subject, owner, account, state, want_tags, out: Outs::default() };
        kinds::plan_gateway(self, &mut cx)?;
        Some(cx)
    }

    /// Adds missing or changed crosslink tags (deletion policy, user tags) on a resource of a
    /// kind that carries tags (`kinds::tag_op`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn tag_drift(
        &mut self,
        kind: ResourceKind,
        subject: &Subject,
        account: &str,
        resource: &str,
        id: &str,
        live: &Tags,
        want: &Tags,
        dep: Option<usize>,
    ) -> Option<usize> {
        let diff: Tags =
            want.iter().filter(|(k, v)| live.get(*k) != Some(v)).map(|(k, v)| (k.clone(), v.clone())).collect();
        let (k, v) = diff.iter().next()?;
        let reason = Reason::Drift {
            field: format!("tag {k}"),
            live: live.get(k).cloned().unwrap_or_else(|| "(none)".into()),
            desired: v.clone(),
        };
        let op = kinds::tag_op(kind, id, diff)?;
        Some(self.add(subject, account, resource.to_string(), Verb::Update, reason, op, vec![dep]))
    }

    /// A resource of another crosslink instance is never adopted: says so (naming the instance)
    /// when `tags` are another instance's, and returns whether they are.
    pub(crate) fn refuse_other_instance(&mut self, subject: &Subject, tags: &Tags, what: &str) -> bool {
        let Some(instance) = tags.get(MANAGED_BY).filter(|i| **i != self.s.instance).cloned() else { return false };
        self.problem(
            subject,
            "OwnedByAnotherInstance",
            format!("{what} belongs to crosslink instance `{instance}`"),
            Some(format!(
                "it is never adopted while it carries that instance's tag: release it from `{instance}` first (crosslink release --instance {instance})"
            )),
        );
        true
    }

    /// Takes over a resource built without crosslink (`adoption: Adopt`): tags it as `want`
    /// says, with `crosslink.dev/adopted`, under the verb `adopt` and the rule that matched it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn adopt(
        &mut self,
        kind: ResourceKind,
        subject: &Subject,
        account: &str,
        resource: String,
        id: &str,
        live: &Tags,
        want: &Tags,
        rule: String,
    ) -> Option<usize> {
        let mut tags = want.clone();
        tags.insert(tags::ADOPTED.into(), "true".into());
        let diff: Tags = tags.into_iter().filter(|(k, v)| live.get(k) != Some(v)).collect();
        let op = kinds::tag_op(kind, id, diff)?;
        self.claimed.insert(id.to_string());
        Some(self.add(subject, account, resource, Verb::Adopt, Reason::Adopted { rule }, op, vec![]))
    }

    // ---- the link stage: its service account, then its kinds (target group, targets, listener) --

    fn link(&mut self, gw: &GatewayCx<'a>, l: &'a Link) -> ApiEntry {
        let name = &l.metadata.name;
        let subject = Subject::Link(name.clone());
        let owner = tags::link_owner(name);
        let frozen_here = self.frozen.contains(name);
        let entry = |frozen: bool| ApiEntry {
            link: name.clone(),
            port: l.spec.listener_port,
            tls: l.spec.tls.clone(),
            paths: l
                .spec
                .routes
                .iter()
                .map(|r| {
                    let protection = Protection::of_route(&gw.gw.spec.api, r);
                    let backend = Backend {
                        insecure_skip_verification: l.spec.tls.as_ref().is_some_and(|t| t.insecure_skip_verification),
                        timeout_millis: r.timeout_millis,
                    };
                    (r.path.clone(), r.methods.iter().map(|m| m.as_str().to_string()).collect(), protection, backend)
                })
                .collect(),
            frozen: frozen || frozen_here,
            listener: None,
            after_deploy: Vec::new(),
        };
        if let Err(p) = self.state(&l.spec.service.account) {
            self.report(&subject).problems.push(p);
            // Claim what exists so that nothing of a link in trouble is pruned.
            self.claim_link(gw.state, &owner);
            return entry(true);
        }
        let want_tags = self.tags(&owner, l.spec.deletion_policy, &l.spec.tags);
        let mut cx = LinkCx { gw, link: l, subject, owner, want_tags, out: Outs::default() };
        if kinds::plan_link(self, &mut cx).is_none() {
            self.claim_link(gw.state, &cx.owner);
            return entry(true);
        }
        let mut e = entry(self.blocked(&cx.subject));
        e.listener = cx.out.listener.made;
        e.after_deploy = std::mem::take(&mut cx.out.listener.after_deploy);
        e
    }

    /// Marks a link's owned resources as accounted for, so that a link in trouble loses nothing.
    fn claim_link(&mut self, state: &AccountState, owner: &str) {
        let ids: Vec<String> = self
            .owned_target_groups(state, owner)
            .into_iter()
            .map(|t| t.arn.clone())
            .chain(self.owned_listeners(state, owner).into_iter().map(|x| x.arn.clone()))
            .collect();
        self.claimed.extend(ids);
    }

    // ---- the API stage: what the links want of the API, then its kinds (resources, methods, -----
    // ---- deployment) ------------------------------------------------------------------------------

    /// Plans the API of a gateway; returns its deployment, if one is planned.
    fn api(&mut self, gw: &GatewayCx<'a>, entries: &[ApiEntry]) -> Option<usize> {
        let lb = &gw.out.load_balancer;
        let dns = lb.dns.clone().unwrap_or_else(|| format!("(dns of {})", lb.arn));
        // A load balancer this plan creates: its DNS name, written into URIs, comes with its
        // answer (the engine fills it in within the pass).
        let dns_fill: Option<(String, usize, Output)> = match (&lb.dns, lb.arn.made_by()) {
            (None, Some((by, _))) => Some((dns.clone(), by, Output::DnsName)),
            _ => None,
        };
        let live: &'a [ApiResource] = gw.out.rest_api.api.map(|a| a.resources.as_slice()).unwrap_or(&[]);
        let by_path: BTreeMap<&'a str, &'a ApiResource> = live.iter().map(|r| (r.path.as_str(), r)).collect();

        // Desired resources: each route, its {proxy+}, and their parents; methods per resource.
        let mut want: BTreeMap<String, Vec<WantedMethod>> = BTreeMap::new();
        let mut frozen: BTreeSet<String> = BTreeSet::new();
        for e in entries.iter().filter(|e| e.frozen) {
            for (path, ..) in &e.paths {
                frozen.insert(path.clone());
                frozen.insert(format!("{path}/{{proxy+}}"));
                // Its parents too: deleting one would take the link's resources with it
                // (DeleteResource cascades), even when a read did not show them.
                let mut cur = parent_path(path);
                while let Some(pp) = cur.filter(|p| *p != "/") {
                    frozen.insert(pp.to_string());
                    cur = parent_path(pp);
                }
            }
        }
        for e in entries.iter().filter(|e| !e.frozen) {
            let base = integration_base(&dns, e.port, e.tls.as_ref());
            for (path, methods, protection, backend) in &e.paths {
                let proxy = format!("{path}/{{proxy+}}");
                for (p, greedy) in [(path.clone(), false), (proxy, true)] {
                    let uri = uri_at(&base, path, greedy);
                    let ms = want.entry(p).or_default();
                    for m in methods {
                        ms.push(WantedMethod {
                            method: m.clone(),
                            uri: uri.clone(),
                            greedy,
                            link: e.link.clone(),
                            protection: protection.clone(),
                            backend: backend.clone(),
                        });
                    }
                }
                let mut cur = parent_path(path);
                while let Some(pp) = cur {
                    if pp != "/" {
                        want.entry(pp.to_string()).or_default();
                    }
                    cur = parent_path(pp);
                }
            }
        }

        // Ports of listeners crosslink keeps or does not own: retained ones whose link left
        // desired state, and those it never made or released (`crosslink release`). Their API
        // methods stay.
        let retained_ports: BTreeSet<u16> = gw
            .state
            .listeners
            .iter()
            .filter(|x| lb.arn.known() == Some(x.load_balancer_arn.as_str()))
            .filter(|x| {
                !self.owned(&x.tags)
                    || (is_retained(&x.tags)
                        && matches!(tags::owner_subject(&x.tags), Some(Subject::Link(link)) if self.ix.link(&link).is_none()))
            })
            .map(|x| x.port)
            .collect();

        let mut cx = ApiCx {
            gw,
            entries,
            subject: gw.subject.clone(),
            dns_fill,
            live,
            by_path,
            want,
            frozen,
            retained_ports,
            changes: gw.out.rest_api.action.into_iter().collect(),
            out: Outs::default(),
        };
        kinds::plan_api(self, &mut cx);
        cx.out.stage
    }

    // ---- the consumer stage: each consumer's account and stages, then its kinds -----------------
    // ---- (usage plan, API keys) -------------------------------------------------------------------

    fn consumer(&mut self, c: &'a Consumer, stages: &BTreeMap<String, GatewayStage>) {
        let subject = Subject::Consumer(c.metadata.name.clone());
        let owner = tags::consumer_owner(&c.metadata.name);
        let Some(account) = c.spec.gateways.iter().find_map(|g| self.ix.gateway(g)).map(|g| g.spec.account.clone())
        else {
            return;
        };
        let state = match self.state(&account) {
            Ok(s) => s,
            Err(p) => {
                self.report(&subject).problems.push(p);
                return;
            }
        };
        let mut want = Vec::new();
        let mut all_stages_known = true;
        for g in &c.spec.gateways {
            let Some(gs) = stages.get(g) else {
                all_stages_known = false;
                self.report(&subject).waiting.push(format!("Gateway/{g} to be planned (see its problems)"));
                continue;
            };
            if let Some(gw) = self.ix.gateway(g) {
                let default = gw.spec.api.api_key_required.unwrap_or(false);
                let keyed = self
                    .ix
                    .links_of(g)
                    .iter()
                    .flat_map(|l| &l.spec.routes)
                    .any(|r| r.api_key_required.unwrap_or(default));
                if !keyed {
                    self.report(&subject).warnings.push(format!(
                        "no route of Gateway/{g} requires an API key, so the usage plan limits nothing there: set `apiKeyRequired: true` on the gateway's api or on routes"
                    ));
                }
            }
            let ready = gs.exists || gs.deploy.is_some();
            if !ready {
                self.report(&subject)
                    .waiting
                    .push(format!("stage {} of Gateway/{g} to be deployed (it has no routes yet)", gs.stage));
            }
            let mut throttle = BTreeMap::new();
            for r in c.spec.routes.iter().filter(|r| r.gateway.as_deref().unwrap_or(g) == g) {
                for l in self.ix.links_of(g) {
                    for route in l.spec.routes.iter().filter(|x| x.path == r.path) {
                        for path in [route.path.clone(), format!("{}/{{proxy+}}", route.path)] {
                            for m in &route.methods {
                                throttle.insert(format!("{path}/{}", m.as_str()), r.throttling);
                            }
                        }
                    }
                }
            }
            want.push(ConsumerStage {
                gateway: g.clone(),
                api_id: gs.api_id.clone(),
                stage: gs.stage.clone(),
                ready,
                action: if gs.exists { None } else { gs.deploy },
                throttle,
            });
        }
        let want_tags = self.tags(&owner, c.spec.deletion_policy, &c.spec.tags);
        let mut cx = ConsumerCx {
            consumer: c,
            subject,
            owner,
            account,
            state,
            want_tags,
            stages: want,
            all_stages_known,
            out: Outs::default(),
        };
        kinds::plan_consumer(self, &mut cx);
    }

    // ---- the pair stage: the (gateway VPC, service VPC) pairs, each checked, then its kinds -----
    // ---- (peering, routes) ----------------------------------------------------------------------

    fn peerings(&mut self) {
        let mut pairs: Vec<Pair> = Vec::new();
        // (gateway VPC, service VPC) -> its index in `pairs`.
        let mut pair_at: HashMap<(&str, &str), usize> = HashMap::new();
        for l in self.d.links.iter().filter(|l| l.spec.transport.routes()) {
            let Some(gw) = self.ix.gateway(&l.spec.gateway) else { continue };
            let at = *pair_at.entry((gw.spec.vpc_id.as_str(), l.spec.service.vpc_id.as_str())).or_insert(pairs.len());
            match pairs.get_mut(at) {
                Some(p) => {
                    p.svc_rtbs.extend(l.spec.service.route_table_ids.iter().cloned());
                    p.links.push(l);
                    p.retain |= l.spec.deletion_policy == DeletionPolicy::Retain;
                }
                None => pairs.push(Pair {
                    gw,
                    svc_account: l.spec.service.account.clone(),
                    svc_vpc: l.spec.service.vpc_id.clone(),
                    svc_rtbs: l.spec.service.route_table_ids.iter().cloned().collect(),
                    links: vec![l],
                    retain: l.spec.deletion_policy == DeletionPolicy::Retain,
                }),
            }
        }
        // What each pair routes, (route table, destination), where both sides are observed.
        let wants: Vec<Option<Vec<(String, Ipv4Net)>>> = pairs
            .iter()
            .map(|pair| {
                let gs = self.state(&pair.gw.spec.account).ok()?;
                let ss = self.state(&pair.svc_account).ok()?;
                let (gvpc, svpc) = (gs.vpcs.get(&pair.gw.spec.vpc_id)?, ss.vpcs.get(&pair.svc_vpc)?);
                let there =
                    pair.gw.spec.route_table_ids.iter().flat_map(|t| svpc.cidrs.iter().map(|c| (t.clone(), *c)));
                let back = pair.svc_rtbs.iter().flat_map(|t| gvpc.cidrs.iter().map(|c| (t.clone(), *c)));
                Some(there.chain(back).collect())
            })
            .collect();
        // Route table -> the routes the pairs want in it, (pair, CIDR), in pair order: a clash is
        // looked for among the pairs routing from the same table, not among all pairs before.
        let mut wanted_in: HashMap<&str, Vec<(usize, Ipv4Net)>> = HashMap::new();
        for (j, w) in wants.iter().enumerate() {
            for (t, c) in w.iter().flatten() {
                wanted_in.entry(t.as_str()).or_default().push((j, *c));
            }
        }
        for (i, pair) in pairs.iter().enumerate() {
            let gw = pair.gw;
            let subject = Subject::Peering(gw.spec.vpc_id.clone(), pair.svc_vpc.clone());
            let owner = tags::peering_owner(&gw.spec.vpc_id, &pair.svc_vpc);
            let gw_account = gw.spec.account.clone();
            let (gs, ss) = match (self.state(&gw_account), self.state(&pair.svc_account)) {
                (Ok(g), Ok(s)) => (g, s),
                (g, s) => {
                    for p in [g.err(), s.err()].into_iter().flatten() {
                        self.report(&subject).problems.push(p);
                    }
                    self.claim_peerings(&owner);
                    continue;
                }
            };
            let (Some(gvpc), Some(svpc)) = (gs.vpcs.get(&gw.spec.vpc_id), ss.vpcs.get(&pair.svc_vpc)) else {
                let missing = if gs.vpcs.contains_key(&gw.spec.vpc_id) {
                    format!("service VPC {} not found in account {}", pair.svc_vpc, pair.svc_account)
                } else {
                    format!("gateway VPC {} not found in account {gw_account}", gw.spec.vpc_id)
                };
                self.problem(&subject, "NotFound", missing, Some("check the vpcId and the Account's region".into()));
                self.claim_peerings(&owner);
                continue;
            };
            if let Some((a, b)) =
                gvpc.cidrs.iter().flat_map(|a| svpc.cidrs.iter().map(move |b| (a, b))).find(|(a, b)| overlaps(**a, **b))
            {
                self.problem(
                    &subject,
                    "CidrOverlap",
                    format!("refusing to peer: {} ({a}) overlaps {} ({b})", gw.spec.vpc_id, pair.svc_vpc),
                    Some("VPC peering cannot route between overlapping CIDRs; link a VPC with a distinct range".into()),
                );
                self.claim_peerings(&owner);
                continue;
            }
            // A route table holds one route per destination: a pair whose routes overlap those of
            // a pair before it in desired order (two service VPCs with one range behind one
            // gateway) cannot be routed; it waits, and the earlier one keeps its routes.
            let clash = wants[i].iter().flatten().find_map(|(t, c)| {
                let earlier = wanted_in.get(t.as_str())?.iter().take_while(|(j, _)| *j < i);
                let (j, theirs) = earlier.into_iter().find(|(_, oc)| overlaps(*c, *oc))?;
                Some((t, *c, &pairs[*j], *theirs))
            });
            if let Some((rtb, mine, other, theirs)) = clash {
                let other_vpc =
                    if other.gw.spec.vpc_id == gw.spec.vpc_id { &other.svc_vpc } else { &other.gw.spec.vpc_id };
                let vpc = if other.gw.spec.vpc_id == gw.spec.vpc_id { &pair.svc_vpc } else { &gw.spec.vpc_id };
                self.problem(
                    &subject,
                    "PeerCidrOverlap",
                    format!(
                        "refusing to route: {vpc} ({mine}) overlaps {other_vpc} ({theirs}) of Link/{}, and {rtb} would route to both",
                        other.links[0].metadata.name
                    ),
                    Some("a route table holds one route per destination, so overlapping VPCs cannot share a gateway's route tables over peering: link one of them through another gateway or route table (the PrivateLink transport, once it exists, needs no routes)".into()),
                );
                self.claim_peerings(&owner);
                continue;
            }
            for (vpc, declared, live) in [
                (&gw.spec.vpc_id, gw.spec.cidr, &gvpc.cidrs),
                (&pair.svc_vpc, pair.links[0].spec.service.cidr, &svpc.cidrs),
            ] {
                if let Some(c) = declared
                    && !live.contains(&c)
                {
                    self.report(&subject).warnings.push(format!(
                        "{vpc} is {} live, desired state says {c}: fix the cidr field",
                        live.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                    ));
                }
            }
            let mut cx = PairCx { pair, subject, owner, gs, ss, gvpc, svpc, out: Outs::default() };
            kinds::plan_pair(self, &mut cx);
        }
        kinds::route::undesired(self, &pairs);
    }

    /// Whether a route's peering holds it for another pair that is desired, or kept by Retain
    /// for a removed one: (who holds it, what to do).
    pub(crate) fn held_for_other(&self, peering_id: &str, mine: &str) -> Option<(String, String)> {
        let p = *self.peerings_by_id.get(peering_id)?;
        if !self.owned(&p.tags) {
            return None;
        }
        let owner = tags::owner(&p.tags)?;
        if owner == mine {
            return None;
        }
        let Some(Subject::Peering(gvpc, svpc)) = Subject::from_owner_tag(owner) else { return None };
        if self.owner_desired(owner) {
            let links: Vec<String> =
                self.ix.links_of_pair(&gvpc, &svpc).iter().map(|l| format!("Link/{}", l.metadata.name)).collect();
            return Some((
                format!("{peering_id}, the peering {gvpc} <-> {svpc} of {}, which routes it too", links.join(", ")),
                "a route table holds one route per destination: remove one of the two links, or link one of them through another gateway or route table (the PrivateLink transport, once it exists, needs no routes)".into(),
            ));
        }
        if is_retained(&p.tags) && !p.status.is_dead() {
            return Some((
                format!("{peering_id} ({gvpc} <-> {svpc}), kept for links removed with deletionPolicy Retain"),
                format!(
                    "once nothing needs {peering_id} any more, delete it (or this route) by hand; or link this VPC through another gateway or route table"
                ),
            ));
        }
        None
    }

    /// Links removed with deletionPolicy Retain whose kept target groups (in the gateway VPC)
    /// still send traffic into `cidrs`, through the peering to them.
    pub(crate) fn retained_users(&self, gs: &AccountState, gw_vpc: &str, cidrs: &[Ipv4Net]) -> Vec<String> {
        let mut users: Vec<String> = gs
            .target_groups
            .iter()
            .filter(|t| t.vpc_id == gw_vpc && self.owned(&t.tags) && is_retained(&t.tags))
            .filter(|t| t.targets.iter().any(|x| cidrs.iter().any(|c| c.contains(&x.ip))))
            .filter(|t| matches!(tags::owner_subject(&t.tags), Some(Subject::Link(_))))
            .filter_map(|t| tags::owner(&t.tags))
            .filter(|o| !self.owner_desired(o))
            .map(str::to_string)
            .collect();
        users.sort();
        users.dedup();
        users
    }

    fn claim_peerings(&mut self, owner: &str) {
        let ids: Vec<String> = self
            .o
            .accounts
            .values()
            .filter_map(|a| match a {
                AccountObservation::Ok(s) => Some(s),
                _ => None,
            })
            .flat_map(|s| s.peerings.iter())
            .filter(|p| self.owned_by(&p.tags, owner))
            .map(|p| p.id.clone())
            .collect();
        self.claimed.extend(ids);
    }

    // ---- what crosslink owns and desired state no longer asks for ------------------------------

    fn orphans(&mut self) {
        let accounts: Vec<(&String, &AccountState)> = self
            .o
            .accounts
            .iter()
            .filter_map(|(n, a)| match a {
                AccountObservation::Ok(s) => Some((n, s.as_ref())),
                _ => None,
            })
            .collect();
        for (account, st) in accounts {
            self.orphans_in(account, st);
        }
    }

    /// Whether the owner named by a tag is still in desired state.
    /// The desired links between two VPCs whose transport is not peering but whose gateway
    /// target group still holds peered targets (the links switching away from peering).
    pub(crate) fn still_peered(&self, gs: &AccountState, gw_vpc: &str, svc_vpc: &str) -> Vec<String> {
        let gw_cidrs = gs.vpcs.get(gw_vpc).map(|v| v.cidrs.as_slice()).unwrap_or_default();
        self.d
            .links
            .iter()
            .filter(|l| !l.spec.transport.routes() && l.spec.service.vpc_id == svc_vpc)
            .filter(|l| self.ix.gateway(&l.spec.gateway).is_some_and(|g| g.spec.vpc_id == gw_vpc))
            .filter(|l| {
                self.owned_target_groups(gs, &tags::link_owner(&l.metadata.name)).iter().any(|tg| {
                    tg.targets.iter().any(|t| t.health != "draining" && crate::kinds::targets::via_peering(t, gw_cidrs))
                })
            })
            .map(|l| format!("Link/{}", l.metadata.name))
            .collect()
    }

    pub(crate) fn owner_desired(&self, owner: &str) -> bool {
        match Subject::from_owner_tag(owner) {
            Some(Subject::Link(l)) => self.ix.link(&l).is_some(),
            Some(Subject::Gateway(g)) => self.ix.gateway(&g).is_some(),
            Some(Subject::Peering(a, b)) => !self.ix.links_of_pair(&a, &b).is_empty(),
            Some(Subject::Consumer(c)) => self.d.consumer(&c).is_some(),
            None => false,
        }
    }

    fn orphan_subject(owner: &str) -> Subject {
        Subject::from_owner_tag(owner).unwrap_or_else(|| {
            // Not a tag crosslink writes: report it under a peering-like subject named after it.
            let pair = owner.strip_prefix("Peering/").unwrap_or(owner);
            let (a, b) = pair.split_once('/').unwrap_or((pair, ""));
            Subject::Peering(a.to_string(), b.to_string())
        })
    }

    /// An owned, unclaimed resource whose owner left desired state: delete it or, if its tags say
    /// Retain, report it kept. Returns whether it is to be deleted.
    fn orphan(&mut self, t: &Tags, id: &str, what: &str) -> Option<Subject> {
        if !self.owned(t) || self.claimed.contains(id) {
            return None;
        }
        let owner = tags::owner(t)?.to_string();
        if self.owner_desired(&owner) {
            return None;
        }
        let subject = Self::orphan_subject(&owner);
        if is_retained(t) {
            self.report(&subject).retained.push(format!("{what} (deletionPolicy Retain)"));
            return None;
        }
        Some(subject)
    }

    /// A link's resource left behind in an account that is no longer its gateway's (the link
    /// moved to a gateway in another account): replaced, not pruned.
    fn moved(&mut self, t: &Tags, id: &str, account: &str) -> Option<Subject> {
        if !self.owned(t) || self.claimed.contains(id) || tags::is_transport(t) {
            return None;
        }
        let Some(Subject::Link(link)) = tags::owner_subject(t) else { return None };
        let l = self.ix.link(&link)?;
        let gw = self.ix.gateway(&l.spec.gateway)?;
        let subject = Subject::Link(link);
        (gw.spec.account != account && !self.blocked(&subject)).then_some(subject)
    }

    /// The generic clean-up of one account: each kind's resources there (`kinds::prunable`),
    /// kinds in reverse dependency order, so that a resource's delete is planned after the
    /// deletes of what uses it and waits for them. A resource is deleted when crosslink owns it
    /// (this instance's tag), nothing desired claims it and its owner left desired state (or,
    /// for a link's resource, the link's gateway is in another account now), unless its tags
    /// say Retain (reported as kept) or its kind keeps it (`kinds::before_delete`).
    fn orphans_in(&mut self, account: &str, st: &'a AccountState) {
        // The deletes of what uses a resource, by the resource's id: its delete waits for them.
        let mut users: HashMap<String, Vec<Option<usize>>> = HashMap::new();
        let moved_reason = || Reason::Replaced { why: "the link's gateway is in another account now".into() };
        for kind in ResourceKind::ALL.into_iter().rev() {
            for c in kinds::prunable(kind, st) {
                let found = match self.orphan(c.tags, &c.id, &c.what) {
                    Some(s) => Some((s, Reason::NoLongerDesired)),
                    None if c.follows_link => self.moved(c.tags, &c.id, account).map(|s| (s, moved_reason())),
                    None => None,
                };
                let Some((subject, reason)) = found else { continue };
                if c.deleting {
                    continue;
                }
                let Some(first) = kinds::before_delete(kind, self, &subject, account, st, &c) else { continue };
                let mut deps = users.remove(&c.id).unwrap_or_default();
                deps.extend(first);
                let a = self.add(&subject, account, c.what, Verb::Delete, reason, c.delete, deps);
                for used in c.uses {
                    users.entry(used).or_default().push(Some(a));
                }
            }
        }
    }
}

/// `kinds::prunable` of a kind whose resources are removed with their parent's, or by the
/// planning of their parent.
pub(crate) fn nothing_to_prune(_: &AccountState) -> Vec<Prunable<'_>> {
    Vec::new()
}

/// `kinds::before_delete` of a kind whose orphans are deleted as they are.
pub(crate) fn nothing_first<'a>(
    _: &mut Planner<'a>,
    _: &Subject,
    _: &str,
    _: &'a AccountState,
    _: &Prunable<'a>,
) -> Option<Vec<Option<usize>>> {
    Some(Vec::new())
}

/// `kinds::tag_op` of a kind whose tags crosslink does not repair.
pub(crate) fn untagged(_: &str, _: Tags) -> Option<Op> {
    None
}

/// `kinds::untag_op` of a kind crosslink cannot release (it carries no tags, or crosslink does
/// not remove them): its resources are reported, never untagged.
pub(crate) fn not_releasable(_: &str, _: Vec<String>) -> Option<Op> {
    None
}

/// One of a kind's resources in an account, as the generic clean-up (`Planner::orphans_in`)
/// sees it.
pub(crate) struct Prunable<'a> {
    pub(crate) tags: &'a Tags,
    /// Its id or ARN: what desired state claims, and what others' `uses` name.
    pub(crate) id: String,
    /// It, for people (`what` of the action and of a Retain report).
    pub(crate) what: String,
    /// The operation that deletes it.
    pub(crate) delete: Op,
    /// The ids of the resources it uses (refers to): they are deleted after it.
    pub(crate) uses: Vec<String>,
    /// A link's resource: left in an account that is no longer its gateway's, it is replaced.
    pub(crate) follows_link: bool,
    /// AWS is deleting it already: nothing to do.
    pub(crate) deleting: bool,
}

impl<'a> Prunable<'a> {
    /// A resource that uses nothing crosslink deletes after it, stays with its account and is
    /// not being deleted by AWS already: the common case.
    pub(crate) fn plain(tags: &'a Tags, id: impl Into<String>, what: String, delete: Op) -> Self {
        Prunable { tags, id: id.into(), what, delete, uses: Vec::new(), follows_link: false, deleting: false }
    }
}

/// What to check when an account cannot be read, by what went wrong: a connection that fails is
/// not a trust-policy problem.
fn unavailable_hint(code: &str) -> &'static str {
    match code {
        "DispatchFailure" | "Timeout" | "CredentialsTimeout" | "ResponseError" => {
            "the AWS endpoint could not be reached: check AWS_ENDPOINT_URL (or the profile's endpoint), DNS, proxies (HTTPS_PROXY) and the network path to it"
        }
        "RequestLimitExceeded" | "Throttling" | "ThrottlingException" | "TooManyRequestsException" => {
            "AWS is throttling: this passes; lower --concurrency or the rate limits if it persists"
        }
        c if c.starts_with("Internal") || c.contains("Unavailable") => "AWS failed on its side: this usually passes",
        "AccountMismatch" => {
            "the credentials act in another account: check the Account's accountId and assumeRole roleArn"
        }
        _ => "check the Account's assumeRole, the role's trust policy and external id",
    }
}

fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}
