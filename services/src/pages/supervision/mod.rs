//! The supervision bureau's signed-in pages (监督机构): `/supervision` (warnings, filtered by
//! rule, agency, region and period), `/supervision/warnings/{id}` (one warning and the events
//! that prove it), `/supervision/history` and `/supervision/inspections/{id}` (an enterprise's
//! or agency's inspections, one inspection's trace), `/supervision/satisfaction` (figures and
//! charts per agency and month) and `/supervision/proof` (the latest signed checkpoint, and
//! an event's inclusion proof checked against it).
//!
//! A supervisor sees the regions under their own (see `store::region_prefix`): a warning or an
//! inspection elsewhere is "not found", exactly like one that does not exist, and a filter for
//! a region elsewhere is refused. Officers get a page saying these pages are not theirs.

mod history;
mod proof;
mod satisfaction;
mod warnings;

pub use history::{history, inspection};
pub use proof::proof;
pub use satisfaction::satisfaction;
pub use warnings::{warning, warnings};

use super::auth::Role;
use super::page;
use super::session::{nav, notice, SignedIn};
use super::view::layout;
use crate::http::SharedState;
use crate::store::region_prefix;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, TimeZone as _, Utc};
use maud::{html, Markup};

/// Items per page of the lists.
const PAGE: u64 = 20;
/// Longest search fragment, in characters (as the history API).
const MAX_QUERY_CHARS: usize = 64;

/// The regions a supervisor may see: those whose code starts with `prefix`.
struct Scope {
    region: String,
    prefix: String,
}

/// Why a query is refused; its page says so.
#[derive(Debug)]
enum Refused {
    /// A field that is not what it should be: what it should be.
    BadQuery(String),
    /// A region outside the supervisor's own.
    OtherRegion { own: String },
}

impl Refused {
    fn status(&self) -> StatusCode {
        match self {
            Refused::BadQuery(_) => StatusCode::BAD_REQUEST,
            Refused::OtherRegion { .. } => StatusCode::FORBIDDEN,
        }
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let status = self.status();
        match self {
            Refused::BadQuery(text) => notice(status, "查询条件无效", &text),
            Refused::OtherRegion { own } => notice(
                status,
                "无权查看该地区",
                &format!("您只能查看本机构所辖地区（{own}）的数据。"),
            ),
        }
    }
}

impl Scope {
    // The error is the page to answer with, as axum handlers return it.
    #[allow(clippy::result_large_err)]
    fn of(signed_in: &SignedIn) -> Result<Scope, Response> {
        match &signed_in.role {
            Role::Supervisor { region } => Ok(Scope {
                prefix: region_prefix(region).to_string(),
                region: region.clone(),
            }),
            Role::Officer { .. } => Err(notice(
                StatusCode::FORBIDDEN,
                "无权访问",
                "此页面仅供行政执法监督机构使用。",
            )),
        }
    }

    fn covers(&self, region: &str) -> bool {
        region.starts_with(&self.prefix)
    }

    /// A region asked for in a form: none when empty; else six digits within the scope.
    fn region(&self, asked: Option<&str>) -> Result<Option<String>, Refused> {
        let Some(region) = asked else {
            return Ok(None);
        };
        if !crate::pages::auth::valid_region(region) {
            return Err(bad("地区代码应为六位数字。"));
        }
        if !self.covers(region) {
            return Err(Refused::OtherRegion {
                own: self.region.clone(),
            });
        }
        Ok(Some(region.to_string()))
    }
}

