//! Compiled components cached on disk, keyed by the component's content hash and by the
//! engine's compatibility hash (wasmtime version and settings), so a second start skips
//! compilation: seconds for a Python component, milliseconds when cached.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::component::Component;
use wasmtime::Engine;

/// A directory of `<sha256>-<engine>.cwasm` files.
pub(crate) struct CompiledCache {
    dir: PathBuf,
    engine_key: String,
}

impl CompiledCache {
    pub fn new(dir: &Path, engine: &Engine) -> CompiledCache {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        CompiledCache {
            dir: dir.to_path_buf(),
            engine_key: format!("{:016x}", hasher.finish()),
        }
    }

    /// The compiled form of `bytes`, from the cache when present; compiles and stores it
    /// otherwise. A cache that cannot be read or written only costs time.
    pub fn component(&self, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
        let digest = Sha256::digest(bytes);
        let mut name = String::with_capacity(96);
        for byte in digest {
            name.push_str(&format!("{byte:02x}"));
        }
        let path = self.dir.join(format!("{name}-{}.cwasm", self.engine_key));
        if path.exists() {
            // SAFETY: the file was written by `Component::serialize` of an engine with the
            // same compatibility hash, in a directory only this user's Weir writes to.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok(component),
                Err(error) => tracing::warn!(
                    "compiled cache entry {} unusable ({error}); recompiling",
                    path.display()
                ),
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(error) = self.store(&path, &component) {
            tracing::warn!(
                "cannot cache compiled component in {}: {error}",
                path.display()
            );
        }
        Ok(component)
    }

    fn store(&self, path: &Path, component: &Component) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let serialized = component
            .serialize()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let temporary = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&temporary, serialized)?;
        std::fs::rename(&temporary, path)
    }
}
