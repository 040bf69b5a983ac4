//! The simulated world: users, workspaces and projects, repositories (real bare repositories),
//! permissions, credentials, policies and rate limits. `builder.rs` sets it up.

use super::builder::{stable_num, stable_uuid};
use super::cloud::CloudEndpoint;
use chrono::{DateTime, Utc};
use std::net::IpAddr;
use std::path::PathBuf;

/// Which simulated host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Host {
    Cloud,
    DataCenter,
    GitHub,
}

/// A user's permission on a repository (Cloud `read|write|admin`, Data Center
/// `REPO_READ|WRITE|ADMIN`, GitHub `pull|push|admin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Perm {
    Read,
    Write,
    Admin,
}

impl Perm {
    pub fn as_cloud_str(self) -> &'static str {
        match self {
            Perm::Read => "read",
            Perm::Write => "write",
            Perm::Admin => "admin",
        }
    }
}

/// A person, known to every simulated host under the same names.
#[derive(Debug, Clone)]
pub struct User {
    /// Bitbucket username / Data Center user slug / GitHub login.
    pub username: String,
    /// Atlassian account email: the REST user name for Cloud API tokens.
    pub email: String,
    pub display_name: String,
    /// Atlassian account id, `712020:<uuid>`.
    pub account_id: String,
    /// `{…}` with braces, as Bitbucket Cloud shows it.
    pub uuid: String,
    /// Numeric id (Data Center, GitHub).
    pub id: u64,
    /// Data Center password (Basic auth on REST and Git); `None`: tokens only.
    pub password: Option<String>,
    /// Whether the user has two-step verification on (Cloud workspaces may require it).
    pub two_step: bool,
}

impl User {
    pub fn new(username: &str, email: &str, display_name: &str) -> User {
        let uuid = stable_uuid(&format!("user:{username}"));
        User {
            username: username.to_owned(),
            email: email.to_owned(),
            display_name: display_name.to_owned(),
            account_id: format!("712020:{}", uuid.trim_matches(['{', '}'])),
            uuid,
            id: stable_num(&format!("user:{username}")),
            password: None,
            two_step: true,
        }
    }

    pub fn password(mut self, password: &str) -> User {
        self.password = Some(password.to_owned());
        self
    }

    pub fn two_step(mut self, on: bool) -> User {
        self.two_step = on;
        self
    }
}

/// A Bitbucket Cloud workspace with its projects and policies.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub slug: String,
    pub name: String,
    pub uuid: String,
    /// (key, name); a repository without a project goes into the first one.
    pub projects: Vec<(String, String)>,
    /// `Some`: only these client addresses may reach the workspace's content (the simulator's
    /// clients come from 127.0.0.1, so any list without it blocks them).
    pub ip_allowlist: Option<Vec<IpAddr>>,
    /// Users without two-step verification are refused.
    pub require_two_step: bool,
}

impl Workspace {
    pub fn new(slug: &str, name: &str) -> Workspace {
        Workspace {
            slug: slug.to_owned(),
            name: name.to_owned(),
            uuid: stable_uuid(&format!("workspace:{slug}")),
            projects: Vec::new(),
            ip_allowlist: None,
            require_two_step: false,
        }
    }

    pub fn project(mut self, key: &str, name: &str) -> Workspace {
        self.projects.push((key.to_owned(), name.to_owned()));
        self
    }

    /// Turns the IP allowlist on with these addresses (e.g. `["203.0.113.9"]`).
    pub fn ip_allowlist(mut self, allowed: &[&str]) -> Workspace {
        self.ip_allowlist =
            Some(allowed.iter().map(|a| a.parse().unwrap_or_else(|e| panic!("IP address {a:?}: {e}"))).collect());
        self
    }

    pub fn require_two_step(mut self) -> Workspace {
        self.require_two_step = true;
        self
    }
}

