//! The `crosslink` command line: a thin layer over the spec, plan and controller crates.

mod cli;
mod validate;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    cli::init_logging(&cli.global);
    match cli.command {
        cli::Command::Validate(args) => validate::validate(&args),
        cli::Command::Schema => {
            print!("{}", crosslink_spec::json_schema());
            ExitCode::SUCCESS
        }
    }
}
