//! The enterprise page's form tag, against cross-site form posts: an HMAC-SHA256 of the code
//! token (truncated to 128 bits, base64url) under a key the service already keeps secret and
//! shares between its processes — the digest of the admin token. Only a page this service
//! rendered for that token carries it; no cookie or server-side session is needed, and a
//! restart keeps open forms valid. Changing the admin token invalidates open forms, which
//! then ask the enterprise to reload the page.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const DOMAIN: &[u8] = b"saoma/page-form/v1";

pub struct FormKey([u8; 32]);

impl FormKey {
    pub fn new(secret: [u8; 32]) -> Self {
        FormKey(secret)
    }

    fn mac(&self, token: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(DOMAIN);
        mac.update(token.as_bytes());
        mac
    }

    /// The hidden field of the forms on the page of `token`.
    pub fn tag(&self, token: &str) -> String {
        B64.encode(&self.mac(token).finalize().into_bytes()[..16])
    }

    /// Whether `tag` is the form tag of `token` (compared in constant time).
    pub fn check(&self, token: &str, tag: &str) -> bool {
        match B64.decode(tag.trim().as_bytes()) {
            Ok(bytes) if bytes.len() == 16 => self.mac(token).verify_truncated_left(&bytes).is_ok(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_checks_for_its_token_only() {
        let key = FormKey::new([7; 32]);
        let tag = key.tag("token-a");
        assert_eq!(tag.len(), 22);
        assert!(key.check("token-a", &tag));
        assert!(!key.check("token-b", &tag));
        assert!(!FormKey::new([8; 32]).check("token-a", &tag));
    }

    #[test]
    fn an_empty_short_or_garbled_tag_is_refused() {
        let key = FormKey::new([7; 32]);
        let tag = key.tag("token-a");
        let longer = format!("{tag}AA");
        for bad in [
            "",
            "AAAA",
            "not base64 at all!",
            &tag[..21],
            longer.as_str(),
        ] {
            assert!(!key.check("token-a", bad), "{bad:?}");
        }
    }
}
