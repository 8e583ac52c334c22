//! Flags and subcommands. Every flag can also be set by a `CROSSLINK_*` environment variable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "crosslink",
    version,
    about = "Connects API Gateway in a shared AWS account to services in other accounts, and keeps it connected."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Log format.
    #[arg(long, global = true, env = "CROSSLINK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter, in tracing's `EnvFilter` syntax (e.g. `info,crosslink_aws=debug`).
    #[arg(long, global = true, env = "CROSSLINK_LOG", default_value = "info")]
    pub log: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check desired state without contacting AWS: exit 0 with a summary, or 1 with every error.
    Validate(ValidateArgs),
    /// Print the JSON Schema of the desired-state format.
    Schema,
    /// Show what apply would change: exit 0 in sync, 2 changes pending, 1 error.
    Plan(PlanArgs),
    /// Make AWS match desired state (one pass, waiting for asynchronous steps): exit 0 in sync.
    Apply(ApplyArgs),
    /// Run the reconciling daemon: watch desired state, converge, repair drift; serve /healthz,
    /// /readyz, /metrics, /status and a status page.
    Run(Box<RunArgs>),
    /// Print a running daemon's status as a table: exit 0 all Ready, 2 otherwise, 1 unreachable.
    Status(StatusArgs),
    /// Hand objects that left desired state to another tool: remove crosslink's tags
    /// (crosslink.dev/*) from every resource they own, so that crosslink never touches them
    /// again. Remove the object from the YAML first, with deletionPolicy: Retain so that its
    /// resources stay meanwhile. Exit 0 released (or, with --dry-run, releasable), 1 otherwise.
    Release(ReleaseArgs),
    /// Write desired state for links that already exist (built by hand or by another tool): read
    /// the gateway account and the service accounts of the Account documents given, and print
    /// Gateway and Link documents with adoption: Adopt, the Accounts they use, comments where it
    /// guessed, and on stderr what it could not express. Changes nothing in AWS. Exit 0 written
    /// (the output validates), 1 otherwise.
    Discover(DiscoverArgs),
    /// Show every hop of one link and whether traffic can flow through it: the first broken hop
    /// comes with what to check, and in which account. Reads a running daemon's status with
    /// --server, or observes AWS itself given the desired state. Exit 0 healthy, 2 not healthy
    /// (or not in sync), 1 error.
    Explain(ExplainArgs),
    /// Print least-privilege IAM policies for desired state: the controller's, and per account a
    /// trust policy (with the external id) and a permissions policy conditioned on ownership tags.
    ///
    /// Removing follows ownership: deletes AWS can condition on the crosslink.dev/managed-by tag
    /// (peerings, listeners, target groups, load balancers, VPC links, REST APIs) are granted by
    /// that tag alone, so the policy of the new desired state can still remove what left it.
    /// Routes cannot be: IAM authorizes them on the route table, which is not crosslink's, so they
    /// are allowed in the route tables desired state names. For a change that adds or removes
    /// links, accounts or route tables: 1. apply `iam-policy --previous <old> <new>` (the union
    /// of both states' policies); 2. merge the change and let the daemon converge; 3. apply
    /// `iam-policy <new>`. See docs/security.md.
    IamPolicy(crate::iam::IamPolicyArgs),
    /// Print, as JSON ready to apply, what brings change events from every account of the
    /// desired state to the daemon's queue (`run --events-queue`): per account an EventBridge
    /// rule limited to the calls crosslink reacts to and the role it forwards with; in the
    /// controller account the bus policy, the rule to the queue, the queue policy and the
    /// controller's own permissions on the queue. See docs/events.md.
    EventsSetup(crate::events_setup::EventsSetupArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Address for the HTTP endpoints.
    #[arg(long, env = "CROSSLINK_LISTEN", default_value = "127.0.0.1:9090")]
    pub listen: String,
    /// Full resync interval (drift detection; AWS has no watch). Jittered by 10%. It stays the
    /// same with --events-queue: target health, peering expiry and VPC link failures make no
    /// CloudTrail event, and the resync is the safety net for events lost or late.
    #[arg(long, env = "CROSSLINK_RESYNC", default_value = "5m", value_parser = humantime::parse_duration)]
    pub resync: std::time::Duration,
    /// Re-read desired state at least this often (besides file-system events).
    #[arg(long, env = "CROSSLINK_RELOAD_INTERVAL", default_value = "60s", value_parser = humantime::parse_duration)]
    pub reload_interval: std::time::Duration,
    /// A target group whose targets were all healthy when last read has its target health read
    /// again one full resync in this many; one with any target not healthy (or none) is read
    /// every resync. So a healthy group turning unhealthy without crosslink acting is seen
    /// within this many resyncs. 1 reads every group every resync.
    #[arg(long, env = "CROSSLINK_TARGET_HEALTH_EVERY", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    pub target_health_every: u64,
    /// An SQS queue URL that change events arrive on (CloudTrail "AWS API Call via CloudTrail"
    /// events of every account, forwarded by EventBridge; `crosslink events-setup` prints the
    /// rules and policies). What an event touches is reconciled within seconds; the resync
    /// still runs. Read with the controller's own credentials. See docs/events.md.
    #[arg(long, env = "CROSSLINK_EVENTS_QUEUE", value_name = "URL")]
    pub events_queue: Option<String>,
    /// Refuse a pass that would remove more links than this (prune guard).
    #[arg(long, env = "CROSSLINK_MAX_PRUNE", default_value_t = 5)]
    pub max_prune: usize,
    /// Let the prune guard pass: remove links even in large numbers or all at once.
    #[arg(long, env = "CROSSLINK_ALLOW_PRUNE")]
    pub allow_prune: bool,
    /// Let the protection guard pass: apply changes that make routes less protected (a route's
    /// authorization down to NONE, its API key requirement dropped), which are otherwise held
    /// and reported until the YAML is fixed.
    #[arg(long, env = "CROSSLINK_ALLOW_WEAKENING")]
    pub allow_weakening: bool,
    /// Replace adopted resources that cannot be changed in place (a target group of another
    /// protocol, type or VPC), which are otherwise held: the switch moves live traffic.
    #[arg(long, env = "CROSSLINK_ALLOW_REPLACEMENT")]
    pub allow_replacement: bool,
    /// Longest wait between retries of a failing item.
    #[arg(long, env = "CROSSLINK_MAX_BACKOFF", default_value = "5m", value_parser = humantime::parse_duration)]
    pub max_backoff: std::time::Duration,
    /// On SIGTERM, how long in-flight AWS calls may take to finish.
    #[arg(long, env = "CROSSLINK_SHUTDOWN_GRACE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: std::time::Duration,
    /// /healthz fails when the loop has shown no life for this long.
    #[arg(long, env = "CROSSLINK_LIVENESS_TIMEOUT", default_value = "2m", value_parser = humantime::parse_duration)]
    pub liveness_timeout: std::time::Duration,
    #[command(flatten)]
    pub coord: CoordArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Coordination {
    /// `kubernetes` inside a Kubernetes pod (KUBERNETES_SERVICE_HOST is set), else `none`.
    Auto,
    /// This process is the only replica and reconciles everything.
    None,
    /// coordination.k8s.io/v1 Lease objects, one per unit and one per replica.
    Kubernetes,
    /// etcd v3 leases: one per replica, unit keys attached to it.
    Etcd,
}

/// Several replicas: each unit (a gateway with its links) is reconciled by the one replica
/// holding its lease. See docs/ha.md.
#[derive(Debug, Args)]
pub struct CoordArgs {
    /// How replicas share the work.
    #[arg(long, env = "CROSSLINK_COORDINATION", value_enum, default_value_t = Coordination::Auto)]
    pub coordination: Coordination,
    /// This replica's name, unique among the replicas (in Kubernetes: the pod name). Default:
    /// the host name and a random suffix.
    #[arg(long, env = "CROSSLINK_REPLICA_ID")]
    pub replica_id: Option<String>,
    /// Namespace of the Lease objects. Default: the pod's own namespace.
    #[arg(long, env = "CROSSLINK_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// etcd client URLs (http://host:2379), comma-separated.
    #[arg(long, env = "CROSSLINK_ETCD_ENDPOINTS", value_delimiter = ',')]
    pub etcd_endpoints: Vec<String>,
    /// Key prefix in etcd. Default: /crosslink/<instance>.
    #[arg(long, env = "CROSSLINK_ETCD_PREFIX")]
    pub etcd_prefix: Option<String>,
    /// How long a unit's lease lasts without renewal before another replica may take it.
    #[arg(long, env = "CROSSLINK_LEASE_DURATION", default_value = "15s", value_parser = humantime::parse_duration)]
    pub lease_duration: std::time::Duration,
    /// A replica stops changing a unit this long after its last successful renewal.
    #[arg(long, env = "CROSSLINK_RENEW_DEADLINE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub renew_deadline: std::time::Duration,
    /// How often leases are renewed and free units looked for.
    #[arg(long, env = "CROSSLINK_RETRY_PERIOD", default_value = "2s", value_parser = humantime::parse_duration)]
    pub retry_period: std::time::Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RateProfile {
    Aws,
    Off,
}

impl EngineArgs {
    pub fn rate_limits(&self) -> crosslink_aws::RateLimits {
        let base = match self.rate_limits {
            RateProfile::Aws => crosslink_aws::RateLimits::aws_defaults(),
            RateProfile::Off => crosslink_aws::RateLimits::off(),
        };
        let mut limits = base.scaled(self.rate_limit_scale);
        for o in &self.rate_limit_overrides {
            limits = limits.apply(o);
        }
        limits
    }
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The daemon's HTTP address.
    #[arg(long, env = "CROSSLINK_SERVER", default_value = "http://127.0.0.1:9090")]
    pub server: String,
    /// Print the raw JSON.
    #[arg(long)]
    pub json: bool,
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The Link's name (metadata.name).
    pub link: String,
    /// Desired-state files or directories: observe AWS here instead of asking a daemon.
    #[arg(required_unless_present = "server", conflicts_with = "server")]
    pub paths: Vec<PathBuf>,
    /// A running daemon's HTTP address: explain from its last observation (no AWS call here).
    #[arg(long, env = "CROSSLINK_SERVER")]
    pub server: Option<String>,
    /// The value of the crosslink.dev/managed-by tag (when observing AWS).
    #[arg(long, env = "CROSSLINK_INSTANCE", default_value = "crosslink")]
    pub instance: String,
    /// Output format.
    #[arg(long, short, env = "CROSSLINK_OUTPUT", value_enum, default_value_t = Output::Text)]
    pub output: Output,
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct EngineArgs {
    /// Desired-state files or directories (read recursively: *.yaml, *.yml).
    #[arg(required = true, env = "CROSSLINK_DESIRED_STATE", value_delimiter = ',')]
    pub paths: Vec<PathBuf>,
    /// The value of the crosslink.dev/managed-by tag: what this instance owns.
    #[arg(long, env = "CROSSLINK_INSTANCE", default_value = "crosslink")]
    pub instance: String,
    /// AWS calls in flight at once.
    #[arg(long, env = "CROSSLINK_CONCURRENCY", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Client-side AWS rate limits: `aws` (the documented AWS limits) or `off`.
    #[arg(long, env = "CROSSLINK_RATE_LIMITS", value_enum, default_value_t = RateProfile::Aws)]
    pub rate_limits: RateProfile,
    /// Scale every rate limit (0.5 = half the documented rates: leave room for other tools).
    #[arg(long, env = "CROSSLINK_RATE_LIMIT_SCALE", default_value_t = 1.0)]
    pub rate_limit_scale: f64,
    /// Override one bucket, e.g. `ec2-write=2/s` or `apigateway:CreateDeployment=1/10s` (repeatable).
    #[arg(long = "rate-limit", env = "CROSSLINK_RATE_LIMIT_OVERRIDES", value_delimiter = ',')]
    pub rate_limit_overrides: Vec<crosslink_aws::RateOverride>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Output format.
    #[arg(long, short, env = "CROSSLINK_OUTPUT", value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Output format.
    #[arg(long, short, env = "CROSSLINK_OUTPUT", value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// How long to wait for asynchronous steps (VPC Link PENDING takes minutes on AWS), e.g. 15m.
    #[arg(long, env = "CROSSLINK_TIMEOUT", default_value = "10m", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
    /// Apply changes that make routes less protected (a route's authorization down to NONE, its
    /// API key requirement dropped); without it they are held and reported.
    #[arg(long, env = "CROSSLINK_ALLOW_WEAKENING")]
    pub allow_weakening: bool,
    /// Replace adopted resources that cannot be changed in place (a target group of another
    /// protocol, type or VPC); without it they are held and reported.
    #[arg(long, env = "CROSSLINK_ALLOW_REPLACEMENT")]
    pub allow_replacement: bool,
}

#[derive(Debug, Args)]
pub struct DiscoverArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// The Account (by metadata.name) that holds the gateway: its NLB, VPC link and REST API.
    #[arg(long)]
    pub gateway_account: String,
    /// Write the YAML to this file instead of stdout.
    #[arg(long, short = 'f')]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// An object to release: Link/<name>, Gateway/<name>, Consumer/<name> or
    /// Peering/<gateway vpc>/<service vpc> (repeatable).
    #[arg(long = "object", required = true, value_parser = parse_subject)]
    pub objects: Vec<crosslink_plan::Subject>,
    /// Show what would be released; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format.
    #[arg(long, short, env = "CROSSLINK_OUTPUT", value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

fn parse_subject(s: &str) -> Result<crosslink_plan::Subject, String> {
    crosslink_plan::Subject::from_owner_tag(s).ok_or_else(|| {
        format!("{s:?} names no object: write Link/<name>, Gateway/<name>, Consumer/<name> or Peering/<gateway vpc>/<service vpc>")
    })
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Desired-state files or directories (read recursively: *.yaml, *.yml).
    #[arg(required = true, env = "CROSSLINK_DESIRED_STATE", value_delimiter = ',')]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, short, env = "CROSSLINK_OUTPUT", value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

pub fn init_logging(g: &Global) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&g.log).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only on a terminal, and never with NO_COLOR (anstream decides as it does for the
    // plans and tables printed on stdout): logs written to a file or a pipe stay plain text.
    let colour = anstream::AutoStream::choice(&std::io::stderr()) != anstream::ColorChoice::Never;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour);
    match g.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
