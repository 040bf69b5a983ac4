//! The client commands: shared plumbing (finding the server and the token, reading secrets,
//! resolving names, reporting failures with the right exit code) and one module per noun.

pub mod auth;
pub mod credential;
pub mod repo;

use berth::client::{display_base, normalize_base, ApiClient, ClientError, DEFAULT_URL};
use berth::output::{self, clean, step_table};
use berth_core::{Code, Step, StepStatus};
use berth_proto::{ApiError, ErrorBody, Id};
use std::io::BufRead;

/// Options every client command shares.
#[derive(Debug, Clone, Default)]
pub struct Global {
    /// `--url` / `BERTH_URL`, when given.
    pub url: Option<String>,
    pub json: bool,
}

/// How a command ended, when not plainly successful. Decides the exit code.
#[derive(Debug)]
pub enum Failure {
    /// Bad arguments clap could not catch: exit 2.
    Usage(String),
    /// No usable session: exit 2.
    NotLoggedIn(String),
    /// The API refused (exit 1; 2 for a refused token), or could not be reached (exit 2).
    Client(ClientError),
    /// A check failed; its steps are already printed: exit 1.
    CheckFailed,
    /// Anything else: exit 1.
    Other(anyhow::Error),
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Failure::Client(e)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}

pub type CmdResult = Result<(), Failure>;

/// A connected command: the client (with a token when one is needed) and the output mode.
#[derive(Debug)]
pub struct Ctx {
    pub client: ApiClient,
    pub json: bool,
}

impl Ctx {
    /// The server's address as people write it.
    pub fn url(&self) -> String {
        display_base(&self.client.base)
    }

    /// Prints a value: pretty JSON with `--json`, else the human rendering.
    pub fn emit<T: serde::Serialize + ?Sized>(&self, value: &T, human: impl FnOnce() -> String) {
        if self.json {
            println!("{}", output::json(value));
        } else {
            print!("{}", human());
        }
    }
}

/// The Berth URL a command talks to, before any token is chosen: `--url`/`BERTH_URL`, else the
/// saved session's server, else the default.
pub fn base_url(global: &Global, session: Option<&crate::session::Session>) -> String {
    global.url.clone().or_else(|| session.map(|s| s.url.clone())).unwrap_or_else(|| DEFAULT_URL.to_owned())
}

/// Builds the client for a command. The token comes from `BERTH_TOKEN` or the saved session,
/// never from the command line; a session's token is only sent to the server it came from.
pub fn connect(global: &Global, need_token: bool) -> Result<Ctx, Failure> {
    let env_token = std::env::var("BERTH_TOKEN").ok().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    let session = match crate::session::default_path().and_then(|p| crate::session::load(&p)) {
        Ok(s) => s,
        Err(_) if env_token.is_some() || !need_token => None,
        Err(e) => return Err(Failure::NotLoggedIn(format!("not logged in: {e:#}"))),
    };
    let base = base_url(global, session.as_ref());
    let mut client = ApiClient::new(&base).map_err(|e| match e {
        ClientError::Transport(m) | ClientError::Decode(m) => {
            Failure::Usage(format!("bad Berth URL (--url or BERTH_URL): {m}"))
        }
        other => Failure::Client(other),
    })?;
    let url = display_base(&client.base);
    if let Some(t) = env_token {
        client.set_token(Some(t));
    } else if need_token {
        let Some(s) = session else {
            return Err(Failure::NotLoggedIn("not logged in: run `berth login` (or set BERTH_TOKEN)".to_owned()));
        };
        if normalize_base(&s.url).ok().as_ref() != Some(&client.base) {
            return Err(Failure::NotLoggedIn(format!(
                "not logged in to {url}: the saved session is for {}; run `berth --url {url} login`",
                s.url.trim_end_matches('/')
            )));
        }
        if s.expired(chrono::Utc::now()) {
            return Err(Failure::NotLoggedIn(format!(
                "your session with {url} expired at {}: run `berth login`",
                s.expires_at.format("%Y-%m-%d %H:%M UTC")
            )));
        }
        client.set_token(Some(s.token));
    }
    Ok(Ctx { client, json: global.json })
}

