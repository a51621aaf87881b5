//! The command line: `weir run`, `weir config ...`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Weir: an MQTT broker for IoT gateways that runs WebAssembly dataflow graphs in-process.
#[derive(Debug, Parser)]
#[command(name = "weir", version, propagate_version = true)]
pub struct Cli {
    /// Log filter: a level (error, warn, info, debug, trace) or tracing directives such as
    /// `info,weir=debug`. Default: the RUST_LOG environment variable, else `info`.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the broker until Ctrl-C or SIGTERM.
    Run(RunArgs),
    /// Inspect configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Inspect operator modules (WebAssembly components).
    #[command(subcommand)]
    Module(ModuleCommand),
    /// Work with graph definitions offline.
    #[command(subcommand)]
    Graph(GraphCommand),
    /// Add, change or delete a user in a password file, in the format mosquitto_passwd writes
    /// (PBKDF2-SHA512, `$7$`), which mosquitto reads too.
    Passwd(PasswdArgs),
    /// Work with bridges' queues on disk (while weir is stopped).
    #[command(subcommand)]
    Bridge(BridgeCommand),
}

/// `weir bridge` subcommands.
#[derive(Debug, Subcommand)]
pub enum BridgeCommand {
    /// List the bridges' queues kept in the persistence directory, with what each holds.
    List(BridgeStoreArgs),
    /// Delete bridge NAME's queue (what a removed bridge left on disk, or a queue not to be
    /// sent): its messages are lost.
    Purge {
        /// The bridge.
        name: String,
        /// Where the store is.
        #[command(flatten)]
        store: BridgeStoreArgs,
    },
}

/// Where the bridges' queues are.
#[derive(Debug, Args)]
pub struct BridgeStoreArgs {
    /// The configuration whose `broker.persistence.path` holds the queues (default: the
    /// embedded default's, `$WEIR_DATA_DIR` or `~/.local/state/weir`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Arguments of `weir passwd`, as mosquitto_passwd's.
#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// Create the file, replacing one that exists.
    #[arg(short = 'c', conflicts_with = "delete")]
    pub create: bool,
    /// Take the password from the command line (the third argument) rather than prompting.
    #[arg(short = 'b', conflicts_with = "delete")]
    pub batch: bool,
    /// Delete the user.
    #[arg(short = 'D')]
    pub delete: bool,
    /// The password file.
    pub file: PathBuf,
    /// The user name.
    pub user: String,
    /// The password, with `-b`.
    pub password: Option<String>,
}

