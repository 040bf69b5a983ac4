//! `berth serve` and `berth admin`: the commands that run on the server's own host, with
//! direct access to its database and key file rather than through the API.

use crate::commands::{CmdResult, Exit, Failure};
use crate::{AdminArgs, AdminCmd};
use anyhow::Context as _;
use berth_server::config::Config;
use berth_server::StartError;
use secrecy::SecretString;
use std::io::{BufRead as _, IsTerminal as _};

/// Logs go to stderr, human-readable by default or JSON with `BERTH_LOG_FORMAT=json`;
/// `RUST_LOG` filters them (default `info`).
fn init_server_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=info"));
    // Colour codes only for a person at a terminal, never in a file or a log collector.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if std::env::var("BERTH_LOG_FORMAT").is_ok_and(|f| f == "json") {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
}

pub async fn serve() -> anyhow::Result<()> {
    init_server_tracing();
    let config = Config::from_env()?;
    let ready = berth_server::prepare(config).await?;
    if let Some(password) = &ready.generated_admin_password {
        // Printed once, on the console only: it is not a log line and never reaches a log file
        // that collects tracing output.
        errln!(
            "\n  Berth created the first administrator.\n    username: admin\n    password: {password}\n  \
             It is shown only this once: log in and change it, or set BERTH_ADMIN_PASSWORD before the first start.\n"
        );
    }
    berth_server::serve(ready).await?;
    Ok(())
}

/// Where `berth admin` found its data directory, for an error that says how to point it
/// elsewhere.
fn data_dir_origin(flag: bool) -> &'static str {
    if flag {
        "--data-dir"
    } else if std::env::var_os("BERTH_DATA_DIR").is_some_and(|v| !v.is_empty()) {
        "BERTH_DATA_DIR"
    } else {
        "the default, or data_dir in BERTH_CONFIG"
    }
}

/// Runs an admin command on the server's data directory (`--data-dir`, else the server's own
/// configuration). Refuses where there is no database; never creates one.
pub async fn admin(args: AdminArgs, json: bool) -> CmdResult {
    init_server_tracing();
    let flag = args.data_dir.clone();
    let config = Config::load(&|k| {
        if k == "BERTH_DATA_DIR" {
            if let Some(d) = &flag {
                return Some(d.display().to_string());
            }
        }
        std::env::var(k).ok().filter(|v| !v.is_empty())
    })
    .map_err(|e| {
        Failure::local("invalid_config", Exit::Usage, e.to_string(), "fix the variable or the BERTH_CONFIG file")
    })?;
    let failed = |e: StartError| admin_failure(e, &config, data_dir_origin(flag.is_some()));
    match args.cmd {
        AdminCmd::ResetPassword { username, password_stdin } => {
            let password = read_password(password_stdin).map_err(|e| Failure::Usage(format!("{e:#}")))?;
            berth_server::admin::reset_password(&config, &username, &password).await.map_err(failed)?;
            if json {
                outln!("{}", json_text(&serde_json::json!({ "username": username, "password_set": true })));
            } else {
                outln!("password of {username} set; their sessions were ended and their API tokens revoked");
            }
        }
        AdminCmd::RotateKey => {
            let r = berth_server::admin::rotate_key(&config).await.map_err(failed)?;
            let key_file = config.master_key_file.display().to_string();
            if json {
                outln!(
                    "{}",
                    json_text(&serde_json::json!({
                        "rewrapped": r.rewrapped,
                        "active": r.active,
                        "retired": r.retired,
                        "master_key_file": key_file,
                    }))
                );
            } else {
                outln!(
                    "master key rotated: {} secret(s) re-wrapped under {}; retired {}",
                    r.rewrapped,
                    r.active,
                    r.retired.join(", ")
                );
                outln!("back up {key_file} now: the old key no longer opens anything");
            }
        }
        AdminCmd::Backup { to, include_key, passphrase_stdin } => {
            crate::backup_cmd::backup(&config, &to, include_key, passphrase_stdin, json).await.map_err(failed)?
        }
        AdminCmd::Restore { from, passphrase_stdin } => {
            crate::backup_cmd::restore(&config, &from, passphrase_stdin, json).await.map_err(failed)??
        }
        AdminCmd::Verify => crate::backup_cmd::verify(&config, json).await.map_err(failed)??,
        AdminCmd::Migrate { to } => crate::backup_cmd::migrate(&config, &to, json).await.map_err(failed)??,
    }
    Ok(())
}

/// An admin command's failure, with its exit code: a place with no database or a request that
/// cannot be is a usage error (2), a master key that does not open the database a failed
/// verification (1), and a database that cannot be reached is unavailable (5).
fn admin_failure(e: StartError, config: &Config, origin: &str) -> Failure {
    match e {
        StartError::NoDatabase(m) => Failure::local(
            "no_database",
            Exit::Usage,
            m,
            format!(
                "point --data-dir (or BERTH_DATA_DIR) at the server's data directory, with BERTH_DATABASE_URL or BERTH_CONFIG as the server has them ({} came from {origin}); nothing was created",
                config.data_dir.display()
            ),
        ),
        StartError::Invalid(m) => Failure::local("invalid_input", Exit::Usage, m, ""),
        StartError::Config(c) => Failure::local("invalid_config", Exit::Usage, c.to_string(), ""),
        StartError::Snapshot(e) => crate::backup_cmd::snapshot_failure(e, config),
        StartError::Vault(v) => Failure::local(
            "vault_error",
            Exit::Failed,
            format!("the vault cannot open: {v}"),
            "use the master key file of this database (BERTH_MASTER_KEY_FILE)",
        ),
        other => Failure::local("database_unavailable", Exit::Unavailable, other.to_string(), ""),
    }
}

pub(crate) fn json_text(v: &serde_json::Value) -> String {
    berth::output::json(v)
}

fn read_password(from_stdin: bool) -> anyhow::Result<SecretString> {
    let line = if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        let first = rpassword::prompt_password("New password: ").context("cannot read the password")?;
        let again = rpassword::prompt_password("Again: ").context("cannot read the password")?;
        anyhow::ensure!(first == again, "the two passwords differ");
        first
    };
    Ok(SecretString::from(line))
}
