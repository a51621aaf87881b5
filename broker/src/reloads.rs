//! How many reloads of each kind took effect or were refused, as
//! `weir_reloads_total{what, outcome}`: an operator (or a test) sees a SIGHUP or a changed file
//! take effect on `/metrics`, without reading the log, which says why a reload was refused.

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use weir_model::metrics::{write_family, Collector, DescriptorEncoder, MetricType};

/// What can be reloaded while Weir runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reloadable {
    /// The configuration file (`weir.yaml`), read again on SIGHUP or when it changed.
    Configuration,
    /// A graph's new version (its definition, modules or binding changed), or a graph added.
    Graph,
    /// A TLS listener's certificate and key (SIGHUP).
    Certificate,
    /// A password file (SIGHUP).
    PasswordFile,
    /// An ACL file (SIGHUP).
    AclFile,
}

impl Reloadable {
    const ALL: [Reloadable; 5] = [
        Reloadable::Configuration,
        Reloadable::Graph,
        Reloadable::Certificate,
        Reloadable::PasswordFile,
        Reloadable::AclFile,
    ];

    /// The `what` label.
    pub fn label(self) -> &'static str {
        match self {
            Reloadable::Configuration => "configuration",
            Reloadable::Graph => "graph",
            Reloadable::Certificate => "certificate",
            Reloadable::PasswordFile => "password_file",
            Reloadable::AclFile => "acl_file",
        }
    }
}

/// Reloads taken and refused, by what was reloaded; registered in the metrics registry as a
/// collector of `weir_reloads_total{what, outcome}`.
///
/// ```
/// use std::sync::Arc;
/// use weir::reloads::{Reloadable, Reloads};
/// use weir_model::metrics::{text, Registry};
///
/// let reloads = Arc::new(Reloads::default());
/// let mut registry = Registry::default();
/// registry.register_collector(Box::new(reloads.clone()));
/// reloads.count(Reloadable::AclFile, true, 1);
/// reloads.count(Reloadable::Graph, false, 2);
/// let text = text(&registry);
/// assert!(text.contains("weir_reloads_total{what=\"acl_file\",outcome=\"applied\"} 1\n"));
/// assert!(text.contains("weir_reloads_total{what=\"graph\",outcome=\"refused\"} 2\n"));
/// ```
#[derive(Debug, Default)]
pub struct Reloads {
    /// By [`Reloadable::ALL`]'s order: applied, refused.
    counts: [[AtomicU64; 2]; 5],
}

impl Reloads {
    /// Counts `count` reloads of `what`, which took effect if `applied`, else were refused
    /// (the previous version goes on).
    pub fn count(&self, what: Reloadable, applied: bool, count: usize) {
        let index = Reloadable::ALL
            .iter()
            .position(|each| *each == what)
            .unwrap_or(0);
        let outcome = usize::from(!applied);
        self.counts[index][outcome].fetch_add(count as u64, Relaxed);
    }
}

impl Collector for Reloads {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let series = Reloadable::ALL
            .iter()
            .zip(&self.counts)
            .flat_map(|(what, counts)| {
                ["applied", "refused"]
                    .into_iter()
                    .zip(counts)
                    .map(|(outcome, count)| {
                        let labels = [("what", what.label()), ("outcome", outcome)];
                        (labels, count.load(Relaxed))
                    })
            });
        write_family(
            &mut encoder,
            "weir_reloads",
            "Reloads of the configuration, a graph, a certificate, a password or ACL file: applied, or refused (the previous version goes on; the log says why).",
            MetricType::Counter,
            series,
        )
    }
}
