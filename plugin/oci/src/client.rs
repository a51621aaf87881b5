//! Pulling and pushing over the OCI distribution API (oci-client), and answering from the
//! cache when the registry is out of reach.

use super::reference::{parse, strip_scheme};
use super::{ArtifactKind, CacheError, Credentials, OciError, Origin, Pulled, Registries};
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{DigestError, OciDistributionError, OciEnvelope};
use oci_client::manifest::{
    OciImageManifest, IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE,
    OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE,
};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use weir_model::error::chain;

/// The manifests asked for: an index is refused with a clear error rather than a 404.
const MANIFEST_TYPES: &[&str] = &[
    OCI_IMAGE_MEDIA_TYPE,
    IMAGE_MANIFEST_MEDIA_TYPE,
    OCI_IMAGE_INDEX_MEDIA_TYPE,
    IMAGE_MANIFEST_LIST_MEDIA_TYPE,
];

/// How long a registry may take to accept a connection before it counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a registry may stay silent in the middle of an answer.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest layer pulled (a Python module is about 18 MB).
const MAX_LAYER_BYTES: u64 = 512 << 20;

/// A failed request: the registry was out of reach, or it (or what it sent) said no.
enum Failure {
    Unreachable(String),
    Error(OciError),
}

impl From<OciError> for Failure {
    fn from(error: OciError) -> Failure {
        Failure::Error(error)
    }
}

/// One pull or push: the reference as written and parsed.
struct Request<'a> {
    registries: &'a Registries,
    written: &'a str,
    reference: Reference,
}

impl Registries {
    /// Pulls `reference` (a registry reference, `oci://` allowed) as a `kind`, or answers it
    /// from the cache: a digest reference the cache holds is not asked for again; a tag is
    /// asked for (it may have moved), and if the registry cannot be reached, the digest it
    /// named when last pulled is used, with a warning. A registry found out of reach is not
    /// asked again by this value.
    pub fn pull(&self, reference: &str, kind: ArtifactKind) -> Result<Pulled, OciError> {
        let request = Request::new(self, reference)?;
        if let Some(digest) = request.reference.digest() {
            if let Some(path) = request.cached(digest, kind)? {
                return Ok(Pulled {
                    path,
                    digest: digest.to_string(),
                    origin: Origin::Cache,
                });
            }
        }
        if let Some(reason) = self.known_unreachable(request.registry()) {
            return request.offline(kind, reason);
        }
        match blocking(request.download(kind)) {
            Ok(pulled) => Ok(pulled),
            Err(Failure::Error(error)) => Err(error),
            Err(Failure::Unreachable(reason)) => {
                self.mark_unreachable(request.registry(), &reason);
                request.offline(kind, reason)
            }
        }
    }

    /// Pushes `bytes` as a `kind` to `reference` (an ordinary image manifest with one layer,
    /// titled `title`), and answers the manifest's digest.
    pub fn push(
        &self,
        bytes: Vec<u8>,
        title: &str,
        reference: &str,
        kind: ArtifactKind,
    ) -> Result<String, OciError> {
        let request = Request::new(self, reference)?;
        kind.check_content(&bytes)
            .map_err(|reason| request.content(reason))?;
        let (layer, config, manifest) = kind.image(bytes, title);
        let client = request.client()?;
        let auth = request.auth();
        let pushed = blocking(async {
            let classify = |e| request.classify(e);
            client
                .push(&request.reference, &[layer], config, &auth, Some(manifest))
                .await
                .map_err(classify)?;
            // What the registry stored, as it names it.
            client
                .fetch_manifest_digest(&request.reference, &auth)
                .await
                .map_err(classify)
        });
        match pushed {
            Ok(digest) => Ok(digest),
            Err(Failure::Error(error)) => Err(error),
            Err(Failure::Unreachable(reason)) => Err(request.unreachable(reason)),
        }
    }
}

