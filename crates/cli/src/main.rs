//! `berth`: runs the Berth server (`serve`), administers it on its host (`admin`), and drives
//! its REST API as a client (`login`, `credential`, `repo`).
//!
//! Exit codes: 0 success; 1 a check failed or the API refused the request; 2 a usage error,
//! no usable login, or a server that cannot be reached.

mod commands;
mod server_cmd;
mod session;

use clap::{Parser, Subcommand};
use commands::auth::LoginArgs;
use commands::credential::CredentialCmd;
use commands::repo::RepoCmd;
use commands::Global;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "berth", version, about = "Store Git-host credentials and register repositories after checking them.")]
#[command(
    after_help = "Log in with `berth login`; the token is kept in a private session file, or taken from BERTH_TOKEN."
)]
pub struct Cli {
    /// The Berth server to talk to [default: the saved session's, else http://127.0.0.1:8080].
    #[arg(long, env = "BERTH_URL", value_name = "URL")]
    pub url: Option<String>,
    /// Print the API's JSON instead of tables.
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
    #[command(subcommand)]
    Admin(AdminCmd),
    /// Log in and save the session token to a private file.
    Login(LoginArgs),
    /// End the session and remove the saved token.
    Logout,
    /// Manage stored Git-host credentials.
    #[command(subcommand, alias = "credentials", alias = "cred")]
    Credential(CredentialCmd),
    /// List remote branches and manage registered repositories.
    #[command(subcommand, alias = "repos", alias = "repository")]
    Repo(RepoCmd),
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
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let global = Global { url: cli.url, json: cli.json };
    match cli.command {
        Command::Serve => finish(server_cmd::serve().await),
        Command::Admin(cmd) => finish(server_cmd::admin(cmd).await),
        cmd => {
            init_client_tracing();
            let login = matches!(cmd, Command::Login(_));
            match run_client(&global, cmd).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(f) => ExitCode::from(commands::report(f, &display_url(&global), global.json, login)),
            }
        }
    }
}

async fn run_client(global: &Global, cmd: Command) -> commands::CmdResult {
    match cmd {
        Command::Login(a) => commands::auth::login(global, a).await,
        Command::Logout => commands::auth::logout(global).await,
        Command::Credential(c) => commands::credential::run(global, c).await,
        Command::Repo(r) => commands::repo::run(global, r).await,
        Command::Serve | Command::Admin(_) => Ok(()),
    }
}

/// The server a failed command talked to, for its error message.
fn display_url(global: &Global) -> String {
    let saved = session::default_path().ok().and_then(|p| session::load(&p).ok().flatten());
    let base = commands::base_url(global, saved.as_ref());
    berth::client::normalize_base(&base).map(|u| berth::client::display_base(&u)).unwrap_or(base)
}

fn finish(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
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
            let Command::Repo(RepoCmd::Branches { url, credential }) = cli.command else { panic!("not branches") };
            assert_eq!(commands::join_words(&url), "git clone https://bitbucket.org/ws/repo.git");
            assert_eq!(credential, "prod");
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
        assert_eq!(a.credential, "7");
        assert_eq!(a.vcs, "git");
        assert!(parse(&["repo", "branches", "--credential", "x"]).is_err(), "a URL is required");
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
            matches!(cli.command, Command::Admin(AdminCmd::ResetPassword { ref username, password_stdin: true }) if username == "alice")
        );
        assert!(matches!(parse(&["admin", "rotate-key"]).unwrap().command, Command::Admin(AdminCmd::RotateKey)));
        assert!(parse(&["credential", "update", "x", "--rotate-secret", "--secret-stdin"]).is_err());
        assert!(parse(&["credential", "update", "x", "--expires-on", "2026-01-01", "--clear-expiry"]).is_err());
    }
}
