//! Background checks through the API: the schedule, history, the authentication-failure pause,
//! expiry warnings, metrics and readiness. Times are short in these tests (a check every
//! second or so); waits poll the API with a generous deadline and never judge speed. The
//! metrics and readiness are read raw (they are plain-text and HTTP probes, not API calls);
//! after a shutdown the store is read directly, as no server is left to ask.

use crate::harness::*;
use crate::proxy::{FaultyProxy, Mode};
use berth_core::Code;
use berth_proto::{CredentialCreate, CredentialUpdate, StoredCheck};
use reqwest::StatusCode;
use std::time::Duration;

/// A server whose scheduler checks every repository about every `interval_secs`.
async fn fast_berth(interval_secs: f64) -> Berth {
    let toml = format!(
        "[checks]\ninterval_mins = {}\njitter_percent = 0\npoll_secs = 0.2\nlease_secs = 30\n",
        interval_secs / 60.0
    );
    Berth::start_with(Options { config_toml: Some(toml), ..Options::default() }).await
}

async fn history(b: &Berth, id: i64) -> Vec<StoredCheck> {
    let h = b.api.check_history(id, 1000).await.unwrap();
    assert_eq!(b.api.status(), 200);
    h
}

fn secret(s: &str) -> CredentialUpdate {
    CredentialUpdate { secret: Some(s.to_owned()), ..CredentialUpdate::default() }
}

