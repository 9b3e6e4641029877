//! `WalQueue`: the embedded write-ahead log behind [`EventQueue`].
//!
//! # On-disk format
//!
//! One directory per queue, used by one process at a time:
//!
//! ```text
//! <dir>/
//!   00000000000000000000.wal   segment starting at position 0
//!   00000000000067108912.wal   segment starting at position 67108912
//!   checkpoint                 the checkpointed position (see checkpoint.rs)
//! ```
//!
//! A position is a global byte offset: the base of a segment (its 20-digit, zero-padded
//! file name) plus the offset within it. A new segment's base is the global end at the time
//! it is created, so positions only grow and a sort of the file names is the log order.
//! Each segment holds records back to back, every one framed as
//! `[u32 LE payload length][u32 LE crc32 of payload][payload]` (see segment.rs).
//!
//! # Invariants
//!
//! - Only the writer thread (writer.rs) appends, and only to the last segment. Segments
//!   before it are sealed and never change again, except truncation during recovery.
//! - The durable end only grows and is published after the `sync_data` that made it so;
//!   readers never read past it, so they never see bytes a crash could take back.
//! - Positions between the end of a sealed segment and the next segment's base exist only
//!   after recovery cut a damaged segment short; readers step over them.
//! - The checkpoint file is written (and fsynced) before the segments it frees are deleted,
//!   and only segments entirely below it, never the last one, are deleted.
//! - Pending bytes (durable end minus checkpoint) above `max_pending_bytes` turn appends
//!   away with [`QueueError::Full`] before anything is written.

mod checkpoint;
mod recovery;
mod segment;
mod writer;

use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tracing::{error, warn};

use crate::{Backlog, Cursor, Delivery, EventQueue, Position, QueueError, Record};
use segment::{FrameError, FRAME_HEADER_BYTES};
use writer::{AppendRequest, Writer};

/// Where and how the WAL keeps its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalConfig {
    /// Directory of the segment files and the checkpoint; created if missing.
    pub dir: PathBuf,
    /// A segment is closed and a new one started once the next record would push it past
    /// this size. Checkpointing frees disk space a whole segment at a time.
    pub segment_bytes: u64,
    /// Appends fail with [`QueueError::Full`] while more than this many bytes are appended
    /// but not checkpointed: the consumer is too far behind.
    pub max_pending_bytes: u64,
    /// Largest payload accepted by `append` (at most `u32::MAX`, the frame's length field).
    pub max_record_bytes: usize,
    /// Payload bytes one read gathers before it returns (at least one record), so that a
    /// consumer asking for many records does not pull a whole segment into memory at once:
    /// the server sets it to `processor.max_batch_bytes`, which bounds a processor step.
    pub max_read_bytes: u64,
}

impl WalConfig {
    /// Defaults: 64 MiB segments, 1 GiB pending, 16 MiB records, 8 MiB reads.
    pub fn new(dir: impl Into<PathBuf>) -> WalConfig {
        WalConfig {
            dir: dir.into(),
            segment_bytes: 64 << 20,
            max_pending_bytes: 1 << 30,
            max_record_bytes: 16 << 20,
            max_read_bytes: 8 << 20,
        }
    }
}

/// What `WalQueue::open` found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments whose frames were checked: the one holding the checkpoint and all later.
    pub segments_scanned: usize,
    /// Valid records from the checkpoint on: what consumers will read (again).
    pub records_found: u64,
    /// Bytes cut from the end of the last segment: a group write torn by a crash. Those
    /// appends were never acknowledged.
    pub torn_tail_bytes: u64,
    /// Bytes cut from segments before the last: damage in the middle of the log, where
    /// acknowledged records were lost. Never expected.
    pub corrupt_bytes: u64,
    /// Segments below the checkpoint that a crash kept from being deleted, deleted now.
    pub stale_segments_deleted: usize,
    /// The checkpoint file was damaged, so reading resumes at the first segment and
    /// consumers see records again.
    pub checkpoint_corrupt: bool,
}

