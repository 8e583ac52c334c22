//! A route's method with its HTTP_PROXY integration through the gateway's VPC link.

use serde::{Deserialize, Serialize};

use std::collections::{BTreeMap, BTreeSet};
use crate::model::{Fills, Subject, Verb};
use crate::op::Op;
use crate::planner::{ApiCx, GatewayCx, Planner, WantedMethod};
use crosslink_desired::DEFAULT_TIMEOUT_MILLIS;
use super::KindOp;
use crate::model::Reason;
use crate::op::{Ref, Service};

// ---- What is observed ------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiMethod {
    pub authorization_type: String,
    /// Older observations (golden inputs) lack it: false, as AWS's default.
    #[serde(default)]
    pub api_key_required: bool,
    /// The authorizer of a CUSTOM or COGNITO_USER_POOLS method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorizer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_scopes: Vec<String>,
    pub integration: Option<Integration>,
}

/// Who may call a method: its `authorizationType` (with its authorizer, by name, and OAuth
/// scopes) and whether it requires an API key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Protection {
    /// `NONE`, `AWS_IAM`, `CUSTOM` or `COGNITO_USER_POOLS`.
    pub authorization: String,
    /// The gateway's authorizer a CUSTOM or COGNITO_USER_POOLS method uses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorizer: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    pub api_key_required: bool,
}

impl Protection {
    /// A route's, from the desired state: `gw` defines the authorizers it may name.
    pub fn of_route(api: &crosslink_desired::ApiRef, r: &crosslink_desired::RouteSpec) -> Protection {
        use crosslink_desired::Authorization;
        let (authorization, api_key_required) = api.protection_of(r);
        match authorization {
            Authorization::Builtin(b) => {
                Protection { authorization: b.as_str().into(), authorizer: None, scopes: Vec::new(), api_key_required }
            }
            Authorization::Authorizer(u) => {
                let mut scopes = u.scopes.clone();
                scopes.sort();
                Protection {
                    // Validation makes sure the gateway defines it.
                    authorization: api
                        .authorizer(&u.authorizer)
                        .map_or("CUSTOM", |a| a.kind.method_authorization())
                        .into(),
                    authorizer: Some(u.authorizer),
                    scopes,
                    api_key_required,
                }
            }
        }
    }

    /// What a change from the live method to `self` gives up, for the protection guard:
    /// authorization down to NONE, or the API key requirement dropped.
    pub fn weakens(&self, live: &ApiMethod) -> Option<String> {
        let (auth, key) = (live.authorization_type.as_str(), live.api_key_required);
        let mut lost = Vec::new();
        if auth != "NONE" && self.authorization == "NONE" {
            lost.push(format!("authorization {auth} -> NONE"));
        }
        if key && !self.api_key_required {
            lost.push("API key no longer required".to_string());
        }
        (!lost.is_empty()).then(|| lost.join(", "))
    }

    /// The text a deployment's hash takes for it: none for the default (no authorization, no
    /// key), so deployments made before protection existed keep their hash.
    pub fn hash_suffix(&self) -> String {
        if self.authorization == "NONE" && !self.api_key_required {
            return String::new();
        }
        let mut s = format!(" auth={} key={}", self.authorization, self.api_key_required);
        if let Some(a) = &self.authorizer {
            s.push_str(&format!(" authorizer={a} scopes={}", self.scopes.join(",")));
        }
        s
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Integration {
    /// `HTTP_PROXY`, `HTTP`, `AWS_PROXY`, ...
    pub kind: String,
    pub http_method: Option<String>,
    pub uri: Option<String>,
    pub connection_type: Option<String>,
    /// Real AWS reports it; moto does not (it is then `None` and not compared).
    pub connection_id: Option<String>,
    /// `tlsConfig.insecureSkipVerification`: the backend's certificate is not checked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verification: bool,
    /// `timeoutInMillis` (absent: AWS's default, 29,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_millis: Option<u32>,
}

/// What a route asks of its integration besides its URI: the backend TLS check and the timeout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Backend {
    /// Only with an `https` URI.
    pub insecure_skip_verification: bool,
    /// Absent: AWS's default (29,000 ms).
    pub timeout_millis: Option<u32>,
}

impl Backend {
    /// What a deployment's hash takes for it: nothing for the defaults, so deployments made
    /// before these settings existed keep their hash.
    pub fn hash_suffix(&self) -> String {
        let mut s = String::new();
        if self.insecure_skip_verification {
            s.push_str(" tls-insecure");
        }
        if let Some(t) = self.timeout_millis {
            s.push_str(&format!(" timeout={t}"));
        }
        s
    }

