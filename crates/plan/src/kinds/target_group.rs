//! A link's IP target group in the gateway VPC, with its health check.

use serde::{Deserialize, Serialize};

use crate::kinds::ResourceKind;
use crate::model::{Reason, Subject, Verb};
use crate::op::{Op, Output};
use crate::planner::{LinkCx, Planner};
use super::KindOp;
use crosslink_desired::{AdoptionPolicy, HealthProtocol, Link};
use crate::tags;
use sha2::{Digest, Sha256};
use crate::observed::AccountState;
use crate::planner::Prunable;
use crate::kinds::targets::RegisteredTarget;
use crate::op::{Ref, Service};
use crate::observed::Tags;

// ---- What is observed ------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheckSettings {
    pub protocol: String,
    pub path: Option<String>,
    /// `traffic-port` or a number.
    pub port: String,
    pub interval_seconds: u16,
    pub healthy_threshold: u8,
    pub unhealthy_threshold: u8,
}

/// Its field of `AccountState` (`target_groups`), each with its targets.
pub type Observed = Vec<TargetGroup>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetGroup {
    pub arn: String,
    pub name: String,
    pub vpc_id: String,
    pub protocol: String,
    pub port: u16,
    pub target_type: String,
    pub health_check: HealthCheckSettings,
    pub tags: Tags,
    /// Registered targets (read only for crosslink's own target groups).
    pub targets: Vec<RegisteredTarget>,
}

// ---- Operations -------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum TargetGroupOp {
    CreateTargetGroup {
        name: String,
        vpc_id: String,
        port: u16,
        health_check: HealthCheckSettings,
        tags: Tags,
    },
    ModifyTargetGroup {
        arn: String,
        health_check: HealthCheckSettings,
    },
    DeleteTargetGroup {
        arn: String,
    },
}

impl KindOp for TargetGroupOp {
    fn service(&self) -> Service {
        Service::Elbv2
    }

    fn name(&self) -> &'static str {
        match self {
            Self::CreateTargetGroup { .. } => "CreateTargetGroup",
            Self::ModifyTargetGroup { .. } => "ModifyTargetGroup",
            Self::DeleteTargetGroup { .. } => "DeleteTargetGroup",
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::CreateTargetGroup { name, .. } => name.clone(),
            Self::ModifyTargetGroup { arn, .. } | Self::DeleteTargetGroup { arn } => arn.clone(),
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::CreateTargetGroup { .. } | Self::ModifyTargetGroup { .. } | Self::DeleteTargetGroup { .. } => vec![],
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::CreateTargetGroup { .. } | Self::ModifyTargetGroup { .. } | Self::DeleteTargetGroup { .. } => vec![],
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
        matches!(self, Self::DeleteTargetGroup { .. })
    }
}

// ---- Planning: names and comparisons ----------------------------------------------------------

fn short_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().take(3).map(|b| format!("{b:02x}")).collect()
}

/// The target group name: readable, unique per link and its immutable settings (so that a
/// replacement never collides with the group it replaces), at most 32 characters.
pub fn target_group_name(link: &str, vpc: &str, port: u16) -> String {
    let stem: String = link.chars().take(22).collect();
    let stem = stem.trim_end_matches('-');
    format!("cl-{stem}-{}", short_hash(&[link, vpc, &port.to_string(), "TCP"]))
}

pub fn health_check(l: &Link) -> HealthCheckSettings {
    let hc = l.spec.health_check.clone().unwrap_or_default();
    HealthCheckSettings {
        protocol: hc.protocol.as_str().to_string(),
        path: match hc.protocol {
            HealthProtocol::Tcp => None,
            _ => hc.path.clone(),
        },
        port: hc.port.map(|p| p.to_string()).unwrap_or_else(|| "traffic-port".into()),
        interval_seconds: hc.interval_seconds,
        healthy_threshold: hc.healthy_threshold,
        unhealthy_threshold: hc.unhealthy_threshold,
    }
}

