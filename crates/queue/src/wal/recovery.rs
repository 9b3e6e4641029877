//! Opening a WAL directory: find the segments, load the checkpoint, cut damage away.
//!
//! Only segments that still matter are checked: the one holding the checkpoint (from the
//! checkpoint on) and every later one. In each, frames are walked until the first invalid
//! one (a length of zero or running past the file, or a checksum mismatch) and the file is
//! truncated there.
//!
//! - In the last segment that is a torn tail: a group write cut short by a crash. Its
//!   appends were never acknowledged, so nothing promised is lost (`warn!`).
//! - In an earlier segment it is damage in the middle of the log: acknowledged records
//!   after that point are gone (`error!` with the bytes dropped). Later segments are still
//!   read; the positions skipped in between are never handed out again.
//!
//! Segments entirely below the checkpoint are deleted: a crash came between writing the
//! checkpoint and deleting them. After recovery every byte from the checkpoint to the end
//! of the last segment is a valid, fsynced frame.

use std::fs::{self, File, OpenOptions};

use tracing::{error, info, warn};

use super::{checkpoint, segment, sync_dir, RecoveryReport, SegmentInfo, WalConfig};
use crate::{Position, QueueError};

/// The state of a directory after recovery.
pub(super) struct Recovered {
    /// Segments from the checkpoint's on, oldest first; only the last has no sealed length.
    pub segments: Vec<SegmentInfo>,
    /// The active segment, opened for appending.
    pub active_file: File,
    /// Valid bytes in the active segment.
    pub active_len: u64,
    pub checkpoint: Position,
    pub report: RecoveryReport,
}

pub(super) fn recover(config: &WalConfig) -> Result<Recovered, QueueError> {
    let dir = &config.dir;
    fs::create_dir_all(dir)
        .map_err(|err| QueueError::io(format!("creating {}", dir.display()), err))?;
    let mut report = RecoveryReport::default();

    let stored =
        checkpoint::load(dir).map_err(|err| QueueError::io("reading the checkpoint file", err))?;
    let mut bases = list_segments(config)?;
    if bases.is_empty() {
        // A fresh directory, or one whose segments are all gone: positions carry on from
        // the checkpoint so that they never go backwards.
        let base = match stored {
            checkpoint::Stored::Valid(position) => position,
            _ => 0,
        };
        File::create(segment::path(dir, base))
            .and_then(|_| sync_dir(dir))
            .map_err(|err| QueueError::io("creating the first wal segment", err))?;
        bases.push(base);
    }

    let first = bases[0];
    let mut checkpoint = match stored {
        checkpoint::Stored::Valid(position) => position,
        checkpoint::Stored::Missing => first,
        checkpoint::Stored::Corrupt(reason) => {
            warn!(
                reason,
                resume_from = first,
                "wal checkpoint file is corrupt; records from the first segment will be read again"
            );
            report.checkpoint_corrupt = true;
            first
        }
    };
    let mut rewrite_checkpoint = report.checkpoint_corrupt;
    if checkpoint < first {
        warn!(
            checkpoint,
            first_segment = first,
            "wal checkpoint lies before the first segment; resuming from the first segment"
        );
        checkpoint = first;
        rewrite_checkpoint = true;
    }

    // The segment holding the checkpoint: the last one starting at or before it.
    let start_index = bases.partition_point(|&base| base <= checkpoint) - 1;
    for &base in &bases[..start_index] {
        let path = segment::path(dir, base);
        fs::remove_file(&path).map_err(|err| {
            QueueError::io(format!("deleting checkpointed {}", path.display()), err)
        })?;
        report.stale_segments_deleted += 1;
    }
    let bases = &bases[start_index..];

    let mut segments = Vec::with_capacity(bases.len());
    let mut active_len = 0;
    for (index, &base) in bases.iter().enumerate() {
        let next_base = bases.get(index + 1).copied();
        let is_last = next_base.is_none();
        let path = segment::path(dir, base);
        let context = || format!("recovering {}", path.display());
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|err| QueueError::io(context(), err))?;
        let file_len = file
            .metadata()
            .map_err(|err| QueueError::io(context(), err))?
            .len();
        // A segment may not reach into the next one's positions.
        let limit = next_base.map_or(file_len, |next| file_len.min(next - base));
        let mut start = if index == 0 { checkpoint - base } else { 0 };
        if start > limit {
            warn!(
                checkpoint,
                segment_end = base + limit,
                "wal checkpoint lies past the end of its segment; resuming at the segment end"
            );
            start = limit;
            checkpoint = base + limit;
            rewrite_checkpoint = true;
        }

        let scan =
            segment::scan(&file, start, limit).map_err(|err| QueueError::io(context(), err))?;
        report.segments_scanned += 1;
        report.records_found += scan.records;
        let dropped = file_len - scan.valid_end;
        if dropped > 0 {
            let reason = scan.stopped_by.unwrap_or("overlaps the next segment");
            if is_last {
                warn!(
                    segment = base,
                    bytes_dropped = dropped,
                    reason,
                    "truncating a torn tail of the wal"
                );
                report.torn_tail_bytes += dropped;
            } else {
                error!(
                    segment = base,
                    offset = scan.valid_end,
                    bytes_dropped = dropped,
                    reason,
                    "wal segment is corrupt in the middle of the log; dropping the rest of it"
                );
                report.corrupt_bytes += dropped;
            }
            file.set_len(scan.valid_end)
                .and_then(|()| file.sync_all())
                .map_err(|err| QueueError::io(context(), err))?;
        } else if is_last {
            // Bytes written before a crash may have survived without their sync: make them
            // durable before they are handed out.
            file.sync_data()
                .map_err(|err| QueueError::io(context(), err))?;
        }

        if is_last {
            active_len = scan.valid_end;
        }
        segments.push(SegmentInfo {
            base,
            sealed_len: (!is_last).then_some(scan.valid_end),
        });
    }

    if rewrite_checkpoint {
        checkpoint::store(dir, checkpoint)
            .map_err(|err| QueueError::io("rewriting the checkpoint file", err))?;
    }

    let active = segments.last().expect("at least one segment").base;
    let active_file = OpenOptions::new()
        .append(true)
        .open(segment::path(dir, active))
        .map_err(|err| QueueError::io("opening the active wal segment", err))?;
    info!(
        dir = %dir.display(),
        checkpoint,
        end = active + active_len,
        segments = segments.len(),
        records = report.records_found,
        "wal recovered"
    );
    Ok(Recovered {
        segments,
        active_file,
        active_len,
        checkpoint,
        report,
    })
}

/// Base positions of the segment files in the directory, oldest first.
fn list_segments(config: &WalConfig) -> Result<Vec<Position>, QueueError> {
    let dir = &config.dir;
    let context = || format!("listing {}", dir.display());
    let mut bases = Vec::new();
    for entry in fs::read_dir(dir).map_err(|err| QueueError::io(context(), err))? {
        let entry = entry.map_err(|err| QueueError::io(context(), err))?;
        if let Some(base) = entry
            .file_name()
            .to_str()
            .and_then(segment::parse_file_name)
        {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}
