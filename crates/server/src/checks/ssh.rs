//! The pipeline over SSH: url, credential, dns, destination, connect, then the SSH handshake,
//! host key and authentication, the REST steps (skipped: a host's REST API does not take an
//! SSH key), and the Git steps fed by `git-upload-pack` over SSH.

use super::{credential_step, listing_steps, unopened_secret, Checker, Outcome, Target};
use berth_core::credential::{self, Expiry};
use berth_core::{CloneUrl, Code, CredentialKind, GitIdentity, Step, StepName};
use berth_git::ssh::{keys, SshError, SshRequest};
use berth_store::CredentialRow;

/// Why the REST steps do not run for an SSH URL: said the same way on every check.
pub(crate) const REST_SKIPPED: &str =
    "not asked: the host's REST API does not accept an SSH key, so Git over SSH alone decides";

impl Checker<'_> {
    pub(super) async fn run_ssh_steps(&self, target: Target<'_>, steps: &mut Vec<Step>, out: &mut Outcome) {
        let url = target.url;
        steps.push(Step::pass(StepName::Url, format!("{} ({}, Git over SSH)", url.canonical(), url.provider)));

        // 2. Credential: an SSH key, and one that opens. Git over SSH has no anonymous access.
        let Some(cred) = target.credential else {
            steps.push(Step::fail(
                StepName::Credential,
                Code::CredentialRequired,
                "Git over SSH always signs in with a key: an SSH clone URL cannot be checked without a credential",
                match url.https_alternative() {
                    Some(alt) => format!(
                        "choose an \"SSH Username with private key\" credential, or use the HTTPS clone URL for \
                         anonymous access: {alt}"
                    ),
                    None => "choose an \"SSH Username with private key\" credential, or use the repository's HTTPS \
                             clone URL for anonymous access"
                        .to_owned(),
                },
            ));
            return;
        };
        if cred.kind != CredentialKind::SshKey {
            steps.push(Step::fail(
                StepName::Credential,
                Code::CredentialKindMismatch,
                format!(
                    "credential {:?} is a {} and cannot sign in over SSH; an SSH clone URL needs an \"SSH Username \
                     with private key\" credential",
                    cred.name,
                    cred.kind.label()
                ),
                match url.https_alternative() {
                    Some(alt) => {
                        format!("choose an SSH key credential, or use the HTTPS clone URL with this one: {alt}")
                    }
                    None => {
                        "choose an SSH key credential, or use the repository's HTTPS clone URL with this one".to_owned()
                    }
                },
            ));
            return;
        }
        let identity = credential::git_identity(cred.kind, cred.username.as_deref(), url.provider);
        let GitIdentity::SshKey { username } = &identity else { return };
        let Some(secret) = target.secret else {
            steps.push(unopened_secret(cred));
            return;
        };
        let key = match keys::open_secret(&secret) {
            Ok(k) => k,
            Err(e) => {
                steps.push(Step::fail(
                    StepName::Credential,
                    Code::InvalidInput,
                    format!("the private key of credential {:?} cannot be used: {e}", cred.name),
                    e.remedy(),
                ));
                return;
            }
        };
        let mut step = credential_step(cred, &identity, Expiry::Unknown, target.chosen_by);
        step.message = format!("{}; key {}", step.message, keys::fingerprint(key.public_key()));
        steps.push(step);
        out.git_identity = Some(identity.clone());

        // 3, 4 and 5. DNS, the network policy, TCP.
        if !self.reach_direct(&url.host, url.port.unwrap_or(22), steps).await {
            return;
        }

        // 6, 7 and 8 (the handshake, host key, authentication), then the listing.
        let path = url.ssh_path();
        let req = SshRequest {
            host: &url.host,
            port: url.port,
            path: &path,
            username,
            key: &key,
            trusted: &target.host_keys,
        };
        let listed = self.git.ls_refs_ssh(req).await;
        for name in [StepName::ApiCredential, StepName::ApiScopes, StepName::ApiRepository] {
            steps.push(Step::skip(name, REST_SKIPPED));
        }
        let l = match listed {
            Ok(l) => l,
            Err(e) => {
                push_ssh_failure(steps, url, e);
                return;
            }
        };
        steps.push(Step::pass(StepName::SshHandshake, format!("SSH with {}", l.probe.connected_to)).took(l.handshake));
        steps.push(host_key_pass(&l.host_key, &l.trusted_by));
        steps.push(
            Step::pass(
                StepName::SshAuth,
                format!(
                    "accepted the {} key {} as {username}",
                    keys::key_type(key.public_key()),
                    keys::fingerprint(key.public_key())
                ),
            )
            .took(l.auth),
        );
        let protocol = match l.refs.protocol {
            berth_git::Protocol::V2 => "protocol v2",
            berth_git::Protocol::V0 => "protocol v0 (the server did not accept GIT_PROTOCOL)",
        };
        steps.push(Step::pass(StepName::GitDiscovery, format!("git-upload-pack over SSH, {protocol}")).took(l.listing));
        listing_steps(l.refs, target.wanted_branch, None, steps, out);
    }
}

fn host_key_pass(k: &berth_git::ssh::PresentedKey, trusted_by: &str) -> Step {
    Step::pass(StepName::SshHostKey, format!("{} {} of {}, {trusted_by}", k.key_type, k.fingerprint, k.host))
}

/// The steps an SSH failure leaves: those before it passed, then the failure itself.
fn push_ssh_failure(steps: &mut Vec<Step>, url: &CloneUrl, e: SshError) {
    let order = [StepName::SshHandshake, StepName::SshHostKey, StepName::SshAuth, StepName::GitDiscovery];
    let reached = order.iter().position(|s| *s == e.step).unwrap_or(order.len());
    for passed in order.iter().take(reached) {
        let step = match passed {
            StepName::SshHandshake => Step::pass(StepName::SshHandshake, format!("SSH with {}", url.host)),
            StepName::SshHostKey => match (&e.presented, &e.trusted_by) {
                (Some(k), Some(by)) => host_key_pass(k, by),
                _ => Step::pass(StepName::SshHostKey, "the host key is trusted"),
            },
            StepName::SshAuth => Step::pass(StepName::SshAuth, "the server accepted the key"),
            _ => Step::pass(StepName::GitDiscovery, "git-upload-pack answered"),
        };
        steps.push(step);
    }
    steps.push(e.to_step());
}

/// An SSH key offered for an HTTPS URL: said before anything is sent.
pub(super) fn kind_mismatch(cred: &CredentialRow, url: &CloneUrl) -> Step {
    Step::fail(
        StepName::Credential,
        Code::CredentialKindMismatch,
        format!(
            "credential {:?} is an SSH key and cannot sign in over {}; it works with the repository's SSH clone URL",
            cred.name,
            url.scheme.as_str().to_uppercase()
        ),
        "use the repository's SSH clone URL (ssh://git@host/path.git or git@host:path.git), or choose a token or \
         password credential for the HTTPS URL",
    )
}
