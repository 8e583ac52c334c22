//! A gateway's stage and the deployment it serves.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::{Fills, Reason, Verb};
use crate::op::{Op, Output};
use crate::planner::{ApiCx, Planner};
use crate::tags::{DEPLOYED_HASH, MANAGED_BY};
use super::KindOp;
use sha2::{Digest, Sha256};
use crate::op::{Patch, Ref, Service};
use crate::observed::Tags;

// ---- What is observed ------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Stage {
    pub name: String,
    pub deployment_id: Option<String>,
    pub tags: Tags,
    /// Its settings (older observations, golden inputs among them, lack them: AWS's defaults).
    #[serde(default, skip_serializing_if = "LiveStageSettings::is_default")]
    pub settings: LiveStageSettings,
}

/// What a stage's settings are in AWS.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LiveStageSettings {
    /// By `<resource path>/<HTTP method>` as AWS keys them (`*/*` for the whole stage,
    /// `~1payments/GET` for one method).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub method_settings: BTreeMap<String, MethodSetting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log: Option<AccessLog>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tracing_enabled: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    /// The WAF web ACL associated with the stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_acl_arn: Option<String>,
}

impl LiveStageSettings {
    pub fn is_default(&self) -> bool {
        *self == LiveStageSettings::default()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MethodSetting {
    pub throttling_rate_limit: Option<f64>,
    pub throttling_burst_limit: Option<i64>,
    /// `OFF` when not reported.
    pub logging_level: Option<String>,
    #[serde(default)]
    pub data_trace_enabled: bool,
    #[serde(default)]
    pub metrics_enabled: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessLog {
    pub destination_arn: Option<String>,
    pub format: Option<String>,
}

/// API Gateway's settings of the whole account and region (GetAccount), read where a Gateway
/// lives: logging to CloudWatch needs the account's CloudWatch Logs role.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiGatewayAccount {
    pub cloudwatch_role_arn: Option<String>,
}

// ---- Operations -------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum StageOp {
    /// CreateDeployment to the stage (creating the stage if needed), then tag the stage with the
    /// hash of what was deployed so that an interrupted pass deploys again.
    CreateDeployment {
        rest_api_id: Ref,
        stage: String,
        description: String,
        stage_tags: BTreeMap<String, String>,
    },
    /// UpdateStage with the settings that differ (in effect at once, no deployment), and the
    /// stage's `crosslink.dev/stage-settings` tag: the groups crosslink manages. `tag_first` is
    /// written before the update with every group the change sets, so that a pass cut off after
    /// it still remembers them; `tag_after` once the groups it resets are reset.
    UpdateStage {
        rest_api_id: Ref,
        stage: String,
        patches: Vec<Patch>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tag_first: Option<Tags>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tag_after: Option<Tags>,
    },
}

impl KindOp for StageOp {
    fn service(&self) -> Service {
        Service::ApiGateway
    }

    fn name(&self) -> &'static str {
        match self {
            Self::CreateDeployment { .. } => "CreateDeployment",
            Self::UpdateStage { .. } => "UpdateStage",
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::CreateDeployment { rest_api_id, stage, .. } | Self::UpdateStage { rest_api_id, stage, .. } => {
                format!("{rest_api_id}/{stage}")
            }
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        match self {
            Self::CreateDeployment { rest_api_id, .. } | Self::UpdateStage { rest_api_id, .. } => vec![rest_api_id],
        }
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Self::CreateDeployment { rest_api_id, .. } | Self::UpdateStage { rest_api_id, .. } => vec![rest_api_id],
        }
    }

    fn lets_chain(&self, state: Option<&str>) -> bool {
        let _ = state;
        true
    }

    fn on_new_resource(&self) -> bool {
        match self {
            Self::CreateDeployment { rest_api_id, .. } | Self::UpdateStage { rest_api_id, .. } => {
                rest_api_id.known().is_none()
            }
        }
    }

    fn is_delete(&self) -> bool {
        false
    }
}

// ---- Planning: names and comparisons ----------------------------------------------------------

/// The stage tag that records what was deployed: a hash over the methods (`<method> <path>
/// <uri>`, in order) and, last, the VPC link line.
pub(crate) fn deployed_hash(mut lines: Vec<String>, vpc_link_line: &str) -> String {
    lines.sort();
    let mut h = Sha256::new();
    for l in lines.iter().map(String::as_str).chain([vpc_link_line]) {
        h.update(l.as_bytes());
        h.update(b"\n");
    }
    h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

// ---- Clean-up and tags (read by the planner's generic machinery) ------------------------------

/// A stage is removed with its REST API; a deployment is never deleted.
pub(crate) use crate::planner::nothing_to_prune as prunable;
pub(crate) use crate::planner::nothing_first as before_delete;
pub(crate) use crate::planner::untagged as tag_op;
pub(crate) use crate::planner::not_releasable as untag_op;

// ---- Planning (the API stage) -----------------------------------------------------------------

/// The deployment this plan makes, if any: the listeners links leave go after it.
pub(crate) type Out<'a> = Option<usize>;

/// The deployment of the API to the gateway's stage: after every change to the API, or when the
/// stage does not carry the hash of what is desired (`deployed_hash`). An API without methods
/// cannot be deployed.
pub(crate) fn plan<'a>(p: &mut Planner<'a>, cx: &mut ApiCx<'a, '_>) -> Option<()> {
    logging_role(p, cx)?;
    plan_deployment(p, cx);
    plan_settings(p, cx);
    Some(())
}

