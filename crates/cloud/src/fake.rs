//! An in-memory AWS for tests: several accounts, each with VPCs, peerings, route tables, load
//! balancers, target groups, VPC links and REST APIs, behaving like AWS where crosslink depends
//! on it (ids, cross-account peering, in-use errors, name collisions, idempotent NLB and target
//! group creates), and asynchronous where AWS is:
//!
//! - read lag (eventual consistency): what is created stays invisible for a few reads;
//! - fates: the next peering ends `failed` / `rejected` / `expired`, the next VPC link `FAILED`;
//! - new VPC links start in a chosen status (AWS: `PENDING` for minutes; moto: `AVAILABLE`).
//!
//! Scripted faults (throttling, 5xx, timeouts, lost answers, chaos, broken accounts) are not
//! AWS's behaviour: they wrap this or any other [`Cloud`] in [`crate::faults::Faulty`].

use std::collections::{BTreeMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::Mutex;

use crosslink_desired::Account;
use crosslink_plan::observed::*;
use crosslink_plan::op::{Op, Ref};
use ipnet::Ipv4Net;

use crate::{Cloud, CloudError, ErrorKind, ObserveScope, Outcome};

#[derive(Debug, Default)]
struct AccountWorld {
    region: String,
    vpcs: BTreeMap<String, Vpc>,
    subnets: BTreeMap<String, String>,
    route_tables: BTreeMap<String, RouteTable>,
    load_balancers: Vec<LoadBalancer>,
    listeners: Vec<Listener>,
    target_groups: Vec<TargetGroup>,
    vpc_links: Vec<VpcLink>,
    rest_apis: Vec<RestApi>,
}

#[derive(Debug, Default)]
struct World {
    accounts: BTreeMap<String, AccountWorld>,
    peerings: Vec<Peering>,
    next: u64,
    /// Status given to new VPC links (AWS: PENDING for minutes; moto: AVAILABLE).
    new_vpc_link_status: String,
    calls: Vec<(String, String)>,
    /// Reads a new resource stays invisible for.
    read_lag: u32,
    /// (account id, resource id) -> reads of that account it is still invisible for.
    hidden: BTreeMap<(String, String), u32>,
    /// Ids answered by creates while read lag was on.
    created: std::collections::BTreeSet<String>,
    /// The status the next created peerings end in (failed, rejected, expired).
    peering_fates: VecDeque<PeeringStatus>,
    /// The status (and message) the next created VPC links end in.
    vpc_link_fates: VecDeque<(String, String)>,
    /// Target groups whose targets an observation did not read (the engine knew them).
    target_reads_skipped: u64,
    /// Observations per account id (through `Cloud::observe`).
    observations: BTreeMap<String, u64>,
    /// Calls from the accepter a new peering stays unknown to (see `set_accepter_lag`).
    accepter_lag: u32,
    /// Peering id -> the accepter's AcceptVpcPeeringConnection calls still answered NotFound.
    unseen_by_accepter: BTreeMap<String, u32>,
}

/// The fake. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct FakeAws {
    world: Mutex<World>,
}

impl Default for FakeAws {
    fn default() -> Self {
        Self::new()
    }
}

fn err(kind: ErrorKind, code: &str, message: impl Into<String>) -> CloudError {
    CloudError::new(kind, code, message)
}

fn not_found(code: &str, id: &str) -> CloudError {
    err(ErrorKind::NotFound, code, format!("{id} does not exist"))
}

fn known(r: &Ref) -> Result<&str, CloudError> {
    r.known().ok_or_else(|| err(ErrorKind::Permanent, "ValidationError", format!("unresolved reference {r}")))
}

impl FakeAws {
    pub fn new() -> Self {
        FakeAws { world: Mutex::new(World { new_vpc_link_status: "AVAILABLE".into(), ..World::default() }) }
    }

    /// Eventual consistency: a resource created from now on stays out of the next `reads`
    /// reads of each account that would see it.
    pub fn set_read_lag(&self, reads: u32) {
        self.lock().read_lag = reads;
    }

