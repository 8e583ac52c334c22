//! Plans and apply results for people (grouped by subject, coloured on a terminal) and for
//! machines (JSON).

use std::collections::BTreeMap;
use std::fmt::Write;

use crosslink_controller::{ActionResult, ApplyReport};
use crosslink_desired::DesiredState;
use crosslink_plan::{Action, Change, Plan, Problem, Report, Subject};
use owo_colors::OwoColorize;
use serde::Serialize;

fn coloured_symbol(a: &Action) -> String {
    match a.change() {
        Change::Create => "+".green().bold().to_string(),
        Change::Delete => "-".red().bold().to_string(),
        Change::Update => "~".yellow().bold().to_string(),
    }
}

/// The heading of a subject, with the links a peering serves.
fn heading(s: &Subject, desired: &DesiredState) -> String {
    match s {
        Subject::Peering(gvpc, svpc) => {
            let links: Vec<&str> = desired
                .links
                .iter()
                .filter(|l| {
                    l.spec.service.vpc_id == *svpc
                        && desired.gateway(&l.spec.gateway).is_some_and(|g| g.spec.vpc_id == *gvpc)
                })
                .map(|l| l.metadata.name.as_str())
                .collect();
            if links.is_empty() { s.to_string() } else { format!("{s} (links: {})", links.join(", ")) }
        }
        Subject::Gateway(g) => match desired.gateway(g) {
            Some(gw) => format!("{s} (account {})", gw.spec.account),
            None => format!("{s} (removed from desired state)"),
        },
        Subject::Link(l) => match desired.link(l) {
            Some(_) => s.to_string(),
            None => format!("{s} (removed from desired state)"),
        },
        Subject::Consumer(c) => match desired.consumer(c) {
            Some(c) => format!("{s} (gateways: {})", c.spec.gateways.join(", ")),
            None => format!("{s} (removed from desired state)"),
        },
    }
}

fn order(s: &Subject) -> u8 {
    match s {
        Subject::Gateway(_) => 0,
        Subject::Link(_) => 1,
        Subject::Peering(..) => 2,
        Subject::Consumer(_) => 3,
    }
}

fn subjects(plan: &Plan) -> Vec<Subject> {
    let mut all: Vec<Subject> =
        plan.reports.keys().cloned().chain(plan.actions.iter().map(|a| a.subject.clone())).collect();
    all.sort_by(|a, b| (order(a), a).cmp(&(order(b), b)));
    all.dedup();
    all
}

fn is_quiet(r: Option<&Report>) -> bool {
    r.is_none_or(|r| r.problems.is_empty() && r.waiting.is_empty() && r.retained.is_empty() && r.warnings.is_empty())
}

