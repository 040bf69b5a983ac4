//! Credential templates: a URL prefix chooses the credential for every clone URL under it
//! when a request names none. Create, list, delete, explain a choice, and [`choose`], the one
//! function every use case that needs a credential calls (register, update, Refresh; imports
//! through [`choose_for_prefix`]).
//!
//! Prefixes are matched on whole path segments against the canonical clone URL (see
//! `berth_core::UrlPrefix`); the longest matching prefix wins. The choice is said in words
//! ("chosen by template https://bitbucket.org/acme/ (2 other templates considered)") that the
//! credential step of the check repeats, so the history keeps why a credential was used.

use super::credentials::resolve;
use super::{Error, Refusal, Result};
use crate::auth::{Action, CurrentUser};
use crate::state::AppState;
use berth_core::words::plural;
use berth_core::{Check, CloneUrl, Code, PrefixRelation, Step, StepName, StepStatus, UrlPrefix};
use berth_proto::{
    CredentialRef, CredentialSelector, CredentialTemplate, TemplateCandidate, TemplateCreate, TemplateMatch,
};
use berth_store::{CredentialRow, TemplateRow};

/// How many templates a `credential_required` finding lists.
const NEAREST: usize = 5;

pub(crate) fn view(t: TemplateRow) -> CredentialTemplate {
    CredentialTemplate {
        id: t.id,
        url_prefix: t.url_prefix,
        credential: CredentialRef { id: t.credential_id, name: t.credential_name },
        created_by: t.created_by,
        created_at: t.created_at,
        updated_at: t.updated_at,
    }
}

/// A prefix as typed, normalised; refused with the clone URL's codes and words.
pub(crate) fn parse_prefix(raw: &str) -> Result<UrlPrefix> {
    UrlPrefix::parse(raw).map_err(|e| {
        let remedy = match e.code() {
            Code::SecretInUrl => e.remedy().to_owned(),
            _ => "write the start of the clone URLs it is for, such as https://bitbucket.org/acme/".to_owned(),
        };
        Error::Invalid(Refusal::new(e.code(), format!("URL prefix: {e}").replace("clone URL", "URL prefix"), remedy))
    })
}

pub async fn create(st: &AppState, u: &CurrentUser, req: TemplateCreate) -> Result<CredentialTemplate> {
    u.require(Action::ManageTemplates)?;
    let prefix = parse_prefix(&req.url_prefix)?.to_string();
    let cred = resolve(st, &req.credential).await?;
    let row = st.store.create_template(&prefix, cred.id, &u.user.username).await?;
    tracing::info!(template = row.id, "credential template created");
    u.audit(
        &st.store,
        "template.create",
        "template",
        Some(row.id),
        &row.url_prefix,
        format!("credential {:?}", cred.name),
    )
    .await;
    Ok(view(row))
}

/// Points a template at another credential (a configuration apply's update).
pub async fn retarget(
    st: &AppState,
    u: &CurrentUser,
    id: i64,
    credential: &CredentialSelector,
) -> Result<CredentialTemplate> {
    u.require(Action::ManageTemplates)?;
    let cur = st.store.get_template(id).await?;
    let cred = resolve(st, credential).await?;
    let row = st.store.set_template_credential(id, cred.id).await?;
    let detail = format!("credential {:?} -> {:?}", cur.credential_name, row.credential_name);
    u.audit(&st.store, "template.update", "template", Some(id), &row.url_prefix, detail).await;
    Ok(view(row))
}

/// Every template, longest prefix first: the order they are tried in.
pub async fn list(st: &AppState, u: &CurrentUser) -> Result<Vec<CredentialTemplate>> {
    u.require(Action::ReadCredentials)?;
    Ok(st.store.list_templates().await?.into_iter().map(view).collect())
}

