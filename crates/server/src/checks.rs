//! The check pipeline: does this clone URL work with this credential, step by step?
//!
//! Steps run in order (url, credential, dns, connect, tls, git discovery, branches, default
//! branch) and stop at the first failure; the rest are reported as skipped, so a person always
//! sees the whole list and where it broke. Registration, Refresh and re-checks all run this one
//! function, so "connection successful" always means the same thing.

use berth_core::credential::{self, Expiry};
use berth_core::words::plural;
use berth_core::HostBase;
use berth_core::{Check, CloneUrl, Code, CredentialKind, GitIdentity, Scheme, Step, StepName, StepStatus};
use berth_forge::{Forge, HostIdentity};
use berth_git::{GitAuth, GitClient, GitError, RemoteRefs, Stage};
use berth_store::CredentialRow;
pub(crate) use git_steps::listing_steps;
use secrecy::SecretString;
use std::time::{Duration, Instant};

/// What the pipeline talks to: the one Git client and the REST adapters sharing its pool.
#[derive(Clone, Copy)]
pub struct Checker<'a> {
    pub git: &'a GitClient,
    pub forge: &'a Forge,
}

/// One check: a clone URL parsed once by the caller, the credential and its opened secret.
pub struct Target<'a> {
    pub url: &'a CloneUrl,
    /// `None`: anonymous access (a public repository); the REST steps are skipped and Git is
    /// asked without a credential.
    pub credential: Option<&'a CredentialRow>,
    /// The secret as the vault opened it; `None` when it would not open (the credential step
    /// then fails and says so). Unused without a credential.
    pub secret: Option<SecretString>,
    /// The default branch the user asked for; `None` takes the remote's.
    pub wanted_branch: Option<&'a str>,
    /// Why this credential: "chosen explicitly", "chosen by template https://bitbucket.org/acme/
    /// (2 other templates considered)", "the repository's credential". The credential step
    /// says it, so the history keeps it with the check.
    pub chosen_by: Option<&'a str>,
    /// SSH URLs: the host keys trusted for the URL's endpoint (pinned and stored); the caller
    /// reads them, so the pipeline stays free of the store.
    pub host_keys: Vec<berth_git::ssh::TrustedKey>,
}

/// What a check found: the steps a person reads, and the same facts typed for the code that
/// acts on them (the scheduler's back-off, the Refresh answer).
pub struct Outcome {
    pub check: Check,
    pub refs: Option<RemoteRefs>,
    /// The default branch to store: the wanted one if it exists, else the remote's.
    pub default_branch: Option<String>,
    pub duration: Duration,
    /// The host answered 429; with how long it asked to wait when it said.
    pub rate_limited: Option<RateLimited>,
    /// Where the host said the repository moved (a redirect Berth did not follow).
    pub moved_to: Option<String>,
    /// The identity Git was given, once the credential was read.
    pub git_identity: Option<GitIdentity>,
    /// Who the host's REST API says the credential is, when it said.
    pub authenticated_as: Option<String>,
    /// The same, in parts.
    pub identity: Option<HostIdentity>,
    /// The token's scopes as the host reported them.
    pub granted_scopes: Option<Vec<String>>,
    /// Every scope the token lacks, needed or not.
    pub missing_scopes: Vec<String>,
}

/// A credential to verify on a host, without a repository.
pub struct VerifyTarget<'a> {
    pub host: &'a HostBase,
    pub credential: &'a CredentialRow,
    pub secret: Option<SecretString>,
}

/// What a verification found.
pub struct Verified {
    /// The steps that ran (none is skipped: a verification lists only what it did).
    pub steps: Vec<Step>,
    pub identity: Option<HostIdentity>,
    pub granted_scopes: Option<Vec<String>>,
    pub missing_scopes: Vec<String>,
    /// The host's REST API was asked.
    pub rest_checked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    pub retry_after: Option<Duration>,
}

