//! The officer's signed-in pages: `/officer` (my inspections, with the history view's fuzzy
//! search restricted to me, paged), `/officer/codes` (my unexpired codes with their QR codes)
//! and `/officer/inspections/{id}` (one of my inspections: the code, its trace, the
//! enterprise's rating and my result). Another officer's inspection is "not found", exactly
//! like one that does not exist.

use super::auth::Role;
use super::labels::{encode, event_label, status_label};
use super::page;
use super::session::{nav, notice, SignedIn};
use super::view::{layout, level_label, shanghai_time, validity_line};
use crate::http::SharedState;
use crate::store::{HistoryFilter, Page, StoredInspection};
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use maud::{html, Markup};
use saoma_domain::inspection::InspectionEvent;
use saoma_domain::seal::Sealed;
use saoma_projections::code_view::CodeView;
use saoma_projections::history::time;
use serde::Deserialize;
use uuid::Uuid;

/// Inspections per page of the list.
const PAGE: u64 = 20;
/// Codes shown at most on the codes page.
const MAX_CODES: u64 = 50;
/// Longest search fragment, in characters (as the history API).
const MAX_QUERY_CHARS: usize = 64;

/// A request of a signed-in officer: the session and the officer's registry key. No session:
/// to the sign-in form; a supervisor's: a page saying these pages are not theirs.
pub struct Officer {
    signed_in: SignedIn,
    key: String,
}

impl FromRequestParts<SharedState> for Officer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Response> {
        let signed_in = SignedIn::from_request_parts(parts, state).await?;
        match &signed_in.role {
            Role::Officer { officer } => Ok(Officer {
                key: officer.clone(),
                signed_in,
            }),
            Role::Supervisor { .. } => Err(notice(
                StatusCode::FORBIDDEN,
                "无权访问",
                "此页面仅供执法人员使用。",
            )),
        }
    }
}

impl Officer {
    /// An officer page: who is signed in, the sign-out form, the tabs, then `body`.
    fn page(&self, state: &SharedState, title: &str, body: Markup) -> Response {
        let tag = self.signed_in.form_tag(state);
        let frame = html! {
            (nav(&self.signed_in, &tag))
            nav.tabs {
                a href="/officer" { "我的检查" }
                a href="/officer/codes" { "未过期检查码" }
            }
            (body)
        };
        page(StatusCode::OK, layout(title, frame))
    }
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "officer page");
    notice(
        StatusCode::SERVICE_UNAVAILABLE,
        "服务暂时不可用",
        "请稍后重试。",
    )
}

fn not_found() -> Response {
    notice(
        StatusCode::NOT_FOUND,
        "检查不存在",
        "未找到此检查，或此检查不属于您。",
    )
}

#[derive(Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    offset: Option<u64>,
}

fn inspection_card(row: &StoredInspection) -> Markup {
    let r = &row.row;
    html! {
        li.card {
            a href={ "/officer/inspections/" (r.inspection_id) } { strong { (r.enterprise_name) } }
            p.muted { (r.date) " · " (r.kind) " · " (status_label(&r.status)) }
            p.muted { (r.agency_name) " · " (r.item_names.replace(';', "、")) }
        }
    }
}

fn list_page(q: &str, found: &Page<StoredInspection>) -> Markup {
    let link = |offset: u64| format!("/officer?q={}&offset={offset}", encode(q));
    html! {
        h1 { "我的检查" }
        form.search method="get" action="/officer" {
            input type="search" name="q" value=(q) maxlength="64" placeholder="企业名称、信用代码、事项…";
            button type="submit" { "搜索" }
        }
        @if found.items.is_empty() {
            p.card { "没有找到检查记录。" }
        }
        ul.plain { @for row in &found.items { (inspection_card(row)) } }
        p.pager {
            @if found.offset > 0 { a href=(link(found.offset.saturating_sub(PAGE))) { "上一页" } }
            @if let Some(next) = found.next_offset { a href=(link(next)) { "下一页" } }
        }
    }
}

/// `GET /officer?q=…&offset=…`.
pub async fn inspections(
    State(state): State<SharedState>,
    officer: Officer,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return notice(StatusCode::BAD_REQUEST, "查询无效", "查询条件无法识别。");
    };
    let q: String = query
        .q
        .unwrap_or_default()
        .trim()
        .chars()
        .take(MAX_QUERY_CHARS)
        .collect();
    let filter = HistoryFilter {
        officer: Some(officer.key.clone()),
        q: Some(q.clone()).filter(|q| !q.is_empty()),
        ..HistoryFilter::default()
    };
    let offset = query.offset.unwrap_or(0);
    match state.app.store().history(&filter, offset, PAGE).await {
        Ok(found) => officer.page(&state, "我的检查", list_page(&q, &found)),
        Err(e) => unavailable(e),
    }
}

