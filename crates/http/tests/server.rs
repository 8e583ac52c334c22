//! The server on a real socket, driven by an HTTP client (reqwest, as `crosslink status` uses) and,
//! where a test needs a client that misbehaves below HTTP (idle, dribbling, holding a slot), by
//! raw TCP: routes over the wire, the connection bounds, graceful shutdown, and fetch errors.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crosslink_controller::metrics::Metrics;
use crosslink_controller::status::{Health, ObjectStatus, Phase, StatusSnapshot};
use crosslink_http::client::{ClientError, fetch_status, status_table};
use crosslink_http::{AppState, ConnLimits, router, serve, serve_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// An upper bound for things that happen promptly, so that a broken server fails the test
/// rather than hanging it.
const PROMPTLY: Duration = Duration::from_secs(5);

fn snapshot() -> StatusSnapshot {
    StatusSnapshot {
        shards: None,
        events: None,
        protection: Default::default(),
        instance: "crosslink-0".into(),
        version: "0.1.0".into(),
        ready: true,
        links: vec![ObjectStatus {
            kind: "Link".into(),
            name: "payments".into(),
            phase: Phase::Progressing,
            message: "waiting for the peering to be accepted".into(),
            last_reconcile: None,
            last_error: None,
            transport: Some("peering".into()),
            resources: [("peering".to_string(), "pcx-0123".to_string())].into(),
            pending_changes: 4,
            revision: None,
            retained: vec![],
            warnings: vec![],
            synced: true,
            health: None,
        }],
        ..Default::default()
    }
}

fn state() -> (AppState, watch::Sender<StatusSnapshot>) {
    let (tx, rx) = watch::channel(snapshot());
    let state = AppState {
        status: rx,
        metrics: Arc::new(Metrics::new("0.1.0", "abc123")),
        health: Health::new(),
        liveness_timeout: Duration::from_secs(60),
    };
    (state, tx)
}

struct Server {
    base: String,
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(limits: ConnLimits) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let (state, tx) = state();
        let task = tokio::spawn(async move {
            let _keep_sender = tx;
            serve_with(listener, state, async move { stopped.await.unwrap_or(()) }, limits).await
        });
        Server { base: format!("http://{addr}"), addr, stop: Some(stop), task }
    }

    async fn shut_down(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(PROMPTLY, self.task).await.expect("serve returns after shutdown").unwrap().unwrap();
    }
}

/// A request as an HTTP client sends it: (status, content type, body).
async fn fetch(base: &str, method: &str, path: &str, body: &str) -> (u16, String, String) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let req = client.request(method, format!("{base}{path}")).body(body.to_string());
    let res = tokio::time::timeout(PROMPTLY, req.send()).await.expect("answered").unwrap();
    let status = res.status().as_u16();
    let content_type = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, content_type, res.text().await.unwrap())
}

/// A GET written by hand, for the tests below that hold a connection open, or write a request
/// in pieces, to see what the server does below HTTP: no client library misbehaves that way.
fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
}

/// Reads until the peer closes or resets: either way, the connection is over.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    match tokio::time::timeout(limit, stream.read_to_end(&mut out)).await {
        Ok(_) => out,
        Err(_) => panic!("the server kept the connection open; read so far: {:?}", String::from_utf8_lossy(&out)),
    }
}

#[tokio::test]
async fn routes_over_a_real_socket() {
    let server = Server::start(ConnLimits::default()).await;

    let base = &server.base;
    let (status, content_type, body) = fetch(base, "GET", "/healthz", "").await;
    assert_eq!((status, content_type.as_str(), body.as_str()), (200, "text/plain; charset=utf-8", "ok\n"));

    let (status, _, _) = fetch(base, "GET", "/readyz", "").await;
    assert_eq!(status, 503);

    let (status, content_type, body) = fetch(base, "GET", "/metrics", "").await;
    assert_eq!((status, content_type.as_str()), (200, "application/openmetrics-text; version=1.0.0; charset=utf-8"));
    assert!(body.ends_with("# EOF\n"), "{body}");

    let (status, content_type, body) = fetch(base, "GET", "/", "").await;
    assert_eq!((status, content_type.as_str()), (200, "text/html; charset=utf-8"));
    assert!(body.contains("waiting for the peering to be accepted"), "{body}");

    let (status, _, _) = fetch(base, "POST", "/status", "").await;
    assert_eq!(status, 405);

    let (status, _, _) = fetch(base, "GET", "/status", "{}\n").await;
    assert_eq!(status, 413);

    let (status, _, _) = fetch(base, "GET", "/nope", "").await;
    assert_eq!(status, 404);

    server.shut_down().await;
}

