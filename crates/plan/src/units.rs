//! Units of ownership for running several replicas: a gateway and all its links are one unit
//! (a lease in the coordination engine says which replica may change it). Gateways that share
//! AWS objects (a gateway VPC, whose peerings they share; a load balancer; a REST API) form one
//! unit, named after the first of them in alphabetical order, so that one object is never
//! changed by two replicas.
//!
//! Resources whose owner left desired state are attributed by where they live: a listener of a
//! removed link belongs to the unit of the load balancer (gateway VPC) it sits on, a removed
//! route or API resource to the unit of its peering or REST API. What belongs to no unit any
//! more (a removed gateway's load balancer, VPC link and API in a VPC no gateway uses) is the
//! `_orphans` unit's: it is leased like any other, so exactly one replica cleans it up.
//!
//! Pure functions of desired and observed state, like the planner.

use crate::kinds::{
    ApiResourceOp, ListenerOp, LoadBalancerOp, MethodOp, PeeringOp, RestApiOp, RouteOp, StageOp, TargetGroupOp,
    TargetsOp, VpcLinkOp,
};

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crosslink_desired::{ApiTarget, DesiredState, LoadBalancerRef};

use crate::model::{Action, Plan, Subject};
use crate::observed::{AccountObservation, AccountState, Observed};
use crate::op::{AuthorizerOp, Op, Ref, ResourcePolicyOp, WebAclOp};

