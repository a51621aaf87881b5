//! `weir graph check` on the example graphs and on a broken one.

use super::harness::{run_weir, write_file};
use std::path::PathBuf;

fn repo(path: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
        .display()
        .to_string()
}

#[test]
fn check_prints_nodes_edges_modules_and_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let (status, stdout, stderr) = run_weir(
        &[
            "graph",
            "check",
            &repo("config/graphs/windowed-statistics.yaml"),
            "--modules",
            &repo("target/modules"),
            "--set",
            "window_ms=5000",
        ],
        dir.path(),
    );
    assert!(status.success(), "{stderr}");
    for line in [
        "  module-window/delay [delay] window:1.0.0 -> ",
        "      window_ms = \"5000\" (configuration)",
        "      temperature_upper_bound = \"125\" (default)",
        "  module-temperature/branch [False] -> module-humidity/accumulate",
        "graph is valid",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in\n{stdout}");
    }
}

#[test]
fn check_reports_every_problem_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "broken.yaml",
        "metadata: {name: b, version: \"1\"}\nmoduleRequirements: {apiVersion: \"1.1.0\", runtimeVersion: \"1.1.0\"}\noperations:\n  - {operationType: source, name: in}\n  - {operationType: map, name: m}\n  - {operationType: sink, name: out}\nconnections:\n  - {from: {name: in}, to: {name: m}}\n  - {from: {name: m}, to: {name: nowhere}}\n",
    );
    let (status, _, stderr) = run_weir(&["graph", "check", "broken.yaml"], dir.path());
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr
            .contains("broken.yaml:5:6: operations[1]: operation `m` of type map needs a `module`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("broken.yaml:9:34: connections[1].to.name: unknown node `nowhere`"),
        "{stderr}"
    );
    let (status, _, stderr) = run_weir(
        &[
            "graph",
            "check",
            &repo("config/graphs/temperature-map.yaml"),
            "--set",
            "novalue",
        ],
        dir.path(),
    );
    assert_eq!(status.code(), Some(2));
    assert!(
        stderr.contains("expected KEY=VALUE, got `novalue`"),
        "{stderr}"
    );
}