fn code_card(row: &StoredInspection, token: &str) -> Markup {
    let r = &row.row;
    html! {
        li.card.code {
            a href={ "/officer/inspections/" (r.inspection_id) } { strong { (r.enterprise_name) } }
            p.muted { (r.date) " · " (r.kind) " · " (status_label(&r.status)) }
            img.qr src={ "/api/v1/codes/" (token) "/qr.svg" } alt={ "检查码：" (r.enterprise_name) };
        }
    }
}

/// `GET /officer/codes`.
pub async fn codes(State(state): State<SharedState>, officer: Officer) -> Response {
    let filter = HistoryFilter {
        officer: Some(officer.key.clone()),
        valid_after: Some(time(Utc::now())),
        ..HistoryFilter::default()
    };
    let found = match state.app.store().history(&filter, 0, MAX_CODES).await {
        Ok(found) => found,
        Err(e) => return unavailable(e),
    };
    let cards: Vec<Markup> = found
        .items
        .iter()
        .filter_map(|row| {
            let id: Uuid = row.row.inspection_id.parse().ok()?;
            Some(code_card(row, &state.app.code_url(&id).0))
        })
        .collect();
    let body = html! {
        h1 { "未过期检查码" }
        p.muted { "请企业扫描检查码核验。" }
        @if cards.is_empty() { p.card { "目前没有未过期的检查码。" } }
        ul.plain { @for card in &cards { (card) } }
    };
    officer.page(&state, "未过期检查码", body)
}

fn detail_page(view: &CodeView, events: &[Sealed<InspectionEvent>]) -> Markup {
    html! {
        h1 { (view.enterprise.name) }
        section.card {
            dl {
                dt { "检查主体" } dd { (view.agency.name) }
                dt { "检查对象" } dd { (view.enterprise.name) "（" (view.enterprise.code) "）" }
                dt { "检查类型" } dd { (view.kind) "：" (view.kind_detail) }
                dt { "执法时间" } dd { (view.date.format("%Y年%m月%d日").to_string()) }
                dt { "有效期" } dd { (validity_line(view)) }
                dt { "执法人员" } dd { (view.officers.iter().map(|o| o.name.as_str()).collect::<Vec<_>>().join("、")) }
                @if !view.joint_partners.is_empty() {
                    dt { "联合检查单位" } dd { (view.joint_partners.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join("、")) }
                }
            }
        }
        section.card {
            h2 { "检查事项" }
            ul { @for item in &view.items { li { (item.name) br; span.muted { (item.legal_basis) } } } }
        }
        section.card {
            h2 { "企业评价" }
            @match &view.rating {
                Some(r) => {
                    p { strong { (level_label(r.level)) } " · " (shanghai_time(r.at)) }
                    @if let Some(c) = &r.comment { p.text { (c) } }
                }
                None => p.muted { "企业尚未评价。" }
            }
        }
        section.card {
            h2 { "我反馈的结果" }
            @match &view.result {
                Some(r) => {
                    p { strong { @if r.problems_found { "发现问题" } @else { "未发现问题" } } " · " (shanghai_time(r.at)) }
                    @if let Some(f) = &r.feedback { p.text { (f) } }
                }
                None => p.muted { "尚未反馈结果。" }
            }
        }
        section.card {
            h2 { "全程记录" }
            ol.trace {
                @for e in events {
                    li {
                        (event_label(&e.event)) br;
                        span.muted { (shanghai_time(e.meta.recorded_at)) " · 哈希 " code { (&e.hash.to_hex()[..16]) } }
                    }
                }
            }
        }
    }
}

/// `GET /officer/inspections/{id}`.
pub async fn inspection(
    State(state): State<SharedState>,
    officer: Officer,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<Uuid>() else {
        return not_found();
    };
    let events = match state.app.events(id).await {
        Ok(events) => events,
        Err(e) => return unavailable(e),
    };
    let mine = events.iter().any(|e| match &e.event {
        InspectionEvent::CodeIssued { officers, .. } => {
            officers.iter().any(|o| o.id.key() == officer.key)
        }
        _ => false,
    });
    let view = CodeView::fold(&events, Utc::now());
    let (true, Some(view)) = (mine, view) else {
        return not_found();
    };
    officer.page(&state, "检查详情", detail_page(&view, &events))
}
