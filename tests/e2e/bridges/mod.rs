//! Bridges against real remotes: a gateway Weir bridged to a "cloud" that is a real mosquitto
//! 2.0 (with a password, TLS, persistence) or a second Weir, driven by mosquitto's clients,
//! Paho and rumqttc.

mod compose;
mod durability;
mod forwarding;
mod links;
mod reload;
mod shared;

use super::harness::{free_port, wait_for_metrics_within, write_file, Weir, PATIENCE};
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// A mosquitto broker on a free port, as the bridge's remote; killed on drop.
pub struct Mosquitto {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its configuration, data and log.
    pub dir: TempDir,
}

impl Mosquitto {
    /// Starts mosquitto with anonymous access and `extra` configuration lines.
    pub fn start(extra: &str) -> Mosquitto {
        Self::start_on(free_port(), extra)
    }

    /// Starts mosquitto on `port`.
    pub fn start_on(port: u16, extra: &str) -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        let conf = format!(
            // `user root`: run as root, mosquitto would switch to its own user, which cannot
            // write this directory.
            "listener {port} 127.0.0.1\nuser root\nlog_dest file {}\nlog_type all\n{extra}\n",
            dir.path().join("mosquitto.log").display()
        );
        let conf = if extra.contains("allow_anonymous") || extra.contains("password_file") {
            conf
        } else {
            conf + "allow_anonymous true\n"
        };
        write_file(dir.path(), "mosquitto.conf", &conf);
        let mut mosquitto = Mosquitto {
            child: None,
            port,
            dir,
        };
        mosquitto.restart();
        mosquitto
    }

    /// Starts it again (after [`Mosquitto::stop`]) on the same port and data.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "mosquitto is running");
        let mut child = Command::new("mosquitto")
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto not found: run scripts/install-toolchain.sh");
        let deadline = Instant::now() + PATIENCE;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("mosquitto exited ({status}):\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "mosquitto did not listen");
            std::thread::sleep(Duration::from_millis(10));
        }
        self.child = Some(child);
    }

    /// Stops it with SIGTERM (it saves its persistence file) and waits.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Sends it `signal` (`STOP` freezes it: its sockets stay open and nothing answers).
    pub fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let status = Command::new("kill")
                .args([&format!("-{signal}"), &child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success(), "kill -{signal} failed");
        }
    }

    /// Its log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    /// How many times `client_id` connected to it as a bridge.
    pub fn bridge_connections(&self, client_id: &str) -> usize {
        self.log().matches(&format!(" as {client_id} (")).count()
    }

    /// `-p PORT` for its clients.
    pub fn port_arg(&self) -> String {
        self.port.to_string()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A gateway Weir: its listeners, metrics endpoint, persistence in `data`, and `bridges`
/// (the YAML of `bridges:`, indented as a top-level key).
pub fn gateway(data: &Path, bridges: &str) -> (Weir, u16) {
    gateway_with(data, bridges, "")
}

/// As [`gateway`], with `extra` top-level YAML (graphs, modules).
pub fn gateway_with(data: &Path, bridges: &str, extra: &str) -> (Weir, u16) {
    let data = data.display().to_string();
    Weir::start_with_metrics(|v4, v5, metrics| gateway_yaml(v4, v5, metrics, &data, bridges, extra))
}

/// The configuration of a gateway.
pub fn gateway_yaml(
    v4: u16,
    v5: u16,
    metrics: u16,
    data: &str,
    bridges: &str,
    extra: &str,
) -> String {
    format!(
        "broker:\n  listeners:\n    - {{protocol: mqtt, address: '127.0.0.1:{v4}'}}\n    - {{protocol: mqtt, address: '127.0.0.1:{v5}'}}\n  persistence: {{ path: '{data}' }}\n  sys_interval: 1\nmetrics:\n  listen: 127.0.0.1:{metrics}\nbridges:\n{bridges}\n{extra}"
    )
}

/// Restarts a gateway on the configuration and data it had (after it stopped).
pub fn restart(gateway: &Weir) -> Weir {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("weir.yaml");
    std::fs::copy(gateway.dir.path().join("weir.yaml"), &config).unwrap();
    Weir::spawn(dir, &config, &[], gateway.v4, gateway.v5)
}

/// Waits (at most `patience`) until sample `sample` reads `value` on the metrics at `port`.
pub fn wait_metric(port: u16, sample: &str, value: u64, patience: Duration) {
    wait_for_metrics_within(port, patience, &format!("{sample} = {value}"), |m| {
        m(sample) == value
    });
}

/// `weir_bridge_connected{bridge="NAME"}`.
pub fn connected(name: &str) -> String {
    format!("weir_bridge_connected{{bridge=\"{name}\"}}")
}

/// A sample of family `family` for bridge `name`.
pub fn sample(family: &str, name: &str) -> String {
    format!("weir_bridge_{family}{{bridge=\"{name}\"}}")
}

/// Writes a mosquitto password file with `user`:`password` (mosquitto_passwd's format, made
/// by `weir passwd`).
pub fn password_file(dir: &Path, user: &str, password: &str) -> PathBuf {
    let file = dir.join("passwords");
    let (status, _, stderr) = super::harness::run_weir(
        &["passwd", "-c", "-b", file.to_str().unwrap(), user, password],
        dir,
    );
    assert!(status.success(), "weir passwd failed: {stderr}");
    file
}

/// Publishes `count` messages on `topic` with payloads `0..count` at `qos` to `port` with
/// rumqttc (MQTT 3.1.1), 100 in flight, and waits for every acknowledgement; returns how many
/// were acknowledged.
pub fn publish_burst(port: u16, topic: &str, count: usize, qos: u8) -> usize {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let mut options =
            rumqttc::MqttOptions::new(format!("burst-{port}-{topic}"), "127.0.0.1", port);
        options.set_inflight(100);
        options.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 1000);
        let qos = match qos {
            0 => rumqttc::QoS::AtMostOnce,
            1 => rumqttc::QoS::AtLeastOnce,
            _ => rumqttc::QoS::ExactlyOnce,
        };
        let topic = topic.to_string();
        let publisher = tokio::spawn(async move {
            for i in 0..count {
                client
                    .publish(topic.clone(), qos, false, i.to_string())
                    .await
                    .unwrap();
            }
            client
        });
        let mut acked = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while acked < count {
            let event = tokio::time::timeout_at(deadline, eventloop.poll())
                .await
                .expect("the burst was not acknowledged in time")
                .expect("the publisher's connection failed");
            match event {
                rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))
                | rumqttc::Event::Incoming(rumqttc::Packet::PubComp(_)) => acked += 1,
                rumqttc::Event::Outgoing(rumqttc::Outgoing::Publish(_))
                    if qos == rumqttc::QoS::AtMostOnce =>
                {
                    acked += 1
                }
                _ => {}
            }
        }
        let client = publisher.await.unwrap();
        let _ = client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(1), eventloop.poll()).await;
        acked
    })
}

