//! `crosslink iam-policy`: least-privilege IAM documents derived from desired state: the
//! controller's own policy (which roles it may assume), and per Account the role's trust policy
//! and a permissions policy limited to the calls crosslink makes there, with every change
//! conditioned on crosslink's ownership tag wherever AWS can evaluate one.
//!
//! The statements are declared with the calls they serve, in the AWS adapter's module of each
//! resource kind (`crosslink_aws::grants`, `Kind::grants`); this module resolves their scopes
//! per Account and assembles the documents. What AWS can condition, per action, follows the
//! Service Authorization Reference ("Actions, resources, and condition keys for Amazon EC2 /
//! Elastic Load Balancing V2 / Amazon API Gateway Management"). Where it cannot, the statement
//! is scoped by ARN instead (the VPCs, route tables, stages and referenced load balancers and
//! APIs named in desired state) and its `Sid` says so; `notes` in the output explains each
//! statement in words, keyed by `Sid` (IAM itself allows no comments and only alphanumeric Sids).
//!
//! Creating follows desired state; removing follows ownership: a delete AWS can condition on the
//! managed-by tag is granted by the tag alone, in every account the engine looks for crosslink's
//! resources, so the policy of a new desired state still removes what left it. Routes are the
//! exception (they authorize on the route table, which is the VPC owner's): `--previous` prints
//! the union of the old and the new state's policies, to apply before such a change.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use crosslink_aws::grants::{Condition, Resource, Vpcs, When};
use crosslink_desired::{ApiTarget, DesiredState, Gateway, Link, LoadBalancerRef};
use crosslink_plan::tags::{DEFAULT_INSTANCE, MANAGED_BY};
use serde_json::{Value, json};

/// Stands in for `--controller-principal` in trust policies; IAM rejects it, so a policy
/// applied without replacing it fails loudly instead of trusting the wrong principal.
pub const PRINCIPAL_PLACEHOLDER: &str = "REPLACE-WITH-CONTROLLER-PRINCIPAL-ARN";

/// Size limits of IAM policy documents (characters, whitespace excluded).
const MANAGED_POLICY_LIMIT: usize = 6_144;
const INLINE_ROLE_POLICY_LIMIT: usize = 10_240;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyFormat {
    /// One JSON object: `controllerPolicy` and `accounts.<name>.{trustPolicy,permissionsPolicy}`.
    Json,
}

#[derive(Debug, Args)]
pub struct IamPolicyArgs {
    /// Desired-state files or directories (read recursively: *.yaml, *.yml).
    #[arg(required = true, env = "CROSSLINK_DESIRED_STATE", value_delimiter = ',')]
    pub paths: Vec<std::path::PathBuf>,
    /// The value of the crosslink.dev/managed-by tag the daemon runs with (`--instance`): the
    /// policies allow changes only to resources carrying it.
    #[arg(long, env = "CROSSLINK_INSTANCE", default_value = DEFAULT_INSTANCE)]
    pub instance: String,
    /// The principal each account's role trusts: the controller's own role (IRSA or EKS Pod
    /// Identity role, or the instance role on a VM). Without it, trust policies carry a
    /// placeholder that IAM rejects.
    #[arg(long, env = "CROSSLINK_CONTROLLER_PRINCIPAL")]
    pub controller_principal: Option<String>,
    /// The desired state before a change (e.g. a checkout of the commit in force): print the
    /// union of its policies and those of PATHS, to apply before the change is merged. Once the
    /// daemon has converged on the new state, apply `iam-policy PATHS` alone.
    #[arg(long, env = "CROSSLINK_IAM_PREVIOUS", value_delimiter = ',', value_name = "PATH")]
    pub previous: Vec<std::path::PathBuf>,
    /// The change-event queue the daemon reads (`run --events-queue`), by URL or ARN: the
    /// controller's policy then may receive, delete and release its messages, on that queue only.
    #[arg(long, env = "CROSSLINK_EVENTS_QUEUE", value_name = "URL|ARN")]
    pub events_queue: Option<String>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = PolicyFormat::Json)]
    pub output: PolicyFormat,
}

pub fn iam_policy(args: &IamPolicyArgs) -> ExitCode {
    if let Some(p) = &args.controller_principal
        && !p.starts_with("arn:")
    {
        eprintln!(
            "error: --controller-principal must be an IAM principal ARN (arn:aws:iam::<account>:role/<name>), got {p:?}"
        );
        return ExitCode::FAILURE;
    }
    let Some(state) = crate::validate::load_or_report(&args.paths) else { return ExitCode::FAILURE };
    let PolicyFormat::Json = args.output;
    let queue = match args.events_queue.as_deref().map(crate::events_setup::Queue::parse).transpose() {
        Ok(q) => q,
        Err(e) => {
            eprintln!("error: --events-queue: {e}");
            return ExitCode::FAILURE;
        }
    };
    let principal = args.controller_principal.as_deref();
    let mut doc = generate(&state, &args.instance, principal);
    if !args.previous.is_empty() {
        let previous = match crosslink_desired::load(&args.previous) {
            Ok(s) => s,
            Err(diags) => {
                eprintln!("error: the previous desired state (--previous) is invalid:");
                crate::validate::print_diagnostics(&diags);
                return ExitCode::FAILURE;
            }
        };
        doc = union(&generate(&previous, &args.instance, principal), &doc);
    }
    if let Some(q) = &queue
        && let Some(statements) = doc["controllerPolicy"]["Statement"].as_array_mut()
    {
        statements.push(crate::events_setup::consumer_statement(q));
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", serde_json::to_string_pretty(&doc).expect("a JSON value serializes"));
    ExitCode::SUCCESS
}

/// The policies of two desired states in one: everything either allows, and nothing else (each
/// statement is kept as it is; a previous statement that differs from the new one of the same
/// Sid is kept beside it as `<Sid>Previous`). Applied before a change, it lets the daemon finish
/// the change under either state: remove routes from route tables that leave desired state, and
/// create them in tables that join it. IAM cannot condition routes on crosslink's tags (they
/// authorize on the route table, which is the VPC owner's), so this is the only safe order.
pub fn union(previous: &Value, next: &Value) -> Value {
    let mut out = next.clone();
    let (policy, notes) = union_policy(
        &previous["controllerPolicy"],
        &previous["controllerNotes"],
        &next["controllerPolicy"],
        &next["controllerNotes"],
    );
    out["controllerPolicy"] = policy;
    out["controllerNotes"] = notes;
    let empty = serde_json::Map::new();
    let mut accounts = next["accounts"].as_object().cloned().unwrap_or_default();
    for (name, prev) in previous["accounts"].as_object().unwrap_or(&empty) {
        let same_identity = |a: &Value| ["accountId", "region", "roleArn"].iter().all(|k| a[*k] == prev[*k]);
        match accounts.get_mut(name) {
            Some(cur) if same_identity(cur) => {
                let (policy, mut notes) =
                    union_policy(&prev["permissionsPolicy"], &prev["notes"], &cur["permissionsPolicy"], &cur["notes"]);
                if let Some(n) = notes.as_object_mut() {
                    n.remove("size");
                    if let Some(size) = size_note(&policy) {
                        n.insert("size".into(), Value::String(size));
                    }
                }
                let (trust, _) = union_policy(&prev["trustPolicy"], &json!({}), &cur["trustPolicy"], &json!({}));
                let sides: BTreeSet<String> = [&prev["sides"], &cur["sides"]]
                    .into_iter()
                    .filter_map(Value::as_array)
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                cur["sides"] = json!(sides);
                cur["permissionsPolicy"] = policy;
                cur["notes"] = notes;
                cur["trustPolicy"] = trust;
            }
            // The Account is gone, or now stands for another account or role: keep what the
            // previous state needed there, under its own key.
            found => {
                let key = if found.is_some() { format!("{name} (previous)") } else { name.clone() };
                let mut prev = prev.clone();
                prev["notes"]["previous"] =
                    json!("only the previous desired state needs this: remove it once the change has converged");
                accounts.insert(key, prev);
            }
        }
    }
    out["accounts"] = Value::Object(accounts);
    out["transition"] = json!(
        "the union of the previous and the new desired state's policies: apply it before the change, and `crosslink iam-policy <new>` once the daemon has converged on the new state (docs/security.md)"
    );
    out
}

/// One policy document holding every statement of two, with the notes of both (see `union`).
fn union_policy(prev: &Value, prev_notes: &Value, next: &Value, next_notes: &Value) -> (Value, Value) {
    if prev.is_null() {
        return (next.clone(), next_notes.clone());
    }
    if next.is_null() {
        return (prev.clone(), prev_notes.clone());
    }
    let mut statements: Vec<Value> = next["Statement"].as_array().cloned().unwrap_or_default();
    let mut notes = next_notes.as_object().cloned().unwrap_or_default();
    for st in prev["Statement"].as_array().into_iter().flatten() {
        if statements.contains(st) {
            continue;
        }
        let sid = st["Sid"].as_str().unwrap_or_default().to_string();
        let taken = |sid: &str| statements.iter().any(|s| s["Sid"] == sid);
        let mut new_sid = sid.clone();
        let mut n = 1;
        while taken(&new_sid) {
            new_sid = if n == 1 { format!("{sid}Previous") } else { format!("{sid}Previous{n}") };
            n += 1;
        }
        let mut st = st.clone();
        st["Sid"] = json!(new_sid);
        if let Some(why) = prev_notes.get(&sid).and_then(Value::as_str) {
            notes.insert(new_sid.clone(), json!(format!("for the previous desired state: {why}")));
        }
        statements.push(st);
    }
    for (k, v) in prev_notes.as_object().into_iter().flatten() {
        // Notes that are not about a statement (size, principal, ...): the new state's win.
        if !notes.contains_key(k) && !prev["Statement"].as_array().into_iter().flatten().any(|s| s["Sid"] == **k) {
            notes.insert(k.clone(), v.clone());
        }
    }
    let mut doc = next.clone();
    doc["Statement"] = json!(statements);
    (doc, Value::Object(notes))
}

/// The partition of a region: ARNs and principals differ in China and GovCloud.
fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else {
        "aws"
    }
}

