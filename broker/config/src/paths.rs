//! File paths in the configuration: resolved against the configuration file's directory and
//! checked while parsing, so that a missing file is reported at the key that names it.

use serde::{Deserialize, Deserializer};
use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};

thread_local! {
    static BASE_DIR: RefCell<PathBuf> = const { RefCell::new(PathBuf::new()) };
}

/// Runs `parse` with relative configuration paths resolving against `base`.
pub(super) fn with_base_dir<T>(base: &Path, parse: impl FnOnce() -> T) -> T {
    let previous = BASE_DIR.with(|dir| dir.replace(base.to_path_buf()));
    let result = parse();
    BASE_DIR.with(|dir| *dir.borrow_mut() = previous);
    result
}

/// A path to a file that exists and can be read, resolved against the configuration's directory.
#[derive(Clone, PartialEq, Eq)]
pub struct ExistingFile(PathBuf);

impl ExistingFile {
    /// The resolved path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl fmt::Debug for ExistingFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for ExistingFile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let written = PathBuf::deserialize(deserializer)?;
        let resolved = BASE_DIR.with(|base| base.borrow().join(&written));
        match std::fs::File::open(&resolved) {
            Ok(_) => Ok(ExistingFile(resolved)),
            Err(e) => Err(serde::de::Error::custom(format_args!(
                "cannot read file {}: {e}",
                resolved.display()
            ))),
        }
    }
}

/// A path resolved against the configuration's directory (it need not exist yet).
#[derive(Clone, PartialEq, Eq)]
pub struct RelativePath(PathBuf);

impl RelativePath {
    /// `path` resolved against the directory configuration paths are read relative to now.
    pub fn resolve(path: &Path) -> RelativePath {
        RelativePath(BASE_DIR.with(|base| base.borrow().join(path)))
    }

    /// The resolved path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl fmt::Debug for RelativePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for RelativePath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(RelativePath::resolve(&PathBuf::deserialize(deserializer)?))
    }
}
