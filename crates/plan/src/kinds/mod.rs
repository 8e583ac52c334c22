//! The planner's home of each resource kind: what is observed of it and the operations that
//! change it, each kind its own enum implementing [`KindOp`]. The list in
//! [`for_each_kind!`](crate::for_each_kind) registers them: [`Op`], [`ResourceKind`] and every
//! dispatch over kinds, here and in the AWS adapter and the in-memory AWS, are generated from it,
//! so a kind registered there and missing anywhere else is a compile error.

use serde::Serialize;

use crate::model::Subject;
use crate::observed::{AccountState, Tags};
use crate::op::{Ref, ResourceKey, Service};
use crate::planner::{ApiCx, ConsumerCx, GatewayCx, LinkCx, PairCx, Planner, Prunable, Stage};

/// What every kind's operations tell the generic machinery (scheduling, ids handed over within a
/// pass, per-resource memory, metrics). No method has a default: a new kind answers each.
pub trait KindOp {
    /// The AWS service the operation's calls go to.
    fn service(&self) -> Service;
    /// The operation's name, as AWS names the (first) call.
    fn name(&self) -> &'static str;
    /// What identifies the resource acted on: its id or ARN when known, else what names it
    /// before it exists (a name, a VPC pair, a path).
    fn target_id(&self) -> String;
    /// The ids the call needs that may not be known when planning.
    fn refs(&self) -> Vec<&Ref>;
    /// The same ids, to fill in or renumber.
    fn refs_mut(&mut self) -> Vec<&mut Ref>;
    /// Whether the state AWS reported for what this call made or changed lets the steps after it
    /// go on in the same pass: what the next observation would let the planner plan.
    fn lets_chain(&self, state: Option<&str>) -> bool;
    /// Whether the resource the call acts on is one the plan creates before it (its id is
    /// pending): such a step is part of the creation.
    fn on_new_resource(&self) -> bool;
    fn is_delete(&self) -> bool;
}

/// The registration of every resource kind, in dependency order (what is created first comes
/// first): its variant in [`ResourceKind`](kinds::ResourceKind) and [`Op`](kinds::Op), its module
/// under `kinds/`, its operations' enum, its name in metric labels, the planner stage that plans
/// it (`Gateway`, `Link`, `Api`, `Pair` or `Consumer`: see `planner::Stage`), and, when it is observed on its
/// own rather than inside its parent's observation, its field of
/// [`AccountState`](crate::observed::AccountState) (of the module's type `Observed`). Adding a
/// kind is one line here plus its modules; everything that dispatches over kinds is generated
/// from this list by passing a macro of its own: `crosslink_plan::for_each_kind!(my_macro)`
/// expands to `my_macro! { Peering => peering : PeeringOp, "peering", Pair, peerings; ... }`.
#[macro_export]
macro_rules! for_each_kind {
    ($then:ident) => {
        $then! {
            Peering => peering : PeeringOp, "peering", Pair, peerings;
            Route => route : RouteOp, "route", Pair, route_tables;
            LoadBalancer => load_balancer : LoadBalancerOp, "load_balancer", Gateway, load_balancers;
            EndpointService => endpoint_service : EndpointServiceOp, "endpoint_service", Link, endpoint_services;
            SecurityGroup => security_group : SecurityGroupOp, "security_group", Link, security_groups;
            Endpoint => endpoint : EndpointOp, "endpoint", Link, endpoints;
            TargetGroup => target_group : TargetGroupOp, "target_group", Link, target_groups;
            Targets => targets : TargetsOp, "targets", Link;
            Listener => listener : ListenerOp, "listener", Link, listeners;
            VpcLink => vpc_link : VpcLinkOp, "vpc_link", Gateway, vpc_links;
            RestApi => rest_api : RestApiOp, "rest_api", Gateway, rest_apis;
            Authorizer => authorizer : AuthorizerOp, "authorizer", Api;
            ApiResource => api_resource : ApiResourceOp, "api_resource", Api;
            Method => method : MethodOp, "integration", Api;
            ResourcePolicy => resource_policy : ResourcePolicyOp, "resource_policy", Api;
            Stage => stage : StageOp, "deployment", Api;
            WebAcl => web_acl : WebAclOp, "web_acl", Api;
            DomainName => domain_name : DomainNameOp, "domain_name", Api, domain_names;
            BasePathMapping => base_path_mapping : BasePathMappingOp, "base_path_mapping", Api;
            UsagePlan => usage_plan : UsagePlanOp, "usage_plan", Consumer, usage_plans;
            ApiKey => api_key : ApiKeyOp, "api_key", Consumer, api_keys;
        }
    };
}

