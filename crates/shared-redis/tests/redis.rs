//! The shared limits, cache and data versions against a real Redis 7: the one at
//! `HEARTBEAT_TEST_REDIS_URL` (`scripts/services start`), each test under its own key prefix
//! so that they run in parallel, and, for outages and restarts, a `redis-server` of the test's
//! own on a free loopback port.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use heartbeat_shared_redis::{RedisOptions, RedisShared, SharedError, SiteVersions, Unreachable};

fn redis_url() -> String {
    std::env::var("HEARTBEAT_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!(
            "HEARTBEAT_TEST_REDIS_URL is not set: run `scripts/services start` and \
             `source /tmp/heartbeat-services/env` (these tests need a real Redis 7)"
        )
    })
}

/// Options with a key prefix no other test (or earlier run) uses.
fn options(test: &str) -> RedisOptions {
    static RUN: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    RedisOptions {
        key_prefix: format!(
            "heartbeat-test:{test}:{}:{nanos}:{}:",
            std::process::id(),
            RUN.fetch_add(1, Ordering::Relaxed)
        ),
        ..RedisOptions::default()
    }
}

async fn connect_with(url: &str, options: RedisOptions) -> RedisShared {
    RedisShared::connect(url, options)
        .await
        .unwrap_or_else(|error| panic!("connect to {url}: {error:?}"))
}

/// Two clients, as two nodes, on the same prefix of the shared Redis.
async fn two_nodes(test: &str) -> (RedisShared, RedisShared) {
    let options = options(test);
    let url = redis_url();
    (
        connect_with(&url, options.clone()).await,
        connect_with(&url, options).await,
    )
}

