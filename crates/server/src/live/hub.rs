//! What the live streams share, kept in the server's state: the processor's feed of
//! committed batches and the server's stop signal.

use std::sync::Arc;

use heartbeat_store::InsertBatch;
use tokio::sync::{broadcast, watch};

/// What the live streams share: the processor's feed of committed batches and the server's
/// stop signal.
#[derive(Clone)]
pub struct LiveHub {
    /// Every batch once the store has committed it (`Processor::subscribe`).
    pub stored: broadcast::Sender<Arc<InsertBatch>>,
    /// Turns true when the server stops; streams then close.
    pub shutdown: watch::Receiver<bool>,
}