pub async fn delete(st: &AppState, u: &CurrentUser, id: i64) -> Result<CredentialTemplate> {
    u.require(Action::ManageTemplates)?;
    let row = st.store.get_template(id).await?;
    st.store.delete_template(id).await?;
    tracing::info!(template = id, "credential template deleted");
    u.audit(
        &st.store,
        "template.delete",
        "template",
        Some(id),
        &row.url_prefix,
        format!("credential {:?}", row.credential_name),
    )
    .await;
    Ok(view(row))
}

/// Which credential a clone URL would use, and why each template was or was not chosen.
pub async fn explain(st: &AppState, u: &CurrentUser, raw_url: &str) -> Result<TemplateMatch> {
    u.require(Action::ReadCredentials)?;
    let url = CloneUrl::parse(raw_url, &st.config.integrations)?;
    let templates = st.store.list_templates().await?;
    let found = compare(&templates, &UrlPrefix::of_url(&url));
    let chosen = found.chosen.map(|i| templates[i].clone());
    let reason = match &chosen {
        Some(t) => format!("credential {}, {}", t.credential_name, found.reason(t)),
        None => format!(
            "no template covers {} ({} considered): name a credential, or Berth tries anonymous access (a public \
             repository)",
            url.canonical(),
            plural(templates.len() as i64, "template", "templates")
        ),
    };
    Ok(TemplateMatch {
        clone_url: url.canonical(),
        credential: chosen.as_ref().map(|t| CredentialRef { id: t.credential_id, name: t.credential_name.clone() }),
        template: chosen.map(view),
        reason,
        candidates: found
            .order
            .iter()
            .map(|c| TemplateCandidate {
                template: view(templates[c.index].clone()),
                matches: c.matches,
                chosen: Some(c.index) == found.chosen,
                why: c.why.clone(),
            })
            .collect(),
    })
}

/// A credential for a check, and why it is the one.
pub struct Chosen {
    pub credential: CredentialRow,
    /// "chosen explicitly", "chosen by template … (N other templates considered)".
    pub reason: String,
    /// The template that chose it.
    pub template: Option<i64>,
}

/// The credential an import reads its source with: the one the request names, else the one
/// of the longest matching template. With neither, the listing fails at its credential step
/// with `credential_required`, listing the templates nearest to the source (a listing of a
/// workspace is not tried anonymously).
pub async fn choose(st: &AppState, url: &CloneUrl, selector: Option<&CredentialSelector>) -> Result<Chosen> {
    choose_for(st, &UrlPrefix::of_url(url), &url.canonical(), selector).await
}

/// [`choose`] for a place that is not one repository (an import's source: a workspace, project
/// or organisation URL, read with [`parse_prefix`]): the template whose prefix covers it.
pub async fn choose_for_prefix(
    st: &AppState,
    source: &UrlPrefix,
    selector: Option<&CredentialSelector>,
) -> Result<Chosen> {
    choose_for(st, source, &source.to_string(), selector).await
}

async fn choose_for(
    st: &AppState,
    form: &UrlPrefix,
    shown: &str,
    selector: Option<&CredentialSelector>,
) -> Result<Chosen> {
    match choose_or_none(st, form, shown, selector).await? {
        Choice::Credential(c) => Ok(*c),
        Choice::None(none) => Err(Error::CheckFailed(credential_required(shown, &none))),
    }
}

/// What a repository's check uses when no credential was named.
pub enum Choice {
    Credential(Box<Chosen>),
    /// No template covers the URL: the check goes anonymously (a public repository), and a
    /// host that wants sign-in answers `credential_required`, which [`NoTemplate::explain`]
    /// completes with the templates nearest to the URL.
    None(NoTemplate),
}

/// Why no template chose a credential, for the credential step and a `credential_required`.
pub struct NoTemplate {
    /// "no credential was given and none of the 3 credential templates covers …".
    pub reason: String,
    /// The nearest templates, each with why it does not cover the URL.
    pub nearest: Vec<String>,
}

