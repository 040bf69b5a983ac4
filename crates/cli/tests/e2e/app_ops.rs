//! GitHub App credentials beyond a check, against the simulator's GitHub: an import of an
//! organisation lists what the app's installation there may use (`GET /installation/
//! repositories` with an installation token, paged by `Link`) and registers it; an app not
//! installed on the owner is `app_not_installed`; editing the app id or installation through
//! the API and the CLI verifies again and is audited; `berth apply`/`export` carry both ids.

use crate::cli::{berth, signed_in};
use crate::harness::*;
use berth_core::{Code, CredentialKind};
use berth_proto::{
    ConfigApply, ConfigCredential, ConfigDocument, CredentialCreate, CredentialUpdate, ImportCreate, ImportRegister,
    SecretRef, VerificationStatus,
};
use berth_testkit::sim::{make_app_private_key, GitHubApp, Host, Installation, RepoSpec, Sim};
use std::collections::BTreeMap;

const APP_ID: i64 = 5151;

fn register_key(pem: &str) {
    for line in pem.lines().filter(|l| !l.starts_with("-----") && l.len() >= MIN_SECRET_LEN) {
        register_secret("a GitHub App's private key", line);
    }
}

fn register_minted(sim: &Sim) {
    for t in sim.update(|w| w.installation_tokens.clone()) {
        register_secret("a GitHub App installation token", &t.token);
    }
}

async fn world(key: &str) -> Sim {
    Sim::builder()
        .github_repo("octo/alpha", RepoSpec::new(&["main"]))
        .github_repo("octo/beta", RepoSpec::new(&["main"]))
        .github_repo("octo/gamma", RepoSpec::new(&["main"]))
        .github_repo("acme/app", RepoSpec::new(&["main"]))
        .github_repo("acme/secret", RepoSpec::new(&["main"]))
        .github_repo("solo/tool", RepoSpec::new(&["main"]))
        .github_app(GitHubApp::new(APP_ID, "berth-importer", "Berth Importer", "octo", key))
        .installation(Installation::all(81, APP_ID, "octo"))
        .installation(Installation::selected(82, APP_ID, "acme", &["acme/app"]))
        // Two repositories a page: three make two pages, followed by the Link header.
        .with_world(|w| w.list_page_cap = 2)
        .start()
        .await
}

fn config(sim: &Sim) -> String {
    format!(
        "[[integrations]]\nhost = \"127.0.0.1:{}\"\nprovider = \"github\"\napi_url = \"{}\"\n",
        sim.github_port(),
        sim.github_api_url()
    )
}

fn source(sim: &Sim, owner: &str, credential: &str) -> ImportCreate {
    ImportCreate { source: format!("{}/{owner}", sim.github_url()), credential: Some(credential.into()) }
}

