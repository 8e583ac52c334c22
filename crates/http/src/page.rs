//! The status report as one self-contained HTML page, for an on-call engineer on a phone: no
//! script, no external asset, every text escaped, refreshed by the browser every 15 s.

use std::fmt::Write as _;
use std::time::SystemTime;

use crosslink_controller::status::{ObjectStatus, Phase, StatusSnapshot};
use crosslink_plan::health::LinkHealth;

use crate::when::with_age;

/// Seconds between the browser's reloads of the page.
pub(crate) const REFRESH_SECS: u32 = 15;

/// Text made safe for HTML element content and quoted attribute values.
pub(crate) fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #fff; --muted: #656d76; --line: #d0d7de; --head: #f6f8fa; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --bg: #0d1117; --muted: #8d96a0; --line: #30363d; --head: #161b22; } }
* { box-sizing: border-box; }
body { margin: 0; padding: 12px; font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
h1 { font-size: 1.3em; margin: 0 0 8px; }
h2 { font-size: 1.1em; margin: 20px 0 6px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.banner { border-radius: 6px; padding: 10px 12px; margin: 12px 0; color: #fff; }
.banner.error { background: #b42318; }
.banner.warn { background: #9a6700; }
span.warn { color: #9a6700; }
.banner pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: 6px 0 0; font-size: 0.9em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 6px 8px; border-bottom: 1px solid var(--line); overflow-wrap: anywhere; }
th { background: var(--head); font-weight: 600; white-space: nowrap; overflow-wrap: normal; }
.scroll { overflow-x: auto; }
.hop-ok { background: #1a7f37; }
.hop-starting { background: #9a6700; }
.hop-broken { background: #cf222e; }
.hop-unknown { background: #6e7781; }
tr.first { outline: 3px solid #cf222e; outline-offset: -3px; }
.callout { border-left: 6px solid #cf222e; background: var(--head); padding: 10px 12px; margin: 12px 0; border-radius: 4px; }
.callout.ok { border-left-color: #1a7f37; }
td.num { text-align: right; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 0.85em; font-weight: 600; color: #fff; white-space: nowrap; }
.Ready { background: #1a7f37; }
.Progressing { background: #0969da; }
.Degraded { background: #bf8700; }
.Failed { background: #cf222e; }
.PruneBlocked { background: #8250df; }
.no { background: #cf222e; }
.err code { font-weight: 600; }
.hint { color: var(--muted); }
.small { font-size: 0.8em; color: var(--muted); }
.empty { color: var(--muted); }
footer { margin-top: 20px; font-size: 0.8em; color: var(--muted); }
a { color: inherit; }
@media (max-width: 720px) {
  table, tbody, tr, td { display: block; width: 100%; }
  thead { display: none; }
  tr { border: 1px solid var(--line); border-radius: 6px; margin-bottom: 10px; padding: 4px 0; }
  td { border: 0; padding: 3px 10px; }
  td.num { text-align: left; }
  td::before { content: attr(data-label); display: block; font-size: 0.75em; color: var(--muted); }
}
"#;

/// The whole page. `now` only gives the ages of the times shown.
pub(crate) fn render(s: &StatusSnapshot, now: SystemTime) -> String {
    let e = escape_html;
    let mut h = String::with_capacity(8 * 1024);
    let title = if s.instance.is_empty() { "crosslink".to_string() } else { format!("crosslink · {}", s.instance) };
    head(&mut h, &title);

    let _ = write!(h, "<header><h1>{}</h1><dl class=\"facts\">", e(&title));
    fact(&mut h, "version", &e(&s.version));
    let ready = if s.ready { "<span class=\"badge Ready\">yes</span>" } else { "<span class=\"badge no\">no</span>" };
    fact(&mut h, "ready", ready);
    let revision = match (&s.desired.revision, &s.desired.loaded_at) {
        (Some(rev), Some(at)) => format!("{} <span class=\"small\">loaded {}</span>", e(rev), e(&with_age(at, now))),
        (Some(rev), None) => e(rev),
        (None, _) => "<span class=\"empty\">none loaded</span>".to_string(),
    };
    fact(&mut h, "desired revision", &revision);
    let synced = match &s.last_full_sync {
        Some(at) => e(&with_age(at, now)),
        None => "<span class=\"empty\">not yet</span>".to_string(),
    };
    fact(&mut h, "last full sync", &synced);
    fact(&mut h, "gateways", &e(&phase_counts(&s.gateways)));
    fact(&mut h, "links", &e(&phase_counts(&s.links)));
    if !s.consumers.is_empty() {
        fact(&mut h, "consumers", &e(&phase_counts(&s.consumers)));
    }
    h.push_str("</dl></header>\n");

    if let Some(err) = &s.desired.error {
        let rejected = match &s.desired.invalid_revision {
            Some(rev) => format!("revision {}", e(rev)),
            None => "the newest desired state".to_string(),
        };
        let in_force = match &s.desired.revision {
            Some(rev) => format!("revision {} stays in force", e(rev)),
            None => "no desired state is in force".to_string(),
        };
        let _ = writeln!(
            h,
            "<div class=\"banner error\" role=\"alert\"><strong>Desired state rejected:</strong> {rejected} \
             could not be loaded; {in_force}.<pre>{}</pre></div>",
            e(err)
        );
    }
    if s.prune.blocked {
        let _ =
            write!(h, "<div class=\"banner warn\" role=\"alert\"><strong>Prune guard:</strong> deletions held back");
        if !s.prune.links.is_empty() {
            let _ = write!(h, " for {} link(s): {}", s.prune.links.len(), e(&s.prune.links.join(", ")));
        }
        h.push('.');
        if let Some(msg) = &s.prune.message {
            let _ = write!(h, " {}", e(msg));
        }
        h.push_str("</div>\n");
    }

    if s.protection.blocked {
        let _ = write!(
            h,
            "<div class=\"banner warn\" role=\"alert\"><strong>Protection guard:</strong> {} change(s) held back that would make routes less protected",
            s.protection.changes.len()
        );
        if !s.protection.changes.is_empty() {
            let _ = write!(h, ": {}", e(&s.protection.changes.join("; ")));
        }
        h.push('.');
        if let Some(msg) = &s.protection.message {
            let _ = write!(h, " {}", e(msg));
        }
        h.push_str("</div>\n");
    }
    if let Some(ev) = &s.events {
        let class = if ev.state == "failing" { "banner error" } else { "banner" };
        let _ = writeln!(
            h,
            "<div class=\"{class}\"><strong>Change events</strong> ({}): {}</div>",
            e(&ev.queue),
            e(&ev.summary())
        );
    }
    if let Some(sh) = &s.shards {
        shards(&mut h, sh);
    }
    table(&mut h, "Gateways", &s.gateways, now);
    table(&mut h, "Links", &s.links, now);
    if !s.consumers.is_empty() {
        table(&mut h, "Consumers", &s.consumers, now);
    }

    let _ = writeln!(
        h,
        "<footer>Refreshes every {REFRESH_SECS} s · {} · <a href=\"status\">JSON</a> · \
         <a href=\"metrics\">metrics</a></footer>\n</body></html>",
        e(&crosslink_controller::status::rfc3339(
            now.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
        ))
    );
    h
}

/// Who owns which unit: this replica's units first. Gateways and links below are only this
/// replica's.
fn shards(h: &mut String, sh: &crosslink_coord::ShardStatus) {
    let e = escape_html;
    let mine = sh.units.iter().filter(|u| u.mine).count();
    let _ = writeln!(
        h,
        "<h2>Replicas ({})</h2><p>This is <strong>{}</strong>; it holds {mine} of {} units ({}).          Gateways and links of other units are reported by their holder.</p>",
        sh.members.len(),
        e(&sh.replica),
        sh.units.len(),
        e(&sh.backend)
    );
    if let Some(err) = &sh.last_error {
        let _ = writeln!(
            h,
            "<div class=\"banner error\" role=\"alert\"><strong>Coordination:</strong> {}; units are              kept only until their renew deadline.</div>",
            e(err)
        );
    }
    h.push_str(
        "<div class=\"scroll\"><table><thead><tr><th>Unit</th><th>Gateways</th><th>Holder</th><th>Preferred</th></tr></thead><tbody>\n",
    );
    let mut units: Vec<&crosslink_coord::UnitStatus> = sh.units.iter().collect();
    units.sort_by_key(|u| (!u.mine, u.unit.clone()));
    for u in units {
        let holder = match (&u.holder, u.mine) {
            (Some(hd), true) => format!("<strong>{}</strong> (this replica)", e(hd)),
            (Some(hd), false) => e(hd),
            (None, _) => "<span class=\"err\">none</span>".to_string(),
        };
        let _ = writeln!(
            h,
            "<tr><td data-label=\"Unit\">{}</td><td data-label=\"Gateways\">{}</td><td data-label=\"Holder\">{holder}</td>\
             <td data-label=\"Preferred\">{}</td></tr>",
            e(&u.unit),
            e(&u.gateways.join(", ")),
            e(u.preferred.as_deref().unwrap_or(""))
        );
    }
    h.push_str("</tbody></table></div>\n");
}

/// `value_html` is already escaped.
fn fact(h: &mut String, name: &str, value_html: &str) {
    let _ = write!(h, "<dt>{name}</dt><dd>{value_html}</dd>");
}

/// `"4: 3 Ready, 1 Degraded"`, so that trouble shows without scrolling.
pub(crate) fn phase_counts(objects: &[ObjectStatus]) -> String {
    let mut counts: Vec<(Phase, usize)> = Vec::new();
    for o in objects {
        match counts.iter_mut().find(|(p, _)| *p == o.phase) {
            Some((_, n)) => *n += 1,
            None => counts.push((o.phase, 1)),
        }
    }
    counts.sort();
    let parts: Vec<String> = counts.iter().map(|(p, n)| format!("{n} {}", p.as_str())).collect();
    if parts.is_empty() { "0".to_string() } else { format!("{}: {}", objects.len(), parts.join(", ")) }
}

fn table(h: &mut String, title: &str, objects: &[ObjectStatus], now: SystemTime) {
    let e = escape_html;
    let _ = writeln!(h, "<h2>{title} ({})</h2>", objects.len());
    if objects.is_empty() {
        let _ = writeln!(h, "<p class=\"empty\">No {} in desired state.</p>", title.to_lowercase());
        return;
    }
    let links = title == "Links";
    let healthy_th = if links { "<th>Healthy</th>" } else { "" };
    let _ = writeln!(
        h,
        "<div class=\"scroll\"><table><thead><tr><th>Name</th><th>Phase</th>{healthy_th}<th>Message</th><th>Last error</th>\
         <th>Pending</th><th>Last reconcile</th><th>Resources</th></tr></thead><tbody>",
    );
    for o in objects {
        let phase = o.phase.as_str();
        let error = match &o.last_error {
            Some(err) => {
                let hint = match &err.hint {
                    Some(hint) => format!("<br><span class=\"hint\">hint: {}</span>", e(hint)),
                    None => String::new(),
                };
                format!("<span class=\"err\"><code>{}</code> {}</span>{hint}", e(&err.code), e(&err.message))
            }
            None => String::new(),
        };
        let reconciled = match &o.last_reconcile {
            Some(at) => e(&with_age(at, now)),
            None => "<span class=\"empty\">never</span>".to_string(),
        };
        let mut resources: Vec<String> = o.resources.iter().map(|(k, v)| format!("{}: {}", e(k), e(v))).collect();
        resources.extend(o.retained.iter().map(|r| format!("kept: {}", e(r))));
        resources.extend(o.warnings.iter().map(|w| format!("<span class=\"warn\">warning: {}</span>", e(w))));
        let (name, healthy) = if links {
            let name = format!("<a href=\"links/{}\"><strong>{}</strong></a>", e(&path_segment(&o.name)), e(&o.name));
            (name, format!("<td data-label=\"Healthy\">{}</td>", healthy_badge(o.health.as_ref())))
        } else {
            (format!("<strong>{}</strong>", e(&o.name)), String::new())
        };
        let _ = writeln!(
            h,
            "<tr><td data-label=\"Name\">{name}</td>\
             <td data-label=\"Phase\"><span class=\"badge {phase}\">{phase}</span></td>{healthy}\
             <td data-label=\"Message\">{}</td><td data-label=\"Last error\">{error}</td>\
             <td data-label=\"Pending\" class=\"num\">{}</td><td data-label=\"Last reconcile\">{reconciled}</td>\
             <td data-label=\"Resources\" class=\"small\">{}</td></tr>",
            e(&o.message),
            o.pending_changes,
            resources.join("<br>"),
        );
    }
    h.push_str("</tbody></table></div>\n");
}

/// A link name as one path segment of its page's address.
pub(crate) fn path_segment(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// yes / no / starting / unknown, as a badge with its word (not colour alone).
fn healthy_badge(h: Option<&LinkHealth>) -> String {
    match h {
        None => "<span class=\"badge hop-unknown\">unknown</span>".into(),
        Some(h) if h.healthy => "<span class=\"badge hop-ok\">yes</span>".into(),
        Some(h) if h.starting() => "<span class=\"badge hop-starting\">starting</span>".into(),
        Some(_) => "<span class=\"badge hop-broken\">no</span>".into(),
    }
}

fn head(h: &mut String, title: &str) {
    let _ = writeln!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\
         <title>{}</title><style>{STYLE}</style></head><body>",
        escape_html(title)
    );
}

/// The page of one link: its phase, Synced and Healthy, the hop to look at first with its hint,
/// then every hop in the order a request takes them. `None` for a link not in the report.
pub(crate) fn render_link(s: &StatusSnapshot, name: &str, now: SystemTime) -> Option<String> {
    let e = escape_html;
    let o = s.links.iter().find(|l| l.name == name)?;
    let mut h = String::with_capacity(8 * 1024);
    head(&mut h, &format!("Link/{name} · crosslink"));
    let phase = o.phase.as_str();
    let _ = write!(
        h,
        "<header><p class=\"small\"><a href=\"../\">all links</a></p><h1>Link/{}</h1><dl class=\"facts\">",
        e(name)
    );
    fact(&mut h, "phase", &format!("<span class=\"badge {phase}\">{phase}</span> {}", e(&o.message)));
    let synced =
        if o.synced { "<span class=\"badge hop-ok\">yes</span>" } else { "<span class=\"badge hop-broken\">no</span>" };
    fact(&mut h, "synced", synced);
    let healthy = match &o.health {
        Some(hl) => format!("{} {}", healthy_badge(Some(hl)), e(&hl.summary)),
        None => format!("{} not observed yet", healthy_badge(None)),
    };
    fact(&mut h, "healthy", &healthy);
    if let Some(at) = &o.last_reconcile {
        fact(&mut h, "last reconcile", &e(&with_age(at, now)));
    }
    h.push_str("</dl></header>\n");
    if let Some(err) = &o.last_error {
        let _ = writeln!(
            h,
            "<div class=\"banner error\" role=\"alert\"><strong>{}</strong> {}{}</div>",
            e(&err.code),
            e(&err.message),
            err.hint.as_ref().map(|x| format!("<br>hint: {}", e(x))).unwrap_or_default()
        );
    }
    let Some(hl) = &o.health else {
        h.push_str("<p class=\"empty\">No observation of this link yet.</p></body></html>\n");
        return Some(h);
    };
    match hl.first_broken_hop() {
        Some(x) => {
            let _ = writeln!(
                h,
                "<div class=\"callout\" role=\"alert\"><strong>Look here first:</strong> {} in account <strong>{}</strong>: \
                 <span class=\"badge hop-{}\">{}</span> {}{}</div>",
                e(&x.name),
                e(&x.account),
                x.state.as_str(),
                x.state.as_str(),
                e(&x.detail),
                x.hint.as_ref().map(|t| format!("<br><span class=\"hint\">{}</span>", e(t))).unwrap_or_default()
            );
        }
        None => h.push_str("<div class=\"callout ok\">Every hop works.</div>\n"),
    }
    let _ = writeln!(h, "<h2>Hops ({})</h2>", hl.hops.len());
    h.push_str(
        "<div class=\"scroll\"><table><thead><tr><th>#</th><th>Hop</th><th>Name</th><th>Account</th><th>State</th>\
         <th>Detail</th><th>Id</th></tr></thead><tbody>\n",
    );
    for (i, x) in hl.hops.iter().enumerate() {
        let first = if hl.first_broken == Some(i) { " class=\"first\"" } else { "" };
        let state = x.state.as_str();
        let _ = writeln!(
            h,
            "<tr{first}><td data-label=\"#\" class=\"num\">{}</td><td data-label=\"Hop\">{}</td><td data-label=\"Name\">{}</td>\
             <td data-label=\"Account\">{}</td><td data-label=\"State\"><span class=\"badge hop-{state}\">{state}</span></td>\
             <td data-label=\"Detail\">{}</td><td data-label=\"Id\" class=\"small\">{}</td></tr>",
            i + 1,
            e(&x.kind),
            e(&x.name),
            e(&x.account),
            e(&x.detail),
            e(x.id.as_deref().unwrap_or(""))
        );
    }
    h.push_str("</tbody></table></div>\n");
    let _ = writeln!(
        h,
        "<footer>Refreshes every {REFRESH_SECS} s · <a href=\"../status\">JSON</a></footer>\n</body></html>"
    );
    Some(h)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::{Duration, UNIX_EPOCH};

    use crosslink_controller::status::{DesiredStatus, LastError, PruneStatus};

    use super::*;

    fn object(name: &str, phase: Phase, message: &str) -> ObjectStatus {
        ObjectStatus {
            kind: "Link".into(),
            name: name.into(),
            phase,
            message: message.into(),
            last_reconcile: Some("2025-06-01T10:00:00Z".into()),
            last_error: None,
            transport: None,
            resources: BTreeMap::from([("peering".to_string(), "pcx-0abc".to_string())]),
            pending_changes: 2,
            revision: None,
            retained: vec![],
            warnings: vec![],
            synced: true,
            health: None,
        }
    }

    fn now() -> SystemTime {
        humantime::parse_rfc3339("2025-06-01T10:00:42Z").unwrap()
    }

    #[test]
    fn escapes_every_html_special_character() {
        assert_eq!(escape_html(r#"<a href="x">&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
    }

    #[test]
    fn text_from_aws_or_manifests_cannot_inject_markup() {
        let mut link = object("<b>name</b>", Phase::Failed, "<script>alert(1)</script>");
        link.last_error = Some(LastError {
            code: "<img src=x onerror=alert(2)>".into(),
            message: "</td></tr></table><script>alert(3)</script>".into(),
            hint: Some("<iframe>".into()),
        });
        link.resources.insert("<k>".into(), "\"><script>".into());
        let s = StatusSnapshot {
            shards: None,
            events: None,
            protection: Default::default(),
            instance: "<i>prod</i>".into(),
            version: "0.1.0".into(),
            desired: DesiredStatus {
                revision: Some("<rev>".into()),
                error: Some("bad.yaml:1:1: <script>alert(4)</script>".into()),
                invalid_revision: Some("<bad>".into()),
                ..Default::default()
            },
            prune: PruneStatus { blocked: true, links: vec!["<l>".into()], message: Some("<m>".into()) },
            links: vec![link],
            ..Default::default()
        };
        let page = render(&s, now());
        for raw in ["<script", "<img", "<iframe", "<b>", "<i>", "<rev>", "<bad>", "<l>", "<m>", "<k>"] {
            assert!(!page.contains(raw), "{raw} not escaped in\n{page}");
        }
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;&lt;script&gt;alert(3)"));
    }

    #[test]
    fn a_page_an_engineer_can_read_on_a_phone() {
        let mut degraded = object("payments", Phase::Degraded, "retrying in 30s");
        degraded.last_error = Some(LastError {
            code: "ThrottlingException".into(),
            message: "Rate exceeded".into(),
            hint: Some("lower the request rate".into()),
        });
        let s = StatusSnapshot {
            shards: None,
            events: None,
            protection: Default::default(),
            instance: "crosslink-0".into(),
            version: "0.1.0".into(),
            ready: true,
            desired: DesiredStatus {
                revision: Some("3f2a9c1".into()),
                loaded_at: Some("2025-06-01T09:58:00Z".into()),
                ..Default::default()
            },
            last_full_sync: Some("2025-06-01T10:00:00Z".into()),
            gateways: vec![ObjectStatus { kind: "Gateway".into(), ..object("edge", Phase::Ready, "in sync") }],
            links: vec![object("orders", Phase::Ready, "in sync"), degraded],
            ..Default::default()
        };
        let page = render(&s, now());
        for want in [
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
            "<meta http-equiv=\"refresh\" content=\"15\">",
            "<title>crosslink · crosslink-0</title>",
            "<dt>desired revision</dt><dd>3f2a9c1 <span class=\"small\">loaded 2025-06-01T09:58:00Z (2m ago)</span>",
            "<dt>last full sync</dt><dd>2025-06-01T10:00:00Z (42s ago)</dd>",
            "<dt>links</dt><dd>2: 1 Ready, 1 Degraded</dd>",
            "<h2>Gateways (1)</h2>",
            "<h2>Links (2)</h2>",
            "<span class=\"badge Degraded\">Degraded</span>",
            "<code>ThrottlingException</code> Rate exceeded",
            "hint: lower the request rate",
            "<td data-label=\"Resources\" class=\"small\">peering: pcx-0abc</td>",
        ] {
            assert!(page.contains(want), "{want} missing from\n{page}");
        }
        // Self-contained: nothing for the browser to fetch or run.
        for banned in ["<script", "<link", "src=", "http://", "https://"] {
            assert!(!page.contains(banned), "{banned} in\n{page}");
        }
        assert!(!page.contains("class=\"banner"), "no banner expected when all is well");
    }

    #[test]
    fn banners_for_rejected_desired_state_and_prune_guard() {
        let s = StatusSnapshot {
            shards: None,
            events: None,
            protection: Default::default(),
            desired: DesiredStatus {
                revision: Some("good1".into()),
                error: Some("links.yaml:3:7: Link/a: spec.port: expected a number".into()),
                invalid_revision: Some("bad2".into()),
                ..Default::default()
            },
            prune: PruneStatus {
                blocked: true,
                links: vec!["a".into(), "b".into()],
                message: Some("3 of 4 links would be deleted; the guard allows 1".into()),
            },
            ..Default::default()
        };
        let page = render(&s, UNIX_EPOCH + Duration::from_secs(1));
        assert!(page.contains("<div class=\"banner error\""));
        assert!(page.contains("revision bad2 could not be loaded; revision good1 stays in force."));
        assert!(page.contains("<pre>links.yaml:3:7: Link/a: spec.port: expected a number</pre>"));
        assert!(page.contains(
            "deletions held back for 2 link(s): a, b. 3 of 4 links would be deleted; the guard allows 1</div>"
        ));
        assert!(page.contains("No links in desired state."));
    }

    fn hop(
        kind: &str,
        name: &str,
        state: crosslink_plan::health::HopState,
        detail: &str,
    ) -> crosslink_plan::health::Hop {
        crosslink_plan::health::Hop {
            kind: kind.into(),
            name: name.into(),
            account: "payments".into(),
            id: Some("id-1".into()),
            state,
            detail: detail.into(),
            hint: Some(format!("check {name} <now>")),
        }
    }

    fn degraded_link() -> ObjectStatus {
        use crosslink_plan::health::{HopState, TargetCounts};
        let hops = vec![
            hop("route", "GET /payments", HopState::Ok, "HTTP_PROXY through the VPC link"),
            hop("listener", "listener :9001", HopState::Ok, "TCP :9001"),
            hop("target", "target 10.20.1.10:8080", HopState::Broken, "unhealthy: Target.FailedHealthChecks"),
            hop("networkRoute", "route 10.1.0.0/16 in rtb-1", HopState::Broken, "blackhole: its target is gone"),
        ];
        ObjectStatus {
            health: Some(LinkHealth {
                healthy: false,
                summary: "0 of 1 targets healthy (Target.FailedHealthChecks)".into(),
                targets: TargetCounts { unhealthy: 1, ..TargetCounts::default() },
                min_healthy_targets: 1,
                first_broken: Some(2),
                hops,
            }),
            ..object("pay<x>", Phase::Degraded, "in sync, but 0 of 1 targets healthy (Target.FailedHealthChecks)")
        }
    }

    #[test]
    fn a_link_page_shows_the_broken_hop_first_then_every_hop_in_order() {
        let s = StatusSnapshot { links: vec![degraded_link()], ..Default::default() };
        let page = render_link(&s, "pay<x>", now()).unwrap();
        let callout = page.find("Look here first:").expect("a callout");
        let table = page.find("<h2>Hops (4)</h2>").expect("the hops");
        assert!(callout < table, "the broken hop comes before the table");
        assert!(page.contains(
            "<strong>Look here first:</strong> target 10.20.1.10:8080 in account <strong>payments</strong>: <span class=\"badge hop-broken\">broken</span> unhealthy: Target.FailedHealthChecks"
        ), "{page}");
        assert!(page.contains("check target 10.20.1.10:8080 &lt;now&gt;"), "the hint, escaped");
        assert!(page.contains("<tr class=\"first\"><td data-label=\"#\" class=\"num\">3</td>"), "the row marked");
        assert_eq!(page.matches("<tr class=\"first\"").count(), 1);
        let order: Vec<usize> = ["GET /payments", "listener :9001", "target 10.20.1.10", "route 10.1.0.0/16"]
            .iter()
            .map(|n| page.rfind(n).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "hops in traffic order");
        assert!(!page.contains("<x>") && page.contains("Link/pay&lt;x&gt;"));
        for banned in ["<script", "src=", "http://", "https://"] {
            assert!(!page.contains(banned), "{banned} in\n{page}");
        }
        assert!(render_link(&s, "other", now()).is_none());
    }

    #[test]
    fn the_index_says_whether_change_events_arrive_and_what_the_last_did() {
        let ev = crosslink_controller::events::EventsStatus {
            queue: "https://sqs.eu-central-1.amazonaws.com/111111111111/crosslink-events".into(),
            state: "failing".into(),
            last_error: Some("AccessDenied: not authorized to perform: sqs:receivemessage".into()),
            last_event: Some(crosslink_controller::events::LastEvent {
                id: "e1".into(),
                source: "ec2".into(),
                name: "DeleteRoute".into(),
                account: "222222222222".into(),
                received: "2026-12-04T02:00:00Z".into(),
                outcome: "reconcile: Link/<pay>".into(),
            }),
            received: 7,
            triggered: 3,
            ..Default::default()
        };
        let s = StatusSnapshot { events: Some(ev), ..Default::default() };
        let page = render(&s, now());
        assert!(page.contains("<div class=\"banner error\"><strong>Change events</strong> (https://sqs.eu-central-1.amazonaws.com/111111111111/crosslink-events): failing: 7 received, 3 reconciled; cannot read the queue: AccessDenied"), "{page}");
        assert!(
            page.contains(
                "last DeleteRoute in 222222222222 (ec2) at 2026-12-04T02:00:00Z: reconcile: Link/&lt;pay&gt;"
            ),
            "{page}"
        );
        let quiet = render(&StatusSnapshot::default(), now());
        assert!(!quiet.contains("Change events"), "nothing about events without a queue");
    }

    #[test]
    fn the_index_links_each_link_to_its_page_and_says_whether_it_is_healthy() {
        let mut fine = object("orders", Phase::Progressing, "starting");
        fine.health = None;
        let s = StatusSnapshot { links: vec![degraded_link(), fine], ..Default::default() };
        let page = render(&s, now());
        assert!(page.contains("<th>Healthy</th>"));
        assert!(page.contains("<a href=\"links/pay%3Cx%3E\"><strong>pay&lt;x&gt;</strong></a>"), "{page}");
        assert!(page.contains("<td data-label=\"Healthy\"><span class=\"badge hop-broken\">no</span></td>"));
        assert!(page.contains("<td data-label=\"Healthy\"><span class=\"badge hop-unknown\">unknown</span></td>"));
        // Headers never break mid-word; wide tables scroll instead of squashing.
        assert!(
            STYLE.contains(
                "th { background: var(--head); font-weight: 600; white-space: nowrap; overflow-wrap: normal; }"
            )
        );
        assert!(page.contains("<div class=\"scroll\"><table>"));
    }

    #[test]
    fn a_link_not_observed_yet_says_so() {
        let s = StatusSnapshot {
            links: vec![object("orders", Phase::Progressing, "2 change(s) in progress")],
            ..Default::default()
        };
        let page = render_link(&s, "orders", now()).unwrap();
        assert!(page.contains("not observed yet") && page.contains("No observation of this link yet."), "{page}");
    }
}
