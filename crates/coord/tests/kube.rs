//! The Kubernetes backend over real HTTP against a scripted API server on 127.0.0.1: the Lease
//! endpoints of `coordination.k8s.io/v1` with resourceVersion preconditions, a request log, and
//! scripted faults (error statuses, hangs, delays). Real time with a 2 s lease duration: expiry
//! is judged on the backend's own monotonic clock, which is what these tests check.
#![cfg(feature = "kubernetes")]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crosslink_coord::kube::KubeBackend;
use crosslink_coord::{Backend, CoordError, Coordinator, Ownership, Timing, preferred};

const NS: &str = "crosslink-system";
const PREFIX: &str = "/apis/coordination.k8s.io/v1/namespaces/";

fn timing() -> Timing {
    Timing {
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_secs(1),
        retry_period: Duration::from_millis(200),
    }
}

/// What the server does instead of answering normally.
#[derive(Clone, Debug)]
enum Fault {
    /// Answers with this status code (a metav1 Status body with this reason and message).
    Status(u16, &'static str, &'static str),
    /// Never answers.
    Hang,
    /// Waits, then answers normally.
    Delay(Duration),
}

#[derive(Debug)]
struct Scripted {
    method: Option<Method>,
    times: usize,
    fault: Fault,
}

#[derive(Clone, Debug)]
struct Recorded {
    method: Method,
    path: String,
    /// The `labelSelector` query parameter, decoded.
    selector: Option<String>,
    body: Option<Value>,
    status: u16,
}

#[derive(Debug, Default)]
struct Store {
    /// (namespace, name) -> Lease.
    leases: BTreeMap<(String, String), Value>,
    /// The cluster-wide resourceVersion, incremented on every write.
    rv: u64,
    requests: Vec<Recorded>,
    script: Vec<Scripted>,
}

#[derive(Clone, Debug)]
struct FakeApi {
    store: Arc<Mutex<Store>>,
    addr: SocketAddr,
}

impl FakeApi {
    async fn start() -> FakeApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let api = FakeApi { store: Arc::default(), addr };
        let app = Router::new().fallback(handle).with_state(api.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        api
    }

    fn client(&self) -> kube::Client {
        let mut config = kube::Config::new(format!("http://{}", self.addr).parse().unwrap());
        config.default_namespace = NS.to_string();
        kube::Client::try_from(config).unwrap()
    }

    fn backend(&self, replica: &str) -> KubeBackend {
        KubeBackend::new(self.client(), NS, "prod", replica, timing())
    }

    /// The next `times` requests (with this method, if given) fail with `fault`.
    fn script(&self, method: Option<Method>, times: usize, fault: Fault) {
        self.store.lock().unwrap().script.push(Scripted { method, times, fault });
    }

    fn lease(&self, name: &str) -> Option<Value> {
        self.store.lock().unwrap().leases.get(&(NS.to_string(), name.to_string())).cloned()
    }

    /// Stores a Lease as another client would have written it.
    fn put_lease(&self, mut lease: Value) {
        let mut s = self.store.lock().unwrap();
        s.rv += 1;
        lease["metadata"]["resourceVersion"] = json!(s.rv.to_string());
        lease["metadata"]["namespace"] = json!(NS);
        let name = lease["metadata"]["name"].as_str().unwrap().to_string();
        s.leases.insert((NS.to_string(), name), lease);
    }

    /// The requests served since the last call.
    fn take_requests(&self) -> Vec<Recorded> {
        std::mem::take(&mut self.store.lock().unwrap().requests)
    }
}

fn summary(requests: &[Recorded]) -> Vec<String> {
    requests.iter().map(|r| format!("{} {} {}", r.method, r.path.trim_start_matches(PREFIX), r.status)).collect()
}