/// A form field as asked: trimmed, `None` when empty (forms send empty fields).
fn field(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// An agency or enterprise code in a form: letters, digits, `-`, `_`, `.`.
fn code(asked: Option<&str>, what: &str) -> Result<Option<String>, Refused> {
    match asked {
        None => Ok(None),
        Some(c)
            if c.len() <= 64
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
        {
            Ok(Some(c.to_string()))
        }
        Some(_) => Err(bad(&format!("{what}格式不正确。"))),
    }
}

/// A date (`YYYY-MM-DD`) in a form.
fn date(asked: Option<&str>, what: &str) -> Result<Option<NaiveDate>, Refused> {
    asked
        .map(|d| {
            NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .ok()
                .filter(|_| d.len() == 10)
                .ok_or_else(|| bad(&format!("{what}应为日期（年-月-日）。")))
        })
        .transpose()
}

/// The instant a day begins in China.
fn start_of_day(day: NaiveDate) -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai
        .from_local_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight exists"))
        .single()
        .expect("Asia/Shanghai has no gaps")
        .with_timezone(&Utc)
}

/// A search fragment: trimmed, at most 64 characters.
fn fragment(asked: Option<&str>) -> Option<String> {
    asked.map(|q| q.chars().take(MAX_QUERY_CHARS).collect())
}

fn bad(text: &str) -> Refused {
    Refused::BadQuery(text.to_string())
}

/// The page for a query string that is not one of the page's.
fn unreadable_query() -> Response {
    bad("查询条件无法识别。").into_response()
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "supervision page");
    notice(
        StatusCode::SERVICE_UNAVAILABLE,
        "服务暂时不可用",
        "请稍后重试。",
    )
}

fn not_found(what: &str) -> Response {
    notice(
        StatusCode::NOT_FOUND,
        &format!("{what}不存在"),
        &format!("未找到此{what}，或它不在本机构所辖地区。"),
    )
}

/// A query string of the non-empty `pairs`, percent-encoded.
fn query_string(pairs: &[(&str, Option<&str>)]) -> String {
    pairs
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", super::labels::encode(v))))
        .collect::<Vec<_>>()
        .join("&")
}

/// A request of a signed-in supervisor: the session, and the regions it may see. No session:
/// to the sign-in form; an officer's: a page saying these pages are not theirs.
pub struct Supervisor {
    signed_in: SignedIn,
    scope: Scope,
}

impl FromRequestParts<SharedState> for Supervisor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Response> {
        let signed_in = SignedIn::from_request_parts(parts, state).await?;
        let scope = Scope::of(&signed_in)?;
        Ok(Supervisor { signed_in, scope })
    }
}

impl Supervisor {
    /// A dashboard page: who is signed in, the sign-out form, the tabs, then `body`.
    fn page(&self, state: &SharedState, status: StatusCode, title: &str, body: Markup) -> Response {
        let tag = self.signed_in.form_tag(state);
        let frame = html! {
            (nav(&self.signed_in, &tag))
            nav.tabs {
                a href="/supervision" { "预警" }
                a href="/supervision/history" { "检查记录" }
                a href="/supervision/satisfaction" { "满意度" }
                a href="/supervision/proof" { "存证核验" }
            }
            (body)
        };
        page(status, layout(title, frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_in_china_begins_at_16_00_utc_the_day_before() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        assert_eq!(
            saoma_projections::history::time(start_of_day(day)),
            "2026-03-01T16:00:00Z"
        );
    }

    #[test]
    fn a_scope_covers_the_regions_below_it_only() {
        let scope = Scope {
            region: "630100".into(),
            prefix: region_prefix("630100").into(),
        };
        assert!(scope.covers("630102"));
        assert!(scope.covers("630100"));
        assert!(!scope.covers("630200"));
        assert!(!scope.covers("430202"));
        assert!(scope.region(Some("630105")).is_ok());
        assert_eq!(
            scope.region(Some("632801")).unwrap_err().status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            scope.region(Some("63")).unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn query_strings_keep_only_what_was_asked() {
        assert_eq!(
            query_string(&[
                ("rule", Some("quiet_day")),
                ("agency", None),
                ("q", Some("华 创"))
            ]),
            "rule=quiet_day&q=%E5%8D%8E%20%E5%88%9B"
        );
    }
}
