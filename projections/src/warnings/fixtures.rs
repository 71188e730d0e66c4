//! Test fixtures: Asia/Shanghai times, agencies, enterprises, codes, a rule set with every rule
//! on, and `Sim`, which drives a `WarningEngine` the way the projector does (advance to the
//! event's time, fold the event into its visit, then `on_event`).

use super::{Rule, Warning, WarningEngine};
use crate::rules::{
    AnnualCapRule, DayName, DisguisedVisitRule, KindName, LowRatingRule, MultiHeadRule,
    OfficersRule, PlanFrequencyRule, QuietDaysRule, RepeatedItemRule, ResultDeadlineRule, RuleBook,
    RuleSet, SatisfactionRateRule, ScanningRule, SupplementaryRule,
};
use crate::visit::Visit;
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use saoma_domain::canonical::Digest;
use saoma_domain::ids::{
    AgencyCode, CertificateNo, CreditCode, ItemCode, OfficerRef, PlanId, RegionCode,
};
use saoma_domain::inspection::{
    EnterpriseOnCode, InspectionEvent, InspectionKind, OfficerOnCode, Outcome, Scanner,
    SupplementReason, Trigger, ValidityRule, VisitPurpose, STANDARD_SUPPLEMENT_REASON,
};
use saoma_domain::keys::{KeyId, SignatureBytes};
use saoma_domain::registry::{Agency, AgencyLevel, EnforcementDomain, Item, Plan, RegistryEvent};
use saoma_domain::seal::{Actor, EventMeta, NotarySeal, Sealed};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------------

/// An instant written as Asia/Shanghai wall-clock time, `YYYY-MM-DD HH:MM:SS`.
pub fn shanghai(local: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S").expect("a local time");
    Shanghai
        .from_local_datetime(&naive)
        .single()
        .expect("Asia/Shanghai has no DST")
        .with_timezone(&Utc)
}

pub fn day(s: &str) -> NaiveDate {
    s.parse().expect("a date")
}

// ---------------------------------------------------------------------------------------------
// Registry
// ---------------------------------------------------------------------------------------------

pub const SIX_EXEMPT: [EnforcementDomain; 6] = [
    EnforcementDomain::NationalSecurity,
    EnforcementDomain::PublicSafety,
    EnforcementDomain::FoodDrug,
    EnforcementDomain::WorkSafety,
    EnforcementDomain::EcologyEnvironment,
    EnforcementDomain::PublicHealth,
];

/// A market-regulation agency in Zhuzhou.
pub fn agency(code: &str, level: AgencyLevel) -> Agency {
    Agency {
        code: AgencyCode::parse(code).unwrap(),
        name: format!("{code}局"),
        level,
        region: RegionCode::parse("430200").unwrap(),
        domain: EnforcementDomain::MarketRegulation,
    }
}

pub fn agency_in(code: &str, level: AgencyLevel, region: &str) -> Agency {
    Agency {
        region: RegionCode::parse(region).unwrap(),
        ..agency(code, level)
    }
}

pub fn credit(n: u32, region: &str) -> CreditCode {
    CreditCode::with_check_digit(&format!("91{region}MA{n:07}")).unwrap()
}

pub fn enterprise(n: u32, region: &str) -> EnterpriseOnCode {
    EnterpriseOnCode {
        credit_code: credit(n, region),
        name: format!("企业{n}"),
        region: region.to_string(),
    }
}

pub fn item(code: &str, domain: EnforcementDomain) -> Item {
    Item {
        code: ItemCode::parse(code).unwrap(),
        name: format!("事项{code}"),
        legal_basis: "《优化营商环境条例》".into(),
        domain,
    }
}

pub fn plan(
    id: &str,
    agency: &Agency,
    year: i32,
    enterprises: &[&EnterpriseOnCode],
    items: &[&str],
    allowed: u32,
) -> Plan {
    Plan {
        id: PlanId::parse(id).unwrap(),
        agency: agency.code.clone(),
        year,
        enterprises: enterprises.iter().map(|e| e.credit_code.clone()).collect(),
        items: items.iter().map(|i| ItemCode::parse(i).unwrap()).collect(),
        allowed_visits: allowed,
    }
}

// ---------------------------------------------------------------------------------------------
// Codes
// ---------------------------------------------------------------------------------------------

pub fn planned(plan: &str) -> InspectionKind {
    InspectionKind::Planned {
        plan: PlanId::parse(plan).unwrap(),
    }
}

pub fn supplementary() -> InspectionKind {
    InspectionKind::Supplementary {
        reason: SupplementReason::parse("现场检查后补录").unwrap(),
    }
}

pub fn standard_supplementary() -> InspectionKind {
    InspectionKind::Supplementary {
        reason: SupplementReason::parse(STANDARD_SUPPLEMENT_REASON).unwrap(),
    }
}

