//! The suite's known secrets: every secret value it sends to Berth, by name, and what the
//! leak scan searches for.

/// Every secret value the end-to-end suite sends to Berth (or that Berth's test hosts accept),
/// by name. Tests use these constants rather than literals; `leaks.rs`
/// `every_secret_literal_in_the_suite_is_registered` fails on a secret literal that is not here.
pub const KNOWN_SECRETS: &[(&str, &str)] = &[
    ("ADMIN_PASSWORD", ADMIN_PASSWORD),
    ("TOKEN", TOKEN),
    ("ALICE_PASSWORD", ALICE_PASSWORD),
    ("REGISTRAR_PASSWORD", REGISTRAR_PASSWORD),
    ("VIEWER_PASSWORD", VIEWER_PASSWORD),
    ("WRONG_ADMIN_PASSWORD", WRONG_ADMIN_PASSWORD),
    ("WRONG_PASSWORD", WRONG_PASSWORD),
    ("WRONG_TOKEN", WRONG_TOKEN),
    ("WRONG_TOKEN_FROM_STDIN", WRONG_TOKEN_FROM_STDIN),
    ("REVOKED_TOKEN", REVOKED_TOKEN),
    ("ROTATED_SECRET", ROTATED_SECRET),
    ("OLD_TOKEN", OLD_TOKEN),
    ("APP_PASSWORD", APP_PASSWORD),
    ("UI_APP_PASSWORD", UI_APP_PASSWORD),
    ("UI_WRONG_PASSWORD", UI_WRONG_PASSWORD),
    ("ANOTHER_TOKEN", ANOTHER_TOKEN),
    ("DUPLICATE_NAME_SECRET", DUPLICATE_NAME_SECRET),
    ("ABUSE_TOKEN", ABUSE_TOKEN),
    ("ABUSE_SHORT_TOKEN", ABUSE_SHORT_TOKEN),
    ("NEW_USER_PASSWORD", NEW_USER_PASSWORD),
    ("LONG_ENOUGH_PASSWORD", LONG_ENOUGH_PASSWORD),
    ("VERA_RESET_PASSWORD", VERA_RESET_PASSWORD),
    ("RESET_ADMIN_PASSWORD", RESET_ADMIN_PASSWORD),
    ("URL_PASSWORD", URL_PASSWORD),
    ("CRASH_TOKEN", CRASH_TOKEN),
    ("CRASH_ADMIN_PASSWORD", CRASH_ADMIN_PASSWORD),
    ("INSTANCES_TOKEN", INSTANCES_TOKEN),
    ("INSTANCES_ADMIN_PASSWORD", INSTANCES_ADMIN_PASSWORD),
    ("SIM_GOOD", SIM_GOOD),
    ("SIM_LEE", SIM_LEE),
    ("SIM_READ_ONLY", SIM_READ_ONLY),
    ("VERDICT_WRONG_TOKEN", VERDICT_WRONG_TOKEN),
    ("SIM_NOREAD", SIM_NOREAD),
    ("SIM_CLASSIC", SIM_CLASSIC),
    ("SIM_EXPIRED", SIM_EXPIRED),
    ("SIM_APP_PASSWORD", SIM_APP_PASSWORD),
    ("SIM_REPO_ACCESS_TOKEN", SIM_REPO_ACCESS_TOKEN),
    ("SIM_DC_TOKEN", SIM_DC_TOKEN),
    ("SIM_GITHUB_TOKEN", SIM_GITHUB_TOKEN),
    ("LEAK_WRONG_TOKEN", LEAK_WRONG_TOKEN),
    ("LEAK_WEB_SECRET", LEAK_WEB_SECRET),
    ("HOOK_SECRET", HOOK_SECRET),
    ("HOOKS_CLOUD_TOKEN", HOOKS_CLOUD_TOKEN),
    ("HOOKS_CLOUD_NO_WEBHOOK", HOOKS_CLOUD_NO_WEBHOOK),
    ("HOOKS_DC_TOKEN", HOOKS_DC_TOKEN),
    ("HOOKS_GITHUB_TOKEN", HOOKS_GITHUB_TOKEN),
    ("HOOKS_GITHUB_NO_HOOK", HOOKS_GITHUB_NO_HOOK),
    ("SLACK_HOOK_TOKEN", SLACK_HOOK_TOKEN),
    ("SMTP_PASSWORD", SMTP_PASSWORD),
    ("SMTP_WRONG_PASSWORD", SMTP_WRONG_PASSWORD),
    ("NOTIFY_WRONG_TOKEN", NOTIFY_WRONG_TOKEN),
    ("BACKUP_PASSPHRASE", BACKUP_PASSPHRASE),
    ("BACKUP_WRONG_PASSPHRASE", BACKUP_WRONG_PASSPHRASE),
    ("BACKUP_ACCESS_TOKEN", BACKUP_ACCESS_TOKEN),
    ("PROXY_PASSWORD", PROXY_PASSWORD),
    ("WRONG_PROXY_PASSWORD", WRONG_PROXY_PASSWORD),
    ("SSH_KEY_PASSPHRASE", SSH_KEY_PASSPHRASE),
    ("OUTAGE_UNSTORED_TOKEN", OUTAGE_UNSTORED_TOKEN),
    ("SSO_ADMIN_PASSWORD", SSO_ADMIN_PASSWORD),
    ("SSO_LOCAL_PASSWORD", SSO_LOCAL_PASSWORD),
    ("OIDC_CLIENT_SECRET", OIDC_CLIENT_SECRET),
    ("OIDC_OTHER_CLIENT_SECRET", OIDC_OTHER_CLIENT_SECRET),
];

