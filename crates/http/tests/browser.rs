//! The status page in a real browser (Debian's headless Chromium, installed by the harness when
//! missing): a degraded link's page at phone and desktop widths, screenshotted and checked to be
//! rendered (not blank, the broken hop's red mark drawn), its broken hop first in the DOM, and
//! the column headers of every table laid out on one line each (no mid-word wrap).

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crosslink_controller::metrics::Metrics;
use crosslink_controller::status::{Health, ObjectStatus, Phase, StatusSnapshot};
use crosslink_http::{AppState, serve};
use crosslink_plan::health::{Hop, HopState, LinkHealth, TargetCounts};
use tokio::net::TcpListener;
use tokio::sync::watch;

fn hop(kind: &str, name: &str, account: &str, state: HopState, detail: &str) -> Hop {
    Hop {
        kind: kind.into(),
        name: name.into(),
        account: account.into(),
        id: Some(format!("arn:aws:elasticloadbalancing:eu-central-1:111111111111:{kind}/net/edge-nlb/50dc6c495c0c9188")),
        state,
        detail: detail.into(),
        hint: Some("in account payments: check that the service listens on 10.20.1.10:8080, that its security group admits 10.1.0.0/16".into()),
    }
}

fn link(name: &str, phase: Phase, health: Option<LinkHealth>, message: &str) -> ObjectStatus {
    ObjectStatus {
        kind: "Link".into(),
        name: name.into(),
        phase,
        message: message.into(),
        last_reconcile: Some("2026-12-03T10:00:00Z".into()),
        last_error: None,
        transport: None,
        resources: [
            ("listener".to_string(), "arn:aws:elasticloadbalancing:eu-central-1:111111111111:listener/net/edge-nlb/50dc6c495c0c9188/f2f7dc8efc522ab2".to_string()),
            ("peering".to_string(), "pcx-0a1b2c3d4e5f60718".to_string()),
        ]
        .into(),
        pending_changes: 0,
        revision: Some("3f2a9c1d0b7e".into()),
        retained: vec![],
        warnings: vec![],
        synced: true,
        health,
    }
}

fn snapshot() -> StatusSnapshot {
    let hops = vec![
        hop("route", "GET, POST /payments", "shared", HopState::Ok, "HTTP_PROXY through the VPC link"),
        hop("stage", "stage v1", "shared", HopState::Ok, "deployed (a1b2c3)"),
        hop("vpcLink", "VPC link crosslink-edge", "shared", HopState::Ok, "AVAILABLE"),
        hop("listener", "listener :9001", "shared", HopState::Ok, "TCP :9001"),
        hop("targetGroup", "target group cl-payments-3f9a1c", "shared", HopState::Ok, "2 target(s) registered"),
        hop(
            "target",
            "target 10.20.1.10:8080",
            "payments",
            HopState::Broken,
            "unhealthy: Target.FailedHealthChecks: Health checks failed",
        ),
        hop("target", "target 10.20.1.11:8080", "payments", HopState::Starting, "initial: Elb.InitialHealthChecking"),
        hop("peering", "peering pcx-0a1b2c3d4e5f60718", "shared", HopState::Ok, "active"),
        hop(
            "networkRoute",
            "route 10.20.0.0/16 in rtb-0a1b2c3d4e5f60001",
            "shared",
            HopState::Ok,
            "active via pcx-0a1b2c3d4e5f60718",
        ),
    ];
    let degraded = LinkHealth {
        healthy: false,
        summary: "0 of 2 targets healthy (Target.FailedHealthChecks)".into(),
        targets: TargetCounts { unhealthy: 1, initial: 1, ..TargetCounts::default() },
        min_healthy_targets: 1,
        first_broken: Some(5),
        hops,
    };
    StatusSnapshot {
        instance: "crosslink-0".into(),
        version: "0.1.0".into(),
        ready: true,
        links: vec![
            link(
                "payments",
                Phase::Degraded,
                Some(degraded),
                "in sync, but 0 of 2 targets healthy (Target.FailedHealthChecks)",
            ),
            link("refunds", Phase::Progressing, None, "waiting: peering pcx-0f1e2d3c4b5a69788 is PendingAcceptance"),
        ],
        gateways: vec![ObjectStatus { kind: "Gateway".into(), ..link("edge", Phase::Ready, None, "in sync") }],
        ..Default::default()
    }
}

/// Serves the daemon's routes with `snapshot()` on a free loopback port.
async fn daemon() -> (String, watch::Sender<StatusSnapshot>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = watch::channel(snapshot());
    let state = AppState {
        status: rx,
        metrics: Arc::new(Metrics::new("0.1.0", "abc123")),
        health: Health::new(),
        liveness_timeout: Duration::from_secs(60),
    };
    tokio::spawn(async move { serve(listener, state, std::future::pending()).await });
    (format!("http://{addr}"), tx)
}

fn browser() -> String {
    crosslink_testkit::apt::chromium().unwrap_or_else(|e| panic!("this test needs a browser: {e}"))
}

