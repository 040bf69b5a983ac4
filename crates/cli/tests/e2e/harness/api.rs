//! The suite's typed API client: `berth::client::ApiClient` (the CLI's own, with the
//! `berth_proto` wire types, so a drift between server and client fails to compile), with every
//! answer scanned for known secrets, and its status and body kept for tests that assert on the
//! answer as sent (a field the typed client would not decode must not carry a secret either).

use super::{assert_no_secret, register_token};
use berth::client::{ApiClient, ClientError, Exchange};
use berth_core::{CredentialKind, Step, StepName};
use berth_proto::{CredentialCreate, RepositoryCreate};
use std::sync::{Arc, Mutex};

/// An [`ApiClient`] (reached through `Deref`) that scans every answer and keeps the status and
/// body of the last one.
#[derive(Clone)]
pub struct Api {
    client: ApiClient,
    token: String,
    last: Arc<Mutex<Option<(u16, String)>>>,
}

impl std::ops::Deref for Api {
    type Target = ApiClient;
    fn deref(&self) -> &ApiClient {
        &self.client
    }
}

impl Api {
    /// A client for `base` with `token` (empty: anonymous).
    pub fn new(base: &str, token: &str) -> Api {
        let last = Arc::new(Mutex::new(None));
        let seen = last.clone();
        let observer = Arc::new(move |x: &Exchange<'_>| {
            let body = String::from_utf8_lossy(x.body).into_owned();
            assert_no_secret(&format!("the answer to /{}", x.path), &body);
            *seen.lock().unwrap_or_else(|e| e.into_inner()) = Some((x.status.as_u16(), body));
        });
        let mut client = ApiClient::new(base).unwrap().with_observer(observer);
        if !token.is_empty() {
            client = client.with_token(token);
        }
        Api { client, token: token.to_owned(), last }
    }

    /// A signed-in client for `username` on the server at `base`; its token is registered as a
    /// known secret for the leak scan.
    pub async fn login(base: &str, username: &str, password: &str) -> Api {
        let login = Api::new(base, "").client.login(username, password).await;
        let token = login.unwrap_or_else(|e| panic!("{username} cannot sign in: {e}")).token;
        register_token(&token);
        Api::new(base, &token)
    }

    /// The same server with another token (a user's session, a personal API token).
    pub fn with_token(&self, token: &str) -> Api {
        Api::new(self.client.base.as_str(), token)
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// The HTTP status of the last answer this client (or a clone of it) received.
    #[track_caller]
    pub fn status(&self) -> u16 {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).as_ref().expect("no answer yet").0
    }

    /// The body of the last answer, as sent.
    #[track_caller]
    pub fn body(&self) -> String {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).as_ref().expect("no answer yet").1.clone()
    }
}

/// The refusal a call answered; fails the test when the call succeeded.
#[track_caller]
pub fn refused<T>(answer: Result<T, ClientError>) -> ClientError {
    match answer {
        Ok(_) => panic!("the call succeeded where a refusal was expected"),
        Err(e) => e,
    }
}

/// The status and code of a refusal, for one `assert_eq!`.
pub fn status_code(e: &ClientError) -> (Option<u16>, Option<berth_core::Code>) {
    (e.status(), e.code())
}

/// A credential with only the required fields; fill in the rest with `..`.
pub fn new_credential(name: &str, kind: CredentialKind, secret: &str) -> CredentialCreate {
    CredentialCreate {
        name: name.to_owned(),
        kind,
        username: None,
        email: None,
        app_id: None,
        installation_id: None,
        secret: secret.to_owned(),
        expires_on: None,
        scopes: None,
        host: None,
        private_key: None,
        passphrase: None,
        generate: false,
        client_certificate: None,
        client_key: None,
    }
}

/// A Bitbucket API token for `jo@example.com`.
pub fn bitbucket_api_token(name: &str, secret: &str) -> CredentialCreate {
    CredentialCreate {
        email: Some("jo@example.com".to_owned()),
        ..new_credential(name, CredentialKind::BitbucketApiToken, secret)
    }
}

/// A registration with the remote's default branch.
pub fn new_repository(name: &str, clone_url: &str, credential: &str) -> RepositoryCreate {
    RepositoryCreate {
        name: name.to_owned(),
        vcs: "git".to_owned(),
        clone_url: clone_url.to_owned(),
        credential: Some(credential.into()),
        anonymous: false,
        default_branch: None,
        webhook: false,
    }
}

/// The step `name` of a check; fails the test when the check has no such step.
#[track_caller]
pub fn step(checks: &[Step], name: StepName) -> &Step {
    checks.iter().find(|s| s.step == name).unwrap_or_else(|| panic!("no step {} in {}", name.as_str(), codes(checks)))
}

/// `step:status:code` of every step, for failure messages.
pub fn codes(checks: &[Step]) -> String {
    checks.iter().map(|s| format!("{}:{}:{}", s.step.as_str(), s.status.as_str(), s.code)).collect::<Vec<_>>().join(" ")
}

/// A Refresh request: `clone_url` as pasted, `credential` by name or id.
pub fn remote(clone_url: &str, credential: &str) -> berth_proto::RemoteBranchesRequest {
    berth_proto::RemoteBranchesRequest {
        clone_url: clone_url.to_owned(),
        credential: Some(credential.into()),
        anonymous: false,
    }
}

/// A refusal's error as the API answered it, in JSON, for assertions on its text as a whole.
pub fn error_json(e: &ClientError) -> String {
    e.api().map(|a| serde_json::to_string(a).unwrap()).unwrap_or_else(|| e.to_string())
}
