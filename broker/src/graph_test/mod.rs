//! `weir graph test`: runs test files written for Azure IoT Operations' local tooling
//! (`*.test.yaml`) unchanged, and says which pass.
//!
//! A test names a graph definition, a folder of input messages and a file of expected results.
//! Its inputs are published on `sensors` (or the test's `topic`), stamped 1 ms apart from
//! 2025-01-01T00:00:00Z, through the graph on one worker; the run ends when the input is
//! exhausted and every window has closed. See [`case`] for the file, [`compare`] for how
//! results are compared.

pub mod case;
pub mod compare;
pub mod runner;

use crate::cli::GraphTestArgs;
use case::TestCase;
use runner::Shared;

/// How a run of tests went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Tests that passed.
    pub passed: usize,
    /// Tests that failed (or could not run).
    pub failed: usize,
}

/// Runs every test `args` names, printing `PASS name` or `FAIL name: first difference` for
/// each and a summary line.
pub fn run(args: GraphTestArgs) -> anyhow::Result<Summary> {
    let files = case::discover(&args.paths)?;
    if files.is_empty() {
        anyhow::bail!("no test files (*{}) found", case::SUFFIX);
    }
    let shared = Shared {
        modules: args.registry.sources(&args.modules)?,
        set: args.set,
        inputs: args.inputs,
    };
    let mut summary = Summary {
        passed: 0,
        failed: 0,
    };
    for file in &files {
        let (name, outcome) = match TestCase::load(file) {
            Ok(case) => {
                if !case.ignored_keys.is_empty() {
                    tracing::warn!(
                        "{}: keys not used by this runner: {}",
                        file.display(),
                        case.ignored_keys.join(", ")
                    );
                }
                let outcome = runner::run(&case, &shared);
                (case.name, outcome)
            }
            Err(error) => (file.display().to_string(), Err(error)),
        };
        match outcome {
            Ok(None) => {
                summary.passed += 1;
                println!("PASS {name}");
            }
            Ok(Some(difference)) => {
                summary.failed += 1;
                println!("FAIL {name}: {difference}");
            }
            Err(error) => {
                summary.failed += 1;
                println!("FAIL {name}: {}", one_line(&format!("{error:#}")));
            }
        }
    }
    println!("{} passed, {} failed", summary.passed, summary.failed);
    Ok(summary)
}

fn one_line(text: &str) -> String {
    text.split('\n')
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}
