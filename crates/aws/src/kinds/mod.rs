//! The adapter's home of each resource kind. Each module declares the AWS calls its kind makes
//! (`crate::calls::Call`); [`of`] maps every planner kind to its module, so a kind the planner
//! knows and the adapter does not is a compile error here.

use crosslink_cloud::{CloudError, ObserveScope, Outcome};
use crosslink_plan::op::{Op, ResourceKind};
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::calls::Call;
use crate::cloud::{Clients, Ctx};
use crate::observe::Found;

/// Reads that belong to no planner kind (the account's VPCs).
pub mod account;

/// What the adapter declares for one kind.
#[derive(Debug)]
pub struct Kind {
    /// For people (docs, test messages).
    pub name: &'static str,
    pub calls: &'static [&'static Call],
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
                (AwsService::ApiGateway, _) => {
                    assert_eq!(c.buckets.last(), Some(&Bucket::ApiGateway), "{}", c.operation);
                    continue;
                }
            };
            assert_eq!(c.buckets, expected, "{}:{}", c.service.as_str(), c.operation);
        }
        assert!(seen.len() >= 40, "{} calls", seen.len());
    }
}
