//! Where desired state comes from: a directory (usually a git checkout kept fresh by a sync
//! sidecar), its revision (the git HEAD commit, else a content hash), and a debounced watch.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crosslink_desired::{DesiredState, Diagnostics};
use notify_debouncer_full::notify::{Event, EventKind, RecommendedWatcher, RecursiveMode};
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
    let result = crosslink_desired::load(paths);
    if crate::source::revision(paths) != revision {
        return Err(LoadFailure::Unstable);
    }
    match result {
        Ok(state) => Ok(Loaded { state: Arc::new(state), revision }),
        Err(diagnostics) => Err(LoadFailure::Invalid { revision, diagnostics }),
    }
}

/// What a revision says about where the content in force came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevisionKind {
    /// Every desired-state file is tracked and unmodified at the checkout's HEAD commit.
    Commit,
    /// A checkout whose desired-state files differ from HEAD (modified, untracked, ignored or
    /// deleted): `<head>+dirty.<content hash>`.
    Dirty,
    /// Not in a repository: `sha256:<content hash>`.
    Content,
}

/// The revision of the content in force:
/// - the HEAD commit, when every desired-state file is tracked and unmodified at HEAD (a
///   git-sync checkout);
/// - `<head>+dirty.<hash>` inside a checkout whose desired-state files are not exactly HEAD's
///   (an edit, a rendered or ignored folder, a deleted file): it changes with the content;
/// - `sha256:<hash>` outside a repository.
///
/// The hash is over file names relative to the given paths and their contents, so replicas
/// that mount the same content at different places agree. No `git` process is run: HEAD, its
/// tree and the blob ids are read in-process, and each file's blob id is computed from the bytes.
pub fn revision(paths: &[PathBuf]) -> String {
    revision_of(paths).0
}