impl Outcome {
    fn new() -> Outcome {
        Outcome {
            check: Check::from_steps(Vec::new()),
            refs: None,
            default_branch: None,
            duration: Duration::ZERO,
            rate_limited: None,
            moved_to: None,
            git_identity: None,
            authenticated_as: None,
            identity: None,
            granted_scopes: None,
            missing_scopes: Vec::new(),
        }
    }
}

/// The check of a URL that did not parse: the `url` step fails and the rest are skipped, as
/// for any other first failure.
pub fn url_refused(e: &berth_core::UrlError) -> Check {
    Check::completed(vec![Step::fail(StepName::Url, e.code(), e.to_string(), e.remedy())])
}

impl Checker<'_> {
    pub async fn run(&self, target: Target<'_>) -> Outcome {
        let started = Instant::now();
        let mut steps = Vec::new();
        let mut out = Outcome::new();
        let over_ssh = target.url.scheme == Scheme::Ssh;
        if over_ssh {
            self.run_ssh_steps(target, &mut steps, &mut out).await;
        } else {
            let http_url = target.url.http_url();
            self.run_steps(target, &mut steps, &mut out).await;
            client_cert::name_in_tls_step(self.git.net(), http_url.as_ref(), &mut steps);
        }
        if out.rate_limited.is_none()
            && steps.iter().any(|s| s.status == StepStatus::Fail && s.code == Code::RateLimited)
        {
            out.rate_limited = Some(RateLimited { retry_after: None });
        }
        out.check = if over_ssh { Check::completed_ssh(steps) } else { Check::completed(steps) };
        out.duration = started.elapsed();
        out
    }

    async fn run_steps(&self, target: Target<'_>, steps: &mut Vec<Step>, out: &mut Outcome) {
        // 1. URL: parsed by the caller (SSH URLs take `run_ssh_steps`).
        let url = target.url;
        let Some(http_url) = url.http_url() else {
            steps.push(Step::fail(
                StepName::Url,
                Code::InvalidUrl,
                "the URL has no HTTP form",
                "use the repository's HTTPS or SSH clone URL",
            ));
            return;
        };
        steps.push(Step::pass(StepName::Url, format!("{} ({})", url.canonical(), url.provider)));

        // 2. Credential, or none: anonymous access, as for a public repository.
        let signed = match target.credential {
            None => {
                steps.push(anonymous::credential_step(target.chosen_by));
                None
            }
            Some(cred) => {
                let identity = credential::git_identity(cred.kind, cred.username.as_deref(), url.provider);
                let expiry = credential::expiry(cred.expires_on, chrono::Utc::now().date_naive());
                let Some(secret) = target.secret else {
                    steps.push(unopened_secret(cred));
                    return;
                };
                if cred.kind == CredentialKind::SshKey {
                    steps.push(ssh::kind_mismatch(cred, url));
                    return;
                }
                steps.push(credential_step(cred, &identity, expiry, target.chosen_by));
                out.git_identity = Some(identity.clone());
                Some((cred, identity, expiry, secret))
            }
        };
        let identity = signed.as_ref().map(|s| s.1.clone());
        let expiry = signed.as_ref().map_or(Expiry::Unknown, |s| s.2);

        // 3, 4 and 5. DNS, the network policy, TCP
        let port = http_url.port_or_known_default().unwrap_or(443);
        if !self.reach(url.scheme == Scheme::Https, &url.host, port, steps).await {
            return;
        }

        // REST API of the host: who the credential is, its scopes, the repository. It runs even
        // when it fails, and so does Git after it: the two paths use different identities
        // (email vs username on Bitbucket Cloud), and a person needs to see both verdicts.
        // A GitHub App's key signs nothing itself: the app's steps mint the installation token
        // Git is given, and without one there is nothing to ask Git with.
        let mut app_token = None;
        let is_app = signed.as_ref().is_some_and(|s| s.0.kind == CredentialKind::GithubApp);
        let forge = match &signed {
            Some((cred, _, _, key)) if is_app => {
                let (report, token) = self.app_steps(url, cred, key, steps).await;
                app_token = token;
                report
            }
            Some((cred, _, _, secret)) => self.forge_steps(url, cred, secret, expiry, steps).await,
            None => {
                // Hosts without a REST adapter say so; the others are not asked anonymously.
                let why = rest_unavailable(url).unwrap_or_else(|| anonymous::rest_skipped_reason(url));
                skip_rest_steps(&why, steps);
                None
            }
        };
        if let Some(report) = &forge {
            out.authenticated_as.clone_from(&report.authenticated_as);
            out.identity.clone_from(&report.identity);
            out.granted_scopes.clone_from(&report.granted_scopes);
            out.missing_scopes.clone_from(&report.missing_scopes);
            out.moved_to.clone_from(&report.location);
            if report.first_failure().is_some_and(|s| s.code == Code::RateLimited) {
                out.rate_limited = Some(RateLimited { retry_after: report.retry_after });
            }
        }
        if is_app && app_token.is_none() {
            // A warning (no answer, a rate limit) also leaves Git without a token: the check
            // cannot pass, and says so where Git would have been asked.
            if !steps.iter().any(|s| s.status == StepStatus::Fail) {
                let code =
                    steps.iter().rev().find(|s| s.status == StepStatus::Warn).map_or(Code::AuthFailed, |s| s.code);
                steps.push(Step::fail(
                    StepName::GitDiscovery,
                    code,
                    "Git was not asked: no installation token could be minted for the GitHub App (the REST steps say why)",
                    "fix what the REST steps name, then check again",
                ));
            }
            return;
        }

        // TLS, discovery and ref listing happen in one exchange; the error's stage says where it
        // stopped.
        let auth = signed.map(|(_, identity, _, secret)| {
            let secret = app_token.unwrap_or(secret);
            match identity {
                // An SSH key never gets here (refused at the credential step above).
                GitIdentity::Basic { username } | GitIdentity::SshKey { username } => {
                    GitAuth::Basic { username, password: secret }
                }
                GitIdentity::Bearer => GitAuth::Bearer(secret),
            }
        });
        let t = Instant::now();
        let listed = self.git.ls_refs(&http_url, auth.as_ref()).await;
        let elapsed = t.elapsed();
        let refs = match listed {
            Ok(r) => r,
            Err(e) => {
                if e.code == Code::RateLimited {
                    // The REST API may have said how long to wait when Git did not.
                    let retry_after = e.retry_after.or(out.rate_limited.and_then(|r| r.retry_after));
                    out.rate_limited = Some(RateLimited { retry_after });
                }
                if e.location.is_some() {
                    out.moved_to.clone_from(&e.location);
                }
                push_failure(steps, url, identity.as_ref(), e, expiry, elapsed);
                return;
            }
        };
        steps.push(tls_step(url, identity.is_some()));
        let protocol = match refs.protocol {
            berth_git::Protocol::V2 => "protocol v2",
            berth_git::Protocol::V0 => "protocol v0",
        };
        steps.push(
            Step::pass(
                StepName::GitDiscovery,
                format!(
                    "Git smart HTTP, {protocol}, accepted {}",
                    identity.as_ref().map_or_else(|| anonymous::ACCEPTED.to_owned(), GitIdentity::describe)
                ),
            )
            .took(elapsed),
        );
        let api_main = forge.and_then(|r| r.repository).and_then(|r| r.main_branch);
        listing_steps(refs, target.wanted_branch, api_main, steps, out);
    }

    /// The DNS, network-policy and TCP steps (through the proxy that applies, if any); `false`
    /// when one failed.
    async fn reach(&self, https: bool, host: &str, port: u16, steps: &mut Vec<Step>) -> bool {
        let t = Instant::now();
        let probed = self.git.probe_url(https, host, port).await;
        reach_steps(probed, https, host, port, t, steps)
    }

    /// The same steps for Git over SSH, which connects directly (no proxy): the SSH transport
    /// opens its own connection under the same network policy.
    pub(crate) async fn reach_direct(&self, host: &str, port: u16, steps: &mut Vec<Step>) -> bool {
        let t = Instant::now();
        let probed = self.git.probe(host, port).await;
        reach_steps(probed, false, host, port, t, steps)
    }
}

