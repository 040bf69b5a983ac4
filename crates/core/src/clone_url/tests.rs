//! The clone-URL parser against every form people paste, and its properties under proptest.

// Tests state their expectations with unwrap and panic; a failure there is the point.
#![allow(clippy::unwrap_used, clippy::panic)]

use super::*;
use proptest::prelude::*;

fn parse(s: &str) -> Result<CloneUrl, UrlError> {
    CloneUrl::parse(s, &[])
}

fn canonical(s: &str) -> String {
    match parse(s) {
        Ok(u) => u.canonical(),
        Err(e) => panic!("{s:?} should parse, got {e:?}"),
    }
}

fn reason(s: &str) -> String {
    match parse(s) {
        Err(UrlError::Invalid { reason }) => reason,
        other => panic!("{s:?} should be Invalid, got {other:?}"),
    }
}

fn datacenter() -> Vec<Integration> {
    vec![Integration {
        host: "git.example.com:7990".into(),
        provider: Provider::BitbucketDatacenter,
        api_url: Some("https://git.example.com:7990/bitbucket/rest".into()),
    }]
}

const BB: &str = "https://bitbucket.org/ws/repo.git";

#[test]
fn trims_surrounding_whitespace() {
    for s in [
        " https://bitbucket.org/ws/repo.git ",
        "\n\thttps://bitbucket.org/ws/repo.git\r\n",
        "\u{a0}https://bitbucket.org/ws/repo.git\u{a0}",
        "\u{feff}https://bitbucket.org/ws/repo.git",
    ] {
        assert_eq!(canonical(s), BB, "{s:?}");
    }
}

#[test]
fn strips_git_clone_commands() {
    for s in [
        "git clone https://bitbucket.org/ws/repo.git",
        "GIT   Clone\thttps://bitbucket.org/ws/repo.git",
        "git clone --depth 1 https://bitbucket.org/ws/repo.git",
        "git clone -b main --single-branch https://bitbucket.org/ws/repo.git",
        "git clone --depth=1 -c http.sslVerify=false https://bitbucket.org/ws/repo.git",
        "git clone https://bitbucket.org/ws/repo.git mydir",
        "git clone https://bitbucket.org/ws/repo.git my.dir && cd my.dir",
        "git clone \"https://bitbucket.org/ws/repo.git\" 'my dir'",
    ] {
        assert_eq!(parse(s).map(|u| u.repository_key()), Ok("bitbucket-cloud:ws/repo".into()), "{s:?}");
    }
    let ssh = "  git clone git@bitbucket.org:ws/repo.git";
    assert_eq!(parse(ssh).map(|u| u.repository_key()), Ok("bitbucket-cloud:ssh:ws/repo".into()));
    assert!(reason("git clone").contains("without a URL"));
    assert!(reason("git clone --depth 1").contains("without a URL"));
    assert!(reason("git clone repo").contains("not a URL"));
    // `gitclone` and `git cloned` are not the command.
    assert!(parse("gitclone https://bitbucket.org/ws/repo.git").is_err());
}

#[test]
fn strips_quotes_and_angle_brackets() {
    for s in [
        "\"https://bitbucket.org/ws/repo.git\"",
        "'https://bitbucket.org/ws/repo.git'",
        "<https://bitbucket.org/ws/repo.git>",
        "`https://bitbucket.org/ws/repo.git`",
        "\"<https://bitbucket.org/ws/repo.git>\"",
    ] {
        assert_eq!(canonical(s), BB, "{s:?}");
    }
    assert_eq!(parse("\"\""), Err(UrlError::Empty));
}