impl NoTemplate {
    /// Completes the step where the host refused the anonymous check (`credential_required`,
    /// or a 404 that may hide a private repository) with the nearest templates and the other
    /// remedy: a template that covers the URL.
    pub fn explain(&self, steps: &mut [Step]) {
        let wants_credential = |c: Code| matches!(c, Code::CredentialRequired | Code::RepositoryNotFoundOrNoAccess);
        for s in steps.iter_mut().filter(|s| s.status == StepStatus::Fail && wants_credential(s.code)) {
            s.details.extend(self.nearest.iter().cloned());
            s.remedy = format!("{} {TEMPLATE_REMEDY}", s.remedy.trim_end());
        }
    }
}

const TEMPLATE_REMEDY: &str = "Or add a credential template whose URL prefix covers this URL (berth template add \
                               PREFIX --credential NAME).";

/// The credential a repository's check uses: the one the request names, else the one of the
/// longest matching template, else none ([`Choice::None`]: anonymous access).
pub async fn choose_or_anonymous(
    st: &AppState,
    url: &CloneUrl,
    selector: Option<&CredentialSelector>,
) -> Result<Choice> {
    choose_or_none(st, &UrlPrefix::of_url(url), &url.canonical(), selector).await
}

async fn choose_or_none(
    st: &AppState,
    form: &UrlPrefix,
    shown: &str,
    selector: Option<&CredentialSelector>,
) -> Result<Choice> {
    if let Some(sel) = selector {
        let credential = resolve(st, sel).await?;
        let chosen = Chosen { credential, reason: "chosen explicitly".to_owned(), template: None };
        return Ok(Choice::Credential(Box::new(chosen)));
    }
    let templates = st.store.list_templates().await?;
    let found = compare(&templates, form);
    if let Some(t) = found.chosen.map(|i| &templates[i]) {
        // The template's credential cannot be deleted while the template exists.
        let credential = st.store.get_credential(t.credential_id).await?;
        let chosen = Chosen { credential, reason: found.reason(t), template: Some(t.id) };
        return Ok(Choice::Credential(Box::new(chosen)));
    }
    let reason = if templates.is_empty() {
        format!("no credential was given and there are no credential templates to choose one for {shown}")
    } else {
        format!(
            "no credential was given and none of the {} covers {shown}",
            plural(templates.len() as i64, "credential template", "credential templates")
        )
    };
    let nearest = found
        .order
        .iter()
        .take(NEAREST)
        .map(|c| {
            let t = &templates[c.index];
            format!("{} (credential {}): {}", t.url_prefix, t.credential_name, c.why)
        })
        .collect();
    Ok(Choice::None(NoTemplate { reason, nearest }))
}

/// The failed check of a source no template covers: the url step passed, the credential step
/// names the nearest templates.
fn credential_required(shown: &str, none: &NoTemplate) -> Vec<Step> {
    let remedy = "name the credential to use, or add a credential template whose URL prefix covers this URL \
                  (berth template add PREFIX --credential NAME)";
    let steps = vec![
        Step::pass(StepName::Url, shown.to_owned()),
        Step::fail(StepName::Credential, Code::CredentialRequired, none.reason.clone(), remedy)
            .with_details(none.nearest.clone()),
    ];
    Check::completed(steps).checks
}

struct Candidate {
    index: usize,
    matches: bool,
    why: String,
    /// Sort key: matching first, then the longest shared path.
    rank: (bool, usize, usize),
}

struct Compared {
    chosen: Option<usize>,
    /// Every template, nearest first.
    order: Vec<Candidate>,
    total: usize,
}

impl Compared {
    fn reason(&self, t: &TemplateRow) -> String {
        let others = self.total.saturating_sub(1);
        format!(
            "chosen by template {} ({} considered)",
            t.url_prefix,
            plural(others as i64, "other template", "other templates")
        )
    }
}

