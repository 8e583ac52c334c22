//! What an AWS request is: the service, region and access key of its SigV4 credential scope, and
//! its operation name, read the way each protocol carries it (the `Action` of the Query protocol,
//! the `X-Amz-Target` of the JSON protocols, the method and path of API Gateway's REST protocol).
//! The names are the SDK's operation names, e.g. `DescribeVpcs`, `CreateRestApi`.

/// The SigV4 credential scope of a request: `Credential=<key>/<date>/<region>/<service>/aws4_request`
/// in the `Authorization` header, or `X-Amz-Credential` in the query of a presigned request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    pub access_key: String,
    pub region: String,
    pub service: String,
}

/// Reads the credential scope, if the request is signed.
pub fn scope(authorization: Option<&str>, query: &str) -> Option<Scope> {
    let credential = match authorization {
        Some(auth) => {
            let start = auth.find("Credential=")? + "Credential=".len();
            let rest = &auth[start..];
            rest[..rest.find([',', ' ']).unwrap_or(rest.len())].to_string()
        }
        None => form_value(query, "X-Amz-Credential")?,
    };
    let parts: Vec<&str> = credential.split('/').collect();
    match parts.as_slice() {
        [key, _date, region, service, "aws4_request"] => {
            Some(Scope { access_key: key.to_string(), region: region.to_string(), service: service.to_string() })
        }
        _ => None,
    }
}

/// The operation a request asks for. `target` is the `X-Amz-Target` header, `body` the request
/// body (form-encoded for the Query protocol). Unknown shapes get `<METHOD> <path>`, so that
/// they still show up (and can be counted) rather than vanish.
pub fn operation(service: &str, method: &str, path: &str, query: &str, target: Option<&str>, body: &[u8]) -> String {
    if let Some(t) = target {
        // JSON protocols: `DynamoDB_20120810.GetItem`, `AWSSecurityTokenServiceV20110615.AssumeRole`.
        return t.rsplit('.').next().unwrap_or(t).to_string();
    }
    if service == "apigateway"
        && let Some(op) = rest_operation(method, path, query)
    {
        return op.to_string();
    }
    // The Query protocol (EC2, ELBv2, STS, IAM, ...): `Action=...` in a form body, or in the query
    // string of a GET.
    if let Some(action) =
        form_value(query, "Action").or_else(|| std::str::from_utf8(body).ok().and_then(|b| form_value(b, "Action")))
    {
        return action;
    }
    format!("{method} {path}")
}

