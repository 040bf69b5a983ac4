//! Credentials as `berth credential` prints them: the table, one credential's details, its
//! verification and its warnings.

use super::*;

/// A credential's expiry as a table shows it: the date, with a word when it matters.
pub fn expiry(c: &Credential) -> String {
    match (c.expires_on, c.expiry_status.as_str(), c.days_until_expiry) {
        (None, _, _) => "-".to_owned(),
        (Some(d), "expired", _) => format!("{d} (expired)"),
        (Some(d), "expires_soon", Some(1)) => format!("{d} (tomorrow)"),
        (Some(d), "expires_soon", Some(0)) => format!("{d} (today)"),
        (Some(d), "expires_soon", Some(n)) => format!("{d} (in {n} days)"),
        (Some(d), _, _) => d.to_string(),
    }
}

fn used_by(c: &Credential) -> String {
    let names = c.used_by.iter().map(|r| r.name.clone()).collect::<Vec<_>>().join(", ");
    let more = c.used_by_count - i64::try_from(c.used_by.len()).unwrap_or(0);
    if more > 0 {
        format!("{names} and {more} more")
    } else {
        names
    }
}

pub fn credential_table(list: &[Credential]) -> String {
    if list.is_empty() {
        return "No credentials. Add one with `berth credential add`.\n".to_owned();
    }
    let mut t = Table::new(&["ID", "NAME", "KIND", "USERNAME", "EMAIL", "EXPIRES", "VERIFIED", "USED BY"]);
    for c in list {
        t.row([
            c.id.to_string(),
            c.name.clone(),
            c.kind.as_str().to_owned(),
            or_dash(c.username.as_deref()),
            or_dash(c.email.as_deref()),
            expiry(c),
            verified_badge(&c.verification),
            or_dash(Some(&used_by(c))),
        ]);
    }
    t.render()
}

pub fn credential_detail(c: &Credential) -> String {
    let mut pairs = vec![
        ("ID", c.id.to_string()),
        ("Name", c.name.clone()),
        ("Kind", format!("{} ({})", c.kind_label, c.kind.as_str())),
        ("Username", c.username.clone().unwrap_or_default()),
        ("Email", c.email.clone().unwrap_or_default()),
        ("Expires", if c.expires_on.is_some() { expiry(c) } else { format!("not recorded ({})", c.expiry_status) }),
        ("Scopes", c.scopes.join(", ")),
    ];
    if !c.missing_scopes.is_empty() {
        pairs.push(("Missing scopes", c.missing_scopes.join(", ")));
    }
    if let Some(app) = &c.app_id {
        let installation = c.installation_id.map_or_else(|| "per owner".to_owned(), |i| i.to_string());
        pairs.push(("GitHub App", format!("app {app}, installation {installation}")));
    }
    if let Some(cert) = &c.client_certificate {
        pairs.push(("Client cert", format!("{} (until {})", cert.subject, cert.expires_at.format("%Y-%m-%d"))));
    }
    let v = &c.verification;
    pairs.push(("Host", c.host.clone().unwrap_or_default()));
    pairs.push(("Verified", format!("{}: {}", verified_badge(v), v.message)));
    if let Some(who) = v.identity.as_ref().map(HostIdentity::describe) {
        pairs.push(("Host says", who));
    }
    if let Some(g) = &v.granted_scopes {
        pairs.push(("Granted scopes", g.join(", ")));
    }
    for (label, need) in [("Scopes needed", ScopeNeed::Needed), ("Scopes wanted", ScopeNeed::Wanted)] {
        let gaps: Vec<&str> = c.scope_gaps.iter().filter(|g| g.need == need).map(|g| g.scope.as_str()).collect();
        if !gaps.is_empty() {
            pairs.push((label, format!("missing {}", gaps.join(", "))));
        }
    }
    pairs.extend([
        ("Used by", c.used_by.iter().map(|r| format!("{} (id {})", r.name, r.id)).collect::<Vec<_>>().join(", ")),
        ("Secret set", time(&c.secret_updated_at)),
        ("Created", time(&c.created_at)),
        ("Updated", time(&c.updated_at)),
    ]);
    fields(&pairs)
}

/// "ok 2026-12-02", "fail 2026-12-02", "unverified".
pub fn verified_badge(v: &Verification) -> String {
    match v.checked_at {
        Some(at) => format!("{} {}", v.status.as_str(), at.format("%Y-%m-%d")),
        None => v.status.as_str().to_owned(),
    }
}

/// A verification as a terminal shows it after `add`, `update` and `verify`: the steps that
/// ran, then one verdict line (and its remedy).
pub fn verification_report(c: &Credential) -> String {
    let v = &c.verification;
    let mut out = String::new();
    if !v.steps.is_empty() {
        out.push_str(&step_table(&v.steps));
    }
    let on = v.host.as_deref().map(|h| format!(" on {h}")).unwrap_or_default();
    let line = match v.status {
        VerificationStatus::Ok => format!("verified{on}: {}", v.message),
        VerificationStatus::Warn => format!("verified{on}, with a warning: {}", v.message),
        VerificationStatus::Fail => format!("verification FAILED{on}: {}", v.message),
        // The message says why it was not verified.
        VerificationStatus::Unverified => v.message.clone(),
    };
    out.push_str(&format!("Credential {:?}: {}\n", clean(&c.name), clean(&line)));
    if !v.remedy.is_empty() {
        out.push_str(&format!("  → {}\n", clean(&v.remedy)));
    }
    out
}

/// Warnings worth a line after a credential is shown or saved.
pub fn credential_warnings(c: &Credential) -> String {
    let mut out = String::new();
    match c.expiry_status.as_str() {
        "expired" => out.push_str(&format!("warning: credential {:?} has expired: {}\n", clean(&c.name), expiry(c))),
        "expires_soon" => {
            out.push_str(&format!("warning: credential {:?} expires soon: {}\n", clean(&c.name), expiry(c)))
        }
        _ => {}
    }
    if let Some(at) = &c.checks_paused_at {
        out.push_str(&format!(
            "warning: background checks with credential {:?} are paused since {} after {} authentication failures\n  → replace the token (berth credential update {} --secret-stdin) or edit the credential to resume them\n",
            clean(&c.name),
            time(at),
            c.auth_failures,
            c.id
        ));
    }
    // A verification speaks for the token itself; the recorded scopes only until there is one.
    if !c.missing_scopes.is_empty() && c.verification.status == VerificationStatus::Unverified {
        out.push_str(&format!(
            "warning: the token lacks scopes Berth needs: {}\n  → give the token these scopes, then record them: berth credential update {} --scope …\n",
            clean(&c.missing_scopes.join(", ")),
            c.id
        ));
    }
    out
}
