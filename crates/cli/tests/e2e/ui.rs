//! The web UI in a real browser (`harness::browser`: Debian's Chromium driven through
//! chromedriver by fantoccini), against a real Berth and the test Git server. Each page
//! visited is saved as a PNG under `target/screenshots/`. What a test sets up or reads back
//! beside the browser goes through the typed `ApiClient`.

use crate::harness::browser::Browser;
use crate::harness::*;
use crate::roles::{add_user, VIEWER_PASSWORD};
use berth_proto::CredentialUpdate;
use fantoccini::Locator;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_stores_a_credential_and_registers_a_repository() {
    let berth = Berth::start().await;
    let base = berth.base.clone();
    let b = Browser::start("admin").await;

    // Login.
    b.goto(&format!("{base}/")).await;
    assert_eq!(b.path().await, "/login", "not signed in: to the sign-in page");
    b.shot("01-login").await;
    b.fill("#username", "admin").await;
    b.fill("#password", "wrong password").await;
    b.click("#sign_in").await;
    assert!(b.text("#problem").await.contains("Wrong username or password"));
    b.sign_in(&base, "admin", ADMIN_PASSWORD).await;
    b.find("#empty_repos").await;
    assert_eq!(b.text("h1").await, "VC Repos");
    b.shot("02-vc-repos-empty").await;

    // Admin > Credentials > Create Credential.
    b.click("a[href='/credentials']").await;
    b.find("#empty_credentials").await;
    b.shot("03-credentials-empty").await;
    b.click("#create_credential").await;
    b.find("#credential_form").await;
    // The retired type explains itself instead of saving.
    b.find("#kind").await.select_by_value("bitbucket_app_password").await.unwrap();
    b.until("the app-password notice shows", "return !document.getElementById('app_password_notice').hidden").await;
    b.shot("04-credential-app-password-notice").await;
    b.fill("#cred_name", "old-app-pw").await;
    b.fill("#secret", "app-password-value").await;
    b.click("#save_credential").await;
    // The refusal is beside the field at fault, which is marked.
    let problem = b.text("#kind_error").await;
    assert!(problem.contains("app_password_retired") && problem.contains("API token"), "{problem}");
    assert_eq!(b.find("#kind").await.attr("aria-invalid").await.unwrap().as_deref(), Some("true"));
    assert!(!b.c.source().await.unwrap().contains("app-password-value"), "the secret was echoed back");
    // Username with API Token.
    b.find("#kind").await.select_by_value("bitbucket_api_token").await.unwrap();
    assert_eq!(b.find("#kind option:checked").await.text().await.unwrap(), "Username with API Token");
    b.fill("#cred_name", "bb-ci").await;
    b.fill("#email", "jo@example.com").await;
    b.fill("#secret", TOKEN).await;
    b.c.execute("document.getElementById('expires_on').value = '2030-06-30'", vec![]).await.unwrap();
    b.shot("05-create-credential").await;
    b.click("#save_credential").await;
    b.find("#credentials").await;
    let flash = b.text("#flash").await;
    assert!(flash.contains("bb-ci") && flash.contains("will not be shown again"), "{flash}");
    let table = b.text("#credentials").await;
    assert!(
        table.contains("bb-ci") && table.contains("Username with API Token") && table.contains("2030-06-30"),
        "{table}"
    );
    assert!(!b.c.source().await.unwrap().contains(TOKEN), "the token is on the page");
    b.shot("06-credentials").await;

    // Admin > VC Repos > Register Repository, with Refresh against the test Git server.
    b.click("a[href='/']").await;
    b.click("#register_link").await;
    b.find("#register_form").await;
    assert!(!b.find("#default_branch").await.is_enabled().await.unwrap(), "Default Branch starts disabled");
    assert_eq!(b.find("#vcs option:checked").await.text().await.unwrap(), "GIT");
    b.shot("07-register-empty").await;
    b.fill("#name", "app").await;
    b.fill("#clone_url", &format!("git clone {}", berth.git.repo_url("team/app.git"))).await;
    b.find("#credential").await.select_by_label("bb-ci · Username with API Token · jo@example.com").await.unwrap();
    b.click("#refresh").await;
    b.until("the branches are listed", "return !document.getElementById('default_branch').disabled").await;
    assert_eq!(b.value("#default_branch").await, "trunk", "the remote's default is pre-selected");
    assert!(b.text("#branch_hint").await.contains("4 branches"));
    // Typeahead.
    b.fill("#default_branch", "rel").await;
    b.until("the typeahead shows matches", "return !document.getElementById('branch_popup').hidden").await;
    let options = b.text("#branch_list").await;
    assert!(options.contains("release/1.0") && !options.contains("develop"), "{options}");
    b.shot("08-register-typeahead").await;
    b.find("#default_branch").await.send_keys("\u{E015}").await.unwrap(); // ArrowDown
    b.find("#default_branch").await.send_keys("\u{E007}").await.unwrap(); // Enter picks it
    assert_eq!(b.value("#default_branch").await, "release/1.0");
    b.fill("#default_branch", "trunk").await;
    b.find("#default_branch").await.send_keys("\u{E00C}").await.unwrap(); // Escape
    b.shot("09-register-refreshed").await;
    b.click("#register").await;
    b.find("#repos").await;
    assert!(b.path().await.starts_with("/?registered="));
    // Plain HTTP warns: the banner says so, never that every check passed.
    let flash = b.text("#flash").await;
    assert!(flash.starts_with("Registered app, with 1 warning: ") && !flash.contains("every"), "{flash}");
    let repos = b.text("#repos").await;
    assert!(
        repos.contains("app") && repos.contains("trunk") && repos.contains("bb-ci") && repos.contains("warning"),
        "{repos}"
    );
    assert!(repos.contains(&berth.git.repo_url("team/app.git")), "{repos}");
    // Plain HTTP to the test server: the check passes with a warning.
    assert_eq!(b.text("#repos td.status .badge").await, "warning");
    b.shot("10-vc-repos-listed").await;

    // A failing registration shows every step with what to do.
    b.click("#register_link").await;
    b.fill("#name", "ghost").await;
    b.fill("#clone_url", &berth.git.repo_url("team/missing.git")).await;
    b.find("#credential").await.select_by_value("1").await.unwrap();
    b.click("#refresh").await;
    b.until("the refresh fails with steps", "return !!document.querySelector('#refresh_result table.steps')").await;
    let steps = b.text("#refresh_result").await;
    assert!(steps.contains("repository_not_found_or_no_access") && steps.contains("What to do"), "{steps}");
    // The script's step table is titled as the server's pages are, from the page's own titles;
    // the steps that passed are folded, as on the server's pages.
    assert!(steps.contains("Git smart HTTP") && steps.contains("steps passed"), "{steps}");
    let all = b.c.execute("return document.getElementById('refresh_result').textContent", vec![]).await.unwrap();
    let all = all.as_str().unwrap();
    assert!(all.contains("Clone URL") && !all.contains("git_discovery"), "step names are not shown raw: {all}");
    // The field a failed Refresh is about is marked, as after Register.
    assert_eq!(b.find("#clone_url").await.attr("aria-invalid").await.unwrap().as_deref(), Some("true"));
    let beside = b.text("#clone_url_error").await;
    assert!(beside.contains("Git smart HTTP: ") && beside.ends_with("See the steps below."), "{beside}");
    b.shot("11-refresh-failed").await;
    b.click("#register").await;
    b.find("#problem table.steps").await;
    let rows = b.c.find_all(Locator::Css("#problem table.steps tbody tr")).await.unwrap();
    assert!(rows.len() >= 8, "every step is listed, got {}", rows.len());
    // The failed step comes first; the steps not run are folded under their count.
    let text = b.text("#problem").await;
    assert!(text.contains("Git smart HTTP") && text.contains("fail") && text.contains("not run"), "{text}");
    assert_eq!(b.text("#problem table.steps tbody tr:first-child .badge").await, "fail");
    assert_eq!(b.value("#name").await, "ghost", "the form keeps what was typed");
    // Where Refresh shows its answer, and beside the field at fault, which is marked.
    assert!(b.has("#refresh_result #problem").await);
    assert_eq!(b.find("#clone_url").await.attr("aria-invalid").await.unwrap().as_deref(), Some("true"));
    assert!(b.text("#clone_url_error").await.contains("See the steps below"));
    b.shot("12-register-failed-steps").await;

    // The repository page: Check now.
    b.goto(&format!("{base}/")).await;
    b.click("#repos a[href^='/repositories/']").await;
    b.click("#check_now").await;
    let flash = b.text("#flash").await;
    assert!(flash.starts_with("Checked, with 1 warning: ") && !flash.contains("every"), "{flash}");
    assert!(b.has("table.steps").await);
    b.shot("13-repository").await;

    // Replace the token: every repository using the credential is checked again.
    b.goto(&format!("{base}/credentials/1")).await;
    assert!(b.text("dl.facts").await.contains("app"), "used by app");
    b.fill("#new_secret", TOKEN).await;
    b.click("#replace_token").await;
    let rechecks = b.text("#rechecks").await;
    assert!(rechecks.contains("app") && rechecks.contains("passed with warnings"), "{rechecks}");
    let flash = b.text("#flash").await;
    assert_eq!(flash, "Token replaced. 1 repository re-checked: 1 with warnings.", "{flash}");
    assert_eq!(b.text("#rechecks .badge").await, "passed with warnings");
    b.shot("14a-credential-token-replaced").await;

    // Users, audit, account.
    b.click("a[href='/admin/users']").await;
    b.fill("#new_username", "vera").await;
    b.fill("#new_password", VIEWER_PASSWORD).await;
    b.find("#new_role").await.select_by_value("viewer").await.unwrap();
    b.click("#add_user").await;
    assert!(b.text("#flash").await.contains("Added vera as viewer"));
    b.shot("14-users").await;
    b.click("a[href='/admin/audit']").await;
    let audit = b.text("#audit").await;
    for a in ["credential.create", "repository.register", "repository.check", "user.create", "auth.login_failed"] {
        assert!(audit.contains(a), "{a} missing from the audit page");
    }
    assert!(!audit.contains(TOKEN) && !audit.contains(VIEWER_PASSWORD));
    b.shot("15-audit").await;
    b.click("a[href='/account']").await;
    b.fill("#token_name", "ci-pipeline").await;
    b.click("#create_token").await;
    let token = b.value("#new_token").await;
    assert!(token.starts_with("berthpat_"), "{token}");
    b.shot("16-account-token").await;
    let pat = berth.api.with_token(&token);
    pat.me().await.unwrap();
    assert_eq!(pat.status(), 200);

    // A phone-sized screen.
    b.c.set_window_size(390, 844).await.unwrap();
    b.goto(&format!("{base}/")).await;
    b.find("#repos").await;
    b.shot("17-vc-repos-phone").await;
    b.goto(&format!("{base}/repositories/new")).await;
    b.find("#register_form").await;
    b.shot("18-register-phone").await;
    b.close().await;
    berth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_is_refused_and_two_factor_sign_in_works() {
    let berth = Berth::start().await;
    let base = berth.base.clone();
    add_user(&berth, "vera", VIEWER_PASSWORD, "viewer").await;
    berth.api_token_credential("ci").await;
    let b = Browser::start("viewer").await;

    b.sign_in(&base, "vera", VIEWER_PASSWORD).await;
    b.find("#empty_repos").await;
    assert!(!b.has("#register_link").await, "a viewer gets no Register button");
    assert!(b.text("#no_register").await.contains("You must have permission to register a repository"));
    assert!(!b.has("a[href='/admin/users']").await);
    assert!(!b.has("header .navlabel").await, "no Admin label for a viewer");
    b.shot("01-vc-repos").await;
    b.goto(&format!("{base}/repositories/new")).await;
    let problem = b.text("#problem").await;
    assert!(
        problem.contains("You must have permission to register a repository") && problem.contains("forbidden"),
        "{problem}"
    );
    b.shot("02-register-refused").await;
    b.goto(&format!("{base}/admin/audit")).await;
    assert!(b.text("#problem").await.contains("read the audit log"));
    b.goto(&format!("{base}/credentials")).await;
    assert!(b.text("#credentials").await.contains("ci"), "viewers read credentials");
    assert!(!b.has("#create_credential").await);

    // Two-factor sign-in: enrol, sign out, sign in with a code.
    b.goto(&format!("{base}/account")).await;
    b.click("#setup_2fa").await;
    b.click("#start_2fa").await;
    let secret: String = b.text("#totp_secret").await.split_whitespace().collect();
    // The QR code is drawn by the server, inline: no image from elsewhere.
    let qr = b.find("#totp_qr svg").await;
    assert!(qr.is_displayed().await.unwrap());
    let drawn: i64 =
        b.c.execute("return document.querySelectorAll('#totp_qr svg path, #totp_qr svg rect').length", vec![])
            .await
            .unwrap()
            .as_i64()
            .unwrap();
    assert!(drawn > 0, "the QR code has modules");
    assert!(!b.c.source().await.unwrap().contains("<img"), "no image is fetched for it");
    b.shot("03-totp-enrol").await;
    let now = chrono::Utc::now().timestamp();
    b.fill("#confirm_code", &berth_server::auth::totp::code(&secret, now).unwrap()).await;
    b.click("#confirm_2fa").await;
    let codes = b.text("#recovery_codes").await;
    assert!(codes.contains("recovery codes"), "{codes}");
    let first_code = b.find("#recovery_codes li code").await.text().await.unwrap();
    // Copy and download: the text file holds every code shown.
    assert!(b.find("#copy_codes").await.is_displayed().await.unwrap(), "the script shows the Copy button");
    b.click("#copy_codes").await;
    b.until("the copy is reported", "return document.getElementById('copy_status').textContent !== ''").await;
    let link = b.find("#download_codes").await;
    assert_eq!(link.attr("download").await.unwrap().as_deref(), Some("berth-recovery-codes.txt"));
    let href = link.attr("href").await.unwrap().unwrap_or_default();
    let file = href.strip_prefix("data:text/plain;charset=utf-8,").expect("a data: URL of a text file");
    let file = percent_decoded(file);
    let shown = b.c.find_all(Locator::Css("#recovery_codes li code")).await.unwrap();
    assert!(shown.len() >= 8, "{}", shown.len());
    for c in shown {
        let c = c.text().await.unwrap();
        assert!(file.lines().any(|l| l == c), "{c} missing from the downloaded file: {file}");
    }
    b.shot("04-totp-recovery-codes").await;
    b.sign_out().await;
    b.sign_in(&base, "vera", VIEWER_PASSWORD).await;
    b.find("#code").await;
    assert_eq!(b.path().await, "/login/2fa");
    // The pending session opens nothing else.
    b.goto(&format!("{base}/")).await;
    assert_eq!(b.path().await, "/login/2fa");
    b.shot("05-second-factor").await;
    b.fill("#code", "000000").await;
    b.click("#verify").await;
    assert!(b.text("#problem").await.contains("not valid"));
    // The code already used to enrol does not work twice: use the next step's.
    b.fill("#code", &berth_server::auth::totp::code(&secret, now + 30).unwrap()).await;
    b.click("#verify").await;
    b.find("#empty_repos").await;
    // A recovery code works once.
    b.sign_out().await;
    b.sign_in(&base, "vera", VIEWER_PASSWORD).await;
    b.fill("#code", &first_code).await;
    b.click("#verify").await;
    b.find("#empty_repos").await;
    b.sign_out().await;
    b.sign_in(&base, "vera", VIEWER_PASSWORD).await;
    b.fill("#code", &first_code).await;
    b.click("#verify").await;
    assert!(b.text("#problem").await.contains("not valid"));
    // The API's password login points such users at personal tokens.
    let e = refused(Api::new(&base, "").login("vera", VIEWER_PASSWORD).await);
    assert_eq!(e.status(), Some(401), "{e}");
    b.close().await;
    berth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branch_typeahead_over_fifty_thousand_branches() {
    let berth = Berth::start().await;
    let base = berth.base.clone();
    let root = berth.repos.path().to_owned();
    tokio::task::spawn_blocking(move || berth_testkit::many_refs(&root, "team/big.git", 50_000, 0)).await.unwrap();
    berth.api_token_credential("ci").await;
    let b = Browser::start("big").await;
    b.sign_in(&base, "admin", ADMIN_PASSWORD).await;
    b.find("#empty_repos").await;
    b.goto(&format!("{base}/repositories/new")).await;
    b.fill("#name", "big").await;
    b.fill("#clone_url", &berth.git.repo_url("team/big.git")).await;
    b.find("#credential").await.select_by_value("1").await.unwrap();
    // Setting the URL and the credential is enough: Refresh runs by itself.
    b.until("the branches are listed", "return !document.getElementById('default_branch').disabled").await;
    assert_eq!(b.value("#default_branch").await, "main");
    assert!(b.text("#branch_hint").await.contains("50000 branches"), "{}", b.text("#branch_hint").await);
    // Focusing the field shows the whole list, the remote's default first and marked; only the
    // rows in view are drawn, and scrolling draws the others.
    b.click("#name").await;
    b.click("#default_branch").await;
    b.until("the list opens on focus", "return !document.getElementById('branch_popup').hidden").await;
    assert!(b.text("#branch_count").await.starts_with("50000 branches"), "{}", b.text("#branch_count").await);
    let first = b.find("#branch_list li[role=option]").await;
    assert_eq!(first.attr("aria-setsize").await.unwrap().as_deref(), Some("50000"));
    assert_eq!(b.text("#branch_list li.default .name").await, "main");
    assert_eq!(first.attr("class").await.unwrap().as_deref(), Some("default"), "the default is first");
    let drawn = b.c.find_all(Locator::Css("#branch_list li[role=option]")).await.unwrap().len();
    assert!((5..100).contains(&drawn), "only the rows in view are drawn: {drawn}");
    b.shot("01-typeahead-focus-50k").await;
    b.c.execute("const l = document.getElementById('branch_list'); l.scrollTop = l.scrollHeight;", vec![])
        .await
        .unwrap();
    b.until("the last rows are drawn", "return !!document.querySelector(\"#branch_list li[aria-posinset='50000']\")")
        .await;
    b.shot("02-typeahead-scrolled-to-the-end").await;
    // A prefix with 100 matches: all of them in the list, counted.
    b.fill("#default_branch", "branch-0420").await;
    b.until("the typeahead shows matches", "return !document.getElementById('branch_popup').hidden").await;
    assert_eq!(b.text("#branch_count").await, "100 of 50000 branches match.");
    assert_eq!(
        b.find("#branch_list li[role=option]").await.attr("aria-setsize").await.unwrap().as_deref(),
        Some("100")
    );
    b.shot("03-typeahead-50k").await;
    b.fill("#default_branch", "branch-042017").await;
    b.until("one match", "return document.querySelectorAll('#branch_list li[role=option]').length === 1").await;
    b.find("#default_branch").await.send_keys("\u{E015}").await.unwrap();
    b.find("#default_branch").await.send_keys("\u{E007}").await.unwrap();
    b.click("#register").await;
    let repos = b.text("#repos").await;
    assert!(repos.contains("big") && repos.contains("branch-042017") && repos.contains("warning"), "{repos}");
    b.close().await;
    berth.stop().await;
}

/// `%XX` escapes decoded (a `data:` URL's text).
fn percent_decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex =
            b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// Reloads `url` until `js` (returning a boolean) is true, for at most a minute: background
/// checks run on their own time.
async fn reload_until(b: &Browser, url: &str, js: &str, what: &str) {
    for _ in 0..240 {
        b.goto(url).await;
        if b.c.execute(js, vec![]).await.unwrap().as_bool() == Some(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("gave up waiting: {what}");
}

/// How many checks of the history table on the current page ran for `reason`.
async fn history_count(b: &Browser, reason: &str) -> usize {
    b.c.find_all(Locator::Css(&format!("#history tbody tr[data-reason='{reason}']"))).await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_expiry_warning_check_history_and_check_all() {
    // The default schedule (hourly): nothing is checked in the background unless asked.
    let berth = Berth::start().await;
    let base = berth.base.clone();
    let cred = berth.api_token_credential("bb-ci").await;
    let app = berth.register("app", "team/app.git", "bb-ci").await;
    berth.register("lib", "team/lib.git", "bb-ci").await;
    add_user(&berth, "vera", VIEWER_PASSWORD, "viewer").await;
    let b = Browser::start("checks").await;
    b.sign_in(&base, "admin", ADMIN_PASSWORD).await;
    b.find("#repos").await;
    // No warning while the credential has no expiry date.
    assert!(!b.has("#repos p.repo-warning").await, "{}", b.text("#repos").await);

    // The credential expires in 5 days, set on its page.
    let soon = (chrono::Utc::now().date_naive() + chrono::Duration::days(5)).format("%Y-%m-%d").to_string();
    b.goto(&format!("{base}/credentials/{cred}")).await;
    assert!(!b.has("#expiry_warning").await);
    b.c.execute(&format!("document.getElementById('edit_expiry').value = '{soon}'"), vec![]).await.unwrap();
    b.click("#save_details").await;
    assert!(b.text("#flash").await.contains("Saved"));
    let warning = b.text("#expiry_warning").await;
    assert!(
        warning.contains("Credential \"bb-ci\" expires in 5 days")
            && warning.contains("What to do")
            && warning.contains("replace the credential's secret"),
        "{warning}"
    );
    assert_eq!(b.text("#background_state").await, "running");
    b.shot_full("01-credential-expires-soon").await;
    b.goto(&format!("{base}/credentials")).await;
    let row = b.text(&format!("#credentials tr[data-credential='{cred}']")).await;
    assert!(row.contains("expires in 5 days") && row.contains("What to do: Create a new token"), "{row}");
    assert!(!b.has("#paused_notice").await);
    b.shot("01b-credentials-expires-soon").await;

    // Editing the credential makes its repositories due: each is checked once in the
    // background, then not again for an hour.
    let app_page = format!("{base}/repositories/{app}");
    reload_until(
        &b,
        &app_page,
        "return !!document.querySelector(\"#history tr[data-reason='credential']\")",
        "the check after the edit",
    )
    .await;

    // VC Repos: status, last and next check, and the warning as text in each row.
    b.click("a[href='/']").await;
    let row = b.text(&format!("#repos tr[data-repo='{app}']")).await;
    assert!(row.contains("Credential \"bb-ci\" expires in 5 days"), "{row}");
    assert_eq!(b.text(&format!("#repos tr[data-repo='{app}'] td.status .badge")).await, "warning");
    let last = b.text(&format!("#repos tr[data-repo='{app}'] td[data-label='Last check']")).await;
    assert!(last.contains("just now") || last.contains("minute"), "{last}");
    let next = b.text(&format!("#repos tr[data-repo='{app}'] td[data-label='Next check']")).await;
    assert!(next.starts_with("in ") && next.contains("UTC"), "{next}");
    assert_eq!(
        b.c.find_all(Locator::Css("#repos p.repo-warning")).await.unwrap().len(),
        2,
        "one warning per repository"
    );
    b.shot("02-vc-repos-status-warning").await;

    // The repository page: the warning with its remedy, the next check, the history.
    b.click(&format!("#repos a[href='/repositories/{app}']")).await;
    let warnings = b.text("#warnings").await;
    assert!(warnings.contains("expires in 5 days") && warnings.contains("What to do:"), "{warnings}");
    assert!(b.text("#next_check").await.contains(" (in "), "{}", b.text("#next_check").await);
    let status = b.text("dl.facts dd:has(#last_status)").await;
    assert!(
        status.starts_with("warning") && status.contains("insecure_transport"),
        "the codes of the steps that warned: {status}"
    );
    let mut reasons = Vec::new();
    for r in b.c.find_all(Locator::Css("#history tbody tr")).await.unwrap() {
        reasons.push(r.attr("data-reason").await.unwrap().unwrap_or_default());
    }
    // The check the edit caused is recorded as the credential's, not as the regular schedule.
    assert_eq!(reasons, ["credential", "register"], "newest first");
    let reg = b.text("#history tr[data-reason='register']").await;
    assert!(reg.contains("registration") && reg.contains("warning") && reg.contains("ms"), "{reg}");
    let instance = b.text("#history tr[data-reason='register'] td[data-label='Instance']").await;
    assert!(!instance.is_empty(), "the instance that ran it");
    // Its steps open in place, each with what happened and what to do.
    assert!(!b.find("#history tr[data-reason='register'] ol.steplist").await.is_displayed().await.unwrap());
    let summary = b.text("#history tr[data-reason='register'] details summary").await;
    assert!(summary.ends_with("steps, 1 warning"), "plain HTTP before the expiry date was set: {summary}");
    b.click("#history tr[data-reason='register'] details summary").await;
    let steps = b.text("#history tr[data-reason='register'] ol.steplist").await;
    assert!(
        steps.contains("Git smart HTTP") && steps.contains("insecure_transport") && steps.contains("What to do"),
        "{steps}"
    );
    b.shot_full("03-repository-history").await;

    // Check all now: every repository is made due and checked again in the background.
    b.click("a[href='/']").await;
    b.click("#check_all").await;
    // The page without a message is replaced by the one with it.
    let flash = b.text("#flash").await;
    assert!(flash.contains("2 repositories will be checked in the background"), "{flash}");
    assert_eq!(b.path().await, "/?scheduled=2");
    b.shot("04-check-all-flash").await;
    reload_until(
        &b,
        &app_page,
        "return !!document.querySelector(\"#history tr[data-reason='manual']\")",
        "the check asked for by Check all now",
    )
    .await;
    // Check all now is a person's request: recorded as manual, not as the regular schedule.
    assert_eq!(history_count(&b, "manual").await, 1);
    assert_eq!(history_count(&b, "credential").await, 1);
    assert_eq!(history_count(&b, "register").await, 1);
    assert_eq!(history_count(&b, "schedule").await, 0);
    let first = b.find("#history tbody tr").await.attr("data-reason").await.unwrap();
    assert_eq!(first.as_deref(), Some("manual"), "newest first");
    b.shot_full("05-repository-after-check-all").await;
    let audit = berth.api.audit(None, None).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "repository.check_all"), "{audit:?}");

    // A viewer gets no Check all button, and a forged form is refused by the server.
    b.sign_out().await;
    b.sign_in(&base, "vera", VIEWER_PASSWORD).await;
    b.find("#repos").await;
    assert!(!b.has("#check_all").await, "a viewer cannot check repositories");
    assert!(b.text(&format!("#repos tr[data-repo='{app}']")).await.contains("expires in 5 days"));
    b.c.execute(
        "const f = document.createElement('form'); f.method = 'post'; f.action = '/repositories/check-all';
         const i = document.createElement('input'); i.type = 'hidden'; i.name = 'csrf';
         i.value = document.querySelector(\"header form[action='/logout'] input[name=csrf]\").value;
         f.appendChild(i); document.body.appendChild(f); f.submit();",
        vec![],
    )
    .await
    .unwrap();
    let problem = b.text("#problem").await;
    assert!(problem.contains("You must have permission to check a repository"), "{problem}");
    b.close().await;
    berth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_background_checks_are_shown_with_what_to_do() {
    // A check about every half second, so three authentication failures come quickly.
    let toml = "[checks]\ninterval_mins = 0.008\njitter_percent = 0\npoll_secs = 0.2\nlease_secs = 30\n".to_owned();
    let berth = Berth::start_with(Options { config_toml: Some(toml), ..Options::default() }).await;
    let base = berth.base.clone();
    let cred = berth.api_token_credential("ci").await;
    let app = berth.register("app", "team/app.git", "ci").await;
    // The token is revoked on the host's side: the stored one stops working.
    let revoked = CredentialUpdate { secret: Some(REVOKED_TOKEN.into()), ..CredentialUpdate::default() };
    berth.api.update_credential(cred, &revoked).await.unwrap();
    assert_eq!(berth.api.status(), 200);
    let b = Browser::start("paused").await;
    b.sign_in(&base, "admin", ADMIN_PASSWORD).await;
    b.find("#repos").await;
    let cred_page = format!("{base}/credentials/{cred}");
    reload_until(&b, &cred_page, "return !!document.getElementById('paused_notice')", "the credential's checks pause")
        .await;
    // A check already running when the third failed may still add one: read the count once
    // it can no longer change, then the page again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let c = berth.api.get_credential(cred).await.unwrap();
    let failures = c.auth_failures;
    assert!((3..=4).contains(&failures), "{c:?}");
    b.goto(&cred_page).await;
    let notice = b.text("#paused_notice").await;
    assert!(
        notice.contains("Background checks with this credential are paused")
            && notice.contains("Paused since")
            && notice.contains(&format!("after {failures} authentication failures in a row"))
            && notice.contains("replace the token or edit the credential to resume"),
        "{notice}"
    );
    let since = c.checks_paused_at.unwrap();
    assert!(notice.contains(&since.format("%Y-%m-%d %H:%M UTC").to_string()), "{notice}");
    assert!(b.text("#background_state").await.starts_with("paused"));
    b.shot_full("01-credential-paused").await;

    b.goto(&format!("{base}/credentials")).await;
    let list_notice = b.text("#paused_notice").await;
    assert!(
        list_notice.contains("paused for 1 credential")
            && list_notice.contains("replace the token or edit the credential"),
        "{list_notice}"
    );
    assert!(b.text(&format!("#credentials tr[data-credential='{cred}']")).await.contains("paused"));
    b.shot("01b-credentials-paused").await;

    b.goto(&format!("{base}/")).await;
    assert_eq!(b.text(&format!("#repos tr[data-repo='{app}'] td.status .badge")).await, "paused");
    let row = b.text(&format!("#repos tr[data-repo='{app}']")).await;
    assert!(row.contains("are paused since") && row.contains("paused until its credential is edited"), "{row}");
    b.shot("02-vc-repos-paused").await;
    b.goto(&format!("{base}/repositories/{app}")).await;
    assert!(b.text("#warnings").await.contains("editing it resumes the checks"));
    let failed = b.c.find_all(Locator::Css("#history tr[data-status='fail']")).await.unwrap().len();
    assert_eq!(i64::try_from(failed).unwrap(), failures, "each failure is a check in the history");
    let summary = b.text("#history tr[data-status='fail'] details summary").await;
    assert!(summary.contains("1 failed"), "{summary}");
    assert!(
        b.text("#history tr[data-status='fail'] td[data-label='First failure']").await.contains("auth"),
        "the failing code"
    );
    b.shot_full("03-repository-paused").await;

    // Editing the credential resumes them: the notice goes.
    b.goto(&format!("{base}/credentials/{cred}")).await;
    b.fill("#new_secret", TOKEN).await;
    b.click("#replace_token").await;
    b.find("#rechecks").await;
    assert!(!b.has("#paused_notice").await, "{}", b.text("main").await);
    assert!(b.text("#background_state").await.starts_with("running"));
    b.close().await;
    berth.stop().await;
}

/// Fails unless the page at the window's current width scrolls only up and down.
pub async fn no_sideways_scroll(b: &Browser, what: &str) {
    let widths =
        b.c.execute("return [document.scrollingElement.scrollWidth, window.innerWidth]", vec![]).await.unwrap();
    let (scroll, inner) = (widths[0].as_i64().unwrap(), widths[1].as_i64().unwrap());
    if scroll > inner {
        // Name the innermost elements that reach past the window's right edge.
        let wide = b
            .c
            .execute(
                "return Array.from(document.querySelectorAll('body *'))
                   .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
                   .filter(e => !Array.from(e.children).some(c => c.getBoundingClientRect().right > window.innerWidth + 0.5))
                   .slice(0, 8)
                   .map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))",
                vec![],
            )
            .await
            .unwrap();
        panic!("{what} scrolls sideways: {scroll} px wide in a {inner} px window; too wide: {wide}");
    }
}

/// Puts `text` into the field as a paste does: the value changes, then the paste event fires.
async fn paste(b: &Browser, css: &str, text: &str) {
    b.c.execute(
        "const f = document.querySelector(arguments[0]); f.focus(); f.value = arguments[1];
         f.dispatchEvent(new Event('input', { bubbles: true }));
         f.dispatchEvent(new ClipboardEvent('paste', { bubbles: true }));",
        vec![css.into(), text.into()],
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_form_reads_the_url_marks_the_field_at_fault_and_tells_the_real_outcome() {
    let berth = Berth::start().await;
    let base = berth.base.clone();
    berth.api_token_credential("ci").await;
    let lib = berth.register("lib", "team/lib.git", "ci").await;
    let b = Browser::start("register").await;
    b.sign_in(&base, "admin", ADMIN_PASSWORD).await;
    b.find("#repos").await;
    b.goto(&format!("{base}/repositories/new")).await;

    // A whole `git clone` line pasted: the field keeps the URL alone, normalised by the server's
    // parser (nothing is fetched until a credential is chosen), and says what it names.
    paste(&b, "#clone_url", "git clone https://jo@BitBucket.org/acme/app.git").await;
    b.until("the URL is read", "return document.getElementById('url_names').textContent !== ''").await;
    assert_eq!(b.value("#clone_url").await, "https://bitbucket.org/acme/app.git");
    assert_eq!(b.text("#url_names").await, "Bitbucket Cloud · acme/app");
    b.shot("00-url-pasted-bitbucket").await;
    b.fill("#name", "").await;
    let url = berth.git.repo_url("team/app.git");
    paste(&b, "#clone_url", &format!("  git clone {url}/ ")).await;
    b.until("the URL is read", "return document.getElementById('url_names').textContent.startsWith('Git server')")
        .await;
    assert_eq!(b.value("#clone_url").await, url);
    // The test server serves repositories under a path of its own.
    let path = url.split_once("://").and_then(|(_, rest)| rest.split_once('/')).unwrap().1;
    assert_eq!(b.text("#url_names").await, format!("Git server · {}", path.trim_end_matches(".git")));
    assert_eq!(b.value("#name").await, "app", "the name is offered from the URL");
    b.shot("01-url-pasted").await;

    // Another spelling of a registered repository's URL links to the repository that has it.
    b.fill("#name", "").await;
    paste(&b, "#clone_url", berth.git.repo_url("team/lib").as_str()).await;
    b.until(
        "the URL is known",
        "return document.getElementById('url_names').textContent.includes('already registered as lib')",
    )
    .await;
    let href = b.find("#url_names a#existing_repo").await.attr("href").await.unwrap();
    assert_eq!(href.as_deref(), Some(format!("/repositories/{lib}").as_str()));
    assert_eq!(b.value("#clone_url").await, berth.git.repo_url("team/lib.git"));
    b.shot("02-url-already-registered").await;
    // Registering it anyway: the refusal is beside the URL, which is marked, with the link.
    b.fill("#name", "lib-again").await;
    b.find("#credential").await.select_by_value("1").await.unwrap();
    b.click("#register").await;
    let error = b.text("#clone_url_error").await;
    assert!(error.contains("already_registered") && error.contains("Open lib"), "{error}");
    assert_eq!(b.find("#clone_url").await.attr("aria-invalid").await.unwrap().as_deref(), Some("true"));
    let href = b.find("#clone_url_error a#existing_repo").await.attr("href").await.unwrap();
    assert_eq!(href.as_deref(), Some(format!("/repositories/{lib}").as_str()));
    assert!(!b.has("main > #problem").await, "the refusal is not repeated above the form");
    b.shot_full("03-register-already-registered").await;

    // The form sent back lists the branches again by itself.
    b.until("the branches are listed", "return !document.getElementById('default_branch').disabled").await;
    // A name that is taken marks the name.
    b.fill("#name", "lib").await;
    b.fill("#clone_url", &url).await;
    // Leaving the field lists the new URL's branches (lib's default is not app's).
    b.click("#name").await;
    b.until("app's branches are listed", "return document.getElementById('default_branch').value === 'trunk'").await;
    b.click("#register").await;
    assert!(b.text("#name_error").await.contains("name_taken"));
    assert_eq!(b.find("#name").await.attr("aria-invalid").await.unwrap().as_deref(), Some("true"));
    assert!(b.find("#clone_url").await.attr("aria-invalid").await.unwrap().is_none());
    b.shot("04-register-name-taken").await;

    // Registered with a warning (plain HTTP): the banner says which, and no page says that
    // every check passed.
    b.fill("#name", "app").await;
    b.click("#register").await;
    b.find("#repos").await;
    let flash = b.text("#flash").await;
    assert!(flash.starts_with("Registered app, with 1 warning: "), "{flash}");
    assert_eq!(b.find("#flash").await.attr("class").await.unwrap().as_deref(), Some("flash warn"));
    let app = berth.api.list_repositories().await.unwrap().into_iter().find(|r| r.name == "app").unwrap();
    let app = berth.api.get_repository(app.id).await.unwrap();
    let warned: Vec<_> =
        app.last_check.as_ref().unwrap().checks.iter().filter(|s| s.status == berth_core::StepStatus::Warn).collect();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(flash.contains(warned[0].message.trim_end_matches('.')), "the warning's own words: {flash}");
    assert!(!b.c.source().await.unwrap().contains("every check passed"));
    b.shot("05-registered-with-a-warning").await;
    b.goto(&format!("{base}/repositories/{}", app.id)).await;
    b.click("#check_now").await;
    let flash = b.text("#flash").await;
    assert!(flash.starts_with("Checked, with 1 warning: ") && !flash.contains("every"), "{flash}");
    // The step that warned comes first; those that passed are folded under their count.
    assert_eq!(b.text("table.steps tbody tr:first-child .badge").await, "warn");
    let folded = b.text("details.steps-passed summary").await;
    assert!(folded.ends_with("steps passed"), "{folded}");
    assert!(!b.find("details.steps-passed table").await.is_displayed().await.unwrap());
    b.shot_full("06-checked-with-a-warning").await;

    // A phone: no page scrolls sideways; tables, steps included, become cards.
    b.c.set_window_size(390, 844).await.unwrap();
    for (path, name) in [
        ("/".to_owned(), "07-phone-repos"),
        (format!("/repositories/{}", app.id), "08-phone-repository"),
        ("/repositories/new".to_owned(), "09-phone-register"),
    ] {
        b.goto(&format!("{base}{path}")).await;
        b.find("main h1").await;
        no_sideways_scroll(&b, &path).await;
        b.shot_full(name).await;
    }
    // The register form with a failed check's steps on a phone.
    b.fill("#name", "ghost").await;
    b.fill("#clone_url", &berth.git.repo_url("team/missing.git")).await;
    b.find("#credential").await.select_by_value("1").await.unwrap();
    b.click("#register").await;
    b.find("#refresh_result #problem").await;
    no_sideways_scroll(&b, "the refused registration").await;
    b.shot_full("10-phone-register-failed").await;
    b.close().await;
    berth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_form_keeps_the_token_through_a_refusal_and_edits_scopes_with_checkboxes() {
    let berth = Berth::start().await;
    let base = berth.base.clone();
    berth.api_token_credential("ci").await;
    let b = Browser::start("credential").await;
    b.sign_in(&base, "admin", ADMIN_PASSWORD).await;
    b.find("#empty_repos").await;
    b.goto(&format!("{base}/credentials/new")).await;
    // The checklist: the product page's 13 scopes and the optional user scope, which says why.
    let boxes = b.c.find_all(Locator::Css("#credential_form input[name=scopes]")).await.unwrap();
    assert_eq!(boxes.len(), 14);
    let user = b.find("#credential_form label.check:has(input[value='read:user:bitbucket'])").await;
    assert!(user.text().await.unwrap().contains("optional"));
    let why = b.text("#user_scope_hint").await;
    assert!(why.contains("not on the product page") && why.contains("/2.0/user"), "{why}");

    // A name that is taken: refused beside the name, and the token typed is still there.
    b.fill("#cred_name", "ci").await;
    b.fill("#email", "jo@example.com").await;
    b.fill("#secret", TOKEN).await;
    b.click("#save_credential").await;
    let error = b.text("#cred_name_error").await;
    assert!(error.contains("name_taken"), "{error}");
    assert_eq!(b.find("#cred_name").await.attr("aria-invalid").await.unwrap().as_deref(), Some("true"));
    assert_eq!(b.value("#secret").await, TOKEN, "the token field was emptied by a refusal about the name");
    assert_eq!(b.path().await, "/credentials/new");
    assert!(!b.c.source().await.unwrap().contains(TOKEN), "the token is in the page's HTML");
    b.shot("01-credential-name-taken").await;
    // Fixing the name saves it, with the token typed before the refusal.
    b.fill("#cred_name", "ci-2").await;
    b.click("#save_credential").await;
    b.find("#credentials").await;
    assert!(b.text("#flash").await.contains("ci-2"));
    berth.register("app", "team/app.git", "ci-2").await;

    // Edit: the same checklist, ticked as stored.
    let id = berth.api.list_credentials().await.unwrap().into_iter().find(|c| c.name == "ci-2").unwrap().id;
    b.goto(&format!("{base}/credentials/{id}")).await;
    let boxes = b.c.find_all(Locator::Css("input[name=scopes]")).await.unwrap();
    assert_eq!(boxes.len(), 14);
    assert!(b.find("input[name=scopes][value='read:repository:bitbucket']").await.is_selected().await.unwrap());
    b.click("input[name=scopes][value='read:user:bitbucket']").await;
    b.click("#save_details").await;
    assert!(b.text("#flash").await.contains("Saved"));
    let c = berth.api.get_credential(id).await.unwrap();
    assert_eq!(c.scopes, ["read:repository:bitbucket", "read:user:bitbucket"], "{c:?}");
    assert!(b.find("input[name=scopes][value='read:user:bitbucket']").await.is_selected().await.unwrap());
    b.shot_full("02-credential-edit-scopes").await;

    // A phone: no sideways scroll on the credential pages.
    b.c.set_window_size(390, 844).await.unwrap();
    for (path, name) in [
        ("/credentials".to_owned(), "03-phone-credentials"),
        ("/credentials/new".to_owned(), "04-phone-create-credential"),
        (format!("/credentials/{id}"), "05-phone-credential"),
    ] {
        b.goto(&format!("{base}{path}")).await;
        b.find("main h1").await;
        no_sideways_scroll(&b, &path).await;
        b.shot_full(name).await;
    }
    b.close().await;
    berth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_page_filters_by_actor_action_target_and_date_and_pages() {
    let berth = Berth::start().await;
    let base = berth.base.clone();
    add_user(&berth, "vera", VIEWER_PASSWORD, "viewer").await;
    berth.api_token_credential("ci").await;
    for i in 0..105 {
        let req = berth_proto::ApiTokenCreate { name: format!("t{i}"), expires_in_days: Some(1) };
        berth.api.create_token(&req).await.unwrap();
    }
    let refused = Api::new(&base, "").login("vera", WRONG_PASSWORD).await;
    assert!(refused.is_err());
    let b = Browser::start("audit").await;
    b.sign_in(&base, "admin", ADMIN_PASSWORD).await;
    b.find("#empty_repos").await;
    b.goto(&format!("{base}/admin/audit")).await;

    /// Every row's text in one column of the audit table.
    async fn column(b: &Browser, label: &str) -> Vec<String> {
        let mut out = Vec::new();
        for td in b.c.find_all(Locator::Css(&format!("#audit td[data-label='{label}']"))).await.unwrap() {
            out.push(td.text().await.unwrap());
        }
        out
    }

    // Action: exact, from the actions the log holds.
    b.find("#f_action").await.select_by_value("credential.create").await.unwrap();
    b.click("#apply_filter").await;
    // The table is read once the filtered page has loaded, not while the old one goes away.
    let loaded = |q: &str| format!("return document.readyState === 'complete' && location.search.includes('{q}')");
    b.until("the action filter applies", &loaded("action=credential.create")).await;
    assert_eq!(column(&b, "What").await, ["credential.create"]);
    assert_eq!(column(&b, "Target").await, ["credential ci"]);
    // Action codes do not wrap mid-word.
    let ws = b.c.execute("return getComputedStyle(document.querySelector('#audit code.action')).whiteSpace", vec![]);
    assert_eq!(ws.await.unwrap().as_str(), Some("nowrap"));
    // Actor: any part of the name, any case.
    b.goto(&format!("{base}/admin/audit")).await;
    b.fill("#f_actor", "VER").await;
    b.click("#apply_filter").await;
    b.until("the actor filter applies", &loaded("actor=VER")).await;
    let who = column(&b, "Who").await;
    assert!(!who.is_empty() && who.iter().all(|w| w == "vera"), "{who:?}");
    assert!(column(&b, "What").await.iter().any(|w| w.starts_with("auth.login_failed")));
    // Target: kind and name.
    b.goto(&format!("{base}/admin/audit?target=api_token+t10")).await;
    let targets = column(&b, "Target").await;
    assert_eq!(
        targets,
        ["api_token t104", "api_token t103", "api_token t102", "api_token t101", "api_token t100", "api_token t10"]
    );
    // Dates, both inclusive.
    let today = chrono::Utc::now().date_naive();
    let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    b.goto(&format!("{base}/admin/audit?from={}", day(today + chrono::Duration::days(1)))).await;
    assert!(b.text("#audit_empty").await.contains("No entries match"));
    b.goto(&format!("{base}/admin/audit?to={}", day(today - chrono::Duration::days(1)))).await;
    assert!(b.has("#audit_empty").await);
    b.goto(&format!("{base}/admin/audit?from={0}&to={0}&action=token.create", day(today))).await;
    assert_eq!(b.value("#f_from").await, day(today), "the filter stays in the form");
    // Pages of 100 keep the filter.
    assert_eq!(column(&b, "What").await.len(), 100);
    b.click("#older_entries").await;
    b.until("the older entries", &loaded("before=")).await;
    let rest = column(&b, "What").await;
    assert_eq!(rest.len(), 5);
    assert!(rest.iter().all(|a| a == "token.create"), "{rest:?}");
    assert_eq!(b.text("#audit td[data-label='Target']").await, "api_token t4");
    assert!(b.path().await.contains("action=token.create"), "{}", b.path().await);
    b.shot_full("01-audit-filtered-page-2").await;
    b.click("#newest_entries").await;
    assert_eq!(column(&b, "What").await.len(), 100);
    b.find("#f_action").await.select_by_value("").await.unwrap();
    b.click("#apply_filter").await;
    b.shot("02-audit").await;
    b.c.set_window_size(390, 844).await.unwrap();
    b.goto(&format!("{base}/admin/audit")).await;
    no_sideways_scroll(&b, "the audit page").await;
    b.shot("03-phone-audit").await;
    // The other administrator's pages on a phone.
    for (path, name) in [("/admin/users", "04-phone-users"), ("/account", "05-phone-account")] {
        b.goto(&format!("{base}{path}")).await;
        b.find("main h1").await;
        no_sideways_scroll(&b, path).await;
        b.shot_full(name).await;
    }
    b.close().await;
    berth.stop().await;
}
