//! Public keys, key ids and signatures as they appear on the wire.

use crate::canonical::Digest;
use crate::schema::string_schema;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use curve25519_dalek::constants::EIGHT_TORSION;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::LazyLock;

/// The id of an ed25519 public key: the first 8 bytes of SHA-256 of the key, in hex.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyId(pub String);

impl KeyId {
    pub fn of(key: &VerifyingKey) -> Self {
        KeyId(hex::encode(&Digest::of(key.as_bytes()).0[..8]))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

/// The canonical encodings of the eight points of small order.
static SMALL_ORDER_ENCODINGS: LazyLock<[[u8; 32]; 8]> =
    LazyLock::new(|| EIGHT_TORSION.map(|point| point.compress().to_bytes()));

/// An ed25519 public key, base64 (standard, padded) on the wire.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(pub VerifyingKey);

impl PublicKey {
    pub fn key_id(&self) -> KeyId {
        KeyId::of(&self.0)
    }

    pub fn to_base64(&self) -> String {
        B64.encode(self.0.as_bytes())
    }

    pub fn from_base64(s: &str) -> Option<Self> {
        let bytes: [u8; 32] = B64.decode(s).ok()?.try_into().ok()?;
        VerifyingKey::from_bytes(&bytes).ok().map(PublicKey)
    }

    /// Strict verification: no malleable or small-order signatures.
    ///
    /// The verdict of ed25519-dalek's `verify_strict`, without its decompression of `R` (about
    /// a sixth of its cost). `verify_strict` is `verify` (which recomputes `R` from `s`, the key
    /// and the message and compares the encodings) plus three refusals: a key of small order,
    /// an `R` that does not decompress, an `R` of small order. When `verify` holds, `R` is the
    /// canonical encoding of the point it recomputed, so it decompresses, and it has small order
    /// exactly when it is one of the eight canonical encodings of the points of small order.
    pub fn verify(&self, message: &[u8], signature: &SignatureBytes) -> bool {
        !self.0.is_weak()
            && !SMALL_ORDER_ENCODINGS.contains(signature.0.r_bytes())
            && ed25519_dalek::Verifier::verify(&self.0, message, &signature.0).is_ok()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PublicKey::from_base64(&s)
            .ok_or_else(|| serde::de::Error::custom("expected a base64 ed25519 public key"))
    }
}

/// An ed25519 signature, base64 (standard, padded) on the wire.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SignatureBytes(pub Signature);

impl SignatureBytes {
    pub fn to_base64(&self) -> String {
        B64.encode(self.0.to_bytes())
    }

    pub fn from_base64(s: &str) -> Option<Self> {
        let bytes: [u8; 64] = B64.decode(s).ok()?.try_into().ok()?;
        Some(SignatureBytes(Signature::from_bytes(&bytes)))
    }
}

impl fmt::Debug for SignatureBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.to_base64())
    }
}

impl Serialize for SignatureBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for SignatureBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        SignatureBytes::from_base64(&s)
            .ok_or_else(|| serde::de::Error::custom("expected a base64 ed25519 signature"))
    }
}

string_schema!(KeyId, "KeyId", {
    "description": "key id: the first 8 bytes of SHA-256 of the ed25519 public key, lower-case hex",
    "pattern": "^[0-9a-f]{16}$"
});
string_schema!(PublicKey, "PublicKey", {
    "description": "ed25519 public key, 32 bytes in standard padded base64",
    "contentEncoding": "base64",
    "pattern": "^[A-Za-z0-9+/]{43}=$"
});
string_schema!(SignatureBytes, "Signature", {
    "description": "ed25519 signature, 64 bytes in standard padded base64",
    "contentEncoding": "base64",
    "pattern": "^[A-Za-z0-9+/]{86}==$"
});

/// Signs with an in-memory key. Key material is only ever loaded in `services`; the domain
/// receives a signer through this trait so that it stays free of IO.
pub trait Notary: Send + Sync {
    fn key_id(&self) -> KeyId;
    fn sign(&self, message: &[u8]) -> SignatureBytes;
}

