//! URLs as Berth shows and checks them: never with a query string (it can carry tokens or SSO
//! state), never with user info (credentials are kept apart from URLs).

use crate::error::{NetError, Stage};
use berth_core::Code;
use url::Url;

/// A URL fit to show: no query string or fragment (they can carry tokens or SSO state).
pub fn without_query(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// `host[:port]` of a URL, the port only when it is not the scheme's default.
pub fn authority(url: &Url) -> String {
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        Some(h) => h.to_string(),
        None => String::new(),
    };
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

/// The repository URL inside a Git endpoint URL (`…/repo.git/info/refs?service=…` or
/// `…/repo.git/git-upload-pack`), or `None` when the URL is not a Git endpoint.
pub fn repository_of(endpoint: &Url) -> Option<Url> {
    let path = endpoint.path();
    let base = path.strip_suffix("/info/refs").or_else(|| path.strip_suffix("/git-upload-pack"))?.to_owned();
    let mut repo = endpoint.clone();
    repo.set_path(&base);
    repo.set_query(None);
    repo.set_fragment(None);
    Some(repo)
}

/// Whether the URL carries a user name or a password.
pub fn has_user_info(url: &Url) -> bool {
    !url.username().is_empty() || url.password().is_some()
}

/// Refuses a URL with user info as `secret_in_url`. `subject` names the URL in the message
/// ("URL", "API URL"); the message never repeats the URL, so never the secret.
pub fn refuse_user_info(url: &Url, stage: Stage, subject: &str, remedy: &str) -> Result<(), NetError> {
    if !has_user_info(url) {
        return Ok(());
    }
    Err(NetError::new(
        stage,
        Code::SecretInUrl,
        format!("The {subject} contains a user name or password; Berth keeps credentials separate from URLs."),
        remedy,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_shows_non_default_ports_only() -> Result<(), url::ParseError> {
        assert_eq!(authority(&Url::parse("https://api.bitbucket.org/2.0")?), "api.bitbucket.org");
        assert_eq!(authority(&Url::parse("https://git.example:7990/rest")?), "git.example:7990");
        assert_eq!(authority(&Url::parse("http://[::1]:8080/")?), "[::1]:8080");
        Ok(())
    }

    #[test]
    fn repository_of_endpoints() -> Result<(), url::ParseError> {
        let u = Url::parse("https://new.example/team/app.git/info/refs?service=git-upload-pack")?;
        assert_eq!(repository_of(&u).map(|u| u.to_string()).as_deref(), Some("https://new.example/team/app.git"));
        let u = Url::parse("https://new.example/team/app.git/git-upload-pack")?;
        assert_eq!(repository_of(&u).map(|u| u.to_string()).as_deref(), Some("https://new.example/team/app.git"));
        assert_eq!(repository_of(&Url::parse("https://sso.example/login?next=x")?), None);
        Ok(())
    }

    #[test]
    fn user_info_is_refused_without_repeating_it() -> Result<(), url::ParseError> {
        let u = Url::parse("https://jo:hunter2@git.example/app.git")?;
        assert!(has_user_info(&u) && has_user_info(&Url::parse("https://jo@git.example/")?));
        let e = refuse_user_info(&u, Stage::Discovery, "URL", "Remove them.").err();
        assert_eq!(e.as_ref().map(|e| e.code), Some(Code::SecretInUrl));
        assert!(e.is_some_and(|e| !e.message.contains("hunter2") && !e.message.contains("jo")));
        assert!(refuse_user_info(&Url::parse("https://git.example/")?, Stage::Discovery, "URL", "").is_ok());
        Ok(())
    }
}
