//! The tests' HTTP client: plain HTTP/1.1 requests to servers on loopback (moto, etcd, the
//! crosslink daemon), with the workspace's one client (reqwest, blocking).
//!
//! Callable from anywhere, async tests included: reqwest's blocking client must not be used on a
//! thread that runs an async runtime, so each request runs on a short-lived thread of its own.

use std::sync::LazyLock;
use std::time::Duration;

/// How long a server on loopback may take to accept a connection, and to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const TIMEOUT: Duration = Duration::from_secs(30);

/// A whole answer: status and body as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// A client for loopback: no proxy from the environment, no redirects, no pooled connections
/// (every request on a fresh one, as a probe from outside would be).
pub fn client_builder() -> reqwest::blocking::ClientBuilder {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .connect_timeout(CONNECT_TIMEOUT)
}

static CLIENT: LazyLock<reqwest::blocking::Client> =
    LazyLock::new(|| client_builder().timeout(TIMEOUT).build().expect("the test HTTP client"));

/// `method` `url` with an empty body (and `Content-Length: 0` where a body is expected).
pub fn request(method: &str, url: &str) -> Result<Response, String> {
    request_with(method, url, TIMEOUT)
}

/// As [`request`], giving up after `timeout`.
pub fn request_with(method: &str, url: &str, timeout: Duration) -> Result<Response, String> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| format!("{method}: {e}"))?;
    send(url, || {
        let req = CLIENT.request(method.clone(), url).timeout(timeout);
        if matches!(method, reqwest::Method::POST | reqwest::Method::PUT | reqwest::Method::PATCH) {
            req.body(Vec::new())
        } else {
            req
        }
    })
}

/// POST `body` to `url` with `headers`.
pub fn post(url: &str, headers: &[(&str, &str)], body: &str) -> Result<Response, String> {
    send(url, || headers.iter().fold(CLIENT.post(url).body(body.to_string()), |req, (k, v)| req.header(*k, *v)))
}

/// Sends the request `build` makes, on a thread of its own, and reads the whole answer.
fn send(url: &str, build: impl FnOnce() -> reqwest::blocking::RequestBuilder + Send) -> Result<Response, String> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let res = build().send().map_err(|e| describe(url, &e))?;
            let status = res.status().as_u16();
            let body = res.text().map_err(|e| describe(url, &e))?;
            Ok(Response { status, body })
        })
        .join()
        .unwrap_or_else(|_| Err(format!("{url}: the request thread panicked")))
    })
}

/// GET `url`.
pub fn get(url: &str) -> Result<Response, String> {
    request("GET", url)
}

/// The error with its causes: reqwest's own message alone says only which request failed.
pub fn describe(url: &str, e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = format!("{url}: {e}");
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(&format!(": {s}"));
        source = s.source();
    }
    out
}
