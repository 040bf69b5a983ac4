//! `berth credential …`: store, list, show, update and delete Git-host credentials.
//! Secrets come from a no-echo prompt or from standard input, never from the command line.

use super::{
    as_id, connect, describe, not_resolved, pick, prompt_secret, secret_from_stdin, verdict, CmdResult, Ctx, Failure,
    Global,
};
use berth::output::{credential_detail, credential_table, credential_warnings, step_table, verification_report};
use berth_core::{Code, CredentialKind};
use berth_proto::{Credential, CredentialCreate, CredentialUpdate, CredentialVerify, Id, VerificationStatus};
use chrono::NaiveDate;
use clap::{Args, Subcommand, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum KindArg {
    /// Bitbucket Cloud API token with your Atlassian email ("Username with API Token").
    BitbucketApiToken,
    /// A bearer token: Bitbucket access token, Data Center HTTP token, GitHub/GitLab token, Azure DevOps PAT.
    AccessToken,
    /// Username and password for any Git host.
    UsernamePassword,
    /// Retired by Atlassian: accepted only to explain what to create instead.
    BitbucketAppPassword,
    /// A GitHub App: --app-id, optionally --installation-id, and its private key (PEM) from
    /// --private-key-file or standard input.
    GithubApp,
    /// "SSH Username with private key": --private-key-file, or --generate.
    SshKey,
}

impl From<KindArg> for CredentialKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::BitbucketApiToken => CredentialKind::BitbucketApiToken,
            KindArg::AccessToken => CredentialKind::AccessToken,
            KindArg::UsernamePassword => CredentialKind::UsernamePassword,
            KindArg::BitbucketAppPassword => CredentialKind::BitbucketAppPassword,
            KindArg::GithubApp => CredentialKind::GithubApp,
            KindArg::SshKey => CredentialKind::SshKey,
        }
    }
}

pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| format!("{s:?} is not a date like 2026-12-31"))
}

