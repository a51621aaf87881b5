//! `auth:` (in `broker:` and in a listener): who may connect.

use super::paths::ExistingFile;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use weir_door::security::acl::AclFile;
use weir_door::security::passwd::PasswordFile;

/// Username/password authentication, as mosquitto applies it: a client that sends a username
/// must know its password (from `users` or the password file); a client without one gets in
/// only where `allow_anonymous` is true (the default when no user is listed).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "WrittenAuth")]
pub struct AuthConfig {
    /// Whether clients may connect without a username.
    pub allow_anonymous: bool,
    /// Username → password.
    pub users: BTreeMap<String, String>,
    /// mosquitto's password file, read when the configuration is loaded.
    pub password_file: Option<PasswordFileConfig>,
    /// mosquitto's ACL file, read when the configuration is loaded.
    pub acl_file: Option<AclFileConfig>,
}

impl AuthConfig {
    /// Whether clients may connect without credentials.
    pub fn allows_anonymous(&self) -> bool {
        self.allow_anonymous
    }

    /// Whether any user is listed (inline or in the password file).
    pub fn has_users(&self) -> bool {
        !self.users.is_empty() || self.password_file.is_some()
    }
}

/// A password file, its path and what it held when read.
#[derive(Debug, Clone)]
pub struct PasswordFileConfig {
    /// Where it is (read again on SIGHUP).
    pub path: PathBuf,
    /// Its users.
    pub file: Arc<PasswordFile>,
}

impl PasswordFileConfig {
    /// The resolved path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl<'de> Deserialize<'de> for PasswordFileConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let path = ExistingFile::deserialize(d)?.path().to_path_buf();
        let file = PasswordFile::load(&path).map_err(serde::de::Error::custom)?;
        Ok(PasswordFileConfig {
            path,
            file: Arc::new(file),
        })
    }
}

/// An ACL file, its path and the rules it held when read.
#[derive(Debug, Clone)]
pub struct AclFileConfig {
    /// Where it is (read again on SIGHUP).
    pub path: PathBuf,
    /// Its rules.
    pub file: Arc<AclFile>,
}

impl<'de> Deserialize<'de> for AclFileConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let path = ExistingFile::deserialize(d)?.path().to_path_buf();
        let file = AclFile::load(&path).map_err(serde::de::Error::custom)?;
        Ok(AclFileConfig {
            path,
            file: Arc::new(file),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WrittenAuth {
    #[serde(default)]
    allow_anonymous: Option<bool>,
    #[serde(default)]
    users: BTreeMap<String, String>,
    #[serde(default)]
    password_file: Option<PasswordFileConfig>,
    #[serde(default)]
    acl_file: Option<AclFileConfig>,
}

impl TryFrom<WrittenAuth> for AuthConfig {
    type Error = &'static str;

    fn try_from(written: WrittenAuth) -> Result<Self, Self::Error> {
        let has_users = !written.users.is_empty() || written.password_file.is_some();
        Ok(AuthConfig {
            allow_anonymous: written.allow_anonymous.unwrap_or(!has_users),
            users: written.users,
            password_file: written.password_file,
            acl_file: written.acl_file,
        })
    }
}
