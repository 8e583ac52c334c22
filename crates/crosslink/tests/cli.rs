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
    assert_eq!(stdout.trim(), "valid: 4 accounts, 1 gateway, 5 links (6 routes, 9 targets), 2 consumers from 7 files");
}

/// Every file in manifests/invalid/, and every directory there (a desired state of several
/// files), fails with exactly the message in its `.expected` file.
/// `UPDATE_GOLDEN=1 cargo test -p crosslink --test cli` rewrites them (review the diff).
#[test]
fn invalid_manifests_fail_with_their_golden_message() {
    let dir = root().join("manifests/invalid");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "yaml"))
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

// ---- bad input: bounded memory and time, a clear error -----------------------------------------

/// Peak resident memory a `validate` of bad input may reach: the 64 MiB goal. The worst case
/// measured is about 41 MiB, with crosslink's node budget of 100,000 per file (serde-saphyr's
/// default of 250,000 let a 1 KiB billion-laughs document reach 72 MiB); see
/// docs/reliability.md.
const MAX_RSS_KIB: i64 = 64 * 1024;
/// A hang guard only: real runs take milliseconds.
const HANG_GUARD: std::time::Duration = std::time::Duration::from_secs(30);

struct Measured {
    code: Option<i32>,
    stderr: String,
    /// Peak resident set (VmHWM), from wait4's rusage.
    max_rss_kib: i64,
    took: std::time::Duration,
}

/// Set in the environment of this test binary when it runs as the small parent of a measured
/// crosslink: the arguments, separated by `\x1f`.
const MEASURE_ARGS: &str = "CROSSLINK_TEST_MEASURE_ARGS";
/// Where that parent writes crosslink's stderr.
const MEASURE_STDERR: &str = "CROSSLINK_TEST_MEASURE_STDERR";

/// Runs crosslink with `args` and measures it. Linux charges a child the peak memory of the
/// process that spawned it (exec records the old address space's high-water mark), so the child
/// is spawned from a fresh, small copy of this test binary rather than from this big one.
fn measured(args: &[&str]) -> Measured {
    let out_file = std::env::temp_dir().join(format!(
        "crosslink-measure-{}-{}.stderr",
        std::process::id(),
        MEASURE_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "measure_peak_memory_of_a_child", "--nocapture", "--test-threads", "1"])
        .env(MEASURE_ARGS, args.join("\x1f"))
        .env(MEASURE_STDERR, &out_file)
        .current_dir(root())
        .output()
        .expect("run the measuring parent");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("MEASURED "))
        .unwrap_or_else(|| panic!("the measuring parent said: {text}{}", String::from_utf8_lossy(&out.stderr)));
    let field = |k: &str| -> i64 {
        line.split(' ').find_map(|f| f.strip_prefix(&format!("{k}="))).and_then(|v| v.parse().ok()).unwrap_or(-1)
    };
    let stderr = std::fs::read_to_string(&out_file).unwrap_or_default();
    let _ = std::fs::remove_file(&out_file);
    Measured {
        code: Some(field("code")).filter(|c| *c >= 0).map(|c| c as i32),
        stderr,
        max_rss_kib: field("rss"),
        took: std::time::Duration::from_micros(field("micros") as u64),
    }
}

