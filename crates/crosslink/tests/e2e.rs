//! The binary end to end against moto: `plan` exit codes, `apply`, and that invalid input
//! changes nothing. Slow (moto), so in its own test binary.

use std::path::Path;
use std::process::{Command, Output};

use crosslink_aws::{AwsCloud, Connector, SeededVpc, seed_network};
use crosslink_desired::DesiredState;
use crosslink_testkit::{ACCESS_KEY, Moto, REGION, SECRET_KEY};

fn run(moto: &Moto, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crosslink"));
    cmd.args(args).env("NO_COLOR", "1").env_remove("CROSSLINK_DESIRED_STATE");
    for (k, v) in moto.env() {
        cmd.env(k, v);
    }
    cmd.output().expect("run crosslink")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

struct Seeded {
    gw: SeededVpc,
    svc: SeededVpc,
}

fn accounts() -> &'static str {
    "apiVersion: crosslink.dev/v1alpha1\nkind: Account\nmetadata: {name: shared}\nspec: {accountId: \"111111111111\", region: eu-central-1, assumeRole: {roleArn: \"arn:aws:iam::111111111111:role/crosslink\", externalId: e2e-ext}}\n---\napiVersion: crosslink.dev/v1alpha1\nkind: Account\nmetadata: {name: payments}\nspec: {accountId: \"222222222222\", region: eu-central-1, assumeRole: {roleArn: \"arn:aws:iam::222222222222:role/crosslink\", externalId: e2e-ext}}\n"
}

async fn seed(moto: &Moto) -> Seeded {
    let cloud = AwsCloud::new(Connector::static_credentials(&moto.endpoint, REGION, ACCESS_KEY, SECRET_KEY).await);
    let d: DesiredState = crosslink_desired::load_str(Path::new("a.yaml"), accounts()).unwrap();
    let gw = cloud.session(d.account("shared").unwrap()).await.unwrap();
    let svc = cloud.session(d.account("payments").unwrap()).await.unwrap();
    Seeded {
        gw: seed_network(&gw, "gateway", "10.1.0.0/16".parse().unwrap(), 2).await.unwrap(),
        svc: seed_network(&svc, "payments", "10.20.0.0/16".parse().unwrap(), 1).await.unwrap(),
    }
}

fn write_state(dir: &Path, s: &Seeded, extra_link: bool) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("accounts.yaml"), accounts()).unwrap();
    let mut links = format!(
        "apiVersion: crosslink.dev/v1alpha1\nkind: Gateway\nmetadata: {{name: edge}}\nspec:\n  account: shared\n  vpcId: {}\n  subnetIds: [{}]\n  routeTableIds: [{}]\n  loadBalancer: {{name: edge-nlb}}\n  api: {{name: open-banking, stage: v1}}\n---\napiVersion: crosslink.dev/v1alpha1\nkind: Link\nmetadata: {{name: payments}}\nspec:\n  gateway: edge\n  service: {{account: payments, vpcId: {}, routeTableIds: [{}]}}\n  targets: [{{ip: 10.20.1.15, port: 8080}}]\n  listenerPort: 9001\n  routes: [{{path: /payments}}]\n",
        s.gw.vpc_id,
        s.gw.subnet_ids.join(", "),
        s.gw.route_table_id,
        s.svc.vpc_id,
        s.svc.route_table_id
    );
    if extra_link {
        links.push_str(&format!(
            "---\napiVersion: crosslink.dev/v1alpha1\nkind: Link\nmetadata: {{name: refunds}}\nspec:\n  gateway: edge\n  service: {{account: payments, vpcId: {}, routeTableIds: [{}]}}\n  targets: [{{ip: 10.20.1.16, port: 8080}}]\n  listenerPort: 9002\n  routes: [{{path: /refunds}}]\n",
            s.svc.vpc_id, s.svc.route_table_id
        ));
    }
    std::fs::write(dir.join("links.yaml"), links).unwrap();
}

