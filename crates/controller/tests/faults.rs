//! Reliability under faults, in process and under paused tokio time: throttling (each service's
//! own answer), 5xx, timeouts, eventual consistency, lost answers, peerings that end rejected /
//! expired / failed, VPC links that go FAILED, random faults on every call. Each test checks what
//! an operator would: it converges (or says why not), backs off instead of hot-looping, and
//! leaves exactly the desired inventory (no duplicates, nothing lost, nothing else deleted).
//!
//! Numbers for docs/reliability.md are printed with `eprintln!`:
//! `cargo test -p crosslink-controller --test faults -- --nocapture`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crosslink_cloud::fake::FakeAws;
use crosslink_cloud::faults::{Attempt, Chaos, Clock, Effect, Fault, Faulty, Rule};
use crosslink_controller::daemon::{Daemon, RunOptions};
use crosslink_controller::metrics::Metrics;
use crosslink_controller::status::{Health, Phase, StatusSnapshot};
use crosslink_controller::{ApplyOptions, ApplyReport, Engine, EngineOptions};
use crosslink_desired::DesiredState;
use crosslink_plan::observed::{AccountObservation, AccountState, PeeringStatus};
use crosslink_plan::tags::{MANAGED_BY, OWNER};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const GW: &str = "111111111111";
const GW_VPC: &str = "vpc-0000000000000000a";
const GW_RTB: &str = "rtb-0000000000000000a";
/// Service accounts: (account id, VPC, route table, second octet of the CIDR).
const SERVICES: [(&str, &str, &str, u8); 3] = [
    ("222222222222", "vpc-0000000000000000b", "rtb-0000000000000000b", 20),
    ("333333333333", "vpc-0000000000000000c", "rtb-0000000000000000c", 30),
    ("444444444444", "vpc-0000000000000000d", "rtb-0000000000000000d", 40),
];

/// tokio's clock, so that the scripted delays and timestamps follow paused time.
struct TokioClock(Instant);

impl Clock for TokioClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
    fn sleep(&self, d: Duration) -> Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// The in-memory AWS, seeded, behind scripted faults that follow tokio's clock.
fn world() -> Arc<Faulty<FakeAws>> {
    let f = Faulty::new(FakeAws::new()).with_clock(Arc::new(TokioClock(Instant::now())));
    f.seed_vpc(
        GW,
        "eu-central-1",
        GW_VPC,
        "10.1.0.0/16",
        &["subnet-0000000000000000a", "subnet-0000000000000000b"],
        GW_RTB,
    );
    for (i, (acct, vpc, rtb, net)) in SERVICES.iter().enumerate() {
        f.seed_vpc(
            acct,
            "eu-central-1",
            vpc,
            &format!("10.{net}.0.0/16"),
            &[&format!("subnet-00000000000000{i}1a")],
            rtb,
        );
    }
    Arc::new(f)
}

/// A gateway and `n` links spread over the three service accounts; link `i` listens on 9001+i,
/// targets 10.<net>.1.<10+i>, and serves /s<i> (every third one under /group<k>/).
fn fleet(n: usize) -> String {
    let mut text = format!(
        "apiVersion: crosslink.dev/v1alpha1\nkind: Account\nmetadata: {{name: shared}}\nspec: {{accountId: \"{GW}\", region: eu-central-1}}\n"
    );
    for (i, (acct, ..)) in SERVICES.iter().enumerate() {
        text += &format!(
            "---\napiVersion: crosslink.dev/v1alpha1\nkind: Account\nmetadata: {{name: svc{i}}}\nspec: {{accountId: \"{acct}\", region: eu-central-1}}\n"
        );
    }
    text += &format!(
        "---\napiVersion: crosslink.dev/v1alpha1\nkind: Gateway\nmetadata: {{name: edge}}\nspec:\n  account: shared\n  vpcId: {GW_VPC}\n  subnetIds: [subnet-0000000000000000a, subnet-0000000000000000b]\n  routeTableIds: [{GW_RTB}]\n  loadBalancer: {{name: edge-nlb}}\n  api: {{name: api, stage: v1}}\n"
    );
    for i in 0..n {
        let s = i % SERVICES.len();
        let (_, vpc, rtb, net) = SERVICES[s];
        let path = if i % 3 == 2 { format!("/group{}/s{i}", i % 2) } else { format!("/s{i}") };
        text += &format!(
            "---\napiVersion: crosslink.dev/v1alpha1\nkind: Link\nmetadata: {{name: l{i}}}\nspec:\n  gateway: edge\n  service: {{account: svc{s}, vpcId: {vpc}, routeTableIds: [{rtb}]}}\n  targets: [{{ip: 10.{net}.1.{}, port: 8080}}]\n  listenerPort: {}\n  routes: [{{path: {path}}}]\n",
            10 + i,
            9001 + i
        );
    }
    text
}

