//! Warnings (预警) for the supervision bureau: inspections that break a region's rules.
//!
//! The `WarningEngine` is fed the log in order (`on_registry`, `on_event`) and told when time
//! passes (`advance`). Each rule lives in its own module; this module holds what they share.
//!
//! - **When a visit counts.** A code counts as a visit once it is used (the first `CodeShown`,
//!   `CodeScanned` or `ResultReported`), or, unused, once its validity window has closed while
//!   it is not revoked. A revoked code never counts. Rules about visits (annual cap, plan
//!   frequency, multi-head, repeated item, quiet day, officers, 补录, disguised visits) are judged
//!   at that moment, which is the warning's `at`.
//! - **Day of a visit.** The Asia/Shanghai date of its first show or scan, else the code's
//!   inspection date; years and months are Asia/Shanghai calendar years and months.
//! - **Time-based rules** (code not scanned, result overdue, month ends) fire from `advance`
//!   once `now` has passed their deadline plus the rule set's grace period; their `at` is the
//!   deadline itself.
//! - **Ids** are `{rule code}:{16 hex}`, the hex being the first 8 bytes of SHA-256 over the
//!   rule code and the warning's subjects (e.g. the inspection id), joined by 0x1F. The same
//!   warning always gets the same id, and an id is emitted at most once.
//! - **Bounded state.** Per-window, per-month and per-year state is dropped once `advance` has
//!   moved `LATE_MARGIN_DAYS` past its horizon.

mod annual_cap;
mod disguised_visit;
#[cfg(test)]
pub(crate) mod fixtures;
mod heavy_supplementary;
mod low_satisfaction;
mod multi_head;
mod plan_frequency;
mod quiet_day;
mod repeated_item;
mod result_overdue;
mod too_few_officers;
mod unscanned;

use crate::rules::{RuleBook, RuleSet};
use crate::visit::{EventId, Visit};
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Asia::Shanghai;
use saoma_domain::inspection::{shanghai_date, EnterpriseOnCode, InspectionEvent, InspectionKind};
use saoma_domain::registry::{Agency, RegistryEvent};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use uuid::Uuid;

/// How far behind `advance` an event may still arrive and be judged with full state: per-day,
/// per-month and per-year state, plans and the ids already emitted are kept this long past
/// their horizon. Covers the longest validity window (720 h) plus the service's accepted delay.
pub const LATE_MARGIN_DAYS: i64 = 35;

fn late_margin() -> Duration {
    Duration::days(LATE_MARGIN_DAYS)
}

/// How grave a warning is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Serious,
}

impl Severity {
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Serious => "serious",
        }
    }

    /// 提示 / 预警 / 严重.
    pub fn label(&self) -> &'static str {
        match self {
            Severity::Info => "提示",
            Severity::Warning => "预警",
            Severity::Serious => "严重",
        }
    }
}

/// The rule a warning is about. `code()` is stable and equals the serde name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    PlanFrequencyExceeded,
    AnnualCapExceeded,
    MultiHeadInspection,
    RepeatedInspection,
    QuietDayInspection,
    CodeNotScanned,
    NotMutuallyVerified,
    ResultOverdue,
    TooFewOfficers,
    HeavySupplementary,
    DisguisedInspection,
    LowRating,
    LowSatisfactionRate,
}

impl Rule {
    pub const ALL: [Rule; 13] = [
        Rule::PlanFrequencyExceeded,
        Rule::AnnualCapExceeded,
        Rule::MultiHeadInspection,
        Rule::RepeatedInspection,
        Rule::QuietDayInspection,
        Rule::CodeNotScanned,
        Rule::NotMutuallyVerified,
        Rule::ResultOverdue,
        Rule::TooFewOfficers,
        Rule::HeavySupplementary,
        Rule::DisguisedInspection,
        Rule::LowRating,
        Rule::LowSatisfactionRate,
    ];

