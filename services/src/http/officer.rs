//! Officers' signed commands over HTTP (the same envelopes their apps send over NATS).

use super::{parse_json, ApiError, Body, SharedState};
use crate::app::Accepted;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

/// `POST /api/v1/commands`: a signed envelope; 201 with the committed events, or a refusal.
pub async fn submit(
    State(state): State<SharedState>,
    Body(body): Body,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let (raw, _) = parse_json::<serde_json::Value>(&body)?;
    if !raw.is_object() {
        return Err(ApiError::invalid("an envelope is a JSON object"));
    }
    let accepted = state.app.submit_signed(raw, chrono::Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(accepted)))
}
