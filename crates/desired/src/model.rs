//! The desired-state model, `crosslink.dev/v1alpha1`: Account, Gateway, Link and Consumer.
//!
//! These types are what the rest of crosslink consumes. They are produced by `decode.rs` (never
//! deserialized directly, so that every error carries a location) and serialize to the same shape
//! as the YAML, which is also what the JSON Schema (`crosslink schema`) describes.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnet::Ipv4Net;
use schemars::JsonSchema;
use serde::Serialize;

use crate::node::Loc;

pub const API_VERSION: &str = "crosslink.dev/v1alpha1";
pub const KINDS: &[&str] = &["Account", "Gateway", "Link", "Consumer"];

/// Where an object was written, and where each of its fields is (by field path).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Source {
    pub file: PathBuf,
    pub loc: Loc,
    pub fields: BTreeMap<String, Loc>,
}

impl Source {
    /// The location of a field path such as `spec.targets[0].ip`, or of its nearest written parent.
    pub fn loc_of(&self, path: &str) -> Loc {
        let mut p = path;
        loop {
            if let Some(l) = self.fields.get(p) {
                return *l;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return self.loc,
            }
        }
    }
}

/// One document of desired state.
#[allow(clippy::large_enum_variant, reason = "one value per YAML document, moved once into DesiredState")]
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "kind")]
pub enum Document {
    Account(Account),
    Gateway(Gateway),
    Link(Link),
    Consumer(Consumer),
}

/// The `apiVersion` every document carries.
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
pub enum ApiVersion {
    #[default]
    #[serde(rename = "crosslink.dev/v1alpha1")]
    V1Alpha1,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    /// A DNS label (lower-case letters, digits and `-`, at most 63 characters), unique per kind.
    pub name: String,
    /// Free-form labels for people and tools; crosslink does not interpret them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Where this object was written (not part of the format).
    #[serde(skip)]
    #[schemars(skip)]
    pub source: Source,
}

/// How to act in one AWS account.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Account {
    pub api_version: ApiVersion,
    pub metadata: Metadata,
    pub spec: AccountSpec,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountSpec {
    /// The 12-digit AWS account id, quoted (account ids may start with 0).
    #[schemars(regex(pattern = r"^[0-9]{12}$"))]
    pub account_id: String,
    /// The AWS region crosslink works in for this account, e.g. `eu-central-1`.
    pub region: String,
    /// The role to assume in this account. Absent: the controller's own credentials are used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assume_role: Option<AssumeRole>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssumeRole {
    /// `arn:aws:iam::<accountId>:role/<name>`, in the same account as `accountId`.
    pub role_arn: String,
    /// The external id the role's trust policy requires (recommended: it prevents confused-deputy use).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The STS session name (default `crosslink`), visible in CloudTrail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
}

/// The shared side: an internal NLB, a REST VPC Link and a REST API in one account's VPC.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Gateway {
    pub api_version: ApiVersion,
    pub metadata: Metadata,
    pub spec: GatewaySpec,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewaySpec {
    /// The name of the Account the gateway lives in.
    pub account: String,
    /// The gateway VPC (the peering requester).
    pub vpc_id: String,
    /// The gateway VPC's CIDR. Optional: enables offline overlap checks (always re-checked live).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub cidr: Option<Ipv4Net>,
    /// The subnets of the NLB.
    pub subnet_ids: Vec<String>,
    /// Route tables that get a route to every linked service VPC.
    pub route_table_ids: Vec<String>,
    /// The NLB: by name (created and owned by crosslink) or by ARN (an existing one, never deleted).
    pub load_balancer: LoadBalancerRef,
    /// An existing API Gateway VPC link to the NLB, to use instead of one crosslink creates and
    /// owns (a gateway built by hand or by another tool): crosslink never deletes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_link: Option<VpcLinkRef>,
    /// The REST API and stage.
    pub api: ApiRef,
    /// Extra AWS tags for the resources crosslink creates for this gateway.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// What happens to the gateway's resources when the Gateway is removed from desired state.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Whether the gateway takes over what matches it and was built without crosslink: its NLB
    /// by name, a VPC link by the NLB it targets, its REST API by name (and the stage by name).
    #[serde(default)]
    pub adoption: AdoptionPolicy,
}

