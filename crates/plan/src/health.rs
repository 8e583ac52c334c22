//! Whether a link's traffic can flow, hop by hop: the second question beside "is it in sync"
//! (Argo CD's Health beside Synced). A pure function of desired state, the observation and the
//! plan made from it (the plan's reports name each hop's live id): no I/O.
//!
//! The hops, in the order a request takes them: the API's resources and methods of each route,
//! the stage's deployment, the VPC link, the NLB listener, the target group, each target, the
//! peering, and the routes both ways. The first broken hop is the one to look at: it carries a
//! hint saying what to check, and in which account.

use std::net::Ipv4Addr;

use crosslink_desired::{DesiredState, Gateway, Link};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::kinds::StageOp;
use crate::kinds::method::integration_base;
use crate::model::{Plan, Report, Subject};
use crate::observed::{AccountObservation, AccountState, Observed, PeeringStatus};
use crate::op::Op;

/// The state of one hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HopState {
    /// Works.
    Ok,
    /// On its way: a target in its first health checks, a VPC link PENDING, a peering being
    /// accepted, a deployment planned. Not healthy yet, not failing.
    Starting,
    /// Traffic cannot pass here.
    Broken,
    /// Not known: the account could not be read, or the hop is not there to look at yet.
    Unknown,
}

impl HopState {
    pub fn as_str(self) -> &'static str {
        match self {
            HopState::Ok => "ok",
            HopState::Starting => "starting",
            HopState::Broken => "broken",
            HopState::Unknown => "unknown",
        }
    }
}

/// One hop of a link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hop {
    /// `route`, `stage`, `vpcLink`, `listener`, `targetGroup`, `target`, then over peering
    /// `peering`, `networkRoute`; over privateLink `endpointTarget` (before them), `endpoint`,
    /// `endpointService`, `serviceListener`, `serviceTargetGroup` (before the targets).
    pub kind: String,
    /// It, for people: `GET, POST /payments`, `target 10.20.1.10:8080`, `route 10.20.0.0/16 in
    /// rtb-0a1`.
    pub name: String,
    /// The Account (desired state's name) it lives in.
    pub account: String,
    /// Its live id or ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub state: HopState,
    /// What was seen: `healthy`, `unhealthy: Target.FailedHealthChecks: Health checks failed`,
    /// `blackhole`.
    pub detail: String,
    /// What to check when it is not ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Targets of a link by health state (as AWS names them; `missing`: desired, not registered).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetCounts {
    pub healthy: u32,
    pub initial: u32,
    pub unhealthy: u32,
    pub draining: u32,
    pub unused: u32,
    pub unavailable: u32,
    pub missing: u32,
}

impl TargetCounts {
    /// Every state, for metric labels (a fixed set: no target addresses in labels).
    pub const STATES: [&'static str; 7] =
        ["healthy", "initial", "unhealthy", "draining", "unused", "unavailable", "missing"];

    pub fn get(&self, state: &str) -> u32 {
        match state {
            "healthy" => self.healthy,
            "initial" => self.initial,
            "unhealthy" => self.unhealthy,
            "draining" => self.draining,
            "unused" => self.unused,
            "unavailable" => self.unavailable,
            _ => self.missing,
        }
    }
}

/// Whether traffic can flow through a link, and each hop's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkHealth {
    /// Every hop is ok and at least `min_healthy_targets` targets pass their health checks.
    pub healthy: bool,
    /// One line: `0 of 2 targets healthy (Target.FailedHealthChecks)`, `listener :9001 missing`.
    pub summary: String,
    pub targets: TargetCounts,
    pub min_healthy_targets: u16,
    /// The index in `hops` of the first broken hop (else the first not ok), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_broken: Option<usize>,
    pub hops: Vec<Hop>,
}

impl LinkHealth {
    /// The hop to look at first.
    pub fn first_broken_hop(&self) -> Option<&Hop> {
        self.first_broken.and_then(|i| self.hops.get(i))
    }

    /// Whether it is only on its way (no hop broken, nothing unknown, some starting).
    pub fn starting(&self) -> bool {
        !self.healthy && self.hops.iter().all(|h| matches!(h.state, HopState::Ok | HopState::Starting))
    }
}

