//! Sealed events: every stored event carries its stream position, the previous event's hash,
//! its own SHA-256 hash over RFC 8785 bytes and the service's notary signature over that hash.

use crate::canonical::{Digest, ObjectWriter};
use crate::keys::{KeyId, Notary, PublicKey, SignatureBytes};
use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Who caused an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// An officer, through a command signed with a registered device key.
    Officer { officer: String, key_id: KeyId },
    /// Someone holding the code's token (the enterprise, on its phone).
    TokenHolder,
    /// An administrator of the registries, authenticated by the admin credential.
    Admin { name: String },
    /// The service itself (time-based transitions).
    System,
}

/// Facts about how and when an event came to be, covered by its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EventMeta {
    /// When the service received the command (its own clock).
    #[serde(deserialize_with = "crate::time::utc")]
    pub recorded_at: DateTime<Utc>,
    /// The officer device's clock at signing, which the rules judge.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::time::option_utc"
    )]
    pub device_time: Option<DateTime<Utc>>,
    /// The command arrived later than the policy's "late" threshold but within its limit.
    #[serde(default)]
    pub late: bool,
    pub actor: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<Uuid>,
}

impl EventMeta {
    /// The time the rules judge: the device's clock when there is one, else the service's.
    pub fn effective_time(&self) -> DateTime<Utc> {
        self.device_time.unwrap_or(self.recorded_at)
    }
}

/// The notary's signature over an event hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NotarySeal {
    pub key_id: KeyId,
    pub signature: SignatureBytes,
}

/// Position and hash chain of one stream, kept in every aggregate's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Chain {
    /// Number of events in the stream so far (the last event's sequence).
    pub version: u64,
    pub last_hash: Digest,
}

impl Chain {
    pub fn advance(&mut self, sequence: u64, hash: Digest) {
        self.version = sequence;
        self.last_hash = hash;
    }
}

/// A stored event: body plus everything that makes it verifiable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Sealed<E> {
    /// `{aggregate_type}/{aggregate_id}`.
    pub stream: String,
    pub sequence: u64,
    pub prev_hash: Digest,
    pub meta: EventMeta,
    /// The originating signed command exactly as received, so anyone can re-check the officer's
    /// signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Map<String, Value>>")]
    pub command: Option<Value>,
    pub event: E,
    pub hash: Digest,
    pub notary: NotarySeal,
}

/// The hash input of a sealed event: the RFC 8785 bytes of its members without `hash` and
/// `notary`, written member by member in their order (without first copying the officer's
/// command into a new JSON tree), and where its `event` and `meta` members end.
fn hash_input<E: Serialize>(
    stream: &str,
    sequence: u64,
    prev_hash: &Digest,
    meta: &EventMeta,
    command: Option<&Value>,
    event: &E,
) -> (Vec<u8>, usize, usize) {
    let mut out = Vec::with_capacity(2048);
    let mut object = ObjectWriter::new(&mut out);
    if let Some(command) = command {
        object.value("command", command);
    }
    let after_event = object.member("event", event).written();
    let after_meta = object.member("meta", meta).written();
    object
        .member("prev_hash", prev_hash)
        .member("sequence", &sequence)
        .member("stream", stream);
    object.end();
    (out, after_event, after_meta)
}

/// The stored text: the hash input with `hash` and `notary` written in where RFC 8785's order
/// puts them, after `event` and after `meta`. The same bytes as `canonical_bytes` of the event
/// (a test holds them to it), made without writing the other members a second time.
fn stored_text(
    (input, after_event, after_meta): (Vec<u8>, usize, usize),
    hash: &Digest,
    notary: &NotarySeal,
) -> String {
    let mut text = Vec::with_capacity(input.len() + 256);
    text.extend_from_slice(&input[..after_event]);
    text.extend_from_slice(b",\"hash\":");
    // Both serialise canonically as they are: a string of hex digits, and an object whose
    // two string members are declared in RFC 8785's order.
    serde_json::to_writer(&mut text, hash).expect("writing to a Vec");
    text.extend_from_slice(&input[after_event..after_meta]);
    text.extend_from_slice(b",\"notary\":");
    serde_json::to_writer(&mut text, notary).expect("writing to a Vec");
    text.extend_from_slice(&input[after_meta..]);
    String::from_utf8(text).expect("RFC 8785 bytes are UTF-8")
}

