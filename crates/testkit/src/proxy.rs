//! An intercepting HTTP proxy on 127.0.0.1 between the real AWS SDK and moto: it records every AWS
//! call (service, operation, status, time) independently of the code under test, and injects
//! faults (500, 503, the service's real throttling answer, a dropped connection, or a lost answer
//! after the change was made) at a seeded rate or on a script.
//!
//! Plain std threads: one for accepting, one per connection. moto closes every connection after
//! one answer, and so does the proxy (`Connection: close`), so each connection carries exactly
//! one request. Requests and answers are forwarded unchanged (framing aside: answers go back with
//! a `Content-Length`), to moto with the workspace's HTTP client (see [`forward`]). The `Host`
//! header is kept as the client signed it: moto routes by the SigV4 credential scope, not by host
//! name, and does not check signatures.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::operations;

/// How long a client may take to send its request, and moto to answer one.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(300);
/// Request and answer heads larger than this are refused (AWS requests are far smaller).
const MAX_HEAD: usize = 1 << 20;

/// What the proxy does instead of (or besides) forwarding a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// HTTP 500 with the service's `InternalError` / `InternalFailure` answer.
    InternalError,
    /// HTTP 503 with the service's "unavailable" answer.
    Unavailable,
    /// The service's real throttling answer: EC2 503 `RequestLimitExceeded`, Query-protocol
    /// services (ELBv2, STS) 400 `Throttling`, API Gateway 429 `TooManyRequestsException`.
    Throttle,
    /// Close the connection without answering; moto never sees the request.
    Drop,
    /// Forward to moto (the change happens), then close without answering: a create whose answer
    /// is lost.
    DropAfterForward,
}

impl FaultKind {
    pub const ALL: [FaultKind; 5] = [
        FaultKind::InternalError,
        FaultKind::Unavailable,
        FaultKind::Throttle,
        FaultKind::Drop,
        FaultKind::DropAfterForward,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::InternalError => "internal-error",
            FaultKind::Unavailable => "unavailable",
            FaultKind::Throttle => "throttle",
            FaultKind::Drop => "drop",
            FaultKind::DropAfterForward => "drop-after-forward",
        }
    }
}

/// Random faults and latency, applied to every call of a service not in `spare`.
///
/// Selectors (in `spare`, `only` and [`Proxy::fail_next`]) match a call by service (`sts`), by
/// operation (`CreateRoute`) or by both (`ec2:CreateRoute`), with the SigV4 service name
/// (`elasticloadbalancing` for ELBv2).
#[derive(Clone, Debug, PartialEq)]
pub struct Faults {
    /// The probability, 0..=1, that a call gets a fault.
    pub rate: f64,
    /// Which fault, by weight. Empty means `Throttle`.
    pub kinds: Vec<(FaultKind, u32)>,
    /// Extra delay before each call is handled, uniform in `[min, max]`.
    pub latency: (Duration, Duration),
    /// Seeds the draws (rate, kind, latency), so that a serial sequence of calls gets the same
    /// faults every run. Concurrent calls draw in arrival order.
    pub seed: u64,
    /// Calls never faulted nor delayed, e.g. `sts` (unsigned requests, such as moto's own
    /// `/moto-api`, never are).
    pub spare: Vec<String>,
    /// When not empty, only matching calls are faulted or delayed.
    pub only: Vec<String>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults::none()
    }
}

impl Faults {
    /// Forward everything, at once.
    pub fn none() -> Faults {
        Faults {
            rate: 0.0,
            kinds: Vec::new(),
            latency: (Duration::ZERO, Duration::ZERO),
            seed: 0,
            spare: Vec::new(),
            only: Vec::new(),
        }
    }

    /// Every call (but `spare` ones) gets `kind`.
    pub fn always(kind: FaultKind) -> Faults {
        Faults { rate: 1.0, kinds: vec![(kind, 1)], ..Faults::none() }
    }

    /// A mix of every fault at `rate`: mostly throttles and server errors, some lost connections
    /// and lost answers.
    pub fn mixed(rate: f64, seed: u64) -> Faults {
        Faults {
            rate,
            kinds: vec![
                (FaultKind::Throttle, 4),
                (FaultKind::InternalError, 2),
                (FaultKind::Unavailable, 2),
                (FaultKind::Drop, 1),
                (FaultKind::DropAfterForward, 1),
            ],
            seed,
            ..Faults::none()
        }
    }

