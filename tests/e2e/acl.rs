//! mosquitto's ACL file: publish (write) and subscribe/delivery (read) checked per user, for
//! anonymous clients and through patterns; graph results protected like any topic while the
//! graph itself publishes them; refusals answered as mosquitto does and counted.

use super::harness::{
    free_port, metric, modules_dir, mosquitto_pub, repo, wait_for_reloads, write_file,
    MosquittoSub, Weir,
};
use serde_json::{json, Value};
use std::process::{Command, Stdio};

const ACL: &str = "\
# anonymous clients
topic read public/#

user alice
topic readwrite sensors/#
topic deny sensors/secret
topic read processed/#

user bob
topic read sensors/#

user carol
topic write sensors/#

pattern readwrite devices/%c/#
pattern read inbox/%u/#
";

/// Weir with users alice and bob, anonymous clients allowed, the ACL above, and the demo
/// graph (sensors/+/temperature → processed/{1}/temperature).
fn start() -> (Weir, u16) {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "acl", ACL);
    let (v4, v5, metrics) = (free_port(), free_port(), free_port());
    let config = write_file(
        dir.path(),
        "weir.yaml",
        &format!(
            "broker:\n  auth:\n    allow_anonymous: true\n    acl_file: acl\n    users: {{alice: wonderland, bob: builder, carol: singer}}\n  listeners:\n    - {{protocol: mqtt, address: '127.0.0.1:{v4}'}}\n    - {{protocol: mqtt, address: '127.0.0.1:{v5}'}}\n\
             modules: {{directories: ['{}']}}\nmetrics: {{listen: '127.0.0.1:{metrics}'}}\n\
             graphs:\n  - name: demo\n    definition: builtin:temperature-map\n    source: ['sensors/+/temperature']\n    sink: {{topic: 'processed/{{1}}/temperature'}}\n",
            modules_dir()
        ),
    );
    (Weir::spawn(dir, &config, &[], v4, v5), metrics)
}

