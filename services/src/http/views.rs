//! The supervision bureau's read API over the live views: history, warnings and satisfaction,
//! behind the admin bearer token. Every filter is checked before any query runs; a bad one is
//! refused with `invalid_query` and the name of the parameter.

use super::admin::Admin;
use super::{ApiError, SharedState};
use crate::store::{
    HistoryFilter, Page, StoredInspection, StoredSatisfaction, StoredWarning, WarningFilter,
};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{Months, NaiveDate, Utc};
use saoma_projections::history::time;
use saoma_projections::satisfaction::Dimension;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

/// Largest page.
const MAX_LIMIT: u64 = 500;
const DEFAULT_LIMIT: u64 = 50;
/// Longest fuzzy-search fragment, in characters.
const MAX_QUERY_CHARS: usize = 64;

pub(super) fn invalid(param: &'static str, why: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_query",
        format!("查询参数 {param} 不符合要求"),
    )
    .detail(format!("{param}: {why}"))
}

fn date(param: &'static str, v: Option<String>) -> Result<Option<String>, ApiError> {
    v.map(|s| {
        NaiveDate::parse_from_str(&s, "%Y-%m-%d")
            .map(|d| d.to_string())
            .map_err(|_| invalid(param, "expected a date YYYY-MM-DD"))
    })
    .transpose()
}

fn month(param: &'static str, v: Option<String>) -> Result<Option<String>, ApiError> {
    v.map(|s| {
        NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d")
            .map(|d| d.format("%Y-%m").to_string())
            .map_err(|_| invalid(param, "expected a month YYYY-MM"))
    })
    .transpose()
}

fn code(param: &'static str, v: Option<String>) -> Result<Option<String>, ApiError> {
    v.map(|s| {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if ok {
            Ok(s)
        } else {
            Err(invalid(
                param,
                "expected a code of letters, digits, '-', '_' or '.'",
            ))
        }
    })
    .transpose()
}

/// An officer key: a certificate number, or 警 followed by a badge number.
fn officer_key(param: &'static str, v: Option<String>) -> Result<Option<String>, ApiError> {
    v.map(|s| {
        let rest = s.strip_prefix('警').unwrap_or(&s);
        code(param, Some(rest.to_string())).map(|_| s)
    })
    .transpose()
}

fn region(v: Option<String>) -> Result<Option<String>, ApiError> {
    v.map(|s| {
        if s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(s)
        } else {
            Err(invalid("region", "expected a six-digit region code"))
        }
    })
    .transpose()
}

fn paging(offset: Option<u64>, limit: Option<u64>) -> Result<(u64, u64), ApiError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(invalid("limit", "expected 1 to 500"));
    }
    Ok((offset.unwrap_or(0), limit))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    enterprise: Option<String>,
    officer: Option<String>,
    agency: Option<String>,
    region: Option<String>,
    from: Option<String>,
    to: Option<String>,
    q: Option<String>,
    offset: Option<u64>,
    limit: Option<u64>,
}

