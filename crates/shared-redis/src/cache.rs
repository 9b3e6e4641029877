//! The shared answer cache: opaque bytes under `<prefix>cache:<key>`, each with its own TTL.
//! What a key means (query, site, data version) is the caller's business.

use std::time::Duration;

use redis::AsyncCommands;

use crate::{RedisShared, SharedError};

/// The longest TTL kept (a year): Redis refuses expiry times that overflow.
const MAX_TTL_MS: u64 = 365 * 24 * 3600 * 1000;

impl RedisShared {
    /// The value stored under `key`, if any and not expired.
    pub async fn cache_get(&self, key: &str) -> Result<Option<Vec<u8>>, SharedError> {
        let key = self.key("cache:", key);
        self.run("cache_get", |mut connection| async move {
            connection.get(key).await
        })
        .await
    }

    /// Stores `value` under `key` for `ttl` (rounded up to whole milliseconds, at most a year). Returns whether
    /// it was stored: a value larger than [`RedisOptions::max_cache_value_bytes`] or a zero TTL
    /// is not, and that is not an error.
    ///
    /// [`RedisOptions::max_cache_value_bytes`]: crate::RedisOptions::max_cache_value_bytes
    pub async fn cache_put(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, SharedError> {
        if value.len() > self.options.max_cache_value_bytes || ttl.is_zero() {
            return Ok(false);
        }
        let ttl_ms = u64::try_from(ttl.as_nanos().div_ceil(1_000_000))
            .unwrap_or(u64::MAX)
            .min(MAX_TTL_MS);
        let key = self.key("cache:", key);
        self.run("cache_put", |mut connection| async move {
            connection.pset_ex::<_, _, ()>(key, value, ttl_ms).await
        })
        .await?;
        Ok(true)
    }
}