impl RecoveryReport {
    /// All bytes recovery cut away, torn tail and corruption together.
    pub fn truncated_bytes(&self) -> u64 {
        self.torn_tail_bytes + self.corrupt_bytes
    }
}

/// The embedded write-ahead log. Cheap to clone: clones share one log and one writer
/// thread, which stops when the last clone is dropped or on [`WalQueue::close`].
#[derive(Clone)]
pub struct WalQueue {
    inner: Arc<Inner>,
}

/// Owns the writer thread; dropping the last handle closes the queue.
struct Inner {
    shared: Arc<Shared>,
    /// Sends appends to the writer thread. `None` once closed: dropping the sender lets the
    /// writer answer what is still queued, then stop.
    requests: Mutex<Option<mpsc::Sender<AppendRequest>>>,
    /// The writer thread, joined on close so that close returns only after the last
    /// queued append is durable.
    writer: Mutex<Option<JoinHandle<()>>>,
    recovery: RecoveryReport,
}

/// State seen by appenders, readers and the writer thread.
struct Shared {
    config: WalConfig,
    /// Live segments, oldest first. The writer pushes on roll; checkpoints remove from the
    /// front.
    segments: Mutex<Vec<SegmentInfo>>,
    /// End of the fsynced bytes; also sent on `durable_end_watch` to wake readers.
    durable_end: AtomicU64,
    durable_end_watch: watch::Sender<Position>,
    checkpointed: AtomicU64,
    /// Serialises checkpoints so that the file and the atomic move together.
    checkpoint_lock: Mutex<()>,
    /// `sync_data` calls made by the writer: far fewer than appends under load.
    syncs: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SegmentInfo {
    base: Position,
    /// Bytes in a sealed segment; `None` for the active one, which ends at the durable end.
    sealed_len: Option<u64>,
}

/// A readable stretch of one segment.
#[derive(Debug, PartialEq, Eq)]
struct Span {
    base: Position,
    start: Position,
    end: Position,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent across a panic: every critical section is a plain
    // assignment or a push/drain.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Makes creations, renames and deletions of entries in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl WalQueue {
    /// Opens (or creates) the log in `config.dir`, repairs it (see recovery.rs) and starts
    /// the writer thread.
    pub fn open(config: WalConfig) -> Result<WalQueue, QueueError> {
        let recovered = recovery::recover(&config)?;
        let active = *recovered.segments.last().expect("recovery keeps a segment");
        let durable_end = active.base + recovered.active_len;
        let shared = Arc::new(Shared {
            config,
            segments: Mutex::new(recovered.segments),
            durable_end: AtomicU64::new(durable_end),
            durable_end_watch: watch::Sender::new(durable_end),
            checkpointed: AtomicU64::new(recovered.checkpoint),
            checkpoint_lock: Mutex::new(()),
            syncs: AtomicU64::new(0),
        });
        let (sender, receiver) = mpsc::channel();
        let writer = Writer::new(
            Arc::clone(&shared),
            receiver,
            recovered.active_file,
            active.base,
            recovered.active_len,
        )
        .spawn()
        .map_err(|err| QueueError::io("starting the wal writer thread", err))?;
        Ok(WalQueue {
            inner: Arc::new(Inner {
                shared,
                requests: Mutex::new(Some(sender)),
                writer: Mutex::new(Some(writer)),
                recovery: recovered.report,
            }),
        })
    }

    /// Stops taking appends, lets the writer thread make every queued append durable and
    /// waits for it to stop. Later appends fail with [`QueueError::Closed`]; reads keep
    /// working. Blocks the calling thread, so call it from `spawn_blocking` or at shutdown.
    pub fn close(&self) {
        self.inner.close();
    }

    /// What recovery found when this queue was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.inner.recovery
    }

    /// `sync_data` calls made by the writer thread since open.
    pub fn syncs(&self) -> u64 {
        self.inner.shared.syncs.load(Ordering::Relaxed)
    }

    /// The position after the last durable record: where the next append lands.
    pub fn durable_end(&self) -> Position {
        self.inner.shared.durable_end.load(Ordering::Acquire)
    }