    pub fn with_spare(mut self, selectors: &[&str]) -> Faults {
        self.spare.extend(selectors.iter().map(|s| s.to_string()));
        self
    }

    pub fn with_only(mut self, selectors: &[&str]) -> Faults {
        self.only.extend(selectors.iter().map(|s| s.to_string()));
        self
    }

    pub fn with_latency(mut self, min: Duration, max: Duration) -> Faults {
        self.latency = (min, max.max(min));
        self
    }
}

/// One request the proxy handled, recorded before the client could see its answer (so a client
/// that has its answer finds the call recorded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// From the SigV4 credential scope: `ec2`, `elasticloadbalancing`, `apigateway`, `sts`, ...;
    /// `moto` for moto's own unsigned `/moto-api` requests, `unsigned` for other unsigned ones.
    pub service: String,
    /// The SDK's operation name, e.g. `DescribeVpcs`, `CreateRestApi`.
    pub operation: String,
    pub region: String,
    /// The access key that signed the request.
    pub access_key: String,
    /// The account the access key acts in: moto's static key acts in `DEFAULT_ACCOUNT`; a key
    /// from an AssumeRole seen by this proxy acts in the role's account. Empty when unknown.
    pub account: String,
    pub method: String,
    /// The request path, without the query.
    pub path: String,
    /// The status the client got; for `DropAfterForward` the status moto gave (the client got
    /// nothing); 0 when nothing answered (`Drop`, or moto unreachable: then 502 is sent).
    pub status: u16,
    pub fault: Option<FaultKind>,
    /// From the end of the request to the answer, injected latency included.
    pub micros: u64,
    /// When the request arrived, since the proxy started.
    pub at_micros: u64,
    /// When the request arrived, in microseconds since the Unix epoch (to line up the calls of
    /// several proxies).
    pub unix_micros: u64,
    /// The request body (form or JSON), cut at 16 KiB.
    pub body: String,
}

impl Call {
    /// Reads change nothing: `Describe*`, `Get*`, `List*`, `Search*`, and STS (identity and
    /// credentials).
    pub fn is_read(&self) -> bool {
        self.service == "sts" || ["Describe", "Get", "List", "Search"].iter().any(|p| self.operation.starts_with(p))
    }

    /// Whether `selector` (`sts`, `CreateRoute` or `ec2:CreateRoute`) names this call.
    pub fn matches(&self, selector: &str) -> bool {
        selects(selector, &self.service, &self.operation)
    }

    /// The service as crosslink's AWS adapter names it in its call records and metrics (`elbv2`
    /// for ELBv2's `elasticloadbalancing`).
    pub fn adapter_service(&self) -> &str {
        match self.service.as_str() {
            "elasticloadbalancing" => "elbv2",
            s => s,
        }
    }
}

fn selects(selector: &str, service: &str, operation: &str) -> bool {
    match selector.split_once(':') {
        Some((s, o)) => s == service && o == operation,
        None => selector == service || selector == operation,
    }
}

/// A one-shot fault: the next `times` calls matching `selector` get `kind`.
#[derive(Clone, Debug)]
struct Scripted {
    selector: String,
    kind: FaultKind,
    times: u32,
}

/// A recorded answer given instead of moto's (`Proxy::answer_next`).
struct Canned {
    selector: String,
    status: u16,
    content_type: String,
    body: Vec<u8>,
    times: u32,
}

struct FaultState {
    faults: Faults,
    /// Seeded from `Faults::seed`: a seed replays the same faults.
    rng: StdRng,
    script: Vec<Scripted>,
    canned: Vec<Canned>,
}

struct Shared {
    upstream: SocketAddr,
    started: Instant,
    stop: AtomicBool,
    calls: Mutex<Vec<Call>>,
    faults: Mutex<FaultState>,
    /// Access key -> account id, learnt from AssumeRole answers.
    accounts: Mutex<HashMap<String, String>>,
}

fn known_accounts() -> HashMap<String, String> {
    HashMap::from([(crate::ACCESS_KEY.to_string(), crate::DEFAULT_ACCOUNT.to_string())])
}

