//! `crosslink run`: the daemon (reconcile loop + HTTP), and `crosslink status`.

use std::process::ExitCode;
use std::sync::Arc;

use anstream::{eprintln, print};
use crosslink_aws::{AwsCloud, CallRecord, Connector};
use crosslink_controller::daemon::{Daemon, RunOptions};
use crosslink_controller::metrics::Metrics;
use crosslink_controller::status::{Health, StatusSnapshot};
use crosslink_controller::{Engine, EngineOptions};
use crosslink_http::AppState;
use crosslink_plan::Settings;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::cli::{RunArgs, StatusArgs};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Set by the container build (`CROSSLINK_GIT_COMMIT`); `unknown` for a plain cargo build.
pub const COMMIT: &str = match option_env!("CROSSLINK_GIT_COMMIT") {
    Some(c) => c,
    None => "unknown",
};

async fn signals(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                error!("cannot listen for SIGTERM: {e}");
                let _ = tokio::signal::ctrl_c().await;
                shutdown.cancel();
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => info!("SIGTERM received"),
            _ = tokio::signal::ctrl_c() => info!("interrupt received"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    shutdown.cancel();
}

pub async fn run(args: &RunArgs) -> ExitCode {
    let metrics = Arc::new(Metrics::new(VERSION, COMMIT));
    let health = Health::new();
    let (tx, rx) = watch::channel(StatusSnapshot::default());
    let listener = match tokio::net::TcpListener::bind(&args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let sink = metrics.clone();
    let cloud = AwsCloud::new(Connector::from_env().await)
        .with_rate_limits(args.engine.rate_limits())
        .with_call_observer(Arc::new(move |r: &CallRecord| {
            sink.record_aws(r.service, r.operation, r.outcome, r.duration);
            sink.record_aws_wait(r.service, r.waited);
        }));
    let engine = Engine::new(
        Arc::new(cloud),
        EngineOptions {
            settings: Settings { instance: args.engine.instance.clone() },
            concurrency: usize::from(args.engine.concurrency),
        },
    );
    let opts = RunOptions {
        paths: args.engine.paths.clone(),
        resync: args.resync,
        reload_interval: args.reload_interval,
        max_prune: args.max_prune,
        allow_prune: args.allow_prune,
        max_backoff: args.max_backoff,
        grace: args.shutdown_grace,
        version: VERSION.to_string(),
        ..RunOptions::default()
    };
    let liveness_timeout = args.liveness_timeout;
    let daemon = Daemon::new(engine, opts, metrics.clone(), health.clone(), tx);
    let shutdown = CancellationToken::new();
    tokio::spawn(signals(shutdown.clone()));
    let state = AppState { status: rx, metrics, health, liveness_timeout };
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| args.listen.clone());
    let server = tokio::spawn(crosslink_http::serve(listener, state, shutdown.clone().cancelled_owned()));
    info!(
        listen = %addr,
        instance = %args.engine.instance,
        version = VERSION,
        commit = COMMIT,
        "crosslink is running: http://{addr}/ (status page), /status, /metrics, /healthz, /readyz"
    );
    daemon.run(shutdown.clone()).await;
    shutdown.cancel();
    match server.await {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            error!("HTTP server failed: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            error!("HTTP server task failed: {e}");
            ExitCode::FAILURE
        }
    }
}

pub async fn status(args: &StatusArgs) -> ExitCode {
    match crosslink_http::client::fetch_status(&args.server, args.timeout).await {
        Ok(s) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&s).expect("status serializes"));
            } else {
                print!("{}", crosslink_http::client::status_table(&s));
            }
            let healthy = s.ready
                && s.desired.error.is_none()
                && s.links.iter().chain(&s.gateways).all(|o| o.phase == crosslink_controller::status::Phase::Ready);
            if healthy { ExitCode::SUCCESS } else { ExitCode::from(2) }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
