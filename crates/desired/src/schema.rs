//! The JSON Schema of the format, generated from the model (`crosslink schema`).

use crate::model::Document;

/// The schema as pretty JSON with a trailing newline, as checked in at docs/crosslink.schema.json.
pub fn json_schema() -> String {
    let mut schema = schemars::schema_for!(Document);
    schema.insert("$id".into(), "https://crosslink.dev/schemas/v1alpha1.json".into());
    schema.insert("title".into(), "crosslink desired state (crosslink.dev/v1alpha1)".into());
    let mut s = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    s.push('\n');
    s
}
