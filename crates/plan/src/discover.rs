//! `crosslink discover`: desired state written from what already runs. A pure function of the
//! accounts and what was observed in them to YAML: per network load balancer of the gateway
//! account that a VPC link and a REST API reach, a Gateway that references them (its NLB by
//! ARN, its VPC link and API by id: crosslink adds to them and never deletes them), and per
//! listener that forwards to an IP target group whose targets sit in a VPC peered from the
//! gateway VPC, a Link with `adoption: Adopt` (its listener, target group and peering are
//! adopted in place by the first apply). Where it had to guess, the YAML says so in a comment;
//! what it cannot express is a note, never dropped silently.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crosslink_desired::{Account, DEFAULT_TIMEOUT_MILLIS};

use crate::kinds::load_balancer::LoadBalancer;
use crate::kinds::method::ApiMethod;
use crate::kinds::peering::Peering;
use crate::kinds::rest_api::RestApi;
use crate::kinds::target_group::TargetGroup;
use crate::observed::{AccountObservation, AccountState, Observed, PeeringStatus, Tags};
use crate::tags::MANAGED_BY;

/// What `discover` found: the YAML, and what it could not express.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Discovery {
    pub yaml: String,
    /// Each thing found and not written (or written incompletely), with why.
    pub notes: Vec<String>,
    pub gateways: usize,
    pub links: usize,
}

/// A scalar as YAML reads it back verbatim: plain when it is a name, a path or an id that YAML
/// cannot read as anything but that string; otherwise double-quoted (a JSON string is a YAML
/// double-quoted scalar).
fn q(s: &str) -> String {
    let plain = s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '/')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain { s.to_string() } else { serde_json::to_string(s).expect("a string serializes") }
}

/// A metadata name (a DNS label) made from an AWS name.
fn label(s: &str) -> String {
    let mut out: String =
        s.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    let out: String = out.trim_matches('-').chars().take(63).collect();
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() { "discovered".into() } else { out }
}

fn unique(name: String, taken: &mut BTreeSet<String>) -> String {
    let mut candidate = name.clone();
    let mut n = 2;
    while taken.contains(&candidate) {
        candidate = format!("{}-{n}", name.chars().take(60).collect::<String>());
        n += 1;
    }
    taken.insert(candidate.clone());
    candidate
}

/// Whose a resource is, when a crosslink instance's: it is not discovered.
fn managed(t: &Tags) -> Option<&str> {
    t.get(MANAGED_BY).map(String::as_str)
}

/// An integration URI through the load balancer: `http://<dns>:<port><path>`, or
/// `https://<server name>:<port><path>` where `port` is one of its TLS listeners (`tls_ports`):
/// the port, the path and, for https, the server name.
fn through(uri: &str, dns: &str, tls_ports: &BTreeSet<u16>) -> Option<(u16, String, Option<String>)> {
    let (https, rest) = match uri.strip_prefix("https://") {
        Some(rest) => (true, rest),
        None => (false, uri.strip_prefix("http://")?),
    };
    let (host_port, path) = rest.split_once('/').map_or((rest, String::new()), |(h, p)| (h, format!("/{p}")));
    let (host, port) = host_port.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    if https {
        return tls_ports.contains(&port).then(|| (port, path, Some(host.to_string())));
    }
    host.eq_ignore_ascii_case(dns).then_some((port, path, None))
}

/// One API method that forwards through the load balancer.
struct Forward<'a> {
    resource: &'a str,
    method: &'a str,
    live: &'a ApiMethod,
    port: u16,
    target_path: String,
    /// The name an https integration sends and checks (TLS to the backend).
    server_name: Option<String>,
}

fn forwards<'a>(api: &'a RestApi, dns: &str, tls_ports: &BTreeSet<u16>) -> Vec<Forward<'a>> {
    let mut out = Vec::new();
    for r in &api.resources {
        for (m, live) in &r.methods {
            let Some(i) = &live.integration else { continue };
            if i.connection_type.as_deref() != Some("VPC_LINK") {
                continue;
            }
            let Some((port, target_path, server_name)) = i.uri.as_deref().and_then(|u| through(u, dns, tls_ports))
            else {
                continue;
            };
            out.push(Forward { resource: &r.path, method: m, live, port, target_path, server_name });
        }
    }
    out
}

struct Service<'a> {
    account: &'a Account,
    state: &'a AccountState,
    peering: &'a Peering,
    cidr: Option<ipnet::Ipv4Net>,
}