pub fn unplanned(trigger: Trigger) -> InspectionKind {
    InspectionKind::Unplanned {
        trigger,
        basis: "群众来电反映".into(),
    }
}

pub fn non_inspection(purpose: VisitPurpose) -> InspectionKind {
    InspectionKind::NonInspection { purpose }
}

/// A code to issue.
#[derive(Debug, Clone)]
pub struct Code {
    pub kind: InspectionKind,
    pub agency: Agency,
    pub enterprise: EnterpriseOnCode,
    pub items: Vec<Item>,
    pub officers: usize,
    pub date: NaiveDate,
    pub partners: Vec<Agency>,
    pub hours: u32,
    pub issued_at: DateTime<Utc>,
}

/// A planned code (under a plan the engine does not know) with one market-regulation item and
/// two officers, issued at 15:30 the day before, valid for 24 hours.
pub fn code(agency: &Agency, enterprise: &EnterpriseOnCode, date: &str) -> Code {
    let date = day(date);
    let issued_at = super::shanghai_midnight(date) - Duration::minutes(510);
    Code {
        kind: planned("P-UNKNOWN"),
        agency: agency.clone(),
        enterprise: enterprise.clone(),
        items: vec![item("SC-001", EnforcementDomain::MarketRegulation)],
        officers: 2,
        date,
        partners: Vec::new(),
        hours: 24,
        issued_at,
    }
}

