//! The `checkpoint` file: the position a consumer resumes from after a restart.
//!
//! Format, 16 bytes:
//!
//! ```text
//! +-------------+---------------------+--------------------------------+
//! | magic HBCP  | position (u64 LE)   | crc32 of the first 12 bytes LE |
//! +-------------+---------------------+--------------------------------+
//! ```
//!
//! It is replaced atomically: write `checkpoint.tmp`, fsync it, rename it over
//! `checkpoint`, fsync the directory. A crash leaves either the old or the new file; a
//! leftover `checkpoint.tmp` is ignored. The checksum catches a file damaged in any other
//! way, and the caller then falls back to the start of the log (records are delivered again
//! rather than lost).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use super::sync_dir;
use crate::Position;

pub(super) const FILE_NAME: &str = "checkpoint";
const TEMP_FILE_NAME: &str = "checkpoint.tmp";
const MAGIC: [u8; 4] = *b"HBCP";
const FILE_BYTES: usize = 16;

/// What was found in the directory.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Stored {
    Missing,
    Valid(Position),
    /// The file exists but is not a valid checkpoint; says why.
    Corrupt(&'static str),
}

fn encode(position: Position) -> [u8; FILE_BYTES] {
    let mut bytes = [0u8; FILE_BYTES];
    bytes[0..4].copy_from_slice(&MAGIC);
    bytes[4..12].copy_from_slice(&position.to_le_bytes());
    let crc = crc32fast::hash(&bytes[0..12]);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    bytes
}

fn decode(bytes: &[u8]) -> Stored {
    if bytes.len() != FILE_BYTES {
        return Stored::Corrupt("wrong size");
    }
    if bytes[0..4] != MAGIC {
        return Stored::Corrupt("bad magic");
    }
    let crc = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
    if crc32fast::hash(&bytes[0..12]) != crc {
        return Stored::Corrupt("checksum mismatch");
    }
    Stored::Valid(u64::from_le_bytes(
        bytes[4..12].try_into().expect("8 bytes"),
    ))
}

pub(super) fn load(dir: &Path) -> io::Result<Stored> {
    match fs::read(dir.join(FILE_NAME)) {
        Ok(bytes) => Ok(decode(&bytes)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Stored::Missing),
        Err(err) => Err(err),
    }
}

/// Durably replaces the checkpoint file with `position`.
pub(super) fn store(dir: &Path, position: Position) -> io::Result<()> {
    let temp = dir.join(TEMP_FILE_NAME);
    let mut file = File::create(&temp)?;
    file.write_all(&encode(position))?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temp, dir.join(FILE_NAME))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), Stored::Missing);
        store(dir.path(), 42).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Stored::Valid(42));
        store(dir.path(), u64::MAX).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Stored::Valid(u64::MAX));
        assert!(!dir.path().join(TEMP_FILE_NAME).exists());
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let good = encode(0x0102_0304_0506_0708);
        for byte in 0..FILE_BYTES {
            for bit in 0..8 {
                let mut bad = good;
                bad[byte] ^= 1 << bit;
                assert!(
                    matches!(decode(&bad), Stored::Corrupt(_)),
                    "flip of bit {bit} in byte {byte} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn short_and_empty_files_are_corrupt() {
        let good = encode(7);
        assert_eq!(decode(&good[..15]), Stored::Corrupt("wrong size"));
        assert_eq!(decode(&[]), Stored::Corrupt("wrong size"));
        assert_eq!(decode(&[0u8; FILE_BYTES]), Stored::Corrupt("bad magic"));
    }
}
