//! Live AWS state as plain data: what the AWS adapter reads, and all the planner sees.
//! Only the fields crosslink decides on are kept.

use std::collections::BTreeMap;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

pub use crate::kinds::api_key::ApiKey;
pub use crate::kinds::api_resource::ApiResource;
pub use crate::kinds::authorizer::Authorizer;
pub use crate::kinds::domain_name::{BasePathMapping, DomainName};
pub use crate::kinds::endpoint::{Endpoint, EndpointInterface};
pub use crate::kinds::endpoint_service::EndpointService;
pub use crate::kinds::listener::Listener;
pub use crate::kinds::load_balancer::LoadBalancer;
pub use crate::kinds::method::{ApiMethod, Integration};
pub use crate::kinds::peering::{Peering, PeeringStatus};
pub use crate::kinds::rest_api::RestApi;
pub use crate::kinds::route::{Route, RouteTable};
pub use crate::kinds::security_group::{IngressRule, SecurityGroup};
pub use crate::kinds::stage::{AccessLog, ApiGatewayAccount, LiveStageSettings, MethodSetting, Stage};
pub use crate::kinds::target_group::{HealthCheckSettings, TargetGroup};
pub use crate::kinds::targets::RegisteredTarget;
pub use crate::kinds::usage_plan::{ApiStage, LiveQuota, LiveThrottle, UsagePlan};
pub use crate::kinds::vpc_link::VpcLink;

pub type Tags = BTreeMap<String, String>;

/// Everything observed in one pass, by Account name. It round-trips through JSON (camelCase,
/// unknown fields refused), so that a pass can be kept as data: the planner's golden tests read it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observed {
    pub accounts: BTreeMap<String, AccountObservation>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "camelCase", deny_unknown_fields)]
pub enum AccountObservation {
    Ok(Box<AccountState>),
    /// Credentials, identity check or a read failed: nothing is planned in this account.
    Failed {
        code: String,
        message: String,
        /// Throttling, a 5xx, a timeout, an endpoint not answering: likely to pass, so worth
        /// reading again soon. Access denied or a wrong account is not.
        #[serde(default)]
        retryable: bool,
    },
}