#[test]
fn keeps_user_out_of_the_https_canonical_form() {
    let u = parse("https://jo@bitbucket.org/ws/repo.git").unwrap();
    assert_eq!(u.user.as_deref(), Some("jo"));
    assert_eq!(u.canonical(), BB);
    let u = parse("https://jo%40corp.com@git.corp.example/team/repo.git").unwrap();
    assert_eq!(u.user.as_deref(), Some("jo@corp.com"));
    assert_eq!(u.canonical(), "https://git.corp.example/team/repo.git");
    // An empty password is no secret; Git reads it as the user alone.
    assert_eq!(parse("https://jo:@bitbucket.org/ws/repo").unwrap().user.as_deref(), Some("jo"));
    assert_eq!(parse("https://@bitbucket.org/ws/repo").unwrap().user, None);
    assert!(reason("https://jo%ZZ@bitbucket.org/ws/repo").contains("user name"));
}

#[test]
fn refuses_passwords_and_tokens() {
    let token = "ghp_0123456789abcdefghijklmnopqrstuvwxyz";
    for s in [
        "https://jo:hunter22@bitbucket.org/ws/repo.git",
        "https://:hunter22@bitbucket.org/ws/repo.git",
        "http://x-token-auth:hunter22@git.example.com/a/b",
        "ssh://git:hunter22@git.example.com:7999/a/b.git",
        "git:hunter22@bitbucket.org:ws/repo.git",
        "jo:hunter22@bitbucket.org/ws/repo",
        "git clone https://jo:hunter22@bitbucket.org/ws/repo.git",
        "ftp://jo:hunter22@example.com/a/b",
        "https://jo:hun#ter22@bitbucket.org/ws/repo.git",
        "https://jo:hun?ter22@bitbucket.org/ws/repo.git",
        "https://jo%3Ahunter22@bitbucket.org/ws/repo.git",
        "https://jo:hunter22@bitbucket.org/ws/my repo.git?x=1",
        "https://jo:hunter22@bitbucket.org/ws/re\npo.git",
        "https://jo:hunter22@bitbucket.org",
        &format!("https://{token}@github.com/o/r.git"),
        "https://ATBB0123456789abcdefghijklmnop@bitbucket.org/ws/repo.git",
        "https://abcdefghijklmnopqrstuvwxyz0123456789@git.example.com/a/b.git",
    ] {
        let err = parse(s).unwrap_err();
        assert_eq!(err, UrlError::SecretInUrl, "{s:?}");
        assert_eq!(err.code(), Code::SecretInUrl);
        for text in [err.to_string(), format!("{err:?}"), err.remedy().to_owned()] {
            assert!(!text.contains("hunter22") && !text.contains("hun") && !text.contains(token), "{text}");
            assert!(!text.contains("bitbucket.org/ws"), "{text}");
        }
    }
}

#[test]
fn adds_git_removes_slashes_and_default_ports() {
    for s in [
        "https://bitbucket.org/ws/repo",
        "https://bitbucket.org/ws/repo/",
        "https://bitbucket.org/ws/repo.git/",
        "https://bitbucket.org//ws//repo.git",
        "https://BitBucket.ORG/ws/repo.git",
        "https://bitbucket.org:443/ws/repo.git",
        "https://bitbucket.org:/ws/repo.git",
        "https://bitbucket.org./ws/repo.git",
        "HTTPS://bitbucket.org/ws/repo",
    ] {
        assert_eq!(canonical(s), BB, "{s:?}");
    }
    assert_eq!(canonical("http://git.example.com:80/a/b"), "http://git.example.com/a/b.git");
    assert_eq!(canonical("https://git.example.com:8443/a/b"), "https://git.example.com:8443/a/b.git");
    assert_eq!(canonical("ssh://git@git.example.com:22/a/b"), "ssh://git@git.example.com/a/b.git");
    let http = parse("http://git.example.com/a/b.git").unwrap();
    assert_eq!((http.scheme, http.port), (Scheme::Http, None));
}

