//! Modules and graph definitions in OCI registries, from the command line: `weir module
//! push|pull`, `weir graph push|pull`, and how `graph check` and `graph run` reach registries
//! (`--config weir.yaml` for `modules.registries`, `--plain-http`).

use crate::cli::{PullArgs, PushArgs, RegistryArgs};
use crate::config::WeirConfig;
use anyhow::Context;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use weir_graph::{Graph, GraphDefinition, ModuleSources};
use weir_oci::{ArtifactKind, Origin, Registries};

impl RegistryArgs {
    /// The registries: those of `--config`'s `modules` section, or none configured (anonymous
    /// HTTPS, the default cache), all over plain HTTP with `--plain-http`.
    pub fn registries(&self) -> anyhow::Result<Registries> {
        Ok(self.registries_of(self.config()?.as_ref()))
    }

    /// Where module references resolve: `modules` (else `--config`'s directories), then the
    /// registries.
    pub fn sources(&self, modules: &[PathBuf]) -> anyhow::Result<ModuleSources> {
        let config = self.config()?;
        let directories = match (modules, &config) {
            ([], Some(config)) => config.modules.paths(),
            (dirs, _) => dirs.to_vec(),
        };
        Ok(ModuleSources {
            directories,
            registries: self.registries_of(config.as_ref()),
        })
    }

    fn registries_of(&self, config: Option<&WeirConfig>) -> Registries {
        let mut registries = match config {
            Some(config) => config.modules.registries(),
            None => Registries::new(Registries::default_cache_dir()),
        };
        registries.set_plain_http(self.plain_http);
        registries
    }

    fn config(&self) -> anyhow::Result<Option<WeirConfig>> {
        self.config
            .as_deref()
            .map(WeirConfig::from_file)
            .transpose()
            .map_err(Into::into)
    }
}

/// The graph definition `written` names, a file or `oci://<reference>`, parsed with
/// `configuration`, and the file it was read from.
pub fn load_definition(
    written: &Path,
    configuration: &HashMap<String, String>,
    registries: &Registries,
) -> anyhow::Result<(Graph, PathBuf)> {
    match written.to_str().and_then(|w| w.strip_prefix("oci://")) {
        Some(reference) => pull_definition(reference, configuration, registries),
        None => Ok((Graph::load(written, configuration)?, written.to_path_buf())),
    }
}

/// Pulls the graph definition `reference` (without `oci://`) and parses it with
/// `configuration`. Errors in it are located at `oci://<reference>@<digest>:line:column`.
pub fn pull_definition(
    reference: &str,
    configuration: &HashMap<String, String>,
    registries: &Registries,
) -> anyhow::Result<(Graph, PathBuf)> {
    let pulled = registries.pull(reference, ArtifactKind::Graph)?;
    let text = std::fs::read_to_string(&pulled.path)
        .with_context(|| format!("cannot read {}", pulled.path.display()))?;
    let label = if reference.contains('@') {
        format!("oci://{reference}")
    } else {
        format!("oci://{reference}@{}", pulled.digest)
    };
    Ok((Graph::parse(&text, &label, configuration)?, pulled.path))
}

/// `weir module push` (`kind` module) or `weir graph push` (graph definition).
/// A graph definition is checked to read as one (its YAML and keys) first.
pub fn push(kind: ArtifactKind, args: PushArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    if kind == ArtifactKind::Graph {
        // A definition that does not read as one is refused before it is published; the rest
        // (parameters, modules) depends on where it is bound: `weir graph check` checks that.
        let text = std::str::from_utf8(&bytes)
            .with_context(|| format!("{} is not UTF-8 text", args.file.display()))?;
        weir_model::yaml::from_str::<GraphDefinition>(text, |offset| {
            weir_model::yaml::line_column(text, offset)
        })
        .map_err(|e| {
            anyhow::anyhow!(
                "{}:{}:{}: {}",
                args.file.display(),
                e.line,
                e.column,
                e.message
            )
        })?;
    }
    let title = args
        .file
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let started = Instant::now();
    let digest = args
        .registry
        .registries()?
        .push(bytes, &title, &args.reference, kind)?;
    println!(
        "pushed {} to {} ({digest}) in {} ms",
        args.file.display(),
        args.reference,
        started.elapsed().as_millis()
    );
    Ok(())
}

/// `weir module pull` or `weir graph pull`.
pub fn pull(kind: ArtifactKind, args: PullArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let pulled = args.registry.registries()?.pull(&args.reference, kind)?;
    let took = started.elapsed().as_millis();
    let output = match args.output {
        Some(file) => file,
        None => default_output(&args.reference, kind)?,
    };
    std::fs::copy(&pulled.path, &output)
        .with_context(|| format!("cannot write {}", output.display()))?;
    let origin = match pulled.origin {
        Origin::Registry => "from the registry",
        Origin::Cache => "from the cache",
        Origin::CacheOffline => "from the cache, the registry being unreachable",
    };
    println!(
        "pulled {} ({}) {origin} in {took} ms to {}",
        args.reference,
        pulled.digest,
        output.display()
    );
    Ok(())
}

/// `NAME.wasm` or `NAME.yaml`, NAME the repository's last component.
fn default_output(reference: &str, kind: ArtifactKind) -> anyhow::Result<PathBuf> {
    weir_oci::check_reference(weir_oci::strip_scheme(reference))?;
    let name = match weir_oci::repository_name(reference) {
        "" => "artifact",
        name => name,
    };
    Ok(PathBuf::from(format!("{name}.{}", kind.extension())))
}
