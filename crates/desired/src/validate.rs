//! Checks across fields and documents: formats, references, uniqueness, overlaps and quotas.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use ipnet::Ipv4Net;

use crate::diag::Diagnostic;
use crate::index::Index;
use crate::model::*;
use crate::rules::{self, Problem};
use crate::suggest::did_you_mean;

/// Listeners per NLB: a fixed AWS quota, so at most this many links per gateway.
pub const MAX_LINKS_PER_GATEWAY: usize = 50;
/// Targets per NLB (AWS quota).
pub const MAX_TARGETS_PER_GATEWAY: usize = 3000;

/// The documents that did not decode, by what they legibly say they are: a reference to one of
/// them is not reported as dangling (it may well be right once the document is fixed).
#[derive(Debug, Default)]
pub(crate) struct Undecoded {
    /// Kind and name of each; `None` where the document does not say (or a file could not be
    /// read or parsed at all, so that it may hold anything).
    docs: Vec<(Option<&'static str>, Option<String>)>,
}

impl Undecoded {
    pub fn document(&mut self, doc: &crate::node::Node) {
        self.docs.push(crate::decode::identity(doc));
    }

    /// Something of unknown kind and name (an unreadable or unparsable file).
    pub fn unknown(&mut self) {
        self.docs.push((None, None));
    }

    fn might_define(&self, kind: &str, name: &str) -> bool {
        self.docs.iter().any(|(k, n)| k.is_none_or(|k| k == kind) && n.as_deref().is_none_or(|n| n == name))
    }
}

struct V<'a> {
    diags: &'a mut Vec<Diagnostic>,
    undecoded: &'a Undecoded,
}

impl V<'_> {
    fn at(&mut self, kind: &str, meta: &Metadata, field: &str, p: Problem) {
        let loc = meta.source.loc_of(field);
        self.diags.push(
            Diagnostic::new(&meta.source.file, loc, field, p.0).object(Some(format!("{kind}/{}", meta.name))).hint(p.1),
        );
    }
    fn check(&mut self, kind: &str, meta: &Metadata, field: &str, p: Option<Problem>) {
        if let Some(p) = p {
            self.at(kind, meta, field, p);
        }
    }
}

fn p(msg: impl Into<String>, hint: impl Into<String>) -> Problem {
    (msg.into(), hint.into())
}

pub(crate) fn validate(state: &DesiredState, undecoded: &Undecoded, diags: &mut Vec<Diagnostic>) {
    let mut v = V { diags, undecoded };
    let ix = state.index();
    names(&mut v, "Account", state.accounts.iter().map(|a| &a.metadata));
    names(&mut v, "Gateway", state.gateways.iter().map(|g| &g.metadata));
    names(&mut v, "Link", state.links.iter().map(|l| &l.metadata));
    names(&mut v, "Consumer", state.consumers.iter().map(|c| &c.metadata));
    for a in &state.accounts {
        account(&mut v, a);
    }
    let account_names = Known::new(state.accounts.iter().map(|a| a.metadata.name.as_str()));
    let gateway_names = Known::new(state.gateways.iter().map(|g| g.metadata.name.as_str()));
    for g in &state.gateways {
        gateway(&mut v, &ix, g, &account_names);
    }
    for l in &state.links {
        link(&mut v, &ix, l, &account_names, &gateway_names);
    }
    for c in &state.consumers {
        consumer(&mut v, &ix, c, &gateway_names);
    }
    per_gateway(&mut v, state, &ix);
    per_vpc_pair(&mut v, state, &ix);
    shared_route_tables(&mut v, state, &ix);
    one_owner_each(&mut v, state);
}

/// The names defined of one kind: in order (for hints), and as a set (for lookups).
struct Known<'a> {
    list: Vec<&'a str>,
    set: HashSet<&'a str>,
}

impl<'a> Known<'a> {
    fn new(names: impl Iterator<Item = &'a str>) -> Self {
        let list: Vec<&str> = names.collect();
        Known { set: list.iter().copied().collect(), list }
    }
}

/// A route table holds one route per destination: two peerings cannot both be routed to
/// overlapping CIDRs from one table (AWS refuses the second route, and replacing it would take
/// the first one's traffic). Links are peered in desired order, so the later link is the error,
/// reported against the first earlier link it conflicts with.
/// Only CIDRs given in the YAML are checked here; the planner checks the live ones.
///
/// Only links that share a route table can conflict, so each table indexes the earlier links
/// routed from it: a gateway's table by the service VPC and CIDR it routes to, a service's table
/// by the gateway VPC and CIDR. Of the links with the same VPC and CIDR in one table only the
/// first is kept, since a later one conflicts exactly when it does: linear in links, times the
/// distinct VPCs routed from one table.
fn shared_route_tables(v: &mut V, state: &DesiredState, ix: &Index) {
    // Table -> earlier links routed from it, one per (VPC, CIDR), in desired order.
    let mut gateway_tables: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut service_tables: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut indexed: HashSet<(bool, &str, &str, Ipv4Net)> = HashSet::new();
    let mut gateway_of: Vec<Option<&Gateway>> = Vec::with_capacity(state.links.len());
    for (i, later) in state.links.iter().enumerate() {
        let lg = ix.gateway(&later.spec.gateway).filter(|_| later.spec.transport.routes());
        gateway_of.push(lg);
        let Some(lg) = lg else { continue };
        let ls = &later.spec.service;
        let earliest = |tables: &[String], index: &HashMap<&str, Vec<usize>>, conflicts: &dyn Fn(usize) -> bool| {
            tables.iter().filter_map(|t| index.get(t.as_str())).flatten().copied().filter(|j| conflicts(*j)).min()
        };
        // The gateway's tables route to the service VPCs.
        let gateway_side = earliest(&lg.spec.route_table_ids, &gateway_tables, &|j| {
            let es = &state.links[j].spec.service;
            ls.vpc_id != es.vpc_id && ls.cidr.zip(es.cidr).is_some_and(|(a, b)| overlaps(a, b))
        });
        // The service's tables route back to the gateway VPCs.
        let service_side = earliest(&ls.route_table_ids, &service_tables, &|j| {
            let eg = gateway_of[j].expect("indexed links have a gateway");
            lg.spec.vpc_id != eg.spec.vpc_id && lg.spec.cidr.zip(eg.spec.cidr).is_some_and(|(a, b)| overlaps(a, b))
        });
        // The first earlier link in conflict; for one link, the gateway side is reported first.
        match (gateway_side, service_side) {
            (Some(j), s) if s.is_none_or(|s| j <= s) => {
                let (earlier, eg) = (&state.links[j], gateway_of[j].expect("indexed links have a gateway"));
                let es = &earlier.spec.service;
                let rtb =
                    shared(&lg.spec.route_table_ids, &eg.spec.route_table_ids).expect("indexed by a shared table");
                let (mine, theirs) = (ls.cidr.expect("overlaps"), es.cidr.expect("overlaps"));
                v.at(
                    "Link",
                    &later.metadata,
                    "spec.service.cidr",
                    p(
                        format!(
                            "{mine} overlaps the service VPC of Link/{} ({}, {theirs}), and Gateway/{} routes to both from {rtb}",
                            earlier.metadata.name, es.vpc_id, lg.metadata.name
                        ),
                        ROUTE_TABLE_HINT,
                    ),
                );
            }
            (_, Some(j)) => {
                let (earlier, eg) = (&state.links[j], gateway_of[j].expect("indexed links have a gateway"));
                let es = &earlier.spec.service;
                let rtb = shared(&ls.route_table_ids, &es.route_table_ids).expect("indexed by a shared table");
                let (mine, theirs) = (lg.spec.cidr.expect("overlaps"), eg.spec.cidr.expect("overlaps"));
                v.at(
                    "Link",
                    &later.metadata,
                    "spec.gateway",
                    p(
                        format!(
                            "Gateway/{}'s VPC {mine} overlaps Gateway/{}'s ({theirs}, Link/{}), and {rtb} would route back to both",
                            lg.metadata.name, eg.metadata.name, earlier.metadata.name
                        ),
                        ROUTE_TABLE_HINT,
                    ),
                );
            }
            _ => {}
        }
        if let Some(c) = ls.cidr {
            for t in &lg.spec.route_table_ids {
                if indexed.insert((true, t, &ls.vpc_id, c)) {
                    gateway_tables.entry(t).or_default().push(i);
                }
            }
        }
        if let Some(c) = lg.spec.cidr {
            for t in &ls.route_table_ids {
                if indexed.insert((false, t, &lg.spec.vpc_id, c)) {
                    service_tables.entry(t).or_default().push(i);
                }
            }
        }
    }
}

