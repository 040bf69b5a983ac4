//! Notifications end to end: a local receiver (the test kit's `Receiver`, a real HTTP server)
//! checks every delivery's signature and counts events, a real SMTP server (Debian's aiosmtpd,
//! STARTTLS and AUTH) receives the mail, and three `berth serve` processes on one PostgreSQL
//! share the queue. Checks are asked for through the API, so each transition is caused the
//! way a person or the scheduler causes it.

use crate::harness::{
    self, Api, Berth, Options, HOOK_SECRET, INSTANCES_ADMIN_PASSWORD, NOTIFY_WRONG_TOKEN, SLACK_HOOK_TOKEN,
    SMTP_PASSWORD, SMTP_WRONG_PASSWORD,
};
use berth_proto::{ChannelCreate, CredentialUpdate, Delivery, NotificationEvent, SmtpSettings};
use berth_testkit::{hmac_sha256, Received, Receiver, SmtpServer};
use std::collections::HashSet;
use std::time::Duration;

const PUBLIC_URL: &str = "https://berth.example.com";

fn config(extra: &str) -> String {
    format!(
        "public_url = \"{PUBLIC_URL}/\"\n{extra}\n[notifications]\npoll_secs = 0.1\nfirst_retry_secs = 0.3\nexpiry_scan_secs = 0.3\n\n[checks]\npause_after_auth_failures = 1\n"
    )
}

fn webhook(name: &str, url: String) -> ChannelCreate {
    ChannelCreate {
        name: name.to_owned(),
        kind: "webhook".to_owned(),
        url: Some(url),
        secret: Some(HOOK_SECRET.to_owned()),
        smtp: None,
        events: Vec::new(),
        repository_pattern: None,
        credential: None,
        enabled: true,
    }
}

/// Every request `rx` got at `path`, once there are at least `n`.
async fn at_least(rx: &Receiver, path: &str, n: usize) -> Vec<Received> {
    harness::eventually(&format!("{n} requests at {path}"), || {
        let got = rx.at(path);
        async move { (got.len() >= n).then_some(got) }
    })
    .await
}