pub(crate) fn hc_drift(live: &HealthCheckSettings, want: &HealthCheckSettings) -> Option<(String, String, String)> {
    let fields: [(&str, String, String); 6] = [
        ("healthCheck.protocol", live.protocol.clone(), want.protocol.clone()),
        ("healthCheck.path", live.path.clone().unwrap_or("-".into()), want.path.clone().unwrap_or("-".into())),
        ("healthCheck.port", live.port.clone(), want.port.clone()),
        ("healthCheck.intervalSeconds", live.interval_seconds.to_string(), want.interval_seconds.to_string()),
        ("healthCheck.healthyThreshold", live.healthy_threshold.to_string(), want.healthy_threshold.to_string()),
        ("healthCheck.unhealthyThreshold", live.unhealthy_threshold.to_string(), want.unhealthy_threshold.to_string()),
    ];
    fields.into_iter().find(|(_, l, w)| l != w).map(|(f, l, w)| (f.to_string(), l, w))
}

// ---- Clean-up and tags (read by the planner's generic machinery) ------------------------------

pub(crate) fn prunable(st: &AccountState) -> Vec<Prunable<'_>> {
    st.target_groups
        .iter()
        .map(|tg| Prunable {
            tags: &tg.tags,
            id: tg.arn.clone(),
            what: format!("target group {}", tg.name),
            delete: TargetGroupOp::DeleteTargetGroup { arn: tg.arn.clone() }.into(),
            uses: Vec::new(),
            follows_link: true,
            deleting: false,
        })
        .collect()
}

pub(crate) use crate::planner::nothing_first as before_delete;

/// ELBv2 tags are added with one call for any of its resources (`AddTags`).
pub(crate) use super::load_balancer::{tag_op, untag_op};

// ---- Planning (the link stage) ----------------------------------------------------------------

/// What the link's target group hands on: its name (derived from the link, VPC and port), its
/// ARN (pending while this plan creates it), the action creating it, what was observed of it,
/// and the deletes of the link's other target groups (the changes of the link's listeners go
/// before them: `listener::plan`).
pub(crate) struct Out<'a> {
    pub(crate) name: String,
    pub(crate) arn: Ref,
    pub(crate) action: Option<usize>,
    pub(crate) current: Option<&'a TargetGroup>,
    pub(crate) stale: Vec<usize>,
    /// This plan adopts `current` (built without crosslink): its targets the YAML does not name
    /// are reported, and deregistered only on a later pass.
    pub(crate) adopting: bool,
}

impl Default for Out<'_> {
    fn default() -> Self {
        Out {
            name: String::new(),
            arn: Ref::Pending("the link's target group".into()),
            action: None,
            current: None,
            stale: Vec::new(),
            adopting: false,
        }
    }
}

