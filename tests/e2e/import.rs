//! `weir config import-mosquitto` on a realistic mosquitto.conf: the weir.yaml it prints is
//! valid as it is, carries every setting that has an equivalent, and names those it cannot map.

use super::harness::{run_weir, write_file};
use super::security::TestPki;

const MOSQUITTO_CONF: &str = "\
# A gateway's mosquitto.conf
per_listener_settings false
allow_anonymous false
password_file passwd
acl_file acl
persistence true
persistence_location data/
persistence_file mosquitto.db
autosave_interval 60
max_queued_messages 500
sys_interval 30
log_type error
log_type notice
log_dest file /var/log/mosquitto/mosquitto.log

listener 1883 127.0.0.1

listener 8883
certfile server.pem
keyfile server.key
cafile ca.pem
require_certificate true
use_identity_as_username true

listener 8080
protocol websockets

connection cloud
address cloud.example.com:8883
topic telemetry/# out 1
";

#[test]
fn a_realistic_mosquitto_conf_becomes_a_valid_weir_yaml() {
    let dir = tempfile::tempdir().unwrap();
    TestPki::new().write(dir.path());
    write_file(dir.path(), "mosquitto.conf", MOSQUITTO_CONF);
    write_file(dir.path(), "acl", "user alice\ntopic readwrite #\n");
    let status = std::process::Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(dir.path().join("passwd"))
        .args(["alice", "wonderland"])
        .status()
        .unwrap();
    assert!(status.success());
    let (status, yaml, stderr) = run_weir(
        &["config", "import-mosquitto", "mosquitto.conf"],
        dir.path(),
    );
    assert!(status.success(), "{stderr}");
    for expected in [
        "  max_queued_messages: 500\n",
        "  sys_interval: 30\n",
        "  auth:\n    allow_anonymous: false\n    password_file: 'passwd'\n    acl_file: 'acl'\n",
        "  persistence:\n    path: 'data/'\n    autosave_interval_s: 60\n",
        "    - protocol: mqtt\n      address: '127.0.0.1:1883'\n",
        "      address: '0.0.0.0:8883'\n      tls:\n        cert: 'server.pem'\n        key: 'server.key'\n        ca: 'ca.pem'\n        require_certificate: true\n        use_identity_as_username: true\n",
        "    - protocol: websockets\n      address: '0.0.0.0:8080'\n",
        "# logging: run `weir run --log-level info`",
        "# not imported: mosquitto.conf:8: `persistence_file` (the store is always weir.redb",
        "# not imported: mosquitto.conf:14: `log_dest`",
        "bridges:\n  - name: 'cloud'\n    addresses: ['cloud.example.com:8883']\n    topics:\n      - { pattern: 'telemetry/#', direction: out, qos: 1 }\n",
    ] {
        assert!(yaml.contains(expected), "missing {expected:?} in\n{yaml}");
    }
    write_file(dir.path(), "weir.yaml", &yaml);
    let (status, out, stderr) = run_weir(&["config", "check", "weir.yaml"], dir.path());
    assert!(status.success(), "{yaml}\n{stderr}");
    assert!(out.contains("configuration is valid"), "{out}");
}