/// Prints a failure and gives the exit code. `login` says whether the command was a login,
/// where a 401 means a wrong password rather than a missing session.
pub fn report(failure: Failure, url: &str, json: bool, login: bool) -> u8 {
    match failure {
        Failure::Usage(m) => {
            eprintln!("error: {m}");
            2
        }
        Failure::NotLoggedIn(m) => {
            eprintln!("{m}");
            2
        }
        Failure::CheckFailed => 1,
        Failure::Other(e) => {
            eprintln!("error: {e:#}");
            1
        }
        Failure::Client(ClientError::Transport(m)) => {
            eprintln!("cannot reach Berth at {url}: {m}");
            eprintln!("hint: is the server running (`berth serve`)? Point the CLI at it with --url or BERTH_URL");
            2
        }
        Failure::Client(ClientError::Decode(m)) => {
            eprintln!("error: unexpected answer from Berth at {url}: {m}");
            eprintln!("hint: the CLI and the server may be different versions");
            1
        }
        Failure::Client(ClientError::Api { status, body }) => {
            if json {
                println!("{}", output::json(&ErrorBody { error: body.clone() }));
            } else if !body.checks.is_empty() {
                println!("{}", step_table(&body.checks));
            }
            if status == 401 && body.code == Code::Unauthenticated && !login {
                eprintln!(
                    "not logged in: Berth at {url} refused the token ({}): run `berth login`",
                    clean(&body.message)
                );
                return 2;
            }
            eprintln!("error[{}]: {}", body.code, clean(&body.message));
            if !body.remedy.is_empty() {
                eprintln!("hint: {}", clean(&body.remedy));
            }
            1
        }
    }
}

/// One line of `r` as a secret: the trailing newline (`\n` or `\r\n`) removed, nothing else.
/// An empty line or no input at all is refused.
pub fn read_secret_line(r: &mut impl BufRead, what: &str) -> Result<String, Failure> {
    let mut line = String::new();
    let n = r.read_line(&mut line).map_err(|e| Failure::Usage(format!("cannot read the {what} from stdin: {e}")))?;
    if n == 0 {
        return Err(Failure::Usage(format!(
            "no {what} on stdin: pipe it in, e.g. `printf '%s\\n' \"$SECRET\" | berth ...`"
        )));
    }
    if line.ends_with('\n') {
        line.pop();
        if line.ends_with('\r') {
            line.pop();
        }
    }
    if line.is_empty() {
        return Err(Failure::Usage(format!("the {what} on stdin is empty")));
    }
    Ok(line)
}

/// The secret from one line of standard input.
pub fn secret_from_stdin(what: &str) -> Result<String, Failure> {
    read_secret_line(&mut std::io::stdin().lock(), what)
}

/// The secret from a prompt on the terminal, not echoed.
pub fn prompt_secret(prompt: &str, what: &str) -> Result<String, Failure> {
    let s = rpassword::prompt_password(prompt).map_err(|e| {
        Failure::Usage(format!("cannot prompt for the {what} ({e}): pipe it in with --{}-stdin", flag_word(what)))
    })?;
    if s.is_empty() {
        return Err(Failure::Usage(format!("no {what} given")));
    }
    Ok(s)
}

fn flag_word(what: &str) -> &'static str {
    if what == "password" {
        "password"
    } else {
        "secret"
    }
}

