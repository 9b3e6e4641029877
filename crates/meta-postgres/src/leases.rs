//! Leases among the nodes of a cluster: which worker stores which queue partition, one at a
//! time. Each lease is a PostgreSQL advisory lock held on one connection of the node's own
//! (not the pool's), so it lasts exactly as long as that connection: a node that stops, is
//! killed or loses the server loses its leases at once, and PostgreSQL itself says who
//! holds what; there is no lease table to expire or clean up.
//!
//! Members announce themselves with a shared lock on key 0 of their lease space; the count
//! of its holders is how many nodes share the partitions out. Partition `p` is key `p + 1`.
//! The space is a hash of a name (the queue's), so clusters sharing one PostgreSQL server
//! do not meet.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use heartbeat_store::StoreError;
use tokio_postgres::NoTls;

use crate::classify;

/// One node's membership in a lease space, and the leases it holds.
pub struct Leases {
    client: tokio_postgres::Client,
    space: i32,
    /// Set once the connection (and with it every lease) is gone.
    lost: Arc<AtomicBool>,
}

/// The lease space of `name`: 31 bits of a stable hash (FNV-1a), the same on every node.
fn space_of(name: &str) -> i32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in name.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    (hash & 0x7fff_ffff) as i32
}

impl Leases {
    /// Connects to `url` and joins the lease space `name` as one more member.
    pub async fn join(url: &str, name: &str) -> Result<Leases, StoreError> {
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(|err| classify(err, "lease connection"))?;
        let lost = Arc::new(AtomicBool::new(false));
        let flag = lost.clone();
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::warn!(%err, "the lease connection to PostgreSQL ended");
            }
            flag.store(true, Ordering::SeqCst);
        });
        let leases = Leases {
            client,
            space: space_of(name),
            lost,
        };
        leases
            .client
            .execute("SELECT pg_advisory_lock_shared($1, 0)", &[&leases.space])
            .await
            .map_err(|err| classify(err, "joining the lease space"))?;
        Ok(leases)
    }

    /// Whether the connection is gone, and every lease with it: the holder must stop what
    /// the leases covered at once.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst) || self.client.is_closed()
    }

    /// How many nodes are members now (this one included).
    pub async fn members(&self) -> Result<u32, StoreError> {
        let row = self
            .client
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
                 AND classid::bigint = $1 AND objid::bigint = 0 AND objsubid = 2 \
                 AND mode = 'ShareLock' AND granted",
                &[&i64::from(self.space)],
            )
            .await
            .map_err(|err| classify(err, "counting the members"))?;
        Ok(row.get::<_, i64>(0).max(1) as u32)
    }

    /// Takes lease `key` if no member holds it; true when this node holds it now. Taking a
    /// lease this node holds counts it twice (PostgreSQL's locks nest): take each once.
    pub async fn try_take(&self, key: u32) -> Result<bool, StoreError> {
        let row = self
            .client
            .query_one(
                "SELECT pg_try_advisory_lock($1, $2)",
                &[&self.space, &lock_key(key)],
            )
            .await
            .map_err(|err| classify(err, "taking a lease"))?;
        Ok(row.get(0))
    }

    /// Gives lease `key` up.
    pub async fn release(&self, key: u32) -> Result<(), StoreError> {
        self.client
            .execute(
                "SELECT pg_advisory_unlock($1, $2)",
                &[&self.space, &lock_key(key)],
            )
            .await
            .map_err(|err| classify(err, "releasing a lease"))?;
        Ok(())
    }

    /// Whether this node still holds lease `key`, asked of the server (a round trip): the
    /// check a holder makes before each write the lease covers.
    pub async fn holds(&self, key: u32) -> Result<bool, StoreError> {
        let row = self
            .client
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
                 AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 2 \
                 AND mode = 'ExclusiveLock' AND granted AND pid = pg_backend_pid()",
                &[&i64::from(self.space), &i64::from(lock_key(key))],
            )
            .await
            .map_err(|err| classify(err, "checking a lease"))?;
        Ok(row.get::<_, i64>(0) > 0)
    }
}

/// Lease `key`'s lock number: 0 is the members' lock.
fn lock_key(key: u32) -> i32 {
    (key as i32).wrapping_add(1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn spaces_are_stable_and_positive() {
        assert_eq!(
            super::space_of("heartbeat.events"),
            super::space_of("heartbeat.events")
        );
        assert_ne!(super::space_of("a"), super::space_of("b"));
        assert!(super::space_of("anything at all") >= 0);
    }
}
