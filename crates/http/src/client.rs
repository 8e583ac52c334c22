//! `crosslink status --server URL`: fetch a daemon's status report over plain HTTP/1.1 and print
//! it as a fixed-width table.
//!
//! The admin port speaks plain HTTP on a private network or through a port-forward: the
//! workspace's HTTP client (reqwest on hyper, built without TLS) does the exchange.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use crosslink_controller::status::{ObjectStatus, StatusSnapshot};

use crate::when::{ago, with_age};

/// A status report larger than this is not from crosslink, or not one a terminal should print.
const MAX_RESPONSE_BYTES: u64 = 32 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{url}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error(
        "{url}: https is not supported; the crosslink admin port serves plain HTTP, so use http:// \
         (through a port-forward or tunnel if the network is not trusted)"
    )]
    HttpsUnsupported { url: String },
    #[error("{url}: cannot connect to {addr}: {reason}")]
    Connect { addr: String, url: String, reason: String },
    /// The connection broke, or what came back is not HTTP.
    #[error("{url}: {reason}")]
    Exchange { url: String, reason: String },
    #[error("{url}: no answer within {}", humantime::format_duration(*.timeout))]
    Timeout { url: String, timeout: Duration },
    #[error("{url}: the response is larger than {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("{url}: HTTP {status}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Status { url: String, status: u16, body: String },
    #[error("{url}: the response is not a crosslink status report: {source}")]
    Decode { url: String, source: serde_json::Error },
}

/// Where a base URL points: `http://host[:port][/prefix]`, or the same without the scheme.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    /// Host to connect to (an IPv6 address without its brackets).
    host: String,
    port: u16,
    /// The `Host` header: the authority as written.
    authority: String,
    /// The request target: the prefix followed by `/status`.
    path: String,
}

impl Target {
    fn url(&self) -> String {
        format!("http://{}{}", self.authority, self.path)
    }
}

fn parse_base(base: &str) -> Result<Target, ClientError> {
    let invalid = |reason: &str| ClientError::InvalidUrl { url: base.to_string(), reason: reason.to_string() };
    let trimmed = base.trim();
    let rest = match trimmed.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
            return Err(ClientError::HttpsUnsupported { url: base.to_string() });
        }
        Some((scheme, _)) => return Err(invalid(&format!("unsupported scheme {scheme:?}; use http://host:port"))),
        None => trimmed,
    };
    if rest.contains(['?', '#']) {
        return Err(invalid("a query or fragment has no meaning here; give http://host:port[/prefix]"));
    }
    if rest.chars().any(|c| !c.is_ascii_graphic()) {
        return Err(invalid("spaces, control and non-ASCII characters must be percent-encoded"));
    }
    let (authority, prefix) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(invalid("no host; give http://host:port"));
    }
    if authority.contains('@') {
        return Err(invalid("credentials in the URL are not supported"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| invalid("unclosed [ in an IPv6 address"))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(invalid("unexpected text after the IPv6 address")),
            },
        }
    } else {
        match authority.split_once(':') {
            Some((_, port)) if port.contains(':') => {
                return Err(invalid("an IPv6 address must be in brackets, e.g. http://[::1]:9090"));
            }
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(invalid("no host; give http://host:port"));
    }
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| invalid(&format!("port {p:?} is not a number from 0 to 65535")))?,
        None => 80,
    };
    Ok(Target {
        host: host.to_string(),
        port,
        authority: authority.to_string(),
        path: format!("{}/status", prefix.trim_end_matches('/')),
    })
}

/// GET `<base>/status` and decode it. `base` is `http://host:port` with an optional path prefix
/// (a daemon behind a path-routing proxy); the scheme may be left out. `timeout` bounds the whole
/// exchange: connect, send, and read.
pub async fn fetch_status(base_url: &str, timeout: Duration) -> Result<StatusSnapshot, ClientError> {
    let target = parse_base(base_url)?;
    let url = target.url();
    let (status, body) = tokio::time::timeout(timeout, exchange(&target))
        .await
        .map_err(|_| ClientError::Timeout { url: url.clone(), timeout })??;
    if status != 200 {
        let text = String::from_utf8_lossy(&body);
        return Err(ClientError::Status { url, status, body: truncate(&one_line(text.trim()), 200) });
    }
    serde_json::from_slice(&body).map_err(|source| ClientError::Decode { url, source })
}