/// Where one Account's resources live, as ARN prefixes.
struct Place<'a> {
    partition: &'static str,
    region: &'a str,
    account_id: &'a str,
}

impl Place<'_> {
    fn ec2(&self, resource: &str) -> String {
        format!("arn:{}:ec2:{}:{}:{resource}", self.partition, self.region, self.account_id)
    }
    fn elb(&self, resource: &str) -> String {
        format!("arn:{}:elasticloadbalancing:{}:{}:{resource}", self.partition, self.region, self.account_id)
    }
    /// API Gateway's control-plane ARNs carry no account: `arn:aws:apigateway:<region>::/<path>`.
    fn apigw(&self, path: &str) -> String {
        format!("arn:{}:apigateway:{}::{path}", self.partition, self.region)
    }
}

/// The ARN of a VPC named in desired state, in the account (and region) that owns it.
fn vpc_arn(state: &DesiredState, account: &str, vpc_id: &str) -> Option<String> {
    let a = state.account(account)?;
    Some(format!("arn:{}:ec2:{}:{}:vpc/{vpc_id}", partition(&a.spec.region), a.spec.region, a.spec.account_id))
}

struct Policy {
    statements: Vec<Value>,
    notes: BTreeMap<String, String>,
}

impl Policy {
    fn new() -> Policy {
        Policy { statements: Vec::new(), notes: BTreeMap::new() }
    }

    /// One Allow statement; `why` goes to `notes` under the same Sid.
    fn allow(&mut self, sid: &str, actions: &[&str], resources: Vec<String>, condition: Value, why: &str) {
        debug_assert!(sid.chars().all(|c| c.is_ascii_alphanumeric()), "IAM Sids are alphanumeric: {sid}");
        debug_assert!(!self.notes.contains_key(sid), "duplicate Sid {sid}");
        let one_or_many = |v: Vec<String>| match v.as_slice() {
            [one] => Value::String(one.clone()),
            _ => json!(v),
        };
        let mut s = json!({
            "Sid": sid,
            "Effect": "Allow",
            "Action": one_or_many(actions.iter().map(|a| a.to_string()).collect()),
            "Resource": one_or_many(resources),
        });
        if condition.as_object().is_some_and(|c| !c.is_empty()) {
            s["Condition"] = condition;
        }
        self.statements.push(s);
        self.notes.insert(sid.to_string(), why.to_string());
    }

    fn document(&self) -> Value {
        json!({"Version": "2012-10-17", "Statement": self.statements})
    }
}

/// Builds conditions from (operator, key, values) triples, one block per operator.
fn cond(entries: &[(&str, String, Value)]) -> Value {
    let mut c = serde_json::Map::new();
    for (op, key, values) in entries {
        let block = c.entry(op.to_string()).or_insert_with(|| json!({}));
        block[key.as_str()] = values.clone();
    }
    Value::Object(c)
}

fn list(values: impl IntoIterator<Item = String>) -> Value {
    let v: Vec<String> = values.into_iter().collect::<BTreeSet<_>>().into_iter().collect();
    match v.as_slice() {
        [one] => Value::String(one.clone()),
        _ => json!(v),
    }
}

/// Everything crosslink does in one account, read off desired state.
struct AccountWork<'a> {
    gateways: Vec<&'a Gateway>,
    /// Links whose service side (peering accepter, routes) is in this account.
    service_links: Vec<&'a Link>,
    /// Some Consumer's usage plan and keys are made here (its gateways' account).
    consumers: bool,
}

impl AccountWork<'_> {
    fn sides(&self) -> Vec<&'static str> {
        let mut s = Vec::new();
        if !self.gateways.is_empty() {
            s.push("gateway");
        }
        if !self.service_links.is_empty() {
            s.push("service");
        }
        s
    }
}

/// The documents for every Account, and the controller's policy.
pub fn generate(state: &DesiredState, instance: &str, principal: Option<&str>) -> Value {
    let scopes = crosslink_controller::scopes(state, instance);
    let mut accounts = serde_json::Map::new();
    let mut role_arns = BTreeSet::new();
    let mut direct = Vec::new();
    for account in &state.accounts {
        let name = &account.metadata.name;
        let work = AccountWork {
            gateways: state.gateways.iter().filter(|g| &g.spec.account == name).collect(),
            service_links: state.links.iter().filter(|l| &l.spec.service.account == name).collect(),
            consumers: state
                .consumers
                .iter()
                .any(|c| c.spec.gateways.iter().filter_map(|g| state.gateway(g)).any(|g| &g.spec.account == name)),
        };
        let place = Place {
            partition: partition(&account.spec.region),
            region: &account.spec.region,
            account_id: &account.spec.account_id,
        };
        // What the engine reads here decides what is cleaned up here (crates/controller scopes).
        let gateway_side = scopes.get(name).is_some_and(|s| s.gateway_side);
        let mut policy = permissions(state, &work, &place, instance, gateway_side);
        if let Some(note) = size_note(&policy.document()) {
            policy.notes.insert("size".into(), note);
        }
        let (role_arn, trust) = match &account.spec.assume_role {
            Some(role) => {
                role_arns.insert(role.role_arn.clone());
                (
                    Value::String(role.role_arn.clone()),
                    trust_policy(&place, principal, role.external_id.as_deref(), &mut policy.notes),
                )
            }
            None => {
                direct.push(name.clone());
                policy.notes.insert(
                    "trustPolicy".into(),
                    "this Account has no assumeRole: crosslink acts here with its own credentials, so attach permissionsPolicy to the controller's identity".into(),
                );
                (Value::Null, Value::Null)
            }
        };
        let document = policy.document();
        let mut entry = json!({
            "accountId": account.spec.account_id,
            "region": account.spec.region,
            "sides": work.sides(),
            "roleArn": role_arn,
            "trustPolicy": trust,
            "permissionsPolicy": document,
            "notes": policy.notes,
        });
        if let Some(parts) = managed_parts(&entry["permissionsPolicy"]) {
            entry["permissionsPolicyParts"] = Value::Array(parts);
        }
        accounts.insert(name.clone(), entry);
    }

    let mut controller = Policy::new();
    if !role_arns.is_empty() {
        controller.allow(
            "AssumeListedCrosslinkRoles",
            &["sts:AssumeRole"],
            role_arns.into_iter().collect(),
            json!({}),
            "exactly the roleArn of every Account in desired state; regenerate when Accounts change",
        );
    }
    controller.allow(
        "ConfirmIdentity",
        &["sts:GetCallerIdentity"],
        vec!["*".into()],
        json!({}),
        "crosslink checks every session's account with GetCallerIdentity (AWS allows it even without this statement; listed for reviewers)",
    );
    if !direct.is_empty() {
        controller.notes.insert(
            "directAccounts".into(),
            format!(
                "Accounts without assumeRole, where the controller's own identity also needs their permissionsPolicy: {}",
                direct.join(", ")
            ),
        );
    }
    json!({
        "instance": instance,
        "controllerPolicy": controller.document(),
        "controllerNotes": controller.notes,
        "accounts": accounts,
    })
}

/// Past the managed policy limit: say so, and what to attach instead.
fn size_note(policy: &Value) -> Option<String> {
    let size = serde_json::to_string(policy).map(|s| s.len()).unwrap_or_default();
    if size <= MANAGED_POLICY_LIMIT {
        return None;
    }
    let parts = managed_parts(policy).map_or(0, |p| p.len());
    let inline = if size > INLINE_ROLE_POLICY_LIMIT {
        " and a role's inline policy limit (10,240) too:"
    } else {
        ", within a role's inline policy limit (10,240): attach it inline, or"
    };
    Some(format!(
        "{size} characters: over the managed policy limit (6,144){inline} attach the {parts} documents of permissionsPolicyParts as managed policies (the same statements, split by Sid)"
    ))
}

/// A policy over the managed policy limit, split into documents that each fit it: the same
/// statements, in order, none split. `None` when it fits as it is.
fn managed_parts(policy: &Value) -> Option<Vec<Value>> {
    let size = |v: &Value| serde_json::to_string(v).map(|s| s.len()).unwrap_or_default();
    if size(policy) <= MANAGED_POLICY_LIMIT {
        return None;
    }
    let empty = size(&json!({"Version": "2012-10-17", "Statement": []}));
    let mut parts: Vec<Vec<Value>> = vec![Vec::new()];
    let mut used = empty;
    for st in policy["Statement"].as_array().into_iter().flatten() {
        // One comma between statements.
        let add = size(st) + 1;
        if used + add > MANAGED_POLICY_LIMIT && parts.last().is_some_and(|p| !p.is_empty()) {
            parts.push(Vec::new());
            used = empty;
        }
        used += add;
        parts.last_mut().expect("one part at least").push(st.clone());
    }
    Some(parts.into_iter().map(|st| json!({"Version": "2012-10-17", "Statement": st})).collect())
}

fn trust_policy(
    place: &Place<'_>,
    principal: Option<&str>,
    external_id: Option<&str>,
    notes: &mut BTreeMap<String, String>,
) -> Value {
    let mut statement = json!({
        "Sid": "CrosslinkControllerWithExternalId",
        "Effect": "Allow",
        "Principal": {"AWS": principal.unwrap_or(PRINCIPAL_PLACEHOLDER)},
        "Action": "sts:AssumeRole",
    });
    match external_id {
        Some(x) => statement["Condition"] = json!({"StringEquals": {"sts:ExternalId": x}}),
        None => {
            statement["Sid"] = json!("CrosslinkControllerNoExternalId");
            notes.insert(
                "trustPolicy".into(),
                "the Account's assumeRole has no externalId, so the trust policy cannot require sts:ExternalId: add one (confused-deputy protection) and regenerate".into(),
            );
        }
    }
    if principal.is_none() {
        notes.insert(
            "principal".into(),
            format!(
                "replace {PRINCIPAL_PLACEHOLDER} with the controller's role ARN (arn:{}:iam::<account>:role/<name>), or rerun with --controller-principal",
                place.partition
            ),
        );
    }
    json!({"Version": "2012-10-17", "Statement": [statement]})
}