#[test]
fn lower_cases_paths_only_where_the_host_ignores_case() {
    assert_eq!(canonical("https://bitbucket.org/WS/Repo.GIT"), BB);
    assert_eq!(canonical("https://github.com/Octo/Hello-World"), "https://github.com/octo/hello-world.git");
    assert_eq!(canonical("https://gitlab.com/Group/Sub/Proj"), "https://gitlab.com/group/sub/proj.git");
    let dc = CloneUrl::parse("https://git.example.com:7990/bitbucket/scm/PROJ/Repo.git", &datacenter()).unwrap();
    assert_eq!(dc.path, "bitbucket/scm/proj/repo");
    assert_eq!(canonical("https://git.example.com/Team/Repo.git"), "https://git.example.com/Team/Repo.git");
    assert_eq!(canonical("https://dev.azure.com/Org/Project/_git/Repo"), "https://dev.azure.com/Org/Project/_git/Repo");
}

#[test]
fn parses_ssh_forms() {
    let u = parse("git@bitbucket.org:ws/repo.git").unwrap();
    assert_eq!(
        (u.scheme, u.user.as_deref(), u.host.as_str(), u.path.as_str()),
        (Scheme::Ssh, Some("git"), "bitbucket.org", "ws/repo")
    );
    assert_eq!(u.canonical(), "ssh://git@bitbucket.org/ws/repo.git");
    let u = parse("ssh://git@git.example.com:7999/proj/repo.git").unwrap();
    assert_eq!((u.scheme, u.port, u.path.as_str()), (Scheme::Ssh, Some(7999), "proj/repo"));
    assert_eq!(u.canonical(), "ssh://git@git.example.com:7999/proj/repo.git");
    assert_eq!(canonical("git+ssh://git@git.example.com:7999/proj/repo.git"), u.canonical());
    assert_eq!(canonical("ssh+git://git@git.example.com:7999/proj/repo.git"), u.canonical());
    // No user: `git`, the user of every hosted service.
    assert_eq!(canonical("ssh://git.example.com/a/b"), "ssh://git@git.example.com/a/b.git");
    assert_eq!(canonical("git.example.com:a/b"), "ssh://git@git.example.com/a/b.git");
    // Other users are kept, escaped where needed.
    assert_eq!(canonical("jo@git.example.com:/srv/b.git"), "ssh://jo@git.example.com/srv/b.git");
    assert_eq!(canonical("ssh://jo%40corp@git.example.com/a/b"), "ssh://jo%40corp@git.example.com/a/b.git");
    assert_eq!(canonical("git@[fd00::1]:a/b.git"), "ssh://git@[fd00::1]/a/b.git");
    assert_eq!(canonical("ssh://git@host.example/~jo/b.git"), "ssh://git@host.example/~jo/b.git");
}

#[test]
fn refuses_queries_and_fragments() {
    for s in [
        "https://bitbucket.org/ws/repo.git?x=1",
        "https://bitbucket.org/ws/repo#readme",
        "https://bitbucket.org?a/ws/repo",
        "git@bitbucket.org:ws/repo.git#x",
    ] {
        assert!(reason(s).contains("query"), "{s:?}");
    }
    assert_eq!(canonical("https://bitbucket.org/ws/repo.git?"), BB);
}

#[test]
fn detects_providers_and_context_paths() {
    let u = parse(BB).unwrap();
    assert_eq!((u.provider, u.api_url.as_deref()), (Provider::BitbucketCloud, Some("https://api.bitbucket.org/2.0")));
    assert_eq!(parse("https://github.com/o/r").unwrap().provider, Provider::Github);
    assert_eq!(parse("https://gitlab.com/g/r").unwrap().provider, Provider::Gitlab);
    assert_eq!(parse("https://git.example.com/a/b").unwrap().provider, Provider::Generic);

    let u = CloneUrl::parse("https://git.example.com:7990/bitbucket/scm/proj/repo.git", &datacenter()).unwrap();
    assert_eq!(u.provider, Provider::BitbucketDatacenter);
    assert_eq!(u.path, "bitbucket/scm/proj/repo");
    assert_eq!(u.api_url.as_deref(), Some("https://git.example.com:7990/bitbucket/rest"));
    assert_eq!(u.canonical(), "https://git.example.com:7990/bitbucket/scm/proj/repo.git");
    assert_eq!(u.repo_name(), "repo");
    // Same host, other HTTPS port: not that integration.
    let other = CloneUrl::parse("https://git.example.com/bitbucket/scm/proj/repo.git", &datacenter()).unwrap();
    assert_eq!(other.provider, Provider::Generic);
    // SSH on the integration's host belongs to it whatever the port.
    let ssh = CloneUrl::parse("ssh://git@git.example.com:7999/proj/repo.git", &datacenter()).unwrap();
    assert_eq!(ssh.provider, Provider::BitbucketDatacenter);
}

