//! The one error type of outbound HTTP (Git smart HTTP and the hosts' REST APIs alike). It is
//! already a finding: a stable [`Code`], a sentence for a
//! person, what to do about it, and the facts (server lines, new location, wait) in `details`, so
//! the checker turns it into a [`Step`] without guessing.
//!
//! Nothing in here ever holds a credential: messages are built from URLs without userinfo,
//! status codes, server text and our own words.

use berth_core::{Code, Step, StepName};
use std::time::Duration;

/// Which step of a check failed. REST requests report under [`Stage::Discovery`] (their first
/// request), or `Dns`/`Connect`/`Tls` for those failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    Dns,
    Connect,
    Tls,
    /// `GET …/info/refs?service=git-upload-pack` and its answer.
    Discovery,
    /// The protocol v2 `ls-refs` command, or reading the v0 ref advertisement.
    LsRefs,
}

impl Stage {
    /// The check step this stage reports under.
    pub fn step_name(self) -> StepName {
        match self {
            Stage::Dns => StepName::Dns,
            Stage::Connect => StepName::Connect,
            Stage::Tls => StepName::Tls,
            Stage::Discovery => StepName::GitDiscovery,
            Stage::LsRefs => StepName::Branches,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct NetError {
    pub stage: Stage,
    pub code: Code,
    pub message: String,
    pub remedy: String,
    pub details: Vec<String>,
    pub http_status: Option<u16>,
    pub retry_after: Option<Duration>,
    /// The new repository URL when the server redirected to another origin.
    pub location: Option<String>,
}

impl NetError {
    pub fn new(stage: Stage, code: Code, message: impl Into<String>, remedy: impl Into<String>) -> Self {
        NetError {
            stage,
            code,
            message: message.into(),
            remedy: remedy.into(),
            details: Vec::new(),
            http_status: None,
            retry_after: None,
            location: None,
        }
    }

    pub fn with_details(mut self, details: Vec<String>) -> Self {
        self.details = details;
        self
    }

    pub fn with_remedy(mut self, remedy: impl Into<String>) -> Self {
        self.remedy = remedy.into();
        self
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    /// The server answered, but not as the protocol expects.
    pub fn protocol(stage: Stage, message: impl Into<String>) -> Self {
        NetError::new(
            stage,
            Code::ProtocolError,
            message,
            "The server does not speak Git smart HTTP as expected. Check that the URL is the repository's \
             HTTPS clone URL and that no proxy rewrites the traffic; if it persists, report it with the details.",
        )
    }

    /// The failed check step for this error.
    pub fn to_step(&self) -> Step {
        Step::fail(self.stage.step_name(), self.code, self.message.clone(), self.remedy.clone())
            .with_details(self.details.clone())
    }
}
