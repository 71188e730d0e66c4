//! Checks a log of stored events in position order, as a sceptical reader would: every event's
//! hash, its link to the previous event of its stream, the notary's signature, and the
//! officer's signature over the command it carries, with a device key that was registered to
//! that officer before the command was signed and not revoked by then. Works on the stored
//! JSON, never on this crate's types, so what is checked is exactly what was stored.
//!
//! Three steps, so that a caller can spread the costly ones over all cores:
//! 1. [`prepare`] one event (independent of every other: its hash is recomputed here);
//! 2. [`LogVerifier::link`] the prepared events in position order (chains, sequences, key
//!    look-ups; cheap), which yields the signatures to check;
//! 3. [`verify_signatures`] in batches (ed25519 batch verification, as fast as the machine
//!    allows); a batch that fails is checked one by one to name the first broken position.

use crate::batch;
use crate::canonical::Digest;
use crate::envelope::signing_bytes;
use crate::ids::OfficerRef;
use crate::keys::{KeyId, PublicKey, SignatureBytes};
use crate::raw::Members;
use crate::seal::{recompute_hash, Chain, LogLeaf, NotarySeal, SealError};
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

/// Counts of what was checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Checked {
    pub events: u64,
    pub notary_signatures: u64,
    pub officer_signatures: u64,
}

#[derive(Deserialize)]
struct Head {
    stream: String,
    sequence: u64,
    prev_hash: Digest,
    hash: Digest,
    notary: NotaryHead,
    meta: MetaHead,
}

#[derive(Debug, PartialEq, Deserialize)]
struct NotaryHead {
    key_id: KeyId,
    signature: SignatureBytes,
}

#[derive(Deserialize)]
struct MetaHead {
    #[serde(deserialize_with = "crate::time::utc")]
    recorded_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct EnvelopeHead {
    officer: OfficerRef,
    key_id: KeyId,
    #[serde(deserialize_with = "crate::time::utc")]
    device_time: DateTime<Utc>,
    signature: SignatureBytes,
}

/// An officer's signed command, ready to be checked.
#[derive(Debug, PartialEq)]
struct Signed {
    officer: String,
    key_id: KeyId,
    device_time: DateTime<Utc>,
    bytes: Vec<u8>,
    signature: SignatureBytes,
}

/// A device key learnt from a registry event.
#[derive(Debug, PartialEq)]
enum KeyChange {
    Registered {
        key_id: KeyId,
        public_key: PublicKey,
    },
    Revoked {
        key_id: KeyId,
    },
}

/// One event, parsed and hashed, not yet linked.
#[derive(Debug, PartialEq)]
pub struct Prepared {
    position: u64,
    stream: String,
    sequence: u64,
    prev_hash: Digest,
    hash: Digest,
    hash_matches: bool,
    notary: NotaryHead,
    recorded_at: DateTime<Utc>,
    command: Option<Result<Signed, String>>,
    /// For `Registry/officer:{key}` streams: the officer and the key change.
    key_change: Option<(String, KeyChange)>,
}

impl Prepared {
    pub fn position(&self) -> u64 {
        self.position
    }

    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Whether the event's stated hash is the hash of what it holds.
    pub fn hash_matches(&self) -> bool {
        self.hash_matches
    }

