//! The proxy between the real AWS SDK and moto: it counts every call, names operations of each
//! protocol as the SDK (and crosslink's adapter) does, and its faults reach the SDK the way AWS's
//! own answers would: throttles are throttles, server errors are retried, a lost answer leaves the
//! change made.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_apigateway::types::IntegrationType;
use aws_sdk_ec2::config::Credentials;
use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, TargetTypeEnum};
use crosslink_aws::{AwsCloud, CallRecord, Connector, from_sdk, seed_network};
use crosslink_cloud::ErrorKind;
use crosslink_controller::{ApplyOptions, Engine, EngineOptions};
use crosslink_testkit::{FaultKind, Faults, Moto, Proxy, REGION};

/// An SDK configuration that talks to the proxy. `attempts` 1 shows the first answer as is; more
/// lets the SDK retry (at once: the backoff is a millisecond) where it considers the error
/// transient.
async fn sdk(proxy: &Proxy, attempts: u32) -> SdkConfig {
    let retry = if attempts <= 1 {
        RetryConfig::disabled()
    } else {
        RetryConfig::standard()
            .with_max_attempts(attempts)
            .with_initial_backoff(Duration::from_millis(1))
            .with_max_backoff(Duration::from_millis(1))
    };
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&proxy.endpoint)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            crosslink_testkit::ACCESS_KEY,
            crosslink_testkit::SECRET_KEY,
            None,
            None,
            "moto",
        ))
        .retry_config(retry)
        .load()
        .await
}

fn ops(proxy: &Proxy) -> Vec<String> {
    proxy.calls().iter().map(|c| format!("{}:{}", c.service, c.operation)).collect()
}

async fn vpc_count(ec2: &aws_sdk_ec2::Client) -> usize {
    ec2.describe_vpcs().send().await.unwrap().vpcs().len()
}

#[tokio::test]
async fn forwards_and_records_every_call() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr);
    let ec2 = aws_sdk_ec2::Client::new(&sdk(&proxy, 1).await);
    let before = vpc_count(&ec2).await;
    let vpc = ec2.create_vpc().cidr_block("10.9.0.0/16").send().await.unwrap();
    assert!(vpc.vpc().and_then(|v| v.vpc_id()).is_some_and(|id| id.starts_with("vpc-")));
    assert_eq!(vpc_count(&ec2).await, before + 1, "the create went through to moto");

    let calls = proxy.calls();
    assert_eq!(ops(&proxy), ["ec2:DescribeVpcs", "ec2:CreateVpc", "ec2:DescribeVpcs"]);
    for c in &calls {
        assert_eq!((c.status, c.fault), (200, None), "{c:?}");
        assert_eq!((c.region.as_str(), c.access_key.as_str(), c.method.as_str()), (REGION, "test", "POST"));
        assert_eq!(c.account, crosslink_testkit::DEFAULT_ACCOUNT);
    }
    assert_eq!(calls.iter().filter(|c| c.is_read()).count(), 2);
    assert_eq!(proxy.counts()[&("ec2".to_string(), "DescribeVpcs".to_string())], 2);
    assert!(calls.windows(2).all(|w| w[0].at_micros <= w[1].at_micros));

    // moto's own API goes through unsigned, and is named as such.
    let r = proxy_request(&proxy, "GET", "/moto-api/");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(proxy.calls().last().map(|c| c.service.as_str()), Some("moto"));

    proxy.reset();
    assert!(proxy.calls().is_empty());
    let env: BTreeMap<_, _> = proxy.env().into_iter().collect();
    assert_eq!(env["AWS_ENDPOINT_URL"], proxy.endpoint);
}

/// A request with an empty body through the proxy.
fn proxy_request(proxy: &Proxy, method: &str, path: &str) -> crosslink_testkit::http::Response {
    crosslink_testkit::http::request(method, &format!("{}{path}", proxy.endpoint)).unwrap()
}

