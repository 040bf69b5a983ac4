//! Bulk imports end to end: Berth lists a Bitbucket Cloud workspace, a Data Center project and a
//! GitHub organisation or user on the simulator (several pages each, a rate limit in the middle),
//! marks what is registered already, and registers a selection in the background through the
//! registration checks, each with its own verdict. Through the API (`ApiClient`) and the CLI.

use crate::harness::browser::Browser;
use crate::harness::*;
use berth_core::{Code, Provider};
use berth_proto::{Import, ImportCreate, ImportRegister, TemplateCreate};
use berth_testkit::sim::{Cred, DcProject, Host, Perm, RateLimit, RepoSpec, Sim, User, Workspace};

/// Each host answers at most this many repositories a page, so a dozen make several pages.
const PAGE_CAP: usize = 5;

fn scopes() -> Vec<&'static str> {
    let mut v = berth_core::credential::FULL_SCOPES.to_vec();
    v.push("read:user:bitbucket");
    v
}

async fn start() -> (Sim, Berth) {
    let mut b = Sim::builder()
        .user(User::new("jo", "jo@example.com", "Jo Doe"))
        .cloud_workspace(Workspace::new("fleet", "Fleet"))
        .grant(Host::Cloud, "jo", "fleet", Perm::Write)
        .credential(Cred::api_token("jo", SIM_GOOD, &scopes()))
        .cloud_repo("fleet/empty", RepoSpec::empty())
        // HEAD names a branch that does not exist: registration without a branch must fail.
        .cloud_repo("fleet/dangling", RepoSpec::new(&["main"]).default_branch("gone"))
        .dc_project(DcProject::new("BIG", "Big"))
        .grant(Host::DataCenter, "jo", "BIG", Perm::Read)
        .credential(Cred::dc_personal_token("jo", SIM_DC_TOKEN, &["REPO_READ"]))
        .dc_project(DcProject::new("SHUT", "Shut"))
        .dc_repo("SHUT/closed", RepoSpec::new(&["main"]))
        .grant(Host::GitHub, "jo", "octo-org", Perm::Read)
        .credential(Cred::github_classic("jo", SIM_GITHUB_TOKEN, &["repo", "read:user"]))
        .github_repo("jo/public-tool", RepoSpec::new(&["main"]).public())
        .github_repo("jo/private-notes", RepoSpec::new(&["main"]))
        .with_world(|w| w.list_page_cap = PAGE_CAP);
    for i in 0..12 {
        b = b.cloud_repo(&format!("fleet/svc-{i:02}"), RepoSpec::new(&["main"]));
    }
    for i in 0..7 {
        b = b.dc_repo(&format!("BIG/lib-{i}"), RepoSpec::new(&["master"]).default_branch("master"));
    }
    for i in 0..6 {
        b = b.github_repo(&format!("octo-org/tool-{i}"), RepoSpec::new(&["main"]));
    }
    let sim = b.start().await;
    let config = format!(
        "[[integrations]]\nhost = \"127.0.0.1:{}\"\nprovider = \"bitbucket-cloud\"\napi_url = \"{}\"\n\n\
         [[integrations]]\nhost = \"127.0.0.1:{}\"\nprovider = \"bitbucket-datacenter\"\napi_url = \"{}\"\n\n\
         [[integrations]]\nhost = \"127.0.0.1:{}\"\nprovider = \"github\"\napi_url = \"{}\"\n",
        sim.cloud_port(),
        sim.cloud_api_url(),
        sim.dc_port(),
        sim.dc_api_url(),
        sim.github_port(),
        sim.github_api_url(),
    );
    let b = Berth::start_with(Options { config_toml: Some(config), ..Options::default() }).await;
    b.api.create_credential(&bitbucket_api_token("bb", SIM_GOOD)).await.unwrap();
    b.api
        .create_credential(&new_credential("dc", berth_core::CredentialKind::AccessToken, SIM_DC_TOKEN))
        .await
        .unwrap();
    b.api
        .create_credential(&new_credential("gh", berth_core::CredentialKind::AccessToken, SIM_GITHUB_TOKEN))
        .await
        .unwrap();
    (sim, b)
}