/// Compares every template with the URL's match form.
fn compare(templates: &[TemplateRow], url: &UrlPrefix) -> Compared {
    let parsed: Vec<Option<UrlPrefix>> = templates.iter().map(|t| UrlPrefix::parse(&t.url_prefix).ok()).collect();
    let chosen = parsed
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.as_ref().filter(|p| p.matches(url)).map(|p| (i, p.depth())))
        .max_by_key(|(i, depth)| (*depth, std::cmp::Reverse(*i)))
        .map(|(i, _)| i);
    let winner = chosen.map(|i| templates[i].url_prefix.as_str());
    let mut order: Vec<Candidate> = parsed
        .iter()
        .enumerate()
        .map(|(index, p)| {
            let Some(p) = p else {
                return Candidate {
                    index,
                    matches: false,
                    why: "its prefix no longer reads".to_owned(),
                    rank: (false, 0, 0),
                };
            };
            let (matches, shared, why) = match p.relation(url) {
                PrefixRelation::Matches if Some(index) == chosen => {
                    (true, p.depth(), "the longest prefix that covers the URL".to_owned())
                }
                PrefixRelation::Matches => {
                    (true, p.depth(), format!("covers the URL, but {} is longer", winner.unwrap_or_default()))
                }
                PrefixRelation::OtherHost => (false, 0, format!("another host: {}", p.authority())),
                PrefixRelation::Diverges { shared } => {
                    let why = match (p.segments().get(shared), url.segments().get(shared)) {
                        (Some(want), Some(got)) => {
                            format!("the path differs at segment {}: {got:?} is not {want:?}", shared + 1)
                        }
                        _ => "the prefix is longer than the URL's path".to_owned(),
                    };
                    (false, shared, why)
                }
            };
            let same_host = !matches!(p.relation(url), PrefixRelation::OtherHost);
            Candidate { index, matches, why, rank: (matches, usize::from(same_host), shared) }
        })
        .collect();
    order.sort_by(|a, b| b.rank.cmp(&a.rank).then(a.index.cmp(&b.index)));
    Compared { chosen, order, total: templates.len() }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn t(id: i64, prefix: &str, cred: &str) -> TemplateRow {
        TemplateRow {
            id,
            url_prefix: UrlPrefix::parse(prefix).map(|p| p.to_string()).unwrap_or_default(),
            credential_id: id,
            credential_name: cred.to_owned(),
            created_by: "admin".to_owned(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn form(url: &str) -> UrlPrefix {
        UrlPrefix::of_url(&CloneUrl::parse(url, &[]).unwrap_or_else(|e| panic!("{url}: {e}")))
    }

    #[test]
    fn the_longest_matching_prefix_wins_and_every_template_says_why() {
        let ts = vec![
            t(1, "https://bitbucket.org/", "any"),
            t(2, "https://bitbucket.org/acme/", "acme"),
            t(3, "https://bitbucket.org/acmecorp/", "corp"),
            t(4, "https://github.com/acme/", "gh"),
        ];
        let found = compare(&ts, &form("git clone git@bitbucket.org:acme/app.git"));
        assert_eq!(found.chosen, Some(1));
        assert_eq!(
            found.reason(&ts[1]),
            "chosen by template https://bitbucket.org/acme/ (3 other templates considered)"
        );
        let whys: Vec<(i64, &str)> = found.order.iter().map(|c| (ts[c.index].id, c.why.as_str())).collect();
        assert_eq!(whys[0], (2, "the longest prefix that covers the URL"));
        assert_eq!(whys[1], (1, "covers the URL, but https://bitbucket.org/acme/ is longer"));
        assert_eq!(whys[2], (3, "the path differs at segment 1: \"acme\" is not \"acmecorp\""));
        assert_eq!(whys[3], (4, "another host: github.com"));

        let none = compare(&ts[2..], &form("https://bitbucket.org/acme/app.git"));
        assert_eq!(none.chosen, None);
    }
}