const ROUTE_TABLE_HINT: &str = "a route table holds one route per destination, so overlapping VPCs cannot share route tables over peering: use a VPC with a distinct range, another gateway with its own route tables, or `transport: {privateLink: ...}`, which needs no routes";

fn shared<'a>(a: &'a [String], b: &[String]) -> Option<&'a str> {
    a.iter().find(|x| b.contains(x)).map(String::as_str)
}

/// One Account per AWS account and region, and no two Gateways claiming the same load balancer
/// or REST API: each would plan against the other's objects (and two Accounts for one account
/// would observe, and clean up, the same resources twice).
fn one_owner_each(v: &mut V, state: &DesiredState) {
    let mut accounts: HashMap<(&str, &str), &Account> = HashMap::new();
    for a in &state.accounts {
        let key = (a.spec.account_id.as_str(), a.spec.region.as_str());
        match accounts.get(&key) {
            Some(first) => v.at(
                "Account",
                &a.metadata,
                "spec.accountId",
                p(
                    format!(
                        "Account/{} already stands for account {} in {}",
                        first.metadata.name, a.spec.account_id, a.spec.region
                    ),
                    format!(
                        "use one Account per AWS account and region: refer to `{}` instead of `{}`",
                        first.metadata.name, a.metadata.name
                    ),
                ),
            ),
            None => {
                accounts.insert(key, a);
            }
        }
    }
    let mut claimed: HashMap<String, &Gateway> = HashMap::new();
    for g in &state.gateways {
        let lb = match &g.spec.load_balancer {
            LoadBalancerRef::Name(n) => {
                ("spec.loadBalancer.name", format!("load balancer `{n}`"), format!("lb:{}:{n}", g.spec.account))
            }
            LoadBalancerRef::Arn(a) => ("spec.loadBalancer.arn", format!("load balancer {a}"), format!("lb-arn:{a}")),
        };
        let api = match &g.spec.api.target {
            ApiTarget::Name(n) => ("spec.api.name", format!("REST API `{n}`"), format!("api:{}:{n}", g.spec.account)),
            ApiTarget::Id(i) => ("spec.api.id", format!("REST API {i}"), format!("api-id:{}:{i}", g.spec.account)),
        };
        let mut owned = vec![lb, api];
        if let Some(d) = &g.spec.api.custom_domain {
            owned.push((
                "spec.api.customDomain.domainName",
                format!("custom domain {}", d.domain_name),
                format!("domain:{}:{}", g.spec.account, d.domain_name),
            ));
        }
        for (field, what, key) in owned {
            match claimed.get(&key) {
                Some(first) => v.at(
                    "Gateway",
                    &g.metadata,
                    field,
                    p(
                        format!("the {what} is already Gateway/{}'s", first.metadata.name),
                        "a Gateway owns its load balancer, REST API and custom domain: give this one its own, or put the links on the other Gateway",
                    ),
                ),
                None => {
                    claimed.insert(key, g);
                }
            }
        }
    }
    // A privateLink link's service-side NLB is its own: not a gateway's, not another link's.
    let mut by_link: HashMap<String, &Link> = HashMap::new();
    for l in &state.links {
        let Some(pl) = l.spec.transport.private_link() else { continue };
        let key = match &pl.load_balancer {
            LoadBalancerRef::Name(n) => format!("lb:{}:{n}", l.spec.service.account),
            LoadBalancerRef::Arn(a) => format!("lb-arn:{a}"),
        };
        let field = match &pl.load_balancer {
            LoadBalancerRef::Name(_) => "spec.transport.privateLink.loadBalancer.name",
            LoadBalancerRef::Arn(_) => "spec.transport.privateLink.loadBalancer.arn",
        };
        let owner = match (claimed.get(&key), by_link.get(&key)) {
            (Some(g), _) => Some(format!("Gateway/{}", g.metadata.name)),
            (None, Some(other)) => Some(format!("Link/{}", other.metadata.name)),
            (None, None) => None,
        };
        match owner {
            Some(owner) => v.at(
                "Link",
                &l.metadata,
                field,
                p(
                    format!("this load balancer is already {owner}'s"),
                    "each privateLink link has its own service-side NLB (an endpoint service and a target group per NLB): give this one another name",
                ),
            ),
            None => {
                by_link.insert(key, l);
            }
        }
    }
}

fn names<'a>(v: &mut V, kind: &str, metas: impl Iterator<Item = &'a Metadata>) {
    let mut seen: HashMap<&str, &Metadata> = HashMap::new();
    for m in metas {
        v.check(kind, m, "metadata.name", rules::dns_label(&m.name));
        if let Some(first) = seen.get(m.name.as_str()) {
            let at = first.source.loc_of("metadata.name");
            v.at(
                kind,
                m,
                "metadata.name",
                p(
                    format!("a {kind} named `{}` is already defined", m.name),
                    format!(
                        "the first is at {}:{at}; names are unique per kind: rename one",
                        first.source.file.display()
                    ),
                ),
            );
        } else {
            seen.insert(&m.name, m);
        }
    }
}

