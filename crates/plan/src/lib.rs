//! The planner: a pure function of (desired state, observed AWS state) to an ordered list of
//! actions, each with its resource, verb and reason. No I/O, no async, no SDK types.

pub mod discover;
pub mod health;
pub mod kinds;
pub mod model;
pub mod observed;
pub mod op;
mod planner;
pub mod release;
pub mod tags;
pub mod units;

pub use kinds::method::integration_uri;
pub use kinds::target_group::{health_check, target_group_name};
pub use kinds::vpc_link::vpc_link_name;
pub use model::{Action, Change, Counts, Plan, Problem, Reason, Report, Subject, Verb};
pub use planner::{Settings, plan};
