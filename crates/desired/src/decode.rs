//! Node tree -> model. Reports every type error, missing field and unknown field of a document
//! (with "did you mean"), and records where each field was written for later checks.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::str::FromStr;

use ipnet::Ipv4Net;

use crate::diag::Diagnostic;
use crate::model::*;
use crate::node::{self, Key, Loc, Node, Value};
use crate::suggest::did_you_mean;

/// Decoding context for one document.
pub(crate) struct Cx<'a> {
    pub file: &'a Path,
    /// The file's text, to quote a value as the user wrote it.
    pub text: &'a str,
    pub object: Option<String>,
    pub diags: &'a mut Vec<Diagnostic>,
    pub fields: BTreeMap<String, Loc>,
    failed: bool,
}

impl<'a> Cx<'a> {
    pub fn new(file: &'a Path, text: &'a str, diags: &'a mut Vec<Diagnostic>) -> Self {
        Cx { file, text, object: None, diags, fields: BTreeMap::new(), failed: false }
    }

    pub fn error(&mut self, loc: Loc, field: &str, message: impl Into<String>, hint: Option<String>) {
        self.failed = true;
        let mut d = Diagnostic::new(self.file, loc, field, message).object(self.object.clone());
        d.hint = hint;
        self.diags.push(d);
    }

    fn seen(&mut self, path: &str, loc: Loc) {
        self.fields.insert(path.to_string(), loc);
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

/// A mapping being read field by field; `finish` reports the fields nobody asked for.
pub(crate) struct Fields<'n> {
    path: String,
    loc: Loc,
    entries: &'n [(Key, Node)],
    used: Vec<bool>,
    known: Vec<&'static str>,
    missing: Vec<&'static str>,
}

impl<'n> Fields<'n> {
    pub fn of(cx: &mut Cx, node: &'n Node, path: &str) -> Option<Fields<'n>> {
        cx.seen(path, node.loc);
        match &node.value {
            Value::Map(entries) => Some(Fields {
                path: path.to_string(),
                loc: node.loc,
                entries,
                used: vec![false; entries.len()],
                known: Vec::new(),
                missing: Vec::new(),
            }),
            other => {
                cx.error(node.loc, path, format!("expected a mapping, found {}", other.describe()), None);
                None
            }
        }
    }

    fn lookup(&mut self, cx: &mut Cx, key: &'static str) -> Option<(String, &'n Node)> {
        self.known.push(key);
        let i = self.entries.iter().position(|(k, _)| k.name == key)?;
        self.used[i] = true;
        let path = join(&self.path, key);
        let node = &self.entries[i].1;
        cx.seen(&path, node.loc);
        Some((path, node))
    }

    /// An optional field; an explicit `null` counts as absent.
    pub fn opt(&mut self, cx: &mut Cx, key: &'static str) -> Option<(String, &'n Node)> {
        self.lookup(cx, key).filter(|(_, n)| n.value != Value::Null)
    }

    pub fn req(&mut self, cx: &mut Cx, key: &'static str) -> Option<(String, &'n Node)> {
        let found = self.lookup(cx, key);
        match found {
            Some((path, n)) if n.value == Value::Null => {
                cx.error(n.loc, &path, format!("`{key}` is required but empty"), None);
                None
            }
            Some(f) => Some(f),
            None => {
                // Reported by `finish`, unless a misspelt key explains it.
                self.missing.push(key);
                None
            }
        }
    }

    pub fn finish(self, cx: &mut Cx) {
        let mut explained = Vec::new();
        for (i, (k, _)) in self.entries.iter().enumerate() {
            if self.used[i] {
                continue;
            }
            let path = join(&self.path, &k.name);
            let hint = match did_you_mean(&k.name, &self.known) {
                Some(s) => {
                    explained.push(s);
                    format!("did you mean `{s}`?")
                }
                None => format!("allowed here: {}", self.known.join(", ")),
            };
            cx.error(k.loc, &path, format!("unknown field `{}`", k.name), Some(hint));
        }
        for key in self.missing {
            if !explained.contains(&key) {
                let field = if self.path.is_empty() { key.to_string() } else { self.path.clone() };
                cx.error(self.loc, &field, format!("missing required field `{key}`"), None);
            }
        }
    }
}

pub(crate) fn string(cx: &mut Cx, path: &str, node: &Node) -> Option<String> {
    match &node.value {
        Value::Str(s) => Some(s.clone()),
        other => {
            let hint = node.scalar_text().map(|t| format!("quote it: \"{t}\""));
            cx.error(node.loc, path, format!("expected a string, found {}", other.describe()), hint);
            None
        }
    }
}

fn int<T: TryFrom<i128> + std::fmt::Display>(cx: &mut Cx, path: &str, node: &Node, min: T, max: T) -> Option<T>
where
    i128: From<T>,
{
    let (lo, hi) = (i128::from(min), i128::from(max));
    match &node.value {
        Value::Int(i) if (lo..=hi).contains(i) => T::try_from(*i).ok(),
        Value::Int(i) => {
            cx.error(
                node.loc,
                path,
                format!("{i} is out of range"),
                Some(format!("use a whole number from {lo} to {hi}")),
            );
            None
        }
        Value::Str(s) if s.trim().parse::<i128>().is_ok() => {
            cx.error(
                node.loc,
                path,
                format!("expected a number, found the string \"{s}\""),
                Some(format!("write it without quotes: {}", s.trim())),
            );
            None
        }
        // Integers beyond 64 bits reach us as floats from the parser: say what was written.
        Value::Float(x) if x.fract() == 0.0 && x.abs() >= 9.0e18 => {
            // The parser's float of it is not what was written: name no value.
            cx.error(
                node.loc,
                path,
                "the number is far out of range (over 64 bits)".to_string(),
                Some(format!("use a whole number from {lo} to {hi}")),
            );
            None
        }
        other => {
            cx.error(
                node.loc,
                path,
                format!("expected a whole number, found {}", other.describe()),
                Some(format!("use a whole number from {lo} to {hi}")),
            );
            None
        }
    }
}

fn boolean(cx: &mut Cx, path: &str, node: &Node) -> Option<bool> {
    match &node.value {
        Value::Bool(b) => Some(*b),
        other => {
            cx.error(node.loc, path, format!("expected true or false, found {}", other.describe()), None);
            None
        }
    }
}

fn list<'n>(cx: &mut Cx, path: &str, node: &'n Node) -> Option<&'n [Node]> {
    match &node.value {
        Value::Seq(items) => Some(items),
        other => {
            let hint = node.scalar_text().map(|t| format!("write a list: [{t}]"));
            cx.error(node.loc, path, format!("expected a list, found {}", other.describe()), hint);
            None
        }
    }
}

