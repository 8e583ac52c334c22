//! The daemon's HTTP surface: liveness, readiness, Prometheus metrics and status (JSON and an HTML
//! page for people), with bounded request time, size and concurrency; plus the `crosslink status`
//! client in [`client`].
//!
//! What bounds a client's hold on the server:
//! - per request ([`router`]): an answer within [`REQUEST_TIMEOUT`] or 408, counting the wait for
//!   one of [`MAX_IN_FLIGHT`] slots shared by all routes; no request body (413), with tower-http's
//!   [`MAX_BODY_BYTES`] limit as a second fence; header size and count by hyper's defaults.
//! - per connection ([`serve`], [`ConnLimits`]): at most `max_connections` open; a connection
//!   idle for `idle_timeout` (including a response its client stops reading), or with a request
//!   begun but not answered within `request_deadline` (a header sent a byte at a time), is
//!   closed. Past the cap, the connection idle the longest is closed to make room, so idle
//!   sockets cannot keep a liveness probe out. `axum::serve` has no header read timeout of its
//!   own (hyper's needs a timer that axum does not set), hence these.
//! - on shutdown: no new connections; idle ones close at once, busy ones within their deadline.

pub mod client;
mod conn;
mod page;
mod when;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::HttpBody;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use crosslink_controller::metrics::Metrics;
use crosslink_controller::status::{Health, StatusSnapshot};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

pub use conn::ConnLimits;

/// What prometheus-client's text encoder writes: OpenMetrics 1.0, ending in `# EOF`.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A request, including the wait for a free slot, is answered within this or gets 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests served at once, across all routes; more wait for a slot (within [`REQUEST_TIMEOUT`]).
pub const MAX_IN_FLIGHT: usize = 64;
/// No route takes a body; this is a second fence behind the rejection of any body at all.
pub const MAX_BODY_BYTES: usize = 1024;

/// Everything the handlers read. Cheap to clone: the daemon keeps the senders and writers.
#[derive(Clone)]
pub struct AppState {
    pub status: watch::Receiver<StatusSnapshot>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    /// `/healthz` fails once the reconcile loop has not beaten for longer than this.
    pub liveness_timeout: Duration,
}

/// All routes, GET (and so HEAD) only, behind the request bounds.
pub fn router(state: AppState) -> Router {
    bounded(
        Router::new()
            .route("/", get(status_page))
            .route("/links/{name}", get(link_page))
            .route("/status", get(status_json))
            .route("/metrics", get(metrics))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .with_state(state),
    )
}

/// Serves [`router`] on `listener` until `shutdown` resolves, then stops accepting, lets requests
/// in flight finish and returns. Connections are bounded by [`ConnLimits::default`].
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, shutdown, ConnLimits::default()).await
}

/// [`serve`] with explicit connection bounds.
pub async fn serve_with(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: ConnLimits,
) -> std::io::Result<()> {
    let listener = conn::BoundedListener::new(listener, limits);
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await?;
    tracing::debug!("http server stopped");
    Ok(())
}

/// The request-level bounds. `Router::layer` wraps each route on its own, so the concurrency limit
/// must be the global kind to cap the server rather than each route.
fn bounded(router: Router) -> Router {
    router.layer(
        ServiceBuilder::new()
            // Outermost, so that waiting for a slot counts against the deadline too.
            .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
            // The timeout builds its 408 with `Default` on the inner body type, which the body
            // limit's own type lacks.
            .map_response(IntoResponse::into_response)
            .layer(GlobalConcurrencyLimitLayer::new(MAX_IN_FLIGHT))
            .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
            .map_request(boxed_body)
            .layer(middleware::from_fn(reject_body)),
    )
}

/// Back from the body limit's wrapper to axum's body type, which middleware takes.
fn boxed_body<B>(req: Request<B>) -> Request
where
    B: HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    req.map(axum::body::Body::new)
}

/// Nothing here reads a body, so a request that carries one is a mistake or an abuse; saying so
/// beats leaving it unread on the connection.
async fn reject_body(req: Request, next: Next) -> Response {
    if req.body().is_end_stream() {
        next.run(req).await
    } else {
        text(StatusCode::PAYLOAD_TOO_LARGE, "this server takes no request bodies\n".into())
    }
}

async fn healthz(State(s): State<AppState>) -> Response {
    let since = s.health.since_heartbeat();
    let limit = s.liveness_timeout.as_secs();
    if since <= limit {
        text(StatusCode::OK, "ok\n".into())
    } else {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unhealthy: the reconcile loop has not reported for {since}s (limit {limit}s)\n"),
        )
    }
}

