//! `crosslink validate`.

use std::io::Write;
use std::process::ExitCode;

use anstream::{eprintln, println};
use owo_colors::OwoColorize;

use crate::cli::{Output, ValidateArgs};

pub fn validate(args: &ValidateArgs) -> ExitCode {
    let result = crosslink_desired::load(&args.paths);
    match (args.output, result) {
        (Output::Json, r) => {
            let value = match &r {
                Ok(state) => serde_json::json!({"valid": true, "summary": state.summary()}),
                Err(diags) => serde_json::json!({"valid": false, "errors": diags}),
            };
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", serde_json::to_string_pretty(&value).expect("json"));
            if r.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        (Output::Text, Ok(state)) => {
            println!("{} {}", "valid:".green().bold(), state.summary());
            ExitCode::SUCCESS
        }
        (Output::Text, Err(diags)) => {
            print_diagnostics(&diags);
            ExitCode::FAILURE
        }
    }
}

/// Desired state for a command that prints something from it (`iam-policy`, `events-setup`): the
/// state, or every error printed and `None`.
pub fn load_or_report(paths: &[std::path::PathBuf]) -> Option<crosslink_desired::DesiredState> {
    crosslink_desired::load(paths).map_err(|diags| print_diagnostics(&diags)).ok()
}

pub fn print_diagnostics(diags: &crosslink_desired::Diagnostics) {
    for d in diags.iter() {
        let mut text = d.to_string();
        let hint = text.find("\n  hint: ").map(|i| text.split_off(i));
        eprintln!("{} {text}", "error:".red().bold());
        if let Some(h) = hint {
            eprintln!("{}", h.trim_start_matches('\n').cyan());
        }
    }
    let n = diags.len();
    eprintln!("{n} error{} found; nothing was changed", if n == 1 { "" } else { "s" });
}
