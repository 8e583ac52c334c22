//! The change-event queue on SQS (issue 16): long polls of at most 20 s, batches of 10, batch
//! deletes, and releases (`ChangeMessageVisibility` to 0) for another replica. The queue lives in
//! the controller's own account: its calls use the base credentials, not an Account's role.

use std::time::Duration;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use aws_types::region::Region;
use crosslink_cloud::CloudError;
use crosslink_cloud::queue::{EventQueue, MAX_BATCH, MAX_WAIT, QueueMessage};

use crate::errors::from_sdk;
use crate::session::Connector;

#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

/// The region in an SQS queue URL (`https://sqs.<region>.amazonaws.com/<account>/<name>`).
pub fn region_of_url(url: &str) -> Option<&str> {
    let host = url.split("://").nth(1)?.split('/').next()?;
    let mut parts = host.split('.');
    (parts.next()? == "sqs").then_some(())?;
    parts.next().filter(|r| !r.is_empty() && *r != "amazonaws")
}

impl SqsQueue {
    /// The queue at `url`, read with the connector's base credentials; in the URL's region when
    /// the base configuration names none.
    pub fn new(connector: &Connector, url: &str) -> SqsQueue {
        let mut b = aws_sdk_sqs::config::Builder::from(connector.base());
        if connector.base().region().is_none()
            && let Some(r) = region_of_url(url)
        {
            b = b.region(Region::new(r.to_string()));
        }
        SqsQueue { client: aws_sdk_sqs::Client::from_conf(b.build()), url: url.to_string() }
    }
}

impl EventQueue for SqsQueue {
    async fn receive(&self, wait: Duration) -> Result<Vec<QueueMessage>, CloudError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(MAX_BATCH as i32)
            .wait_time_seconds(wait.min(MAX_WAIT).as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| from_sdk(&e))?;
        Ok(out
            .messages()
            .iter()
            .filter_map(|m| {
                let receive_count = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1);
                Some(QueueMessage {
                    message_id: m.message_id()?.to_string(),
                    receipt: m.receipt_handle()?.to_string(),
                    body: m.body().unwrap_or_default().to_string(),
                    receive_count,
                })
            })
            .collect())
    }

    async fn delete(&self, receipts: Vec<String>) -> Result<(), CloudError> {
        for chunk in receipts.chunks(MAX_BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, r)| DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(r).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    CloudError::new(crosslink_cloud::ErrorKind::Permanent, "ConstructionFailure", e.to_string())
                })?;
            // Entries that fail on their own (a receipt gone stale) come back visible and are
            // received again: at least once, like any SQS consumer.
            self.client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| from_sdk(&e))?;
        }
        Ok(())
    }

    async fn release(&self, receipt: String) -> Result<(), CloudError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(|e| from_sdk(&e))?;
        Ok(())
    }

    fn name(&self) -> String {
        self.url.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::region_of_url;

    #[test]
    fn the_region_comes_from_the_queue_url() {
        assert_eq!(
            region_of_url("https://sqs.eu-central-1.amazonaws.com/111111111111/crosslink-events"),
            Some("eu-central-1")
        );
        assert_eq!(region_of_url("http://127.0.0.1:5000/123456789012/q"), None);
        assert_eq!(region_of_url("https://sqs.amazonaws.com/1/q"), None);
    }
}