fn desired(text: &str) -> DesiredState {
    crosslink_desired::load_str(Path::new("test.yaml"), text).unwrap_or_else(|e| panic!("{e}"))
}

fn engine(f: &Arc<Faulty<FakeAws>>) -> Engine<Faulty<FakeAws>> {
    Engine::new(f.clone(), EngineOptions::default())
}

fn opts() -> ApplyOptions {
    ApplyOptions {
        timeout: Duration::from_secs(600),
        min_wait: Duration::from_millis(500),
        max_wait: Duration::from_secs(15),
        max_rounds: 60,
        allow_weakening: false,
        allow_replacement: false,
    }
}

fn state(f: &FakeAws, account: &str) -> AccountState {
    match f.observe_account(account) {
        AccountObservation::Ok(s) => *s,
        AccountObservation::Failed { code, .. } => panic!("{code}"),
    }
}

/// Compares the fake's whole inventory with desired state: exactly one NLB, VPC link (AVAILABLE,
/// to that NLB) and REST API per gateway; one target group (with exactly the desired targets) and
/// one listener (on the desired port, to that group) per link; one live, active peering per VPC
/// pair and nothing else alive; the routes both ways through it; every API resource once, with an
/// HTTP_PROXY integration to the link's port through the live VPC link; the stage deployed.
/// Returns the problems found and how many resources were compared.
fn inventory(f: &FakeAws, d: &DesiredState) -> (Vec<String>, usize) {
    let mut problems = Vec::new();
    let mut compared = 0;
    let gw = state(f, GW);
    let owned = |t: &BTreeMap<String, String>| t.contains_key(MANAGED_BY);
    let lbs: Vec<_> = gw.load_balancers.iter().filter(|l| owned(&l.tags)).collect();
    let links: Vec<_> = gw.vpc_links.iter().filter(|l| owned(&l.tags)).collect();
    let apis: Vec<_> = gw.rest_apis.iter().filter(|l| owned(&l.tags)).collect();
    compared += lbs.len() + links.len() + apis.len();
    if lbs.len() != 1 || links.len() != 1 || apis.len() != 1 {
        problems.push(format!(
            "gateway: {} NLBs, {} VPC links, {} REST APIs (want 1 each)",
            lbs.len(),
            links.len(),
            apis.len()
        ));
        return (problems, compared);
    }
    let (lb, vl, api) = (lbs[0], links[0], apis[0]);
    if vl.status != "AVAILABLE" || vl.target_arns != vec![lb.arn.clone()] {
        problems.push(format!("VPC link {} is {} to {:?}", vl.id, vl.status, vl.target_arns));
    }
    let tgs: Vec<_> = gw.target_groups.iter().filter(|t| owned(&t.tags)).collect();
    let listeners: Vec<_> = gw.listeners.iter().filter(|x| owned(&x.tags)).collect();
    compared += tgs.len() + listeners.len();
    if tgs.len() != d.links.len() || listeners.len() != d.links.len() {
        problems.push(format!(
            "{} target groups, {} listeners for {} links",
            tgs.len(),
            listeners.len(),
            d.links.len()
        ));
    }
    for l in &d.links {
        let owner = format!("Link/{}", l.metadata.name);
        let mine: Vec<_> = tgs.iter().filter(|t| t.tags.get(OWNER) == Some(&owner)).collect();
        let xs: Vec<_> = listeners.iter().filter(|x| x.tags.get(OWNER) == Some(&owner)).collect();
        if mine.len() != 1 || xs.len() != 1 {
            problems.push(format!("{owner}: {} target groups, {} listeners", mine.len(), xs.len()));
            continue;
        }
        let mut live: Vec<_> = mine[0].targets.iter().map(|t| (t.ip, t.port)).collect();
        live.sort();
        let want: Vec<_> = l.spec.targets.iter().map(|t| (t.ip, t.port)).collect();
        compared += live.len();
        if live != want {
            problems.push(format!("{owner}: targets {live:?}, want {want:?}"));
        }
        if xs[0].port != l.spec.listener_port || xs[0].target_group_arn.as_deref() != Some(mine[0].arn.as_str()) {
            problems.push(format!("{owner}: listener :{} to {:?}", xs[0].port, xs[0].target_group_arn));
        }
        for r in &l.spec.routes {
            for (p, greedy) in [(r.path.clone(), false), (format!("{}/{{proxy+}}", r.path), true)] {
                let found: Vec<_> = api.resources.iter().filter(|x| x.path == p).collect();
                compared += found.len();
                let Some(res) = found.first() else {
                    problems.push(format!("{owner}: API resource {p} missing"));
                    continue;
                };
                let uri = crosslink_plan::integration_uri(&lb.dns_name, l.spec.listener_port, &r.path, greedy);
                let ok = res.methods.get("ANY").and_then(|m| m.integration.as_ref()).is_some_and(|i| {
                    i.uri.as_deref() == Some(uri.as_str()) && i.connection_id.as_deref() == Some(vl.id.as_str())
                });
                if !ok {
                    problems.push(format!("{owner}: {p} integration {:?}", res.methods.get("ANY")));
                }
            }
        }
    }
    if !api.stages.iter().any(|s| s.name == "v1" && s.deployment_id.is_some()) {
        problems.push("stage v1 not deployed".into());
    }
    // Peerings: exactly one live (active) per pair in use; routes both ways through it.
    let pairs: Vec<&(&str, &str, &str, u8)> =
        SERVICES.iter().filter(|(_, vpc, ..)| d.links.iter().any(|l| l.spec.service.vpc_id == *vpc)).collect();
    let live: Vec<_> = gw.peerings.iter().filter(|p| !p.status.is_dead()).collect();
    compared += live.len();
    if live.len() != pairs.len() {
        problems.push(format!("{} live peerings for {} VPC pairs: {live:?}", live.len(), pairs.len()));
    }
    for (acct, vpc, rtb, net) in pairs {
        let mine: Vec<_> = live.iter().filter(|p| p.accepter_vpc == *vpc).collect();
        if mine.len() != 1 || mine[0].status != PeeringStatus::Active {
            problems.push(format!("{vpc}: peerings {mine:?}"));
            continue;
        }
        let pcx = Some(mine[0].id.clone());
        let there = gw.route_tables[GW_RTB]
            .routes
            .iter()
            .any(|r| r.destination.to_string() == format!("10.{net}.0.0/16") && r.peering_id == pcx);
        let back = state(f, acct).route_tables[*rtb]
            .routes
            .iter()
            .any(|r| r.destination.to_string() == "10.1.0.0/16" && r.peering_id == pcx);
        compared += 2;
        if !there || !back {
            problems.push(format!("{vpc}: route there {there}, back {back}"));
        }
    }
    (problems, compared)
}