#[tokio::test]
async fn serve_stops_on_shutdown_with_an_idle_keep_alive_connection_open() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let (state, _tx) = state();
    let task = tokio::spawn(serve(listener, state, async move { stopped.await.unwrap_or(()) }));

    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(PROMPTLY, idle.read(&mut buf)).await.unwrap().unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK\r\n"));

    stop.send(()).unwrap();
    tokio::time::timeout(PROMPTLY, task).await.expect("serve returns").unwrap().unwrap();
    assert!(closed_within(&mut idle, PROMPTLY).await.is_empty());
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting after shutdown");
}

#[tokio::test]
async fn a_client_dribbling_its_header_is_cut_off() {
    let limits = ConnLimits { request_deadline: Duration::from_millis(300), ..ConnLimits::default() };
    let server = Server::start(limits).await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: te").await.unwrap();
    // Trickling more bytes does not buy more time.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = slow.write_all(b"s").await;
    }
    let answer = closed_within(&mut slow, PROMPTLY).await;
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    assert!(started.elapsed() >= Duration::from_millis(300), "closed before the deadline");

    // Others are still served.
    assert_eq!(fetch(&server.base, "GET", "/healthz", "").await.0, 200);
    server.shut_down().await;
}

#[tokio::test]
async fn an_idle_connection_is_closed_and_keep_alive_still_works_within_the_idle_time() {
    let limits = ConnLimits {
        idle_timeout: Duration::from_millis(600),
        request_deadline: Duration::from_millis(200),
        ..ConnLimits::default()
    };
    let server = Server::start(limits).await;

    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    assert!(closed_within(&mut silent, PROMPTLY).await.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(600), "closed before the idle timeout");

    // After a response the connection is idle, not in a request: waiting longer than the request
    // deadline before the next request must not close it.
    let mut kept = TcpStream::connect(server.addr).await.unwrap();
    for _ in 0..2 {
        kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 512];
        let n = tokio::time::timeout(PROMPTLY, kept.read(&mut buf)).await.unwrap().unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK\r\n"), "{}", String::from_utf8_lossy(&buf[..n]));
        assert!(buf[..n].ends_with(b"\r\n\r\nok\n"));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    server.shut_down().await;
}

#[tokio::test]
async fn connections_past_the_cap_wait_for_a_free_slot() {
    let limits = ConnLimits { max_connections: 1, ..ConnLimits::default() };
    let server = Server::start(limits).await;

    // The accept queue is first come, first served: the holder takes the one slot, with a
    // request under way (so it is not idle, and not closed to make room).
    let mut holder = TcpStream::connect(server.addr).await.unwrap();
    holder.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut waiting = TcpStream::connect(server.addr).await.unwrap();
    waiting.write_all(get("/healthz").as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let early = tokio::time::timeout(Duration::from_millis(300), waiting.read_to_end(&mut buf)).await;
    assert!(early.is_err(), "answered past the cap: {}", String::from_utf8_lossy(&buf));

    drop(holder);
    let answer = closed_within(&mut waiting, PROMPTLY).await;
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200 OK\r\n"));
    server.shut_down().await;
}

#[tokio::test]
async fn crosslink_status_fetches_and_prints_the_report() {
    let server = Server::start(ConnLimits::default()).await;
    let got = fetch_status(&server.base, PROMPTLY).await.unwrap();
    assert_eq!(got, snapshot());
    let table = status_table(&got);
    assert!(table.contains("instance:  crosslink-0\n"), "{table}");
    assert!(
        table
            .contains("Link  payments  Progressing        4  never           waiting for the peering to be accepted\n"),
        "{table}"
    );
    // Trailing slash and no scheme are both fine.
    assert_eq!(fetch_status(&format!("{}/", server.base), PROMPTLY).await.unwrap(), snapshot());
    assert_eq!(fetch_status(&server.addr.to_string(), PROMPTLY).await.unwrap(), snapshot());
    server.shut_down().await;
}

#[tokio::test]
async fn crosslink_status_behind_a_path_prefix() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (state, _tx) = state();
    let app = axum::Router::new().nest("/ops/crosslink", router(state));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let got = fetch_status(&format!("http://{addr}/ops/crosslink"), PROMPTLY).await.unwrap();
    assert_eq!(got, snapshot());

    // A wrong prefix: the proxy's (here an empty) 404, or crosslink's with its pointer.
    let err = fetch_status(&format!("http://{addr}/elsewhere/"), PROMPTLY).await.unwrap_err();
    assert!(matches!(err, ClientError::Status { status: 404, .. }), "{err:?}");
    assert_eq!(err.to_string(), format!("http://{addr}/elsewhere/status: HTTP 404"));
    let err = fetch_status(&format!("http://{addr}/ops/crosslink/v1"), PROMPTLY).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "http://{addr}/ops/crosslink/v1/status: HTTP 404: not found: try /, /status, /metrics, /healthz or /readyz"
        )
    );
}