impl<E: Serialize> Sealed<E> {
    /// Seals `event` as the next one after `chain` in `stream`.
    pub fn seal(
        stream: String,
        chain: &Chain,
        meta: EventMeta,
        command: Option<Value>,
        event: E,
        notary: &dyn Notary,
    ) -> Self {
        Self::seal_stored(stream, chain, meta, command, event, notary).0
    }

    /// Seals `event` as [`Sealed::seal`] does, and gives its stored text too: the event's RFC
    /// 8785 bytes, made from the hash input rather than written a second time.
    pub fn seal_stored(
        stream: String,
        chain: &Chain,
        meta: EventMeta,
        command: Option<Value>,
        event: E,
        notary: &dyn Notary,
    ) -> (Self, String) {
        let sequence = chain.version + 1;
        let prev_hash = chain.last_hash;
        let input = hash_input(
            &stream,
            sequence,
            &prev_hash,
            &meta,
            command.as_ref(),
            &event,
        );
        let hash = Digest::of(&input.0);
        let notary = NotarySeal {
            key_id: notary.key_id(),
            signature: notary.sign(&hash.0),
        };
        let text = stored_text(input, &hash, &notary);
        let sealed = Sealed {
            stream,
            sequence,
            prev_hash,
            meta,
            command,
            event,
            hash,
            notary,
        };
        (sealed, text)
    }
}

impl<E: DomainEvent> DomainEvent for Sealed<E> {
    fn event_type(&self) -> String {
        self.event.event_type()
    }

    fn event_version(&self) -> String {
        self.event.event_version()
    }
}

/// What is wrong with a stored event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("event is not a sealed event object: {0}")]
    Malformed(String),
    #[error("event hash does not match its content")]
    HashMismatch,
    #[error("previous-hash link is broken")]
    ChainBroken,
    #[error("sequence {found} where {expected} was expected")]
    Sequence { expected: u64, found: u64 },
    #[error("notary key {0} is unknown")]
    UnknownNotaryKey(KeyId),
    #[error("notary signature does not verify")]
    BadNotarySignature,
}

/// Recomputes the hash of a stored event from its JSON exactly as stored, so a verifier never
/// depends on this crate's types.
pub fn recompute_hash(stored: &Value) -> Result<Digest, SealError> {
    let obj = stored
        .as_object()
        .ok_or_else(|| SealError::Malformed("not an object".into()))?;
    Ok(Digest::of(
        &crate::canonical::canonical_object_bytes_without(obj, &["hash", "notary"]),
    ))
}

/// Checks one stored event: its hash, its link to `chain`, and the notary signature with
/// the key the `notary_key` look-up returns. Returns the event's hash.
pub fn verify_stored(
    stored: &Value,
    chain: &Chain,
    notary_key: impl Fn(&KeyId) -> Option<PublicKey>,
) -> Result<Digest, SealError> {
    #[derive(Deserialize)]
    struct Head {
        sequence: u64,
        prev_hash: Digest,
        hash: Digest,
        notary: NotarySeal,
    }
    let head: Head =
        serde_json::from_value(stored.clone()).map_err(|e| SealError::Malformed(e.to_string()))?;
    if head.sequence != chain.version + 1 {
        return Err(SealError::Sequence {
            expected: chain.version + 1,
            found: head.sequence,
        });
    }
    if head.prev_hash != chain.last_hash {
        return Err(SealError::ChainBroken);
    }
    if recompute_hash(stored)? != head.hash {
        return Err(SealError::HashMismatch);
    }
    let key = notary_key(&head.notary.key_id)
        .ok_or_else(|| SealError::UnknownNotaryKey(head.notary.key_id.clone()))?;
    if !key.verify(&head.hash.0, &head.notary.signature) {
        return Err(SealError::BadNotarySignature);
    }
    Ok(head.hash)
}

/// Parses a stored event into its typed form.
pub fn parse_stored<E: DeserializeOwned>(stored: &Value) -> Result<Sealed<E>, SealError> {
    // `&Value` is a deserializer itself: no copy of the event.
    Sealed::<E>::deserialize(stored).map_err(|e| SealError::Malformed(e.to_string()))
}