/// Writes desired state for the chains found from `gateway_account` (an Account's name) into the
/// service accounts among `accounts`. Resources any crosslink instance already owns are left out
/// (noted): discover is for what crosslink does not manage yet.
pub fn discover(accounts: &[Account], gateway_account: &str, observed: &Observed) -> Result<Discovery, String> {
    let state_of = |name: &str| match observed.accounts.get(name) {
        Some(AccountObservation::Ok(st)) => Ok(&**st),
        Some(AccountObservation::Failed { code, message, .. }) => Err(format!("account {name}: {code}: {message}")),
        None => Err(format!("account {name} was not read")),
    };
    let gw_account = accounts
        .iter()
        .find(|a| a.metadata.name == gateway_account)
        .ok_or_else(|| format!("no Account named {gateway_account} in the accounts given"))?;
    let gw = state_of(gateway_account)?;
    let mut d = Discovery::default();
    let mut by_id: BTreeMap<&str, (&Account, &AccountState)> = BTreeMap::new();
    for a in accounts {
        match state_of(&a.metadata.name) {
            Ok(st) => {
                by_id.insert(a.spec.account_id.as_str(), (a, st));
            }
            Err(e) => d.notes.push(format!("{e}: its side of any link is not discovered")),
        }
    }
    let mut used_accounts: BTreeSet<&str> = BTreeSet::from([gateway_account]);
    let mut docs = String::new();
    let mut gateway_names = BTreeSet::new();
    let mut link_names = BTreeSet::new();

    let mut lbs: Vec<&LoadBalancer> = gw.load_balancers.iter().filter(|l| l.kind == "network").collect();
    lbs.sort_by(|a, b| a.name.cmp(&b.name));
    for lb in lbs {
        if let Some(owner) = managed(&lb.tags) {
            d.notes
                .push(format!("load balancer {}: managed by crosslink instance `{owner}` already, left out", lb.name));
            continue;
        }
        let links: Vec<_> = gw.vpc_links.iter().filter(|v| v.target_arns.iter().any(|t| t == &lb.arn)).collect();
        let Some(vpc_link) = links.iter().find(|v| v.status == "AVAILABLE").or(links.first()) else {
            d.notes.push(format!("load balancer {}: no VPC link targets it, so no API reaches it: left out", lb.name));
            continue;
        };
        let tls_ports: BTreeSet<u16> = gw
            .listeners
            .iter()
            .filter(|x| x.load_balancer_arn == lb.arn && x.protocol == "TLS")
            .map(|x| x.port)
            .collect();
        let mut apis: Vec<(&RestApi, Vec<Forward<'_>>)> = gw
            .rest_apis
            .iter()
            .filter(|a| managed(&a.tags).is_none())
            .map(|a| (a, forwards(a, &lb.dns_name, &tls_ports)))
            .filter(|(_, f)| !f.is_empty())
            .collect();
        apis.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.name.cmp(&b.0.name)));
        let mut apis = apis.into_iter();
        let Some((api, fwd)) = apis.next() else {
            d.notes.push(format!("load balancer {}: no REST API method forwards to it: left out", lb.name));
            continue;
        };
        for (other, f) in apis {
            d.notes.push(format!(
                "REST API {} ({}) also forwards to load balancer {} ({} method(s)): a gateway has one API, so it is not expressed",
                other.name,
                other.id,
                lb.name,
                f.len()
            ));
        }
        let mut stages: Vec<&str> = api.stages.iter().map(|s| s.name.as_str()).collect();
        stages.sort();
        let (stage, stage_comment) = match stages.as_slice() {
            [] => ("prod", Some(format!("guessed: REST API {} has no stage yet", api.id))),
            [one] => (*one, None),
            [first, ..] => (
                *first,
                Some(format!(
                    "guessed: REST API {} has stages {}; crosslink deploys to this one",
                    api.id,
                    stages.join(", ")
                )),
            ),
        };
        let gw_name = unique(label(&lb.name), &mut gateway_names);

        // The links: one per listener forwarding to an IP target group in a peered VPC.
        let mut gw_route_tables: BTreeSet<&str> = BTreeSet::new();
        let mut link_docs = String::new();
        let mut listeners: Vec<_> = gw.listeners.iter().filter(|x| x.load_balancer_arn == lb.arn).collect();
        listeners.sort_by_key(|x| x.port);
        let mut ports_written = BTreeSet::new();
        for x in listeners {
            let at = format!("listener :{} of {}", x.port, lb.name);
            if let Some(owner) = managed(&x.tags) {
                d.notes.push(format!("{at}: managed by crosslink instance `{owner}` already, left out"));
                continue;
            }
            if !matches!(x.protocol.as_str(), "TCP" | "TLS") {
                d.notes.push(format!("{at}: a {} listener is not discovered (a link's is TCP or TLS)", x.protocol));
                continue;
            }
            let Some(tg) = x.target_group_arn.as_deref().and_then(|a| gw.target_groups.iter().find(|t| t.arn == a))
            else {
                d.notes.push(format!("{at}: forwards to no target group crosslink can read: left out"));
                continue;
            };
            if let Some(why) = unfit(tg, lb) {
                d.notes.push(format!("{at}: target group {} {why}: left out", tg.name));
                continue;
            }
            if tg.targets.is_empty() {
                d.notes.push(format!("{at}: target group {} has no targets: left out", tg.name));
                continue;
            }
            let ips: Vec<Ipv4Addr> = tg.targets.iter().map(|t| t.ip).collect();
            let Some(svc) = service_of(gw, lb, &ips, &by_id, &mut d.notes, &at) else { continue };
            let methods: Vec<&Forward<'_>> = fwd.iter().filter(|f| f.port == x.port).collect();
            let tls = match tls_of(x, &methods) {
                Ok(tls) => tls,
                Err(why) => {
                    d.notes.push(format!("{at}: {why}: left out"));
                    continue;
                }
            };
            let Some(routes) = routes(&methods, &at, &mut d.notes) else { continue };
            let name = unique(label(&tg.name), &mut link_names);
            used_accounts.insert(svc.account.metadata.name.as_str());
            for rt in gw.route_tables.values().filter(|r| r.vpc_id == lb.vpc_id) {
                if rt.routes.iter().any(|r| r.peering_id.as_deref() == Some(svc.peering.id.as_str())) {
                    gw_route_tables.insert(&rt.id);
                }
            }
            write_link(&mut link_docs, &name, &gw_name, tg, x.port, &svc, &routes, tls.as_ref());
            ports_written.insert(x.port);
            d.links += 1;
        }
        for f in fwd.iter().filter(|f| !ports_written.contains(&f.port)) {
            d.notes.push(format!(
                "{} {} of REST API {} forwards to port {} of {}, which no discovered link holds: not expressed",
                f.method, f.resource, api.id, f.port, lb.name
            ));
        }
        if link_docs.is_empty() {
            d.notes.push(format!("load balancer {}: no link could be written: its gateway is left out too", lb.name));
            continue;
        }
        let rtb_comment = if gw_route_tables.is_empty() {
            gw_route_tables.extend(gw.route_tables.values().filter(|r| r.vpc_id == lb.vpc_id).map(|r| r.id.as_str()));
            Some("guessed: no route table of the gateway VPC routes to a service VPC yet; these are all of them")
        } else {
            None
        };
        let cidr = gw.vpcs.get(&lb.vpc_id).and_then(|v| v.cidrs.first());
        let _ = writeln!(
            docs,
            "---\n# Discovered: load balancer {} ({}), VPC link {}, REST API {} ({}).",
            lb.name, lb.arn, vpc_link.id, api.name, api.id
        );
        let _ = writeln!(
            docs,
            "# The gateway's own resources are referenced: crosslink adds to them and never deletes them."
        );
        let _ = writeln!(
            docs,
            "apiVersion: crosslink.dev/v1alpha1\nkind: Gateway\nmetadata:\n  name: {}\nspec:",
            q(&gw_name)
        );
        let _ = writeln!(docs, "  account: {}", q(&gw_account.metadata.name));
        let _ = writeln!(docs, "  vpcId: {}", q(&lb.vpc_id));
        if let Some(c) = cidr {
            let _ = writeln!(docs, "  cidr: {}", q(&c.to_string()));
        }
        let _ = writeln!(docs, "  subnetIds: [{}]", lb.subnet_ids.iter().map(|s| q(s)).collect::<Vec<_>>().join(", "));
        if let Some(c) = rtb_comment {
            let _ = writeln!(docs, "  # {c}");
        }
        let _ = writeln!(
            docs,
            "  routeTableIds: [{}]",
            gw_route_tables.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ")
        );
        let _ = writeln!(docs, "  loadBalancer: {{arn: {}}}", q(&lb.arn));
        let _ = writeln!(docs, "  vpcLink: {{id: {}}}", q(&vpc_link.id));
        if links.len() > 1 {
            let _ =
                writeln!(docs, "  # guessed: {} VPC links target this load balancer; this one is used", links.len());
        }
        let _ = writeln!(docs, "  api:");
        let _ = writeln!(docs, "    id: {}", q(&api.id));
        if let Some(c) = stage_comment {
            let _ = writeln!(docs, "    # {c}");
        }
        let _ = writeln!(docs, "    stage: {}", q(stage));
        docs.push_str(&link_docs);
        d.gateways += 1;
    }

    let mut out = String::from(
        "# Written by `crosslink discover`. Review it, then `crosslink plan`: every link adopts what\n# it matches (adoption: Adopt) and the first apply tags it as crosslink's, in place.\n",
    );
    for a in accounts.iter().filter(|a| used_accounts.contains(a.metadata.name.as_str())) {
        let _ = writeln!(
            out,
            "---\napiVersion: crosslink.dev/v1alpha1\nkind: Account\nmetadata:\n  name: {}\nspec:",
            q(&a.metadata.name)
        );
        let _ = writeln!(out, "  accountId: {}\n  region: {}", q(&a.spec.account_id), q(&a.spec.region));
        if let Some(r) = &a.spec.assume_role {
            let _ = writeln!(out, "  assumeRole:\n    roleArn: {}", q(&r.role_arn));
            if let Some(e) = &r.external_id {
                let _ = writeln!(out, "    externalId: {}", q(e));
            }
            if let Some(s) = &r.session_name {
                let _ = writeln!(out, "    sessionName: {}", q(s));
            }
        }
    }
    out.push_str(&docs);
    d.yaml = out;
    Ok(d)
}

