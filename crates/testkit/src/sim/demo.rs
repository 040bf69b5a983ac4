//! The demo world `berth-sim` serves, also handy for tests. Every secret here is a fake,
//! published on purpose: printing them is the point of the demo.

use super::{Cred, DcProject, Hook, Host, Perm, RepoSpec, Sim, SimBuilder, SimClock, User, Workspace};
use chrono::Duration;

/// The product page's full API-token scope set, plus `read:user:bitbucket` for `GET /2.0/user`.
pub const GOOD_SCOPES: &[&str] = &[
    "admin:project:bitbucket",
    "admin:repository:bitbucket",
    "read:account",
    "read:me",
    "read:permission:bitbucket",
    "read:project:bitbucket",
    "read:pullrequest:bitbucket",
    "read:repository:bitbucket",
    "read:user:bitbucket",
    "read:webhook:bitbucket",
    "write:permission:bitbucket",
    "write:pullrequest:bitbucket",
    "write:repository:bitbucket",
    "write:webhook:bitbucket",
];

pub const API_TOKEN: &str = "ATATT3xFfGF0-sim-demo-good-9f8e7d6c5b4a";
pub const API_TOKEN_NO_READ: &str = "ATATT3xFfGF0-sim-demo-noread-1a2b3c4d";
pub const API_TOKEN_EXPIRED: &str = "ATATT3xFfGF0-sim-demo-expired-5e6f7a8b";
pub const API_TOKEN_LEE: &str = "ATATT3xFfGF0-sim-demo-lee-no2fa-3c4d5e6f";
pub const APP_PASSWORD: &str = "ATBBsimDemoAppPassword0001";
pub const REPO_ACCESS_TOKEN: &str = "ATCTT3xFfGN0-sim-demo-repo-access-token";
pub const DC_PERSONAL_TOKEN: &str = "BBDC-sim-demo-personal-token-0001";
pub const DC_REPO_TOKEN: &str = "BBDC-sim-demo-repo-token-0002";
pub const GITHUB_CLASSIC: &str = "ghp_simDemoClassicToken000000000000000001";
pub const GITHUB_FINE_GRAINED: &str = "github_pat_11SIMDEMO0_fineGrainedToken0001";

/// One credential as a person would enter it.
#[derive(Debug, Clone)]
pub struct DemoCred {
    pub host: Host,
    pub label: &'static str,
    /// The user name to pair with it, where one is needed (REST / Git).
    pub username: String,
    pub secret: &'static str,
    pub note: String,
}