    /// What a change from the live integration to `uri` with `self` gives up, for the protection
    /// guard: TLS to the backend, or the check of its certificate.
    pub fn weakens(&self, live: &ApiMethod, uri: &str) -> Option<String> {
        let i = live.integration.as_ref()?;
        let live_https = i.uri.as_deref().is_some_and(|u| u.starts_with("https://"));
        if live_https && !uri.starts_with("https://") {
            return Some("backend TLS off (https -> http)".into());
        }
        (live_https && !i.insecure_skip_verification && self.insecure_skip_verification)
            .then(|| "backend certificate check off (insecureSkipVerification)".into())
    }
}

// ---- Operations -------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum MethodOp {
    /// PutMethod then PutIntegration (which replaces any integration there): one HTTP_PROXY
    /// method through the VPC Link.
    PutProxyMethod {
        rest_api_id: Ref,
        resource_id: Ref,
        path: String,
        http_method: String,
        /// Whether the resource is `{proxy+}` (the path parameter is passed through).
        greedy: bool,
        uri: String,
        vpc_link_id: Ref,
        authorization_type: String,
        /// The authorizer of a CUSTOM or COGNITO_USER_POOLS method (pending while this plan
        /// creates it).
        #[serde(skip_serializing_if = "Option::is_none")]
        authorizer_id: Option<Ref>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        authorization_scopes: Vec<String>,
        api_key_required: bool,
        /// `tlsConfig.insecureSkipVerification` of an `https` integration.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        insecure_skip_verification: bool,
        /// `timeoutInMillis` (absent: AWS's default).
        #[serde(skip_serializing_if = "Option::is_none")]
        timeout_millis: Option<u32>,
        /// The method is there with other protection: it is deleted and put again (PutMethod
        /// refuses an existing method; moto answers UpdateMethod with 500). A method change is
        /// live only with the next deployment, so traffic never sees the gap.
        replace: bool,
    },
    DeleteMethod {
        rest_api_id: String,
        resource_id: String,
        path: String,
        http_method: String,
    },
}

impl KindOp for MethodOp {
    fn service(&self) -> Service {
        Service::ApiGateway
    }

    fn name(&self) -> &'static str {
        match self {
            Self::PutProxyMethod { .. } => "PutMethod+PutIntegration",
            Self::DeleteMethod { .. } => "DeleteMethod",
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::PutProxyMethod { rest_api_id, path, http_method, .. } => format!("{rest_api_id}{path} {http_method}"),
            Self::DeleteMethod { rest_api_id, path, http_method, .. } => format!("{rest_api_id}{path} {http_method}"),
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::PutProxyMethod { rest_api_id, resource_id, vpc_link_id, authorizer_id, .. } => {
                [rest_api_id, resource_id, vpc_link_id].into_iter().chain(authorizer_id.as_ref()).collect()
            }
            Self::DeleteMethod { .. } => vec![],
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::PutProxyMethod { rest_api_id, resource_id, vpc_link_id, authorizer_id, .. } => {
                [rest_api_id, resource_id, vpc_link_id].into_iter().chain(authorizer_id.as_mut()).collect()
            }
            Self::DeleteMethod { .. } => vec![],
        }
    }

    fn lets_chain(&self, state: Option<&str>) -> bool {
        let _ = state;
        true
    }

    fn on_new_resource(&self) -> bool {
        false
    }

    fn is_delete(&self) -> bool {
        matches!(self, Self::DeleteMethod { .. })
    }
}

// ---- Planning: names and comparisons ----------------------------------------------------------

/// The integration URI of a route over plain TCP: `http://<nlb-dns>:<port><path>[/{proxy}]`.
pub fn integration_uri(dns: &str, port: u16, path: &str, greedy: bool) -> String {
    uri_at(&integration_base(dns, port, None), path, greedy)
}

