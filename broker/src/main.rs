use anyhow::Context;
use clap::Parser;
use std::path::Path;
use weir::cli::{Cli, Command, ConfigCommand, GraphCommand, ModuleCommand, RunArgs};
use weir::config::{WeirConfig, DEFAULT_CONFIG};
use weir::server::Broker;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Err(e) = weir::logging::init(cli.log_level.as_deref()) {
        eprintln!("error: {e:#}");
        return std::process::ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Config(ConfigCommand::Default) => {
            print!("{DEFAULT_CONFIG}");
            Ok(())
        }
        Command::Config(ConfigCommand::Check { file }) => check(file.as_deref()),
        Command::Module(ModuleCommand::Inspect { file }) => weir::inspect::inspect(&file),
        Command::Graph(GraphCommand::Check { file, modules, set }) => {
            weir::graph_check::check(&file, &modules, set.into_iter().collect())
        }
        Command::Graph(GraphCommand::Run(args)) => weir::graph_run::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn load(file: Option<&Path>) -> anyhow::Result<WeirConfig> {
    Ok(match file {
        Some(file) => WeirConfig::from_file(file)?,
        None => WeirConfig::embedded_default()?,
    })
}

fn check(file: Option<&Path>) -> anyhow::Result<()> {
    let config = load(file)?;
    for listener in &config.broker.listeners {
        println!(
            "listener {}: {} on {}{}",
            listener.name(),
            listener.protocol,
            listener.address,
            if listener.tls.is_some() { " (tls)" } else { "" }
        );
    }
    for graph in &config.graphs {
        println!(
            "graph {}: {} -> {}",
            graph.name,
            graph.sources(),
            graph.sink.describe()
        );
    }
    println!("configuration is valid");
    Ok(())
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = load(args.config.as_deref())?;
    match &args.config {
        Some(file) => tracing::info!("configuration {}", file.display()),
        None => tracing::info!("embedded default configuration (see `weir config default`)"),
    }
    let broker = Broker::start(&config.broker)?;
    let graphs = weir::graphs::start(&config, &broker)?;
    if let Some(address) = config.metrics.listen {
        weir::metrics_endpoint::serve(address, graphs.metrics(), graphs.sinks.clone())?;
    }
    if let Some(otlp) = &config.telemetry.otlp {
        weir::telemetry::start(otlp, graphs.metrics(), graphs.sinks.clone())?;
    }
    tracing::info!("weir {} ready", env!("CARGO_PKG_VERSION"));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal runtime")?;
    let stopped = broker.stopped().clone();
    let outcome = runtime.block_on(async move {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("cannot listen for SIGTERM")?;
        let broker_exit = tokio::task::spawn_blocking(move || stopped.recv());
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted, stopping"),
            _ = terminate.recv() => tracing::info!("terminated, stopping"),
            exit = broker_exit => {
                return match exit {
                    Ok(Ok(Err(e))) => Err(e.into()),
                    _ => Err(anyhow::anyhow!("the MQTT broker stopped unexpectedly")),
                };
            }
        }
        Ok(())
    });
    // The task waiting on rumqttd never ends; do not wait for it.
    runtime.shutdown_background();
    outcome?;
    // rumqttd has no shutdown call: its threads end with the process. Sessions and retained
    // messages live in memory only, so there is nothing to flush.
    tracing::info!("stopped");
    Ok(())
}
