//! The daemon as a real process against moto: ready, converged, following edits, repairing drift
//! within a resync, keeping the last good desired state, the prune guard, metrics, SIGTERM.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crosslink_aws::{AwsCloud, Connector, SeededVpc, seed_network};
use crosslink_controller::status::{Phase, StatusSnapshot};
use crosslink_desired::DesiredState;
use crosslink_testkit::proxy::Proxy;
use crosslink_testkit::{ACCESS_KEY, Moto, REGION, SECRET_KEY};

const ACCOUNTS: &str = "apiVersion: crosslink.dev/v1alpha1\nkind: Account\nmetadata: {name: shared}\nspec: {accountId: \"111111111111\", region: eu-central-1, assumeRole: {roleArn: \"arn:aws:iam::111111111111:role/crosslink\", externalId: d-ext}}\n---\napiVersion: crosslink.dev/v1alpha1\nkind: Account\nmetadata: {name: payments}\nspec: {accountId: \"222222222222\", region: eu-central-1, assumeRole: {roleArn: \"arn:aws:iam::222222222222:role/crosslink\", externalId: d-ext}}\n";

struct Env {
    moto: Moto,
    cloud: AwsCloud,
    desired: DesiredState,
    gw: SeededVpc,
    svc: SeededVpc,
    dir: PathBuf,
}

impl Env {
    /// `name` names its scratch folder: tests of this binary run at once, each in its own.
    async fn new(name: &str) -> Env {
        let moto = Moto::start();
        let cloud = AwsCloud::new(Connector::static_credentials(&moto.endpoint, REGION, ACCESS_KEY, SECRET_KEY).await);
        let desired = crosslink_desired::load_str(Path::new("a.yaml"), ACCOUNTS).unwrap();
        let gw = cloud.session(desired.account("shared").unwrap()).await.unwrap();
        let svc = cloud.session(desired.account("payments").unwrap()).await.unwrap();
        let gw = seed_network(&gw, "gateway", "10.1.0.0/16".parse().unwrap(), 2).await.unwrap();
        let svc = seed_network(&svc, "payments", "10.20.0.0/16".parse().unwrap(), 1).await.unwrap();
        let dir = crosslink_testkit::scratch_dir(name);
        Env { moto, cloud, desired, gw, svc, dir }
    }

    fn links(&self, links: &[(&str, u16)]) -> String {
        let mut text = format!(
            "apiVersion: crosslink.dev/v1alpha1\nkind: Gateway\nmetadata: {{name: edge}}\nspec:\n  account: shared\n  vpcId: {}\n  subnetIds: [{}]\n  routeTableIds: [{}]\n  loadBalancer: {{name: edge-nlb}}\n  api: {{name: open-banking, stage: v1}}\n",
            self.gw.vpc_id,
            self.gw.subnet_ids.join(", "),
            self.gw.route_table_id
        );
        for (i, (name, port)) in links.iter().enumerate() {
            text.push_str(&format!(
                "---\napiVersion: crosslink.dev/v1alpha1\nkind: Link\nmetadata: {{name: {name}}}\nspec:\n  gateway: edge\n  service: {{account: payments, vpcId: {}, routeTableIds: [{}]}}\n  targets: [{{ip: 10.20.1.{}, port: 8080}}]\n  listenerPort: {port}\n  routes: [{{path: /{name}}}]\n",
                self.svc.vpc_id,
                self.svc.route_table_id,
                10 + i
            ));
        }
        text
    }