/// An existing REST VPC link, by id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VpcLinkRef {
    /// Its id (`GetVpcLinks`); it must target the gateway's NLB.
    pub id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum LoadBalancerRef {
    /// Create (and own) an internal NLB of this name.
    Name(String),
    /// Use this existing NLB; crosslink adds listeners and target groups but never deletes it.
    Arn(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiRef {
    #[serde(flatten)]
    pub target: ApiTarget,
    /// The stage links are deployed to.
    pub stage: String,
    /// The default authorization of every route (a route may set its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    /// Whether routes require an API key unless they say otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_required: Option<bool>,
    /// Lambda (TOKEN, REQUEST) and Cognito user pool authorizers of the REST API, defined once
    /// here and named by routes (`authorization: {authorizer: <name>}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorizers: Vec<AuthorizerSpec>,
    /// Settings of the stage (throttling, logs, metrics, tracing, variables), applied with
    /// UpdateStage: a change takes effect at once, with no deployment.
    #[serde(default, skip_serializing_if = "StageSettings::is_empty")]
    pub stage_settings: StageSettings,
    /// The REST API's resource policy, an IAM policy document written as YAML (e.g. callers
    /// restricted to source VPCs, IP ranges or the organization). Compared with the live one by
    /// meaning, not as text; a change is deployed. Widening it to everyone is held by the
    /// protection guard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<std::collections::BTreeMap<String, serde_json::Value>>")]
    pub resource_policy: Option<serde_json::Value>,
    /// A regional AWS WAF web ACL associated with the stage
    /// (`arn:aws:wafv2:<region>:<account>:regional/webacl/<name>/<id>`). Removing it is held by
    /// the protection guard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_acl_arn: Option<String>,
    /// A regional custom domain name for the stage: its ACM certificate, TLS security policy,
    /// base path and optional mutual TLS. DNS is not managed: `/status` says which record to
    /// create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_domain: Option<Box<CustomDomain>>,
}

/// A regional custom domain name mapped to the gateway's stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomDomain {
    /// The domain name callers use, e.g. `api.bank.example` (lower case; not under
    /// `amazonaws.com`).
    pub domain_name: String,
    /// An ACM certificate for the name, in the gateway's region
    /// (`arn:aws:acm:<region>:<account>:certificate/<id>`).
    pub certificate_arn: String,
    /// The TLS security policy of the domain (default `TLS_1_2`). Lowering it is held by the
    /// protection guard.
    #[serde(default)]
    pub security_policy: TlsPolicy,
    /// The base path the stage is mapped to (`payments`, `v1/payments`); absent: the root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_path: Option<String>,
    /// Mutual TLS: callers must present a client certificate trusted by this truststore.
    /// Turning it off is held by the protection guard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mutual_tls: Option<MutualTls>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
pub enum TlsPolicy {
    #[serde(rename = "TLS_1_0")]
    Tls10,
    #[default]
    #[serde(rename = "TLS_1_2")]
    Tls12,
}

impl TlsPolicy {
    pub const ALL: &'static [(&'static str, TlsPolicy)] =
        &[("TLS_1_0", TlsPolicy::Tls10), ("TLS_1_2", TlsPolicy::Tls12)];

    pub fn as_str(self) -> &'static str {
        match self {
            TlsPolicy::Tls10 => "TLS_1_0",
            TlsPolicy::Tls12 => "TLS_1_2",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MutualTls {
    /// `s3://<bucket>/<key>` of the PEM truststore (the CA certificates callers' certificates
    /// must chain to).
    pub truststore_uri: String,
    /// The S3 object version of the truststore (versioned buckets); absent: the latest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truststore_version: Option<String>,
}

/// The gateway stage's settings. Each group is managed once it is written here; a group left
/// out is left as it is, except that crosslink resets the groups it set before (remembered in
/// the stage's `crosslink.dev/stage-settings` tag) when they leave the YAML. Throttling is never
/// reset implicitly: removing a limit is left to an explicit value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StageSettings {
    /// The stage's default throttling of every method (routes may set their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttling: Option<Throttle>,
    /// Access logging: one line per request to a CloudWatch Logs group or a Firehose stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_logs: Option<AccessLogs>,
    /// Execution logging to CloudWatch Logs (`API-Gateway-Execution-Logs_<api id>/<stage>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_logs: Option<ExecutionLogs>,
    /// Detailed CloudWatch metrics per method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detailed_metrics: Option<bool>,
    /// AWS X-Ray tracing of requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<bool>,
    /// Stage variables: crosslink owns the stage's whole variable map once this is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<BTreeMap<String, String>>,
}

impl StageSettings {
    pub fn is_empty(&self) -> bool {
        *self == StageSettings::default()
    }
}

/// A throttle: the steady rate and the burst API Gateway allows before answering 429.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Throttle {
    /// Requests per second, steady state.
    pub rate_limit: u32,
    /// Requests allowed at once above the rate (the token bucket's size).
    pub burst_limit: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessLogs {
    /// `arn:aws:logs:<region>:<account>:log-group:<name>` or a Kinesis Data Firehose stream
    /// `arn:aws:firehose:<region>:<account>:deliverystream/amazon-apigateway-<name>`.
    pub destination_arn: String,
    /// The line format, with `$context` variables; it must include `$context.requestId` or
    /// `$context.extendedRequestId`. Default: a JSON line (`DEFAULT_ACCESS_LOG_FORMAT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

/// The access log line crosslink writes unless told otherwise: JSON, with what an on-call
/// engineer needs to follow a request (never a header or body, so no key or token is logged).
pub const DEFAULT_ACCESS_LOG_FORMAT: &str = r#"{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","caller":"$context.identity.caller","apiKeyId":"$context.identity.apiKeyId","time":"$context.requestTime","method":"$context.httpMethod","path":"$context.resourcePath","status":"$context.status","length":"$context.responseLength","latencyMs":"$context.responseLatency","integrationLatencyMs":"$context.integrationLatency","error":"$context.error.message"}"#;

impl AccessLogs {
    pub fn format(&self) -> &str {
        self.format.as_deref().unwrap_or(DEFAULT_ACCESS_LOG_FORMAT)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecutionLogs {
    /// `OFF`, `ERROR` or `INFO`.
    pub level: LogLevel,
    /// Log full requests and responses. They may carry personal data and credentials: AWS
    /// advises against it in production.
    #[serde(default)]
    pub data_trace: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub enum LogLevel {
    #[serde(rename = "OFF")]
    Off,
    #[serde(rename = "ERROR")]
    Error,
    #[serde(rename = "INFO")]
    Info,
}

impl LogLevel {
    pub const ALL: &'static [(&'static str, LogLevel)] =
        &[("OFF", LogLevel::Off), ("ERROR", LogLevel::Error), ("INFO", LogLevel::Info)];

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Off => "OFF",
            LogLevel::Error => "ERROR",
            LogLevel::Info => "INFO",
        }
    }
}

/// An authorizer of the gateway's REST API. crosslink creates it, repairs its drift and deletes
/// it once no longer desired (after the methods that use it have moved off it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthorizerSpec {
    /// Its name in the REST API, unique among the gateway's authorizers; routes refer to it.
    pub name: String,
    /// `TOKEN` (a Lambda function given a bearer token), `REQUEST` (a Lambda function given the
    /// request's identity sources) or `COGNITO_USER_POOLS`.
    #[serde(rename = "type")]
    pub kind: AuthorizerType,
    /// TOKEN and REQUEST: the ARN of the Lambda function that decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda_arn: Option<String>,
    /// COGNITO_USER_POOLS: the ARNs of the user pools whose tokens are accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provider_arns: Vec<String>,
    /// Where the caller's identity is read, e.g. `method.request.header.Authorization` (the
    /// default for TOKEN and COGNITO_USER_POOLS); REQUEST lists its sources comma-separated and
    /// needs them while results are cached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_source: Option<String>,
    /// How long API Gateway caches a decision, from 0 (never) to 3600 seconds; default 300.
    #[serde(default = "default_authorizer_ttl")]
    pub result_ttl_seconds: u16,
    /// TOKEN and REQUEST: a role API Gateway assumes to invoke the function (otherwise the
    /// function's resource policy must let apigateway.amazonaws.com invoke it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_role_arn: Option<String>,
}

