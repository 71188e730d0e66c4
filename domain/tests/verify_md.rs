//! `schemas/VERIFY.md`'s test vectors, recomputed from the inputs it gives with the functions the
//! service and its verifiers use. Each vector is the fenced block after a
//! `<!-- vector: NAME -->` line. The test fails when a block differs from what the code computes;
//! `SAOMA_UPDATE_VECTORS=1 cargo test -p saoma-domain --test verify_md` rewrites the blocks
//! (review the diff: a changed vector is a changed protocol).

use ed25519_dalek::SigningKey;
use saoma_domain::canonical::{canonical_object_bytes_without, Digest};
use saoma_domain::checkpoint::{self, Checkpoint};
use saoma_domain::envelope::{sign_envelope, signing_bytes};
use saoma_domain::ids::{CertificateNo, OfficerRef};
use saoma_domain::keys::{KeyId, PublicKey};
use saoma_domain::merkle;
use saoma_domain::seal::{recompute_hash, verify_stored, Actor, Chain, EventMeta, LogLeaf, Sealed};
use serde_json::{json, Value};
use std::path::PathBuf;

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas/VERIFY.md")
}

fn notary() -> SigningKey {
    SigningKey::from_bytes(&[0x07; 32])
}

fn device() -> SigningKey {
    SigningKey::from_bytes(&[0x2a; 32])
}

fn key_line(key: &SigningKey) -> String {
    let public = PublicKey(key.verifying_key());
    format!(
        "public key: {}\nkey id:     {}",
        public.to_base64(),
        public.key_id()
    )
}

/// The leaf data of RFC 6962's reference tests.
fn rfc6962_leaves() -> Vec<Digest> {
    [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|h| merkle::leaf_hash(&hex::decode(h).unwrap()))
    .collect()
}

/// A node source over all leaves: the hash of the perfect subtree (level, index).
fn node_of(leaves: &[Digest]) -> impl FnMut(u32, u64) -> Digest + '_ {
    |level, index| {
        let start = (index << level) as usize;
        merkle::root(&leaves[start..start + (1usize << level)])
    }
}

