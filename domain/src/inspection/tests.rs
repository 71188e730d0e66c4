//! Tests of the `Inspection` aggregate: given/when/then over the pure `decide`/`evolve`, one test
//! per rule and per refusal, property tests over random command sequences (sealed and chained),
//! and the cqrs-es `handle` path.

use super::*;
use crate::canonical::Digest;
use crate::envelope::sign_envelope;
use crate::ids::{AgencyCode, CertificateNo, CreditCode, ItemCode, OfficerRef, PlanId, RegionCode};
use crate::keys::{KeyId, Notary, PublicKey};
use crate::registry::{
    Agency, AgencyLevel, CreditGrade, EnforcementDomain, Enterprise, EnterpriseStatus, Item,
    OfficerStatus, Plan,
};
use crate::seal::{self, Actor, Chain, EventMeta, SealError, Sealed};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use ed25519_dalek::SigningKey;
use futures::executor::block_on;
use proptest::prelude::*;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Time, in Asia/Shanghai
// ---------------------------------------------------------------------------------------------

/// An instant written as Asia/Shanghai wall-clock time, `YYYY-MM-DD HH:MM:SS`.
fn shanghai(local: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S").expect("a local time");
    Shanghai
        .from_local_datetime(&naive)
        .single()
        .expect("Asia/Shanghai has no DST")
        .with_timezone(&Utc)
}

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().expect("an RFC 3339 instant")
}

fn day(s: &str) -> NaiveDate {
    s.parse().expect("a date")
}

/// The fixtures' inspection date (a Monday).
fn inspection_date() -> NaiveDate {
    day("2026-03-02")
}

/// When the fixtures' code is issued: the afternoon before the inspection, Shanghai time.
fn issue_time() -> DateTime<Utc> {
    shanghai("2026-03-01 15:30:00")
}

/// Mid-morning on the inspection date.
fn during() -> DateTime<Utc> {
    shanghai("2026-03-02 10:00:00")
}

fn minutes_after(t: DateTime<Utc>, m: i64) -> DateTime<Utc> {
    t + Duration::minutes(m)
}

/// The fixtures' validity window, written in UTC on purpose: 00:00 in Shanghai is 16:00 UTC on
/// the day before.
fn window() -> ValidityWindow {
    ValidityWindow {
        valid_from: utc("2026-03-01T16:00:00Z"),
        valid_until: utc("2026-03-02T16:00:00Z"),
    }
}

// ---------------------------------------------------------------------------------------------
// Registry fixtures
// ---------------------------------------------------------------------------------------------

const AGENCY: &str = "QH-SCJ-630100";
const PARTNER: &str = "QH-XFJY-630100";
const TAX_AGENCY: &str = "QH-SWJ-630100";
const PLAN: &str = "QH-SCJ-2026-001";
const FOOD: &str = "SC-SPJY-001";
const METROLOGY: &str = "SC-JLQJ-002";

fn agency_code(code: &str) -> AgencyCode {
    AgencyCode::parse(code).expect("a valid agency code")
}

fn item_code(code: &str) -> ItemCode {
    ItemCode::parse(code).expect("a valid item code")
}

fn plan_id(id: &str) -> PlanId {
    PlanId::parse(id).expect("a valid plan id")
}

fn region() -> RegionCode {
    RegionCode::parse("630100").expect("a valid region code")
}

fn agency() -> Agency {
    Agency {
        code: agency_code(AGENCY),
        name: "西宁市市场监督管理局".into(),
        level: AgencyLevel::City,
        region: region(),
        domain: EnforcementDomain::MarketRegulation,
    }
}

fn partner_agency() -> Agency {
    Agency {
        code: agency_code(PARTNER),
        name: "西宁市消防救援支队".into(),
        level: AgencyLevel::City,
        region: region(),
        domain: EnforcementDomain::FireSafety,
    }
}

/// The inspected enterprise's unified social credit code, check digit computed by GB 32100.
fn credit_code() -> CreditCode {
    CreditCode::with_check_digit("91630100MA752XKQ1").expect("17 valid characters")
}

/// Another enterprise's code, for the officer who scans the wrong 企业码.
fn other_credit_code() -> CreditCode {
    CreditCode::with_check_digit("91630104MA7B3C4D5").expect("17 valid characters")
}

fn enterprise() -> Enterprise {
    Enterprise {
        credit_code: credit_code(),
        name: "青海高原乳业有限公司".into(),
        region: region(),
        credit_grade: CreditGrade::A,
        status: EnterpriseStatus::Active,
    }
}

fn food_item() -> Item {
    Item {
        code: item_code(FOOD),
        name: "食品经营许可及经营过程检查".into(),
        legal_basis: "《中华人民共和国食品安全法》第八十七条、第一百一十条".into(),
        domain: EnforcementDomain::FoodDrug,
    }
}

fn metrology_item() -> Item {
    Item {
        code: item_code(METROLOGY),
        name: "计量器具使用情况检查".into(),
        legal_basis: "《中华人民共和国计量法》第九条、第十八条".into(),
        domain: EnforcementDomain::MarketRegulation,
    }
}

/// The approved 2026 plan: this agency, this enterprise, both items, two visits a year.
fn plan() -> Plan {
    Plan {
        id: plan_id(PLAN),
        agency: agency_code(AGENCY),
        year: 2026,
        enterprises: vec![credit_code()],
        items: vec![item_code(FOOD), item_code(METROLOGY)],
        allowed_visits: 2,
    }
}

fn inspection_id() -> Uuid {
    Uuid::parse_str("6f1c1f36-3a5e-4c55-8f43-0a4c1d9b5b10").expect("a uuid")
}

/// Who sends a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// An officer by certificate number (signed command from their device).
    Officer(&'static str),
    /// Whoever holds the code's token: the enterprise, on its phone.
    Enterprise,
    Admin,
}

/// Listed on the fixtures' code; issues it.
const WANG: Who = Who::Officer("ZF63010001");
/// Listed on the fixtures' code.
const LI: Who = Who::Officer("ZF63010002");
/// Same agency, active, but not listed on the code.
const ZHAO: Who = Who::Officer("ZF63010003");
/// An officer of the tax bureau.
const SUN: Who = Who::Officer("ZF63010509");
const ENTERPRISE: Who = Who::Enterprise;
const ADMIN: Who = Who::Admin;

