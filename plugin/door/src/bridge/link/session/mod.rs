//! One connection of a bridge to its remote, from CONNECT to its end.
//!
//! Once the remote accepted the bridge, the session subscribes to the `in` topics, says it is
//! up, and streams the queue: QoS 1 and 2 messages within the in-flight window (the lower of
//! `max_inflight` and the remote's receive maximum), in order, from memory while it keeps up
//! and from disk after an outage, each leaving the queue when the remote acknowledges it; QoS 0
//! messages as they come. What the remote sends on the `in` topics goes to the bridge's local
//! publisher and is acknowledged once handed over. A keep-alive ping goes out when the link
//! has been quiet for half the keep-alive, and a link silent for a whole keep-alive is dead.

mod inward;
mod leaving;
mod lifecycle;
mod outward;

use super::window::Window;
use super::{Link, LinkState, PRIMARY_PROBE};
use crate::bridge::client::wire::{BridgeWire, ConnAck, ConnectParams, FromRemote};
use crate::bridge::client::{dial, Stream};
use crate::bridge::config::{Address, Start};
use crate::bridge::local::Incoming;
use crate::bridge::metrics::ConnectResult;
use crate::bridge::queue::{QueueError, Queued, Stored};
use bytes::{Bytes, BytesMut};
use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long a connection (TCP, TLS, CONNECT to CONNACK) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes written ahead of the socket before the session stops taking more from the queue.
const OUT_HIGH: usize = 256 * 1024;
/// Messages from the remote handed to the local publisher and not yet acknowledged, past
/// which the session stops reading its socket.
const IN_HIGH: usize = 1000;
/// Messages read from disk at a time.
const DISK_BATCH: usize = 2048;
/// QoS 2 messages in flight at most on an MQTT 3 link, whose remote cannot announce a receive
/// maximum: below mosquitto's `max_inflight_messages` (20), past which it disconnects a
/// client; a QoS 2 message holds its place there until its PUBREL.
const V3_QOS2_INFLIGHT: u16 = 16;

/// Messages from the remote handed over: (packet id, QoS) each, in order.
type Acks = Vec<(u16, u8)>;

/// How a session ended.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Stopped (a clean disconnect).
    Stopped,
    /// Idle past the lazy start's timeout (a clean disconnect).
    Idle,
    /// The primary answers again (a clean disconnect from the secondary).
    Primary,
    /// The remote refused the bridge bit: try again at once without it.
    RetryPlain,
    /// Never connected: why.
    Failed(String),
    /// Connected, then lost: why.
    Lost(String),
}

/// Connects to `address` (the `index`th) and serves the connection until it ends.
pub(super) async fn run(
    link: &Link,
    address: &Address,
    index: usize,
    state: &mut LinkState,
) -> Outcome {
    let config = &link.config;
    let failed = |why: String| {
        link.metrics.count_connect(ConnectResult::Failed);
        Outcome::Failed(why)
    };
    let stream = match dial(
        address,
        config.bind_address,
        link.tls.clone(),
        CONNECT_TIMEOUT,
    )
    .await
    {
        Ok(stream) => stream,
        Err(e) => return failed(e.to_string()),
    };
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut wire = BridgeWire::new(config.protocol, config.max_packet_size.unwrap_or(0));
    let bridge_bit = state.try_private && !config.protocol.is_v5();
    let mut out = BytesMut::new();
    if let Err(e) = wire.connect(&connect_params(link, bridge_bit), &mut out) {
        return failed(format!("CONNECT cannot be written: {e}"));
    }
    if let Err(e) = writer.write_all(&out).await {
        return failed(format!("{address}: {e}"));
    }
    let mut inbuf = BytesMut::with_capacity(4096);
    let connack = match read_connack(&mut reader, &mut wire, &mut inbuf).await {
        Ok(connack) => connack,
        Err(why) => return failed(format!("{address}: {why}")),
    };
    if connack.code != 0 {
        link.metrics.count_connect(ConnectResult::Refused);
        if bridge_bit && connack.refused_version() {
            tracing::info!(bridge = %config.name, "{address} refused the bridge protocol level (try_private): connecting as a plain client");
            state.try_private = false;
            return Outcome::RetryPlain;
        }
        let reason = connack
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        return Outcome::Failed(format!(
            "{address} refused the connection: CONNACK {:#04x} ({}){reason}",
            connack.code,
            connack.meaning(config.protocol)
        ));
    }
    link.metrics.count_connect(ConnectResult::Success);
    link.connected(state, address);
    let mut session = Session::new(link, wire, &connack, index, state.sent_before);
    let outcome = session.serve(reader, writer, inbuf).await;
    state.sent_before = state.sent_before.max(session.sent_before);
    session.disconnected();
    outcome
}

