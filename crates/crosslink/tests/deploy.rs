//! The deployment artifacts under deploy/ and the `iam-policy` command, checked as an operator
//! would rely on them: the Dockerfile's stages and wiring, the Kubernetes manifests against the
//! Kubernetes schemas (rendered with kustomize), the shape that running several replicas needs
//! (leases, RBAC, disruption budget, replica identity), the alert rules with promtool, the metric
//! names in rules and dashboard against what the daemon really exports, the systemd unit with
//! systemd-analyze and its etcd coordination settings.
//!
//! Tools are installed the way the moto harness installs moto: Python packages with pip, promtool
//! and systemd-analyze from Debian's packages (needs root and the Debian mirrors, as CI has). A
//! tool that cannot be had fails the test with what to install; nothing is skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crosslink_controller::metrics::{
    EventLabels, IgnoredLabels, LinkLabels, PhaseLabels, QueueLabels, ReconcileLabels, ResourceLabels,
    TargetStateLabels,
};
use serde_json::Value;

const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn python() -> String {
    std::env::var("CROSSLINK_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("crosslink-deploy-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("a temporary directory");
    d
}

// ---- tool installation ------------------------------------------------------------------------

/// One installer at a time: tests run in parallel threads, apt and pip do not like company.
static INSTALL: Mutex<()> = Mutex::new(());

fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Installs Debian `package` for `tool` unless it is already on PATH. apt-get update runs only
/// when the first attempt fails (a fresh machine has no package lists).
fn debian_tool(tool: &str, package: &str) -> Result<(), String> {
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if succeeds(Command::new(tool).arg("--version")) {
        return Ok(());
    }
    if !is_root() {
        return Err(format!("{tool} is not installed and installing it needs root: apt-get install -y {package}"));
    }
    eprintln!("deploy tests: installing {package} with apt-get for {tool}");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        let updated = Command::new("apt-get").args(["update", "-q"]).status().is_ok_and(|s| s.success());
        if !updated || !install() {
            return Err(format!("apt-get could not install {package} (for {tool}): are Debian's mirrors reachable?"));
        }
    }
    if succeeds(Command::new(tool).arg("--version")) {
        Ok(())
    } else {
        Err(format!("{package} is installed but {tool} still does not run"))
    }
}

fn python_packages() -> Result<(), String> {
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let importable = || succeeds(Command::new(python()).args(["-c", "import kubernetes_validate, yaml"]));
    if importable() {
        return Ok(());
    }
    eprintln!("deploy tests: installing {KUBERNETES_VALIDATE} with pip");
    let ok = Command::new(python())
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", KUBERNETES_VALIDATE])
        .status()
        .is_ok_and(|s| s.success());
    if ok && importable() { Ok(()) } else { Err(format!("pip could not install {KUBERNETES_VALIDATE}")) }
}

fn need(r: Result<(), String>) {
    if let Err(e) = r {
        panic!("a tool the deployment checks need is missing: {e}");
    }
}

// ---- what the binary and the daemon really offer ------------------------------------------------

/// Every CROSSLINK_* variable `crosslink run` reads, from its own --help.
fn crosslink_variables() -> BTreeSet<String> {
    let out = run(Command::new(env!("CARGO_BIN_EXE_crosslink")).args(["run", "--help"]));
    let help = String::from_utf8_lossy(&out.stdout).to_string();
    let vars: BTreeSet<String> = help
        .split(|c: char| !(c.is_ascii_uppercase() || c == '_'))
        .filter(|w| w.starts_with("CROSSLINK_") && w.len() > "CROSSLINK_".len())
        .map(str::to_string)
        .collect();
    assert!(vars.contains("CROSSLINK_LISTEN") && vars.len() > 10, "variables not found in --help:\n{help}");
    vars
}

/// Every sample name the daemon exposes on /metrics: one sample of each family is recorded,
/// then the exposition is parsed, so `_total`, `_bucket`, `_sum` and `_count` are included.
fn exported_metric_names() -> BTreeSet<String> {
    let m = crosslink_controller::metrics::Metrics::new("0.0.0", "test");
    m.record_aws("ec2", "DescribeVpcs", "throttled", Duration::from_millis(5));
    m.record_aws_wait("ec2", Duration::from_millis(5));
    m.set_revision("abc");
    m.reconciles.get_or_create(&ReconcileLabels { kind: "link".into(), result: "success".into() }).inc();
    m.reconcile_duration.observe(0.5);
    m.link_ready.get_or_create(&LinkLabels { link: "a".into() }).set(1);
    m.link_synced.get_or_create(&LinkLabels { link: "a".into() }).set(1);
    m.link_healthy.get_or_create(&LinkLabels { link: "a".into() }).set(1);
    m.link_targets.get_or_create(&TargetStateLabels { link: "a".into(), state: "healthy".into() }).set(1);
    m.links_by_phase.get_or_create(&PhaseLabels { phase: "Ready".into() }).set(1);
    m.drift_repairs.get_or_create(&ResourceLabels { resource: "listener".into() }).inc();
    m.queue_depth.set(1);
    m.desired_load_errors.inc();
    m.desired_valid.set(1);
    m.last_full_sync.set(1.0);
    m.prune_blocked.set(0);
    m.prune_blocked_total.inc();
    m.events_received.get_or_create(&EventLabels { source: "ec2".into() }).inc();
    m.events_ignored.get_or_create(&IgnoredLabels { reason: "own-call".into() }).inc();
    m.events_queue_up.get_or_create(&QueueLabels { queue: "q".into() }).set(1);
    let text = m.encode();
    let mut families = BTreeSet::new();
    let mut samples = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            families.insert(rest.split_whitespace().next().unwrap_or_default().to_string());
        } else if !line.starts_with('#') && !line.is_empty() {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            samples.insert(name.to_string());
        }
    }
    // A family added to Metrics without a sample here would hide from this check.
    for f in &families {
        assert!(
            samples.iter().any(|s| s == f || s.starts_with(&format!("{f}_"))),
            "metric family {f} has no sample: record one in exported_metric_names()\n{text}"
        );
    }
    samples
}