/// Parses a stored event's JSON text into its typed form without the officer's command
/// (`command` is `None`), for readers that never look at it (the views): the parser skips over
/// the command's text instead of building a JSON tree of it.
pub fn parse_stored_without_command<E: DeserializeOwned>(
    text: &str,
) -> Result<Sealed<E>, SealError> {
    #[derive(Deserialize)]
    struct WithoutCommand<E> {
        stream: String,
        sequence: u64,
        prev_hash: Digest,
        meta: EventMeta,
        event: E,
        hash: Digest,
        notary: NotarySeal,
    }
    let s: WithoutCommand<E> =
        serde_json::from_str(text).map_err(|e| SealError::Malformed(e.to_string()))?;
    Ok(Sealed {
        stream: s.stream,
        sequence: s.sequence,
        prev_hash: s.prev_hash,
        meta: s.meta,
        command: None,
        event: s.event,
        hash: s.hash,
        notary: s.notary,
    })
}

/// An event as a leaf of the global log's Merkle tree: its `hash` and `notary` members. The hash
/// covers everything else the event holds, so the leaf commits to all of it and to the notary's
/// signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLeaf {
    pub hash: Digest,
    pub notary: NotarySeal,
}

impl LogLeaf {
    /// Reads the leaf's members out of a stored event's JSON text, skipping the rest.
    pub fn from_stored(text: &str) -> Result<Self, SealError> {
        serde_json::from_str(text).map_err(|e| SealError::Malformed(e.to_string()))
    }

    /// Reads the leaf's members out of a stored event's JSON value.
    pub fn from_value(event: &Value) -> Result<Self, SealError> {
        LogLeaf::deserialize(event).map_err(|e| SealError::Malformed(e.to_string()))
    }

    /// The leaf data (schemas/VERIFY.md): RFC 8785 bytes of
    /// `{"hash":"…","notary":{"key_id":"…","signature":"…"}}`.
    pub fn data(&self) -> Vec<u8> {
        // Written out directly, members in canonical order: this runs once per event whenever
        // a tree is built or checked. A test holds it to `canonical_bytes`.
        let mut out = Vec::with_capacity(192);
        out.extend_from_slice(b"{\"hash\":\"");
        out.extend_from_slice(self.hash.to_hex().as_bytes());
        out.extend_from_slice(b"\",\"notary\":{\"key_id\":");
        // serde_json escapes strings as RFC 8785 does (see `canonical`).
        serde_json::to_writer(&mut out, &self.notary.key_id.0).expect("writing to a Vec");
        out.extend_from_slice(b",\"signature\":\"");
        out.extend_from_slice(self.notary.signature.to_base64().as_bytes());
        out.extend_from_slice(b"\"}}");
        out
    }