#[test]
fn handles_azure_devops() {
    let u = parse("https://dev.azure.com/org/project/_git/repo").unwrap();
    assert_eq!(u.provider, Provider::AzureDevops);
    assert_eq!(u.canonical(), "https://dev.azure.com/org/project/_git/repo");
    assert_eq!(u.http_url().map(String::from).as_deref(), Some("https://dev.azure.com/org/project/_git/repo"));
    assert_eq!(u.repo_name(), "repo");
    let with_user = parse("https://org@dev.azure.com/org/project/_git/repo").unwrap();
    assert_eq!(with_user.user.as_deref(), Some("org"));
    assert_eq!(with_user.canonical(), u.canonical());
    assert_eq!(with_user.repository_key(), u.repository_key());

    let ssh = parse("git@ssh.dev.azure.com:v3/org/project/repo").unwrap();
    assert_eq!((ssh.scheme, ssh.provider), (Scheme::Ssh, Provider::AzureDevops));
    assert_eq!(ssh.canonical(), "ssh://git@ssh.dev.azure.com/v3/org/project/repo");
    assert_eq!(ssh.https_alternative().as_deref(), Some("https://dev.azure.com/org/project/_git/repo"));
    assert_eq!(ssh.other_transport_key(), Some(u.repository_key()));
    assert_eq!(ssh.repo_name(), "repo");

    assert!(reason("https://dev.azure.com/org/project/repo").contains("Azure DevOps"));
    assert!(reason("https://dev.azure.com/org/project/_git/repo/commit/abc").contains("web page"));
}

#[test]
fn accepts_a_bare_host_and_path_as_https() {
    assert_eq!(canonical("bitbucket.org/ws/repo.git"), BB);
    assert_eq!(canonical("jo@bitbucket.org/ws/repo"), BB);
    assert_eq!(parse("bitbucket.org"), Err(UrlError::MissingRepositoryPath));
    for s in ["repo", "ws/repo", "main:foo", "https:/bitbucket.org/ws/repo"] {
        assert!(reason(s).contains("not a URL"), "{s:?}");
    }
}

