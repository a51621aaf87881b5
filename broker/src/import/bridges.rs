//! mosquitto's bridge directives (`connection` and what follows it) as entries of `bridges:`.
//! Every directive of mosquitto 2.0's bridges maps onto a key, except the pre-shared keys
//! (`bridge_identity`, `bridge_psk`: rustls has no TLS-PSK) and `bridge_require_ocsp`, which
//! are named in the output with their line.

use super::quoted;
use std::fmt::Write as _;

/// One bridge as mosquitto.conf describes it.
#[derive(Debug, Default)]
pub(super) struct Bridge {
    name: String,
    addresses: Vec<String>,
    /// Keys of the bridge itself, rendered values, in the order they came.
    keys: Vec<(&'static str, String)>,
    tls: Vec<(&'static str, String)>,
    topics: Vec<String>,
}

/// Whether `directive` belongs to a bridge.
pub(super) fn is_bridge_directive(directive: &str) -> bool {
    matches!(
        directive,
        "connection"
            | "address"
            | "addresses"
            | "round_robin"
            | "topic"
            | "cleansession"
            | "local_cleansession"
            | "bridge_protocol_version"
            | "remote_clientid"
            | "clientid"
            | "remote_username"
            | "username"
            | "remote_password"
            | "password"
            | "local_clientid"
            | "local_username"
            | "local_password"
            | "try_private"
            | "notifications"
            | "notification_topic"
            | "notifications_local_only"
            | "restart_timeout"
            | "keepalive_interval"
            | "start_type"
            | "threshold"
            | "idle_timeout"
            | "bridge_cafile"
            | "bridge_capath"
            | "bridge_certfile"
            | "bridge_keyfile"
            | "bridge_insecure"
            | "bridge_tls_version"
            | "bridge_alpn"
            | "bridge_outgoing_retain"
            | "bridge_max_packet_size"
            | "bridge_attempt_unsubscribe"
            | "bridge_bind_address"
            | "bridge_identity"
            | "bridge_psk"
            | "bridge_require_ocsp"
    )
}

/// Applies `directive` to the bridges; `Err` with the reason when it has no equivalent.
pub(super) fn apply(
    bridges: &mut Vec<Bridge>,
    directive: &str,
    args: &[&str],
) -> Result<(), &'static str> {
    if directive == "connection" {
        bridges.push(Bridge {
            name: args.first().copied().unwrap_or("bridge").to_string(),
            ..Default::default()
        });
        return Ok(());
    }
    let Some(bridge) = bridges.last_mut() else {
        return Err(" (a bridge directive before any `connection`)");
    };
    let first = args.first().copied().unwrap_or_default().to_string();
    let key =
        |bridge: &mut Bridge, key: &'static str, value: String| bridge.keys.push((key, value));
    let tls = |bridge: &mut Bridge, key: &'static str, value: String| bridge.tls.push((key, value));
    match directive {
        "address" | "addresses" => bridge.addresses.extend(args.iter().map(|a| a.to_string())),
        "round_robin" => key(bridge, "round_robin", first),
        "topic" => bridge.topics.push(topic_line(args)),
        "cleansession" => key(bridge, "clean_start", first),
        "bridge_protocol_version" => key(bridge, "protocol", protocol(&first)),
        "remote_clientid" | "clientid" => key(bridge, "client_id", quoted(&first)),
        "remote_username" | "username" => key(bridge, "username", quoted(&first)),
        "remote_password" | "password" => key(bridge, "password", quoted(&first)),
        "local_clientid" => key(bridge, "local_client_id", quoted(&first)),
        "local_username" => key(bridge, "local_username", quoted(&first)),
        "local_password" => key(bridge, "local_password", quoted(&first)),
        "try_private" => key(bridge, "try_private", first),
        "notifications" => key(bridge, "notifications", first),
        "notification_topic" => key(bridge, "notification_topic", quoted(&first)),
        "notifications_local_only" => key(bridge, "notifications_local_only", first),
        "restart_timeout" => key(bridge, "restart_timeout_s", restart_timeout(args)),
        "keepalive_interval" => key(bridge, "keepalive_s", first),
        "start_type" => key(bridge, "start", first),
        "threshold" => key(bridge, "threshold", first),
        "idle_timeout" => key(bridge, "idle_timeout_s", first),
        "bridge_outgoing_retain" => key(bridge, "outgoing_retain", first),
        "bridge_max_packet_size" => key(bridge, "max_packet_size", first),
        "bridge_attempt_unsubscribe" => key(bridge, "attempt_unsubscribe", first),
        "bridge_bind_address" => key(bridge, "bind_address", quoted(&first)),
        "local_cleansession" => key(bridge, "local_clean_start", first),
        "bridge_cafile" => tls(bridge, "ca", quoted(&first)),
        "bridge_capath" => tls(bridge, "capath", quoted(&first)),
        "bridge_certfile" => tls(bridge, "cert", quoted(&first)),
        "bridge_keyfile" => tls(bridge, "key", quoted(&first)),
        "bridge_insecure" => tls(bridge, "insecure", first),
        "bridge_tls_version" => tls(bridge, "version", quoted(&first)),
        "bridge_alpn" => tls(bridge, "alpn", quoted(&first)),
        "bridge_identity" | "bridge_psk" => {
            return Err(" (TLS with pre-shared keys: rustls does not offer it; use certificates, `bridge_cafile`)")
        }
        "bridge_require_ocsp" => {
            return Err(" (OCSP stapling is not checked; the certificate chain is verified)")
        }
        _ => return Err(""),
    }
    Ok(())
}

/// `topic pattern [[[out | in | both] qos] local-prefix remote-prefix]` as a flow map.
fn topic_line(args: &[&str]) -> String {
    let word = |i: usize| {
        args.get(i)
            .map(|a| if *a == "\"\"" { "" } else { a })
            .unwrap_or_default()
    };
    let mut line = format!("{{ pattern: {}", quoted(word(0)));
    if let Some(direction) = args.get(1) {
        let _ = write!(line, ", direction: {direction}");
    }
    if let Some(qos) = args.get(2) {
        let _ = write!(line, ", qos: {qos}");
    }
    if args.len() > 3 {
        let _ = write!(
            line,
            ", local_prefix: {}, remote_prefix: {}",
            quoted(word(3)),
            quoted(word(4))
        );
    }
    line.push_str(" }");
    line
}

fn protocol(version: &str) -> String {
    match version {
        "mqttv31" => "'3.1'",
        "mqttv50" => "'5'",
        _ => "'3.1.1'",
    }
    .to_string()
}

fn restart_timeout(args: &[&str]) -> String {
    match args {
        [base, cap, ..] => format!("[{base}, {cap}]"),
        [constant] => constant.to_string(),
        [] => "[5, 30]".to_string(),
    }
}

/// Writes `bridges:`; `queue_qos0` is mosquitto's global `queue_qos0_messages`, which applies
/// to bridges too.
pub(super) fn render(out: &mut String, bridges: &[Bridge], queue_qos0: bool) {
    if bridges.is_empty() {
        return;
    }
    out.push_str("bridges:\n");
    for bridge in bridges {
        let _ = writeln!(out, "  - name: {}", quoted(&bridge.name));
        let addresses: Vec<String> = bridge.addresses.iter().map(|a| quoted(a)).collect();
        let _ = writeln!(out, "    addresses: [{}]", addresses.join(", "));
        for (key, value) in &bridge.keys {
            let _ = writeln!(out, "    {key}: {value}");
        }
        if !bridge.tls.is_empty() {
            out.push_str("    tls:\n");
            for (key, value) in &bridge.tls {
                let _ = writeln!(out, "      {key}: {value}");
            }
        }
        out.push_str("    topics:\n");
        for topic in &bridge.topics {
            let _ = writeln!(out, "      - {topic}");
        }
        if queue_qos0 {
            out.push_str("    queue: { qos0: true }\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_lines_keep_their_prefixes() {
        assert_eq!(
            topic_line(&["sensors/#", "out", "1", "\"\"", "plant1/"]),
            "{ pattern: 'sensors/#', direction: out, qos: 1, local_prefix: '', remote_prefix: 'plant1/' }"
        );
        assert_eq!(topic_line(&["#"]), "{ pattern: '#' }");
    }

    #[test]
    fn psk_is_named_as_unsupported() {
        let mut bridges = Vec::new();
        apply(&mut bridges, "connection", &["cloud"]).unwrap();
        assert!(apply(&mut bridges, "bridge_psk", &["00ff"]).is_err());
        apply(&mut bridges, "address", &["a:1883", "b"]).unwrap();
        assert_eq!(bridges[0].addresses, ["a:1883", "b"]);
    }
}