/// The dns, destination and connect steps from a probe; `false` when one failed.
fn reach_steps(
    probed: Result<berth_git::Probe, GitError>,
    https: bool,
    host: &str,
    port: u16,
    t: Instant,
    steps: &mut Vec<Step>,
) -> bool {
    match probed {
        Ok(p) => {
            let addrs: Vec<String> = p.allowed.iter().map(ToString::to_string).collect();
            steps.push(Step::pass(StepName::Dns, format!("{host} resolves to {}", addrs.join(", "))).took(p.dns));
            steps.push(Step::pass(StepName::Destination, format!("{} may be contacted", addrs.join(", "))));
            let connected = match &p.via_proxy {
                Some(proxy) if https => format!(
                    "connected to the proxy {proxy} ({}), which opened a tunnel to {host}:{port}",
                    p.connected_to
                ),
                Some(proxy) => {
                    format!("connected to the proxy {proxy} ({}), which forwards to {host}:{port}", p.connected_to)
                }
                None => format!("connected to {}", p.connected_to),
            };
            steps.push(Step::pass(StepName::Connect, connected).took(p.connect));
            true
        }
        Err(e) => {
            // A refused address is the network policy's verdict, not a failed lookup: the
            // name resolved, and the person must hear why Berth will not go there.
            if e.code == Code::DestinationForbidden {
                steps.push(Step::pass(StepName::Dns, format!("{host} resolves")));
                let mut step = e.to_step().took(t.elapsed());
                step.step = StepName::Destination;
                steps.push(step);
                return false;
            }
            if e.stage == Stage::Connect {
                steps.push(Step::pass(StepName::Dns, format!("{host} resolves")));
                steps.push(Step::pass(StepName::Destination, "the addresses may be contacted"));
            }
            steps.push(e.to_step().took(t.elapsed()));
            false
        }
    }
}

