//! `crosslink release`: handing an object's resources to another tool. An object that left
//! desired state (usually with `deletionPolicy: Retain`, so that its resources stayed) is
//! released: crosslink's tag keys (`crosslink.dev/*`) are removed from every resource it owned,
//! its user tags stay, and crosslink never touches them again. A pure function of (desired state,
//! observed AWS state, the objects) to a plan of `release` actions.

use std::sync::Arc;

use crosslink_desired::DesiredState;

use crate::kinds::{self, ResourceKind};
use crate::model::{Action, Plan, Problem, Reason, Subject, Verb};
use crate::observed::{AccountObservation, Observed};
use crate::planner::Settings;
use crate::tags;

/// The prefix of every tag key crosslink writes; release removes these keys and no other.
pub const TAG_PREFIX: &str = "crosslink.dev/";

/// Whether desired state still has the object: it cannot be released then (the next pass would
/// take it back).
fn desired(d: &DesiredState, s: &Subject) -> bool {
    match s {
        Subject::Link(n) => d.links.iter().any(|l| &l.metadata.name == n),
        Subject::Gateway(n) => d.gateways.iter().any(|g| &g.metadata.name == n),
        Subject::Consumer(n) => d.consumers.iter().any(|c| &c.metadata.name == n),
        Subject::Peering(gvpc, svpc) => d.links.iter().any(|l| {
            &l.spec.service.vpc_id == svpc
                && d.gateways.iter().any(|g| g.metadata.name == l.spec.gateway && &g.spec.vpc_id == gvpc)
        }),
    }
}

/// The release of `objects`: for each, an action per resource this instance owns for it (its
/// owner tag names it) that removes crosslink's tag keys; a resource whose kind crosslink cannot
/// untag is reported under `retained`, still tagged. An object still in desired state is a
/// problem (nothing of it is released), and so is one that owns nothing here.
pub fn release(d: &DesiredState, o: &Observed, s: &Settings, objects: &[Subject]) -> Plan {
    let mut plan = Plan::default();
    for subject in objects {
        let report = plan.reports.entry(subject.clone()).or_default();
        if desired(d, subject) {
            report.problems.push(Problem {
                code: "StillDesired".into(),
                message: format!("{subject} is in the desired state: the next pass would take its resources back"),
                hint: Some(format!(
                    "remove {subject} from the desired state first (with deletionPolicy: Retain, so that its resources stay meanwhile), then release it"
                )),
            });
            continue;
        }
        let owner = subject.owner_tag();
        let mut found = 0;
        for (account, obs) in &o.accounts {
            let AccountObservation::Ok(st) = obs else { continue };
            for kind in ResourceKind::ALL.into_iter().rev() {
                for c in kinds::prunable(kind, st) {
                    if !tags::is_managed(c.tags, &s.instance) || tags::owner(c.tags) != Some(owner.as_str()) {
                        continue;
                    }
                    found += 1;
                    let keys: Vec<String> = c.tags.keys().filter(|k| k.starts_with(TAG_PREFIX)).cloned().collect();
                    let Some(op) = kinds::untag_op(kind, &c.id, keys) else {
                        plan.reports.entry(subject.clone()).or_default().retained.push(format!(
                            "{} (crosslink does not remove its tags from a {}: remove the crosslink.dev/* tags by hand)",
                            c.what,
                            kind.label()
                        ));
                        continue;
                    };
                    let id = plan.actions.len();
                    plan.actions.push(Arc::new(Action {
                        id,
                        subject: subject.clone(),
                        account: account.clone(),
                        resource: c.what,
                        verb: Verb::Release,
                        reason: Reason::Released,
                        op,
                        deps: vec![],
                    }));
                }
            }
        }
        if found == 0 {
            plan.reports.entry(subject.clone()).or_default().problems.push(Problem {
                code: "NothingToRelease".into(),
                message: format!("no resource tagged as {subject}'s (managed by {}) was found", s.instance),
                hint: Some("check the name (Link/<name>, Gateway/<name>, Consumer/<name>, Peering/<gateway vpc>/<service vpc>) and --instance".into()),
            });
        }
    }
    plan
}