/// `GET /api/v1/history`: inspections, latest first, filtered and paged.
pub async fn history(
    State(state): State<SharedState>,
    _: Admin,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Page<StoredInspection>>, ApiError> {
    let Query(q) = query.map_err(|e| invalid("query", &e.body_text()))?;
    let (offset, limit) = paging(q.offset, q.limit)?;
    if q.q
        .as_ref()
        .is_some_and(|s| s.chars().count() > MAX_QUERY_CHARS)
    {
        return Err(invalid("q", "at most 64 characters"));
    }
    let filter = HistoryFilter {
        enterprise: code("enterprise", q.enterprise)?,
        officer: officer_key("officer", q.officer)?,
        agency: code("agency", q.agency)?,
        region: region(q.region)?,
        within: None,
        from: date("from", q.from)?,
        to: date("to", q.to)?,
        q: q.q,
        valid_after: None,
    };
    Ok(Json(
        state.app.store().history(&filter, offset, limit).await?,
    ))
}

#[derive(Debug, Serialize)]
pub struct InspectionHistory {
    #[serde(flatten)]
    pub row: StoredInspection,
    /// Every event of the inspection, verified, in order.
    pub trace: Value,
}

/// `GET /api/v1/history/{inspection_id}`: one inspection's row and its verified trace.
pub async fn inspection(
    State(state): State<SharedState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<InspectionHistory>, ApiError> {
    let id: Uuid = id
        .parse()
        .map_err(|_| invalid("inspection_id", "expected a UUID"))?;
    let row = state
        .app
        .store()
        .inspection_row(&id.to_string())
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_inspection", "检查不存在"))?;
    let trace = serde_json::to_value(state.app.trace(id).await?)
        .map_err(|e| ApiError::from(crate::app::Refusal::Internal(e.to_string())))?;
    Ok(Json(InspectionHistory { row, trace }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    offset: Option<u64>,
    limit: Option<u64>,
}

/// `GET /api/v1/officers/{key}/unexpired-codes`: an officer's codes that can still be used.
pub async fn unexpired_codes(
    State(state): State<SharedState>,
    _: Admin,
    Path(key): Path<String>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Page<StoredInspection>>, ApiError> {
    let Query(q) = query.map_err(|e| invalid("query", &e.body_text()))?;
    let (offset, limit) = paging(q.offset, q.limit)?;
    let filter = HistoryFilter {
        officer: officer_key("officer", Some(key))?,
        valid_after: Some(time(Utc::now())),
        ..HistoryFilter::default()
    };
    Ok(Json(
        state.app.store().history(&filter, offset, limit).await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarningQuery {
    rule: Option<String>,
    agency: Option<String>,
    region: Option<String>,
    enterprise: Option<String>,
    from: Option<String>,
    to: Option<String>,
    offset: Option<u64>,
    limit: Option<u64>,
}

/// `GET /api/v1/warnings`: warnings, latest first. `from`/`to` are dates (Asia/Shanghai
/// calendar is not applied: `at` is UTC; `to` is exclusive).
pub async fn warnings(
    State(state): State<SharedState>,
    _: Admin,
    query: Result<Query<WarningQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Page<StoredWarning>>, ApiError> {
    let Query(q) = query.map_err(|e| invalid("query", &e.body_text()))?;
    let (offset, limit) = paging(q.offset, q.limit)?;
    let rule = match q.rule {
        Some(r)
            if !saoma_projections::warnings::Rule::ALL
                .iter()
                .any(|k| k.code() == r) =>
        {
            return Err(invalid("rule", "unknown rule code"))
        }
        other => other,
    };
    let filter = WarningFilter {
        rule,
        agency: code("agency", q.agency)?,
        region: region(q.region)?,
        within: None,
        enterprise: code("enterprise", q.enterprise)?,
        from: date("from", q.from)?,
        to: date("to", q.to)?,
    };
    Ok(Json(
        state.app.store().warnings(&filter, offset, limit).await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SatisfactionQuery {
    by: Option<String>,
    agency: Option<String>,
    region: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SatisfactionLine {
    #[serde(flatten)]
    pub group: StoredSatisfaction,
    pub mean: Option<f64>,
    pub satisfaction_rate: Option<f64>,
    pub response_rate: Option<f64>,
}

/// `GET /api/v1/satisfaction?by=agency|officer|region`: figures per key and month.
pub async fn satisfaction(
    State(state): State<SharedState>,
    _: Admin,
    query: Result<Query<SatisfactionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| invalid("query", &e.body_text()))?;
    let by = q.by.as_deref().unwrap_or("agency");
    let dimension =
        Dimension::parse(by).ok_or_else(|| invalid("by", "expected agency, officer or region"))?;
    let (agency, region, from, to) = (
        code("agency", q.agency)?,
        region(q.region)?,
        month("from", q.from)?,
        month("to", q.to)?,
    );
    let groups = state
        .app
        .store()
        .satisfaction(
            dimension,
            agency.as_deref(),
            region.as_deref(),
            None,
            from.as_deref(),
            to.as_deref(),
        )
        .await?;
    let lines: Vec<SatisfactionLine> = groups
        .into_iter()
        .map(|g| SatisfactionLine {
            mean: g.tally.mean(),
            satisfaction_rate: g.tally.satisfaction_rate(),
            response_rate: g.tally.response_rate(),
            group: g,
        })
        .collect();
    Ok(Json(json!({ "by": dimension.as_str(), "groups": lines })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorstQuery {
    agency: Option<String>,
    officer: Option<String>,
    region: Option<String>,
    month: Option<String>,
    offset: Option<u64>,
    limit: Option<u64>,
}

/// One of the worst-rated visits: the rating and its comment, and what tells the visit apart.
#[derive(Debug, Serialize)]
pub struct RatedVisit {
    pub level: u8,
    pub comment: String,
    pub inspection_id: String,
    pub agency_code: String,
    pub agency_name: String,
    pub enterprise_code: String,
    pub enterprise_name: String,
    pub region: String,
    pub officers: String,
    pub officer_names: String,
    pub date: String,
    pub rated_at: String,
}

impl RatedVisit {
    /// `None` for an unrated row (the query returns none).
    fn of(s: StoredInspection) -> Option<Self> {
        let r = s.row;
        Some(RatedVisit {
            level: r.rating?,
            comment: r.rating_comment,
            inspection_id: r.inspection_id,
            agency_code: r.agency_code,
            agency_name: r.agency_name,
            enterprise_code: r.enterprise_code,
            enterprise_name: r.enterprise_name,
            region: r.region,
            officers: r.officers,
            officer_names: r.officer_names,
            date: r.date,
            rated_at: r.rated_at,
        })
    }
}

/// The first and last day of a `YYYY-MM` month, as the history filter's inclusive dates.
fn month_days(month: &str) -> Option<(String, String)> {
    let first = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").ok()?;
    let last = first.checked_add_months(Months::new(1))?.pred_opt()?;
    Some((first.to_string(), last.to_string()))
}

/// `GET /api/v1/satisfaction/worst`: the worst-rated visits with their comments, of one
/// agency, officer, region and month when given, counted as the satisfaction statistics
/// count (no revoked codes, no non-inspection visits); lowest level first, then the earliest
/// date, then the inspection id.
pub async fn worst_rated(
    State(state): State<SharedState>,
    _: Admin,
    query: Result<Query<WorstQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Page<RatedVisit>>, ApiError> {
    let Query(q) = query.map_err(|e| invalid("query", &e.body_text()))?;
    let (offset, limit) = paging(q.offset, q.limit)?;
    let days = month("month", q.month)?
        .map(|m| month_days(&m).ok_or_else(|| invalid("month", "expected a month YYYY-MM")))
        .transpose()?;
    let (from, to) = days.unzip();
    let filter = HistoryFilter {
        agency: code("agency", q.agency)?,
        officer: officer_key("officer", q.officer)?,
        region: region(q.region)?,
        from,
        to,
        ..HistoryFilter::default()
    };
    let page = state
        .app
        .store()
        .worst_rated(&filter, offset, limit)
        .await?;
    Ok(Json(Page {
        items: page.items.into_iter().filter_map(RatedVisit::of).collect(),
        offset: page.offset,
        next_offset: page.next_offset,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrequencyQuery {
    year: Option<String>,
    region: Option<String>,
    enterprise: Option<String>,
    offset: Option<u64>,
    limit: Option<u64>,
}

/// `GET /api/v1/frequency`: inspections per year and their change from the year before (the
/// figure the provinces publish), and per enterprise beside its year before; of one `year`
/// (with the year before for the change), `region` or `enterprise` when given. The counted
/// inspections are those of the satisfaction statistics and of `frequency.csv`.
pub async fn frequency(
    State(state): State<SharedState>,
    _: Admin,
    query: Result<Query<FrequencyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| invalid("query", &e.body_text()))?;
    let year = q
        .year
        .map(|y| match y.parse::<i32>() {
            Ok(y) if (2000..=2100).contains(&y) => Ok(y),
            _ => Err(invalid("year", "expected a year from 2000 to 2100")),
        })
        .transpose()?;
    let (region, enterprise) = (region(q.region)?, code("enterprise", q.enterprise)?);
    let (offset, limit) = paging(q.offset, q.limit)?;
    let frequency = state
        .app
        .store()
        .frequency(
            region.as_deref(),
            enterprise.as_deref(),
            year.map(|y| (y - 1, y)),
        )
        .await?;
    let mut enterprises: Vec<_> = frequency
        .enterprise_years()
        .into_iter()
        .filter(|e| year.is_none_or(|y| e.year == y))
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit + 1).unwrap_or(usize::MAX))
        .collect();
    Ok(Json(json!({
        "years": frequency.years(),
        "enterprises": crate::store::page(&mut enterprises, offset, limit),
    })))
}

/// `GET /api/v1/views/status`: how far the live views have followed the log.
pub async fn status(State(state): State<SharedState>, _: Admin) -> Result<Json<Value>, ApiError> {
    let store = state.app.store();
    let position = store.cursor(crate::store::VIEWS_CURSOR).await?;
    let log = store.max_position().await?;
    let clock = store.views_clock().await?.map(time);
    Ok(Json(json!({
        "position": position,
        "clock": clock,
        "log_position": log,
        "behind": log.saturating_sub(position),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_spans_its_first_to_its_last_day() {
        let days = month_days;
        assert_eq!(
            days("2024-02"),
            Some(("2024-02-01".into(), "2024-02-29".into()))
        );
        assert_eq!(
            days("2026-12"),
            Some(("2026-12-01".into(), "2026-12-31".into()))
        );
        assert_eq!(days("2026-13"), None);
    }
}
