//! Signing in and out of the web pages: `GET /login` (the form), `POST /login`, `POST /logout`,
//! and the [`SignedIn`] extractor the signed-in pages take. The cookie holds a random token;
//! the store keeps only its SHA-256 (see `auth`). Every signed-in form carries a tag bound to
//! the session (the page form tag of `csrf` over the session digest).

use super::auth::{self, Role};
use super::csrf::FormKey;
use super::{page, view::layout};
use crate::http::SharedState;
use crate::store::accounts::AccountRow;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use chrono::{Duration, Utc};
use maud::{html, Markup};
use saoma_domain::registry::OfficerStatus;
use serde::Deserialize;
use std::net::SocketAddr;

const LOGIN_PATH: &str = "/login";
const WRONG: &str = "账号或密码错误。";

/// A request with a valid session: who, and what they may see.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub login: String,
    pub role: Role,
    /// The session's digest, which the forms' tags are bound to.
    pub session: String,
}

impl SignedIn {
    /// The hidden `csrf` field of this session's forms.
    pub fn form_tag(&self, state: &SharedState) -> String {
        session_key(state).tag(&format!("session:{}", self.session))
    }

    /// Whether `tag` is this session's form tag.
    pub fn check_form_tag(&self, state: &SharedState, tag: Option<&str>) -> bool {
        tag.is_some_and(|t| session_key(state).check(&format!("session:{}", self.session), t))
    }
}

fn session_key(state: &SharedState) -> FormKey {
    FormKey::new(state.admin_token_digest)
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn secure(state: &SharedState) -> bool {
    state.app.public_base_url().starts_with("https://")
}

/// The session token of the request's cookie, if any.
fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| auth::cookie(v, auth::SESSION_COOKIE))
}

fn redirect(to: &str, cookie: Option<String>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(to).expect("our own paths are ASCII"),
    );
    if let Some(c) = cookie {
        headers.insert(
            header::SET_COOKIE,
            HeaderValue::from_str(&c).expect("cookies are ASCII"),
        );
    }
    response
}

/// A signed-in page that explains why nothing can be shown or done, with a way back.
pub fn notice(status: StatusCode, title: &str, text: &str) -> Response {
    page(
        status,
        layout(
            title,
            html! {
                section.banner.bad role="alert" {
                    h1 { (title) }
                    p { (text) }
                }
                p { a href=(LOGIN_PATH) { "返回首页" } }
            },
        ),
    )
}

fn unavailable() -> Response {
    notice(
        StatusCode::SERVICE_UNAVAILABLE,
        "服务暂时不可用",
        "请稍后重试。",
    )
}

/// The account of the request's session, or `None` when there is no valid one.
async fn current(state: &SharedState, headers: &HeaderMap) -> Result<Option<SignedIn>, Response> {
    let Some(digest) = session_token(headers).and_then(auth::token_digest) else {
        return Ok(None);
    };
    let account = state
        .app
        .store()
        .session_account(&digest, now_ms())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "reading a session");
            unavailable()
        })?;
    Ok(account.and_then(|a| {
        Some(SignedIn {
            role: Role::from_stored(&a.role, &a.scope)?,
            login: a.login,
            session: digest,
        })
    }))
}

impl FromRequestParts<SharedState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Response> {
        match current(state, &parts.headers).await? {
            Some(signed_in) => Ok(signed_in),
            None => {
                // A stale cookie is removed on the way to the form.
                let stale =
                    session_token(&parts.headers).map(|_| auth::cleared_cookie(secure(state)));
                Err(redirect(LOGIN_PATH, stale))
            }
        }
    }
}

/// The header of every signed-in page: who is signed in, and the sign-out form.
pub fn nav(signed_in: &SignedIn, tag: &str) -> Markup {
    html! {
        nav.session {
            span { "已登录：" (signed_in.login) }
            form method="post" action="/logout" {
                input type="hidden" name="csrf" value=(tag);
                button.link type="submit" { "退出登录" }
            }
        }
    }
}

fn login_page(message: Option<&str>) -> Markup {
    layout(
        "登录",
        html! {
            section.card {
                h1 { "执法人员、监督机构登录" }
                @if let Some(m) = message {
                    p.error role="alert" { (m) }
                }
                form method="post" action=(LOGIN_PATH) {
                    label.field { "账号" input type="text" name="login" autocomplete="username" required maxlength="64"; }
                    label.field { "密码" input type="password" name="password" autocomplete="current-password" required maxlength="128"; }
                    button type="submit" { "登录" }
                }
                p.muted { "账号由本机构管理员开设。连续输错密码将被暂时锁定。" }
            }
        },
    )
}

/// `GET /login`.
pub async fn login_form(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    match current(&state, &headers).await {
        Ok(Some(s)) => redirect(s.role.home(), None),
        Ok(None) => page(StatusCode::OK, login_page(None)),
        Err(response) => response,
    }
}

#[derive(Deserialize)]
pub struct LoginFields {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
}

