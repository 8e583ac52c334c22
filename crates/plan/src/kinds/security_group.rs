//! The security group of a privateLink link's interface endpoint, in the gateway VPC: it lets
//! the gateway NLB (its addresses in the gateway VPC, and its health checks) reach the endpoint
//! on the link's listener port, and nothing else.

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::KindOp;
use crate::model::{Reason, Subject, Verb};
use crate::observed::{AccountState, Tags};
use crate::op::{Op, Output, Ref, Service};
use crate::planner::{LinkCx, Made, Planner, Prunable};
use crate::tags;

// ---- What is observed ------------------------------------------------------------------------

/// Its field of `AccountState` (`security_groups`): crosslink's own only.
pub type Observed = Vec<SecurityGroup>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    pub vpc_id: String,
    /// Its inbound rules, one per (protocol, port range, CIDR).
    pub ingress: Vec<IngressRule>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressRule {
    /// `tcp`, `udp`, `-1` (all), as AWS reports it.
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    pub cidr: Ipv4Net,
}

// ---- Operations -------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum SecurityGroupOp {
    CreateSecurityGroup {
        name: String,
        description: String,
        vpc_id: String,
        tags: Tags,
    },
    AuthorizeSecurityGroupIngress {
        group_id: Ref,
        rules: Vec<IngressRule>,
    },
    RevokeSecurityGroupIngress {
        group_id: String,
        rules: Vec<IngressRule>,
    },
    DeleteSecurityGroup {
        group_id: String,
    },
}

impl KindOp for SecurityGroupOp {
    fn service(&self) -> Service {
        Service::Ec2
    }

    fn name(&self) -> &'static str {
        match self {
            Self::CreateSecurityGroup { .. } => "CreateSecurityGroup",
            Self::AuthorizeSecurityGroupIngress { .. } => "AuthorizeSecurityGroupIngress",
            Self::RevokeSecurityGroupIngress { .. } => "RevokeSecurityGroupIngress",
            Self::DeleteSecurityGroup { .. } => "DeleteSecurityGroup",
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::CreateSecurityGroup { name, .. } => name.clone(),
            Self::AuthorizeSecurityGroupIngress { group_id, .. } => group_id.to_string(),
            Self::RevokeSecurityGroupIngress { group_id, .. } | Self::DeleteSecurityGroup { group_id } => {
                group_id.clone()
            }
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::AuthorizeSecurityGroupIngress { group_id, .. } => vec![group_id],
            _ => vec![],
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::AuthorizeSecurityGroupIngress { group_id, .. } => vec![group_id],
            _ => vec![],
        }
    }

    fn lets_chain(&self, _state: Option<&str>) -> bool {
        true
    }

    fn on_new_resource(&self) -> bool {
        match self {
            Self::AuthorizeSecurityGroupIngress { group_id, .. } => group_id.known().is_none(),
            _ => false,
        }
    }

    fn is_delete(&self) -> bool {
        matches!(self, Self::DeleteSecurityGroup { .. })
    }
}

// ---- Planning: names and rules ----------------------------------------------------------------

/// The name of a link's endpoint security group.
pub fn security_group_name(link: &str) -> String {
    format!("crosslink-{link}-endpoint")
}

/// What the endpoint lets in: TCP on the listener port from the gateway VPC's CIDRs (where the
/// gateway NLB's addresses are).
pub fn wanted_rules(port: u16, gateway_cidrs: &[Ipv4Net]) -> Vec<IngressRule> {
    gateway_cidrs
        .iter()
        .map(|c| IngressRule { protocol: "tcp".into(), from_port: i32::from(port), to_port: i32::from(port), cidr: *c })
        .collect()
}

// ---- Clean-up and tags (read by the planner's generic machinery) ------------------------------

pub(crate) fn prunable(st: &AccountState) -> Vec<Prunable<'_>> {
    st.security_groups
        .iter()
        .map(|g| {
            Prunable::plain(
                &g.tags,
                g.id.clone(),
                format!("security group {} ({})", g.name, g.id),
                SecurityGroupOp::DeleteSecurityGroup { group_id: g.id.clone() }.into(),
            )
        })
        .collect()
}

/// A group an endpoint still uses cannot be deleted (AWS answers DependencyViolation until the
/// endpoint's interfaces are gone): kept until then.
pub(crate) fn before_delete<'a>(
    p: &mut Planner<'a>,
    subject: &Subject,
    _account: &str,
    st: &'a AccountState,
    c: &Prunable<'a>,
) -> Option<Vec<Option<usize>>> {
    let users = users(st, &c.id);
    if users.is_empty() {
        return Some(Vec::new());
    }
    p.report(subject).waiting.push(format!("{} is deleted once endpoint(s) {} are gone", c.what, users.join(", ")));
    None
}

/// The endpoints (not yet gone) that use a security group.
fn users(st: &AccountState, group: &str) -> Vec<String> {
    st.endpoints
        .iter()
        .filter(|e| e.state != "deleted" && e.security_group_ids.iter().any(|g| g == group))
        .map(|e| e.id.clone())
        .collect()
}
pub(crate) use crate::planner::not_releasable as untag_op;
pub(crate) use crate::planner::untagged as tag_op;

