//! The JSON shapes of Berth's REST API (`/api/v1`). The server serialises them and documents
//! them in OpenAPI; the CLI deserialises them. One definition, so the two cannot drift.
//!
//! One module per area (`credentials`, `repositories`, `accounts`: sign-in, users, tokens,
//! settings, audit; `enums`: the string enumerations), all re-exported here; the crate root
//! keeps the error body and the macros the modules share (`wire_enum!`, `double_option`, and
//! `redacted_debug!`, applied here to every type that carries a secret).

use berth_core::{Code, Step};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The id of a stored resource. Fields spell it `i64`: utoipa documents a field typed with
/// this alias as a reference to a schema named after the Rust type (`i64`).
pub type Id = i64;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ApiError,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    #[serde(default)]
    pub remedy: String,
    /// The step list of the check that failed, when a check ran.
    #[serde(default)]
    pub checks: Vec<Step>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
    pub version: String,
}

/// One page of a list: `items` in the list's order, `next` the cursor of the page after this
/// one (pass it back as `after`; `None` on the last page), and `total`, how many items match
/// the filters over all pages: exact unless `total_exact` is false, which only a repository
/// text search that walks the list and matches more than 1,000 answers (then `total` is 1,000
/// and means "more than").
/// Cursors are opaque: a client only hands them back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
    pub total: i64,
    #[serde(default = "yes")]
    pub total_exact: bool,
}

fn yes() -> bool {
    true
}

impl<T> Page<T> {
    /// The same page with each item mapped.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
            total: self.total,
            total_exact: self.total_exact,
        }
    }
}

/// The documented shape of `Page<T>` for one `T`, named for the OpenAPI document (utoipa 5
/// would name a generic after its Rust type parameters). Only the server's documentation uses
/// these; the wire type is [`Page`], and a test checks both serialise alike.
macro_rules! page_schema {
    ($($(#[$doc:meta])* $name:ident => $item:ty;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
        pub struct $name {
            pub items: Vec<$item>,
            /// The cursor of the next page (pass it as `after`); null on the last page.
            pub next: Option<String>,
            /// How many items match the filters, over all pages (at least this many when
            /// `total_exact` is false).
            pub total: i64,
            /// False only when a broad repository text search matches more than 1,000: `total`
            /// is then 1,000 and means "more than".
            pub total_exact: bool,
        }
    )*};
}

page_schema! {
    /// A page of `GET /api/v1/repositories`.
    RepositoryPage => Repository;
    /// A page of `GET /api/v1/credentials`.
    CredentialPage => Credential;
    /// A page of `GET /api/v1/users`.
    UserPage => User;
    /// A page of `GET /api/v1/audit`.
    AuditPage => AuditEntry;
    /// A page of `GET /api/v1/repositories/{id}/checks`.
    CheckPage => StoredCheck;
    /// A page of `GET /api/v1/notification-channels`.
    ChannelPage => Channel;
    /// A page of `GET /api/v1/notification-channels/{id}/deliveries`.
    DeliveryPage => Delivery;
    /// A page of `GET /api/v1/repositories/{id}/branches`.
    BranchPage => StoredBranch;
}

/// Declares a string enumeration of the API: its schema (an `enum` of the names), serde under
/// the same names, `ALL` and `as_str`. Fields that carry one stay `String` on the wire types,
/// documented with `#[schema(value_type = …)]`, so the JSON and the Rust fields are unchanged.
/// The names are the variants in snake_case (utoipa does not read a per-variant `rename` that a
/// macro passes on); a test checks that `as_str` says the same.
macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            pub fn parse(s: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }
    };
}

/// `Option<Option<T>>` that tells "absent" (outer None) from "null" (Some(None)).
pub(crate) mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(v: &Option<Option<T>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// For `skip_serializing_if` on flags that are off unless asked for.
pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

mod accounts;
mod config;
mod credentials;
mod enums;
mod imports;
mod known_hosts;
mod notifications;
mod repositories;
mod templates;
mod webhooks;

pub use accounts::*;
pub use config::*;
pub use credentials::*;
pub use enums::*;
pub use imports::*;
pub use known_hosts::*;
pub use notifications::*;
pub use repositories::*;
pub use templates::*;
pub use webhooks::*;

/// `Debug` for types that carry a secret: only the listed fields are shown, so a `{:?}` in a
/// log line can never print a password, token or secret.
macro_rules! redacted_debug {
    ($t:ident { $($f:ident),* }) => {
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($t)) $(.field(stringify!($f), &self.$f))* .finish_non_exhaustive()
            }
        }
    };
}

