//! The reconciling loop in process, against the in-memory AWS: readiness, convergence, reacting
//! to edits, drift repair on resync, invalid desired state, the prune guard, backoff.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crosslink_cloud::fake::FakeAws;
use crosslink_cloud::faults::{Fault, Faulty};
use crosslink_cloud::{CloudError, ErrorKind};
use crosslink_controller::daemon::{Daemon, RunOptions};
use crosslink_controller::metrics::Metrics;
use crosslink_controller::status::{Health, Phase, StatusSnapshot};
use crosslink_controller::{Engine, EngineOptions};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

#[path = "daemon/events.rs"]
mod events;

const GW: &str = "111111111111";
const SVC: &str = "222222222222";

/// The in-memory AWS, seeded, behind scripted faults (none until a test adds them).
fn world() -> Arc<Faulty<FakeAws>> {
    let f = Faulty::new(FakeAws::new());
    f.seed_vpc(
        GW,
        "eu-central-1",
        "vpc-0000000000000000a",
        "10.1.0.0/16",
        &["subnet-0000000000000000a"],
        "rtb-0000000000000000a",
    );
    f.seed_vpc(
        SVC,
        "eu-central-1",
        "vpc-0000000000000000b",
        "10.20.0.0/16",
        &["subnet-0000000000000001a"],
        "rtb-0000000000000000b",
    );
    Arc::new(f)
}

fn base() -> String {
    format!(
        "apiVersion: crosslink.dev/v1alpha1\nkind: Account\nmetadata: {{name: shared}}\nspec: {{accountId: \"{GW}\", region: eu-central-1}}\n---\napiVersion: crosslink.dev/v1alpha1\nkind: Account\nmetadata: {{name: svc}}\nspec: {{accountId: \"{SVC}\", region: eu-central-1}}\n---\napiVersion: crosslink.dev/v1alpha1\nkind: Gateway\nmetadata: {{name: edge}}\nspec:\n  account: shared\n  vpcId: vpc-0000000000000000a\n  subnetIds: [subnet-0000000000000000a]\n  routeTableIds: [rtb-0000000000000000a]\n  loadBalancer: {{name: edge-nlb}}\n  api: {{name: api, stage: v1}}\n"
    )
}

fn links(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "apiVersion: crosslink.dev/v1alpha1\nkind: Link\nmetadata: {{name: l{i}}}\nspec:\n  gateway: edge\n  service: {{account: svc, vpcId: vpc-0000000000000000b, routeTableIds: [rtb-0000000000000000b]}}\n  targets: [{{ip: 10.20.1.{}, port: 8080}}]\n  listenerPort: {}\n  routes: [{{path: /s{i}}}]\n---\n",
                10 + i,
                9001 + i
            )
        })
        .collect()
}