fn assert_exact(f: &FakeAws, d: &DesiredState, what: &str) -> usize {
    let (problems, compared) = inventory(f, d);
    assert!(problems.is_empty(), "{what}: inventory differs from desired state:\n{}", problems.join("\n"));
    compared
}

fn count(attempts: &[Attempt], op: &str) -> usize {
    attempts.iter().filter(|a| a.op == op).count()
}

fn applied(attempts: &[Attempt], op: &str) -> usize {
    attempts.iter().filter(|a| a.op == op && a.applied).count()
}

/// Times (seconds) of the attempts of `op` (matching `pred`).
fn times(attempts: &[Attempt], op: &str) -> Vec<f64> {
    attempts.iter().filter(|a| a.op == op).map(|a| a.at.expect("clock").as_secs_f64()).collect()
}

fn converged(r: &ApplyReport) {
    assert!(
        r.converged,
        "did not converge in {} rounds ({} calls): failed {:?}\nremaining {:#?}",
        r.rounds,
        r.executed.len(),
        r.failed,
        r.remaining.actions
    );
}

// ---- engine: one apply, every fault class ------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn throttling_answers_of_every_service_are_retried_and_converge() {
    let f = world();
    let d = desired(&fleet(6));
    f.script(Rule::new("CreateVpcPeeringConnection", Effect::Throttle).times(3));
    f.script(Rule::new("CreateTargetGroup", Effect::Throttle).matching("cl-l1-").times(3));
    f.script(Rule::new("CreateRestApi", Effect::Throttle).times(3));
    let r = engine(&f).apply(&d, &opts()).await;
    converged(&r);
    let a = f.attempts();
    let codes = |op: &str| -> Vec<String> {
        a.iter().filter(|x| x.op == op && x.injected.is_some()).map(|x| x.outcome.clone()).collect()
    };
    assert_eq!(codes("CreateVpcPeeringConnection"), vec!["RequestLimitExceeded"; 3]);
    assert_eq!(codes("CreateTargetGroup"), vec!["ThrottlingException"; 3]);
    assert_eq!(codes("CreateRestApi"), vec!["TooManyRequestsException"; 3]);
    // Each throttled call was retried until it went through, once.
    assert_eq!(applied(&a, "CreateRestApi"), 1);
    assert_eq!(applied(&a, "CreateTargetGroup"), 6);
    assert_eq!(applied(&a, "CreateVpcPeeringConnection"), 3);
    let compared = assert_exact(&f, &d, "after throttling");
    eprintln!(
        "faults: throttling: {} calls, {} throttled, {} rounds, {compared} resources compared, 0 duplicates",
        a.len(),
        f.injected().values().sum::<u64>(),
        r.rounds
    );
}