/// Metric names an expression selects: `crosslink_*` identifiers, and any identifier followed
/// by a label matcher (which catches selectors of other metrics, e.g. `up{...}`).
fn selected_metrics(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    let mut in_braces = false;
    let mut in_string = false;
    while i < bytes.len() {
        let c = bytes[i] as char;
        if in_string {
            in_string = c != '"';
            i += 1;
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => in_braces = true,
            '}' => in_braces = false,
            _ => {}
        }
        if !in_braces && (c.is_ascii_alphabetic() || c == '_') && (i == 0 || !is_ident(bytes[i - 1] as char)) {
            let start = i;
            while i < bytes.len() && is_ident(bytes[i] as char) {
                i += 1;
            }
            let word = &expr[start..i];
            let next = expr[i..].trim_start().chars().next();
            if word.starts_with("crosslink_") || next == Some('{') {
                out.insert(word.to_string());
            }
            continue;
        }
        i += 1;
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Series Prometheus makes itself for every target.
const PROMETHEUS_SERIES: &[&str] = &["up"];

// ---- Kubernetes and Prometheus ------------------------------------------------------------------

/// Runs the Kubernetes checks once; their output directory holds the extracted rules.
fn kubernetes_checked() -> &'static Result<PathBuf, String> {
    static DONE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DONE.get_or_init(|| {
        python_packages()?;
        let out = tempdir("kubernetes");
        let vars = out.join("variables.txt");
        let names: Vec<String> = crosslink_variables().into_iter().collect();
        std::fs::write(&vars, names.join("\n")).map_err(|e| e.to_string())?;
        let script = repo().join("crates/crosslink/tests/fixtures/check_kubernetes.py");
        let o = run(Command::new(python()).arg(script).arg(repo()).arg(&out).arg(&vars));
        if o.status.success() { Ok(out) } else { Err(text(&o)) }
    })
}

fn rules_dir() -> PathBuf {
    match kubernetes_checked() {
        Ok(dir) => dir.clone(),
        Err(e) => panic!("the Kubernetes manifests must pass their checks first:\n{e}"),
    }
}

#[test]
fn kubernetes_manifests_render_validate_and_fit_together() {
    if let Err(e) = kubernetes_checked() {
        panic!("deploy/kubernetes:\n{e}");
    }
}

/// The kustomize targets: the base and every overlay.
fn kustomize_targets() -> Vec<PathBuf> {
    let root = repo().join("deploy/kubernetes");
    let mut overlays: Vec<PathBuf> = std::fs::read_dir(root.join("overlays"))
        .expect("deploy/kubernetes/overlays")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    overlays.sort();
    std::iter::once(root.join("base")).chain(overlays).collect()
}

/// The objects a kustomization renders to, as JSON: `kubectl kustomize` when kubectl is on PATH,
/// else the fixture's fallback renderer (check_kubernetes.py checks that the two agree).
fn rendered(dir: &Path) -> Vec<Value> {
    need(python_packages());
    const SCRIPT: &str = r#"
import json, shutil, subprocess, sys, yaml
sys.path.insert(0, sys.argv[1])
if shutil.which("kubectl"):
    r = subprocess.run(["kubectl", "kustomize", sys.argv[2]], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("kubectl kustomize failed: " + r.stderr)
    docs = [d for d in yaml.safe_load_all(r.stdout) if d is not None]
else:
    import check_kubernetes
    docs = check_kubernetes.render(sys.argv[2])
print(json.dumps(docs))
"#;
    let fixtures = repo().join("crates/crosslink/tests/fixtures");
    let o = run(Command::new(python()).arg("-c").arg(SCRIPT).arg(&fixtures).arg(dir));
    assert!(o.status.success(), "rendering {}:\n{}", dir.display(), text(&o));
    serde_json::from_slice(&o.stdout).expect("rendered objects as JSON")
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// A label selector with matchLabels only, all of which the pod carries.
fn selects(selector: &Value, pod_labels: &Value) -> bool {
    selector.as_object().is_some_and(|s| s.keys().all(|k| k == "matchLabels"))
        && selector["matchLabels"]
            .as_object()
            .is_some_and(|m| !m.is_empty() && m.iter().all(|(k, v)| pod_labels[k] == *v))
}

const TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
const LEASE_VERBS: [&str; 5] = ["create", "delete", "get", "list", "update"];

/// What running several replicas needs, in one rendered target; every problem, not the first.
fn ha_problems(docs: &[Value]) -> Vec<String> {
    let mut p = Vec::new();
    let deployments = of_kind(docs, "Deployment");
    let [dep] = deployments.as_slice() else {
        return vec![format!("expected one Deployment, found {}", deployments.len())];
    };
    let namespace = &dep["metadata"]["namespace"];
    let spec = &dep["spec"];
    let pod = &spec["template"]["spec"];
    let pod_labels = &spec["template"]["metadata"]["labels"];

    // Three replicas, rolled one at a time.
    if spec["replicas"] != 3 {
        p.push(format!("Deployment replicas must be 3, got {}", spec["replicas"]));
    }
    let strategy = &spec["strategy"];
    let rolling = &strategy["rollingUpdate"];
    if strategy["type"] != "RollingUpdate"
        || rolling["maxUnavailable"] != 1
        || !matches!(rolling["maxSurge"].as_u64(), Some(0 | 1))
    {
        p.push(format!("the strategy must be RollingUpdate with maxUnavailable 1 and maxSurge 0 or 1, got {strategy}"));
    }

    // Spread over nodes where possible (preferred: a small cluster still runs every replica).
    let anti = &pod["affinity"]["podAntiAffinity"];
    let spread = anti["preferredDuringSchedulingIgnoredDuringExecution"].as_array().is_some_and(|terms| {
        terms.iter().any(|t| {
            let term = &t["podAffinityTerm"];
            term["topologyKey"] == "kubernetes.io/hostname" && selects(&term["labelSelector"], pod_labels)
        })
    });
    if !spread {
        p.push(format!("pod anti-affinity must prefer one replica per kubernetes.io/hostname, got {anti}"));
    }
    if !anti["requiredDuringSchedulingIgnoredDuringExecution"].is_null() {
        p.push("required anti-affinity leaves replicas pending on clusters with fewer nodes; prefer it".into());
    }

    // The replica's identity and lease namespace from the downward API, coordination through
    // Kubernetes.
    let containers = pod["containers"].as_array().cloned().unwrap_or_default();
    let Some(cl) = containers.iter().find(|c| c["name"] == "crosslink") else {
        p.push("no crosslink container".into());
        return p;
    };
    let env = cl["env"].as_array().cloned().unwrap_or_default();
    for (var, field) in [("CROSSLINK_REPLICA_ID", "metadata.name"), ("CROSSLINK_LEASE_NAMESPACE", "metadata.namespace")]
    {
        let from = env.iter().find(|e| e["name"] == var).map(|e| &e["valueFrom"]["fieldRef"]["fieldPath"]);
        if from.is_none_or(|f| *f != field) {
            p.push(format!("{var} must come from the downward API ({field}), got {from:?}"));
        }
    }
    let mut coordination = None;
    for src in cl["envFrom"].as_array().cloned().unwrap_or_default() {
        let name = &src["configMapRef"]["name"];
        for cm in of_kind(docs, "ConfigMap").into_iter().filter(|c| c["metadata"]["name"] == *name) {
            if let Some(v) = cm["data"]["CROSSLINK_COORDINATION"].as_str() {
                coordination = Some(v.to_string());
            }
        }
    }
    if let Some(e) = env.iter().find(|e| e["name"] == "CROSSLINK_COORDINATION") {
        coordination = e["value"].as_str().map(str::to_string);
    }
    if coordination.as_deref() != Some("kubernetes") {
        p.push(format!("CROSSLINK_COORDINATION must be kubernetes, got {coordination:?}"));
    }

    // A token for the Kubernetes API in the crosslink container, and only there.
    let volumes = pod["volumes"].as_array().cloned().unwrap_or_default();
    let token_volume = cl["volumeMounts"].as_array().and_then(|mounts| {
        mounts.iter().find(|m| m["mountPath"] == TOKEN_PATH && m["readOnly"] == true).map(|m| m["name"].clone())
    });
    match token_volume {
        Some(name) => {
            let projected = volumes.iter().find(|v| v["name"] == name).map(|v| &v["projected"]["sources"]);
            let has =
                |key: &str| projected.and_then(Value::as_array).is_some_and(|s| s.iter().any(|x| !x[key].is_null()));
            if !(has("serviceAccountToken") && has("configMap") && has("downwardAPI")) {
                p.push(format!("volume {name} must project the token, the cluster CA and the namespace"));
            }
            let others = containers.iter().chain(pod["initContainers"].as_array().into_iter().flatten());
            for c in others.filter(|c| c["name"] != "crosslink") {
                let mounts = c["volumeMounts"].as_array().cloned().unwrap_or_default();
                if mounts.iter().any(|m| m["name"] == name) {
                    p.push(format!("container {} must not get crosslink's Kubernetes API token", c["name"]));
                }
            }
        }
        None if pod["automountServiceAccountToken"] == false => {
            p.push(format!("the crosslink container needs a service account token at {TOKEN_PATH} (read-only)"));
        }
        None => {}
    }

    // The service account may get, list, create, update and delete Leases in its namespace, and
    // nothing else.
    let account = &pod["serviceAccountName"];
    let bindings: Vec<&Value> = of_kind(docs, "RoleBinding")
        .into_iter()
        .filter(|b| {
            b["subjects"].as_array().is_some_and(|subjects| {
                subjects.iter().any(|s| {
                    s["kind"] == "ServiceAccount"
                        && s["name"] == *account
                        && (s["namespace"].is_null() || s["namespace"] == *namespace)
                })
            })
        })
        .collect();
    let mut verbs = BTreeSet::new();
    for b in &bindings {
        if b["metadata"]["namespace"] != *namespace {
            p.push(format!("RoleBinding {} is not in the Deployment's namespace", b["metadata"]["name"]));
        }
        let role_ref = &b["roleRef"];
        if role_ref["kind"] != "Role" || role_ref["apiGroup"] != "rbac.authorization.k8s.io" {
            p.push(format!("RoleBinding {} must bind a Role (namespaced), got {role_ref}", b["metadata"]["name"]));
            continue;
        }
        let roles: Vec<&Value> =
            of_kind(docs, "Role").into_iter().filter(|r| r["metadata"]["name"] == role_ref["name"]).collect();
        let [role] = roles.as_slice() else {
            p.push(format!(
                "RoleBinding {} binds Role {}, which is not rendered",
                b["metadata"]["name"], role_ref["name"]
            ));
            continue;
        };
        if role["metadata"]["namespace"] != *namespace {
            p.push(format!("Role {} is not in the Deployment's namespace", role["metadata"]["name"]));
        }
        for rule in role["rules"].as_array().cloned().unwrap_or_default() {
            let strings = |k: &str| -> Vec<String> {
                rule[k].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_string)).collect()
            };
            if strings("apiGroups") != ["coordination.k8s.io"]
                || strings("resources") != ["leases"]
                || !rule["resourceNames"].is_null()
                || !rule["nonResourceURLs"].is_null()
            {
                p.push(format!(
                    "Role {}: every rule must be about coordination.k8s.io leases only, got {rule}",
                    role["metadata"]["name"]
                ));
                continue;
            }
            verbs.extend(strings("verbs"));
        }
    }
    if bindings.is_empty() {
        p.push(format!("no RoleBinding for ServiceAccount {account}"));
    }
    let want: BTreeSet<String> = LEASE_VERBS.iter().map(|v| v.to_string()).collect();
    if verbs != want {
        p.push(format!("the verbs on leases must be exactly {want:?}, got {verbs:?}"));
    }

    // Evictions (node drains) take one replica at a time.
    let budgets = of_kind(docs, "PodDisruptionBudget");
    let [pdb] = budgets.as_slice() else {
        p.push(format!("expected one PodDisruptionBudget, found {}", budgets.len()));
        return p;
    };
    if pdb["apiVersion"] != "policy/v1"
        || pdb["spec"]["maxUnavailable"] != 1
        || !pdb["spec"]["minAvailable"].is_null()
        || !selects(&pdb["spec"]["selector"], pod_labels)
        || pdb["metadata"]["namespace"] != *namespace
    {
        p.push(format!("the PodDisruptionBudget must be policy/v1 with maxUnavailable 1, select the pods and share their namespace, got {pdb}"));
    }
    p
}

#[test]
fn kubernetes_manifests_run_three_replicas_with_leases() {
    let mut problems = Vec::new();
    for target in kustomize_targets() {
        let where_ = target.strip_prefix(repo()).unwrap_or(&target).display().to_string();
        problems.extend(ha_problems(&rendered(&target)).into_iter().map(|p| format!("{where_}: {p}")));
    }
    assert!(problems.is_empty(), "deploy/kubernetes:\n{}", problems.join("\n"));
}

#[test]
fn ha_checks_catch_a_single_replica_without_leases() {
    // The checks themselves: a copy of the base as it was before replicas (one pod, Recreate, no
    // Role, no budget, no identity) fails on each count.
    let mut docs = rendered(&repo().join("deploy/kubernetes/base"));
    docs.retain(|d| !matches!(d["kind"].as_str(), Some("Role" | "RoleBinding" | "PodDisruptionBudget")));
    for d in docs.iter_mut().filter(|d| d["kind"] == "Deployment") {
        d["spec"]["replicas"] = 1.into();
        d["spec"]["strategy"] = serde_json::json!({"type": "Recreate"});
        let pod = &mut d["spec"]["template"]["spec"];
        pod["affinity"] = Value::Null;
        for c in pod["containers"].as_array_mut().unwrap() {
            c["env"] = Value::Null;
            if let Some(m) = c["volumeMounts"].as_array_mut() {
                m.retain(|m| m["mountPath"] != TOKEN_PATH);
            }
        }
    }
    let problems = ha_problems(&docs).join("\n");
    for expected in [
        "replicas must be 3",
        "RollingUpdate",
        "anti-affinity",
        "CROSSLINK_REPLICA_ID",
        "CROSSLINK_LEASE_NAMESPACE",
        "service account token",
        "no RoleBinding",
        "PodDisruptionBudget",
    ] {
        assert!(problems.contains(expected), "no problem about {expected:?} in:\n{problems}");
    }
}

#[test]
fn alert_rules_pass_promtool_check_and_unit_tests() {
    need(debian_tool("promtool", "prometheus"));
    let dir = rules_dir();
    let rules = dir.join("crosslink-rules.yaml");
    let o = run(Command::new("promtool").arg("check").arg("rules").arg(&rules));
    assert!(o.status.success(), "promtool check rules:\n{}", text(&o));
    let tests = dir.join("crosslink-rules.test.yaml");
    std::fs::copy(repo().join("deploy/prometheus/crosslink-rules.test.yaml"), &tests).expect("copy the rule tests");
    let o = run(Command::new("promtool").args(["test", "rules"]).arg(&tests).current_dir(&dir));
    assert!(o.status.success(), "promtool test rules:\n{}", text(&o));

    // The alerts that watch coordination between replicas.
    let exprs = std::fs::read_to_string(dir.join("crosslink-rules.yaml")).unwrap();
    for (alert, metric) in [
        ("CrosslinkCoordinationDown", "crosslink_coordination_healthy"),
        ("CrosslinkUnitsUnowned", "crosslink_shard_units_owned"),
        ("CrosslinkLinkNotReady", "crosslink_link_synced"),
        ("CrosslinkLinkUnhealthy", "crosslink_link_healthy"),
        ("CrosslinkEventsQueueDown", "crosslink_events_queue_up"),
        ("CrosslinkProtectionBlocked", "crosslink_protection_blocked"),
    ] {
        assert!(exprs.contains(&format!("alert: {alert}")) && exprs.contains(metric), "{alert} on {metric} is missing");
    }

    // Every alert is unit-tested at least once.
    let alerts: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("rules.json")).unwrap()).unwrap();
    let test_file = read("deploy/prometheus/crosslink-rules.test.yaml");
    for a in alerts["alerts"].as_array().unwrap() {
        let a = a.as_str().unwrap();
        assert!(test_file.contains(&format!("alertname: {a}\n")), "alert {a} has no promtool unit test");
    }
}

