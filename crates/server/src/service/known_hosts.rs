//! Trusted SSH host keys: list (pinned and stored), trust (a key, or the fingerprint of the key
//! the host presents), remove; administrators only, every change audited. Also the keys a
//! check of an SSH URL is judged against.

use super::{Error, Refusal, Result};
use crate::auth::{Action, CurrentUser};
use crate::state::AppState;
use berth_core::{CloneUrl, Code};
use berth_git::ssh::keys::{self, SshPublicKey};
use berth_git::ssh::known_hosts::{host_label, pinned_keys, PINNED};
use berth_git::ssh::TrustedKey;
use berth_proto::{KnownHost, KnownHostAdd};
use berth_store::{KnownHostRow, NewKnownHost};

fn invalid(message: impl Into<String>, remedy: impl Into<String>) -> Error {
    Error::Invalid(Refusal::new(Code::InvalidInput, message, remedy))
}

/// `host`, `host:port`, `[host]:port` or a bare IPv6 address, as `host` or `[host]:port`.
pub fn endpoint(input: &str) -> Result<(String, Option<u16>)> {
    let s = input.trim().to_ascii_lowercase();
    let bad = || {
        invalid(
            format!("{:?} is not a host name with an optional port", input.chars().take(100).collect::<String>()),
            "give the host as in the clone URL: git.example.com, git.example.com:7999 or [git.example.com]:7999",
        )
    };
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (host.to_owned(), None),
            p => (host.to_owned(), Some(p.strip_prefix(':').ok_or_else(bad)?.parse::<u16>().map_err(|_| bad())?)),
        }
    } else if s.matches(':').count() == 1 {
        let (h, p) = s.split_once(':').ok_or_else(bad)?;
        (h.to_owned(), Some(p.parse::<u16>().map_err(|_| bad())?))
    } else {
        (s.clone(), None)
    };
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_');
    if host.is_empty() || host.len() > 253 || !host.chars().all(ok_char) || port == Some(0) {
        return Err(bad());
    }
    Ok((host, port.filter(|p| *p != 22)))
}

fn view(r: KnownHostRow) -> KnownHost {
    KnownHost {
        id: Some(r.id),
        host: r.host,
        key_type: r.key_type,
        fingerprint: r.fingerprint,
        public_key: r.public_key,
        pinned: false,
        added_by: Some(r.added_by),
        created_at: Some(r.created_at),
    }
}

fn pinned_view() -> Vec<KnownHost> {
    PINNED
        .iter()
        .filter_map(|(host, line)| keys::parse_public_line(line).ok().map(|k| (host, k)))
        .map(|(host, k)| KnownHost {
            id: None,
            host: (*host).to_owned(),
            key_type: keys::key_type(&k),
            fingerprint: keys::fingerprint(&k),
            public_key: keys::public_line(&k),
            pinned: true,
            added_by: None,
            created_at: None,
        })
        .collect()
}

/// Every trusted key: the pinned ones first, then the stored ones by host.
pub async fn list(st: &AppState, u: &CurrentUser) -> Result<Vec<KnownHost>> {
    u.require(Action::ManageKnownHosts)?;
    let mut out = pinned_view();
    out.extend(st.store.list_known_hosts().await?.into_iter().map(view));
    Ok(out)
}

