//! Calls in flight: the engine's `--concurrency` bounds requests sent and not yet answered, not
//! calls waiting for a client-side rate-limit token. The engine runs each action inside [`scope`]
//! with its pool of slots; the AWS adapter (and the in-memory AWS) take a slot with [`acquire`]
//! after the token wait, right before the request is sent, and hold it until the answer. So a
//! call waiting for its account's bucket never holds a slot another account or bucket could use.
//! Outside a scope (observation, tests calling the adapter directly) nothing is bounded.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{CloudError, ErrorKind};

/// The engine's slots, and whether a call may still start (shutdown).
#[derive(Clone)]
pub struct Slots {
    pool: Arc<Semaphore>,
    may_start: Arc<dyn Fn() -> bool + Send + Sync>,
}

impl Slots {
    /// `n` calls in flight at once; `may_start` answers false once no new call may be sent.
    pub fn new(n: usize, may_start: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        Slots { pool: Arc::new(Semaphore::new(n.max(1))), may_start: Arc::new(may_start) }
    }

    /// Slots not taken right now.
    pub fn available(&self) -> usize {
        self.pool.available_permits()
    }
}

impl std::fmt::Debug for Slots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slots").field("available", &self.pool.available_permits()).finish()
    }
}

tokio::task_local! {
    static SLOTS: Slots;
}

/// The error of a call that was not sent because shutdown began while it waited.
pub const NOT_STARTED: &str = "NotStarted";

/// Runs `f` with `slots` bounding the requests made inside it.
pub async fn scope<F: Future>(slots: Option<Slots>, f: F) -> F::Output {
    match slots {
        Some(slots) => SLOTS.scope(slots, f).await,
        None => f.await,
    }
}

/// A slot for one request, held until dropped; `None` outside a scope. Fails when shutdown began
/// while the call waited (it is then not sent).
pub async fn acquire() -> Result<Option<OwnedSemaphorePermit>, CloudError> {
    let Ok(slots) = SLOTS.try_with(Slots::clone) else { return Ok(None) };
    let permit = slots.pool.acquire_owned().await.expect("the engine never closes its slots");
    if !(slots.may_start)() {
        return Err(CloudError::new(ErrorKind::Conflict, NOT_STARTED, "not sent: shutting down"));
    }
    Ok(Some(permit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn outside_a_scope_nothing_is_bounded_and_inside_slots_are_taken_and_given_back() {
        assert!(acquire().await.unwrap().is_none());
        let slots = Slots::new(2, || true);
        let s = slots.clone();
        scope(Some(slots.clone()), async move {
            let a = acquire().await.unwrap();
            let b = acquire().await.unwrap();
            assert!(a.is_some() && b.is_some());
            assert_eq!(s.available(), 0);
            drop(a);
            assert_eq!(s.available(), 1);
        })
        .await;
        assert_eq!(slots.available(), 2);
        let stopped = Slots::new(1, || false);
        let e = scope(Some(stopped), acquire()).await.unwrap_err();
        assert_eq!(e.code, NOT_STARTED);
    }
}
