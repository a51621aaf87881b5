#!/usr/bin/env bash
# Builds every guest module under modules/ into target/modules/<name>.wasm.
#
#   - Rust: every member of the modules/ cargo workspace, built for wasm32-wasip2 with the guest
#     toolchain (scripts/guest-env.sh); cargo's output is already a component.
#   - Python: every directory with a weir-module.toml of kind "python", built by componentize-py
#     from its app.py against the WIT world the file names. Rebuilt only when a source is newer.
#
#   - nn-classify embeds target/nn/classifier.onnx, written by scripts/make-nn-model.py (PyPI
#     `onnx`, which scripts/install-services.sh installs).
#
# Run scripts/install-toolchain.sh first (once per machine). With --rust-only, the Python modules
# and nn-classify (which needs the model, hence Python's onnx) are skipped. With --demo, only the
# module the embedded default configuration's demo graph runs (temperature) is built.
set -euo pipefail
# The guests build with the guest toolchain alone: a workspace wrapper left in the environment
# (scripts/test.sh's clippy-driver) would bring the host toolchain's sysroot, which has no
# library sources to build std from.
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/target/modules"
GUEST_TARGET_DIR="$ROOT/target/guest"
mkdir -p "$OUT"

log() { printf 'build-modules: %s\n' "$*" >&2; }

MODEL="$ROOT/target/nn/classifier.onnx"

# The ONNX model nn-classify embeds, rewritten when its script changed.
build_nn_model() {
    if [ -f "$MODEL" ] && [ "$MODEL" -nt "$ROOT/scripts/make-nn-model.py" ]; then
        return
    fi
    log "ONNX test model $MODEL"
    mkdir -p "$(dirname "$MODEL")"
    python3 "$ROOT/scripts/make-nn-model.py" "$MODEL"
}

build_rust_modules() {
    local skip=() only=""
    case "${1:-}" in
        --rust-only) skip=(--workspace --exclude nn-classify) ;;
        --demo) only=temperature; skip=(-p "$only") ;;
        *) build_nn_model ;;
    esac
    log "rust modules (wasm32-wasip2)"
    (
        cd "$ROOT/modules"
        "$ROOT/scripts/guest-env.sh" cargo build --quiet --release --locked \
            --target wasm32-wasip2 -Zbuild-std=std,panic_abort \
            --target-dir "$GUEST_TARGET_DIR" "${skip[@]}"
    )
    local name
    while read -r name; do
        [ "${skip[*]}" != "" ] && [ "$name" = nn-classify ] && continue
        [ -n "$only" ] && [ "$name" != "$only" ] && continue
        cp "$GUEST_TARGET_DIR/wasm32-wasip2/release/${name//-/_}.wasm" "$OUT/$name.wasm"
        log "  $OUT/$name.wasm ($(stat -c %s "$OUT/$name.wasm") bytes)"
    done < <(cd "$ROOT/modules" && "$ROOT/scripts/guest-env.sh" cargo metadata --no-deps \
        --format-version 1 | python3 -c '
import json, sys
for package in json.load(sys.stdin)["packages"]:
    if any("cdylib" in target["crate_types"] for target in package["targets"]):
        print(package["name"])')
}

# Prints "WIT_DIR WORLD" for a Python module's weir-module.toml, or nothing if it is not Python.
python_module_spec() {
    python3 - "$1" <<'PY'
import sys, tomllib, pathlib
path = pathlib.Path(sys.argv[1])
spec = tomllib.loads(path.read_text())
if spec.get("kind") == "python":
    wit = (path.parent / spec["wit"]).resolve()
    print(wit, spec["world"])
PY
}

build_python_modules() {
    local manifest dir name wit world out
    for manifest in "$ROOT"/modules/*/weir-module.toml; do
        [ -e "$manifest" ] || continue
        dir="$(dirname "$manifest")"
        name="$(basename "$dir")"
        read -r wit world < <(python_module_spec "$manifest") || continue
        out="$OUT/$name.wasm"
        if [ -f "$out" ] && [ -z "$(find "$dir" "$wit" -newer "$out" -type f -print -quit)" ]; then
            log "  $out is up to date"
            continue
        fi
        log "python module $name (world $world)"
        (cd "$dir" && componentize-py -d "$wit" -w "$world" componentize app -o "$out.tmp" >/dev/null)
        mv "$out.tmp" "$out"
        log "  $out ($(stat -c %s "$out") bytes)"
    done
}

build_rust_modules "${1:-}"
# `--rust-only` and `--demo`: no Python modules.
case "${1:-}" in
    --rust-only | --demo) ;;
    *) build_python_modules ;;
esac
