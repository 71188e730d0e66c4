//! `/supervision`: the warnings of the supervisor's regions, filtered and paged, and
//! `/supervision/warnings/{id}`: one warning with the events that prove it.

use super::{
    bad, code, date, field, not_found, query_string, start_of_day, unavailable, unreadable_query,
    Refused, Scope, Supervisor, PAGE,
};
use crate::http::SharedState;
use crate::pages::labels::{encode, event_label, severity_label};
use crate::pages::view::shanghai_time;
use crate::store::{StoredWarning, WarningFilter};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use maud::{html, Markup};
use saoma_domain::ids::{AgencyCode, CreditCode};
use saoma_projections::history::time;
use saoma_projections::warnings::Rule;
use serde::Deserialize;
use std::collections::BTreeMap;
use uuid::Uuid;

#[derive(Deserialize)]
pub struct WarningQuery {
    rule: Option<String>,
    agency: Option<String>,
    enterprise: Option<String>,
    region: Option<String>,
    from: Option<String>,
    to: Option<String>,
    offset: Option<u64>,
}

fn rule_title(code: &str) -> &'static str {
    Rule::ALL
        .iter()
        .find(|r| r.code() == code)
        .map_or("", |r| r.title())
}

/// The store's filter for what was asked, within the scope; `to` is the last day shown.
fn filter(scope: &Scope, q: &WarningQuery) -> Result<WarningFilter, Refused> {
    let rule = match field(&q.rule) {
        Some(r) if !Rule::ALL.iter().any(|k| k.code() == r) => return Err(bad("未知的预警规则。")),
        r => r.map(str::to_string),
    };
    let day_start = |d: Option<chrono::NaiveDate>| d.map(|d| time(start_of_day(d)));
    Ok(WarningFilter {
        rule,
        agency: code(field(&q.agency), "执法主体代码")?,
        enterprise: code(field(&q.enterprise), "统一社会信用代码")?,
        region: scope.region(field(&q.region))?,
        within: Some(scope.prefix.clone()),
        from: day_start(date(field(&q.from), "起始日期")?),
        to: day_start(date(field(&q.to), "截止日期")?.map(|d| d + Duration::days(1))),
    })
}

/// Names of the agencies and enterprises the warnings name, from the registry.
#[derive(Default)]
struct Names(BTreeMap<String, String>);

impl Names {
    fn of(state: &SharedState, warnings: &[StoredWarning]) -> Names {
        let registry = state.app.registry();
        let mut names = BTreeMap::new();
        for w in warnings {
            for a in w.agencies.split(';').filter(|a| !a.is_empty()) {
                if let Some(agency) = AgencyCode::parse(a).ok().and_then(|c| registry.agency(&c)) {
                    names.insert(a.to_string(), agency.name.clone());
                }
            }
            if let Some(e) = CreditCode::parse(&w.enterprise)
                .ok()
                .and_then(|c| registry.enterprise(&c))
            {
                names.insert(w.enterprise.clone(), e.name.clone());
            }
        }
        Names(names)
    }

    fn name<'a>(&'a self, code: &'a str) -> &'a str {
        self.0.get(code).map_or(code, String::as_str)
    }

    fn agencies(&self, joined: &str) -> String {
        joined
            .split(';')
            .filter(|a| !a.is_empty())
            .map(|a| self.name(a))
            .collect::<Vec<_>>()
            .join("、")
    }
}

fn at(w: &StoredWarning) -> String {
    DateTime::parse_from_rfc3339(&w.at)
        .map(|t| shanghai_time(t.with_timezone(&Utc)))
        .unwrap_or_else(|_| w.at.clone())
}

fn evidence_ids(w: &StoredWarning) -> Vec<String> {
    serde_json::from_str(&w.evidence).unwrap_or_default()
}

fn warning_head(w: &StoredWarning, names: &Names) -> Markup {
    html! {
        p {
            span class={ "severity " (w.severity) } { (severity_label(&w.severity)) }
            " " strong { (rule_title(&w.rule)) }
        }
        p.muted { (at(w)) " · 地区 " (w.region) }
        p { (w.detail) }
        @if !w.enterprise.is_empty() {
            p.muted { "企业：" (names.name(&w.enterprise)) "（" (w.enterprise) "）" }
        }
        @if !w.agencies.trim_matches(';').is_empty() {
            p.muted { "执法主体：" (names.agencies(&w.agencies)) }
        }
    }
}