fn status(code: u16, reason: &str, message: &str, name: &str) -> Response {
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": if code < 400 { "Success" } else { "Failure" },
        "message": message,
        "reason": reason,
        "details": {"name": name, "group": "coordination.k8s.io", "kind": "leases"},
        "code": code,
    });
    json_response(code, body)
}

fn json_response(code: u16, body: Value) -> Response {
    (StatusCode::from_u16(code).unwrap(), [("content-type", "application/json")], body.to_string()).into_response()
}

fn matches_selector(lease: &Value, selector: Option<&String>) -> bool {
    let Some(selector) = selector else { return true };
    selector.split(',').filter(|s| !s.is_empty()).all(|req| {
        let (k, v) = req.split_once("==").or_else(|| req.split_once('=')).expect("equality selector");
        lease["metadata"]["labels"][k.trim()].as_str() == Some(v.trim())
    })
}

async fn handle(State(api): State<FakeApi>, method: Method, uri: Uri, body: Bytes) -> Response {
    let path = uri.path().to_string();
    let body: Option<Value> = serde_json::from_slice(&body).ok();
    let fault = {
        let mut s = api.store.lock().unwrap();
        let found = s.script.iter().position(|f| f.method.as_ref().is_none_or(|m| *m == method));
        found.map(|i| {
            let fault = s.script[i].fault.clone();
            s.script[i].times -= 1;
            if s.script[i].times == 0 {
                s.script.remove(i);
            }
            fault
        })
    };
    let response = match fault {
        Some(Fault::Status(code, reason, message)) => status(code, reason, message, ""),
        Some(Fault::Hang) => std::future::pending().await,
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(d).await;
            serve(&api, &method, &uri, body.clone())
        }
        None => serve(&api, &method, &uri, body.clone()),
    };
    let query: HashMap<String, String> = Query::try_from_uri(&uri).map(|q| q.0).unwrap_or_default();
    let selector = query.get("labelSelector").cloned();
    let recorded = Recorded { method, path, selector, body, status: response.status().as_u16() };
    api.store.lock().unwrap().requests.push(recorded);
    response
}

