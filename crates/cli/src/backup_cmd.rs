//! `berth admin backup|restore|verify|migrate`: read the passphrase, call the server's
//! `backup` module, and say plainly what was made and what else must be kept.

use crate::commands::{CmdResult, Exit, Failure};
use crate::server_cmd::json_text;
use anyhow::Context as _;
use berth_server::backup::{RestoreReport, SnapshotError, StoreError, VerifyReport};
use berth_server::config::{Config, DatabaseUrl};
use berth_server::StartError;
use secrecy::SecretString;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{BufRead as _, IsTerminal as _};
use std::path::Path;

/// A passphrase from one line of standard input, or prompted for (twice when it seals).
fn read_passphrase(from_stdin: bool, confirm: bool) -> anyhow::Result<SecretString> {
    let line = if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the passphrase from standard input")?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        let first =
            rpassword::prompt_password("Passphrase for the master key: ").context("cannot read the passphrase")?;
        if confirm {
            let again = rpassword::prompt_password("Again: ").context("cannot read the passphrase")?;
            anyhow::ensure!(first == again, "the two passphrases differ");
        }
        first
    };
    Ok(SecretString::from(line))
}

/// A database URL fit to print: a password in it is masked.
fn shown(url: &str) -> String {
    format!("{:?}", DatabaseUrl(url.to_owned())).trim_matches('"').to_owned()
}

fn rows_text(rows: impl IntoIterator<Item = (String, i64)>) -> String {
    let parts: Vec<String> = rows.into_iter().filter(|(_, n)| *n > 0).map(|(t, n)| format!("{t} {n}")).collect();
    if parts.is_empty() {
        "no rows".into()
    } else {
        parts.join(", ")
    }
}

fn as_i64(rows: &BTreeMap<String, u64>) -> Vec<(String, i64)> {
    rows.iter().map(|(t, n)| (t.clone(), i64::try_from(*n).unwrap_or(i64::MAX))).collect()
}

pub async fn backup(config: &Config, to: &Path, include_key: bool, stdin: bool, json: bool) -> Result<(), StartError> {
    let passphrase = if include_key {
        Some(read_passphrase(stdin, true).map_err(|e| StartError::Invalid(format!("{e:#}")))?)
    } else {
        None
    };
    let made = berth_server::backup::backup(config, to, passphrase.as_ref()).await?;
    let key_file = config.master_key_file.display().to_string();
    let included = made.header.master_key.is_some();
    if json {
        outln!(
            "{}",
            json_text(&json!({
                "path": made.path,
                "bytes": made.bytes,
                "sha256": made.sha256,
                "created_at": made.header.created_at,
                "source": made.header.source,
                "key_ids": made.header.key_ids,
                "master_key_included": included,
                "rows": made.rows,
                "master_key_file": key_file,
            }))
        );
        return Ok(());
    }
    outln!("snapshot written: {} ({} bytes)", made.path.display(), made.bytes);
    outln!("  rows: {}", rows_text(as_i64(&made.rows)));
    outln!("  sha256: {}", made.sha256);
    let ids = made.header.key_ids.join(", ");
    if included {
        outln!("master key: IN the snapshot ({ids}), sealed under your passphrase (Argon2id, XChaCha20-Poly1305).");
        outln!(
            "  Keep the passphrase apart from the snapshot: without it the secrets in the snapshot cannot be opened,"
        );
        outln!("  and anyone who has both can open every stored secret.");
    } else {
        outln!("master key: NOT in the snapshot. Restoring it needs the key file {key_file} (key {ids}).");
        outln!("  Keep a copy of that file apart from the snapshot, as carefully: without it no secret in the snapshot opens.");
    }
    Ok(())
}

fn verified_text(v: &VerifyReport) {
    outln!(
        "  {} secret(s) open with the master key; {}",
        v.secrets_opened,
        if v.problems.is_empty() { "no problem found" } else { "PROBLEMS FOUND:" }
    );
    for p in &v.problems {
        outln!("  - {p}");
    }
    outln!("  counts: {}", rows_text(v.counts.iter().cloned()));
}

fn verify_json(v: &VerifyReport) -> serde_json::Value {
    json!({
        "ok": v.problems.is_empty(),
        "problems": v.problems,
        "secrets_opened": v.secrets_opened,
        "key_ids": v.key_ids,
        "counts": v.counts.iter().cloned().collect::<BTreeMap<String, i64>>(),
    })
}

fn problems_failure(v: &VerifyReport) -> CmdResult {
    if v.problems.is_empty() {
        return Ok(());
    }
    Err(Failure::local(
        "verification_failed",
        Exit::Failed,
        format!("{} problem(s) found: {}", v.problems.len(), v.problems.join("; ")),
        "restore the latest sound snapshot, or ask for help with the problems listed",
    ))
}

fn restored_json(what: &str, to: &str, r: &RestoreReport, key_file: &str) -> serde_json::Value {
    json!({
        what: true,
        "database": to,
        "snapshot_created_at": r.header.created_at,
        "snapshot_source": r.header.source,
        "rows": r.rows,
        "key_file_written": r.key_file_written,
        "master_key_file": key_file,
        "verify": verify_json(&r.verify),
    })
}