/// One account's permissions: every statement the kinds declare (`crosslink_aws::grants::all`,
/// in kind order) that belongs in this Account, its scopes resolved from desired state. Creating
/// and changing follow desired state (its ids where no tag can be required); removing follows
/// ownership: every delete that AWS can condition on the managed-by tag is granted wherever the
/// engine looks for crosslink's resources (`gateway_side`: it reads load balancers, VPC links
/// and REST APIs there), so that whatever left desired state can still be removed under the new
/// policy. Routes cannot be: see `union` and docs/security.md.
fn permissions(
    state: &DesiredState,
    work: &AccountWork<'_>,
    place: &Place<'_>,
    instance: &str,
    gateway_side: bool,
) -> Policy {
    // Tag keys crosslink writes: its own (crosslink.dev/*), Name on peerings, and the user tags
    // of the gateways and links whose resources live here. A key added in YAML needs the policy
    // regenerated before crosslink can write it.
    let mut tag_keys: BTreeSet<String> = ["crosslink.dev/*".to_string(), "Name".to_string()].into();
    for g in &work.gateways {
        tag_keys.extend(g.spec.tags.keys().cloned());
        for l in state.links_of(&g.metadata.name) {
            tag_keys.extend(l.spec.tags.keys().cloned());
        }
    }
    // A privateLink link's service side (its NLB, target group, listener and endpoint service)
    // carries the link's tags in the service account.
    for l in work.service_links.iter().filter(|l| l.spec.transport.private_link().is_some()) {
        tag_keys.extend(l.spec.tags.keys().cloned());
    }
    let scope = Scope { state, work, place, instance, tag_keys };
    let mut p = Policy::new();
    for grant in crosslink_aws::grants::all() {
        let applies = match grant.when {
            When::Always => true,
            When::GatewaySide => gateway_side,
            When::Gateways => !work.gateways.is_empty(),
            When::ServiceLinks => !work.service_links.is_empty(),
            When::OwnRestApis => work.gateways.iter().any(|g| matches!(g.spec.api.target, ApiTarget::Name(_))),
            When::Consumers => work.consumers,
            When::CustomDomains => work.gateways.iter().any(|g| g.spec.api.custom_domain.is_some()),
            When::Adopting => work.gateways.iter().any(|g| {
                state.links_of(&g.metadata.name).any(|l| l.spec.adoption == crosslink_desired::AdoptionPolicy::Adopt)
            }),
            When::AdoptingGateways => {
                work.gateways.iter().any(|g| g.spec.adoption == crosslink_desired::AdoptionPolicy::Adopt)
            }
            When::PrivateLinkServices => work.service_links.iter().any(|l| l.spec.transport.private_link().is_some()),
            When::PrivateLinkGateways => work
                .gateways
                .iter()
                .any(|g| state.links_of(&g.metadata.name).any(|l| l.spec.transport.private_link().is_some())),
        };
        let resources: Vec<Vec<String>> = grant.resources.iter().map(|r| scope.resource(*r)).collect();
        let condition: Vec<(&str, String, BTreeSet<String>)> =
            grant.condition.iter().map(|c| scope.condition(*c)).collect();
        // A scope that names nothing here leaves the statement out: IAM rejects an empty
        // Resource, and a condition on an empty list allows nothing.
        if !applies || resources.iter().any(Vec::is_empty) || condition.iter().any(|(_, _, v)| v.is_empty()) {
            continue;
        }
        let condition: Vec<(&str, String, Value)> =
            condition.into_iter().map(|(op, key, values)| (op, key, list(values))).collect();
        p.allow(grant.sid, grant.actions, resources.concat(), cond(&condition), grant.why);
    }
    p
}

/// What a grant's scopes resolve against: one Account's work in desired state.
struct Scope<'a> {
    state: &'a DesiredState,
    work: &'a AccountWork<'a>,
    place: &'a Place<'a>,
    instance: &'a str,
    /// `aws:TagKeys` crosslink may write here.
    tag_keys: BTreeSet<String>,
}