/// The link's target group: its own of the derived name, health check and tags compared, or
/// created; the name taken by another is a problem; its other target groups (port or VPC
/// changed) are deleted once no listener uses them.
pub(crate) fn plan<'a>(p: &mut Planner<'a>, cx: &mut LinkCx<'a, '_>) -> Option<()> {
    let (l, state, subject, account) = (cx.link, cx.gw.state, &cx.subject, cx.gw.account.as_str());
    let out = &mut cx.out.target_group;
    let port = l.spec.targets.first().map(|t| t.port).unwrap_or(80);
    out.name = target_group_name(&l.metadata.name, &cx.gw.gw.spec.vpc_id, port);
    let tg_name = out.name.clone();
    let want_hc = health_check(l);
    let mine: Vec<&'a TargetGroup> = p.owned_target_groups(state, &cx.owner);
    // The derived name, or one adopted under its own name.
    out.current = mine
        .iter()
        .find(|t| t.name == tg_name)
        .or_else(|| mine.iter().find(|t| t.tags.contains_key(tags::ADOPTED)))
        .copied();
    // A group that cannot be adopted in place is replaced by one of the link's own; the
    // listener's switch to it is held until allowed (`Plan::replacing`).
    let mut replaces: Option<(&'a TargetGroup, String)> = None;
    if out.current.is_none()
        && l.spec.adoption == AdoptionPolicy::Adopt
        && let Some(tg) = adoptable(p, cx)?
    {
        match unfit(tg, &cx.gw.gw.spec.vpc_id) {
            None => {
                adopt(p, cx, tg, &want_hc)?;
                return Some(());
            }
            Some(why) => replaces = Some((tg, why)),
        }
    }
    let out = &mut cx.out.target_group;
    match out.current {
        Some(tg) => {
            p.claimed.insert(tg.arn.clone());
            repair_health_check(p, subject, account, tg, &want_hc);
            p.tag_drift(
                ResourceKind::TargetGroup,
                subject,
                account,
                &format!("target group {}", tg.name),
                &tg.arn,
                &tg.tags,
                &cx.want_tags,
                None,
            );
            p.report(subject).resources.insert("targetGroup".into(), tg.arn.clone());
            out.arn = Ref::Known(tg.arn.clone());
        }
        None => {
            if let Some(other) = state.target_groups.iter().find(|t| t.name == tg_name) {
                p.problem(
                    subject,
                    "NameTaken",
                    format!("a target group named {tg_name} exists ({}) and is not this link's", other.arn),
                    Some("delete or rename that target group; crosslink derives the name from the link".into()),
                );
                return None;
            }
            let reason = match &replaces {
                Some((old, why)) => Reason::Replaced {
                    why: format!("target group {} cannot be adopted in place: {why}", old.name),
                },
                None => Reason::Missing,
            };
            let a = p.add(
                subject,
                account,
                format!("target group {tg_name}"),
                Verb::Create,
                reason,
                Op::TargetGroup(TargetGroupOp::CreateTargetGroup {
                    name: tg_name.clone(),
                    vpc_id: cx.gw.gw.spec.vpc_id.clone(),
                    port,
                    health_check: want_hc.clone(),
                    tags: cx.want_tags.clone(),
                }),
                vec![],
            );
            (out.arn, out.action) = (Ref::created(format!("target group {tg_name}"), a, Output::Id), Some(a));
            if let Some((old, why)) = &replaces {
                // The listener's switch to it is what replaces the path: held (`listener::plan`).
                p.report(subject).warnings.push(format!(
                    "target group {} cannot be adopted in place ({why}): {tg_name} replaces it, and the listener's switch is held until apply or the daemon runs with --allow-replacement; the old group is not crosslink's and stays",
                    old.name
                ));
            }
        }
    }
    let current = out.current.map(|t| t.arn.clone());
    for tg in mine.into_iter().filter(|t| Some(&t.arn) != current.as_ref()) {
        p.claimed.insert(tg.arn.clone());
        let a = p.add(
            subject,
            account,
            format!("target group {}", tg.name),
            Verb::Delete,
            Reason::Replaced { why: format!("the link's target group is now {tg_name} (port or VPC changed)") },
            Op::TargetGroup(TargetGroupOp::DeleteTargetGroup { arn: tg.arn.clone() }),
            vec![],
        );
        out.stale.push(a);
    }
    Some(())
}

/// The target group a link adopts (`adoption: Adopt`): the one the gateway NLB's listener on the
/// link's port forwards to, when neither carries a crosslink instance's tags. A listener or target
/// group of another crosslink instance is a problem naming it (`None` out: the link is held).
fn adoptable<'a>(p: &mut Planner<'a>, cx: &LinkCx<'a, '_>) -> Option<Option<&'a TargetGroup>> {
    let (gw, l, subject) = (cx.gw, cx.link, &cx.subject);
    let port = l.spec.listener_port;
    let on_lb = p.listeners_on(gw.state, gw.out.load_balancer.arn.known());
    let Some(listener) = on_lb.into_iter().find(|x| x.port == port) else { return Some(None) };
    let tg = listener.target_group_arn.as_deref().and_then(|arn| gw.state.target_groups.iter().find(|t| t.arn == arn));
    for (what, t) in [("listener", Some(&listener.tags)), ("target group", tg.map(|t| &t.tags))] {
        let Some(instance) = t.and_then(|t| t.get(tags::MANAGED_BY)) else { continue };
        if instance != &p.s.instance {
            p.problem(
                subject,
                "OwnedByAnotherInstance",
                format!("the {what} on :{port} belongs to crosslink instance `{instance}`: it is never adopted"),
                Some(format!("release it from `{instance}` first (deletionPolicy: Retain, then crosslink release --instance {instance}), or choose another listenerPort")),
            );
            return None;
        }
        // This instance's, of another link: not adoptable (the listener's own planning says who).
        return Some(None);
    }
    Some(tg)
}