/// Where a link's integrations point: `http://<nlb-dns>:<port>`, or with TLS to the backend
/// `https://<server name>:<port>` (the VPC link routes to the load balancer; the name is what API
/// Gateway sends and checks the certificate against).
pub fn integration_base(dns: &str, port: u16, tls: Option<&crosslink_desired::BackendTls>) -> String {
    match tls {
        Some(t) => format!("https://{}:{port}", t.server_name),
        None => format!("http://{dns}:{port}"),
    }
}

/// A route's integration URI under `base`: its path, and `/{proxy}` for its `{proxy+}`.
pub fn uri_at(base: &str, path: &str, greedy: bool) -> String {
    if greedy { format!("{base}{path}/{{proxy}}") } else { format!("{base}{path}") }
}

/// The listener port of the gateway's load balancer an integration URI reaches: `http://<dns>:
/// <port>/...`, or `https://<any name>:<port>/...` where `port` is one of the load balancer's TLS
/// listeners (`tls_ports`; the host is then a link's server name).
pub(crate) fn uri_port(uri: &str, dns: &str, tls_ports: &BTreeSet<u16>) -> Option<u16> {
    if let Some(rest) = uri.strip_prefix("http://") {
        let rest = rest.strip_prefix(dns)?.strip_prefix(':')?;
        return rest.split('/').next()?.parse().ok();
    }
    let host_port = uri.strip_prefix("https://")?.split('/').next()?;
    let port: u16 = host_port.rsplit_once(':')?.1.parse().ok()?;
    tls_ports.contains(&port).then_some(port)
}

/// The ports of the TLS listeners on a gateway's load balancer.
pub(crate) fn tls_ports(gw: &GatewayCx<'_>) -> BTreeSet<u16> {
    let lb = gw.out.load_balancer.arn.known();
    gw.state
        .listeners
        .iter()
        .filter(|x| lb == Some(x.load_balancer_arn.as_str()) && x.protocol == "TLS")
        .map(|x| x.port)
        .collect()
}

/// The first difference between a method's live integration and the one it should have.
pub(crate) fn integration_drift(m: &ApiMethod, w: &WantedMethod, vpc_link: &Ref) -> Option<Reason> {
    let (uri, method) = (w.uri.as_str(), w.method.as_str());
    let Some(i) = &m.integration else {
        return Some(Reason::Drift {
            field: "integration".into(),
            live: "(none)".into(),
            desired: "HTTP_PROXY".into(),
        });
    };
    let want_http = if method == "ANY" { "ANY" } else { method };
    let checks: [(&str, Option<&str>, &str); 4] = [
        ("integration type", Some(i.kind.as_str()), "HTTP_PROXY"),
        ("integration uri", i.uri.as_deref(), uri),
        ("integration connectionType", i.connection_type.as_deref(), "VPC_LINK"),
        ("integration httpMethod", i.http_method.as_deref(), want_http),
    ];
    for (field, live, want) in checks {
        if live != Some(want) {
            return Some(Reason::Drift {
                field: field.into(),
                live: live.unwrap_or("(none)").into(),
                desired: want.into(),
            });
        }
    }
    // Only compared where AWS reports it (moto does not).
    if let (Some(live), Some(want)) = (&i.connection_id, vpc_link.known())
        && live != want
    {
        return Some(Reason::Drift {
            field: "integration connectionId".into(),
            live: live.clone(),
            desired: want.into(),
        });
    }
    if uri.starts_with("https://") && i.insecure_skip_verification != w.backend.insecure_skip_verification {
        return Some(Reason::Drift {
            field: "integration tlsConfig.insecureSkipVerification".into(),
            live: i.insecure_skip_verification.to_string(),
            desired: w.backend.insecure_skip_verification.to_string(),
        });
    }
    let (live_t, want_t) = (i.timeout_millis.unwrap_or(DEFAULT_TIMEOUT_MILLIS), w.backend.timeout_millis.unwrap_or(DEFAULT_TIMEOUT_MILLIS));
    (live_t != want_t).then(|| Reason::Drift {
        field: "integration timeoutInMillis".into(),
        live: live_t.to_string(),
        desired: want_t.to_string(),
    })
}

