//! Configuration as code end to end: `POST /api/v1/config/apply` plans (dry run), applies,
//! changes nothing the second time, prunes in dependency order and reports a failing
//! registration with its finding while the rest go on; `GET /api/v1/config/export` writes
//! references, and applying the export changes nothing. Secrets never appear in a plan, an
//! answer or the audit log (the harness scans every answer; the audit is read here). Then the
//! same through `berth apply` and `berth export` with a YAML file.

use crate::cli::{berth_with, signed_in, With};
use crate::harness::*;
use berth_core::{Code, CredentialKind};
use berth_proto::{
    ConfigApply, ConfigCredential, ConfigDocument, ConfigPlan, ConfigRepository, ConfigTemplate, SecretRef,
};
use std::collections::BTreeMap;

fn ci_credential() -> ConfigCredential {
    ConfigCredential {
        name: "ci".into(),
        kind: CredentialKind::BitbucketApiToken,
        username: None,
        email: Some("jo@example.com".into()),
        host: None,
        expires_on: None,
        scopes: vec!["read:repository:bitbucket".into()],
        app_id: None,
        installation_id: None,
        secret: SecretRef::Env("CI_TOKEN".into()),
    }
}

fn repo(name: &str, url: String, credential: Option<&str>, branch: Option<&str>) -> ConfigRepository {
    ConfigRepository {
        name: name.into(),
        clone_url: url,
        credential: credential.map(str::to_owned),
        anonymous: false,
        default_branch: branch.map(str::to_owned),
    }
}

fn apply(document: &ConfigDocument, secret: &str, dry_run: bool, prune: bool) -> ConfigApply {
    let secrets = BTreeMap::from([("ci".to_owned(), secret.to_owned())]);
    ConfigApply { document: document.clone(), secrets, dry_run, prune }
}

