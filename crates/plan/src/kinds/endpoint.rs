//! A privateLink link's interface VPC endpoint in the gateway VPC, connected to the link's
//! endpoint service: its network interfaces (one per gateway subnet, each in its zone) are the
//! targets of the link's gateway target group.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::KindOp;
use crate::model::{Reason, Verb};
use crate::observed::{AccountState, Tags};
use crate::op::{Op, Ref, Service};
use crate::planner::{LinkCx, Planner, Prunable};

// ---- What is observed ------------------------------------------------------------------------

/// Its field of `AccountState` (`endpoints`): crosslink's own only.
pub type Observed = Vec<Endpoint>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Endpoint {
    /// `vpce-...`.
    pub id: String,
    pub vpc_id: String,
    pub service_name: String,
    /// `pendingAcceptance`, `pending`, `available`, `deleting`, `deleted`, `rejected`, `failed`,
    /// `expired` (as AWS reports it).
    pub state: String,
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
    /// Its network interfaces' private addresses and zones (`DescribeNetworkInterfaces`).
    pub interfaces: Vec<EndpointInterface>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointInterface {
    pub ip: Ipv4Addr,
    pub availability_zone: String,
}

impl Endpoint {
    /// Whether AWS is removing it or has: it is of no use, and nothing need wait for it.
    pub fn gone(&self) -> bool {
        matches!(self.state.as_str(), "deleting" | "deleted")
    }

    /// Whether it can never carry traffic (AWS does not recover these states).
    pub fn dead(&self) -> bool {
        matches!(self.state.as_str(), "rejected" | "failed" | "expired")
    }
}

// ---- Operations -------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum EndpointOp {
    /// An `Interface` endpoint, without private DNS (the gateway NLB targets its addresses).
    CreateVpcEndpoint {
        vpc_id: String,
        service_name: Ref,
        subnet_ids: Vec<String>,
        security_group_id: Ref,
        tags: Tags,
    },
    DeleteVpcEndpoints {
        endpoint_id: String,
    },
}

impl KindOp for EndpointOp {
    fn service(&self) -> Service {
        Service::Ec2
    }

    fn name(&self) -> &'static str {
        match self {
            Self::CreateVpcEndpoint { .. } => "CreateVpcEndpoint",
            Self::DeleteVpcEndpoints { .. } => "DeleteVpcEndpoints",
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::CreateVpcEndpoint { service_name, .. } => format!("endpoint to {service_name}"),
            Self::DeleteVpcEndpoints { endpoint_id } => endpoint_id.clone(),
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::CreateVpcEndpoint { service_name, security_group_id, .. } => vec![service_name, security_group_id],
            Self::DeleteVpcEndpoints { .. } => vec![],
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::CreateVpcEndpoint { service_name, security_group_id, .. } => vec![service_name, security_group_id],
            Self::DeleteVpcEndpoints { .. } => vec![],
        }
    }

    fn lets_chain(&self, _state: Option<&str>) -> bool {
        true
    }

    fn on_new_resource(&self) -> bool {
        false
    }

    fn is_delete(&self) -> bool {
        matches!(self, Self::DeleteVpcEndpoints { .. })
    }
}

// ---- Clean-up and tags (read by the planner's generic machinery) ------------------------------

pub(crate) fn prunable(st: &AccountState) -> Vec<Prunable<'_>> {
    st.endpoints
        .iter()
        .map(|e| Prunable {
            tags: &e.tags,
            id: e.id.clone(),
            what: format!("endpoint {}", e.id),
            delete: EndpointOp::DeleteVpcEndpoints { endpoint_id: e.id.clone() }.into(),
            uses: e.security_group_ids.clone(),
            follows_link: false,
            deleting: e.gone(),
        })
        .collect()
}

pub(crate) use crate::planner::not_releasable as untag_op;
pub(crate) use crate::planner::nothing_first as before_delete;
pub(crate) use crate::planner::untagged as tag_op;

// ---- Planning (the link stage) ----------------------------------------------------------------

/// What the endpoint hands on to the link's gateway targets.
#[derive(Default)]
pub(crate) struct Out<'a> {
    /// Its interfaces (address, zone) once it is available; `None` before.
    pub(crate) interfaces: Option<Vec<(Ipv4Addr, String)>>,
    pub(crate) endpoint: Option<&'a Endpoint>,
}

