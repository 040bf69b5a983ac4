//! Webhooks on the host, end to end against the simulator's Bitbucket Cloud, Data Center and
//! GitHub: registration (the `webhook` flag, the button's endpoint), the simulator's real
//! signed deliveries when a branch is pushed, created or deleted, the branch list updated at
//! once and a check with reason `webhook` after it, unsigned and wrongly signed deliveries
//! refused with 401 and counted on all three hosts, a missing scope named, `public_url` unset refused, and the
//! hook removed from the host when the repository is deleted (said plainly when it cannot be).
//! Raw HTTP only for the receiver, which is HTTP from a host, not an API call.

use crate::harness::*;
use berth_core::{Code, CredentialKind};
use berth_proto::{Repository, RepositoryCreate, StoredBranch};
use berth_testkit::hmac_sha256;
use berth_testkit::sim::{Cred, DcProject, Host, Perm, RepoSpec, Sim, User, Workspace};
use reqwest::StatusCode;

fn cloud_scopes(webhooks: bool) -> Vec<&'static str> {
    let mut v: Vec<&'static str> =
        berth_core::credential::FULL_SCOPES.iter().copied().filter(|s| !s.contains("webhook")).collect();
    v.push("read:user:bitbucket");
    if webhooks {
        v.extend(["read:webhook:bitbucket", "write:webhook:bitbucket", "delete:webhook:bitbucket"]);
    }
    v
}

async fn world() -> Sim {
    Sim::builder()
        .user(User::new("jo", "jo@example.com", "Jo Doe"))
        .cloud_workspace(Workspace::new("acme", "Acme"))
        .cloud_repo("acme/app", RepoSpec::new(&["main", "develop"]))
        .cloud_repo("acme/other", RepoSpec::new(&["main"]))
        .grant(Host::Cloud, "jo", "acme", Perm::Admin)
        .credential(Cred::api_token("jo", HOOKS_CLOUD_TOKEN, &cloud_scopes(true)))
        .credential(Cred::api_token("jo", HOOKS_CLOUD_NO_WEBHOOK, &cloud_scopes(false)))
        .dc_project(DcProject::new("PROJ", "Project"))
        .dc_repo("PROJ/app", RepoSpec::new(&["master", "release"]).default_branch("master").project("PROJ"))
        .grant(Host::DataCenter, "jo", "PROJ/app", Perm::Admin)
        .credential(Cred::dc_personal_token("jo", HOOKS_DC_TOKEN, &["REPO_ADMIN"]))
        .github_repo("octo/app", RepoSpec::new(&["main", "gh-pages"]))
        .github_repo("octo/site", RepoSpec::new(&["main"]).public())
        .grant(Host::GitHub, "jo", "octo", Perm::Admin)
        .credential(Cred::github_classic("jo", HOOKS_GITHUB_TOKEN, &["repo", "admin:repo_hook", "read:user"]))
        .credential(Cred::github_classic("jo", HOOKS_GITHUB_NO_HOOK, &["read:user"]))
        .start()
        .await
}

fn config(sim: &Sim) -> String {
    format!(
        "[[integrations]]\nhost = \"127.0.0.1:{}\"\nprovider = \"bitbucket-cloud\"\napi_url = \"{}\"\n\n\
         [[integrations]]\nhost = \"127.0.0.1:{}\"\nprovider = \"bitbucket-datacenter\"\napi_url = \"{}\"\n\n\
         [[integrations]]\nhost = \"127.0.0.1:{}\"\nprovider = \"github\"\napi_url = \"{}\"\n",
        sim.cloud_port(),
        sim.cloud_api_url(),
        sim.dc_port(),
        sim.dc_url().trim_end_matches('/').to_owned() + "/rest",
        sim.github_port(),
        sim.github_api_url(),
    )
}