#[test]
fn alerts_link_to_runbook_sections() {
    let dir = rules_dir();
    let alerts: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("rules.json")).unwrap()).unwrap();
    let names: Vec<&str> = alerts["alerts"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert!(names.len() >= 8, "{names:?}");
    // The runbook is written separately; once it exists, every alert's anchor must resolve
    // (a Markdown heading whose GitHub anchor is the lowercased alert name, or an explicit id).
    let Ok(runbook) = std::fs::read_to_string(repo().join("docs/runbook.md")) else { return };
    let slug = |heading: &str| -> String {
        heading
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect()
    };
    let anchors: BTreeSet<String> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix('#').map(|h| slug(h.trim_start_matches('#'))))
        .chain(runbook.split("id=\"").skip(1).filter_map(|s| s.split('"').next().map(str::to_string)))
        .chain(runbook.split("name=\"").skip(1).filter_map(|s| s.split('"').next().map(str::to_string)))
        .collect();
    for n in names {
        assert!(anchors.contains(&n.to_lowercase()), "docs/runbook.md has no section #{}", n.to_lowercase());
    }
}

#[test]
fn rules_and_dashboard_use_only_metrics_the_daemon_exports() {
    let exported = exported_metric_names();
    let known = |m: &str| exported.contains(m) || PROMETHEUS_SERIES.contains(&m);
    let mut unknown = Vec::new();

    let rules: Value = serde_json::from_str(&std::fs::read_to_string(rules_dir().join("rules.json")).unwrap()).unwrap();
    let mut used = BTreeSet::new();
    for expr in rules["exprs"].as_array().unwrap() {
        for m in selected_metrics(expr.as_str().unwrap()) {
            used.insert(m.clone());
            if !known(&m) {
                unknown.push(format!("PrometheusRule: {m}"));
            }
        }
    }
    let dashboard: Value =
        serde_json::from_str(&read("deploy/grafana/crosslink-dashboard.json")).expect("dashboard JSON");
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() >= 15, "too few queries in the dashboard: {exprs:?}");
    for expr in &exprs {
        for m in selected_metrics(expr) {
            used.insert(m.clone());
            if !known(&m) {
                unknown.push(format!("dashboard: {m}"));
            }
        }
    }
    assert!(unknown.is_empty(), "not exported by the daemon: {unknown:?}\nexported: {exported:?}");
    // The dashboard covers the daemon's metrics: every exported family is shown somewhere.
    let shown = |family: &str| used.iter().any(|u| u == family || u.starts_with(&format!("{family}_")));
    for family in [
        "crosslink_links",
        "crosslink_link_ready",
        "crosslink_link_synced",
        "crosslink_link_healthy",
        "crosslink_link_targets",
        "crosslink_aws_rate_limit_wait_seconds_total",
        "crosslink_queue_depth",
        "crosslink_shard_units",
        "crosslink_shard_units_owned",
        "crosslink_shard_members",
        "crosslink_shard_leases_lost_total",
        "crosslink_coordination_healthy",
        "crosslink_events_received_total",
        "crosslink_events_ignored_total",
        "crosslink_event_reconciles_total",
        "crosslink_event_repair_seconds",
        "crosslink_event_delivery_seconds",
        "crosslink_events_queue_up",
        "crosslink_events_queue_errors_total",
    ] {
        assert!(shown(family), "{family} is in no rule or panel");
    }
}

