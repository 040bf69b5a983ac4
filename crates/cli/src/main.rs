//! `berth`: runs the Berth server (`serve`), administers it on its host (`admin`), and drives
//! its REST API as a client (`login`, `auth`, `credential`, `repo`).
//!
//! Exit codes: see `exit_codes!`, printed by `berth --help` and listed in the README.

// Every line goes through `term`, which stops quietly at a closed pipe where the std macros
// would panic.
#![deny(clippy::print_stdout, clippy::print_stderr)]

#[macro_use]
mod term;
mod backup_cmd;
mod commands;
mod server_cmd;
mod session;

use clap::{Args, Parser, Subcommand};
use commands::auth::{AuthCmd, LoginArgs};
use commands::channel::ChannelCmd;
use commands::config::{ApplyArgs, ExportArgs};
use commands::credential::CredentialCmd;
use commands::known_hosts::KnownHostsCmd;
use commands::repo::RepoCmd;
use commands::template::TemplateCmd;
use commands::{Exit, Failure, Global};
use std::path::PathBuf;
use std::process::ExitCode;

/// What each exit code means (`berth --help`; the README has the same list). Scripts rely on
/// them: see `commands::Exit`.
macro_rules! exit_codes {
    () => {
        "Exit codes:
  0  success
  1  a check or verification failed (also a registration or update refused because its check failed)
  2  usage error: bad arguments or Berth URL, a local problem (the session file), or
     `berth admin` on a data directory without a database
  3  refused by the server: an HTTP 4xx other than 401 (not found, forbidden, conflict, invalid input)
  4  not logged in, session expired, or the token was refused (401)
  5  the server cannot be reached, or answered 5xx or something that is not Berth's API

With --json, results and errors are JSON on standard output. An error has the API's error shape,
{\"error\": {\"code\", \"message\", \"remedy\", \"checks\"}}, with a code of the CLI's own when the
server did not answer one: usage_error, not_logged_in, session_expired, server_unreachable,
unexpected_answer, local_error."
    };
}

#[derive(Debug, Parser)]
#[command(name = "berth", version, about = "Store Git-host credentials and register repositories after checking them.")]
#[command(after_help = concat!(
    "Log in with `berth login`; the token is kept in a private session file, or taken from BERTH_TOKEN.\n\n",
    exit_codes!()
))]
pub struct Cli {
    /// The Berth server to talk to [default: the saved session's, else http://127.0.0.1:8080].
    #[arg(long, env = "BERTH_URL", value_name = "URL")]
    pub url: Option<String>,
    /// Print JSON instead of tables: the API's answers, and errors in the API's error shape.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Berth server.
    Serve,
    /// Administer the server on its own host (database and key access, no API).
    Admin(AdminArgs),
    /// Log in and save the session token to a private file (also `berth auth login`).
    Login(LoginArgs),
    /// End the session and remove the saved token (also `berth auth logout`).
    Logout,
    /// Log in, log out, and see who you are logged in as, where, and until when.
    #[command(subcommand)]
    Auth(AuthCmd),
    /// Manage stored Git-host credentials.
    #[command(subcommand, alias = "credentials", alias = "cred")]
    Credential(CredentialCmd),
    /// List remote branches and manage registered repositories.
    #[command(subcommand, alias = "repos", alias = "repository")]
    Repo(RepoCmd),
    /// Credential templates: which credential a clone URL uses when none is named.
    #[command(subcommand, alias = "templates")]
    Template(TemplateCmd),
    /// Notification channels (webhook, Slack, email): add, list, test, deliveries, redeliver.
    #[command(subcommand, alias = "channels", alias = "notify")]
    Channel(ChannelCmd),
    /// SSH host keys Berth trusts: list, trust by fingerprint or key, remove, import a known_hosts file.
    #[command(subcommand, name = "known-hosts", alias = "known-host")]
    KnownHosts(KnownHostsCmd),
    /// Make credentials, templates and repositories match a YAML file (configuration as code).
    Apply(ApplyArgs),
    /// Write the current credentials, templates and repositories as a YAML file `berth apply` takes.
    Export(ExportArgs),
}

