//! Stopping `weir run`: on SIGTERM or Ctrl-C, in this order,
//! 1. stop accepting connections and stop reading from clients (so graphs get no new input,
//!    and a publish not yet read is not acknowledged: its client sends it again to the next
//!    broker);
//!    bridges leave their shared subscriptions (`$share/...`): the remote answers their
//!    UNSUBSCRIBE and what it had sent is handed over and acknowledged, so it goes to the
//!    graphs and the remote gives this broker's share to the other members from then on;
//! 2. drain: let the graphs finish what they hold (queued messages, open windows), publish
//!    their results and let their upstream sinks deliver, within `shutdown.drain_timeout_s`;
//!    what is left then is logged with counts;
//! 3. deliver what the router holds for each client, then disconnect every client (MQTT 5:
//!    DISCONNECT 0x8B "server shutting down").
//!
//! A second signal during all this ends the process at once.

use crate::graphs::{Catalog, RunningGraphs};
use crate::server::Broker;
use std::fmt;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use weir_door::bridge::Bridges;

/// Longest clients may take to receive their last messages and be disconnected.
const CLIENTS_PATIENCE: Duration = Duration::from_secs(5);

/// A signal the broker acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C): stop.
    Interrupt,
    /// SIGTERM: stop.
    Terminate,
    /// SIGHUP: read the password and ACL files, and the graphs' files, again.
    Hangup,
    /// A watched configuration, definition or module file changed (and settled).
    FilesChanged,
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Interrupt => "interrupted",
            Signal::Terminate => "terminated",
            Signal::Hangup => "hangup",
            Signal::FilesChanged => "files changed",
        })
    }
}

/// Signals as they arrive, from a thread that listens for them.
pub struct Signals {
    received: mpsc::Receiver<Signal>,
    sender: mpsc::Sender<Signal>,
}

impl Signals {
    /// Starts listening for SIGINT, SIGTERM and SIGHUP.
    pub fn listen() -> std::io::Result<Signals> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (sender, received) = mpsc::channel();
        let (ready_tx, ready) = mpsc::channel();
        let ours = sender.clone();
        std::thread::Builder::new()
            .name("weir-signals".into())
            .spawn(move || {
                runtime.block_on(async move {
                    use tokio::signal::unix::{signal, SignalKind};
                    let streams = signal(SignalKind::interrupt()).and_then(|i| {
                        Ok((
                            i,
                            signal(SignalKind::terminate())?,
                            signal(SignalKind::hangup())?,
                        ))
                    });
                    let (mut interrupt, mut terminate, mut hangup) = match streams {
                        Ok(streams) => {
                            let _ = ready_tx.send(Ok(()));
                            streams
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    loop {
                        let signal = tokio::select! {
                            _ = interrupt.recv() => Signal::Interrupt,
                            _ = terminate.recv() => Signal::Terminate,
                            _ = hangup.recv() => Signal::Hangup,
                        };
                        if sender.send(signal).is_err() {
                            return;
                        }
                    }
                })
            })?;
        ready
            .recv()
            .map_err(|_| std::io::Error::other("the signal thread stopped"))??;
        Ok(Signals {
            received,
            sender: ours,
        })
    }

    /// Where other parts of the broker post their events ([`Signal::FilesChanged`]).
    pub fn sender(&self) -> mpsc::Sender<Signal> {
        self.sender.clone()
    }

    /// Waits for the next signal.
    pub fn wait(&self) -> Signal {
        self.received.recv().unwrap_or(Signal::Terminate)
    }

    /// From now on, the next signal ends the process at once (exit status 1).
    pub fn exit_on_next(self) {
        let spawned = std::thread::Builder::new()
            .name("weir-signals-again".into())
            .spawn(move || {
                while let Ok(signal) = self.received.recv() {
                    match signal {
                        Signal::Hangup => {
                            tracing::info!("hangup while stopping: nothing to reload");
                            continue;
                        }
                        Signal::FilesChanged => continue,
                        Signal::Interrupt | Signal::Terminate => {}
                    }
                    tracing::warn!("{signal} again: exiting at once");
                    std::process::exit(1);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("a second signal will not interrupt the shutdown: {e}");
        }
    }
}

/// Stops the broker and its graphs, in order (see the module documentation), giving the
/// graphs and their sinks `drain` to finish.
pub fn stop(mut broker: Broker, graphs: RunningGraphs, bridges: &Bridges, drain: Duration) {
    broker.door().stop_reading();
    bridges.leave_shares();
    let catalog = graphs.catalog.clone();
    let started = Instant::now();
    let (done_tx, done) = mpsc::channel();
    let finishing = std::thread::Builder::new()
        .name("weir-graphs-finish".into())
        .spawn(move || {
            let left = graphs.finish(drain);
            let _ = done_tx.send(left);
        });
    match finishing {
        Ok(_) => match done.recv_timeout(drain) {
            Ok(0) => {
                if !catalog.graphs().is_empty() {
                    tracing::info!("graphs drained in {:?}", started.elapsed());
                }
            }
            Ok(left) => tracing::warn!(
                "drain ended after {drain:?} with {left} results not delivered upstream"
            ),
            Err(_) => log_undrained(&catalog, drain),
        },
        Err(e) => tracing::warn!("cannot wait for the graphs to finish: {e}"),
    }
    // What the graphs published is in the bridges' queues: the links say goodbye to their
    // remotes and the queues are synced (what they hold goes at the next start).
    bridges.stop_all();
    broker.door_mut().disconnect_all(CLIENTS_PATIENCE);
}

/// Says what the graphs and sinks still held when the drain ran out of time.
fn log_undrained(catalog: &Catalog, drain: Duration) {
    let queued: usize = catalog.graphs().iter().map(|g| g.queue_depth()).sum();
    let undelivered: u64 = catalog.sinks().iter().map(|s| s.in_buffer()).sum();
    tracing::warn!(
        "the graphs did not finish within shutdown.drain_timeout_s ({drain:?}): {queued} messages still queued in graphs, {undelivered} results not delivered upstream; stopping without them"
    );
    for graph in catalog.graphs() {
        let queued = graph.queue_depth();
        if queued > 0 {
            tracing::warn!(graph = %graph.graph, "{queued} messages still queued");
        }
    }
}