fn each<'n, T>(
    cx: &mut Cx,
    path: &str,
    node: &'n Node,
    mut f: impl FnMut(&mut Cx, &str, &'n Node) -> Option<T>,
) -> Option<Vec<T>> {
    let items = list(cx, path, node)?;
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        cx.seen(&p, item.loc);
        match f(cx, &p, item) {
            Some(v) => out.push(v),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn strings(cx: &mut Cx, path: &str, node: &Node) -> Option<Vec<String>> {
    each(cx, path, node, string)
}

fn string_map(cx: &mut Cx, path: &str, node: &Node) -> Option<BTreeMap<String, String>> {
    let Value::Map(entries) = &node.value else {
        cx.error(node.loc, path, format!("expected a mapping of strings, found {}", node.value.describe()), None);
        return None;
    };
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (k, v) in entries {
        let p = join(path, &k.name);
        cx.seen(&p, v.loc);
        match string(cx, &p, v) {
            Some(s) => {
                out.insert(k.name.clone(), s);
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn keyword<T: Copy>(cx: &mut Cx, path: &str, node: &Node, choices: &[(&'static str, T)]) -> Option<T> {
    let text = string(cx, path, node)?;
    if let Some((_, v)) = choices.iter().find(|(k, _)| *k == text) {
        return Some(*v);
    }
    let names: Vec<&'static str> = choices.iter().map(|(k, _)| *k).collect();
    let hint = match choices.iter().find(|(k, _)| k.eq_ignore_ascii_case(&text)) {
        Some((k, _)) => format!("write `{k}` (values are case-sensitive)"),
        None => match did_you_mean(&text, &names) {
            Some(s) => format!("did you mean `{s}`? allowed: {}", names.join(", ")),
            None => format!("allowed: {}", names.join(", ")),
        },
    };
    cx.error(node.loc, path, format!("`{text}` is not a valid value"), Some(hint));
    None
}

fn parsed<T: FromStr>(
    cx: &mut Cx,
    path: &str,
    node: &Node,
    what: &str,
    hint: impl FnOnce(&str) -> String,
) -> Option<T> {
    let text = string(cx, path, node)?;
    match text.trim().parse::<T>() {
        Ok(v) => Some(v),
        Err(_) => {
            let h = hint(&text);
            cx.error(node.loc, path, format!("`{text}` is not {what}"), Some(h));
            None
        }
    }
}

fn cidr(cx: &mut Cx, path: &str, node: &Node) -> Option<Ipv4Net> {
    let net: Ipv4Net = parsed(cx, path, node, "an IPv4 CIDR block", |_| {
        "write it as a network and prefix length, e.g. 10.20.0.0/16".into()
    })?;
    if net.trunc() != net {
        cx.error(node.loc, path, format!("`{net}` has host bits set"), Some(format!("the network is {}", net.trunc())));
        return None;
    }
    Some(net)
}

/// The kind and name a document says it has, where it says so legibly (a kind crosslink knows,
/// a scalar name), even if the rest of it is broken.
pub(crate) fn identity(node: &Node) -> (Option<&'static str>, Option<String>) {
    let Value::Map(entries) = &node.value else { return (None, None) };
    let field = |key: &str| entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v);
    let kind = field("kind").and_then(|k| match &k.value {
        Value::Str(s) => KINDS.iter().copied().find(|known| known == s),
        _ => None,
    });
    let name = field("metadata").and_then(|m| match &m.value {
        Value::Map(me) => me.iter().find(|(k, _)| k.name == "name").and_then(|(_, n)| n.scalar_text()),
        _ => None,
    });
    (kind, name)
}

/// Reads `apiVersion`, `kind`, `metadata` and `spec` of one document.
pub(crate) fn document(cx: &mut Cx, node: &Node) -> Option<Document> {
    let mut top = Fields::of(cx, node, "")?;
    let kind_node = top.req(cx, "kind");
    let kind = match kind_node {
        Some((p, n)) => {
            let k = string(cx, &p, n)?;
            if !KINDS.contains(&k.as_str()) {
                let hint = match did_you_mean(&k, KINDS) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("crosslink.dev/v1alpha1 has the kinds {}", KINDS.join(", ")),
                };
                cx.error(n.loc, &p, format!("unknown kind `{k}`"), Some(hint));
                return None;
            }
            k
        }
        None => {
            // Reported here, not by `finish`: a document without a kind must never be ignored.
            cx.error(
                node.loc,
                "kind",
                "missing required field `kind`",
                Some(format!("add `kind:` with one of {}", KINDS.join(", "))),
            );
            return None;
        }
    };
    // Name the object early so every later error says which one it is.
    let (_, name) = identity(node);
    cx.object = Some(format!("{kind}/{}", name.as_deref().unwrap_or("?")));

    let api_version = match top.req(cx, "apiVersion") {
        Some((p, n)) => match string(cx, &p, n) {
            Some(v) if v == API_VERSION => Some(ApiVersion::V1Alpha1),
            Some(v) => {
                cx.error(
                    n.loc,
                    &p,
                    format!("unsupported apiVersion `{v}`"),
                    Some(format!("write `apiVersion: {API_VERSION}`")),
                );
                None
            }
            None => None,
        },
        None => None,
    };
    let metadata = top.req(cx, "metadata").and_then(|(p, n)| metadata(cx, &p, n));
    let spec_node = top.req(cx, "spec");
    top.finish(cx);
    let (sp, sn) = spec_node?;
    /// The spec of one kind, decoded.
    #[allow(clippy::large_enum_variant, reason = "one value per document, moved at once")]
    enum Spec {
        Account(AccountSpec),
        Gateway(GatewaySpec),
        Link(LinkSpec),
        Consumer(ConsumerSpec),
    }
    let doc = match kind.as_str() {
        "Account" => account_spec(cx, &sp, sn).map(Spec::Account),
        "Gateway" => gateway_spec(cx, &sp, sn).map(Spec::Gateway),
        "Consumer" => consumer_spec(cx, &sp, sn).map(Spec::Consumer),
        _ => link_spec(cx, &sp, sn).map(Spec::Link),
    };
    let (api_version, mut metadata, spec) = (api_version?, metadata?, doc?);
    if cx.failed {
        return None;
    }
    metadata.source = Source { file: cx.file.to_path_buf(), loc: node.loc, fields: std::mem::take(&mut cx.fields) };
    Some(match spec {
        Spec::Account(spec) => Document::Account(Account { api_version, metadata, spec }),
        Spec::Gateway(spec) => Document::Gateway(Gateway { api_version, metadata, spec }),
        Spec::Link(spec) => Document::Link(Link { api_version, metadata, spec }),
        Spec::Consumer(spec) => Document::Consumer(Consumer { api_version, metadata, spec }),
    })
}

fn metadata(cx: &mut Cx, path: &str, node: &Node) -> Option<Metadata> {
    let mut f = Fields::of(cx, node, path)?;
    let name = f.req(cx, "name").and_then(|(p, n)| string(cx, &p, n));
    let labels = match f.opt(cx, "labels") {
        Some((p, n)) => string_map(cx, &p, n),
        None => Some(BTreeMap::new()),
    };
    f.finish(cx);
    Some(Metadata { name: name?, labels: labels?, source: Source::default() })
}

fn account_spec(cx: &mut Cx, path: &str, node: &Node) -> Option<AccountSpec> {
    let mut f = Fields::of(cx, node, path)?;
    let account_id = f.req(cx, "accountId").and_then(|(p, n)| account_id(cx, &p, n));
    let region = f.req(cx, "region").and_then(|(p, n)| string(cx, &p, n));
    let assume_role = opt_with(cx, &mut f, "assumeRole", assume_role);
    f.finish(cx);
    Some(AccountSpec { account_id: account_id?, region: region?, assume_role: assume_role? })
}

fn account_id(cx: &mut Cx, path: &str, node: &Node) -> Option<String> {
    match &node.value {
        // An unquoted id is read as a number; 12 digits are unambiguous, anything else lost its
        // leading zeros (or was never an id), so ask for quotes.
        Value::Int(i) if (100_000_000_000..=999_999_999_999).contains(i) => Some(i.to_string()),
        Value::Int(_) | Value::Float(_) => {
            // The parser's number is not what was written: quote the user's own digits.
            let written = node::plain_scalar_at(cx.text, node.loc).filter(|t| t.bytes().all(|b| b.is_ascii_digit()));
            let (message, hint) = match written {
                Some(d) if d.len() == 12 => (
                    "an unquoted account id is read as a number and loses its leading zeros".to_string(),
                    format!("quote the 12 digits: accountId: \"{d}\""),
                ),
                Some(d) => (
                    format!(
                        "`{d}` is not an AWS account id: it has {} digits, and unquoted it is read as a number",
                        d.len()
                    ),
                    format!("an account id is exactly 12 digits, quoted (you wrote {}): accountId: \"{d}\"", d.len()),
                ),
                None => (
                    "an unquoted account id is read as a number and loses its leading zeros".to_string(),
                    "quote the 12 digits, e.g. accountId: \"012345678901\"".to_string(),
                ),
            };
            cx.error(node.loc, path, message, Some(hint));
            None
        }
        _ => string(cx, path, node),
    }
}

fn assume_role(cx: &mut Cx, path: &str, node: &Node) -> Option<AssumeRole> {
    let mut f = Fields::of(cx, node, path)?;
    let role_arn = f.req(cx, "roleArn").and_then(|(p, n)| string(cx, &p, n));
    let external_id = opt_string(cx, &mut f, "externalId");
    let session_name = opt_string(cx, &mut f, "sessionName");
    f.finish(cx);
    Some(AssumeRole { role_arn: role_arn?, external_id: external_id?, session_name: session_name? })
}

/// An optional field read with `read`: `Some(None)` when absent, `None` when present but invalid.
fn opt_with<T>(
    cx: &mut Cx,
    f: &mut Fields,
    key: &'static str,
    read: impl FnOnce(&mut Cx, &str, &Node) -> Option<T>,
) -> Option<Option<T>> {
    match f.opt(cx, key) {
        Some((p, n)) => read(cx, &p, n).map(Some),
        None => Some(None),
    }
}

fn opt_string(cx: &mut Cx, f: &mut Fields, key: &'static str) -> Option<Option<String>> {
    opt_with(cx, f, key, string)
}

fn opt_map(cx: &mut Cx, f: &mut Fields, key: &'static str) -> Option<BTreeMap<String, String>> {
    match f.opt(cx, key) {
        Some((p, n)) => string_map(cx, &p, n),
        None => Some(BTreeMap::new()),
    }
}

fn deletion_policy(cx: &mut Cx, f: &mut Fields) -> Option<DeletionPolicy> {
    match f.opt(cx, "deletionPolicy") {
        Some((p, n)) => keyword(cx, &p, n, &[("Delete", DeletionPolicy::Delete), ("Retain", DeletionPolicy::Retain)]),
        None => Some(DeletionPolicy::Delete),
    }
}

fn adoption(cx: &mut Cx, f: &mut Fields) -> Option<AdoptionPolicy> {
    match f.opt(cx, "adoption") {
        Some((p, n)) => keyword(cx, &p, n, &[("Never", AdoptionPolicy::Never), ("Adopt", AdoptionPolicy::Adopt)]),
        None => Some(AdoptionPolicy::Never),
    }
}

fn gateway_spec(cx: &mut Cx, path: &str, node: &Node) -> Option<GatewaySpec> {
    let mut f = Fields::of(cx, node, path)?;
    let account = f.req(cx, "account").and_then(|(p, n)| string(cx, &p, n));
    let vpc_id = f.req(cx, "vpcId").and_then(|(p, n)| string(cx, &p, n));
    let cidr = opt_with(cx, &mut f, "cidr", self::cidr);
    let subnet_ids = f.req(cx, "subnetIds").and_then(|(p, n)| strings(cx, &p, n));
    let route_table_ids = f.req(cx, "routeTableIds").and_then(|(p, n)| strings(cx, &p, n));
    let load_balancer = f.req(cx, "loadBalancer").and_then(|(p, n)| load_balancer(cx, &p, n));
    let vpc_link = opt_with(cx, &mut f, "vpcLink", vpc_link);
    let api = f.req(cx, "api").and_then(|(p, n)| api(cx, &p, n));
    let tags = opt_map(cx, &mut f, "tags");
    let deletion_policy = deletion_policy(cx, &mut f);
    let adoption = adoption(cx, &mut f);
    f.finish(cx);
    Some(GatewaySpec {
        account: account?,
        vpc_id: vpc_id?,
        cidr: cidr?,
        subnet_ids: subnet_ids?,
        route_table_ids: route_table_ids?,
        load_balancer: load_balancer?,
        vpc_link: vpc_link?,
        api: api?,
        tags: tags?,
        deletion_policy: deletion_policy?,
        adoption: adoption?,
    })
}

fn vpc_link(cx: &mut Cx, path: &str, node: &Node) -> Option<VpcLinkRef> {
    let mut f = Fields::of(cx, node, path)?;
    let id = f.req(cx, "id").and_then(|(p, n)| string(cx, &p, n));
    f.finish(cx);
    Some(VpcLinkRef { id: id? })
}

fn load_balancer(cx: &mut Cx, path: &str, node: &Node) -> Option<LoadBalancerRef> {
    let mut f = Fields::of(cx, node, path)?;
    let name = opt_string(cx, &mut f, "name");
    let arn = opt_string(cx, &mut f, "arn");
    f.finish(cx);
    match (name?, arn?) {
        (Some(n), None) => Some(LoadBalancerRef::Name(n)),
        (None, Some(a)) => Some(LoadBalancerRef::Arn(a)),
        (Some(_), Some(_)) => {
            cx.error(
                node.loc,
                path,
                "give either `name` or `arn`, not both",
                Some("`name` creates an NLB crosslink owns; `arn` uses an existing one".into()),
            );
            None
        }
        (None, None) => {
            cx.error(node.loc, path, "missing `name` or `arn`", Some("write {name: my-nlb} to have crosslink create it, or {arn: arn:aws:elasticloadbalancing:...} to use an existing NLB".into()));
            None
        }
    }
}

fn api(cx: &mut Cx, path: &str, node: &Node) -> Option<ApiRef> {
    let mut f = Fields::of(cx, node, path)?;
    let name = opt_string(cx, &mut f, "name");
    let id = opt_string(cx, &mut f, "id");
    let stage = f.req(cx, "stage").and_then(|(p, n)| string(cx, &p, n));
    let (authorization, api_key_required) = protection(cx, &mut f);
    let authorizers = match f.opt(cx, "authorizers") {
        Some((p, n)) => each(cx, &p, n, authorizer),
        None => Some(Vec::new()),
    };
    let stage_settings = match f.opt(cx, "stageSettings") {
        Some((p, n)) => stage_settings(cx, &p, n),
        None => Some(StageSettings::default()),
    };
    let resource_policy = opt_with(cx, &mut f, "resourcePolicy", |cx, p, n| match &n.value {
        Value::Map(_) => Some(json(cx, p, n)),
        other => {
            cx.error(
                n.loc,
                p,
                format!("expected a policy document (a mapping), found {}", other.describe()),
                Some("write it as YAML: {Version: \"2012-10-17\", Statement: [...]}".into()),
            );
            None
        }
    });
    let web_acl_arn = opt_string(cx, &mut f, "webAclArn");
    let custom_domain = opt_with(cx, &mut f, "customDomain", |cx, p, n| custom_domain(cx, p, n).map(Box::new));
    f.finish(cx);
    let (authorization, api_key_required, authorizers, stage_settings, resource_policy, web_acl_arn, custom_domain) = (
        authorization?,
        api_key_required?,
        authorizers?,
        stage_settings?,
        resource_policy?,
        web_acl_arn?,
        custom_domain?,
    );
    let target = match (name?, id?) {
        (Some(n), None) => ApiTarget::Name(n),
        (None, Some(i)) => ApiTarget::Id(i),
        (Some(_), Some(_)) => {
            cx.error(
                node.loc,
                path,
                "give either `name` or `id`, not both",
                Some("`name` creates a REST API crosslink owns; `id` uses an existing one".into()),
            );
            return None;
        }
        (None, None) => {
            cx.error(node.loc, path, "missing `name` or `id`", Some("write {name: my-api, stage: v1} to have crosslink create it, or {id: a1b2c3d4e5, stage: v1} to use an existing REST API".into()));
            return None;
        }
    };
    Some(ApiRef {
        target,
        stage: stage?,
        authorization,
        api_key_required,
        authorizers,
        stage_settings,
        resource_policy,
        web_acl_arn,
        custom_domain,
    })
}

fn custom_domain(cx: &mut Cx, path: &str, node: &Node) -> Option<CustomDomain> {
    let mut f = Fields::of(cx, node, path)?;
    let domain_name = f.req(cx, "domainName").and_then(|(p, n)| string(cx, &p, n));
    let certificate_arn = f.req(cx, "certificateArn").and_then(|(p, n)| string(cx, &p, n));
    let security_policy = match f.opt(cx, "securityPolicy") {
        Some((p, n)) => keyword(cx, &p, n, TlsPolicy::ALL),
        None => Some(TlsPolicy::default()),
    };
    let base_path = opt_string(cx, &mut f, "basePath");
    let mutual_tls = opt_with(cx, &mut f, "mutualTls", |cx, p, n| {
        let mut f = Fields::of(cx, n, p)?;
        let truststore_uri = f.req(cx, "truststoreUri").and_then(|(p, n)| string(cx, &p, n));
        let truststore_version = opt_string(cx, &mut f, "truststoreVersion");
        f.finish(cx);
        Some(MutualTls { truststore_uri: truststore_uri?, truststore_version: truststore_version? })
    });
    f.finish(cx);
    Some(CustomDomain {
        domain_name: domain_name?,
        certificate_arn: certificate_arn?,
        security_policy: security_policy?,
        base_path: base_path?,
        mutual_tls: mutual_tls?,
    })
}

/// A YAML value as JSON (a policy document is free-form; its rules are checked by `validate`,
/// whose errors point at the places recorded here).
fn json(cx: &mut Cx, path: &str, node: &Node) -> serde_json::Value {
    use serde_json::Value as J;
    cx.seen(path, node.loc);
    match &node.value {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => i64::try_from(*i).map_or_else(|_| J::String(i.to_string()), J::from),
        Value::Float(x) => serde_json::Number::from_f64(*x).map_or(J::Null, J::Number),
        Value::Str(s) => J::String(s.clone()),
        Value::Seq(items) => {
            J::Array(items.iter().enumerate().map(|(i, n)| json(cx, &format!("{path}[{i}]"), n)).collect())
        }
        Value::Map(entries) => {
            J::Object(entries.iter().map(|(k, v)| (k.name.clone(), json(cx, &join(path, &k.name), v))).collect())
        }
    }
}

fn stage_settings(cx: &mut Cx, path: &str, node: &Node) -> Option<StageSettings> {
    let mut f = Fields::of(cx, node, path)?;
    let throttling = opt_with(cx, &mut f, "throttling", throttle);
    let access_logs = opt_with(cx, &mut f, "accessLogs", |cx, p, n| {
        let mut f = Fields::of(cx, n, p)?;
        let destination_arn = f.req(cx, "destinationArn").and_then(|(p, n)| string(cx, &p, n));
        let format = opt_string(cx, &mut f, "format");
        f.finish(cx);
        Some(AccessLogs { destination_arn: destination_arn?, format: format? })
    });
    let execution_logs = opt_with(cx, &mut f, "executionLogs", |cx, p, n| {
        let mut f = Fields::of(cx, n, p)?;
        let level = f.req(cx, "level").and_then(|(p, n)| keyword(cx, &p, n, LogLevel::ALL));
        let data_trace = match f.opt(cx, "dataTrace") {
            Some((p, n)) => boolean(cx, &p, n),
            None => Some(false),
        };
        f.finish(cx);
        Some(ExecutionLogs { level: level?, data_trace: data_trace? })
    });
    let detailed_metrics = opt_with(cx, &mut f, "detailedMetrics", boolean);
    let tracing = opt_with(cx, &mut f, "tracing", boolean);
    let variables = opt_with(cx, &mut f, "variables", string_map);
    f.finish(cx);
    Some(StageSettings {
        throttling: throttling?,
        access_logs: access_logs?,
        execution_logs: execution_logs?,
        detailed_metrics: detailed_metrics?,
        tracing: tracing?,
        variables: variables?,
    })
}

/// `{rateLimit, burstLimit}`, within API Gateway's default account quota (10,000 requests per
/// second, burst 5,000); a burst of 0 with a rate above 0 would refuse every request.
fn throttle(cx: &mut Cx, path: &str, node: &Node) -> Option<Throttle> {
    let mut f = Fields::of(cx, node, path)?;
    let rate_limit = f.req(cx, "rateLimit").and_then(|(p, n)| int::<u32>(cx, &p, n, 0, 10_000));
    let burst = f.req(cx, "burstLimit");
    let burst_limit = burst.as_ref().and_then(|(p, n)| int::<u32>(cx, p, n, 0, 5_000));
    f.finish(cx);
    let (rate_limit, burst_limit) = (rate_limit?, burst_limit?);
    if rate_limit > 0 && burst_limit == 0 {
        let (p, n) = burst?;
        cx.error(
            n.loc,
            &p,
            "a burst of 0 refuses every request, whatever the rate",
            Some(format!("allow at least one request at once, e.g. burstLimit: {}", rate_limit.clamp(1, 5_000))),
        );
        return None;
    }
    Some(Throttle { rate_limit, burst_limit })
}

fn link_spec(cx: &mut Cx, path: &str, node: &Node) -> Option<LinkSpec> {
    let mut f = Fields::of(cx, node, path)?;
    let gateway = f.req(cx, "gateway").and_then(|(p, n)| string(cx, &p, n));
    let description = opt_string(cx, &mut f, "description");
    let service = f.req(cx, "service").and_then(|(p, n)| service(cx, &p, n));
    let targets = f.req(cx, "targets").and_then(|(p, n)| each(cx, &p, n, target));
    let listener_port = f.req(cx, "listenerPort").and_then(|(p, n)| int::<u16>(cx, &p, n, 1, 65535));
    let min_healthy_targets = match f.opt(cx, "minHealthyTargets") {
        Some((p, n)) => int::<u16>(cx, &p, n, 0, 1000).and_then(|m| match &targets {
            Some(t) if usize::from(m) > t.len() => {
                cx.error(
                    n.loc,
                    &p,
                    format!("{m} healthy targets wanted, but the link has {} target(s)", t.len()),
                    Some(format!("at most {}: the number of targets (0 makes target health informational)", t.len())),
                );
                None
            }
            _ => Some(m),
        }),
        None => Some(default_min_healthy_targets()),
    };
    let health_check = opt_with(cx, &mut f, "healthCheck", health_check);
    let routes = f.req(cx, "routes").and_then(|(p, n)| each(cx, &p, n, route));
    let tls = opt_with(cx, &mut f, "tls", backend_tls);
    let peering = match f.opt(cx, "peering") {
        Some((p, n)) => peering(cx, &p, n),
        None => Some(PeeringOptions::default()),
    };
    let transport = match f.opt(cx, "transport") {
        Some((p, n)) => transport(cx, &p, n),
        None => Some(Transport::Peering),
    };
    let deletion_policy = deletion_policy(cx, &mut f);
    let adoption = adoption(cx, &mut f);
    let tags = opt_map(cx, &mut f, "tags");
    f.finish(cx);
    Some(LinkSpec {
        gateway: gateway?,
        description: description?,
        service: service?,
        targets: targets?,
        listener_port: listener_port?,
        min_healthy_targets: min_healthy_targets?,
        health_check: health_check?,
        routes: routes?,
        tls: tls?,
        peering: peering?,
        transport: transport?,
        deletion_policy: deletion_policy?,
        adoption: adoption?,
        tags: tags?,
    })
}

/// `transport: peering`, or `transport: {privateLink: {...}}`.
fn transport(cx: &mut Cx, path: &str, node: &Node) -> Option<Transport> {
    if !matches!(node.value, Value::Map(_)) {
        return keyword(cx, path, node, &[("peering", ())]).map(|()| Transport::Peering);
    }
    let mut f = Fields::of(cx, node, path)?;
    let private_link = opt_with(cx, &mut f, "privateLink", private_link);
    f.finish(cx);
    match private_link? {
        Some(pl) => Some(Transport::PrivateLink(pl)),
        None => {
            cx.error(
                node.loc,
                path,
                "missing `privateLink`",
                Some("write `transport: peering` (the default), or `transport: {privateLink: {loadBalancer: {name: ...}, subnetIds: [...]}}`".into()),
            );
            None
        }
    }
}

fn private_link(cx: &mut Cx, path: &str, node: &Node) -> Option<PrivateLink> {
    let mut f = Fields::of(cx, node, path)?;
    let load_balancer = f.req(cx, "loadBalancer").and_then(|(p, n)| load_balancer(cx, &p, n));
    let subnet_ids = match f.opt(cx, "subnetIds") {
        Some((p, n)) => strings(cx, &p, n),
        None => Some(Vec::new()),
    };
    f.finish(cx);
    Some(PrivateLink { load_balancer: load_balancer?, subnet_ids: subnet_ids? })
}

fn backend_tls(cx: &mut Cx, path: &str, node: &Node) -> Option<BackendTls> {
    let mut f = Fields::of(cx, node, path)?;
    let certificate_arn = f.req(cx, "certificateArn").and_then(|(p, n)| string(cx, &p, n));
    let ssl_policy = match f.opt(cx, "sslPolicy") {
        Some((p, n)) => string(cx, &p, n),
        None => Some(default_ssl_policy()),
    };
    let server_name = f.req(cx, "serverName").and_then(|(p, n)| string(cx, &p, n));
    let insecure_skip_verification = match f.opt(cx, "insecureSkipVerification") {
        Some((p, n)) => boolean(cx, &p, n),
        None => Some(false),
    };
    f.finish(cx);
    Some(BackendTls {
        certificate_arn: certificate_arn?,
        ssl_policy: ssl_policy?,
        server_name: server_name?,
        insecure_skip_verification: insecure_skip_verification?,
    })
}

fn service(cx: &mut Cx, path: &str, node: &Node) -> Option<ServiceSide> {
    let mut f = Fields::of(cx, node, path)?;
    let account = f.req(cx, "account").and_then(|(p, n)| string(cx, &p, n));
    let vpc_id = f.req(cx, "vpcId").and_then(|(p, n)| string(cx, &p, n));
    let cidr = opt_with(cx, &mut f, "cidr", self::cidr);
    let route_table_ids = match f.opt(cx, "routeTableIds") {
        Some((p, n)) => strings(cx, &p, n),
        None => Some(Vec::new()),
    };
    f.finish(cx);
    Some(ServiceSide { account: account?, vpc_id: vpc_id?, cidr: cidr?, route_table_ids: route_table_ids? })
}

fn target(cx: &mut Cx, path: &str, node: &Node) -> Option<Target> {
    let mut f = Fields::of(cx, node, path)?;
    let ip = f.req(cx, "ip").and_then(|(p, n)| {
        parsed::<Ipv4Addr>(cx, &p, n, "an IPv4 address", |t| {
            if t.contains('/') {
                "give a single address, not a CIDR block".into()
            } else {
                "write four numbers 0-255, e.g. 10.20.1.15".into()
            }
        })
    });
    let port = f.req(cx, "port").and_then(|(p, n)| int::<u16>(cx, &p, n, 1, 65535));
    f.finish(cx);
    Some(Target { ip: ip?, port: port? })
}

fn health_check(cx: &mut Cx, path: &str, node: &Node) -> Option<HealthCheck> {
    let mut f = Fields::of(cx, node, path)?;
    let protocol = match f.opt(cx, "protocol") {
        Some((p, n)) => keyword(
            cx,
            &p,
            n,
            &[("TCP", HealthProtocol::Tcp), ("HTTP", HealthProtocol::Http), ("HTTPS", HealthProtocol::Https)],
        ),
        None => Some(HealthProtocol::Tcp),
    };
    let hc_path = opt_string(cx, &mut f, "path");
    let port = match f.opt(cx, "port") {
        Some((p, n)) => int::<u16>(cx, &p, n, 1, 65535).map(Some),
        None => Some(None),
    };
    let interval = match f.opt(cx, "intervalSeconds") {
        Some((p, n)) => int::<u16>(cx, &p, n, 5, 300),
        None => Some(default_interval()),
    };
    let healthy = match f.opt(cx, "healthyThreshold") {
        Some((p, n)) => int::<u8>(cx, &p, n, 2, 10),
        None => Some(default_threshold()),
    };
    let unhealthy = match f.opt(cx, "unhealthyThreshold") {
        Some((p, n)) => int::<u8>(cx, &p, n, 2, 10),
        None => Some(default_threshold()),
    };
    f.finish(cx);
    Some(HealthCheck {
        protocol: protocol?,
        path: hc_path?,
        port: port?,
        interval_seconds: interval?,
        healthy_threshold: healthy?,
        unhealthy_threshold: unhealthy?,
    })
}

fn route(cx: &mut Cx, path: &str, node: &Node) -> Option<RouteSpec> {
    let mut f = Fields::of(cx, node, path)?;
    let rpath = f.req(cx, "path").and_then(|(p, n)| string(cx, &p, n));
    let methods = match f.opt(cx, "methods") {
        Some((p, n)) => each(cx, &p, n, |cx, p, n| {
            let choices: Vec<(&'static str, HttpMethod)> =
                HttpMethod::ALL.iter().map(|m| (*m, HttpMethod::parse(m).expect("listed"))).collect();
            keyword(cx, p, n, &choices)
        }),
        None => Some(default_methods()),
    };
    let (authorization, api_key_required) = protection(cx, &mut f);
    let throttling = opt_with(cx, &mut f, "throttling", throttle);
    let timeout_millis = opt_with(cx, &mut f, "timeoutMillis", |cx, p, n| int::<u32>(cx, p, n, 50, MAX_TIMEOUT_MILLIS));
    f.finish(cx);
    Some(RouteSpec {
        path: rpath?,
        methods: methods?,
        authorization: authorization?,
        api_key_required: api_key_required?,
        throttling: throttling?,
        timeout_millis: timeout_millis?,
    })
}

/// `authorization` and `apiKeyRequired`, on a route or as a gateway API's defaults.
fn protection(cx: &mut Cx, f: &mut Fields<'_>) -> (Option<Option<Authorization>>, Option<Option<bool>>) {
    let authorization = opt_with(cx, f, "authorization", authorization);
    let key = match f.opt(cx, "apiKeyRequired") {
        Some((p, n)) => boolean(cx, &p, n).map(Some),
        None => Some(None),
    };
    (authorization, key)
}

/// `NONE`, `AWS_IAM`, or `{authorizer: <name>, scopes: [...]}`.
fn authorization(cx: &mut Cx, path: &str, node: &Node) -> Option<Authorization> {
    if let Value::Map(_) = node.value {
        let mut f = Fields::of(cx, node, path)?;
        let authorizer = f.req(cx, "authorizer").and_then(|(p, n)| string(cx, &p, n));
        let scopes = match f.opt(cx, "scopes") {
            Some((p, n)) => strings(cx, &p, n),
            None => Some(Vec::new()),
        };
        f.finish(cx);
        return Some(Authorization::Authorizer(AuthorizerUse { authorizer: authorizer?, scopes: scopes? }));
    }
    if let Value::Str(s) = &node.value
        && matches!(s.as_str(), "CUSTOM" | "COGNITO_USER_POOLS")
    {
        cx.error(
            node.loc,
            path,
            format!("`{s}` needs an authorizer"),
            Some("define it under the gateway's spec.api.authorizers and write {authorizer: <its name>}".into()),
        );
        return None;
    }
    keyword(cx, path, node, BuiltinAuthorization::ALL).map(Authorization::Builtin)
}

/// One of `api.authorizers`.
fn authorizer(cx: &mut Cx, path: &str, node: &Node) -> Option<AuthorizerSpec> {
    let mut f = Fields::of(cx, node, path)?;
    let name = f.req(cx, "name").and_then(|(p, n)| string(cx, &p, n));
    let kind = f.req(cx, "type").and_then(|(p, n)| keyword(cx, &p, n, AuthorizerType::ALL));
    let lambda_arn = opt_string(cx, &mut f, "lambdaArn");
    let provider_arns = match f.opt(cx, "providerArns") {
        Some((p, n)) => strings(cx, &p, n),
        None => Some(Vec::new()),
    };
    let identity_source = opt_string(cx, &mut f, "identitySource");
    let ttl = match f.opt(cx, "resultTtlSeconds") {
        Some((p, n)) => int::<u16>(cx, &p, n, 0, 3600),
        None => Some(default_authorizer_ttl()),
    };
    let credentials_role_arn = opt_string(cx, &mut f, "credentialsRoleArn");
    f.finish(cx);
    Some(AuthorizerSpec {
        name: name?,
        kind: kind?,
        lambda_arn: lambda_arn?,
        provider_arns: provider_arns?,
        identity_source: identity_source?,
        result_ttl_seconds: ttl?,
        credentials_role_arn: credentials_role_arn?,
    })
}

fn peering(cx: &mut Cx, path: &str, node: &Node) -> Option<PeeringOptions> {
    let mut f = Fields::of(cx, node, path)?;
    let dns = match f.opt(cx, "allowDnsResolution") {
        Some((p, n)) => boolean(cx, &p, n),
        None => Some(false),
    };
    f.finish(cx);
    Some(PeeringOptions { allow_dns_resolution: dns? })
}

fn consumer_spec(cx: &mut Cx, path: &str, node: &Node) -> Option<ConsumerSpec> {
    let mut f = Fields::of(cx, node, path)?;
    let description = opt_string(cx, &mut f, "description");
    let gateways = f.req(cx, "gateways").and_then(|(p, n)| strings(cx, &p, n));
    let throttling = opt_with(cx, &mut f, "throttling", throttle);
    let quota = opt_with(cx, &mut f, "quota", quota);
    let routes = match f.opt(cx, "routes") {
        Some((p, n)) => each(cx, &p, n, consumer_route),
        None => Some(Vec::new()),
    };
    let api_key = match f.opt(cx, "apiKey") {
        Some((p, n)) => api_key(cx, &p, n),
        None => Some(ApiKeySpec::default()),
    };
    let tags = opt_map(cx, &mut f, "tags");
    let deletion_policy = deletion_policy(cx, &mut f);
    f.finish(cx);
    Some(ConsumerSpec {
        description: description?,
        gateways: gateways?,
        throttling: throttling?,
        quota: quota?,
        routes: routes?,
        api_key: api_key?,
        tags: tags?,
        deletion_policy: deletion_policy?,
    })
}

/// `{limit, period, offset}`. AWS counts `offset` requests as made at the start of the first
/// period, so it must stay below the limit.
fn quota(cx: &mut Cx, path: &str, node: &Node) -> Option<Quota> {
    let mut f = Fields::of(cx, node, path)?;
    let limit = f.req(cx, "limit").and_then(|(p, n)| int::<u32>(cx, &p, n, 1, i32::MAX as u32));
    let period = f.req(cx, "period").and_then(|(p, n)| keyword(cx, &p, n, QuotaPeriod::ALL));
    let offset_node = f.opt(cx, "offset");
    let offset = match &offset_node {
        Some((p, n)) => int::<u32>(cx, p, n, 0, i32::MAX as u32),
        None => Some(0),
    };
    f.finish(cx);
    let (limit, period, offset) = (limit?, period?, offset?);
    if offset >= limit {
        let (p, n) = offset_node?;
        cx.error(
            n.loc,
            &p,
            format!("an offset of {offset} uses up the whole quota of {limit} at the start of each period"),
            Some(format!("use an offset below the limit (0 to {})", limit - 1)),
        );
        return None;
    }
    Some(Quota { limit, period, offset })
}

fn consumer_route(cx: &mut Cx, path: &str, node: &Node) -> Option<ConsumerRoute> {
    let mut f = Fields::of(cx, node, path)?;
    let gateway = opt_string(cx, &mut f, "gateway");
    let route_path = f.req(cx, "path").and_then(|(p, n)| string(cx, &p, n));
    let throttling = f.req(cx, "throttling").and_then(|(p, n)| throttle(cx, &p, n));
    f.finish(cx);
    Some(ConsumerRoute { gateway: gateway?, path: route_path?, throttling: throttling? })
}

/// `{generation, overlapHours, enabled}`. A key's value is never written here: AWS generates it.
fn api_key(cx: &mut Cx, path: &str, node: &Node) -> Option<ApiKeySpec> {
    let mut f = Fields::of(cx, node, path)?;
    if let Some((p, n)) = f.opt(cx, "value") {
        cx.error(
            n.loc,
            &p,
            "an API key's value does not belong in desired state",
            Some(
                "remove it (and treat it as leaked: it was committed); AWS generates the value, and crosslink shows only the key's id"
                    .into(),
            ),
        );
    }
    let generation = match f.opt(cx, "generation") {
        Some((p, n)) => int::<u32>(cx, &p, n, 1, 1_000_000),
        None => Some(default_generation()),
    };
    let overlap_hours = match f.opt(cx, "overlapHours") {
        Some((p, n)) => int::<u32>(cx, &p, n, 0, 720),
        None => Some(default_overlap_hours()),
    };
    let enabled = match f.opt(cx, "enabled") {
        Some((p, n)) => boolean(cx, &p, n),
        None => Some(true),
    };
    f.finish(cx);
    Some(ApiKeySpec { generation: generation?, overlap_hours: overlap_hours?, enabled: enabled? })
}
