//! The queue change events arrive on (issue 16): an SQS queue in the controller's account, fed by
//! an EventBridge rule. The AWS adapter implements it with SQS; [`crate::fake::queue`] in memory.

use std::future::Future;
use std::time::Duration;

use crate::CloudError;

/// One message as received: the body, and what deleting or releasing it takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueMessage {
    pub message_id: String,
    /// Names this receipt of the message: delete and release take it.
    pub receipt: String,
    pub body: String,
    /// How many times the message has been received, this time included
    /// (SQS `ApproximateReceiveCount`).
    pub receive_count: u32,
}

/// The most messages one receive returns (SQS `MaxNumberOfMessages` is at most 10).
pub const MAX_BATCH: usize = 10;

/// The longest long poll SQS allows (`WaitTimeSeconds` at most 20).
pub const MAX_WAIT: Duration = Duration::from_secs(20);

pub trait EventQueue: Send + Sync + 'static {
    /// Long-polls: returns as soon as messages are there, or empty after `wait`.
    fn receive(&self, wait: Duration) -> impl Future<Output = Result<Vec<QueueMessage>, CloudError>> + Send;

    /// Deletes what was received (`receipt`s): handled, or never worth handling.
    fn delete(&self, receipts: Vec<String>) -> impl Future<Output = Result<(), CloudError>> + Send;

    /// Makes a received message visible again at once, for another consumer (a replica that
    /// holds the unit it is about).
    fn release(&self, receipt: String) -> impl Future<Output = Result<(), CloudError>> + Send;

    /// Where the queue is, for logs and `/status` (its URL).
    fn name(&self) -> String;
}

impl<Q: EventQueue> EventQueue for std::sync::Arc<Q> {
    async fn receive(&self, wait: Duration) -> Result<Vec<QueueMessage>, CloudError> {
        (**self).receive(wait).await
    }
    async fn delete(&self, receipts: Vec<String>) -> Result<(), CloudError> {
        (**self).delete(receipts).await
    }
    async fn release(&self, receipt: String) -> Result<(), CloudError> {
        (**self).release(receipt).await
    }
    fn name(&self) -> String {
        (**self).name()
    }
}