impl Who {
    fn key(self) -> &'static str {
        match self {
            Who::Officer(key) => key,
            _ => panic!("{self:?} is not an officer"),
        }
    }

    fn officer_ref(self) -> OfficerRef {
        OfficerRef::Certificate(CertificateNo::parse(self.key()).expect("a certificate number"))
    }

    fn device_key(self) -> SigningKey {
        SigningKey::from_bytes(&Digest::of(self.key().as_bytes()).0)
    }

    /// The registry's record of this officer, as the service hands it to the aggregate.
    fn fact(self) -> OfficerFact {
        let (name, agency) = match self.key() {
            "ZF63010001" => ("王五", AGENCY),
            "ZF63010002" => ("李四", AGENCY),
            "ZF63010003" => ("赵六", AGENCY),
            "ZF63010509" => ("孙七", TAX_AGENCY),
            other => panic!("no fixture for officer {other}"),
        };
        OfficerFact {
            key: self.key().into(),
            name: name.into(),
            agency: agency_code(agency),
            status: OfficerStatus::Active,
        }
    }

    fn on_code(self) -> OfficerOnCode {
        OfficerOnCode {
            id: self.officer_ref(),
            name: self.fact().name,
        }
    }

    fn actor(self) -> Actor {
        match self {
            Who::Officer(key) => Actor::Officer {
                officer: key.into(),
                key_id: KeyId::of(&self.device_key().verifying_key()),
            },
            Who::Enterprise => Actor::TokenHolder,
            Who::Admin => Actor::Admin {
                name: "监督局管理员".into(),
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Commands and requests
// ---------------------------------------------------------------------------------------------

/// An `IssueCode` command with the registry facts the service would look up for it.
#[derive(Debug, Clone)]
struct Issue {
    command: IssueCode,
    facts: IssueFacts,
}

impl Issue {
    /// A planned code for the fixtures' date, both items, 王五 and 李四: everything in order.
    fn planned() -> Self {
        Issue {
            command: IssueCode {
                inspection_id: inspection_id(),
                kind: InspectionKind::Planned {
                    plan: plan_id(PLAN),
                },
                agency: agency_code(AGENCY),
                enterprise: credit_code(),
                items: vec![item_code(FOOD), item_code(METROLOGY)],
                officers: vec![WANG.officer_ref(), LI.officer_ref()],
                date: inspection_date(),
                joint_partners: vec![],
            },
            facts: IssueFacts {
                agency: Some(agency()),
                enterprise: Some(enterprise()),
                items: vec![Some(food_item()), Some(metrology_item())],
                officers: vec![Some(WANG.fact()), Some(LI.fact())],
                partners: vec![],
                plan: Some(PlanUse {
                    plan: plan(),
                    used: 0,
                }),
                validity: ValidityRule::default(),
            },
        }
    }

    fn supplementary(reason: &str) -> Self {
        Issue::planned().kind(InspectionKind::Supplementary {
            reason: SupplementReason::parse(reason).expect("a valid reason"),
        })
    }

    fn unplanned(trigger: Trigger, basis: &str) -> Self {
        Issue::planned().kind(InspectionKind::Unplanned {
            trigger,
            basis: basis.into(),
        })
    }

    fn non_inspection(purpose: VisitPurpose) -> Self {
        Issue::planned().kind(InspectionKind::NonInspection { purpose })
    }

    /// Another kind of code; only planned codes come with a plan.
    fn kind(mut self, kind: InspectionKind) -> Self {
        if !matches!(kind, InspectionKind::Planned { .. }) {
            self.facts.plan = None;
        }
        self.command.kind = kind;
        self
    }

    fn dated(mut self, date: NaiveDate) -> Self {
        self.command.date = date;
        self
    }

    fn with(mut self, change: impl FnOnce(&mut IssueCode, &mut IssueFacts)) -> Self {
        change(&mut self.command, &mut self.facts);
        self
    }

    /// The officers on the code with what the registry knows of each (`None`: unknown).
    fn officers(self, officers: &[(Who, Option<OfficerFact>)]) -> Self {
        self.with(|c, f| {
            c.officers = officers.iter().map(|(w, _)| w.officer_ref()).collect();
            f.officers = officers.iter().map(|(_, fact)| fact.clone()).collect();
        })
    }

    /// Partner agencies with what the registry knows of each (`None`: unknown).
    fn joint_with(self, partners: &[(&str, Option<Agency>)]) -> Self {
        self.with(|c, f| {
            c.joint_partners = partners.iter().map(|(code, _)| agency_code(code)).collect();
            f.partners = partners.iter().map(|(_, a)| a.clone()).collect();
        })
    }

    fn request(self, who: Who, at: DateTime<Utc>) -> InspectionRequest {
        by(who, at, self.command())
    }

    fn command(self) -> InspectionCommand {
        InspectionCommand::IssueCode {
            command: self.command,
            facts: self.facts,
        }
    }
}

fn show() -> InspectionCommand {
    InspectionCommand::ShowCode
}

fn scan(token: TokenCheck) -> InspectionCommand {
    InspectionCommand::ScanCode { token }
}

fn scan_enterprise_code(enterprise: CreditCode) -> InspectionCommand {
    InspectionCommand::ScanEnterpriseCode { enterprise }
}

fn rate(level: u8, comment: Option<&str>) -> InspectionCommand {
    InspectionCommand::GiveRating {
        level,
        comment: comment.map(str::to_string),
    }
}

fn report(outcome: Outcome) -> InspectionCommand {
    InspectionCommand::ReportResult { outcome }
}

fn problems(feedback: &str) -> Outcome {
    Outcome::ProblemsFound {
        feedback: feedback.into(),
    }
}

fn revoke(reason: &str) -> InspectionCommand {
    InspectionCommand::RevokeCode {
        reason: reason.into(),
    }
}

fn feedback(text: &str) -> InspectionCommand {
    InspectionCommand::GiveFeedback { text: text.into() }
}

static NEXT_COMMAND_ID: AtomicU64 = AtomicU64::new(1);

fn fresh_command_id() -> Uuid {
    Uuid::from_u128(
        (0xc0de_u128 << 64) | u128::from(NEXT_COMMAND_ID.fetch_add(1, Ordering::Relaxed)),
    )
}

/// A request as the service hands it to the aggregate. An officer's command carries its device
/// time (which the rules judge), arrives two seconds later and has a fresh command id; the
/// enterprise and administrators act on the service's clock.
fn by(who: Who, at: DateTime<Utc>, command: InspectionCommand) -> InspectionRequest {
    let (device_time, recorded_at, command_id) = match who {
        Who::Officer(_) => (
            Some(at),
            at + Duration::seconds(2),
            Some(fresh_command_id()),
        ),
        Who::Enterprise | Who::Admin => (None, at, None),
    };
    InspectionRequest {
        inspection_id: inspection_id(),
        command,
        meta: EventMeta {
            recorded_at,
            device_time,
            late: false,
            actor: who.actor(),
            command_id,
        },
        signed: None,
    }
}

/// The common case: 王五 issues the code the afternoon before.
fn issue(issue: Issue) -> InspectionRequest {
    issue.request(WANG, issue_time())
}

fn with_command_id(mut request: InspectionRequest, id: Uuid) -> InspectionRequest {
    request.meta.command_id = Some(id);
    request
}

// ---------------------------------------------------------------------------------------------
// Expected events
// ---------------------------------------------------------------------------------------------

/// `CodeIssued` for the fixtures, written out field by field.
fn code_issued() -> InspectionEvent {
    InspectionEvent::CodeIssued {
        inspection_id: inspection_id(),
        kind: InspectionKind::Planned {
            plan: plan_id(PLAN),
        },
        agency: agency(),
        enterprise: EnterpriseOnCode {
            credit_code: credit_code(),
            name: "青海高原乳业有限公司".into(),
            region: "630100".into(),
        },
        items: vec![food_item(), metrology_item()],
        officers: vec![WANG.on_code(), LI.on_code()],
        date: inspection_date(),
        joint_partners: vec![],
        validity: window(),
    }
}

/// `CodeIssued` for the fixtures with another kind, date and window.
fn code_issued_as(
    kind: InspectionKind,
    date: NaiveDate,
    validity: ValidityWindow,
) -> InspectionEvent {
    let mut event = code_issued();
    if let InspectionEvent::CodeIssued {
        kind: k,
        date: d,
        validity: v,
        ..
    } = &mut event
    {
        *k = kind;
        *d = date;
        *v = validity;
    }
    event
}

fn code_issued_of_kind(kind: InspectionKind) -> InspectionEvent {
    code_issued_as(kind, inspection_date(), window())
}

fn shown(at: DateTime<Utc>) -> InspectionEvent {
    InspectionEvent::CodeShown { at }
}

fn scanned(by: Scanner, at: DateTime<Utc>, mutual: bool) -> InspectionEvent {
    InspectionEvent::CodeScanned { by, at, mutual }
}

fn scan_refused(by: Scanner, at: DateTime<Utc>, reason: ScanRefusal) -> InspectionEvent {
    InspectionEvent::ScanRefused { by, at, reason }
}

fn rated(level: u8, comment: Option<&str>, at: DateTime<Utc>) -> InspectionEvent {
    InspectionEvent::RatingGiven {
        level,
        comment: comment.map(str::to_string),
        at,
    }
}

fn reported(outcome: Outcome, at: DateTime<Utc>) -> InspectionEvent {
    InspectionEvent::ResultReported { outcome, at }
}

fn revoked(reason: &str, at: DateTime<Utc>) -> InspectionEvent {
    InspectionEvent::CodeRevoked {
        reason: reason.into(),
        at,
    }
}

fn feedback_given(text: &str, at: DateTime<Utc>) -> InspectionEvent {
    InspectionEvent::FeedbackGiven {
        text: text.into(),
        at,
    }
}

/// The fixtures' code, issued and untouched.
fn issued() -> Vec<InspectionEvent> {
    vec![code_issued()]
}

/// The fixtures' code after the enterprise scanned it during the inspection.
fn scanned_by_the_enterprise() -> Vec<InspectionEvent> {
    vec![code_issued(), scanned(Scanner::Enterprise, during(), false)]
}

// ---------------------------------------------------------------------------------------------
// given / when / then
// ---------------------------------------------------------------------------------------------

/// The aggregate's state after some events.
struct Given {
    state: Inspection,
}

fn given(events: Vec<InspectionEvent>) -> Given {
    let mut state = Inspection::default();
    for event in &events {
        state.evolve(event, None);
    }
    Given { state }
}

impl Given {
    fn when(self, request: InspectionRequest) -> When {
        let outcome = self.state.decide(&request);
        When {
            state: self.state,
            request,
            outcome,
        }
    }
}

/// A decision waiting to be checked.
struct When {
    state: Inspection,
    request: InspectionRequest,
    outcome: Result<Vec<InspectionEvent>, InspectionError>,
}

impl When {
    /// Asserts the events decided, then applies them so that another `when` can follow.
    #[track_caller]
    fn then(self, expected: Vec<InspectionEvent>) -> Given {
        assert_eq!(
            self.outcome,
            Ok(expected.clone()),
            "decision on {:?}",
            self.request.command
        );
        let mut state = self.state;
        for event in &expected {
            state.evolve(event, self.request.meta.command_id);
        }
        Given { state }
    }

    /// Asserts the refusal; the state stays as it was.
    #[track_caller]
    fn then_err(self, expected: InspectionError) -> Given {
        assert_eq!(
            self.outcome,
            Err(expected),
            "decision on {:?}",
            self.request.command
        );
        Given { state: self.state }
    }

    /// Asserts the refusal, its stable code and its Chinese message, as clients see them.
    #[track_caller]
    fn then_err_coded(self, expected: InspectionError, code: &str, message: &str) -> Given {
        if let Err(e) = &self.outcome {
            assert_eq!(e.code(), code);
            assert_eq!(e.to_string(), message);
        }
        self.then_err(expected)
    }
}

// ---------------------------------------------------------------------------------------------
// Issuing: planned codes
// ---------------------------------------------------------------------------------------------

#[test]
fn a_planned_code_within_an_approved_plan_is_issued() {
    given(vec![])
        .when(issue(Issue::planned()))
        .then(vec![code_issued()]);
}

#[test]
fn the_validity_window_runs_from_shanghai_midnight_for_24_hours() {
    let state = given(vec![])
        .when(issue(Issue::planned()))
        .then(vec![code_issued()])
        .state;
    let code = state.code.expect("issued");
    assert_eq!(code.validity.valid_from, shanghai("2026-03-02 00:00:00"));
    assert_eq!(code.validity.valid_until, shanghai("2026-03-03 00:00:00"));
    assert_eq!(code.officers, vec!["ZF63010001", "ZF63010002"]);
}

#[test]
fn a_region_with_a_48_hour_rule_gets_a_48_hour_window() {
    let rule = ValidityRule::new(48).expect("a valid rule");
    let expected = ValidityWindow {
        valid_from: utc("2026-03-01T16:00:00Z"),
        valid_until: utc("2026-03-03T16:00:00Z"),
    };
    given(vec![])
        .when(issue(Issue::planned().with(|_, f| f.validity = rule)))
        .then(vec![code_issued_as(
            InspectionKind::Planned {
                plan: plan_id(PLAN),
            },
            inspection_date(),
            expected,
        )]);
}

#[test]
fn a_planned_code_for_an_enterprise_outside_the_plan_is_refused_as_not_included() {
    given(vec![])
        .when(issue(
            Issue::planned().with(|c, _| c.enterprise = other_credit_code()),
        ))
        .then_err_coded(
            InspectionError::PlanNotIncluded,
            "plan_not_included",
            "计划检查未纳入",
        );
}

#[test]
fn a_planned_code_for_an_item_outside_the_plan_is_refused_as_not_included() {
    let extra = Item {
        code: item_code("SC-TZSB-003"),
        name: "特种设备安全检查".into(),
        legal_basis: "《中华人民共和国特种设备安全法》第五十七条".into(),
        domain: EnforcementDomain::WorkSafety,
    };
    given(vec![])
        .when(issue(Issue::planned().with(|c, f| {
            c.items.push(extra.code.clone());
            f.items.push(Some(extra));
        })))
        .then_err(InspectionError::PlanNotIncluded);
}

#[test]
fn a_planned_code_without_an_approved_plan_is_refused_as_not_included() {
    given(vec![])
        .when(issue(Issue::planned().with(|_, f| f.plan = None)))
        .then_err(InspectionError::PlanNotIncluded);
}

#[test]
fn a_planned_code_under_another_agencys_plan_is_refused_as_not_included() {
    given(vec![])
        .when(issue(Issue::planned().with(|_, f| {
            if let Some(p) = f.plan.as_mut() {
                p.plan.agency = agency_code(TAX_AGENCY);
            }
        })))
        .then_err(InspectionError::PlanNotIncluded);
}

#[test]
fn a_planned_code_checked_against_a_plan_other_than_the_one_it_names_is_refused() {
    given(vec![])
        .when(issue(Issue::planned().with(|c, _| {
            c.kind = InspectionKind::Planned {
                plan: plan_id("QH-SCJ-2026-999"),
            }
        })))
        .then_err(InspectionError::PlanNotIncluded);
}

#[test]
fn a_planned_code_over_the_plans_frequency_is_refused() {
    let over = || {
        Issue::planned()
            .with(|_, f| f.plan.as_mut().expect("a plan").used = 2)
            .command()
    };
    given(vec![])
        .when(by(WANG, issue_time(), over()))
        .then_err_coded(
            InspectionError::PlanFrequencyExceeded,
            "plan_frequency_exceeded",
            "检查计划超出频次",
        );
}

#[test]
fn the_last_visit_the_plan_allows_is_still_issued() {
    given(vec![])
        .when(issue(
            Issue::planned().with(|_, f| f.plan.as_mut().expect("a plan").used = 1),
        ))
        .then(vec![code_issued()]);
}

#[test]
fn a_planned_code_dated_in_another_year_than_its_plan_is_refused() {
    given(vec![])
        .when(
            Issue::planned()
                .dated(day("2027-01-04"))
                .request(WANG, shanghai("2027-01-03 09:00:00")),
        )
        .then_err_coded(
            InspectionError::PlanYearMismatch,
            "plan_year_mismatch",
            "检查计划不属于该年度",
        );
}

// ---------------------------------------------------------------------------------------------
// Issuing: supplementary, unplanned and non-inspection codes
// ---------------------------------------------------------------------------------------------

fn a_reason_of(chars: usize) -> String {
    "因执法终端故障未能在检查前赋码，现依规定补录。"
        .chars()
        .cycle()
        .take(chars)
        .collect()
}

#[test]
fn a_200_character_supplement_reason_is_accepted() {
    let reason = a_reason_of(200);
    assert_eq!(reason.chars().count(), 200);
    let parsed = SupplementReason::parse(&reason).expect("200 characters are allowed");
    assert_eq!(parsed.as_str(), reason);
    let kind = InspectionKind::Supplementary { reason: parsed };
    given(vec![])
        .when(Issue::planned().kind(kind.clone()).request(WANG, during()))
        .then(vec![code_issued_of_kind(kind)]);
}

#[test]
fn a_201_character_supplement_reason_is_refused() {
    let e = SupplementReason::parse(&a_reason_of(201)).expect_err("201 characters");
    assert_eq!(e, InspectionError::ReasonTooLong);
    assert_eq!(e.code(), "reason_too_long");
    assert_eq!(e.to_string(), "补录原因不能超过200字");
}

#[test]
fn a_201_character_supplement_reason_cannot_even_be_deserialised() {
    let e = serde_json::from_value::<SupplementReason>(Value::String(a_reason_of(201)))
        .expect_err("201 characters");
    assert!(e.to_string().contains("reason_too_long"), "{e}");
}

#[test]
fn a_supplement_reason_counts_characters_after_trimming() {
    let padded = format!("  {}\n", a_reason_of(200));
    let parsed = SupplementReason::parse(&padded).expect("200 characters once trimmed");
    assert_eq!(parsed.as_str(), a_reason_of(200));
}

#[test]
fn an_empty_supplement_reason_is_refused() {
    for empty in ["", "   ", "\n\t"] {
        assert_eq!(
            SupplementReason::parse(empty),
            Err(InspectionError::ReasonRequired),
            "{empty:?}"
        );
    }
    assert_eq!(InspectionError::ReasonRequired.code(), "reason_required");
}

#[test]
fn the_standard_supplement_reason_is_recognised() {
    let standard = SupplementReason::parse(STANDARD_SUPPLEMENT_REASON).expect("valid");
    assert!(standard.is_standard());
    assert!(!SupplementReason::parse("系统故障")
        .expect("valid")
        .is_standard());
}

#[test]
fn a_supplementary_code_for_a_past_date_is_issued_without_any_plan() {
    let kind = InspectionKind::Supplementary {
        reason: SupplementReason::parse(STANDARD_SUPPLEMENT_REASON).expect("valid"),
    };
    let past = ValidityWindow {
        valid_from: utc("2026-02-19T16:00:00Z"),
        valid_until: utc("2026-02-20T16:00:00Z"),
    };
    given(vec![])
        .when(
            Issue::supplementary(STANDARD_SUPPLEMENT_REASON)
                .dated(day("2026-02-20"))
                .request(WANG, during()),
        )
        .then(vec![code_issued_as(kind, day("2026-02-20"), past)]);
}

#[test]
fn a_supplementary_code_for_a_future_date_is_refused() {
    given(vec![])
        .when(issue(Issue::supplementary(STANDARD_SUPPLEMENT_REASON)))
        .then_err_coded(
            InspectionError::SupplementInFuture,
            "supplement_in_future",
            "补录检查的日期不能晚于当前日期",
        );
}

#[test]
fn a_supplementary_code_for_today_in_shanghai_is_issued_just_after_midnight() {
    // 16:00 UTC on 1 March is already 2 March in Shanghai.
    let kind = InspectionKind::Supplementary {
        reason: SupplementReason::parse(STANDARD_SUPPLEMENT_REASON).expect("valid"),
    };
    given(vec![])
        .when(
            Issue::supplementary(STANDARD_SUPPLEMENT_REASON)
                .request(WANG, utc("2026-03-01T16:00:00Z")),
        )
        .then(vec![code_issued_of_kind(kind)]);
}

#[test]
fn an_unplanned_inspection_on_a_complaint_with_its_basis_is_issued() {
    let kind = InspectionKind::Unplanned {
        trigger: Trigger::Complaint,
        basis: "12315平台投诉：该企业销售过期乳制品（投诉编号1563000020260227001）".into(),
    };
    given(vec![])
        .when(issue(Issue::planned().kind(kind.clone())))
        .then(vec![code_issued_of_kind(kind)]);
}

#[test]
fn an_unplanned_inspection_without_a_basis_is_refused() {
    for basis in ["", "   "] {
        given(vec![])
            .when(issue(Issue::unplanned(Trigger::SuperiorAssignment, basis)))
            .then_err(InspectionError::BasisRequired);
    }
}

#[test]
fn an_unplanned_basis_over_2000_characters_is_refused() {
    given(vec![])
        .when(issue(Issue::unplanned(
            Trigger::MediaExposure,
            &"据".repeat(2001),
        )))
        .then_err(InspectionError::TextTooLong);
}

#[test]
fn every_kind_of_non_inspection_visit_is_issued_a_code() {
    for purpose in [
        VisitPurpose::Observation,
        VisitPurpose::Supervision,
        VisitPurpose::Study,
        VisitPurpose::Service,
        VisitPurpose::LegalEducation,
        VisitPurpose::LegalCheckup,
    ] {
        given(vec![])
            .when(issue(Issue::non_inspection(purpose)))
            .then(vec![code_issued_of_kind(InspectionKind::NonInspection {
                purpose,
            })]);
    }
}

// ---------------------------------------------------------------------------------------------
// Issuing: registry facts
// ---------------------------------------------------------------------------------------------

#[test]
fn an_unknown_agency_is_refused() {
    given(vec![])
        .when(issue(Issue::planned().with(|_, f| f.agency = None)))
        .then_err(InspectionError::UnknownAgency);
}

#[test]
fn an_unknown_enterprise_is_refused() {
    given(vec![])
        .when(issue(Issue::planned().with(|_, f| f.enterprise = None)))
        .then_err(InspectionError::UnknownEnterprise);
}

#[test]
fn a_deregistered_or_suspended_enterprise_is_refused() {
    for status in [EnterpriseStatus::Deregistered, EnterpriseStatus::Suspended] {
        given(vec![])
            .when(issue(Issue::planned().with(|_, f| {
                f.enterprise.as_mut().expect("known").status = status
            })))
            .then_err(InspectionError::EnterpriseNotActive);
    }
}

#[test]
fn an_unknown_item_is_refused() {
    given(vec![])
        .when(issue(Issue::planned().with(|_, f| f.items[1] = None)))
        .then_err(InspectionError::UnknownItem);
}

#[test]
fn item_facts_that_do_not_line_up_with_the_items_are_refused() {
    given(vec![])
        .when(issue(Issue::planned().with(|_, f| f.items.truncate(1))))
        .then_err(InspectionError::UnknownItem);
}

#[test]
fn a_code_without_items_is_refused() {
    given(vec![])
        .when(issue(
            Issue::unplanned(
                Trigger::Emergency,
                "辖区发生食物中毒事件，市政府应急指挥部交办",
            )
            .with(|c, f| {
                c.items.clear();
                f.items.clear();
            }),
        ))
        .then_err(InspectionError::NoItems);
}

#[test]
fn an_unknown_officer_on_the_code_is_refused() {
    given(vec![])
        .when(issue(
            Issue::planned().officers(&[(WANG, Some(WANG.fact())), (LI, None)]),
        ))
        .then_err(InspectionError::UnknownOfficerOnCode);
}

#[test]
fn a_suspended_or_revoked_officer_on_the_code_is_refused() {
    for status in [OfficerStatus::Suspended, OfficerStatus::Revoked] {
        let li = OfficerFact {
            status,
            ..LI.fact()
        };
        given(vec![])
            .when(issue(
                Issue::planned().officers(&[(WANG, Some(WANG.fact())), (LI, Some(li))]),
            ))
            .then_err(InspectionError::OfficerOnCodeNotActive);
    }
    assert_eq!(
        InspectionError::OfficerOnCodeNotActive.code(),
        "officer_on_code_not_active"
    );
}

#[test]
fn a_code_without_officers_is_refused() {
    given(vec![])
        .when(Issue::planned().officers(&[]).request(ADMIN, issue_time()))
        .then_err(InspectionError::NoOfficers);
}

#[test]
fn an_officer_listed_twice_is_refused() {
    given(vec![])
        .when(issue(Issue::planned().officers(&[
            (WANG, Some(WANG.fact())),
            (WANG, Some(WANG.fact())),
        ])))
        .then_err(InspectionError::DuplicateOfficerOnCode);
}

#[test]
fn a_single_officer_code_is_issued_since_fewer_than_two_is_only_a_warning() {
    let mut expected = code_issued();
    if let InspectionEvent::CodeIssued { officers, .. } = &mut expected {
        *officers = vec![WANG.on_code()];
    }
    given(vec![])
        .when(issue(
            Issue::planned().officers(&[(WANG, Some(WANG.fact()))]),
        ))
        .then(vec![expected]);
}

#[test]
fn an_issuer_not_listed_on_the_code_is_refused() {
    given(vec![])
        .when(Issue::planned().request(ZHAO, issue_time()))
        .then_err(InspectionError::IssuerNotListed);
}

#[test]
fn an_issuer_from_another_agency_is_refused() {
    given(vec![])
        .when(
            Issue::planned()
                .officers(&[(WANG, Some(WANG.fact())), (SUN, Some(SUN.fact()))])
                .request(SUN, issue_time()),
        )
        .then_err(InspectionError::OfficerNotInAgency);
}

#[test]
fn an_officer_of_another_agency_may_be_listed_when_a_listed_officer_of_the_agency_issues() {
    let mut expected = code_issued();
    if let InspectionEvent::CodeIssued { officers, .. } = &mut expected {
        *officers = vec![WANG.on_code(), SUN.on_code()];
    }
    given(vec![])
        .when(issue(Issue::planned().officers(&[
            (WANG, Some(WANG.fact())),
            (SUN, Some(SUN.fact())),
        ])))
        .then(vec![expected]);
}

#[test]
fn an_administrator_may_issue_a_code_without_being_listed() {
    given(vec![])
        .when(Issue::planned().request(ADMIN, issue_time()))
        .then(vec![code_issued()]);
}

#[test]
fn the_holder_of_a_token_cannot_issue_a_code() {
    given(vec![])
        .when(Issue::planned().request(ENTERPRISE, issue_time()))
        .then_err(InspectionError::IssuerNotListed);
}

#[test]
fn a_joint_inspection_with_a_registered_partner_is_issued() {
    let mut expected = code_issued();
    if let InspectionEvent::CodeIssued { joint_partners, .. } = &mut expected {
        *joint_partners = vec![partner_agency()];
    }
    given(vec![])
        .when(issue(
            Issue::planned().joint_with(&[(PARTNER, Some(partner_agency()))]),
        ))
        .then(vec![expected]);
}

#[test]
fn a_joint_inspection_naming_its_own_agency_as_partner_is_refused() {
    given(vec![])
        .when(issue(
            Issue::planned().joint_with(&[(AGENCY, Some(agency()))]),
        ))
        .then_err(InspectionError::PartnerInvalid);
}

#[test]
fn a_joint_inspection_naming_a_partner_twice_is_refused() {
    given(vec![])
        .when(issue(Issue::planned().joint_with(&[
            (PARTNER, Some(partner_agency())),
            (PARTNER, Some(partner_agency())),
        ])))
        .then_err(InspectionError::PartnerInvalid);
}

#[test]
fn a_joint_inspection_with_an_unknown_partner_is_refused() {
    given(vec![])
        .when(issue(Issue::planned().joint_with(&[(PARTNER, None)])))
        .then_err(InspectionError::PartnerInvalid);
    given(vec![])
        .when(issue(
            Issue::planned()
                .joint_with(&[(PARTNER, Some(partner_agency()))])
                .with(|_, f| f.partners.clear()),
        ))
        .then_err(InspectionError::PartnerInvalid);
}

// ---------------------------------------------------------------------------------------------
// Issuing: dates, Asia/Shanghai
// ---------------------------------------------------------------------------------------------

#[test]
fn a_code_dated_before_today_is_refused() {
    for issue in [
        Issue::planned(),
        Issue::unplanned(Trigger::Report, "群众实名举报无证经营"),
        Issue::non_inspection(VisitPurpose::Service),
    ] {
        given(vec![])
            .when(by(WANG, during(), issue.dated(day("2026-03-01")).command()))
            .then_err(InspectionError::DateInPast);
    }
}

#[test]
fn a_code_for_yesterday_in_shanghai_is_refused_although_utc_is_still_on_that_date() {
    // 16:30 UTC on 2 March is 00:30 on 3 March in Shanghai.
    given(vec![])
        .when(Issue::planned().request(WANG, utc("2026-03-02T16:30:00Z")))
        .then_err_coded(
            InspectionError::DateInPast,
            "date_in_past",
            "检查日期早于当前日期",
        );
}

#[test]
fn a_code_for_today_in_shanghai_is_issued_although_utc_is_still_on_the_day_before() {
    given(vec![])
        .when(Issue::planned().request(WANG, utc("2026-03-01T16:30:00Z")))
        .then(vec![code_issued()]);
}

#[test]
fn a_code_for_today_is_issued_up_to_the_last_second_of_the_shanghai_day() {
    given(vec![])
        .when(Issue::planned().request(WANG, shanghai("2026-03-02 23:59:59")))
        .then(vec![code_issued()]);
}

// ---------------------------------------------------------------------------------------------
// Issuing: once per inspection
// ---------------------------------------------------------------------------------------------

#[test]
fn an_issue_naming_another_inspection_than_its_stream_is_refused() {
    let mut request = Issue::planned().request(WANG, issue_time());
    request.inspection_id = Uuid::from_u128(7);
    given(vec![])
        .when(request)
        .then_err(InspectionError::InspectionIdMismatch);
}

#[test]
fn a_second_issue_is_refused() {
    given(issued())
        .when(issue(Issue::planned()))
        .then_err_coded(
            InspectionError::AlreadyIssued,
            "already_issued",
            "该检查已赋码",
        );
}

#[test]
fn nothing_but_issuing_is_accepted_before_the_code_is_issued() {
    let commands = [
        (WANG, show()),
        (LI, scan_enterprise_code(credit_code())),
        (WANG, report(Outcome::NoProblems)),
        (WANG, revoke("检查任务取消")),
        (ENTERPRISE, scan(TokenCheck::Genuine)),
        (ENTERPRISE, rate(5, None)),
        (ENTERPRISE, feedback("尚未收到检查通知")),
    ];
    for (who, command) in commands {
        given(vec![])
            .when(by(who, during(), command))
            .then_err(InspectionError::NotIssued);
    }
}

// ---------------------------------------------------------------------------------------------
// Showing the code (亮码)
// ---------------------------------------------------------------------------------------------

#[test]
fn showing_the_code_within_its_window_is_recorded() {
    given(issued())
        .when(by(WANG, during(), show()))
        .then(vec![shown(during())]);
}

#[test]
fn the_second_officer_on_the_code_may_show_it_too() {
    given(issued())
        .when(by(LI, during(), show()))
        .then(vec![shown(during())]);
}

#[test]
fn showing_the_code_at_shanghai_midnight_on_its_date_is_within_the_window() {
    let at = shanghai("2026-03-02 00:00:00");
    given(issued())
        .when(by(WANG, at, show()))
        .then(vec![shown(at)]);
}

#[test]
fn showing_the_code_outside_its_window_is_refused() {
    for at in [
        shanghai("2026-03-01 23:59:59"),
        shanghai("2026-03-03 00:00:00"),
        shanghai("2026-03-05 09:00:00"),
    ] {
        given(issued())
            .when(by(WANG, at, show()))
            .then_err(InspectionError::OutsideValidity);
    }
    assert_eq!(InspectionError::OutsideValidity.code(), "outside_validity");
}

#[test]
fn the_device_time_is_judged_not_the_time_a_late_upload_arrives() {
    let signed_at = shanghai("2026-03-02 23:50:00");
    let mut request = by(WANG, signed_at, show());
    request.meta.recorded_at = shanghai("2026-03-03 02:00:00");
    request.meta.late = true;
    given(issued()).when(request).then(vec![shown(signed_at)]);
}

#[test]
fn showing_a_revoked_code_is_refused() {
    given(vec![code_issued(), revoked("检查任务取消", issue_time())])
        .when(by(WANG, during(), show()))
        .then_err(InspectionError::CodeRevoked);
}

#[test]
fn an_officer_not_listed_on_the_inspection_cannot_act_on_it() {
    let commands = [
        show(),
        scan_enterprise_code(credit_code()),
        report(Outcome::NoProblems),
        revoke("检查任务取消"),
    ];
    for command in commands {
        given(issued())
            .when(by(ZHAO, during(), command.clone()))
            .then_err(InspectionError::NotAssigned);
        given(issued())
            .when(by(SUN, during(), command))
            .then_err_coded(
                InspectionError::NotAssigned,
                "not_assigned",
                "无权操作该检查",
            );
    }
}

// ---------------------------------------------------------------------------------------------
// Scanning (扫码, 两码互核); refused scans are recorded, not errors
// ---------------------------------------------------------------------------------------------

#[test]
fn an_enterprise_scan_within_the_window_is_recorded() {
    given(issued())
        .when(by(ENTERPRISE, during(), scan(TokenCheck::Genuine)))
        .then(vec![scanned(Scanner::Enterprise, during(), false)]);
}

#[test]
fn an_enterprise_scan_in_the_last_second_of_the_window_is_recorded() {
    let at = shanghai("2026-03-02 23:59:59");
    given(issued())
        .when(by(ENTERPRISE, at, scan(TokenCheck::Genuine)))
        .then(vec![scanned(Scanner::Enterprise, at, false)]);
}

#[test]
fn an_enterprise_scan_before_the_window_is_recorded_as_refused() {
    let at = shanghai("2026-03-01 23:59:59");
    given(issued())
        .when(by(ENTERPRISE, at, scan(TokenCheck::Genuine)))
        .then(vec![scan_refused(
            Scanner::Enterprise,
            at,
            ScanRefusal::NotYetValid,
        )]);
}

#[test]
fn an_enterprise_scan_after_the_window_is_recorded_as_refused() {
    let at = shanghai("2026-03-03 00:00:00");
    given(issued())
        .when(by(ENTERPRISE, at, scan(TokenCheck::Genuine)))
        .then(vec![scan_refused(
            Scanner::Enterprise,
            at,
            ScanRefusal::Expired,
        )]);
}

#[test]
fn a_scan_of_a_revoked_code_is_recorded_as_refused() {
    given(vec![code_issued(), revoked("检查任务取消", issue_time())])
        .when(by(ENTERPRISE, during(), scan(TokenCheck::Genuine)))
        .then(vec![scan_refused(
            Scanner::Enterprise,
            during(),
            ScanRefusal::Revoked,
        )])
        .when(by(LI, during(), scan_enterprise_code(credit_code())))
        .then(vec![scan_refused(
            Scanner::Officer,
            during(),
            ScanRefusal::Revoked,
        )]);
}

#[test]
fn a_scan_with_a_forged_token_is_recorded_as_refused() {
    given(issued())
        .when(by(ENTERPRISE, during(), scan(TokenCheck::Forged)))
        .then(vec![scan_refused(
            Scanner::Enterprise,
            during(),
            ScanRefusal::ForgedToken,
        )]);
}

#[test]
fn a_forged_token_is_named_as_such_even_on_a_revoked_or_expired_code() {
    let late = shanghai("2026-03-04 10:00:00");
    given(vec![code_issued(), revoked("检查任务取消", issue_time())])
        .when(by(ENTERPRISE, late, scan(TokenCheck::Forged)))
        .then(vec![scan_refused(
            Scanner::Enterprise,
            late,
            ScanRefusal::ForgedToken,
        )]);
}

#[test]
fn scan_refusals_have_stable_codes_and_chinese_messages() {
    assert_eq!(ScanRefusal::Expired.code(), "code_expired");
    assert_eq!(ScanRefusal::Expired.message(), "检查码已过期");
    assert_eq!(ScanRefusal::ForgedToken.code(), "forged_token");
    assert_eq!(
        ScanRefusal::WrongEnterprise.message(),
        "企业码与检查对象不符"
    );
}

#[test]
fn the_officer_scanning_the_enterprise_code_is_recorded() {
    given(issued())
        .when(by(LI, during(), scan_enterprise_code(credit_code())))
        .then(vec![scanned(Scanner::Officer, during(), false)]);
}

#[test]
fn an_officer_scanning_another_enterprises_code_is_recorded_as_refused() {
    given(issued())
        .when(by(
            WANG,
            during(),
            scan_enterprise_code(other_credit_code()),
        ))
        .then(vec![scan_refused(
            Scanner::Officer,
            during(),
            ScanRefusal::WrongEnterprise,
        )]);
}

#[test]
fn an_officer_scan_outside_the_window_is_recorded_as_refused() {
    let at = shanghai("2026-03-03 08:00:00");
    given(issued())
        .when(by(WANG, at, scan_enterprise_code(credit_code())))
        .then(vec![scan_refused(
            Scanner::Officer,
            at,
            ScanRefusal::Expired,
        )]);
}

#[test]
fn both_scans_make_a_mutual_verification_whichever_comes_first() {
    let later = minutes_after(during(), 3);
    given(issued())
        .when(by(ENTERPRISE, during(), scan(TokenCheck::Genuine)))
        .then(vec![scanned(Scanner::Enterprise, during(), false)])
        .when(by(WANG, later, scan_enterprise_code(credit_code())))
        .then(vec![scanned(Scanner::Officer, later, true)]);
    given(issued())
        .when(by(WANG, during(), scan_enterprise_code(credit_code())))
        .then(vec![scanned(Scanner::Officer, during(), false)])
        .when(by(ENTERPRISE, later, scan(TokenCheck::Genuine)))
        .then(vec![scanned(Scanner::Enterprise, later, true)]);
}

#[test]
fn a_refused_scan_does_not_count_towards_the_mutual_verification() {
    let early = shanghai("2026-03-01 20:00:00");
    given(issued())
        .when(by(ENTERPRISE, early, scan(TokenCheck::Genuine)))
        .then(vec![scan_refused(
            Scanner::Enterprise,
            early,
            ScanRefusal::NotYetValid,
        )])
        .when(by(WANG, during(), scan_enterprise_code(credit_code())))
        .then(vec![scanned(Scanner::Officer, during(), false)]);
}

#[test]
fn the_enterprise_may_scan_again_within_the_window() {
    let later = minutes_after(during(), 90);
    given(scanned_by_the_enterprise())
        .when(by(ENTERPRISE, later, scan(TokenCheck::Genuine)))
        .then(vec![scanned(Scanner::Enterprise, later, false)]);
}

// ---------------------------------------------------------------------------------------------
// Who may do what
// ---------------------------------------------------------------------------------------------

#[test]
fn the_holder_of_the_token_cannot_act_as_an_officer() {
    let commands = [
        show(),
        scan_enterprise_code(credit_code()),
        report(Outcome::NoProblems),
        revoke("不需要检查"),
    ];
    for command in commands {
        given(issued())
            .when(by(ENTERPRISE, during(), command))
            .then_err(InspectionError::NotAssigned);
    }
}

#[test]
fn a_listed_officer_cannot_act_as_the_enterprise() {
    given(issued())
        .when(by(WANG, during(), scan(TokenCheck::Genuine)))
        .then_err(InspectionError::NotAssigned);
    given(scanned_by_the_enterprise())
        .when(by(WANG, during(), rate(5, Some("非常满意"))))
        .then_err(InspectionError::NotAssigned)
        .when(by(LI, during(), feedback("企业配合良好")))
        .then_err(InspectionError::NotAssigned);
}

// ---------------------------------------------------------------------------------------------
// Rating (评价)
// ---------------------------------------------------------------------------------------------

#[test]
fn a_rating_before_the_enterprise_scanned_is_refused() {
    given(issued())
        .when(by(ENTERPRISE, during(), rate(4, None)))
        .then_err_coded(
            InspectionError::NotScanned,
            "not_scanned",
            "企业尚未扫码，不能评价",
        );
}

#[test]
fn the_officers_scan_alone_does_not_allow_a_rating() {
    given(vec![
        code_issued(),
        scanned(Scanner::Officer, during(), false),
    ])
    .when(by(ENTERPRISE, during(), rate(4, None)))
    .then_err(InspectionError::NotScanned);
}

#[test]
fn a_refused_scan_does_not_allow_a_rating() {
    given(vec![
        code_issued(),
        scan_refused(Scanner::Enterprise, during(), ScanRefusal::ForgedToken),
    ])
    .when(by(ENTERPRISE, during(), rate(4, None)))
    .then_err(InspectionError::NotScanned);
}

#[test]
fn a_rating_after_the_scan_is_recorded_with_its_comment_trimmed() {
    let at = minutes_after(during(), 120);
    given(scanned_by_the_enterprise())
        .when(by(
            ENTERPRISE,
            at,
            rate(5, Some("  执法人员主动亮码、出示证件，检查规范  ")),
        ))
        .then(vec![rated(
            5,
            Some("执法人员主动亮码、出示证件，检查规范"),
            at,
        )]);
}

#[test]
fn a_blank_rating_comment_is_dropped() {
    given(scanned_by_the_enterprise())
        .when(by(ENTERPRISE, during(), rate(3, Some("   "))))
        .then(vec![rated(3, None, during())]);
}

#[test]
fn every_rating_from_1_to_5_is_accepted() {
    for level in 1..=5 {
        given(scanned_by_the_enterprise())
            .when(by(ENTERPRISE, during(), rate(level, None)))
            .then(vec![rated(level, None, during())]);
    }
}

#[test]
fn ratings_of_0_and_6_are_refused() {
    for level in [0, 6] {
        given(scanned_by_the_enterprise())
            .when(by(ENTERPRISE, during(), rate(level, None)))
            .then_err(InspectionError::RatingInvalid);
    }
    assert_eq!(InspectionError::RatingInvalid.code(), "rating_invalid");
}

#[test]
fn a_second_rating_is_refused() {
    let later = minutes_after(during(), 60);
    given(scanned_by_the_enterprise())
        .when(by(ENTERPRISE, during(), rate(2, Some("检查时间过长"))))
        .then(vec![rated(2, Some("检查时间过长"), during())])
        .when(by(ENTERPRISE, later, rate(5, None)))
        .then_err_coded(
            InspectionError::AlreadyRated,
            "already_rated",
            "已评价，不能重复评价",
        );
}

#[test]
fn a_rating_comment_over_2000_characters_is_refused() {
    given(scanned_by_the_enterprise())
        .when(by(ENTERPRISE, during(), rate(1, Some(&"差".repeat(2001)))))
        .then_err(InspectionError::TextTooLong);
}

#[test]
fn a_rating_of_a_revoked_code_is_refused() {
    given(vec![code_issued(), revoked("检查任务取消", issue_time())])
        .when(by(ENTERPRISE, during(), rate(1, None)))
        .then_err(InspectionError::CodeRevoked);
}

// ---------------------------------------------------------------------------------------------
// Reporting the result (结果反馈)
// ---------------------------------------------------------------------------------------------

#[test]
fn a_result_with_no_problems_needs_no_text() {
    given(scanned_by_the_enterprise())
        .when(by(WANG, during(), report(Outcome::NoProblems)))
        .then(vec![reported(Outcome::NoProblems, during())]);
}

#[test]
fn problems_found_are_reported_with_their_feedback_trimmed() {
    given(scanned_by_the_enterprise())
        .when(by(
            WANG,
            during(),
            report(problems(" 冷藏柜温度计未检定，责令三日内整改。\n")),
        ))
        .then(vec![reported(
            problems("冷藏柜温度计未检定，责令三日内整改。"),
            during(),
        )]);
}

#[test]
fn problems_found_without_feedback_text_are_refused() {
    for empty in ["", "  \n"] {
        given(scanned_by_the_enterprise())
            .when(by(WANG, during(), report(problems(empty))))
            .then_err(InspectionError::ResultTextRequired);
    }
    assert_eq!(
        InspectionError::ResultTextRequired.to_string(),
        "发现问题时须填写反馈内容"
    );
}

#[test]
fn result_feedback_over_2000_characters_is_refused() {
    given(scanned_by_the_enterprise())
        .when(by(WANG, during(), report(problems(&"问".repeat(2001)))))
        .then_err(InspectionError::TextTooLong);
}

#[test]
fn a_second_result_is_refused() {
    given(scanned_by_the_enterprise())
        .when(by(WANG, during(), report(Outcome::NoProblems)))
        .then(vec![reported(Outcome::NoProblems, during())])
        .when(by(LI, during(), report(problems("补充：消防通道堵塞"))))
        .then_err_coded(
            InspectionError::AlreadyReported,
            "already_reported",
            "结果已反馈，不能重复反馈",
        );
}

#[test]
fn a_result_on_a_revoked_code_is_refused() {
    given(vec![code_issued(), revoked("检查任务取消", issue_time())])
        .when(by(WANG, during(), report(Outcome::NoProblems)))
        .then_err(InspectionError::CodeRevoked);
}

// ---------------------------------------------------------------------------------------------
// Revoking (作废)
// ---------------------------------------------------------------------------------------------

#[test]
fn revoking_a_code_before_use_is_recorded() {
    let at = minutes_after(issue_time(), 30);
    given(issued())
        .when(by(WANG, at, revoke("  企业已停业，检查任务取消 ")))
        .then(vec![revoked("企业已停业，检查任务取消", at)]);
}

#[test]
fn revoking_after_a_refused_scan_is_still_allowed() {
    given(vec![
        code_issued(),
        scan_refused(Scanner::Enterprise, issue_time(), ScanRefusal::NotYetValid),
    ])
    .when(by(WANG, issue_time(), revoke("检查任务取消")))
    .then(vec![revoked("检查任务取消", issue_time())]);
}

#[test]
fn revoking_after_the_code_was_shown_is_refused() {
    given(issued())
        .when(by(WANG, during(), show()))
        .then(vec![shown(during())])
        .when(by(WANG, during(), revoke("现场发现日期有误")))
        .then_err_coded(
            InspectionError::AlreadyUsed,
            "already_used",
            "检查码已使用，不能作废",
        );
}

#[test]
fn revoking_after_either_scan_or_a_result_is_refused() {
    for used in [
        scanned(Scanner::Enterprise, during(), false),
        scanned(Scanner::Officer, during(), false),
        reported(Outcome::NoProblems, during()),
    ] {
        given(vec![code_issued(), used])
            .when(by(WANG, during(), revoke("检查任务取消")))
            .then_err(InspectionError::AlreadyUsed);
    }
}

#[test]
fn revoking_twice_is_refused() {
    given(issued())
        .when(by(WANG, issue_time(), revoke("检查任务取消")))
        .then(vec![revoked("检查任务取消", issue_time())])
        .when(by(LI, issue_time(), revoke("重复作废")))
        .then_err(InspectionError::CodeRevoked);
}

#[test]
fn revoking_without_a_reason_is_refused() {
    given(issued())
        .when(by(WANG, issue_time(), revoke(" ")))
        .then_err(InspectionError::RevokeReasonRequired);
}

#[test]
fn a_revoke_reason_over_200_characters_is_refused() {
    given(issued())
        .when(by(WANG, issue_time(), revoke(&"取".repeat(201))))
        .then_err(InspectionError::TextTooLong);
}

// ---------------------------------------------------------------------------------------------
// Re-sent commands
// ---------------------------------------------------------------------------------------------

#[test]
fn a_command_id_seen_before_is_refused_as_a_duplicate() {
    let id = fresh_command_id();
    given(issued())
        .when(with_command_id(by(WANG, during(), show()), id))
        .then(vec![shown(during())])
        .when(with_command_id(by(WANG, during(), show()), id))
        .then_err_coded(
            InspectionError::DuplicateCommand,
            "duplicate_command",
            "重复提交的指令",
        )
        // The id alone decides, whatever the command and however long after.
        .when(with_command_id(
            by(
                WANG,
                shanghai("2026-06-01 10:00:00"),
                report(Outcome::NoProblems),
            ),
            id,
        ))
        .then_err(InspectionError::DuplicateCommand);
}

#[test]
fn a_re_sent_issue_is_recognised_as_a_duplicate_not_as_a_second_issue() {
    let id = fresh_command_id();
    given(vec![])
        .when(with_command_id(issue(Issue::planned()), id))
        .then(vec![code_issued()])
        .when(with_command_id(issue(Issue::planned()), id))
        .then_err(InspectionError::DuplicateCommand);
}

#[test]
fn a_refused_command_does_not_use_up_its_id() {
    let id = fresh_command_id();
    let early = shanghai("2026-03-01 22:00:00");
    given(issued())
        .when(with_command_id(by(WANG, early, show()), id))
        .then_err(InspectionError::OutsideValidity)
        .when(with_command_id(by(WANG, during(), show()), id))
        .then(vec![shown(during())]);
}

#[test]
fn a_recorded_scan_refusal_uses_up_its_id() {
    let id = fresh_command_id();
    let early = shanghai("2026-03-01 22:00:00");
    given(issued())
        .when(with_command_id(
            by(WANG, early, scan_enterprise_code(credit_code())),
            id,
        ))
        .then(vec![scan_refused(
            Scanner::Officer,
            early,
            ScanRefusal::NotYetValid,
        )])
        .when(with_command_id(
            by(WANG, during(), scan_enterprise_code(credit_code())),
            id,
        ))
        .then_err(InspectionError::DuplicateCommand);
}

// ---------------------------------------------------------------------------------------------
// Enterprise feedback (企业意见)
// ---------------------------------------------------------------------------------------------

#[test]
fn enterprise_feedback_is_recorded_trimmed() {
    given(scanned_by_the_enterprise())
        .when(by(
            ENTERPRISE,
            during(),
            feedback(" 希望检查前告知需准备的材料 "),
        ))
        .then(vec![feedback_given("希望检查前告知需准备的材料", during())]);
}

#[test]
fn enterprise_feedback_needs_text() {
    given(issued())
        .when(by(ENTERPRISE, during(), feedback("  ")))
        .then_err_coded(
            InspectionError::TextRequired,
            "text_required",
            "内容不能为空",
        );
}

#[test]
fn enterprise_feedback_of_2000_characters_is_accepted_and_of_2001_refused() {
    let full = "意".repeat(2000);
    given(issued())
        .when(by(ENTERPRISE, during(), feedback(&full)))
        .then(vec![feedback_given(&full, during())]);
    given(issued())
        .when(by(ENTERPRISE, during(), feedback(&"意".repeat(2001))))
        .then_err(InspectionError::TextTooLong);
}

// ---------------------------------------------------------------------------------------------
// A whole visit, and the error catalogue
// ---------------------------------------------------------------------------------------------

#[test]
fn a_whole_visit_runs_from_issue_to_rating() {
    let t = |m| minutes_after(during(), m);
    given(vec![])
        .when(issue(Issue::planned()))
        .then(vec![code_issued()])
        .when(by(WANG, t(0), show()))
        .then(vec![shown(t(0))])
        .when(by(ENTERPRISE, t(1), scan(TokenCheck::Genuine)))
        .then(vec![scanned(Scanner::Enterprise, t(1), false)])
        .when(by(LI, t(2), scan_enterprise_code(credit_code())))
        .then(vec![scanned(Scanner::Officer, t(2), true)])
        .when(by(WANG, t(75), report(problems("部分计量器具超期未检定"))))
        .then(vec![reported(problems("部分计量器具超期未检定"), t(75))])
        .when(by(
            ENTERPRISE,
            t(200),
            rate(4, Some("指出的问题具体，已整改")),
        ))
        .then(vec![rated(4, Some("指出的问题具体，已整改"), t(200))])
        .when(by(ENTERPRISE, t(300), feedback("整改完成，申请复查")))
        .then(vec![feedback_given("整改完成，申请复查", t(300))]);
}

#[test]
fn every_refusal_has_a_distinct_snake_case_code_and_a_chinese_message() {
    use InspectionError::*;
    let all = [
        PlanNotIncluded,
        PlanFrequencyExceeded,
        PlanYearMismatch,
        ReasonRequired,
        ReasonTooLong,
        BasisRequired,
        UnknownAgency,
        OfficerNotInAgency,
        UnknownEnterprise,
        EnterpriseNotActive,
        NoItems,
        UnknownItem,
        NoOfficers,
        UnknownOfficerOnCode,
        OfficerOnCodeNotActive,
        DuplicateOfficerOnCode,
        IssuerNotListed,
        PartnerInvalid,
        DateInPast,
        SupplementInFuture,
        AlreadyIssued,
        NotIssued,
        CodeRevoked,
        OutsideValidity,
        NotAssigned,
        WrongEnterprise,
        NotScanned,
        AlreadyRated,
        RatingInvalid,
        TextTooLong,
        AlreadyReported,
        ResultTextRequired,
        RevokeReasonRequired,
        AlreadyUsed,
        TextRequired,
        DuplicateCommand,
    ];
    let codes: std::collections::BTreeSet<_> = all.iter().map(InspectionError::code).collect();
    assert_eq!(codes.len(), all.len(), "codes must be distinct");
    for e in &all {
        assert!(
            e.code()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{}",
            e.code()
        );
        let message = e.to_string();
        assert!(
            message
                .chars()
                .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
            "{message}"
        );
        assert!(!message.ends_with('。'), "{message}");
    }
}

// ---------------------------------------------------------------------------------------------
// Sealing and the cqrs-es `handle` path
// ---------------------------------------------------------------------------------------------

fn notary_key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

fn stream() -> String {
    format!("{}/{}", Inspection::TYPE, inspection_id())
}

/// Verifies stored events in order, from the start of the stream; on failure, the position
/// and the reason.
fn verify_chain(stored: &[Value]) -> Result<Chain, (usize, SealError)> {
    let key = PublicKey(notary_key().verifying_key());
    let mut chain = Chain::default();
    for (i, event) in stored.iter().enumerate() {
        let hash = seal::verify_stored(event, &chain, |id| (*id == key.key_id()).then_some(key))
            .map_err(|e| (i, e))?;
        chain.advance(chain.version + 1, hash);
    }
    Ok(chain)
}

/// A fresh aggregate replayed from stored events through `Aggregate::apply`.
fn replay(stored: &[Value]) -> Inspection {
    let mut state = Inspection::default();
    for event in stored {
        state.apply(seal::parse_stored::<InspectionEvent>(event).expect("a sealed event"));
    }
    state
}

/// Sends a request through `Aggregate::handle`, returning what it sealed.
fn handle(
    aggregate: &mut Inspection,
    notary: &Arc<dyn Notary>,
    request: InspectionRequest,
) -> Result<Vec<Sealed<InspectionEvent>>, InspectionError> {
    let sink = EventSink::default();
    let outcome = block_on(aggregate.handle(request, notary, &sink));
    let events = block_on(sink.collect());
    outcome.map(|()| events)
}

/// An officer's request as it arrives from the app: with the signed envelope it came in.
fn signed(
    who: Who,
    at: DateTime<Utc>,
    command: OfficerCommand,
    inner: InspectionCommand,
) -> InspectionRequest {
    let mut request = by(who, at, inner);
    let id = request
        .meta
        .command_id
        .expect("officers' commands have ids");
    request.signed = Some(sign_envelope(
        &command,
        &who.officer_ref(),
        at,
        id,
        &who.device_key(),
    ));
    request
}

#[test]
fn the_cqrs_handle_path_seals_a_visit_into_a_verifiable_chain() {
    let notary: Arc<dyn Notary> = Arc::new(notary_key());
    let mut aggregate = Inspection::default();
    let t = |m| minutes_after(during(), m);
    let issue = Issue::planned();
    let requests = vec![
        signed(
            WANG,
            issue_time(),
            OfficerCommand::IssueCode(issue.command.clone()),
            issue.command(),
        ),
        signed(
            WANG,
            t(0),
            OfficerCommand::ShowCode {
                inspection_id: inspection_id(),
            },
            show(),
        ),
        by(ENTERPRISE, t(1), scan(TokenCheck::Genuine)),
        by(LI, t(2), scan_enterprise_code(credit_code())),
        by(WANG, t(60), report(Outcome::NoProblems)),
        by(ENTERPRISE, t(120), rate(5, Some("满意"))),
    ];
    let mut stored = Vec::new();
    for request in requests {
        let sealed = handle(&mut aggregate, &notary, request).expect("accepted");
        assert_eq!(sealed.len(), 1);
        stored.extend(
            sealed
                .iter()
                .map(|s| serde_json::to_value(s).expect("serialises")),
        );
    }

    let chain = verify_chain(&stored).expect("the chain verifies");
    assert_eq!(chain, aggregate.chain);
    assert_eq!(chain.version, 6);
    assert_eq!(stored[0]["stream"], Value::String(stream()));
    assert_eq!(replay(&stored), aggregate);
    assert!(aggregate.scanned_by_enterprise && aggregate.scanned_by_officer);
    assert!(aggregate.rated && aggregate.reported);

    // The officer's envelope travels with the event and is covered by its hash.
    assert!(stored[0]["command"]["signature"].is_string());
    assert!(stored[2].get("command").is_none());
    let mut tampered = stored.clone();
    tampered[0]["command"]["device_time"] = Value::String("2026-02-01T00:00:00Z".into());
    assert_eq!(verify_chain(&tampered), Err((0, SealError::HashMismatch)));

    // A refusal through `handle` seals nothing and leaves the chain where it was.
    let refused = handle(
        &mut aggregate,
        &notary,
        by(ENTERPRISE, t(130), rate(1, None)),
    );
    assert_eq!(refused, Err(InspectionError::AlreadyRated));
    assert_eq!(aggregate.chain, chain);
}

#[test]
fn a_recorded_scan_refusal_is_sealed_into_the_chain_like_any_other_event() {
    let notary: Arc<dyn Notary> = Arc::new(notary_key());
    let mut aggregate = Inspection::default();
    let mut stored = Vec::new();
    for request in [
        issue(Issue::planned()),
        by(
            ENTERPRISE,
            shanghai("2026-03-04 09:00:00"),
            scan(TokenCheck::Genuine),
        ),
    ] {
        let sealed = handle(&mut aggregate, &notary, request).expect("accepted");
        stored.extend(
            sealed
                .iter()
                .map(|s| serde_json::to_value(s).expect("serialises")),
        );
    }
    assert_eq!(verify_chain(&stored).map(|c| c.version), Ok(2));
    let refusal = seal::parse_stored::<InspectionEvent>(&stored[1]).expect("parses");
    assert_eq!(
        refusal.event,
        scan_refused(
            Scanner::Enterprise,
            shanghai("2026-03-04 09:00:00"),
            ScanRefusal::Expired
        )
    );
    assert_eq!(refusal.prev_hash, hash_of(&stored[0]));
}

fn hash_of(stored: &Value) -> Digest {
    seal::parse_stored::<InspectionEvent>(stored)
        .expect("parses")
        .hash
}

// ---------------------------------------------------------------------------------------------
// Properties over random command sequences
// ---------------------------------------------------------------------------------------------

/// One random thing someone tries to do.
#[derive(Debug, Clone)]
enum Act {
    /// 0 planned, 1 supplementary, 2 unplanned, 3 non-inspection; dated this many days from the
    /// fixtures' date.
    Issue {
        kind: u8,
        day_offset: i64,
    },
    Show,
    ScanEnterpriseCode {
        right_enterprise: bool,
    },
    ScanCode {
        forged: bool,
    },
    GiveRating {
        level: u8,
        comment: Option<String>,
    },
    ReportResult {
        feedback: Option<String>,
    },
    RevokeCode {
        reason: String,
    },
    GiveFeedback {
        text: String,
    },
}

impl Act {
    fn command(&self) -> InspectionCommand {
        match self {
            Act::Issue { kind, day_offset } => {
                let issue = match kind {
                    0 => Issue::planned(),
                    1 => Issue::supplementary(STANDARD_SUPPLEMENT_REASON),
                    2 => Issue::unplanned(Trigger::Complaint, "12315平台投诉"),
                    _ => Issue::non_inspection(VisitPurpose::LegalEducation),
                };
                issue
                    .dated(inspection_date() + Duration::days(*day_offset))
                    .command()
            }
            Act::Show => show(),
            Act::ScanEnterpriseCode { right_enterprise } => {
                scan_enterprise_code(if *right_enterprise {
                    credit_code()
                } else {
                    other_credit_code()
                })
            }
            Act::ScanCode { forged } => scan(if *forged {
                TokenCheck::Forged
            } else {
                TokenCheck::Genuine
            }),
            Act::GiveRating { level, comment } => rate(*level, comment.as_deref()),
            Act::ReportResult { feedback } => report(match feedback {
                None => Outcome::NoProblems,
                Some(f) => problems(f),
            }),
            Act::RevokeCode { reason } => revoke(reason),
            Act::GiveFeedback { text } => feedback(text),
        }
    }
}

#[derive(Debug, Clone)]
enum IdChoice {
    Fresh,
    /// Re-send an id used earlier in the sequence (if any).
    Reuse(prop::sample::Index),
    Absent,
}

#[derive(Debug, Clone)]
struct Attempt {
    act: Act,
    who: Who,
    at: DateTime<Utc>,
    id: IdChoice,
}

fn any_text() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        String::new(),
        "   ".to_string(),
        "消防通道堵塞".to_string(),
        " 检查规范，态度良好 ".to_string(),
        "取".repeat(201),
        "长".repeat(2001),
    ])
}

