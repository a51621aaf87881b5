//! Modules and graph definitions from OCI registries: pulled on first use, verified against
//! their digests, cached by digest, and served from the cache when the registry cannot be
//! reached.
//!
//! A reference names a registry by Docker's rule ([`names_registry`]); others resolve in local
//! module directories. [`Registries`] holds the per-registry settings (plain HTTP,
//! credentials) and the [`Cache`], and answers [`Registries::pull`] and [`Registries::push`].
//! Both block the calling thread (they run the HTTP client on a thread of their own, so they
//! may be called from inside an async runtime too).
//!
//! ```no_run
//! use weir_oci::{ArtifactKind, Registries, RegistrySettings};
//! let mut registries = Registries::new("/var/cache/weir/oci");
//! registries.configure("localhost:5000", RegistrySettings { insecure: true, ..Default::default() });
//! let pulled = registries
//!     .pull("localhost:5000/samples/temperature:1.0.0", ArtifactKind::Module)
//!     .unwrap();
//! println!("{} ({})", pulled.path.display(), pulled.digest);
//! ```

mod artifact;
mod cache;
#[cfg(feature = "client")]
mod client;
#[cfg(not(feature = "client"))]
mod disabled;
mod reference;

pub use artifact::{ArtifactKind, WASM_MEDIA_TYPE, YAML_MEDIA_TYPE};
pub use cache::{sha256_digest, Cache, CacheError};
#[cfg(feature = "client")]
pub use reference::parse as parse_reference;
pub use reference::{check as check_reference, names_registry, repository_name, strip_scheme};

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How Weir talks to one registry.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RegistrySettings {
    /// Plain HTTP instead of HTTPS (a local registry).
    pub insecure: bool,
    /// PEM certificates of a CA its HTTPS certificate is trusted from, besides the system's.
    pub ca_file: Option<PathBuf>,
    /// Who Weir is to it.
    pub credentials: Credentials,
}

/// Credentials for a registry.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    /// None.
    #[default]
    Anonymous,
    /// HTTP basic authentication (also what a token service is asked with).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// A bearer token, sent as it is.
    Token(String),
}

impl fmt::Debug for RegistrySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets stay out of logs and debug output.
        let credentials = match &self.credentials {
            Credentials::Anonymous => "anonymous".to_string(),
            Credentials::Basic { username, .. } => format!("user `{username}`"),
            Credentials::Token(_) => "token".to_string(),
        };
        f.debug_struct("RegistrySettings")
            .field("insecure", &self.insecure)
            .field("ca_file", &self.ca_file)
            .field("credentials", &credentials)
            .finish()
    }
}

/// Why an artifact could not be pulled or pushed. Each names the reference.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The reference is malformed or names no registry.
    #[error("`{reference}` is not a registry reference: {reason}")]
    Reference {
        /// As written.
        reference: String,
        /// What is wrong.
        reason: String,
    },
    /// The registry answered, and not with the artifact (unknown tag, unauthorized, ...).
    #[error("{reference}: the registry {registry} answered: {answer}")]
    Refused {
        /// As written.
        reference: String,
        /// `host[:port]`.
        registry: String,
        /// Its answer.
        answer: String,
    },
    /// The registry could not be reached and the cache has no copy.
    #[error("{reference}: cannot reach the registry {registry} ({reason}) and no copy is cached")]
    Unreachable {
        /// As written.
        reference: String,
        /// `host[:port]`.
        registry: String,
        /// What the connection said.
        reason: String,
    },
    /// What arrived does not hash to the digest it was asked by.
    #[error("{reference}: digest mismatch: {detail}")]
    Digest {
        /// As written.
        reference: String,
        /// Expected and actual digests.
        detail: String,
    },
    /// The artifact holds no module (or graph definition) Weir can take.
    #[error("{reference}: {reason}")]
    Content {
        /// As written.
        reference: String,
        /// What it holds instead.
        reason: String,
    },
    /// The client could not be set up for the registry (its `ca_file`).
    #[error("{reference}: {reason}")]
    Client {
        /// As written.
        reference: String,
        /// Why.
        reason: String,
    },
    /// This binary was built without the `oci` feature.
    #[error("{reference}: registries need the `oci` feature, which this weir was built without (build it with `cargo build --release -p weir --features oci`)")]
    Disabled {
        /// As written.
        reference: String,
    },
    /// The cache could not be read or written.
    #[error("{reference}: cache: {source}")]
    Cache {
        /// As written.
        reference: String,
        /// What went wrong.
        source: CacheError,
    },
}

/// Where a pulled artifact was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Downloaded now.
    Registry,
    /// The registry named a digest the cache had, or the reference was a cached digest.
    Cache,
    /// The registry could not be reached; the digest the tag last named was used.
    CacheOffline,
}

/// A pulled module or graph definition.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The cached file holding it.
    pub path: PathBuf,
    /// The manifest's digest: what the reference named when pulled.
    pub digest: String,
    /// Where it came from.
    pub origin: Origin,
}

/// The registries Weir pulls from and pushes to, and its cache of what it pulled.
#[derive(Debug, Clone)]
pub struct Registries {
    cache: Cache,
    settings: BTreeMap<String, RegistrySettings>,
    plain_http: bool,
    /// Registries found out of reach, and why: not asked again by this value (and its clones),
    /// so that a gateway starting offline waits for each registry once, not once per
    /// reference. A reload makes a new value, which asks again.
    unreachable: Arc<Mutex<BTreeMap<String, String>>>,
}

impl Registries {
    /// No registry configured (anonymous HTTPS to any), caching in `cache_dir`.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Registries {
        Registries {
            cache: Cache::new(cache_dir),
            settings: BTreeMap::new(),
            plain_http: false,
            unreachable: Arc::default(),
        }
    }

    /// The default cache directory: `$XDG_CACHE_HOME/weir/oci`, else `~/.cache/weir/oci`.
    pub fn default_cache_dir() -> PathBuf {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        base.join("weir").join("oci")
    }

    /// Sets how to talk to `registry` (`host[:port]` as references write it).
    pub fn configure(&mut self, registry: &str, settings: RegistrySettings) {
        self.settings.insert(registry.to_string(), settings);
    }

    /// Talks plain HTTP to every registry (`--plain-http`).
    pub fn set_plain_http(&mut self, plain_http: bool) {
        self.plain_http = plain_http;
    }

    /// The cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    fn settings(&self, registry: &str) -> RegistrySettings {
        self.settings.get(registry).cloned().unwrap_or_default()
    }

    /// Why `registry` was out of reach, if it was.
    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    fn known_unreachable(&self, registry: &str) -> Option<String> {
        let unreachable = self.unreachable.lock().unwrap_or_else(|e| e.into_inner());
        unreachable.get(registry).cloned()
    }

    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    fn mark_unreachable(&self, registry: &str, reason: &str) {
        let mut unreachable = self.unreachable.lock().unwrap_or_else(|e| e.into_inner());
        unreachable.insert(registry.to_string(), reason.to_string());
    }

    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    fn insecure(&self) -> Vec<String> {
        self.settings
            .iter()
            .filter(|(_, settings)| settings.insecure)
            .map(|(registry, _)| registry.clone())
            .collect()
    }
}
