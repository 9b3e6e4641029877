//! Shared GCRA rate limits: `governor`'s `Quota::per_minute(n)` and `check_key_n`, decided
//! atomically inside Redis by one Lua script on Redis's own clock (the math is in the crate
//! documentation).
//!
//! Key: `<prefix>rate:<limiter>:<key>`, a string holding the theoretical arrival time in µs
//! since the Unix epoch (Redis `TIME`), expiring when that time has passed.

use std::sync::LazyLock;
use std::time::Duration;

use crate::{RedisShared, SharedError};

/// One conforming-or-not decision. `ARGV`: the emission interval `T` (µs per cell), the burst
/// tolerance `τ` (µs) and the cells asked for. Returns 0 when the cells are granted, else
/// the wait in µs (at least 1).
///
/// Times stay well under 2^53 µs, so Lua's doubles hold them exactly; `%.0f` writes them
/// without an exponent.
static GCRA: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local t = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local cells = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
local weight = t * (cells - 1)
local earliest = tat + weight - tau
if now < earliest then
  return earliest - now
end
local next_tat = math.max(tat, now) + t + weight
redis.call('SET', KEYS[1], string.format('%.0f', next_tat),
  'PX', math.max(1, math.ceil((next_tat - now) / 1000)))
return 0
"#,
    )
});

/// The wait `governor` gives a request larger than the whole burst: one period.
const OVER_BURST_WAIT: Duration = Duration::from_secs(60);

impl RedisShared {
    /// Takes `cells` from `key`'s budget of `per_minute` cells a minute in limiter `limiter`
    /// (say `"client_ip"`), shared by every node: `Ok(Ok(()))` when granted, `Ok(Err(wait))`
    /// when refused, with the time until the same request would be granted.
    ///
    /// `per_minute` 0 counts as 1, as in the server's local limiter. Zero cells are always
    /// granted and more cells than `per_minute` never are (`Err(60 s)`), both without a round
    /// trip.
    pub async fn check_rate(
        &self,
        limiter: &str,
        key: &str,
        per_minute: u32,
        cells: u32,
    ) -> Result<Result<(), Duration>, SharedError> {
        let burst = per_minute.max(1);
        if cells == 0 {
            return Ok(Ok(()));
        }
        if cells > burst {
            return Ok(Err(OVER_BURST_WAIT));
        }
        let (t_us, tau_us) = gcra_parameters(burst);
        let key = self.key("rate:", &format!("{limiter}:{key}"));
        let wait_us: u64 = self
            .run("check_rate", |mut connection| async move {
                GCRA.key(key)
                    .arg(t_us)
                    .arg(tau_us)
                    .arg(cells)
                    .invoke_async(&mut connection)
                    .await
            })
            .await?;
        Ok(match wait_us {
            0 => Ok(()),
            wait_us => Err(Duration::from_micros(wait_us)),
        })
    }
}

/// The emission interval `T` and the burst tolerance `τ = T · (burst − 1)` of
/// `Quota::per_minute(burst)`, in µs (`governor` keeps ns; the difference is under 1 µs a
/// cell).
fn gcra_parameters(burst: u32) -> (u64, u64) {
    let t_us = (60_000_000 / u64::from(burst)).max(1);
    (t_us, t_us * u64::from(burst - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_match_per_minute_quotas() {
        assert_eq!(gcra_parameters(1), (60_000_000, 0));
        assert_eq!(gcra_parameters(60), (1_000_000, 59_000_000));
        assert_eq!(gcra_parameters(1200), (50_000, 59_950_000));
        // Faster than one cell a µs still refills.
        assert_eq!(gcra_parameters(u32::MAX).0, 1);
    }
}
