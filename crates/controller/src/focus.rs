//! Targeted observation: a follow-up pass, or one for a new desired state, reads only the
//! accounts its subjects touch, and in them leaves out the targets of target groups whose links
//! it is not about (`DescribeTargetHealth` is one call per target group, most of a steady pass's
//! reads). Everything else comes from the previous observation. The full observation stays for
//! the resync and at start-up: it is what finds drift elsewhere.
//!
//! Only the focused subjects act on such a pass: nothing is changed on the strength of an
//! account state that was not read again.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};

use crosslink_cloud::Cloud;
use crosslink_desired::{DesiredState, Index};
use crosslink_plan::Subject;
use crosslink_plan::observed::{AccountObservation, Observed, TargetGroup};
use crosslink_plan::tags;

use crate::engine::{Engine, scopes};

/// What a targeted observation reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Focus {
    /// Accounts read again (by Account name).
    pub accounts: BTreeSet<String>,
    /// The subjects the pass is about: in the accounts read, their target groups' targets are
    /// read again; those of other links come from the previous observation.
    pub subjects: BTreeSet<Subject>,
    /// On a full pass: which other target groups' targets are read again.
    pub health: Option<HealthSample>,
}

/// Which target groups a full pass reads the targets (and their health) of (issue 18).
/// `DescribeTargetHealth` is one call per target group and most of a steady pass's reads. A
/// group whose targets were all healthy when last read is read one full pass in `every`, the
/// groups spread over the passes by a hash of the ARN, so each pass reads about 1/`every` of
/// them and each is read within `every` passes. A group that was not (a target unhealthy,
/// starting, draining, unused, unavailable, or none registered) is read every pass, as is one
/// never read, and those of the pass's subjects (`Focus::subjects`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthSample {
    /// The full pass's number, counted by the daemon.
    pub pass: u64,
    /// 1 reads every group every pass.
    pub every: u64,
}

impl HealthSample {
    /// Whether the group, as last read (`previous`), is read again on this pass.
    pub fn due(&self, previous: &TargetGroup) -> bool {
        let settled = !previous.targets.is_empty() && previous.targets.iter().all(|t| t.health == "healthy");
        !settled || self.every <= 1 || Self::slot(&previous.arn, self.every) == self.pass % self.every
    }

    /// The pass (mod `every`) a settled group is read on. The same for a group for as long as
    /// the process runs: `DefaultHasher::new` has fixed keys.
    fn slot(arn: &str, every: u64) -> u64 {
        let mut h = std::hash::DefaultHasher::new();
        arn.hash(&mut h);
        h.finish() % every
    }
}

impl Focus {
    /// The accounts and subjects `subjects` touch: a link, its gateway (the API and deployment
    /// it is part of) and its peering, in the gateway's account and the link's service account;
    /// a gateway, in its account; a peering, in the accounts of its two VPCs. `acted_in` adds,
    /// per subject, the accounts the last plan had changes for it in (what a removed subject's
    /// clean-up touches, found by tag wherever it is).
    pub fn of(
        desired: &DesiredState,
        subjects: impl IntoIterator<Item = Subject>,
        acted_in: &BTreeMap<Subject, BTreeSet<String>>,
    ) -> Focus {
        let mut f = Focus::default();
        // One index for the whole walk: a search of the links per subject made a pass's focus
        // quadratic in links.
        let ix = desired.index();
        let mut todo: Vec<Subject> = subjects.into_iter().collect();
        while let Some(s) = todo.pop() {
            if !f.subjects.insert(s.clone()) {
                continue;
            }
            if let Some(accounts) = acted_in.get(&s) {
                f.accounts.extend(accounts.iter().cloned());
            }
            match &s {
                Subject::Link(name) => {
                    let Some(link) = ix.link(name) else { continue };
                    f.accounts.insert(link.spec.service.account.clone());
                    if let Some(gw) = ix.gateway(&link.spec.gateway) {
                        f.accounts.insert(gw.spec.account.clone());
                        todo.push(Subject::Gateway(gw.metadata.name.clone()));
                        todo.push(Subject::Peering(gw.spec.vpc_id.clone(), link.spec.service.vpc_id.clone()));
                    }
                }
                Subject::Gateway(name) => {
                    if let Some(gw) = ix.gateway(name) {
                        f.accounts.insert(gw.spec.account.clone());
                    }
                }
                Subject::Consumer(name) => {
                    if let Some(c) = ix.consumer(name) {
                        f.accounts.extend(
                            c.spec.gateways.iter().filter_map(|g| ix.gateway(g)).map(|g| g.spec.account.clone()),
                        );
                    }
                }
                Subject::Peering(gateway_vpc, service_vpc) => {
                    for gw in ix.gateways_in_vpc(gateway_vpc) {
                        f.accounts.insert(gw.spec.account.clone());
                        for l in ix.links_of(&gw.metadata.name) {
                            if l.spec.service.vpc_id == *service_vpc {
                                f.accounts.insert(l.spec.service.account.clone());
                            }
                        }
                    }
                }
            }
        }
        f
    }

