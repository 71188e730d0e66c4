//! Registry administration, bulk import and the audit trace: behind the admin bearer token.

use super::{parse_json, ApiError, Body, SharedState};
use crate::app::Trace;
use crate::import::{self, ImportKind, ImportReport, RefusedCommand};
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use chrono::Utc;
use saoma_domain::registry::{Officer, RegistryCommand};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

/// An authenticated administrator; the name comes from `X-Saoma-Actor` (for the trail).
pub struct Admin(pub String);

impl FromRequestParts<SharedState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(ApiError::unauthorized)?;
        let digest: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
        if digest != state.admin_token_digest {
            return Err(ApiError::unauthorized());
        }
        let name = parts
            .headers
            .get("x-saoma-actor")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 64)
            .unwrap_or("admin");
        Ok(Admin(name.to_string()))
    }
}

/// `POST /api/v1/admin/registry`: one registry command.
pub async fn register(
    State(state): State<SharedState>,
    Admin(admin): Admin,
    Body(body): Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (command, _) = parse_json::<RegistryCommand>(&body)?;
    let events = state.app.register(command, &admin, Utc::now()).await?;
    let status = if events.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(json!({ "events": events }))))
}

/// `POST /api/v1/admin/import/{kind}`: CSV (`text/csv`) or JSON rows; all rows are parsed
/// before any is stored.
pub async fn import(
    State(state): State<SharedState>,
    Admin(admin): Admin,
    Path(kind): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<ImportReport>, ApiError> {
    let kind: ImportKind = kind.parse().map_err(|e: String| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_import_kind",
            "不支持的导入类型",
        )
        .detail(e)
    })?;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let commands = import::parse(kind, &body, json).map_err(|errors| ApiError {
        extra: Some(("rows", serde_json::to_value(errors).expect("serialisable"))),
        ..ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "import_rows_invalid",
            "导入文件有错误行，未导入任何数据",
        )
    })?;
    let mut report = ImportReport {
        commands: commands.len(),
        ..Default::default()
    };
    let now = Utc::now();
    for (i, command) in commands.into_iter().enumerate() {
        match state.app.register(command, &admin, now).await {
            Ok(events) if events.is_empty() => report.unchanged += 1,
            Ok(events) => {
                report.changed += 1;
                report.events += events.len();
            }
            Err(refusal) => {
                let code = refusal.code();
                if code == "internal" {
                    return Err(refusal.into());
                }
                report.refused.push(RefusedCommand {
                    index: i + 1,
                    code,
                    message: refusal.to_string(),
                });
            }
        }
    }
    Ok(Json(report))
}

/// `GET /api/v1/admin/inspections/{id}/events`: the full trace with hashes and signatures,
/// checked.
pub async fn trace(
    State(state): State<SharedState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<Trace>, ApiError> {
    let id: Uuid = id.parse().map_err(ApiError::invalid)?;
    Ok(Json(state.app.trace(id).await?))
}

/// `GET /api/v1/admin/registry/officers/{key}`.
pub async fn officer(
    State(state): State<SharedState>,
    _: Admin,
    Path(key): Path<String>,
) -> Result<Json<Officer>, ApiError> {
    state
        .app
        .registry()
        .officer(&key)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_officer", "执法人员未登记"))
}

/// `GET /api/v1/admin/stats`: what the store holds.
pub async fn stats(State(state): State<SharedState>, _: Admin) -> Result<Json<Value>, ApiError> {
    let events = state
        .app
        .store()
        .count()
        .await
        .map_err(crate::app::Refusal::from)?;
    Ok(Json(json!({
        "store": state.app.store().backend_name(),
        "events": events,
        "registry_entries": state.app.registry().len(),
    })))
}

/// `GET /api/v1/admin/notary`: the service's notary public key.
pub async fn notary(State(state): State<SharedState>, _: Admin) -> Json<Value> {
    let (key_id, key) = state.app.notary_key();
    Json(json!({ "key_id": key_id, "public_key": key }))
}
