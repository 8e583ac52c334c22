//! The reconcile engine: observe -> plan -> apply, as one pass (`crosslink apply`) or, later, as
//! a loop.

pub mod daemon;
pub mod engine;
pub mod events;
pub mod focus;
pub mod metrics;
pub mod source;
pub mod status;

pub use engine::{ActionResult, ApplyOptions, ApplyReport, Engine, EngineOptions, ExecContext, Executed, scopes};
