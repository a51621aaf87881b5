//! Weir's metrics: one registry, prometheus-client's, that `/metrics` encodes as Prometheus
//! text, the OTLP export encodes as Prometheus' protobuf data model (feature `protobuf`), and
//! `$SYS` reads through the same counters.
//!
//! A metric whose set of series is fixed and that is not bumped per packet (the store's saves,
//! the state store's requests) is a [`Counter`] or a [`CountGauge`] registered once with its
//! name and help. A family whose series come and go (per graph, node, sink, client or
//! bridge), and the broker's per-packet totals ([`InlineCounter`], [`InlineGauge`]), are
//! written on each scrape by a [`Collector`] over the atomics their owners bump, with
//! [`write_family`]. Either way each metric is defined in one place, with its help text.

use prometheus_client::encoding::{
    EncodeCounterValue, EncodeGaugeValue, EncodeLabelSet, NoLabelSet,
};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub use prometheus_client;
pub use prometheus_client::collector::Collector;
pub use prometheus_client::encoding::DescriptorEncoder;
pub use prometheus_client::metrics::counter::Counter;
pub use prometheus_client::metrics::MetricType;
pub use prometheus_client::registry::Registry;

/// A gauge of things counted (clients, sessions, messages held): never negative.
pub type CountGauge = prometheus_client::metrics::gauge::Gauge<u64, AtomicU64>;

/// A counter kept inside its owner's struct, for counts bumped per packet: prometheus-client's
/// [`Counter`] lives behind an `Arc` of its own, one more pointer to follow (and one more
/// allocation's cache line) on every bump. Its owner's [`Collector`] writes it.
///
/// ```
/// let packets = weir_model::metrics::InlineCounter::default();
/// packets.inc();
/// packets.inc_by(2);
/// assert_eq!(packets.get(), 3);
/// ```
#[derive(Debug, Default)]
pub struct InlineCounter(AtomicU64);

impl InlineCounter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Relaxed);
    }

    /// Adds `n`.
    pub fn inc_by(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }

    /// The count.
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// A gauge kept inside its owner's struct (see [`InlineCounter`]).
///
/// ```
/// let clients = weir_model::metrics::InlineGauge::default();
/// clients.inc_by(3);
/// clients.dec();
/// assert_eq!(clients.get(), 2);
/// clients.set(7);
/// assert_eq!(clients.get(), 7);
/// ```
#[derive(Debug, Default)]
pub struct InlineGauge(AtomicU64);

impl InlineGauge {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Relaxed);
    }

    /// Adds `n`.
    pub fn inc_by(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }

    /// Takes one away.
    pub fn dec(&self) {
        self.0.fetch_sub(1, Relaxed);
    }

    /// Takes `n` away.
    pub fn dec_by(&self, n: u64) {
        self.0.fetch_sub(n, Relaxed);
    }

    /// Sets it to `value`.
    pub fn set(&self, value: u64) {
        self.0.store(value, Relaxed);
    }

    /// The value.
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// The labels of a series without any, for [`write_family`].
pub const NO_LABELS: [(&str, &str); 0] = [];

/// The `Content-Type` of [`text`]'s output.
pub const TEXT_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// `registry`'s metrics in the Prometheus text format (version 0.0.4), as `/metrics` serves
/// them.
///
/// ```
/// use weir_model::metrics::{text, Counter, Registry};
///
/// let mut registry = Registry::default();
/// let received = Counter::<u64>::default();
/// registry.register("weir_received", "Messages received", received.clone());
/// received.inc_by(3);
/// let lines = [
///     "# HELP weir_received_total Messages received.",
///     "# TYPE weir_received_total counter",
///     "weir_received_total 3",
/// ];
/// assert_eq!(text(&registry), lines.join("\n") + "\n");
/// ```
pub fn text(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail, and Weir's collectors return no errors of their own.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, registry);
    out
}

/// Writes family `name` of type `kind` with one series per item of `series` (its labels and
/// value), from a [`Collector`]. A counter's name is given without `_total`, which the
/// encoding adds; [`MetricType::Unknown`] writes the values under `name` as they are, as
/// counters.
///
/// ```
/// use weir_model::metrics::{text, write_family, Collector, DescriptorEncoder, MetricType, Registry};
///
/// #[derive(Debug)]
/// struct Graphs;
///
/// impl Collector for Graphs {
///     fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
///         let series = [([("graph", "a \"b\"")], 3_u64)];
///         write_family(&mut encoder, "weir_graph_received", "Messages.", MetricType::Counter, series)
///     }
/// }
///
/// let mut registry = Registry::default();
/// registry.register_collector(Box::new(Graphs));
/// assert!(text(&registry).contains("weir_graph_received_total{graph=\"a \\\"b\\\"\"} 3\n"));
/// ```
pub fn write_family<L, V>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    series: impl IntoIterator<Item = (L, V)>,
) -> fmt::Result
where
    L: EncodeLabelSet,
    V: EncodeCounterValue + EncodeGaugeValue,
{
    let mut family = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in series {
        let mut one = family.encode_family(&labels)?;
        match kind {
            MetricType::Gauge => one.encode_gauge(&value)?,
            _ => one.encode_counter::<NoLabelSet, V, u64>(&value, None)?,
        }
    }
    Ok(())
}

/// One series of a histogram: its labels, the count in each bucket (not cumulative, by
/// bucket order), the sum and the count of every observation.
pub struct HistogramSeries<'a, L> {
    /// The series' labels.
    pub labels: L,
    /// Each bucket's upper bound and the observations in it alone.
    pub buckets: &'a [(f64, u64)],
    /// The sum of the observations.
    pub sum: f64,
    /// How many observations there were.
    pub count: u64,
}

/// Writes histogram family `name` with `series`, from a [`Collector`] (`_bucket` series are
/// cumulative and end at `+Inf`, then `_sum` and `_count`).
pub fn write_histograms<'a, L: EncodeLabelSet + 'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = HistogramSeries<'a, L>>,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for one in series {
        family
            .encode_family(&one.labels)?
            .encode_histogram::<NoLabelSet>(one.sum, one.count, one.buckets, None)?;
    }
    Ok(())
}

/// `name` as a metric or label name: anything but ASCII letters and digits becomes `_`.
///
/// ```
/// assert_eq!(weir_model::metrics::metric_name("rows.read-1"), "rows_read_1");
/// ```
pub fn metric_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Latency;

    impl Collector for Latency {
        fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
            let series = HistogramSeries {
                labels: [("node", "map")],
                buckets: &[(0.001, 1), (0.01, 0), (1.0, 2)],
                sum: 1.5,
                count: 4,
            };
            write_histograms(&mut encoder, "call_seconds", "Calls.", [series])?;
            let labels = [("a", "back\\slash"), ("b", "new\nline")];
            write_family(&mut encoder, "m", "M.", MetricType::Gauge, [(labels, 1.5)])
        }
    }

    #[test]
    fn histograms_are_cumulative_and_label_values_escaped() {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Latency));
        let text = text(&registry);
        for line in [
            "call_seconds_bucket{node=\"map\",le=\"0.001\"} 1\n",
            "call_seconds_bucket{node=\"map\",le=\"0.01\"} 1\n",
            "call_seconds_bucket{node=\"map\",le=\"1\"} 3\n",
            "call_seconds_bucket{node=\"map\",le=\"+Inf\"} 4\n",
            "call_seconds_sum{node=\"map\"} 1.5\n",
            "call_seconds_count{node=\"map\"} 4\n",
            "m{a=\"back\\\\slash\",b=\"new\\nline\"} 1.5\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
