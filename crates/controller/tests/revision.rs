//! The desired-state revision names the content in force, wherever the folder sits: a clean
//! checkout, a modified, untracked or ignored file, no repository at all, git-sync's worktree
//! layout, and replicas holding the same content. Each case is a real repository made with `git`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crosslink_controller::source::{RevisionKind, revision_of};

/// A scratch directory under the system's temp dir (outside any repository), made anew.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("crosslink-revision-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"])
        .args(["-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn write(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A repository with `state/a.yaml` and `state/sub/b.yml` committed; returns (repo, HEAD).
fn repo(name: &str) -> (PathBuf, String) {
    let d = scratch(name);
    git(&d, &["init", "-q"]);
    write(&d.join("state/a.yaml"), "a: 1\n");
    write(&d.join("state/sub/b.yml"), "b: 1\n");
    write(&d.join("README"), "not desired state\n");
    git(&d, &["add", "."]);
    git(&d, &["commit", "-q", "-m", "one"]);
    let head = git(&d, &["rev-parse", "HEAD"]);
    (d, head)
}

#[test]
fn a_clean_checkout_is_its_head_commit() {
    let (d, head) = repo("clean");
    assert_eq!(revision_of(&[d.join("state")]), (head.clone(), RevisionKind::Commit));
    // The repository root as the path, and a single file, too.
    assert_eq!(revision_of(std::slice::from_ref(&d)).0, head);
    assert_eq!(revision_of(&[d.join("state/a.yaml")]).0, head);
    // A file elsewhere in the repository changing does not touch the desired state's revision.
    write(&d.join("README"), "edited\n");
    assert_eq!(revision_of(&[d.join("state")]).0, head);
}

#[test]
fn a_modified_tracked_file_is_dirty_and_follows_the_content() {
    let (d, head) = repo("modified");
    let state = [d.join("state")];
    write(&d.join("state/a.yaml"), "a: 2\n");
    let (r1, kind) = revision_of(&state);
    assert_eq!(kind, RevisionKind::Dirty);
    assert!(r1.starts_with(&format!("{}+dirty.", &head[..12])), "{r1}");
    write(&d.join("state/a.yaml"), "a: 3\n");
    let r2 = revision_of(&state).0;
    assert_ne!(r1, r2, "each edit is a new revision");
    // Staged but not committed is still not HEAD.
    git(&d, &["add", "state/a.yaml"]);
    assert_eq!(revision_of(&state).0, r2);
    // Back to HEAD's content: HEAD again.
    write(&d.join("state/a.yaml"), "a: 1\n");
    assert_eq!(revision_of(&state), (head.clone(), RevisionKind::Commit));
    // Committed: the new HEAD.
    write(&d.join("state/a.yaml"), "a: 4\n");
    git(&d, &["commit", "-q", "-am", "two"]);
    let head2 = git(&d, &["rev-parse", "HEAD"]);
    assert_eq!(revision_of(&state), (head2, RevisionKind::Commit));
    // A deleted tracked file is a change too.
    std::fs::remove_file(d.join("state/sub/b.yml")).unwrap();
    assert_eq!(revision_of(&state).1, RevisionKind::Dirty);
}

#[test]
fn an_untracked_file_is_dirty() {
    let (d, _) = repo("untracked");
    write(&d.join("state/new.yaml"), "c: 1\n");
    let (r, kind) = revision_of(&[d.join("state")]);
    assert_eq!(kind, RevisionKind::Dirty, "{r}");
    write(&d.join("state/new.yaml"), "c: 2\n");
    assert_ne!(revision_of(&[d.join("state")]).0, r);
}

#[test]
fn an_ignored_folder_inside_a_repository_follows_its_content() {
    // A rendered folder (a build step, the tests' own target/ dir) that git ignores.
    let (d, head) = repo("ignored");
    write(&d.join(".gitignore"), "rendered/\n");
    git(&d, &["add", ".gitignore"]);
    git(&d, &["commit", "-q", "-m", "ignore"]);
    let rendered = [d.join("rendered/state")];
    write(&d.join("rendered/state/a.yaml"), "a: 1\n");
    let (r1, kind) = revision_of(&rendered);
    assert_eq!(kind, RevisionKind::Dirty);
    assert!(!r1.starts_with(&head), "not the enclosing repository's HEAD: {r1}");
    write(&d.join("rendered/state/a.yaml"), "a: 2\n");
    let r2 = revision_of(&rendered).0;
    assert_ne!(r1, r2, "the revision changes with the content, without a commit");
}

#[test]
fn outside_a_repository_it_is_a_content_hash() {
    let d = scratch("plain");
    write(&d.join("state/a.yaml"), "x: 1\n");
    let paths = [d.join("state")];
    let (h1, kind) = revision_of(&paths);
    assert_eq!(kind, RevisionKind::Content);
    assert!(h1.starts_with("sha256:"), "{h1}");
    write(&d.join("state/a.yaml"), "x: 2\n");
    assert_ne!(revision_of(&paths).0, h1, "content changes change the hash");
    // File names count.
    std::fs::rename(d.join("state/a.yaml"), d.join("state/b.yaml")).unwrap();
    let h3 = revision_of(&paths).0;
    write(&d.join("elsewhere/a.yaml"), "x: 2\n");
    assert_ne!(revision_of(&[d.join("elsewhere")]).0, h3);
}

#[test]
fn git_syncs_worktree_layout_is_its_commit() {
    // git-sync: a repository, a detached worktree per commit, and a symlink swapped to the new one.
    let (origin, head) = repo("gitsync-origin");
    let root = scratch("gitsync-root");
    git(&root, &["clone", "-q", "--bare", origin.to_str().unwrap(), ".git"]);
    let wt = root.join(".worktrees").join(&head);
    git(&root, &["--git-dir=.git", "worktree", "add", "-q", "--detach", wt.to_str().unwrap(), &head]);
    std::os::unix::fs::symlink(&wt, root.join("current")).unwrap();
    let paths = [root.join("current/state")];
    assert_eq!(revision_of(&paths), (head.clone(), RevisionKind::Commit));
    // A file edited inside the worktree (nobody should, but then the revision says so).
    write(&wt.join("state/a.yaml"), "a: 9\n");
    assert_eq!(revision_of(&paths).1, RevisionKind::Dirty);
}

#[test]
fn replicas_holding_the_same_content_agree() {
    // Two clones of one commit at different places: the commit.
    let (origin, head) = repo("replicas-origin");
    let a = scratch("replica-a");
    let b = scratch("replica-b");
    git(&a, &["clone", "-q", origin.to_str().unwrap(), "x"]);
    git(&b, &["clone", "-q", origin.to_str().unwrap(), "elsewhere"]);
    let ra = revision_of(&[a.join("x/state")]);
    let rb = revision_of(&[b.join("elsewhere/state")]);
    assert_eq!(ra, (head.clone(), RevisionKind::Commit));
    assert_eq!(ra, rb);
    // The same uncommitted edit in both: the same dirty revision.
    write(&a.join("x/state/a.yaml"), "a: 5\n");
    write(&b.join("elsewhere/state/a.yaml"), "a: 5\n");
    let (ra, rb) = (revision_of(&[a.join("x/state")]), revision_of(&[b.join("elsewhere/state")]));
    assert_eq!(ra.1, RevisionKind::Dirty);
    assert_eq!(ra, rb);
    // Plain folders with the same content (mounted from a ConfigMap, say): the same hash.
    let c = scratch("replica-c");
    let d = scratch("replica-d");
    write(&c.join("m/a.yaml"), "a: 1\n");
    write(&d.join("n/a.yaml"), "a: 1\n");
    assert_eq!(revision_of(&[c.join("m")]), revision_of(&[d.join("n")]));
}