/// The text of the first `<tag>...</tag>` in an XML document.
fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{tag}>"))?;
    Some(&xml[start..start + len])
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking connection thread must not take the recorder down with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The proxy. Stops accepting when dropped (calls in flight finish on their own threads).
pub struct Proxy {
    /// `http://127.0.0.1:<port>`: give this to the SDK as its endpoint.
    pub endpoint: String,
    pub addr: SocketAddr,
    /// Where requests go (moto).
    pub upstream: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts a proxy in front of `upstream` on a free 127.0.0.1 port. Panics if it cannot bind.
    pub fn start(upstream: SocketAddr) -> Proxy {
        Self::try_start(upstream).unwrap_or_else(|e| panic!("cannot start the proxy: {e}"))
    }

    pub fn try_start(upstream: SocketAddr) -> io::Result<Proxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            started: Instant::now(),
            stop: AtomicBool::new(false),
            calls: Mutex::default(),
            faults: Mutex::new(FaultState {
                faults: Faults::none(),
                rng: StdRng::seed_from_u64(0),
                script: Vec::new(),
                canned: Vec::new(),
            }),
            accounts: Mutex::new(known_accounts()),
        });
        let s = shared.clone();
        let acceptor = std::thread::Builder::new().name("proxy-accept".into()).spawn(move || accept(listener, s))?;
        Ok(Proxy { endpoint: format!("http://{addr}"), addr, upstream, shared, acceptor: Some(acceptor) })
    }

    /// Every call so far, in the order they were answered.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.shared.calls).clone()
    }

    /// Forgets the recorded calls (faults stay as they are).
    pub fn reset(&self) {
        lock(&self.shared.calls).clear();
    }

    /// Calls so far and forgets them, at once (no call is lost between the two).
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut *lock(&self.shared.calls))
    }

    /// Calls by (service, operation).
    pub fn counts(&self) -> BTreeMap<(String, String), usize> {
        count(&self.calls())
    }

    /// Replaces the random faults (and reseeds). Scripted faults stay.
    pub fn set_faults(&self, faults: Faults) {
        let mut st = lock(&self.shared.faults);
        st.rng = StdRng::seed_from_u64(faults.seed);
        st.faults = faults;
    }

    /// The next `times` calls matching `selector` (`CreateVpc`, `apigateway`,
    /// `ec2:CreateRoute`) get `kind`, whatever the random faults say; `spare` does not apply.
    pub fn fail_next(&self, selector: &str, kind: FaultKind, times: u32) {
        lock(&self.shared.faults).script.push(Scripted { selector: selector.to_string(), kind, times });
    }

    /// The next `times` calls matching `selector` get this answer instead of moto's (which is
    /// not called): a response recorded or shaped as AWS documents it, for what moto does not
    /// emulate (a target failing its health checks, say). Recorded as a call without a fault.
    pub fn answer_next(&self, selector: &str, status: u16, content_type: &str, body: &str, times: u32) {
        lock(&self.shared.faults).canned.push(Canned {
            selector: selector.to_string(),
            status,
            content_type: content_type.to_string(),
            body: body.as_bytes().to_vec(),
            times,
        });
    }

    /// No faults, no latency, no script, no recorded answers.
    pub fn clear_faults(&self) {
        let mut st = lock(&self.shared.faults);
        st.faults = Faults::none();
        st.script.clear();
        st.canned.clear();
    }

    /// Environment for a child process (the crosslink binary) to use the proxy as its AWS.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        crate::aws_env(&self.endpoint)
    }
}

/// Counts calls by (service, operation).
pub fn count(calls: &[Call]) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for c in calls {
        *out.entry((c.service.clone(), c.operation.clone())).or_default() += 1;
    }
    out
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so that it sees the flag; it then drops the listener.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

fn accept(listener: TcpListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(conn) = conn else { continue };
        let s = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("proxy-conn".into())
            .stack_size(256 * 1024)
            .spawn(move || handle(&s, conn));
        if let Err(e) = spawned {
            eprintln!("testkit proxy: cannot start a connection thread: {e}");
        }
    }
}

/// An HTTP/1.1 message head and body.
struct Message {
    /// The request line or the status line.
    start: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A message head: the start line and the headers.
type Head = (String, Vec<(String, String)>);

/// Buffered reading of one HTTP/1.1 message from a stream.
struct Reader<'a> {
    stream: &'a mut TcpStream,
    buf: Vec<u8>,
}

