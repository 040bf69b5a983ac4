//! [`SimBuilder`]: sets up a [`World`] (creating real bare repositories as it goes) and starts
//! a [`Sim`].

use super::{
    CloudOptions, Cred, DcProject, Grant, Host, Perm, RateLimit, Repo, RepoSpec, Sim, SimClock, SimPorts, User,
    Workspace, World,
};

/// Builds a [`World`] (creating real bare repositories as it goes) and starts a [`Sim`].
pub struct SimBuilder {
    pub(crate) world: World,
    pub(crate) clock: SimClock,
    pub(crate) root: tempfile::TempDir,
}

impl Default for SimBuilder {
    fn default() -> Self {
        SimBuilder::new()
    }
}

impl SimBuilder {
    pub fn new() -> SimBuilder {
        SimBuilder {
            world: World {
                users: Vec::new(),
                workspaces: Vec::new(),
                dc_projects: Vec::new(),
                repos: Vec::new(),
                grants: Vec::new(),
                creds: Vec::new(),
                cloud: CloudOptions::default(),
                dc_context_path: "/bitbucket".to_owned(),
                dc_rest_limit: RateLimit::per_hour(100_000),
                github_rest_limit: RateLimit::per_hour(5000),
                list_page_cap: 100,
                github_apps: Vec::new(),
                installations: Vec::new(),
                installation_tokens: Vec::new(),
            },
            clock: SimClock::system(),
            root: tempfile::Builder::new()
                .prefix("berth-sim-")
                .tempdir()
                .expect("temporary directory for the simulator"),
        }
    }

    pub fn clock(mut self, clock: SimClock) -> SimBuilder {
        self.clock = clock;
        self
    }

    pub fn user(mut self, user: User) -> SimBuilder {
        self.world.users.push(user);
        self
    }

    pub fn cloud_workspace(mut self, ws: Workspace) -> SimBuilder {
        self.world.workspaces.retain(|w| w.slug != ws.slug);
        self.world.workspaces.push(ws);
        self
    }

    /// `workspace/slug`; the workspace is created (with project `PROJ`) when missing.
    pub fn cloud_repo(mut self, full_name: &str, spec: RepoSpec) -> SimBuilder {
        let (ws, slug) = split(full_name);
        if self.world.workspace(ws).is_none() {
            self.world.workspaces.push(Workspace::new(ws, ws));
        }
        let wsm = self.world.workspace_mut(ws).expect("workspace just made");
        if wsm.projects.is_empty() {
            wsm.projects.push(("PROJ".to_owned(), "Project".to_owned()));
        }
        let project = spec.project.clone().unwrap_or_else(|| wsm.projects[0].0.clone());
        if !wsm.projects.iter().any(|(k, _)| *k == project) {
            wsm.projects.push((project.clone(), project.clone()));
        }
        self.add_repo(Host::Cloud, ws, slug, project, spec)
    }

    pub fn dc_project(mut self, project: DcProject) -> SimBuilder {
        self.world.dc_projects.retain(|p| p.key != project.key);
        self.world.dc_projects.push(project);
        self
    }

    /// `PROJECT/slug`; the project is created when missing.
    pub fn dc_repo(mut self, full_name: &str, spec: RepoSpec) -> SimBuilder {
        let (key, slug) = split(full_name);
        if self.world.dc_project(key).is_none() {
            self.world.dc_projects.push(DcProject::new(key, key));
        }
        self.add_repo(Host::DataCenter, key, slug, key.to_owned(), spec)
    }

    /// `owner/repo`.
    pub fn github_repo(self, full_name: &str, spec: RepoSpec) -> SimBuilder {
        let (owner, slug) = split(full_name);
        self.add_repo(Host::GitHub, owner, slug, String::new(), spec)
    }

    pub fn grant(mut self, host: Host, user: &str, target: &str, perm: Perm) -> SimBuilder {
        self.world.grants.push(Grant { host, user: user.to_owned(), target: target.to_owned(), perm });
        self
    }

    /// A GitHub App (GitHub keeps its public key only).
    pub fn github_app(mut self, app: super::GitHubApp) -> SimBuilder {
        self.world.github_apps.push(app);
        self
    }

    /// An installation of a GitHub App on an account.
    pub fn installation(mut self, installation: super::Installation) -> SimBuilder {
        self.world.installations.push(installation);
        self
    }

    pub fn credential(mut self, cred: Cred) -> SimBuilder {
        self.world.creds.push(cred);
        self
    }

    pub fn cloud_options(mut self, options: CloudOptions) -> SimBuilder {
        self.world.cloud = options;
        self
    }

    /// `/bitbucket` by default; `""` for none.
    pub fn dc_context_path(mut self, path: &str) -> SimBuilder {
        self.world.dc_context_path =
            if path.is_empty() { String::new() } else { format!("/{}", path.trim_matches('/')) };
        self
    }

    /// Changes the world directly.
    pub fn with_world(mut self, f: impl FnOnce(&mut World)) -> SimBuilder {
        f(&mut self.world);
        self
    }

    pub async fn start(self) -> Sim {
        Sim::start(self, SimPorts::default()).await
    }

    pub async fn start_on(self, ports: SimPorts) -> Sim {
        Sim::start(self, ports).await
    }

    fn add_repo(mut self, host: Host, owner: &str, slug: &str, project: String, spec: RepoSpec) -> SimBuilder {
        let dir = match host {
            Host::Cloud => "cloud",
            Host::DataCenter => "dc",
            Host::GitHub => "github",
        };
        let rel = format!("{dir}/{owner}/{slug}.git");
        let branches: Vec<&str> = spec.branches.iter().map(String::as_str).collect();
        let path = crate::bare_repo(self.root.path(), &rel, &spec.default_branch, &branches);
        let seed = format!("{dir}:{owner}/{slug}");
        self.world.repos.retain(|r| !(r.host == host && r.owner == owner && r.slug == slug));
        self.world.repos.push(Repo {
            host,
            owner: owner.to_owned(),
            slug: slug.to_owned(),
            name: slug.to_owned(),
            private: spec.private,
            project,
            path,
            id: stable_num(&seed) % 100_000,
            uuid: stable_uuid(&seed),
            hooks: spec.hooks,
        });
        self
    }
}

fn split(full_name: &str) -> (&str, &str) {
    full_name.split_once('/').unwrap_or_else(|| panic!("expected owner/name, got {full_name:?}"))
}

/// A UUID-shaped `{…}` string derived from `seed`, stable across runs.
pub(crate) fn stable_uuid(seed: &str) -> String {
    let h = crate::sha256_hex(seed.as_bytes());
    format!("{{{}-{}-4{}-8{}-{}}}", &h[0..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
}

/// A positive number derived from `seed`, stable across runs.
pub(crate) fn stable_num(seed: &str) -> u64 {
    let h = crate::sha256_hex(seed.as_bytes());
    u64::from_str_radix(&h[..8], 16).unwrap_or(1) % 10_000_000 + 1
}
