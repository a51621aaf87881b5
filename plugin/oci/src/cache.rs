//! The local store of pulled artifacts: blobs (manifests and layers) by digest, and the digest
//! each tag last pointed to, so that a registry that cannot be reached is no reason not to start.
//!
//! ```text
//! CACHE/blobs/sha256/<hex>                       a manifest or a layer, named by its digest
//! CACHE/tags/<registry>/<repository>/<tag>       the manifest digest the tag named when last pulled
//! ```
//!
//! A blob is written to a temporary file and renamed into place, so a reader never sees half of
//! one, and its digest is checked again whenever it is read.

use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A cache directory (created when first written).
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// Why a cached blob cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Reading or writing the cache failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A digest this cache cannot name a file by.
    #[error("`{0}` is not a sha256 digest (sha256:<64 hex digits>)")]
    Digest(String),
    /// The file's content no longer matches its name.
    #[error(
        "{path}: content does not match its digest {expected} (it is {actual}); it was removed"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Its name.
        expected: String,
        /// What its content hashes to.
        actual: String,
    },
}

/// `sha256:<hex>` of `bytes`.
///
/// ```
/// assert_eq!(
///     weir_oci::sha256_digest(b""),
///     "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/// );
/// ```
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

impl Cache {
    /// The cache at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Cache {
        Cache { root: root.into() }
    }

    /// Where it is.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file blob `digest` is (or would be) kept in.
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, CacheError> {
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| CacheError::Digest(digest.to_string()))?;
        Ok(self.root.join("blobs").join("sha256").join(hex))
    }

    /// Blob `digest`, if cached and intact. A blob whose content does not match its digest is
    /// removed and reported.
    pub fn read(&self, digest: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let path = self.blob_path(digest)?;
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CacheError::Io { path, source }),
        };
        let actual = sha256_digest(&bytes);
        if actual != digest {
            // Best effort: the next pull writes it again.
            let _ = std::fs::remove_file(&path);
            return Err(CacheError::Corrupt {
                path,
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(Some(bytes))
    }

    /// Keeps `bytes` as blob `digest` (which the caller has checked) and answers its file.
    pub fn write(&self, digest: &str, bytes: &[u8]) -> Result<PathBuf, CacheError> {
        let path = self.blob_path(digest)?;
        write_atomically(&path, bytes)?;
        Ok(path)
    }

    /// The manifest digest `tag` of `repository` on `registry` named when last pulled.
    pub fn tag(&self, registry: &str, repository: &str, tag: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.tag_path(registry, repository, tag)).ok()?;
        Some(text.trim().to_string()).filter(|digest| self.blob_path(digest).is_ok())
    }

    /// Records that `tag` names manifest `digest` now.
    pub fn set_tag(
        &self,
        registry: &str,
        repository: &str,
        tag: &str,
        digest: &str,
    ) -> Result<(), CacheError> {
        write_atomically(&self.tag_path(registry, repository, tag), digest.as_bytes())
    }

    fn tag_path(&self, registry: &str, repository: &str, tag: &str) -> PathBuf {
        // A repository is lower-case path components of [a-z0-9._-] and a tag [A-Za-z0-9_.-]:
        // neither can climb out of the cache (the reference parser enforces the grammar).
        self.root
            .join("tags")
            .join(registry)
            .join(repository)
            .join(tag)
    }
}

/// Writes `bytes` to a temporary file beside `path` and renames it into place.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CacheError> {
    let io = |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_blobs_by_digest_and_drops_corrupt_ones() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let digest = sha256_digest(b"module");
        assert!(cache.read(&digest).unwrap().is_none());
        let path = cache.write(&digest, b"module").unwrap();
        assert_eq!(cache.read(&digest).unwrap().unwrap(), b"module");
        std::fs::write(&path, b"tampered").unwrap();
        assert!(matches!(
            cache.read(&digest),
            Err(CacheError::Corrupt { .. })
        ));
        assert!(!path.exists(), "a corrupt blob is removed");
    }

    #[test]
    fn remembers_what_a_tag_named() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        assert_eq!(cache.tag("localhost:5000", "samples/window", "1.0.0"), None);
        let digest = sha256_digest(b"manifest");
        cache
            .set_tag("localhost:5000", "samples/window", "1.0.0", &digest)
            .unwrap();
        assert_eq!(
            cache.tag("localhost:5000", "samples/window", "1.0.0"),
            Some(digest)
        );
    }

    #[test]
    fn refuses_names_that_are_not_sha256_digests() {
        let cache = Cache::new("/nonexistent");
        for bad in ["sha256:../../etc", "md5:abc", "sha256:00"] {
            assert!(matches!(cache.blob_path(bad), Err(CacheError::Digest(_))));
        }
    }
}
