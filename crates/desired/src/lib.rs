//! crosslink's desired state: the `crosslink.dev/v1alpha1` model, loading it from YAML with
//! precise errors, validating it, and its JSON Schema. Pure: no network, no async.

mod decode;
pub mod diag;
mod index;
mod load;
pub mod model;
pub mod node;
pub mod rules;
mod schema;
mod suggest;
mod validate;

pub use diag::{Diagnostic, Diagnostics};
pub use index::Index;
pub use load::{MAX_DEPTH, MAX_FILE_BYTES, MAX_FILES, load, load_str};
pub use model::*;
pub use schema::json_schema;
pub use validate::{MAX_LINKS_PER_GATEWAY, MAX_TARGETS_PER_GATEWAY};
