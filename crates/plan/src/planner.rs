//! The diff: desired state + observed state -> plan. Gateways first (NLB, VPC Link, REST API),
//! then each link (target group, targets, listener), the API resources of each gateway and its
//! deployment, the peerings with their routes, and last what crosslink owns that is no longer
//! desired. Nothing unowned is ever changed; nothing is deleted without an explicit reason.

use crate::kinds::{
    self, ApiResourceOp, ListenerOp, LoadBalancerOp, MethodOp, PeeringOp, ResourceKind, RestApiOp, RouteOp, StageOp,
    TargetGroupOp, TargetsOp, VpcLinkOp,
};

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

use crosslink_desired::{ApiTarget, DeletionPolicy, DesiredState, Gateway, Index, Link, LoadBalancerRef};
use ipnet::Ipv4Net;

use crate::kinds::api_resource::{kept_subtrees, parent_path};
use crate::kinds::method::{integration_drift, integration_uri, uri_port};
use crate::kinds::stage::deployed_hash;
use crate::kinds::target_group::{hc_drift, health_check, target_group_name};
use crate::kinds::vpc_link::vpc_link_name;
use crate::model::*;
use crate::observed::*;
use crate::op::{Op, Output, Ref};
use crate::tags::{self, DELETION_POLICY, DEPLOYED_HASH, MANAGED_BY, OWNER};

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
    let mut gateways = Vec::new();
    for g in &desired.gateways {
        if let Some(cx) = p.gateway(g) {
            gateways.push(cx);
        }
    }
    for cx in &gateways {
        let mut entries = Vec::new();
        for l in p.ix.links_of(&cx.gw.metadata.name).to_vec() {
            if let Some(e) = p.link(cx, l) {
                entries.push(e);
            }
        }
        // Listeners a link leaves go once the API no longer points at them: after the deployment.
        if let Some(deploy) = p.api(cx, &entries) {
            for a in entries.iter().flat_map(|e| &e.after_deploy) {
                Arc::make_mut(&mut p.plan.actions[*a]).deps.push(deploy);
            }
        }
    }
    p.peerings();
    p.orphans();
    // A problem anywhere in a link's chain makes the link not ready: copy peering problems.
    let pairs: Vec<(String, Subject)> = desired
        .links
        .iter()
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
    d: &'a DesiredState,
    /// Lookups by name into `d`, built once (a search per link made planning quadratic).
    ix: Index<'a>,
    /// Every observed peering by id: the first account (in name order) that shows it.
    peerings_by_id: HashMap<&'a str, &'a Peering>,
    pub(crate) o: &'a Observed,
    s: &'a Settings,
    /// Links blocked by problems found after they were planned: their API entries are frozen.
    frozen: &'a BTreeSet<String>,
    pub(crate) plan: Plan,
    /// Owned resources (ids / ARNs) that desired state accounts for.
    claimed: HashSet<String>,
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
        let own = |t: &'a Tags| tags::is_managed(t, instance).then(|| tags::owner(t)).flatten();
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

/// What the links of a gateway need from it.
struct GatewayCx<'a> {
    gw: &'a Gateway,
    account: String,
    state: &'a AccountState,
    lb_arn: Ref,
    lb_dns: Option<String>,
    lb_action: Option<usize>,
    vpc_link: Ref,
    vpc_link_action: Option<usize>,
    api_id: Ref,
    api_action: Option<usize>,
    api: Option<&'a RestApi>,
    api_owned: bool,
}

/// One link's contribution to its gateway's REST API.
struct ApiEntry {
    link: String,
    port: u16,
    paths: Vec<(String, Vec<String>)>,
    /// The link is blocked: its API resources are kept as they are, neither changed nor pruned.
    frozen: bool,
    /// A listener made for the link in this plan (a port move): its integrations wait for it.
    listener: Option<usize>,
    /// Listeners the link leaves (a port move): removed after the deployment.
    after_deploy: Vec<usize>,
}

fn policy_str(p: DeletionPolicy) -> &'static str {
    match p {
        DeletionPolicy::Delete => "Delete",
        DeletionPolicy::Retain => "Retain",
    }
}

fn is_retained(t: &Tags) -> bool {
    t.get(DELETION_POLICY).is_some_and(|v| v == "Retain")
}

impl<'a> Planner<'a> {
    pub(crate) fn report(&mut self, s: &Subject) -> &mut Report {
        self.plan.reports.entry(s.clone()).or_default()
    }

    fn problem(&mut self, s: &Subject, code: &str, message: impl Into<String>, hint: Option<String>) {
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

    fn state(&self, account: &str) -> Result<&'a AccountState, Problem> {
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

    fn owned(&self, t: &Tags) -> bool {
        tags::is_managed(t, &self.s.instance)
    }

    /// The index of an observed account (`state` is one of `self.o`'s).
    fn elb_of(&self, state: &AccountState) -> Option<&ElbIndex<'a>> {
        let ix = self.elb.get(&std::ptr::from_ref(state));
        debug_assert!(ix.is_some(), "account {} is not one of the observation's", state.account_id);
        ix
    }

