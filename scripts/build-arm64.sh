#!/usr/bin/env bash
# Cross-builds the `weir` binary for 64-bit ARM Linux (aarch64-unknown-linux-gnu), from Debian's
# packages only: the cross compilers and C libraries (gcc-aarch64-linux-gnu, g++-aarch64-linux-gnu,
# libc6-dev-arm64-cross) and, since no prebuilt aarch64 standard library can be installed here, std built for the target
# from the guest toolchain's Rust sources (`-Zbuild-std`; scripts/install-toolchain.sh).
#
#   scripts/build-arm64.sh            # release build: target/arm64/aarch64-unknown-linux-gnu/release/weir
#   qemu-aarch64 -L /usr/aarch64-linux-gnu target/arm64/aarch64-unknown-linux-gnu/release/weir run
#
# Environment:
#   WEIR_ARM64_FEATURES  the broker's features (default: all of them, as `cargo build` has them)
#   WEIR_ARM64_PROFILE   cargo profile (default: release; `dev` builds everything unoptimised,
#                        dependencies too, as a quick check that it builds: CI's)
#   WEIR_GUEST_TOOLCHAIN where the guest toolchain is (as for scripts/install-toolchain.sh)
set -euo pipefail

cd "$(dirname "$0")/.."
TARGET=aarch64-unknown-linux-gnu
FEATURES="${WEIR_ARM64_FEATURES:-default}"
PROFILE="${WEIR_ARM64_PROFILE:-release}"

log() { printf 'build-arm64: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

packages=(gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
scripts/install-toolchain.sh

# C code (ring, jemalloc, zstd) is compiled and linked with the cross toolchain; build scripts
# and proc macros still run on this machine. librdkafka's own configure script reads only CC,
# CXX and AR: they name the cross tools, and HOST_* keep the C that build scripts compile for
# this machine on its own compilers. The binary gets a target directory of its own: it is built
# by another compiler than the host's.
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
export CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ AR=aarch64-linux-gnu-ar
export HOST_CC=gcc HOST_CXX=g++ HOST_AR=ar
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR_ARM64:-$PWD/target/arm64}"

quick=()
if [ "$PROFILE" = dev ]; then
    quick=(--config 'profile.dev.package."*".opt-level=0')
fi

features=(--no-default-features --features "$FEATURES")
[ "$FEATURES" = default ] && features=()

log "building weir for $TARGET (profile $PROFILE, features $FEATURES)"
scripts/guest-env.sh cargo build --locked -p weir --profile "$PROFILE" "${quick[@]}" "${features[@]}" \
    --target "$TARGET" -Zbuild-std
dir="$PROFILE"
[ "$PROFILE" = dev ] && dir=debug
binary="$CARGO_TARGET_DIR/$TARGET/$dir/weir"
log "built $binary ($(du -h "$binary" | cut -f1)); run it with: qemu-aarch64 -L /usr/aarch64-linux-gnu $binary run"
echo "$binary"
