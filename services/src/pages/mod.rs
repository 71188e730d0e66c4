//! The enterprise's pages, served as HTML by `saoma serve` itself (routed in
//! `crate::http::router`): `/c/{token}` (what the inspection code's QR opens: the code, its
//! result and the rating form), the form's `POST /c/{token}/rating`, `/e/{credit_code}` (what
//! the enterprise code's QR opens) and the one stylesheet. No script, no external request;
//! handlers are thin wrappers over `App`. Signing in (`auth`, `session`), the officer's
//! signed-in pages (`officer`) and the supervision bureau's (`supervision`) are here too.
//!
//! Opening `/c/{token}` records the scan the first time only: while the enterprise has not
//! scanned the code yet, a valid code records `CodeScanned` and an unusable one (not yet
//! valid, expired, revoked) records the refused attempt (`ScanRefused`) — once per ten
//! minutes for the same reason, so reloading the page does not fill the trail. After the
//! enterprise's scan, opening the page again (to rate, or to see the result) records nothing.
//! Every forged token naming a real inspection is recorded (`forged_token`); a token naming no
//! issued inspection can record nothing: there is no stream to record in.

pub(crate) mod auth;
mod csrf;
mod labels;
mod officer;
mod redact;
mod session;
mod supervision;
mod view;

use crate::app::{App, Refusal};
use crate::http::{ApiError, SharedState};
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use chrono::{DateTime, Duration, Utc};
use csrf::FormKey;
use maud::Markup;
pub use officer::{
    codes as officer_codes, inspection as officer_inspection, inspections as officer_inspections,
};
use saoma_domain::ids::CreditCode;
use saoma_domain::inspection::{InspectionEvent, ScanRefusal, Scanner, ValidityState};
use saoma_projections::code_view::CodeView;
use serde::Deserialize;
pub use session::{login_form, sign_in, sign_out, too_many, SignedIn};
pub use supervision::{
    history as supervision_history, inspection as supervision_inspection,
    proof as supervision_proof, satisfaction as supervision_satisfaction,
    warning as supervision_warning, warnings as supervision_warnings,
};
use uuid::Uuid;
pub use view::Banner;

/// Where the router (`crate::http::router`) serves [`stylesheet`].
pub const STYLESHEET_PATH: &str = "/static/saoma.css";
const STYLESHEET: &str = include_str!("saoma.css");
/// A rating form is a level and at most 2,000 characters of comment, percent-encoded (9 bytes
/// for a Chinese character).
pub const MAX_FORM_BYTES: usize = 32 * 1024;
/// A refused attempt for the same reason within this time is the same attempt, reloaded.
const REPEAT_WINDOW_MINUTES: i64 = 10;
/// Pages may load only the service's own stylesheet, and post forms only to the service.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// An HTML response that no cache keeps and no other site frames or is told the token of.
fn page(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CONTENT_SECURITY_POLICY, CSP),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn problem(status: StatusCode, title: &str, text: &str, back: Option<&str>) -> Response {
    page(status, view::problem_page(title, text, back))
}

/// What a refused scan answers with: 403 for a code not usable yet or not genuine, 410 for
/// one that will never be usable again.
fn refusal_status(reason: ScanRefusal) -> StatusCode {
    match reason {
        ScanRefusal::Expired | ScanRefusal::Revoked => StatusCode::GONE,
        ScanRefusal::NotYetValid | ScanRefusal::ForgedToken | ScanRefusal::WrongEnterprise => {
            StatusCode::FORBIDDEN
        }
    }
}

/// Opens a code as the enterprise: records its scan or the refused attempt (see the module
/// doc) and returns what to show.
pub async fn open(
    app: &App,
    token: &str,
    now: DateTime<Utc>,
) -> Result<(CodeView, Banner), Refusal> {
    let view = match app.code_view(token, now).await {
        Ok(view) => view,
        // Not a genuine token of an issued code: the scan records a forged token that names a
        // real inspection (and answers `ScanRefused`), and refuses anything else.
        Err(Refusal::UnknownCode) => return Ok((app.scan(token, now).await?, Banner::Scanned)),
        Err(e) => return Err(e),
    };
    if view.scanned {
        return Ok((view, Banner::Verified));
    }
    let unusable = if view.revoked {
        Some(ScanRefusal::Revoked)
    } else {
        match view.validity {
            ValidityState::NotYetValid => Some(ScanRefusal::NotYetValid),
            ValidityState::Expired => Some(ScanRefusal::Expired),
            ValidityState::Valid => None,
        }
    };
    if let Some(reason) = unusable {
        if refused_lately(app, view.inspection_id, reason, now).await? {
            return Ok((view, Banner::Refused(reason)));
        }
    }
    match app.scan(token, now).await {
        Ok(scanned) => Ok((scanned, Banner::Scanned)),
        // A refused scan changes nothing the page shows.
        Err(Refusal::ScanRefused { reason, .. }) => Ok((view, Banner::Refused(reason))),
        Err(e) => Err(e),
    }
}

/// Whether the enterprise's scan of this code was refused for `reason` in the last minutes.
async fn refused_lately(
    app: &App,
    id: Uuid,
    reason: ScanRefusal,
    now: DateTime<Utc>,
) -> Result<bool, Refusal> {
    let since = now - Duration::minutes(REPEAT_WINDOW_MINUTES);
    Ok(app.events(id).await?.iter().any(|e| {
        matches!(
            &e.event,
            InspectionEvent::ScanRefused { by: Scanner::Enterprise, at, reason: r }
                if *r == reason && *at > since
        )
    }))
}