/// The Lease endpoints, with the API server's optimistic concurrency.
fn serve(api: &FakeApi, method: &Method, uri: &Uri, body: Option<Value>) -> Response {
    let Some(rest) = uri.path().strip_prefix(PREFIX) else {
        return status(404, "NotFound", "the server could not find the requested resource", "");
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let mut s = api.store.lock().unwrap();
    match (method.clone(), parts.as_slice()) {
        (Method::GET, [ns, "leases"]) => {
            let query: HashMap<String, String> = Query::try_from_uri(uri).map(|q| q.0).unwrap_or_default();
            let items: Vec<Value> = s
                .leases
                .iter()
                .filter(|((n, _), l)| n == ns && matches_selector(l, query.get("labelSelector")))
                .map(|(_, l)| l.clone())
                .collect();
            json_response(
                200,
                json!({
                    "kind": "LeaseList",
                    "apiVersion": "coordination.k8s.io/v1",
                    "metadata": {"resourceVersion": s.rv.to_string()},
                    "items": items,
                }),
            )
        }
        (Method::POST, [ns, "leases"]) => {
            let mut lease = body.expect("a Lease body");
            let name = lease["metadata"]["name"].as_str().expect("a name").to_string();
            let key = (ns.to_string(), name.clone());
            if s.leases.contains_key(&key) {
                let message = format!("leases.coordination.k8s.io \"{name}\" already exists");
                return status(409, "AlreadyExists", &message, &name);
            }
            s.rv += 1;
            lease["apiVersion"] = json!("coordination.k8s.io/v1");
            lease["kind"] = json!("Lease");
            lease["metadata"]["namespace"] = json!(ns);
            lease["metadata"]["resourceVersion"] = json!(s.rv.to_string());
            lease["metadata"]["uid"] = json!(format!("uid-{}", s.rv));
            lease["metadata"]["creationTimestamp"] = json!("2025-01-01T00:00:00Z");
            s.leases.insert(key, lease.clone());
            json_response(201, lease)
        }
        (Method::GET, [ns, "leases", name]) => match s.leases.get(&(ns.to_string(), name.to_string())) {
            Some(l) => json_response(200, l.clone()),
            None => status(404, "NotFound", &format!("leases.coordination.k8s.io \"{name}\" not found"), name),
        },
        (Method::PUT, [ns, "leases", name]) => {
            let key = (ns.to_string(), name.to_string());
            let Some(stored) = s.leases.get(&key).cloned() else {
                return status(404, "NotFound", &format!("leases.coordination.k8s.io \"{name}\" not found"), name);
            };
            let mut lease = body.expect("a Lease body");
            let sent_rv = lease["metadata"]["resourceVersion"].as_str().map(str::to_string);
            if sent_rv.is_some() && sent_rv.as_deref() != stored["metadata"]["resourceVersion"].as_str() {
                let message = format!(
                    "Operation cannot be fulfilled on leases.coordination.k8s.io \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
                );
                return status(409, "Conflict", &message, name);
            }
            s.rv += 1;
            lease["metadata"]["resourceVersion"] = json!(s.rv.to_string());
            lease["metadata"]["uid"] = stored["metadata"]["uid"].clone();
            lease["metadata"]["creationTimestamp"] = stored["metadata"]["creationTimestamp"].clone();
            s.leases.insert(key, lease.clone());
            json_response(200, lease)
        }
        (Method::DELETE, [ns, "leases", name]) => match s.leases.remove(&(ns.to_string(), name.to_string())) {
            Some(_) => {
                s.rv += 1;
                status(200, "", "", name)
            }
            None => status(404, "NotFound", &format!("leases.coordination.k8s.io \"{name}\" not found"), name),
        },
        _ => status(405, "MethodNotAllowed", "not served by this test server", ""),
    }
}

fn rv(lease: &Value) -> u64 {
    lease["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap()
}

fn holder(lease: &Value) -> Option<&str> {
    lease["spec"]["holderIdentity"].as_str()
}

/// Calls `acquire` every 100 ms until it returns `Some`; returns when it did.
async fn acquire_until_taken(b: &KubeBackend, unit: &str, give_up: Duration) -> Instant {
    let deadline = Instant::now() + give_up;
    loop {
        if b.acquire(unit).await.unwrap().is_some() {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "{unit} not taken within {give_up:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_acquires_renews_and_releases_a_unit() {
    let api = FakeApi::start().await;
    let r1 = api.backend("r1");
    assert_eq!(r1.describe(), format!("kubernetes Lease objects in namespace {NS}"));
    let name = r1.unit_lease_name("edge");
    assert_eq!(name, "crosslink-prod-unit-edge");

    // Free (no Lease yet): created, held by r1.
    let before = Instant::now();
    let proof = r1.acquire("edge").await.unwrap().expect("a free unit is taken");
    assert!(proof >= before && proof <= Instant::now());
    assert_eq!(summary(&api.take_requests()), [format!("GET {NS}/leases/{name} 404"), format!("POST {NS}/leases 201")]);
    let created = api.lease(&name).unwrap();
    assert_eq!(holder(&created), Some("r1"));
    assert_eq!(created["spec"]["leaseDurationSeconds"], 2);
    assert_eq!(created["spec"]["leaseTransitions"], 0);
    assert_eq!(created["metadata"]["labels"]["app.kubernetes.io/managed-by"], "crosslink");
    assert_eq!(created["metadata"]["labels"]["crosslink.dev/instance"], "prod");
    assert_eq!(created["metadata"]["labels"]["crosslink.dev/lease"], "unit");
    assert_eq!(created["metadata"]["annotations"]["crosslink.dev/unit"], "edge");
    assert!(created["spec"]["renewTime"].is_string() && created["spec"]["acquireTime"].is_string());

    // Renewed: a PUT based on the version read, with a new renewTime.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let before = Instant::now();
    let proof = r1.acquire("edge").await.unwrap().expect("r1 renews its own unit");
    assert!(proof >= before);
    let requests = api.take_requests();
    assert_eq!(summary(&requests), [format!("GET {NS}/leases/{name} 200"), format!("PUT {NS}/leases/{name} 200")]);
    let put = requests[1].body.as_ref().unwrap();
    assert_eq!(put["metadata"]["resourceVersion"].as_str(), Some(rv(&created).to_string().as_str()));
    let renewed = api.lease(&name).unwrap();
    assert!(rv(&renewed) > rv(&created));
    assert_ne!(renewed["spec"]["renewTime"], created["spec"]["renewTime"]);
    assert_eq!(renewed["spec"]["acquireTime"], created["spec"]["acquireTime"]);
    assert_eq!(holder(&renewed), Some("r1"));
    assert_eq!(renewed["spec"]["leaseTransitions"], 0);

    // The special unit gets a valid name and maps back through the annotation.
    r1.acquire("_orphans").await.unwrap().expect("free");
    let orphans = r1.unit_lease_name("_orphans");
    assert!(orphans.starts_with("crosslink-prod-unit-orphans-"), "{orphans}");
    assert!(orphans.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'), "{orphans}");
    let held = r1.holders().await.unwrap();
    assert_eq!(held, BTreeMap::from([("_orphans".into(), "r1".into()), ("edge".into(), "r1".into())]));

    // Released: holder cleared, the Lease stays; nobody holds the unit.
    api.take_requests();
    r1.release("edge").await.unwrap();
    let requests = api.take_requests();
    assert_eq!(summary(&requests), [format!("GET {NS}/leases/{name} 200"), format!("PUT {NS}/leases/{name} 200")]);
    let released = api.lease(&name).unwrap();
    assert_eq!(holder(&released), None);
    assert_eq!(r1.holders().await.unwrap(), BTreeMap::from([("_orphans".into(), "r1".into())]));
    // Releasing what one does not hold changes nothing.
    r1.release("edge").await.unwrap();
    r1.release("never-acquired").await.unwrap();
    assert_eq!(rv(&api.lease(&name).unwrap()), rv(&released));

    // Taking a released Lease back is a transition.
    r1.acquire("edge").await.unwrap().expect("a released unit is free");
    assert_eq!(api.lease(&name).unwrap()["spec"]["leaseTransitions"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_unit_is_taken_over_only_after_the_lease_duration_on_the_takers_clock() {
    let api = FakeApi::start().await;
    let (r1, r2) = (api.backend("r1"), api.backend("r2"));
    let name = r1.unit_lease_name("edge");
    r1.acquire("edge").await.unwrap().expect("free");
    assert_eq!(r2.acquire("edge").await.unwrap(), None);

    // While r1 renews, r2 never gets it, for longer than a lease duration.
    let until = Instant::now() + Duration::from_secs(3);
    let mut last_renewal = Instant::now();
    while Instant::now() < until {
        assert!(r1.acquire("edge").await.unwrap().is_some());
        last_renewal = Instant::now();
        assert_eq!(r2.acquire("edge").await.unwrap(), None, "r2 took a unit r1 keeps renewing");
        assert_eq!(r2.holders().await.unwrap().get("edge").map(String::as_str), Some("r1"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // r1 stops renewing: r2 takes over no sooner than 2 s after r1's last renewal (which r2
    // saw only after it was made).
    let taken = acquire_until_taken(&r2, "edge", Duration::from_secs(5)).await;
    let waited = taken - last_renewal;
    assert!(waited >= Duration::from_secs(2), "taken over after {waited:?}");
    assert!(waited < Duration::from_millis(3500), "taken over only after {waited:?}");
    let lease = api.lease(&name).unwrap();
    assert_eq!(holder(&lease), Some("r2"));
    assert_eq!(lease["spec"]["leaseTransitions"], 1);

    // r1 learns it lost the unit.
    assert_eq!(r1.acquire("edge").await.unwrap(), None);
    assert_eq!(r1.holders().await.unwrap().get("edge").map(String::as_str), Some("r2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_written_by_other_clocks_do_not_decide_expiry() {
    let api = FakeApi::start().await;
    let r2 = api.backend("r2");
    // Two Leases of a crashed replica whose clock was far behind, or far ahead.
    for (unit, renewed) in [("past", "2001-01-01T00:00:00.000000Z"), ("future", "2100-01-01T00:00:00.000000Z")] {
        api.put_lease(json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": r2.unit_lease_name(unit),
                "labels": {"app.kubernetes.io/managed-by": "crosslink", "crosslink.dev/instance": "prod", "crosslink.dev/lease": "unit"},
                "annotations": {"crosslink.dev/unit": unit},
            },
            "spec": {"holderIdentity": "ghost", "leaseDurationSeconds": 2, "acquireTime": renewed, "renewTime": renewed, "leaseTransitions": 4},
        }));
    }
    let first_seen = Instant::now();
    // A renewTime 25 years old is no reason to take a Lease r2 has only just seen.
    assert_eq!(r2.acquire("past").await.unwrap(), None);
    assert_eq!(r2.acquire("future").await.unwrap(), None);
    let held = r2.holders().await.unwrap();
    assert_eq!(held, BTreeMap::from([("future".into(), "ghost".into()), ("past".into(), "ghost".into())]));

    // And one 75 years ahead does not keep it forever: unchanged for 2 s on r2's clock is enough.
    let past = acquire_until_taken(&r2, "past", Duration::from_secs(5)).await;
    let future = acquire_until_taken(&r2, "future", Duration::from_secs(5)).await;
    for taken in [past, future] {
        let waited = taken - first_seen;
        assert!(waited >= Duration::from_secs(2) && waited < Duration::from_millis(3500), "taken after {waited:?}");
    }
    let lease = api.lease(&r2.unit_lease_name("future")).unwrap();
    assert_eq!(holder(&lease), Some("r2"));
    assert_eq!(lease["spec"]["leaseTransitions"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_write_race_is_not_an_error() {
    let api = FakeApi::start().await;
    let (r1, r2) = (api.backend("r1"), api.backend("r2"));
    let name = r1.unit_lease_name("edge");
    r1.acquire("edge").await.unwrap().expect("free");
    r1.release("edge").await.unwrap();
    let released = api.lease(&name).unwrap();

    // The takeover PUT answered 409 Conflict: someone else won.
    api.take_requests();
    api.script(Some(Method::PUT), 1, Fault::Status(409, "Conflict", "the object has been modified"));
    assert_eq!(r2.acquire("edge").await.unwrap(), None);
    assert_eq!(
        summary(&api.take_requests()),
        [format!("GET {NS}/leases/{name} 200"), format!("PUT {NS}/leases/{name} 409")]
    );
    assert_eq!(api.lease(&name).unwrap(), released);

    // A real race: both read the free Lease, both write; the resourceVersion precondition lets
    // exactly one win.
    api.script(Some(Method::PUT), 2, Fault::Delay(Duration::from_millis(300)));
    let (a, b) = tokio::join!(r1.acquire("edge"), r2.acquire("edge"));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.is_some() != b.is_some(), "exactly one replica wins: {a:?} {b:?}");
    let statuses: Vec<u16> = api.take_requests().iter().filter(|r| r.method == Method::PUT).map(|r| r.status).collect();
    assert_eq!(BTreeSet::from_iter(statuses), BTreeSet::from([200, 409]));
    let winner = if a.is_some() { "r1" } else { "r2" };
    assert_eq!(holder(&api.lease(&name).unwrap()), Some(winner));

    // Two replicas creating the same Lease: one gets 409 AlreadyExists.
    api.script(Some(Method::POST), 2, Fault::Delay(Duration::from_millis(300)));
    let (a, b) = tokio::join!(r1.acquire("new"), r2.acquire("new"));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.is_some() != b.is_some(), "exactly one replica creates it: {a:?} {b:?}");

    // A conflict while renewing one's own Lease (someone touched it): read again, renew.
    let holder_name = if a.is_some() { &r1 } else { &r2 };
    api.take_requests();
    api.script(Some(Method::PUT), 1, Fault::Status(409, "Conflict", "the object has been modified"));
    assert!(holder_name.acquire("new").await.unwrap().is_some());
    let new = holder_name.unit_lease_name("new");
    assert_eq!(
        summary(&api.take_requests()),
        [
            format!("GET {NS}/leases/{new} 200"),
            format!("PUT {NS}/leases/{new} 409"),
            format!("GET {NS}/leases/{new} 200"),
            format!("PUT {NS}/leases/{new} 200"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_follows_heartbeats_and_resignations() {
    let api = FakeApi::start().await;
    let (r1, r2, r3) = (api.backend("r1"), api.backend("r2"), api.backend("r3"));
    assert_eq!(names(r1.heartbeat("rev1", None).await.unwrap()), ["r1"]);
    assert_eq!(names(r2.heartbeat("rev2", None).await.unwrap()), ["r1", "r2"]);
    let seen = r1.heartbeat("rev1", None).await.unwrap();
    assert_eq!(
        seen.iter().map(|m| (m.replica.as_str(), m.revision.as_str())).collect::<Vec<_>>(),
        [("r1", "rev1"), ("r2", "rev2")],
        "each member with the desired-state revision it runs"
    );
    let member = api.lease("crosslink-prod-member-r2").expect("r2's member Lease");
    assert_eq!(member["metadata"]["annotations"]["crosslink.dev/revision"], "rev2");
    assert_eq!(holder(&member), Some("r2"));
    assert_eq!(member["metadata"]["labels"]["crosslink.dev/lease"], "member");

    // Later heartbeats renew from the version last written: no GET.
    api.take_requests();
    names(r1.heartbeat("rev1", None).await.unwrap());
    let requests = api.take_requests();
    assert_eq!(
        summary(&requests),
        [format!("PUT {NS}/leases/crosslink-prod-member-r1 200"), format!("GET {NS}/leases 200")]
    );
    assert_eq!(
        requests[1].selector.as_deref(),
        Some("app.kubernetes.io/managed-by=crosslink,crosslink.dev/instance=prod,crosslink.dev/lease=member")
    );

    // Someone else wrote r1's member Lease: read it again and renew once more.
    api.script(Some(Method::PUT), 1, Fault::Status(409, "Conflict", "the object has been modified"));
    assert_eq!(names(r1.heartbeat("rev1", None).await.unwrap()), ["r1", "r2"]);

    // r2 resigns: its member Lease is deleted and it is gone at once.
    r2.acquire("edge").await.unwrap().expect("free");
    api.take_requests();
    r2.resign().await.unwrap();
    let requests = summary(&api.take_requests());
    assert!(requests.contains(&format!("DELETE {NS}/leases/crosslink-prod-member-r2 200")), "{requests:?}");
    assert!(api.lease("crosslink-prod-member-r2").is_none());
    assert_eq!(holder(&api.lease(&r2.unit_lease_name("edge")).unwrap()), None, "resigning releases units");
    assert_eq!(names(r1.heartbeat("rev1", None).await.unwrap()), ["r1"]);

    // r3 heartbeats once and stops: it counts until it has been silent for 2 s on r1's clock.
    names(r3.heartbeat("rev1", None).await.unwrap());
    let last_heartbeat = Instant::now();
    let deadline = last_heartbeat + Duration::from_secs(5);
    loop {
        let members = names(r1.heartbeat("rev1", None).await.unwrap());
        if members == ["r1"] {
            break;
        }
        assert_eq!(members, ["r1", "r3"]);
        assert!(Instant::now() < deadline, "r3 still a member");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let gone_after = last_heartbeat.elapsed();
    assert!(gone_after >= Duration::from_secs(2) && gone_after < Duration::from_millis(3500), "{gone_after:?}");
    // Its Lease is still there (it may come back), just not counted...
    assert!(api.lease("crosslink-prod-member-r3").is_some());
    // ...until it has been silent for four lease durations: then it is deleted.
    let deadline = last_heartbeat + Duration::from_secs(12);
    while api.lease("crosslink-prod-member-r3").is_some() {
        assert!(Instant::now() < deadline, "a dead replica's member Lease is never collected");
        names(r1.heartbeat("rev1", None).await.unwrap());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let collected_after = last_heartbeat.elapsed();
    assert!(collected_after >= Duration::from_secs(8), "collected after {collected_after:?}");
    // A live replica's Lease is never collected.
    assert!(api.lease("crosslink-prod-member-r1").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_are_classified_and_calls_time_out() {
    let api = FakeApi::start().await;
    let r1 = api.backend("r1");

    api.script(None, 1, Fault::Status(500, "InternalError", "etcdserver: request timed out"));
    match r1.heartbeat("rev1", None).await {
        Err(CoordError::Unavailable(m)) => assert!(m.contains("500") && m.contains("etcdserver"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }

    let forbidden = "leases.coordination.k8s.io \"crosslink-prod-unit-edge\" is forbidden: User \"system:serviceaccount:crosslink-system:crosslink\" cannot get resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"crosslink-system\"";
    api.script(Some(Method::GET), 1, Fault::Status(403, "Forbidden", forbidden));
    match r1.acquire("edge").await {
        Err(CoordError::Engine(m)) => {
            assert!(m.contains("RBAC verb \"get\" on resource \"leases\""), "{m}");
            assert!(m.contains("cannot get resource"), "{m}");
        }
        other => panic!("expected Engine, got {other:?}"),
    }
    api.script(Some(Method::POST), 1, Fault::Status(403, "Forbidden", "forbidden"));
    match r1.acquire("edge").await {
        Err(CoordError::Engine(m)) => assert!(m.contains("RBAC verb \"create\""), "{m}"),
        other => panic!("expected Engine, got {other:?}"),
    }
    api.script(Some(Method::GET), 1, Fault::Status(403, "Forbidden", "forbidden"));
    match r1.holders().await {
        Err(CoordError::Engine(m)) => assert!(m.contains("RBAC verb \"list\""), "{m}"),
        other => panic!("expected Engine, got {other:?}"),
    }
    api.script(None, 1, Fault::Status(422, "Invalid", "spec.leaseDurationSeconds: Invalid value"));
    match r1.acquire("edge").await {
        Err(CoordError::Engine(m)) => assert!(m.contains("422") && m.contains("Invalid value"), "{m}"),
        other => panic!("expected Engine, got {other:?}"),
    }

    // A server that never answers: an error after the call timeout (1 s here), not a hang.
    api.script(None, 1, Fault::Hang);
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(10), r1.holders()).await.expect("the call hangs");
    match result {
        Err(CoordError::Unavailable(m)) => assert!(m.contains("did not answer within"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3), "{took:?}");

    // Faults over, it works again.
    assert!(r1.acquire("edge").await.unwrap().is_some());

    // Nothing listening: unavailable.
    let closed = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let mut config = kube::Config::new(format!("http://{closed}").parse().unwrap());
    config.default_namespace = NS.to_string();
    let gone = KubeBackend::new(kube::Client::try_from(config).unwrap(), NS, "prod", "r1", timing());
    match gone.heartbeat("rev1", None).await {
        Err(CoordError::Unavailable(m)) => assert!(m.contains("cannot reach the Kubernetes API"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

struct Replica {
    ownership: Ownership,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn start_replica(api: &FakeApi, name: &str, units: &BTreeMap<String, Vec<String>>) -> Replica {
    let backend = api.backend(name);
    let ownership = Ownership::sharded(name, &backend.describe(), timing());
    ownership.set_units(units.clone(), "rev1");
    let coordinator = Coordinator::new(backend, ownership.clone(), name, timing());
    let stop = CancellationToken::new();
    let task = tokio::spawn(coordinator.run(stop.clone(), Duration::from_secs(1)));
    Replica { ownership, stop, task }
}

/// Waits until `check` holds for the replicas' owned units and the Leases on the server.
async fn converge(
    api: &FakeApi,
    replicas: &[(&str, &Replica)],
    units: &BTreeMap<String, Vec<String>>,
    want: impl Fn(&str) -> &'static str,
) {
    let probe = api.backend("probe");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let owned: Vec<BTreeSet<String>> = replicas.iter().map(|(_, r)| r.ownership.owned().unwrap()).collect();
        let on_server: BTreeMap<String, Option<String>> = units
            .keys()
            .map(|u| (u.clone(), api.lease(&probe.unit_lease_name(u)).and_then(|l| holder(&l).map(str::to_string))))
            .collect();
        let done = units.keys().all(|u| {
            let owners: Vec<&str> =
                replicas.iter().zip(&owned).filter(|(_, o)| o.contains(u)).map(|((n, _), _)| *n).collect();
            owners == [want(u)] && on_server[u].as_deref() == Some(want(u))
        });
        if done {
            return;
        }
        assert!(Instant::now() < deadline, "not converged: owned {owned:?}, Leases {on_server:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_coordinators_share_the_units_without_overlap() {
    let api = FakeApi::start().await;
    let units: BTreeMap<String, Vec<String>> =
        ["alpha", "bravo", "charlie", "_orphans"].iter().map(|u| (u.to_string(), vec![])).collect();
    let members = vec!["r1".to_string(), "r2".to_string()];
    let pref = |u: &str| -> &'static str {
        match preferred(u, &members) {
            Some("r1") => "r1",
            _ => "r2",
        }
    };
    let r1 = start_replica(&api, "r1", &units);
    let r2 = start_replica(&api, "r2", &units);

    // Each unit with exactly one replica, its preferred one, and its Lease says so.
    converge(&api, &[("r1", &r1), ("r2", &r2)], &units, pref).await;
    let (o1, o2) = (r1.ownership.owned().unwrap(), r2.ownership.owned().unwrap());
    assert!(o1.is_disjoint(&o2), "{o1:?} {o2:?}");
    assert_eq!(o1.union(&o2).cloned().collect::<BTreeSet<_>>(), units.keys().cloned().collect());
    for u in units.keys() {
        let owner = if o1.contains(u) { &r1 } else { &r2 };
        assert!(owner.ownership.check(u).is_ok());
        let other = if o1.contains(u) { &r2 } else { &r1 };
        assert!(other.ownership.check(u).is_err());
    }

    // r1 shuts down: it releases its units, and r2 takes them all without waiting for expiry.
    r1.stop.cancel();
    r1.task.await.unwrap();
    let stopped = Instant::now();
    assert!(api.lease("crosslink-prod-member-r1").is_none());
    converge(&api, &[("r2", &r2)], &units, |_| "r2").await;
    assert!(stopped.elapsed() < Duration::from_secs(2), "r2 waited for expiry: {:?}", stopped.elapsed());

    r2.stop.cancel();
    r2.task.await.unwrap();
    for u in units.keys() {
        assert_eq!(holder(&api.lease(&api.backend("probe").unit_lease_name(u)).unwrap()), None);
    }
}

/// Member names, for comparisons.
fn names(members: Vec<crosslink_coord::Member>) -> Vec<String> {
    members.into_iter().map(|m| m.replica).collect()
}