    pub fn code(&self) -> &'static str {
        match self {
            Rule::PlanFrequencyExceeded => "plan_frequency_exceeded",
            Rule::AnnualCapExceeded => "annual_cap_exceeded",
            Rule::MultiHeadInspection => "multi_head_inspection",
            Rule::RepeatedInspection => "repeated_inspection",
            Rule::QuietDayInspection => "quiet_day_inspection",
            Rule::CodeNotScanned => "code_not_scanned",
            Rule::NotMutuallyVerified => "not_mutually_verified",
            Rule::ResultOverdue => "result_overdue",
            Rule::TooFewOfficers => "too_few_officers",
            Rule::HeavySupplementary => "heavy_supplementary",
            Rule::DisguisedInspection => "disguised_inspection",
            Rule::LowRating => "low_rating",
            Rule::LowSatisfactionRate => "low_satisfaction_rate",
        }
    }

    /// What supervisors read.
    pub fn title(&self) -> &'static str {
        match self {
            Rule::PlanFrequencyExceeded => "检查计划超出频次",
            Rule::AnnualCapExceeded => "年度检查次数超过上限",
            Rule::MultiHeadInspection => "多头检查",
            Rule::RepeatedInspection => "多层级重复检查",
            Rule::QuietDayInspection => "宁静日入企检查",
            Rule::CodeNotScanned => "检查码未扫码",
            Rule::NotMutuallyVerified => "未完成两码互核",
            Rule::ResultOverdue => "检查结果反馈超时",
            Rule::TooFewOfficers => "执法人员少于规定人数",
            Rule::HeavySupplementary => "补录检查过多",
            Rule::DisguisedInspection => "以非检查名义变相检查",
            Rule::LowRating => "企业评价不满意",
            Rule::LowSatisfactionRate => "月度满意率偏低",
        }
    }

    pub fn severity(&self) -> Severity {
        match self {
            Rule::PlanFrequencyExceeded
            | Rule::AnnualCapExceeded
            | Rule::QuietDayInspection
            | Rule::DisguisedInspection => Severity::Serious,
            Rule::MultiHeadInspection
            | Rule::RepeatedInspection
            | Rule::CodeNotScanned
            | Rule::ResultOverdue
            | Rule::TooFewOfficers
            | Rule::HeavySupplementary
            | Rule::LowSatisfactionRate => Severity::Warning,
            Rule::NotMutuallyVerified | Rule::LowRating => Severity::Info,
        }
    }
}

/// One warning (预警).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// `{rule code}:{16 hex}`, the same for the same warning however often the log is replayed.
    pub id: String,
    pub rule: Rule,
    pub severity: Severity,
    /// The enterprise's region code; the agency's for rules about an agency's month.
    pub region: String,
    /// Agency codes, in a stable order.
    pub agencies: Vec<String>,
    /// The enterprise's credit code, when the warning is about one enterprise.
    pub enterprise: Option<String>,
    /// Officer keys (certificate number, or 警 + badge number).
    pub officers: Vec<String>,
    /// When the rule was broken: the event's time, or the deadline of a time-based rule.
    #[serde(deserialize_with = "saoma_domain::time::utc")]
    pub at: DateTime<Utc>,
    /// Ids of the events that prove it.
    pub evidence: Vec<EventId>,
    /// What happened, in Chinese.
    pub detail: String,
}

/// Where `advance` finds the visits whose deadlines pass.
pub trait VisitLookup {
    fn visit(&self, id: &Uuid) -> Option<&Visit>;
}

impl VisitLookup for HashMap<Uuid, Visit> {
    fn visit(&self, id: &Uuid) -> Option<&Visit> {
        self.get(id)
    }
}

impl VisitLookup for BTreeMap<Uuid, Visit> {
    fn visit(&self, id: &Uuid) -> Option<&Visit> {
        self.get(id)
    }
}

/// `{rule code}:` + 16 hex characters of SHA-256(code ‖ 0x1F ‖ part ‖ 0x1F ‖ part …).
pub fn warning_id(rule: Rule, key: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(rule.code().as_bytes());
    for part in key {
        h.update([0x1f]);
        h.update(part.as_bytes());
    }
    let d = h.finalize();
    format!("{}:{}", rule.code(), hex::encode(&d[..8]))
}

