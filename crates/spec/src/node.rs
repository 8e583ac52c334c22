//! A YAML document as a tree of nodes that remember where they came from.
//!
//! Desired state is parsed in two steps: YAML -> [`Node`] (syntax; serde-saphyr does the YAML and
//! the locations), then [`Node`] -> model (`decode.rs`: types, unknown fields, every error of a
//! document at once, each with its line, column and field path).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A 1-based line and column in a file. `0:0` means unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Loc {
    pub line: u32,
    pub col: u32,
}

impl Loc {
    pub const UNKNOWN: Loc = Loc { line: 0, col: 0 };

    fn from_saphyr(l: &serde_saphyr::Location) -> Loc {
        Loc { line: u32::try_from(l.line()).unwrap_or(u32::MAX), col: u32::try_from(l.column()).unwrap_or(u32::MAX) }
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub loc: Loc,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    pub name: String,
    pub loc: Loc,
}

impl Value {
    /// What a user would call this kind of value, for "expected X, found Y" messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Value::Null => "nothing (null)",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "a number",
            Value::Float(_) => "a decimal number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Node {
    /// The value as a scalar's text, for echoing it back in a message.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(x) => Some(x.to_string()),
            Value::Str(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// Visits every node depth-first with the keys that lead to it.
    pub fn walk<'a>(&'a self, path: &mut Vec<&'a str>, f: &mut Visit<'a, '_>) {
        self.walk_inner(path, None, f);
    }

    fn walk_inner<'a>(&'a self, path: &mut Vec<&'a str>, key: Option<&'a Key>, f: &mut Visit<'a, '_>) {
        f(path, key, self);
        match &self.value {
            Value::Seq(items) => {
                for item in items {
                    item.walk_inner(path, None, f);
                }
            }
            Value::Map(entries) => {
                for (k, v) in entries {
                    path.push(&k.name);
                    v.walk_inner(path, Some(k), f);
                    path.pop();
                }
            }
            _ => {}
        }
    }
}

/// Called for every node with the keys leading to it and the key it stands under.
pub type Visit<'a, 'f> = dyn FnMut(&[&'a str], Option<&'a Key>, &'a Node) + 'f;

impl Node {
    /// The node as JSON, e.g. to check raw input against the JSON Schema.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => i64::try_from(*i).map(J::from).unwrap_or_else(|_| J::String(i.to_string())),
            Value::Float(x) => serde_json::Number::from_f64(*x).map(J::Number).unwrap_or(J::Null),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(entries.iter().map(|(k, v)| (k.name.clone(), v.to_json())).collect()),
        }
    }
}

/// The raw value, deserialized inside a `Spanned` so that every node keeps its location.
struct Raw(Value);

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Raw>::deserialize(d)?;
        Ok(Node { loc: Loc::from_saphyr(&spanned.referenced), value: spanned.value.0 })
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw(Value::Int(v.into())))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Raw, E> {
        Ok(Raw(Value::Int(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw(Value::Int(v.into())))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Raw, E> {
        i128::try_from(v).map(|v| Raw(Value::Int(v))).map_err(|_| E::custom("number too large"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw(Value::Float(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw(Value::Str(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Raw, E> {
        Ok(Raw(Value::Str(v)))
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Raw, E> {
        Err(E::custom("binary values are not supported"))
    }
    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw(Value::Null))
    }
    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw(Value::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        Raw::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(n) = seq.next_element::<Node>()? {
            items.push(n);
        }
        Ok(Raw(Value::Seq(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = map.next_key::<Node>()? {
            let name = match k.scalar_text() {
                Some(s) => s,
                None => return Err(de::Error::custom("mapping keys must be plain scalars")),
            };
            let v = map.next_value::<Node>()?;
            entries.push((Key { name, loc: k.loc }, v));
        }
        Ok(Raw(Value::Map(entries)))
    }
}

/// A YAML syntax error, with the position serde-saphyr reported.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub loc: Loc,
    pub message: String,
}

/// The most YAML nodes (mappings, sequences, scalars, alias expansions included) one file may
/// hold: about 3,000 links. serde-saphyr's default (250,000) lets a 1 KiB alias bomb reach about
/// 72 MiB of memory; this keeps any file under 64 MiB (docs/reliability.md).
pub const MAX_NODES: usize = 100_000;

/// Parses every document of a YAML stream. Empty documents (a lone `---`) are dropped.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, SyntaxError> {
    // Both are non-exhaustive: set the one field on the defaults.
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = MAX_NODES;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    match serde_saphyr::from_multiple_with_options::<Option<Node>>(text, options) {
        Ok(docs) => Ok(docs.into_iter().flatten().filter(|n| n.value != Value::Null).collect()),
        Err(e) => {
            let loc = e.location().map(|l| Loc::from_saphyr(&l)).unwrap_or_default();
            let message = first_line(&e.without_snippet().to_string());
            let message = if message.contains("budget breached: Nodes") {
                format!(
                    "more than {MAX_NODES} YAML nodes in one file (aliases expanded): an alias bomb, or desired state too large for one file"
                )
            } else if message.contains("budget breached: Documents") {
                format!(
                    "more than {} YAML documents in one file: split it into several files",
                    serde_saphyr::Budget::default().max_documents
                )
            } else {
                message
            };
            Err(SyntaxError { loc, message })
        }
    }
}

fn first_line(s: &str) -> String {
    // serde-saphyr appends the position ("at line X, column Y") which we report separately.
    let line = s.lines().next().unwrap_or(s).trim();
    match line.rfind(" at line ") {
        Some(i) => line[..i].to_string(),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_locations_of_nested_values() {
        let docs = parse_documents("a: 1\nb:\n  - x\n  - {c: true}\n---\n---\nz: null\n").unwrap();
        assert_eq!(docs.len(), 2);
        let Value::Map(entries) = &docs[0].value else { panic!("not a map") };
        assert_eq!(entries[0].0.name, "a");
        assert_eq!(entries[0].0.loc, Loc { line: 1, col: 1 });
        assert_eq!(entries[0].1.value, Value::Int(1));
        let Value::Seq(items) = &entries[1].1.value else { panic!("not a seq") };
        assert_eq!(items[0].loc.line, 3);
        assert_eq!(items[1].loc.line, 4);
    }

    #[test]
    fn quoted_numbers_stay_strings() {
        let docs = parse_documents("id: \"012345678901\"\nn: 012\n").unwrap();
        let Value::Map(e) = &docs[0].value else { panic!() };
        assert_eq!(e[0].1.value, Value::Str("012345678901".into()));
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let err = parse_documents("a: [1, 2\nb: c\n").unwrap_err();
        assert!(err.loc.line >= 1, "{err:?}");
        assert!(!err.message.is_empty());
    }
}
