//! The planner on its own: for each folder under `tests/golden/`, desired state
//! (`desired.yaml`, or the YAML files of a `desired/` folder) and observed AWS state
//! (`observed.json`) in, the plan as text out, compared with `plan.txt`. No AWS, no async.
//!
//! `UPDATE_GOLDEN=1 cargo test -p crosslink-plan --test golden` rewrites every `plan.txt`:
//! review each diff by hand, as what the planner should do in that situation.
//! `cargo run -p crosslink-cloud --example golden_worlds` writes the inputs of the cases it
//! knows (the in-memory AWS after converging, then changed as the case says); a case may also
//! be written by hand.
//!
//! The text pins each action (subject, account, verb, resource, reason, the operation with every
//! parameter, dependencies) and each subject's report. Actions are listed by subject and
//! resource, not in the order the planner emits them, and dependencies name the listed number:
//! the planner may be restructured (one module per resource kind) and emit in another order
//! without changing a golden file, as long as it plans the same actions with the same
//! dependencies.

use crosslink_plan::kinds::{
    ApiKeyOp, ApiResourceOp, AuthorizerOp, BasePathMappingOp, DomainNameOp, ListenerOp, LoadBalancerOp, MethodOp,
    PeeringOp, ResourcePolicyOp, RestApiOp, RouteOp, StageOp, TargetGroupOp, TargetsOp, UsagePlanOp, VpcLinkOp,
    WebAclOp,
};

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use crosslink_plan::observed::{HealthCheckSettings, Observed, Tags};
use crosslink_plan::op::{Op, Ref};
use crosslink_plan::{Action, Plan, Reason, Settings, Subject};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .expect("tests/golden")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

fn load(case: &Path) -> (crosslink_desired::DesiredState, Observed) {
    let folder = case.join("desired");
    let desired_path = if folder.is_dir() { folder } else { case.join("desired.yaml") };
    let desired = crosslink_desired::load(std::slice::from_ref(&desired_path))
        .unwrap_or_else(|e| panic!("{}: {e}", desired_path.display()));
    let json_path = case.join("observed.json");
    let json = std::fs::read_to_string(&json_path).unwrap_or_else(|e| panic!("{}: {e}", json_path.display()));
    let observed: Observed = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{}: {e}", json_path.display()));
    (desired, observed)
}

