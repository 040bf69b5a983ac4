//! Host keys Berth trusts: the keys bitbucket.org, github.com and gitlab.com publish (pinned
//! here), the keys an administrator trusted (stored, handed in by the caller), and OpenSSH
//! `known_hosts` files read for an import, hashed entries included.

use super::keys::{fingerprint, key_type, parse_public_line, same_key, SshPublicKey};
use hmac::{Hmac, Mac};

/// The keys the three clouds publish, as `ssh-keygen -lf` checks them.
///
/// Sources (see shared/reference/forge-facts-next.md §1): GitHub, docs.github.com "GitHub's SSH
/// key fingerprints" and `api.github.com/meta` (RSA key replaced 2023-03-24 after a leak; the old
/// `SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8` must never be trusted); Bitbucket,
/// `bitbucket.org/site/ssh` (ECDSA and Ed25519 added 2023-05-15, RSA replaced 2023-06-20); GitLab,
/// gitlab.com's `doc/user/gitlab_com` and `/help/instance_configuration`.
pub const PINNED: &[(&str, &str)] = &[
    ("github.com", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"),
    ("github.com", "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg="),
    ("github.com", "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQCj7ndNxQowgcQnjshcLrqPEiiphnt+VTTvDP6mHBL9j1aNUkY4Ue1gvwnGLVlOhGeYrnZaMgRK6+PKCUXaDbC7qtbW8gIkhL7aGCsOr/C56SJMy/BCZfxd1nWzAOxSDPgVsmerOBYfNqltV9/hWCqBywINIR+5dIg6JTJ72pcEpEjcYgXkE2YEFXV1JHnsKgbLWNlhScqb2UmyRkQyytRLtL+38TGxkxCflmO+5Z8CSSNY7GidjMIZ7Q4zMjA2n1nGrlTDkzwDCsw+wqFPGQA179cnfGWOWRVruj16z6XyvxvjJwbz0wQZ75XK5tKSb7FNyeIEs4TT4jk+S4dhPeAUC5y+bDYirYgM4GC7uEnztnZyaVWQ7B381AK4Qdrwt51ZqExKbQpTUNn+EjqoTwvqNj4kqx5QUCI0ThS/YkOxJCXmPUWZbhjpCg56i+2aB6CmK2JGhn57K5mj0MNdBXA4/WnwH6XoPWJzK5Nyu2zB3nAZp+S5hpQs+p1vN1/wsjk="),
    ("bitbucket.org", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIazEu89wgQZ4bqs3d63QSMzYVa0MuJ2e2gKTKqu+UUO"),
    ("bitbucket.org", "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPIQmuzMBuKdWeF4+a2sjSSpBK0iqitSQ+5BM9KhpexuGt20JpTVM7u5BDZngncgrqDMbWdxMWWOGtZ9UgbqgZE="),
    ("bitbucket.org", "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQDQeJzhupRu0u0cdegZIa8e86EG2qOCsIsD1Xw0xSeiPDlCr7kq97NLmMbpKTX6Esc30NuoqEEHCuc7yWtwp8dI76EEEB1VqY9QJq6vk+aySyboD5QF61I/1WeTwu+deCbgKMGbUijeXhtfbxSxm6JwGrXrhBdofTsbKRUsrN1WoNgUa8uqN1Vx6WAJw1JHPhglEGGHea6QICwJOAr/6mrui/oB7pkaWKHj3z7d1IC4KWLtY47elvjbaTlkN04Kc/5LFEirorGYVbt15kAUlqGM65pk6ZBxtaO3+30LVlORZkxOh+LKL/BvbZ/iRNhItLqNyieoQj/uh/7Iv4uyH/cV/0b4WDSd3DptigWq84lJubb9t/DnZlrJazxyDCulTmKdOR7vs9gMTo+uoIrPSb8ScTtvw65+odKAlBj59dhnVp9zd7QUojOpXlL62Aw56U4oO+FALuevvMjiWeavKhJqlR7i5n9srYcrNV7ttmDw7kf/97P5zauIhxcjX+xHv4M="),
    ("gitlab.com", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAfuCHKVTjquxvt6CM6tdG4SLp1Btn/nOeHHE5UOzRdf"),
    ("gitlab.com", "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBFSMqzJeV9rUzU4kWitGjeR4PWSa29SPqJ1fVkhtj3Hw9xjLVXVYrU9QlYWrOLXBpQ6KWjbjTDTdDkoohFzgbEY="),
    ("gitlab.com", "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCsj2bNKTBSpIYDEGk9KxsGh3mySTRgMtXL583qmBpzeQ+jqCMRgBqB98u3z++J1sKlXHWfM9dyhSevkMwSbhoR8XIq/U0tCNyokEi/ueaBMCvbcTHhO7FcwzY92WK4Yt0aGROY5qX2UKSeOvuP4D6TPqKF1onrSzH9bx9XUf2lEdWT/ia1NEKjunUqu1xOB/StKDHMoX4/OKyIzuS0q/T1zOATthvasJFoPrAjkohTyaDUz2LN5JoH839hViyEG82yB+MjcFV5MU3N1l1QL3cVUCh93xSaua1N85qivl+siMkPGbO5xR/En4iEY6K2XPASUEMaieWVNTRCtJ4S8H+9"),
];

/// A key trusted for a host, and why.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    pub key: SshPublicKey,
    /// "pinned in Berth" or "trusted by alice on 2026-12-02".
    pub source: String,
}

/// `host` for port 22, `[host]:port` otherwise: how OpenSSH's `known_hosts` and Berth's known
/// hosts name an endpoint.
pub fn host_label(host: &str, port: Option<u16>) -> String {
    let host = host.to_ascii_lowercase();
    match port.filter(|p| *p != 22) {
        Some(p) => format!("[{host}]:{p}"),
        None => host,
    }
}

/// The pinned keys of a host (only on port 22: the clouds serve SSH there; their alternative
/// hosts such as ssh.github.com:443 are other endpoints with the same keys, not pinned here).
pub fn pinned_keys(host: &str, port: Option<u16>) -> Vec<TrustedKey> {
    if port.is_some_and(|p| p != 22) {
        return Vec::new();
    }
    let host = host.to_ascii_lowercase();
    PINNED
        .iter()
        .filter(|(h, _)| *h == host)
        .filter_map(|(_, line)| parse_public_line(line).ok())
        .map(|key| TrustedKey { key, source: "pinned in Berth (the host's published key)".to_owned() })
        .collect()
}

/// What a presented host key means against the trusted ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyVerdict {
    Trusted {
        source: String,
    },
    /// No key is trusted for this host.
    Unknown,
    /// Keys are trusted for this host, and this is none of them.
    Changed {
        expected: Vec<String>,
    },
}

pub fn judge(presented: &SshPublicKey, trusted: &[TrustedKey]) -> HostKeyVerdict {
    if let Some(t) = trusted.iter().find(|t| same_key(&t.key, presented)) {
        return HostKeyVerdict::Trusted { source: t.source.clone() };
    }
    if trusted.is_empty() {
        return HostKeyVerdict::Unknown;
    }
    HostKeyVerdict::Changed {
        expected: trusted.iter().map(|t| format!("{} {}", key_type(&t.key), fingerprint(&t.key))).collect(),
    }
}

/// One entry of a `known_hosts` file that applies to one of the hosts asked about.
#[derive(Debug, Clone)]
pub struct ImportedKey {
    /// `host` or `[host]:port`, as matched.
    pub host: String,
    pub key: SshPublicKey,
}

/// Why a line of a `known_hosts` file was passed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedLine {
    pub line: usize,
    pub reason: String,
}