    /// The leaf's hash in the tree: SHA-256(0x00 ‖ data).
    pub fn tree_hash(&self) -> Digest {
        crate::merkle::leaf_hash(&self.data())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use serde_json::json;

    fn notary() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn meta() -> EventMeta {
        EventMeta {
            recorded_at: "2026-03-02T01:00:00Z".parse().unwrap(),
            device_time: None,
            late: false,
            actor: Actor::System,
            command_id: None,
        }
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Ping {
        n: u32,
    }

    fn chain_of(n: u32) -> Vec<Value> {
        let key = notary();
        let mut chain = Chain::default();
        (0..n)
            .map(|i| {
                let s = Sealed::seal("T/1".into(), &chain, meta(), None, Ping { n: i }, &key);
                chain.advance(s.sequence, s.hash);
                serde_json::to_value(&s).unwrap()
            })
            .collect()
    }

    fn verify_all(events: &[Value]) -> Result<(), (usize, SealError)> {
        let key = PublicKey(notary().verifying_key());
        let mut chain = Chain::default();
        for (i, e) in events.iter().enumerate() {
            let h = verify_stored(e, &chain, |id| (*id == key.key_id()).then_some(key))
                .map_err(|err| (i, err))?;
            chain.advance(chain.version + 1, h);
        }
        Ok(())
    }

    #[test]
    fn the_stored_text_and_the_hash_are_the_canonical_bytes_of_the_event() {
        let key = notary();
        let command = json!({
            "command": {"type": "ShowCode", "reason": "投诉 \"举报\"\n\u{1F600}", "items": [1, 2.5, null]},
            "signature": "c2ln", "device_time": "2026-03-02T09:00:00Z", "z": {"b": true, "a": false}
        });
        let meta = EventMeta {
            device_time: Some("2026-03-02T00:59:00Z".parse().unwrap()),
            actor: Actor::Officer {
                officer: "ZF630100001".into(),
                key_id: KeyId("k1".into()),
            },
            command_id: Some(Uuid::from_u128(7)),
            ..meta()
        };
        let mut chain = Chain::default();
        for command in [Some(command), None] {
            let (sealed, text) = Sealed::seal_stored(
                "T/1".into(),
                &chain,
                meta.clone(),
                command,
                Ping { n: 3 },
                &key,
            );
            chain.advance(sealed.sequence, sealed.hash);
            let stored = serde_json::to_value(&sealed).unwrap();
            assert_eq!(text.as_bytes(), crate::canonical::canonical_bytes(&sealed));
            assert_eq!(recompute_hash(&stored), Ok(sealed.hash));
        }
    }

    #[test]
    fn parsing_without_the_command_gives_the_event_with_no_command() {
        let command = json!({"command": {"type": "ShowCode", "items": [1, {"a": "检查"}]}, "signature": "c2ln"});
        let (sealed, text) = Sealed::seal_stored(
            "T/1".into(),
            &Chain::default(),
            meta(),
            Some(command),
            Ping { n: 3 },
            &notary(),
        );
        let parsed: Sealed<Ping> = parse_stored_without_command(&text).unwrap();
        assert_eq!(
            parsed,
            Sealed {
                command: None,
                ..sealed
            }
        );
        assert!(matches!(
            parse_stored_without_command::<Ping>(&text.replace("\"n\":3", "\"n\":\"3\"")),
            Err(SealError::Malformed(_))
        ));
    }

    #[test]
    fn a_sealed_chain_verifies() {
        assert_eq!(verify_all(&chain_of(5)), Ok(()));
    }

    #[test]
    fn changing_one_value_breaks_the_hash() {
        let mut events = chain_of(3);
        events[1]["event"]["n"] = json!(99);
        assert_eq!(verify_all(&events), Err((1, SealError::HashMismatch)));
    }

    #[test]
    fn removing_an_event_breaks_the_sequence() {
        let mut events = chain_of(3);
        events.remove(1);
        assert_eq!(
            verify_all(&events),
            Err((
                1,
                SealError::Sequence {
                    expected: 2,
                    found: 3
                }
            ))
        );
    }

    #[test]
    fn a_replaced_notary_signature_is_caught() {
        let mut events = chain_of(2);
        let other = SigningKey::from_bytes(&[9; 32]);
        let sig = Notary::sign(&other, &[0; 32]);
        events[0]["notary"]["signature"] = json!(sig.to_base64());
        assert_eq!(verify_all(&events), Err((0, SealError::BadNotarySignature)));
    }

    #[test]
    fn key_order_in_storage_does_not_matter() {
        let events = chain_of(1);
        let text = serde_json::to_string(&events[0]).unwrap();
        // Reorder by round-tripping through a BTreeMap-backed value with keys sorted.
        let reordered: std::collections::BTreeMap<String, Value> =
            serde_json::from_str(&text).unwrap();
        let v = serde_json::to_value(reordered).unwrap();
        assert_eq!(verify_all(&[v]), Ok(()));
    }

    #[test]
    fn a_log_leaf_is_the_canonical_hash_and_notary_of_the_stored_event() {
        let event = chain_of(1).remove(0);
        let leaf = LogLeaf::from_stored(&event.to_string()).unwrap();
        let expected = format!(
            r#"{{"hash":"{}","notary":{{"key_id":"{}","signature":"{}"}}}}"#,
            event["hash"].as_str().unwrap(),
            event["notary"]["key_id"].as_str().unwrap(),
            event["notary"]["signature"].as_str().unwrap(),
        );
        assert_eq!(String::from_utf8(leaf.data()).unwrap(), expected);
        assert_eq!(leaf.data(), crate::canonical::canonical_bytes(&leaf));
        // A key id that needs escaping is escaped as RFC 8785 has it.
        let mut odd = leaf.clone();
        odd.notary.key_id = KeyId("a\"b\u{1}é".into());
        assert_eq!(odd.data(), crate::canonical::canonical_bytes(&odd));
        let mut prefixed = vec![0u8];
        prefixed.extend_from_slice(expected.as_bytes());
        assert_eq!(leaf.tree_hash(), Digest::of(&prefixed));
        assert!(matches!(
            LogLeaf::from_stored(r#"{"hash":"00"}"#),
            Err(SealError::Malformed(_))
        ));
    }
}