#[derive(Debug, Clone, Subcommand)]
pub enum CredentialCmd {
    /// Store a credential. The secret is prompted for without echo, or read from stdin.
    Add(AddArgs),
    /// List stored credentials (never their secrets).
    #[command(alias = "ls")]
    List,
    /// Show one credential.
    Show {
        /// Id or name.
        credential: String,
    },
    /// Change a credential's fields, or rotate its secret (verified, and every repository using
    /// it re-checked, before the answer).
    Update(UpdateArgs),
    /// Verify a credential on its host, or at a URL: is it accepted, who is it, its scopes.
    /// Exits 1 when the verification fails.
    Verify {
        /// Id or name.
        credential: String,
        /// A clone URL (the Git step runs too) or a base URL on the host, such as
        /// https://bitbucket.org. Default: the credential's host.
        #[arg(long)]
        url: Option<String>,
    },
    /// Delete a credential no repository uses.
    #[command(alias = "remove", alias = "delete")]
    Rm {
        /// Id or name.
        credential: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct AddArgs {
    /// A name people will recognise.
    #[arg(long)]
    pub name: String,
    #[arg(long, value_enum)]
    pub kind: KindArg,
    /// The Git username (for an API token: your Bitbucket username, not the email; optional).
    #[arg(long)]
    pub username: Option<String>,
    /// The Atlassian account email (required for bitbucket_api_token).
    #[arg(long)]
    pub email: Option<String>,
    /// When the token expires, as YYYY-MM-DD.
    #[arg(long, value_parser = parse_date, value_name = "YYYY-MM-DD")]
    pub expires_on: Option<NaiveDate>,
    /// A scope the token was given (repeat, or separate with commas).
    #[arg(long = "scope", value_delimiter = ',', value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// The host it is for, where it is verified as it is saved: a base URL such as
    /// https://bitbucket.org, or an integration's host:port.
    #[arg(long, value_name = "URL")]
    pub host: Option<String>,
    /// Read the secret from one line of standard input instead of prompting (github_app: the
    /// whole private key; ssh_key: the key's passphrase).
    #[arg(long)]
    pub secret_stdin: bool,
    /// github_app: the app's id (its settings page, "App ID").
    #[arg(long, value_name = "ID")]
    pub app_id: Option<String>,
    /// github_app: the one installation to use [default: the installation on each
    /// repository's owner].
    #[arg(long, value_name = "ID")]
    pub installation_id: Option<i64>,
    /// github_app: the file holding the app's private key (the .pem GitHub gave). ssh_key: the
    /// private key file (OpenSSH or PEM); its passphrase is prompted for (empty for none) or
    /// read with --secret-stdin.
    #[arg(long, value_name = "PATH", conflicts_with = "generate")]
    pub private_key_file: Option<std::path::PathBuf>,
    /// ssh_key: let Berth make an ed25519 key; the answer shows the public key to add to the host.
    #[arg(long)]
    pub generate: bool,
    #[command(flatten)]
    pub client: ClientCertArgs,
}

/// A TLS client certificate of the credential's own (hosts that tie certificates to users),
/// from files: the key is never an argument.
#[derive(Debug, Clone, Args)]
pub struct ClientCertArgs {
    /// The credential's own TLS client certificate (PEM), presented in place of the host's
    /// [[integrations]] certificate. Needs --client-key-file.
    #[arg(long, value_name = "PATH", requires = "client_key_file")]
    pub client_certificate_file: Option<std::path::PathBuf>,
    /// The client certificate's private key (PEM), sealed by Berth and never shown.
    #[arg(long, value_name = "PATH", requires = "client_certificate_file")]
    pub client_key_file: Option<std::path::PathBuf>,
}

impl ClientCertArgs {
    /// The certificate and key as read from their files.
    fn read(&self) -> Result<(Option<String>, Option<String>), Failure> {
        let read = |p: &Option<std::path::PathBuf>, what: &str| {
            p.as_ref()
                .map(|path| {
                    std::fs::read_to_string(path)
                        .map_err(|e| Failure::Usage(format!("cannot read the {what} file {}: {e}", path.display())))
                })
                .transpose()
        };
        Ok((read(&self.client_certificate_file, "client certificate")?, read(&self.client_key_file, "client key")?))
    }
}

#[derive(Debug, Clone, Args)]
pub struct UpdateArgs {
    /// Id or name.
    pub credential: String,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, conflicts_with = "clear_username")]
    pub username: Option<String>,
    #[arg(long)]
    pub clear_username: bool,
    #[arg(long, conflicts_with = "clear_email")]
    pub email: Option<String>,
    #[arg(long)]
    pub clear_email: bool,
    #[arg(long, value_parser = parse_date, value_name = "YYYY-MM-DD", conflicts_with = "clear_expiry")]
    pub expires_on: Option<NaiveDate>,
    #[arg(long)]
    pub clear_expiry: bool,
    /// Replace the recorded scopes (repeat, or separate with commas).
    #[arg(long = "scope", value_delimiter = ',', value_name = "SCOPE", conflicts_with = "clear_scopes")]
    pub scopes: Vec<String>,
    #[arg(long)]
    pub clear_scopes: bool,
    /// The host it is for (a base URL such as https://bitbucket.org, or host:port); it is
    /// verified there.
    #[arg(long, value_name = "URL", conflicts_with = "clear_host")]
    pub host: Option<String>,
    #[arg(long)]
    pub clear_host: bool,
    /// Prompt for a new secret (no echo).
    #[arg(long, conflicts_with = "secret_stdin")]
    pub rotate_secret: bool,
    /// Read a new secret from one line of standard input.
    #[arg(long)]
    pub secret_stdin: bool,
    /// github_app: a new app id (verified again).
    #[arg(long, value_name = "ID")]
    pub app_id: Option<String>,
    /// github_app: another installation (verified again).
    #[arg(long, value_name = "ID", conflicts_with = "installation_per_owner")]
    pub installation_id: Option<i64>,
    /// github_app: find the installation on each repository's owner instead of one installation.
    #[arg(long)]
    pub installation_per_owner: bool,
    #[command(flatten)]
    pub client: ClientCertArgs,
    /// Remove the credential's own client certificate and its key.
    #[arg(long, conflicts_with_all = ["client_certificate_file", "client_key_file"])]
    pub clear_client_certificate: bool,
}

