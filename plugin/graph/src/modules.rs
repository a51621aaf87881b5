//! Module references in graphs, resolved against module directories and registries.
//!
//! A reference is a file path (ending in `.wasm`, or starting with `/`, `./` or `../`), a
//! registry reference (its first component has a `.` or a `:` or is `localhost`:
//! `localhost:5000/samples/temperature:1.0.0`, pulled and cached by [`weir_oci`]), or an
//! OCI-style `name:tag` / `repo/path/name:tag` without a registry. The latter resolves, in each
//! directory in turn, to the first that exists of `DIR/name-tag.wasm`, `DIR/name/tag.wasm` and
//! `DIR/name.wasm` (the repository path is ignored), so modules built into `target/modules/`
//! just work.

use std::path::{Path, PathBuf};
use std::time::Instant;
use weir_oci::{names_registry, ArtifactKind, Origin, Registries};

/// Where module references resolve: local directories, and the registries for references
/// that name one.
#[derive(Debug, Clone)]
pub struct ModuleSources {
    /// Directories searched in order.
    pub directories: Vec<PathBuf>,
    /// Registries and the cache of what was pulled from them.
    pub registries: Registries,
}

impl ModuleSources {
    /// `directories`, and registries with default settings and the default cache.
    pub fn local(directories: Vec<PathBuf>) -> ModuleSources {
        ModuleSources {
            directories,
            registries: Registries::new(Registries::default_cache_dir()),
        }
    }

    /// The file `reference` names: pulled (or cached) when it names a registry, else found in
    /// the directories; or a message saying why not.
    ///
    /// ```
    /// use weir_graph::ModuleSources;
    /// let dir = tempfile::tempdir().unwrap();
    /// std::fs::write(dir.path().join("temperature.wasm"), b"").unwrap();
    /// let sources = ModuleSources::local(vec![dir.path().to_path_buf()]);
    /// let found = sources.resolve("azure-samples/explore-iot-operations/temperature:1.0.0");
    /// assert_eq!(found.unwrap(), dir.path().join("temperature.wasm"));
    /// assert!(sources.resolve("humidity:2").is_err());
    /// ```
    pub fn resolve(&self, reference: &str) -> Result<PathBuf, String> {
        if !names_registry(reference) {
            return resolve_module(reference, &self.directories);
        }
        let started = Instant::now();
        let pulled = self
            .registries
            .pull(reference, ArtifactKind::Module)
            .map_err(|e| e.to_string())?;
        if pulled.origin == Origin::Registry {
            tracing::info!(
                "module {reference} pulled ({}) in {} ms",
                pulled.digest,
                started.elapsed().as_millis()
            );
        }
        Ok(pulled.path)
    }
}

/// The file `reference`, a path or a reference without a registry, names in `dirs`, or a
/// message listing where it was looked for.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("temperature.wasm"), b"").unwrap();
/// let dirs = [dir.path().to_path_buf()];
/// let found = weir_graph::resolve_module("samples/temperature:1.0.0", &dirs);
/// assert_eq!(found.unwrap(), dir.path().join("temperature.wasm"));
/// assert!(weir_graph::resolve_module("humidity:2", &dirs).is_err());
/// ```
pub fn resolve_module(reference: &str, dirs: &[PathBuf]) -> Result<PathBuf, String> {
    let is_path = reference.ends_with(".wasm")
        || reference.starts_with('/')
        || reference.starts_with("./")
        || reference.starts_with("../");
    let candidates: Vec<PathBuf> = if is_path {
        let path = Path::new(reference);
        if path.is_absolute() {
            vec![path.to_path_buf()]
        } else {
            std::iter::once(path.to_path_buf())
                .chain(dirs.iter().map(|dir| dir.join(path)))
                .collect()
        }
    } else {
        let last = reference.rsplit('/').next().unwrap_or(reference);
        let (name, tag) = match last.split_once(':') {
            Some((name, tag)) => (name, Some(tag)),
            None => (last, None),
        };
        dirs.iter()
            .flat_map(|dir| {
                let mut paths = Vec::with_capacity(3);
                if let Some(tag) = tag {
                    paths.push(dir.join(format!("{name}-{tag}.wasm")));
                    paths.push(dir.join(name).join(format!("{tag}.wasm")));
                }
                paths.push(dir.join(format!("{name}.wasm")));
                paths
            })
            .collect()
    };
    candidates
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .ok_or_else(|| {
            let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
            if tried.is_empty() {
                format!("module `{reference}` not found: no module directory is configured")
            } else {
                format!(
                    "module `{reference}` not found; looked for {}",
                    tried.join(", ")
                )
            }
        })
}

#[cfg(test)]
mod tests {
    use super::resolve_module;

    #[test]
    fn prefers_the_most_specific_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("window")).unwrap();
        for file in ["window.wasm", "window/2.0.0.wasm", "window-1.0.0.wasm"] {
            std::fs::write(d.join(file), b"").unwrap();
        }
        let dirs = [d.to_path_buf()];
        assert_eq!(
            resolve_module("window:1.0.0", &dirs).unwrap(),
            d.join("window-1.0.0.wasm")
        );
        assert_eq!(
            resolve_module("a/b/window:2.0.0", &dirs).unwrap(),
            d.join("window/2.0.0.wasm")
        );
        assert_eq!(
            resolve_module("window:3", &dirs).unwrap(),
            d.join("window.wasm")
        );
        assert_eq!(
            resolve_module("window", &dirs).unwrap(),
            d.join("window.wasm")
        );
        assert_eq!(
            resolve_module("window.wasm", &dirs).unwrap(),
            d.join("window.wasm")
        );
        let missing = resolve_module("gone:1", &dirs).unwrap_err();
        assert!(
            missing.contains("gone-1.wasm") && missing.contains("gone.wasm"),
            "{missing}"
        );
    }
}
