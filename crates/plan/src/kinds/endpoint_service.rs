//! A privateLink link's VPC endpoint service, in the service account: on the service-side NLB
//! (which this kind's planning also plans, with its target group, targets and listener, through
//! their kinds' `plan_service_side`), acceptance required, the gateway account the only allowed
//! principal, and the gateway endpoint's connection accepted.

use serde::{Deserialize, Serialize};

use super::KindOp;
use crate::model::{Reason, Subject, Verb};
use crate::observed::{AccountObservation, AccountState, Tags};
use crate::op::{Op, Output, Ref, Service};
use crate::planner::{LinkCx, Planner, Prunable};
use crate::tags;
use crosslink_desired::LoadBalancerRef;

// ---- What is observed ------------------------------------------------------------------------

/// Its field of `AccountState` (`endpoint_services`): crosslink's own only.
pub type Observed = Vec<EndpointService>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointService {
    /// `vpce-svc-...`.
    pub id: String,
    /// `com.amazonaws.vpce.<region>.vpce-svc-...`: what an interface endpoint names.
    pub service_name: String,
    pub load_balancer_arns: Vec<String>,
    pub acceptance_required: bool,
    /// The principals allowed to connect (`DescribeVpcEndpointServicePermissions`).
    pub allowed_principals: Vec<String>,
    /// `Pending`, `Available`, `Deleting`, `Deleted`, `Failed`.
    pub state: String,
    pub tags: Tags,
}

// ---- Operations -------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum EndpointServiceOp {
    /// With acceptance required, always.
    CreateVpcEndpointServiceConfiguration {
        load_balancer_arn: Ref,
        tags: Tags,
    },
    ModifyVpcEndpointServicePermissions {
        service_id: Ref,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        add_allowed_principals: Vec<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        remove_allowed_principals: Vec<String>,
    },
    /// Puts acceptance back to required (drift).
    ModifyVpcEndpointServiceConfiguration {
        service_id: String,
        acceptance_required: bool,
    },
    /// The service account accepts the gateway endpoint's connection.
    AcceptVpcEndpointConnections {
        service_id: String,
        endpoint_ids: Vec<String>,
    },
    DeleteVpcEndpointServiceConfigurations {
        service_id: String,
    },
}

impl KindOp for EndpointServiceOp {
    fn service(&self) -> Service {
        Service::Ec2
    }

    fn name(&self) -> &'static str {
        match self {
            Self::CreateVpcEndpointServiceConfiguration { .. } => "CreateVpcEndpointServiceConfiguration",
            Self::ModifyVpcEndpointServicePermissions { .. } => "ModifyVpcEndpointServicePermissions",
            Self::ModifyVpcEndpointServiceConfiguration { .. } => "ModifyVpcEndpointServiceConfiguration",
            Self::AcceptVpcEndpointConnections { .. } => "AcceptVpcEndpointConnections",
            Self::DeleteVpcEndpointServiceConfigurations { .. } => "DeleteVpcEndpointServiceConfigurations",
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::CreateVpcEndpointServiceConfiguration { load_balancer_arn, .. } => {
                format!("endpoint service on {load_balancer_arn}")
            }
            Self::ModifyVpcEndpointServicePermissions { service_id, .. } => service_id.to_string(),
            Self::ModifyVpcEndpointServiceConfiguration { service_id, .. }
            | Self::AcceptVpcEndpointConnections { service_id, .. }
            | Self::DeleteVpcEndpointServiceConfigurations { service_id } => service_id.clone(),
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::CreateVpcEndpointServiceConfiguration { load_balancer_arn, .. } => vec![load_balancer_arn],
            Self::ModifyVpcEndpointServicePermissions { service_id, .. } => vec![service_id],
            _ => vec![],
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::CreateVpcEndpointServiceConfiguration { load_balancer_arn, .. } => vec![load_balancer_arn],
            Self::ModifyVpcEndpointServicePermissions { service_id, .. } => vec![service_id],
            _ => vec![],
        }
    }

    fn lets_chain(&self, state: Option<&str>) -> bool {
        // An endpoint may connect to a service that is not Failed.
        state != Some("Failed")
    }

    fn on_new_resource(&self) -> bool {
        match self {
            Self::ModifyVpcEndpointServicePermissions { service_id, .. } => service_id.known().is_none(),
            _ => false,
        }
    }

    fn is_delete(&self) -> bool {
        matches!(self, Self::DeleteVpcEndpointServiceConfigurations { .. })
    }
}

