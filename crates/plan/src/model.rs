//! What a plan is: actions (resource, verb, reason, operation, dependencies) and a report per
//! subject (gateway, link, peering) with its problems, waits and live resource ids.

use crate::kinds::{MethodOp, StageOp};

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::op::{Op, Output, Pending, Ref};

/// What an action is done for; plans are grouped by it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", content = "name")]
pub enum Subject {
    Gateway(String),
    Link(String),
    /// The peering of a (gateway VPC, service VPC) pair, shared by the links between them.
    Peering(String, String),
    /// A consumer: its usage plan and API keys.
    Consumer(String),
}

impl Subject {
    /// The value of the owner tag (`crosslink.dev/owner`) on what crosslink creates for it:
    /// `Link/<name>`, `Gateway/<name>`, `Peering/<gateway vpc>/<service vpc>` or
    /// `Consumer/<name>`.
    pub fn owner_tag(&self) -> String {
        match self {
            Subject::Link(n) => format!("Link/{n}"),
            Subject::Gateway(n) => format!("Gateway/{n}"),
            Subject::Peering(a, b) => format!("Peering/{a}/{b}"),
            Subject::Consumer(n) => format!("Consumer/{n}"),
        }
    }

    /// The subject an owner tag names; the one place owner tags are parsed.
    pub fn from_owner_tag(owner: &str) -> Option<Subject> {
        let (kind, rest) = owner.split_once('/')?;
        match kind {
            "Link" => Some(Subject::Link(rest.to_string())),
            "Gateway" => Some(Subject::Gateway(rest.to_string())),
            "Peering" => rest.split_once('/').map(|(a, b)| Subject::Peering(a.to_string(), b.to_string())),
            "Consumer" => Some(Subject::Consumer(rest.to_string())),
            _ => None,
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Gateway(n) => write!(f, "Gateway/{n}"),
            Subject::Link(n) => write!(f, "Link/{n}"),
            Subject::Peering(a, b) => write!(f, "Peering {a} <-> {b}"),
            Subject::Consumer(n) => write!(f, "Consumer/{n}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verb {
    Create,
    Update,
    Delete,
    Accept,
    Register,
    Deregister,
    Deploy,
    /// Take over a resource crosslink did not create (the link's `adoption: Adopt`): tag it.
    Adopt,
    /// Hand a resource to another tool (`crosslink release`): remove crosslink's tags from it.
    Release,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Delete => "delete",
            Verb::Accept => "accept",
            Verb::Register => "register",
            Verb::Deregister => "deregister",
            Verb::Deploy => "deploy",
            Verb::Adopt => "adopt",
            Verb::Release => "release",
        }
    }
    pub fn is_mutation_of_existing(self) -> bool {
        !matches!(self, Verb::Create)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "camelCase")]
pub enum Reason {
    /// Desired, not there.
    Missing,
    /// There, but a field differs: AWS was changed behind crosslink's back (or, where nothing
    /// remembers what was applied, as in `crosslink plan`, the desired state may have moved).
    Drift { field: String, live: String, desired: String },
    /// There, and a field differs because the desired state moved since the subject was last in
    /// sync: an intended change, not drift. The daemon tells the two apart.
    Changed { field: String, live: String, desired: String },
    /// Its owner left desired state.
    NoLongerDesired,
    /// Replaced by another resource (immutable setting changed, duplicate after a crash, moved).
    Replaced { why: String },
    /// A step that follows other changes (acceptance, deployment).
    FollowsChanges { why: String },
    /// Built without crosslink, matched to the desired state by `rule` (`adoption: Adopt`).
    Adopted { rule: String },
    /// Its owner left desired state and is released (`crosslink release`): crosslink's tags are
    /// removed, and crosslink never touches it again.
    Released,
}

impl Reason {
    /// The same difference, attributed to a change of desired state rather than to drift.
    pub fn as_change(self) -> Reason {
        match self {
            Reason::Drift { field, live, desired } => Reason::Changed { field, live, desired },
            other => other,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Missing => f.write_str("missing"),
            Reason::Drift { field, live, desired } => {
                let (live, desired) = abbreviate(live, desired);
                write!(f, "drift of {field}: live {live}, desired {desired}")
            }
            Reason::Changed { field, live, desired } => {
                let (live, desired) = abbreviate(live, desired);
                write!(f, "desired state changed {field}: live {live}, desired {desired}")
            }
            Reason::NoLongerDesired => f.write_str("no longer desired"),
            Reason::Replaced { why } => write!(f, "replaced: {why}"),
            Reason::Adopted { rule } => write!(f, "built without crosslink, matched {rule}"),
            Reason::Released => f.write_str("released: crosslink's tags removed, never touched again"),
            Reason::FollowsChanges { why } => f.write_str(why),
        }
    }
}

/// Long values that differ only at the end (URIs, ARNs) are shown from where they differ.
fn abbreviate<'a>(a: &'a str, b: &'a str) -> (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>) {
    let common =
        a.char_indices().zip(b.chars()).take_while(|((_, x), y)| x == y).map(|((i, x), _)| i + x.len_utf8()).last();
    match common {
        // Keep a little context before the difference.
        Some(n) if n > 32 => {
            let cut = a[..n - 12].char_indices().last().map(|(i, _)| i).unwrap_or(0);
            (format!("…{}", &a[cut..]).into(), format!("…{}", &b[cut..]).into())
        }
        _ => (a.into(), b.into()),
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    /// Index in the plan; dependencies refer to it.
    pub id: usize,
    pub subject: Subject,
    /// The Account (by name) the call is made in.
    pub account: String,
    /// The resource, for people: `listener :9001 on edge-nlb`.
    pub resource: String,
    pub verb: Verb,
    pub reason: Reason,
    pub op: Op,
    /// Actions that must succeed first.
    pub deps: Vec<usize>,
}

/// What an action amounts to for a reader of the plan (its symbol and its count).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Create,
    Update,
    Delete,
}

