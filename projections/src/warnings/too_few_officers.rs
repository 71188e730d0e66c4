//! 执法人员少于规定人数: an inspection (not a non-inspection visit) whose code names fewer than
//! `officers.min_officers` officers, judged when the visit counts (revoked codes never do).

use super::{agency_label, enterprise_label, visit_warning, Confirmation, Rule, Warning};

pub(crate) fn on_confirmed(c: &Confirmation<'_>, out: &mut Vec<Warning>) {
    let rule = &c.rules.officers;
    let v = c.visit;
    if !rule.enabled || !v.is_inspection() || v.officers.len() >= rule.min_officers as usize {
        return;
    }
    let detail = format!(
        "{}对{}的检查（{}）仅有{}名执法人员，少于规定的{}名",
        agency_label(&v.agency),
        enterprise_label(&v.enterprise),
        c.day,
        v.officers.len(),
        rule.min_officers
    );
    out.push(visit_warning(
        Rule::TooFewOfficers,
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
    use super::super::Rule;
    use saoma_domain::inspection::VisitPurpose;
    use saoma_domain::registry::AgencyLevel;

    const R: Rule = Rule::TooFewOfficers;

    #[test]
    fn one_officer_on_an_inspection_warns_when_the_code_is_used() {
        let mut sim = Sim::new(rules());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let id = sim.issue(code(&a, &enterprise(1, "430202"), "2026-03-02").officers(1));
        assert!(
            sim.of(R).is_empty(),
            "not at issue: the code may still be revoked"
        );
        let ws = only(&sim.scan(id, "2026-03-02 10:00:00"), R);
        assert_eq!(ws.len(), 1);
        assert_eq!(ws[0].officers, sim.visits[&id].officer_keys());
        assert!(ws[0].detail.contains("仅有1名"), "{}", ws[0].detail);
    }

    #[test]
    fn two_officers_a_revoked_code_and_a_non_inspection_visit_do_not_warn() {
        let mut sim = Sim::new(rules());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        let two = sim.issue(code(&a, &e, "2026-03-02"));
        sim.show(two, "2026-03-02 10:00:00");
        let revoked = sim.issue(code(&a, &e, "2026-03-03").officers(1));
        sim.revoke(revoked, "2026-03-02 20:00:00");
        let visit = sim.issue(
            code(&a, &e, "2026-03-04")
                .officers(1)
                .kind(non_inspection(VisitPurpose::Service)),
        );
        sim.show(visit, "2026-03-04 10:00:00");
        sim.advance("2026-03-31 00:00:00");
        assert!(sim.of(R).is_empty(), "{:#?}", sim.of(R));
    }

    #[test]
    fn the_minimum_follows_the_rule_set() {
        let mut r = rules();
        r.officers.min_officers = 3;
        let mut sim = Sim::new(r);
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        sim.issue(code(&a, &enterprise(1, "430202"), "2026-03-02"));
        sim.advance("2026-03-03 00:00:00");
        assert_eq!(sim.of(R).len(), 1);
        assert_eq!(sim.of(R)[0].at, shanghai("2026-03-03 00:00:00"));
    }
}
