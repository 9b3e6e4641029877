//! `heartbeat-bench`: the benchmark tool. It talks to a running Heartbeat server over HTTP
//! only, except `raw` and `append`, which read a stopped server's DuckDB file, and `anomaly`,
//! which needs no server; of the workspace it depends only on the model and on
//! `heartbeat-alerts`, whose decisions `anomaly` measures exactly as the server makes them.
//!
//! Subcommands: `generate` writes a synthetic data set as NDJSON (`generator.rs`, format in
//! `event.rs`); `load` drives the ingest endpoints and reports throughput and latency
//! (`load.rs`); `fill` loads a data set through the batch endpoint for query benchmarks
//! (`fill.rs`); `query` times the dashboard's queries (`query.rs`); `raw` times hand-written
//! DuckDB SQL for the same answers over a stopped server's database, read-only, and checks
//! the answers agree (`raw.rs`); `append` writes a stopped server's stored rows into a new
//! database with DuckDB's own Appender in the processor's steps, the raw figure for the
//! processor's rate (`append.rs`); `anomaly` measures the alert rules' detector on generated
//! seasonal traffic with injected spikes, drops and outages: precision, recall, false
//! firings a week and how soon an outage is noticed (`anomaly.rs`). Request bodies are in
//! `wire.rs`, the HTTP client in `client.rs`, reports in `report.rs`.

mod anomaly;
mod append;
mod client;
mod event;
mod fill;
mod generator;
mod load;
mod query;
mod raw;
mod report;
mod server_memory;
#[cfg(test)]
mod test_server;
mod wire;

use std::path::PathBuf;
use std::time::Instant;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

use crate::generator::{write_ndjson, GeneratorConfig};

#[derive(Debug, Parser)]
#[command(
    name = "heartbeat-bench",
    version,
    about = "Benchmarks a running Heartbeat server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a deterministic synthetic data set as NDJSON, one event per line.
    Generate(GenerateArgs),
    /// Send events to the ingest endpoints and report throughput and latency.
    Load(load::LoadArgs),
    /// Load a data set through the batch endpoint, for query benchmarks.
    Fill(fill::FillArgs),
    /// Time the dashboard's queries against the Stats API.
    Query(query::QueryArgs),
    /// Time hand-written DuckDB SQL for the same queries over a stopped server's database
    /// and compare its answers with a `query` report's.
    Raw(raw::RawArgs),
    /// Append a stopped server's stored rows into a new database with DuckDB's own
    /// Appender, in the processor's steps: the raw figure for the processor's rate.
    Append(append::AppendArgs),
    /// Run one SQL statement (or its EXPLAIN ANALYZE) over a stopped server's database.
    Sql(raw::SqlArgs),
    /// Measure the anomaly and no-events alert rules' precision and recall on generated
    /// seasonal traffic with known incidents (no server needed).
    Anomaly(anomaly::AnomalyArgs),
}

#[derive(Debug, clap::Args)]
struct GenerateArgs {
    /// Number of events to write.
    #[arg(long)]
    events: u64,
    /// Days before now (or --end) over which the events are spread.
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// Seed of the random stream: the same seed gives the same events.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// NDJSON file to write.
    #[arg(long)]
    out: PathBuf,
    /// Site domain used in the events' URLs.
    #[arg(long, default_value = "example.com")]
    site: String,
    /// End of the time window (RFC 3339); defaults to now. Fix it to make a file reproducible.
    #[arg(long)]
    end: Option<DateTime<Utc>>,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Generate(args) => generate(args),
        Command::Load(args) => runtime()?.block_on(load::run(args)),
        Command::Fill(args) => runtime()?.block_on(fill::run(args)),
        Command::Query(args) => runtime()?.block_on(query::run(args)),
        Command::Raw(args) => raw::run(args),
        Command::Sql(args) => raw::run_sql(args),
        Command::Append(args) => append::run(args),
        Command::Anomaly(args) => anomaly::run(args),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn generate(args: GenerateArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let written = write_ndjson(
        GeneratorConfig {
            seed: args.seed,
            events: args.events,
            days: args.days,
            end: args.end.unwrap_or_else(Utc::now),
            domain: args.site,
        },
        &args.out,
    )?;
    let elapsed_s = started.elapsed().as_secs_f64();
    println!(
        "wrote {written} events to {} in {elapsed_s:.2} s ({:.0} events/s)",
        args.out.display(),
        written as f64 / elapsed_s
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn load_flags_parse() {
        let cli = Cli::try_parse_from([
            "heartbeat-bench",
            "load",
            "--mode",
            "batch",
            "--concurrency",
            "4",
            "--rate",
            "100",
            "--duration-s",
            "5",
            "--batch-size",
            "500",
            "--api-key",
            "k",
            "--domain",
            "d.com",
        ])
        .unwrap();
        assert!(matches!(cli.command, Command::Load(_)));
        assert!(Cli::try_parse_from(["heartbeat-bench", "load", "--mode", "bulk"]).is_err());
    }
}