fn reference(
    v: &mut V,
    kind: &str,
    meta: &Metadata,
    field: &str,
    target_kind: &str,
    name: &str,
    known: &Known,
) -> bool {
    if known.set.contains(name) {
        return true;
    }
    let known = &known.list;
    if v.undecoded.might_define(target_kind, name) {
        return false;
    }
    let hint = match did_you_mean(name, known) {
        Some(s) => format!("did you mean `{s}`?"),
        None if known.is_empty() => {
            format!("define a {target_kind} named `{name}` (none is defined)")
        }
        None => format!("define a {target_kind} named `{name}`, or use one of: {}", known.join(", ")),
    };
    v.at(kind, meta, field, p(format!("no {target_kind} named `{name}`"), hint));
    false
}

/// AWS allows 50 tags on a resource; crosslink adds its own three (managed-by, owner,
/// deletion-policy).
pub const MAX_USER_TAGS: usize = 47;

fn tags(v: &mut V, kind: &str, meta: &Metadata, tags: &BTreeMap<String, String>) {
    if tags.len() > MAX_USER_TAGS {
        v.at(
            kind,
            meta,
            "spec.tags",
            p(
                format!("{} tags: AWS allows 50 on a resource and crosslink adds 3 of its own", tags.len()),
                format!("keep at most {MAX_USER_TAGS} tags here"),
            ),
        );
    }
    for (k, val) in tags {
        let field = format!("spec.tags.{k}");
        v.check(kind, meta, &field, rules::tag_key(k));
        v.check(kind, meta, &field, rules::tag_value(val));
    }
}

fn account(v: &mut V, a: &Account) {
    let m = &a.metadata;
    v.check("Account", m, "spec.accountId", rules::account_id(&a.spec.account_id));
    v.check("Account", m, "spec.region", rules::region(&a.spec.region));
    if let Some(role) = &a.spec.assume_role {
        match rules::role_arn(&role.role_arn) {
            Err(e) => v.at("Account", m, "spec.assumeRole.roleArn", e),
            Ok(acct) if acct != a.spec.account_id => v.at(
                "Account",
                m,
                "spec.assumeRole.roleArn",
                p(
                    format!("the role is in account {acct}, not in {}", a.spec.account_id),
                    "assume a role in the account itself: crosslink checks the identity it gets against accountId",
                ),
            ),
            Ok(_) => {}
        }
        if let Some(x) = &role.external_id
            && (x.len() < 2 || x.len() > 1224)
        {
            v.at(
                "Account",
                m,
                "spec.assumeRole.externalId",
                p("an external id has 2 to 1224 characters", "use the value the role's trust policy requires"),
            );
        }
        if let Some(s) = &role.session_name
            && (s.len() < 2 || s.len() > 64 || !s.chars().all(|c| c.is_ascii_alphanumeric() || "=,.@-_".contains(c)))
        {
            v.at(
                "Account",
                m,
                "spec.assumeRole.sessionName",
                p(format!("`{s}` is not a valid session name"), "use 2-64 letters, digits and = , . @ - _"),
            );
        }
    }
}

/// A PrivateLink transport: an NLB to create needs its subnets, one to use has them already; no
/// routes are made, so route tables are refused rather than ignored.
fn private_link(v: &mut V, ix: &Index, m: &Metadata, s: &LinkSpec, pl: &PrivateLink) {
    let f = "spec.transport.privateLink.subnetIds";
    match &pl.load_balancer {
        LoadBalancerRef::Name(n) => {
            v.check("Link", m, "spec.transport.privateLink.loadBalancer.name", rules::elb_name(n));
            ids(v, "Link", m, f, &pl.subnet_ids, "subnet", "service VPC subnet");
        }
        LoadBalancerRef::Arn(arn) => {
            match rules::load_balancer_arn(arn) {
                Err(e) => v.at("Link", m, "spec.transport.privateLink.loadBalancer.arn", e),
                Ok((region, acct)) => {
                    if let Some(a) = ix.account(&s.service.account)
                        && (acct != a.spec.account_id || region != a.spec.region)
                    {
                        v.at(
                            "Link",
                            m,
                            "spec.transport.privateLink.loadBalancer.arn",
                            p(
                                format!(
                                    "the load balancer is in {acct}/{region}, the service account in {}/{}",
                                    a.spec.account_id, a.spec.region
                                ),
                                "an endpoint service needs an NLB of the service account, in its region",
                            ),
                        );
                    }
                }
            }
            if !pl.subnet_ids.is_empty() {
                v.at(
                    "Link",
                    m,
                    f,
                    p(
                        "an existing NLB (`arn`) keeps its own subnets",
                        "remove subnetIds, or give the NLB by `name` to have crosslink create it",
                    ),
                );
            }
        }
    }
    if !s.service.route_table_ids.is_empty() {
        v.at(
            "Link",
            m,
            "spec.service.routeTableIds",
            p(
                "privateLink makes no routes between the VPCs",
                "remove spec.service.routeTableIds (route tables are for `transport: peering`)",
            ),
        );
    }
}

fn ids(v: &mut V, kind: &str, meta: &Metadata, field: &str, ids: &[String], prefix: &str, what: &str) {
    if ids.is_empty() {
        v.at(
            kind,
            meta,
            field,
            p(
                format!("at least one {what} id is required"),
                format!("list the {what} ids, e.g. [{prefix}-0a1b2c3d4e5f60718]"),
            ),
        );
    }
    let mut seen = BTreeSet::new();
    for (i, id) in ids.iter().enumerate() {
        let f = format!("{field}[{i}]");
        v.check(kind, meta, &f, rules::ec2_id(id, prefix, what));
        if !seen.insert(id) {
            v.at(kind, meta, &f, p(format!("`{id}` is listed twice"), "remove the duplicate"));
        }
    }
}