/// Why a target group cannot serve a link without being replaced (what cannot change in place:
/// not TCP, not of type ip, in another VPC), if it cannot.
fn unfit(tg: &TargetGroup, vpc: &str) -> Option<String> {
    let unfit: Vec<String> = [
        (tg.protocol != "TCP").then(|| format!("protocol {} (the link needs TCP)", tg.protocol)),
        (tg.target_type != "ip").then(|| format!("target type {} (the link needs ip)", tg.target_type)),
        (tg.vpc_id != vpc).then(|| format!("VPC {} (the link needs the gateway's {vpc})", tg.vpc_id)),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!unfit.is_empty()).then(|| unfit.join(", "))
}

/// Takes over a target group built without crosslink: tagged as the link's (with `adopted`, so
/// that its own name stays), its health check repaired in place.
fn adopt<'a>(p: &mut Planner<'a>, cx: &mut LinkCx<'a, '_>, tg: &'a TargetGroup, want_hc: &HealthCheckSettings) -> Option<()> {
    let (l, subject, account) = (cx.link, &cx.subject, cx.gw.account.as_str());
    let rule = format!("by the forward action of listener :{} on the gateway's load balancer", l.spec.listener_port);
    let resource = format!("target group {} ({})", tg.name, tg.arn);
    p.adopt(ResourceKind::TargetGroup, subject, account, resource, &tg.arn, &tg.tags, &cx.want_tags, rule)?;
    repair_health_check(p, subject, account, tg, want_hc);
    p.report(subject).resources.insert("targetGroup".into(), tg.arn.clone());
    let out = &mut cx.out.target_group;
    (out.current, out.arn, out.adopting) = (Some(tg), Ref::Known(tg.arn.clone()), true);
    Some(())
}

/// A target group's health check put back to the wanted one (in place: ModifyTargetGroup).
fn repair_health_check(p: &mut Planner<'_>, subject: &Subject, account: &str, tg: &TargetGroup, want: &HealthCheckSettings) {
    if let Some((field, live, desired)) = hc_drift(&tg.health_check, want) {
        p.add(
            subject,
            account,
            format!("target group {}", tg.name),
            Verb::Update,
            Reason::Drift { field, live, desired },
            Op::TargetGroup(TargetGroupOp::ModifyTargetGroup { arn: tg.arn.clone(), health_check: want.clone() }),
            vec![],
        );
    }
}

// ---- Planning (a privateLink's service side) ---------------------------------------------------

/// A privateLink's target group in the service VPC for its NLB (`load_balancer`: its name or
/// ARN), with the link's health check: its targets are the link's (registered by
/// `targets::plan_service_side`).
pub(crate) fn plan_service_side<'a>(
    p: &mut Planner<'a>,
    side: &crate::kinds::endpoint_service::ServiceSide<'a>,
    l: &Link,
    load_balancer: &str,
) -> Option<(Ref, Option<usize>, Option<&'a TargetGroup>)> {
    let port = l.spec.listener_port;
    // Per load balancer too: a target group serves one NLB, so another service-side NLB gets its
    // own group (the old one goes with the old NLB).
    let name = target_group_name(&l.metadata.name, &format!("{}/{load_balancer}", side.vpc), port);
    let want_hc = health_check(l);
    match side.st.target_groups.iter().find(|t| t.name == name) {
        Some(tg) if p.owned_by(&tg.tags, &side.owner) && tags::is_transport(&tg.tags) => {
            p.claimed.insert(tg.arn.clone());
            repair_health_check(p, &side.subject, &side.account, tg, &want_hc);
            Some((Ref::Known(tg.arn.clone()), None, Some(tg)))
        }
        Some(tg) => {
            p.problem(
                &side.subject,
                "NameTaken",
                format!("target group {name} ({}) exists in account {} and is not this link's", tg.arn, side.account),
                Some("delete or rename that target group: crosslink names the service-side group after the link".into()),
            );
            None
        }
        None => {
            let a = p.add(
                &side.subject,
                &side.account,
                format!("service-side target group {name}"),
                Verb::Create,
                Reason::Missing,
                Op::TargetGroup(TargetGroupOp::CreateTargetGroup {
                    name: name.clone(),
                    vpc_id: side.vpc.clone(),
                    port,
                    health_check: want_hc,
                    tags: side.tags.clone(),
                }),
                vec![],
            );
            Some((Ref::created(format!("target group {name}"), a, Output::Id), Some(a), None))
        }
    }
}