/// Generated from the registration (`for_each_kind!`): a field of [`AccountState`] for each kind
/// observed on its own, of its module's type `Observed`.
macro_rules! account_state {
    ($($Kind:ident => $module:ident : $KindOp:ident, $label:literal, $stage:ident $(, $field:ident)?;)*) => {
        /// What one account holds in its region. Network-side reads (VPCs, peerings, route
        /// tables) happen in every account; load balancers and API Gateway only where a Gateway
        /// lives. Besides the account's VPCs, one field per kind observed on its own (the
        /// registration names it), in dependency order; the other kinds sit in their parent's.
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct AccountState {
            pub account_id: String,
            pub region: String,
            pub vpcs: BTreeMap<String, Vpc>,
            /// API Gateway's account settings, where a Gateway lives (older observations lack it).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub api_gateway_account: Option<crate::kinds::stage::ApiGatewayAccount>,
            /// When the account was read, in seconds since the Unix epoch: the planner's only
            /// clock (an API key's rotation overlap is measured against it).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub observed_at: Option<i64>,
            // An observation kept from before a kind existed reads as holding none of it.
            $($(#[serde(default)] pub $field: crate::kinds::$module::Observed,)?)*
        }
    };
}

crate::for_each_kind!(account_state);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Vpc {
    pub id: String,
    /// Associated IPv4 CIDR blocks, primary first.
    pub cidrs: Vec<Ipv4Net>,
}

impl AccountState {
    pub fn peering(&self, id: &str) -> Option<&Peering> {
        self.peerings.iter().find(|p| p.id == id)
    }
    pub fn load_balancer(&self, arn: &str) -> Option<&LoadBalancer> {
        self.load_balancers.iter().find(|l| l.arn == arn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// Every type and both shapes of each optional field.
    fn observed() -> Observed {
        let net = |s: &str| -> Ipv4Net { s.parse().unwrap() };
        let hc = HealthCheckSettings {
            protocol: "HTTP".into(),
            path: Some("/health".into()),
            port: "traffic-port".into(),
            interval_seconds: 30,
            healthy_threshold: 3,
            unhealthy_threshold: 2,
        };
        let st = AccountState {
            account_id: "111111111111".into(),
            region: "eu-central-1".into(),
            api_gateway_account: Some(ApiGatewayAccount {
                cloudwatch_role_arn: Some("arn:aws:iam::111111111111:role/apigw-logs".into()),
            }),
            vpcs: BTreeMap::from([(
                "vpc-a".to_string(),
                Vpc { id: "vpc-a".into(), cidrs: vec![net("10.1.0.0/16"), net("100.64.0.0/16")] },
            )]),
            peerings: vec![Peering {
                id: "pcx-1".into(),
                requester_vpc: "vpc-a".into(),
                requester_account: "111111111111".into(),
                accepter_vpc: "vpc-b".into(),
                accepter_account: "222222222222".into(),
                status: PeeringStatus::PendingAcceptance,
                tags: tags(&[("crosslink.dev/managed-by", "crosslink")]),
                accepter_dns_resolution: true,
            }],
            route_tables: BTreeMap::from([(
                "rtb-a".to_string(),
                RouteTable {
                    id: "rtb-a".into(),
                    vpc_id: "vpc-a".into(),
                    routes: vec![
                        Route {
                            destination: net("10.20.0.0/16"),
                            peering_id: Some("pcx-1".into()),
                            other_target: None,
                            blackhole: true,
                        },
                        Route {
                            destination: net("0.0.0.0/0"),
                            peering_id: None,
                            other_target: Some("igw-1".into()),
                            blackhole: false,
                        },
                    ],
                },
            )]),
            endpoint_services: vec![EndpointService {
                id: "vpce-svc-1".into(),
                service_name: "com.amazonaws.vpce.eu-central-1.vpce-svc-1".into(),
                load_balancer_arns: vec!["arn:lb-svc".into()],
                acceptance_required: true,
                allowed_principals: vec!["arn:aws:iam::111111111111:root".into()],
                state: "Available".into(),
                tags: tags(&[("crosslink.dev/transport", "privateLink")]),
            }],
            security_groups: vec![SecurityGroup {
                id: "sg-1".into(),
                name: "crosslink-a-endpoint".into(),
                vpc_id: "vpc-a".into(),
                ingress: vec![IngressRule { protocol: "tcp".into(), from_port: 9001, to_port: 9001, cidr: net("10.1.0.0/16") }],
                tags: Tags::new(),
            }],
            endpoints: vec![Endpoint {
                id: "vpce-1".into(),
                vpc_id: "vpc-a".into(),
                service_name: "com.amazonaws.vpce.eu-central-1.vpce-svc-1".into(),
                state: "pendingAcceptance".into(),
                subnet_ids: vec!["subnet-a".into()],
                security_group_ids: vec!["sg-1".into()],
                interfaces: vec![EndpointInterface { ip: "10.1.0.100".parse().unwrap(), availability_zone: "eu-central-1a".into() }],
                tags: Tags::new(),
            }],
            load_balancers: vec![LoadBalancer {
                arn: "arn:lb".into(),
                name: "edge-nlb".into(),
                dns_name: "edge-nlb.example".into(),
                vpc_id: "vpc-a".into(),
                kind: "network".into(),
                internal: true,
                state: "active".into(),
                subnet_ids: vec!["subnet-1".into()],
                tags: Tags::new(),
            }],
            listeners: vec![
                Listener {
                    arn: "arn:l1".into(),
                    load_balancer_arn: "arn:lb".into(),
                    port: 9001,
                    protocol: "TCP".into(),
                    target_group_arn: Some("arn:tg".into()),
                    certificate_arn: None,
                    ssl_policy: None,
                    tags: Tags::new(),
                },
                Listener {
                    arn: "arn:l2".into(),
                    load_balancer_arn: "arn:lb".into(),
                    port: 9002,
                    protocol: "TCP".into(),
                    target_group_arn: None,
                    certificate_arn: None,
                    ssl_policy: None,
                    tags: Tags::new(),
                },
            ],
            target_groups: vec![TargetGroup {
                arn: "arn:tg".into(),
                name: "cl-pay-123456".into(),
                vpc_id: "vpc-a".into(),
                protocol: "TCP".into(),
                port: 8080,
                target_type: "ip".into(),
                health_check: hc.clone(),
                tags: Tags::new(),
                targets: vec![
                    RegisteredTarget {
                        ip: "10.20.1.10".parse().unwrap(),
                        port: 8080,
                        availability_zone: Some("all".into()),
                        health: "healthy".into(),
                        reason: None,
                        description: None,
                    },
                    RegisteredTarget {
                        ip: "10.20.1.11".parse().unwrap(),
                        port: 8080,
                        availability_zone: None,
                        health: "draining".into(),
                        reason: Some("Target.DeregistrationInProgress".into()),
                        description: Some("Target deregistration is in progress".into()),
                    },
                ],
            }],
            vpc_links: vec![VpcLink {
                id: "vl-1".into(),
                name: "crosslink-edge".into(),
                target_arns: vec!["arn:lb".into()],
                status: "FAILED".into(),
                status_message: Some("NLB not found".into()),
                tags: Tags::new(),
            }],
            rest_apis: vec![RestApi {
                id: "api-1".into(),
                name: "open-banking".into(),
                tags: Tags::new(),
                resources: vec![
                    ApiResource { id: "r-root".into(), parent_id: None, path: "/".into(), methods: BTreeMap::new() },
                    ApiResource {
                        id: "r-pay".into(),
                        parent_id: Some("r-root".into()),
                        path: "/payments".into(),
                        methods: BTreeMap::from([
                            (
                                "ANY".to_string(),
                                ApiMethod {
                                    authorization_type: "AWS_IAM".into(),
                                    api_key_required: true,
                                    authorizer_id: None,
                                    authorization_scopes: vec![],
                                    integration: Some(Integration {
                                        kind: "HTTP_PROXY".into(),
                                        http_method: Some("ANY".into()),
                                        uri: Some("http://edge-nlb.example:9001/payments".into()),
                                        connection_type: Some("VPC_LINK".into()),
                                        connection_id: None,
                                        insecure_skip_verification: false,
                                        timeout_millis: None,
                                    }),
                                },
                            ),
                            (
                                "GET".to_string(),
                                ApiMethod {
                                    authorization_type: "NONE".into(),
                                    api_key_required: false,
                                    authorizer_id: None,
                                    authorization_scopes: vec![],
                                    integration: None,
                                },
                            ),
                        ]),
                    },
                ],
                stages: vec![
                    Stage {
                        name: "v1".into(),
                        deployment_id: Some("d-1".into()),
                        tags: tags(&[("k", "v")]),
                        settings: LiveStageSettings {
                            method_settings: [(
                                "*/*".to_string(),
                                MethodSetting {
                                    throttling_rate_limit: Some(100.0),
                                    throttling_burst_limit: Some(200),
                                    logging_level: Some("ERROR".into()),
                                    data_trace_enabled: false,
                                    metrics_enabled: true,
                                },
                            )]
                            .into(),
                            access_log: Some(AccessLog {
                                destination_arn: Some("arn:aws:logs:eu-west-1:111111111111:log-group:access".into()),
                                format: Some("$context.requestId".into()),
                            }),
                            tracing_enabled: true,
                            variables: [("k".to_string(), "v".to_string())].into(),
                            web_acl_arn: Some(
                                "arn:aws:wafv2:eu-central-1:111111111111:regional/webacl/edge/0a1b2c3d".into(),
                            ),
                        },
                    },
                    Stage { name: "v2".into(), deployment_id: None, tags: Tags::new(), settings: Default::default() },
                ],
                authorizers: vec![Authorizer {
                    id: "au1".into(),
                    name: "partners".into(),
                    kind: "TOKEN".into(),
                    provider_arns: vec![],
                    authorizer_uri: Some("arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:111111111111:function:authz/invocations".into()),
                    credentials: None,
                    identity_source: Some("method.request.header.Authorization".into()),
                    result_ttl_seconds: Some(300),
                    auth_type: Some("crosslink:default".into()),
                }],
                policy: Some(r#"{"Version":"2012-10-17","Statement":[]}"#.into()),
            }],
            usage_plans: vec![UsagePlan {
                id: "up1".into(),
                name: "crosslink-acme".into(),
                description: Some("Acme".into()),
                throttle: Some(LiveThrottle { rate_limit: 50.0, burst_limit: 100 }),
                quota: Some(LiveQuota { limit: 10_000, period: "DAY".into(), offset: 0 }),
                api_stages: vec![ApiStage {
                    api_id: "api1".into(),
                    stage: "v1".into(),
                    throttle: BTreeMap::from([(
                        "/payments/POST".to_string(),
                        LiveThrottle { rate_limit: 5.0, burst_limit: 10 },
                    )]),
                }],
                key_ids: vec!["key1".into()],
                tags: tags(&[("crosslink.dev/owner", "Consumer/acme")]),
            }],
            api_keys: vec![ApiKey {
                id: "key1".into(),
                name: "crosslink-acme-g1".into(),
                enabled: true,
                created_date: 1_800_000_000,
                tags: tags(&[("crosslink.dev/key-generation", "1")]),
            }],
            observed_at: Some(1_800_000_600),
            domain_names: vec![DomainName {
                name: "api.bank.example".into(),
                regional_domain_name: Some("d-abc.execute-api.eu-central-1.amazonaws.com".into()),
                regional_hosted_zone_id: Some("Z1U9ULNL0V5AJ3".into()),
                certificate_arn: Some("arn:aws:acm:eu-central-1:111111111111:certificate/c1".into()),
                security_policy: Some("TLS_1_2".into()),
                truststore_uri: Some("s3://bank-truststores/tpp-ca.pem".into()),
                truststore_version: None,
                tags: tags(&[("crosslink.dev/owner", "Gateway/edge")]),
                mappings: vec![BasePathMapping { base_path: "open-banking".into(), rest_api_id: "api1".into(), stage: Some("v1".into()) }],
            }],
        };
        Observed {
            accounts: BTreeMap::from([
                ("shared".to_string(), AccountObservation::Ok(Box::new(st))),
                (
                    "svc-a".to_string(),
                    AccountObservation::Failed { code: "AccessDenied".into(), message: "no".into(), retryable: false },
                ),
            ]),
        }
    }

    #[test]
    fn observed_round_trips_through_json() {
        let o = observed();
        let json = serde_json::to_string_pretty(&o).unwrap();
        let back: Observed = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}\n{json}"));
        assert_eq!(back, o);
        // Every status keeps its name.
        for s in [
            PeeringStatus::PendingAcceptance,
            PeeringStatus::Provisioning,
            PeeringStatus::Active,
            PeeringStatus::Rejected,
            PeeringStatus::Expired,
            PeeringStatus::Failed,
            PeeringStatus::Deleting,
            PeeringStatus::Deleted,
            PeeringStatus::Other,
        ] {
            let text = serde_json::to_string(&s).unwrap();
            assert_eq!(serde_json::from_str::<PeeringStatus>(&text).unwrap(), s);
        }
    }

    #[test]
    fn observed_json_is_camel_case_and_refuses_unknown_fields() {
        let v = serde_json::to_value(observed()).unwrap();
        let shared = &v["accounts"]["shared"];
        assert_eq!(shared["result"], "ok");
        assert_eq!(shared["accountId"], "111111111111");
        assert_eq!(shared["peerings"][0]["status"], "pending-acceptance");
        assert_eq!(shared["peerings"][0]["accepterDnsResolution"], true);
        assert_eq!(shared["targetGroups"][0]["healthCheck"]["intervalSeconds"], 30);
        assert_eq!(shared["routeTables"]["rtb-a"]["routes"][0]["destination"], "10.20.0.0/16");
        assert_eq!(v["accounts"]["svc-a"]["result"], "failed");

        // A typo in a hand-written observation is an error, not a silently missing field.
        let mut typo = v.clone();
        typo["accounts"]["shared"]["targetGroups"][0]["helthCheck"] = serde_json::json!({});
        let e = serde_json::from_value::<Observed>(typo).unwrap_err().to_string();
        assert!(e.contains("helthCheck"), "{e}");
        let mut typo = v;
        typo["accounts"]["shared"]["regin"] = "x".into();
        assert!(serde_json::from_value::<Observed>(typo).is_err());
        // Optional flags may be left out.
        let failed: AccountObservation =
            serde_json::from_str(r#"{"result": "failed", "code": "Throttling", "message": "slow down"}"#).unwrap();
        assert_eq!(
            failed,
            AccountObservation::Failed { code: "Throttling".into(), message: "slow down".into(), retryable: false }
        );
    }
}
