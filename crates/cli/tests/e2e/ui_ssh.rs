//! Git over SSH in the browser, as an administrator meets it: an SSH key generated in Create
//! Credential (its public key shown to paste into the host), Register Repository stopping at an
//! unknown host key with a "Trust this key" link, Admin > Known hosts with the host and the
//! fingerprint filled in to compare and confirm, then the registration going through; a
//! registrar does not see the link. Desktop and phone width, screenshots in target/screenshots.

use crate::harness::browser::Browser;
use crate::harness::*;
use crate::ui::no_sideways_scroll;
use berth_testkit::{SshAccess, SshServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_key_register_and_trust_a_host_key_in_the_browser() {
    let berth = Berth::start().await;
    let base = berth.base.clone();
    let mut sshd = SshServer::start(true);
    let url = sshd.url(&berth.repos.path().join("team/app.git"));
    let b = Browser::start("ssh").await;
    b.sign_in(&base, "admin", ADMIN_PASSWORD).await;
    b.find("#empty_repos").await;

    // Create Credential: an SSH key made in Berth; the page shows its public key, to paste
    // into the host (here: the test server's authorized keys).
    b.goto(&format!("{base}/credentials/new")).await;
    b.fill("#cred_name", "deploy-key").await;
    b.find("#kind").await.select_by_value("ssh_key").await.unwrap();
    b.fill("#username", &sshd.user).await;
    b.click("#generate").await;
    b.shot("00-ssh-credential-form").await;
    b.click("#save_credential").await;
    let public = b.text("#public_key").await;
    assert!(public.starts_with("ssh-ed25519 AAAA"), "{public}");
    assert!(b.text("#key_fingerprint").await.starts_with("SHA256:"));
    assert!(!b.c.source().await.unwrap().contains("PRIVATE KEY"), "the private key never reaches a page");
    b.shot_full("01-ssh-credential-public-key").await;
    sshd.authorize(&public, SshAccess::All);
    let cred = berth.api.list_credentials().await.unwrap().into_iter().find(|c| c.name == "deploy-key").unwrap();

    // Register Repository over SSH: the host key is unknown, so the check stops there, nothing
    // authenticated, and the step offers "Trust this key" to the administrator.
    register(&b, &base, "app", &url, cred.id).await;
    b.find("#problem").await;
    let row = "tr[data-step='ssh_host_key']";
    assert!(b.text(&format!("{row} td[data-label='Result']")).await.contains("host_key_unknown"));
    let details = b.text(&format!("{row} ul.details")).await;
    let fingerprint = details
        .lines()
        .find_map(|l| l.trim().strip_prefix("fingerprint: "))
        .unwrap_or_else(|| panic!("the fingerprint is shown: {details}"))
        .to_owned();
    let link = b.find(&format!("{row} a.trust-key")).await;
    assert!(link.is_displayed().await.unwrap(), "administrators see Trust this key");
    let href = link.attr("href").await.unwrap().unwrap();
    assert!(href.starts_with("/admin/known-hosts?"), "{href}");
    assert_eq!(sshd.accepted_logins(), 0, "nothing authenticated before trust: {}", sshd.log());
    b.shot_full("02-register-host-key-unknown").await;

    // The link opens Admin > Known hosts with the key to compare; the administrator confirms.
    b.goto(&format!("{base}{href}")).await;
    assert_eq!(b.value("#kh_fp").await, fingerprint);
    assert_eq!(b.value("#kh_host").await, sshd.host_label());
    let notice = b.text("#trust_form .notice").await;
    assert!(notice.contains(&fingerprint) && notice.contains("Compare"), "{notice}");
    b.shot_full("03-known-hosts-trust-this-key").await;
    b.click("#trust_key").await;
    let flash = b.text("#flash").await;
    assert!(flash.contains("Trusted the key") && flash.contains(&fingerprint), "{flash}");
    let table = b.text("#known_hosts").await;
    assert!(table.contains(&sshd.host_label()) && table.contains(&fingerprint), "{table}");
    assert!(table.contains("github.com") && table.contains("pinned in Berth"), "the pins are listed: {table}");
    assert_eq!(b.value("#kh_fp").await, "", "the form is empty again");
    b.shot_full("04-known-hosts-trusted").await;

    // Registering again goes through over SSH.
    register(&b, &base, "app", &url, cred.id).await;
    b.find("#repos").await;
    let flash = b.text("#flash").await;
    assert!(flash.starts_with("Registered app"), "{flash}");
    let repo = berth.api.list_repositories().await.unwrap().into_iter().find(|r| r.name == "app").unwrap();
    assert_eq!(repo.default_branch, "trunk");

    // A wrong fingerprint is refused on the page, with the host kept in the form.
    b.goto(&format!("{base}/admin/known-hosts")).await;
    b.fill("#kh_host", &sshd.host_label()).await;
    b.fill("#kh_fp", "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").await;
    b.click("#trust_key").await;
    let problem = b.text("#problem").await;
    assert!(problem.contains("host_key_changed") && problem.contains("presents no key"), "{problem}");
    assert_eq!(b.value("#kh_host").await, sshd.host_label());

    // A phone: the known hosts table becomes cards, nothing scrolls sideways.
    b.c.set_window_size(390, 844).await.unwrap();
    b.goto(&format!("{base}/admin/known-hosts")).await;
    no_sideways_scroll(&b, "/admin/known-hosts").await;
    b.shot_full("05-phone-known-hosts").await;
    b.c.set_window_size(1366, 900).await.unwrap();

    // Removing the key: Berth no longer trusts the host.
    b.click("#known_hosts button.danger").await;
    assert!(b.text("#flash").await.starts_with("Removed a key of"));
    let listed = berth.api.list_known_hosts().await.unwrap();
    assert!(listed.iter().all(|k| k.pinned), "{listed:?}");

    // A registrar meets the same unknown key without the link (and the page is not theirs).
    crate::roles::add_user(&berth, "reggie", REGISTRAR_PASSWORD, "registrar").await;
    b.sign_out().await;
    b.sign_in(&base, "reggie", REGISTRAR_PASSWORD).await;
    b.find("#repos").await;
    let lib = sshd.url(&berth.repos.path().join("team/lib.git"));
    register(&b, &base, "lib", &lib, cred.id).await;
    b.find("#problem").await;
    assert!(b.text(&format!("{row} td[data-label='Result']")).await.contains("host_key_unknown"));
    assert!(!b.find(&format!("{row} a.trust-key")).await.is_displayed().await.unwrap());
    b.goto(&format!("{base}/admin/known-hosts")).await;
    assert!(b.text("main h1").await.contains("Not allowed"));
    b.close().await;
    berth.stop().await;
}

/// Fills Register Repository with an SSH URL and the SSH credential, and registers.
async fn register(b: &Browser, base: &str, name: &str, url: &str, credential: i64) {
    b.goto(&format!("{base}/repositories/new")).await;
    b.fill("#name", name).await;
    b.fill("#clone_url", url).await;
    b.find("#credential").await.select_by_value(&credential.to_string()).await.unwrap();
    b.click("#register").await;
}