    /// Writes atomically, as git-sync does.
    fn write(&self, file: &str, text: &str) {
        let tmp = self.dir.join(format!(".{file}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.dir.join(file)).unwrap();
    }

    fn spawn(&self, port: u16, extra: &[&str]) -> Child {
        self.spawn_via(port, extra, &self.moto.env())
    }

    /// The daemon with these AWS endpoint and credential variables (a proxy's, say).
    fn spawn_via(&self, port: u16, extra: &[&str], aws: &[(&'static str, String)]) -> Child {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_crosslink"));
        cmd.args(["run", "--listen", &format!("127.0.0.1:{port}"), "--reload-interval", "1s", "--max-prune", "1"])
            .args(if extra.contains(&"--resync") { &[][..] } else { &["--resync", "2s"][..] })
            .args(["--rate-limits", "off", "--log-format", "json"])
            .args(extra)
            .arg(self.dir.to_str().unwrap())
            .env_remove("CROSSLINK_DESIRED_STATE")
            // One replica, even if these tests run inside a Kubernetes pod.
            .env("CROSSLINK_COORDINATION", "none")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("daemon.log")).unwrap());
        for (k, v) in aws {
            cmd.env(k, v);
        }
        cmd.spawn().expect("start crosslink run")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }
}

/// Kills the daemon if the test fails before stopping it.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let url = format!("http://127.0.0.1:{port}{path}");
    let r = crosslink_testkit::http::request_with("GET", &url, Duration::from_secs(10)).ok()?;
    Some((r.status, r.body))
}

fn status(port: u16) -> Option<StatusSnapshot> {
    let (code, body) = get(port, "/status")?;
    (code == 200).then(|| serde_json::from_str(&body).ok()).flatten()
}

fn wait_for(env: &Env, port: u16, what: &str, secs: u64, cond: impl Fn(&StatusSnapshot) -> bool) -> StatusSnapshot {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut last = None;
    while Instant::now() < deadline {
        if let Some(s) = status(port) {
            if cond(&s) {
                return s;
            }
            last = Some(s);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}; last status: {last:#?}\nlog:\n{}", env.log());
}

fn all_ready(s: &StatusSnapshot, n: usize) -> bool {
    s.ready && s.links.len() == n && s.links.iter().chain(&s.gateways).all(|o| o.phase == Phase::Ready)
}

/// Checks the text is well-formed exposition format (OpenMetrics text, as served).
fn check_exposition(text: &str) {
    assert!(text.trim_end().ends_with("# EOF"), "no # EOF");
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let kind = rest.split(' ').next().unwrap();
            assert!(matches!(kind, "HELP" | "TYPE" | "UNIT" | "EOF"), "bad comment: {line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        assert!(value.parse::<f64>().is_ok() || value == "+Inf" || value == "NaN", "bad value: {line}");
        let name = series.split('{').next().unwrap();
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name: {line}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            assert!(labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')), "bad labels: {line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_converges_follows_edits_repairs_drift_and_stops_cleanly() {
    let env = Env::new("daemon").await;
    env.write("accounts.yaml", ACCOUNTS);
    env.write("links.yaml", &env.links(&[("pay", 9001), ("refunds", 9002), ("cards", 9003)]));
    let port = free_port();
    let mut daemon = Daemon(env.spawn(port, &[]));
    let child = &mut daemon.0;

    // Alive at once; ready once the first full pass is done; then everything converges.
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(port, "/healthz").map(|r| r.0) != Some(200) {
        assert!(Instant::now() < deadline, "never healthy: {}", env.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let s = wait_for(&env, port, "three links ready", 60, |s| all_ready(s, 3));
    assert_eq!(get(port, "/readyz").unwrap().0, 200);
    let good = s.desired.revision.clone().unwrap();
    let pay = s.links.iter().find(|l| l.name == "pay").unwrap();
    assert!(pay.resources.contains_key("listener") && pay.resources.contains_key("peering"), "{pay:?}");
    assert!(pay.last_reconcile.is_some() && pay.revision.as_deref() == Some(good.as_str()));

    // Edits: add a link, change a port, remove a link.
    env.write("links.yaml", &env.links(&[("pay", 9101), ("refunds", 9002), ("loans", 9004)]));
    let s = wait_for(&env, port, "edit converged", 60, |s| {
        all_ready(s, 3)
            && s.links.iter().any(|l| l.name == "loans")
            && s.desired.revision.as_deref() != Some(good.as_str())
    });
    let gw = env.desired.account("shared").unwrap();
    let cfg = env.cloud.session(gw).await.unwrap().config;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&cfg);
    let lbs = elb.describe_load_balancers().send().await.unwrap();
    let lb = lbs.load_balancers()[0].load_balancer_arn().unwrap().to_string();
    let listeners = elb.describe_listeners().load_balancer_arn(&lb).send().await.unwrap();
    let mut ports: Vec<i32> = listeners.listeners().iter().filter_map(|l| l.port()).collect();
    ports.sort();
    assert_eq!(ports, vec![9002, 9004, 9101], "cards removed, pay moved, loans added");
    let good = s.desired.revision.clone().unwrap();

    // Drift out of band: the route to the service VPC is deleted; the next resync repairs it.
    let ec2 = aws_sdk_ec2::Client::new(&cfg);
    ec2.delete_route()
        .route_table_id(&env.gw.route_table_id)
        .destination_cidr_block("10.20.0.0/16")
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let tables = ec2.describe_route_tables().route_table_ids(&env.gw.route_table_id).send().await.unwrap();
        let routes = tables.route_tables()[0].routes();
        if routes.iter().any(|r| r.destination_cidr_block() == Some("10.20.0.0/16")) {
            break;
        }
        assert!(Instant::now() < deadline, "route not repaired within a resync: {}", env.log());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (_, metrics) = get(port, "/metrics").unwrap();
    assert!(metrics.contains("crosslink_drift_repairs_total{resource=\"route\"}"), "{metrics}");

    // Invalid YAML: reported, the last good revision stays, nothing is deleted.
    env.write("links.yaml", "apiVersion: crosslink.dev/v1alpha1\nkind: Link\nmetadata: {name: pay}\nspec: {gateway: edge, listnerPort: 9101}\n");
    let s = wait_for(&env, port, "invalid state reported", 20, |s| s.desired.error.is_some());
    assert_eq!(s.desired.revision.as_deref(), Some(good.as_str()), "the last good revision stays in force");
    assert!(s.desired.error.as_ref().unwrap().contains("unknown field `listnerPort`"), "{:?}", s.desired.error);
    std::thread::sleep(Duration::from_secs(3)); // more than one resync
    let listeners = elb.describe_listeners().load_balancer_arn(&lb).send().await.unwrap();
    assert_eq!(listeners.listeners().len(), 3, "nothing deleted because of a broken commit");
    let (_, metrics) = get(port, "/metrics").unwrap();
    assert!(metrics.contains("crosslink_desired_state_valid 0"), "{metrics}");
    assert!(metrics.contains(&format!("crosslink_desired_state_info{{revision=\"{good}\"}} 1")), "{metrics}");
    assert!(!metrics.contains("crosslink_desired_state_load_errors_total 0"), "{metrics}");

    // Most links vanish at once: the prune guard holds (max-prune 1, two would go).
    env.write("links.yaml", &env.links(&[("pay", 9101)]));
    let s = wait_for(&env, port, "prune blocked", 20, |s| s.prune.blocked);
    assert_eq!(s.prune.links, vec!["loans".to_string(), "refunds".to_string()]);
    assert!(s.links.iter().filter(|l| l.phase == Phase::PruneBlocked).count() == 2, "{:#?}", s.links);
    let listeners = elb.describe_listeners().load_balancer_arn(&lb).send().await.unwrap();
    assert_eq!(listeners.listeners().len(), 3, "nothing removed while the guard holds");

    // /metrics parses and carries the names dashboards and alerts use.
    let (code, metrics) = get(port, "/metrics").unwrap();
    assert_eq!(code, 200);
    check_exposition(&metrics);
    for name in [
        "crosslink_reconciles_total",
        "crosslink_reconcile_duration_seconds_bucket",
        "crosslink_link_ready{link=\"pay\"}",
        "crosslink_aws_requests_total{service=\"ec2\",operation=\"DescribeVpcs\",outcome=\"ok\"}",
        "crosslink_aws_request_duration_seconds_bucket",
        "crosslink_queue_depth",
        "crosslink_desired_state_info",
        "crosslink_desired_state_load_errors_total",
        "crosslink_last_full_sync_timestamp_seconds",
        "crosslink_prune_blocked 1",
        "crosslink_prune_blocked_passes_total",
        "crosslink_build_info",
    ] {
        assert!(metrics.contains(name), "{name} missing");
    }
    let (code, page) = get(port, "/").unwrap();
    assert_eq!(code, 200);
    assert!(page.contains("PruneBlocked") && page.contains("pay"), "{page}");

    // `crosslink status` reads the same.
    let out = Command::new(env!("CARGO_BIN_EXE_crosslink"))
        .args(["status", "--server", &format!("http://127.0.0.1:{port}")])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "not all Ready: {table}");
    assert!(table.contains("PruneBlocked") && table.contains("loans"), "{table}");

    // SIGTERM: a clean exit 0.
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        assert!(Instant::now() < deadline, "did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(code, Some(0), "{}", env.log());
    let log = env.log();
    assert!(log.contains("SIGTERM received") && log.contains("\"stopped\""), "{log}");
    // Logs say what changed and why.
    assert!(log.contains("\"reason\":\"no longer desired\"") || log.contains("\"reason\":\"missing\""), "{log}");
    let _ = std::fs::remove_dir_all(&env.dir);
}

/// DescribeTargetHealth's answer for one target failing its health checks, shaped as the ELBv2
/// API reference documents it (Query protocol, XML).
const UNHEALTHY_TARGET: &str = r#"<DescribeTargetHealthResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">
  <DescribeTargetHealthResult>
    <TargetHealthDescriptions>
      <member>
        <HealthCheckPort>8080</HealthCheckPort>
        <TargetHealth>
          <State>unhealthy</State>
          <Reason>Target.FailedHealthChecks</Reason>
          <Description>Health checks failed</Description>
        </TargetHealth>
        <Target>
          <Id>10.20.1.10</Id>
          <Port>8080</Port>
          <AvailabilityZone>all</AvailabilityZone>
        </Target>
      </member>
    </TargetHealthDescriptions>
  </DescribeTargetHealthResult>
  <ResponseMetadata>
    <RequestId>c534f810-f389-11e5-9192-3fff33344cfa</RequestId>
  </ResponseMetadata>
</DescribeTargetHealthResponse>"#;

fn explain(env: &Env, args: &[&str]) -> (Option<i32>, String) {
    explain_via(&env.moto.env(), args)
}

fn explain_via(aws: &[(&'static str, String)], args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crosslink"));
    cmd.arg("explain").args(args).env("NO_COLOR", "1").env_remove("CROSSLINK_DESIRED_STATE");
    for (k, v) in aws {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// `crosslink explain` end to end against moto (issue 18): a working link explained from the
/// daemon and from its own observation, exit 0; a target removed behind crosslink's back is the
/// marked broken hop, exit 2. (moto reports every registered target healthy: unhealthy ones are
/// driven on the in-memory AWS, crates/controller/tests/health.rs.)
#[tokio::test]
async fn explain_shows_every_hop_and_marks_a_target_removed_behind_crosslink_s_back() {
    let env = Env::new("explain").await;
    env.write("accounts.yaml", ACCOUNTS);
    env.write("links.yaml", &env.links(&[("pay", 9001)]));
    let port = free_port();
    let daemon = Daemon(env.spawn(port, &[]));
    let s = wait_for(&env, port, "the link ready", 60, |s| all_ready(s, 1));
    let pay = &s.links[0];
    assert!(pay.synced && pay.health.as_ref().is_some_and(|h| h.healthy), "{pay:#?}");

    let server = format!("http://127.0.0.1:{port}");
    let (code, out) = explain(&env, &["pay", "--server", &server]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Synced: yes  Healthy: yes (1 of 1 targets healthy"), "{out}");
    for hop in ["route", "stage", "vpcLink", "listener", "targetGroup", "target", "peering", "networkRoute"] {
        assert!(out.contains(&format!(" {hop} ")), "{hop} missing:\n{out}");
    }
    let (code, out) = explain(&env, &["nope", "--server", &server]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("Link/nope is not in the status of"), "{out}");
    drop(daemon);

    // Observed here, without a daemon.
    let dir = env.dir.to_str().unwrap().to_string();
    let (code, out) = explain(&env, &["pay", &dir, "-o", "json"]);
    assert_eq!(code, Some(0), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["health"]["healthy"], true);
    let hops = v["health"]["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 9, "{v:#}");
    assert!(hops.iter().all(|h| h["state"] == "ok"), "{v:#}");

    // A target failing its health checks (moto never says so): the answer AWS gives, recorded
    // as its API reference shapes it, reaches the real SDK through the proxy.
    let tg = pay.resources["targetGroup"].clone();
    let proxy = Proxy::start(env.moto.addr);
    proxy.answer_next("DescribeTargetHealth", 200, "text/xml", UNHEALTHY_TARGET, 1);
    let (code, out) = explain_via(&proxy.env(), &["pay", &dir]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("Healthy: no (0 of 1 targets healthy (Target.FailedHealthChecks)"), "{out}");
    assert!(
        out.contains("Look first at: target 10.20.1.10:8080 in account payments: unhealthy: Target.FailedHealthChecks: Health checks failed"),
        "{out}"
    );
    assert!(out.contains("hint: in account payments: check that the service listens on 10.20.1.10:8080"), "{out}");
    assert_eq!(proxy.counts().get(&("elasticloadbalancing".into(), "DescribeTargetHealth".into())), Some(&1));

    // A target deregistered out of band: the broken hop, marked, with its hint; exit 2.
    let gw = env.desired.account("shared").unwrap();
    let cfg = env.cloud.session(gw).await.unwrap().config;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&cfg);
    let target = aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
        .id("10.20.1.10")
        .port(8080)
        .availability_zone("all")
        .build();
    elb.deregister_targets().target_group_arn(&tg).targets(target).send().await.unwrap();
    let (code, out) = explain(&env, &["pay", &dir]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("Healthy: no (0 of 1 targets healthy"), "{out}");
    assert!(out.contains("Look first at: target 10.20.1.10:8080 in account payments: not registered"), "{out}");
    let marked = out.lines().find(|l| l.starts_with('>')).unwrap_or_else(|| panic!("no marked hop:\n{out}"));
    assert!(marked.contains("target 10.20.1.10:8080") && marked.contains("broken"), "{marked}");
    assert!(out.contains("hint: the next pass registers it"), "{out}");

    // The daemon's page marks it too. Its RegisterTargets is refused (AccessDenied, as ELBv2
    // answers it: a permanent error, retried in 15 minutes), so the target stays missing.
    proxy.clear_faults();
    proxy.answer_next("RegisterTargets", 403, "text/xml", REGISTER_DENIED, 1000);
    let port = free_port();
    let daemon = Daemon(env.spawn_via(port, &[], &proxy.env()));
    let s = wait_for(&env, port, "the missing target found", 60, |s| {
        s.links
            .first()
            .and_then(|l| l.health.as_ref())
            .and_then(|h| h.first_broken_hop())
            .is_some_and(|h| h.kind == "target")
    });
    assert!(!s.links[0].synced, "{:#?}", s.links[0]);
    let (code, page) = get(port, "/links/pay").unwrap();
    assert_eq!(code, 200, "{page}");
    assert!(
        page.contains("<strong>Look here first:</strong> target 10.20.1.10:8080 in account <strong>payments</strong>"),
        "{page}"
    );
    let first =
        page.lines().find(|l| l.starts_with("<tr class=\"first\">")).unwrap_or_else(|| panic!("no first row:\n{page}"));
    assert!(first.contains("target 10.20.1.10:8080") && first.contains("hop-broken"), "{first}");
    assert_eq!(page.matches("<tr class=\"first\">").count(), 1, "{page}");
    let (_, index) = get(port, "/").unwrap();
    assert!(index.contains("href=\"links/pay\""), "the index links to the page: {index}");
    assert!(proxy.counts().get(&("elasticloadbalancing".into(), "RegisterTargets".into())).is_some_and(|n| *n >= 1));
    drop(daemon);
    let _ = std::fs::remove_dir_all(&env.dir);
}

/// ELBv2's answer to a call the role may not make, as its error reference shapes it.
const REGISTER_DENIED: &str = r#"<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">
  <Error>
    <Type>Sender</Type>
    <Code>AccessDenied</Code>
    <Message>User: arn:aws:sts::222222222222:assumed-role/crosslink/crosslink is not authorized to perform: elasticloadbalancing:RegisterTargets</Message>
  </Error>
  <RequestId>5ad3c9f1-8b0e-4a4b-9d0c-1f2e3a4b5c6d</RequestId>
</ErrorResponse>"#;

/// Issue 16 on the wire: moto's EventBridge matches a CloudTrail-shaped event (sent as AWS
/// documents it; moto makes none of its own) with the rule `crosslink events-setup` prints and
/// delivers it to moto's SQS queue; the daemon, with an hour's resync, long-polls it and puts back
/// a route deleted by hand within 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_event_through_eventbridge_and_sqs_repairs_a_route_within_seconds() {
    use aws_sdk_eventbridge::types::{PutEventsRequestEntry, Target};
    use aws_sdk_sqs::types::QueueAttributeName;

    let env = Env::new("events").await;
    env.write("accounts.yaml", ACCOUNTS);
    env.write("links.yaml", &env.links(&[("pay", 9001)]));
    let base = env.cloud.connector().base().clone();
    let sqs = aws_sdk_sqs::Client::new(&base);
    let url = sqs.create_queue().queue_name("crosslink-events").send().await.unwrap().queue_url().unwrap().to_string();
    let attrs = sqs.get_queue_attributes().queue_url(&url).attribute_names(QueueAttributeName::QueueArn).send().await;
    let arn = attrs.unwrap().attributes().unwrap()[&QueueAttributeName::QueueArn].clone();
    let out = Command::new(env!("CARGO_BIN_EXE_crosslink"))
        .args(["events-setup", env.dir.to_str().unwrap(), "--queue", &arn])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let setup: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rule = &setup["controller"]["rule"];
    let eb = aws_sdk_eventbridge::Client::new(&base);
    eb.put_rule()
        .name(rule["name"].as_str().unwrap())
        .event_pattern(rule["eventPattern"].to_string())
        .send()
        .await
        .unwrap();
    let target = Target::builder().id("crosslink-queue").arn(&arn).build().unwrap();
    eb.put_targets().rule(rule["name"].as_str().unwrap()).targets(target).send().await.unwrap();

    let port = free_port();
    let _daemon = Daemon(env.spawn(port, &["--resync", "1h", "--events-queue", &url]));
    wait_for(&env, port, "the link ready", 60, |s| all_ready(s, 1));
    let svc = env.cloud.session(env.desired.account("payments").unwrap()).await.unwrap().config;
    let ec2 = aws_sdk_ec2::Client::new(&svc);
    let routes = async || {
        let t = ec2.describe_route_tables().route_table_ids(&env.svc.route_table_id).send().await.unwrap();
        t.route_tables()[0].routes().iter().filter(|r| r.vpc_peering_connection_id().is_some()).count()
    };
    assert_eq!(routes().await, 1);
    ec2.delete_route()
        .route_table_id(&env.svc.route_table_id)
        .destination_cidr_block("10.1.0.0/16")
        .send()
        .await
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(routes().await, 0, "nothing repairs it without an event (the resync is an hour)");

    // Another account's call, not one crosslink reacts to, and one that matches: only the last
    // reaches the queue.
    let body = |name: &str, request: serde_json::Value| {
        let event: serde_json::Value = serde_json::from_str(&crosslink_controller::events::cloudtrail_event(
            "ignored",
            "222222222222",
            "ec2.amazonaws.com",
            name,
            "arn:aws:sts::222222222222:assumed-role/Admin/alice",
            request,
        ))
        .unwrap();
        PutEventsRequestEntry::builder()
            .source("aws.ec2")
            .detail_type(crosslink_controller::events::DETAIL_TYPE)
            .detail(event["detail"].to_string())
            .build()
    };
    let started = Instant::now();
    eb.put_events()
        .entries(body("DescribeRouteTables", serde_json::json!({})))
        .entries(body(
            "DeleteRoute",
            serde_json::json!({"routeTableId": env.svc.route_table_id, "destinationCidrBlock": "10.1.0.0/16"}),
        ))
        .send()
        .await
        .unwrap();
    while routes().await == 0 {
        assert!(started.elapsed() < Duration::from_secs(5), "not repaired within 5 s: {}", env.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("event to repair on moto: {:?}", started.elapsed());
    let s = wait_for(&env, port, "the event in /status", 10, |s| {
        s.events.as_ref().and_then(|e| e.last_event.as_ref()).is_some_and(|e| e.name == "DeleteRoute")
    });
    let e = s.events.unwrap();
    assert_eq!((e.state.as_str(), e.received, e.queue.as_str()), ("ok", 1, url.as_str()), "{e:?}");
    let (_, metrics) = get(port, "/metrics").unwrap();
    assert!(metrics.contains("crosslink_events_received_total{source=\"ec2\"} 1"), "{metrics}");
    assert!(metrics.contains(&format!("crosslink_events_queue_up{{queue=\"{url}\"}} 1")), "{metrics}");
    let log = env.log();
    assert!(log.contains("change event: reconciling what it touched"), "{log}");
}