#[tokio::test(start_paused = true)]
async fn server_errors_and_timeouts_converge_without_duplicates() {
    let f = world();
    let d = desired(&fleet(6));
    f.script(Rule::new("CreateLoadBalancer", Effect::ServerError));
    f.script(Rule::new("CreateListener", Effect::Unavailable).times(2));
    // Timeouts: one that AWS carried out anyway, one it did not.
    let t = Duration::from_secs(30);
    f.script(Rule::new("CreateVpcLink", Effect::Timeout { after: t, applied: true }));
    f.script(Rule::new("CreateRestApi", Effect::Timeout { after: t, applied: false }));
    f.script(Rule::new("PutMethod+PutIntegration", Effect::Timeout { after: t, applied: true }).times(3));
    f.script(Rule::new("Observe", Effect::Unavailable).in_account(SERVICES[0].0).times(2));
    let start = Instant::now();
    let r = engine(&f).apply(&d, &opts()).await;
    converged(&r);
    assert!(start.elapsed() >= t, "the timeouts were waited out");
    let a = f.attempts();
    assert_eq!(count(&a, "CreateLoadBalancer"), 2, "one 500, one success");
    assert_eq!(applied(&a, "CreateVpcLink"), 1, "the timed-out create was found again, not repeated");
    assert_eq!(applied(&a, "CreateRestApi"), 1);
    let compared = assert_exact(&f, &d, "after 5xx and timeouts");
    eprintln!(
        "faults: 5xx+timeouts: {} calls, {:?} injected, {compared} resources compared, 0 duplicates",
        a.len(),
        f.injected()
    );
}

#[tokio::test(start_paused = true)]
async fn created_resources_invisible_for_a_few_reads_leave_no_duplicates() {
    for lag in [1, 2, 3] {
        let f = world();
        let d = desired(&fleet(6));
        f.set_read_lag(lag);
        let r = engine(&f).apply(&d, &opts()).await;
        converged(&r);
        let compared = assert_exact(&f, &d, &format!("read lag {lag}"));
        let a = f.attempts();
        let extra: usize = ["CreateVpcLink", "CreateRestApi", "CreateVpcPeeringConnection", "CreateListener"]
            .iter()
            .map(|op| applied(&a, op))
            .sum::<usize>()
            - (1 + 1 + SERVICES.len() + d.links.len());
        eprintln!(
            "faults: read lag {lag}: {} calls, {} rounds, {extra} transient duplicates created and removed, {compared} resources compared, 0 duplicates left",
            a.len(),
            r.rounds
        );
    }
}

