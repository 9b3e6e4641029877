//! Rate limits, a query-answer cache and per-site data versions shared by every Heartbeat
//! node through one Redis 7.
//!
//! A single Heartbeat process keeps its limiters (`server/src/limits.rs`) and its query cache
//! (`server/src/query_cache.rs`) in memory. Once several stateless API and ingest nodes run
//! behind a load balancer, a client could get n times its rate by spreading its requests, and
//! every node would compute the same dashboard answers again. [`RedisShared`] gives the nodes
//! one budget, one cache and one view of which site's data changed.
//!
//! # Rate limits: GCRA in one script
//!
//! [`RedisShared::check_rate`] has the semantics of `governor`'s
//! `RateLimiter::keyed(Quota::per_minute(n)).check_key_n(key, cells)`: a burst of `n` cells,
//! then one cell every `T = 60 s / n`. Each key stores its *theoretical arrival time* `tat`
//! (µs on Redis's clock). With `τ = T · (n − 1)` and `w = T · (cells − 1)`, a request at `now`
//! conforms when `now ≥ tat + w − τ` (a missing key counts as `tat = now`); it then stores
//! `tat' = max(tat, now) + T + w`, else it is refused with the wait `tat + w − τ − now`.
//! More cells than the burst are refused with a wait of 60 s without asking Redis, as
//! `governor`'s `InsufficientCapacity` is mapped by the server; zero cells always conform.
//! The read, the decision and the write are one Lua script (`EVALSHA`, falling back to
//! `EVAL` after a Redis restart empties its script cache), so concurrent checks from any
//! number of nodes never let more than the burst through. `now` is Redis's `TIME`, so the
//! nodes' clocks do not matter. A key expires when `tat'` has passed, the moment it would be
//! indistinguishable from a fresh key, so idle clients cost no memory.
//!
//! # Cache
//!
//! [`RedisShared::cache_get`] and [`RedisShared::cache_put`] keep opaque bytes under the
//! caller's key with a TTL. Values over [`RedisOptions::max_cache_value_bytes`] are not
//! stored: one huge answer should not evict hundreds of small ones or slow Redis down.
//!
//! # Data versions and how they reach every node
//!
//! A site's data version changes after each write to its events; a cached answer computed at
//! version v is reused only while the version is still v. All versions live in one hash,
//! `<prefix>versions`, together with a *generation* under the field `""`: Redis's clock (µs)
//! when the hash was created. [`RedisShared::bump_version`] sets a site's version to
//! `max(current + 1, now_µs)` (a missing site counts as the generation) and publishes
//! `"<version> <site>"` on the channel `<prefix>versions`, both in one script.
//! [`RedisShared::versions`] reads versions with a missing site read as the generation, not
//! as 0: a Redis that restarted without its data gets a new, larger generation, so no version
//! number is ever reissued for a site and no answer cached before the loss is taken as fresh
//! after it (this holds as long as Redis's clock does not go back across the restart).
//! Versions are opaque numbers, strictly increasing per site; compare them for equality only.
//!
//! [`RedisShared::follow_versions`] returns a [`SiteVersions`] whose synchronous
//! [`SiteVersions::get`] reads a local copy of the whole hash, kept current by a background
//! task:
//! 1. it opens a pub/sub connection and `SUBSCRIBE`s to the channel;
//! 2. then it reads the whole hash (`HGETALL`, creating the generation if missing) and
//!    merges it into its copy: any bump it missed while disconnected is in that snapshot, and
//!    any bump after the snapshot arrives as a message. Both are applied as a maximum, so the
//!    copy never goes back (a site Redis no longer has reads as the new generation);
//! 3. it `PING`s the pub/sub connection every [`RedisOptions::versions_ping_interval`]; a
//!    failed ping, a closed connection (Redis restarted) or a failed resync marks the copy not
//!    current ([`SiteVersions::is_current`]) and it starts again at 1, retrying every 250 ms;
//! 4. it also resyncs every [`RedisOptions::versions_resync_interval`] in case a message was
//!    lost in a way that did not close the connection.
//!
//! So another node's bump is seen after one pub/sub hop (milliseconds) while connected, and
//! within about a second of Redis coming back after a restart (0.4 s in the tests). While
//! Redis is unreachable, `get` answers the last known versions and `is_current` is false:
//! the server should then not trust answers cached by version. A Redis that dies is noticed at
//! once (its connection closes); one that hangs, within the ping interval plus the command
//! timeout. The task stops when the last `SiteVersions` is dropped.
//!
//! Assumed: Redis either keeps its data or loses all of it (the shipped setup runs it without
//! persistence). Restoring an older snapshot could let a node that never saw a later bump
//! read a version that an earlier answer was cached at, until that site's next bump.
//!
//! # Failure behaviour
//!
//! Every command is bounded by [`RedisOptions::command_timeout`] (200 ms by default), including
//! the time spent waiting for a reconnection, so a slow or dead Redis never holds a request
//! for longer. Timeouts and connection errors are [`SharedError::Unavailable`], which the
//! caller answers with its local limiter and no shared cache; the connection is re-established
//! in the background (`redis::aio::ConnectionManager`). Other errors are
//! [`SharedError::Rejected`] or [`SharedError::Invalid`].
//!
//! A command that timed out may still have run: the cells may have been taken, the version
//! bumped. A failed [`RedisShared::bump_version`] should be retried until it succeeds: until
//! then other nodes may reuse answers from before the write (so cached answers should also
//! have a TTL that bounds that staleness). A Redis that lost its data starts every rate budget
//! afresh.

