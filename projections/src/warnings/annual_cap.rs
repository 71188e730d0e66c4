//! 年度检查次数超过上限: more than `annual_cap.max_per_year` counted visits of one agency to one
//! enterprise in one Asia/Shanghai calendar year (the year of the visit's day). Visits outside
//! the rule's scope (exempt kinds, triggers and domains) are not counted; only the lead agency
//! of a joint inspection is. Each visit beyond the cap is one warning, evidenced by the visits
//! counted before it.

use super::{
    agency_label, enterprise_label, kind_label, visit_warning, Confirmation, Rule, Warning,
};
use crate::visit::EventId;
use chrono::Datelike;
use std::collections::BTreeMap;
use uuid::Uuid;

/// (year, agency, enterprise).
type Key = (i32, String, String);

#[derive(Debug, Clone, Default)]
pub(crate) struct State {
    /// The visits counted so far, in the order they came to count.
    counted: BTreeMap<Key, Vec<(Uuid, EventId)>>,
}

impl State {
    pub(crate) fn on_confirmed(&mut self, c: &Confirmation<'_>, out: &mut Vec<Warning>) {
        let rule = &c.rules.annual_cap;
        let v = c.visit;
        if !rule.enabled || !rule.scope().covers(v) {
            return;
        }
        let year = c.day.year();
        let agency = v.agency.code.to_string();
        let enterprise = v.enterprise.credit_code.to_string();
        let counted = self
            .counted
            .entry((year, agency.clone(), enterprise.clone()))
            .or_default();
        if counted.iter().any(|(id, _)| *id == v.inspection_id) {
            return;
        }
        counted.push((v.inspection_id, v.issued.event.clone()));
        let n = counted.len();
        if n <= rule.max_per_year as usize {
            return;
        }
        let mut evidence: Vec<EventId> = counted[..n - 1].iter().map(|(_, e)| e.clone()).collect();
        evidence.extend(c.evidence.iter().cloned());
        let detail = format!(
            "{}{}年第{}次对{}开展检查（{}，{}），超过每年{}次的上限",
            agency_label(&v.agency),
            year,
            n,
            enterprise_label(&v.enterprise),
            kind_label(&v.kind),
            c.day,
            rule.max_per_year
        );
        out.push(visit_warning(
            Rule::AnnualCapExceeded,
            &[
                &agency,
                &enterprise,
                &year.to_string(),
                &v.inspection_id.to_string(),
            ],
            v,
            c.at,
            evidence,
            detail,
        ));
    }