    /// crosslink's target groups in an account whose owner tag is `owner`, in observed order.
    fn owned_target_groups(&self, state: &AccountState, owner: &str) -> Vec<&'a TargetGroup> {
        self.elb_of(state).and_then(|ix| ix.target_groups_by_owner.get(owner)).cloned().unwrap_or_default()
    }

    /// crosslink's listeners in an account whose owner tag is `owner`, in observed order.
    fn owned_listeners(&self, state: &AccountState, owner: &str) -> Vec<&'a Listener> {
        self.elb_of(state).and_then(|ix| ix.listeners_by_owner.get(owner)).cloned().unwrap_or_default()
    }

    /// Every listener of a load balancer in an account, in observed order.
    fn listeners_on(&self, state: &AccountState, lb_arn: Option<&str>) -> Vec<&'a Listener> {
        let Some(lb_arn) = lb_arn else { return Vec::new() };
        self.elb_of(state).and_then(|ix| ix.listeners_by_lb.get(lb_arn)).cloned().unwrap_or_default()
    }

    fn owned_by(&self, t: &Tags, owner: &str) -> bool {
        self.owned(t) && tags::owner(t) == Some(owner)
    }

    fn tags(&self, owner: &str, policy: DeletionPolicy, user: &BTreeMap<String, String>) -> Tags {
        let mut t = user.clone();
        t.insert(MANAGED_BY.into(), self.s.instance.clone());
        t.insert(OWNER.into(), owner.into());
        t.insert(DELETION_POLICY.into(), policy_str(policy).into());
        t
    }

    // ---- gateway: NLB, VPC Link, REST API -------------------------------------------------

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
        let policy = gw.spec.deletion_policy;
        let want_tags = self.tags(&owner, policy, &gw.spec.tags);
        if !state.vpcs.contains_key(&gw.spec.vpc_id) {
            self.problem(
                &subject,
                "NotFound",
                format!("VPC {} not found in account {account}", gw.spec.vpc_id),
                Some("check spec.vpcId and the Account's region".into()),
            );
            return None;
        }

        // Load balancer.
        let (lb_arn, lb_dns, lb_action) = match &gw.spec.load_balancer {
            LoadBalancerRef::Arn(arn) => match state.load_balancer(arn) {
                Some(lb) => (Ref::Known(lb.arn.clone()), Some(lb.dns_name.clone()), None),
                None => {
                    self.problem(
                        &subject,
                        "NotFound",
                        format!("load balancer {arn} not found"),
                        Some("reference an existing NLB, or use loadBalancer.name to have crosslink create one".into()),
                    );
                    return None;
                }
            },
            LoadBalancerRef::Name(name) => {
                let mine: Vec<&LoadBalancer> =
                    state.load_balancers.iter().filter(|l| self.owned_by(&l.tags, &owner)).collect();
                let chosen = mine.iter().find(|l| &l.name == name).or(mine.first()).copied();
                if let Some(lb) = chosen.filter(|l| &l.name == name) {
                    self.claimed.insert(lb.arn.clone());
                    if lb.vpc_id != gw.spec.vpc_id {
                        self.problem(
                            &subject,
                            "Immutable",
                            format!("load balancer {name} is in {}, the gateway in {}", lb.vpc_id, gw.spec.vpc_id),
                            Some(
                                "a load balancer cannot move VPCs: rename loadBalancer.name to create a new one".into(),
                            ),
                        );
                        return None;
                    }
                    self.tag_drift(
                        ResourceKind::LoadBalancer,
                        &subject,
                        &account,
                        &format!("load balancer {name}"),
                        &lb.arn,
                        &lb.tags,
                        &want_tags,
                        None,
                    );
                    (Ref::Known(lb.arn.clone()), Some(lb.dns_name.clone()), None)
                } else if let Some(other) = state.load_balancers.iter().find(|l| &l.name == name) {
                    self.problem(
                        &subject,
                        "NameTaken",
                        format!("a load balancer named {name} exists ({}) and is not managed by crosslink", other.arn),
                        Some(format!(
                            "choose another loadBalancer.name, or use it as is with loadBalancer: {{arn: {}}} (crosslink never deletes a referenced NLB)",
                            other.arn
                        )),
                    );
                    return None;
                } else {
                    let a = self.add(
                        &subject,
                        &account,
                        format!("load balancer {name}"),
                        Verb::Create,
                        Reason::Missing,
                        Op::LoadBalancer(LoadBalancerOp::CreateLoadBalancer {
                            name: name.clone(),
                            subnet_ids: gw.spec.subnet_ids.clone(),
                            tags: want_tags.clone(),
                        }),
                        vec![],
                    );
                    (Ref::created(format!("load balancer {name}"), a, Output::Id), None, Some(a))
                }
            }
        };
        if let Some(arn) = lb_arn.known() {
            self.report(&subject).resources.insert("loadBalancer".into(), arn.to_string());
        }

        // VPC Link to the NLB.
        let link_name = vpc_link_name(&gw.metadata.name);
        let vpc_link;
        let mut vpc_link_action = None;
        let mine: Vec<&VpcLink> = state.vpc_links.iter().filter(|v| self.owned_by(&v.tags, &owner)).collect();
        let usable = mine.iter().find(|v| {
            lb_arn.known().is_some_and(|arn| v.target_arns.iter().any(|t| t == arn))
                && !matches!(v.status.as_str(), "FAILED" | "DELETING")
        });
        let mut stale_link_deletes: Vec<(&Vec<String>, usize)> = Vec::new();
        for v in &mine {
            if usable.is_some_and(|u| u.id == v.id) {
                continue;
            }
            self.claimed.insert(v.id.clone());
            if v.status == "DELETING" {
                continue;
            }
            let why = if v.status == "FAILED" {
                format!("VPC link {} is FAILED: {}", v.id, v.status_message.clone().unwrap_or_default())
            } else if usable.is_some() {
                "duplicate VPC link".to_string()
            } else {
                format!("VPC link {} targets {:?}, not the gateway's load balancer", v.id, v.target_arns)
            };
            let a = self.add(
                &subject,
                &account,
                format!("VPC link {} ({})", v.name, v.id),
                Verb::Delete,
                Reason::Replaced { why },
                Op::VpcLink(VpcLinkOp::DeleteVpcLink { id: v.id.clone() }),
                vec![],
            );
            stale_link_deletes.push((&v.target_arns, a));
        }
        // Load balancers of this gateway other than the one in use (renamed, or a duplicate
        // from a create whose answer was lost): after the VPC links that target them.
        if matches!(gw.spec.load_balancer, LoadBalancerRef::Name(_)) {
            let stale: Vec<&LoadBalancer> = state
                .load_balancers
                .iter()
                .filter(|l| self.owned_by(&l.tags, &owner) && lb_arn.known().is_some_and(|arn| arn != l.arn))
                .collect();
            for lb in stale {
                self.claimed.insert(lb.arn.clone());
                let deps =
                    stale_link_deletes.iter().filter(|(t, _)| t.contains(&lb.arn)).map(|(_, a)| Some(*a)).collect();
                self.add(
                    &subject,
                    &account,
                    format!("load balancer {}", lb.name),
                    Verb::Delete,
                    Reason::Replaced { why: format!("the gateway's load balancer is {}", lb_arn) },
                    Op::LoadBalancer(LoadBalancerOp::DeleteLoadBalancer { arn: lb.arn.clone() }),
                    deps,
                );
            }
        }
        match usable {
            Some(v) => {
                self.claimed.insert(v.id.clone());
                self.report(&subject).resources.insert("vpcLink".into(), v.id.clone());
                if v.status == "AVAILABLE" {
                    vpc_link = Ref::Known(v.id.clone());
                } else {
                    vpc_link = Ref::Pending(format!("VPC link {} to become AVAILABLE (now {})", v.id, v.status).into());
                    self.report(&subject).waiting.push(format!("VPC link {} is {}", v.id, v.status));
                }
            }
            None => {
                let reason = match mine.iter().find(|v| v.status == "FAILED") {
                    Some(v) => Reason::Replaced {
                        why: format!(
                            "VPC link {} is FAILED: {}",
                            v.id,
                            v.status_message.as_deref().unwrap_or("no reason given")
                        ),
                    },
                    None => Reason::Missing,
                };
                let a = self.add(
                    &subject,
                    &account,
                    format!("VPC link {link_name}"),
                    Verb::Create,
                    reason,
                    Op::VpcLink(VpcLinkOp::CreateVpcLink {
                        name: link_name.clone(),
                        load_balancer_arn: lb_arn.clone(),
                        tags: want_tags.clone(),
                    }),
                    vec![lb_action],
                );
                vpc_link = Ref::created(format!("VPC link {link_name}"), a, Output::Id);
                vpc_link_action = Some(a);
            }
        }

        // REST API.
        let (api_id, api_action, api, api_owned) = match &gw.spec.api.target {
            ApiTarget::Id(id) => match state.rest_apis.iter().find(|a| &a.id == id) {
                Some(a) => (Ref::Known(a.id.clone()), None, Some(a), self.owned_by(&a.tags, &owner)),
                None => {
                    self.problem(&subject, "NotFound", format!("REST API {id} not found in account {account}"), None);
                    return None;
                }
            },
            ApiTarget::Name(name) => {
                let mine: Vec<&RestApi> = state.rest_apis.iter().filter(|a| self.owned_by(&a.tags, &owner)).collect();
                match mine.iter().find(|a| &a.name == name) {
                    Some(a) => {
                        self.claimed.insert(a.id.clone());
                        for dup in mine.iter().filter(|d| d.id != a.id) {
                            self.claimed.insert(dup.id.clone());
                            self.add(
                                &subject,
                                &account,
                                format!("REST API {} ({})", dup.name, dup.id),
                                Verb::Delete,
                                Reason::Replaced { why: format!("the gateway's API is {}", a.id) },
                                Op::RestApi(RestApiOp::DeleteRestApi { id: dup.id.clone() }),
                                vec![],
                            );
                        }
                        (Ref::Known(a.id.clone()), None, Some(*a), true)
                    }
                    None => {
                        if let Some(other) = state.rest_apis.iter().find(|a| &a.name == name && !self.owned(&a.tags)) {
                            self.problem(
                                &subject,
                                "NameTaken",
                                format!("a REST API named {name} exists ({}) and is not managed by crosslink", other.id),
                                Some(format!(
                                    "choose another api.name, or add to it with api: {{id: {}, stage: {}}} (crosslink never deletes a referenced API)",
                                    other.id, gw.spec.api.stage
                                )),
                            );
                            return None;
                        }
                        let a = self.add(
                            &subject,
                            &account,
                            format!("REST API {name}"),
                            Verb::Create,
                            Reason::Missing,
                            Op::RestApi(RestApiOp::CreateRestApi { name: name.clone(), tags: want_tags.clone() }),
                            vec![],
                        );
                        (Ref::created(format!("REST API {name}"), a, Output::Id), Some(a), None, true)
                    }
                }
            }
        };
        if let Some(id) = api_id.known() {
            self.report(&subject).resources.insert("restApi".into(), id.to_string());
        }
        Some(GatewayCx {
            gw,
            account,
            state,
            lb_arn,
            lb_dns,
            lb_action,
            vpc_link,
            vpc_link_action,
            api_id,
            api_action,
            api,
            api_owned,
        })
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

    // ---- link: target group, targets, listener ----------------------------------------------

    fn link(&mut self, cx: &GatewayCx<'a>, l: &'a Link) -> Option<ApiEntry> {
        let name = &l.metadata.name;
        let subject = Subject::Link(name.clone());
        let owner = tags::link_owner(name);
        let state = cx.state;
        let account = cx.account.as_str();
        let frozen_here = self.frozen.contains(name);
        let entry = |frozen: bool| ApiEntry {
            link: name.clone(),
            port: l.spec.listener_port,
            paths: l
                .spec
                .routes
                .iter()
                .map(|r| (r.path.clone(), r.methods.iter().map(|m| m.as_str().to_string()).collect()))
                .collect(),
            frozen: frozen || frozen_here,
            listener: None,
            after_deploy: Vec::new(),
        };
        if let Err(p) = self.state(&l.spec.service.account) {
            self.report(&subject).problems.push(p);
            // Claim what exists so that nothing of a link in trouble is pruned.
            self.claim_link(state, &owner);
            return Some(entry(true));
        }
        let want_tags = self.tags(&owner, l.spec.deletion_policy, &l.spec.tags);
        let port = l.spec.targets.first().map(|t| t.port).unwrap_or(80);
        let tg_name = target_group_name(name, &cx.gw.spec.vpc_id, port);
        let want_hc = health_check(l);

        // Target group.
        let mine: Vec<&TargetGroup> = self.owned_target_groups(state, &owner);
        let current = mine.iter().find(|t| t.name == tg_name).copied();
        let (tg_ref, tg_action) = match current {
            Some(tg) => {
                self.claimed.insert(tg.arn.clone());
                if let Some((field, live, desired)) = hc_drift(&tg.health_check, &want_hc) {
                    self.add(
                        &subject,
                        account,
                        format!("target group {}", tg.name),
                        Verb::Update,
                        Reason::Drift { field, live, desired },
                        Op::TargetGroup(TargetGroupOp::ModifyTargetGroup {
                            arn: tg.arn.clone(),
                            health_check: want_hc.clone(),
                        }),
                        vec![],
                    );
                }
                self.tag_drift(
                    ResourceKind::TargetGroup,
                    &subject,
                    account,
                    &format!("target group {}", tg.name),
                    &tg.arn,
                    &tg.tags,
                    &want_tags,
                    None,
                );
                self.report(&subject).resources.insert("targetGroup".into(), tg.arn.clone());
                (Ref::Known(tg.arn.clone()), None)
            }
            None => {
                if let Some(other) = state.target_groups.iter().find(|t| t.name == tg_name) {
                    self.problem(
                        &subject,
                        "NameTaken",
                        format!("a target group named {tg_name} exists ({}) and is not this link's", other.arn),
                        Some("delete or rename that target group; crosslink derives the name from the link".into()),
                    );
                    self.claim_link(state, &owner);
                    return Some(entry(true));
                }
                let a = self.add(
                    &subject,
                    account,
                    format!("target group {tg_name}"),
                    Verb::Create,
                    Reason::Missing,
                    Op::TargetGroup(TargetGroupOp::CreateTargetGroup {
                        name: tg_name.clone(),
                        vpc_id: cx.gw.spec.vpc_id.clone(),
                        port,
                        health_check: want_hc.clone(),
                        tags: want_tags.clone(),
                    }),
                    vec![],
                );
                (Ref::created(format!("target group {tg_name}"), a, Output::Id), Some(a))
            }
        };

        // Targets.
        let want: BTreeSet<(Ipv4Addr, u16)> = l.spec.targets.iter().map(|t| (t.ip, t.port)).collect();
        let live: BTreeSet<(Ipv4Addr, u16)> = current
            .map(|tg| tg.targets.iter().filter(|t| t.health != "draining").map(|t| (t.ip, t.port)).collect())
            .unwrap_or_default();
        let missing: Vec<(Ipv4Addr, u16)> = want.difference(&live).copied().collect();
        let extra: Vec<(Ipv4Addr, u16)> = live.difference(&want).copied().collect();
        if !missing.is_empty() {
            let shown: Vec<String> = missing.iter().map(|(ip, p)| format!("{ip}:{p}")).collect();
            self.add(
                &subject,
                account,
                format!("targets {} in {tg_name}", shown.join(", ")),
                Verb::Register,
                Reason::Missing,
                Op::Targets(TargetsOp::RegisterTargets { target_group_arn: tg_ref.clone(), targets: missing }),
                vec![tg_action],
            );
        }
        if let (false, Some(tg)) = (extra.is_empty(), current) {
            let shown: Vec<String> = extra.iter().map(|(ip, p)| format!("{ip}:{p}")).collect();
            self.add(
                &subject,
                account,
                format!("targets {} in {tg_name}", shown.join(", ")),
                Verb::Deregister,
                Reason::NoLongerDesired,
                Op::Targets(TargetsOp::DeregisterTargets { target_group_arn: tg.arn.clone(), targets: extra }),
                vec![],
            );
        }

        // Listener.
        let on_lb: Vec<&Listener> = self.listeners_on(state, cx.lb_arn.known());
        let mine: Vec<&Listener> = on_lb.iter().filter(|x| self.owned_by(&x.tags, &owner)).copied().collect();
        let lb_label = match &cx.gw.spec.load_balancer {
            LoadBalancerRef::Name(n) => n.clone(),
            LoadBalancerRef::Arn(a) => a.rsplit('/').nth(1).unwrap_or(a).to_string(),
        };
        let want_port = l.spec.listener_port;
        let chosen = mine.iter().find(|x| x.port == want_port).or(mine.first()).copied();
        // Every change to the link's listeners: a replaced target group goes after them.
        let mut listener_actions: Vec<Option<usize>> = Vec::new();
        let mut made = None;
        let mut after_deploy = Vec::new();
        match chosen {
            Some(x) => {
                self.claimed.insert(x.arn.clone());
                self.report(&subject).resources.insert("listener".into(), x.arn.clone());
                let tg_differs = tg_ref.known() != x.target_group_arn.as_deref();
                let port_differs = x.port != want_port;
                let mut leaving = false;
                if port_differs && on_lb.iter().any(|o| o.port == want_port && o.arn != x.arn) {
                    if self.port_taken(&subject, name, want_port, Some(x), &on_lb, &lb_label) {
                        leaving = true;
                        listener_actions.push(Some(self.add(
                            &subject,
                            account,
                            format!("listener :{} on {lb_label}", x.port),
                            Verb::Delete,
                            Reason::Replaced {
                                why: format!("frees :{} in a port swap; recreated on :{want_port}", x.port),
                            },
                            Op::Listener(ListenerOp::DeleteListener { arn: x.arn.clone() }),
                            vec![],
                        )));
                    }
                } else if port_differs {
                    // Make before break: the API points at the old port until it is deployed
                    // with the new one, so a new listener comes first and the old one goes last.
                    leaving = true;
                    let new = self.add(
                        &subject,
                        account,
                        format!("listener :{want_port} on {lb_label}"),
                        Verb::Create,
                        Reason::Drift {
                            field: "listenerPort".into(),
                            live: x.port.to_string(),
                            desired: want_port.to_string(),
                        },
                        Op::Listener(ListenerOp::CreateListener {
                            load_balancer_arn: cx.lb_arn.clone(),
                            port: want_port,
                            target_group_arn: tg_ref.clone(),
                            tags: want_tags.clone(),
                        }),
                        vec![cx.lb_action, tg_action],
                    );
                    let old = self.add(
                        &subject,
                        account,
                        format!("listener :{} on {lb_label}", x.port),
                        Verb::Delete,
                        Reason::Replaced {
                            why: format!(
                                "moved to :{want_port}; removed after the API is deployed there (make before break)"
                            ),
                        },
                        Op::Listener(ListenerOp::DeleteListener { arn: x.arn.clone() }),
                        vec![Some(new)],
                    );
                    made = Some(new);
                    after_deploy.push(old);
                    listener_actions.extend([Some(new), Some(old)]);
                } else if tg_differs {
                    let reason = Reason::Drift {
                        field: "listener target group".into(),
                        live: x.target_group_arn.clone().unwrap_or("(none)".into()),
                        desired: tg_ref.to_string(),
                    };
                    listener_actions.push(Some(self.add(
                        &subject,
                        account,
                        format!("listener :{} on {lb_label}", x.port),
                        Verb::Update,
                        reason,
                        Op::Listener(ListenerOp::ModifyListener {
                            arn: x.arn.clone(),
                            port: want_port,
                            target_group_arn: tg_ref.clone(),
                        }),
                        vec![tg_action],
                    )));
                }
                if !leaving {
                    self.tag_drift(
                        ResourceKind::Listener,
                        &subject,
                        account,
                        &format!("listener :{}", x.port),
                        &x.arn,
                        &x.tags,
                        &want_tags,
                        None,
                    );
                }
            }
            None => {
                if on_lb.iter().any(|o| o.port == want_port) {
                    self.port_taken(&subject, name, want_port, None, &on_lb, &lb_label);
                } else {
                    listener_actions.push(Some(self.add(
                        &subject,
                        account,
                        format!("listener :{want_port} on {lb_label}"),
                        Verb::Create,
                        Reason::Missing,
                        Op::Listener(ListenerOp::CreateListener {
                            load_balancer_arn: cx.lb_arn.clone(),
                            port: want_port,
                            target_group_arn: tg_ref.clone(),
                            tags: want_tags.clone(),
                        }),
                        vec![cx.lb_action, tg_action],
                    )));
                }
            }
        }
        // Other listeners and target groups of this link: replaced ones, duplicates, a move.
        // The API may still point at them until it is deployed again.
        for x in &mine {
            if chosen.is_some_and(|c| c.arn == x.arn) {
                continue;
            }
            self.claimed.insert(x.arn.clone());
            let a = self.add(
                &subject,
                account,
                format!("listener :{} on {lb_label}", x.port),
                Verb::Delete,
                Reason::Replaced { why: format!("the link listens on :{want_port}") },
                Op::Listener(ListenerOp::DeleteListener { arn: x.arn.clone() }),
                vec![],
            );
            after_deploy.push(a);
            listener_actions.push(Some(a));
        }
        // The link's listeners on another load balancer of this account: it moved gateways.
        let elsewhere: Vec<&Listener> = self
            .owned_listeners(state, &owner)
            .into_iter()
            .filter(|x| cx.lb_arn.known() != Some(x.load_balancer_arn.as_str()))
            .collect();
        let mut moved = Vec::new();
        for x in elsewhere {
            self.claimed.insert(x.arn.clone());
            moved.push(Some(self.add(
                &subject,
                account,
                format!("listener :{} on {}", x.port, x.load_balancer_arn.rsplit('/').nth(1).unwrap_or("another NLB")),
                Verb::Delete,
                Reason::Replaced { why: format!("the link is served by Gateway/{} now", cx.gw.metadata.name) },
                Op::Listener(ListenerOp::DeleteListener { arn: x.arn.clone() }),
                vec![],
            )));
        }
        let stale_tgs: Vec<&TargetGroup> =
            self.owned_target_groups(state, &owner).into_iter().filter(|t| t.name != tg_name).collect();
        for tg in stale_tgs {
            self.claimed.insert(tg.arn.clone());
            // Switch the listener first: a target group in use cannot be deleted.
            let mut users: Vec<Option<usize>> = listener_actions.clone();
            users.extend(moved.iter().copied());
            self.add(
                &subject,
                account,
                format!("target group {}", tg.name),
                Verb::Delete,
                Reason::Replaced { why: format!("the link's target group is now {tg_name} (port or VPC changed)") },
                Op::TargetGroup(TargetGroupOp::DeleteTargetGroup { arn: tg.arn.clone() }),
                users,
            );
        }

        let mut e = entry(self.blocked(&subject));
        e.listener = made;
        e.after_deploy = after_deploy;
        Some(e)
    }

    /// The port a link wants is held by another listener. Waits when the holder is moving away
    /// or being removed; breaks a cycle of links swapping ports (returns true: delete this
    /// link's listener, it is recreated once its port is free); otherwise a problem.
    fn port_taken(
        &mut self,
        subject: &Subject,
        me: &str,
        port: u16,
        mine: Option<&Listener>,
        on_lb: &[&Listener],
        lb: &str,
    ) -> bool {
        let holder_at = |p: u16| on_lb.iter().find(|o| o.port == p && mine.is_none_or(|m| m.arn != o.arn)).copied();
        let Some(holder) = holder_at(port) else { return false };
        let owner = Some(holder).filter(|h| self.owned(&h.tags)).and_then(|h| tags::owner(&h.tags)).map(str::to_string);
        let moving_link = |owner: &Option<String>, at: u16| -> Option<(String, u16)> {
            let Some(Subject::Link(name)) = Subject::from_owner_tag(owner.as_deref()?) else { return None };
            let want = self.ix.link(&name)?.spec.listener_port;
            (want != at).then_some((name, want))
        };
        // A blocked link does not move: waiting for it would never end.
        let stuck = |n: &str| self.frozen.contains(n) || self.blocked(&Subject::Link(n.to_string()));
        if let Some((first, mut next)) = moving_link(&owner, port) {
            // Follow the chain of moving listeners: a cycle back to this link's listener is a swap.
            let mut names = vec![me.to_string(), first.clone()];
            let mut blocked_by = stuck(&first).then(|| first.clone());
            for _ in 0..on_lb.len() {
                if blocked_by.is_some() {
                    break;
                }
                if mine.is_some_and(|m| m.port == next) {
                    if names.iter().min().is_some_and(|m| m == me) {
                        return true;
                    }
                    break;
                }
                let Some(h) = holder_at(next) else { break };
                let o = Some(h).filter(|h| self.owned(&h.tags)).and_then(|h| tags::owner(&h.tags)).map(str::to_string);
                match moving_link(&o, next) {
                    Some((n, w)) => {
                        blocked_by = stuck(&n).then(|| n.clone());
                        names.push(n);
                        next = w;
                    }
                    None => break,
                }
            }
            if let Some(b) = blocked_by {
                self.problem(
                    subject,
                    "PortInUse",
                    format!("port {port} on {lb} is held by Link/{first}, which cannot move while Link/{b} is blocked"),
                    Some(format!("resolve Link/{b}'s problems, or choose another listenerPort")),
                );
                return false;
            }
            self.report(subject).waiting.push(format!("port {port} on {lb} is being freed by Link/{first}"));
            return false;
        }
        let (who, hint) = match owner.as_deref() {
            Some(o) if !self.owner_desired(o) && !is_retained(&holder.tags) => {
                self.report(subject).waiting.push(format!("port {port} on {lb} is being freed ({o} was removed)"));
                return false;
            }
            Some(o) if !self.owner_desired(o) => (
                format!("the listener of {o}, kept when it was removed (deletionPolicy Retain)"),
                format!("choose another listenerPort, or delete listener {} by hand", holder.arn),
            ),
            Some(o) => (o.to_string(), "choose another listenerPort".to_string()),
            None => (
                "a listener not managed by crosslink".to_string(),
                "choose another listenerPort, or remove the listener holding it".to_string(),
            ),
        };
        self.problem(subject, "PortInUse", format!("port {port} on {lb} is held by {who}"), Some(hint));
        false
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

    // ---- REST API resources, methods, deployment --------------------------------------------

    /// Plans the API of a gateway; returns its deployment, if one is planned.
    fn api(&mut self, cx: &GatewayCx<'a>, entries: &[ApiEntry]) -> Option<usize> {
        let gw = cx.gw;
        let subject = Subject::Gateway(gw.metadata.name.clone());
        let account = cx.account.as_str();
        let dns = cx.lb_dns.clone().unwrap_or_else(|| format!("(dns of {})", cx.lb_arn));
        // A load balancer this plan creates: its DNS name, written into URIs, comes with its
        // answer (the engine fills it in within the pass).
        let dns_fill: Option<(String, usize, Output)> = match (&cx.lb_dns, cx.lb_arn.made_by()) {
            (None, Some((lb, _))) => Some((dns.clone(), lb, Output::DnsName)),
            _ => None,
        };
        let empty = Vec::new();
        let live: &Vec<ApiResource> = cx.api.map(|a| &a.resources).unwrap_or(&empty);
        let by_path: BTreeMap<&str, &ApiResource> = live.iter().map(|r| (r.path.as_str(), r)).collect();

        // Desired resources: each route, its {proxy+}, and their parents; methods per resource.
        let mut want: BTreeMap<String, Vec<(String, String, bool, String)>> = BTreeMap::new();
        let mut frozen: BTreeSet<String> = BTreeSet::new();
        for e in entries.iter().filter(|e| e.frozen) {
            for (path, _) in &e.paths {
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
            for (path, methods) in &e.paths {
                let proxy = format!("{path}/{{proxy+}}");
                for (p, greedy) in [(path.clone(), false), (proxy, true)] {
                    let uri = integration_uri(&dns, e.port, path, greedy);
                    let ms = want.entry(p).or_default();
                    for m in methods {
                        ms.push((m.clone(), uri.clone(), greedy, e.link.clone()));
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

        // Ports of retained listeners whose link left desired state: their API methods stay.
        let retained_ports: BTreeSet<u16> = cx
            .state
            .listeners
            .iter()
            .filter(|x| cx.lb_arn.known() == Some(x.load_balancer_arn.as_str()))
            .filter(|x| self.owned(&x.tags) && is_retained(&x.tags))
            .filter(
                |x| matches!(tags::owner_subject(&x.tags), Some(Subject::Link(link)) if self.ix.link(&link).is_none()),
            )
            .map(|x| x.port)
            .collect();

        let new_listener: BTreeMap<&str, usize> =
            entries.iter().filter_map(|e| Some((e.link.as_str(), e.listener?))).collect();
        let mut api_actions: Vec<usize> = cx.api_action.into_iter().collect();
        let root = match (by_path.get("/"), cx.api_action) {
            (Some(r), _) => Ref::Known(r.id.clone()),
            (None, Some(a)) => Ref::created("/", a, Output::RootResourceId),
            (None, None) => Ref::Pending("/".into()),
        };
        let mut ids: BTreeMap<String, (Ref, Option<usize>)> = BTreeMap::new();
        ids.insert("/".into(), (root, cx.api_action));
        // BTreeMap order puts every parent before its children.
        for (path, methods) in &want {
            let parent = parent_path(path).unwrap_or("/");
            let (parent_ref, parent_action) = ids.get(parent).cloned().unwrap_or((Ref::Pending(parent.into()), None));
            let (res_ref, res_action) = match by_path.get(path.as_str()) {
                Some(r) => (Ref::Known(r.id.clone()), None),
                None => {
                    let part = path.rsplit('/').next().unwrap_or_default().to_string();
                    let a = self.add(
                        &subject,
                        account,
                        format!("API resource {path}"),
                        Verb::Create,
                        Reason::Missing,
                        Op::ApiResource(ApiResourceOp::CreateResource {
                            rest_api_id: cx.api_id.clone(),
                            parent_id: parent_ref,
                            path_part: part,
                            path: path.clone(),
                        }),
                        vec![parent_action, cx.api_action],
                    );
                    api_actions.push(a);
                    (Ref::created(format!("API resource {path}"), a, Output::Id), Some(a))
                }
            };
            ids.insert(path.clone(), (res_ref.clone(), res_action));
            let live_methods = by_path.get(path.as_str()).map(|r| &r.methods);
            for (method, uri, greedy, link) in methods {
                let live = live_methods.and_then(|m| m.get(method));
                let reason = match live {
                    None => Some(Reason::Missing),
                    Some(m) => integration_drift(m, uri, method, &cx.vpc_link),
                };
                let Some(reason) = reason else { continue };
                let link_subject = Subject::Link(link.clone());
                let a = self.add(
                    &link_subject,
                    account,
                    format!("{method} {path}"),
                    if live.is_some() { Verb::Update } else { Verb::Create },
                    reason,
                    Op::Method(MethodOp::PutProxyMethod {
                        rest_api_id: cx.api_id.clone(),
                        resource_id: res_ref.clone(),
                        path: path.clone(),
                        http_method: method.clone(),
                        greedy: *greedy,
                        uri: uri.clone(),
                        vpc_link_id: cx.vpc_link.clone(),
                    }),
                    vec![res_action, cx.vpc_link_action, cx.lb_action, new_listener.get(link.as_str()).copied()],
                );
                if let Some(fill) = dns_fill.clone().filter(|(placeholder, ..)| uri.contains(placeholder.as_str())) {
                    self.plan.fills.insert(a, Fills { texts: vec![fill], ..Fills::default() });
                }
                api_actions.push(a);
            }
        }

        // Undesired methods and resources: only crosslink's, never retained ones.
        let ours = |m: &ApiMethod| -> bool {
            m.integration.as_ref().is_some_and(|i| {
                i.connection_type.as_deref() == Some("VPC_LINK")
                    && i.uri.as_deref().is_some_and(|u| cx.lb_dns.as_deref().is_some_and(|d| uri_port(u, d).is_some()))
            })
        };
        let retained = |m: &ApiMethod| -> bool {
            m.integration.as_ref().and_then(|i| i.uri.as_deref()).is_some_and(|u| {
                cx.lb_dns.as_deref().and_then(|d| uri_port(u, d)).is_some_and(|p| retained_ports.contains(&p))
            })
        };
        let mut keep: BTreeSet<&str> = BTreeSet::new();
        for r in live {
            let desired = want.contains_key(&r.path) || frozen.contains(&r.path) || r.path == "/";
            let foreign =
                if cx.api_owned { false } else { r.methods.is_empty() || r.methods.values().any(|m| !ours(m)) };
            if desired || foreign || r.methods.values().any(retained) {
                keep.insert(&r.path);
            }
        }
        let kept = kept_subtrees(keep.iter().copied());
        let subtree_kept = |p: &str| kept.contains(p);
        let api_id_known = cx.api_id.known().map(str::to_string);
        if let Some(api_id) = api_id_known {
            // Deepest first: each resource is deleted after its children (moto does not cascade
            // DeleteResource, and AWS does not mind).
            let mut by_depth: Vec<&ApiResource> = live.iter().collect();
            by_depth.sort_by_key(|r| std::cmp::Reverse(r.path.matches('/').count()));
            let mut deleted: BTreeMap<&str, usize> = BTreeMap::new();
            for r in by_depth {
                if subtree_kept(&r.path) {
                    // Desired or kept: prune only undesired methods that are ours.
                    let want_methods: BTreeSet<&str> =
                        want.get(&r.path).map(|ms| ms.iter().map(|(m, ..)| m.as_str()).collect()).unwrap_or_default();
                    if !want.contains_key(&r.path) || frozen.contains(&r.path) {
                        continue;
                    }
                    for (m, method) in &r.methods {
                        if want_methods.contains(m.as_str()) || retained(method) || !(cx.api_owned || ours(method)) {
                            continue;
                        }
                        let a = self.add(
                            &subject,
                            account,
                            format!("{m} {}", r.path),
                            Verb::Delete,
                            Reason::NoLongerDesired,
                            Op::Method(MethodOp::DeleteMethod {
                                rest_api_id: api_id.clone(),
                                resource_id: r.id.clone(),
                                path: r.path.clone(),
                                http_method: m.clone(),
                            }),
                            vec![],
                        );
                        api_actions.push(a);
                    }
                    continue;
                }
                let children: Vec<Option<usize>> = deleted
                    .iter()
                    .filter(|(p, _)| parent_path(p) == Some(r.path.as_str()))
                    .map(|(_, a)| Some(*a))
                    .collect();
                let a = self.add(
                    &subject,
                    account,
                    format!("API resource {}", r.path),
                    Verb::Delete,
                    Reason::NoLongerDesired,
                    Op::ApiResource(ApiResourceOp::DeleteResource {
                        rest_api_id: api_id.clone(),
                        resource_id: r.id.clone(),
                        path: r.path.clone(),
                    }),
                    children,
                );
                deleted.insert(&r.path, a);
                api_actions.push(a);
            }
        }

        // Two resources for one path (an SDK retry of a create whose answer was lost, where the
        // API does not refuse it as AWS does): the one not in use goes, if nothing hangs from it.
        if let (true, Some(api_id)) = (cx.api_owned, cx.api_id.known()) {
            let parents: HashSet<&str> = live.iter().filter_map(|c| c.parent_id.as_deref()).collect();
            for r in live {
                let in_use = by_path.get(r.path.as_str()).is_some_and(|u| u.id == r.id);
                let parent = parents.contains(r.id.as_str());
                if in_use || parent || !want.contains_key(&r.path) {
                    continue;
                }
                let a = self.add(
                    &subject,
                    account,
                    format!("API resource {} ({})", r.path, r.id),
                    Verb::Delete,
                    Reason::Replaced { why: format!("duplicate of {}", by_path[r.path.as_str()].id) },
                    Op::ApiResource(ApiResourceOp::DeleteResource {
                        rest_api_id: api_id.to_string(),
                        resource_id: r.id.clone(),
                        path: r.path.clone(),
                    }),
                    vec![],
                );
                api_actions.push(a);
            }
        }

        // Deployment: when anything changed, or the stage does not carry what is desired.
        let lines: Vec<String> =
            want.iter().flat_map(|(p, ms)| ms.iter().map(move |(m, uri, ..)| format!("{m} {p} {uri}"))).collect();
        let vpc_link_line = format!("vpc-link {}", cx.vpc_link);
        let hash = deployed_hash(lines.clone(), &vpc_link_line);
        // What the hash covers that this plan creates (the load balancer's DNS name in URIs, the
        // VPC link id): the engine takes the hash again once they are known.
        let mut hash_fills: Vec<(String, usize, Output)> = dns_fill.clone().into_iter().collect();
        if let Some((by, output)) = cx.vpc_link.made_by() {
            hash_fills.push((cx.vpc_link.to_string(), by, output));
        }
        if want.values().all(Vec::is_empty) {
            return None; // A REST API without methods cannot be deployed.
        }
        let stage = cx.api.and_then(|a| a.stages.iter().find(|s| s.name == gw.spec.api.stage));
        let deployed = stage.and_then(|s| s.tags.get(DEPLOYED_HASH)).map(String::as_str);
        if api_actions.is_empty() && deployed == Some(hash.as_str()) {
            return None;
        }
        let reason = if !api_actions.is_empty() {
            Reason::FollowsChanges { why: "the API changed".into() }
        } else if stage.is_none() {
            Reason::Missing
        } else {
            Reason::Drift {
                field: "stage deployment".into(),
                live: deployed.unwrap_or("(unknown)").into(),
                desired: hash.clone(),
            }
        };
        let mut stage_tags = BTreeMap::new();
        stage_tags.insert(MANAGED_BY.to_string(), self.s.instance.clone());
        stage_tags.insert(DEPLOYED_HASH.to_string(), hash);
        let deps: Vec<Option<usize>> = api_actions.iter().copied().map(Some).collect();
        let a = self.add(
            &subject,
            account,
            format!("stage {}", gw.spec.api.stage),
            Verb::Deploy,
            reason,
            Op::Stage(StageOp::CreateDeployment {
                rest_api_id: cx.api_id.clone(),
                stage: gw.spec.api.stage.clone(),
                description: format!("crosslink: {} link(s)", entries.len()),
                stage_tags,
            }),
            deps,
        );
        if !hash_fills.is_empty() {
            self.plan.fills.insert(a, Fills { texts: hash_fills, hash_lines: lines, hash_tail: vpc_link_line });
        }
        Some(a)
    }

    // ---- peerings and routes -----------------------------------------------------------------

    fn peerings(&mut self) {
        // (gateway, service VPC) pairs and what they need, in desired order.
        struct Pair<'l> {
            gw: &'l Gateway,
            svc_account: String,
            svc_vpc: String,
            svc_rtbs: BTreeSet<String>,
            links: Vec<&'l Link>,
            retain: bool,
        }
        let mut pairs: Vec<Pair> = Vec::new();
        // (gateway VPC, service VPC) -> its index in `pairs`.
        let mut pair_at: HashMap<(&str, &str), usize> = HashMap::new();
        for l in &self.d.links {
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

            // The peering itself, found by tag in the gateway account. It stays Retain while a
            // link removed with deletionPolicy Retain still sends traffic through it.
            let retained_users = self.retained_users(gs, &gw.spec.vpc_id, &svpc.cidrs);
            let retain = pair.retain || !retained_users.is_empty();
            let mut want_tags = BTreeMap::new();
            want_tags.insert(MANAGED_BY.to_string(), self.s.instance.clone());
            want_tags.insert(OWNER.to_string(), owner.clone());
            want_tags.insert(DELETION_POLICY.to_string(), if retain { "Retain" } else { "Delete" }.to_string());
            want_tags.insert("Name".to_string(), format!("crosslink {}: {}", gw.metadata.name, pair.svc_vpc));
            let live: Vec<&Peering> = gs
                .peerings
                .iter()
                .filter(|p| p.requester_vpc == gw.spec.vpc_id && p.accepter_vpc == pair.svc_vpc && !p.status.is_dead())
                .collect();
            let mine: Vec<&Peering> = live.iter().filter(|p| self.owned_by(&p.tags, &owner)).copied().collect();
            let chosen = mine
                .iter()
                .find(|p| p.status == PeeringStatus::Active)
                .or_else(|| mine.iter().find(|p| p.status != PeeringStatus::Deleting))
                .copied();
            for p in &mine {
                self.claimed.insert(p.id.clone());
            }
            if !pair.retain && !retained_users.is_empty() {
                let what = chosen.map(|p| format!("peering {}", p.id)).unwrap_or_else(|| "the peering".into());
                self.report(&subject).retained.push(format!(
                    "{what} stays deletionPolicy Retain: {} (removed with deletionPolicy Retain) still uses it",
                    retained_users.join(", ")
                ));
            }
            // Links of one pair agree on it (validation); the accepter (service account) sets
            // it, on an active peering: right after the acceptance when there is one.
            let dns = pair.links.iter().any(|l| l.spec.peering.allow_dns_resolution);
            let dns_after = |accept: usize, id: Ref, label: &str| {
                (
                    format!("DNS resolution of peering {label}"),
                    Op::Peering(PeeringOp::SetPeeringDnsResolution { peering_id: id, allow: dns }),
                    vec![Some(accept)],
                )
            };
            let mut set_dns = None;
            let (pcx, pcx_action) = match chosen {
                Some(p) => {
                    self.report(&subject).resources.insert("peering".into(), p.id.clone());
                    match p.status {
                        PeeringStatus::Active => {
                            if p.accepter_dns_resolution != dns {
                                self.add(
                                    &subject,
                                    &pair.svc_account,
                                    format!("DNS resolution of peering {}", p.id),
                                    Verb::Update,
                                    Reason::Drift {
                                        field: "peering.allowDnsResolution".into(),
                                        live: p.accepter_dns_resolution.to_string(),
                                        desired: dns.to_string(),
                                    },
                                    Op::Peering(PeeringOp::SetPeeringDnsResolution {
                                        peering_id: Ref::Known(p.id.clone()),
                                        allow: dns,
                                    }),
                                    vec![],
                                );
                            }
                            (Ref::Known(p.id.clone()), None)
                        }
                        PeeringStatus::PendingAcceptance => {
                            let a = self.add(
                                &subject,
                                &pair.svc_account,
                                format!("peering {}", p.id),
                                Verb::Accept,
                                Reason::FollowsChanges { why: "pending acceptance by the service account".into() },
                                Op::Peering(PeeringOp::AcceptVpcPeeringConnection {
                                    peering_id: Ref::Known(p.id.clone()),
                                }),
                                vec![],
                            );
                            if p.accepter_dns_resolution != dns {
                                set_dns = Some(dns_after(a, Ref::Known(p.id.clone()), &p.id));
                            }
                            (Ref::Known(p.id.clone()), Some(a))
                        }
                        other => {
                            self.report(&subject).waiting.push(format!("peering {} is {other:?}", p.id));
                            (Ref::Pending(format!("peering {} to become active", p.id).into()), None)
                        }
                    }
                }
                None => {
                    if let Some(foreign) = live.iter().find(|p| !self.owned(&p.tags)) {
                        self.problem(
                            &subject,
                            "PeeringExists",
                            format!(
                                "{} already peers {} and {} and is not managed by crosslink",
                                foreign.id, gw.spec.vpc_id, pair.svc_vpc
                            ),
                            Some(format!(
                                "AWS allows one peering per VPC pair: delete {0}, or adopt it by tagging it {MANAGED_BY}={1} and {OWNER}={owner}",
                                foreign.id, self.s.instance
                            )),
                        );
                        continue;
                    }
                    // A request that ended dead is replaced; the reason says so (and lets the
                    // engine notice a pair whose requests keep failing).
                    let dead = gs
                        .peerings
                        .iter()
                        .filter(|p| p.requester_vpc == gw.spec.vpc_id && p.accepter_vpc == pair.svc_vpc)
                        .filter(|p| self.owned_by(&p.tags, &owner))
                        .filter_map(|p| match p.status {
                            PeeringStatus::Failed => Some((p, "failed")),
                            PeeringStatus::Rejected => Some((p, "rejected")),
                            PeeringStatus::Expired => Some((p, "expired")),
                            _ => None,
                        })
                        .next_back();
                    let reason = match dead {
                        Some((p, how)) => Reason::Replaced { why: format!("peering {} {how}", p.id) },
                        None => Reason::Missing,
                    };
                    let created = self.add(
                        &subject,
                        &gw_account,
                        format!("peering {} -> {}", gw.spec.vpc_id, pair.svc_vpc),
                        Verb::Create,
                        reason,
                        Op::Peering(PeeringOp::CreateVpcPeeringConnection {
                            vpc_id: gw.spec.vpc_id.clone(),
                            peer_vpc_id: pair.svc_vpc.clone(),
                            peer_owner_id: ss.account_id.clone(),
                            peer_region: ss.region.clone(),
                            tags: want_tags.clone(),
                        }),
                        vec![],
                    );
                    let pending =
                        Ref::created(format!("peering {} -> {}", gw.spec.vpc_id, pair.svc_vpc), created, Output::Id);
                    let accept = self.add(
                        &subject,
                        &pair.svc_account,
                        format!("peering {} -> {}", gw.spec.vpc_id, pair.svc_vpc),
                        Verb::Accept,
                        Reason::FollowsChanges { why: "accepted by the service account".into() },
                        Op::Peering(PeeringOp::AcceptVpcPeeringConnection { peering_id: pending.clone() }),
                        vec![Some(created)],
                    );
                    // A new peering does not resolve DNS until told to.
                    if dns {
                        set_dns = Some(dns_after(
                            accept,
                            pending.clone(),
                            &format!("{} -> {}", gw.spec.vpc_id, pair.svc_vpc),
                        ));
                    }
                    (pending, Some(accept))
                }
            };
            if let Some((resource, op, deps)) = set_dns {
                self.add(
                    &subject,
                    &pair.svc_account,
                    resource,
                    Verb::Update,
                    Reason::FollowsChanges { why: "set after acceptance".into() },
                    op,
                    deps,
                );
            }
            if let Some(p) = chosen {
                self.tag_drift(
                    ResourceKind::Peering,
                    &subject,
                    &gw_account,
                    &format!("peering {}", p.id),
                    &p.id,
                    &p.tags,
                    &want_tags,
                    None,
                );
            }
            // Extra crosslink peerings for this pair (a create whose answer was lost): remove.
            for p in mine.iter().filter(|p| chosen.is_some_and(|c| c.id != p.id) && p.status != PeeringStatus::Deleting)
            {
                self.add(
                    &subject,
                    &gw_account,
                    format!("peering {}", p.id),
                    Verb::Delete,
                    Reason::Replaced { why: "duplicate peering for this VPC pair".into() },
                    Op::Peering(PeeringOp::DeleteVpcPeeringConnection { peering_id: p.id.clone() }),
                    vec![],
                );
            }
            if pcx.known().is_none() && pcx_action.is_none() {
                continue; // waiting for the peering; routes come after.
            }
            let owned_pcx: BTreeSet<&str> = gs
                .peerings
                .iter()
                .chain(ss.peerings.iter())
                .filter(|p| self.owned(&p.tags))
                .map(|p| p.id.as_str())
                .collect();
            let sides = [
                (&gw_account, gs, gw.spec.route_table_ids.iter().cloned().collect::<BTreeSet<_>>(), &svpc.cidrs),
                (&pair.svc_account, ss, pair.svc_rtbs.clone(), &gvpc.cidrs),
            ];
            for (account, st, rtbs, dests) in sides {
                for rtb in &rtbs {
                    let Some(table) = st.route_tables.get(rtb) else {
                        self.problem(
                            &subject,
                            "NotFound",
                            format!("route table {rtb} not found in account {account}"),
                            None,
                        );
                        continue;
                    };
                    for dest in dests {
                        let live = table.routes.iter().find(|r| r.destination == *dest);
                        // Held for another desired pair (or a retained one): never swung over,
                        // or the two would take it from each other on every pass.
                        let held =
                            live.and_then(|r| r.peering_id.as_deref()).and_then(|id| self.held_for_other(id, &owner));
                        if let Some((holder, hint)) = held {
                            self.problem(
                                &subject,
                                "RouteContested",
                                format!("route {dest} in {rtb} is held by {holder}"),
                                Some(hint),
                            );
                            continue;
                        }
                        let op_reason = match live {
                            None => Some((
                                Verb::Create,
                                Reason::Missing,
                                Op::Route(RouteOp::CreateRoute {
                                    route_table_id: rtb.clone(),
                                    destination: *dest,
                                    peering_id: pcx.clone(),
                                }),
                            )),
                            Some(r)
                                if r.peering_id.is_some() && r.peering_id.as_deref() == pcx.known() && !r.blackhole =>
                            {
                                None
                            }
                            Some(r)
                                if r.peering_id.as_deref().is_some_and(|id| owned_pcx.contains(id))
                                    || (r.blackhole && r.peering_id.is_some() && r.other_target.is_none()) =>
                            {
                                Some((
                                    Verb::Update,
                                    Reason::Drift {
                                        field: "route target".into(),
                                        live: format!(
                                            "{}{}",
                                            r.peering_id.clone().unwrap_or_default(),
                                            if r.blackhole { " (blackhole)" } else { "" }
                                        ),
                                        desired: pcx.to_string(),
                                    },
                                    Op::Route(RouteOp::ReplaceRoute {
                                        route_table_id: rtb.clone(),
                                        destination: *dest,
                                        peering_id: pcx.clone(),
                                    }),
                                ))
                            }
                            Some(r) => {
                                let target =
                                    r.peering_id.clone().or(r.other_target.clone()).unwrap_or("something else".into());
                                self.problem(
                                    &subject,
                                    "RouteConflict",
                                    format!("route {dest} in {rtb} points at {target}, which crosslink does not manage"),
                                    Some("remove that route or use another route table; crosslink never replaces routes it does not own".into()),
                                );
                                None
                            }
                        };
                        if let Some((verb, reason, op)) = op_reason {
                            let replace = matches!(op, Op::Route(RouteOp::ReplaceRoute { .. }));
                            let a = self.add(
                                &subject,
                                account,
                                format!("route {dest} in {rtb}"),
                                verb,
                                reason,
                                op,
                                vec![pcx_action],
                            );
                            if replace {
                                self.taken_over.insert((rtb.clone(), *dest), a);
                            }
                        }
                    }
                }
            }
        }
        // Routes to crosslink peerings that desired state does not ask for (a route table left
        // the YAML, a CIDR changed): remove, unless the peering itself goes (handled in orphans).
        let mut wanted_routes: BTreeSet<(String, Ipv4Net)> = BTreeSet::new();
        for pair in &pairs {
            let gw = pair.gw;
            let (Ok(gs), Ok(ss)) = (self.state(&gw.spec.account), self.state(&pair.svc_account)) else {
                // Unknown: keep every route in these accounts' listed tables.
                continue;
            };
            let (Some(gvpc), Some(svpc)) = (gs.vpcs.get(&gw.spec.vpc_id), ss.vpcs.get(&pair.svc_vpc)) else { continue };
            for rtb in &gw.spec.route_table_ids {
                for c in &svpc.cidrs {
                    wanted_routes.insert((rtb.clone(), *c));
                }
            }
            for rtb in &pair.svc_rtbs {
                for c in &gvpc.cidrs {
                    wanted_routes.insert((rtb.clone(), *c));
                }
            }
        }
        self.stale_routes(
            &pairs.iter().map(|p| (p.gw.spec.vpc_id.clone(), p.svc_vpc.clone())).collect(),
            &wanted_routes,
        );
    }

    /// Whether a route's peering holds it for another pair that is desired, or kept by Retain
    /// for a removed one: (who holds it, what to do).
    fn held_for_other(&self, peering_id: &str, mine: &str) -> Option<(String, String)> {
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

    /// Deletes routes that target a still-desired crosslink peering from tables that no longer
    /// want them.
    fn stale_routes(&mut self, desired_pairs: &BTreeSet<(String, String)>, wanted: &BTreeSet<(String, Ipv4Net)>) {
        let mut todo = Vec::new();
        for (account, obs) in &self.o.accounts {
            let AccountObservation::Ok(st) = obs else { continue };
            for p in st.peerings.iter().filter(|p| self.owned(&p.tags)) {
                let pair = (p.requester_vpc.clone(), p.accepter_vpc.clone());
                if !desired_pairs.contains(&pair) {
                    continue; // orphans() removes its routes with it.
                }
                let subject = Subject::Peering(pair.0.clone(), pair.1.clone());
                if self.blocked(&subject) {
                    continue;
                }
                for t in st.route_tables.values() {
                    for r in &t.routes {
                        if r.peering_id.as_deref() == Some(p.id.as_str())
                            && !wanted.contains(&(t.id.clone(), r.destination))
                        {
                            todo.push((subject.clone(), account.clone(), t.id.clone(), r.destination));
                        }
                    }
                }
            }
        }
        todo.sort();
        todo.dedup();
        for (subject, account, rtb, dest) in todo {
            self.add(
                &subject,
                &account,
                format!("route {dest} in {rtb}"),
                Verb::Delete,
                Reason::NoLongerDesired,
                Op::Route(RouteOp::DeleteRoute { route_table_id: rtb, destination: dest }),
                vec![],
            );
        }
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
    fn owner_desired(&self, owner: &str) -> bool {
        match Subject::from_owner_tag(owner) {
            Some(Subject::Link(l)) => self.ix.link(&l).is_some(),
            Some(Subject::Gateway(g)) => self.ix.gateway(&g).is_some(),
            Some(Subject::Peering(a, b)) => !self.ix.links_of_pair(&a, &b).is_empty(),
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
        if !self.owned(t) || self.claimed.contains(id) {
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
                let Some(first) = kinds::before_delete(kind, self, &subject, st, &c) else { continue };
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
    _: &'a AccountState,
    _: &Prunable<'a>,
) -> Option<Vec<Option<usize>>> {
    Some(Vec::new())
}

/// `kinds::tag_op` of a kind whose tags crosslink does not repair.
pub(crate) fn untagged(_: &str, _: Tags) -> Option<Op> {
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
