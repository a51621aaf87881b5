//! Metrics that modules define through the `metrics` host API, kept per graph node.
//!
//! A name is a counter or a histogram for the life of the node: using it as the other kind is
//! an error (`incompatible-type`). Each distinct label set is its own series.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Labels of one series, sorted by key.
pub type Labels = Vec<(String, String)>;

/// A histogram summary: enough for count, sum, min, max and mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Number of observations.
    pub count: u64,
    /// Sum of the observations.
    pub sum: f64,
    /// Smallest observation.
    pub min: f64,
    /// Largest observation.
    pub max: f64,
}

impl Summary {
    fn observe(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }
}

impl Default for Summary {
    fn default() -> Self {
        Summary {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

/// One metric's series.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    /// Counter values per label set.
    Counter(BTreeMap<Labels, u64>),
    /// Histogram summaries per label set.
    Histogram(BTreeMap<Labels, Summary>),
}

/// Why a metric update was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricError {
    /// The name is already used by a metric of the other kind.
    #[error("metric `{name}` is a {existing}, not a {requested}")]
    IncompatibleType {
        /// The metric's name.
        name: String,
        /// What it already is.
        existing: &'static str,
        /// What the update wanted.
        requested: &'static str,
    },
    /// The registry's lock was poisoned by a panic elsewhere.
    #[error("metrics registry lock poisoned")]
    Lock,
}

/// Applies `update` to metric `name`, made by `new` the first time (the name is copied only
/// then: modules update their metrics per message).
fn with_named<R>(
    metrics: &mut BTreeMap<String, Metric>,
    name: &str,
    new: impl FnOnce() -> Metric,
    update: impl FnOnce(&mut Metric) -> R,
) -> R {
    if let Some(metric) = metrics.get_mut(name) {
        return update(metric);
    }
    update(metrics.entry(name.to_string()).or_insert_with(new))
}

/// The metrics one node's module defined.
///
/// ```
/// use weir_wasm::metrics::{NodeMetrics, MetricError};
/// let metrics = NodeMetrics::default();
/// metrics.add_to_counter("requests", 2, vec![]).unwrap();
/// metrics.add_to_counter("requests", 3, vec![]).unwrap();
/// assert!(matches!(
///     metrics.record_to_histogram("requests", 1.0, vec![]),
///     Err(MetricError::IncompatibleType { .. })
/// ));
/// ```
#[derive(Debug, Default)]
pub struct NodeMetrics {
    metrics: Mutex<BTreeMap<String, Metric>>,
}

impl NodeMetrics {
    /// Adds `value` to counter `name` for `labels`.
    pub fn add_to_counter(
        &self,
        name: &str,
        value: u64,
        labels: Labels,
    ) -> Result<(), MetricError> {
        let mut metrics = self.metrics.lock().map_err(|_| MetricError::Lock)?;
        let new = || Metric::Counter(BTreeMap::new());
        with_named(&mut metrics, name, new, |metric| match metric {
            Metric::Counter(series) => {
                let total = series.entry(sorted(labels)).or_default();
                *total = total.saturating_add(value);
                Ok(())
            }
            Metric::Histogram(_) => Err(MetricError::IncompatibleType {
                name: name.to_string(),
                existing: "histogram",
                requested: "counter",
            }),
        })
    }

    /// Records `value` in histogram `name` for `labels`.
    pub fn record_to_histogram(
        &self,
        name: &str,
        value: f64,
        labels: Labels,
    ) -> Result<(), MetricError> {
        let mut metrics = self.metrics.lock().map_err(|_| MetricError::Lock)?;
        let new = || Metric::Histogram(BTreeMap::new());
        with_named(&mut metrics, name, new, |metric| match metric {
            Metric::Histogram(series) => {
                series.entry(sorted(labels)).or_default().observe(value);
                Ok(())
            }
            Metric::Counter(_) => Err(MetricError::IncompatibleType {
                name: name.to_string(),
                existing: "counter",
                requested: "histogram",
            }),
        })
    }

    /// A copy of every metric, by name.
    pub fn snapshot(&self) -> BTreeMap<String, Metric> {
        self.metrics
            .lock()
            .map(|metrics| metrics.clone())
            .unwrap_or_default()
    }
}

fn sorted(mut labels: Labels) -> Labels {
    labels.sort();
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_sets_are_separate_series_in_any_order() {
        let metrics = NodeMetrics::default();
        let ab = vec![("a".into(), "1".into()), ("b".into(), "2".into())];
        let ba = vec![("b".into(), "2".into()), ("a".into(), "1".into())];
        metrics.add_to_counter("c", 1, ab.clone()).unwrap();
        metrics.add_to_counter("c", 1, ba).unwrap();
        metrics.add_to_counter("c", 5, vec![]).unwrap();
        let Metric::Counter(series) = &metrics.snapshot()["c"] else {
            panic!("not a counter")
        };
        assert_eq!(series[&ab], 2);
        assert_eq!(series[&vec![]], 5);
    }

    #[test]
    fn histogram_summarises() {
        let metrics = NodeMetrics::default();
        for v in [3.0, 1.0, 2.0] {
            metrics.record_to_histogram("h", v, vec![]).unwrap();
        }
        let Metric::Histogram(series) = &metrics.snapshot()["h"] else {
            panic!("not a histogram")
        };
        let s = series[&vec![]];
        assert_eq!((s.count, s.sum, s.min, s.max), (3, 6.0, 1.0, 3.0));
        assert_eq!(
            metrics.add_to_counter("h", 1, vec![]),
            Err(MetricError::IncompatibleType {
                name: "h".into(),
                existing: "histogram",
                requested: "counter"
            })
        );
    }
}
