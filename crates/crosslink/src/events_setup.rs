//! `crosslink events-setup`: what carries change events from every account to the daemon's queue
//! (issue 16), as JSON ready to apply. Nothing here calls AWS.
//!
//! In each account of the desired state (other than the controller's), an EventBridge rule on
//! the default bus matches the CloudTrail management events crosslink reacts to
//! (`crosslink_controller::events::WATCHED`) and forwards them to the controller account's
//! default bus, through a role that may only put events on that bus. In the controller account, a
//! bus policy lets exactly those accounts put exactly those events, a rule sends them to the
//! queue, and a queue policy lets only that rule send. The controller's own identity may
//! receive, delete and release messages on that one queue.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::ExitCode;

use anstream::eprintln;
use crosslink_controller::events::{DETAIL_TYPE, WATCHED};
use crosslink_desired::DesiredState;
use serde_json::{Value, json};

/// The rule's name, in every account.
pub const RULE: &str = "crosslink-changes";
/// The forwarding role's name in each source account.
pub const FORWARDER_ROLE: &str = "crosslink-events-forwarder";

#[derive(Debug, clap::Args)]
pub struct EventsSetupArgs {
    /// Desired-state files or directories (read recursively: *.yaml, *.yml).
    #[arg(required = true, env = "CROSSLINK_DESIRED_STATE", value_delimiter = ',')]
    pub paths: Vec<std::path::PathBuf>,
    /// The events queue, by URL (as `run --events-queue` takes it) or ARN. Its account is the
    /// controller account, whose default event bus collects every account's events.
    #[arg(long, env = "CROSSLINK_EVENTS_QUEUE", value_name = "URL|ARN")]
    pub queue: String,
}

/// An SQS queue, known by URL or ARN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queue {
    pub partition: String,
    pub region: String,
    pub account: String,
    pub name: String,
}

impl Queue {
    /// `https://sqs.<region>.amazonaws.com/<account>/<name>` or `arn:<partition>:sqs:<region>:<account>:<name>`.
    pub fn parse(s: &str) -> Result<Queue, String> {
        let bad = || {
            format!(
                "{s:?} is not an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>) or ARN (arn:aws:sqs:<region>:<account>:<name>)"
            )
        };
        let q = if let Some(rest) = s.strip_prefix("arn:") {
            let parts: Vec<&str> = rest.split(':').collect();
            match parts.as_slice() {
                [partition, "sqs", region, account, name] => Queue {
                    partition: partition.to_string(),
                    region: region.to_string(),
                    account: account.to_string(),
                    name: name.to_string(),
                },
                _ => return Err(bad()),
            }
        } else {
            let region = crosslink_aws::queue::region_of_url(s).ok_or_else(bad)?;
            let path: Vec<&str> = s.split("://").nth(1).ok_or_else(bad)?.split('/').skip(1).collect();
            match path.as_slice() {
                [account, name] => Queue {
                    partition: if region.starts_with("cn-") { "aws-cn" } else { "aws" }.into(),
                    region: region.to_string(),
                    account: account.to_string(),
                    name: name.to_string(),
                },
                _ => return Err(bad()),
            }
        };
        let valid_account = q.account.len() == 12 && q.account.chars().all(|c| c.is_ascii_digit());
        if !valid_account || q.name.is_empty() || q.region.is_empty() {
            return Err(bad());
        }
        Ok(q)
    }

    pub fn arn(&self) -> String {
        format!("arn:{}:sqs:{}:{}:{}", self.partition, self.region, self.account, self.name)
    }

    fn bus_arn(&self) -> String {
        format!("arn:{}:events:{}:{}:event-bus/default", self.partition, self.region, self.account)
    }

    fn rule_arn(&self) -> String {
        format!("arn:{}:events:{}:{}:rule/{RULE}", self.partition, self.region, self.account)
    }
}

