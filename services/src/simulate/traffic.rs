//! The simulated traffic: inspections as ordered steps (signed officer commands and the
//! enterprise's calls with the code's token), each with the answer it should get, grouped into
//! scenarios that must run in order. Everything but the clock comes from the seed.

use super::catalogue;
use super::population::{rng, Population, Stream};
use chrono::NaiveDate;
use rand::seq::SliceRandom as _;
use rand::Rng as _;
use rand_chacha::ChaCha8Rng;
use saoma_domain::ids::{AgencyCode, ItemCode, OfficerRef};
use saoma_domain::inspection::{
    InspectionKind, IssueCode, OfficerCommand, Outcome, SupplementReason, Trigger, VisitPurpose,
    STANDARD_SUPPLEMENT_REASON,
};
use uuid::Uuid;

/// What a step should get back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    Accepted,
    /// Refused with this machine-readable reason: the simulated rule-breaking.
    Refused(&'static str),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A command signed by `officer`'s device (index into `Population::officers`). An
    /// `IssueCode`'s date is set when it is sent: the device's date plus `date_offset`.
    Officer {
        officer: usize,
        command_id: Uuid,
        command: Box<OfficerCommand>,
    },
    /// The previous officer envelope again, byte for byte (a network retry).
    Resend,
    /// The enterprise opens the code's URL; `forged` with a tampered token.
    Scan {
        forged: bool,
    },
    Rate {
        level: u8,
        comment: Option<String>,
    },
    Feedback {
        text: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub action: Action,
    pub expect: Expect,
}

/// One code's lifecycle; the first step issues it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimInspection {
    pub inspection_id: Uuid,
    pub kind: &'static str,
    /// Days from the device's date in Asia/Shanghai to the code's date.
    pub date_offset: i64,
    pub steps: Vec<Step>,
}

impl SimInspection {
    #[cfg(test)]
    pub fn issue(&self) -> &IssueCode {
        match &self.steps[0].action {
            Action::Officer { command, .. } => match command.as_ref() {
                OfficerCommand::IssueCode(issue) => issue,
                _ => unreachable!("an inspection starts with IssueCode"),
            },
            _ => unreachable!("an inspection starts with an officer command"),
        }
    }
}

/// The rule-breaking the simulator produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Violation {
    /// A planned code beyond the plan's allowed visits (refused).
    OverFrequency,
    /// The enterprise never scans the code.
    NeverScanned,
    /// The result is never reported.
    ResultNotReported,
    LowRating,
    SingleOfficer,
    /// Several agencies at one enterprise, not jointly (sometimes the same item at two levels).
    MultiHead,
    StandardSupplement,
    /// A code dated tomorrow scanned today (refused and recorded), then revoked.
    NotYetValid,
    /// A code revoked, then scanned (refused and recorded).
    RevokedThenScanned,
    /// A tampered token scanned before the genuine one (refused and recorded).
    ForgedToken,
    /// A non-inspection visit that reports problems: a disguised inspection.
    DisguisedVisit,
    /// The enterprise rates twice (the second is refused).
    DoubleRating,
    /// The officer scans another enterprise's code (refused and recorded).
    WrongEnterpriseCode,
    /// An officer not on the code tries to report its result (refused).
    NotAssigned,
}

impl Violation {
    pub const ALL: [Violation; 14] = [
        Violation::OverFrequency,
        Violation::NeverScanned,
        Violation::ResultNotReported,
        Violation::LowRating,
        Violation::SingleOfficer,
        Violation::MultiHead,
        Violation::StandardSupplement,
        Violation::NotYetValid,
        Violation::RevokedThenScanned,
        Violation::ForgedToken,
        Violation::DisguisedVisit,
        Violation::DoubleRating,
        Violation::WrongEnterpriseCode,
        Violation::NotAssigned,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Violation::OverFrequency => "over_frequency",
            Violation::NeverScanned => "never_scanned",
            Violation::ResultNotReported => "result_not_reported",
            Violation::LowRating => "low_rating",
            Violation::SingleOfficer => "single_officer",
            Violation::MultiHead => "multi_head",
            Violation::StandardSupplement => "standard_supplement",
            Violation::NotYetValid => "not_yet_valid",
            Violation::RevokedThenScanned => "revoked_then_scanned",
            Violation::ForgedToken => "forged_token",
            Violation::DisguisedVisit => "disguised_visit",
            Violation::DoubleRating => "double_rating",
            Violation::WrongEnterpriseCode => "wrong_enterprise_code",
            Violation::NotAssigned => "not_assigned",
        }
    }
}

