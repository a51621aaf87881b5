//! What each scenario measures: the rows a run asks for, each with its broker, weir.yaml
//! sections, load and load generator, in the order the report shows them.

use crate::load::Load;
use crate::scenarios::Kind;
use crate::Args;
use std::path::Path;

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
pub const WINDOW_MS: u64 = 100;

/// The paced rows' offered rate per publisher, messages per second.
const PACED_RATE: f64 = 10_000.0;

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

/// One measurement, as specified.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: &'static str,
    pub broker: Kind,
    /// `graphs:` section of weir.yaml.
    pub graphs: String,
    /// More of weir.yaml's `broker:` section (indented two spaces).
    pub broker_config: String,
    pub workers: usize,
    pub load: Load,
    pub window: bool,
    /// A runaway graph's input, published beside the load: (topic, payload, rate).
    pub background: Option<(&'static str, &'static str, f64)>,
    pub generator: Generator,
}

impl Spec {
    /// A row on `broker` with `graphs` (for Weir) and `load`; one worker, rumqttc clients,
    /// nothing beside.
    fn new(name: &'static str, broker: Kind, graphs: String, load: Load) -> Spec {
        Spec {
            name,
            broker,
            graphs,
            broker_config: String::new(),
            workers: 1,
            load,
            window: false,
            background: None,
            generator: Generator::Rumqttc,
        }
    }

    /// The same row offered `PACED_RATE` for `messages` per publisher.
    fn paced(&self, messages: u64) -> Spec {
        let mut paced = self.clone();
        paced.load.rate = Some(PACED_RATE);
        paced.load.messages = messages;
        paced
    }

    /// The same row with `mosquitto_pub`/`mosquitto_sub` making the load.
    fn with_mosquitto_clients(&self) -> Spec {
        let mut spec = self.clone();
        spec.generator = Generator::MosquittoClients;
        spec
    }
}

/// The rows `args` ask for, in the report's order; graph files they need go into `dir`.
pub fn specs(args: &Args, dir: &Path) -> anyhow::Result<Vec<Spec>> {
    let plan = Plan {
        args,
        scale: if args.quick { 0.2 } else { args.scale },
    };
    let mut specs = Vec::new();
    if plan.wanted("raw") {
        specs.extend(plan.raw_rows());
    }
    if plan.full("durable") {
        specs.extend(plan.durable_rows(dir));
    }
    if plan.full("shared") {
        specs.extend(plan.shared_rows());
    }
    if plan.wanted("map1") {
        specs.extend(plan.map1_rows());
    }
    if plan.full("graph3") {
        specs.extend(plan.graph3_rows(dir)?);
    }
    if plan.full("isolation") {
        specs.extend(plan.isolation_rows(dir)?);
    }
    if plan.full("window") {
        specs.push(plan.window_row());
    }
    if plan.full("workers") {
        specs.extend(plan.workers_rows(dir)?);
    }
    if plan.full("rss10") {
        specs.push(plan.rss10_row());
    }
    Ok(specs)
}

/// A run's arguments, read as the rows they ask for.
struct Plan<'a> {
    args: &'a Args,
    /// Message counts are multiplied by this.
    scale: f64,
}