impl<'a> Request<'a> {
    fn new(registries: &'a Registries, written: &'a str) -> Result<Request<'a>, OciError> {
        let written = strip_scheme(written);
        Ok(Request {
            registries,
            written,
            reference: parse(written)?,
        })
    }

    fn registry(&self) -> &str {
        self.reference.registry()
    }

    /// A client for this request's registry: plain HTTP or HTTPS, and its CA if it has one.
    fn client(&self) -> Result<Client, OciError> {
        // reqwest's rustls without a bundled provider uses the process default: ring, as the
        // broker's own TLS. Installing it twice is harmless (the first one stays).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let protocol = if self.registries.plain_http {
            ClientProtocol::Http
        } else {
            ClientProtocol::HttpsExcept(self.registries.insecure())
        };
        let unusable = |reason: String| OciError::Client {
            reference: self.written.to_string(),
            reason,
        };
        let mut roots = Vec::new();
        if let Some(file) = &self.registries.settings(self.registry()).ca_file {
            let data = std::fs::read(file)
                .map_err(|e| unusable(format!("cannot read ca_file {}: {e}", file.display())))?;
            roots.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data,
            });
        }
        Client::try_from(ClientConfig {
            protocol,
            connect_timeout: Some(CONNECT_TIMEOUT),
            read_timeout: Some(READ_TIMEOUT),
            extra_root_certificates: roots,
            ..ClientConfig::default()
        })
        .map_err(|e| unusable(chain(&e)))
    }

    fn auth(&self) -> RegistryAuth {
        match self.registries.settings(self.registry()).credentials {
            Credentials::Anonymous => RegistryAuth::Anonymous,
            Credentials::Basic { username, password } => RegistryAuth::Basic(username, password),
            Credentials::Token(token) => RegistryAuth::Bearer(token),
        }
    }

    /// Asks the registry for the manifest, then for the layer unless the cache has it.
    async fn download(&self, kind: ArtifactKind) -> Result<Pulled, Failure> {
        let client = self.client()?;
        let (bytes, digest) = client
            .pull_manifest_raw(&self.reference, &self.auth(), MANIFEST_TYPES)
            .await
            .map_err(|e| self.classify(e))?;
        let manifest = self.manifest(&bytes)?;
        let layer = kind
            .select_layer(&manifest)
            .map_err(|reason| self.content(reason))?;
        let cache = self.registries.cache();
        let (path, origin) = match cache.read(&layer.digest).map_err(|e| self.cache(e))? {
            Some(content) => {
                kind.check_content(&content).map_err(|r| self.content(r))?;
                (
                    cache.blob_path(&layer.digest).map_err(|e| self.cache(e))?,
                    Origin::Cache,
                )
            }
            None => {
                if u64::try_from(layer.size).map_or(true, |size| size > MAX_LAYER_BYTES) {
                    return Err(self
                        .content(format!(
                            "its layer declares {} bytes; at most {MAX_LAYER_BYTES} are accepted",
                            layer.size
                        ))
                        .into());
                }
                let mut content = Capped::default();
                client
                    .pull_blob(&self.reference, &layer, &mut content)
                    .await
                    .map_err(|e| self.classify(e))?;
                let content = content.bytes;
                kind.check_content(&content).map_err(|r| self.content(r))?;
                let path = cache
                    .write(&layer.digest, &content)
                    .map_err(|e| self.cache(e))?;
                (path, Origin::Registry)
            }
        };
        cache.write(&digest, &bytes).map_err(|e| self.cache(e))?;
        if self.reference.digest().is_none() {
            let tag = self.reference.tag().unwrap_or("latest");
            cache
                .set_tag(self.registry(), self.reference.repository(), tag, &digest)
                .map_err(|e| self.cache(e))?;
        }
        Ok(Pulled {
            path,
            digest,
            origin,
        })
    }

    /// The digest the reference named when last pulled, served from the cache.
    fn offline(&self, kind: ArtifactKind, reason: String) -> Result<Pulled, OciError> {
        let cache = self.registries.cache();
        let digest = match self.reference.digest() {
            Some(digest) => Some(digest.to_string()),
            None => cache.tag(
                self.registry(),
                self.reference.repository(),
                self.reference.tag().unwrap_or("latest"),
            ),
        };
        let Some(digest) = digest else {
            return Err(self.unreachable(reason));
        };
        match self.cached(&digest, kind)? {
            Some(path) => {
                tracing::warn!(
                    "{}: cannot reach the registry {} ({reason}); using the cached {digest}",
                    self.written,
                    self.registry()
                );
                Ok(Pulled {
                    path,
                    digest,
                    origin: Origin::CacheOffline,
                })
            }
            None => Err(self.unreachable(reason)),
        }
    }

    /// The layer of cached manifest `digest`, if both are cached and intact.
    fn cached(&self, digest: &str, kind: ArtifactKind) -> Result<Option<PathBuf>, OciError> {
        let cache = self.registries.cache();
        let Some(bytes) = cache.read(digest).map_err(|e| self.cache(e))? else {
            return Ok(None);
        };
        let manifest = self.manifest(&bytes).map_err(|failure| match failure {
            Failure::Error(error) => error,
            Failure::Unreachable(reason) => self.unreachable(reason),
        })?;
        let layer = kind
            .select_layer(&manifest)
            .map_err(|reason| self.content(reason))?;
        match cache.read(&layer.digest).map_err(|e| self.cache(e))? {
            Some(content) => {
                kind.check_content(&content).map_err(|r| self.content(r))?;
                Ok(Some(
                    cache.blob_path(&layer.digest).map_err(|e| self.cache(e))?,
                ))
            }
            None => Ok(None),
        }
    }

    fn manifest(&self, bytes: &[u8]) -> Result<OciImageManifest, Failure> {
        #[derive(serde::Deserialize)]
        struct Kind {
            #[serde(rename = "mediaType")]
            media_type: Option<String>,
        }
        let kind: Option<Kind> = serde_json::from_slice(bytes).ok();
        if let Some(media) = kind.and_then(|k| k.media_type) {
            if media == OCI_IMAGE_INDEX_MEDIA_TYPE || media == IMAGE_MANIFEST_LIST_MEDIA_TYPE {
                return Err(self
                    .content(format!("an image index ({media}), not a single artifact"))
                    .into());
            }
        }
        serde_json::from_slice(bytes).map_err(|e| {
            self.content(format!("its manifest cannot be read: {e}"))
                .into()
        })
    }

    fn classify(&self, error: OciDistributionError) -> Failure {
        let refused = |answer: String| {
            Failure::Error(OciError::Refused {
                reference: self.written.to_string(),
                registry: self.registry().to_string(),
                answer,
            })
        };
        match error {
            OciDistributionError::RequestError(e) if is_tls_failure(&e) => refused(format!(
                "TLS failed: {} (a registry without TLS needs `insecure: true` in modules.registries or --plain-http; one with a private CA, its `ca_file`)",
                chain(&e)
            )),
            OciDistributionError::RequestError(e) => Failure::Unreachable(chain(&e)),
            OciDistributionError::DigestError(DigestError::VerificationError {
                expected,
                actual,
            }) => Failure::Error(OciError::Digest {
                reference: self.written.to_string(),
                detail: format!("expected {expected}, what the registry sent hashes to {actual}"),
            }),
            OciDistributionError::RegistryError { envelope, .. } => refused(answer(&envelope)),
            OciDistributionError::UnauthorizedError { .. } => refused(
                "401 unauthorized: check the credentials in modules.registries".to_string(),
            ),
            OciDistributionError::AuthenticationFailure(reason) => {
                refused(format!("authentication failed: {reason}"))
            }
            OciDistributionError::ServerError { code, message, .. } => {
                let said = match serde_json::from_str::<OciEnvelope>(&message) {
                    Ok(envelope) => answer(&envelope),
                    Err(_) => message.trim().to_string(),
                };
                let hint = match code {
                    401 => ": check the credentials in modules.registries",
                    _ => "",
                };
                refused(format!("HTTP {code} {said}{hint}"))
            }
            other => refused(other.to_string()),
        }
    }

    fn content(&self, reason: String) -> OciError {
        OciError::Content {
            reference: self.written.to_string(),
            reason,
        }
    }

    fn cache(&self, source: CacheError) -> OciError {
        OciError::Cache {
            reference: self.written.to_string(),
            source,
        }
    }

    fn unreachable(&self, reason: String) -> OciError {
        OciError::Unreachable {
            reference: self.written.to_string(),
            registry: self.registry().to_string(),
            reason,
        }
    }
}