// ---------------------------------------------------------------------------------------------
// Shared by the rules
// ---------------------------------------------------------------------------------------------

/// A visit at the moment it came to count.
pub(crate) struct Confirmation<'a> {
    pub visit: &'a Visit,
    /// The rule set of the enterprise's region.
    pub rules: &'a RuleSet,
    /// When it came to count: its first use, or the close of its validity window.
    pub at: DateTime<Utc>,
    /// The Asia/Shanghai day of the visit.
    pub day: NaiveDate,
    /// `CodeIssued`, and the event that made the visit count when there is one.
    pub evidence: Vec<EventId>,
}

/// A warning about one visit, its agency, enterprise and officers.
pub(crate) fn visit_warning(
    rule: Rule,
    key: &[&str],
    visit: &Visit,
    at: DateTime<Utc>,
    evidence: Vec<EventId>,
    detail: String,
) -> Warning {
    Warning {
        id: warning_id(rule, key),
        rule,
        severity: rule.severity(),
        region: visit.enterprise.region.clone(),
        agencies: vec![visit.agency.code.to_string()],
        enterprise: Some(visit.enterprise.credit_code.to_string()),
        officers: visit.officer_keys(),
        at,
        evidence,
        detail,
    }
}

/// The Asia/Shanghai date of the first show or scan, else the code's inspection date.
pub(crate) fn visit_day(v: &Visit) -> NaiveDate {
    [&v.shown, &v.enterprise_scan, &v.officer_scan]
        .into_iter()
        .flatten()
        .map(|s| s.at)
        .min()
        .map(shanghai_date)
        .unwrap_or(v.date)
}

/// When an unused code stops being usable: its window's end, or its issue if that was later
/// (a code recorded after the fact).
pub(crate) fn close_time(v: &Visit) -> DateTime<Utc> {
    v.validity.valid_until.max(v.issued.at)
}

/// 00:00 Asia/Shanghai on `d`, in UTC.
pub(crate) fn shanghai_midnight(d: NaiveDate) -> DateTime<Utc> {
    let m = d.and_time(NaiveTime::MIN);
    Shanghai
        .from_local_datetime(&m)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&m) - Duration::hours(8))
}

/// A calendar month in Asia/Shanghai.
pub(crate) type Month = (i32, u32);

pub(crate) fn month_of(t: DateTime<Utc>) -> Month {
    let d = shanghai_date(t);
    (d.year(), d.month())
}

/// The first instant after the month, in UTC.
pub(crate) fn month_end((year, month): Month) -> DateTime<Utc> {
    let (y, m) = if month >= 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    shanghai_midnight(NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(NaiveDate::MAX))
}

pub(crate) fn month_label((year, month): Month) -> String {
    format!("{year:04}-{month:02}")
}

/// The first instant after the year, in UTC.
pub(crate) fn year_end(year: i32) -> DateTime<Utc> {
    shanghai_midnight(NaiveDate::from_ymd_opt(year + 1, 1, 1).unwrap_or(NaiveDate::MAX))
}

/// An instant as Asia/Shanghai wall-clock time, e.g. `2026-03-02 10:00`.
pub(crate) fn local(t: DateTime<Utc>) -> String {
    t.with_timezone(&Shanghai)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

pub(crate) fn agency_label(a: &Agency) -> String {
    format!("{}（{}）", a.name, a.code)
}

pub(crate) fn enterprise_label(e: &EnterpriseOnCode) -> String {
    format!("{}（{}）", e.name, e.credit_code)
}

pub(crate) fn kind_label(k: &InspectionKind) -> &'static str {
    match k {
        InspectionKind::Planned { .. } => "计划检查",
        InspectionKind::Supplementary { .. } => "补录",
        InspectionKind::Unplanned { .. } => "非计划检查",
        InspectionKind::NonInspection { .. } => "非检查类入企",
    }
}

pub(crate) fn weekday_label(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "星期一",
        Weekday::Tue => "星期二",
        Weekday::Wed => "星期三",
        Weekday::Thu => "星期四",
        Weekday::Fri => "星期五",
        Weekday::Sat => "星期六",
        Weekday::Sun => "星期日",
    }
}

