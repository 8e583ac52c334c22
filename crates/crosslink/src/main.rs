//! The `crosslink` command line: a thin layer over the spec, plan and controller crates.

mod cli;
mod daemon;
mod events_setup;
mod explain;
mod iam;
mod reconcile;
mod render;
mod validate;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    cli::init_logging(&cli.global);
    // The daemon serves HTTP while it reconciles: worker threads. A one-shot command runs on one
    // thread: it is one pass at a time whose calls wait on the network, and a call's future and
    // the connection task that sends it then wake each other on the same thread, not across
    // threads (converging 1,000 links against moto: 3.42 s of CPU instead of 4.10, of which
    // system time 0.99 s instead of 1.53).
    let runtime = || tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let one_thread = || tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    match cli.command {
        cli::Command::Plan(args) => one_thread().block_on(reconcile::plan(&args)),
        cli::Command::Apply(args) => one_thread().block_on(reconcile::apply(&args)),
        cli::Command::Release(args) => one_thread().block_on(reconcile::release(&args)),
        cli::Command::Discover(args) => one_thread().block_on(reconcile::discover(&args)),
        cli::Command::Run(args) => runtime().block_on(daemon::run(&args)),
        cli::Command::Status(args) => one_thread().block_on(daemon::status(&args)),
        cli::Command::Explain(args) => one_thread().block_on(explain::explain(&args)),
        cli::Command::Validate(args) => validate::validate(&args),
        cli::Command::IamPolicy(args) => iam::iam_policy(&args),
        cli::Command::EventsSetup(args) => events_setup::events_setup(&args),
        cli::Command::Schema => {
            print!("{}", crosslink_desired::json_schema());
            ExitCode::SUCCESS
        }
    }
}