fn collect_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                match (k.as_str(), x) {
                    ("expr", Value::String(s)) => out.push(s.clone()),
                    // A query variable's query selects metrics too.
                    ("query", Value::Object(q)) => {
                        if let Some(Value::String(s)) = q.get("query") {
                            out.push(s.clone());
                        }
                    }
                    _ => collect_exprs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_exprs(x, out)),
        _ => {}
    }
}

#[test]
fn dashboard_is_provisionable_with_a_datasource_variable() {
    let d: Value = serde_json::from_str(&read("deploy/grafana/crosslink-dashboard.json")).unwrap();
    assert!(d["uid"].is_string() && d["title"].is_string() && d["schemaVersion"].as_u64().is_some_and(|v| v >= 36));
    let vars = d["templating"]["list"].as_array().expect("templating");
    assert!(
        vars.iter().any(|v| v["name"] == "datasource" && v["type"] == "datasource" && v["query"] == "prometheus"),
        "no Prometheus datasource variable"
    );
    let panels = d["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    let mut cells: BTreeMap<(u64, u64), u64> = BTreeMap::new();
    for p in panels {
        let id = p["id"].as_u64().expect("panel id");
        assert!(ids.insert(id), "duplicate panel id {id}");
        let g = &p["gridPos"];
        let (x, y, w, h) =
            (g["x"].as_u64().unwrap(), g["y"].as_u64().unwrap(), g["w"].as_u64().unwrap(), g["h"].as_u64().unwrap());
        assert!(x + w <= 24, "panel {id} is wider than the grid");
        for cx in x..x + w {
            for cy in y..y + h {
                if let Some(other) = cells.insert((cx, cy), id) {
                    panic!("panels {other} and {id} overlap at {cx},{cy}");
                }
            }
        }
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "panel {id} must use the datasource variable");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {id} has no query");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "panel {id}: a query with a fixed datasource");
            assert!(t["expr"].as_str().is_some_and(|e| e.contains("instance=~\"$instance\"")), "panel {id}: {t}");
        }
    }
}

