//! 宁静日入企检查: a visit in the scope of `quiet_days` (by default routine kinds, the six exempt
//! domains excepted) whose day (Asia/Shanghai date of its first show or scan) is one of
//! `quiet_days.weekdays`.

use super::{
    agency_label, enterprise_label, kind_label, visit_warning, weekday_label, Confirmation, Rule,
    Warning,
};
use chrono::Datelike;

pub(crate) fn on_confirmed(c: &Confirmation<'_>, out: &mut Vec<Warning>) {
    let rule = &c.rules.quiet_days;
    let v = c.visit;
    if !rule.enabled || !rule.scope().covers(v) {
        return;
    }
    let weekday = c.day.weekday();
    if !rule.weekdays.iter().any(|d| d.weekday() == weekday) {
        return;
    }
    let quiet: Vec<&str> = rule
        .weekdays
        .iter()
        .map(|d| weekday_label(d.weekday()))
        .collect();
    let detail = format!(
        "{}于{}（{}）进入{}开展{}，当日为宁静日（{}）",
        agency_label(&v.agency),
        c.day,
        weekday_label(weekday),
        enterprise_label(&v.enterprise),
        kind_label(&v.kind),
        quiet.join("、")
    );
    out.push(visit_warning(
        Rule::QuietDayInspection,
        &[&v.inspection_id.to_string()],
        v,
        c.at,
        c.evidence.clone(),
        detail,
    ));
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{Rule, Severity};
    use saoma_domain::inspection::Trigger;
    use saoma_domain::registry::{AgencyLevel, EnforcementDomain};

    const R: Rule = Rule::QuietDayInspection;

    #[test]
    fn a_routine_inspection_on_a_wednesday_breaks_the_quiet_day() {
        let mut sim = Sim::new(rules());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        // 2026-03-04 is a Wednesday.
        let id = sim.issue(code(&a, &e, "2026-03-04"));
        let ws = only(&sim.show(id, "2026-03-04 10:00:00"), R);
        assert_eq!(ws.len(), 1);
        assert_eq!(ws[0].severity, Severity::Serious);
        assert_eq!(ws[0].at, shanghai("2026-03-04 10:00:00"));
        assert_eq!(ws[0].evidence, sim.visits[&id].events);
        assert!(ws[0].detail.contains("星期三"), "{}", ws[0].detail);
    }

    #[test]
    fn the_day_turns_at_midnight_in_shanghai() {
        let mut sim = Sim::new(rules());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        // Both instants fall on Wednesday 4 March in UTC (15:59:59 and 16:00:00).
        let wed = sim.issue(code(&a, &e, "2026-03-04"));
        assert_eq!(only(&sim.show(wed, "2026-03-04 23:59:59"), R).len(), 1);
        let thu = sim.issue(code(&a, &e, "2026-03-05"));
        assert!(only(&sim.show(thu, "2026-03-05 00:00:00"), R).is_empty());
    }

    #[test]
    fn the_actual_day_of_entry_counts_not_the_date_on_the_code() {
        let mut sim = Sim::new(rules());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        // A Sunday code valid for 72 hours, used on Monday.
        let id = sim.issue(code(&a, &e, "2026-03-01").hours(72));
        assert_eq!(only(&sim.scan(id, "2026-03-02 09:00:00"), R).len(), 1);
        // A Wednesday code used on Thursday.
        let id = sim.issue(code(&a, &e, "2026-03-04").hours(48));
        assert!(only(&sim.scan(id, "2026-03-05 09:00:00"), R).is_empty());
    }

    #[test]
    fn unplanned_exempt_domain_and_other_days_do_not_break_it() {
        let mut sim = Sim::new(rules());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        let complaint = sim.issue(code(&a, &e, "2026-03-02").kind(unplanned(Trigger::Complaint)));
        sim.show(complaint, "2026-03-02 10:00:00");
        let food = sim.issue(
            code(&a, &e, "2026-03-03").items(vec![item("SP-1", EnforcementDomain::FoodDrug)]),
        );
        sim.show(food, "2026-03-03 10:00:00");
        let friday = sim.issue(code(&a, &e, "2026-03-06"));
        sim.show(friday, "2026-03-06 10:00:00");
        assert!(sim.of(R).is_empty(), "{:#?}", sim.of(R));
    }

    #[test]
    fn a_revoked_code_for_a_quiet_day_is_no_visit() {
        let mut sim = Sim::new(rules());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        let id = sim.issue(code(&a, &e, "2026-03-03"));
        sim.revoke(id, "2026-03-02 18:00:00");
        sim.advance("2026-03-10 00:00:00");
        assert!(sim.of(R).is_empty());
    }

    #[test]
    fn an_unused_code_for_a_quiet_day_warns_when_its_window_closes() {
        let mut sim = Sim::new(rules());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        sim.issue(code(&a, &e, "2026-03-03"));
        let ws = only(&sim.advance("2026-03-04 00:00:00"), R);
        assert_eq!(ws.len(), 1);
        assert_eq!(ws[0].at, shanghai("2026-03-04 00:00:00"));
    }

    #[test]
    fn the_rule_is_off_where_no_quiet_days_are_set() {
        let mut r = rules();
        r.quiet_days.enabled = false;
        let mut sim = Sim::new(r);
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        let id = sim.issue(code(&a, &e, "2026-03-04"));
        sim.show(id, "2026-03-04 10:00:00");
        assert!(sim.of(R).is_empty());
    }
}