/// Reads an OpenSSH `known_hosts` file. Plain entries name their hosts; a hashed entry
/// (`|1|salt|hash`, `HashKnownHosts yes`) names none, so it is matched against `candidates`
/// (`host` or `[host]:port`, such as the hosts of registered SSH URLs). `@revoked` and
/// `@cert-authority` lines and wildcard patterns are skipped, with the reason.
pub fn parse_known_hosts(text: &str, candidates: &[String]) -> (Vec<ImportedKey>, Vec<SkippedLine>) {
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let skip = |reason: &str| SkippedLine { line: i + 1, reason: reason.to_owned() };
        if line.starts_with('@') {
            skipped.push(skip("markers (@revoked, @cert-authority) are not imported"));
            continue;
        }
        let Some((hosts, key_text)) = line.split_once(char::is_whitespace) else {
            skipped.push(skip("not a known_hosts entry"));
            continue;
        };
        let key = match parse_public_line(key_text) {
            Ok(k) => k,
            Err(e) => {
                skipped.push(skip(&format!("the key cannot be read: {e}")));
                continue;
            }
        };
        if let Some(hashed) = hosts.strip_prefix("|1|") {
            let matched: Vec<&String> = candidates.iter().filter(|c| hashed_matches(hashed, c)).collect();
            if matched.is_empty() {
                skipped.push(skip("hashed entry that matches none of the hosts given"));
            }
            keys.extend(matched.into_iter().map(|h| ImportedKey { host: h.clone(), key: key.clone() }));
            continue;
        }
        for pattern in hosts.split(',') {
            if pattern.contains(['*', '?', '!']) {
                skipped.push(skip(&format!("wildcard or negated pattern {pattern:?} is not imported")));
                continue;
            }
            let label = normalise_label(pattern);
            keys.push(ImportedKey { host: label, key: key.clone() });
        }
    }
    (keys, skipped)
}