    pub fn config(&self) -> &WalConfig {
        &self.inner.shared.config
    }
}

impl fmt::Debug for WalQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WalQueue")
            .field("dir", &self.inner.shared.config.dir)
            .field("durable_end", &self.durable_end())
            .field("checkpointed", &self.checkpointed())
            .finish()
    }
}

impl Inner {
    fn close(&self) {
        drop(lock(&self.requests).take());
        let writer = lock(&self.writer).take();
        if let Some(writer) = writer {
            if writer.join().is_err() {
                error!("wal writer thread panicked");
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shared {
    fn publish_durable_end(&self, end: Position) {
        self.durable_end.store(end, Ordering::Release);
        self.durable_end_watch.send_replace(end);
    }

    fn seal_and_start_segment(&self, sealed_len: u64, base: Position) {
        let mut segments = lock(&self.segments);
        let active = segments
            .last_mut()
            .expect("there is always an active segment");
        active.sealed_len = Some(sealed_len);
        segments.push(SegmentInfo {
            base,
            sealed_len: None,
        });
    }

    fn pending_bytes(&self) -> u64 {
        let durable_end = self.durable_end.load(Ordering::Acquire);
        durable_end.saturating_sub(self.checkpointed.load(Ordering::Acquire))
    }

    /// Where reading from `position` continues: a position below the first segment moves
    /// to the first segment, one at the end of a segment (or in a gap left by recovery)
    /// moves to the next segment. `None` when nothing durable lies at or after it.
    fn locate(&self, position: Position, durable_end: Position) -> Option<Span> {
        let segments = lock(&self.segments);
        let first = segments.first()?;
        let mut position = position.max(first.base);
        let mut index = segments.partition_point(|segment| segment.base <= position) - 1;
        loop {
            let segment = segments[index];
            let end = match segment.sealed_len {
                Some(len) => segment.base + len,
                None => durable_end.max(segment.base),
            };
            if position < end {
                return Some(Span {
                    base: segment.base,
                    start: position,
                    end,
                });
            }
            index += 1;
            position = segments.get(index)?.base;
        }
    }

    fn is_live_segment(&self, base: Position) -> bool {
        lock(&self.segments)
            .iter()
            .any(|segment| segment.base == base)
    }

    /// Reads up to `max_records` records from `from`, not past `durable_end`. Blocking.
    fn read_blocking(
        &self,
        from: Position,
        max_records: usize,
        durable_end: Position,
    ) -> Result<Vec<Record>, QueueError> {
        let mut records = Vec::new();
        let mut position = from;
        let mut payload_bytes = 0u64;
        let max_bytes = self.config.max_read_bytes.max(1);
        while records.len() < max_records && payload_bytes < max_bytes {
            let Some(span) = self.locate(position, durable_end) else {
                break;
            };
            let path = segment::path(&self.config.dir, span.base);
            let read_before = records.len();
            let result = segment::read_range(
                &path,
                span.base,
                span.start,
                span.end,
                max_records - records.len(),
                max_bytes - payload_bytes,
                &mut records,
            );
            payload_bytes += records[read_before..]
                .iter()
                .map(|record| record.payload.len() as u64)
                .sum::<u64>();
            match result {
                Ok(next) => position = next,
                // A checkpoint deleted the segment meanwhile: look again from the same
                // position, which now lies before the first segment.
                Err(FrameError::Io(err))
                    if err.kind() == io::ErrorKind::NotFound
                        && !self.is_live_segment(span.base) =>
                {
                    continue;
                }
                Err(FrameError::Io(err)) => {
                    return Err(QueueError::io(format!("reading {}", path.display()), err));
                }
                Err(FrameError::Invalid(reason)) => {
                    let at = records[read_before..].last().map_or(span.start, |r| r.next);
                    if records.is_empty() {
                        return Err(QueueError::io(
                            format!("reading the wal at position {at}"),
                            io::Error::new(io::ErrorKind::InvalidData, reason),
                        ));
                    }
                    // Hand out the good records first; the next read starts at the bad
                    // frame and reports it.
                    warn!(position = at, reason, "invalid wal frame while reading");
                    break;
                }
            }
        }
        Ok(records)
    }

    fn checkpoint_blocking(&self, upto: Position) -> Result<(), QueueError> {
        let _serialised = lock(&self.checkpoint_lock);
        let durable_end = self.durable_end.load(Ordering::Acquire);
        let upto = if upto > durable_end {
            warn!(
                upto,
                durable_end, "checkpoint past the durable end; checkpointing the durable end"
            );
            durable_end
        } else {
            upto
        };
        if upto <= self.checkpointed.load(Ordering::Acquire) {
            // Checkpoints only move forward; a late or repeated one changes nothing.
            return Ok(());
        }
        checkpoint::store(&self.config.dir, upto)
            .map_err(|err| QueueError::io("writing the wal checkpoint file", err))?;
        self.checkpointed.store(upto, Ordering::Release);

        // Segments whose successor starts at or before `upto` hold only checkpointed
        // records. The last segment never has a successor, so it is never deleted.
        let freed: Vec<Position> = {
            let mut segments = lock(&self.segments);
            let count = segments
                .windows(2)
                .take_while(|pair| pair[1].base <= upto)
                .count();
            segments
                .drain(..count)
                .map(|segment| segment.base)
                .collect()
        };
        for base in freed {
            let path = segment::path(&self.config.dir, base);
            // Not fatal: recovery deletes segments below the checkpoint on the next open.
            if let Err(err) = std::fs::remove_file(&path) {
                if err.kind() != io::ErrorKind::NotFound {
                    warn!(path = %path.display(), error = %err, "cannot delete a checkpointed wal segment");
                }
            }
        }
        Ok(())
    }
}

fn join_error(what: &str, err: tokio::task::JoinError) -> QueueError {
    QueueError::io(what, io::Error::other(err))
}

impl WalQueue {
    /// Appends one record and resolves once it is fsynced; answers where it starts.
    pub async fn append_record(&self, payload: Vec<u8>) -> Result<Position, QueueError> {
        let shared = &self.inner.shared;
        if payload.is_empty() {
            return Err(QueueError::EmptyRecord);
        }
        let limit = shared.config.max_record_bytes.min(u32::MAX as usize);
        if payload.len() > limit {
            return Err(QueueError::RecordTooLarge {
                len: payload.len(),
                limit,
            });
        }
        let pending_bytes = shared.pending_bytes();
        if pending_bytes > shared.config.max_pending_bytes {
            return Err(QueueError::Full {
                pending: pending_bytes,
                limit: shared.config.max_pending_bytes,
                unit: "bytes",
            });
        }
        let (reply, answer) = oneshot::channel();
        {
            let requests = lock(&self.inner.requests);
            let sender = requests.as_ref().ok_or(QueueError::Closed)?;
            sender
                .send(AppendRequest { payload, reply })
                .map_err(|_| QueueError::Closed)?;
        }
        // A dropped reply means the writer thread stopped before answering.
        answer.await.map_err(|_| QueueError::Closed)?
    }

    /// Reads up to `max_records` records starting at `from` (a record's `position` or the
    /// `next` of the record before it), waiting up to `wait` for at least one.
    pub async fn read_records(
        &self,
        from: Position,
        max_records: usize,
        wait: Duration,
    ) -> Result<Vec<Record>, QueueError> {
        if max_records == 0 {
            return Ok(Vec::new());
        }
        let shared = &self.inner.shared;
        let now = tokio::time::Instant::now();
        let deadline = now
            .checked_add(wait)
            .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600));
        let mut durable_end_changes = shared.durable_end_watch.subscribe();
        loop {
            let durable_end = *durable_end_changes.borrow_and_update();
            if shared.locate(from, durable_end).is_some() {
                let shared = Arc::clone(shared);
                let records = tokio::task::spawn_blocking(move || {
                    shared.read_blocking(from, max_records, durable_end)
                })
                .await
                .map_err(|err| join_error("wal read task failed", err))??;
                if !records.is_empty() {
                    return Ok(records);
                }
            }
            match tokio::time::timeout_at(deadline, durable_end_changes.changed()).await {
                Ok(Ok(())) => continue,
                // Timed out, or the queue is gone: nothing came.
                Ok(Err(_)) | Err(_) => return Ok(Vec::new()),
            }
        }
    }

    /// Everything before `upto` is stored: the log may delete it.
    pub async fn checkpoint(&self, upto: Position) -> Result<(), QueueError> {
        let shared = Arc::clone(&self.inner.shared);
        tokio::task::spawn_blocking(move || shared.checkpoint_blocking(upto))
            .await
            .map_err(|err| join_error("wal checkpoint task failed", err))?
    }

    /// The last checkpointed position.
    pub fn checkpointed(&self) -> Position {
        self.inner.shared.checkpointed.load(Ordering::Acquire)
    }

    /// Bytes appended but not yet checkpointed.
    pub fn pending_bytes(&self) -> u64 {
        self.inner.shared.pending_bytes()
    }
}

/// Cursors are the positions just after each record (`Record::next`), so acknowledging a
/// cursor is checkpointing there.
#[async_trait::async_trait]
impl EventQueue for WalQueue {
    async fn append(&self, payload: Vec<u8>) -> Result<Cursor, QueueError> {
        let len = payload.len() as u64;
        let start = self.append_record(payload).await?;
        Ok(Cursor::from_stored(start + FRAME_HEADER_BYTES + len))
    }

    async fn receive(
        &self,
        after: Cursor,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        let records = self.read_records(after.to_stored(), max, wait).await?;
        Ok(records
            .into_iter()
            .map(|record| Delivery {
                cursor: Cursor::from_stored(record.next),
                payload: record.payload,
            })
            .collect())
    }

    async fn ack(&self, upto: Cursor) -> Result<(), QueueError> {
        self.checkpoint(upto.to_stored()).await
    }

    fn acked(&self) -> Cursor {
        Cursor::from_stored(self.checkpointed())
    }

    fn backlog(&self) -> Backlog {
        Backlog {
            messages: None,
            bytes: Some(self.pending_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Segments as `(base, sealed_len)`; the last one is the active one.
    fn check(
        segments: &[(Position, Option<u64>)],
        from: Position,
        expected: Option<(u64, u64, u64)>,
    ) {
        let durable_end = 340;
        let shared = Shared {
            config: WalConfig::new("unused"),
            segments: Mutex::new(
                segments
                    .iter()
                    .map(|&(base, sealed_len)| SegmentInfo { base, sealed_len })
                    .collect(),
            ),
            durable_end: AtomicU64::new(durable_end),
            durable_end_watch: watch::Sender::new(durable_end),
            checkpointed: AtomicU64::new(0),
            checkpoint_lock: Mutex::new(()),
            syncs: AtomicU64::new(0),
        };
        let expected = expected.map(|(base, start, end)| Span { base, start, end });
        assert_eq!(shared.locate(from, durable_end), expected, "from {from}");
    }

    #[test]
    fn locate_steps_over_segment_ends_and_recovery_gaps() {
        // The first segment was cut short by recovery: 150..200 is a gap.
        let segments = [(100, Some(50)), (200, Some(100)), (300, None)];
        check(&segments, 0, Some((100, 100, 150)));
        check(&segments, 120, Some((100, 120, 150)));
        check(&segments, 150, Some((200, 200, 300)));
        check(&segments, 170, Some((200, 200, 300)));
        check(&segments, 299, Some((200, 299, 300)));
        check(&segments, 300, Some((300, 300, 340)));
        check(&segments, 340, None);
        check(&segments, 400, None);
        // An active segment with nothing durable yet.
        check(&[(100, Some(240)), (340, None)], 340, None);
        check(&[(100, Some(240)), (340, None)], 339, Some((100, 339, 340)));
        check(&[], 0, None);
    }
}