macro_rules! declare_kinds {
    ($($Kind:ident => $module:ident : $KindOp:ident, $label:literal, $stage:ident $(, $field:ident)?;)*) => {
        $(pub mod $module;)*
        $(pub use $module::$KindOp;)*

        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(rename_all = "camelCase")]
        pub enum ResourceKind {
            $($Kind,)*
        }

        impl ResourceKind {
            /// Every kind, in dependency order (what is created first comes first).
            pub const ALL: [ResourceKind; [$(stringify!($Kind),)*].len()] = [$(ResourceKind::$Kind,)*];

            /// Its name in metric labels (`resource`).
            pub fn label(self) -> &'static str {
                match self {
                    $(ResourceKind::$Kind => $label,)*
                }
            }
        }

        /// An AWS operation with every parameter the call needs: one kind's operation. Serialized
        /// as that operation alone (`{"op": "CreateRoute", ...}`).
        #[derive(Clone, Debug, PartialEq, Serialize)]
        #[serde(untagged)]
        pub enum Op {
            $($Kind($KindOp),)*
        }

        $(
            impl From<$KindOp> for Op {
                fn from(op: $KindOp) -> Op {
                    Op::$Kind(op)
                }
            }
        )*

        impl Op {
            pub fn kind(&self) -> ResourceKind {
                match self {
                    $(Op::$Kind(_) => ResourceKind::$Kind,)*
                }
            }

            fn kind_op(&self) -> &dyn KindOp {
                match self {
                    $(Op::$Kind(op) => op,)*
                }
            }

            fn kind_op_mut(&mut self) -> &mut dyn KindOp {
                match self {
                    $(Op::$Kind(op) => op,)*
                }
            }
        }

        // What each kind's module tells the planner's generic machinery (`planner.rs`): a
        // registered kind whose module lacks one of these does not compile.

        /// The kind's resources in one observed account, as the clean-up of what desired state
        /// no longer accounts for sees them (`prunable` in each kind's module).
        pub(crate) fn prunable(kind: ResourceKind, st: &AccountState) -> Vec<Prunable<'_>> {
            match kind {
                $(ResourceKind::$Kind => $module::prunable(st),)*
            }
        }

        /// What must happen before an orphan of the kind is deleted (the actions it then waits
        /// for), or `None` to keep it after all (`before_delete` in each kind's module).
        pub(crate) fn before_delete<'a>(
            kind: ResourceKind,
            p: &mut Planner<'a>,
            subject: &Subject,
            account: &str,
            st: &'a AccountState,
            c: &Prunable<'a>,
        ) -> Option<Vec<Option<usize>>> {
            match kind {
                $(ResourceKind::$Kind => $module::before_delete(p, subject, account, st, c),)*
            }
        }

        /// The call that adds tags to one of the kind's resources, if it carries tags
        /// (`tag_op` in each kind's module).
        pub(crate) fn tag_op(kind: ResourceKind, id: &str, tags: Tags) -> Option<Op> {
            match kind {
                $(ResourceKind::$Kind => $module::tag_op(id, tags),)*
            }
        }

        /// The call that removes tags (by key) from one of the kind's resources, if it carries
        /// tags (`untag_op` in each kind's module): `crosslink release`.
        pub fn untag_op(kind: ResourceKind, id: &str, keys: Vec<String>) -> Option<Op> {
            match kind {
                $(ResourceKind::$Kind => $module::untag_op(id, keys),)*
            }
        }

        // Each kind's planning, by the stage the registration names (`planner::Stage`): a
        // registered kind whose module lacks `Out` or a `plan` over its stage's context does not
        // compile, and neither does a stage name that is not one.
        $(const _: Stage = Stage::$stage;)*

        /// What each kind's planning hands on to the kinds after it (its module's `Out`), for one
        /// subject: a stage's context holds one.
        #[derive(Default)]
        #[allow(dead_code, reason = "a kind that hands nothing on has `Out = ()`")]
        pub(crate) struct Outs<'a> {
            $(pub(crate) $module: $module::Out<'a>,)*
        }

        /// The kinds of the gateway stage, in registration order, until one stops the gateway.
        pub(crate) fn plan_gateway<'a>(p: &mut Planner<'a>, cx: &mut GatewayCx<'a>) -> Option<()> {
            $(in_stage!(Gateway $stage { $module::plan(p, cx)?; });)*
            Some(())
        }

        /// The kinds of the link stage, in registration order, until one stops the link.
        pub(crate) fn plan_link<'a>(p: &mut Planner<'a>, cx: &mut LinkCx<'a, '_>) -> Option<()> {
            $(in_stage!(Link $stage { $module::plan(p, cx)?; });)*
            Some(())
        }

        /// The kinds of the API stage, in registration order, until one stops the API.
        pub(crate) fn plan_api<'a>(p: &mut Planner<'a>, cx: &mut ApiCx<'a, '_>) -> Option<()> {
            $(in_stage!(Api $stage { $module::plan(p, cx)?; });)*
            Some(())
        }

        /// The kinds of the pair stage, in registration order, until one stops the pair.
        pub(crate) fn plan_pair<'a>(p: &mut Planner<'a>, cx: &mut PairCx<'a, '_>) -> Option<()> {
            $(in_stage!(Pair $stage { $module::plan(p, cx)?; });)*
            Some(())
        }

        /// The kinds of the consumer stage, in registration order, until one stops the consumer.
        pub(crate) fn plan_consumer<'a>(p: &mut Planner<'a>, cx: &mut ConsumerCx<'a>) -> Option<()> {
            $(in_stage!(Consumer $stage { $module::plan(p, cx)?; });)*
            Some(())
        }
    };
}