#[test]
fn explains_what_is_wrong() {
    assert_eq!(parse(""), Err(UrlError::Empty));
    assert_eq!(parse(" \n\t "), Err(UrlError::Empty));
    assert!(reason("https://bitbucket.org/ws/my repo.git").contains("space"));
    assert!(reason("https://bitbucket.org/ws/my\u{a0}repo.git").contains("space"));
    assert!(reason("https://bitbucket.org/ws/\nrepo.git").contains("control character"));
    assert!(reason("https://bitbucket.org/ws/\u{7}repo.git").contains("control character"));
    assert!(reason("https:///ws/repo.git").contains("no host"));
    assert!(reason("https://").contains("no host"));
    assert!(reason("https://git.example.com:99999/a/b").contains("port"));
    assert!(reason("https://git.example.com:0/a/b").contains("port"));
    assert!(reason("https://git.example.com:x/a/b").contains("port"));
    assert!(reason("https://git.exa mple.com/a/b").contains("space"));
    assert!(reason("https://git_ex<ample.com/a/b").contains("host name"));
    assert!(reason(&format!("https://bitbucket.org/ws/{}.git", "a".repeat(2100))).contains("2048"));
    for s in
        ["https://git.example.com/a/../b.git", "https://git.example.com/a/./b", "https://git.example.com/a/%2e%2E/b"]
    {
        assert!(reason(s).contains("'..'"), "{s:?}");
    }
    for s in ["/srv/repo.git", "./repo", "../repo", "~/repo.git", "C:\\x", "C:/x/y.git", "\\\\server\\share\\repo"] {
        assert!(reason(s).contains("local path"), "{s:?}");
    }
    assert!(reason("https://git.example.com/a\\b").contains("backslash"));
    assert!(reason("https://git.example.com/a/b%2").contains('%'));
    assert!(reason("https://git.example.com/a/b{c}").contains("'{'"));
    assert!(reason("https://git.example.com/ws/.git").contains(".git"));
    assert!(reason("https://u:1234/x@host.example/a").contains("'@'"));
    assert!(reason("https://bitbucket.org/ws/repo/src/main/").contains("web page"));
    assert!(reason("https://github.com/o/r/tree/main").contains("web page"));
    assert!(reason("https://gitlab.com/g/r/-/tree/main").contains("web page"));
    for s in [
        "https://bitbucket.org/",
        "https://bitbucket.org",
        "https://github.com/octocat",
        "https://gitlab.com/group",
        "git@bitbucket.org:",
        "https://git.example.com/",
    ] {
        assert_eq!(parse(s), Err(UrlError::MissingRepositoryPath), "{s:?}");
    }
}

#[test]
fn refuses_other_schemes() {
    for (s, scheme) in [
        ("file:///srv/repo.git", "file"),
        ("git://git.example.com/a/b.git", "git"),
        ("FTP://x.example/a", "ftp"),
        ("svn+ssh://x.example/a", "svn+ssh"),
    ] {
        let err = parse(s).unwrap_err();
        assert_eq!(err, UrlError::UnsupportedScheme { scheme: scheme.into() });
        assert_eq!(err.code(), Code::InvalidUrl);
        assert!(err.to_string().contains("https://"));
    }
}

#[test]
fn error_codes_and_remedies() {
    let errors = [
        UrlError::Empty,
        invalid("x"),
        UrlError::SecretInUrl,
        UrlError::UnsupportedScheme { scheme: "git".into() },
        UrlError::MissingRepositoryPath,
    ];
    for e in &errors {
        assert!(!e.remedy().is_empty());
        assert!(!e.to_string().is_empty());
    }
    let codes: Vec<Code> = errors.iter().map(UrlError::code).collect();
    assert_eq!(codes, [Code::InvalidUrl, Code::InvalidUrl, Code::SecretInUrl, Code::InvalidUrl, Code::InvalidUrl]);
}

#[test]
fn handles_ip_addresses() {
    let u = parse("https://[FD00::1]:8443/a/b").unwrap();
    assert_eq!((u.host.as_str(), u.port), ("fd00::1", Some(8443)));
    assert_eq!(u.canonical(), "https://[fd00::1]:8443/a/b.git");
    assert_eq!(canonical("http://10.0.0.5/a/b"), "http://10.0.0.5/a/b.git");
    assert!(reason("https://[fd00::1/a/b").contains("IPv6"));
    assert!(reason("https://fd00::1/a/b").contains("brackets"));
}

#[test]
fn escapes_non_ascii_paths_once() {
    assert_eq!(canonical("https://git.example.com/team/café"), "https://git.example.com/team/caf%C3%A9.git");
    assert_eq!(canonical("https://git.example.com/team/caf%c3%a9.git"), "https://git.example.com/team/caf%C3%A9.git");
    assert_eq!(canonical("https://git.example.com/team/my%20repo"), "https://git.example.com/team/my%20repo.git");
}