/// The pattern of every rule: the watched calls of the watched services, nothing else.
pub fn event_pattern() -> Value {
    let sources: Vec<String> =
        WATCHED.iter().map(|(s, _)| format!("aws.{}", s.trim_end_matches(".amazonaws.com"))).collect();
    let names: BTreeSet<&str> = WATCHED.iter().flat_map(|(_, n)| n.iter().copied()).collect();
    json!({
        "source": sources,
        "detail-type": [DETAIL_TYPE],
        "detail": {
            "eventSource": WATCHED.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            "eventName": names,
        }
    })
}

/// The statement the controller's identity needs on the queue (also in `iam-policy
/// --events-queue`). `DeleteMessageBatch` is authorized as `sqs:DeleteMessage`.
pub fn consumer_statement(q: &Queue) -> Value {
    json!({
        "Sid": "ReadChangeEvents",
        "Effect": "Allow",
        "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"],
        "Resource": q.arn(),
    })
}

pub fn generate(state: &DesiredState, q: &Queue) -> Value {
    let pattern = event_pattern();
    let sources = pattern["source"].clone();
    let mut accounts = serde_json::Map::new();
    let mut senders = BTreeSet::new();
    for a in &state.accounts {
        let id = &a.spec.account_id;
        if *id == q.account {
            accounts.insert(
                a.metadata.name.clone(),
                json!({
                    "accountId": id,
                    "region": a.spec.region,
                    "note": "the controller account: its events reach its default bus without forwarding",
                }),
            );
            continue;
        }
        senders.insert(format!("arn:{}:iam::{id}:root", q.partition));
        let role_arn = format!("arn:{}:iam::{id}:role/{FORWARDER_ROLE}", q.partition);
        let mut note = "create the role, then the rule with its target, in this account and region".to_string();
        if a.spec.region != q.region {
            note.push_str(&format!("; the target bus is in {}, another region (cross-region delivery)", q.region));
        }
        accounts.insert(
            a.metadata.name.clone(),
            json!({
                "accountId": id,
                "region": a.spec.region,
                "forwarderRole": {
                    "roleName": FORWARDER_ROLE,
                    "trustPolicy": {
                        "Version": "2012-10-17",
                        "Statement": [{
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                            "Condition": {"StringEquals": {"aws:SourceAccount": id}},
                        }],
                    },
                    "permissionsPolicy": {
                        "Version": "2012-10-17",
                        "Statement": [{
                            "Sid": "ForwardToTheControllerBus",
                            "Effect": "Allow",
                            "Action": "events:PutEvents",
                            "Resource": q.bus_arn(),
                        }],
                    },
                },
                "rule": {
                    "name": RULE,
                    "eventBusName": "default",
                    "eventPattern": pattern,
                    "targets": [{"Id": "controller-bus", "Arn": q.bus_arn(), "RoleArn": role_arn}],
                },
                "note": note,
            }),
        );
    }
    let mut controller = json!({
        "accountId": q.account,
        "region": q.region,
        "queue": {
            "name": q.name,
            "arn": q.arn(),
            "attributes": {
                "ReceiveMessageWaitTimeSeconds": "20",
                "MessageRetentionPeriod": "3600",
                "SqsManagedSseEnabled": "true",
            },
            "policy": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "OnlyTheCrosslinkRule",
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": q.arn(),
                    "Condition": {"ArnEquals": {"aws:SourceArn": q.rule_arn()}},
                }],
            },
        },
        "rule": {
            "name": RULE,
            "eventBusName": "default",
            "eventPattern": pattern,
            "targets": [{"Id": "crosslink-queue", "Arn": q.arn()}],
        },
        "consumerPolicy": {"Version": "2012-10-17", "Statement": [consumer_statement(q)]},
    });
    if !senders.is_empty() {
        controller["busPolicy"] = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "CrosslinkAccountsChangeEvents",
                "Effect": "Allow",
                "Principal": {"AWS": senders.into_iter().collect::<Vec<_>>()},
                "Action": "events:PutEvents",
                "Resource": q.bus_arn(),
                "Condition": {
                    "StringEquals": {"events:detail-type": DETAIL_TYPE},
                    "ForAllValues:StringEquals": {"events:source": sources},
                },
            }],
        });
    }
    json!({
        "eventPattern": pattern,
        "controller": controller,
        "accounts": accounts,
        "notes": [
            "CloudTrail delivers \"AWS API Call via CloudTrail\" events to EventBridge only where a trail logs management events: every account and region above needs one (an organization trail covers them all).",
            "Attach controller.consumerPolicy to the controller's identity (also printed by `crosslink iam-policy --events-queue`), then run the daemon with --events-queue <queue URL>.",
            "Events are a speed-up: the resync still runs and catches whatever an event missed. See docs/events.md.",
        ],
    })
}