/// TLS to the backend, as a link writes it (`spec.tls`).
struct Tls {
    certificate_arn: String,
    ssl_policy: Option<String>,
    server_name: String,
    insecure_skip_verification: bool,
}

/// A TLS listener's link TLS: its certificate and policy, and the one server name its methods'
/// https integrations use. `Err` says why it cannot be written.
fn tls_of(x: &crate::kinds::listener::Listener, methods: &[&Forward<'_>]) -> Result<Option<Tls>, String> {
    if x.protocol != "TLS" {
        return Ok(None);
    }
    let names: BTreeSet<&str> = methods.iter().filter_map(|f| f.server_name.as_deref()).collect();
    let Some(certificate_arn) = x.certificate_arn.clone() else {
        return Err("a TLS listener without a certificate crosslink can read".into());
    };
    let server_name = match names.into_iter().collect::<Vec<_>>().as_slice() {
        [one] => one.to_string(),
        [] => return Err("a TLS listener that no https integration reaches".into()),
        many => return Err(format!("a TLS listener reached under several server names ({})", many.join(", "))),
    };
    if server_name.ends_with(".amazonaws.com") {
        return Err(format!(
            "its integrations name the load balancer's own DNS name {server_name}, which no certificate of yours can cover (crosslink refuses it as serverName)"
        ));
    }
    let insecure_skip_verification =
        methods.iter().any(|f| f.live.integration.as_ref().is_some_and(|i| i.insecure_skip_verification));
    Ok(Some(Tls { certificate_arn, ssl_policy: x.ssl_policy.clone(), server_name, insecure_skip_verification }))
}

/// Why a target group cannot be a link's as it is (crosslink would replace it).
fn unfit(tg: &TargetGroup, lb: &LoadBalancer) -> Option<String> {
    if let Some(owner) = managed(&tg.tags) {
        return Some(format!("is managed by crosslink instance `{owner}` already"));
    }
    if tg.target_type != "ip" {
        return Some(format!("has {} targets (a link's are IP addresses)", tg.target_type));
    }
    if tg.protocol != "TCP" {
        return Some(format!("is {} (a link's is TCP)", tg.protocol));
    }
    if tg.vpc_id != lb.vpc_id {
        return Some(format!("is in {}, not the load balancer's VPC", tg.vpc_id));
    }
    None
}

/// The service VPC that holds every target: the accepter of an active peering requested from
/// the gateway VPC, in one of the accounts given.
fn service_of<'a>(
    gw: &'a AccountState,
    lb: &LoadBalancer,
    ips: &[Ipv4Addr],
    by_id: &BTreeMap<&str, (&'a Account, &'a AccountState)>,
    notes: &mut Vec<String>,
    at: &str,
) -> Option<Service<'a>> {
    let live = |p: &&Peering| p.status == PeeringStatus::Active;
    for p in gw.peerings.iter().filter(live).filter(|p| p.requester_vpc == lb.vpc_id) {
        let Some((account, state)) = by_id.get(p.accepter_account.as_str()) else { continue };
        let cidrs = state.vpcs.get(&p.accepter_vpc).map(|v| v.cidrs.clone()).unwrap_or_default();
        if ips.iter().all(|ip| cidrs.iter().any(|c| c.contains(ip))) {
            return Some(Service { account, state, peering: p, cidr: cidrs.first().copied() });
        }
    }
    let from_service = gw.peerings.iter().filter(live).find(|p| p.accepter_vpc == lb.vpc_id);
    let why = match from_service {
        Some(p) => format!(
            "its targets are in no VPC peered from the gateway VPC in the accounts given (peering {} was requested from {}'s side: crosslink adopts peerings requested from the gateway VPC)",
            p.id, p.requester_vpc
        ),
        None => "its targets are in no VPC peered from the gateway VPC in the accounts given (add the service account's Account, or peer it first)".into(),
    };
    notes.push(format!("{at}: {why}: left out"));
    None
}