/// What reaches the upstream is what the client sent: method, target, headers (signature and
/// all) and body; nothing is added but `Connection: close` (and reqwest's `Accept: */*` where the
/// client sent no `Accept`), no compression is asked for, and a redirect goes back to the client
/// rather than being followed. The client here writes raw bytes so that the test knows exactly
/// what it sent.
#[test]
fn forwards_requests_unchanged_and_answers_as_given() {
    use std::io::{Read, Write};
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    let seen = std::thread::spawn(move || {
        let (mut conn, _) = upstream.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        // The head, then the 11-byte body.
        while !got.windows(4).any(|w| w == b"\r\n\r\n") || !got.ends_with(b"Action=Test") {
            let n = conn.read(&mut buf).unwrap();
            assert!(n > 0, "the proxy closed early: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        conn.write_all(b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nX-Amzn-RequestId: r-1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n").unwrap();
        String::from_utf8(got).unwrap()
    });
    let proxy = Proxy::start(upstream_addr);
    let mut client = std::net::TcpStream::connect(proxy.addr).unwrap();
    let auth = "AWS4-HMAC-SHA256 Credential=test/20250101/eu-central-1/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=abc";
    write!(
        client,
        "PUT /a/b%2Fc?x=1&y=%20z HTTP/1.1\r\nHost: 127.0.0.1:4566\r\nAuthorization: {auth}\r\nX-Amz-Date: 20250101T000000Z\r\nX-Amz-Security-Token: tok\r\nContent-Type: application/x-www-form-urlencoded; charset=utf-8\r\nContent-Length: 11\r\n\r\nAction=Test"
    )
    .unwrap();
    let mut answer = String::new();
    client.read_to_string(&mut answer).unwrap();
    let got = seen.join().unwrap();
    let (head, body) = got.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    assert_eq!(lines.next(), Some("PUT /a/b%2Fc?x=1&y=%20z HTTP/1.1"), "{got}");
    let headers: Vec<String> = lines.map(str::to_ascii_lowercase).collect();
    let want = [
        "host: 127.0.0.1:4566".to_string(),
        format!("authorization: {}", auth.to_ascii_lowercase()),
        "x-amz-date: 20250101t000000z".into(),
        "x-amz-security-token: tok".into(),
        "content-type: application/x-www-form-urlencoded; charset=utf-8".into(),
    ];
    for h in &want {
        assert!(headers.contains(h), "{h:?} not forwarded as sent: {headers:?}");
    }
    let added: Vec<&String> = headers.iter().filter(|h| !want.contains(h)).collect();
    assert_eq!(added, ["connection: close", "content-length: 11", "accept: */*"], "{headers:?}");
    assert!(!headers.iter().any(|h| h.starts_with("accept-encoding")), "{headers:?}");
    assert_eq!(body, "Action=Test");

    assert!(answer.starts_with("HTTP/1.1 302 Found\r\n"), "{answer}");
    assert!(answer.contains("\r\nlocation: /elsewhere\r\n"), "{answer}");
    assert!(answer.contains("\r\nx-amzn-requestid: r-1\r\n"), "{answer}");
    assert!(answer.ends_with("\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"), "{answer}");
    let calls = proxy.calls();
    assert_eq!((calls.len(), calls[0].status, calls[0].method.as_str()), (1, 302, "PUT"), "{calls:?}");
}

#[tokio::test]
async fn names_the_operations_of_each_protocol() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr);
    let config = sdk(&proxy, 1).await;

    // Query protocol: EC2, ELBv2 (signed as `elasticloadbalancing`), STS.
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let vpc = ec2.create_vpc().cidr_block("10.8.0.0/16").send().await.unwrap();
    let vpc_id = vpc.vpc().and_then(|v| v.vpc_id()).unwrap().to_string();
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    elb.describe_load_balancers().send().await.unwrap();
    elb.create_target_group()
        .name("tg")
        .protocol(ProtocolEnum::Tcp)
        .port(80)
        .vpc_id(&vpc_id)
        .target_type(TargetTypeEnum::Ip)
        .send()
        .await
        .unwrap();
    let sts = aws_sdk_sts::Client::new(&config);
    sts.get_caller_identity().send().await.unwrap();
    sts.assume_role().role_arn("arn:aws:iam::111111111111:role/x").role_session_name("proxy").send().await.unwrap();

    // REST: API Gateway, by method and path.
    let apigw = aws_sdk_apigateway::Client::new(&config);
    let api = apigw.create_rest_api().name("api").send().await.unwrap();
    let api_id = api.id().unwrap().to_string();
    apigw.get_rest_apis().limit(500).send().await.unwrap();
    let resources = apigw.get_resources().rest_api_id(&api_id).embed("methods").send().await.unwrap();
    let root = resources.items().iter().find(|r| r.path() == Some("/")).and_then(|r| r.id()).unwrap().to_string();
    let res = apigw.create_resource().rest_api_id(&api_id).parent_id(&root).path_part("pets").send().await.unwrap();
    let res_id = res.id().unwrap().to_string();
    apigw
        .put_method()
        .rest_api_id(&api_id)
        .resource_id(&res_id)
        .http_method("GET")
        .authorization_type("NONE")
        .send()
        .await
        .unwrap();
    apigw
        .put_integration()
        .rest_api_id(&api_id)
        .resource_id(&res_id)
        .http_method("GET")
        .r#type(IntegrationType::HttpProxy)
        .integration_http_method("GET")
        .uri("http://10.8.0.10/pets")
        .send()
        .await
        .unwrap();
    apigw.create_deployment().rest_api_id(&api_id).stage_name("v1").send().await.unwrap();
    apigw.get_stages().rest_api_id(&api_id).send().await.unwrap();
    let stage_arn = format!("arn:aws:apigateway:{REGION}::/restapis/{api_id}/stages/v1");
    apigw.tag_resource().resource_arn(stage_arn).tags("team", "platform").send().await.unwrap();
    let link = apigw
        .create_vpc_link()
        .name("link")
        .target_arns("arn:aws:elasticloadbalancing:eu-central-1:123456789012:loadbalancer/net/nlb/1")
        .send()
        .await
        .unwrap();
    apigw.get_vpc_links().send().await.unwrap();
    apigw.delete_vpc_link().vpc_link_id(link.id().unwrap()).send().await.unwrap();
    apigw.delete_method().rest_api_id(&api_id).resource_id(&res_id).http_method("GET").send().await.unwrap();
    apigw.delete_resource().rest_api_id(&api_id).resource_id(&res_id).send().await.unwrap();
    apigw.delete_rest_api().rest_api_id(&api_id).send().await.unwrap();

    assert_eq!(
        ops(&proxy),
        [
            "ec2:CreateVpc",
            "elasticloadbalancing:DescribeLoadBalancers",
            "elasticloadbalancing:CreateTargetGroup",
            "sts:GetCallerIdentity",
            "sts:AssumeRole",
            "apigateway:CreateRestApi",
            "apigateway:GetRestApis",
            "apigateway:GetResources",
            "apigateway:CreateResource",
            "apigateway:PutMethod",
            "apigateway:PutIntegration",
            "apigateway:CreateDeployment",
            "apigateway:GetStages",
            "apigateway:TagResource",
            "apigateway:CreateVpcLink",
            "apigateway:GetVpcLinks",
            "apigateway:DeleteVpcLink",
            "apigateway:DeleteMethod",
            "apigateway:DeleteResource",
            "apigateway:DeleteRestApi",
        ]
    );
    let failed: Vec<_> = proxy.calls().into_iter().filter(|c| c.status >= 300).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    let elb_call = proxy.calls().into_iter().find(|c| c.service == "elasticloadbalancing").unwrap();
    assert_eq!(elb_call.adapter_service(), "elbv2");
}

