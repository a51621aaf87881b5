//! Starting the real `weir` binary and real MQTT clients for end-to-end tests.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Longest we wait for anything that should happen at once.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A port that was free a moment ago on 127.0.0.1, and that no other call in this test run
/// returned.
///
/// Ports come from below the kernel's ephemeral range, handed out in turn from a point that
/// depends on the process id: a port the kernel gave out for `bind(0)` or for an outgoing
/// connection (the tests make thousands) could be taken again by the time weir binds it.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (low, high) = ports_below_ephemeral_range();
    let span = high - low;
    let start = std::process::id() % span;
    for _ in 0..span {
        let turn = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = low + (start + turn) % span;
        let port = u16::try_from(port).expect("ports fit in u16");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 in {low}..{high}");
}

/// `[low, high)`: the ports below the kernel's ephemeral range, down to 10000.
fn ports_below_ephemeral_range() -> (u32, u32) {
    const LOWEST: u32 = 10_000;
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    assert!(
        ephemeral_low > LOWEST + 1000,
        "the ephemeral port range starts at {ephemeral_low}: too low for the tests' ports"
    );
    (LOWEST, ephemeral_low)
}

/// The built `weir` binary.
pub fn weir_bin() -> &'static str {
    env!("CARGO_BIN_EXE_weir")
}

/// A running `weir run` with its own configuration directory; killed on drop.
pub struct Weir {
    child: Child,
    /// Holds the configuration and the captured log.
    pub dir: TempDir,
    /// Port of the MQTT 3.1.1 listener.
    pub v4: u16,
    /// Port of the MQTT 5 listener.
    pub v5: u16,
}

impl Weir {
    /// Starts weir with two plain listeners on free ports.
    pub fn start() -> Weir {
        Self::start_with(|v4, v5| {
            format!(
                "broker:\n  listeners:\n    - {{protocol: '3.1.1', address: '127.0.0.1:{v4}'}}\n    - {{protocol: '5', address: '127.0.0.1:{v5}'}}\n"
            )
        })
    }

    /// Starts weir as [`Weir::start`] does, with its metrics endpoint on a free port (returned).
    pub fn start_metered() -> (Weir, u16) {
        Self::start_with_metrics(|v4, v5, metrics| {
            format!(
                "broker:\n  listeners:\n    - {{protocol: '3.1.1', address: '127.0.0.1:{v4}'}}\n    - {{protocol: '5', address: '127.0.0.1:{v5}'}}\nmetrics: {{listen: '127.0.0.1:{metrics}'}}\n"
            )
        })
    }

    /// Starts weir with the configuration `yaml(v4_port, v5_port)` and waits until both
    /// listeners accept connections.
    pub fn start_with(yaml: impl FnOnce(u16, u16) -> String) -> Weir {
        let dir = tempfile::tempdir().unwrap();
        let (v4, v5) = (free_port(), free_port());
        let config = dir.path().join("weir.yaml");
        std::fs::write(&config, yaml(v4, v5)).unwrap();
        Self::spawn(dir, &config, &[], v4, v5)
    }

    /// Starts weir with the configuration `yaml(v4_port, v5_port, metrics_port)` and waits until
    /// the listeners and the metrics endpoint accept connections. Free ports are picked anew and
    /// weir restarted if one was taken in between (tests run in parallel).
    pub fn start_with_metrics(yaml: impl Fn(u16, u16, u16) -> String) -> (Weir, u16) {
        for _ in 0..3 {
            let metrics = free_port();
            let dir = tempfile::tempdir().unwrap();
            let (v4, v5) = (free_port(), free_port());
            let config = dir.path().join("weir.yaml");
            std::fs::write(&config, yaml(v4, v5, metrics)).unwrap();
            match Self::try_spawn(dir, &config, &[], v4, v5) {
                Ok(weir) => return (weir, metrics),
                Err(log) => assert!(log.contains("cannot bind"), "weir exited:\n{log}"),
            }
        }
        panic!("no free ports for weir after three attempts");
    }