/// `action kind name status` of every change, for one assertion.
fn summary(p: &ConfigPlan) -> Vec<String> {
    p.changes.iter().map(|c| format!("{} {} {} {}", c.action, c.kind, c.name, c.status)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_plans_applies_is_idempotent_prunes_and_never_shows_a_secret() {
    let b = Berth::start().await;
    let prefix = format!("{}/git/team/", b.git.base_url());
    let mut doc = ConfigDocument {
        credentials: vec![ci_credential()],
        templates: vec![ConfigTemplate { url_prefix: prefix.clone(), credential: "ci".into() }],
        repositories: vec![
            repo("app", b.git.repo_url("team/app.git"), Some("ci"), None),
            // No credential: the template chooses.
            repo("lib", b.git.repo_url("team/lib.git"), None, Some("main")),
            repo("typo", b.git.repo_url("team/app.git").replace("app.git", "empty.git"), Some("ci"), Some("nope")),
        ],
    };

    // A dry run plans everything and changes nothing.
    let plan = b.api.apply_config(&apply(&doc, TOKEN, true, false)).await.unwrap();
    assert!(plan.dry_run);
    assert_eq!(
        summary(&plan),
        [
            "create credential ci planned",
            &format!("create template {prefix} planned"),
            "create repository app planned",
            "create repository lib planned",
            "create repository typo planned",
        ]
    );
    assert!(b.api.list_credentials().await.unwrap().is_empty());
    assert!(b.api.list_templates().await.unwrap().is_empty());

    // Applied: the failing registration is reported with its finding, the rest are made.
    let done = b.api.apply_config(&apply(&doc, TOKEN, false, false)).await.unwrap();
    assert_eq!(done.failed, 1, "{done:?}");
    let typo = done.changes.iter().find(|c| c.name == "typo").unwrap();
    assert_eq!(typo.status, "failed");
    let err = typo.error.as_ref().unwrap();
    assert_eq!(err.code, Code::BranchNotFound, "{err:?}");
    assert!(!err.checks.is_empty());
    assert_eq!(done.changes.iter().filter(|c| c.status == "done").count(), 4, "{done:?}");
    let repos = b.api.list_repositories().await.unwrap();
    let lib = repos.iter().find(|r| r.name == "lib").unwrap();
    assert_eq!(lib.credential.as_ref().map(|c| c.name.as_str()), Some("ci"), "chosen by the template");

    // The same document again (without the repository that cannot work) changes nothing.
    doc.repositories.retain(|r| r.name != "typo");
    let again = b.api.apply_config(&apply(&doc, TOKEN, false, false)).await.unwrap();
    assert!(again.changes.is_empty(), "{:?}", summary(&again));
    assert_eq!(again.unchanged, 4);

    // A new secret is an update of the field `secret`, never its value.
    let rotated = b.api.apply_config(&apply(&doc, ROTATED_SECRET, true, false)).await.unwrap();
    assert_eq!(summary(&rotated), ["update credential ci planned"]);
    assert_eq!(rotated.changes[0].fields, ["secret"]);
    assert!(!b.api.body().contains(ROTATED_SECRET));

    // Export, then apply the export: no change.
    let exported = b.api.export_config().await.unwrap();
    assert_eq!(exported.credentials[0].secret, SecretRef::Env("BERTH_SECRET_CI".into()));
    assert!(!b.api.body().contains(TOKEN));
    let round = b.api.apply_config(&apply(&exported, TOKEN, true, false)).await.unwrap();
    assert!(round.changes.is_empty(), "{:?}", summary(&round));
    assert_eq!(round.unchanged, 4);

    // Prune: what the document no longer names goes, repositories before templates.
    let mut smaller = doc.clone();
    smaller.repositories.retain(|r| r.name == "app");
    smaller.templates.clear();
    let pruned = b.api.apply_config(&apply(&smaller, TOKEN, false, true)).await.unwrap();
    assert_eq!(summary(&pruned), ["delete repository lib done", &format!("delete template {prefix} done")]);
    // Without --prune nothing is deleted.
    let empty = ConfigDocument::default();
    let kept = b.api.apply_config(&apply(&empty, TOKEN, true, false)).await.unwrap();
    assert!(kept.changes.is_empty());
    // Pruning everything deletes the repository before the credential it uses.
    let all = b.api.apply_config(&apply(&empty, TOKEN, false, true)).await.unwrap();
    assert_eq!(summary(&all), ["delete repository app done", "delete credential ci done"]);

    // One audit entry per apply naming its change set; each change's entry names it too.
    let audit = b.api.audit(None, Some(200)).await.unwrap();
    let sets: Vec<_> = audit.iter().filter(|a| a.action == "config.apply").collect();
    assert_eq!(sets.len(), 4, "dry runs are not audited: {sets:?}");
    let first = sets.iter().find(|a| a.target_name == done.change_set).unwrap();
    assert!(first.detail.contains("create repository typo (failed)"), "{}", first.detail);
    let linked = audit.iter().filter(|a| a.detail.contains(&format!("change set {}", done.change_set))).count();
    assert!(linked >= 4, "{audit:?}");
    let text = serde_json::to_string(&audit).unwrap();
    for secret in [TOKEN, ROTATED_SECRET] {
        assert!(!text.contains(secret), "the audit log holds a secret");
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_that_cannot_apply_is_refused_before_anything_changes() {
    let b = Berth::start().await;
    let twice = ConfigDocument { credentials: vec![ci_credential(), ci_credential()], ..ConfigDocument::default() };
    let e = refused(b.api.apply_config(&apply(&twice, TOKEN, false, false)).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::InvalidConfig)), "{e}");
    let dangling = ConfigDocument {
        templates: vec![ConfigTemplate {
            url_prefix: "https://bitbucket.org/acme/".into(),
            credential: "ghost".into(),
        }],
        ..ConfigDocument::default()
    };
    let e = refused(b.api.apply_config(&apply(&dangling, TOKEN, false, false)).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::InvalidConfig)), "{e}");
    assert!(e.message().contains("ghost"), "{e}");
    // A new credential without its secret fails alone.
    let doc = ConfigDocument { credentials: vec![ci_credential()], ..ConfigDocument::default() };
    let req = ConfigApply { document: doc, secrets: BTreeMap::new(), dry_run: false, prune: false };
    let p = b.api.apply_config(&req).await.unwrap();
    assert_eq!(p.failed, 1);
    assert_eq!(p.changes[0].error.as_ref().unwrap().code, Code::InvalidConfig);
    assert!(b.api.list_credentials().await.unwrap().is_empty());
    // A viewer may not apply, even a plan; a registrar may not prune a credential (only
    // administrators delete credentials), so nothing of that set is made.
    crate::roles::add_user(&b, "vera", VIEWER_PASSWORD, "viewer").await;
    let viewer = Api::login(&b.base, "vera", VIEWER_PASSWORD).await;
    let e = refused(viewer.apply_config(&apply(&ConfigDocument::default(), TOKEN, true, false)).await);
    assert_eq!(status_code(&e), (Some(403), Some(Code::Forbidden)), "{e}");
    let doc = ConfigDocument { credentials: vec![ci_credential()], ..ConfigDocument::default() };
    b.api.apply_config(&apply(&doc, TOKEN, false, false)).await.unwrap();
    crate::roles::add_user(&b, "reggie", REGISTRAR_PASSWORD, "registrar").await;
    let registrar = Api::login(&b.base, "reggie", REGISTRAR_PASSWORD).await;
    let e = refused(registrar.apply_config(&apply(&ConfigDocument::default(), TOKEN, false, true)).await);
    assert_eq!(status_code(&e), (Some(403), Some(Code::Forbidden)), "{e}");
    assert!(e.message().contains("delete a credential"), "{e}");
    assert_eq!(b.api.list_credentials().await.unwrap().len(), 1);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn berth_apply_and_export_with_a_yaml_file() {
    let b = Berth::start().await;
    let (dir, session) = signed_in(&b).await;
    let secret_file = dir.path().join("ci.token");
    std::fs::write(&secret_file, format!("{TOKEN}\n")).unwrap();
    let yaml = format!(
        "# berth.yaml\ncredentials:\n  - name: ci\n    kind: bitbucket_api_token\n    email: jo@example.com\n    \
         scopes: [read:repository:bitbucket]\n    secret: {{file: ci.token}}\ntemplates:\n  - url_prefix: {}/git/team/\n    \
         credential: ci\nrepositories:\n  - name: app\n    clone_url: {}\n",
        b.git.base_url(),
        b.git.repo_url("team/app.git")
    );
    let file = dir.path().join("berth.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let f = file.to_str().unwrap();
    let run = |args: Vec<&str>| {
        let b = &b;
        let session = session.clone();
        let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        async move {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            berth_with(b, &session, &a, None, With::default()).await
        }
    };
    let plan = run(vec!["apply", "-f", f, "--dry-run"]).await;
    assert_eq!(plan.code, 0, "{}", plan.all());
    assert!(plan.stdout.contains("+ create credential ci"), "{}", plan.stdout);
    assert!(plan.stdout.contains("dry run: nothing was changed"), "{}", plan.stdout);
    let json = run(vec!["--json", "apply", "-f", f, "--dry-run"]).await;
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["changes"].as_array().unwrap().len(), 3, "{v}");
    assert_eq!(v["changes"][0]["action"], "create");
    let done = run(vec!["apply", "-f", f]).await;
    assert_eq!(done.code, 0, "{}", done.all());
    let again = run(vec!["apply", "-f", f]).await;
    assert!(again.stdout.contains("0 changes made, 0 failed, 3 unchanged"), "{}", again.stdout);

    // Export to a file; applying it (with the secret in the variable it names) changes nothing.
    let out = dir.path().join("export.yaml");
    let ex = run(vec!["export", "-o", out.to_str().unwrap()]).await;
    assert_eq!(ex.code, 0, "{}", ex.all());
    let exported = std::fs::read_to_string(&out).unwrap();
    assert!(exported.contains("env: BERTH_SECRET_CI") && !exported.contains(TOKEN), "{exported}");
    let round = berth_with(
        &b,
        &session,
        &["apply", "-f", out.to_str().unwrap(), "--dry-run"],
        None,
        With { env: &[("BERTH_SECRET_CI", TOKEN)], ..With::default() },
    )
    .await;
    assert!(round.stdout.contains("0 changes planned, 0 failed, 3 unchanged"), "{}", round.all());

    // Bad files: an unknown key and an inline secret name their line; a missing variable is said.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "credentials: []\nrepos: []\n").unwrap();
    let r = run(vec!["apply", "-f", bad.to_str().unwrap()]).await;
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.all().contains("unknown field `repos`") && r.all().contains("line 2"), "{}", r.all());
    std::fs::write(&bad, format!("credentials:\n  - name: ci\n    kind: access_token\n    secret: {TOKEN}\n")).unwrap();
    let r = run(vec!["--json", "apply", "-f", bad.to_str().unwrap()]).await;
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stdout.contains("invalid_config") && r.stdout.contains("line 4"), "{}", r.all());
    assert!(!r.all().contains(TOKEN), "the inline secret was echoed");
    let missing = yaml.replace("{file: ci.token}", "{env: BERTH_E2E_UNSET_VARIABLE}");
    std::fs::write(&bad, missing).unwrap();
    let r = run(vec!["apply", "-f", bad.to_str().unwrap()]).await;
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.all().contains("BERTH_E2E_UNSET_VARIABLE is not set"), "{}", r.all());
    b.stop().await;
}