/// The registry's error codes and messages: `MANIFEST_UNKNOWN (manifest unknown)`.
fn answer(envelope: &OciEnvelope) -> String {
    let errors: Vec<String> = envelope
        .errors
        .iter()
        .map(|e| {
            let code = serde_json::to_value(&e.code)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| format!("{:?}", e.code));
            format!("{code} ({})", e.message)
        })
        .collect();
    errors.join(", ")
}

/// Whether `error` is a TLS failure (the registry answered, but not in TLS, or with a
/// certificate that is not trusted) rather than a registry out of reach.
fn is_tls_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if holds_rustls_error(error) {
            return true;
        }
        cause = error.source();
    }
    false
}

/// Whether `error` is a rustls error, or an I/O error wrapping one (perhaps in I/O errors).
fn holds_rustls_error(error: &(dyn std::error::Error + 'static)) -> bool {
    if error.is::<rustls::Error>() {
        return true;
    }
    match error
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        Some(inner) => holds_rustls_error(inner),
        None => false,
    }
}

/// A layer's bytes as they arrive, refusing more than [`MAX_LAYER_BYTES`] whatever the
/// manifest declared.
#[derive(Default)]
struct Capped {
    bytes: Vec<u8>,
}

impl tokio::io::AsyncWrite for Capped {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let total = u64::try_from(self.bytes.len().saturating_add(buf.len())).unwrap_or(u64::MAX);
        if total > MAX_LAYER_BYTES {
            return Poll::Ready(Err(std::io::Error::other(format!(
                "the layer is larger than {MAX_LAYER_BYTES} bytes"
            ))));
        }
        self.bytes.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Runs `future` to completion on a thread of its own with its own runtime, so that the
/// caller may be inside an async runtime or not.
fn blocking<F, T>(future: F) -> Result<T, Failure>
where
    F: Future<Output = Result<T, Failure>> + Send,
    T: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(future),
                    Err(e) => Err(Failure::Unreachable(format!(
                        "cannot start the registry client: {e}"
                    ))),
                }
            })
            .join()
    })
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}