fn any_who() -> impl Strategy<Value = Who> {
    prop::sample::select(vec![WANG, LI, ZHAO, SUN, ENTERPRISE, ENTERPRISE, ADMIN])
}

/// Mostly inside the fixtures' window, sometimes days around it, sometimes on its edges.
fn any_instant() -> impl Strategy<Value = DateTime<Utc>> {
    let w = window();
    let second = Duration::seconds(1);
    prop_oneof![
        4 => (0i64..86_400).prop_map(move |s| w.valid_from + Duration::seconds(s)),
        2 => (-3 * 86_400i64..4 * 86_400).prop_map(move |s| w.valid_from + Duration::seconds(s)),
        1 => prop::sample::select(vec![
            w.valid_from - second,
            w.valid_from,
            w.valid_until - second,
            w.valid_until,
        ]),
    ]
}

fn any_act() -> impl Strategy<Value = Act> {
    prop_oneof![
        1 => (0u8..4, -1i64..=1).prop_map(|(kind, day_offset)| Act::Issue { kind, day_offset }),
        3 => Just(Act::Show),
        3 => prop::bool::weighted(0.8)
            .prop_map(|right_enterprise| Act::ScanEnterpriseCode { right_enterprise }),
        4 => prop::bool::weighted(0.2).prop_map(|forged| Act::ScanCode { forged }),
        3 => (0u8..=6, prop::option::of(any_text()))
            .prop_map(|(level, comment)| Act::GiveRating { level, comment }),
        2 => prop::option::of(any_text()).prop_map(|feedback| Act::ReportResult { feedback }),
        1 => any_text().prop_map(|reason| Act::RevokeCode { reason }),
        1 => any_text().prop_map(|text| Act::GiveFeedback { text }),
    ]
}

