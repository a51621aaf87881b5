//! `weir module inspect FILE.wasm`: what a module is and whether this host can run it.

use std::path::Path;
use std::sync::Arc;
use weir_state::StateStore;
use weir_wasm::{RuntimeConfig, WasmRuntime};

/// Prints the report; fails (exit status 1) when the host cannot run the module.
pub fn inspect(path: &Path) -> anyhow::Result<()> {
    let state = Arc::new(StateStore::in_memory("inspect")?);
    let runtime = WasmRuntime::new(&RuntimeConfig::default(), state)?;
    let inspection = runtime.inspect(path)?;
    println!("module:     {}", path.display());
    println!(
        "size:       {} bytes ({})",
        inspection.size,
        human_size(inspection.size)
    );
    match &inspection.module {
        Ok(module) => {
            println!("package:    {}", module.package());
            let operators: Vec<String> = module.operators().iter().map(|k| k.to_string()).collect();
            println!("operators:  {}", operators.join(", "));
        }
        Err(_) => println!("package:    (no operator interface this host knows)"),
    }
    print_list("exports", &inspection.exports);
    print_list("imports", &inspection.imports);
    match inspection.module {
        Ok(module) => {
            let limits = module.limits();
            println!(
                "runnable:   yes (defaults: memory limit {}, call time limit {:?})",
                human_size(limits.memory_bytes),
                limits.call_timeout
            );
            if let Some(import) = weir_wasm::nn::needs_feature(module.imports()) {
                println!(
                    "needs:      graph feature `{}` (it imports {import})",
                    weir_wasm::nn::FEATURE
                );
            }
            Ok(())
        }
        Err(error) => {
            println!("runnable:   no");
            Err(error.into())
        }
    }
}

fn print_list(label: &str, items: &[String]) {
    match items.split_first() {
        None => println!("{label}:{}(none)", " ".repeat(11 - label.len())),
        Some((first, rest)) => {
            println!("{label}:{}{first}", " ".repeat(11 - label.len()));
            for item in rest {
                println!("            {item}");
            }
        }
    }
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / f64::from(1 << 10)),
        b => format!("{b} B"),
    }
}
