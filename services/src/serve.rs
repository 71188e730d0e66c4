//! `saoma serve`: opens the configured store and keys, and serves HTTP until SIGTERM or ctrl-c.

use crate::app::App;
use crate::config::Settings;
use crate::http::{router, AppState, SharedState};
use crate::keys::{load_or_create_secret, load_or_create_signing_key};
use crate::store::Store;
use crate::token::TokenKey;
use anyhow::Context as _;
use std::path::PathBuf;
use std::sync::Arc;

/// Opens the store named by the settings: PostgreSQL when a URL is set, else the embedded
/// SQLite file in the data dir.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    Ok(match &settings.database_url {
        Some(url) => Store::open_postgres(url.expose())
            .await
            .context("connecting to PostgreSQL")?,
        None => {
            let path = settings.data_dir.join("saoma.db");
            Store::open_sqlite(&path)
                .await
                .with_context(|| format!("opening {}", path.display()))?
        }
    })
}

pub fn keys_dir(settings: &Settings) -> PathBuf {
    settings.data_dir.join("keys")
}

/// Where the notary's signing key is kept.
pub fn notary_key_path(settings: &Settings) -> PathBuf {
    settings
        .notary_key_path
        .clone()
        .unwrap_or_else(|| keys_dir(settings).join("notary.key"))
}

/// The service's core over the configured store and keys (created on first use), as `serve`
/// runs it; `simulate --backfill` uses it without the HTTP API.
pub async fn open_app(settings: &Settings) -> anyhow::Result<App> {
    let store = open_store(settings).await?;
    let notary = match &settings.notary_key_path {
        Some(path) => load_or_create_signing_key(path, false)?,
        None => load_or_create_signing_key(&keys_dir(settings).join("notary.key"), true)?,
    };
    let tokens = TokenKey::new(load_or_create_secret(
        &keys_dir(settings).join("token.key"),
        true,
    )?);
    App::new(store, notary, tokens, settings).await
}

/// Everything `serve` needs, built from settings (also used by tests and other subcommands).
pub async fn build_state(
    settings: &Settings,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
) -> anyhow::Result<SharedState> {
    let app = open_app(settings).await?;
    let admin_token = match &settings.admin_token {
        Some(t) => t.expose().to_string(),
        None => {
            let path = keys_dir(settings).join("admin.token");
            let token = hex::encode(load_or_create_secret(&path, true)?);
            tracing::info!(path = %path.display(), "admin token is in this file");
            token
        }
    };
    let limits = crate::http::limit::PublicLimit::from_settings(settings)?;
    Ok(Arc::new(
        AppState::new(app, &admin_token, metrics, settings.max_import_bytes).with_limits(limits),
    ))
}

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    let state = build_state(&settings, Some(metrics)).await?;
    let (key_id, _) = state.app.notary_key();
    tracing::info!(
        store = state.app.store().backend_name(),
        notary_key = %key_id,
        registry_entries = state.app.registry().len(),
        "store opened"
    );
    state.app.log_tree().check_origin().await?;
    let nats = crate::nats::start(state.clone(), &settings);
    let book = crate::rules::load(&settings)?;
    let log = crate::log::start(&state.app, &settings, book);
    let listener = tokio::net::TcpListener::bind(settings.http_addr)
        .await
        .with_context(|| format!("binding {}", settings.http_addr))?;
    tracing::info!(addr = %listener.local_addr()?, "listening");
    let app = router(state.clone(), settings.max_command_bytes);
    // The peer address keys the public endpoints' rate limit.
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    if let Some(nats) = nats {
        nats.shutdown().await;
    }
    log.shutdown().await;
    state.app.store().close().await;
    tracing::info!("stopped");
    Ok(())
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
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