/// Days between two dates, either way round.
pub(crate) fn days_apart(a: NaiveDate, b: NaiveDate) -> i64 {
    (a - b).num_days().abs()
}

/// Pushes `id` onto `v` unless it is there already.
pub(crate) fn push_unique(v: &mut Vec<String>, id: &str) {
    if !v.iter().any(|x| x == id) {
        v.push(id.to_string());
    }
}

// ---------------------------------------------------------------------------------------------
// The engine
// ---------------------------------------------------------------------------------------------

/// Agency code and month.
pub(crate) type MonthKey = (String, Month);

/// Something that happens at a time. The variant order is the order at equal times: a visit
/// counts before the month it counts in is judged.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Task {
    /// The code's validity window closed: an unused code counts now; scans are judged.
    Close(Uuid),
    /// The result was due.
    ResultDue(Uuid),
    SupplementaryMonthEnd(MonthKey),
    SatisfactionMonthEnd(MonthKey),
    ForgetSupplementaryMonth(MonthKey),
    ForgetSatisfactionMonth(MonthKey),
    ForgetPlan(String),
}

/// Folds the log into warnings. Deterministic: the same calls give the same warnings in the
/// same order.
#[derive(Debug, Clone)]
pub struct WarningEngine {
    book: RuleBook,
    now: Option<DateTime<Utc>>,
    /// Issued visits that do not count yet.
    open: BTreeSet<Uuid>,
    /// (when to run, the deadline it judges, what).
    agenda: BTreeSet<(DateTime<Utc>, DateTime<Utc>, Task)>,
    emitted: BTreeSet<String>,
    /// (when emitted, id), to forget ids once no event can produce them again.
    emitted_at: BTreeSet<(DateTime<Utc>, String)>,
    annual_cap: annual_cap::State,
    plan_frequency: plan_frequency::State,
    multi_head: multi_head::State,
    repeated_item: repeated_item::State,
    disguised: disguised_visit::State,
    supplementary: heavy_supplementary::State,
    satisfaction: low_satisfaction::State,
}

impl WarningEngine {
    pub fn new(book: RuleBook) -> Self {
        WarningEngine {
            book,
            now: None,
            open: BTreeSet::new(),
            agenda: BTreeSet::new(),
            emitted: BTreeSet::new(),
            emitted_at: BTreeSet::new(),
            annual_cap: Default::default(),
            plan_frequency: Default::default(),
            multi_head: Default::default(),
            repeated_item: Default::default(),
            disguised: Default::default(),
            supplementary: Default::default(),
            satisfaction: Default::default(),
        }
    }

    pub fn book(&self) -> &RuleBook {
        &self.book
    }

    /// The time `advance` has reached.
    pub fn now(&self) -> Option<DateTime<Utc>> {
        self.now
    }

    /// A registry event (plans, for plan frequency), in log order.
    pub fn on_registry(&mut self, event: &RegistryEvent, event_id: &str) -> Vec<Warning> {
        if let RegistryEvent::PlanApproved { plan } | RegistryEvent::PlanAmended { plan } = event {
            if self.plan_frequency.learn(plan, event_id) {
                let forget = year_end(plan.year) + late_margin();
                self.agenda
                    .insert((forget, forget, Task::ForgetPlan(plan.id.to_string())));
            }
        }
        Vec::new()
    }