const GW: &str = "111111111111";
const SVC: &str = "222222222222";

fn accounts() -> String {
    [("shared", GW), ("svc", SVC)]
        .iter()
        .map(|(name, id)| {
            format!(
                "apiVersion: crosslink.dev/v1alpha1\nkind: Account\nmetadata: {{name: {name}}}\nspec:\n  accountId: \"{id}\"\n  region: {REGION}\n  assumeRole: {{roleArn: \"arn:aws:iam::{id}:role/crosslink\"}}\n---\n"
            )
        })
        .collect()
}

/// crosslink's adapter reports each request it makes (`CallRecord`); the proxy sees each one
/// independently. Over a whole convergence they must agree operation by operation, except for
/// AssumeRole, which the SDK's credential provider sends on its own.
#[tokio::test]
async fn adapter_call_records_agree_with_the_proxy() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr);
    let records: Arc<Mutex<Vec<CallRecord>>> = Arc::default();
    let sink = records.clone();
    let cloud = AwsCloud::new(Connector::from_config(sdk(&proxy, 1).await))
        .with_rate_limits(crosslink_aws::RateLimits::off())
        .with_call_observer(Arc::new(move |r: &CallRecord| sink.lock().unwrap().push(r.clone())));
    let d = crosslink_desired::load_str(Path::new("a.yaml"), &accounts()).unwrap();
    let gw = seed_network(
        &cloud.session(d.account("shared").unwrap()).await.unwrap(),
        "gw",
        "10.1.0.0/16".parse().unwrap(),
        2,
    )
    .await
    .unwrap();
    let svc = seed_network(
        &cloud.session(d.account("svc").unwrap()).await.unwrap(),
        "svc",
        "10.20.0.0/16".parse().unwrap(),
        1,
    )
    .await
    .unwrap();
    let yaml = format!(
        "{}apiVersion: crosslink.dev/v1alpha1\nkind: Gateway\nmetadata: {{name: edge}}\nspec:\n  account: shared\n  vpcId: {}\n  subnetIds: [{}]\n  routeTableIds: [{}]\n  loadBalancer: {{name: edge-nlb}}\n  api: {{name: api, stage: v1}}\n---\napiVersion: crosslink.dev/v1alpha1\nkind: Link\nmetadata: {{name: pay}}\nspec:\n  gateway: edge\n  service: {{account: svc, vpcId: {}, routeTableIds: [{}]}}\n  targets: [{{ip: 10.20.1.10, port: 8080}}, {{ip: 10.20.1.11, port: 8080}}]\n  listenerPort: 9001\n  routes: [{{path: /payments, methods: [GET, POST]}}]\n",
        accounts(),
        gw.vpc_id,
        gw.subnet_ids.join(", "),
        gw.route_table_id,
        svc.vpc_id,
        svc.route_table_id
    );
    let d = crosslink_desired::load_str(Path::new("a.yaml"), &yaml).unwrap();
    records.lock().unwrap().clear();
    proxy.reset();

    let engine = Engine::new(Arc::new(cloud), EngineOptions::default());
    let opts = ApplyOptions { min_wait: Duration::from_millis(50), ..ApplyOptions::default() };
    let report = engine.apply(&d, &opts).await;
    assert!(report.converged, "{:?}", report.failed);

    let mut adapter: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in records.lock().unwrap().iter() {
        *adapter.entry((r.service.to_string(), r.operation.to_string())).or_default() += 1;
    }
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    for c in proxy.calls().iter().filter(|c| c.operation != "AssumeRole") {
        *seen.entry((c.adapter_service().to_string(), c.operation.clone())).or_default() += 1;
    }
    assert_eq!(seen, adapter);
    // Calls are attributed to the account their assumed-role credentials act in.
    let calls = proxy.calls();
    for (account, op) in
        [(GW, "CreateListener"), (GW, "CreateVpcPeeringConnection"), (SVC, "AcceptVpcPeeringConnection")]
    {
        assert!(calls.iter().any(|c| c.account == account && c.operation == op), "no {op} in {account}");
    }
    assert!(calls.iter().filter(|c| c.operation != "AssumeRole").all(|c| c.account == GW || c.account == SVC));
    // The convergence exercised every layer of the chain.
    for op in [
        "CreateVpcPeeringConnection",
        "CreateRoute",
        "CreateListener",
        "RegisterTargets",
        "PutIntegration",
        "CreateDeployment",
    ] {
        assert!(seen.keys().any(|(_, o)| o == op), "no {op} in {seen:?}");
    }
}