/// One request on a fresh connection: the status and the whole body.
async fn exchange(t: &Target) -> Result<(u16, Vec<u8>), ClientError> {
    let url = t.url();
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .user_agent(concat!("crosslink/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ClientError::Exchange { url: url.clone(), reason: causes(&e) })?;
    let failed = |e: reqwest::Error| {
        let reason = causes(&e);
        if e.is_connect() {
            ClientError::Connect { addr: t.authority.clone(), url: url.clone(), reason }
        } else {
            ClientError::Exchange { url: url.clone(), reason }
        }
    };
    let mut response =
        client.get(&url).header(reqwest::header::ACCEPT, "application/json").send().await.map_err(failed)?;
    let too_large = || ClientError::TooLarge { url: url.clone(), limit: MAX_RESPONSE_BYTES };
    if response.content_length().is_some_and(|n| n > MAX_RESPONSE_BYTES) {
        return Err(too_large());
    }
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if (body.len() + chunk.len()) as u64 > MAX_RESPONSE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}

/// What went wrong, from the innermost cause that says it: reqwest's own message only names the
/// request ("error sending request for url ..."), which the caller already says.
fn causes(e: &reqwest::Error) -> String {
    let mut reasons = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reasons.push(s.to_string());
        source = s.source();
    }
    // hyper's client error wraps its cause and repeats it: keep the last, most specific words.
    match reasons.last() {
        Some(last) => last.clone(),
        None => e.to_string(),
    }
}

/// The width the MESSAGE / ERROR column is cut to.
const MESSAGE_WIDTH: usize = 100;
/// Names longer than this are cut, so that one long name does not push every row off screen.
const NAME_WIDTH: usize = 40;

/// The report as text for a terminal: a header block, then one row per gateway and link.
pub fn status_table(s: &StatusSnapshot) -> String {
    status_table_at(s, SystemTime::now())
}

fn status_table_at(s: &StatusSnapshot, now: SystemTime) -> String {
    let mut out = String::new();
    let field = |out: &mut String, name: &str, value: &str| {
        let _ = writeln!(out, "{:<11}{}", format!("{name}:"), one_line(value));
    };
    field(&mut out, "instance", &s.instance);
    field(&mut out, "version", &s.version);
    field(&mut out, "ready", if s.ready { "yes" } else { "no" });
    let revision = match (&s.desired.revision, &s.desired.loaded_at) {
        (Some(rev), Some(at)) => format!("{rev} (loaded {})", ago(at, now).unwrap_or_else(|| at.clone())),
        (Some(rev), None) => rev.clone(),
        (None, _) => "none loaded".to_string(),
    };
    field(&mut out, "revision", &revision);
    let synced = s.last_full_sync.as_deref().map(|at| with_age(at, now)).unwrap_or_else(|| "not yet".into());
    field(&mut out, "last sync", &synced);

    // The two alerts sit together, apart from the facts above and the table below.
    if s.desired.error.is_some() || s.prune.blocked || s.protection.blocked {
        out.push('\n');
    }
    if let Some(err) = &s.desired.error {
        let rejected =
            s.desired.invalid_revision.as_deref().map(|r| format!("revision {r}")).unwrap_or("newest".into());
        let in_force =
            s.desired.revision.as_deref().map(|r| format!("still running {r}")).unwrap_or("none in force".into());
        let _ = writeln!(out, "DESIRED STATE ERROR ({} rejected; {}):", one_line(&rejected), one_line(&in_force));
        for line in err.lines() {
            let _ = writeln!(out, "  {}", one_line(line));
        }
    }
    if s.prune.blocked {
        let mut line = String::from("PRUNE GUARD: deletions held back");
        if !s.prune.links.is_empty() {
            let _ = write!(line, " for {} link(s): {}", s.prune.links.len(), s.prune.links.join(", "));
        }
        if let Some(msg) = &s.prune.message {
            let _ = write!(line, "; {msg}");
        }
        let _ = writeln!(out, "{}", one_line(&line));
    }

    if s.protection.blocked {
        let line = format!("PROTECTION GUARD: held back: {}", s.protection.changes.join("; "));
        let _ = writeln!(out, "{}", one_line(&line));
    }
    if let Some(ev) = &s.events {
        field(&mut out, "events", &format!("{} ({})", ev.summary(), ev.queue));
    }
    if let Some(sh) = &s.shards {
        let mine: Vec<&str> = sh.units.iter().filter(|u| u.mine).map(|u| u.unit.as_str()).collect();
        field(&mut out, "replica", &format!("{} of {} ({})", sh.replica, sh.members.join(", "), sh.backend));
        field(&mut out, "units", &format!("{} of {} held here: {}", mine.len(), sh.units.len(), mine.join(", ")));
        let elsewhere: Vec<String> = sh
            .units
            .iter()
            .filter(|u| !u.mine)
            .map(|u| format!("{} -> {}", u.unit, u.holder.as_deref().unwrap_or("NO OWNER")))
            .collect();
        if !elsewhere.is_empty() {
            field(&mut out, "elsewhere", &elsewhere.join(", "));
        }
        if let Some(err) = &sh.last_error {
            field(&mut out, "coord err", err);
        }
    }
    out.push('\n');
    let rows: Vec<[String; 6]> = s.gateways.iter().chain(&s.links).chain(&s.consumers).map(|o| row(o, now)).collect();
    if rows.is_empty() {
        out.push_str("no gateways or links in desired state\n");
        return out;
    }
    let header = ["KIND", "NAME", "PHASE", "PENDING", "LAST RECONCILE", "MESSAGE / ERROR"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for r in std::iter::once(&header).chain(&rows) {
        let [kind, name, phase, pending, reconciled, message] = r;
        let line = format!(
            "{kind:<w0$}  {name:<w1$}  {phase:<w2$}  {pending:>w3$}  {reconciled:<w4$}  {message}",
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4],
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn row(o: &ObjectStatus, now: SystemTime) -> [String; 6] {
    let reconciled = match &o.last_reconcile {
        Some(at) => ago(at, now).unwrap_or_else(|| at.clone()),
        None => "never".to_string(),
    };
    // The error is why the message says what it says; it goes last so that the cut takes the
    // end of the error text rather than the code.
    let message = match &o.last_error {
        Some(e) if o.message.is_empty() => format!("{}: {}", e.code, e.message),
        Some(e) => format!("{} [{}: {}]", o.message, e.code, e.message),
        None => o.message.clone(),
    };
    let message = match o.warnings.as_slice() {
        [] => message,
        w => format!("{message}; warning: {}", w.join("; ")),
    };
    [
        truncate(&one_line(&o.kind), NAME_WIDTH),
        truncate(&one_line(&o.name), NAME_WIDTH),
        o.phase.as_str().to_string(),
        o.pending_changes.to_string(),
        truncate(&one_line(&reconciled), NAME_WIDTH),
        truncate(&one_line(&message), MESSAGE_WIDTH),
    ]
}

/// Text from the daemon made safe for a terminal: control characters (newlines, escape
/// sequences) become spaces, and runs of whitespace fold into one.
fn one_line(s: &str) -> String {
    let cleaned: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// At most `max` characters, the last of them `…` when something was cut.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut cut: String = s.chars().take(max.saturating_sub(1)).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crosslink_controller::status::{DesiredStatus, LastError, Phase, PruneStatus};

    use super::*;

    fn target(host: &str, port: u16, authority: &str, path: &str) -> Target {
        Target { host: host.into(), port, authority: authority.into(), path: path.into() }
    }

    #[test]
    fn base_urls_that_parse() {
        let cases = [
            ("http://127.0.0.1:9090", target("127.0.0.1", 9090, "127.0.0.1:9090", "/status")),
            ("http://127.0.0.1:9090/", target("127.0.0.1", 9090, "127.0.0.1:9090", "/status")),
            (
                "HTTP://ops.example:8080/crosslink/",
                target("ops.example", 8080, "ops.example:8080", "/crosslink/status"),
            ),
            ("localhost:9090", target("localhost", 9090, "localhost:9090", "/status")),
            ("http://crosslink.internal", target("crosslink.internal", 80, "crosslink.internal", "/status")),
            ("http://[::1]:9090/a/b", target("::1", 9090, "[::1]:9090", "/a/b/status")),
            ("http://[::1]", target("::1", 80, "[::1]", "/status")),
        ];
        for (base, want) in cases {
            assert_eq!(parse_base(base).unwrap(), want, "{base}");
        }
    }

    #[test]
    fn base_urls_that_do_not_parse_say_why() {
        let cases = [
            ("https://crosslink:9090", "https is not supported"),
            ("ftp://crosslink", "unsupported scheme \"ftp\""),
            ("http://", "no host"),
            ("http://:9090", "no host"),
            ("http://host:http", "port \"http\" is not a number"),
            ("http://host:70000", "port \"70000\" is not a number"),
            ("http://::1:9090", "must be in brackets"),
            ("http://[::1", "unclosed ["),
            ("http://user:pw@host:1", "credentials"),
            ("http://host:1/status?x=1", "query or fragment"),
            ("http://host:1/a b", "percent-encoded"),
        ];
        for (base, want) in cases {
            let err = parse_base(base).unwrap_err().to_string();
            assert!(err.contains(want), "{base}: {err:?} does not contain {want:?}");
        }
    }

    fn object(kind: &str, name: &str, phase: Phase, message: &str) -> ObjectStatus {
        ObjectStatus {
            kind: kind.into(),
            name: name.into(),
            phase,
            message: message.into(),
            last_reconcile: Some("2025-06-01T09:59:50Z".into()),
            last_error: None,
            transport: None,
            resources: BTreeMap::new(),
            pending_changes: 0,
            revision: None,
            retained: vec![],
            warnings: vec![],
            synced: true,
            health: None,
        }
    }

    #[test]
    fn a_table_with_a_header_block_and_one_row_per_object() {
        let mut payments = object("Link", "payments", Phase::Degraded, "retrying in 30s");
        payments.pending_changes = 12;
        payments.last_error =
            Some(LastError { code: "ThrottlingException".into(), message: "Rate exceeded".into(), hint: None });
        let mut ledger = object("Link", "ledger", Phase::Failed, "");
        ledger.last_error = Some(LastError {
            code: "CidrOverlap".into(),
            message: "10.1.0.0/16 overlaps the gateway VPC\n\x1b[31mred\x1b[0m ".repeat(10),
            hint: None,
        });
        ledger.last_reconcile = None;
        let s = StatusSnapshot {
            shards: None,
            events: None,
            protection: Default::default(),
            instance: "crosslink-0".into(),
            version: "0.1.0".into(),
            ready: false,
            desired: DesiredStatus {
                revision: Some("3f2a9c1".into()),
                loaded_at: Some("2025-06-01T09:00:00Z".into()),
                error: Some("links.yaml:3:7: Link/a: spec.port: expected a number\nlinks.yaml:9:1: second".into()),
                invalid_revision: Some("bad77".into()),
            },
            prune: PruneStatus { blocked: true, links: vec!["a".into(), "b".into()], message: Some("held".into()) },
            last_full_sync: None,
            gateways: vec![object("Gateway", "edge", Phase::Ready, "in sync")],
            links: vec![payments, ledger],
            consumers: vec![ObjectStatus {
                warnings: vec![
                    "API key crosslink-acme-g1 (k1) of generation 1 still works until 2025-06-02T09:00:00Z".into(),
                ],
                ..object("Consumer", "acme", Phase::Ready, "in sync")
            }],
        };
        let now = humantime::parse_rfc3339("2025-06-01T10:00:00Z").unwrap();
        let table = status_table_at(&s, now);
        let want_head = "\
instance:  crosslink-0
version:   0.1.0
ready:     no
revision:  3f2a9c1 (loaded 60m ago)
last sync: not yet

DESIRED STATE ERROR (revision bad77 rejected; still running 3f2a9c1):
  links.yaml:3:7: Link/a: spec.port: expected a number
  links.yaml:9:1: second
PRUNE GUARD: deletions held back for 2 link(s): a, b; held

KIND      NAME      PHASE     PENDING  LAST RECONCILE  MESSAGE / ERROR
Gateway   edge      Ready           0  10s ago         in sync
Link      payments  Degraded       12  10s ago         retrying in 30s [ThrottlingException: Rate exceeded]
Link      ledger    Failed          0  never           CidrOverlap: 10.1.0.0/16 overlaps the gateway VPC [31mred [0m 10.1.0.0/16 overlaps the gateway VPC…
Consumer  acme      Ready           0  10s ago         in sync; warning: API key crosslink-acme-g1 (k1) of generation 1 still works until 2025-06-02T09:00…
";
        assert_eq!(table, want_head, "\n{table}");
        assert!(!table.contains('\x1b'), "escape sequences from the daemon reach the terminal");
    }

    #[test]
    fn a_replica_says_which_units_it_holds_and_who_holds_the_others() {
        use crosslink_coord::{ShardStatus, UnitStatus};
        let unit = |u: &str, holder: Option<&str>, mine: bool| UnitStatus {
            unit: u.into(),
            gateways: vec![u.into()],
            holder: holder.map(str::to_string),
            preferred: holder.map(str::to_string),
            mine,
            valid_for_ms: mine.then_some(9000),
        };
        let s = StatusSnapshot {
            events: None,
            protection: Default::default(),
            shards: Some(ShardStatus {
                replica: "crosslink-1".into(),
                backend: "etcd http://10.0.0.1:2379 /crosslink/prod".into(),
                members: vec!["crosslink-0".into(), "crosslink-1".into()],
                units: vec![
                    unit("edge", Some("crosslink-1"), true),
                    unit("partner", Some("crosslink-0"), false),
                    unit("_orphans", None, false),
                ],
                last_error: Some("coordination engine unavailable: no etcd member answered".into()),
                ..ShardStatus::default()
            }),
            ..StatusSnapshot::default()
        };
        let table = status_table_at(&s, SystemTime::now());
        for line in [
            "replica:   crosslink-1 of crosslink-0, crosslink-1 (etcd http://10.0.0.1:2379 /crosslink/prod)\n",
            "units:     1 of 3 held here: edge\n",
            "elsewhere: partner -> crosslink-0, _orphans -> NO OWNER\n",
            "coord err: coordination engine unavailable: no etcd member answered\n",
        ] {
            assert!(table.contains(line), "{line:?} missing from\n{table}");
        }
        let html = crate::page::render(&s, SystemTime::now());
        assert!(html.contains("<h2>Replicas (2)</h2>"), "{html}");
        assert!(html.contains("<strong>crosslink-1</strong> (this replica)"));
        assert!(html.contains("<span class=\"err\">none</span>"), "a unit without owner stands out");
    }

    #[test]
    fn the_events_queue_and_its_last_event_are_one_line() {
        let s = StatusSnapshot {
            events: Some(crosslink_controller::events::EventsStatus {
                queue: "https://sqs.eu-central-1.amazonaws.com/111111111111/crosslink-events".into(),
                state: "ok".into(),
                received: 12,
                triggered: 3,
                last_event: Some(crosslink_controller::events::LastEvent {
                    id: "e".into(),
                    source: "elasticloadbalancing".into(),
                    name: "DeregisterTargets".into(),
                    account: "111111111111".into(),
                    received: "2026-12-04T02:00:00Z".into(),
                    outcome: "reconcile: Link/pay".into(),
                }),
                ..Default::default()
            }),
            ..StatusSnapshot::default()
        };
        let table = status_table_at(&s, SystemTime::now());
        let line = "events:    ok: 12 received, 3 reconciled; last DeregisterTargets in 111111111111 (elasticloadbalancing) at 2026-12-04T02:00:00Z: reconcile: Link/pay (https://sqs.eu-central-1.amazonaws.com/111111111111/crosslink-events)\n";
        assert!(table.contains(line), "{line:?} missing from\n{table}");
        assert!(!status_table_at(&StatusSnapshot::default(), SystemTime::now()).contains("events:"));
    }

    #[test]
    fn an_empty_report_says_so() {
        let table = status_table_at(&StatusSnapshot::default(), SystemTime::now());
        assert!(table.ends_with("\nno gateways or links in desired state\n"), "{table}");
        assert!(table.contains("revision:  none loaded\n"));
    }
}
