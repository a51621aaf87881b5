//! The OCI client against a "registry" that accepts connections and closes them at once:
//! out of reach, asked once per `Registries` value, and named in the error.

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use weir_oci::{ArtifactKind, OciError, Registries};

/// Accepts connections on a loopback port and drops each at once; counts them.
fn closing_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (port, accepted)
}

#[test]
fn a_registry_out_of_reach_is_asked_once_per_resolution() {
    let (port, accepted) = closing_listener();
    let cache = tempfile::tempdir().unwrap();
    let mut registries = Registries::new(cache.path());
    registries.set_plain_http(true);
    let reference = |name: &str| format!("127.0.0.1:{port}/samples/{name}:1.0.0");

    let first = registries.pull(&reference("temperature"), ArtifactKind::Module);
    assert!(
        matches!(&first, Err(OciError::Unreachable { .. })),
        "{first:?}"
    );
    let asked = accepted.load(Ordering::SeqCst);
    assert!(asked >= 1, "the registry was never asked");

    // Another reference on the same registry: answered from what is known, without a request.
    let second = registries.pull(&reference("window"), ArtifactKind::Module);
    let error = second.unwrap_err().to_string();
    assert!(
        error.contains(&reference("window")) && error.contains("cannot reach the registry"),
        "{error}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), asked);

    // A new value (what a reload makes) asks again.
    let mut fresh = Registries::new(cache.path());
    fresh.set_plain_http(true);
    assert!(fresh
        .pull(&reference("window"), ArtifactKind::Module)
        .is_err());
    assert!(accepted.load(Ordering::SeqCst) > asked);
}
