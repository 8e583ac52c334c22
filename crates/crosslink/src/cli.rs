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
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match g.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