/// A Bitbucket Data Center project.
#[derive(Debug, Clone)]
pub struct DcProject {
    pub key: String,
    pub name: String,
    pub id: u64,
    /// Public projects are readable without credentials.
    pub public: bool,
}

impl DcProject {
    pub fn new(key: &str, name: &str) -> DcProject {
        DcProject {
            key: key.to_owned(),
            name: name.to_owned(),
            id: stable_num(&format!("project:{key}")) % 1000,
            public: false,
        }
    }

    pub fn public(mut self) -> DcProject {
        self.public = true;
        self
    }
}

/// A webhook on a repository (each host shows it in its own shape).
#[derive(Debug, Clone)]
pub struct Hook {
    /// Data Center's and GitHub's numeric id (0 for hooks made by the builder).
    pub id: u64,
    /// Bitbucket Cloud's `{uuid}`.
    pub uuid: String,
    /// The signing secret, when one was given; never shown by the API.
    pub secret: Option<String>,
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    pub active: bool,
}

impl Hook {
    pub fn new(url: &str, events: &[&str]) -> Hook {
        Hook {
            id: 0,
            secret: None,
            uuid: stable_uuid(&format!("hook:{url}:{events:?}")),
            url: url.to_owned(),
            description: "Berth".to_owned(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            active: true,
        }
    }
}

/// How a repository is created.
#[derive(Debug, Clone)]
pub struct RepoSpec {
    pub branches: Vec<String>,
    pub default_branch: String,
    pub private: bool,
    /// Cloud: project key in the workspace (default: its first project).
    pub project: Option<String>,
    pub hooks: Vec<Hook>,
}

impl RepoSpec {
    /// A repository with one commit per branch; HEAD names `main` when listed, else the first.
    pub fn new(branches: &[&str]) -> RepoSpec {
        let default = if branches.contains(&"main") { "main" } else { branches.first().copied().unwrap_or("main") };
        RepoSpec {
            branches: branches.iter().map(|b| (*b).to_owned()).collect(),
            default_branch: default.to_owned(),
            private: true,
            project: None,
            hooks: Vec::new(),
        }
    }

    /// No commits; HEAD names `main` (unborn).
    pub fn empty() -> RepoSpec {
        RepoSpec::new(&[])
    }

    pub fn default_branch(mut self, name: &str) -> RepoSpec {
        self.default_branch = name.to_owned();
        self
    }

    pub fn public(mut self) -> RepoSpec {
        self.private = false;
        self
    }

    pub fn project(mut self, key: &str) -> RepoSpec {
        self.project = Some(key.to_owned());
        self
    }

    pub fn hook(mut self, hook: Hook) -> RepoSpec {
        self.hooks.push(hook);
        self
    }
}

/// A repository on one host, backed by a real bare repository at `path`.
#[derive(Debug, Clone)]
pub struct Repo {
    pub host: Host,
    /// Workspace slug / project key / GitHub owner.
    pub owner: String,
    pub slug: String,
    pub name: String,
    pub private: bool,
    /// Cloud project key (Data Center: the project key again).
    pub project: String,
    pub path: PathBuf,
    pub id: u64,
    pub uuid: String,
    pub hooks: Vec<Hook>,
}

impl Repo {
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.slug)
    }
}

/// `user` has `perm` on `target`: `owner/slug` for one repository, or `owner` (a workspace or
/// Data Center project) for all of its repositories.
#[derive(Debug, Clone)]
pub struct Grant {
    pub host: Host,
    pub user: String,
    pub target: String,
    pub perm: Perm,
}

/// What a Bitbucket Cloud access token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessScope {
    Repository { workspace: String, slug: String },
    Project { workspace: String, key: String },
    Workspace { workspace: String },
}

