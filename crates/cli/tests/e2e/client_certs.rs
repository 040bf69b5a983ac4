//! A credential's own TLS client certificate (issue 14 §2: hosts that tie certificates to
//! users), against `openssl s_server` demanding a client certificate (`MtlsServer`, certificates
//! made in the test): the credential's certificate is presented in place of the host's
//! `[[integrations]]` one and the TLS step says which was used; the wrong one is
//! `client_certificate_refused` naming the credential; a key that is not the certificate's, an
//! expired certificate or unreadable PEM are refused at save with their own codes; an update
//! replaces or removes it; the CLI reads both from files. The client keys are in the leak scan.

use crate::cli::{berth, signed_in};
use crate::harness::*;
use berth_core::{Code, CredentialKind, StepName, StepStatus};
use berth_proto::{CredentialCreate, CredentialUpdate};
use berth_testkit::{make_certs, LeafCert, MtlsServer};

const TOKEN: &str = "client-cert-test-token-0001";

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// The private key's base64 lines, which the leak scan must never find anywhere.
fn register_key(path: &std::path::Path) {
    for line in read(path).lines().filter(|l| !l.starts_with("-----") && l.len() >= 16) {
        register_secret("a credential's client key", line);
    }
}

fn with_cert(name: &str, (cert, key): &(std::path::PathBuf, std::path::PathBuf)) -> CredentialCreate {
    CredentialCreate {
        client_certificate: Some(read(cert)),
        client_key: Some(read(key)),
        ..new_credential(name, CredentialKind::AccessToken, TOKEN)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_presents_its_own_client_certificate() {
    let host = MtlsServer::start()
        .await
        .expect("the openssl command line (Debian package openssl, which scripts/test installs)");
    let (good, stray) = (host.client_files(), host.stray_client_files());
    register_key(&good.1);
    register_key(&stray.1);
    register_secret("the client-cert test token", TOKEN);
    // The host's own entry presents the stray certificate, which the host refuses: a check that
    // passes TLS can only have presented the credential's.
    let toml = format!(
        "[[integrations]]\nhost = \"127.0.0.1:{}\"\nprovider = \"generic\"\nca_file = \"{}\"\n\
         client_certificate = \"{}\"\nclient_key = \"{}\"\n",
        host.port(),
        host.ca_file().display(),
        stray.0.display(),
        stray.1.display()
    );
    let b = Berth::start_with(Options { config_toml: Some(toml), ..Options::default() }).await;
    let url = format!("{}/team/app.git", host.base_url());

    // Stored: the answer shows the subject and the end of validity, never the key.
    let mine = b.api.create_credential(&with_cert("mine", &good)).await.unwrap();
    let shown = mine.client_certificate.clone().expect("the certificate is shown");
    assert_eq!(shown.subject, "CN=berth-client");
    assert!(shown.expires_at > chrono::Utc::now() + chrono::Duration::days(20), "{shown:?}");

    // The credential's certificate passes TLS (what answers is openssl's page, not Git), and
    // the TLS step says whose certificate was presented.
    let e = refused(b.api.remote_branches(&remote(&url, "mine")).await);
    assert_eq!(e.code(), Some(Code::NotAGitServer), "{}", error_json(&e));
    let tls = step(e.checks(), StepName::Tls);
    assert_eq!(tls.status, StepStatus::Pass, "{}", codes(e.checks()));
    assert!(
        tls.message.contains("presented the client certificate of credential \"mine\" (CN=berth-client"),
        "{}",
        tls.message
    );

    // Without one of its own, a credential presents the host's (the stray one): refused, and
    // the finding sends the person to the [[integrations]] entry.
    b.api.create_credential(&new_credential("plain", CredentialKind::AccessToken, TOKEN)).await.unwrap();
    let e = refused(b.api.remote_branches(&remote(&url, "plain")).await);
    assert_eq!(e.code(), Some(Code::ClientCertificateRefused), "{}", error_json(&e));
    assert!(e.remedy().contains("[[integrations]]"), "{}", e.remedy());

    // The credential's own wrong certificate: refused, named as the credential's.
    b.api.create_credential(&with_cert("stray", &stray)).await.unwrap();
    let e = refused(b.api.remote_branches(&remote(&url, "stray")).await);
    assert_eq!(e.code(), Some(Code::ClientCertificateRefused), "{}", error_json(&e));
    let tls = step(e.checks(), StepName::Tls);
    assert_eq!(tls.status, StepStatus::Fail);
    assert!(tls.message.contains("credential \"stray\" (CN=berth-stray"), "{}", tls.message);
    assert!(tls.remedy.contains("credential's client certificate"), "{}", tls.remedy);

    // An update replaces it (and the next check presents the new one) …
    let stray_id = b.api.list_credentials().await.unwrap().into_iter().find(|c| c.name == "stray").unwrap().id;
    let replace = CredentialUpdate {
        client_certificate: Some(Some(read(&good.0))),
        client_key: Some(read(&good.1)),
        ..CredentialUpdate::default()
    };
    let c = b.api.update_credential(stray_id, &replace).await.unwrap();
    assert_eq!(c.client_certificate.map(|x| x.subject).as_deref(), Some("CN=berth-client"));
    let e = refused(b.api.remote_branches(&remote(&url, "stray")).await);
    assert_eq!(e.code(), Some(Code::NotAGitServer), "{}", error_json(&e));
    // … and `null` removes it: the host's certificate is presented again.
    let remove = CredentialUpdate { client_certificate: Some(None), ..CredentialUpdate::default() };
    let c = b.api.update_credential(stray_id, &remove).await.unwrap();
    assert!(c.client_certificate.is_none());
    let e = refused(b.api.remote_branches(&remote(&url, "stray")).await);
    assert_eq!(e.code(), Some(Code::ClientCertificateRefused), "{}", error_json(&e));
    assert!(e.remedy().contains("[[integrations]]"), "{}", e.remedy());

    // Refused at save, each with its code: a key that is not the certificate's …
    let mismatch = CredentialCreate { client_key: Some(read(&stray.1)), ..with_cert("mismatch", &good) };
    let e = refused(b.api.create_credential(&mismatch).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::ClientKeyMismatch)), "{}", error_json(&e));
    // … an expired certificate …
    let old = tempfile::tempdir().unwrap();
    make_certs(old.path(), LeafCert::Expired);
    register_key(&old.path().join("leaf.key"));
    let expired = with_cert("expired", &(old.path().join("leaf.pem"), old.path().join("leaf.key")));
    let e = refused(b.api.create_credential(&expired).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::ClientCertificateExpired)), "{}", error_json(&e));
    assert!(e.message().contains("2020-01-02"), "{}", e.message());
    // … text that is no certificate, and a certificate without its key.
    let garbage = CredentialCreate { client_certificate: Some("not a certificate".into()), ..with_cert("junk", &good) };
    let e = refused(b.api.create_credential(&garbage).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::ClientCertificateInvalid)), "{}", error_json(&e));
    let alone = CredentialCreate { client_key: None, ..with_cert("alone", &good) };
    let e = refused(b.api.create_credential(&alone).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::ClientCertificateInvalid)), "{}", error_json(&e));
    let names: Vec<String> = b.api.list_credentials().await.unwrap().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["mine", "plain", "stray"], "nothing refused was stored");

    // The CLI reads both from files and shows the subject.
    let (_home, session) = signed_in(&b).await;
    let (cert, key) = (good.0.display().to_string(), good.1.display().to_string());
    let run = berth(
        &b,
        &session,
        &[
            "credential",
            "add",
            "--name",
            "by-cli",
            "--kind",
            "access_token",
            "--secret-stdin",
            "--client-certificate-file",
            &cert,
            "--client-key-file",
            &key,
        ],
        Some(&format!("{TOKEN}\n")),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.all());
    let run = berth(&b, &session, &["credential", "show", "by-cli"], None).await;
    assert!(run.stdout.contains("CN=berth-client (until "), "{}", run.all());
    let e = refused(b.api.remote_branches(&remote(&url, "by-cli")).await);
    assert_eq!(e.code(), Some(Code::NotAGitServer), "{}", error_json(&e));
    b.stop().await;
    host.shutdown().await;
}