#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Admin commands read the server's own configuration, as `berth serve` does:
  BERTH_DATA_DIR         the data directory (--data-dir wins; default ./berth-data)
  BERTH_DATABASE_URL     the database (default sqlite://<data directory>/berth.db)
  BERTH_MASTER_KEY_FILE  the master key file (default <data directory>/master.key)
  BERTH_CONFIG           a TOML file that may set data_dir, database_url and master_key_file
They refuse to run where there is no Berth database (exit 2), and never create one.")]
pub struct AdminArgs {
    /// The server's data directory (its SQLite database and master key) [default: BERTH_DATA_DIR, else ./berth-data].
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub cmd: AdminCmd,
}

#[derive(Debug, Clone, Subcommand)]
pub enum AdminCmd {
    /// Set a user's password (prompted for, or read from stdin).
    ResetPassword {
        username: String,
        /// Read the password from one line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Re-encrypt every stored secret under a new key.
    RotateKey,
    /// Write a consistent snapshot of the installation to FILE while the server runs.
    ///
    /// The master key is not in it unless --include-key is given; then it is sealed under a
    /// passphrase (prompted for, or one line of standard input with --passphrase-stdin).
    Backup {
        /// The snapshot file to write (replaced atomically when it exists).
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
        /// Put the master key in the snapshot, sealed under a passphrase.
        #[arg(long)]
        include_key: bool,
        /// Read the passphrase from one line of standard input instead of prompting.
        #[arg(long)]
        passphrase_stdin: bool,
    },
    /// Restore a snapshot into an empty database (a new data directory, or an empty PostgreSQL database).
    ///
    /// The master key file must be in place (BERTH_MASTER_KEY_FILE), unless the snapshot was
    /// made with --include-key: then its passphrase is asked for and the key file written.
    Restore {
        /// The snapshot file `berth admin backup` wrote.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// Read the passphrase from one line of standard input instead of prompting.
        #[arg(long)]
        passphrase_stdin: bool,
    },
    /// Check the database: integrity, every secret opens, every repository's credential is there; counts.
    Verify,
    /// Copy this SQLite installation into an empty PostgreSQL database (stop the server first).
    ///
    /// Keep the password out of the URL: set PGPASSWORD or use ~/.pgpass (process arguments
    /// are visible to other users of the machine).
    Migrate {
        /// The PostgreSQL database, postgres://user@host:port/database.
        #[arg(long, value_name = "URL", env = "BERTH_MIGRATE_TO", hide_env_values = true)]
        to: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return ExitCode::from(parse_error(e)),
    };
    let global = Global { url: cli.url, json: cli.json };
    let login = matches!(cli.command, Command::Login(_) | Command::Auth(AuthCmd::Login(_)));
    let result = match cli.command {
        Command::Serve => {
            server_cmd::serve().await.map_err(|e| Failure::local("serve_failed", Exit::Failed, format!("{e:#}"), ""))
        }
        Command::Admin(args) => server_cmd::admin(args, global.json).await,
        cmd => {
            init_client_tracing();
            run_client(&global, cmd).await
        }
    };
    match result {
        Ok(()) => ExitCode::from(Exit::Ok.code()),
        Err(f) => ExitCode::from(commands::report(f, &display_url(&global), global.json, login)),
    }
}

/// Arguments clap refused. Help and the version print as clap prints them; a usage error
/// prints as clap prints it too (exit 2), or, when `--json` was asked for, as the API's error
/// shape on standard output.
fn parse_error(e: clap::Error) -> u8 {
    use clap::error::ErrorKind;
    let asked_json = std::env::args_os().skip(1).take_while(|a| a != "--").any(|a| a == "--json");
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) || !asked_json {
        // clap ignores a closed pipe here (`berth --help | head -1`).
        let _ = e.print();
        return u8::try_from(e.exit_code()).unwrap_or(Exit::Usage.code());
    }
    let (message, remedy) = if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        ("a subcommand is required".to_owned(), "see `berth --help`".to_owned())
    } else {
        let text = e.render().to_string();
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let message = lines.next().unwrap_or("invalid arguments").trim_start_matches("error: ").to_owned();
        (message, lines.collect::<Vec<_>>().join(" "))
    };
    commands::report(Failure::local("usage_error", Exit::Usage, message, remedy), "", true, false)
}

async fn run_client(global: &Global, cmd: Command) -> commands::CmdResult {
    match cmd {
        Command::Login(a) | Command::Auth(AuthCmd::Login(a)) => commands::auth::login(global, a).await,
        Command::Logout | Command::Auth(AuthCmd::Logout) => commands::auth::logout(global).await,
        Command::Auth(AuthCmd::Status) => commands::auth::status(global).await,
        Command::Credential(c) => commands::credential::run(global, c).await,
        Command::Repo(r) => commands::repo::run(global, r).await,
        Command::Template(t) => commands::template::run(global, t).await,
        Command::Channel(c) => commands::channel::run(global, c).await,
        Command::KnownHosts(k) => commands::known_hosts::run(global, k).await,
        Command::Apply(a) => commands::config::apply(global, a).await,
        Command::Export(a) => commands::config::export(global, a).await,
        Command::Serve | Command::Admin(_) => Ok(()),
    }
}

/// The server a failed command talked to, for its error message.
fn display_url(global: &Global) -> String {
    let saved = session::default_path().ok().and_then(|p| session::load(&p).ok().flatten());
    let base = commands::base_url(global, saved.as_ref());
    berth::client::normalize_base(&base).map(|u| berth::client::display_base(&u)).unwrap_or(base)
}