fn any_id() -> impl Strategy<Value = IdChoice> {
    prop_oneof![
        8 => Just(IdChoice::Fresh),
        1 => any::<prop::sample::Index>().prop_map(IdChoice::Reuse),
        1 => Just(IdChoice::Absent),
    ]
}

fn any_attempt() -> impl Strategy<Value = Attempt> {
    (any_act(), any_who(), any_instant(), any_id()).prop_map(|(act, who, at, id)| Attempt {
        act,
        who,
        at,
        id,
    })
}

/// Random histories; most open with a code issued the day before by someone allowed to.
fn any_history() -> impl Strategy<Value = Vec<Attempt>> {
    (
        prop::bool::weighted(0.9),
        0u8..4,
        prop::sample::select(vec![WANG, LI, ADMIN]),
        prop::collection::vec(any_attempt(), 0..40),
    )
        .prop_map(|(opens, kind, issuer, mut rest)| {
            if opens {
                let day_offset = if kind == 1 { -1 } else { 0 };
                rest.insert(
                    0,
                    Attempt {
                        act: Act::Issue { kind, day_offset },
                        who: issuer,
                        at: issue_time(),
                        id: IdChoice::Fresh,
                    },
                );
            }
            rest
        })
}

/// Turns attempts into requests, with command ids fresh, re-sent or absent as chosen.
fn requests(attempts: &[Attempt]) -> Vec<InspectionRequest> {
    let mut used: Vec<Uuid> = Vec::new();
    attempts
        .iter()
        .enumerate()
        .map(|(n, a)| {
            let mut request = by(a.who, a.at, a.act.command());
            request.meta.command_id = match &a.id {
                IdChoice::Fresh => Some(Uuid::from_u128(n as u128 + 1)),
                IdChoice::Reuse(i) if !used.is_empty() => Some(used[i.index(used.len())]),
                IdChoice::Reuse(_) | IdChoice::Absent => None,
            };
            used.extend(request.meta.command_id);
            request
        })
        .collect()
}