// ---- Dockerfile ---------------------------------------------------------------------------------

/// Dockerfile instructions with continuation lines joined and comments dropped.
fn instructions(dockerfile: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(body) = t.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
            continue;
        }
        current.push_str(t);
        let (op, args) = current.split_once(char::is_whitespace).unwrap_or((&current, ""));
        out.push((op.to_ascii_uppercase(), args.trim().to_string()));
        current.clear();
    }
    out
}

fn workspace_field(field: &str) -> String {
    let manifest = read("Cargo.toml");
    manifest
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field} = \"")).and_then(|r| r.strip_suffix('"')))
        .unwrap_or_else(|| panic!("workspace {field} in Cargo.toml"))
        .to_string()
}

fn version_tuple(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

#[test]
fn dockerfile_builds_a_pinned_nonroot_image_with_the_commit_baked_in() {
    let ins = instructions(&read("deploy/Dockerfile"));
    let args: BTreeMap<String, String> = ins
        .iter()
        .filter(|(op, _)| op == "ARG")
        .filter_map(|(_, a)| a.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let expand = |s: &str| args.iter().fold(s.to_string(), |acc, (k, v)| acc.replace(&format!("${{{k}}}"), v));

    // Stages: a builder, and a runtime that is the last stage.
    let stages: Vec<(usize, String, String)> = ins
        .iter()
        .enumerate()
        .filter(|(_, (op, _))| op == "FROM")
        .map(|(i, (_, a))| {
            let parts: Vec<&str> = a.split_whitespace().collect();
            let name = match parts.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => name.to_string(),
                _ => panic!("every stage is named: FROM {a}"),
            };
            (i, expand(parts[0]), name)
        })
        .collect();
    assert_eq!(stages.len(), 2, "a builder and a runtime stage: {stages:?}");
    let (builder_at, builder_image, builder) = &stages[0];
    let (runtime_at, runtime_image, _) = &stages[1];
    for image in [builder_image, runtime_image] {
        assert!(!image.ends_with(":latest") && image.contains(':'), "{image} must be pinned to a tag");
    }
    // The builder's Rust is at least the workspace's rust-version, on the runtime's Debian.
    let tag = builder_image.rsplit(':').next().unwrap();
    assert!(builder_image.contains("/rust:"), "{builder_image}");
    let rust = tag.split('-').next().unwrap();
    assert!(
        version_tuple(rust) >= version_tuple(&workspace_field("rust-version")),
        "Rust {rust} is older than rust-version"
    );
    assert!(
        tag.ends_with("-bookworm") && runtime_image.contains("debian12"),
        "builder {tag} and runtime {runtime_image} must share Debian 12's glibc"
    );

    let in_stage = |from: usize, to: usize| ins[from..to].to_vec();
    let build = in_stage(*builder_at, *runtime_at);
    let runtime = in_stage(*runtime_at, ins.len());
    // GIT_COMMIT is an ARG, exported as CROSSLINK_GIT_COMMIT before the compiler runs.
    let pos = |stage: &[(String, String)], pred: &dyn Fn(&(String, String)) -> bool| stage.iter().position(pred);
    let arg =
        pos(&build, &|(op, a)| op == "ARG" && a.starts_with("GIT_COMMIT")).expect("ARG GIT_COMMIT in the builder");
    let env = pos(&build, &|(op, a)| op == "ENV" && a.replace(' ', "").contains("CROSSLINK_GIT_COMMIT=${GIT_COMMIT}"))
        .expect("ENV CROSSLINK_GIT_COMMIT=${GIT_COMMIT} in the builder");
    let cargo = pos(&build, &|(op, a)| {
        op == "RUN" && a.contains("cargo build") && a.contains("--release") && a.contains("--locked")
    })
    .expect("cargo build --release --locked");
    assert!(arg < env && env < cargo, "ARG GIT_COMMIT, then ENV CROSSLINK_GIT_COMMIT, then cargo build");
    assert!(
        build.iter().any(|(op, a)| op == "COPY" && a.contains("Cargo.lock")),
        "the build uses the repository's Cargo.lock"
    );
    // The binary reads exactly that variable.
    assert!(read("crates/crosslink/src/daemon.rs").contains("option_env!(\"CROSSLINK_GIT_COMMIT\")"));

    // Runtime: the binary from the builder, a non-root user, the port, the entrypoint.
    assert!(runtime.iter().any(|(op, a)| op == "COPY" && a.contains(&format!("--from={builder}"))));
    let user =
        runtime.iter().rev().find(|(op, _)| op == "USER").map(|(_, a)| a.clone()).expect("USER in the runtime stage");
    let uid = user.split(':').next().unwrap();
    assert!(uid != "root" && uid != "0", "the image must not run as root: USER {user}");
    assert!(runtime.iter().any(|(op, a)| op == "EXPOSE" && a.split_whitespace().any(|p| p == "9090")));
    assert!(runtime.iter().any(|(op, a)| op == "ENTRYPOINT" && a == "[\"crosslink\"]"));
    let cmd = runtime.iter().find(|(op, _)| op == "CMD").map(|(_, a)| a.clone()).expect("CMD");
    assert!(cmd.starts_with("[\"run\""), "CMD {cmd}");
    // The image listens beyond loopback by default, through real flags.
    let env: String =
        runtime.iter().filter(|(op, _)| op == "ENV").map(|(_, a)| a.clone()).collect::<Vec<_>>().join(" ");
    assert!(env.contains("CROSSLINK_LISTEN=0.0.0.0:9090"), "{env}");
    let vars = crosslink_variables();
    for word in env.split_whitespace() {
        if let Some((k, _)) = word.split_once('=').filter(|(k, _)| k.starts_with("CROSSLINK_")) {
            assert!(vars.contains(k), "{k} is not a crosslink variable");
        }
    }

    // OCI labels, with the version the workspace builds.
    let labels: String =
        runtime.iter().filter(|(op, _)| op == "LABEL").map(|(_, a)| a.clone()).collect::<Vec<_>>().join(" ");
    for l in ["title", "description", "source", "licenses", "version", "revision"] {
        assert!(labels.contains(&format!("org.opencontainers.image.{l}=")), "OCI label {l} missing");
    }
    assert_eq!(args.get("VERSION").map(String::as_str), Some(workspace_field("version").as_str()), "ARG VERSION");
    assert!(labels.contains("org.opencontainers.image.revision=\"${GIT_COMMIT}\""));
}

#[test]
fn dockerignore_keeps_build_output_out_of_the_context() {
    let ignore = read(".dockerignore");
    let entries: Vec<&str> = ignore.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    assert!(entries.iter().any(|e| matches!(*e, "target" | "target/" | "/target")), "{entries:?}");
    // Nothing the build copies may be ignored.
    for needed in ["Cargo.toml", "Cargo.lock", "crates", "xtask", ".cargo"] {
        assert!(!entries.contains(&needed), "{needed} is ignored but the build copies it");
    }
}

// ---- systemd ------------------------------------------------------------------------------------

fn unit_values(unit: &str) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in unit.lines().map(str::trim).filter(|l| !l.starts_with('#') && !l.starts_with('[')) {
        if let Some((k, v)) = line.split_once('=') {
            m.entry(k.trim().to_string()).or_default().push(v.trim().to_string());
        }
    }
    m
}

