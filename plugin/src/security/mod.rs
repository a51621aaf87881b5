//! Who may connect and what they may do: mosquitto's password file (and, with it, the users
//! listed in weir.yaml).

pub mod passwd;

use passwd::{PasswdError, PasswordFile};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// A password file as the door uses it: the version last read, replaced by
/// [`PasswordSource::reload`] (on SIGHUP) only when the new one parses.
#[derive(Debug)]
pub struct PasswordSource {
    path: PathBuf,
    current: RwLock<Arc<PasswordFile>>,
}

impl PasswordSource {
    /// `file`, as read from `path`.
    pub fn new(path: &Path, file: Arc<PasswordFile>) -> PasswordSource {
        PasswordSource {
            path: path.to_path_buf(),
            current: RwLock::new(file),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The version in use.
    pub fn current(&self) -> Arc<PasswordFile> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reads the file again; on an error the version in use stays. Returns the users read.
    pub fn reload(&self) -> Result<usize, PasswdError> {
        let file = PasswordFile::load(&self.path)?;
        let users = file.len();
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(file);
        Ok(users)
    }
}
