//! Changing a running broker's graphs and bridges: on SIGHUP, or when a watched file changed,
//! the configuration is read again and its graphs ([`RunningGraphs::reload`]) and bridges
//! applied. A file that
//! does not load is reported (with file:line:column) and changes nothing; sections that only
//! take effect at a restart are named in the log.

use crate::config::WeirConfig;
use crate::graphs::{needs_restart, RunningGraphs};
use crate::reloads::{Reloadable, Reloads};
use crate::shutdown::Signal;
use crate::watch::{FileWatcher, Interest};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;
use weir_door::bridge::Bridges;

/// The configuration in force, where it comes from, and the watch on its files.
pub struct Reconfigure {
    file: Option<PathBuf>,
    applied: WeirConfig,
    watcher: Option<FileWatcher>,
    reloads: Arc<Reloads>,
}

impl Reconfigure {
    /// Watches the files of `applied` (read from `file`, whose bytes were `read` just before
    /// it was parsed, or the embedded default), posting changes to `notify`. Call it before
    /// anything else the configuration names is read: what changes later is seen by the
    /// watch, and a configuration file whose bytes are no longer `read` is reloaded at once
    /// (bytes rather than its modification time, which the kernel's coarse clock can set
    /// earlier than the moment it was read). Without a watch (the system refused one), SIGHUP
    /// still reloads. Each reload is counted in `reloads`.
    pub fn start(
        file: Option<PathBuf>,
        applied: WeirConfig,
        read: Option<Vec<u8>>,
        notify: mpsc::Sender<Signal>,
        reloads: Arc<Reloads>,
    ) -> Reconfigure {
        let interest = Interest::of(&applied, file.as_deref());
        let watcher = match FileWatcher::start(interest, notify.clone()) {
            Ok(watcher) => Some(watcher),
            Err(e) => {
                tracing::warn!("files are not watched ({e}); send SIGHUP to apply changes");
                None
            }
        };
        if let Some(path) = &file {
            if std::fs::read(path).ok() != read {
                tracing::info!(
                    "{} changed while it was being read: reading it again",
                    path.display()
                );
                let _ = notify.send(Signal::FilesChanged);
            }
        }
        Reconfigure {
            file,
            applied,
            watcher,
            reloads,
        }
    }

    /// The configuration in force.
    pub fn applied(&self) -> &WeirConfig {
        &self.applied
    }

    /// Reads the configuration again and applies its graphs to `graphs` and its bridges to
    /// `bridges`.
    pub fn reload(&mut self, graphs: &mut RunningGraphs, bridges: &Bridges) {
        let started = Instant::now();
        let loaded = match &self.file {
            Some(file) => WeirConfig::from_file(file),
            None => WeirConfig::embedded_default(),
        };
        let config = match loaded {
            Ok(config) => config,
            Err(e) => {
                let error = format!("configuration not reloaded: {e}");
                tracing::error!("{error}; the running graphs go on");
                graphs.report_error(&error);
                self.reloads.count(Reloadable::Configuration, false, 1);
                return;
            }
        };
        for section in needs_restart(&self.applied, &config) {
            tracing::warn!("`{section}` changed: it takes effect at the next restart");
        }
        let done = graphs.reload(&config);
        crate::bridges::reload(bridges, &config);
        if let Some(watcher) = &mut self.watcher {
            watcher.update(Interest::of(&config, self.file.as_deref()));
        }
        tracing::info!(
            "configuration applied in {} ms: {} graphs started, {} replaced, {} removed, {} refused",
            started.elapsed().as_millis(),
            done.added.len(),
            done.replaced.len(),
            done.removed.len(),
            done.failed.len()
        );
        self.reloads.count(Reloadable::Configuration, true, 1);
        let graphs_applied = done.added.len() + done.replaced.len();
        self.reloads.count(Reloadable::Graph, true, graphs_applied);
        self.reloads
            .count(Reloadable::Graph, false, done.failed.len());
        self.applied = config;
    }
}