/// Inspections that must run one after another (e.g. a plan's visits before the one too many).
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub violation: Option<Violation>,
    pub inspections: Vec<SimInspection>,
}

pub struct Traffic {
    pub scenarios: Vec<Scenario>,
}

impl Traffic {
    /// `inspections` codes for `population`; a share `violations` of the scenarios breaks a rule.
    pub fn generate(
        population: &Population,
        seed: u64,
        inspections: usize,
        violations: f64,
    ) -> Traffic {
        let mut g = Gen::new(population, seed);
        let mut scenarios = vec![];
        let mut left = inspections;
        while left > 0 {
            let violation = g
                .rng
                .gen_bool(violations.clamp(0.0, 1.0))
                .then(|| *Violation::ALL.choose(&mut g.rng).expect("violations"));
            let scenario = violation
                .and_then(|v| g.violation(v, left))
                .unwrap_or_else(|| Scenario {
                    violation: None,
                    inspections: vec![g.normal()],
                });
            left -= scenario.inspections.len();
            scenarios.push(scenario);
        }
        Traffic { scenarios }
    }

    pub fn inspections(&self) -> impl Iterator<Item = &SimInspection> {
        self.scenarios.iter().flat_map(|s| s.inspections.iter())
    }
}

/// Who visits whom, for what, and how.
struct Visit {
    kind: InspectionKind,
    agency: usize,
    enterprise: usize,
    items: Vec<usize>,
    /// Officers on the code; the first issues it and belongs to `agency`.
    officers: Vec<usize>,
    partners: Vec<usize>,
    date_offset: i64,
}

/// How the lifecycle after issuance goes.
#[derive(Default)]
struct Life {
    /// The issuance itself is refused with this reason; nothing follows.
    refused: Option<&'static str>,
    shown: bool,
    retry_show: bool,
    interloper: bool,
    forged_first: bool,
    scanned: bool,
    two_code: bool,
    wrong_code: bool,
    report: Option<Outcome>,
    rating: Option<(u8, Option<String>)>,
    second_rating: bool,
    feedback: Option<String>,
    /// Scanned while not yet valid, shown (refused), then revoked.
    not_yet_valid: bool,
    /// Revoked before use, then scanned.
    revoked_then_scanned: bool,
}

struct Gen<'p> {
    pop: &'p Population,
    rng: ChaCha8Rng,
    /// (plan, enterprise index) pairs and how many visits each has left.
    pairs: Vec<(usize, usize)>,
    left: Vec<u32>,
    /// Indices into `pairs` with visits left.
    open: Vec<usize>,
    /// Agencies with at least one active enterprise to visit.
    active: Vec<usize>,
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, v: &[T]) -> T {
    *v.choose(rng).expect("a non-empty choice")
}

impl<'p> Gen<'p> {
    fn new(pop: &'p Population, seed: u64) -> Self {
        let enterprise_index: std::collections::HashMap<_, _> = pop
            .enterprises
            .iter()
            .enumerate()
            .map(|(i, e)| (e.credit_code.clone(), i))
            .collect();
        let mut pairs = vec![];
        let mut left = vec![];
        for (p, plan) in pop.plans.iter().enumerate() {
            for e in &plan.enterprises {
                pairs.push((p, enterprise_index[e]));
                left.push(plan.allowed_visits);
            }
        }
        let active = (0..pop.agencies.len())
            .filter(|&a| !pop.agencies[a].enterprises.is_empty())
            .collect();
        Gen {
            pop,
            rng: rng(seed, Stream::Traffic),
            open: (0..pairs.len()).collect(),
            pairs,
            left,
            active,
        }
    }