/// A live method whose protection differs from the desired one (`authorizer`: the id of the
/// authorizer it should use, if any).
fn protection_drift(m: &ApiMethod, want: &Protection, authorizer: Option<&Ref>) -> Option<Reason> {
    let (auth, key) = (m.authorization_type.as_str(), m.api_key_required);
    let drift = |field: &str, live: &str, desired: &str| {
        Some(Reason::Drift { field: field.into(), live: live.into(), desired: desired.into() })
    };
    if auth != want.authorization {
        return drift("authorizationType", auth, &want.authorization);
    }
    if let Some(id) = authorizer {
        let live = m.authorizer_id.as_deref().unwrap_or("(none)");
        match id.known() {
            Some(want_id) if want_id == live => {}
            Some(want_id) => return drift("authorizerId", live, want_id),
            None => return drift("authorizerId", live, &format!("the new authorizer {}", want.authorizer.as_deref().unwrap_or_default())),
        }
        let mut scopes = m.authorization_scopes.clone();
        scopes.sort();
        if scopes != want.scopes {
            return drift("authorizationScopes", &scopes.join(","), &want.scopes.join(","));
        }
    }
    (key != want.api_key_required).then(|| Reason::Drift {
        field: "apiKeyRequired".into(),
        live: key.to_string(),
        desired: want.api_key_required.to_string(),
    })
}

// ---- Clean-up and tags (read by the planner's generic machinery) ------------------------------

/// Methods are removed with their API resource or REST API.
pub(crate) use crate::planner::nothing_to_prune as prunable;
pub(crate) use crate::planner::nothing_first as before_delete;
pub(crate) use crate::planner::untagged as tag_op;
pub(crate) use crate::planner::not_releasable as untag_op;

/// Whether a method is crosslink's: an integration through a VPC link to the gateway's load
/// balancer.
pub(crate) fn ours(gw: &GatewayCx<'_>, m: &ApiMethod) -> bool {
    let dns = gw.out.load_balancer.dns.as_deref();
    let tls = tls_ports(gw);
    m.integration.as_ref().is_some_and(|i| {
        i.connection_type.as_deref() == Some("VPC_LINK")
            && i.uri.as_deref().is_some_and(|u| dns.is_some_and(|d| uri_port(u, d, &tls).is_some()))
    })
}

/// Whether a method integrates with a port a retained listener keeps (its link was removed with
/// deletionPolicy Retain): it stays.
pub(crate) fn retained(gw: &GatewayCx<'_>, retained_ports: &BTreeSet<u16>, m: &ApiMethod) -> bool {
    let dns = gw.out.load_balancer.dns.as_deref();
    let tls = tls_ports(gw);
    m.integration
        .as_ref()
        .and_then(|i| i.uri.as_deref())
        .is_some_and(|u| dns.and_then(|d| uri_port(u, d, &tls)).is_some_and(|p| retained_ports.contains(&p)))
}

// ---- Planning (the API stage) -----------------------------------------------------------------

pub(crate) type Out<'a> = ();