/// Trusts a key for a host; trusting a trusted key again changes nothing (and answers it,
/// with `false`).
pub async fn add(st: &AppState, u: &CurrentUser, req: KnownHostAdd) -> Result<(KnownHost, bool)> {
    u.require(Action::ManageKnownHosts)?;
    let (host, port) = endpoint(&req.host)?;
    let label = host_label(&host, port);
    let key: SshPublicKey = match (req.key.as_deref().map(str::trim), req.fingerprint.as_deref().map(str::trim)) {
        (Some(k), None) if !k.is_empty() => keys::parse_public_line(k).map_err(|e| {
            invalid(format!("the key cannot be read: {e}"), "give an OpenSSH public key line: <type> <base64>")
        })?,
        (None, Some(f)) if f.starts_with("SHA256:") => {
            let (found, presented) = st.git.scan_host_key(&host, port, f).await.map_err(|e| {
                Error::Invalid(Refusal::new(
                    e.code,
                    format!("the host's keys could not be read: {}", e.message),
                    e.remedy,
                ))
            })?;
            found.ok_or_else(|| {
                Error::Invalid(Refusal::new(
                    Code::HostKeyChanged,
                    format!(
                        "{label} presents no key with the fingerprint {f}; it presents {}",
                        if presented.is_empty() { "no key Berth could read".to_owned() } else { presented.join(", ") }
                    ),
                    "compare the fingerprint again with the one the host publishes; do not trust a key you have not \
                     compared",
                ))
            })?
        }
        _ => return Err(invalid(
            "give either the host's public key (key) or the SHA256: fingerprint of the key it presents (fingerprint)",
            "for example {\"host\": \"git.example.com\", \"fingerprint\": \"SHA256:…\"}",
        )),
    };
    if pinned_keys(&host, port).iter().any(|p| keys::same_key(&p.key, &key)) {
        let fp = keys::fingerprint(&key);
        return pinned_view()
            .into_iter()
            .find(|k| k.host == label && k.fingerprint == fp)
            .map(|k| (k, false))
            .ok_or_else(|| Error::Internal("pinned key vanished".to_owned()));
    }
    let (key_type, public_key, fingerprint) = (keys::key_type(&key), keys::public_line(&key), keys::fingerprint(&key));
    let (row, created) = st
        .store
        .add_known_host(NewKnownHost {
            host: &label,
            key_type: &key_type,
            public_key: &public_key,
            fingerprint: &fingerprint,
            added_by: &u.user.username,
        })
        .await?;
    if created {
        u.audit(&st.store, "known_host.add", "known_host", Some(row.id), &label, format!("{key_type} {fingerprint}"))
            .await;
    }
    Ok((view(row), created))
}

/// Removes a trusted key; answers what was removed. Pinned keys are not stored and stay.
pub async fn delete(st: &AppState, u: &CurrentUser, id: i64) -> Result<KnownHost> {
    u.require(Action::ManageKnownHosts)?;
    let row = st.store.delete_known_host(id).await?;
    u.audit(
        &st.store,
        "known_host.delete",
        "known_host",
        Some(row.id),
        &row.host,
        format!("{} {}", row.key_type, row.fingerprint),
    )
    .await;
    Ok(view(row))
}

/// The keys a check of `url` trusts: the pinned ones of its host, then those stored for its
/// endpoint. Read for every check, so a key trusted on one instance counts on all at once.
pub(crate) async fn trusted_for(st: &AppState, url: &CloneUrl) -> Vec<TrustedKey> {
    let mut keys = pinned_keys(&url.host, url.port);
    match st.store.known_hosts_for(&host_label(&url.host, url.port)).await {
        Ok(rows) => keys.extend(rows.into_iter().filter_map(|r| {
            let key = keys::parse_public_line(&r.public_key).ok()?;
            Some(TrustedKey {
                key,
                source: format!("trusted by {} on {}", r.added_by, r.created_at.format("%Y-%m-%d")),
            })
        })),
        Err(e) => tracing::error!("cannot read the known hosts: {e}"),
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::endpoint;

    #[test]
    fn endpoints_are_read_as_known_hosts_names_them() {
        let ok = |s: &str| endpoint(s).map_err(|_| s.to_owned());
        assert_eq!(ok("GitHub.com"), Ok(("github.com".to_owned(), None)));
        assert_eq!(ok("git.example.com:7999"), Ok(("git.example.com".to_owned(), Some(7999))));
        assert_eq!(ok("[git.example.com]:22"), Ok(("git.example.com".to_owned(), None)));
        assert_eq!(ok("[::1]:2222"), Ok(("::1".to_owned(), Some(2222))));
        for bad in ["", "a b", "host:99999", "[x]y", "host:0", "h/ost"] {
            assert!(endpoint(bad).is_err(), "{bad:?}");
        }
    }
}