impl Notary for SigningKey {
    fn key_id(&self) -> KeyId {
        KeyId::of(&self.verifying_key())
    }

    fn sign(&self, message: &[u8]) -> SignatureBytes {
        SignatureBytes(Signer::sign(self, message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::edwards::CompressedEdwardsY;
    use curve25519_dalek::scalar::Scalar;
    use sha2::{Digest as _, Sha512};

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    /// A signature `(R, s)` over `message` whose `R` is `r`, made with the secret scalar so that
    /// the verification equation holds: `s = k·a` makes `[s]B - [k]A` the identity, so `r` must
    /// encode the identity for plain `verify` to accept it.
    fn with_r(signer: &SigningKey, r: [u8; 32], message: &[u8]) -> SignatureBytes {
        let a = signer.to_scalar();
        let k = Scalar::from_hash(
            Sha512::new()
                .chain_update(r)
                .chain_update(signer.verifying_key().as_bytes())
                .chain_update(message),
        );
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&r);
        bytes[32..].copy_from_slice((k * a).as_bytes());
        SignatureBytes(Signature::from_bytes(&bytes))
    }

    #[test]
    fn the_small_order_encodings_are_eight_distinct_points_of_small_order() {
        let encodings = *SMALL_ORDER_ENCODINGS;
        for (i, e) in encodings.iter().enumerate() {
            let point = CompressedEdwardsY(*e).decompress().expect("decompresses");
            assert!(point.is_small_order());
            assert!(!encodings[..i].contains(e), "distinct");
        }
        let identity = {
            let mut b = [0u8; 32];
            b[0] = 1;
            b
        };
        assert!(encodings.contains(&identity));
    }

    #[test]
    fn verification_agrees_with_verify_strict() {
        let signer = key(7);
        let public = PublicKey(signer.verifying_key());
        let message = b"saoma";
        // An honest signature, and one over another message.
        let honest = SignatureBytes(Signer::sign(&signer, message));
        assert!(public.verify(message, &honest));
        assert!(!public.verify(b"other", &honest));

        // R = the identity: plain verify accepts it, verify_strict and ours refuse it.
        let identity = EIGHT_TORSION[0].compress().to_bytes();
        let small_r = with_r(&signer, identity, message);
        assert!(ed25519_dalek::Verifier::verify(&public.0, message, &small_r.0).is_ok());
        assert!(public.0.verify_strict(message, &small_r.0).is_err());
        assert!(!public.verify(message, &small_r));

        // Every other small-order R fails both ways (the equation gives the identity).
        for point in EIGHT_TORSION.iter().skip(1) {
            let sig = with_r(&signer, point.compress().to_bytes(), message);
            assert!(public.0.verify_strict(message, &sig.0).is_err());
            assert!(!public.verify(message, &sig));
        }

        // A key of small order (the identity) with R = identity and s = 0 satisfies plain
        // verify for every message; both strict checks refuse it.
        let weak = PublicKey(VerifyingKey::from_bytes(&identity).expect("a point"));
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&identity);
        let forged = SignatureBytes(Signature::from_bytes(&bytes));
        assert!(ed25519_dalek::Verifier::verify(&weak.0, message, &forged.0).is_ok());
        assert!(weak.0.verify_strict(message, &forged.0).is_err());
        assert!(!weak.verify(message, &forged));

        // Random keys and messages, tampered or not: the same verdict as verify_strict.
        for seed in 0..64u8 {
            let signer = key(seed);
            let public = PublicKey(signer.verifying_key());
            let message = [seed; 40];
            let bytes = Signer::sign(&signer, &message).to_bytes();
            for tamper in [None, Some(0usize), Some(31), Some(32), Some(63)] {
                let mut b = bytes;
                if let Some(i) = tamper {
                    b[i] ^= 1 << (seed % 8);
                }
                let sig = SignatureBytes(Signature::from_bytes(&b));
                assert_eq!(
                    public.verify(&message, &sig),
                    public.0.verify_strict(&message, &sig.0).is_ok(),
                    "seed {seed}, tamper {tamper:?}"
                );
            }
        }
    }
}