    /// Eventual consistency across accounts: a peering created from now on is unknown to the
    /// accepter's first `calls` AcceptVpcPeeringConnection calls, which answer
    /// `InvalidVpcPeeringConnectionID.NotFound` (AWS, right after the request is made).
    pub fn set_accepter_lag(&self, calls: u32) {
        self.lock().accepter_lag = calls;
    }

    /// The next created peering ends in `status` (AWS: `failed` at once when it cannot be
    /// made, `rejected` by the accepter, `expired` after a week unanswered).
    pub fn push_peering_fate(&self, status: PeeringStatus) {
        self.lock().peering_fates.push_back(status);
    }

    /// The next created VPC link ends in `status` (e.g. `FAILED`) with this message.
    pub fn push_vpc_link_fate(&self, status: &str, message: &str) {
        self.lock().vpc_link_fates.push_back((status.into(), message.into()));
    }

    /// How many target groups' targets observations left out because the engine knew them
    /// (`ObserveScope::known_targets`): each is one `DescribeTargetHealth` not sent.
    pub fn target_reads_skipped(&self) -> u64 {
        self.lock().target_reads_skipped
    }

    /// How many times the engine read the account (`Cloud::observe`), per account id.
    pub fn observations(&self) -> BTreeMap<String, u64> {
        self.lock().observations.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates a VPC with one subnet per `subnets` and one route table; returns (subnets, rtb).
    pub fn seed_vpc(&self, account: &str, region: &str, vpc_id: &str, cidr: &str, subnet_ids: &[&str], rtb: &str) {
        let mut w = self.lock();
        let a = w.accounts.entry(account.to_string()).or_default();
        a.region = region.to_string();
        a.vpcs.insert(vpc_id.into(), Vpc { id: vpc_id.into(), cidrs: vec![cidr.parse().expect("cidr")] });
        for s in subnet_ids {
            a.subnets.insert(s.to_string(), vpc_id.into());
        }
        a.route_tables.insert(rtb.into(), RouteTable { id: rtb.into(), vpc_id: vpc_id.into(), routes: vec![] });
    }

    pub fn add_route_table(&self, account: &str, vpc_id: &str, rtb: &str) {
        let mut w = self.lock();
        let a = w.accounts.entry(account.to_string()).or_default();
        a.route_tables.insert(rtb.into(), RouteTable { id: rtb.into(), vpc_id: vpc_id.into(), routes: vec![] });
    }

    pub fn set_new_vpc_link_status(&self, status: &str) {
        self.lock().new_vpc_link_status = status.into();
    }

    /// Sets the status of every VPC link (e.g. PENDING -> AVAILABLE, as AWS does after minutes).
    pub fn set_vpc_link_status(&self, status: &str) {
        let mut w = self.lock();
        for a in w.accounts.values_mut() {
            for v in &mut a.vpc_links {
                v.status = status.into();
            }
        }
    }

    /// Listener ports in an account, for assertions.
    pub fn observe_account_listeners(&self, account: &str) -> Vec<u16> {
        self.lock().accounts.get(account).map(|a| a.listeners.iter().map(|x| x.port).collect()).unwrap_or_default()
    }

    /// Whether every route table of an account is empty, for assertions.
    pub fn observe_route_tables_empty(&self, account: &str) -> bool {
        self.lock().accounts.get(account).is_none_or(|a| a.route_tables.values().all(|t| t.routes.is_empty()))
    }

    /// The mutating calls made so far: (account id, operation name).
    pub fn calls(&self) -> Vec<(String, String)> {
        self.lock().calls.clone()
    }

    /// Direct access for tests that inject drift out of band.
    pub fn with_account<R>(&self, account: &str, f: impl FnOnce(&mut AccountState) -> R) -> R {
        let mut w = self.lock();
        let peerings = w.peerings.clone();
        let a = w.accounts.entry(account.to_string()).or_default();
        let mut st = snapshot(account, a, &peerings);
        let r = f(&mut st);
        a.vpcs = st.vpcs;
        a.route_tables = st.route_tables;
        a.load_balancers = st.load_balancers;
        a.listeners = st.listeners;
        a.target_groups = st.target_groups;
        a.vpc_links = st.vpc_links;
        a.rest_apis = st.rest_apis;
        for p in st.peerings {
            if let Some(x) = w.peerings.iter_mut().find(|x| x.id == p.id) {
                *x = p;
            }
        }
        r
    }

    /// Reads an account as the AWS adapter would, with no read lag (for assertions).
    pub fn observe_account(&self, account_id: &str) -> AccountObservation {
        let w = self.lock();
        match w.accounts.get(account_id) {
            Some(a) => AccountObservation::Ok(Box::new(snapshot(account_id, a, &w.peerings))),
            None => {
                AccountObservation::Ok(Box::new(AccountState { account_id: account_id.into(), ..Default::default() }))
            }
        }
    }

    /// Performs an operation synchronously, as AWS would.
    pub fn apply(&self, account_id: &str, op: &Op) -> Result<Outcome, CloudError> {
        let mut w = self.lock();
        w.calls.push((account_id.to_string(), op.name().to_string()));
        let r = w.apply(account_id, op);
        // Only what is new is hidden: an idempotent create answers with what exists.
        if let Ok(Outcome { created: Some(id), .. }) = &r
            && w.read_lag > 0
            && w.created.insert(id.clone())
        {
            let lag = w.read_lag;
            w.hidden.insert((account_id.to_string(), id.clone()), lag);
            if let Op::CreateVpcPeeringConnection { peer_owner_id, .. } = op {
                w.hidden.insert((peer_owner_id.clone(), id.clone()), lag);
            }
        }
        r
    }

    /// Reads an account as the engine does: what is still hidden by read lag is left out.
    pub fn observe_lagging(&self, account_id: &str) -> AccountObservation {
        let mut w = self.lock();
        let mut obs = match w.accounts.get(account_id) {
            Some(a) => snapshot(account_id, a, &w.peerings),
            None => AccountState { account_id: account_id.into(), ..Default::default() },
        };
        let hidden: Vec<String> = w.hidden.keys().filter(|(a, _)| a == account_id).map(|(_, id)| id.clone()).collect();
        if !hidden.is_empty() {
            let gone = |id: &String| hidden.contains(id);
            obs.peerings.retain(|x| !gone(&x.id));
            obs.load_balancers.retain(|x| !gone(&x.arn));
            obs.listeners.retain(|x| !gone(&x.arn));
            obs.target_groups.retain(|x| !gone(&x.arn));
            obs.vpc_links.retain(|x| !gone(&x.id));
            obs.rest_apis.retain(|x| !gone(&x.id));
            for api in &mut obs.rest_apis {
                api.resources.retain(|r| !gone(&r.id));
            }
            for id in hidden {
                let key = (account_id.to_string(), id);
                if let Some(n) = w.hidden.get_mut(&key) {
                    *n -= 1;
                    if *n == 0 {
                        w.hidden.remove(&key);
                    }
                }
            }
        }
        AccountObservation::Ok(Box::new(obs))
    }
}

fn snapshot(account_id: &str, a: &AccountWorld, peerings: &[Peering]) -> AccountState {
    AccountState {
        account_id: account_id.into(),
        region: a.region.clone(),
        vpcs: a.vpcs.clone(),
        peerings: peerings
            .iter()
            .filter(|p| p.requester_account == account_id || p.accepter_account == account_id)
            .cloned()
            .collect(),
        route_tables: a.route_tables.clone(),
        load_balancers: a.load_balancers.clone(),
        listeners: a.listeners.clone(),
        target_groups: a.target_groups.clone(),
        vpc_links: a.vpc_links.clone(),
        rest_apis: a.rest_apis.clone(),
    }
}

impl World {
    fn id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{:017x}", self.next)
    }