/// The methods of the API's desired resources, each an HTTP_PROXY integration through the VPC
/// link to its link's listener: put when missing or when the integration drifted (after the
/// resource, the VPC link, the load balancer and a listener this plan makes for the link); of a
/// desired resource, the methods crosslink made that no link wants any more are deleted.
pub(crate) fn plan<'a>(p: &mut Planner<'a>, cx: &mut ApiCx<'a, '_>) -> Option<()> {
    let (gw, subject, account) = (cx.gw, &cx.subject, cx.gw.account.as_str());
    let (api, vpc_link, lb) = (&gw.out.rest_api, &gw.out.vpc_link, &gw.out.load_balancer);
    let resources = &cx.out.api_resource;
    let new_listener: BTreeMap<&str, usize> =
        cx.entries.iter().filter_map(|e| Some((e.link.as_str(), e.listener?))).collect();
    let authorizers = &cx.out.authorizer;
    let first_change = cx.changes.len();
    for (path, methods) in &cx.want {
        let (res_ref, res_action) = resources.ids.get(path).cloned().unwrap_or((Ref::Pending(path.clone().into()), None));
        let live_methods = cx.by_path.get(path.as_str()).map(|r| &r.methods);
        for w in methods {
            let WantedMethod { method, uri, greedy, link, protection, backend } = w;
            let live = live_methods.and_then(|m| m.get(method));
            let authorizer = protection.authorizer.as_ref().and_then(|a| authorizers.ids.get(a));
            let protection_drift = live.and_then(|m| protection_drift(m, protection, authorizer.map(|(id, _)| id)));
            let reason = match live {
                None => Some(Reason::Missing),
                Some(m) => integration_drift(m, w, &vpc_link.id).or(protection_drift.clone()),
            };
            let Some(reason) = reason else { continue };
            let link_subject = Subject::Link(link.clone());
            let a = p.add(
                &link_subject,
                account,
                format!("{method} {path}"),
                if live.is_some() { Verb::Update } else { Verb::Create },
                reason,
                Op::Method(MethodOp::PutProxyMethod {
                    rest_api_id: api.id.clone(),
                    resource_id: res_ref.clone(),
                    path: path.clone(),
                    http_method: method.clone(),
                    greedy: *greedy,
                    uri: uri.clone(),
                    vpc_link_id: vpc_link.id.clone(),
                    authorization_type: protection.authorization.clone(),
                    authorizer_id: authorizer.map(|(id, _)| id.clone()),
                    authorization_scopes: if authorizer.is_some() { protection.scopes.clone() } else { Vec::new() },
                    api_key_required: protection.api_key_required,
                    insecure_skip_verification: backend.insecure_skip_verification && uri.starts_with("https://"),
                    timeout_millis: backend.timeout_millis,
                    replace: protection_drift.is_some(),
                }),
                vec![
                    res_action,
                    vpc_link.action,
                    lb.action,
                    new_listener.get(link.as_str()).copied(),
                    authorizer.and_then(|(_, a)| *a),
                ],
            );
            let lost: Vec<String> =
                live.into_iter().flat_map(|m| [protection.weakens(m), backend.weakens(m, uri)]).flatten().collect();
            if !lost.is_empty() {
                p.plan.weakening.insert(a, format!("{method} {path}: {}", lost.join(", ")));
            }
            if let Some(fill) = cx.dns_fill.clone().filter(|(placeholder, ..)| uri.contains(placeholder.as_str())) {
                p.plan.fills.insert(a, Fills { texts: vec![fill], ..Fills::default() });
            }
            cx.changes.push(a);
        }
    }
    let Some(api_id) = api.id.known() else { return Some(()) };
    for r in cx.live {
        if !resources.kept.contains(r.path.as_str()) || !cx.want.contains_key(&r.path) || cx.frozen.contains(&r.path) {
            continue;
        }
        let want_methods: BTreeSet<&str> =
            cx.want.get(&r.path).map(|ms| ms.iter().map(|w| w.method.as_str()).collect()).unwrap_or_default();
        for (m, method) in &r.methods {
            if want_methods.contains(m.as_str())
                || retained(gw, &cx.retained_ports, method)
                || !(api.owned || ours(gw, method))
            {
                continue;
            }
            let a = p.add(
                subject,
                account,
                format!("{m} {}", r.path),
                Verb::Delete,
                Reason::NoLongerDesired,
                Op::Method(MethodOp::DeleteMethod {
                    rest_api_id: api_id.to_string(),
                    resource_id: r.id.clone(),
                    path: r.path.clone(),
                    http_method: m.clone(),
                }),
                vec![],
            );
            cx.changes.push(a);
        }
    }
    wait_for_methods(p, cx, first_change);
    Some(())
}

/// AWS refuses to delete an authorizer a method uses: the deletions wait for every method
/// change (`cx.changes` from `first`), which moves the methods off them.
fn wait_for_methods(p: &mut Planner<'_>, cx: &ApiCx<'_, '_>, first: usize) {
    for &d in &cx.out.authorizer.deletes {
        for &m in &cx.changes[first..] {
            p.wait_for(d, m);
        }
    }
}
