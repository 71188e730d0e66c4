//! Public keys, key ids and signatures as they appear on the wire.

use crate::canonical::Digest;
use crate::schema::string_schema;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::fmt;

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
    pub fn verify(&self, message: &[u8], signature: &SignatureBytes) -> bool {
        self.0.verify_strict(message, &signature.0).is_ok()
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