/// The kinds of credential the hosts know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredKind {
    /// Cloud API token (Atlassian account). `classic`: created without scopes (refused).
    ApiToken { user: String, classic: bool },
    /// Cloud repository / project / workspace access token.
    AccessToken(AccessScope),
    /// Cloud app password (retired: never works).
    AppPassword { user: String },
    /// Data Center personal HTTP access token.
    DcPersonal { user: String },
    /// Data Center project HTTP access token.
    DcProject { key: String },
    /// Data Center repository HTTP access token.
    DcRepository { key: String, slug: String },
    /// GitHub classic personal access token (`scopes` are OAuth scopes such as `repo`).
    GitHubClassic { user: String },
    /// GitHub fine-grained token; `repos` (`owner/name`) empty means all of the user's.
    GitHubFineGrained { user: String, repos: Vec<String> },
}

/// How a host answers a refused credential with 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RejectStyle {
    /// The standard JSON error body.
    #[default]
    Json,
    /// `text/plain` `Login failed due to incorrect login credentials or method.`
    Text,
    /// Either, decided by the SHA-256 of the `Authorization` header (deterministic "sometimes").
    ByCredential,
}

/// A credential. The secret is kept in memory only; it is never recorded.
#[derive(Debug, Clone)]
pub struct Cred {
    /// A name for listings (e.g. the demo output).
    pub label: String,
    pub secret: String,
    pub kind: CredKind,
    /// Cloud API tokens: `read:repository:bitbucket`, …; Cloud access tokens: OAuth scopes
    /// (`repository`, `repository:write`, `webhook`, …); Data Center: `PROJECT_READ`,
    /// `REPO_READ`, …; GitHub classic: `repo`, `read:org`, ….
    pub scopes: Vec<String>,
    pub expires: Option<DateTime<Utc>>,
    pub revoked: bool,
    /// Cloud: how this token's 401 looks (default: [`CloudOptions::unauthorized_style`]).
    pub reject_style: Option<RejectStyle>,
    /// Cloud app passwords on Git: 401 or 410.
    pub git_status: u16,
}

impl Cred {
    fn new(kind: CredKind, secret: &str, scopes: &[&str]) -> Cred {
        Cred {
            label: String::new(),
            secret: secret.to_owned(),
            kind,
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            expires: None,
            revoked: false,
            reject_style: None,
            git_status: 401,
        }
    }

    /// Cloud API token of `user` with these scopes (`read:repository:bitbucket`, …).
    pub fn api_token(user: &str, secret: &str, scopes: &[&str]) -> Cred {
        Cred::new(CredKind::ApiToken { user: user.to_owned(), classic: false }, secret, scopes)
    }

    /// Cloud API token created without scopes: refused with 401 everywhere.
    pub fn classic_api_token(user: &str, secret: &str) -> Cred {
        Cred::new(CredKind::ApiToken { user: user.to_owned(), classic: true }, secret, &[])
    }

    /// Cloud repository access token for `workspace/slug` (OAuth scopes: `repository`, …).
    pub fn repo_access_token(full_name: &str, secret: &str, scopes: &[&str]) -> Cred {
        let (ws, slug) = full_name.split_once('/').unwrap_or((full_name, ""));
        let scope = AccessScope::Repository { workspace: ws.to_owned(), slug: slug.to_owned() };
        Cred::new(CredKind::AccessToken(scope), secret, scopes)
    }

    pub fn project_access_token(workspace: &str, key: &str, secret: &str, scopes: &[&str]) -> Cred {
        let scope = AccessScope::Project { workspace: workspace.to_owned(), key: key.to_owned() };
        Cred::new(CredKind::AccessToken(scope), secret, scopes)
    }

    pub fn workspace_access_token(workspace: &str, secret: &str, scopes: &[&str]) -> Cred {
        Cred::new(CredKind::AccessToken(AccessScope::Workspace { workspace: workspace.to_owned() }), secret, scopes)
    }

    pub fn app_password(user: &str, secret: &str) -> Cred {
        Cred::new(CredKind::AppPassword { user: user.to_owned() }, secret, &[])
    }

    /// Data Center personal token; `perms` like `["PROJECT_READ", "REPO_READ"]`.
    pub fn dc_personal_token(user: &str, secret: &str, perms: &[&str]) -> Cred {
        Cred::new(CredKind::DcPersonal { user: user.to_owned() }, secret, perms)
    }

