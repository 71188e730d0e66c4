//! `/supervision/satisfaction`: the satisfaction statistics of the supervisor's regions for a
//! period of months — per agency (the least satisfying first, as a chart and a table) and per
//! month — from the live views. Charts are the report's SVG bar charts, drawn on the server.

use super::{bad, field, unavailable, unreadable_query, Refused, Supervisor};
use crate::http::SharedState;
use crate::report::{bar_chart, PAGE_CHART};
use crate::store::StoredSatisfaction;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use maud::{html, Markup, PreEscaped};
use saoma_projections::satisfaction::{Dimension, Tally};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Agencies in the chart.
const TOP: usize = 20;

#[derive(Deserialize)]
pub struct SatisfactionQuery {
    region: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// A month (`YYYY-MM`) in a form.
fn month(asked: Option<&str>, what: &str) -> Result<Option<String>, Refused> {
    asked
        .map(|m| {
            NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d")
                .ok()
                .filter(|_| m.len() == 7)
                .map(|d| d.format("%Y-%m").to_string())
                .ok_or_else(|| bad(&format!("{what}应为月份（年-月）。")))
        })
        .transpose()
}

/// Code → (name, tally) of each agency over the period.
type Agencies<'a> = BTreeMap<&'a str, (&'a str, Tally)>;

/// Per agency and per month, over the period.
fn totals(groups: &[StoredSatisfaction]) -> (Agencies<'_>, BTreeMap<&str, Tally>) {
    let mut agencies = Agencies::new();
    let mut months: BTreeMap<&str, Tally> = BTreeMap::new();
    for g in groups {
        agencies
            .entry(&g.key)
            .or_insert((&g.name, Tally::default()))
            .1
            .merge(&g.tally);
        months.entry(&g.month).or_default().merge(&g.tally);
    }
    (agencies, months)
}

fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "—".into(), |x| format!("{:.1}%", x * 100.0))
}

fn charts(agencies: &Agencies<'_>, months: &BTreeMap<&str, Tally>) -> Markup {
    let mut rated: Vec<(&str, f64, u64)> = agencies
        .values()
        .filter_map(|(name, t)| t.satisfaction_rate().map(|r| (*name, r, t.ratings)))
        .collect();
    rated.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(b.0)));
    rated.truncate(TOP);
    let by_agency: Vec<(String, f64, String)> = rated
        .into_iter()
        .map(|(name, r, n)| {
            (
                name.to_string(),
                r,
                format!("{}（{n} 条）", percent(Some(r))),
            )
        })
        .collect();
    #[allow(clippy::cast_precision_loss)]
    let by_month: Vec<(String, f64, String)> = months
        .iter()
        .map(|(m, t)| {
            (
                (*m).to_string(),
                t.satisfaction_rate().unwrap_or(0.0),
                format!("{}（{} 条）", percent(t.satisfaction_rate()), t.ratings),
            )
        })
        .collect();
    html! {
        section.card.chart {
            (PreEscaped(bar_chart(&format!("满意率最低的执法主体（前 {TOP} 个）"), &by_agency, PAGE_CHART)))
        }
        section.card.chart {
            (PreEscaped(bar_chart("每月满意率", &by_month, PAGE_CHART)))
        }
    }
}