impl Checker<'_> {
    /// Verifies a credential on a host without a repository: the credential as stored, the
    /// way to the host, and the host's REST API (who it is, its scopes). Hosts without a REST
    /// adapter cannot say anything about a credential without a repository: `rest_checked` is
    /// then false and the caller says so.
    pub async fn verify(&self, target: VerifyTarget<'_>) -> Verified {
        let mut v = Verified {
            steps: Vec::new(),
            identity: None,
            granted_scopes: None,
            missing_scopes: Vec::new(),
            rest_checked: false,
        };
        let cred = target.credential;
        let host = target.host;
        let identity = credential::git_identity(cred.kind, cred.username.as_deref(), host.provider);
        let expiry = credential::expiry(cred.expires_on, chrono::Utc::now().date_naive());
        let Some(secret) = target.secret else {
            v.steps.push(unopened_secret(cred));
            return v;
        };
        v.steps.push(credential_step(cred, &identity, expiry, None));
        if !self.reach(host.scheme == Scheme::Https, &host.host, host.port_or_default(), &mut v.steps).await {
            return v;
        }
        let api_url = host.api_url.clone().filter(|_| berth_forge::supports(host.provider));
        let Some(api_url) = api_url else { return v };
        if cred.kind == CredentialKind::GithubApp {
            self.verify_app(host, &api_url, cred, &secret, &mut v).await;
            return v;
        }
        let view = berth_forge::CredentialView {
            kind: cred.kind,
            username: cred.username.as_deref(),
            email: cred.email.as_deref(),
            secret: &secret,
            declared_scopes: &cred.scopes,
            expiry,
        };
        let report = self.forge.verify(host.provider, &api_url, &view).await;
        v.steps.extend(report.steps);
        v.identity = report.identity;
        v.granted_scopes = report.granted_scopes;
        v.missing_scopes = report.missing_scopes;
        v.rest_checked = true;
        v
    }

    /// Runs the provider's REST checks, or records why there are none.
    async fn forge_steps(
        &self,
        url: &CloneUrl,
        cred: &CredentialRow,
        secret: &SecretString,
        expiry: Expiry,
        steps: &mut Vec<Step>,
    ) -> Option<berth_forge::ForgeReport> {
        let (None, Some(api_url)) = (rest_unavailable(url), url.api_url.clone()) else {
            skip_rest_steps(&rest_unavailable(url).unwrap_or_default(), steps);
            return None;
        };
        let target = berth_forge::RepoTarget { provider: url.provider, api_url, repo_path: url.path.clone() };
        let view = berth_forge::CredentialView {
            kind: cred.kind,
            username: cred.username.as_deref(),
            email: cred.email.as_deref(),
            secret,
            declared_scopes: &cred.scopes,
            expiry,
        };
        let report = self.forge.check(&target, &view).await;
        steps.extend(report.steps.iter().cloned());
        Some(report)
    }
}