    pub fn dc_project_token(key: &str, secret: &str, perms: &[&str]) -> Cred {
        Cred::new(CredKind::DcProject { key: key.to_owned() }, secret, perms)
    }

    /// Data Center repository token for `PROJECT/slug`.
    pub fn dc_repo_token(full_name: &str, secret: &str, perms: &[&str]) -> Cred {
        let (key, slug) = full_name.split_once('/').unwrap_or((full_name, ""));
        Cred::new(CredKind::DcRepository { key: key.to_owned(), slug: slug.to_owned() }, secret, perms)
    }

    pub fn github_classic(user: &str, secret: &str, scopes: &[&str]) -> Cred {
        Cred::new(CredKind::GitHubClassic { user: user.to_owned() }, secret, scopes)
    }

    pub fn github_fine_grained(user: &str, secret: &str, repos: &[&str]) -> Cred {
        let repos = repos.iter().map(|r| (*r).to_owned()).collect();
        Cred::new(CredKind::GitHubFineGrained { user: user.to_owned(), repos }, secret, &[])
    }

    pub fn label(mut self, label: &str) -> Cred {
        self.label = label.to_owned();
        self
    }

    pub fn expires_at(mut self, t: DateTime<Utc>) -> Cred {
        self.expires = Some(t);
        self
    }

    /// `2026-12-01` (midnight UTC) or an RFC 3339 time.
    pub fn expires(self, when: &str) -> Cred {
        self.expires_at(super::parse_time(when))
    }

    pub fn revoked(mut self) -> Cred {
        self.revoked = true;
        self
    }

    pub fn reject_style(mut self, style: RejectStyle) -> Cred {
        self.reject_style = Some(style);
        self
    }

    /// App passwords on Git: 401 (default) or 410.
    pub fn git_status(mut self, status: u16) -> Cred {
        self.git_status = status;
        self
    }

    pub fn host(&self) -> Host {
        match self.kind {
            CredKind::ApiToken { .. } | CredKind::AccessToken(_) | CredKind::AppPassword { .. } => Host::Cloud,
            CredKind::DcPersonal { .. } | CredKind::DcProject { .. } | CredKind::DcRepository { .. } => {
                Host::DataCenter
            }
            CredKind::GitHubClassic { .. } | CredKind::GitHubFineGrained { .. } => Host::GitHub,
        }
    }

    /// Neither revoked nor expired at `now`.
    pub fn live(&self, now: DateTime<Utc>) -> bool {
        !self.revoked && self.expires.is_none_or(|e| now < e)
    }
}

/// A request budget per credential per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub budget: u32,
    pub window_secs: i64,
    /// Whether 429 answers carry `Retry-After` (unconfirmed for Bitbucket: both must work).
    pub retry_after: bool,
}

impl RateLimit {
    pub fn per_hour(budget: u32) -> RateLimit {
        RateLimit { budget, window_secs: 3600, retry_after: false }
    }

    pub fn with_retry_after(mut self) -> RateLimit {
        self.retry_after = true;
        self
    }
}

/// Bitbucket Cloud behaviour switches.
#[derive(Debug, Clone)]
pub struct CloudOptions {
    /// How 401 answers look unless a token says otherwise.
    pub unauthorized_style: RejectStyle,
    /// Endpoints that answer a missing scope with 400 instead of 403.
    pub scope_error_400: Vec<CloudEndpoint>,
    /// REST budget per credential (Bitbucket: 1,000 an hour on `/2.0/repositories/*`).
    pub rest_limit: RateLimit,
    /// Git budget per credential (Bitbucket: 60,000 an hour).
    pub git_limit: RateLimit,
}

impl Default for CloudOptions {
    fn default() -> Self {
        CloudOptions {
            unauthorized_style: RejectStyle::Json,
            scope_error_400: Vec::new(),
            rest_limit: RateLimit::per_hour(1000),
            git_limit: RateLimit::per_hour(60_000),
        }
    }
}

