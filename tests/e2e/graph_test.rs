//! `weir graph test` over the repository's test files (tests/graph-tests), and over broken ones.

use super::harness::{modules_dir, repo, run_weir, write_file};
use std::path::Path;

fn graph_test(args: &[&str], cwd: &Path) -> (Option<i32>, String, String) {
    let mut all = vec!["graph", "test"];
    all.extend_from_slice(args);
    let modules = modules_dir();
    all.extend_from_slice(&["--modules", &modules]);
    let (status, stdout, stderr) = run_weir(&all, cwd);
    (status.code(), stdout, stderr)
}

#[test]
fn the_repositorys_graph_tests_pass() {
    let folder = repo("tests/graph-tests").display().to_string();
    let (code, stdout, stderr) = graph_test(&[&folder], &repo(""));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let passes = stdout.lines().filter(|l| l.starts_with("PASS ")).count();
    assert_eq!(passes, 14, "{stdout}");
    assert!(stdout.ends_with("14 passed, 0 failed\n"), "{stdout}");
}

/// A copy of the temperature-map test whose expectation differs from the result.
fn failing_test(dir: &Path) {
    let graph = repo("config/graphs/temperature-map.yaml");
    let input = repo("tests/graph-tests/temperature-map/input");
    write_file(
        dir,
        "wrong.test.yaml",
        &format!(
            "name: wrong expectation\ngraph: {}\ninput: {}\nexpected: wrong.json\nselect: [payload]\n",
            graph.display(),
            input.display()
        ),
    );
    write_file(
        dir,
        "wrong.json",
        r#"[{"payload": {"temperature": {"value": 100, "unit": "C"}}}, {"payload": {"temperature": {"value": 1, "unit": "C"}}}]"#,
    );
}

#[test]
fn a_failing_test_names_its_first_difference_and_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    failing_test(dir.path());
    let passing = repo("tests/graph-tests/temperature-map/converts.test.yaml");
    let (code, stdout, _) = graph_test(
        &["wrong.test.yaml", &passing.display().to_string()],
        dir.path(),
    );
    assert_eq!(code, Some(1), "{stdout}");
    assert_eq!(
        stdout,
        "FAIL wrong expectation: result 1: payload.temperature.value: expected 1, got 0.0\n\
         PASS temperature map converts °F to °C and keeps °C\n\
         1 passed, 1 failed\n"
    );
}

#[test]
fn too_few_results_and_broken_files_fail_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let graph = repo("config/graphs/temperature-map.yaml")
        .display()
        .to_string();
    let input = repo("tests/graph-tests/temperature-map/input")
        .display()
        .to_string();
    write_file(
        dir.path(),
        "a-more.test.yaml",
        &format!("name: more\ngraph: {graph}\ninput: {input}\nexpected: more.json\n"),
    );
    write_file(
        dir.path(),
        "more.json",
        r#"[{}, {}, {}, {"payload": {"temperature": {"value": 5, "unit": "C"}}}]"#,
    );
    write_file(
        dir.path(),
        "b-broken.test.yaml",
        "name: broken\ngraph: g.yaml\ninput: in\n",
    );
    write_file(
        dir.path(),
        "c-bad-json.test.yaml",
        &format!("name: bad json\ngraph: {graph}\ninput: {input}\nexpected: bad.json\n"),
    );
    write_file(dir.path(), "bad.json", "[{\"payload\": }]");
    let (code, stdout, _) = graph_test(&["."], dir.path());
    assert_eq!(code, Some(1), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "FAIL more: expected 4 results, got 3", "{stdout}");
    assert!(
        lines[1].starts_with(
            "FAIL ./b-broken.test.yaml: ./b-broken.test.yaml:1:1: missing field `expected`"
        ),
        "{stdout}"
    );
    assert!(lines[2].starts_with("FAIL bad json: "), "{stdout}");
    assert!(
        lines[2].ends_with("bad.json:1:14: expected value"),
        "{stdout}"
    );
    assert_eq!(lines[3], "0 passed, 3 failed");
}

#[test]
fn no_test_files_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = graph_test(&["."], dir.path());
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("no test files (*.test.yaml) found"),
        "{stderr}"
    );
}
