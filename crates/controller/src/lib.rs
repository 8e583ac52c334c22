//! The reconcile engine: observe -> plan -> apply, as one pass (`crosslink apply`) or, later, as
//! a loop.

pub mod engine;
pub mod metrics;
pub mod status;

pub use engine::{ActionResult, ApplyOptions, ApplyReport, Engine, EngineOptions, Executed, scopes};
