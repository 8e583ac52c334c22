//! Reading desired state from files and directories: discovery, limits, secrets, then decode and
//! validate. Never partially succeeds: either a whole valid state or every error found.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::decode::{self, Cx};
use crate::diag::{Diagnostic, Diagnostics};
use crate::model::{DesiredState, Document};
use crate::node::{self, Loc, Node, Value};
use crate::validate;

/// Larger files are refused: desired state is small, and this bounds memory on hostile input.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// At most this many files in one desired state.
pub const MAX_FILES: usize = 10_000;
/// Directory nesting deeper than this is refused (and symlink loops are detected).
pub const MAX_DEPTH: usize = 32;

/// Loads and validates the desired state at these paths (files or directory trees).
pub fn load(paths: &[PathBuf]) -> Result<DesiredState, Diagnostics> {
    let mut diags = Vec::new();
    let files = discover(paths, &mut diags);
    let mut sources = Vec::with_capacity(files.len());
    for f in files {
        match read(&f) {
            Ok(text) => sources.push((f, text)),
            Err(d) => diags.push(*d),
        }
    }
    let state = from_sources(sources.iter().map(|(f, t)| (f.as_path(), t.as_str())), &mut diags);
    finish(state, diags)
}

/// Loads desired state from in-memory text, as if read from `file`.
pub fn load_str(file: &Path, text: &str) -> Result<DesiredState, Diagnostics> {
    let mut diags = Vec::new();
    let state = from_sources([(file, text)].into_iter(), &mut diags);
    finish(state, diags)
}

fn finish(state: DesiredState, diags: Vec<Diagnostic>) -> Result<DesiredState, Diagnostics> {
    let mut diags = Diagnostics(diags);
    if diags.is_empty() {
        return Ok(state);
    }
    diags.sort();
    Err(diags)
}

/// A parser error, worded for the person who wrote the file: the parser's advice to its own
/// API users ("set DuplicateKeyPolicy in Options") is not theirs to follow.
fn yaml_error(file: &Path, loc: Loc, message: &str, hint: Option<&str>) -> Diagnostic {
    if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(", set DuplicateKeyPolicy").next().unwrap_or(rest).trim();
        return Diagnostic::new(file, loc, "", format!("invalid YAML: the key `{key}` appears twice in one mapping"))
            .hint(format!(
                "keep one `{key}`: YAML would otherwise silently use only one of them; nothing in this file was read"
            ));
    }
    Diagnostic::new(file, loc, "", format!("invalid YAML: {message}"))
        .hint(hint.unwrap_or("fix the YAML syntax; nothing in this file was read"))
}

fn from_sources<'a>(sources: impl Iterator<Item = (&'a Path, &'a str)>, diags: &mut Vec<Diagnostic>) -> DesiredState {
    let mut state = DesiredState::default();
    // Files that could not be read at all may hold documents of any kind and name.
    let mut undecoded = validate::Undecoded::default();
    if !diags.is_empty() {
        undecoded.unknown();
    }
    for (file, text) in sources {
        state.files.push(file.to_path_buf());
        let docs = match node::parse_documents(text) {
            Ok(d) => d,
            Err(e) => {
                diags.push(yaml_error(file, e.loc, &e.message, e.hint.as_deref()));
                undecoded.unknown();
                continue;
            }
        };
        for doc in &docs {
            if secrets(file, doc, diags) {
                undecoded.document(doc);
                continue;
            }
            let mut cx = Cx::new(file, text, diags);
            match decode::document(&mut cx, doc) {
                Some(Document::Account(a)) => state.accounts.push(a),
                Some(Document::Gateway(g)) => state.gateways.push(g),
                Some(Document::Link(l)) => state.links.push(l),
                Some(Document::Consumer(c)) => state.consumers.push(c),
                None => undecoded.document(doc),
            }
        }
    }
    // Every document that decoded is checked against the others; only what depends on a
    // document that did not decode is left out (it would report a consequence, not a mistake).
    validate::validate(&state, &undecoded, diags);
    state
}

/// Reports anything that looks like AWS credentials. Never echoes the value.
fn secrets(file: &Path, doc: &Node, diags: &mut Vec<Diagnostic>) -> bool {
    const KEYS: &[&str] =
        &["secretaccesskey", "accesskeyid", "sessiontoken", "securitytoken", "secretkey", "awssecret", "password"];
    let before = diags.len();
    let mut path = Vec::new();
    doc.walk(&mut path, &mut |path, key, node| {
        let field = path.join(".");
        if let Some(k) = key {
            let norm: String =
                k.name.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
            if KEYS.iter().any(|s| norm.contains(s)) {
                diags.push(credential(file, k.loc, &field));
                return;
            }
        }
        if let Value::Str(s) = &node.value
            && looks_like_credential(s)
        {
            diags.push(credential(file, node.loc, &field));
        }
    });
    diags.len() > before
}

fn credential(file: &Path, loc: Loc, field: &str) -> Diagnostic {
    if field.split('.').any(|f| f == "apiKey") {
        // A consumer's key: AWS generates its value, crosslink never writes or shows it.
        return Diagnostic::new(file, loc, field, "an API key's value does not belong in desired state")
            .hint("remove it (and treat it as leaked: it was committed); AWS generates the value, and crosslink shows only the key's id");
    }
    Diagnostic::new(file, loc, field, "credentials do not belong in desired state; use assumeRole")
        .hint("remove the secret (and rotate it: it was committed), then give the Account `assumeRole: {roleArn: ...}`")
}