// ---- Planning: names ----------------------------------------------------------------------------

/// The only principal allowed to connect: the gateway account.
pub fn gateway_principal(account_id: &str) -> String {
    format!("arn:aws:iam::{account_id}:root")
}

/// The tags of a link's transport resources: the link's, plus which transport.
pub(crate) fn transport_tags(want: &Tags, transport: &str) -> Tags {
    let mut t = want.clone();
    t.insert(tags::TRANSPORT.into(), transport.into());
    t
}

// ---- Clean-up and tags (read by the planner's generic machinery) ------------------------------

pub(crate) fn prunable(st: &AccountState) -> Vec<Prunable<'_>> {
    st.endpoint_services
        .iter()
        .map(|s| Prunable {
            tags: &s.tags,
            id: s.id.clone(),
            what: format!("endpoint service {}", s.id),
            delete: EndpointServiceOp::DeleteVpcEndpointServiceConfigurations { service_id: s.id.clone() }.into(),
            uses: s.load_balancer_arns.clone(),
            follows_link: false,
            deleting: matches!(s.state.as_str(), "Deleting" | "Deleted"),
        })
        .collect()
}

/// An endpoint service is deleted once no endpoint connects to it any more (AWS refuses to
/// delete one with connections): the gateway's endpoint goes first, on the same pass.
pub(crate) fn before_delete<'a>(
    p: &mut Planner<'a>,
    subject: &Subject,
    _account: &str,
    st: &'a AccountState,
    c: &Prunable<'a>,
) -> Option<Vec<Option<usize>>> {
    let s = st.endpoint_services.iter().find(|s| s.id == c.id)?;
    let users = connected(p, &s.service_name);
    if users.is_empty() {
        return Some(Vec::new());
    }
    p.report(subject).waiting.push(format!(
        "endpoint service {} is deleted once endpoint(s) {} are gone",
        s.id,
        users.join(", ")
    ));
    None
}

/// The live endpoints connected to a service, in any observed account.
fn connected(p: &Planner<'_>, service_name: &str) -> Vec<String> {
    p.o.accounts
        .values()
        .filter_map(|a| match a {
            AccountObservation::Ok(s) => Some(s),
            AccountObservation::Failed { .. } => None,
        })
        .flat_map(|s| &s.endpoints)
        .filter(|e| e.service_name == service_name && !matches!(e.state.as_str(), "deleted" | "rejected" | "failed"))
        .map(|e| e.id.clone())
        .collect()
}

pub(crate) use crate::planner::not_releasable as untag_op;
pub(crate) use crate::planner::untagged as tag_op;

// ---- Planning (the link stage) ----------------------------------------------------------------

/// A link's privateLink service side as its kinds plan it.
pub(crate) struct ServiceSide<'a> {
    pub(crate) subject: Subject,
    /// The service account (its name in desired state).
    pub(crate) account: String,
    pub(crate) st: &'a AccountState,
    pub(crate) owner: String,
    /// The link's tags and the transport's.
    pub(crate) tags: Tags,
    pub(crate) vpc: String,
}

/// What the endpoint service hands on to the gateway's endpoint.
pub(crate) struct ServiceOut {
    /// The service's name: pending while this plan (or AWS) makes it.
    pub(crate) service_name: Ref,
    pub(crate) action: Option<usize>,
}

pub(crate) type Out<'a> = ServiceOut;

impl Default for ServiceOut {
    fn default() -> Self {
        ServiceOut { service_name: Ref::Pending("not planned".into()), action: None }
    }
}

