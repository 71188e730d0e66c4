//! Signed tree heads: a C2SP tlog-checkpoint body in a C2SP signed note, signed by the notary.
//! The test vector below (seed `[7; 32]`, the RFC 6962 root of eight leaves) is asserted here:
//!
//! ```text
//! example.gov.cn/saoma
//! 8
//! XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=
//!
//! — example.gov.cn/saoma cCvH2fzIHF+NeQ3jRqyeHRWoXR4Yu/DaeYaCTfVr/eVuhvZ+CxG23SmbB7WZffcF0mXJlt+6eVFn+zY8hUPaDWLgXgs=
//! ```
//!
//! The signature line holds the 4-byte key hash and the ed25519 signature of the body (through
//! its last newline, before the blank line). The key name is the log's origin, so the origin
//! must be a valid note key name: non-empty, without whitespace or `+`.

use crate::canonical::Digest;
use crate::keys::{Notary, PublicKey, SignatureBytes};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::Signature;
use sha2::{Digest as _, Sha256};

/// A tree head of the log named `origin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Digest,
}

/// Why a signed note does not give a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("malformed signed note: {0}")]
    MalformedNote(&'static str),
    #[error("malformed checkpoint: {0}")]
    MalformedBody(&'static str),
    #[error("the note has no signature by this key")]
    NoSignature,
    #[error("the note's signature by this key does not verify")]
    BadSignature,
}

impl NoteError {
    /// A stable, machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            NoteError::MalformedNote(_) => "malformed_note",
            NoteError::MalformedBody(_) => "malformed_body",
            NoteError::NoSignature => "no_signature",
            NoteError::BadSignature => "bad_signature",
        }
    }
}

impl Checkpoint {
    /// The note text: origin, decimal size and base64 root, each on its own line.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root.0)
        )
    }

    /// Parses a body. Extension lines after the root are allowed (non-empty) and ignored.
    pub fn parse(body: &str) -> Result<Self, NoteError> {
        use NoteError::MalformedBody;
        if body.contains(|c: char| c.is_ascii_control() && c != '\n') {
            return Err(MalformedBody("control character"));
        }
        let mut lines = body
            .strip_suffix('\n')
            .ok_or(MalformedBody("no final newline"))?
            .split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or(MalformedBody("empty origin"))?;
        let size = lines
            .next()
            .and_then(parse_size)
            .ok_or(MalformedBody("the tree size is not a decimal number"))?;
        let root = lines
            .next()
            .and_then(|r| B64.decode(r).ok()?.try_into().ok())
            .ok_or(MalformedBody("the root hash is not 32 bytes in base64"))?;
        if lines.any(str::is_empty) {
            return Err(MalformedBody("empty extension line"));
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root: Digest(root),
        })
    }
}

/// A decimal u64 without sign or leading zeros.
fn parse_size(s: &str) -> Option<u64> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}

/// The signed-note key hash of an ed25519 key: the first 4 bytes of
/// SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key).
pub fn key_hash(name: &str, key: &PublicKey) -> [u8; 4] {
    let hash = Sha256::new()
        .chain_update(name)
        .chain_update([b'\n', 1])
        .chain_update(key.0.as_bytes())
        .finalize();
    [hash[0], hash[1], hash[2], hash[3]]
}

/// The verifier key others configure to check our notes: `<name>+<key hash>+<base64(0x01 ‖ key)>`.
pub fn verifier_key(name: &str, key: &PublicKey) -> String {
    let mut typed = vec![1];
    typed.extend_from_slice(key.0.as_bytes());
    format!(
        "{name}+{}+{}",
        hex::encode(key_hash(name, key)),
        B64.encode(typed)
    )
}

/// The signed note of `checkpoint`, signed by `notary`, whose public key is `public`, under the
/// key name `checkpoint.origin`.
pub fn sign(checkpoint: &Checkpoint, notary: &dyn Notary, public: &PublicKey) -> String {
    let body = checkpoint.body();
    let line = signature_line(&checkpoint.origin, &body, notary, public);
    format!("{body}\n{line}")
}

fn signature_line(name: &str, text: &str, notary: &dyn Notary, public: &PublicKey) -> String {
    debug_assert!(is_key_name(name), "{name:?} is not a key name");
    debug_assert_eq!(notary.key_id(), public.key_id());
    let mut signature = key_hash(name, public).to_vec();
    signature.extend_from_slice(&notary.sign(text.as_bytes()).0.to_bytes());
    format!("— {name} {}\n", B64.encode(signature))
}

