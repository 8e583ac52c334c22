//! Fencing: when work is sharded across replicas, every mutating AWS call is made only while
//! the replica still holds the lease of the unit (gateway) the call belongs to.
//!
//! The engine runs each action inside [`scope`] with a check for that action's unit; the AWS
//! adapter calls [`check`] after the client-side rate-limit wait, immediately before the request
//! is sent (and the SDK interceptor before every retry attempt), so a call that waited for a
//! token re-checks the lease after waiting. Outside a scope (one replica, `apply`, tests) there
//! is no fence and [`check`] always passes.

use std::future::Future;
use std::sync::Arc;

use crate::{CloudError, ErrorKind};

/// Answers "may this replica still change the unit?": `Err` names why not.
#[derive(Clone)]
pub struct Fence(Arc<dyn Fn() -> Result<(), String> + Send + Sync>);

impl Fence {
    pub fn new(check: impl Fn() -> Result<(), String> + Send + Sync + 'static) -> Self {
        Fence(Arc::new(check))
    }
}

impl std::fmt::Debug for Fence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fence")
    }
}

tokio::task_local! {
    static FENCE: Fence;
}

/// The error of a call that was not sent because the lease is gone.
pub const LEASE_LOST: &str = "LeaseLost";

/// Runs `f` with `fence` in force for every mutating call made inside it.
pub async fn scope<F: Future>(fence: Option<Fence>, f: F) -> F::Output {
    match fence {
        Some(fence) => FENCE.scope(fence, f).await,
        None => f.await,
    }
}

/// Whether a mutating call may be sent now.
pub fn check() -> Result<(), CloudError> {
    FENCE
        .try_with(|f| (f.0)())
        .unwrap_or(Ok(()))
        .map_err(|why| CloudError::new(ErrorKind::Conflict, LEASE_LOST, format!("not sent: {why}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_fence_passes_and_a_lost_lease_stops_calls() {
        assert!(check().is_ok());
        let ok = scope(Some(Fence::new(|| Ok(()))), async { check() }).await;
        assert!(ok.is_ok());
        let lost = scope(Some(Fence::new(|| Err("lease of unit a expired".into()))), async { check() }).await;
        let e = lost.unwrap_err();
        assert_eq!(e.code, LEASE_LOST);
        assert!(e.message.contains("unit a"), "{e}");
        // The fence belongs to its scope only.
        assert!(check().is_ok());
    }
}