    /// Called in log order after `visit` has absorbed `event` (visit is the updated state).
    pub fn on_event(
        &mut self,
        visit: &Visit,
        event: &InspectionEvent,
        event_id: &str,
    ) -> Vec<Warning> {
        let mut out = Vec::new();
        let id = visit.inspection_id;
        match event {
            InspectionEvent::CodeIssued { .. } => {
                // Only the first event of a visit opens it: a redelivered CodeIssued does not.
                if visit.issued.event == event_id && visit.events.len() == 1 && self.open.insert(id)
                {
                    let rules = self.book.for_region(&visit.enterprise.region);
                    let grace = rules.deadline_grace();
                    let close = close_time(visit);
                    self.agenda.insert((close + grace, close, Task::Close(id)));
                    if rules.result_deadline.enabled && visit.is_inspection() {
                        let due = rules.result_deadline.due(close);
                        self.agenda.insert((due + grace, due, Task::ResultDue(id)));
                    }
                }
            }
            InspectionEvent::CodeShown { at } | InspectionEvent::CodeScanned { at, .. } => {
                self.first_use(visit, *at, event_id, &mut out)
            }
            InspectionEvent::ResultReported { outcome, at } => {
                let rules = self.book.for_region(&visit.enterprise.region);
                disguised_visit::on_result(rules, visit, outcome, *at, event_id, &mut out);
                self.first_use(visit, *at, event_id, &mut out);
            }
            InspectionEvent::CodeRevoked { .. } => {
                self.open.remove(&id);
            }
            InspectionEvent::RatingGiven {
                level, comment, at, ..
            } => {
                let rules = self.book.for_region(&visit.enterprise.region);
                let agency_rules = self.book.for_region(visit.agency.region.as_str());
                low_satisfaction::on_low_rating(
                    rules,
                    visit,
                    *level,
                    comment.as_deref(),
                    *at,
                    event_id,
                    &mut out,
                );
                if let Some(key) =
                    self.satisfaction
                        .on_rating(agency_rules, visit, *level, *at, event_id)
                {
                    let end = month_end(key.1);
                    let grace = agency_rules.deadline_grace();
                    self.agenda
                        .insert((end + grace, end, Task::SatisfactionMonthEnd(key.clone())));
                    let forget = end + late_margin();
                    self.agenda
                        .insert((forget, forget, Task::ForgetSatisfactionMonth(key)));
                }
            }
            InspectionEvent::ScanRefused { .. } | InspectionEvent::FeedbackGiven { .. } => {}
        }
        self.emit(out)
    }

    /// When the last deadline the rules set for `visit` has been judged: after it, only a
    /// later event of the visit itself can make the rules look at it again. The result is due
    /// after the validity window closes, so its deadline is the last.
    pub fn settles_at(&self, visit: &Visit) -> DateTime<Utc> {
        let rules = self.book.for_region(&visit.enterprise.region);
        rules.result_deadline.due(close_time(visit)) + rules.deadline_grace()
    }

    /// Time passes (live: the wall clock; replay: event times, then the report's as-of time):
    /// fires every time-based rule whose deadline (plus the rule set's grace) is <= now,
    /// looking visits up by id. Time never goes backwards: an earlier `now` changes nothing.
    pub fn advance(&mut self, now: DateTime<Utc>, visits: &dyn VisitLookup) -> Vec<Warning> {
        let now = self.now.map_or(now, |n| n.max(now));
        self.now = Some(now);
        let mut out = Vec::new();
        while self.agenda.first().is_some_and(|(run, _, _)| *run <= now) {
            let Some((_, deadline, task)) = self.agenda.pop_first() else {
                break;
            };
            self.run(deadline, task, visits, &mut out);
        }
        self.prune(now);
        self.emit(out)
    }

    fn first_use(
        &mut self,
        visit: &Visit,
        at: DateTime<Utc>,
        event_id: &str,
        out: &mut Vec<Warning>,
    ) {
        if visit.revoked.is_none() && self.open.remove(&visit.inspection_id) {
            self.confirm(visit, at, Some(event_id), out);
        }
    }

    /// The visit counts from `at`: every rule about visits judges it.
    fn confirm(
        &mut self,
        visit: &Visit,
        at: DateTime<Utc>,
        event_id: Option<&str>,
        out: &mut Vec<Warning>,
    ) {
        let rules = self.book.for_region(&visit.enterprise.region);
        let mut evidence = vec![visit.issued.event.clone()];
        if let Some(e) = event_id {
            push_unique(&mut evidence, e);
        }
        let c = Confirmation {
            visit,
            rules,
            at,
            day: visit_day(visit),
            evidence,
        };
        self.plan_frequency.on_confirmed(&c, out);
        self.annual_cap.on_confirmed(&c, out);
        self.multi_head.on_confirmed(&c, out);
        self.repeated_item.on_confirmed(&c, out);
        quiet_day::on_confirmed(&c, out);
        too_few_officers::on_confirmed(&c, out);
        self.disguised.on_confirmed(&c, out);
        let agency_rules = self.book.for_region(visit.agency.region.as_str());
        if let Some(key) = self.supplementary.on_confirmed(&c, agency_rules, out) {
            let end = month_end(key.1);
            let grace = agency_rules.deadline_grace();
            self.agenda
                .insert((end + grace, end, Task::SupplementaryMonthEnd(key.clone())));
            let forget = end + late_margin();
            self.agenda
                .insert((forget, forget, Task::ForgetSupplementaryMonth(key)));
        }
    }

