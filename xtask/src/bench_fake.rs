//! `cargo xtask bench --fake` (issue 13, item 8): the engine against the in-memory AWS
//! (`crosslink_cloud::fake::FakeAws`) at 1,000, 10,000 and 100,000 links, to see how its cost
//! grows beyond what moto on this machine can hold. Each N runs in a child process of the xtask
//! binary (`xtask bench-fake-run N`) so that its peak RSS is its own, and is killed when it
//! exceeds its time budget instead of hanging the bench.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use crosslink_cloud::fake::FakeAws;
use crosslink_controller::engine::{ApplyOptions, Engine, EngineOptions, ExecContext};
use crosslink_desired::DesiredState;
use crosslink_plan::Settings;
use serde::{Deserialize, Serialize};

use crate::bench_scenario::{Scenario, Seeded};

/// Planner runs on the converged observation; the median is reported.
const PLANNER_RUNS: usize = 5;

/// What one child measured at one N.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FakeRun {
    pub links: usize,
    pub gateways: usize,
    pub gateway_accounts: usize,
    pub service_accounts: usize,
    pub peerings: usize,
    /// Generating the YAML files, reading, parsing and validating them (`crosslink_desired::load`).
    pub load_s: f64,
    pub converge_wall_s: f64,
    pub converge_cpu_s: f64,
    pub converge_rounds: usize,
    pub converge_calls: usize,
    pub converged: bool,
    /// One pass with nothing to do: observe every account + plan + execute of the empty plan.
    pub steady_wall_s: Option<f64>,
    pub steady_cpu_s: Option<f64>,
    pub steady_observe_s: f64,
    pub steady_plan_s: Option<f64>,
    pub steady_actions: usize,
    /// `crosslink_plan::plan` alone on the converged observation: each run's thread CPU time.
    pub planner_s: Vec<f64>,
    pub peak_rss_mib: f64,
    /// Measured by the planner-only mode (converged without the engine).
    #[serde(default)]
    pub planner_only: bool,
}

impl FakeRun {
    pub fn planner_median_s(&self) -> f64 {
        let mut v = self.planner_s.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    }
}

/// The outcome of one N: measured, or why not.
#[derive(Clone, Debug)]
pub enum Outcome {
    Done(FakeRun),
    NotFinished { links: usize, why: String },
}

