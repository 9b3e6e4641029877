//! The writer thread: the only code that writes segment files (after recovery).
//!
//! Appenders send an [`AppendRequest`] over a channel and await a oneshot reply. The thread
//! takes everything waiting (up to [`GROUP_MAX_BYTES`]), encodes it into one buffer, writes
//! it with one `write` and makes it durable with one `sync_data`: one fsync for the whole
//! group (group commit). Only then does it publish the new durable end to readers and
//! answer each appender with its record's position.
//!
//! Invariants:
//! - a position is handed out only after the bytes before it and the record itself are
//!   fsynced, so an acknowledged append survives a crash;
//! - a segment holds at most `segment_bytes`, unless it holds a single larger record; a
//!   roll syncs the old segment first, then creates the new one (named by the global end)
//!   and fsyncs the directory before anything is written to it;
//! - after a failed write or sync the file is truncated back to its durable length, so a
//!   failed append never leaves bytes that a later append would be stacked on.
//!
//! The thread stops when every sender is dropped (on close), after answering all requests
//! still in the channel.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};

use tokio::sync::oneshot;
use tracing::{debug, error};

use super::{segment, sync_dir, Shared};
use crate::{Position, QueueError};

/// Most bytes written by one group; a larger first record is written alone.
const GROUP_MAX_BYTES: u64 = 8 << 20;

/// One append on its way to the writer thread.
pub(super) struct AppendRequest {
    pub payload: Vec<u8>,
    /// Answered with the record's position once it is durable.
    pub reply: oneshot::Sender<Result<Position, QueueError>>,
}

pub(super) struct Writer {
    shared: Arc<Shared>,
    requests: mpsc::Receiver<AppendRequest>,
    /// A request taken from the channel that did not fit into the previous group.
    carry: Option<AppendRequest>,
    /// The active (last) segment, opened for appending.
    file: File,
    /// Base position of the active segment.
    base: Position,
    /// Durable bytes in the active segment; the file holds nothing beyond them.
    len: u64,
}

impl Writer {
    pub(super) fn new(
        shared: Arc<Shared>,
        requests: mpsc::Receiver<AppendRequest>,
        file: File,
        base: Position,
        len: u64,
    ) -> Writer {
        Writer {
            shared,
            requests,
            carry: None,
            file,
            base,
            len,
        }
    }

    pub(super) fn spawn(self) -> io::Result<JoinHandle<()>> {
        thread::Builder::new()
            .name("heartbeat-wal-writer".into())
            .spawn(move || self.run())
    }

    fn run(mut self) {
        while let Some(group) = self.next_group() {
            if let Err(err) = self.commit(group) {
                error!(error = %err, "wal writer cannot recover from a failed write; stopping");
                return;
            }
        }
        debug!("wal writer stopped");
    }

    /// Blocks for the first request, then takes whatever else is already waiting.
    fn next_group(&mut self) -> Option<Vec<AppendRequest>> {
        let first = match self.carry.take() {
            Some(request) => request,
            None => self.requests.recv().ok()?,
        };
        let mut bytes = segment::frame_bytes(first.payload.len());
        let mut group = vec![first];
        while bytes < GROUP_MAX_BYTES {
            let Ok(request) = self.requests.try_recv() else {
                break;
            };
            let frame = segment::frame_bytes(request.payload.len());
            if bytes + frame > GROUP_MAX_BYTES {
                self.carry = Some(request);
                break;
            }
            bytes += frame;
            group.push(request);
        }
        Some(group)
    }

    /// Writes and syncs a group, then answers every appender. Returns an error only when
    /// the writer cannot go on (the file could not be restored after a failure).
    fn commit(&mut self, group: Vec<AppendRequest>) -> io::Result<()> {
        let segment_bytes = self.shared.config.segment_bytes;
        let mut buf = Vec::new();
        let mut positions = Vec::with_capacity(group.len());
        let mut durable_count = 0;
        let mut failure = None;
        for request in &group {
            let frame = segment::frame_bytes(request.payload.len());
            let used = self.len + buf.len() as u64;
            if used > 0 && used + frame > segment_bytes {
                if let Err(err) = self.flush(&mut buf) {
                    failure = Some(err);
                    break;
                }
                durable_count = positions.len();
                if let Err(err) = self.roll() {
                    failure = Some(err);
                    break;
                }
            }
            positions.push(self.base + self.len + buf.len() as u64);
            segment::encode_frame(&request.payload, &mut buf);
        }
        if failure.is_none() {
            match self.flush(&mut buf) {
                Ok(()) => durable_count = positions.len(),
                Err(err) => failure = Some(err),
            }
        }

        for (index, request) in group.into_iter().enumerate() {
            let answer = if index < durable_count {
                Ok(positions[index])
            } else {
                let err = failure
                    .as_ref()
                    .expect("records miss the sync only after a failure");
                Err(QueueError::io(
                    "appending to the wal",
                    io::Error::new(err.kind(), err.to_string()),
                ))
            };
            // The appender may have given up waiting; its record is durable all the same.
            let _ = request.reply.send(answer);
        }

        match failure {
            None => Ok(()),
            Some(err) => {
                error!(error = %err, base = self.base, "wal append failed; dropping the unsynced bytes");
                self.file.set_len(self.len)?;
                self.file.sync_all()
            }
        }
    }

    /// Writes `buf` to the active segment, syncs it and publishes the new durable end.
    fn flush(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        self.file.write_all(buf)?;
        self.file.sync_data()?;
        self.len += buf.len() as u64;
        buf.clear();
        self.shared.syncs.fetch_add(1, Ordering::Relaxed);
        self.shared.publish_durable_end(self.base + self.len);
        Ok(())
    }

    /// Seals the active segment and starts a new one at the global end.
    fn roll(&mut self) -> io::Result<()> {
        let dir = &self.shared.config.dir;
        let base = self.base + self.len;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(segment::path(dir, base))?;
        sync_dir(dir)?;
        self.shared.seal_and_start_segment(self.len, base);
        debug!(
            sealed_base = self.base,
            sealed_bytes = self.len,
            base,
            "wal segment rolled"
        );
        self.file = file;
        self.base = base;
        self.len = 0;
        Ok(())
    }
}
