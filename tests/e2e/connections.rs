//! Many connections: ten thousand idle MQTT clients held open at once, the broker serving
//! others meanwhile, and every one accounted for when they go.

use super::harness::{metric, mosquitto_pub, wait_for_metrics_within, MosquittoSub, Weir};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const IDLE: usize = 10_000;

/// Threads opening connections at once.
const OPENERS: usize = 4;

/// Connects as MQTT 3.1.1 client `id` (clean session, keep-alive 600 s); returns the socket
/// and the CONNACK.
fn connect(port: u16, id: &str) -> std::io::Result<(TcpStream, [u8; 4])> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut body = vec![0, 4];
    body.extend_from_slice(b"MQTT");
    body.extend_from_slice(&[4, 0x02, 0x02, 0x58]);
    body.extend_from_slice(&(id.len() as u16).to_be_bytes());
    body.extend_from_slice(id.as_bytes());
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend_from_slice(&body);
    stream.write_all(&packet)?;
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack)?;
    Ok((stream, connack))
}

/// Ten thousand clients with the default connection limit (none configured): Weir takes what
/// the open file limit allows, as mosquitto does, where it once refused the 1,001st.
#[test]
fn ten_thousand_idle_connections_are_held_while_the_broker_goes_on_delivering() {
    // This process holds one end of every connection (weir raises its own limit).
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap();
    assert!(
        limit as usize > IDLE + 256,
        "the open file limit ({limit}) is too low"
    );
    let (weir, metrics) = Weir::start_with_metrics(|v4, v5, metrics| {
        format!(
            "broker:\n  listeners:\n    - {{protocol: mqtt, address: '127.0.0.1:{v4}'}}\n    - {{protocol: mqtt, address: '127.0.0.1:{v5}'}}\nmetrics: {{listen: '127.0.0.1:{metrics}'}}\n"
        )
    });
    let said = format!(
        "clients: up to {} at once (the open file limit, {limit},",
        limit - 256
    );
    assert!(
        weir.log().contains(&said),
        "the log says the limit: {}",
        weir.log()
    );
    let port = weir.v4;
    let openers: Vec<_> = (0..OPENERS)
        .map(|opener| {
            std::thread::spawn(move || {
                (opener..IDLE)
                    .step_by(OPENERS)
                    .map(|n| connect(port, &format!("idle-{n}")))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut held = Vec::with_capacity(IDLE);
    for opener in openers {
        for result in opener.join().unwrap() {
            let (stream, connack) = result.expect("a connection failed");
            assert_eq!(connack, [0x20, 2, 0, 0], "refused");
            held.push(stream);
        }
    }
    assert_eq!(held.len(), IDLE);
    assert_eq!(metric(metrics, "weir_clients_connected"), Some(IDLE as u64));
    // With all of them open, other clients are served as usual.
    let port = port.to_string();
    let mut sub = MosquittoSub::start(&["-p", &port, "-t", "busy/#", "-q", "1"]);
    let out = mosquitto_pub(&["-p", &port, "-t", "busy/x", "-q", "1", "-m", "still here"]);
    assert!(out.status.success());
    assert_eq!(sub.next_message(), "still here");
    sub.kill();
    // Every idle client that goes is accounted for.
    drop(held);
    wait_for_metrics_within(
        metrics,
        Duration::from_secs(60),
        "every idle client gone",
        |read| read("weir_clients_connected") == 0,
    );
}
