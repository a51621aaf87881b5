//! Watching the files the graphs come from: the configuration file, each graph's definition
//! and schema files, and the `.wasm` files of the module directories. A change is reported
//! ([`Signal::FilesChanged`]) once the files have settled: editors and `cat >` write a file in
//! several steps, so the report waits until no relevant event came for the settle time.
//!
//! Directories are watched rather than files, so that a file replaced by a rename (as editors
//! and `cp` to a temporary name then `mv` do) is still seen.

use crate::config::{DefinitionSource, WeirConfig};
use crate::shutdown::Signal;
use notify::event::{EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the files must be quiet before a change is reported.
pub const SETTLE: Duration = Duration::from_millis(250);

/// The files whose changes matter.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Interest {
    files: BTreeSet<PathBuf>,
    module_dirs: BTreeSet<PathBuf>,
}

impl Interest {
    /// What `config` (read from `config_file`, if any) is made of.
    pub fn of(config: &WeirConfig, config_file: Option<&Path>) -> Interest {
        let mut interest = Interest::default();
        interest.files.extend(config_file.map(absolute));
        for binding in &config.graphs {
            if let DefinitionSource::File(file) = &binding.definition {
                interest.files.insert(absolute(file.path()));
            }
            for schema in &binding.schemas {
                interest.files.insert(absolute(schema.path()));
            }
        }
        // Module directories matter to graphs only (and may not exist without them).
        if !config.graphs.is_empty() {
            let dirs = config.modules.paths();
            interest
                .module_dirs
                .extend(dirs.iter().filter(|d| d.is_dir()).map(|d| absolute(d)));
        }
        interest
    }

    fn directories(&self) -> BTreeSet<PathBuf> {
        let parents = self
            .files
            .iter()
            .filter_map(|f| f.parent())
            .map(Path::to_path_buf);
        parents.chain(self.module_dirs.iter().cloned()).collect()
    }

    fn wants(&self, path: &Path) -> bool {
        self.files.contains(path)
            || (path.extension().is_some_and(|e| e == "wasm")
                && path
                    .parent()
                    .is_some_and(|dir| self.module_dirs.contains(dir)))
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Watches the files of an [`Interest`] and posts [`Signal::FilesChanged`] when they change.
pub struct FileWatcher {
    watcher: RecommendedWatcher,
    watching: BTreeSet<PathBuf>,
    interest: Arc<Mutex<Interest>>,
}

impl FileWatcher {
    /// Starts watching `interest`, reporting settled changes to `notify`.
    pub fn start(interest: Interest, notify: mpsc::Sender<Signal>) -> notify::Result<FileWatcher> {
        let (events, received) = mpsc::channel();
        let watcher = notify::recommended_watcher(events)?;
        let shared = Arc::new(Mutex::new(Interest::default()));
        let filter = shared.clone();
        std::thread::Builder::new()
            .name("weir-watch".into())
            .spawn(move || debounce(&received, &filter, &notify))
            .map_err(notify::Error::io)?;
        let mut watcher = FileWatcher {
            watcher,
            watching: BTreeSet::new(),
            interest: shared,
        };
        watcher.update(interest);
        Ok(watcher)
    }

    /// Watches `interest` from now on (after a reload, files may have come or gone).
    pub fn update(&mut self, interest: Interest) {
        let directories = interest.directories();
        for gone in self.watching.difference(&directories) {
            let _ = self.watcher.unwatch(gone);
        }
        for dir in directories.difference(&self.watching) {
            if let Err(e) = self.watcher.watch(dir, RecursiveMode::NonRecursive) {
                tracing::warn!("cannot watch {} for changes: {e}", dir.display());
            }
        }
        self.watching = directories;
        *self.interest.lock().unwrap_or_else(|e| e.into_inner()) = interest;
    }
}

/// Whether `event` may change what a file holds (reads and metadata changes do not).
fn changes_content(event: &notify::Event) -> bool {
    match event.kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        _ => false,
    }
}

/// Posts [`Signal::FilesChanged`] once per burst of relevant events, after [`SETTLE`] of quiet.
fn debounce(
    events: &mpsc::Receiver<notify::Result<notify::Event>>,
    interest: &Mutex<Interest>,
    notify: &mpsc::Sender<Signal>,
) {
    let relevant = |event: &notify::Result<notify::Event>| match event {
        Ok(event) if changes_content(event) => {
            let interest = interest.lock().unwrap_or_else(|e| e.into_inner());
            event.paths.iter().any(|path| interest.wants(path))
        }
        Ok(_) => false,
        Err(e) => {
            tracing::warn!("watching files: {e}");
            false
        }
    };
    while let Ok(event) = events.recv() {
        if !relevant(&event) {
            continue;
        }
        // Each relevant event restarts the wait; others (a log file beside the configuration,
        // say) do not.
        let mut settled = Instant::now() + SETTLE;
        loop {
            match events.recv_timeout(settled.saturating_duration_since(Instant::now())) {
                Ok(event) if relevant(&event) => settled = Instant::now() + SETTLE,
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
        if notify.send(Signal::FilesChanged).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interest(yaml: &str, dir: &Path) -> Interest {
        let config = WeirConfig::from_str_with(yaml, "weir.yaml", dir, |_| None).unwrap();
        Interest::of(&config, Some(&dir.join("weir.yaml")))
    }

    #[test]
    fn the_configuration_definitions_and_module_files_matter_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let modules = dir.path().join("modules");
        std::fs::create_dir(&modules).unwrap();
        std::fs::write(dir.path().join("g.yaml"), "").unwrap();
        let yaml = format!(
            "modules: {{directories: ['{}']}}\ngraphs:\n  - {{name: g, definition: g.yaml, source: [a], sink: {{topic: b}}}}\n",
            modules.display()
        );
        let interest = interest(&yaml, dir.path());
        let base = absolute(dir.path());
        assert!(interest.wants(&base.join("weir.yaml")));
        assert!(interest.wants(&base.join("g.yaml")));
        assert!(interest.wants(&absolute(&modules).join("step.wasm")));
        assert!(!interest.wants(&base.join("weir.log")));
        assert!(!interest.wants(&absolute(&modules).join("notes.txt")));
        assert_eq!(
            interest.directories(),
            BTreeSet::from([base.clone(), absolute(&modules)])
        );
    }

    #[test]
    fn without_graphs_module_directories_are_not_watched() {
        let dir = tempfile::tempdir().unwrap();
        let interest = interest("modules: {directories: ['.']}\n", dir.path());
        assert!(!interest.wants(&absolute(dir.path()).join("m.wasm")));
    }
}