/// The unit of everything no desired gateway accounts for. Not a valid gateway name (names are
/// DNS labels), so it never collides with one.
pub const ORPHANS: &str = "_orphans";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Units {
    /// Unit name -> its gateways (sorted). Always contains [`ORPHANS`] (with no gateways).
    pub units: BTreeMap<String, Vec<String>>,
    gateway_unit: BTreeMap<String, String>,
    /// Gateway VPC id -> unit.
    by_vpc: BTreeMap<String, String>,
    /// (account, `id:<rest api id>` or `name:<rest api name>`) -> unit.
    by_api: BTreeMap<(String, String), String>,
    /// Link name -> the gateway it names (the first link of that name, as
    /// `DesiredState::link`): a subject's unit without a search of the links.
    link_gateway: HashMap<String, String>,
    /// Consumer name -> the unit of its first gateway: one replica owns its usage plan and keys
    /// (no gateway's own planning touches them).
    consumer_unit: HashMap<String, String>,
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

fn api_key(t: &ApiTarget) -> String {
    match t {
        ApiTarget::Id(id) => format!("id:{id}"),
        ApiTarget::Name(n) => format!("name:{n}"),
    }
}

impl Units {
    pub fn of(desired: &DesiredState) -> Units {
        let gws = &desired.gateways;
        let mut parent: Vec<usize> = (0..gws.len()).collect();
        // Gateways sharing a VPC, load balancer or REST API are merged.
        let mut first: BTreeMap<String, usize> = BTreeMap::new();
        for (i, g) in gws.iter().enumerate() {
            let lb = match &g.spec.load_balancer {
                LoadBalancerRef::Name(n) => format!("lb-name:{}:{n}", g.spec.account),
                LoadBalancerRef::Arn(a) => format!("lb-arn:{a}"),
            };
            let keys = [
                format!("vpc:{}", g.spec.vpc_id),
                lb,
                format!("api:{}:{}", g.spec.account, api_key(&g.spec.api.target)),
            ];
            for k in keys {
                match first.get(&k) {
                    Some(&j) => {
                        let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                        parent[a.max(b)] = a.min(b);
                    }
                    None => {
                        first.insert(k, i);
                    }
                }
            }
        }
        let mut groups: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for (i, g) in gws.iter().enumerate() {
            let root = find(&mut parent, i);
            groups.entry(root).or_default().push(g.metadata.name.clone());
        }
        let mut u = Units::default();
        u.units.insert(ORPHANS.to_string(), Vec::new());
        for mut names in groups.into_values() {
            names.sort();
            let unit = names[0].clone();
            for n in &names {
                u.gateway_unit.insert(n.clone(), unit.clone());
            }
            u.units.insert(unit, names);
        }
        for l in &desired.links {
            u.link_gateway.entry(l.metadata.name.clone()).or_insert_with(|| l.spec.gateway.clone());
        }
        for c in &desired.consumers {
            if let Some(unit) = c.spec.gateways.iter().find_map(|g| u.gateway_unit.get(g)) {
                u.consumer_unit.entry(c.metadata.name.clone()).or_insert_with(|| unit.clone());
            }
        }
        for g in gws {
            let unit = u.gateway_unit[&g.metadata.name].clone();
            u.by_vpc.insert(g.spec.vpc_id.clone(), unit.clone());
            u.by_api.insert((g.spec.account.clone(), api_key(&g.spec.api.target)), unit);
        }
        u
    }

    pub fn names(&self) -> BTreeSet<String> {
        self.units.keys().cloned().collect()
    }

    pub fn of_gateway(&self, gateway: &str) -> Option<&str> {
        self.gateway_unit.get(gateway).map(String::as_str)
    }

    /// The accounts a replica holding `owned` must observe: those of its gateways and of their
    /// links' services; all of them for the orphans unit (removed things can be anywhere).
    pub fn accounts(&self, desired: &DesiredState, owned: &BTreeSet<String>) -> BTreeSet<String> {
        if owned.contains(ORPHANS) {
            return desired.accounts.iter().map(|a| a.metadata.name.clone()).collect();
        }
        let mut out = BTreeSet::new();
        let ix = desired.index();
        for g in &desired.gateways {
            if self.of_gateway(&g.metadata.name).is_some_and(|u| owned.contains(u)) {
                out.insert(g.spec.account.clone());
                out.extend(ix.links_of(&g.metadata.name).iter().map(|l| l.spec.service.account.clone()));
            }
        }
        out
    }

    /// The unit a subject's status belongs to (for subjects still in the desired state the
    /// units were made of).
    pub fn of_subject(&self, s: &Subject) -> Option<&str> {
        match s {
            Subject::Gateway(g) => self.of_gateway(g),
            Subject::Link(l) => self.link_gateway.get(l).and_then(|g| self.of_gateway(g)),
            Subject::Peering(vpc, _) => self.by_vpc.get(vpc).map(String::as_str),
            Subject::Consumer(c) => self.consumer_unit.get(c).map(String::as_str),
        }
    }

    /// The unit an action belongs to: its subject's, or for a removed owner, the unit of the
    /// object the call changes (see the module documentation).
    ///
    /// The object comes first: a link that moved to another gateway has its old listener
    /// removed by the unit of the load balancer it is on, not by the link's new unit.
    pub fn of_action(&self, observed: &Observed, a: &Action) -> String {
        let state = match observed.accounts.get(&a.account) {
            Some(AccountObservation::Ok(s)) => Some(s.as_ref()),
            _ => None,
        };
        state
            .and_then(|st| self.anchored(&a.account, st, observed, &a.op))
            .or_else(|| self.of_subject(&a.subject).map(str::to_string))
            .unwrap_or_else(|| ORPHANS.to_string())
    }

    fn vpc_unit(&self, vpc: &str) -> Option<String> {
        self.by_vpc.get(vpc).cloned()
    }

    /// The unit of a peering's gateway (requester) VPC, wherever the peering was observed.
    fn peering_unit(&self, observed: &Observed, id: &str) -> Option<String> {
        observed.accounts.values().find_map(|o| match o {
            AccountObservation::Ok(s) => s.peering(id).and_then(|p| self.vpc_unit(&p.requester_vpc)),
            _ => None,
        })
    }

    fn elb_unit(&self, st: &AccountState, arn: &str) -> Option<String> {
        if let Some(lb) = st.load_balancer(arn) {
            return self.vpc_unit(&lb.vpc_id);
        }
        if let Some(tg) = st.target_groups.iter().find(|t| t.arn == arn) {
            return self.vpc_unit(&tg.vpc_id);
        }
        let l = st.listeners.iter().find(|l| l.arn == arn)?;
        st.load_balancer(&l.load_balancer_arn).and_then(|lb| self.vpc_unit(&lb.vpc_id))
    }

    fn api_unit(&self, account: &str, st: &AccountState, id: &str) -> Option<String> {
        if let Some(u) = self.by_api.get(&(account.to_string(), format!("id:{id}"))) {
            return Some(u.clone());
        }
        let api = st.rest_apis.iter().find(|a| a.id == id)?;
        self.by_api.get(&(account.to_string(), format!("name:{}", api.name))).cloned()
    }

    fn anchored(&self, account: &str, st: &AccountState, observed: &Observed, op: &Op) -> Option<String> {
        let known = |r: &Ref| r.known().map(str::to_string);
        match op {
            Op::TargetGroup(TargetGroupOp::CreateTargetGroup { vpc_id, .. }) => self.vpc_unit(vpc_id),
            Op::TargetGroup(TargetGroupOp::DeleteTargetGroup { arn })
            | Op::TargetGroup(TargetGroupOp::ModifyTargetGroup { arn, .. })
            | Op::Listener(ListenerOp::DeleteListener { arn })
            | Op::Listener(ListenerOp::ModifyListener { arn, .. })
            | Op::LoadBalancer(LoadBalancerOp::DeleteLoadBalancer { arn })
            | Op::LoadBalancer(LoadBalancerOp::AddElbTags { arn, .. })
            | Op::LoadBalancer(LoadBalancerOp::RemoveElbTags { arn, .. })
            | Op::Targets(TargetsOp::DeregisterTargets { target_group_arn: arn, .. }) => self.elb_unit(st, arn),
            Op::Targets(TargetsOp::RegisterTargets { target_group_arn: r, .. })
            | Op::Listener(ListenerOp::CreateListener { load_balancer_arn: r, .. })
            | Op::VpcLink(VpcLinkOp::CreateVpcLink { load_balancer_arn: r, .. }) => {
                known(r).and_then(|arn| self.elb_unit(st, &arn))
            }
            Op::VpcLink(VpcLinkOp::DeleteVpcLink { id })
            | Op::VpcLink(VpcLinkOp::TagVpcLink { id, .. })
            | Op::VpcLink(VpcLinkOp::UntagVpcLink { id, .. }) => {
                let link = st.vpc_links.iter().find(|v| &v.id == id)?;
                link.target_arns.iter().find_map(|arn| self.elb_unit(st, arn))
            }
            Op::RestApi(RestApiOp::DeleteRestApi { id })
            | Op::RestApi(RestApiOp::TagRestApi { id, .. })
            | Op::RestApi(RestApiOp::UntagRestApi { id, .. }) => self.api_unit(account, st, id),
            Op::ApiResource(ApiResourceOp::DeleteResource { rest_api_id, .. })
            | Op::Method(MethodOp::DeleteMethod { rest_api_id, .. })
            | Op::Authorizer(AuthorizerOp::UpdateAuthorizer { rest_api_id, .. })
            | Op::Authorizer(AuthorizerOp::DeleteAuthorizer { rest_api_id, .. }) => {
                self.api_unit(account, st, rest_api_id)
            }
            Op::Authorizer(AuthorizerOp::CreateAuthorizer { rest_api_id: r, .. })
            | Op::ApiResource(ApiResourceOp::CreateResource { rest_api_id: r, .. })
            | Op::Method(MethodOp::PutProxyMethod { rest_api_id: r, .. })
            | Op::Stage(StageOp::CreateDeployment { rest_api_id: r, .. })
            | Op::Stage(StageOp::UpdateStage { rest_api_id: r, .. })
            | Op::ResourcePolicy(ResourcePolicyOp::PutRestApiPolicy { rest_api_id: r, .. })
            | Op::WebAcl(WebAclOp::AssociateWebAcl { rest_api_id: r, .. })
            | Op::WebAcl(WebAclOp::DisassociateWebAcl { rest_api_id: r, .. }) => {
                known(r).and_then(|id| self.api_unit(account, st, &id))
            }
            Op::Peering(PeeringOp::CreateEc2Tags { resource_id: id, .. })
            | Op::Peering(PeeringOp::DeleteEc2Tags { resource_id: id, .. })
            | Op::Peering(PeeringOp::DeleteVpcPeeringConnection { peering_id: id }) => self.peering_unit(observed, id),
            Op::Peering(PeeringOp::SetPeeringDnsResolution { peering_id: r, .. }) => {
                known(r).and_then(|id| self.peering_unit(observed, &id))
            }
            Op::Peering(PeeringOp::CreateVpcPeeringConnection { vpc_id, .. }) => self.vpc_unit(vpc_id),
            Op::Route(RouteOp::DeleteRoute { route_table_id, destination }) => {
                let rt = st.route_tables.get(route_table_id)?;
                let route = rt.routes.iter().find(|r| r.destination == *destination)?;
                self.peering_unit(observed, route.peering_id.as_ref()?)
            }
            Op::Peering(PeeringOp::AcceptVpcPeeringConnection { .. })
            | Op::Route(RouteOp::CreateRoute { .. })
            | Op::Route(RouteOp::ReplaceRoute { .. })
            | Op::LoadBalancer(LoadBalancerOp::CreateLoadBalancer { .. })
            | Op::RestApi(RestApiOp::CreateRestApi { .. }) => None,
            // A custom domain and its mapping: the gateway's (subject's) unit; a removed
            // gateway's domain: the orphans'.
            Op::DomainName(_) | Op::BasePathMapping(_) => None,
            // A consumer's usage plan and keys are its own: its subject's unit.
            Op::UsagePlan(_) | Op::ApiKey(_) => None,
            // A link's privateLink transport is the link's: its subject's unit (a removed link's:
            // the orphans').
            Op::EndpointService(_) | Op::SecurityGroup(_) | Op::Endpoint(_) => None,
        }
    }
}

/// The part of a plan that `owned` units may carry out: their actions, except those that
/// depend on an action of another unit (they wait for it to happen there), and their reports.
/// `unit_of[i]` is the unit of `plan.actions[i]`. Ids and dependencies are renumbered; the
/// units of the kept actions come back with them, in the same order.
pub fn scoped(
    plan: &Plan,
    unit_of: &[String],
    owned: &BTreeSet<String>,
    report_unit: impl Fn(&Subject) -> String,
) -> (Plan, Vec<String>) {
    let n = plan.actions.len();
    let mut keep: Vec<bool> = (0..n).map(|i| owned.contains(&unit_of[i])).collect();
    let mut changed = true;
    while changed {
        changed = false;
        for a in &plan.actions {
            if keep[a.id] && a.deps.iter().any(|d| !keep[*d]) {
                keep[a.id] = false;
                changed = true;
            }
        }
    }
    let mut new_id = vec![usize::MAX; n];
    let mut actions = Vec::new();
    let mut units = Vec::new();
    for a in &plan.actions {
        if keep[a.id] {
            new_id[a.id] = actions.len();
            let mut b = (**a).clone();
            b.id = actions.len();
            actions.push(std::sync::Arc::new(b));
            units.push(unit_of[a.id].clone());
        }
    }
    for b in &mut actions {
        let b = std::sync::Arc::make_mut(b);
        b.deps = b.deps.iter().map(|d| new_id[*d]).collect();
    }
    let reports = plan
        .reports
        .iter()
        .filter(|(s, _)| owned.contains(&report_unit(s)))
        .map(|(s, r)| (s.clone(), r.clone()))
        .collect();
    let mut scoped = Plan {
        actions,
        reports,
        fills: plan.fills.clone(),
        weakening: plan.weakening.clone(),
        replacing: plan.replacing.clone(),
    };
    scoped.renumber_made_by(&new_id);
    (scoped, units)
}

#[cfg(test)]
mod tests {
    use crate::kinds::{ListenerOp, LoadBalancerOp, RestApiOp, TargetGroupOp, VpcLinkOp};
    use std::path::Path;

    use super::*;
    use crate::model::{Reason, Report, Verb};
    use crate::observed::{Listener, LoadBalancer, Tags};

    const YAML: &str = r#"
apiVersion: crosslink.dev/v1alpha1
kind: Account
metadata: {name: shared}
spec: {accountId: "111111111111", region: eu-central-1, assumeRole: {roleArn: "arn:aws:iam::111111111111:role/x", externalId: ext}}
---
apiVersion: crosslink.dev/v1alpha1
kind: Account
metadata: {name: svc}
spec: {accountId: "222222222222", region: eu-central-1, assumeRole: {roleArn: "arn:aws:iam::222222222222:role/x", externalId: ext}}
---
apiVersion: crosslink.dev/v1alpha1
kind: Account
metadata: {name: other}
spec: {accountId: "333333333333", region: eu-central-1, assumeRole: {roleArn: "arn:aws:iam::333333333333:role/x", externalId: ext}}
---
apiVersion: crosslink.dev/v1alpha1
kind: Gateway
metadata: {name: beta}
spec: {account: shared, vpcId: vpc-0000000000000000a, subnetIds: [subnet-00000001], routeTableIds: [rtb-00000001], loadBalancer: {name: beta-nlb}, api: {name: beta-api, stage: v1}}
---
apiVersion: crosslink.dev/v1alpha1
kind: Gateway
metadata: {name: alpha}
spec: {account: shared, vpcId: vpc-0000000000000000a, subnetIds: [subnet-00000001], routeTableIds: [rtb-00000001], loadBalancer: {name: alpha-nlb}, api: {name: alpha-api, stage: v1}}
---
apiVersion: crosslink.dev/v1alpha1
kind: Gateway
metadata: {name: gamma}
spec: {account: shared, vpcId: vpc-0000000000000000c, subnetIds: [subnet-00000003], routeTableIds: [rtb-00000003], loadBalancer: {name: gamma-nlb}, api: {name: gamma-api, stage: v1}}
---
apiVersion: crosslink.dev/v1alpha1
kind: Link
metadata: {name: pay}
spec: {gateway: gamma, service: {account: svc, vpcId: vpc-0000000000000000d, routeTableIds: [rtb-00000009]}, targets: [{ip: 10.9.1.1, port: 80}], listenerPort: 9001, routes: [{path: /pay}]}
"#;

    fn desired() -> DesiredState {
        crosslink_desired::load_str(Path::new("u.yaml"), YAML).unwrap()
    }

    fn action(id: usize, subject: Subject, op: Op, deps: Vec<usize>) -> Action {
        Action {
            id,
            subject,
            account: "shared".into(),
            resource: format!("r{id}"),
            verb: Verb::Delete,
            reason: Reason::NoLongerDesired,
            op,
            deps,
        }
    }

    /// gamma's NLB with a listener of a removed link, and a removed gateway's NLB in a VPC no
    /// gateway uses.
    fn observed() -> Observed {
        let lb = |arn: &str, name: &str, vpc: &str| LoadBalancer {
            arn: arn.into(),
            name: name.into(),
            dns_name: String::new(),
            vpc_id: vpc.into(),
            kind: "network".into(),
            internal: true,
            state: "active".into(),
            subnet_ids: vec![],
            tags: Tags::new(),
        };
        let st = AccountState {
            load_balancers: vec![
                lb("arn:lb/gamma", "gamma-nlb", "vpc-0000000000000000c"),
                lb("arn:lb/old", "old-nlb", "vpc-00000000000000077"),
            ],
            listeners: vec![Listener {
                arn: "arn:listener/gamma/1".into(),
                load_balancer_arn: "arn:lb/gamma".into(),
                port: 9002,
                protocol: "TCP".into(),
                target_group_arn: None,
                certificate_arn: None,
                ssl_policy: None,
                tags: Tags::new(),
            }],
            ..Default::default()
        };
        Observed { accounts: BTreeMap::from([("shared".into(), AccountObservation::Ok(Box::new(st)))]) }
    }

    #[test]
    fn gateways_sharing_a_vpc_are_one_unit_named_after_the_first() {
        let d = desired();
        let u = Units::of(&d);
        assert_eq!(
            u.units,
            BTreeMap::from([
                (ORPHANS.to_string(), vec![]),
                ("alpha".to_string(), vec!["alpha".to_string(), "beta".to_string()]),
                ("gamma".to_string(), vec!["gamma".to_string()]),
            ])
        );
        assert_eq!(u.of_gateway("beta"), Some("alpha"));
        assert_eq!(u.of_subject(&Subject::Link("pay".into())), Some("gamma"));
        assert_eq!(u.of_subject(&Subject::Peering("vpc-0000000000000000c".into(), "x".into())), Some("gamma"));
        assert_eq!(u.of_subject(&Subject::Link("gone".into())), None);
    }

    #[test]
    fn a_replica_observes_only_the_accounts_of_its_units() {
        let d = desired();
        let u = Units::of(&d);
        let only = |units: &[&str]| u.accounts(&d, &units.iter().map(|s| s.to_string()).collect());
        assert_eq!(only(&["alpha"]), BTreeSet::from(["shared".to_string()]));
        assert_eq!(only(&["gamma"]), BTreeSet::from(["shared".to_string(), "svc".to_string()]));
        assert_eq!(only(&[ORPHANS]).len(), 3, "the orphans unit looks everywhere");
        assert!(only(&[]).is_empty());
    }

    #[test]
    fn removed_things_belong_to_the_unit_of_the_object_they_sit_on() {
        let d = desired();
        let o = observed();
        let u = Units::of(&d);
        // A removed link's listener on gamma's NLB: gamma's, not the orphans'.
        let a = action(
            0,
            Subject::Link("gone".into()),
            Op::Listener(ListenerOp::DeleteListener { arn: "arn:listener/gamma/1".into() }),
            vec![],
        );
        assert_eq!(u.of_action(&o, &a), "gamma");
        // A removed gateway's NLB in a VPC no gateway uses: the orphans'.
        let b = action(
            1,
            Subject::Gateway("old".into()),
            Op::LoadBalancer(LoadBalancerOp::DeleteLoadBalancer { arn: "arn:lb/old".into() }),
            vec![],
        );
        assert_eq!(u.of_action(&o, &b), ORPHANS);
        // A desired link's target group: its gateway's unit, from the VPC it is created in.
        let c = action(
            2,
            Subject::Link("pay".into()),
            Op::TargetGroup(TargetGroupOp::DeleteTargetGroup { arn: "arn:tg/unknown".into() }),
            vec![],
        );
        assert_eq!(u.of_action(&o, &c), "gamma");
    }

    #[test]
    fn a_replica_keeps_its_units_actions_except_those_waiting_on_another_unit() {
        let a = action(
            0,
            Subject::Gateway("gamma".into()),
            Op::VpcLink(VpcLinkOp::DeleteVpcLink { id: "v".into() }),
            vec![],
        );
        let b = action(
            1,
            Subject::Gateway("alpha".into()),
            Op::VpcLink(VpcLinkOp::DeleteVpcLink { id: "w".into() }),
            vec![],
        );
        let c = action(
            2,
            Subject::Gateway("gamma".into()),
            Op::RestApi(RestApiOp::DeleteRestApi { id: "x".into() }),
            vec![0],
        );
        let d = action(
            3,
            Subject::Gateway("gamma".into()),
            Op::RestApi(RestApiOp::DeleteRestApi { id: "y".into() }),
            vec![1],
        );
        let e = action(
            4,
            Subject::Gateway("gamma".into()),
            Op::RestApi(RestApiOp::DeleteRestApi { id: "z".into() }),
            vec![3],
        );
        let plan = Plan {
            actions: [a, b, c, d, e].into_iter().map(std::sync::Arc::new).collect(),
            reports: BTreeMap::from([
                (Subject::Gateway("gamma".into()), Report::default()),
                (Subject::Gateway("alpha".into()), Report::default()),
            ]),
            ..Plan::default()
        };
        let unit_of: Vec<String> =
            ["gamma", "alpha", "gamma", "gamma", "gamma"].iter().map(|s| s.to_string()).collect();
        let owned = BTreeSet::from(["gamma".to_string()]);
        let (mine, units) = scoped(&plan, &unit_of, &owned, |s| match s {
            Subject::Gateway(g) if g == "beta" || g == "alpha" => "alpha".into(),
            _ => "gamma".into(),
        });
        // d waits for alpha's action, e for d: only a and c stay, renumbered.
        let kept: Vec<(&str, Vec<usize>)> =
            mine.actions.iter().map(|a| (a.resource.as_str(), a.deps.clone())).collect();
        assert_eq!(kept, vec![("r0", vec![]), ("r2", vec![0])]);
        assert_eq!(mine.actions.iter().map(|a| a.id).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(units, vec!["gamma".to_string(), "gamma".to_string()]);
        assert_eq!(mine.reports.keys().collect::<Vec<_>>(), vec![&Subject::Gateway("gamma".into())]);
    }
}