    /// Starts `weir run` with its embedded default configuration from the repository (where
    /// target/modules holds the demo graph's module), on a free MQTT port; returns it and its
    /// metrics port once the metrics endpoint answers.
    pub fn start_default() -> (Weir, u16) {
        let dir = tempfile::tempdir().unwrap();
        let (port, metrics) = (free_port(), free_port());
        let env = [
            ("WEIR_MQTT_PORT", port.to_string()),
            ("WEIR_METRICS_PORT", metrics.to_string()),
            // The default configuration persists: into this run's own directory.
            (
                "WEIR_DATA_DIR",
                dir.path().join("data").display().to_string(),
            ),
        ];
        let mut command = Command::new(weir_bin());
        command
            .arg("run")
            .current_dir(repo(""))
            .env_remove("WEIR_CONFIG");
        let child = launch(command, dir.path(), &env);
        let mut weir = Weir {
            child,
            dir,
            v4: port,
            v5: port,
        };
        weir.wait_until_ready()
            .unwrap_or_else(|log| panic!("weir exited before it was ready:\n{log}"));
        (weir, metrics)
    }

    /// Waits for the process to exit, returning its status and how long it took.
    pub fn wait_exit(&mut self, patience: Duration) -> Option<(ExitStatus, Duration)> {
        let started = Instant::now();
        while started.elapsed() < patience {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some((status, started.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    /// Sends `signal` without waiting.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Starts weir on `config` (inside `dir`) with extra environment, and waits until it is
    /// ready.
    pub fn spawn(dir: TempDir, config: &Path, env: &[(&str, String)], v4: u16, v5: u16) -> Weir {
        Self::try_spawn(dir, config, env, v4, v5)
            .unwrap_or_else(|log| panic!("weir exited before it was ready:\n{log}"))
    }

    /// As [`Weir::spawn`]; `Err` with the log when weir exits before it is ready.
    pub fn try_spawn(
        dir: TempDir,
        config: &Path,
        env: &[(&str, String)],
        v4: u16,
        v5: u16,
    ) -> Result<Weir, String> {
        let mut command = Command::new(weir_bin());
        command.args(["run", "--config"]).arg(config);
        let child = launch(command, dir.path(), env);
        let mut weir = Weir { child, dir, v4, v5 };
        weir.wait_until_ready()?;
        Ok(weir)
    }

    /// Starts weir on `config` (inside `dir`) and returns at once, before it is ready (see
    /// [`Weir::await_ready`]).
    pub fn spawn_unready(dir: TempDir, config: &Path, v4: u16, v5: u16) -> Weir {
        let mut command = Command::new(weir_bin());
        command.args(["run", "--config"]).arg(config);
        let child = launch(command, dir.path(), &[]);
        Weir { child, dir, v4, v5 }
    }

    /// Waits until weir says it is ready.
    pub fn await_ready(&mut self) {
        self.wait_until_ready()
            .unwrap_or_else(|log| panic!("weir exited before it was ready:\n{log}"));
    }

    /// The process's resident memory now, in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    /// Everything weir has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("weir.log")).unwrap_or_default()
    }

    /// Waits until weir says it is ready (its listeners are bound earlier, while graphs
    /// start); `Err` with the log if it exits first.
    fn wait_until_ready(&mut self) -> Result<(), String> {
        let ready = format!("weir {} ready", env!("CARGO_PKG_VERSION"));
        let deadline = Instant::now() + PATIENCE;
        while !self.log().contains(&ready) {
            if self.child.try_wait().unwrap().is_some() {
                return Err(self.log());
            }
            assert!(
                Instant::now() < deadline,
                "weir was not ready:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Waits until the log contains `needle` (an event weir reports only there).
    pub fn wait_for_log(&self, needle: &str) {
        self.wait_for_log_count(needle, 1);
    }

    /// Waits until the log contains `needle` at least `count` times.
    pub fn wait_for_log_count(&self, needle: &str, count: usize) {
        let deadline = Instant::now() + PATIENCE;
        while self.log().matches(needle).count() < count {
            assert!(
                Instant::now() < deadline,
                "weir never logged {needle:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `signal` and waits for the process to exit, returning its status and how long it took.
    pub fn stop_with(&mut self, signal: &str) -> (ExitStatus, Duration) {
        let started = Instant::now();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
        let deadline = started + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, started.elapsed());
            }
            assert!(Instant::now() < deadline, "weir ignored SIG{signal}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Weir {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `command` (a `weir run`) with `env`, its output in `dir`/weir.log.
fn launch(mut command: Command, dir: &Path, env: &[(&str, String)]) -> Child {
    let log = std::fs::File::create(dir.join("weir.log")).unwrap();
    command
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("cannot start weir")
}

/// Runs `weir` with `args` to completion, returning (exit status, stdout, stderr).
pub fn run_weir(args: &[&str], cwd: &Path) -> (ExitStatus, String, String) {
    run_weir_with(args, cwd, &[])
}

/// As [`run_weir`], with extra environment variables.
pub fn run_weir_with(
    args: &[&str],
    cwd: &Path,
    env: &[(&str, &OsStr)],
) -> (ExitStatus, String, String) {
    let output = Command::new(weir_bin())
        .args(args)
        .current_dir(cwd)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("cannot run weir");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A running `mosquitto_sub -d`, subscribed once it returns.
pub struct MosquittoSub {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    /// Messages that came before the SUBACK (a resumed session's queue).
    early: std::collections::VecDeque<String>,
}

impl MosquittoSub {
    /// Starts `mosquitto_sub -d ARGS` and waits for its SUBACK.
    pub fn start(args: &[&str]) -> MosquittoSub {
        // stdbuf: mosquitto_sub block-buffers stdout into a pipe; we need each line as it comes.
        let mut child = Command::new("stdbuf")
            .args(["-oL", "mosquitto_sub", "-d"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mosquitto_sub not found: run scripts/install-toolchain.sh");
        let lines = spawn_line_reader(child.stdout.take().unwrap());
        let mut sub = MosquittoSub {
            child,
            lines,
            early: Default::default(),
        };
        let deadline = Instant::now() + PATIENCE;
        loop {
            let line = sub
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("mosquitto_sub {args:?} got no SUBACK"));
            if line.contains("received SUBACK") {
                return sub;
            }
            if !is_debug_line(&line) {
                sub.early.push_back(line);
            }
        }
    }

    /// The next line that is not mosquitto_sub's own debug output.
    pub fn next_message(&mut self) -> String {
        if let Some(early) = self.early.pop_front() {
            return early;
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            let line = self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("mosquitto_sub received nothing");
            if !is_debug_line(&line) {
                return line;
            }
        }
    }

    /// The next message, if one arrives within `patience`.
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub fn try_next(&mut self, patience: Duration) -> Option<String> {
        if let Some(early) = self.early.pop_front() {
            return Some(early);
        }
        let deadline = Instant::now() + patience;
        loop {
            let line = self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .ok()?;
            if !is_debug_line(&line) {
                return Some(line);
            }
        }
    }

    /// Whether no message arrives within a short quiet period (for checking that nothing
    /// beyond what was expected was delivered).
    pub fn nothing_more(&mut self) -> bool {
        if !self.early.is_empty() {
            return false;
        }
        let quiet = Duration::from_millis(300);
        loop {
            match self.lines.recv_timeout(quiet) {
                Err(_) => return true,
                Ok(line) if line.starts_with("Client ") => continue,
                Ok(_) => return false,
            }
        }
    }

    /// Counts messages until `expected` arrived or nothing came for `quiet`.
    pub fn count(&mut self, expected: usize, quiet: Duration) -> usize {
        let mut count = self.early.len().min(expected);
        self.early.drain(..count);
        while count < expected {
            match self.lines.recv_timeout(quiet) {
                Ok(line) if is_debug_line(&line) => {}
                Ok(_) => count += 1,
                Err(_) => break,
            }
        }
        count
    }

    /// Sends the client's process `signal` (`STOP` freezes it as a hung device would, `CONT`
    /// lets it go on).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Kills the client without a DISCONNECT (as a crash or a lost network would).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `line` is mosquitto_sub's `-d` output rather than a message.
fn is_debug_line(line: &str) -> bool {
    line.starts_with("Client ") || line.starts_with("Subscribed")
}

impl Drop for MosquittoSub {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn_line_reader(stdout: ChildStdout) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Publishes `lines` with `mosquitto_pub -l ARGS` (one message per line, as fast as it goes)
/// and waits for it to finish. At QoS 1 or 2, keep to thousands of lines: Debian's
/// mosquitto_pub 2.0.11 exits at the end of its input without sending what it still queues.
pub fn mosquitto_pub_lines(args: &[&str], lines: impl Iterator<Item = String>) {
    let mut child = Command::new("mosquitto_pub")
        .args(args)
        .arg("-l")
        .stdin(Stdio::piped())
        .spawn()
        .expect("mosquitto_pub not found: run scripts/install-toolchain.sh");
    {
        let mut stdin = std::io::BufWriter::new(child.stdin.take().unwrap());
        for line in lines {
            writeln!(stdin, "{line}").unwrap();
        }
    }
    assert!(child.wait().unwrap().success(), "mosquitto_pub -l failed");
}

/// Runs `mosquitto_pub ARGS` to completion.
pub fn mosquitto_pub(args: &[&str]) -> std::process::Output {
    Command::new("mosquitto_pub")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("mosquitto_pub not found: run scripts/install-toolchain.sh")
}

/// Runs `tests/e2e/paho_probe.py --port PORT ARGS` (Eclipse Paho for Python) and returns the
/// JSON line it prints.
pub fn paho(port: u16, args: &[&str]) -> serde_json::Value {
    let output = Command::new("python3")
        .arg(repo("tests/e2e/paho_probe.py"))
        .args(["--port", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("python3 not found");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|_| {
        panic!(
            "paho_probe {args:?} printed no result:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Writes `contents` to `name` in `dir`, returning the path.
pub fn write_file(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// A path in the repository.
pub fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

/// Where scripts/build-modules.sh put the example modules.
pub fn modules_dir() -> String {
    repo("target/modules").display().to_string()
}

/// The value of the Prometheus sample `name{labels}` served on `port`.
pub fn metric(port: u16, sample: &str) -> Option<u64> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
}

/// Waits until `condition` holds on the metrics, checking as they change.
pub fn wait_for_metrics(port: u16, what: &str, condition: impl Fn(&dyn Fn(&str) -> u64) -> bool) {
    wait_for_metrics_within(port, PATIENCE, what, condition)
}

/// How many reloads of `what` ended with `outcome` (`weir_reloads_total`).
pub fn reloads(port: u16, what: &str, outcome: &str) -> u64 {
    metric(
        port,
        &format!(r#"weir_reloads_total{{what="{what}",outcome="{outcome}"}}"#),
    )
    .unwrap_or(0)
}

/// Waits until at least `count` reloads of `what` (`configuration`, `graph`, `certificate`,
/// `password_file`, `acl_file`) ended with `outcome` (`applied` or `refused`).
pub fn wait_for_reloads(port: u16, what: &str, outcome: &str, count: u64) {
    wait_for_metrics(port, &format!("{count} {what} reload(s) {outcome}"), |m| {
        m(&format!(
            r#"weir_reloads_total{{what="{what}",outcome="{outcome}"}}"#
        )) >= count
    })
}

/// Waits until exactly `count` persistent sessions are parked (`weir_sessions_offline`), as
/// they are once their clients have gone and before they expire.
pub fn wait_for_parked_sessions(port: u16, count: u64) {
    wait_for_metrics(port, &format!("{count} parked session(s)"), |m| {
        m("weir_sessions_offline") == count
    })
}

/// Waits at most `patience` until `condition` holds on the metrics.
pub fn wait_for_metrics_within(
    port: u16,
    patience: Duration,
    what: &str,
    condition: impl Fn(&dyn Fn(&str) -> u64) -> bool,
) {
    let deadline = Instant::now() + patience;
    loop {
        let read = |sample: &str| metric(port, sample).unwrap_or(0);
        if condition(&read) {
            return;
        }
        assert!(Instant::now() < deadline, "metrics never showed {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
