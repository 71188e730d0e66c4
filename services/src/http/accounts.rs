//! `POST /api/v1/admin/accounts`: creates or replaces a web account (behind the admin bearer
//! token). The password is hashed with argon2id before it is stored and is never logged or
//! answered; replacing an account ends its sessions.

use super::admin::Admin;
use super::{parse_json, ApiError, Body, SharedState};
use crate::pages::auth::{self, Role};
use crate::store::accounts::AccountRow;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountRequest {
    login: String,
    role: String,
    #[serde(default)]
    officer: Option<String>,
    #[serde(default)]
    region: Option<String>,
    password: String,
    #[serde(default)]
    disabled: bool,
}

fn refuse(code: &'static str, message: &str, detail: &str) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message).detail(detail)
}

/// The role a request asks for, checked against the registry.
fn role(state: &SharedState, r: &AccountRequest) -> Result<Role, ApiError> {
    match (r.role.as_str(), &r.officer, &r.region) {
        ("officer", Some(officer), None) => {
            if state.app.registry().officer(officer).is_none() {
                return Err(refuse(
                    "unknown_officer",
                    "执法人员未登记",
                    "officer: no officer with this key in the registry",
                ));
            }
            Ok(Role::Officer {
                officer: officer.clone(),
            })
        }
        ("supervisor", None, Some(region)) => {
            if !auth::valid_region(region) {
                return Err(refuse(
                    "invalid_region",
                    "行政区划代码不符合要求",
                    "region: expected a six-digit region code",
                ));
            }
            Ok(Role::Supervisor {
                region: region.clone(),
            })
        }
        ("officer" | "supervisor", _, _) => Err(refuse(
            "invalid_account_scope",
            "执法人员账号须且只须指定 officer，监督机构账号须且只须指定 region",
            "an officer account takes `officer`, a supervisor account takes `region`",
        )),
        _ => Err(refuse(
            "invalid_role",
            "账号角色不符合要求",
            "role: expected officer or supervisor",
        )),
    }
}

pub async fn put(
    State(state): State<SharedState>,
    Admin(admin): Admin,
    Body(body): Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (request, _) = parse_json::<AccountRequest>(&body)?;
    if !auth::valid_login(&request.login) {
        return Err(refuse(
            "invalid_login",
            "账号名不符合要求",
            "login: 1 to 64 letters, digits, '.', '_', '-' or '@'",
        ));
    }
    let role = role(&state, &request)?;
    if let Some(why) = auth::password_problem(&request.password) {
        return Err(refuse(
            "weak_password",
            "密码不符合要求",
            &format!("password: {why}"),
        ));
    }
    let password = request.password;
    let password_hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| ApiError::from(crate::app::Refusal::Internal(e.to_string())))?;
    let created_at = Utc::now().timestamp_millis();
    let row = AccountRow {
        login: request.login.clone(),
        role: role.name().to_string(),
        scope: role.scope().to_string(),
        password_hash,
        created_at,
        disabled: request.disabled,
    };
    let replaced = state.app.store().put_account(&row).await?;
    tracing::info!(login = %row.login, role = %row.role, by = %admin, replaced, "web account stored");
    let mut answer = json!({
        "login": row.login,
        "role": row.role,
        "created_at": chrono::DateTime::from_timestamp_millis(created_at),
        "disabled": row.disabled,
        "replaced": replaced,
    });
    let scope_field = match role {
        Role::Officer { .. } => "officer",
        Role::Supervisor { .. } => "region",
    };
    answer[scope_field] = Value::String(row.scope);
    let status = if replaced {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(answer)))
}