    fn uuid(&mut self) -> Uuid {
        uuid::Builder::from_random_bytes(self.rng.gen()).into_uuid()
    }

    /// One visit of a plan's enterprise, if any plan has visits left.
    fn take_pair(&mut self) -> Option<usize> {
        if self.open.is_empty() {
            return None;
        }
        let k = self.rng.gen_range(0..self.open.len());
        let p = self.open[k];
        self.left[p] -= 1;
        if self.left[p] == 0 {
            self.open.swap_remove(k);
        }
        Some(p)
    }

    /// All visits of a pair no visit has been taken from.
    fn take_fresh_pair(&mut self) -> Option<usize> {
        for _ in 0..32 {
            if self.open.is_empty() {
                return None;
            }
            let k = self.rng.gen_range(0..self.open.len());
            let p = self.open[k];
            if self.left[p] == self.pop.plans[self.pairs[p].0].allowed_visits {
                self.left[p] = 0;
                self.open.swap_remove(k);
                return Some(p);
            }
        }
        None
    }

    fn officers(&mut self, agency: usize, count: usize) -> Vec<usize> {
        let pool = &self.pop.agencies[agency].officers;
        pool.choose_multiple(&mut self.rng, count.min(pool.len()))
            .copied()
            .collect()
    }

    fn items(&mut self, agency: usize) -> Vec<usize> {
        let pool = &self.pop.agencies[agency].items;
        let n = if pool.len() > 1 && self.rng.gen_bool(0.3) {
            2
        } else {
            1
        };
        pool.choose_multiple(&mut self.rng, n).copied().collect()
    }

    /// Two officers usually, three now and then, sometimes with a partner agency's officer.
    fn staff(&mut self, visit: &mut Visit, count: Option<usize>) {
        let n = count.unwrap_or(if self.rng.gen_bool(0.1) { 3 } else { 2 });
        visit.officers = self.officers(visit.agency, n);
        if count.is_none() && self.rng.gen_bool(0.08) {
            let own = &self.pop.agencies[visit.agency];
            let partners: Vec<usize> = (0..self.pop.agencies.len())
                .filter(|&p| {
                    let a = &self.pop.agencies[p].agency;
                    a.region == own.agency.region && a.domain != own.agency.domain
                })
                .collect();
            if let Some(&p) = partners.choose(&mut self.rng) {
                visit.partners = vec![p];
                let extra = self.officers(p, 1);
                visit.officers.extend(extra);
            }
        }
    }

    fn planned_visit(&mut self, pair: usize) -> Visit {
        let (p, enterprise) = self.pairs[pair];
        let plan = &self.pop.plans[p];
        let agency = self
            .pop
            .agency_index(&plan.agency)
            .expect("plans belong to simulated agencies");
        let n = if plan.items.len() > 1 && self.rng.gen_bool(0.3) {
            2
        } else {
            1
        };
        let items: Vec<usize> = plan
            .items
            .choose_multiple(&mut self.rng, n)
            .map(|code| {
                self.pop
                    .items
                    .iter()
                    .position(|i| &i.code == code)
                    .expect("plan items are registered")
            })
            .collect();
        Visit {
            kind: InspectionKind::Planned {
                plan: plan.id.clone(),
            },
            agency,
            enterprise,
            items,
            officers: vec![],
            partners: vec![],
            date_offset: 0,
        }
    }

    fn visit(&mut self, kind: InspectionKind, agency: usize, enterprise: Option<usize>) -> Visit {
        let enterprise = enterprise
            .unwrap_or_else(|| pick(&mut self.rng, &self.pop.agencies[agency].enterprises));
        let items = self.items(agency);
        Visit {
            kind,
            agency,
            enterprise,
            items,
            officers: vec![],
            partners: vec![],
            date_offset: 0,
        }
    }