fn gateway(v: &mut V, ix: &Index, g: &Gateway, accounts: &Known) {
    let (m, s) = (&g.metadata, &g.spec);
    reference(v, "Gateway", m, "spec.account", "Account", &s.account, accounts);
    v.check("Gateway", m, "spec.vpcId", rules::ec2_id(&s.vpc_id, "vpc", "VPC"));
    ids(v, "Gateway", m, "spec.subnetIds", &s.subnet_ids, "subnet", "subnet");
    ids(v, "Gateway", m, "spec.routeTableIds", &s.route_table_ids, "rtb", "route table");
    if let Some(l) = &s.vpc_link {
        v.check("Gateway", m, "spec.vpcLink.id", rules::vpc_link_id(&l.id));
    }
    match &s.load_balancer {
        LoadBalancerRef::Name(n) => v.check("Gateway", m, "spec.loadBalancer.name", rules::elb_name(n)),
        LoadBalancerRef::Arn(arn) => match rules::load_balancer_arn(arn) {
            Err(e) => v.at("Gateway", m, "spec.loadBalancer.arn", e),
            Ok((region, acct)) => {
                if let Some(a) = ix.account(&s.account)
                    && (acct != a.spec.account_id || region != a.spec.region)
                {
                    v.at(
                        "Gateway",
                        m,
                        "spec.loadBalancer.arn",
                        p(
                            format!(
                                "the load balancer is in {acct}/{region}, the gateway in {}/{}",
                                a.spec.account_id, a.spec.region
                            ),
                            "a REST VPC Link needs an NLB in the same account and region as the API",
                        ),
                    );
                }
            }
        },
    }
    match &s.api.target {
        ApiTarget::Name(n) if n.is_empty() || n.len() > 1024 => {
            v.at("Gateway", m, "spec.api.name", p("an API name has 1 to 1024 characters", "choose a shorter name"))
        }
        ApiTarget::Id(id) => v.check("Gateway", m, "spec.api.id", rules::rest_api_id(id)),
        _ => {}
    }
    v.check("Gateway", m, "spec.api.stage", rules::stage_name(&s.api.stage));
    authorizers(v, g);
    stage_settings(v, g);
    if let Some(arn) = &s.api.web_acl_arn {
        v.check("Gateway", m, "spec.api.webAclArn", rules::regional_web_acl(arn));
    }
    if let Some(d) = &s.api.custom_domain {
        custom_domain(v, ix, g, d);
    }
    if let Some(policy) = &s.api.resource_policy {
        for (field, problem) in rules::resource_policy(policy) {
            let field = if field.is_empty() {
                "spec.api.resourcePolicy".to_string()
            } else {
                format!("spec.api.resourcePolicy.{field}")
            };
            v.at("Gateway", m, &field, problem);
        }
    }
    if let Some(a) = &s.api.authorization {
        authorization_use(v, "Gateway", m, "spec.api.authorization", &s.api, a);
    }
    tags(v, "Gateway", m, &s.tags);
}

/// A gateway's custom domain: a DNS name of its own, an ACM certificate in the gateway's region,
/// a base path API Gateway accepts, and a truststore in S3 (mutual TLS needs TLS 1.2).
fn custom_domain(v: &mut V, ix: &Index, g: &Gateway, d: &CustomDomain) {
    const K: &str = "Gateway";
    let m = &g.metadata;
    let f = |x: &str| format!("spec.api.customDomain.{x}");
    v.check(K, m, &f("domainName"), rules::custom_domain_name(&d.domain_name));
    let region = ix.account(&g.spec.account).map(|a| a.spec.region.as_str());
    v.check(K, m, &f("certificateArn"), rules::acm_certificate(&d.certificate_arn, region, "a regional custom domain"));
    if let Some(b) = &d.base_path {
        v.check(K, m, &f("basePath"), rules::base_path(b));
    }
    if let Some(mtls) = &d.mutual_tls {
        v.check(K, m, &f("mutualTls.truststoreUri"), rules::truststore_uri(&mtls.truststore_uri));
        if d.security_policy != TlsPolicy::Tls12 {
            v.at(
                K,
                m,
                &f("securityPolicy"),
                p(
                    format!("mutual TLS needs the TLS_1_2 security policy, not {}", d.security_policy.as_str()),
                    "write `securityPolicy: TLS_1_2` (the default)",
                ),
            );
        }
    }
}

/// A gateway's `api.authorizers`: unique names, and each type's own fields.
fn authorizers(v: &mut V, g: &Gateway) {
    let m = &g.metadata;
    let mut seen = BTreeSet::new();
    for (i, a) in g.spec.api.authorizers.iter().enumerate() {
        let f = |field: &str| format!("spec.api.authorizers[{i}].{field}");
        if a.name.is_empty() || a.name.len() > 128 {
            v.at("Gateway", m, &f("name"), p("an authorizer name has 1 to 128 characters", "choose a shorter name"));
        }
        if !seen.insert(a.name.as_str()) {
            v.at(
                "Gateway",
                m,
                &f("name"),
                p(format!("authorizer `{}` is defined twice", a.name), "rename or remove one"),
            );
        }
        let lambda = matches!(a.kind, AuthorizerType::Token | AuthorizerType::Request);
        if lambda {
            match &a.lambda_arn {
                None => v.at(
                    "Gateway",
                    m,
                    &format!("spec.api.authorizers[{i}]"),
                    p(
                        format!("a {} authorizer needs `lambdaArn`", a.kind.as_str()),
                        "write lambdaArn: arn:aws:lambda:<region>:<account id>:function:<name>",
                    ),
                ),
                Some(arn) => {
                    if let Err(e) = rules::lambda_function_arn(arn) {
                        v.at("Gateway", m, &f("lambdaArn"), e);
                    }
                }
            }
            if !a.provider_arns.is_empty() {
                v.at(
                    "Gateway",
                    m,
                    &f("providerArns"),
                    p(
                        "`providerArns` are for COGNITO_USER_POOLS authorizers",
                        "remove them, or use type COGNITO_USER_POOLS",
                    ),
                );
            }
            if let Some(role) = &a.credentials_role_arn
                && let Err(e) = rules::role_arn(role)
            {
                v.at("Gateway", m, &f("credentialsRoleArn"), e);
            }
        } else {
            if a.provider_arns.is_empty() {
                v.at(
                    "Gateway",
                    m,
                    &format!("spec.api.authorizers[{i}]"),
                    p(
                        "a COGNITO_USER_POOLS authorizer needs `providerArns`",
                        "list the user pools: providerArns: [arn:aws:cognito-idp:<region>:<account id>:userpool/<pool id>]",
                    ),
                );
            }
            for (j, arn) in a.provider_arns.iter().enumerate() {
                v.check("Gateway", m, &f(&format!("providerArns[{j}]")), rules::user_pool_arn(arn));
            }
            for (field, given) in
                [("lambdaArn", a.lambda_arn.is_some()), ("credentialsRoleArn", a.credentials_role_arn.is_some())]
            {
                if given {
                    v.at(
                        "Gateway",
                        m,
                        &f(field),
                        p(
                            format!("`{field}` is for TOKEN and REQUEST authorizers"),
                            "remove it, or use type TOKEN or REQUEST",
                        ),
                    );
                }
            }
        }
        match (a.kind, &a.identity_source) {
            (AuthorizerType::Request, None) if a.result_ttl_seconds > 0 => v.at(
                "Gateway",
                m,
                &format!("spec.api.authorizers[{i}]"),
                p(
                    "a REQUEST authorizer that caches its results needs `identitySource` (the cache key)",
                    "write e.g. identitySource: method.request.header.Authorization, or resultTtlSeconds: 0",
                ),
            ),
            (AuthorizerType::Token | AuthorizerType::CognitoUserPools, Some(src))
                if !src.strip_prefix("method.request.header.").is_some_and(|h| !h.is_empty() && !h.contains(',')) =>
            {
                v.at(
                    "Gateway",
                    m,
                    &f("identitySource"),
                    p(
                        format!("a {} authorizer reads one header, not `{src}`", a.kind.as_str()),
                        "write method.request.header.<Header-Name>, e.g. method.request.header.Authorization",
                    ),
                )
            }
            _ => {}
        }
    }
}

