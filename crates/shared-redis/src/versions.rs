//! Per-site data versions shared by the nodes, and [`SiteVersions`], the local copy a node
//! reads synchronously (design and guarantees in the crate documentation).
//!
//! Redis layout: the hash `<prefix>versions` maps each site id to its version (decimal) and
//! the field `""` to the hash's generation (Redis `TIME` in µs when the hash was created).
//! Every bump is published on the channel `<prefix>versions` as `"<version> <site>"`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, RwLock, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::oneshot;

use crate::{within, RedisShared, SharedError};

/// Lua that sets `generation` (and `now`), creating the generation if the hash has none.
const WITH_GENERATION: &str = r#"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local generation = tonumber(redis.call('HGET', KEYS[1], ''))
if not generation then
  generation = now
  redis.call('HSET', KEYS[1], '', string.format('%.0f', now))
end
"#;

/// `ARGV`: the site, the channel. Returns the site's new version, as a decimal string.
static BUMP: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        r#"{WITH_GENERATION}
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1])) or generation
local version = string.format('%.0f', math.max(current + 1, now))
redis.call('HSET', KEYS[1], ARGV[1], version)
redis.call('PUBLISH', ARGV[2], version .. ' ' .. ARGV[1])
return version
"#
    ))
});

/// `ARGV`: sites. Returns their versions, a missing site reading as the generation.
static READ: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        r#"{WITH_GENERATION}
local versions = redis.call('HMGET', KEYS[1], unpack(ARGV))
for i = 1, #ARGV do
  versions[i] = versions[i] or string.format('%.0f', generation)
end
return versions
"#
    ))
});

/// Returns the whole hash, generation included (`HGETALL`).
static SNAPSHOT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{WITH_GENERATION}\nreturn redis.call('HGETALL', KEYS[1])\n"
    ))
});

/// How many sites one [`READ`] asks for: Lua's `unpack` has a stack limit.
const READ_CHUNK: usize = 1000;

/// How long [`SiteVersions`] waits before subscribing again after losing Redis.
const RESUBSCRIBE_DELAY: Duration = Duration::from_millis(250);

impl RedisShared {
    /// Records that `site`'s data changed: its version moves to a number never used for it
    /// before, which is returned and announced to every node's [`SiteVersions`].
    pub async fn bump_version(&self, site: &str) -> Result<u64, SharedError> {
        if site.is_empty() {
            return Err(SharedError::Invalid {
                reason: "an empty site id has no version".to_owned(),
                source: None,
            });
        }
        let hash = self.versions_key();
        let channel = self.versions_key();
        let version: String = self
            .run("bump_version", |mut connection| async move {
                BUMP.key(hash)
                    .arg(site)
                    .arg(channel)
                    .invoke_async(&mut connection)
                    .await
            })
            .await?;
        parse_version("bump_version", &version)
    }

    /// The current versions of `sites`, in order; a site never bumped (since Redis last lost
    /// its data) reads as the generation.
    pub async fn versions(&self, sites: &[String]) -> Result<Vec<u64>, SharedError> {
        let mut versions = Vec::with_capacity(sites.len());
        for chunk in sites.chunks(READ_CHUNK) {
            let hash = self.versions_key();
            let read: Vec<String> = self
                .run("versions", |mut connection| async move {
                    READ.key(hash)
                        .arg(chunk)
                        .invoke_async(&mut connection)
                        .await
                })
                .await?;
            for version in read {
                versions.push(parse_version("versions", &version)?);
            }
        }
        Ok(versions)
    }

    /// Starts following every site's version in the background (this needs a tokio runtime)
    /// and returns the local copy to read them from. The task stops when the last clone of the
    /// returned handle is dropped.
    pub fn follow_versions(&self) -> SiteVersions {
        let (stop, stopped) = oneshot::channel();
        let mirror = Arc::new(Mirror {
            known: RwLock::new(Known::default()),
            current: AtomicBool::new(false),
            _stop: stop,
        });
        tokio::spawn(follow(self.clone(), Arc::downgrade(&mirror), stopped));
        SiteVersions { mirror }
    }

    fn versions_key(&self) -> String {
        self.key("versions", "")
    }

