//! Berth's server: the REST API, authentication and the check pipeline, on top of the store
//! and the Git client. `serve` runs it; `admin` holds the offline maintenance commands.

pub mod admin;
pub mod api;
pub mod auth;
pub mod backup;
pub mod checks;
pub mod config;
mod db_gate;
pub mod error;
pub mod instance;
pub mod metrics;
pub mod service;
pub mod state;
pub mod web;

use axum::http::header;
use axum::Router;
use berth_git::{GitClient, GitClientConfig};
use berth_store::Store;
use config::Config;
use state::AppState;
use std::sync::Arc;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::sensitive_headers::SetSensitiveHeadersLayer;
use tower_http::trace::TraceLayer;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] config::ConfigError),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("the vault cannot open: {0}")]
    Vault(#[from] berth_store::VaultError),
    #[error("the database cannot open: {0}")]
    Store(#[from] berth_store::StoreError),
    #[error("the Git client cannot start: {0}")]
    Git(#[from] berth_git::GitError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    /// Maintenance (`berth admin`) found no Berth database where the configuration points.
    #[error("{0}")]
    NoDatabase(String),
    /// Maintenance was asked for something that cannot be: an unknown user, a weak password.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Other(String),
    /// A backup, restore or migration refused or failed (`berth admin backup|restore|migrate`).
    #[error(transparent)]
    Snapshot(#[from] berth_store::snapshot::SnapshotError),
}

/// Creates the SQLite data directory when it is missing, for the service's user only: it holds
/// the database (password hashes, sealed secrets, the audit log) and usually the master key.
pub(crate) fn ensure_data_dir(config: &Config) -> Result<(), StartError> {
    if config.database_url.starts_with("sqlite:") && !config.data_dir.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&config.data_dir)
            .map_err(|source| StartError::DataDir { path: config.data_dir.display().to_string(), source })?;
    }
    Ok(())
}

/// Opens the vault and the database of `config`. Fails without writing anything when the
/// master key does not match the database.
pub async fn open_store(config: &Config) -> Result<Store, StartError> {
    ensure_data_dir(config)?;
    let (store, created) = Store::open(&config.database_url, &config.master_key_file).await?;
    if created {
        tracing::info!(path = %config.master_key_file.display(), "created a new master key file; back it up");
    }
    Ok(store)
}

pub fn git_client(config: &Config) -> Result<GitClient, StartError> {
    Ok(GitClient::new(GitClientConfig {
        request_timeout: config.git_request_timeout,
        max_advertisement_bytes: config.max_advertisement_bytes,
        policy: config.network.clone(),
        extra_root_certs_pem: config.extra_ca_pem.clone(),
        proxy: config.proxy.clone(),
        hosts: config.hosts.clone(),
        ..GitClientConfig::default()
    })?)
}

/// The whole HTTP application: usable without a socket in tests (`Router` is a `Service`).
pub fn app(state: AppState) -> Router {
    // Inside the security headers, so the outage page carries them like every page.
    let gate = axum::middleware::from_fn_with_state(state.clone(), db_gate::db_gate);
    web::secure_headers(api::router().merge(web::router()).layer(gate).with_state(state))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        // The limit layer refuses an announced oversized body before any handler runs, in
        // plain text; callers get the API's error shape like every other refusal.
        .layer(axum::middleware::map_response(body_limit_in_api_shape))
        // The path only, never the query: a single sign-on callback carries the provider's
        // authorization code there, and a search its text.
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<axum::body::Body>| {
            tracing::debug_span!("request", method = %req.method(), path = %req.uri().path(), version = ?req.version())
        }))
        // Marked before tracing sees the request, so no layer can log these values.
        .layer(SetSensitiveHeadersLayer::new([header::AUTHORIZATION, header::COOKIE, header::SET_COOKIE]))
}

/// The largest request body accepted (forms and JSON alike).
pub const BODY_LIMIT: usize = 256 * 1024;

async fn body_limit_in_api_shape(resp: axum::response::Response) -> axum::response::Response {
    use axum::response::IntoResponse;
    let plain = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| !v.starts_with("application/json") && !v.starts_with("text/html"));
    if resp.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE && plain {
        return error::ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            berth_core::Code::InvalidInput,
            format!("the request body is larger than {} KiB", BODY_LIMIT / 1024),
            "send a smaller body; no request to Berth needs more",
        )
        .into_response();
    }
    resp
}

pub struct Ready {
    pub state: AppState,
    /// The first administrator's generated password, to be shown once.
    pub generated_admin_password: Option<String>,
}

/// Opens everything `serve` needs and creates the first administrator if there is none.
pub async fn prepare(config: Config) -> Result<Ready, StartError> {
    auth::set_trust_forwarded(config.trust_forwarded);
    let store = open_store(&config).await?;
    if !store.ensure_search_index().await.unwrap_or(true) {
        tracing::warn!(
            "PostgreSQL refused the pg_trgm extension, so the repository search reads every repository; \
             once a database administrator runs `CREATE EXTENSION pg_trgm`, Berth indexes it at its next start"
        );
    }
    let generated = service::accounts::bootstrap_admin(&store, config.admin_password.as_ref()).await.map_err(|e| {
        StartError::Other(format!("cannot create the first administrator: {}", error::ApiError::from(e).message))
    })?;
    let git = git_client(&config)?;
    let instance = Arc::new(instance::Instance::new(config.instance_id.clone()));
    let sso = service::sso::Sso::from_config(&config)
        .map_err(|e| StartError::Other(format!("cannot set up single sign-on ([oidc]): {e}")))?;
    Ok(Ready {
        state: AppState {
            store,
            forge: berth_forge::Forge::new(git.net()).wanting(&config.wanted_capabilities),
            git,
            config: Arc::new(config),
            instance,
            sso,
        },
        generated_admin_password: generated,
    })
}

/// Serves until SIGINT or SIGTERM, then finishes in-flight requests.
pub async fn serve(ready: Ready) -> Result<(), StartError> {
    let addr = ready.state.config.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { addr: addr.to_string(), source })?;
    serve_listener(listener, ready.state, shutdown_signal()).await
}

/// Serves on an already bound listener until `shutdown` completes (tests bind port 0), with
/// the background scheduler beside it when checks are enabled.
///
/// Shutting down: `/readyz` turns 503 and the scheduler takes no new checks at once; HTTP
/// requests in flight finish; then running checks get up to `[checks] shutdown_grace_secs`
/// and any cut short hand their leases back.
pub async fn serve_listener(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, instance = %state.config.instance_id, "Berth is listening");
    }
    let scheduler = state.config.checks.enabled.then(|| tokio::spawn(service::scheduler::run(state.clone())));
    let notifier =
        state.config.notifications.enabled.then(|| tokio::spawn(service::notifications::dispatch::run(state.clone())));
    let watcher = tokio::spawn(service::ops::watch_database(state.clone()));
    let bg = state.instance.clone();
    let service = app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let stop = async move {
        shutdown.await;
        bg.begin_shutdown();
    };
    let served =
        axum::serve(listener, service).with_graceful_shutdown(stop).await.map_err(|e| StartError::Other(e.to_string()));
    watcher.abort();
    if let Some(task) = notifier {
        if let Err(e) = task.await {
            tracing::error!("the notification sender ended abnormally: {e}");
        }
    }
    if let Some(task) = scheduler {
        if let Err(e) = task.await {
            tracing::error!("the background scheduler ended abnormally: {e}");
        }
    }
    served
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