impl Reader<'_> {
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// The head, up to and without the blank line; None if the peer closed before sending any.
    fn head(&mut self) -> io::Result<Option<Head>> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 4);
                let mut lines = head.split("\r\n");
                let start = lines.next().unwrap_or_default().to_string();
                let headers = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .collect();
                return Ok(Some((start, headers)));
            }
            if self.buf.len() > MAX_HEAD {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "message head too large"));
            }
            if self.fill()? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed inside a message head"))
                };
            }
        }
    }

    fn exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed inside a body"));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 2);
                return Ok(line);
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed inside a chunk"));
            }
        }
    }

    /// The body of a request as `headers` frame it: chunked, `Content-Length`, or none. Chunked
    /// bodies come back decoded.
    fn body(&mut self, headers: &[(String, String)]) -> io::Result<Vec<u8>> {
        let get = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
        if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            let mut body = Vec::new();
            loop {
                let line = self.line()?;
                let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("bad chunk size {line:?}")))?;
                if size == 0 {
                    // Trailers, up to a blank line.
                    while !self.line()?.is_empty() {}
                    return Ok(body);
                }
                body.extend(self.exact(size)?);
                self.exact(2)?;
            }
        }
        if let Some(len) = get("content-length") {
            let len: usize =
                len.parse().map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad Content-Length"))?;
            return self.exact(len);
        }
        Ok(Vec::new())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Headers that describe one connection or one framing, not the message: never forwarded as is.
fn hop_by_hop(name: &str) -> bool {
    ["connection", "keep-alive", "transfer-encoding", "content-length", "expect", "proxy-connection", "te", "upgrade"]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
}

fn read_request(client: &mut TcpStream) -> io::Result<Option<Message>> {
    let mut r = Reader { stream: client, buf: Vec::new() };
    let Some((start, headers)) = r.head()? else { return Ok(None) };
    let expects =
        headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("expect") && v.eq_ignore_ascii_case("100-continue"));
    if expects {
        r.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let body = r.body(&headers)?;
    Ok(Some(Message { start, headers, body }))
}

fn write_message(
    to: &mut TcpStream,
    start: &str,
    headers: &[(String, String)],
    body: &[u8],
    head_only: bool,
) -> io::Result<()> {
    let mut out = Vec::with_capacity(512 + body.len());
    out.extend_from_slice(start.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (k, v) in headers.iter().filter(|(k, _)| !hop_by_hop(k)) {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    if !head_only {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    if !head_only {
        out.extend_from_slice(body);
    }
    to.write_all(&out)?;
    to.flush()
}

/// The client that forwards to moto: the workspace's one HTTP client, set up to change nothing
/// about the request. No proxy from the environment, no redirects followed, no compression (the
/// workspace builds reqwest without it, so no `Accept-Encoding` is added), and a fresh connection
/// per request, each sent with `Connection: close` as moto answers anyway. Built on first use,
/// on a connection thread: reqwest's blocking client must not be built on an async runtime's
/// thread, and `Proxy::start` may be called from one.
static UPSTREAM_CLIENT: LazyLock<reqwest::blocking::Client> = LazyLock::new(|| {
    crate::http::client_builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(UPSTREAM_TIMEOUT)
        .build()
        .expect("the proxy's HTTP client")
});

/// Sends the request to moto and reads its whole answer. Forwarded as the client sent it: the
/// method, the request target (path and query as written), every header but the hop-by-hop
/// ones (`Host`, `Authorization`, `X-Amz-*`, `Content-Type`, ... in their order), and the body.
/// The one addition is reqwest's `Accept: */*` on a request that has no `Accept` (it cannot be
/// turned off; moto does not read `Accept` for these services).
fn forward(upstream: SocketAddr, req: &Message, method: &str) -> io::Result<Message> {
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
    let target = req.start.split_whitespace().nth(1).unwrap_or("/");
    let url = format!("http://{upstream}{target}");
    let parsed = reqwest::Url::parse(&url).map_err(|e| invalid(format!("request target {target:?}: {e}")))?;
    // The URL type normalises what it parses (dot segments, characters it percent-encodes): a
    // target it would rewrite is refused rather than forwarded changed.
    let written = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_string(),
    };
    if written != target {
        return Err(invalid(format!("request target {target:?} would be forwarded as {written:?}")));
    }
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| invalid(format!("method: {e}")))?;
    let mut headers = reqwest::header::HeaderMap::new();
    for (k, v) in req.headers.iter().filter(|(k, _)| !hop_by_hop(k)) {
        let name = reqwest::header::HeaderName::from_bytes(k.as_bytes()).map_err(|e| invalid(format!("{k}: {e}")))?;
        let value = reqwest::header::HeaderValue::from_bytes(v.as_bytes()).map_err(|e| invalid(format!("{k}: {e}")))?;
        headers.append(name, value);
    }
    headers.insert(reqwest::header::CONNECTION, reqwest::header::HeaderValue::from_static("close"));
    let mut request = UPSTREAM_CLIENT.request(method.clone(), parsed).headers(headers);
    // A body-less request says so with no Content-Length, except where a body is expected.
    if !req.body.is_empty() || matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
        request = request.body(req.body.clone());
    }
    let failed = |e: reqwest::Error| io::Error::other(crate::http::describe(&url, &e));
    let answer = request.send().map_err(failed)?;
    let status = answer.status();
    let start = format!("HTTP/1.1 {} {}", status.as_u16(), status.canonical_reason().unwrap_or(""));
    let headers = answer
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = answer.bytes().map_err(failed)?.to_vec();
    Ok(Message { start: start.trim_end().to_string(), headers, body })
}