#[tokio::test]
async fn crosslink_status_errors_say_what_went_wrong() {
    // Nothing listening: bind, learn the port, close.
    let addr = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let err = fetch_status(&format!("http://{addr}"), PROMPTLY).await.unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
    assert!(err.to_string().starts_with(&format!("http://{addr}/status: cannot connect to {addr}: ")), "{err}");

    // Answering, but not HTTP.
    let ssh = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ssh_addr = ssh.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut conn, _) = ssh.accept().await.unwrap();
        conn.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await.unwrap();
    });
    let err = fetch_status(&format!("http://{ssh_addr}"), PROMPTLY).await.unwrap_err();
    assert!(matches!(err, ClientError::Exchange { .. }), "{err:?}");
    assert!(err.to_string().starts_with(&format!("http://{ssh_addr}/status: ")), "{err}");

    // Listening but never answering.
    let mute = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mute_addr = mute.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let (conn, _) = mute.accept().await.unwrap();
        tokio::time::sleep(PROMPTLY).await;
        drop(conn);
    });
    let err = fetch_status(&format!("http://{mute_addr}"), Duration::from_millis(200)).await.unwrap_err();
    assert_eq!(err.to_string(), format!("http://{mute_addr}/status: no answer within 200ms"));
    hold.abort();

    // Answering, but not with a status report.
    let other = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other_addr = other.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut conn, _) = other.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = conn.read(&mut buf).await;
        let body = "<html>hello</html>";
        let res = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        conn.write_all(res.as_bytes()).await.unwrap();
    });
    let err = fetch_status(&format!("http://{other_addr}"), PROMPTLY).await.unwrap_err();
    assert!(matches!(err, ClientError::Decode { .. }), "{err:?}");
    assert!(err.to_string().contains("the response is not a crosslink status report"), "{err}");

    let err = fetch_status("https://crosslink.internal:9090", PROMPTLY).await.unwrap_err();
    assert!(matches!(err, ClientError::HttpsUnsupported { .. }), "{err:?}");
}

/// A flood of idle connections does not keep a probe out: past the cap, the connection idle
/// the longest is closed to make room.
#[tokio::test]
async fn idle_connections_make_room_for_a_new_one() {
    let limits = ConnLimits { max_connections: 4, ..ConnLimits::default() };
    let server = Server::start(limits).await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = std::time::Instant::now();
    assert_eq!(fetch(&server.base, "GET", "/healthz", "").await.0, 200);
    assert!(started.elapsed() < Duration::from_secs(2), "the probe waited {:?}", started.elapsed());
    // The oldest idle one was closed: it reads end of stream.
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(PROMPTLY, idle[0].read(&mut buf)).await.expect("closed").unwrap_or(0);
    assert_eq!(n, 0, "the oldest idle connection is closed");
    server.shut_down().await;
}
