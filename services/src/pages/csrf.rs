//! Against cross-site form posts. The enterprise page's form tag: an HMAC-SHA256 of the code
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

/// Whether a form post comes from another site, by what the browser says of it: the Fetch
/// Metadata `Sec-Fetch-Site` header when sent (every current browser does), else an `Origin`
/// whose host is not the request's `Host`. A post with neither (a script, an old browser) is
/// let through: the sign-in form has no session to bind a tag to, and this guards it against
/// login CSRF where browsers can be told apart.
pub fn cross_site(headers: &axum::http::HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    match (text("origin"), text("host")) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => {
            let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            !origin_host.eq_ignore_ascii_case(host)
        }
        (Some(_), None) => true,
        (None, _) => false,
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

    #[test]
    fn a_post_from_another_site_is_told_apart() {
        use axum::http::HeaderMap;
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            h
        };
        assert!(!cross_site(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!cross_site(&headers(&[("sec-fetch-site", "none")])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "same-site")])));
        let same = [
            ("origin", "https://saoma.example.gov.cn"),
            ("host", "saoma.example.gov.cn"),
        ];
        assert!(!cross_site(&headers(&same)));
        let other = [
            ("origin", "https://evil.example"),
            ("host", "saoma.example.gov.cn"),
        ];
        assert!(cross_site(&headers(&other)));
        assert!(cross_site(&headers(&[("origin", "null"), ("host", "a")])));
        assert!(!cross_site(&headers(&[("host", "saoma.example.gov.cn")])));
    }
}
