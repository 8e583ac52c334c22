//! A link's listener on the gateway's load balancer, forwarding to its target group.

use serde::{Deserialize, Serialize};

use crosslink_desired::{AdoptionPolicy, LoadBalancerRef};
use crate::kinds::ResourceKind;
use crate::model::{Reason, Subject, Verb};
use crate::op::Op;
use crate::planner::{LinkCx, Planner, is_retained};
use crate::tags;
use super::KindOp;
use crate::observed::AccountState;
use crate::planner::Prunable;
use crate::op::{Ref, Service};
use crate::observed::Tags;

// ---- What is observed ------------------------------------------------------------------------

/// Its field of `AccountState` (`listeners`).
pub type Observed = Vec<Listener>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Listener {
    pub arn: String,
    pub load_balancer_arn: String,
    pub port: u16,
    pub protocol: String,
    /// The target group of the default forward action.
    pub target_group_arn: Option<String>,
    /// A TLS listener's default certificate and security policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_policy: Option<String>,
    pub tags: Tags,
}

impl Listener {
    /// Its TLS settings, if it is a TLS listener.
    pub fn tls(&self) -> Option<ListenerTls> {
        (self.protocol == "TLS").then(|| ListenerTls {
            certificate_arn: self.certificate_arn.clone().unwrap_or_default(),
            ssl_policy: self.ssl_policy.clone().unwrap_or_default(),
        })
    }
}

/// A TLS listener's certificate and security policy (absent: a TCP listener).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerTls {
    pub certificate_arn: String,
    pub ssl_policy: String,
}

impl ListenerTls {
    pub fn of(tls: Option<&crosslink_desired::BackendTls>) -> Option<ListenerTls> {
        tls.map(|t| ListenerTls { certificate_arn: t.certificate_arn.clone(), ssl_policy: t.ssl_policy.clone() })
    }
}

// ---- Operations -------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum ListenerOp {
    /// A TCP listener, or a TLS one with `tls`.
    CreateListener {
        load_balancer_arn: Ref,
        port: u16,
        target_group_arn: Ref,
        #[serde(skip_serializing_if = "Option::is_none")]
        tls: Option<ListenerTls>,
        tags: Tags,
    },
    /// Sets the port, the target group and, with `tls`, the certificate and policy.
    ModifyListener {
        arn: String,
        port: u16,
        target_group_arn: Ref,
        #[serde(skip_serializing_if = "Option::is_none")]
        tls: Option<ListenerTls>,
        /// The protocol changes (to TLS with `tls`, else to TCP); otherwise it is left out of
        /// the call, as AWS allows.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        protocol_changes: bool,
    },
    DeleteListener {
        arn: String,
    },
}

impl KindOp for ListenerOp {
    fn service(&self) -> Service {
        Service::Elbv2
    }

    fn name(&self) -> &'static str {
        match self {
            Self::CreateListener { .. } => "CreateListener",
            Self::ModifyListener { .. } => "ModifyListener",
            Self::DeleteListener { .. } => "DeleteListener",
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::CreateListener { load_balancer_arn, port, .. } => format!("{load_balancer_arn}:{port}"),
            Self::ModifyListener { arn, .. } | Self::DeleteListener { arn } => arn.clone(),
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::CreateListener { load_balancer_arn, target_group_arn, .. } => vec![load_balancer_arn, target_group_arn],
            Self::ModifyListener { target_group_arn, .. } => vec![target_group_arn],
            Self::DeleteListener { .. } => vec![],
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::CreateListener { load_balancer_arn, target_group_arn, .. } => vec![load_balancer_arn, target_group_arn],
            Self::ModifyListener { target_group_arn, .. } => vec![target_group_arn],
            Self::DeleteListener { .. } => vec![],
        }
    }

    fn lets_chain(&self, state: Option<&str>) -> bool {
        let _ = state;
        true
    }

    fn on_new_resource(&self) -> bool {
        false
    }

    fn is_delete(&self) -> bool {
        matches!(self, Self::DeleteListener { .. })
    }
}

// ---- Clean-up and tags (read by the planner's generic machinery) ------------------------------

