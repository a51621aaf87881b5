//! `weir-bench`: Weir against mosquitto on the same load generator, and graphs against raw
//! delivery on Weir, alternating brokers within one run, several repetitions, medians and
//! ratios. See docs/BENCHMARKS.md.

mod bridge;
mod brokers;
mod clients;
mod connections;
mod fleet;
mod kafka;
mod load;
mod report;
mod rest;
mod scenarios;
mod specs;
mod state_store;

use clap::Parser;
use std::path::PathBuf;

/// Benchmarks Weir (and mosquitto) with a load generator that counts what subscribers receive.
#[derive(Parser, Debug)]
#[command(name = "weir-bench", version)]
pub struct Args {
    /// Raw pass-through on both brokers and the one-node map graph, one repetition, small
    /// counts: a smoke run of well under a minute.
    #[arg(long)]
    pub quick: bool,
    /// Only the scenarios named (raw, durable, shared, map1, graph3, isolation, window,
    /// workers, rss10, connections, state-store, bridge, rest, kafka, fleet); repeatable.
    #[arg(long = "scenario")]
    pub scenarios: Vec<String>,
    /// Repetitions of each measurement (medians are reported).
    #[arg(long, default_value_t = 3)]
    pub repetitions: usize,
    /// Idle connections the connection scenario opens on each broker.
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    /// Payload size in bytes.
    #[arg(long, default_value_t = 100)]
    pub payload: usize,
    /// Scale the message counts (1.0: about 100,000 messages per flat-out run).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// The `weir` binary (default: next to this one, else in PATH).
    #[arg(long)]
    pub weir: Option<PathBuf>,
    /// The `mosquitto` broker binary.
    #[arg(long, default_value = "mosquitto")]
    pub mosquitto: PathBuf,
    /// Where the operator modules are (scripts/build-modules.sh).
    #[arg(long, default_value = "target/modules")]
    pub modules: PathBuf,
    /// Exit with an error when Weir delivered fewer messages than expected in any run (or a
    /// window check failed).
    #[arg(long)]
    pub check: bool,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match scenarios::run_all(&args) {
        Ok(scenarios::Results {
            rows: results,
            connections,
            state_store,
            bridges,
            kafka,
            fleet,
            rest,
        }) => {
            print!("{}", report::table(&results));
            print!("{}", report::connection_table(&connections));
            print!("{}", state_store::table(&state_store));
            print!("{}", bridge::table(&bridges));
            print!("{}", kafka::table(&kafka));
            print!("{}", fleet::table(&fleet));
            print!("{}", rest::table(&rest));
            print!("{}", report::goals(&results));
            if let Some(path) = &args.json {
                let all = (
                    &results[..],
                    &connections[..],
                    &state_store[..],
                    &bridges,
                    &kafka,
                    &fleet,
                    &rest[..],
                );
                if let Err(e) = report::write_json(path, all) {
                    eprintln!("error: {e:#}");
                    return std::process::ExitCode::FAILURE;
                }
            }
            let mut incomplete = report::incomplete(&results);
            incomplete.extend(bridge::incomplete(&bridges));
            incomplete.extend(kafka::incomplete(&kafka));
            incomplete.extend(fleet::incomplete(&fleet));
            incomplete.extend(report::connections_incomplete(&connections));
            incomplete.extend(
                state_store
                    .iter()
                    .filter(|row| row.answered < row.requests)
                    .map(|row| format!("state store {}", row.request)),
            );
            if args.check && !incomplete.is_empty() {
                eprintln!("error: Weir lost messages in: {}", incomplete.join(", "));
                return std::process::ExitCode::FAILURE;
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
