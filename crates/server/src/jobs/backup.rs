//! Consistent online backups of the data dir.
//!
//! With the store's writes paused ([`DuckDbStore::with_writes_paused`]: every committed
//! transaction checkpointed into the file, the processor waiting), the DuckDB file, the
//! write-ahead log, the salts and the admin token are copied into
//! `<data_dir>/backups/<UTC time>/`. The copied log holds at least everything after the
//! copied store's queue position (the processor cannot move it while writes are paused), so
//! acknowledged events not yet stored are in the backup too; a record still being appended
//! may be torn at the end of the copy, and the log's recovery drops it as after a crash.
//! Ingest goes on throughout.
//!
//! To restore: stop the server and start it with the backup directory as its data dir (or
//! copy the directory's contents into an empty data dir).

use std::path::{Path, PathBuf};

use heartbeat_store::StoreError;
use heartbeat_store_duckdb::DuckDbStore;

/// What a backup needs: the store and where the files are.
pub struct Backup {
    /// The embedded store; `None` when the events are in ClickHouse, whose own tools back
    /// them up.
    pub store: Option<DuckDbStore>,
    pub data_dir: PathBuf,
    pub store_path: PathBuf,
}

/// A finished backup.
pub struct BackupReport {
    pub path: PathBuf,
    pub bytes: u64,
}

/// Copies `from` into `to` (created), tolerating files that disappear meanwhile (log
/// segments freed by a checkpoint). Returns the bytes copied.
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<u64> {
    std::fs::create_dir_all(to)?;
    let mut bytes = 0;
    let mut entries: Vec<_> = std::fs::read_dir(from)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            bytes += copy_dir(&entry.path(), &target)?;
        } else if kind.is_file() {
            match std::fs::copy(entry.path(), &target) {
                Ok(n) => bytes += n,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
    }
    Ok(bytes)
}

fn copy_if_present(from: &Path, to: &Path) -> std::io::Result<u64> {
    match std::fs::copy(from, to) {
        Ok(n) => Ok(n),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(err) => Err(err),
    }
}

impl Backup {
    /// Takes a backup now.
    pub async fn run(&self) -> Result<BackupReport, StoreError> {
        let Some(store) = &self.store else {
            return Err(StoreError::Rejected {
                message: "the events are in ClickHouse: back them up with ClickHouse's own \
                          tools (clickhouse-backup, ALTER TABLE ... FREEZE), and the metadata \
                          with pg_dump"
                    .into(),
            });
        };
        let name = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string();
        let target = self.data_dir.join("backups").join(name);
        let data_dir = self.data_dir.clone();
        let store_path = self.store_path.clone();
        let path = target.clone();
        let bytes = store
            .with_writes_paused(move || {
                std::fs::create_dir_all(&target)?;
                let mut bytes = std::fs::copy(&store_path, target.join("heartbeat.duckdb"))?;
                let mut duckdb_wal = store_path.clone().into_os_string();
                duckdb_wal.push(".wal");
                bytes +=
                    copy_if_present(Path::new(&duckdb_wal), &target.join("heartbeat.duckdb.wal"))?;
                bytes += copy_dir(&data_dir.join("wal"), &target.join("wal"))?;
                for file in ["salts.json", "admin-token"] {
                    bytes += copy_if_present(&data_dir.join(file), &target.join(file))?;
                }
                Ok(bytes)
            })
            .await?;
        tracing::info!(path = %path.display(), bytes, "backup written");
        Ok(BackupReport { path, bytes })
    }
}