pub(crate) fn default_authorizer_ttl() -> u16 {
    300
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
pub enum AuthorizerType {
    #[serde(rename = "TOKEN")]
    Token,
    #[serde(rename = "REQUEST")]
    Request,
    #[serde(rename = "COGNITO_USER_POOLS")]
    CognitoUserPools,
}

impl AuthorizerType {
    pub const ALL: &'static [(&'static str, AuthorizerType)] = &[
        ("TOKEN", AuthorizerType::Token),
        ("REQUEST", AuthorizerType::Request),
        ("COGNITO_USER_POOLS", AuthorizerType::CognitoUserPools),
    ];

    /// As AWS names it (`type` of an authorizer).
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorizerType::Token => "TOKEN",
            AuthorizerType::Request => "REQUEST",
            AuthorizerType::CognitoUserPools => "COGNITO_USER_POOLS",
        }
    }

    /// The `authorizationType` of a method that uses an authorizer of this type.
    pub fn method_authorization(self) -> &'static str {
        match self {
            AuthorizerType::Token | AuthorizerType::Request => "CUSTOM",
            AuthorizerType::CognitoUserPools => "COGNITO_USER_POOLS",
        }
    }
}

impl ApiRef {
    /// A route's effective protection: its own setting, else the gateway's default.
    pub fn protection_of(&self, r: &RouteSpec) -> (Authorization, bool) {
        (
            r.authorization.clone().or_else(|| self.authorization.clone()).unwrap_or(Authorization::NONE),
            r.api_key_required.or(self.api_key_required).unwrap_or(false),
        )
    }

