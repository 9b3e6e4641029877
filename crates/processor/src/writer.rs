//! Writing a prepared batch to the store, on a task of its own, so the processor reads,
//! deduplicates and sessionizes the next batch while the store commits this one.
//!
//! Faults: a store that is unavailable is retried with exponential backoff for as long as it
//! takes. Data the store rejects is split in halves until the events it cannot take are
//! found; those go to the dead-letter file with the reason, and everything else is stored.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use heartbeat_store::{EventWriter, InsertBatch, StoreError};
use tokio::task::JoinHandle;

use crate::dead_letter::DeadLetters;
use crate::stats::ProcessorStats;

/// How a write is retried.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retry {
    pub initial: Duration,
    pub max: Duration,
    /// Attempts at data the store rejects before splitting it.
    pub rejected_attempts: u32,
}

/// What a batch is written with: the processor's store, dead-letter file, counters and
/// retry settings, cloned for each write.
#[derive(Clone)]
pub(crate) struct Writer {
    pub store: Arc<dyn EventWriter>,
    pub dead_letters: Arc<Mutex<DeadLetters>>,
    pub stats: Arc<ProcessorStats>,
    pub retry: Retry,
}

/// A batch on its way into the store: the task resolves to the number of its events sent
/// to the dead-letter file, once the store holds everything else and the batch's queue
/// position. Dropped before it resolves (a processor stopped past its grace), the task is
/// aborted: no retry of a stopped processor's batch may commit after a new one started.
pub(crate) struct Write(JoinHandle<std::io::Result<u64>>);

impl std::future::Future for Write {
    type Output = Result<std::io::Result<u64>, tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

impl Drop for Write {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Writer {
    /// Starts writing `batch`; `previous_position` is the queue position the store holds
    /// before it (a rejected batch's first half keeps it).
    pub fn spawn(&self, batch: Arc<InsertBatch>, previous_position: u64) -> Write {
        let writer = self.clone();
        Write(tokio::spawn(async move {
            writer.store_with_retries(batch, previous_position).await
        }))
    }

    /// Stores `batch`, retrying and splitting as the module docs say. Returns the number of
    /// events sent to the dead-letter file.
    async fn store_with_retries(
        &self,
        batch: Arc<InsertBatch>,
        previous_position: u64,
    ) -> std::io::Result<u64> {
        let mut delay = self.retry.initial;
        let mut rejections = 0;
        let reason = loop {
            match self.store.insert(batch.clone()).await {
                Ok(()) => return Ok(0),
                Err(StoreError::Rejected { message }) => {
                    rejections += 1;
                    tracing::warn!(error = %message, events = batch.events.len(), "store rejected a batch");
                    if rejections >= self.retry.rejected_attempts {
                        break message;
                    }
                }
                Err(err) => tracing::warn!(error = %err, "store write failed, retrying"),
            }
            self.stats.store_retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.retry.max);
        };
        if batch.events.len() <= 1 {
            return self.dead_letter(batch, &reason).await;
        }
        let (left, right) = split(&batch, previous_position);
        let dead_left =
            Box::pin(self.store_with_retries(Arc::new(left), previous_position)).await?;
        let dead_right =
            Box::pin(self.store_with_retries(Arc::new(right), previous_position)).await?;
        Ok(dead_left + dead_right)
    }

    /// Writes the events of a rejected single-event batch to the dead-letter file, then
    /// stores what is left (its visit rows, else only the queue position).
    async fn dead_letter(&self, batch: Arc<InsertBatch>, reason: &str) -> std::io::Result<u64> {
        {
            let mut dead_letters = self
                .dead_letters
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for event in &batch.events {
                dead_letters.event(event, reason)?;
                self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
            }
        }
        let rest = Arc::new(InsertBatch {
            events: Vec::new(),
            sessions: batch.sessions.clone(),
            queue_position: batch.queue_position,
        });
        if !rest.sessions.is_empty() && self.store.insert(rest).await.is_ok() {
            return Ok(batch.events.len() as u64);
        }
        let position_only = Arc::new(InsertBatch {
            queue_position: batch.queue_position,
            ..InsertBatch::default()
        });
        let mut delay = self.retry.initial;
        while let Err(err) = self.store.insert(position_only.clone()).await {
            tracing::warn!(error = %err, "cannot record the queue position, retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.retry.max);
        }
        Ok(batch.events.len() as u64)
    }
}

/// Splits a batch in two halves of its events. Visit rows go with the half holding their
/// visit's first event. The first half keeps the previous queue position so the position
/// only moves past the records once the second half is stored.
fn split(batch: &InsertBatch, previous_position: u64) -> (InsertBatch, InsertBatch) {
    let mut events = batch.events.clone();
    let right_events = events.split_off(events.len() / 2);
    let left_sessions: HashSet<u64> = events.iter().map(|e| e.session_id).collect();
    let (left_rows, right_rows) = batch
        .sessions
        .iter()
        .cloned()
        .partition(|row| left_sessions.contains(&row.session.session_id));
    (
        InsertBatch {
            events,
            sessions: left_rows,
            queue_position: previous_position,
        },
        InsertBatch {
            events: right_events,
            sessions: right_rows,
            queue_position: batch.queue_position,
        },
    )
}
