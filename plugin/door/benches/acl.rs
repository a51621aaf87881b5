//! The ACL's cost per publish: one client's rules (100 `topic` lines and two patterns, as a
//! large gateway file might give a user) checked for a topic the last rule grants, for a topic
//! no rule grants, and for one the first rule grants; and the same topic again through a
//! connection's view, which remembers its last decision.
//!
//! Run: `cargo bench -p weir-door --bench acl`

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use weir_door::security::acl::AclFile;
use weir_door::security::{AclSource, ClientRules};

fn file() -> String {
    let mut text = String::from("user gateway\n");
    for site in 0..100 {
        text += &format!("topic readwrite sites/site-{site}/+/telemetry\n");
    }
    text += "topic deny sites/site-0/secret/#\n";
    text += "pattern write devices/%c/#\npattern read inbox/%u/#\n";
    text
}

fn bench(c: &mut Criterion) {
    let acl = AclFile::parse(&file(), Path::new("acl")).expect("the ACL parses");
    let client = acl.for_client("gw-1", Some("gateway"));
    let mut group = c.benchmark_group("acl write check, 100 rules");
    group.bench_function("granted by the last rule", |b| {
        b.iter(|| client.may_write(black_box("sites/site-99/pump/telemetry")))
    });
    group.bench_function("granted by the first rule", |b| {
        b.iter(|| client.may_write(black_box("sites/site-0/pump/telemetry")))
    });
    group.bench_function("denied (no rule grants)", |b| {
        b.iter(|| client.may_write(black_box("elsewhere/pump/telemetry")))
    });
    // A connection's view remembers its last decision: a device publishing to one topic.
    let source = Arc::new(AclSource::new(Path::new("acl"), Arc::new(acl.clone())));
    let mut rules = ClientRules::new(source, "gw-1", Some("gateway"));
    group.bench_function("same topic again (a connection's view)", |b| {
        b.iter(|| rules.may_write(black_box("sites/site-99/pump/telemetry")))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