/// The plan as text, grouped by subject.
pub fn plan_text(plan: &Plan, desired: &DesiredState) -> String {
    let mut out = String::new();
    let mut in_sync_links = 0;
    // A problem that blocks several subjects (an account that cannot be read) is said once,
    // with what it blocks, rather than once per subject.
    let mut shared: Vec<(&Problem, Vec<Subject>)> = Vec::new();
    for s in subjects(plan) {
        for p in plan.reports.get(&s).map(|r| r.problems.as_slice()).unwrap_or_default() {
            match shared.iter_mut().find(|(q, _)| *q == p) {
                Some((_, subjects)) => subjects.push(s.clone()),
                None => shared.push((p, vec![s.clone()])),
            }
        }
    }
    shared.retain(|(_, subjects)| subjects.len() > 1);
    for (p, subjects) in &shared {
        let _ = writeln!(out, "{} {}: {}", "!".red().bold(), p.code.red(), p.message);
        if let Some(h) = &p.hint {
            let _ = writeln!(out, "    {} {h}", "hint:".cyan());
        }
        let names: Vec<String> = subjects.iter().map(ToString::to_string).collect();
        let _ = writeln!(out, "    {} {}", "blocks:".cyan(), names.join(", "));
        out.push('\n');
    }
    let is_shared = |p: &Problem| shared.iter().any(|(q, _)| *q == p);
    for s in subjects(plan) {
        let actions: Vec<&Action> = plan.actions.iter().map(|a| &**a).filter(|a| a.subject == s).collect();
        let report = plan.reports.get(&s);
        let own_problems = report.is_some_and(|r| r.problems.iter().any(|p| !is_shared(p)));
        let only_shared = report
            .is_some_and(|r| r.waiting.is_empty() && r.retained.is_empty() && r.warnings.is_empty() && !own_problems);
        if actions.is_empty() && (is_quiet(report) || only_shared) {
            if is_quiet(report) && matches!(s, Subject::Link(_)) {
                in_sync_links += 1;
            }
            continue;
        }
        let _ = writeln!(out, "{}", heading(&s, desired).bold());
        let width = actions.iter().map(|a| a.verb.as_str().len() + 1 + a.resource.len()).max().unwrap_or(0).min(64);
        for a in &actions {
            let what = format!("{} {}", a.verb.as_str(), a.resource);
            let _ = writeln!(out, "  {} {what:<width$}  {}", coloured_symbol(a), a.reason.to_string().dimmed());
            // On a line of its own, so that a reviewer of the change cannot miss it.
            if let Some(w) = plan.weakening.get(&a.id) {
                let _ = writeln!(out, "    {} {w}", "! weakens protection:".red().bold());
            }
            if let Some(r) = plan.replacing.get(&a.id) {
                let _ = writeln!(out, "    {} {r}", "! replaces:".red().bold());
            }
        }
        if let Some(r) = report {
            for p in r.problems.iter().filter(|p| !is_shared(p)) {
                let _ = writeln!(out, "  {} {}: {}", "!".red().bold(), p.code.red(), p.message);
                if let Some(h) = &p.hint {
                    let _ = writeln!(out, "      {} {h}", "hint:".cyan());
                }
            }
            for w in &r.waiting {
                let _ = writeln!(out, "  {} waiting: {w}", "…".yellow());
            }
            for k in &r.retained {
                let _ = writeln!(out, "  {} kept: {k}", "=".blue());
            }
            for w in &r.warnings {
                let _ = writeln!(out, "  {} {w}", "warning:".yellow());
            }
        }
        out.push('\n');
    }
    let c = plan.counts();
    let (problems, blocked) = blocking(plan);
    let _ = write!(
        out,
        "Plan: {} to create, {} to change, {} to delete; {} link{} in sync",
        c.create,
        c.update,
        c.delete,
        in_sync_links,
        if in_sync_links == 1 { "" } else { "s" }
    );
    if problems > 0 {
        let names: Vec<String> = blocked.iter().map(ToString::to_string).collect();
        let _ = write!(
            out,
            "; {problems} problem{} block{} changes to {}",
            if problems == 1 { "" } else { "s" },
            if problems == 1 { "s" } else { "" },
            names.join(", ")
        );
    }
    out.push('\n');
    if !plan.weakening.is_empty() {
        let _ = writeln!(
            out,
            "{} {} change{} make{} routes less protected: the daemon and apply hold {} unless run with --allow-weakening",
            "!".red().bold(),
            plan.weakening.len(),
            if plan.weakening.len() == 1 { "" } else { "s" },
            if plan.weakening.len() == 1 { "s" } else { "" },
            if plan.weakening.len() == 1 { "it" } else { "them" }
        );
    }
    if !plan.replacing.is_empty() {
        let n = plan.replacing.len();
        let _ = writeln!(
            out,
            "{} {n} change{} replace{} what a link adopted: the daemon and apply hold {} unless run with --allow-replacement",
            "!".red().bold(),
            if n == 1 { "" } else { "s" },
            if n == 1 { "s" } else { "" },
            if n == 1 { "it" } else { "them" }
        );
    }
    if plan.actions.iter().any(|a| !a.op.is_ready()) {
        let _ = writeln!(out, "{}", "Some ids are known only after earlier steps: apply runs them in order.".dimmed());
    }
    out
}

