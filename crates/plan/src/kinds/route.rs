//! Routes in the route tables of both VPCs of a peering, to the other side's CIDRs.

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use std::collections::BTreeSet;
use crate::model::{Reason, Subject, Verb};
use crate::observed::AccountObservation;
use crate::op::Op;
use crate::planner::{Pair, PairCx, Planner};
use super::KindOp;
use crate::op::{Ref, Service};

// ---- What is observed ------------------------------------------------------------------------

/// Its field of `AccountState` (`route_tables`): the account's route tables by id, with their routes.
pub type Observed = std::collections::BTreeMap<String, RouteTable>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteTable {
    pub id: String,
    pub vpc_id: String,
    pub routes: Vec<Route>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Route {
    pub destination: Ipv4Net,
    /// The peering connection the route targets, if it targets one.
    pub peering_id: Option<String>,
    /// Something else (gateway, NAT, ENI...) when the route does not target a peering.
    pub other_target: Option<String>,
    pub blackhole: bool,
}

// ---- Operations -------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum RouteOp {
    CreateRoute {
        route_table_id: String,
        destination: Ipv4Net,
        peering_id: Ref,
    },
    ReplaceRoute {
        route_table_id: String,
        destination: Ipv4Net,
        peering_id: Ref,
    },
    DeleteRoute {
        route_table_id: String,
        destination: Ipv4Net,
    },
}

impl KindOp for RouteOp {
    fn service(&self) -> Service {
        Service::Ec2
    }

    fn name(&self) -> &'static str {
        match self {
            Self::CreateRoute { .. } => "CreateRoute",
            Self::ReplaceRoute { .. } => "ReplaceRoute",
            Self::DeleteRoute { .. } => "DeleteRoute",
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::CreateRoute { route_table_id, destination, .. }
            | Self::ReplaceRoute { route_table_id, destination, .. }
            | Self::DeleteRoute { route_table_id, destination } => format!("{route_table_id}/{destination}"),
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::CreateRoute { peering_id, .. } | Self::ReplaceRoute { peering_id, .. } => vec![peering_id],
            Self::DeleteRoute { .. } => vec![],
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::CreateRoute { peering_id, .. } | Self::ReplaceRoute { peering_id, .. } => vec![peering_id],
            Self::DeleteRoute { .. } => vec![],
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
        matches!(self, Self::DeleteRoute { .. })
    }
}

// ---- Clean-up and tags (read by the planner's generic machinery) ------------------------------

/// Routes carry no tags: the routes to a removed peering are deleted with it
/// (`peering::before_delete`), those a route table no longer wants by the peerings' planning.
pub(crate) use crate::planner::nothing_to_prune as prunable;
pub(crate) use crate::planner::nothing_first as before_delete;
pub(crate) use crate::planner::untagged as tag_op;
pub(crate) use crate::planner::not_releasable as untag_op;

// ---- Planning (the pair stage) ----------------------------------------------------------------

pub(crate) type Out<'a> = ();