fn status_of(status_line: &str) -> u16 {
    status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// Who the request is for and what it asks.
struct Identity {
    service: String,
    operation: String,
    region: String,
    access_key: String,
    method: String,
    path: String,
    signed: bool,
    query_protocol: bool,
    body: String,
}

fn identify(req: &Message) -> Identity {
    let mut parts = req.start.split_whitespace();
    let method = parts.next().unwrap_or_default().to_ascii_uppercase();
    let target = parts.next().unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let scope = operations::scope(req.header("authorization"), query);
    let service = match &scope {
        Some(s) => s.service.clone(),
        None if path.starts_with("/moto-api") => "moto".to_string(),
        None => "unsigned".to_string(),
    };
    let operation = operations::operation(&service, &method, path, query, req.header("x-amz-target"), &req.body);
    let form = req.header("content-type").is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    Identity {
        query_protocol: form || operations::form_value(query, "Action").is_some(),
        signed: scope.is_some(),
        region: scope.as_ref().map(|s| s.region.clone()).unwrap_or_default(),
        access_key: scope.map(|s| s.access_key).unwrap_or_default(),
        service,
        operation,
        method,
        path: path.to_string(),
        body: String::from_utf8_lossy(&req.body[..req.body.len().min(16 * 1024)]).into_owned(),
    }
}

impl Shared {
    /// A recorded answer for this call, if one is scripted.
    fn canned(&self, id: &Identity) -> Option<(u16, String, Vec<u8>)> {
        let mut st = lock(&self.faults);
        let i = st.canned.iter().position(|c| c.times > 0 && selects(&c.selector, &id.service, &id.operation))?;
        let c = &mut st.canned[i];
        c.times -= 1;
        let out = (c.status, c.content_type.clone(), c.body.clone());
        if c.times == 0 {
            st.canned.remove(i);
        }
        Some(out)
    }

    /// The fault (if any) and extra latency for one call.
    fn decide(&self, id: &Identity) -> (Option<FaultKind>, Duration) {
        let mut st = lock(&self.faults);
        if let Some(i) = st.script.iter().position(|s| s.times > 0 && selects(&s.selector, &id.service, &id.operation))
        {
            let kind = st.script[i].kind;
            st.script[i].times -= 1;
            if st.script[i].times == 0 {
                st.script.remove(i);
            }
            return (Some(kind), Duration::ZERO);
        }
        let f = &st.faults;
        let eligible = id.signed
            && !f.spare.iter().any(|s| selects(s, &id.service, &id.operation))
            && (f.only.is_empty() || f.only.iter().any(|s| selects(s, &id.service, &id.operation)));
        if !eligible {
            return (None, Duration::ZERO);
        }
        let (rate, (lo, hi)) = (f.rate, f.latency);
        let kinds = if f.kinds.is_empty() { vec![(FaultKind::Throttle, 1)] } else { f.kinds.clone() };
        let latency = if hi > lo { lo + (hi - lo).mul_f64(st.rng.random::<f64>()) } else { lo };
        if rate <= 0.0 || st.rng.random::<f64>() >= rate {
            return (None, latency);
        }
        let total: u64 = kinds.iter().map(|(_, w)| u64::from(*w)).sum();
        if total == 0 {
            return (None, latency);
        }
        let mut pick = st.rng.random_range(0..total);
        for (kind, w) in &kinds {
            if pick < u64::from(*w) {
                return (Some(*kind), latency);
            }
            pick -= u64::from(*w);
        }
        (None, latency)
    }

    fn request_id(&self) -> String {
        let mut st = lock(&self.faults);
        let (a, b): (u64, u64) = (st.rng.random(), st.rng.random());
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }

    /// Remembers which account the credentials of a successful AssumeRole act in (the account
    /// of the role ARN), so that calls signed with them are attributed to it.
    fn learn(&self, id: &Identity, req: &Message, answer: &Message) {
        if id.service != "sts" || id.operation != "AssumeRole" || status_of(&answer.start) != 200 {
            return;
        }
        let (_, query) = req.start.split_whitespace().nth(1).unwrap_or("").split_once('?').unwrap_or(("", ""));
        let role = operations::form_value(query, "RoleArn")
            .or_else(|| std::str::from_utf8(&req.body).ok().and_then(|b| operations::form_value(b, "RoleArn")));
        let account = role.as_deref().and_then(|arn| arn.split(':').nth(4)).map(str::to_string);
        let body = String::from_utf8_lossy(&answer.body);
        if let (Some(account), Some(key)) = (account, xml_text(&body, "AccessKeyId")) {
            lock(&self.accounts).insert(key.trim().to_string(), account);
        }
    }

    fn record(&self, id: Identity, status: u16, fault: Option<FaultKind>, arrived: Instant) {
        let account = lock(&self.accounts).get(&id.access_key).cloned().unwrap_or_default();
        let call = Call {
            account,
            service: id.service,
            operation: id.operation,
            region: id.region,
            access_key: id.access_key,
            method: id.method,
            path: id.path,
            status,
            fault,
            micros: arrived.elapsed().as_micros() as u64,
            at_micros: arrived.duration_since(self.started).as_micros() as u64,
            unix_micros: (std::time::SystemTime::now() - arrived.elapsed())
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() as u64)
                .unwrap_or(0),
            body: id.body,
        };
        lock(&self.calls).push(call);
    }
}

