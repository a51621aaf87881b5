use anyhow::Context;
use clap::Parser;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use weir::cli::{BridgeCommand, Cli, Command, ConfigCommand, GraphCommand, ModuleCommand, RunArgs};
use weir::config::{WeirConfig, DEFAULT_CONFIG};
use weir::reconfigure::Reconfigure;
use weir::server::Broker;
use weir::shutdown::Signal;
use weir_oci::ArtifactKind;

/// jemalloc rather than the system allocator: large buffers a connection reserves but does not
/// use stay out of resident memory, and what freed memory holds goes back to the system.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
        Command::Config(ConfigCommand::ImportMosquitto { file }) => {
            weir::import::import(&file).map(|yaml| print!("{yaml}"))
        }
        Command::Module(ModuleCommand::Inspect { file }) => weir::inspect::inspect(&file),
        Command::Module(ModuleCommand::Push(args)) => {
            weir::registry::push(ArtifactKind::Module, args)
        }
        Command::Module(ModuleCommand::Pull(args)) => {
            weir::registry::pull(ArtifactKind::Module, args)
        }
        Command::Graph(GraphCommand::Push(args)) => weir::registry::push(ArtifactKind::Graph, args),
        Command::Graph(GraphCommand::Pull(args)) => weir::registry::pull(ArtifactKind::Graph, args),
        Command::Graph(GraphCommand::Check {
            file,
            modules,
            set,
            registry,
        }) => weir::graph_check::check(&file, &modules, set.into_iter().collect(), &registry),
        Command::Graph(GraphCommand::Run(args)) => weir::graph_run::run(args),
        Command::Passwd(args) => weir::passwd::run(args),
        Command::Bridge(BridgeCommand::List(args)) => weir::bridges::list(&args),
        Command::Bridge(BridgeCommand::Purge { name, store }) => {
            weir::bridges::purge(&name, &store)
        }
        Command::Graph(GraphCommand::Test(args)) => match weir::graph_test::run(args) {
            Ok(summary) if summary.failed > 0 => return std::process::ExitCode::FAILURE,
            other => other.map(drop),
        },
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
    for bridge in &config.bridges {
        let addresses: Vec<String> = bridge.addresses.iter().map(ToString::to_string).collect();
        println!(
            "bridge {}: {} as {} ({}, {} topic lines)",
            bridge.name,
            addresses.join(", "),
            bridge.client_id,
            bridge.protocol,
            bridge.topics.len()
        );
    }
    println!("configuration is valid");
    Ok(())
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    // Listening first: a signal during start-up stops the broker once it has started.
    let signals = weir::shutdown::Signals::listen().context("cannot listen for signals")?;
    let read = args
        .config
        .as_deref()
        .and_then(|file| std::fs::read(file).ok());
    let config = load(args.config.as_deref())?;
    match &args.config {
        Some(file) => tracing::info!("configuration {}", file.display()),
        None => tracing::info!("embedded default configuration (see `weir config default`)"),
    }
    // Watching before the files the configuration names are read, and then the configuration
    // again: a change made while weir starts is applied, never missed.
    let reloads = Arc::new(weir::reloads::Reloads::default());
    let mut live = Reconfigure::start(
        args.config.clone(),
        config.clone(),
        read,
        signals.sender(),
        reloads.clone(),
    );
    let mut broker = Broker::start(&config.broker)?;
    let state = weir::state::open(&config.engine)?;
    let mut graphs = weir::graphs::RunningGraphs::start(&config, &broker, state.clone())?;
    let (services, state_metrics) = weir::state::serve(&config.engine, &state, &broker)?;
    // Bridges start before clients are accepted, and bring messages in to the graphs.
    broker.door().set_graphs(graphs.routes.clone());
    let bridges = weir::bridges::start(&config, &broker)?;
    let scrape = weir::metrics_endpoint::Scrape::new(weir::metrics_endpoint::Sources {
        broker: broker.door().stats(),
        graphs: graphs.catalog.clone(),
        state_store: state_metrics,
        bridges: Some(bridges.clone()),
        reloads: reloads.clone(),
    });
    if let Some(address) = config.metrics.listen {
        weir::metrics_endpoint::serve(address, scrape.clone())?;
    }
    weir::telemetry::start(&config.telemetry, scrape)?;
    broker.door_mut().open(graphs.routes.clone(), services);
    tracing::info!("weir {} ready", env!("CARGO_PKG_VERSION"));

    let signal = loop {
        match signals.wait() {
            Signal::Hangup => {
                broker.reload_security(&reloads);
                live.reload(&mut graphs, &bridges);
            }
            Signal::FilesChanged => live.reload(&mut graphs, &bridges),
            stop => break stop,
        }
    };
    tracing::info!("{signal}, stopping");
    // A second signal ends the process at once.
    signals.exit_on_next();
    let drain = Duration::from_secs(live.applied().shutdown.drain_timeout_s);
    weir::shutdown::stop(broker, graphs, &bridges, drain);
    tracing::info!("stopped");
    Ok(())
}