    fn unplanned_kind(&mut self, enterprise: usize) -> InspectionKind {
        let year = self.pop.year;
        let name = &self.pop.enterprises[enterprise].name;
        let issue = pick(&mut self.rng, catalogue::COMPLAINTS);
        let n: u32 = self.rng.gen_range(0..1_000_000);
        let (trigger, basis) = match self.rng.gen_range(0..10) {
            0..=3 => (
                Trigger::Complaint,
                format!("群众投诉：反映{name}{issue}（投诉编号TS{year}{n:06}）"),
            ),
            4..=5 => (
                Trigger::Report,
                format!("12345热线举报转办：{issue}（工单号{year}{n:06}）"),
            ),
            6 => (
                Trigger::MediaExposure,
                format!("媒体曝光：{name}{issue}，依职责开展核查"),
            ),
            7 => (
                Trigger::SuperiorAssignment,
                format!(
                    "上级交办：安全生产治本攻坚专项行动（交办单号JB{year}{:04}）",
                    n % 10_000
                ),
            ),
            8 => (
                Trigger::Emergency,
                "突发事件应急处置：辖区发生安全生产事故，开展举一反三排查".to_string(),
            ),
            _ => (Trigger::Referral, format!("数据监测预警线索转办：{issue}")),
        };
        InspectionKind::Unplanned { trigger, basis }
    }

    fn supplementary_kind(&mut self, standard: bool) -> InspectionKind {
        let reason = if standard {
            STANDARD_SUPPLEMENT_REASON
        } else {
            pick(&mut self.rng, catalogue::SUPPLEMENT_REASONS)
        };
        InspectionKind::Supplementary {
            reason: SupplementReason::parse(reason).expect("catalogue reasons are valid"),
        }
    }

    fn non_inspection_kind(&mut self) -> InspectionKind {
        use VisitPurpose::*;
        InspectionKind::NonInspection {
            purpose: pick(
                &mut self.rng,
                &[
                    Observation,
                    Supervision,
                    Study,
                    Service,
                    LegalEducation,
                    LegalCheckup,
                ],
            ),
        }
    }

    /// A visit of the usual mix: mostly planned, then unplanned, non-inspection, supplementary.
    fn usual_visit(&mut self) -> Visit {
        let roll = self.rng.gen_range(0..100);
        if roll < 60 {
            if let Some(pair) = self.take_pair() {
                return self.planned_visit(pair);
            }
        }
        let agency = pick(&mut self.rng, &self.active);
        let enterprise = pick(&mut self.rng, &self.pop.agencies[agency].enterprises);
        let kind = match roll {
            88.. => self.non_inspection_kind(),
            80..=87 => self.supplementary_kind(false),
            _ => self.unplanned_kind(enterprise),
        };
        self.visit(kind, agency, Some(enterprise))
    }

    /// The usual lifecycle: shown, mostly scanned, sometimes two-code checked, reported, mostly rated.
    fn usual_life(&mut self, visit: &Visit) -> Life {
        let scanned = self.rng.gen_bool(0.95);
        let problems =
            !matches!(visit.kind, InspectionKind::NonInspection { .. }) && self.rng.gen_bool(0.3);
        let report = Some(if problems {
            Outcome::ProblemsFound {
                feedback: pick(&mut self.rng, catalogue::PROBLEMS).to_string(),
            }
        } else {
            Outcome::NoProblems
        });
        let rating = (scanned && self.rng.gen_bool(0.8)).then(|| {
            let level = match self.rng.gen_range(0..100) {
                0..=54 => 5,
                55..=84 => 4,
                _ => 3,
            };
            let comment = self
                .rng
                .gen_bool(0.3)
                .then(|| pick(&mut self.rng, catalogue::GOOD_COMMENTS).to_string());
            (level, comment)
        });
        Life {
            shown: true,
            retry_show: self.rng.gen_bool(0.03),
            scanned,
            two_code: self.rng.gen_bool(0.4),
            report,
            rating,
            ..Life::default()
        }
    }

    fn normal(&mut self) -> SimInspection {
        let mut visit = self.usual_visit();
        self.staff(&mut visit, None);
        let life = self.usual_life(&visit);
        self.inspection(&visit, life)
    }