/// A gateway's `api.stageSettings`: where access logs go and what they hold, and stage
/// variables as API Gateway accepts them.
fn stage_settings(v: &mut V, g: &Gateway) {
    let m = &g.metadata;
    let st = &g.spec.api.stage_settings;
    if let Some(a) = &st.access_logs {
        v.check(
            "Gateway",
            m,
            "spec.api.stageSettings.accessLogs.destinationArn",
            rules::access_log_destination(&a.destination_arn),
        );
        if let Some(f) = &a.format
            && !(f.contains("$context.requestId") || f.contains("$context.extendedRequestId"))
        {
            v.at(
                "Gateway",
                m,
                "spec.api.stageSettings.accessLogs.format",
                p(
                    "an access log format must include $context.requestId or $context.extendedRequestId",
                    "add \"requestId\":\"$context.requestId\" to it, or leave `format` out for crosslink's JSON line",
                ),
            );
        }
    }
    for (k, val) in st.variables.iter().flatten() {
        let field = format!("spec.api.stageSettings.variables.{k}");
        if k.is_empty() || k.len() > 64 || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            v.at(
                "Gateway",
                m,
                &field,
                p(format!("`{k}` is not a stage variable name"), "use letters, digits and `_` (at most 64)"),
            );
        }
        if val.is_empty()
            || val.len() > 512
            || !val.chars().all(|c| c.is_ascii_alphanumeric() || "-._~:/?#&=,".contains(c))
        {
            v.at(
                "Gateway",
                m,
                &field,
                p(
                    format!("`{val}` is not a stage variable value"),
                    "use 1-512 of letters, digits and -._~:/?#&=, (API Gateway accepts no spaces or other characters)",
                ),
            );
        }
    }
}

/// An authorization naming an authorizer: the gateway defines it, and scopes go with Cognito.
fn authorization_use(v: &mut V, kind: &str, m: &Metadata, field: &str, api: &ApiRef, a: &Authorization) {
    let Authorization::Authorizer(u) = a else { return };
    match api.authorizer(&u.authorizer) {
        None => {
            let names: Vec<&str> = api.authorizers.iter().map(|a| a.name.as_str()).collect();
            let hint = match did_you_mean(&u.authorizer, &names) {
                Some(s) => format!("did you mean `{s}`?"),
                None if names.is_empty() => {
                    "the gateway defines no authorizers: add it under spec.api.authorizers".into()
                }
                None => format!("the gateway defines: {}", names.join(", ")),
            };
            v.at(kind, m, &format!("{field}.authorizer"), p(format!("unknown authorizer `{}`", u.authorizer), hint));
        }
        Some(def) if !u.scopes.is_empty() && def.kind != AuthorizerType::CognitoUserPools => v.at(
            kind,
            m,
            &format!("{field}.scopes"),
            p(
                format!("scopes need a COGNITO_USER_POOLS authorizer; `{}` is {}", def.name, def.kind.as_str()),
                "remove `scopes`: a Lambda authorizer decides by itself",
            ),
        ),
        Some(_) => {}
    }
}

fn link(v: &mut V, ix: &Index, l: &Link, accounts: &Known, gateways: &Known) {
    let (m, s) = (&l.metadata, &l.spec);
    let gw_ok = reference(v, "Link", m, "spec.gateway", "Gateway", &s.gateway, gateways);
    let acct_ok = reference(v, "Link", m, "spec.service.account", "Account", &s.service.account, accounts);
    v.check("Link", m, "spec.service.vpcId", rules::ec2_id(&s.service.vpc_id, "vpc", "VPC"));
    match &s.transport {
        Transport::Peering => {
            ids(v, "Link", m, "spec.service.routeTableIds", &s.service.route_table_ids, "rtb", "route table");
        }
        Transport::PrivateLink(pl) => private_link(v, ix, m, s, pl),
    }

    if s.targets.is_empty() {
        v.at(
            "Link",
            m,
            "spec.targets",
            p("at least one target is required", "list the service's private IPs: [{ip: 10.20.1.15, port: 8080}]"),
        );
    }
    let mut seen = BTreeSet::new();
    for (i, t) in s.targets.iter().enumerate() {
        let f = format!("spec.targets[{i}].ip");
        v.check("Link", m, &f, rules::target_ip(t.ip));
        if let Some(net) = s.service.cidr
            && !net.contains(&t.ip)
            && rules::target_ip(t.ip).is_none()
        {
            v.at(
                "Link",
                m,
                &f,
                p(
                    format!("{} is outside the service VPC {net}", t.ip),
                    "targets must be addresses in the service VPC; fix the address or spec.service.cidr",
                ),
            );
        }
        if !seen.insert(*t) {
            v.at(
                "Link",
                m,
                &format!("spec.targets[{i}]"),
                p(format!("{}:{} is listed twice", t.ip, t.port), "remove the duplicate"),
            );
        }
    }

    if let Some(hc) = &s.health_check {
        match (hc.protocol, &hc.path) {
            (HealthProtocol::Tcp, Some(_)) => v.at(
                "Link",
                m,
                "spec.healthCheck.path",
                p("a TCP health check has no path", "remove `path`, or use protocol HTTP or HTTPS"),
            ),
            (HealthProtocol::Http | HealthProtocol::Https, None) => v.at(
                "Link",
                m,
                "spec.healthCheck",
                p(format!("an {} health check needs a path", hc.protocol.as_str()), "add e.g. `path: /healthz`"),
            ),
            (_, Some(path)) if !path.starts_with('/') => v.at(
                "Link",
                m,
                "spec.healthCheck.path",
                p(format!("`{path}` does not start with '/'"), format!("write /{path}")),
            ),
            _ => {}
        }
    }

    if s.routes.is_empty() {
        v.at("Link", m, "spec.routes", p("at least one route is required", "add e.g. `routes: [{path: /payments}]`"));
    }
    for (i, r) in s.routes.iter().enumerate() {
        v.check("Link", m, &format!("spec.routes[{i}].path"), rules::route_path(&r.path));
        let mf = format!("spec.routes[{i}].methods");
        if r.methods.is_empty() {
            v.at("Link", m, &mf, p("at least one method is required", "write [ANY] to serve every method"));
        }
        if r.methods.contains(&HttpMethod::Any) && r.methods.len() > 1 {
            v.at(
                "Link",
                m,
                &mf,
                p("ANY already covers every method", "write [ANY] alone, or list the methods without ANY"),
            );
        }
        let uniq: BTreeSet<_> = r.methods.iter().collect();
        if uniq.len() != r.methods.len() {
            v.at("Link", m, &mf, p("a method is listed twice", "remove the duplicate"));
        }
        for (j, other) in s.routes.iter().enumerate().take(i) {
            if rules::paths_overlap(&r.path, &other.path) {
                v.at(
                    "Link",
                    m,
                    &format!("spec.routes[{i}].path"),
                    p(
                        format!("`{}` overlaps `{}` (routes[{j}])", r.path, other.path),
                        "every route already serves everything below it; keep the shorter one",
                    ),
                );
            }
        }
    }
    if let Some(tls) = &s.tls {
        v.check("Link", m, "spec.tls.serverName", rules::server_name(&tls.server_name));
        v.check("Link", m, "spec.tls.sslPolicy", rules::ssl_policy(&tls.ssl_policy));
    }
    tags(v, "Link", m, &s.tags);

    let (Some(gw), true, true) = (ix.gateway(&s.gateway), gw_ok, acct_ok) else {
        return;
    };
    for (i, r) in s.routes.iter().enumerate() {
        if let Some(a) = &r.authorization {
            authorization_use(v, "Link", m, &format!("spec.routes[{i}].authorization"), &gw.spec.api, a);
        }
    }
    if let Some(tls) = &s.tls {
        let region = ix.account(&gw.spec.account).map(|a| a.spec.region.as_str());
        let cert = rules::acm_certificate(&tls.certificate_arn, region, "a load balancer's TLS listener");
        v.check("Link", m, "spec.tls.certificateArn", cert);
    }
    if gw.spec.vpc_id == s.service.vpc_id {
        v.at(
            "Link",
            m,
            "spec.service.vpcId",
            p(
                "the service VPC is the gateway's own VPC",
                "crosslink peers two different VPCs; a service in the gateway VPC needs no link",
            ),
        );
    }
    if let (Some(gc), Some(sc)) = (gw.spec.cidr, s.service.cidr)
        && s.transport.routes()
        && overlaps(gc, sc)
    {
        v.at(
            "Link",
            m,
            "spec.service.cidr",
            p(
                format!("the service VPC {sc} overlaps the gateway VPC {gc} (Gateway/{})", gw.metadata.name),
                "VPC peering cannot route between overlapping CIDRs: link a VPC with a distinct range, or use `transport: {privateLink: ...}`, which needs no routes",
            ),
        );
    }
    if let (Some(ga), Some(sa)) = (ix.account(&gw.spec.account), ix.account(&s.service.account))
        && ga.spec.region != sa.spec.region
    {
        v.at(
            "Link",
            m,
            "spec.service.account",
            p(
                format!("the service account is in {}, the gateway in {}", sa.spec.region, ga.spec.region),
                "v1alpha1 links VPCs of one region; define an Account for the service's region",
            ),
        );
    }
}