/// A persistent subscriber on a remote: connects once to create its session (clean session
/// off, QoS `qos`), so that the remote queues for it while it is away.
pub fn persistent_session(port: u16, id: &str, filter: &str, qos: u8) {
    let output = Command::new("mosquitto_sub")
        .args([
            "-p",
            &port.to_string(),
            "-i",
            id,
            "-c",
            "-q",
            &qos.to_string(),
        ])
        .args(["-t", filter, "-W", "1"])
        .output()
        .unwrap();
    let _ = output;
}

/// A persistent subscriber's session (`mosquitto_sub -c -i ID -q QOS -t FILTER -v`) and its
/// lines as they come, `topic payload` each; kill the child when done.
pub fn session_lines(
    port: u16,
    id: &str,
    filter: &str,
    qos: u8,
) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new("stdbuf")
        .args([
            "-oL",
            "mosquitto_sub",
            "-p",
            &port.to_string(),
            "-i",
            id,
            "-c",
        ])
        .args(["-q", &qos.to_string(), "-t", filter, "-v"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Reads everything a persistent subscriber's session holds (and what arrives) until
/// `count` messages came or nothing came for `quiet`: the payloads by topic, in order.
pub fn drain_session(
    port: u16,
    id: &str,
    filter: &str,
    qos: u8,
    count: usize,
    quiet: Duration,
) -> Vec<(String, String)> {
    let (mut child, rx) = session_lines(port, id, filter, qos);
    let mut seen = Vec::with_capacity(count);
    while seen.len() < count {
        match rx.recv_timeout(quiet) {
            Ok(line) => {
                let (topic, payload) = line.split_once(' ').unwrap_or((&line, ""));
                seen.push((topic.to_string(), payload.to_string()));
            }
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    seen
}

/// Asserts that `received` holds every payload `0..count` of `topic`, in order, and returns
/// how many came twice (QoS 1 may repeat a message; the order of first arrivals holds).
pub fn assert_complete_in_order(received: &[(String, String)], topic: &str, count: usize) -> usize {
    let mut next = 0usize;
    let mut duplicates = 0;
    for (t, payload) in received.iter().filter(|(t, _)| t == topic) {
        let value: usize = payload
            .parse()
            .unwrap_or_else(|_| panic!("payload {payload:?} on {t}"));
        if value == next {
            next += 1;
        } else if value < next {
            duplicates += 1;
        } else {
            panic!("{topic}: {value} arrived before {next} (out of order or lost)");
        }
    }
    assert_eq!(next, count, "{topic}: {next} of {count} arrived in order");
    duplicates
}

/// Rewrites `weir`'s configuration file.
pub fn rewrite_config(weir: &Weir, yaml: &str) {
    let mut file = std::fs::File::create(weir.dir.path().join("weir.yaml")).unwrap();
    file.write_all(yaml.as_bytes()).unwrap();
}