    /// Forgets the years before `first_year`.
    pub(crate) fn prune(&mut self, first_year: i32) {
        if self
            .counted
            .first_key_value()
            .is_some_and(|(k, _)| k.0 < first_year)
        {
            self.counted = self
                .counted
                .split_off(&(first_year, String::new(), String::new()));
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.counted.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::Rule;
    use saoma_domain::inspection::{Trigger, VisitPurpose};
    use saoma_domain::registry::{AgencyLevel, EnforcementDomain};

    const R: Rule = Rule::AnnualCapExceeded;

    fn setup() -> Sim {
        let mut r = rules();
        r.quiet_days.enabled = false;
        Sim::new(r)
    }

    #[test]
    fn a_second_routine_visit_in_a_year_breaks_a_cap_of_one() {
        let mut sim = setup();
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        let first = sim.issue(code(&a, &e, "2026-03-02"));
        assert!(only(&sim.show(first, "2026-03-02 09:00:00"), R).is_empty());
        let second = sim.issue(code(&a, &e, "2026-06-10").kind(supplementary()));
        let ws = only(&sim.show(second, "2026-06-10 09:30:00"), R);
        assert_eq!(ws.len(), 1, "{ws:#?}");
        let w = &ws[0];
        assert_eq!(w.at, shanghai("2026-06-10 09:30:00"));
        assert_eq!(w.agencies, ["ZZ-SCJ"]);
        assert_eq!(w.enterprise.as_deref(), Some(e.credit_code.as_str()));
        assert_eq!(w.region, "430202");
        assert_eq!(
            w.evidence,
            [
                sim.visits[&first].issued.event.clone(),
                sim.visits[&second].issued.event.clone(),
                sim.visits[&second].events[1].clone(),
            ]
        );
        assert!(
            w.detail.contains("第2次") && w.detail.contains("每年1次"),
            "{}",
            w.detail
        );
        assert_eq!(w.severity, super::super::Severity::Serious);
    }

    #[test]
    fn other_agencies_and_other_enterprises_are_counted_apart() {
        let mut sim = setup();
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let b = agency("ZZ-SWJ", AgencyLevel::City);
        let e1 = enterprise(1, "430202");
        let e2 = enterprise(2, "430202");
        for (ag, e, d) in [
            (&a, &e1, "2026-03-02"),
            (&b, &e1, "2026-05-02"),
            (&a, &e2, "2026-07-02"),
        ] {
            let id = sim.issue(code(ag, e, d));
            sim.show(id, &format!("{d} 10:00:00"));
        }
        assert!(sim.of(R).is_empty());
    }

    #[test]
    fn exempt_domains_and_triggers_do_not_count_but_reports_do() {
        let mut sim = setup();
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        let food = sim.issue(
            code(&a, &e, "2026-03-02").items(vec![item("SP-1", EnforcementDomain::FoodDrug)]),
        );
        sim.show(food, "2026-03-02 10:00:00");
        for (i, t) in [
            Trigger::Complaint,
            Trigger::SuperiorAssignment,
            Trigger::Emergency,
        ]
        .into_iter()
        .enumerate()
        {
            let d = format!("2026-04-0{}", i + 1);
            let id = sim.issue(code(&a, &e, &d).kind(unplanned(t)));
            sim.show(id, &format!("{d} 10:00:00"));
        }
        let visit =
            sim.issue(code(&a, &e, "2026-05-01").kind(non_inspection(VisitPurpose::Service)));
        sim.show(visit, "2026-05-01 10:00:00");
        assert!(sim.of(R).is_empty(), "{:#?}", sim.of(R));
        // The first counted visit, then a report-triggered one: that breaks the cap.
        let routine = sim.issue(code(&a, &e, "2026-06-01"));
        sim.show(routine, "2026-06-01 10:00:00");
        assert!(sim.of(R).is_empty());
        let report = sim.issue(code(&a, &e, "2026-06-15").kind(unplanned(Trigger::Report)));
        sim.show(report, "2026-06-15 10:00:00");
        assert_eq!(sim.of(R).len(), 1);
    }

    #[test]
    fn a_code_with_one_exempt_and_one_ordinary_item_counts() {
        let mut sim = setup();
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        let mixed = vec![
            item("SP-1", EnforcementDomain::FoodDrug),
            item("SC-001", EnforcementDomain::MarketRegulation),
        ];
        for d in ["2026-03-02", "2026-04-02"] {
            let id = sim.issue(code(&a, &e, d).items(mixed.clone()));
            sim.show(id, &format!("{d} 10:00:00"));
        }
        assert_eq!(sim.of(R).len(), 1);
    }

    #[test]
    fn a_revoked_code_never_counts_even_when_revoked_after_the_next_was_issued() {
        let mut sim = setup();
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        let first = sim.issue(code(&a, &e, "2026-03-10"));
        let second = sim.issue(code(&a, &e, "2026-03-12").issued("2026-03-09 16:00:00"));
        sim.revoke(first, "2026-03-09 18:00:00");
        sim.show(second, "2026-03-12 10:00:00");
        sim.advance("2026-12-31 00:00:00");
        assert!(sim.of(R).is_empty(), "{:#?}", sim.of(R));
    }

    #[test]
    fn an_unused_code_counts_when_its_window_closes() {
        let mut sim = setup();
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        let first = sim.issue(code(&a, &e, "2026-03-02"));
        sim.show(first, "2026-03-02 10:00:00");
        let unused = sim.issue(code(&a, &e, "2026-03-20"));
        assert!(only(&sim.advance("2026-03-20 23:59:59"), R).is_empty());
        let ws = only(&sim.advance("2026-03-21 00:00:00"), R);
        assert_eq!(ws.len(), 1);
        assert_eq!(ws[0].at, sim.visits[&unused].validity.valid_until);
        assert_eq!(ws[0].at, shanghai("2026-03-21 00:00:00"));
    }

    #[test]
    fn years_end_at_midnight_in_shanghai() {
        let mut sim = setup();
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        // 2026-12-31 23:59:59 in Shanghai is 15:59:59 UTC; 00:00:00 on 1 January is 16:00 UTC
        // on 31 December: both the same UTC day, different Shanghai years.
        let last = sim.issue(code(&a, &e, "2026-12-31"));
        sim.show(last, "2026-12-31 23:59:59");
        let next = sim.issue(code(&a, &e, "2027-01-01"));
        sim.show(next, "2027-01-01 00:00:00");
        assert!(sim.of(R).is_empty(), "{:#?}", sim.of(R));
        let again = sim.issue(code(&a, &e, "2027-01-02"));
        sim.show(again, "2027-01-02 08:00:00");
        assert_eq!(sim.of(R).len(), 1);
        assert!(sim.of(R)[0].detail.contains("2027年"));
    }

    #[test]
    fn the_day_of_first_use_decides_the_year_of_a_long_window() {
        let mut sim = setup();
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        let dec = sim.issue(code(&a, &e, "2026-12-31").hours(48));
        sim.show(dec, "2027-01-01 09:00:00");
        let jan = sim.issue(code(&a, &e, "2027-01-05"));
        sim.show(jan, "2027-01-05 09:00:00");
        assert_eq!(sim.of(R).len(), 1, "both counted in 2027");
    }

    #[test]
    fn a_third_visit_warns_again_with_its_own_id() {
        let mut sim = setup();
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        for d in ["2026-03-02", "2026-04-02", "2026-05-02"] {
            let id = sim.issue(code(&a, &e, d));
            sim.show(id, &format!("{d} 10:00:00"));
            sim.scan(id, &format!("{d} 10:01:00"));
        }
        let ws = sim.of(R);
        assert_eq!(ws.len(), 2);
        assert_ne!(ws[0].id, ws[1].id);
        assert_eq!(
            ws[1].evidence.len(),
            4,
            "two earlier visits, the visit and its show"
        );
    }

    #[test]
    fn past_years_are_forgotten() {
        let mut sim = setup();
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        let id = sim.issue(code(&a, &e, "2026-03-02"));
        sim.show(id, "2026-03-02 10:00:00");
        assert_eq!(sim.engine.annual_cap.len(), 1);
        sim.advance("2027-01-20 00:00:00");
        assert_eq!(
            sim.engine.annual_cap.len(),
            1,
            "kept within the late margin"
        );
        sim.advance("2027-02-10 00:00:00");
        assert_eq!(sim.engine.annual_cap.len(), 0);
    }
}
