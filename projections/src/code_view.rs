//! What the enterprise sees when it opens a code: who comes, why, until when, and what became
//! of the visit. Folded from one inspection's events; no personal data beyond what the code
//! itself names.

use chrono::{DateTime, NaiveDate, Utc};
use saoma_domain::inspection::{InspectionEvent, InspectionKind, Outcome, Scanner, ValidityState};
use saoma_domain::seal::Sealed;
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NamedParty {
    pub code: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OfficerLine {
    pub name: String,
    /// Certificate number (执法证号), or 警号 for police.
    pub credential: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemLine {
    pub name: String,
    pub legal_basis: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RatingLine {
    pub level: u8,
    pub comment: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResultLine {
    pub problems_found: bool,
    pub feedback: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CodeView {
    pub inspection_id: Uuid,
    /// 计划检查 / 补录 / 非计划检查 / 非检查类入企.
    pub kind: &'static str,
    pub kind_detail: String,
    pub agency: NamedParty,
    pub enterprise: NamedParty,
    pub officers: Vec<OfficerLine>,
    pub items: Vec<ItemLine>,
    pub joint_partners: Vec<NamedParty>,
    pub date: NaiveDate,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
    pub validity: ValidityState,
    pub revoked: bool,
    pub scanned: bool,
    pub mutual_verified: bool,
    pub rating: Option<RatingLine>,
    pub result: Option<ResultLine>,
}

pub(crate) fn kind_label(kind: &InspectionKind) -> (&'static str, String) {
    use saoma_domain::inspection::{Trigger, VisitPurpose};
    match kind {
        InspectionKind::Planned { plan } => ("计划检查", format!("检查计划 {plan}")),
        InspectionKind::Supplementary { reason } => ("补录", reason.as_str().to_string()),
        InspectionKind::Unplanned { trigger, basis } => {
            let t = match trigger {
                Trigger::Complaint => "投诉",
                Trigger::Report => "举报",
                Trigger::MediaExposure => "媒体曝光",
                Trigger::SuperiorAssignment => "上级交办",
                Trigger::Emergency => "突发事件",
                Trigger::Referral => "转办线索",
            };
            ("非计划检查", format!("{t}：{basis}"))
        }
        InspectionKind::NonInspection { purpose } => {
            let p = match purpose {
                VisitPurpose::Observation => "观摩",
                VisitPurpose::Supervision => "督导",
                VisitPurpose::Study => "考察",
                VisitPurpose::Service => "服务",
                VisitPurpose::LegalEducation => "普法",
                VisitPurpose::LegalCheckup => "法治体检",
            };
            ("非检查类入企", p.to_string())
        }
    }
}

impl CodeView {
    /// Folds an inspection's events; `None` when the stream holds no `CodeIssued`.
    pub fn fold(events: &[Sealed<InspectionEvent>], now: DateTime<Utc>) -> Option<CodeView> {
        let mut view: Option<CodeView> = None;
        let (mut by_enterprise, mut by_officer) = (false, false);
        for e in events {
            match (&e.event, view.as_mut()) {
                (
                    InspectionEvent::CodeIssued {
                        inspection_id,
                        kind,
                        agency,
                        enterprise,
                        items,
                        officers,
                        date,
                        joint_partners,
                        validity,
                    },
                    _,
                ) => {
                    let (kind, kind_detail) = kind_label(kind);
                    view = Some(CodeView {
                        inspection_id: *inspection_id,
                        kind,
                        kind_detail,
                        agency: NamedParty {
                            code: agency.code.to_string(),
                            name: agency.name.clone(),
                        },
                        enterprise: NamedParty {
                            code: enterprise.credit_code.to_string(),
                            name: enterprise.name.clone(),
                        },
                        officers: officers
                            .iter()
                            .map(|o| OfficerLine {
                                name: o.name.clone(),
                                credential: o.id.key(),
                            })
                            .collect(),
                        items: items
                            .iter()
                            .map(|i| ItemLine {
                                name: i.name.clone(),
                                legal_basis: i.legal_basis.clone(),
                            })
                            .collect(),
                        joint_partners: joint_partners
                            .iter()
                            .map(|a| NamedParty {
                                code: a.code.to_string(),
                                name: a.name.clone(),
                            })
                            .collect(),
                        date: *date,
                        valid_from: validity.valid_from,
                        valid_until: validity.valid_until,
                        validity: validity.state_at(now),
                        revoked: false,
                        scanned: false,
                        mutual_verified: false,
                        rating: None,
                        result: None,
                    });
                }
                (InspectionEvent::CodeScanned { by, .. }, Some(v)) => {
                    match by {
                        Scanner::Enterprise => by_enterprise = true,
                        Scanner::Officer => by_officer = true,
                    }
                    v.scanned = by_enterprise;
                    v.mutual_verified = by_enterprise && by_officer;
                }
                (InspectionEvent::RatingGiven { level, comment, at }, Some(v)) => {
                    v.rating = Some(RatingLine {
                        level: *level,
                        comment: comment.clone(),
                        at: *at,
                    })
                }
                (InspectionEvent::ResultReported { outcome, at }, Some(v)) => {
                    v.result = Some(match outcome {
                        Outcome::NoProblems => ResultLine {
                            problems_found: false,
                            feedback: None,
                            at: *at,
                        },
                        Outcome::ProblemsFound { feedback } => ResultLine {
                            problems_found: true,
                            feedback: Some(feedback.clone()),
                            at: *at,
                        },
                    })
                }
                (InspectionEvent::CodeRevoked { .. }, Some(v)) => v.revoked = true,
                _ => {}
            }
        }
        view
    }
}