fn state_of<'o>(o: &'o Observed, account: &str) -> Result<&'o AccountState, String> {
    match o.accounts.get(account) {
        Some(AccountObservation::Ok(s)) => Ok(s),
        Some(AccountObservation::Failed { code, message, .. }) => Err(format!("{code}: {message}")),
        None => Err("not observed".into()),
    }
}

struct Hops {
    hops: Vec<Hop>,
}

impl Hops {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        kind: &str,
        name: String,
        account: &str,
        id: Option<&str>,
        state: HopState,
        detail: impl Into<String>,
        hint: Option<String>,
    ) {
        self.hops.push(Hop {
            kind: kind.into(),
            name,
            account: account.into(),
            id: id.map(str::to_string),
            state,
            detail: detail.into(),
            hint: if state == HopState::Ok { None } else { hint },
        });
    }

    fn unknown(&mut self, kind: &str, name: String, account: &str, why: &str) {
        self.push(
            kind,
            name,
            account,
            None,
            HopState::Unknown,
            format!("account {account} could not be read: {why}"),
            Some(format!("fix access to account {account} first (see the link's problems)")),
        );
    }
}

/// The health of `link` as `observed` shows it, with the ids `plan`'s reports give each hop.
pub fn link_health(desired: &DesiredState, observed: &Observed, plan: &Plan, link: &Link) -> LinkHealth {
    link_health_on(desired.gateway(&link.spec.gateway), observed, plan, link)
}

/// The same, given the link's gateway (looked up by the caller, in an index).
pub fn link_health_on(gateway: Option<&Gateway>, observed: &Observed, plan: &Plan, link: &Link) -> LinkHealth {
    let mut h = Hops { hops: Vec::new() };
    let empty = Report::default();
    let lr = plan.reports.get(&Subject::Link(link.metadata.name.clone())).unwrap_or(&empty);
    let gw = gateway;
    let gr = gw.and_then(|g| plan.reports.get(&Subject::Gateway(g.metadata.name.clone()))).unwrap_or(&empty);
    let mut targets = TargetCounts::default();
    let Some(gw) = gw else {
        return LinkHealth {
            healthy: false,
            summary: format!("its gateway {} is not in desired state", link.spec.gateway),
            targets,
            min_healthy_targets: link.spec.min_healthy_targets,
            first_broken: None,
            hops: Vec::new(),
        };
    };
    let gw_account = gw.spec.account.as_str();
    let port = link.spec.listener_port;
    match state_of(observed, gw_account) {
        Err(why) => {
            for kind in ["route", "stage", "vpcLink", "listener", "targetGroup"] {
                h.unknown(kind, kind.to_string(), gw_account, &why);
            }
        }
        Ok(gs) => gateway_hops(&mut h, &mut targets, gs, plan, gr, lr, gw, link, port),
    }
    match link.spec.transport.private_link() {
        None => peering_hops(&mut h, observed, lr, gw, link),
        Some(_) => private_link_hops(&mut h, &mut targets, observed, lr, gw, link),
    }

    let min = link.spec.min_healthy_targets;
    let first_broken = h
        .hops
        .iter()
        .position(|x| x.state == HopState::Broken)
        .or_else(|| h.hops.iter().position(|x| x.state != HopState::Ok));
    let others_ok = h.hops.iter().filter(|x| x.kind != "target").all(|x| x.state == HopState::Ok);
    let enough = targets.healthy >= u32::from(min);
    let healthy = others_ok && enough;
    let reasons: Vec<&str> = {
        let mut r: Vec<&str> = h
            .hops
            .iter()
            .filter(|x| x.kind == "target" && x.state == HopState::Broken)
            .filter_map(|x| x.detail.split(": ").nth(1))
            .collect();
        r.sort_unstable();
        r.dedup();
        r
    };
    let total = link.spec.targets.len();
    let summary = if !others_ok {
        let x = first_broken.map(|i| &h.hops[i]).expect("a hop that is not ok");
        format!("{}: {}", x.name, x.detail)
    } else if !enough && targets.initial > 0 && reasons.is_empty() {
        format!("{} of {total} targets healthy, {} starting (initial health checks)", targets.healthy, targets.initial)
    } else if !enough {
        let why = if reasons.is_empty() { String::new() } else { format!(" ({})", reasons.join(", ")) };
        format!("{} of {total} targets healthy{why}", targets.healthy)
    } else {
        format!("{} of {total} targets healthy", targets.healthy)
    };
    LinkHealth { healthy, summary, targets, min_healthy_targets: min, first_broken, hops: h.hops }
}

