//! `crosslink plan` and `crosslink apply`: load and validate desired state (nothing is contacted
//! if it is invalid), connect to AWS, then plan or converge.

use std::process::ExitCode;
use std::sync::Arc;

use anstream::{eprintln, print, println};
use crosslink_aws::{AwsCloud, Connector};
use crosslink_controller::{ApplyOptions, Engine, EngineOptions};
use crosslink_desired::DesiredState;
use crosslink_plan::Settings;

use crate::cli::{ApplyArgs, DiscoverArgs, EngineArgs, Output, PlanArgs, ReleaseArgs};
use crate::render;

/// Exit code of `plan` when changes are pending.
const CHANGES_PENDING: u8 = 2;

fn load(paths: &[std::path::PathBuf]) -> Result<DesiredState, ExitCode> {
    crosslink_desired::load(paths).map_err(|diags| {
        crate::validate::print_diagnostics(&diags);
        ExitCode::FAILURE
    })
}

async fn engine(args: &EngineArgs) -> Engine<AwsCloud> {
    let cloud = AwsCloud::new(Connector::from_env().await).with_rate_limits(args.rate_limits());
    let opts = EngineOptions {
        settings: Settings { instance: args.instance.clone() },
        concurrency: usize::from(args.concurrency),
    };
    Engine::new(Arc::new(cloud), opts)
}

pub async fn plan(args: &PlanArgs) -> ExitCode {
    let desired = match load(&args.engine.paths) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let engine = engine(&args.engine).await;
    let (_, plan) = engine.plan(&desired).await;
    match args.output {
        Output::Json => println!("{}", render::plan_json(&plan)),
        Output::Text => print!("{}", render::plan_text(&plan, &desired)),
    }
    if plan.has_problems() {
        ExitCode::FAILURE
    } else if plan.in_sync() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(CHANGES_PENDING)
    }
}

pub async fn apply(args: &ApplyArgs) -> ExitCode {
    let desired = match load(&args.engine.paths) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let engine = engine(&args.engine).await;
    let opts = ApplyOptions {
        timeout: args.timeout,
        allow_weakening: args.allow_weakening,
        allow_replacement: args.allow_replacement,
        ..ApplyOptions::default()
    };
    let revision = crosslink_controller::source::revision(&args.engine.paths);
    let report = engine.apply_revision(&desired, &opts, Some(&revision)).await;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report).expect("a report serializes")),
        Output::Text => {
            if !report.converged && !report.remaining.actions.is_empty() {
                eprintln!("Remaining plan:");
                eprintln!("{}", render::plan_text(&report.remaining, &desired));
            }
            print!("{}", render::apply_summary(&report, &desired));
        }
    }
    if report.converged { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

pub async fn release(args: &ReleaseArgs) -> ExitCode {
    let desired = match load(&args.engine.paths) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let engine = engine(&args.engine).await;
    let (plan, executed) = engine.release(&desired, &args.objects, args.dry_run).await;
    let failed: Vec<_> =
        executed.iter().filter(|e| !matches!(e.result, crosslink_controller::ActionResult::Done { .. })).collect();
    match args.output {
        Output::Json => {
            let doc = serde_json::json!({ "plan": serde_json::from_str::<serde_json::Value>(&render::plan_json(&plan)).expect("a plan is JSON"), "executed": executed });
            println!("{}", serde_json::to_string_pretty(&doc).expect("a report serializes"));
        }
        Output::Text => {
            print!("{}", render::plan_text(&plan, &desired));
            if !args.dry_run && !plan.has_problems() {
                println!("Released: {} resource(s), {} failed.", executed.len() - failed.len(), failed.len());
            }
        }
    }
    if plan.has_problems() || !failed.is_empty() { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

pub async fn discover(args: &DiscoverArgs) -> ExitCode {
    let desired = match load(&args.engine.paths) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let engine = engine(&args.engine).await;
    let found = match engine.discover(&desired, &args.gateway_account).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for n in &found.notes {
        eprintln!("not expressed: {n}");
    }
    let name = args.out.clone().unwrap_or_else(|| "discovered.yaml".into());
    // What it wrote must be valid desired state: a failure here is crosslink's bug.
    if let Err(diags) = crosslink_desired::load_str(&name, &found.yaml) {
        crate::validate::print_diagnostics(&diags);
        eprintln!("error: the discovered YAML does not validate (a bug in crosslink discover)");
        return ExitCode::FAILURE;
    }
    match &args.out {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &found.yaml) {
                eprintln!("error: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
        None => print!("{}", found.yaml),
    }
    eprintln!(
        "Discovered {} gateway(s) and {} link(s); {} thing(s) not expressed.",
        found.gateways,
        found.links,
        found.notes.len()
    );
    ExitCode::SUCCESS
}