pub(crate) fn prunable(st: &AccountState) -> Vec<Prunable<'_>> {
    st.listeners
        .iter()
        .map(|x| Prunable {
            tags: &x.tags,
            id: x.arn.clone(),
            what: format!("listener :{}", x.port),
            delete: ListenerOp::DeleteListener { arn: x.arn.clone() }.into(),
            uses: std::iter::once(x.load_balancer_arn.clone()).chain(x.target_group_arn.clone()).collect(),
            follows_link: true,
            deleting: false,
        })
        .collect()
}

pub(crate) use crate::planner::nothing_first as before_delete;

/// ELBv2 tags are added with one call for any of its resources (`AddTags`).
pub(crate) use super::load_balancer::{tag_op, untag_op};

// ---- Planning (the link stage) ----------------------------------------------------------------

/// What the link's listener hands to its gateway's API: a listener this plan makes for it (a
/// port move: its integrations wait for it), and the deletes of listeners it leaves (they wait
/// for the deployment).
#[derive(Default)]
pub(crate) struct Planned {
    pub(crate) made: Option<usize>,
    pub(crate) after_deploy: Vec<usize>,
}

pub(crate) type Out<'a> = Planned;

/// The link's listener on its gateway's load balancer, forwarding to its target group: created,
/// moved to a new port (make before break: the old one goes after the API is deployed on the new
/// one), pointed at a new target group; a port held by another is waited for, swapped, or a
/// problem (`port_taken`); the link's other listeners, here and on another load balancer, are
/// deleted. The link's replaced target groups are deleted after all of these.
pub(crate) fn plan<'a>(p: &mut Planner<'a>, cx: &mut LinkCx<'a, '_>) -> Option<()> {
    let (gw, l, subject, account) = (cx.gw, cx.link, &cx.subject, cx.gw.account.as_str());
    let name = &l.metadata.name;
    let (lb, tg) = (&gw.out.load_balancer, &cx.out.target_group);
    let on_lb: Vec<&Listener> = p.listeners_on(gw.state, lb.arn.known());
    let mine: Vec<&Listener> = on_lb.iter().filter(|x| p.owned_by(&x.tags, &cx.owner)).copied().collect();
    let lb_label = match &gw.gw.spec.load_balancer {
        LoadBalancerRef::Name(n) => n.clone(),
        LoadBalancerRef::Arn(a) => a.rsplit('/').nth(1).unwrap_or(a).to_string(),
    };
    let want_port = l.spec.listener_port;
    let want_tls = ListenerTls::of(l.spec.tls.as_ref());
    // A listener built without crosslink on the link's port, taken over (`adoption: Adopt`).
    let adopted = (mine.is_empty() && l.spec.adoption == AdoptionPolicy::Adopt)
        .then(|| on_lb.iter().find(|o| o.port == want_port && !o.tags.contains_key(tags::MANAGED_BY)))
        .flatten()
        .copied();
    let chosen = mine.iter().find(|x| x.port == want_port).or(mine.first()).copied().or(adopted);
    // Every change to the link's listeners: a replaced target group goes after them.
    let mut listener_actions: Vec<usize> = Vec::new();
    let out = &mut cx.out.listener;
    match chosen {
        Some(x) => {
            p.claimed.insert(x.arn.clone());
            p.report(subject).resources.insert("listener".into(), x.arn.clone());
            if adopted.is_some() {
                let rule = format!("by port {want_port} on {lb_label}");
                let resource = format!("listener :{want_port} ({})", x.arn);
                p.adopt(ResourceKind::Listener, subject, account, resource, &x.arn, &x.tags, &cx.want_tags, rule)?;
            }
            let tg_differs = tg.arn.known() != x.target_group_arn.as_deref();
            let tls_drift = tls_drift(&x.tls(), &want_tls);
            let port_differs = x.port != want_port;
            let mut leaving = false;
            if port_differs && on_lb.iter().any(|o| o.port == want_port && o.arn != x.arn) {
                if port_taken(p, subject, name, want_port, Some(x), &on_lb, &lb_label) {
                    leaving = true;
                    listener_actions.push(p.add(
                        subject,
                        account,
                        format!("listener :{} on {lb_label}", x.port),
                        Verb::Delete,
                        Reason::Replaced { why: format!("frees :{} in a port swap; recreated on :{want_port}", x.port) },
                        Op::Listener(ListenerOp::DeleteListener { arn: x.arn.clone() }),
                        vec![],
                    ));
                }
            } else if port_differs {
                // Make before break: the API points at the old port until it is deployed with
                // the new one, so a new listener comes first and the old one goes last.
                leaving = true;
                let new = p.add(
                    subject,
                    account,
                    format!("listener :{want_port} on {lb_label}"),
                    Verb::Create,
                    Reason::Drift { field: "listenerPort".into(), live: x.port.to_string(), desired: want_port.to_string() },
                    Op::Listener(ListenerOp::CreateListener {
                        load_balancer_arn: lb.arn.clone(),
                        port: want_port,
                        target_group_arn: tg.arn.clone(),
                        tls: want_tls.clone(),
                        tags: cx.want_tags.clone(),
                    }),
                    vec![lb.action, tg.action],
                );
                let old = p.add(
                    subject,
                    account,
                    format!("listener :{} on {lb_label}", x.port),
                    Verb::Delete,
                    Reason::Replaced {
                        why: format!("moved to :{want_port}; removed after the API is deployed there (make before break)"),
                    },
                    Op::Listener(ListenerOp::DeleteListener { arn: x.arn.clone() }),
                    vec![Some(new)],
                );
                out.made = Some(new);
                out.after_deploy.push(old);
                listener_actions.extend([new, old]);
            } else if tg_differs || tls_drift.is_some() {
                let reason = match tls_drift {
                    Some(r) if !tg_differs => r,
                    _ => Reason::Drift {
                        field: "listener target group".into(),
                        live: x.target_group_arn.clone().unwrap_or("(none)".into()),
                        desired: tg.arn.to_string(),
                    },
                };
                let a = p.add(
                    subject,
                    account,
                    format!("listener :{} on {lb_label}", x.port),
                    Verb::Update,
                    reason,
                    Op::Listener(ListenerOp::ModifyListener {
                        arn: x.arn.clone(),
                        port: want_port,
                        target_group_arn: tg.arn.clone(),
                        tls: want_tls.clone(),
                        protocol_changes: x.protocol != protocol(&want_tls),
                    }),
                    vec![tg.action],
                );
                listener_actions.push(a);
                if x.protocol != protocol(&want_tls) {
                    // The integrations change scheme with it: they wait for it.
                    out.made = Some(a);
                }
                if x.protocol == "TLS" && want_tls.is_none() {
                    p.plan.weakening.insert(a, format!("listener :{} of Link/{name}: TLS -> TCP (backend TLS off)", x.port));
                }
                // An adopted listener moving traffic off a target group crosslink did not build
                // (one that could not be adopted in place) replaces a working path: held until
                // allowed.
                let live_tg = x.target_group_arn.as_deref().and_then(|arn| gw.state.target_groups.iter().find(|t| t.arn == arn));
                let was_adopted = adopted.is_some() || x.tags.contains_key(crate::tags::ADOPTED);
                if tg_differs
                    && was_adopted
                    && let Some(old) = live_tg.filter(|t| !p.owned(&t.tags))
                {
                    p.plan.replacing.insert(
                        a,
                        format!(
                            "listener :{} of Link/{name} moves from target group {} ({}), which crosslink did not build, to {}",
                            x.port, old.name, old.arn, tg.arn
                        ),
                    );
                }
            }
            if !leaving && adopted.is_none() {
                p.tag_drift(
                    ResourceKind::Listener,
                    subject,
                    account,
                    &format!("listener :{}", x.port),
                    &x.arn,
                    &x.tags,
                    &cx.want_tags,
                    None,
                );
            }
        }
        None => {
            if on_lb.iter().any(|o| o.port == want_port) {
                port_taken(p, subject, name, want_port, None, &on_lb, &lb_label);
            } else {
                listener_actions.push(p.add(
                    subject,
                    account,
                    format!("listener :{want_port} on {lb_label}"),
                    Verb::Create,
                    Reason::Missing,
                    Op::Listener(ListenerOp::CreateListener {
                        load_balancer_arn: lb.arn.clone(),
                        port: want_port,
                        target_group_arn: tg.arn.clone(),
                        tls: want_tls.clone(),
                        tags: cx.want_tags.clone(),
                    }),
                    vec![lb.action, tg.action],
                ));
            }
        }
    }
    // Other listeners of this link: replaced ones, duplicates. The API may still point at them
    // until it is deployed again.
    for x in &mine {
        if chosen.is_some_and(|c| c.arn == x.arn) {
            continue;
        }
        p.claimed.insert(x.arn.clone());
        let a = p.add(
            subject,
            account,
            format!("listener :{} on {lb_label}", x.port),
            Verb::Delete,
            Reason::Replaced { why: format!("the link listens on :{want_port}") },
            Op::Listener(ListenerOp::DeleteListener { arn: x.arn.clone() }),
            vec![],
        );
        out.after_deploy.push(a);
        listener_actions.push(a);
    }
    // The link's listeners on another load balancer of this account: it moved gateways.
    let elsewhere: Vec<&Listener> = p
        .owned_listeners(gw.state, &cx.owner)
        .into_iter()
        .filter(|x| lb.arn.known() != Some(x.load_balancer_arn.as_str()))
        .collect();
    for x in elsewhere {
        p.claimed.insert(x.arn.clone());
        listener_actions.push(p.add(
            subject,
            account,
            format!("listener :{} on {}", x.port, x.load_balancer_arn.rsplit('/').nth(1).unwrap_or("another NLB")),
            Verb::Delete,
            Reason::Replaced { why: format!("the link is served by Gateway/{} now", gw.gw.metadata.name) },
            Op::Listener(ListenerOp::DeleteListener { arn: x.arn.clone() }),
            vec![],
        ));
    }
    // Switch the listeners first: a target group in use cannot be deleted.
    for &tg_delete in &tg.stale {
        for &a in &listener_actions {
            p.wait_for(tg_delete, a);
        }
    }
    Some(())
}