    /// A scenario breaking `v`, or `None` when it needs more inspections than are `left` or
    /// the population offers no occasion for it.
    fn violation(&mut self, v: Violation, left: usize) -> Option<Scenario> {
        let single = |s: SimInspection| {
            Some(Scenario {
                violation: Some(v),
                inspections: vec![s],
            })
        };
        match v {
            Violation::OverFrequency => {
                let pair = self.take_fresh_pair()?;
                let allowed = self.pop.plans[self.pairs[pair].0].allowed_visits as usize;
                if allowed + 1 > left {
                    // Give the visits back: they were not used.
                    self.left[pair] = allowed as u32;
                    self.open.push(pair);
                    return None;
                }
                let mut inspections = vec![];
                for _ in 0..allowed {
                    let mut visit = self.planned_visit(pair);
                    self.staff(&mut visit, None);
                    let life = self.usual_life(&visit);
                    inspections.push(self.inspection(&visit, life));
                }
                let mut visit = self.planned_visit(pair);
                self.staff(&mut visit, None);
                inspections.push(self.inspection(
                    &visit,
                    Life {
                        refused: Some("plan_frequency_exceeded"),
                        ..Life::default()
                    },
                ));
                Some(Scenario {
                    violation: Some(v),
                    inspections,
                })
            }
            Violation::MultiHead => self.multi_head(left),
            _ => {
                let mut visit = match v {
                    Violation::StandardSupplement => {
                        let agency = pick(&mut self.rng, &self.active);
                        let kind = self.supplementary_kind(true);
                        self.visit(kind, agency, None)
                    }
                    Violation::NotYetValid | Violation::RevokedThenScanned => {
                        let agency = pick(&mut self.rng, &self.active);
                        let enterprise =
                            pick(&mut self.rng, &self.pop.agencies[agency].enterprises);
                        let kind = self.unplanned_kind(enterprise);
                        self.visit(kind, agency, Some(enterprise))
                    }
                    Violation::DisguisedVisit => {
                        let agency = pick(&mut self.rng, &self.active);
                        let kind = self.non_inspection_kind();
                        self.visit(kind, agency, None)
                    }
                    _ => self.usual_visit(),
                };
                self.staff(&mut visit, (v == Violation::SingleOfficer).then_some(1));
                let mut life = self.usual_life(&visit);
                match v {
                    Violation::NeverScanned => {
                        life.scanned = false;
                        life.rating = None;
                    }
                    Violation::ResultNotReported => life.report = None,
                    Violation::LowRating => {
                        life.scanned = true;
                        let level = self.rng.gen_range(1..=2);
                        life.rating = Some((
                            level,
                            Some(pick(&mut self.rng, catalogue::BAD_COMMENTS).to_string()),
                        ));
                        if self.rng.gen_bool(0.5) {
                            life.feedback =
                                Some(pick(&mut self.rng, catalogue::FEEDBACK).to_string());
                        }
                    }
                    Violation::StandardSupplement if self.rng.gen_bool(0.5) => {
                        // Recorded the day after: only the issuance and the result.
                        visit.date_offset = -1;
                        life = Life {
                            report: life.report,
                            ..Life::default()
                        };
                    }
                    Violation::NotYetValid => {
                        visit.date_offset = 1;
                        life = Life {
                            not_yet_valid: true,
                            ..Life::default()
                        };
                    }
                    Violation::RevokedThenScanned => {
                        life = Life {
                            revoked_then_scanned: true,
                            ..Life::default()
                        }
                    }
                    Violation::ForgedToken => {
                        life.forged_first = true;
                        life.scanned = true;
                    }
                    Violation::DisguisedVisit => {
                        life.report = Some(Outcome::ProblemsFound {
                            feedback: pick(&mut self.rng, catalogue::PROBLEMS).to_string(),
                        })
                    }
                    Violation::DoubleRating => {
                        life.scanned = true;
                        life.rating = Some((5, None));
                        life.second_rating = true;
                    }
                    Violation::WrongEnterpriseCode => {
                        life.two_code = true;
                        life.wrong_code = true;
                    }
                    Violation::NotAssigned => life.interloper = true,
                    _ => {}
                }
                single(self.inspection(&visit, life))
            }
        }
    }

