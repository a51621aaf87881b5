//! The Cargo features a configuration may need (`kafka`, `otlp`, `oci`, `websockets`,
//! `wasi-nn`), and the error that refuses a configuration needing one this binary lacks.

/// Why a configuration asking for `what` is refused by a binary built without `feature`.
///
/// ```
/// let why = weir_config::features::missing("kafka", "a `kafka` sink");
/// assert_eq!(
///     why,
///     "a `kafka` sink needs the `kafka` feature, which this weir was built without \
///      (build it with `cargo build --release -p weir --features kafka`)"
/// );
/// ```
pub fn missing(feature: &str, what: &str) -> String {
    format!(
        "{what} needs the `{feature}` feature, which this weir was built without \
         (build it with `cargo build --release -p weir --features {feature}`)"
    )
}

#[cfg(test)]
mod tests {
    use crate::WeirConfig;

    fn parse(yaml: &str) -> Result<WeirConfig, String> {
        WeirConfig::from_str_with(yaml, "weir.yaml", ".".as_ref(), |_| None)
            .map_err(|e| e.to_string())
    }

    fn graph_with_sink(sink: &str) -> String {
        format!("graphs:\n  - name: g\n    definition: builtin:temperature-map\n    source: [a]\n    sink: {sink}\n")
    }

    /// Each configuration needing a feature, and where its refusal points without it.
    fn needing() -> [(&'static str, String, &'static str); 5] {
        [
            (
                "kafka",
                graph_with_sink("{kafka: {bootstrap_servers: '127.0.0.1:9092', topic: t}}"),
                "weir.yaml:2:5: graphs[0].sink: a `kafka` sink needs the `kafka` feature",
            ),
            (
                "otlp",
                graph_with_sink("{otlp: {endpoint: 'http://127.0.0.1:4318'}}"),
                "weir.yaml:2:5: graphs[0].sink: an `otlp` sink needs the `otlp` feature",
            ),
            (
                "otlp",
                "telemetry:\n  otlp: {endpoint: 'http://127.0.0.1:4318'}\n".into(),
                "weir.yaml:2:3: telemetry.otlp: `telemetry.otlp` needs the `otlp` feature",
            ),
            (
                "oci",
                "graphs:\n  - name: g\n    definition: oci://localhost:5000/graphs/g:1\n    source: [a]\n    sink: {topic: b}\n".into(),
                "weir.yaml:3:17: graphs[0].definition: localhost:5000/graphs/g:1: registries need the `oci` feature",
            ),
            (
                "websockets",
                "broker:\n  listeners:\n    - {protocol: websockets, address: '127.0.0.1:8080'}\n".into(),
                "weir.yaml:3:7: broker.listeners[0].protocol: a `websockets` listener needs the `websockets` feature",
            ),
        ]
    }

    fn built_with(feature: &str) -> bool {
        match feature {
            "kafka" => cfg!(feature = "kafka"),
            "otlp" => cfg!(feature = "otlp"),
            "oci" => cfg!(feature = "oci"),
            "websockets" => cfg!(feature = "websockets"),
            other => unreachable!("no feature `{other}`"),
        }
    }

    #[test]
    fn what_needs_a_missing_feature_is_refused_where_it_is_written() {
        for (feature, yaml, refusal) in needing() {
            match parse(&yaml) {
                Ok(_) => assert!(built_with(feature), "{feature}: taken without it:\n{yaml}"),
                Err(error) => {
                    assert!(!built_with(feature), "{feature}: refused with it: {error}");
                    assert!(error.starts_with(refusal), "{error}");
                    let command = format!("cargo build --release -p weir --features {feature}");
                    assert!(error.contains(&command), "{error}");
                }
            }
        }
    }
}
