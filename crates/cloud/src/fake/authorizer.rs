//! The in-memory AWS: authorizers of REST APIs, as AWS documents them: a Lambda authorizer needs
//! its function's URI and a Cognito one its user pools (BadRequestException), and an authorizer
//! a method uses cannot be deleted (ConflictException).

use crosslink_plan::kinds::AuthorizerOp;

use super::*;

pub(super) fn apply(w: &mut World, me: &str, op: &AuthorizerOp) -> Result<Outcome, CloudError> {
    use AuthorizerOp::*;
    match op {
        CreateAuthorizer { rest_api_id, name, settings } => {
            let api = known(rest_api_id)?.to_string();
            let id = w.short_id();
            let api = w.api(me, &api)?;
            let bad = |m: &str| Err(err(ErrorKind::Permanent, "BadRequestException", m.to_string()));
            match settings.kind.as_str() {
                "TOKEN" | "REQUEST" if settings.authorizer_uri.is_none() => return bad("authorizerUri is required"),
                "COGNITO_USER_POOLS" if settings.provider_arns.is_empty() => return bad("providerARNs is required"),
                "TOKEN" | "REQUEST" | "COGNITO_USER_POOLS" => {}
                other => return bad(&format!("invalid authorizer type {other}")),
            }
            api.authorizers.push(Authorizer {
                id: id.clone(),
                name: name.clone(),
                kind: settings.kind.clone(),
                provider_arns: settings.provider_arns.clone(),
                authorizer_uri: settings.authorizer_uri.clone(),
                credentials: settings.credentials.clone(),
                identity_source: settings.identity_source.clone(),
                result_ttl_seconds: Some(settings.result_ttl_seconds),
                auth_type: Some(settings.auth_type.clone()),
            });
            created(id)
        }
        UpdateAuthorizer { rest_api_id, id, patches, .. } => {
            let api = w.api(me, rest_api_id)?;
            let a = api.authorizers.iter_mut().find(|a| &a.id == id).ok_or_else(|| not_found("NotFoundException", id))?;
            for p in patches {
                let value = Some(p.value.clone()).filter(|v| !v.is_empty());
                match p.path.as_str() {
                    "/authorizerUri" => a.authorizer_uri = value,
                    "/authorizerCredentials" => a.credentials = value,
                    "/identitySource" => a.identity_source = value,
                    "/authorizerResultTtlInSeconds" => {
                        a.result_ttl_seconds = Some(p.value.parse().map_err(|_| {
                            err(ErrorKind::Permanent, "BadRequestException", format!("invalid TTL {}", p.value))
                        })?)
                    }
                    other => {
                        return Err(err(
                            ErrorKind::Permanent,
                            "BadRequestException",
                            format!("Invalid patch path {other}"),
                        ));
                    }
                }
            }
            done()
        }
        DeleteAuthorizer { rest_api_id, id, .. } => {
            let api = w.api(me, rest_api_id)?;
            if let Some((path, verb)) = api.resources.iter().find_map(|r| {
                r.methods.iter().find(|(_, m)| m.authorizer_id.as_deref() == Some(id)).map(|(v, _)| (&r.path, v))
            }) {
                return Err(err(
                    ErrorKind::Conflict,
                    "ConflictException",
                    format!("Cannot delete authorizer '{id}', is referenced in method: {verb} {path}"),
                ));
            }
            let before = api.authorizers.len();
            api.authorizers.retain(|a| &a.id != id);
            if before == api.authorizers.len() {
                return Err(not_found("NotFoundException", id));
            }
            done()
        }
    }
}
