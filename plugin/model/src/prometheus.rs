//! The Prometheus text exposition format (version 0.0.4), written in one place for every
//! counter Weir exposes: the connection layer's, the graphs' and their nodes', the upstream
//! sinks' and the state store's. `/metrics` serves it and the OTLP export reads it back.

use std::fmt::{Display, Write};

/// A metric family's type, as its `# TYPE` line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Buckets, a sum and a count.
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Prometheus text being written: each family's `# HELP` and `# TYPE` lines, then its samples,
/// label values escaped.
///
/// ```
/// use weir_model::prometheus::{Exposition, Kind};
///
/// let mut text = Exposition::default();
/// text.family("weir_graph_received_total", Kind::Counter, "Messages accepted into the graph.");
/// text.sample("weir_graph_received_total", &[("graph", "a \"b\"")], 3);
/// text.sample("weir_uptime", &[], 7);
/// let lines = [
///     "# HELP weir_graph_received_total Messages accepted into the graph.",
///     "# TYPE weir_graph_received_total counter",
///     "weir_graph_received_total{graph=\"a \\\"b\\\"\"} 3",
///     "weir_uptime 7",
/// ];
/// assert_eq!(text.finish(), lines.join("\n") + "\n");
/// ```
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    /// Starts family `name`: its help text and type.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {}", kind.name());
    }

    /// One sample of `name` with `labels` (values escaped here).
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (key, label)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                self.text.push_str(key);
                self.text.push_str("=\"");
                escape_into(&mut self.text, label);
                self.text.push('"');
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// Family `name` with one sample without labels.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: impl Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// The text written.
    pub fn finish(self) -> String {
        self.text
    }
}

/// A label value: backslash, double quote and newline escaped.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// `name` as a metric or label name: anything but ASCII letters and digits becomes `_`.
///
/// ```
/// assert_eq!(weir_model::prometheus::metric_name("rows.read-1"), "rows_read_1");
/// ```
pub fn metric_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut text = Exposition::default();
        text.sample("m", &[("a", "back\\slash"), ("b", "new\nline")], 1.5);
        assert_eq!(
            text.finish(),
            "m{a=\"back\\\\slash\",b=\"new\\nline\"} 1.5\n"
        );
    }
}