fn source(source: String, credential: &str) -> ImportCreate {
    ImportCreate { source, credential: Some(credential.into()) }
}

/// Polls the import until every selected repository has an outcome; checks on the way that
/// the counts only grow and never pass the total.
async fn finished(b: &Berth, id: i64) -> Import {
    let mut last_done = 0;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let imp = b.api.get_import(id).await.unwrap();
        assert!(imp.done >= last_done && imp.done <= imp.total, "progress {} of {}", imp.done, imp.total);
        assert_eq!(imp.done, imp.registered + imp.failed + imp.skipped);
        last_done = imp.done;
        if imp.finished() {
            return imp;
        }
        assert!(tokio::time::Instant::now() < deadline, "the import did not finish: {imp:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn item<'a>(imp: &'a Import, full_name: &str) -> &'a berth_proto::ImportItem {
    imp.repositories.iter().find(|r| r.full_name == full_name).unwrap_or_else(|| panic!("{full_name} not listed"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloud_workspace_is_listed_across_pages_and_a_rate_limit_and_registered_with_partial_failures() {
    let (sim, b) = start().await;
    // Registered before the import, under the name the next slug would want.
    let pre =
        b.api.create_repository(&new_repository("svc-01", &sim.cloud_git_url("fleet/svc-00"), "bb")).await.unwrap();

    // The listing's third page meets the rate limit; Berth waits the Retry-After and goes on.
    sim.reset_rate_limits();
    sim.update(|w| w.cloud.rest_limit = RateLimit { budget: 2, window_secs: 2, retry_after: true });
    sim.clear_requests();
    let imp = b.api.create_import(&source(format!("{}/fleet/", sim.cloud_url()), "bb")).await.unwrap();
    assert_eq!(b.api.status(), 201);
    let listing: Vec<_> =
        sim.requests(Host::Cloud).into_iter().filter(|r| r.path == "/2.0/repositories/fleet").collect();
    assert!(listing.iter().any(|r| r.status == 429), "no rate limit met: {listing:?}");
    assert_eq!(listing.iter().filter(|r| r.status == 200).count(), 3, "14 repositories in pages of {PAGE_CAP}");
    sim.update(|w| w.cloud.rest_limit = RateLimit::per_hour(1000));

    assert_eq!((imp.listed, imp.total, imp.provider), (14, 0, Provider::BitbucketCloud));
    assert_eq!(imp.source, format!("{}/fleet", sim.cloud_url()));
    assert_eq!(imp.state, "listed");
    let marked = item(&imp, "fleet/svc-00");
    assert_eq!(marked.already_registered.as_ref().map(|r| r.id), Some(pre.id));
    assert_eq!((marked.status.as_str(), marked.code), ("skipped", Some(Code::AlreadyRegistered)));
    assert_eq!(item(&imp, "fleet/svc-03").status, "pending");

    let started = b.api.register_import(imp.id, &ImportRegister { all: true, ..Default::default() }).await.unwrap();
    assert_eq!(b.api.status(), 202);
    assert_eq!((started.total, started.state.as_str()), (14, "registering"));

    let done = finished(&b, imp.id).await;
    assert_eq!((done.registered, done.failed, done.skipped), (12, 1, 1), "{:#?}", done.repositories);
    let dangling = item(&done, "fleet/dangling");
    assert_eq!((dangling.status.as_str(), dangling.code), ("failed", Some(Code::DefaultBranchMissing)));
    assert!(dangling.message.is_some() && dangling.remedy.as_deref().is_some_and(|r| !r.is_empty()));
    assert!(dangling.repository.is_none());
    assert_eq!(item(&done, "fleet/empty").status, "registered", "an empty repository registers (its HEAD is unborn)");
    // Names come from the slug and stay unique.
    let renamed = item(&done, "fleet/svc-01");
    assert_eq!((renamed.status.as_str(), renamed.name.as_str()), ("registered", "svc-01-2"));
    let repo = b.api.get_repository(renamed.repository.as_ref().unwrap().id).await.unwrap();
    assert_eq!((repo.name.as_str(), repo.default_branch.as_str()), ("svc-01-2", "main"));
    assert_eq!(repo.credential.as_ref().map(|c| c.name.as_str()), Some("bb"));
    assert_eq!(item(&done, "fleet/svc-07").name, "svc-07");

    // Registering again changes nothing that is done; the failure is tried again and fails again.
    b.api
        .register_import(imp.id, &ImportRegister { repositories: vec!["fleet/dangling".into()], all: false })
        .await
        .unwrap();
    let again = finished(&b, imp.id).await;
    assert_eq!((again.registered, again.failed, again.skipped), (12, 1, 1));

    // Every registration is audited as one registration, and the import itself too.
    let audit = b.api.audit(None, Some(200)).await.unwrap();
    assert_eq!(audit.iter().filter(|e| e.action == "repository.register").count(), 13);
    assert!(audit.iter().any(|e| e.action == "import.create" && e.detail.contains("14 repositories listed")));
    assert!(audit.iter().any(|e| e.action == "import.register"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_datacenter_project_registers_a_selection_and_refuses_names_it_did_not_list() {
    let (sim, b) = start().await;
    let src = format!("{}/projects/big/repos", sim.dc_url());
    let imp = b.api.create_import(&source(src, "dc")).await.unwrap();
    assert_eq!((imp.listed, imp.provider), (7, Provider::BitbucketDatacenter));
    assert_eq!(imp.source, format!("{}/projects/BIG", sim.dc_url()));
    let pages = sim.requests(Host::DataCenter).iter().filter(|r| r.path.ends_with("/projects/BIG/repos")).count();
    assert_eq!(pages, 2, "7 repositories in pages of {PAGE_CAP}");

    let e = refused(
        b.api.register_import(imp.id, &ImportRegister { repositories: vec!["BIG/nope".into()], all: false }).await,
    );
    assert_eq!(status_code(&e), (Some(422), Some(Code::InvalidInput)));
    assert!(e.to_string().contains("BIG/nope"), "{e}");
    let e = refused(b.api.register_import(imp.id, &ImportRegister::default()).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::InvalidInput)));

    let pick = ImportRegister { repositories: vec!["BIG/lib-2".into(), "big/LIB-5".into()], all: false };
    b.api.register_import(imp.id, &pick).await.unwrap();
    let done = finished(&b, imp.id).await;
    assert_eq!((done.total, done.registered, done.failed), (2, 2, 0));
    assert_eq!(item(&done, "BIG/lib-2").status, "registered");
    assert_eq!(item(&done, "BIG/lib-3").status, "pending");
    let r = b.api.get_repository(item(&done, "BIG/lib-5").repository.as_ref().unwrap().id).await.unwrap();
    assert_eq!((r.name.as_str(), r.default_branch.as_str()), ("lib-5", "master"));

    // A project the token sees nothing of, one that does not exist, and a rate limit.
    let e = refused(b.api.create_import(&source(format!("{}/projects/SHUT", sim.dc_url()), "dc")).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::AccessDenied)));
    let e = refused(b.api.create_import(&source(format!("{}/projects/NOPE", sim.dc_url()), "dc")).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::ImportSourceNotFound)));
    sim.reset_rate_limits();
    sim.update(|w| w.dc_rest_limit = RateLimit { budget: 1, window_secs: 3600, retry_after: true });
    let e = refused(b.api.create_import(&source(format!("{}/projects/BIG", sim.dc_url()), "dc")).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::RateLimited)));
    assert!(e.to_string().contains("wait"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_organisations_and_users_are_listed_and_rate_limits_answer_with_the_reset() {
    let (sim, b) = start().await;
    let org = b.api.create_import(&source(format!("{}/octo-org", sim.github_url()), "gh")).await.unwrap();
    assert_eq!((org.listed, org.provider), (6, Provider::Github));
    let pages: Vec<_> =
        sim.requests(Host::GitHub).into_iter().filter(|r| r.path == "/api/v3/orgs/octo-org/repos").collect();
    assert_eq!(pages.len(), 2, "6 repositories in pages of {PAGE_CAP}, by the Link header");
    b.api.register_import(org.id, &ImportRegister { all: true, ..Default::default() }).await.unwrap();
    let done = finished(&b, org.id).await;
    assert_eq!((done.registered, done.failed), (6, 0), "{:#?}", done.repositories);

    // A user, not an organisation: GitHub lists the user's public repositories.
    let user = b.api.create_import(&source(format!("{}/jo", sim.github_url()), "gh")).await.unwrap();
    let names: Vec<&str> = user.repositories.iter().map(|r| r.full_name.as_str()).collect();
    assert_eq!(names, ["jo/public-tool"]);

    // GitHub's primary rate limit: 403 with x-ratelimit-remaining: 0 and the reset time.
    sim.reset_rate_limits();
    sim.update(|w| w.github_rest_limit = RateLimit { budget: 1, window_secs: 600, retry_after: false });
    let e = refused(b.api.create_import(&source(format!("{}/octo-org", sim.github_url()), "gh")).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::RateLimited)));
    let step = &e.api().unwrap().checks[0];
    assert!(step.details.iter().any(|d| d.starts_with("retry after")), "{:?}", step.details);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_import_requests_get_stable_codes() {
    let (sim, b) = start().await;
    for (src, code) in [
        ("not a url".to_owned(), Code::InvalidImportSource),
        (format!("{}/fleet/svc-00", sim.cloud_url()), Code::InvalidImportSource),
        ("https://gitlab.com/group".to_owned(), Code::InvalidImportSource),
        (format!("http://jo:{SIM_GOOD}@127.0.0.1:{}/fleet", sim.cloud_port()), Code::SecretInUrl),
        (format!("{}/no-such-workspace", sim.cloud_url()), Code::ImportSourceNotFound),
    ] {
        let e = refused(b.api.create_import(&source(src.clone(), "bb")).await);
        assert_eq!(status_code(&e), (Some(422), Some(code)), "{src}: {e}");
        assert!(!e.to_string().contains(SIM_GOOD));
    }
    let e = refused(
        b.api.create_import(&ImportCreate { source: format!("{}/fleet", sim.cloud_url()), credential: None }).await,
    );
    assert_eq!(status_code(&e), (Some(422), Some(Code::CredentialRequired)));
    // A template covering the workspace's clone URLs chooses the credential instead.
    b.api
        .create_template(&TemplateCreate { url_prefix: format!("{}/fleet/", sim.cloud_url()), credential: "bb".into() })
        .await
        .unwrap();
    let chosen =
        b.api.create_import(&ImportCreate { source: format!("{}/fleet", sim.cloud_url()), credential: None }).await.unwrap();
    assert_eq!(chosen.credential.as_ref().map(|c| c.name.as_str()), Some("bb"));
    assert!(chosen.listed > 0, "{chosen:?}");
    let e = refused(b.api.create_import(&source(format!("{}/fleet", sim.cloud_url()), "nope")).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::CredentialNotFound)));
    b.api.create_credential(&bitbucket_api_token("wrong", SIM_CLASSIC)).await.unwrap();
    let e = refused(b.api.create_import(&source(format!("{}/fleet", sim.cloud_url()), "wrong")).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::AuthFailed)));
    let e = refused(b.api.get_import(987_654).await);
    assert_eq!(status_code(&e), (Some(404), Some(Code::ImportNotFound)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_selects_registers_and_exits_1_on_a_failure() {
    use crate::cli::{berth, signed_in};
    let (sim, b) = start().await;
    let (_dir, session) = signed_in(&b).await;
    let src = format!("{}/fleet", sim.cloud_url());

    // No choice: the listing only, nothing registered.
    let run = berth(&b, &session, &["repo", "import", &src, "--credential", "bb"], None).await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains("fleet/svc-11") && run.stdout.contains("choose with --all or --select"),
        "{}",
        run.stdout
    );

    let run = berth(
        &b,
        &session,
        &["repo", "import", &src, "--credential", "bb", "--select", "fleet/svc-0*", "--dry-run"],
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("10 of 14 listed repositories would be registered"), "{}", run.stdout);

    // A selection that all registers: exit 0, a summary table; stderr is no terminal, so no bar.
    let run =
        berth(&b, &session, &["repo", "import", &src, "--credential", "bb", "--select", "FLEET/SVC-0?"], None).await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("10 registered, 0 failed, 0 skipped of 10 selected (14 listed)"), "{}", run.stdout);
    assert!(run.stderr.trim().is_empty(), "{}", run.stderr);

    // --all with --json: the import as the API answers it; the dangling HEAD fails, so exit 1.
    let run = berth(&b, &session, &["--json", "repo", "import", &src, "--credential", "bb", "--all"], None).await;
    assert_eq!(run.code, 1, "{}", run.all());
    let imp: Import = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!((imp.registered, imp.failed, imp.skipped), (3, 1, 10), "{:#?}", imp.repositories);
    assert_eq!(item(&imp, "fleet/dangling").code, Some(Code::DefaultBranchMissing));

    // A pattern that matches nothing is a usage error.
    let run = berth(&b, &session, &["repo", "import", &src, "--credential", "bb", "--select", "nope/*"], None).await;
    assert_eq!(run.code, 2, "{}", run.all());
}

