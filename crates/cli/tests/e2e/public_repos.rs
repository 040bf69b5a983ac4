//! Public repositories without a credential, end to end: Refresh and registration with
//! `anonymous: true` against a real `git http-backend` that serves without sign-in and the
//! GitHub simulator (public and private repositories), through the typed client, the `berth`
//! binary and the web form. A host that wants sign-in answers `credential_required`, never
//! `auth_failed`; the REST steps are skipped with the reason (the hosts' anonymous rate
//! limits), and no REST request reaches the host.

use crate::cli::{berth, signed_in};
use crate::harness::*;
use berth_core::{Code, StepName, StepStatus};
use berth_proto::{RemoteBranchesRequest, RepositoryCreate, RepositoryUpdate};
use berth_testkit::sim::{Host, RepoSpec, Sim};
use berth_testkit::{bare_repo, GitServer, GitServerOptions};
use reqwest::StatusCode;

fn anonymous_refresh(url: &str) -> RemoteBranchesRequest {
    RemoteBranchesRequest { credential: None, anonymous: true, ..remote(url, "") }
}

fn anonymous_registration(name: &str, url: &str) -> RepositoryCreate {
    RepositoryCreate { credential: None, anonymous: true, ..new_repository(name, url, "") }
}

/// A real `git http-backend` that serves without sign-in, with one public repository.
async fn public_git() -> (tempfile::TempDir, GitServer) {
    let root = tempfile::tempdir().unwrap();
    bare_repo(root.path(), "oss/tool.git", "main", &["main", "v2"]);
    let git = GitServer::start(root.path(), GitServerOptions::default()).await;
    (root, git)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_repositories_are_checked_and_registered_without_a_credential() {
    let b = Berth::start().await;
    b.api_token_credential("ci").await;
    let (_root, public) = public_git().await;
    let url = public.repo_url("oss/tool.git");

    // Refresh: the credential step says there is none, the REST steps are skipped with why,
    // Git lists the branches anonymously.
    let rb = b.api.remote_branches(&anonymous_refresh(&url)).await.unwrap();
    assert_eq!(rb.default_branch.as_deref(), Some("main"));
    assert_eq!(rb.branches.len(), 2);
    let cred = step(&rb.checks, StepName::Credential);
    assert_eq!(cred.status, StepStatus::Pass);
    assert!(cred.message.contains("no credential: anonymous access"), "{}", cred.message);
    for name in [StepName::ApiCredential, StepName::ApiScopes, StepName::ApiRepository] {
        let s = step(&rb.checks, name);
        assert_eq!(s.status, StepStatus::Skip, "{}", codes(&rb.checks));
    }
    let git = step(&rb.checks, StepName::GitDiscovery);
    assert!(git.message.contains("accepted anonymous access"), "{}", git.message);
    assert!(rb.checks.iter().all(|s| s.status != StepStatus::Warn), "no warning: {}", codes(&rb.checks));
    assert!(public.requests().iter().all(|r| !r.authorization), "nothing was signed");

    // The same request spelled in raw JSON: `"credential": null` with `"anonymous": true`.
    let body = serde_json::json!({"clone_url": url, "credential": null, "anonymous": true});
    let (status, answer, _) = b
        .raw(
            reqwest::Method::POST,
            "/api/v1/remote-branches",
            Some(&b.token),
            Some("application/json"),
            Some(body.to_string().into()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    // A credential and anonymous access at once is a mistake in the request.
    let both = RemoteBranchesRequest { anonymous: true, ..remote(&url, "ci") };
    let e = refused(b.api.remote_branches(&both).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::InvalidInput)), "{e}");

    // A host that wants sign-in (the suite's own git http-backend with Basic auth) is
    // `credential_required`, not `auth_failed`: no credential was refused.
    let e = refused(b.api.remote_branches(&anonymous_refresh(&b.git.repo_url("team/app.git"))).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::CredentialRequired)), "{e}");
    let failed = step(e.checks(), StepName::GitDiscovery);
    assert_eq!(failed.code, Code::CredentialRequired);
    assert!(failed.message.contains("private or the host requires sign-in"), "{}", failed.message);
    assert!(failed.remedy.contains("Choose a credential"), "{}", failed.remedy);
    assert!(e.checks().iter().all(|s| s.code != Code::AuthFailed));

    // Registration: no credential stored with it; its checks stay anonymous.
    let r = b.api.create_repository(&anonymous_registration("tool", &url)).await.unwrap();
    assert_eq!(b.api.status(), 201);
    assert!(r.credential.is_none(), "{r:?}");
    assert!(b.api.body().contains("\"credential\":null"), "{}", b.api.body());
    assert_eq!(r.default_branch, "main");
    assert_eq!(b.api.get_repository(r.id).await.unwrap().status, "ok");
    let again = b.api.check_repository(r.id).await.unwrap();
    let s = step(&again.checks, StepName::Credential);
    assert!(s.message.contains("registered without one"), "{}", s.message);
    assert_eq!(step(&again.checks, StepName::ApiRepository).status, StepStatus::Skip);
    let listed = b.api.list_repositories().await.unwrap();
    assert!(listed.iter().any(|x| x.id == r.id && x.credential.is_none()));

    // An update that names no credential keeps it anonymous; naming one attaches it, and
    // `anonymous` drops it again. The audit says each.
    let edit = RepositoryUpdate { default_branch: Some("v2".into()), ..RepositoryUpdate::default() };
    let u = b.api.update_repository(r.id, &edit).await.unwrap();
    assert!(u.credential.is_none() && u.default_branch == "v2", "{u:?}");
    let with = RepositoryUpdate { credential: Some("ci".into()), ..RepositoryUpdate::default() };
    let u = b.api.update_repository(r.id, &with).await.unwrap();
    assert_eq!(u.credential.as_ref().map(|c| c.name.as_str()), Some("ci"));
    let without = RepositoryUpdate { anonymous: true, ..RepositoryUpdate::default() };
    let u = b.api.update_repository(r.id, &without).await.unwrap();
    assert!(u.credential.is_none(), "{u:?}");
    let both = RepositoryUpdate { anonymous: true, credential: Some("ci".into()), ..RepositoryUpdate::default() };
    let e = refused(b.api.update_repository(r.id, &both).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::InvalidInput)), "{e}");
    let audit = b.api.audit(None, Some(20)).await.unwrap();
    assert!(
        audit.iter().any(|a| a.action == "repository.register" && a.detail.contains("without a credential")),
        "{audit:?}"
    );
    assert!(audit.iter().any(|a| a.detail.contains("credential none -> \"ci\"")), "{audit:?}");
    assert!(audit.iter().any(|a| a.detail.contains("credential \"ci\" -> none")), "{audit:?}");

    // A private repository cannot be registered anonymously, and nothing is saved.
    let e = refused(b.api.create_repository(&anonymous_registration("app", &b.git.repo_url("team/app.git"))).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::CredentialRequired)), "{e}");
    assert_eq!(b.api.list_repositories().await.unwrap().len(), 1);

    // Configuration as code keeps it anonymous: the export says so, and applying it changes nothing.
    let doc = b.api.export_config().await.unwrap();
    let tool = doc.repositories.iter().find(|x| x.name == "tool").unwrap();
    assert!(tool.anonymous && tool.credential.is_none(), "{tool:?}");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_public_repositories_skip_the_rest_api_and_private_ones_need_a_credential() {
    let sim = Sim::builder()
        .github_repo("octo/open", RepoSpec::new(&["main", "docs"]).public())
        .github_repo("octo/closed", RepoSpec::new(&["main"]))
        .start()
        .await;
    let config = format!(
        "[[integrations]]\nhost = \"127.0.0.1:{}\"\nprovider = \"github\"\napi_url = \"{}\"\n",
        sim.github_port(),
        sim.github_api_url()
    );
    let b = Berth::start_with(Options { config_toml: Some(config), ..Options::default() }).await;

    let rb = b.api.remote_branches(&anonymous_refresh(&sim.github_git_url("octo/open"))).await.unwrap();
    assert_eq!(rb.branches.len(), 2);
    let skipped = step(&rb.checks, StepName::ApiCredential);
    assert_eq!(skipped.status, StepStatus::Skip);
    assert!(skipped.message.contains("anonymous rate limit"), "{}", skipped.message);
    assert!(skipped.message.contains("60 anonymous REST requests an hour"), "{}", skipped.message);
    let r = b.api.create_repository(&anonymous_registration("open", &sim.github_git_url("octo/open"))).await.unwrap();
    b.api.check_repository(r.id).await.unwrap();

    // GitHub answers a private repository without sign-in with 401 and its realm.
    let e = refused(b.api.remote_branches(&anonymous_refresh(&sim.github_git_url("octo/closed"))).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::CredentialRequired)), "{e}");
    let failed = step(e.checks(), StepName::GitDiscovery);
    assert!(failed.details.iter().any(|d| d == "realm: GitHub"), "{:?}", failed.details);

    // No credential named, not `anonymous` either, and no template covers the URL: Berth tries
    // anonymous access and says why, for a public repository and a private one alike.
    let plain = |url: String| RemoteBranchesRequest { credential: None, anonymous: false, ..remote(&url, "") };
    let rb = b.api.remote_branches(&plain(sim.github_git_url("octo/open"))).await.unwrap();
    assert_eq!(rb.branches.len(), 2);
    let cred = step(&rb.checks, StepName::Credential);
    assert!(cred.message.contains("no credential: anonymous access"), "{}", cred.message);
    assert!(cred.message.contains("there are no credential templates"), "{}", cred.message);
    let e = refused(b.api.remote_branches(&plain(sim.github_git_url("octo/closed"))).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::CredentialRequired)), "{e}");
    let failed = step(e.checks(), StepName::GitDiscovery);
    assert!(failed.message.contains("private or the host requires sign-in"), "{}", failed.message);
    assert!(failed.remedy.contains("Choose a credential"), "{}", failed.remedy);
    assert!(failed.remedy.contains("berth template add"), "{}", failed.remedy);
    assert!(e.checks().iter().all(|s| s.code != Code::AuthFailed));
    // Registered that way, it is a repository without a credential, checked anonymously.
    b.api.delete_repository(r.id).await.unwrap();
    let url = sim.github_git_url("octo/open");
    let req = RepositoryCreate { credential: None, anonymous: false, ..new_repository("open", &url, "") };
    let r = b.api.create_repository(&req).await.unwrap();
    assert!(r.credential.is_none(), "{r:?}");
    let again = b.api.check_repository(r.id).await.unwrap();
    assert!(step(&again.checks, StepName::Credential).message.contains("registered without one"));

    // Not one REST request reached the host, and none of the Git requests carried a credential.
    let seen = sim.requests(Host::GitHub);
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|r| !r.path.starts_with("/api/")), "{seen:?}");
    assert!(seen.iter().all(|r| !r.credentials), "{seen:?}");
    b.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_and_the_web_form_offer_no_credential() {
    let b = Berth::start().await;
    b.api_token_credential("ci").await;
    let (root, public) = public_git().await;
    let url = public.repo_url("oss/tool.git");
    let (_home, session) = signed_in(&b).await;

    let run = berth(&b, &session, &["repo", "branches", "--anonymous", &url], None).await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("main") && run.stdout.contains("v2"), "{}", run.stdout);
    let run = berth(&b, &session, &["repo", "branches", "--anonymous", "--credential", "ci", &url], None).await;
    assert_eq!(run.code, 2, "usage: {}", run.all());
    let private = b.git.repo_url("team/app.git");
    let run = berth(&b, &session, &["--json", "repo", "branches", "--anonymous", &private], None).await;
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stdout.contains("credential_required"), "{}", run.stdout);
    let run = berth(&b, &session, &["repo", "register", "--name", "tool", "--url", &url, "--anonymous"], None).await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("credential none (public repository)"), "{}", run.stdout);
    let run = berth(&b, &session, &["repo", "show", "tool"], None).await;
    assert!(run.stdout.contains("none (public repository)"), "{}", run.stdout);

    // The web form: the choice is offered, and registers without a credential (no script).
    let web = crate::harness::web::signed_in(&b).await;
    let page = web.page("/repositories/new").await;
    assert!(page.contains("No credential (public repository)"), "the choice is offered");
    bare_repo(root.path(), "oss/lib.git", "main", &["main"]);
    let lib = public.repo_url("oss/lib.git");
    let fields = [
        ("op", "register"),
        ("vcs", "git"),
        ("name", "lib"),
        ("clone_url", lib.as_str()),
        ("credential", "anonymous"),
        ("default_branch", "main"),
    ];
    let (status, body) = web.post("/repositories/new", "/repositories/new", &fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let listed = b.api.list_repositories().await.unwrap();
    let lib = listed.iter().find(|r| r.name == "lib").expect("registered from the form");
    assert!(lib.credential.is_none());
    let page = web.page(&format!("/repositories/{}", lib.id)).await;
    assert!(page.contains("None (public repository)"), "the repository page says it has none");
    b.stop().await;
}
