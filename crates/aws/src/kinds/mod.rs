//! The adapter's home of each resource kind. Each module declares the AWS calls its kind makes
//! (`crate::calls::Call`) and the IAM statements they need (`crate::grants::Grant`); [`of`] maps
//! every planner kind to its module, so a kind the planner knows and the adapter does not is a
//! compile error here.

use crosslink_cloud::{CloudError, ObserveScope, Outcome};
use crosslink_plan::op::{Op, ResourceKind};
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::calls::Call;
use crate::cloud::{Clients, Ctx};
use crate::grants::Grant;
use crate::observe::Found;

/// Reads that belong to no planner kind (the account's VPCs).
pub mod account;

/// What the adapter declares for one kind.
#[derive(Debug)]
pub struct Kind {
    /// For people (docs, test messages).
    pub name: &'static str,
    pub calls: &'static [&'static Call],
    /// The IAM statements its calls need: its own, and the shared ones it also relies on (a
    /// statement that serves several kinds is declared once, in one of them, and listed by each;
    /// `crosslink iam-policy` emits it once, where it is first listed). Together with
    /// `account`'s, they grant every IAM action of its calls.
    pub grants: &'static [&'static Grant],
}

/// Generated from the planner's registration (`crosslink_plan::for_each_kind!`): a module per
/// kind, each with its `KIND` declarations and an `execute` for its operations.
macro_rules! adapter_kinds {
    ($($Kind:ident => $module:ident : $KindOp:ident, $label:literal, $stage:ident $(, $field:ident)?;)*) => {
        $(pub mod $module;)*

        /// Every kind the adapter knows, account-level reads first, then in dependency order.
        pub static ALL: &[&Kind] = &[&account::KIND, $(&$module::KIND,)*];

        /// The adapter's declarations for a planner kind.
        pub fn of(kind: ResourceKind) -> &'static Kind {
            match kind {
                $(ResourceKind::$Kind => &$module::KIND,)*
            }
        }

        /// Performs one operation: its kind's module makes the SDK call(s).
        /// Every kind's reader of an account (`<kind>::read`), the account's own first.
        pub(crate) fn readers<'a>(
            ctx: &'a Ctx<'_>,
            c: &'a Clients,
            scope: &'a ObserveScope,
        ) -> Vec<BoxFuture<'a, Result<Found, CloudError>>> {
            vec![account::read(ctx, c, scope).boxed(), $($module::read(ctx, c, scope).boxed(),)*]
        }

        pub(crate) async fn execute(ctx: &Ctx<'_>, c: &Clients, op: &Op) -> Result<Outcome, CloudError> {
            match op {
                $(Op::$Kind(op) => $module::execute(ctx, c, op).await,)*
            }
        }
    };
}

