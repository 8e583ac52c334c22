//! The planner: a pure function of (desired state, observed AWS state) to an ordered list of
//! actions, each with its resource, verb and reason. No I/O, no async, no SDK types.

pub mod observed;
pub mod op;
pub mod tags;