    /// Every site's version and the generation, read at one instant.
    async fn snapshot(&self) -> Result<Known, SharedError> {
        let hash = self.versions_key();
        let fields: HashMap<String, String> = self
            .run("versions snapshot", |mut connection| async move {
                SNAPSHOT.key(hash).invoke_async(&mut connection).await
            })
            .await?;
        let mut known = Known::default();
        for (field, version) in fields {
            let version = parse_version("versions snapshot", &version)?;
            if field.is_empty() {
                known.generation = version;
            } else {
                known.sites.insert(field, version);
            }
        }
        Ok(known)
    }
}

/// A node's copy of every site's data version, kept current by a background task: a bump on
/// any node shows here within milliseconds while Redis is reachable, and within about half a
/// second of Redis coming back after an outage or a restart.
#[derive(Clone)]
pub struct SiteVersions {
    mirror: Arc<Mirror>,
}

impl std::fmt::Debug for SiteVersions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteVersions")
            .field("current", &self.is_current())
            .finish_non_exhaustive()
    }
}

impl SiteVersions {
    /// The latest known version of `site`; 0 until the first read from Redis succeeded.
    pub fn get(&self, site: &str) -> u64 {
        let known = self.mirror.known.read().unwrap_or_else(|e| e.into_inner());
        known.sites.get(site).copied().unwrap_or(known.generation)
    }

    /// Whether the copy is subscribed to every bump right now. While false (Redis unreachable,
    /// or not yet read once), [`get`](Self::get) answers the last versions known, which may
    /// be stale: do not trust answers cached by version.
    pub fn is_current(&self) -> bool {
        self.mirror.current.load(Ordering::Acquire)
    }
}

/// What [`SiteVersions`] and its task share.
struct Mirror {
    known: RwLock<Known>,
    /// Set after a successful resync, cleared when the subscription is lost.
    current: AtomicBool,
    /// Dropped with the last [`SiteVersions`], which ends the task.
    _stop: oneshot::Sender<()>,
}

/// The versions as last read.
#[derive(Default)]
struct Known {
    /// What a site missing from `sites` reads as; 0 before the first read.
    generation: u64,
    sites: HashMap<String, u64>,
}

impl Known {
    /// Takes in `snapshot`, a later reading of the hash, without letting any site's version
    /// go back. Versions only grow in Redis, even across a loss of its data (a site it no
    /// longer has reads as the new generation, larger than all before), so a smaller number
    /// can only come from an older snapshot restored from disk; keeping the larger one there
    /// keeps this node from taking an answer cached before the lost write as fresh.
    fn merge(&mut self, snapshot: Known) {
        for (site, version) in &mut self.sites {
            if !snapshot.sites.contains_key(site) {
                *version = (*version).max(snapshot.generation);
            }
        }
        for (site, version) in snapshot.sites {
            let known = self.sites.entry(site).or_insert(version);
            *known = (*known).max(version);
        }
        self.generation = self.generation.max(snapshot.generation);
    }
}

/// The background task behind [`SiteVersions`]: subscribe, resync, apply bumps; again after
/// every loss of Redis; until `stopped`.
async fn follow(shared: RedisShared, mirror: Weak<Mirror>, mut stopped: oneshot::Receiver<()>) {
    loop {
        let lost = tokio::select! {
            _ = &mut stopped => return,
            lost = follow_connected(&shared, &mirror) => lost,
        };
        let Some(alive) = mirror.upgrade() else {
            return;
        };
        if alive.current.swap(false, Ordering::AcqRel) {
            tracing::warn!(error = %error_chain(&lost), "lost the data version subscription");
        } else {
            tracing::debug!(error = %error_chain(&lost), "cannot follow data versions yet");
        }
        drop(alive);
        tokio::select! {
            _ = &mut stopped => return,
            _ = tokio::time::sleep(RESUBSCRIBE_DELAY) => {}
        }
    }
}