crosslink_plan::for_each_kind!(adapter_kinds);

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::calls::{self, Access, AwsService};
    use crate::grants::{self, Condition};
    use crate::ratelimit::Bucket;

    #[test]
    fn every_planner_kind_has_its_module_listed_once() {
        for k in ResourceKind::ALL {
            let home = of(k);
            assert_eq!(
                ALL.iter().filter(|x| std::ptr::eq(**x, home)).count(),
                1,
                "{k:?} ({}) in kinds::ALL",
                home.name
            );
        }
        assert_eq!(ALL.len(), ResourceKind::ALL.len() + 1, "kinds::ALL is the planner's kinds plus `account`");
    }

    #[test]
    fn each_call_is_declared_once_and_consistently() {
        let mut seen = BTreeSet::new();
        for c in calls::all() {
            assert!(seen.insert((c.service, c.operation)), "{}:{} declared twice", c.service.as_str(), c.operation);
            for action in c.iam {
                let (prefix, name) = action.split_once(':').expect("service:Action");
                assert!(!name.is_empty(), "{action}");
                // A call's IAM actions may belong to another service (a VPC link's endpoint
                // service is EC2's), but its own action is in its own service.
                if prefix == c.service.iam_prefix() && c.service != AwsService::ApiGateway {
                    assert!(
                        c.iam.contains(&format!("{prefix}:{}", c.operation).as_str()),
                        "{}:{} lacks its own action",
                        prefix,
                        c.operation
                    );
                }
            }
            let read = ["Describe", "Get", "List"].iter().any(|p| c.operation.starts_with(p));
            assert_eq!(c.access == Access::Read, read, "{}:{} access", c.service.as_str(), c.operation);
            // The buckets follow the service; API Gateway operations with a limit of their own
            // also spend from the account's API Gateway bucket.
            let expected: &[Bucket] = match (c.service, c.access) {
                (AwsService::Ec2, Access::Read) => &[Bucket::Ec2Read],
                (AwsService::Ec2, Access::Write) => &[Bucket::Ec2Write],
                (AwsService::Elbv2, _) => &[Bucket::Elbv2],
                (AwsService::Sts, _) => &[Bucket::Sts],
                (AwsService::Wafv2, _) => &[Bucket::Wafv2],
                (AwsService::ApiGateway, _) => {
                    assert_eq!(c.buckets.last(), Some(&Bucket::ApiGateway), "{}", c.operation);
                    continue;
                }
            };
            assert_eq!(c.buckets, expected, "{}:{}", c.service.as_str(), c.operation);
        }
        assert!(seen.len() >= 40, "{} calls", seen.len());
    }

    /// A call whose IAM actions no grant of its kind allows fails here, before any policy is
    /// generated; so does a grant that allows what none of the kind's calls needs.
    #[test]
    fn every_iam_action_of_a_kind_s_calls_is_granted_by_the_kind_or_the_account() {
        let mut failures = Vec::new();
        for k in ALL {
            for c in k.calls {
                for action in c.iam {
                    if !k.grants.iter().chain(account::KIND.grants).any(|g| g.actions.contains(action)) {
                        failures.push(format!(
                            "{}: {}:{} needs {action}, which no grant of the kind (or of `account`) allows",
                            k.name,
                            c.service.as_str(),
                            c.operation
                        ));
                    }
                }
            }
            for g in k.grants {
                if !g.actions.iter().any(|a| k.calls.iter().any(|c| c.iam.contains(a))) {
                    failures.push(format!("{}: lists {}, but none of its calls needs its actions", k.name, g.sid));
                }
            }
        }
        let needed: BTreeSet<&str> = calls::all().flat_map(|c| c.iam.iter().copied()).collect();
        for g in grants::all() {
            for a in g.actions {
                if !needed.contains(a) {
                    failures.push(format!("{} allows {a}, which no call needs", g.sid));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn each_grant_has_its_own_alphanumeric_sid_and_something_to_allow() {
        let mut sids = BTreeSet::new();
        let all = grants::all();
        assert!(all.len() >= 25, "{} grants", all.len());
        for g in all {
            assert!(sids.insert(g.sid), "two grants are {}: declare it once and list it", g.sid);
            assert!(!g.sid.is_empty() && g.sid.chars().all(|c| c.is_ascii_alphanumeric()), "IAM Sids: {}", g.sid);
            assert!(!g.actions.is_empty() && !g.resources.is_empty() && !g.why.is_empty(), "{}", g.sid);
            let mut actions = BTreeSet::new();
            for a in g.actions {
                assert!(actions.insert(a), "{}: {a} twice", g.sid);
                let (prefix, name) = a.split_once(':').expect("service:Action");
                let known =
                    [AwsService::Ec2, AwsService::Elbv2, AwsService::ApiGateway, AwsService::Sts, AwsService::Wafv2];
                // S3: API Gateway reads a custom domain's truststore with the caller's rights.
                let on_behalf = ["s3"];
                assert!(
                    (known.iter().any(|s| s.iam_prefix() == prefix) || on_behalf.contains(&prefix)) && !name.is_empty(),
                    "{}: {a}",
                    g.sid
                );
            }
            for c in g.condition {
                if let Condition::Equals(key, values) = c {
                    assert!(!values.is_empty() && key.contains(':'), "{}: {key}", g.sid);
                }
            }
        }
    }
}