/// A service's throttling answer as the SDK sees it, and crosslink's classification of it.
async fn throttled(proxy: &Proxy, service: &str) -> (String, ErrorKind) {
    let config = sdk(proxy, 3).await;
    let e = match service {
        "ec2" => from_sdk(&aws_sdk_ec2::Client::new(&config).describe_vpcs().send().await.unwrap_err()),
        "elasticloadbalancing" => from_sdk(
            &aws_sdk_elasticloadbalancingv2::Client::new(&config).describe_load_balancers().send().await.unwrap_err(),
        ),
        "apigateway" => from_sdk(&aws_sdk_apigateway::Client::new(&config).get_rest_apis().send().await.unwrap_err()),
        "sts" => from_sdk(&aws_sdk_sts::Client::new(&config).get_caller_identity().send().await.unwrap_err()),
        other => panic!("no client for {other}"),
    };
    (e.code, e.kind)
}

#[tokio::test]
async fn throttling_answers_are_throttles_to_the_sdk_and_to_crosslink() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr);
    proxy.set_faults(Faults::always(FaultKind::Throttle));
    let cases = [
        ("ec2", "RequestLimitExceeded", 503),
        ("elasticloadbalancing", "Throttling", 400),
        ("apigateway", "TooManyRequestsException", 429),
        ("sts", "Throttling", 400),
    ];
    for (service, code, status) in cases {
        proxy.reset();
        assert_eq!(throttled(&proxy, service).await, (code.to_string(), ErrorKind::Throttled), "{service}");
        let calls = proxy.calls();
        // The SDK retried: it took the answer for a throttle (a permanent error is not retried).
        assert_eq!(calls.len(), 3, "{service}: {calls:#?}");
        assert!(
            calls.iter().all(|c| c.service == service && c.status == status && c.fault == Some(FaultKind::Throttle))
        );
    }
}