    /// The event as a leaf of the global log: its stated hash and notary seal.
    pub fn leaf(&self) -> LogLeaf {
        LogLeaf {
            hash: self.hash,
            notary: NotarySeal {
                key_id: self.notary.key_id.clone(),
                signature: self.notary.signature,
            },
        }
    }
}

/// Step 1: parses and hashes the stored event at `position`. Independent of every other event.
pub fn prepare(position: u64, stored: &Value) -> Result<Prepared, Broken> {
    let broken = |e: SealError| Broken {
        position,
        stream: stored["stream"].as_str().unwrap_or_default().to_string(),
        what: e.into(),
    };
    let head =
        Head::deserialize(stored).map_err(|e| broken(SealError::Malformed(e.to_string())))?;
    let computed = recompute_hash(stored).map_err(broken)?;
    // Borrowed from the stored value, not copied out of it.
    let command = stored.get("command").filter(|c| !c.is_null()).map(|c| {
        let envelope = EnvelopeHead::deserialize(c).map_err(|e| e.to_string())?;
        let bytes = signing_bytes(c).ok_or_else(|| "not an object".to_string())?;
        Ok(Signed {
            officer: envelope.officer.key(),
            key_id: envelope.key_id,
            device_time: envelope.device_time,
            bytes,
            signature: envelope.signature,
        })
    });
    let key_change = head
        .stream
        .strip_prefix("Registry/officer:")
        .and_then(|officer| {
            let change = KeyEvent::deserialize(stored.get("event")?).ok()?.change()?;
            Some((officer.to_string(), change))
        });
    Ok(Prepared {
        position,
        hash_matches: computed == head.hash,
        stream: head.stream,
        sequence: head.sequence,
        prev_hash: head.prev_hash,
        hash: head.hash,
        notary: head.notary,
        recorded_at: head.meta.recorded_at,
        command,
        key_change,
    })
}

/// Step 1 straight from the stored text, when it is the RFC 8785 form of the event (as this
/// service stores every event): the hash input and the officer's signing bytes are then the
/// text's own members (see [`crate::raw`]), and nothing is parsed into a tree or rendered
/// again. `None` when the text is not canonical, or does not hash to the hash it states: the
/// caller then parses it and calls [`prepare`], which finds the same, or names what broke.
///
/// Equal to [`prepare`] whenever it answers: a text whose bytes hash to the stated hash *is*
/// the canonical form the hash was computed over (the notary signed that hash, and SHA-256
/// has no known collisions), so every slice of it is canonical too.
pub fn prepare_canonical(position: u64, text: &str) -> Option<Prepared> {
    let members = Members::of(text)?;
    let hash: Digest = members.parse("hash")?;
    if members.sha256_without(&["hash", "notary"]) != hash.0 {
        return None;
    }
    let stream: String = members.parse("stream")?;
    let command = match members.get("command").filter(|c| c.get() != "null") {
        None => None,
        Some(raw) => {
            let envelope = Members::of(raw.get())?;
            let head: EnvelopeHead = serde_json::from_str(raw.get()).ok()?;
            Some(Ok(Signed {
                officer: head.officer.key(),
                key_id: head.key_id,
                device_time: head.device_time,
                bytes: envelope.bytes_without(&["signature"]),
                signature: head.signature,
            }))
        }
    };
    let key_change = match stream.strip_prefix("Registry/officer:") {
        None => None,
        Some(officer) => {
            let event: KeyEvent = members.parse("event")?;
            event.change().map(|change| (officer.to_string(), change))
        }
    };
    let meta: MetaHead = members.parse("meta")?;
    Some(Prepared {
        position,
        sequence: members.parse("sequence")?,
        prev_hash: members.parse("prev_hash")?,
        hash,
        hash_matches: true,
        notary: members.parse("notary")?,
        recorded_at: meta.recorded_at,
        stream,
        command,
        key_change,
    })
}

/// The members of a registry event that change an officer's device keys.
#[derive(Deserialize)]
struct KeyEvent {
    #[serde(rename = "type")]
    kind: String,
    key_id: Option<KeyId>,
    public_key: Option<String>,
}

impl KeyEvent {
    fn change(self) -> Option<KeyChange> {
        let key_id = self.key_id?;
        match self.kind.as_str() {
            "DeviceKeyRegistered" => Some(KeyChange::Registered {
                key_id,
                public_key: PublicKey::from_base64(self.public_key.as_deref()?)?,
            }),
            "DeviceKeyRevoked" => Some(KeyChange::Revoked { key_id }),
            _ => None,
        }
    }
}

/// Whose signature a [`SignatureCheck`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    Notary,
    Officer,
}

/// One signature to verify, from step 2.
pub struct SignatureCheck {
    pub position: u64,
    pub stream: String,
    pub signer: Signer,
    key: PublicKey,
    message: Vec<u8>,
    signature: SignatureBytes,
}

