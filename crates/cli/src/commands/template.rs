//! `berth template …`: credential templates, the URL prefixes that choose a credential when a
//! registration or Refresh names none, and `match`, which says which one a URL would use.

use super::{as_id, connect, not_resolved, CmdResult, Ctx, Failure, Global};
use berth::output::{clean, template_match, template_table};
use berth_core::Code;
use berth_proto::{CredentialTemplate, Id, TemplateCreate};
use clap::Subcommand;

#[derive(Debug, Clone, Subcommand)]
pub enum TemplateCmd {
    /// Use a credential for every clone URL under a URL prefix (matched on whole path segments).
    Add {
        /// The URL prefix, such as https://bitbucket.org/acme/ (SSH forms work too).
        prefix: String,
        /// Credential id or name.
        #[arg(long)]
        credential: String,
    },
    /// List the templates, longest prefix first (the order they are tried in).
    #[command(alias = "ls")]
    List,
    /// Delete a template.
    #[command(alias = "remove", alias = "delete")]
    Rm {
        /// Its id or its URL prefix.
        template: String,
    },
    /// Which credential a clone URL would use, and why each template was or was not chosen.
    Match {
        /// The clone URL; a pasted `git clone <url>` command works too.
        #[arg(required = true, num_args = 1.., value_name = "CLONE_URL")]
        url: Vec<String>,
    },
}

pub async fn run(global: &Global, cmd: TemplateCmd) -> CmdResult {
    let ctx = connect(global, true)?;
    match cmd {
        TemplateCmd::Add { prefix, credential } => {
            let req = TemplateCreate { url_prefix: prefix, credential: credential.into() };
            let t = ctx.client.create_template(&req).await?;
            ctx.emit(&t, || {
                format!(
                    "Added template {} (id {}): clone URLs under it use credential {}.\n",
                    clean(&t.url_prefix),
                    t.id,
                    clean(&t.credential.name)
                )
            });
            Ok(())
        }
        TemplateCmd::List => {
            let list = ctx.client.list_templates().await?;
            ctx.emit(&list, || template_table(&list));
            Ok(())
        }
        TemplateCmd::Rm { template } => {
            let id = resolve(&ctx, &template).await?;
            let t = ctx.client.delete_template(id).await?;
            ctx.emit(&t, || format!("Deleted template {} (id {}).\n", clean(&t.url_prefix), t.id));
            Ok(())
        }
        TemplateCmd::Match { url } => {
            let m = ctx.client.match_template(&super::join_words(&url)).await?;
            ctx.emit(&m, || template_match(&m));
            Ok(())
        }
    }
}

/// A template by id, or by its URL prefix as written or normalised (a trailing '/' and the
/// case of the host do not matter).
async fn resolve(ctx: &Ctx, key: &str) -> Result<Id, Failure> {
    let list = ctx.client.list_templates().await?;
    if let Some(id) = as_id(key).filter(|id| list.iter().any(|t| t.id == *id)) {
        return Ok(id);
    }
    let norm = |s: &str| s.trim().trim_end_matches('/').to_ascii_lowercase();
    let found: Vec<&CredentialTemplate> = list.iter().filter(|t| norm(&t.url_prefix) == norm(key)).collect();
    match found.as_slice() {
        [t] => Ok(t.id),
        _ => Err(not_resolved("template", key, &[], Code::TemplateNotFound, "berth template list")),
    }
}
