//! A real etcd cluster on loopback for the coordination tests: `etcd` from Debian's
//! `etcd-server` package (installed with apt-get when missing and running as root), each member
//! on free ports with its own data directory, stopped (SIGKILL) when dropped.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// The etcd binary, installing Debian's `etcd-server` if it is not on PATH.
pub fn etcd_binary() -> Result<String, String> {
    crate::apt::find_or_install(&crate::apt::Program {
        bin: "etcd",
        env: "CROSSLINK_ETCD",
        package: "etcd-server",
        // The package starts a system etcd on the default ports; the tests use their own.
        after_install: || {
            let _ =
                Command::new("sh").args(["-c", "systemctl stop etcd 2>/dev/null; pkill -x etcd 2>/dev/null"]).status();
        },
    })
}

struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

/// A cluster of `n` members on 127.0.0.1.
pub struct EtcdCluster {
    bin: String,
    dir: PathBuf,
    members: Vec<Member>,
    initial_cluster: String,
}

impl EtcdCluster {
    /// Starts the members and waits until the cluster has a leader. Panics with the reason when
    /// that is impossible (a test that needs etcd must not pass without one).
    pub fn start(n: usize) -> EtcdCluster {
        Self::try_start(n).unwrap_or_else(|e| panic!("cannot start an etcd cluster: {e}"))
    }

    pub fn try_start(n: usize) -> Result<EtcdCluster, String> {
        let bin = etcd_binary()?;
        let dir = std::env::temp_dir().join(format!(
            "crosslink-etcd-{}-{}",
            std::process::id(),
            free_port().map_err(|e| e.to_string())?
        ));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut members = Vec::new();
        for i in 0..n {
            members.push(Member {
                name: format!("m{i}"),
                client_port: free_port().map_err(|e| e.to_string())?,
                peer_port: free_port().map_err(|e| e.to_string())?,
                child: None,
            });
        }
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut c = EtcdCluster { bin, dir, members, initial_cluster };
        for i in 0..n {
            c.spawn(i, "new")?;
        }
        c.wait_healthy(Duration::from_secs(30))?;
        Ok(c)
    }

    fn spawn(&mut self, i: usize, state: &str) -> Result<(), String> {
        let m = &self.members[i];
        let data = self.dir.join(&m.name);
        let log = std::fs::File::create(self.dir.join(format!("{}.log", m.name))).map_err(|e| e.to_string())?;
        let client = format!("http://127.0.0.1:{}", m.client_port);
        let peer = format!("http://127.0.0.1:{}", m.peer_port);
        let child = Command::new(&self.bin)
            .args(["--name", &m.name, "--data-dir"])
            .arg(&data)
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &self.initial_cluster, "--initial-cluster-state", state])
            .args(["--initial-cluster-token", "crosslink-test"])
            // Quick elections on loopback.
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .env_remove("ETCD_UNSUPPORTED_ARCH")
            // Its own process group: a Ctrl-C in the demo's terminal must not stop etcd before
            // the daemons have released their leases (it is killed when dropped).
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.bin))?;
        self.members[i].child = Some(child);
        Ok(())
    }

    /// The client URLs of every member (stopped ones included: clients must cope).
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| format!("http://127.0.0.1:{}", m.client_port)).collect()
    }

    pub fn endpoint(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.members[i].client_port)
    }

    /// Stops member `i` at once (SIGKILL).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts a stopped member again with its data.
    pub fn restart(&mut self, i: usize) -> Result<(), String> {
        self.spawn(i, "existing")
    }

    /// Waits until a running member reports itself healthy (the cluster has a leader).
    pub fn wait_healthy(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            for (i, m) in self.members.iter().enumerate() {
                if m.child.is_none() {
                    continue;
                }
                let url = format!("http://127.0.0.1:{}/health", m.client_port);
                if let Ok(r) = crate::http::get(&url)
                    && r.body.contains("\"health\":\"true\"")
                {
                    let _ = i;
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let logs: Vec<String> = self
            .members
            .iter()
            .map(|m| {
                let log = std::fs::read_to_string(self.dir.join(format!("{}.log", m.name))).unwrap_or_default();
                format!("{}: {}", m.name, log.lines().rev().take(3).collect::<Vec<_>>().join(" | "))
            })
            .collect();
        Err(format!("etcd cluster not healthy within {timeout:?}: {}", logs.join("; ")))
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