#[derive(Debug, Clone)]
struct DeviceKey {
    public_key: PublicKey,
    registered_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

/// Step 2's state: the chains of all streams and the officers' device keys so far.
pub struct LogVerifier {
    notary: HashMap<KeyId, PublicKey>,
    chains: HashMap<String, Chain>,
    /// Officer key (certificate number, 警 + badge) → device key id → key.
    devices: HashMap<String, HashMap<KeyId, DeviceKey>>,
    signatures: bool,
    checked: Checked,
}

impl LogVerifier {
    /// `signatures`: whether step 2 hands out signatures to check (hashes, chains and key
    /// validity are always checked).
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

    /// Lets go of a stream's chain (its last sequence and hash), for a caller that keeps it
    /// until the stream's next event and gives it back with [`LogVerifier::resume`]; memory
    /// then depends on the streams in use, not on all streams ever seen.
    pub fn forget(&mut self, stream: &str) -> Option<Chain> {
        self.chains.remove(stream)
    }

    /// Takes back a chain let go with [`LogVerifier::forget`].
    pub fn resume(&mut self, stream: String, chain: Chain) {
        self.chains.insert(stream, chain);
    }

    /// Step 2: links one prepared event after everything linked before it; returns the
    /// signatures it needs (none when signatures are not checked).
    pub fn link(&mut self, p: Prepared, checks: &mut Vec<SignatureCheck>) -> Result<(), Broken> {
        let broken = |what: Failure| Broken {
            position: p.position,
            stream: p.stream.clone(),
            what,
        };
        let chain = self.chains.get(&p.stream).copied().unwrap_or_default();
        if p.sequence != chain.version + 1 {
            return Err(broken(
                SealError::Sequence {
                    expected: chain.version + 1,
                    found: p.sequence,
                }
                .into(),
            ));
        }
        if p.prev_hash != chain.last_hash {
            return Err(broken(SealError::ChainBroken.into()));
        }
        if !p.hash_matches {
            return Err(broken(SealError::HashMismatch.into()));
        }
        let notary = *self
            .notary
            .get(&p.notary.key_id)
            .ok_or_else(|| broken(SealError::UnknownNotaryKey(p.notary.key_id.clone()).into()))?;
        let officer = match &p.command {
            None => None,
            Some(Err(e)) => return Err(broken(Failure::Envelope(e.clone()))),
            Some(Ok(signed)) => Some(self.officer_key(signed).map_err(&broken)?),
        };
        if let Some((officer, change)) = &p.key_change {
            self.learn(officer, change, p.recorded_at);
        }
        self.chains
            .entry(p.stream.clone())
            .or_default()
            .advance(p.sequence, p.hash);
        self.checked.events += 1;
        if self.signatures {
            checks.push(SignatureCheck {
                position: p.position,
                stream: p.stream.clone(),
                signer: Signer::Notary,
                key: notary,
                message: p.hash.0.to_vec(),
                signature: p.notary.signature,
            });
            self.checked.notary_signatures += 1;
            if let (Some(key), Some(Ok(signed))) = (officer, p.command) {
                checks.push(SignatureCheck {
                    position: p.position,
                    stream: p.stream,
                    signer: Signer::Officer,
                    key,
                    message: signed.bytes,
                    signature: signed.signature,
                });
                self.checked.officer_signatures += 1;
            }
        }
        Ok(())
    }

    /// The device key that must have signed `signed`, if it was valid when it signed.
    fn officer_key(&self, signed: &Signed) -> Result<PublicKey, Failure> {
        let key = self
            .devices
            .get(&signed.officer)
            .and_then(|keys| keys.get(&signed.key_id))
            .ok_or_else(|| Failure::UnknownOfficerKey {
                officer: signed.officer.clone(),
                key_id: signed.key_id.clone(),
            })?;
        if key.registered_at > signed.device_time {
            return Err(Failure::KeyRegisteredLater {
                key_id: signed.key_id.clone(),
                registered_at: key.registered_at,
                signed_at: signed.device_time,
            });
        }
        if let Some(revoked_at) = key.revoked_at.filter(|r| *r <= signed.device_time) {
            return Err(Failure::KeyRevoked {
                key_id: signed.key_id.clone(),
                revoked_at,
                signed_at: signed.device_time,
            });
        }
        Ok(key.public_key)
    }