/// Secret literals the suite uses that are too short or too common to search for (the scan
/// would find them in ordinary text). Each is refused before Berth stores or uses it.
pub const NOT_SCANNED: &[(&str, &str)] = &[
    ("short", "a password refused for being too short"),
    ("x", "a sign-in attempt for an unknown name"),
    ("t", "the secret of a form refused for its missing CSRF token"),
];

/// User names the suite pairs with secrets in HTTP Basic authentication: the scan also looks
/// for the base64 of every `user:secret` pair (the alignment fragments below find any base64
/// text that contains a secret; these are the whole headers, searched as well).
pub const BASIC_AUTH_USERS: &[&str] = &[
    "x-bitbucket-api-token-auth",
    "alice",
    "jo",
    "jo@example.com",
    "lee",
    "lee@example.com",
    "admin",
    "vera",
    "reggie",
    "berth-proxy",
];

/// The log filter of every Berth this suite runs, in this process or as a child (`RUST_LOG`).
pub const LOG_FILTER: &str = "warn,berth=trace,berth_server=trace,berth_store=trace,berth_git=trace,berth_forge=trace,\
     berth_core=trace,berth_proto=trace,tower_http=debug,reqwest=debug,hyper=debug,hyper_util=debug,axum=debug,sqlx=debug";

/// The shortest value the scan searches for; shorter literals are in [`NOT_SCANNED`].
pub const MIN_SECRET_LEN: usize = 8;

pub const ADMIN_PASSWORD: &str = "admin-password-e2e-9c1f";
/// The API token the test Git server accepts for `x-bitbucket-api-token-auth`.
pub const TOKEN: &str = "ATATT3xFfGF0e2e-known-secret-4d8b1a";
/// Alice's password on the test Git server. It has characters that percent-encoding, form
/// encoding, HTML escaping and URL-safe base64 each change, so each of those forms is searched
/// for something different from the raw value.
pub const ALICE_PASSWORD: &str = "alice>>>?~known pass/word+&=%77aa";
pub const REGISTRAR_PASSWORD: &str = "registrar-password-3b7e";
pub const VIEWER_PASSWORD: &str = "viewer-password-a41c90";
pub const WRONG_ADMIN_PASSWORD: &str = "wrong-admin-password-e2e-51";
pub const WRONG_PASSWORD: &str = "wrong-password";
pub const WRONG_TOKEN: &str = "wrong-token";
pub const WRONG_TOKEN_FROM_STDIN: &str = "wrong-token-from-stdin";
pub const REVOKED_TOKEN: &str = "revoked-token-0000000000";
pub const ROTATED_SECRET: &str = "rotated-secret-value-123";
pub const OLD_TOKEN: &str = "an-old-token";
pub const APP_PASSWORD: &str = "apppw-retired-e2e-0c4d";
/// The app password `ui.rs` types into the web form.
pub const UI_APP_PASSWORD: &str = "app-password-value";
/// The wrong password `ui.rs` signs in with.
pub const UI_WRONG_PASSWORD: &str = "wrong password";
pub const ANOTHER_TOKEN: &str = "tok-123456";
pub const DUPLICATE_NAME_SECRET: &str = "dup-name-secret-e2e-7f";
pub const ABUSE_TOKEN: &str = "tok-abuse-123456";
pub const ABUSE_SHORT_TOKEN: &str = "t-123456";
pub const NEW_USER_PASSWORD: &str = "a-long-password-1";
pub const LONG_ENOUGH_PASSWORD: &str = "long-enough-pass";
pub const VERA_RESET_PASSWORD: &str = "a-fresh-password-for-vera";
pub const RESET_ADMIN_PASSWORD: &str = "a-brand-new-password";
/// The password pasted inside a clone URL (refused as `secret_in_url`).
pub const URL_PASSWORD: &str = "hunter2secret";
pub const CRASH_TOKEN: &str = "ATATT3xFfGF0-crash-known-secret-93d1";
pub const CRASH_ADMIN_PASSWORD: &str = "admin-password-crash-5e0a";
pub const INSTANCES_TOKEN: &str = "ATATT3xFfGF0-instances-known-secret-51c2";
pub const INSTANCES_ADMIN_PASSWORD: &str = "admin-password-instances-2b7e";
pub const SIM_GOOD: &str = "ATATT3xFfGF0-sim-good-token-0001";
pub const SIM_NOREAD: &str = "ATATT3xFfGF0-sim-noread-0002";
pub const SIM_CLASSIC: &str = "ATATT3xFfGF0-sim-classic-0003";
pub const SIM_EXPIRED: &str = "ATATT3xFfGF0-sim-expired-0004";
pub const SIM_APP_PASSWORD: &str = "ATBBsimAppPassword00000000005";
pub const SIM_REPO_ACCESS_TOKEN: &str = "sim-repo-access-token-0006";
pub const SIM_DC_TOKEN: &str = "dc-personal-token-0007";
pub const SIM_GITHUB_TOKEN: &str = "ghp_simClassicToken00000000000000000008";
pub const SIM_LEE: &str = "ATATT3xFfGF0-sim-lee-0009";
/// A token with only `read:repository:bitbucket`, as the README's example records it.
pub const SIM_READ_ONLY: &str = "ATATT3xFfGF0-sim-read-only-0010";
/// A token no host knows, stored to be verified and refused.
pub const VERDICT_WRONG_TOKEN: &str = "ATATT3xFfGF0-verdict-wrong-7c31";
pub const LEAK_WRONG_TOKEN: &str = "ATATT3xFfGF0-leaks-wrong-token-6a2e";
pub const LEAK_WEB_SECRET: &str = "web form secret/+&=%-leaks-88b0";
/// The password of the test proxy's user (`outbound.rs`), read by Berth from a file.
pub const PROXY_PASSWORD: &str = "proxy-pass-e2e-31f7c2";
pub const WRONG_PROXY_PASSWORD: &str = "proxy-wrong-e2e-8d02";

