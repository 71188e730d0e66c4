//! 检查码未扫码 / 未完成两码互核, judged when a code's validity window closes (plus the grace
//! period): a code that is not revoked and was never scanned (neither the enterprise scanning
//! the inspection code nor the officer scanning the 企业码), or, with
//! `scanning.require_mutual_verification`, scanned by one side only. A code issued only after
//! its window closed (补录 after the fact) could never be scanned and is not judged.

use super::{agency_label, enterprise_label, local, push_unique, visit_warning, Rule, Warning};
use crate::rules::RuleSet;
use crate::visit::Visit;
use chrono::{DateTime, Utc};

pub(crate) fn on_close(rules: &RuleSet, v: &Visit, closed: DateTime<Utc>, out: &mut Vec<Warning>) {
    let rule = &rules.scanning;
    if !rule.enabled || v.revoked.is_some() || v.issued.at >= v.validity.valid_until {
        return;
    }
    let mut evidence = vec![v.issued.event.clone()];
    for s in [&v.shown, &v.enterprise_scan, &v.officer_scan]
        .into_iter()
        .flatten()
    {
        push_unique(&mut evidence, &s.event);
    }
    let what = format!(
        "{}对{}的检查码（执法日期{}，有效期至{}）",
        agency_label(&v.agency),
        enterprise_label(&v.enterprise),
        v.date,
        local(v.validity.valid_until)
    );
    let key = v.inspection_id.to_string();
    match (&v.enterprise_scan, &v.officer_scan) {
        (None, None) => {
            let shown = if v.shown.is_some() {
                "，已亮码"
            } else {
                ""
            };
            out.push(visit_warning(
                Rule::CodeNotScanned,
                &[&key],
                v,
                closed,
                evidence,
                format!("{what}在有效期内未被扫码核验{shown}"),
            ));
        }
        (Some(_), Some(_)) => {}
        (enterprise, _) if rule.require_mutual_verification => {
            let side = if enterprise.is_some() {
                "仅企业扫描了检查码，执法人员未扫描企业码"
            } else {
                "仅执法人员扫描了企业码，企业未扫描检查码"
            };
            out.push(visit_warning(
                Rule::NotMutuallyVerified,
                &[&key],
                v,
                closed,
                evidence,
                format!("{what}{side}，未完成两码互核"),
            ));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{Rule, Severity};
    use saoma_domain::registry::AgencyLevel;

    fn started() -> (Sim, uuid::Uuid) {
        let mut sim = Sim::new(rules());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        let id = sim.issue(code(&a, &e, "2026-03-02"));
        (sim, id)
    }

    #[test]
    fn a_code_never_scanned_warns_exactly_when_its_window_closes() {
        let (mut sim, id) = started();
        sim.show(id, "2026-03-02 10:00:00");
        assert!(only(&sim.advance("2026-03-02 23:59:59"), Rule::CodeNotScanned).is_empty());
        let ws = only(&sim.advance("2026-03-03 00:00:00"), Rule::CodeNotScanned);
        assert_eq!(ws.len(), 1);
        assert_eq!(ws[0].at, shanghai("2026-03-03 00:00:00"));
        assert_eq!(ws[0].severity, Severity::Warning);
        assert_eq!(ws[0].evidence, sim.visits[&id].events);
        assert!(ws[0].detail.contains("已亮码"), "{}", ws[0].detail);
        assert!(sim.of(Rule::NotMutuallyVerified).is_empty());
    }

    #[test]
    fn a_scan_in_the_last_second_of_the_window_counts() {
        let (mut sim, id) = started();
        sim.scan(id, "2026-03-02 23:59:59");
        sim.officer_scan(id, "2026-03-02 23:59:59");
        sim.advance("2026-03-10 00:00:00");
        assert!(sim.of(Rule::CodeNotScanned).is_empty());
        assert!(sim.of(Rule::NotMutuallyVerified).is_empty());
    }

    #[test]
    fn one_scan_only_is_no_two_code_verification() {
        let (mut sim, id) = started();
        sim.scan(id, "2026-03-02 10:00:00");
        sim.advance("2026-03-03 00:00:00");
        let ws = sim.of(Rule::NotMutuallyVerified);
        assert_eq!(ws.len(), 1);
        assert_eq!(ws[0].severity, Severity::Info);
        assert!(ws[0].detail.contains("仅企业扫描"), "{}", ws[0].detail);
        assert!(sim.of(Rule::CodeNotScanned).is_empty());

        let mut r = rules();
        r.scanning.require_mutual_verification = false;
        let mut sim = Sim::new(r);
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let id = sim.issue(code(&a, &enterprise(1, "430202"), "2026-03-02"));
        sim.officer_scan(id, "2026-03-02 10:00:00");
        sim.advance("2026-03-03 00:00:00");
        assert!(sim.of(Rule::NotMutuallyVerified).is_empty());
        assert!(sim.of(Rule::CodeNotScanned).is_empty());
    }

    #[test]
    fn a_revoked_code_never_warns_as_unscanned() {
        let (mut sim, id) = started();
        sim.revoke(id, "2026-03-02 08:00:00");
        sim.advance("2026-03-10 00:00:00");
        assert!(sim.of(Rule::CodeNotScanned).is_empty());
        // Revoked after its window closed, within the grace period.
        let mut r = rules();
        r.deadline_grace_minutes = 15;
        let mut sim = Sim::new(r);
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let id = sim.issue(code(&a, &enterprise(1, "430202"), "2026-03-02"));
        sim.revoke(id, "2026-03-03 00:05:00");
        sim.advance("2026-03-10 00:00:00");
        assert!(
            sim.of(Rule::CodeNotScanned).is_empty(),
            "{:#?}",
            sim.warnings
        );
        assert!(
            sim.of(Rule::ResultOverdue).is_empty(),
            "{:#?}",
            sim.warnings
        );
    }

    #[test]
    fn the_grace_period_lets_a_late_recorded_scan_count_and_keeps_the_deadline_as_at() {
        let mut r = rules();
        r.deadline_grace_minutes = 15;
        let mut sim = Sim::new(r);
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let id = sim.issue(code(&a, &enterprise(1, "430202"), "2026-03-02"));
        let other = sim.issue(code(&a, &enterprise(2, "430202"), "2026-03-02"));
        assert!(sim.advance("2026-03-03 00:10:00").is_empty());
        // Signed at 23:59 on the device, recorded ten minutes after the window closed.
        sim.scan(id, "2026-03-02 23:59:00");
        sim.officer_scan(id, "2026-03-02 23:59:30");
        let ws = only(&sim.advance("2026-03-03 00:15:00"), Rule::CodeNotScanned);
        assert_eq!(ws.len(), 1);
        assert_eq!(
            ws[0].enterprise.as_deref(),
            Some(sim.visits[&other].enterprise.credit_code.as_str())
        );
        assert_eq!(ws[0].at, shanghai("2026-03-03 00:00:00"));
    }

    #[test]
    fn a_code_recorded_after_its_window_is_not_judged() {
        let mut sim = Sim::new(rules());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        sim.issue(
            code(&a, &e, "2026-03-02")
                .kind(supplementary())
                .issued("2026-03-05 09:00:00"),
        );
        sim.advance("2026-03-10 00:00:00");
        assert!(sim.of(Rule::CodeNotScanned).is_empty());
    }
}