#[tokio::test(start_paused = true)]
async fn lost_answers_on_every_kind_of_call_are_found_again() {
    for lag in [0, 2] {
        let f = world();
        let d = desired(&fleet(6));
        f.set_read_lag(lag);
        for op in [
            "CreateVpcPeeringConnection",
            "AcceptVpcPeeringConnection",
            "CreateRoute",
            "CreateLoadBalancer",
            "CreateTargetGroup",
            "RegisterTargets",
            "CreateListener",
            "CreateVpcLink",
            "CreateRestApi",
            "CreateResource",
            "PutMethod+PutIntegration",
            "CreateDeployment",
        ] {
            f.script(Rule::new(op, Effect::LostAnswer).times(2));
        }
        let r = engine(&f).apply(&d, &opts()).await;
        converged(&r);
        let compared = assert_exact(&f, &d, &format!("lost answers, read lag {lag}"));
        eprintln!(
            "faults: lost answers (read lag {lag}): {} lost, {} calls, {compared} resources compared, 0 duplicates",
            f.injected().values().sum::<u64>(),
            f.attempts().len()
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_peering_that_ends_rejected_expired_or_failed_is_requested_again() {
    for fate in [PeeringStatus::Rejected, PeeringStatus::Expired, PeeringStatus::Failed] {
        let f = world();
        let d = desired(&fleet(3));
        f.push_peering_fate(fate);
        let r = engine(&f).apply(&d, &opts()).await;
        converged(&r);
        assert_exact(&f, &d, &format!("{fate:?}"));
        let a = f.attempts();
        assert_eq!(applied(&a, "CreateVpcPeeringConnection"), SERVICES.len() + 1, "{fate:?}: one more request");
        let dead = state(&f, GW).peerings.iter().filter(|p| p.status == fate).count();
        assert_eq!(dead, 1, "{fate:?}: the dead request is left as AWS keeps it");
    }
}

#[tokio::test(start_paused = true)]
async fn a_vpc_link_that_goes_failed_is_replaced_and_integrations_follow() {
    let f = world();
    let d = desired(&fleet(3));
    f.push_vpc_link_fate("FAILED", "NLB is not in the same account");
    converged(&engine(&f).apply(&d, &opts()).await);
    assert_exact(&f, &d, "after a FAILED VPC link at creation");
    assert_eq!(applied(&f.attempts(), "CreateVpcLink"), 2);
    assert_eq!(applied(&f.attempts(), "DeleteVpcLink"), 1);

    // Later, out of band: the live link goes FAILED. It is replaced, every integration is
    // re-pointed at the new one, and the stage deployed again.
    f.with_account(GW, |s| {
        s.vpc_links[0].status = "FAILED".into();
        s.vpc_links[0].status_message = Some("target NLB deleted".into());
    });
    let r = engine(&f).apply(&d, &opts()).await;
    converged(&r);
    assert_exact(&f, &d, "after the live VPC link failed");
    assert!(r.executed.iter().any(|e| e.action.op.name() == "CreateDeployment"));
}

#[tokio::test(start_paused = true)]
async fn a_link_in_trouble_keeps_the_api_path_its_routes_hang_from() {
    // l2 serves /group0/s2. Its account becomes unreadable while a read of the API does not show
    // /group0/s2 (eventual consistency, or removed by hand): /group0 must not be pruned, since
    // DeleteResource cascades and would take the link's routes with it once they show again.
    let f = world();
    let d = desired(&fleet(3));
    converged(&engine(&f).apply(&d, &opts()).await);
    f.break_account(
        SERVICES[2].0,
        crosslink_cloud::CloudError::new(crosslink_cloud::ErrorKind::Throttled, "RequestLimitExceeded", "slow down"),
    );
    f.with_account(GW, |s| s.rest_apis[0].resources.retain(|r| !r.path.starts_with("/group0/")));
    let (_, plan) = engine(&f).plan(&d).await;
    let deletes: Vec<String> = plan.actions.iter().filter(|a| a.op.is_delete()).map(|a| a.resource.clone()).collect();
    assert!(deletes.is_empty(), "a link in trouble lost {deletes:?}");
}

#[tokio::test(start_paused = true)]
async fn a_duplicate_api_resource_from_a_retried_create_is_removed() {
    // moto accepts a second resource for a path (AWS answers ConflictException): an SDK retry
    // of a CreateResource whose answer was lost leaves two. The one not in use goes.
    let f = world();
    let d = desired(&fleet(3));
    converged(&engine(&f).apply(&d, &opts()).await);
    f.with_account(GW, |s| {
        let api = &mut s.rest_apis[0];
        let mut dup = api.resources.iter().find(|r| r.path == "/s0/{proxy+}").unwrap().clone();
        dup.id = "dup0000001".into();
        dup.methods.clear();
        api.resources.insert(0, dup);
    });
    let r = engine(&f).apply(&d, &opts()).await;
    converged(&r);
    let deleted: Vec<String> =
        r.executed.iter().filter(|e| e.action.op.is_delete()).map(|e| e.action.resource.clone()).collect();
    assert_eq!(deleted, vec!["API resource /s0/{proxy+} (dup0000001)".to_string()]);
    assert_exact(&f, &d, "after removing the duplicate");
    let api = &state(&f, GW).rest_apis[0];
    assert_eq!(api.resources.iter().filter(|r| r.path == "/s0/{proxy+}").count(), 1);
}

// ---- the daemon: backoff, no hot loops, status --------------------------------------------------

struct Running {
    dir: PathBuf,
    status: watch::Receiver<StatusSnapshot>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn start(f: &Arc<Faulty<FakeAws>>, name: &str, text: &str) -> Running {
    let dir = std::env::temp_dir().join(format!("crosslink-faults-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("state.yaml"), text).unwrap();
    // Production timings: a 1 s first backoff doubling to 5 min, a 5 min resync.
    let opts = RunOptions { paths: vec![dir.clone()], ..RunOptions::default() };
    let (tx, rx) = watch::channel(StatusSnapshot::default());
    let daemon = Daemon::new(engine(f), opts, Arc::new(Metrics::new("test", "test")), Health::new(), tx);
    let stop = CancellationToken::new();
    let task = tokio::spawn(daemon.run(stop.clone()));
    Running { dir, status: rx, stop, task }
}

impl Running {
    /// Waits (in virtual time) until `cond` holds; panics with the last status after `limit`.
    async fn until(&mut self, what: &str, limit: Duration, cond: impl Fn(&StatusSnapshot) -> bool) -> StatusSnapshot {
        let deadline = Instant::now() + limit;
        loop {
            {
                let s = self.status.borrow_and_update();
                if cond(&s) {
                    return s.clone();
                }
            }
            if tokio::time::timeout_at(deadline, self.status.changed()).await.is_err() {
                panic!("timed out waiting for {what}: {:#?}", *self.status.borrow());
            }
        }
    }

    async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(60), self.task).await.expect("stops in time").unwrap();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn all_ready(s: &StatusSnapshot, n: usize) -> bool {
    s.ready && s.links.len() == n && s.links.iter().chain(&s.gateways).all(|o| o.phase == Phase::Ready)
}

fn link<'a>(s: &'a StatusSnapshot, name: &str) -> &'a crosslink_controller::status::ObjectStatus {
    s.links.iter().find(|l| l.name == name).unwrap_or_else(|| panic!("{name} not in status"))
}

/// Asserts exponential backoff: the k-th gap is at least 0.75 x min(2^k s, 300 s) (jitter is
/// +-20%), so that `n` attempts need exponentially growing time.
fn assert_backoff(t: &[f64], what: &str) {
    for (k, w) in t.windows(2).enumerate() {
        let want = (2f64.powi(k as i32)).min(300.0) * 0.75;
        assert!(w[1] - w[0] >= want, "{what}: gap {k} is {:.2} s, want >= {want:.2} s (times {t:?})", w[1] - w[0]);
    }
}

#[tokio::test(start_paused = true)]
async fn a_throttled_link_backs_off_exponentially_and_the_others_converge() {
    let f = world();
    let text = fleet(6);
    // Every RegisterTargets of l1 is throttled until the rule is cleared.
    f.script(Rule::new("RegisterTargets", Effect::Throttle).matching("10.30.1.11").always());
    let mut d = start(&f, "throttle", &text);
    let s = d
        .until("the others ready, l1 degraded", Duration::from_secs(120), |s| {
            s.ready
                && s.links.len() == 6
                && s.links.iter().all(|l| (l.name == "l1") != (l.phase == Phase::Ready))
                // The stage is deployed without l1's pending API method: Progressing, not failed.
                && s.gateways.iter().all(|g| matches!(g.phase, Phase::Ready | Phase::Progressing))
        })
        .await;
    let l1 = link(&s, "l1");
    assert_eq!(l1.phase, Phase::Degraded, "{l1:?}");
    assert_eq!(l1.last_error.as_ref().unwrap().code, "ThrottlingException");
    // Ten minutes of throttling.
    tokio::time::sleep(Duration::from_secs(600)).await;
    let a = f.attempts();
    let t = times(&a, "RegisterTargets").into_iter().collect::<Vec<_>>();
    let l1_times: Vec<f64> = a
        .iter()
        .filter(|x| x.op == "RegisterTargets" && x.injected.is_some())
        .map(|x| x.at.unwrap().as_secs_f64())
        .collect();
    assert_backoff(&l1_times, "throttled RegisterTargets");
    assert!(l1_times.len() <= 13, "{} attempts in ~11 minutes: {l1_times:?}", l1_times.len());
    let mutating = a.iter().filter(|x| x.op != "Observe").count();
    let reads = count(&a, "Observe");
    assert!(reads < 700, "{reads} account reads in 11 minutes");
    // Throttling ends: l1 converges within one backoff (at most 5 minutes).
    f.clear_rules();
    d.until("l1 ready after the throttling ends", Duration::from_secs(330), |s| all_ready(s, 6)).await;
    let compared = assert_exact(&f, &desired(&text), "after throttling");
    eprintln!(
        "faults: daemon throttled 11 min: {} throttled attempts at {:?} s, {} RegisterTargets in all, {mutating} mutating calls, {reads} reads, {compared} resources compared, 0 duplicates",
        l1_times.len(),
        l1_times.iter().map(|x| x.round() as u64).collect::<Vec<_>>(),
        t.len()
    );
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_create_that_failed_permanently_but_took_effect_does_not_wait_for_the_slow_retry() {
    // Seen on the wire: the first CreateTargetGroup took effect but its answer was lost; the
    // SDK's retry got DuplicateTargetGroupName (moto is not idempotent here), a permanent error.
    // The next read shows the group: the link goes on at once instead of in 15 minutes.
    let f = world();
    f.push_fault(Fault {
        op: "CreateTargetGroup".into(),
        account: "*".into(),
        error: crosslink_cloud::CloudError::new(
            crosslink_cloud::ErrorKind::Permanent,
            "DuplicateTargetGroupName",
            "A target group with the specified name already exists.",
        ),
        after_effect: true,
    });
    let text = fleet(3);
    let mut d = start(&f, "moot", &text);
    let start = Instant::now();
    d.until("all ready", Duration::from_secs(120), |s| all_ready(s, 3)).await;
    eprintln!("faults: a moot permanent failure: all ready after {:.0} s", start.elapsed().as_secs_f64());
    assert_exact(&f, &desired(&text), "after a moot permanent failure");
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn changing_the_targets_of_many_links_is_not_a_mass_removal() {
    // Eight links move to new target IPs at once (the old ones are deregistered: "no longer
    // desired"). No link leaves desired state, so the prune guard (max 5) must not hold it.
    let f = world();
    let text = fleet(8);
    let mut d = start(&f, "retarget", &text);
    let before = d.until("ready", Duration::from_secs(120), |s| all_ready(s, 8)).await.desired.revision;
    let moved = text.replace(".1.1", ".2.1");
    std::fs::write(d.dir.join("state.yaml"), &moved).unwrap();
    let s = d
        .until("ready on the new targets, or blocked", Duration::from_secs(300), |s| {
            s.desired.revision != before && (s.prune.blocked || all_ready(s, 8))
        })
        .await;
    assert!(!s.prune.blocked, "the prune guard held back a target change: {:?}", s.prune);
    let (problems, _) = inventory(&f, &desired(&moved));
    assert!(problems.is_empty(), "{problems:?}");
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_peering_that_always_fails_is_not_requested_in_a_hot_loop() {
    let f = world();
    for _ in 0..10_000 {
        f.push_peering_fate(PeeringStatus::Failed);
    }
    let text = fleet(3);
    let mut d = start(&f, "peering-fails", &text);
    d.until("ready", Duration::from_secs(60), |s| s.ready).await;
    tokio::time::sleep(Duration::from_secs(600)).await;
    let a = f.attempts();
    let t = times(&a, "CreateVpcPeeringConnection");
    let s = d.status.borrow().clone();
    eprintln!("faults: peering always failed, 10 min: {} peering requests", t.len());
    // Three VPC pairs, each requested again with backoff: at most ~12 times each in 10 minutes.
    // Three VPC pairs, each replaced twice at once, then with exponential backoff (1 s doubling:
    // ten more in ten minutes).
    assert!(t.len() <= 3 * 15, "{} peering requests in 10 minutes: a hot loop", t.len());
    let late = t.iter().filter(|x| **x > 300.0).count();
    assert!(late <= 3 * 2, "{late} peering requests in the last 5 minutes: backoff is not exponential ({t:?})");
    for l in &s.links {
        assert_ne!(l.phase, Phase::Ready, "{l:?}");
        assert!(l.message.contains("failed") || l.message.contains("Failed"), "the status says why: {l:?}");
    }
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_vpc_link_that_always_fails_is_not_recreated_in_a_hot_loop() {
    let f = world();
    for _ in 0..10_000 {
        f.push_vpc_link_fate("FAILED", "the NLB is not in this account");
    }
    let text = fleet(3);
    let mut d = start(&f, "vpc-link-fails", &text);
    d.until("ready", Duration::from_secs(60), |s| s.ready).await;
    tokio::time::sleep(Duration::from_secs(600)).await;
    let a = f.attempts();
    let n = applied(&a, "CreateVpcLink");
    eprintln!("faults: VPC link always FAILED, 10 min: {n} VPC link creates");
    assert!(n <= 15, "{n} VPC links created in 10 minutes: a hot loop");
    // After the first MAX_RECREATES, each replacement waits twice as long as the one before.
    let t: Vec<f64> =
        a.iter().filter(|x| x.op == "CreateVpcLink" && x.applied).map(|x| x.at.unwrap().as_secs_f64()).collect();
    assert_backoff(&t[3..], "VPC link replacements");
    let s = d.status.borrow().clone();
    let g = &s.gateways[0];
    assert_ne!(g.phase, Phase::Ready);
    assert!(g.message.contains("FAILED"), "the status says why: {g:?}");
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_hung_call_does_not_stall_the_other_links_for_long() {
    let f = world();
    // l0's listener create hangs for an hour (no answer, connection open).
    f.script(
        Rule::new("CreateListener", Effect::Timeout { after: Duration::from_secs(3600), applied: false })
            .matching("port: 9001"),
    );
    let text = fleet(6);
    let mut d = start(&f, "hung", &text);
    let start = Instant::now();
    d.until("the others ready", Duration::from_secs(900), |s| {
        s.links.len() == 6 && s.links.iter().all(|l| l.name == "l0" || l.phase == Phase::Ready)
    })
    .await;
    let took = start.elapsed();
    eprintln!("faults: hung call: the other links were ready after {:.0} s", took.as_secs_f64());
    assert!(took <= Duration::from_secs(360), "the other links waited {took:?} for one hung call");
    d.until("all ready", Duration::from_secs(3600), |s| all_ready(s, 6)).await;
    assert_exact(&f, &desired(&text), "after a hung call");
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn random_faults_on_a_fifth_of_all_calls_converge_a_30_link_fleet_exactly() {
    let text = fleet(30);
    let d = desired(&text);
    let mut totals = (0u64, 0usize, 0usize, 0usize);
    for seed in 1..=5u64 {
        let f = world();
        f.set_read_lag(1);
        f.set_chaos(Some(Chaos {
            rate: 0.2,
            seed,
            observe_rate: 0.05,
            kinds: vec![
                (Effect::Throttle, 4),
                (Effect::ServerError, 2),
                (Effect::Unavailable, 2),
                (Effect::Timeout { after: Duration::from_secs(20), applied: false }, 1),
                (Effect::Timeout { after: Duration::from_secs(20), applied: true }, 1),
                (Effect::LostAnswer, 1),
                (Effect::Latency(Duration::from_secs(2)), 1),
            ],
        }));
        let mut r = start(&f, &format!("chaos-{seed}"), &text);
        r.until(&format!("seed {seed}: all ready"), Duration::from_secs(3600), |s| all_ready(s, 30)).await;
        let took = f.attempts().last().and_then(|a| a.at).unwrap_or_default();
        r.stop().await;
        f.set_chaos(None);
        let compared = assert_exact(&f, &d, &format!("seed {seed}"));
        let a = f.attempts();
        // Nothing desired was ever deleted: the only deletes are of duplicates.
        let deletes: Vec<&Attempt> =
            a.iter().filter(|x| (x.op.starts_with("Delete") || x.op.starts_with("Deregister")) && x.applied).collect();
        let duplicate_kinds = ["DeleteVpcLink", "DeleteRestApi", "DeleteVpcPeeringConnection"];
        assert!(
            deletes.iter().all(|x| duplicate_kinds.contains(&x.op.as_str())),
            "seed {seed}: deleted something that cannot have been a duplicate: {deletes:?}"
        );
        let injected: u64 = f.injected().values().sum();
        eprintln!(
            "faults: chaos seed {seed}: {} calls, {injected} faults injected ({:?}), converged in {:.0} s virtual, {} deletes (of duplicates), {compared} resources compared, 0 duplicates",
            a.len(),
            f.injected(),
            took.as_secs_f64(),
            deletes.len()
        );
        totals.0 += injected;
        totals.1 += a.len();
        totals.2 += compared;
        totals.3 += deletes.len();
    }
    eprintln!(
        "faults: chaos total: 5 runs, {} calls, {} faults injected, {} resources compared, {} deletes of duplicates, 0 duplicates left",
        totals.1, totals.0, totals.2, totals.3
    );
}
