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

/// A YAML syntax error, where the user's mistake most likely is (see [`unclosed_flow`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub loc: Loc,
    pub message: String,
    /// What to write instead, when the mistake is known.
    pub hint: Option<String>,
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
            // The parser notices a missing `]` or `}` only where the next line no longer fits in
            // the collection: point at the bracket that was left open instead.
            if let Some((open, at)) = unclosed_flow(text, loc)
                && at.line < loc.line
            {
                let (what, close) = if open == '[' { ("list", ']') } else { ("mapping", '}') };
                return Err(SyntaxError {
                    loc: at,
                    message: format!(
                        "this `{open}` opens a {what} that is never closed (the parser stopped at {loc}: {message})"
                    ),
                    hint: Some(format!(
                        "close the {what} with `{close}` on line {}, where it began (or continue it with `,`); nothing in this file was read",
                        at.line
                    )),
                });
            }
            Err(SyntaxError { loc, message, hint: None })
        }
    }
}

/// The innermost flow collection (`[` or `{`) that is open at `at` and never closed after it
/// (within its document): where a missing bracket belongs. Reads just enough YAML to skip
/// quoted scalars, comments and block scalars; `None` when every collection open at `at` is
/// closed later (the mistake is then at `at` itself, e.g. a missing `,`).
pub(crate) fn unclosed_flow(text: &str, at: Loc) -> Option<(char, Loc)> {
    let mut stack: Vec<(char, Loc)> = Vec::new();
    // The stack when `at` is reached, and the fewest of those entries that stay open after it.
    let mut at_error: Option<Vec<(char, Loc)>> = None;
    let mut still_open = usize::MAX;
    let mut quote: Option<char> = None;
    // Lines of a block scalar (`|`, `>`) are skipped while indented deeper than this.
    let mut block_scalar: Option<usize> = None;
    for (i, line) in text.lines().enumerate() {
        let line_no = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let indent = line.chars().take_while(|c| *c == ' ').count();
        if let Some(parent) = block_scalar {
            if line.trim().is_empty() || indent > parent {
                continue;
            }
            block_scalar = None;
        }
        if quote.is_none() && (line.starts_with("---") || line.starts_with("...")) {
            let rest = &line[3..];
            if rest.is_empty() || rest.starts_with([' ', '\t']) {
                if at_error.is_some() {
                    break; // A collection cannot continue into the next document.
                }
                stack.clear();
            }
        }
        let mut token_start = true;
        let mut prev_space = true;
        let mut chars = line.chars().enumerate().peekable();
        while let Some((c0, c)) = chars.next() {
            let here = Loc { line: line_no, col: u32::try_from(c0 + 1).unwrap_or(u32::MAX) };
            if at_error.is_none() && here >= at {
                at_error = Some(stack.clone());
                still_open = stack.len();
            }
            let next = chars.peek().map(|(_, n)| *n);
            let space_after = next.is_none_or(|n| n == ' ' || n == '\t');
            match quote {
                Some('"') => {
                    if c == '\\' {
                        chars.next();
                    } else if c == '"' {
                        quote = None;
                    }
                    prev_space = false;
                    continue;
                }
                Some(_) => {
                    if c == '\'' {
                        if next == Some('\'') {
                            chars.next();
                        } else {
                            quote = None;
                        }
                    }
                    prev_space = false;
                    continue;
                }
                None => {}
            }
            let in_flow = !stack.is_empty();
            match c {
                ' ' | '\t' => {
                    prev_space = true;
                    continue;
                }
                '#' if prev_space => break,
                '[' | '{' if in_flow || token_start => {
                    stack.push((c, here));
                    token_start = true;
                }
                ']' | '}' if in_flow => {
                    stack.pop();
                    if at_error.is_some() {
                        still_open = still_open.min(stack.len());
                    }
                    token_start = false;
                }
                ',' if in_flow => token_start = true,
                '"' | '\'' if token_start => quote = Some(c),
                ':' | '-' | '?' if space_after && (token_start || c == ':') => token_start = true,
                '|' | '>' if token_start && !in_flow => {
                    block_scalar = Some(indent);
                    break;
                }
                '&' | '!' | '*' if token_start => {
                    // An anchor, tag or alias: the node (if any) starts after it.
                    while chars.peek().is_some_and(|(_, n)| *n != ' ' && *n != '\t') {
                        chars.next();
                    }
                }
                _ => token_start = false,
            }
            prev_space = false;
        }
        if at_error.is_none() && line_no >= at.line {
            // `at` is past the end of its line.
            at_error = Some(stack.clone());
            still_open = stack.len();
        }
    }
    // `at` past the end of the text: what is open at the end.
    let open = at_error.unwrap_or_else(|| {
        still_open = stack.len();
        stack
    });
    open.get(still_open.min(open.len()).checked_sub(1)?).copied()
}