/// The answer a service gives for an injected fault, in its own protocol's error shape, so that
/// the SDK parses the code (and retries) as it would against AWS.
pub fn fault_response(
    kind: FaultKind,
    service: &str,
    query_protocol: bool,
    request_id: &str,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    // (status, code, message, Query-protocol fault type)
    let (status, code, message, sender) = match (kind, service) {
        (FaultKind::Throttle, "ec2") => (503, "RequestLimitExceeded", "Request limit exceeded.", false),
        (FaultKind::Throttle, "apigateway") => (429, "TooManyRequestsException", "Too Many Requests", true),
        (FaultKind::Throttle, _) if query_protocol => (400, "Throttling", "Rate exceeded", true),
        (FaultKind::Throttle, _) => (400, "ThrottlingException", "Rate exceeded", true),
        (FaultKind::Unavailable, "ec2") => {
            (503, "Unavailable", "The server is overloaded and can't handle the request.", false)
        }
        (FaultKind::Unavailable, _) if query_protocol => (503, "ServiceUnavailable", "Service is unavailable.", false),
        (FaultKind::Unavailable, _) => (503, "ServiceUnavailableException", "Service Unavailable", false),
        (_, "ec2") => (500, "InternalError", "An internal error has occurred.", false),
        (_, _) => (500, "InternalFailure", "The request processing has failed because of an unknown error.", false),
    };
    let mut headers = Vec::new();
    let body = if service == "ec2" {
        headers.push(("Content-Type".to_string(), "text/xml;charset=UTF-8".to_string()));
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
        )
    } else if query_protocol {
        headers.push(("Content-Type".to_string(), "text/xml".to_string()));
        headers.push(("x-amzn-RequestId".to_string(), request_id.to_string()));
        let kind = if sender { "Sender" } else { "Receiver" };
        format!(
            "<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    } else {
        // REST-JSON and JSON protocols: the code in `x-amzn-ErrorType`, the message in the body.
        headers.push(("Content-Type".to_string(), "application/json".to_string()));
        headers.push(("x-amzn-ErrorType".to_string(), code.to_string()));
        headers.push(("x-amzn-RequestId".to_string(), request_id.to_string()));
        format!("{{\"message\":\"{message}\"}}")
    };
    (status, headers, body.into_bytes())
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "",
    }
}