/// `weir graph` subcommands.
#[derive(Debug, Subcommand)]
pub enum GraphCommand {
    /// Validate a graph definition and print it: nodes, edges, modules, and parameters with
    /// their resolved values. Exit status 1 when it is not valid.
    Check {
        /// The graph definition: a YAML file, or `oci://<reference>` in a registry.
        file: PathBuf,
        /// A directory to resolve module references in (repeatable). With it, or `--config`,
        /// or a module reference naming a registry, each module is loaded and checked to
        /// export the interface its node needs.
        #[arg(long = "modules", value_name = "DIR")]
        modules: Vec<PathBuf>,
        /// A graph configuration value, `key=value` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_setting)]
        set: Vec<(String, String)>,
        /// Registry settings.
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Run a graph without a broker over recorded messages (JSON lines) and write the results.
    /// The run ends when the input is exhausted and every window has closed; the same input
    /// gives byte-identical output.
    Run(GraphRunArgs),
    /// Run test files (*.test.yaml, or folders holding them): each feeds a graph the messages
    /// of its input folder and compares the results with its expected file. Prints
    /// `PASS name` or `FAIL name: first difference` per test and `N passed, M failed`; exit
    /// status 1 when a test fails.
    Test(GraphTestArgs),
    /// Push a graph definition (YAML) to a registry, as an image manifest with one
    /// `application/yaml` layer. Its YAML and keys are checked first (`graph check` checks
    /// the rest).
    Push(PushArgs),
    /// Pull a graph definition from a registry (through the cache) and write it to a file.
    Pull(PullArgs),
}

/// Arguments of `weir module push` and `weir graph push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The file to push.
    pub file: PathBuf,
    /// Where: `host[:port]/repository:tag`.
    pub reference: String,
    /// Registry settings.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Arguments of `weir module pull` and `weir graph pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// What: `host[:port]/repository:tag` or `host[:port]/repository@sha256:<digest>`.
    pub reference: String,
    /// Where to write it (default: the repository's last component, with `.wasm` or `.yaml`,
    /// in the current directory).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Registry settings.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// How commands reach registries.
#[derive(Debug, Clone, Default, Args)]
pub struct RegistryArgs {
    /// Use this configuration's `modules.registries` (plain HTTP, credentials) and
    /// `modules.cache_dir`, and its `modules.directories` when no `--modules` is given.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Talk plain HTTP to registries (a local registry without TLS).
    #[arg(long)]
    pub plain_http: bool,
}

/// Arguments of `weir graph test`.
#[derive(Debug, Args)]
pub struct GraphTestArgs {
    /// Test files (*.test.yaml) or folders searched for them.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    /// A directory to resolve module references in (repeatable, first match wins).
    #[arg(long = "modules", value_name = "DIR", required = true)]
    pub modules: Vec<PathBuf>,
    /// A graph configuration value, `key=value` (repeatable), over each test's own.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_setting)]
    pub set: Vec<(String, String)>,
    /// Schemas, schema directory and state seed, for every test.
    #[command(flatten)]
    pub inputs: GraphInputArgs,
    /// Registry settings, for module references that name a registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Arguments of `weir graph run`.
#[derive(Debug, Args)]
pub struct GraphRunArgs {
    /// The graph definition: a YAML file, or `oci://<reference>` in a registry.
    #[arg(long, value_name = "FILE")]
    pub graph: PathBuf,
    /// A directory to resolve module references in (repeatable); references that name a
    /// registry are pulled.
    #[arg(long = "modules", value_name = "DIR")]
    pub modules: Vec<PathBuf>,
    /// A graph configuration value, `key=value` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_setting)]
    pub set: Vec<(String, String)>,
    /// The recorded messages, one JSON object per line:
    /// {"topic": "...", "payload": "<text>" | {"base64": "..."}, "user_properties": [["k","v"]], "ts": "<__ts>"}.
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// Where to write the results, one JSON object per line in the same format (default: stdout).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Worker threads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: u16,
    /// How far (ms) behind the newest timestamp seen a message may be before it counts as late.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub lateness_ms: u64,
    /// Schemas, schema directory and state seed.
    #[command(flatten)]
    pub inputs: GraphInputArgs,
    /// Registry settings.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Command-line options shared by `graph run` and `graph test`.
#[derive(Debug, Clone, Default, Args)]
pub struct GraphInputArgs {
    /// A schema file every module's `init` receives in `module-schemas` (repeatable). Replaces
    /// the one `hostapp.env.list` beside the definition names.
    #[arg(long = "schema", value_name = "FILE")]
    pub schemas: Vec<PathBuf>,
    /// The directory that answers modules' `schema-registry.get(id, version)`:
    /// DIR/<id>/<version>.json, or DIR/<id>.json for every version.
    #[arg(long, value_name = "DIR")]
    pub schema_dir: Option<PathBuf>,
    /// A state-store seed loaded before the first message: a JSON array of single-key objects,
    /// `[{"factoryId": "factoryA"}]`. Replaces the `statestore.json` beside the definition.
    #[arg(long = "state", value_name = "FILE")]
    pub state: Option<PathBuf>,
}

/// `key=value` into its parts.
fn parse_setting(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected KEY=VALUE, got `{text}`"))
}

/// `weir module` subcommands.
#[derive(Debug, Subcommand)]
pub enum ModuleCommand {
    /// Show a module's package and version, operator interfaces, imports and size, and whether
    /// this host can run it (exit status 1 when it cannot).
    Inspect {
        /// The component file (.wasm).
        file: PathBuf,
    },
    /// Push a module (.wasm) to a registry, as an image manifest with one `application/wasm`
    /// layer, which any registry stores.
    Push(PushArgs),
    /// Pull a module from a registry (through the cache) and write it to a file.
    Pull(PullArgs),
}

/// Arguments of `weir run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The configuration file (weir.yaml). Without it, the embedded default configuration is
    /// used: MQTT 3.1, 3.1.1 and 5 on 127.0.0.1:1883 (this machine only).
    #[arg(short, long, env = "WEIR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `weir config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the embedded default configuration, a starting point for your own weir.yaml.
    Default,
    /// Validate a configuration file (the embedded default without FILE) and print its listeners.
    Check {
        /// The configuration file to check.
        file: Option<PathBuf>,
    },
    /// Print the weir.yaml equivalent to a mosquitto.conf (listeners, TLS, authentication,
    /// persistence, limits), naming each directive it cannot map.
    ImportMosquitto {
        /// The mosquitto configuration file.
        file: PathBuf,
    },
}
