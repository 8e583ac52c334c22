//! Gateways' regional custom domain names (read with the base path mappings of crosslink's own).

use aws_sdk_apigateway::types::{EndpointConfiguration, EndpointType, MutualTlsAuthenticationInput, SecurityPolicy};
use crosslink_cloud::{CloudError, Outcome};
use crosslink_plan::kinds::DomainNameOp;
use crosslink_plan::observed::{BasePathMapping, DomainName};
use crosslink_plan::tags::MANAGED_BY;
use futures::{StreamExt, TryStreamExt};

use crate::calls::{AwsService::*, Call};
use crate::cloud::{Clients, Ctx};
use crate::execute::{apigw_patches, apigw_tags, done};
use crate::grants::{Grant, IN_REGION, OWNED, Resource, TAGGED_REQUEST, When};
use crate::observe::{APIGW_CONCURRENCY, APIGW_PAGE, str_map};
use crate::ratelimit::Bucket;

const B: &[Bucket] = &[Bucket::ApiGateway];

pub const GET: Call = Call::read(ApiGateway, "GetDomainNames", &["apigateway:GET"], B);
pub const GET_MAPPINGS: Call = Call::read(ApiGateway, "GetBasePathMappings", &["apigateway:GET"], B);
/// With mutual TLS, API Gateway reads the truststore from S3 with the caller's permissions.
pub const CREATE: Call =
    Call::write(ApiGateway, "CreateDomainName", &["apigateway:POST", "s3:GetObject", "s3:GetObjectVersion"], B);
pub const UPDATE: Call =
    Call::write(ApiGateway, "UpdateDomainName", &["apigateway:PATCH", "s3:GetObject", "s3:GetObjectVersion"], B);
pub const DELETE: Call = Call::write(ApiGateway, "DeleteDomainName", &["apigateway:DELETE"], B);

// ---- Permissions -------------------------------------------------------------------------------

pub static READ: Grant = Grant {
    sid: "ApiGatewayReadDomainNames",
    actions: &["apigateway:GET"],
    resources: &[Resource::ApiGw("/domainnames"), Resource::ApiGw("/domainnames/*")],
    condition: &[],
    when: When::GatewaySide,
    why: "GetDomainNames, GetBasePathMappings: the gateways' custom domains",
};
pub static CREATE_TAGGED: Grant = Grant {
    sid: "ApiGatewayCreateTaggedDomainNames",
    actions: &["apigateway:POST"],
    resources: &[Resource::ApiGw("/domainnames")],
    condition: TAGGED_REQUEST,
    when: When::CustomDomains,
    why: "CreateDomainName, carrying the managed-by tag",
};
pub static CHANGE_OWNED: Grant = Grant {
    sid: "ApiGatewayChangeOwnedDomainNames",
    actions: &["apigateway:PATCH", "apigateway:DELETE"],
    resources: &[Resource::ApiGw("/domainnames/*")],
    condition: OWNED,
    when: When::GatewaySide,
    why: "UpdateDomainName, DeleteDomainName, only domain names carrying the managed-by tag",
};
pub static READ_TRUSTSTORES: Grant = Grant {
    sid: "S3ReadMutualTlsTruststores",
    actions: &["s3:GetObject", "s3:GetObjectVersion"],
    resources: &[Resource::Truststores],
    condition: &[],
    when: When::CustomDomains,
    why: "API Gateway reads a custom domain's mutual TLS truststore with the caller's permissions: exactly the truststores in desired state",
};

pub static KIND: super::Kind = super::Kind {
    name: "custom domain",
    calls: &[&GET, &GET_MAPPINGS, &CREATE, &UPDATE, &DELETE],
    grants: &[&READ, &CREATE_TAGGED, &CHANGE_OWNED, &READ_TRUSTSTORES],
};

// ---- Reading -----------------------------------------------------------------------------------

