//! TLS for listeners: a rustls server configuration (ring provider) from PEM files, with
//! client certificates verified against a CA when asked, and read again on SIGHUP.
//!
//! rustls ignores an IP address sent as SNI, so clients connecting by address
//! (`mosquitto_pub -h 127.0.0.1`) are served like any other.

use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Why a certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("cannot read {file}: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file holds no usable PEM item of the kind expected.
    #[error("{file}: {message}")]
    Pem {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The client CA cannot be used to verify client certificates.
    #[error("CA {ca}: {message}")]
    Ca {
        /// The CA file.
        ca: PathBuf,
        /// What rustls said.
        message: String,
    },
    /// rustls refused the certificate and key.
    #[error("certificate {cert} with key {key}: {message}")]
    Config {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        message: String,
    },
}

/// What a TLS listener serves and asks of clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// PEM CA certificates that sign client certificates.
    pub ca: Option<PathBuf>,
    /// Refuse a client without a valid certificate (else one is verified when presented).
    pub require_certificate: bool,
    /// The client certificate's common name is the client's username (for the ACL), and no
    /// password is asked.
    pub use_identity_as_username: bool,
}

/// A listener's TLS configuration: the version in use, replaced by [`TlsSource::reload`] (on
/// SIGHUP) only when the files still make a valid one.
#[derive(Debug)]
pub struct TlsSource {
    settings: TlsSettings,
    current: RwLock<Arc<rustls::ServerConfig>>,
}

impl TlsSource {
    /// Builds the configuration `settings` describe.
    pub fn new(settings: TlsSettings) -> Result<TlsSource, TlsError> {
        let config = server_config(&settings)?;
        Ok(TlsSource {
            settings,
            current: RwLock::new(config),
        })
    }

    /// What it was built from.
    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// The configuration for the next handshake.
    pub fn current(&self) -> Arc<rustls::ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reads the files again; on an error the version in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = server_config(&self.settings)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = config;
        Ok(())
    }
}

pub(crate) fn read(file: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(file).map_err(|source| TlsError::Read {
        file: file.to_path_buf(),
        source,
    })
}

pub(crate) fn pem_error(file: &Path, message: String) -> TlsError {
    TlsError::Pem {
        file: file.to_path_buf(),
        message,
    }
}

pub(crate) fn certificates(file: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(file)?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(file, e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_error(file, "no CERTIFICATE in the file".into()));
    }
    Ok(certs)
}

/// A TLS server configuration as `settings` describe it.
pub fn server_config(settings: &TlsSettings) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let (cert, key) = (&settings.cert, &settings.key);
    let chain = certificates(cert)?;
    let key_pem = read(key)?;
    let private_key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| pem_error(key, e.to_string()))?
        .ok_or_else(|| pem_error(key, "no PRIVATE KEY in the file".into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config {
            cert: cert.clone(),
            key: key.clone(),
            message: e.to_string(),
        })?;
    let builder = match &settings.ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for certificate in certificates(ca)? {
                roots.add(certificate).map_err(|e| TlsError::Ca {
                    ca: ca.clone(),
                    message: e.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if settings.require_certificate {
                verifier.build()
            } else {
                verifier.allow_unauthenticated().build()
            };
            let verifier = verifier.map_err(|e| TlsError::Ca {
                ca: ca.clone(),
                message: e.to_string(),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(chain, private_key)
        .map_err(|e| TlsError::Config {
            cert: cert.clone(),
            key: key.clone(),
            message: e.to_string(),
        })?;
    Ok(Arc::new(config))
}

/// The common name in the subject of a (verified) client certificate.
pub fn common_name(certificate: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate.as_ref()).ok()?;
    let name = parsed.subject().iter_common_name().next()?;
    name.as_str().ok().map(str::to_string)
}