async fn credentials(b: &Berth) {
    let token = |name: &str, secret: &str| new_credential(name, CredentialKind::AccessToken, secret);
    for req in [
        bitbucket_api_token("cloud", HOOKS_CLOUD_TOKEN),
        bitbucket_api_token("cloud-nohook", HOOKS_CLOUD_NO_WEBHOOK),
        token("dc", HOOKS_DC_TOKEN),
        token("gh", HOOKS_GITHUB_TOKEN),
        token("gh-nohook", HOOKS_GITHUB_NO_HOOK),
    ] {
        b.api.create_credential(&req).await.unwrap();
    }
}

/// The secret Berth gave the host's hook: registered with the leak scan, which must never find it.
fn hook_secret(sim: &Sim, host: Host, full_name: &str) -> String {
    let hooks = sim.hooks(host, full_name);
    assert_eq!(hooks.len(), 1, "one hook on {full_name}: {hooks:?}");
    let secret = hooks[0].secret.clone().expect("Berth gave the hook a secret");
    assert_eq!(secret.len(), 64, "32 random bytes as hex");
    register_secret("a repository webhook secret", &secret);
    secret
}

async fn branch_names(b: &Berth, id: i64) -> Vec<StoredBranch> {
    b.api.branches(id, Some(1)).all().await.unwrap()
}

fn names(list: &[StoredBranch]) -> Vec<&str> {
    list.iter().map(|b| b.name.as_str()).collect()
}