// ---- Planning (the link stage) ----------------------------------------------------------------

pub(crate) type Out<'a> = Made;

/// A privateLink link's endpoint security group in the gateway VPC, with exactly the wanted
/// inbound rules: a rule added by hand (a wider source, another port) is revoked, as it lets more
/// in than the link asks for. Any other link: its groups go once its endpoints are gone (the
/// endpoint's planning orders that).
pub(crate) fn plan<'a>(p: &mut Planner<'a>, cx: &mut LinkCx<'a, '_>) -> Option<()> {
    let (l, gs, account) = (cx.link, cx.gw.state, cx.gw.account.as_str());
    let vpc = &cx.gw.gw.spec.vpc_id;
    let mine: Vec<&'a SecurityGroup> =
        gs.security_groups.iter().filter(|g| p.owned_by(&g.tags, &cx.owner) && &g.vpc_id == vpc).collect();
    for g in &mine {
        p.claimed.insert(g.id.clone());
    }
    if l.spec.transport.private_link().is_none() {
        return Some(());
    }
    let name = security_group_name(&l.metadata.name);
    let gw_cidrs = gs.vpcs.get(vpc).map(|v| v.cidrs.clone()).unwrap_or_default();
    let want = wanted_rules(l.spec.listener_port, &gw_cidrs);
    let out = &mut cx.out.security_group;
    match mine.iter().find(|g| g.name == name) {
        Some(g) => {
            p.report(&cx.subject).resources.insert("endpointSecurityGroup".into(), g.id.clone());
            out.id = Ref::Known(g.id.clone());
            let missing: Vec<IngressRule> = want.iter().filter(|r| !g.ingress.contains(r)).cloned().collect();
            let extra: Vec<IngressRule> = g.ingress.iter().filter(|r| !want.contains(r)).cloned().collect();
            let drift = || Reason::Drift { field: "ingress".into(), live: show(&g.ingress), desired: show(&want) };
            let changes = [
                (!missing.is_empty()).then(|| SecurityGroupOp::AuthorizeSecurityGroupIngress {
                    group_id: Ref::Known(g.id.clone()),
                    rules: missing,
                }),
                (!extra.is_empty())
                    .then(|| SecurityGroupOp::RevokeSecurityGroupIngress { group_id: g.id.clone(), rules: extra }),
            ];
            for op in changes.into_iter().flatten() {
                let what = format!("security group {} ({})", g.name, g.id);
                p.add(&cx.subject, account, what, Verb::Update, drift(), Op::SecurityGroup(op), vec![]);
            }
        }
        None => {
            let a = p.add(
                &cx.subject,
                account,
                format!("security group {name}"),
                Verb::Create,
                Reason::Missing,
                Op::SecurityGroup(SecurityGroupOp::CreateSecurityGroup {
                    name: name.clone(),
                    description: format!("crosslink: the gateway NLB to Link/{}'s endpoint", l.metadata.name),
                    vpc_id: vpc.clone(),
                    tags: super::endpoint_service::transport_tags(&cx.want_tags, "privateLink"),
                }),
                vec![],
            );
            let id = Ref::created(format!("security group {name}"), a, Output::Id);
            let rules = p.add(
                &cx.subject,
                account,
                format!("inbound rules of security group {name}"),
                Verb::Update,
                Reason::FollowsChanges { why: format!("the gateway VPC may reach the endpoint: {}", show(&want)) },
                Op::SecurityGroup(SecurityGroupOp::AuthorizeSecurityGroupIngress { group_id: id.clone(), rules: want }),
                vec![Some(a)],
            );
            out.id = id;
            out.action = Some(rules);
        }
    }
    Some(())
}

fn show(rules: &[IngressRule]) -> String {
    let v: Vec<String> = rules.iter().map(|r| format!("{} {}-{} from {}", r.protocol, r.from_port, r.to_port, r.cidr)).collect();
    format!("[{}]", v.join(", "))
}

/// A link's security groups its transport no longer uses (other than `keep`): each deleted once
/// no endpoint uses it any more.
pub(crate) fn retire(p: &mut Planner<'_>, subject: &Subject, account: &str, st: &AccountState, owner: &str, keep: Option<&str>) {
    let mine: Vec<&SecurityGroup> =
        st.security_groups.iter().filter(|g| p.owned_by(&g.tags, owner) && tags::is_transport(&g.tags)).collect();
    for g in mine {
        if keep == Some(g.id.as_str()) || !users(st, &g.id).is_empty() {
            continue;
        }
        p.add(
            subject,
            account,
            format!("security group {} ({})", g.name, g.id),
            Verb::Delete,
            Reason::Replaced { why: "the link's transport no longer uses it".into() },
            Op::SecurityGroup(SecurityGroupOp::DeleteSecurityGroup { group_id: g.id.clone() }),
            vec![],
        );
    }
}