fn cpu_now() -> f64 {
    // SAFETY: getrusage writes into the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn thread_cpu_now() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the struct we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

fn vm_hwm_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// The scenario's desired state with ids of our own, and the fake seeded with its VPCs.
/// The whole state is loaded and validated as one (linear in links since validation indexes
/// its lookups; before, the planner-only mode validated each gateway's file on its own).
fn scenario(n: usize) -> Result<(Scenario, DesiredState, FakeAws)> {
    let s = Scenario::for_links(n);
    let fake = FakeAws::new();
    let region = crosslink_testkit::REGION;
    let mut seeded = Seeded::default();
    for g in 0..s.gateways {
        let vpc = format!("vpc-1{g:016x}");
        let subnets = vec![format!("subnet-1{g:015x}a"), format!("subnet-1{g:015x}b")];
        let rtb = format!("rtb-1{g:016x}");
        let account = Scenario::gateway_account_id(s.gateway_account_of(g));
        let subnet_refs: Vec<&str> = subnets.iter().map(String::as_str).collect();
        fake.seed_vpc(&account, region, &vpc, &Scenario::gateway_cidr(g).to_string(), &subnet_refs, &rtb);
        seeded.gateways.push((vpc, subnets, rtb));
    }
    for v in 0..s.service_accounts {
        let vpc = format!("vpc-2{v:016x}");
        let rtb = format!("rtb-2{v:016x}");
        fake.seed_vpc(
            &Scenario::service_account_id(v),
            region,
            &vpc,
            &Scenario::service_cidr(v).to_string(),
            &[],
            &rtb,
        );
        seeded.services.push((vpc, rtb));
    }
    // As a deployment holds it: one file per gateway and its links, the accounts in files of at
    // most 1,000 documents (the loader's limit is 1,024 a file), read from a directory.
    let dir = std::env::temp_dir().join(format!("crosslink-bench-fake-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    for (file, text) in s.yaml(&seeded) {
        if file == "accounts.yaml" {
            let docs: Vec<&str> = text.split("---\n").collect();
            for (i, chunk) in docs.chunks(1000).enumerate() {
                std::fs::write(dir.join(format!("accounts-{i}.yaml")), chunk.join("---\n"))?;
            }
        } else {
            std::fs::write(dir.join(file), text)?;
        }
    }
    let desired = crosslink_desired::load(std::slice::from_ref(&dir)).map_err(|d| anyhow::anyhow!("{d}"));
    let _ = std::fs::remove_dir_all(&dir);
    Ok((s, desired?, fake))
}

/// Converges the fake without the engine: rounds of observe, plan, and every action whose
/// inputs are known and whose dependencies succeeded, in plan order (linear per round).
fn converge_directly(desired: &DesiredState, fake: &FakeAws) -> Result<(usize, usize)> {
    let ids: std::collections::BTreeMap<&str, &str> =
        desired.accounts.iter().map(|a| (a.metadata.name.as_str(), a.spec.account_id.as_str())).collect();
    let mut calls = 0;
    for round in 1..=30 {
        let observed = observe_directly(desired, fake);
        let plan = crosslink_plan::plan(desired, &observed, &Settings::default());
        if plan.in_sync() {
            return Ok((round, calls));
        }
        let mut done = vec![false; plan.actions.len()];
        for a in &plan.actions {
            if a.op.is_ready() && a.deps.iter().all(|d| done[*d]) {
                calls += 1;
                done[a.id] = fake.apply(ids[a.account.as_str()], &a.op).is_ok();
            }
        }
    }
    bail!("not converged in 30 rounds")
}

fn observe_directly(desired: &DesiredState, fake: &FakeAws) -> crosslink_plan::observed::Observed {
    crosslink_plan::observed::Observed {
        accounts: desired
            .accounts
            .iter()
            .map(|a| (a.metadata.name.clone(), fake.observe_account(&a.spec.account_id)))
            .collect(),
    }
}

/// The planner-only mode: converged without the engine, then the
/// planner alone on the converged observation. Only the load, planner and RSS figures are set.
pub fn planner_only(n: usize) -> Result<FakeRun> {
    let t = Instant::now();
    let (s, desired, fake) = scenario(n)?;
    let load_s = t.elapsed().as_secs_f64();
    let (w0, c0) = (Instant::now(), cpu_now());
    let (rounds, calls) = converge_directly(&desired, &fake)?;
    let (converge_wall_s, converge_cpu_s) = (w0.elapsed().as_secs_f64(), cpu_now() - c0);
    let t = Instant::now();
    let observed = observe_directly(&desired, &fake);
    let steady_observe_s = t.elapsed().as_secs_f64();
    let planner_s: Vec<f64> = planner_times(&desired, &observed);
    Ok(FakeRun {
        links: n,
        gateways: s.gateways,
        gateway_accounts: s.gateway_accounts,
        service_accounts: s.service_accounts,
        peerings: s.pairs().len(),
        load_s,
        converge_wall_s,
        converge_cpu_s,
        converge_rounds: rounds,
        converge_calls: calls,
        converged: true,
        steady_wall_s: None,
        steady_cpu_s: None,
        steady_observe_s,
        steady_plan_s: None,
        steady_actions: 0,
        planner_s,
        peak_rss_mib: vm_hwm_mib(),
        planner_only: true,
    })
}

/// Measures one N in this process (the child's work; also what the test runs).
pub async fn run_in_process(n: usize, budget: Duration) -> Result<FakeRun> {
    let t = Instant::now();
    let (s, desired, fake) = scenario(n)?;
    let load_s = t.elapsed().as_secs_f64();
    let peerings = s.pairs().len();
    let engine = Engine::new(Arc::new(fake), EngineOptions::default());

    let (w0, c0) = (Instant::now(), cpu_now());
    let report = engine.apply(&desired, &ApplyOptions { timeout: budget, ..ApplyOptions::default() }).await;
    let (converge_wall_s, converge_cpu_s) = (w0.elapsed().as_secs_f64(), cpu_now() - c0);
    if !report.converged {
        bail!(
            "{n} links did not converge in {} rounds: {} actions remain, {} subjects failed",
            report.rounds,
            report.remaining.actions.len(),
            report.failed.len()
        );
    }

    let (w0, c0) = (Instant::now(), cpu_now());
    let observed = engine.observe(&desired).await;
    let steady_observe_s = w0.elapsed().as_secs_f64();
    let t = Instant::now();
    let plan = crosslink_plan::plan(&desired, &observed, &Settings::default());
    let steady_plan_s = t.elapsed().as_secs_f64();
    let hold = |_: &crosslink_plan::Action| None;
    let executed =
        engine.execute(&desired, &plan, &ExecContext { shards: None, hold: &hold, stop: None, revision: None }).await;
    let (steady_wall_s, steady_cpu_s) = (w0.elapsed().as_secs_f64(), cpu_now() - c0);
    if !plan.in_sync() || !executed.is_empty() {
        bail!("{n} links: the steady pass planned {} actions", plan.actions.len());
    }

    let planner_s = planner_times(&desired, &observed);

    Ok(FakeRun {
        links: n,
        gateways: s.gateways,
        gateway_accounts: s.gateway_accounts,
        service_accounts: s.service_accounts,
        peerings,
        load_s,
        converge_wall_s,
        converge_cpu_s,
        converge_rounds: report.rounds,
        converge_calls: report.mutations(),
        converged: report.converged,
        steady_wall_s: Some(steady_wall_s),
        steady_cpu_s: Some(steady_cpu_s),
        steady_observe_s,
        steady_plan_s: Some(steady_plan_s),
        steady_actions: plan.actions.len(),
        planner_s,
        peak_rss_mib: vm_hwm_mib(),
        planner_only: false,
    })
}

/// `xtask bench-fake-run N BUDGET_S`: one N, its result as one JSON line on stdout.
pub async fn child(args: &[String]) -> Result<()> {
    let n: usize = args.first().context("bench-fake-run N BUDGET_S")?.parse()?;
    let budget: u64 = args.get(1).context("bench-fake-run N BUDGET_S")?.parse()?;
    let run = if args.iter().any(|a| a == "--planner-only") {
        planner_only(n)?
    } else {
        run_in_process(n, Duration::from_secs(budget)).await?
    };
    println!("{}", serde_json::to_string(&run)?);
    Ok(())
}

/// Runs one N in a child process, killed after `budget`.
fn run_child(n: usize, budget: Duration, planner_only: bool) -> Result<Outcome> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args(["bench-fake-run", &n.to_string(), &budget.as_secs().to_string()])
        .args(planner_only.then_some("--planner-only"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if start.elapsed() > budget {
            child.kill()?;
            child.wait()?;
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (out, err) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
    match status {
        None => Ok(Outcome::NotFinished { links: n, why: format!("did not finish in {} s", budget.as_secs()) }),
        Some(s) if !s.success() => {
            Ok(Outcome::NotFinished { links: n, why: format!("failed ({s}): {}", err.lines().next().unwrap_or("")) })
        }
        Some(_) => {
            let line = out.lines().last().context("the child printed nothing")?;
            Ok(Outcome::Done(serde_json::from_str(line).context("the child's result")?))
        }
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.3}"))
}

/// The figures as lines: a table, per-link ratios to the smallest N, and a verdict per metric.
pub fn render(outcomes: &[Outcome], budget: Duration) -> Vec<String> {
    let mut lines = vec![
        format!(
            "in-memory AWS (crosslink_cloud::fake::FakeAws), {} build of xtask, {} CPUs, budget {} s per N",
            if cfg!(debug_assertions) { "debug (unoptimized)" } else { "release" },
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            budget.as_secs()
        ),
        "| N links | gateways | gw accounts | svc accounts | peerings | load s | converge wall s | converge CPU s | rounds | calls | steady wall s | steady CPU s | steady observe s | steady plan s | planner s (median of 5) | peak RSS MiB |".into(),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|".into(),
    ];
    let mut done = Vec::new();
    for o in outcomes {
        match o {
            Outcome::Done(r) => {
                lines.push(format!(
                    "| {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {:.3} | {} | {:.3} | {:.1} |",
                    r.links,
                    r.gateways,
                    r.gateway_accounts,
                    r.service_accounts,
                    r.peerings,
                    r.load_s,
                    r.converge_wall_s,
                    r.converge_cpu_s,
                    r.converge_rounds,
                    r.converge_calls,
                    opt(r.steady_wall_s),
                    opt(r.steady_cpu_s),
                    r.steady_observe_s,
                    opt(r.steady_plan_s),
                    r.planner_median_s(),
                    r.peak_rss_mib
                ));
                done.push(r);
            }
            Outcome::NotFinished { links, why } => lines.push(format!("| {links} | {why} |")),
        }
    }
    let Some(base) = done.first() else { return lines };
    type Metric = (&'static str, fn(&FakeRun) -> f64);
    let metrics: [Metric; 6] = [
        ("load (parse + validate)", |r| r.load_s),
        ("converge CPU", |r| r.converge_cpu_s),
        ("steady pass CPU", |r| r.steady_cpu_s.unwrap_or(f64::NAN)),
        ("planner per pass", |r| r.planner_median_s()),
        ("peak RSS", |r| r.peak_rss_mib),
        ("converge wall", |r| r.converge_wall_s),
    ];
    lines.push(String::new());
    lines.push(format!("per-link cost relative to N = {} (1.00 = grows linearly with links):", base.links));
    for (name, f) in metrics {
        let per_link = |r: &FakeRun| f(r) / r.links as f64;
        let ratios: Vec<String> =
            done.iter().map(|r| format!("N = {}: {:.2}x", r.links, per_link(r) / per_link(base))).collect();
        let last = done.last().expect("one at least");
        let growth = per_link(last) / per_link(base);
        let verdict = if done.len() < 2 {
            "one N only".to_string()
        } else if growth.is_nan() {
            "not measured".to_string()
        } else if growth < 2.0 {
            format!("linear ({growth:.2}x per link from {} to {})", base.links, last.links)
        } else {
            format!("grows: {growth:.2}x per link from {} to {} links", base.links, last.links)
        };
        lines.push(format!("  {name}: {}; {verdict}", ratios.join(", ")));
    }
    for o in outcomes {
        if let Outcome::NotFinished { links, why } = o {
            lines.push(format!("  N = {links}: {why}; not measured"));
        }
    }
    lines
}

/// `cargo xtask bench --fake [--fake-links 1000,10000,100000] [--fake-budget 600] [--no-planner-only | --planner-only]`.
/// An N whose full run does not finish in the budget is run again in the planner-only mode;
/// `--planner-only` runs only that mode, for every N.
pub fn bench(args: &[String]) -> Result<()> {
    let flag = |name: &str| args.windows(2).find(|w| w[0] == name).map(|w| w[1].clone());
    let links: Vec<usize> = flag("--fake-links")
        .unwrap_or_else(|| "1000,10000,100000".into())
        .split(',')
        .map(|s| s.trim().parse().context("--fake-links takes numbers, e.g. 1000,10000"))
        .collect::<Result<_>>()?;
    let budget = Duration::from_secs(flag("--fake-budget").map(|s| s.parse()).transpose()?.unwrap_or(600));
    let no_planner_only = args.iter().any(|a| a == "--no-planner-only");
    if args.iter().any(|a| a == "--planner-only") {
        let mut outcomes = Vec::new();
        for &n in &links {
            eprintln!("==> bench --fake: {n} links, planner only (at most {} s)", budget.as_secs());
            outcomes.push(run_child(n, budget, true)?);
        }
        println!(
            "planner only: the whole state loaded and validated as in the full run, converged by applying the plans to the fake directly (not through Engine::execute); the planner timed as in the full run. Steady-pass columns are not measured (-)."
        );
        for line in render(&outcomes, budget) {
            println!("{line}");
        }
        return Ok(());
    }
    let mut outcomes = Vec::new();
    let mut planner = Vec::new();
    for &n in &links {
        eprintln!("==> bench --fake: {n} links (in a child process, at most {} s)", budget.as_secs());
        let o = run_child(n, budget, false)?;
        if let Outcome::NotFinished { why, .. } = &o {
            eprintln!("    {n} links: {why}");
            if !no_planner_only {
                eprintln!("==> bench --fake: {n} links, planner only (at most {} s)", budget.as_secs());
                let p = run_child(n, budget, true)?;
                if let Outcome::NotFinished { why, .. } = &p {
                    eprintln!("    {n} links, planner only: {why}");
                }
                planner.push(p);
            }
        }
        outcomes.push(o);
    }
    for line in render(&outcomes, budget) {
        println!("{line}");
    }
    if !planner.is_empty() {
        println!();
        println!(
            "planner only, where the full run did not finish: the whole state loaded and validated as in the full run, converged by applying the plans to the fake directly (not through Engine::execute); the planner timed as above. Steady-pass columns are not measured (-); its steady observe is a direct read of the fake."
        );
        // The same mode at the smallest N, as the base of the ratios.
        let first = links[0];
        eprintln!("==> bench --fake: {first} links, planner only (the base of the ratios)");
        let mut with_base = vec![run_child(first, budget, true)?];
        with_base.extend(planner);
        for line in render(&with_base, budget) {
            println!("{line}");
        }
    }
    Ok(())
}

/// The planner alone on a converged observation, `PLANNER_RUNS` times: thread CPU seconds each.
fn planner_times(desired: &DesiredState, observed: &crosslink_plan::observed::Observed) -> Vec<f64> {
    (0..PLANNER_RUNS)
        .map(|_| {
            let c = thread_cpu_now();
            let p = crosslink_plan::plan(desired, observed, &Settings::default());
            let took = thread_cpu_now() - c;
            assert!(p.in_sync());
            took
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn twenty_links_converge_and_render() {
        let a = run_in_process(20, Duration::from_secs(60)).await.expect("20 links");
        let b = run_in_process(40, Duration::from_secs(60)).await.expect("40 links");
        assert!(a.converged && b.converged);
        assert_eq!((a.steady_actions, b.steady_actions), (0, 0));
        assert!(a.converge_calls > 20 * 3, "{} calls", a.converge_calls);
        assert_eq!(a.planner_s.len(), PLANNER_RUNS);
        let direct = planner_only(60).expect("60 links, planner only");
        assert!(direct.planner_only && direct.converge_rounds > 1 && direct.converge_calls > 60 * 3, "{direct:?}");
        let lines = render(
            &[
                Outcome::Done(a),
                Outcome::Done(b),
                Outcome::NotFinished { links: 80, why: "did not finish in 1 s".into() },
            ],
            Duration::from_secs(1),
        );
        let text = lines.join("\n");
        assert!(text.contains("| 20 | 1 | 1 | 2 |"), "{text}");
        assert!(text.contains("| 40 |"), "{text}");
        assert!(text.contains("| 80 | did not finish in 1 s |"), "{text}");
        assert!(text.contains("planner per pass: N = 20: 1.00x, N = 40:"), "{text}");
        assert!(text.contains("peak RSS"), "{text}");
    }
}