/// A webhook channel's signing secret (`notifications.rs`).
pub const HOOKS_CLOUD_TOKEN: &str = "ATATT-hooks-cloud-token-e2e-5a1d";
pub const HOOKS_CLOUD_NO_WEBHOOK: &str = "ATATT-hooks-cloud-nowebhook-e2e-8e2f";
pub const HOOKS_DC_TOKEN: &str = "hooks-dc-admin-token-e2e-31b7";
pub const HOOKS_GITHUB_TOKEN: &str = "ghp_hooksGithubToken000000000000000e2e9";
pub const HOOKS_GITHUB_NO_HOOK: &str = "ghp_hooksGithubNoHook00000000000000e2e4";
pub const HOOK_SECRET: &str = "berth-hook-signing-secret-e2e-71c3";
/// The secret part of a Slack hook URL (`/services/T…/B…/<this>`).
pub const SLACK_HOOK_TOKEN: &str = "slack-hook-secret-e2e-5d2a";
/// The test SMTP server's password for Berth's mail user, and a wrong one.
pub const SMTP_PASSWORD: &str = "smtp-password-e2e-0b9f";
pub const SMTP_WRONG_PASSWORD: &str = "smtp-wrong-password-e2e-33aa";
/// A token the test Git server refuses, to pause a credential's checks.
pub const NOTIFY_WRONG_TOKEN: &str = "ATATT3xFfGF0-notify-wrong-token-8e4f";

/// The passphrase of the protected SSH key `ssh.rs` pastes (the key itself is made per run and
/// registered with the scan line by line).
pub const SSH_KEY_PASSPHRASE: &str = "ssh passphrase/+&=%-e2e-41d7";

/// The token a credential replacement sends while the database is away (`outage.rs`): refused,
/// never stored.
pub const OUTAGE_UNSTORED_TOKEN: &str = "ATATT3xFfGF0-not-stored-during-outage";

/// Single sign-on (`sso.rs`): the break-glass administrator's password, a local user's (whose
/// password sign-in is refused), Berth's client secret at the OpenID provider, and another
/// client's.
pub const SSO_ADMIN_PASSWORD: &str = "break-glass admin password 7a1e";
pub const SSO_LOCAL_PASSWORD: &str = "local user password sso 93bd";
pub const OIDC_CLIENT_SECRET: &str = "oidc-client-secret-berth-e2e-55c1f0";
pub const OIDC_OTHER_CLIENT_SECRET: &str = "oidc-client-secret-other-e2e-a9d304";

/// The passphrase a snapshot's master key is sealed under, and a wrong one (`backup.rs`).
pub const BACKUP_PASSPHRASE: &str = "backup passphrase e2e 4c7d19";
pub const BACKUP_WRONG_PASSPHRASE: &str = "not the backup passphrase 0e1f";
/// A bearer token stored (never sent) so a migration carries every credential kind.
pub const BACKUP_ACCESS_TOKEN: &str = "ghp_backupAccessToken0000000000000e2e";

/// A value no test may leak, planted on purpose by the positive controls in `leaks.rs`: its
/// hits are kept apart (see [`canary_hits`]) instead of failing the suite.
pub const CANARY: &str = "canary>>>?~leak/+ &=%4fd2-e2e";
