//! Low satisfaction, two rules:
//! - 企业评价不满意 (`low_rating`): a rating at or below `low_rating.max_level`, under the rule
//!   set of the enterprise's region, at the rating's time.
//! - 月度满意率偏低 (`satisfaction_rate`): per agency and Asia/Shanghai calendar month of the
//!   ratings, under the rule set of the agency's region: with at least `min_ratings` ratings, a
//!   share at or above `satisfied_level` below `min_rate_percent`, judged at the month's end.

use super::{
    agency_label, enterprise_label, month_label, month_of, push_unique, visit_warning, MonthKey,
    Rule, Warning,
};
use crate::rules::{RuleBook, RuleSet};
use crate::visit::{EventId, Visit};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

fn level_label(level: u8) -> &'static str {
    match level {
        1 => "非常不满意",
        2 => "不满意",
        3 => "基本满意",
        4 => "满意",
        _ => "非常满意",
    }
}

/// A rating at or below the rule set's level.
pub(crate) fn on_low_rating(
    rules: &RuleSet,
    v: &Visit,
    level: u8,
    comment: Option<&str>,
    at: DateTime<Utc>,
    event_id: &str,
    out: &mut Vec<Warning>,
) {
    let rule = &rules.low_rating;
    if !rule.enabled || level > rule.max_level {
        return;
    }
    let comment = comment
        .map(|c| format!("，意见：“{c}”"))
        .unwrap_or_default();
    let detail = format!(
        "{}对{}的检查（执法日期{}）评价为{}分（{}）{}",
        enterprise_label(&v.enterprise),
        agency_label(&v.agency),
        v.date,
        level,
        level_label(level),
        comment
    );
    let mut evidence = vec![v.issued.event.clone()];
    push_unique(&mut evidence, event_id);
    out.push(visit_warning(
        Rule::LowRating,
        &[&v.inspection_id.to_string()],
        v,
        at,
        evidence,
        detail,
    ));
}

#[derive(Debug, Clone)]
struct Month {
    agency_name: String,
    region: String,
    ratings: u32,
    satisfied: u32,
    /// The ratings below the satisfied level.
    unsatisfied: Vec<EventId>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct State {
    months: BTreeMap<MonthKey, Month>,
}

impl State {
    /// Tallies a rating; returns the month's key when it is the month's first, so that the
    /// engine can schedule its end.
    pub(crate) fn on_rating(
        &mut self,
        agency_rules: &RuleSet,
        v: &Visit,
        level: u8,
        at: DateTime<Utc>,
        event_id: &str,
    ) -> Option<MonthKey> {
        let rule = &agency_rules.satisfaction_rate;
        if !rule.enabled {
            return None;
        }
        let key: MonthKey = (v.agency.code.to_string(), month_of(at));
        let new = !self.months.contains_key(&key);
        let m = self.months.entry(key.clone()).or_insert_with(|| Month {
            agency_name: v.agency.name.clone(),
            region: v.agency.region.to_string(),
            ratings: 0,
            satisfied: 0,
            unsatisfied: Vec::new(),
        });
        m.ratings += 1;
        if level >= rule.satisfied_level {
            m.satisfied += 1;
        } else {
            m.unsatisfied.push(event_id.to_string());
        }
        new.then_some(key)
    }

    pub(crate) fn on_month_end(
        &mut self,
        book: &RuleBook,
        key: &MonthKey,
        end: DateTime<Utc>,
        out: &mut Vec<Warning>,
    ) {
        let Some(m) = self.months.get(key) else {
            return;
        };
        let rule = &book.for_region(&m.region).satisfaction_rate;
        if !rule.enabled || m.ratings < rule.min_ratings {
            return;
        }
        let (s, n) = (u64::from(m.satisfied), u64::from(m.ratings));
        if s * 100 >= u64::from(rule.min_rate_percent) * n {
            return;
        }
        let permille = s * 1000 / n;
        let month = month_label(key.1);
        out.push(Warning {
            id: super::warning_id(Rule::LowSatisfactionRate, &[&key.0, &month]),
            rule: Rule::LowSatisfactionRate,
            severity: Rule::LowSatisfactionRate.severity(),
            region: m.region.clone(),
            agencies: vec![key.0.clone()],
            enterprise: None,
            officers: Vec::new(),
            at: end,
            evidence: m.unsatisfied.clone(),
            detail: format!(
                "{}（{}）{}年{}月收到企业评价{}条，{}分及以上{}条，满意率{}.{}%，低于{}%",
                m.agency_name,
                key.0,
                key.1 .0,
                key.1 .1,
                n,
                rule.satisfied_level,
                s,
                permille / 10,
                permille % 10,
                rule.min_rate_percent
            ),
        });
    }