#[test]
fn repository_keys() {
    let key = |s: &str| parse(s).unwrap().repository_key();
    assert_eq!(key(BB), "bitbucket-cloud:ws/repo");
    // Over SSH, the same repository is another registration (its own credential, its own checks).
    assert_eq!(key("git@bitbucket.org:WS/repo.git"), "bitbucket-cloud:ssh:ws/repo");
    assert_eq!(key("ssh://git@bitbucket.org:22/ws/repo"), "bitbucket-cloud:ssh:ws/repo");
    assert!(parse("http://bitbucket.org/ws/repo").is_err(), "plain HTTP to a cloud host would expose the token");
    assert_eq!(key("git@github.com:o/r.git"), "github:ssh:o/r");
    assert_eq!(key("https://github.com/O/R"), "github:o/r");
    // ... and each finds the other.
    let other = |s: &str| parse(s).unwrap().other_transport_key();
    assert_eq!(other("git@github.com:o/r.git"), Some(key("https://github.com/O/R")));
    assert_eq!(other("https://github.com/O/R"), Some(key("git@github.com:o/r.git")));
    assert_eq!(other("ssh://git@gitlab.com/g/s/r.git"), Some(key("https://gitlab.com/g/s/r")));
    assert_eq!(other("https://git.example.com/a/b"), None, "a self-hosted server's SSH path is its own");
    let azure = "git@ssh.dev.azure.com:v3/org/project/repo";
    assert_eq!(other(azure), Some(key("https://dev.azure.com/org/project/_git/repo")));
    assert_eq!(key(azure), format!("ssh:{}", key("https://dev.azure.com/org/project/_git/repo")));
    assert_eq!(key("https://www.github.com/o/r"), key("https://github.com/o/r"));
    // Self-hosted: HTTP and HTTPS unified, SSH kept apart.
    assert_eq!(key("http://git.example.com/a/b"), "https://git.example.com/a/b.git");
    assert_eq!(key("http://git.example.com/a/b"), key("https://jo@git.example.com:443/a/b/"));
    assert_eq!(key("http://git.example.com:8080/a/b"), "https://git.example.com:8080/a/b.git");
    assert_ne!(key("git@git.example.com:a/b"), key("https://git.example.com/a/b"));
    assert_eq!(key("git@git.example.com:a/b"), "ssh://git@git.example.com/a/b.git");
    // An integration calling another host `github` does not share github.com's keys.
    let ints = [Integration { host: "ghe.corp.example".into(), provider: Provider::Github, api_url: None }];
    let ghe = CloneUrl::parse("https://ghe.corp.example/o/r", &ints).unwrap();
    assert_eq!(ghe.repository_key(), "https://ghe.corp.example/o/r.git");
}

#[test]
fn http_urls_have_no_user_info() {
    let u = parse("https://jo@bitbucket.org/ws/repo").unwrap();
    let http = u.http_url().unwrap();
    assert_eq!(http.as_str(), BB);
    assert_eq!((http.username(), http.password()), ("", None));
    assert_eq!(
        parse("http://git.example.com:8080/a/b").unwrap().http_url().unwrap().as_str(),
        "http://git.example.com:8080/a/b.git"
    );
    assert_eq!(parse("git@bitbucket.org:ws/repo.git").unwrap().http_url(), None);
}

