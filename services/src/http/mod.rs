//! The HTTP API under `/api/v1/`, the enterprise's pages (`crate::pages`), plus `/healthz`,
//! `/readyz` and `/metrics`. Handlers are thin: they parse, call `App`, and map the outcome.

mod accounts;
pub(crate) mod admin;
mod error;
pub mod limit;
mod log;
mod officer;
mod public;
mod qr;
mod views;

pub use error::ApiError;

use crate::app::App;
use crate::pages;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use sha2::{Digest as _, Sha256};
use std::sync::Arc;

pub struct AppState {
    pub app: App,
    /// SHA-256 of the admin bearer token: compared as digests, never kept in clear.
    pub admin_token_digest: [u8; 32],
    pub metrics: Option<PrometheusHandle>,
    pub max_import_bytes: usize,
    /// The rate limit of the public endpoints (off unless set with [`AppState::with_limits`]).
    pub limits: limit::PublicLimit,
}

impl AppState {
    pub fn new(
        app: App,
        admin_token: &str,
        metrics: Option<PrometheusHandle>,
        max_import_bytes: usize,
    ) -> Self {
        AppState {
            app,
            admin_token_digest: Sha256::digest(admin_token.as_bytes()).into(),
            metrics,
            max_import_bytes,
            limits: limit::PublicLimit::off(),
        }
    }

    pub fn with_limits(self, limits: limit::PublicLimit) -> Self {
        AppState { limits, ..self }
    }
}

pub type SharedState = Arc<AppState>;

/// The whole API; tests call it with `oneshot`, `serve` binds it to a socket.
pub fn router(state: SharedState, max_command_bytes: usize) -> Router {
    let import_limit = state.max_import_bytes;
    let admin = Router::new()
        .route("/registry", post(admin::register))
        .route("/import/{kind}", post(admin::import))
        .layer(DefaultBodyLimit::max(import_limit))
        .route("/inspections/{id}/events", get(admin::trace))
        .route("/registry/officers/{key}", get(admin::officer))
        .route("/notary", get(admin::notary))
        .route("/log/checkpoint", post(log::sign_now))
        .route("/accounts", post(accounts::put))
        .route("/stats", get(admin::stats));
    let api = Router::new()
        .route("/commands", post(officer::submit))
        .route("/codes/{token}", get(public::view))
        .route("/codes/{token}/scan", post(public::scan))
        .route("/codes/{token}/rating", post(public::rate))
        .route("/codes/{token}/feedback", post(public::feedback))
        .route("/codes/{token}/qr.svg", get(qr::code_svg))
        .route("/codes/{token}/qr.png", get(qr::code_png))
        .route("/enterprises/{credit_code}/qr.svg", get(qr::enterprise_svg))
        .route("/enterprises/{credit_code}/qr.png", get(qr::enterprise_png))
        .route("/history", get(views::history))
        .route("/history/{id}", get(views::inspection))
        .route(
            "/officers/{key}/unexpired-codes",
            get(views::unexpired_codes),
        )
        .route("/warnings", get(views::warnings))
        .route("/satisfaction", get(views::satisfaction))
        .route("/satisfaction/worst", get(views::worst_rated))
        .route("/frequency", get(views::frequency))
        .route("/views/status", get(views::status))
        .route("/log/checkpoint", get(log::checkpoint))
        .route("/log/inclusion", get(log::inclusion))
        .route("/log/consistency", get(log::consistency))
        .route("/log/keys", get(log::keys))
        .layer(DefaultBodyLimit::max(max_command_bytes))
        .nest("/admin", admin);
    Router::new()
        .nest("/api/v1", api)
        .route("/c/{token}", get(pages::code_page))
        .route(
            "/c/{token}/rating",
            post(pages::rate).layer(DefaultBodyLimit::max(pages::MAX_FORM_BYTES)),
        )
        .route("/e/{credit_code}", get(pages::enterprise_page))
        .route(
            "/login",
            get(pages::login_form)
                .post(pages::sign_in)
                .layer(DefaultBodyLimit::max(pages::MAX_FORM_BYTES)),
        )
        .route("/logout", post(pages::sign_out))
        .route("/officer", get(pages::officer_inspections))
        .route("/officer/codes", get(pages::officer_codes))
        .route("/officer/inspections/{id}", get(pages::officer_inspection))
        .route("/supervision", get(pages::supervision_warnings))
        .route(
            "/supervision/warnings/{id}",
            get(pages::supervision_warning),
        )
        .route("/supervision/history", get(pages::supervision_history))
        .route(
            "/supervision/inspections/{id}",
            get(pages::supervision_inspection),
        )
        .route(
            "/supervision/satisfaction",
            get(pages::supervision_satisfaction),
        )
        .route("/supervision/proof", get(pages::supervision_proof))
        // Browsers ask for a site icon: there is none, and saying so is not an error.
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/static/saoma.css", get(pages::stylesheet))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "接口不存在") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limit::public,
        ))
        .layer(axum::middleware::from_fn(count_requests))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn readyz(State(state): State<SharedState>) -> impl IntoResponse {
    if state.app.store().ping().await {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
    }
}

async fn metrics(State(state): State<SharedState>) -> impl IntoResponse {
    match &state.metrics {
        Some(handle) => (StatusCode::OK, handle.render()),
        None => (StatusCode::NOT_FOUND, String::new()),
    }
}

async fn count_requests(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let start = std::time::Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("saoma_http_requests_total", "status" => status).increment(1);
    metrics::histogram!("saoma_http_request_seconds").record(start.elapsed().as_secs_f64());
    response
}

/// The raw request body; a body over the limit is refused with a JSON error like any other.
pub(crate) struct Body(pub axum::body::Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        axum::body::Bytes::from_request(req, state)
            .await
            .map(Body)
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "body_too_large",
                        "请求内容过大",
                    )
                } else {
                    ApiError::new(rejection.status(), "body_unreadable", "无法读取请求内容")
                        .detail(rejection.body_text())
                }
            })
    }
}

/// Parses a JSON body into `T`, with distinct reasons for malformed JSON and wrong fields.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    body: &[u8],
) -> Result<(T, serde_json::Value), ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(ApiError::malformed_json)?;
    let typed = serde_json::from_value(value.clone()).map_err(ApiError::invalid)?;
    Ok((typed, value))
}
