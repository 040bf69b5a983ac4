//! The client commands: shared plumbing (finding the server and the token, reading secrets,
//! resolving names, reporting failures with the right exit code) and one module per noun.

pub mod auth;
pub mod channel;
pub mod config;
pub mod credential;
pub mod import;
pub mod known_hosts;
pub mod repo;
pub mod template;

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

/// The exit codes of `berth`, as `berth --help` and the README document them. Scripts rely on
/// them: never renumber one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    /// A check or a verification ran and failed (its result is printed).
    Failed = 1,
    /// Bad arguments, a bad Berth URL, or a local problem the command cannot get past.
    Usage = 2,
    /// The server refused the request (4xx other than 401).
    Refused = 3,
    /// No session, an expired one, or a token the server refused (401).
    NotLoggedIn = 4,
    /// The server cannot be reached, or answered 5xx or something that is not Berth's API.
    Unavailable = 5,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// An error the CLI finds itself, without the server: the same shape as the API's error, with
/// a stable code of the CLI's own (`usage_error`, `not_logged_in`, `session_expired`,
/// `server_unreachable`, `unexpected_answer`, `local_error`, and `berth admin`'s codes).
#[derive(Debug, Clone)]
pub struct LocalError {
    pub code: &'static str,
    pub message: String,
    pub remedy: String,
    pub exit: Exit,
}

/// How a command ended, when not plainly successful. Decides the exit code.
#[derive(Debug)]
pub enum Failure {
    /// Bad arguments clap could not catch: exit 2.
    Usage(String),
    /// Found without the server's word: no session, a data directory without a database, …
    Local(LocalError),
    /// The API refused (exit 3; 4 for a 401; 1 when a check ran and failed), or could not be
    /// reached or answered nonsense (exit 5).
    Client(ClientError),
    /// A check or a verification failed and its result is already printed: exit 1. Commands
    /// that verify something say so with [`verdict`].
    CheckFailed,
}

impl Failure {
    pub fn local(code: &'static str, exit: Exit, message: impl Into<String>, remedy: impl Into<String>) -> Self {
        Failure::Local(LocalError { code, message: message.into(), remedy: remedy.into(), exit })
    }

    /// No usable session: exit 4.
    pub fn not_logged_in(message: impl Into<String>, remedy: impl Into<String>) -> Self {
        Failure::local("not_logged_in", Exit::NotLoggedIn, message, remedy)
    }
}

/// How a command that verified something ends: `Ok` when it passed, exit 1 when it did not
/// (print the result first, in either mode).
pub fn verdict(passed: bool) -> CmdResult {
    if passed {
        Ok(())
    } else {
        Err(Failure::CheckFailed)
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Failure::Client(e)
    }
}

/// Local trouble with no better home (the session file cannot be written): exit 2.
impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::local("local_error", Exit::Usage, format!("{e:#}"), "")
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
            outln!("{}", output::json(value));
        } else {
            outp!("{}", human());
        }
    }
}

impl Ctx {
    /// Prints a paged list as its pages arrive, at most `max` items: with `--json` one JSON
    /// array written item by item, else `table(page, first)` per page (`first`: print the
    /// header). Stops asking for pages once standard output is gone (`| head`). Returns how
    /// many items were printed; prints `empty` when there were none (not with `--json`).
    pub async fn stream<T: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
        mut pages: berth::client::Pager<T>,
        max: Option<usize>,
        mut table: impl FnMut(&[T], bool) -> String,
        empty: &str,
    ) -> Result<usize, Failure> {
        let mut shown = 0usize;
        let mut opened = false;
        while let Some(mut items) = pages.next_page().await? {
            if let Some(max) = max {
                items.truncate(max.saturating_sub(shown));
            }
            if self.json && !opened {
                opened = true;
                // Opened once the first page is in: a refusal of the first request prints the
                // error shape alone, as every command does.
                outp!("[");
            }
            if self.json {
                for item in &items {
                    let sep = if shown == 0 { "\n" } else { ",\n" };
                    outp!("{sep}{}", output::json(item));
                    shown += 1;
                }
            } else if !items.is_empty() {
                outp!("{}", table(&items, shown == 0));
                shown += items.len();
            }
            if crate::term::stdout_gone() || max.is_some_and(|m| shown >= m) {
                break;
            }
        }
        if self.json {
            outln!(
                "{}",
                if !opened {
                    "[]"
                } else if shown == 0 {
                    "]"
                } else {
                    "\n]"
                }
            );
        } else if shown == 0 {
            outp!("{empty}");
        }
        Ok(shown)
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
        Err(e) => return Err(Failure::not_logged_in(format!("not logged in: {e:#}"), "run `berth login`")),
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
            return Err(Failure::not_logged_in("not logged in", "run `berth login` (or set BERTH_TOKEN)"));
        };
        if normalize_base(&s.url).ok().as_ref() != Some(&client.base) {
            return Err(Failure::not_logged_in(
                format!("not logged in to {url}: the saved session is for {}", s.url.trim_end_matches('/')),
                format!("run `berth --url {url} login`"),
            ));
        }
        if s.expired(chrono::Utc::now()) {
            return Err(Failure::local(
                "session_expired",
                Exit::NotLoggedIn,
                format!("your session with {url} expired at {}", s.expires_at.format("%Y-%m-%d %H:%M UTC")),
                "run `berth login`",
            ));
        }
        client.set_token(Some(s.token));
    }
    Ok(Ctx { client, json: global.json })
}