fn filter_form(q: &WarningQuery, scope: &Scope) -> Markup {
    let value = |v: &Option<String>| field(v).unwrap_or_default().to_string();
    let chosen = field(&q.rule).unwrap_or_default();
    let asked = [&q.rule, &q.agency, &q.region, &q.from, &q.to]
        .iter()
        .any(|v| field(v).is_some());
    html! {
        // Folded on a phone until asked for; open while a filter is in force.
        details.filters open[asked] {
            summary { "筛选（规则、执法主体、地区、时间）" }
            form.search method="get" action="/supervision" {
                label.field { "预警规则"
                    select name="rule" {
                        option value="" { "全部规则" }
                        @for r in Rule::ALL {
                            option value=(r.code()) selected[r.code() == chosen] { (r.title()) }
                        }
                    }
                }
                label.field { "执法主体代码" input type="text" name="agency" value=(value(&q.agency)) maxlength="64"; }
                label.field { "地区代码" input type="text" name="region" value=(value(&q.region)) maxlength="6" inputmode="numeric" placeholder=(scope.region); }
                label.field { "起始日期" input type="date" name="from" value=(value(&q.from)); }
                label.field { "截止日期" input type="date" name="to" value=(value(&q.to)); }
                @if let Some(e) = field(&q.enterprise) { input type="hidden" name="enterprise" value=(e); }
                button type="submit" { "筛选" }
            }
        }
    }
}

/// `GET /supervision?rule=…&agency=…&region=…&from=…&to=…&offset=…`.
pub async fn warnings(
    State(state): State<SharedState>,
    supervisor: Supervisor,
    query: Result<Query<WarningQuery>, QueryRejection>,
) -> Response {
    let scope = &supervisor.scope;
    let Ok(Query(q)) = query else {
        return unreadable_query();
    };
    let filter = match filter(scope, &q) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let offset = q.offset.unwrap_or(0);
    let found = match state.app.store().warnings(&filter, offset, PAGE).await {
        Ok(found) => found,
        Err(e) => return unavailable(e),
    };
    let names = Names::of(&state, &found.items);
    let link = |offset: u64| {
        let rest = query_string(&[
            ("rule", field(&q.rule)),
            ("agency", field(&q.agency)),
            ("enterprise", field(&q.enterprise)),
            ("region", field(&q.region)),
            ("from", field(&q.from)),
            ("to", field(&q.to)),
        ]);
        format!("/supervision?{rest}&offset={offset}")
    };
    let body = html! {
        h1 { "预警" }
        p.muted { "本机构所辖地区（" (scope.region) "）的违规检查预警，最新的在前。" }
        (filter_form(&q, scope))
        @if found.items.is_empty() { p.card { "没有符合条件的预警。" } }
        ul.plain {
            @for w in &found.items {
                li.card.warning {
                    (warning_head(w, &names))
                    a href={ "/supervision/warnings/" (encode(&w.id)) } {
                        "查看证据（" (evidence_ids(w).len()) " 条事件）"
                    }
                }
            }
        }
        p.pager {
            @if offset > 0 { a href=(link(offset.saturating_sub(PAGE))) { "上一页" } }
            @if let Some(next) = found.next_offset { a href=(link(next)) { "下一页" } }
        }
    };
    supervisor.page(&state, StatusCode::OK, "预警", body)
}

/// `Inspection/{id}/{sequence}` as its parts.
fn inspection_event(id: &str) -> Option<(Uuid, u64)> {
    let rest = id.strip_prefix("Inspection/")?;
    let (uuid, sequence) = rest.rsplit_once('/')?;
    Some((uuid.parse().ok()?, sequence.parse().ok()?))
}

