//! `cargo xtask bench` (issue 7): crosslink's cost at N = 10, 100 and 1,000 links against moto on
//! loopback. For each N it seeds the scenario's VPCs, then runs the release binary as a user
//! would, behind the testkit proxy, which counts every AWS call independently of crosslink:
//! converge from empty (`apply`), a steady-state pass (`apply` again: no writes), drift repair
//! (routes deleted and targets deregistered out of band, one `apply`), and the daemon
//! (`crosslink run`) for its peak RSS after a full pass and a cross-check of its
//! `crosslink_aws_requests_total` against the proxy. Then one converge with the AWS rate limits
//! on, against the floor those limits imply. CPU time and peak RSS come from the kernel
//! (`wait4` rusage, `/proc/<pid>/status`). Prints a table and writes `target/bench/results.json`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_elasticloadbalancingv2::types::TargetDescription;
use crosslink_aws::ratelimit::Bucket;
use crosslink_aws::{AwsCloud, Connector, bucket_for, seed_network};
use crosslink_desired::DesiredState;
use crosslink_testkit::{ACCESS_KEY, Call, Moto, Proxy, REGION, SECRET_KEY};
use serde::Serialize;

use crate::bench_report::{self, Report};
use crate::bench_scenario::{ReadBound, Scenario, Seeded};

/// How many change events the events phase sends, one route deleted for each (issue 16).
const EVENTS: usize = 20;

/// How many routes and target registrations the drift phase removes (issue 7).
const DRIFT: usize = 10;

pub struct Options {
    pub links: Vec<usize>,
    /// N of the converge with the AWS rate limits on; None to skip it.
    pub limits_on: Option<usize>,
    pub build: bool,
    /// Where results.json and results.md go.
    pub out: PathBuf,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options> {
        let mut o =
            Options { links: vec![10, 100, 1000], limits_on: Some(100), build: true, out: root().join("target/bench") };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--links" => {
                    let v = it.next().context("--links needs a list, e.g. 10,100,1000, or `none`")?;
                    o.links = if v == "none" {
                        Vec::new()
                    } else {
                        v.split(',').map(|n| n.trim().parse()).collect::<Result<_, _>>()?
                    };
                }
                "--limits-on" => {
                    let v = it.next().context("--limits-on needs N, or `off`")?;
                    o.limits_on = if v == "off" { None } else { Some(v.parse()?) };
                }
                "--no-build" => o.build = false,
                "--out" => o.out = root().join(it.next().context("--out needs a directory")?),
                other => bail!("unknown bench argument `{other}`"),
            }
        }
        Ok(o)
    }
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

/// Calls of one phase, as the proxy saw them.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CallStats {
    pub total: usize,
    pub reads: usize,
    pub writes: usize,
    /// `service:Operation` -> count (SigV4 service names).
    pub by_operation: BTreeMap<String, usize>,
    /// Calls that did not answer 2xx.
    pub failed: usize,
}

impl CallStats {
    pub fn of(calls: &[Call]) -> CallStats {
        let mut s = CallStats { total: calls.len(), ..CallStats::default() };
        for c in calls {
            if c.is_read() {
                s.reads += 1;
            } else {
                s.writes += 1;
            }
            if !(200..300).contains(&c.status) {
                s.failed += 1;
            }
            *s.by_operation.entry(format!("{}:{}", c.service, c.operation)).or_default() += 1;
        }
        s
    }
}

/// One run of the crosslink binary.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Phase {
    pub name: String,
    pub exit_code: i32,
    pub wall_s: f64,
    pub user_s: f64,
    pub sys_s: f64,
    /// VmHWM, sampled every 10 ms.
    pub max_rss_kib: u64,
    pub calls: CallStats,
    /// From `apply`'s summary.
    pub converged: Option<bool>,
    pub rounds: Option<u64>,
    pub actions: Option<usize>,
    /// CreateDeployment per REST API: most in one apply, and most in one round of one apply.
    pub deployments_per_api: usize,
    pub deployments_per_api_per_round: usize,
}