fn duration_secs(s: &str) -> u64 {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n.parse().unwrap_or_else(|_| panic!("duration {s}"));
    match unit {
        "" | "s" => n,
        "min" | "m" => 60 * n,
        other => panic!("unit {other} in {s}"),
    }
}

#[test]
fn systemd_unit_verifies_and_is_hardened() {
    need(debian_tool("systemd-analyze", "systemd"));
    let unit = read("deploy/systemd/crosslink.service");
    let v = unit_values(&unit);
    let one = |k: &str| v.get(k).and_then(|x| x.last()).cloned().unwrap_or_else(|| panic!("{k}= missing"));
    assert_eq!(one("ExecStart"), "/usr/local/bin/crosslink run");
    assert_eq!(one("Restart"), "on-failure");
    assert_eq!(one("KillSignal"), "SIGTERM");
    assert_eq!(one("NoNewPrivileges"), "yes");
    assert_eq!(one("ProtectSystem"), "strict");
    assert!(one("DynamicUser") == "yes" || v.contains_key("User"), "a dedicated or dynamic user");

    // The environment file holds real flags, and systemd waits longer than crosslink's grace.
    let env = read("deploy/systemd/crosslink.env");
    let vars = crosslink_variables();
    let mut grace = 30;
    for line in env.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (k, val) = line.split_once('=').unwrap_or_else(|| panic!("not KEY=value: {line}"));
        if k.starts_with("CROSSLINK_") {
            assert!(vars.contains(k), "{k} is not a crosslink variable");
        }
        if k == "CROSSLINK_SHUTDOWN_GRACE" {
            grace = duration_secs(val);
        }
    }
    assert!(
        duration_secs(&one("TimeoutStopSec")) > grace,
        "TimeoutStopSec must exceed CROSSLINK_SHUTDOWN_GRACE ({grace}s)"
    );

    // Several VMs coordinate through etcd with a second, optional environment file, read after
    // the first so that it can override it.
    assert_eq!(
        v.get("EnvironmentFile").cloned().unwrap_or_default(),
        ["/etc/crosslink/crosslink.env", "-/etc/crosslink/coordination.env"],
        "crosslink.env, then the optional coordination.env"
    );
    let coordination = read("deploy/systemd/coordination.env");
    let mut set = BTreeMap::new();
    let mut documented = BTreeMap::new();
    for line in coordination.lines().map(str::trim).filter(|l| !l.is_empty()) {
        // Commented-out settings document real variables too.
        let (setting, target) = match line.strip_prefix('#') {
            Some(rest) if rest.starts_with("CROSSLINK_") => (rest, &mut documented),
            Some(_) => continue,
            None => (line, &mut set),
        };
        let (k, val) = setting.split_once('=').unwrap_or_else(|| panic!("not KEY=value: {line}"));
        assert!(!k.starts_with("CROSSLINK_") || vars.contains(k), "coordination.env: {k} is not a crosslink variable");
        target.insert(k.to_string(), val.to_string());
    }
    assert_eq!(set.get("CROSSLINK_COORDINATION").map(String::as_str), Some("etcd"), "{set:?}");
    assert!(set.get("CROSSLINK_REPLICA_ID").is_some_and(|id| !id.is_empty()), "a replica id per VM: {set:?}");
    let endpoints = set.get("CROSSLINK_ETCD_ENDPOINTS").expect("CROSSLINK_ETCD_ENDPOINTS");
    let endpoints: Vec<&str> = endpoints.split(',').collect();
    assert!(endpoints.len() >= 3, "every member of an etcd cluster of three or more: {endpoints:?}");
    for e in &endpoints {
        let port = e.strip_prefix("http://").and_then(|hp| hp.rsplit_once(':')).map(|(_, port)| port.parse::<u16>());
        assert!(matches!(port, Some(Ok(_))), "an etcd endpoint is http://host:port, got {e}");
    }
    // The timing shown is valid: two renewals fit in the renew deadline, which is shorter than
    // the lease duration.
    let timing = |k: &str, default: u64| set.get(k).or(documented.get(k)).map(|d| duration_secs(d)).unwrap_or(default);
    let (lease, renew, retry) = (
        timing("CROSSLINK_LEASE_DURATION", 15),
        timing("CROSSLINK_RENEW_DEADLINE", 10),
        timing("CROSSLINK_RETRY_PERIOD", 2),
    );
    assert!(2 * retry <= renew && renew < lease, "lease {lease}s, renew deadline {renew}s, retry period {retry}s");

    // systemd's own checks, on a copy whose ExecStart is the binary just built (verify wants it
    // to exist); everything else is the unit as shipped.
    let dir = tempdir("systemd");
    let copy = dir.join("crosslink.service");
    let exe = env!("CARGO_BIN_EXE_crosslink");
    std::fs::write(&copy, unit.replace("ExecStart=/usr/local/bin/crosslink", &format!("ExecStart={exe}"))).unwrap();
    let o = run(Command::new("systemd-analyze").arg("verify").arg(&copy));
    assert!(o.status.success() && text(&o).trim().is_empty(), "systemd-analyze verify:\n{}", text(&o));
    // Exposure 2.0 or lower ("OK" on systemd's scale) once the hardening options apply.
    let o = run(Command::new("systemd-analyze").args(["security", "--offline=true", "--threshold=20"]).arg(&copy));
    assert!(o.status.success(), "systemd-analyze security rates the unit above 2.0:\n{}", text(&o));
}

