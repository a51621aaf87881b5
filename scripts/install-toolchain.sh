#!/usr/bin/env bash
# Installs everything that building and testing Weir's guest modules needs, from Debian packages,
# crates.io and PyPI only. Idempotent: a second run checks and returns in about a second.
#
#   - Debian: mosquitto and its clients (test peers), zlib and make (the Kafka client builds
#     librdkafka), the runtime libraries of the guest compiler and lld; openssl and pkg-config
#     for the Azure IoT Operations client crates the state store tests drive; docker-registry
#     (the distribution registry) and htpasswd, which the OCI registry tests start and
#     configure.
#   - A private Rust guest toolchain: Debian's rustc-web 1.96 with its library sources, unpacked
#     (not installed: it conflicts with rustup) into $WEIR_GUEST_TOOLCHAIN, so that
#     `cargo build -Zbuild-std --target wasm32-wasip2` links components directly.
#   - Its C library: Debian trixie's wasi-libc (bookworm's, from 2022, has no thread support at
#     all), unpacked into the same prefix, with the three thread entry points it leaves out
#     (scripts/wasi-thread-stubs.rs) bundled into the sysroot's libc.a. Crates that use
#     std::thread, rayon or std::sync link; spawning a thread fails with "unsupported".
#   - PyPI: componentize-py, which builds Python guests into components.
#
# Environment:
#   WEIR_GUEST_TOOLCHAIN  where the guest toolchain goes (default: ~/.cache/weir/guest-toolchain)
set -euo pipefail

RUST_WEB_VERSION="1.96.0+dfsg1-1~deb12u2"
WASI_LIBC_VERSION="0.0~git20241209.574b88d-2"
WASI_LIBC_SHA256="b7716260051d289248b7667f81fa2792c125d888ff51da3fa09c6272cc0bd11d"
WASI_LIBC_URL="http://deb.debian.org/debian/pool/main/w/wasi-libc/wasi-libc_${WASI_LIBC_VERSION}_all.deb"
COMPONENTIZE_PY_VERSION="0.25.1"
PREFIX="${WEIR_GUEST_TOOLCHAIN:-$HOME/.cache/weir/guest-toolchain}"
STAMP="$PREFIX/.installed-$RUST_WEB_VERSION"
THREAD_STUBS="$(cd "$(dirname "$0")" && pwd)/wasi-thread-stubs.rs"
LIBC_STAMP="$PREFIX/.libc-$WASI_LIBC_VERSION-$(sha256sum "$THREAD_STUBS" | cut -c1-16)"

log() { printf 'install-toolchain: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_packages=(mosquitto mosquitto-clients libllvm22 lld-22 libgit2-1.5 zlib1g-dev make curl libssl-dev pkg-config docker-registry apache2-utils)

install_apt_packages() {
    local missing=()
    for pkg in "${apt_packages[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        return
    fi
    log "installing Debian packages: ${missing[*]}"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
}

install_guest_rust() {
    if [ -f "$STAMP" ]; then
        return
    fi
    log "unpacking rustc-web $RUST_WEB_VERSION into $PREFIX"
    local debs
    debs="$(mktemp -d)"
    chmod 755 "$debs" # apt-get download drops privileges to _apt
    # apt-get download needs current package lists; refresh them if this version is unknown.
    if ! apt-cache show "rustc-web=$RUST_WEB_VERSION" >/dev/null 2>&1; then
        as_root apt-get update -q
    fi
    (
        cd "$debs"
        apt-get download -q \
            "rustc-web=$RUST_WEB_VERSION" \
            "libstd-rust-web-1.96=$RUST_WEB_VERSION" \
            "libstd-rust-web-dev=$RUST_WEB_VERSION" \
            "rust-web-src=$RUST_WEB_VERSION" \
            "cargo-web=$RUST_WEB_VERSION" \
            "rust-web-llvm=$RUST_WEB_VERSION"
    )
    rm -rf "$PREFIX"
    mkdir -p "$PREFIX"
    for deb in "$debs"/*.deb; do
        dpkg -x "$deb" "$PREFIX"
    done
    rm -rf "$debs"

    # rust-web-llvm's lld-22 is a relative link into a tree we did not unpack.
    ln -sf /usr/bin/lld-22 "$PREFIX/usr/bin/lld-22"

    touch "$STAMP"
}

# Unpacks trixie's wasi-libc into $PREFIX/wasi-libc and fills each wasm32-wasip* sysroot's
# self-contained directory (what std links for these targets) with it, libc.a carrying the
# thread stubs.
install_guest_libc() {
    if [ -f "$LIBC_STAMP" ]; then
        return
    fi
    log "unpacking wasi-libc $WASI_LIBC_VERSION into $PREFIX/wasi-libc"
    local work deb
    work="$(mktemp -d)"
    deb="$work/wasi-libc.deb"
    curl -fsSL --retry 3 -o "$deb" "$WASI_LIBC_URL"
    echo "$WASI_LIBC_SHA256  $deb" | sha256sum -c --quiet -
    rm -rf "$PREFIX/wasi-libc"
    dpkg -x "$deb" "$PREFIX/wasi-libc"

    local target libc dir
    for target in wasm32-wasip1 wasm32-wasip2; do
        libc="$PREFIX/wasi-libc/usr/lib/$target"
        dir="$PREFIX/usr/lib/rustlib/$target/lib/self-contained"
        rm -rf "$dir"
        mkdir -p "$dir"
        ln -s "$libc"/*.o "$libc"/*.a "$dir/"
        rm "$dir/libc.a"
        # A static library of the stubs bundles every member of wasi-libc's libc.a, and the
        # compiler writes the archive's symbol index, which the wasm linker needs.
        "$(dirname "$THREAD_STUBS")/guest-env.sh" rustc --target "$target" --crate-type staticlib \
            -C opt-level=2 -C panic=abort \
            -L "native=$libc" -l static=c \
            -o "$dir/libc.a" "$THREAD_STUBS"
    done
    rm -rf "$work"
    rm -f "$PREFIX"/.libc-*
    touch "$LIBC_STAMP"
}

install_componentize_py() {
    if command -v componentize-py >/dev/null 2>&1 \
        && [ "$(componentize-py --version 2>/dev/null | awk '{print $2}')" = "$COMPONENTIZE_PY_VERSION" ]; then
        return
    fi
    log "installing componentize-py $COMPONENTIZE_PY_VERSION"
    python3 -m pip install -q --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION"
}

install_apt_packages
install_guest_rust
install_guest_libc
install_componentize_py

# Prove the toolchain answers, so a broken install fails here and not in a module build.
"$(dirname "$0")/guest-env.sh" rustc --version >/dev/null
componentize-py --version >/dev/null
log "ready (guest rustc: $("$(dirname "$0")/guest-env.sh" rustc --version))"
