//! Segment files and the record frame: naming, encoding, and reading frames back.
//!
//! A segment is named by its base position, `<20-digit zero-padded base>.wal`, so a plain
//! sort of the names is the order of the log. Inside a segment, records are stored back to
//! back as frames:
//!
//! ```text
//! +----------------------+----------------------+------------------------+
//! | payload length (u32) | crc32 of payload u32 | payload (length bytes) |
//! |  little endian       |  little endian       |                        |
//! +----------------------+----------------------+------------------------+
//! ```
//!
//! A frame with a zero length is never written (the append path rejects empty payloads): a
//! zero-filled tail, which a file system may leave behind after a crash, would otherwise
//! read as a run of valid empty records because the crc32 of nothing is zero.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::{Position, Record};

/// Bytes in front of every payload: length and checksum.
pub(super) const FRAME_HEADER_BYTES: u64 = 8;

const SEGMENT_EXTENSION: &str = ".wal";
const SEGMENT_NAME_DIGITS: usize = 20;

/// The file name of the segment starting at `base`.
pub(super) fn file_name(base: Position) -> String {
    format!(
        "{base:0width$}{SEGMENT_EXTENSION}",
        width = SEGMENT_NAME_DIGITS
    )
}

pub(super) fn path(dir: &Path, base: Position) -> PathBuf {
    dir.join(file_name(base))
}

/// The base position encoded in a segment file name, or `None` for any other file.
pub(super) fn parse_file_name(name: &str) -> Option<Position> {
    let digits = name.strip_suffix(SEGMENT_EXTENSION)?;
    if digits.len() != SEGMENT_NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Bytes a payload of `payload_len` bytes takes on disk.
pub(super) fn frame_bytes(payload_len: usize) -> u64 {
    FRAME_HEADER_BYTES + payload_len as u64
}

/// Appends the frame of `payload` to `buf`.
pub(super) fn encode_frame(payload: &[u8], buf: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).expect("append path bounds record length to u32");
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    buf.extend_from_slice(payload);
}

/// Why a frame could not be read.
#[derive(Debug)]
pub(super) enum FrameError {
    /// The bytes are not a valid frame: a torn write, a flipped bit, or a position that is
    /// not a record boundary.
    Invalid(&'static str),
    Io(io::Error),
}

impl From<io::Error> for FrameError {
    fn from(err: io::Error) -> Self {
        FrameError::Io(err)
    }
}

/// Reads one frame from `reader`, which has at most `remaining` bytes of the segment left
/// to give. Returns the payload; the frame took `frame_bytes(payload.len())` bytes.
pub(super) fn read_frame(reader: &mut impl Read, remaining: u64) -> Result<Vec<u8>, FrameError> {
    if remaining < FRAME_HEADER_BYTES {
        return Err(FrameError::Invalid("header runs past the end"));
    }
    let mut header = [0u8; FRAME_HEADER_BYTES as usize];
    read_exact_or_invalid(reader, &mut header)?;
    let len = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
    if len == 0 {
        return Err(FrameError::Invalid("zero length"));
    }
    if u64::from(len) > remaining - FRAME_HEADER_BYTES {
        return Err(FrameError::Invalid("length runs past the end"));
    }
    let mut payload = vec![0u8; len as usize];
    read_exact_or_invalid(reader, &mut payload)?;
    if crc32fast::hash(&payload) != crc {
        return Err(FrameError::Invalid("checksum mismatch"));
    }
    Ok(payload)
}

/// Like `read_exact`, but a file shorter than expected is an invalid frame, not an i/o error.
fn read_exact_or_invalid(reader: &mut impl Read, buf: &mut [u8]) -> Result<(), FrameError> {
    reader.read_exact(buf).map_err(|err| match err.kind() {
        io::ErrorKind::UnexpectedEof => FrameError::Invalid("file ends inside a frame"),
        _ => FrameError::Io(err),
    })
}

/// The result of walking the frames of a segment.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Scan {
    /// Offset within the segment just after the last valid frame.
    pub valid_end: u64,
    /// Valid frames seen.
    pub records: u64,
    /// Why the walk stopped before `limit`, if it did.
    pub stopped_by: Option<&'static str>,
}