/// The demo world: user `jo` (jo@example.com); Cloud workspace `acme` with `app` (main and
/// feature branches), `empty` and a private `secret-repo` jo cannot see, plus workspaces
/// `locked` (IP allowlist that refuses 127.0.0.1) and `strict` (two-step required; user `lee`
/// has it off); Data Center project `PROJ` with `app`; GitHub owner `octo` with `app`.
pub fn builder(clock: SimClock) -> (SimBuilder, Vec<DemoCred>) {
    let now = clock.now();
    let in_six_months = now + Duration::days(180);
    let expired = now - Duration::days(1);
    let github_expiry = crate::sim::parse_time("2026-12-01T00:00:00Z").max(now + Duration::days(30));
    let jo = User::new("jo", "jo@example.com", "Jo Example");
    let b = Sim::builder()
        .clock(clock)
        .user(jo)
        .user(User::new("sam", "sam@example.com", "Sam Owner"))
        .user(User::new("octo", "octo@example.com", "The Octo Owner"))
        .cloud_workspace(Workspace::new("acme", "Acme").project("PROJ", "Project"))
        .cloud_repo(
            "acme/app",
            RepoSpec::new(&["main", "feature/login", "feature/checkout", "release/1.0"])
                .hook(Hook::new("https://ci.example.com/hook", &["repo:push"])),
        )
        .cloud_repo("acme/empty", RepoSpec::empty())
        .cloud_repo("acme/secret-repo", RepoSpec::new(&["main"]))
        .cloud_workspace(
            Workspace::new("locked", "Locked (IP allowlist)").project("PROJ", "Project").ip_allowlist(&["203.0.113.9"]),
        )
        .cloud_repo("locked/app", RepoSpec::new(&["main"]))
        .cloud_workspace(
            Workspace::new("strict", "Strict (two-step required)").project("PROJ", "Project").require_two_step(),
        )
        .cloud_repo("strict/app", RepoSpec::new(&["main"]))
        .user(User::new("lee", "lee@example.com", "Lee Without Two-Step").two_step(false))
        .grant(Host::Cloud, "jo", "acme/app", Perm::Admin)
        .grant(Host::Cloud, "jo", "acme/empty", Perm::Write)
        .grant(Host::Cloud, "sam", "acme", Perm::Admin)
        .grant(Host::Cloud, "jo", "locked", Perm::Write)
        .grant(Host::Cloud, "lee", "strict", Perm::Write)
        .credential(
            Cred::api_token("jo", API_TOKEN, GOOD_SCOPES).expires_at(in_six_months).label("API token (all scopes)"),
        )
        .credential(
            Cred::api_token("jo", API_TOKEN_NO_READ, &without(GOOD_SCOPES, "read:repository:bitbucket"))
                .expires_at(in_six_months)
                .label("API token without read:repository:bitbucket"),
        )
        .credential(
            Cred::api_token("jo", API_TOKEN_EXPIRED, GOOD_SCOPES)
                .expires_at(expired)
                .label("API token (expired yesterday)"),
        )
        .credential(
            Cred::api_token("lee", API_TOKEN_LEE, GOOD_SCOPES).expires_at(in_six_months).label("lee's API token"),
        )
        .credential(Cred::app_password("jo", APP_PASSWORD).git_status(410).label("app password (retired)"))
        .credential(
            Cred::repo_access_token("acme/app", REPO_ACCESS_TOKEN, &["repository", "webhook"])
                .label("repository access token"),
        )
        .dc_project(DcProject::new("PROJ", "Project"))
        .dc_repo("PROJ/app", RepoSpec::new(&["main", "develop", "feature/login"]))
        .grant(Host::DataCenter, "jo", "PROJ", Perm::Write)
        .credential(
            Cred::dc_personal_token("jo", DC_PERSONAL_TOKEN, &["PROJECT_READ", "REPO_READ"])
                .label("personal HTTP access token"),
        )
        .credential(
            Cred::dc_repo_token("PROJ/app", DC_REPO_TOKEN, &["REPO_READ"]).label("repository HTTP access token"),
        )
        .github_repo("octo/app", RepoSpec::new(&["main", "dev"]))
        .grant(Host::GitHub, "jo", "octo/app", Perm::Write)
        .credential(
            Cred::github_classic("jo", GITHUB_CLASSIC, &["repo", "read:org"])
                .expires_at(github_expiry)
                .label("classic PAT"),
        )
        .credential(Cred::github_fine_grained("jo", GITHUB_FINE_GRAINED, &["octo/app"]).label("fine-grained PAT"));
    let creds = vec![
        cloud(
            "API token, all scopes",
            "jo@example.com (REST) / jo or x-bitbucket-api-token-auth (Git)",
            API_TOKEN,
            "works everywhere jo may go",
        ),
        cloud(
            "API token without read:repository",
            "jo@example.com / jo",
            API_TOKEN_NO_READ,
            "403 scope error on repositories and Git",
        ),
        cloud("API token, expired", "jo@example.com / jo", API_TOKEN_EXPIRED, "401 like a wrong token"),
        cloud(
            "lee's API token (no two-step)",
            "lee@example.com / lee",
            API_TOKEN_LEE,
            "403 on strict/*: enable two-step authentication",
        ),
        cloud("app password", "jo", APP_PASSWORD, "retired: 401 on REST, 410 on Git"),
        cloud(
            "repository access token (acme/app)",
            "Bearer (REST) / x-token-auth (Git)",
            REPO_ACCESS_TOKEN,
            "scopes repository, webhook",
        ),
        DemoCred {
            host: Host::DataCenter,
            label: "personal HTTP access token",
            username: "jo (Basic) or Bearer".to_owned(),
            secret: DC_PERSONAL_TOKEN,
            note: "PROJECT_READ, REPO_READ".to_owned(),
        },
        DemoCred {
            host: Host::DataCenter,
            label: "repository HTTP access token (PROJ/app)",
            username: "Bearer only".to_owned(),
            secret: DC_REPO_TOKEN,
            note: "REPO_READ".to_owned(),
        },
        DemoCred {
            host: Host::GitHub,
            label: "classic PAT",
            username: "any (Git)".to_owned(),
            secret: GITHUB_CLASSIC,
            note: format!("scopes repo, read:org; expires {}", github_expiry.format("%Y-%m-%d")),
        },
        DemoCred {
            host: Host::GitHub,
            label: "fine-grained PAT (octo/app)",
            username: "any (Git)".to_owned(),
            secret: GITHUB_FINE_GRAINED,
            note: "no X-OAuth-Scopes".to_owned(),
        },
    ];
    (b, creds)
}

