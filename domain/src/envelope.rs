//! Signed command envelopes from officers' apps, and their authentication against the registry.
//!
//! The signature covers the RFC 8785 bytes of the envelope object as received, with its
//! `signature` member removed; verification therefore works on the received JSON, not on a
//! re-serialisation of our own types.

use crate::canonical::canonical_bytes;
use crate::ids::OfficerRef;
use crate::keys::{KeyId, PublicKey, SignatureBytes};
use crate::registry::{Officer, OfficerStatus};
use chrono::{DateTime, Duration, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;
use uuid::Uuid;

/// A command signed by an officer's device key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedEnvelope<C> {
    pub command: C,
    pub officer: OfficerRef,
    pub key_id: KeyId,
    #[serde(deserialize_with = "crate::time::utc")]
    pub device_time: DateTime<Utc>,
    pub command_id: Uuid,
    pub signature: SignatureBytes,
}

/// The bytes an officer's device signs: the envelope's JSON without `signature`, canonicalised.
pub fn signing_bytes(envelope: &Value) -> Option<Vec<u8>> {
    Some(crate::canonical::canonical_object_bytes_without(
        envelope.as_object()?,
        &["signature"],
    ))
}

/// Builds and signs an envelope (used by officers' apps, the simulator and tests).
pub fn sign_envelope<C: Serialize>(
    command: &C,
    officer: &OfficerRef,
    device_time: DateTime<Utc>,
    command_id: Uuid,
    key: &ed25519_dalek::SigningKey,
) -> Value {
    use ed25519_dalek::Signer;
    let public = PublicKey(key.verifying_key());
    let mut unsigned = serde_json::json!({
        "command": command,
        "officer": officer,
        "key_id": public.key_id(),
        "device_time": device_time,
        "command_id": command_id,
    });
    let signature = SignatureBytes(key.sign(&canonical_bytes(&unsigned)));
    unsigned["signature"] = serde_json::to_value(signature).expect("signature serialises");
    unsigned
}

/// How far device clocks may drift and how late a command may arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimePolicy {
    /// A device time further ahead of the service clock than this is refused.
    pub max_clock_ahead: Duration,
    /// A command older than this is accepted but marked late.
    pub late_after: Duration,
    /// A command older than this is refused.
    pub max_delay: Duration,
}

impl Default for TimePolicy {
    fn default() -> Self {
        TimePolicy {
            max_clock_ahead: Duration::minutes(5),
            late_after: Duration::minutes(10),
            max_delay: Duration::hours(72),
        }
    }
}

/// Why an envelope was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    #[error("签名无效")]
    BadSignature,
    #[error("执法人员未登记")]
    UnknownOfficer,
    #[error("执法人员姓名与警号不符")]
    OfficerNameMismatch,
    #[error("执法人员已暂停执法资格")]
    OfficerSuspended,
    #[error("执法人员执法资格已注销")]
    OfficerRevoked,
    #[error("设备密钥未登记")]
    UnknownKey,
    #[error("设备密钥已吊销")]
    KeyRevoked,
    #[error("设备密钥登记时间晚于指令时间")]
    KeyNotYetValid,
    #[error("设备时间超前于服务器时间")]
    DeviceClockAhead,
    #[error("指令提交过晚，已超过补传时限")]
    TooLate,
}

impl AuthError {
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::BadSignature => "bad_signature",
            AuthError::UnknownOfficer => "unknown_officer",
            AuthError::OfficerNameMismatch => "officer_name_mismatch",
            AuthError::OfficerSuspended => "officer_suspended",
            AuthError::OfficerRevoked => "officer_revoked",
            AuthError::UnknownKey => "unknown_key",
            AuthError::KeyRevoked => "key_revoked",
            AuthError::KeyNotYetValid => "key_not_yet_valid",
            AuthError::DeviceClockAhead => "device_clock_ahead",
            AuthError::TooLate => "command_too_late",
        }
    }
}