/// A clone URL given as several words (a pasted `git clone …` command) as one string; the
/// server picks the URL out of it.
pub fn join_words(words: &[String]) -> String {
    words.iter().map(|w| w.trim()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Picks an item by id (a number) or by name (case-insensitive).
pub fn pick<'a, T>(
    items: &'a [T],
    key: &str,
    id_of: impl Fn(&T) -> Id,
    name_of: impl Fn(&T) -> &str,
) -> Result<&'a T, Vec<&'a T>> {
    let key = key.trim();
    let found: Vec<&T> = match key.parse::<Id>() {
        Ok(id) => items.iter().filter(|i| id_of(i) == id).collect(),
        Err(_) => {
            let exact: Vec<&T> = items.iter().filter(|i| name_of(i) == key).collect();
            if exact.len() == 1 {
                exact
            } else {
                items.iter().filter(|i| name_of(i).to_lowercase() == key.to_lowercase()).collect()
            }
        }
    };
    match found.as_slice() {
        [one] => Ok(one),
        _ => Err(found),
    }
}

/// The API-style error for a name that matches nothing, or more than one thing.
pub fn not_resolved(kind: &str, key: &str, matches: &[(Id, String)], code: Code, list_cmd: &str) -> Failure {
    let body = if matches.is_empty() {
        ApiError {
            code,
            message: format!("no {kind} has the id or name {key:?}"),
            remedy: format!("run `{list_cmd}` to see names and ids"),
            checks: Vec::new(),
        }
    } else {
        let ids: Vec<String> = matches.iter().map(|(id, n)| format!("{n} (id {id})")).collect();
        ApiError {
            code: Code::InvalidInput,
            message: format!("several {kind}s are named {key:?}: {}", ids.join(", ")),
            remedy: "give the id instead".to_owned(),
            checks: Vec::new(),
        }
    };
    Failure::Client(ClientError::Api { status: if matches.is_empty() { 404 } else { 409 }, body })
}

/// A numeric key is an id as is; a name needs the list.
pub fn as_id(key: &str) -> Option<Id> {
    key.trim().parse().ok()
}

/// `"name" (id 3)`, or `id 3` when the name was not looked up.
pub fn describe(id: Id, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("{:?} (id {id})", clean(n)),
        None => format!("id {id}"),
    }
}

/// Warned steps of a passing check, as `warning[code]: …` lines.
pub fn warnings(steps: &[Step]) -> String {
    let mut out = String::new();
    for s in steps.iter().filter(|s| s.status == StepStatus::Warn) {
        out.push_str(&format!("warning[{}]: {}\n", s.code, clean(&s.message)));
        if !s.remedy.is_empty() {
            out.push_str(&format!("  → {}\n", clean(&s.remedy)));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn read(input: &str) -> Result<String, Failure> {
        read_secret_line(&mut std::io::Cursor::new(input.as_bytes()), "secret")
    }

    #[test]
    fn secret_from_stdin_drops_only_the_trailing_newline() {
        assert_eq!(read("tok3n\n").unwrap(), "tok3n");
        assert_eq!(read("tok3n\r\n").unwrap(), "tok3n");
        assert_eq!(read("tok3n").unwrap(), "tok3n");
        assert_eq!(read(" sp aced \n").unwrap(), " sp aced ");
        assert_eq!(read("first\nsecond\n").unwrap(), "first");
        assert!(matches!(read(""), Err(Failure::Usage(m)) if m.contains("no secret")));
        assert!(matches!(read("\n"), Err(Failure::Usage(m)) if m.contains("empty")));
        assert!(matches!(read("\r\n"), Err(Failure::Usage(_))));
    }

    #[test]
    fn words_join_into_one_clone_url() {
        let w = |s: &[&str]| join_words(&s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>());
        assert_eq!(w(&["https://bitbucket.org/ws/repo.git"]), "https://bitbucket.org/ws/repo.git");
        assert_eq!(
            w(&["git", "clone", "https://bitbucket.org/ws/repo.git"]),
            "git clone https://bitbucket.org/ws/repo.git"
        );
        assert_eq!(w(&[" git ", "", "clone", "x"]), "git clone x");
    }

    #[test]
    fn pick_by_id_or_case_insensitive_name() {
        let items =
            vec![(1, "Prod".to_owned()), (2, "prod-ro".to_owned()), (3, "Dup".to_owned()), (4, "dup".to_owned())];
        let p = |k: &str| pick(&items, k, |i| i.0, |i| i.1.as_str()).map(|i| i.0).map_err(|v| v.len());
        assert_eq!(p("1"), Ok(1));
        assert_eq!(p("PROD"), Ok(1));
        assert_eq!(p("prod-RO"), Ok(2));
        assert_eq!(p("Dup"), Ok(3), "an exact match wins over case-insensitive ones");
        assert_eq!(p("DUP"), Err(2));
        assert_eq!(p("nope"), Err(0));
        assert_eq!(p("9"), Err(0));
    }
}