fn protocol(tls: &Option<ListenerTls>) -> &'static str {
    if tls.is_some() { "TLS" } else { "TCP" }
}

/// The first difference between a listener's protocol, certificate and policy and the wanted.
fn tls_drift(live: &Option<ListenerTls>, want: &Option<ListenerTls>) -> Option<Reason> {
    let drift = |field: &str, live: &str, desired: &str| {
        Some(Reason::Drift { field: field.into(), live: live.into(), desired: desired.into() })
    };
    match (live, want) {
        (None, None) => None,
        (l, w) if l.is_some() != w.is_some() => drift("listener protocol", protocol(l), protocol(w)),
        (Some(l), Some(w)) if l.certificate_arn != w.certificate_arn => {
            drift("listener certificate", &l.certificate_arn, &w.certificate_arn)
        }
        (Some(l), Some(w)) if l.ssl_policy != w.ssl_policy => drift("listener sslPolicy", &l.ssl_policy, &w.ssl_policy),
        _ => None,
    }
}

/// The port a link wants is held by another listener. Waits when the holder is moving away or
/// being removed; breaks a cycle of links swapping ports (returns true: delete this link's
/// listener, it is recreated once its port is free); otherwise a problem.
fn port_taken(
    p: &mut Planner<'_>,
    subject: &Subject,
    me: &str,
    port: u16,
    mine: Option<&Listener>,
    on_lb: &[&Listener],
    lb: &str,
) -> bool {
    let holder_at = |at: u16| on_lb.iter().find(|o| o.port == at && mine.is_none_or(|m| m.arn != o.arn)).copied();
    let Some(holder) = holder_at(port) else { return false };
    let owner = Some(holder).filter(|h| p.owned(&h.tags)).and_then(|h| tags::owner(&h.tags)).map(str::to_string);
    let moving_link = |owner: &Option<String>, at: u16| -> Option<(String, u16)> {
        let Some(Subject::Link(name)) = Subject::from_owner_tag(owner.as_deref()?) else { return None };
        let want = p.ix.link(&name)?.spec.listener_port;
        (want != at).then_some((name, want))
    };
    // A blocked link does not move: waiting for it would never end.
    let stuck = |n: &str| p.frozen.contains(n) || p.blocked(&Subject::Link(n.to_string()));
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
            let o = Some(h).filter(|h| p.owned(&h.tags)).and_then(|h| tags::owner(&h.tags)).map(str::to_string);
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
            p.problem(
                subject,
                "PortInUse",
                format!("port {port} on {lb} is held by Link/{first}, which cannot move while Link/{b} is blocked"),
                Some(format!("resolve Link/{b}'s problems, or choose another listenerPort")),
            );
            return false;
        }
        p.report(subject).waiting.push(format!("port {port} on {lb} is being freed by Link/{first}"));
        return false;
    }
    let (who, hint) = match owner.as_deref() {
        Some(o) if !p.owner_desired(o) && !is_retained(&holder.tags) => {
            p.report(subject).waiting.push(format!("port {port} on {lb} is being freed ({o} was removed)"));
            return false;
        }
        Some(o) if !p.owner_desired(o) => (
            format!("the listener of {o}, kept when it was removed (deletionPolicy Retain)"),
            format!("choose another listenerPort, or delete listener {} by hand", holder.arn),
        ),
        Some(o) => (o.to_string(), "choose another listenerPort".to_string()),
        None => (
            "a listener not managed by crosslink".to_string(),
            "choose another listenerPort, or remove the listener holding it".to_string(),
        ),
    };
    p.problem(subject, "PortInUse", format!("port {port} on {lb} is held by {who}"), Some(hint));
    false
}

