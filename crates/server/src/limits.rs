//! Abuse protection: rate limits per client IP (public ingest), per API key (keyed ingest and
//! the API) and a per-site ingest quota counted in events, so a flood on one site cannot
//! starve the others. All are GCRA limiters: from `governor` in the process, or, with
//! `cache.engine = "redis"`, the same limits kept in Redis and shared by every node (a
//! client spreading requests over several nodes has one budget); while Redis cannot be
//! reached, each node falls back to its own limiters. A refused request is a 429 in the one
//! error shape with `Retry-After`.
//!
//! The limiters forget idle keys now and then (`retain_recent` every few thousand checks), so
//! their memory stays bounded by the clients seen in the last window.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::http::error::ApiError;

/// The limits' settings (`[limits]` in the config file). `enabled = false`
/// (`HEARTBEAT_RATE_LIMITS=off`) turns every rate limit and quota off, for benchmarks on
/// loopback.
pub use crate::config::Limits as LimitSettings;

/// One keyed limiter that forgets idle keys now and then.
struct Keyed<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    checks: AtomicU64,
}

/// How many checks between two sweeps of idle keys.
const SWEEP_EVERY: u64 = 4096;

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn per_minute(n: u32) -> Self {
        let n = NonZeroU32::new(n.max(1)).expect("at least one");
        Keyed {
            limiter: RateLimiter::keyed(Quota::per_minute(n)),
            checks: AtomicU64::new(0),
        }
    }

    fn sweep_now_and_then(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
        }
    }

    /// `Err(wait)` when `key` is over its rate for `n` cells at once; a request larger than the whole
    /// burst is refused with a wait of one period.
    fn check_n(&self, key: &K, n: u32) -> Result<(), Duration> {
        self.sweep_now_and_then();
        let Some(n) = NonZeroU32::new(n) else {
            return Ok(());
        };
        match self.limiter.check_key_n(key, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(not_until.wait_time_from(DefaultClock::default().now())),
            Err(_insufficient) => Err(Duration::from_secs(60)),
        }
    }
}

/// The server's limiters.
pub struct Limits {
    settings: LimitSettings,
    shared: Option<heartbeat_shared_redis::RedisShared>,
    per_ip: Keyed<IpAddr>,
    per_key: Keyed<String>,
    per_site: Keyed<String>,
    per_share_viewer: Keyed<(String, IpAddr)>,
}

/// A 429 telling the client when to retry, counted by `limit`.
pub fn too_many(limit: &'static str, field: &str, what: &str, wait: Duration) -> ApiError {
    metrics::counter!(crate::telemetry::HTTP_RATE_LIMITED, "limit" => limit).increment(1);
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError {
        retry_after_s: Some(seconds.max(1)),
        ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded")
            .with_detail(field, format!("{what}; retry after {} s", seconds.max(1)))
    }
}

impl Limits {
    pub fn new(settings: LimitSettings) -> Self {
        Limits {
            per_ip: Keyed::per_minute(settings.ingest_per_ip_per_minute),
            per_key: Keyed::per_minute(settings.per_key_per_minute),
            per_site: Keyed::per_minute(settings.site_events_per_minute),
            per_share_viewer: Keyed::per_minute(settings.share_per_ip_per_minute),
            settings,
            shared: None,
        }
    }

    /// Keeps the limits' state in Redis, shared with every node that does.
    pub fn with_shared(mut self, shared: heartbeat_shared_redis::RedisShared) -> Self {
        self.shared = Some(shared);
        self
    }

    /// `cells` more for `key` of limiter `name` at `per_minute`: from Redis when it keeps
    /// the limits and answers, else from `local`.
    async fn decide<K: Hash + Eq + Clone + std::fmt::Debug>(
        &self,
        name: &str,
        local: &Keyed<K>,
        key: &K,
        per_minute: u32,
        cells: u32,
    ) -> Result<(), Duration> {
        if let Some(shared) = &self.shared {
            match shared
                .check_rate(name, &format!("{key:?}"), per_minute, cells)
                .await
            {
                Ok(decision) => return decision,
                Err(err) => {
                    metrics::counter!(crate::telemetry::SHARED_LIMITS_FALLBACK).increment(1);
                    tracing::debug!(%err, limiter = name, "limits: Redis unavailable, deciding locally");
                }
            }
        }
        local.check_n(key, cells)
    }

    pub fn settings(&self) -> &LimitSettings {
        &self.settings
    }

    /// One public ingest request from `ip` (unknown addresses share one budget).
    pub async fn check_ip(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        if !self.settings.enabled {
            return Ok(());
        }
        let ip = ip.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let per_minute = self.settings.ingest_per_ip_per_minute;
        self.decide("ip", &self.per_ip, &ip, per_minute, 1)
            .await
            .map_err(|wait| {
                too_many(
                    "client_ip",
                    "client",
                    &format!(
                        "at most {} requests per minute from one address",
                        self.settings.ingest_per_ip_per_minute
                    ),
                    wait,
                )
            })
    }

