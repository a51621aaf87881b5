//! Stopping `weir run`: on SIGTERM or Ctrl-C, in this order,
//! 1. stop accepting connections and stop reading from clients (so graphs get no new input);
//! 2. let the graphs finish what they hold (queued messages, open windows) and publish their
//!    results;
//! 3. deliver what the router holds for each client, then disconnect every client (MQTT 5:
//!    DISCONNECT 0x8B "server shutting down").
//!
//! A second signal during all this ends the process at once.

use crate::graphs::RunningGraphs;
use crate::server::Broker;
use std::fmt;
use std::sync::mpsc;
use std::time::Duration;

/// Longest the graphs may take to finish before the broker stops without them.
const GRAPHS_PATIENCE: Duration = Duration::from_secs(30);

/// Longest clients may take to receive their last messages and be disconnected.
const CLIENTS_PATIENCE: Duration = Duration::from_secs(5);

/// A signal the broker acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C): stop.
    Interrupt,
    /// SIGTERM: stop.
    Terminate,
    /// SIGHUP: read the password and ACL files again.
    Hangup,
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Interrupt => "interrupted",
            Signal::Terminate => "terminated",
            Signal::Hangup => "hangup",
        })
    }
}

/// Signals as they arrive, from a thread that listens for them.
pub struct Signals {
    received: mpsc::Receiver<Signal>,
}

impl Signals {
    /// Starts listening for SIGINT, SIGTERM and SIGHUP.
    pub fn listen() -> std::io::Result<Signals> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (sender, received) = mpsc::channel();
        let (ready_tx, ready) = mpsc::channel();
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
        Ok(Signals { received })
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
                    if signal == Signal::Hangup {
                        tracing::info!("hangup while stopping: nothing to reload");
                        continue;
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

/// Stops the broker and its graphs, in order (see the module documentation).
pub fn stop(mut broker: Broker, graphs: RunningGraphs) {
    broker.door().stop_reading();
    let (done_tx, done) = mpsc::channel();
    let finishing = std::thread::Builder::new()
        .name("weir-graphs-finish".into())
        .spawn(move || {
            graphs.finish();
            let _ = done_tx.send(());
        });
    match finishing {
        Ok(_) => {
            if done.recv_timeout(GRAPHS_PATIENCE).is_err() {
                tracing::warn!(
                    "the graphs did not finish within {GRAPHS_PATIENCE:?}; stopping without them"
                );
            }
        }
        Err(e) => tracing::warn!("cannot wait for the graphs to finish: {e}"),
    }
    broker.door_mut().disconnect_all(CLIENTS_PATIENCE);
}