/// The text of the plain scalar that starts at `loc`, as the user wrote it (e.g. the digits of
/// a number whose leading zeros the parser dropped).
pub fn plain_scalar_at(text: &str, loc: Loc) -> Option<&str> {
    let line = text.lines().nth(usize::try_from(loc.line).ok()?.checked_sub(1)?)?;
    let start = line.char_indices().nth(usize::try_from(loc.col).ok()?.checked_sub(1)?)?.0;
    let rest = &line[start..];
    let end = rest.find([' ', '\t', ',', ']', '}', '#']).unwrap_or(rest.len());
    Some(&rest[..end]).filter(|s| !s.is_empty())
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

    fn at(line: u32, col: u32) -> Loc {
        Loc { line, col }
    }

    #[test]
    fn a_bracket_left_open_is_reported_where_it_was_opened() {
        // Where each is reported, and whether that is the open bracket (rather than where the
        // parser stopped).
        let cases: &[(&str, Loc, bool)] = &[
            ("spec:\n  subnetIds: [subnet-1\n  routeTableIds: [rtb-1]\n", at(2, 14), true),
            ("kind: Gateway\nmetadata: {name: edge\nspec: {}\n", at(2, 11), true),
            ("m: [a,\n   b\nn: 1\n", at(1, 4), true),
            // Brackets in quotes, comments, plain scalars and block scalars do not count.
            ("a: \"[x\"\nb: 'it''s [' # [\nc: x[y\nd: |\n  [z\ne: [q\nf: 1\n", at(6, 4), true),
            // Closed later: the mistake is where the parser stopped (a missing `,`).
            ("m: [{a: 1}\n   {b: 2}]\n", at(2, 4), false),
            // The parser's own bracket check already points at the bracket.
            ("m: [{a: 1}, {b: [2\n   ]\nn: 1\n", at(1, 13), false),
            ("a: [x\n---\nb: 1\n", at(1, 4), false),
        ];
        for (text, want, rewritten) in cases {
            let err = parse_documents(text).expect_err(text);
            assert_eq!(err.loc, *want, "{text:?}: {err:?}");
            assert_eq!(err.message.contains("never closed"), *rewritten, "{text:?}: {err:?}");
            assert_eq!(err.hint.is_some(), *rewritten, "{text:?}: {err:?}");
        }
    }

    #[test]
    fn plain_scalars_are_read_as_written() {
        let text = "a: 012345678901\nb: {accountId: 0123, c: 1}\nc: 1e3 # x\n";
        assert_eq!(plain_scalar_at(text, at(1, 4)), Some("012345678901"));
        assert_eq!(plain_scalar_at(text, at(2, 16)), Some("0123"));
        assert_eq!(plain_scalar_at(text, at(3, 4)), Some("1e3"));
        assert_eq!(plain_scalar_at(text, at(9, 1)), None);
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let err = parse_documents("a: [1, 2\nb: c\n").unwrap_err();
        assert!(err.loc.line >= 1, "{err:?}");
        assert!(!err.message.is_empty());
    }
}
