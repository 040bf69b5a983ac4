//! The REST steps of a GitHub App credential: the app, its installation on the repository's
//! owner, the installation's permissions and the repository (berth-forge's `github_app`),
//! which also mint the installation token Git is then given as `x-access-token`'s password.

use super::{Checker, Verified};
use berth_core::{CloneUrl, Code, HostBase, Provider, Step, StepName};
use berth_forge::github_app::GithubApp;
use berth_forge::ForgeReport;
use berth_store::CredentialRow;
use secrecy::SecretString;

fn app_of<'a>(cred: &'a CredentialRow, key: &'a SecretString) -> GithubApp<'a> {
    GithubApp {
        app_id: cred.app_id.as_deref().unwrap_or_default(),
        installation_id: cred.installation_id,
        private_key: key,
    }
}

/// A GitHub App used on another host: nothing to ask.
fn not_github(host: &str, provider: Provider) -> Step {
    Step::fail(
        StepName::ApiCredential,
        Code::InvalidInput,
        format!("a GitHub App credential works only with GitHub hosts; {host} is a {provider} host"),
        "choose a credential made for this host",
    )
}

impl Checker<'_> {
    /// The app's steps for `url`, and the installation token when they all held.
    pub(super) async fn app_steps(
        &self,
        url: &CloneUrl,
        cred: &CredentialRow,
        key: &SecretString,
        steps: &mut Vec<Step>,
    ) -> (Option<ForgeReport>, Option<SecretString>) {
        let api_url = url.api_url.clone().filter(|_| url.provider == Provider::Github);
        let Some(api_url) = api_url else {
            steps.push(not_github(&url.host, url.provider));
            return (None, None);
        };
        let checked = self.forge.github_app_check(&api_url, &url.path, &app_of(cred, key)).await;
        steps.extend(checked.report.steps.iter().cloned());
        (Some(checked.report), checked.token)
    }

    /// A verification of the app alone: its name and its installations.
    pub(super) async fn verify_app(
        &self,
        host: &HostBase,
        api_url: &str,
        cred: &CredentialRow,
        key: &SecretString,
        v: &mut Verified,
    ) {
        if host.provider != Provider::Github {
            v.steps.push(not_github(&host.host, host.provider));
            return;
        }
        let report = self.forge.github_app_verify(api_url, &app_of(cred, key)).await;
        v.steps.extend(report.steps);
        v.identity = report.identity;
        v.rest_checked = true;
    }
}