fn hex_list(hashes: &[Digest]) -> String {
    if hashes.is_empty() {
        return "(none)".into();
    }
    hashes
        .iter()
        .map(Digest::to_hex)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every vector of the document, by name, as its block's text.
fn vectors() -> Vec<(&'static str, String)> {
    let officer = OfficerRef::Certificate(CertificateNo::parse("HN-SCJ-000123").unwrap());
    let inspection = "0b5e6f3c-7d21-4a8e-9f10-2c3d4e5f6a7b";
    let device_time = "2026-03-02T01:59:58Z".parse().unwrap();
    let command_id: uuid::Uuid = "5d4c3b2a-1908-4776-8554-433221100fed".parse().unwrap();
    let envelope = sign_envelope(
        &json!({"type": "ShowCode", "inspection_id": inspection}),
        &officer,
        device_time,
        command_id,
        &device(),
    );
    let meta = EventMeta {
        recorded_at: "2026-03-02T02:00:00Z".parse().unwrap(),
        device_time: Some(device_time),
        late: false,
        actor: Actor::Officer {
            officer: officer.key(),
            key_id: KeyId::of(&device().verifying_key()),
        },
        command_id: Some(command_id),
    };
    // The second event of its stream, after a first one whose hash is given.
    let chain = Chain {
        version: 1,
        last_hash: Digest::of(b"the stream's first event"),
    };
    let sealed = Sealed::seal(
        format!("Inspection/{inspection}"),
        &chain,
        meta,
        Some(envelope.clone()),
        json!({"type": "CodeShown", "at": "2026-03-02T02:00:00Z"}),
        &notary(),
    );
    let event = serde_json::to_value(&sealed).unwrap();
    let event_text = event.to_string();
    let leaf = LogLeaf::from_stored(&event_text).unwrap();

    let leaves = rfc6962_leaves();
    let roots = (1..=8)
        .map(|n| format!("{n}: {}", merkle::root(&leaves[..n]).to_hex()))
        .collect::<Vec<_>>()
        .join("\n");
    let inclusion = (0..8)
        .map(|i| {
            let proof = merkle::inclusion_proof(i, 8, node_of(&leaves)).unwrap();
            format!("{i}: {}", hex_list(&proof))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let consistency = (1..=8)
        .map(|m| {
            let proof = merkle::consistency_proof(m, 8, node_of(&leaves)).unwrap();
            format!("{m}: {}", hex_list(&proof))
        })
        .collect::<Vec<_>>()
        .join("\n");

    let notary_public = PublicKey(notary().verifying_key());
    let example = Checkpoint {
        origin: "example.gov.cn/saoma".into(),
        size: 8,
        root: merkle::root(&leaves),
    };
    let note = checkpoint::sign(&example, &notary(), &notary_public);

    vec![
        ("envelope", serde_json::to_string_pretty(&envelope).unwrap()),
        (
            "envelope-signing-bytes",
            String::from_utf8(signing_bytes(&envelope).unwrap()).unwrap(),
        ),
        ("device-key", key_line(&device())),
        ("event", serde_json::to_string_pretty(&event).unwrap()),
        (
            "event-hashed-bytes",
            String::from_utf8(canonical_object_bytes_without(
                event.as_object().unwrap(),
                &["hash", "notary"],
            ))
            .unwrap(),
        ),
        ("event-hash", sealed.hash.to_hex()),
        ("notary-key", key_line(&notary())),
        ("leaf-data", String::from_utf8(leaf.data()).unwrap()),
        ("leaf-hash", leaf.tree_hash().to_hex()),
        ("roots", roots),
        ("inclusion-proofs", inclusion),
        ("consistency-proofs", consistency),
        ("checkpoint", note.trim_end_matches('\n').to_string()),
        (
            "note-key",
            format!(
                "key hash:     {}\nverifier key: {}",
                hex::encode(checkpoint::key_hash(&example.origin, &notary_public)),
                checkpoint::verifier_key(&example.origin, &notary_public)
            ),
        ),
    ]
}

/// The byte range of the body of the fenced block after `<!-- vector: name -->`.
fn block(doc: &str, name: &str) -> std::ops::Range<usize> {
    let marker = format!("<!-- vector: {name} -->\n");
    let at = doc
        .find(&marker)
        .unwrap_or_else(|| panic!("VERIFY.md has no vector {name}"));
    let fence = at + marker.len();
    assert!(
        doc[fence..].starts_with("```"),
        "vector {name}: no fenced block right after"
    );
    let start = fence + doc[fence..].find('\n').unwrap() + 1;
    let end = start
        + doc[start..]
            .find("```")
            .unwrap_or_else(|| panic!("vector {name}: unclosed block"));
    start..end
}

#[test]
fn every_vector_in_verify_md_is_what_the_code_computes() {
    let mut doc = std::fs::read_to_string(doc_path()).unwrap();
    let update = std::env::var_os("SAOMA_UPDATE_VECTORS").is_some();
    let mut stale = Vec::new();
    for (name, value) in vectors() {
        let range = block(&doc, name);
        let expected = format!("{value}\n");
        if doc[range.clone()] != expected {
            if update {
                doc.replace_range(range, &expected);
            } else {
                stale.push(name);
            }
        }
    }
    if update {
        std::fs::write(doc_path(), &doc).unwrap();
    }
    assert!(
        stale.is_empty(),
        "VERIFY.md's vectors {stale:?} differ from the code; rerun with SAOMA_UPDATE_VECTORS=1 \
         and review the diff"
    );
    let named = doc.matches("<!-- vector: ").count();
    assert_eq!(named, vectors().len(), "every vector block is checked");
}

/// The vectors also hold for an independent reading of the document: the event's hash is
/// recomputed from its JSON as printed, and every signature verifies as §3, §4 and §7 say.
#[test]
fn the_documented_values_verify_as_the_document_says() {
    let doc = std::fs::read_to_string(doc_path()).unwrap();
    let text = |name| doc[block(&doc, name)].trim_end().to_string();
    let event: Value = serde_json::from_str(&text("event")).unwrap();
    let hash = recompute_hash(&event).unwrap();
    assert_eq!(hash.to_hex(), text("event-hash"));
    assert_eq!(event["hash"], text("event-hash"));
    let notary_public = PublicKey(notary().verifying_key());
    let chain = Chain {
        version: 1,
        last_hash: Digest::of(b"the stream's first event"),
    };
    verify_stored(&event, &chain, |id| {
        (*id == notary_public.key_id()).then_some(notary_public)
    })
    .expect("the documented event verifies");

    let envelope: Value = serde_json::from_str(&text("envelope")).unwrap();
    assert_eq!(envelope, event["command"]);
    let bytes = signing_bytes(&envelope).unwrap();
    assert_eq!(
        String::from_utf8(bytes.clone()).unwrap(),
        text("envelope-signing-bytes")
    );
    let signature = serde_json::from_value(envelope["signature"].clone()).unwrap();
    assert!(PublicKey(device().verifying_key()).verify(&bytes, &signature));

    // The leaf data is the canonical {hash, notary} of the event, by hand.
    let leaf_data = format!(
        r#"{{"hash":{},"notary":{{"key_id":{},"signature":{}}}}}"#,
        event["hash"], event["notary"]["key_id"], event["notary"]["signature"]
    );
    assert_eq!(leaf_data, text("leaf-data"));
    let mut prefixed = vec![0u8];
    prefixed.extend_from_slice(leaf_data.as_bytes());
    assert_eq!(Digest::of(&prefixed).to_hex(), text("leaf-hash"));

    // RFC 6962's published root of its eight reference leaves.
    assert!(text("roots")
        .ends_with("8: 5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"));

    let note = format!("{}\n", text("checkpoint"));
    let opened = checkpoint::open(&note, &notary_public).expect("the documented note opens");
    assert_eq!(
        (opened.origin.as_str(), opened.size),
        ("example.gov.cn/saoma", 8)
    );
    let other = PublicKey(device().verifying_key());
    assert!(checkpoint::open(&note, &other).is_err());
}
