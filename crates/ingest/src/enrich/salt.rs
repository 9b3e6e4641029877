//! Daily salts for cookieless visitor ids.
//!
//! File `salts.json` in the data dir: `{"day": <days since epoch, UTC>, "current": hex,
//! "previous": hex}`. The salt rotates at midnight UTC; the previous day's salt is kept so a
//! visit spanning midnight can still be matched. Salts are random and never leave the server,
//! so a visitor id cannot be turned back into an IP address.
//!
//! Several ingest nodes must give a visitor the same id, so they share their salts through
//! the metadata store instead ([`Salts::shared`]): the server hands each day's salt in with
//! [`Salts::remember`] ahead of its day (tomorrow's is agreed on today), and the store
//! forgets the salts of days before yesterday, as the file does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use rand::RngCore;
use serde::{Deserialize, Serialize};

const DAY_MS: i64 = 86_400_000;

pub type Salt = [u8; 16];

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SaltFile {
    day: i64,
    current: String,
    previous: String,
}

#[derive(Debug, Clone, Copy)]
struct SaltState {
    day: i64,
    current: Salt,
    previous: Salt,
}

/// The salt store: rotates on the first use after midnight UTC.
pub struct Salts {
    /// Where rotated salts are saved; `None` for shared salts.
    path: Option<PathBuf>,
    state: RwLock<SaltState>,
    /// Shared salts by UTC day, as the metadata store agreed on them.
    shared: Option<RwLock<BTreeMap<i64, Salt>>>,
}

/// Days since the Unix epoch (UTC) at `now_ms`.
pub fn day_of(now_ms: i64) -> i64 {
    now_ms.div_euclid(DAY_MS)
}

/// A new random salt.
pub fn new_salt() -> Salt {
    random_salt()
}

fn random_salt() -> Salt {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    salt
}

fn decode_salt(text: &str) -> Option<Salt> {
    hex::decode(text).ok()?.try_into().ok()
}

impl Salts {
    /// Loads `salts.json` from `dir`, creating it with fresh salts when missing or damaged.
    pub fn open(dir: &Path, now_ms: i64) -> std::io::Result<Self> {
        let path = dir.join("salts.json");
        let loaded = std::fs::read(&path).ok().and_then(|bytes| {
            let file: SaltFile = serde_json::from_slice(&bytes).ok()?;
            Some(SaltState {
                day: file.day,
                current: decode_salt(&file.current)?,
                previous: decode_salt(&file.previous)?,
            })
        });
        let fresh = loaded.is_none();
        let state = loaded.unwrap_or_else(|| SaltState {
            day: now_ms.div_euclid(DAY_MS),
            current: random_salt(),
            previous: random_salt(),
        });
        let salts = Salts {
            path: Some(path),
            state: RwLock::new(state),
            shared: None,
        };
        if fresh {
            salts.persist(&state)?;
        }
        Ok(salts)
    }

    /// Salts shared with other nodes: none until [`Salts::remember`] hands them in. Until
    /// then (and for a day the store never agreed on) a random salt of this node's stands
    /// in, so ingest goes on, with a warning: its visitor ids differ from other nodes'.
    pub fn shared(now_ms: i64) -> Self {
        Salts {
            path: None,
            state: RwLock::new(SaltState {
                day: now_ms.div_euclid(DAY_MS),
                current: random_salt(),
                previous: random_salt(),
            }),
            shared: Some(RwLock::new(BTreeMap::new())),
        }
    }

    /// The salt of UTC `day` as the nodes agreed on it; days before the day before `day`
    /// are forgotten.
    pub fn remember(&self, day: i64, salt: Salt) {
        if let Some(shared) = &self.shared {
            let mut days = shared.write().unwrap_or_else(|p| p.into_inner());
            days.insert(day, salt);
            let newest = *days.keys().next_back().unwrap_or(&day);
            days.retain(|kept, _| *kept >= newest - 2);
        }
    }

    fn persist(&self, state: &SaltState) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let file = SaltFile {
            day: state.day,
            current: hex::encode(state.current),
            previous: hex::encode(state.previous),
        };
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(&file)?)?;
        std::fs::rename(&tmp, path)
    }

    /// Today's salt and yesterday's, rotating first when the UTC day changed.
    pub fn for_time(&self, now_ms: i64) -> (Salt, Salt) {
        let day = now_ms.div_euclid(DAY_MS);
        if let Some(shared) = &self.shared {
            let days = shared.read().unwrap_or_else(|p| p.into_inner());
            if let Some(current) = days.get(&day) {
                let previous = days.get(&(day - 1)).copied().unwrap_or(*current);
                return (*current, previous);
            }
            drop(days);
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                tracing::warn!(
                    day,
                    "no shared salt for today yet: visitor ids use this node's own salt"
                );
            });
        }
        {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            if state.day >= day {
                return (state.current, state.previous);
            }
        }
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if state.day < day {
            let previous = if state.day == day - 1 {
                state.current
            } else {
                random_salt()
            };
            *state = SaltState {
                day,
                current: random_salt(),
                previous,
            };
            if let Err(err) = self.persist(&state) {
                tracing::error!(error = %err, "cannot save rotated salts");
            }
        }
        (state.current, state.previous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_at_midnight_and_keeps_yesterday() {
        let dir = tempfile::tempdir().unwrap();
        let day0 = 20_000 * DAY_MS;
        let salts = Salts::open(dir.path(), day0 + 1000).unwrap();
        let (monday, _) = salts.for_time(day0 + 5000);
        assert_eq!(salts.for_time(day0 + DAY_MS - 1).0, monday);
        let (tuesday, yesterday) = salts.for_time(day0 + DAY_MS);
        assert_ne!(tuesday, monday);
        assert_eq!(yesterday, monday);
        // Survives a restart.
        let reopened = Salts::open(dir.path(), day0 + DAY_MS + 10).unwrap();
        assert_eq!(reopened.for_time(day0 + DAY_MS + 10), (tuesday, monday));
        // After a gap of days, yesterday's salt is new as well.
        let (later, before) = reopened.for_time(day0 + 5 * DAY_MS);
        assert_ne!(later, tuesday);
        assert_ne!(before, tuesday);
    }

    #[test]
    fn shared_salts_are_the_ones_remembered() {
        let day0 = 20_000 * DAY_MS;
        let (one, two) = (Salts::shared(day0), Salts::shared(day0));
        // Before the store agreed on a salt, each node has its own.
        assert_ne!(one.for_time(day0).0, two.for_time(day0).0);
        let (monday, tuesday) = ([1u8; 16], [2u8; 16]);
        for salts in [&one, &two] {
            salts.remember(20_000, monday);
            salts.remember(20_001, tuesday);
        }
        assert_eq!(one.for_time(day0 + 10), (monday, monday));
        assert_eq!(two.for_time(day0 + 10), (monday, monday));
        // Midnight: tomorrow's salt was agreed on ahead, yesterday's stays for a day.
        assert_eq!(one.for_time(day0 + DAY_MS), (tuesday, monday));
        one.remember(20_003, [3u8; 16]);
        assert_eq!(
            one.for_time(day0 + DAY_MS),
            (tuesday, tuesday),
            "salts of days before yesterday are forgotten"
        );
    }
}
