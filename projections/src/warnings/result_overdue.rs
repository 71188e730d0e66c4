//! 检查结果反馈超时: an inspection (not a non-inspection visit) whose result was not reported
//! before `result_deadline.hours_after_validity` hours after its validity window closed. Judged
//! at that deadline (plus the grace period); a result reported at or after the deadline is late
//! too. Revoked codes owe no result.

use super::{agency_label, enterprise_label, local, visit_warning, Rule, Warning};
use crate::rules::RuleSet;
use crate::visit::Visit;
use chrono::{DateTime, Utc};

pub(crate) fn on_due(rules: &RuleSet, v: &Visit, due: DateTime<Utc>, out: &mut Vec<Warning>) {
    if !rules.result_deadline.enabled || !v.is_inspection() || v.revoked.is_some() {
        return;
    }
    let what = format!(
        "{}对{}的检查（执法日期{}）",
        agency_label(&v.agency),
        enterprise_label(&v.enterprise),
        v.date
    );
    let (detail, evidence) = match &v.result {
        Some((_, step)) if step.at < due => return,
        Some((_, step)) => (
            format!(
                "{what}于{}才反馈检查结果，超过{}的反馈期限",
                local(step.at),
                local(due)
            ),
            vec![v.issued.event.clone(), step.event.clone()],
        ),
        None => (
            format!("{what}未在{}前反馈检查结果", local(due)),
            vec![v.issued.event.clone()],
        ),
    };
    out.push(visit_warning(
        Rule::ResultOverdue,
        &[&v.inspection_id.to_string()],
        v,
        due,
        evidence,
        detail,
    ));
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::Rule;
    use saoma_domain::inspection::VisitPurpose;
    use saoma_domain::registry::AgencyLevel;

    const R: Rule = Rule::ResultOverdue;

    fn started() -> (Sim, uuid::Uuid) {
        let mut sim = Sim::new(rules());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let id = sim.issue(code(&a, &enterprise(1, "430202"), "2026-03-02"));
        sim.show(id, "2026-03-02 10:00:00");
        (sim, id)
    }

    #[test]
    fn no_result_48_hours_after_the_window_is_overdue_at_the_deadline() {
        let (mut sim, _) = started();
        // The window closes at 2026-03-03 00:00; the result is due 48 hours later.
        assert!(only(&sim.advance("2026-03-04 23:59:59"), R).is_empty());
        let ws = only(&sim.advance("2026-03-05 00:00:00"), R);
        assert_eq!(ws.len(), 1);
        assert_eq!(ws[0].at, shanghai("2026-03-05 00:00:00"));
        assert!(
            ws[0].detail.contains("未在2026-03-05 00:00前"),
            "{}",
            ws[0].detail
        );
    }

    #[test]
    fn a_result_in_time_is_not_overdue_one_at_the_deadline_is() {
        let (mut sim, id) = started();
        sim.result(id, "2026-03-04 23:59:59", false);
        sim.advance("2026-03-10 00:00:00");
        assert!(sim.of(R).is_empty());

        let (mut sim, id) = started();
        let ws = only(&sim.result(id, "2026-03-05 00:00:00", true), R);
        assert_eq!(ws.len(), 1, "the deadline passes before the result is seen");
        assert_eq!(ws[0].evidence, [sim.visits[&id].issued.event.clone()]);
    }

    #[test]
    fn a_result_recorded_late_within_the_grace_is_named_as_late() {
        let mut r = rules();
        r.deadline_grace_minutes = 30;
        let mut sim = Sim::new(r);
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let id = sim.issue(code(&a, &enterprise(1, "430202"), "2026-03-02"));
        sim.result(id, "2026-03-05 00:10:00", false);
        let ws = only(&sim.advance("2026-03-05 00:30:00"), R);
        assert_eq!(ws.len(), 1);
        assert_eq!(ws[0].at, shanghai("2026-03-05 00:00:00"));
        assert_eq!(ws[0].evidence.len(), 2);
        assert!(ws[0].detail.contains("才反馈"), "{}", ws[0].detail);
    }

    #[test]
    fn revoked_codes_and_non_inspection_visits_owe_no_result() {
        let mut sim = Sim::new(rules());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        let revoked = sim.issue(code(&a, &e, "2026-03-02"));
        sim.revoke(revoked, "2026-03-01 20:00:00");
        let visit = sim
            .issue(code(&a, &e, "2026-03-02").kind(non_inspection(VisitPurpose::LegalEducation)));
        sim.show(visit, "2026-03-02 10:00:00");
        sim.advance("2026-03-31 00:00:00");
        assert!(sim.of(R).is_empty(), "{:#?}", sim.of(R));
    }

    #[test]
    fn the_deadline_follows_the_rule_set() {
        let mut r = rules();
        r.result_deadline.hours_after_validity = 1;
        let mut sim = Sim::new(r);
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        sim.issue(code(&a, &enterprise(1, "430202"), "2026-03-02"));
        assert_eq!(only(&sim.advance("2026-03-03 01:00:00"), R).len(), 1);
        let mut r = rules();
        r.result_deadline.enabled = false;
        let mut sim = Sim::new(r);
        sim.issue(code(&a, &enterprise(1, "430202"), "2026-03-02"));
        sim.advance("2026-04-01 00:00:00");
        assert!(sim.of(R).is_empty());
    }
}