fn table(agencies: &Agencies<'_>) -> Markup {
    html! {
        section.card.wide {
            h2 { "按执法主体" }
            table {
                thead { tr { th { "执法主体" } th { "扫码检查" } th { "评价数" } th { "平均分" } th { "满意率" } th { "评价率" } } }
                tbody {
                    @for (code, (name, t)) in agencies {
                        tr {
                            td { a href={ "/supervision/history?agency=" (code) } { (name) } }
                            td { (t.scanned) }
                            td { (t.ratings) }
                            td { (t.mean().map_or_else(|| "—".into(), |m| format!("{m:.2}"))) }
                            td { (percent(t.satisfaction_rate())) }
                            td { (percent(t.response_rate())) }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /supervision/satisfaction?region=…&from=YYYY-MM&to=YYYY-MM`.
pub async fn satisfaction(
    State(state): State<SharedState>,
    supervisor: Supervisor,
    query: Result<Query<SatisfactionQuery>, QueryRejection>,
) -> Response {
    let scope = &supervisor.scope;
    let Ok(Query(q)) = query else {
        return unreadable_query();
    };
    let asked = (|| {
        Ok::<_, Refused>((
            scope.region(field(&q.region))?,
            month(field(&q.from), "起始月份")?,
            month(field(&q.to), "截止月份")?,
        ))
    })();
    let (region, from, to) = match asked {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    let groups = state
        .app
        .store()
        .satisfaction(
            Dimension::Agency,
            None,
            region.as_deref(),
            Some(&scope.prefix),
            from.as_deref(),
            to.as_deref(),
        )
        .await;
    let groups = match groups {
        Ok(g) => g,
        Err(e) => return unavailable(e),
    };
    let (agencies, months) = totals(&groups);
    let mut all = Tally::default();
    for t in months.values() {
        all.merge(t);
    }
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    let body = html! {
        h1 { "满意度" }
        form.search.filters method="get" action="/supervision/satisfaction" {
            label.field { "地区代码" input type="text" name="region" value=(value(&region)) maxlength="6" inputmode="numeric" placeholder=(scope.region); }
            label.field { "起始月份" input type="month" name="from" value=(value(&from)); }
            label.field { "截止月份" input type="month" name="to" value=(value(&to)); }
            button type="submit" { "统计" }
        }
        section.card {
            p {
                "扫码检查 " strong { (all.scanned) } " 次，评价 " strong { (all.ratings) } " 条，"
                "满意率 " strong.rate { (percent(all.satisfaction_rate())) } "，评价率 " (percent(all.response_rate())) "。"
            }
            p.muted { "满意率 = 满意及以上的评价 ÷ 全部评价；评价率 = 评价数 ÷ 企业扫码的检查数。" }
        }
        (charts(&agencies, &months))
        (table(&agencies))
    };
    supervisor.page(&state, StatusCode::OK, "满意度", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(key: &str, month: &str, ratings: [u64; 5]) -> StoredSatisfaction {
        let n: u64 = ratings.iter().sum();
        let sum: u64 = ratings.iter().zip(1..).map(|(c, l)| c * l).sum();
        StoredSatisfaction {
            key: key.into(),
            name: format!("{key}局"),
            month: month.into(),
            tally: Tally {
                scanned: n + 1,
                ratings: n,
                level_sum: sum,
                distribution: ratings,
            },
        }
    }

    #[test]
    fn months_and_agencies_add_up_their_groups() {
        let groups = [
            group("A", "2026-01", [0, 0, 0, 1, 1]),
            group("A", "2026-02", [1, 0, 0, 0, 0]),
            group("B", "2026-01", [0, 1, 0, 0, 0]),
        ];
        let (agencies, months) = totals(&groups);
        let a = agencies["A"].1;
        assert_eq!((a.ratings, a.scanned, a.satisfied()), (3, 5, 2));
        assert_eq!(months["2026-01"].ratings, 3);
        assert_eq!(months["2026-02"].distribution, [1, 0, 0, 0, 0]);
        let html = charts(&agencies, &months).into_string();
        // B (0%) is drawn before A (66.7%): the least satisfying first.
        let (b, a) = (html.find("B局").unwrap(), html.find("A局").unwrap());
        assert!(b < a, "{html}");
        assert!(html.contains("66.7%（3 条）"), "{html}");
    }

    #[test]
    fn a_month_is_year_and_month() {
        assert_eq!(
            month(Some("2026-03"), "m").unwrap().as_deref(),
            Some("2026-03")
        );
        for bad in ["2026-3-01", "2026-3", "2026-13"] {
            assert_eq!(
                month(Some(bad), "m").unwrap_err().status(),
                StatusCode::BAD_REQUEST
            );
        }
    }
}
