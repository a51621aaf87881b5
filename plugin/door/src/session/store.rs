//! What the door keeps on disk: its retained messages and its persistent sessions (their
//! subscriptions, queued messages and deliveries in flight, and when they expire), in one redb
//! file (`weir.redb`) in the persistence directory, written every `autosave_interval` and at
//! shutdown, read back at start.
//!
//! A store that cannot be read (corrupt, or written by an incompatible version) is moved aside
//! with a warning and the broker starts empty, never in a crash loop; a store another `weir`
//! holds open is an error naming its path.

use crate::retained::Retained;
use crate::session::state::SessionState;
use redb::{Database, DatabaseError, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Retained messages: topic → the message (postcard).
const RETAINED: TableDefinition<&str, &[u8]> = TableDefinition::new("retained_v1");

/// Persistent sessions: client id → [`StoredSession`] (postcard).
const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions_v1");

/// A persistent session as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSession {
    /// What it holds.
    pub state: SessionState,
    /// When it expires, ms since the Unix epoch (`None`: never): its clock goes on across a
    /// restart.
    pub expires_at: Option<u64>,
}

/// The database file in the persistence directory.
pub const FILE_NAME: &str = "weir.redb";

/// Why the store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory cannot be created.
    #[error("cannot create the persistence directory {path}: {source}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another process has the store open.
    #[error("the store {path} is in use by another process (another weir with the same persistence path?)")]
    InUse {
        /// The database file.
        path: PathBuf,
    },
    /// The store cannot be opened, nor moved aside.
    #[error("cannot open the store {path}: {message}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Writing failed.
    #[error("cannot write the store {path}: {message}")]
    Write {
        /// The database file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// The door's store.
pub struct Store {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (or creates) the store in `dir` (created if missing). A file that cannot be read
    /// is moved aside (`weir.redb.corrupt-SECONDS`) and a new one made.
    ///
    /// ```
    /// use weir_door::store::Store;
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = Store::open(dir.path()).unwrap();
    /// assert!(store.load_retained().unwrap().is_empty());
    /// ```
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(FILE_NAME);
        match Database::create(&path) {
            Ok(db) => Ok(Store { db, path }),
            Err(DatabaseError::DatabaseAlreadyOpen) => Err(StoreError::InUse { path }),
            Err(e) => {
                let aside = set_aside(&path)?;
                tracing::error!(
                    "the store {} cannot be read ({e}): moved to {} and starting empty",
                    path.display(),
                    aside.display()
                );
                let db = Database::create(&path).map_err(|e| StoreError::Open {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                Ok(Store { db, path })
            }
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the retained messages on disk with `messages`, in one transaction.
    pub fn save_retained(&self, messages: &[(String, Retained)]) -> Result<(), StoreError> {
        self.replace(RETAINED, messages)
    }

    /// The retained messages on disk (an entry that does not decode is skipped, with a
    /// warning).
    pub fn load_retained(&self) -> Result<Vec<(String, Retained)>, StoreError> {
        self.load(RETAINED, "retained message on")
    }

    /// Replaces the sessions on disk with `sessions`, in one transaction.
    pub fn save_sessions(&self, sessions: &[(String, StoredSession)]) -> Result<(), StoreError> {
        self.replace(SESSIONS, sessions)
    }

    /// The sessions on disk (one that does not decode is skipped, with a warning).
    pub fn load_sessions(&self) -> Result<Vec<(String, StoredSession)>, StoreError> {
        self.load(SESSIONS, "session of")
    }

    fn replace<T: Serialize>(
        &self,
        definition: TableDefinition<&str, &[u8]>,
        entries: &[(String, T)],
    ) -> Result<(), StoreError> {
        let write_error = |e: &dyn std::fmt::Display| StoreError::Write {
            path: self.path.clone(),
            message: e.to_string(),
        };
        let txn = self.db.begin_write().map_err(|e| write_error(&e))?;
        {
            let mut table = txn.open_table(definition).map_err(|e| write_error(&e))?;
            table.retain(|_, _| false).map_err(|e| write_error(&e))?;
            for (key, value) in entries {
                let bytes = postcard::to_allocvec(value).map_err(|e| write_error(&e))?;
                table
                    .insert(key.as_str(), bytes.as_slice())
                    .map_err(|e| write_error(&e))?;
            }
        }
        txn.commit().map_err(|e| write_error(&e))
    }

    fn load<T: for<'de> Deserialize<'de>>(
        &self,
        definition: TableDefinition<&str, &[u8]>,
        what: &str,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let read_error = |e: &dyn std::fmt::Display| StoreError::Open {
            path: self.path.clone(),
            message: e.to_string(),
        };
        let txn = self.db.begin_read().map_err(|e| read_error(&e))?;
        let table = match txn.open_table(definition) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(read_error(&e)),
        };
        let mut entries = Vec::new();
        for entry in table.iter().map_err(|e| read_error(&e))? {
            let (key, bytes) = entry.map_err(|e| read_error(&e))?;
            match postcard::from_bytes::<T>(bytes.value()) {
                Ok(value) => entries.push((key.value().to_string(), value)),
                Err(e) => tracing::warn!(
                    "{}: {what} `{}` skipped: {e}",
                    self.path.display(),
                    key.value()
                ),
            }
        }
        Ok(entries)
    }
}

/// Moves the unreadable store at `path` aside; returns where it went.
fn set_aside(path: &Path) -> Result<PathBuf, StoreError> {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".corrupt-{seconds}"));
    let aside = PathBuf::from(aside);
    std::fs::rename(path, &aside).map_err(|e| StoreError::Open {
        path: path.to_path_buf(),
        message: format!("unreadable, and cannot be moved aside: {e}"),
    })?;
    Ok(aside)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn message(payload: &'static str) -> Retained {
        Retained {
            topic: Bytes::from_static(b"a/b"),
            payload: Bytes::from_static(payload.as_bytes()),
            qos: 1,
            properties: None,
            expires_at: Some(42),
        }
    }

    #[test]
    fn retained_messages_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .save_retained(&[("a/b".into(), message("one"))])
            .unwrap();
        store
            .save_retained(&[("a/b".into(), message("two"))])
            .unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.load_retained().unwrap(),
            vec![("a/b".to_string(), message("two"))]
        );
    }

    #[test]
    fn a_corrupt_store_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), b"not a database at all").unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(store.load_retained().unwrap().is_empty());
        let aside = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().contains(".corrupt-"));
        assert!(aside);
    }

    #[test]
    fn a_store_in_use_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _held = Store::open(dir.path()).unwrap();
        let error = Store::open(dir.path()).unwrap_err();
        assert!(matches!(error, StoreError::InUse { .. }), "{error}");
    }
}