#[test]
fn https_alternatives_of_ssh_urls() {
    let alt = |s: &str, ints: &[Integration]| CloneUrl::parse(s, ints).unwrap().https_alternative();
    assert_eq!(alt("git@bitbucket.org:ws/repo.git", &[]).as_deref(), Some(BB));
    assert_eq!(alt("git@github.com:o/r.git", &[]).as_deref(), Some("https://github.com/o/r.git"));
    assert_eq!(alt("ssh://git@gitlab.com/g/s/r.git", &[]).as_deref(), Some("https://gitlab.com/g/s/r.git"));
    assert_eq!(
        alt("git@ssh.dev.azure.com:v3/org/project/repo", &[]).as_deref(),
        Some("https://dev.azure.com/org/project/_git/repo")
    );
    assert_eq!(alt("ssh://git@git.example.com:7999/proj/repo.git", &[]), None);
    assert_eq!(
        alt("ssh://git@git.example.com:7999/proj/repo.git", &datacenter()).as_deref(),
        Some("https://git.example.com:7990/bitbucket/scm/proj/repo.git")
    );
    let root = [Integration {
        host: "scm.example.com".into(),
        provider: Provider::BitbucketDatacenter,
        api_url: Some("https://scm.example.com/rest/api/1.0/".into()),
    }];
    assert_eq!(
        alt("ssh://git@scm.example.com:7999/~jo/repo.git", &root).as_deref(),
        Some("https://scm.example.com/scm/~jo/repo.git")
    );
    let no_api =
        [Integration { host: "scm.example.com".into(), provider: Provider::BitbucketDatacenter, api_url: None }];
    assert_eq!(alt("ssh://git@scm.example.com:7999/p/r.git", &no_api), None);
    assert_eq!(alt(BB, &[]), None);
}

#[test]
fn repo_names() {
    assert_eq!(parse(BB).unwrap().repo_name(), "repo");
    assert_eq!(parse("git@gitlab.com:g/sub/My-Proj.git").unwrap().repo_name(), "my-proj");
    assert_eq!(parse("https://git.example.com/Solo").unwrap().repo_name(), "Solo");
}

#[test]
fn scheme_serialises_lower_case() {
    assert_eq!(serde_json::to_string(&Scheme::Https).unwrap(), "\"https\"");
    assert_eq!(serde_json::from_str::<Scheme>("\"ssh\"").unwrap(), Scheme::Ssh);
}

// --- properties

/// A valid URL as (text, whether its host is one of the path-sharing cloud hosts).
fn valid_url() -> impl Strategy<Value = String> {
    let segment = "[a-zA-Z0-9][a-zA-Z0-9_-]{0,9}";
    let cloud = (prop_oneof![Just("bitbucket.org"), Just("github.com"), Just("gitlab.com")], segment, segment)
        .prop_map(|(h, a, b)| format!("https://{h}/{a}/{b}.git"));
    let azure = (segment, segment, segment).prop_map(|(o, p, r)| format!("https://dev.azure.com/{o}/{p}/_git/{r}"));
    let self_hosted = (
        prop_oneof![Just("https"), Just("http"), Just("ssh")],
        prop_oneof![Just("git.example.com"), Just("Scm.Corp.Example"), Just("10.1.2.3"), Just("[fd00::2]")],
        proptest::option::of(1u16..),
        proptest::collection::vec(segment, 1..4),
    )
        .prop_map(|(scheme, host, port, segs)| {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let user = if scheme == "ssh" { "git@" } else { "" };
            format!("{scheme}://{user}{host}{port}/{}", segs.join("/"))
        });
    let scp = (segment, segment).prop_map(|(a, b)| format!("git@bitbucket.org:{a}/{b}.git"));
    prop_oneof![cloud, azure, self_hosted, scp]
}

