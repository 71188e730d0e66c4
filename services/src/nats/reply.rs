//! The outcome of a command as published on `saoma.reply.<command_id>`: accepted (with the
//! committed events) or refused (a stable reason code, Chinese and English messages), and the
//! English message of every reason code.

use crate::app::{Accepted, Committed, Refusal};
use saoma_domain::inspection::{InspectionEvent, ScanRefusal};
use saoma_domain::seal::Sealed;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One committed event, as an outcome names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyEvent {
    pub sequence: u64,
    pub event_type: String,
    pub hash: String,
}

impl From<&Committed> for ReplyEvent {
    fn from(c: &Committed) -> Self {
        ReplyEvent {
            sequence: c.sequence,
            event_type: c.event_type.clone(),
            hash: c.hash.clone(),
        }
    }
}

impl From<&Sealed<InspectionEvent>> for ReplyEvent {
    fn from(s: &Sealed<InspectionEvent>) -> Self {
        ReplyEvent::from(&Committed::from(s))
    }
}

/// What the service answers to one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Accepted(ReplyAccepted),
    Refused(ReplyRefused),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyAccepted {
    pub command_id: Uuid,
    pub inspection_id: Uuid,
    pub events: Vec<ReplyEvent>,
    /// Accepted, but later than the policy's "late" threshold.
    pub late: bool,
    /// The command id had already been executed: nothing new was stored, and `events` are the
    /// ones the first execution committed (a retried command gets the same outcome).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    /// For issued codes: the token and the URL the QR code encodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyRefused {
    /// Absent when the message carried no readable command id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<Uuid>,
    pub code: String,
    pub message_zh: String,
    pub message_en: String,
    /// What exactly was wrong, when there is more to say than the code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// A refused scan is recorded: the event that records the attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<ReplyEvent>,
    /// The refusal is the recorded outcome of an earlier execution of the same command id.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    /// For a `duplicate_command` whose original outcome cannot be rebuilt: the original events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<Vec<ReplyEvent>>,
    /// The message's sequence in `SAOMA_CMD`, for refusals of unreadable messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_sequence: Option<u64>,
}

impl Outcome {
    pub fn accepted(command_id: Uuid, a: &Accepted) -> Self {
        Outcome::Accepted(ReplyAccepted {
            command_id,
            inspection_id: a.inspection_id,
            events: a.events.iter().map(ReplyEvent::from).collect(),
            late: a.late,
            duplicate: false,
            token: a.token.clone(),
            url: a.url.clone(),
        })
    }

    /// A refusal with the reason's code and messages.
    pub fn refused(command_id: Option<Uuid>, code: &str, message_zh: impl Into<String>) -> Self {
        Outcome::Refused(ReplyRefused {
            command_id,
            code: code.to_string(),
            message_zh: message_zh.into(),
            message_en: english(code).to_string(),
            detail: None,
            recorded: None,
            duplicate: false,
            original: None,
            stream_sequence: None,
        })
    }

    /// The outcome of a refusal from the command service (not `Duplicate`, which needs the
    /// original events, see [`Outcome::duplicate`]).
    pub fn from_refusal(command_id: Option<Uuid>, r: &Refusal) -> Self {
        let code = r.code();
        match r {
            Refusal::Invalid {
                message, detail, ..
            } => Outcome::refused(command_id, code, *message).with_detail(detail.clone()),
            Refusal::ScanRefused { reason, committed } => {
                let mut o = Outcome::refused(command_id, code, reason.message());
                if let Outcome::Refused(r) = &mut o {
                    r.recorded = Some(ReplyEvent::from(committed));
                }
                o
            }
            Refusal::Duplicate { original, .. } => {
                let mut o = Outcome::refused(command_id, code, "重复提交的指令，未重复记录");
                if let Outcome::Refused(r) = &mut o {
                    r.original = Some(original.iter().map(ReplyEvent::from).collect());
                }
                o
            }
            Refusal::UnknownCode => Outcome::refused(command_id, code, "检查码无效或不存在"),
            Refusal::Internal(_) => Outcome::refused(command_id, code, "服务器内部错误"),
            other => Outcome::refused(command_id, code, other.to_string()),
        }
    }

    /// The outcome of a command id that had already been executed, rebuilt from the events its
    /// first execution recorded, so that a retry reads what the first attempt would have read:
    /// accepted with the same events, or the recorded refusal of a scan. `token_url` gives the
    /// token and URL of an issued code.
    pub fn duplicate(
        command_id: Uuid,
        inspection_id: Uuid,
        original: &[Sealed<InspectionEvent>],
        token_url: impl FnOnce() -> (String, String),
    ) -> Self {
        let Some(first) = original.first() else {
            return Outcome::refused(
                Some(command_id),
                "duplicate_command",
                "重复提交的指令，未重复记录",
            );
        };
        let refused_scan = original.iter().find_map(|e| match &e.event {
            InspectionEvent::ScanRefused { reason, .. } => Some((*reason, e)),
            _ => None,
        });
        if let Some((reason, event)) = refused_scan {
            return Outcome::Refused(ReplyRefused {
                recorded: Some(ReplyEvent::from(event)),
                duplicate: true,
                ..refused_scan_reply(command_id, reason)
            });
        }
        let issued = original
            .iter()
            .any(|e| matches!(e.event, InspectionEvent::CodeIssued { .. }));
        let (token, url) = if issued {
            let (t, u) = token_url();
            (Some(t), Some(u))
        } else {
            (None, None)
        };
        Outcome::Accepted(ReplyAccepted {
            command_id,
            inspection_id,
            events: original.iter().map(ReplyEvent::from).collect(),
            late: first.meta.late,
            duplicate: true,
            token,
            url,
        })
    }

