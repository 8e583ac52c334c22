//! The in-memory AWS: deployments to stages, and stage settings as AWS documents UpdateStage:
//! the stage must exist, unknown patch paths are refused (moto accepts them), logging to
//! CloudWatch needs the account's CloudWatch Logs role, an access log format needs
//! `$context.requestId`, and `remove` of a method setting path drops that override (moto ignores
//! it).

use crosslink_plan::kinds::StageOp;
use crosslink_plan::observed::{AccessLog, LiveStageSettings};
use crosslink_plan::op::{Patch, PatchOp};

use super::*;

pub(super) fn apply(w: &mut World, me: &str, op: &StageOp) -> Result<Outcome, CloudError> {
    use StageOp::*;
    match op {
        CreateDeployment { rest_api_id, stage, stage_tags, .. } => {
            let api = known(rest_api_id)?.to_string();
            let dep = w.short_id();
            let api = w.api(me, &api)?;
            if api.resources.iter().all(|r| r.methods.is_empty()) {
                return Err(err(
                    ErrorKind::Permanent,
                    "BadRequestException",
                    "The REST API doesn't contain any methods",
                ));
            }
            match api.stages.iter_mut().find(|s| &s.name == stage) {
                Some(s) => {
                    s.deployment_id = Some(dep.clone());
                    s.tags.extend(stage_tags.clone());
                }
                None => api.stages.push(Stage {
                    name: stage.clone(),
                    deployment_id: Some(dep.clone()),
                    tags: stage_tags.clone(),
                    settings: Default::default(),
                }),
            }
            created(dep)
        }
        UpdateStage { rest_api_id, stage, patches, tag_first, tag_after } => {
            let api = known(rest_api_id)?.to_string();
            let role = w.acct(me).api_gateway_account.as_ref().and_then(|a| a.cloudwatch_role_arn.clone());
            let api = w.api(me, &api)?;
            let s = api.stages.iter_mut().find(|s| &s.name == stage).ok_or_else(|| not_found("NotFoundException", stage))?;
            let mut next = s.settings.clone();
            for p in patches {
                update(&mut next, p, role.is_some())?;
            }
            s.settings = next;
            for t in [tag_first, tag_after].into_iter().flatten() {
                s.tags.extend(t.clone());
            }
            done()
        }
    }
}

fn bad(m: impl Into<String>) -> CloudError {
    err(ErrorKind::Permanent, "BadRequestException", m.into())
}

/// One UpdateStage patch operation, all or nothing for the request (applied to a copy).
fn update(st: &mut LiveStageSettings, p: &Patch, has_role: bool) -> Result<(), CloudError> {
    let no_role = || bad("CloudWatch Logs role ARN must be set in account settings to enable logging");
    let flag = |v: &str| match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad(format!("Invalid boolean value {v}"))),
    };
    let path = p.path.as_str();
    match (p.op, path) {
        (PatchOp::Replace, "/tracingEnabled") => st.tracing_enabled = flag(&p.value)?,
        (PatchOp::Remove, "/accessLogSettings") => st.access_log = None,
        (PatchOp::Replace, "/accessLogSettings/destinationArn") => {
            if p.value.split(':').nth(2) == Some("logs") && !has_role {
                return Err(no_role());
            }
            st.access_log.get_or_insert(AccessLog { destination_arn: None, format: None }).destination_arn =
                Some(p.value.clone());
        }
        (PatchOp::Replace, "/accessLogSettings/format") => {
            if !(p.value.contains("$context.requestId") || p.value.contains("$context.extendedRequestId")) {
                return Err(bad("Access Log format must contain at least one of $context.requestId, $context.extendedRequestId"));
            }
            st.access_log.get_or_insert(AccessLog { destination_arn: None, format: None }).format = Some(p.value.clone());
        }
        (PatchOp::Replace, _) if path.starts_with("/variables/") => {
            st.variables.insert(path["/variables/".len()..].to_string(), p.value.clone());
        }
        (PatchOp::Remove, _) if path.starts_with("/variables/") => {
            st.variables.remove(&path["/variables/".len()..]);
        }
        // `/<resource path>/<method>/<group>/<setting>`, or `remove /<resource path>/<method>`.
        (op, _) => {
            let parts: Vec<&str> = path.trim_start_matches('/').splitn(3, '/').collect();
            match (op, parts.as_slice()) {
                (PatchOp::Remove, [res, method]) => {
                    st.method_settings.remove(&format!("{res}/{method}"));
                }
                (PatchOp::Replace, [res, method, setting]) => {
                    let m = st.method_settings.entry(format!("{res}/{method}")).or_default();
                    match *setting {
                        "throttling/rateLimit" => {
                            m.throttling_rate_limit = Some(p.value.parse().map_err(|_| bad(format!("Invalid rate {}", p.value)))?)
                        }
                        "throttling/burstLimit" => {
                            m.throttling_burst_limit =
                                Some(p.value.parse().map_err(|_| bad(format!("Invalid burst {}", p.value)))?)
                        }
                        "logging/loglevel" => {
                            if !["OFF", "ERROR", "INFO"].contains(&p.value.as_str()) {
                                return Err(bad(format!("Invalid logging level {}", p.value)));
                            }
                            if p.value != "OFF" && !has_role {
                                return Err(no_role());
                            }
                            m.logging_level = Some(p.value.clone());
                        }
                        "logging/dataTrace" => m.data_trace_enabled = flag(&p.value)?,
                        "metrics/enabled" => m.metrics_enabled = flag(&p.value)?,
                        other => return Err(bad(format!("Invalid method setting path: {other}"))),
                    }
                }
                _ => return Err(bad(format!("Invalid patch path {path}"))),
            }
        }
    }
    Ok(())
}
