//! The state store behind the `state-store` host API: a persistent key/value store shared by
//! every module of a broker, on [redb].
//!
//! Semantics follow a distributed state store: conditional sets, TTL expiry, versions that are
//! strictly increasing hybrid-logical-clock timestamps (also across restarts), and fencing
//! tokens: a write carrying a token lower than the key's is rejected. Reads of a missing or
//! expired key are `None`, not errors.

mod entry;
pub mod mqtt;
pub mod seed;

use entry::Entry;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use weir_model::hlc::{Hlc, HlcClock};

const ENTRIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("entries");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const LAST_VERSION: &str = "last-version";

/// When a `set` may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetCondition {
    /// Only if the key has no (unexpired) value.
    OnlyIfDoesNotExist,
    /// Only if the key has no value or already has exactly this value.
    OnlyIfEqualOrDoesNotExist,
    /// Always.
    Unconditional,
}

/// What a `get` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetResponse {
    /// The value, `None` for a missing or expired key.
    pub value: Option<Vec<u8>>,
    /// The version of the value.
    pub version: Option<Hlc>,
    /// When the value expires, in milliseconds since the Unix epoch.
    pub expires_at: Option<u64>,
}

/// What a `set` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetResponse {
    /// `false` when the condition did not hold and nothing was written.
    pub written: bool,
    /// The new version when written.
    pub version: Option<Hlc>,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The request's fencing token is lower than the key's.
    #[error("fencing token {given} is lower than the key's fencing token {current}")]
    FencingTokenTooLow {
        /// The token the request carried.
        given: Hlc,
        /// The token the key holds.
        current: Hlc,
    },
    /// The key's value was written with a fencing token, the request carries none.
    #[error("a fencing token is required for this request")]
    FencingTokenRequired,
    /// The store could not be opened.
    #[error("cannot open the state store {path}: {source}")]
    Open {
        /// The database file.
        path: String,
        /// redb's reason.
        source: Box<redb::DatabaseError>,
    },
    /// The storage engine failed.
    #[error("state store storage error: {0}")]
    Storage(String),
}

impl StateError {
    fn storage(error: impl std::fmt::Display) -> StateError {
        StateError::Storage(error.to_string())
    }
}