/// The error as printed: the API's error shape, whoever found it.
#[derive(serde::Serialize)]
struct Shown<'a> {
    code: &'a str,
    message: &'a str,
    remedy: &'a str,
    checks: &'a [Step],
}

/// Prints a failure and gives the exit code. With `--json` the error goes to standard output
/// as the API's error JSON (`{"error": {"code", "message", "remedy", "checks"}}`), with the
/// CLI's own code when the server did not answer one; else to standard error for a person.
/// `login` says whether the command was a login, where a 401 means a wrong password rather
/// than a missing session.
pub fn report(failure: Failure, url: &str, json: bool, login: bool) -> u8 {
    let local = |code: &'static str, exit: Exit, message: String, remedy: &str| LocalError {
        code,
        message,
        remedy: remedy.to_owned(),
        exit,
    };
    let l = match failure {
        Failure::CheckFailed => return Exit::Failed.code(),
        Failure::Usage(m) => local("usage_error", Exit::Usage, m, "see `berth --help`"),
        Failure::Local(l) => l,
        Failure::Client(ClientError::Transport(m)) => local(
            "server_unreachable",
            Exit::Unavailable,
            format!("cannot reach Berth at {url}: {m}"),
            "is the server running (`berth serve`)? Point the CLI at it with --url or BERTH_URL",
        ),
        Failure::Client(ClientError::Decode(m)) => local(
            "unexpected_answer",
            Exit::Unavailable,
            format!("unexpected answer from Berth at {url}: {m}"),
            "the CLI and the server may be different versions",
        ),
        Failure::Client(ClientError::Api { status, body }) => return report_api(status, &body, url, json, login),
    };
    if json {
        let shown = Shown { code: l.code, message: &l.message, remedy: &l.remedy, checks: &[] };
        outln!("{}", output::json(&serde_json::json!({ "error": shown })));
    } else {
        errln!("error[{}]: {}", l.code, clean(&l.message));
        if !l.remedy.is_empty() {
            errln!("hint: {}", clean(&l.remedy));
        }
    }
    l.exit.code()
}

/// The exit code an API error gives: a 401 is "not logged in", a refusal because a check failed
/// is a failed check, any other 4xx a refusal, and the rest (5xx, a proxy's answer) a server
/// that is not there to serve.
pub fn api_exit(status: u16, body: &ApiError) -> Exit {
    if status == 401 {
        Exit::NotLoggedIn
    } else if body.checks.iter().any(|s| s.status == StepStatus::Fail) {
        Exit::Failed
    } else if (400..500).contains(&status) {
        Exit::Refused
    } else {
        Exit::Unavailable
    }
}

fn report_api(status: u16, body: &ApiError, url: &str, json: bool, login: bool) -> u8 {
    let exit = api_exit(status, body);
    if json {
        outln!("{}", output::json(&ErrorBody { error: body.clone() }));
        return exit.code();
    }
    if !body.checks.is_empty() {
        outln!("{}", step_table(&body.checks));
    }
    if status == 401 && body.code == Code::Unauthenticated && !login {
        errln!("error[{}]: not logged in: Berth at {url} refused the token ({})", body.code, clean(&body.message));
        errln!("hint: run `berth login`");
        return exit.code();
    }
    errln!("error[{}]: {}", body.code, clean(&body.message));
    // A failed check's remedy is already printed under its step in the table: said once.
    let in_table = body.checks.iter().any(|s| s.remedy == body.remedy);
    if !body.remedy.is_empty() && !in_table {
        errln!("hint: {}", clean(&body.remedy));
    }
    exit.code()
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
