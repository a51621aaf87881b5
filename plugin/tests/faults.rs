//! Modules that misbehave on purpose: each fault comes back as a typed error within its bound,
//! and the same node then serves the next call correctly.

mod common;

use common::{instance, message, payload};
use std::time::{Duration, Instant};
use weir_wasm::{Fault, ModuleLimits, OperatorKind};

#[test]
fn a_trap_is_reported_and_the_instance_rebuilt() {
    let mut map = instance("faulty-trap", OperatorKind::Map, &[]);
    let error = map.map(&message("t", "trap", 1)).unwrap_err();
    assert_eq!(
        (error.module.as_str(), error.node.as_str()),
        ("faulty-trap", "faulty-trap-map")
    );
    let Fault::Trap {
        operation,
        message: trap,
    } = &error.fault
    else {
        panic!("expected a trap, got {error}")
    };
    assert_eq!(*operation, "process");
    assert!(trap.contains("unreachable"), "{trap}");
    assert!(error.is_trap());
    assert_eq!(map.traps(), 1);
    // The next call runs on a fresh, re-initialised instance.
    assert_eq!(payload(&map.map(&message("t", "fine", 2)).unwrap()), "fine");
}

#[test]
fn an_endless_loop_is_interrupted_at_the_time_limit() {
    let mut map = instance("faulty-loop", OperatorKind::Map, &[]);
    map.set_limits(ModuleLimits {
        call_timeout: Duration::from_millis(50),
        ..ModuleLimits::default()
    });
    let started = Instant::now();
    let error = map.map(&message("t", "loop", 1)).unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(error.fault, Fault::Timeout { limit, .. } if limit == Duration::from_millis(50)),
        "{error}"
    );
    assert!(
        took >= Duration::from_millis(50),
        "interrupted early: {took:?}"
    );
    assert!(took < Duration::from_secs(2), "interrupted late: {took:?}");
    assert_eq!(
        error.to_string(),
        "module faulty-loop, node faulty-loop-map: process ran past its time limit of 50ms and was interrupted"
    );
    assert_eq!(payload(&map.map(&message("t", "fine", 2)).unwrap()), "fine");
}

#[test]
fn unbounded_allocation_stops_at_the_memory_limit() {
    let mut map = instance("faulty-alloc", OperatorKind::Map, &[]);
    map.set_limits(ModuleLimits {
        memory_bytes: 16 << 20,
        ..ModuleLimits::default()
    });
    let error = map.map(&message("t", "alloc", 1)).unwrap_err();
    let Fault::MemoryLimit { reached, .. } = &error.fault else {
        panic!("expected the memory limit, got {error}")
    };
    assert_eq!(reached.limit, 16 << 20);
    assert!(reached.requested > 16 << 20);
    assert_eq!(payload(&map.map(&message("t", "fine", 2)).unwrap()), "fine");
}

#[test]
fn init_returning_false_stops_the_node_from_starting() {
    let error = weir_wasm::OperatorInstance::new(
        common::module("faulty-init"),
        "refuser",
        OperatorKind::Map,
        vec![],
        Default::default(),
    )
    .err()
    .expect("init returned false but the instance started");
    assert!(matches!(error.fault, Fault::InitRejected), "{error}");
    assert_eq!(error.node, "refuser");
}

#[test]
fn one_faulty_node_does_not_disturb_another_of_the_same_module() {
    let mut broken = instance("faulty-trap", OperatorKind::Map, &[]);
    let mut healthy = instance("faulty-trap", OperatorKind::Map, &[]);
    for n in 0..3 {
        assert!(broken.map(&message("t", "trap", n)).is_err());
        assert_eq!(payload(&healthy.map(&message("t", "ok", n)).unwrap()), "ok");
    }
    assert_eq!((broken.traps(), healthy.traps()), (3, 0));
}
