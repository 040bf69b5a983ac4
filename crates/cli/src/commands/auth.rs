//! `berth login` and `berth logout`.

use super::{connect, prompt_secret, secret_from_stdin, CmdResult, Global};
use crate::session::{self, Session};
use clap::Args;

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
        eprintln!("warning: {url} is plain HTTP on another host: the password and token cross the network unencrypted; use https");
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
        if session::remove(&path)? {
            println!("Removed the damaged session file {}.", path.display());
        } else {
            println!("Not logged in.");
        }
        return Ok(());
    };
    if !saved.expired(chrono::Utc::now()) {
        if let Ok(client) = berth::client::ApiClient::new(&saved.url) {
            let client = client.with_token(saved.token.clone());
            if let Err(e) = client.logout().await {
                eprintln!("warning: could not end the session on the server ({e}); it expires on its own");
            }
        }
    }
    session::remove(&path)?;
    let url = saved.url.trim_end_matches('/').to_owned();
    if global.json {
        println!("{}", berth::output::json(&serde_json::json!({ "url": url, "logged_out": true })));
    } else {
        println!("Logged out of {url}.");
    }
    Ok(())
}