/// Logging to CloudWatch (access logs to a log group, execution logs) needs the account-level
/// CloudWatch Logs role of API Gateway: without it AWS refuses the stage update. A blocking
/// problem of the gateway whose hint is the fix.
fn logging_role(p: &mut Planner<'_>, cx: &ApiCx<'_, '_>) -> Option<()> {
    let st = &cx.gw.gw.spec.api.stage_settings;
    let to_logs = st.access_logs.as_ref().is_some_and(|a| a.destination_arn.split(':').nth(2) == Some("logs"));
    let execution = st.execution_logs.is_some_and(|e| e.level != crosslink_desired::LogLevel::Off);
    let Some(account) = &cx.gw.state.api_gateway_account else { return Some(()) };
    if !(to_logs || execution) || account.cloudwatch_role_arn.as_deref().is_some_and(|r| !r.is_empty()) {
        return Some(());
    }
    let what = if execution { "execution logs" } else { "access logs to CloudWatch Logs" };
    p.problem(
        &cx.subject,
        "CloudWatchRoleMissing",
        format!(
            "the stage's {what} need API Gateway's CloudWatch Logs role in account {} ({}), and none is set",
            cx.gw.state.account_id, cx.gw.state.region
        ),
        Some(format!(
            "create a role trusted by apigateway.amazonaws.com with the managed policy AmazonAPIGatewayPushToCloudWatchLogs, then: aws apigateway update-account --region {} --patch-operations op=replace,path=/cloudwatchRoleArn,value=<role ARN> (once per account and region; crosslink does not change account settings)",
            cx.gw.state.region
        )),
    );
    None
}

fn plan_deployment<'a>(p: &mut Planner<'a>, cx: &mut ApiCx<'a, '_>) {
    let (gw, subject, account) = (cx.gw, &cx.subject, cx.gw.account.as_str());
    let (api, vpc_link) = (&gw.out.rest_api, &gw.out.vpc_link);
    let stage_name = &gw.gw.spec.api.stage;
    let lines: Vec<String> = cx
        .want
        .iter()
        .flat_map(|(p, ms)| {
            ms.iter().map(move |w| {
                format!("{} {p} {}{}{}", w.method, w.uri, w.protection.hash_suffix(), w.backend.hash_suffix())
            })
        })
        .chain(cx.out.authorizer.hash_lines.iter().cloned())
        .chain(cx.out.resource_policy.iter().cloned())
        .collect();
    let vpc_link_line = format!("vpc-link {}", vpc_link.id);
    let hash = deployed_hash(lines.clone(), &vpc_link_line);
    // What the hash covers that this plan creates (the load balancer's DNS name in URIs, the VPC
    // link id): the engine takes the hash again once they are known.
    let mut hash_fills: Vec<(String, usize, Output)> = cx.dns_fill.clone().into_iter().collect();
    if let Some((by, output)) = vpc_link.id.made_by() {
        hash_fills.push((vpc_link.id.to_string(), by, output));
    }
    if cx.want.values().all(Vec::is_empty) {
        return;
    }
    let stage = api.api.and_then(|a| a.stages.iter().find(|s| &s.name == stage_name));
    let deployed = stage.and_then(|s| s.tags.get(DEPLOYED_HASH)).map(String::as_str);
    if cx.changes.is_empty() && deployed == Some(hash.as_str()) {
        return;
    }
    let reason = if stage.is_some_and(|s| !s.tags.contains_key(MANAGED_BY)) {
        // Deployed by hand or by another tool until now: crosslink takes over its deployments.
        Reason::Adopted { rule: format!("stage by name {stage_name}") }
    } else if !cx.changes.is_empty() {
        Reason::FollowsChanges { why: "the API changed".into() }
    } else if stage.is_none() {
        Reason::Missing
    } else {
        Reason::Drift { field: "stage deployment".into(), live: deployed.unwrap_or("(unknown)").into(), desired: hash.clone() }
    };
    let mut stage_tags = BTreeMap::new();
    stage_tags.insert(MANAGED_BY.to_string(), p.s.instance.clone());
    stage_tags.insert(DEPLOYED_HASH.to_string(), hash);
    let deps: Vec<Option<usize>> = cx.changes.iter().copied().map(Some).collect();
    let a = p.add(
        subject,
        account,
        format!("stage {stage_name}"),
        Verb::Deploy,
        reason,
        Op::Stage(StageOp::CreateDeployment {
            rest_api_id: api.id.clone(),
            stage: stage_name.clone(),
            description: format!("crosslink: {} link(s)", cx.entries.len()),
            stage_tags,
        }),
        deps,
    );
    if !hash_fills.is_empty() {
        p.plan.fills.insert(a, Fills { texts: hash_fills, hash_lines: lines, hash_tail: vpc_link_line });
    }
    cx.out.stage = Some(a);
}

