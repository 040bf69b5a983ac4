//! The mock host: an axum server on 127.0.0.1 that answers with a handler and records every
//! request, a forge allowed to reach it, and credentials.

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use base64::Engine as _;
use berth_core::credential::Expiry;
use berth_core::{CredentialKind, NetworkPolicy, Provider, StepName};
use berth_forge::{CredentialView, Forge, ForgeReport, RepoTarget};
use berth_net::{NetClient, NetConfig};
use secrecy::SecretString;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Req {
    pub path: String,
    pub query: String,
    pub auth: Option<String>,
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

pub fn reply(status: u16, body: &str) -> Reply {
    let ct = if body.trim_start().starts_with(['{', '[']) { "application/json" } else { "text/plain" };
    Reply { status, headers: vec![("content-type".into(), ct.into())], body: body.to_owned() }
}

impl Reply {
    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }
}

pub struct Mock {
    pub base: String,
    pub hits: Arc<Mutex<Vec<Req>>>,
}

impl Mock {
    pub fn hits(&self) -> Vec<Req> {
        self.hits.lock().unwrap().clone()
    }

    pub fn hit(&self, path: &str) -> Option<Req> {
        self.hits().into_iter().find(|r| r.path == path)
    }
}

pub async fn serve(handler: impl Fn(&Req, &str) -> Reply + Send + Sync + 'static) -> Mock {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let hits: Arc<Mutex<Vec<Req>>> = Arc::default();
    let handler = Arc::new(handler);
    let (h, b) = (hits.clone(), base.clone());
    let app = Router::new().fallback(move |req: Request| {
        let (handler, hits, base) = (handler.clone(), h.clone(), b.clone());
        async move {
            let r = Req {
                path: req.uri().path().to_owned(),
                query: req.uri().query().unwrap_or("").to_owned(),
                auth: req.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned),
            };
            hits.lock().unwrap().push(r.clone());
            let out = handler(&r, &base);
            let mut resp = Response::builder().status(out.status);
            for (k, v) in &out.headers {
                resp = resp.header(k, v);
            }
            resp.body(Body::from(out.body)).unwrap()
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Mock { base, hits }
}

pub fn forge() -> Forge {
    let cfg = NetConfig {
        policy: NetworkPolicy::parse_allow_list("127.0.0.0/8").unwrap(),
        request_timeout: Duration::from_secs(10),
        ..NetConfig::default()
    };
    Forge::new(&NetClient::new(cfg).unwrap())
}

pub const TOKEN: &str = "ATATT3xFfGF0-test-token-never-shown";
pub const EMAIL: &str = "jo@example.com";

pub fn basic(user: &str, pw: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}")))
}

pub struct Cred {
    pub kind: CredentialKind,
    pub username: Option<&'static str>,
    pub email: Option<&'static str>,
    pub secret: SecretString,
    pub scopes: Vec<String>,
    pub expiry: Expiry,
}

impl Cred {
    pub fn api_token(scopes: &[&str]) -> Cred {
        Cred {
            kind: CredentialKind::BitbucketApiToken,
            username: Some("jo"),
            email: Some(EMAIL),
            secret: SecretString::from(TOKEN),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            expiry: Expiry::Valid { days_left: 200 },
        }
    }

    pub fn token(secret: &str) -> Cred {
        Cred {
            kind: CredentialKind::AccessToken,
            username: None,
            email: None,
            secret: SecretString::from(secret.to_owned()),
            scopes: Vec::new(),
            expiry: Expiry::Unknown,
        }
    }

    pub fn view(&self) -> CredentialView<'_> {
        CredentialView {
            kind: self.kind,
            username: self.username,
            email: self.email,
            secret: &self.secret,
            declared_scopes: &self.scopes,
            expiry: self.expiry,
        }
    }
}

pub fn cloud(mock: &Mock) -> RepoTarget {
    RepoTarget {
        provider: Provider::BitbucketCloud,
        api_url: format!("{}/2.0", mock.base),
        repo_path: "ws/repo".into(),
    }
}

pub fn step(r: &ForgeReport, name: StepName) -> &berth_core::Step {
    r.steps.iter().find(|s| s.step == name).unwrap_or_else(|| panic!("no {name:?} step in {:#?}", r.steps))
}

pub fn names(r: &ForgeReport) -> Vec<StepName> {
    r.steps.iter().map(|s| s.step).collect()
}

/// Nothing a person or a log sees holds the secret.
pub fn assert_no_secret(r: &ForgeReport, secret: &str) {
    let shown = format!("{r:?}");
    assert!(!shown.contains(secret), "secret leaked: {shown}");
    let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
    assert!(!shown.contains(&b64[..20]));
}
