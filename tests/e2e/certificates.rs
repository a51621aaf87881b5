//! TLS as gateways run it: client certificates verified against a CA (valid, missing, from
//! another CA), the certificate's name as the username for the ACL, TLS 1.2 and 1.3 by IP
//! address with mosquitto's clients, and certificates replaced on SIGHUP.

use super::harness::{free_port, mosquitto_pub, wait_for_reloads, write_file, MosquittoSub, Weir};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, SanType,
};
use std::net::Ipv4Addr;
use std::path::Path;

/// A CA made for the test.
pub struct Ca {
    cert: Certificate,
    key: KeyPair,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        Ca {
            cert: params.self_signed(&key).unwrap(),
            key,
        }
    }

    /// Writes `NAME.pem` (the CA certificate) into `dir`.
    pub fn write(&self, dir: &Path, name: &str) {
        write_file(dir, &format!("{name}.pem"), &self.cert.pem());
    }

    /// Signs a certificate for `cn` (a server one for localhost and 127.0.0.1, or a client
    /// one) and writes `FILE.pem` and `FILE.key` into `dir`.
    pub fn issue(&self, dir: &Path, file: &str, cn: &str, server: bool) {
        let key = KeyPair::generate().unwrap();
        let names = if server {
            vec!["localhost".to_string()]
        } else {
            Vec::new()
        };
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        if server {
            params
                .subject_alt_names
                .push(SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
        } else {
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        write_file(dir, &format!("{file}.pem"), &cert.pem());
        write_file(dir, &format!("{file}.key"), &key.serialize_pem());
    }
}

/// Weir with a plain listener (`v4`) and a TLS one (`v5`) configured with `tls` (the lines
/// under `tls:`, indented eight spaces) and `auth` (the TLS listener's own, indented six).
fn start(dir: tempfile::TempDir, tls: &str, auth: &str) -> (Weir, u16) {
    let (plain, secure, metrics) = (free_port(), free_port(), free_port());
    let config = write_file(
        dir.path(),
        "weir.yaml",
        &format!(
            "metrics: {{listen: '127.0.0.1:{metrics}'}}\nbroker:\n  listeners:\n    - {{protocol: mqtt, address: '127.0.0.1:{plain}'}}\n    - protocol: mqtt\n      address: 127.0.0.1:{secure}\n{auth}      tls:\n        cert: server.pem\n        key: server.key\n{tls}"
        ),
    );
    (Weir::spawn(dir, &config, &[], plain, secure), metrics)
}

/// Whether mosquitto_pub, trusting `ca` and presenting `client` (FILE.pem/FILE.key) if any,
/// publishes to `port` by IP address.
fn publishes(dir: &Path, port: u16, ca: &str, client: Option<&str>, extra: &[&str]) -> bool {
    let cafile = dir.join(format!("{ca}.pem")).display().to_string();
    let port = port.to_string();
    let mut args = vec![
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "--cafile",
        &cafile,
        "-t",
        "tls/x",
        "-m",
        "m",
    ];
    let (cert, key);
    if let Some(client) = client {
        cert = dir.join(format!("{client}.pem")).display().to_string();
        key = dir.join(format!("{client}.key")).display().to_string();
        args.extend(["--cert", &cert, "--key", &key]);
    }
    args.extend_from_slice(extra);
    mosquitto_pub(&args).status.success()
}

#[test]
fn required_client_certificates_are_verified_against_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, other) = (Ca::new("Weir test CA"), Ca::new("Another CA"));
    ca.write(dir.path(), "ca");
    ca.issue(dir.path(), "server", "localhost", true);
    ca.issue(dir.path(), "device", "device-1", false);
    other.issue(dir.path(), "stranger", "device-1", false);
    let path = dir.path().to_path_buf();
    let (weir, _) = start(
        dir,
        "        ca: ca.pem\n        require_certificate: true\n",
        "",
    );
    for version in ["tlsv1.2", "tlsv1.3"] {
        assert!(
            publishes(
                &path,
                weir.v5,
                "ca",
                Some("device"),
                &["--tls-version", version]
            ),
            "a valid certificate over {version} was refused"
        );
    }
    assert!(
        !publishes(&path, weir.v5, "ca", None, &[]),
        "no certificate accepted"
    );
    assert!(
        !publishes(&path, weir.v5, "ca", Some("stranger"), &[]),
        "a certificate from another CA accepted"
    );
}

#[test]
fn the_certificates_name_is_the_username_for_the_acl() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Weir test CA");
    ca.write(dir.path(), "ca");
    ca.issue(dir.path(), "server", "localhost", true);
    ca.issue(dir.path(), "alice", "alice", false);
    ca.issue(dir.path(), "bob", "bob", false);
    write_file(
        dir.path(),
        "acl",
        "user alice\ntopic readwrite alice/#\nuser bob\ntopic read alice/#\n",
    );
    let path = dir.path().to_path_buf();
    let (weir, _) = start(
        dir,
        "        ca: ca.pem\n        require_certificate: true\n        use_identity_as_username: true\n",
        "      auth:\n        allow_anonymous: false\n        acl_file: acl\n",
    );
    let file = |name: &str, ext: &str| path.join(format!("{name}.{ext}")).display().to_string();
    let port = weir.v5.to_string();
    let (cafile, bob_cert, bob_key) = (file("ca", "pem"), file("bob", "pem"), file("bob", "key"));
    let mut bob = MosquittoSub::start(&[
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "--cafile",
        &cafile,
        "--cert",
        &bob_cert,
        "--key",
        &bob_key,
        "-t",
        "alice/#",
        "-v",
    ]);
    let send = |who: &str, payload: &str| {
        let (cert, key) = (file(who, "pem"), file(who, "key"));
        let args = [
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "--cafile",
            &cafile,
            "--cert",
            &cert,
            "--key",
            &key,
            "-t",
            "alice/x",
            "-m",
            payload,
        ];
        assert!(
            mosquitto_pub(&args).status.success(),
            "{who} could not connect"
        );
    };
    // Bob may read alice/# but not write there; alice may. No password was sent by either.
    send("bob", "from bob");
    send("alice", "from alice");
    assert_eq!(bob.next_message(), "alice/x from alice");
    assert!(bob.nothing_more());
}

#[test]
fn sighup_replaces_the_servers_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (Ca::new("Old CA"), Ca::new("New CA"));
    old.write(dir.path(), "old");
    new.write(dir.path(), "new");
    old.issue(dir.path(), "server", "localhost", true);
    let path = dir.path().to_path_buf();
    let (weir, metrics) = start(dir, "", "");
    assert!(publishes(&path, weir.v5, "old", None, &[]));
    assert!(!publishes(&path, weir.v5, "new", None, &[]));
    new.issue(&path, "server", "localhost", true);
    weir.signal("HUP");
    wait_for_reloads(metrics, "certificate", "applied", 1);
    assert!(publishes(&path, weir.v5, "new", None, &[]));
    assert!(!publishes(&path, weir.v5, "old", None, &[]));
}