#[tokio::test]
async fn server_errors_are_retried_and_retryable() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr);
    let cases = [
        (FaultKind::InternalError, "ec2", "InternalError"),
        (FaultKind::InternalError, "elasticloadbalancing", "InternalFailure"),
        (FaultKind::InternalError, "apigateway", "InternalFailure"),
        (FaultKind::Unavailable, "ec2", "Unavailable"),
        (FaultKind::Unavailable, "elasticloadbalancing", "ServiceUnavailable"),
        (FaultKind::Unavailable, "apigateway", "ServiceUnavailableException"),
    ];
    for (kind, service, code) in cases {
        proxy.set_faults(Faults::always(kind));
        proxy.reset();
        assert_eq!(throttled(&proxy, service).await, (code.to_string(), ErrorKind::Retryable), "{kind:?} {service}");
        assert_eq!(proxy.calls().len(), 3, "{kind:?} {service}: the SDK retries server errors");
    }
    // Spared services pass untouched.
    proxy.set_faults(Faults::always(FaultKind::Unavailable).with_spare(&["sts"]));
    let sts = aws_sdk_sts::Client::new(&sdk(&proxy, 1).await);
    assert_eq!(sts.get_caller_identity().send().await.unwrap().account(), Some("123456789012"));
}

#[tokio::test]
async fn a_dropped_request_never_reaches_moto() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr);
    let ec2 = aws_sdk_ec2::Client::new(&sdk(&proxy, 1).await);
    let before = vpc_count(&ec2).await;
    proxy.fail_next("ec2:CreateVpc", FaultKind::Drop, 1);
    let e = from_sdk(&ec2.create_vpc().cidr_block("10.7.0.0/16").send().await.unwrap_err());
    assert_eq!((e.code.as_str(), e.kind), ("DispatchFailure", ErrorKind::Retryable), "{e:?}");
    assert_eq!(vpc_count(&ec2).await, before, "nothing was created");
    let dropped: Vec<_> = proxy.calls().into_iter().filter(|c| c.fault.is_some()).collect();
    assert_eq!(dropped.len(), 1);
    assert_eq!((dropped[0].operation.as_str(), dropped[0].status), ("CreateVpc", 0));
}

