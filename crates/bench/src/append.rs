//! `append`: DuckDB's own Appender writing the rows a stopped server stored, into a new
//! database with the same tables, in steps of the processor's size. It is the raw figure the
//! processor's storing rate is compared with (issue 19: the processor at least half of it).
//!
//! Every stored row of the tables the processor writes (events, their properties, the visit
//! log, both rollup tables) is read from the source (not timed) and appended once, each
//! table's rows spread evenly over the steps, one transaction a step; the new database has
//! the server's settings (memory limit, checkpoint threshold), so DuckDB's checkpoints fall
//! inside the timed commits as they do in the server. What the raw figure leaves out is the
//! processor's own work: decoding the queue, dedup, sessionizing, counting rollup cells, and
//! rewriting a cell each time a step changes it (the source holds each cell once, merged).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use duckdb::types::{ToSql, Value};
use duckdb::{Config, Connection};
use serde::Serialize;

use crate::raw::open_read_only;
use crate::server_memory::own_peak_rss_kib;

/// The tables the processor appends to, in the order it writes them within a step.
const TABLES: [&str; 5] = [
    "events",
    "event_props",
    "sessions",
    "rollups_hourly",
    "rollups_daily",
];

#[derive(Debug, clap::Args)]
pub struct AppendArgs {
    /// The stopped server's database, `<data-dir>/heartbeat.duckdb`; opened read-only.
    #[arg(long)]
    db: PathBuf,
    /// The database to create and append to; must not exist yet.
    #[arg(long)]
    out: PathBuf,
    /// Events a step appends (with its share of the other tables' rows): a processor step of
    /// 2 MiB of the queue holds about 30,000 generated events.
    #[arg(long, default_value_t = 30_000)]
    step_events: u64,
    /// DuckDB's memory limit for the new database, as the server's `--store-memory-limit`.
    #[arg(long, default_value = "512MB")]
    memory_limit: String,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// What one table took.
#[derive(Debug, Serialize)]
struct TableReport {
    table: &'static str,
    rows: u64,
    columns: usize,
    append_seconds: f64,
}

#[derive(Debug, Serialize)]
struct AppendReport {
    steps: u64,
    events: u64,
    rows: u64,
    /// Appending and committing every step, checkpoints included.
    seconds: f64,
    events_per_second: f64,
    rows_per_second: f64,
    /// Of `seconds`, the commits (where DuckDB's checkpoints fall).
    commit_seconds: f64,
    tables: Vec<TableReport>,
    /// This process's peak RSS, reads included.
    peak_rss_kib: Option<u64>,
}

pub fn run(args: AppendArgs) -> anyhow::Result<()> {
    ensure!(args.step_events > 0, "--step-events must be at least 1");
    ensure!(
        !args.out.exists(),
        "{} exists: append writes a new database",
        args.out.display()
    );
    let source = open_read_only(&args.db, &args.memory_limit)?;
    let mut target = open_target(&args.out, &args.memory_limit)?;
    let mut counts = Vec::new();
    let mut extents = Vec::new();
    for table in TABLES {
        // The rowids run to `extent`, with gaps where rows were deleted (rollup cells are
        // replaced), so the steps split the rowids and each step reads only its share.
        let (rows, extent): (u64, u64) = source.query_row(
            &format!("SELECT count(*), coalesce(max(rowid) + 1, 0) FROM {table}"),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let create: String = source
            .query_row(
                "SELECT sql FROM duckdb_tables() WHERE table_name = ?",
                [table],
                |r| r.get(0),
            )
            .with_context(|| format!("no table {table} in {}", args.db.display()))?;
        target.execute_batch(&create)?;
        counts.push(rows);
        extents.push(extent);
    }
    let events = counts[0];
    let steps = events.div_ceil(args.step_events).max(1);
    eprintln!(
        "appending {} rows ({events} events) in {steps} steps",
        counts.iter().sum::<u64>()
    );
    let mut reads = TABLES
        .iter()
        .map(|table| {
            source.prepare(&format!(
                "SELECT * FROM {table} WHERE rowid >= ? AND rowid < ?"
            ))
        })
        .collect::<duckdb::Result<Vec<_>>>()?;
    let columns = TABLES
        .iter()
        .map(|table| column_count(&source, table))
        .collect::<anyhow::Result<Vec<_>>>()?;

    let mut table_time = vec![Duration::ZERO; TABLES.len()];
    let mut commit_time = Duration::ZERO;
    let mut appended = vec![0u64; TABLES.len()];
    for step in 0..steps {
        let mut batch = Vec::with_capacity(TABLES.len());
        for (t, read) in reads.iter_mut().enumerate() {
            let (from, to) = (extents[t] * step / steps, extents[t] * (step + 1) / steps);
            let rows = read
                .query_map([from, to], |row| {
                    (0..columns[t])
                        .map(|i| row.get::<_, Value>(i))
                        .collect::<duckdb::Result<Vec<_>>>()
                })?
                .collect::<duckdb::Result<Vec<_>>>()?;
            appended[t] += rows.len() as u64;
            batch.push(rows);
        }
        let tx = target.transaction()?;
        for (t, rows) in batch.iter().enumerate() {
            let start = Instant::now();
            let mut appender = tx.appender(TABLES[t])?;
            for row in rows {
                let params: Vec<&dyn ToSql> = row.iter().map(|v| v as &dyn ToSql).collect();
                appender.append_row(params.as_slice())?;
            }
            appender.flush()?;
            drop(appender);
            table_time[t] += start.elapsed();
        }
        let start = Instant::now();
        tx.commit()?;
        commit_time += start.elapsed();
    }
    ensure!(
        appended == counts,
        "read {appended:?} rows, counted {counts:?}"
    );

    let seconds = (table_time.iter().sum::<Duration>() + commit_time).as_secs_f64();
    let rows = counts.iter().sum::<u64>();
    let report = AppendReport {
        steps,
        events,
        rows,
        seconds,
        events_per_second: events as f64 / seconds,
        rows_per_second: rows as f64 / seconds,
        commit_seconds: commit_time.as_secs_f64(),
        tables: TABLES
            .iter()
            .zip(&counts)
            .zip(&columns)
            .zip(&table_time)
            .map(|(((table, rows), columns), time)| TableReport {
                table,
                rows: *rows,
                columns: *columns,
                append_seconds: time.as_secs_f64(),
            })
            .collect(),
        peak_rss_kib: own_peak_rss_kib(),
    };
    print_report(&report);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}

/// A new database with the server's store settings (`DuckDbStore::open_with_memory_limit`).
fn open_target(path: &Path, memory_limit: &str) -> anyhow::Result<Connection> {
    let config = Config::default().max_memory(memory_limit)?;
    let connection = Connection::open_with_flags(path, config)
        .with_context(|| format!("create {}", path.display()))?;
    connection.execute_batch("SET checkpoint_threshold = '128MB'")?;
    Ok(connection)
}

fn column_count(connection: &Connection, table: &str) -> anyhow::Result<usize> {
    let n: u64 = connection.query_row(
        "SELECT count(*) FROM duckdb_columns() WHERE table_name = ?",
        [table],
        |r| r.get(0),
    )?;
    Ok(n as usize)
}

fn print_report(report: &AppendReport) {
    println!(
        "DuckDB's Appender: {} events ({} rows) in {} steps, {:.1} s: {:.0} events/s, {:.0} rows/s (commits {:.1} s)",
        report.events,
        report.rows,
        report.steps,
        report.seconds,
        report.events_per_second,
        report.rows_per_second,
        report.commit_seconds
    );
    println!("| table | rows | columns | append s |");
    println!("|---|---:|---:|---:|");
    for table in &report.tables {
        println!(
            "| {} | {} | {} | {:.1} |",
            table.table, table.rows, table.columns, table.append_seconds
        );
    }
    if let Some(kib) = report.peak_rss_kib {
        println!("peak RSS of this process: {kib} KiB");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(db: &Path, out: &Path) -> AppendArgs {
        AppendArgs {
            db: db.to_owned(),
            out: out.to_owned(),
            step_events: 64,
            memory_limit: "256MB".into(),
            json: None,
        }
    }

    #[test]
    fn every_stored_row_is_appended_once_across_the_steps() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source.duckdb");
        {
            let db = Connection::open(&source).unwrap();
            db.execute_batch(
                "CREATE TABLE events (id BIGINT, name VARCHAR, ts TIMESTAMP);
                 INSERT INTO events SELECT i, 'e' || i, TIMESTAMP '2026-01-01' + INTERVAL (i) SECOND
                     FROM range(1000) t(i);
                 CREATE TABLE event_props (id BIGINT, key VARCHAR);
                 INSERT INTO event_props SELECT i, 'k' FROM range(37) t(i);
                 CREATE TABLE sessions (id UBIGINT, sign TINYINT);
                 INSERT INTO sessions SELECT i, 1 FROM range(501) t(i);
                 CREATE TABLE rollups_hourly (start_ms BIGINT, visitors BLOB);
                 INSERT INTO rollups_hourly SELECT i, '\\x01\\x02'::BLOB FROM range(300) t(i);
                 DELETE FROM rollups_hourly WHERE start_ms % 7 = 0;
                 CREATE TABLE rollups_daily (start_ms BIGINT, visitors BLOB);",
            )
            .unwrap();
        }
        let out = dir.path().join("out.duckdb");
        run(args(&source, &out)).unwrap();

        let db = Connection::open(&out).unwrap();
        db.execute(
            &format!("ATTACH '{}' AS source (READ_ONLY)", source.display()),
            [],
        )
        .unwrap();
        for table in TABLES {
            let (rows, missing, extra): (u64, u64, u64) = db
                .query_row(
                    &format!(
                        "SELECT (SELECT count(*) FROM {table}),
                         (SELECT count(*) FROM (SELECT * FROM source.{table}
                                                EXCEPT ALL SELECT * FROM {table})),
                         (SELECT count(*) FROM (SELECT * FROM {table}
                                                EXCEPT ALL SELECT * FROM source.{table}))"
                    ),
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .unwrap();
            let expected = match table {
                "events" => 1000,
                "event_props" => 37,
                "sessions" => 501,
                "rollups_hourly" => 300 - 43,
                _ => 0,
            };
            assert_eq!((rows, missing, extra), (expected, 0, 0), "{table}");
        }
        // 1,000 events in steps of 64: 16 steps, refused if the out file exists.
        assert!(run(args(&source, &out)).is_err());
    }
}