    /// Two or three agencies at one enterprise on their own (not jointly); half the time two of
    /// them share a domain at different levels and check the same item.
    fn multi_head(&mut self, left: usize) -> Option<Scenario> {
        let enterprise = self.rng.gen_range(0..self.pop.enterprises.len());
        let covering: Vec<usize> = self
            .active
            .iter()
            .copied()
            .filter(|&a| self.pop.agencies[a].enterprises.contains(&enterprise))
            .collect();
        let want = self.rng.gen_range(2..=3).min(left).min(covering.len());
        if want < 2 {
            return None;
        }
        let mut chosen: Vec<usize> = vec![];
        let mut shared_item = None;
        if self.rng.gen_bool(0.5) {
            let pairs: Vec<(usize, usize)> = covering
                .iter()
                .flat_map(|&a| covering.iter().map(move |&b| (a, b)))
                .filter(|&(a, b)| {
                    let (x, y) = (&self.pop.agencies[a], &self.pop.agencies[b]);
                    a < b && x.agency.domain == y.agency.domain && x.agency.level != y.agency.level
                })
                .collect();
            if let Some(&(a, b)) = pairs.choose(&mut self.rng) {
                chosen = vec![a, b];
                shared_item = Some(pick(&mut self.rng, &self.pop.agencies[a].items));
            }
        }
        while chosen.len() < want {
            let a = pick(&mut self.rng, &covering);
            if !chosen.contains(&a) {
                chosen.push(a);
            }
        }
        let mut inspections = vec![];
        for agency in chosen {
            let kind = if self.rng.gen_bool(0.7) {
                self.unplanned_kind(enterprise)
            } else {
                self.supplementary_kind(false)
            };
            let mut visit = self.visit(kind, agency, Some(enterprise));
            if let Some(item) = shared_item.filter(|i| self.pop.agencies[agency].items.contains(i))
            {
                visit.items = vec![item];
            }
            self.staff(&mut visit, Some(2));
            let life = self.usual_life(&visit);
            inspections.push(self.inspection(&visit, life));
        }
        Some(Scenario {
            violation: Some(Violation::MultiHead),
            inspections,
        })
    }

    fn officer_step(&mut self, officer: usize, command: OfficerCommand, expect: Expect) -> Step {
        let command_id = self.uuid();
        Step {
            action: Action::Officer {
                officer,
                command_id,
                command: Box::new(command),
            },
            expect,
        }
    }