/// A consumer's gateways exist and share one account (a usage plan and its keys belong to one
/// account); its route throttles name one of them and a route one of its links serves.
fn consumer(v: &mut V, ix: &Index, c: &Consumer, gateways: &Known) {
    const K: &str = "Consumer";
    let m = &c.metadata;
    tags(v, K, m, &c.spec.tags);
    if c.spec.gateways.is_empty() {
        v.at(
            K,
            m,
            "spec.gateways",
            p("a consumer needs at least one gateway", "name the Gateways whose stages it may call"),
        );
    }
    let mut first: Option<(&str, &Gateway)> = None;
    let mut seen = BTreeSet::new();
    for (i, name) in c.spec.gateways.iter().enumerate() {
        let field = format!("spec.gateways[{i}]");
        if !seen.insert(name.as_str()) {
            v.at(K, m, &field, p(format!("Gateway/{name} is listed twice"), "list each gateway once"));
            continue;
        }
        if !reference(v, K, m, &field, "Gateway", name, gateways) {
            continue;
        }
        let Some(g) = ix.gateway(name) else { continue };
        match first {
            None => first = Some((name, g)),
            Some((fname, fg)) if fg.spec.account != g.spec.account => v.at(
                K,
                m,
                &field,
                p(
                    format!(
                        "Gateway/{name} is in Account/{}, but Gateway/{fname} is in Account/{}: a usage plan and its API key belong to one account",
                        g.spec.account, fg.spec.account
                    ),
                    "write one Consumer per gateway account",
                ),
            ),
            Some(_) => {}
        }
    }
    let mut routes = BTreeSet::new();
    for (i, r) in c.spec.routes.iter().enumerate() {
        let field = format!("spec.routes[{i}]");
        let gw = match (&r.gateway, c.spec.gateways.as_slice()) {
            (Some(g), _) if c.spec.gateways.contains(g) => g.as_str(),
            (Some(g), all) => {
                let names: Vec<&str> = all.iter().map(String::as_str).collect();
                let hint = match did_you_mean(g, &names) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("use one of the consumer's gateways: {}", all.join(", ")),
                };
                v.at(
                    K,
                    m,
                    &format!("{field}.gateway"),
                    p(format!("`{g}` is not one of the consumer's gateways"), hint),
                );
                continue;
            }
            (None, [only]) => only.as_str(),
            (None, []) => continue,
            (None, all) => {
                v.at(
                    K,
                    m,
                    &field,
                    p(
                        "the consumer has several gateways: say which one the route is on",
                        format!("add `gateway:` with one of {}", all.join(", ")),
                    ),
                );
                continue;
            }
        };
        if ix.gateway(gw).is_none() {
            continue;
        }
        if !routes.insert((gw, r.path.as_str())) {
            v.at(
                K,
                m,
                &format!("{field}.path"),
                p(format!("the route {} of Gateway/{gw} is throttled twice", r.path), "give each route one throttle"),
            );
            continue;
        }
        let served: Vec<&str> =
            ix.links_of(gw).iter().flat_map(|l| l.spec.routes.iter().map(|r| r.path.as_str())).collect();
        if !served.contains(&r.path.as_str()) {
            let hint = match did_you_mean(&r.path, &served) {
                Some(s) => format!("did you mean `{s}`?"),
                None if served.is_empty() => format!("Gateway/{gw} has no routes yet"),
                None => format!("the routes of Gateway/{gw} are: {}", served.join(", ")),
            };
            v.at(
                K,
                m,
                &format!("{field}.path"),
                p(format!("no Link of Gateway/{gw} serves the route {}", r.path), hint),
            );
        }
    }
}

fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn per_gateway(v: &mut V, state: &DesiredState, ix: &Index) {
    for g in &state.gateways {
        let links: &[&Link] = ix.links_of(&g.metadata.name);
        if links.len() > MAX_LINKS_PER_GATEWAY {
            let extra = links[MAX_LINKS_PER_GATEWAY];
            v.at(
                "Link",
                &extra.metadata,
                "spec.gateway",
                p(
                    format!(
                        "Gateway/{} has {} links; an NLB has at most {MAX_LINKS_PER_GATEWAY} listeners",
                        g.metadata.name,
                        links.len()
                    ),
                    "spread the links over another Gateway (a second NLB)",
                ),
            );
        }
        let targets: usize = links.iter().map(|l| l.spec.targets.len()).sum();
        if targets > MAX_TARGETS_PER_GATEWAY {
            v.at("Gateway", &g.metadata, "metadata.name", p(format!("the links of this gateway register {targets} targets; an NLB has at most {MAX_TARGETS_PER_GATEWAY}"), "spread the links over another Gateway"));
        }
        let mut ports: HashMap<u16, &Link> = HashMap::new();
        for l in links {
            match ports.get(&l.spec.listener_port) {
                Some(first) => v.at(
                    "Link",
                    &l.metadata,
                    "spec.listenerPort",
                    p(
                        format!(
                            "port {} is already used by Link/{} on Gateway/{}",
                            l.spec.listener_port, first.metadata.name, g.metadata.name
                        ),
                        format!("listener ports are unique per gateway; pick a free one, e.g. {}", free_port(links)),
                    ),
                ),
                None => {
                    ports.insert(l.spec.listener_port, l);
                }
            }
        }
        for (i, l) in links.iter().enumerate() {
            for other in &links[..i] {
                for (ri, r) in l.spec.routes.iter().enumerate() {
                    for or in &other.spec.routes {
                        if rules::paths_overlap(&r.path, &or.path) {
                            v.at("Link", &l.metadata, &format!("spec.routes[{ri}].path"), p(
                                format!("`{}` overlaps `{}` of Link/{} on Gateway/{}", r.path, or.path, other.metadata.name, g.metadata.name),
                                "two links cannot serve the same path (or one below the other) on one gateway; choose distinct prefixes",
                            ));
                        }
                    }
                }
            }
        }
    }
}

fn free_port(links: &[&Link]) -> u16 {
    let used: BTreeSet<u16> = links.iter().map(|l| l.spec.listener_port).collect();
    let start = used.iter().max().copied().unwrap_or(9000).max(1024);
    (start..=u16::MAX).chain(1024..start).find(|p| !used.contains(p)).unwrap_or(start)
}

