//! etcd v3 as the coordination engine, for installs outside Kubernetes.
//!
//! Each replica holds one etcd lease (TTL = the lease duration) and keeps it alive every retry
//! period. Its membership key `<prefix>/members/<replica>` and the key of every unit it owns,
//! `<prefix>/units/<unit>`, are attached to that lease: when the replica dies or is cut off,
//! etcd itself deletes them once the TTL runs out, on etcd's clock (no timestamp of ours is
//! compared with anyone's). A unit is taken with a transaction that creates its key only if it
//! does not exist (`create_revision == 0`), the primitive etcd's own election and lock recipes
//! are built on; the key's value is the holder.
//!
//! The proof of holding: a keep-alive answered with a TTL > 0 was sent at `t`, so etcd keeps
//! the lease (and the keys) until at least `t + TTL`; the coordinator stops mutating at
//! `t + renew deadline`.
//!
//! The calls go to etcd's v3 API through its JSON gateway (`/v3/kv/txn`, `/v3/lease/grant`,
//! ...), which every etcd v3.4+ member serves on its client port: the same RPCs as gRPC, without
//! protoc at build time. Endpoints are tried in turn; a member that fails is skipped until the
//! others fail too.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::{Backend, CoordError, Member, Timing};

/// gRPC status NOT_FOUND: etcd's answer for a lease that no longer exists.
const GRPC_NOT_FOUND: i64 = 5;

struct Lease {
    id: String,
    /// Send time of the last grant or keep-alive etcd confirmed.
    proven_at: Instant,
}

pub struct EtcdBackend {
    http: Client<HttpConnector, Full<Bytes>>,
    endpoints: Vec<String>,
    /// The endpoint that answered last.
    current: AtomicUsize,
    prefix: String,
    replica: String,
    timing: Timing,
    call_timeout: Duration,
    lease: Mutex<Option<Lease>>,
}

fn b64(s: &str) -> String {
    B64.encode(s.as_bytes())
}

fn unb64(v: &Value) -> Option<String> {
    B64.decode(v.as_str()?).ok().and_then(|b| String::from_utf8(b).ok())
}

/// The end of a prefix range: the prefix with its last byte incremented.
fn range_end(prefix: &str) -> String {
    let mut b = prefix.as_bytes().to_vec();
    if let Some(last) = b.last_mut() {
        *last += 1;
    }
    B64.encode(b)
}

/// etcd encodes int64 as JSON strings.
fn int(v: &Value) -> i64 {
    v.as_str().and_then(|s| s.parse().ok()).or_else(|| v.as_i64()).unwrap_or(0)
}

enum CallError {
    /// The member could not be reached or did not answer: try the next one.
    Unreachable(String),
    /// etcd answered with an error.
    Etcd { code: i64, message: String },
}

