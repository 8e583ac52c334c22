//! A program a test needs from one of Debian's packages: found on PATH (or named by an
//! environment variable), else installed with apt-get when running as root, once per process.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Mutex;

static FOUND: Mutex<Option<HashMap<String, Result<String, String>>>> = Mutex::new(None);

/// What to look for and where it comes from.
pub struct Program<'a> {
    /// The command, as on PATH (`etcd`, `chromium`).
    pub bin: &'a str,
    /// An environment variable that names the binary instead (`CROSSLINK_ETCD`).
    pub env: &'a str,
    /// The Debian package that has it (`etcd-server`, `chromium`).
    pub package: &'a str,
    /// Run after a fresh install (the etcd package starts a system etcd the tests do not want).
    pub after_install: fn(),
}

fn runs(bin: &str) -> bool {
    Command::new(bin).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// The program's binary, installing its package if needed; the answer is remembered.
pub fn find_or_install(p: &Program<'_>) -> Result<String, String> {
    let mut guard = FOUND.lock().unwrap_or_else(|e| e.into_inner());
    let found = guard.get_or_insert_with(HashMap::new);
    if let Some(r) = found.get(p.bin) {
        return r.clone();
    }
    let r = locate(p);
    found.insert(p.bin.to_string(), r.clone());
    r
}

fn locate(p: &Program<'_>) -> Result<String, String> {
    if let Ok(bin) = std::env::var(p.env) {
        return if runs(&bin) { Ok(bin) } else { Err(format!("{}={bin} does not run", p.env)) };
    }
    if runs(p.bin) {
        return Ok(p.bin.into());
    }
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        return Err(format!(
            "{} is not installed and installing it needs root: apt-get install -y {} (or set {})",
            p.bin, p.package, p.env
        ));
    }
    eprintln!("testkit: installing {} with apt-get", p.package);
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends", p.package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        let _ = Command::new("apt-get").args(["update", "-q"]).stdout(Stdio::null()).status();
        if !install() {
            return Err(format!("apt-get could not install {}: are Debian's mirrors reachable?", p.package));
        }
    }
    (p.after_install)();
    if runs(p.bin) { Ok(p.bin.into()) } else { Err(format!("{} installed, but `{}` does not run", p.package, p.bin)) }
}

/// Debian's Chromium, for tests that look at the status page in a real browser.
pub fn chromium() -> Result<String, String> {
    find_or_install(&Program { bin: "chromium", env: "CROSSLINK_CHROMIUM", package: "chromium", after_install: || {} })
}