#[allow(clippy::too_many_arguments)]
fn gateway_hops(
    h: &mut Hops,
    targets: &mut TargetCounts,
    gs: &AccountState,
    plan: &Plan,
    gr: &Report,
    lr: &Report,
    gw: &crosslink_desired::Gateway,
    link: &Link,
    port: u16,
) {
    let acct = gw.spec.account.as_str();
    let api = gr.resources.get("restApi").and_then(|id| gs.rest_apis.iter().find(|a| &a.id == id));
    let lb = gr.resources.get("loadBalancer").and_then(|arn| gs.load_balancer(arn));
    let dns = lb.map(|l| l.dns_name.as_str());
    let repair = format!(
        "crosslink repairs its own API resources and methods on its next pass: run `crosslink plan` to see why it has not (a problem on Gateway/{} blocks it)",
        gw.metadata.name
    );

    // The route's resources and methods, each integrated through the VPC link to this port.
    for r in &link.spec.routes {
        let methods: Vec<&str> = r.methods.iter().map(|m| m.as_str()).collect();
        let name = format!("{} {}", methods.join(", "), r.path);
        let Some(api) = api else {
            h.push("route", name, acct, None, HopState::Broken, "no REST API", Some(repair.clone()));
            continue;
        };
        let mut broken = None;
        for path in [r.path.clone(), format!("{}/{{proxy+}}", r.path)] {
            let res = api.resources.iter().find(|x| x.path == path);
            for m in &methods {
                if broken.is_some() {
                    break;
                }
                let Some(res) = res else {
                    broken = Some(format!("resource {path} missing"));
                    break;
                };
                let Some(method) = res.methods.get(*m) else {
                    broken = Some(format!("method {m} {path} missing"));
                    continue;
                };
                let integration = method.integration.as_ref();
                // At the link's listener: `http://<dns>:<port>/...`, or with TLS to the backend
                // `https://<server name>:<port>/...`.
                let base = dns.map(|d| integration_base(d, port, link.spec.tls.as_ref()));
                let at = integration.and_then(|i| i.uri.as_deref()).is_some_and(|u| {
                    base.as_deref().and_then(|b| u.strip_prefix(b)).is_some_and(|rest| rest.starts_with('/'))
                });
                if integration.is_none_or(|i| i.connection_type.as_deref() != Some("VPC_LINK")) || !at {
                    let to = integration.and_then(|i| i.uri.clone()).unwrap_or_else(|| "nothing".into());
                    broken = Some(format!("{m} {path} integrates with {to}, not the listener :{port}"));
                }
            }
        }
        match broken {
            None => {
                let how = match &link.spec.tls {
                    Some(t) if t.insecure_skip_verification => {
                        "HTTP_PROXY through the VPC link, TLS (certificate not checked)"
                    }
                    Some(_) => "HTTP_PROXY through the VPC link, TLS (certificate checked)",
                    None => "HTTP_PROXY through the VPC link",
                };
                h.push("route", name, acct, Some(&api.id), HopState::Ok, how, None)
            }
            Some(why) => h.push("route", name, acct, Some(&api.id), HopState::Broken, why, Some(repair.clone())),
        }
    }

    // The stage, deployed with the current API.
    let stage_name = &gw.spec.api.stage;
    let stage = api.and_then(|a| a.stages.iter().find(|s| &s.name == stage_name));
    let deploying = plan.actions.iter().any(|a| {
        a.subject == Subject::Gateway(gw.metadata.name.clone())
            && matches!(&a.op, Op::Stage(StageOp::CreateDeployment { .. }))
    });
    let (state, detail) = match (stage, deploying) {
        (None, _) => (HopState::Broken, "not deployed".to_string()),
        (Some(_), true) => {
            (HopState::Starting, "deployed, but not with the current API (a deployment is planned)".into())
        }
        (Some(s), false) => (HopState::Ok, format!("deployed ({})", s.deployment_id.as_deref().unwrap_or("?"))),
    };
    h.push(
        "stage",
        format!("stage {stage_name}"),
        acct,
        api.map(|a| a.id.as_str()),
        state,
        detail,
        Some(format!("crosslink deploys after every change to the API: check its log for a failed CreateDeployment in account {acct}")),
    );

    // The VPC link to the NLB.
    // The planner names only a usable one; a FAILED one of the gateway's is shown as it is.
    let owner = crate::tags::gateway_owner(&gw.metadata.name);
    let vl = gr.resources.get("vpcLink").and_then(|id| gs.vpc_links.iter().find(|v| &v.id == id)).or_else(|| {
        gs.vpc_links
            .iter()
            .filter(|v| crate::tags::owner(&v.tags) == Some(owner.as_str()))
            .find(|v| v.status != "DELETING")
    });
    match vl {
        None => h.push(
            "vpcLink",
            "VPC link".into(),
            acct,
            None,
            HopState::Broken,
            "none",
            Some("crosslink creates the gateway's VPC link: see Gateway/<name>'s status for why it has not".into()),
        ),
        Some(v) => {
            let (state, detail) = match v.status.as_str() {
                "AVAILABLE" => (HopState::Ok, "AVAILABLE".to_string()),
                "PENDING" => (HopState::Starting, "PENDING (API Gateway takes minutes to make a VPC link)".into()),
                s => (HopState::Broken, format!("{s}: {}", v.status_message.as_deref().unwrap_or("no reason given"))),
            };
            h.push(
                "vpcLink",
                format!("VPC link {}", v.name),
                acct,
                Some(&v.id),
                state,
                detail,
                Some(format!(
                    "a VPC link fails when its NLB is gone or has no subnet in a supported zone: check the NLB in account {acct}; crosslink replaces a FAILED VPC link"
                )),
            );
        }
    }

    // The listener, forwarding to the target group.
    let tg = lr.resources.get("targetGroup").and_then(|arn| gs.target_groups.iter().find(|t| &t.arn == arn));
    let listener = lr.resources.get("listener").and_then(|arn| gs.listeners.iter().find(|x| &x.arn == arn));
    let recreate = |what: &str| {
        format!(
            "deleted outside crosslink? The next pass recreates the {what}; CloudTrail in account {acct} says who removed it"
        )
    };
    match listener {
        None => h.push(
            "listener",
            format!("listener :{port}"),
            acct,
            None,
            HopState::Broken,
            "missing",
            Some(recreate("listener")),
        ),
        Some(x) => {
            let (state, detail) = if x.port != port {
                (HopState::Broken, format!("on :{}, not :{port}", x.port))
            } else if tg.is_some_and(|t| x.target_group_arn.as_deref() != Some(t.arn.as_str())) {
                (HopState::Broken, "forwards to another target group".to_string())
            } else if link.spec.tls.is_some() != (x.protocol == "TLS") {
                let want = if link.spec.tls.is_some() { "TLS" } else { "TCP" };
                (
                    HopState::Broken,
                    format!("{} :{port}, not {want}: the route's integrations expect {want}", x.protocol),
                )
            } else if let Some(tls) = &link.spec.tls {
                (
                    HopState::Ok,
                    format!(
                        "TLS :{port} ({}, for {})",
                        x.ssl_policy.as_deref().unwrap_or("no policy"),
                        tls.server_name
                    ),
                )
            } else {
                (HopState::Ok, format!("TCP :{port}"))
            };
            h.push(
                "listener",
                format!("listener :{port}"),
                acct,
                Some(&x.arn),
                state,
                detail,
                Some(recreate("listener")),
            );
        }
    }

    // The target group and each target.
    let Some(tg) = tg else {
        h.push(
            "targetGroup",
            "target group".into(),
            acct,
            None,
            HopState::Broken,
            "missing",
            Some(recreate("target group")),
        );
        targets.missing = u32::try_from(link.spec.targets.len()).unwrap_or(u32::MAX);
        return;
    };
    h.push(
        "targetGroup",
        format!("target group {}", tg.name),
        acct,
        Some(&tg.arn),
        HopState::Ok,
        format!("{} target(s) registered", tg.targets.len()),
        None,
    );
    if link.spec.transport.private_link().is_some() {
        endpoint_target_hops(h, gs, tg, lr, acct, port);
        return;
    }
    let svc = link.spec.service.account.as_str();
    let gw_cidr = gw.spec.cidr.map(|c| c.to_string()).unwrap_or_else(|| "the gateway VPC's CIDR".into());
    target_hops(h, targets, tg, link, acct, |ip, port| target_hint(ip, port, svc, &gw_cidr));
}

