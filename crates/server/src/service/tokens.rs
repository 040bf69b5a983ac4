//! Personal API tokens for automation. Creating one shows the token once; the database keeps
//! its SHA-256. Each user manages their own; revoked tokens stay listed.

use crate::auth::{self, Action, CurrentUser, Via};
use crate::service::{Entity, Error, Refusal, Result};
use crate::state::AppState;
use berth_core::Code;
use berth_proto::{ApiToken, ApiTokenCreate, ApiTokenCreated};
use berth_store::ApiTokenRow;

/// The longest lifetime a token can be given.
const MAX_DAYS: u32 = 3650;

fn to_wire(t: ApiTokenRow) -> ApiToken {
    ApiToken {
        id: t.id,
        name: t.name,
        user_id: t.user_id,
        created_at: t.created_at,
        expires_at: t.expires_at,
        last_used_at: t.last_used_at,
        revoked_at: t.revoked_at,
    }
}

/// The caller's own tokens, revoked ones included.
pub async fn list(st: &AppState, u: &CurrentUser) -> Result<Vec<ApiToken>> {
    u.require(Action::ManageOwnAccount)?;
    Ok(st.store.list_api_tokens(Some(u.user.id)).await?.into_iter().map(to_wire).collect())
}

pub async fn create(st: &AppState, u: &CurrentUser, req: ApiTokenCreate) -> Result<ApiTokenCreated> {
    u.require(Action::ManageOwnAccount)?;
    // A token must not mint tokens: a leaked one could otherwise outlive its own expiry and
    // revocation by creating successors.
    if u.via == Via::ApiToken {
        return Err(Error::Refused(Refusal::new(
            Code::Forbidden,
            "a personal API token cannot create API tokens",
            "create tokens after signing in with a password (My account > API tokens, or POST /api/v1/auth/login)",
        )));
    }
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "the token name must be 1 to 100 printable characters",
            "name it after the automation that uses it",
        ));
    }
    let expires_at = match req.expires_in_days {
        Some(0) => {
            return Err(Error::invalid(
                "expires_in_days must be at least 1",
                "leave it out for a token that does not expire",
            ))
        }
        Some(d) => Some(chrono::Utc::now() + chrono::Duration::days(i64::from(d.min(MAX_DAYS)))),
        None => None,
    };
    let token = auth::new_personal_token();
    let row = st.store.create_api_token(u.user.id, name, &auth::token_hash(&token), expires_at).await?;
    let detail = expires_at.map_or_else(|| "no expiry".to_owned(), |e| format!("expires {}", e.format("%Y-%m-%d")));
    u.audit(&st.store, "token.create", "api_token", Some(row.id), &row.name, detail).await;
    Ok(ApiTokenCreated { token, info: to_wire(row) })
}

/// Revokes a token: it stops working at once. Another user's token is not found, unless an
/// administrator revokes it.
pub async fn revoke(st: &AppState, u: &CurrentUser, id: i64) -> Result<()> {
    u.require(Action::ManageOwnAccount)?;
    let t = st.store.get_api_token(id).await?;
    if t.user_id != u.user.id && !u.may(Action::ManageUsers) {
        return Err(Error::NotFound(Entity::Token));
    }
    st.store.revoke_api_token(id).await?;
    u.audit(&st.store, "token.revoke", "api_token", Some(id), &t.name, format!("owner id {}", t.user_id)).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::testing;

    #[tokio::test]
    async fn a_token_cannot_mint_tokens_and_others_tokens_are_not_found() -> Result<()> {
        let st = testing::state().await?;
        let admin = testing::caller(&st, "admin").await?;
        let created = create(&st, &admin, ApiTokenCreate { name: "ci".into(), expires_in_days: Some(30) }).await?;
        assert!(created.token.starts_with("berthpat_") && created.info.expires_at.is_some());
        let via_token = crate::service::sessions::bearer_caller(&st, Some(&created.token), None).await?;
        assert_eq!(via_token.via, Via::ApiToken);
        let e = create(&st, &via_token, ApiTokenCreate { name: "child".into(), expires_in_days: None }).await.err();
        assert!(matches!(&e, Some(Error::Refused(r)) if r.code == Code::Forbidden), "{e:?}");
        let e = create(&st, &admin, ApiTokenCreate { name: " ".into(), expires_in_days: None }).await.err();
        assert!(matches!(e, Some(Error::Invalid(_))), "{e:?}");
        let e = create(&st, &admin, ApiTokenCreate { name: "zero".into(), expires_in_days: Some(0) }).await.err();
        assert!(matches!(e, Some(Error::Invalid(_))), "{e:?}");

        let viewer = berth_proto::UserCreate {
            username: "vic".into(),
            password: "a long enough password".into(),
            role: "viewer".into(),
        };
        crate::service::accounts::create_user(&st, &admin, viewer).await?;
        let vic = testing::caller(&st, "vic").await?;
        let e = revoke(&st, &vic, created.info.id).await.err();
        assert!(matches!(e, Some(Error::NotFound(Entity::Token))), "{e:?}");
        assert!(list(&st, &vic).await?.is_empty());
        revoke(&st, &admin, created.info.id).await?;
        let e = crate::service::sessions::bearer_caller(&st, Some(&created.token), None).await.err();
        assert!(matches!(e, Some(Error::Unauthenticated(_))), "revoked tokens open nothing: {e:?}");
        Ok(())
    }
}