/// `[host]:22` is `host`; names are compared in lower case.
fn normalise_label(pattern: &str) -> String {
    let p = pattern.to_ascii_lowercase();
    if let Some(rest) = p.strip_prefix('[') {
        if let Some((host, port)) = rest.split_once("]:") {
            return host_label(host, port.parse().ok());
        }
    }
    p
}

/// `|1|base64(salt)|base64(HMAC-SHA1(salt, host))`, as OpenSSH's `HashKnownHosts` writes it.
fn hashed_matches(hashed: &str, candidate: &str) -> bool {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let Some((salt, hash)) = hashed.split_once('|') else { return false };
    let (Ok(salt), Ok(hash)) = (b64.decode(salt), b64.decode(hash)) else { return false };
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(&salt) else { return false };
    mac.update(candidate.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pin parses and has the fingerprint the host publishes (forge-facts-next.md §1).
    #[test]
    fn every_pinned_key_parses_to_its_published_fingerprint() {
        let published = [
            ("github.com", "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU"),
            ("github.com", "SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM"),
            ("github.com", "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"),
            ("bitbucket.org", "SHA256:ybgmFkzwOSotHTHLJgHO0QN8L0xErw6vd0VhFA9m3SM"),
            ("bitbucket.org", "SHA256:FC73VB6C4OQLSCrjEayhMp9UMxS97caD/Yyi2bhW/J0"),
            ("bitbucket.org", "SHA256:46OSHA1Rmj8E8ERTC6xkNcmGOw9oFxYr0WF6zWW8l1E"),
            ("gitlab.com", "SHA256:eUXGGm1YGsMAS7vkcx6JOJdOGHPem5gQp4taiCfCLB8"),
            ("gitlab.com", "SHA256:HbW3g8zUjNSksFbqTiUWPWg2Bq1x8xdGUrliXFzSnUw"),
            ("gitlab.com", "SHA256:ROQFvPThGrW4RuWLoL9tq9I9zJ42fK4XywyRtbOz/EQ"),
        ];
        assert_eq!(PINNED.len(), published.len());
        for ((host, line), (want_host, want)) in PINNED.iter().zip(published) {
            assert_eq!(*host, want_host);
            let key = parse_public_line(line).map_err(|e| e.to_string());
            assert_eq!(key.map(|k| fingerprint(&k)), Ok(want.to_owned()), "{host}");
        }
        assert_eq!(pinned_keys("GitHub.com", None).len(), 3);
        assert!(pinned_keys("github.com", Some(2222)).is_empty());
        // GitHub's leaked RSA key (replaced 2023-03-24) is not among the pins.
        assert!(pinned_keys("github.com", None)
            .iter()
            .all(|k| fingerprint(&k.key) != "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8"));
    }

    #[test]
    #[allow(clippy::expect_used)]
    fn known_hosts_files_are_read_with_hashed_entries_and_ports() {
        use base64::Engine as _;
        let key = PINNED[0].1;
        let salt = [7u8; 20];
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&salt).expect("hmac takes any key length");
        mac.update(b"[git.example.com]:2222");
        let b64 = base64::engine::general_purpose::STANDARD;
        let hashed = format!("|1|{}|{}", b64.encode(salt), b64.encode(mac.finalize().into_bytes()));
        let text = format!(
            "# comment\n\
             github.com,140.82.112.3 {key}\n\
             [Other.example]:22 {key}\n\
             {hashed} {key}\n\
             *.example.org {key}\n\
             @revoked bad.example {key}\n\
             broken.example ssh-ed25519 !!!\n"
        );
        let (keys, skipped) = parse_known_hosts(&text, &["[git.example.com]:2222".to_owned(), "x.example".to_owned()]);
        let hosts: Vec<&str> = keys.iter().map(|k| k.host.as_str()).collect();
        assert_eq!(hosts, ["github.com", "140.82.112.3", "other.example", "[git.example.com]:2222"]);
        assert_eq!(skipped.iter().map(|s| s.line).collect::<Vec<_>>(), [5, 6, 7]);
    }

    #[test]
    fn verdicts() -> Result<(), super::super::keys::KeyError> {
        let gh = pinned_keys("github.com", None);
        let other = parse_public_line(PINNED[3].1)?;
        assert!(matches!(judge(&gh[0].key, &gh), HostKeyVerdict::Trusted { .. }));
        assert_eq!(judge(&other, &[]), HostKeyVerdict::Unknown);
        assert!(matches!(judge(&other, &gh), HostKeyVerdict::Changed { expected } if expected.len() == 3));
        Ok(())
    }
}