/// Everything the hosts know. Change it while running with [`Sim::update`].
#[derive(Debug, Clone)]
pub struct World {
    pub users: Vec<User>,
    pub workspaces: Vec<Workspace>,
    pub dc_projects: Vec<DcProject>,
    pub repos: Vec<Repo>,
    pub grants: Vec<Grant>,
    pub creds: Vec<Cred>,
    pub cloud: CloudOptions,
    /// Data Center context path, `/bitbucket` (empty for none).
    pub dc_context_path: String,
    /// Data Center REST budget per credential (429 with `Retry-After` when `retry_after`).
    pub dc_rest_limit: RateLimit,
    /// GitHub REST budget per credential (5,000 an hour). Over it: 429 with `Retry-After` when
    /// `retry_after`, else 403 with `x-ratelimit-remaining: 0` and `x-ratelimit-reset`.
    pub github_rest_limit: RateLimit,
    /// The most repositories one listing page holds, whatever was asked (a host may answer
    /// fewer than asked; 100 is each host's own cap), so tests page through a few repositories.
    pub list_page_cap: usize,
    /// GitHub Apps (public keys only), their installations and the tokens minted for them.
    pub github_apps: Vec<super::GitHubApp>,
    pub installations: Vec<super::Installation>,
    pub installation_tokens: Vec<super::InstallationToken>,
}

impl World {
    pub fn user(&self, username: &str) -> Option<&User> {
        self.users.iter().find(|u| u.username.eq_ignore_ascii_case(username))
    }

    pub fn workspace(&self, slug: &str) -> Option<&Workspace> {
        self.workspaces.iter().find(|w| w.slug.eq_ignore_ascii_case(slug) || w.uuid == slug)
    }

    pub fn workspace_mut(&mut self, slug: &str) -> Option<&mut Workspace> {
        self.workspaces.iter_mut().find(|w| w.slug.eq_ignore_ascii_case(slug))
    }

    pub fn dc_project(&self, key: &str) -> Option<&DcProject> {
        self.dc_projects.iter().find(|p| p.key.eq_ignore_ascii_case(key))
    }

    /// The repository `owner/slug` on `host` (case-insensitive; Cloud also by `{uuid}`).
    pub fn repo(&self, host: Host, owner: &str, slug: &str) -> Option<&Repo> {
        let ws_slug = match host {
            Host::Cloud => self.workspace(owner).map(|w| w.slug.clone()).unwrap_or_else(|| owner.to_owned()),
            _ => owner.to_owned(),
        };
        self.repos.iter().find(|r| {
            r.host == host
                && r.owner.eq_ignore_ascii_case(&ws_slug)
                && (r.slug.eq_ignore_ascii_case(slug) || r.uuid == slug)
        })
    }

    /// `user`'s permission on `repo` from grants (and ownership on GitHub).
    pub fn perm(&self, user: &str, repo: &Repo) -> Option<Perm> {
        if repo.host == Host::GitHub && repo.owner.eq_ignore_ascii_case(user) {
            return Some(Perm::Admin);
        }
        let full = repo.full_name();
        self.grants
            .iter()
            .filter(|g| g.host == repo.host && g.user.eq_ignore_ascii_case(user))
            .filter(|g| g.target.eq_ignore_ascii_case(&full) || g.target.eq_ignore_ascii_case(&repo.owner))
            .map(|g| g.perm)
            .max()
    }

    /// The credential of `host` whose secret is `secret`, live or not.
    pub fn cred(&self, host: Host, secret: &str) -> Option<&Cred> {
        self.creds.iter().find(|c| c.host() == host && c.secret == secret)
    }

    pub fn cred_mut(&mut self, secret: &str) -> Option<&mut Cred> {
        self.creds.iter_mut().find(|c| c.secret == secret)
    }
}