impl EtcdBackend {
    /// `endpoints`: `http://host:port` of the etcd members' client URLs. Nothing is contacted
    /// here: an etcd that is down at start is retried every round.
    pub fn new(endpoints: &[String], prefix: &str, replica: &str, timing: Timing) -> Result<EtcdBackend, CoordError> {
        if endpoints.is_empty() {
            return Err(CoordError::Engine("no etcd endpoint given (--etcd-endpoints)".into()));
        }
        for e in endpoints {
            if !e.starts_with("http://") {
                return Err(CoordError::Engine(format!(
                    "etcd endpoint {e}: only http:// URLs are supported (use a local TLS proxy or an mTLS sidecar for https)"
                )));
            }
        }
        let call_timeout = timing.retry_period.clamp(Duration::from_millis(500), Duration::from_secs(5));
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(call_timeout));
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector);
        Ok(EtcdBackend {
            http,
            endpoints: endpoints.iter().map(|e| e.trim_end_matches('/').to_string()).collect(),
            current: AtomicUsize::new(0),
            prefix: prefix.trim_end_matches('/').to_string(),
            replica: replica.to_string(),
            timing,
            call_timeout,
            lease: Mutex::new(None),
        })
    }

    fn unit_key(&self, unit: &str) -> String {
        format!("{}/units/{unit}", self.prefix)
    }

    fn member_key(&self) -> String {
        format!("{}/members/{}", self.prefix, self.replica)
    }

    async fn post_to(&self, endpoint: &str, path: &str, body: &Value) -> Result<Value, CallError> {
        let req = hyper::Request::post(format!("{endpoint}{path}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| CallError::Unreachable(e.to_string()))?;
        let call = async {
            let resp = self.http.request(req).await.map_err(|e| CallError::Unreachable(format!("{e}")))?;
            let status = resp.status();
            let bytes = resp.into_body().collect().await.map_err(|e| CallError::Unreachable(e.to_string()))?.to_bytes();
            let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
                CallError::Unreachable(format!("HTTP {status}: not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
            })?;
            if let Some(code) = v.get("code").and_then(Value::as_i64)
                && code != 0
            {
                let message = v.get("message").and_then(Value::as_str).unwrap_or("").to_string();
                // UNAVAILABLE / DEADLINE_EXCEEDED: e.g. a member without quorum.
                if matches!(code, 4 | 14) {
                    return Err(CallError::Unreachable(message));
                }
                return Err(CallError::Etcd { code, message });
            }
            if !status.is_success() {
                return Err(CallError::Unreachable(format!("HTTP {status}")));
            }
            Ok(v)
        };
        match tokio::time::timeout(self.call_timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(CallError::Unreachable(format!("no answer within {:?}", self.call_timeout))),
        }
    }

    /// One RPC, on the member that answered last, then on the others.
    async fn call(&self, what: &str, path: &str, body: Value) -> Result<Value, CallError> {
        let n = self.endpoints.len();
        let start = self.current.load(Ordering::Relaxed);
        let mut errors = Vec::new();
        for i in 0..n {
            let idx = (start + i) % n;
            match self.post_to(&self.endpoints[idx], path, &body).await {
                Ok(v) => {
                    if idx != start {
                        info!(endpoint = %self.endpoints[idx], "etcd: switched to another member");
                        self.current.store(idx, Ordering::Relaxed);
                    }
                    return Ok(v);
                }
                Err(CallError::Unreachable(e)) => errors.push(format!("{}: {e}", self.endpoints[idx])),
                Err(e @ CallError::Etcd { .. }) => return Err(e),
            }
        }
        Err(CallError::Unreachable(format!("{what}: no etcd member answered ({})", errors.join("; "))))
    }

    async fn rpc(&self, what: &str, path: &str, body: Value) -> Result<Value, CoordError> {
        self.call(what, path, body).await.map_err(|e| match e {
            CallError::Unreachable(m) => CoordError::Unavailable(m),
            CallError::Etcd { code, message } => CoordError::Engine(format!("{what}: etcd error {code}: {message}")),
        })
    }

    async fn grant(&self) -> Result<Lease, CoordError> {
        let ttl = self.timing.lease_duration.as_secs().max(1);
        let sent = Instant::now();
        let v = self.rpc("granting a lease", "/v3/lease/grant", json!({ "TTL": ttl })).await?;
        let id = v
            .get("ID")
            .map(int)
            .filter(|id| *id != 0)
            .ok_or_else(|| CoordError::Engine(format!("granting a lease: no lease id in the answer: {v}")))?;
        info!(lease = format!("{id:x}"), ttl, "etcd lease granted");
        Ok(Lease { id: id.to_string(), proven_at: sent })
    }

    /// `Ok(false)`: etcd no longer knows the lease (it expired).
    async fn keep_alive(&self, id: &str) -> Result<bool, CoordError> {
        let v = self.rpc("renewing the lease", "/v3/lease/keepalive", json!({ "ID": id })).await?;
        let ttl = v.get("result").and_then(|r| r.get("TTL")).map(int).unwrap_or(0);
        Ok(ttl > 0)
    }

    async fn range(&self, what: &str, prefix: &str) -> Result<Vec<(String, String, String)>, CoordError> {
        let v = self.rpc(what, "/v3/kv/range", json!({ "key": b64(prefix), "range_end": range_end(prefix) })).await?;
        Ok(kvs(&v))
    }
}

/// (key, value, lease) of a range answer.
fn kvs(v: &Value) -> Vec<(String, String, String)> {
    v.get("kvs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|kv| {
                    let lease = kv.get("lease").map(int).unwrap_or(0).to_string();
                    Some((unb64(kv.get("key")?)?, kv.get("value").and_then(unb64).unwrap_or_default(), lease))
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Backend for EtcdBackend {
    fn describe(&self) -> String {
        format!("etcd {} {}", self.endpoints.join(","), self.prefix)
    }

    async fn heartbeat(&self, revision: &str, pruning: Option<u64>) -> Result<Vec<Member>, CoordError> {
        {
            let mut guard = self.lease.lock().await;
            let alive = match guard.as_mut() {
                Some(l) => {
                    let sent = Instant::now();
                    let alive = self.keep_alive(&l.id).await?;
                    if alive {
                        l.proven_at = sent;
                    }
                    alive
                }
                None => false,
            };
            if !alive {
                if guard.is_some() {
                    warn!("etcd lease expired: every unit held on it is gone; registering again");
                }
                *guard = Some(self.grant().await?);
            }
            let id = guard.as_ref().map(|l| l.id.clone()).expect("granted");
            let value = json!({ "replica": self.replica, "revision": revision, "pruning": pruning }).to_string();
            let put = json!({ "key": b64(&self.member_key()), "value": b64(&value), "lease": id });
            match self.rpc("registering membership", "/v3/kv/put", put).await {
                Ok(_) => {}
                Err(e) => {
                    // The lease vanished between keep-alive and put: start over next round.
                    if e.to_string().contains("lease not found") {
                        *guard = None;
                    }
                    return Err(e);
                }
            }
        }
        let members = self.range("listing members", &format!("{}/members/", self.prefix)).await?;
        Ok(members
            .into_iter()
            .map(|(_, v, _)| match serde_json::from_str::<Value>(&v) {
                Ok(j) => Member {
                    replica: j.get("replica").and_then(Value::as_str).unwrap_or_default().to_string(),
                    revision: j.get("revision").and_then(Value::as_str).unwrap_or_default().to_string(),
                    pruning: j.get("pruning").and_then(Value::as_u64),
                },
                Err(_) => Member { replica: v, revision: String::new(), pruning: None },
            })
            .collect())
    }

    async fn holders(&self) -> Result<BTreeMap<String, String>, CoordError> {
        let prefix = format!("{}/units/", self.prefix);
        let units = self.range("listing unit leases", &prefix).await?;
        Ok(units.into_iter().filter_map(|(k, v, _)| Some((k.strip_prefix(&prefix)?.to_string(), v))).collect())
    }

    async fn acquire(&self, unit: &str) -> Result<Option<Instant>, CoordError> {
        let Some((id, proven_at)) = self.lease.lock().await.as_ref().map(|l| (l.id.clone(), l.proven_at)) else {
            return Ok(None);
        };
        let key = b64(&self.unit_key(unit));
        let txn = json!({
            "compare": [{ "target": "CREATE", "key": key, "create_revision": "0", "result": "EQUAL" }],
            "success": [{ "request_put": { "key": key, "value": b64(&self.replica), "lease": id } }],
            "failure": [{ "request_range": { "key": key } }],
        });
        let v = match self.call("taking a unit lease", "/v3/kv/txn", txn).await {
            Ok(v) => v,
            Err(CallError::Etcd { code: GRPC_NOT_FOUND, .. }) => {
                // Our lease expired: nothing is held on it any more.
                *self.lease.lock().await = None;
                return Ok(None);
            }
            Err(CallError::Etcd { code, message }) => {
                return Err(CoordError::Engine(format!("taking a unit lease: etcd error {code}: {message}")));
            }
            Err(CallError::Unreachable(m)) => return Err(CoordError::Unavailable(m)),
        };
        if v.get("succeeded").and_then(Value::as_bool).unwrap_or(false) {
            return Ok(Some(proven_at));
        }
        // Someone holds it: us (a renewal: the key lives on our lease) or another replica.
        let held = v
            .get("responses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| r.get("response_range"))
            .flat_map(kvs)
            .any(|(_, value, lease)| lease == id && value == self.replica);
        Ok(held.then_some(proven_at))
    }

    async fn release(&self, unit: &str) -> Result<(), CoordError> {
        let key = b64(&self.unit_key(unit));
        let txn = json!({
            "compare": [{ "target": "VALUE", "key": key, "value": b64(&self.replica), "result": "EQUAL" }],
            "success": [{ "request_delete_range": { "key": key } }],
        });
        self.rpc("releasing a unit lease", "/v3/kv/txn", txn).await?;
        Ok(())
    }

    async fn resign(&self) -> Result<(), CoordError> {
        let Some(l) = self.lease.lock().await.take() else { return Ok(()) };
        // Revoking the lease deletes the member key and every unit key at once.
        match self.rpc("revoking the lease", "/v3/lease/revoke", json!({ "ID": l.id })).await {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("lease not found") => Ok(()),
            Err(e) => Err(e),
        }
    }
}