impl UpdateArgs {
    /// The update, without the secret.
    pub fn to_update(&self) -> CredentialUpdate {
        fn set_or_clear<T: Clone>(v: &Option<T>, clear: bool) -> Option<Option<T>> {
            if clear {
                Some(None)
            } else {
                v.clone().map(Some)
            }
        }
        CredentialUpdate {
            name: self.name.clone(),
            username: set_or_clear(&self.username, self.clear_username),
            email: set_or_clear(&self.email, self.clear_email),
            secret: None,
            expires_on: set_or_clear(&self.expires_on, self.clear_expiry),
            scopes: if self.clear_scopes {
                Some(Vec::new())
            } else if self.scopes.is_empty() {
                None
            } else {
                Some(self.scopes.clone())
            },
            host: set_or_clear(&self.host, self.clear_host),
            private_key: None,
            passphrase: None,
            app_id: self.app_id.clone(),
            installation_id: if self.installation_per_owner { Some(None) } else { self.installation_id.map(Some) },
            client_certificate: self.clear_client_certificate.then_some(None),
            client_key: None,
        }
    }

    fn changes_secret(&self) -> bool {
        self.rotate_secret || self.secret_stdin
    }
}

fn is_empty(u: &CredentialUpdate) -> bool {
    u.name.is_none()
        && u.username.is_none()
        && u.email.is_none()
        && u.secret.is_none()
        && u.expires_on.is_none()
        && u.scopes.is_none()
        && u.host.is_none()
        && u.app_id.is_none()
        && u.installation_id.is_none()
        && u.client_certificate.is_none()
}

pub async fn run(global: &Global, cmd: CredentialCmd) -> CmdResult {
    if let CredentialCmd::Add(a) = &cmd {
        // Say so before anyone types a retired password.
        if a.kind == KindArg::BitbucketAppPassword {
            let e = berth_core::credential::app_password_retired();
            return Err(Failure::Client(berth::client::ClientError::Api {
                status: 422,
                body: berth_proto::ApiError { code: e.code, message: e.message, remedy: e.remedy, checks: Vec::new() },
            }));
        }
    }
    let ctx = connect(global, true)?;
    match cmd {
        CredentialCmd::Add(a) => add(&ctx, a).await,
        CredentialCmd::List => {
            let pages = ctx.client.credentials(None);
            let table = |page: &[Credential], first: bool| {
                let t = credential_table(page);
                if first {
                    t
                } else {
                    t.split_once('\n').map(|(_, rows)| rows.to_owned()).unwrap_or_default()
                }
            };
            ctx.stream(pages, None, table, "No credentials. Add one with `berth credential add`.\n").await?;
            Ok(())
        }
        CredentialCmd::Show { credential } => {
            let c = match as_id(&credential) {
                Some(id) => ctx.client.get_credential(id).await?,
                None => resolve(&ctx, &credential).await?,
            };
            ctx.emit(&c, || format!("{}{}", credential_detail(&c), credential_warnings(&c)));
            Ok(())
        }
        CredentialCmd::Update(u) => update(&ctx, u).await,
        CredentialCmd::Verify { credential, url } => {
            let (id, _) = resolve_id(&ctx, &credential).await?;
            let c = ctx.client.verify_credential(id, &CredentialVerify { url }).await?;
            ctx.emit(&c, || verification_report(&c));
            verdict(c.verification.status != VerificationStatus::Fail)
        }
        CredentialCmd::Rm { credential } => {
            let (id, name) = resolve_id(&ctx, &credential).await?;
            ctx.client.delete_credential(id).await?;
            if ctx.json {
                outln!("{}", berth::output::json(&serde_json::json!({ "deleted": id })));
            } else {
                outln!("Deleted credential {}.", describe(id, name.as_deref()));
            }
            Ok(())
        }
    }
}

/// A GitHub App's private key: a PEM file of several lines, from a file or all of standard
/// input (never an argument).
fn private_key(file: Option<&std::path::Path>, stdin: bool) -> Result<String, Failure> {
    let text =
        match (file, stdin) {
            (Some(path), _) => std::fs::read_to_string(path)
                .map_err(|e| Failure::Usage(format!("cannot read the private key file {}: {e}", path.display())))?,
            (None, true) => {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut s)
                    .map_err(|e| Failure::Usage(format!("cannot read the private key from standard input: {e}")))?;
                s
            }
            (None, false) => return Err(Failure::Usage(
                "a GitHub App's private key is a file: give --private-key-file PATH, or pipe it in with --secret-stdin"
                    .to_owned(),
            )),
        };
    if text.trim().is_empty() {
        return Err(Failure::Usage("the private key is empty".to_owned()));
    }
    Ok(text)
}