    fn short_id(&mut self) -> String {
        self.next += 1;
        format!("{:010x}", self.next)
    }

    fn acct(&mut self, id: &str) -> &mut AccountWorld {
        self.accounts.entry(id.to_string()).or_default()
    }

    fn apply(&mut self, me: &str, op: &Op) -> Result<Outcome, CloudError> {
        let created = |s: String| Ok(Outcome::created(s));
        let done = Ok(Outcome::default());
        match op {
            Op::CreateVpcPeeringConnection { vpc_id, peer_vpc_id, peer_owner_id, tags, .. } => {
                if !self.acct(me).vpcs.contains_key(vpc_id) {
                    return Err(not_found("InvalidVpcID.NotFound", vpc_id));
                }
                if !self.acct(peer_owner_id).vpcs.contains_key(peer_vpc_id) {
                    return Err(not_found("InvalidVpcID.NotFound", peer_vpc_id));
                }
                let id = self.id("pcx-");
                let status = self.peering_fates.pop_front().unwrap_or(PeeringStatus::PendingAcceptance);
                self.peerings.push(Peering {
                    id: id.clone(),
                    requester_vpc: vpc_id.clone(),
                    requester_account: me.into(),
                    accepter_vpc: peer_vpc_id.clone(),
                    accepter_account: peer_owner_id.clone(),
                    status,
                    tags: tags.clone(),
                    accepter_dns_resolution: false,
                });
                if self.accepter_lag > 0 {
                    self.unseen_by_accepter.insert(id.clone(), self.accepter_lag);
                }
                Ok(Outcome::created(id).in_state(status.as_str()))
            }
            Op::AcceptVpcPeeringConnection { peering_id } => {
                let id = known(peering_id)?;
                let p = self
                    .peerings
                    .iter_mut()
                    .find(|p| p.id == id)
                    .ok_or_else(|| not_found("InvalidVpcPeeringConnectionID.NotFound", id))?;
                if p.accepter_account == me
                    && let Some(n) = self.unseen_by_accepter.get_mut(id)
                {
                    *n -= 1;
                    if *n == 0 {
                        self.unseen_by_accepter.remove(id);
                    }
                    return Err(not_found("InvalidVpcPeeringConnectionID.NotFound", id));
                }
                let p = self.peerings.iter_mut().find(|p| p.id == id).expect("found above");
                if p.accepter_account != me {
                    return Err(err(ErrorKind::Permanent, "OperationNotPermitted", "only the accepter can accept"));
                }
                if p.status != PeeringStatus::PendingAcceptance {
                    return Err(err(ErrorKind::Conflict, "InvalidStateTransition", format!("{id} is {:?}", p.status)));
                }
                p.status = PeeringStatus::Active;
                Ok(Outcome::default().in_state(PeeringStatus::Active.as_str()))
            }
            Op::SetPeeringDnsResolution { peering_id, allow } => {
                let peering_id = known(peering_id)?.to_string();
                let p = self
                    .peerings
                    .iter_mut()
                    .find(|p| p.id == peering_id && !p.status.is_dead())
                    .ok_or_else(|| not_found("InvalidVpcPeeringConnectionID.NotFound", &peering_id))?;
                if p.accepter_account != me {
                    return Err(err(
                        ErrorKind::Permanent,
                        "OperationNotPermitted",
                        "the accepter's options are the accepter's",
                    ));
                }
                if p.status != PeeringStatus::Active {
                    return Err(err(
                        ErrorKind::Conflict,
                        "InvalidStateTransition",
                        format!("{peering_id} is {:?}", p.status),
                    ));
                }
                p.accepter_dns_resolution = *allow;
                done
            }
            Op::DeleteVpcPeeringConnection { peering_id } => {
                let p = self
                    .peerings
                    .iter_mut()
                    .find(|p| &p.id == peering_id && !p.status.is_dead())
                    .ok_or_else(|| not_found("InvalidVpcPeeringConnectionID.NotFound", peering_id))?;
                p.status = PeeringStatus::Deleted;
                done
            }
            Op::CreateRoute { route_table_id, destination, peering_id } => {
                let pcx = known(peering_id)?.to_string();
                let t = self.table(me, route_table_id)?;
                if t.routes.iter().any(|r| r.destination == *destination) {
                    return Err(err(ErrorKind::Permanent, "RouteAlreadyExists", format!("{destination} exists")));
                }
                t.routes.push(Route {
                    destination: *destination,
                    peering_id: Some(pcx),
                    other_target: None,
                    blackhole: false,
                });
                done
            }
            Op::ReplaceRoute { route_table_id, destination, peering_id } => {
                let pcx = known(peering_id)?.to_string();
                let t = self.table(me, route_table_id)?;
                let r = t
                    .routes
                    .iter_mut()
                    .find(|r| r.destination == *destination)
                    .ok_or_else(|| not_found("InvalidRoute.NotFound", &destination.to_string()))?;
                *r = Route { destination: *destination, peering_id: Some(pcx), other_target: None, blackhole: false };
                done
            }
            Op::DeleteRoute { route_table_id, destination } => {
                let t = self.table(me, route_table_id)?;
                let before = t.routes.len();
                t.routes.retain(|r| r.destination != *destination);
                if t.routes.len() == before {
                    return Err(not_found("InvalidRoute.NotFound", &destination.to_string()));
                }
                done
            }
            Op::CreateLoadBalancer { name, subnet_ids, tags } => {
                let n = self.short_id();
                let a = self.acct(me);
                // AWS: creating a load balancer again with the same settings returns it.
                if let Some(l) = a.load_balancers.iter().find(|l| &l.name == name) {
                    if &l.subnet_ids == subnet_ids {
                        return Ok(Outcome {
                            dns_name: Some(l.dns_name.clone()),
                            ..Outcome::created(l.arn.clone()).in_state(l.state.clone())
                        });
                    }
                    return Err(err(ErrorKind::Permanent, "DuplicateLoadBalancerName", format!("{name} exists")));
                }
                let vpc = subnet_ids.first().and_then(|s| a.subnets.get(s)).cloned().ok_or_else(|| {
                    not_found("SubnetNotFound", subnet_ids.first().map(String::as_str).unwrap_or("-"))
                })?;
                let arn = format!("arn:aws:elasticloadbalancing:{}:{me}:loadbalancer/net/{name}/{n}", a.region);
                let dns_name = format!("{name}-{n}.elb.{}.amazonaws.com", a.region);
                a.load_balancers.push(LoadBalancer {
                    arn: arn.clone(),
                    name: name.clone(),
                    dns_name: dns_name.clone(),
                    vpc_id: vpc,
                    kind: "network".into(),
                    internal: true,
                    state: "active".into(),
                    subnet_ids: subnet_ids.clone(),
                    tags: tags.clone(),
                });
                Ok(Outcome { dns_name: Some(dns_name), ..Outcome::created(arn).in_state("active") })
            }
            Op::DeleteLoadBalancer { arn } => {
                let a = self.acct(me);
                if a.vpc_links.iter().any(|v| v.target_arns.contains(arn) && v.status != "DELETING") {
                    return Err(err(ErrorKind::Conflict, "ResourceInUse", "a VPC link uses the load balancer"));
                }
                let before = a.load_balancers.len();
                a.load_balancers.retain(|l| &l.arn != arn);
                if before == a.load_balancers.len() {
                    return Err(not_found("LoadBalancerNotFound", arn));
                }
                a.listeners.retain(|x| &x.load_balancer_arn != arn);
                done
            }
            Op::CreateTargetGroup { name, vpc_id, port, health_check, tags } => {
                let n = self.short_id();
                let a = self.acct(me);
                // AWS: creating a target group again with the same settings returns it.
                if let Some(t) = a.target_groups.iter().find(|t| &t.name == name) {
                    if &t.vpc_id == vpc_id && t.port == *port && &t.health_check == health_check {
                        return created(t.arn.clone());
                    }
                    return Err(err(ErrorKind::Permanent, "DuplicateTargetGroupName", format!("{name} exists")));
                }
                let arn = format!("arn:aws:elasticloadbalancing:{}:{me}:targetgroup/{name}/{n}", a.region);
                a.target_groups.push(TargetGroup {
                    arn: arn.clone(),
                    name: name.clone(),
                    vpc_id: vpc_id.clone(),
                    protocol: "TCP".into(),
                    port: *port,
                    target_type: "ip".into(),
                    health_check: health_check.clone(),
                    tags: tags.clone(),
                    targets: vec![],
                });
                created(arn)
            }
            Op::ModifyTargetGroup { arn, health_check } => {
                let tg = self.tg(me, arn)?;
                tg.health_check = health_check.clone();
                done
            }
            Op::DeleteTargetGroup { arn } => {
                let a = self.acct(me);
                if a.listeners.iter().any(|x| x.target_group_arn.as_ref() == Some(arn)) {
                    return Err(err(ErrorKind::Conflict, "ResourceInUse", "a listener uses the target group"));
                }
                let before = a.target_groups.len();
                a.target_groups.retain(|t| &t.arn != arn);
                if before == a.target_groups.len() {
                    return Err(not_found("TargetGroupNotFound", arn));
                }
                done
            }
            Op::RegisterTargets { target_group_arn, targets } => {
                let arn = known(target_group_arn)?.to_string();
                let tg = self.tg(me, &arn)?;
                for (ip, port) in targets {
                    if !tg.targets.iter().any(|t| t.ip == *ip && t.port == *port) {
                        tg.targets.push(target(*ip, *port));
                    }
                }
                done
            }
            Op::DeregisterTargets { target_group_arn, targets } => {
                let tg = self.tg(me, target_group_arn)?;
                tg.targets.retain(|t| !targets.contains(&(t.ip, t.port)));
                done
            }
            Op::CreateListener { load_balancer_arn, port, target_group_arn, tags } => {
                let (lb, tg) = (known(load_balancer_arn)?.to_string(), known(target_group_arn)?.to_string());
                let n = self.short_id();
                let a = self.acct(me);
                let Some(l) = a.load_balancers.iter().find(|l| l.arn == lb) else {
                    return Err(not_found("LoadBalancerNotFound", &lb));
                };
                // AWS: creating a listener again with the same settings returns it.
                if let Some(x) = a.listeners.iter().find(|x| x.load_balancer_arn == lb && x.port == *port) {
                    if x.target_group_arn.as_deref() == Some(tg.as_str()) {
                        return created(x.arn.clone());
                    }
                    return Err(err(ErrorKind::Permanent, "DuplicateListener", format!("port {port} is in use")));
                }
                if !a.target_groups.iter().any(|t| t.arn == tg) {
                    return Err(not_found("TargetGroupNotFound", &tg));
                }
                let arn = format!("{}/{n}", l.arn.replace(":loadbalancer/", ":listener/"));
                a.listeners.push(Listener {
                    arn: arn.clone(),
                    load_balancer_arn: lb,
                    port: *port,
                    protocol: "TCP".into(),
                    target_group_arn: Some(tg),
                    tags: tags.clone(),
                });
                created(arn)
            }
            Op::ModifyListener { arn, port, target_group_arn } => {
                let tg = known(target_group_arn)?.to_string();
                let a = self.acct(me);
                let lb = a.listeners.iter().find(|x| &x.arn == arn).map(|x| x.load_balancer_arn.clone());
                let Some(lb) = lb else { return Err(not_found("ListenerNotFound", arn)) };
                if a.listeners.iter().any(|x| x.load_balancer_arn == lb && x.port == *port && &x.arn != arn) {
                    return Err(err(ErrorKind::Permanent, "DuplicateListener", format!("port {port} is in use")));
                }
                let x = a.listeners.iter_mut().find(|x| &x.arn == arn).expect("found above");
                x.port = *port;
                x.target_group_arn = Some(tg);
                done
            }
            Op::DeleteListener { arn } => {
                let a = self.acct(me);
                let before = a.listeners.len();
                a.listeners.retain(|x| &x.arn != arn);
                if before == a.listeners.len() {
                    return Err(not_found("ListenerNotFound", arn));
                }
                done
            }
            Op::AddElbTags { arn, tags } => {
                let a = self.acct(me);
                let t = a
                    .load_balancers
                    .iter_mut()
                    .find(|x| &x.arn == arn)
                    .map(|x| &mut x.tags)
                    .or_else(|| a.target_groups.iter_mut().find(|x| &x.arn == arn).map(|x| &mut x.tags))
                    .or_else(|| a.listeners.iter_mut().find(|x| &x.arn == arn).map(|x| &mut x.tags))
                    .ok_or_else(|| not_found("LoadBalancerNotFound", arn))?;
                t.extend(tags.clone());
                done
            }
            Op::CreateEc2Tags { resource_id, tags } => {
                let p = self
                    .peerings
                    .iter_mut()
                    .find(|p| &p.id == resource_id)
                    .ok_or_else(|| not_found("InvalidVpcPeeringConnectionID.NotFound", resource_id))?;
                p.tags.extend(tags.clone());
                done
            }
            Op::CreateVpcLink { name, load_balancer_arn, tags } => {
                let lb = known(load_balancer_arn)?.to_string();
                let id = self.short_id();
                let (status, status_message) = match self.vpc_link_fates.pop_front() {
                    Some((status, message)) => (status, Some(message)),
                    None => (self.new_vpc_link_status.clone(), None),
                };
                self.acct(me).vpc_links.push(VpcLink {
                    id: id.clone(),
                    name: name.clone(),
                    target_arns: vec![lb],
                    status: status.clone(),
                    status_message,
                    tags: tags.clone(),
                });
                Ok(Outcome::created(id).in_state(status))
            }
            Op::DeleteVpcLink { id } => {
                let a = self.acct(me);
                let before = a.vpc_links.len();
                a.vpc_links.retain(|v| &v.id != id);
                if before == a.vpc_links.len() {
                    return Err(not_found("NotFoundException", id));
                }
                done
            }
            Op::CreateRestApi { name, tags } => {
                let id = self.short_id();
                let root = self.short_id();
                self.acct(me).rest_apis.push(RestApi {
                    id: id.clone(),
                    name: name.clone(),
                    tags: tags.clone(),
                    resources: vec![ApiResource {
                        id: root.clone(),
                        parent_id: None,
                        path: "/".into(),
                        methods: BTreeMap::new(),
                    }],
                    stages: vec![],
                });
                Ok(Outcome { root_resource_id: Some(root), ..Outcome::created(id) })
            }
            Op::DeleteRestApi { id } => {
                let a = self.acct(me);
                let before = a.rest_apis.len();
                a.rest_apis.retain(|x| &x.id != id);
                if before == a.rest_apis.len() {
                    return Err(not_found("NotFoundException", id));
                }
                done
            }
            Op::CreateResource { rest_api_id, parent_id, path_part, .. } => {
                let (api, parent) = (known(rest_api_id)?.to_string(), known(parent_id)?.to_string());
                let id = self.short_id();
                let api = self.api(me, &api)?;
                let parent_path = api
                    .resources
                    .iter()
                    .find(|r| r.id == parent)
                    .map(|r| r.path.clone())
                    .ok_or_else(|| not_found("NotFoundException", &parent))?;
                let path =
                    if parent_path == "/" { format!("/{path_part}") } else { format!("{parent_path}/{path_part}") };
                if api.resources.iter().any(|r| r.path == path) {
                    return Err(err(ErrorKind::Conflict, "ConflictException", format!("{path} exists")));
                }
                api.resources.push(ApiResource {
                    id: id.clone(),
                    parent_id: Some(parent),
                    path,
                    methods: BTreeMap::new(),
                });
                created(id)
            }
            Op::DeleteResource { rest_api_id, resource_id, .. } => {
                let api = self.api(me, rest_api_id)?;
                let path = api
                    .resources
                    .iter()
                    .find(|r| &r.id == resource_id)
                    .map(|r| r.path.clone())
                    .ok_or_else(|| not_found("NotFoundException", resource_id))?;
                api.resources.retain(|r| r.path != path && !r.path.starts_with(&format!("{path}/")));
                done
            }
            Op::PutProxyMethod { rest_api_id, resource_id, http_method, uri, vpc_link_id, .. } => {
                let (api, res, link) =
                    (known(rest_api_id)?.to_string(), known(resource_id)?.to_string(), known(vpc_link_id)?.to_string());
                let api = self.api(me, &api)?;
                let r = api
                    .resources
                    .iter_mut()
                    .find(|r| r.id == res)
                    .ok_or_else(|| not_found("NotFoundException", &res))?;
                r.methods.insert(
                    http_method.clone(),
                    ApiMethod {
                        authorization_type: "NONE".into(),
                        integration: Some(Integration {
                            kind: "HTTP_PROXY".into(),
                            http_method: Some(http_method.clone()),
                            uri: Some(uri.clone()),
                            connection_type: Some("VPC_LINK".into()),
                            connection_id: Some(link),
                        }),
                    },
                );
                done
            }
            Op::DeleteMethod { rest_api_id, resource_id, http_method, .. } => {
                let api = self.api(me, rest_api_id)?;
                let r = api
                    .resources
                    .iter_mut()
                    .find(|r| &r.id == resource_id)
                    .ok_or_else(|| not_found("NotFoundException", resource_id))?;
                r.methods.remove(http_method).ok_or_else(|| not_found("NotFoundException", http_method))?;
                done
            }
            Op::CreateDeployment { rest_api_id, stage, stage_tags, .. } => {
                let api = known(rest_api_id)?.to_string();
                let dep = self.short_id();
                let api = self.api(me, &api)?;
                if api.resources.iter().all(|r| r.methods.is_empty()) {
                    return Err(err(
                        ErrorKind::Permanent,
                        "BadRequestException",
                        "The REST API doesn't contain any methods",
                    ));
                }
                match api.stages.iter_mut().find(|s| &s.name == stage) {
                    Some(s) => {
                        s.deployment_id = Some(dep.clone());
                        s.tags.extend(stage_tags.clone());
                    }
                    None => api.stages.push(Stage {
                        name: stage.clone(),
                        deployment_id: Some(dep.clone()),
                        tags: stage_tags.clone(),
                    }),
                }
                created(dep)
            }
        }
    }

