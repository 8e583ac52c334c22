//! `cargo xtask demo`: starts moto on 127.0.0.1, seeds the VPCs the example desired state names
//! (in four accounts), writes a copy of `manifests/examples` with the real ids, and runs the
//! crosslink daemon against it. Ctrl-C stops everything it started. `cargo xtask bench`: the
//! benchmark of issue 7 (`bench.rs`); `cargo xtask bench --fake`: the engine against the
//! in-memory AWS at up to 100,000 links (`bench_fake.rs`).

mod bench;
mod bench_events;
mod bench_fake;
mod bench_report;
mod bench_scenario;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use crosslink_aws::{AwsCloud, Connector, seed_api_gateway_logging_role, seed_network, seed_route_table, seed_web_acl};
use crosslink_desired::DesiredState;
use crosslink_testkit::{ACCESS_KEY, Moto, REGION, SECRET_KEY};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("demo") => demo(&args[1..]).await,
        Some("bench") if args.iter().any(|a| a == "--fake") => bench_fake::bench(&args[1..]),
        Some("bench") => bench::bench(&args[1..]).await,
        // Hidden: one N of `bench --fake`, in its own process so that its peak RSS is its own.
        Some("bench-fake-run") => bench_fake::child(&args[1..]).await,
        _ => {
            eprintln!(
                "usage: cargo xtask demo [--listen 127.0.0.1:9090] [--once] [--replicas N] [-- <crosslink run flags>]"
            );
            eprintln!(
                "       cargo xtask bench [--links 10,100,1000|none] [--limits-on 100|off] [--no-build] [--out target/bench]"
            );
            eprintln!("       cargo xtask bench --fake [--fake-links 1000,10000,100000] [--fake-budget 600]");
            eprintln!("  demo    moto on loopback, seeded VPCs, and `crosslink run` on manifests/examples");
            eprintln!(
                "  --once  converge with `crosslink apply`, check with `crosslink plan` and `crosslink explain`, then stop"
            );
            eprintln!("  --replicas N  N daemons sharing the work through a local etcd (ports from --listen up)");
            eprintln!("  bench   issue 7: converge, steady state, drift repair and daemon RSS at N links (release");
            eprintln!("          build, behind a call-counting proxy); writes target/bench/results.json");
            eprintln!("  bench --fake  issue 13: the engine in process against the in-memory AWS at each N (one child");
            eprintln!("          process per N, killed after --fake-budget seconds): CPU, peak RSS, planner time");
            std::process::exit(2);
        }
    }
}

/// Creates every VPC and route table the desired state names; returns placeholder id -> real id.
async fn seed(moto: &Moto, desired: &DesiredState) -> Result<BTreeMap<String, String>> {
    let cloud = AwsCloud::new(Connector::static_credentials(&moto.endpoint, REGION, ACCESS_KEY, SECRET_KEY).await);
    let mut ids = BTreeMap::new();
    let mut next_net = 100u8;
    for g in &desired.gateways {
        let account = desired.account(&g.spec.account).context("gateway account")?;
        let session = cloud.session(account).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        // The example gateway logs to CloudWatch: the account's logging role, as an admin sets it.
        let role = format!("arn:aws:iam::{}:role/apigateway-cloudwatch", account.spec.account_id);
        seed_api_gateway_logging_role(&session, &role).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        // The example's web ACL, made under its name (the YAML's ARN is rewritten to the real one).
        if let Some(arn) = &g.spec.api.web_acl_arn {
            let name = arn.rsplit('/').nth(1).unwrap_or("crosslink-demo");
            let real = seed_web_acl(&session, name).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            ids.insert(arn.clone(), real);
        }
        let cidr = g.spec.cidr.unwrap_or_else(|| format!("10.{next_net}.0.0/16").parse().expect("cidr"));
        next_net += 1;
        let vpc = seed_network(&session, &g.metadata.name, cidr, g.spec.subnet_ids.len())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        ids.insert(g.spec.vpc_id.clone(), vpc.vpc_id.clone());
        for (placeholder, real) in g.spec.subnet_ids.iter().zip(&vpc.subnet_ids) {
            ids.insert(placeholder.clone(), real.clone());
        }
        for (i, rtb) in g.spec.route_table_ids.iter().enumerate() {
            let real = if i == 0 {
                vpc.route_table_id.clone()
            } else {
                seed_route_table(&session, &vpc.vpc_id, rtb).await.map_err(|e| anyhow::anyhow!("{e}"))?
            };
            ids.insert(rtb.clone(), real);
        }
    }
    // A link's backend TLS certificate, requested in the gateway's ACM (moto's ELBv2 takes only a
    // certificate its ACM holds; the YAML's ARN is rewritten to the real one).
    for l in &desired.links {
        let Some(tls) = &l.spec.tls else { continue };
        let gw = desired.gateway(&l.spec.gateway).context("link gateway")?;
        let account = desired.account(&gw.spec.account).context("gateway account")?;
        let real = moto
            .request_certificate(&account.spec.account_id, &account.spec.region, &tls.server_name)
            .map_err(|e| anyhow::anyhow!(e))?;
        ids.insert(tls.certificate_arn.clone(), real);
    }
    for l in &desired.links {
        let svc = &l.spec.service;
        if ids.contains_key(&svc.vpc_id) {
            let missing: Vec<&String> = svc.route_table_ids.iter().filter(|r| !ids.contains_key(*r)).collect();
            for rtb in missing {
                let account = desired.account(&svc.account).context("service account")?;
                let session = cloud.session(account).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                let real =
                    seed_route_table(&session, &ids[&svc.vpc_id], rtb).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                ids.insert(rtb.clone(), real);
            }
            continue;
        }
        let account = desired.account(&svc.account).context("service account")?;
        let session = cloud.session(account).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let cidr = svc.cidr.unwrap_or_else(|| format!("10.{next_net}.0.0/16").parse().expect("cidr"));
        next_net += 1;
        // A privateLink link's service-side NLB needs the subnets its YAML names.
        let subnets = l.spec.transport.private_link().map_or(&[][..], |p| p.subnet_ids.as_slice());
        let vpc = seed_network(&session, &l.metadata.name, cidr, subnets.len().max(1))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        ids.insert(svc.vpc_id.clone(), vpc.vpc_id.clone());
        for (placeholder, real) in subnets.iter().zip(&vpc.subnet_ids) {
            ids.insert(placeholder.clone(), real.clone());
        }
        for (i, rtb) in svc.route_table_ids.iter().enumerate() {
            let real = if i == 0 {
                vpc.route_table_id.clone()
            } else {
                seed_route_table(&session, &vpc.vpc_id, rtb).await.map_err(|e| anyhow::anyhow!("{e}"))?
            };
            ids.insert(rtb.clone(), real);
        }
    }
    Ok(ids)
}