pub fn revision_of(paths: &[PathBuf]) -> (String, RevisionKind) {
    let files = files(paths);
    let hash = content_hash(&files);
    match paths.first().and_then(|p| git_state(p, paths, &files)) {
        Some((head, true)) => (head, RevisionKind::Commit),
        Some((head, false)) => (format!("{}+dirty.{hash}", short(&head)), RevisionKind::Dirty),
        None => (format!("sha256:{hash}"), RevisionKind::Content),
    }
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// The checkout holding `first`, if any: its HEAD commit, and whether every desired-state file
/// (and nothing else with a YAML name under the paths) is exactly what HEAD's tree holds.
fn git_state(first: &Path, paths: &[PathBuf], files: &[File]) -> Option<(String, bool)> {
    let start = std::fs::canonicalize(first).ok()?;
    let dir = if start.is_dir() { start } else { start.parent()?.to_path_buf() };
    let repo = gix::discover(&dir).ok()?;
    let workdir = std::fs::canonicalize(repo.workdir()?).ok()?;
    // A repository without commits: nothing is tracked at HEAD.
    let Ok(commit) = repo.head_commit() else {
        return Some(("0000000".to_string(), false));
    };
    let head = commit.id().to_string();
    let clean = (|| {
        let tree = commit.tree().ok()?;
        let kind = repo.object_hash();
        // Every file read is HEAD's blob at its path.
        let mut seen = BTreeSet::new();
        for f in files {
            let rel = std::fs::canonicalize(&f.path).ok()?.strip_prefix(&workdir).ok()?.to_path_buf();
            let entry = tree.lookup_entry_by_path(&rel).ok()??;
            if !entry.mode().is_blob() {
                return Some(false);
            }
            let id = gix::objs::compute_hash(kind, gix::objs::Kind::Blob, &f.content).ok()?;
            if entry.object_id() != id {
                return Some(false);
            }
            seen.insert(rel);
        }
        // And HEAD has no desired-state file that is not on disk (deleted, not committed).
        for p in paths {
            let rel = std::fs::canonicalize(p).ok()?.strip_prefix(&workdir).ok()?.to_path_buf();
            let mut tracked = Vec::new();
            if rel.as_os_str().is_empty() {
                tracked_yaml(&repo, tree.clone(), PathBuf::new(), &mut tracked, 0)?;
            } else {
                match tree.lookup_entry_by_path(&rel).ok()? {
                    Some(e) if e.mode().is_tree() => {
                        let sub = repo.find_tree(e.object_id()).ok()?;
                        tracked_yaml(&repo, sub, rel.clone(), &mut tracked, 0)?;
                    }
                    Some(_) if is_yaml(&rel) => tracked.push(rel.clone()),
                    _ => {}
                }
            }
            if tracked.iter().any(|t| !seen.contains(t)) {
                return Some(false);
            }
        }
        Some(true)
    })()
    .unwrap_or(false);
    Some((head, clean))
}

/// The YAML files HEAD's tree holds under `tree` (hidden names skipped, as the loader does).
fn tracked_yaml(
    repo: &gix::Repository,
    tree: gix::Tree<'_>,
    at: PathBuf,
    out: &mut Vec<PathBuf>,
    depth: usize,
) -> Option<()> {
    if depth > crosslink_desired::MAX_DEPTH {
        return Some(());
    }
    let mut subtrees = Vec::new();
    for e in tree.iter() {
        let e = e.ok()?;
        let name = e.filename().to_string();
        if name.starts_with('.') {
            continue;
        }
        let path = at.join(&name);
        if e.mode().is_tree() {
            subtrees.push((path, e.oid().to_owned()));
        } else if is_yaml(&path) {
            out.push(path);
        }
    }
    for (path, id) in subtrees {
        let sub = repo.find_tree(id).ok()?;
        tracked_yaml(repo, sub, path, out, depth + 1)?;
    }
    Some(())
}

fn is_yaml(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

/// A desired-state file as read for the revision.
struct File {
    /// Which of the given paths it is under, and its name relative to that path.
    index: usize,
    rel: PathBuf,
    path: PathBuf,
    content: Vec<u8>,
}

fn files(paths: &[PathBuf]) -> Vec<File> {
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
    files
        .into_iter()
        .map(|(index, rel, path)| {
            let content = std::fs::read(&path).unwrap_or_default();
            File { index, rel, path, content }
        })
        .collect()
}

/// Over file names relative to the given paths (not absolute ones): replicas that mount the
/// same content at different places agree on the revision.
fn content_hash(files: &[File]) -> String {
    let mut h = Sha256::new();
    for f in files {
        h.update(f.index.to_le_bytes());
        h.update(f.rel.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(&f.content);
        h.update([0]);
    }
    h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn collect(p: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    if depth > crosslink_desired::MAX_DEPTH {
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
    } else if is_yaml(p) {
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
    let wanted: Vec<PathBuf> = paths.iter().map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())).collect();
    let filter = wanted.clone();
    let mut debouncer = new_debouncer(debounce, None, move |r: DebounceEventResult| {
        // Only changes to desired state count: inotify also reports every open and read, the
        // daemon's own reloads included, and the parent's other files (logs written beside it).
        if r.is_ok_and(|events| events.iter().any(|e| touches_desired_state(&e.event, &filter))) {
            // A full channel already carries a pending reload.
            let _ = tx.try_send(());
        }
    })
    .map_err(|e| e.to_string())?;
    for p in &wanted {
        // Watch the parent too: git-sync replaces a symlink, which a watch on the link misses.
        let target = p.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(p);
        debouncer
            .watch(target, RecursiveMode::Recursive)
            .map_err(|e| format!("cannot watch {}: {e}", target.display()))?;
    }
    Ok(Watch { _debouncer: debouncer, changes: rx })
}

/// Whether a file-system event can change what the loader reads: not an access (open, read,
/// close without writing), and on a path that is one of `paths`, above one (a symlink swapped),
/// or a YAML file or a folder below one (hidden names skipped, as the loader skips them).
pub fn touches_desired_state(event: &Event, paths: &[PathBuf]) -> bool {
    if matches!(event.kind, EventKind::Access(_)) {
        return false;
    }
    event.paths.iter().any(|changed| {
        paths.iter().any(|p| {
            if changed == p || p.starts_with(changed) {
                return true;
            }
            let Ok(rel) = changed.strip_prefix(p) else { return false };
            let hidden = rel.components().any(|c| c.as_os_str().to_string_lossy().starts_with('.'));
            !hidden && (is_yaml(changed) || changed.extension().is_none())
        })
    })
}
