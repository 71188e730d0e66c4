//! `/supervision/history`: the inspections of the supervisor's regions — one enterprise's,
//! one agency's, or found by a fragment — and `/supervision/inspections/{id}`: one
//! inspection's details and its whole trace, each event with its log position and a link to
//! its inclusion proof.

use super::{
    code, date, field, fragment, not_found, query_string, unavailable, unreadable_query, Refused,
    Supervisor, PAGE,
};
use crate::http::SharedState;
use crate::pages::labels::{event_label, status_label};
use crate::pages::view::{level_label, shanghai_time, validity_line};
use crate::store::{HistoryFilter, StoredInspection};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use maud::{html, Markup};
use saoma_projections::code_view::CodeView;
use serde::Deserialize;
use uuid::Uuid;

#[derive(Deserialize)]
pub struct HistoryQuery {
    q: Option<String>,
    enterprise: Option<String>,
    agency: Option<String>,
    region: Option<String>,
    from: Option<String>,
    to: Option<String>,
    offset: Option<u64>,
}

fn card(row: &StoredInspection) -> Markup {
    let r = &row.row;
    html! {
        li.card {
            a href={ "/supervision/inspections/" (r.inspection_id) } { strong { (r.enterprise_name) } }
            p.muted { (r.date) " · " (r.kind) " · " (status_label(&r.status)) }
            p.muted { (r.agency_name) " · " (r.item_names.replace(';', "、")) }
            p.muted { "执法人员：" (r.officer_names.replace(';', "、")) }
        }
    }
}

