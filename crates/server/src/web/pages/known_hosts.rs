//! Admin > Known hosts: the SSH host keys Berth trusts (pinned and stored), trusting one (by
//! its public key, or by the fingerprint of the key the host presents) and removing one. The
//! "Trust this key" link of a `host_key_unknown` step opens this page with the host and the
//! fingerprint filled in, so the administrator compares and confirms it here, deliberately.

use super::{enc, fail, layout, ok, see_other, Q};
use crate::error::ApiError;
use crate::service::known_hosts;
use crate::state::AppState;
use crate::web::views::{KnownHostView, KnownHostsPage, Problem};
use crate::web::{Posted, WebResult, WebUser};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use berth_proto::KnownHostAdd;

pub async fn known_hosts_page(State(st): State<AppState>, wu: WebUser, q: Q) -> WebResult {
    let keys = known_hosts::list(&st, &wu.cu).await.map_err(fail(&wu))?;
    let q = q.0;
    let problem = q.get("error").map(|m| Problem { message: m.clone(), ..Problem::default() });
    let mut l = layout(&wu, "Known hosts", "known_hosts");
    if let Some(host) = q.get("trusted") {
        let fp = q.get("fingerprint").cloned().unwrap_or_default();
        l = super::flash(l, "ok", format!("Trusted the key {fp} for {host}. Check the repository again to use it."));
    } else if let Some(host) = q.get("already") {
        l = super::flash(l, "info", format!("That key was trusted already for {host}."));
    } else if let Some(host) = q.get("removed") {
        l = super::flash(l, "ok", format!("Removed a key of {host}; Berth no longer connects to it with that key."));
    }
    // After trusting, the form is empty again; before, it holds what the step's link offered.
    let offer = |k: &str| {
        if q.contains_key("trusted") || q.contains_key("already") {
            String::new()
        } else {
            q.get(k).cloned().unwrap_or_default()
        }
    };
    ok(&KnownHostsPage {
        l,
        keys: keys
            .into_iter()
            .map(|k| KnownHostView {
                id: k.id.unwrap_or(0),
                host: k.host,
                key_type: k.key_type,
                fingerprint: k.fingerprint,
                source: match (k.pinned, k.added_by) {
                    (true, _) => "pinned in Berth from the host's published keys".to_owned(),
                    (false, Some(by)) => format!(
                        "trusted by {by}{}",
                        k.created_at.map(|t| format!(" on {}", t.format("%Y-%m-%d"))).unwrap_or_default()
                    ),
                    (false, None) => "trusted".to_owned(),
                },
                pinned: k.pinned,
            })
            .collect(),
        offered_host: offer("host"),
        offered_fingerprint: offer("fingerprint"),
        problem,
    })
}

/// Trust a key: the public key pasted, or the fingerprint of the key the host presents.
pub async fn known_host_add(State(st): State<AppState>, p: Posted) -> WebResult {
    let f = &p.form;
    let req = KnownHostAdd { host: f.get("host"), key: f.opt("key"), fingerprint: f.opt("fingerprint") };
    match known_hosts::add(&st, &p.user.cu, req).await {
        Ok((k, created)) => {
            let which = if created { "trusted" } else { "already" };
            Ok(see_other(&format!("/admin/known-hosts?{which}={}&fingerprint={}", enc(&k.host), enc(&k.fingerprint))))
        }
        Err(e) => {
            let e = ApiError::from(e);
            if e.status == StatusCode::FORBIDDEN {
                return Err(fail(&p.user)(e));
            }
            let why = format!("{}. {} ({})", e.message, e.remedy, e.code);
            // The host and fingerprint go back into the form, so a typo is fixed, not retyped.
            Ok(see_other(&format!(
                "/admin/known-hosts?error={}&host={}&fingerprint={}#trust_form",
                enc(&why),
                enc(&f.get("host")),
                enc(&f.get("fingerprint"))
            )))
        }
    }
}

pub async fn known_host_delete(State(st): State<AppState>, Path(id): Path<i64>, p: Posted) -> WebResult {
    let k = known_hosts::delete(&st, &p.user.cu, id).await.map_err(fail(&p.user))?;
    Ok(see_other(&format!("/admin/known-hosts?removed={}", enc(&k.host))))
}