/// Each of the link's targets in `tg` (its gateway target group over peering, the service-side
/// one over privateLink), counted by health.
fn target_hops(
    h: &mut Hops,
    targets: &mut TargetCounts,
    tg: &crate::observed::TargetGroup,
    link: &Link,
    acct: &str,
    hint: impl Fn(Ipv4Addr, u16) -> String,
) {
    let svc = link.spec.service.account.as_str();
    for want in &link.spec.targets {
        let name = format!("target {}:{}", want.ip, want.port);
        let Some(t) = tg.targets.iter().find(|t| t.ip == want.ip && t.port == want.port) else {
            targets.missing += 1;
            h.push(
                "target",
                name,
                svc,
                None,
                HopState::Broken,
                "not registered",
                Some(format!("the next pass registers it; CloudTrail in account {acct} says who deregistered it")),
            );
            continue;
        };
        let reason = match (&t.reason, &t.description) {
            (Some(r), Some(d)) => format!(": {r}: {d}"),
            (Some(r), None) => format!(": {r}"),
            _ => String::new(),
        };
        let state = match t.health.as_str() {
            "healthy" => {
                targets.healthy += 1;
                HopState::Ok
            }
            "initial" => {
                targets.initial += 1;
                HopState::Starting
            }
            "draining" => {
                targets.draining += 1;
                HopState::Broken
            }
            "unused" => {
                targets.unused += 1;
                HopState::Broken
            }
            "unavailable" => {
                targets.unavailable += 1;
                HopState::Unknown
            }
            _ => {
                targets.unhealthy += 1;
                HopState::Broken
            }
        };
        h.push(
            "target",
            name,
            svc,
            Some(&want.ip.to_string()),
            state,
            format!("{}{reason}", t.health),
            Some(hint(t.ip, t.port)),
        );
    }
}