/// A privateLink link: its endpoint to its endpoint service, in the gateway's subnets with its
/// security group; waited for until the service account accepted it and AWS made it available.
/// Any link: its other endpoints (another transport now, a replaced or dead endpoint) are
/// deleted once the link's gateway target group no longer sends to them (make-before-break), and
/// then their security groups.
pub(crate) fn plan<'a>(p: &mut Planner<'a>, cx: &mut LinkCx<'a, '_>) -> Option<()> {
    let (l, gs, account) = (cx.link, cx.gw.state, cx.gw.account.as_str());
    let vpc = &cx.gw.gw.spec.vpc_id;
    let mine: Vec<&'a Endpoint> =
        gs.endpoints.iter().filter(|e| p.owned_by(&e.tags, &cx.owner) && &e.vpc_id == vpc && !e.gone()).collect();
    for e in &mine {
        p.claimed.insert(e.id.clone());
    }
    let current = match l.spec.transport.private_link() {
        None => None,
        Some(_) => {
            let name = cx.out.endpoint_service.service_name.clone();
            let current =
                mine.iter().copied().find(|e| name.known() == Some(e.service_name.as_str()) && !e.dead());
            match current {
                Some(e) => {
                    let report = p.report(&cx.subject);
                    report.resources.insert("endpoint".into(), e.id.clone());
                    report.resources.insert("endpointState".into(), e.state.clone());
                    if e.state == "available" {
                        cx.out.endpoint.interfaces = Some(
                            e.interfaces.iter().map(|i| (i.ip, i.availability_zone.clone())).collect(),
                        );
                    } else {
                        report.waiting.push(format!("endpoint {} is {}", e.id, e.state));
                    }
                    cx.out.endpoint.endpoint = Some(e);
                }
                // The endpoint service is not there and not made on this pass: nothing to connect to.
                None if name.known().is_none() && name.made_by().is_none() => {
                    p.report(&cx.subject).waiting.push(format!("the endpoint waits for the {name}"));
                }
                None => {
                    let sg = &cx.out.security_group;
                    let deps = vec![cx.out.endpoint_service.action, sg.action];
                    p.add(
                        &cx.subject,
                        account,
                        format!("endpoint to {name}"),
                        Verb::Create,
                        match mine.iter().find(|e| e.dead()) {
                            Some(e) => Reason::Replaced { why: format!("endpoint {} is {}", e.id, e.state) },
                            None => Reason::Missing,
                        },
                        Op::Endpoint(EndpointOp::CreateVpcEndpoint {
                            vpc_id: vpc.clone(),
                            service_name: name,
                            subnet_ids: cx.gw.gw.spec.subnet_ids.clone(),
                            security_group_id: sg.id.clone(),
                            tags: super::endpoint_service::transport_tags(&cx.want_tags, "privateLink"),
                        }),
                        deps,
                    );
                }
            }
            current
        }
    };
    // The link's other endpoints go once its gateway target group no longer sends to them.
    let in_use: Vec<Ipv4Addr> = p
        .owned_target_groups(gs, &cx.owner)
        .iter()
        .flat_map(|tg| &tg.targets)
        .filter(|t| t.health != "draining")
        .map(|t| t.ip)
        .collect();
    for e in mine.iter().filter(|e| current.is_none_or(|c| c.id != e.id)) {
        let used: Vec<String> =
            e.interfaces.iter().filter(|i| in_use.contains(&i.ip)).map(|i| i.ip.to_string()).collect();
        if !used.is_empty() {
            p.report(&cx.subject).waiting.push(format!(
                "endpoint {} stays until the link's traffic has left it (targets {} still registered)",
                e.id,
                used.join(", ")
            ));
            continue;
        }
        p.add(
            &cx.subject,
            account,
            format!("endpoint {}", e.id),
            Verb::Delete,
            Reason::Replaced {
                why: if e.dead() {
                    format!("endpoint {} is {}", e.id, e.state)
                } else {
                    format!("the link's transport is {} now", l.spec.transport.name())
                },
            },
            Op::Endpoint(EndpointOp::DeleteVpcEndpoints { endpoint_id: e.id.clone() }),
            vec![],
        );
    }
    let keep = cx.out.security_group.id.known().map(str::to_string);
    super::security_group::retire(p, &cx.subject, account, gs, &cx.owner, keep.as_deref());
    Some(())
}
