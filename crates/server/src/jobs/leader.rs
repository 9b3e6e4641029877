//! The jobs a cluster runs once, not once per node: evaluating alert rules, sending their
//! deliveries and reports, deleting events past retention. Among the nodes that share their
//! metadata in PostgreSQL, the one holding the jobs' lease ([`Leases`], an advisory lock on
//! its own connection) runs them; the others try for the lease every few seconds, so when
//! that node stops or dies another takes the jobs over.

use std::time::Duration;

use heartbeat_meta_postgres::Leases;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::telemetry;

/// Starts the jobs, each stopping when its receiver turns true.
pub type StartJobs = Box<dyn Fn(watch::Receiver<bool>) -> Vec<JoinHandle<()>> + Send + Sync>;

/// How often a node that does not hold the lease tries for it.
const TRY_EVERY: Duration = Duration::from_secs(5);

/// The jobs' lease within the space: the only one there.
const JOBS: u32 = 0;

/// Runs the jobs while this node holds the lease `space` in PostgreSQL at `meta_url`, until
/// `stop`.
pub async fn run(
    meta_url: String,
    space: String,
    start: StartJobs,
    mut stop: watch::Receiver<bool>,
) {
    metrics::gauge!(telemetry::CLUSTER_JOBS_LEADER).set(0.0);
    let mut leases: Option<Leases> = None;
    let mut running: Option<(watch::Sender<bool>, Vec<JoinHandle<()>>)> = None;
    while !*stop.borrow() {
        if leases.as_ref().is_none_or(Leases::is_lost) {
            if let Some(jobs) = running.take() {
                tracing::warn!("the jobs' lease is lost: stopping the cluster's jobs here");
                end(jobs).await;
            }
            leases = match Leases::join(&meta_url, &space).await {
                Ok(joined) => Some(joined),
                Err(err) => {
                    tracing::warn!(%err, "cannot reach PostgreSQL for the jobs' lease; retrying");
                    None
                }
            };
        }
        if let (Some(lease), None) = (&leases, &running) {
            match lease.try_take(JOBS).await {
                Ok(true) => {
                    tracing::info!(
                        "this node runs the cluster's jobs (alerts, reports, retention)"
                    );
                    let (tx, rx) = watch::channel(false);
                    running = Some((tx, start(rx)));
                    metrics::gauge!(telemetry::CLUSTER_JOBS_LEADER).set(1.0);
                }
                Ok(false) => {}
                Err(err) => tracing::warn!(%err, "cannot try for the jobs' lease"),
            }
        }
        tokio::select! {
            () = tokio::time::sleep(TRY_EVERY) => {}
            _ = stop.changed() => {}
        }
    }
    if let Some(jobs) = running.take() {
        end(jobs).await;
    }
}

async fn end((stop, tasks): (watch::Sender<bool>, Vec<JoinHandle<()>>)) {
    let _ = stop.send(true);
    for task in tasks {
        let _ = task.await;
    }
    metrics::gauge!(telemetry::CLUSTER_JOBS_LEADER).set(0.0);
}