/// The checkpoint of a signed note that `key` signed under the key name of its origin.
/// Signatures by other keys are ignored; every one by this key must verify.
pub fn open(note: &str, key: &PublicKey) -> Result<Checkpoint, NoteError> {
    let (text, signatures) = split_note(note)?;
    let checkpoint = Checkpoint::parse(text)?;
    let hash = key_hash(&checkpoint.origin, key);
    let mut verified = false;
    for (name, signature) in signatures {
        if name != checkpoint.origin || signature[..4] != hash {
            continue;
        }
        let signature: [u8; 64] = signature[4..]
            .try_into()
            .map_err(|_| NoteError::BadSignature)?;
        let signature = SignatureBytes(Signature::from_bytes(&signature));
        if !key.verify(text.as_bytes(), &signature) {
            return Err(NoteError::BadSignature);
        }
        verified = true;
    }
    if verified {
        Ok(checkpoint)
    } else {
        Err(NoteError::NoSignature)
    }
}

/// A key name: non-empty, no whitespace, no `+`.
fn is_key_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(|c: char| c.is_whitespace() || c == '+')
}

/// Signature lines as (key name, key hash ‖ signature bytes).
type Signatures<'a> = Vec<(&'a str, Vec<u8>)>;

/// The text of a note (through its last newline before the blank line) and its signatures.
fn split_note(note: &str) -> Result<(&str, Signatures<'_>), NoteError> {
    use NoteError::MalformedNote;
    if note.contains(|c: char| c.is_ascii_control() && c != '\n') {
        return Err(MalformedNote("control character"));
    }
    let blank = note
        .rfind("\n\n")
        .ok_or(MalformedNote("no blank line before the signatures"))?;
    let (text, signatures) = (&note[..blank + 1], &note[blank + 2..]);
    let signatures = signatures
        .strip_suffix('\n')
        .ok_or(MalformedNote("no signature lines"))?;
    let signatures = signatures
        .split('\n')
        .map(|line| {
            let (name, signature) = line
                .strip_prefix("— ")
                .and_then(|rest| rest.split_once(' '))
                .filter(|(name, _)| is_key_name(name))
                .ok_or(MalformedNote(
                    "a signature line is not \"— <key name> <base64>\"",
                ))?;
            let signature =
                B64.decode(signature)
                    .ok()
                    .filter(|s| s.len() >= 5)
                    .ok_or(MalformedNote(
                        "a signature is not base64 of at least 5 bytes",
                    ))?;
            Ok((name, signature))
        })
        .collect::<Result<_, _>>()?;
    Ok((text, signatures))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    const ORIGIN: &str = "example.gov.cn/saoma";
    /// The RFC 6962 test-vector root of 8 leaves (see `merkle`).
    const ROOT_8: &str = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328";

    fn key(seed: u8) -> (SigningKey, PublicKey) {
        let signer = SigningKey::from_bytes(&[seed; 32]);
        let public = PublicKey(signer.verifying_key());
        (signer, public)
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: ORIGIN.to_owned(),
            size: 8,
            root: Digest::from_hex(ROOT_8).unwrap(),
        }
    }

    fn signed() -> (String, PublicKey) {
        let (signer, public) = key(7);
        (sign(&checkpoint(), &signer, &public), public)
    }

    /// Re-encodes the signature of the note's first signature line after `change`.
    fn with_signature_bytes(note: &str, change: impl FnOnce(&mut Vec<u8>)) -> String {
        let (text, line) = note.split_once("\n\n").unwrap();
        let (prefix, b64) = line.trim_end().rsplit_once(' ').unwrap();
        let mut bytes = B64.decode(b64).unwrap();
        change(&mut bytes);
        format!("{text}\n\n{prefix} {}\n", B64.encode(bytes))
    }

    /// Seed 7, origin example.gov.cn/saoma, size 8 and the 8-leaf root: the exact note
    /// (ed25519 is deterministic; the same bytes come out of an independent implementation).
    #[test]
    fn the_test_vector_is_stable() {
        let (note, public) = signed();
        assert_eq!(
            note,
            "example.gov.cn/saoma\n\
             8\n\
             XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n\
             \n\
             \u{2014} example.gov.cn/saoma cCvH2fzIHF+NeQ3jRqyeHRWoXR4Yu/DaeYaCTfVr/eVuhvZ+CxG23SmbB7WZffcF0mXJlt+6eVFn+zY8hUPaDWLgXgs=\n"
        );
        assert_eq!(
            public.to_base64(),
            "6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw="
        );
        assert_eq!(
            verifier_key(ORIGIN, &public),
            "example.gov.cn/saoma+702bc7d9+AepKbGPinFIKvvVQexMuxfmVR3auvr57kkIe6mkURtIs"
        );
        assert_eq!(open(&note, &public), Ok(checkpoint()));
    }

    #[test]
    fn the_key_hash_is_that_of_the_spec() {
        let (_, public) = key(7);
        let mut bytes = ORIGIN.as_bytes().to_vec();
        bytes.push(0x0a);
        bytes.push(0x01);
        bytes.extend_from_slice(&public.0.to_bytes());
        let digest = Sha256::digest(&bytes);
        assert_eq!(key_hash(ORIGIN, &public), digest[..4]);
        assert_eq!(hex::encode(key_hash(ORIGIN, &public)), "702bc7d9");
    }

    /// The example of Go's golang.org/x/mod/sumdb/note, whose private key is
    /// `PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz`.
    #[test]
    fn notes_are_those_of_the_go_implementation() {
        let typed = B64
            .decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")
            .unwrap();
        assert_eq!(typed[0], 1);
        let signer = SigningKey::from_bytes(&typed[1..].try_into().unwrap());
        let public = PublicKey(signer.verifying_key());
        assert_eq!(
            verifier_key("PeterNeumann", &public),
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
        );
        let text = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";
        let line = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
        assert_eq!(signature_line("PeterNeumann", text, &signer, &public), line);
        let note = format!("{text}\n{line}");
        let (got, signatures) = split_note(&note).unwrap();
        assert_eq!(got, text);
        assert_eq!(signatures.len(), 1);
        assert_eq!(signatures[0].0, "PeterNeumann");
        assert_eq!(signatures[0].1[..4], key_hash("PeterNeumann", &public));
    }

    #[test]
    fn signed_checkpoints_open() {
        let (signer, public) = key(7);
        for (origin, size) in [("log", 0), ("example.gov.cn/saoma", 1), ("a/b/c", u64::MAX)] {
            let checkpoint = Checkpoint {
                origin: origin.to_owned(),
                size,
                root: Digest::of(origin.as_bytes()),
            };
            let note = sign(&checkpoint, &signer, &public);
            assert_eq!(open(&note, &public), Ok(checkpoint.clone()));
            assert_eq!(Checkpoint::parse(&checkpoint.body()), Ok(checkpoint));
        }
    }

    #[test]
    fn signatures_by_other_keys_are_ignored() {
        let (note, public) = signed();
        let (other, other_public) = key(8);
        let body = checkpoint().body();
        let foreign = [
            // The same name with another key, another name with this key, another algorithm.
            signature_line(ORIGIN, &body, &other, &other_public),
            signature_line("other.example/log", &body, &key(7).0, &public),
            format!("\u{2014} other.example/log {}\n", B64.encode([0xff; 40])),
        ]
        .concat();
        let note = format!("{note}{foreign}");
        assert_eq!(open(&note, &public), Ok(checkpoint()));
        assert_eq!(open(&note, &other_public), Ok(checkpoint()));
        assert_eq!(open(&note, &key(9).1), Err(NoteError::NoSignature));
    }

    #[test]
    fn tampered_notes_are_refused() {
        let (note, public) = signed();
        let refused = |note: &str| open(note, &public).unwrap_err();
        // A changed byte of the body.
        assert_eq!(
            refused(&note.replacen("\n8\n", "\n9\n", 1)),
            NoteError::BadSignature
        );
        assert_eq!(
            refused(&note.replacen("Xcna", "Ycna", 1)),
            NoteError::BadSignature
        );
        // A changed origin: the key name no longer matches it.
        assert_eq!(
            refused(&note.replacen("example.gov.cn/saoma\n", "example.gov.cn/saomb\n", 1)),
            NoteError::NoSignature
        );
        // A different key.
        assert_eq!(open(&note, &key(8).1), Err(NoteError::NoSignature));
        // A truncated or altered signature.
        let truncated = with_signature_bytes(&note, |s| s.truncate(67));
        assert_eq!(refused(&truncated), NoteError::BadSignature);
        let longer = with_signature_bytes(&note, |s| s.push(0));
        assert_eq!(refused(&longer), NoteError::BadSignature);
        let flipped = with_signature_bytes(&note, |s| s[40] ^= 1);
        assert_eq!(refused(&flipped), NoteError::BadSignature);
        // A bad signature by this key is refused even beside a good one.
        assert_eq!(
            refused(&format!("{note}{}", flipped.split_once("\n\n").unwrap().1)),
            NoteError::BadSignature
        );
        // Base64 cut short.
        let cut = format!("{}\n", &note[..note.len() - 2]);
        assert!(matches!(refused(&cut), NoteError::MalformedNote(_)));
    }

    #[test]
    fn malformed_notes_are_refused() {
        let (note, public) = signed();
        let body = checkpoint().body();
        let line = note.split_once("\n\n").unwrap().1;
        for bad in [
            // No blank line between the body and the signatures.
            note.replacen("\n\n", "\n", 1),
            // No signatures, or no final newline.
            format!("{body}\n"),
            note.trim_end().to_owned(),
            // Not an em dash, no space after it, or no key name.
            note.replacen('\u{2014}', "-", 1),
            note.replacen("\u{2014} ", "\u{2014}", 1),
            format!("{body}\n\u{2014}  {}", line.rsplit_once(' ').unwrap().1),
            // A signature of fewer than 5 bytes, or not base64.
            format!("{note}\u{2014} other {}\n", B64.encode([1, 2, 3, 4])),
            format!("{note}\u{2014} other !!!!\n"),
            // A control character.
            note.replacen("\n8\n", "\n8\r\n", 1),
            String::new(),
        ] {
            assert!(
                matches!(open(&bad, &public), Err(NoteError::MalformedNote(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn bodies_are_parsed_strictly() {
        let root = B64.encode(Digest::from_hex(ROOT_8).unwrap().0);
        let parse = |body: String| Checkpoint::parse(&body);
        assert_eq!(parse(format!("{ORIGIN}\n8\n{root}\n")), Ok(checkpoint()));
        // Extension lines are allowed and ignored.
        assert_eq!(
            parse(format!("{ORIGIN}\n8\n{root}\nextension one\ntwo\n")),
            Ok(checkpoint())
        );
        let zero = parse(format!("{ORIGIN}\n0\n{root}\n")).unwrap();
        assert_eq!(zero.size, 0);
        let short_root = B64.encode([0u8; 31]);
        let long_root = B64.encode([0u8; 33]);
        // 32 bytes whose last base64 character carries non-zero unused bits.
        let loose_root = format!("{}R=", &root[..root.len() - 2]);
        for bad in [
            format!("{ORIGIN}\n8\n{root}"),
            format!("\n8\n{root}\n"),
            format!("{ORIGIN}\n08\n{root}\n"),
            format!("{ORIGIN}\n+8\n{root}\n"),
            format!("{ORIGIN}\n-1\n{root}\n"),
            format!("{ORIGIN}\n 8\n{root}\n"),
            format!("{ORIGIN}\n\n{root}\n"),
            format!("{ORIGIN}\n18446744073709551616\n{root}\n"),
            format!("{ORIGIN}\n8\n{short_root}\n"),
            format!("{ORIGIN}\n8\n{long_root}\n"),
            format!("{ORIGIN}\n8\n{loose_root}\n"),
            format!("{ORIGIN}\n8\n{}\n", root.trim_end_matches('=')),
            format!("{ORIGIN}\n8\n{}\n", Digest::from_hex(ROOT_8).unwrap()),
            format!("{ORIGIN}\n8\n"),
            format!("{ORIGIN}\n8\n{root}\n\nextension\n"),
            format!("{ORIGIN}\t\n8\n{root}\n"),
            String::new(),
        ] {
            assert!(
                matches!(parse(bad.clone()), Err(NoteError::MalformedBody(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse(format!("{ORIGIN}\n18446744073709551615\n{root}\n")).map(|c| c.size),
            Ok(u64::MAX)
        );
    }

    #[test]
    fn codes_are_distinct() {
        let codes = [
            NoteError::MalformedNote("x").code(),
            NoteError::MalformedBody("x").code(),
            NoteError::NoSignature.code(),
            NoteError::BadSignature.code(),
        ];
        assert_eq!(
            codes,
            [
                "malformed_note",
                "malformed_body",
                "no_signature",
                "bad_signature"
            ]
        );
    }
}
