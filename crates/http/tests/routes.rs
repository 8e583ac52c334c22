//! Every route in process, through the router with its bounds, as a probe, a scraper, a browser
//! and `curl` would call it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::http::{Method, Request, StatusCode, header};
use crosslink_controller::metrics::Metrics;
use crosslink_controller::status::{
    DesiredStatus, Health, LastError, ObjectStatus, Phase, PruneStatus, StatusSnapshot,
};
use crosslink_http::{AppState, OPENMETRICS_CONTENT_TYPE, router};
use tokio::sync::watch;
use tower::ServiceExt;

fn snapshot() -> StatusSnapshot {
    StatusSnapshot {
        consumers: vec![],
        shards: None,
        events: None,
        protection: Default::default(),
        instance: "crosslink-0".into(),
        version: "0.1.0".into(),
        ready: true,
        desired: DesiredStatus {
            revision: Some("3f2a9c1".into()),
            loaded_at: Some("2025-06-01T09:58:00Z".into()),
            error: Some("links.yaml:3:7: Link/a: spec.port: expected a number".into()),
            invalid_revision: Some("bad77".into()),
        },
        prune: PruneStatus { blocked: true, links: vec!["old".into()], message: Some("1 of 1 links".into()) },
        last_full_sync: Some("2025-06-01T10:00:00Z".into()),
        gateways: vec![ObjectStatus {
            kind: "Gateway".into(),
            name: "edge".into(),
            phase: Phase::Ready,
            message: "in sync".into(),
            last_reconcile: Some("2025-06-01T10:00:00Z".into()),
            last_error: None,
            transport: None,
            resources: BTreeMap::from([("vpcLink".into(), "vl-123".into())]),
            pending_changes: 0,
            revision: Some("3f2a9c1".into()),
            retained: vec![],
            warnings: vec![],
            synced: true,
            health: None,
        }],
        links: vec![ObjectStatus {
            kind: "Link".into(),
            name: "payments".into(),
            phase: Phase::Degraded,
            message: "<script>alert('x')</script>".into(),
            last_reconcile: None,
            last_error: Some(LastError {
                code: "ThrottlingException".into(),
                message: "Rate exceeded".into(),
                hint: Some("wait".into()),
            }),
            transport: None,
            resources: BTreeMap::new(),
            pending_changes: 3,
            revision: None,
            retained: vec![],
            warnings: vec![],
            synced: true,
            health: None,
        }],
    }
}

struct Fixture {
    state: AppState,
    health: Arc<Health>,
    _status: watch::Sender<StatusSnapshot>,
}

fn fixture(health: Arc<Health>) -> Fixture {
    let (tx, rx) = watch::channel(snapshot());
    let metrics = Arc::new(Metrics::new("0.1.0", "abc123"));
    metrics.set_revision("3f2a9c1");
    let state = AppState { status: rx, metrics, health: health.clone(), liveness_timeout: Duration::from_secs(60) };
    Fixture { state, health, _status: tx }
}

async fn call(state: &AppState, method: Method, path: &str) -> (StatusCode, String, String) {
    let req = Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
    let res = router(state.clone()).oneshot(req).await.unwrap();
    let status = res.status();
    let ctype = res.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let body = to_bytes(res.into_body(), 1 << 20).await.unwrap();
    (status, ctype, String::from_utf8(body.to_vec()).unwrap())
}

async fn get(state: &AppState, path: &str) -> (StatusCode, String, String) {
    call(state, Method::GET, path).await
}

#[tokio::test]
async fn healthz_follows_the_heartbeat_not_readiness() {
    let f = fixture(Health::new());
    assert!(!f.health.is_ready());
    assert_eq!(get(&f.state, "/healthz").await, (StatusCode::OK, "text/plain; charset=utf-8".into(), "ok\n".into()));
}

