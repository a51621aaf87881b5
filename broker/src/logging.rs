//! Log output through `tracing`, filtered by `--log-level` or `RUST_LOG`.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// rumqttd logs every connection at info; keep it to warnings unless asked.
const DEFAULT_FILTER: &str = "info,rumqttd=warn";

/// Installs the global subscriber. `level` (from `--log-level`) wins over `RUST_LOG`.
pub fn init(level: Option<&str>) -> anyhow::Result<()> {
    let filter = match level {
        Some(level) => {
            EnvFilter::try_new(level).map_err(|e| anyhow::anyhow!("--log-level {level:?}: {e}"))?
        }
        None => {
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    Ok(())
}
