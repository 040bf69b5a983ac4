//! `berth apply` and `berth export`: configuration as code. The YAML file names credentials
//! (with where their secrets come from), templates and repositories; `apply` reads each secret
//! from its reference here, on the machine that runs the command, and sends it in the request
//! body (never argv or a URL). The server plans and applies the change set in one audited unit.

use super::{connect, verdict, CmdResult, Exit, Failure, Global};
use berth::output::config_plan;
use berth_proto::{ConfigApply, ConfigDocument, SecretRef};
use clap::Args;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    /// The YAML file (`-` reads standard input).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also delete the credentials, templates and repositories the file does not name.
    #[arg(long)]
    pub prune: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Write to this file instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

fn config_error(message: impl Into<String>, remedy: impl Into<String>) -> Failure {
    Failure::local("invalid_config", Exit::Usage, message, remedy)
}

const FORMAT_HELP: &str = "see \"Configuration as code\" in the README for the file's format";

/// Reads and checks the document: unknown keys and inline secrets are refused with their line.
pub fn parse_document(text: &str, shown: &str) -> Result<ConfigDocument, Failure> {
    if text.trim().is_empty() {
        return Err(config_error(format!("{shown} is empty"), FORMAT_HELP));
    }
    serde_yaml_ng::from_str(text).map_err(|e| config_error(format!("{shown}: {e}"), FORMAT_HELP))
}

/// Reads every credential's secret from its reference. A `file` path is read relative to the
/// document's directory. The final line break of a file is not part of the secret.
fn read_secrets(doc: &ConfigDocument, base: &Path) -> Result<BTreeMap<String, String>, Failure> {
    let mut out = BTreeMap::new();
    for c in &doc.credentials {
        let secret = match &c.secret {
            SecretRef::Env(name) => std::env::var(name).map_err(|_| {
                config_error(
                    format!("credential {:?}: the environment variable {name} is not set", c.name),
                    format!("export {name} with the secret before running berth apply"),
                )
            })?,
            SecretRef::File(path) => {
                let p = base.join(path);
                let text = std::fs::read_to_string(&p).map_err(|e| {
                    config_error(
                        format!("credential {:?}: cannot read the secret file {}: {e}", c.name, p.display()),
                        "check the path (relative paths start at the YAML file's directory)",
                    )
                })?;
                let t = text.strip_suffix('\n').unwrap_or(&text);
                t.strip_suffix('\r').unwrap_or(t).to_owned()
            }
        };
        if secret.is_empty() {
            return Err(config_error(
                format!("credential {:?}: its secret ({}) is empty", c.name, c.secret.describe()),
                "put the secret there",
            ));
        }
        out.insert(c.name.clone(), secret);
    }
    Ok(out)
}

pub async fn apply(global: &Global, a: ApplyArgs) -> CmdResult {
    let (text, shown, base) = if a.file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| config_error(format!("cannot read standard input: {e}"), ""))?;
        (s, "standard input".to_owned(), PathBuf::from("."))
    } else {
        let s = std::fs::read_to_string(&a.file).map_err(|e| {
            config_error(format!("cannot read {}: {e}", a.file.display()), "give the path of a berth YAML file")
        })?;
        let base = a.file.parent().map(Path::to_path_buf).unwrap_or_default();
        (s, a.file.display().to_string(), base)
    };
    let document = parse_document(&text, &shown)?;
    let secrets = read_secrets(&document, &base)?;
    let ctx = connect(global, true)?;
    let req = ConfigApply { document, secrets, dry_run: a.dry_run, prune: a.prune };
    let plan = ctx.client.apply_config(&req).await?;
    ctx.emit(&plan, || config_plan(&plan));
    verdict(plan.failed == 0)
}

pub async fn export(global: &Global, a: ExportArgs) -> CmdResult {
    let ctx = connect(global, true)?;
    let doc = ctx.client.export_config().await?;
    let yaml = serde_yaml_ng::to_string(&doc).map_err(|e| config_error(format!("cannot write YAML: {e}"), ""))?;
    let header = "# Written by `berth export`. Secrets are references: set each variable before `berth apply -f`.\n";
    match a.output {
        Some(path) => {
            std::fs::write(&path, format!("{header}{yaml}"))
                .map_err(|e| config_error(format!("cannot write {}: {e}", path.display()), ""))?;
            if !ctx.json {
                outln!(
                    "Wrote {} ({} credentials, {} templates, {} repositories).",
                    path.display(),
                    doc.credentials.len(),
                    doc.templates.len(),
                    doc.repositories.len()
                );
            } else {
                outln!("{}", berth::output::json(&doc));
            }
        }
        None => ctx.emit(&doc, || format!("{header}{yaml}")),
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn message(r: Result<ConfigDocument, Failure>) -> String {
        match r {
            Err(Failure::Local(e)) => e.message,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn a_document_reads_and_bad_ones_name_the_line() {
        let doc = parse_document(
            "credentials:\n  - name: ci\n    kind: access_token\n    secret: {env: CI_TOKEN}\ntemplates:\n  - url_prefix: https://h/acme/\n    credential: ci\n",
            "f",
        )
        .unwrap();
        assert_eq!(doc.credentials[0].secret, SecretRef::Env("CI_TOKEN".into()));
        assert_eq!(doc.templates[0].credential, "ci");
        // Written back as the same one-key maps, and read again unchanged.
        let yaml = serde_yaml_ng::to_string(&doc).unwrap();
        assert!(yaml.contains("env: CI_TOKEN"), "{yaml}");
        assert_eq!(parse_document(&yaml, "again").unwrap(), doc);

        let unknown = message(parse_document("credentials: []\nrepos: []\n", "berth.yaml"));
        assert!(unknown.contains("unknown field `repos`") && unknown.contains("line 2"), "{unknown}");
        let inline = message(parse_document(
            "credentials:\n  - name: ci\n    kind: access_token\n    secret: hunter2-inline\n",
            "f",
        ));
        assert!(inline.contains("never written inline") && inline.contains("line 4"), "{inline}");
        assert!(!inline.contains("hunter2-inline"), "{inline}");
        let nested = message(parse_document(
            "repositories:\n  - name: a\n    clone_url: https://h/a.git\n    branch: main\n",
            "f",
        ));
        assert!(nested.contains("unknown field `branch`") && nested.contains("line 4"), "{nested}");
        assert!(message(parse_document("  \n", "f")).contains("empty"));
    }
}