/// Runs requests through `decide`, seals each event after the chain so far, and folds it in
/// with `evolve`. Returns the final state and the stored (serialised) events.
fn run(requests: &[InspectionRequest]) -> (Inspection, Vec<Sealed<InspectionEvent>>) {
    let notary = notary_key();
    let mut state = Inspection::default();
    let mut sealed = Vec::new();
    for request in requests {
        let decided = state.decide(request);
        // A genuine enterprise scan of an issued code is never an error: refusals are recorded.
        if state.code.is_some()
            && request.meta.actor == Actor::TokenHolder
            && matches!(request.command, InspectionCommand::ScanCode { .. })
            && request
                .meta
                .command_id
                .is_none_or(|id| !state.command_ids.contains(&id))
        {
            assert!(
                matches!(&decided, Ok(events) if events.len() == 1),
                "{decided:?}"
            );
        }
        let Ok(events) = decided else { continue };
        for body in events {
            let s = Sealed::seal(
                stream(),
                &state.chain,
                request.meta.clone(),
                request.signed.clone(),
                body,
                &notary,
            );
            state.evolve(&s.event, s.meta.command_id);
            state.chain.advance(s.sequence, s.hash);
            sealed.push(s);
        }
    }
    (state, sealed)
}

fn stored(sealed: &[Sealed<InspectionEvent>]) -> Vec<Value> {
    sealed
        .iter()
        .map(|s| serde_json::to_value(s).expect("serialises"))
        .collect()
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Only this file is ours to write: no regression files beside the sources.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn random_histories_keep_every_lifecycle_rule(attempts in any_history()) {
        let (_, sealed) = run(&requests(&attempts));
        let events: Vec<&InspectionEvent> = sealed.iter().map(|s| &s.event).collect();

        let count = |f: fn(&InspectionEvent) -> bool| events.iter().filter(|e| f(e)).count();
        let issues = count(|e| matches!(e, InspectionEvent::CodeIssued { .. }));
        let ratings = count(|e| matches!(e, InspectionEvent::RatingGiven { .. }));
        let results = count(|e| matches!(e, InspectionEvent::ResultReported { .. }));
        let revocations = count(|e| matches!(e, InspectionEvent::CodeRevoked { .. }));
        prop_assert!(issues <= 1, "{} codes issued", issues);
        prop_assert!(ratings <= 1, "{} ratings", ratings);
        prop_assert!(results <= 1, "{} results", results);
        prop_assert!(revocations <= 1, "{} revocations", revocations);

        let mut validity = None;
        let (mut revoked, mut by_enterprise, mut by_officer) = (false, false, false);
        for (i, event) in events.iter().enumerate() {
            match event {
                InspectionEvent::CodeIssued { validity: v, .. } => {
                    prop_assert_eq!(i, 0, "the code is issued first");
                    validity = Some(*v);
                }
                _ => prop_assert!(validity.is_some(), "nothing before the code: {:?}", event),
            }
            let w = validity.expect("issued");
            match event {
                InspectionEvent::CodeShown { at } => {
                    prop_assert!(!revoked, "shown after revocation");
                    prop_assert_eq!(w.state_at(*at), ValidityState::Valid);
                }
                InspectionEvent::CodeScanned { by, at, mutual } => {
                    prop_assert!(!revoked, "scanned after revocation");
                    prop_assert!(w.valid_from <= *at && *at < w.valid_until, "scan at {} outside {:?}", at, w);
                    match by {
                        Scanner::Enterprise => {
                            prop_assert_eq!(*mutual, by_officer);
                            by_enterprise = true;
                        }
                        Scanner::Officer => {
                            prop_assert_eq!(*mutual, by_enterprise);
                            by_officer = true;
                        }
                    }
                }
                InspectionEvent::ScanRefused { at, reason, .. } => match reason {
                    ScanRefusal::NotYetValid => prop_assert!(*at < w.valid_from),
                    ScanRefusal::Expired => prop_assert!(*at >= w.valid_until),
                    ScanRefusal::Revoked => prop_assert!(revoked),
                    ScanRefusal::ForgedToken | ScanRefusal::WrongEnterprise => {}
                },
                InspectionEvent::RatingGiven { level, .. } => {
                    prop_assert!(!revoked && by_enterprise, "rated without a scan");
                    prop_assert!((1..=5).contains(level));
                }
                InspectionEvent::ResultReported { .. } => prop_assert!(!revoked),
                InspectionEvent::CodeRevoked { .. } => {
                    prop_assert!(!by_enterprise && !by_officer, "revoked after use");
                    revoked = true;
                }
                InspectionEvent::CodeIssued { .. } | InspectionEvent::FeedbackGiven { .. } => {}
            }
        }

        let ids: Vec<Uuid> = sealed.iter().filter_map(|s| s.meta.command_id).collect();
        let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
        prop_assert_eq!(distinct.len(), ids.len(), "a command id was executed twice");
    }

    #[test]
    fn random_histories_seal_into_a_chain_that_verifies_and_replays(attempts in any_history()) {
        let (state, sealed) = run(&requests(&attempts));
        let stored = stored(&sealed);
        let chain = verify_chain(&stored).map_err(|(i, e)| TestCaseError::fail(format!("event {i}: {e}")))?;
        prop_assert_eq!(chain, state.chain);
        prop_assert_eq!(chain.version, sealed.len() as u64);
        for (value, original) in stored.iter().zip(&sealed) {
            let parsed = seal::parse_stored::<InspectionEvent>(value)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&parsed, original);
        }
        prop_assert_eq!(replay(&stored), state);
    }
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn the_cqrs_handle_path_seals_exactly_what_decide_and_seal_produce(attempts in any_history()) {
        let requests = requests(&attempts);
        let (state, expected) = run(&requests);
        let notary: Arc<dyn Notary> = Arc::new(notary_key());
        let mut aggregate = Inspection::default();
        let mut sealed = Vec::new();
        for request in requests {
            let before = aggregate.clone();
            match handle(&mut aggregate, &notary, request) {
                Ok(events) => sealed.extend(events),
                Err(_) => {
                    prop_assert_eq!(&aggregate, &before, "a refusal changed the state");
                }
            }
        }
        prop_assert_eq!(sealed, expected);
        prop_assert_eq!(aggregate, state);
    }

    #[test]
    fn changing_or_dropping_any_stored_event_is_detected_at_its_position(
        attempts in any_history(),
        pick in any::<prop::sample::Index>(),
        remove in any::<bool>(),
    ) {
        let (_, sealed) = run(&requests(&attempts));
        let mut stored = stored(&sealed);
        prop_assume!(stored.len() >= 2);
        let i = pick.index(stored.len() - 1);
        if remove {
            stored.remove(i);
            let expected = SealError::Sequence { expected: i as u64 + 1, found: i as u64 + 2 };
            prop_assert_eq!(verify_chain(&stored), Err((i, expected)));
        } else {
            stored[i]["meta"]["recorded_at"] = Value::String("2030-01-01T00:00:00Z".into());
            prop_assert_eq!(verify_chain(&stored), Err((i, SealError::HashMismatch)));
        }
    }
}