/// `GET /supervision/warnings/{id}`: the warning and, per inspection it names, the events
/// that prove it, each with its log position and a link to its inclusion proof.
pub async fn warning(
    State(state): State<SharedState>,
    supervisor: Supervisor,
    Path(id): Path<String>,
) -> Response {
    let scope = &supervisor.scope;
    let w = match state.app.store().warning(&id).await {
        Ok(Some(w)) if scope.covers(&w.region) => w,
        Ok(_) => return not_found("预警"),
        Err(e) => return unavailable(e),
    };
    let names = Names::of(&state, std::slice::from_ref(&w));
    // The evidence grouped by inspection, in the order the warning names it.
    let mut inspections: Vec<(Uuid, Vec<u64>)> = Vec::new();
    let mut others = Vec::new();
    for e in evidence_ids(&w) {
        match inspection_event(&e) {
            Some((uuid, seq)) => match inspections.iter_mut().find(|(u, _)| *u == uuid) {
                Some((_, seqs)) => seqs.push(seq),
                None => inspections.push((uuid, vec![seq])),
            },
            None => others.push(e),
        }
    }
    let store = state.app.store();
    let mut sections = Vec::new();
    for (uuid, seqs) in &inspections {
        let (row, events) = match (
            store.inspection_row(&uuid.to_string()).await,
            state.app.events(*uuid).await,
        ) {
            (Ok(row), Ok(events)) => (row, events),
            (Err(e), _) => return unavailable(e),
            (_, Err(e)) => return unavailable(e),
        };
        let mut lines = Vec::new();
        for e in events.iter().filter(|e| seqs.contains(&e.sequence)) {
            let position = match store
                .position_of("Inspection", &uuid.to_string(), e.sequence)
                .await
            {
                Ok(p) => p,
                Err(e) => return unavailable(e),
            };
            lines.push(html! {
                li {
                    (event_label(&e.event)) br;
                    span.muted {
                        (shanghai_time(e.meta.recorded_at)) " · 哈希 " code { (&e.hash.to_hex()[..16]) }
                        @if let Some(p) = position {
                            " · 日志位置 " a href={ "/supervision/proof?position=" (p) } { (p) }
                        }
                    }
                }
            });
        }
        sections.push(html! {
            section.card {
                @match &row {
                    Some(r) => {
                        h2 { (r.row.enterprise_name) }
                        p.muted { (r.row.date) " · " (r.row.kind) " · " (r.row.agency_name) }
                        p.muted { "执法人员：" (r.row.officer_names.replace(';', "、")) }
                    }
                    None => h2 { "检查 " (uuid) }
                }
                ol.trace { @for l in &lines { (l) } }
                a href={ "/supervision/inspections/" (uuid) } { "查看此检查的全程记录" }
            }
        });
    }
    let body = html! {
        h1 { "预警详情" }
        section.card.warning { (warning_head(&w, &names)) p.muted { "预警编号 " code { (w.id) } } }
        h2 { "证据" }
        @for s in &sections { (s) }
        @if !others.is_empty() {
            section.card {
                h2 { "其他证据事件" }
                ul { @for e in &others { li { code { (e) } } } }
            }
        }
        p { a href="/supervision" { "返回预警列表" } }
    };
    supervisor.page(&state, StatusCode::OK, "预警详情", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_ids_name_an_inspection_and_a_sequence() {
        let id = Uuid::new_v4();
        assert_eq!(
            inspection_event(&format!("Inspection/{id}/3")),
            Some((id, 3))
        );
        assert_eq!(inspection_event("Registry/plan:P1/2"), None);
        assert_eq!(inspection_event(&format!("Inspection/{id}/x")), None);
    }

    #[test]
    fn the_period_is_whole_days_in_china_and_the_rule_must_exist() {
        let scope = Scope {
            region: "630000".into(),
            prefix: "63".into(),
        };
        let asked = |rule: &str, from: &str, to: &str| WarningQuery {
            rule: Some(rule.into()),
            agency: Some(String::new()),
            enterprise: None,
            region: Some(" ".into()),
            from: Some(from.into()),
            to: Some(to.into()),
            offset: None,
        };
        let f = filter(
            &scope,
            &asked("quiet_day_inspection", "2026-03-02", "2026-03-02"),
        )
        .unwrap();
        assert_eq!(f.from.as_deref(), Some("2026-03-01T16:00:00Z"));
        assert_eq!(f.to.as_deref(), Some("2026-03-02T16:00:00Z"));
        assert_eq!(f.within.as_deref(), Some("63"));
        assert_eq!((f.agency, f.region), (None, None));
        let refused = filter(&scope, &asked("no_such_rule", "", "")).unwrap_err();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        let refused = filter(&scope, &asked("", "2026-13-01", "")).unwrap_err();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    }
}