/// How many distinct problems there are, and the subjects they block (in plan order). A link
/// carries its peering's problems as its own (its chain cannot work): one problem, counted once.
fn blocking(plan: &Plan) -> (usize, Vec<Subject>) {
    let mut seen: Vec<(&str, &str)> = Vec::new();
    let mut blocked = Vec::new();
    for s in subjects(plan) {
        let Some(r) = plan.reports.get(&s).filter(|r| !r.problems.is_empty()) else { continue };
        for p in &r.problems {
            if !seen.contains(&(p.code.as_str(), p.message.as_str())) {
                seen.push((&p.code, &p.message));
            }
        }
        blocked.push(s);
    }
    (seen.len(), blocked)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SubjectJson<'a> {
    subject: &'a Subject,
    #[serde(flatten)]
    report: &'a Report,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PlanJson<'a> {
    in_sync: bool,
    counts: crosslink_plan::Counts,
    actions: &'a [std::sync::Arc<Action>],
    subjects: Vec<SubjectJson<'a>>,
}

pub fn plan_json(plan: &Plan) -> String {
    let subjects = plan.reports.iter().map(|(subject, report)| SubjectJson { subject, report }).collect();
    let doc = PlanJson { in_sync: plan.in_sync(), counts: plan.counts(), actions: &plan.actions, subjects };
    serde_json::to_string_pretty(&doc).expect("a plan serializes")
}

/// One line per link (and per gateway or peering with trouble): how it stands after an apply.
pub fn apply_summary(report: &ApplyReport, desired: &DesiredState) -> String {
    let mut out = String::new();
    let mut rows: BTreeMap<(u8, Subject), (String, String)> = BTreeMap::new();
    let remaining = &report.remaining;
    for s in subjects(remaining).into_iter().chain(report.failed.keys().cloned()) {
        let r = remaining.reports.get(&s);
        let pending = remaining.actions.iter().filter(|a| a.subject == s).count();
        let (status, detail) = if let Some(e) = report.failed.get(&s) {
            ("failed".red().to_string(), format!("{}: {}", e.code, e.message))
        } else if let Some(p) = r.and_then(|r| r.problems.first()) {
            ("failed".red().to_string(), format!("{}: {}", p.code, p.message))
        } else if let Some(w) = r.and_then(|r| r.waiting.first()) {
            ("waiting".yellow().to_string(), w.clone())
        } else if pending > 0 {
            ("pending".yellow().to_string(), format!("{pending} change(s) not applied"))
        } else if r.is_some_and(|r| !r.retained.is_empty()) {
            ("retained".blue().to_string(), r.map(|r| r.retained.join("; ")).unwrap_or_default())
        } else if let Subject::Link(name) = &s
            && desired.link(name).is_some()
        {
            ("in sync".green().to_string(), String::new())
        } else {
            continue;
        };
        rows.insert((order(&s), s.clone()), (status, detail));
    }
    let done = report.executed.iter().filter(|e| matches!(e.result, ActionResult::Done { .. })).count();
    let failed = report.executed.iter().filter(|e| matches!(e.result, ActionResult::Failed { .. })).count();
    for ((_, s), (status, detail)) in &rows {
        let name = s.to_string();
        let _ = writeln!(out, "  {name:<32} {status:<10} {detail}");
    }
    let _ = writeln!(
        out,
        "{} in {} round{}: {done} change{} made, {failed} failed",
        if report.converged { "In sync".green().bold().to_string() } else { "Not in sync".red().bold().to_string() },
        report.rounds,
        if report.rounds == 1 { "" } else { "s" },
        if done == 1 { "" } else { "s" },
    );
    out
}

#[cfg(test)]
mod tests {
    use crosslink_plan::kinds::PeeringOp;
    use std::path::Path;

    use crosslink_plan::{Problem, Report};

    use super::*;

    const STATE: &str = r#"
apiVersion: crosslink.dev/v1alpha1
kind: Account
metadata: {name: shared}
spec: {accountId: "111111111111", region: eu-central-1}
---
apiVersion: crosslink.dev/v1alpha1
kind: Gateway
metadata: {name: edge}
spec:
  account: shared
  vpcId: vpc-0a0a0a0a0a0a0a0a0
  subnetIds: [subnet-0a0a0a0a0a0a0a0a0]
  routeTableIds: [rtb-0a0a0a0a0a0a0a0a0]
  loadBalancer: {name: edge-nlb}
  api: {name: edge-api, stage: v1}
---
apiVersion: crosslink.dev/v1alpha1
kind: Link
metadata: {name: ledger}
spec:
  gateway: edge
  service: {account: shared, vpcId: vpc-0b0b0b0b0b0b0b0b0, routeTableIds: [rtb-0b0b0b0b0b0b0b0b0]}
  targets: [{ip: 10.30.1.10, port: 8080}]
  listenerPort: 9003
  routes: [{path: /accounts}]
"#;

    #[test]
    fn a_peering_problem_is_counted_once_and_names_what_it_blocks() {
        let desired = crosslink_desired::load_str(Path::new("t.yaml"), STATE).unwrap();
        let problem = Problem {
            code: "NotFound".into(),
            message: "route table rtb-0b0b0b0b0b0b0b0b0 not found in account shared".into(),
            hint: None,
        };
        let blocked = Report { problems: vec![problem], ..Report::default() };
        let mut plan = Plan::default();
        let pair = Subject::Peering("vpc-0a0a0a0a0a0a0a0a0".into(), "vpc-0b0b0b0b0b0b0b0b0".into());
        plan.reports.insert(pair, blocked.clone());
        // The planner copies a peering's problems into its links' reports.
        plan.reports.insert(Subject::Link("ledger".into()), blocked);
        plan.reports.insert(Subject::Gateway("edge".into()), Report::default());
        let text = plan_text(&plan, &desired);
        let last = text.lines().find(|l| l.starts_with("Plan:")).unwrap();
        assert_eq!(
            last,
            "Plan: 0 to create, 0 to change, 0 to delete; 0 links in sync; 1 problem blocks changes to Link/ledger, Peering vpc-0a0a0a0a0a0a0a0a0 <-> vpc-0b0b0b0b0b0b0b0b0"
        );
    }

    /// The symbol says what the count says: accepting a requested peering and registering targets
    /// into a new group are part of creating them (`+`), not changes (`~`).
    #[test]
    fn steps_of_a_creation_are_shown_as_creation() {
        use crosslink_plan::op::{Op, Ref};
        use crosslink_plan::{Action, Reason, Verb};
        let desired = crosslink_desired::load_str(Path::new("t.yaml"), STATE).unwrap();
        let pair = Subject::Peering("vpc-0a0a0a0a0a0a0a0a0".into(), "vpc-0b0b0b0b0b0b0b0b0".into());
        let action = |id, verb, resource: &str, op| Action {
            id,
            subject: pair.clone(),
            account: "shared".into(),
            resource: resource.into(),
            verb,
            reason: Reason::FollowsChanges { why: "accepted by the service account".into() },
            op,
            deps: vec![],
        };
        let plan = Plan {
            actions: vec![
                action(
                    0,
                    Verb::Accept,
                    "peering new",
                    Op::Peering(PeeringOp::AcceptVpcPeeringConnection { peering_id: Ref::Pending("peering".into()) }),
                ),
                action(
                    1,
                    Verb::Update,
                    "DNS of pcx-1",
                    Op::Peering(PeeringOp::SetPeeringDnsResolution {
                        peering_id: Ref::Known("pcx-1".into()),
                        allow: true,
                    }),
                ),
            ]
            .into_iter()
            .map(std::sync::Arc::new)
            .collect(),
            ..Plan::default()
        };
        let text = anstream::adapter::strip_str(&plan_text(&plan, &desired)).to_string();
        assert!(text.contains("  + accept peering new"), "{text}");
        assert!(text.contains("  ~ update DNS of pcx-1"), "{text}");
        assert!(text.contains("Plan: 1 to create, 1 to change, 0 to delete"), "{text}");
    }
}