// ---- documentation ------------------------------------------------------------------------------

#[test]
fn ha_design_is_linked_and_names_real_variables() {
    let ha = read("docs/ha.md");
    assert!(read("README.md").contains("docs/ha.md"), "README.md must link docs/ha.md");
    assert!(read("docs/architecture.md").contains("ha.md"), "docs/architecture.md must link ha.md");
    // Every CROSSLINK_* variable the operations docs name is one `crosslink run` reads.
    let vars = crosslink_variables();
    let mut unknown = BTreeSet::new();
    for (doc, body) in [("docs/ha.md", &ha), ("docs/runbook.md", &read("docs/runbook.md"))] {
        for word in body.split(|c: char| !(c.is_ascii_uppercase() || c == '_')) {
            if word.starts_with("CROSSLINK_") && word.len() > "CROSSLINK_".len() && !vars.contains(word) {
                unknown.insert(format!("{doc}: {word}"));
            }
        }
    }
    assert!(unknown.is_empty(), "not crosslink variables: {unknown:?}");
}

// ---- crosslink iam-policy -----------------------------------------------------------------------

#[test]
fn iam_policy_prints_the_reviewed_documents_for_the_examples() {
    let o = run(Command::new(env!("CARGO_BIN_EXE_crosslink"))
        .args(["iam-policy", "manifests/examples"])
        .current_dir(repo()));
    assert!(o.status.success(), "{}", text(&o));
    let got: Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    let want: Value = serde_json::from_str(&read("crates/crosslink/tests/fixtures/iam-policy-examples.json")).unwrap();
    assert_eq!(got, want, "the command's output differs from the reviewed golden file (the unit test rewrites it)");

    let o = run(Command::new(env!("CARGO_BIN_EXE_crosslink"))
        .args(["iam-policy", "manifests/examples", "--controller-principal", "crosslink-controller"])
        .current_dir(repo()));
    assert_eq!(o.status.code(), Some(1), "a principal that is not an ARN is refused:\n{}", text(&o));

    let o = run(Command::new(env!("CARGO_BIN_EXE_crosslink"))
        .args(["iam-policy", "manifests/invalid/listener-port-taken.yaml"])
        .current_dir(repo()));
    assert_eq!(o.status.code(), Some(1), "invalid desired state prints errors, no policy:\n{}", text(&o));
    assert!(o.stdout.is_empty() && text(&o).contains("listener-port-taken.yaml"), "{}", text(&o));
}

