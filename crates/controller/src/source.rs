//! Where desired state comes from: a directory (usually a git checkout kept fresh by a sync
//! sidecar), its revision (the git HEAD commit, else a content hash), and a debounced watch.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crosslink_spec::{DesiredState, Diagnostics};
use notify_debouncer_full::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

/// A loaded, valid desired state and the revision it came from.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub state: Arc<DesiredState>,
    pub revision: String,
}

#[derive(Debug)]
pub enum LoadFailure {
    Invalid {
        revision: String,
        diagnostics: Diagnostics,
    },
    /// The files changed while they were read (an edit in progress): read again shortly.
    Unstable,
}

/// Loads and validates; the revision is computed either way, so that a broken commit is named.
/// A read that overlaps a write is refused rather than trusted: a half-written file can look
/// like valid desired state with links missing.
pub fn load(paths: &[PathBuf]) -> Result<Loaded, LoadFailure> {
    let revision = revision(paths);
    let result = crosslink_spec::load(paths);
    if crate::source::revision(paths) != revision {
        return Err(LoadFailure::Unstable);
    }
    match result {
        Ok(state) => Ok(Loaded { state: Arc::new(state), revision }),
        Err(diagnostics) => Err(LoadFailure::Invalid { revision, diagnostics }),
    }
}

/// The git HEAD commit of the checkout holding the first path, or else `sha256:<hash>` of the
/// YAML files' names and contents.
pub fn revision(paths: &[PathBuf]) -> String {
    if let Some(commit) = paths.first().and_then(|p| git_head(p)) {
        return commit;
    }
    content_hash(paths)
}

/// Reads HEAD without running git: `.git` may be a directory, or a file pointing to one
/// (worktrees, as git-sync makes them). Looks upwards from `path`.
fn git_head(path: &Path) -> Option<String> {
    let start = std::fs::canonicalize(path).ok()?;
    let mut dir = if start.is_dir() { start } else { start.parent()?.to_path_buf() };
    let gitdir = loop {
        let dot = dir.join(".git");
        if dot.is_dir() {
            break dot;
        }
        if dot.is_file() {
            let text = std::fs::read_to_string(&dot).ok()?;
            let target = text.trim().strip_prefix("gitdir:")?.trim().to_string();
            break dir.join(target);
        }
        dir = dir.parent()?.to_path_buf();
    };
    let head = std::fs::read_to_string(gitdir.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(reference) = head.strip_prefix("ref:") else {
        return is_sha(head).then(|| head.to_string());
    };
    let reference = reference.trim();
    // Refs of a worktree live in the common git directory.
    let common = std::fs::read_to_string(gitdir.join("commondir"))
        .ok()
        .map(|c| gitdir.join(c.trim()))
        .unwrap_or_else(|| gitdir.clone());
    for base in [&gitdir, &common] {
        if let Ok(s) = std::fs::read_to_string(base.join(reference)) {
            let s = s.trim();
            if is_sha(s) {
                return Some(s.to_string());
            }
        }
        if let Ok(packed) = std::fs::read_to_string(base.join("packed-refs")) {
            for line in packed.lines() {
                if let Some((sha, name)) = line.split_once(' ')
                    && name == reference
                    && is_sha(sha)
                {
                    return Some(sha.to_string());
                }
            }
        }
    }
    None
}

fn is_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Over file names relative to the given paths (not absolute ones): replicas that mount the
/// same content at different places agree on the revision.
fn content_hash(paths: &[PathBuf]) -> String {
    let mut files: Vec<(usize, PathBuf, PathBuf)> = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        let mut found = Vec::new();
        collect(p, &mut found, 0);
        for f in found {
            let rel = f.strip_prefix(p).map(Path::to_path_buf).unwrap_or_else(|_| f.clone());
            files.push((i, rel, f));
        }
    }
    files.sort();
    files.dedup();
    let mut h = Sha256::new();
    for (i, rel, f) in &files {
        h.update(i.to_le_bytes());
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(std::fs::read(f).unwrap_or_default());
        h.update([0]);
    }
    let hex: String = h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn collect(p: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    if depth > crosslink_spec::MAX_DEPTH {
        return;
    }
    if p.is_dir() {
        let Ok(rd) = std::fs::read_dir(p) else { return };
        for e in rd.flatten() {
            let path = e.path();
            if !path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')) {
                collect(&path, out, depth + 1);
            }
        }
    } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
        out.push(p.to_path_buf());
    }
}

/// Watches the paths (recursively) and sends one message per burst of changes.
pub struct Watch {
    _debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
    pub changes: mpsc::Receiver<()>,
}

pub fn watch(paths: &[PathBuf], debounce: Duration) -> Result<Watch, String> {
    let (tx, rx) = mpsc::channel(1);
    let mut debouncer = new_debouncer(debounce, None, move |r: DebounceEventResult| {
        if r.is_ok() {
            // A full channel already carries a pending reload.
            let _ = tx.try_send(());
        }
    })
    .map_err(|e| e.to_string())?;
    for p in paths {
        // Watch the parent too: git-sync replaces a symlink, which a watch on the link misses.
        let target = p.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(p);
        debouncer
            .watch(target, RecursiveMode::Recursive)
            .map_err(|e| format!("cannot watch {}: {e}", target.display()))?;
    }
    Ok(Watch { _debouncer: debouncer, changes: rx })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_is_the_git_head_or_a_content_hash() {
        let dir = std::env::temp_dir().join(format!("crosslink-rev-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("state")).unwrap();
        std::fs::write(dir.join("state/a.yaml"), "x: 1\n").unwrap();
        let paths = vec![dir.join("state")];
        let h1 = revision(&paths);
        assert!(h1.starts_with("sha256:"), "{h1}");
        std::fs::write(dir.join("state/a.yaml"), "x: 2\n").unwrap();
        assert_ne!(revision(&paths), h1, "content changes change the hash");
        // The same content elsewhere (another replica's mount) has the same revision.
        std::fs::create_dir_all(dir.join("elsewhere")).unwrap();
        std::fs::write(dir.join("elsewhere/a.yaml"), "x: 2\n").unwrap();
        assert_eq!(revision(&[dir.join("elsewhere")]), revision(&paths));
        std::fs::rename(dir.join("elsewhere/a.yaml"), dir.join("elsewhere/b.yaml")).unwrap();
        assert_ne!(revision(&[dir.join("elsewhere")]), revision(&paths), "file names count");

        // A checkout: HEAD -> refs/heads/main, and a packed ref.
        let sha = "0123456789abcdef0123456789abcdef01234567";
        std::fs::create_dir_all(dir.join(".git/refs/heads")).unwrap();
        std::fs::write(dir.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
        std::fs::write(dir.join(".git/refs/heads/main"), format!("{sha}\n")).unwrap();
        assert_eq!(revision(&paths), sha);
        std::fs::remove_file(dir.join(".git/refs/heads/main")).unwrap();
        std::fs::write(dir.join(".git/packed-refs"), format!("# pack-refs\n{sha} refs/heads/main\n")).unwrap();
        assert_eq!(revision(&paths), sha);
        // A detached worktree as git-sync makes it: `.git` is a file.
        std::fs::remove_dir_all(dir.join(".git")).unwrap();
        std::fs::create_dir_all(dir.join("gitdir")).unwrap();
        std::fs::write(dir.join("gitdir/HEAD"), format!("{sha}\n")).unwrap();
        std::fs::write(dir.join(".git"), format!("gitdir: {}\n", dir.join("gitdir").display())).unwrap();
        assert_eq!(revision(&paths), sha);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
