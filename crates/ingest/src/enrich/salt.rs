//! Daily salts for cookieless visitor ids.
//!
//! File `salts.json` in the data dir: `{"day": <days since epoch, UTC>, "current": hex,
//! "previous": hex}`. The salt rotates at midnight UTC; the previous day's salt is kept so a
//! visit spanning midnight can still be matched. Salts are random and never leave the server,
//! so a visitor id cannot be turned back into an IP address.

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
    path: PathBuf,
    state: RwLock<SaltState>,
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
            path,
            state: RwLock::new(state),
        };
        if fresh {
            salts.persist(&state)?;
        }
        Ok(salts)
    }

    fn persist(&self, state: &SaltState) -> std::io::Result<()> {
        let file = SaltFile {
            day: state.day,
            current: hex::encode(state.current),
            previous: hex::encode(state.previous),
        };
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(&file)?)?;
        std::fs::rename(&tmp, &self.path)
    }

    /// Today's salt and yesterday's, rotating first when the UTC day changed.
    pub fn for_time(&self, now_ms: i64) -> (Salt, Salt) {
        let day = now_ms.div_euclid(DAY_MS);
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
}