/// Why the host's REST API cannot be asked about this URL; `None` when it can.
fn rest_unavailable(url: &CloneUrl) -> Option<String> {
    if !berth_forge::supports(url.provider) {
        return Some(format!("no REST API checks for {} hosts; Git decides", url.provider));
    }
    url.api_url
        .is_none()
        .then(|| format!("no REST API URL is configured for {}: add api_url to its [[integrations]] entry", url.host))
}

/// Records the REST steps as skipped, saying why.
fn skip_rest_steps(why: &str, steps: &mut Vec<Step>) {
    for name in [StepName::ApiCredential, StepName::ApiScopes, StepName::ApiRepository] {
        steps.push(Step::skip(name, why));
    }
}

pub(crate) fn unopened_secret(cred: &CredentialRow) -> Step {
    Step::fail(
        StepName::Credential,
        Code::Internal,
        format!("the secret of credential {:?} cannot be decrypted", cred.name),
        "an administrator should check the master key file; then store the token again",
    )
}

pub(crate) fn credential_step(
    cred: &CredentialRow,
    identity: &GitIdentity,
    expiry: Expiry,
    chosen_by: Option<&str>,
) -> Step {
    // Scopes are the token scopes step's to judge (once, with the host's evidence), not this one's.
    let mut base = format!("{:?} ({}), Git uses {}", cred.name, cred.kind.label(), identity.describe());
    if let Some(why) = chosen_by {
        base = format!("{base}; {why}");
    }
    let step = match expiry {
        Expiry::Expired { days_ago } => Step::warn(
            StepName::Credential,
            Code::TokenExpired,
            format!("{base}; its stored expiry date passed {} ago", plural(days_ago, "day", "days")),
            "create a new token and update the credential's secret (a token rotation)",
        ),
        Expiry::ExpiresSoon { days_left } => Step::warn(
            StepName::Credential,
            Code::TokenExpiresSoon,
            format!("{base}; expires in {}", plural(days_left, "day", "days")),
            "create a new token before it expires and update the credential's secret",
        ),
        Expiry::Valid { days_left } => {
            Step::pass(StepName::Credential, format!("{base}; expires in {}", plural(days_left, "day", "days")))
        }
        Expiry::Unknown => Step::pass(StepName::Credential, base),
    };
    let step = with_client_certificate_expiry(step, cred, chrono::Utc::now().date_naive());
    match chosen_by {
        Some(why) => {
            let mut details = step.details.clone();
            details.insert(0, format!("credential {}, {why}", cred.name));
            step.with_details(details)
        }
        None => step,
    }
}

/// The credential's own client certificate, when it expires within the warning window or has
/// expired: a passing step turns into that warning; a step that already warns of the token
/// keeps its code and says it in its details, so neither date goes unmentioned.
fn with_client_certificate_expiry(step: Step, cred: &CredentialRow, today: chrono::NaiveDate) -> Step {
    let Some(cert) = &cred.client_certificate else { return step };
    let (code, when) = match berth_core::credential::expiry(Some(cert.not_after.date_naive()), today) {
        Expiry::Expired { days_ago } => {
            (Code::ClientCertificateExpired, format!("expired {} ago", plural(days_ago, "day", "days")))
        }
        Expiry::ExpiresSoon { days_left } => {
            (Code::ClientCertificateExpiresSoon, format!("expires in {}", plural(days_left, "day", "days")))
        }
        Expiry::Valid { .. } | Expiry::Unknown => return step,
    };
    let said = format!("its client certificate ({}) {when}", cert.subject);
    let remedy = "make a new client certificate and store it on the credential with its key (the credential's page, \
                  `berth credential update NAME --client-certificate-file FILE --client-key-file FILE`, or the API)";
    if step.status == StepStatus::Pass {
        Step::warn(StepName::Credential, code, format!("{}; {said}", step.message), remedy)
    } else {
        let mut details = step.details.clone();
        details.push(format!("also: {said}; {remedy}"));
        step.with_details(details)
    }
}