pub fn events_setup(args: &EventsSetupArgs) -> ExitCode {
    let q = match Queue::parse(&args.queue) {
        Ok(q) => q,
        Err(e) => {
            eprintln!("error: --queue: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(state) = crate::validate::load_or_report(&args.paths) else { return ExitCode::FAILURE };
    let doc = generate(&state, &q);
    let _ =
        writeln!(std::io::stdout().lock(), "{}", serde_json::to_string_pretty(&doc).expect("a JSON value serializes"));
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_are_known_by_url_or_arn() {
        let url = Queue::parse("https://sqs.eu-central-1.amazonaws.com/000011112222/crosslink-events").unwrap();
        let arn = Queue::parse("arn:aws:sqs:eu-central-1:000011112222:crosslink-events").unwrap();
        assert_eq!(url, arn);
        assert_eq!(url.arn(), "arn:aws:sqs:eu-central-1:000011112222:crosslink-events");
        for bad in [
            "crosslink-events",
            "https://example.com/q",
            "arn:aws:sns:eu-central-1:000011112222:t",
            "arn:aws:sqs:eu-central-1:12:q",
        ] {
            let e = Queue::parse(bad).unwrap_err();
            assert!(e.contains("is not an SQS queue URL"), "{e}");
        }
    }

    #[test]
    fn every_account_forwards_only_the_watched_calls_and_only_the_rule_may_send() {
        let state = crosslink_desired::load(&[std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../manifests/examples"
        ))])
        .expect("the examples are valid");
        let q = Queue::parse("arn:aws:sqs:eu-central-1:000011112222:crosslink-events").unwrap();
        let doc = generate(&state, &q);
        let pattern = &doc["eventPattern"];
        assert_eq!(pattern["detail-type"], json!([DETAIL_TYPE]));
        assert_eq!(pattern["source"], json!(["aws.ec2", "aws.elasticloadbalancing", "aws.apigateway", "aws.wafv2"]));
        let names = pattern["detail"]["eventName"].as_array().unwrap();
        assert!(names.contains(&json!("DeleteRoute")) && names.contains(&json!("DeregisterTargets")));
        assert!(names.contains(&json!("DisassociateWebACL")) && names.contains(&json!("UpdateRestApi")));
        assert!(!names.iter().any(|n| n.as_str().unwrap().starts_with("Describe")), "no reads");
        let accounts = doc["accounts"].as_object().unwrap();
        assert_eq!(accounts.len(), state.accounts.len());
        let senders = doc["controller"]["busPolicy"]["Statement"][0]["Principal"]["AWS"].as_array().unwrap();
        assert_eq!(senders.len(), state.accounts.len(), "each account may put events on the bus");
        for (name, a) in accounts {
            let target = &a["rule"]["targets"][0];
            assert_eq!(target["Arn"], "arn:aws:events:eu-central-1:000011112222:event-bus/default", "{name}");
            assert_eq!(a["rule"]["eventPattern"], *pattern);
            assert_eq!(a["forwarderRole"]["permissionsPolicy"]["Statement"][0]["Resource"], target["Arn"]);
        }
        let queue = &doc["controller"]["queue"]["policy"]["Statement"][0];
        assert_eq!(
            queue["Condition"]["ArnEquals"]["aws:SourceArn"],
            "arn:aws:events:eu-central-1:000011112222:rule/crosslink-changes"
        );
        assert_eq!(
            doc["controller"]["consumerPolicy"]["Statement"][0]["Action"],
            json!(["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"])
        );
    }
}