static MEASURE_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Runs the binary with `args` from this process, reaping it with wait4(2) to read its peak
/// memory; kills it after [`HANG_GUARD`].
#[allow(clippy::zombie_processes)] // reaped by wait4, which std's `wait` cannot replace here
fn measured_here(args: &[&str], stderr: &Path) -> Measured {
    let start = std::time::Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_crosslink"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("CROSSLINK_DESIRED_STATE")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(stderr).unwrap())
        .spawn()
        .expect("run crosslink");
    let pid = child.id() as libc::pid_t;
    let (status, usage) = loop {
        let mut status = 0;
        // SAFETY: wait4 on our own child with valid out-pointers.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break (status, usage);
        }
        assert!(r == 0, "wait4: {}", std::io::Error::last_os_error());
        if start.elapsed() > HANG_GUARD {
            let _ = child.kill();
            let _ = child.wait();
            panic!("crosslink {args:?} still running after {HANG_GUARD:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    };
    let took = start.elapsed();
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    Measured { code, stderr: String::new(), max_rss_kib: usage.ru_maxrss, took }
}

/// Run by `measured` in a fresh copy of this binary. Run as a plain test, it checks the
/// measurement itself: a trivial command stays far below the bound, the parent's own memory
/// not counted.
#[test]
fn measure_peak_memory_of_a_child() {
    match std::env::var(MEASURE_ARGS) {
        Ok(args) => {
            let args: Vec<&str> = args.split('\x1f').collect();
            let stderr = PathBuf::from(std::env::var(MEASURE_STDERR).unwrap());
            let m = measured_here(&args, &stderr);
            println!("\nMEASURED code={} rss={} micros={}", m.code.unwrap_or(-1), m.max_rss_kib, m.took.as_micros());
        }
        Err(_) => {
            // Make this process big first: a child measured from here must not be charged for it.
            let ballast = vec![1u8; 200 << 20];
            let m = measured(&["schema"]);
            assert_eq!(m.code, Some(0));
            assert!(m.max_rss_kib > 0 && m.max_rss_kib < 32 * 1024, "crosslink schema: {} KiB", m.max_rss_kib);
            assert!(ballast.iter().step_by(4096).all(|b| *b == 1));
        }
    }
}

/// Every golden case, measured: exit 1, bounded memory, the error names the file and a line.
#[test]
fn every_invalid_case_fails_fast_in_bounded_memory() {
    let dir = root().join("manifests/invalid");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 61, "only {} invalid cases", cases.len());
    let (mut worst_rss, mut worst_time, mut total) = (0, std::time::Duration::ZERO, std::time::Duration::ZERO);
    for case in &cases {
        let rel = case.strip_prefix(root()).unwrap().to_str().unwrap().to_string();
        let m = measured(&["validate", &rel]);
        assert_eq!(m.code, Some(1), "{rel}: {}", m.stderr);
        assert!(m.max_rss_kib < MAX_RSS_KIB, "{rel}: peak memory {} KiB", m.max_rss_kib);
        let line = m.stderr.lines().next().unwrap_or_default();
        assert!(line.starts_with(&format!("error: {rel}:")), "{rel}: the error does not name the file: {line}");
        worst_rss = worst_rss.max(m.max_rss_kib);
        worst_time = worst_time.max(m.took);
        total += m.took;
    }
    eprintln!(
        "cli: {} golden invalid cases: all exit 1; peak memory at most {} KiB; slowest {:.0} ms, {:.0} ms in all",
        cases.len(),
        worst_rss,
        worst_time.as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3
    );
}

/// Cases that cannot be one checked-in file: generated here, each with its expected error.
#[test]
fn generated_hostile_inputs_fail_fast_in_bounded_memory() {
    use std::fmt::Write as _;
    let base = crosslink_testkit::scratch_dir("hostile");
    let valid = std::fs::read_to_string(root().join("manifests/examples/accounts.yaml")).unwrap();
    let mut cases: Vec<(&str, PathBuf, &str)> = Vec::new();
    let file = |name: &str, bytes: &[u8]| -> PathBuf {
        let d = base.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("state.yaml"), bytes).unwrap();
        d
    };

    // Just over the 4 MiB limit: refused before it is read.
    let mut big = valid.clone();
    while big.len() <= 4 * 1024 * 1024 {
        big.push_str("# padding padding padding padding padding padding padding padding padding\n");
    }
    cases.push(("over-4-mib", file("over-4-mib", big.as_bytes()), "at most 4194304 are read"));
    // Just under it: 4 MiB of tiny documents (one mapping each) is read, in bounded memory.
    let mut many = String::new();
    while many.len() < 4 * 1024 * 1024 - 64 {
        many.push_str("---\n{a: 1}\n");
    }
    cases.push(("4-mib-of-documents", file("4-mib-of-documents", many.as_bytes()), "error:"));
    // One 4 MiB line.
    let mut long =
        format!("apiVersion: crosslink.dev/v1alpha1\nkind: Link\nmetadata: {{name: {}}}\n", "a".repeat(4 << 20));
    long.truncate((4 << 20) - 1);
    cases.push(("4-mib-line", file("4-mib-line", long.as_bytes()), "error:"));
    // Not UTF-8 (Latin-1), on line 5.
    let mut latin1 = valid.as_bytes()[..valid.find("---").unwrap()].to_vec();
    latin1.extend_from_slice(b"---\n# caf\xe9\n");
    let lines = latin1.iter().filter(|b| **b == b'\n').count();
    cases.push(("not-utf8", file("not-utf8", &latin1), "the file is not UTF-8"));
    // UTF-16 with a byte-order mark, as some editors save.
    let utf16: Vec<u8> = [0xFF, 0xFE].into_iter().chain(valid.encode_utf16().flat_map(u16::to_le_bytes)).collect();
    cases.push(("utf16", file("utf16", &utf16), "error:"));
    // Deep nesting: flow (a million brackets), block (ten thousand indented levels).
    let flow = format!("{}{}", "[".repeat(1 << 20), "]".repeat(1 << 20));
    cases.push(("flow-nested-1m", file("flow-nested-1m", flow.as_bytes()), "invalid YAML"));
    let mut block = String::new();
    for i in 0..2_000 {
        let _ = writeln!(block, "{}k{i}:", " ".repeat(i));
    }
    cases.push(("block-nested-2k", file("block-nested-2k", block.as_bytes()), "invalid YAML"));
    // Aliases: a billion laughs twelve levels deep, and a long chain of aliased mappings.
    let mut laughs = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..12 {
        let p = i - 1;
        let _ = writeln!(laughs, "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]");
    }
    cases.push(("billion-laughs-12", file("billion-laughs-12", laughs.as_bytes()), "invalid YAML"));
    let mut chain = String::from("k0: &k0 {x: 1}\n");
    for i in 1..50_000 {
        let _ = writeln!(chain, "k{i}: &k{i} {{p: *k{}}}", i - 1);
    }
    cases.push(("alias-chain-50k", file("alias-chain-50k", chain.as_bytes()), "error:"));
    // A directory that contains itself.
    let looped = base.join("symlink-loop");
    std::fs::create_dir_all(looped.join("team")).unwrap();
    std::fs::write(looped.join("accounts.yaml"), &valid).unwrap();
    std::os::unix::fs::symlink(&looped, looped.join("team/back")).unwrap();
    cases.push(("symlink-loop", looped, "a symlink loop"));
    // A dangling symlink named like desired state.
    let dangling = base.join("dangling-symlink");
    std::fs::create_dir_all(&dangling).unwrap();
    std::fs::write(dangling.join("accounts.yaml"), &valid).unwrap();
    std::os::unix::fs::symlink(base.join("nowhere.yaml"), dangling.join("links.yaml")).unwrap();
    cases.push(("dangling-symlink", dangling, "cannot read"));
    // Directories nested deeper than 32.
    let mut deep = base.join("deep-dirs");
    for i in 0..40 {
        deep = deep.join(format!("d{i}"));
    }
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("x.yaml"), &valid).unwrap();
    cases.push(("deep-dirs", base.join("deep-dirs"), "nested deeper than 32"));
    // More than 10,000 files.
    let wide = base.join("10001-files");
    std::fs::create_dir_all(&wide).unwrap();
    for i in 0..10_001 {
        std::fs::write(wide.join(format!("f{i}.yaml")), "").unwrap();
    }
    cases.push(("10001-files", wide, "at most 10000 are read"));
    let mut rows = Vec::new();
    for (name, path, expect) in &cases {
        let m = measured(&["validate", path.to_str().unwrap()]);
        let first = m.stderr.lines().next().unwrap_or_default().to_string();
        assert_eq!(m.code, Some(1), "{name}: exit {:?}: {}", m.code, m.stderr.chars().take(2000).collect::<String>());
        assert!(
            m.stderr.contains(expect),
            "{name}: expected `{expect}` in: {}",
            m.stderr.chars().take(2000).collect::<String>()
        );
        assert!(
            first.starts_with(&format!("error: {}", path.display())),
            "{name}: the error does not name the path: {first}"
        );
        assert!(m.max_rss_kib < MAX_RSS_KIB, "{name}: peak memory {} KiB", m.max_rss_kib);
        rows.push(format!(
            "{name}: {} KiB, {:.0} ms: {}",
            m.max_rss_kib,
            m.took.as_secs_f64() * 1e3,
            first.chars().take(160).collect::<String>()
        ));
    }
    // The Latin-1 byte is reported where it is.
    let m = measured(&["validate", base.join("not-utf8").to_str().unwrap()]);
    assert!(m.stderr.contains(&format!("state.yaml:{lines}:6: the file is not UTF-8")), "{}", m.stderr);
    let _ = std::fs::remove_dir_all(&base);
    eprintln!("cli: {} generated hostile inputs:\n  {}", cases.len(), rows.join("\n  "));
}