    fn inspection(&mut self, visit: &Visit, life: Life) -> SimInspection {
        let pop = self.pop;
        let inspection_id = self.uuid();
        let refs: Vec<OfficerRef> = visit
            .officers
            .iter()
            .map(|&o| pop.officers[o].profile.credential.clone())
            .collect();
        let issue = IssueCode {
            inspection_id,
            kind: visit.kind.clone(),
            agency: pop.agencies[visit.agency].agency.code.clone(),
            enterprise: pop.enterprises[visit.enterprise].credit_code.clone(),
            items: visit
                .items
                .iter()
                .map(|&i| pop.items[i].code.clone())
                .collect::<Vec<ItemCode>>(),
            officers: refs,
            // Set from the device's clock when sent.
            date: NaiveDate::from_ymd_opt(pop.year, 1, 1).expect("1 January exists"),
            joint_partners: visit
                .partners
                .iter()
                .map(|&p| pop.agencies[p].agency.code.clone())
                .collect::<Vec<AgencyCode>>(),
        };
        let kind = match visit.kind {
            InspectionKind::Planned { .. } => "planned",
            InspectionKind::Supplementary { .. } => "supplementary",
            InspectionKind::Unplanned { .. } => "unplanned",
            InspectionKind::NonInspection { .. } => "non_inspection",
        };
        let issuer = visit.officers[0];
        let mut steps = vec![];
        let expect = life.refused.map_or(Expect::Accepted, Expect::Refused);
        steps.push(self.officer_step(issuer, OfficerCommand::IssueCode(issue), expect));
        let done = |steps| SimInspection {
            inspection_id,
            kind,
            date_offset: visit.date_offset,
            steps,
        };
        if life.refused.is_some() {
            return done(steps);
        }
        let show = OfficerCommand::ShowCode { inspection_id };
        if life.not_yet_valid {
            steps.push(Step {
                action: Action::Scan { forged: false },
                expect: Expect::Refused("code_not_yet_valid"),
            });
            steps.push(self.officer_step(issuer, show, Expect::Refused("outside_validity")));
            let reason = "检查时间调整，作废后重新赋码".to_string();
            steps.push(self.officer_step(
                issuer,
                OfficerCommand::RevokeCode {
                    inspection_id,
                    reason,
                },
                Expect::Accepted,
            ));
            return done(steps);
        }
        if life.revoked_then_scanned {
            let reason = "赋码信息有误，作废".to_string();
            steps.push(self.officer_step(
                issuer,
                OfficerCommand::RevokeCode {
                    inspection_id,
                    reason,
                },
                Expect::Accepted,
            ));
            steps.push(Step {
                action: Action::Scan { forged: false },
                expect: Expect::Refused("code_revoked"),
            });
            return done(steps);
        }
        if life.shown {
            let by = pick(&mut self.rng, &visit.officers);
            steps.push(self.officer_step(by, show, Expect::Accepted));
            if life.retry_show {
                steps.push(Step {
                    action: Action::Resend,
                    expect: Expect::Refused("duplicate_command"),
                });
            }
        }
        if life.interloper {
            let outsiders: Vec<usize> = (0..pop.officers.len())
                .filter(|o| !visit.officers.contains(o))
                .collect();
            let by = pick(&mut self.rng, &outsiders);
            let command = OfficerCommand::ReportResult {
                inspection_id,
                outcome: Outcome::NoProblems,
            };
            steps.push(self.officer_step(by, command, Expect::Refused("not_assigned")));
        }
        if life.forged_first {
            steps.push(Step {
                action: Action::Scan { forged: true },
                expect: Expect::Refused("forged_token"),
            });
        }
        if life.scanned {
            steps.push(Step {
                action: Action::Scan { forged: false },
                expect: Expect::Accepted,
            });
        }
        if life.two_code {
            let by = pick(&mut self.rng, &visit.officers);
            if life.wrong_code {
                let other =
                    (visit.enterprise + 1 + self.rng.gen_range(0..pop.enterprises.len() - 1))
                        % pop.enterprises.len();
                let enterprise = pop.enterprises[other].credit_code.clone();
                let command = OfficerCommand::ScanEnterpriseCode {
                    inspection_id,
                    enterprise,
                };
                steps.push(self.officer_step(by, command, Expect::Refused("wrong_enterprise")));
            }
            let enterprise = pop.enterprises[visit.enterprise].credit_code.clone();
            steps.push(self.officer_step(
                by,
                OfficerCommand::ScanEnterpriseCode {
                    inspection_id,
                    enterprise,
                },
                Expect::Accepted,
            ));
        }
        if let Some(outcome) = life.report {
            let by = pick(&mut self.rng, &visit.officers);
            steps.push(self.officer_step(
                by,
                OfficerCommand::ReportResult {
                    inspection_id,
                    outcome,
                },
                Expect::Accepted,
            ));
        }
        if let (true, Some((level, comment))) = (life.scanned, life.rating) {
            steps.push(Step {
                action: Action::Rate { level, comment },
                expect: Expect::Accepted,
            });
            if life.second_rating {
                steps.push(Step {
                    action: Action::Rate {
                        level: 1,
                        comment: None,
                    },
                    expect: Expect::Refused("already_rated"),
                });
            }
        }
        if let Some(text) = life.feedback {
            steps.push(Step {
                action: Action::Feedback { text },
                expect: Expect::Accepted,
            });
        }
        done(steps)
    }
}