/// A link's route, as discovered.
struct Route {
    path: String,
    methods: BTreeSet<String>,
    authorization: Option<&'static str>,
    api_key_required: bool,
    timeout_millis: Option<u32>,
    comment: Option<String>,
}

/// The routes of one listener's methods: a path and its `{proxy+}` child, each method forwarding
/// to the same path. A method crosslink cannot express is noted and left out.
fn routes(methods: &[&Forward<'_>], at: &str, notes: &mut Vec<String>) -> Option<Vec<Route>> {
    // By route path: the methods of the path, those of its `{proxy+}`, and what is live of them.
    type Methods<'m> = (BTreeSet<String>, BTreeSet<String>, Vec<&'m ApiMethod>);
    let mut by_path: BTreeMap<String, Methods<'_>> = BTreeMap::new();
    for f in methods {
        let (path, greedy) = match f.resource.strip_suffix("/{proxy+}") {
            Some(p) => (p.to_string(), true),
            None => (f.resource.to_string(), false),
        };
        let expected = if greedy { format!("{path}/{{proxy}}") } else { path.clone() };
        if f.target_path != expected {
            notes.push(format!(
                "{} {} forwards to {} on {at}: crosslink forwards a route to its own path, so it is not expressed",
                f.method, f.resource, f.target_path
            ));
            continue;
        }
        let e = by_path.entry(path).or_default();
        if greedy {
            e.1.insert(f.method.to_string())
        } else {
            e.0.insert(f.method.to_string())
        };
        e.2.push(f.live);
    }
    let mut out = Vec::new();
    for (path, (plain, proxy, lives)) in by_path {
        let methods: BTreeSet<String> = plain.union(&proxy).cloned().collect();
        let comment = if plain != proxy {
            Some(format!(
                "incomplete: {path} has {} and {path}/{{proxy+}} has {}; crosslink gives both every method here",
                list(&plain),
                list(&proxy)
            ))
        } else {
            None
        };
        let first = lives[0];
        let authorization = match first.authorization_type.as_str() {
            "NONE" => None,
            "AWS_IAM" => Some("AWS_IAM"),
            other => {
                notes.push(format!(
                    "route {path} on {at}: authorization {other} (an authorizer) is not discovered; define the authorizer on the gateway and name it on the route, or the plan holds the change to NONE"
                ));
                None
            }
        };
        let timeout =
            first.integration.as_ref().and_then(|i| i.timeout_millis).filter(|t| *t != DEFAULT_TIMEOUT_MILLIS);
        out.push(Route {
            path,
            methods,
            authorization,
            api_key_required: first.api_key_required,
            timeout_millis: timeout,
            comment,
        });
    }
    if out.is_empty() {
        notes.push(format!("{at}: no REST API method forwards to it: left out"));
        return None;
    }
    Some(out)
}

