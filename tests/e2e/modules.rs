//! `weir module inspect` on the modules built from this repository.

use super::harness::run_weir;
use std::path::PathBuf;

fn built(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/modules")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run scripts/build-modules.sh",
        path.display()
    );
    path.display().to_string()
}

#[test]
fn inspect_describes_a_runnable_module() {
    let dir = tempfile::tempdir().unwrap();
    let (status, stdout, stderr) =
        run_weir(&["module", "inspect", &built("temperature")], dir.path());
    assert!(status.success(), "{stderr}");
    for line in [
        "package:    wasm-graph:processor@1.1.0",
        "operators:  map, filter, branch, accumulate",
        "            wasm-graph:processor/logger@1.1.0",
        "runnable:   yes",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in\n{stdout}");
    }
    let (status, stdout, _) = run_weir(&["module", "inspect", &built("window")], dir.path());
    assert!(status.success());
    assert!(stdout.contains("operators:  delay"), "{stdout}");
}

#[test]
fn inspect_refuses_what_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("other.wasm"),
        wat::parse_str(
            r#"(component (instance $e) (export "acme:other/api@1.0.0" (instance $e)))"#,
        )
        .unwrap(),
    )
    .unwrap();
    let (status, stdout, stderr) = run_weir(&["module", "inspect", "other.wasm"], dir.path());
    assert_eq!(status.code(), Some(1));
    assert!(
        stdout.contains("exports:    acme:other/api@1.0.0"),
        "{stdout}"
    );
    assert!(stdout.contains("runnable:   no"), "{stdout}");
    assert!(
        stderr.contains("other.wasm: exports no operator interface"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
