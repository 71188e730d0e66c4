//! Rate limits of the public endpoints (`/c/…`, `/e/…`, `/api/v1/codes/…`, `/login`): a
//! `governor` GCRA bucket per client address, generous enough for a person on a phone. A
//! client over it gets 429 with a reason code and `Retry-After`: a Chinese page, or the API's
//! JSON error under `/api/`.
//!
//! The client's address is the connection's peer (the server must be run with
//! `into_make_service_with_connect_info`), or, behind a reverse proxy, the last address of the
//! header the proxy sets (`client_ip_header`). Loopback clients are not limited unless
//! `rate_limit_loopback` says so (tools on the same machine, and the tests); a request whose
//! address is unknown is not limited.

use super::{ApiError, SharedState};
use crate::config::Settings;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::Clock as _;
use governor::{DefaultKeyedRateLimiter, Quota};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

/// Forget idle clients' buckets every this many checks.
const RETAIN_EVERY: u64 = 4096;

pub struct PublicLimit {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    limit_loopback: bool,
    ip_header: Option<HeaderName>,
    checks: AtomicU64,
}

impl PublicLimit {
    /// `per_minute` requests a minute with bursts of `burst`; `per_minute` 0 turns it off.
    pub fn new(
        per_minute: u32,
        burst: u32,
        limit_loopback: bool,
        ip_header: Option<HeaderName>,
    ) -> Self {
        let limiter = NonZeroU32::new(per_minute).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            DefaultKeyedRateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst))
        });
        PublicLimit {
            limiter,
            limit_loopback,
            ip_header,
            checks: AtomicU64::new(0),
        }
    }

    pub fn from_settings(s: &Settings) -> anyhow::Result<Self> {
        let header = s
            .client_ip_header
            .as_deref()
            .map(HeaderName::try_from)
            .transpose()
            .map_err(|e| anyhow::anyhow!("client_ip_header is not a header name: {e}"))?;
        Ok(Self::new(
            s.rate_limit_per_minute,
            s.rate_limit_burst,
            s.rate_limit_loopback,
            header,
        ))
    }

    /// No limit at all.
    pub fn off() -> Self {
        Self::new(0, 0, false, None)
    }

    /// The client's address, as this service is configured to find it.
    pub fn client_ip(
        &self,
        headers: &HeaderMap,
        peer: Option<&ConnectInfo<SocketAddr>>,
    ) -> Option<IpAddr> {
        if let Some(name) = &self.ip_header {
            let forwarded = headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse().ok());
            if forwarded.is_some() {
                return forwarded;
            }
        }
        peer.map(|ConnectInfo(addr)| addr.ip())
    }

    /// `Err(seconds to wait)` when `ip` is over its limit.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if ip.is_loopback() && !self.limit_loopback {
            return Ok(());
        }
        if self.checks.fetch_add(1, Ordering::Relaxed) % RETAIN_EVERY == RETAIN_EVERY - 1 {
            limiter.retain_recent();
        }
        limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(limiter.clock().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

/// Whether `path` is one of the public endpoints that are limited.
pub fn is_public(path: &str) -> bool {
    path.starts_with("/c/")
        || path.starts_with("/e/")
        || path.starts_with("/api/v1/codes/")
        || path == "/login"
}

/// The middleware: checks the public endpoints' limit, passes everything else through.
pub async fn public(State(state): State<SharedState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if is_public(path) {
        let peer = req.extensions().get::<ConnectInfo<SocketAddr>>();
        if let Some(ip) = state.limits.client_ip(req.headers(), peer) {
            if let Err(wait) = state.limits.check(ip) {
                return too_many(path.starts_with("/api/"), wait);
            }
        }
    }
    next.run(req).await
}

fn too_many(api: bool, wait: u64) -> Response {
    let mut response = if api {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "请求过于频繁，请稍后再试",
        )
        .into_response()
    } else {
        crate::pages::too_many(
            "rate_limited",
            "您的请求过于频繁，请稍候片刻再打开此页面。",
            wait,
        )
    };
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(wait.max(1)));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHONE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 7));
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 8));

    #[test]
    fn a_burst_passes_then_the_client_waits_and_others_do_not() {
        let limit = PublicLimit::new(60, 3, false, None);
        for _ in 0..3 {
            assert_eq!(limit.check(PHONE), Ok(()));
        }
        let wait = limit.check(PHONE).unwrap_err();
        assert!((1..=1).contains(&wait), "one request a second: {wait}");
        assert_eq!(limit.check(OTHER), Ok(()));
    }

    #[test]
    fn loopback_is_limited_only_when_asked_and_zero_is_off() {
        let local = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        let free = PublicLimit::new(60, 1, false, None);
        let strict = PublicLimit::new(60, 1, true, None);
        assert!((0..5).all(|_| free.check(local).is_ok()));
        assert!(strict.check(local).is_ok() && strict.check(local).is_err());
        let off = PublicLimit::off();
        assert!((0..100).all(|_| off.check(PHONE).is_ok()));
    }

    #[test]
    fn the_proxy_header_names_the_client_and_the_peer_is_the_fallback() {
        let limit = PublicLimit::new(
            60,
            1,
            false,
            Some(HeaderName::from_static("x-forwarded-for")),
        );
        let peer = ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 9000)));
        let mut headers = HeaderMap::new();
        assert_eq!(limit.client_ip(&headers, Some(&peer)), Some(peer.0.ip()));
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("10.0.0.1, 203.0.113.7"),
        );
        assert_eq!(limit.client_ip(&headers, Some(&peer)), Some(PHONE));
        assert_eq!(PublicLimit::off().client_ip(&headers, None), None);
    }

    #[test]
    fn only_the_public_endpoints_are_limited() {
        for p in [
            "/c/abc",
            "/c/abc/rating",
            "/e/91X",
            "/api/v1/codes/t/qr.svg",
            "/login",
        ] {
            assert!(is_public(p), "{p}");
        }
        for p in [
            "/api/v1/commands",
            "/officer",
            "/healthz",
            "/api/v1/admin/stats",
        ] {
            assert!(!is_public(p), "{p}");
        }
    }
}
