//! TLS to a bridge's remote: a rustls client configuration (the ring provider the listeners
//! use) from PEM files, as mosquitto's `bridge_cafile`, `bridge_capath`, `bridge_certfile`,
//! `bridge_keyfile`, `bridge_insecure`, `bridge_alpn` and `bridge_tls_version` describe it.
//! With neither `ca` nor `capath`, the system's CA bundle is trusted.

use crate::bridge::config::{ClientTls, TlsVersion};
use crate::tls::{certificates, pem_error, read, TlsError};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::Path;
use std::sync::Arc;

/// Where Debian (and most Linux systems) keep the CA bundle.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The client configuration `tls` describes (read now: a file that does not load is an error).
pub fn client_config(tls: &ClientTls) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let roots = Arc::new(roots(tls)?);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match tls.version {
        Some(TlsVersion::V1_2) => &[&rustls::version::TLS12],
        Some(TlsVersion::V1_3) => &[&rustls::version::TLS13],
        None => rustls::DEFAULT_VERSIONS,
    };
    let config_error = |message: String| TlsError::Pem {
        file: tls.ca.clone().unwrap_or_default(),
        message,
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| config_error(e.to_string()))?
        .with_root_certificates(roots.clone());
    let mut config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let chain = certificates(cert)?;
            let key_pem = read(key)?;
            let private_key = rustls_pemfile::private_key(&mut key_pem.as_slice())
                .map_err(|e| pem_error(key, e.to_string()))?
                .ok_or_else(|| pem_error(key, "no PRIVATE KEY in the file".into()))?;
            builder
                .with_client_auth_cert(chain, private_key)
                .map_err(|e| TlsError::Config {
                    cert: cert.clone(),
                    key: key.clone(),
                    message: e.to_string(),
                })?
        }
        _ => builder.with_no_client_auth(),
    };
    if tls.insecure {
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| config_error(e.to_string()))?;
        config
            .dangerous()
            .set_certificate_verifier(Arc::new(AnyName(inner)));
    }
    config.alpn_protocols = tls.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Ok(Arc::new(config))
}

/// The CA certificates to trust.
fn roots(tls: &ClientTls) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    let add = |file: &Path, store: &mut RootCertStore| -> Result<(), TlsError> {
        for certificate in certificates(file)? {
            store
                .add(certificate)
                .map_err(|e| pem_error(file, e.to_string()))?;
        }
        Ok(())
    };
    if let Some(ca) = &tls.ca {
        add(ca, &mut store)?;
    }
    if let Some(dir) = &tls.capath {
        let entries = std::fs::read_dir(dir).map_err(|source| TlsError::Read {
            file: dir.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let pem = path.extension().is_some_and(|e| e == "pem" || e == "crt");
            if pem && path.is_file() {
                // A directory of CAs may hold files that are not certificates: skip them.
                let _ = add(&path, &mut store);
            }
        }
        if store.is_empty() {
            return Err(pem_error(
                dir,
                "no CA certificate (*.pem, *.crt) in the directory".into(),
            ));
        }
    }
    if tls.ca.is_none() && tls.capath.is_none() {
        add(Path::new(SYSTEM_BUNDLE), &mut store)?;
    }
    Ok(store)
}

/// Verifies the remote's chain but not that its name matches the address
/// (`bridge_insecure`).
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