    fn table(&mut self, me: &str, id: &str) -> Result<&mut RouteTable, CloudError> {
        self.acct(me).route_tables.get_mut(id).ok_or_else(|| not_found("InvalidRouteTableID.NotFound", id))
    }

    fn tg(&mut self, me: &str, arn: &str) -> Result<&mut TargetGroup, CloudError> {
        self.acct(me)
            .target_groups
            .iter_mut()
            .find(|t| t.arn == arn)
            .ok_or_else(|| not_found("TargetGroupNotFound", arn))
    }

    fn api(&mut self, me: &str, id: &str) -> Result<&mut RestApi, CloudError> {
        self.acct(me).rest_apis.iter_mut().find(|a| a.id == id).ok_or_else(|| not_found("NotFoundException", id))
    }
}

fn target(ip: Ipv4Addr, port: u16) -> RegisteredTarget {
    RegisteredTarget { ip, port, availability_zone: Some("all".into()), health: "healthy".into() }
}

/// The destination CIDRs of a route table, for assertions.
pub fn destinations(t: &RouteTable) -> Vec<Ipv4Net> {
    t.routes.iter().map(|r| r.destination).collect()
}

impl Cloud for FakeAws {
    async fn observe(&self, account: &Account, scope: &ObserveScope) -> AccountObservation {
        let id = &account.spec.account_id;
        *self.lock().observations.entry(id.clone()).or_default() += 1;
        let mut obs = self.observe_lagging(id);
        // As the adapter: the targets of groups the engine already knows are not read.
        if let AccountObservation::Ok(state) = &mut obs {
            let skipped = state.target_groups.iter_mut().filter(|t| scope.known_targets.contains(&t.arn));
            let mut n = 0u64;
            for t in skipped {
                t.targets.clear();
                n += 1;
            }
            self.lock().target_reads_skipped += n;
        }
        obs
    }

    async fn execute(&self, account: &Account, op: &Op) -> Result<Outcome, CloudError> {
        // A request in flight from here to its answer (delays included); no rate limits here.
        let _slot = crate::slots::acquire().await?;
        crate::fence::check()?;
        self.apply(&account.spec.account_id, op)
    }
}
