//! A check's headline and why it ran: what the history keeps beside the steps, and what lists,
//! metrics and the schedule sort by.

use crate::finding::{Check, StepStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A check's headline: `fail` when a step failed, `warn` when one warned, else `ok`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Ok,
    Warn,
    Fail,
}

impl CheckStatus {
    pub const ALL: [CheckStatus; 3] = [CheckStatus::Ok, CheckStatus::Warn, CheckStatus::Fail];

    pub fn of(check: &Check) -> CheckStatus {
        if !check.ok {
            CheckStatus::Fail
        } else if check.checks.iter().any(|s| s.status == StepStatus::Warn) {
            CheckStatus::Warn
        } else {
            CheckStatus::Ok
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "fail",
        }
    }

    pub fn parse(s: &str) -> Option<CheckStatus> {
        CheckStatus::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Why a check ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckReason {
    /// Registration or an edit of the repository.
    Register,
    /// A person asked (re-check, Refresh of a registered repository).
    Manual,
    /// The background schedule.
    Schedule,
    /// Its credential changed.
    Credential,
    /// The host's webhook said a branch was pushed, created or deleted.
    Webhook,
}

impl CheckReason {
    pub const ALL: [CheckReason; 5] = [
        CheckReason::Register,
        CheckReason::Manual,
        CheckReason::Schedule,
        CheckReason::Credential,
        CheckReason::Webhook,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CheckReason::Register => "register",
            CheckReason::Manual => "manual",
            CheckReason::Schedule => "schedule",
            CheckReason::Credential => "credential",
            CheckReason::Webhook => "webhook",
        }
    }

    pub fn parse(s: &str) -> Option<CheckReason> {
        CheckReason::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Code, Step, StepName};

    #[test]
    fn names_round_trip() {
        // The API documents these with their serde names; the history stores `as_str`.
        for s in CheckStatus::ALL {
            assert_eq!(CheckStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).ok(), Some(serde_json::json!(s.as_str())));
        }
        for r in CheckReason::ALL {
            assert_eq!(CheckReason::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_value(r).ok(), Some(serde_json::json!(r.as_str())));
        }
        assert_eq!(CheckStatus::parse("OK"), None);
        assert_eq!(CheckReason::parse(""), None);
    }

    #[test]
    fn status_is_the_worst_step() {
        let pass = Step::pass(StepName::Url, "ok");
        let warn = Step::warn(StepName::Dns, Code::TokenExpiresSoon, "soon", "renew it");
        let fail = Step::fail(StepName::Dns, Code::DnsFailed, "no such host", "check the host name");
        assert_eq!(CheckStatus::of(&Check::from_steps(vec![pass.clone()])), CheckStatus::Ok);
        assert_eq!(CheckStatus::of(&Check::from_steps(vec![pass.clone(), warn.clone()])), CheckStatus::Warn);
        assert_eq!(CheckStatus::of(&Check::from_steps(vec![pass, warn, fail])), CheckStatus::Fail);
    }
}
