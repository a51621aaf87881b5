//! The scenarios: what each measures, on which broker, with which graphs; run alternating,
//! repeated, and reduced to medians.

use crate::brokers::{sibling, Broker};
use crate::connections::ConnectionRow;
use crate::load::{self, Load, Outcome};
use crate::specs::{specs, Generator, Spec, WINDOW_MS};
use crate::state_store::StateStoreRow;
use crate::Args;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Weir,
    Mosquitto,
}

/// One repetition: what the load measured, the broker's resident memory (idle, peak) and the
/// scenario's check.
type Measured = (Outcome, (f64, f64), Option<String>);

/// One row of the report: the medians of a spec's repetitions.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub name: String,
    pub broker: Kind,
    pub qos: u8,
    pub payload: usize,
    pub workers: usize,
    pub publishers: usize,
    pub subscribers: usize,
    /// Offered rate, messages per second in all; `None`: flat out.
    pub rate: Option<f64>,
    pub msgs_per_s: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    /// The longest silence at a subscriber, ms: from the first publish to its first message,
    /// or between two consecutive messages.
    pub max_gap_ms: f64,
    /// The load generator: `rumqttc` (this tool's own clients) or `mosquitto-clients`.
    pub generator: &'static str,
    /// Peak resident memory of the broker, MiB.
    pub rss_mb: f64,
    /// Resident memory of the broker once started, before the load, MiB.
    pub rss_idle_mb: f64,
    pub received: u64,
    pub expected: u64,
    pub repetitions: usize,
    /// This row's throughput over the row it is compared with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
}

impl Row {
    /// The row's shape in a few words: `raw qos0 1→1`.
    pub fn label(&self) -> String {
        let rate = self
            .rate
            .map_or(String::new(), |r| format!(" @{}k/s", r / 1000.0));
        let workers = if self.name == "workers" {
            format!(" w{}", self.workers)
        } else {
            String::new()
        };
        let generator = match self.generator {
            "rumqttc" => String::new(),
            other => format!(" ({other})"),
        };
        format!(
            "{} qos{} {}→{}{rate}{workers}{generator}",
            self.name, self.qos, self.publishers, self.subscribers
        )
    }
}

/// Everything one run measured.
pub struct Results {
    pub rows: Vec<Row>,
    pub connections: Vec<ConnectionRow>,
    pub state_store: Vec<StateStoreRow>,
    pub bridges: crate::bridge::BridgeResults,
    /// The Kafka source with 1 to 3 instances, and a member killed.
    pub kafka: crate::kafka::KafkaResults,
    /// Gateways fanning in to one central broker.
    pub fleet: Option<crate::fleet::FleetRow>,
    /// Weir and mosquitto at rest.
    pub rest: Vec<crate::rest::RestRow>,
}

