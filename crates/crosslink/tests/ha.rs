//! High availability for real: three `crosslink run` processes share a 30-link, 6-gateway fleet
//! through a three-member etcd cluster on loopback, against moto. Each replica talks to AWS
//! through its own intercepting proxy, so every mutating call is known by replica, time and the
//! gateway (unit) it touched; from those records the test checks that no two replicas ever
//! changed the same gateway at overlapping times, and that ownership never went back and forth.
//!
//! Steps: converge; kill -9 the owner of a gateway (another replica takes it over within the
//! lease duration plus a retry period); kill an etcd member and change desired state (the
//! survivors still converge); the final inventory has no duplicate.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crosslink_aws::{AwsCloud, Connector, SeededVpc, seed_network};
use crosslink_controller::status::{Phase, StatusSnapshot};
use crosslink_desired::DesiredState;
use crosslink_testkit::{ACCESS_KEY, Call, EtcdCluster, Moto, Proxy, REGION, SECRET_KEY};

/// One test at a time: each runs several replicas, moto and etcd on two cores, and measures
/// takeover times.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const GATEWAYS: usize = 6;
const LINKS: usize = 30;
const LEASE: Duration = Duration::from_secs(4);
const RENEW: Duration = Duration::from_secs(3);
const RETRY: Duration = Duration::from_secs(1);

/// (Account name, id): the gateway account first.
const ACCOUNTS: [(&str, &str); 4] =
    [("shared", "111111111111"), ("svc0", "222222222222"), ("svc1", "333333333333"), ("svc2", "444444444444")];

fn accounts_yaml() -> String {
    ACCOUNTS
        .iter()
        .map(|(name, id)| {
            format!(
                "apiVersion: crosslink.dev/v1alpha1\nkind: Account\nmetadata: {{name: {name}}}\nspec: {{accountId: \"{id}\", region: eu-central-1, assumeRole: {{roleArn: \"arn:aws:iam::{id}:role/crosslink\", externalId: ha-ext}}}}\n---\n"
            )
        })
        .collect()
}

fn gw_cidr(g: usize) -> String {
    format!("10.{}.0.0/16", g + 1)
}

fn svc_cidr(s: usize) -> String {
    format!("10.{}.0.0/16", 20 + 10 * s)
}

struct Env {
    moto: Moto,
    cloud: AwsCloud,
    accounts: DesiredState,
    gws: Vec<SeededVpc>,
    svcs: Vec<SeededVpc>,
    dir: PathBuf,
}

impl Env {
    async fn new(name: &str) -> Env {
        let moto = Moto::start();
        let cloud = AwsCloud::new(Connector::static_credentials(&moto.endpoint, REGION, ACCESS_KEY, SECRET_KEY).await);
        let accounts = crosslink_desired::load_str(Path::new("a.yaml"), &accounts_yaml()).unwrap();
        let shared = cloud.session(accounts.account("shared").unwrap()).await.unwrap();
        let mut gws = Vec::new();
        for g in 0..GATEWAYS {
            gws.push(seed_network(&shared, &format!("gw{g}"), gw_cidr(g).parse().unwrap(), 2).await.unwrap());
        }
        let mut svcs = Vec::new();
        for s in 0..3 {
            let session = cloud.session(accounts.account(&format!("svc{s}")).unwrap()).await.unwrap();
            svcs.push(seed_network(&session, &format!("svc{s}"), svc_cidr(s).parse().unwrap(), 1).await.unwrap());
        }
        let dir = crosslink_testkit::scratch_dir(&format!("ha-{name}"));
        std::fs::create_dir_all(dir.join("desired")).unwrap();
        Env { moto, cloud, accounts, gws, svcs, dir }
    }

