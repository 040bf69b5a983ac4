//! `berth serve` and `berth admin`: the commands that run on the server's own host, with
//! direct access to its database and key file rather than through the API.

use crate::AdminCmd;
use anyhow::Context as _;
use berth_server::config::Config;
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
        eprintln!(
            "\n  Berth created the first administrator.\n    username: admin\n    password: {password}\n  \
             It is shown only this once: log in and change it, or set BERTH_ADMIN_PASSWORD before the first start.\n"
        );
    }
    berth_server::serve(ready).await?;
    Ok(())
}

pub async fn admin(cmd: AdminCmd) -> anyhow::Result<()> {
    init_server_tracing();
    let config = Config::from_env()?;
    match cmd {
        AdminCmd::ResetPassword { username, password_stdin } => {
            let password = read_password(password_stdin)?;
            berth_server::admin::reset_password(&config, &username, &password).await?;
            println!("password of {username} set; their sessions were ended and their API tokens revoked");
        }
        AdminCmd::RotateKey => {
            let r = berth_server::admin::rotate_key(&config).await?;
            println!(
                "master key rotated: {} secret(s) re-wrapped under {}; retired {}",
                r.rewrapped,
                r.active,
                r.retired.join(", ")
            );
            println!("back up {} now: the old key no longer opens anything", config.master_key_file.display());
        }
    }
    Ok(())
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
