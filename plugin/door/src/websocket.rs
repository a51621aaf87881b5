//! MQTT over WebSocket, as mosquitto's `protocol websockets` serves it: an HTTP upgrade on path
//! `/` or `/mqtt` with subprotocol `mqtt` (or the older `mqttv3.1`; none offered is accepted
//! too), then MQTT packets in binary frames, one or several per frame or one across several.
//!
//! After the handshake the frames are turned back into a byte stream (a bounded in-memory pipe
//! and a task moving bytes both ways), so that a WebSocket connection is served by exactly the
//! same code as a TCP one.

use super::config::ListenerConfig;
use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The paths a client may ask for.
const PATHS: [&str; 2] = ["/", "/mqtt"];

/// The subprotocols served, in order of preference.
const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];

/// Bytes the pipe between the frames and the connection holds each way.
const PIPE: usize = 64 * 1024;

/// Upgrades `stream` to a WebSocket (within the listener's connect timeout) and returns the
/// MQTT byte stream it carries; `None` when the handshake failed (logged).
pub(super) async fn upgrade<S>(
    stream: S,
    listener: &ListenerConfig,
    peer: SocketAddr,
) -> Option<DuplexStream>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // A frame holds at most one packet of the largest size accepted, or several small ones.
    let largest = (listener.max_packet_size as usize)
        .saturating_mul(2)
        .max(PIPE);
    let config = WebSocketConfig::default()
        .max_message_size(Some(largest))
        .max_frame_size(Some(largest));
    let handshake =
        tokio_tungstenite::accept_hdr_async_with_config(stream, choose_subprotocol, Some(config));
    let socket = match tokio::time::timeout(listener.connect_timeout, handshake).await {
        Ok(Ok(socket)) => socket,
        Ok(Err(e)) => {
            tracing::info!(listener = %listener.name, %peer, "WebSocket handshake failed: {e}");
            return None;
        }
        Err(_) => {
            tracing::info!(listener = %listener.name, %peer, "WebSocket handshake timed out");
            return None;
        }
    };
    let (connection_end, frames_end) = tokio::io::duplex(PIPE);
    tokio::spawn(carry(socket, frames_end));
    Some(connection_end)
}

/// The handshake's answer: refuses other paths (404) and a client offering only subprotocols
/// other than MQTT's (400); names the subprotocol chosen.
#[allow(clippy::result_large_err)] // the signature tungstenite's handshake calls
fn choose_subprotocol(
    request: &Request,
    mut response: Response,
) -> Result<Response, ErrorResponse> {
    if !PATHS.contains(&request.uri().path()) {
        return Err(refusal(
            StatusCode::NOT_FOUND,
            format!("MQTT is served on {} only", PATHS.join(" and ")),
        ));
    }
    let offered: Vec<&str> = request
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    if offered.is_empty() {
        return Ok(response);
    }
    match SUBPROTOCOLS.iter().find(|p| offered.contains(p)) {
        Some(chosen) => {
            response
                .headers_mut()
                .insert("sec-websocket-protocol", HeaderValue::from_static(chosen));
            Ok(response)
        }
        None => Err(refusal(
            StatusCode::BAD_REQUEST,
            format!("subprotocol {} expected", SUBPROTOCOLS.join(" or ")),
        )),
    }
}

fn refusal(status: StatusCode, why: String) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(why));
    *response.status_mut() = status;
    response
}

/// Moves bytes between the WebSocket and the connection's end of the pipe until either side
/// ends, then ends the other.
async fn carry<S>(socket: WebSocketStream<S>, pipe: DuplexStream)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut frames_out, mut frames_in) = socket.split();
    let (mut from_connection, mut to_connection) = tokio::io::split(pipe);
    let inward = async {
        while let Some(Ok(message)) = frames_in.next().await {
            match message {
                Message::Binary(data) => {
                    if to_connection.write_all(&data).await.is_err() {
                        break;
                    }
                }
                Message::Close(_) => break,
                // Pings are answered by the WebSocket layer; MQTT travels in binary frames
                // only, so a text frame ends the connection (as mosquitto does).
                Message::Text(_) => break,
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
        let _ = to_connection.shutdown().await;
    };
    let outward = async {
        let mut buf = BytesMut::with_capacity(PIPE);
        loop {
            match from_connection.read_buf(&mut buf).await {
                Ok(n) if n > 0 => {
                    let frame = Message::Binary(buf.split().freeze());
                    if frames_out.send(frame).await.is_err() {
                        return;
                    }
                    buf.reserve(PIPE);
                }
                _ => break,
            }
        }
        let _ = frames_out.send(Message::Close(None)).await;
        let _ = frames_out.close().await;
    };
    // Whichever way ends first ends the connection: the client closed (the connection reads
    // its end) or the connection closed (the client gets a Close frame).
    tokio::select! {
        () = inward => {}
        () = outward => {}
    }
}
