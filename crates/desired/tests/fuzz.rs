//! The loader against arbitrary input, as a bounded fuzz run inside `cargo test`: random bytes,
//! YAML-ish token soup, and mutations of the example manifests (flipped, deleted, duplicated
//! characters and lines). Whatever comes in: no panic, no hang, and either a valid state or
//! errors that each name the file and a line inside it.
//!
//! 2,000 cases per run (`PROPTEST_CASES` overrides the count of each property).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::prelude::*;

/// Generous: a case takes milliseconds; this only catches a loader that stops making progress.
const PER_CASE: Duration = Duration::from_secs(5);

fn examples() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../manifests/examples");
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(std::fs::read_to_string(p).unwrap());
            }
        }
    }
    out.sort();
    out
}

/// Loads `text`; checks the outcome is well-formed.
fn check(text: &str) {
    let file = PathBuf::from("fuzz.yaml");
    // YAML breaks lines at \n, \r and \r\n.
    let lines = text.chars().filter(|c| *c == '\n' || *c == '\r').count() as u32 + 1;
    let start = Instant::now();
    let r = crosslink_desired::load_str(&file, text);
    assert!(start.elapsed() < PER_CASE, "took {:?}", start.elapsed());
    if let Err(diags) = r {
        let all: Vec<_> = diags.iter().collect();
        assert!(!all.is_empty(), "an error without diagnostics");
        for d in all {
            assert_eq!(d.file, file, "{d:?}");
            assert!(d.line <= lines, "line {} of a {lines}-line input: {d:?}", d.line);
            assert!(!d.message.is_empty(), "{d:?}");
            // The rendered error names the file (and a line when one is known).
            let shown = d.to_string();
            assert!(shown.starts_with("fuzz.yaml"), "{shown}");
        }
    }
}

const TOKENS: &[&str] = &[
    "apiVersion: crosslink.dev/v1alpha1",
    "kind: ",
    "Link",
    "Gateway",
    "Account",
    "metadata:",
    "spec:",
    "name: ",
    "{",
    "}",
    "[",
    "]",
    "- ",
    "---",
    "...",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "!!str ",
    "!!binary ",
    "!Ref ",
    "'",
    "\"",
    ": ",
    ":",
    " ",
    "  ",
    "\n",
    "\n  ",
    "\t",
    "#",
    ",",
    "?",
    "|",
    ">",
    "<<: ",
    "%YAML 1.2\n",
    "null",
    "~",
    "true",
    "yes",
    "0x1F",
    "1e309",
    "-1",
    "9001",
    "99999999999999999999",
    "\"111111111111\"",
    "10.20.0.0/16",
    "vpc-0a1b2c3d4e5f60718",
    "listenerPort: ",
    "targets: ",
    "routes: ",
    "path: /a",
    "ip: 10.20.1.5",
    "gateway: edge",
    "account: shared",
    "\u{feff}",
    "é",
    "\u{202e}",
    "\\u0000",
    "\\x00",
];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..200).prop_map(|t| t.concat())
}

#[derive(Clone, Debug)]
enum Edit {
    FlipChar(usize, char),
    DeleteChar(usize),
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    InsertToken(usize, &'static str),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<char>()).prop_map(|(i, c)| Edit::FlipChar(i, c)),
        any::<usize>().prop_map(Edit::DeleteChar),
        any::<usize>().prop_map(Edit::DeleteLine),
        any::<usize>().prop_map(Edit::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        (any::<usize>(), prop::sample::select(TOKENS)).prop_map(|(i, t)| Edit::InsertToken(i, t)),
    ]
}

fn apply(text: &str, e: &Edit) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    match e {
        Edit::FlipChar(i, c) if !chars.is_empty() => {
            let n = chars.len();
            chars[i % n] = *c;
            chars.into_iter().collect()
        }
        Edit::DeleteChar(i) if !chars.is_empty() => {
            let n = chars.len();
            chars.remove(i % n);
            chars.into_iter().collect()
        }
        Edit::InsertToken(i, t) => {
            let at = i % (chars.len() + 1);
            let mut s: String = chars[..at].iter().collect();
            s.push_str(t);
            s.extend(&chars[at..]);
            s
        }
        Edit::DeleteLine(i) if !lines.is_empty() => {
            let n = lines.len();
            lines.remove(i % n);
            lines.concat()
        }
        Edit::DuplicateLine(i) if !lines.is_empty() => {
            let n = lines.len();
            let l = lines[i % n];
            lines.insert(i % n, l);
            lines.concat()
        }
        Edit::SwapLines(a, b) if !lines.is_empty() => {
            let n = lines.len();
            lines.swap(a % n, b % n);
            lines.concat()
        }
        _ => text.to_string(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 800, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        check(&String::from_utf8_lossy(&bytes));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn yaml_token_soup_never_panics(text in soup()) {
        check(&text);
    }

    #[test]
    fn mutated_examples_never_panic(which in any::<usize>(), edits in prop::collection::vec(edit(), 1..8)) {
        let all = examples();
        // One example file, or all of them as one multi-document stream.
        let base = if which % 6 == 5 { all.join("---\n") } else { all[which % all.len()].clone() };
        let text = edits.iter().fold(base, |t, e| apply(&t, e));
        check(&text);
    }
}

/// The unmutated examples stay valid: the mutation property is not vacuous.
#[test]
fn the_examples_load() {
    let all = examples();
    assert!(all.len() >= 5);
    crosslink_desired::load_str(Path::new("fuzz.yaml"), &all.join("---\n")).unwrap_or_else(|e| panic!("{e}"));
}