/// The value of `key` in `a=1&b=2` (percent- and plus-decoded).
pub fn form_value(form: &str, key: &str) -> Option<String> {
    form.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        out.push((hi * 16 + lo) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// API Gateway (REST API, v1) routes, as the SDK builds them: method, path pattern (`*` is one
/// path segment), the `mode` query parameter where it tells two operations apart, operation.
/// Generated from aws-sdk-apigateway's `uri_base` / `method` of every operation.
const APIGATEWAY_ROUTES: &[(&str, &str, Option<&str>, &str)] = &[
    ("POST", "/apikeys", Some("import"), "ImportApiKeys"),
    ("POST", "/restapis", Some("import"), "ImportRestApi"),
    ("GET", "/account", None, "GetAccount"),
    ("PATCH", "/account", None, "UpdateAccount"),
    ("POST", "/apikeys", None, "CreateApiKey"),
    ("GET", "/apikeys", None, "GetApiKeys"),
    ("DELETE", "/apikeys/*", None, "DeleteApiKey"),
    ("GET", "/apikeys/*", None, "GetApiKey"),
    ("PATCH", "/apikeys/*", None, "UpdateApiKey"),
    ("POST", "/clientcertificates", None, "GenerateClientCertificate"),
    ("GET", "/clientcertificates", None, "GetClientCertificates"),
    ("DELETE", "/clientcertificates/*", None, "DeleteClientCertificate"),
    ("GET", "/clientcertificates/*", None, "GetClientCertificate"),
    ("PATCH", "/clientcertificates/*", None, "UpdateClientCertificate"),
    ("POST", "/domainnameaccessassociations", None, "CreateDomainNameAccessAssociation"),
    ("GET", "/domainnameaccessassociations", None, "GetDomainNameAccessAssociations"),
    ("DELETE", "/domainnameaccessassociations/*", None, "DeleteDomainNameAccessAssociation"),
    ("POST", "/domainnames", None, "CreateDomainName"),
    ("GET", "/domainnames", None, "GetDomainNames"),
    ("DELETE", "/domainnames/*", None, "DeleteDomainName"),
    ("GET", "/domainnames/*", None, "GetDomainName"),
    ("PATCH", "/domainnames/*", None, "UpdateDomainName"),
    ("POST", "/domainnames/*/basepathmappings", None, "CreateBasePathMapping"),
    ("GET", "/domainnames/*/basepathmappings", None, "GetBasePathMappings"),
    ("DELETE", "/domainnames/*/basepathmappings/*", None, "DeleteBasePathMapping"),
    ("GET", "/domainnames/*/basepathmappings/*", None, "GetBasePathMapping"),
    ("PATCH", "/domainnames/*/basepathmappings/*", None, "UpdateBasePathMapping"),
    ("POST", "/rejectdomainnameaccessassociations", None, "RejectDomainNameAccessAssociation"),
    ("POST", "/restapis", None, "CreateRestApi"),
    ("GET", "/restapis", None, "GetRestApis"),
    ("DELETE", "/restapis/*", None, "DeleteRestApi"),
    ("GET", "/restapis/*", None, "GetRestApi"),
    ("PUT", "/restapis/*", None, "PutRestApi"),
    ("PATCH", "/restapis/*", None, "UpdateRestApi"),
    ("POST", "/restapis/*/authorizers", None, "CreateAuthorizer"),
    ("GET", "/restapis/*/authorizers", None, "GetAuthorizers"),
    ("DELETE", "/restapis/*/authorizers/*", None, "DeleteAuthorizer"),
    ("GET", "/restapis/*/authorizers/*", None, "GetAuthorizer"),
    ("POST", "/restapis/*/authorizers/*", None, "TestInvokeAuthorizer"),
    ("PATCH", "/restapis/*/authorizers/*", None, "UpdateAuthorizer"),
    ("POST", "/restapis/*/deployments", None, "CreateDeployment"),
    ("GET", "/restapis/*/deployments", None, "GetDeployments"),
    ("DELETE", "/restapis/*/deployments/*", None, "DeleteDeployment"),
    ("GET", "/restapis/*/deployments/*", None, "GetDeployment"),
    ("PATCH", "/restapis/*/deployments/*", None, "UpdateDeployment"),
    ("POST", "/restapis/*/documentation/parts", None, "CreateDocumentationPart"),
    ("GET", "/restapis/*/documentation/parts", None, "GetDocumentationParts"),
    ("PUT", "/restapis/*/documentation/parts", None, "ImportDocumentationParts"),
    ("DELETE", "/restapis/*/documentation/parts/*", None, "DeleteDocumentationPart"),
    ("GET", "/restapis/*/documentation/parts/*", None, "GetDocumentationPart"),
    ("PATCH", "/restapis/*/documentation/parts/*", None, "UpdateDocumentationPart"),
    ("POST", "/restapis/*/documentation/versions", None, "CreateDocumentationVersion"),
    ("GET", "/restapis/*/documentation/versions", None, "GetDocumentationVersions"),
    ("DELETE", "/restapis/*/documentation/versions/*", None, "DeleteDocumentationVersion"),
    ("GET", "/restapis/*/documentation/versions/*", None, "GetDocumentationVersion"),
    ("PATCH", "/restapis/*/documentation/versions/*", None, "UpdateDocumentationVersion"),
    ("GET", "/restapis/*/gatewayresponses", None, "GetGatewayResponses"),
    ("DELETE", "/restapis/*/gatewayresponses/*", None, "DeleteGatewayResponse"),
    ("GET", "/restapis/*/gatewayresponses/*", None, "GetGatewayResponse"),
    ("PUT", "/restapis/*/gatewayresponses/*", None, "PutGatewayResponse"),
    ("PATCH", "/restapis/*/gatewayresponses/*", None, "UpdateGatewayResponse"),
    ("POST", "/restapis/*/models", None, "CreateModel"),
    ("GET", "/restapis/*/models", None, "GetModels"),
    ("DELETE", "/restapis/*/models/*", None, "DeleteModel"),
    ("GET", "/restapis/*/models/*", None, "GetModel"),
    ("PATCH", "/restapis/*/models/*", None, "UpdateModel"),
    ("GET", "/restapis/*/models/*/default_template", None, "GetModelTemplate"),
    ("POST", "/restapis/*/requestvalidators", None, "CreateRequestValidator"),
    ("GET", "/restapis/*/requestvalidators", None, "GetRequestValidators"),
    ("DELETE", "/restapis/*/requestvalidators/*", None, "DeleteRequestValidator"),
    ("GET", "/restapis/*/requestvalidators/*", None, "GetRequestValidator"),
    ("PATCH", "/restapis/*/requestvalidators/*", None, "UpdateRequestValidator"),
    ("GET", "/restapis/*/resources", None, "GetResources"),
    ("POST", "/restapis/*/resources/*", None, "CreateResource"),
    ("DELETE", "/restapis/*/resources/*", None, "DeleteResource"),
    ("GET", "/restapis/*/resources/*", None, "GetResource"),
    ("PATCH", "/restapis/*/resources/*", None, "UpdateResource"),
    ("DELETE", "/restapis/*/resources/*/methods/*", None, "DeleteMethod"),
    ("GET", "/restapis/*/resources/*/methods/*", None, "GetMethod"),
    ("PUT", "/restapis/*/resources/*/methods/*", None, "PutMethod"),
    ("POST", "/restapis/*/resources/*/methods/*", None, "TestInvokeMethod"),
    ("PATCH", "/restapis/*/resources/*/methods/*", None, "UpdateMethod"),
    ("DELETE", "/restapis/*/resources/*/methods/*/integration", None, "DeleteIntegration"),
    ("GET", "/restapis/*/resources/*/methods/*/integration", None, "GetIntegration"),
    ("PUT", "/restapis/*/resources/*/methods/*/integration", None, "PutIntegration"),
    ("PATCH", "/restapis/*/resources/*/methods/*/integration", None, "UpdateIntegration"),
    ("DELETE", "/restapis/*/resources/*/methods/*/integration/responses/*", None, "DeleteIntegrationResponse"),
    ("GET", "/restapis/*/resources/*/methods/*/integration/responses/*", None, "GetIntegrationResponse"),
    ("PUT", "/restapis/*/resources/*/methods/*/integration/responses/*", None, "PutIntegrationResponse"),
    ("PATCH", "/restapis/*/resources/*/methods/*/integration/responses/*", None, "UpdateIntegrationResponse"),
    ("DELETE", "/restapis/*/resources/*/methods/*/responses/*", None, "DeleteMethodResponse"),
    ("GET", "/restapis/*/resources/*/methods/*/responses/*", None, "GetMethodResponse"),
    ("PUT", "/restapis/*/resources/*/methods/*/responses/*", None, "PutMethodResponse"),
    ("PATCH", "/restapis/*/resources/*/methods/*/responses/*", None, "UpdateMethodResponse"),
    ("POST", "/restapis/*/stages", None, "CreateStage"),
    ("GET", "/restapis/*/stages", None, "GetStages"),
    ("DELETE", "/restapis/*/stages/*", None, "DeleteStage"),
    ("GET", "/restapis/*/stages/*", None, "GetStage"),
    ("PATCH", "/restapis/*/stages/*", None, "UpdateStage"),
    ("DELETE", "/restapis/*/stages/*/cache/authorizers", None, "FlushStageAuthorizersCache"),
    ("DELETE", "/restapis/*/stages/*/cache/data", None, "FlushStageCache"),
    ("GET", "/restapis/*/stages/*/exports/*", None, "GetExport"),
    ("GET", "/restapis/*/stages/*/sdks/*", None, "GetSdk"),
    ("GET", "/sdktypes", None, "GetSdkTypes"),
    ("GET", "/sdktypes/*", None, "GetSdkType"),
    ("GET", "/tags/*", None, "GetTags"),
    ("PUT", "/tags/*", None, "TagResource"),
    ("DELETE", "/tags/*", None, "UntagResource"),
    ("POST", "/usageplans", None, "CreateUsagePlan"),
    ("GET", "/usageplans", None, "GetUsagePlans"),
    ("DELETE", "/usageplans/*", None, "DeleteUsagePlan"),
    ("GET", "/usageplans/*", None, "GetUsagePlan"),
    ("PATCH", "/usageplans/*", None, "UpdateUsagePlan"),
    ("POST", "/usageplans/*/keys", None, "CreateUsagePlanKey"),
    ("GET", "/usageplans/*/keys", None, "GetUsagePlanKeys"),
    ("DELETE", "/usageplans/*/keys/*", None, "DeleteUsagePlanKey"),
    ("GET", "/usageplans/*/keys/*", None, "GetUsagePlanKey"),
    ("PATCH", "/usageplans/*/keys/*/usage", None, "UpdateUsage"),
    ("GET", "/usageplans/*/usage", None, "GetUsage"),
    ("POST", "/vpclinks", None, "CreateVpcLink"),
    ("GET", "/vpclinks", None, "GetVpcLinks"),
    ("DELETE", "/vpclinks/*", None, "DeleteVpcLink"),
    ("GET", "/vpclinks/*", None, "GetVpcLink"),
    ("PATCH", "/vpclinks/*", None, "UpdateVpcLink"),
];

/// The API Gateway operation of a REST request, e.g. `POST /restapis/a1/resources/r1` ->
/// `CreateResource`.
pub fn rest_operation(method: &str, path: &str, query: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let mode = form_value(query, "mode");
    APIGATEWAY_ROUTES.iter().find_map(|(m, pattern, wants_mode, op)| {
        if !m.eq_ignore_ascii_case(method) {
            return None;
        }
        if let Some(wanted) = wants_mode
            && mode.as_deref() != Some(*wanted)
        {
            return None;
        }
        let pattern: Vec<&str> = pattern.trim_matches('/').split('/').collect();
        let matches =
            pattern.len() == segments.len() && pattern.iter().zip(&segments).all(|(p, s)| *p == "*" || p == s);
        matches.then_some(*op)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_scope_of_a_signature() {
        let auth = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/eu-central-1/elasticloadbalancing/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";
        let s = scope(Some(auth), "").unwrap();
        assert_eq!(
            (s.access_key.as_str(), s.region.as_str(), s.service.as_str()),
            ("AKIDEXAMPLE", "eu-central-1", "elasticloadbalancing")
        );
        let presigned =
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20250101%2Fus-east-1%2Fsts%2Faws4_request";
        assert_eq!(scope(None, presigned).unwrap().service, "sts");
        assert_eq!(scope(None, ""), None);
        assert_eq!(scope(Some("Bearer x"), ""), None);
    }

    #[test]
    fn query_protocol_action() {
        let body = b"Action=DescribeVpcs&Version=2016-11-15&MaxResults=1000";
        assert_eq!(operation("ec2", "POST", "/", "", None, body), "DescribeVpcs");
        assert_eq!(
            operation("sts", "GET", "/", "Action=GetCallerIdentity&Version=2011-06-15", None, b""),
            "GetCallerIdentity"
        );
        assert_eq!(operation("dynamodb", "POST", "/", "", Some("DynamoDB_20120810.GetItem"), b"{}"), "GetItem");
        assert_eq!(operation("ec2", "POST", "/x", "", None, b"nothing"), "POST /x");
    }

    #[test]
    fn api_gateway_routes() {
        let cases = [
            ("GET", "/restapis", "", "GetRestApis"),
            ("POST", "/restapis", "", "CreateRestApi"),
            ("POST", "/restapis", "mode=import", "ImportRestApi"),
            ("PUT", "/restapis/a1", "mode=overwrite", "PutRestApi"),
            ("DELETE", "/restapis/a1", "", "DeleteRestApi"),
            ("GET", "/restapis/a1/resources", "embed=methods&limit=500", "GetResources"),
            ("POST", "/restapis/a1/resources/r0", "", "CreateResource"),
            ("DELETE", "/restapis/a1/resources/r1", "", "DeleteResource"),
            ("PUT", "/restapis/a1/resources/r1/methods/GET", "", "PutMethod"),
            ("DELETE", "/restapis/a1/resources/r1/methods/ANY", "", "DeleteMethod"),
            ("PUT", "/restapis/a1/resources/r1/methods/GET/integration", "", "PutIntegration"),
            ("PUT", "/restapis/a1/resources/r1/methods/GET/integration/responses/200", "", "PutIntegrationResponse"),
            ("PUT", "/restapis/a1/resources/r1/methods/GET/responses/200", "", "PutMethodResponse"),
            ("GET", "/vpclinks", "limit=500", "GetVpcLinks"),
            ("POST", "/vpclinks", "", "CreateVpcLink"),
            ("DELETE", "/vpclinks/v1", "", "DeleteVpcLink"),
            ("GET", "/restapis/a1/stages", "", "GetStages"),
            ("POST", "/restapis/a1/deployments", "", "CreateDeployment"),
            (
                "PUT",
                "/tags/arn%3Aaws%3Aapigateway%3Aeu-central-1%3A%3A%2Frestapis%2Fa1%2Fstages%2Fv1",
                "",
                "TagResource",
            ),
            ("GET", "/tags/arn%3Aaws", "", "GetTags"),
            ("DELETE", "/tags/arn%3Aaws", "tagKeys=a", "UntagResource"),
            ("GET", "/account", "", "GetAccount"),
        ];
        for (method, path, query, want) in cases {
            assert_eq!(rest_operation(method, path, query), Some(want), "{method} {path}?{query}");
            assert_eq!(operation("apigateway", method, path, query, None, b""), want);
        }
        assert_eq!(rest_operation("GET", "/nowhere", ""), None);
        assert_eq!(operation("apigateway", "GET", "/nowhere", "", None, b""), "GET /nowhere");
    }

    #[test]
    fn form_values_are_decoded() {
        assert_eq!(form_value("a=1&Action=Describe%56pcs&b", "Action").as_deref(), Some("DescribeVpcs"));
        assert_eq!(form_value("k=a+b%2", "k").as_deref(), Some("a b%2"));
        assert_eq!(form_value("b", "b").as_deref(), Some(""));
        assert_eq!(form_value("", "Action"), None);
    }
}
