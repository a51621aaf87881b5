//! `weir.yaml` with `${VAR}` substitution: the input is `VALUE\0TEXT`; every variable whose
//! name has an even length is set to VALUE, the others are unset. Any input gives a
//! configuration or a located error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|input: &str| {
    let (value, text) = input.split_once('\0').unwrap_or(("", input));
    let lookup = |name: &str| (name.len() % 2 == 0).then(|| value.to_string());
    // Relative paths in the file resolve in a directory that does not exist.
    let base = Path::new("/nonexistent/weir-fuzz");
    let _ = weir_config::WeirConfig::from_str_with(text, "fuzz.yaml", base, lookup);
});
