//! The inspection lifecycle (one aggregate per code): commands, events, rules and validity.

mod aggregate;
mod command;
mod error;
mod event;
mod validity;

#[cfg(test)]
mod tests;

pub use aggregate::{Inspection, IssuedCode, MAX_TEXT_CHARS};
pub use command::{
    InspectionCommand, InspectionKind, InspectionRequest, IssueCode, IssueFacts, OfficerCommand,
    OfficerFact, Outcome, PlanUse, SupplementReason, TokenCheck, Trigger, VisitPurpose,
    STANDARD_SUPPLEMENT_REASON,
};
pub use error::InspectionError;
pub use event::{EnterpriseOnCode, InspectionEvent, OfficerOnCode, ScanRefusal, Scanner};
pub use validity::{shanghai_date, ValidityRule, ValidityState, ValidityWindow};