async fn add(ctx: &Ctx, a: AddArgs) -> CmdResult {
    let kind = CredentialKind::from(a.kind);
    if kind == CredentialKind::SshKey {
        return add_ssh_key(ctx, a).await;
    }
    if a.generate {
        return Err(Failure::Usage("--generate is for --kind ssh_key".to_owned()));
    }
    let secret = if kind == CredentialKind::GithubApp {
        if a.private_key_file.is_some() && a.secret_stdin {
            return Err(Failure::Usage(
                "give the GitHub App's private key once: --private-key-file PATH or --secret-stdin".to_owned(),
            ));
        }
        private_key(a.private_key_file.as_deref(), a.secret_stdin)?
    } else if a.private_key_file.is_some() {
        return Err(Failure::Usage("--private-key-file is for --kind github_app and --kind ssh_key".to_owned()));
    } else if a.secret_stdin {
        secret_from_stdin("secret")?
    } else {
        let prompt = if kind == CredentialKind::UsernamePassword { "Password: " } else { "Token: " };
        prompt_secret(prompt, "secret")?
    };
    let (client_certificate, client_key) = a.client.read()?;
    let req = CredentialCreate {
        name: a.name,
        kind,
        username: a.username.filter(|s| !s.trim().is_empty()),
        email: a.email.filter(|s| !s.trim().is_empty()),
        app_id: a.app_id.filter(|s| !s.trim().is_empty()),
        installation_id: a.installation_id,
        secret,
        expires_on: a.expires_on,
        scopes: if a.scopes.is_empty() { None } else { Some(a.scopes) },
        host: a.host.filter(|s| !s.trim().is_empty()),
        private_key: None,
        passphrase: None,
        generate: false,
        client_certificate,
        client_key,
    };
    let result = ctx.client.create_credential(&req).await;
    drop(req);
    let c = result?;
    let failed = c.verification.status == VerificationStatus::Fail;
    ctx.emit(&c, || {
        format!(
            "Stored credential {} ({}). The secret is encrypted and is never shown again.\n{}{}{}",
            describe(c.id, Some(&c.name)),
            c.kind_label,
            verification_report(&c),
            if failed { "The credential is saved as it is: fix it with `berth credential update`.\n" } else { "" },
            credential_warnings(&c)
        )
    });
    verdict(!failed)
}

/// `--kind ssh_key`: a generated key, or a private key file with its passphrase (never on the
/// command line).
async fn add_ssh_key(ctx: &Ctx, a: AddArgs) -> CmdResult {
    let (private_key, passphrase) = match (&a.private_key_file, a.generate) {
        (Some(path), false) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::Usage(format!("cannot read the private key file {}: {e}", path.display())))?;
            let pass = if a.secret_stdin {
                secret_from_stdin("passphrase")?
            } else if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                rpassword::prompt_password("Passphrase (empty for none): ").unwrap_or_default()
            } else {
                String::new()
            };
            (Some(text), Some(pass).filter(|p| !p.is_empty()))
        }
        (None, true) => (None, None),
        _ => return Err(Failure::Usage("--kind ssh_key needs --private-key-file FILE or --generate".to_owned())),
    };
    let (client_certificate, client_key) = a.client.read()?;
    let req = CredentialCreate {
        name: a.name,
        kind: CredentialKind::SshKey,
        username: a.username.filter(|s| !s.trim().is_empty()),
        email: None,
        // Sent as given, so the server refuses GitHub App fields on an SSH key.
        app_id: a.app_id.filter(|s| !s.trim().is_empty()),
        installation_id: a.installation_id,
        secret: String::new(),
        expires_on: a.expires_on,
        scopes: None,
        host: a.host.filter(|s| !s.trim().is_empty()),
        private_key,
        passphrase,
        generate: a.generate,
        // Sent as given, so the server refuses a client certificate on an SSH key.
        client_certificate,
        client_key,
    };
    let result = ctx.client.create_credential(&req).await;
    drop(req);
    let c = result?;
    ctx.emit(&c, || {
        format!(
            "Stored credential {} ({}). The private key is encrypted and never leaves Berth.\n\
             Public key (add it to the host's access keys or deploy keys):\n{}\nFingerprint: {}\n",
            describe(c.id, Some(&c.name)),
            c.kind_label,
            c.public_key.as_deref().unwrap_or("-"),
            c.fingerprint.as_deref().unwrap_or("-"),
        )
    });
    Ok(())
}