async fn metrics(b: &Berth) -> String {
    let resp = b.http.get(format!("{}/metrics", b.base)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    answer_text("the metrics", resp).await
}

fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_checks_are_kept_as_history_and_counted() {
    let b = fast_berth(1.0).await;
    b.api_token_credential("ci").await;
    let id = b.register("app", "team/app.git", "ci").await;
    let h = eventually("two scheduled checks", || async {
        let h = history(&b, id).await;
        (h.iter().filter(|c| c.reason == "schedule").count() >= 2).then_some(h)
    })
    .await;
    // Newest first, each with its reason, status, instance and steps; registration last.
    assert_eq!(h.last().unwrap().reason, "register");
    let ids: Vec<i64> = h.iter().map(|c| c.id).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    for c in &h {
        // Plain HTTP to the test server: a warning, not a failure.
        assert_eq!(c.status, "warn", "{c:?}");
        assert!(!c.instance.is_empty());
        assert!(!c.checks.is_empty());
    }
    // Paging: older than the newest.
    let older = b.api.check_history_before(id, Some(ids[0]), 1).await.unwrap();
    assert_eq!(older[0].id, ids[1]);
    let repo = b.api.get_repository(id).await.unwrap();
    assert_eq!(repo.status, "warn");
    assert!(repo.next_check_at.is_some(), "{repo:?}");

    let m = metrics(&b).await;
    assert!(sample(&m, "berth_checks_total{reason=\"schedule\",status=\"warn\"}") >= 2.0, "{m}");
    assert_eq!(sample(&m, "berth_checks_total{reason=\"register\",status=\"warn\"}"), 1.0, "{m}");
    assert_eq!(sample(&m, "berth_repositories{status=\"warn\"}"), 1.0, "{m}");
    assert!(sample(&m, "berth_check_duration_seconds_count") >= 3.0);
    assert!(!m.contains("app") && !m.contains("\"ci\""), "metrics carry no names: {m}");
    let ready = b.http.get(format!("{}/readyz", b.base)).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_authentication_failures_pause_polling_until_the_credential_is_edited() {
    let b = fast_berth(0.5).await;
    let cred = b.api_token_credential("ci").await;
    let id = b.register("app", "team/app.git", "ci").await;
    // The token is revoked on the host side: the stored one no longer works.
    b.api.update_credential(cred, &secret(REVOKED_TOKEN)).await.unwrap();
    assert_eq!(b.api.status(), 200);
    let c = eventually("the credential's checks pause", || async {
        let c = b.api.get_credential(cred).await.unwrap();
        c.checks_paused_at.is_some().then_some(c)
    })
    .await;
    // The threshold is 3; a check already running when the third failed may add one.
    let failures = c.auth_failures;
    assert!((3..=4).contains(&failures), "{c:?}");
    let failed = history(&b, id).await.iter().filter(|c| c.status == "fail").count();
    assert_eq!(i64::try_from(failed).unwrap(), failures, "each failure is one check in the history");
    let repo = b.api.get_repository(id).await.unwrap();
    assert_eq!(repo.status, "paused", "{repo:?}");
    let warning = repo.warnings.iter().find(|w| w.code == Code::AuthFailed).unwrap();
    assert!(warning.message.contains("paused"), "{warning:?}");
    assert!(warning.message.contains("the limit is 3"), "the pause quotes the configured limit: {warning:?}");
    assert!(repo.next_check_at.is_none(), "a paused repository has no next check: {repo:?}");
    let m = metrics(&b).await;
    assert_eq!(sample(&m, "berth_credentials_checks_paused"), 1.0, "{m}");
    assert_eq!(sample(&m, "berth_repositories{status=\"paused\"}"), 1.0, "{m}");

    // While paused nothing polls: several intervals pass without a new check.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(history(&b, id).await.len(), failed + 1, "registration and the failures, nothing more");
    let audit = b.api.audit(None, None).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "credential.checks_paused"), "{audit:?}");

    // Editing the credential (the right token again) resumes the checks at once.
    b.api.update_credential(cred, &secret(TOKEN)).await.unwrap();
    assert_eq!(b.api.status(), 200);
    eventually("a passing scheduled check after the edit", || async {
        let h = history(&b, id).await;
        let passed = |c: &StoredCheck| c.status != "fail";
        // The token replacement re-checks at once, and the scheduler runs the due checks with
        // the reason that made them due.
        let by_scheduler = |c: &StoredCheck| c.reason == "schedule" || c.reason == "credential";
        (h.first().is_some_and(passed) && h.iter().any(|c| by_scheduler(c) && passed(c))).then_some(())
    })
    .await;
    let c = b.api.get_credential(cred).await.unwrap();
    assert!(c.checks_paused_at.is_none() && c.auth_failures == 0, "{c:?}");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_change_checks_its_repositories_at_once() {
    // A long interval: only the change can explain a new check.
    let b = fast_berth(3600.0).await;
    let cred = b.api_token_credential("ci").await;
    let id = b.register("app", "team/app.git", "ci").await;
    let lib = b.register("lib", "team/lib.git", "ci").await;
    let rename = CredentialUpdate { username: Some(Some("jo-bb".into())), ..CredentialUpdate::default() };
    b.api.update_credential(cred, &rename).await.unwrap();
    assert_eq!(b.api.status(), 200);
    // The scheduler runs them, and the history says why: the credential changed.
    for repo in [id, lib] {
        eventually("a check after the credential changed", || async {
            history(&b, repo).await.iter().any(|c| c.reason == "credential").then_some(())
        })
        .await;
    }
    // "Check all now" makes every repository due and the scheduler runs them, recorded as a
    // person's request (manual), not as the regular schedule.
    let before = history(&b, id).await.len();
    let v = b.api.schedule_all_checks().await.unwrap();
    assert_eq!((b.api.status(), v.scheduled), (200, 2));
    let h = eventually("checks after check-all", || async {
        let h = history(&b, id).await;
        (h.len() > before).then_some(h)
    })
    .await;
    assert_eq!(h[0].reason, "manual", "{:?}", h[0]);
    assert!(h.iter().all(|c| c.reason != "schedule"), "nothing ran on the regular schedule: {h:?}");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiring_credentials_warn_on_the_credential_its_repositories_and_metrics() {
    let b = fast_berth(3600.0).await;
    let today = chrono::Utc::now().date_naive();
    let soon = today + chrono::Duration::days(5);
    let req = CredentialCreate {
        scopes: Some(vec!["read:repository:bitbucket".into()]),
        expires_on: Some(soon),
        ..bitbucket_api_token("ci", TOKEN)
    };
    let v = b.api.create_credential(&req).await.unwrap();
    assert_eq!(b.api.status(), 201);
    let cred = v.id;
    let warning = v.expiry_warning.as_ref().unwrap();
    assert_eq!(warning.code, Code::TokenExpiresSoon, "{v:?}");
    assert!(warning.message.contains("expires in 5 days"), "{v:?}");
    let id = b.register("app", "team/app.git", "ci").await;
    let repo = b.api.get_repository(id).await.unwrap();
    assert_eq!(repo.warnings[0].code, Code::TokenExpiresSoon, "{repo:?}");
    let m = metrics(&b).await;
    assert_eq!(sample(&m, "berth_credentials_expiring{window=\"7d\"}"), 1.0, "{m}");
    assert_eq!(sample(&m, "berth_credentials_expiring{window=\"30d\"}"), 0.0, "{m}");

    let yesterday = today - chrono::Duration::days(1);
    let expired = CredentialUpdate { expires_on: Some(Some(yesterday)), ..CredentialUpdate::default() };
    b.api.update_credential(cred, &expired).await.unwrap();
    assert_eq!(b.api.status(), 200);
    let list = b.api.list_repositories().await.unwrap();
    assert_eq!(list[0].warnings[0].code, Code::TokenExpired, "{list:?}");
    assert!(list[0].warnings[0].message.contains("expired 1 day ago"));
    let m = metrics(&b).await;
    assert_eq!(sample(&m, "berth_credentials_expiring{window=\"expired\"}"), 1.0, "{m}");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_running_checks_and_keeps_their_results() {
    let toml =
        "[checks]\ninterval_mins = 600\npoll_secs = 0.2\nshutdown_grace_secs = 20\n\n[git]\nrequest_timeout_secs = 2\n";
    let b = Berth::start_with(Options { config_toml: Some(toml.to_owned()), ..Options::default() }).await;
    let proxy = FaultyProxy::start(&b.git.base_url()).await;
    b.api_token_credential("ci").await;
    let url = proxy.url("git/team/app.git");
    let id = b.api.create_repository(&new_repository("app", &url, "ci")).await.unwrap().id;
    assert_eq!(b.api.status(), 201);
    // The host now hangs: the next check runs until its request timeout.
    proxy.set(Mode::Stall);
    b.api.schedule_all_checks().await.unwrap();
    eventually("the check to start", || async {
        b.api.get_repository(id).await.unwrap().checking_by.is_some().then_some(())
    })
    .await;
    let (url, key) = (b.database_url.clone(), b.data.path().join("master.key"));
    let data = b.stop_keep_data().await;
    // serve has returned: the running check was finished and recorded, not dropped.
    let (store, _) = berth_store::Store::open(&url, &key).await.unwrap();
    let h = store.check_history(id, None, 10).await.unwrap();
    // "Check all now" made it due: recorded as a person's request.
    assert_eq!(h[0].reason, berth_core::CheckReason::Manual, "{h:?}");
    assert_eq!(h[0].code, berth_core::Code::Timeout, "{h:?}");
    let row = store.get_repository(id).await.unwrap();
    assert!(row.lease_owner.is_none(), "the lease was handed back");
    drop(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limiting_host_is_left_alone_until_its_retry_after() {
    let b = fast_berth(0.5).await;
    let proxy = FaultyProxy::start(&b.git.base_url()).await;
    b.api_token_credential("ci").await;
    let mut ids = Vec::new();
    for (name, path) in [("app", "team/app.git"), ("lib", "team/lib.git")] {
        let url = proxy.url(&format!("git/{path}"));
        ids.push(b.api.create_repository(&new_repository(name, &url, "ci")).await.unwrap().id);
        assert_eq!(b.api.status(), 201);
    }
    // The host starts answering 429 with Retry-After: 3600.
    proxy.set(Mode::RateLimit);
    b.api.schedule_all_checks().await.unwrap();
    eventually("a rate-limited check", || async {
        let h = history(&b, ids[0]).await;
        h.iter().any(|c| c.code == Code::RateLimited).then_some(())
    })
    .await;
    // Several intervals later neither repository was tried again: the host asked for an hour.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for id in &ids {
        let limited = history(&b, *id).await.iter().filter(|c| c.code == Code::RateLimited).count();
        assert!(limited <= 1, "repository {id} was retried {limited} times within the Retry-After");
        let next = b.api.get_repository(*id).await.unwrap().next_check_at.unwrap();
        assert!(next > chrono::Utc::now() + chrono::Duration::minutes(50), "next check {next} ignores Retry-After");
    }
    let m = metrics(&b).await;
    assert!(sample(&m, "berth_rate_limit_backoffs_total") >= 1.0, "{m}");
    b.stop().await;
}
