//! An in-memory SQS standard queue, as SQS documents it where the daemon depends on it:
//! - a receive returns at most 10 messages, and waits (long polling) only while there are none;
//! - a received message is invisible for the visibility timeout, then delivered again (at least
//!   once: a consumer that does not delete it sees it again, with its receive count raised);
//! - a release (`ChangeMessageVisibility` to 0) makes it visible at once;
//! - a delete with a receipt of the message removes it.
//!
//! Order is kept (SQS standard queues do not promise it; nothing here relies on it). Scripted
//! failures (`fail_next`) stand for an unreadable queue: access denied, a deleted queue.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::CloudError;
use crate::queue::{EventQueue, MAX_BATCH, QueueMessage};

#[derive(Debug)]
struct Stored {
    id: String,
    body: String,
    receives: u32,
    /// Invisible until then (received and neither deleted nor released).
    hidden_until: Option<Instant>,
    receipt: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    messages: VecDeque<Stored>,
    failures: VecDeque<CloudError>,
}

#[derive(Debug)]
pub struct FakeQueue {
    state: Mutex<State>,
    arrived: Notify,
    visibility: Duration,
    next: AtomicU64,
    /// Calls answered, by kind: what a consumer costs.
    receives: AtomicU64,
    deletes: AtomicU64,
}

impl Default for FakeQueue {
    fn default() -> Self {
        FakeQueue::new(Duration::from_secs(30))
    }
}

impl FakeQueue {
    /// A queue whose received messages stay invisible for `visibility` (SQS's default: 30 s).
    pub fn new(visibility: Duration) -> FakeQueue {
        FakeQueue {
            state: Mutex::default(),
            arrived: Notify::new(),
            visibility,
            next: AtomicU64::new(1),
            receives: AtomicU64::new(0),
            deletes: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends a message (what EventBridge's target does); returns its message id.
    pub fn send(&self, body: impl Into<String>) -> String {
        let id = format!("msg-{}", self.next.fetch_add(1, Ordering::Relaxed));
        self.lock().messages.push_back(Stored {
            id: id.clone(),
            body: body.into(),
            receives: 0,
            hidden_until: None,
            receipt: None,
        });
        self.arrived.notify_waiters();
        id
    }

    /// The next call fails with `error` (an unreadable queue).
    pub fn fail_next(&self, error: CloudError) {
        self.lock().failures.push_back(error);
    }

    /// Messages still in the queue, visible or not.
    pub fn len(&self) -> usize {
        self.lock().messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Receive calls answered so far.
    pub fn receive_calls(&self) -> u64 {
        self.receives.load(Ordering::Relaxed)
    }

    /// Delete calls answered so far (a batch is one call).
    pub fn delete_calls(&self) -> u64 {
        self.deletes.load(Ordering::Relaxed)
    }

    /// Messages by id -> how many times each was received.
    pub fn receive_counts(&self) -> BTreeMap<String, u32> {
        self.lock().messages.iter().map(|m| (m.id.clone(), m.receives)).collect()
    }

    fn take_visible(&self) -> Result<Vec<QueueMessage>, CloudError> {
        let mut st = self.lock();
        if let Some(e) = st.failures.pop_front() {
            return Err(e);
        }
        let now = Instant::now();
        let mut out = Vec::new();
        for m in st.messages.iter_mut() {
            if out.len() == MAX_BATCH {
                break;
            }
            if m.hidden_until.is_some_and(|t| t > now) {
                continue;
            }
            m.receives += 1;
            m.hidden_until = Some(now + self.visibility);
            let receipt = format!("{}#{}", m.id, m.receives);
            m.receipt = Some(receipt.clone());
            out.push(QueueMessage {
                message_id: m.id.clone(),
                receipt,
                body: m.body.clone(),
                receive_count: m.receives,
            });
        }
        Ok(out)
    }

    /// When the next hidden message becomes visible again.
    fn next_visible(&self) -> Option<Instant> {
        self.lock().messages.iter().filter_map(|m| m.hidden_until).min()
    }
}

impl EventQueue for FakeQueue {
    async fn receive(&self, wait: Duration) -> Result<Vec<QueueMessage>, CloudError> {
        self.receives.fetch_add(1, Ordering::Relaxed);
        let deadline = Instant::now() + wait;
        loop {
            let arrived = self.arrived.notified();
            let got = self.take_visible()?;
            if !got.is_empty() || Instant::now() >= deadline {
                return Ok(got);
            }
            let until = self.next_visible().map_or(deadline, |t| t.min(deadline));
            tokio::select! {
                _ = arrived => {}
                _ = tokio::time::sleep_until(until) => {}
            }
        }
    }

    async fn delete(&self, receipts: Vec<String>) -> Result<(), CloudError> {
        self.deletes.fetch_add(1, Ordering::Relaxed);
        let mut st = self.lock();
        if let Some(e) = st.failures.pop_front() {
            return Err(e);
        }
        st.messages.retain(|m| m.receipt.as_ref().is_none_or(|r| !receipts.contains(r)));
        Ok(())
    }

    async fn release(&self, receipt: String) -> Result<(), CloudError> {
        let mut st = self.lock();
        if let Some(m) = st.messages.iter_mut().find(|m| m.receipt.as_deref() == Some(receipt.as_str())) {
            m.hidden_until = None;
        }
        drop(st);
        self.arrived.notify_waiters();
        Ok(())
    }

    fn name(&self) -> String {
        "memory://events".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn at_least_once_batches_of_ten_visibility_and_release() {
        let q = FakeQueue::new(Duration::from_secs(30));
        for i in 0..12 {
            q.send(format!("m{i}"));
        }
        let first = q.receive(Duration::ZERO).await.unwrap();
        assert_eq!(first.len(), 10);
        let second = q.receive(Duration::ZERO).await.unwrap();
        assert_eq!(second.len(), 2);
        // Nothing visible: a long poll waits, and returns empty at its end.
        assert!(q.receive(Duration::from_secs(5)).await.unwrap().is_empty());
        q.delete(first.iter().map(|m| m.receipt.clone()).collect()).await.unwrap();
        q.release(second[0].receipt.clone()).await.unwrap();
        let again = q.receive(Duration::ZERO).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!((again[0].body.as_str(), again[0].receive_count), ("m10", 2));
        // Not deleted: visible again after the visibility timeout.
        tokio::time::advance(Duration::from_secs(31)).await;
        let later = q.receive(Duration::ZERO).await.unwrap();
        assert_eq!(later.len(), 2);
        assert_eq!(q.len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_poll_returns_when_a_message_arrives() {
        let q = std::sync::Arc::new(FakeQueue::default());
        let sender = q.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            sender.send("late");
        });
        let started = Instant::now();
        let got = q.receive(Duration::from_secs(20)).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(started.elapsed(), Duration::from_secs(3));
    }
}