/// With the events queue, the controller may read that queue and no other; `events-setup`
/// prints the rest, and refuses what is not a queue.
#[test]
fn iam_policy_and_events_setup_cover_the_events_queue() {
    let url = "https://sqs.eu-central-1.amazonaws.com/000011112222/crosslink-events";
    let o = run(Command::new(env!("CARGO_BIN_EXE_crosslink"))
        .args(["iam-policy", "manifests/examples", "--events-queue", url])
        .current_dir(repo()));
    assert!(o.status.success(), "{}", text(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    let statements = doc["controllerPolicy"]["Statement"].as_array().unwrap();
    let read = statements.iter().find(|s| s["Sid"] == "ReadChangeEvents").expect("the queue statement");
    assert_eq!(read["Resource"], "arn:aws:sqs:eu-central-1:000011112222:crosslink-events");

    let o = run(Command::new(env!("CARGO_BIN_EXE_crosslink"))
        .args(["events-setup", "manifests/examples", "--queue", url])
        .current_dir(repo()));
    assert!(o.status.success(), "{}", text(&o));
    let setup: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(setup["controller"]["consumerPolicy"]["Statement"][0], *read, "one statement, two commands");
    assert!(setup["accounts"]["cards"]["rule"]["eventPattern"]["detail"]["eventName"].is_array());

    for args in [
        &["events-setup", "manifests/examples", "--queue", "crosslink-events"][..],
        &["iam-policy", "manifests/examples", "--events-queue", "arn:aws:sns:eu-central-1:000011112222:x"][..],
    ] {
        let o = run(Command::new(env!("CARGO_BIN_EXE_crosslink")).args(args).current_dir(repo()));
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
        assert!(o.stdout.is_empty() && text(&o).contains("is not an SQS queue URL"), "{}", text(&o));
    }
}

/// Removing a link drops its route table from the new state's policy (IAM authorizes routes on
/// the route table, which carries no crosslink tag), so `--previous` prints the union to apply
/// first: with it, the daemon may still delete the routes of Link/cards.
#[test]
fn iam_policy_with_the_previous_state_still_allows_removing_the_routes_of_a_removed_link() {
    let without_cards = [
        "manifests/examples/accounts.yaml",
        "manifests/examples/gateway.yaml",
        "manifests/examples/links/payments.yaml",
        "manifests/examples/links/ledger.yaml",
    ];
    let route_table = "arn:aws:ec2:eu-central-1:444444444444:route-table/rtb-04b5c6d7e8f901201";
    let deletes_routes_there = |doc: &Value| {
        doc["accounts"]["cards"]["permissionsPolicy"]["Statement"].as_array().unwrap().iter().any(|s| {
            let listed = |v: &Value, want: &str| match v {
                Value::String(x) => x == want,
                Value::Array(xs) => xs.iter().any(|x| x == want),
                _ => false,
            };
            listed(&s["Action"], "ec2:DeleteRoute")
                && listed(&s["Resource"], route_table)
                && s.get("Condition").is_none()
        })
    };
    let o =
        run(Command::new(env!("CARGO_BIN_EXE_crosslink")).arg("iam-policy").args(without_cards).current_dir(repo()));
    assert!(o.status.success(), "{}", text(&o));
    let new: Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    assert!(!deletes_routes_there(&new), "the new state alone names no route table of Account/cards");

    let o = run(Command::new(env!("CARGO_BIN_EXE_crosslink"))
        .args(["iam-policy", "--previous", "manifests/examples"])
        .args(without_cards)
        .current_dir(repo()));
    assert!(o.status.success(), "{}", text(&o));
    let both: Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    assert!(deletes_routes_there(&both), "the union allows removing the routes of Link/cards:\n{both:#}");
    assert!(both["transition"].as_str().is_some_and(|t| t.contains("before the change")), "{both:#}");

    let o = run(Command::new(env!("CARGO_BIN_EXE_crosslink"))
        .args(["iam-policy", "--previous", "manifests/invalid/listener-port-taken.yaml", "manifests/examples"])
        .current_dir(repo()));
    assert_eq!(o.status.code(), Some(1), "an invalid previous state prints errors, no policy:\n{}", text(&o));
    assert!(o.stdout.is_empty() && text(&o).contains("listener-port-taken.yaml"), "{}", text(&o));
}

#[test]
fn metric_selector_extraction_sees_what_promql_selects() {
    let got = selected_metrics(
        r#"sum by (job) (rate(crosslink_reconciles_total{result="error",x="up{"}[5m])) / up{job="crosslink"} and absent(crosslink_build_info)"#,
    );
    let want: BTreeSet<String> =
        ["crosslink_reconciles_total", "up", "crosslink_build_info"].into_iter().map(str::to_string).collect();
    assert_eq!(got, want);
}
