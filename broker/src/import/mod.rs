//! `weir config import-mosquitto`: a mosquitto.conf turned into the equivalent weir.yaml.
//!
//! Global settings map onto `broker:`; each `listener` starts a listener whose TLS and protocol
//! settings follow it, as in mosquitto; each `connection` starts a bridge ([`bridges`]). Paths are kept as written (relative ones resolve against
//! the new file's directory). Every directive without an equivalent is named in a comment at
//! the top of the output, with its line.

mod bridges;

use anyhow::Context;
use std::fmt::Write as _;
use std::path::Path;

/// One listener as mosquitto.conf describes it.
#[derive(Debug, Default)]
struct Listener {
    port: String,
    bind: Option<String>,
    websockets: bool,
    cert: Option<String>,
    key: Option<String>,
    ca: Option<String>,
    require_certificate: bool,
    use_identity_as_username: bool,
    max_inflight: Option<String>,
    max_payload: Option<String>,
}

/// What the file says, sorted into Weir's sections.
#[derive(Debug, Default)]
struct Imported {
    listeners: Vec<Listener>,
    allow_anonymous: Option<String>,
    password_file: Option<String>,
    acl_file: Option<String>,
    persistence: Option<bool>,
    persistence_location: Option<String>,
    autosave_interval: Option<String>,
    broker: Vec<(&'static str, String)>,
    max_connections: Option<String>,
    log_level: Option<&'static str>,
    bridges: Vec<bridges::Bridge>,
    queue_qos0: bool,
    unmapped: Vec<String>,
}

/// Reads mosquitto.conf at `path` and returns the weir.yaml text.
pub fn import(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let imported = parse(&text, &path.display().to_string());
    Ok(render(&imported))
}

fn parse(text: &str, file: &str) -> Imported {
    let mut out = Imported::default();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let directive = words.next().unwrap_or_default();
        let args: Vec<&str> = words.collect();
        let first = args.first().map(|s| s.to_string()).unwrap_or_default();
        let on = first == "true";
        if bridges::is_bridge_directive(directive) {
            if let Err(why) = bridges::apply(&mut out.bridges, directive, &args) {
                out.unmapped
                    .push(format!("{file}:{}: `{directive}`{why}", index + 1));
            }
            continue;
        }
        let listener = out.listeners.last_mut();
        match (directive, listener) {
            ("listener", _) => out.listeners.push(Listener {
                port: first,
                bind: args.get(1).map(|s| s.to_string()),
                ..Default::default()
            }),
            ("port", _) => out.listeners.push(Listener {
                port: first,
                ..Default::default()
            }),
            ("protocol", Some(l)) if first == "websockets" => l.websockets = true,
            ("protocol", Some(_)) if first == "mqtt" => {}
            ("certfile", Some(l)) => l.cert = Some(first),
            ("keyfile", Some(l)) => l.key = Some(first),
            ("cafile", Some(l)) => l.ca = Some(first),
            ("require_certificate", Some(l)) => l.require_certificate = on,
            ("use_identity_as_username", Some(l)) => l.use_identity_as_username = on,
            ("max_inflight_messages", Some(l)) => l.max_inflight = Some(first),
            ("message_size_limit", Some(l)) => l.max_payload = Some(first),
            ("max_connections", _) => out.max_connections = Some(first),
            ("allow_anonymous", _) => out.allow_anonymous = Some(first),
            ("password_file", _) => out.password_file = Some(first),
            ("acl_file", _) => out.acl_file = Some(first),
            ("persistence", _) => out.persistence = Some(on),
            ("persistence_location", _) => out.persistence_location = Some(first),
            ("autosave_interval", _) => out.autosave_interval = Some(first),
            ("max_queued_messages", _) => out.broker.push(("max_queued_messages", first)),
            ("max_queued_bytes", _) => out.broker.push(("max_queued_bytes", first)),
            ("queue_qos0_messages", _) => {
                out.queue_qos0 = on;
                out.broker.push(("queue_qos0_messages", first))
            }
            ("sys_interval", _) => out.broker.push(("sys_interval", first)),
            ("max_keepalive", _) => out.broker.push(("max_keepalive", first)),
            ("log_type", _) => out.log_level = Some(log_level(&args, out.log_level)),
            // Weir logs to standard error (and optionally OTLP): nothing to map.
            ("log_dest", _) if first == "stderr" || first == "stdout" => {}
            ("log_timestamp" | "connection_messages" | "set_tcp_nodelay", _) => {}
            (other, _) => {
                out.unmapped
                    .push(format!("{file}:{}: `{other}`{}", index + 1, why_not(other)))
            }
        }
    }
    out
}

/// Weir's log levels, least verbose first.
const LEVELS: [&str; 4] = ["error", "warn", "info", "debug"];

/// The `--log-level` the `log_type` lines ask for (the most verbose of them).
fn log_level(args: &[&str], previous: Option<&'static str>) -> &'static str {
    let rank = |level: &str| match level {
        "debug" | "all" => 3,
        "information" | "notice" | "subscribe" | "unsubscribe" => 2,
        "warning" => 1,
        _ => 0,
    };
    let before = previous
        .and_then(|p| LEVELS.iter().position(|l| *l == p))
        .unwrap_or(0);
    let asked = args.iter().map(|a| rank(a)).max().unwrap_or(0);
    LEVELS[asked.max(before)]
}

fn why_not(directive: &str) -> &'static str {
    match directive {
        "include_dir" => " (one file: merge the included ones into it)",
        "persistence_file" => " (the store is always weir.redb in the persistence directory)",
        "per_listener_settings" => " (a listener's own `auth:` overrides broker.auth)",
        "plugin" | "auth_plugin" | "plugin_opt" => " (plugins are not supported)",
        "log_dest" => " (Weir logs to standard error, and over OTLP with `telemetry.otlp`)",
        "user" => " (run weir as the user you want)",
        "pid_file" => " (service managers track the process)",
        _ => "",
    }
}

