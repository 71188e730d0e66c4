//! 补录检查过多, per agency and Asia/Shanghai calendar month (the month in which visits came to
//! count), under the rule set of the agency's region: more than `supplementary.max_per_month`
//! 补录 visits, or more than `max_standard_reason_per_month` with the standard reason
//! 未报送涉企行政检查计划 (both judged as each visit counts), or, at the month's end, a 补录 share
//! of the month's inspections above `max_share_percent` when there were at least
//! `min_visits_for_share`. At most one warning per agency and month.

use super::{month_label, month_of, Confirmation, MonthKey, Rule, Warning};
use crate::rules::{RuleBook, RuleSet};
use crate::visit::EventId;
use chrono::{DateTime, Utc};
use saoma_domain::inspection::InspectionKind;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
struct Month {
    agency_name: String,
    region: String,
    inspections: u32,
    supplementary: Vec<EventId>,
    standard: u32,
    warned: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct State {
    months: BTreeMap<MonthKey, Month>,
}

fn warning(key: &MonthKey, m: &Month, at: DateTime<Utc>, why: String) -> Warning {
    let month = month_label(key.1);
    Warning {
        id: super::warning_id(Rule::HeavySupplementary, &[&key.0, &month]),
        rule: Rule::HeavySupplementary,
        severity: Rule::HeavySupplementary.severity(),
        region: m.region.clone(),
        agencies: vec![key.0.clone()],
        enterprise: None,
        officers: Vec::new(),
        at,
        evidence: m.supplementary.clone(),
        detail: format!(
            "{}（{}）{}年{}月开展检查{}次，其中补录{}次（“未报送涉企行政检查计划”{}次），{}",
            m.agency_name,
            key.0,
            key.1 .0,
            key.1 .1,
            m.inspections,
            m.supplementary.len(),
            m.standard,
            why
        ),
    }
}

impl State {
    /// Counts an inspection; returns the month's key when it is the month's first, so that the
    /// engine can schedule its end.
    pub(crate) fn on_confirmed(
        &mut self,
        c: &Confirmation<'_>,
        agency_rules: &RuleSet,
        out: &mut Vec<Warning>,
    ) -> Option<MonthKey> {
        let rule = &agency_rules.supplementary;
        let v = c.visit;
        if !rule.enabled || !v.is_inspection() {
            return None;
        }
        let key: MonthKey = (v.agency.code.to_string(), month_of(c.at));
        let new = !self.months.contains_key(&key);
        let m = self.months.entry(key.clone()).or_insert_with(|| Month {
            agency_name: v.agency.name.clone(),
            region: v.agency.region.to_string(),
            inspections: 0,
            supplementary: Vec::new(),
            standard: 0,
            warned: false,
        });
        m.inspections += 1;
        if let InspectionKind::Supplementary { reason } = &v.kind {
            m.supplementary.push(v.issued.event.clone());
            if reason.is_standard() {
                m.standard += 1;
            }
            let n = m.supplementary.len() as u32;
            let why = if n > rule.max_per_month {
                Some(format!("补录超过每月{}次", rule.max_per_month))
            } else if m.standard > rule.max_standard_reason_per_month {
                Some(format!(
                    "以“未报送涉企行政检查计划”为由补录超过每月{}次",
                    rule.max_standard_reason_per_month
                ))
            } else {
                None
            };
            if let Some(why) = why.filter(|_| !m.warned) {
                m.warned = true;
                out.push(warning(&key, m, c.at, why));
            }
        }
        new.then_some(key)
    }