async fn update(ctx: &Ctx, u: UpdateArgs) -> CmdResult {
    let mut req = u.to_update();
    if u.client.client_certificate_file.is_some() {
        let (certificate, key) = u.client.read()?;
        req.client_certificate = Some(certificate);
        req.client_key = key;
    }
    if is_empty(&req) && !u.changes_secret() {
        return Err(Failure::Usage(
            "nothing to update: give --name, --username, --email, --expires-on, --scope, --app-id, --installation-id, --client-certificate-file, their --clear-… forms, or --rotate-secret".to_owned(),
        ));
    }
    // Resolve first, so a mistyped name fails before anyone types a secret.
    let (id, _) = resolve_id(ctx, &u.credential).await?;
    if u.secret_stdin {
        req.secret = Some(secret_from_stdin("secret")?);
    } else if u.rotate_secret {
        req.secret = Some(prompt_secret("New token or password: ", "secret")?);
    }
    let rotated = req.secret.is_some();
    let req_host_changed = req.host.is_some();
    let result = ctx.client.update_credential(id, &req).await;
    drop(req);
    let c = result?;
    let verified_now = rotated
        || req_host_changed
        || u.app_id.is_some()
        || u.installation_id.is_some()
        || u.installation_per_owner
        || u.client.client_certificate_file.is_some()
        || u.clear_client_certificate;
    let failed =
        (verified_now && c.verification.status == VerificationStatus::Fail) || c.rechecked.iter().any(|r| !r.check.ok);
    ctx.emit(&c, || {
        let mut out = format!(
            "Updated credential {}{}.\n",
            describe(c.id, Some(&c.name)),
            if rotated { "; token replaced" } else { "" }
        );
        if verified_now {
            out.push_str(&verification_report(&c));
        }
        for r in &c.rechecked {
            let word = if r.check.ok { "ok" } else { "FAILED" };
            out.push_str(&format!(
                "Re-checked repository {}: {word}\n",
                describe(r.repository.id, Some(&r.repository.name))
            ));
            if !r.check.ok {
                out.push_str(&step_table(&r.check.checks));
            }
        }
        if failed {
            out.push_str("The change is saved; the failures above need attention.\n");
        }
        out.push_str(&credential_warnings(&c));
        out
    });
    verdict(!failed)
}

/// The credential an id or name refers to.
async fn resolve(ctx: &Ctx, key: &str) -> Result<Credential, Failure> {
    let list = ctx.client.list_credentials().await?;
    match pick(&list, key, |c| c.id, |c| c.name.as_str()) {
        Ok(c) => Ok(c.clone()),
        Err(m) => Err(not_found(key, &m)),
    }
}

/// The id an id or name refers to, and the name when it was looked up.
async fn resolve_id(ctx: &Ctx, key: &str) -> Result<(Id, Option<String>), Failure> {
    if let Some(id) = as_id(key) {
        return Ok((id, None));
    }
    resolve(ctx, key).await.map(|c| (c.id, Some(c.name)))
}

fn not_found(key: &str, matches: &[&Credential]) -> Failure {
    let m: Vec<(Id, String)> = matches.iter().map(|c| (c.id, c.name.clone())).collect();
    not_resolved("credential", key, &m, Code::CredentialNotFound, "berth credential list")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn update_flags_map_to_a_partial_update() {
        let u = UpdateArgs {
            credential: "x".into(),
            name: None,
            username: None,
            clear_username: true,
            email: Some("a@b.example".into()),
            clear_email: false,
            expires_on: None,
            clear_expiry: true,
            scopes: vec![],
            clear_scopes: false,
            host: None,
            clear_host: false,
            rotate_secret: false,
            secret_stdin: false,
            app_id: None,
            installation_id: None,
            installation_per_owner: false,
            client: ClientCertArgs { client_certificate_file: None, client_key_file: None },
            clear_client_certificate: false,
        };
        let json = serde_json::to_value(u.to_update()).unwrap();
        assert_eq!(json, serde_json::json!({"username": null, "email": "a@b.example", "expires_on": null}));
        let app = UpdateArgs { installation_per_owner: true, clear_client_certificate: true, ..u };
        let json = serde_json::to_value(app.to_update()).unwrap();
        assert_eq!(json["installation_id"], serde_json::Value::Null);
        assert_eq!(json["client_certificate"], serde_json::Value::Null);
        assert!(json.as_object().unwrap().contains_key("installation_id"), "null, not left out: {json}");
    }

    #[test]
    fn dates_parse_strictly() {
        assert_eq!(parse_date("2026-12-31").unwrap().to_string(), "2026-12-31");
        assert!(parse_date("31/12/2026").is_err());
    }
}
