//! Issue 16's figures: change events through moto's EventBridge and SQS to a running daemon
//! (`--resync 1h`, limits off) on the converged scenario. The rule is the one `crosslink
//! events-setup` prints. Measured:
//! - idle: `ReceiveMessage` requests in 60 s with no events (the daemon's own count);
//! - per event: a service-side route deleted in moto, then a CloudTrail-shaped `DeleteRoute`
//!   event (moto makes none of its own) put on moto's bus; the time from `PutEvents` to the route
//!   being back, read from moto directly; and the daemon's AWS calls (the queue's left out) from
//!   before the event to 3 s after the repair, its follow-up pass included, against a full pass.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_eventbridge::types::{PutEventsRequestEntry, Target};
use aws_sdk_sqs::types::QueueAttributeName;
use crosslink_aws::{AwsCloud, Connector};
use crosslink_controller::events::{DETAIL_TYPE, cloudtrail_event};
use crosslink_desired::DesiredState;
use crosslink_testkit::{ACCESS_KEY, Moto, Proxy, REGION, SECRET_KEY};
use serde::Serialize;

use crate::bench::{http_get, parse_requests, spawn_daemon_with};
use crate::bench_scenario::{Scenario, Seeded};

#[derive(Clone, Debug, Default, Serialize)]
pub struct Events {
    pub idle_s: f64,
    /// `ReceiveMessage` requests while idle.
    pub idle_receives: u64,
    /// Per event: from `PutEvents` to the route back (s).
    pub repair_s: Vec<f64>,
    /// Per event: the daemon's AWS calls, SQS left out.
    pub calls: Vec<u64>,
    /// Per event: the accounts the daemon called (the proxy's record, SQS and STS left out),
    /// and the accounts the event's route is between (the gateway's and the service's).
    pub accounts_read: Vec<usize>,
    pub accounts_affected: Vec<usize>,
    /// Accounts in the desired state.
    pub accounts: usize,
    pub exit_code: i32,
}

impl Events {
    /// The `q` quantile of the repair times (nearest rank).
    pub fn quantile(&self, q: f64) -> f64 {
        let mut v = self.repair_s.clone();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return 0.0;
        }
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }
}

/// Non-SQS calls by `service:Operation`, summed.
fn aws_calls(requests: &BTreeMap<String, u64>) -> u64 {
    requests.iter().filter(|(k, _)| !k.starts_with("sqs:")).map(|(_, v)| v).sum()
}