    pub fn authorizer(&self, name: &str) -> Option<&AuthorizerSpec> {
        self.authorizers.iter().find(|a| a.name == name)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ApiTarget {
    /// Create (and own) a regional REST API of this name.
    Name(String),
    /// Use this existing REST API; crosslink adds resources but never deletes the API.
    Id(String),
}

/// Whether crosslink takes over matching resources it did not create.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub enum AdoptionPolicy {
    /// A matching resource without crosslink's tags is refused (the default).
    #[default]
    Never,
    /// A matching resource without crosslink's tags is adopted: `plan` shows it with the verb
    /// `adopt`, the live id and the rule that matched; the first apply tags it, and from then on
    /// it is crosslink's. A resource of another crosslink instance is never adopted.
    Adopt,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Remove the AWS resources when the object leaves desired state.
    #[default]
    Delete,
    /// Leave the AWS resources in place (and say so) when the object leaves desired state.
    Retain,
}

/// One service reached through a gateway.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Link {
    pub api_version: ApiVersion,
    pub metadata: Metadata,
    pub spec: LinkSpec,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinkSpec {
    /// The name of the Gateway this link is served through.
    pub gateway: String,
    /// A sentence for people reading status pages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub service: ServiceSide,
    /// Private IPs in the service VPC (RFC 1918 or 100.64.0.0/10), registered in AZ `all`.
    pub targets: Vec<Target>,
    /// The NLB listener port of this link; unique per gateway.
    pub listener_port: u16,
    /// How many targets must pass their health checks for the link to be Healthy (traffic can
    /// flow); at most the number of targets. 0 makes target health informational.
    #[serde(default = "default_min_healthy_targets")]
    pub min_healthy_targets: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// API paths served by this link: each serves `path` and `path/{proxy+}`.
    pub routes: Vec<RouteSpec>,
    /// TLS from API Gateway to the link: its listener is a TLS listener with this certificate,
    /// and its integrations are `https://<serverName>:<listenerPort>/...`, checked by API
    /// Gateway. Switching it off, or switching the check off, is held by the protection guard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<BackendTls>,
    #[serde(default)]
    pub peering: PeeringOptions,
    /// How requests reach the service VPC: `peering` (the default: a VPC peering and routes both
    /// ways) or `privateLink` (an endpoint service on a service-side NLB and an interface endpoint
    /// in the gateway VPC: no routes, so the VPCs' CIDRs may overlap).
    #[serde(default, skip_serializing_if = "Transport::is_peering")]
    pub transport: Transport,
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// `Adopt`: resources built without crosslink (by hand, by Terraform) that match this link
    /// are taken over in place instead of refused, tagged as crosslink's on the first apply.
    #[serde(default)]
    pub adoption: AdoptionPolicy,
    /// Extra AWS tags for the resources crosslink creates for this link.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// A link's transport between the gateway VPC and the service VPC.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Transport {
    /// VPC peering with routes both ways (the default).
    #[default]
    Peering,
    /// AWS PrivateLink: no routing between the VPCs.
    PrivateLink(PrivateLink),
}

impl Transport {
    pub fn is_peering(&self) -> bool {
        matches!(self, Transport::Peering)
    }

