//! `berth repo …`: list a remote's branches, register repositories after a check, and manage
//! them. Every check is printed step by step; a failed one exits 1.

use super::{
    as_id, connect, describe, join_words, not_resolved, pick, verdict, warnings, CmdResult, Ctx, Failure, Global,
};
use berth::client::{ClientError, RepoQuery};
use berth::output::{
    attention_note, branches, check_detail, clean, history_table, repository_detail, repository_rows, step_table,
    stored_branch_rows,
};
use berth_core::Code;
use berth_proto::{ApiError, Id, RemoteBranchesRequest, Repository, RepositoryCreate, RepositoryUpdate};
use clap::{Args, Subcommand};

#[derive(Debug, Clone, Subcommand)]
pub enum RepoCmd {
    /// List a remote's branches through a stored credential, the default branch marked (the web
    /// UI's Refresh).
    #[command(alias = "refresh")]
    Branches {
        /// The clone URL; a pasted `git clone <url>` command works too.
        #[arg(required = true, num_args = 1.., value_name = "CLONE_URL")]
        url: Vec<String>,
        /// Credential id or name [default: the credential template whose URL prefix covers the URL].
        #[arg(long)]
        credential: Option<String>,
        /// No credential: anonymous access, for a public repository (no template is asked).
        #[arg(long, conflicts_with = "credential")]
        anonymous: bool,
    },
    /// Check a repository with a credential and register it.
    #[command(alias = "add")]
    Register(RegisterArgs),
    /// List registered repositories by name, page after page as they arrive (all of them
    /// unless --limit).
    #[command(alias = "ls")]
    List(ListArgs),
    /// Show a repository and its last check, step by step.
    Show {
        /// Id or name.
        repo: String,
    },
    /// Check a repository again, step by step.
    Check {
        /// Id or name.
        repo: String,
    },
    /// Show a repository's check history, newest first (scheduled and asked-for checks).
    History {
        /// Id or name.
        repo: String,
        /// At most this many checks.
        #[arg(long, default_value_t = 20, conflicts_with = "check")]
        limit: i64,
        /// Show this one check in full, step by step (its id is in the history's ID column).
        #[arg(long, value_name = "ID")]
        check: Option<Id>,
    },
    /// Show the branches Berth keeps for a registered repository, by name (written by its last
    /// check or the host's last push; `branches` asks the remote instead).
    #[command(name = "stored-branches")]
    StoredBranches {
        /// Id or name.
        repo: String,
        /// At most this many branches [default: all].
        #[arg(long)]
        limit: Option<i64>,
    },
    /// Register the repository's webhook on the host, so pushes update its branch list at once;
    /// `--remove` takes it off the host and out of Berth.
    Webhook {
        /// Id or name.
        repo: String,
        #[arg(long)]
        remove: bool,
    },
    /// Check every repository now, in the background (results appear in each history).
    CheckAll,
    /// Change a repository; a new URL, credential or branch is checked first.
    Update(RepoUpdateArgs),
    /// List a Bitbucket Cloud workspace, Data Center project or GitHub organisation or user,
    /// and register the chosen repositories (each checked as `register` does).
    Import(super::import::ImportArgs),
    /// Delete a registration.
    #[command(alias = "remove", alias = "delete")]
    Rm {
        /// Id or name.
        repo: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct RegisterArgs {
    #[arg(long)]
    pub name: String,
    /// The clone URL; a pasted `git clone <url>` command works too.
    #[arg(long, required = true, num_args = 1.., value_name = "CLONE_URL")]
    pub url: Vec<String>,
    /// Credential id or name [default: the credential template whose URL prefix covers the URL;
    /// `berth template match URL` shows which].
    #[arg(long)]
    pub credential: Option<String>,
    /// No credential: anonymous access, for a public repository (no template is asked; the
    /// host's REST API is not asked, to stay within its anonymous rate limit).
    #[arg(long, conflicts_with = "credential")]
    pub anonymous: bool,
    /// Defaults to the remote's default branch.
    #[arg(long)]
    pub default_branch: Option<String>,
    #[arg(long, default_value = "git")]
    pub vcs: String,
    /// Also register a webhook on the host (Bitbucket Cloud, Data Center, GitHub), so pushes
    /// update the branch list at once; nothing is registered when the host refuses it.
    #[arg(long)]
    pub webhook: bool,
}

#[derive(Debug, Clone, Args)]
pub struct RepoUpdateArgs {
    /// Id or name.
    pub repo: String,
    #[arg(long)]
    pub name: Option<String>,
    /// A new clone URL.
    #[arg(long, num_args = 1.., value_name = "CLONE_URL")]
    pub url: Option<Vec<String>>,
    /// Credential id or name.
    #[arg(long)]
    pub credential: Option<String>,
    /// Drop the credential: check it anonymously from now on (a public repository).
    #[arg(long, conflicts_with = "credential")]
    pub anonymous: bool,
    #[arg(long)]
    pub default_branch: Option<String>,
}

impl RepoUpdateArgs {
    pub fn to_update(&self) -> RepositoryUpdate {
        RepositoryUpdate {
            name: self.name.clone(),
            clone_url: self.url.as_deref().map(join_words),
            credential: self.credential.clone().map(Into::into),
            anonymous: self.anonymous,
            default_branch: self.default_branch.clone(),
        }
    }
}

/// The filters of `berth repo list`: those of `GET /api/v1/repositories`.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Only repositories whose name or clone URL contains this (case-insensitive).
    #[arg(long = "search", visible_alias = "q", value_name = "TEXT")]
    pub search: Option<String>,
    /// Only repositories with this status: ok, warn, fail, paused or unchecked (repeat for any
    /// of several).
    #[arg(long, value_name = "STATUS")]
    pub status: Vec<String>,
    /// Only repositories that use this credential (id or name).
    #[arg(long)]
    pub credential: Option<String>,
    /// Only repositories of this provider (bitbucket-cloud, github, generic, ...).
    #[arg(long)]
    pub provider: Option<String>,
    /// Only repositories on this host (host:port when it has a port).
    #[arg(long)]
    pub host: Option<String>,
    /// Show at most this many.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
}

pub async fn run(global: &Global, cmd: RepoCmd) -> CmdResult {
    if let RepoCmd::Update(u) = &cmd {
        let req = u.to_update();
        if req.name.is_none()
            && req.clone_url.is_none()
            && req.credential.is_none()
            && !req.anonymous
            && req.default_branch.is_none()
        {
            return Err(Failure::Usage(
                "nothing to update: give --name, --url, --credential, --anonymous or --default-branch".to_owned(),
            ));
        }
    }
    let ctx = connect(global, true)?;
    match cmd {
        RepoCmd::Branches { url, credential, anonymous } => {
            let req = RemoteBranchesRequest {
                clone_url: join_words(&url),
                credential: credential.map(Into::into),
                anonymous,
            };
            let b = ctx.client.remote_branches(&req).await?;
            ctx.emit(&b, || {
                let w = warnings(&b.checks);
                if w.is_empty() {
                    branches(&b)
                } else {
                    format!("{}\n{w}", branches(&b))
                }
            });
            Ok(())
        }
        RepoCmd::Register(a) => {
            let req = RepositoryCreate {
                name: a.name,
                vcs: a.vcs,
                clone_url: join_words(&a.url),
                credential: a.credential.map(Into::into),
                anonymous: a.anonymous,
                default_branch: a.default_branch,
                webhook: a.webhook,
            };
            let r = ctx.client.create_repository(&req).await?;
            ctx.emit(&r, || {
                format!(
                    "{}Registered {} ({}), default branch {}, credential {}.\n",
                    checks_of(&r),
                    describe(r.id, Some(&r.name)),
                    clean(&r.clone_url),
                    clean(&r.default_branch),
                    clean(berth::output::credential_name(&r))
                )
            });
            Ok(())
        }
        RepoCmd::Import(a) => super::import::run(&ctx, a).await,
        RepoCmd::List(a) => {
            let max = a.limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX));
            let filtered = a.search.is_some()
                || !a.status.is_empty()
                || a.credential.is_some()
                || a.provider.is_some()
                || a.host.is_some();
            let query = RepoQuery {
                // Pages no larger than what is shown: `--limit 5` asks for five.
                limit: max.map(|m| i64::try_from(m.min(1000)).unwrap_or(1000)),
                q: a.search,
                statuses: a.status,
                credential: a.credential,
                provider: a.provider,
                host: a.host,
            };
            let mut flagged = 0;
            let empty = if filtered {
                "No repository matches.\n"
            } else {
                "No repositories. Register one with `berth repo register`.\n"
            };
            let pages = ctx.client.repositories(&query);
            ctx.stream(
                pages,
                max,
                |page, first| {
                    flagged += page.iter().filter(|r| !r.warnings.is_empty()).count();
                    repository_rows(page, first)
                },
                empty,
            )
            .await?;
            if !ctx.json {
                outp!("{}", attention_note(flagged));
            }
            Ok(())
        }
        RepoCmd::Show { repo } => {
            // The list a name is looked up in carries no steps; the repository's own answer does.
            let (id, _) = resolve_id(&ctx, &repo).await?;
            let mut r = ctx.client.get_repository(id).await?;
            if r.last_check.as_ref().is_some_and(|c| c.checks.is_empty()) {
                // A server that leaves the steps out of its show answer still has them in the history.
                r.last_check = ctx.client.check_history(id, 1).await?.into_iter().next().or(r.last_check);
            }
            ctx.emit(&r, || repository_detail(&r));
            Ok(())
        }
        RepoCmd::Check { repo } => {
            let (id, name) = resolve_id(&ctx, &repo).await?;
            let check = ctx.client.check_repository(id).await?;
            ctx.emit(&check, || {
                let verdict = match check.first_failure() {
                    None => format!("Check passed for repository {}.\n", describe(id, name.as_deref())),
                    Some(s) => format!(
                        "Check failed for repository {}: {} at step {:?}.\n",
                        describe(id, name.as_deref()),
                        s.code,
                        s.step.title()
                    ),
                };
                format!("{}\n{verdict}", step_table(&check.checks))
            });
            verdict(check.ok)
        }
        RepoCmd::History { repo, limit, check: None } => {
            let (id, _) = resolve_id(&ctx, &repo).await?;
            let list = ctx.client.check_history(id, limit.clamp(1, 1000)).await?;
            ctx.emit(&list, || history_table(&list));
            Ok(())
        }
        RepoCmd::History { repo, check: Some(check_id), .. } => {
            let (id, name) = resolve_id(&ctx, &repo).await?;
            // The history is paged by check id, newest first: the first check older than
            // `check_id + 1` is that check, when it is this repository's.
            let found = match check_id.checked_add(1) {
                Some(before) => ctx.client.check_history_before(id, Some(before), 1).await?,
                None => Vec::new(),
            };
            let Some(c) = found.into_iter().find(|c| c.id == check_id) else {
                return Err(Failure::Client(ClientError::Api {
                    status: 404,
                    body: ApiError {
                        code: Code::NotFound,
                        message: format!(
                            "repository {} has no check with id {check_id}",
                            describe(id, name.as_deref())
                        ),
                        remedy: format!("run `berth repo history {}` to see its checks' ids", clean(&repo)),
                        checks: Vec::new(),
                    },
                }));
            };
            ctx.emit(&c, || check_detail(&c));
            Ok(())
        }
        RepoCmd::StoredBranches { repo, limit } => {
            let (id, name) = resolve_id(&ctx, &repo).await?;
            let max = limit.map(|l| usize::try_from(l.max(0)).unwrap_or(usize::MAX));
            let pages = ctx.client.branches(id, limit.map(|l| l.clamp(1, 1000)));
            let empty = format!(
                "No branches stored for {} yet: its next check writes them (`berth repo check {}`).\n",
                describe(id, name.as_deref()),
                clean(&repo)
            );
            ctx.stream(pages, max, stored_branch_rows, &empty).await?;
            Ok(())
        }
        RepoCmd::Webhook { repo, remove: false } => {
            let (id, name) = resolve_id(&ctx, &repo).await?;
            let hook = ctx.client.register_webhook(id).await?;
            ctx.emit(&hook, || {
                format!(
                    "Registered a webhook for {} on the host (its id there: {}); pushes are delivered to {}.\n",
                    describe(id, name.as_deref()),
                    clean(&hook.hook_id),
                    clean(&hook.url)
                )
            });
            Ok(())
        }
        RepoCmd::Webhook { repo, remove: true } => {
            let (id, name) = resolve_id(&ctx, &repo).await?;
            ctx.client.delete_webhook(id).await?;
            if ctx.json {
                outln!("{}", berth::output::json(&serde_json::json!({ "webhook_removed": id })));
            } else {
                outln!("Removed the webhook of {} from the host and from Berth.", describe(id, name.as_deref()));
            }
            Ok(())
        }
        RepoCmd::CheckAll => {
            let s = ctx.client.schedule_all_checks().await?;
            ctx.emit(&s, || {
                format!(
                    "{} will be checked in the background; see `berth repo list` or `berth repo history <name>`.\n",
                    berth_core::words::counted(i64::try_from(s.scheduled).unwrap_or(i64::MAX), "repository")
                )
            });
            Ok(())
        }
        RepoCmd::Update(u) => {
            let req = u.to_update();
            let rechecked = req.clone_url.is_some() || req.credential.is_some() || req.default_branch.is_some();
            let (id, _) = resolve_id(&ctx, &u.repo).await?;
            let r = ctx.client.update_repository(id, &req).await?;
            ctx.emit(&r, || {
                format!(
                    "{}Updated repository {}.\n",
                    if rechecked { checks_of(&r) } else { String::new() },
                    describe(r.id, Some(&r.name))
                )
            });
            Ok(())
        }
        RepoCmd::Rm { repo } => {
            let (id, name) = resolve_id(&ctx, &repo).await?;
            ctx.client.delete_repository(id).await?;
            if ctx.json {
                outln!("{}", berth::output::json(&serde_json::json!({ "deleted": id })));
            } else {
                outln!("Deleted repository {}.", describe(id, name.as_deref()));
            }
            Ok(())
        }
    }
}

/// The step table of the check a registration or update ran, followed by a blank line.
fn checks_of(r: &Repository) -> String {
    match &r.last_check {
        Some(c) if !c.checks.is_empty() => format!("{}\n", step_table(&c.checks)),
        _ => String::new(),
    }
}

async fn resolve(ctx: &Ctx, key: &str) -> Result<Repository, Failure> {
    // The name is a substring of itself: the server narrows the list, the pick is exact.
    let query = RepoQuery { q: Some(key.trim().to_owned()), ..RepoQuery::default() };
    let list = ctx.client.repositories(&query).all().await?;
    match pick(&list, key, |r| r.id, |r| r.name.as_str()) {
        Ok(r) => Ok(r.clone()),
        Err(m) => {
            let m: Vec<(Id, String)> = m.iter().map(|r| (r.id, r.name.clone())).collect();
            Err(not_resolved("repository", key, &m, Code::RepositoryNotFound, "berth repo list"))
        }
    }
}

async fn resolve_id(ctx: &Ctx, key: &str) -> Result<(Id, Option<String>), Failure> {
    if let Some(id) = as_id(key) {
        return Ok((id, None));
    }
    resolve(ctx, key).await.map(|r| (r.id, Some(r.name)))
}