/// The pair's routes both ways through its peering: in each of the gateway's route tables to
/// the service VPC's CIDRs, and in the links' service route tables back to the gateway VPC's.
/// A missing route is created; one through another crosslink peering, or a blackhole left by a
/// deleted peering, is replaced; a route held for another desired pair (or a retained one) is a
/// problem (`RouteContested`), never swung over; one to something crosslink does not manage is a
/// problem (`RouteConflict`).
pub(crate) fn plan<'a>(p: &mut Planner<'a>, cx: &mut PairCx<'a, '_>) -> Option<()> {
    let (pair, gs, ss, subject, owner) = (cx.pair, cx.gs, cx.ss, &cx.subject, cx.owner.as_str());
    let gw = pair.gw;
    let (pcx, pcx_action) = (&cx.out.peering.id, cx.out.peering.action);
    let owned_pcx: BTreeSet<&str> =
        gs.peerings.iter().chain(ss.peerings.iter()).filter(|x| p.owned(&x.tags)).map(|x| x.id.as_str()).collect();
    let sides = [
        (&gw.spec.account, gs, gw.spec.route_table_ids.iter().cloned().collect::<BTreeSet<_>>(), &cx.svpc.cidrs),
        (&pair.svc_account, ss, pair.svc_rtbs.clone(), &cx.gvpc.cidrs),
    ];
    for (account, st, rtbs, dests) in sides {
        for rtb in &rtbs {
            let Some(table) = st.route_tables.get(rtb) else {
                p.problem(subject, "NotFound", format!("route table {rtb} not found in account {account}"), None);
                continue;
            };
            for dest in dests {
                let live = table.routes.iter().find(|r| r.destination == *dest);
                // Held for another desired pair (or a retained one): never swung over, or the two
                // would take it from each other on every pass.
                let held = live.and_then(|r| r.peering_id.as_deref()).and_then(|id| p.held_for_other(id, owner));
                if let Some((holder, hint)) = held {
                    p.problem(subject, "RouteContested", format!("route {dest} in {rtb} is held by {holder}"), Some(hint));
                    continue;
                }
                let op_reason = match live {
                    None => Some((
                        Verb::Create,
                        Reason::Missing,
                        RouteOp::CreateRoute { route_table_id: rtb.clone(), destination: *dest, peering_id: pcx.clone() },
                    )),
                    Some(r) if r.peering_id.is_some() && r.peering_id.as_deref() == pcx.known() && !r.blackhole => None,
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
                            RouteOp::ReplaceRoute {
                                route_table_id: rtb.clone(),
                                destination: *dest,
                                peering_id: pcx.clone(),
                            },
                        ))
                    }
                    Some(r) => {
                        let target = r.peering_id.clone().or(r.other_target.clone()).unwrap_or("something else".into());
                        p.problem(
                            subject,
                            "RouteConflict",
                            format!("route {dest} in {rtb} points at {target}, which crosslink does not manage"),
                            Some("remove that route or use another route table; crosslink never replaces routes it does not own".into()),
                        );
                        None
                    }
                };
                if let Some((verb, reason, op)) = op_reason {
                    let replace = matches!(op, RouteOp::ReplaceRoute { .. });
                    let a = p.add(
                        subject,
                        account,
                        format!("route {dest} in {rtb}"),
                        verb,
                        reason,
                        Op::Route(op),
                        vec![pcx_action],
                    );
                    if replace {
                        p.taken_over.insert((rtb.clone(), *dest), a);
                    }
                }
            }
        }
    }
    Some(())
}

/// After every pair: routes to crosslink peerings that desired state does not ask for (a route
/// table left the YAML, a CIDR changed) are deleted, unless the peering itself goes (the
/// clean-up removes its routes with it) or its pair is blocked.
pub(crate) fn undesired(p: &mut Planner<'_>, pairs: &[Pair<'_>]) {
    let mut wanted: BTreeSet<(String, Ipv4Net)> = BTreeSet::new();
    for pair in pairs {
        let gw = pair.gw;
        let (Ok(gs), Ok(ss)) = (p.state(&gw.spec.account), p.state(&pair.svc_account)) else {
            // Unknown: keep every route in these accounts' listed tables.
            continue;
        };
        let (Some(gvpc), Some(svpc)) = (gs.vpcs.get(&gw.spec.vpc_id), ss.vpcs.get(&pair.svc_vpc)) else { continue };
        for rtb in &gw.spec.route_table_ids {
            for c in &svpc.cidrs {
                wanted.insert((rtb.clone(), *c));
            }
        }
        for rtb in &pair.svc_rtbs {
            for c in &gvpc.cidrs {
                wanted.insert((rtb.clone(), *c));
            }
        }
    }
    let desired_pairs: BTreeSet<(String, String)> =
        pairs.iter().map(|x| (x.gw.spec.vpc_id.clone(), x.svc_vpc.clone())).collect();
    let mut todo = Vec::new();
    for (account, obs) in &p.o.accounts {
        let AccountObservation::Ok(st) = obs else { continue };
        for x in st.peerings.iter().filter(|x| p.owned(&x.tags)) {
            let pair = (x.requester_vpc.clone(), x.accepter_vpc.clone());
            if !desired_pairs.contains(&pair) {
                continue; // the clean-up removes its routes with it.
            }
            let subject = Subject::Peering(pair.0.clone(), pair.1.clone());
            if p.blocked(&subject) {
                continue;
            }
            for t in st.route_tables.values() {
                for r in &t.routes {
                    if r.peering_id.as_deref() == Some(x.id.as_str()) && !wanted.contains(&(t.id.clone(), r.destination)) {
                        todo.push((subject.clone(), account.clone(), t.id.clone(), r.destination));
                    }
                }
            }
        }
    }
    todo.sort();
    todo.dedup();
    for (subject, account, rtb, dest) in todo {
        p.add(
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
