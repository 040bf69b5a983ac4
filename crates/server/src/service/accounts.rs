//! Accounts: users and their roles (administrators), instance-wide security settings, and what
//! every user does to their own account (password, second factor).

use crate::auth::{self, Action, CurrentUser, Role, ADMIN_ROLE};
use crate::service::paging::{self, Kind, PageRequest};
use crate::service::sessions::{check_password, check_second_factor, has_second_factor, second_factor_required};
use crate::service::{Conflict, Entity, Error, Result};
use crate::state::AppState;
use berth_proto::{Me, Page, Settings, User, UserCreate, UserUpdate};
use berth_store::{Store, StoreError, UserSummary};
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};

// ------------------------------------------------------------------------------- the first administrator

/// Creates the first administrator when the database has no user. The password comes from
/// `BERTH_ADMIN_PASSWORD`, or is generated and returned so the caller can print it once.
pub async fn bootstrap_admin(store: &Store, configured: Option<&SecretString>) -> Result<Option<String>> {
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    let (password, generated) = match configured {
        Some(p) => (p.clone(), None),
        None => {
            let p = auth::secrets::random_b64(18);
            (SecretString::from(p.clone()), Some(p))
        }
    };
    let hash = auth::hash_password(&password)?;
    match store.create_user("admin", &hash, ADMIN_ROLE).await {
        Ok(_) => Ok(generated),
        // Another instance created it first.
        Err(StoreError::NameTaken { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

// ------------------------------------------------------------------------------- users (administrators)

fn to_wire(u: UserSummary) -> User {
    let now = Utc::now();
    User {
        id: u.id,
        username: u.username,
        role: u.role,
        totp_enabled: u.totp_enabled,
        single_sign_on: u.single_sign_on,
        failed_logins: u.failed_logins,
        locked_until: u.locked_until.filter(|l| *l > now),
        created_at: u.created_at,
        updated_at: u.updated_at,
    }
}

fn parse_role(role: &str) -> Result<Role> {
    Role::parse(role).ok_or_else(|| {
        Error::invalid(
            format!("unknown role {:?}", role.chars().take(40).collect::<String>()),
            "use admin, registrar or viewer",
        )
    })
}

fn validate_username(name: &str) -> Result<String> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 64 || !n.chars().all(|c| c.is_alphanumeric() || "._-@".contains(c)) {
        return Err(Error::invalid(
            "the username must be 1 to 64 letters, digits or . _ - @",
            "choose a name without spaces or other symbols",
        ));
    }
    Ok(n.to_owned())
}

/// Who the caller is and what their role allows.
pub fn me(u: &CurrentUser) -> Me {
    Me {
        id: u.user.id,
        username: u.user.username.clone(),
        role: u.role.as_str().to_owned(),
        allowed: Action::ALL.iter().filter(|a| u.may(**a)).map(|a| a.as_str().to_owned()).collect(),
    }
}

pub async fn list_users(st: &AppState, u: &CurrentUser) -> Result<Vec<User>> {
    u.require(Action::ManageUsers)?;
    Ok(st.store.list_users().await?.into_iter().map(to_wire).collect())
}

/// A page of users by name (case-insensitive).
pub async fn users_page(st: &AppState, u: &CurrentUser, page: &PageRequest) -> Result<Page<User>> {
    u.require(Action::ManageUsers)?;
    let after = page.key(Kind::Users)?;
    let limit = page.limit();
    let rows = st.store.users_page(after.as_deref(), limit + 1).await?;
    let total = st.store.count_users().await?;
    Ok(paging::page_of(rows, limit, total, Kind::Users, |u| u.username.clone(), to_wire))
}

async fn user(st: &AppState, id: i64) -> Result<User> {
    st.store.list_users().await?.into_iter().find(|x| x.id == id).map(to_wire).ok_or(Error::NotFound(Entity::User))
}

pub async fn create_user(st: &AppState, u: &CurrentUser, req: UserCreate) -> Result<User> {
    u.require(Action::ManageUsers)?;
    let username = validate_username(&req.username)?;
    let role = parse_role(&req.role)?;
    auth::validate_password(&req.password)?;
    let hash = auth::hash_password_async(SecretString::from(req.password)).await?;
    let row = st.store.create_user(&username, &hash, role.as_str()).await?;
    u.audit(&st.store, "user.create", "user", Some(row.id), &row.username, format!("role {}", role.as_str())).await;
    user(st, row.id).await
}

/// Changes a user's role or resets their password (which ends their sessions and revokes their
/// API tokens: an administrator's reset is the answer to a compromised account).
pub async fn update_user(st: &AppState, u: &CurrentUser, id: i64, req: UserUpdate) -> Result<User> {
    u.require(Action::ManageUsers)?;
    let target = st.store.get_user(id).await?;
    // Validate everything before changing anything, so a refused password leaves the role as it was.
    if let Some(pw) = &req.password {
        auth::validate_password(pw)?;
    }
    let mut changed = Vec::new();
    if let Some(role) = req.role.as_deref() {
        let role = parse_role(role)?;
        if role.as_str() != target.role {
            // The store refuses to demote the last administrator, atomically.
            st.store.set_role(id, role.as_str()).await?;
            changed.push(format!("role {} -> {}", target.role, role.as_str()));
        }
    }
    if let Some(pw) = req.password {
        let hash = auth::hash_password_async(SecretString::from(pw)).await?;
        st.store.set_password(id, &hash, true).await?;
        changed.push("password reset; sessions ended and API tokens revoked".to_owned());
    }
    if !changed.is_empty() {
        u.audit(&st.store, "user.update", "user", Some(id), &target.username, changed.join("; ")).await;
    }
    user(st, id).await
}

pub async fn delete_user(st: &AppState, u: &CurrentUser, id: i64) -> Result<()> {
    u.require(Action::ManageUsers)?;
    let target = st.store.get_user(id).await?;
    if target.id == u.user.id {
        return Err(Error::Conflict(Conflict::DeleteSelf));
    }
    // The store refuses to delete the last administrator, atomically.
    st.store.delete_user(id).await?;
    st.store.clear_login_failures(&target.username).await?;
    u.audit(&st.store, "user.delete", "user", Some(id), &target.username, format!("role {}", target.role)).await;
    Ok(())
}

/// Forgets a user's failed sign-ins and lifts their lockout.
pub async fn clear_lockout(st: &AppState, u: &CurrentUser, id: i64) -> Result<()> {
    u.require(Action::ManageUsers)?;
    let target = st.store.get_user(id).await?;
    st.store.clear_login_failures(&target.username).await?;
    u.audit(&st.store, "user.lockout_clear", "user", Some(id), &target.username, "failed sign-ins forgotten").await;
    Ok(())
}

/// Removes a user's second factor and recovery codes (a lost phone).
pub async fn reset_totp(st: &AppState, u: &CurrentUser, id: i64) -> Result<()> {
    u.require(Action::ManageUsers)?;
    let target = st.store.get_user(id).await?;
    st.store.disable_totp(id).await?;
    let detail = "second factor and recovery codes removed";
    u.audit(&st.store, "user.2fa_reset", "user", Some(id), &target.username, detail).await;
    Ok(())
}

// ------------------------------------------------------------------------------- settings

pub async fn settings(st: &AppState, u: &CurrentUser) -> Result<Settings> {
    u.require(Action::ManageSettings)?;
    Ok(Settings { require_2fa: second_factor_required(&st.store).await? })
}

pub async fn update_settings(st: &AppState, u: &CurrentUser, s: Settings) -> Result<Settings> {
    u.require(Action::ManageSettings)?;
    let before = second_factor_required(&st.store).await?;
    st.store.set_setting("require_2fa", if s.require_2fa { "true" } else { "false" }).await?;
    if before != s.require_2fa {
        let detail = format!("require_2fa {before} -> {}", s.require_2fa);
        u.audit(&st.store, "settings.update", "settings", None, "require_2fa", detail).await;
    }
    settings(st, u).await
}

// ------------------------------------------------------------------------------- my account

/// Changes the caller's own password; every session of theirs ends, this one included.
/// A wrong current password counts like a failed sign-in, so a stolen session cannot guess freely.
pub async fn change_own_password(
    st: &AppState,
    u: &CurrentUser,
    current: &SecretString,
    new: SecretString,
) -> Result<()> {
    u.require(Action::ManageOwnAccount)?;
    match check_password(&st.store, &u.user.username, current, u.remote.as_deref()).await {
        Ok(_) => {}
        Err(Error::Unauthenticated(_)) => {
            return Err(Error::invalid("the current password is wrong", "type your current password again"))
        }
        Err(e) => return Err(e),
    }
    auth::validate_password(new.expose_secret())?;
    let hash = auth::hash_password_async(new).await?;
    st.store.set_password(u.user.id, &hash, false).await?;
    let detail = "own password; sessions ended";
    u.audit(&st.store, "user.password_change", "user", Some(u.user.id), &u.user.username, detail).await;
    Ok(())
}

/// The caller's second factor as the account pages show it.
#[derive(Debug, Clone, Copy)]
pub struct SecondFactor {
    pub enabled: bool,
    /// The instance requires two-factor sign-in.
    pub required: bool,
    pub recovery_codes_left: i64,
}

pub async fn second_factor(st: &AppState, u: &CurrentUser) -> Result<SecondFactor> {
    Ok(SecondFactor {
        enabled: has_second_factor(&st.store, u.user.id).await?,
        required: second_factor_required(&st.store).await?,
        recovery_codes_left: st.store.recovery_codes_left(u.user.id).await?,
    })
}

/// Starts enrolment: a new TOTP key, stored sealed and not yet enabled, returned to be shown
/// once. `None` when the caller has a second factor already.
pub async fn start_totp(st: &AppState, u: &CurrentUser) -> Result<Option<SecretString>> {
    u.require(Action::ManageOwnAccount)?;
    if has_second_factor(&st.store, u.user.id).await? {
        return Ok(None);
    }
    let secret = SecretString::from(auth::totp::generate_secret());
    st.store.set_pending_totp(u.user.id, &secret).await?;
    Ok(Some(secret))
}

/// How confirming a TOTP key went.
#[derive(Debug)]
pub enum TotpConfirm {
    /// Nothing to confirm: no key started, or the second factor is on already.
    NothingPending,
    /// The code does not match the started key, which is returned to be shown again.
    Mismatch { secret: SecretString },
    /// The second factor is on; these recovery codes are shown once.
    Enabled { recovery_codes: Vec<String> },
}

/// Ends enrolment with a code from the authenticator app.
pub async fn confirm_totp(st: &AppState, u: &CurrentUser, code: &str) -> Result<TotpConfirm> {
    u.require(Action::ManageOwnAccount)?;
    let uid = u.user.id;
    match st.store.totp_state(uid).await? {
        Some(t) if !t.enabled => {}
        _ => return Ok(TotpConfirm::NothingPending),
    }
    let secret = st.store.totp_secret(uid).await?;
    let code: String = code.chars().filter(char::is_ascii_digit).collect();
    let accepted = match auth::totp::verify(secret.expose_secret(), &code, Utc::now().timestamp()) {
        Some(step) => st.store.use_totp_step(uid, step).await?,
        None => false,
    };
    if !accepted {
        return Ok(TotpConfirm::Mismatch { secret });
    }
    let recovery_codes = auth::new_recovery_codes();
    let hashes: Vec<String> = recovery_codes.iter().map(|c| auth::recovery_code_hash(c)).collect();
    st.store.enable_totp(uid, &hashes).await?;
    let detail = "TOTP on; 10 recovery codes issued";
    u.audit(&st.store, "user.2fa_enable", "user", Some(uid), &u.user.username, detail).await;
    Ok(TotpConfirm::Enabled { recovery_codes })
}

/// Turns the caller's second factor off, proven with a current code or a recovery code
/// (counted like a sign-in). Refused where the instance requires it.
pub async fn disable_totp(st: &AppState, u: &CurrentUser, code: &str) -> Result<()> {
    u.require(Action::ManageOwnAccount)?;
    if second_factor_required(&st.store).await? {
        return Err(Error::Conflict(Conflict::SecondFactorRequired));
    }
    check_second_factor(&st.store, &u.user, code, u.remote.as_deref()).await?;
    st.store.disable_totp(u.user.id).await?;
    u.audit(&st.store, "user.2fa_disable", "user", Some(u.user.id), &u.user.username, "by the user").await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::testing;

    fn new_user(name: &str, role: &str) -> UserCreate {
        UserCreate { username: name.into(), password: "a long enough password".into(), role: role.into() }
    }

    #[tokio::test]
    async fn the_last_administrator_stays_and_cannot_delete_themselves() -> Result<()> {
        let st = testing::state().await?;
        let admin = testing::caller(&st, "admin").await?;
        let demote = UserUpdate { role: Some("viewer".into()), password: None };
        let e = update_user(&st, &admin, admin.user.id, demote).await.err();
        assert!(matches!(e, Some(Error::Conflict(Conflict::LastAdministrator))), "{e:?}");
        let e = delete_user(&st, &admin, admin.user.id).await.err();
        assert!(matches!(e, Some(Error::Conflict(Conflict::DeleteSelf))), "{e:?}");

        let viewer = create_user(&st, &admin, new_user("vera", "viewer")).await?;
        assert_eq!((viewer.role.as_str(), viewer.totp_enabled), ("viewer", false));
        let vera = testing::caller(&st, "vera").await?;
        let e = list_users(&st, &vera).await.err();
        assert!(matches!(e, Some(Error::Forbidden { role: Role::Viewer, action: Action::ManageUsers })), "{e:?}");
        let e = create_user(&st, &admin, new_user("bad name", "viewer")).await.err();
        assert!(matches!(e, Some(Error::Invalid(_))), "{e:?}");
        let e = create_user(&st, &admin, new_user("x", "root")).await.err();
        assert!(matches!(e, Some(Error::Invalid(_))), "{e:?}");
        let e = update_user(&st, &admin, 999_999, UserUpdate { role: None, password: None }).await.err();
        assert!(matches!(e, Some(Error::NotFound(Entity::User))), "{e:?}");
        delete_user(&st, &admin, viewer.id).await?;
        let actions: Vec<String> = st.store.list_audit(None, 10).await?.into_iter().map(|a| a.entry.action).collect();
        assert!(
            actions.contains(&"user.create".to_owned()) && actions.contains(&"user.delete".to_owned()),
            "{actions:?}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_wrong_current_password_is_refused_and_counted() -> Result<()> {
        let st = testing::state().await?;
        let admin = testing::caller(&st, "admin").await?;
        let new = || SecretString::from("a brand new password".to_owned());
        let e = change_own_password(&st, &admin, &SecretString::from("not it".to_owned()), new()).await.err();
        assert!(matches!(&e, Some(Error::Invalid(r)) if r.message == "the current password is wrong"), "{e:?}");
        let current = SecretString::from(testing::ADMIN_PASSWORD.to_owned());
        let e = change_own_password(&st, &admin, &current, SecretString::from("short".to_owned())).await.err();
        assert!(matches!(e, Some(Error::Invalid(_))), "{e:?}");
        change_own_password(&st, &admin, &current, new()).await?;
        let failures =
            st.store.list_users().await?.into_iter().find(|u| u.id == admin.user.id).map(|u| u.failed_logins);
        assert_eq!(failures, Some(1), "the wrong one counted like a sign-in");
        Ok(())
    }
}
