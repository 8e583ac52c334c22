//! The planner: a pure function of (desired state, observed AWS state) to an ordered list of
//! actions, each with its resource, verb and reason. No I/O, no async, no SDK types.

pub mod kinds;
pub mod model;
pub mod observed;
pub mod op;
mod planner;
pub mod tags;
pub mod units;

pub use model::{Action, Change, Counts, Plan, Problem, Reason, Report, Subject, Verb};
pub use planner::{Settings, health_check, integration_uri, plan, target_group_name, vpc_link_name};