/// Walks the frames of `file` from offset `start` up to offset `limit` and reports where the
/// valid prefix ends. Recovery truncates the segment there.
pub(super) fn scan(file: &File, start: u64, limit: u64) -> io::Result<Scan> {
    let mut reader = BufReader::with_capacity(1 << 20, file);
    reader.seek(SeekFrom::Start(start))?;
    let mut offset = start;
    let mut records = 0;
    while offset < limit {
        match read_frame(&mut reader, limit - offset) {
            Ok(payload) => {
                offset += frame_bytes(payload.len());
                records += 1;
            }
            Err(FrameError::Invalid(reason)) => {
                return Ok(Scan {
                    valid_end: offset,
                    records,
                    stopped_by: Some(reason),
                })
            }
            Err(FrameError::Io(err)) => return Err(err),
        }
    }
    Ok(Scan {
        valid_end: offset,
        records,
        stopped_by: None,
    })
}

/// Reads records of the segment at `base` from global position `from` up to global
/// position `end` (exclusive), stopping after `max_records` records or once `max_bytes`
/// of payload were read (but always reading at least one record when one is there).
/// Records are appended to `out`; returns the position after the last record read.
pub(super) fn read_range(
    path: &Path,
    base: Position,
    from: Position,
    end: Position,
    max_records: usize,
    max_bytes: u64,
    out: &mut Vec<Record>,
) -> Result<Position, FrameError> {
    let file = File::open(path)?;
    let buffer = (end - from).clamp(FRAME_HEADER_BYTES, 1 << 20) as usize;
    let mut reader = BufReader::with_capacity(buffer, file);
    reader.seek(SeekFrom::Start(from - base))?;
    let mut position = from;
    let mut bytes = 0u64;
    let mut read = 0usize;
    while position < end && read < max_records && (read == 0 || bytes < max_bytes) {
        let payload = read_frame(&mut reader, end - position)?;
        let next = position + frame_bytes(payload.len());
        bytes += payload.len() as u64;
        read += 1;
        out.push(Record {
            position,
            next,
            payload,
        });
        position = next;
    }
    Ok(position)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    #[test]
    fn file_names_round_trip_and_sort_in_log_order() {
        assert_eq!(file_name(0), "00000000000000000000.wal");
        assert_eq!(file_name(12345), "00000000000000012345.wal");
        assert_eq!(parse_file_name(&file_name(u64::MAX)), Some(u64::MAX));
        assert!(file_name(9) < file_name(10));
    }

    #[test]
    fn other_files_are_not_segments() {
        for name in [
            "checkpoint",
            "checkpoint.tmp",
            "1.wal",
            "0000000000000000000a.wal",
        ] {
            assert_eq!(parse_file_name(name), None, "{name}");
        }
        assert_eq!(parse_file_name("00000000000000000000.wal.tmp"), None);
    }

    fn check_frame(bytes: &[u8], expected: Result<&[u8], &str>) {
        let got = read_frame(&mut Cursor::new(bytes), bytes.len() as u64);
        match (got, expected) {
            (Ok(payload), Ok(want)) => assert_eq!(payload, want),
            (Err(FrameError::Invalid(reason)), Err(want)) => assert_eq!(reason, want),
            (got, expected) => panic!("got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn frames_decode_and_reject_damage() {
        let mut frame = Vec::new();
        encode_frame(b"hello", &mut frame);
        check_frame(&frame, Ok(b"hello"));

        check_frame(&frame[..4], Err("header runs past the end"));
        check_frame(&frame[..10], Err("length runs past the end"));
        check_frame(&[0u8; 16], Err("zero length"));

        let mut flipped = frame.clone();
        flipped[9] ^= 0x01;
        check_frame(&flipped, Err("checksum mismatch"));

        let mut absurd = frame.clone();
        absurd[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        check_frame(&absurd, Err("length runs past the end"));
    }

    #[test]
    fn scan_stops_at_the_first_invalid_frame() {
        let mut file = tempfile::tempfile().unwrap();
        let mut bytes = Vec::new();
        encode_frame(b"one", &mut bytes);
        encode_frame(b"two", &mut bytes);
        let valid = bytes.len() as u64;
        bytes.extend_from_slice(&[7, 0, 0, 0, 1, 2]);
        file.write_all(&bytes).unwrap();

        let scan = scan(&file, 0, bytes.len() as u64).unwrap();
        assert_eq!(scan.valid_end, valid);
        assert_eq!(scan.records, 2);
        assert_eq!(scan.stopped_by, Some("header runs past the end"));
    }
}