pub async fn code_page(State(state): State<SharedState>, Path(token): Path<String>) -> Response {
    match open(&state.app, &token, Utc::now()).await {
        Ok((view, banner)) => {
            let status = match banner {
                Banner::Refused(reason) => refusal_status(reason),
                Banner::Scanned | Banner::Verified => StatusCode::OK,
            };
            let tag = FormKey::new(state.admin_token_digest).tag(&token);
            page(status, view::code_page(&view, banner, &token, &tag))
        }
        Err(refusal) => refusal_page(refusal, None),
    }
}

/// The page for a refusal of `App`; `back` links to the code's page where there is one.
fn refusal_page(refusal: Refusal, back: Option<&str>) -> Response {
    match refusal {
        Refusal::UnknownCode => problem(
            StatusCode::NOT_FOUND,
            "检查码无效",
            "未找到与此二维码对应的检查码。请确认二维码完整清晰，或请执法人员重新出示检查码。未出示有效检查码的，您有权拒绝检查。",
            None,
        ),
        Refusal::ScanRefused {
            reason: ScanRefusal::ForgedToken,
            ..
        } => problem(
            StatusCode::FORBIDDEN,
            "检查码核验未通过",
            "此检查码未通过真实性核验，可能是伪造或被篡改的。请勿接受凭此码进行的检查，您有权拒绝检查，并可向行政执法监督机构反映。本次扫码已记录在案。",
            None,
        ),
        Refusal::ScanRefused { reason, .. } => problem(
            refusal_status(reason),
            reason.message(),
            "此检查码现在不能使用，您有权拒绝检查。本次扫码已记录在案。",
            back,
        ),
        other => {
            let error = ApiError::from(other);
            if error.status.is_server_error() {
                problem(
                    error.status,
                    "服务暂时不可用",
                    "请稍后重新打开此页面。",
                    back,
                )
            } else {
                problem(error.status, "未能完成", &error.message, back)
            }
        }
    }
}

/// The rating form's fields, all optional here so that every shape of body gets a clear page.
#[derive(Deserialize)]
pub struct RatingFields {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    level: Option<String>,
    #[serde(default)]
    comment: Option<String>,
}

/// Whether `token` has the shape of a code token (43 base64url characters), so that it may
/// be put into a link back to its page.
fn token_shaped(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub async fn rate(
    State(state): State<SharedState>,
    Path(token): Path<String>,
    form: Result<Form<RatingFields>, FormRejection>,
) -> Response {
    let back_link = format!("/c/{token}");
    let back = token_shaped(&token).then_some(back_link.as_str());
    let fields = match form {
        Ok(Form(fields)) => fields,
        Err(rejection) => {
            let status = match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::BAD_REQUEST,
            };
            return problem(
                status,
                "评价未提交",
                "提交的内容无法识别（格式错误或内容过长），评价未提交。请返回检查码页面重新填写。",
                back,
            );
        }
    };
    let genuine_form = fields
        .csrf
        .as_deref()
        .is_some_and(|tag| FormKey::new(state.admin_token_digest).check(&token, tag));
    if !genuine_form {
        return problem(
            StatusCode::FORBIDDEN,
            "评价未提交",
            "此评价表单未通过校验（可能已失效，或并非来自本检查码页面），评价未提交。请重新打开检查码页面后再评价。",
            back,
        );
    }
    let level = match fields.level.as_deref().map(str::trim).map(str::parse::<u8>) {
        Some(Ok(level @ 1..=5)) => level,
        _ => {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "评价未提交",
                "请选择满意度（非常满意至非常不满意中的一项）后再提交，评价未提交。",
                back,
            )
        }
    };
    let comment = fields.comment.filter(|c| !c.trim().is_empty());
    match state.app.rate(&token, level, comment, Utc::now()).await {
        Ok(_) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            let location = HeaderValue::from_str(&back_link).expect("a genuine token is ASCII");
            response.headers_mut().insert(header::LOCATION, location);
            response
        }
        Err(
            refusal @ (Refusal::UnknownCode | Refusal::ScanRefused { .. } | Refusal::Internal(_)),
        ) => refusal_page(refusal, back),
        // Already rated, not scanned yet, a comment too long, …: the domain's own reason.
        Err(refusal) => {
            let error = ApiError::from(refusal);
            problem(error.status, "评价未提交", &error.message, back)
        }
    }
}

pub async fn enterprise_page(
    State(state): State<SharedState>,
    Path(credit_code): Path<String>,
) -> Response {
    let not_found = |text: &str| problem(StatusCode::NOT_FOUND, "企业码无效", text, None);
    let Ok(code) = CreditCode::parse(&credit_code) else {
        return not_found("此二维码中的统一社会信用代码无效。");
    };
    let name = state
        .app
        .registry()
        .enterprise(&code)
        .map(|e| e.name.clone());
    match name {
        Some(name) => page(StatusCode::OK, view::enterprise_page(&name, code.as_str())),
        None => not_found("未找到此统一社会信用代码对应的企业。"),
    }
}

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}