impl Phase {
    pub fn cpu_s(&self) -> f64 {
        self.user_s + self.sys_s
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Daemon {
    /// From start to `/readyz` answering 200 (desired state loaded, first full pass done).
    pub ready_s: f64,
    /// utime + stime at that moment.
    pub cpu_at_ready_s: f64,
    /// VmHWM and VmRSS after the first full pass over the converged scenario.
    pub vm_hwm_kib: u64,
    pub vm_rss_kib: u64,
    /// VmRSS split: anonymous memory (heap, stacks) and file pages (mostly the binary's code).
    pub rss_anon_kib: u64,
    pub rss_file_kib: u64,
    pub calls: CallStats,
    /// `crosslink_aws_requests_total` by `service:Operation` (adapter service names).
    pub metrics: BTreeMap<String, u64>,
    /// The proxy's count by the same keys, AssumeRole left out (the SDK's credential provider
    /// sends it, not the adapter).
    pub proxy: BTreeMap<String, u64>,
    pub counts_agree: bool,
    pub exit_code: i32,
    /// VmHWM over the whole run (sampled), SIGTERM included.
    pub max_rss_kib: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Scale {
    pub scenario: Scenario,
    pub resources: BTreeMap<String, usize>,
    pub seed_s: f64,
    pub converge: Phase,
    pub steady: Phase,
    pub steady_read_bound: Option<ReadBound>,
    pub drift_routes_deleted: usize,
    pub drift_targets_deregistered: usize,
    pub drift: Phase,
    pub daemon: Daemon,
    /// Steady full passes of the daemon with `--target-health-every 1` and with the default.
    pub resyncs: Vec<Resyncs>,
    /// Change events to repair (issue 16).
    pub events: crate::bench_events::Events,
}

/// The daemon's steady full passes (issue 18's cost of reading health), one entry per pass.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Resyncs {
    /// `--target-health-every`.
    pub every: u64,
    pub resync_s: f64,
    /// Per pass, `DescribeTargetHealth` calls (one per target group read).
    pub target_health_reads: Vec<u64>,
    /// Per pass, every AWS call.
    pub calls: Vec<u64>,
    pub exit_code: i32,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Floor {
    pub seconds: f64,
    /// The bucket (and account) that sets it.
    pub binding: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Limited {
    pub scenario: Scenario,
    pub converge: Phase,
    pub steady: Phase,
    /// The least time the documented limits allow for this run's own calls.
    pub floor_run_calls: Floor,
    /// The least time for the writes this converge made plus one observation of every account
    /// (the steady pass's reads): the work itself, without extra observation rounds.
    pub floor_work: Floor,
    /// One link added to the running daemon after the others converged: commit to Ready.
    pub new_link: NewLink,
}

/// `crosslink run --rate-limits aws` on the converged scenario less one link; the link is then
/// committed to the desired-state repository, and the time until `/status` shows it `Ready` is
/// measured, with the AWS calls made meanwhile.
#[derive(Clone, Debug, Default, Serialize)]
pub struct NewLink {
    pub link: String,
    /// The daemon's first full pass (start to `/readyz`).
    pub daemon_ready_s: f64,
    /// From the commit to the link's phase `Ready` in `/status`.
    pub commit_to_ready_s: f64,
    pub calls: CallStats,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub memory_gib: f64,
    pub cpu_model: String,
    pub kernel: String,
    pub load_before: String,
    pub load_after: String,
    pub commit: String,
    pub command: String,
    /// The committer date of HEAD.
    pub commit_date: String,
}

fn read_proc(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn machine(command: &str) -> Machine {
    let mem_kib: f64 = read_proc("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let cpu_model = read_proc("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(root())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let dirty =
        if git(&["status", "--porcelain", "--untracked-files=no"]).is_empty() { "" } else { " (uncommitted changes)" };
    Machine {
        nproc: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        memory_gib: mem_kib / 1024.0 / 1024.0,
        cpu_model,
        kernel: read_proc("/proc/sys/kernel/osrelease").trim().to_string(),
        load_before: read_proc("/proc/loadavg").split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        load_after: String::new(),
        commit: format!("{}{dirty}", git(&["rev-parse", "--short", "HEAD"])),
        command: command.to_string(),
        commit_date: git(&["log", "-1", "--format=%cI"]),
    }
}

/// A finished child: exit code and the kernel's account of its resources.
pub(crate) struct Finished {
    pub(crate) exit_code: i32,
    wall: Duration,
    user: Duration,
    sys: Duration,
    max_rss_kib: u64,
}

/// Waits for `pid` and returns its CPU time from `wait4`'s rusage: exact, and only this child's.
/// Its `ru_maxrss` is not used: exec records the hiwater RSS of the address space it replaces,
/// which for a child spawned by this (much larger) process is this process's, not crosslink's.
fn wait_rusage(pid: i32, started: Instant) -> std::io::Result<Finished> {
    let mut status = 0;
    // SAFETY: rusage is plain data; all-zero is a valid value that wait4 overwrites.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; pid is our own child, which nothing else reaps.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    let exit_code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -libc::WTERMSIG(status) };
    Ok(Finished { exit_code, wall: started.elapsed(), user: tv(ru.ru_utime), sys: tv(ru.ru_stime), max_rss_kib: 0 })
}

/// A crosslink child process, killed if the benchmark fails before it is waited for.
pub(crate) struct Child {
    pid: i32,
    started: Instant,
    stdout: Option<std::thread::JoinHandle<String>>,
    /// The child's VmHWM (its own address space's peak RSS), sampled every `SAMPLE` until it
    /// exits; the last growth before exit may be missed by one interval.
    hwm: Option<std::thread::JoinHandle<u64>>,
    waited: bool,
}

const SAMPLE: Duration = Duration::from_millis(10);

/// `CROSSLINK_BENCH_WRAP="perf record -g -o /tmp/{phase}.perf --"` runs every crosslink command
/// under that wrapper (`{phase}`: converge, steady, drift, daemon), to profile it; the measured
/// CPU and memory are then the wrapper's plus crosslink's, so such runs are for diagnosis only.
/// `CROSSLINK_BENCH_WRAP_ONLY=steady,daemon` wraps only those phases.
const WRAP: &str = "CROSSLINK_BENCH_WRAP";
const WRAP_ONLY: &str = "CROSSLINK_BENCH_WRAP_ONLY";

impl Child {
    fn spawn(bin: &Path, args: &[&str], proxy: &Proxy, log: &Path) -> Result<Child> {
        let log_file = std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let phase = log.file_stem().and_then(|s| s.to_str()).unwrap_or("crosslink");
        let only = std::env::var(WRAP_ONLY).unwrap_or_default();
        let wrapped = only.is_empty() || only.split(',').any(|p| p.trim() == phase);
        let wrap: Vec<String> = std::env::var(WRAP)
            .ok()
            .filter(|_| wrapped)
            .unwrap_or_default()
            .split_whitespace()
            .map(|w| w.replace("{phase}", phase))
            .collect();
        let mut cmd = match wrap.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.args(args).envs(proxy.env()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log_file);
        let started = Instant::now();
        let mut child = cmd.spawn().with_context(|| format!("cannot run {}", bin.display()))?;
        let mut out = child.stdout.take().context("stdout")?;
        // Read stdout as it comes, so that a large report never blocks the child on a full pipe.
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let pid = child.id() as i32;
        let hwm = std::thread::spawn(move || {
            let mut peak = 0;
            // VmHWM disappears once the process has released its memory (exit).
            while let Some(kib) = proc_status(pid, "VmHWM:") {
                peak = peak.max(kib);
                std::thread::sleep(SAMPLE);
            }
            peak
        });
        // std's Child neither waits nor kills on drop: wait4 below reaps it.
        Ok(Child { pid, started, stdout: Some(stdout), hwm: Some(hwm), waited: false })
    }

    pub(crate) fn wait(&mut self) -> Result<(Finished, String)> {
        let mut f = wait_rusage(self.pid, self.started)?;
        self.waited = true;
        f.max_rss_kib = self.hwm.take().map(|t| t.join().unwrap_or_default()).unwrap_or_default();
        let out = self.stdout.take().map(|t| t.join().unwrap_or_default()).unwrap_or_default();
        Ok((f, out))
    }

    pub(crate) fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own unreaped child's pid.
        unsafe {
            libc::kill(self.pid, sig);
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.waited {
            self.signal(libc::SIGKILL);
            let _ = wait_rusage(self.pid, self.started);
        }
    }
}

/// A `/proc/<pid>/status` value in KiB (`VmHWM`, `VmRSS`), if the process still has memory.
fn proc_status(pid: i32, key: &str) -> Option<u64> {
    read_proc(&format!("/proc/{pid}/status"))
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn proc_status_kib(pid: i32, key: &str) -> u64 {
    proc_status(pid, key).unwrap_or(0)
}

/// utime + stime of a running process, from `/proc/<pid>/stat`.
fn proc_cpu(pid: i32) -> f64 {
    let stat = read_proc(&format!("/proc/{pid}/stat"));
    // Fields after the command name (which may hold spaces): state is the first, utime the 12th.
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (ticks(11) + ticks(12)) / hz
}

/// Runs `crosslink <args>` to completion behind the proxy and measures it; the phase and the
/// calls the proxy saw.
async fn run_phase(name: &str, bin: &Path, args: &[&str], proxy: &Proxy, dir: &Path) -> Result<(Phase, Vec<Call>)> {
    proxy.reset();
    let log = dir.join(format!("{name}.log"));
    let bin = bin.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let mut child = {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        Child::spawn(&bin, &a, proxy, &log)?
    };
    let (f, stdout) = tokio::task::spawn_blocking(move || child.wait()).await??;
    let calls = proxy.take_calls();
    std::fs::write(dir.join(format!("{name}.out")), &stdout)?;
    write_calls(&dir.join(format!("{name}.calls.tsv")), &calls)?;
    let (converged, rounds, actions) = summary(&stdout);
    let (deployments_per_api, deployments_per_api_per_round) = deployments(&calls);
    let phase = Phase {
        name: name.to_string(),
        exit_code: f.exit_code,
        wall_s: f.wall.as_secs_f64(),
        user_s: f.user.as_secs_f64(),
        sys_s: f.sys.as_secs_f64(),
        max_rss_kib: f.max_rss_kib,
        calls: CallStats::of(&calls),
        converged: converged.map(|c| c && f.exit_code == 0),
        rounds,
        actions,
        deployments_per_api,
        deployments_per_api_per_round,
    };
    Ok((phase, calls))
}

/// Every call of a phase, one line each, for a closer look (timelines, per-account counts).
fn write_calls(path: &Path, calls: &[Call]) -> Result<()> {
    let mut out = String::from("at_ms\tms\taccount\tservice\toperation\tstatus\tpath\n");
    let mut sorted: Vec<&Call> = calls.iter().collect();
    sorted.sort_by_key(|c| c.at_micros);
    for c in sorted {
        let _ = writeln!(
            out,
            "{:.1}\t{:.1}\t{}\t{}\t{}\t{}\t{}",
            c.at_micros as f64 / 1000.0,
            c.micros as f64 / 1000.0,
            c.account,
            c.service,
            c.operation,
            c.status,
            c.path
        );
    }
    std::fs::write(path, out)?;
    Ok(())
}

/// `apply`'s last line, "In sync in 3 rounds: 120 changes made, 0 failed": (converged, rounds,
/// changes made). The text, because `apply -o json` cannot serialize its report (see
/// docs/benchmarks.md).
fn summary(stdout: &str) -> (Option<bool>, Option<u64>, Option<usize>) {
    let Some(line) = stdout.lines().rev().find(|l| l.contains(" round")) else { return (None, None, None) };
    let words: Vec<&str> = line.split_whitespace().collect();
    let before = |word: &str| {
        words
            .iter()
            .position(|w| w.starts_with(word))
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| words[i].parse().ok())
    };
    (Some(line.starts_with("In sync")), before("round"), before("change").map(|n: u64| n as usize))
}

/// CreateDeployment calls per REST API: the most for one API, and the most for one API within
/// one round (a round of an account starts with its GetRestApis).
fn deployments(calls: &[Call]) -> (usize, usize) {
    let mut sorted: Vec<&Call> = calls.iter().collect();
    sorted.sort_by_key(|c| c.at_micros);
    let mut round_of_account: HashMap<&str, usize> = HashMap::new();
    let mut per_api: HashMap<String, usize> = HashMap::new();
    let mut per_api_round: HashMap<(String, usize), usize> = HashMap::new();
    for c in sorted {
        if c.operation == "GetRestApis" {
            *round_of_account.entry(&c.account).or_default() += 1;
        }
        if c.operation == "CreateDeployment" {
            let api = c.path.split('/').nth(2).unwrap_or_default().to_string();
            let round = round_of_account.get(c.account.as_str()).copied().unwrap_or(0);
            *per_api.entry(api.clone()).or_default() += 1;
            *per_api_round.entry((api, round)).or_default() += 1;
        }
    }
    (per_api.values().copied().max().unwrap_or(0), per_api_round.values().copied().max().unwrap_or(0))
}

/// The seeded VPCs: one per gateway (two subnets) and one per service account (one subnet),
/// created directly in moto (not through the proxy), eight at a time.
async fn seed(moto: &Moto, scenario: &Scenario, accounts: &DesiredState) -> Result<Seeded> {
    let cloud = AwsCloud::new(Connector::static_credentials(&moto.endpoint, REGION, ACCESS_KEY, SECRET_KEY).await)
        .with_rate_limits(crosslink_aws::RateLimits::off());
    let cloud = &cloud;
    let session = |name: String| async move {
        let account = accounts.account(&name).with_context(|| format!("account {name}"))?;
        cloud.session(account).await.map_err(|e| anyhow::anyhow!("session of {name}: {e}"))
    };
    use futures::StreamExt;
    let gateways: Vec<_> = futures::stream::iter(0..scenario.gateways)
        .map(|g| async move {
            let s = session(Scenario::gateway_account_name(scenario.gateway_account_of(g))).await?;
            let v = seed_network(&s, &Scenario::gateway_name(g), Scenario::gateway_cidr(g), 2)
                .await
                .map_err(|e| anyhow::anyhow!("seeding gateway {g}: {e}"))?;
            Ok::<_, anyhow::Error>((v.vpc_id, v.subnet_ids, v.route_table_id))
        })
        .buffered(8)
        .collect()
        .await;
    let services: Vec<_> = futures::stream::iter(0..scenario.service_accounts)
        .map(|s| async move {
            let name = Scenario::service_account_name(s);
            let session = session(name.clone()).await?;
            let v = seed_network(&session, &name, Scenario::service_cidr(s), 1)
                .await
                .map_err(|e| anyhow::anyhow!("seeding service account {s}: {e}"))?;
            Ok::<_, anyhow::Error>((v.vpc_id, v.route_table_id))
        })
        .buffered(8)
        .collect()
        .await;
    Ok(Seeded {
        gateways: gateways.into_iter().collect::<Result<_>>()?,
        services: services.into_iter().collect::<Result<_>>()?,
    })
}

/// Drift made out of band, directly in moto: `DRIFT` routes deleted (gateway side first, spread
/// over the peerings) and one target deregistered from each of `DRIFT` links (spread over the
/// links). Returns how many of each (small scenarios have fewer than `DRIFT` routes).
async fn drift(moto: &Moto, scenario: &Scenario, seeded: &Seeded, desired: &DesiredState) -> Result<(usize, usize)> {
    let cloud = AwsCloud::new(Connector::static_credentials(&moto.endpoint, REGION, ACCESS_KEY, SECRET_KEY).await)
        .with_rate_limits(crosslink_aws::RateLimits::off());
    let session = |name: String| {
        let cloud = &cloud;
        async move {
            let account = desired.account(&name).with_context(|| format!("account {name}"))?;
            cloud.session(account).await.map_err(|e| anyhow::anyhow!("session of {name}: {e}"))
        }
    };
    // (account, route table, destination)
    let pairs = scenario.pairs();
    let spread = |len: usize, k: usize| (0..k.min(len)).map(move |i| i * len / k.min(len).max(1));
    let mut routes: Vec<(String, String, String)> = spread(pairs.len(), DRIFT)
        .map(|i| {
            let (g, s) = pairs[i];
            (
                Scenario::gateway_account_name(scenario.gateway_account_of(g)),
                seeded.gateways[g].2.clone(),
                Scenario::service_cidr(s).to_string(),
            )
        })
        .collect();
    for &(g, s) in pairs.iter().take(DRIFT.saturating_sub(routes.len())) {
        routes.push((
            Scenario::service_account_name(s),
            seeded.services[s].1.clone(),
            Scenario::gateway_cidr(g).to_string(),
        ));
    }
    for (account, rtb, destination) in &routes {
        let ec2 = aws_sdk_ec2::Client::new(&session(account.clone()).await?.config);
        ec2.delete_route()
            .route_table_id(rtb)
            .destination_cidr_block(destination)
            .send()
            .await
            .with_context(|| format!("deleting the route to {destination} from {rtb}"))?;
    }

    let links = scenario.links();
    let chosen: Vec<&crate::bench_scenario::LinkSpec> = spread(links.len(), DRIFT).map(|i| &links[i]).collect();
    let mut groups: HashMap<String, String> = HashMap::new(); // owner tag -> target group ARN
    let accounts: std::collections::BTreeSet<usize> =
        chosen.iter().map(|l| scenario.gateway_account_of(l.gateway)).collect();
    for a in accounts {
        let elb =
            aws_sdk_elasticloadbalancingv2::Client::new(&session(Scenario::gateway_account_name(a)).await?.config);
        let mut arns = Vec::new();
        let mut marker = None;
        loop {
            let page = elb.describe_target_groups().page_size(400).set_marker(marker).send().await?;
            arns.extend(page.target_groups().iter().filter_map(|t| t.target_group_arn()).map(str::to_string));
            marker = page.next_marker().map(str::to_string);
            if marker.is_none() {
                break;
            }
        }
        for batch in arns.chunks(20) {
            let tags = elb.describe_tags().set_resource_arns(Some(batch.to_vec())).send().await?;
            for d in tags.tag_descriptions() {
                let owner =
                    d.tags().iter().find(|t| t.key() == Some(crosslink_plan::tags::OWNER)).and_then(|t| t.value());
                if let (Some(owner), Some(arn)) = (owner, d.resource_arn()) {
                    groups.insert(owner.to_string(), arn.to_string());
                }
            }
        }
    }
    for l in &chosen {
        let arn = groups
            .get(&crosslink_plan::tags::link_owner(&l.name))
            .with_context(|| format!("no target group of {}", l.name))?;
        let account = Scenario::gateway_account_name(scenario.gateway_account_of(l.gateway));
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&session(account).await?.config);
        let target = TargetDescription::builder().id(&l.targets[0]).port(8080).build();
        elb.deregister_targets().target_group_arn(arn).targets(target).send().await?;
    }
    Ok((routes.len(), chosen.len()))
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

/// GET over a fresh connection; (status, body).
pub(crate) fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let r = crosslink_testkit::http::get(&format!("http://{addr}{path}")).map_err(anyhow::Error::msg)?;
    Ok((r.status, r.body))
}

/// `crosslink_aws_requests_total` summed over outcomes, by `service:operation`.
pub fn parse_requests(metrics: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in metrics.lines().filter(|l| l.starts_with("crosslink_aws_requests_total{")) {
        let label = |name: &str| {
            let start = line.find(&format!("{name}=\""))? + name.len() + 2;
            let len = line[start..].find('"')?;
            Some(line[start..start + len].to_string())
        };
        let value: u64 = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) as u64;
        if let (Some(service), Some(op)) = (label("service"), label("operation")) {
            *out.entry(format!("{service}:{op}")).or_default() += value;
        }
    }
    out
}

fn adapter_counts(calls: &[Call]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for c in calls.iter().filter(|c| c.operation != "AssumeRole") {
        *out.entry(format!("{}:{}", c.adapter_service(), c.operation)).or_default() += 1;
    }
    out
}

/// `crosslink run` on the scenario's desired state behind the proxy, alone, with no resync or
/// timed reload during a measurement; logs to `dir/log`. Returns the child and its address.
fn spawn_daemon(bin: &Path, dir: &Path, proxy: &Proxy, rate_limits: &str, log: &str) -> Result<(Child, SocketAddr)> {
    spawn_daemon_with(bin, dir, proxy, rate_limits, log, "1h", &[])
}

/// `spawn_daemon` with a resync interval and more flags.
pub(crate) fn spawn_daemon_with(
    bin: &Path,
    dir: &Path,
    proxy: &Proxy,
    rate_limits: &str,
    log: &str,
    resync: &str,
    extra: &[&str],
) -> Result<(Child, SocketAddr)> {
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let addr: SocketAddr = listen.parse()?;
    let desired = dir.join("desired");
    let args = [
        "run",
        "--rate-limits",
        rate_limits,
        "--listen",
        &listen,
        "--resync",
        resync,
        "--reload-interval",
        "1h",
        "--coordination",
        "none",
    ];
    let mut args: Vec<&str> = args.to_vec();
    args.extend_from_slice(extra);
    args.push(desired.to_str().context("utf-8 path")?);
    Ok((Child::spawn(bin, &args, proxy, &dir.join(log))?, addr))
}

/// Passes ended (`crosslink_reconcile_duration_seconds_count`) and AWS requests by
/// `service:Operation`, from one `/metrics` scrape.
fn passes_and_requests(text: &str) -> (u64, BTreeMap<String, u64>) {
    let passes = text
        .lines()
        .find_map(|l| l.strip_prefix("crosslink_reconcile_duration_seconds_count "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0) as u64;
    (passes, parse_requests(text))
}

/// The daemon's steady full passes on the converged scenario (issue 18): `--resync` every
/// `resync` with `--target-health-every every`, limits off. Once ready, `passes` full passes are
/// measured one by one from `/metrics`, each from the end of the one before (a scrape every
/// 20 ms; `resync` is longer than a pass, so a pass has ended well before the next begins). No
/// desired-state change happens meanwhile, so every pass is a full one.
async fn resyncs(
    bin: &Path,
    dir: &Path,
    proxy: &Proxy,
    every: u64,
    resync: Duration,
    passes: usize,
) -> Result<Resyncs> {
    let log = format!("resync-every-{every}.daemon.log");
    let resync_arg = format!("{}ms", resync.as_millis());
    let every_arg = every.to_string();
    let (mut child, addr) =
        spawn_daemon_with(bin, dir, proxy, "off", &log, &resync_arg, &["--target-health-every", &every_arg])?;
    let scrape = async move || -> Result<(u64, BTreeMap<String, u64>)> {
        let (_, text) = tokio::task::spawn_blocking(move || http_get(addr, "/metrics")).await??;
        Ok(passes_and_requests(&text))
    };
    let deadline = Instant::now() + Duration::from_secs(3600);
    // From the end of the first pass (the start-up one, which reads everything).
    let mut last = loop {
        if let Ok(m) = scrape().await
            && m.0 >= 1
        {
            break m;
        }
        if Instant::now() > deadline {
            bail!("the daemon did not finish a pass; see {}", dir.join(&log).display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut r = Resyncs { every, resync_s: resync.as_secs_f64(), ..Resyncs::default() };
    while r.calls.len() < passes {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if Instant::now() > deadline {
            bail!("the daemon's resyncs stalled; see {}", dir.join(&log).display());
        }
        let Ok(now) = scrape().await else { continue };
        if now.0 == last.0 {
            continue;
        }
        if now.0 > last.0 + 1 {
            bail!("two passes ended between scrapes 20 ms apart; see {}", dir.join(&log).display());
        }
        let delta = |k: &str| now.1.get(k).copied().unwrap_or(0) - last.1.get(k).copied().unwrap_or(0);
        r.target_health_reads.push(delta("elbv2:DescribeTargetHealth"));
        r.calls.push(now.1.keys().map(|k| delta(k)).sum());
        last = now;
    }
    child.signal(libc::SIGTERM);
    let (f, _) = tokio::task::spawn_blocking(move || child.wait()).await??;
    r.exit_code = f.exit_code;
    Ok(r)
}

/// The daemon on the converged scenario: until its first full pass is done (`/readyz`), then
/// its memory, its metrics against the proxy's count, and a SIGTERM.
async fn daemon(bin: &Path, dir: &Path, proxy: &Proxy) -> Result<Daemon> {
    proxy.reset();
    let (mut child, addr) = spawn_daemon(bin, dir, proxy, "off", "daemon.log")?;
    let started = Instant::now();
    let pid = child.pid;
    let ready = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(3600);
        while Instant::now() < deadline {
            if matches!(http_get(addr, "/readyz"), Ok((200, _))) {
                return true;
            }
            if read_proc(&format!("/proc/{pid}/stat")).is_empty() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    })
    .await?;
    if !ready {
        bail!("the daemon did not become ready; see {}", dir.join("daemon.log").display());
    }
    let mut d = Daemon {
        ready_s: started.elapsed().as_secs_f64(),
        cpu_at_ready_s: proc_cpu(pid),
        vm_hwm_kib: proc_status_kib(pid, "VmHWM:"),
        vm_rss_kib: proc_status_kib(pid, "VmRSS:"),
        rss_anon_kib: proc_status_kib(pid, "RssAnon:"),
        rss_file_kib: proc_status_kib(pid, "RssFile:"),
        ..Daemon::default()
    };
    // The pass is over once ready; scrape until two scrapes a moment apart agree, so that no
    // call is still on its way into the counters.
    let mut last = BTreeMap::new();
    for _ in 0..20 {
        let (_, text) = tokio::task::spawn_blocking(move || http_get(addr, "/metrics")).await??;
        let now = parse_requests(&text);
        if now == last && !now.is_empty() {
            break;
        }
        last = now;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let calls = proxy.calls();
    d.metrics = last;
    d.proxy = adapter_counts(&calls);
    d.counts_agree = d.metrics == d.proxy;
    d.calls = CallStats::of(&calls);
    child.signal(libc::SIGTERM);
    let (f, _) = tokio::task::spawn_blocking(move || child.wait()).await??;
    d.exit_code = f.exit_code;
    d.max_rss_kib = f.max_rss_kib;
    Ok(d)
}

/// Makes the desired-state directory a git repository of its own, as a deployment's desired
/// state is. Otherwise its revision would be the HEAD of the enclosing project repository, and
/// every commit made there during a run (other people's work) would look like a new desired
/// state to the daemon and start another full pass.
fn commit_desired(dir: &Path) -> Result<()> {
    let git = |args: &[&str]| -> Result<()> {
        let out = Command::new("git")
            .args(["-c", "user.name=crosslink bench", "-c", "user.email=bench@localhost", "-c", "commit.gpgsign=false"])
            .args(args)
            .current_dir(dir)
            .output()
            .context("cannot run git")?;
        if !out.status.success() {
            bail!("git {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    };
    git(&["init", "-q"])?;
    git(&["add", "-A"])?;
    git(&["commit", "-q", "-m", "benchmark scenario"])
}

/// Fresh moto and proxy, the scenario seeded and written out as YAML.
async fn prepare(n: usize, label: &str) -> Result<(Moto, Proxy, Scenario, Seeded, DesiredState, PathBuf, f64)> {
    let scenario = Scenario::for_links(n);
    let dir = root().join("target/bench").join(label);
    let _ = std::fs::remove_dir_all(&dir);
    let desired_dir = dir.join("desired");
    std::fs::create_dir_all(&desired_dir)?;
    let moto = Moto::try_start().map_err(|e| anyhow::anyhow!(e))?;
    let proxy = Proxy::start(moto.addr);
    let accounts = crosslink_desired::load_str(Path::new("accounts.yaml"), &scenario.accounts_yaml())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let t = Instant::now();
    let seeded = seed(&moto, &scenario, &accounts).await?;
    let seed_s = t.elapsed().as_secs_f64();
    for (file, text) in scenario.yaml(&seeded) {
        std::fs::write(desired_dir.join(file), text)?;
    }
    commit_desired(&desired_dir)?;
    let desired = crosslink_desired::load(std::slice::from_ref(&desired_dir)).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((moto, proxy, scenario, seeded, desired, dir, seed_s))
}

async fn scale(bin: &Path, n: usize) -> Result<Scale> {
    eprintln!("==> N = {n}: seeding");
    let (moto, proxy, scenario, seeded, desired, dir, seed_s) = prepare(n, &n.to_string()).await?;
    eprintln!("    {} ({:.1} s); {}", desired.summary(), seed_s, dir.display());
    let d = dir.join("desired");
    let d = d.to_str().context("utf-8 path")?;
    let apply = ["apply", "--rate-limits", "off", "--timeout", "60m", d];

    eprintln!("==> N = {n}: converge from empty");
    let (converge, _) = run_phase("converge", bin, &apply, &proxy, &dir).await?;
    eprintln!("    {}", bench_report::phase_line(&converge));
    if converge.converged != Some(true) {
        bail!("N = {n}: crosslink apply did not converge (exit {}); see {}", converge.exit_code, dir.display());
    }
    eprintln!("==> N = {n}: steady state");
    let (steady, _) = run_phase("steady", bin, &apply, &proxy, &dir).await?;
    eprintln!("    {}", bench_report::phase_line(&steady));

    eprintln!("==> N = {n}: drift repair");
    let (routes, targets) = drift(&moto, &scenario, &seeded, &desired).await?;
    let (drift, _) = run_phase("drift", bin, &apply, &proxy, &dir).await?;
    eprintln!("    {routes} routes deleted, {targets} targets deregistered; {}", bench_report::phase_line(&drift));

    eprintln!("==> N = {n}: daemon");
    let daemon = daemon(bin, &dir, &proxy).await?;
    eprintln!(
        "    ready in {:.1} s, {:.2} s CPU, VmHWM {:.1} MiB, metrics {} the proxy",
        daemon.ready_s,
        daemon.cpu_at_ready_s,
        daemon.vm_hwm_kib as f64 / 1024.0,
        if daemon.counts_agree { "agree with" } else { "DISAGREE with" }
    );
    // Resync a little slower than the first pass took, so that passes do not run back to back.
    let resync = Duration::from_secs_f64((2.0 * daemon.ready_s).max(1.0));
    let mut resync_runs = Vec::new();
    for every in [1, 3] {
        eprintln!("==> N = {n}: daemon resyncs, --target-health-every {every}");
        let r = resyncs(bin, &dir, &proxy, every, resync, 6).await?;
        eprintln!(
            "    DescribeTargetHealth per pass {:?}, AWS calls per pass {:?} ({} target groups)",
            r.target_health_reads,
            r.calls,
            desired.links.len()
        );
        resync_runs.push(r);
    }
    eprintln!("==> N = {n}: change events through EventBridge and SQS, --resync 1h");
    let events = crate::bench_events::events(bin, &dir, &proxy, &moto, &scenario, &seeded, &desired, EVENTS).await?;
    eprintln!(
        "    {} events: to repair p50 {:.2} s, p95 {:.2} s, max {:.2} s; {} receives idle in {:.0} s; AWS calls per event {:?}",
        events.repair_s.len(),
        events.quantile(0.5),
        events.quantile(0.95),
        events.quantile(1.0),
        events.idle_receives,
        events.idle_s,
        events.calls
    );
    let mut resources = BTreeMap::new();
    resources.insert("peerings".to_string(), scenario.pairs().len());
    resources.insert("routes".to_string(), 2 * scenario.pairs().len());
    resources.insert("targets".to_string(), desired.links.iter().map(|l| l.spec.targets.len()).sum());
    resources.insert("api_routes".to_string(), desired.links.iter().map(|l| l.spec.routes.len()).sum());
    resources.insert("api_resources".to_string(), (0..scenario.gateways).map(|g| scenario.api_resources(g)).sum());
    drop(proxy);
    drop(moto);
    Ok(Scale {
        steady_read_bound: Some(scenario.read_bound()),
        scenario,
        resources,
        seed_s,
        converge,
        steady,
        drift_routes_deleted: routes,
        drift_targets_deregistered: targets,
        drift,
        daemon,
        resyncs: resync_runs,
        events,
    })
}

/// The least time the documented AWS limits allow for `calls`: per account and bucket, the
/// calls beyond the burst at the bucket's rate; the slowest bucket sets the floor. AssumeRole is
/// left out (the SDK's credential provider sends it, outside crosslink's limiter).
pub fn floor(calls: &[(String, String, String)]) -> Floor {
    let mut per: BTreeMap<(String, Bucket), usize> = BTreeMap::new();
    for (account, service, op) in calls {
        if op == "AssumeRole" {
            continue;
        }
        for b in bucket_for(service, op) {
            *per.entry((account.clone(), b)).or_default() += 1;
        }
    }
    let mut best = Floor::default();
    for ((account, bucket), n) in per {
        let rate = bucket.aws_default();
        let t = n.saturating_sub(rate.burst as usize) as f64 / rate.per_second;
        if t > best.seconds {
            best = Floor { seconds: t, binding: format!("{bucket} in {account}: {n} calls at {rate}") };
        }
    }
    best
}

fn keyed(calls: &[Call]) -> Vec<(String, String, String)> {
    calls.iter().map(|c| (c.account.clone(), c.adapter_service().to_string(), c.operation.clone())).collect()
}

/// Takes the last link document out of the last gateway's file (and commits that): the link the
/// new-link measurement adds. Returns the file, the document and the link's name.
fn withhold_last_link(desired: &Path, scenario: &Scenario) -> Result<(PathBuf, String, String)> {
    let file = desired.join(format!("{}.yaml", Scenario::gateway_name(scenario.gateways - 1)));
    let text = std::fs::read_to_string(&file)?;
    let cut = text.rfind("---\napiVersion: crosslink.dev/v1alpha1\nkind: Link\n").context("a link document")?;
    let doc = text[cut..].to_string();
    let name = doc
        .lines()
        .find_map(|l| l.strip_prefix("metadata: {name: ").and_then(|r| r.strip_suffix('}')))
        .context("the link's name")?
        .to_string();
    std::fs::write(&file, &text[..cut])?;
    git_commit(desired, "all links but one")?;
    Ok((file, doc, name))
}

fn git_commit(dir: &Path, message: &str) -> Result<()> {
    let out = Command::new("git")
        .args(["-c", "user.name=crosslink bench", "-c", "user.email=bench@localhost", "-c", "commit.gpgsign=false"])
        .args(["commit", "-q", "-a", "-m", message])
        .current_dir(dir)
        .output()
        .context("cannot run git")?;
    if !out.status.success() {
        bail!("git commit: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// Whether an HTTP answer (body, status) is the one awaited.
type Answer = dyn Fn(&str, u16) -> bool + Send;

/// The daemon (limits on) on the converged scenario; once ready, one link is committed and the
/// time until `/status` shows it Ready is measured.
async fn add_link(bin: &Path, dir: &Path, proxy: &Proxy, file: &Path, doc: &str, link: &str) -> Result<NewLink> {
    let desired = dir.join("desired");
    let (mut child, addr) = spawn_daemon(bin, dir, proxy, "aws", "new-link.daemon.log")?;
    let started = Instant::now();
    let poll = |what: &'static str, cond: Box<Answer>| {
        tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + Duration::from_secs(3600);
            while Instant::now() < deadline {
                let path = if what == "ready" { "/readyz" } else { "/status" };
                if let Ok((code, body)) = http_get(addr, path)
                    && cond(&body, code)
                {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            false
        })
    };
    if !poll("ready", Box::new(|_, code| code == 200)).await? {
        bail!("the daemon did not become ready; see {}", dir.join("new-link.daemon.log").display());
    }
    let daemon_ready_s = started.elapsed().as_secs_f64();
    // Let the first pass's follow-ups settle, then add the link.
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.reset();
    let mut text = std::fs::read_to_string(file)?;
    text.push_str(doc);
    std::fs::write(file, text)?;
    git_commit(&desired, &format!("add {link}"))?;
    let t = Instant::now();
    let name = link.to_string();
    let ready = poll(
        "status",
        Box::new(move |body, code| {
            code == 200
                && serde_json::from_str::<serde_json::Value>(body).ok().is_some_and(|v| {
                    v["links"]
                        .as_array()
                        .is_some_and(|ls| ls.iter().any(|l| l["name"] == name.as_str() && l["phase"] == "Ready"))
                })
        }),
    )
    .await?;
    let commit_to_ready_s = t.elapsed().as_secs_f64();
    if !ready {
        bail!("the new link did not become ready; see {}", dir.join("new-link.daemon.log").display());
    }
    let calls = proxy.calls();
    child.signal(libc::SIGTERM);
    let _ = tokio::task::spawn_blocking(move || child.wait()).await?;
    Ok(NewLink { link: link.to_string(), daemon_ready_s, commit_to_ready_s, calls: CallStats::of(&calls) })
}

async fn limited(bin: &Path, n: usize) -> Result<Limited> {
    eprintln!("==> N = {n} with the AWS rate limits on: seeding");
    let label = format!("{n}-limits-on");
    let (moto, proxy, scenario, _, _, dir, _) = prepare(n, &label).await?;
    // The last link waits: it is added to the running daemon once the others converged.
    let (file, withheld, link) = withhold_last_link(&dir.join("desired"), &scenario)?;
    let d = dir.join("desired");
    let d = d.to_str().context("utf-8 path")?;
    let apply = ["apply", "--rate-limits", "aws", "--timeout", "60m", d];
    eprintln!("==> N = {n} with limits: converge from empty");
    let (converge, converge_calls) = run_phase("converge", bin, &apply, &proxy, &dir).await?;
    eprintln!("    {}", bench_report::phase_line(&converge));
    if converge.converged != Some(true) {
        bail!("N = {n} with limits: crosslink apply did not converge; see {}", dir.display());
    }
    eprintln!("==> N = {n} with limits: steady state");
    let (steady, steady_calls) = run_phase("steady", bin, &apply, &proxy, &dir).await?;
    eprintln!("    {}", bench_report::phase_line(&steady));
    let floor_run_calls = floor(&keyed(&converge_calls));
    let work: Vec<Call> =
        converge_calls.iter().filter(|c| !c.is_read()).cloned().chain(steady_calls.iter().cloned()).collect();
    let floor_work = floor(&keyed(&work));
    eprintln!("==> N = {n} with limits: one new link added to the running daemon");
    let new_link = add_link(bin, &dir, &proxy, &file, &withheld, &link).await?;
    eprintln!(
        "    {link}: commit to Ready in {:.2} s, {} calls ({} reads, {} writes); daemon ready in {:.1} s",
        new_link.commit_to_ready_s,
        new_link.calls.total,
        new_link.calls.reads,
        new_link.calls.writes,
        new_link.daemon_ready_s
    );
    drop(proxy);
    drop(moto);
    Ok(Limited { scenario, converge, steady, floor_run_calls, floor_work, new_link })
}

pub async fn bench(args: &[String]) -> Result<()> {
    let opts = Options::parse(args)?;
    let command = format!("cargo xtask bench {}", args.join(" ")).trim().to_string();
    let bin = target_dir().join("release/crosslink");
    if opts.build {
        eprintln!("==> cargo build --release -p crosslink --locked");
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "-p", "crosslink", "--locked"])
            .current_dir(root())
            .status()?;
        if !status.success() {
            bail!("the release build failed");
        }
    }
    if !bin.exists() {
        bail!("{} is missing: run without --no-build", bin.display());
    }
    let mut machine = machine(&command);
    let mut report = Report { machine: machine.clone(), binary: bin.display().to_string(), ..Report::default() };
    for &n in &opts.links {
        report.scales.push(scale(&bin, n).await?);
    }
    if let Some(n) = opts.limits_on {
        report.limited = Some(limited(&bin, n).await?);
    }
    machine.load_after = read_proc("/proc/loadavg").split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    report.machine = machine;
    report.targets = bench_report::targets(&report);
    let out = &opts.out;
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("results.json"), serde_json::to_string_pretty(&report)?)?;
    let text = bench_report::render(&report);
    std::fs::write(out.join("results.md"), &text)?;
    println!("{text}");
    eprintln!("==> wrote {} and results.md", out.join("results.json").display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(account: &str, service: &str, operation: &str, path: &str, at: u64) -> Call {
        Call {
            service: service.into(),
            operation: operation.into(),
            region: REGION.into(),
            access_key: "k".into(),
            account: account.into(),
            method: "POST".into(),
            path: path.into(),
            status: 200,
            fault: None,
            micros: 1,
            at_micros: at,
            unix_micros: at,
            body: String::new(),
        }
    }

    #[test]
    fn requests_are_summed_over_outcomes() {
        let text = "# HELP crosslink_aws_requests AWS API requests\n\
            crosslink_aws_requests_total{service=\"ec2\",operation=\"DescribeVpcs\",outcome=\"ok\"} 3\n\
            crosslink_aws_requests_total{service=\"ec2\",operation=\"DescribeVpcs\",outcome=\"throttled\"} 2\n\
            crosslink_aws_requests_total{service=\"elbv2\",operation=\"DescribeTags\",outcome=\"ok\"} 1\n\
            crosslink_aws_request_duration_seconds_count{service=\"ec2\",operation=\"DescribeVpcs\"} 5\n";
        let m = parse_requests(text);
        assert_eq!(m.len(), 2);
        assert_eq!((m["ec2:DescribeVpcs"], m["elbv2:DescribeTags"]), (5, 1));
    }

    #[test]
    fn passes_are_read_from_the_reconcile_histogram() {
        let text = "crosslink_reconcile_duration_seconds_sum 1.5\n\
            crosslink_reconcile_duration_seconds_count 4\n\
            crosslink_aws_requests_total{service=\"elbv2\",operation=\"DescribeTargetHealth\",outcome=\"ok\"} 7\n";
        let (passes, requests) = passes_and_requests(text);
        assert_eq!(passes, 4);
        assert_eq!(requests["elbv2:DescribeTargetHealth"], 7);
        assert_eq!(passes_and_requests("").0, 0);
    }

    #[test]
    fn apply_summaries_are_read() {
        assert_eq!(
            summary("  Link/a  in sync\nIn sync in 3 rounds: 120 changes made, 0 failed\n"),
            (Some(true), Some(3), Some(120))
        );
        assert_eq!(summary("Not in sync in 1 round: 1 change made, 2 failed"), (Some(false), Some(1), Some(1)));
        assert_eq!(summary("error: nothing"), (None, None, None));
    }

    #[test]
    fn deployments_are_counted_per_api_and_round() {
        let calls = [
            call("1", "apigateway", "GetRestApis", "/restapis", 1),
            call("1", "apigateway", "CreateDeployment", "/restapis/a/deployments", 2),
            call("1", "apigateway", "CreateDeployment", "/restapis/b/deployments", 3),
            call("1", "apigateway", "GetRestApis", "/restapis", 4),
            call("1", "apigateway", "CreateDeployment", "/restapis/a/deployments", 5),
        ];
        assert_eq!(deployments(&calls), (2, 1));
        let twice = [calls[0].clone(), calls[1].clone(), calls[4].clone()];
        assert_eq!(deployments(&twice), (2, 2));
    }

    #[test]
    fn the_floor_is_the_slowest_bucket() {
        let key = |account: &str, service: &str, op: &str| (account.to_string(), service.to_string(), op.to_string());
        // 42 GetResources at 5 per 2 s beyond a burst of 1: 16.4 s; the 45 API Gateway calls
        // together: 5 beyond the burst of 40 at 10/s, 0.5 s; AssumeRole is not crosslink's.
        let mut calls: Vec<_> = (0..42).map(|_| key("1", "apigateway", "GetResources")).collect();
        calls.extend((0..3).map(|_| key("1", "apigateway", "CreateDeployment")));
        calls.extend((0..500).map(|_| key("1", "sts", "AssumeRole")));
        let f = floor(&calls);
        assert!((f.seconds - 16.4).abs() < 1e-9, "{f:?}");
        assert!(f.binding.starts_with("apigateway:GetResources in 1"), "{f:?}");
        // 2 GetResources: 0.4 s; 3 deployments at 1 per 5 s beyond a burst of 1: 10 s.
        let f = floor(&calls[40..]);
        assert!((f.seconds - 10.0).abs() < 1e-9, "{f:?}");
        assert!(f.binding.starts_with("apigateway:CreateDeployment"), "{f:?}");
        assert_eq!(floor(&[]).seconds, 0.0);
    }
}