fn handle(shared: &Shared, mut client: TcpStream) {
    let _ = client.set_read_timeout(Some(CLIENT_TIMEOUT));
    let _ = client.set_nodelay(true);
    let req = match read_request(&mut client) {
        Ok(Some(r)) => r,
        // The waking connection of Drop, an idle pooled connection closing, or garbage.
        _ => return,
    };
    let arrived = Instant::now();
    let id = identify(&req);
    if let Some((status, content_type, body)) = shared.canned(&id) {
        let headers =
            [("Content-Type".to_string(), content_type), ("x-amzn-RequestId".to_string(), shared.request_id())];
        shared.record(id, status, None, arrived);
        let _ = write_message(&mut client, &format!("HTTP/1.1 {status} {}", reason(status)), &headers, &body, false);
        return;
    }
    let (fault, latency) = shared.decide(&id);
    if !latency.is_zero() {
        std::thread::sleep(latency);
    }
    match fault {
        None | Some(FaultKind::DropAfterForward) => {
            let answer = forward(shared.upstream, &req, &id.method);
            match (answer, fault) {
                (Ok(answer), None) => {
                    shared.learn(&id, &req, &answer);
                    shared.record(id, status_of(&answer.start), None, arrived);
                    let head_only = req.start.starts_with("HEAD ");
                    let _ = write_message(&mut client, &answer.start, &answer.headers, &answer.body, head_only);
                }
                (Ok(answer), Some(k)) => {
                    shared.record(id, status_of(&answer.start), Some(k), arrived);
                    let _ = client.shutdown(Shutdown::Both);
                }
                (Err(e), fault) => {
                    shared.record(id, 0, fault, arrived);
                    if fault.is_none() {
                        let body = format!("testkit proxy: upstream {}: {e}", shared.upstream);
                        let _ = write_message(&mut client, "HTTP/1.1 502 Bad Gateway", &[], body.as_bytes(), false);
                    }
                    let _ = client.shutdown(Shutdown::Both);
                }
            }
        }
        Some(FaultKind::Drop) => {
            shared.record(id, 0, Some(FaultKind::Drop), arrived);
            let _ = client.shutdown(Shutdown::Both);
        }
        Some(kind) => {
            let (status, headers, body) = fault_response(kind, &id.service, id.query_protocol, &shared.request_id());
            shared.record(id, status, Some(kind), arrived);
            let _ =
                write_message(&mut client, &format!("HTTP/1.1 {status} {}", reason(status)), &headers, &body, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(service: &str, operation: &str) -> Identity {
        Identity {
            service: service.into(),
            operation: operation.into(),
            region: "eu-central-1".into(),
            access_key: "test".into(),
            method: "POST".into(),
            path: "/".into(),
            signed: true,
            query_protocol: true,
            body: String::new(),
        }
    }

    fn shared() -> Shared {
        Shared {
            upstream: SocketAddr::from((Ipv4Addr::LOCALHOST, 9)),
            started: Instant::now(),
            stop: AtomicBool::new(false),
            calls: Mutex::default(),
            faults: Mutex::new(FaultState {
                faults: Faults::none(),
                rng: StdRng::seed_from_u64(0),
                script: Vec::new(),
                canned: Vec::new(),
            }),
            accounts: Mutex::new(known_accounts()),
        }
    }

    fn set(s: &Shared, f: Faults) {
        let mut st = lock(&s.faults);
        st.rng = StdRng::seed_from_u64(f.seed);
        st.faults = f;
    }

    #[test]
    fn the_same_seed_draws_the_same_faults() {
        let draw = |seed| {
            let s = shared();
            set(&s, Faults::mixed(0.3, seed));
            (0..200).map(|_| s.decide(&identity("ec2", "DescribeVpcs")).0).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        let faulted = draw(7).iter().filter(|f| f.is_some()).count();
        assert!((30..90).contains(&faulted), "{faulted} of 200 at rate 0.3");
    }

    #[test]
    fn weights_spare_and_only_select_what_is_faulted() {
        let s = shared();
        set(
            &s,
            Faults { kinds: vec![(FaultKind::Drop, 1), (FaultKind::Throttle, 0)], ..Faults::always(FaultKind::Drop) }
                .with_spare(&["sts", "ec2:CreateTags"]),
        );
        assert_eq!(s.decide(&identity("ec2", "CreateRoute")).0, Some(FaultKind::Drop));
        assert_eq!(s.decide(&identity("sts", "AssumeRole")).0, None);
        assert_eq!(s.decide(&identity("ec2", "CreateTags")).0, None);
        let mut unsigned = identity("moto", "POST /moto-api/reset");
        unsigned.signed = false;
        assert_eq!(s.decide(&unsigned).0, None);
        set(&s, Faults::always(FaultKind::Unavailable).with_only(&["apigateway"]));
        assert_eq!(s.decide(&identity("apigateway", "GetRestApis")).0, Some(FaultKind::Unavailable));
        assert_eq!(s.decide(&identity("ec2", "DescribeVpcs")).0, None);
    }

    #[test]
    fn scripted_faults_fire_the_given_number_of_times_then_stop() {
        let s = shared();
        lock(&s.faults).script.push(Scripted {
            selector: "CreateVpc".into(),
            kind: FaultKind::DropAfterForward,
            times: 2,
        });
        assert_eq!(s.decide(&identity("ec2", "DescribeVpcs")).0, None);
        assert_eq!(s.decide(&identity("ec2", "CreateVpc")).0, Some(FaultKind::DropAfterForward));
        assert_eq!(s.decide(&identity("ec2", "CreateVpc")).0, Some(FaultKind::DropAfterForward));
        assert_eq!(s.decide(&identity("ec2", "CreateVpc")).0, None);
        assert!(lock(&s.faults).script.is_empty());
    }

    #[test]
    fn latency_stays_within_its_bounds() {
        let s = shared();
        let (lo, hi) = (Duration::from_millis(5), Duration::from_millis(9));
        set(&s, Faults::none().with_latency(lo, hi));
        for _ in 0..100 {
            let (fault, latency) = s.decide(&identity("ec2", "DescribeVpcs"));
            assert_eq!(fault, None);
            assert!(latency >= lo && latency <= hi, "{latency:?}");
        }
    }

    #[test]
    fn throttling_answers_have_each_service_shape() {
        let (status, headers, body) = fault_response(FaultKind::Throttle, "ec2", true, "r");
        let body = String::from_utf8(body).unwrap();
        assert_eq!(status, 503);
        assert!(body.contains("<Response><Errors><Error><Code>RequestLimitExceeded</Code>"), "{body}");
        assert!(headers.iter().any(|(k, _)| k == "Content-Type"));
        let (status, _, body) = fault_response(FaultKind::Throttle, "elasticloadbalancing", true, "r");
        let body = String::from_utf8(body).unwrap();
        assert_eq!(status, 400);
        assert!(
            body.contains("<Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"),
            "{body}"
        );
        let (status, headers, _) = fault_response(FaultKind::Throttle, "apigateway", false, "r");
        assert_eq!(status, 429);
        assert!(headers.contains(&("x-amzn-ErrorType".to_string(), "TooManyRequestsException".to_string())));
    }

    #[test]
    fn requests_are_read_by_length_or_chunks() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = l.local_addr().unwrap();
        let writer = std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=1\r\n world\r\n0\r\nT: v\r\n\r\n").unwrap();
            s.write_all(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc").unwrap();
            s.write_all(b"GET /x?y=1 HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        });
        let (mut conn, _) = l.accept().unwrap();
        writer.join().unwrap();
        let mut r = Reader { stream: &mut conn, buf: Vec::new() };
        let (_, h) = r.head().unwrap().unwrap();
        assert_eq!(r.body(&h).unwrap(), b"hello world");
        let (_, h) = r.head().unwrap().unwrap();
        assert_eq!(r.body(&h).unwrap(), b"abc");
        let (start, h) = r.head().unwrap().unwrap();
        assert_eq!(start, "GET /x?y=1 HTTP/1.1");
        assert_eq!(r.body(&h).unwrap(), b"");
    }
}
