//! History (历史检查): one flat row per inspection, what the supervision bureau lists, searches
//! and exports. The same row is stored by the live projection and written to `history.csv` by
//! a replay.

use crate::code_view::kind_label;
use crate::visit::Visit;
use chrono::{DateTime, SecondsFormat, Utc};
use saoma_domain::inspection::{shanghai_date, Outcome, ValidityState};
use serde::Serialize;

/// Where an inspection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Issued, not yet scanned by the enterprise.
    Issued,
    /// Scanned by the enterprise, no result yet.
    Scanned,
    /// The officer reported the result.
    Reported,
    Revoked,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Issued => "issued",
            Status::Scanned => "scanned",
            Status::Reported => "reported",
            Status::Revoked => "revoked",
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Status::Issued => "已赋码",
            Status::Scanned => "已扫码",
            Status::Reported => "已反馈结果",
            Status::Revoked => "已作废",
        }
    }
}

/// One inspection, flattened. Times are RFC 3339 in UTC with second precision; `date` and
/// `month` are Asia/Shanghai calendar values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryRow {
    pub inspection_id: String,
    /// 计划检查 / 补录 / 非计划检查 / 非检查类入企.
    pub kind: String,
    pub kind_detail: String,
    pub routine: bool,
    pub agency_code: String,
    pub agency_name: String,
    pub agency_level: String,
    pub agency_region: String,
    pub enterprise_code: String,
    pub enterprise_name: String,
    /// The enterprise's region: the rule set and the regional statistics follow it.
    pub region: String,
    /// Officer keys (certificate numbers, 警 + badge numbers), `;`-separated.
    pub officers: String,
    pub officer_names: String,
    pub item_codes: String,
    pub item_names: String,
    pub joint_partners: String,
    pub date: String,
    pub month: String,
    pub valid_from: String,
    pub valid_until: String,
    pub issued_at: String,
    pub status: String,
    pub shown_at: String,
    pub enterprise_scanned_at: String,
    pub officer_scanned_at: String,
    pub mutual_verified: bool,
    pub refused_scans: u32,
    pub rating: Option<u8>,
    pub rating_comment: String,
    pub rated_at: String,
    /// `no_problems` or `problems_found`; empty while not reported.
    pub result: String,
    pub result_feedback: String,
    pub reported_at: String,
    pub revoked_at: String,
    pub feedback_count: u32,
    pub events: u32,
}

/// An instant as history writes it: `2026-03-02T02:00:00Z`.
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn opt_time<T>(step: Option<&T>, at: impl Fn(&T) -> DateTime<Utc>) -> String {
    step.map(|s| time(at(s))).unwrap_or_default()
}

impl Visit {
    pub fn status(&self) -> Status {
        if self.revoked.is_some() {
            Status::Revoked
        } else if self.result.is_some() {
            Status::Reported
        } else if self.enterprise_scan.is_some() {
            Status::Scanned
        } else {
            Status::Issued
        }
    }

    /// The code can still be used: not revoked and its window has not closed at `now`.
    pub fn unexpired_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked.is_none() && self.validity.state_at(now) != ValidityState::Expired
    }

    pub fn history_row(&self) -> HistoryRow {
        let (kind, kind_detail) = kind_label(&self.kind);
        let join = |parts: Vec<String>| parts.join(";");
        let (result, result_feedback) = match self.result.as_ref().map(|r| &r.0) {
            None => (String::new(), String::new()),
            Some(Outcome::NoProblems) => ("no_problems".to_string(), String::new()),
            Some(Outcome::ProblemsFound { feedback }) => {
                ("problems_found".to_string(), feedback.clone())
            }
        };
        HistoryRow {
            inspection_id: self.inspection_id.to_string(),
            kind: kind.to_string(),
            kind_detail,
            routine: self.is_routine(),
            agency_code: self.agency.code.to_string(),
            agency_name: self.agency.name.clone(),
            agency_level: enum_name(&self.agency.level),
            agency_region: self.agency.region.to_string(),
            enterprise_code: self.enterprise.credit_code.to_string(),
            enterprise_name: self.enterprise.name.clone(),
            region: self.enterprise.region.clone(),
            officers: join(self.officer_keys()),
            officer_names: join(self.officers.iter().map(|o| o.name.clone()).collect()),
            item_codes: join(self.items.iter().map(|i| i.code.to_string()).collect()),
            item_names: join(self.items.iter().map(|i| i.name.clone()).collect()),
            joint_partners: join(
                self.joint_partners
                    .iter()
                    .map(|a| a.code.to_string())
                    .collect(),
            ),
            date: self.date.to_string(),
            month: self.date.format("%Y-%m").to_string(),
            valid_from: time(self.validity.valid_from),
            valid_until: time(self.validity.valid_until),
            issued_at: time(self.issued.at),
            status: self.status().as_str().to_string(),
            shown_at: opt_time(self.shown.as_ref(), |s| s.at),
            enterprise_scanned_at: opt_time(self.enterprise_scan.as_ref(), |s| s.at),
            officer_scanned_at: opt_time(self.officer_scan.as_ref(), |s| s.at),
            mutual_verified: self.mutually_verified(),
            refused_scans: count(self.refused_scans.len()),
            rating: self.rating.as_ref().map(|r| r.level),
            rating_comment: self
                .rating
                .as_ref()
                .and_then(|r| r.comment.clone())
                .unwrap_or_default(),
            rated_at: opt_time(self.rating.as_ref(), |r| r.step.at),
            result,
            result_feedback,
            reported_at: opt_time(self.result.as_ref(), |r| r.1.at),
            revoked_at: opt_time(self.revoked.as_ref(), |r| r.1.at),
            feedback_count: count(self.feedback.len()),
            events: count(self.events.len()),
        }
    }
}

/// The Shanghai calendar month (`YYYY-MM`) of an instant.
pub fn shanghai_month(t: DateTime<Utc>) -> String {
    shanghai_date(t).format("%Y-%m").to_string()
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The serde name of a unit enum variant (`AgencyLevel::City` → `city`).
fn enum_name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}