impl Code {
    pub fn kind(mut self, kind: InspectionKind) -> Self {
        self.kind = kind;
        self
    }
    pub fn items(mut self, items: Vec<Item>) -> Self {
        self.items = items;
        self
    }
    pub fn officers(mut self, n: usize) -> Self {
        self.officers = n;
        self
    }
    pub fn partners(mut self, partners: Vec<Agency>) -> Self {
        self.partners = partners;
        self
    }
    pub fn hours(mut self, hours: u32) -> Self {
        self.hours = hours;
        self
    }
    pub fn issued(mut self, at: &str) -> Self {
        self.issued_at = shanghai(at);
        self
    }
    pub fn issued_utc(mut self, at: DateTime<Utc>) -> Self {
        self.issued_at = at;
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------------

/// Every rule on, with small thresholds: annual cap 1; multi-head 2 agencies in 7 days;
/// repeated items within 30 days; quiet Monday to Wednesday; mutual verification required;
/// results due 48 h after validity; two officers; 补录 more than 3 (2 standard) a month or more
/// than 50% of at least 4; more than 1 non-inspection visit in 30 days; ratings of 2 or less;
/// monthly rate below 80% of at least 3 ratings (satisfied: 4 or more). No grace period.
pub fn rules() -> RuleSet {
    let routine = vec![KindName::Planned, KindName::Supplementary];
    let inspections = vec![
        KindName::Planned,
        KindName::Supplementary,
        KindName::Unplanned,
    ];
    RuleSet {
        name: "测试规则".into(),
        prefixes: Vec::new(),
        validity_hours: 24,
        deadline_grace_minutes: 0,
        annual_cap: AnnualCapRule {
            enabled: true,
            max_per_year: 1,
            kinds: inspections.clone(),
            exempt_triggers: vec![
                Trigger::Complaint,
                Trigger::SuperiorAssignment,
                Trigger::Emergency,
            ],
            exempt_domains: SIX_EXEMPT.to_vec(),
        },
        plan_frequency: PlanFrequencyRule { enabled: true },
        multi_head: MultiHeadRule {
            enabled: true,
            window_days: 7,
            min_agencies: 2,
            kinds: inspections.clone(),
            exempt_triggers: vec![Trigger::Emergency],
            exempt_domains: Vec::new(),
        },
        repeated_item: RepeatedItemRule {
            enabled: true,
            window_days: 30,
            kinds: inspections,
            exempt_triggers: vec![Trigger::Complaint],
            exempt_domains: Vec::new(),
        },
        quiet_days: QuietDaysRule {
            enabled: true,
            weekdays: vec![DayName::Monday, DayName::Tuesday, DayName::Wednesday],
            kinds: routine,
            exempt_triggers: Vec::new(),
            exempt_domains: SIX_EXEMPT.to_vec(),
        },
        scanning: ScanningRule {
            enabled: true,
            require_mutual_verification: true,
        },
        result_deadline: ResultDeadlineRule {
            enabled: true,
            hours_after_validity: 48,
        },
        officers: OfficersRule {
            enabled: true,
            min_officers: 2,
        },
        supplementary: SupplementaryRule {
            enabled: true,
            max_per_month: 3,
            max_standard_reason_per_month: 2,
            max_share_percent: 50,
            min_visits_for_share: 4,
        },
        disguised_visit: DisguisedVisitRule {
            enabled: true,
            max_visits: 1,
            window_days: 30,
            problems_found: true,
        },
        low_rating: LowRatingRule {
            enabled: true,
            max_level: 2,
        },
        satisfaction_rate: SatisfactionRateRule {
            enabled: true,
            satisfied_level: 4,
            min_rate_percent: 80,
            min_ratings: 3,
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Driving the engine
// ---------------------------------------------------------------------------------------------

fn meta(at: DateTime<Utc>) -> EventMeta {
    EventMeta {
        recorded_at: at,
        device_time: None,
        late: false,
        actor: Actor::System,
        command_id: None,
    }
}

fn notary() -> NotarySeal {
    NotarySeal {
        key_id: KeyId("0000000000000000".into()),
        signature: SignatureBytes::from_base64(&format!("{}==", "A".repeat(86)))
            .expect("64 zero bytes"),
    }
}

/// A sealed event with dummy hashes and signature.
pub fn sealed<E>(stream: String, sequence: u64, at: DateTime<Utc>, event: E) -> Sealed<E> {
    Sealed {
        stream,
        sequence,
        prev_hash: Digest::ZERO,
        meta: meta(at),
        command: None,
        event,
        hash: Digest::ZERO,
        notary: notary(),
    }
}

/// Drives an engine as the projector does and collects every warning.
pub struct Sim {
    pub engine: WarningEngine,
    pub visits: HashMap<Uuid, Visit>,
    pub warnings: Vec<Warning>,
    /// When false, visits are dropped from `visits` ten days after their date (as a driver
    /// with bounded memory would), to show the engine does not need them afterwards.
    pub keep_visits: bool,
    next_id: u128,
    next_registry: u64,
}

impl Sim {
    pub fn new(rules: RuleSet) -> Sim {
        Sim::with_book(RuleBook::single(rules).expect("valid test rules"))
    }

    pub fn with_book(book: RuleBook) -> Sim {
        Sim {
            engine: WarningEngine::new(book),
            visits: HashMap::new(),
            warnings: Vec::new(),
            keep_visits: true,
            next_id: 0,
            next_registry: 0,
        }
    }

    fn collect(&mut self, ws: Vec<Warning>) -> Vec<Warning> {
        self.warnings.extend(ws.iter().cloned());
        ws
    }

    pub fn advance_to(&mut self, now: DateTime<Utc>) -> Vec<Warning> {
        let ws = self.engine.advance(now, &self.visits);
        if !self.keep_visits {
            let before = super::shanghai_date(now - Duration::days(10));
            self.visits.retain(|_, v| v.date >= before);
        }
        self.collect(ws)
    }

    pub fn advance(&mut self, now: &str) -> Vec<Warning> {
        self.advance_to(shanghai(now))
    }

    /// Issues a code; returns its inspection id.
    pub fn issue(&mut self, c: Code) -> Uuid {
        self.next_id += 1;
        let id = Uuid::from_u128(self.next_id);
        let officers = (0..c.officers)
            .map(|i| OfficerOnCode {
                id: OfficerRef::Certificate(
                    CertificateNo::parse(&format!(
                        "ZF{}{:04}",
                        c.agency.code.as_str().len(),
                        self.next_id as usize * 10 + i
                    ))
                    .unwrap(),
                ),
                name: format!("执法人员{i}"),
            })
            .collect();
        let event = InspectionEvent::CodeIssued {
            inspection_id: id,
            kind: c.kind,
            agency: c.agency,
            enterprise: c.enterprise,
            items: c.items,
            officers,
            date: c.date,
            joint_partners: c.partners,
            validity: ValidityRule { hours: c.hours }.window(c.date),
        };
        let e = sealed(format!("inspection/{id}"), 1, c.issued_at, event);
        let early = self.engine.advance(c.issued_at, &self.visits);
        self.collect(early);
        let visit = Visit::issued(&e).expect("a CodeIssued");
        let ws = self.engine.on_event(&visit, &e.event, &visit.issued.event);
        self.visits.insert(id, visit);
        self.collect(ws);
        id
    }

    /// The CodeIssued event of a visit, rebuilt from it.
    pub fn issued_event(&self, id: Uuid) -> InspectionEvent {
        let v = &self.visits[&id];
        InspectionEvent::CodeIssued {
            inspection_id: id,
            kind: v.kind.clone(),
            agency: v.agency.clone(),
            enterprise: v.enterprise.clone(),
            items: v.items.clone(),
            officers: v.officers.clone(),
            date: v.date,
            joint_partners: v.joint_partners.clone(),
            validity: v.validity,
        }
    }

    /// Advances to `at`, folds `event` into the visit and hands it to the engine.
    pub fn event(&mut self, id: Uuid, at: DateTime<Utc>, event: InspectionEvent) -> Vec<Warning> {
        let mut out = self.advance_to(at);
        let Some(visit) = self.visits.get_mut(&id) else {
            return out;
        };
        let sequence = visit.events.len() as u64 + 1;
        let e = sealed(format!("inspection/{id}"), sequence, at, event);
        visit.apply(&e);
        let visit = &self.visits[&id];
        let ws = self
            .engine
            .on_event(visit, &e.event, &crate::visit::event_id(&e));
        out.extend(self.collect(ws));
        out
    }

    pub fn show_at(&mut self, id: Uuid, at: DateTime<Utc>) -> Vec<Warning> {
        self.event(id, at, InspectionEvent::CodeShown { at })
    }
    pub fn show(&mut self, id: Uuid, at: &str) -> Vec<Warning> {
        self.show_at(id, shanghai(at))
    }
    /// The enterprise scans the inspection code.
    pub fn scan_at(&mut self, id: Uuid, at: DateTime<Utc>) -> Vec<Warning> {
        let mutual = self
            .visits
            .get(&id)
            .is_some_and(|v| v.officer_scan.is_some());
        self.event(
            id,
            at,
            InspectionEvent::CodeScanned {
                by: Scanner::Enterprise,
                at,
                mutual,
            },
        )
    }
    pub fn scan(&mut self, id: Uuid, at: &str) -> Vec<Warning> {
        self.scan_at(id, shanghai(at))
    }
    /// The officer scans the enterprise's code.
    pub fn officer_scan(&mut self, id: Uuid, at: &str) -> Vec<Warning> {
        let at = shanghai(at);
        let mutual = self
            .visits
            .get(&id)
            .is_some_and(|v| v.enterprise_scan.is_some());
        self.event(
            id,
            at,
            InspectionEvent::CodeScanned {
                by: Scanner::Officer,
                at,
                mutual,
            },
        )
    }
    pub fn result_at(&mut self, id: Uuid, at: DateTime<Utc>, problems: bool) -> Vec<Warning> {
        let outcome = if problems {
            Outcome::ProblemsFound {
                feedback: "消防通道堵塞".into(),
            }
        } else {
            Outcome::NoProblems
        };
        self.event(id, at, InspectionEvent::ResultReported { outcome, at })
    }
    pub fn result(&mut self, id: Uuid, at: &str, problems: bool) -> Vec<Warning> {
        self.result_at(id, shanghai(at), problems)
    }
    pub fn revoke(&mut self, id: Uuid, at: &str) -> Vec<Warning> {
        let at = shanghai(at);
        self.event(
            id,
            at,
            InspectionEvent::CodeRevoked {
                reason: "行程取消".into(),
                at,
            },
        )
    }
    pub fn rate_at(&mut self, id: Uuid, at: DateTime<Utc>, level: u8) -> Vec<Warning> {
        self.event(
            id,
            at,
            InspectionEvent::RatingGiven {
                level,
                comment: (level <= 2).then(|| "态度生硬".to_string()),
                at,
            },
        )
    }
    pub fn rate(&mut self, id: Uuid, at: &str, level: u8) -> Vec<Warning> {
        self.rate_at(id, shanghai(at), level)
    }

    /// A plan approved (or amended) in the registry at `at`.
    pub fn plan(&mut self, plan: Plan, amended: bool, at: &str) -> Vec<Warning> {
        let mut out = self.advance(at);
        self.next_registry += 1;
        let stream = format!("registry/plan:{}", plan.id);
        let event = if amended {
            RegistryEvent::PlanAmended { plan }
        } else {
            RegistryEvent::PlanApproved { plan }
        };
        let e = sealed(stream, self.next_registry, shanghai(at), event);
        let ws = self
            .engine
            .on_registry(&e.event, &crate::visit::event_id(&e));
        out.extend(self.collect(ws));
        out
    }

    /// Every warning of one rule so far.
    pub fn of(&self, rule: Rule) -> Vec<&Warning> {
        self.warnings.iter().filter(|w| w.rule == rule).collect()
    }
}

/// Only the warnings of `rule`.
pub fn only(ws: &[Warning], rule: Rule) -> Vec<Warning> {
    ws.iter().filter(|w| w.rule == rule).cloned().collect()
}

/// A book with a region set for `prefix` next to the default.
pub fn book_with(default: RuleSet, prefix: &str, mut region: RuleSet) -> RuleBook {
    region.prefixes = vec![prefix.to_string()];
    region.name = format!("{prefix}规则");
    RuleBook::new(default, BTreeMap::from([(prefix.to_string(), region)])).expect("valid book")
}