/// `signed`: a credential was sent (plain HTTP is then a warning: it travels unencrypted).
fn tls_step(url: &CloneUrl, signed: bool) -> Step {
    match url.scheme {
        Scheme::Https => Step::pass(StepName::Tls, format!("certificate valid for {}", url.host)),
        _ if !signed => Step::pass(StepName::Tls, "plain HTTP; no credential is sent (anonymous access)"),
        _ => Step::warn(
            StepName::Tls,
            Code::InsecureTransport,
            "plain HTTP: the credential travels unencrypted",
            "use the https:// clone URL if the host offers one",
        ),
    }
}

/// Reports a failed exchange at the step where it stopped, with the steps before it passed.
fn push_failure(
    steps: &mut Vec<Step>,
    url: &CloneUrl,
    identity: Option<&GitIdentity>,
    e: GitError,
    expiry: Expiry,
    elapsed: Duration,
) {
    let reached_http = matches!(e.stage, Stage::Discovery | Stage::LsRefs);
    if reached_http {
        steps.push(tls_step(url, identity.is_some()));
    }
    if e.stage == Stage::LsRefs {
        steps.push(Step::pass(StepName::GitDiscovery, "Git smart HTTP answered"));
    }
    let mut step = e.to_step().took(elapsed);
    if let Some(wait) = e.retry_after {
        step.message = format!("{} (retry after {} s)", step.message, wait.as_secs());
    }
    if let Some(loc) = &e.location {
        if !step.details.contains(loc) {
            step.details.push(loc.clone());
        }
    }
    // Bitbucket Cloud's Git answers a retired app password with 410 Gone: the same verdict the
    // REST step gives it.
    if e.http_status == Some(410) && url.provider == berth_core::Provider::BitbucketCloud {
        let retired = credential::app_password_retired();
        step.code = retired.code;
        step.message = format!("{} (Git answered HTTP 410 Gone)", retired.message);
        step.remedy = retired.remedy;
    }
    // Hosts answer the same 401 for an expired and a wrong token; the stored expiry tells them apart.
    if e.code == Code::AuthFailed {
        if let Expiry::Expired { days_ago } = expiry {
            step.code = Code::TokenExpired;
            step.message = format!(
                "the host refused the credential, whose stored expiry date passed {} ago",
                plural(days_ago, "day", "days")
            );
            step.remedy = "create a new token and update the credential's secret".to_owned();
        } else if let Some(GitIdentity::Basic { username }) = identity {
            // Bitbucket Cloud takes the email for REST calls but refuses it for Git.
            if url.provider == berth_core::Provider::BitbucketCloud && username.contains('@') {
                step.message =
                    format!("{} Git was given the email address {username:?} as the username.", step.message);
                step.remedy =
                    "Bitbucket's Git over HTTPS refuses the email with an API token: store the credential as \
                               \"Username with API Token\" with your Bitbucket username, or leave the username empty \
                               to use x-bitbucket-api-token-auth"
                        .to_owned();
            }
        }
    }
    // Through a proxy, a step that passed (the connection to the proxy) can fail on the request
    // itself (the proxy's 407 to plain HTTP, a refused tunnel): the failure replaces the pass.
    steps.retain(|s| s.step != step.step);
    steps.push(step);
}

mod anonymous;
mod client_cert;
mod git_steps;
mod github_app;
mod ssh;
#[cfg(test)]
mod tests;
