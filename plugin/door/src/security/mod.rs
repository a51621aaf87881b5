//! Who may connect and what they may do: mosquitto's password file (beside the users listed
//! in weir.yaml) and ACL file.

pub mod acl;
pub mod passwd;

use acl::{AclError, AclFile, ClientAcl};
use passwd::{PasswdError, PasswordFile};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
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

/// An ACL file as the door uses it: the version last read, replaced by [`AclSource::reload`]
/// (on SIGHUP) only when the new one parses; clients pick the new rules up at their next check.
#[derive(Debug)]
pub struct AclSource {
    path: PathBuf,
    current: RwLock<Arc<AclFile>>,
    version: AtomicU64,
}

impl AclSource {
    /// `file`, as read from `path`.
    pub fn new(path: &Path, file: Arc<AclFile>) -> AclSource {
        AclSource {
            path: path.to_path_buf(),
            current: RwLock::new(file),
            version: AtomicU64::new(0),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file again; on an error the version in use stays.
    pub fn reload(&self) -> Result<(), AclError> {
        let file = AclFile::load(&self.path)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(file);
        self.version.fetch_add(1, Relaxed);
        Ok(())
    }

    fn current(&self) -> Arc<AclFile> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// One client's view of an ACL: its rules, worked out again when the file was reloaded, and
/// the last decision for writing and for reading (devices publish to the same topic again and
/// again, and a subscriber mostly receives from few).
#[derive(Debug, Clone)]
pub struct ClientRules {
    source: Arc<AclSource>,
    client_id: String,
    username: Option<String>,
    version: u64,
    rules: ClientAcl,
    last_write: Option<(String, bool)>,
    last_read: Option<(String, bool)>,
}

/// Remembers `allowed` for `topic` in `last`, reusing its allocation.
fn remember(last: &mut Option<(String, bool)>, topic: &str, allowed: bool) {
    match last {
        Some((kept, decision)) => {
            kept.clear();
            kept.push_str(topic);
            *decision = allowed;
        }
        None => *last = Some((topic.to_string(), allowed)),
    }
}

impl ClientRules {
    /// The rules of `source` for client `client_id` logged in as `username`.
    pub fn new(source: Arc<AclSource>, client_id: &str, username: Option<&str>) -> ClientRules {
        let version = source.version.load(Relaxed);
        let rules = source.current().for_client(client_id, username);
        ClientRules {
            source,
            client_id: client_id.to_string(),
            username: username.map(str::to_string),
            version,
            rules,
            last_write: None,
            last_read: None,
        }
    }

    /// Whether the client may publish to `topic`.
    pub fn may_write(&mut self, topic: &str) -> bool {
        self.refresh();
        if let Some((last, allowed)) = &self.last_write {
            if last == topic {
                return *allowed;
            }
        }
        let allowed = self.rules.may_write(topic);
        remember(&mut self.last_write, topic, allowed);
        allowed
    }

    /// Whether the client may receive a message on `topic`.
    pub fn may_read(&mut self, topic: &str) -> bool {
        self.refresh();
        if let Some((last, allowed)) = &self.last_read {
            if last == topic {
                return *allowed;
            }
        }
        let allowed = self.rules.may_read(topic);
        remember(&mut self.last_read, topic, allowed);
        allowed
    }

    /// Whether the client may subscribe to `filter`.
    pub fn may_subscribe(&mut self, filter: &weir_model::topic::TopicFilter) -> bool {
        self.refresh();
        self.rules.may_subscribe(filter)
    }

    /// Works the rules out again when the file was reloaded.
    fn refresh(&mut self) {
        let version = self.source.version.load(Relaxed);
        if version != self.version {
            self.version = version;
            self.rules = self
                .source
                .current()
                .for_client(&self.client_id, self.username.as_deref());
            self.last_write = None;
            self.last_read = None;
        }
    }
}