    /// A full pass that still leaves out targets (`HealthSample`): every account of the desired
    /// state is read, and in them the targets of `subjects` and of the groups `health` finds due.
    pub fn full(
        desired: &DesiredState,
        subjects: impl IntoIterator<Item = Subject>,
        acted_in: &BTreeMap<Subject, BTreeSet<String>>,
        health: HealthSample,
    ) -> Focus {
        let mut f = Focus::of(desired, subjects, acted_in);
        f.accounts.extend(desired.accounts.iter().map(|a| a.metadata.name.clone()));
        f.health = Some(health);
        f
    }
}

/// The subjects whose desired inputs differ between two desired states (added, removed or
/// changed links and gateways, and the peerings of either), by `inputs`.
pub fn changed_subjects(
    old: &DesiredState,
    new: &DesiredState,
    inputs: impl Fn(&Index<'_>, &Subject) -> u64,
) -> BTreeSet<Subject> {
    let mut all = subjects_of(old);
    all.extend(subjects_of(new));
    let (old, new) = (old.index(), new.index());
    all.into_iter().filter(|s| inputs(&old, s) != inputs(&new, s)).collect()
}

/// Every subject a desired state names: its links, gateways and the peerings between them.
pub fn subjects_of(d: &DesiredState) -> BTreeSet<Subject> {
    let mut out: BTreeSet<Subject> = d.links.iter().map(|l| Subject::Link(l.metadata.name.clone())).collect();
    out.extend(d.gateways.iter().map(|g| Subject::Gateway(g.metadata.name.clone())));
    for l in &d.links {
        if let Some(gw) = d.gateway(&l.spec.gateway) {
            out.insert(Subject::Peering(gw.spec.vpc_id.clone(), l.spec.service.vpc_id.clone()));
        }
    }
    out
}

impl<C: Cloud> Engine<C> {
    /// Reads the focused accounts (within `only`, when sharded) and every account the previous
    /// observation could not read; takes the rest from `previous`. In the accounts read, target
    /// groups of links outside the focus keep their targets from `previous` instead of being
    /// read again. Returns the observation and the names of the accounts read.
    pub async fn observe_focused(
        &self,
        desired: &DesiredState,
        previous: &Observed,
        focus: &Focus,
        only: Option<&BTreeSet<String>>,
    ) -> (Observed, BTreeSet<String>) {
        let prev_state = |name: &str| match previous.accounts.get(name) {
            Some(AccountObservation::Ok(s)) => Some(s),
            _ => None,
        };
        let read: BTreeSet<String> = desired
            .accounts
            .iter()
            .map(|a| a.metadata.name.clone())
            .filter(|n| only.is_none_or(|o| o.contains(n)))
            .filter(|n| focus.accounts.contains(n) || prev_state(n).is_none())
            .collect();
        let mut scopes = scopes(desired, &self.settings().instance);
        for (name, scope) in scopes.iter_mut() {
            let Some(prev) = prev_state(name) else { continue };
            scope.known_targets = prev
                .target_groups
                .iter()
                .filter(|t| tags::owner_subject(&t.tags).is_none_or(|s| !focus.subjects.contains(&s)))
                .filter(|t| focus.health.is_none_or(|h| !h.due(t)))
                .map(|t| t.arn.clone())
                .collect();
        }
        let mut fresh = self.observe_scoped(desired, Some(&read), &scopes).await;
        for (name, obs) in fresh.accounts.iter_mut() {
            let (AccountObservation::Ok(state), Some(prev), Some(scope)) = (obs, prev_state(name), scopes.get(name))
            else {
                continue;
            };
            let old: std::collections::HashMap<&str, &crosslink_plan::observed::TargetGroup> =
                prev.target_groups.iter().map(|t| (t.arn.as_str(), t)).collect();
            for t in state.target_groups.iter_mut().filter(|t| scope.known_targets.contains(&t.arn)) {
                if let Some(o) = old.get(t.arn.as_str()) {
                    t.targets = o.targets.clone();
                }
            }
        }
        for a in &desired.accounts {
            let name = &a.metadata.name;
            if !read.contains(name)
                && only.is_none_or(|o| o.contains(name))
                && let Some(prev) = previous.accounts.get(name)
            {
                fresh.accounts.insert(name.clone(), prev.clone());
            }
        }
        (fresh, read)
    }
}

#[cfg(test)]
mod tests {
    use super::HealthSample;
    use crosslink_plan::observed::{HealthCheckSettings, RegisteredTarget, TargetGroup};

    fn group(arn: &str, health: &[&str]) -> TargetGroup {
        TargetGroup {
            arn: arn.into(),
            name: arn.into(),
            vpc_id: "vpc-1".into(),
            protocol: "TCP".into(),
            port: 80,
            target_type: "ip".into(),
            health_check: HealthCheckSettings {
                protocol: "TCP".into(),
                path: None,
                port: "traffic-port".into(),
                interval_seconds: 30,
                healthy_threshold: 3,
                unhealthy_threshold: 3,
            },
            tags: Default::default(),
            targets: health
                .iter()
                .enumerate()
                .map(|(i, h)| RegisteredTarget {
                    ip: std::net::Ipv4Addr::new(10, 0, 0, i as u8 + 1),
                    port: 80,
                    availability_zone: None,
                    health: (*h).into(),
                    reason: None,
                    description: None,
                })
                .collect(),
        }
    }

    #[test]
    fn a_settled_group_is_due_once_in_every_passes_and_the_groups_spread_over_them() {
        let every = 3;
        let groups: Vec<TargetGroup> =
            (0..300).map(|i| group(&format!("arn:tg/{i}"), &["healthy", "healthy"])).collect();
        let mut per_pass = Vec::new();
        for g in &groups {
            let due: Vec<u64> = (0..2 * every).filter(|p| HealthSample { pass: *p, every }.due(g)).collect();
            assert_eq!(due.len(), 2, "{}: due on passes {due:?}", g.arn);
            assert_eq!(due[1] - due[0], every);
        }
        for p in 0..every {
            per_pass.push(groups.iter().filter(|g| HealthSample { pass: p, every }.due(g)).count());
        }
        // 100 each if even: the hash spreads them, no pass takes most of the reads.
        assert!(per_pass.iter().all(|n| (60..=140).contains(n)), "{per_pass:?}");
    }

    #[test]
    fn a_group_not_all_healthy_or_empty_is_due_every_pass_and_every_1_reads_all() {
        for health in [&["healthy", "unhealthy"][..], &["initial"], &["draining"], &["unused"], &["unavailable"], &[]] {
            let g = group("arn:tg/x", health);
            assert!((0..6).all(|p| HealthSample { pass: p, every: 3 }.due(&g)), "{health:?}");
        }
        let g = group("arn:tg/x", &["healthy"]);
        assert!((0..6).all(|p| HealthSample { pass: p, every: 1 }.due(&g)));
        assert!((0..6).all(|p| HealthSample { pass: p, every: 0 }.due(&g)));
    }
}