pub async fn restore(config: &Config, from: &Path, stdin: bool, json: bool) -> Result<CmdResult, StartError> {
    let mut ask = || read_passphrase(stdin, false).map_err(|e| format!("{e:#}"));
    let r = berth_server::backup::restore(config, from, &mut ask).await?;
    let key_file = config.master_key_file.display().to_string();
    let to = shown(&config.database_url);
    if json && !r.verify.problems.is_empty() {
        // One JSON document on stdout: the error, which lists the problems.
        return Ok(problems_failure(&r.verify));
    }
    if json {
        outln!("{}", json_text(&restored_json("restored", &to, &r, &key_file)));
    } else {
        outln!(
            "restored {} (made {} by Berth {} on {}) into {to}",
            from.display(),
            r.header.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
            r.header.berth_version,
            r.header.source
        );
        if r.key_file_written {
            outln!("master key: written to {key_file} from the snapshot; back that file up");
        } else {
            outln!("master key: the key file {key_file} opens it");
        }
        outln!("verified as berth serve opens it:");
        verified_text(&r.verify);
        outln!("Sessions are not restored: everyone signs in again (API tokens still work).");
    }
    Ok(problems_failure(&r.verify))
}

pub async fn verify(config: &Config, json: bool) -> Result<CmdResult, StartError> {
    let v = berth_server::backup::verify(config).await?;
    if json && !v.problems.is_empty() {
        return Ok(problems_failure(&v));
    }
    if json {
        outln!("{}", json_text(&verify_json(&v)));
    } else {
        outln!("verified {}:", shown(&config.database_url));
        outln!("  integrity: {}", if v.problems.is_empty() { "sound" } else { "see below" });
        verified_text(&v);
    }
    Ok(problems_failure(&v))
}

pub async fn migrate(config: &Config, to: &str, json: bool) -> Result<CmdResult, StartError> {
    let r = berth_server::backup::migrate(config, to).await?;
    let key_file = config.master_key_file.display().to_string();
    let target = shown(to);
    if json && !r.verify.problems.is_empty() {
        return Ok(problems_failure(&r.verify));
    }
    if json {
        outln!("{}", json_text(&restored_json("migrated", &target, &r, &key_file)));
    } else {
        outln!("migrated {} into {target}", shown(&config.database_url));
        outln!("  copied: {}", rows_text(as_i64(&r.rows)));
        outln!("verified as berth serve opens it:");
        verified_text(&r.verify);
        outln!("Next: start berth serve with BERTH_DATABASE_URL={target} and the same master key file {key_file}.");
        outln!("Keep the SQLite data directory until you have checked the new database; do not start a server on it again.");
    }
    Ok(problems_failure(&r.verify))
}

/// A snapshot command's refusal, with its stable code and exit code: a damaged snapshot or a
/// wrong passphrase is a failed verification (1); a used target, a missing key or a weak
/// passphrase a request that cannot be (2).
pub fn snapshot_failure(e: SnapshotError, config: &Config) -> Failure {
    let key_file = config.master_key_file.display().to_string();
    let message = e.to_string();
    match e {
        SnapshotError::NotASnapshot { .. } | SnapshotError::Damaged { .. } => Failure::local(
            "snapshot_damaged",
            Exit::Failed,
            message,
            "use another copy of the snapshot; this one cannot be trusted",
        ),
        SnapshotError::WrongPassphrase => Failure::local(
            "wrong_passphrase",
            Exit::Failed,
            message,
            "give the passphrase the snapshot was made with; nothing was written",
        ),
        SnapshotError::WeakPassphrase { .. } => {
            Failure::local("weak_passphrase", Exit::Usage, message, "choose a longer passphrase; nothing was written")
        }
        SnapshotError::Passphrase(_) => Failure::local(
            "passphrase_unreadable",
            Exit::Usage,
            message,
            "type it at the prompt, or give one line on standard input with --passphrase-stdin",
        ),
        SnapshotError::KeyNeeded { .. } | SnapshotError::KeyMissing { .. } => Failure::local(
            "master_key_required",
            Exit::Usage,
            message,
            format!(
                "put the installation's master key file at {key_file} (or point BERTH_MASTER_KEY_FILE at it); nothing was written"
            ),
        ),
        SnapshotError::TargetNotEmpty(_) => Failure::local(
            "target_not_empty",
            Exit::Usage,
            message,
            "restore and migrate write only into an empty database: point BERTH_DATA_DIR (or --to) at a new \
             directory or an empty database; nothing was written",
        ),
        SnapshotError::Io { .. } | SnapshotError::Keyring(_) => {
            Failure::local("local_error", Exit::Usage, message, "check the path and its permissions")
        }
        SnapshotError::Store(StoreError::Vault(v)) => Failure::local(
            "vault_error",
            Exit::Failed,
            format!("the vault cannot open: {v}"),
            "use the master key file of this installation (BERTH_MASTER_KEY_FILE)",
        ),
        SnapshotError::Store(other) => Failure::local("database_unavailable", Exit::Unavailable, other.to_string(), ""),
    }
}