fn target_hint(ip: Ipv4Addr, port: u16, svc: &str, gw_cidr: &str) -> String {
    format!(
        "in account {svc}: check that the service listens on {ip}:{port}, that its security group admits {gw_cidr} (the NLB's health checks come from the gateway VPC), and the route back to the gateway VPC (the network routes below)"
    )
}

fn peering_hops(h: &mut Hops, observed: &Observed, lr: &Report, gw: &crosslink_desired::Gateway, link: &Link) {
    let (ga, sa) = (gw.spec.account.as_str(), link.spec.service.account.as_str());
    let (gs, ss) = match (state_of(observed, ga), state_of(observed, sa)) {
        (Ok(g), Ok(s)) => (g, s),
        (Err(why), _) => return h.unknown("peering", "peering".into(), ga, &why),
        (_, Err(why)) => return h.unknown("peering", "peering".into(), sa, &why),
    };
    let pcx = lr.resources.get("peering").and_then(|id| gs.peering(id));
    let Some(pcx) = pcx else {
        return h.push(
            "peering",
            format!("peering {} -> {}", gw.spec.vpc_id, link.spec.service.vpc_id),
            ga,
            None,
            HopState::Broken,
            "none",
            Some("crosslink requests and accepts it: see the link's problems (a peering crosslink does not own for the pair blocks it)".into()),
        );
    };
    let (state, detail) = match pcx.status {
        PeeringStatus::Active => (HopState::Ok, "active".to_string()),
        PeeringStatus::PendingAcceptance | PeeringStatus::Provisioning => {
            (HopState::Starting, format!("{:?}", pcx.status))
        }
        s => (HopState::Broken, format!("{s:?}")),
    };
    h.push(
        "peering",
        format!("peering {}", pcx.id),
        ga,
        Some(&pcx.id),
        state,
        detail,
        Some(format!("the service account {sa} accepts it (crosslink does, with its role there); a rejected, failed or expired peering is requested again")),
    );
    let cidrs = |st: &AccountState, vpc: &str| -> Vec<Ipv4Net> {
        st.vpcs.get(vpc).map(|v| v.cidrs.clone()).unwrap_or_default()
    };
    let sides = [
        (ga, gs, &gw.spec.route_table_ids, cidrs(ss, &link.spec.service.vpc_id)),
        (sa, ss, &link.spec.service.route_table_ids, cidrs(gs, &gw.spec.vpc_id)),
    ];
    for (acct, st, rtbs, dests) in sides {
        for rtb in rtbs {
            for dest in &dests {
                let name = format!("route {dest} in {rtb}");
                let route = st.route_tables.get(rtb).and_then(|t| t.routes.iter().find(|r| r.destination == *dest));
                let hint = Some(format!(
                    "crosslink creates it and replaces a blackhole to its own peering: check route table {rtb} in account {acct} for a route to {dest} that is not crosslink's"
                ));
                let (state, detail) = match route {
                    None => (HopState::Broken, "missing".to_string()),
                    Some(r) if r.blackhole => (HopState::Broken, "blackhole: its target is gone".to_string()),
                    Some(r) if r.peering_id.as_deref() == Some(pcx.id.as_str()) => {
                        (HopState::Ok, format!("active via {}", pcx.id))
                    }
                    Some(r) => (
                        HopState::Broken,
                        format!(
                            "points at {}, not {}",
                            r.peering_id.clone().or(r.other_target.clone()).unwrap_or_else(|| "something else".into()),
                            pcx.id
                        ),
                    ),
                };
                h.push("networkRoute", name, acct, None, state, detail, hint);
            }
        }
    }
}

