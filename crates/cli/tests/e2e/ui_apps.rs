//! Create Credential for a GitHub App in Chromium, against the simulator's GitHub: a refusal
//! (a name taken) keeps the app id and installation id in their fields (the server writes them
//! back) and the private key pasted (the page's script keeps it: the server never writes a key
//! into a page, and the field says so); fixed, it is saved and verified on the host; the
//! credential's page shows the app and its edit form changes the installation.

use crate::harness::browser::Browser;
use crate::harness::*;
use berth_core::CredentialKind;
use berth_testkit::sim::{make_app_private_key, GitHubApp, Installation, RepoSpec, Sim};

const APP_ID: i64 = 6161;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_credential_makes_a_github_app_and_keeps_its_fields_through_a_refusal() {
    let key = make_app_private_key();
    for line in key.lines().filter(|l| !l.starts_with("-----") && l.len() >= MIN_SECRET_LEN) {
        register_secret("a GitHub App's private key", line);
    }
    let sim = Sim::builder()
        .github_repo("octo/app", RepoSpec::new(&["main"]))
        .github_app(GitHubApp::new(APP_ID, "berth-web", "Berth Web", "octo", &key))
        .installation(Installation::all(91, APP_ID, "octo"))
        .start()
        .await;
    let toml = format!(
        "[[integrations]]\nhost = \"127.0.0.1:{}\"\nprovider = \"github\"\napi_url = \"{}\"\n",
        sim.github_port(),
        sim.github_api_url()
    );
    let berth = Berth::start_with(Options { config_toml: Some(toml), ..Options::default() }).await;
    berth.api.create_credential(&new_credential("taken", CredentialKind::AccessToken, TOKEN)).await.unwrap();
    let base = berth.base.clone();
    let b = Browser::start("apps").await;
    b.sign_in(&base, "admin", ADMIN_PASSWORD).await;
    b.find("#empty_repos").await;
    b.goto(&format!("{base}/credentials/new")).await;

    // The app's fields show for its kind only.
    b.find("#kind").await.select_by_value("github_app").await.unwrap();
    b.until("the app fields show", "return !document.getElementById('app_id').closest('.field').hidden").await;
    assert!(b.text("#private_key_hint").await.contains("never sends it back"));
    b.fill("#cred_name", "taken").await;
    b.fill("#app_id", &APP_ID.to_string()).await;
    b.fill("#installation_id", "91").await;
    b.c.execute("document.getElementById('private_key').value = arguments[0]", vec![serde_json::json!(key)])
        .await
        .unwrap();
    let host = format!("127.0.0.1:{}", sim.github_port());
    b.find("#host").await.select_by_value(&host).await.unwrap();

    // Refused for the name: the app id and installation are still there, and so is the key
    // (kept by the page's script, never sent back in the page).
    b.click("#save_credential").await;
    assert!(b.text("#cred_name_error").await.contains("name_taken"));
    assert_eq!(b.value("#kind").await, "github_app");
    assert_eq!(b.value("#app_id").await, APP_ID.to_string(), "the app id was lost by the refusal");
    assert_eq!(b.value("#installation_id").await, "91", "the installation id was lost by the refusal");
    assert_eq!(b.value("#private_key").await.trim(), key.trim(), "the key pasted was lost by the refusal");
    let html = b.c.source().await.unwrap();
    let body_line = key.lines().find(|l| l.len() >= MIN_SECRET_LEN && !l.starts_with("-----")).unwrap();
    assert!(!html.contains(body_line), "the private key is in the page's HTML");
    b.shot("01-app-name-taken").await;

    // Fixed, saved and verified on the host.
    b.fill("#cred_name", "web-app").await;
    b.click("#save_credential").await;
    b.find("#credentials").await;
    let flash = b.text("#flash").await;
    assert!(flash.contains("web-app") && flash.contains("Berth Web"), "{flash}");
    let c = berth.api.list_credentials().await.unwrap().into_iter().find(|c| c.name == "web-app").unwrap();
    assert_eq!((c.kind, c.app_id.as_deref(), c.installation_id), (CredentialKind::GithubApp, Some("6161"), Some(91)));

    // Its page: the edit form changes the installation (empty: per owner), verified again.
    b.goto(&format!("{base}/credentials/{}", c.id)).await;
    assert_eq!(b.value("#edit_app_id").await, "6161");
    assert_eq!(b.value("#edit_installation_id").await, "91");
    b.fill("#edit_installation_id", "").await;
    b.click("#save_details").await;
    assert!(b.text("#flash").await.contains("Saved"));
    let c = berth.api.get_credential(c.id).await.unwrap();
    assert_eq!(c.installation_id, None);
    assert_eq!(c.verification.status, berth_proto::VerificationStatus::Ok, "{:?}", c.verification);
    b.shot_full("02-app-credential").await;
    b.close().await;
    berth.stop().await;
}