    /// Six gateways, each with its own VPC, NLB and REST API, and `links` links spread over them
    /// (link i on gateway i % 6) and over the three service accounts.
    fn fleet(&self, links: usize) -> String {
        let mut text = accounts_yaml();
        for (g, gw) in self.gws.iter().enumerate() {
            text += &format!(
                "apiVersion: crosslink.dev/v1alpha1\nkind: Gateway\nmetadata: {{name: gw{g}}}\nspec:\n  account: shared\n  vpcId: {}\n  subnetIds: [{}]\n  routeTableIds: [{}]\n  loadBalancer: {{name: gw{g}-nlb}}\n  api: {{name: api-gw{g}, stage: v1}}\n---\n",
                gw.vpc_id,
                gw.subnet_ids.join(", "),
                gw.route_table_id
            );
        }
        for i in 0..links {
            let g = i % GATEWAYS;
            let s = (i / GATEWAYS) % 3;
            let svc = &self.svcs[s];
            text += &format!(
                "apiVersion: crosslink.dev/v1alpha1\nkind: Link\nmetadata: {{name: l{i}}}\nspec:\n  gateway: gw{g}\n  service: {{account: svc{s}, vpcId: {}, routeTableIds: [{}]}}\n  targets: [{{ip: 10.{}.1.{}, port: 8080}}]\n  listenerPort: {}\n  routes: [{{path: /s{i}}}]\n---\n",
                svc.vpc_id,
                svc.route_table_id,
                20 + 10 * s,
                10 + i,
                9001 + i
            );
        }
        text
    }

