//! mosquitto's password files: one written by Debian's `mosquitto_passwd` used unchanged, one
//! written by `weir passwd` read by mosquitto and Weir alike, anonymous and password clients on
//! one listener, and a bad line reported where it is.

use super::harness::{free_port, mosquitto_pub, run_weir, weir_bin, write_file, Weir};
use std::process::{Command, Stdio};

/// Whether mosquitto_pub could publish to `port` with `credentials`.
fn publishes(port: u16, version: &str, credentials: &[&str]) -> bool {
    let port = port.to_string();
    let mut args = vec!["-p", &port, "-V", version, "-t", "auth/x", "-m", "m"];
    args.extend_from_slice(credentials);
    mosquitto_pub(&args).status.success()
}

fn mosquitto_passwd(args: &[&str]) {
    let status = Command::new("mosquitto_passwd")
        .args(args)
        .stdin(Stdio::null())
        .status()
        .expect("mosquitto_passwd not found (apt-get install mosquitto)");
    assert!(status.success(), "mosquitto_passwd {args:?}");
}

fn weir_passwd(args: &[&str]) -> std::process::Output {
    Command::new(weir_bin())
        .arg("passwd")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Weir on two listeners with `auth` (indented four spaces under `broker.auth`).
fn weir_with_auth(dir: tempfile::TempDir, auth: &str) -> Weir {
    let (v4, v5) = (free_port(), free_port());
    let config = write_file(
        dir.path(),
        "weir.yaml",
        &format!(
            "broker:\n  auth:\n{auth}  listeners:\n    - {{protocol: mqtt, address: '127.0.0.1:{v4}'}}\n    - {{protocol: mqtt, address: '127.0.0.1:{v5}'}}\n"
        ),
    );
    Weir::spawn(dir, &config, &[], v4, v5)
}

#[test]
fn a_password_file_written_by_mosquitto_passwd_is_used_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("passwd");
    let path = file.to_str().unwrap();
    mosquitto_passwd(&["-c", "-b", path, "alice", "wonderland"]);
    mosquitto_passwd(&["-b", path, "bob", "builder"]);
    let weir = weir_with_auth(
        dir,
        "    allow_anonymous: false\n    password_file: passwd\n",
    );
    for (port, version) in [(weir.v4, "mqttv311"), (weir.v5, "mqttv5")] {
        assert!(publishes(
            port,
            version,
            &["-u", "alice", "-P", "wonderland"]
        ));
        assert!(publishes(port, version, &["-u", "bob", "-P", "builder"]));
        assert!(!publishes(port, version, &["-u", "alice", "-P", "builder"]));
        assert!(!publishes(port, version, &["-u", "carol", "-P", "x"]));
        assert!(!publishes(port, version, &[]), "anonymous accepted");
    }
}

#[test]
fn anonymous_and_password_clients_share_a_listener_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passwd");
    mosquitto_passwd(&["-c", "-b", path.to_str().unwrap(), "alice", "wonderland"]);
    let weir = weir_with_auth(
        dir,
        "    allow_anonymous: true\n    password_file: passwd\n",
    );
    assert!(publishes(weir.v4, "mqttv311", &[]), "anonymous refused");
    assert!(publishes(
        weir.v4,
        "mqttv311",
        &["-u", "alice", "-P", "wonderland"]
    ));
    // A user name must come with its password, anonymous access or not (as mosquitto).
    assert!(!publishes(
        weir.v4,
        "mqttv311",
        &["-u", "alice", "-P", "nope"]
    ));
    assert!(!publishes(
        weir.v4,
        "mqttv311",
        &["-u", "mallory", "-P", "x"]
    ));
}

#[test]
fn weir_passwd_writes_what_mosquitto_and_weir_read() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("passwd");
    let path = file.to_str().unwrap();
    assert!(weir_passwd(&["-c", "-b", path, "alice", "wonderland"])
        .status
        .success());
    assert!(weir_passwd(&["-b", path, "bob", "builder"])
        .status
        .success());
    assert!(weir_passwd(&["-b", path, "alice", "changed"])
        .status
        .success());
    assert!(weir_passwd(&["-D", path, "bob"]).status.success());
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.starts_with("alice:$7$101$"), "{text}");
    let refused = weir_passwd(&[path, "carol", "pw"]);
    assert!(!refused.status.success(), "a password argument without -b");
    // mosquitto_passwd itself adds to the file.
    mosquitto_passwd(&["-b", path, "carol", "viamosquitto"]);
    let weir = weir_with_auth(dir, "    password_file: passwd\n");
    assert!(publishes(
        weir.v4,
        "mqttv311",
        &["-u", "alice", "-P", "changed"]
    ));
    assert!(!publishes(
        weir.v4,
        "mqttv311",
        &["-u", "alice", "-P", "wonderland"]
    ));
    assert!(!publishes(
        weir.v4,
        "mqttv311",
        &["-u", "bob", "-P", "builder"]
    ));
    assert!(publishes(
        weir.v4,
        "mqttv311",
        &["-u", "carol", "-P", "viamosquitto"]
    ));
}

#[test]
fn a_bad_password_line_is_a_configuration_error_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "passwd", "# users\nalice:plain-text\n");
    write_file(
        dir.path(),
        "weir.yaml",
        "broker:\n  auth:\n    password_file: passwd\n",
    );
    let (status, _, stderr) = run_weir(&["config", "check", "weir.yaml"], dir.path());
    assert!(!status.success());
    let expected =
        "weir.yaml:3:5: broker.auth.password_file: passwd:2:7: expected a hash written by mosquitto_passwd";
    assert!(stderr.contains(expected), "{stderr}");
}
