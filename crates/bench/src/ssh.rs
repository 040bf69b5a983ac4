//! The big repository over SSH: Berth's SSH client (russh) against `git ls-remote` through
//! OpenSSH's `ssh`, both on the same private `sshd` (berth-testkit's `SshServer`), protocol v2
//! (`AcceptEnv GIT_PROTOCOL`) and v0 (a server without it). Both sides authenticate with the
//! same ed25519 key and verify the same host keys, so each pays one full SSH handshake per
//! listing, as a person's `git ls-remote` does.

use crate::{compare, git_ls_remote_with, Comparison, Failures};
use anyhow::{Context, Result};
use berth_git::ssh::keys::{parse_private_key, parse_public_line};
use berth_git::ssh::{SshRequest, TrustedKey};
use berth_git::GitClient;
use berth_testkit::{keygen, SshAccess, SshServer};
use std::path::Path;
use std::time::Instant;

/// Compares both sides on `repo` (an absolute path to a bare repository with `want` branches)
/// over a v2 and a v0 server.
pub async fn compare_over_ssh(
    client: &GitClient,
    repo: &Path,
    rounds: u32,
    want: usize,
    shape: &str,
    failures: &mut Failures,
) -> Result<Vec<Comparison>> {
    let keys = tempfile::tempdir()?;
    let key_path = keys.path().join("id_ed25519");
    let public = keygen("ed25519", &key_path, "");
    let key = parse_private_key(&std::fs::read_to_string(&key_path)?, None).context("the bench's own key")?;
    let path = repo.display().to_string();
    let mut out = Vec::new();
    for (proto, v2) in [("v2", true), ("v0", false)] {
        let mut server = SshServer::start(v2);
        server.authorize(&public, SshAccess::All);
        let trusted: Vec<TrustedKey> = server
            .host_keys()
            .iter()
            .map(|l| Ok(TrustedKey { key: parse_public_line(l)?, source: "the bench's server".to_owned() }))
            .collect::<Result<_>>()?;
        let known_hosts = keys.path().join(format!("known_hosts_{proto}"));
        let lines: Vec<String> = server.host_keys().iter().map(|k| format!("{} {k}", server.host_label())).collect();
        std::fs::write(&known_hosts, lines.join("\n") + "\n")?;
        let ssh_command = format!(
            "ssh -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile={}",
            key_path.display(),
            known_hosts.display()
        );
        let url = server.url(repo);
        let berth = || async {
            let started = Instant::now();
            let req = SshRequest {
                host: "127.0.0.1",
                port: Some(server.port),
                path: &path,
                username: &server.user,
                key: &key,
                trusted: &trusted,
            };
            let listing = client.ls_refs_ssh(req).await.map_err(|e| anyhow::anyhow!("{}: {}", e.code.as_str(), e.message))?;
            Ok((started.elapsed(), listing.refs.branches.len()))
        };
        let git = |url: String| {
            let env = vec![("GIT_SSH_COMMAND".to_owned(), ssh_command.clone())];
            async move { git_ls_remote_with(&url, &env).await }
        };
        out.push(compare(format!("refresh over SSH {proto} {shape}"), rounds, want, failures, berth, || git(url.clone())).await?);
    }
    Ok(out)
}