/// A privateLink link: the service-side NLB, target group, targets and listener, then the
/// endpoint service on the NLB with its permissions, and the acceptance of the gateway
/// endpoint's connection. Any other link: the endpoint services a privateLink past of it left
/// are removed, once the gateway's target group no longer sends to their endpoint (the endpoint's
/// own removal waits for that).
pub(crate) fn plan<'a>(p: &mut Planner<'a>, cx: &mut LinkCx<'a, '_>) -> Option<()> {
    let l = cx.link;
    let svc_account = l.spec.service.account.as_str();
    let Some(pl) = l.spec.transport.private_link() else {
        // Peering now: what the link's privateLink left in the service account goes (its
        // endpoint first: see `before_delete`).
        if let Ok(ss) = p.state(svc_account) {
            leave(p, cx, ss);
        }
        return Some(());
    };
    let ss = match p.state(svc_account) {
        Ok(s) => s,
        Err(e) => {
            p.report(&cx.subject).problems.push(e);
            return None;
        }
    };
    if !ss.vpcs.contains_key(&l.spec.service.vpc_id) {
        p.problem(
            &cx.subject,
            "VpcNotFound",
            format!("service VPC {} not found in account {svc_account}", l.spec.service.vpc_id),
            Some("check spec.service.vpcId and spec.service.account".into()),
        );
        return None;
    }
    let side = ServiceSide {
        subject: cx.subject.clone(),
        account: svc_account.to_string(),
        st: ss,
        owner: cx.owner.clone(),
        tags: transport_tags(&cx.want_tags, "privateLink"),
        vpc: l.spec.service.vpc_id.clone(),
    };
    let (lb_arn, lb_action, lb) = super::load_balancer::plan_service_side(p, &side, &pl.load_balancer, &pl.subnet_ids)?;
    let lb_key = match &pl.load_balancer {
        LoadBalancerRef::Name(n) => n.as_str(),
        LoadBalancerRef::Arn(a) => a.as_str(),
    };
    let (tg_arn, tg_action, tg) = super::target_group::plan_service_side(p, &side, l, lb_key)?;
    super::targets::plan_service_side(p, &side.subject, svc_account, l, &tg_arn, tg_action, tg);
    let listener =
        super::listener::plan_service_side(p, &side, l.spec.listener_port, &lb_arn, lb_action, &tg_arn, tg_action)?;

    let gw_account_id = p.ix.account(&cx.gw.gw.spec.account).map(|a| a.spec.account_id.clone())?;
    let principal = gateway_principal(&gw_account_id);
    let mine: Vec<&'a EndpointService> =
        ss.endpoint_services.iter().filter(|s| p.owned_by(&s.tags, &cx.owner)).collect();
    let on_lb = |s: &EndpointService| lb_arn.known().is_some_and(|a| s.load_balancer_arns.iter().any(|x| x == a));
    let current = mine.iter().copied().find(|s| on_lb(s) && !matches!(s.state.as_str(), "Failed" | "Deleting" | "Deleted"));
    let out = &mut cx.out.endpoint_service;
    match current {
        Some(s) => {
            p.claimed.insert(s.id.clone());
            p.report(&cx.subject).resources.insert("endpointService".into(), s.id.clone());
            out.service_name = Ref::Known(s.service_name.clone());
            if !s.acceptance_required {
                p.add(
                    &cx.subject,
                    svc_account,
                    format!("endpoint service {}", s.id),
                    Verb::Update,
                    Reason::Drift { field: "acceptanceRequired".into(), live: "false".into(), desired: "true".into() },
                    Op::EndpointService(EndpointServiceOp::ModifyVpcEndpointServiceConfiguration {
                        service_id: s.id.clone(),
                        acceptance_required: true,
                    }),
                    vec![],
                );
            }
            let add: Vec<String> = (!s.allowed_principals.contains(&principal)).then(|| principal.clone()).into_iter().collect();
            let remove: Vec<String> = s.allowed_principals.iter().filter(|x| **x != principal).cloned().collect();
            if !add.is_empty() || !remove.is_empty() {
                p.add(
                    &cx.subject,
                    svc_account,
                    format!("permissions of endpoint service {}", s.id),
                    Verb::Update,
                    Reason::Drift {
                        field: "allowedPrincipals".into(),
                        live: format!("{:?}", s.allowed_principals),
                        desired: format!("[{principal:?}]"),
                    },
                    Op::EndpointService(EndpointServiceOp::ModifyVpcEndpointServicePermissions {
                        service_id: Ref::Known(s.id.clone()),
                        add_allowed_principals: add,
                        remove_allowed_principals: remove,
                    }),
                    vec![],
                );
            }
            // The gateway's endpoint asks to connect: the service account accepts it. Only the
            // link's own endpoint is accepted (the gateway account is the only principal anyway).
            let pending: Vec<String> = cx
                .gw
                .state
                .endpoints
                .iter()
                .filter(|e| e.service_name == s.service_name && e.state == "pendingAcceptance")
                .filter(|e| p.owned_by(&e.tags, &cx.owner))
                .map(|e| e.id.clone())
                .collect();
            if !pending.is_empty() {
                p.add(
                    &cx.subject,
                    svc_account,
                    format!("connection of endpoint(s) {} to {}", pending.join(", "), s.id),
                    Verb::Accept,
                    Reason::FollowsChanges { why: "the gateway's endpoint asks to connect".into() },
                    Op::EndpointService(EndpointServiceOp::AcceptVpcEndpointConnections {
                        service_id: s.id.clone(),
                        endpoint_ids: pending,
                    }),
                    vec![],
                );
            }
        }
        None => {
            // AWS takes an endpoint service only on an active load balancer: one still being
            // made is waited for.
            let active = lb.is_some_and(|lb| lb.state == "active");
            if !active {
                let why = match lb {
                    Some(lb) => format!("service-side load balancer {} is {}", lb.name, lb.state),
                    None => "service-side load balancer is being created".to_string(),
                };
                p.report(&cx.subject).waiting.push(format!("endpoint service waits: {why}"));
                out.service_name = Ref::Pending(format!("endpoint service ({why})").into());
            } else {
                let a = p.add(
                    &cx.subject,
                    svc_account,
                    format!("endpoint service on {lb_arn}"),
                    Verb::Create,
                    Reason::Missing,
                    Op::EndpointService(EndpointServiceOp::CreateVpcEndpointServiceConfiguration {
                        load_balancer_arn: lb_arn.clone(),
                        tags: side.tags.clone(),
                    }),
                    vec![lb_action],
                );
                let id = Ref::created("endpoint service", a, Output::Id);
                p.add(
                    &cx.subject,
                    svc_account,
                    "permissions of the new endpoint service",
                    Verb::Update,
                    Reason::FollowsChanges { why: format!("only the gateway account may connect: {principal}") },
                    Op::EndpointService(EndpointServiceOp::ModifyVpcEndpointServicePermissions {
                        service_id: id,
                        add_allowed_principals: vec![principal.clone()],
                        remove_allowed_principals: vec![],
                    }),
                    vec![Some(a)],
                );
                out.service_name = Ref::created("endpoint service", a, Output::ServiceName);
                out.action = Some(a);
            }
        }
    }
    // The link's other service side (another NLB, a failed endpoint service): deleted once
    // unused, the endpoint services first.
    let listener_arn = listener.map(|x| x.arn.as_str());
    let keep: Vec<&str> = [lb_arn.known(), tg_arn.known(), listener_arn, current.map(|c| c.id.as_str())]
        .into_iter()
        .flatten()
        .collect();
    // While the current side is being made, its ids are not known yet: keep everything until then.
    if lb_arn.known().is_some() && tg_arn.known().is_some() && listener_arn.is_some() {
        retire_side(p, cx, ss, &keep, "the link's service side is on its current load balancer now");
    } else {
        for s in &mine {
            p.claimed.insert(s.id.clone());
        }
    }
    Some(())
}