#[tokio::test]
async fn plan_apply_plan_and_invalid_input_changes_nothing() {
    let moto = Moto::start();
    let seeded = seed(&moto).await;
    let dir = crosslink_testkit::scratch_dir("e2e");
    write_state(&dir, &seeded, true);
    let d = dir.to_str().unwrap();

    let plan = run(&moto, &["plan", d]);
    let out = text(&plan);
    assert_eq!(plan.status.code(), Some(2), "changes pending:\n{out}");
    assert!(out.contains("Gateway/edge (account shared)") && out.contains("+ create load balancer edge-nlb"), "{out}");
    assert!(out.contains("Link/payments") && out.contains("+ create listener :9001 on edge-nlb"), "{out}");

    let json = run(&moto, &["plan", "-o", "json", d]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["inSync"], false);
    assert!(v["counts"]["create"].as_u64().unwrap() > 10);

    let apply = run(&moto, &["apply", "--timeout", "60s", d]);
    let out = text(&apply);
    assert_eq!(apply.status.code(), Some(0), "{out}");
    assert!(out.contains("In sync"), "{out}");
    assert!(out.contains("Link/payments") && out.contains("in sync"), "{out}");
    // Every mutating call is logged with its reason.
    assert!(
        out.contains("op=\"CreateVpcPeeringConnection\"") || out.contains("op=CreateVpcPeeringConnection"),
        "{out}"
    );
    assert!(out.contains("reason=missing"), "{out}");

    // The machine-readable report of a converged apply.
    let json = run(&moto, &["apply", "-o", "json", "--timeout", "60s", d]);
    assert_eq!(json.status.code(), Some(0), "{}", text(&json));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("apply -o json is JSON");
    assert_eq!(v["converged"], true);
    assert!(v["remaining"]["reports"]["Link/payments"].is_object(), "{v}");

    let again = run(&moto, &["plan", d]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));

    // A broken file: exit 1, the error, and no AWS change (the extra link would be pruned by a
    // valid state without it; here nothing happens at all).
    std::fs::write(
        dir.join("broken.yaml"),
        "apiVersion: crosslink.dev/v1alpha1\nkind: Link\nmetadata: {name: x}\nspec: {gateway: edge, listnerPort: 1}\n",
    )
    .unwrap();
    std::fs::write(dir.join("links.yaml"), "").unwrap();
    let bad = run(&moto, &["apply", d]);
    let out = text(&bad);
    assert_eq!(bad.status.code(), Some(1), "{out}");
    assert!(out.contains("broken.yaml:4:23: Link/x: spec.listnerPort: unknown field `listnerPort`"), "{out}");
    assert!(out.contains("nothing was changed"), "{out}");
    std::fs::remove_file(dir.join("broken.yaml")).unwrap();
    write_state(&dir, &seeded, true);
    let still = run(&moto, &["plan", d]);
    assert_eq!(still.status.code(), Some(0), "nothing was pruned: {}", text(&still));

    // Removing a link: the plan says what goes and why.
    write_state(&dir, &seeded, false);
    let removal = run(&moto, &["plan", d]);
    let out = text(&removal);
    assert_eq!(removal.status.code(), Some(2), "{out}");
    assert!(out.contains("Link/refunds (removed from desired state)"), "{out}");
    assert!(out.contains("- delete listener :9002") && out.contains("no longer desired"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 17 with the binary: a link built by hand is discovered (`discover --out`), planned
/// (`adopt …`, exit 2), applied and then in sync (`plan` exit 0); later, removed from the YAML
/// (kept: discover wrote `deletionPolicy: Retain`), it is released: `--dry-run` shows the
/// `release` lines and changes nothing, `release` removes crosslink's tags, and `plan` stays at 0.
#[tokio::test]
async fn discover_adopt_then_release_with_the_binary() {
    let moto = Moto::start();
    let seeded = seed(&moto).await;
    let cloud = AwsCloud::new(Connector::static_credentials(&moto.endpoint, REGION, ACCESS_KEY, SECRET_KEY).await);
    let d: DesiredState = crosslink_desired::load_str(Path::new("a.yaml"), accounts()).unwrap();
    let (gw, svc) = (
        cloud.session(d.account("shared").unwrap()).await.unwrap(),
        cloud.session(d.account("payments").unwrap()).await.unwrap(),
    );
    let hand = crosslink_aws::seed_link_by_hand(&gw, &svc, &seeded.gw, &seeded.svc, "10.20.1.15").await.unwrap();

    let dir = crosslink_testkit::scratch_dir("e2e-brownfield");
    let accounts_file = dir.join("accounts.yaml");
    std::fs::write(&accounts_file, accounts()).unwrap();
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let discovered = state.join("discovered.yaml");
    let out = run(
        &moto,
        &[
            "discover",
            accounts_file.to_str().unwrap(),
            "--gateway-account",
            "shared",
            "--out",
            discovered.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("Discovered 1 gateway(s) and 1 link(s); 0 thing(s) not expressed."), "{}", text(&out));
    let yaml = std::fs::read_to_string(&discovered).unwrap();
    assert!(yaml.contains(&hand.vpc_link_id) && yaml.contains("adoption: Adopt"), "{yaml}");
    let s = state.to_str().unwrap();

    let plan = run(&moto, &["plan", s]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    let out = text(&plan);
    assert!(out.contains(&format!("adopt listener :9001 ({})", hand.listener_arn)), "{out}");
    assert!(out.contains("Plan: 0 to create"), "{out}");
    let apply = run(&moto, &["apply", "--timeout", "60s", s]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let plan = run(&moto, &["plan", s]);
    assert_eq!(plan.status.code(), Some(0), "in sync after the adoption:\n{}", text(&plan));

    // Handed back: the link leaves the YAML (kept), then is released with its pair's peering.
    let gateway_only: Vec<&str> = yaml.split("\n---\n").filter(|doc| !doc.contains("kind: Link")).collect();
    std::fs::write(&discovered, gateway_only.join("\n---\n")).unwrap();
    let apply = run(&moto, &["apply", "--timeout", "60s", s]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let pair = format!("Peering/{}/{}", seeded.gw.vpc_id, seeded.svc.vpc_id);
    let args = |dry: bool| {
        let mut a = vec!["release", s, "--object", "Link/payments-tg", "--object", pair.as_str()];
        if dry {
            a.push("--dry-run");
        }
        a
    };
    let dry = run(&moto, &args(true));
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    let peering_line = format!("release peering {}", hand.peering_id);
    for line in ["release listener :9001", "release target group payments-tg", peering_line.as_str()] {
        assert!(text(&dry).contains(line), "{line}:\n{}", text(&dry));
    }
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&gw.config);
    let keys = async || -> Vec<String> {
        let t = elb.describe_tags().resource_arns(&hand.target_group_arn).send().await.unwrap();
        t.tag_descriptions()[0].tags().iter().filter_map(|t| t.key()).map(str::to_string).collect()
    };
    assert!(keys().await.iter().any(|k| k == "crosslink.dev/managed-by"), "a dry run changes nothing");
    let release = run(&moto, &args(false));
    assert_eq!(release.status.code(), Some(0), "{}", text(&release));
    assert!(text(&release).contains("Released: 3 resource(s), 0 failed."), "{}", text(&release));
    assert!(keys().await.iter().all(|k| !k.starts_with("crosslink.dev/")), "{:?}", keys().await);
    let plan = run(&moto, &["plan", s]);
    assert_eq!(plan.status.code(), Some(0), "left alone after the release:\n{}", text(&plan));
}