/// The event a request carries, after checking its signature, its headers and that it holds
/// no secret.
fn event_of(r: &Received) -> NotificationEvent {
    let body = String::from_utf8_lossy(&r.body).into_owned();
    harness::assert_no_secret("a webhook delivery", &body);
    assert_eq!(
        r.header("x-berth-signature"),
        Some(hmac_sha256(HOOK_SECRET, &r.body).as_str()),
        "signed with the secret"
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    let ev: NotificationEvent = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(r.header("x-berth-event"), Some(ev.event.as_str()));
    assert_eq!(r.header("x-berth-delivery"), Some(ev.delivery.as_str()));
    ev
}

fn kinds(rs: &[Received]) -> Vec<String> {
    rs.iter().map(|r| event_of(r).event).collect()
}

async fn delivery_log(api: &Api, channel: i64) -> Vec<Delivery> {
    api.channel_deliveries(channel).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_gets_one_signed_event_per_transition_retried_after_a_500() {
    let rx = Receiver::start().await;
    let b = Berth::start_with(Options { config_toml: Some(config("")), ..Options::default() }).await;
    b.api_token_credential("notify-cred").await;
    let repo = b.register("app", "team/app.git", "notify-cred").await;

    let all = b.api.create_channel(&webhook("ops", format!("{}/hook/all", rx.base_url()))).await.unwrap();
    assert_eq!(b.api.status(), 201);
    assert_eq!(all.url.as_deref(), Some(format!("{}/hook/all", rx.base_url()).as_str()));
    let recovered_only = ChannelCreate {
        events: vec!["repository.recovered".into()],
        repository_pattern: Some("AP*".into()),
        ..webhook("recovered-only", format!("{}/hook/recovered", rx.base_url()))
    };
    b.api.create_channel(&recovered_only).await.unwrap();
    let others = ChannelCreate {
        repository_pattern: Some("nomatch-*".into()),
        ..webhook("other-repos", format!("{}/hook/other", rx.base_url()))
    };
    b.api.create_channel(&others).await.unwrap();
    // Bad settings are refused by name; nothing is stored.
    let short = ChannelCreate { secret: Some("too-short".into()), ..webhook("weak", format!("{}/x", rx.base_url())) };
    let e = harness::refused(b.api.create_channel(&short).await);
    assert_eq!((b.api.status(), e.code()), (422, Some(berth_core::Code::InvalidInput)), "{e}");
    let unknown = ChannelCreate { events: vec!["repository.exploded".into()], ..webhook("x1", rx.base_url().into()) };
    harness::refused(b.api.create_channel(&unknown).await);
    assert_eq!(b.api.list_channels().await.unwrap().len(), 3);

    // The repository stops answering: the receiver refuses the first attempt with a 500.
    rx.answer_next(&[500]);
    let repos = b.repos.path().join("team");
    std::fs::rename(repos.join("app.git"), repos.join("app-away.git")).unwrap();
    for _ in 0..2 {
        let c = b.api.check_repository(repo).await;
        assert!(c.is_ok_and(|c| !c.ok), "the check fails while the repository is away");
    }
    let got = at_least(&rx, "/hook/all", 2).await;
    let (first, retry) = (event_of(&got[0]), event_of(&got[1]));
    assert_eq!((first.event.as_str(), first.delivery.as_str()), ("repository.failed", retry.delivery.as_str()));
    assert_eq!(first.id, retry.id, "the retry carries the same event");
    assert_eq!(first.subject.url.as_deref(), Some(format!("{PUBLIC_URL}/repositories/{repo}").as_str()));
    assert_eq!((first.subject.kind.as_str(), first.subject.name.as_str()), ("repository", "app"));
    assert!(matches!(first.old_status.as_deref(), Some("ok" | "warn")), "{first:?}");
    assert_eq!(first.new_status.as_deref(), Some("fail"));
    let finding = first.finding.clone().unwrap();
    assert!(finding.code.is_some() && finding.message.is_some() && finding.remedy.is_some(), "{finding:?}");
    let all_id = all.id;
    let log = harness::eventually("the retry recorded", || {
        let api = b.api.clone();
        async move {
            let log = delivery_log(&api, all_id).await;
            (log.first().is_some_and(|d| d.state == "delivered")).then_some(log)
        }
    })
    .await;
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].attempts, log[0].status_code, log[0].event.as_str()), (2, Some(200), "repository.failed"));

    // Back: one recovered event, to the channels whose filters take it.
    std::fs::rename(repos.join("app-away.git"), repos.join("app.git")).unwrap();
    for _ in 0..2 {
        b.api.check_repository(repo).await.unwrap();
    }
    let got = at_least(&rx, "/hook/all", 3).await;
    assert_eq!(kinds(&got[2..]), ["repository.recovered"]);
    let only = at_least(&rx, "/hook/recovered", 1).await;
    assert_eq!(kinds(&only), ["repository.recovered"]);

    // A wrong token: the check fails authentication, which (after one failure here) pauses
    // the credential's checks: a failed event and a paused event, each once.
    let upd = CredentialUpdate { secret: Some(NOTIFY_WRONG_TOKEN.into()), ..CredentialUpdate::default() };
    b.api.update_credential(b.api.list_credentials().await.unwrap()[0].id, &upd).await.unwrap();
    b.api.check_repository(repo).await.unwrap();
    let got = at_least(&rx, "/hook/all", 5).await;
    let mut later: Vec<String> = kinds(&got[3..]);
    later.sort();
    assert_eq!(later, ["credential.checks_paused", "repository.failed"]);

    // A token nearing its expiry: one event for the 7-day window, however often it is scanned.
    let mut c = harness::new_credential("expiring", berth_core::CredentialKind::BitbucketApiToken, harness::TOKEN);
    c.email = Some("jo@example.com".into());
    c.expires_on = Some(chrono::Utc::now().date_naive() + chrono::Days::new(5));
    b.api.create_credential(&c).await.unwrap();
    let got = at_least(&rx, "/hook/all", 6).await;
    let ev = event_of(&got[5]);
    assert_eq!((ev.event.as_str(), ev.details["window_days"].as_i64()), ("credential.expiring", Some(7)));
    assert_eq!(
        ev.subject.url.as_deref(),
        Some(format!("{PUBLIC_URL}/credentials/{}", ev.subject.id.unwrap()).as_str())
    );

    // A token past its expiry date: one `credential.expired`, with how long ago.
    let mut c = harness::new_credential("lapsed", berth_core::CredentialKind::BitbucketApiToken, harness::TOKEN);
    c.email = Some("jo@example.com".into());
    c.expires_on = Some(chrono::Utc::now().date_naive() - chrono::Days::new(2));
    b.api.create_credential(&c).await.unwrap();
    let got = at_least(&rx, "/hook/all", 7).await;
    let ev = event_of(&got[6]);
    assert_eq!((ev.event.as_str(), ev.details["days_ago"].as_i64()), ("credential.expired", Some(2)), "{ev:?}");
    assert_eq!(ev.subject.name, "lapsed");

    // A test event, then the same event redelivered under a new delivery id.
    let d = b.api.test_channel(all_id).await.unwrap();
    assert_eq!((b.api.status(), d.event.as_str()), (202, "test"));
    let got = at_least(&rx, "/hook/all", 8).await;
    let test = event_of(&got[7]);
    assert_eq!((test.event.as_str(), test.delivery.as_str()), ("test", d.delivery_id.as_str()));
    let again = b.api.redeliver(d.id).await.unwrap();
    assert_ne!(again.delivery_id, d.delivery_id);
    let got = at_least(&rx, "/hook/all", 9).await;
    let redelivered = event_of(&got[8]);
    assert_eq!((redelivered.id, redelivered.delivery.as_str()), (test.id, again.delivery_id.as_str()));

    // Nothing more arrives: one event per transition, none per check or scan.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rx.at("/hook/all").len(), 9, "{:?}", kinds(&rx.at("/hook/all")));
    assert_eq!(rx.at("/hook/recovered").len(), 1);
    assert!(rx.at("/hook/other").is_empty(), "a pattern that matches nothing takes nothing");
    let ids: HashSet<String> = rx.at("/hook/all")[1..].iter().map(|r| event_of(r).delivery).collect();
    assert_eq!(ids.len(), 8, "every delivery has its own id");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_messages_and_email_over_starttls_reach_real_receivers() {
    let rx = Receiver::start().await;
    let smtp =
        SmtpServer::start("berth-mailer", SMTP_PASSWORD).await.expect("python3-aiosmtpd (scripts/test installs it)");
    let ca = smtp.ca_file();
    let extra = format!("[git]\nextra_ca_files = [\"{}\"]\n", ca.display());
    // `[git]` is a table: the top-level `public_url` must come first, so the table goes last.
    let toml = config("").replace("\n[notifications]", &format!("\n{extra}\n[notifications]"));
    let b = Berth::start_with(Options { config_toml: Some(toml), ..Options::default() }).await;

    // Slack: the hook URL is a secret, so the channel shows only its host.
    let hook = format!("{}/services/T0001/B0001/{SLACK_HOOK_TOKEN}", rx.base_url());
    let slack = ChannelCreate { kind: "slack".into(), secret: None, ..webhook("chat", hook) };
    let slack = b.api.create_channel(&slack).await.unwrap();
    assert!(slack.url.is_none() && slack.target.contains("127.0.0.1"), "{slack:?}");
    b.api.test_channel(slack.id).await.unwrap();
    let path = format!("/services/T0001/B0001/{SLACK_HOOK_TOKEN}");
    let got = at_least(&rx, &path, 1).await;
    // Slack's incoming-webhook payload: `text` (the notification and the fallback) and
    // optional `blocks` of `section`s with `mrkdwn` text; nothing else.
    let msg = got[0].json();
    let keys: HashSet<&str> = msg.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, HashSet::from(["text", "blocks"]));
    assert!(msg["text"].as_str().unwrap().starts_with("Test event for notification channel chat"), "{msg}");
    for block in msg["blocks"].as_array().unwrap() {
        assert_eq!(block["type"], "section");
        assert_eq!(block["text"]["type"], "mrkdwn");
        assert!(!block["text"]["text"].as_str().unwrap().is_empty());
    }
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    assert!(got[0].header("x-berth-signature").is_none(), "Slack hooks are not signed");

    // Email through the real SMTP server: STARTTLS (its CA from extra_ca_files), AUTH, 250.
    let mail = |name: &str, password: &str| ChannelCreate {
        name: name.to_owned(),
        kind: "email".into(),
        url: None,
        secret: None,
        smtp: Some(SmtpSettings {
            host: "127.0.0.1".into(),
            port: smtp.port,
            security: "starttls".into(),
            username: Some("berth-mailer".into()),
            password: Some(password.to_owned()),
            from: "Berth <berth@example.com>".into(),
            to: vec!["ops@example.com".into()],
        }),
        events: Vec::new(),
        repository_pattern: None,
        credential: None,
        enabled: true,
    };
    let email = b.api.create_channel(&mail("mail", SMTP_PASSWORD)).await.unwrap();
    assert_eq!(email.smtp.as_ref().map(|s| s.port), Some(smtp.port));
    let email_id = email.id;
    b.api.test_channel(email_id).await.unwrap();
    let messages = harness::eventually("the mail to arrive", || {
        let m = smtp.messages();
        async move { (!m.is_empty()).then_some(m) }
    })
    .await;
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    harness::assert_no_secret("a notification email", m);
    assert!(m.contains("Subject: [Berth] Test event for notification channel mail"), "{m}");
    assert!(m.contains("To: ops@example.com") && m.contains("berth@example.com"), "{m}");
    let log = harness::eventually("the mail's delivery recorded", || {
        let api = b.api.clone();
        async move { delivery_log(&api, email_id).await.into_iter().find(|d| d.state == "delivered") }
    })
    .await;
    assert_eq!(log.status_code, Some(250));

    // A wrong password: refused by the server (535), kept pending for a retry, nothing sent.
    let wrong_id = b.api.create_channel(&mail("mail-wrong", SMTP_WRONG_PASSWORD)).await.unwrap().id;
    b.api.test_channel(wrong_id).await.unwrap();
    let failed = harness::eventually("the refused attempt recorded", || {
        let api = b.api.clone();
        async move { delivery_log(&api, wrong_id).await.into_iter().find(|d| d.attempts > 0) }
    })
    .await;
    assert_eq!((failed.state.as_str(), failed.status_code), ("pending", Some(535)), "{failed:?}");
    assert!(failed.error.as_deref().is_some_and(|e| e.contains("SMTP")), "{failed:?}");
    assert_eq!(smtp.messages().len(), 1);
    b.stop().await;
    smtp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_postgresql_deliver_each_event_once() {
    harness::init();
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = berth_testkit::pg::PgCluster::shared().create_database();
    let wal_start = harness::postgres_wal_position(&db);
    berth_store::Keyring::load_or_create(&dir.path().join("master.key")).unwrap();
    let cfg = dir.path().join("berth.toml");
    std::fs::write(&cfg, "[notifications]\npoll_secs = 0.05\nfirst_retry_secs = 0.3\n[checks]\nenabled = false\n")
        .unwrap();
    let mut children = Vec::new();
    let mut bases = Vec::new();
    for id in ["n1", "n2", "n3"] {
        let port = harness::free_port();
        let child = harness::serve_command(port, &db, dir.path(), &dir.path().join(format!("{id}.log")))
            .env("BERTH_MASTER_KEY_FILE", dir.path().join("master.key"))
            .env("BERTH_ADMIN_PASSWORD", INSTANCES_ADMIN_PASSWORD)
            .env("BERTH_CONFIG", &cfg)
            .env("BERTH_INSTANCE_ID", id)
            .spawn()
            .unwrap();
        children.push(child);
        bases.push(format!("http://127.0.0.1:{port}"));
    }
    for base in &bases {
        assert!(harness::serve_ready(base).await, "an instance did not start");
    }
    let session = Api::login(&bases[0], "admin", INSTANCES_ADMIN_PASSWORD).await;
    let api: Vec<Api> = bases.iter().map(|b| Api::new(b, session.token())).collect();
    let ch = api[0].create_channel(&webhook("shared", format!("{}/hook", rx.base_url()))).await.unwrap();
    // Some attempts are refused, so retries are leased again too.
    rx.answer_next(&[500, 500, 500]);
    const EVENTS: usize = 30;
    let mut queued = HashSet::new();
    for i in 0..EVENTS {
        queued.insert(api[i % 3].test_channel(ch.id).await.unwrap().delivery_id);
    }
    at_least(&rx, "/hook", EVENTS + 3).await;
    // Several polls of every instance for any duplicate to show up.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got_now = rx.at("/hook");
    assert_eq!(got_now.len(), EVENTS + 3, "requests for {EVENTS} events and 3 refusals");
    let delivered: HashSet<String> = got_now.iter().map(|r| event_of(r).delivery).collect();
    assert_eq!(delivered, queued, "every event, each under its own delivery id");
    let log = delivery_log(&api[1], ch.id).await;
    assert_eq!(log.iter().filter(|d| d.state == "delivered").count(), EVENTS);
    assert_eq!(log.iter().map(|d| d.attempts).sum::<i64>(), i64::try_from(EVENTS + 3).unwrap());
    for c in &mut children {
        let _ = c.start_kill();
        let _ = c.wait().await;
    }
    harness::assert_dir_clean("the instances' directory and logs", dir.path());
    harness::assert_postgres_clean("the instances' database", &db, wal_start);
    harness::assert_no_leaks_recorded();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_are_managed_from_the_cli_and_the_web_pages() {
    use crate::cli::{berth, signed_in};
    let rx = Receiver::start().await;
    let b = Berth::start_with(Options { config_toml: Some(config("")), ..Options::default() }).await;

    // The CLI: the signing secret from stdin, never from the command line.
    let (_dir, session) = signed_in(&b).await;
    let url = format!("{}/cli", rx.base_url());
    let add = ["channel", "add", "from-cli", "--webhook", &url, "--secret-stdin", "--event", "repository.failed"];
    let run = berth(&b, &session, &add, Some(&format!("{HOOK_SECRET}\n"))).await;
    assert_eq!(run.code, 0, "{}", run.all());
    let run = berth(&b, &session, &["channel", "list"], None).await;
    assert!(run.stdout.contains("from-cli") && run.stdout.contains("repository.failed"), "{}", run.all());
    let run = berth(&b, &session, &["--json", "channel", "test", "from-cli"], None).await;
    assert_eq!(run.code, 0, "{}", run.all());
    let queued: Delivery = serde_json::from_str(&run.stdout).unwrap();
    let got = at_least(&rx, "/cli", 1).await;
    assert_eq!(event_of(&got[0]).delivery, queued.delivery_id);
    let run = berth(&b, &session, &["channel", "rm", "from-cli"], None).await;
    assert_eq!(run.code, 0, "{}", run.all());
    let run = berth(&b, &session, &["channel", "show", "from-cli"], None).await;
    assert_ne!(run.code, 0, "a deleted channel is not found: {}", run.all());

    // The web pages: add a channel, send a test event from its page, see the delivery logged.
    let web = crate::harness::web::signed_in(&b).await;
    let page = web.page("/admin/notifications").await;
    assert!(page.contains("No channels yet") && page.contains("channel_form"), "{page}");
    let url = format!("{}/web", rx.base_url());
    let form = [("name", "from-web"), ("kind", "webhook"), ("url", url.as_str()), ("secret", HOOK_SECRET)];
    let (status, _) = web.post("/admin/notifications", "/admin/notifications", &form).await;
    assert_eq!(status, 303);
    let page = web.page("/admin/notifications").await;
    assert!(page.contains("from-web") && !page.contains(HOOK_SECRET), "{page}");
    let id = b.api.list_channels().await.unwrap()[0].id;
    let (status, _) = web.post(&format!("/admin/notifications/{id}/test"), "/admin/notifications", &[]).await;
    assert_eq!(status, 303);
    let got = at_least(&rx, "/web", 1).await;
    assert_eq!(event_of(&got[0]).event, "test");
    let page = harness::eventually("the delivery shown", || {
        let web = &web;
        async move {
            let p = web.page(&format!("/admin/notifications/{id}")).await;
            p.contains("delivery-delivered").then_some(p)
        }
    })
    .await;
    assert!(page.contains("Redeliver"), "{page}");
    // A refused form says why and stores nothing.
    let bad = [("name", "weak"), ("kind", "webhook"), ("url", url.as_str()), ("secret", "short")];
    let (status, _) = web.post("/admin/notifications", "/admin/notifications", &bad).await;
    assert_eq!(status, 303);
    assert_eq!(b.api.list_channels().await.unwrap().len(), 1);

    // The network policy applies to channel URLs: the cloud metadata address is refused
    // before any connection, and the attempt says so.
    let metadata = b.api.create_channel(&webhook("metadata", "http://169.254.169.254/latest".into())).await.unwrap().id;
    b.api.test_channel(metadata).await.unwrap();
    let refused = harness::eventually("the refused attempt recorded", || {
        let api = b.api.clone();
        async move { delivery_log(&api, metadata).await.into_iter().find(|d| d.attempts > 0) }
    })
    .await;
    assert_eq!(refused.state, "pending", "{refused:?}");
    assert!(refused.error.as_deref().is_some_and(|e| e.starts_with("destination_forbidden")), "{refused:?}");
    b.stop().await;
}