/// Copies the YAML tree, replacing placeholder ids with the seeded ones.
fn rewrite(from: &Path, to: &Path, ids: &BTreeMap<String, String>) -> Result<()> {
    for entry in std::fs::read_dir(from)? {
        let path = entry?.path();
        let target = to.join(path.file_name().expect("a name"));
        if path.is_dir() {
            std::fs::create_dir_all(&target)?;
            rewrite(&path, &target, ids)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let mut text = std::fs::read_to_string(&path)?;
            for (placeholder, real) in ids {
                text = text.replace(placeholder, real);
            }
            // The schema modeline is relative to the original tree.
            let text: String =
                text.lines().filter(|l| !l.starts_with("# yaml-language-server")).map(|l| format!("{l}\n")).collect();
            let text = without_mutual_tls(&text);
            std::fs::write(&target, text)?;
        }
    }
    Ok(())
}

/// The demo's copy leaves a custom domain's `mutualTls` block out: moto does not store mutual
/// TLS on domain names (and answers UpdateDomainName with 500), so the domain would never look
/// converged. Mutual TLS is tested against the in-memory AWS.
fn without_mutual_tls(text: &str) -> String {
    let mut out = String::new();
    let mut skip_deeper_than: Option<usize> = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(d) = skip_deeper_than {
            if indent > d && !line.trim().is_empty() {
                continue;
            }
            skip_deeper_than = None;
        }
        if line.trim_start().starts_with("mutualTls:") {
            eprintln!("demo: leaving out `mutualTls` of the custom domain (moto does not emulate mutual TLS)");
            skip_deeper_than = Some(indent);
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn crosslink(moto: &Moto, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO"));
    cmd.current_dir(root()).args(["run", "--quiet", "--package", "crosslink", "--"]).args(args);
    for (k, v) in moto.env() {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null());
    cmd
}

async fn demo(args: &[String]) -> Result<()> {
    let listen =
        args.windows(2).find(|w| w[0] == "--listen").map(|w| w[1].clone()).unwrap_or_else(|| "127.0.0.1:9090".into());
    let once = args.iter().any(|a| a == "--once");
    let examples = root().join("manifests/examples");
    let desired = crosslink_desired::load(std::slice::from_ref(&examples)).map_err(|d| anyhow::anyhow!("{d}"))?;

    eprintln!("==> starting moto_server on 127.0.0.1 (installing moto[server] with pip if missing)");
    let moto = Moto::try_start().map_err(|e| anyhow::anyhow!(e))?;
    eprintln!("    moto at {} (pid {})", moto.endpoint, moto.pid());
    eprintln!("==> seeding the VPCs of {}", desired.summary());
    let ids = seed(&moto, &desired).await?;
    let out = root().join("target/demo/manifests");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out)?;
    rewrite(&examples, &out, &ids)?;
    let out_s = out.to_str().context("utf-8 path")?.to_string();
    eprintln!("    desired state with the seeded ids: {out_s}");

    if once {
        let status = crosslink(&moto, &["apply", "--timeout", "120s", &out_s]).status().await?;
        if !status.success() {
            bail!("crosslink apply failed ({status})");
        }
        let status = crosslink(&moto, &["plan", &out_s]).status().await?;
        if !status.success() {
            bail!("crosslink plan after apply is not in sync ({status})");
        }
        // Every hop of every link works (exit 0), as an on-call engineer would check it.
        for link in &desired.links {
            let name = &link.metadata.name;
            let status = crosslink(&moto, &["explain", name, &out_s]).status().await?;
            if !status.success() {
                bail!("crosslink explain {name}: not healthy ({status})");
            }
        }
        eprintln!(
            "==> demo converged: apply made AWS match, plan shows nothing to do, explain finds every link healthy"
        );
        return Ok(());
    }

    let replicas: usize = match args.windows(2).find(|w| w[0] == "--replicas") {
        Some(w) => w[1].parse().context("--replicas takes a number")?,
        None => 1,
    };
    let (host, base_port) = listen.rsplit_once(':').context("--listen host:port")?;
    let base_port: u16 = base_port.parse().context("--listen host:port")?;
    // Several replicas coordinate through an etcd of the demo's own, on loopback.
    let etcd = if replicas > 1 {
        eprintln!(
            "==> starting etcd on 127.0.0.1 for {replicas} replicas (installing etcd-server with apt-get if missing)"
        );
        Some(crosslink_testkit::EtcdCluster::try_start(1).map_err(|e| anyhow::anyhow!(e))?)
    } else {
        None
    };
    eprintln!("==> running {replicas} crosslink daemon(s) (Ctrl-C stops them and moto)");
    let endpoint = moto.endpoint.clone();
    // Arguments after `--` go to `crosslink run` (e.g. `cargo xtask demo -- --max-prune 2`).
    let extra: Vec<&str> = args.iter().skip_while(|a| *a != "--").skip(1).map(String::as_str).collect();
    let mut children = Vec::new();
    let mut listens = Vec::new();
    for i in 0..replicas {
        let listen_i = format!("{host}:{}", base_port + i as u16);
        let replica = format!("demo-{i}");
        let mut run_args: Vec<String> = ["run", "--listen", &listen_i, "--resync", "30s"].map(String::from).to_vec();
        if !extra.iter().any(|a| a.starts_with("--coordination")) {
            match &etcd {
                // One replica, whatever the environment (inside a pod, `auto` would pick Leases).
                None => run_args.extend(["--coordination".into(), "none".into()]),
                Some(etcd) => run_args.extend([
                    "--coordination".into(),
                    "etcd".into(),
                    "--etcd-endpoints".into(),
                    etcd.endpoints().join(","),
                    "--replica-id".into(),
                    replica,
                ]),
            }
        }
        run_args.extend(extra.iter().map(|a| a.to_string()));
        run_args.push(out_s.clone());
        let run_args: Vec<&str> = run_args.iter().map(String::as_str).collect();
        children.push(crosslink(&moto, &run_args).spawn()?);
        listens.push(listen_i);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    eprintln!();
    for listen in &listens {
        eprintln!("    status page   http://{listen}/");
        eprintln!(
            "    status JSON   http://{listen}/status      (or: cargo run -q -p crosslink -- status --server http://{listen})"
        );
        eprintln!("    metrics       http://{listen}/metrics");
        eprintln!("    health        http://{listen}/healthz  http://{listen}/readyz");
    }
    eprintln!(
        "    AWS (moto)    {endpoint}  (AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test)"
    );
    if let Some(etcd) = &etcd {
        eprintln!("    etcd          {}  (leases under /crosslink/crosslink/)", etcd.endpoints().join(","));
        eprintln!("    fail-over     kill one daemon (kill -9 <pid>): another takes its units over within seconds");
    }
    eprintln!("    edit          {out_s}/*.yaml and watch it converge");
    eprintln!();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let mut alive = 0;
                for c in children.iter_mut() {
                    match c.try_wait()? {
                        None => alive += 1,
                        Some(status) if replicas == 1 && !status.success() => bail!("crosslink run exited: {status}"),
                        Some(_) => {}
                    }
                }
                if alive == 0 {
                    bail!("every crosslink daemon exited");
                }
            }
            _ = tokio::signal::ctrl_c() => {
                eprintln!("==> stopping crosslink (it finishes in-flight calls) and moto");
                // The terminal sent the interrupt to the daemons as well; give them time to finish.
                for c in children.iter_mut() {
                    if tokio::time::timeout(Duration::from_secs(40), c.wait()).await.is_err() {
                        let _ = c.kill().await;
                    }
                }
                break;
            }
        }
    }
    drop(etcd);
    drop(moto);
    Ok(())
}