#[allow(clippy::too_many_arguments)]
pub async fn events(
    bin: &Path,
    dir: &Path,
    proxy: &Proxy,
    moto: &Moto,
    scenario: &Scenario,
    seeded: &Seeded,
    desired: &DesiredState,
    count: usize,
) -> Result<Events> {
    let connector = Connector::static_credentials(&moto.endpoint, REGION, ACCESS_KEY, SECRET_KEY).await;
    let base = connector.base().clone();
    let sqs = aws_sdk_sqs::Client::new(&base);
    let url =
        sqs.create_queue().queue_name("crosslink-events").send().await?.queue_url().context("queue url")?.to_string();
    let attrs = sqs.get_queue_attributes().queue_url(&url).attribute_names(QueueAttributeName::QueueArn).send().await?;
    let arn = attrs.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn)).context("queue arn")?.clone();
    let out = Command::new(bin)
        .args(["events-setup", dir.join("desired").to_str().context("utf-8 path")?, "--queue", &arn])
        .output()?;
    if !out.status.success() {
        bail!("crosslink events-setup: {}", String::from_utf8_lossy(&out.stderr));
    }
    let setup: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let rule = &setup["controller"]["rule"];
    let name = rule["name"].as_str().context("rule name")?;
    let eb = aws_sdk_eventbridge::Client::new(&base);
    eb.put_rule().name(name).event_pattern(rule["eventPattern"].to_string()).send().await?;
    let target = Target::builder().id("crosslink-queue").arn(&arn).build()?;
    eb.put_targets().rule(name).targets(target).send().await?;

    let (mut child, addr) =
        spawn_daemon_with(bin, dir, proxy, "off", "events.daemon.log", "1h", &["--events-queue", &url])?;
    let scrape = async move || -> Result<BTreeMap<String, u64>> {
        let (_, text) = tokio::task::spawn_blocking(move || http_get(addr, "/metrics")).await??;
        Ok(parse_requests(&text))
    };
    let deadline = Instant::now() + Duration::from_secs(3600);
    while !matches!(tokio::task::spawn_blocking(move || http_get(addr, "/readyz")).await?, Ok((200, _))) {
        if Instant::now() > deadline {
            bail!("the daemon did not become ready; see {}", dir.join("events.daemon.log").display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut r = Events { idle_s: 60.0, accounts: desired.accounts.len(), ..Events::default() };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let receives = |m: &BTreeMap<String, u64>| m.get("sqs:ReceiveMessage").copied().unwrap_or(0);
    let before = scrape().await?;
    tokio::time::sleep(Duration::from_secs_f64(r.idle_s)).await;
    r.idle_receives = receives(&scrape().await?) - receives(&before);

    let cloud = AwsCloud::new(connector).with_rate_limits(crosslink_aws::RateLimits::off());
    let pairs = scenario.pairs();
    for i in 0..count {
        let (g, s) = pairs[i * pairs.len() / count.max(1) % pairs.len()];
        let account = desired.account(&Scenario::service_account_name(s)).context("service account")?;
        let ec2 = aws_sdk_ec2::Client::new(&cloud.session(account).await.map_err(|e| anyhow::anyhow!("{e}"))?.config);
        let (rtb, destination) = (seeded.services[s].1.clone(), Scenario::gateway_cidr(g).to_string());
        ec2.delete_route().route_table_id(&rtb).destination_cidr_block(&destination).send().await?;
        let request = serde_json::json!({"routeTableId": rtb, "destinationCidrBlock": destination});
        let event: serde_json::Value = serde_json::from_str(&cloudtrail_event(
            &format!("bench-{i}"),
            &account.spec.account_id,
            "ec2.amazonaws.com",
            "DeleteRoute",
            &format!("arn:aws:sts::{}:assumed-role/Admin/bench", account.spec.account_id),
            request,
        ))?;
        let entry = PutEventsRequestEntry::builder()
            .source("aws.ec2")
            .detail_type(DETAIL_TYPE)
            .detail(event["detail"].to_string())
            .build();
        let calls_before = aws_calls(&scrape().await?);
        let proxied_before = proxy.calls().len();
        let started = Instant::now();
        eb.put_events().entries(entry).send().await?;
        loop {
            let t = ec2.describe_route_tables().route_table_ids(&rtb).send().await?;
            let back = t
                .route_tables()
                .iter()
                .flat_map(|t| t.routes())
                .any(|r| r.destination_cidr_block() == Some(destination.as_str()));
            if back {
                break;
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!(
                    "event {i}: the route to {destination} in {rtb} was not repaired in 120 s; see {}",
                    dir.join("events.daemon.log").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        r.repair_s.push(started.elapsed().as_secs_f64());
        tokio::time::sleep(Duration::from_secs(3)).await;
        r.calls.push(aws_calls(&scrape().await?) - calls_before);
        let read: std::collections::BTreeSet<String> = proxy.calls()[proxied_before..]
            .iter()
            .filter(|c| c.service != "sqs" && c.service != "sts")
            .map(|c| c.account.clone())
            .collect();
        let gateway = desired
            .account(&Scenario::gateway_account_name(scenario.gateway_account_of(g)))
            .map(|a| a.spec.account_id.clone());
        let affected: std::collections::BTreeSet<String> =
            [gateway, Some(account.spec.account_id.clone())].into_iter().flatten().collect();
        r.accounts_read.push(read.len());
        r.accounts_affected.push(affected.len());
        if !read.is_subset(&affected) {
            eprintln!("    event {i}: read {read:?}, beyond the affected accounts {affected:?}");
        }
    }
    child.signal(libc::SIGTERM);
    let (f, _) = tokio::task::spawn_blocking(move || child.wait()).await??;
    r.exit_code = f.exit_code;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::Events;

    #[test]
    fn quantiles_are_nearest_rank() {
        let e = Events { repair_s: (1..=20).map(f64::from).collect(), ..Events::default() };
        assert_eq!((e.quantile(0.5), e.quantile(0.95), e.quantile(1.0)), (10.0, 19.0, 20.0));
        assert_eq!(Events::default().quantile(0.95), 0.0);
    }
}