#[test]
fn plans_match_their_golden_text() {
    let cases = cases();
    assert!(cases.len() >= 20, "only {} golden cases", cases.len());
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let (desired, observed) = load(case);
        let plan = crosslink_plan::plan(&desired, &observed, &Settings::default());
        let text = render(&plan);
        // Planning is a function: the same inputs give the same plan.
        let again = crosslink_plan::plan(&desired, &observed, &Settings::default());
        assert_eq!(again, plan, "{name}: planning twice gave two plans");
        let golden = case.join("plan.txt");
        if update {
            std::fs::write(&golden, &text).unwrap();
        }
        match std::fs::read_to_string(&golden) {
            Ok(want) if want == text => {}
            Ok(want) => failures.push(format!("{name}:\n{}", diff(&want, &text))),
            Err(_) => failures.push(format!("{name}: no plan.txt (UPDATE_GOLDEN=1 writes it)\n{text}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} plans differ from their golden text (review, then rerun with UPDATE_GOLDEN=1):\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The observed states the cases read survive a JSON round trip.
#[test]
fn golden_observations_round_trip_through_json() {
    for case in cases() {
        let (_, observed) = load(&case);
        let json = serde_json::to_string(&observed).unwrap();
        let back: Observed = serde_json::from_str(&json).unwrap();
        assert_eq!(back, observed, "{}", case.display());
    }
}

/// A line diff (longest common subsequence): `-` golden, `+` now, with line numbers.
fn diff(want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    // lcs[i][j]: the longest common subsequence of w[i..] and g[j..].
    let mut lcs = vec![vec![0usize; g.len() + 1]; w.len() + 1];
    for i in (0..w.len()).rev() {
        for j in (0..g.len()).rev() {
            lcs[i][j] = if w[i] == g[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < w.len() || j < g.len() {
        if i < w.len() && j < g.len() && w[i] == g[j] {
            (i, j) = (i + 1, j + 1);
        } else if j == g.len() || (i < w.len() && lcs[i + 1][j] >= lcs[i][j + 1]) {
            let _ = writeln!(out, "  {:>4} - {}", i + 1, w[i]);
            i += 1;
        } else {
            let _ = writeln!(out, "  {:>4} + {}", j + 1, g[j]);
            j += 1;
        }
    }
    out
}

// ---- the plan as text -------------------------------------------------------------------------

fn subject_rank(s: &Subject) -> u8 {
    match s {
        Subject::Gateway(_) => 0,
        Subject::Link(_) => 1,
        Subject::Peering(..) => 2,
        Subject::Consumer(_) => 3,
    }
}

/// An action as it is listed: what (verb, resource, reason), and the call (account, operation).
fn action_lines(a: &Action) -> (String, String) {
    let Action { id: _, subject: _, account, resource, verb, reason, op, deps: _ } = a;
    (format!("{} {resource}: {}", verb.as_str(), reason_text(reason)), format!("in {account}: {}", op_text(op)))
}

/// Where an action is listed: by subject, then resource (a parent path before its children),
/// then everything else it says.
fn sort_key(a: &Action) -> (u8, Subject, String, String, (String, String), usize) {
    (subject_rank(&a.subject), a.subject.clone(), a.resource.clone(), a.verb.as_str().into(), action_lines(a), a.id)
}

fn render(plan: &Plan) -> String {
    let mut order: Vec<&Action> = plan.actions.iter().map(|a| &**a).collect();
    order.sort_by_cached_key(|a| sort_key(a));
    let number: BTreeMap<usize, usize> = order.iter().enumerate().map(|(n, a)| (a.id, n + 1)).collect();

    let mut subjects: Vec<&Subject> = plan.reports.keys().chain(plan.actions.iter().map(|a| &a.subject)).collect();
    subjects.sort_by_key(|s| (subject_rank(s), (*s).clone()));
    subjects.dedup();

    let mut out = String::new();
    for s in subjects {
        let report = plan.reports.get(s);
        let _ = writeln!(out, "{s}{}", if report.is_none() { " [no report]" } else { "" });
        let actions: Vec<&&Action> = order.iter().filter(|a| &a.subject == s).collect();
        for a in &actions {
            let (what, call) = action_lines(a);
            let _ = writeln!(out, "  [{}] {what}", number[&a.id]);
            let _ = writeln!(out, "      {call}");
            if !a.deps.is_empty() {
                let mut after: Vec<usize> = a.deps.iter().map(|d| number[d]).collect();
                after.sort_unstable();
                let after: Vec<String> = after.iter().map(|n| format!("[{n}]")).collect();
                let _ = writeln!(out, "      after {}", after.join(" "));
            }
        }
        if let Some(r) = report {
            let crosslink_plan::Report { problems, waiting, retained, warnings, resources } = r;
            for p in problems {
                let _ = writeln!(out, "  problem {}: {}", p.code, p.message);
                if let Some(h) = &p.hint {
                    let _ = writeln!(out, "    hint: {h}");
                }
            }
            for w in waiting {
                let _ = writeln!(out, "  waiting: {w}");
            }
            for k in retained {
                let _ = writeln!(out, "  kept: {k}");
            }
            for w in warnings {
                let _ = writeln!(out, "  warning: {w}");
            }
            for (k, v) in resources {
                let _ = writeln!(out, "  resource {k}: {v}");
            }
        }
        if actions.is_empty() && report.is_none_or(|r| r.problems.is_empty() && r.waiting.is_empty()) {
            let _ = writeln!(out, "  nothing to do");
        }
        out.push('\n');
    }
    let c = plan.counts();
    let _ = writeln!(
        out,
        "{} actions: {} to create, {} to change, {} to delete; in sync: {}; problems: {}",
        plan.actions.len(),
        c.create,
        c.update,
        c.delete,
        yes_no(plan.in_sync()),
        yes_no(plan.has_problems())
    );
    let pruned = plan.pruned_links();
    if !pruned.is_empty() {
        let _ = writeln!(out, "pruned links: {}", pruned.join(", "));
    }
    for (id, what) in &plan.weakening {
        let _ = writeln!(out, "weakens [{}]: {what}", number[id]);
    }
    out
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// The reason in full (the CLI shortens long values; a golden file must not).
fn reason_text(r: &Reason) -> String {
    match r {
        Reason::Missing => "missing".into(),
        Reason::Drift { field, live, desired } => format!("drift of {field}: live {live}, desired {desired}"),
        Reason::Changed { field, live, desired } => format!("changed {field}: live {live}, desired {desired}"),
        Reason::NoLongerDesired => "no longer desired".into(),
        Reason::Replaced { why } => format!("replaced: {why}"),
        Reason::FollowsChanges { why } => format!("follows changes: {why}"),
        Reason::Adopted { rule } => format!("built without crosslink, matched {rule}"),
        Reason::Released => "released".to_string(),
    }
}

fn r(x: &Ref) -> String {
    match x {
        Ref::Known(id) => id.clone(),
        Ref::Pending(what) => format!("<id of {what}>"),
    }
}

fn tags(t: &Tags) -> String {
    let kv: Vec<String> = t.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", kv.join(", "))
}

fn list<T: ToString>(xs: &[T]) -> String {
    let s: Vec<String> = xs.iter().map(ToString::to_string).collect();
    format!("[{}]", s.join(", "))
}

fn targets(t: &[(std::net::Ipv4Addr, u16)]) -> String {
    list(&t.iter().map(|(ip, port)| format!("{ip}:{port}")).collect::<Vec<_>>())
}

fn health(h: &HealthCheckSettings) -> String {
    let HealthCheckSettings { protocol, path, port, interval_seconds, healthy_threshold, unhealthy_threshold } = h;
    format!(
        "{{protocol={protocol}, path={}, port={port}, intervalSeconds={interval_seconds}, healthyThreshold={healthy_threshold}, unhealthyThreshold={unhealthy_threshold}}}",
        path.as_deref().unwrap_or("-")
    )
}

/// The operation with every parameter. Destructured in full: a new parameter that is not shown
/// here does not compile.
fn plan_stage(s: &crosslink_plan::kinds::usage_plan::PlanStage) -> String {
    let throttle: Vec<String> =
        s.throttle.iter().map(|(k, t)| format!("{k}={}/{}", t.rate_limit, t.burst_limit)).collect();
    format!("{}:{} throttle={{{}}}", r(&s.api_id), s.stage, throttle.join(", "))
}

/// A listener's TLS settings, when it has them.
fn listener_tls(tls: &Option<crosslink_plan::kinds::listener::ListenerTls>) -> String {
    tls.as_ref()
        .map(|t| format!(" certificateArn={} sslPolicy={}", t.certificate_arn, t.ssl_policy))
        .unwrap_or_default()
}

/// Where targets are, when not AZ `all` (outside the group's VPC, the default).
fn zones(p: &crosslink_plan::kinds::targets::Placement) -> String {
    use crosslink_plan::kinds::targets::Placement;
    match p {
        Placement::OutsideVpc => String::new(),
        Placement::InVpc => " zones=in-vpc".into(),
        Placement::Zones(z) => {
            let z: Vec<String> = z.iter().map(|(ip, zone)| format!("{ip}={zone}")).collect();
            format!(" zones={{{}}}", z.join(", "))
        }
    }
}

fn op_text(op: &Op) -> String {
    let name = op.name();
    let args = match op {
        // The privateLink kinds: their parameters as the plan's JSON shows them.
        Op::EndpointService(_) | Op::SecurityGroup(_) | Op::Endpoint(_) => {
            let mut v = serde_json::to_value(op).expect("an op serializes");
            v.as_object_mut().expect("an object").remove("op");
            v.to_string()
        }
        Op::Peering(PeeringOp::CreateVpcPeeringConnection {
            vpc_id,
            peer_vpc_id,
            peer_owner_id,
            peer_region,
            tags: t,
        }) => format!(
            "vpcId={vpc_id} peerVpcId={peer_vpc_id} peerOwnerId={peer_owner_id} peerRegion={peer_region} tags={}",
            tags(t)
        ),
        Op::Peering(PeeringOp::AcceptVpcPeeringConnection { peering_id }) => format!("peeringId={}", r(peering_id)),
        Op::Peering(PeeringOp::DeleteVpcPeeringConnection { peering_id }) => format!("peeringId={peering_id}"),
        Op::Peering(PeeringOp::SetPeeringDnsResolution { peering_id, allow }) => {
            format!("peeringId={} allowDnsResolutionFromRemoteVpc={allow}", r(peering_id))
        }
        Op::Route(RouteOp::CreateRoute { route_table_id, destination, peering_id }) => {
            format!("routeTableId={route_table_id} destination={destination} peeringId={}", r(peering_id))
        }
        Op::Route(RouteOp::ReplaceRoute { route_table_id, destination, peering_id }) => {
            format!("routeTableId={route_table_id} destination={destination} peeringId={}", r(peering_id))
        }
        Op::Route(RouteOp::DeleteRoute { route_table_id, destination }) => {
            format!("routeTableId={route_table_id} destination={destination}")
        }
        Op::LoadBalancer(LoadBalancerOp::CreateLoadBalancer { name, subnet_ids, tags: t }) => {
            format!("name={name} subnetIds={} tags={}", list(subnet_ids), tags(t))
        }
        Op::LoadBalancer(LoadBalancerOp::DeleteLoadBalancer { arn }) => format!("arn={arn}"),
        Op::TargetGroup(TargetGroupOp::CreateTargetGroup { name, vpc_id, port, health_check, tags: t }) => {
            format!("name={name} vpcId={vpc_id} port={port} healthCheck={} tags={}", health(health_check), tags(t))
        }
        Op::TargetGroup(TargetGroupOp::ModifyTargetGroup { arn, health_check }) => {
            format!("arn={arn} healthCheck={}", health(health_check))
        }
        Op::TargetGroup(TargetGroupOp::DeleteTargetGroup { arn }) => format!("arn={arn}"),
        Op::Targets(TargetsOp::RegisterTargets { target_group_arn, targets: t, placement }) => {
            format!("targetGroupArn={} targets={}{}", r(target_group_arn), targets(t), zones(placement))
        }
        Op::Targets(TargetsOp::DeregisterTargets { target_group_arn, targets: t, placement }) => {
            format!("targetGroupArn={target_group_arn} targets={}{}", targets(t), zones(placement))
        }
        Op::Listener(ListenerOp::CreateListener { load_balancer_arn, port, target_group_arn, tls, tags: t }) => {
            format!(
                "loadBalancerArn={} port={port} targetGroupArn={}{}{} tags={}",
                r(load_balancer_arn),
                r(target_group_arn),
                if tls.is_some() { " protocol=TLS" } else { "" },
                listener_tls(tls),
                tags(t)
            )
        }
        Op::Listener(ListenerOp::ModifyListener { arn, port, target_group_arn, tls, protocol_changes }) => {
            let protocol = match (protocol_changes, tls) {
                (false, _) => "",
                (true, Some(_)) => " protocol=TLS",
                (true, None) => " protocol=TCP",
            };
            format!("arn={arn} port={port} targetGroupArn={}{}{protocol}", r(target_group_arn), listener_tls(tls))
        }
        Op::Listener(ListenerOp::DeleteListener { arn }) => format!("arn={arn}"),
        Op::LoadBalancer(LoadBalancerOp::AddElbTags { arn, tags: t }) => format!("arn={arn} tags={}", tags(t)),
        Op::Peering(PeeringOp::CreateEc2Tags { resource_id, tags: t }) => {
            format!("resourceId={resource_id} tags={}", tags(t))
        }
        Op::LoadBalancer(LoadBalancerOp::RemoveElbTags { arn, keys }) => format!("arn={arn} keys={}", keys.join(",")),
        Op::Peering(PeeringOp::DeleteEc2Tags { resource_id, keys }) => {
            format!("resourceId={resource_id} keys={}", keys.join(","))
        }
        Op::VpcLink(VpcLinkOp::CreateVpcLink { name, load_balancer_arn, tags: t }) => {
            format!("name={name} loadBalancerArn={} tags={}", r(load_balancer_arn), tags(t))
        }
        Op::VpcLink(VpcLinkOp::DeleteVpcLink { id }) => format!("id={id}"),
        Op::VpcLink(VpcLinkOp::TagVpcLink { id, tags: t }) => format!("id={id} tags={}", tags(t)),
        Op::VpcLink(VpcLinkOp::UntagVpcLink { id, keys }) => format!("id={id} keys={}", keys.join(",")),
        Op::RestApi(RestApiOp::CreateRestApi { name, tags: t }) => format!("name={name} tags={}", tags(t)),
        Op::RestApi(RestApiOp::DeleteRestApi { id }) => format!("id={id}"),
        Op::RestApi(RestApiOp::TagRestApi { id, tags: t }) => format!("id={id} tags={}", tags(t)),
        Op::RestApi(RestApiOp::UntagRestApi { id, keys }) => format!("id={id} keys={}", keys.join(",")),
        Op::ApiResource(ApiResourceOp::CreateResource { rest_api_id, parent_id, path_part, path }) => {
            format!("restApiId={} parentId={} pathPart={path_part} path={path}", r(rest_api_id), r(parent_id))
        }
        Op::ApiResource(ApiResourceOp::DeleteResource { rest_api_id, resource_id, path }) => {
            format!("restApiId={rest_api_id} resourceId={resource_id} path={path}")
        }
        Op::Method(MethodOp::PutProxyMethod {
            rest_api_id,
            resource_id,
            path,
            http_method,
            greedy,
            uri,
            vpc_link_id,
            authorization_type,
            authorizer_id,
            authorization_scopes,
            api_key_required,
            insecure_skip_verification,
            timeout_millis,
            replace,
        }) => {
            // Shown when not the default, so that cases without protection read as before.
            let mut protection = if authorization_type != "NONE" || *api_key_required || *replace {
                format!(" authorization={authorization_type} apiKeyRequired={api_key_required} replace={replace}")
            } else {
                String::new()
            };
            if let Some(id) = authorizer_id {
                protection.push_str(&format!(" authorizerId={} scopes={}", r(id), authorization_scopes.join(",")));
            }
            if *insecure_skip_verification {
                protection.push_str(" tlsConfig.insecureSkipVerification=true");
            }
            if let Some(t) = timeout_millis {
                protection.push_str(&format!(" timeoutInMillis={t}"));
            }
            format!(
                "restApiId={} resourceId={} path={path} httpMethod={http_method} greedy={greedy} uri={uri} vpcLinkId={}{protection}",
                r(rest_api_id),
                r(resource_id),
                r(vpc_link_id)
            )
        }
        Op::Method(MethodOp::DeleteMethod { rest_api_id, resource_id, path, http_method }) => {
            format!("restApiId={rest_api_id} resourceId={resource_id} path={path} httpMethod={http_method}")
        }
        Op::Authorizer(AuthorizerOp::CreateAuthorizer { rest_api_id, name, settings }) => format!(
            "restApiId={} name={name} settings={}",
            r(rest_api_id),
            serde_json::to_string(settings).expect("serializes")
        ),
        Op::Authorizer(AuthorizerOp::UpdateAuthorizer { rest_api_id, id, name, patches }) => format!(
            "restApiId={rest_api_id} id={id} name={name} patches={}",
            patches.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
        ),
        Op::Authorizer(AuthorizerOp::DeleteAuthorizer { rest_api_id, id, name }) => {
            format!("restApiId={rest_api_id} id={id} name={name}")
        }
        Op::Stage(StageOp::CreateDeployment { rest_api_id, stage, description, stage_tags }) => format!(
            "restApiId={} stage={stage} description={description:?} stageTags={}",
            r(rest_api_id),
            tags(stage_tags)
        ),
        Op::WebAcl(WebAclOp::AssociateWebAcl { rest_api_id, stage, web_acl_arn }) => {
            format!("restApiId={} stage={stage} webAclArn={web_acl_arn}", r(rest_api_id))
        }
        Op::WebAcl(WebAclOp::DisassociateWebAcl { rest_api_id, stage }) => {
            format!("restApiId={} stage={stage}", r(rest_api_id))
        }
        Op::DomainName(DomainNameOp::CreateDomainName {
            name,
            certificate_arn,
            security_policy,
            truststore,
            tags: t,
        }) => {
            format!(
                "name={name} certificateArn={certificate_arn} securityPolicy={security_policy} truststore={} tags={}",
                serde_json::to_string(truststore).expect("serializes"),
                tags(t)
            )
        }
        Op::DomainName(DomainNameOp::UpdateDomainName { name, patches }) => {
            format!("name={name} patches=[{}]", patches.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
        }
        Op::DomainName(DomainNameOp::DeleteDomainName { name }) => format!("name={name}"),
        Op::BasePathMapping(BasePathMappingOp::CreateBasePathMapping {
            domain_name,
            base_path,
            rest_api_id,
            stage,
        }) => {
            format!("domainName={domain_name} basePath={base_path} restApiId={} stage={stage}", r(rest_api_id))
        }
        Op::BasePathMapping(BasePathMappingOp::UpdateBasePathMapping { domain_name, base_path, patches }) => format!(
            "domainName={domain_name} basePath={base_path} patches=[{}]",
            patches.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        ),
        Op::BasePathMapping(BasePathMappingOp::DeleteBasePathMapping { domain_name, base_path }) => {
            format!("domainName={domain_name} basePath={base_path}")
        }
        Op::UsagePlan(UsagePlanOp::CreateUsagePlan { name, description, throttle, quota, api_stages, tags: t }) => {
            format!(
                "name={name} description={description:?} throttle={} quota={} apiStages=[{}] tags={}",
                serde_json::to_string(throttle).expect("serializes"),
                serde_json::to_string(quota).expect("serializes"),
                api_stages.iter().map(plan_stage).collect::<Vec<_>>().join(", "),
                tags(t)
            )
        }
        Op::UsagePlan(UsagePlanOp::UpdateUsagePlan { id, name, patches }) => format!(
            "id={id} name={name} patches=[{}]",
            patches.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        ),
        Op::UsagePlan(UsagePlanOp::AddApiStage { usage_plan_id, stage }) => {
            format!("usagePlanId={} add={}", r(usage_plan_id), plan_stage(stage))
        }
        Op::UsagePlan(UsagePlanOp::RemoveApiStage { usage_plan_id, api_id, stage }) => {
            format!("usagePlanId={usage_plan_id} remove={api_id}:{stage}")
        }
        Op::UsagePlan(UsagePlanOp::DeleteUsagePlan { id, name }) => format!("id={id} name={name}"),
        Op::ApiKey(ApiKeyOp::CreateApiKey { name, description, enabled, tags: t }) => {
            format!("name={name} description={description:?} enabled={enabled} tags={}", tags(t))
        }
        Op::ApiKey(ApiKeyOp::CreateUsagePlanKey { usage_plan_id, key_id, key_name }) => {
            format!("usagePlanId={} keyId={} keyName={key_name}", r(usage_plan_id), r(key_id))
        }
        Op::ApiKey(ApiKeyOp::UpdateApiKey { id, name, patches }) => format!(
            "id={id} name={name} patches=[{}]",
            patches.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        ),
        Op::ApiKey(ApiKeyOp::DeleteUsagePlanKey { usage_plan_id, key_id, key_name }) => {
            format!("usagePlanId={usage_plan_id} keyId={key_id} keyName={key_name}")
        }
        Op::ApiKey(ApiKeyOp::DeleteApiKey { id, name }) => format!("id={id} name={name}"),
        Op::ResourcePolicy(ResourcePolicyOp::PutRestApiPolicy { rest_api_id, policy }) => {
            format!("restApiId={} policy={policy}", r(rest_api_id))
        }
        Op::Stage(StageOp::UpdateStage { rest_api_id, stage, patches, tag_first, tag_after }) => format!(
            "restApiId={} stage={stage} patches=[{}] tagFirst={} tagAfter={}",
            r(rest_api_id),
            patches.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            tag_first.as_ref().map_or("-".into(), tags),
            tag_after.as_ref().map_or("-".into(), tags),
        ),
    };
    format!("{name} {args}")
}