/// One connection's worth of following; returns why it ended.
async fn follow_connected(shared: &RedisShared, mirror: &Weak<Mirror>) -> SharedError {
    let options = shared.options();
    let channel = shared.versions_key();
    let pubsub = match within(
        "subscribe to versions",
        options.connect_timeout,
        shared.client.get_async_pubsub(),
    )
    .await
    {
        Ok(pubsub) => pubsub,
        Err(error) => return error,
    };
    let (mut sink, mut messages) = pubsub.split();
    if let Err(error) = within(
        "subscribe to versions",
        options.command_timeout,
        sink.subscribe(&channel),
    )
    .await
    {
        return error;
    }
    // Subscribed first, read second: a bump is either in the snapshot or arrives after it.
    if let Err(error) = resync(shared, mirror).await {
        return error;
    }
    let mut ping = tokio::time::interval(options.versions_ping_interval);
    let mut full_resync = tokio::time::interval(options.versions_resync_interval);
    ping.tick().await;
    full_resync.tick().await;
    loop {
        tokio::select! {
            message = messages.next() => {
                let Some(message) = message else {
                    return closed("versions subscription");
                };
                let Some(alive) = mirror.upgrade() else {
                    return closed("versions follower");
                };
                apply(&alive, message.get_payload_bytes());
            }
            _ = ping.tick() => {
                let pong = within(
                    "ping versions subscription",
                    options.command_timeout,
                    sink.ping::<redis::Value>(),
                )
                .await;
                if let Err(error) = pong {
                    return error;
                }
            }
            _ = full_resync.tick() => {
                if let Err(error) = resync(shared, mirror).await {
                    return error;
                }
            }
        }
    }
}

/// Brings the copy up to a snapshot of the hash and marks it current.
async fn resync(shared: &RedisShared, mirror: &Weak<Mirror>) -> Result<(), SharedError> {
    let snapshot = shared.snapshot().await?;
    let Some(alive) = mirror.upgrade() else {
        return Ok(());
    };
    alive
        .known
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .merge(snapshot);
    alive.current.store(true, Ordering::Release);
    Ok(())
}

/// Applies one `"<version> <site>"` message; versions only move forward.
fn apply(mirror: &Mirror, payload: &[u8]) {
    let parsed = std::str::from_utf8(payload).ok().and_then(|text| {
        let (version, site) = text.split_once(' ')?;
        Some((version.parse::<u64>().ok()?, site))
    });
    let Some((version, site)) = parsed else {
        tracing::warn!(
            payload = %String::from_utf8_lossy(payload),
            "ignored a malformed data version message"
        );
        return;
    };
    let mut known = mirror.known.write().unwrap_or_else(|e| e.into_inner());
    let entry = known.sites.entry(site.to_owned()).or_insert(version);
    *entry = (*entry).max(version);
}

fn parse_version(operation: &'static str, text: &str) -> Result<u64, SharedError> {
    text.parse().map_err(|_| SharedError::Rejected {
        operation,
        source: redis::RedisError::from((
            redis::ErrorKind::UnexpectedReturnType,
            "not a data version",
            text.to_owned(),
        )),
    })
}

/// The error for a connection that ended without an error of its own.
fn closed(operation: &'static str) -> SharedError {
    SharedError::from_redis(
        operation,
        redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
    )
}

/// `error` and its sources, for one log field.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mirror() -> Mirror {
        Mirror {
            known: RwLock::new(Known {
                generation: 100,
                sites: HashMap::from([("a".to_owned(), 150)]),
            }),
            current: AtomicBool::new(true),
            _stop: oneshot::channel().0,
        }
    }

    #[test]
    fn messages_only_move_versions_forward() {
        let mirror = mirror();
        apply(&mirror, b"140 a");
        apply(&mirror, b"160 site with spaces");
        apply(&mirror, b"not a version");
        let versions = SiteVersions {
            mirror: Arc::new(mirror),
        };
        assert_eq!(versions.get("a"), 150);
        assert_eq!(versions.get("site with spaces"), 160);
        assert_eq!(versions.get("never bumped"), 100);
    }

    #[test]
    fn a_resync_never_moves_a_version_back() {
        let mut known = Known {
            generation: 100,
            sites: HashMap::from([("a".to_owned(), 150), ("b".to_owned(), 120)]),
        };
        // Redis lost its data and came back with a new generation; "c" was bumped since.
        known.merge(Known {
            generation: 1000,
            sites: HashMap::from([("c".to_owned(), 1001)]),
        });
        assert_eq!(known.sites["a"], 1000);
        assert_eq!(known.sites["b"], 1000);
        assert_eq!(known.sites["c"], 1001);
        assert_eq!(known.generation, 1000);
        // An older snapshot restored from disk: nothing goes back, later bumps go on.
        known.merge(Known {
            generation: 1000,
            sites: HashMap::from([("a".to_owned(), 999), ("c".to_owned(), 1002)]),
        });
        assert_eq!(known.sites["a"], 1000);
        assert_eq!(known.sites["c"], 1002);
    }
}