/// With the AWS endpoint unreachable, `plan` says so once per account, with what it blocks and
/// a hint about the endpoint (not the trust policy); output to a pipe carries no colour codes.
#[test]
fn an_unreachable_endpoint_is_reported_once_per_account_in_plain_text() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let run = |force_colour: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_crosslink"));
        cmd.args(["plan", "manifests/examples", "--rate-limits", "off"])
            .current_dir(root())
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .env_remove("CROSSLINK_DESIRED_STATE")
            .env_remove("AWS_PROFILE")
            .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "eu-central-1")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        if force_colour {
            cmd.env("CLICOLOR_FORCE", "1");
        }
        cmd.output().expect("run crosslink")
    };
    let out = run(false);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let unavailable: Vec<&str> = stdout.lines().filter(|l| l.contains("AccountUnavailable")).collect();
    assert_eq!(unavailable.len(), 4, "once per account:\n{stdout}");
    for account in ["shared-services", "payments", "cards", "ledger"] {
        assert_eq!(
            unavailable.iter().filter(|l| l.contains(&format!("account {account} is unavailable"))).count(),
            1,
            "{account}:\n{stdout}"
        );
    }
    assert!(stdout.contains(&format!("cannot reach the AWS endpoint http://127.0.0.1:{port}")), "{stdout}");
    assert!(stdout.contains("could not be reached: check AWS_ENDPOINT_URL"), "{stdout}");
    assert!(!stdout.contains("trust policy"), "a connection refused is not a trust-policy problem:\n{stdout}");
    assert!(stdout.contains("blocks: Gateway/edge, Link/accounts"), "{stdout}");
    assert!(stdout.contains("4 problems block changes"), "{stdout}");
    assert!(!stdout.contains('\u{1b}') && !stderr.contains('\u{1b}'), "colour codes in piped output:\n{stderr}");
    assert!(stderr.contains("WARN"), "the log says it too: {stderr}");
    // On request (as on a terminal) there is colour: the check above can see it.
    let coloured = run(true);
    assert!(String::from_utf8_lossy(&coloured.stderr).contains('\u{1b}'));
}
