//! Credential templates end to end: a URL prefix chooses the credential when a registration or
//! Refresh names none, longest prefix first and on whole path segments of the canonical clone
//! URL; the choice is explained (`/credential-templates/match`) and said in the credential
//! step of the check, which the history keeps; with nothing matching the finding is
//! `credential_required`, listing the nearest templates. Through the typed client and the CLI.

use crate::cli::{berth, signed_in};
use crate::harness::*;
use berth_core::{Code, CredentialKind, StepName, StepStatus};
use berth_proto::{RepositoryCreate, TemplateCreate};

fn template(prefix: &str, credential: &str) -> TemplateCreate {
    TemplateCreate { url_prefix: prefix.to_owned(), credential: credential.into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_choose_explain_and_are_remembered_in_the_history() {
    let b = Berth::start().await;
    b.api_token_credential("ci").await;
    b.api.create_credential(&new_credential("wrong", CredentialKind::AccessToken, WRONG_TOKEN)).await.unwrap();
    let git = b.git.base_url();
    // The host-wide template would send the wrong token; the longer one for `team/` wins. A
    // prefix `tea` shares the first letters of `team` but not the segment: it never matches.
    let wide = b.api.create_template(&template(&format!("{git}/git"), "wrong")).await.unwrap();
    assert_eq!(b.api.status(), 201);
    assert_eq!(wide.url_prefix, format!("{git}/git/"), "stored normalised, ending in /");
    let team = b.api.create_template(&template(&format!("git clone {git}/GIT/team/"), "ci")).await.unwrap();
    assert_eq!(team.url_prefix, format!("{git}/git/team/"));
    b.api.create_template(&template(&format!("{git}/git/tea"), "wrong")).await.unwrap();
    let listed = b.api.list_templates().await.unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0].url_prefix, team.url_prefix, "longest first: {listed:?}");
    assert_eq!(listed[0].created_by, "admin");

    // The same prefix again, in another spelling, is the same template.
    let e = refused(b.api.create_template(&template(&format!("{git}/git/team"), "wrong")).await);
    assert_eq!(status_code(&e), (Some(409), Some(Code::TemplateExists)), "{e}");
    let e = refused(b.api.create_template(&template("not a url", "ci")).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::InvalidUrl)), "{e}");
    let with_password = format!("http://jo:{URL_PASSWORD}@127.0.0.1/git/");
    let e = refused(b.api.create_template(&template(&with_password, "ci")).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::SecretInUrl)), "{e}");
    let e = refused(b.api.create_template(&template(&format!("{git}/x/"), "nobody")).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::CredentialNotFound)), "{e}");

    // The explanation: a pasted command with a user name and no `.git` is the same URL.
    let pasted = format!("git clone {}", b.git.repo_url("team/app").replace("http://", "http://jo@"));
    let m = b.api.match_template(&pasted).await.unwrap();
    assert_eq!(m.clone_url, b.git.repo_url("team/app.git"));
    assert_eq!(m.credential.as_ref().map(|c| c.name.as_str()), Some("ci"));
    assert_eq!(m.reason, format!("credential ci, chosen by template {git}/git/team/ (2 other templates considered)"));
    let whys: Vec<(&str, bool, &str)> =
        m.candidates.iter().map(|c| (c.template.url_prefix.as_str(), c.chosen, c.why.as_str())).collect();
    assert_eq!(whys[0], (team.url_prefix.as_str(), true, "the longest prefix that covers the URL"));
    assert_eq!(whys[1].0, wide.url_prefix);
    assert_eq!(whys[1].2, format!("covers the URL, but {git}/git/team/ is longer"));
    assert_eq!(whys[2].2, "the path differs at segment 2: \"team\" is not \"tea\"");

    // Refresh and registration without a credential use the template's.
    let req = berth_proto::RemoteBranchesRequest { credential: None, ..remote(&b.git.repo_url("team/app.git"), "") };
    let rb = b.api.remote_branches(&req).await.unwrap();
    assert_eq!(rb.default_branch.as_deref(), Some("trunk"));
    let cred_step = step(&rb.checks, StepName::Credential);
    assert!(cred_step.message.contains("chosen by template"), "{}", cred_step.message);
    let req = RepositoryCreate { credential: None, ..new_repository("app", &b.git.repo_url("team/app.git"), "") };
    let r = b.api.create_repository(&req).await.unwrap();
    assert_eq!(b.api.status(), 201);
    assert_eq!(r.credential.as_ref().map(|c| c.name.as_str()), Some("ci"));
    let history = b.api.check_history(r.id, 5).await.unwrap();
    let kept = step(&history[0].checks, StepName::Credential);
    let reason = format!("chosen by template {git}/git/team/ (2 other templates considered)");
    assert!(kept.message.contains(&reason), "{}", kept.message);
    assert_eq!(kept.details, [format!("credential ci, {reason}")]);
    // A re-check says it uses the credential the repository is registered with.
    let again = b.api.check_repository(r.id).await.unwrap();
    let s = step(&again.checks, StepName::Credential);
    assert!(s.message.contains("the credential the repository is registered with"), "{}", s.message);
    // So does an update that names no credential: it keeps the repository's own.
    let edit = berth_proto::RepositoryUpdate { default_branch: Some("develop".into()), ..Default::default() };
    assert_eq!(b.api.update_repository(r.id, &edit).await.unwrap().credential.map(|c| c.name).as_deref(), Some("ci"));
    let h = b.api.check_history(r.id, 1).await.unwrap();
    let s = step(&h[0].checks, StepName::Credential);
    assert!(s.message.contains("the credential the repository is registered with"), "{}", s.message);
    // Naming one is said too.
    let named = b.api.create_repository(&new_repository("lib", &b.git.repo_url("team/lib.git"), "ci")).await.unwrap();
    let h = b.api.check_history(named.id, 1).await.unwrap();
    assert!(step(&h[0].checks, StepName::Credential).message.contains("chosen explicitly"));

    // Nothing covers a URL outside /git/: Berth tries anonymous access. The host answers 404
    // (as hosts that hide private repositories do): no credential is blamed, and the nearest
    // templates are named.
    let outside = format!("{git}/elsewhere/app.git");
    let req = RepositoryCreate { credential: None, ..new_repository("x", &outside, "") };
    let e = refused(b.api.create_repository(&req).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::RepositoryNotFoundOrNoAccess)), "{e}");
    let cred = step(e.checks(), StepName::Credential);
    assert_eq!(cred.status, StepStatus::Pass);
    assert!(cred.message.contains("anonymous access"), "{}", cred.message);
    assert!(cred.message.contains("none of the 3 credential templates covers"), "{}", cred.message);
    let failed = step(e.checks(), StepName::GitDiscovery);
    assert_eq!((failed.status, failed.code), (StepStatus::Fail, Code::RepositoryNotFoundOrNoAccess));
    assert!(failed.message.contains("hidden from anonymous callers"), "{}", failed.message);
    assert!(!failed.message.contains("this credential"), "{}", failed.message);
    assert!(failed.details.iter().any(|d| d.contains(&wide.url_prefix)), "{:?}", failed.details);
    assert!(failed.remedy.contains("berth template add"), "{}", failed.remedy);
    assert!(e.checks().iter().all(|s| s.code != Code::AuthFailed));
    let m = b.api.match_template(&outside).await.unwrap();
    assert!(m.credential.is_none() && m.template.is_none(), "{m:?}");
    assert!(m.reason.starts_with("no template covers"), "{}", m.reason);
    assert!(m.reason.contains("anonymous access"), "{}", m.reason);

    // A credential a template uses cannot be deleted; the template can, and is audited.
    let ids: Vec<i64> =
        b.api.list_credentials().await.unwrap().iter().filter(|c| c.name == "wrong").map(|c| c.id).collect();
    let e = refused(b.api.delete_credential(ids[0]).await);
    assert_eq!(status_code(&e), (Some(409), Some(Code::CredentialInUse)), "{e}");
    assert!(e.message().contains(&wide.url_prefix), "{e}");
    let gone = b.api.delete_template(wide.id).await.unwrap();
    assert_eq!(gone.id, wide.id);
    let e = refused(b.api.delete_template(wide.id).await);
    assert_eq!(status_code(&e), (Some(404), Some(Code::TemplateNotFound)), "{e}");
    let audit = b.api.audit(None, Some(50)).await.unwrap();
    assert!(audit.iter().any(|a| a.action == "template.delete" && a.target_name == wide.url_prefix), "{audit:?}");
    assert!(audit.iter().any(|a| a.action == "template.create"));
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_style_urls_match_their_https_template_and_segments_are_whole() {
    let b = Berth::start().await;
    b.api_token_credential("acme-bot").await;
    b.api_token_credential("corp-bot").await;
    b.api.create_template(&template("https://bitbucket.org/acme/", "acme-bot")).await.unwrap();
    b.api.create_template(&template("git@bitbucket.org:acmecorp", "corp-bot")).await.unwrap();
    for (url, want) in [
        ("git@bitbucket.org:acme/app.git", Some("acme-bot")),
        ("ssh://git@bitbucket.org/ACME/app", Some("acme-bot")),
        ("git clone https://jo@bitbucket.org/acme/app/", Some("acme-bot")),
        ("https://bitbucket.org/acmecorp/app.git", Some("corp-bot")),
        ("https://bitbucket.org/acmecorporation/app.git", None),
        ("https://github.com/acme/app.git", None),
    ] {
        let m = b.api.match_template(url).await.unwrap();
        assert_eq!(m.credential.as_ref().map(|c| c.name.as_str()), want, "{url}: {m:?}");
    }
    let listed = b.api.list_templates().await.unwrap();
    assert!(listed.iter().any(|t| t.url_prefix == "https://bitbucket.org/acmecorp/"), "{listed:?}");
    // A viewer may read the explanation but not add or delete templates.
    crate::roles::add_user(&b, "vera", VIEWER_PASSWORD, "viewer").await;
    let viewer = Api::login(&b.base, "vera", VIEWER_PASSWORD).await;
    let m = viewer.match_template("git@bitbucket.org:acme/app.git").await.unwrap();
    assert_eq!(m.credential.map(|c| c.name).as_deref(), Some("acme-bot"));
    let e = refused(viewer.create_template(&template("https://github.com/acme/", "acme-bot")).await);
    assert_eq!(status_code(&e), (Some(403), Some(Code::Forbidden)), "{e}");
    let e = refused(viewer.delete_template(listed[0].id).await);
    assert_eq!(status_code(&e), (Some(403), Some(Code::Forbidden)), "{e}");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_adds_lists_matches_and_removes_templates() {
    let b = Berth::start().await;
    b.api_token_credential("ci").await;
    let (_dir, session) = signed_in(&b).await;
    let git = b.git.base_url();
    let prefix = format!("{git}/git/team/");
    let add = berth(&b, &session, &["template", "add", &prefix, "--credential", "ci"], None).await;
    assert_eq!(add.code, 0, "{}", add.all());
    assert!(add.stdout.contains("Added template"), "{}", add.stdout);
    let list = berth(&b, &session, &["template", "list"], None).await;
    assert_eq!(list.code, 0, "{}", list.all());
    assert!(list.stdout.contains("URL PREFIX") && list.stdout.contains(&prefix), "{}", list.stdout);
    let m = berth(&b, &session, &["template", "match", "git", "clone", &b.git.repo_url("team/app.git")], None).await;
    assert_eq!(m.code, 0, "{}", m.all());
    assert!(m.stdout.contains(&format!("credential ci, chosen by template {prefix}")), "{}", m.stdout);
    let m = berth(&b, &session, &["--json", "template", "match", &b.git.repo_url("team/app.git")], None).await;
    let v: serde_json::Value = serde_json::from_str(&m.stdout).unwrap();
    assert_eq!(v["credential"]["name"], "ci", "{v}");
    // `repo add` without --credential registers through the template.
    let add =
        berth(&b, &session, &["repo", "add", "--name", "app", "--url", &b.git.repo_url("team/app.git")], None).await;
    assert_eq!(add.code, 0, "{}", add.all());
    assert!(add.stdout.contains("chosen by template"), "{}", add.stdout);
    // Outside every prefix: the check goes anonymously and the host answers 404, exit 1.
    let outside = format!("{git}/elsewhere/x.git");
    let fail = berth(&b, &session, &["repo", "add", "--name", "x", "--url", &outside], None).await;
    assert_eq!(fail.code, 1, "{}", fail.all());
    assert!(fail.all().contains("repository_not_found_or_no_access"), "{}", fail.all());
    assert!(fail.all().contains("anonymous access"), "{}", fail.all());
    let rm = berth(&b, &session, &["template", "rm", &prefix], None).await;
    assert_eq!(rm.code, 0, "{}", rm.all());
    let rm = berth(&b, &session, &["template", "rm", &prefix], None).await;
    assert_eq!(rm.code, 3, "{}", rm.all());
    assert!(rm.all().contains("template_not_found"), "{}", rm.all());
    b.stop().await;
}

/// Chromium: templates on the Credentials page (add, the explanation box, delete), and Register
/// Repository's "Choose by template" with the script's Refresh, at desktop and phone width.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_manages_explains_and_registers_through_templates() {
    use crate::harness::browser::Browser;
    let berth = Berth::start().await;
    berth.api_token_credential("ci").await;
    let base = berth.base.clone();
    let prefix = format!("{}/git/team/", berth.git.base_url());
    let b = Browser::start("templates").await;
    b.sign_in(&base, "admin", ADMIN_PASSWORD).await;
    b.goto(&format!("{base}/credentials")).await;
    b.find("#no_templates").await;
    b.fill("#url_prefix", &format!("git clone {prefix}")).await;
    b.click("#add_template").await;
    // Each form posts and loads a new page: wait for the new page's words, not the old page's.
    b.until("the template is added", &flash_has("Added credential template")).await;
    let flash = b.text("#flash").await;
    assert!(flash.contains(&format!("Added credential template {prefix}")), "{flash}");
    assert!(b.text("#template_list").await.contains(&prefix));
    // A refused prefix says why.
    b.fill("#url_prefix", "acme").await;
    b.click("#add_template").await;
    b.until("the prefix is refused", &flash_has("invalid_url")).await;
    // The explanation box.
    b.fill("#match_url", &berth.git.repo_url("team/app.git")).await;
    b.click("#match_button").await;
    b.until("the choice is explained", "return !!document.getElementById('match_result')").await;
    let why = b.text("#match_result").await;
    assert!(why.contains("Credential ci, chosen by template") && why.contains("longest prefix"), "{why}");
    b.shot_full("01-credentials-with-templates").await;
    b.c.set_window_size(390, 844).await.unwrap();
    b.shot_full("02-credentials-with-templates-phone").await;
    b.c.set_window_size(1366, 900).await.unwrap();

    // Register Repository: "Choose by template" is the default; Refresh and Register use it.
    b.goto(&format!("{base}/repositories/new")).await;
    b.find("#register_form").await;
    assert_eq!(b.find("#credential option:checked").await.text().await.unwrap(), "Choose by template");
    b.fill("#name", "app").await;
    b.fill("#clone_url", &berth.git.repo_url("team/app.git")).await;
    b.click("#refresh").await;
    b.until("Refresh listed the branches", "return !document.getElementById('default_branch').disabled").await;
    assert_eq!(b.value("#default_branch").await, "trunk");
    let hint = b.text("#branch_hint").await;
    assert!(hint.contains(&format!("Used credential ci, chosen by template {prefix}")), "{hint}");
    b.shot("03-register-by-template").await;
    b.c.set_window_size(390, 844).await.unwrap();
    b.shot_full("04-register-by-template-phone").await;
    b.c.set_window_size(1366, 900).await.unwrap();
    b.click("#register").await;
    b.find("#repos").await;
    let r = berth.api.list_repositories().await.unwrap();
    assert_eq!(r[0].credential.as_ref().map(|c| c.name.as_str()), Some("ci"));

    // Delete the template from the list.
    b.goto(&format!("{base}/credentials")).await;
    b.click(&format!("button[aria-label='Delete template {prefix}']")).await;
    b.until("the template is deleted", &flash_has("Deleted credential template")).await;
    b.find("#no_templates").await;
    b.close().await;
    berth.stop().await;
}

/// JavaScript for `Browser::until`: the page's flash message contains `text`.
fn flash_has(text: &str) -> String {
    format!("const f = document.getElementById('flash'); return !!f && f.textContent.includes({text:?});")
}