    /// Whether the transport routes between the two VPCs (their CIDRs must not overlap).
    pub fn routes(&self) -> bool {
        self.is_peering()
    }

    pub fn private_link(&self) -> Option<&PrivateLink> {
        match self {
            Transport::PrivateLink(p) => Some(p),
            Transport::Peering => None,
        }
    }

    /// Its name in the format, logs and metric labels.
    pub fn name(&self) -> &'static str {
        match self {
            Transport::Peering => "peering",
            Transport::PrivateLink(_) => "privateLink",
        }
    }
}

/// The service side of a PrivateLink transport: an internal NLB in the service VPC with the
/// link's listener and targets, and a VPC endpoint service on it that only the gateway account
/// may connect to (acceptance required). The gateway side is an interface endpoint in the
/// gateway's subnets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrivateLink {
    /// The service-side NLB: by name (created and owned by crosslink, in `subnetIds`) or by ARN
    /// (an existing internal NLB in the service VPC, never deleted).
    pub load_balancer: LoadBalancerRef,
    /// The service VPC's subnets for an NLB crosslink creates (one per Availability Zone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subnet_ids: Vec<String>,
}

/// TLS from API Gateway to a link's listener.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendTls {
    /// The listener's ACM certificate, in the gateway's region; it must cover `serverName`.
    pub certificate_arn: String,
    /// The listener's security policy (default `ELBSecurityPolicy-TLS13-1-2-2021-06`).
    #[serde(default = "default_ssl_policy")]
    pub ssl_policy: String,
    /// The name API Gateway sends (SNI, `Host`) and checks the certificate against: the host of
    /// the integration URIs. The VPC link routes the request, so it need not resolve.
    pub server_name: String,
    /// Accept any certificate (a private CA, an expired one). Default false; turning it on is
    /// held by the protection guard.
    #[serde(default)]
    pub insecure_skip_verification: bool,
}

pub const DEFAULT_SSL_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";

pub fn default_ssl_policy() -> String {
    DEFAULT_SSL_POLICY.to_string()
}

/// API Gateway's integration timeout, and its range (above 29,000 ms needs a raised quota in
/// the account, for Regional and private APIs).
pub const DEFAULT_TIMEOUT_MILLIS: u32 = 29_000;
pub const MAX_TIMEOUT_MILLIS: u32 = 300_000;