mod cache;
mod error;
mod rate;
mod versions;

use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub use error::{SharedError, Unreachable};
pub use versions::SiteVersions;

/// How to talk to Redis.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// Put before every key and channel name, so that several deployments (or tests) can share
    /// one Redis. Default `heartbeat:`.
    pub key_prefix: String,
    /// The longest any one command may take, waiting for a reconnection included, before it
    /// fails as [`SharedError::Unavailable`]. Default 200 ms.
    pub command_timeout: Duration,
    /// The longest [`RedisShared::connect`] and each background reconnection attempt may take.
    /// Default 1 s.
    pub connect_timeout: Duration,
    /// Cache values larger than this are not stored. Default 1 MiB.
    pub max_cache_value_bytes: usize,
    /// How often [`SiteVersions`] checks that its subscription is alive. Default 1 s.
    pub versions_ping_interval: Duration,
    /// How often [`SiteVersions`] rereads every version even though its subscription looks
    /// alive. Default 30 s.
    pub versions_resync_interval: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            key_prefix: "heartbeat:".to_owned(),
            command_timeout: Duration::from_millis(200),
            connect_timeout: Duration::from_secs(1),
            max_cache_value_bytes: 1 << 20,
            versions_ping_interval: Duration::from_secs(1),
            versions_resync_interval: Duration::from_secs(30),
        }
    }
}

/// A handle on the Redis shared by every node: cheap to clone, one multiplexed connection
/// that reconnects by itself.
#[derive(Clone)]
pub struct RedisShared {
    client: redis::Client,
    connection: ConnectionManager,
    options: std::sync::Arc<RedisOptions>,
}

impl std::fmt::Debug for RedisShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisShared")
            .field("options", &self.options)
            .finish()
    }
}

impl RedisShared {
    /// Connects to the Redis at `url` (`redis://host:port/db`, `rediss://` not compiled in).
    /// Fails with [`SharedError::Unavailable`] when Redis cannot be reached within
    /// [`RedisOptions::connect_timeout`]; once connected, a lost connection is re-established
    /// in the background.
    pub async fn connect(url: &str, options: RedisOptions) -> Result<RedisShared, SharedError> {
        let client = redis::Client::open(url).map_err(|source| SharedError::Invalid {
            reason: format!("redis url {url:?}"),
            source: Some(source),
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.command_timeout))
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500))
            .set_number_of_retries(2);
        let connection = within(
            "connect",
            options.connect_timeout,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await?;
        Ok(RedisShared {
            client,
            connection,
            options: std::sync::Arc::new(options),
        })
    }

    /// The options this handle was made with.
    pub fn options(&self) -> &RedisOptions {
        &self.options
    }

    /// `name` under this deployment's prefix.
    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}{kind}{name}", self.options.key_prefix)
    }

    /// Runs `command` on the shared connection, bounded by the command timeout.
    async fn run<T, F>(
        &self,
        operation: &'static str,
        command: impl FnOnce(ConnectionManager) -> F,
    ) -> Result<T, SharedError>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        within(
            operation,
            self.options.command_timeout,
            command(self.connection.clone()),
        )
        .await
    }
}

/// `future`'s answer, or [`SharedError::Unavailable`] once `limit` has passed.
async fn within<T>(
    operation: &'static str,
    limit: Duration,
    future: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, SharedError> {
    match tokio::time::timeout(limit, future).await {
        Ok(Ok(value)) => Ok(value),
        // The connection's own response timeout, the same limit, may fire first.
        Ok(Err(error)) if error.is_timeout() => Err(SharedError::timeout(operation, limit)),
        Ok(Err(error)) => Err(SharedError::from_redis(operation, error)),
        Err(_elapsed) => Err(SharedError::timeout(operation, limit)),
    }
}
