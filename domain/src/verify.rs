//! Checks a log of stored events in position order, as a sceptical reader would: every event's
//! hash, its link to the previous event of its stream, the notary's signature, and the
//! officer's signature over the command it carries, with a device key that was registered to
//! that officer before the command was signed and not revoked by then. Works on the stored
//! JSON, never on this crate's types, so what is checked is exactly what was stored.

use crate::envelope::signing_bytes;
use crate::ids::OfficerRef;
use crate::keys::{KeyId, PublicKey, SignatureBytes};
use crate::seal::{verify_stored, Chain, SealError};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

/// What broke, at which position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("position {position} ({stream}): {what}")]
pub struct Broken {
    pub position: u64,
    pub stream: String,
    pub what: Failure,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error("the command's envelope is malformed: {0}")]
    Envelope(String),
    #[error("officer {officer} has no device key {key_id} in the log before this command")]
    UnknownOfficerKey { officer: String, key_id: KeyId },
    #[error("device key {key_id} was registered at {registered_at}, after the command was signed at {signed_at}")]
    KeyRegisteredLater {
        key_id: KeyId,
        registered_at: DateTime<Utc>,
        signed_at: DateTime<Utc>,
    },
    #[error("device key {key_id} was revoked at {revoked_at}, before the command was signed at {signed_at}")]
    KeyRevoked {
        key_id: KeyId,
        revoked_at: DateTime<Utc>,
        signed_at: DateTime<Utc>,
    },
    #[error("the officer's signature does not verify")]
    BadOfficerSignature,
}

#[derive(Debug, Clone)]
struct DeviceKey {
    public_key: PublicKey,
    registered_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

/// Counts of what was checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Checked {
    pub events: u64,
    pub notary_signatures: u64,
    pub officer_signatures: u64,
}

pub struct LogVerifier {
    notary: HashMap<KeyId, PublicKey>,
    chains: HashMap<String, Chain>,
    /// Officer key (certificate number, 警 + badge) → device key id → key.
    devices: HashMap<String, HashMap<KeyId, DeviceKey>>,
    signatures: bool,
    checked: Checked,
}

#[derive(Deserialize)]
struct Head {
    stream: String,
    meta: MetaHead,
    #[serde(default)]
    command: Option<Value>,
    event: Value,
}

#[derive(Deserialize)]
struct MetaHead {
    recorded_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct EnvelopeHead {
    officer: OfficerRef,
    key_id: KeyId,
    device_time: DateTime<Utc>,
    signature: SignatureBytes,
}

impl LogVerifier {
    /// `signatures`: whether to check ed25519 signatures (hashes and chains are always checked).
    pub fn new(notary_keys: impl IntoIterator<Item = PublicKey>, signatures: bool) -> Self {
        LogVerifier {
            notary: notary_keys.into_iter().map(|k| (k.key_id(), k)).collect(),
            chains: HashMap::new(),
            devices: HashMap::new(),
            signatures,
            checked: Checked::default(),
        }
    }

    pub fn checked(&self) -> Checked {
        self.checked
    }

    /// Checks the stored event at `position`; the log must be fed in position order.
    pub fn check(&mut self, position: u64, stored: &Value) -> Result<(), Broken> {
        let stream_of = |v: &Value| v["stream"].as_str().unwrap_or_default().to_string();
        let broken = |what: Failure| Broken {
            position,
            stream: stream_of(stored),
            what,
        };
        let head = Head::deserialize(stored)
            .map_err(|e| broken(SealError::Malformed(e.to_string()).into()))?;
        let chain = self.chains.get(&head.stream).copied().unwrap_or_default();
        let hash = if self.signatures {
            verify_stored(stored, &chain, |id| self.notary.get(id).copied())
        } else {
            verify_stored(stored, &chain, |_| None).or_else(|e| match e {
                // Without signature checks, only the hash and the chain count.
                SealError::UnknownNotaryKey(_) | SealError::BadNotarySignature => stored["hash"]
                    .as_str()
                    .and_then(crate::canonical::Digest::from_hex)
                    .ok_or(e),
                e => Err(e),
            })
        }
        .map_err(|e| broken(e.into()))?;
        if let Some(command) = &head.command {
            self.check_officer(command).map_err(&broken)?;
        }
        self.learn_keys(&head);
        let sequence = stored["sequence"].as_u64().unwrap_or_default();
        self.chains
            .entry(head.stream)
            .or_default()
            .advance(sequence, hash);
        self.checked.events += 1;
        if self.signatures {
            self.checked.notary_signatures += 1;
        }
        Ok(())
    }

    fn check_officer(&mut self, command: &Value) -> Result<(), Failure> {
        let envelope =
            EnvelopeHead::deserialize(command).map_err(|e| Failure::Envelope(e.to_string()))?;
        let officer = envelope.officer.key();
        let key = self
            .devices
            .get(&officer)
            .and_then(|keys| keys.get(&envelope.key_id))
            .ok_or_else(|| Failure::UnknownOfficerKey {
                officer: officer.clone(),
                key_id: envelope.key_id.clone(),
            })?;
        if key.registered_at > envelope.device_time {
            return Err(Failure::KeyRegisteredLater {
                key_id: envelope.key_id,
                registered_at: key.registered_at,
                signed_at: envelope.device_time,
            });
        }
        if let Some(revoked_at) = key.revoked_at.filter(|r| *r <= envelope.device_time) {
            return Err(Failure::KeyRevoked {
                key_id: envelope.key_id,
                revoked_at,
                signed_at: envelope.device_time,
            });
        }
        if self.signatures {
            let bytes = signing_bytes(command).ok_or(Failure::BadOfficerSignature)?;
            if !key.public_key.verify(&bytes, &envelope.signature) {
                return Err(Failure::BadOfficerSignature);
            }
            self.checked.officer_signatures += 1;
        }
        Ok(())
    }

    /// Device keys come from the registry's officer streams (`Registry/officer:{key}`).
    fn learn_keys(&mut self, head: &Head) {
        let Some(officer) = head.stream.strip_prefix("Registry/officer:") else {
            return;
        };
        let at = head.meta.recorded_at;
        match head.event["type"].as_str() {
            Some("DeviceKeyRegistered") => {
                let key = head.event["public_key"]
                    .as_str()
                    .and_then(PublicKey::from_base64);
                let id = head.event["key_id"].as_str();
                if let (Some(public_key), Some(id)) = (key, id) {
                    self.devices.entry(officer.to_string()).or_default().insert(
                        KeyId(id.to_string()),
                        DeviceKey {
                            public_key,
                            registered_at: at,
                            revoked_at: None,
                        },
                    );
                }
            }
            Some("DeviceKeyRevoked") => {
                if let Some(key) = head.event["key_id"].as_str().and_then(|id| {
                    self.devices
                        .get_mut(officer)
                        .and_then(|keys| keys.get_mut(&KeyId(id.to_string())))
                }) {
                    key.revoked_at.get_or_insert(at);
                }
            }
            _ => {}
        }
    }
}