    pub(crate) fn forget(&mut self, key: &MonthKey) {
        self.months.remove(key);
    }

    pub(crate) fn len(&self) -> usize {
        self.months.len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{Rule, Severity};
    use saoma_domain::registry::AgencyLevel;

    fn rated(sim: &mut Sim, n: u32, date: &str, at: &str, level: u8) -> uuid::Uuid {
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let id = sim.issue(code(&a, &enterprise(n, "430202"), date));
        sim.scan(id, &format!("{date} 10:00:00"));
        sim.rate(id, at, level);
        id
    }

    #[test]
    fn a_rating_of_two_or_less_is_a_low_rating() {
        let mut sim = Sim::new(rules());
        let id = rated(&mut sim, 1, "2026-03-02", "2026-03-02 12:00:00", 2);
        let ws = sim.of(Rule::LowRating);
        assert_eq!(ws.len(), 1);
        assert_eq!(ws[0].severity, Severity::Info);
        assert_eq!(ws[0].at, shanghai("2026-03-02 12:00:00"));
        assert_eq!(
            ws[0].evidence,
            [
                sim.visits[&id].issued.event.clone(),
                sim.visits[&id].events[2].clone()
            ]
        );
        assert!(
            ws[0].detail.contains("2分（不满意）") && ws[0].detail.contains("态度生硬"),
            "{}",
            ws[0].detail
        );
        rated(&mut sim, 2, "2026-03-02", "2026-03-02 12:00:00", 3);
        assert_eq!(sim.of(Rule::LowRating).len(), 1);
    }

    #[test]
    fn a_monthly_rate_below_80_percent_warns_at_the_months_end() {
        let mut sim = Sim::new(rules());
        rated(&mut sim, 1, "2026-03-02", "2026-03-02 12:00:00", 5);
        rated(&mut sim, 2, "2026-03-03", "2026-03-03 12:00:00", 4);
        let low = rated(&mut sim, 3, "2026-03-04", "2026-03-31 23:59:59", 3);
        // A rating just after midnight belongs to April.
        rated(&mut sim, 4, "2026-03-31", "2026-04-01 00:00:00", 1);
        let ws = sim.of(Rule::LowSatisfactionRate);
        assert_eq!(ws.len(), 1, "{ws:#?}");
        assert_eq!(ws[0].at, shanghai("2026-04-01 00:00:00"));
        assert_eq!(ws[0].agencies, ["ZZ-SCJ"]);
        assert_eq!(ws[0].evidence, [sim.visits[&low].events[2].clone()]);
        assert!(ws[0].detail.contains("满意率66.6%"), "{}", ws[0].detail);
        assert!(ws[0].detail.contains("2026年3月"), "{}", ws[0].detail);
        // April: one rating, fewer than the minimum of 3.
        sim.advance("2026-05-02 00:00:00");
        assert_eq!(sim.of(Rule::LowSatisfactionRate).len(), 1);
    }

    #[test]
    fn a_rate_at_the_threshold_is_fine() {
        let mut r = rules();
        r.satisfaction_rate.min_rate_percent = 75;
        let mut sim = Sim::new(r);
        for (n, level) in [(1, 5), (2, 5), (3, 4), (4, 2)] {
            rated(&mut sim, n, "2026-03-02", "2026-03-02 12:00:00", level);
        }
        sim.advance("2026-04-02 00:00:00");
        assert!(sim.of(Rule::LowSatisfactionRate).is_empty());
    }

    #[test]
    fn both_rules_can_be_off() {
        let mut r = rules();
        r.low_rating.enabled = false;
        r.satisfaction_rate.enabled = false;
        let mut sim = Sim::new(r);
        for n in 1..=4 {
            rated(&mut sim, n, "2026-03-02", "2026-03-02 12:00:00", 1);
        }
        sim.advance("2026-04-02 00:00:00");
        assert!(sim.of(Rule::LowRating).is_empty());
        assert!(sim.of(Rule::LowSatisfactionRate).is_empty());
        assert_eq!(sim.engine.satisfaction.len(), 0);
    }
}