/// Where the store reads the time for expiry, in milliseconds since the Unix epoch.
pub trait WallClock: Send + Sync {
    /// The current time.
    fn now_millis(&self) -> u64;
}

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl WallClock for SystemClock {
    fn now_millis(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// Told of every change the store commits, whoever made it (a module, an MQTT client).
pub trait KeyWatcher: Send + Sync {
    /// Whether changes of `key` are wanted (checked before the change is copied out).
    fn watches(&self, key: &[u8]) -> bool;
    /// `key` changed. Called after the change is committed, outside the store's locks.
    fn changed(&self, key: &[u8], change: KeyChange<'_>);
}

/// What became of a key.
#[derive(Debug, Clone, Copy)]
pub struct KeyChange<'a> {
    /// The new value; `None`: deleted.
    pub value: Option<&'a [u8]>,
    /// The change's version.
    pub version: &'a Hlc,
    /// When the new value expires, in milliseconds since the Unix epoch.
    pub expires_at: Option<u64>,
}

/// The store. Cheap to share behind an `Arc`; every method may be called from any thread.
pub struct StateStore {
    db: Database,
    clock: Mutex<HlcClock>,
    wall: Box<dyn WallClock>,
    watcher: OnceLock<Arc<dyn KeyWatcher>>,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore").finish_non_exhaustive()
    }
}

impl StateStore {
    /// Opens (or creates) the store in `path`; versions issued later are greater than any
    /// issued before. `node_id` goes into the versions this store issues.
    ///
    /// ```
    /// use weir_state::{SetCondition, StateStore};
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = StateStore::open(&dir.path().join("state.redb"), "gw1").unwrap();
    /// let set = store.set(b"k", b"v", None, SetCondition::Unconditional, None).unwrap();
    /// assert!(set.written);
    /// assert_eq!(store.get(b"k").unwrap().value.as_deref(), Some(&b"v"[..]));
    /// ```
    pub fn open(path: &Path, node_id: &str) -> Result<StateStore, StateError> {
        Self::open_with_clock(path, node_id, Box::new(SystemClock))
    }

    /// A store held in memory only, for offline tools and tests: nothing survives the process.
    pub fn in_memory(node_id: &str) -> Result<StateStore, StateError> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|source| StateError::Open {
                path: "<memory>".into(),
                source: Box::new(source),
            })?;
        Self::with_database(db, node_id, Box::new(SystemClock))
    }

    /// Like [`open`](Self::open), reading the time for expiry from `wall`.
    pub fn open_with_clock(
        path: &Path,
        node_id: &str,
        wall: Box<dyn WallClock>,
    ) -> Result<StateStore, StateError> {
        let db = Database::create(path).map_err(|source| StateError::Open {
            path: path.display().to_string(),
            source: Box::new(source),
        })?;
        Self::with_database(db, node_id, wall)
    }

    fn with_database(
        db: Database,
        node_id: &str,
        wall: Box<dyn WallClock>,
    ) -> Result<StateStore, StateError> {
        let mut clock = HlcClock::new(node_id);
        let txn = db.begin_write().map_err(StateError::storage)?;
        {
            txn.open_table(ENTRIES).map_err(StateError::storage)?;
            let meta = txn.open_table(META).map_err(StateError::storage)?;
            let last = meta
                .get(LAST_VERSION)
                .map_err(StateError::storage)?
                .and_then(|last| entry::decode_hlc(last.value()));
            if let Some(last) = last {
                clock.observe(&last);
            }
        }
        txn.commit().map_err(StateError::storage)?;
        Ok(StateStore {
            db,
            clock: Mutex::new(clock),
            wall,
            watcher: OnceLock::new(),
        })
    }

    /// Tells `watcher` of every change from now on. One watcher per store: `false` if one was
    /// set already.
    pub fn watch(&self, watcher: Arc<dyn KeyWatcher>) -> bool {
        self.watcher.set(watcher).is_ok()
    }

    /// A fresh timestamp from the store's clock (greater than every version it issued).
    pub fn now(&self) -> Result<Hlc, StateError> {
        let mut clock = self
            .clock
            .lock()
            .map_err(|_| StateError::storage("clock poisoned"))?;
        Ok(clock.now())
    }

    /// The value of `key` and its version; `None` when missing or expired.
    pub fn get(&self, key: &[u8]) -> Result<GetResponse, StateError> {
        let txn = self.db.begin_read().map_err(StateError::storage)?;
        let table = txn.open_table(ENTRIES).map_err(StateError::storage)?;
        let entry = match table.get(key).map_err(StateError::storage)? {
            Some(bytes) => Entry::decode(bytes.value()),
            None => None,
        };
        Ok(match entry.filter(|e| !e.expired(self.wall.now_millis())) {
            Some(entry) => GetResponse {
                value: Some(entry.value),
                version: Some(entry.version),
                expires_at: entry.expires_at,
            },
            None => GetResponse {
                value: None,
                version: None,
                expires_at: None,
            },
        })
    }

    /// Writes `value` under `key` if `condition` holds, expiring after `expires` if given (a
    /// TTL too long to count in milliseconds never expires).
    ///
    /// ```
    /// use std::time::Duration;
    /// use weir_state::{SetCondition, StateStore};
    /// let store = StateStore::in_memory("gw1").unwrap();
    /// let set = store.set(b"k", b"v", None, SetCondition::Unconditional, Some(Duration::MAX));
    /// assert!(set.unwrap().written);
    /// assert!(store.get(b"k").unwrap().value.is_some());
    /// ```
    pub fn set(
        &self,
        key: &[u8],
        value: &[u8],
        fencing_token: Option<&Hlc>,
        condition: SetCondition,
        expires: Option<Duration>,
    ) -> Result<SetResponse, StateError> {
        self.write(key, fencing_token, |current, version, now| {
            let allowed = match (condition, current) {
                (SetCondition::Unconditional, _) | (_, None) => true,
                (SetCondition::OnlyIfDoesNotExist, Some(_)) => false,
                (SetCondition::OnlyIfEqualOrDoesNotExist, Some(entry)) => entry.value == value,
            };
            if !allowed {
                return (
                    Change::Keep,
                    SetResponse {
                        written: false,
                        version: None,
                    },
                );
            }
            let expires_at = expires
                .map(|ttl| now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)));
            let entry = Entry {
                value: value.to_vec(),
                version: version.clone(),
                expires_at,
                fencing_token: None,
            };
            (
                Change::Put(entry),
                SetResponse {
                    written: true,
                    version: Some(version),
                },
            )
        })
    }

    /// Deletes `key`: 1 if a value was deleted, 0 if there was none.
    pub fn del(&self, key: &[u8], fencing_token: Option<&Hlc>) -> Result<i64, StateError> {
        self.write(key, fencing_token, |current, _, _| match current {
            Some(_) => (Change::Delete, 1),
            None => (Change::Keep, 0),
        })
    }

    /// Deletes `key` only if it holds `value`: 1 if deleted, 0 if missing, -1 if the value
    /// differs.
    pub fn vdel(
        &self,
        key: &[u8],
        value: &[u8],
        fencing_token: Option<&Hlc>,
    ) -> Result<i64, StateError> {
        self.write(key, fencing_token, |current, _, _| match current {
            Some(entry) if entry.value == value => (Change::Delete, 1),
            Some(_) => (Change::Keep, -1),
            None => (Change::Keep, 0),
        })
    }

    /// One write transaction on `key`: checks the fencing token, lets `decide` choose a change
    /// from the live entry, a fresh version and the time, and commits it durably.
    fn write<R>(
        &self,
        key: &[u8],
        fencing_token: Option<&Hlc>,
        decide: impl FnOnce(Option<&Entry>, Hlc, u64) -> (Change, R),
    ) -> Result<R, StateError> {
        let watcher = self.watcher.get().filter(|w| w.watches(key));
        let (result, changed) = self.commit(key, fencing_token, watcher.is_some(), decide)?;
        if let (Some(watcher), Some((value, version, expires_at))) = (watcher, changed) {
            let change = KeyChange {
                value: value.as_deref(),
                version: &version,
                expires_at,
            };
            watcher.changed(key, change);
        }
        Ok(result)
    }

    /// The transaction of [`write`](Self::write); with `report`, also what changed (the new
    /// value, `None` when deleted, its version and expiry).
    fn commit<R>(
        &self,
        key: &[u8],
        fencing_token: Option<&Hlc>,
        report: bool,
        decide: impl FnOnce(Option<&Entry>, Hlc, u64) -> (Change, R),
    ) -> Result<(R, Option<Changed>), StateError> {
        let mut clock = self
            .clock
            .lock()
            .map_err(|_| StateError::storage("clock poisoned"))?;
        let txn = self.db.begin_write().map_err(StateError::storage)?;
        let result = {
            let mut table = txn.open_table(ENTRIES).map_err(StateError::storage)?;
            let now = self.wall.now_millis();
            let stored = match table.get(key).map_err(StateError::storage)? {
                Some(bytes) => Entry::decode(bytes.value()),
                None => None,
            };
            // The fencing token outlives the value's expiry: it guards the key.
            let key_token = stored.as_ref().and_then(|e| e.fencing_token.clone());
            if let (Some(given), Some(current)) = (fencing_token, &key_token) {
                if given < current {
                    return Err(StateError::FencingTokenTooLow {
                        given: given.clone(),
                        current: current.clone(),
                    });
                }
            }
            let live = stored.filter(|e| !e.expired(now));
            // A live value written with a fencing token is written again only with one.
            if fencing_token.is_none() && live.as_ref().is_some_and(|e| e.fencing_token.is_some()) {
                return Err(StateError::FencingTokenRequired);
            }
            let version = clock.now();
            let (change, result) = decide(live.as_ref(), version.clone(), now);
            let changed = match &change {
                _ if !report => None,
                Change::Keep => None,
                Change::Put(entry) => {
                    Some((Some(entry.value.clone()), version.clone(), entry.expires_at))
                }
                Change::Delete => Some((None, version.clone(), None)),
            };
            let token = match (fencing_token, key_token) {
                (Some(given), _) => Some(given.clone()),
                (None, kept) => kept,
            };
            match change {
                Change::Keep => {}
                Change::Put(mut entry) => {
                    entry.fencing_token = token;
                    table
                        .insert(key, entry.encode().as_slice())
                        .map_err(StateError::storage)?;
                }
                Change::Delete if token.is_some() => {
                    // Keep the key's fencing token: a tombstone that expires at once.
                    let tombstone = Entry {
                        value: Vec::new(),
                        version: version.clone(),
                        expires_at: Some(0),
                        fencing_token: token,
                    };
                    table
                        .insert(key, tombstone.encode().as_slice())
                        .map_err(StateError::storage)?;
                }
                Change::Delete => {
                    table.remove(key).map_err(StateError::storage)?;
                }
            }
            let mut meta = txn.open_table(META).map_err(StateError::storage)?;
            meta.insert(LAST_VERSION, entry::encode_hlc(&version).as_slice())
                .map_err(StateError::storage)?;
            (result, changed)
        };
        txn.commit().map_err(StateError::storage)?;
        Ok(result)
    }
}

/// A committed change for the watcher: value, version, expiry.
type Changed = (Option<Vec<u8>>, Hlc, Option<u64>);

enum Change {
    Keep,
    Put(Entry),
    Delete,
}