/// Connects as `who` (`user:password`, or anonymous with `-`) with client id `id` in MQTT
/// `version`, subscribes to `subscribe`, publishes QoS 1 to `publish`; the reason codes.
fn check(
    port: u16,
    version: &str,
    who: &str,
    id: &str,
    subscribe: &[&str],
    publish: &[&str],
) -> Value {
    let mut command = Command::new("python3");
    command.arg(repo("tests/e2e/mqtt5_probe.py")).args([
        "--port",
        &port.to_string(),
        "--client-id",
        id,
        "--version",
        version,
    ]);
    if let Some((user, password)) = who.split_once(':') {
        command.args(["--username", user, "--password", password]);
    }
    command.arg("acl");
    for filter in subscribe {
        command.args(["--subscribe", filter]);
    }
    for topic in publish {
        command.args(["--publish", topic]);
    }
    let output = command.stdin(Stdio::null()).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|_| {
        panic!(
            "acl probe: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

#[test]
fn each_client_publishes_and_subscribes_as_the_acl_file_says() {
    let (weir, metrics) = start();
    // MQTT 5 gets 0x87 for both refusals; 3.1.1 gets SUBACK 0x80 and a plain PUBACK.
    for (port, version, denied_sub, denied_pub) in
        [(weir.v5, "5", 0x87, 0x87), (weir.v4, "3.1.1", 0x80, 0)]
    {
        let alice = check(
            port,
            version,
            "alice:wonderland",
            "a1",
            &["sensors/#", "#", "inbox/alice/#", "inbox/bob/#", "public/#"],
            &[
                "sensors/a",
                "sensors/secret",
                "processed/x/temperature",
                "devices/a1/state",
            ],
        );
        assert_eq!(
            alice,
            json!({"suback": [1, denied_sub, 1, denied_sub, denied_sub],
                   "puback": [0, denied_pub, denied_pub, 0]}),
            "alice over {version}"
        );
        let bob = check(
            port,
            version,
            "bob:builder",
            "b1",
            &["sensors/#"],
            &["sensors/b"],
        );
        assert_eq!(
            bob,
            json!({"suback": [1], "puback": [denied_pub]}),
            "bob over {version}"
        );
        let anonymous = check(
            port,
            version,
            "-",
            "dev7",
            &["public/#", "sensors/#"],
            &["devices/dev7/state", "devices/dev8/state", "public/x"],
        );
        assert_eq!(
            anonymous,
            json!({"suback": [1, denied_sub], "puback": [0, denied_pub, denied_pub]}),
            "anonymous over {version}"
        );
    }
    // Refusals are counted (3.1.1's silent ones too): per version, alice's 3 subscriptions and
    // 2 publishes, bob's publish, the anonymous client's subscription and 2 publishes.
    assert_eq!(
        metric(metrics, "weir_acl_denied_subscriptions_total"),
        Some(8)
    );
    assert_eq!(metric(metrics, "weir_acl_denied_publishes_total"), Some(10));
}

#[test]
fn deliveries_follow_read_rules_and_graph_results_are_protected_but_delivered() {
    let (weir, metrics) = start();
    let port = weir.v4.to_string();
    let login = |user: &str, password: &str| -> Vec<String> {
        ["-p", &port, "-u", user, "-P", password]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let (alice, carol) = (login("alice", "wonderland"), login("carol", "singer"));
    let mut args: Vec<&str> = alice.iter().map(String::as_str).collect();
    args.extend(["-t", "sensors/#", "-t", "processed/#", "-q", "1", "-v"]);
    let mut sub = MosquittoSub::start(&args);
    let publish = |credentials: &[String], topic: &str, payload: &str| {
        let mut args: Vec<&str> = credentials.iter().map(String::as_str).collect();
        args.extend(["-t", topic, "-m", payload, "-q", "1"]);
        assert!(mosquitto_pub(&args).status.success());
    };
    // Carol may write sensors/secret, alice's subscription matches it, but alice may not
    // read it: that delivery is refused.
    publish(&carol, "sensors/secret", "hidden");
    // The reading goes through the graph, whose result on processed/ reaches alice although
    // she may not write there.
    publish(
        &carol,
        "sensors/gw1/temperature",
        r#"{"temperature":{"value":212,"unit":"F"}}"#,
    );
    let mut got = vec![sub.next_message(), sub.next_message()];
    got.sort();
    assert_eq!(
        got,
        [
            r#"processed/gw1/temperature {"temperature":{"value":100.0,"unit":"C"}}"#,
            r#"sensors/gw1/temperature {"temperature":{"value":212,"unit":"F"}}"#,
        ]
    );
    // A forged graph result from alice is refused.
    publish(&alice, "processed/gw1/temperature", "forged");
    assert!(sub.nothing_more(), "a refused message was delivered");
    assert_eq!(metric(metrics, "weir_acl_denied_deliveries_total"), Some(1));
    assert_eq!(metric(metrics, "weir_acl_denied_publishes_total"), Some(1));
}

#[test]
fn sighup_reloads_the_password_and_acl_files_and_keeps_connections() {
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    let status = Command::new("mosquitto_passwd")
        .args(["-c", "-b", passwd.to_str().unwrap(), "alice", "wonderland"])
        .status()
        .unwrap();
    assert!(status.success());
    let acl = write_file(dir.path(), "acl", "user alice\ntopic readwrite a/#\n");
    let (v4, v5, metrics) = (free_port(), free_port(), free_port());
    let config = write_file(
        dir.path(),
        "weir.yaml",
        &format!(
            "metrics: {{listen: '127.0.0.1:{metrics}'}}\nbroker:\n  auth:\n    password_file: passwd\n    acl_file: acl\n  listeners:\n    - {{protocol: mqtt, address: '127.0.0.1:{v4}'}}\n    - {{protocol: mqtt, address: '127.0.0.1:{v5}'}}\n"
        ),
    );
    let weir = Weir::spawn(dir, &config, &[], v4, v5);
    let port = v4.to_string();
    let mut alice = MosquittoSub::start(&[
        "-p",
        &port,
        "-u",
        "alice",
        "-P",
        "wonderland",
        "-t",
        "a/#",
        "-q",
        "1",
        "-v",
    ]);
    let bob_publishes = |topic: &str| {
        mosquitto_pub(&[
            "-p", &port, "-u", "bob", "-P", "builder", "-t", topic, "-m", "hi", "-q", "1",
        ])
        .status
        .success()
    };
    assert!(!bob_publishes("a/open"), "bob is not a user yet");
    // Bob joins, and alice may no longer read a/secret; her connection stays up and follows.
    let status = Command::new("mosquitto_passwd")
        .args(["-b", passwd.to_str().unwrap(), "bob", "builder"])
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::write(
        &acl,
        "user alice\ntopic readwrite a/#\ntopic deny a/secret\nuser bob\ntopic write a/#\n",
    )
    .unwrap();
    weir.signal("HUP");
    wait_for_reloads(metrics, "acl_file", "applied", 1);
    wait_for_reloads(metrics, "password_file", "applied", 1);
    assert!(bob_publishes("a/secret"));
    assert!(bob_publishes("a/open"));
    assert_eq!(alice.next_message(), "a/open hi");
    // A file that does not parse leaves the rules in force.
    std::fs::write(&acl, "allow everything\n").unwrap();
    weir.signal("HUP");
    wait_for_reloads(metrics, "acl_file", "refused", 1);
    assert!(
        weir.log().contains("acl:1:1: unknown keyword `allow`"),
        "{}",
        weir.log()
    );
    assert!(bob_publishes("a/secret"));
    assert!(bob_publishes("a/again"));
    assert_eq!(alice.next_message(), "a/again hi");
}