/// A privateLink link's gateway target group holds its endpoint's interfaces: each one's health
/// (the gateway NLB's checks go through the endpoint to the service side).
fn endpoint_target_hops(
    h: &mut Hops,
    gs: &AccountState,
    tg: &crate::observed::TargetGroup,
    lr: &Report,
    acct: &str,
    port: u16,
) {
    let endpoint = lr.resources.get("endpoint").and_then(|id| gs.endpoints.iter().find(|e| &e.id == id));
    let Some(e) = endpoint else { return };
    for i in &e.interfaces {
        let name = format!("endpoint interface {}:{port} ({})", i.ip, i.availability_zone);
        let hint = Some(format!(
            "the gateway NLB checks the service through the endpoint: see the service-side hops below; the endpoint's security group must admit the gateway VPC on :{port}"
        ));
        match tg.targets.iter().find(|t| t.ip == i.ip && t.port == port) {
            None => h.push("endpointTarget", name, acct, None, HopState::Starting, "not registered yet", hint),
            Some(t) => {
                let state = match t.health.as_str() {
                    "healthy" => HopState::Ok,
                    "initial" => HopState::Starting,
                    "unavailable" => HopState::Unknown,
                    _ => HopState::Broken,
                };
                h.push("endpointTarget", name, acct, Some(&i.ip.to_string()), state, t.health.clone(), hint);
            }
        }
    }
}

