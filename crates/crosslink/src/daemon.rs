//! `crosslink run`: the daemon (reconcile loop + HTTP), and `crosslink status`.

use std::process::ExitCode;
use std::sync::Arc;

use anstream::{eprintln, print};
use crosslink_aws::{AwsCloud, CallRecord, Connector};
use crosslink_controller::daemon::{Daemon, RunOptions};
use crosslink_controller::events::{Consumer, ConsumerOptions, Events};
use crosslink_controller::metrics::Metrics;
use crosslink_controller::status::{Health, StatusSnapshot};
use crosslink_controller::{Engine, EngineOptions};
use crosslink_coord::etcd::EtcdBackend;
use crosslink_coord::kube::KubeBackend;
use crosslink_coord::{Backend, Coordinator, Ownership, Timing};
use crosslink_http::AppState;
use crosslink_plan::Settings;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::cli::{CoordArgs, Coordination, RunArgs, StatusArgs};

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

/// The replica's default name: the host name and a random suffix (two processes on one host,
/// or a restarted one, never share a name).
fn default_replica_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_string()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "crosslink".into());
    format!("{host}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}

/// A started coordinator: its ownership handle and its task (which releases the leases on
/// shutdown).
struct Coordinated {
    ownership: Ownership,
    task: tokio::task::JoinHandle<()>,
}

async fn coordinate(
    c: &CoordArgs,
    instance: &str,
    grace: std::time::Duration,
    shutdown: &CancellationToken,
) -> Result<Option<Coordinated>, String> {
    let kind = match c.coordination {
        Coordination::Auto if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() => Coordination::Kubernetes,
        Coordination::Auto => Coordination::None,
        k => k,
    };
    if kind == Coordination::None {
        if !c.etcd_endpoints.is_empty() {
            return Err("--etcd-endpoints is set but --coordination is not etcd: say --coordination etcd".into());
        }
        return Ok(None);
    }
    let timing =
        Timing { lease_duration: c.lease_duration, renew_deadline: c.renew_deadline, retry_period: c.retry_period };
    timing.check().map_err(|e| format!("lease timing: {e}"))?;
    let replica = c.replica_id.clone().unwrap_or_else(default_replica_id);
    if replica.is_empty()
        || replica.len() > 63
        || !replica.chars().all(|ch| ch.is_ascii_alphanumeric() || "-._".contains(ch))
    {
        return Err(format!(
            "--replica-id {replica:?}: use 1 to 63 letters, digits, '-', '.' or '_' (in Kubernetes, the pod name)"
        ));
    }
    let shutdown = shutdown.clone();
    let (ownership, task) = match kind {
        Coordination::Etcd => {
            if c.etcd_endpoints.is_empty() {
                return Err("--coordination etcd needs --etcd-endpoints (http://host:2379,...)".into());
            }
            let prefix = c.etcd_prefix.clone().unwrap_or_else(|| format!("/crosslink/{instance}"));
            let backend = EtcdBackend::new(&c.etcd_endpoints, &prefix, &replica, timing).map_err(|e| e.to_string())?;
            let ownership = Ownership::sharded(&replica, &backend.describe(), timing);
            let coordinator = Coordinator::new(backend, ownership.clone(), &replica, timing);
            (ownership, tokio::spawn(coordinator.run(shutdown, grace)))
        }
        _ => {
            let backend = KubeBackend::from_env(c.lease_namespace.as_deref(), instance, &replica, timing)
                .await
                .map_err(|e| e.to_string())?;
            let ownership = Ownership::sharded(&replica, &backend.describe(), timing);
            let coordinator = Coordinator::new(backend, ownership.clone(), &replica, timing);
            (ownership, tokio::spawn(coordinator.run(shutdown, grace)))
        }
    };
    Ok(Some(Coordinated { ownership, task }))
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
    let connector = Connector::from_env().await;
    let queue = args.events_queue.as_deref().map(|url| crosslink_aws::SqsQueue::new(&connector, url));
    let cloud = AwsCloud::new(connector).with_rate_limits(args.engine.rate_limits()).with_call_observer(Arc::new(
        move |r: &CallRecord| {
            sink.record_aws(r.service, r.operation, r.outcome, r.duration);
            sink.record_aws_wait(r.service, r.waited);
        },
    ));
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
        target_health_every: args.target_health_every,
        max_prune: args.max_prune,
        allow_prune: args.allow_prune,
        allow_weakening: args.allow_weakening,
        allow_replacement: args.allow_replacement,
        max_backoff: args.max_backoff,
        grace: args.shutdown_grace,
        version: VERSION.to_string(),
        ..RunOptions::default()
    };
    let liveness_timeout = args.liveness_timeout;
    let shutdown = CancellationToken::new();
    let coordinated = match coordinate(&args.coord, &args.engine.instance, args.shutdown_grace, &shutdown).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut daemon = Daemon::new(engine, opts, metrics.clone(), health.clone(), tx);
    if let Some(c) = &coordinated {
        daemon = daemon.with_ownership(c.ownership.clone());
    }
    if let Some(queue) = queue {
        use crosslink_cloud::queue::EventQueue;
        let events = Events::new(&queue.name());
        let ownership = coordinated.as_ref().map_or_else(Ownership::solo, |c| c.ownership.clone());
        let consumer = Consumer::new(queue, events.clone(), metrics.clone(), ownership, ConsumerOptions::default());
        tokio::spawn(consumer.run(shutdown.clone()));
        daemon = daemon.with_events(events);
    }
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
    if let Some(c) = coordinated {
        // Leases are released only after the calls in flight returned.
        let _ = c.task.await;
    }
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
                && s.links
                    .iter()
                    .chain(&s.gateways)
                    .chain(&s.consumers)
                    .all(|o| o.phase == crosslink_controller::status::Phase::Ready);
            if healthy { ExitCode::SUCCESS } else { ExitCode::from(2) }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