// ---- Planning (a privateLink's service side) ---------------------------------------------------

/// A privateLink's TCP listener on the service-side NLB, on the link's listener port, forwarding
/// to the service-side target group: the listener there (`None` while this plan makes it, or
/// after a problem: a listener of the port not made for the link). The link's other listeners
/// (another port, another NLB) go with the rest of its old service side
/// (`endpoint_service::retire_side`), once this one is there.
pub(crate) fn plan_service_side<'a>(
    p: &mut Planner<'a>,
    side: &crate::kinds::endpoint_service::ServiceSide<'a>,
    port: u16,
    lb_arn: &Ref,
    lb_action: Option<usize>,
    tg_arn: &Ref,
    tg_action: Option<usize>,
) -> Option<Option<&'a Listener>> {
    let on_lb = p.listeners_on(side.st, lb_arn.known());
    match on_lb.iter().find(|x| x.port == port) {
        Some(x) if !(p.owned_by(&x.tags, &side.owner) && tags::is_transport(&x.tags)) => {
            p.problem(
                &side.subject,
                "PortTaken",
                format!("the service-side load balancer has a listener on port {port} ({}) that is not this link's", x.arn),
                Some("choose another listenerPort, or remove that listener".into()),
            );
            None
        }
        Some(x) => {
            p.claimed.insert(x.arn.clone());
            if x.target_group_arn.as_deref() != tg_arn.known() || x.protocol != "TCP" {
                p.add(
                    &side.subject,
                    &side.account,
                    format!("service-side listener :{port}"),
                    Verb::Update,
                    Reason::Drift {
                        field: "defaultActions".into(),
                        live: format!("{} to {}", x.protocol, x.target_group_arn.clone().unwrap_or_default()),
                        desired: format!("TCP to {tg_arn}"),
                    },
                    Op::Listener(ListenerOp::ModifyListener {
                        arn: x.arn.clone(),
                        port,
                        target_group_arn: tg_arn.clone(),
                        tls: None,
                        protocol_changes: x.protocol != "TCP",
                    }),
                    vec![tg_action],
                );
            }
            Some(Some(*x))
        }
        None => {
            p.add(
                &side.subject,
                &side.account,
                format!("service-side listener :{port}"),
                Verb::Create,
                Reason::Missing,
                Op::Listener(ListenerOp::CreateListener {
                    load_balancer_arn: lb_arn.clone(),
                    port,
                    target_group_arn: tg_arn.clone(),
                    tls: None,
                    tags: side.tags.clone(),
                }),
                vec![lb_action, tg_action],
            );
            Some(None)
        }
    }
}