    fn run(
        &mut self,
        deadline: DateTime<Utc>,
        task: Task,
        visits: &dyn VisitLookup,
        out: &mut Vec<Warning>,
    ) {
        match task {
            Task::Close(id) => {
                let was_open = self.open.remove(&id);
                let Some(v) = visits.visit(&id) else { return };
                if v.revoked.is_some() {
                    return;
                }
                if was_open {
                    self.confirm(v, deadline, None, out);
                }
                let rules = self.book.for_region(&v.enterprise.region);
                unscanned::on_close(rules, v, deadline, out);
            }
            Task::ResultDue(id) => {
                let Some(v) = visits.visit(&id) else { return };
                let rules = self.book.for_region(&v.enterprise.region);
                result_overdue::on_due(rules, v, deadline, out);
            }
            Task::SupplementaryMonthEnd(key) => self
                .supplementary
                .on_month_end(&self.book, &key, deadline, out),
            Task::SatisfactionMonthEnd(key) => self
                .satisfaction
                .on_month_end(&self.book, &key, deadline, out),
            Task::ForgetSupplementaryMonth(key) => self.supplementary.forget(&key),
            Task::ForgetSatisfactionMonth(key) => self.satisfaction.forget(&key),
            Task::ForgetPlan(id) => self.plan_frequency.forget(&id, deadline),
        }
    }

    /// Drops state that no event arriving within the late margin can need.
    fn prune(&mut self, now: DateTime<Utc>) {
        let horizon = now - late_margin();
        let day = shanghai_date(horizon);
        self.annual_cap.prune(day.year());
        self.multi_head.prune(day);
        self.repeated_item.prune(day);
        self.disguised.prune(day);
        while self.emitted_at.first().is_some_and(|(t, _)| *t < horizon) {
            if let Some((_, id)) = self.emitted_at.pop_first() {
                self.emitted.remove(&id);
            }
        }
    }

    /// Drops warnings emitted before (and duplicates within `out`), remembers the rest.
    fn emit(&mut self, out: Vec<Warning>) -> Vec<Warning> {
        let mut fresh = Vec::with_capacity(out.len());
        for w in out {
            if self.emitted.insert(w.id.clone()) {
                let stamp = self.now.map_or(w.at, |n| n.max(w.at));
                self.emitted_at.insert((stamp, w.id.clone()));
                fresh.push(w);
            }
        }
        fresh
    }

