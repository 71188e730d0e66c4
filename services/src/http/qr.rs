//! QR images over HTTP: the inspection code of a genuine token (what the officer's app shows)
//! and an enterprise's own code (what the enterprise prints). See `crate::qr` for what each
//! encodes.

use super::{ApiError, SharedState};
use crate::qr::{self, QrError};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use saoma_domain::ids::CreditCode;

#[derive(Clone, Copy)]
enum Format {
    Svg,
    Png,
}

fn image(text: &str, format: Format, cache: &'static str) -> Result<Response, ApiError> {
    let internal = |e: QrError| {
        tracing::error!(error = %e, "rendering a QR code");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "服务器内部错误",
        )
    };
    let (content_type, body) = match format {
        Format::Svg => (
            "image/svg+xml",
            qr::svg(text).map_err(internal)?.into_bytes(),
        ),
        Format::Png => ("image/png", qr::png(text).map_err(internal)?),
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, cache),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'"),
        ],
        body,
    )
        .into_response())
}

/// The inspection code of a genuine token naming an issued code; anything else is refused
/// like `GET /api/v1/codes/{token}`, and nothing is recorded.
async fn code(state: &SharedState, token: &str, format: Format) -> Result<Response, ApiError> {
    let view = state.app.code_view(token, Utc::now()).await?;
    let (_, url) = state.app.code_url(&view.inspection_id);
    // The token is a bearer secret: only the device that asked may keep the image.
    image(&url, format, "private, no-store")
}

pub async fn code_svg(
    State(state): State<SharedState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    code(&state, &token, Format::Svg).await
}

pub async fn code_png(
    State(state): State<SharedState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    code(&state, &token, Format::Png).await
}

/// The enterprise code of a registered enterprise.
fn enterprise(
    state: &SharedState,
    credit_code: &str,
    format: Format,
) -> Result<Response, ApiError> {
    let code = CreditCode::parse(credit_code)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string()))?;
    if state.app.registry().enterprise(&code).is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_enterprise",
            "检查对象未登记",
        ));
    }
    let url = qr::enterprise_code_url(state.app.public_base_url(), &code);
    image(&url, format, "public, max-age=86400")
}

pub async fn enterprise_svg(
    State(state): State<SharedState>,
    Path(credit_code): Path<String>,
) -> Result<Response, ApiError> {
    enterprise(&state, &credit_code, Format::Svg)
}

pub async fn enterprise_png(
    State(state): State<SharedState>,
    Path(credit_code): Path<String>,
) -> Result<Response, ApiError> {
    enterprise(&state, &credit_code, Format::Png)
}
