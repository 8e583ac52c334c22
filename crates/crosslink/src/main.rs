//! The `crosslink` command line: a thin layer over the spec, plan and controller crates.

mod cli;
mod daemon;
mod iam;
mod reconcile;
mod render;
mod validate;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    cli::init_logging(&cli.global);
    let runtime = || tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    match cli.command {
        cli::Command::Plan(args) => runtime().block_on(reconcile::plan(&args)),
        cli::Command::Apply(args) => runtime().block_on(reconcile::apply(&args)),
        cli::Command::Run(args) => runtime().block_on(daemon::run(&args)),
        cli::Command::Status(args) => runtime().block_on(daemon::status(&args)),
        cli::Command::Validate(args) => validate::validate(&args),
        cli::Command::IamPolicy(args) => iam::iam_policy(&args),
        cli::Command::Schema => {
            print!("{}", crosslink_desired::json_schema());
            ExitCode::SUCCESS
        }
    }
}
