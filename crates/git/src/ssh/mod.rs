//! Git over SSH: `git-upload-pack '<path>'` run through an async SSH client (russh, no `ssh`
//! child process), its answer fed to the same pkt-line decoder and parsers as smart HTTP.
//!
//! * Protocol v2 is asked for with the `GIT_PROTOCOL=version=2` environment request, as git
//!   does; a server that does not accept the variable (no `AcceptEnv GIT_PROTOCOL`) answers with
//!   a v0 advertisement, which the same discovery parser reads.
//! * The connection is made under the network policy ([`berth_net::NetClient::connect_tcp`]);
//!   the whole exchange after it has one deadline (the request timeout), and the answer is read
//!   under the advertisement cap with tags dropped as they stream by.
//! * The host key is judged before anything is authenticated: an unknown key ends the exchange
//!   with `host_key_unknown`, another key than the trusted one with `host_key_changed`, and in
//!   both cases the credential's key is never offered.

pub mod keys;
pub mod known_hosts;
mod scan;
mod transport;

pub use known_hosts::{HostKeyVerdict, TrustedKey};
pub use transport::{SshListing, SshRequest};

use berth_core::{Code, Step, StepName};

/// A failed SSH exchange as a finding: the step it stopped at, a stable code, a message, a
/// remedy, the details (fingerprints, the server's words) and, for host-key failures, the key
/// that was presented.
#[derive(Debug, Clone)]
pub struct SshError {
    pub step: StepName,
    pub code: Code,
    pub message: String,
    pub remedy: String,
    pub details: Vec<String>,
    /// The host key the server presented, once it did.
    pub presented: Option<PresentedKey>,
    /// Why that key was trusted, for failures after the host-key step.
    pub trusted_by: Option<String>,
}

/// A host key as people compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedKey {
    /// `host` or `[host]:port`.
    pub host: String,
    pub key_type: String,
    pub fingerprint: String,
    /// The OpenSSH public key (`<type> <base64>`), so it can be trusted as it is.
    pub public_line: String,
}

impl SshError {
    pub fn new(step: StepName, code: Code, message: impl Into<String>, remedy: impl Into<String>) -> SshError {
        SshError {
            step,
            code,
            message: message.into(),
            remedy: remedy.into(),
            details: Vec::new(),
            presented: None,
            trusted_by: None,
        }
    }

    pub fn with_details(mut self, details: Vec<String>) -> SshError {
        self.details = details;
        self
    }

    pub fn to_step(&self) -> Step {
        Step::fail(self.step, self.code, self.message.clone(), self.remedy.clone()).with_details(self.details.clone())
    }
}

impl From<crate::GitError> for SshError {
    fn from(e: crate::GitError) -> SshError {
        SshError::new(e.stage.step_name(), e.code, e.message, e.remedy).with_details(e.details)
    }
}

/// Quotes a path for the remote shell as git does (`sq_quote_buf`): inside single quotes, with
/// `'` and `!` closed, escaped and reopened.
pub fn sq_quote(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 2);
    out.push('\'');
    for c in path.chars() {
        match c {
            '\'' | '!' => {
                out.push('\'');
                out.push('\\');
                out.push(c);
                out.push('\'');
            }
            _ => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_are_quoted_as_git_quotes_them() {
        assert_eq!(super::sq_quote("/ws/repo.git"), "'/ws/repo.git'");
        assert_eq!(super::sq_quote("/a'b!c.git"), r"'/a'\''b'\!'c.git'");
    }
}