fn render(imported: &Imported) -> String {
    let mut out = String::from(
        "# weir.yaml imported from mosquitto.conf by `weir config import-mosquitto`\n",
    );
    if let Some(level) = imported.log_level {
        let _ = writeln!(
            out,
            "# logging: run `weir run --log-level {level}` (mosquitto's log_type)"
        );
    }
    for unmapped in &imported.unmapped {
        let _ = writeln!(out, "# not imported: {unmapped}");
    }
    out.push_str("broker:\n");
    if let Some(max) = &imported.max_connections {
        if max != "-1" {
            let _ = writeln!(out, "  router:\n    max_connections: {max}");
        }
    }
    for (key, value) in &imported.broker {
        let _ = writeln!(out, "  {key}: {value}");
    }
    render_auth(&mut out, imported);
    render_persistence(&mut out, imported);
    out.push_str("  listeners:\n");
    if imported.listeners.is_empty() {
        // mosquitto 2.0 without a listener: port 1883 on this machine only.
        out.push_str("    - protocol: mqtt\n      address: 127.0.0.1:1883\n");
    }
    for listener in &imported.listeners {
        render_listener(&mut out, listener);
    }
    bridges::render(&mut out, &imported.bridges, imported.queue_qos0);
    out
}

fn render_auth(out: &mut String, imported: &Imported) {
    if imported.allow_anonymous.is_none()
        && imported.password_file.is_none()
        && imported.acl_file.is_none()
    {
        return;
    }
    out.push_str("  auth:\n");
    // mosquitto 2.0 refuses anonymous clients unless told otherwise.
    let anonymous = imported.allow_anonymous.as_deref().unwrap_or("false");
    let _ = writeln!(out, "    allow_anonymous: {anonymous}");
    if let Some(file) = &imported.password_file {
        let _ = writeln!(out, "    password_file: {}", quoted(file));
    }
    if let Some(file) = &imported.acl_file {
        let _ = writeln!(out, "    acl_file: {}", quoted(file));
    }
}

fn render_persistence(out: &mut String, imported: &Imported) {
    match imported.persistence {
        Some(true) => {
            out.push_str("  persistence:\n");
            if let Some(path) = &imported.persistence_location {
                let _ = writeln!(out, "    path: {}", quoted(path));
            }
            if let Some(every) = &imported.autosave_interval {
                let _ = writeln!(out, "    autosave_interval_s: {every}");
            }
        }
        _ => out.push_str("  persistence: off\n"),
    }
}

fn render_listener(out: &mut String, listener: &Listener) {
    let protocol = if listener.websockets {
        "websockets"
    } else {
        "mqtt"
    };
    let bind = listener.bind.as_deref().unwrap_or("0.0.0.0");
    let _ = writeln!(out, "    - protocol: {protocol}");
    let _ = writeln!(
        out,
        "      address: {}",
        quoted(&format!("{bind}:{}", listener.port))
    );
    if let (Some(cert), Some(key)) = (&listener.cert, &listener.key) {
        let _ = writeln!(
            out,
            "      tls:\n        cert: {}\n        key: {}",
            quoted(cert),
            quoted(key)
        );
        if let Some(ca) = &listener.ca {
            let _ = writeln!(out, "        ca: {}", quoted(ca));
        }
        if listener.require_certificate {
            out.push_str("        require_certificate: true\n");
        }
        if listener.use_identity_as_username {
            out.push_str("        use_identity_as_username: true\n");
        }
    }
    if listener.max_inflight.is_some() || listener.max_payload.is_some() {
        out.push_str("      limits:\n");
        if let Some(inflight) = &listener.max_inflight {
            let _ = writeln!(out, "        max_inflight_count: {inflight}");
        }
        if let Some(payload) = &listener.max_payload {
            let _ = writeln!(out, "        max_payload_size: {payload}");
        }
    }
}

/// A YAML scalar in single quotes.
fn quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_take_the_tls_settings_that_follow_them() {
        let imported = parse(
            "listener 1883 127.0.0.1\nlistener 8883\ncertfile s.pem\nkeyfile s.key\ncafile ca.pem\nrequire_certificate true\nlistener 8080\nprotocol websockets\nbridge_cafile x\n",
            "m.conf",
        );
        let yaml = render(&imported);
        assert!(yaml.contains("address: '127.0.0.1:1883'"), "{yaml}");
        assert!(
            yaml.contains("address: '0.0.0.0:8883'\n      tls:\n        cert: 's.pem'"),
            "{yaml}"
        );
        assert!(yaml.contains("require_certificate: true"), "{yaml}");
        assert!(
            yaml.contains("- protocol: websockets\n      address: '0.0.0.0:8080'"),
            "{yaml}"
        );
        assert!(
            yaml.contains("# not imported: m.conf:9: `bridge_cafile` (a bridge directive before any `connection`)"),
            "{yaml}"
        );
    }
}