pub use crate::tags::STAGE_SETTINGS as STAGE_SETTINGS_TAG;

/// A resource path as a JSON Pointer segment, as UpdateStage's method setting paths and the
/// stage's `methodSettings` keys write it (`/payments/{proxy+}` -> `~1payments~1{proxy+}`).
pub fn method_setting_key(path: &str, http_method: &str) -> String {
    format!("{}/{http_method}", path.replace('~', "~0").replace('/', "~1"))
}

/// The patches that make the live settings the desired ones, and the first difference.
struct SettingsDiff {
    patches: Vec<Patch>,
    first: Option<Reason>,
}

impl SettingsDiff {
    fn set(&mut self, field: impl Into<String>, path: impl Into<String>, live: String, desired: String) {
        if live == desired {
            return;
        }
        self.first.get_or_insert_with(|| Reason::Drift { field: field.into(), live, desired: desired.clone() });
        self.patches.push(Patch::replace(path, desired));
    }

    fn remove(&mut self, field: impl Into<String>, path: impl Into<String>, live: String) {
        self.first.get_or_insert_with(|| Reason::Drift { field: field.into(), live, desired: "(none)".into() });
        self.patches.push(Patch::remove(path));
    }

    /// A throttle of the method settings entry `key` (`*/*` for the stage's default).
    fn throttle(&mut self, live: &LiveStageSettings, key: &str, t: &crosslink_desired::Throttle) {
        let m = live.method_settings.get(key);
        let rate = m.and_then(|m| m.throttling_rate_limit).map_or("(none)".into(), |r| format!("{r}"));
        let burst = m.and_then(|m| m.throttling_burst_limit).map_or("(none)".into(), |b| b.to_string());
        self.set(format!("throttling {key} rateLimit"), format!("/{key}/throttling/rateLimit"), rate, format!("{}", f64::from(t.rate_limit)));
        self.set(format!("throttling {key} burstLimit"), format!("/{key}/throttling/burstLimit"), burst, t.burst_limit.to_string());
    }
}