/// A privateLink link after its gateway target group: the endpoint (accepted and available), the
/// endpoint service, the service-side listener and target group, and the link's targets there.
fn private_link_hops(
    h: &mut Hops,
    targets: &mut TargetCounts,
    observed: &Observed,
    lr: &Report,
    gw: &crosslink_desired::Gateway,
    link: &Link,
) {
    let (ga, sa) = (gw.spec.account.as_str(), link.spec.service.account.as_str());
    let port = link.spec.listener_port;
    let (gs, ss) = match (state_of(observed, ga), state_of(observed, sa)) {
        (Ok(g), Ok(s)) => (g, s),
        (Err(why), _) => return h.unknown("endpoint", "endpoint".into(), ga, &why),
        (_, Err(why)) => return h.unknown("endpointService", "endpoint service".into(), sa, &why),
    };
    let endpoint = lr.resources.get("endpoint").and_then(|id| gs.endpoints.iter().find(|e| &e.id == id));
    match endpoint {
        None => h.push(
            "endpoint",
            "endpoint".into(),
            ga,
            None,
            HopState::Broken,
            "none",
            Some("crosslink creates it once the endpoint service exists: see the link's status".into()),
        ),
        Some(e) => {
            let (state, detail) = match e.state.as_str() {
                "available" => (HopState::Ok, "available".to_string()),
                "pendingAcceptance" => {
                    (HopState::Starting, "pendingAcceptance (crosslink accepts it in the service account)".into())
                }
                "pending" => (HopState::Starting, "pending".to_string()),
                s => (HopState::Broken, s.to_string()),
            };
            h.push(
                "endpoint",
                format!("endpoint {}", e.id),
                ga,
                Some(&e.id),
                state,
                detail,
                Some(format!(
                    "a rejected or failed endpoint is replaced; the service account {sa} accepts its connection"
                )),
            );
        }
    }
    let service = lr.resources.get("endpointService").and_then(|id| ss.endpoint_services.iter().find(|s| &s.id == id));
    match service {
        None => h.push(
            "endpointService",
            "endpoint service".into(),
            sa,
            None,
            HopState::Broken,
            "none",
            Some("crosslink creates it on the service-side NLB once the NLB is active: see the link's status".into()),
        ),
        Some(s) => {
            let state = if s.state == "Available" { HopState::Ok } else { HopState::Starting };
            h.push(
                "endpointService",
                format!("endpoint service {}", s.id),
                sa,
                Some(&s.id),
                state,
                format!(
                    "{} ({} allowed, acceptance {})",
                    s.state,
                    s.allowed_principals.join(", "),
                    if s.acceptance_required { "required" } else { "NOT required" }
                ),
                Some(format!("check the endpoint service in account {sa}")),
            );
        }
    }
    let lb = lr.resources.get("serviceLoadBalancer").and_then(|arn| ss.load_balancer(arn));
    let listener = lb.and_then(|lb| ss.listeners.iter().find(|x| x.load_balancer_arn == lb.arn && x.port == port));
    let tg = listener.and_then(|x| ss.target_groups.iter().find(|t| Some(&t.arn) == x.target_group_arn.as_ref()));
    let recreate = |what: &str| {
        Some(format!(
            "deleted outside crosslink? The next pass recreates the {what}; CloudTrail in account {sa} says who removed it"
        ))
    };
    match listener {
        None => h.push(
            "serviceListener",
            format!("service-side listener :{port}"),
            sa,
            None,
            HopState::Broken,
            "missing",
            recreate("listener"),
        ),
        Some(x) => h.push(
            "serviceListener",
            format!("service-side listener :{port}"),
            sa,
            Some(&x.arn),
            HopState::Ok,
            format!("{} :{port}", x.protocol),
            None,
        ),
    }
    let Some(tg) = tg else {
        h.push(
            "serviceTargetGroup",
            "service-side target group".into(),
            sa,
            None,
            HopState::Broken,
            "missing",
            recreate("target group"),
        );
        targets.missing = u32::try_from(link.spec.targets.len()).unwrap_or(u32::MAX);
        return;
    };
    h.push(
        "serviceTargetGroup",
        format!("service-side target group {}", tg.name),
        sa,
        Some(&tg.arn),
        HopState::Ok,
        format!("{} target(s) registered", tg.targets.len()),
        None,
    );
    target_hops(h, targets, tg, link, sa, |ip, port| {
        format!(
            "in account {sa}: check that the service listens on {ip}:{port} and that its security group admits the service VPC's own range (the service-side NLB's health checks come from its subnets)"
        )
    });
}