proptest! {
    #[test]
    fn canonical_is_idempotent(s in valid_url()) {
        let u = parse(&s).map_err(|e| TestCaseError::fail(format!("{s}: {e:?}")))?;
        let again = parse(&u.canonical()).map_err(|e| TestCaseError::fail(format!("{}: {e:?}", u.canonical())))?;
        prop_assert_eq!(again.canonical(), u.canonical());
        prop_assert_eq!(again.repository_key(), u.repository_key());
        prop_assert_eq!(u.http_url().is_some(), u.scheme != Scheme::Ssh);
    }

    #[test]
    fn decorations_keep_the_key(
        base in valid_url(),
        clone_cmd in any::<bool>(),
        pad in prop_oneof![Just(""), Just(" "), Just("\n\t"), Just("\u{a0}")],
        user in any::<bool>(),
        slash in any::<bool>(),
        drop_git in any::<bool>(),
        upper_host in any::<bool>(),
        default_port in any::<bool>(),
    ) {
        let original = parse(&base).map_err(|e| TestCaseError::fail(format!("{base}: {e:?}")))?;
        let mut decorated = original.clone();
        decorated.host = if upper_host { original.host.to_uppercase() } else { original.host.clone() };
        let mut s = CloneUrl { host: decorated.host.clone(), ..original.clone() }.canonical();
        if drop_git {
            s = s.strip_suffix(".git").unwrap_or(&s).to_owned();
        }
        if slash {
            s.push('/');
        }
        if default_port && original.port.is_none() {
            let authority = original.authority();
            let with_port = format!("{authority}:{}", original.scheme.default_port());
            s = s.replacen(&format!("{authority}/"), &format!("{with_port}/"), 1);
        }
        if user && original.scheme != Scheme::Ssh {
            s = s.replacen("://", "://jo@", 1);
        }
        if clone_cmd {
            s = format!("git  clone --depth 1 {s} target-dir");
        }
        let s = format!("{pad}{s}{pad}");
        let parsed = parse(&s).map_err(|e| TestCaseError::fail(format!("{s}: {e:?}")))?;
        prop_assert_eq!(parsed.repository_key(), original.repository_key(), "{}", s);
    }

    #[test]
    fn passwords_never_appear_in_errors(password in "[a-zA-Z0-9]{4,40}") {
        let err = parse(&format!("https://u:{password}@host.example/a/b.git")).err();
        prop_assert_eq!(err.clone(), Some(UrlError::SecretInUrl));
        if let Some(err) = err {
            prop_assert!(!err.to_string().contains(&password));
            let debug = format!("{:?}", err);
            prop_assert!(!debug.contains(&password));
            prop_assert!(!err.remedy().contains(&password));
        }
    }

    #[test]
    fn never_panics_on_text(s in "\\PC*") {
        let _ = parse(&s);
        let _ = parse(&format!("git clone {s}"));
        let _ = parse(&format!("https://{s}"));
        let _ = parse(&format!("git@{s}"));
    }

    #[test]
    fn never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let s = String::from_utf8_lossy(&bytes);
        let _ = parse(&s);
        let _ = parse(&format!("ssh://{s}"));
    }
}

/// `fuzz/corpus/clone_url/`: every committed seed satisfies the round-trip rules; seeds
/// named `ok-*` are accepted and `bad-*` refused.
#[test]
fn fuzz_corpus_replays() -> std::io::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/clone_url");
    let integrations = fuzz_integrations();
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_owned();
        let bytes = std::fs::read(&path)?;
        let Ok(text) = std::str::from_utf8(&bytes) else { continue };
        let checked = check_canonical_roundtrip(text, &integrations);
        assert!(checked.is_ok(), "{name}: {checked:?}");
        if name.starts_with("ok-") {
            assert!(matches!(checked, Ok(Some(_))), "{name} ({text:?}) should be accepted");
        }
        if name.starts_with("bad-") {
            assert!(matches!(checked, Ok(None)), "{name} ({text:?}) should be refused");
        }
        seen += 1;
    }
    assert!(seen >= 10, "only {seen} seeds in {}", dir.display());
    Ok(())
}

/// Inputs the fuzzer found breaking the round-trip rules, kept as regressions.
#[test]
fn fuzz_regressions() {
    let integrations = fuzz_integrations();
    // A host with an empty label lost one dot per parse: "ht.." became "ht." and then "ht".
    for input in ["ht../tpg/acme/app.git", "https://a..b/x/y.git", "https://host../x/y.git"] {
        let checked = check_canonical_roundtrip(input, &integrations);
        assert!(matches!(checked, Ok(None)), "{input:?} should be refused: {checked:?}");
    }
    assert!(matches!(check_canonical_roundtrip("https://host./x/y.git", &integrations), Ok(Some(_))));
}