fn list(s: &BTreeSet<String>) -> String {
    if s.is_empty() { "none".into() } else { s.iter().cloned().collect::<Vec<_>>().join(", ") }
}

#[allow(clippy::too_many_arguments, reason = "one link's discovered parts, written in order")]
fn write_link(
    out: &mut String,
    name: &str,
    gateway: &str,
    tg: &TargetGroup,
    port: u16,
    svc: &Service<'_>,
    routes: &[Route],
    tls: Option<&Tls>,
) {
    let _ = writeln!(
        out,
        "---\n# Discovered: listener :{port}, target group {} ({}), peering {}.",
        tg.name, tg.arn, svc.peering.id
    );
    let _ = writeln!(out, "apiVersion: crosslink.dev/v1alpha1\nkind: Link\nmetadata:\n  name: {}\nspec:", q(name));
    let _ = writeln!(out, "  gateway: {}", q(gateway));
    let _ = writeln!(
        out,
        "  service:\n    account: {}\n    vpcId: {}",
        q(&svc.account.metadata.name),
        q(&svc.peering.accepter_vpc)
    );
    if let Some(c) = svc.cidr {
        let _ = writeln!(out, "    cidr: {}", q(&c.to_string()));
    }
    let mut rtbs: Vec<&str> = svc
        .state
        .route_tables
        .values()
        .filter(|r| r.vpc_id == svc.peering.accepter_vpc)
        .filter(|r| r.routes.iter().any(|x| x.peering_id.as_deref() == Some(svc.peering.id.as_str())))
        .map(|r| r.id.as_str())
        .collect();
    if rtbs.is_empty() {
        rtbs = svc
            .state
            .route_tables
            .values()
            .filter(|r| r.vpc_id == svc.peering.accepter_vpc)
            .map(|r| r.id.as_str())
            .collect();
        let _ = writeln!(
            out,
            "    # guessed: no route table of the service VPC routes back to the gateway yet; these are all of them"
        );
    }
    let _ = writeln!(out, "    routeTableIds: [{}]", rtbs.iter().map(|s| q(s)).collect::<Vec<_>>().join(", "));
    let _ = writeln!(out, "  targets:");
    for t in &tg.targets {
        let _ = writeln!(out, "    - {{ip: {}, port: {}}}", q(&t.ip.to_string()), t.port);
    }
    let _ = writeln!(out, "  listenerPort: {port}");
    if let Some(t) = tls {
        let _ = writeln!(
            out,
            "  tls:\n    certificateArn: {}\n    serverName: {}",
            q(&t.certificate_arn),
            q(&t.server_name)
        );
        if let Some(p) = &t.ssl_policy {
            let _ = writeln!(out, "    sslPolicy: {}", q(p));
        }
        if t.insecure_skip_verification {
            let _ = writeln!(out, "    # as found: the backend's certificate is not checked");
            let _ = writeln!(out, "    insecureSkipVerification: true");
        }
    }
    let hc = &tg.health_check;
    let default = hc.protocol == "TCP"
        && hc.port == "traffic-port"
        && hc.interval_seconds == 30
        && hc.healthy_threshold == 3
        && hc.unhealthy_threshold == 3;
    if !default {
        let _ = writeln!(out, "  healthCheck:\n    protocol: {}", hc.protocol);
        if let Some(p) = &hc.path {
            let _ = writeln!(out, "    path: {}", q(p));
        }
        if hc.port != "traffic-port" {
            let _ = writeln!(out, "    port: {}", hc.port);
        }
        let _ = writeln!(
            out,
            "    intervalSeconds: {}\n    healthyThreshold: {}\n    unhealthyThreshold: {}",
            hc.interval_seconds, hc.healthy_threshold, hc.unhealthy_threshold
        );
    }
    let _ = writeln!(out, "  routes:");
    for r in routes {
        if let Some(c) = &r.comment {
            let _ = writeln!(out, "    # {c}");
        }
        let _ = writeln!(out, "    - path: {}", q(&r.path));
        let _ = writeln!(out, "      methods: [{}]", r.methods.iter().cloned().collect::<Vec<_>>().join(", "));
        if let Some(a) = r.authorization {
            let _ = writeln!(out, "      authorization: {a}");
        }
        if r.api_key_required {
            let _ = writeln!(out, "      apiKeyRequired: true");
        }
        if let Some(t) = r.timeout_millis {
            let _ = writeln!(out, "      timeoutMillis: {t}");
        }
    }
    if svc.peering.accepter_dns_resolution {
        let _ = writeln!(out, "  peering: {{allowDnsResolution: true}}");
    }
    let _ = writeln!(out, "  # Taken over in place by the first apply, never recreated.");
    let _ = writeln!(out, "  adoption: Adopt");
    let _ = writeln!(
        out,
        "  # guessed: kept if removed from the YAML, as a hand-built link should be until you decide otherwise."
    );
    let _ = writeln!(out, "  deletionPolicy: Retain");
}