redacted_debug!(LoginRequest { username });
redacted_debug!(LoginResponse { expires_at });
redacted_debug!(CredentialCreate {
    name,
    kind,
    username,
    email,
    app_id,
    installation_id,
    expires_on,
    scopes,
    host,
    generate,
    client_certificate
});
redacted_debug!(CredentialUpdate {
    name,
    username,
    email,
    expires_on,
    scopes,
    host,
    app_id,
    installation_id,
    client_certificate
});
redacted_debug!(UserCreate { username, role });
redacted_debug!(UserUpdate { role });
redacted_debug!(ApiTokenCreated { info });
redacted_debug!(ConfigApply { document, dry_run, prune });
redacted_debug!(SmtpSettings { host, port, security, username, from, to });
redacted_debug!(ChannelCreate { name, kind, events, repository_pattern, credential, enabled });
redacted_debug!(ChannelUpdate { name, events, repository_pattern, credential, enabled });

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::CredentialKind;

    #[test]
    fn wire_enums_serialize_as_their_names() {
        fn check<T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug + Copy>(
            all: &[T],
            name: impl Fn(T) -> &'static str,
        ) {
            for v in all {
                let json = serde_json::to_value(v).ok();
                assert_eq!(json, Some(serde_json::Value::String(name(*v).to_owned())), "{v:?}");
                assert_eq!(serde_json::from_value::<T>(serde_json::json!(name(*v))).ok().as_ref(), Some(v));
            }
        }
        check(Role::ALL, Role::as_str);
        check(Action::ALL, Action::as_str);
        check(RepositoryStatus::ALL, RepositoryStatus::as_str);
        check(ExpiryStatus::ALL, ExpiryStatus::as_str);
        check(GitProtocol::ALL, GitProtocol::as_str);
        check(Vcs::ALL, Vcs::as_str);
        check(AuditOutcome::ALL, AuditOutcome::as_str);
        check(ImportState::ALL, ImportState::as_str);
        check(ImportItemStatus::ALL, ImportItemStatus::as_str);
        for s in berth_core::CheckStatus::ALL {
            assert_eq!(RepositoryStatus::from(s).as_str(), s.as_str());
        }
    }

    #[test]
    fn a_credential_is_selected_by_integer_id_or_by_name() {
        let body = |v: serde_json::Value| {
            serde_json::from_value::<RemoteBranchesRequest>(
                serde_json::json!({"clone_url": "https://h/x.git", "credential": v}),
            )
        };
        assert_eq!(body(serde_json::json!(7)).ok().and_then(|r| r.credential), Some(CredentialSelector::Id(7)));
        let by_text = body(serde_json::json!("7")).ok().and_then(|r| r.credential);
        assert_eq!(by_text, Some(CredentialSelector::Name("7".into())));
        assert_eq!(body(serde_json::json!("ci")).ok().and_then(|r| r.credential), Some("ci".into()));
        // `null` (like leaving it out) asks the credential templates to choose.
        assert_eq!(body(serde_json::json!(null)).ok().map(|r| r.credential), Some(None));
        for bad in [serde_json::json!(1.5), serde_json::json!(true), serde_json::json!(u64::MAX)] {
            let e = body(bad.clone()).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("a credential id (an integer) or name (a string)"), "{bad}: {e}");
        }
        // Written back as sent, so the CLI's requests are unchanged for names.
        assert_eq!(serde_json::to_value(CredentialSelector::Id(7)).ok(), Some(serde_json::json!(7)));
        assert_eq!(serde_json::to_value(CredentialSelector::from("ci")).ok(), Some(serde_json::json!("ci")));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = CredentialCreate {
            name: "ci".into(),
            kind: CredentialKind::AccessToken,
            username: None,
            email: None,
            app_id: None,
            installation_id: None,
            secret: "s3cr3t-value".into(),
            expires_on: None,
            scopes: None,
            host: None,
            private_key: None,
            passphrase: None,
            generate: false,
            client_certificate: None,
            client_key: None,
        };
        let l = LoginRequest { username: "admin".into(), password: "s3cr3t-value".into() };
        let u = UserUpdate { role: None, password: Some("s3cr3t-value".into()) };
        for text in [format!("{c:?}"), format!("{l:?}"), format!("{u:?}")] {
            assert!(!text.contains("s3cr3t-value"), "{text}");
        }
        assert!(format!("{c:?}").contains("ci"));
    }

    #[test]
    fn a_page_and_its_documented_shape_serialise_alike() {
        let page = Page { items: vec![1_i64, 2], next: Some("abc".into()), total: 7, total_exact: true };
        let json = serde_json::to_value(&page).ok();
        assert_eq!(json, Some(serde_json::json!({"items": [1, 2], "next": "abc", "total": 7, "total_exact": true})));
        let last: Page<i64> = Page { items: vec![], next: None, total: 0, total_exact: true };
        assert_eq!(
            serde_json::to_value(&last).ok(),
            Some(serde_json::json!({"items": [], "next": null, "total": 0, "total_exact": true}))
        );
        let doc = UserPage { items: vec![], next: None, total: 0, total_exact: true };
        assert_eq!(serde_json::to_value(&doc).ok(), serde_json::to_value(&last).ok());
        let older: Option<Page<i64>> = serde_json::from_str(r#"{"items": [], "next": null, "total": 3}"#).ok();
        assert_eq!(older.map(|p| p.total_exact), Some(true), "a server that does not say counted exactly");
    }

    #[test]
    fn an_identity_reads_name_first() {
        let full = HostIdentity {
            display_name: Some("Jo Doe".into()),
            username: Some("jo".into()),
            email: Some("jo@example.com".into()),
        };
        assert_eq!(full.describe(), "Jo Doe (jo, jo@example.com)");
        let login = HostIdentity { username: Some("jo".into()), ..HostIdentity::default() };
        assert_eq!(login.describe(), "jo");
    }
}