fn connect_params(link: &Link, bridge_bit: bool) -> ConnectParams {
    let config = &link.config;
    let remote_will = config.notifications.enabled && !config.notifications.local_only;
    ConnectParams {
        client_id: config.client_id.clone(),
        clean_start: config.clean_start,
        keep_alive: config.keepalive_s,
        username: config.username.clone(),
        password: config.password.as_ref().map(|p| p.0.clone()),
        will: remote_will.then(|| (config.notification_topic(), Bytes::from_static(b"0"))),
        bridge: bridge_bit,
        receive_maximum: config.max_inflight,
        max_packet_size: config.max_packet_size,
    }
}

/// Reads until the CONNACK (or fails: closed, timed out, another packet).
async fn read_connack(
    reader: &mut ReadHalf<Box<dyn Stream>>,
    wire: &mut BridgeWire,
    inbuf: &mut BytesMut,
) -> Result<ConnAck, String> {
    let read = async {
        loop {
            match wire.decode(inbuf) {
                Ok(Some(FromRemote::ConnAck(connack))) => return Ok(connack),
                Ok(Some(other)) => return Err(format!("expected CONNACK, got {other:?}")),
                Ok(None) => {}
                Err(e) => return Err(format!("malformed CONNACK: {e}")),
            }
            match reader.read_buf(inbuf).await {
                Ok(0) => return Err("the connection closed before CONNACK".to_string()),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, read)
        .await
        .unwrap_or_else(|_| Err(format!("no CONNACK within {CONNECT_TIMEOUT:?}")))
}

/// What happened while the session waited.
enum Event {
    Stop,
    Leave,
    /// Time to look again whether leaving or stopping is done.
    Check,
    Wrote(std::io::Result<usize>),
    Read(std::io::Result<usize>),
    Marked(u64),
    Delivered(Vec<(u16, u8)>),
    FromDisk(Result<Vec<Stored>, QueueError>),
    Queued,
    Tick,
}

/// A connected session.
struct Session<'a> {
    link: &'a Link,
    wire: BridgeWire,
    out: BytesMut,
    window: Window,
    /// The next message to send.
    cursor: u64,
    /// Messages taken from the queue, not yet sent.
    staged: VecDeque<Stored>,
    qos0: VecDeque<Queued>,
    disk: Option<JoinHandle<Result<Vec<Stored>, QueueError>>>,
    session_present: bool,
    /// Messages below this one may have been sent before: they go with DUP.
    dup_below: u64,
    sent_before: u64,
    max_qos: u8,
    retain_out: bool,
    keep_alive: Duration,
    index: usize,
    marked: (mpsc::UnboundedSender<u64>, mpsc::UnboundedReceiver<u64>),
    delivered: (mpsc::UnboundedSender<Acks>, mpsc::UnboundedReceiver<Acks>),
    incoming: Vec<Incoming>,
    in_flight_in: usize,
    awaiting_release: HashSet<u16>,
    subscribed: Vec<(u16, Vec<String>)>,
    /// Messages the remote has, to leave the queue at the end of this turn.
    removed: Vec<crate::bridge::queue::Removed>,
    last_received: Instant,
    last_sent: Instant,
    last_activity: Instant,
    ping_sent: Option<Instant>,
    probe: Option<JoinHandle<bool>>,
    next_probe: Instant,
    refusals_logged: u64,
    /// Leaving the shared subscriptions, once asked or stopping.
    leaving: Option<leaving::Leaving>,
    /// Stopping: what is queued for the remote goes out first, until this deadline.
    stopping: Option<Instant>,
}

impl<'a> Session<'a> {
    fn new(
        link: &'a Link,
        mut wire: BridgeWire,
        connack: &ConnAck,
        index: usize,
        sent_before: u64,
    ) -> Session<'a> {
        let config = &link.config;
        let window = connack
            .receive_maximum
            .map_or(config.max_inflight, |r| r.min(config.max_inflight));
        if let Some(max) = connack.max_packet_size {
            wire.set_max_out(max);
        }
        let qos2_window = match connack.receive_maximum {
            Some(_) => window,
            None => window.min(V3_QOS2_INFLIGHT),
        };
        let keep_alive = connack.server_keep_alive.unwrap_or(config.keepalive_s);
        let now = Instant::now();
        Session {
            link,
            wire,
            out: BytesMut::with_capacity(8192),
            window: Window::new(usize::from(window), usize::from(qos2_window)),
            cursor: link.queue.first(),
            staged: VecDeque::new(),
            qos0: VecDeque::new(),
            disk: None,
            session_present: connack.session_present,
            dup_below: sent_before,
            sent_before,
            max_qos: connack.max_qos,
            retain_out: config.outgoing_retain && connack.retain_available,
            keep_alive: Duration::from_secs(u64::from(keep_alive)),
            index,
            marked: mpsc::unbounded_channel(),
            delivered: mpsc::unbounded_channel(),
            incoming: Vec::new(),
            in_flight_in: 0,
            awaiting_release: HashSet::new(),
            subscribed: Vec::new(),
            removed: Vec::new(),
            last_received: now,
            last_sent: now,
            last_activity: now,
            ping_sent: None,
            probe: None,
            next_probe: now + PRIMARY_PROBE,
            refusals_logged: 0,
            leaving: None,
            stopping: None,
        }
    }

    async fn serve(
        &mut self,
        mut reader: ReadHalf<Box<dyn Stream>>,
        mut writer: WriteHalf<Box<dyn Stream>>,
        mut inbuf: BytesMut,
    ) -> Outcome {
        self.connected();
        let mut tick = tokio::time::interval(self.tick_period());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Packets that came with the CONNACK.
        if let Some(outcome) = self.handle_buffered(&mut inbuf) {
            return outcome;
        }
        loop {
            self.fill();
            self.flush_removed();
            let event = self
                .next_event(&mut reader, &mut writer, &mut inbuf, &mut tick)
                .await;
            let outcome = match event {
                Event::Stop => {
                    self.start_stopping();
                    None
                }
                Event::Leave => {
                    self.start_leaving();
                    None
                }
                Event::Check => None,
                Event::Wrote(Ok(_)) => None,
                Event::Wrote(Err(e)) => Some(Outcome::Lost(e.to_string())),
                Event::Read(Ok(0)) => {
                    Some(Outcome::Lost("the remote closed the connection".into()))
                }
                Event::Read(Ok(_)) => {
                    self.last_received = Instant::now();
                    self.ping_sent = None;
                    self.handle_buffered(&mut inbuf)
                }
                Event::Read(Err(e)) => Some(Outcome::Lost(e.to_string())),
                Event::Marked(seq) => {
                    self.release(seq);
                    None
                }
                Event::Delivered(acks) => {
                    self.acknowledge_incoming(acks);
                    None
                }
                Event::FromDisk(read) => self.read_from_disk(read),
                Event::Queued => None,
                Event::Tick => self.tick(),
            };
            let outcome = outcome.or_else(|| self.ending());
            if let Some(outcome) = outcome {
                if matches!(outcome, Outcome::Stopped | Outcome::Idle | Outcome::Primary) {
                    self.say_goodbye(&mut writer).await;
                }
                return outcome;
            }
        }
    }

    async fn next_event(
        &mut self,
        reader: &mut ReadHalf<Box<dyn Stream>>,
        writer: &mut WriteHalf<Box<dyn Stream>>,
        inbuf: &mut BytesMut,
        tick: &mut tokio::time::Interval,
    ) -> Event {
        let reading = self.in_flight_in < IN_HIGH;
        let wants_queue = self.wants_queue();
        let link = self.link;
        let stopping = self.stopping.is_some();
        let leaving = self.leaving.is_some();
        let ending = self.ending_pending();
        let disk = async {
            match self.disk.as_mut() {
                Some(handle) => handle.await.unwrap_or(Err(QueueError::Closed)),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = link.stop.cancelled(), if !stopping => Event::Stop,
            _ = link.leave.asked.cancelled(), if !leaving => Event::Leave,
            written = writer.write_buf(&mut self.out), if !self.out.is_empty() => Event::Wrote(written),
            read = reader.read_buf(inbuf), if reading => Event::Read(read),
            Some(seq) = self.marked.1.recv() => Event::Marked(seq),
            Some(acks) = self.delivered.1.recv() => Event::Delivered(acks),
            read = disk => Event::FromDisk(read),
            _ = link.queue.committed_past(self.cursor), if wants_queue => Event::Queued,
            _ = link.volatile.added(), if self.out.len() < OUT_HIGH => Event::Queued,
            _ = tick.tick() => Event::Tick,
            _ = tokio::time::sleep(leaving::ENDING_CHECK), if ending => Event::Check,
        }
    }

    fn tick_period(&self) -> Duration {
        let quarter = self.keep_alive / 4;
        if quarter.is_zero() {
            PRIMARY_PROBE
        } else {
            quarter.clamp(Duration::from_millis(100), PRIMARY_PROBE)
        }
    }

    /// Whether the session would take more from the queue now.
    fn wants_queue(&self) -> bool {
        self.window.has_room()
            && self.out.len() < OUT_HIGH
            && self.disk.is_none()
            && self.staged.is_empty()
    }

    /// Keep-alive, lazy start's idle timeout, and the primary's probe.
    fn tick(&mut self) -> Option<Outcome> {
        let now = Instant::now();
        if !self.keep_alive.is_zero() {
            let half = self.keep_alive / 2;
            if self.ping_sent.is_some() && now - self.last_received >= self.keep_alive {
                return Some(Outcome::Lost(format!(
                    "nothing from the remote for {:?} (keep-alive)",
                    self.keep_alive
                )));
            }
            let quiet = now - self.last_received >= half || now - self.last_sent >= half;
            if self.ping_sent.is_none() && quiet {
                self.wire.pingreq(&mut self.out);
                self.ping_sent = Some(now);
                self.mark_sent(false);
            }
        }
        if let Start::Lazy { idle_timeout, .. } = self.link.config.start {
            let idle = self.window.is_empty()
                && self.link.queue.is_empty()
                && self.link.volatile.is_empty()
                && self.in_flight_in == 0;
            if idle && now - self.last_activity >= idle_timeout {
                return Some(Outcome::Idle);
            }
        }
        self.probe_primary(now)
    }

    /// While on a secondary address (`round_robin: false`), checks every [`PRIMARY_PROBE`]
    /// whether the primary accepts connections.
    fn probe_primary(&mut self, now: Instant) -> Option<Outcome> {
        let config = &self.link.config;
        if config.round_robin || self.index == 0 {
            return None;
        }
        if let Some(probe) = &self.probe {
            if !probe.is_finished() {
                return None;
            }
            let probe = self.probe.take()?;
            let answered = futures_util::FutureExt::now_or_never(probe)
                .and_then(Result::ok)
                .unwrap_or(false);
            if answered {
                return Some(Outcome::Primary);
            }
        }
        if now >= self.next_probe {
            self.next_probe = now + PRIMARY_PROBE;
            let primary = config.addresses[0].clone();
            let bind = config.bind_address;
            self.probe = Some(tokio::spawn(async move {
                dial(&primary, bind, None, Duration::from_secs(2))
                    .await
                    .is_ok()
            }));
        }
        None
    }
}