/// An envelope whose signature, officer, key and timing all hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub officer: String,
    pub key_id: KeyId,
    pub device_time: DateTime<Utc>,
    pub late: bool,
}

/// Checks a parsed envelope (`raw` is the same envelope as received) against the officer's
/// registry record.
pub fn authenticate<C>(
    envelope: &SignedEnvelope<C>,
    raw: &Value,
    officer: Option<&Officer>,
    received_at: DateTime<Utc>,
    policy: &TimePolicy,
) -> Result<Authenticated, AuthError> {
    let officer = officer.ok_or(AuthError::UnknownOfficer)?;
    if let OfficerRef::Police { name, .. } = &envelope.officer {
        if name != &officer.profile.name {
            return Err(AuthError::OfficerNameMismatch);
        }
    }
    let key = officer
        .device_key(&envelope.key_id)
        .ok_or(AuthError::UnknownKey)?;
    let bytes = signing_bytes(raw).ok_or(AuthError::BadSignature)?;
    if !key.public_key.verify(&bytes, &envelope.signature) {
        return Err(AuthError::BadSignature);
    }
    match officer.status {
        OfficerStatus::Active => {}
        OfficerStatus::Suspended => return Err(AuthError::OfficerSuspended),
        OfficerStatus::Revoked => return Err(AuthError::OfficerRevoked),
    }
    let t = envelope.device_time;
    if t < key.registered_at {
        return Err(AuthError::KeyNotYetValid);
    }
    if key.revoked_at.is_some_and(|r| r <= t || r <= received_at) {
        return Err(AuthError::KeyRevoked);
    }
    if t > received_at + policy.max_clock_ahead {
        return Err(AuthError::DeviceClockAhead);
    }
    let age = received_at - t;
    if age > policy.max_delay {
        return Err(AuthError::TooLate);
    }
    Ok(Authenticated {
        officer: officer.key(),
        key_id: envelope.key_id.clone(),
        device_time: t,
        late: age > policy.late_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AgencyCode, CertificateNo};
    use crate::registry::{DeviceKey, OfficerProfile};
    use ed25519_dalek::SigningKey;
    use serde_json::json;

    #[test]
    fn signing_bytes_are_the_canonical_envelope_without_its_signature() {
        let envelope = json!({
            "z": [1, {"b": "😀", "a": "é"}], "signature": "c2ln", "command": {"y": 1, "x": "\u{7}"},
            "a": null, "sig": true
        });
        let mut unsigned = envelope.as_object().unwrap().clone();
        unsigned.remove("signature");
        assert_eq!(
            signing_bytes(&envelope).unwrap(),
            canonical_bytes(&unsigned)
        );
        assert_eq!(
            String::from_utf8(signing_bytes(&envelope).unwrap()).unwrap(),
            r#"{"a":null,"command":{"x":"\u0007","y":1},"sig":true,"z":[1,{"a":"é","b":"😀"}]}"#
        );
        assert_eq!(signing_bytes(&json!([1, 2])), None);
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[3; 32])
    }

    fn officer(status: OfficerStatus, revoked_at: Option<DateTime<Utc>>) -> Officer {
        let public = PublicKey(key().verifying_key());
        Officer {
            profile: OfficerProfile {
                credential: OfficerRef::Certificate(CertificateNo::parse("ZF630100001").unwrap()),
                name: "王五".into(),
                agency: AgencyCode::parse("QH-SCJ").unwrap(),
                phone: None,
            },
            status,
            keys: vec![DeviceKey {
                key_id: public.key_id(),
                public_key: public,
                registered_at: t("2026-01-01T00:00:00Z"),
                revoked_at,
            }],
        }
    }

    fn envelope(device_time: &str) -> (SignedEnvelope<Value>, Value) {
        let raw = sign_envelope(
            &json!({"type": "ShowCode", "inspection_id": "00000000-0000-0000-0000-000000000001"}),
            &OfficerRef::Certificate(CertificateNo::parse("ZF630100001").unwrap()),
            t(device_time),
            Uuid::nil(),
            &key(),
        );
        (serde_json::from_value(raw.clone()).unwrap(), raw)
    }

    fn check(device_time: &str, received: &str, o: &Officer) -> Result<Authenticated, AuthError> {
        let (env, raw) = envelope(device_time);
        authenticate(&env, &raw, Some(o), t(received), &TimePolicy::default())
    }

    #[test]
    fn a_fresh_signed_command_is_authenticated() {
        let a = check(
            "2026-03-02T02:00:00Z",
            "2026-03-02T02:00:01Z",
            &officer(OfficerStatus::Active, None),
        )
        .unwrap();
        assert!(!a.late);
        assert_eq!(a.officer, "ZF630100001");
    }

    #[test]
    fn a_command_within_the_limit_is_accepted_and_marked_late() {
        let a = check(
            "2026-03-02T02:00:00Z",
            "2026-03-03T02:00:00Z",
            &officer(OfficerStatus::Active, None),
        )
        .unwrap();
        assert!(a.late);
    }

    #[test]
    fn a_command_past_the_limit_is_refused() {
        let e = check(
            "2026-03-02T02:00:00Z",
            "2026-03-06T02:00:00Z",
            &officer(OfficerStatus::Active, None),
        );
        assert_eq!(e, Err(AuthError::TooLate));
    }

    #[test]
    fn a_device_clock_far_ahead_is_refused() {
        let e = check(
            "2026-03-02T03:00:00Z",
            "2026-03-02T02:00:00Z",
            &officer(OfficerStatus::Active, None),
        );
        assert_eq!(e, Err(AuthError::DeviceClockAhead));
    }

    #[test]
    fn a_key_registered_after_the_command_time_cannot_sign_it() {
        let e = check(
            "2025-12-31T23:59:59Z",
            "2026-01-02T00:00:00Z",
            &officer(OfficerStatus::Active, None),
        );
        assert_eq!(e, Err(AuthError::KeyNotYetValid));
    }

    #[test]
    fn a_revoked_key_is_refused() {
        let o = officer(OfficerStatus::Active, Some(t("2026-02-01T00:00:00Z")));
        let e = check("2026-03-02T02:00:00Z", "2026-03-02T02:00:01Z", &o);
        assert_eq!(e, Err(AuthError::KeyRevoked));
    }

    #[test]
    fn suspended_and_revoked_officers_are_refused() {
        let e = check(
            "2026-03-02T02:00:00Z",
            "2026-03-02T02:00:01Z",
            &officer(OfficerStatus::Suspended, None),
        );
        assert_eq!(e, Err(AuthError::OfficerSuspended));
        let e = check(
            "2026-03-02T02:00:00Z",
            "2026-03-02T02:00:01Z",
            &officer(OfficerStatus::Revoked, None),
        );
        assert_eq!(e, Err(AuthError::OfficerRevoked));
    }

    #[test]
    fn an_unknown_officer_is_refused() {
        let (env, raw) = envelope("2026-03-02T02:00:00Z");
        let e = authenticate(
            &env,
            &raw,
            None,
            t("2026-03-02T02:00:00Z"),
            &TimePolicy::default(),
        );
        assert_eq!(e, Err(AuthError::UnknownOfficer));
    }

    #[test]
    fn any_change_to_the_signed_content_breaks_the_signature() {
        let (env, mut raw) = envelope("2026-03-02T02:00:00Z");
        raw["command"]["inspection_id"] = json!("00000000-0000-0000-0000-000000000002");
        let e = authenticate(
            &env,
            &raw,
            Some(&officer(OfficerStatus::Active, None)),
            t("2026-03-02T02:00:00Z"),
            &TimePolicy::default(),
        );
        assert_eq!(e, Err(AuthError::BadSignature));
    }
}