impl Scope<'_> {
    fn vpcs(&self, vpcs: Vpcs) -> BTreeSet<String> {
        let (state, work, place) = (self.state, self.work, self.place);
        match vpcs {
            Vpcs::OfGateways => work.gateways.iter().map(|g| place.ec2(&format!("vpc/{}", g.spec.vpc_id))).collect(),
            Vpcs::OfServiceLinks => {
                work.service_links.iter().map(|l| place.ec2(&format!("vpc/{}", l.spec.service.vpc_id))).collect()
            }
            Vpcs::PeersOfGateways => work
                .gateways
                .iter()
                .flat_map(|g| state.links_of(&g.metadata.name))
                .filter_map(|l| vpc_arn(state, &l.spec.service.account, &l.spec.service.vpc_id))
                .collect(),
            Vpcs::PeersOfServiceLinks => work
                .service_links
                .iter()
                .filter_map(|l| state.gateway(&l.spec.gateway))
                .filter_map(|g| vpc_arn(state, &g.spec.account, &g.spec.vpc_id))
                .collect(),
        }
    }

    /// The ARNs of one entry of `Resource`; each scope in sorted order.
    fn resource(&self, r: Resource) -> Vec<String> {
        let (work, place) = (self.work, self.place);
        let set: BTreeSet<String> = match r {
            Resource::Any => return vec!["*".into()],
            Resource::Ec2(pattern) => return vec![place.ec2(pattern)],
            Resource::Elb(pattern) => return vec![place.elb(pattern)],
            Resource::ApiGw(path) => return vec![place.apigw(path)],
            Resource::RouteTables => {
                let gateways = work.gateways.iter().flat_map(|g| &g.spec.route_table_ids);
                let services = work.service_links.iter().flat_map(|l| &l.spec.service.route_table_ids);
                gateways.chain(services).map(|r| place.ec2(&format!("route-table/{r}"))).collect()
            }
            Resource::Vpcs(vpcs) => self.vpcs(vpcs),
            Resource::NamedLoadBalancers => work
                .gateways
                .iter()
                .filter_map(|g| match &g.spec.load_balancer {
                    LoadBalancerRef::Name(n) => Some(place.elb(&format!("loadbalancer/net/{n}/*"))),
                    LoadBalancerRef::Arn(_) => None,
                })
                .collect(),
            Resource::ReferencedLoadBalancers => work
                .gateways
                .iter()
                .filter_map(|g| match &g.spec.load_balancer {
                    LoadBalancerRef::Arn(a) => Some(a.clone()),
                    LoadBalancerRef::Name(_) => None,
                })
                .collect(),
            Resource::ReferencedRestApis(suffix) => {
                // In the order of the ids, as one would list them.
                let ids: BTreeSet<&str> = work
                    .gateways
                    .iter()
                    .filter_map(|g| match &g.spec.api.target {
                        ApiTarget::Id(id) => Some(id.as_str()),
                        ApiTarget::Name(_) => None,
                    })
                    .collect();
                return ids.into_iter().map(|id| place.apigw(&format!("/restapis/{id}{suffix}"))).collect();
            }
            Resource::Truststores => work
                .gateways
                .iter()
                .filter_map(|g| g.spec.api.custom_domain.as_ref()?.mutual_tls.as_ref())
                .filter_map(|m| m.truststore_uri.strip_prefix("s3://"))
                .map(|object| format!("arn:{}:s3:::{object}", place.partition))
                .collect(),
        };
        set.into_iter().collect()
    }

    /// One entry of `Condition`: (operator, key, values).
    fn condition(&self, c: Condition) -> (&'static str, String, BTreeSet<String>) {
        let one = |v: &str| BTreeSet::from([v.to_string()]);
        match c {
            Condition::InRegion => ("StringEquals", "aws:RequestedRegion".into(), one(self.place.region)),
            Condition::Owned => ("StringEquals", format!("aws:ResourceTag/{MANAGED_BY}"), one(self.instance)),
            Condition::TaggedRequest => ("StringEquals", format!("aws:RequestTag/{MANAGED_BY}"), one(self.instance)),
            Condition::CrosslinkTagKeys => ("ForAllValues:StringLike", "aws:TagKeys".into(), self.tag_keys.clone()),
            Condition::Equals(key, values) => {
                ("StringEquals", key.into(), values.iter().map(|v| v.to_string()).collect())
            }
            Condition::AccepterVpc(vpcs) => ("ArnEquals", "ec2:AccepterVpc".into(), self.vpcs(vpcs)),
            Condition::RequesterVpc(vpcs) => ("ArnEquals", "ec2:RequesterVpc".into(), self.vpcs(vpcs)),
            Condition::StageNames => (
                "StringEquals",
                "apigateway:Request/StageName".into(),
                self.work.gateways.iter().map(|g| g.spec.api.stage.clone()).collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    fn examples() -> DesiredState {
        crosslink_desired::load(&[repo().join("manifests/examples")]).expect("the examples are valid")
    }

    // ---- a small IAM evaluator: enough of the policy language to check what we generate -------

    /// IAM's wildcard match: `*` any run of characters, `?` one character.
    fn glob(pattern: &str, value: &str) -> bool {
        fn go(p: &[u8], v: &[u8]) -> bool {
            match (p.first(), v.first()) {
                (None, None) => true,
                (Some(b'*'), _) => go(&p[1..], v) || (!v.is_empty() && go(p, &v[1..])),
                (Some(b'?'), Some(_)) => go(&p[1..], &v[1..]),
                (Some(a), Some(b)) if a == b => go(&p[1..], &v[1..]),
                _ => false,
            }
        }
        go(pattern.as_bytes(), value.as_bytes())
    }

    fn strings(v: &Value) -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a.iter().map(|x| x.as_str().expect("strings").to_string()).collect(),
            other => panic!("expected a string or a list, got {other}"),
        }
    }

    /// One authorization AWS performs for a call: an action on a resource, with the request's
    /// condition context (multi-valued keys such as aws:TagKeys hold several values).
    #[derive(Clone, Debug)]
    struct Request {
        action: String,
        resource: String,
        context: BTreeMap<String, Vec<String>>,
    }

    fn condition_holds(op: &str, key: &str, wanted: &Value, ctx: &BTreeMap<String, Vec<String>>) -> bool {
        let wanted = strings(wanted);
        let (quantifier, base) = match op.split_once(':') {
            Some((q, b)) => (Some(q), b),
            None => (None, op),
        };
        let matches = |v: &str| match base {
            "StringEquals" | "ArnEquals" => wanted.iter().any(|w| w == v),
            "StringLike" | "ArnLike" => wanted.iter().any(|w| glob(w, v)),
            other => panic!("the test evaluator does not know condition operator {other}"),
        };
        let present = ctx.get(key);
        match (quantifier, present) {
            // ForAllValues holds vacuously when the key is absent (AWS semantics).
            (Some("ForAllValues"), None) => true,
            (Some("ForAllValues"), Some(vs)) => vs.iter().all(|v| matches(v)),
            (Some("ForAnyValue"), Some(vs)) => vs.iter().any(|v| matches(v)),
            (Some("ForAnyValue"), None) => false,
            (None, Some(vs)) => vs.iter().any(|v| matches(v)),
            (None, None) => false,
            (Some(q), _) => panic!("unknown quantifier {q}"),
        }
    }

    /// Whether any Allow statement of `policy` grants `req` (no Deny statements are generated).
    fn allows(policy: &Value, req: &Request) -> bool {
        policy["Statement"].as_array().expect("statements").iter().any(|s| {
            assert_eq!(s["Effect"], "Allow", "only Allow statements are expected");
            let action =
                strings(&s["Action"]).iter().any(|a| glob(&a.to_ascii_lowercase(), &req.action.to_ascii_lowercase()));
            let resource = strings(&s["Resource"]).iter().any(|r| glob(r, &req.resource));
            let conditions = match s.get("Condition") {
                None => true,
                Some(c) => c.as_object().expect("condition").iter().all(|(op, block)| {
                    block.as_object().expect("block").iter().all(|(k, v)| condition_holds(op, k, v, &req.context))
                }),
            };
            action && resource && conditions
        })
    }

    // ---- what the adapter calls, read from its source --------------------------------------------

    /// `(service, operation)` of every `ctx.call/write/pages("service", "Operation", ...)` in
    /// crates/aws/src: the adapter's only way to reach AWS.
    /// Every call the adapter makes, from its typed declarations (`crosslink_aws::kinds`).
    fn adapter_operations() -> BTreeSet<(String, String)> {
        crosslink_aws::calls::all().map(|c| (c.service.as_str().to_string(), c.operation.to_string())).collect()
    }

    /// The facts of one example gateway link, to build requests as AWS would see them.
    struct Fixture {
        gw_region: String,
        gw_account: String,
        gw_vpc: String,
        gw_rtb: String,
        lb_name: String,
        stage: String,
        svc_region: String,
        svc_account: String,
        svc_vpc: String,
        svc_rtb: String,
        /// Tags crosslink puts on what it creates for the link (from the planner's conventions).
        tags: Vec<(String, String)>,
    }

    fn fixture(state: &DesiredState) -> Fixture {
        let link = state.link("cards").expect("Link/cards in the examples");
        let gw = state.gateway(&link.spec.gateway).expect("its gateway");
        let ga = state.account(&gw.spec.account).expect("gateway account");
        let sa = state.account(&link.spec.service.account).expect("service account");
        let LoadBalancerRef::Name(lb_name) = &gw.spec.load_balancer else { panic!("the example NLB is by name") };
        let mut tags = vec![
            (MANAGED_BY.to_string(), DEFAULT_INSTANCE.to_string()),
            ("crosslink.dev/owner".to_string(), "Link/cards".to_string()),
            ("crosslink.dev/deletion-policy".to_string(), "Delete".to_string()),
        ];
        tags.extend(link.spec.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        Fixture {
            gw_region: ga.spec.region.clone(),
            gw_account: ga.spec.account_id.clone(),
            gw_vpc: gw.spec.vpc_id.clone(),
            gw_rtb: gw.spec.route_table_ids[0].clone(),
            lb_name: lb_name.clone(),
            stage: gw.spec.api.stage.clone(),
            svc_region: sa.spec.region.clone(),
            svc_account: sa.spec.account_id.clone(),
            svc_vpc: link.spec.service.vpc_id.clone(),
            svc_rtb: link.spec.service.route_table_ids[0].clone(),
            tags,
        }
    }

    fn ctx(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<String>> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in pairs {
            m.entry(k.to_string()).or_default().push(v.to_string());
        }
        m
    }

    impl Fixture {
        fn request_tags(&self) -> BTreeMap<String, Vec<String>> {
            let mut m = BTreeMap::new();
            for (k, v) in &self.tags {
                m.insert(format!("aws:RequestTag/{k}"), vec![v.clone()]);
                m.entry("aws:TagKeys".to_string()).or_insert_with(Vec::new).push(k.clone());
            }
            m
        }
        fn owned(&self) -> BTreeMap<String, Vec<String>> {
            ctx(&[(&format!("aws:ResourceTag/{MANAGED_BY}"), DEFAULT_INSTANCE)])
        }
        fn gw_ec2(&self, r: &str) -> String {
            format!("arn:aws:ec2:{}:{}:{r}", self.gw_region, self.gw_account)
        }
        fn svc_ec2(&self, r: &str) -> String {
            format!("arn:aws:ec2:{}:{}:{r}", self.svc_region, self.svc_account)
        }
        fn elb(&self, r: &str) -> String {
            format!("arn:aws:elasticloadbalancing:{}:{}:{r}", self.gw_region, self.gw_account)
        }
        fn apigw(&self, path: &str) -> String {
            format!("arn:aws:apigateway:{}::{path}", self.gw_region)
        }
    }

    fn req(action: &str, resource: String, context: BTreeMap<String, Vec<String>>) -> Request {
        Request { action: action.into(), resource, context }
    }

    fn merged(mut a: BTreeMap<String, Vec<String>>, b: BTreeMap<String, Vec<String>>) -> BTreeMap<String, Vec<String>> {
        a.extend(b);
        a
    }

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Side {
        Gateway,
        Service,
        /// Made only where a privateLink link's service side is (its endpoint service).
        PrivateLinkService,
        /// Allowed to every identity (sts:GetCallerIdentity): no statement is needed.
        NoPermission,
    }

    /// How AWS authorizes each adapter operation: the IAM action(s), the resource ARN(s) and the
    /// condition keys the request carries, as crosslink sends it. API Gateway's IAM actions are
    /// HTTP verbs on the REST resource path. `None` for an operation this table does not know:
    /// a new AWS call must be added here (and to the policy) before this test passes.
    fn authorizations(service: &str, op: &str, f: &Fixture) -> Option<(Side, Vec<Request>)> {
        use Side::*;
        let none = BTreeMap::new;
        let region = |r: &str| ctx(&[("aws:RequestedRegion", r)]);
        let pcx_gw = f.gw_ec2("vpc-peering-connection/pcx-0123456789abcdef0");
        let pcx_svc = f.svc_ec2("vpc-peering-connection/pcx-0123456789abcdef0");
        let peering_ends = ctx(&[
            ("ec2:AccepterVpc", &f.svc_ec2(&format!("vpc/{}", f.svc_vpc))),
            ("ec2:RequesterVpc", &f.gw_ec2(&format!("vpc/{}", f.gw_vpc))),
        ]);
        let lb = f.elb(&format!("loadbalancer/net/{}/50dc6c495c0c9188", f.lb_name));
        let tg = f.elb("targetgroup/cl-cards-3f9a1c/73e2d6bc24d8a067");
        let listener = f.elb(&format!("listener/net/{}/50dc6c495c0c9188/f2f7dc8efc522ab2", f.lb_name));
        let api = "/restapis/a1b2c3d4e5";
        let method = format!("{api}/resources/r1s2t3/methods/GET");
        let create_action = |a: &str| ctx(&[("elasticloadbalancing:CreateAction", a)]);
        let r = match (service, op) {
            ("sts", "GetCallerIdentity") => (NoPermission, vec![]),
            (
                "ec2",
                "DescribeVpcEndpointServiceConfigurations"
                | "DescribeVpcEndpointServicePermissions"
                | "DescribeVpcEndpoints"
                | "DescribeNetworkInterfaces"
                | "DescribeSecurityGroups",
            ) => (Service, vec![req(&format!("ec2:{op}"), "*".into(), region(&f.svc_region))]),
            // PrivateLink: the endpoint service in the service account, tagged on create, changed
            // and removed by tag; the endpoint and its security group in the gateway account.
            ("ec2", "CreateVpcEndpointServiceConfiguration") => (
                PrivateLinkService,
                vec![
                    req(&format!("ec2:{op}"), f.svc_ec2("vpc-endpoint-service/*"), f.request_tags()),
                    req(
                        "ec2:CreateTags",
                        f.svc_ec2("vpc-endpoint-service/*"),
                        merged(ctx(&[("ec2:CreateAction", op)]), f.request_tags()),
                    ),
                ],
            ),
            (
                "ec2",
                "ModifyVpcEndpointServicePermissions"
                | "ModifyVpcEndpointServiceConfiguration"
                | "AcceptVpcEndpointConnections"
                | "DeleteVpcEndpointServiceConfigurations",
            ) => (
                PrivateLinkService,
                vec![req(
                    &format!("ec2:{op}"),
                    f.svc_ec2("vpc-endpoint-service/vpce-svc-0123456789abcdef0"),
                    f.owned(),
                )],
            ),
            ("ec2", "CreateVpcEndpoint") => (
                Gateway,
                vec![
                    req("ec2:CreateVpcEndpoint", f.gw_ec2(&format!("vpc/{}", f.gw_vpc)), none()),
                    req("ec2:CreateVpcEndpoint", f.gw_ec2("subnet/subnet-0a1b2c3d4e5f60001"), none()),
                    req("ec2:CreateVpcEndpoint", f.gw_ec2("security-group/sg-0123456789abcdef0"), none()),
                    req("ec2:CreateVpcEndpoint", f.gw_ec2("vpc-endpoint/*"), f.request_tags()),
                    req(
                        "ec2:CreateTags",
                        f.gw_ec2("vpc-endpoint/*"),
                        merged(ctx(&[("ec2:CreateAction", op)]), f.request_tags()),
                    ),
                ],
            ),
            ("ec2", "DeleteVpcEndpoints") => {
                (Gateway, vec![req(&format!("ec2:{op}"), f.gw_ec2("vpc-endpoint/vpce-0fedcba9876543210"), f.owned())])
            }
            ("ec2", "CreateSecurityGroup") => (
                Gateway,
                vec![
                    req("ec2:CreateSecurityGroup", f.gw_ec2(&format!("vpc/{}", f.gw_vpc)), none()),
                    req("ec2:CreateSecurityGroup", f.gw_ec2("security-group/*"), f.request_tags()),
                    req(
                        "ec2:CreateTags",
                        f.gw_ec2("security-group/*"),
                        merged(ctx(&[("ec2:CreateAction", op)]), f.request_tags()),
                    ),
                ],
            ),
            ("ec2", "AuthorizeSecurityGroupIngress" | "RevokeSecurityGroupIngress" | "DeleteSecurityGroup") => {
                (Gateway, vec![req(&format!("ec2:{op}"), f.gw_ec2("security-group/sg-0123456789abcdef0"), f.owned())])
            }
            ("ec2", "DescribeVpcs" | "DescribeVpcPeeringConnections" | "DescribeRouteTables") => {
                (Service, vec![req(&format!("ec2:{op}"), "*".into(), region(&f.svc_region))])
            }
            ("ec2", "CreateVpcPeeringConnection") => (
                Gateway,
                vec![
                    req("ec2:CreateVpcPeeringConnection", f.gw_ec2(&format!("vpc/{}", f.gw_vpc)), none()),
                    req(
                        "ec2:CreateVpcPeeringConnection",
                        f.gw_ec2("vpc-peering-connection/*"),
                        merged(peering_ends.clone(), f.request_tags()),
                    ),
                    req(
                        "ec2:CreateTags",
                        f.gw_ec2("vpc-peering-connection/*"),
                        merged(ctx(&[("ec2:CreateAction", "CreateVpcPeeringConnection")]), f.request_tags()),
                    ),
                ],
            ),
            ("ec2", "AcceptVpcPeeringConnection") => (
                Service,
                vec![
                    req("ec2:AcceptVpcPeeringConnection", f.svc_ec2(&format!("vpc/{}", f.svc_vpc)), none()),
                    // The accepter sees none of the requester's tags.
                    req("ec2:AcceptVpcPeeringConnection", pcx_svc, peering_ends.clone()),
                ],
            ),
            ("ec2", "ModifyVpcPeeringConnectionOptions") => (
                Service,
                // Like acceptance: the accepter does not see the requester's tags.
                vec![req("ec2:ModifyVpcPeeringConnectionOptions", pcx_svc.clone(), peering_ends.clone())],
            ),
            ("ec2", "DeleteVpcPeeringConnection") => {
                (Gateway, vec![req("ec2:DeleteVpcPeeringConnection", pcx_gw, merged(f.owned(), peering_ends))])
            }
            ("ec2", "CreateTags") => {
                (Gateway, vec![req("ec2:CreateTags", pcx_gw, merged(f.owned(), f.request_tags()))])
            }
            ("ec2", "DeleteTags") => {
                (Gateway, vec![req("ec2:DeleteTags", pcx_gw, merged(f.owned(), f.request_tags()))])
            }
            ("ec2", "CreateRoute" | "ReplaceRoute" | "DeleteRoute") => (
                Service,
                vec![
                    req(&format!("ec2:{op}"), f.svc_ec2(&format!("route-table/{}", f.svc_rtb)), none()),
                    // Routes back to the service VPC are made in the gateway account.
                    req(&format!("ec2:{op}"), f.gw_ec2(&format!("route-table/{}", f.gw_rtb)), none()),
                ],
            ),
            (
                "elbv2",
                "DescribeLoadBalancers"
                | "DescribeListeners"
                | "DescribeTargetGroups"
                | "DescribeTargetHealth"
                | "DescribeTags",
            ) => (Gateway, vec![req(&format!("elasticloadbalancing:{op}"), "*".into(), region(&f.gw_region))]),
            ("elbv2", "CreateLoadBalancer") => (
                Gateway,
                vec![
                    req(
                        "elasticloadbalancing:CreateLoadBalancer",
                        lb.clone(),
                        merged(f.request_tags(), ctx(&[("elasticloadbalancing:Scheme", "internal")])),
                    ),
                    req("elasticloadbalancing:AddTags", lb.clone(), merged(f.request_tags(), create_action(op))),
                ],
            ),
            ("elbv2", "CreateTargetGroup") => (
                Gateway,
                vec![
                    req("elasticloadbalancing:CreateTargetGroup", tg.clone(), f.request_tags()),
                    req("elasticloadbalancing:AddTags", tg.clone(), merged(f.request_tags(), create_action(op))),
                ],
            ),
            ("elbv2", "CreateListener") => (
                Gateway,
                vec![
                    req("elasticloadbalancing:CreateListener", lb.clone(), merged(f.owned(), f.request_tags())),
                    req("elasticloadbalancing:AddTags", listener.clone(), merged(f.request_tags(), create_action(op))),
                ],
            ),
            ("elbv2", "DeleteLoadBalancer") => {
                (Gateway, vec![req("elasticloadbalancing:DeleteLoadBalancer", lb, f.owned())])
            }
            ("elbv2", "ModifyTargetGroup" | "DeleteTargetGroup" | "RegisterTargets" | "DeregisterTargets") => {
                (Gateway, vec![req(&format!("elasticloadbalancing:{op}"), tg, f.owned())])
            }
            ("elbv2", "ModifyListener" | "DeleteListener") => {
                (Gateway, vec![req(&format!("elasticloadbalancing:{op}"), listener, f.owned())])
            }
            ("elbv2", "AddTags" | "RemoveTags") => (
                Gateway,
                [lb, tg, listener]
                    .into_iter()
                    .map(|r| req(&format!("elasticloadbalancing:{op}"), r, merged(f.owned(), f.request_tags())))
                    .collect(),
            ),
            ("apigateway", "GetRestApis") => (Gateway, vec![req("apigateway:GET", f.apigw("/restapis"), none())]),
            ("apigateway", "GetVpcLinks") => (Gateway, vec![req("apigateway:GET", f.apigw("/vpclinks"), none())]),
            ("apigateway", "GetResources") => {
                (Gateway, vec![req("apigateway:GET", f.apigw(&format!("{api}/resources")), none())])
            }
            ("apigateway", "GetStages") => {
                (Gateway, vec![req("apigateway:GET", f.apigw(&format!("{api}/stages")), none())])
            }
            ("apigateway", "UpdateRestApi") => (Gateway, vec![req("apigateway:PATCH", f.apigw(api), f.owned())]),
            // WAF checks both sides: the web ACL (wafv2) and the stage (apigateway:SetWebACL).
            ("wafv2", "AssociateWebACL" | "DisassociateWebACL") => {
                let stage = f.apigw(&format!("{api}/stages/{}", f.stage));
                let acl = format!("arn:aws:wafv2:{}:{}:regional/webacl/edge/0a1b2c3d", f.gw_region, f.gw_account);
                (
                    Gateway,
                    vec![
                        req(&format!("wafv2:{op}"), acl, region(&f.gw_region)),
                        req("apigateway:SetWebACL", stage, f.owned()),
                    ],
                )
            }
            ("apigateway", "GetAccount") => (Gateway, vec![req("apigateway:GET", f.apigw("/account"), none())]),
            // Consumers: usage plans and API keys carry tags of their own; a plan's key list
            // does not.
            // Custom domains: the domain name carries tags; its mappings do not. With mutual TLS,
            // API Gateway reads the truststore from S3 with the caller's rights.
            ("apigateway", "GetDomainNames") => (Gateway, vec![req("apigateway:GET", f.apigw("/domainnames"), none())]),
            ("apigateway", "GetBasePathMappings") => (
                Gateway,
                vec![req(
                    "apigateway:GET",
                    f.apigw("/domainnames/api.openbanking.bank.example/basepathmappings"),
                    none(),
                )],
            ),
            ("apigateway", "CreateDomainName" | "UpdateDomainName") => {
                let (action, path, context) = if op == "CreateDomainName" {
                    ("apigateway:POST", "/domainnames".to_string(), f.request_tags())
                } else {
                    ("apigateway:PATCH", "/domainnames/api.openbanking.bank.example".to_string(), f.owned())
                };
                let truststore = "arn:aws:s3:::bank-psd2-truststores/eidas-qwac-issuers.pem".to_string();
                (
                    Gateway,
                    vec![
                        req(action, f.apigw(&path), context),
                        req("s3:GetObject", truststore.clone(), none()),
                        req("s3:GetObjectVersion", truststore, none()),
                    ],
                )
            }
            ("apigateway", "DeleteDomainName") => (
                Gateway,
                vec![req("apigateway:DELETE", f.apigw("/domainnames/api.openbanking.bank.example"), f.owned())],
            ),
            ("apigateway", "CreateBasePathMapping" | "UpdateBasePathMapping" | "DeleteBasePathMapping") => {
                let (action, path) = match op {
                    "CreateBasePathMapping" => {
                        ("apigateway:POST", "/domainnames/api.openbanking.bank.example/basepathmappings")
                    }
                    "UpdateBasePathMapping" => {
                        ("apigateway:PATCH", "/domainnames/api.openbanking.bank.example/basepathmappings/open-banking")
                    }
                    _ => {
                        ("apigateway:DELETE", "/domainnames/api.openbanking.bank.example/basepathmappings/open-banking")
                    }
                };
                (Gateway, vec![req(action, f.apigw(path), region(&f.gw_region))])
            }
            ("apigateway", "GetUsagePlans") => (Gateway, vec![req("apigateway:GET", f.apigw("/usageplans"), none())]),
            ("apigateway", "GetUsagePlanKeys") => {
                (Gateway, vec![req("apigateway:GET", f.apigw("/usageplans/up1a2b/keys"), none())])
            }
            ("apigateway", "GetApiKeys") => (Gateway, vec![req("apigateway:GET", f.apigw("/apikeys"), none())]),
            ("apigateway", "CreateUsagePlan") => {
                (Gateway, vec![req("apigateway:POST", f.apigw("/usageplans"), f.request_tags())])
            }
            ("apigateway", "CreateApiKey") => {
                (Gateway, vec![req("apigateway:POST", f.apigw("/apikeys"), f.request_tags())])
            }
            ("apigateway", "UpdateUsagePlan") => {
                (Gateway, vec![req("apigateway:PATCH", f.apigw("/usageplans/up1a2b"), f.owned())])
            }
            ("apigateway", "DeleteUsagePlan") => {
                (Gateway, vec![req("apigateway:DELETE", f.apigw("/usageplans/up1a2b"), f.owned())])
            }
            ("apigateway", "UpdateApiKey") => {
                (Gateway, vec![req("apigateway:PATCH", f.apigw("/apikeys/k1a2b3"), f.owned())])
            }
            ("apigateway", "DeleteApiKey") => {
                (Gateway, vec![req("apigateway:DELETE", f.apigw("/apikeys/k1a2b3"), f.owned())])
            }
            ("apigateway", "CreateUsagePlanKey") => {
                (Gateway, vec![req("apigateway:POST", f.apigw("/usageplans/up1a2b/keys"), region(&f.gw_region))])
            }
            ("apigateway", "DeleteUsagePlanKey") => (
                Gateway,
                vec![req("apigateway:DELETE", f.apigw("/usageplans/up1a2b/keys/k1a2b3"), region(&f.gw_region))],
            ),
            // Stages inherit their REST API's tags for authorization.
            ("apigateway", "UpdateStage") => {
                (Gateway, vec![req("apigateway:PATCH", f.apigw(&format!("{api}/stages/{}", f.stage)), f.owned())])
            }
            ("apigateway", "CreateVpcLink") => (
                Gateway,
                vec![
                    req("apigateway:POST", f.apigw("/vpclinks"), f.request_tags()),
                    // API Gateway makes the endpoint service with the caller's permissions.
                    req(
                        "ec2:CreateVpcEndpointServiceConfiguration",
                        f.gw_ec2("vpc-endpoint-service/vpce-svc-0a1b2c3d"),
                        none(),
                    ),
                    req(
                        "ec2:ModifyVpcEndpointServicePermissions",
                        f.gw_ec2("vpc-endpoint-service/vpce-svc-0a1b2c3d"),
                        none(),
                    ),
                    req("ec2:DescribeVpcEndpointServiceConfigurations", "*".into(), region(&f.gw_region)),
                    req("elasticloadbalancing:DescribeLoadBalancers", "*".into(), region(&f.gw_region)),
                ],
            ),
            ("apigateway", "DeleteVpcLink") => (
                Gateway,
                vec![
                    req("apigateway:DELETE", f.apigw("/vpclinks/x1y2z3"), f.owned()),
                    req(
                        "ec2:DeleteVpcEndpointServiceConfigurations",
                        f.gw_ec2("vpc-endpoint-service/vpce-svc-0a1b2c3d"),
                        none(),
                    ),
                ],
            ),
            ("apigateway", "CreateRestApi") => {
                (Gateway, vec![req("apigateway:POST", f.apigw("/restapis"), f.request_tags())])
            }
            ("apigateway", "DeleteRestApi") => (Gateway, vec![req("apigateway:DELETE", f.apigw(api), f.owned())]),
            // Children of a REST API inherit its tags for authorization.
            ("apigateway", "CreateResource") => {
                (Gateway, vec![req("apigateway:POST", f.apigw(&format!("{api}/resources/r0o0t0")), f.owned())])
            }
            ("apigateway", "DeleteResource") => {
                (Gateway, vec![req("apigateway:DELETE", f.apigw(&format!("{api}/resources/r1s2t3")), f.owned())])
            }
            ("apigateway", "PutMethod") => (Gateway, vec![req("apigateway:PUT", f.apigw(&method), f.owned())]),
            ("apigateway", "PutIntegration") => {
                (Gateway, vec![req("apigateway:PUT", f.apigw(&format!("{method}/integration")), f.owned())])
            }
            ("apigateway", "DeleteMethod") => (Gateway, vec![req("apigateway:DELETE", f.apigw(&method), f.owned())]),
            ("apigateway", "GetAuthorizers") => {
                (Gateway, vec![req("apigateway:GET", f.apigw(&format!("{api}/authorizers")), none())])
            }
            ("apigateway", "CreateAuthorizer") => {
                (Gateway, vec![req("apigateway:POST", f.apigw(&format!("{api}/authorizers")), f.owned())])
            }
            ("apigateway", "UpdateAuthorizer") => {
                (Gateway, vec![req("apigateway:PATCH", f.apigw(&format!("{api}/authorizers/au1b2c")), f.owned())])
            }
            ("apigateway", "DeleteAuthorizer") => {
                (Gateway, vec![req("apigateway:DELETE", f.apigw(&format!("{api}/authorizers/au1b2c")), f.owned())])
            }
            ("apigateway", "CreateDeployment") => (
                Gateway,
                vec![req(
                    "apigateway:POST",
                    f.apigw(&format!("{api}/deployments")),
                    merged(f.owned(), ctx(&[("apigateway:Request/StageName", &f.stage)])),
                )],
            ),
            ("apigateway", "TagResource") => {
                let stage_arn = format!("arn:aws:apigateway:{}::{api}/stages/{}", f.gw_region, f.stage);
                let encoded = stage_arn.replace(':', "%3A").replace('/', "%2F");
                let tags = merged(
                    ctx(&[(&format!("aws:RequestTag/{MANAGED_BY}"), DEFAULT_INSTANCE)]),
                    ctx(&[
                        ("aws:TagKeys", MANAGED_BY),
                        ("aws:TagKeys", "crosslink.dev/deployed-hash"),
                        ("aws:TagKeys", "crosslink.dev/stage-settings"),
                    ]),
                );
                (Gateway, vec![req("apigateway:PUT", f.apigw(&format!("/tags/{encoded}")), tags)])
            }
            ("apigateway", "UntagResource") => {
                let link_arn = format!("arn:aws:apigateway:{}::/vpclinks/vl1b2c", f.gw_region);
                let encoded = link_arn.replace(':', "%3A").replace('/', "%2F");
                let keys = ctx(&[("aws:TagKeys", MANAGED_BY), ("aws:TagKeys", "crosslink.dev/owner")]);
                (Gateway, vec![req("apigateway:DELETE", f.apigw(&format!("/tags/{encoded}")), keys)])
            }
            _ => return None,
        };
        Some(r)
    }

    fn account_policy<'a>(doc: &'a Value, account: &str) -> &'a Value {
        &doc["accounts"][account]["permissionsPolicy"]
    }

    #[test]
    fn every_operation_the_adapter_calls_is_allowed_where_it_is_made() {
        let state = examples();
        let doc = generate(&state, DEFAULT_INSTANCE, None);
        let f = fixture(&state);
        let ops = adapter_operations();
        assert!(ops.len() >= 40, "only {} operations declared: {ops:?}", ops.len());
        let gateway = account_policy(&doc, "shared-services");
        let service = account_policy(&doc, "cards");
        let mut failures = Vec::new();
        for (service_name, op) in &ops {
            let Some((side, requests)) = authorizations(service_name, op, &f) else {
                failures.push(format!(
                    "{service_name}:{op}: unknown to this test: add how AWS authorizes it (and a statement if needed)"
                ));
                continue;
            };
            // The declaration names exactly the IAM actions AWS evaluates for the call.
            let declared: BTreeSet<&str> =
                crosslink_aws::calls::find(service_name, op).expect("declared").iam.iter().copied().collect();
            let evaluated: BTreeSet<&str> = requests.iter().map(|r| r.action.as_str()).collect();
            if declared != evaluated {
                failures.push(format!(
                    "{service_name}:{op}: declared IAM actions {declared:?}, but AWS evaluates {evaluated:?}"
                ));
            }
            for r in &requests {
                // Everything a service account does, a gateway account does too (its own routes,
                // its own network reads); Accept and the accepter's peering options are the
                // service-only calls.
                let targets: Vec<(&str, &Value)> = match side {
                    Side::Service
                        if matches!(
                            r.action.as_str(),
                            "ec2:AcceptVpcPeeringConnection" | "ec2:ModifyVpcPeeringConnectionOptions"
                        ) =>
                    {
                        vec![("cards", service)]
                    }
                    Side::Service if r.resource.contains(&f.gw_rtb) => vec![("shared-services", gateway)],
                    Side::Service if r.resource.contains(&f.svc_rtb) => vec![("cards", service)],
                    Side::Service => vec![("cards", service), ("shared-services", gateway)],
                    Side::Gateway => vec![("shared-services", gateway)],
                    Side::PrivateLinkService => vec![("cards", service)],
                    Side::NoPermission => vec![],
                };
                for (name, policy) in targets {
                    if !allows(policy, r) {
                        failures.push(format!("{service_name}:{op} in {name}: {r:?} is not allowed"));
                    }
                }
                // The service side of a privateLink link (Link/fraud in the cards account) makes
                // the ELBv2 calls too, on its own NLB, target group and listener.
                // (It never re-tags or releases them: AddTags and RemoveTags stay the gateway's.)
                if service_name == "elbv2" && side == Side::Gateway && !matches!(op.as_str(), "AddTags" | "RemoveTags")
                {
                    let mut there = r.clone();
                    there.resource = there.resource.replace(&f.gw_account, &f.svc_account);
                    if !allows(service, &there) {
                        failures.push(format!("{service_name}:{op} in cards (privateLink): {there:?} is not allowed"));
                    }
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn changes_are_denied_without_ownership_or_outside_desired_state() {
        let state = examples();
        let doc = generate(&state, DEFAULT_INSTANCE, None);
        let f = fixture(&state);
        let gateway = account_policy(&doc, "shared-services");
        let service = account_policy(&doc, "cards");
        // The ledger account serves a peered link only.
        let peered_only = account_policy(&doc, "ledger");
        let none_ctx = BTreeMap::new;
        let foreign = ctx(&[(&format!("aws:ResourceTag/{MANAGED_BY}"), "someone-else")]);
        let lb = f.elb("loadbalancer/net/edge-nlb/50dc6c495c0c9188");
        let denied = [
            (
                "someone else's load balancer",
                gateway,
                req("elasticloadbalancing:DeleteLoadBalancer", lb.clone(), foreign.clone()),
            ),
            (
                "an untagged target group",
                gateway,
                req("elasticloadbalancing:RegisterTargets", f.elb("targetgroup/x/1"), BTreeMap::new()),
            ),
            (
                "a REST API of another instance",
                gateway,
                req("apigateway:DELETE", f.apigw("/restapis/zz"), foreign.clone()),
            ),
            (
                "an untagged create",
                gateway,
                req("elasticloadbalancing:CreateTargetGroup", f.elb("targetgroup/x/1"), BTreeMap::new()),
            ),
            (
                "an internet-facing NLB",
                gateway,
                req(
                    "elasticloadbalancing:CreateLoadBalancer",
                    lb.clone(),
                    merged(f.request_tags(), ctx(&[("elasticloadbalancing:Scheme", "internet-facing")])),
                ),
            ),
            (
                "a NLB name not in desired state",
                gateway,
                req(
                    "elasticloadbalancing:CreateLoadBalancer",
                    f.elb("loadbalancer/net/other/1"),
                    merged(f.request_tags(), ctx(&[("elasticloadbalancing:Scheme", "internal")])),
                ),
            ),
            (
                "a route table not in desired state",
                service,
                req("ec2:CreateRoute", f.svc_ec2("route-table/rtb-unlisted"), BTreeMap::new()),
            ),
            (
                "the gateway's route table from the service account",
                service,
                req("ec2:DeleteRoute", f.gw_ec2(&format!("route-table/{}", f.gw_rtb)), BTreeMap::new()),
            ),
            (
                "a peering from an unknown VPC",
                service,
                req(
                    "ec2:AcceptVpcPeeringConnection",
                    f.svc_ec2("vpc-peering-connection/pcx-1"),
                    ctx(&[
                        ("ec2:AccepterVpc", &f.svc_ec2(&format!("vpc/{}", f.svc_vpc))),
                        ("ec2:RequesterVpc", "arn:aws:ec2:eu-central-1:999999999999:vpc/vpc-evil"),
                    ]),
                ),
            ),
            (
                "ELB in a service account with no privateLink link",
                peered_only,
                req(
                    "elasticloadbalancing:CreateTargetGroup",
                    format!("arn:aws:elasticloadbalancing:{}:333333333333:targetgroup/x/1", f.svc_region),
                    f.request_tags(),
                ),
            ),
            (
                "an endpoint service in a service account with no privateLink link",
                peered_only,
                req(
                    "ec2:CreateVpcEndpointServiceConfiguration",
                    format!("arn:aws:ec2:{}:333333333333:vpc-endpoint-service/*", f.svc_region),
                    f.request_tags(),
                ),
            ),
            (
                "someone else's endpoint service",
                service,
                req(
                    "ec2:ModifyVpcEndpointServicePermissions",
                    f.svc_ec2("vpc-endpoint-service/vpce-svc-1"),
                    foreign.clone(),
                ),
            ),
            ("an untagged endpoint", gateway, req("ec2:CreateVpcEndpoint", f.gw_ec2("vpc-endpoint/*"), none_ctx())),
            (
                "someone else's security group",
                gateway,
                req("ec2:AuthorizeSecurityGroupIngress", f.gw_ec2("security-group/sg-1"), foreign.clone()),
            ),
            (
                "a deployment to an unlisted stage",
                gateway,
                req(
                    "apigateway:POST",
                    f.apigw("/restapis/a1/deployments"),
                    merged(f.owned(), ctx(&[("apigateway:Request/StageName", "prod-unlisted")])),
                ),
            ),
            (
                "a tag key crosslink never writes",
                gateway,
                req(
                    "elasticloadbalancing:AddTags",
                    f.elb("targetgroup/x/1"),
                    merged(f.owned(), ctx(&[("aws:TagKeys", "owner-team")])),
                ),
            ),
        ];
        for (what, policy, r) in denied {
            assert!(!allows(policy, &r), "{what} must be denied: {r:?}");
        }
    }

    #[test]
    fn the_controller_assumes_exactly_the_listed_roles_and_each_role_requires_the_external_id() {
        let state = examples();
        let doc = generate(&state, DEFAULT_INSTANCE, Some("arn:aws:iam::999999999999:role/crosslink-controller"));
        let controller = &doc["controllerPolicy"];
        for account in &state.accounts {
            let role = &account.spec.assume_role.as_ref().expect("examples assume roles").role_arn;
            assert!(allows(controller, &req("sts:AssumeRole", role.clone(), BTreeMap::new())), "{role}");
            let trust = &doc["accounts"][&account.metadata.name]["trustPolicy"]["Statement"][0];
            assert_eq!(trust["Principal"]["AWS"], "arn:aws:iam::999999999999:role/crosslink-controller");
            let x = account.spec.assume_role.as_ref().and_then(|r| r.external_id.clone()).expect("external id");
            assert_eq!(trust["Condition"]["StringEquals"]["sts:ExternalId"], x.as_str());
        }
        assert!(!allows(
            controller,
            &req("sts:AssumeRole", "arn:aws:iam::111111111111:role/admin".into(), BTreeMap::new())
        ));
    }

    /// Tagging a listener, target group or peering that carries no managed-by tag yet is granted
    /// only while a link of the account's gateways adopts.
    #[test]
    fn adoption_tags_untagged_load_balancer_resources_only_while_a_link_adopts() {
        let sids = |state: &DesiredState| -> Vec<String> {
            let doc = generate(state, DEFAULT_INSTANCE, None);
            let statements = account_policy(&doc, "shared-services")["Statement"].as_array().unwrap().clone();
            statements.iter().map(|s| s["Sid"].as_str().unwrap().to_string()).collect()
        };
        let mut state = examples();
        let adoption = ["ElbAdoptListenersAndTargetGroups".to_string(), "Ec2AdoptPeerings".to_string()];
        assert!(!sids(&state).iter().any(|s| adoption.contains(s)));
        state.links[0].spec.adoption = crosslink_desired::AdoptionPolicy::Adopt;
        let with = sids(&state);
        assert!(adoption.iter().all(|s| with.contains(s)), "{with:?}");
        // The gateway's own NLB only while the gateway adopts.
        assert!(!with.contains(&"ElbAdoptLoadBalancers".to_string()), "{with:?}");
        state.gateways[0].spec.adoption = crosslink_desired::AdoptionPolicy::Adopt;
        assert!(sids(&state).contains(&"ElbAdoptLoadBalancers".to_string()));
    }

    #[test]
    fn sids_are_unique_and_alphanumeric_and_policies_fit_iam_limits() {
        let doc = generate(&examples(), DEFAULT_INSTANCE, None);
        for (name, account) in doc["accounts"].as_object().expect("accounts") {
            let policy = &account["permissionsPolicy"];
            let sids: Vec<&str> =
                policy["Statement"].as_array().unwrap().iter().map(|s| s["Sid"].as_str().unwrap()).collect();
            let unique: BTreeSet<&str> = sids.iter().copied().collect();
            assert_eq!(unique.len(), sids.len(), "{name}: duplicate Sids {sids:?}");
            assert!(sids.iter().all(|s| s.chars().all(|c| c.is_ascii_alphanumeric())), "{name}: {sids:?}");
            for sid in &sids {
                assert!(account["notes"].get(*sid).is_some(), "{name}: no note for {sid}");
            }
            // It fits a role's inline policy, or it comes in parts that each fit a managed
            // policy and together hold exactly its statements.
            let size = serde_json::to_string(policy).unwrap().len();
            match account.get("permissionsPolicyParts") {
                None => assert!(size <= MANAGED_POLICY_LIMIT, "{name}: {size} characters and no parts"),
                Some(parts) => {
                    let parts = parts.as_array().expect("parts");
                    assert!(parts.len() >= 2, "{name}: {} part(s)", parts.len());
                    let mut joined = Vec::new();
                    for part in parts {
                        let n = serde_json::to_string(part).unwrap().len();
                        assert!(n <= MANAGED_POLICY_LIMIT, "{name}: a part of {n} characters");
                        joined.extend(part["Statement"].as_array().unwrap().iter().cloned());
                    }
                    assert_eq!(&Value::Array(joined), &policy["Statement"], "{name}: parts differ from the policy");
                    assert!(account["notes"]["size"].as_str().unwrap().contains("permissionsPolicyParts"));
                }
            }
        }
    }

    // ---- changes of desired state: what the new policy must still allow ------------------------

    /// The examples without Link/cards (the only link of Account/cards) or, with `gateway`,
    /// without Gateway/edge and every link: the Accounts stay.
    fn removed(gateway: bool) -> DesiredState {
        let mut state = examples();
        state.links.retain(|l| !gateway && l.metadata.name != "cards");
        if gateway {
            state.gateways.clear();
        }
        state
    }

    /// The calls that clean up after what `removed(gateway)` took out, as AWS authorizes them,
    /// with the Account each is made in: what the planner's orphans pass deletes, and the reads
    /// the engine makes to find it (in every account it observes under the new state).
    fn removal_calls(f: &Fixture, new: &DesiredState, gateway: bool) -> Vec<(&'static str, Request)> {
        let (gw, svc) = ("shared-services", "cards");
        let none = BTreeMap::new;
        let ends = ctx(&[
            ("ec2:AccepterVpc", &f.svc_ec2(&format!("vpc/{}", f.svc_vpc))),
            ("ec2:RequesterVpc", &f.gw_ec2(&format!("vpc/{}", f.gw_vpc))),
        ]);
        let api = "/restapis/a1b2c3d4e5";
        let mut calls = vec![
            (
                gw,
                req(
                    "ec2:DeleteVpcPeeringConnection",
                    f.gw_ec2("vpc-peering-connection/pcx-0123456789abcdef0"),
                    merged(f.owned(), ends),
                ),
            ),
            (gw, req("ec2:DeleteRoute", f.gw_ec2(&format!("route-table/{}", f.gw_rtb)), none())),
            (svc, req("ec2:DeleteRoute", f.svc_ec2(&format!("route-table/{}", f.svc_rtb)), none())),
            (
                gw,
                req(
                    "elasticloadbalancing:DeleteListener",
                    f.elb(&format!("listener/net/{}/50dc6c495c0c9188/f2f7dc8efc522ab2", f.lb_name)),
                    f.owned(),
                ),
            ),
            (
                gw,
                req(
                    "elasticloadbalancing:DeleteTargetGroup",
                    f.elb("targetgroup/cl-cards-3f9a1c/73e2d6bc24d8a067"),
                    f.owned(),
                ),
            ),
            (gw, req("apigateway:DELETE", f.apigw(&format!("{api}/resources/r1s2t3")), f.owned())),
        ];
        if gateway {
            calls.extend([
                (gw, req("apigateway:DELETE", f.apigw(api), f.owned())),
                (gw, req("apigateway:DELETE", f.apigw("/vpclinks/x1y2z3"), f.owned())),
                (
                    gw,
                    req(
                        "ec2:DeleteVpcEndpointServiceConfigurations",
                        f.gw_ec2("vpc-endpoint-service/vpce-svc-0a1b2c3d"),
                        none(),
                    ),
                ),
                (
                    gw,
                    req(
                        "elasticloadbalancing:DeleteLoadBalancer",
                        f.elb(&format!("loadbalancer/net/{}/50dc6c495c0c9188", f.lb_name)),
                        f.owned(),
                    ),
                ),
            ]);
        }
        let scopes = crosslink_controller::scopes(new, DEFAULT_INSTANCE);
        for (account, region) in [(gw, &f.gw_region), (svc, &f.svc_region)] {
            let region = ctx(&[("aws:RequestedRegion", region)]);
            for op in ["DescribeVpcs", "DescribeVpcPeeringConnections", "DescribeRouteTables"] {
                calls.push((account, req(&format!("ec2:{op}"), "*".into(), region.clone())));
            }
            if scopes[account].gateway_side {
                for op in ["DescribeLoadBalancers", "DescribeListeners", "DescribeTargetGroups", "DescribeTags"] {
                    calls.push((account, req(&format!("elasticloadbalancing:{op}"), "*".into(), region.clone())));
                }
                for path in ["/restapis", "/vpclinks"] {
                    let apigw = format!("arn:aws:apigateway:{}::{path}", f.gw_region);
                    calls.push((account, req("apigateway:GET", apigw, none())));
                }
            }
        }
        calls
    }

    /// Removing a link, or a whole gateway, from desired state: applied first, the policy of the
    /// new state must still let the daemon find and delete what crosslink owns. Only routes are
    /// beyond it (IAM authorizes them on the route table, which is not crosslink's).
    #[test]
    fn the_new_policy_still_removes_what_left_desired_state_wherever_ownership_tags_allow() {
        let f = fixture(&examples());
        let mut failures = Vec::new();
        for gateway in [false, true] {
            let new = removed(gateway);
            let doc = generate(&new, DEFAULT_INSTANCE, None);
            for (account, r) in removal_calls(&f, &new, gateway) {
                if r.action == "ec2:DeleteRoute" {
                    continue;
                }
                if !allows(account_policy(&doc, account), &r) {
                    failures
                        .push(format!("without the {}: {account}: {r:?}", if gateway { "gateway" } else { "link" }));
                }
            }
        }
        assert!(failures.is_empty(), "denied under the new policy:\n{}", failures.join("\n"));
    }

    /// Routes can only follow the route tables desired state names, so a change that removes or
    /// adds them is covered by applying the union of both states' policies first: with it, the
    /// daemon removes the routes of what left and creates those of what joined, and nothing
    /// else is allowed that neither state allows.
    #[test]
    fn the_union_with_the_previous_state_covers_routes_that_leave_or_join() {
        let full = examples();
        let f = fixture(&full);
        let old = generate(&full, DEFAULT_INSTANCE, None);
        let (gw, svc) = ("shared-services", "cards");
        for gateway in [false, true] {
            let new_state = removed(gateway);
            let new = generate(&new_state, DEFAULT_INSTANCE, None);
            let both = union(&old, &new);
            let routes: Vec<(&str, Request)> = removal_calls(&f, &new_state, gateway)
                .into_iter()
                .filter(|(_, r)| r.action == "ec2:DeleteRoute")
                .collect();
            assert_eq!(routes.len(), 2);
            for (account, r) in &routes {
                let left = r.resource.contains(&f.svc_rtb) || gateway;
                assert_eq!(
                    allows(account_policy(&new, account), r),
                    !left,
                    "the new policy alone allows routes only in the route tables it names: {account}: {r:?}"
                );
                assert!(allows(account_policy(&both, account), r), "the union must allow {account}: {r:?}");
            }
            for (account, r) in removal_calls(&f, &new_state, gateway) {
                assert!(allows(account_policy(&both, account), &r), "the union must allow {account}: {r:?}");
            }
        }

        // Adding Link/cards back: its route table and peering need the union applied first.
        let before = generate(&removed(false), DEFAULT_INSTANCE, None);
        let both = union(&before, &old);
        let peering_ends = ctx(&[
            ("ec2:AccepterVpc", &f.svc_ec2(&format!("vpc/{}", f.svc_vpc))),
            ("ec2:RequesterVpc", &f.gw_ec2(&format!("vpc/{}", f.gw_vpc))),
        ]);
        let adding = [
            (svc, req("ec2:CreateRoute", f.svc_ec2(&format!("route-table/{}", f.svc_rtb)), BTreeMap::new())),
            (svc, req("ec2:AcceptVpcPeeringConnection", f.svc_ec2(&format!("vpc/{}", f.svc_vpc)), BTreeMap::new())),
            (
                gw,
                req(
                    "ec2:CreateVpcPeeringConnection",
                    f.gw_ec2("vpc-peering-connection/*"),
                    merged(peering_ends, f.request_tags()),
                ),
            ),
        ];
        for (account, r) in &adding {
            assert!(!allows(account_policy(&before, account), r), "the previous policy should not allow {r:?}");
            assert!(allows(account_policy(&both, account), r), "the union must allow {account}: {r:?}");
        }

        // Nothing beyond the two: each request is allowed by the union exactly when by either.
        let new = generate(&removed(true), DEFAULT_INSTANCE, None);
        let both = union(&old, &new);
        let foreign = ctx(&[(&format!("aws:ResourceTag/{MANAGED_BY}"), "someone-else")]);
        let mut probes: Vec<(&str, Request)> = removal_calls(&f, &removed(true), true);
        probes.extend(adding.iter().cloned());
        probes.extend([
            (svc, req("ec2:DeleteRoute", f.svc_ec2("route-table/rtb-unlisted"), BTreeMap::new())),
            (gw, req("ec2:CreateRoute", f.gw_ec2("route-table/rtb-unlisted"), BTreeMap::new())),
            (gw, req("elasticloadbalancing:DeleteLoadBalancer", f.elb("loadbalancer/net/x/1"), foreign.clone())),
            (gw, req("ec2:DeleteVpcPeeringConnection", f.gw_ec2("vpc-peering-connection/pcx-1"), foreign)),
        ]);
        for (account, r) in &probes {
            let either = allows(account_policy(&old, account), r) || allows(account_policy(&new, account), r);
            assert_eq!(allows(account_policy(&both, account), r), either, "{account}: {r:?}");
        }
        for role in [&old, &new] {
            for (name, a) in role["accounts"].as_object().unwrap() {
                let trust = &a["trustPolicy"]["Statement"][0];
                let union_trust = both["accounts"][name]["trustPolicy"]["Statement"].as_array().unwrap();
                assert!(union_trust.contains(trust), "{name}: the union keeps every trust statement");
            }
        }
        assert_eq!(both["controllerPolicy"], old["controllerPolicy"], "the same roles: the same controller policy");
    }

    #[test]
    fn a_union_keeps_sids_unique_and_says_which_statements_are_the_previous_state_s() {
        let full = examples();
        let mut moved = full.clone();
        moved.links.iter_mut().find(|l| l.metadata.name == "cards").unwrap().spec.service.route_table_ids =
            vec!["rtb-0c0c0c0c0c0c0c0c0".into()];
        let both = union(&generate(&full, DEFAULT_INSTANCE, None), &generate(&moved, DEFAULT_INSTANCE, None));
        let cards = &both["accounts"]["cards"];
        let sids: Vec<&str> = cards["permissionsPolicy"]["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Sid"].as_str().unwrap())
            .collect();
        let unique: BTreeSet<&str> = sids.iter().copied().collect();
        assert_eq!(unique.len(), sids.len(), "{sids:?}");
        let previous = "Ec2RoutesInListedRouteTablesNoTagConditionPrevious";
        assert!(sids.contains(&previous), "{sids:?}");
        assert!(cards["notes"][previous].as_str().unwrap().starts_with("for the previous desired state"));
        assert!(both["transition"].is_string());
    }

    #[test]
    fn examples_match_the_golden_output() {
        let golden = repo().join("crates/crosslink/tests/fixtures/iam-policy-examples.json");
        let got = serde_json::to_string_pretty(&generate(&examples(), DEFAULT_INSTANCE, None)).unwrap() + "\n";
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&golden, &got).expect("write golden");
        }
        let want = std::fs::read_to_string(&golden).expect("golden file (UPDATE_GOLDEN=1 writes it)");
        assert!(got == want, "iam-policy output changed; review and rerun with UPDATE_GOLDEN=1:\n{got}");
    }

    #[test]
    fn partitions_follow_the_region() {
        assert_eq!(partition("eu-central-1"), "aws");
        assert_eq!(partition("cn-north-1"), "aws-cn");
        assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
    }
}