/// Runs every wanted scenario, `repetitions` times, alternating brokers; the connection and
/// state-store scenarios' rows come separately.
pub fn run_all(args: &Args) -> anyhow::Result<Results> {
    let dir = tempfile::tempdir()?;
    let specs = specs(args, dir.path())?;
    let repetitions = if args.quick {
        1
    } else {
        args.repetitions.max(1)
    };
    let weir = args.weir.clone().unwrap_or_else(|| sibling("weir"));
    let modules: PathBuf = std::path::absolute(&args.modules)?;
    let mut measured: Vec<Vec<Measured>> = vec![Vec::new(); specs.len()];
    for repetition in 0..repetitions {
        for (spec, results) in specs.iter().zip(&mut measured) {
            eprintln!(
                "weir-bench: {} on {:?}, repetition {}/{repetitions}",
                spec.name,
                spec.broker,
                repetition + 1
            );
            results.push(measure(spec, &weir, &modules, &args.mosquitto)?);
        }
    }
    let mut rows: Vec<Row> = specs
        .iter()
        .zip(measured)
        .map(|(spec, results)| median_row(spec, results))
        .collect();
    crate::report::add_ratios(&mut rows);
    let wanted = args.scenarios.iter().any(|s| s == "connections")
        || (args.scenarios.is_empty() && !args.quick);
    let connections = if wanted {
        crate::connections::run_all(
            &weir,
            &modules,
            &args.mosquitto,
            args.connections,
            repetitions,
        )?
    } else {
        Vec::new()
    };
    let wanted = args.scenarios.iter().any(|s| s == "state-store")
        || (args.scenarios.is_empty() && !args.quick);
    let state_store = if wanted {
        eprintln!("weir-bench: state store over MQTT on Weir");
        let broker = Broker::weir(&weir, &modules, "", "")?;
        let count = ((2_000.0 * args.scale) as usize).max(100);
        crate::state_store::run(&broker, count)?
    } else {
        Vec::new()
    };
    let wanted =
        args.scenarios.iter().any(|s| s == "bridge") || (args.scenarios.is_empty() && !args.quick);
    let bridges = if wanted {
        crate::bridge::run_all(args, &weir, &modules)?
    } else {
        Default::default()
    };
    // Asked for by name only: it needs tansu (scripts/install-services.sh).
    let kafka = if args.scenarios.iter().any(|s| s == "kafka") {
        crate::kafka::run_all(args, &weir, &modules)?
    } else {
        Default::default()
    };
    // Asked for by name only: 20 Weirs at once.
    let fleet = if args.scenarios.iter().any(|s| s == "fleet") {
        crate::fleet::run(args, &weir, &modules)?
    } else {
        None
    };
    let wanted =
        args.scenarios.iter().any(|s| s == "rest") || (args.scenarios.is_empty() && !args.quick);
    let rest = if wanted {
        crate::rest::run(&weir, &modules, &args.mosquitto)?
    } else {
        Vec::new()
    };
    Ok(Results {
        rows,
        connections,
        state_store,
        bridges,
        kafka,
        fleet,
        rest,
    })
}

/// Starts the spec's broker, runs its load (and what goes beside it) once, and returns what
/// was measured; a shortfall on Weir is explained from its metrics and log.
fn measure(spec: &Spec, weir: &Path, modules: &Path, mosquitto: &Path) -> anyhow::Result<Measured> {
    let broker = match spec.broker {
        Kind::Weir => Broker::weir(weir, modules, &spec.broker_config, &spec.graphs)?,
        Kind::Mosquitto => Broker::mosquitto(mosquitto)?,
    };
    let (idle, _) = broker.rss_mb();
    let mut load = spec.load.clone();
    load.port = broker.port;
    let stop = Arc::new(AtomicBool::new(false));
    let background = spec.background.map(|(topic, payload, rate)| {
        load::background(broker.port, topic, payload, rate, stop.clone())
    });
    let mut outcome = match spec.generator {
        Generator::Rumqttc => load::run(&load, spec.window)?,
        Generator::MosquittoClients => crate::clients::run(&load)?,
    };
    stop.store(true, Ordering::Relaxed);
    if let Some(background) = background {
        let _ = background.join();
    }
    let check = if spec.window {
        Some(window_check(&mut outcome, &load))
    } else {
        load.shared.then(|| spread_check(&outcome))
    };
    if outcome.received < outcome.expected && spec.broker == Kind::Weir {
        report_shortfall(spec, &outcome, &broker);
    }
    let (_, peak) = broker.rss_mb();
    Ok((outcome, (idle, peak), check))
}

/// Says on stderr where the messages a Weir row missed went, by Weir's own counts.
fn report_shortfall(spec: &Spec, outcome: &Outcome, broker: &Broker) {
    let read = |name| broker.metric_sum(name).unwrap_or(0);
    eprintln!(
        "weir-bench: {} received {} of {}; Weir counted publishes received {}, sent {}; graph input {}, results {}, dropped {}, lost {}; dropped for clients {}",
        spec.name,
        outcome.received,
        outcome.expected,
        read("weir_publishes_received_total"),
        read("weir_publishes_sent_total"),
        read("weir_graph_received_total"),
        read("weir_graph_results_total"),
        read("weir_graph_dropped_total"),
        read("weir_graph_lost_total"),
        read("weir_dropped_total")
    );
    for (series, value) in broker.metric_samples("weir_graph_received_total") {
        eprintln!("weir-bench:   {series} {value}");
    }
    eprintln!("weir-bench: Weir's log:\n{}", broker.log());
}