#[tokio::test]
async fn healthz_fails_while_the_loop_is_silent_and_recovers_on_a_beat() {
    // A Health that has never beaten reports its heartbeat as long ago as the epoch: the stale
    // case, with no sleeping and no clock to fake.
    let f = fixture(Arc::new(Health::default()));
    let (status, ctype, body) = get(&f.state, "/healthz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ctype, "text/plain; charset=utf-8");
    assert!(body.starts_with("unhealthy: the reconcile loop has not reported for "), "{body}");
    assert!(body.ends_with("s (limit 60s)\n"), "{body}");

    f.health.beat();
    assert_eq!(get(&f.state, "/healthz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn readyz_is_a_latch() {
    let f = fixture(Health::new());
    let (status, ctype, body) = get(&f.state, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ctype, "text/plain; charset=utf-8");
    assert_eq!(body, "not ready: desired state not loaded or first pass not done\n");

    f.health.set_ready();
    assert_eq!(get(&f.state, "/readyz").await, (StatusCode::OK, "text/plain; charset=utf-8".into(), "ready\n".into()));
    f.health.beat();
    assert_eq!(get(&f.state, "/readyz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn metrics_in_openmetrics_text() {
    let f = fixture(Health::new());
    let (status, ctype, body) = get(&f.state, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ctype, OPENMETRICS_CONTENT_TYPE);
    assert_eq!(ctype, "application/openmetrics-text; version=1.0.0; charset=utf-8");
    assert!(body.contains("crosslink_desired_state_info{revision=\"3f2a9c1\"} 1"), "{body}");
    assert!(body.ends_with("# EOF\n"), "{body}");
}

#[tokio::test]
async fn status_json_round_trips_and_follows_the_channel() {
    let f = fixture(Health::new());
    let (status, ctype, body) = get(&f.state, "/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ctype, "application/json");
    assert!(body.starts_with("{\n  \"instance\": \"crosslink-0\","), "not pretty JSON:\n{body}");
    let back: StatusSnapshot = serde_json::from_str(&body).unwrap();
    assert_eq!(back, snapshot());

    let mut next = snapshot();
    next.links.clear();
    next.desired.error = None;
    f._status.send(next.clone()).unwrap();
    let (_, _, body) = get(&f.state, "/status").await;
    assert_eq!(serde_json::from_str::<StatusSnapshot>(&body).unwrap(), next);
}

#[tokio::test]
async fn the_page_is_escaped_html_with_both_banners() {
    let f = fixture(Health::new());
    let req = Request::builder().uri("/").body(Body::empty()).unwrap();
    let res = router(f.state.clone()).oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert!(res.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().starts_with("default-src 'none'"));
    let page = String::from_utf8(to_bytes(res.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
    assert!(page.starts_with("<!doctype html>"));
    assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"), "{page}");
    assert!(!page.contains("<script"), "{page}");
    assert!(page.contains("<div class=\"banner error\""));
    assert!(page.contains("revision bad77 could not be loaded; revision 3f2a9c1 stays in force."));
    assert!(page.contains("<pre>links.yaml:3:7: Link/a: spec.port: expected a number</pre>"));
    assert!(page.contains("<div class=\"banner warn\""));
    assert!(page.contains("<td data-label=\"Name\"><strong>edge</strong></td>"));
    assert!(page.contains("<code>ThrottlingException</code> Rate exceeded"));
}

#[tokio::test]
async fn only_get_and_head_are_answered() {
    let f = fixture(Health::new());
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        for path in ["/", "/status", "/metrics", "/healthz", "/readyz"] {
            let req = Request::builder().method(method.clone()).uri(path).body(Body::empty()).unwrap();
            let res = router(f.state.clone()).oneshot(req).await.unwrap();
            assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_eq!(res.headers()[header::ALLOW], "GET,HEAD", "{method} {path}");
        }
    }
    let (status, _, body) = call(&f.state, Method::POST, "/status").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "method not allowed: this server answers GET only\n")
    );

    let (status, ctype, body) = call(&f.state, Method::HEAD, "/healthz").await;
    assert_eq!((status, ctype.as_str(), body.as_str()), (StatusCode::OK, "text/plain; charset=utf-8", ""));
}

#[tokio::test]
async fn unknown_paths_get_404_with_a_pointer() {
    let f = fixture(Health::new());
    for path in ["/nope", "/status/", "/metrics/x", "/index.html"] {
        let (status, ctype, body) = get(&f.state, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(ctype, "text/plain; charset=utf-8");
        assert_eq!(body, "not found: try /, /status, /metrics, /healthz or /readyz\n");
    }
    // A wrong method on an unknown path is still "not found".
    assert_eq!(call(&f.state, Method::POST, "/nope").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_get_with_a_body_is_refused() {
    let f = fixture(Health::new());
    let req = Request::builder().uri("/status").body(Body::from("{}")).unwrap();
    let res = router(f.state.clone()).oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
}
