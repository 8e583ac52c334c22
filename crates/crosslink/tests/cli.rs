//! The command line as a user runs it: exit codes and exact messages (golden files).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn crosslink(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crosslink"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env_remove("CROSSLINK_DESIRED_STATE")
        .output()
        .expect("run crosslink")
}

#[test]
fn examples_are_valid() {
    let out = crosslink(&["validate", "manifests/examples"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.trim(), "valid: 4 accounts, 1 gateway, 4 links (5 routes, 8 targets) from 5 files");
}

/// Every file in manifests/invalid/ fails with exactly the message in its `.expected` file.
/// `UPDATE_GOLDEN=1 cargo test -p crosslink --test cli` rewrites them (review the diff).
#[test]
fn invalid_manifests_fail_with_their_golden_message() {
    let dir = root().join("manifests/invalid");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 25, "only {} invalid cases", cases.len());
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for case in &cases {
        let rel = case.strip_prefix(root()).unwrap().to_str().unwrap().to_string();
        let out = crosslink(&["validate", &rel]);
        let stderr = String::from_utf8(out.stderr).unwrap();
        let golden = case.with_extension("expected");
        if update {
            std::fs::write(&golden, &stderr).unwrap();
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_else(|_| panic!("{} has no golden file", rel));
        if out.status.code() != Some(1) {
            failures.push(format!("{rel}: exit {:?}, expected 1", out.status.code()));
        } else if stderr != expected {
            failures.push(format!("{rel}:\n--- expected\n{expected}--- actual\n{stderr}"));
        }
        assert!(out.stdout.is_empty(), "{rel}: printed to stdout");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn validate_json_output_lists_every_error() {
    let out = crosslink(&["validate", "-o", "json", "manifests/invalid/many-errors-in-one-document.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 3);
    assert_eq!(errors[1]["field"], "spec.targets[0].ip");
    assert_eq!(errors[1]["line"], 39);
}

#[test]
fn missing_path_is_an_error() {
    let out = crosslink(&["validate", "does/not/exist"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does/not/exist: cannot read"));
}

/// The schema checked in for editors is the one the binary generates.
#[test]
fn checked_in_schema_is_current() {
    let out = crosslink(&["schema"]);
    assert_eq!(out.status.code(), Some(0));
    let generated = String::from_utf8(out.stdout).unwrap();
    let path = root().join("docs/crosslink.schema.json");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        generated == checked_in,
        "docs/crosslink.schema.json is stale: run `cargo run -p crosslink -- schema > docs/crosslink.schema.json`"
    );
}

#[test]
fn every_example_carries_the_schema_modeline() {
    let mut stack = vec![root().join("manifests/examples")];
    let mut seen = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let text = std::fs::read_to_string(&p).unwrap();
                let first = text.lines().next().unwrap_or_default();
                assert!(first.starts_with("# yaml-language-server: $schema="), "{}", p.display());
                let target = p.parent().unwrap().join(first.split('=').nth(1).unwrap());
                assert!(target.exists(), "{}: modeline points to {}", p.display(), target.display());
                seen += 1;
            }
        }
    }
    assert!(seen >= 5);
}
