//! State store semantics, directly and through a module; and that state survives a restart.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use weir_model::hlc::Hlc;
use weir_state::{SetCondition, StateError, StateStore, WallClock};

/// A clock the test moves by hand.
#[derive(Clone, Default)]
struct ManualClock(Arc<AtomicU64>);

impl WallClock for ManualClock {
    fn now_millis(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn store() -> (StateStore, ManualClock, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::default();
    clock.0.store(1_000_000, Ordering::SeqCst);
    let store =
        StateStore::open_with_clock(&dir.path().join("s.redb"), "gw", Box::new(clock.clone()))
            .unwrap();
    (store, clock, dir)
}

const ALWAYS: SetCondition = SetCondition::Unconditional;

#[test]
fn missing_keys_read_as_none() {
    let (store, _, _dir) = store();
    let got = store.get(b"nothing").unwrap();
    assert_eq!((got.value, got.version), (None, None));
}

#[test]
fn conditional_sets() {
    let (store, _, _dir) = store();
    let only_new = SetCondition::OnlyIfDoesNotExist;
    let equal_or_new = SetCondition::OnlyIfEqualOrDoesNotExist;
    assert!(store.set(b"k", b"a", None, only_new, None).unwrap().written);
    let refused = store.set(b"k", b"b", None, only_new, None).unwrap();
    assert_eq!((refused.written, refused.version), (false, None));
    assert!(
        store
            .set(b"k", b"a", None, equal_or_new, None)
            .unwrap()
            .written
    );
    assert!(
        !store
            .set(b"k", b"b", None, equal_or_new, None)
            .unwrap()
            .written
    );
    assert_eq!(store.get(b"k").unwrap().value.as_deref(), Some(&b"a"[..]));
    assert!(store.set(b"k", b"b", None, ALWAYS, None).unwrap().written);
    assert_eq!(store.get(b"k").unwrap().value.as_deref(), Some(&b"b"[..]));
}

#[test]
fn versions_strictly_increase() {
    let (store, _, _dir) = store();
    let mut last: Option<Hlc> = None;
    for n in 0..50u8 {
        let version = store
            .set(&[n % 3], &[n], None, ALWAYS, None)
            .unwrap()
            .version
            .unwrap();
        assert_eq!(
            store.get(&[n % 3]).unwrap().version.as_ref(),
            Some(&version)
        );
        if let Some(last) = &last {
            assert!(version > *last, "{version} after {last}");
        }
        last = Some(version);
    }
}

#[test]
fn values_expire_after_their_ttl() {
    let (store, clock, _dir) = store();
    store
        .set(b"k", b"v", None, ALWAYS, Some(Duration::from_millis(500)))
        .unwrap();
    clock.0.fetch_add(499, Ordering::SeqCst);
    assert!(store.get(b"k").unwrap().value.is_some());
    clock.0.fetch_add(1, Ordering::SeqCst);
    assert_eq!(store.get(b"k").unwrap().value, None);
    // An expired key counts as absent for conditions and deletes.
    assert_eq!(store.del(b"k", None).unwrap(), 0);
    assert!(
        store
            .set(b"k", b"w", None, SetCondition::OnlyIfDoesNotExist, None)
            .unwrap()
            .written
    );
}

#[test]
fn del_and_vdel_results() {
    let (store, _, _dir) = store();
    assert_eq!(store.del(b"k", None).unwrap(), 0);
    store.set(b"k", b"v", None, ALWAYS, None).unwrap();
    assert_eq!(store.del(b"k", None).unwrap(), 1);
    assert_eq!(store.vdel(b"k", b"v", None).unwrap(), 0);
    store.set(b"k", b"v", None, ALWAYS, None).unwrap();
    assert_eq!(store.vdel(b"k", b"other", None).unwrap(), -1);
    assert_eq!(store.get(b"k").unwrap().value.as_deref(), Some(&b"v"[..]));
    assert_eq!(store.vdel(b"k", b"v", None).unwrap(), 1);
    assert_eq!(store.get(b"k").unwrap().value, None);
}

#[test]
fn fencing_tokens_reject_stale_writers() {
    let (store, _, _dir) = store();
    let old = Hlc::from_millis(100, 0, "a".into());
    let new = Hlc::from_millis(200, 0, "b".into());
    store.set(b"k", b"1", Some(&old), ALWAYS, None).unwrap();
    store.set(b"k", b"2", Some(&new), ALWAYS, None).unwrap();
    let stale = store.set(b"k", b"3", Some(&old), ALWAYS, None).unwrap_err();
    assert!(
        matches!(stale, StateError::FencingTokenTooLow { .. }),
        "{stale}"
    );
    assert!(matches!(
        store.del(b"k", Some(&old)),
        Err(StateError::FencingTokenTooLow { .. })
    ));
    assert!(matches!(
        store.vdel(b"k", b"2", Some(&old)),
        Err(StateError::FencingTokenTooLow { .. })
    ));
    assert_eq!(store.get(b"k").unwrap().value.as_deref(), Some(&b"2"[..]));
    // A value written with a token is not overwritten by a writer without one.
    assert!(matches!(
        store.set(b"k", b"5", None, ALWAYS, None),
        Err(StateError::FencingTokenRequired)
    ));
    assert!(matches!(
        store.del(b"k", None),
        Err(StateError::FencingTokenRequired)
    ));
    // The current holder (or a newer one) still writes, and the token survives a delete.
    assert_eq!(store.del(b"k", Some(&new)).unwrap(), 1);
    assert!(store.set(b"k", b"4", Some(&old), ALWAYS, None).is_err());
}

#[test]
fn state_and_versions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let first = {
        let store = StateStore::open(&path, "gw").unwrap();
        store
            .set(b"kept", b"value", None, ALWAYS, None)
            .unwrap()
            .version
            .unwrap()
    };
    let store = StateStore::open(&path, "gw").unwrap();
    let got = store.get(b"kept").unwrap();
    assert_eq!(got.value.as_deref(), Some(&b"value"[..]));
    assert_eq!(got.version, Some(first.clone()));
    let next = store
        .set(b"other", b"x", None, ALWAYS, None)
        .unwrap()
        .version
        .unwrap();
    assert!(next > first);
}

#[test]
fn a_module_counts_through_the_state_store() {
    use weir_wasm::OperatorKind;
    let mut counter = common::instance("state-counter", OperatorKind::Map, &[]);
    let topic = format!("counted/{}", std::process::id());
    for expected in 1..=3 {
        let output = counter.map(&common::message(&topic, "{}", 1)).unwrap();
        assert_eq!(
            common::payload(&output),
            format!(r#"{{"topic":"{topic}","count":{expected}}}"#)
        );
    }
    // Another instance (another node) shares the broker's store.
    let mut other = common::instance("state-counter", OperatorKind::Map, &[]);
    let output = other.map(&common::message(&topic, "{}", 1)).unwrap();
    assert_eq!(
        common::payload(&output),
        format!(r#"{{"topic":"{topic}","count":4}}"#)
    );
}
