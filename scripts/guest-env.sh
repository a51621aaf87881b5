#!/usr/bin/env bash
# Runs a command with the private guest toolchain that install-toolchain.sh unpacked, for building
# wasm32-wasip2 components: `scripts/guest-env.sh cargo build --target wasm32-wasip2 ...`.
# The host toolchain (rustup) is untouched; only this command sees the guest compiler.
set -euo pipefail

PREFIX="${WEIR_GUEST_TOOLCHAIN:-$HOME/.cache/weir/guest-toolchain}"
if [ ! -x "$PREFIX/usr/bin/rustc" ]; then
    echo "guest-env: no guest toolchain in $PREFIX; run scripts/install-toolchain.sh" >&2
    exit 1
fi

export PATH="$PREFIX/usr/bin:$PATH"
export LD_LIBRARY_PATH="$PREFIX/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export RUSTC="$PREFIX/usr/bin/rustc"
export RUSTDOC="$PREFIX/usr/bin/rustdoc"
export CARGO="$PREFIX/usr/bin/cargo"
# Lets this stable compiler accept -Zbuild-std, which builds std for the wasm target from source.
export RUSTC_BOOTSTRAP=1
# rustup's proxies must not pick the host toolchain for this command.
unset RUSTUP_TOOLCHAIN
exec "$@"