    fn learn(&mut self, officer: &str, change: &KeyChange, at: DateTime<Utc>) {
        let keys = self.devices.entry(officer.to_string()).or_default();
        match change {
            KeyChange::Registered { key_id, public_key } => {
                keys.entry(key_id.clone()).or_insert(DeviceKey {
                    public_key: *public_key,
                    registered_at: at,
                    revoked_at: None,
                });
            }
            KeyChange::Revoked { key_id } => {
                if let Some(k) = keys.get_mut(key_id) {
                    k.revoked_at.get_or_insert(at);
                }
            }
        }
    }

    /// Steps 1 to 3 for one event, on this thread.
    pub fn check(&mut self, position: u64, stored: &Value) -> Result<(), Broken> {
        let mut checks = Vec::new();
        self.link(prepare(position, stored)?, &mut checks)?;
        verify_signatures(&checks)
    }
}

/// Step 3: verifies `checks` (in position order) with one ed25519 batch verification
/// ([`batch::verify`]: the terms of each key merged); when the
/// batch fails, one by one (strictly), naming the first that does not verify.
pub fn verify_signatures(checks: &[SignatureCheck]) -> Result<(), Broken> {
    if checks.is_empty() {
        return Ok(());
    }
    let items: Vec<batch::Item> = checks
        .iter()
        .map(|c| batch::Item {
            key: &c.key,
            message: &c.message,
            signature: &c.signature,
        })
        .collect();
    if batch::verify(&items) {
        return Ok(());
    }
    for c in checks {
        if !c.key.verify(&c.message, &c.signature) {
            return Err(Broken {
                position: c.position,
                stream: c.stream.clone(),
                what: match c.signer {
                    Signer::Notary => SealError::BadNotarySignature.into(),
                    Signer::Officer => Failure::BadOfficerSignature,
                },
            });
        }
    }
    // The batch failed but every signature verifies strictly on its own: cannot happen for
    // honest inputs; refuse rather than guess.
    Err(Broken {
        position: checks[0].position,
        stream: checks[0].stream.clone(),
        what: SealError::BadNotarySignature.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::sign_envelope;
    use crate::ids::CertificateNo;
    use crate::seal::{Actor, EventMeta, Sealed};
    use ed25519_dalek::SigningKey;
    use serde_json::json;
    use uuid::Uuid;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn notary() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn device() -> SigningKey {
        SigningKey::from_bytes(&[9; 32])
    }

    fn officer() -> OfficerRef {
        OfficerRef::Certificate(CertificateNo::parse("ZF630100001").unwrap())
    }

    fn meta(at: &str) -> EventMeta {
        EventMeta {
            recorded_at: t(at),
            device_time: None,
            late: false,
            actor: Actor::System,
            command_id: None,
        }
    }

    /// A log: the officer's device key registered at 09:00, then one inspection of two events,
    /// the first signed by the officer at `signed_at`.
    fn log(signed_at: &str) -> Vec<Value> {
        let notary = notary();
        let public = PublicKey(device().verifying_key());
        let key_event = json!({"type": "DeviceKeyRegistered", "key_id": public.key_id(),
                               "public_key": public.to_base64()});
        let registered = Sealed::seal(
            "Registry/officer:ZF630100001".into(),
            &Chain::default(),
            meta("2026-03-02T09:00:00Z"),
            None,
            key_event,
            &notary,
        );
        let command = sign_envelope(
            &json!({"type": "ShowCode", "inspection_id": Uuid::nil()}),
            &officer(),
            t(signed_at),
            Uuid::from_u128(1),
            &device(),
        );
        let stream = "Inspection/00000000-0000-0000-0000-000000000000".to_string();
        let first = Sealed::seal(
            stream.clone(),
            &Chain::default(),
            meta("2026-03-02T10:00:00Z"),
            Some(command),
            json!({"type": "CodeShown", "at": signed_at}),
            &notary,
        );
        let mut chain = Chain::default();
        chain.advance(1, first.hash);
        let second = Sealed::seal(
            stream,
            &chain,
            meta("2026-03-02T10:05:00Z"),
            None,
            json!({"type": "FeedbackGiven", "text": "好", "at": "2026-03-02T10:05:00Z"}),
            &notary,
        );
        [
            serde_json::to_value(registered).unwrap(),
            serde_json::to_value(first).unwrap(),
            serde_json::to_value(second).unwrap(),
        ]
        .into()
    }

    /// Runs all three steps over `log`, positions from 1; the first broken position.
    fn verify(log: &[Value]) -> Result<Checked, Broken> {
        let mut v = LogVerifier::new([PublicKey(notary().verifying_key())], true);
        let mut checks = Vec::new();
        for (i, e) in log.iter().enumerate() {
            v.link(prepare(i as u64 + 1, e)?, &mut checks)?;
        }
        verify_signatures(&checks)?;
        Ok(v.checked())
    }

    #[test]
    fn canonical_text_is_prepared_as_its_parsed_value_is() {
        use crate::canonical::canonical_bytes;
        for (i, event) in log("2026-03-02T09:30:00Z").iter().enumerate() {
            let position = i as u64 + 1;
            let text = String::from_utf8(canonical_bytes(event)).unwrap();
            let fast = prepare_canonical(position, &text).expect("canonical text is read");
            assert_eq!(fast, prepare(position, event).unwrap());
            assert!(fast.hash_matches);

            // Not canonical: members out of order (as a struct serialises), or whitespace.
            let last = format!(",\"stream\":{}}}", event["stream"]);
            assert!(text.ends_with(&last), "stream is the last member");
            let reordered = format!(
                "{{\"stream\":{},{}}}",
                event["stream"],
                &text[1..text.len() - last.len()]
            );
            assert!(prepare_canonical(position, &reordered).is_none());
            assert!(
                prepare_canonical(position, &serde_json::to_string_pretty(event).unwrap())
                    .is_none()
            );

            // A changed byte no longer hashes to the stated hash: left to the general path,
            // which names the mismatch.
            let tampered = text.replacen("2026-03-02", "2026-03-03", 1);
            assert!(prepare_canonical(position, &tampered).is_none());
            let parsed: Value = serde_json::from_str(&tampered).unwrap();
            assert!(!prepare(position, &parsed).unwrap().hash_matches);
        }
    }

    #[test]
    fn a_clean_log_verifies_with_every_signature_counted() {
        let checked = verify(&log("2026-03-02T09:59:00Z")).unwrap();
        assert_eq!(
            checked,
            Checked {
                events: 3,
                notary_signatures: 3,
                officer_signatures: 1
            }
        );
        // One event at a time gives the same answer.
        let mut v = LogVerifier::new([PublicKey(notary().verifying_key())], true);
        for (i, e) in log("2026-03-02T09:59:00Z").iter().enumerate() {
            v.check(i as u64 + 1, e).unwrap();
        }
    }

    #[test]
    fn a_chain_let_go_and_taken_back_links_the_next_event_as_before() {
        let l = log("2026-03-02T09:59:00Z");
        let stream = "Inspection/00000000-0000-0000-0000-000000000000";
        let mut v = LogVerifier::new([PublicKey(notary().verifying_key())], true);
        v.check(1, &l[0]).unwrap();
        v.check(2, &l[1]).unwrap();
        let chain = v.forget(stream).expect("the stream's chain");
        assert_eq!(chain.version, 1);
        // Without its chain the next event looks like a stream starting in the middle.
        let mut fresh = LogVerifier::new([PublicKey(notary().verifying_key())], true);
        fresh.check(1, &l[0]).unwrap();
        assert!(fresh.check(3, &l[2]).is_err());
        v.resume(stream.to_string(), chain);
        v.check(3, &l[2]).unwrap();
        assert_eq!(v.checked().events, 3);
    }

    #[test]
    fn a_changed_byte_is_a_hash_mismatch_at_its_position() {
        let mut l = log("2026-03-02T09:59:00Z");
        l[2]["event"]["text"] = json!("差");
        let e = verify(&l).unwrap_err();
        assert_eq!((e.position, e.what), (3, SealError::HashMismatch.into()));
    }

    #[test]
    fn a_missing_or_reordered_event_breaks_the_chain_at_its_position() {
        let l = log("2026-03-02T09:59:00Z");
        let e = verify(&[l[0].clone(), l[2].clone()]).unwrap_err();
        assert_eq!(e.position, 2);
        assert!(matches!(
            e.what,
            Failure::Seal(SealError::Sequence {
                expected: 1,
                found: 2
            })
        ));
    }

    #[test]
    fn a_replaced_signature_is_named_by_position_and_signer() {
        let mut l = log("2026-03-02T09:59:00Z");
        let other = sign_envelope(
            &json!({"x": 1}),
            &officer(),
            t("2026-03-02T09:59:00Z"),
            Uuid::from_u128(2),
            &device(),
        );
        l[1]["command"]["signature"] = other["signature"].clone();
        // The command is covered by the event hash: re-seal so that only the signature is wrong.
        let mut m = l[1].as_object().unwrap().clone();
        m.remove("hash");
        m.remove("notary");
        let hash = Digest::of_canonical(&m);
        l[1]["hash"] = json!(hash);
        l[1]["notary"]["signature"] = json!(crate::keys::Notary::sign(&notary(), &hash.0));
        let mut chain = Chain::default();
        chain.advance(1, hash);
        let second: Sealed<Value> = serde_json::from_value(l[2].clone()).unwrap();
        let resealed = Sealed::seal(
            second.stream,
            &chain,
            second.meta,
            None,
            second.event,
            &notary(),
        );
        l[2] = serde_json::to_value(resealed).unwrap();
        let e = verify(&l).unwrap_err();
        assert_eq!((e.position, e.what), (2, Failure::BadOfficerSignature));
    }

    #[test]
    fn a_command_signed_before_its_key_was_registered_is_refused() {
        let e = verify(&log("2026-03-02T08:00:00Z")).unwrap_err();
        assert_eq!(e.position, 2);
        assert!(matches!(e.what, Failure::KeyRegisteredLater { .. }), "{e}");
    }

    /// `log` with the device key revoked at `revoked_at`, the revocation logged right after
    /// the registration (before the inspection's events).
    fn log_with_revocation(signed_at: &str, revoked_at: &str) -> Vec<Value> {
        let mut l = log(signed_at);
        let registered: Sealed<Value> = serde_json::from_value(l[0].clone()).unwrap();
        let mut chain = Chain::default();
        chain.advance(1, registered.hash);
        let revoked = Sealed::seal(
            registered.stream,
            &chain,
            meta(revoked_at),
            None,
            json!({"type": "DeviceKeyRevoked",
                   "key_id": PublicKey(device().verifying_key()).key_id()}),
            &notary(),
        );
        l.insert(1, serde_json::to_value(revoked).unwrap());
        l
    }

    #[test]
    fn a_command_signed_after_its_key_was_revoked_is_refused() {
        let e = verify(&log_with_revocation(
            "2026-03-02T09:45:00Z",
            "2026-03-02T09:30:00Z",
        ))
        .unwrap_err();
        assert_eq!(e.position, 3, "the signed command, after the revocation");
        assert!(matches!(e.what, Failure::KeyRevoked { .. }), "{e}");
        // Signed the very moment of the revocation: refused too.
        let e = verify(&log_with_revocation(
            "2026-03-02T09:30:00Z",
            "2026-03-02T09:30:00Z",
        ))
        .unwrap_err();
        assert!(matches!(e.what, Failure::KeyRevoked { .. }), "{e}");
        // Signed while the key was valid: the later revocation changes nothing.
        let checked = verify(&log_with_revocation(
            "2026-03-02T09:15:00Z",
            "2026-03-02T09:30:00Z",
        ))
        .unwrap();
        assert_eq!(checked.officer_signatures, 1);
    }

    #[test]
    fn an_event_sealed_by_an_unknown_notary_is_refused() {
        let l = log("2026-03-02T09:59:00Z");
        let mut v = LogVerifier::new(
            [PublicKey(SigningKey::from_bytes(&[8; 32]).verifying_key())],
            true,
        );
        let e = v.check(1, &l[0]).unwrap_err();
        assert!(
            matches!(e.what, Failure::Seal(SealError::UnknownNotaryKey(_))),
            "{e}"
        );
    }
}
