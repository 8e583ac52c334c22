//! Test harness: a real `moto_server` on 127.0.0.1, installed with pip when missing, started on a
//! free port, awaited until it answers, and stopped (by PID) when dropped.
//!
//! `proxy` puts an intercepting HTTP proxy in front of it that records every AWS call and injects
//! faults. Nothing here talks to anything but loopback.

pub mod apt;
pub mod etcd;
pub mod http;
pub mod operations;
pub mod proxy;

pub use etcd::EtcdCluster;
pub use proxy::{Call, FaultKind, Faults, Proxy};

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The moto versions the project is tested against.
pub const MOTO_REQUIREMENT: &str = "moto[server]>=5.2,<5.3";
/// Static credentials moto maps to account 123456789012.
pub const ACCESS_KEY: &str = "test";
pub const SECRET_KEY: &str = "test";
pub const DEFAULT_ACCOUNT: &str = "123456789012";
pub const REGION: &str = "eu-central-1";

pub struct Moto {
    pub endpoint: String,
    pub addr: SocketAddr,
    child: Child,
    log: PathBuf,
}

static INSTALL: Mutex<Option<Result<Vec<String>, String>>> = Mutex::new(None);

/// A fresh, empty directory for a test's files, under the system's temp dir: outside this
/// project's work tree (and any other repository), wherever the build's target directory is, so
/// that what a test sees does not depend on where the build put it. Emptied first if it exists.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("crosslink-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// The command that runs moto's server, installing `moto[server]` with pip first if needed.
pub fn moto_command() -> Result<Vec<String>, String> {
    let mut guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = guard.as_ref() {
        return r.clone();
    }
    let r = find_or_install();
    *guard = Some(r.clone());
    r
}

fn python() -> String {
    std::env::var("CROSSLINK_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn server_importable() -> bool {
    // `moto.server` needs flask, which only the [server] extra brings.
    Command::new(python())
        .args(["-c", "import moto, moto.server, flask"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn find_or_install() -> Result<Vec<String>, String> {
    if !server_importable() {
        eprintln!("testkit: installing {MOTO_REQUIREMENT} with pip");
        let status = Command::new(python())
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", MOTO_REQUIREMENT])
            .status()
            .map_err(|e| format!("cannot run {} -m pip: {e}", python()))?;
        if !status.success() || !server_importable() {
            return Err(format!("pip could not install {MOTO_REQUIREMENT} ({status})"));
        }
    }
    Ok(vec![python(), "-m".into(), "moto.server".into()])
}

pub fn free_port() -> std::io::Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(l.local_addr()?.port())
}

impl Moto {
    /// Starts a fresh moto server. Panics with a clear message when that is impossible: a test
    /// that needs AWS cannot run (or be counted as passing) without it.
    pub fn start() -> Moto {
        match Self::try_start() {
            Ok(m) => m,
            Err(e) => panic!("cannot start moto_server: {e}"),
        }
    }

    pub fn try_start() -> Result<Moto, String> {
        let cmd = moto_command()?;
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port().map_err(|e| e.to_string())?;
            let log = std::env::temp_dir().join(format!("crosslink-moto-{}-{port}.log", std::process::id()));
            let file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
            let child = Command::new(&cmd[0])
                .args(&cmd[1..])
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env_remove("MOTO_ACCOUNT_ID")
                .env("MOTO_ALLOW_NONEXISTENT_REGION", "false")
                .stdin(Stdio::null())
                .stdout(file.try_clone().map_err(|e| e.to_string())?)
                .stderr(file)
                .spawn()
                .map_err(|e| format!("cannot run {}: {e}", cmd.join(" ")))?;
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let mut moto = Moto { endpoint: format!("http://{addr}"), addr, child, log };
            match moto.wait_ready(Duration::from_secs(60)) {
                Ok(()) => return Ok(moto),
                Err(e) => last = e, // Drop stops it; try another port.
            }
        }
        Err(last)
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                return Err(format!(
                    "moto_server exited ({status}): {}",
                    log.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
                ));
            }
            if self.request("GET", "/moto-api/").is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("moto_server did not answer on {} within {timeout:?}", self.addr))
    }

    /// The PID of the server process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Clears all of moto's state. Credentials from AssumeRole must be obtained again after it.
    pub fn reset(&self) {
        let r = self.request("POST", "/moto-api/reset").expect("moto reset");
        assert_eq!(r.status, 200, "moto reset answered: {r:?}");
    }

    /// A request with an empty body to the server (an answer of any status is `Ok`).
    pub fn request(&self, method: &str, path: &str) -> Result<http::Response, String> {
        http::request(method, &format!("{}{path}", self.endpoint))
    }

    /// Environment for a child process (the crosslink binary) to use this server as its AWS.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        aws_env(&self.endpoint)
    }

    /// An ACM certificate for `domain` in `account` and `region`, as a TLS listener needs one
    /// (moto's ELBv2 refuses a certificate its ACM does not hold): its ARN.
    pub fn request_certificate(&self, account: &str, region: &str, domain: &str) -> Result<String, String> {
        request_certificate(&self.endpoint, account, region, domain)
    }
}

/// ACM RequestCertificate at a moto server, in `account` (moto's `x-moto-account-id`) and
/// `region` (the credential scope; moto does not check signatures): the certificate's ARN. The
/// certificate stays PENDING_VALIDATION for a minute in moto; ELBv2 takes it at once.
pub fn request_certificate(endpoint: &str, account: &str, region: &str, domain: &str) -> Result<String, String> {
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/{region}/acm/aws4_request, SignedHeaders=host, Signature=0"
    );
    let headers = [
        ("X-Amz-Target", "CertificateManager.RequestCertificate"),
        ("Content-Type", "application/x-amz-json-1.1"),
        ("x-moto-account-id", account),
        ("Authorization", auth.as_str()),
    ];
    let body = format!(r#"{{"DomainName": "{domain}", "ValidationMethod": "DNS"}}"#);
    let r = http::post(&format!("{endpoint}/"), &headers, &body)?;
    if r.status != 200 {
        return Err(format!("RequestCertificate answered {}: {}", r.status, r.body));
    }
    // {"CertificateArn": "arn:aws:acm:..."}
    let arn = r.body.split('"').skip_while(|s| *s != "CertificateArn").nth(2);
    arn.map(str::to_string).ok_or_else(|| format!("RequestCertificate answered no ARN: {}", r.body))
}

/// The AWS environment of a child process that talks to `endpoint` with moto's static credentials
/// and nothing from the machine's own AWS configuration.
pub(crate) fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
        ("AWS_REGION", REGION.into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_CONFIG_FILE", "/dev/null".into()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
    ]
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpStream;

    use super::*;

    #[test]
    fn starts_answers_and_stops() {
        let m = Moto::start();
        let pid = m.pid();
        let r = m.request("GET", "/moto-api/").unwrap();
        assert_eq!(r.status, 200, "{r:?}");
        m.reset();
        let addr = m.addr;
        drop(m);
        assert!(
            TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err(),
            "moto (pid {pid}) still listening after drop"
        );
    }
}