impl Action {
    pub fn change(&self) -> Change {
        match self.verb {
            // What completes a creation counts as part of it: accepting a requested peering
            // (its second half), and any step on a resource the plan creates first.
            Verb::Create | Verb::Accept => Change::Create,
            Verb::Delete | Verb::Deregister => Change::Delete,
            _ if self.op.on_new_resource() => Change::Create,
            _ => Change::Update,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// A stable code: `AccountUnavailable`, `NameTaken`, `CidrOverlap`, `NotFound`, ...
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// How a subject stands after planning.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Blocking: nothing is done for the subject until they are resolved.
    pub problems: Vec<Problem>,
    /// Asynchronous states being waited for (peering acceptance, VPC Link PENDING, ...).
    pub waiting: Vec<String>,
    /// Resources kept because of `deletionPolicy: Retain`.
    pub retained: Vec<String>,
    /// Non-blocking observations worth a person's attention.
    pub warnings: Vec<String>,
    /// Live ids of each hop (`peering`, `loadBalancer`, `targetGroup`, `listener`, `vpcLink`, `restApi`).
    pub resources: BTreeMap<String, String>,
}

/// Serializes a map keyed by subject with the subject's display form (`Link/payments`) as the
/// key: JSON object keys must be strings.
pub fn by_subject<S: serde::Serializer, V: Serialize>(map: &BTreeMap<Subject, V>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(map.len()))?;
    for (k, v) in map {
        m.serialize_entry(&k.to_string(), v)?;
    }
    m.end()
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Plan {
    /// Shared, not copied, with the results that refer to them (`Executed`).
    pub actions: Vec<Arc<Action>>,
    #[serde(serialize_with = "by_subject")]
    pub reports: BTreeMap<Subject, Report>,
    /// By action id: text of its operation that embeds values an earlier action of the plan
    /// makes. Not shown: the operation shows the placeholders, as it always did.
    #[serde(skip)]
    pub fills: BTreeMap<usize, Fills>,
    /// By action id: what the action would make less protected (a route's authorization down to
    /// NONE, its API key requirement dropped). The protection guard holds these.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub weakening: BTreeMap<usize, String>,
    /// By action id: the adopted resource the action replaces because it cannot be changed in
    /// place (a target group's protocol, type or VPC). Held, with what follows it, until apply or
    /// the daemon runs with `--allow-replacement`: a replacement can break the path it carries.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub replacing: BTreeMap<usize, String>,
}

/// Where an operation's text embeds values not known when planning: a method's URI holds the
/// DNS name of a load balancer the plan creates; a deployment's hash covers the URIs and the id
/// of a VPC link the plan creates.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fills {
    /// A placeholder as written, and the action and value of its answer that replaces it.
    pub texts: Vec<(String, usize, Output)>,
    /// A deployment: the method lines its hash is taken over, placeholders included, and the
    /// VPC link line that comes last.
    pub hash_lines: Vec<String>,
    pub hash_tail: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
}

impl Plan {
    /// The actions whose answers action `id` needs: the makers of its pending ids and of the
    /// values its text embeds. An action it depends on makes nothing it needs unless listed here.
    pub fn makers(&self, id: usize) -> Vec<usize> {
        let mut out: Vec<usize> =
            self.actions[id].op.refs().iter().filter_map(|r| r.made_by()).map(|(a, _)| a).collect();
        if let Some(f) = self.fills.get(&id) {
            out.extend(f.texts.iter().map(|(_, a, _)| *a));
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Action `id`'s operation with every value made earlier in the plan filled in from
    /// `value(action, output)`; `None` while one of them is not known.
    pub fn resolved(&self, id: usize, value: &dyn Fn(usize, Output) -> Option<String>) -> Option<Op> {
        let mut op = self.actions[id].op.clone();
        for r in op.refs_mut() {
            if let Some((by, output)) = r.made_by() {
                *r = Ref::Known(value(by, output)?);
            }
        }
        let Some(f) = self.fills.get(&id) else { return Some(op) };
        let subs: Vec<(&str, String)> =
            f.texts.iter().map(|(p, by, output)| Some((p.as_str(), value(*by, *output)?))).collect::<Option<_>>()?;
        let fill = |s: &str| subs.iter().fold(s.to_string(), |s, (p, v)| s.replace(p, v));
        match &mut op {
            Op::Method(MethodOp::PutProxyMethod { uri, .. }) => *uri = fill(uri),
            Op::Stage(StageOp::CreateDeployment { stage_tags, .. }) => {
                let lines = f.hash_lines.iter().map(|l| fill(l)).collect();
                let hash = crate::kinds::stage::deployed_hash(lines, &fill(&f.hash_tail));
                stage_tags.insert(crate::tags::DEPLOYED_HASH.to_string(), hash);
            }
            _ => {}
        }
        Some(op)
    }

    /// After actions were removed or reordered: `new_id[old]` is an action's new id
    /// (`usize::MAX` when it is gone; what it would have made then waits for an observation).
    pub(crate) fn renumber_made_by(&mut self, new_id: &[usize]) {
        let moved = |by: usize| new_id.get(by).copied().filter(|n| *n != usize::MAX);
        for a in &mut self.actions {
            for r in Arc::make_mut(a).op.refs_mut() {
                if let Ref::Pending(Pending { by: by @ Some(_), .. }) = r {
                    *by = by.and_then(|(old, output)| Some((moved(old)?, output)));
                }
            }
        }
        let fills = std::mem::take(&mut self.fills);
        for (id, mut f) in fills {
            let Some(id) = moved(id) else { continue };
            // A fill whose maker is gone cannot be made: keep it pointing nowhere, so the
            // action waits rather than writing a placeholder.
            for t in &mut f.texts {
                t.1 = moved(t.1).unwrap_or(usize::MAX);
            }
            self.fills.insert(id, f);
        }
        let weakening = std::mem::take(&mut self.weakening);
        self.weakening = weakening.into_iter().filter_map(|(id, w)| Some((moved(id)?, w))).collect();
        let replacing = std::mem::take(&mut self.replacing);
        self.replacing = replacing.into_iter().filter_map(|(id, w)| Some((moved(id)?, w))).collect();
    }

    /// Nothing to do, nothing blocked, nothing awaited.
    pub fn in_sync(&self) -> bool {
        self.actions.is_empty() && self.reports.values().all(|r| r.problems.is_empty() && r.waiting.is_empty())
    }

    pub fn has_problems(&self) -> bool {
        self.reports.values().any(|r| !r.problems.is_empty())
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for a in &self.actions {
            match a.change() {
                Change::Create => c.create += 1,
                Change::Update => c.update += 1,
                Change::Delete => c.delete += 1,
            }
        }
        c
    }

    pub fn report(&self, s: &Subject) -> Option<&Report> {
        self.reports.get(s)
    }

    /// Links that would lose resources because they left desired state.
    pub fn pruned_links(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .actions
            .iter()
            .filter(|a| a.reason == Reason::NoLongerDesired)
            .filter_map(|a| match &a.subject {
                Subject::Link(n) => Some(n.clone()),
                _ => None,
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{PeeringOp, StageOp, TargetsOp};
    use crate::op::Ref;

    fn action(verb: Verb, op: Op) -> Action {
        Action {
            id: 0,
            subject: Subject::Link("l".into()),
            account: "a".into(),
            resource: "r".into(),
            verb,
            reason: Reason::Missing,
            op,
            deps: vec![],
        }
    }

    #[test]
    fn steps_that_complete_a_creation_count_as_creation() {
        let pending = || Ref::Pending("target group cl-l-123456".into());
        let known = || Ref::Known("arn:tg".into());
        let count = |actions: Vec<Action>| {
            let c = Plan { actions: actions.into_iter().map(Arc::new).collect(), ..Plan::default() }.counts();
            (c.create, c.update, c.delete)
        };
        let register = |r: Ref| {
            Op::Targets(TargetsOp::RegisterTargets {
                target_group_arn: r,
                targets: vec![],
                placement: Default::default(),
            })
        };
        let accept = |r: Ref| Op::Peering(PeeringOp::AcceptVpcPeeringConnection { peering_id: r });
        let dns = |r: Ref| Op::Peering(PeeringOp::SetPeeringDnsResolution { peering_id: r, allow: true });
        let deploy = |r: Ref| {
            Op::Stage(StageOp::CreateDeployment {
                rest_api_id: r,
                stage: "v1".into(),
                description: String::new(),
                stage_tags: BTreeMap::new(),
            })
        };
        // Into what the plan creates: creation.
        assert_eq!(
            count(vec![
                action(Verb::Register, register(pending())),
                action(Verb::Accept, accept(pending())),
                action(Verb::Update, dns(pending())),
                action(Verb::Deploy, deploy(pending())),
            ]),
            (4, 0, 0)
        );
        // Into what exists: updates, except an acceptance (always the second half of a creation).
        assert_eq!(
            count(vec![
                action(Verb::Register, register(known())),
                action(Verb::Accept, accept(known())),
                action(Verb::Update, dns(known())),
                action(Verb::Deploy, deploy(known())),
                action(
                    Verb::Deregister,
                    Op::Targets(TargetsOp::DeregisterTargets {
                        target_group_arn: "arn:tg".into(),
                        targets: vec![],
                        placement: Default::default(),
                    })
                ),
            ]),
            (1, 3, 1)
        );
    }

    #[test]
    fn owner_tags_round_trip_through_subjects() {
        for s in [
            Subject::Link("payments".into()),
            Subject::Gateway("edge".into()),
            Subject::Peering("vpc-0a".into(), "vpc-0b".into()),
        ] {
            assert_eq!(Subject::from_owner_tag(&s.owner_tag()), Some(s));
        }
        assert_eq!(Subject::from_owner_tag("Link/a/b"), Some(Subject::Link("a/b".into())));
        for bad in ["", "Link", "Peering/vpc-0a", "Team/x"] {
            assert_eq!(Subject::from_owner_tag(bad), None, "{bad}");
        }
    }

    #[test]
    fn long_drifts_show_where_they_differ() {
        let r = Reason::Drift {
            field: "integration uri".into(),
            live: "http://edge-nlb-1.eu-central-1.elb.amazonaws.com:9004/cards".into(),
            desired: "http://edge-nlb-1.eu-central-1.elb.amazonaws.com:9014/cards".into(),
        };
        assert_eq!(
            r.to_string(),
            "drift of integration uri: live …zonaws.com:9004/cards, desired …zonaws.com:9014/cards"
        );
        let short = Reason::Drift { field: "listenerPort".into(), live: "9100".into(), desired: "9001".into() };
        assert_eq!(short.to_string(), "drift of listenerPort: live 9100, desired 9001");
    }
}
