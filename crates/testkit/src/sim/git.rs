//! Git over HTTP for the simulated hosts (the real `git http-backend` once the host's own
//! checks passed) and reading branches from the bare repositories for the REST answers.

use super::Ctx;
use axum::extract::Request;
use axum::response::Response;
use std::path::{Path, PathBuf};

/// What a Git request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    /// Fetch, clone, ls-remote (and dumb-protocol paths).
    Read,
    /// Push.
    Write,
}

/// A Git request path split after the host's prefix: `owner/repo(.git)/rest`.
pub(crate) struct GitPath {
    pub owner: String,
    pub repo: String,
    pub rest: String,
    pub service: Service,
}

/// Splits `owner/repo.git/info/refs` (the `.git` is optional, as on Bitbucket and GitHub).
/// `None` when the path does not look like a Git request.
pub(crate) fn split(path: &str, query: &str) -> Option<GitPath> {
    let mut parts = path.trim_start_matches('/').splitn(3, '/');
    let owner = parts.next().filter(|s| !s.is_empty())?;
    let repo = parts.next().filter(|s| !s.is_empty())?;
    let rest = parts.next().unwrap_or("");
    let is_git = rest == "info/refs"
        || rest == "git-upload-pack"
        || rest == "git-receive-pack"
        || rest == "HEAD"
        || rest.starts_with("objects/")
        || rest.starts_with("info/");
    if !is_git {
        return None;
    }
    let write = rest == "git-receive-pack" || (rest == "info/refs" && query.contains("service=git-receive-pack"));
    Some(GitPath {
        owner: super::pct_decode(owner),
        repo: super::pct_decode(repo.strip_suffix(".git").unwrap_or(repo)),
        rest: rest.to_owned(),
        service: if write { Service::Write } else { Service::Read },
    })
}

/// Hands the request to `git http-backend` for the bare repository at `repo`.
pub(crate) async fn backend(ctx: &Ctx, repo: &Path, req: Request, rest: &str, user: Option<&str>) -> Response {
    let root = repo.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
    let name = repo.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let query = req.uri().query().unwrap_or("").to_owned();
    crate::server::http_backend(&ctx.backend, &root, req, &format!("/{name}/{rest}"), &query, user, true).await
}

/// One branch of a bare repository.
#[derive(Debug, Clone)]
pub(crate) struct BranchRef {
    pub name: String,
    pub oid: String,
    /// Committer date, RFC 3339.
    pub date: String,
    pub subject: String,
    /// `Name <email>`.
    pub author: String,
    pub parents: Vec<String>,
}

/// The branches, sorted by name.
pub(crate) async fn branches(repo: &Path) -> Vec<BranchRef> {
    let repo = repo.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let out = crate::git_command()
            .arg("--git-dir")
            .arg(&repo)
            .args(["for-each-ref", "--format=%(objectname)%09%(committerdate:iso-strict)%09%(refname)%09%(authorname) %(authoremail)%09%(parent)%09%(contents:subject)", "refs/heads/"])
            .output();
        let Ok(out) = out else { return Vec::new() };
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut f = l.splitn(6, '\t');
                let (oid, date, name) = (f.next()?, f.next()?, f.next()?.strip_prefix("refs/heads/")?);
                let (author, parents) = (f.next().unwrap_or(""), f.next().unwrap_or(""));
                Some(BranchRef {
                    name: name.to_owned(),
                    oid: oid.to_owned(),
                    date: date.to_owned(),
                    author: author.to_owned(),
                    parents: parents.split_whitespace().map(str::to_owned).collect(),
                    subject: f.next().unwrap_or("").to_owned(),
                })
            })
            .collect()
    })
    .await
    .unwrap_or_default()
}

/// The branch HEAD names (whether or not it exists yet).
pub(crate) fn head(repo: &Path) -> Option<String> {
    let head = std::fs::read_to_string(repo.join("HEAD")).ok()?;
    head.trim().strip_prefix("ref: refs/heads/").map(str::to_owned)
}

/// The branch HEAD names, when it exists (loose or packed): `None` for an empty repository or a
/// dangling HEAD. Synchronous, for listings that show many repositories at once.
pub(crate) fn existing_head(repo: &Path) -> Option<String> {
    let head = head(repo)?;
    let loose = repo.join("refs/heads").join(&head).is_file();
    let packed = std::fs::read_to_string(repo.join("packed-refs"))
        .is_ok_and(|p| p.lines().any(|l| l.split_once(' ').is_some_and(|(_, r)| r == format!("refs/heads/{head}"))));
    (loose || packed).then_some(head)
}
