//! `berth login`, `berth logout` and `berth auth status` (`auth login` and `auth logout` are the
//! same commands under one noun).

use super::{connect, prompt_secret, secret_from_stdin, CmdResult, Global};
use crate::session::{self, Session};
use berth::output::{clean, fields};
use clap::{Args, Subcommand};

#[derive(Debug, Clone, Subcommand)]
pub enum AuthCmd {
    /// Log in and save the session token to a private file.
    Login(LoginArgs),
    /// End the session and remove the saved token.
    Logout,
    /// Who you are logged in as, on which server, with which role, and until when.
    #[command(alias = "whoami")]
    Status,
}

#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// The Berth user to log in as.
    #[arg(long, short = 'u', default_value = "admin")]
    pub username: String,
    /// Read the password from one line of standard input instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
}

pub async fn login(global: &Global, args: LoginArgs) -> CmdResult {
    let ctx = connect(global, false)?;
    let url = ctx.url();
    let password = if args.password_stdin {
        secret_from_stdin("password")?
    } else {
        prompt_secret(&format!("Password for {} at {url}: ", args.username), "password")?
    };
    let path = session::default_path()?;
    let resp = ctx.client.login(args.username.trim(), &password).await?;
    drop(password);
    session::save(
        &path,
        &Session { url: ctx.client.base.to_string(), token: resp.token, expires_at: resp.expires_at },
    )?;
    if insecure(&ctx.client.base) {
        errln!("warning: {url} is plain HTTP on another host: the password and token cross the network unencrypted; use https");
    }
    let summary = serde_json::json!({
        "url": url,
        "username": args.username.trim(),
        "expires_at": resp.expires_at,
        "session_file": path.display().to_string(),
    });
    ctx.emit(&summary, || {
        format!(
            "Logged in to {url} as {}. Session saved to {} (expires {}).\n",
            berth::output::clean(args.username.trim()),
            path.display(),
            resp.expires_at.format("%Y-%m-%d %H:%M UTC")
        )
    });
    Ok(())
}

/// Plain HTTP to anything but this machine.
fn insecure(u: &reqwest::Url) -> bool {
    if u.scheme() != "http" {
        return false;
    }
    let host = u.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let local = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    !local
}

/// Ends the session on the server when it can, and forgets it locally in any case.
pub async fn logout(global: &Global) -> CmdResult {
    let path = session::default_path()?;
    let Some(saved) = session::load(&path).unwrap_or(None) else {
        let removed = session::remove(&path)?;
        if global.json {
            outln!(
                "{}",
                berth::output::json(&serde_json::json!({ "logged_out": false, "removed_damaged_session": removed }))
            );
        } else if removed {
            outln!("Removed the damaged session file {}.", path.display());
        } else {
            outln!("Not logged in.");
        }
        return Ok(());
    };
    if !saved.expired(chrono::Utc::now()) {
        if let Ok(client) = berth::client::ApiClient::new(&saved.url) {
            let client = client.with_token(saved.token.clone());
            if let Err(e) = client.logout().await {
                errln!("warning: could not end the session on the server ({e}); it expires on its own");
            }
        }
    }
    session::remove(&path)?;
    let url = saved.url.trim_end_matches('/').to_owned();
    if global.json {
        outln!("{}", berth::output::json(&serde_json::json!({ "url": url, "logged_out": true })));
    } else {
        outln!("Logged out of {url}.");
    }
    Ok(())
}

/// Asks the server who the token belongs to (`GET /api/v1/me`), so a session that was ended
/// elsewhere (a logout, a password reset) shows as what it is: not logged in (exit 4).
pub async fn status(global: &Global) -> CmdResult {
    let ctx = connect(global, true)?;
    let me = ctx.client.me().await?;
    let url = ctx.url();
    // The session's end is known to the CLI, which saved it at login; a token from
    // BERTH_TOKEN is a personal API token whose expiry the CLI is not told.
    let from_env = std::env::var("BERTH_TOKEN").is_ok_and(|t| !t.trim().is_empty());
    let saved =
        if from_env { None } else { session::default_path().ok().and_then(|p| session::load(&p).ok().flatten()) };
    let expires_at = saved.as_ref().map(|s| s.expires_at);
    let summary = serde_json::json!({
        "url": url,
        "username": me.username,
        "user_id": me.id,
        "role": me.role,
        "allowed": me.allowed,
        "token_source": if from_env { "BERTH_TOKEN" } else { "session" },
        "expires_at": expires_at,
    });
    ctx.emit(&summary, || {
        fields(&[
            ("Server", url.clone()),
            ("User", format!("{} (id {})", clean(&me.username), me.id)),
            ("Role", me.role.clone()),
            ("May", me.allowed.join(", ")),
            (
                "Token",
                if from_env { "from BERTH_TOKEN".to_owned() } else { "the saved session (berth login)".to_owned() },
            ),
            (
                "Expires",
                match expires_at {
                    Some(t) => t.format("%Y-%m-%d %H:%M UTC").to_string(),
                    None => "not known to the CLI (a personal API token)".to_owned(),
                },
            ),
        ])
    });
    Ok(())
}
