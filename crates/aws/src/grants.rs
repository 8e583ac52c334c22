//! The IAM policy statements crosslink's calls need, declared as typed values: each `Grant` is
//! one Allow statement (Sid, IAM actions, resources, condition, a note for people) and the
//! Accounts it belongs in. Each declaration lives with the resource kind it serves
//! (`crate::kinds`, `Kind::grants`); a statement that serves several kinds is declared once and
//! listed by each of them. The declarations are plain data: `crosslink iam-policy` resolves the
//! scopes (ARNs, VPCs, stages named in desired state) per Account, and its coverage tests check
//! them against the calls (`crate::calls`).

/// Which Accounts a grant belongs in, read off desired state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// Every Account: the engine reads VPCs, peerings and route tables in each.
    Always,
    /// Where the engine looks for crosslink's load balancers, VPC links and REST APIs (every
    /// Account but those that are only a service side): what removes them follows ownership, so
    /// it stays granted after the last gateway left.
    GatewaySide,
    /// Accounts with at least one Gateway.
    Gateways,
    /// Accounts where at least one Link's service side is (peering accepter, routes).
    ServiceLinks,
    /// Accounts with a Gateway whose REST API is crosslink's own (`api.name`, not `api.id`).
    OwnRestApis,
    /// Accounts whose gateways have Consumers (usage plans and API keys are made there).
    Consumers,
    /// Accounts with a Gateway that has a custom domain.
    CustomDomains,
    /// Accounts with a Gateway one of whose links adopts (`adoption: Adopt`).
    Adopting,
    /// Accounts with a Gateway that adopts (`adoption: Adopt` on the Gateway).
    AdoptingGateways,
    /// Accounts where a privateLink link's service side is (its NLB and endpoint service).
    PrivateLinkServices,
    /// Accounts with a Gateway that has a privateLink link (its endpoint and security group).
    PrivateLinkGateways,
}

/// The VPCs a scope names, each in the account (and region) that owns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vpcs {
    /// The VPCs of this Account's gateways.
    OfGateways,
    /// The service VPCs of the links whose service side is this Account.
    OfServiceLinks,
    /// The service VPCs of the links of this Account's gateways (the peerings' accepters).
    PeersOfGateways,
    /// The gateway VPCs of the links whose service side is this Account (the requesters).
    PeersOfServiceLinks,
}

/// What a statement's `Resource` holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// `*`: the action supports no resource-level permissions.
    Any,
    /// `arn:<partition>:ec2:<region>:<account>:<pattern>`.
    Ec2(&'static str),
    /// `arn:<partition>:elasticloadbalancing:<region>:<account>:<pattern>`.
    Elb(&'static str),
    /// `arn:<partition>:apigateway:<region>::<path>` (API Gateway's ARNs carry no account).
    ApiGw(&'static str),
    /// The route tables of this Account's gateways and service links.
    RouteTables,
    /// These VPCs (`vpc/<id>`).
    Vpcs(Vpcs),
    /// `loadbalancer/net/<name>/*` for each NLB this Account's gateways name.
    NamedLoadBalancers,
    /// The ARNs of the NLBs this Account's gateways reference (`loadBalancer.arn`).
    ReferencedLoadBalancers,
    /// `/restapis/<id><suffix>` for each REST API this Account's gateways reference by id.
    ReferencedRestApis(&'static str),
    /// `arn:<partition>:s3:::<bucket>/<key>` of each mutual TLS truststore this Account's
    /// gateways name.
    Truststores,
}

/// One entry of a statement's `Condition`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// `aws:RequestedRegion` is the Account's region.
    InRegion,
    /// The resource carries crosslink's managed-by tag (`aws:ResourceTag/crosslink.dev/managed-by`).
    Owned,
    /// The request puts the managed-by tag on what it creates (`aws:RequestTag/...`).
    TaggedRequest,
    /// The request writes only tag keys crosslink writes in this Account (`aws:TagKeys`).
    CrosslinkTagKeys,
    /// `StringEquals`: the condition key has one of these values.
    Equals(&'static str, &'static [&'static str]),
    /// `ec2:AccepterVpc` is one of these VPCs.
    AccepterVpc(Vpcs),
    /// `ec2:RequesterVpc` is one of these VPCs.
    RequesterVpc(Vpcs),
    /// `apigateway:Request/StageName` is the stage of one of this Account's gateways.
    StageNames,
}

/// Changes only to what carries the managed-by tag.
pub const OWNED: &[Condition] = &[Condition::Owned];
/// Changes to what carries the managed-by tag, writing only crosslink's tag keys.
pub const OWNED_TAGGING: &[Condition] = &[Condition::Owned, Condition::CrosslinkTagKeys];
/// Creates that carry the managed-by tag and only crosslink's tag keys.
pub const TAGGED_REQUEST: &[Condition] = &[Condition::TaggedRequest, Condition::CrosslinkTagKeys];
/// Limited to the Account's region.
pub const IN_REGION: &[Condition] = &[Condition::InRegion];

/// One Allow statement of an Account's permissions policy.
///
/// It is in the policy of an Account when `when` holds there and each of its scopes (resources
/// and condition values read off desired state) names something there: IAM rejects an empty
/// `Resource`, and a condition on an empty list allows nothing.
#[derive(Debug, PartialEq, Eq)]
pub struct Grant {
    /// Alphanumeric (IAM allows nothing else), unique in a policy; it says what the statement
    /// is scoped by where AWS allows less than a tag condition (`NoTagCondition`,
    /// `NoResourceLevel`, `NoResourceTag`).
    pub sid: &'static str,
    pub actions: &'static [&'static str],
    pub resources: &'static [Resource],
    /// Every entry must hold (empty: no condition).
    pub condition: &'static [Condition],
    pub when: When,
    /// Why the statement is as it is, for reviewers (`notes.<Sid>` in the output).
    pub why: &'static str,
}

/// Every grant once, in the order the kinds list them (`crate::kinds::ALL`: the account's first,
/// then dependency order); a grant listed by several kinds is where its first kind lists it.
pub fn all() -> Vec<&'static Grant> {
    let mut out: Vec<&'static Grant> = Vec::new();
    for g in crate::kinds::ALL.iter().flat_map(|k| k.grants.iter().copied()) {
        if !out.iter().any(|seen| std::ptr::eq(*seen, g)) {
            out.push(g);
        }
    }
    out
}
