//! The scenarios: what each measures, on which broker, with which graphs; run alternating,
//! repeated, and reduced to medians.

use crate::brokers::{sibling, Broker};
use crate::connections::ConnectionRow;
use crate::load::{self, Load, Outcome};
use crate::state_store::StateStoreRow;
use crate::Args;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The three-node graph: temperature map → filter → branch, results from the True arm.
const GRAPH3: &str = "metadata: {name: graph3, version: \"1\"}
moduleRequirements: {apiVersion: \"1.1.0\", runtimeVersion: \"1.1.0\"}
operations:
  - {operationType: source, name: source}
  - {operationType: map, name: map, module: \"temperature:1.0.0\"}
  - {operationType: filter, name: filter, module: \"temperature:1.0.0\"}
  - {operationType: branch, name: branch, module: \"temperature:1.0.0\"}
  - {operationType: sink, name: sink}
connections:
  - {from: {name: source}, to: {name: map}}
  - {from: {name: map}, to: {name: filter}}
  - {from: {name: filter}, to: {name: branch}}
  - {from: {name: branch, arm: \"True\"}, to: {name: sink}}
";

/// One CPU-heavy map node (the `slow` module spins for `delay_ms` per message).
const HEAVY: &str = include_str!("../graphs/heavy.yaml");

/// A graph whose module loops on a payload `loop` until its time limit.
const RUNAWAY: &str = "\
metadata: {name: runaway, version: \"1\"}
moduleRequirements: {apiVersion: \"1.1.0\", runtimeVersion: \"1.1.0\"}
operations:
  - {operationType: source, name: source}
  - {operationType: map, name: spin, module: \"faulty-loop:1.0.0\"}
  - {operationType: sink, name: sink}
connections:
  - {from: {name: source}, to: {name: spin}}
  - {from: {name: spin}, to: {name: sink}}
";

/// The window of the window scenario, ms.
const WINDOW_MS: u64 = 100;

/// Which clients make the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generator {
    /// This tool's own rumqttc clients.
    Rumqttc,
    /// Debian's `mosquitto_pub -l` and `mosquitto_sub -C` ([`crate::clients`]).
    MosquittoClients,
}

impl Generator {
    pub fn name(self) -> &'static str {
        match self {
            Generator::Rumqttc => "rumqttc",
            Generator::MosquittoClients => "mosquitto-clients",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Weir,
    Mosquitto,
}

/// One measurement, as specified.
#[derive(Debug, Clone)]
struct Spec {
    name: &'static str,
    broker: Kind,
    /// `graphs:` section of weir.yaml.
    graphs: String,
    /// More of weir.yaml's `broker:` section (indented two spaces).
    broker_config: String,
    workers: usize,
    load: Load,
    window: bool,
    /// A runaway graph's input, published beside the load: (topic, payload, rate).
    background: Option<(&'static str, &'static str, f64)>,
    generator: Generator,
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

fn scaled(count: u64, scale: f64) -> u64 {
    ((count as f64 * scale) as u64).max(10)
}

fn graph(name: &str, definition: &str, source: &str, extra: &str) -> String {
    format!(
        "  - name: {name}\n    definition: '{definition}'\n    source: ['{source}']\n    sink: {{topic: 'bench/out/{{2}}'}}\n    queue: 4096\n{extra}"
    )
}

fn load(port_pubs: usize, subs: usize, qos: u8, payload: usize, messages: u64) -> Load {
    Load {
        port: 0,
        publish_prefix: "bench/in".into(),
        subscribe: "bench/out/#".into(),
        publishers: port_pubs,
        subscribers: subs,
        qos,
        payload,
        messages,
        rate: None,
        expect_all: true,
        shared: false,
    }
}

fn specs(args: &Args, dir: &Path) -> anyhow::Result<Vec<Spec>> {
    let wanted = |name: &str| args.scenarios.is_empty() || args.scenarios.iter().any(|s| s == name);
    let scale = if args.quick { 0.2 } else { args.scale };
    let payload = args.payload;
    let graph3 = dir.join("graph3.yaml");
    std::fs::write(&graph3, GRAPH3)?;
    let heavy = dir.join("heavy.yaml");
    std::fs::write(&heavy, HEAVY)?;
    let map1 = format!(
        "graphs:\n{}",
        graph(
            "map1",
            "builtin:temperature-map",
            "bench/in/+/temperature",
            ""
        )
    );
    let mut specs = Vec::new();
    let raw = |broker, qos, pubs: usize| {
        let total = if qos == 0 { 100_000 } else { 50_000 };
        let mut load = load(pubs, 1, qos, payload, scaled(total, scale) / pubs as u64);
        load.subscribe = "bench/in/#".into();
        Spec {
            name: "raw",
            broker,
            graphs: String::new(),
            broker_config: String::new(),
            workers: 1,
            load,
            window: false,
            background: None,
            generator: Generator::Rumqttc,
        }
    };
    if wanted("raw") {
        let shapes: &[(u8, usize)] = if args.quick {
            &[(0, 1)]
        } else {
            &[(0, 1), (0, 10), (1, 1), (1, 10)]
        };
        for &(qos, pubs) in shapes {
            specs.push(raw(Kind::Weir, qos, pubs));
            specs.push(raw(Kind::Mosquitto, qos, pubs));
        }
        if !args.quick {
            // The same shape with clients this tool did not write.
            for broker in [Kind::Weir, Kind::Mosquitto] {
                let mut spec = raw(broker, 0, 1);
                spec.generator = Generator::MosquittoClients;
                specs.push(spec);
            }
        }
        if !args.quick {
            for broker in [Kind::Weir, Kind::Mosquitto] {
                let mut paced = raw(broker, 0, 1);
                paced.load.rate = Some(10_000.0);
                paced.load.messages = scaled(30_000, scale);
                specs.push(paced);
            }
        }
    }
    if wanted("durable") && !args.quick {
        // The raw QoS 1 rows again with persistence on (saved every second): the cost of
        // durability beside the same rows without it.
        let store = dir.join("store");
        for pubs in [1, 10] {
            let mut durable = raw(Kind::Weir, 1, pubs);
            durable.name = "durable";
            durable.broker_config = format!(
                "  persistence: {{path: '{}', autosave_interval_s: 1}}\n",
                store.join(format!("p{pubs}")).display()
            );
            specs.push(durable);
        }
    }
    if wanted("shared") && !args.quick {
        // Fan-in to a shared subscription: ten publishers, one group of four members.
        for broker in [Kind::Weir, Kind::Mosquitto] {
            let mut load = load(10, 4, 1, payload, scaled(50_000, scale) / 10);
            load.subscribe = "$share/bench/bench/in/#".into();
            load.shared = true;
            specs.push(Spec {
                name: "shared",
                broker,
                graphs: String::new(),
                broker_config: String::new(),
                workers: 1,
                load,
                window: false,
                background: None,
                generator: Generator::Rumqttc,
            });
        }
    }
    let graph_specs = |name: &'static str, graphs: &str| {
        let mut flat = Spec {
            name,
            broker: Kind::Weir,
            graphs: graphs.to_string(),
            broker_config: String::new(),
            workers: 1,
            load: load(1, 1, 0, payload, scaled(100_000, scale)),
            window: false,
            background: None,
            generator: Generator::Rumqttc,
        };
        let mut paced = flat.clone();
        paced.load.rate = Some(10_000.0);
        paced.load.messages = scaled(30_000, scale);
        flat.load.messages = scaled(100_000, scale);
        (flat, paced)
    };
    if wanted("map1") {
        if !wanted("raw") {
            specs.push(raw(Kind::Weir, 0, 1));
        }
        let (flat, paced) = graph_specs("map1", &map1);
        if !args.quick {
            let mut clients = flat.clone();
            clients.generator = Generator::MosquittoClients;
            specs.push(clients);
        }
        specs.push(flat);
        if !args.quick {
            specs.push(paced);
        }
    }
    if wanted("graph3") && !args.quick {
        let graphs = format!(
            "graphs:\n{}",
            graph(
                "graph3",
                &graph3.display().to_string(),
                "bench/in/+/temperature",
                ""
            )
        );
        let (flat, paced) = graph_specs("graph3", &graphs);
        specs.push(flat);
        specs.push(paced);
    }
    if wanted("isolation") && !args.quick {
        specs.extend(isolation_specs(dir, payload, scale)?);
    }
    if wanted("window") && !args.quick {
        let graphs = format!(
            "graphs:\n  - name: window\n    definition: builtin:windowed-statistics\n    source: ['bench/in/#']\n    sink: {{topic: bench/out/stats}}\n    queue: 4096\n    configuration: {{window_ms: {WINDOW_MS}}}\n"
        );
        let mut load = load(1, 1, 0, payload, scaled(30_000, scale));
        load.rate = Some(10_000.0);
        load.expect_all = false;
        specs.push(Spec {
            name: "window",
            broker: Kind::Weir,
            graphs,
            broker_config: String::new(),
            workers: 1,
            load,
            window: true,
            background: None,
            generator: Generator::Rumqttc,
        });
    }
    if wanted("workers") && !args.quick {
        for workers in [1, 2] {
            let graphs = format!(
                "graphs:\n{}",
                graph(
                    "heavy",
                    &heavy.display().to_string(),
                    "bench/in/+/temperature",
                    &format!("    workers: {workers}\n    configuration: {{delay_ms: 1}}\n")
                )
            );
            specs.push(Spec {
                name: "workers",
                broker: Kind::Weir,
                graphs,
                broker_config: String::new(),
                workers,
                load: load(1, 1, 0, payload, scaled(2_000, scale)),
                window: false,
                background: None,
                generator: Generator::Rumqttc,
            });
        }
    }
    if wanted("rss10") && !args.quick {
        let mut graphs = "graphs:\n".to_string();
        for index in 0..10 {
            graphs += &graph(
                &format!("map{index}"),
                "builtin:temperature-map",
                &format!("bench/in/{index}/temperature"),
                "",
            );
        }
        specs.push(Spec {
            name: "rss10",
            broker: Kind::Weir,
            graphs,
            broker_config: String::new(),
            workers: 1,
            load: load(10, 1, 0, payload, scaled(1_000, scale)),
            window: false,
            background: None,
            generator: Generator::Rumqttc,
        });
    }
    Ok(specs)
}

/// The good graph (map1) paced at 1,000 msg/s alone, then beside a runaway graph whose module
/// loops on every message until its time limit (its circuit opens and closes again), fed 200
/// messages a second.
fn isolation_specs(dir: &Path, payload: usize, scale: f64) -> anyhow::Result<Vec<Spec>> {
    let runaway = dir.join("runaway.yaml");
    std::fs::write(&runaway, RUNAWAY)?;
    let good = graph(
        "good",
        "builtin:temperature-map",
        "bench/in/+/temperature",
        "",
    );
    let beside = format!(
        "{good}  - name: runaway\n    definition: '{}'\n    source: [bench/spin]\n    sink: {{topic: bench/spun}}\n    queue: 16\n",
        runaway.display()
    );
    let mut load = load(1, 1, 0, payload, scaled(5_000, scale));
    load.rate = Some(1_000.0);
    let spec = |name, graphs: String, background| Spec {
        name,
        broker: Kind::Weir,
        graphs: format!("graphs:\n{graphs}"),
        broker_config: String::new(),
        workers: 1,
        load: load.clone(),
        window: false,
        background,
        generator: Generator::Rumqttc,
    };
    Ok(vec![
        spec("good-solo", good.clone(), None),
        spec(
            "good-beside-runaway",
            beside,
            Some(("bench/spin", "loop", 200.0)),
        ),
    ])
}

/// Runs every wanted scenario, `repetitions` times, alternating brokers; the connection
/// scenario's rows come separately.
/// Everything one run measured.
pub struct Results {
    pub rows: Vec<Row>,
    pub connections: Vec<ConnectionRow>,
    pub state_store: Vec<StateStoreRow>,
}

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
            let broker = match spec.broker {
                Kind::Weir => Broker::weir(&weir, &modules, &spec.broker_config, &spec.graphs)?,
                Kind::Mosquitto => Broker::mosquitto(&args.mosquitto)?,
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
                let read = |name| broker.metric_sum(name).unwrap_or(0);
                eprintln!(
                    "weir-bench: {} received {} of {}; Weir counted graph input {}, results {}, dropped {}, lost {}; dropped for clients {}",
                    spec.name,
                    outcome.received,
                    outcome.expected,
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
            let (_, peak) = broker.rss_mb();
            results.push((outcome, (idle, peak), check));
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
    Ok(Results {
        rows,
        connections,
        state_store,
    })
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
