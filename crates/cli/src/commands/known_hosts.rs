//! `berth known-hosts …`: the SSH host keys Berth trusts (administrators). `trust` takes the
//! fingerprint a person compared with the host's published one (Berth reads the host's keys and
//! trusts only the one with that fingerprint) or a public key line; `import` reads an OpenSSH
//! `known_hosts` file, hashed entries matched against the hosts given with `--host`.

use super::{as_id, connect, CmdResult, Failure, Global};
use berth::output::{clean, known_hosts_table};
use berth_git::ssh::keys::public_line;
use berth_git::ssh::known_hosts::parse_known_hosts;
use berth_proto::KnownHostAdd;
use clap::Subcommand;

#[derive(Debug, Clone, Subcommand)]
pub enum KnownHostsCmd {
    /// List the trusted host keys: those pinned in Berth and those trusted here.
    #[command(alias = "ls")]
    List,
    /// Trust a host's key: the fingerprint you compared (SHA256:…) or the public key line.
    Trust {
        /// `host`, `host:port` or `[host]:port`.
        host: String,
        /// The SHA256: fingerprint of the key the host presents, as its administrator publishes it.
        #[arg(long, conflicts_with = "key", required_unless_present = "key")]
        fingerprint: Option<String>,
        /// The public key itself: `<type> <base64>`.
        #[arg(long)]
        key: Option<String>,
    },
    /// Remove a trusted key by its id (pinned keys stay).
    #[command(alias = "remove", alias = "delete")]
    Rm {
        /// The id `berth known-hosts list` shows.
        id: String,
    },
    /// Trust every key of an OpenSSH known_hosts file (markers and wildcards are skipped).
    Import {
        /// The known_hosts file, such as ~/.ssh/known_hosts.
        file: std::path::PathBuf,
        /// A host (`host` or `[host]:port`) to match hashed entries against (repeat).
        #[arg(long = "host", value_name = "HOST")]
        hosts: Vec<String>,
    },
}

pub async fn run(global: &Global, cmd: KnownHostsCmd) -> CmdResult {
    let ctx = connect(global, true)?;
    match cmd {
        KnownHostsCmd::List => {
            let list = ctx.client.list_known_hosts().await?;
            ctx.emit(&list, || known_hosts_table(&list));
            Ok(())
        }
        KnownHostsCmd::Trust { host, fingerprint, key } => {
            let k = ctx.client.add_known_host(&KnownHostAdd { host, key, fingerprint }).await?;
            ctx.emit(&k, || {
                format!("Trusted {} {} for {}.\n", clean(&k.key_type), clean(&k.fingerprint), clean(&k.host))
            });
            Ok(())
        }
        KnownHostsCmd::Rm { id } => {
            let id = as_id(&id).ok_or_else(|| Failure::Usage(format!("{id:?} is not a known host id")))?;
            let k = ctx.client.delete_known_host(id).await?;
            ctx.emit(&k, || {
                format!("Removed {} {} for {}.\n", clean(&k.key_type), clean(&k.fingerprint), clean(&k.host))
            });
            Ok(())
        }
        KnownHostsCmd::Import { file, hosts } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", file.display())))?;
            let (keys, skipped) = parse_known_hosts(&text, &hosts);
            let mut trusted = Vec::new();
            for k in keys {
                let req = KnownHostAdd { host: k.host.clone(), key: Some(public_line(&k.key)), fingerprint: None };
                trusted.push(ctx.client.add_known_host(&req).await?);
            }
            ctx.emit(&trusted, || {
                let mut out = String::new();
                for k in &trusted {
                    out.push_str(&format!(
                        "Trusted {} {} for {}.\n",
                        clean(&k.key_type),
                        clean(&k.fingerprint),
                        clean(&k.host)
                    ));
                }
                for s in &skipped {
                    out.push_str(&format!("Line {} skipped: {}.\n", s.line, clean(&s.reason)));
                }
                out
            });
            Ok(())
        }
    }
}