    fn with_detail(mut self, detail: String) -> Self {
        if let Outcome::Refused(r) = &mut self {
            r.detail = Some(detail);
        }
        self
    }

    /// Adds the `SAOMA_CMD` sequence of the message refused.
    pub fn at_sequence(mut self, sequence: u64) -> Self {
        if let Outcome::Refused(r) = &mut self {
            r.stream_sequence = Some(sequence);
        }
        self
    }

    pub fn with_message_detail(self, detail: impl ToString) -> Self {
        self.with_detail(detail.to_string())
    }

    /// The reason code of a refusal; `None` when accepted.
    pub fn code(&self) -> Option<&str> {
        match self {
            Outcome::Accepted(_) => None,
            Outcome::Refused(r) => Some(&r.code),
        }
    }

    /// The same outcome, marked as the answer to a command id executed before.
    pub fn as_duplicate(mut self) -> Self {
        match &mut self {
            Outcome::Accepted(a) => a.duplicate = true,
            Outcome::Refused(r) => r.duplicate = true,
        }
        self
    }

    /// The same outcome without the duplicate mark: what the first execution answered.
    pub fn unmarked(mut self) -> Self {
        match &mut self {
            Outcome::Accepted(a) => a.duplicate = false,
            Outcome::Refused(r) => r.duplicate = false,
        }
        self
    }

    pub fn is_duplicate(&self) -> bool {
        match self {
            Outcome::Accepted(a) => a.duplicate,
            Outcome::Refused(r) => r.duplicate || r.code == "duplicate_command",
        }
    }
}

fn refused_scan_reply(command_id: Uuid, reason: ScanRefusal) -> ReplyRefused {
    match Outcome::refused(Some(command_id), reason.code(), reason.message()) {
        Outcome::Refused(r) => r,
        Outcome::Accepted(_) => unreachable!("refused builds a refusal"),
    }
}

