//! The in-memory AWS: Methods with their integrations. As AWS documents PutIntegration:
//! `timeoutInMillis` is 50 to 29,000 unless the account's quota was raised (this account's is
//! not), and `tlsConfig` applies to HTTP integrations only.

use crosslink_plan::kinds::MethodOp;

use super::*;

pub(super) fn apply(w: &mut World, me: &str, op: &MethodOp) -> Result<Outcome, CloudError> {
    use MethodOp::*;
    match op {
        PutProxyMethod {
            rest_api_id,
            resource_id,
            http_method,
            uri,
            vpc_link_id,
            authorization_type,
            authorizer_id,
            authorization_scopes,
            api_key_required,
            insecure_skip_verification,
            timeout_millis,
            replace,
            ..
        } => {
            if timeout_millis.is_some_and(|t| !(50..=29_000).contains(&t)) {
                return Err(err(
                    ErrorKind::Permanent,
                    "BadRequestException",
                    "Timeout should be between 50 ms and 29000 ms",
                ));
            }
            let (api, res, link) =
                (known(rest_api_id)?.to_string(), known(resource_id)?.to_string(), known(vpc_link_id)?.to_string());
            let api = w.api(me, &api)?;
            // As AWS: a CUSTOM or COGNITO_USER_POOLS method names an authorizer of the API.
            let authorizer_id = authorizer_id.as_ref().map(known).transpose()?.map(str::to_string);
            if matches!(authorization_type.as_str(), "CUSTOM" | "COGNITO_USER_POOLS") {
                let found = authorizer_id.as_deref().and_then(|id| api.authorizers.iter().find(|a| a.id == id));
                let fits = found.is_some_and(|a| (a.kind == "COGNITO_USER_POOLS") == (authorization_type == "COGNITO_USER_POOLS"));
                if !fits {
                    return Err(err(ErrorKind::Permanent, "BadRequestException", "Invalid authorizer ID specified"));
                }
            }
            let r = api
                .resources
                .iter_mut()
                .find(|r| r.id == res)
                .ok_or_else(|| not_found("NotFoundException", &res))?;
            // As AWS: PutMethod on an existing method is a ConflictException (its integration
            // is put again, the method's own settings stay); `replace` deletes it first.
            if *replace {
                r.methods.remove(http_method);
            }
            let (authorization_type, api_key_required, authorizer_id, authorization_scopes) =
                match r.methods.get(http_method) {
                    Some(m) => (
                        m.authorization_type.clone(),
                        m.api_key_required,
                        m.authorizer_id.clone(),
                        m.authorization_scopes.clone(),
                    ),
                    None => (authorization_type.clone(), *api_key_required, authorizer_id, authorization_scopes.clone()),
                };
            r.methods.insert(
                http_method.clone(),
                ApiMethod {
                    authorization_type,
                    api_key_required,
                    authorizer_id,
                    authorization_scopes,
                    integration: Some(Integration {
                        kind: "HTTP_PROXY".into(),
                        http_method: Some(http_method.clone()),
                        uri: Some(uri.clone()),
                        connection_type: Some("VPC_LINK".into()),
                        connection_id: Some(link),
                        insecure_skip_verification: *insecure_skip_verification,
                        timeout_millis: Some(timeout_millis.unwrap_or(29_000)),
                    }),
                },
            );
            done()
        }
        DeleteMethod { rest_api_id, resource_id, http_method, .. } => {
            let api = w.api(me, rest_api_id)?;
            let r = api
                .resources
                .iter_mut()
                .find(|r| &r.id == resource_id)
                .ok_or_else(|| not_found("NotFoundException", resource_id))?;
            r.methods.remove(http_method).ok_or_else(|| not_found("NotFoundException", http_method))?;
            done()
        }
    }
}
