//! What the enterprise's phone calls with a code token: see the code, record the scan, rate
//! once, give feedback. No credentials beyond the token; no personal data beyond the code.

use super::{parse_json, ApiError, Body, SharedState};
use axum::extract::{Path, State};
use axum::Json;
use chrono::Utc;
use saoma_projections::code_view::CodeView;
use serde::Deserialize;

pub async fn view(
    State(state): State<SharedState>,
    Path(token): Path<String>,
) -> Result<Json<CodeView>, ApiError> {
    Ok(Json(state.app.code_view(&token, Utc::now()).await?))
}

pub async fn scan(
    State(state): State<SharedState>,
    Path(token): Path<String>,
) -> Result<Json<CodeView>, ApiError> {
    Ok(Json(state.app.scan(&token, Utc::now()).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatingForm {
    level: u8,
    #[serde(default)]
    comment: Option<String>,
}

pub async fn rate(
    State(state): State<SharedState>,
    Path(token): Path<String>,
    Body(body): Body,
) -> Result<Json<CodeView>, ApiError> {
    let (form, _) = parse_json::<RatingForm>(&body)?;
    Ok(Json(
        state
            .app
            .rate(&token, form.level, form.comment, Utc::now())
            .await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackForm {
    text: String,
}

pub async fn feedback(
    State(state): State<SharedState>,
    Path(token): Path<String>,
    Body(body): Body,
) -> Result<Json<CodeView>, ApiError> {
    let (form, _) = parse_json::<FeedbackForm>(&body)?;
    Ok(Json(
        state.app.feedback(&token, form.text, Utc::now()).await?,
    ))
}