/// The English message of a reason code: lower case, no trailing period. Every code the
/// command service, the domain and the ingest can answer has one (a test checks the domain's).
pub fn english(code: &str) -> &'static str {
    match code {
        // The ingest's own reasons.
        "unknown_subject" => "commands are accepted on saoma.cmd.v1 only",
        "malformed_json" => "the message is not valid JSON",
        "message_too_large" => "the message is larger than the service accepts",
        // The command service.
        "invalid_command" => "the command does not have the required shape",
        "duplicate_command" => "this command was already executed; nothing new was recorded",
        "unknown_code" => "the inspection code is invalid or does not exist",
        "unknown_inspection" => "the inspection does not exist",
        "internal" => "internal error of the service",
        // Signed envelopes.
        "bad_signature" => "the signature is not valid",
        // Checkpoints (signed notes), as verifiers report them.
        "malformed_note" => "the checkpoint is not a well-formed signed note",
        "malformed_body" => "the checkpoint's body is not origin, tree size and root hash",
        "no_signature" => "the checkpoint has no signature by the expected key",
        "unknown_officer" => "the officer is not registered",
        "officer_name_mismatch" => "the officer's name does not match the badge number",
        "officer_suspended" => "the officer's enforcement qualification is suspended",
        "officer_revoked" => "the officer's enforcement qualification is revoked",
        "unknown_key" => "the device key is not registered",
        "key_revoked" => "the device key is revoked",
        "key_not_yet_valid" => "the device key was registered after the command's device time",
        "device_clock_ahead" => "the device clock is ahead of the service clock",
        "command_too_late" => "the command arrived too late, past the upload time limit",
        // The inspection aggregate.
        "plan_not_included" => "the planned inspection is not in an approved plan",
        "plan_frequency_exceeded" => "the inspection plan's frequency is exceeded",
        "plan_year_mismatch" => "the inspection plan is for another year",
        "reason_required" => "a supplementary record needs a reason",
        "reason_too_long" => "the supplementary reason is longer than 200 characters",
        "basis_required" => "an unplanned inspection needs its basis",
        "unknown_agency" => "the inspecting agency is not registered",
        "officer_not_in_agency" => "the officer does not belong to the inspecting agency",
        "unknown_enterprise" => "the enterprise is not registered",
        "enterprise_not_active" => "the enterprise is deregistered or closed",
        "no_items" => "an inspection needs at least one item",
        "unknown_item" => "an inspection item is not registered",
        "no_officers" => "an inspection needs at least one officer",
        "unknown_officer_on_code" => "an officer listed on the code is not registered",
        "officer_on_code_not_active" => "an officer listed on the code is not qualified to enforce",
        "duplicate_officer_on_code" => "an officer is listed twice on the code",
        "issuer_not_listed" => "the issuing officer must be listed on the code",
        "partner_invalid" => "a joint inspection partner is not valid",
        "date_in_past" => "the inspection date is before today",
        "supplement_in_future" => "a supplementary record cannot be dated after today",
        "already_issued" => "a code was already issued for this inspection",
        "inspection_id_mismatch" => "the inspection ids in the command do not match",
        "not_issued" => "no code was issued for this inspection yet",
        "code_revoked" => "the inspection code is revoked",
        "outside_validity" => "outside the inspection code's validity",
        "not_assigned" => "the officer may not act on this inspection",
        "wrong_enterprise" => "the enterprise code does not match the inspected enterprise",
        "not_scanned" => "the enterprise has not scanned the code yet, so it cannot rate",
        "already_rated" => "the visit was already rated",
        "rating_invalid" => "the satisfaction level must be 1 to 5",
        "text_too_long" => "the text is too long",
        "already_reported" => "the result was already reported",
        "result_text_required" => "a result with problems found needs feedback text",
        "revoke_reason_required" => "revoking a code needs a reason",
        "already_used" => "the code was already used and cannot be revoked",
        "text_required" => "the text cannot be empty",
        // Refused scans (recorded).
        "code_not_yet_valid" => "the inspection code is not valid yet",
        "code_expired" => "the inspection code has expired",
        "forged_token" => "the inspection code is not genuine and may be forged",
        // Registries.
        "key_already_registered" => "the device key was revoked and cannot be registered again",
        "key_already_revoked" => "the device key is already revoked",
        "name_invalid" => "a name must be 1 to 100 characters",
        "legal_basis_required" => "the legal basis cannot be empty",
        "plan_incomplete" => {
            "a plan needs at least one enterprise, one item and at least one allowed visit"
        }
        "entity_mismatch" => "the registry entity types do not match",
        // Identifiers.
        "credit_code_length" => "a unified social credit code has 18 characters",
        "credit_code_character" => "the unified social credit code has a character it cannot have",
        "credit_code_check_digit" => "the unified social credit code's check digit is wrong",
        "certificate_no_invalid" => "the certificate number is not valid",
        "badge_no_invalid" => "the badge number is not valid",
        "code_invalid" => "the code is not valid",
        _ => "the command was refused",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;

    /// Every `=> "snake_case"` and `code: "snake_case"` string of `text` (the `code()` arms).
    fn codes_of(text: &str, out: &mut Vec<String>) {
        for pattern in ["=> \"", "code: \""] {
            for (i, _) in text.match_indices(pattern) {
                let rest = &text[i + pattern.len()..];
                let s = &rest[..rest.find('"').unwrap()];
                if s.contains('_') && s.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                    out.push(s.to_string());
                }
            }
        }
    }

    fn codes_in(dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                codes_in(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                codes_of(&std::fs::read_to_string(&path).unwrap(), out);
            }
        }
    }

    #[test]
    fn every_reason_code_of_the_domain_and_the_service_has_an_english_message() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut codes = Vec::new();
        codes_in(&root.join("../domain/src"), &mut codes);
        codes_of(
            &std::fs::read_to_string(root.join("src/app.rs")).unwrap(),
            &mut codes,
        );
        assert!(codes.len() > 50, "found only {codes:?}");
        let fallback = english("no such code");
        let missing: Vec<_> = codes.iter().filter(|c| english(c) == fallback).collect();
        assert!(missing.is_empty(), "no English message for {missing:?}");
        for code in [
            "duplicate_command",
            "unknown_code",
            "unknown_inspection",
            "internal",
        ] {
            assert_ne!(english(code), fallback, "{code}");
        }
    }

    #[test]
    fn an_outcome_reads_back_as_it_was_written() {
        let id = Uuid::new_v4();
        let accepted = Outcome::Accepted(ReplyAccepted {
            command_id: id,
            inspection_id: Uuid::new_v4(),
            events: vec![ReplyEvent {
                sequence: 1,
                event_type: "CodeIssued".into(),
                hash: "ab".repeat(32),
            }],
            late: false,
            duplicate: true,
            token: Some("t".into()),
            url: Some("http://x/c/t".into()),
        });
        let text = serde_json::to_value(&accepted).unwrap();
        assert_eq!(text["status"], json!("accepted"));
        assert_eq!(text["duplicate"], json!(true));
        assert_eq!(serde_json::from_value::<Outcome>(text).unwrap(), accepted);

        let refused = Outcome::refused(Some(id), "bad_signature", "签名无效");
        let text = serde_json::to_value(&refused).unwrap();
        assert_eq!(
            text,
            json!({"status": "refused", "command_id": id, "code": "bad_signature",
                   "message_zh": "签名无效", "message_en": "the signature is not valid"})
        );
        assert_eq!(serde_json::from_value::<Outcome>(text).unwrap(), refused);
    }
}
