//! The one error type of the HTTP API: a status, a stable machine-readable code, a Chinese
//! message, and for 500s nothing more (details go to the log).

use crate::app::{Committed, Refusal};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use saoma_domain::envelope::AuthError;
use saoma_domain::inspection::InspectionError;
use serde_json::{json, Value};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub detail: Option<String>,
    pub extra: Option<(&'static str, Value)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            detail: None,
            extra: None,
        }
    }

    pub fn detail(mut self, detail: impl ToString) -> Self {
        self.detail = Some(detail.to_string());
        self
    }

    pub fn malformed_json(e: serde_json::Error) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "请求内容不是有效的JSON",
        )
        .detail(e)
    }

    pub fn invalid(e: impl ToString) -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "请求字段不符合要求",
        )
        .detail(e)
    }

    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "需要有效的管理凭证",
        )
    }

    /// The JSON body the API answers with: `{"error": {"code", "message", …}}`.
    pub fn body(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(d) = &self.detail {
            error["detail"] = Value::String(d.clone());
        }
        if let Some((k, v)) = &self.extra {
            error[*k] = v.clone();
        }
        json!({ "error": error })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        metrics::counter!("saoma_refusals_total", "code" => self.code).increment(1);
        (self.status, Json(self.body())).into_response()
    }
}

fn inspection_status(e: &InspectionError) -> StatusCode {
    use InspectionError::*;
    match e {
        NotAssigned | IssuerNotListed | OfficerNotInAgency => StatusCode::FORBIDDEN,
        AlreadyIssued
        | NotIssued
        | CodeRevoked
        | OutsideValidity
        | NotScanned
        | AlreadyRated
        | AlreadyReported
        | AlreadyUsed
        | DuplicateCommand
        | PlanFrequencyExceeded => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

fn auth_status(e: &AuthError) -> StatusCode {
    match e {
        AuthError::BadSignature => StatusCode::UNAUTHORIZED,
        AuthError::DeviceClockAhead | AuthError::TooLate => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::FORBIDDEN,
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        let code = r.code();
        match r {
            Refusal::Invalid {
                message, detail, ..
            } => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message).detail(detail),
            Refusal::Auth(e) => ApiError::new(auth_status(&e), code, e.to_string()),
            Refusal::Inspection(e) => ApiError::new(inspection_status(&e), code, e.to_string()),
            Refusal::Registry(e) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
            }
            Refusal::ScanRefused { reason, committed } => ApiError {
                extra: Some((
                    "recorded",
                    serde_json::to_value(committed).expect("serialisable"),
                )),
                ..ApiError::new(StatusCode::CONFLICT, code, reason.message())
            },
            Refusal::Duplicate {
                inspection_id,
                original,
            } => ApiError {
                extra: Some((
                    "original",
                    json!({
                        "inspection_id": inspection_id,
                        "events": original.iter().map(Committed::from).collect::<Vec<_>>(),
                    }),
                )),
                ..ApiError::new(StatusCode::CONFLICT, code, "重复提交的指令，未重复记录")
            },
            Refusal::UnknownCode => {
                ApiError::new(StatusCode::NOT_FOUND, code, "检查码无效或不存在")
            }
            Refusal::UnknownInspection => ApiError::new(StatusCode::NOT_FOUND, code, "检查不存在"),
            Refusal::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, code, "服务器内部错误")
            }
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        Refusal::from(e).into()
    }
}
