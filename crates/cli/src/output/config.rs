//! Credential templates and a configuration plan (`berth template`, `berth apply`).

use super::*;

pub fn template_table(list: &[CredentialTemplate]) -> String {
    if list.is_empty() {
        return "No credential templates. Add one with `berth template add PREFIX --credential NAME`.\n".to_owned();
    }
    let mut t = Table::new(&["ID", "URL PREFIX", "CREDENTIAL", "CREATED BY"]);
    for x in list {
        t.row([x.id.to_string(), clean(&x.url_prefix), clean(&x.credential.name), clean(&x.created_by)]);
    }
    t.render()
}

/// The choice first, then every template compared with why.
pub fn template_match(m: &TemplateMatch) -> String {
    let mut out = format!("{}\n{}\n", clean(&m.clone_url), clean(&m.reason));
    if !m.candidates.is_empty() {
        let mut t = Table::new(&["", "URL PREFIX", "CREDENTIAL", "WHY"]);
        for c in &m.candidates {
            let mark = if c.chosen { "*" } else { "" };
            t.row([mark.to_owned(), clean(&c.template.url_prefix), clean(&c.template.credential.name), clean(&c.why)]);
        }
        out.push('\n');
        out.push_str(&t.render());
    }
    out
}

/// A configuration plan or result: one line per change, then the counts.
pub fn config_plan(p: &ConfigPlan) -> String {
    let mut out = String::new();
    for c in &p.changes {
        let fields = if c.fields.is_empty() { String::new() } else { format!(" ({})", clean(&c.fields.join(", "))) };
        let sign = match c.action.as_str() {
            "create" => "+",
            "delete" => "-",
            _ => "~",
        };
        let status = if p.dry_run && c.status == "planned" { String::new() } else { format!(": {}", c.status) };
        out.push_str(&format!("{sign} {} {} {}{fields}{status}\n", c.action, c.kind, clean(&c.name)));
        if let Some(e) = &c.error {
            out.push_str(&format!("    error[{}]: {}\n", e.code, clean(&e.message)));
            if !e.remedy.is_empty() {
                out.push_str(&format!("    remedy: {}\n", clean(&e.remedy)));
            }
        }
    }
    let (verb, count) =
        if p.dry_run { ("planned", p.changes.len()) } else { ("made", p.changes.len() - p.failed as usize) };
    out.push_str(&format!(
        "{count} change{} {verb}, {} failed, {} unchanged{}.\n",
        if count == 1 { "" } else { "s" },
        p.failed,
        p.unchanged,
        if p.dry_run { " (dry run: nothing was changed)" } else { "" }
    ));
    out
}
