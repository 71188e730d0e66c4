//! Code tokens: the unguessable part of `{public_base_url}/c/{token}`. A token is the inspection
//! id and an HMAC-SHA256 tag under the service's token key (truncated to 128 bits), in
//! unpadded base64url: 43 characters, small enough for a robust QR code, and recomputable so
//! the officer's app can show its code again at any time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

const DOMAIN: &[u8] = b"saoma/code-token/v1";

#[derive(Clone)]
pub struct TokenKey([u8; 32]);

/// What a presented token turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCheck {
    Genuine(Uuid),
    /// Well-formed, naming this inspection, but with a wrong tag.
    Forged(Uuid),
    Malformed,
}

impl TokenKey {
    pub fn new(secret: [u8; 32]) -> Self {
        TokenKey(secret)
    }

    fn tag(&self, id: &Uuid) -> [u8; 16] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(DOMAIN);
        mac.update(id.as_bytes());
        let full = mac.finalize().into_bytes();
        full[..16].try_into().expect("16 of 32 bytes")
    }

    pub fn token_for(&self, id: &Uuid) -> String {
        let mut bytes = [0u8; 32];
        bytes[..16].copy_from_slice(id.as_bytes());
        bytes[16..].copy_from_slice(&self.tag(id));
        B64.encode(bytes)
    }

    pub fn check(&self, token: &str) -> TokenCheck {
        let Ok(bytes) = B64.decode(token.as_bytes()) else {
            return TokenCheck::Malformed;
        };
        let Ok(bytes) = <[u8; 32]>::try_from(bytes.as_slice()) else {
            return TokenCheck::Malformed;
        };
        let id = Uuid::from_bytes(bytes[..16].try_into().expect("16 bytes"));
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(DOMAIN);
        mac.update(id.as_bytes());
        // verify_truncated_left compares in constant time.
        match mac.verify_truncated_left(&bytes[16..]) {
            Ok(()) => TokenCheck::Genuine(id),
            Err(_) => TokenCheck::Forged(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_and_is_43_characters() {
        let key = TokenKey::new([5; 32]);
        let id = Uuid::from_u128(42);
        let t = key.token_for(&id);
        assert_eq!(t.len(), 43);
        assert_eq!(key.check(&t), TokenCheck::Genuine(id));
    }

    #[test]
    fn a_token_under_another_key_is_forged() {
        let id = Uuid::from_u128(42);
        let t = TokenKey::new([6; 32]).token_for(&id);
        assert_eq!(TokenKey::new([5; 32]).check(&t), TokenCheck::Forged(id));
    }

    #[test]
    fn a_character_of_the_tag_changed_is_forged_and_the_padding_bits_are_not_data() {
        let key = TokenKey::new([5; 32]);
        for n in 0..64u128 {
            let id = Uuid::from_u128(n * 7_919);
            let t = key.token_for(&id);
            let mut forged: Vec<char> = t.chars().collect();
            forged[30] = if forged[30] == 'A' { 'B' } else { 'A' };
            let forged: String = forged.into_iter().collect();
            assert_eq!(key.check(&forged), TokenCheck::Forged(id), "{t}");
        }
        // The 43rd character holds 4 bits and two zero padding bits: set one, and the token
        // does not decode.
        let t = key.token_for(&Uuid::from_u128(42));
        let mut bad: Vec<char> = t.chars().collect();
        bad[42] = 'B';
        let bad: String = bad.into_iter().collect();
        assert_eq!(key.check(&bad), TokenCheck::Malformed);
    }

    #[test]
    fn garbage_is_malformed() {
        let key = TokenKey::new([5; 32]);
        assert_eq!(key.check("not a token"), TokenCheck::Malformed);
        assert_eq!(key.check("AAAA"), TokenCheck::Malformed);
    }
}