    /// One request made with the key (or session) whose id is `key_id`.
    pub async fn check_key(&self, key_id: &str) -> Result<(), ApiError> {
        if !self.settings.enabled {
            return Ok(());
        }
        let per_minute = self.settings.per_key_per_minute;
        self.decide("key", &self.per_key, &key_id.to_owned(), per_minute, 1)
            .await
            .map_err(|wait| {
                too_many(
                    "key",
                    "x-api-key",
                    &format!(
                        "at most {} requests per minute with one key",
                        self.settings.per_key_per_minute
                    ),
                    wait,
                )
            })
    }

    /// One request by `caller` from `ip`: its key's (or session's) budget and, through a
    /// public link, which is one key shared by every viewer, the viewer's own smaller budget.
    pub async fn check_caller(
        &self,
        caller: &heartbeat_accounts::access::Caller,
        ip: Option<IpAddr>,
    ) -> Result<(), ApiError> {
        self.check_key(&caller.limit_key()).await?;
        if caller.is_share() {
            self.check_share_viewer(&caller.limit_key(), ip).await?;
        }
        Ok(())
    }

    /// One request from `ip` through the public dashboard link of `site`.
    pub async fn check_share_viewer(&self, site: &str, ip: Option<IpAddr>) -> Result<(), ApiError> {
        if !self.settings.enabled {
            return Ok(());
        }
        let ip = ip.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let per_minute = self.settings.share_per_ip_per_minute;
        self.decide(
            "share_viewer",
            &self.per_share_viewer,
            &(site.to_owned(), ip),
            per_minute,
            1,
        )
        .await
        .map_err(|wait| {
            too_many(
                "share_viewer",
                "share_token",
                &format!(
                    "at most {} requests per minute from one address through a public link",
                    self.settings.share_per_ip_per_minute
                ),
                wait,
            )
        })
    }

    /// `events` events for site `site`.
    pub async fn check_site(&self, site: &str, events: usize) -> Result<(), ApiError> {
        if !self.settings.enabled {
            return Ok(());
        }
        let n = u32::try_from(events).unwrap_or(u32::MAX);
        let per_minute = self.settings.site_events_per_minute;
        self.decide("site", &self.per_site, &site.to_owned(), per_minute, n)
            .await
            .map_err(|wait| {
                too_many(
                    "site_quota",
                    "site_id",
                    &format!(
                        "site {site} is over its quota of {} events per minute",
                        self.settings.site_events_per_minute
                    ),
                    wait,
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ip_limit_trips_at_the_rate_and_off_means_off() {
        let limits = Limits::new(LimitSettings {
            ingest_per_ip_per_minute: 3,
            ..LimitSettings::default()
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            limits.check_ip(Some(ip)).await.unwrap();
        }
        let err = limits.check_ip(Some(ip)).await.unwrap_err();
        assert_eq!(err.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(err.retry_after_s.unwrap() >= 1);
        // Another address has its own budget.
        limits.check_ip("192.0.2.2".parse().ok()).await.unwrap();
        let off = Limits::new(LimitSettings {
            ingest_per_ip_per_minute: 1,
            ..LimitSettings::off()
        });
        for _ in 0..10 {
            off.check_ip(Some(ip)).await.unwrap();
        }
    }

    #[tokio::test]
    async fn share_viewers_have_their_own_budget_per_link() {
        let limits = Limits::new(LimitSettings {
            share_per_ip_per_minute: 2,
            ..LimitSettings::default()
        });
        let viewer: IpAddr = "192.0.2.7".parse().unwrap();
        limits.check_share_viewer("a", Some(viewer)).await.unwrap();
        limits.check_share_viewer("a", Some(viewer)).await.unwrap();
        let err = limits
            .check_share_viewer("a", Some(viewer))
            .await
            .unwrap_err();
        assert_eq!(err.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(err.details[0].field, "share_token");
        // Another link, or another viewer of the same link, is not held up.
        limits.check_share_viewer("b", Some(viewer)).await.unwrap();
        limits
            .check_share_viewer("a", "192.0.2.8".parse().ok())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn site_quota_counts_events() {
        let limits = Limits::new(LimitSettings {
            site_events_per_minute: 10,
            ..LimitSettings::default()
        });
        limits.check_site("a", 6).await.unwrap();
        assert!(limits.check_site("a", 6).await.is_err());
        limits.check_site("b", 10).await.unwrap();
        // More than the whole burst at once never passes.
        assert!(limits.check_site("c", 11).await.is_err());
    }
}
