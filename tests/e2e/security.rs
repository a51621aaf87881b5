//! TLS listeners and username/password authentication.

use super::clients::Client4;
use super::harness::{free_port, mosquitto_pub, write_file, MosquittoSub, Weir};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
use rumqttc::{QoS, TlsConfiguration, Transport};
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;

/// A CA made for the test and a server certificate it signed for localhost and 127.0.0.1.
pub(super) struct TestPki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

impl TestPki {
    pub(super) fn new() -> TestPki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Weir test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let mut server_params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        server_params
            .subject_alt_names
            .push(SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
        server_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let server = server_params.signed_by(&server_key, &ca, &ca_key).unwrap();
        TestPki {
            ca_pem: ca.pem(),
            cert_pem: server.pem(),
            key_pem: server_key.serialize_pem(),
        }
    }

    pub(super) fn write(&self, dir: &Path) {
        write_file(dir, "ca.pem", &self.ca_pem);
        write_file(dir, "server.pem", &self.cert_pem);
        write_file(dir, "server.key", &self.key_pem);
    }
}

fn start_tls_broker() -> (Weir, TestPki) {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    pki.write(dir.path());
    let (v4, v5) = (free_port(), free_port());
    // Relative paths resolve against the configuration file's directory.
    let config = write_file(
        dir.path(),
        "weir.yaml",
        &format!(
            "broker:\n  listeners:\n    - name: secure\n      protocol: '3.1.1'\n      address: 127.0.0.1:{v4}\n      tls:\n        cert: server.pem\n        key: server.key\n    - name: secure5\n      protocol: '5'\n      address: 127.0.0.1:{v5}\n      tls: {{cert: server.pem, key: server.key}}\n"
        ),
    );
    (Weir::spawn(dir, &config, &[], v4, v5), pki)
}

#[test]
fn tls_listener_serves_mosquitto_clients_with_the_test_ca() {
    let (weir, _pki) = start_tls_broker();
    let ca = weir.dir.path().join("ca.pem");
    let ca = ca.to_str().unwrap();
    for (port, version) in [(weir.v4, "mqttv311"), (weir.v5, "mqttv5")] {
        let port = port.to_string();
        let mut sub = MosquittoSub::start(&[
            "-h",
            "localhost",
            "-p",
            &port,
            "-V",
            version,
            "--cafile",
            ca,
            "-t",
            "tls/#",
            "-v",
        ]);
        // By IP address: OpenSSL clients then send the address as SNI.
        let out = mosquitto_pub(&[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-V",
            version,
            "--cafile",
            ca,
            "-q",
            "1",
            "-t",
            "tls/x",
            "-m",
            "secret",
        ]);
        assert!(
            out.status.success(),
            "mosquitto_pub over TLS: {out:?}\n{}",
            weir.log()
        );
        assert_eq!(sub.next_message(), "tls/x secret");
    }
}

#[test]
fn tls_listener_refuses_a_client_that_does_not_trust_its_certificate() {
    let (weir, _pki) = start_tls_broker();
    let other_ca = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let wrong_ca = write_file(dir.path(), "other-ca.pem", &other_ca.ca_pem);
    let out = mosquitto_pub(&[
        "-h",
        "localhost",
        "-p",
        &weir.v4.to_string(),
        "--cafile",
        wrong_ca.to_str().unwrap(),
        "-t",
        "tls/x",
        "-m",
        "never",
    ]);
    assert!(
        !out.status.success(),
        "a certificate from an unknown CA was accepted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listener_serves_rumqttc() {
    let (weir, pki) = start_tls_broker();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile_certs(&pki.ca_pem) {
        roots.add(cert).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let options = |id: &str| {
        let mut options = rumqttc::MqttOptions::new(id, "localhost", weir.v4);
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(tls.clone()),
        )));
        options
    };
    let mut sub = Client4::connect(options("tls-sub")).await.unwrap();
    sub.subscribe("tls/#", QoS::AtLeastOnce).await;
    let publisher = Client4::connect(options("tls-pub")).await.unwrap();
    publisher
        .client
        .publish("tls/r", QoS::AtLeastOnce, false, "over rustls")
        .await
        .unwrap();
    assert_eq!(sub.next().await.payload.as_ref(), b"over rustls");
}

fn rustls_pemfile_certs(pem: &str) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap()
}

fn start_password_broker() -> Weir {
    let dir = tempfile::tempdir().unwrap();
    let (v4, v5) = (free_port(), free_port());
    let config = write_file(
        dir.path(),
        "weir.yaml",
        &format!(
            "broker:\n  auth:\n    allow_anonymous: false\n    users:\n      alice: ${{ALICE_PASSWORD}}\n  listeners:\n    - {{protocol: '3.1.1', address: '127.0.0.1:{v4}'}}\n    - {{protocol: '5', address: '127.0.0.1:{v5}'}}\n"
        ),
    );
    Weir::spawn(
        dir,
        &config,
        &[("ALICE_PASSWORD", "wonderland".to_string())],
        v4,
        v5,
    )
}

#[test]
fn password_authentication_with_mosquitto_clients() {
    let weir = start_password_broker();
    for (port, version) in [(weir.v4, "mqttv311"), (weir.v5, "mqttv5")] {
        let port = port.to_string();
        let publish = |credentials: &[&str]| {
            let mut args = vec![
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-V",
                version,
                "-t",
                "auth/x",
                "-m",
                "m",
            ];
            args.extend_from_slice(credentials);
            mosquitto_pub(&args).status.success()
        };
        assert!(
            publish(&["-u", "alice", "-P", "wonderland"]),
            "right password refused"
        );
        assert!(
            !publish(&["-u", "alice", "-P", "looking-glass"]),
            "wrong password accepted"
        );
        assert!(
            !publish(&["-u", "bob", "-P", "wonderland"]),
            "unknown user accepted"
        );
        assert!(!publish(&[]), "anonymous client accepted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_refused_for_rumqttc() {
    let weir = start_password_broker();
    let mut options = Client4::options("intruder", weir.v4);
    options.set_credentials("alice", "guess");
    assert!(
        Client4::connect(options).await.is_err(),
        "wrong password accepted"
    );

    let mut options = Client4::options("alice", weir.v4);
    options.set_credentials("alice", "wonderland");
    let mut alice = Client4::connect(options)
        .await
        .expect("right password refused");
    alice.subscribe("auth/#", QoS::AtMostOnce).await;
}