/// Pushes, creates and deletes a branch on the host: each delivery is taken (200), the branch
/// list changes at once, and a check with reason `webhook` follows.
async fn pushes_reach_the_branch_list(b: &Berth, sim: &Sim, host: Host, full_name: &str, repo: &Repository) {
    let path = sim.repo_path(host, full_name).unwrap();
    let checks_before = b.api.check_history(repo.id, 1000).await.unwrap().len();

    let sent = sim.push_branch(host, full_name, "feature/hooked").await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].status, 200, "{sent:?}");
    let list = branch_names(b, repo.id).await;
    let added = list.iter().find(|x| x.name == "feature/hooked").unwrap_or_else(|| panic!("{list:?}"));
    assert_eq!(added.commit, berth_testkit::rev_parse(&path, "refs/heads/feature/hooked"));
    let shown = b.api.get_repository(repo.id).await.unwrap();
    assert_eq!(shown.branches.as_ref().map(|s| s.source.as_str()), Some("webhook"), "{shown:?}");
    assert!(shown.webhook.as_ref().is_some_and(|w| w.deliveries >= 1), "{shown:?}");

    let checked = eventually("a check with reason webhook", || async {
        let h = b.api.check_history(repo.id, 1000).await.unwrap();
        (h.len() > checks_before && h[0].reason == "webhook").then_some(h)
    })
    .await;
    assert!(checked[0].ok, "{:?}", checked[0]);

    let sent = sim.delete_branch(host, full_name, "feature/hooked").await;
    assert_eq!(sent.iter().map(|s| s.status).collect::<Vec<_>>(), vec![200]);
    assert!(!names(&branch_names(b, repo.id).await).contains(&"feature/hooked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_webhooks_keep_branch_lists_current_on_all_three_hosts() {
    let sim = world().await;

    // Without public_url there is nowhere to point a hook: said with its code, nothing saved.
    let plain = Berth::start_with(Options { config_toml: Some(config(&sim)), ..Options::default() }).await;
    plain.api.create_credential(&bitbucket_api_token("cloud", HOOKS_CLOUD_TOKEN)).await.unwrap();
    let req = RepositoryCreate { webhook: true, ..new_repository("app", &sim.cloud_git_url("acme/app"), "cloud") };
    let e = refused(plain.api.create_repository(&req).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::PublicUrlMissing)), "{e}");
    assert!(plain.api.list_repositories().await.unwrap().is_empty());
    assert!(sim.hooks(Host::Cloud, "acme/app").is_empty());
    plain.stop().await;

    let b = Berth::start_with(Options { config_toml: Some(config(&sim)), public_url_self: true, ..Options::default() })
        .await;
    credentials(&b).await;

    // Bitbucket Cloud: the flag at registration.
    let req =
        RepositoryCreate { webhook: true, ..new_repository("cloud-app", &sim.cloud_git_url("acme/app"), "cloud") };
    let cloud = b.api.create_repository(&req).await.unwrap();
    let hook = cloud.webhook.clone().expect("the webhook is shown");
    assert_eq!(hook.url, format!("{}/hooks/bitbucket-cloud/{}", b.base, cloud.id));
    let cloud_secret = hook_secret(&sim, Host::Cloud, "acme/app");
    let on_host = &sim.hooks(Host::Cloud, "acme/app")[0];
    assert_eq!(on_host.url, hook.url);
    assert_eq!(on_host.events, vec!["repo:push".to_owned()]);
    assert_eq!(hook.hook_id, on_host.uuid);
    // The registration's check wrote the branch list.
    assert_eq!(names(&branch_names(&b, cloud.id).await), vec!["develop", "main"]);
    let summary = cloud.branches.clone().expect("the branch list is summarised");
    assert_eq!((summary.source.as_str(), summary.branch_count), ("check", 2));
    assert_eq!(summary.remote_default_branch.as_deref(), Some("main"));

    // Data Center: registered first, the hook added afterwards (the page's button).
    let dc = b.api.create_repository(&new_repository("dc-app", &sim.dc_git_url("PROJ/app"), "dc")).await.unwrap();
    assert!(dc.webhook.is_none());
    let dc_hook = b.api.register_webhook(dc.id).await.unwrap();
    assert_eq!(b.api.status(), 201);
    assert_eq!(dc_hook.url, format!("{}/hooks/bitbucket-datacenter/{}", b.base, dc.id));
    hook_secret(&sim, Host::DataCenter, "PROJ/app");
    assert_eq!(sim.hooks(Host::DataCenter, "PROJ/app")[0].events, vec!["repo:refs_changed".to_owned()]);
    let again = refused(b.api.register_webhook(dc.id).await);
    assert_eq!(status_code(&again), (Some(409), Some(Code::WebhookExists)), "{again}");

    // GitHub: the flag again.
    let req = RepositoryCreate { webhook: true, ..new_repository("gh-app", &sim.github_git_url("octo/app"), "gh") };
    let gh = b.api.create_repository(&req).await.unwrap();
    let gh_secret = hook_secret(&sim, Host::GitHub, "octo/app");
    assert_eq!(sim.hooks(Host::GitHub, "octo/app")[0].events, vec!["push".to_owned()]);

    // Signed deliveries in each host's format move the branch lists, and a check follows.
    pushes_reach_the_branch_list(&b, &sim, Host::Cloud, "acme/app", &cloud).await;
    pushes_reach_the_branch_list(&b, &sim, Host::DataCenter, "PROJ/app", &dc).await;
    pushes_reach_the_branch_list(&b, &sim, Host::GitHub, "octo/app", &gh).await;
    // A push to an existing branch moves its commit; GitHub's payload names the default branch.
    sim.push_branch(Host::GitHub, "octo/app", "main").await;
    let main = branch_names(&b, gh.id).await.into_iter().find(|x| x.name == "main").unwrap();
    let path = sim.repo_path(Host::GitHub, "octo/app").unwrap();
    assert_eq!(main.commit, berth_testkit::rev_parse(&path, "refs/heads/main"));

    // Unsigned and wrongly signed deliveries: 401, counted on the repository and in metrics.
    let body = br#"{"ref":"refs/heads/evil","after":"1111111111111111111111111111111111111111","deleted":false}"#;
    let deliver = |sig: Option<String>, event: &'static str, body: &'static [u8]| {
        let mut req = b
            .http
            .post(format!("{}/hooks/github/{}", b.base, gh.id))
            .header("content-type", "application/json")
            .header("x-github-event", event)
            .body(body);
        if let Some(s) = sig {
            req = req.header("x-hub-signature-256", s);
        }
        req.send()
    };
    let r = deliver(None, "push", body).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "webhook_signature_invalid", "{v}");
    let r = deliver(Some(hmac_sha256("not-the-secret-at-all", body)), "push", body).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Signed with Cloud's secret: another repository's secret is a wrong one.
    let r = deliver(Some(hmac_sha256(&cloud_secret, body)), "push", body).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(!names(&branch_names(&b, gh.id).await).contains(&"evil"), "nothing changed");
    let shown = b.api.get_repository(gh.id).await.unwrap();
    assert_eq!(shown.webhook.as_ref().map(|w| w.rejected_deliveries), Some(3), "{shown:?}");
    let metrics = answer_text("the metrics", b.http.get(format!("{}/metrics", b.base)).send().await.unwrap()).await;
    assert!(metrics.contains("berth_webhook_deliveries_rejected_total 3"), "{metrics}");
    // Bitbucket Cloud and Data Center sign with `X-Hub-Signature`: unsigned, signed with another
    // secret, or signed in GitHub's header only, each is refused with 401 and counted on its
    // repository; the branch lists stay as they were.
    for (provider, repo, event) in
        [("bitbucket-cloud", &cloud, "repo:push"), ("bitbucket-datacenter", &dc, "repo:refs_changed")]
    {
        let before = names(&branch_names(&b, repo.id).await).into_iter().map(str::to_owned).collect::<Vec<_>>();
        let right = hmac_sha256(&cloud_secret, body);
        let attempts: [(Option<(&str, String)>, &str); 3] = [
            (None, "unsigned"),
            (Some(("x-hub-signature", hmac_sha256("not-the-secret-at-all", body))), "another secret"),
            (Some(("x-hub-signature-256", right.clone())), "GitHub's header"),
        ];
        for (sig, what) in attempts {
            let mut req = b
                .http
                .post(format!("{}/hooks/{provider}/{}", b.base, repo.id))
                .header("content-type", "application/json")
                .header("x-event-key", event)
                .body(&body[..]);
            if let Some((name, value)) = sig {
                req = req.header(name, value);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{provider}, {what}");
            let v: serde_json::Value = r.json().await.unwrap();
            assert_eq!(v["error"]["code"], "webhook_signature_invalid", "{provider}, {what}: {v}");
        }
        let after = names(&branch_names(&b, repo.id).await).into_iter().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(before, after, "{provider}: nothing changed");
        let shown = b.api.get_repository(repo.id).await.unwrap();
        assert_eq!(shown.webhook.as_ref().map(|w| w.rejected_deliveries), Some(3), "{provider}: {shown:?}");
    }

    // A ping signed with the right secret is taken and changes nothing.
    let ping = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#;
    let r = deliver(Some(hmac_sha256(&gh_secret, ping)), "ping", ping).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["outcome"], "ignored", "{v}");
    // A repository without a Berth hook, or another provider's path: 404.
    let r = b.http.post(format!("{}/hooks/github/{}", b.base, dc.id)).body("{}").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = b.http.post(format!("{}/hooks/github/999999", b.base)).body("{}").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // A missing scope is named: Cloud's write:webhook at registration (nothing registered),
    // GitHub's admin:repo_hook from the button.
    let req =
        RepositoryCreate { webhook: true, ..new_repository("other", &sim.cloud_git_url("acme/other"), "cloud-nohook") };
    let e = refused(b.api.create_repository(&req).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::ScopeMissing)), "{e}");
    assert!(e.to_string().contains("write:webhook:bitbucket"), "{e}");
    assert!(!b.api.list_repositories().await.unwrap().iter().any(|r| r.name == "other"), "the registration was undone");
    let site =
        b.api.create_repository(&new_repository("site", &sim.github_git_url("octo/site"), "gh-nohook")).await.unwrap();
    let e = refused(b.api.register_webhook(site.id).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::ScopeMissing)), "{e}");
    assert!(e.to_string().contains("admin:repo_hook"), "{e}");
    assert!(sim.hooks(Host::GitHub, "octo/site").is_empty());

    // The web pages (without a browser): the repository page lists the stored branches and the
    // webhook with its counts; its buttons remove and register the hook; Register has the box.
    let web = crate::harness::web::signed_in(&b).await;
    let page_path = format!("/repositories/{}", dc.id);
    let page = web.page(&page_path).await;
    assert!(page.contains("id=\"branches\"") && page.contains("<code>release</code>"), "{page}");
    assert!(page.contains(&dc_hook.url) && page.contains("id=\"webhook_remove\""), "{page}");
    let (s, _) = web.post(&format!("{page_path}/webhook/delete"), &page_path, &[]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(sim.hooks(Host::DataCenter, "PROJ/app").is_empty(), "the button removed it from the host");
    assert!(web.page(&page_path).await.contains("id=\"webhook_register\""));
    let (s, _) = web.post(&format!("{page_path}/webhook"), &page_path, &[]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    hook_secret(&sim, Host::DataCenter, "PROJ/app");
    assert!(web.page("/repositories/new").await.contains("name=\"webhook\""));

    // Removal: the button's DELETE, and with the repository.
    b.api.delete_webhook(dc.id).await.unwrap();
    assert!(sim.hooks(Host::DataCenter, "PROJ/app").is_empty());
    let e = refused(b.api.delete_webhook(dc.id).await);
    assert_eq!(status_code(&e), (Some(404), Some(Code::WebhookNotFound)), "{e}");
    // The same through the CLI, with the stored branches beside it.
    let (_session_dir, session) = crate::cli::signed_in(&b).await;
    let run = crate::cli::berth(&b, &session, &["repo", "webhook", "dc-app"], None).await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("Registered a webhook for") && run.stdout.contains("/hooks/bitbucket-datacenter/"));
    assert_eq!(sim.hooks(Host::DataCenter, "PROJ/app").len(), 1);
    let run = crate::cli::berth(&b, &session, &["repo", "stored-branches", "dc-app"], None).await;
    assert_eq!(run.code, 0, "{}", run.all());
    let listed: Vec<&str> = run.stdout.lines().skip(1).filter_map(|l| l.split_whitespace().next()).collect();
    let stored = branch_names(&b, dc.id).await;
    assert_eq!(listed, names(&stored), "{}", run.stdout);
    let run =
        crate::cli::berth(&b, &session, &["--json", "repo", "stored-branches", "dc-app", "--limit", "1"], None).await;
    let first: Vec<StoredBranch> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(first, stored[..1]);
    let run = crate::cli::berth(&b, &session, &["repo", "webhook", "dc-app", "--remove"], None).await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(sim.hooks(Host::DataCenter, "PROJ/app").is_empty());
    b.api.delete_repository(cloud.id).await.unwrap();
    assert_eq!(b.api.status(), 204);
    assert!(sim.hooks(Host::Cloud, "acme/app").is_empty(), "removed from the host with the repository");
    // When the host refuses the removal, the repository still goes and the answer says so.
    sim.update(|w| w.cred_mut(HOOKS_GITHUB_TOKEN).map(|c| c.revoked = true));
    let (status, answer, _) =
        b.raw(reqwest::Method::DELETE, &format!("/api/v1/repositories/{}", gh.id), Some(&b.token), None, None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["warnings"][0]["code"], "webhook_refused", "{answer}");
    assert!(answer["warnings"][0]["remedy"].as_str().unwrap_or("").contains("/hooks/github/"), "{answer}");
    assert_eq!(sim.hooks(Host::GitHub, "octo/app").len(), 1, "the host kept it: the answer said so");

    b.stop().await;
    sim.shutdown().await;
}