/// The gateway stage's settings (`api.stageSettings`, and routes' `throttling`): one UpdateStage
/// with every setting that differs, after the deployment that creates the stage if this plan
/// makes it. Groups that left the YAML are reset when crosslink set them (the stage's tag says
/// which), except throttling, which is kept: a limit is never lifted implicitly.
fn plan_settings<'a>(p: &mut Planner<'a>, cx: &mut ApiCx<'a, '_>) {
    let (gw, subject, account) = (cx.gw, &cx.subject, cx.gw.account.as_str());
    let api = &gw.out.rest_api;
    let spec = &gw.gw.spec.api;
    let want = &spec.stage_settings;
    let stage = api.api.and_then(|a| a.stages.iter().find(|s| s.name == spec.stage));
    // No stage yet and none deployed by this plan: the first deployment creates it, and the
    // pass after sets it up.
    if stage.is_none() && cx.out.stage.is_none() {
        return;
    }
    let empty = LiveStageSettings::default();
    let live = stage.map_or(&empty, |s| &s.settings);
    let before: BTreeSet<&str> =
        stage.and_then(|s| s.tags.get(STAGE_SETTINGS_TAG)).map(|t| t.split_whitespace().collect()).unwrap_or_default();
    if !before.is_empty() {
        // The settings groups crosslink manages on the stage, as the stage's tag records them.
        let groups: Vec<&str> = before.iter().copied().collect();
        p.report(subject).resources.insert("stageSettings".into(), groups.join(" "));
    }
    let mut d = SettingsDiff { patches: Vec::new(), first: None };
    let mut after: BTreeSet<&str> = BTreeSet::new();
    let all = live.method_settings.get("*/*");
    let bool_str = |b: bool| b.to_string();

    if let Some(t) = &want.throttling {
        d.throttle(live, "*/*", t);
    }
    match (&want.execution_logs, before.contains("executionLogs")) {
        (Some(e), _) => {
            after.insert("executionLogs");
            let level = all.and_then(|m| m.logging_level.clone()).unwrap_or_else(|| "OFF".into());
            d.set("executionLogs.level", "/*/*/logging/loglevel", level, e.level.as_str().into());
            let trace = all.is_some_and(|m| m.data_trace_enabled);
            d.set("executionLogs.dataTrace", "/*/*/logging/dataTrace", bool_str(trace), bool_str(e.data_trace));
        }
        (None, true) => {
            let level = all.and_then(|m| m.logging_level.clone()).unwrap_or_else(|| "OFF".into());
            d.set("executionLogs.level", "/*/*/logging/loglevel", level, "OFF".into());
            let trace = all.is_some_and(|m| m.data_trace_enabled);
            d.set("executionLogs.dataTrace", "/*/*/logging/dataTrace", bool_str(trace), bool_str(false));
        }
        (None, false) => {}
    }
    if let Some(on) = want.detailed_metrics.or(before.contains("detailedMetrics").then_some(false)) {
        if want.detailed_metrics.is_some() {
            after.insert("detailedMetrics");
        }
        d.set("detailedMetrics", "/*/*/metrics/enabled", bool_str(all.is_some_and(|m| m.metrics_enabled)), bool_str(on));
    }
    if let Some(on) = want.tracing.or(before.contains("tracing").then_some(false)) {
        if want.tracing.is_some() {
            after.insert("tracing");
        }
        d.set("tracing", "/tracingEnabled", bool_str(live.tracing_enabled), bool_str(on));
    }
    match (&want.access_logs, &live.access_log) {
        (Some(a), l) => {
            after.insert("accessLogs");
            let dest = l.as_ref().and_then(|l| l.destination_arn.clone()).unwrap_or_else(|| "(none)".into());
            let format = l.as_ref().and_then(|l| l.format.clone()).unwrap_or_else(|| "(none)".into());
            d.set("accessLogs.destinationArn", "/accessLogSettings/destinationArn", dest, a.destination_arn.clone());
            d.set("accessLogs.format", "/accessLogSettings/format", format, a.format().to_string());
        }
        (None, Some(l)) if before.contains("accessLogs") => {
            d.remove("accessLogs", "/accessLogSettings", l.destination_arn.clone().unwrap_or_default());
        }
        (None, _) => {}
    }
    let no_vars = BTreeMap::new();
    let vars = match &want.variables {
        Some(v) => {
            after.insert("variables");
            Some(v)
        }
        None => before.contains("variables").then_some(&no_vars),
    };
    if let Some(vars) = vars {
        for (k, v) in vars {
            let l = live.variables.get(k).cloned().unwrap_or_else(|| "(none)".into());
            d.set(format!("variables.{k}"), format!("/variables/{k}"), l, v.clone());
        }
        for (k, l) in live.variables.iter().filter(|(k, _)| !vars.contains_key(*k)) {
            d.remove(format!("variables.{k}"), format!("/variables/{k}"), l.clone());
        }
    }
    // Each route's throttle, on its methods and its `{proxy+}`'s.
    for e in cx.entries {
        let Some(link) = p.d.links.iter().find(|l| l.metadata.name == e.link) else { continue };
        for r in &link.spec.routes {
            let Some(t) = &r.throttling else { continue };
            for path in [r.path.clone(), format!("{}/{{proxy+}}", r.path)] as [String; 2] {
                for m in &r.methods {
                    d.throttle(live, &method_setting_key(&path, m.as_str()), t);
                }
            }
        }
    }

    let (before_s, after_s) = (join(&before), join(&after));
    let union_s = join(&before.union(&after).copied().collect());
    if d.patches.is_empty() && before_s == after_s {
        return;
    }
    let reason = d.first.unwrap_or_else(|| Reason::Drift {
        field: format!("tag {STAGE_SETTINGS_TAG}"),
        live: before_s.clone(),
        desired: after_s.clone(),
    });
    p.add(
        subject,
        account,
        format!("stage {} settings", spec.stage),
        Verb::Update,
        reason,
        Op::Stage(StageOp::UpdateStage {
            rest_api_id: api.id.clone(),
            stage: spec.stage.clone(),
            patches: d.patches,
            tag_first: (union_s != before_s).then(|| settings_tags(&p.s.instance, &union_s)),
            tag_after: (union_s != after_s).then(|| settings_tags(&p.s.instance, &after_s)),
        }),
        vec![if stage.is_none() { cx.out.stage } else { None }, api.action],
    );
}

/// The stage-settings tag, with the managed-by tag every tag request of crosslink carries.
fn settings_tags(instance: &str, groups: &str) -> Tags {
    [(MANAGED_BY.to_string(), instance.to_string()), (STAGE_SETTINGS_TAG.to_string(), groups.to_string())].into()
}

fn join(groups: &BTreeSet<&str>) -> String {
    groups.iter().copied().collect::<Vec<_>>().join(" ")
}
