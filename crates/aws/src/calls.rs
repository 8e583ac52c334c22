//! Every AWS call the adapter makes, declared as a typed value: the service, the operation, the
//! IAM actions AWS authorizes it with, whether it changes anything, and the client-side rate-limit
//! buckets it spends. Each declaration lives with its resource kind (`crate::kinds`); the adapter
//! can only send a request through a declaration (`Ctx::call`, `Ctx::write`, `Ctx::pages` take a
//! `&'static Call`), so what is declared is what is called. The rate limiter, the metrics, the
//! bench's floor and the IAM coverage tests all read these declarations (the IAM policy itself is
//! generated from the statements each kind declares beside them, `crate::grants`).

use crate::ratelimit::Bucket;

/// The AWS service a call goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AwsService {
    Ec2,
    Elbv2,
    ApiGateway,
    Sts,
    Wafv2,
}

impl AwsService {
    /// The name in metrics, logs and the SigV4 signing name crosslink reports (`elbv2` for
    /// Elastic Load Balancing v2).
    pub const fn as_str(self) -> &'static str {
        match self {
            AwsService::Ec2 => "ec2",
            AwsService::Elbv2 => "elbv2",
            AwsService::ApiGateway => "apigateway",
            AwsService::Sts => "sts",
            AwsService::Wafv2 => "wafv2",
        }
    }

    /// The prefix of its IAM actions.
    pub const fn iam_prefix(self) -> &'static str {
        match self {
            AwsService::Ec2 => "ec2",
            AwsService::Elbv2 => "elasticloadbalancing",
            AwsService::ApiGateway => "apigateway",
            AwsService::Sts => "sts",
            AwsService::Wafv2 => "wafv2",
        }
    }
}

impl From<crosslink_plan::op::Service> for AwsService {
    fn from(s: crosslink_plan::op::Service) -> Self {
        match s {
            crosslink_plan::op::Service::Ec2 => AwsService::Ec2,
            crosslink_plan::op::Service::Elbv2 => AwsService::Elbv2,
            crosslink_plan::op::Service::ApiGateway => AwsService::ApiGateway,
            crosslink_plan::op::Service::Wafv2 => AwsService::Wafv2,
        }
    }
}

/// Whether a call changes anything (a write is fenced, logged with its resource, and counted as
/// a write).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    Read,
    Write,
}

/// One AWS API operation as the adapter calls it.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Call {
    pub service: AwsService,
    /// The operation's name as AWS spells it (`CreateRoute`, `GetResources`).
    pub operation: &'static str,
    pub access: Access,
    /// Every IAM action AWS evaluates for the call: its own, and those of what it does on the
    /// caller's behalf (tags on create: `ec2:CreateTags`, `elasticloadbalancing:AddTags`; a VPC
    /// link's endpoint service). Empty for a call that needs no permission (GetCallerIdentity).
    pub iam: &'static [&'static str],
    /// The client-side token buckets it spends, all of them (an API Gateway operation with a
    /// limit of its own also counts against the account's API Gateway limit).
    pub buckets: &'static [Bucket],
}

impl Call {
    pub const fn read(
        service: AwsService,
        operation: &'static str,
        iam: &'static [&'static str],
        buckets: &'static [Bucket],
    ) -> Call {
        Call { service, operation, access: Access::Read, iam, buckets }
    }

    pub const fn write(
        service: AwsService,
        operation: &'static str,
        iam: &'static [&'static str],
        buckets: &'static [Bucket],
    ) -> Call {
        Call { service, operation, access: Access::Write, iam, buckets }
    }

    pub fn is_write(&self) -> bool {
        self.access == Access::Write
    }
}

/// Every call the adapter makes, by kind (each kind's own list first, in dependency order).
pub fn all() -> impl Iterator<Item = &'static Call> {
    crate::kinds::ALL.iter().flat_map(|k| k.calls.iter().copied())
}

/// The declaration of a call by service name and operation (`("ec2", "CreateRoute")`), as metrics
/// and the bench's request log name it.
pub fn find(service: &str, operation: &str) -> Option<&'static Call> {
    all().find(|c| c.service.as_str() == service && c.operation == operation)
}
