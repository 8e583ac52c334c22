//! The reconcile engine: observe -> plan -> apply, as one pass (`crosslink apply`) or, later, as
//! a loop.

pub mod engine;

pub use engine::{ActionResult, ApplyOptions, ApplyReport, Engine, EngineOptions, Executed, scopes};