/// `GET /supervision/history?q=…&enterprise=…&agency=…&region=…&from=…&to=…&offset=…`.
pub async fn history(
    State(state): State<SharedState>,
    supervisor: Supervisor,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Response {
    let scope = &supervisor.scope;
    let Ok(Query(q)) = query else {
        return unreadable_query();
    };
    let filter = (|| {
        Ok::<_, Refused>(HistoryFilter {
            enterprise: code(field(&q.enterprise), "统一社会信用代码")?,
            agency: code(field(&q.agency), "执法主体代码")?,
            region: scope.region(field(&q.region))?,
            within: Some(scope.prefix.clone()),
            from: date(field(&q.from), "起始日期")?.map(|d| d.to_string()),
            to: date(field(&q.to), "截止日期")?.map(|d| d.to_string()),
            q: fragment(field(&q.q)),
            officer: None,
            valid_after: None,
        })
    })();
    let filter = match filter {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let offset = q.offset.unwrap_or(0);
    let found = match state.app.store().history(&filter, offset, PAGE).await {
        Ok(found) => found,
        Err(e) => return unavailable(e),
    };
    let asked = [
        ("q", filter.q.as_deref()),
        ("enterprise", filter.enterprise.as_deref()),
        ("agency", filter.agency.as_deref()),
        ("region", filter.region.as_deref()),
        ("from", filter.from.as_deref()),
        ("to", filter.to.as_deref()),
    ];
    let link = |offset: u64| {
        format!(
            "/supervision/history?{}&offset={offset}",
            query_string(&asked)
        )
    };
    let value = |v: Option<&str>| v.unwrap_or_default().to_string();
    let body = html! {
        h1 { "检查记录" }
        form.search.filters method="get" action="/supervision/history" {
            label.field { "搜索" input type="search" name="q" value=(value(filter.q.as_deref())) maxlength="64" placeholder="企业名称、信用代码、执法人员、事项…"; }
            label.field { "统一社会信用代码" input type="text" name="enterprise" value=(value(filter.enterprise.as_deref())) maxlength="64"; }
            label.field { "执法主体代码" input type="text" name="agency" value=(value(filter.agency.as_deref())) maxlength="64"; }
            label.field { "地区代码" input type="text" name="region" value=(value(filter.region.as_deref())) maxlength="6" inputmode="numeric" placeholder=(scope.region); }
            label.field { "起始日期" input type="date" name="from" value=(value(filter.from.as_deref())); }
            label.field { "截止日期" input type="date" name="to" value=(value(filter.to.as_deref())); }
            button type="submit" { "查询" }
        }
        @if found.items.is_empty() { p.card { "没有找到检查记录。" } }
        ul.plain { @for row in &found.items { (card(row)) } }
        p.pager {
            @if offset > 0 { a href=(link(offset.saturating_sub(PAGE))) { "上一页" } }
            @if let Some(next) = found.next_offset { a href=(link(next)) { "下一页" } }
        }
    };
    supervisor.page(&state, StatusCode::OK, "检查记录", body)
}

/// `GET /supervision/inspections/{id}`.
pub async fn inspection(
    State(state): State<SharedState>,
    supervisor: Supervisor,
    Path(id): Path<String>,
) -> Response {
    let scope = &supervisor.scope;
    let Ok(id) = id.parse::<Uuid>() else {
        return not_found("检查");
    };
    let store = state.app.store();
    let row = match store.inspection_row(&id.to_string()).await {
        Ok(Some(row)) if scope.covers(&row.row.region) => row,
        Ok(_) => return not_found("检查"),
        Err(e) => return unavailable(e),
    };
    let events = match state.app.events(id).await {
        Ok(events) => events,
        Err(e) => return unavailable(e),
    };
    let Some(view) = CodeView::fold(&events, Utc::now()) else {
        return not_found("检查");
    };
    let mut trace = Vec::new();
    for e in &events {
        let position = match store
            .position_of("Inspection", &id.to_string(), e.sequence)
            .await
        {
            Ok(p) => p,
            Err(e) => return unavailable(e),
        };
        trace.push(html! {
            li id={ "e" (e.sequence) } {
                (event_label(&e.event)) br;
                span.muted {
                    (shanghai_time(e.meta.recorded_at)) " · 哈希 " code { (&e.hash.to_hex()[..16]) }
                    @match position {
                        Some(p) => { " · 日志位置 " a href={ "/supervision/proof?position=" (p) } { (p) " 验证" } }
                        None => { " · 尚未进入日志" }
                    }
                }
            }
        });
    }
    let r = &row.row;
    let body = html! {
        h1 { (r.enterprise_name) }
        section.card {
            dl {
                dt { "检查主体" } dd { a href={ "/supervision/history?agency=" (r.agency_code) } { (r.agency_name) } }
                dt { "检查对象" } dd { a href={ "/supervision/history?enterprise=" (r.enterprise_code) } { (r.enterprise_name) } "（" (r.enterprise_code) "）" }
                dt { "地区" } dd { (r.region) }
                dt { "检查类型" } dd { (view.kind) "：" (view.kind_detail) }
                dt { "执法时间" } dd { (view.date.format("%Y年%m月%d日").to_string()) }
                dt { "检查码" } dd { (validity_line(&view)) " · " (status_label(&r.status)) }
                dt { "执法人员" } dd { (r.officer_names.replace(';', "、")) }
                dt { "检查事项" } dd { (r.item_names.replace(';', "、")) }
                @if !view.joint_partners.is_empty() {
                    dt { "联合检查单位" } dd { (view.joint_partners.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join("、")) }
                }
                dt { "企业评价" }
                dd {
                    @match &view.rating {
                        Some(rating) => {
                            (level_label(rating.level))
                            @if let Some(c) = &rating.comment { "：" (c) }
                        }
                        None => "未评价",
                    }
                }
                dt { "检查结果" }
                dd {
                    @match &view.result {
                        Some(result) => { @if result.problems_found { "发现问题" } @else { "未发现问题" } }
                        None => "尚未反馈",
                    }
                }
            }
            p { a href={ "/supervision?enterprise=" (r.enterprise_code) } { "此企业的预警" } }
        }
        section.card {
            h2 { "全程记录" }
            p.muted { "每条事件均经执法人员与系统签名；点击日志位置可验证其包含证明。" }
            ol.trace { @for t in &trace { (t) } }
        }
    };
    supervisor.page(&state, StatusCode::OK, "检查详情", body)
}
