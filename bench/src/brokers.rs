//! The brokers under test, started by the tool on free loopback ports: Weir with a generated
//! weir.yaml, and Debian's mosquitto with the equivalent configuration.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// A broker process; killed on drop.
pub struct Broker {
    child: Child,
    /// Its MQTT 3.1.1 port on 127.0.0.1.
    pub port: u16,
    /// Weir's metrics endpoint port.
    pub metrics: Option<u16>,
    dir: TempDir,
}

/// A port free on 127.0.0.1 a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Broker {
    /// Weir running `graphs` (the `graphs:` section of weir.yaml, possibly empty) with modules
    /// from `modules`; `broker` is more of the `broker:` section (indented two spaces).
    pub fn weir(
        binary: &Path,
        modules: &Path,
        broker: &str,
        graphs: &str,
    ) -> anyhow::Result<Broker> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let metrics = free_port()?;
        // Weir's defaults (router logs of 4 x 256 KiB per filter, client queues of 1000 with
        // back-pressure), with as many messages in flight per client as mosquitto is given.
        let config = format!(
            "broker:\n{broker}  listeners:\n    - {{protocol: mqtt, address: '127.0.0.1:{port}', limits: {{max_inflight_count: 1000}}}}\nmodules: {{directories: ['{}']}}\nengine: {{log_interval_s: 0}}\nmetrics: {{listen: '127.0.0.1:{metrics}'}}\n{graphs}",
            modules.display()
        );
        let file = dir.path().join("weir.yaml");
        std::fs::write(&file, config)?;
        let mut command = Command::new(binary);
        command
            .args(["run", "--config"])
            .arg(&file)
            .env("RUST_LOG", "info,rumqttd=warn");
        Broker::spawn_weir(command, dir, port, metrics)
    }

    /// Weir with its embedded default configuration (`weir run`, no file), in a directory
    /// where `target/modules` (where the default looks) is `modules`, on free ports given
    /// through the default's environment variables.
    pub fn weir_default(binary: &Path, modules: &Path) -> anyhow::Result<Broker> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("target"))?;
        std::os::unix::fs::symlink(modules, dir.path().join("target/modules"))?;
        let (port, metrics) = (free_port()?, free_port()?);
        let mut command = Command::new(binary);
        command
            .arg("run")
            .current_dir(dir.path())
            .env("WEIR_MQTT_PORT", port.to_string())
            .env("WEIR_METRICS_PORT", metrics.to_string())
            .env("WEIR_DATA_DIR", dir.path().join("data"));
        Broker::spawn_weir(command, dir, port, metrics)
    }

    /// Starts Weir by `command`, logging to `weir.log` in `dir`, and waits until it is ready
    /// on `port` (metrics on `metrics`).
    fn spawn_weir(
        mut command: Command,
        dir: TempDir,
        port: u16,
        metrics: u16,
    ) -> anyhow::Result<Broker> {
        let program = command.get_program().to_string_lossy().into_owned();
        let log = std::fs::File::create(dir.path().join("weir.log"))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {program}: {e}"))?;
        let mut broker = Broker::ready(child, port, dir)?;
        broker.metrics = Some(metrics);
        broker.await_weir_ready()?;
        Ok(broker)
    }

    /// Waits until Weir says it is ready: graphs start after the listeners, and are all routed
    /// then.
    fn await_weir_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        // "weir <version> ready", not a module's own "ready ..." line.
        while !self.log().lines().any(|line| line.ends_with(" ready")) {
            anyhow::ensure!(
                Instant::now() < deadline,
                "weir did not get ready:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// A broker started by `command` (its output dropped), listening on `port`.
    pub fn command(command: &mut Command, port: u16) -> anyhow::Result<Broker> {
        let program = command.get_program().to_string_lossy().into_owned();
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {program}: {e}"))?;
        Broker::ready(child, port, tempfile::tempdir()?)
    }

    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What Weir logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("weir.log")).unwrap_or_default()
    }

    /// mosquitto with one listener, anonymous, no limit on queued messages.
    pub fn mosquitto(binary: &Path) -> anyhow::Result<Broker> {
        Self::mosquitto_with(binary, "max_inflight_messages 1000\n", "")
    }

    /// mosquitto with one listener, anonymous, no limit on queued messages, `limits` (lines
    /// of global settings) and then `more` (a bridge's `connection` block).
    pub fn mosquitto_with(binary: &Path, limits: &str, more: &str) -> anyhow::Result<Broker> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let file = dir.path().join("mosquitto.conf");
        std::fs::write(
            &file,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\nmax_queued_messages 0\n{limits}persistence false\nlog_dest none\n{more}"),
        )?;
        let child = Command::new(binary)
            .arg("-c")
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot start {}: {e} (apt-get install mosquitto)",
                    binary.display()
                )
            })?;
        Broker::ready(child, port, dir)
    }

    fn ready(mut child: Child, port: u16, dir: TempDir) -> anyhow::Result<Broker> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(dir.path().join("weir.log")).unwrap_or_default();
                anyhow::bail!("the broker exited ({status}) before listening\n{log}");
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the broker did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(Broker {
            child,
            port,
            metrics: None,
            dir,
        })
    }

    /// The samples whose name starts with `prefix`, from Weir's metrics, as `(series, value)`.
    pub fn metric_samples(&self, prefix: &str) -> Vec<(String, u64)> {
        use std::io::{Read, Write};
        let Some(port) = self.metrics else {
            return Vec::new();
        };
        let mut text = String::new();
        let read = TcpStream::connect(("127.0.0.1", port)).and_then(|mut stream| {
            stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
            stream.read_to_string(&mut text)
        });
        if read.is_err() {
            return Vec::new();
        }
        text.lines()
            .filter(|line| line.starts_with(prefix))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                Some((series.to_string(), value.parse().ok()?))
            })
            .collect()
    }

    /// The sum of the samples whose name starts with `prefix`.
    pub fn metric_sum(&self, prefix: &str) -> Option<u64> {
        let samples = self.metric_samples(prefix);
        (!samples.is_empty()).then(|| samples.iter().map(|(_, v)| v).sum())
    }

    /// Resident memory now and at its peak, MiB (from /proc).
    pub fn rss_mb(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let read = |key: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(key))
                .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
                .map_or(0.0, |kib| kib / 1024.0)
        };
        (read("VmRSS:"), read("VmHWM:"))
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `name` next to this executable (cargo puts workspace binaries together), else in PATH.
pub fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|me| Some(me.parent()?.join(name)))
        .filter(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}