fn cloud(label: &'static str, username: &str, secret: &'static str, note: &str) -> DemoCred {
    DemoCred { host: Host::Cloud, label, username: username.to_owned(), secret, note: note.to_owned() }
}

fn without(scopes: &[&'static str], drop: &str) -> Vec<&'static str> {
    scopes.iter().copied().filter(|s| *s != drop).collect()
}

/// The text `berth-sim` prints: base URLs, a Berth config snippet and every demo credential.
/// The `berth.toml` that points Berth at the simulated hosts: the banner prints it and
/// `berth-sim --write-config FILE` writes it.
pub fn berth_toml(sim: &Sim) -> String {
    let host = |origin: &str| origin.trim_start_matches("http://").to_owned();
    let mut s = String::from("network_allow = [\"127.0.0.1/32\"]\n");
    for (h, provider, api) in [
        (host(&sim.cloud_url()), "bitbucket-cloud", sim.cloud_api_url()),
        (host(&sim.dc_url()).split('/').next().unwrap_or("").to_owned(), "bitbucket-datacenter", sim.dc_api_url()),
        (host(&sim.github_url()), "github", sim.github_api_url()),
    ] {
        s.push_str(&format!("\n[[integrations]]\nhost = \"{h}\"\nprovider = \"{provider}\"\napi_url = \"{api}\"\n"));
    }
    s
}

pub fn banner(sim: &Sim, creds: &[DemoCred]) -> String {
    let mut s = String::new();
    s.push_str("Berth forge simulator (fake hosts, fake demo secrets)\n\n");
    s.push_str(&format!(
        "Bitbucket Cloud        {}  (REST {}, Git {})\n",
        sim.cloud_url(),
        sim.cloud_api_url(),
        sim.cloud_git_url("acme/app")
    ));
    s.push_str(&format!(
        "Bitbucket Data Center  {}  (REST {}/api/latest, Git {})\n",
        sim.dc_url(),
        sim.dc_api_url(),
        sim.dc_git_url("PROJ/app")
    ));
    s.push_str(&format!(
        "GitHub                 {}  (REST {}, Git {})\n\n",
        sim.github_url(),
        sim.github_api_url(),
        sim.github_git_url("octo/app")
    ));
    s.push_str("# ---- berth.toml ----\n");
    s.push_str(&berth_toml(sim));
    s.push('\n');
    s.push_str("# ---- demo credentials (fake; user jo, email jo@example.com) ----\n");
    for c in creds {
        let host = match c.host {
            Host::Cloud => "Bitbucket Cloud",
            Host::DataCenter => "Bitbucket Data Center",
            Host::GitHub => "GitHub",
        };
        s.push_str(&format!("# {host}: {} ({}); user: {}\n{}\n", c.label, c.note, c.username, c.secret));
    }
    s.push_str(
        "\nRepositories: cloud acme/app, acme/empty, acme/secret-repo (jo cannot see it), locked/app (IP allowlist), \
                strict/app (two-step; user lee has it off); dc PROJ/app; github octo/app.\n",
    );
    s
}