/// A link that is not privateLink (any more): its endpoint services and service-side NLB,
/// target group and listener go, the endpoint services first and once unused.
fn leave<'a>(p: &mut Planner<'a>, cx: &LinkCx<'a, '_>, ss: &'a AccountState) {
    let why = format!("the link's transport is {} now", cx.link.spec.transport.name());
    retire_side(p, cx, ss, &[], &why);
}

/// The link's service-side resources other than `keep` (ids and ARNs): its endpoint services,
/// each once no endpoint connects to it, then, once none is left in use, its listeners, target
/// groups and load balancers, each after what uses it.
fn retire_side<'a>(p: &mut Planner<'a>, cx: &LinkCx<'a, '_>, ss: &'a AccountState, keep: &[&str], why: &str) {
    let account = cx.link.spec.service.account.as_str();
    let services: Vec<&EndpointService> = ss
        .endpoint_services
        .iter()
        .filter(|s| p.owned_by(&s.tags, &cx.owner) && !keep.contains(&s.id.as_str()))
        .collect();
    let mut service_deletes = Vec::new();
    let mut kept = false;
    for s in services {
        p.claimed.insert(s.id.clone());
        if matches!(s.state.as_str(), "Deleting" | "Deleted") {
            continue;
        }
        match retire(p, cx, account, s, why) {
            Some(a) => service_deletes.push(Some(a)),
            None => kept = true,
        }
    }
    // The service side's ELB resources: deleted after the endpoint services, listeners first.
    let mine = |t: &Tags, id: &str| p.owned_by(t, &cx.owner) && tags::is_transport(t) && !keep.contains(&id);
    let listeners: Vec<_> = ss.listeners.iter().filter(|x| mine(&x.tags, &x.arn)).collect();
    let groups: Vec<_> = ss.target_groups.iter().filter(|t| mine(&t.tags, &t.arn)).collect();
    let lbs: Vec<_> = ss.load_balancers.iter().filter(|b| mine(&b.tags, &b.arn)).collect();
    for id in listeners.iter().map(|x| &x.arn).chain(groups.iter().map(|t| &t.arn)).chain(lbs.iter().map(|b| &b.arn)) {
        p.claimed.insert(id.clone());
    }
    if kept {
        return;
    }
    let replaced = || Reason::Replaced { why: why.to_string() };
    let mut listener_deletes = Vec::new();
    for x in listeners {
        listener_deletes.push(Some(p.add(
            &cx.subject,
            account,
            format!("service-side listener :{} ({})", x.port, x.arn),
            Verb::Delete,
            replaced(),
            Op::Listener(super::ListenerOp::DeleteListener { arn: x.arn.clone() }),
            service_deletes.clone(),
        )));
    }
    for t in groups {
        p.add(
            &cx.subject,
            account,
            format!("service-side target group {}", t.name),
            Verb::Delete,
            replaced(),
            Op::TargetGroup(super::TargetGroupOp::DeleteTargetGroup { arn: t.arn.clone() }),
            listener_deletes.clone(),
        );
    }
    for b in lbs {
        p.add(
            &cx.subject,
            account,
            format!("service-side load balancer {}", b.name),
            Verb::Delete,
            replaced(),
            Op::LoadBalancer(super::LoadBalancerOp::DeleteLoadBalancer { arn: b.arn.clone() }),
            listener_deletes.iter().chain(&service_deletes).copied().collect(),
        );
    }
}

/// Deletes one of the link's endpoint services once no endpoint connects to it; `None` while
/// one does (reported as waiting).
fn retire<'a>(p: &mut Planner<'a>, cx: &LinkCx<'a, '_>, account: &str, s: &EndpointService, why: &str) -> Option<usize> {
    let users = connected(p, &s.service_name);
    if !users.is_empty() {
        p.report(&cx.subject).waiting.push(format!(
            "endpoint service {} is deleted once endpoint(s) {} are gone",
            s.id,
            users.join(", ")
        ));
        return None;
    }
    Some(p.add(
        &cx.subject,
        account,
        format!("endpoint service {}", s.id),
        Verb::Delete,
        Reason::Replaced { why: why.to_string() },
        Op::EndpointService(EndpointServiceOp::DeleteVpcEndpointServiceConfigurations { service_id: s.id.clone() }),
        vec![],
    ))
}