    /// The month is over: judges the share of 补录.
    pub(crate) fn on_month_end(
        &mut self,
        book: &RuleBook,
        key: &MonthKey,
        end: DateTime<Utc>,
        out: &mut Vec<Warning>,
    ) {
        let Some(m) = self.months.get_mut(key) else {
            return;
        };
        let rule = &book.for_region(&m.region).supplementary;
        if !rule.enabled || m.warned || m.inspections < rule.min_visits_for_share {
            return;
        }
        let n = m.supplementary.len() as u64;
        if n * 100 > u64::from(rule.max_share_percent) * u64::from(m.inspections) {
            m.warned = true;
            let why = format!(
                "补录占比{}%，超过{}%",
                n * 100 / u64::from(m.inspections),
                rule.max_share_percent
            );
            out.push(warning(key, m, end, why));
        }
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
    use super::super::Rule;
    use saoma_domain::inspection::{Trigger, VisitPurpose};
    use saoma_domain::registry::AgencyLevel;

    const R: Rule = Rule::HeavySupplementary;

    fn visit(sim: &mut Sim, c: Code) -> uuid::Uuid {
        let d = c.date;
        let id = sim.issue(c);
        sim.show(id, &format!("{d} 10:00:00"));
        id
    }

    #[test]
    fn a_fourth_supplementary_visit_in_a_month_is_heavy() {
        let mut sim = Sim::new(rules());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        for n in 1..=3 {
            visit(
                &mut sim,
                code(&a, &enterprise(n, "430202"), &format!("2026-03-0{n}")).kind(supplementary()),
            );
        }
        assert!(sim.of(R).is_empty());
        let fourth = visit(
            &mut sim,
            code(&a, &enterprise(4, "430202"), "2026-03-04").kind(supplementary()),
        );
        let ws = sim.of(R);
        assert_eq!(ws.len(), 1);
        assert_eq!(ws[0].at, shanghai("2026-03-04 10:00:00"));
        assert_eq!(ws[0].evidence.len(), 4);
        assert_eq!(ws[0].evidence[3], sim.visits[&fourth].issued.event);
        assert_eq!(ws[0].enterprise, None);
        assert_eq!(ws[0].region, "430200", "the agency's region");
        assert!(ws[0].detail.contains("补录4次"), "{}", ws[0].detail);
        // A fifth in the same month is the same warning.
        visit(
            &mut sim,
            code(&a, &enterprise(5, "430202"), "2026-03-05").kind(supplementary()),
        );
        assert_eq!(sim.of(R).len(), 1);
    }

    #[test]
    fn the_standard_reason_has_its_own_threshold() {
        let mut sim = Sim::new(rules());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        for n in 1..=3 {
            visit(
                &mut sim,
                code(&a, &enterprise(n, "430202"), &format!("2026-03-0{n}"))
                    .kind(standard_supplementary()),
            );
        }
        let ws = sim.of(R);
        assert_eq!(ws.len(), 1);
        assert!(
            ws[0].detail.contains("以“未报送涉企行政检查计划”为由"),
            "{}",
            ws[0].detail
        );
    }

    #[test]
    fn months_end_at_shanghai_midnight() {
        let mut sim = Sim::new(rules());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        for n in 1..=3 {
            visit(
                &mut sim,
                code(&a, &enterprise(n, "430202"), &format!("2026-03-{}", 28 + n))
                    .kind(supplementary()),
            );
        }
        let id = sim.issue(code(&a, &enterprise(4, "430202"), "2026-04-01").kind(supplementary()));
        sim.show(id, "2026-04-01 00:00:00");
        assert!(sim.of(R).is_empty(), "three in March, one in April");
    }

    #[test]
    fn a_high_share_is_judged_at_the_months_end() {
        let mut sim = Sim::new(rules());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        // 3 of 5 inspections are 补录: 60% > 50%, with at least 4 inspections.
        for n in 1..=3 {
            visit(
                &mut sim,
                code(&a, &enterprise(n, "430202"), &format!("2026-03-1{n}")).kind(supplementary()),
            );
        }
        for n in 4..=5 {
            visit(
                &mut sim,
                code(&a, &enterprise(n, "430202"), &format!("2026-03-1{n}"))
                    .kind(unplanned(Trigger::Report)),
            );
        }
        // Non-inspection visits are not inspections.
        visit(
            &mut sim,
            code(&a, &enterprise(6, "430202"), "2026-03-20")
                .kind(non_inspection(VisitPurpose::Service)),
        );
        assert!(only(&sim.advance("2026-03-31 23:59:59"), R).is_empty());
        let ws = only(&sim.advance("2026-04-01 00:00:00"), R);
        assert_eq!(ws.len(), 1);
        assert_eq!(ws[0].at, shanghai("2026-04-01 00:00:00"));
        assert!(
            ws[0].detail.contains("开展检查5次") && ws[0].detail.contains("60%"),
            "{}",
            ws[0].detail
        );
    }

    #[test]
    fn a_low_share_or_too_few_inspections_is_not_heavy() {
        let mut sim = Sim::new(rules());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let b = agency("ZZ-XFJ", AgencyLevel::City);
        // a: 2 of 4 = 50%, not above 50%. b: 2 of 2, but fewer than 4 inspections.
        for n in 1..=2 {
            visit(
                &mut sim,
                code(&a, &enterprise(n, "430202"), &format!("2026-03-1{n}")).kind(supplementary()),
            );
            visit(
                &mut sim,
                code(&b, &enterprise(n, "430202"), &format!("2026-03-2{n}")).kind(supplementary()),
            );
        }
        for n in 3..=4 {
            visit(
                &mut sim,
                code(&a, &enterprise(n, "430202"), &format!("2026-03-1{n}")),
            );
        }
        sim.advance("2026-04-02 00:00:00");
        assert!(sim.of(R).is_empty(), "{:#?}", sim.of(R));
    }

    #[test]
    fn the_agencys_region_decides_the_rule_set() {
        let mut off = rules();
        off.supplementary.enabled = false;
        let book = book_with(off, "4302", rules());
        let mut sim = Sim::with_book(book);
        // A Changsha agency (default rules, rule off) visiting Zhuzhou enterprises.
        let a = agency_in("CS-SCJ", AgencyLevel::City, "430100");
        for n in 1..=5 {
            visit(
                &mut sim,
                code(&a, &enterprise(n, "430202"), &format!("2026-03-0{n}")).kind(supplementary()),
            );
        }
        sim.advance("2026-04-02 00:00:00");
        assert!(sim.of(R).is_empty());
    }

    #[test]
    fn months_are_forgotten_after_the_late_margin() {
        let mut sim = Sim::new(rules());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        visit(
            &mut sim,
            code(&a, &enterprise(1, "430202"), "2026-03-02").kind(supplementary()),
        );
        assert_eq!(sim.engine.supplementary.len(), 1);
        sim.advance("2026-04-20 00:00:00");
        assert_eq!(sim.engine.supplementary.len(), 1);
        sim.advance("2026-05-07 00:00:00");
        assert_eq!(sim.engine.supplementary.len(), 0);
    }
}
