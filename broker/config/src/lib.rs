//! Weir's configuration file (`weir.yaml`): loading, `${VAR}` substitution and validation.
//!
//! One YAML file configures the whole broker. Every error names the file, line, column and key
//! and says what was expected; unknown keys are errors. When no file is given, the embedded
//! default ([`DEFAULT_CONFIG`]) is used.
//!
//! It builds without the WebAssembly host, the engine or the clients of the upstream sinks:
//! the types it reads come from `weir-model`, `weir-door`, `weir-graph`, `weir-oci` and
//! `weir-sink`, so that what parses untrusted configuration can be tested (and fuzzed) alone.

pub mod auth;
mod bridges;
pub mod broker;
pub mod engine;
pub mod env;
mod error;
pub mod features;
pub mod graphs;
pub mod modules;
mod paths;
pub mod persistence;
pub mod telemetry;

pub use auth::{AclFileConfig, AuthConfig, PasswordFileConfig};
pub use broker::{BrokerConfig, ListenerConfig, ListenerLimits, Protocol, RouterLimits, TlsConfig};
pub use engine::{CircuitSettings, EngineConfig, MetricsConfig};
pub use error::ConfigError;
pub use graphs::{DefinitionSource, GraphBinding, SinkConfig};
pub use modules::{ModulesConfig, RegistryConfig};

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The configuration compiled into the binary, used when `weir run` gets no `--config`.
pub const DEFAULT_CONFIG: &str = include_str!("../../../config/default.yaml");

/// Name under which errors in the embedded default configuration are reported.
pub const DEFAULT_CONFIG_NAME: &str = "<embedded default config/default.yaml>";

/// The whole of `weir.yaml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeirConfig {
    /// The MQTT broker: listeners, TLS, authentication, limits.
    #[serde(default)]
    pub broker: BrokerConfig,
    /// Graphs bound to the broker's topics.
    #[serde(default, deserialize_with = "graphs::graphs")]
    pub graphs: Vec<GraphBinding>,
    /// Links to remote brokers (mosquitto's bridges).
    #[serde(default, deserialize_with = "bridges::bridges")]
    pub bridges: Vec<weir_door::bridge::BridgeConfig>,
    /// Where module references resolve.
    #[serde(default)]
    pub modules: ModulesConfig,
    /// The graph engine.
    #[serde(default)]
    pub engine: EngineConfig,
    /// The metrics endpoint.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Weir's own logs and metrics exported over OTLP.
    #[serde(default)]
    pub telemetry: crate::telemetry::TelemetryConfig,
    /// How `weir run` stops.
    #[serde(default)]
    pub shutdown: ShutdownConfig,
}

/// `shutdown:`: how long the graphs and sinks may take, after SIGTERM, to process what they
/// hold and deliver it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    /// Seconds to drain the graphs (queued messages, open windows) and flush their sinks.
    #[serde(default = "default_drain_timeout")]
    pub drain_timeout_s: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            drain_timeout_s: default_drain_timeout(),
        }
    }
}

fn default_drain_timeout() -> u64 {
    10
}

impl WeirConfig {
    /// Reads and validates a configuration file. Relative paths inside it (TLS files) resolve
    /// against the file's directory.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|reason| ConfigError::Read {
            file: path.to_path_buf(),
            reason,
        })?;
        let base = path.parent().map_or_else(PathBuf::new, Path::to_path_buf);
        Self::from_str_with(&text, &path.display().to_string(), &base, |name| {
            std::env::var(name).ok()
        })
    }

    /// The embedded default configuration (with `${VAR}` substitution from the environment).
    pub fn embedded_default() -> Result<Self, ConfigError> {
        let cwd = std::env::current_dir().unwrap_or_default();
        Self::from_str_with(DEFAULT_CONFIG, DEFAULT_CONFIG_NAME, &cwd, |name| {
            std::env::var(name).ok()
        })
    }

    /// Parses configuration `text` named `file` in error messages, resolving relative paths
    /// against `base` and variables through `lookup`.
    ///
    /// ```
    /// use weir_config::WeirConfig;
    /// let yaml = "broker:\n  listeners:\n    - protocol: mqtt\n      address: 127.0.0.1:${PORT:-1884}\n";
    /// let config = WeirConfig::from_str_with(yaml, "weir.yaml", ".".as_ref(), |_| None).unwrap();
    /// assert_eq!(config.broker.listeners[0].address.port(), 1884);
    ///
    /// let err = WeirConfig::from_str_with("broker:\n  listners: []\n", "weir.yaml", ".".as_ref(), |_| None)
    ///     .unwrap_err();
    /// assert!(err.to_string().starts_with("weir.yaml:2:3: broker.listners: unknown field `listners`"));
    /// ```
    pub fn from_str_with(
        text: &str,
        file: &str,
        base: &Path,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let expanded = env::expand(text, lookup).map_err(|e| {
            let (line, column) = env::line_column(text, e.offset());
            ConfigError::Invalid {
                file: file.to_string(),
                line,
                column,
                message: e.to_string(),
            }
        })?;
        let position = |offset| env::line_column(text, expanded.original_offset(offset));
        let mut config: WeirConfig = paths::with_base_dir(base, || {
            weir_model::yaml::from_str(&expanded.text, position)
        })
        .map_err(|e| ConfigError::Invalid {
            file: file.to_string(),
            line: e.line,
            column: e.column,
            message: e.message,
        })?;
        config
            .broker
            .check_access()
            .map_err(|message| ConfigError::Inconsistent {
                file: file.to_string(),
                message,
            })?;
        graphs::locate_registry_definitions(&mut config.graphs, &expanded.text, |offset| {
            let (line, column) = position(offset);
            format!("{file}:{line}:{column}")
        });
        Ok(config)
    }
}