impl Plan<'_> {
    /// Whether the scenario `name` is asked for (all are when none is named).
    fn wanted(&self, name: &str) -> bool {
        self.args.scenarios.is_empty() || self.args.scenarios.iter().any(|s| s == name)
    }

    /// Whether the scenario `name`, which a quick run leaves out, is asked for.
    fn full(&self, name: &str) -> bool {
        !self.args.quick && self.wanted(name)
    }

    /// `count` scaled, at least 10.
    fn scaled(&self, count: u64) -> u64 {
        ((count as f64 * self.scale) as u64).max(10)
    }

    /// A load with `pubs` publishers of `messages` each and `subs` subscribers to
    /// `bench/out/#`.
    fn load(&self, pubs: usize, subs: usize, qos: u8, messages: u64) -> Load {
        Load {
            port: 0,
            publish_prefix: "bench/in".into(),
            subscribe: "bench/out/#".into(),
            publishers: pubs,
            subscribers: subs,
            qos,
            payload: self.args.payload,
            messages,
            rate: None,
            expect_all: true,
            shared: false,
            subscribe_port: None,
        }
    }

    /// Raw delivery on `broker`: `pubs` publishers to one subscriber of `bench/in/#`.
    fn raw(&self, broker: Kind, qos: u8, pubs: usize) -> Spec {
        let total = if qos == 0 { 100_000 } else { 50_000 };
        let mut load = self.load(pubs, 1, qos, self.scaled(total) / pubs as u64);
        load.subscribe = "bench/in/#".into();
        Spec::new("raw", broker, String::new(), load)
    }

    fn raw_rows(&self) -> Vec<Spec> {
        let shapes: &[(u8, usize)] = if self.args.quick {
            &[(0, 1)]
        } else {
            &[(0, 1), (0, 10), (1, 1), (1, 10)]
        };
        let mut rows = Vec::new();
        for &(qos, pubs) in shapes {
            rows.push(self.raw(Kind::Weir, qos, pubs));
            rows.push(self.raw(Kind::Mosquitto, qos, pubs));
        }
        if !self.args.quick {
            // The same shape with clients this tool did not write.
            for broker in [Kind::Weir, Kind::Mosquitto] {
                rows.push(self.raw(broker, 0, 1).with_mosquitto_clients());
            }
            for broker in [Kind::Weir, Kind::Mosquitto] {
                rows.push(self.raw(broker, 0, 1).paced(self.scaled(30_000)));
            }
        }
        rows
    }

    /// The raw QoS 1 rows again with persistence on (saved every second): the cost of
    /// durability beside the same rows without it.
    fn durable_rows(&self, dir: &Path) -> Vec<Spec> {
        let store = dir.join("store");
        [1, 10]
            .into_iter()
            .map(|pubs| {
                let mut durable = self.raw(Kind::Weir, 1, pubs);
                durable.name = "durable";
                durable.broker_config = format!(
                    "  persistence: {{path: '{}', autosave_interval_s: 1}}\n",
                    store.join(format!("p{pubs}")).display()
                );
                durable
            })
            .collect()
    }

    /// Fan-in to a shared subscription: ten publishers, one group of four members.
    fn shared_rows(&self) -> Vec<Spec> {
        [Kind::Weir, Kind::Mosquitto]
            .into_iter()
            .map(|broker| {
                let mut load = self.load(10, 4, 1, self.scaled(50_000) / 10);
                load.subscribe = "$share/bench/bench/in/#".into();
                load.shared = true;
                Spec::new("shared", broker, String::new(), load)
            })
            .collect()
    }

    /// A graph row flat out on Weir.
    fn graph_row(&self, name: &'static str, graphs: String) -> Spec {
        let load = self.load(1, 1, 0, self.scaled(100_000));
        Spec::new(name, Kind::Weir, graphs, load)
    }

    /// The one-node map graph, beside raw delivery on Weir.
    fn map1_rows(&self) -> Vec<Spec> {
        let mut rows = Vec::new();
        if !self.wanted("raw") {
            rows.push(self.raw(Kind::Weir, 0, 1));
        }
        let map1 = format!(
            "graphs:\n{}",
            graph(
                "map1",
                "builtin:temperature-map",
                "bench/in/+/temperature",
                ""
            )
        );
        let flat = self.graph_row("map1", map1);
        if !self.args.quick {
            rows.push(flat.with_mosquitto_clients());
        }
        rows.push(flat.clone());
        if !self.args.quick {
            rows.push(flat.paced(self.scaled(30_000)));
        }
        rows
    }

    /// The three-node graph, flat out and paced.
    fn graph3_rows(&self, dir: &Path) -> anyhow::Result<Vec<Spec>> {
        let graph3 = dir.join("graph3.yaml");
        std::fs::write(&graph3, GRAPH3)?;
        let graphs = format!(
            "graphs:\n{}",
            graph(
                "graph3",
                &graph3.display().to_string(),
                "bench/in/+/temperature",
                ""
            )
        );
        let flat = self.graph_row("graph3", graphs);
        let paced = flat.paced(self.scaled(30_000));
        Ok(vec![flat, paced])
    }

    /// The good graph (map1) paced at 1,000 msg/s alone, then beside a runaway graph whose
    /// module loops on every message until its time limit (its circuit opens and closes
    /// again), fed 200 messages a second.
    fn isolation_rows(&self, dir: &Path) -> anyhow::Result<Vec<Spec>> {
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
        let mut load = self.load(1, 1, 0, self.scaled(5_000));
        load.rate = Some(1_000.0);
        let solo = Spec::new(
            "good-solo",
            Kind::Weir,
            format!("graphs:\n{good}"),
            load.clone(),
        );
        let mut beside = Spec::new(
            "good-beside-runaway",
            Kind::Weir,
            format!("graphs:\n{beside}"),
            load,
        );
        beside.background = Some(("bench/spin", "loop", 200.0));
        Ok(vec![solo, beside])
    }

    /// The windowed-statistics graph, paced; checked by what its windows counted.
    fn window_row(&self) -> Spec {
        let graphs = format!(
            "graphs:\n  - name: window\n    definition: builtin:windowed-statistics\n    source: ['bench/in/#']\n    sink: {{topic: bench/out/stats}}\n    queue: 4096\n    configuration: {{window_ms: {WINDOW_MS}}}\n"
        );
        let mut load = self.load(1, 1, 0, self.scaled(30_000));
        load.rate = Some(PACED_RATE);
        load.expect_all = false;
        let mut spec = Spec::new("window", Kind::Weir, graphs, load);
        spec.window = true;
        spec
    }

    /// The CPU-heavy graph on one worker, then on two.
    fn workers_rows(&self, dir: &Path) -> anyhow::Result<Vec<Spec>> {
        let heavy = dir.join("heavy.yaml");
        std::fs::write(&heavy, HEAVY)?;
        let rows = [1, 2].map(|workers| {
            let graphs = format!(
                "graphs:\n{}",
                graph(
                    "heavy",
                    &heavy.display().to_string(),
                    "bench/in/+/temperature",
                    &format!("    workers: {workers}\n    configuration: {{delay_ms: 1}}\n")
                )
            );
            let load = self.load(1, 1, 0, self.scaled(2_000));
            let mut spec = Spec::new("workers", Kind::Weir, graphs, load);
            spec.workers = workers;
            spec
        });
        Ok(rows.into())
    }

    /// Ten one-node graphs side by side: the broker's memory with them.
    fn rss10_row(&self) -> Spec {
        let mut graphs = "graphs:\n".to_string();
        for index in 0..10 {
            graphs += &graph(
                &format!("map{index}"),
                "builtin:temperature-map",
                &format!("bench/in/{index}/temperature"),
                "",
            );
        }
        let load = self.load(10, 1, 0, self.scaled(1_000));
        Spec::new("rss10", Kind::Weir, graphs, load)
    }
}

/// One entry of weir.yaml's `graphs:` list, its results on `bench/out/{2}`.
fn graph(name: &str, definition: &str, source: &str, extra: &str) -> String {
    format!(
        "  - name: {name}\n    definition: '{definition}'\n    source: ['{source}']\n    sink: {{topic: 'bench/out/{{2}}'}}\n    queue: 4096\n{extra}"
    )
}
