//! `crosslink iam-policy`: least-privilege IAM documents derived from desired state: the
//! controller's own policy (which roles it may assume), and per Account the role's trust policy
//! and a permissions policy limited to the calls crosslink makes there, with every change
//! conditioned on crosslink's ownership tag wherever AWS can evaluate one.
//!
//! What AWS can condition, per action, follows the Service Authorization Reference ("Actions,
//! resources, and condition keys for Amazon EC2 / Elastic Load Balancing V2 / Amazon API Gateway
//! Management"). Where it cannot, the statement is scoped by ARN instead (the VPCs, route tables,
//! stages and referenced load balancers and APIs named in desired state) and its `Sid` says so;
//! `notes` in the output explains each statement in words, keyed by `Sid` (IAM itself allows
//! no comments and only alphanumeric Sids).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use crosslink_plan::tags::{DEFAULT_INSTANCE, MANAGED_BY};
use crosslink_spec::{ApiTarget, DesiredState, Gateway, Link, LoadBalancerRef};
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
    let state = match crosslink_spec::load(&args.paths) {
        Ok(s) => s,
        Err(diags) => {
            crate::validate::print_diagnostics(&diags);
            return ExitCode::FAILURE;
        }
    };
    let PolicyFormat::Json = args.output;
    let doc = generate(&state, &args.instance, args.controller_principal.as_deref());
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", serde_json::to_string_pretty(&doc).expect("a JSON value serializes"));
    ExitCode::SUCCESS
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
    let mut accounts = serde_json::Map::new();
    let mut role_arns = BTreeSet::new();
    let mut direct = Vec::new();
    for account in &state.accounts {
        let name = &account.metadata.name;
        let work = AccountWork {
            gateways: state.gateways.iter().filter(|g| &g.spec.account == name).collect(),
            service_links: state.links.iter().filter(|l| &l.spec.service.account == name).collect(),
        };
        let place = Place {
            partition: partition(&account.spec.region),
            region: &account.spec.region,
            account_id: &account.spec.account_id,
        };
        let mut policy = permissions(state, &work, &place, instance);
        let size = serde_json::to_string(&policy.document()).map(|s| s.len()).unwrap_or_default();
        if size > MANAGED_POLICY_LIMIT {
            let limit = if size > INLINE_ROLE_POLICY_LIMIT {
                "the inline role policy limit too"
            } else {
                "not the inline role policy limit (10,240)"
            };
            policy.notes.insert(
                "size".into(),
                format!("{size} characters: over the managed policy limit (6,144), {limit}; attach it inline or split it by Sid"),
            );
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
        accounts.insert(
            name.clone(),
            json!({
                "accountId": account.spec.account_id,
                "region": account.spec.region,
                "sides": work.sides(),
                "roleArn": role_arn,
                "trustPolicy": trust,
                "permissionsPolicy": policy.document(),
                "notes": policy.notes,
            }),
        );
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

fn permissions(state: &DesiredState, work: &AccountWork<'_>, place: &Place<'_>, instance: &str) -> Policy {
    let mut p = Policy::new();
    let managed_res = format!("aws:ResourceTag/{MANAGED_BY}");
    let managed_req = format!("aws:RequestTag/{MANAGED_BY}");
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
    let tag_keys = list(tag_keys);
    let owned = || cond(&[("StringEquals", managed_res.clone(), json!(instance))]);
    let owned_tagging = || {
        cond(&[
            ("StringEquals", managed_res.clone(), json!(instance)),
            ("ForAllValues:StringLike", "aws:TagKeys".into(), tag_keys.clone()),
        ])
    };
    let tagged_request = |extra: &[(&str, String, Value)]| {
        let mut c = vec![
            ("StringEquals", managed_req.clone(), json!(instance)),
            ("ForAllValues:StringLike", "aws:TagKeys".into(), tag_keys.clone()),
        ];
        c.extend(extra.iter().cloned());
        cond(&c)
    };
    let in_region = || cond(&[("StringEquals", "aws:RequestedRegion".into(), json!(place.region))]);

    // ---- EC2: every account is observed (VPCs, peerings, route tables) -------------------------
    p.allow(
        "Ec2ReadNetworkNoResourceLevel",
        &["ec2:DescribeVpcs", "ec2:DescribeVpcPeeringConnections", "ec2:DescribeRouteTables"],
        vec!["*".into()],
        in_region(),
        "EC2 Describe* actions support no resource-level permissions: Resource must be *; limited to the Account's region",
    );

    // Route tables are the user's, not crosslink's: no ownership tag to condition on, so routes
    // are allowed in exactly the route tables named in desired state.
    let mut rtbs: BTreeSet<String> = BTreeSet::new();
    for g in &work.gateways {
        rtbs.extend(g.spec.route_table_ids.iter().map(|r| place.ec2(&format!("route-table/{r}"))));
    }
    for l in &work.service_links {
        rtbs.extend(l.spec.service.route_table_ids.iter().map(|r| place.ec2(&format!("route-table/{r}"))));
    }
    if !rtbs.is_empty() {
        p.allow(
            "Ec2RoutesInListedRouteTablesNoTagCondition",
            &["ec2:CreateRoute", "ec2:ReplaceRoute", "ec2:DeleteRoute"],
            rtbs.into_iter().collect(),
            json!({}),
            "route tables belong to the VPC owners, so no crosslink tag can be required: scoped to the route tables in desired state. When a link is removed, apply the regenerated policy only after the daemon has deleted its routes",
        );
    }

    // Gateway side: peering requested from the gateway VPC, tagged at creation, deleted by tag.
    if !work.gateways.is_empty() {
        let gw_vpcs: BTreeSet<String> =
            work.gateways.iter().map(|g| place.ec2(&format!("vpc/{}", g.spec.vpc_id))).collect();
        let accepters: BTreeSet<String> = work
            .gateways
            .iter()
            .flat_map(|g| state.links_of(&g.metadata.name))
            .filter_map(|l| vpc_arn(state, &l.spec.service.account, &l.spec.service.vpc_id))
            .collect();
        p.allow(
            "Ec2RequestPeeringFromGatewayVpc",
            &["ec2:CreateVpcPeeringConnection"],
            gw_vpcs.into_iter().collect(),
            json!({}),
            "the vpc resource of CreateVpcPeeringConnection is always the requester VPC: the gateway VPCs in desired state",
        );
        if !accepters.is_empty() {
            p.allow(
                "Ec2CreateTaggedPeeringToServiceVpcs",
                &["ec2:CreateVpcPeeringConnection"],
                vec![place.ec2("vpc-peering-connection/*")],
                tagged_request(&[("ArnEquals", "ec2:AccepterVpc".into(), list(accepters))]),
                "new peerings only to the service VPCs of this account's links, and only carrying the managed-by tag",
            );
        }
        p.allow(
            "Ec2TagPeeringsOnCreate",
            &["ec2:CreateTags"],
            vec![place.ec2("vpc-peering-connection/*")],
            tagged_request(&[("StringEquals", "ec2:CreateAction".into(), json!("CreateVpcPeeringConnection"))]),
            "tags in CreateVpcPeeringConnection's TagSpecifications are authorized as ec2:CreateTags with ec2:CreateAction",
        );
        p.allow(
            "Ec2RetagAndDeleteOwnedPeerings",
            &["ec2:CreateTags", "ec2:DeleteVpcPeeringConnection"],
            vec![place.ec2("vpc-peering-connection/*")],
            owned_tagging(),
            "only peerings that carry the managed-by tag (tag repairs and removal happen on the requester side)",
        );
    }

    // Service side: accept the gateway's request into the service VPC. The accepter sees none of
    // the requester's tags (AWS keeps tags per account), so the tag cannot be required here: the
    // peering is pinned by ec2:AccepterVpc and ec2:RequesterVpc instead.
    if !work.service_links.is_empty() {
        let svc_vpcs: BTreeSet<String> =
            work.service_links.iter().map(|l| place.ec2(&format!("vpc/{}", l.spec.service.vpc_id))).collect();
        let requesters: BTreeSet<String> = work
            .service_links
            .iter()
            .filter_map(|l| state.gateway(&l.spec.gateway))
            .filter_map(|g| vpc_arn(state, &g.spec.account, &g.spec.vpc_id))
            .collect();
        let (svc_vpcs_for_options, requesters_for_options) = (svc_vpcs.clone(), requesters.clone());
        p.allow(
            "Ec2AcceptPeeringIntoServiceVpc",
            &["ec2:AcceptVpcPeeringConnection"],
            svc_vpcs.iter().cloned().collect(),
            json!({}),
            "AcceptVpcPeeringConnection also authorizes the accepter VPC: the service VPCs in desired state",
        );
        p.allow(
            "Ec2AcceptPeeringFromGatewayVpcNoTagCondition",
            &["ec2:AcceptVpcPeeringConnection"],
            vec![place.ec2("vpc-peering-connection/*")],
            cond(&[
                ("ArnEquals", "ec2:AccepterVpc".into(), list(svc_vpcs)),
                ("ArnEquals", "ec2:RequesterVpc".into(), list(requesters)),
            ]),
            "the accepter cannot see the requester's tags, so no managed-by condition: only peerings between these gateway and service VPCs",
        );
        p.allow(
            "Ec2SetDnsResolutionOfPeeringsFromGatewayVpcs",
            &["ec2:ModifyVpcPeeringConnectionOptions"],
            vec![place.ec2("vpc-peering-connection/*")],
            cond(&[
                ("ArnEquals", "ec2:AccepterVpc".into(), list(svc_vpcs_for_options)),
                ("ArnEquals", "ec2:RequesterVpc".into(), list(requesters_for_options)),
            ]),
            "peering.allowDnsResolution (and resetting it when changed out of band): the accepter's side of peerings between these gateway and service VPCs",
        );
    }

    if work.gateways.is_empty() {
        return p;
    }

    // ---- Elastic Load Balancing v2 (gateway accounts) -------------------------------------------
    let lbs = place.elb("loadbalancer/net/*");
    let tgs = place.elb("targetgroup/*");
    let listeners = place.elb("listener/net/*");
    p.allow(
        "ElbReadNoResourceLevel",
        &[
            "elasticloadbalancing:DescribeLoadBalancers",
            "elasticloadbalancing:DescribeListeners",
            "elasticloadbalancing:DescribeTargetGroups",
            "elasticloadbalancing:DescribeTargetHealth",
            "elasticloadbalancing:DescribeTags",
        ],
        vec!["*".into()],
        in_region(),
        "ELBv2 Describe* actions support no resource-level permissions (DescribeLoadBalancers also serves API Gateway's VPC link checks)",
    );
    let named_lbs: BTreeSet<String> = work
        .gateways
        .iter()
        .filter_map(|g| match &g.spec.load_balancer {
            LoadBalancerRef::Name(n) => Some(place.elb(&format!("loadbalancer/net/{n}/*"))),
            LoadBalancerRef::Arn(_) => None,
        })
        .collect();
    if !named_lbs.is_empty() {
        p.allow(
            "ElbCreateTaggedInternalLoadBalancer",
            &["elasticloadbalancing:CreateLoadBalancer"],
            named_lbs.into_iter().collect(),
            tagged_request(&[("StringEquals", "elasticloadbalancing:Scheme".into(), json!("internal"))]),
            "only the NLB names in desired state, internal, carrying the managed-by tag",
        );
    }
    p.allow(
        "ElbCreateTaggedTargetGroups",
        &["elasticloadbalancing:CreateTargetGroup"],
        vec![tgs.clone()],
        tagged_request(&[]),
        "target groups are named by crosslink per link; the managed-by request tag is required",
    );
    p.allow(
        "ElbCreateTaggedListenersOnOwnedLoadBalancers",
        &["elasticloadbalancing:CreateListener"],
        vec![lbs.clone()],
        cond(&[
            ("StringEquals", managed_res.clone(), json!(instance)),
            ("StringEquals", managed_req.clone(), json!(instance)),
            ("ForAllValues:StringLike", "aws:TagKeys".into(), tag_keys.clone()),
        ]),
        "CreateListener is authorized on the load balancer: it must be crosslink's, and the listener carries the managed-by tag",
    );
    let referenced_lbs: BTreeSet<String> = work
        .gateways
        .iter()
        .filter_map(|g| match &g.spec.load_balancer {
            LoadBalancerRef::Arn(a) => Some(a.clone()),
            LoadBalancerRef::Name(_) => None,
        })
        .collect();
    if !referenced_lbs.is_empty() {
        p.allow(
            "ElbCreateTaggedListenersOnReferencedLoadBalancersNoResourceTag",
            &["elasticloadbalancing:CreateListener"],
            referenced_lbs.into_iter().collect(),
            tagged_request(&[]),
            "an NLB referenced by ARN is not crosslink's and carries no managed-by tag: scoped to exactly those ARNs; the listener itself must carry the tag",
        );
    }
    p.allow(
        "ElbTagOnCreate",
        &["elasticloadbalancing:AddTags"],
        vec![lbs.clone(), tgs.clone(), listeners.clone()],
        tagged_request(&[(
            "StringEquals",
            "elasticloadbalancing:CreateAction".into(),
            json!(["CreateListener", "CreateLoadBalancer", "CreateTargetGroup"]),
        )]),
        "tags passed to a Create* call are authorized as elasticloadbalancing:AddTags with elasticloadbalancing:CreateAction",
    );
    p.allow(
        "ElbChangeOwnedResources",
        &[
            "elasticloadbalancing:AddTags",
            "elasticloadbalancing:DeleteListener",
            "elasticloadbalancing:DeleteLoadBalancer",
            "elasticloadbalancing:DeleteTargetGroup",
            "elasticloadbalancing:DeregisterTargets",
            "elasticloadbalancing:ModifyListener",
            "elasticloadbalancing:ModifyTargetGroup",
            "elasticloadbalancing:RegisterTargets",
        ],
        vec![lbs, tgs, listeners],
        owned_tagging(),
        "every change to an existing load balancer, listener or target group requires the managed-by tag on it",
    );

    // ---- API Gateway (gateway accounts). IAM actions are HTTP verbs on resource paths. -----------
    p.allow(
        "ApiGatewayRead",
        &["apigateway:GET"],
        vec![
            place.apigw("/restapis"),
            place.apigw("/restapis/*"),
            place.apigw("/vpclinks"),
            place.apigw("/vpclinks/*"),
        ],
        json!({}),
        "GetRestApis, GetResources (methods embedded), GetStages, GetVpcLinks",
    );
    p.allow(
        "ApiGatewayCreateTaggedVpcLinks",
        &["apigateway:POST"],
        vec![place.apigw("/vpclinks")],
        tagged_request(&[]),
        "CreateVpcLink, carrying the managed-by tag",
    );
    p.allow(
        "ApiGatewayDeleteOwnedVpcLinks",
        &["apigateway:DELETE"],
        vec![place.apigw("/vpclinks/*")],
        owned(),
        "DeleteVpcLink, only VPC links carrying the managed-by tag",
    );
    p.allow(
        "VpcLinkEndpointServiceNoTagCondition",
        &[
            "ec2:CreateVpcEndpointServiceConfiguration",
            "ec2:DeleteVpcEndpointServiceConfigurations",
            "ec2:ModifyVpcEndpointServicePermissions",
        ],
        vec![place.ec2("vpc-endpoint-service/*")],
        json!({}),
        "API Gateway creates and deletes a REST VPC link's endpoint service with the caller's permissions, without crosslink's tags: no tag condition is possible",
    );
    p.allow(
        "VpcLinkEndpointServiceReadNoResourceLevel",
        &["ec2:DescribeVpcEndpointServiceConfigurations"],
        vec!["*".into()],
        in_region(),
        "needed by API Gateway to create and delete VPC links; Describe* has no resource-level permissions",
    );

    let stages: Vec<String> = work.gateways.iter().map(|g| g.spec.api.stage.clone()).collect();
    let stage_cond = ("StringEquals", "apigateway:Request/StageName".to_string(), list(stages));
    if work.gateways.iter().any(|g| matches!(g.spec.api.target, ApiTarget::Name(_))) {
        p.allow(
            "ApiGatewayCreateTaggedRestApis",
            &["apigateway:POST"],
            vec![place.apigw("/restapis")],
            tagged_request(&[]),
            "CreateRestApi, carrying the managed-by tag",
        );
        p.allow(
            "ApiGatewayEditOwnedRestApis",
            &["apigateway:POST", "apigateway:PUT"],
            vec![place.apigw("/restapis/*/resources/*")],
            owned(),
            "CreateResource, PutMethod, PutIntegration in REST APIs carrying the managed-by tag (resources, methods and integrations inherit the API's tags for authorization)",
        );
        p.allow(
            "ApiGatewayDeleteInOwnedRestApis",
            &["apigateway:DELETE"],
            vec![place.apigw("/restapis/*")],
            owned(),
            "DeleteRestApi, DeleteResource, DeleteMethod in REST APIs carrying the managed-by tag",
        );
        p.allow(
            "ApiGatewayDeployOwnedRestApisToListedStages",
            &["apigateway:POST"],
            vec![place.apigw("/restapis/*/deployments")],
            cond(&[("StringEquals", managed_res.clone(), json!(instance)), stage_cond.clone()]),
            "CreateDeployment in REST APIs carrying the managed-by tag, only to the stages in desired state",
        );
    }
    let referenced_apis: BTreeSet<&str> = work
        .gateways
        .iter()
        .filter_map(|g| match &g.spec.api.target {
            ApiTarget::Id(id) => Some(id.as_str()),
            ApiTarget::Name(_) => None,
        })
        .collect();
    if !referenced_apis.is_empty() {
        p.allow(
            "ApiGatewayEditReferencedRestApisNoResourceTag",
            &["apigateway:POST", "apigateway:PUT", "apigateway:DELETE"],
            referenced_apis.iter().map(|id| place.apigw(&format!("/restapis/{id}/resources/*"))).collect(),
            json!({}),
            "a REST API referenced by id is not crosslink's and its children inherit its tags, not crosslink's: scoped to exactly those APIs' resources (never the API itself)",
        );
        p.allow(
            "ApiGatewayDeployReferencedRestApisToListedStages",
            &["apigateway:POST"],
            referenced_apis.iter().map(|id| place.apigw(&format!("/restapis/{id}/deployments"))).collect(),
            cond(&[stage_cond]),
            "CreateDeployment in the REST APIs referenced by id, only to the stages in desired state",
        );
    }
    p.allow(
        "ApiGatewayTagStagesNoResourceTag",
        &["apigateway:PUT"],
        vec![place.apigw("/tags/*")],
        tagged_request(&[]),
        "TagResource on the stage (deployed-hash): the /tags resource type supports no aws:ResourceTag, so the request must carry the managed-by tag and only crosslink's keys",
    );
    p
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    fn examples() -> DesiredState {
        crosslink_spec::load(&[repo().join("manifests/examples")]).expect("the examples are valid")
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
    fn adapter_operations() -> BTreeSet<(String, String)> {
        let dir = repo().join("crates/aws/src");
        let mut out = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).expect("crates/aws/src") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("readable source");
            for wrapper in [".call(", ".write(", ".pages("] {
                let mut rest = text.as_str();
                while let Some(i) = rest.find(wrapper) {
                    rest = &rest[i + wrapper.len()..];
                    let mut literals = Vec::new();
                    let mut s = rest;
                    for _ in 0..2 {
                        s = s.trim_start();
                        let Some(body) = s.strip_prefix('"') else { break };
                        let Some(end) = body.find('"') else { break };
                        literals.push(body[..end].to_string());
                        s = body[end + 1..].trim_start().strip_prefix(',').unwrap_or("");
                    }
                    if let [service, op] = literals.as_slice() {
                        out.insert((service.clone(), op.clone()));
                    }
                }
            }
        }
        out
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

    enum Side {
        Gateway,
        Service,
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
            ("elbv2", "AddTags") => (
                Gateway,
                [lb, tg, listener]
                    .into_iter()
                    .map(|r| req("elasticloadbalancing:AddTags", r, merged(f.owned(), f.request_tags())))
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
                    ctx(&[("aws:TagKeys", MANAGED_BY), ("aws:TagKeys", "crosslink.dev/deployed-hash")]),
                );
                (Gateway, vec![req("apigateway:PUT", f.apigw(&format!("/tags/{encoded}")), tags)])
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
        // Guard against a scan that silently finds nothing (e.g. after a rename of the wrappers).
        assert!(ops.len() >= 40, "only {} operations found in crates/aws/src: {ops:?}", ops.len());
        for known in [("ec2", "CreateRoute"), ("elbv2", "DescribeTargetHealth"), ("apigateway", "TagResource")] {
            assert!(ops.contains(&(known.0.to_string(), known.1.to_string())), "{known:?} not found by the scan");
        }
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
                    Side::NoPermission => vec![],
                };
                for (name, policy) in targets {
                    if !allows(policy, r) {
                        failures.push(format!("{service_name}:{op} in {name}: {r:?} is not allowed"));
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
                "ELB in a service account",
                service,
                req(
                    "elasticloadbalancing:CreateTargetGroup",
                    format!("arn:aws:elasticloadbalancing:{}:{}:targetgroup/x/1", f.svc_region, f.svc_account),
                    f.request_tags(),
                ),
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
            let size = serde_json::to_string(policy).unwrap().len();
            assert!(size <= INLINE_ROLE_POLICY_LIMIT, "{name}: {size} characters");
        }
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