struct Running {
    dir: PathBuf,
    status: watch::Receiver<StatusSnapshot>,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// Writes like git-sync does: atomically (a reader never sees a half-written file).
fn put(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn write(dir: &Path, base: &str, links: &str) {
    put(&dir.join("base.yaml"), base);
    put(&dir.join("links.yaml"), links);
}

fn start(f: &Arc<Faulty<FakeAws>>, name: &str, n: usize, tweak: impl FnOnce(&mut RunOptions)) -> Running {
    start_logged(f, name, n, tweak, None, EngineOptions::default())
}

/// The daemon's log lines (text format, no colour), as `crosslink run` writes them.
#[derive(Clone, Default)]
struct Log(Arc<std::sync::Mutex<Vec<u8>>>);

impl Log {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
    fn dispatch(&self) -> tracing::Dispatch {
        let log = self.clone();
        let sub = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || log.clone())
            .finish();
        tracing::Dispatch::new(sub)
    }
}

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn start_logged(
    f: &Arc<Faulty<FakeAws>>,
    name: &str,
    n: usize,
    tweak: impl FnOnce(&mut RunOptions),
    log: Option<&Log>,
    engine: EngineOptions,
) -> Running {
    start_daemon(f, name, n, tweak, log, engine, |d| d)
}

type World = Arc<Faulty<FakeAws>>;

/// `wrap` adds to the daemon what a test needs (events, ownership).
fn start_daemon(
    f: &World,
    name: &str,
    n: usize,
    tweak: impl FnOnce(&mut RunOptions),
    log: Option<&Log>,
    engine: EngineOptions,
    wrap: impl FnOnce(Daemon<Faulty<FakeAws>>) -> Daemon<Faulty<FakeAws>>,
) -> Running {
    let dir = std::env::temp_dir().join(format!("crosslink-daemon-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    write(&dir, &base(), &links(n));
    let mut opts = RunOptions {
        paths: vec![dir.clone()],
        resync: Duration::from_millis(400),
        reload_interval: Duration::from_millis(200),
        debounce: Duration::from_millis(50),
        min_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(2),
        permanent_retry: Duration::from_secs(30),
        followup: Duration::from_millis(20),
        heartbeat: Duration::from_millis(100),
        ..RunOptions::default()
    };
    tweak(&mut opts);
    let metrics = Arc::new(Metrics::new("test", "test"));
    let health = Health::new();
    let (tx, rx) = watch::channel(StatusSnapshot::default());
    let engine = Engine::new(f.clone(), engine);
    let daemon = wrap(Daemon::new(engine, opts, metrics.clone(), health.clone(), tx));
    let stop = CancellationToken::new();
    let task = match log {
        // The daemon's own task logs to it (the engine runs its calls inside that task).
        Some(log) => {
            use tracing::instrument::WithSubscriber;
            tokio::spawn(daemon.run(stop.clone()).with_subscriber(log.dispatch()))
        }
        None => tokio::spawn(daemon.run(stop.clone())),
    };
    Running { dir, status: rx, health, metrics, stop, task }
}

impl Running {
    async fn until(&mut self, what: &str, cond: impl Fn(&StatusSnapshot) -> bool) -> StatusSnapshot {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
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
        tokio::time::timeout(Duration::from_secs(5), self.task).await.expect("stops in time").unwrap();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const SVC2: &str = "333333333333";

/// A second service account with a link of its own (`m0`): what a pass about the first must not
/// read.
fn with_second_service(f: &World, d: &Running) {
    f.seed_vpc(
        SVC2,
        "eu-central-1",
        "vpc-0000000000000000c",
        "10.30.0.0/16",
        &["subnet-0000000000000002a"],
        "rtb-0000000000000000c",
    );
    let other = format!(
        "apiVersion: crosslink.dev/v1alpha1\nkind: Account\nmetadata: {{name: svc2}}\nspec: {{accountId: \"{SVC2}\", region: eu-central-1}}\n---\napiVersion: crosslink.dev/v1alpha1\nkind: Link\nmetadata: {{name: m0}}\nspec:\n  gateway: edge\n  service: {{account: svc2, vpcId: vpc-0000000000000000c, routeTableIds: [rtb-0000000000000000c]}}\n  targets: [{{ip: 10.30.1.10, port: 8080}}]\n  listenerPort: 9100\n  routes: [{{path: /m0}}]\n"
    );
    put(&d.dir.join("other.yaml"), &other);
}

/// A second gateway (`edge2`, its own VPC in the gateway account, so its own unit) with a link
/// `k0` into the service VPC: the desired-state text to add.
fn second_gateway(f: &World) -> &'static str {
    f.seed_vpc(
        GW,
        "eu-central-1",
        "vpc-0000000000000000d",
        "10.2.0.0/16",
        &["subnet-0000000000000000d"],
        "rtb-0000000000000000d",
    );
    "apiVersion: crosslink.dev/v1alpha1\nkind: Gateway\nmetadata: {name: edge2}\nspec:\n  account: shared\n  vpcId: vpc-0000000000000000d\n  subnetIds: [subnet-0000000000000000d]\n  routeTableIds: [rtb-0000000000000000d]\n  loadBalancer: {name: edge2-nlb}\n  api: {name: api2, stage: v1}\n---\napiVersion: crosslink.dev/v1alpha1\nkind: Link\nmetadata: {name: k0}\nspec:\n  gateway: edge2\n  service: {account: svc, vpcId: vpc-0000000000000000b, routeTableIds: [rtb-0000000000000000b]}\n  targets: [{ip: 10.20.2.10, port: 8080}]\n  listenerPort: 9001\n  routes: [{path: /k0}]\n"
}

/// A replica's ownership, coordinated through `engine` with short leases until `stop`.
fn replica(
    engine: &crosslink_coord::memory::MemoryEngine,
    name: &str,
    stop: &CancellationToken,
) -> crosslink_coord::Ownership {
    let timing = crosslink_coord::Timing {
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(300),
    };
    let ownership = crosslink_coord::Ownership::sharded(name, "memory", timing);
    let c =
        crosslink_coord::Coordinator::new(engine.backend(name, timing.lease_duration), ownership.clone(), name, timing);
    tokio::spawn(c.run(stop.clone(), Duration::from_secs(1)));
    ownership
}

fn all_ready(s: &StatusSnapshot, n: usize) -> bool {
    s.ready && s.links.len() == n && s.links.iter().chain(&s.gateways).all(|o| o.phase == Phase::Ready)
}

fn deletes(f: &FakeAws) -> usize {
    f.calls().iter().filter(|(_, op)| op.starts_with("Delete") || op.starts_with("Deregister")).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn becomes_ready_follows_edits_repairs_drift_and_survives_bad_yaml() {
    let f = world();
    let mut d = start(&f, "main", 3, |_| {});
    assert!(!d.health.is_ready());
    let s = d.until("all links ready", |s| all_ready(s, 3)).await;
    assert!(s.desired.revision.as_deref().unwrap().starts_with("sha256:"));
    assert!(
        s.links[0].resources.contains_key("listener") && s.links[0].resources.contains_key("peering"),
        "{:?}",
        s.links[0]
    );
    assert!(s.last_full_sync.is_some());

    // Add a link and change another's port: converges.
    write(&d.dir, &base(), &(links(4).replace("listenerPort: 9001", "listenerPort: 9101")));
    d.until("four links ready", |s| all_ready(s, 4)).await;
    assert!(f.observe_account_listeners(GW).contains(&9101));

    // Drift out of band: a route deleted; the next resync repairs it.
    f.with_account(GW, |s| s.route_tables.get_mut("rtb-0000000000000000a").unwrap().routes.clear());
    d.until("route repaired", |_| !f.observe_route_tables_empty(GW)).await;
    let text = d.metrics.encode();
    assert!(text.contains("crosslink_drift_repairs_total{resource=\"route\"} 1"), "{text}");

    // Invalid YAML: reported, the last good revision stays, nothing is deleted.
    let good = d.status.borrow().desired.revision.clone();
    let before = deletes(&f);
    put(&d.dir.join("links.yaml"), "kind: Link\nmetadata: {name: [\n");
    let s = d.until("error reported", |s| s.desired.error.is_some()).await;
    assert_eq!(s.desired.revision, good);
    assert!(s.desired.error.as_ref().unwrap().contains("links.yaml"), "{:?}", s.desired.error);
    tokio::time::sleep(Duration::from_millis(900)).await; // two resyncs
    assert_eq!(deletes(&f), before, "nothing deleted because of a broken commit");
    assert!(d.metrics.encode().contains("crosslink_desired_state_valid 0"));
    assert!(d.status.borrow().links.iter().all(|l| l.phase == Phase::Ready));

    // Fixed: the error clears.
    write(&d.dir, &base(), &(links(4).replace("listenerPort: 9001", "listenerPort: 9101")));
    d.until("error cleared", |s| s.desired.error.is_none()).await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_guard_holds_back_mass_removal_until_allowed() {
    let f = world();
    let mut d = start(&f, "prune", 8, |o| o.max_prune = 5);
    d.until("ready", |s| all_ready(s, 8)).await;
    let before = deletes(&f);
    // Most links vanish at once.
    write(&d.dir, &base(), &links(1));
    let s = d.until("prune blocked", |s| s.prune.blocked).await;
    assert_eq!(s.prune.links.len(), 7);
    assert!(s.links.iter().filter(|l| l.phase == Phase::PruneBlocked).count() == 7, "{:#?}", s.links);
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(deletes(&f), before, "nothing removed while blocked");
    assert!(d.metrics.encode().contains("crosslink_prune_blocked 1"));
    // An emptied desired state is refused too.
    write(&d.dir, &base(), "");
    d.until("blocked for emptiness", |s| s.prune.message.as_deref().is_some_and(|m| m.contains("no links"))).await;
    // Restoring the YAML clears it.
    write(&d.dir, &base(), &links(8));
    d.until("guard released", |s| !s.prune.blocked && all_ready(s, 8)).await;
    d.stop().await;

    // With --allow-prune the same removal goes through.
    let mut d = start(&f, "prune-allowed", 8, |o| {
        o.max_prune = 5;
        o.allow_prune = true;
    });
    d.until("ready", |s| all_ready(s, 8)).await;
    write(&d.dir, &base(), &links(1));
    d.until("pruned", |s| all_ready(s, 1)).await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_errors_back_off_without_hot_looping() {
    let f = world();
    for _ in 0..1000 {
        f.push_fault(Fault {
            op: "RegisterTargets".into(),
            account: "*".into(),
            error: CloudError::new(ErrorKind::Permanent, "InvalidTarget", "10.20.1.10 is not a valid target"),
            after_effect: false,
        });
    }
    let mut d = start(&f, "backoff", 2, |_| {});
    let s = d.until("links failed", |s| s.ready && s.links.iter().all(|l| l.phase == Phase::Failed)).await;
    let e = s.links[0].last_error.as_ref().unwrap();
    assert_eq!(e.code, "InvalidTarget");
    assert!(s.links[0].message.contains("retried slowly"), "{}", s.links[0].message);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let attempts = f.calls().iter().filter(|(_, op)| op == "RegisterTargets").count();
    assert!(attempts <= 2, "{attempts} attempts in 2 s: a hot loop");
    // The rest of each link's chain was still built, and what changed was deployed.
    assert_eq!(f.observe_account_listeners(GW).len(), 2);
    assert!(f.calls().iter().any(|(_, op)| op == "CreateDeployment"));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_account_fails_its_link_only() {
    let f = world();
    f.seed_vpc("333333333333", "eu-central-1", "vpc-0000000000000000c", "10.30.0.0/16", &[], "rtb-0000000000000000c");
    f.break_account(
        "333333333333",
        CloudError::new(ErrorKind::AccessDenied, "AccessDenied", "not authorized to perform sts:AssumeRole"),
    );
    let extra = "apiVersion: crosslink.dev/v1alpha1\nkind: Account\nmetadata: {name: broken}\nspec: {accountId: \"333333333333\", region: eu-central-1}\n---\napiVersion: crosslink.dev/v1alpha1\nkind: Link\nmetadata: {name: other}\nspec:\n  gateway: edge\n  service: {account: broken, vpcId: vpc-0000000000000000c, routeTableIds: [rtb-0000000000000000c]}\n  targets: [{ip: 10.30.1.10, port: 8080}]\n  listenerPort: 9500\n  routes: [{path: /other}]\n---\n";
    let mut d = start(&f, "broken", 2, |_| {});
    write(&d.dir, &base(), &(links(2) + extra));
    let s = d
        .until("other failed, the rest ready", |s| {
            s.links.len() == 3
                && s.links.iter().all(|l| (l.name == "other") == (l.phase == Phase::Failed))
                && s.gateways.iter().all(|g| g.phase == Phase::Ready)
        })
        .await;
    let other = s.links.iter().find(|l| l.name == "other").unwrap();
    assert_eq!(other.last_error.as_ref().unwrap().code, "AccountUnavailable");
    assert!(other.message.contains("AccessDenied"), "{}", other.message);
    d.stop().await;
}

/// A new commit that leaves the desired-state files as they were (desired state inside a larger
/// repository) is recorded as the revision in force, without a pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_changes_no_desired_state_costs_no_pass() {
    let f = world();
    let mut d = start(&f, "commit", 2, |o| o.resync = Duration::from_secs(3600));
    // The directory is a checkout whose desired-state files are committed: its revision is
    // the HEAD commit.
    let dir = d.dir.clone();
    let git = |args: &[&str]| -> String {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"])
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let commit = |file: &str, text: &str| -> String {
        std::fs::write(dir.join(file), text).unwrap();
        git(&["add", "-A"]);
        git(&["commit", "-q", "-m", file]);
        git(&["rev-parse", "HEAD"])
    };
    git(&["init", "-q"]);
    let first = commit("README", "the desired state\n");
    d.until("the commit in force", |s| all_ready(s, 2) && s.desired.revision.as_deref() == Some(first.as_str())).await;
    // Let the follow-ups of convergence settle, then count passes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let passes = |d: &Running| {
        let text = d.metrics.encode();
        text.lines()
            .find_map(|l| l.strip_prefix("crosslink_reconcile_duration_seconds_count "))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let before = passes(&d);

    // Another commit, same desired-state files: recorded, no pass.
    let second = commit("README", "the desired state, documented\n");
    d.until("the new commit in force", |s| s.desired.revision.as_deref() == Some(second.as_str())).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(passes(&d), before, "a pass ran for a commit that changed no desired state");
    assert!(d.metrics.encode().contains(&format!("revision=\"{second}\"")));

    // A commit that does change it: a pass.
    write(&d.dir, &base(), &links(3));
    commit("README", "three links\n");
    d.until("three links ready", |s| all_ready(s, 3)).await;
    assert!(passes(&d) > before);
    d.stop().await;
}

/// An idle daemon reads its desired state on edits and once per reload interval, no more: its
/// own reads (inotify reports every open) are not edits. An invalid edit shows in /status at
/// once, not at the next pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_daemon_reloads_only_on_edits_and_reports_invalid_state_at_once() {
    let f = world();
    let mut r = start(&f, "idle", 1, |o| {
        o.reload_interval = Duration::from_secs(3600);
        o.resync = Duration::from_secs(3600);
    });
    r.until("ready", |s| s.ready && s.links.iter().all(|l| l.phase == Phase::Ready)).await;
    // Each load of an invalid state is counted: the counter shows how often the files are read.
    put(&r.dir.join("links.yaml"), "apiVersion: crosslink.dev/v1alpha1\nkind: Link\nmetadata: [\n");
    let s = r.until("the invalid state in /status", |s| s.desired.error.is_some()).await;
    assert!(s.desired.error.as_deref().unwrap_or("").contains("links.yaml"), "{:?}", s.desired);
    let first = r.metrics.desired_load_errors.get();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = r.metrics.desired_load_errors.get() - first;
    assert_eq!(idle, 0, "the idle daemon re-read its desired state {idle} times in 3 s");
    // Another edit is still picked up, once.
    put(&r.dir.join("links.yaml"), "apiVersion: crosslink.dev/v1alpha1\nkind: Link\nmetadata: {\n");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while r.metrics.desired_load_errors.get() == first {
        assert!(tokio::time::Instant::now() < deadline, "the edit was not picked up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(r.metrics.desired_load_errors.get(), first + 1, "one edit, one reload");
    r.stop().await;
}

fn counter(text: &str, name: &str, resource: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}{{resource=\"{resource}\"}} ")))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// A field changed in the YAML is an intended change, in the reason, the log and the metrics;
/// the same field changed in AWS behind crosslink's back is drift. A merge must not fire a drift
/// alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intended_changes_are_told_apart_from_drift() {
    let f = world();
    let log = Log::default();
    let mut d =
        start_logged(&f, "change", 2, |o| o.resync = Duration::from_millis(300), Some(&log), EngineOptions::default());
    d.until("ready", |s| all_ready(s, 2)).await;

    // The desired state moves: l0's health check interval.
    let edited = links(2).replacen(
        "  listenerPort: 9001\n",
        "  listenerPort: 9001\n  healthCheck: {protocol: TCP, intervalSeconds: 10}\n",
        1,
    );
    let applied_before = counter(&d.metrics.encode(), "crosslink_changes_applied_total", "target_group");
    write(&d.dir, &base(), &edited);
    let interval = |f: &FakeAws| {
        f.with_account(GW, |s| {
            s.target_groups.iter().map(|t| t.health_check.interval_seconds).min().unwrap_or_default()
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while interval(&f) != 10 {
        assert!(tokio::time::Instant::now() < deadline, "the edit was not applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    d.until("ready again", |s| all_ready(s, 2)).await;
    let text = d.metrics.encode();
    assert_eq!(counter(&text, "crosslink_drift_repairs_total", "target_group"), 0, "an edit counted as drift:\n{text}");
    assert!(!text.contains("crosslink_drift_repairs_total{"), "no drift at all after an edit:\n{text}");
    assert_eq!(counter(&text, "crosslink_changes_applied_total", "target_group"), applied_before + 1, "{text}");
    let lines = log.text();
    assert!(lines.contains("desired state changed healthCheck.intervalSeconds: live 30, desired 10"), "{lines}");
    assert!(!lines.contains("drift of"), "{lines}");

    // AWS changes behind crosslink's back: drift, repaired at the next resync.
    f.with_account(GW, |s| {
        for t in &mut s.target_groups {
            if t.health_check.interval_seconds == 10 {
                t.health_check.interval_seconds = 20;
            }
        }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while interval(&f) != 10 {
        assert!(tokio::time::Instant::now() < deadline, "the drift was not repaired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let text = d.metrics.encode();
    assert_eq!(counter(&text, "crosslink_drift_repairs_total", "target_group"), 1, "{text}");
    assert_eq!(counter(&text, "crosslink_changes_applied_total", "target_group"), applied_before + 1, "{text}");
    assert!(log.text().contains("drift of healthCheck.intervalSeconds: live 20, desired 10"), "{}", log.text());
    d.stop().await;
}

/// Failures are logged as warnings with what failed and why (the runbook's first step greps for
/// WARN and ERROR); items interrupted by shutdown are said to be, not logged as no-ops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_warnings_and_shutdown_interruptions_say_so() {
    use crosslink_cloud::faults::{Effect, Rule};
    let f = world();
    let log = Log::default();
    // A link whose route table does not exist: a NotFound problem, every pass.
    let broken = links(1).replace("routeTableIds: [rtb-0000000000000000b]", "routeTableIds: [rtb-0000000000000dead]");
    let mut d = start_logged(&f, "warn", 0, |_| {}, Some(&log), EngineOptions::default());
    write(&d.dir, &base(), &broken);
    d.until("the link failed", |s| s.links.iter().any(|l| l.phase == Phase::Failed)).await;
    let lines = log.text();
    let warned =
        lines.lines().find(|l| l.contains(" WARN ") && l.contains("reconcile failed") && l.contains("NotFound"));
    assert!(warned.is_some_and(|l| l.contains("rtb-0000000000000dead")), "no WARN line names the failure:\n{lines}");
    assert!(!lines.lines().any(|l| l.contains(" INFO ") && l.contains("outcome=\"error\"")), "{lines}");
    d.stop().await;

    // Shutdown while a pass has calls in flight: what did not start is "interrupted".
    /// Real time, and a signal when a call starts its delay (it is then in flight).
    struct InFlight(std::time::Instant, Arc<tokio::sync::Notify>);
    impl crosslink_cloud::faults::Clock for InFlight {
        fn now(&self) -> Duration {
            self.0.elapsed()
        }
        fn sleep(&self, d: Duration) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
            self.1.notify_one();
            Box::pin(tokio::time::sleep(d))
        }
    }
    let started = Arc::new(tokio::sync::Notify::new());
    let f = {
        let Ok(f) = Arc::try_unwrap(world()) else { panic!("not shared yet") };
        Arc::new(f.with_clock(Arc::new(InFlight(std::time::Instant::now(), started.clone()))))
    };
    f.script(Rule::new("*", Effect::Latency(Duration::from_secs(2))));
    let log = Log::default();
    // One call at a time: when the first is in flight, the other ready ones wait for a slot.
    let one = EngineOptions { concurrency: 1, ..EngineOptions::default() };
    let d = start_logged(&f, "interrupted", 3, |o| o.grace = Duration::from_secs(10), Some(&log), one);
    tokio::time::timeout(Duration::from_secs(10), started.notified()).await.expect("a call in flight");
    d.stop().await;
    let lines = log.text();
    assert!(lines.lines().any(|l| l.contains(" WARN ") && l.contains("outcome=\"interrupted\"")), "{lines}");
    assert!(!lines.lines().any(|l| l.contains("outcome=\"noop\"")), "{lines}");
}

/// A link removed with `deletionPolicy: Retain` stays listed in /status with what was kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_resources_are_listed_as_kept_in_status() {
    let f = world();
    let mut d = start(&f, "retain", 0, |_| {});
    let two = links(2).replacen("  routes: [{path: /s1}]\n", "  routes: [{path: /s1}]\n  deletionPolicy: Retain\n", 1);
    assert!(two.contains("deletionPolicy: Retain"));
    write(&d.dir, &base(), &two);
    d.until("two links ready", |s| all_ready(s, 2)).await;
    write(&d.dir, &base(), &links(1));
    let s = d
        .until("l1 kept", |s| {
            s.links.iter().any(|l| l.name == "l1" && !l.retained.is_empty() && l.pending_changes == 0)
        })
        .await;
    let l1 = s.links.iter().find(|l| l.name == "l1").unwrap();
    assert!(l1.retained.iter().any(|r| r.starts_with("listener :9002")), "{l1:?}");
    assert!(l1.retained.iter().all(|r| r.ends_with("(deletionPolicy Retain)")), "{l1:?}");
    assert_eq!(l1.phase, Phase::Ready, "{l1:?}");
    d.stop().await;
}

/// A new desired state, and the follow-up passes it causes, read only the accounts its
/// difference touches, and in them only the targets of the links it is about: a link added to a
/// converged fleet does not re-read an unrelated service account or the other links' targets.
/// The full resync still reads everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_link_observes_only_what_it_touches() {
    let f = world();
    let mut d = start(&f, "focus", 2, |o| o.resync = Duration::from_secs(3600));
    with_second_service(&f, &d);
    d.until("three links ready", |s| all_ready(s, 3)).await;
    // Let the follow-ups of convergence settle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = f.observations();
    let skipped_before = f.target_reads_skipped();

    write(&d.dir, &base(), &links(3));
    d.until("the new link ready", |s| all_ready(s, 4)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = f.observations();
    let read = |m: &std::collections::BTreeMap<String, u64>, a: &str| m.get(a).copied().unwrap_or(0);
    assert!(read(&after, GW) > read(&before, GW), "the gateway account is read: {before:?} -> {after:?}");
    assert!(read(&after, SVC) > read(&before, SVC), "the new link's service account is read");
    assert_eq!(read(&after, SVC2), read(&before, SVC2), "an account the new link does not touch is not read again");
    // Each pass for the new link reads its own target group's targets, not the other three's.
    assert!(
        f.target_reads_skipped() >= skipped_before + 3,
        "targets of other links were read again ({} skipped before, {} after)",
        skipped_before,
        f.target_reads_skipped()
    );
    let s = d.status.borrow().clone();
    assert!(all_ready(&s, 4), "every link stays ready: {s:#?}");
    d.stop().await;
}

/// In sync is not working (issue 18): targets that fail their health checks make a link
/// Degraded with AWS's reason, hop by hop in /status and in the metrics, and Ready again once
/// they pass; nothing is changed in AWS for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_sync_link_whose_targets_fail_is_degraded_not_ready() {
    let f = world();
    let mut d = start(&f, "health", 2, |_| {});
    let s = d.until("all links ready", |s| all_ready(s, 2)).await;
    let h = s.links[0].health.as_ref().expect("a link's health is published");
    assert!(h.healthy && s.links[0].synced, "{h:#?}");
    assert!(s.links[0].message.starts_with("in sync; 1 of 1 targets healthy"), "{}", s.links[0].message);
    let text = d.metrics.encode();
    assert!(text.contains(&format!("crosslink_link_healthy{{link=\"{}\"}} 1", s.links[0].name)), "{text}");

    let calls = f.calls().len();
    f.with_account(GW, |st| {
        for tg in &mut st.target_groups {
            for t in &mut tg.targets {
                t.health = "unhealthy".into();
                t.reason = Some("Target.FailedHealthChecks".into());
                t.description = Some("Health checks failed".into());
            }
        }
    });
    let s = d.until("links degraded", |s| s.links.iter().all(|l| l.phase == Phase::Degraded)).await;
    let l = &s.links[0];
    assert!(l.synced);
    assert_eq!(l.message, "in sync, but 0 of 1 targets healthy (Target.FailedHealthChecks)");
    let first = l.health.as_ref().unwrap().first_broken_hop().unwrap();
    assert_eq!(first.kind, "target");
    assert_eq!(first.detail, "unhealthy: Target.FailedHealthChecks: Health checks failed");
    let text = d.metrics.encode();
    let name = &l.name;
    assert!(text.contains(&format!("crosslink_link_healthy{{link=\"{name}\"}} 0")), "{text}");
    // In sync (not CrosslinkLinkNotReady's), but not Ready.
    assert!(text.contains(&format!("crosslink_link_synced{{link=\"{name}\"}} 1")), "{text}");
    assert!(text.contains(&format!("crosslink_link_ready{{link=\"{name}\"}} 0")), "{text}");
    assert!(text.contains(&format!("crosslink_link_targets{{link=\"{name}\",state=\"unhealthy\"}} 1")), "{text}");
    assert!(text.contains(&format!("crosslink_link_targets{{link=\"{name}\",state=\"healthy\"}} 0")), "{text}");
    assert!(!text.contains("10.20."), "no target address in a metric label");
    assert_eq!(f.calls().len(), calls, "an unhealthy target is not a change to make");

    f.with_account(GW, |st| {
        for tg in &mut st.target_groups {
            for t in &mut tg.targets {
                t.health = "healthy".into();
                (t.reason, t.description) = (None, None);
            }
        }
    });
    d.until("ready again", |s| all_ready(s, 2)).await;
    d.stop().await;
}

/// Every method's (authorizationType, apiKeyRequired) in the gateway account.
fn protections(f: &FakeAws) -> Vec<(String, bool)> {
    f.with_account(GW, |st| {
        st.rest_apis
            .iter()
            .flat_map(|a| &a.resources)
            .flat_map(|r| r.methods.values())
            .map(|m| (m.authorization_type.clone(), m.api_key_required))
            .collect()
    })
}

/// Issue 14's protection guard: a desired state that would make routes less protected is held
/// and reported, as the prune guard holds mass removal, until the YAML is fixed or the daemon
/// runs with `allow_weakening`; making them more protected is never held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_protection_guard_holds_routes_made_less_protected_until_allowed() {
    let f = world();
    let protected = base().replace(
        "api: {name: api, stage: v1}",
        "api: {name: api, stage: v1, authorization: AWS_IAM, apiKeyRequired: true}",
    );
    assert_ne!(protected, base());
    let all =
        |p: &[(String, bool)], want: (&str, bool)| !p.is_empty() && p.iter().all(|(a, k)| (a.as_str(), *k) == want);
    let mut d = start(&f, "protect", 1, |_| {});
    d.until("ready", |s| all_ready(s, 1)).await;
    put(&d.dir.join("base.yaml"), &protected);
    d.until("protected and ready", |s| all_ready(s, 1) && all(&protections(&f), ("AWS_IAM", true))).await;

    // The defaults are dropped: every method of l0 would be open to anyone. Held.
    put(&d.dir.join("base.yaml"), &base());
    let s = d.until("the guard holds", |s| s.protection.blocked).await;
    assert!(
        s.protection
            .changes
            .contains(&"ANY /s0: authorization AWS_IAM -> NONE, API key no longer required".to_string()),
        "{:?}",
        s.protection
    );
    assert!(s.protection.message.as_deref().unwrap_or_default().contains("--allow-weakening"));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(all(&protections(&f), ("AWS_IAM", true)), "nothing was opened: {:?}", protections(&f));
    assert!(d.metrics.encode().contains("crosslink_protection_blocked 1"));

    // The YAML fixed: the guard lets go, nothing to do.
    put(&d.dir.join("base.yaml"), &protected);
    d.until("guard released", |s| !s.protection.blocked && all_ready(s, 1)).await;
    assert!(d.metrics.encode().contains("crosslink_protection_blocked 0"));
    d.stop().await;

    // Allowed: the same weakening goes through.
    let mut d = start(&f, "protect-allowed", 1, |o| o.allow_weakening = true);
    d.until("opened", |s| all_ready(s, 1) && all(&protections(&f), ("NONE", false))).await;
    assert!(!d.status.borrow().protection.blocked);
    d.stop().await;
}

/// The protection guard with two replicas (units: `edge` and `edge2`): both run `protected`
/// until `is_protected` holds, then `weakened`. The replica holding `edge` holds back and reports
/// the weakening (each of `held` among its changes); the other, holding `edge2`, has nothing to
/// hold; nothing is weakened by either.
async fn two_replicas_hold_a_weakening(
    name: &str,
    protected: &str,
    weakened: &str,
    is_protected: impl Fn(&FakeAws) -> bool,
    held: &[&str],
) {
    use crosslink_coord::memory::MemoryEngine;

    let f = world();
    let second = second_gateway(&f);
    let engine = MemoryEngine::new();
    let coord_stop = CancellationToken::new();
    let mut replicas = Vec::new();
    for r in ["p1", "p2"] {
        let ownership = replica(&engine, r, &coord_stop);
        let d = start_daemon(
            &f,
            &format!("{name}-{r}"),
            1,
            |_| {},
            None,
            EngineOptions::default(),
            |d| d.with_ownership(ownership.clone()),
        );
        put(&d.dir.join("second.yaml"), second);
        put(&d.dir.join("base.yaml"), protected);
        replicas.push((r, d));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !is_protected(&f) {
        assert!(tokio::time::Instant::now() < deadline, "{name}: edge never protected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (_, d) in &replicas {
        put(&d.dir.join("base.yaml"), weakened);
    }
    // The replica holding `edge` holds the weakening and the other holds nothing. A unit may be
    // handed over while the replicas settle (leases follow the preferred holder), so this is
    // checked against the holder of the moment, until it holds for both.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let holder = engine.holders().get("edge").cloned().unwrap_or_default();
        let blocked: Vec<(&str, bool)> =
            replicas.iter().map(|(r, d)| (*r, d.status.borrow().protection.blocked)).collect();
        let settled = !holder.is_empty() && blocked.iter().all(|(r, b)| *b == (*r == holder));
        if settled {
            let (_, d) = replicas.iter().find(|(r, _)| *r == holder).expect("a replica holds edge");
            let s = d.status.borrow().clone();
            for h in held {
                assert!(s.protection.changes.iter().any(|c| c.contains(h)), "{name}: {h:?} not in {:?}", s.protection);
            }
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name}: edge is {holder:?}'s, but the replicas holding a weakening are {blocked:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(is_protected(&f), "{name}: something was weakened");
    coord_stop.cancel();
    for (_, d) in replicas {
        d.stop().await;
    }
}

/// Routes: authorization and the API key requirement dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_replicas_the_holder_of_a_weakened_route_holds_it() {
    let protected = base().replace(
        "api: {name: api, stage: v1}",
        "api: {name: api, stage: v1, authorization: AWS_IAM, apiKeyRequired: true}",
    );
    let routes_protected = |f: &FakeAws| {
        f.with_account(GW, |st| {
            let methods: Vec<(String, bool)> = st
                .rest_apis
                .iter()
                .filter(|a| a.name == "api")
                .flat_map(|a| &a.resources)
                .flat_map(|r| r.methods.values())
                .map(|m| (m.authorization_type.clone(), m.api_key_required))
                .collect();
            !methods.is_empty() && methods.iter().all(|(a, k)| a == "AWS_IAM" && *k)
        })
    };
    two_replicas_hold_a_weakening(
        "protect-ha",
        &protected,
        &base(),
        routes_protected,
        &["ANY /s0: authorization AWS_IAM -> NONE"],
    )
    .await;
}

/// The stage's WAF disassociated and the custom domain's mutual TLS turned off and its TLS
/// policy lowered, in one change of the YAML: both held by the holder of the gateway's unit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_replicas_the_holder_holds_a_waf_and_mutual_tls_weakening() {
    const ACL: &str = "arn:aws:wafv2:eu-central-1:111111111111:regional/webacl/edge/0a1b2c3d";
    const CERT: &str = "arn:aws:acm:eu-central-1:111111111111:certificate/c1";
    let with = |extra: &str| {
        base().replace(
            "api: {name: api, stage: v1}",
            &format!("api: {{name: api, stage: v1{extra}, customDomain: {{domainName: api.bank.example, certificateArn: '{CERT}'DOMAIN}}}}"),
        )
    };
    let protected = with(&format!(", webAclArn: '{ACL}'"))
        .replace("DOMAIN", ", mutualTls: {truststoreUri: 's3://bank-truststores/qwac.pem'}");
    let weakened = with("").replace("DOMAIN", ", securityPolicy: TLS_1_0");
    let is_protected = |f: &FakeAws| {
        f.with_account(GW, |st| {
            let waf = st
                .rest_apis
                .iter()
                .filter(|a| a.name == "api")
                .flat_map(|a| &a.stages)
                .any(|s| s.settings.web_acl_arn.as_deref() == Some(ACL));
            let mtls = st.domain_names.iter().any(|d| {
                d.truststore_uri.as_deref() == Some("s3://bank-truststores/qwac.pem")
                    && d.security_policy.as_deref() == Some("TLS_1_2")
            });
            waf && mtls
        })
    };
    two_replicas_hold_a_weakening(
        "protect-ha-tls",
        &protected,
        &weakened,
        is_protected,
        &["web ACL", "disassociated", "mutual TLS turned off", "TLS_1_2 -> TLS_1_0"],
    )
    .await;
}

/// TLS to the backend switched off for a link, in one change of the YAML: the listener back to
/// TCP and its integrations to plain http are held by the holder of the gateway's unit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_replicas_the_holder_holds_backend_tls_switched_off() {
    const CERT: &str = "arn:aws:acm:eu-central-1:111111111111:certificate/b1";
    let with = |tls: &str| {
        base()
            + &format!(
                "---\napiVersion: crosslink.dev/v1alpha1\nkind: Link\nmetadata: {{name: secure}}\nspec:\n  gateway: edge\n  service: {{account: svc, vpcId: vpc-0000000000000000b, routeTableIds: [rtb-0000000000000000b]}}\n  targets: [{{ip: 10.20.1.99, port: 8443}}]\n  listenerPort: 9101\n  routes: [{{path: /secure}}]\n{tls}"
            )
    };
    let protected = with(&format!("  tls: {{certificateArn: '{CERT}', serverName: secure.internal.bank.example}}\n"));
    let is_protected = |f: &FakeAws| {
        f.with_account(GW, |st| {
            let tls_listener = st.listeners.iter().any(|l| l.port == 9101 && l.protocol == "TLS");
            let uris: Vec<String> = st
                .rest_apis
                .iter()
                .filter(|a| a.name == "api")
                .flat_map(|a| &a.resources)
                .filter(|r| r.path.starts_with("/secure"))
                .flat_map(|r| r.methods.values())
                .filter_map(|m| m.integration.as_ref()?.uri.clone())
                .collect();
            tls_listener
                && uris.len() == 2
                && uris.iter().all(|u| u.starts_with("https://secure.internal.bank.example:9101/"))
        })
    };
    two_replicas_hold_a_weakening(
        "protect-ha-backend-tls",
        &protected,
        &with(""),
        is_protected,
        &["listener :9101 of Link/secure: TLS -> TCP", "ANY /secure: backend TLS off (https -> http)"],
    )
    .await;
}

/// Issue 17: the daemon holds the replacement of what a link adopted, as apply does. A hand-made
/// listener on :9002 forwards to a target group of type `instance`; a link adopting it needs a
/// group of its own and the listener's switch to it. The daemon adopts the listener, logs the
/// held replacement with the flag that allows it, and leaves the traffic on the old group; run
/// with allow_replacement, it switches.
#[tokio::test]
async fn the_daemon_holds_the_replacement_of_an_adopted_target_group_until_allowed() {
    use crosslink_plan::kinds::target_group::HealthCheckSettings;
    use crosslink_plan::kinds::{ListenerOp, TargetGroupOp};
    use crosslink_plan::op::{Op, Ref};

    let f = world();
    let log = Log::default();
    let mut d = start_logged(&f, "replace", 1, |_| {}, Some(&log), EngineOptions::default());
    d.until("ready", |s| all_ready(s, 1)).await;
    let lb = match f.observe_account(GW) {
        crosslink_plan::observed::AccountObservation::Ok(s) => s.load_balancers[0].arn.clone(),
        _ => panic!("observe"),
    };
    let hc = HealthCheckSettings {
        protocol: "TCP".into(),
        path: None,
        port: "traffic-port".into(),
        interval_seconds: 30,
        healthy_threshold: 3,
        unhealthy_threshold: 3,
    };
    let create = TargetGroupOp::CreateTargetGroup {
        name: "legacy-instances".into(),
        vpc_id: "vpc-0000000000000000a".into(),
        port: 8080,
        health_check: hc,
        tags: Default::default(),
    };
    let old = f.apply(GW, &Op::TargetGroup(create)).unwrap().created.unwrap();
    f.with_account(GW, |st| {
        st.target_groups.iter_mut().find(|t| t.arn == old).unwrap().target_type = "instance".into()
    });
    let listener = ListenerOp::CreateListener {
        load_balancer_arn: Ref::Known(lb),
        port: 9002,
        target_group_arn: Ref::Known(old.clone()),
        tls: None,
        tags: Default::default(),
    };
    let listener = f.apply(GW, &Op::Listener(listener)).unwrap().created.unwrap();
    let forwards = |f: &FakeAws| match f.observe_account(GW) {
        crosslink_plan::observed::AccountObservation::Ok(s) => {
            let l = s.listeners.iter().find(|l| l.arn == listener).unwrap().clone();
            (l.target_group_arn.unwrap(), l.tags.get("crosslink.dev/owner").cloned())
        }
        _ => panic!("observe"),
    };
    let legacy = links(2).replace("listenerPort: 9002\n", "listenerPort: 9002\n  adoption: Adopt\n");
    put(&d.dir.join("links.yaml"), &legacy);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !log.text().contains("--allow-replacement") {
        assert!(std::time::Instant::now() < deadline, "no held replacement logged:\n{}", log.text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(forwards(&f), (old.clone(), Some("Link/l1".to_string())), "adopted, still on the old group");
    d.stop().await;

    let mut d = start(&f, "replace-allowed", 2, |o| o.allow_replacement = true);
    put(&d.dir.join("links.yaml"), &legacy);
    d.until("switched", |s| all_ready(s, 2)).await;
    assert_ne!(forwards(&f).0, old);
    d.stop().await;
}

/// Issue 15: a privateLink link in the daemon: Ready (healthy over its endpoint), its transport and
/// live ids (endpoint, its state, endpoint service, service-side NLB) in `/status`, its transport
/// in the metrics, and a security group opened by hand repaired as drift.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_link_link_shows_its_transport_and_ids_and_is_repaired() {
    let f = world();
    let mut d = start(&f, "private-link", 0, |_| {});
    let link = "apiVersion: crosslink.dev/v1alpha1\nkind: Link\nmetadata: {name: fraud}\nspec:\n  gateway: edge\n  service: {account: svc, vpcId: vpc-0000000000000000b}\n  targets: [{ip: 10.20.1.31, port: 8443}]\n  listenerPort: 9005\n  routes: [{path: /fraud-checks}]\n  transport: {privateLink: {loadBalancer: {name: fraud-scoring}, subnetIds: [subnet-0000000000000001a]}}\n";
    write(&d.dir, &base(), link);
    let s = d.until("the privateLink link ready", |s| all_ready(s, 1)).await;
    let l = &s.links[0];
    assert_eq!(l.transport.as_deref(), Some("privateLink"));
    for key in
        ["endpoint", "endpointService", "endpointSecurityGroup", "serviceLoadBalancer", "targetGroup", "listener"]
    {
        assert!(l.resources.contains_key(key), "{key} missing: {:?}", l.resources);
    }
    assert_eq!(l.resources["endpointState"], "available");
    assert!(!l.resources.contains_key("peering"), "{:?}", l.resources);
    assert!(l.health.as_ref().is_some_and(|h| h.healthy), "{:?}", l.health);
    let text = d.metrics.encode();
    assert!(text.contains("crosslink_link_transport{link=\"fraud\",transport=\"privateLink\"} 1"), "{text}");
    assert!(text.contains("resource=\"endpoint_service\""), "{text}");

    // The endpoint's security group opened to the world by hand: revoked on the next resync.
    f.with_account(GW, |st| {
        st.security_groups[0].ingress.push(crosslink_plan::observed::IngressRule {
            protocol: "-1".into(),
            from_port: -1,
            to_port: -1,
            cidr: "0.0.0.0/0".parse().unwrap(),
        })
    });
    let open = |f: &FakeAws| f.with_account(GW, |st| st.security_groups[0].ingress.len() > 1);
    d.until("the rule revoked", |_| !open(&f)).await;
    let text = d.metrics.encode();
    assert!(text.contains("crosslink_drift_repairs_total{resource=\"security_group\"} 1"), "{text}");
    d.stop().await;
}