/// Client commands log warnings to stderr; `RUST_LOG` says more. The server sets up its own.
fn init_client_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("berth").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_pasted_git_clone_command_is_one_clone_url() {
        for args in [
            &["repo", "branches", "git", "clone", "https://bitbucket.org/ws/repo.git", "--credential", "prod"][..],
            &["repo", "branches", "--credential", "prod", "git", "clone", "https://bitbucket.org/ws/repo.git"][..],
        ] {
            let cli = parse(args).unwrap();
            let Command::Repo(RepoCmd::Branches { url, credential, .. }) = cli.command else { panic!("not branches") };
            assert_eq!(commands::join_words(&url), "git clone https://bitbucket.org/ws/repo.git");
            assert_eq!(credential.as_deref(), Some("prod"));
        }
        let cli = parse(&[
            "--url",
            "http://b:9",
            "repo",
            "register",
            "--name",
            "app",
            "--url",
            "git",
            "clone",
            "https://h/x.git",
            "--credential",
            "7",
        ])
        .unwrap();
        assert_eq!(cli.url.as_deref(), Some("http://b:9"));
        let Command::Repo(RepoCmd::Register(a)) = cli.command else { panic!("not register") };
        assert_eq!(commands::join_words(&a.url), "git clone https://h/x.git");
        assert_eq!(a.credential.as_deref(), Some("7"));
        assert_eq!(a.vcs, "git");
        assert!(parse(&["repo", "branches", "--credential", "x"]).is_err(), "a URL is required");
        // Without --credential a template chooses; `repo add` is `repo register`.
        let cli = parse(&["repo", "add", "--name", "app", "--url", "https://h/x.git"]).unwrap();
        let Command::Repo(RepoCmd::Register(a)) = cli.command else { panic!("not register") };
        assert_eq!(a.credential, None);
    }

    #[test]
    fn secrets_have_no_command_line_option() {
        for args in [
            &["credential", "add", "--name", "n", "--kind", "access_token", "--secret", "s3cr3t"][..],
            &["credential", "add", "--name", "n", "--kind", "access_token", "--token", "s3cr3t"][..],
            &["login", "--password", "s3cr3t"][..],
            &["--token", "s3cr3t", "credential", "list"][..],
        ] {
            let e = parse(args).expect_err("refused");
            assert_eq!(e.exit_code(), 2);
        }
        assert!(parse(&[
            "credential",
            "add",
            "--name",
            "n",
            "--kind",
            "bitbucket_api_token",
            "--email",
            "a@b.example",
            "--scope",
            "a,b",
            "--scope",
            "c",
            "--secret-stdin"
        ])
        .is_ok());
    }

    #[test]
    fn admin_commands_parse_for_the_server_side() {
        let cli = parse(&["admin", "reset-password", "alice", "--password-stdin"]).unwrap();
        assert!(
            matches!(cli.command, Command::Admin(AdminArgs { cmd: AdminCmd::ResetPassword { ref username, password_stdin: true }, data_dir: None }) if username == "alice")
        );
        assert!(matches!(
            parse(&["admin", "rotate-key"]).unwrap().command,
            Command::Admin(AdminArgs { cmd: AdminCmd::RotateKey, .. })
        ));
        for args in [
            &["admin", "--data-dir", "/srv/berth", "rotate-key"][..],
            &["admin", "rotate-key", "--data-dir", "/srv/berth"][..],
        ] {
            let Command::Admin(a) = parse(args).unwrap().command else { panic!("not admin") };
            assert_eq!(a.data_dir.as_deref(), Some(std::path::Path::new("/srv/berth")));
        }
        assert!(matches!(
            parse(&["admin", "backup", "--to", "/b/s.snapshot", "--include-key"]).unwrap().command,
            Command::Admin(AdminArgs { cmd: AdminCmd::Backup { include_key: true, passphrase_stdin: false, .. }, .. })
        ));
        assert!(parse(&["admin", "backup"]).is_err(), "--to is required");
        assert!(parse(&["admin", "backup", "--to", "f", "--passphrase", "x"]).is_err(), "never a passphrase argument");
        assert!(matches!(
            parse(&["admin", "restore", "--from", "s", "--passphrase-stdin"]).unwrap().command,
            Command::Admin(AdminArgs { cmd: AdminCmd::Restore { passphrase_stdin: true, .. }, .. })
        ));
        assert!(matches!(
            parse(&["admin", "migrate", "--to", "postgres://berth@db/berth"]).unwrap().command,
            Command::Admin(AdminArgs { cmd: AdminCmd::Migrate { ref to }, .. }) if to == "postgres://berth@db/berth"
        ));
        assert!(matches!(parse(&["auth", "status"]).unwrap().command, Command::Auth(AuthCmd::Status)));
        assert!(
            matches!(parse(&["auth", "login", "-u", "bob"]).unwrap().command, Command::Auth(AuthCmd::Login(ref a)) if a.username == "bob")
        );
        assert!(parse(&["credential", "update", "x", "--rotate-secret", "--secret-stdin"]).is_err());
        assert!(parse(&["credential", "update", "x", "--expires-on", "2026-01-01", "--clear-expiry"]).is_err());
    }
}