pub fn default_min_healthy_targets() -> u16 {
    1
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceSide {
    /// The name of the Account the service runs in (it accepts the peering).
    pub account: String,
    pub vpc_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub cidr: Option<Ipv4Net>,
    /// Route tables that get the route back to the gateway VPC (peering; none for privateLink).
    #[serde(default)]
    pub route_table_ids: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Target {
    #[schemars(with = "String")]
    pub ip: Ipv4Addr,
    pub port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheck {
    pub protocol: HealthProtocol,
    /// Required for HTTP and HTTPS, not allowed for TCP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Default: the target's own port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// 5 to 300 seconds; default 30.
    #[serde(default = "default_interval")]
    pub interval_seconds: u16,
    /// 2 to 10; default 3.
    #[serde(default = "default_threshold")]
    pub healthy_threshold: u8,
    /// 2 to 10; default 3.
    #[serde(default = "default_threshold")]
    pub unhealthy_threshold: u8,
}

pub(crate) fn default_interval() -> u16 {
    30
}
pub(crate) fn default_threshold() -> u8 {
    3
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            protocol: HealthProtocol::Tcp,
            path: None,
            port: None,
            interval_seconds: default_interval(),
            healthy_threshold: default_threshold(),
            unhealthy_threshold: default_threshold(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HealthProtocol {
    Tcp,
    Http,
    Https,
}

impl HealthProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthProtocol::Tcp => "TCP",
            HealthProtocol::Http => "HTTP",
            HealthProtocol::Https => "HTTPS",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteSpec {
    /// `/segment[/segment...]`; serves the path itself and everything below it.
    pub path: String,
    /// Default `[ANY]`.
    #[serde(default = "default_methods")]
    pub methods: Vec<HttpMethod>,
    /// Who may call the route; default: the gateway's `api.authorization` (itself `NONE` by
    /// default). Changing it to something weaker is held by the protection guard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    /// Whether callers must send an API key (`x-api-key`); default: the gateway's
    /// `api.apiKeyRequired` (itself false by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_required: Option<bool>,
    /// The route's own throttle (its methods and its `{proxy+}`), instead of the stage's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttling: Option<Throttle>,
    /// How long API Gateway waits for the backend, in ms: 50 to 29,000 (the default), or up to
    /// 300,000 where the account's quota was raised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_millis: Option<u32>,
}

/// Who may call a route: `NONE`, `AWS_IAM`, or one of the gateway's authorizers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Authorization {
    /// `NONE` or `AWS_IAM`.
    Builtin(BuiltinAuthorization),
    /// `{authorizer: <name>, scopes: [...]}`: one of the gateway's `api.authorizers`.
    Authorizer(AuthorizerUse),
}

impl Authorization {
    pub const NONE: Authorization = Authorization::Builtin(BuiltinAuthorization::None);
}

/// A method's `authorizationType` that needs no authorizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
pub enum BuiltinAuthorization {
    /// Anyone who can reach the API.
    #[serde(rename = "NONE")]
    None,
    /// Callers sign their requests with SigV4 and need `execute-api:Invoke` on the route.
    #[serde(rename = "AWS_IAM")]
    AwsIam,
}

impl BuiltinAuthorization {
    pub const ALL: &'static [(&'static str, BuiltinAuthorization)] =
        &[("NONE", BuiltinAuthorization::None), ("AWS_IAM", BuiltinAuthorization::AwsIam)];

    pub fn as_str(self) -> &'static str {
        match self {
            BuiltinAuthorization::None => "NONE",
            BuiltinAuthorization::AwsIam => "AWS_IAM",
        }
    }
}

/// A route protected by one of the gateway's authorizers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthorizerUse {
    /// The authorizer's `name` in the gateway's `api.authorizers`.
    pub authorizer: String,
    /// COGNITO_USER_POOLS only: OAuth scopes of which the access token must carry one (the
    /// method's `authorizationScopes`); without them an identity token is accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
}

pub(crate) fn default_methods() -> Vec<HttpMethod> {
    vec![HttpMethod::Any]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Any,
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
    Options,
}

impl HttpMethod {
    pub const ALL: &'static [&'static str] = &["ANY", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

    pub fn as_str(self) -> &'static str {
        Self::ALL[self as usize]
    }

    pub fn parse(s: &str) -> Option<HttpMethod> {
        use HttpMethod::*;
        [Any, Get, Post, Put, Patch, Delete, Head, Options].into_iter().find(|m| m.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PeeringOptions {
    /// Let the gateway VPC resolve the service VPC's private DNS names (default false).
    #[serde(default)]
    pub allow_dns_resolution: bool,
}

/// A consumer of the gateways (a partner, a team, an app): its usage plan over the gateways'
/// stages and its API key. AWS generates the key's value; crosslink never reads, logs or shows
/// it, only the key's id.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Consumer {
    pub api_version: ApiVersion,
    pub metadata: Metadata,
    pub spec: ConsumerSpec,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsumerSpec {
    /// Who the consumer is, for people (the usage plan's description).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The Gateways whose stages the consumer may call with its key, all in one Account (a usage
    /// plan and an API key belong to one AWS account and region).
    pub gateways: Vec<String>,
    /// The consumer's own steady rate and burst over all its gateways.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttling: Option<Throttle>,
    /// How many requests the consumer may make per day, week or month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
    /// Throttles of the consumer on single routes of its gateways.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<ConsumerRoute>,
    /// The consumer's API key.
    #[serde(default)]
    pub api_key: ApiKeySpec,
    /// Extra AWS tags for the usage plan and API keys.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// What happens to the usage plan and keys when the Consumer is removed from desired state.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// A usage plan quota: at most `limit` requests per `period`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Quota {
    pub limit: u32,
    pub period: QuotaPeriod,
    /// Requests already counted at the start of the first period (AWS's `offset`); default 0.
    #[serde(default)]
    pub offset: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum QuotaPeriod {
    Day,
    Week,
    Month,
}

impl QuotaPeriod {
    pub const ALL: &'static [(&'static str, QuotaPeriod)] =
        &[("DAY", QuotaPeriod::Day), ("WEEK", QuotaPeriod::Week), ("MONTH", QuotaPeriod::Month)];

    pub fn as_str(self) -> &'static str {
        match self {
            QuotaPeriod::Day => "DAY",
            QuotaPeriod::Week => "WEEK",
            QuotaPeriod::Month => "MONTH",
        }
    }
}