    /// How many entries (open visits, deadlines, remembered ids, per-window, per-month and
    /// per-year records) the engine holds: a gauge of its memory, which stays bounded.
    pub fn footprint(&self) -> usize {
        self.open.len()
            + self.agenda.len()
            + self.emitted.len()
            + self.annual_cap.len()
            + self.plan_frequency.len()
            + self.multi_head.len()
            + self.repeated_item.len()
            + self.disguised.len()
            + self.supplementary.len()
            + self.satisfaction.len()
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use saoma_domain::registry::AgencyLevel;

    #[test]
    fn rule_codes_are_their_serde_names_and_unique() {
        let mut seen = BTreeSet::new();
        for r in Rule::ALL {
            assert_eq!(serde_json::to_value(r).unwrap(), r.code());
            assert!(seen.insert(r.code()), "{}", r.code());
            assert!(!r.title().is_ascii(), "{} has a Chinese title", r.code());
        }
        assert_eq!(serde_json::to_value(Severity::Serious).unwrap(), "serious");
        assert_eq!(Severity::Info.as_str(), "info");
    }

    #[test]
    fn ids_are_the_rule_code_and_16_hex_of_the_key() {
        let a = warning_id(Rule::AnnualCapExceeded, &["A", "B"]);
        assert_eq!(a, warning_id(Rule::AnnualCapExceeded, &["A", "B"]));
        assert!(a.starts_with("annual_cap_exceeded:"));
        let hex = a.rsplit(':').next().unwrap();
        assert_eq!(hex.len(), 16);
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
        // The separator keeps ("AB", "") and ("A", "B") apart.
        assert_ne!(a, warning_id(Rule::AnnualCapExceeded, &["AB", ""]));
        assert_ne!(a, warning_id(Rule::QuietDayInspection, &["A", "B"]));
    }

    #[test]
    fn months_and_years_end_at_shanghai_midnight() {
        assert_eq!(month_end((2026, 3)), shanghai("2026-04-01 00:00:00"));
        assert_eq!(month_end((2026, 12)), shanghai("2027-01-01 00:00:00"));
        assert_eq!(year_end(2026), shanghai("2027-01-01 00:00:00"));
        assert_eq!(month_of(shanghai("2026-03-31 23:59:59")), (2026, 3));
        assert_eq!(month_of(shanghai("2026-04-01 00:00:00")), (2026, 4));
    }

    /// A mixed scenario: every rule that can fire does.
    fn busy(sim: &mut Sim) {
        let city = agency("ZZ-SCJ", AgencyLevel::City);
        let county = agency("LS-SCJ", AgencyLevel::County);
        let e = enterprise(1, "430202");
        let a = sim.issue(code(&city, &e, "2026-03-02").officers(1));
        sim.show(a, "2026-03-02 09:00:00");
        sim.scan(a, "2026-03-02 09:05:00");
        sim.rate(a, "2026-03-02 12:00:00", 1);
        let b = sim.issue(code(&county, &e, "2026-03-03"));
        sim.show(b, "2026-03-03 10:00:00");
        let c = sim.issue(code(&city, &e, "2026-03-05"));
        sim.scan(c, "2026-03-05 10:00:00");
        sim.advance("2026-04-30 00:00:00");
    }

    #[test]
    fn the_same_calls_give_the_same_warnings_in_the_same_order() {
        let mut one = Sim::new(rules());
        busy(&mut one);
        let mut two = Sim::new(rules());
        busy(&mut two);
        assert!(one.warnings.len() >= 6, "{:#?}", one.warnings);
        assert_eq!(
            serde_json::to_string(&one.warnings).unwrap(),
            serde_json::to_string(&two.warnings).unwrap()
        );
        let ids: BTreeSet<_> = one.warnings.iter().map(|w| &w.id).collect();
        assert_eq!(ids.len(), one.warnings.len(), "ids are unique");
    }

    #[test]
    fn replaying_the_events_again_emits_nothing_new() {
        let mut sim = Sim::new(rules());
        let city = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        let a = sim.issue(code(&city, &e, "2026-03-02").officers(1));
        let shown = sim.show(a, "2026-03-02 09:00:00");
        assert!(shown.iter().any(|w| w.rule == Rule::TooFewOfficers));
        // The same event delivered again, and a redelivered CodeIssued.
        let visit = sim.visits[&a].clone();
        let again = sim.engine.on_event(
            &visit,
            &InspectionEvent::CodeShown {
                at: shanghai("2026-03-02 09:00:00"),
            },
            &visit.events[1],
        );
        assert!(again.is_empty(), "{again:#?}");
        let issued = sim.issued_event(a);
        assert!(sim
            .engine
            .on_event(&visit, &issued, &visit.events[0])
            .is_empty());
        let later = sim.advance("2026-04-30 00:00:00");
        assert!(
            later.iter().all(|w| w.rule != Rule::TooFewOfficers),
            "{later:#?}"
        );
    }

    #[test]
    fn advance_never_goes_backwards() {
        let mut sim = Sim::new(rules());
        let city = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        sim.issue(code(&city, &e, "2026-03-02"));
        sim.advance("2026-03-10 00:00:00");
        let n = sim.warnings.len();
        assert!(n > 0);
        assert!(sim.advance("2026-03-01 00:00:00").is_empty());
        assert_eq!(sim.engine.now(), Some(shanghai("2026-03-10 00:00:00")));
    }

    #[test]
    fn the_shipped_rules_apply_by_the_enterprises_region() {
        // The same two routine visits of a Zhuzhou agency, on a Tuesday and a Wednesday, to an
        // enterprise in Zhuzhou (cap 1, quiet Monday to Wednesday) and one in Changsha (default
        // rules: cap 2, no quiet days).
        let mut sim = Sim::with_book(RuleBook::shipped());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        for d in ["2026-03-03", "2026-03-04"] {
            for region in ["430202", "430102"] {
                let e = enterprise(1, region);
                let id = sim.issue(code(&a, &e, d));
                sim.show(id, &format!("{d} 10:00:00"));
                sim.scan(id, &format!("{d} 10:01:00"));
                sim.result(id, &format!("{d} 11:00:00"), false);
            }
        }
        sim.advance("2026-04-30 00:00:00");
        let zhuzhou = |w: &&&Warning| w.region == "430202";
        assert_eq!(
            sim.of(Rule::AnnualCapExceeded)
                .iter()
                .filter(zhuzhou)
                .count(),
            1
        );
        assert_eq!(sim.of(Rule::AnnualCapExceeded).len(), 1);
        assert_eq!(
            sim.of(Rule::QuietDayInspection)
                .iter()
                .filter(zhuzhou)
                .count(),
            2
        );
        assert_eq!(sim.of(Rule::QuietDayInspection).len(), 2);
        assert!(sim.of(Rule::CodeNotScanned).is_empty());
        assert!(sim.of(Rule::ResultOverdue).is_empty());
        for w in &sim.warnings {
            let back: Warning = serde_json::from_str(&serde_json::to_string(w).unwrap()).unwrap();
            assert_eq!(&back, w);
        }
    }

    #[test]
    fn memory_stays_bounded_over_years_of_visits() {
        let mut sim = Sim::new(rules());
        sim.keep_visits = false;
        let agencies = [
            agency("ZZ-SCJ", AgencyLevel::City),
            agency("LS-SCJ", AgencyLevel::County),
            agency("HN-SCJ", AgencyLevel::Province),
        ];
        let enterprises: Vec<_> = (1..=20).map(|n| enterprise(n, "430202")).collect();
        let mut footprints = Vec::new();
        let mut date = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        let mut n = 0usize;
        while date.year() < 2027 {
            for (i, e) in enterprises.iter().enumerate() {
                if !(date.ordinal() as usize + i).is_multiple_of(3) {
                    continue;
                }
                let a = &agencies[(n + i) % agencies.len()];
                n += 1;
                let c = code(a, e, &date.to_string())
                    .issued_utc(shanghai_midnight(date) - Duration::hours(2));
                let id = sim.issue(c);
                let at = shanghai_midnight(date) + Duration::hours(10);
                sim.show_at(id, at);
                sim.scan_at(id, at + Duration::minutes(5));
                if n.is_multiple_of(2) {
                    sim.result_at(id, at + Duration::hours(2), false);
                    sim.rate_at(id, at + Duration::hours(3), 1 + (n % 5) as u8);
                }
            }
            if date.month() == 12 && date.day() == 31 {
                footprints.push(sim.engine.footprint());
            }
            date = date.succ_opt().unwrap();
        }
        assert!(n > 7000, "{n} visits");
        // State after the second and third years is no bigger than after the first: it holds
        // about one year of (agency, enterprise) counts and a few weeks of the rest, whatever
        // the length of the log.
        assert_eq!(footprints.len(), 3);
        let (first, last) = (footprints[0], footprints[2]);
        assert!(last <= first + first / 20, "{footprints:?}");
        let per_year = n / 3;
        assert!(
            last < per_year * 2,
            "{footprints:?} for {per_year} visits a year"
        );
        assert!(!sim.warnings.is_empty());
    }
}
