//! Methods with their HTTP_PROXY integration through the VPC link (read with the resources).

use aws_sdk_apigateway::types::{ConnectionType, IntegrationType, TlsConfig};
use crosslink_cloud::{CloudError, Outcome};
use crosslink_plan::kinds::MethodOp;
use crate::cloud::{Clients, Ctx};
use crate::kinds::{api_resource, rest_api};
use crate::errors::known;
use crate::execute::done;

use crate::calls::{AwsService::*, Call};
use crate::ratelimit::Bucket;

const B: &[Bucket] = &[Bucket::ApiGateway];

pub const PUT: Call = Call::write(ApiGateway, "PutMethod", &["apigateway:PUT"], B);
pub const PUT_INTEGRATION: Call = Call::write(ApiGateway, "PutIntegration", &["apigateway:PUT"], B);
pub const DELETE: Call = Call::write(ApiGateway, "DeleteMethod", &["apigateway:DELETE"], B);

/// Methods and integrations are authorized as children of their resource (`api_resource`) and
/// REST API (`rest_api`).
pub static KIND: super::Kind = super::Kind {
    name: "method",
    calls: &[&PUT, &PUT_INTEGRATION, &DELETE],
    grants: &[&rest_api::DELETE_IN_OWNED, &api_resource::EDIT_OWNED, &api_resource::EDIT_REFERENCED],
};

// ---- Changing ----------------------------------------------------------------------------------

pub(crate) async fn execute(ctx: &Ctx<'_>, c: &Clients, op: &MethodOp) -> Result<Outcome, CloudError> {
    use MethodOp::*;
    match op {
        PutProxyMethod {
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
        } => {
            let api = known(rest_api_id, "the REST API")?;
            let resource = known(resource_id, "the resource")?;
            let link = known(vpc_link_id, "the VPC link")?;
            let subject = format!("{api} {http_method} {path} -> {uri} via {link}");
            // Other protection on a method that is there: delete it and put it again (PutMethod
            // refuses an existing method, and moto answers UpdateMethod with 500). Nothing is
            // live until the next deployment.
            if *replace {
                let req = c.apigateway.delete_method().rest_api_id(api).resource_id(resource).http_method(http_method);
                match ctx.write(&DELETE, &subject, req.send()).await {
                    Ok(_) => {}
                    Err(e) if e.kind == crosslink_cloud::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            let mut put = c
                .apigateway
                .put_method()
                .rest_api_id(api)
                .resource_id(resource)
                .http_method(http_method)
                .authorization_type(authorization_type)
                .set_authorizer_id(authorizer_id.as_ref().map(|a| known(a, "the authorizer")).transpose()?.map(str::to_string))
                .set_authorization_scopes((!authorization_scopes.is_empty()).then(|| authorization_scopes.clone()))
                .api_key_required(*api_key_required);
            if *greedy {
                put = put.request_parameters("method.request.path.proxy", true);
            }
            match ctx.write(&PUT, &subject, put.send()).await {
                Ok(_) => {}
                // The method is there already (an earlier, interrupted pass): only the
                // integration needs to be (re)put.
                Err(e) if e.code == "ConflictException" => {}
                Err(e) => return Err(e),
            }
            // ANY is passed through as ANY; any other verb as itself.
            let mut integration = c
                .apigateway
                .put_integration()
                .rest_api_id(api)
                .resource_id(resource)
                .http_method(http_method)
                .r#type(IntegrationType::HttpProxy)
                .integration_http_method(http_method)
                .uri(uri)
                .connection_type(ConnectionType::VpcLink)
                .connection_id(link)
                .set_timeout_in_millis(timeout_millis.and_then(|t| i32::try_from(t).ok()));
            // An https URI: API Gateway checks the backend's certificate against its host unless
            // told not to (and then says so in tlsConfig).
            if uri.starts_with("https://") {
                let tls = TlsConfig::builder().insecure_skip_verification(*insecure_skip_verification).build();
                integration = integration.tls_config(tls);
            }
            if *greedy {
                integration =
                    integration.request_parameters("integration.request.path.proxy", "method.request.path.proxy");
            }
            ctx.write(&PUT_INTEGRATION, &subject, integration.send()).await?;
            done()
        }
        DeleteMethod { rest_api_id, resource_id, path, http_method } => {
            let req =
                c.apigateway.delete_method().rest_api_id(rest_api_id).resource_id(resource_id).http_method(http_method);
            ctx.write(&DELETE, &format!("{rest_api_id} {http_method} {path}"), req.send()).await?;
            done()
        }
    }
}

/// Read with its REST API (`crate::observe::observe`).
pub(crate) use crate::observe::read_by_parent as read;