    /// Makes the test's directory a git repository that ignores the desired-state folders, as a
    /// monorepo's rendered output or the build's own target dir is: the revision must follow the
    /// files there, not the repository's HEAD.
    fn ignored_in_a_repository(&self) {
        let git = |args: &[&str]| {
            let out = Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"])
                .args(args)
                .current_dir(&self.dir)
                .output()
                .expect("git runs");
            assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        std::fs::write(self.dir.join(".gitignore"), "desired*/\n*.log\n").unwrap();
        git(&["init", "-q"]);
        git(&["add", ".gitignore"]);
        git(&["commit", "-q", "-m", "ignore the rendered desired state"]);
    }

    fn write(&self, text: &str) {
        self.write_at("desired", text);
    }

    /// Desired state in `dir/<sub>/fleet.yaml`, replaced atomically.
    fn write_at(&self, sub: &str, text: &str) {
        std::fs::create_dir_all(self.dir.join(sub)).unwrap();
        let tmp = self.dir.join(format!(".{sub}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.dir.join(sub).join("fleet.yaml")).unwrap();
    }

    fn spawn(&self, replica: &str, port: u16, proxy: &Proxy, etcd: &[String]) -> Replica {
        self.spawn_at(replica, port, proxy, etcd, "desired")
    }

    /// `crosslink run` on `dir/<sub>`, coordinating through `etcd` (none when empty), talking to
    /// AWS through `proxy`.
    fn spawn_at(&self, replica: &str, port: u16, proxy: &Proxy, etcd: &[String], sub: &str) -> Replica {
        let log = self.dir.join(format!("{replica}.log"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_crosslink"));
        cmd.args(["run", "--listen", &format!("127.0.0.1:{port}"), "--resync", "3s", "--reload-interval", "1s"])
            .args(["--max-backoff", "2s", "--rate-limits", "off", "--log-format", "json"]);
        if etcd.is_empty() {
            cmd.args(["--coordination", "none"]);
        } else {
            cmd.args(["--coordination", "etcd", "--etcd-endpoints", &etcd.join(","), "--replica-id", replica])
                .args(["--lease-duration", &format!("{}s", LEASE.as_secs())])
                .args(["--renew-deadline", &format!("{}s", RENEW.as_secs())])
                .args(["--retry-period", &format!("{}s", RETRY.as_secs())]);
        }
        cmd.arg(self.dir.join(sub))
            .env_remove("CROSSLINK_DESIRED_STATE")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap());
        for (k, v) in proxy.env() {
            cmd.env(k, v);
        }
        Replica { name: replica.to_string(), port, child: cmd.spawn().expect("start crosslink run"), log }
    }

    fn plan_exit(&self) -> (Option<i32>, String) {
        self.plan_exit_at("desired")
    }

    fn plan_exit_at(&self, sub: &str) -> (Option<i32>, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_crosslink"));
        cmd.args(["plan", "--rate-limits", "off"]).arg(self.dir.join(sub)).env("NO_COLOR", "1");
        cmd.env_remove("CROSSLINK_DESIRED_STATE");
        for (k, v) in self.moto.env() {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The fleet without gateway `g` and its links.
fn without_gateway(fleet: &str, g: usize) -> String {
    let docs: Vec<&str> = fleet
        .split("---\n")
        .filter(|doc| !doc.contains(&format!("name: gw{g}}}")) && !doc.contains(&format!("gateway: gw{g}\n")))
        .collect();
    docs.join("---\n")
}

struct Replica {
    name: String,
    port: u16,
    child: Child,
    log: PathBuf,
}

impl Drop for Replica {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Replica {
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn terminate(&mut self) -> Option<i32> {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code();
            }
            assert!(Instant::now() < deadline, "{} did not stop after SIGTERM", self.name);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn status(&self) -> Option<StatusSnapshot> {
        let url = format!("http://127.0.0.1:{}/status", self.port);
        let r = crosslink_testkit::http::request_with("GET", &url, Duration::from_secs(10)).ok()?;
        serde_json::from_str(&r.body).ok()
    }

    fn log_tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The union of what the live replicas report: link name -> phase, and unit -> holder (as the
/// replica holding it says, with `mine`).
fn fleet_view(rs: &[&Replica]) -> (BTreeMap<String, Phase>, BTreeMap<String, String>) {
    let mut links = BTreeMap::new();
    let mut owners = BTreeMap::new();
    for r in rs {
        let Some(s) = r.status() else { continue };
        for l in &s.links {
            links.insert(l.name.clone(), l.phase);
        }
        if let Some(sh) = &s.shards {
            for u in sh.units.iter().filter(|u| u.mine) {
                if let Some(prev) = owners.insert(u.unit.clone(), r.name.clone()) {
                    panic!("unit {} is held by {prev} and {} at once (per their own status)", u.unit, r.name);
                }
            }
        }
    }
    (links, owners)
}

fn wait_converged(rs: &[&Replica], links: usize, limit: Duration) -> Duration {
    let start = Instant::now();
    let mut last = (BTreeMap::new(), BTreeMap::new());
    while start.elapsed() < limit {
        let view = fleet_view(rs);
        let ready = view.0.len() == links && view.0.values().all(|p| *p == Phase::Ready);
        // Six gateways and the orphans unit, each with an owner.
        if ready && view.1.len() == GATEWAYS + 1 {
            return start.elapsed();
        }
        last = view;
        std::thread::sleep(Duration::from_millis(300));
    }
    let tails: Vec<String> = rs.iter().map(|r| format!("--- {}:\n{}", r.name, r.log_tail(15))).collect();
    panic!(
        "not converged within {limit:?}: {} links seen, not ready: {:?}; owners {:?}\n{}",
        last.0.len(),
        last.0.iter().filter(|(_, p)| **p != Phase::Ready).collect::<Vec<_>>(),
        last.1,
        tails.join("\n")
    );
}

/// What the intercepted calls are attributed with: names and ids of each gateway's objects.
struct Attribution {
    /// VPC id, route table id, CIDR, NLB name, API name, API id, VPC link name -> gateway.
    keys: BTreeMap<String, String>,
    /// Peering id -> gateway.
    peerings: BTreeMap<String, String>,
}

fn form(body: &str, key: &str) -> Option<String> {
    body.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Attribution {
    async fn new(env: &Env) -> Attribution {
        let mut keys = BTreeMap::new();
        for (g, gw) in env.gws.iter().enumerate() {
            let name = format!("gw{g}");
            keys.insert(gw.vpc_id.clone(), name.clone());
            keys.insert(gw.route_table_id.clone(), name.clone());
            keys.insert(gw_cidr(g), name.clone());
            keys.insert(format!("gw{g}-nlb"), name.clone());
            keys.insert(format!("api-gw{g}"), name.clone());
            keys.insert(crosslink_plan::vpc_link_name(&name), name.clone());
        }
        let shared = env.cloud.session(env.accounts.account("shared").unwrap()).await.unwrap().config;
        let apigw = aws_sdk_apigateway::Client::new(&shared);
        for api in apigw.get_rest_apis().send().await.unwrap().items() {
            if let (Some(id), Some(g)) = (api.id(), api.name().and_then(|n| keys.get(n)).cloned()) {
                keys.insert(id.to_string(), g);
            }
        }
        for v in apigw.get_vpc_links().send().await.unwrap().items() {
            if let (Some(id), Some(g)) = (v.id(), v.name().and_then(|n| keys.get(n)).cloned()) {
                keys.insert(id.to_string(), g);
            }
        }
        let ec2 = aws_sdk_ec2::Client::new(&shared);
        let mut peerings = BTreeMap::new();
        for p in ec2.describe_vpc_peering_connections().send().await.unwrap().vpc_peering_connections() {
            let vpc = p.requester_vpc_info().and_then(|v| v.vpc_id()).unwrap_or_default();
            if let (Some(id), Some(g)) = (p.vpc_peering_connection_id(), keys.get(vpc)) {
                peerings.insert(id.to_string(), g.clone());
            }
        }
        Attribution { keys, peerings }
    }

    /// The gateway a mutating call changed, from its parameters.
    fn unit(&self, c: &Call) -> Option<String> {
        let k = |v: Option<String>| v.and_then(|v| self.keys.get(&v).cloned());
        let pcx = |v: Option<String>| v.and_then(|v| self.peerings.get(&v).cloned());
        // An ELB ARN names its load balancer or target group: .../loadbalancer/net/<nlb>/..,
        // .../listener/net/<nlb>/.., .../targetgroup/<cl-lN-hash>/..
        let elb = |arn: Option<String>| -> Option<String> {
            let arn = arn?;
            let parts: Vec<&str> = arn.split([':', '/']).collect();
            if let Some(i) = parts.iter().position(|p| *p == "targetgroup") {
                let tg = parts.get(i + 1)?;
                let link: usize = tg.strip_prefix("cl-l")?.split('-').next()?.parse().ok()?;
                return Some(format!("gw{}", link % GATEWAYS));
            }
            let i = parts.iter().position(|p| *p == "loadbalancer" || *p == "listener")?;
            self.keys.get(*parts.get(i + 2)?).cloned()
        };
        let b = c.body.as_str();
        match (c.service.as_str(), c.operation.as_str()) {
            ("ec2", "CreateVpcPeeringConnection") => k(form(b, "VpcId")),
            ("ec2", "AcceptVpcPeeringConnection" | "DeleteVpcPeeringConnection") => {
                pcx(form(b, "VpcPeeringConnectionId"))
            }
            ("ec2", "CreateTags") => pcx(form(b, "ResourceId.1")),
            ("ec2", "CreateRoute" | "ReplaceRoute" | "DeleteRoute") => {
                k(form(b, "RouteTableId")).or_else(|| k(form(b, "DestinationCidrBlock")))
            }
            ("elasticloadbalancing", "CreateLoadBalancer") => k(form(b, "Name")),
            ("elasticloadbalancing", "CreateTargetGroup") => k(form(b, "VpcId")),
            ("elasticloadbalancing", "CreateListener") => elb(form(b, "LoadBalancerArn")),
            ("elasticloadbalancing", "ModifyListener" | "DeleteListener") => elb(form(b, "ListenerArn")),
            ("elasticloadbalancing", "AddTags") => elb(form(b, "ResourceArns.member.1")),
            ("elasticloadbalancing", _) => elb(form(b, "TargetGroupArn")).or_else(|| elb(form(b, "LoadBalancerArn"))),
            ("apigateway", "CreateRestApi") => {
                let v: serde_json::Value = serde_json::from_str(b).ok()?;
                k(v.get("name").and_then(|n| n.as_str()).map(str::to_string))
            }
            ("apigateway", "CreateVpcLink") => {
                let v: serde_json::Value = serde_json::from_str(b).ok()?;
                k(v.get("name").and_then(|n| n.as_str()).map(str::to_string))
            }
            ("apigateway", _) if c.path.starts_with("/vpclinks/") => {
                k(c.path.strip_prefix("/vpclinks/").map(str::to_string))
            }
            ("apigateway", _) => {
                // /restapis/{id}/..., or /tags/{url-encoded ARN of .../restapis/{id}/...}.
                let path = percent_decode(&c.path);
                let id = path.split("/restapis/").nth(1)?.split('/').next()?;
                k(Some(id.to_string()))
            }
            _ => None,
        }
    }
}

/// Checks, per gateway, that the mutating calls of different replicas never overlap in time and
/// that once another replica has taken a gateway over, the previous one never changes it again.
/// Every mutating call must be attributable. Returns a summary, or the first violation.
fn exclusive(attribution: &Attribution, names: &[&str], proxies: &[Proxy], strict: bool) -> Result<String, String> {
    let mut by_unit: BTreeMap<String, Vec<(u64, u64, String, String)>> = BTreeMap::new();
    let mut unknown = Vec::new();
    let mut total = 0;
    for (name, proxy) in names.iter().zip(proxies) {
        for c in mutating(proxy.calls()) {
            total += 1;
            match attribution.unit(&c) {
                Some(u) => by_unit.entry(u).or_default().push((
                    c.unix_micros,
                    c.unix_micros + c.micros,
                    name.to_string(),
                    c.operation.clone(),
                )),
                None => unknown.push(format!("{name}: {} {} {}", c.operation, c.path, c.body)),
            }
        }
    }
    if strict && !unknown.is_empty() {
        return Err(format!("mutating calls not attributed to a gateway: {unknown:#?}"));
    }
    let mut lines = Vec::new();
    let mut switches = 0;
    for (unit, calls) in by_unit.iter_mut() {
        calls.sort();
        // Sweep in order of start: the latest end seen so far per replica.
        let mut ends: BTreeMap<&str, (u64, &str)> = BTreeMap::new();
        let mut owners: Vec<&str> = Vec::new();
        for (start, end, replica, op) in calls.iter() {
            for (other, (other_end, other_op)) in &ends {
                if *other != replica.as_str() && *other_end > *start {
                    return Err(format!(
                        "{unit}: {other}'s {other_op} (until {other_end}) overlaps {replica}'s {op} (from {start})"
                    ));
                }
            }
            let e = ends.entry(replica.as_str()).or_insert((0, op.as_str()));
            if *end > e.0 {
                *e = (*end, op.as_str());
            }
            if owners.last() != Some(&replica.as_str()) {
                if owners.contains(&replica.as_str()) {
                    return Err(format!("{unit}: changes by {owners:?}, then by {replica} again ({op})"));
                }
                owners.push(replica.as_str());
            }
        }
        switches += owners.len() - 1;
        lines.push(format!("{unit}: {} mutating calls by {owners:?}", calls.len()));
    }
    if total < 20 {
        return Err(format!("only {total} mutating calls seen"));
    }
    lines.push(format!("{total} mutating calls, {switches} owner changes, none overlapping"));
    Ok(lines.join("\n"))
}

/// The deletions among the mutating calls the proxies saw.
fn deletes(proxies: &[Proxy]) -> Vec<String> {
    proxies
        .iter()
        .flat_map(|p| mutating(p.calls()))
        .filter(|c| c.operation.starts_with("Delete") || c.operation.starts_with("Deregister"))
        .map(|c| c.operation)
        .collect()
}

/// The calls that change something in AWS.
fn mutating(calls: Vec<Call>) -> Vec<Call> {
    calls
        .into_iter()
        .filter(|c| {
            matches!(c.service.as_str(), "ec2" | "elasticloadbalancing" | "apigateway") && !c.is_read() && c.status > 0
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_a_fleet_through_etcd_fail_over_and_never_change_a_gateway_together() {
    let _heavy = HEAVY.lock().await;
    let env = Env::new("fleet").await;
    let mut etcd = EtcdCluster::start(3);
    let endpoints = etcd.endpoints();
    env.write(&env.fleet(LINKS));

    let names = ["r0", "r1", "r2"];
    let proxies: Vec<Proxy> = names.iter().map(|_| Proxy::start(env.moto.addr)).collect();
    let mut replicas: Vec<Replica> =
        names.iter().zip(&proxies).map(|(n, p)| env.spawn(n, free_port(), p, &endpoints)).collect();

    // 1. Converge, the work split three ways.
    let took = wait_converged(&replicas.iter().collect::<Vec<_>>(), LINKS, Duration::from_secs(300));
    let (code, out) = env.plan_exit();
    assert_eq!(code, Some(0), "plan against moto after convergence:\n{out}");
    let (_, owners) = fleet_view(&replicas.iter().collect::<Vec<_>>());
    let per_replica: BTreeMap<&String, usize> = owners.values().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r).or_default() += 1;
        m
    });
    eprintln!("converged in {took:?}; owners {owners:?}");
    assert_eq!(per_replica.len(), 3, "every replica owns units: {owners:?}");

    // 2. kill -9 the owner of gw0: another replica takes gw0 over once its lease has run out.
    let victim_name = owners["gw0"].clone();
    let victim_idx = names.iter().position(|n| *n == victim_name).unwrap();
    let victim_units: Vec<String> = owners.iter().filter(|(_, r)| **r == victim_name).map(|(u, _)| u.clone()).collect();
    replicas[victim_idx].kill9();
    let killed = Instant::now();
    let survivors: Vec<&Replica> =
        replicas.iter().enumerate().filter(|(i, _)| *i != victim_idx).map(|(_, r)| r).collect();
    // The takeover is seen by polling the survivors' status: it happened after the last poll
    // that did not show it began (`not_before`) and before the one that did ended (`seen`).
    let mut not_before = Duration::ZERO;
    let (not_before, seen) = loop {
        let poll = killed.elapsed();
        let (_, owners) = fleet_view(&survivors);
        if victim_units.iter().all(|u| owners.contains_key(u)) {
            break (not_before, killed.elapsed());
        }
        not_before = poll;
        assert!(killed.elapsed() < Duration::from_secs(30), "units {victim_units:?} of {victim_name} not taken over");
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("{victim_name} killed: its units {victim_units:?} taken over after {not_before:?} to {seen:?}");
    // Within the lease (which the victim last renewed up to one retry period before it died),
    // plus the round in which a survivor notices. Judged at the earliest moment the takeover can
    // have happened: the test's own polling (an HTTP read of two replicas, then 100 ms) is not
    // the replicas' delay, and on a loaded machine it alone took a failing run past the bound.
    assert!(not_before <= LEASE + RETRY * 2, "takeover took at least {not_before:?} (seen at {seen:?})");
    wait_converged(&survivors, LINKS, Duration::from_secs(120));

    // Ids the calls are attributed with, read while every gateway still exists.
    let attribution = Attribution::new(&env).await;

    // 3. An etcd member stops; desired state changes: a new link on gw0, gw3's link moves port.
    etcd.kill(0);
    let mut text = env.fleet(LINKS + 1);
    text = text.replace("listenerPort: 9004\n", "listenerPort: 9104\n");
    env.write(&text);
    let took = wait_converged(&survivors, LINKS + 1, Duration::from_secs(180));
    eprintln!("with one etcd member down, the change converged in {took:?}");
    let (code, out) = env.plan_exit();
    assert_eq!(code, Some(0), "plan against moto after the change:\n{out}");

    // 4. gw5 leaves desired state with its links: the holder of the orphans unit removes its
    // NLB, VPC link and REST API; gw5's own lease is released by whoever held it.
    let gone: Vec<String> = (0..LINKS + 1).filter(|i| i % GATEWAYS == 5).map(|i| format!("l{i}")).collect();
    let kept = env.fleet(LINKS + 1).replace("listenerPort: 9004\n", "listenerPort: 9104\n");
    env.write(&without_gateway(&kept, 5));
    let remaining = LINKS + 1 - gone.len();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (links, owners) = fleet_view(&survivors);
        let ready = links.len() == remaining && links.values().all(|p| *p == Phase::Ready);
        if ready && !owners.contains_key("gw5") && env.plan_exit().0 == Some(0) {
            break;
        }
        assert!(Instant::now() < deadline, "gw5 not removed: links {links:?}, owners {owners:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!("gw5 and its {} links removed", gone.len());

    for r in replicas.iter_mut() {
        if r.child.try_wait().ok().flatten().is_none() {
            assert_eq!(r.terminate(), Some(0), "{} exit code", r.name);
        }
    }

    // 5. From the intercepted calls: every mutating call attributed to a gateway, and per
    // gateway, the replicas' calls never overlap and ownership never comes back.
    let summary = exclusive(&attribution, &names, &proxies, true).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{summary}");

    // 6. No duplicates and no leftovers in AWS: one NLB, VPC link and REST API per gateway,
    // one target group per link.
    let shared = env.cloud.session(env.accounts.account("shared").unwrap()).await.unwrap().config;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&shared);
    let apigw = aws_sdk_apigateway::Client::new(&shared);
    let lbs = elb.describe_load_balancers().send().await.unwrap().load_balancers().len();
    let tgs = elb.describe_target_groups().send().await.unwrap().target_groups().len();
    let apis = apigw.get_rest_apis().send().await.unwrap().items().len();
    let vpc_links = apigw.get_vpc_links().send().await.unwrap().items().len();
    assert_eq!((lbs, apis, vpc_links, tgs), (GATEWAYS - 1, GATEWAYS - 1, GATEWAYS - 1, remaining));
}

/// The check above can fail: two replicas run without coordination on the same fleet both
/// change the same gateways, and it says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exclusivity_check_catches_two_uncoordinated_replicas() {
    let _heavy = HEAVY.lock().await;
    let env = Env::new("uncoordinated").await;
    env.write(&env.fleet(12));
    let attribution_names = ["u0", "u1"];
    let proxies: Vec<Proxy> = attribution_names.iter().map(|_| Proxy::start(env.moto.addr)).collect();
    let mut replicas: Vec<Replica> =
        attribution_names.iter().zip(&proxies).map(|(n, p)| env.spawn(n, free_port(), p, &[])).collect();
    // They fight (each deletes the other's duplicates as its own leftovers): no need to wait
    // for an end.
    std::thread::sleep(Duration::from_secs(20));
    for r in replicas.iter_mut() {
        r.kill9();
    }
    let attribution = Attribution::new(&env).await;
    // Lenient: the duplicates they made and deleted again cannot be attributed afterwards.
    let verdict = exclusive(&attribution, &attribution_names, &proxies, false);
    eprintln!("{verdict:?}");
    let err = verdict.expect_err("two uncoordinated replicas must be caught changing the same gateway");
    assert!(err.contains("overlaps") || err.contains("again"), "{err}");
}

/// Each replica syncs desired state on its own (git-sync per pod): for a while two replicas run
/// different revisions. A gateway removed in the newer one is not cleaned up while a replica on
/// the older one still has it; once both run the same revision, it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_up_waits_while_replicas_run_different_revisions() {
    let _heavy = HEAVY.lock().await;
    let env = Env::new("revisions").await;
    let etcd = EtcdCluster::start(1);
    let endpoints = etcd.endpoints();
    let full = env.fleet(12);
    let newer = without_gateway(&full, 5);
    env.write_at("desired-new", &full);
    env.write_at("desired-old", &full);
    // Names with which, among the two, gw5 is placed on the old one and the orphans unit on
    // the new one (rendezvous hashing is deterministic).
    let (old, new) = (0..100)
        .flat_map(|i| (0..100).map(move |j| (format!("old{i}"), format!("new{j}"))))
        .find(|(o, n)| {
            let members = vec![o.clone(), n.clone()];
            crosslink_coord::preferred("gw5", &members) == Some(o.as_str())
                && crosslink_coord::preferred("_orphans", &members) == Some(n.as_str())
        })
        .expect("names for the placement");
    let proxies = [Proxy::start(env.moto.addr), Proxy::start(env.moto.addr)];
    let mut r_new = env.spawn_at(&new, free_port(), &proxies[0], &endpoints, "desired-new");
    let mut r_old = env.spawn_at(&old, free_port(), &proxies[1], &endpoints, "desired-old");
    wait_converged(&[&r_new, &r_old], 12, Duration::from_secs(240));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, owners) = fleet_view(&[&r_new, &r_old]);
        if owners.get("gw5") == Some(&old) && owners.get("_orphans") == Some(&new) {
            break;
        }
        assert!(Instant::now() < deadline, "placement not reached: {owners:?}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The new replica's checkout moves on: gw5 is gone there, not yet on the old one.
    proxies[0].reset();
    env.write_at("desired-new", &newer);
    std::thread::sleep(Duration::from_secs(12));
    let deletes = deletes(&proxies[..1]);
    assert!(deletes.is_empty(), "the new replica cleaned up while the old one still has gw5: {deletes:?}");
    let st = r_new.status().expect("status");
    let sh = st.shards.expect("shards");
    assert_ne!(sh.revisions.get(&old), sh.revisions.get(&new), "{sh:?}");
    let log = std::fs::read_to_string(&r_new.log).unwrap();
    assert!(log.contains("clean-up of removed gateways waits"), "{}", r_new.log_tail(20));

    // The old one catches up: the clean-up happens.
    env.write_at("desired-old", &newer);
    let deadline = Instant::now() + Duration::from_secs(120);
    let shared = env.cloud.session(env.accounts.account("shared").unwrap()).await.unwrap().config;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&shared);
    loop {
        let lbs = elb.describe_load_balancers().send().await.unwrap();
        let names: Vec<&str> = lbs.load_balancers().iter().filter_map(|l| l.load_balancer_name()).collect();
        if !names.contains(&"gw5-nlb") && env.plan_exit_at("desired-new").0 == Some(0) {
            break;
        }
        assert!(Instant::now() < deadline, "gw5 not cleaned up after both caught up: {names:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for r in [&mut r_new, &mut r_old] {
        assert_eq!(r.terminate(), Some(0), "{} exit code", r.name);
    }
}

/// The prune guard holds for all replicas together: 8 links removed at once over six gateways
/// split between two replicas (4 each) is over the limit of 5, though each share is under it;
/// with the desired state in a folder that an enclosing git repository ignores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prune_guard_counts_the_links_all_replicas_would_remove() {
    let _heavy = HEAVY.lock().await;
    let env = Env::new("prune").await;
    // Wherever the folder sits: here in a folder that the enclosing repository ignores.
    env.ignored_in_a_repository();
    let etcd = EtcdCluster::start(1);
    let endpoints = etcd.endpoints();
    env.write(&env.fleet(12));
    // Two names that split the six gateways three and three, gw0 and gw1 apart.
    let (x, y) = (0..100)
        .flat_map(|i| (0..100).map(move |j| (format!("x{i}"), format!("y{j}"))))
        .find(|(x, y)| {
            let members = vec![x.clone(), y.clone()];
            let on_x = (0..GATEWAYS)
                .filter(|g| crosslink_coord::preferred(&format!("gw{g}"), &members) == Some(x.as_str()))
                .collect::<Vec<_>>();
            on_x.len() == 3 && on_x.contains(&0) != on_x.contains(&1)
        })
        .expect("names for the placement");
    let proxies = [Proxy::start(env.moto.addr), Proxy::start(env.moto.addr)];
    let mut rx = env.spawn(&x, free_port(), &proxies[0], &endpoints);
    let mut ry = env.spawn(&y, free_port(), &proxies[1], &endpoints);
    wait_converged(&[&rx, &ry], 12, Duration::from_secs(240));

    // l0..l7 leave: 4 of them on each replica's gateways.
    proxies[0].reset();
    proxies[1].reset();
    let fleet = env.fleet(12);
    let kept: Vec<&str> =
        fleet.split("---\n").filter(|doc| !(0..8).any(|i| doc.contains(&format!("name: l{i}}}")))).collect();
    env.write(&kept.join("---\n"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let blocked = loop {
        let blocked: Vec<StatusSnapshot> =
            [&rx, &ry].iter().filter_map(|r| r.status()).filter(|s| s.prune.blocked).collect();
        if blocked.len() == 2 {
            break blocked;
        }
        assert!(Instant::now() < deadline, "the prune guard did not hold on both replicas");
        std::thread::sleep(Duration::from_millis(300));
    };
    for s in &blocked {
        assert_eq!(s.prune.links.len(), 4, "{:?}", s.prune);
        let msg = s.prune.message.as_deref().unwrap_or("");
        assert!(msg.contains("8 links would be removed at once by all replicas together"), "{msg}");
    }
    std::thread::sleep(Duration::from_secs(8));
    let deletes = deletes(&proxies);
    assert!(deletes.is_empty(), "removed despite the prune guard: {deletes:?}");

    // Restoring the YAML releases the guard, with nothing removed.
    env.write(&fleet);
    wait_converged(&[&rx, &ry], 12, Duration::from_secs(60));
    for r in [&rx, &ry] {
        assert!(!r.status().unwrap().prune.blocked);
    }
    for r in [&mut rx, &mut ry] {
        assert_eq!(r.terminate(), Some(0), "{} exit code", r.name);
    }
}
