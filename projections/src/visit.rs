//! One inspection as every view sees it: the code's facts and what has happened to it so far,
//! each step with the id of the event that proves it. History rows, warning rules and
//! satisfaction figures are all read off this record.

use chrono::{DateTime, NaiveDate, Utc};
use saoma_domain::inspection::{
    EnterpriseOnCode, InspectionEvent, InspectionKind, OfficerOnCode, Outcome, ScanRefusal,
    Scanner, ValidityWindow,
};
use saoma_domain::registry::{Agency, Item};
use saoma_domain::seal::Sealed;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A stored event's id: `{stream}/{sequence}`, e.g. `inspection/6f1c…/3`, the same id the NATS
/// stream of committed events deduplicates on. Stable for ever, unlike nothing else in a row.
pub type EventId = String;

pub fn event_id<E>(e: &Sealed<E>) -> EventId {
    format!("{}/{}", e.stream, e.sequence)
}

/// One step of a visit: when it happened (the time the rules judge) and which event proves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    #[serde(deserialize_with = "saoma_domain::time::utc")]
    pub at: DateTime<Utc>,
    pub event: EventId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rating {
    pub level: u8,
    pub comment: Option<String>,
    pub step: Step,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub by: Scanner,
    pub reason: ScanRefusal,
    pub step: Step,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Visit {
    pub inspection_id: Uuid,
    pub kind: InspectionKind,
    pub agency: Agency,
    pub enterprise: EnterpriseOnCode,
    pub items: Vec<Item>,
    pub officers: Vec<OfficerOnCode>,
    /// 执法时间.
    pub date: NaiveDate,
    pub joint_partners: Vec<Agency>,
    pub validity: ValidityWindow,
    /// The `CodeIssued` event; `at` is when the code was asked for.
    pub issued: Step,
    /// The command behind `CodeIssued` arrived late (补录-like delay, flagged by the service).
    pub issued_late: bool,
    pub shown: Option<Step>,
    /// The enterprise scanned the inspection code.
    pub enterprise_scan: Option<Step>,
    /// The officer scanned the enterprise's code (企业码).
    pub officer_scan: Option<Step>,
    pub refused_scans: Vec<Refusal>,
    pub rating: Option<Rating>,
    pub result: Option<(Outcome, Step)>,
    pub revoked: Option<(String, Step)>,
    pub feedback: Vec<(String, Step)>,
    /// Every event of the inspection, in stream order.
    pub events: Vec<EventId>,
}

impl Visit {
    /// The stream of the visit's events: its `CodeIssued`'s [`EventId`] without the sequence.
    pub fn stream(&self) -> &str {
        let id = &self.issued.event;
        id.rsplit_once('/')
            .map_or(id.as_str(), |(stream, _)| stream)
    }

    /// Starts a visit from its `CodeIssued` event; `None` for any other event.
    pub fn issued(e: &Sealed<InspectionEvent>) -> Option<Visit> {
        let InspectionEvent::CodeIssued {
            inspection_id,
            kind,
            agency,
            enterprise,
            items,
            officers,
            date,
            joint_partners,
            validity,
        } = &e.event
        else {
            return None;
        };
        let id = event_id(e);
        Some(Visit {
            inspection_id: *inspection_id,
            kind: kind.clone(),
            agency: agency.clone(),
            enterprise: enterprise.clone(),
            items: items.clone(),
            officers: officers.clone(),
            date: *date,
            joint_partners: joint_partners.clone(),
            validity: *validity,
            issued: Step {
                at: e.meta.effective_time(),
                event: id.clone(),
            },
            issued_late: e.meta.late,
            shown: None,
            enterprise_scan: None,
            officer_scan: None,
            refused_scans: Vec::new(),
            rating: None,
            result: None,
            revoked: None,
            feedback: Vec::new(),
            events: vec![id],
        })
    }

    /// Folds a later event of the same inspection in. Returns false (and changes nothing) for
    /// a second `CodeIssued`, which the aggregate never emits.
    pub fn apply(&mut self, e: &Sealed<InspectionEvent>) -> bool {
        let step = Step {
            at: e.meta.effective_time(),
            event: event_id(e),
        };
        match &e.event {
            InspectionEvent::CodeIssued { .. } => return false,
            InspectionEvent::CodeShown { .. } => {
                self.shown.get_or_insert(step.clone());
            }
            InspectionEvent::CodeScanned { by, .. } => {
                let slot = match by {
                    Scanner::Enterprise => &mut self.enterprise_scan,
                    Scanner::Officer => &mut self.officer_scan,
                };
                slot.get_or_insert(step.clone());
            }
            InspectionEvent::ScanRefused { by, reason, .. } => self.refused_scans.push(Refusal {
                by: *by,
                reason: *reason,
                step: step.clone(),
            }),
            InspectionEvent::RatingGiven { level, comment, .. } => {
                self.rating = Some(Rating {
                    level: *level,
                    comment: comment.clone(),
                    step: step.clone(),
                })
            }
            InspectionEvent::ResultReported { outcome, .. } => {
                self.result = Some((outcome.clone(), step.clone()))
            }
            InspectionEvent::CodeRevoked { reason, .. } => {
                self.revoked = Some((reason.clone(), step.clone()))
            }
            InspectionEvent::FeedbackGiven { text, .. } => {
                self.feedback.push((text.clone(), step.clone()))
            }
        }
        self.events.push(step.event);
        true
    }

    /// Both the enterprise's and the officer's scans are present (两码互核).
    pub fn mutually_verified(&self) -> bool {
        self.enterprise_scan.is_some() && self.officer_scan.is_some()
    }

    /// A routine visit: planned or supplementary (the kinds the annual cap and quiet days
    /// govern), as opposed to one triggered by a complaint, an assignment or an emergency, or a
    /// non-inspection visit.
    pub fn is_routine(&self) -> bool {
        matches!(
            self.kind,
            InspectionKind::Planned { .. } | InspectionKind::Supplementary { .. }
        )
    }

    pub fn is_inspection(&self) -> bool {
        !matches!(self.kind, InspectionKind::NonInspection { .. })
    }

    /// Officer keys (certificate number, or 警 + badge number) in code order.
    pub fn officer_keys(&self) -> Vec<String> {
        self.officers.iter().map(|o| o.id.key()).collect()
    }
}
