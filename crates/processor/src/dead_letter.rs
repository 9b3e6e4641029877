//! The dead-letter file: events (or undecodable queue records) that can never be stored,
//! each with the reason, so nothing accepted vanishes silently.
//!
//! Format: `dead-letter.ndjson` in the data dir, one JSON object a line:
//! `{"failed_at_ms": 1700000000000, "reason": "...", "event": {...}}` or, for a queue record
//! that does not decode, `{"failed_at_ms": ..., "reason": "...", "record_hex": "..."}`.
//! Each write is fsynced before the queue position moves past it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use heartbeat_model::Event;
use serde::Serialize;

pub struct DeadLetters {
    path: PathBuf,
    written: u64,
}

#[derive(Serialize)]
struct Line<'a> {
    failed_at_ms: i64,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a Event>,
    #[serde(skip_serializing_if = "Option::is_none")]
    record_hex: Option<String>,
}

/// When a line is written: the time it failed for good.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl DeadLetters {
    pub fn new(data_dir: &Path) -> Self {
        DeadLetters {
            path: data_dir.join("dead-letter.ndjson"),
            written: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lines written since start.
    pub fn written(&self) -> u64 {
        self.written
    }

    fn append(&mut self, line: &Line<'_>) -> std::io::Result<()> {
        let mut text = serde_json::to_vec(line)?;
        text.push(b'\n');
        let mut file: File = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(&text)?;
        file.sync_data()?;
        self.written += 1;
        Ok(())
    }

    pub fn event(&mut self, event: &Event, reason: &str) -> std::io::Result<()> {
        tracing::error!(site = %event.site_id, reason, "event sent to the dead-letter file");
        self.append(&Line {
            failed_at_ms: now_ms(),
            reason,
            event: Some(event),
            record_hex: None,
        })
    }

    pub fn record(&mut self, record: &[u8], reason: &str) -> std::io::Result<()> {
        tracing::error!(
            reason,
            bytes = record.len(),
            "queue record sent to the dead-letter file"
        );
        self.append(&Line {
            failed_at_ms: now_ms(),
            reason,
            event: None,
            record_hex: Some(hex::encode(record)),
        })
    }
}