/// The import page in Chromium: list, filter and tick, register, watch the bar, read the
/// summary with the failure's finding; at desktop and phone width (screenshots `import-*`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_import_page_lists_ticks_shows_progress_and_the_failures() {
    let (sim, berth) = start().await;
    let base = berth.base.clone();
    let b = Browser::start("import").await;
    b.sign_in(&base, "admin", ADMIN_PASSWORD).await;
    b.click("#import_link").await;
    b.find("#import_form").await;
    b.c.execute(
        "const s = document.getElementById('credential'); \
         for (const o of s.options) { if (o.text.startsWith('bb ')) s.value = o.value; }",
        vec![],
    )
    .await
    .unwrap();
    b.fill("#source", &format!("{}/fleet", sim.cloud_url())).await;
    b.shot("01-form").await;
    b.click("#list_repos").await;
    b.find("#import_list").await;
    assert_eq!(b.c.find_all(fantoccini::Locator::Css("#import_list tbody tr")).await.unwrap().len(), 14);
    b.shot_full("02-listed").await;

    // The filter narrows the rows; All ticks the rows shown only.
    b.fill("#pick_filter", "svc-0").await;
    b.until("the filter hides rows", "return document.querySelectorAll('#import_list tr[hidden]').length === 4").await;
    b.click("#pick_all").await;
    b.c.execute(
        "const f = document.getElementById('pick_filter'); f.value = ''; f.dispatchEvent(new Event('input'));",
        vec![],
    )
    .await
    .unwrap();
    b.click("input[value='fleet/dangling']").await;
    let ticked =
        b.c.execute("return document.querySelectorAll('#import_list input:checked').length", vec![]).await.unwrap();
    assert_eq!(ticked.as_u64(), Some(11));
    b.click("#register_selected").await;
    b.find("#import_progress").await;
    b.shot("03-progress").await;
    b.until(
        "the import finishes and the page shows the summary",
        "const s = document.getElementById('import_progress'); return !!s && s.getAttribute('data-state') === 'done'",
    )
    .await;
    let failures = b.text("#import_failures").await;
    assert!(failures.contains("fleet/dangling") && failures.contains("default_branch_missing"), "{failures}");
    assert!(b.text("#import_status").await.contains("10 registered, 1 failed"), "{}", b.text("#import_status").await);
    b.shot_full("04-summary").await;

    b.c.set_window_size(390, 844).await.unwrap();
    b.shot_full("05-summary-phone").await;
    let sideways =
        b.c.execute("return document.documentElement.scrollWidth > window.innerWidth", vec![]).await.unwrap();
    assert_eq!(sideways.as_bool(), Some(false), "the summary scrolls sideways on a phone");
    b.goto(&format!("{base}/imports/new")).await;
    b.shot("06-form-phone").await;
    b.close().await;
}
