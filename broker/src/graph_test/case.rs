//! Test files (`*.test.yaml`) as Azure IoT Operations' local tooling writes them, and the
//! messages and expectations they point at.

use anyhow::Context;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use weir_model::data::Message;
use weir_model::hlc::Hlc;

/// The suffix that marks a test file.
pub const SUFFIX: &str = ".test.yaml";
/// The topic inputs are published on unless the test says otherwise.
pub const DEFAULT_TOPIC: &str = "sensors";
/// The time of the first input (2025-01-01T00:00:00Z, in ms); the next are 1 ms apart.
pub const START_MILLIS: u64 = 1_735_689_600_000;
/// The node id of input timestamps.
pub const NODE_ID: &str = "weir-graph-test";
/// How long a test may run, in ms, when it does not say.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;

/// A test file as written.
#[derive(Debug, Deserialize)]
struct Written {
    name: String,
    graph: PathBuf,
    input: PathBuf,
    expected: PathBuf,
    #[serde(default)]
    timeout: Option<u64>,
    #[serde(default)]
    select: Vec<String>,
    #[serde(default)]
    ignores: Vec<String>,
    #[serde(default)]
    topic: Option<String>,
    /// Values for the graph's parameters (with `--set` on top).
    #[serde(default)]
    configuration: BTreeMap<String, String>,
    #[serde(flatten)]
    other: BTreeMap<String, serde::de::IgnoredAny>,
}

/// A test, its paths resolved against its file.
#[derive(Debug, Clone)]
pub struct TestCase {
    /// The test file.
    pub file: PathBuf,
    /// `name`.
    pub name: String,
    /// The graph definition.
    pub graph: PathBuf,
    /// The folder of input messages.
    pub input: PathBuf,
    /// The expected results file.
    pub expected: PathBuf,
    /// How long the run may take, in ms.
    pub timeout_ms: u64,
    /// Paths of a result to compare (empty: the keys each expected result has).
    pub select: Vec<String>,
    /// Paths inside the selected values to leave out.
    pub ignores: Vec<String>,
    /// The topic inputs are published on.
    pub topic: String,
    /// Values for the graph's parameters.
    pub configuration: BTreeMap<String, String>,
    /// Keys of the file this runner does not use.
    pub ignored_keys: Vec<String>,
}

impl TestCase {
    /// Reads the test file `file`.
    pub fn load(file: &Path) -> anyhow::Result<TestCase> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let written: Written = weir_model::yaml::from_str(&text, |offset| {
            weir_model::yaml::line_column(&text, offset)
        })
        .map_err(|e| anyhow::anyhow!("{}:{e}", file.display()))?;
        let beside = file.parent().unwrap_or(Path::new(""));
        Ok(TestCase {
            file: file.to_path_buf(),
            name: written.name,
            graph: beside.join(written.graph),
            input: beside.join(written.input),
            expected: beside.join(written.expected),
            timeout_ms: written.timeout.unwrap_or(DEFAULT_TIMEOUT_MS),
            select: written.select,
            ignores: written.ignores,
            topic: written.topic.unwrap_or_else(|| DEFAULT_TOPIC.to_string()),
            configuration: written.configuration,
            ignored_keys: written.other.into_keys().collect(),
        })
    }

    /// The input messages: one per file of the input folder, in name order, 1 ms apart.
    pub fn inputs(&self) -> anyhow::Result<Vec<Message>> {
        let folder = &self.input;
        let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
            .with_context(|| format!("input folder {}", folder.display()))?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .with_context(|| format!("input folder {}", folder.display()))?;
        files.retain(|path| path.is_file());
        files.sort();
        let node: std::sync::Arc<str> = NODE_ID.into();
        files
            .iter()
            .zip(0u64..)
            .map(|(path, index)| {
                let payload = std::fs::read(path)
                    .with_context(|| format!("cannot read input {}", path.display()))?;
                let timestamp = Hlc::from_millis(START_MILLIS + index, 0, node.clone());
                let mut message = Message::new(timestamp, self.topic.clone(), payload);
                if path
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("json"))
                {
                    message.content_type = Some(Bytes::from_static(b"application/json"));
                }
                Ok(message)
            })
            .collect()
    }

    /// The expected results: an object is one, an array several in order.
    pub fn expectations(&self) -> anyhow::Result<Vec<Value>> {
        let path = &self.expected;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read expected results {}", path.display()))?;
        let value: Value = serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!(weir_model::json::located(&path.display().to_string(), &e))
        })?;
        Ok(match value {
            Value::Array(results) => results,
            one => vec![one],
        })
    }
}

/// The test files `paths` name: files as given, folders searched (recursively) for
/// `*.test.yaml`, each folder's in name order.
pub fn discover(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let before = files.len();
            collect(path, &mut files)?;
            files[before..].sort();
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            anyhow::bail!("{}: no such file or folder", path.display());
        }
    }
    Ok(files)
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("cannot list {}", dir.display()))?
            .path();
        if path.is_dir() {
            collect(&path, files)?;
        } else if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(SUFFIX))
        {
            files.push(path);
        }
    }
    Ok(())
}