pub(crate) async fn domain_names(ctx: &Ctx<'_>, c: &Clients) -> Result<Vec<DomainName>, CloudError> {
    let stream = c.apigateway.get_domain_names().into_paginator().page_size(APIGW_PAGE).send();
    let pages = ctx.pages(&GET, stream, |p| p.position()).await?;
    let mut names: Vec<DomainName> = pages
        .iter()
        .flat_map(|p| p.items())
        .filter_map(|d| {
            let mtls = d.mutual_tls_authentication();
            Some(DomainName {
                name: d.domain_name()?.to_string(),
                regional_domain_name: d.regional_domain_name().map(str::to_string),
                regional_hosted_zone_id: d.regional_hosted_zone_id().map(str::to_string),
                certificate_arn: d.regional_certificate_arn().map(str::to_string),
                security_policy: d.security_policy().map(|s| s.as_str().to_string()),
                truststore_uri: mtls.and_then(|m| m.truststore_uri()).filter(|u| !u.is_empty()).map(str::to_string),
                truststore_version: mtls.and_then(|m| m.truststore_version()).map(str::to_string),
                tags: str_map(d.tags()),
                mappings: Vec::new(),
            })
        })
        .collect();
    // The mappings of crosslink's domains only (any instance's): one request per domain.
    let wanted: Vec<usize> = (0..names.len()).filter(|&i| names[i].tags.contains_key(MANAGED_BY)).collect();
    let found: Vec<(usize, Vec<BasePathMapping>)> = futures::stream::iter(wanted)
        .map(|i| {
            let name = names[i].name.clone();
            async move {
                let stream =
                    c.apigateway.get_base_path_mappings().domain_name(&name).into_paginator().page_size(APIGW_PAGE).send();
                let pages = ctx.pages(&GET_MAPPINGS, stream, |p| p.position()).await?;
                let mappings = pages
                    .iter()
                    .flat_map(|p| p.items())
                    .map(|m| BasePathMapping {
                        base_path: m.base_path().unwrap_or(crosslink_plan::kinds::base_path_mapping::ROOT).to_string(),
                        rest_api_id: m.rest_api_id().unwrap_or_default().to_string(),
                        stage: m.stage().map(str::to_string),
                    })
                    .collect();
                Ok::<_, CloudError>((i, mappings))
            }
        })
        .buffer_unordered(APIGW_CONCURRENCY)
        .try_collect()
        .await?;
    for (i, m) in found {
        names[i].mappings = m;
    }
    Ok(names)
}

pub(crate) async fn read(
    ctx: &Ctx<'_>,
    c: &Clients,
    scope: &crosslink_cloud::ObserveScope,
) -> Result<crate::observe::Found, CloudError> {
    crate::observe::store(scope.gateway_side, domain_names(ctx, c), |st, found| st.domain_names = found).await
}

// ---- Changing ----------------------------------------------------------------------------------

pub(crate) async fn execute(ctx: &Ctx<'_>, c: &Clients, op: &DomainNameOp) -> Result<Outcome, CloudError> {
    use DomainNameOp::*;
    match op {
        CreateDomainName { name, certificate_arn, security_policy, truststore, tags } => {
            let mtls = truststore.as_ref().map(|t| {
                MutualTlsAuthenticationInput::builder()
                    .truststore_uri(&t.uri)
                    .set_truststore_version(t.version.clone())
                    .build()
            });
            let req = c
                .apigateway
                .create_domain_name()
                .domain_name(name)
                .regional_certificate_arn(certificate_arn)
                .security_policy(SecurityPolicy::from(security_policy.as_str()))
                .endpoint_configuration(EndpointConfiguration::builder().types(EndpointType::Regional).build())
                .set_mutual_tls_authentication(mtls)
                .set_tags(apigw_tags(tags));
            ctx.write(&CREATE, name, req.send()).await?;
            Ok(Outcome::created(name.clone()))
        }
        UpdateDomainName { name, patches } => {
            let req = c.apigateway.update_domain_name().domain_name(name).set_patch_operations(Some(apigw_patches(patches)));
            ctx.write(&UPDATE, name, req.send()).await?;
            done()
        }
        DeleteDomainName { name } => {
            let req = c.apigateway.delete_domain_name().domain_name(name);
            ctx.write(&DELETE, name, req.send()).await?;
            done()
        }
    }
}

/// The mapping's calls and statements (they sit under the domain name's path, but carry no tags).
pub mod mapping {
    use super::*;

    pub const CREATE: Call = Call::write(ApiGateway, "CreateBasePathMapping", &["apigateway:POST"], B);
    pub const UPDATE: Call = Call::write(ApiGateway, "UpdateBasePathMapping", &["apigateway:PATCH"], B);
    pub const DELETE: Call = Call::write(ApiGateway, "DeleteBasePathMapping", &["apigateway:DELETE"], B);

    pub static CHANGE: Grant = Grant {
        sid: "ApiGatewayBasePathMappingsNoResourceTag",
        actions: &["apigateway:POST", "apigateway:PATCH", "apigateway:DELETE"],
        resources: &[Resource::ApiGw("/domainnames/*/basepathmappings"), Resource::ApiGw("/domainnames/*/basepathmappings/*")],
        condition: IN_REGION,
        when: When::GatewaySide,
        why: "CreateBasePathMapping, UpdateBasePathMapping, DeleteBasePathMapping; mappings carry no tags of their own, so limited to the Account's region (crosslink changes mappings only on its own domains)",
    };
}