async fn readyz(State(s): State<AppState>) -> Response {
    if s.health.is_ready() {
        text(StatusCode::OK, "ready\n".into())
    } else {
        text(StatusCode::SERVICE_UNAVAILABLE, "not ready: desired state not loaded or first pass not done\n".into())
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    let mut res = s.metrics.encode().into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS_CONTENT_TYPE));
    res
}

async fn status_json(State(s): State<AppState>) -> Response {
    // Serialized under the borrow: no clone of the snapshot, and no await while it is held.
    let json = serde_json::to_string_pretty(&*s.status.borrow());
    match json {
        Ok(mut body) => {
            body.push('\n');
            let mut res = body.into_response();
            let h = res.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode status: {e}\n")),
    }
}

async fn status_page(State(s): State<AppState>) -> Response {
    let html = page::render(&s.status.borrow(), SystemTime::now());
    html_response(html)
}

fn html_response(html: String) -> Response {
    let mut res = html.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The page has no script and no external asset; say so to the browser, so that text that
    // slipped past escaping could still not run or load anything.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    res
}

async fn link_page(State(s): State<AppState>, axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    let html = page::render_link(&s.status.borrow(), &name, SystemTime::now());
    match html {
        Some(html) => html_response(html),
        None => text(
            StatusCode::NOT_FOUND,
            format!(
                "Link/{name} is not in this daemon's status (with several replicas, its unit's holder reports it)\n"
            ),
        ),
    }
}

async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "not found: try /, /status, /metrics, /healthz or /readyz\n".into())
}

async fn method_not_allowed() -> Response {
    text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed: this server answers GET only\n".into())
}

fn text(status: StatusCode, body: String) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    res
}

#[cfg(test)]
mod tests {
    //! The request bounds, against routes slow or blocking on purpose, under paused time.

    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::body::Body;
    use tokio::sync::Semaphore;
    use tower::ServiceExt;

    use super::*;

    fn get_req(path: &str) -> Request {
        Request::builder().uri(path).body(Body::empty()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_not_answered_in_time_gets_408() {
        let app = bounded(Router::new().route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "late"
            }),
        ));
        let started = tokio::time::Instant::now();
        let res = app.oneshot(get_req("/slow")).await.unwrap();
        assert_eq!(res.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(started.elapsed(), REQUEST_TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn the_concurrency_limit_spans_all_routes() {
        let gate = Arc::new(Semaphore::new(0));
        let entered = Arc::new(AtomicUsize::new(0));
        let app = bounded(
            Router::new()
                .route(
                    "/block",
                    get({
                        let (gate, entered) = (gate.clone(), entered.clone());
                        move || async move {
                            entered.fetch_add(1, Ordering::SeqCst);
                            let _permit = gate.acquire().await.unwrap();
                            "released"
                        }
                    }),
                )
                .route("/fast", get(|| async { "fast" })),
        );
        let mut blocked = Vec::new();
        for _ in 0..MAX_IN_FLIGHT {
            blocked.push(tokio::spawn(app.clone().oneshot(get_req("/block"))));
        }
        while entered.load(Ordering::SeqCst) < MAX_IN_FLIGHT {
            tokio::task::yield_now().await;
        }

        // Every slot is taken by another route: this one waits, well short of the 408 deadline.
        let mut fast = tokio::spawn(app.clone().oneshot(get_req("/fast")));
        assert!(tokio::time::timeout(Duration::from_secs(1), &mut fast).await.is_err(), "served past the limit");

        gate.add_permits(MAX_IN_FLIGHT);
        assert_eq!(fast.await.unwrap().unwrap().status(), StatusCode::OK);
        for b in blocked {
            assert_eq!(b.await.unwrap().unwrap().status(), StatusCode::OK);
        }
    }

    #[tokio::test]
    async fn a_request_with_a_body_is_refused() {
        let app = bounded(Router::new().route("/", get(|| async { "ok" })));
        let req = Request::builder().uri("/").body(Body::from("x")).unwrap();
        assert_eq!(app.clone().oneshot(req).await.unwrap().status(), StatusCode::PAYLOAD_TOO_LARGE);
        let big = Request::builder()
            .uri("/")
            .header(header::CONTENT_LENGTH, "4096")
            .body(Body::from(vec![b'x'; 4096]))
            .unwrap();
        assert_eq!(app.clone().oneshot(big).await.unwrap().status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(app.oneshot(get_req("/")).await.unwrap().status(), StatusCode::OK);
    }
}