/// Links that share a (gateway VPC, service VPC) pair share one peering: they must agree on it.
fn per_vpc_pair(v: &mut V, state: &DesiredState, ix: &Index) {
    let mut first: HashMap<&str, &Link> = HashMap::new();
    let mut pairs: HashMap<(&str, &str), &Link> = HashMap::new();
    for l in &state.links {
        let s = &l.spec.service;
        match first.get(s.vpc_id.as_str()) {
            Some(f) if f.spec.service.account != s.account => v.at(
                "Link",
                &l.metadata,
                "spec.service.account",
                p(
                    format!(
                        "{} is in Account/{} according to Link/{}",
                        s.vpc_id, f.spec.service.account, f.metadata.name
                    ),
                    "a VPC belongs to one account: make the links agree",
                ),
            ),
            Some(f) if f.spec.service.cidr.is_some() && s.cidr.is_some() && f.spec.service.cidr != s.cidr => v.at(
                "Link",
                &l.metadata,
                "spec.service.cidr",
                p(
                    format!(
                        "Link/{} gives {} the CIDR {}",
                        f.metadata.name,
                        s.vpc_id,
                        f.spec.service.cidr.expect("checked")
                    ),
                    "a VPC has one CIDR: make the links agree",
                ),
            ),
            Some(_) => {}
            None => {
                first.insert(&s.vpc_id, l);
            }
        }
        let Some(gw) = ix.gateway(&l.spec.gateway) else {
            continue;
        };
        match pairs.get(&(gw.spec.vpc_id.as_str(), s.vpc_id.as_str())) {
            Some(f) if f.spec.peering != l.spec.peering => v.at("Link", &l.metadata, "spec.peering", p(
                format!("Link/{} shares this VPC pair's peering with other settings", f.metadata.name),
                "links between the same two VPCs share one peering connection: give them the same `peering` settings",
            )),
            Some(_) => {}
            None => {
                pairs.insert((&gw.spec.vpc_id, &s.vpc_id), l);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    const ACCOUNTS: &str = r#"
apiVersion: crosslink.dev/v1alpha1
kind: Account
metadata: {name: shared}
spec: {accountId: "111111111111", region: eu-central-1}
---
apiVersion: crosslink.dev/v1alpha1
kind: Account
metadata: {name: svc}
spec: {accountId: "222222222222", region: eu-central-1}
"#;

    fn gateway(name: &str, vpc: &str, cidr: &str, rtb: &str) -> String {
        format!(
            "---\napiVersion: crosslink.dev/v1alpha1\nkind: Gateway\nmetadata: {{name: {name}}}\nspec:\n  account: shared\n  vpcId: {vpc}\n  cidr: {cidr}\n  subnetIds: [subnet-0a1b2c3d4e5f60001]\n  routeTableIds: [{rtb}]\n  loadBalancer: {{name: {name}-nlb}}\n  api: {{name: {name}-api, stage: v1}}\n"
        )
    }

    fn link(name: &str, gw: &str, vpc: &str, cidr: &str, rtb: &str, port: u16) -> String {
        let [a, b, ..] = cidr.parse::<ipnet::Ipv4Net>().expect("cidr").network().octets();
        format!(
            "---\napiVersion: crosslink.dev/v1alpha1\nkind: Link\nmetadata: {{name: {name}}}\nspec:\n  gateway: {gw}\n  service: {{account: svc, vpcId: {vpc}, cidr: {cidr}, routeTableIds: [{rtb}]}}\n  targets: [{{ip: {a}.{b}.1.15, port: 8080}}]\n  listenerPort: {port}\n  routes: [{{path: /{name}}}]\n"
        )
    }

    fn errors(text: &str) -> Vec<String> {
        match crate::load_str(Path::new("t.yaml"), text) {
            Ok(_) => vec![],
            Err(d) => d.iter().map(|e| e.to_string()).collect(),
        }
    }

    const GW_A: &str = "vpc-0a0a0a0a0a0a0a0a0";
    const GW_B: &str = "vpc-0b0b0b0b0b0b0b0b0";
    const SVC_1: &str = "vpc-01010101010101010";
    const SVC_2: &str = "vpc-02020202020202020";
    const RTB_G: &str = "rtb-0a0a0a0a0a0a0a0a0";
    const RTB_H: &str = "rtb-0b0b0b0b0b0b0b0b0";
    const RTB_1: &str = "rtb-01010101010101010";
    const RTB_2: &str = "rtb-02020202020202020";

    #[test]
    fn overlapping_service_vpcs_cannot_share_a_gateway_route_table() {
        let gw = gateway("edge", GW_A, "10.1.0.0/16", RTB_G);
        // Nested ranges overlap too; the later link is the one reported.
        let text = format!(
            "{ACCOUNTS}{gw}{}{}",
            link("a", "edge", SVC_1, "10.20.0.0/16", RTB_1, 9001),
            link("b", "edge", SVC_2, "10.20.0.0/17", RTB_2, 9002)
        );
        let e = errors(&text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("Link/b: spec.service.cidr: 10.20.0.0/17 overlaps the service VPC of Link/a"), "{e:?}");
        // Links into one VPC share its peering: no conflict. Distinct ranges: none either.
        let same = format!(
            "{ACCOUNTS}{gw}{}{}",
            link("a", "edge", SVC_1, "10.20.0.0/16", RTB_1, 9001),
            link("b", "edge", SVC_1, "10.20.0.0/16", RTB_1, 9002)
        );
        assert!(errors(&same).is_empty(), "{:?}", errors(&same));
        let distinct = format!(
            "{ACCOUNTS}{gw}{}{}",
            link("a", "edge", SVC_1, "10.20.0.0/16", RTB_1, 9001),
            link("b", "edge", SVC_2, "10.30.0.0/16", RTB_2, 9002)
        );
        assert!(errors(&distinct).is_empty(), "{:?}", errors(&distinct));
    }

    #[test]
    fn gateways_with_their_own_route_tables_may_reach_overlapping_vpcs() {
        let text = format!(
            "{ACCOUNTS}{}{}{}{}",
            gateway("edge", GW_A, "10.1.0.0/16", RTB_G),
            gateway("other", GW_B, "10.2.0.0/16", RTB_H),
            link("a", "edge", SVC_1, "10.20.0.0/16", RTB_1, 9001),
            link("b", "other", SVC_2, "10.20.0.0/16", RTB_2, 9001)
        );
        assert!(errors(&text).is_empty(), "{:?}", errors(&text));
        // Sharing a table again: refused.
        let shared = text.replace(&format!("routeTableIds: [{RTB_H}]"), &format!("routeTableIds: [{RTB_G}]"));
        let e = errors(&shared);
        assert!(e.len() == 1 && e[0].contains("Gateway/other routes to both from"), "{e:?}");
    }

    /// The check as it was, pairwise over every earlier link (quadratic): the reference the
    /// indexed one must agree with, diagnostic for diagnostic.
    fn pairwise(state: &crate::DesiredState) -> Vec<String> {
        use super::{overlaps, shared};
        let mut out = Vec::new();
        for (i, later) in state.links.iter().enumerate() {
            let Some(lg) = state.gateway(&later.spec.gateway) else { continue };
            for earlier in &state.links[..i] {
                let Some(eg) = state.gateway(&earlier.spec.gateway) else { continue };
                let (ls, es) = (&later.spec.service, &earlier.spec.service);
                let gateway_side = (ls.vpc_id != es.vpc_id)
                    .then(|| shared(&lg.spec.route_table_ids, &eg.spec.route_table_ids).zip(ls.cidr.zip(es.cidr)))
                    .flatten()
                    .filter(|(_, (a, b))| overlaps(*a, *b));
                if let Some((rtb, (mine, theirs))) = gateway_side {
                    out.push(format!(
                        "Link/{}: {mine} overlaps the service VPC of Link/{} ({}, {theirs}), and Gateway/{} routes to both from {rtb}",
                        later.metadata.name, earlier.metadata.name, es.vpc_id, lg.metadata.name
                    ));
                    break;
                }
                let service_side = (lg.spec.vpc_id != eg.spec.vpc_id)
                    .then(|| shared(&ls.route_table_ids, &es.route_table_ids).zip(lg.spec.cidr.zip(eg.spec.cidr)))
                    .flatten()
                    .filter(|(_, (a, b))| overlaps(*a, *b));
                if let Some((rtb, (mine, theirs))) = service_side {
                    out.push(format!(
                        "Link/{}: Gateway/{}'s VPC {mine} overlaps Gateway/{}'s ({theirs}, Link/{}), and {rtb} would route back to both",
                        later.metadata.name, lg.metadata.name, eg.metadata.name, earlier.metadata.name
                    ));
                    break;
                }
            }
        }
        out
    }

    #[test]
    fn the_indexed_route_table_check_reports_what_the_pairwise_one_did() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        // A valid state to start from: three gateways, twelve links.
        let mut text = format!(
            "{ACCOUNTS}{}{}{}",
            gateway("g0", GW_A, "10.1.0.0/16", RTB_G),
            gateway("g1", GW_B, "10.2.0.0/16", RTB_H),
            gateway("g2", "vpc-0c0c0c0c0c0c0c0c0", "10.3.0.0/16", "rtb-0c0c0c0c0c0c0c0c0")
        );
        for i in 0..12u16 {
            text += &link(&format!("l{i}"), "g0", SVC_1, "10.20.0.0/16", RTB_1, 9001 + i);
        }
        let base = crate::load_str(Path::new("t.yaml"), &text).expect("valid");
        let vpcs = [GW_A, GW_B, SVC_1, SVC_2, "vpc-0c0c0c0c0c0c0c0c0"];
        let rtbs = [RTB_G, RTB_H, RTB_1, RTB_2];
        let nets = ["10.1.0.0/16", "10.1.0.0/17", "10.1.128.0/17", "10.20.0.0/16", "10.20.0.0/24", "10.30.0.0/16"];
        let mut conflicts = 0;
        for seed in 0..2000u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut d = base.clone();
            let pick_tables = |rng: &mut StdRng| -> Vec<String> {
                let n = rng.random_range(1..=2);
                (0..n).map(|_| rtbs[rng.random_range(0..rtbs.len())].to_string()).collect()
            };
            let cidr = |rng: &mut StdRng| {
                rng.random_ratio(5, 6).then(|| nets[rng.random_range(0..nets.len())].parse().expect("cidr"))
            };
            for g in &mut d.gateways {
                g.spec.vpc_id = vpcs[rng.random_range(0..vpcs.len())].into();
                g.spec.cidr = cidr(&mut rng);
                g.spec.route_table_ids = pick_tables(&mut rng);
            }
            for l in &mut d.links {
                l.spec.gateway = ["g0", "g1", "g2", "missing"][rng.random_range(0..4)].into();
                l.spec.service.vpc_id = vpcs[rng.random_range(0..vpcs.len())].into();
                l.spec.service.cidr = cidr(&mut rng);
                l.spec.service.route_table_ids = pick_tables(&mut rng);
            }
            let want = pairwise(&d);
            let mut diags = Vec::new();
            let undecoded = super::Undecoded::default();
            let mut v = super::V { diags: &mut diags, undecoded: &undecoded };
            super::shared_route_tables(&mut v, &d, &d.index());
            let got: Vec<String> =
                diags.iter().map(|e| format!("{}: {}", e.object.as_deref().unwrap_or("?"), e.message)).collect();
            assert_eq!(got, want, "seed {seed}");
            conflicts += want.len();
        }
        assert!(conflicts > 1000, "the random states rarely conflict: {conflicts}");
    }

    #[test]
    fn overlapping_gateway_vpcs_cannot_share_a_service_route_table() {
        let text = format!(
            "{ACCOUNTS}{}{}{}{}",
            gateway("edge", GW_A, "10.1.0.0/16", RTB_G),
            gateway("other", GW_B, "10.1.0.0/16", RTB_H),
            link("a", "edge", SVC_1, "10.20.0.0/16", RTB_1, 9001),
            link("b", "other", SVC_1, "10.20.0.0/16", RTB_1, 9001)
        );
        let e = errors(&text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("Link/b: spec.gateway: Gateway/other's VPC 10.1.0.0/16 overlaps Gateway/edge's"),
            "{e:?}"
        );
    }
}