/// `in_stage!(Wanted Registered { .. })`: the block when the kind is registered in the stage
/// being generated, nothing otherwise.
macro_rules! in_stage {
    (Gateway Gateway $b:block) => {
        $b
    };
    (Link Link $b:block) => {
        $b
    };
    (Api Api $b:block) => {
        $b
    };
    (Pair Pair $b:block) => {
        $b
    };
    (Consumer Consumer $b:block) => {
        $b
    };
    ($wanted:ident $registered:ident $b:block) => {};
}

for_each_kind!(declare_kinds);

impl Op {
    pub fn service(&self) -> Service {
        self.kind_op().service()
    }

    /// The operation's name, as AWS names the (first) call.
    pub fn name(&self) -> &'static str {
        self.kind_op().name()
    }

    /// The resource this operation acts on.
    pub fn target(&self) -> ResourceKey {
        ResourceKey { kind: self.kind(), id: self.kind_op().target_id() }
    }

    /// The ids the call needs that may not be known when planning.
    pub fn refs(&self) -> Vec<&Ref> {
        self.kind_op().refs()
    }

    /// The same ids, to fill in or renumber.
    pub fn refs_mut(&mut self) -> Vec<&mut Ref> {
        self.kind_op_mut().refs_mut()
    }

    /// Whether the state AWS reported for what this call made or changed lets the steps after it
    /// go on in the same pass: what the next observation would let the planner plan. A VPC link
    /// must be AVAILABLE before methods use it; routes and DNS options need an active peering;
    /// a peering request is accepted once it is made (AWS shows it to the accepter within
    /// seconds: an accepter that does not see it yet answers NotFound, which is a wait).
    pub fn lets_chain(&self, state: Option<&str>) -> bool {
        self.kind_op().lets_chain(state)
    }

    /// Whether the resource the call acts on is one the plan creates before it (its id is
    /// pending): targets into a new group, the options of a new peering, a new API's first
    /// deployment. Such a step is part of the creation.
    pub fn on_new_resource(&self) -> bool {
        self.kind_op().on_new_resource()
    }

    pub fn is_delete(&self) -> bool {
        self.kind_op().is_delete()
    }
}