/// Polls `condition` until it holds, failing after `limit`; returns how long it took.
async fn eventually(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < limit,
            "{what}: not within {} ms",
            limit.as_millis()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

async fn check(
    redis: &RedisShared,
    key: &str,
    per_minute: u32,
    cells: u32,
) -> Result<(), Duration> {
    redis
        .check_rate("test", key, per_minute, cells)
        .await
        .expect("redis answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_burst_passes_then_the_rate_holds() {
    let (redis, _) = two_nodes("burst").await;
    for i in 0..5 {
        assert_eq!(
            check(&redis, "ip", 5, 1).await,
            Ok(()),
            "cell {i} of the burst"
        );
    }
    // The 6th waits for one emission interval, 60 s / 5, less the time the burst took.
    let wait = check(&redis, "ip", 5, 1).await.unwrap_err();
    assert!(
        wait <= Duration::from_secs(12) && wait > Duration::from_secs(11),
        "{wait:?}"
    );
    // Another key of the same limiter, or the same key in another limiter, has its own budget.
    assert_eq!(check(&redis, "other ip", 5, 1).await, Ok(()));
    assert_eq!(redis.check_rate("other", "ip", 5, 1).await.unwrap(), Ok(()));
    // A batch counts as its cells.
    assert_eq!(check(&redis, "site", 10, 6).await, Ok(()));
    let wait = check(&redis, "site", 10, 6).await.unwrap_err();
    // Two more cells' worth of refill (6 s each) make room for the second batch of 6.
    assert!(
        wait <= Duration::from_secs(12) && wait > Duration::from_secs(11),
        "{wait:?}"
    );
    assert_eq!(check(&redis, "site", 10, 4).await, Ok(()));
    assert!(check(&redis, "site", 10, 1).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_refills_one_cell_per_period_share() {
    let (redis, _) = two_nodes("refill").await;
    // 1200 a minute: one cell every 50 ms. Take the whole burst at once.
    assert_eq!(check(&redis, "k", 1200, 1200).await, Ok(()));
    let wait = check(&redis, "k", 1200, 1).await.unwrap_err();
    assert!(wait <= Duration::from_millis(50), "{wait:?}");
    tokio::time::sleep(wait).await;
    assert_eq!(
        check(&redis, "k", 1200, 1).await,
        Ok(()),
        "one cell after {wait:?}"
    );
    // That cell was the only one refilled; two cells need two periods' shares.
    let wait_for_two = check(&redis, "k", 1200, 2).await.unwrap_err();
    assert!(
        wait_for_two <= Duration::from_millis(100),
        "{wait_for_two:?}"
    );
    tokio::time::sleep(wait_for_two).await;
    assert_eq!(check(&redis, "k", 1200, 2).await, Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_cells_than_the_burst_never_pass_and_take_nothing() {
    let (redis, _) = two_nodes("over-burst").await;
    assert_eq!(
        check(&redis, "site", 10, 11).await,
        Err(Duration::from_secs(60))
    );
    // Nothing was taken: the whole burst is still there.
    assert_eq!(check(&redis, "site", 10, 10).await, Ok(()));
    // Zero cells always pass; a zero rate counts as one a minute.
    assert_eq!(check(&redis, "site", 10, 0).await, Ok(()));
    assert_eq!(check(&redis, "zero", 0, 1).await, Ok(()));
    assert!(check(&redis, "zero", 0, 1).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_budget() {
    let (node_a, node_b) = two_nodes("two-nodes").await;
    for _ in 0..3 {
        assert_eq!(check(&node_a, "key", 5, 1).await, Ok(()));
    }
    for _ in 0..2 {
        assert_eq!(check(&node_b, "key", 5, 1).await, Ok(()));
    }
    assert!(check(&node_b, "key", 5, 1).await.is_err());
    assert!(check(&node_a, "key", 5, 1).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_checks_never_let_more_than_the_burst_through() {
    let (node_a, node_b) = two_nodes("concurrent").await;
    // 10 a minute: one refill every 6 s, far longer than the checks take.
    let started = Instant::now();
    let granted = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for task in 0..64 {
        let redis = if task % 2 == 0 {
            node_a.clone()
        } else {
            node_b.clone()
        };
        let granted = granted.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..4 {
                if check(&redis, "hot", 10, 1).await.is_ok() {
                    granted.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "too slow to judge"
    );
    assert_eq!(
        granted.load(Ordering::Relaxed),
        10,
        "of 256 concurrent checks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_keeps_values_until_their_ttl_and_refuses_big_ones() {
    let url = redis_url();
    let redis = connect_with(
        &url,
        RedisOptions {
            max_cache_value_bytes: 1024,
            ..options("cache")
        },
    )
    .await;
    let other_node = connect_with(&url, redis.options().clone()).await;
    assert_eq!(redis.cache_get("q").await.unwrap(), None);
    assert!(redis
        .cache_put("q", b"answer", Duration::from_secs(60))
        .await
        .unwrap());
    assert_eq!(
        other_node.cache_get("q").await.unwrap().as_deref(),
        Some(&b"answer"[..])
    );

    assert!(redis
        .cache_put("short", b"soon gone", Duration::from_millis(150))
        .await
        .unwrap());
    assert!(redis.cache_get("short").await.unwrap().is_some());
    let mut gone = false;
    let started = Instant::now();
    while !gone {
        assert!(started.elapsed() < Duration::from_secs(3), "never expired");
        gone = redis.cache_get("short").await.unwrap().is_none();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(started.elapsed() >= Duration::from_millis(100));

    let limit = vec![7u8; 1024];
    assert!(redis
        .cache_put("limit", &limit, Duration::from_secs(60))
        .await
        .unwrap());
    assert_eq!(redis.cache_get("limit").await.unwrap(), Some(limit));
    let too_big = vec![7u8; 1025];
    assert!(!redis
        .cache_put("too big", &too_big, Duration::from_secs(60))
        .await
        .unwrap());
    assert_eq!(redis.cache_get("too big").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bump_on_one_node_reaches_the_others_sync_read_within_a_second() {
    let (writer, reader) = two_nodes("versions").await;
    let followed = reader.follow_versions();
    eventually("first sync", Duration::from_secs(2), || {
        followed.is_current()
    })
    .await;
    let [before_a, before_b] = writer
        .versions(&["a".to_owned(), "b".to_owned()])
        .await
        .unwrap()[..]
    else {
        panic!("two versions")
    };
    assert_eq!(
        before_a, before_b,
        "never bumped sites read as the generation"
    );
    assert_eq!(followed.get("a"), before_a);

    let first = writer.bump_version("a").await.unwrap();
    let second = writer.bump_version("a").await.unwrap();
    assert!(before_a < first && first < second);
    assert_eq!(
        reader
            .versions(&["a".to_owned(), "b".to_owned()])
            .await
            .unwrap(),
        [second, before_b]
    );
    let took = eventually("the reader sees the bump", Duration::from_secs(1), || {
        followed.get("a") == second
    })
    .await;
    assert!(took < Duration::from_secs(1));
    assert_eq!(followed.get("b"), before_b);
    assert!(writer.versions(&[]).await.unwrap().is_empty());
    assert!(matches!(
        writer.bump_version("").await,
        Err(SharedError::Invalid { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_is_unavailable_within_the_timeout() {
    // Nothing listens on port 1: the connection is refused.
    let started = Instant::now();
    let refused = RedisShared::connect("redis://127.0.0.1:1/", RedisOptions::default()).await;
    let error = refused.expect_err("nothing listens on port 1");
    assert!(error.is_unavailable(), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(
        RedisShared::connect("not a url", RedisOptions::default()).await,
        Err(SharedError::Invalid { .. })
    ));
}

/// A `redis-server` of this test's own on a free loopback port, without persistence, killed
/// when dropped.
struct OwnRedis {
    port: u16,
    process: Option<Child>,
}

impl OwnRedis {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = OwnRedis {
            port,
            process: None,
        };
        redis.restart();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Starts the server (again, empty) and waits until it answers.
    fn restart(&mut self) {
        assert!(self.process.is_none());
        let process = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        self.process = Some(process);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGSTOP or SIGCONT: a server that hangs, keeping its connections open.
    fn signal(&self, signal: &str) {
        let pid = self.process.as_ref().expect("running").id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGKILL: the server goes away without a word, losing its data.
    fn kill(&mut self) {
        let mut process = self.process.take().expect("running");
        process.kill().unwrap();
        process.wait().unwrap();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_that_lost_the_data_versions_move_on_and_limits_work_again() {
    let mut server = OwnRedis::start();
    let options = RedisOptions::default();
    let writer = connect_with(&server.url(), options.clone()).await;
    let reader = connect_with(&server.url(), options).await;
    let followed: SiteVersions = reader.follow_versions();
    eventually("first sync", Duration::from_secs(2), || {
        followed.is_current()
    })
    .await;
    let never_bumped = followed.get("quiet");
    let before = writer.bump_version("busy").await.unwrap();
    eventually("the bump", Duration::from_secs(1), || {
        followed.get("busy") == before
    })
    .await;
    assert_eq!(writer.check_rate("ip", "x", 2, 2).await.unwrap(), Ok(()));

    server.kill();
    // A dead Redis fails fast, as unavailable.
    let started = Instant::now();
    let error = writer.bump_version("busy").await.unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
    let error = writer.check_rate("ip", "x", 2, 1).await.unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
    let error = writer.cache_get("q").await.unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    eventually("the reader notices", Duration::from_secs(3), || {
        !followed.is_current()
    })
    .await;
    // Meanwhile the last known versions are still answered.
    assert_eq!(followed.get("busy"), before);

    server.restart();
    // Back without its data: versions start again above every one issued before, the sites
    // never bumped included, so no answer cached before the restart looks fresh.
    let after = eventually_ok("bump after the restart", || writer.bump_version("busy")).await;
    assert!(after > before, "{after} after {before}");
    let took = eventually("the reader resyncs", Duration::from_secs(2), || {
        followed.is_current() && followed.get("busy") == after
    })
    .await;
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(followed.get("quiet") > never_bumped);
    // The limiter's script is loaded again, and the budget started afresh.
    assert_eq!(writer.check_rate("ip", "x", 2, 2).await.unwrap(), Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_times_out_instead_of_holding_requests() {
    let server = OwnRedis::start();
    let options = RedisOptions::default();
    let limit = options.command_timeout;
    let writer = connect_with(&server.url(), options.clone()).await;
    let reader = connect_with(&server.url(), options).await;
    let followed = reader.follow_versions();
    eventually("first sync", Duration::from_secs(2), || {
        followed.is_current()
    })
    .await;

    server.signal("-STOP");
    let started = Instant::now();
    let error = writer.check_rate("ip", "x", 10, 1).await.unwrap_err();
    assert!(
        matches!(
            &error,
            SharedError::Unavailable {
                cause: Unreachable::Timeout { .. },
                ..
            }
        ),
        "{error:?}"
    );
    let error = writer
        .cache_put("q", b"answer", Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
    let took = started.elapsed();
    assert!(
        took >= limit && took < limit * 2 + Duration::from_millis(300),
        "{took:?}"
    );
    eventually("the reader notices", Duration::from_secs(3), || {
        !followed.is_current()
    })
    .await;

    server.signal("-CONT");
    let bumped = eventually_ok("bump after the pause", || writer.bump_version("site")).await;
    eventually("the reader catches up", Duration::from_secs(2), || {
        followed.is_current() && followed.get("site") == bumped
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_match_the_local_governor_limiter() {
    use std::num::NonZeroU32;

    use governor::{Quota, RateLimiter};

    let (redis, _) = two_nodes("governor").await;
    // Quotas of at most 60 a minute refill no faster than a cell a second, so the few
    // milliseconds between the two limiters' checks cannot change a decision.
    let mut seed = 0x2545_f491_u64;
    for per_minute in [1u32, 2, 3, 7, 10, 60] {
        let local = RateLimiter::keyed(Quota::per_minute(NonZeroU32::new(per_minute).unwrap()));
        let key = format!("quota {per_minute}");
        for step in 0..40 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let cells = (seed >> 33) as u32 % (per_minute + 2);
            let shared = check(&redis, &key, per_minute, cells).await;
            let expected = match NonZeroU32::new(cells) {
                None => Ok(()),
                Some(n) => match local.check_key_n(&key, n) {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(not_until)) => Err(not_until.wait_time_from(
                        governor::clock::Clock::now(&governor::clock::DefaultClock::default()),
                    )),
                    Err(_insufficient) => Err(Duration::from_secs(60)),
                },
            };
            let what = format!("{per_minute}/min, step {step}, {cells} cells");
            match (shared, expected) {
                (Ok(()), Ok(())) => {}
                (Err(shared), Err(expected)) => {
                    let gap = shared.abs_diff(expected);
                    assert!(
                        gap < Duration::from_millis(250),
                        "{what}: {shared:?} vs {expected:?}"
                    );
                }
                (shared, expected) => panic!("{what}: shared {shared:?}, governor {expected:?}"),
            }
        }
    }
}

/// Retries `attempt` while Redis is unavailable, for at most 3 s.
async fn eventually_ok<T, F>(what: &str, mut attempt: impl FnMut() -> F) -> T
where
    F: std::future::Future<Output = Result<T, SharedError>>,
{
    let started = Instant::now();
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(error) if error.is_unavailable() && started.elapsed() < Duration::from_secs(3) => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(error) => panic!("{what}: {error:?}"),
        }
    }
}