async fn finished(b: &Berth, id: i64) -> berth_proto::Import {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let imp = b.api.get_import(id).await.unwrap();
        if imp.finished() {
            return imp;
        }
        assert!(tokio::time::Instant::now() < deadline, "the import did not finish: {imp:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn names(imp: &berth_proto::Import) -> Vec<&str> {
    imp.repositories.iter().map(|r| r.full_name.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_imports_its_installation_and_its_ids_are_edited_and_applied() {
    let key = make_app_private_key();
    register_key(&key);
    let sim = world(&key).await;
    let b = Berth::start_with(Options { config_toml: Some(config(&sim)), ..Options::default() }).await;
    let host = format!("127.0.0.1:{}", sim.github_port());
    let app = CredentialCreate {
        app_id: Some(APP_ID.to_string()),
        host: Some(host.clone()),
        ..new_credential("app", CredentialKind::GithubApp, &key)
    };
    let id = b.api.create_credential(&app).await.unwrap().id;

    // An organisation with the app installed on all its repositories: every one, read through
    // the installation token in two pages.
    let imp = b.api.create_import(&source(&sim, "octo", "app")).await.unwrap();
    assert_eq!(names(&imp), ["octo/alpha", "octo/beta", "octo/gamma"]);
    let pages: Vec<_> =
        sim.requests(Host::GitHub).into_iter().filter(|r| r.path == "/api/v3/installation/repositories").collect();
    assert_eq!(pages.len(), 2, "three repositories in pages of two, by the Link header");
    b.api.register_import(imp.id, &ImportRegister { all: true, ..Default::default() }).await.unwrap();
    let done = finished(&b, imp.id).await;
    assert_eq!((done.registered, done.failed), (3, 0), "{:#?}", done.repositories);

    // An installation on selected repositories lists those only.
    let imp = b.api.create_import(&source(&sim, "acme", "app")).await.unwrap();
    assert_eq!(names(&imp), ["acme/app"]);
    // Not installed on the owner: said so, with the install link.
    let e = refused(b.api.create_import(&source(&sim, "solo", "app")).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::AppNotInstalled)), "{}", error_json(&e));
    assert!(e.remedy().contains("/apps/berth-importer/installations/new"), "{}", e.remedy());

    // Editing the installation: verified again at once, and audited.
    let before = b.api.get_credential(id).await.unwrap().verification.checked_at;
    let one = CredentialUpdate { installation_id: Some(Some(81)), ..CredentialUpdate::default() };
    let c = b.api.update_credential(id, &one).await.unwrap();
    assert_eq!((c.app_id.as_deref(), c.installation_id), (Some("5151"), Some(81)));
    assert_ne!(c.verification.checked_at, before, "a new installation is verified");
    assert_eq!(c.verification.status, VerificationStatus::Ok, "{:?}", c.verification);
    // That installation is octo's: an import of acme with it says so.
    let e = refused(b.api.create_import(&source(&sim, "acme", "app")).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::AppNotInstalled)), "{}", error_json(&e));
    // A wrong app id fails the verification (GitHub refuses the JWT), and is kept as saved.
    let wrong = CredentialUpdate { app_id: Some("999".into()), ..CredentialUpdate::default() };
    let c = b.api.update_credential(id, &wrong).await.unwrap();
    assert_eq!(c.verification.status, VerificationStatus::Fail, "{:?}", c.verification);
    let back = CredentialUpdate {
        app_id: Some(APP_ID.to_string()),
        installation_id: Some(None),
        ..CredentialUpdate::default()
    };
    let c = b.api.update_credential(id, &back).await.unwrap();
    assert_eq!((c.installation_id, c.verification.status), (None, VerificationStatus::Ok));
    let audit = b.api.audit(None, Some(100)).await.unwrap();
    let edits: Vec<&str> =
        audit.iter().filter(|a| a.action == "credential.update").map(|a| a.detail.as_str()).collect();
    assert!(edits.iter().any(|d| d.contains("installation 81")), "{edits:?}");
    assert!(edits.iter().any(|d| d.contains("app id 999")), "{edits:?}");
    assert!(edits.iter().any(|d| d.contains("installation per owner")), "{edits:?}");
    // Other kinds take neither field; a bad id is refused.
    let token = b.api.create_credential(&new_credential("tok", CredentialKind::AccessToken, TOKEN)).await;
    let e = refused(b.api.update_credential(token.unwrap().id, &wrong).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::InvalidInput)), "{}", error_json(&e));
    let e = refused(
        b.api
            .update_credential(id, &CredentialUpdate { app_id: Some("abc".into()), ..CredentialUpdate::default() })
            .await,
    );
    assert_eq!(status_code(&e), (Some(422), Some(Code::InvalidInput)), "{}", error_json(&e));

    // The CLI edits them too.
    let (_home, session) = signed_in(&b).await;
    let run = berth(&b, &session, &["credential", "update", "app", "--installation-id", "81"], None).await;
    assert_eq!(run.code, 0, "{}", run.all());
    let run = berth(&b, &session, &["credential", "show", "app"], None).await;
    assert!(run.stdout.contains("app 5151, installation 81"), "{}", run.all());
    let run = berth(&b, &session, &["credential", "update", "app", "--installation-per-owner"], None).await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(b.api.get_credential(id).await.unwrap().installation_id, None);

    // Configuration as code: export writes both ids; a new app credential is created from a
    // document with its key beside it; an edited installation is planned and applied.
    let doc = b.api.export_config().await.unwrap();
    let exported = doc.credentials.iter().find(|c| c.name == "app").unwrap();
    assert_eq!((exported.app_id.as_deref(), exported.installation_id), (Some("5151"), None));
    let mut app2 = ConfigCredential {
        name: "app2".into(),
        kind: CredentialKind::GithubApp,
        username: None,
        email: None,
        host: Some(host.clone()),
        expires_on: None,
        scopes: Vec::new(),
        app_id: Some(APP_ID.to_string()),
        installation_id: Some(82),
        secret: SecretRef::File("/run/secrets/app.pem".into()),
    };
    let apply = |c: &ConfigCredential, with_key: bool| ConfigApply {
        document: ConfigDocument { credentials: vec![c.clone()], ..ConfigDocument::default() },
        secrets: if with_key { BTreeMap::from([("app2".to_owned(), key.clone())]) } else { BTreeMap::new() },
        dry_run: false,
        prune: false,
    };
    let plan = b.api.apply_config(&apply(&app2, true)).await.unwrap();
    assert!(plan.failed == 0, "{plan:?}");
    let made = b.api.list_credentials().await.unwrap().into_iter().find(|c| c.name == "app2").unwrap();
    assert_eq!((made.app_id.as_deref(), made.installation_id), (Some("5151"), Some(82)));
    let plan = b.api.apply_config(&apply(&app2, false)).await.unwrap();
    assert!(plan.changes.is_empty(), "applying the same document again changes nothing: {plan:?}");
    app2.installation_id = None;
    let plan = b.api.apply_config(&apply(&app2, false)).await.unwrap();
    let fields: Vec<String> = plan.changes.iter().flat_map(|c| c.fields.clone()).collect();
    assert_eq!(fields, ["installation 82 -> per owner"], "{plan:?}");
    let made = b.api.get_credential(made.id).await.unwrap();
    assert_eq!(made.installation_id, None);
    register_minted(&sim);
    b.stop().await;
}