fn chromium(args: &[&str]) -> std::process::Output {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let profile = crosslink_testkit::scratch_dir(&format!("chromium-profile-{run}"));
    let out = Command::new(browser())
        .args(["--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("run chromium");
    let _ = std::fs::remove_dir_all(&profile);
    out
}

/// The pixels of a PNG, as RGB(A) rows: (width, height, bytes per pixel, data).
fn decode(path: &Path) -> (u32, u32, usize, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{} is not a PNG", path.display());
    let mut reader = png::Decoder::new(Cursor::new(bytes)).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let bpp = info.color_type.samples();
    buf.truncate(info.buffer_size());
    (info.width, info.height, bpp, buf)
}

fn screenshot(url: &str, width: u32, height: u32, file: &Path) {
    let out = chromium(&[
        &format!("--screenshot={}", file.display()),
        &format!("--window-size={width},{height}"),
        "--virtual-time-budget=2000",
        url,
    ]);
    assert!(file.exists(), "no screenshot: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_degraded_link_s_page_renders_at_phone_and_desktop_widths_with_its_broken_hop_marked() {
    let (base, _keep) = daemon().await;
    let dir: PathBuf = crosslink_testkit::scratch_dir("browser");
    let url = format!("{base}/links/payments");
    let shots = tokio::task::spawn_blocking({
        let (url, dir) = (url.clone(), dir.clone());
        move || {
            let mut found = Vec::new();
            for (w, h) in [(390u32, 844u32), (1280, 800)] {
                let file = dir.join(format!("link-{w}x{h}.png"));
                screenshot(&url, w, h, &file);
                found.push((w, h, file));
            }
            found
        }
    })
    .await
    .unwrap();
    for (w, h, file) in shots {
        let (pw, ph, bpp, data) = decode(&file);
        assert_eq!((pw, ph), (w, h), "{}", file.display());
        let pixels: Vec<&[u8]> = data.chunks(bpp).collect();
        let mut colours: Vec<[u8; 3]> = pixels.iter().map(|p| [p[0], p[1], p[2]]).collect();
        colours.sort_unstable();
        colours.dedup();
        assert!(colours.len() > 50, "{}: {} colours: a blank page?", file.display(), colours.len());
        // The broken hop's mark (#cf222e: its callout border and badge) is drawn.
        let red = pixels.iter().filter(|p| p[0] == 0xcf && p[1] == 0x22 && p[2] == 0x2e).count();
        assert!(red > 100, "{}: {red} pixels of the broken hop's red", file.display());
        eprintln!("{}: {pw}x{ph}, {} colours, {red} red pixels", file.display(), colours.len());
    }

    // The DOM as the browser built it: the broken hop comes first, then every hop.
    let dom = tokio::task::spawn_blocking(move || chromium(&["--dump-dom", &url])).await.unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    let first = dom.find("Look here first:").unwrap_or_else(|| panic!("no callout in\n{dom}"));
    assert!(
        dom[first..]
            .starts_with("Look here first:</strong> target 10.20.1.10:8080 in account <strong>payments</strong>"),
        "{dom}"
    );
    assert!(first < dom.find("<h2>Hops (9)</h2>").unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Each header cell's text laid out by the browser: the number of lines it takes, written into
/// the DOM by a script in a copy of the page (the daemon's own page runs no script).
const MEASURE: &str = r#"<script>
document.querySelectorAll('th').forEach(function (th) {
  var r = document.createRange(); r.selectNodeContents(th);
  var tops = {}; Array.prototype.forEach.call(r.getClientRects(), function (c) { tops[Math.round(c.top)] = 1; });
  th.setAttribute('data-lines', Object.keys(tops).length);
});
</script>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn column_headers_never_wrap_mid_word_at_desktop_widths() {
    let (base, _keep) = daemon().await;
    let mut pages = Vec::new();
    for path in ["/", "/links/payments"] {
        let html = reqwest::get(format!("{base}{path}")).await.unwrap().text().await.unwrap();
        assert!(html.contains("<th>"), "{path} has headers");
        pages.push((path, html.replace("</body>", &format!("{MEASURE}</body>"))));
    }
    let dir = crosslink_testkit::scratch_dir("browser-headers");
    let results = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for (path, html) in pages {
            let file = dir.join(format!("{}.html", path.replace('/', "_")));
            std::fs::write(&file, html).unwrap();
            for width in [1024u32, 1280] {
                let dom = chromium(&[
                    &format!("--window-size={width},800"),
                    "--dump-dom",
                    &format!("file://{}", file.display()),
                ]);
                out.push((path, width, String::from_utf8_lossy(&dom.stdout).into_owned()));
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        out
    })
    .await
    .unwrap();
    for (path, width, dom) in results {
        let measured: Vec<&str> =
            dom.match_indices("data-lines=\"").map(|(i, m)| &dom[i + m.len()..i + m.len() + 1]).collect();
        let headers = dom.matches("</th>").count();
        assert!(
            headers > 0 && measured.len() == headers,
            "{path} at {width}px: {} of {headers} measured\n{dom}",
            measured.len()
        );
        assert!(measured.iter().all(|n| *n == "1"), "{path} at {width}px: a header wraps: {measured:?}\n{dom}");
    }
}