/// The consumer's throttle on one route of one of its gateways (the route's methods and its
/// `{proxy+}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsumerRoute {
    /// One of the consumer's `gateways`; may be left out when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// A route `path` of one of the gateway's Links.
    pub path: String,
    pub throttling: Throttle,
}

/// The consumer's API key. Rotating it: raise `generation`. crosslink makes a new key and adds
/// it to the usage plan, keeps the previous key working for `overlapHours` so that the consumer
/// can switch, then deletes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeySpec {
    /// The key's generation, from 1; raising it rotates the key.
    #[serde(default = "default_generation")]
    pub generation: u32,
    /// How long a previous key keeps working after the next one is made: 0 to 720 hours
    /// (default 24).
    #[serde(default = "default_overlap_hours")]
    pub overlap_hours: u32,
    /// `false` suspends the consumer: its keys are disabled, not deleted (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
}

pub(crate) fn default_generation() -> u32 {
    1
}
pub(crate) fn default_overlap_hours() -> u32 {
    24
}
pub(crate) fn default_true() -> bool {
    true
}

impl Default for ApiKeySpec {
    fn default() -> Self {
        ApiKeySpec { generation: default_generation(), overlap_hours: default_overlap_hours(), enabled: true }
    }
}

/// A whole, loaded desired state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DesiredState {
    pub accounts: Vec<Account>,
    pub gateways: Vec<Gateway>,
    pub links: Vec<Link>,
    pub consumers: Vec<Consumer>,
    /// The files it was read from, in order.
    pub files: Vec<PathBuf>,
}

impl DesiredState {
    pub fn account(&self, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.metadata.name == name)
    }
    pub fn gateway(&self, name: &str) -> Option<&Gateway> {
        self.gateways.iter().find(|g| g.metadata.name == name)
    }
    pub fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.metadata.name == name)
    }
    pub fn links_of<'a>(&'a self, gateway: &'a str) -> impl Iterator<Item = &'a Link> + 'a {
        self.links.iter().filter(move |l| l.spec.gateway == gateway)
    }
    pub fn consumer(&self, name: &str) -> Option<&Consumer> {
        self.consumers.iter().find(|c| c.metadata.name == name)
    }
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.gateways.is_empty() && self.links.is_empty() && self.consumers.is_empty()
    }
    /// A one-line summary, as `crosslink validate` prints it.
    pub fn summary(&self) -> String {
        let routes: usize = self.links.iter().map(|l| l.spec.routes.len()).sum();
        let targets: usize = self.links.iter().map(|l| l.spec.targets.len()).sum();
        let consumers = match self.consumers.len() {
            0 => String::new(),
            n => format!(", {n} consumer{}", plural(n)),
        };
        format!(
            "{} account{}, {} gateway{}, {} link{} ({} route{}, {} target{}){consumers} from {} file{}",
            self.accounts.len(),
            plural(self.accounts.len()),
            self.gateways.len(),
            plural(self.gateways.len()),
            self.links.len(),
            plural(self.links.len()),
            routes,
            plural(routes),
            targets,
            plural(targets),
            self.files.len(),
            plural(self.files.len()),
        )
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