#[tokio::test]
async fn a_lost_answer_leaves_the_change_made_and_a_retry_duplicates_it() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr);
    let ec2 = aws_sdk_ec2::Client::new(&sdk(&proxy, 1).await);
    let before = vpc_count(&ec2).await;
    proxy.fail_next("CreateVpc", FaultKind::DropAfterForward, 1);
    let e = from_sdk(&ec2.create_vpc().cidr_block("10.6.0.0/16").send().await.unwrap_err());
    assert_eq!(e.kind, ErrorKind::Retryable, "{e:?}");
    assert_eq!(vpc_count(&ec2).await, before + 1, "moto made the VPC although the client heard nothing");
    let lost = proxy.calls().into_iter().find(|c| c.fault.is_some()).unwrap();
    assert_eq!((lost.status, lost.fault), (200, Some(FaultKind::DropAfterForward)), "moto's status is recorded");

    // With its default retries the SDK sends the create again: two VPCs for one call. This is
    // what crash-safety tests need to provoke.
    let retrying = aws_sdk_ec2::Client::new(&sdk(&proxy, 3).await);
    proxy.fail_next("CreateVpc", FaultKind::DropAfterForward, 1);
    retrying.create_vpc().cidr_block("10.5.0.0/16").send().await.unwrap();
    assert_eq!(vpc_count(&ec2).await, before + 3);
}

#[tokio::test]
async fn seeded_random_faults_repeat_and_spare_what_they_are_told() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr);
    let config = sdk(&proxy, 1).await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let sts = aws_sdk_sts::Client::new(&config);
    let mut runs = Vec::new();
    for _ in 0..2 {
        proxy.set_faults(
            Faults { kinds: vec![(FaultKind::Throttle, 1), (FaultKind::InternalError, 1)], ..Faults::mixed(0.5, 42) }
                .with_spare(&["sts"]),
        );
        proxy.reset();
        for _ in 0..20 {
            let _ = ec2.describe_vpcs().send().await;
            sts.get_caller_identity().send().await.expect("sts is spared");
        }
        runs.push(proxy.calls().into_iter().map(|c| (c.operation, c.fault)).collect::<Vec<_>>());
    }
    assert_eq!(runs[0], runs[1], "the same seed gives the same faults");
    let faulted = runs[0].iter().filter(|(_, f)| f.is_some()).count();
    assert!(faulted > 0 && faulted < 20, "{faulted} of 20 faulted at rate 0.5");
    proxy.clear_faults();
    ec2.describe_vpcs().send().await.unwrap();
}

#[test]
fn an_unreachable_upstream_is_a_bad_gateway() {
    // A port nothing listens on: bound, then released.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let proxy = Proxy::start(addr);
    let r = proxy_request(&proxy, "GET", "/moto-api/");
    assert_eq!(r.status, 502, "{r:?}");
    assert!(r.body.contains(&format!("testkit proxy: upstream {addr}: ")), "{r:?}");
    assert_eq!(proxy.calls()[0].status, 0);
    let proxy_addr = proxy.addr;
    drop(proxy);
    assert!(std::net::TcpStream::connect(proxy_addr).is_err(), "the proxy stopped listening");
}