fn looks_like_credential(s: &str) -> bool {
    let s = s.trim();
    let b = s.as_bytes();
    let access_key_id = b.len() == 20
        && (s.starts_with("AKIA") || s.starts_with("ASIA"))
        && b.iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    let secret_key = b.len() == 40
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'/' || *c == b'+')
        && b.iter().any(u8::is_ascii_lowercase)
        && b.iter().any(u8::is_ascii_uppercase)
        && b.iter().any(u8::is_ascii_digit);
    let session_token = b.len() > 100 && (s.starts_with("FwoGZXIvYXdz") || s.starts_with("IQoJb3JpZ2lu"));
    access_key_id || secret_key || session_token
}

fn is_yaml(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

fn is_hidden(p: &Path) -> bool {
    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'))
}

/// The YAML files under these paths, sorted, each once. Hidden entries (`.git`) are skipped.
fn discover(paths: &[PathBuf], diags: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let mut out = BTreeSet::new();
    let mut visited = BTreeSet::new();
    for p in paths {
        match fs::metadata(p) {
            Ok(m) if m.is_dir() => walk(p, 0, &mut visited, &mut out, diags),
            Ok(_) => {
                out.insert(p.clone());
            }
            Err(e) => diags.push(
                Diagnostic::new(p, Loc::UNKNOWN, "", format!("cannot read: {e}"))
                    .hint("give an existing file or directory"),
            ),
        }
    }
    if out.is_empty() && diags.is_empty() {
        let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        diags.push(
            Diagnostic::new(Path::new(&shown.join(" ")), Loc::UNKNOWN, "", "no *.yaml or *.yml files found")
                .hint("point crosslink at the directory that holds your desired state"),
        );
    }
    if out.len() > MAX_FILES {
        diags.push(
            Diagnostic::new(
                &paths[0],
                Loc::UNKNOWN,
                "",
                format!("{} files found; at most {MAX_FILES} are read", out.len()),
            )
            .hint("point crosslink at the desired-state directory only"),
        );
        return Vec::new();
    }
    out.into_iter().collect()
}

fn walk(
    dir: &Path,
    depth: usize,
    visited: &mut BTreeSet<PathBuf>,
    out: &mut BTreeSet<PathBuf>,
    diags: &mut Vec<Diagnostic>,
) {
    let real = match fs::canonicalize(dir) {
        Ok(r) => r,
        Err(e) => {
            diags.push(
                Diagnostic::new(dir, Loc::UNKNOWN, "", format!("cannot read directory: {e}"))
                    .hint("check the path and its permissions"),
            );
            return;
        }
    };
    if !visited.insert(real) {
        diags.push(
            Diagnostic::new(dir, Loc::UNKNOWN, "", "directory reached twice (a symlink loop?)")
                .hint("remove the symlink that points back into the desired-state tree"),
        );
        return;
    }
    if depth > MAX_DEPTH {
        diags.push(
            Diagnostic::new(dir, Loc::UNKNOWN, "", format!("directories nested deeper than {MAX_DEPTH}"))
                .hint("flatten the desired-state tree"),
        );
        return;
    }
    let entries = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            diags.push(
                Diagnostic::new(dir, Loc::UNKNOWN, "", format!("cannot read directory: {e}"))
                    .hint("check its permissions"),
            );
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if is_hidden(&path) {
            continue;
        }
        match fs::metadata(&path) {
            Ok(m) if m.is_dir() => walk(&path, depth + 1, visited, out, diags),
            Ok(m) if m.is_file() && is_yaml(&path) => {
                out.insert(path);
            }
            Ok(_) => {}
            Err(e) if is_yaml(&path) || e.kind() != std::io::ErrorKind::NotFound => {
                diags.push(
                    Diagnostic::new(&path, Loc::UNKNOWN, "", format!("cannot read: {e}"))
                        .hint("fix or remove the broken entry"),
                );
            }
            Err(_) => {}
        }
    }
}

fn read(path: &Path) -> Result<String, Box<Diagnostic>> {
    let meta = fs::metadata(path)
        .map_err(|e| Box::new(Diagnostic::new(path, Loc::UNKNOWN, "", format!("cannot read: {e}"))))?;
    if !meta.is_file() {
        return Err(Box::new(
            Diagnostic::new(path, Loc::UNKNOWN, "", "not a regular file")
                .hint("desired state is read from regular *.yaml / *.yml files only"),
        ));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(Box::new(
            Diagnostic::new(
                path,
                Loc::UNKNOWN,
                "",
                format!("file is {} bytes; at most {MAX_FILE_BYTES} are read", meta.len()),
            )
            .hint("desired state is small: split the file, or check that it is the right one"),
        ));
    }
    // Bounded even if the file grows while it is read.
    let mut bytes = Vec::new();
    fs::File::open(path)
        .and_then(|f| std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_FILE_BYTES + 1), &mut bytes))
        .map_err(|e| {
            Box::new(
                Diagnostic::new(path, Loc::UNKNOWN, "", format!("cannot read: {e}"))
                    .hint("check the file's permissions"),
            )
        })?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Box::new(
            Diagnostic::new(path, Loc::UNKNOWN, "", format!("file grew past {MAX_FILE_BYTES} bytes while being read"))
                .hint("desired state is small: check that it is the right file"),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = upto.iter().filter(|b| **b == b'\n').count() + 1;
        let col = upto.iter().rev().take_while(|b| **b != b'\n').count() + 1;
        Box::new(
            Diagnostic::new(path, Loc { line: line as u32, col: col as u32 }, "", "the file is not UTF-8")
                .hint("save it as UTF-8"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_shapes() {
        assert!(looks_like_credential("AKIAIOSFODNN7EXAMPLE"));
        assert!(looks_like_credential("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"));
        assert!(!looks_like_credential("vpc-0a1b2c3d4e5f60718"));
        assert!(!looks_like_credential("arn:aws:iam::111111111111:role/crosslink"));
    }
}