/// Checks the window results (every reading counted once) and replaces the latency figures
/// with how long after its window's end each result arrived.
fn window_check(outcome: &mut Outcome, load: &Load) -> String {
    let mut counted = 0;
    let mut closes = hdrhistogram::Histogram::<u64>::new(3).expect("a histogram");
    for (payload, received) in outcome.payloads.iter().zip(&outcome.receive_times) {
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(payload) else {
            continue;
        };
        if let Some(count) = json["temperature"]["count"].as_u64() {
            counted += count;
            let window_ns = WINDOW_MS * 1_000_000;
            let _ = closes.record((received % window_ns).max(1));
        }
    }
    let sent = load.messages * load.publishers as u64;
    outcome.p50_us = closes.value_at_quantile(0.5) as f64 / 1e3;
    outcome.p90_us = closes.value_at_quantile(0.9) as f64 / 1e3;
    outcome.p99_us = closes.value_at_quantile(0.99) as f64 / 1e3;
    outcome.max_us = closes.max() as f64 / 1e3;
    outcome.msgs_per_s = sent as f64 * outcome.msgs_per_s / outcome.received.max(1) as f64;
    outcome.expected = sent;
    outcome.received = counted;
    if counted == sent {
        format!("every reading counted once ({counted} in the windows' statistics)")
    } else {
        format!("MISMATCH: {counted} readings in the windows' statistics, {sent} sent")
    }
}

/// How a shared subscription's messages were spread over its members.
fn spread_check(outcome: &Outcome) -> String {
    let counts: Vec<String> = outcome.per_subscriber.iter().map(u64::to_string).collect();
    let idle = outcome.per_subscriber.iter().filter(|&&c| c == 0).count();
    let verdict = if idle == 0 {
        "every member served"
    } else {
        "MISMATCH: a member received nothing"
    };
    format!(
        "spread over {} members: {} ({verdict})",
        counts.len(),
        counts.join("/")
    )
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn median_row(spec: &Spec, results: Vec<Measured>) -> Row {
    let pick =
        |read: fn(&Outcome) -> f64| median(results.iter().map(|(o, _, _)| read(o)).collect());
    let rate = spec
        .load
        .rate
        .map(|per_publisher| per_publisher * spec.load.publishers as f64);
    Row {
        name: spec.name.to_string(),
        broker: spec.broker,
        qos: spec.load.qos,
        payload: spec.load.payload,
        workers: spec.workers,
        publishers: spec.load.publishers,
        subscribers: spec.load.subscribers,
        rate,
        msgs_per_s: pick(|o| o.msgs_per_s),
        p50_us: pick(|o| o.p50_us),
        p90_us: pick(|o| o.p90_us),
        p99_us: pick(|o| o.p99_us),
        max_us: pick(|o| o.max_us),
        max_gap_ms: pick(|o| o.max_gap_ms),
        generator: spec.generator.name(),
        rss_idle_mb: median(results.iter().map(|(_, (idle, _), _)| *idle).collect()),
        rss_mb: median(results.iter().map(|(_, (_, peak), _)| *peak).collect()),
        received: results
            .iter()
            .map(|(o, _, _)| o.received)
            .min()
            .unwrap_or(0),
        expected: results.first().map_or(0, |(o, _, _)| o.expected),
        repetitions: results.len(),
        ratio: None,
        ratio_to: None,
        check: results.iter().find_map(|(_, _, c)| c.clone()).map(|first| {
            if results
                .iter()
                .all(|(_, _, c)| c.as_deref() == Some(first.as_str()))
            {
                first
            } else {
                results
                    .iter()
                    .filter_map(|(_, _, c)| c.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        }),
    }
}
