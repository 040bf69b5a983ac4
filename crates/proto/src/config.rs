//! Configuration as code: the document `berth apply` reads from a YAML file and
//! `berth export` writes (credentials with references to their secrets, templates,
//! repositories), and the plan or result of an apply.

use berth_core::{Code, CredentialKind, Step};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// The whole set, as a file holds it. Names identify objects: a credential or repository is
/// the one of that name, a template the one of that URL prefix.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigDocument {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<ConfigCredential>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<ConfigTemplate>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<ConfigRepository>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigCredential {
    pub name: String,
    pub kind: CredentialKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_on: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Kind `github_app`: the app's id (its settings page, "App ID").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// Kind `github_app`: the one installation to use; absent: the one on each repository's
    /// owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installation_id: Option<i64>,
    /// Where the secret comes from (for `github_app`, the app's private key: a PEM file);
    /// never the secret itself.
    pub secret: SecretRef,
}

/// Where `berth apply` reads a credential's secret: an environment variable or a file (its
/// content, without the final line break). A secret written inline is refused.
#[derive(Debug, Clone, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecretRef {
    /// `{env: NAME}`
    Env(String),
    /// `{file: PATH}`
    File(String),
}

impl SecretRef {
    /// How a person reads it: `environment variable BERTH_SECRET_CI`, `file /run/secrets/ci`.
    pub fn describe(&self) -> String {
        match self {
            SecretRef::Env(name) => format!("environment variable {name}"),
            SecretRef::File(path) => format!("file {path}"),
        }
    }
}

/// A one-key map, `{env: NAME}`, in JSON and YAML alike (serde's enum form would be a YAML tag,
/// `!env NAME`, which people do not write).
impl Serialize for SecretRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        match self {
            SecretRef::Env(name) => m.serialize_entry("env", name)?,
            SecretRef::File(path) => m.serialize_entry("file", path)?,
        }
        m.end()
    }
}

/// Written by hand so that an inline secret gets its own words (and the parser's line number)
/// instead of "data did not match any variant".
impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        const INLINE: &str = "secrets are never written inline: write `secret: {env: NAME}` (an environment \
                              variable) or `secret: {file: PATH}` (a file holding it)";
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = SecretRef;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("`{env: NAME}` or `{file: PATH}`")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Err(E::custom(INLINE))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Err(E::custom(INLINE))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Err(E::custom(INLINE))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                use serde::de::Error;
                let mut found = None;
                while let Some(key) = map.next_key::<String>()? {
                    let value: String = map.next_value()?;
                    let r = match key.as_str() {
                        "env" => SecretRef::Env(value),
                        "file" => SecretRef::File(value),
                        other => return Err(A::Error::unknown_field(other, &["env", "file"])),
                    };
                    if found.replace(r).is_some() {
                        return Err(A::Error::custom("give one of `env` and `file`, not both"));
                    }
                }
                let r = found.ok_or_else(|| A::Error::custom("give `env: NAME` or `file: PATH`"))?;
                match &r {
                    SecretRef::Env(n) | SecretRef::File(n) if n.trim().is_empty() => {
                        Err(A::Error::custom("the secret's `env` or `file` is empty"))
                    }
                    _ => Ok(r),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigTemplate {
    pub url_prefix: String,
    /// The credential's name.
    pub credential: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigRepository {
    pub name: String,
    pub clone_url: String,
    /// The credential's name; without one a template chooses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// `true`: no credential, anonymous access (a public repository). Not together with
    /// `credential`.
    #[serde(default, skip_serializing_if = "crate::is_false")]
    pub anonymous: bool,
    /// Without one, the remote's default branch at registration, then whatever is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_branch: Option<String>,
}

/// `POST /api/v1/config/apply`. The secrets travel beside the document, keyed by credential
/// name, as the CLI read them from the references: never in the document, a URL or argv.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigApply {
    pub document: ConfigDocument,
    /// Write-only: credential name to secret. A credential that exists may leave its secret
    /// out (unchanged); a new one needs it.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Plan only: change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Also delete what the document does not name.
    #[serde(default)]
    pub prune: bool,
}

/// What an apply did (or, with `dry_run`, would do). Unchanged objects are only counted.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConfigPlan {
    /// The change set's id: the audit entry of the apply and those of each change name it.
    pub change_set: String,
    pub dry_run: bool,
    pub changes: Vec<ConfigChange>,
    /// Objects the document names that already match.
    pub unchanged: u64,
    /// Changes that failed (their `error` says why); the others were made.
    pub failed: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConfigChange {
    #[schema(value_type = ConfigAction)]
    pub action: String,
    #[schema(value_type = ConfigKind)]
    pub kind: String,
    pub name: String,
    /// What differs, in words (never a secret): `secret`, `credential ci -> deploy`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// `planned` (dry run), `done` or `failed`.
    #[schema(value_type = ConfigStatus)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ConfigError>,
}

/// Why a change failed: the code, message and remedy of the refusal, and the check's steps.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConfigError {
    pub code: Code,
    pub message: String,
    #[serde(default)]
    pub remedy: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Step>,
}

wire_enum! {
    /// What an apply does to one object.
    ConfigAction {
        Create = "create",
        Update = "update",
        Delete = "delete",
    }
}

wire_enum! {
    /// The kinds of object a configuration document holds.
    ConfigKind {
        Credential = "credential",
        Template = "template",
        Repository = "repository",
    }
}

wire_enum! {
    /// Where a change stands.
    ConfigStatus {
        /// A dry run: it would be made.
        Planned = "planned",
        Done = "done",
        Failed = "failed",
    }
}
