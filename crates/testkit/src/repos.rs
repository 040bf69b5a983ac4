//! Bare repositories built with the real `git` binary, independent of the machine's git
//! configuration: no system config, a private empty HOME, fixed identities and dates. No shell
//! is involved and nothing secret is ever put on a command line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// A private, empty HOME for every git process of this test binary.
pub(crate) fn git_home() -> &'static Path {
    static HOME: OnceLock<tempfile::TempDir> = OnceLock::new();
    HOME.get_or_init(|| tempfile::Builder::new().prefix("berth-testkit-home-").tempdir().expect("temporary HOME for git"))
        .path()
}

/// Environment that makes git ignore the machine's configuration.
pub(crate) fn isolate(cmd: &mut Command) -> &mut Command {
    for var in ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_CONFIG", "GIT_CONFIG_PARAMETERS"] {
        cmd.env_remove(var);
    }
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("HOME", git_home())
        .env("XDG_CONFIG_HOME", git_home())
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Berth Test")
        .env("GIT_AUTHOR_EMAIL", "test@berth.invalid")
        .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
        .env("GIT_COMMITTER_NAME", "Berth Test")
        .env("GIT_COMMITTER_EMAIL", "test@berth.invalid")
        .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z")
}

/// `git` with the isolated environment, for tests that need more than the builders below.
pub fn git_command() -> Command {
    let mut cmd = Command::new("git");
    isolate(&mut cmd);
    cmd
}

fn run(mut cmd: Command, stdin: &[u8]) -> String {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (is git installed?)"));
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin).expect("write to git's stdin");
    }
    let out = child.wait_with_output().expect("wait for git");
    if !out.status.success() {
        panic!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn git_in(repo: &Path, args: &[&str]) -> Command {
    let mut cmd = git_command();
    cmd.arg("--git-dir").arg(repo).args(args);
    cmd
}

fn init_bare(root: &Path, rel: &str, default_branch: &str) -> PathBuf {
    let path = root.join(rel);
    std::fs::create_dir_all(&path).expect("create repository directory");
    let mut cmd = git_command();
    cmd.arg("-c").arg(format!("init.defaultBranch={default_branch}")).args(["init", "--bare", "-q"]).arg(&path);
    run(cmd, b"");
    // Explicit as well, so the default does not depend on how this git version treats the option.
    run(git_in(&path, &["symbolic-ref", "HEAD", &format!("refs/heads/{default_branch}")]), b"");
    path
}

/// A commit on the empty tree; `message` makes it distinct.
fn commit(repo: &Path, message: &str) -> String {
    let tree = run(git_in(repo, &["mktree"]), b"");
    run(git_in(repo, &["commit-tree", &tree, "-m", message]), b"")
}

/// A bare repository at `root/rel` whose HEAD names `default_branch`, with one distinct commit
/// per branch in `branches` (the default branch is created only if it is listed).
pub fn bare_repo(root: &Path, rel: &str, default_branch: &str, branches: &[&str]) -> PathBuf {
    let path = init_bare(root, rel, default_branch);
    let mut updates = String::new();
    for b in branches {
        let oid = commit(&path, &format!("branch {b}"));
        updates.push_str(&format!("create refs/heads/{b} {oid}\n"));
    }
    run(git_in(&path, &["update-ref", "--stdin"]), updates.as_bytes());
    path
}

/// A bare repository with no commits whose HEAD names `default_branch` (it is "unborn").
pub fn empty_repo(root: &Path, rel: &str, default_branch: &str) -> PathBuf {
    init_bare(root, rel, default_branch)
}

/// A bare repository with `branches` branches (`main` plus `branch-000001`, …) and `tags`
/// lightweight tags (`tag-000000`, …), all on one commit, HEAD naming `main`.
///
/// The refs are written straight into `packed-refs` (a documented format: a header, then
/// `<oid> <refname>` lines sorted by name), so 250,000 refs take well under a second; going
/// through `git update-ref` would take minutes.
pub fn many_refs(root: &Path, rel: &str, branches: usize, tags: usize) -> PathBuf {
    let path = init_bare(root, rel, "main");
    let oid = commit(&path, "many refs");
    let mut names: Vec<String> = Vec::with_capacity(branches + tags);
    if branches > 0 {
        names.push("refs/heads/main".to_owned());
    }
    names.extend((1..branches).map(|i| format!("refs/heads/branch-{i:06}")));
    names.extend((0..tags).map(|i| format!("refs/tags/tag-{i:06}")));
    names.sort_unstable();
    let mut packed = String::with_capacity(names.len() * (oid.len() + 30) + 64);
    packed.push_str("# pack-refs with: peeled fully-peeled sorted \n");
    for n in &names {
        packed.push_str(&oid);
        packed.push(' ');
        packed.push_str(n);
        packed.push('\n');
    }
    std::fs::write(path.join("packed-refs"), packed).expect("write packed-refs");
    path
}

/// `git rev-parse <rev>`, `None` when it names nothing.
pub fn try_rev_parse(repo: &Path, rev: &str) -> Option<String> {
    let out = git_in(repo, &["rev-parse", "--verify", "--quiet", rev]).output().ok()?;
    let oid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !oid.is_empty()).then_some(oid)
}

/// Points `branch` at a new commit (creating the branch when it does not exist), as a push
/// would; answers the new commit's id.
pub fn add_commit(repo: &Path, branch: &str, message: &str) -> String {
    // The time makes each commit distinct, so a push always moves the branch.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let oid = commit(repo, &format!("{message} {nanos}"));
    run(git_in(repo, &["update-ref", &format!("refs/heads/{branch}"), &oid]), b"");
    oid
}

/// Deletes `branch`, as a push of its deletion would.
pub fn delete_branch(repo: &Path, branch: &str) {
    run(git_in(repo, &["update-ref", "-d", &format!("refs/heads/{branch}")]), b"");
}

/// `git rev-parse <rev>` in a bare repository.
pub fn rev_parse(repo: &Path, rev: &str) -> String {
    run(git_in(repo, &["rev-parse", "--verify", rev]), b"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_make_the_requested_refs() {
        let root = tempfile::tempdir().expect("tempdir");
        let repo = bare_repo(root.path(), "team/app.git", "trunk", &["trunk", "feature/x"]);
        let trunk = rev_parse(&repo, "refs/heads/trunk");
        let feature = rev_parse(&repo, "refs/heads/feature/x");
        assert_eq!(trunk.len(), 40);
        assert_ne!(trunk, feature);
        assert_eq!(run(git_in(&repo, &["symbolic-ref", "HEAD"]), b""), "refs/heads/trunk");

        let empty = empty_repo(root.path(), "empty.git", "develop");
        assert_eq!(run(git_in(&empty, &["symbolic-ref", "HEAD"]), b""), "refs/heads/develop");

        let many = many_refs(root.path(), "many.git", 30, 70);
        let listed = run(git_in(&many, &["for-each-ref", "--format=%(refname)"]), b"");
        assert_eq!(listed.lines().count(), 100);
        assert_eq!(listed.lines().filter(|l| l.starts_with("refs/heads/")).count(), 30);
        assert_eq!(rev_parse(&many, "HEAD").len(), 40);
    }
}