/// A 429 page with a machine-readable reason (also in `X-Saoma-Reason`) and `Retry-After`.
pub fn too_many(reason: &'static str, text: &str, retry_after: u64) -> Response {
    let mut response = page(
        StatusCode::TOO_MANY_REQUESTS,
        layout(
            "请求过于频繁",
            html! {
                section.banner.bad role="alert" {
                    h1 { "请求过于频繁" }
                    p { (text) }
                    p.muted { "原因代码：" code { (reason) } }
                }
            },
        ),
    );
    let headers = response.headers_mut();
    headers.insert("x-saoma-reason", HeaderValue::from_static(reason));
    headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
    response
}

/// Whether the account may sign in now: enabled, and an officer still active in the registry.
fn may_sign_in(state: &SharedState, account: &AccountRow, role: &Role) -> bool {
    if account.disabled {
        return false;
    }
    match role {
        Role::Officer { officer } => state
            .app
            .registry()
            .officer(officer)
            .is_some_and(|o| o.status == OfficerStatus::Active),
        Role::Supervisor { .. } => true,
    }
}

/// `POST /login`.
pub async fn sign_in(
    State(state): State<SharedState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    form: Result<Form<LoginFields>, FormRejection>,
) -> Response {
    if super::csrf::cross_site(&headers) {
        return page(
            StatusCode::FORBIDDEN,
            login_page(Some(
                "此登录表单并非来自本系统页面，未登录。请在本页重新登录。",
            )),
        );
    }
    let Ok(Form(fields)) = form else {
        return page(
            StatusCode::BAD_REQUEST,
            login_page(Some("提交的内容无法识别，请重新填写。")),
        );
    };
    let login: String = fields
        .login
        .trim()
        .chars()
        .take(auth::MAX_LOGIN_CHARS)
        .collect();
    let ip = state
        .limits
        .client_ip(&headers, peer.as_ref().map(|Extension(c)| c))
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    let store = state.app.store();
    let now = now_ms();
    let window = Duration::minutes(auth::FAILURE_WINDOW_MINUTES).num_milliseconds();
    let (by_login, by_ip) = match store.login_failures(&login, &ip, now - window).await {
        Ok(counts) => counts,
        Err(e) => {
            tracing::error!(error = %e, "reading failed sign-ins");
            return unavailable();
        }
    };
    if let Some(reason) = auth::locked(by_login, by_ip) {
        let wait = u64::try_from(window / 1000).unwrap_or(900);
        return too_many(
            reason,
            "登录失败次数过多，已暂时锁定。请15分钟后再试，或联系管理员。",
            wait,
        );
    }
    let account = match store.account(&login).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "reading an account");
            return unavailable();
        }
    };
    let password = fields.password;
    let hash = account.as_ref().map(|a| a.password_hash.clone());
    let matches = tokio::task::spawn_blocking(move || match hash {
        Some(hash) => auth::verify_password(&password, &hash),
        None => {
            auth::verify_nothing(&password);
            false
        }
    })
    .await
    .unwrap_or(false);
    let account = match account {
        Some(a) if matches => a,
        _ => {
            if let Err(e) = store
                .record_login_failure(&login, &ip, now, now - window)
                .await
            {
                tracing::error!(error = %e, "recording a failed sign-in");
            }
            return page(StatusCode::UNAUTHORIZED, login_page(Some(WRONG)));
        }
    };
    let role = Role::from_stored(&account.role, &account.scope);
    let Some(role) = role.filter(|r| may_sign_in(&state, &account, r)) else {
        return page(
            StatusCode::FORBIDDEN,
            login_page(Some("此账号已停用，请联系管理员。")),
        );
    };
    let (token, digest) = auth::new_session();
    let expires = now + Duration::hours(auth::SESSION_HOURS).num_milliseconds();
    let stored = async {
        store.clear_login_failures(&login).await?;
        store.create_session(&digest, &login, now, expires).await
    };
    if let Err(e) = stored.await {
        tracing::error!(error = %e, "storing a session");
        return unavailable();
    }
    tracing::info!(login = %login, role = role.name(), "signed in");
    redirect(
        role.home(),
        Some(auth::session_cookie(&token, secure(&state))),
    )
}

#[derive(Deserialize)]
pub struct LogoutFields {
    #[serde(default)]
    csrf: Option<String>,
}

/// `POST /logout`: ends the session (only with the session's form tag).
pub async fn sign_out(
    State(state): State<SharedState>,
    signed_in: SignedIn,
    form: Result<Form<LogoutFields>, FormRejection>,
) -> Response {
    let tag = form.ok().and_then(|Form(f)| f.csrf);
    if !signed_in.check_form_tag(&state, tag.as_deref()) {
        return notice(
            StatusCode::FORBIDDEN,
            "未能退出登录",
            "此表单未通过校验（可能已失效，或并非来自本系统页面）。请返回后重试。",
        );
    }
    if let Err(e) = state.app.store().delete_session(&signed_in.session).await {
        tracing::error!(error = %e, "ending a session");
        return unavailable();
    }
    redirect(LOGIN_PATH, Some(auth::cleared_cookie(secure(&state))))
}
