//! `crosslink explain <link>`: every hop of one link, in the order a request takes them, and
//! whether traffic can flow: from a running daemon's status (`--server`), or observed here from
//! AWS given the desired state. The first broken hop is marked and comes with its hint.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use anstream::{eprintln, print, println};
use crosslink_aws::{AwsCloud, Connector};
use crosslink_controller::{Engine, EngineOptions};
use crosslink_plan::health::{HopState, LinkHealth, link_health};
use crosslink_plan::{Settings, Subject};
use owo_colors::OwoColorize;
use serde::Serialize;

use crate::cli::{ExplainArgs, Output};

/// Exit code when the link is not healthy or not in sync.
const NOT_HEALTHY: u8 = 2;

/// What `explain` says about a link (`-o json`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explained {
    pub link: String,
    /// `daemon <url>` or `observed`.
    pub source: String,
    /// The daemon's phase, or for an observation `in sync` / `changes pending` / `blocked`.
    pub phase: String,
    pub message: String,
    pub synced: bool,
    /// None when the daemon has not observed the link yet.
    pub health: Option<LinkHealth>,
}

impl Explained {
    fn healthy(&self) -> bool {
        self.synced && self.health.as_ref().is_some_and(|h| h.healthy)
    }
}

pub async fn explain(args: &ExplainArgs) -> ExitCode {
    let explained = match &args.server {
        Some(server) => from_daemon(server, args).await,
        None => observed(args).await,
    };
    let e = match explained {
        Ok(e) => e,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&e).expect("it serializes")),
        Output::Text => print!("{}", text(&e)),
    }
    if e.healthy() { ExitCode::SUCCESS } else { ExitCode::from(NOT_HEALTHY) }
}

async fn from_daemon(server: &str, args: &ExplainArgs) -> Result<Explained, String> {
    let s = crosslink_http::client::fetch_status(server, args.timeout).await.map_err(|e| e.to_string())?;
    let Some(o) = s.links.iter().find(|l| l.name == args.link) else {
        let held = if s.shards.is_some() {
            " (with several replicas, ask the one holding its unit: see `crosslink status --server ...`'s shards)"
        } else {
            ""
        };
        return Err(format!("Link/{} is not in the status of {server}{held}", args.link));
    };
    Ok(Explained {
        link: o.name.clone(),
        source: format!("daemon {server}"),
        phase: o.phase.as_str().to_string(),
        message: o.message.clone(),
        synced: o.synced,
        health: o.health.clone(),
    })
}

async fn observed(args: &ExplainArgs) -> Result<Explained, String> {
    let desired = crosslink_desired::load(&args.paths).map_err(|diags| {
        crate::validate::print_diagnostics(&diags);
        "the desired state is invalid: nothing was contacted".to_string()
    })?;
    let Some(link) = desired.link(&args.link) else {
        let names: Vec<&str> = desired.links.iter().map(|l| l.metadata.name.as_str()).collect();
        return Err(format!("no Link named {} in the desired state (links: {})", args.link, names.join(", ")));
    };
    let cloud = AwsCloud::new(Connector::from_env().await);
    let opts = EngineOptions { settings: Settings { instance: args.instance.clone() }, ..EngineOptions::default() };
    let engine = Engine::new(Arc::new(cloud), opts);
    let (observed, plan) = engine.plan(&desired).await;
    let health = link_health(&desired, &observed, &plan, link);
    // The link's chain includes its peering.
    let mut subjects = vec![Subject::Link(link.metadata.name.clone())];
    if let Some(gw) = desired.gateway(&link.spec.gateway) {
        subjects.push(Subject::Peering(gw.spec.vpc_id.clone(), link.spec.service.vpc_id.clone()));
    }
    let problem = subjects.iter().filter_map(|s| plan.reports.get(s)).flat_map(|r| r.problems.first()).next();
    let pending = plan.actions.iter().filter(|a| subjects.contains(&a.subject)).count();
    let (phase, message) = match (problem, pending) {
        (Some(p), _) => ("blocked".to_string(), format!("{}: {}", p.code, p.message)),
        (None, 0) => ("in sync".to_string(), health.summary.clone()),
        (None, n) => ("changes pending".to_string(), format!("{n} change(s) to make: run `crosslink plan`")),
    };
    Ok(Explained {
        link: link.metadata.name.clone(),
        source: "observed".into(),
        phase,
        message,
        synced: problem.is_none() && pending == 0,
        health: Some(health),
    })
}

fn state(s: HopState) -> String {
    match s {
        HopState::Ok => s.as_str().green().to_string(),
        HopState::Starting => s.as_str().yellow().to_string(),
        HopState::Broken => s.as_str().red().bold().to_string(),
        HopState::Unknown => s.as_str().dimmed().to_string(),
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes".green().to_string() } else { "no".red().bold().to_string() }
}

/// The text form: a heading, Synced and Healthy, then a table of the hops, the first broken one
/// marked `>` with its hint under it.
pub fn text(e: &Explained) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Link/{}: {} ({}): {}", e.link.bold(), e.phase, e.source, e.message);
    let Some(h) = &e.health else {
        let _ = writeln!(out, "Synced: {}  Healthy: unknown (not observed yet)", yes_no(e.synced));
        return out;
    };
    let _ = writeln!(
        out,
        "Synced: {}  Healthy: {} ({}; at least {} healthy target(s) wanted)",
        yes_no(e.synced),
        yes_no(h.healthy),
        h.summary,
        h.min_healthy_targets
    );
    if let Some(first) = h.first_broken_hop() {
        let _ = writeln!(out, "Look first at: {} in account {}: {}", first.name, first.account, first.detail);
    }
    let _ = writeln!(out);
    let name_w = h.hops.iter().map(|x| x.name.len()).max().unwrap_or(4).max(4);
    let acct_w = h.hops.iter().map(|x| x.account.len()).max().unwrap_or(7).max(7);
    let kind_w = h.hops.iter().map(|x| x.kind.len()).max().unwrap_or(12).max(12);
    let _ = writeln!(
        out,
        "  {:<3} {:<kind_w$} {:<name_w$}  {:<acct_w$}  {:<8}  detail",
        "#", "hop", "name", "account", "state"
    );
    for (i, x) in h.hops.iter().enumerate() {
        let mark = if h.first_broken == Some(i) { ">" } else { " " };
        // Pad the plain state text, then colour it: escape codes have no width.
        let pad = " ".repeat(8usize.saturating_sub(x.state.as_str().len()));
        let _ = writeln!(
            out,
            "{mark} {:<3} {:<kind_w$} {:<name_w$}  {:<acct_w$}  {}{pad}  {}",
            i + 1,
            x.kind,
            x.name,
            x.account,
            state(x.state),
            x.detail
        );
        if let Some(id) = &x.id {
            let _ = writeln!(out, "      id: {id}");
        }
        if h.first_broken == Some(i)
            && let Some(hint) = &x.hint
        {
            let _ = writeln!(out, "      hint: {hint}");
        }
    }
    out
}
